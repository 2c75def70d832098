/* test_dht_sim.c: whole DHT instances: a live node fed raw and malformed
 * datagrams, timeouts and retries, export/import, and simulated networks
 * where a peer announced by one node is found by another. */
#include "config.h"

#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dht/dht-internal.h"
#include "dht/simnet.h"

/* ---- A single instance whose datagrams are captured ---- */

#define CAP_MAX 64
struct capture {
	size_t n;
	uint8_t pkt[CAP_MAX][DHT_MAX_PACKET];
	size_t len[CAP_MAX];
	struct sockaddr_storage to[CAP_MAX];
	unsigned done;
	struct dht_lookup_summary last;
};

static int cap_send(void *ctx, const struct sockaddr *to, socklen_t len, const uint8_t *buf,
		    size_t n)
{
	struct capture *c = ctx;
	if (c->n == CAP_MAX)
		return -ENOBUFS;
	memcpy(c->pkt[c->n], buf, n);
	c->len[c->n] = n;
	memcpy(&c->to[c->n], to, len);
	c->n++;
	return 0;
}

static void cap_done(void *ctx, const uint8_t key[DHT_ID_LEN], const struct dht_lookup_summary *s)
{
	struct capture *c = ctx;
	(void)key;
	c->done++;
	c->last = *s;
}

static struct sockaddr_in lo4(uint16_t port)
{
	struct sockaddr_in s;
	memset(&s, 0, sizeof s);
	s.sin_family = AF_INET;
	s.sin_port = htons(port);
	s.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	return s;
}

static struct dht *new_captured(struct capture *c, const struct dht_config *cfg_in)
{
	struct dht_config cfg;
	dht_config_default(&cfg);
	if (cfg_in)
		cfg = *cfg_in;
	cfg.has_id = true;
	memset(cfg.id, 0x42, DHT_ID_LEN);
	struct dht_callbacks cb = { .send = cap_send, .lookup_done = cap_done };
	struct dht *d = dht_new(&cfg, &cb, c);
	assert_non_null(d);
	return d;
}

static int feed(struct dht *d, uint16_t port, const char *s, size_t len, uint64_t now)
{
	struct sockaddr_in from = lo4(port);
	return dht_receive(d, (struct sockaddr *)&from, sizeof from, (const uint8_t *)s, len, now);
}
#define FEED(d, port, lit, now) feed((d), (port), (lit), sizeof(lit) - 1, (now))

/* Decode the last captured datagram. */
static void last_msg(struct capture *c, struct krpc_msg *m)
{
	assert_true(c->n > 0);
	assert_int_equal(krpc_decode(m, c->pkt[c->n - 1], c->pkt[c->n - 1] + c->len[c->n - 1]), 0);
}

static void test_live_node(void **state)
{
	(void)state;
	struct capture *c = calloc(1, sizeof *c);
	struct krpc_msg *m = malloc(sizeof *m);
	assert_non_null(c);
	assert_non_null(m);
	struct dht *d = new_captured(c, NULL);
	struct dht_stats st;

	/* Garbage of every kind is dropped and counted, never answered. */
	assert_int_equal(FEED(d, 7000, "", 1), -EILSEQ);
	assert_int_equal(FEED(d, 7000, "d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qeX", 1),
			 -EILSEQ);
	assert_int_equal(FEED(d, 7000, "lllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllll"
				       "lllllllllllllllllllllllllll", 1), -EILSEQ);
	static uint8_t huge[DHT_MAX_PACKET + 1];
	struct sockaddr_in from = lo4(7000);
	assert_int_equal(dht_receive(d, (struct sockaddr *)&from, sizeof from, huge, sizeof huge, 1),
			 -EMSGSIZE);
	assert_int_equal(dht_receive(d, (struct sockaddr *)&from, 2, huge, 10, 1), -EAFNOSUPPORT);
	assert_int_equal(c->n, 0);
	dht_get_stats(d, &st, 1);
	assert_int_equal(st.malformed, 4);

	/* ... and the node still answers a ping afterwards. */
	assert_int_equal(FEED(d, 7000, "d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe", 2), 0);
	last_msg(c, m);
	assert_int_equal(m->y, KRPC_RESPONSE);
	assert_memory_equal(m->tid, "aa", 2);
	uint8_t me[DHT_ID_LEN];
	memset(me, 0x42, sizeof me);
	assert_memory_equal(m->id, me, DHT_ID_LEN);
	struct sockaddr_in *to = (struct sockaddr_in *)&c->to[c->n - 1];
	assert_int_equal(ntohs(to->sin_port), 7000);

	/* Unknown method: 204.  Missing target / info_hash / token: 203. */
	assert_int_equal(FEED(d, 7000, "d1:ad2:id20:abcdefghij0123456789e1:q4:vote1:t2:ab1:y1:qe", 3), 0);
	last_msg(c, m);
	assert_int_equal(m->y, KRPC_ERROR);
	assert_int_equal(m->ecode, 204);
	assert_int_equal(FEED(d, 7000, "d1:ad2:id20:abcdefghij0123456789e1:q9:find_node1:t2:ac1:y1:qe", 3), 0);
	last_msg(c, m);
	assert_int_equal(m->ecode, 203);
	assert_int_equal(FEED(d, 7000, "d1:ad2:id20:abcdefghij0123456789e1:q9:get_peers1:t2:ad1:y1:qe", 3), 0);
	last_msg(c, m);
	assert_int_equal(m->ecode, 203);
	assert_int_equal(FEED(d, 7000, "d1:ade1:q4:ping1:t2:ae1:y1:qe", 3), 0);
	last_msg(c, m);
	assert_int_equal(m->ecode, 203);

	/* find_node: the querier itself is in our table now, so it comes back. */
	assert_int_equal(FEED(d, 7000, "d1:ad2:id20:abcdefghij01234567896:target20:mnopqrstuvwxyz123456e"
				       "1:q9:find_node1:t2:af1:y1:qe", 4), 0);
	last_msg(c, m);
	assert_int_equal(m->y, KRPC_RESPONSE);
	assert_int_equal(m->nodes_len, KRPC_NODE4_LEN);
	assert_memory_equal(m->nodes, "abcdefghij0123456789", DHT_ID_LEN);

	/* announce_peer with a forged token is refused (203) and stores nothing. */
	assert_int_equal(FEED(d, 7001, "d1:ad2:id20:bbcdefghij01234567899:info_hash20:mnopqrstuvwxyz123456"
				       "4:porti6881e5:token8:aoeusnthe1:q13:announce_peer1:t2:ag1:y1:qe", 5), 0);
	last_msg(c, m);
	assert_int_equal(m->y, KRPC_ERROR);
	assert_int_equal(m->ecode, 203);
	dht_get_stats(d, &st, 5);
	assert_int_equal(st.peers_stored, 0);

	/* get_peers hands out a token; announcing with it stores the peer. */
	assert_int_equal(FEED(d, 7001, "d1:ad2:id20:bbcdefghij01234567899:info_hash20:mnopqrstuvwxyz123456e"
				       "1:q9:get_peers1:t2:ah1:y1:qe", 6), 0);
	last_msg(c, m);
	assert_int_equal(m->y, KRPC_RESPONSE);
	assert_int_equal(m->token_len, DHT_TOKEN_LEN);
	assert_int_equal(m->nvalues, 0);
	uint8_t tok[DHT_TOKEN_LEN];
	memcpy(tok, m->token, sizeof tok);
	struct buf b;
	buf_init(&b, DHT_MAX_PACKET);
	uint8_t bid[DHT_ID_LEN];
	memcpy(bid, "bbcdefghij0123456789", DHT_ID_LEN);
	struct krpc_query q = { .q = KRPC_ANNOUNCE_PEER, .id = bid,
				.target = (const uint8_t *)"mnopqrstuvwxyz123456", .port = 6881,
				.token = tok, .token_len = sizeof tok };
	assert_int_equal(krpc_put_query(&b, (const uint8_t *)"ai", 2, &q), 0);
	assert_int_equal(feed(d, 7001, (const char *)b.data, b.len, 7), 0);
	last_msg(c, m);
	assert_int_equal(m->y, KRPC_RESPONSE);
	dht_get_stats(d, &st, 7);
	assert_int_equal(st.peers_stored, 1);
	assert_int_equal(st.keys_stored, 1);
	/* ... with implied_port the source port is stored instead. */
	buf_reset(&b);
	q.implied_port = true;
	assert_int_equal(krpc_put_query(&b, (const uint8_t *)"aj", 2, &q), 0);
	assert_int_equal(feed(d, 7001, (const char *)b.data, b.len, 8), 0);
	/* The same token is still good after 9 minutes, not after 10. */
	buf_reset(&b);
	q.implied_port = false;
	q.port = 1234;
	assert_int_equal(krpc_put_query(&b, (const uint8_t *)"ak", 2, &q), 0);
	assert_int_equal(feed(d, 7001, (const char *)b.data, b.len, 6 + 9 * 60000), 0);
	last_msg(c, m);
	assert_int_equal(m->y, KRPC_RESPONSE);
	assert_int_equal(feed(d, 7001, (const char *)b.data, b.len, 6 + 10 * 60000), 0);
	last_msg(c, m);
	assert_int_equal(m->y, KRPC_ERROR);
	buf_destroy(&b);

	/* get_peers now returns both stored peers as values. */
	uint64_t t = 6 + 10 * 60000;
	assert_int_equal(FEED(d, 7002, "d1:ad2:id20:cbcdefghij01234567899:info_hash20:mnopqrstuvwxyz123456e"
				       "1:q9:get_peers1:t2:al1:y1:qe", t), 0);
	last_msg(c, m);
	assert_int_equal(m->nvalues, 3);
	bool saw6881 = false, saw7001 = false;
	for (size_t i = 0; i < m->nvalues; i++) {
		saw6881 |= m->values[i].port == 6881;
		saw7001 |= m->values[i].port == 7001;
	}
	assert_true(saw6881 && saw7001);
	/* Stored peers expire after 30 minutes. */
	uint64_t wait;
	assert_int_equal(dht_periodic(d, t + DHT_PEER_TTL_MS, &wait), 0);
	assert_true(wait <= DHT_TICK_MS);
	dht_get_stats(d, &st, t + DHT_PEER_TTL_MS);
	assert_int_equal(st.peers_stored, 0);

	/* A reply nobody asked for is dropped. */
	assert_int_equal(FEED(d, 7000, "d1:rd2:id20:abcdefghij0123456789e1:t4:zzzz1:y1:re", t), -ENOENT);
	dht_get_stats(d, &st, t);
	assert_int_equal(st.unexpected, 1);
	dht_free(d);
	free(m);
	free(c);
}

static void test_rate_limit(void **state)
{
	(void)state;
	struct capture *c = calloc(1, sizeof *c);
	assert_non_null(c);
	struct dht_config cfg;
	dht_config_default(&cfg);
	cfg.rate_per_s = 5;
	cfg.rate_burst = 10;
	struct dht *d = new_captured(c, &cfg);
	int limited = 0;
	for (int i = 0; i < 50; i++)
		limited += FEED(d, 7000, "d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe",
				100) == -EAGAIN;
	assert_int_equal(limited, 40);
	assert_int_equal(c->n, 10);
	/* Another source (different IP) is still served. */
	struct sockaddr_in other = lo4(7000);
	other.sin_addr.s_addr = htonl(0x7f000002);
	const char *ping = "d1:ad2:id20:bbcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe";
	assert_int_equal(dht_receive(d, (struct sockaddr *)&other, sizeof other,
				     (const uint8_t *)ping, strlen(ping), 100), 0);
	struct dht_stats st;
	dht_get_stats(d, &st, 100);
	assert_int_equal(st.rate_limited, 40);
	dht_free(d);
	free(c);
}

static void test_timeouts_and_export(void **state)
{
	(void)state;
	struct capture *c = calloc(1, sizeof *c);
	assert_non_null(c);
	struct dht *d = new_captured(c, NULL);
	/* A bootstrap ping to a silent address is resent once, then given up. */
	struct sockaddr_in boot = lo4(9000);
	assert_int_equal(dht_ping_node(d, (struct sockaddr *)&boot, sizeof boot, 0), 0);
	assert_int_equal(c->n, 1);
	uint64_t wait;
	assert_int_equal(dht_periodic(d, DHT_QUERY_TIMEOUT_MS, &wait), 0);
	assert_int_equal(c->n, 2);
	assert_memory_equal(c->pkt[0], c->pkt[1], c->len[0]); /* same transaction */
	assert_int_equal(dht_periodic(d, 2 * DHT_QUERY_TIMEOUT_MS, &wait), 0);
	struct dht_stats st;
	dht_get_stats(d, &st, 2 * DHT_QUERY_TIMEOUT_MS);
	assert_int_equal(st.timeouts, 2);
	/* With an empty table there is nobody to ask. */
	uint8_t key[DHT_ID_LEN] = { 1 };
	assert_int_equal(dht_get_peers(d, key, false, 0, false, 5000), -ENETUNREACH);

	/* Import nodes (as from the database), export them back. */
	size_t added = 0;
	for (uint16_t i = 0; i < 40; i++) {
		uint8_t id[DHT_ID_LEN];
		memset(id, 0, sizeof id);
		id[0] = (uint8_t)(i * 6); /* spread over the id space */
		id[19] = (uint8_t)i;
		struct sockaddr_in a = lo4((uint16_t)(10000 + i));
		int rc = dht_add_node(d, id, (struct sockaddr *)&a, sizeof a, 5000);
		assert_true(rc == 0 || rc == -ENOSPC);
		added += rc == 0;
		if (rc == 0)
			assert_int_equal(dht_add_node(d, id, (struct sockaddr *)&a, sizeof a, 5000),
					 -EEXIST);
	}
	assert_true(added >= 16);
	struct dht_node_info *out = calloc(64, sizeof *out);
	assert_non_null(out);
	size_t n = dht_export_nodes(d, out, 64, 5000);
	assert_int_equal(n, added);
	for (size_t i = 0; i < n; i++) {
		assert_false(out[i].good); /* never answered */
		struct sockaddr_in *a = (struct sockaddr_in *)&out[i].addr;
		assert_int_equal(ntohs(a->sin_port), 10000 + out[i].id[19]);
	}
	assert_int_equal(dht_export_nodes(d, out, 3, 5000), 3);
	dht_get_stats(d, &st, 5000);
	assert_int_equal(st.nodes_total, added);
	assert_int_equal(st.nodes_good, 0);

	/* A lookup over nodes that never answer ends with -ETIMEDOUT, and
	 * those nodes become bad. */
	c->n = 0;
	assert_int_equal(dht_get_peers(d, key, true, 6881, false, 5000), 0);
	assert_int_equal(dht_get_peers(d, key, true, 6881, false, 5000), -EALREADY);
	assert_int_equal(c->n, DHT_ALPHA);
	uint64_t now = 5000;
	for (int i = 0; i < 200 && c->done == 0; i++) {
		c->n = 0; /* keep capturing */
		now += 500;
		assert_int_equal(dht_periodic(d, now, &wait), 0);
	}
	assert_int_equal(c->done, 1);
	assert_int_equal(c->last.status, -ETIMEDOUT);
	assert_int_equal(c->last.responded, 0);
	assert_true(c->last.queries >= DHT_K);
	dht_get_stats(d, &st, now);
	assert_int_equal(st.lookups_done, 1);
	free(out);
	dht_free(d);
	free(c);
}

/* ---- Simulated networks ---- */

struct sim_obs {
	uint8_t key[DHT_ID_LEN];
	size_t watch;        /* node whose lookup we follow */
	bool done;
	struct dht_lookup_summary s;
	uint16_t found[256];
	size_t nfound;
};

static void obs_peers(void *ctx, size_t node, const uint8_t key[DHT_ID_LEN],
		      const struct sockaddr_storage *peers, size_t n)
{
	struct sim_obs *o = ctx;
	if (node != o->watch || memcmp(key, o->key, DHT_ID_LEN) != 0)
		return;
	for (size_t i = 0; i < n && o->nfound < 256; i++) {
		uint16_t port = peers[i].ss_family == AF_INET
			? ntohs(((const struct sockaddr_in *)&peers[i])->sin_port)
			: ntohs(((const struct sockaddr_in6 *)&peers[i])->sin6_port);
		o->found[o->nfound++] = port;
	}
}

static void obs_done(void *ctx, size_t node, const uint8_t key[DHT_ID_LEN],
		     const struct dht_lookup_summary *s)
{
	struct sim_obs *o = ctx;
	if (node == o->watch && memcmp(key, o->key, DHT_ID_LEN) == 0) {
		o->done = true;
		o->s = *s;
	}
}

static void run_network(int family, size_t n, size_t announcer, size_t seeker)
{
	struct sim_obs *o = calloc(1, sizeof *o);
	assert_non_null(o);
	struct simnet_cfg cfg = { .n = n, .family = family, .base_port = 20000, .lat_min_ms = 5,
				  .lat_max_ms = 40, .seed = 12345, .hook_ctx = o,
				  .on_peers = obs_peers, .on_done = obs_done };
	struct simnet *net = simnet_new(&cfg);
	assert_non_null(net);
	/* Everyone knows only node 0, and joins over 10 seconds. */
	struct sockaddr_storage boot;
	socklen_t blen = simnet_addr(net, 0, &boot);
	for (size_t i = 1; i < n; i++) {
		simnet_run(net, i * 10000 / n);
		assert_int_equal(dht_ping_node(simnet_dht(net, i), (struct sockaddr *)&boot, blen,
					       simnet_now(net)), 0);
		simnet_poke(net, i);
	}
	simnet_run(net, 120000);
	size_t well_connected = 0;
	for (size_t i = 0; i < n; i++) {
		struct dht_stats st;
		dht_get_stats(simnet_dht(net, i), &st, simnet_now(net));
		well_connected += st.nodes_good >= DHT_K;
		assert_int_equal(st.malformed, 0);
	}
	assert_true(well_connected >= n * 9 / 10);

	/* The announcer publishes itself (implied port) ... */
	memcpy(o->key, "shoal-sim-test-key-1", DHT_ID_LEN);
	o->watch = announcer;
	assert_int_equal(dht_get_peers(simnet_dht(net, announcer), o->key, true, 0, true,
				       simnet_now(net)), 0);
	simnet_poke(net, announcer);
	assert_true(simnet_run_while(net, &o->done, simnet_now(net) + 60000));
	assert_int_equal(o->s.status, 0);
	assert_true(o->s.announced >= DHT_K / 2);
	assert_true(o->s.responded >= DHT_K);

	/* ... and the seeker, which never talked to it directly, finds it. */
	o->done = false;
	o->nfound = 0;
	o->watch = seeker;
	assert_int_equal(dht_get_peers(simnet_dht(net, seeker), o->key, false, 0, false,
				       simnet_now(net)), 0);
	simnet_poke(net, seeker);
	assert_true(simnet_run_while(net, &o->done, simnet_now(net) + 60000));
	assert_int_equal(o->s.status, 0);
	bool found = false;
	for (size_t i = 0; i < o->nfound; i++)
		found |= o->found[i] == cfg.base_port + announcer;
	assert_true(found);
	assert_true(o->s.hops >= 1);
	assert_true(o->s.elapsed_ms < 10000);
	uint64_t sent, dropped;
	simnet_counts(net, &sent, &dropped);
	print_message("%zu nodes: %zu well connected, lookup %u queries %u hops %llu ms, %llu datagrams\n",
		      n, well_connected, o->s.queries, o->s.hops, (unsigned long long)o->s.elapsed_ms,
		      (unsigned long long)sent);
	simnet_free(net);
	free(o);
}

static void test_sim_ipv4(void **state)
{
	(void)state;
	run_network(AF_INET, 100, 17, 63);
}

static void test_sim_ipv6(void **state)
{
	(void)state;
	run_network(AF_INET6, 40, 5, 33);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_live_node),
		cmocka_unit_test(test_rate_limit),
		cmocka_unit_test(test_timeouts_and_export),
		cmocka_unit_test(test_sim_ipv4),
		cmocka_unit_test(test_sim_ipv6),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
