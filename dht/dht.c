/* dht.c: one Mainline DHT instance (BEP 5): answers queries, runs iterative
 * lookups and announces, keeps transactions, drives maintenance from the
 * embedder's clock. */
#include "config.h"

#include <errno.h>
#include <netinet/in.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "dht/dht-internal.h"

enum cand_state { CAND_NEW = 0, CAND_INFLIGHT, CAND_REPLIED, CAND_FAILED };
enum ann_state { ANN_NONE = 0, ANN_SENT, ANN_OK, ANN_FAILED };
enum lookup_kind { LK_USER, LK_SELF, LK_REFRESH };

/* A node a lookup has heard of, kept sorted by distance to the target. */
struct dht_cand {
	uint8_t id[DHT_ID_LEN];
	struct dht_addr addr;
	uint8_t state, ann, depth, token_len;
	uint8_t token[DHT_MAX_TOKEN];
};

struct dht_lookup {
	uint8_t target[DHT_ID_LEN];
	enum lookup_kind kind;
	enum krpc_q q;
	bool announce, implied_port, announcing;
	uint16_t port;
	uint32_t gen;
	uint64_t started;
	unsigned queries, responded, peers, announced;
	size_t ncand;
	struct dht_cand cand[DHT_LOOKUP_CANDS];
};

/* An outstanding query.  Its transaction id on the wire is the slot index
 * and a random nonce (2 bytes each), and the answer must come from `addr`. */
struct dht_tx {
	bool used, id_known;
	uint8_t q, retries;
	uint16_t nonce;
	uint8_t id[DHT_ID_LEN];
	struct dht_addr addr;
	uint64_t deadline;
	int lookup; /* slot in dht->lk, or -1 */
	uint32_t lookup_gen;
};

#define DHT_TID_LEN 4

struct dht {
	struct dht_config cfg;
	struct dht_callbacks cb;
	void *ctx;
	uint8_t id[DHT_ID_LEN];
	bool started;
	struct dht_table table;
	struct dht_tokens tokens;
	struct dht_store store;
	struct dht_ratelimit rl;
	struct dht_tx *tx;
	size_t ntx, tx_hint;
	struct dht_lookup **lk; /* max_lookups user slots + self + refresh */
	size_t nlk;
	uint32_t lk_gen;
	struct buf out;
	uint64_t next_maint, last_bootstrap;
	bool bootstrapped, joined;
	size_t values_offset;
	struct dht_stats st;
};

static void sodium_random(void *ctx, void *buf, size_t n)
{
	(void)ctx;
	randombytes_buf(buf, n);
}

static void rnd(struct dht *dht, void *buf, size_t n)
{
	dht->cb.random_bytes(dht->ctx, buf, n);
}

void dht_config_default(struct dht_config *cfg)
{
	memset(cfg, 0, sizeof *cfg);
	cfg->family = AF_INET;
	cfg->max_lookups = 16;
	cfg->max_transactions = 256;
	cfg->store_max_keys = 2048;
	cfg->store_max_per_key = 100;
	cfg->store_max_peers = 16384;
	cfg->rate_per_s = 20;
	cfg->rate_burst = 60;
}

struct dht *dht_new(const struct dht_config *cfg, const struct dht_callbacks *cb, void *ctx)
{
	if (!cfg || !cb || !cb->send || (cfg->family != AF_INET && cfg->family != AF_INET6) ||
	    cfg->max_transactions == 0 || cfg->max_transactions > 65535 || cfg->max_lookups == 0 ||
	    cfg->max_lookups > 4096 || cfg->store_max_per_key == 0)
		return NULL;
	if (sodium_init() < 0)
		return NULL;
	struct dht *dht = calloc(1, sizeof *dht);
	if (!dht)
		return NULL;
	dht->cfg = *cfg;
	dht->cb = *cb;
	if (!dht->cb.random_bytes)
		dht->cb.random_bytes = sodium_random;
	dht->ctx = ctx;
	if (cfg->has_id)
		memcpy(dht->id, cfg->id, DHT_ID_LEN);
	else
		rnd(dht, dht->id, DHT_ID_LEN);
	uint8_t k1[16], k2[16];
	rnd(dht, k1, sizeof k1);
	rnd(dht, k2, sizeof k2);
	buf_init(&dht->out, DHT_MAX_PACKET);
	dht->ntx = cfg->max_transactions;
	dht->nlk = cfg->max_lookups + 2;
	dht->tx = calloc(dht->ntx, sizeof *dht->tx);
	dht->lk = calloc(dht->nlk, sizeof *dht->lk);
	if (!dht->tx || !dht->lk || dht_table_init(&dht->table, dht->id) != 0)
		goto fail;
	if (dht_store_init(&dht->store, cfg->store_max_keys, cfg->store_max_per_key,
			   cfg->store_max_peers, k1) != 0)
		goto fail;
	dht_rl_init(&dht->rl, cfg->rate_per_s, cfg->rate_burst, cfg->rate_key_port,
		    cfg->global_rate_per_s, k2);
	return dht;
fail:
	dht_free(dht);
	return NULL;
}

void dht_free(struct dht *dht)
{
	if (!dht)
		return;
	for (size_t i = 0; dht->lk && i < dht->nlk; i++)
		free(dht->lk[i]);
	free(dht->lk);
	free(dht->tx);
	dht_table_destroy(&dht->table);
	dht_store_destroy(&dht->store);
	buf_destroy(&dht->out);
	sodium_memzero(&dht->tokens, sizeof dht->tokens);
	free(dht);
}

/* The first entry point to run fixes the start of the embedder's clock. */
static void ensure_started(struct dht *dht, uint64_t now)
{
	if (dht->started)
		return;
	dht->started = true;
	dht_tokens_init(&dht->tokens, now, dht->cb.random_bytes, dht->ctx);
	dht->next_maint = now;
}

/* ---- Sending ---- */

static void send_out(struct dht *dht, const struct dht_addr *to)
{
	struct sockaddr_storage ss;
	socklen_t len = dht_addr_to_sa(to, &ss);
	dht->st.packets_out++;
	/* A failed send is a lost datagram: the transaction will time out. */
	(void)dht->cb.send(dht->ctx, (const struct sockaddr *)&ss, len, dht->out.data,
			   dht->out.len);
}

static int tx_alloc(struct dht *dht)
{
	for (size_t k = 0; k < dht->ntx; k++) {
		size_t i = (dht->tx_hint + k) % dht->ntx;
		if (!dht->tx[i].used) {
			dht->tx_hint = (i + 1) % dht->ntx;
			return (int)i;
		}
	}
	return -EAGAIN;
}

static void tid_of(const struct dht *dht, size_t slot, uint8_t tid[DHT_TID_LEN])
{
	tid[0] = (uint8_t)(slot >> 8);
	tid[1] = (uint8_t)slot;
	tid[2] = (uint8_t)(dht->tx[slot].nonce >> 8);
	tid[3] = (uint8_t)dht->tx[slot].nonce;
}

/* Encode and send the query of transaction `slot` (also used to resend). */
static int tx_transmit(struct dht *dht, size_t slot, const struct krpc_query *kq)
{
	uint8_t tid[DHT_TID_LEN];
	tid_of(dht, slot, tid);
	buf_reset(&dht->out);
	int rc = krpc_put_query(&dht->out, tid, sizeof tid, kq);
	if (rc)
		return rc;
	send_out(dht, &dht->tx[slot].addr);
	return 0;
}

/* Send query `kq` to `to` (whose id we may know) for lookup `lookup` (or -1).
 * Returns 0, -EAGAIN when every transaction slot is busy, or an encoder error. */
static int send_query(struct dht *dht, const struct krpc_query *kq, const struct dht_addr *to,
		      const uint8_t *id, int lookup, uint64_t now)
{
	int slot = tx_alloc(dht);
	if (slot < 0)
		return slot;
	struct dht_tx *t = &dht->tx[slot];
	memset(t, 0, sizeof *t);
	t->used = true;
	rnd(dht, &t->nonce, sizeof t->nonce);
	t->q = (uint8_t)kq->q;
	t->retries = kq->q == KRPC_PING ? DHT_PING_RETRIES : 0;
	t->addr = *to;
	t->id_known = id != NULL;
	if (id)
		memcpy(t->id, id, DHT_ID_LEN);
	t->deadline = now + DHT_QUERY_TIMEOUT_MS;
	t->lookup = lookup;
	t->lookup_gen = lookup >= 0 ? dht->lk[lookup]->gen : 0;
	int rc = tx_transmit(dht, (size_t)slot, kq);
	if (rc)
		t->used = false;
	return rc;
}

static int send_ping(struct dht *dht, const struct dht_addr *to, const uint8_t *id, uint64_t now)
{
	struct krpc_query kq = { .q = KRPC_PING, .id = dht->id };
	return send_query(dht, &kq, to, id, -1, now);
}

/* Record a node; ping the questionable node the table wants checked. */
static void seen(struct dht *dht, const uint8_t id[DHT_ID_LEN], const struct dht_addr *a,
		 enum dht_seen how, uint64_t now)
{
	struct dht_node ping;
	if (dht_table_seen(&dht->table, id, a, how, now, &ping) == 1)
		(void)send_ping(dht, &ping.addr, ping.id, now);
}

/* ---- Answering queries (BEP 5 "DHT Queries") ---- */

/* The stats' index of a method (dht.h's enum dht_method), or -1 for one
 * we do not know. */
static int method_index(unsigned q)
{
	return q >= KRPC_PING && q <= KRPC_ANNOUNCE_PEER ? (int)(q - KRPC_PING) : -1;
}

static void count_received(struct dht *dht, enum krpc_q q, bool refused)
{
	int i = method_index(q);
	if (i >= 0)
		dht->st.received[i][refused]++;
}

static void count_sent(struct dht *dht, unsigned q, enum dht_result how)
{
	int i = method_index(q);
	if (i >= 0)
		dht->st.sent[i][how]++;
}

/* Every query refused is answered here (and counted). */
static void reply_error(struct dht *dht, const struct krpc_msg *m, const struct dht_addr *to,
			int code, const char *msg)
{
	count_received(dht, m->q, true);
	buf_reset(&dht->out);
	if (krpc_put_error(&dht->out, m->tid, m->tid_len, code, msg) == 0)
		send_out(dht, to);
}

/* The k closest nodes we know to `target`, in our family's compact form. */
static size_t closest_compact(struct dht *dht, const uint8_t target[DHT_ID_LEN],
			      uint8_t out[DHT_K * KRPC_NODE6_LEN])
{
	struct dht_node nodes[DHT_K];
	size_t n = dht_table_closest(&dht->table, target, nodes, DHT_K), len = 0;
	for (size_t i = 0; i < n; i++)
		len += krpc_compact_node(out + len, nodes[i].id, &nodes[i].addr);
	return len;
}

static void handle_query(struct dht *dht, const struct krpc_msg *m, const struct dht_addr *from,
			 uint64_t now)
{
	if (!m->has_id) {
		dht->st.malformed++;
		reply_error(dht, m, from, KRPC_E_PROTOCOL, "missing id");
		return;
	}
	/* BEP 43: read-only nodes query but are never queried back. */
	if (!m->read_only)
		seen(dht, m->id, from, DHT_SEEN_QUERY, now);
	uint8_t nodes[DHT_K * KRPC_NODE6_LEN];
	uint8_t token[DHT_TOKEN_LEN];
	struct dht_addr values[DHT_MAX_VALUES];
	struct krpc_reply r = { .id = dht->id, .ip = from };
	bool v6 = dht->cfg.family == AF_INET6;
	switch (m->q) {
	case KRPC_PING:
		break;
	case KRPC_FIND_NODE:
	case KRPC_GET_PEERS: {
		if (!m->has_target) {
			dht->st.malformed++;
			reply_error(dht, m, from, KRPC_E_PROTOCOL,
				    m->q == KRPC_FIND_NODE ? "missing target" : "missing info_hash");
			return;
		}
		size_t len = closest_compact(dht, m->target, nodes);
		if (v6) {
			r.nodes6 = nodes;
			r.nodes6_len = len;
		} else {
			r.nodes = nodes;
			r.nodes_len = len;
		}
		if (m->q == KRPC_GET_PEERS) {
			dht_tokens_advance(&dht->tokens, now, dht->cb.random_bytes, dht->ctx);
			dht_token_make(&dht->tokens, from, token);
			r.token = token;
			r.token_len = sizeof token;
			r.values = values;
			r.nvalues = dht_store_get(&dht->store, m->target, now,
						  dht->values_offset++, values, DHT_MAX_VALUES);
		}
		break;
	}
	case KRPC_ANNOUNCE_PEER: {
		if (!m->has_target || !m->token || (!m->implied_port && !m->has_port)) {
			dht->st.malformed++;
			reply_error(dht, m, from, KRPC_E_PROTOCOL, "missing argument");
			return;
		}
		dht_tokens_advance(&dht->tokens, now, dht->cb.random_bytes, dht->ctx);
		if (!dht_token_check(&dht->tokens, from, m->token, m->token_len)) {
			reply_error(dht, m, from, KRPC_E_PROTOCOL, "bad token");
			return;
		}
		struct dht_addr peer = *from;
		if (!m->implied_port)
			peer.port = m->port;
		if (peer.port == 0) {
			reply_error(dht, m, from, KRPC_E_PROTOCOL, "bad port");
			return;
		}
		int rc = dht_store_add(&dht->store, m->target, &peer, now);
		if (rc) {
			reply_error(dht, m, from, KRPC_E_SERVER, "store full");
			return;
		}
		break;
	}
	default:
		reply_error(dht, m, from, KRPC_E_METHOD, "method unknown");
		return;
	}
	dht->st.queries_in++;
	count_received(dht, m->q, false);
	buf_reset(&dht->out);
	if (krpc_put_reply(&dht->out, m->tid, m->tid_len, &r) == 0)
		send_out(dht, from);
}

/* ---- Lookups (BEP 5 iterative get_peers / find_node) ---- */

static struct dht_cand *cand_find(struct dht_lookup *l, const uint8_t id[DHT_ID_LEN])
{
	for (size_t i = 0; i < l->ncand; i++)
		if (memcmp(l->cand[i].id, id, DHT_ID_LEN) == 0)
			return &l->cand[i];
	return NULL;
}

/* Insert a candidate in distance order; when full, the farthest goes. */
static void cand_add(struct dht *dht, struct dht_lookup *l, const uint8_t id[DHT_ID_LEN],
		     const struct dht_addr *a, unsigned depth)
{
	if (a->family != dht->cfg.family || a->port == 0 || memcmp(id, dht->id, DHT_ID_LEN) == 0)
		return;
	size_t pos = l->ncand;
	for (size_t i = 0; i < l->ncand; i++) {
		struct dht_cand *c = &l->cand[i];
		if (memcmp(c->id, id, DHT_ID_LEN) == 0 || dht_addr_eq(&c->addr, a))
			return;
		if (pos == l->ncand && dht_id_cmp_dist(l->target, id, c->id) < 0)
			pos = i;
	}
	if (pos >= DHT_LOOKUP_CANDS)
		return;
	size_t n = l->ncand < DHT_LOOKUP_CANDS ? l->ncand : DHT_LOOKUP_CANDS - 1;
	memmove(&l->cand[pos + 1], &l->cand[pos], (n - pos) * sizeof l->cand[0]);
	struct dht_cand *c = &l->cand[pos];
	memset(c, 0, sizeof *c);
	memcpy(c->id, id, DHT_ID_LEN);
	c->addr = *a;
	c->depth = (uint8_t)(depth > 255 ? 255 : depth);
	if (l->ncand < DHT_LOOKUP_CANDS)
		l->ncand++;
}

static void lookup_finish(struct dht *dht, size_t slot, uint64_t now)
{
	struct dht_lookup *l = dht->lk[slot];
	dht->lk[slot] = NULL;
	if (l->kind == LK_SELF && l->responded && !dht->joined) {
		/* Kademlia's join: having found our neighbours, refresh every
		 * bucket farther out, or the far half of the id space stays
		 * unknown until someone from there happens to query us. */
		dht->joined = true;
		for (size_t i = 0; i + 1 < dht->table.nb; i++)
			dht->table.b[i].need_refresh = true;
	}
	if (l->kind == LK_USER) {
		struct dht_lookup_summary s = {
			.status = l->responded ? 0 : -ETIMEDOUT,
			.responded = l->responded,
			.queries = l->queries,
			.peers = l->peers,
			.announced = l->announced,
			.elapsed_ms = now - l->started,
		};
		for (size_t i = 0; i < l->ncand; i++)
			if (l->cand[i].state == CAND_REPLIED) {
				s.hops = l->cand[i].depth;
				break;
			}
		dht->st.lookups_done++;
		if (dht->cb.lookup_done)
			dht->cb.lookup_done(dht->ctx, l->target, &s);
	}
	free(l);
}

static void lookup_announce(struct dht *dht, size_t slot, uint64_t now)
{
	struct dht_lookup *l = dht->lk[slot];
	l->announcing = true;
	size_t k = 0;
	for (size_t i = 0; i < l->ncand && k < DHT_K; i++) {
		struct dht_cand *c = &l->cand[i];
		if (c->state != CAND_REPLIED)
			continue;
		k++;
		if (c->token_len == 0)
			continue;
		struct krpc_query kq = {
			.q = KRPC_ANNOUNCE_PEER,
			.id = dht->id,
			.target = l->target,
			.port = l->port,
			.implied_port = l->implied_port,
			.token = c->token,
			.token_len = c->token_len,
		};
		if (send_query(dht, &kq, &c->addr, c->id, (int)slot, now) == 0)
			c->ann = ANN_SENT;
	}
}

/* Keep DHT_ALPHA queries in flight towards the DHT_K closest candidates that
 * have not failed; when all of those have answered, announce or finish. */
static void lookup_step(struct dht *dht, size_t slot, uint64_t now)
{
	struct dht_lookup *l = dht->lk[slot];
	if (l->announcing) {
		for (size_t i = 0; i < l->ncand; i++)
			if (l->cand[i].ann == ANN_SENT)
				return;
		lookup_finish(dht, slot, now);
		return;
	}
	unsigned inflight = 0;
	for (size_t i = 0; i < l->ncand; i++)
		inflight += l->cand[i].state == CAND_INFLIGHT;
	bool pending = false;
	size_t window = 0;
	for (size_t i = 0; i < l->ncand && window < DHT_K; i++) {
		struct dht_cand *c = &l->cand[i];
		if (c->state == CAND_FAILED)
			continue;
		window++;
		if (c->state == CAND_INFLIGHT) {
			pending = true;
		} else if (c->state == CAND_NEW && l->queries < DHT_LOOKUP_MAX_QUERIES) {
			pending = true;
			if (inflight >= DHT_ALPHA)
				continue;
			struct krpc_query kq = { .q = l->q, .id = dht->id, .target = l->target };
			int rc = send_query(dht, &kq, &c->addr, c->id, (int)slot, now);
			if (rc == 0) {
				c->state = CAND_INFLIGHT;
				inflight++;
				l->queries++;
			} else if (rc != -EAGAIN) {
				c->state = CAND_FAILED;
			}
		}
	}
	if (pending)
		return;
	if (l->announce && l->responded) {
		lookup_announce(dht, slot, now);
		for (size_t i = 0; i < l->ncand; i++)
			if (l->cand[i].ann == ANN_SENT)
				return;
	}
	lookup_finish(dht, slot, now);
}

static int lookup_start(struct dht *dht, size_t slot, enum lookup_kind kind,
			const uint8_t target[DHT_ID_LEN], uint64_t now)
{
	struct dht_node seeds[DHT_LOOKUP_CANDS / 2];
	size_t n = dht_table_closest(&dht->table, target, seeds, DHT_LOOKUP_CANDS / 2);
	if (n == 0)
		return -ENETUNREACH;
	struct dht_lookup *l = calloc(1, sizeof *l);
	if (!l)
		return -ENOMEM;
	memcpy(l->target, target, DHT_ID_LEN);
	l->kind = kind;
	l->q = kind == LK_USER ? KRPC_GET_PEERS : KRPC_FIND_NODE;
	l->gen = ++dht->lk_gen;
	l->started = now;
	for (size_t i = 0; i < n; i++)
		cand_add(dht, l, seeds[i].id, &seeds[i].addr, 1);
	dht->lk[slot] = l;
	return 0;
}

/* Internal lookups live in the two slots after the embedder's. */
static size_t self_slot(const struct dht *dht)
{
	return dht->nlk - 2;
}

static size_t refresh_slot(const struct dht *dht)
{
	return dht->nlk - 1;
}

static void maybe_bootstrap(struct dht *dht, uint64_t now)
{
	size_t good, total;
	size_t s = self_slot(dht);
	if (dht->lk[s])
		return;
	if (dht->bootstrapped && now - dht->last_bootstrap < DHT_BOOTSTRAP_MS)
		return;
	dht_table_count(&dht->table, now, &good, &total);
	if (good >= DHT_K)
		return;
	if (lookup_start(dht, s, LK_SELF, dht->id, now) == 0) {
		dht->bootstrapped = true;
		dht->last_bootstrap = now;
		lookup_step(dht, s, now);
	}
}

int dht_get_peers(struct dht *dht, const uint8_t key[DHT_ID_LEN], bool announce, uint16_t port,
		  bool implied_port, uint64_t now)
{
	ensure_started(dht, now);
	size_t free_slot = SIZE_MAX;
	for (size_t i = 0; i < dht->cfg.max_lookups; i++) {
		struct dht_lookup *l = dht->lk[i];
		if (!l) {
			if (free_slot == SIZE_MAX)
				free_slot = i;
		} else if (memcmp(l->target, key, DHT_ID_LEN) == 0) {
			return -EALREADY;
		}
	}
	if (free_slot == SIZE_MAX)
		return -ENOSPC;
	if (announce && !implied_port && port == 0)
		return -EINVAL;
	int rc = lookup_start(dht, free_slot, LK_USER, key, now);
	if (rc)
		return rc;
	struct dht_lookup *l = dht->lk[free_slot];
	l->announce = announce;
	l->port = port;
	l->implied_port = implied_port;
	lookup_step(dht, free_slot, now);
	return 0;
}

/* ---- Replies and errors to our queries ---- */

static void deliver_values(struct dht *dht, struct dht_lookup *l, const struct krpc_msg *m)
{
	struct sockaddr_storage peers[KRPC_MAX_VALUES];
	size_t n = 0;
	for (size_t i = 0; i < m->nvalues; i++)
		if (m->values[i].family == dht->cfg.family && m->values[i].port != 0)
			dht_addr_to_sa(&m->values[i], &peers[n++]);
	if (n == 0)
		return;
	l->peers += (unsigned)n;
	if (dht->cb.peers_found)
		dht->cb.peers_found(dht->ctx, l->target, peers, n);
}

static int handle_reply(struct dht *dht, const struct krpc_msg *m, const struct dht_addr *from,
			uint64_t now)
{
	if (m->tid_len != DHT_TID_LEN) {
		dht->st.unexpected++;
		return -ENOENT;
	}
	size_t slot = (size_t)m->tid[0] << 8 | m->tid[1];
	uint16_t nonce = (uint16_t)(m->tid[2] << 8 | m->tid[3]);
	if (slot >= dht->ntx || !dht->tx[slot].used || dht->tx[slot].nonce != nonce ||
	    !dht_addr_eq(&dht->tx[slot].addr, from)) {
		dht->st.unexpected++;
		return -ENOENT;
	}
	struct dht_tx t = dht->tx[slot];
	dht->tx[slot].used = false;
	count_sent(dht, t.q, m->y == KRPC_ERROR ? DHT_RESULT_ERROR : DHT_RESULT_OK);

	bool ok = m->y == KRPC_RESPONSE && memcmp(m->id, dht->id, DHT_ID_LEN) != 0;
	if (ok) {
		seen(dht, m->id, from, DHT_SEEN_REPLY, now);
		/* A node answering under another id than we asked for cannot
		 * serve the lookup that wanted the old one. */
		if (t.id_known && memcmp(t.id, m->id, DHT_ID_LEN) != 0)
			ok = false;
		/* BEP 42: only from an answer to our own query (its transaction,
		 * source and id checked above), so a forged datagram cannot vote,
		 * and only of our own family (the address it saw us at). */
		int fam = m->ip_len == 6 ? AF_INET : AF_INET6;
		if (ok && m->ip && dht->cb.external_addr && fam == dht->cfg.family) {
			struct sockaddr_storage ss;
			socklen_t len = dht_addr_to_sa(from, &ss);
			dht->cb.external_addr(dht->ctx, (const struct sockaddr *)&ss, len, fam,
					      m->ip);
		}
	} else if (t.id_known && m->y == KRPC_ERROR) {
		/* It answered, so it is alive, even though it refused. */
		seen(dht, t.id, from, DHT_SEEN_REPLY, now);
	}
	if (t.q == KRPC_PING && ok && !t.id_known)
		maybe_bootstrap(dht, now);
	if (t.lookup < 0)
		return 0;
	struct dht_lookup *l = dht->lk[t.lookup];
	if (!l || l->gen != t.lookup_gen)
		return 0;
	struct dht_cand *c = cand_find(l, t.id);
	if (!c) {
		/* Pushed out by closer nodes meanwhile: nothing to record, but
		 * a query slot is free again. */
		lookup_step(dht, (size_t)t.lookup, now);
		return 0;
	}
	if (t.q == KRPC_ANNOUNCE_PEER) {
		if (c->ann == ANN_SENT) {
			c->ann = ok ? ANN_OK : ANN_FAILED;
			l->announced += ok;
		}
	} else if (c->state == CAND_INFLIGHT) {
		if (!ok) {
			c->state = CAND_FAILED;
		} else {
			c->state = CAND_REPLIED;
			l->responded++;
			if (m->token && m->token_len > 0 && m->token_len <= DHT_MAX_TOKEN) {
				memcpy(c->token, m->token, m->token_len);
				c->token_len = (uint8_t)m->token_len;
			}
			unsigned depth = c->depth + 1u;
			if (l->kind == LK_USER && m->nvalues)
				deliver_values(dht, l, m);
			/* deliver_values may start lookups but never ends this one. */
			const uint8_t *nodes = dht->cfg.family == AF_INET ? m->nodes : m->nodes6;
			size_t elen = dht->cfg.family == AF_INET ? KRPC_NODE4_LEN : KRPC_NODE6_LEN;
			size_t cnt = (dht->cfg.family == AF_INET ? m->nodes_len : m->nodes6_len) / elen;
			for (size_t i = 0; i < cnt; i++) {
				uint8_t id[DHT_ID_LEN];
				struct dht_addr a;
				krpc_read_node(nodes, elen, i, id, &a);
				cand_add(dht, l, id, &a, depth);
			}
		}
	}
	lookup_step(dht, (size_t)t.lookup, now);
	return 0;
}

int dht_receive(struct dht *dht, const struct sockaddr *from, socklen_t from_len,
		const uint8_t *buf, size_t n, uint64_t now)
{
	ensure_started(dht, now);
	dht->st.packets_in++;
	struct dht_addr a;
	if (dht_addr_from_sa(&a, from, from_len) != 0 || a.family != dht->cfg.family)
		return -EAFNOSUPPORT;
	if (n > DHT_MAX_PACKET) {
		dht->st.malformed++;
		return -EMSGSIZE;
	}
	if (!dht_rl_allow(&dht->rl, &a, now)) {
		dht->st.rate_limited++;
		return -EAGAIN;
	}
	struct krpc_msg m;
	if (krpc_decode(&m, buf, buf + n) != 0) {
		dht->st.malformed++;
		return -EILSEQ;
	}
	if (m.y == KRPC_QUERY) {
		if (m.has_id && memcmp(m.id, dht->id, DHT_ID_LEN) == 0)
			return 0; /* our own query came back */
		handle_query(dht, &m, &a, now);
		return 0;
	}
	return handle_reply(dht, &m, &a, now);
}

/* ---- Bootstrap helpers, export ---- */

int dht_ping_node(struct dht *dht, const struct sockaddr *sa, socklen_t sa_len, uint64_t now)
{
	ensure_started(dht, now);
	struct dht_addr a;
	if (dht_addr_from_sa(&a, sa, sa_len) != 0 || a.family != dht->cfg.family)
		return -EAFNOSUPPORT;
	return send_ping(dht, &a, NULL, now);
}

int dht_add_node(struct dht *dht, const uint8_t id[DHT_ID_LEN], const struct sockaddr *sa,
		 socklen_t sa_len, uint64_t now)
{
	ensure_started(dht, now);
	struct dht_addr a;
	if (dht_addr_from_sa(&a, sa, sa_len) != 0 || a.family != dht->cfg.family)
		return -EAFNOSUPPORT;
	if (dht_table_find(&dht->table, id))
		return -EEXIST;
	struct dht_node unused;
	int rc = dht_table_seen(&dht->table, id, &a, DHT_SEEN_UNVERIFIED, now, &unused);
	return rc > 0 ? 0 : rc;
}

size_t dht_export_nodes(const struct dht *dht, struct dht_node_info *out, size_t cap,
			uint64_t now)
{
	size_t n = 0;
	for (int pass = 0; pass < 2; pass++)
		for (size_t i = 0; i < dht->table.nb; i++)
			for (size_t j = 0; j < dht->table.b[i].n && n < cap; j++) {
				const struct dht_node *nd = &dht->table.b[i].nodes[j];
				bool good = dht_node_good(nd, now);
				if (dht_node_bad(nd) || good != (pass == 0))
					continue;
				memcpy(out[n].id, nd->id, DHT_ID_LEN);
				dht_addr_to_sa(&nd->addr, &out[n].addr);
				out[n].good = good;
				n++;
			}
	return n;
}

/* ---- Time ---- */

static void tx_expire(struct dht *dht, uint64_t now)
{
	for (size_t i = 0; i < dht->ntx; i++) {
		struct dht_tx *t = &dht->tx[i];
		if (!t->used || t->deadline > now)
			continue;
		dht->st.timeouts++;
		count_sent(dht, t->q, DHT_RESULT_TIMEOUT);
		if (t->id_known)
			dht_table_failed(&dht->table, t->id, &t->addr);
		if (t->retries > 0) {
			/* Only pings are resent; the same transaction id stays valid. */
			t->retries--;
			t->deadline = now + DHT_QUERY_TIMEOUT_MS;
			struct krpc_query kq = { .q = KRPC_PING, .id = dht->id };
			if (tx_transmit(dht, i, &kq) == 0)
				continue;
		}
		struct dht_tx copy = *t;
		t->used = false;
		if (copy.lookup < 0)
			continue;
		struct dht_lookup *l = dht->lk[copy.lookup];
		if (!l || l->gen != copy.lookup_gen)
			continue;
		struct dht_cand *c = cand_find(l, copy.id);
		if (c && copy.q == KRPC_ANNOUNCE_PEER && c->ann == ANN_SENT)
			c->ann = ANN_FAILED;
		else if (c && c->state == CAND_INFLIGHT)
			c->state = CAND_FAILED;
		lookup_step(dht, (size_t)copy.lookup, now);
	}
}

static bool refresh_due(const struct dht_bucket *b, uint64_t now)
{
	if (b->need_refresh)
		return true;
	if (now < b->last_changed)
		return false;
	return now - b->last_changed >= (b->n == 0 ? DHT_REFRESH_EMPTY_MS : DHT_REFRESH_MS);
}

/* BEP 5: refresh a bucket that has not changed in 15 minutes by looking up a
 * random id inside it; one refresh lookup at a time. */
static void refresh(struct dht *dht, uint64_t now)
{
	size_t rs = refresh_slot(dht);
	if (dht->lk[rs])
		return;
	size_t pick = SIZE_MAX;
	for (size_t i = 0; i < dht->table.nb; i++) {
		const struct dht_bucket *b = &dht->table.b[i];
		if (!refresh_due(b, now))
			continue;
		if (b->need_refresh) {
			pick = i;
			break;
		}
		if (pick == SIZE_MAX || b->last_changed < dht->table.b[pick].last_changed)
			pick = i;
	}
	if (pick == SIZE_MAX)
		return;
	uint8_t r[DHT_ID_LEN], target[DHT_ID_LEN];
	rnd(dht, r, sizeof r);
	dht_table_random_in_bucket(&dht->table, pick, r, target);
	dht->table.b[pick].last_changed = now;
	dht->table.b[pick].need_refresh = false;
	if (lookup_start(dht, rs, LK_REFRESH, target, now) == 0)
		lookup_step(dht, rs, now);
}

static void maintain(struct dht *dht, uint64_t now)
{
	dht_tokens_advance(&dht->tokens, now, dht->cb.random_bytes, dht->ctx);
	dht_store_expire(&dht->store, now);
	maybe_bootstrap(dht, now);
}

int dht_periodic(struct dht *dht, uint64_t now, uint64_t *wait_ms_out)
{
	ensure_started(dht, now);
	tx_expire(dht, now);
	if (now >= dht->next_maint) {
		maintain(dht, now);
		dht->next_maint = now + DHT_MAINT_MS;
	}
	refresh(dht, now);
	/* Lookups stalled on a full transaction table resume here. */
	for (size_t i = 0; i < dht->nlk; i++)
		if (dht->lk[i])
			lookup_step(dht, i, now);
	uint64_t wake = now + DHT_TICK_MS;
	if (dht->next_maint < wake)
		wake = dht->next_maint;
	for (size_t i = 0; i < dht->ntx; i++)
		if (dht->tx[i].used && dht->tx[i].deadline < wake)
			wake = dht->tx[i].deadline;
	if (wait_ms_out)
		*wait_ms_out = wake > now ? wake - now : 0;
	return 0;
}

void dht_get_stats(const struct dht *dht, struct dht_stats *out, uint64_t now)
{
	*out = dht->st;
	memcpy(out->id, dht->id, DHT_ID_LEN);
	out->family = dht->cfg.family;
	dht_table_count(&dht->table, now, &out->nodes_good, &out->nodes_total);
	out->buckets = dht->table.nb;
	out->lookups_running = 0;
	size_t lk_bytes = 0;
	for (size_t i = 0; i < dht->nlk; i++)
		if (dht->lk[i]) {
			out->lookups_running++;
			lk_bytes += sizeof(struct dht_lookup);
		}
	out->keys_stored = dht->store.keys;
	out->peers_stored = dht->store.peers;
	out->memory_bytes = sizeof *dht + dht->table.cap * sizeof(struct dht_bucket) +
			    dht->store.bytes + dht->ntx * sizeof(struct dht_tx) +
			    dht->nlk * sizeof(struct dht_lookup *) + lk_bytes + dht->out.cap;
}
