/* test_dht_table.c: XOR metric, bucket splitting, node states and
 * replacement in the DHT routing table. */
#include "config.h"

#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "dht/dht-internal.h"

static void id_with_prefix(uint8_t out[DHT_ID_LEN], const uint8_t self[DHT_ID_LEN],
			   unsigned prefix, uint8_t fill)
{
	/* Shares exactly `prefix` leading bits with self (prefix < 160). */
	memset(out, fill, DHT_ID_LEN);
	for (unsigned b = 0; b <= prefix; b++) {
		uint8_t mask = (uint8_t)(0x80u >> (b % 8));
		int bit = (self[b / 8] & mask) != 0;
		if (b == prefix)
			bit = !bit;
		if (bit)
			out[b / 8] |= mask;
		else
			out[b / 8] &= (uint8_t)~mask;
	}
}

static struct dht_addr lo(uint16_t port)
{
	struct dht_addr a;
	memset(&a, 0, sizeof a);
	a.family = AF_INET;
	a.port = port;
	a.ip[0] = 127;
	a.ip[3] = 1;
	return a;
}

static void test_xor_metric(void **state)
{
	(void)state;
	uint8_t t[DHT_ID_LEN] = { 0 }, a[DHT_ID_LEN] = { 0 }, b[DHT_ID_LEN] = { 0 };
	a[19] = 1;     /* distance 1 */
	b[0] = 0x80;   /* distance 2^159 */
	assert_true(dht_id_cmp_dist(t, a, b) < 0);
	assert_true(dht_id_cmp_dist(t, b, a) > 0);
	assert_int_equal(dht_id_cmp_dist(t, a, a), 0);
	/* Distance is XOR, not numeric difference: from 0x7f.., 0x80.. is
	 * farther than 0x00.. although numerically adjacent. */
	memset(t, 0, sizeof t);
	t[0] = 0x7f;
	memset(a, 0, sizeof a);
	memset(b, 0, sizeof b);
	b[0] = 0x80;
	assert_true(dht_id_cmp_dist(t, a, b) < 0);
	uint8_t x[DHT_ID_LEN];
	dht_id_xor(x, t, b);
	assert_int_equal(x[0], 0xff);
	assert_int_equal(dht_id_prefix(a, a), 160);
	assert_int_equal(dht_id_prefix(a, b), 0);
	b[0] = 0;
	b[19] = 1;
	assert_int_equal(dht_id_prefix(a, b), 159);
	b[19] = 0;
	b[2] = 0x10;
	assert_int_equal(dht_id_prefix(a, b), 19);
}

static void test_split(void **state)
{
	(void)state;
	uint8_t self[DHT_ID_LEN];
	memset(self, 0x5a, sizeof self);
	struct dht_table t;
	assert_int_equal(dht_table_init(&t, self), 0);
	struct dht_node ping;
	uint16_t port = 1000;
	/* k nodes far from us (prefix 0) fill the single bucket ... */
	for (int i = 0; i < DHT_K; i++) {
		uint8_t id[DHT_ID_LEN];
		id_with_prefix(id, self, 0, (uint8_t)i);
		struct dht_addr a = lo(port++);
		assert_int_equal(dht_table_seen(&t, id, &a, DHT_SEEN_REPLY, 10, &ping), 0);
	}
	assert_int_equal(t.nb, 1);
	/* ... a closer one splits it: the far nodes stay in bucket 0. */
	uint8_t near[DHT_ID_LEN];
	id_with_prefix(near, self, 5, 0x11);
	struct dht_addr na = lo(port++);
	assert_int_equal(dht_table_seen(&t, near, &na, DHT_SEEN_REPLY, 10, &ping), 0);
	assert_int_equal(t.nb, 2);
	assert_int_equal(t.b[0].n, DHT_K);
	assert_int_equal(t.b[1].n, 1);
	assert_int_equal(dht_table_bucket_of(&t, near), 1);
	/* A ninth far node cannot split bucket 0 (it does not hold our id):
	 * all are good, so it is only remembered as a candidate. */
	uint8_t far[DHT_ID_LEN];
	id_with_prefix(far, self, 0, 0xee);
	struct dht_addr fa = lo(port++);
	assert_int_equal(dht_table_seen(&t, far, &fa, DHT_SEEN_REPLY, 20, &ping), -ENOSPC);
	assert_int_equal(t.b[0].n, DHT_K);
	assert_int_equal(t.b[0].nrepl, 1);
	assert_null(dht_table_find(&t, far));
	/* Nodes close to us keep splitting the last bucket, one per prefix. */
	for (unsigned p = 1; p < 40; p++) {
		for (int j = 0; j < 3; j++) {
			uint8_t id[DHT_ID_LEN];
			id_with_prefix(id, self, p, (uint8_t)(j * 37 + 1));
			struct dht_addr a = lo(port++);
			int rc = dht_table_seen(&t, id, &a, DHT_SEEN_REPLY, 30, &ping);
			assert_true(rc == 0 || rc == -EEXIST);
		}
	}
	for (size_t i = 0; i + 1 < t.nb; i++)
		for (size_t j = 0; j < t.b[i].n; j++)
			assert_int_equal(dht_id_prefix(self, t.b[i].nodes[j].id), i);
	assert_true(t.nb >= 30);
	/* Our own id is never inserted. */
	struct dht_addr sa = lo(1);
	assert_int_equal(dht_table_seen(&t, self, &sa, DHT_SEEN_REPLY, 30, &ping), -EINVAL);
	dht_table_destroy(&t);
}

static void test_states_and_replacement(void **state)
{
	(void)state;
	uint8_t self[DHT_ID_LEN] = { 0 };
	struct dht_table t;
	assert_int_equal(dht_table_init(&t, self), 0);
	struct dht_node ping;
	uint8_t ids[DHT_K][DHT_ID_LEN];
	/* Fill bucket 0 with "far" nodes replied at t=0 (first bit set). */
	for (int i = 0; i < DHT_K; i++) {
		memset(ids[i], 0, DHT_ID_LEN);
		ids[i][0] = 0x80;
		ids[i][19] = (uint8_t)i;
		struct dht_addr a = lo((uint16_t)(2000 + i)); /* one IP, many ports */
		assert_int_equal(dht_table_seen(&t, ids[i], &a, DHT_SEEN_REPLY, 0, &ping), 0);
	}
	/* A near node splits; then bucket 0 is full of good far nodes. */
	uint8_t near[DHT_ID_LEN] = { 0 };
	near[19] = 7;
	struct dht_addr na = lo(3000);
	assert_int_equal(dht_table_seen(&t, near, &na, DHT_SEEN_REPLY, 0, &ping), 0);
	struct dht_node *n0 = dht_table_find(&t, ids[0]);
	assert_non_null(n0);
	assert_true(dht_node_good(n0, DHT_GOOD_MS - 1));
	assert_false(dht_node_good(n0, DHT_GOOD_MS)); /* questionable after 15 min */
	/* Queried us recently after having replied once: good again. */
	struct dht_addr a0 = lo(2000);
	assert_int_equal(dht_table_seen(&t, ids[0], &a0, DHT_SEEN_QUERY, DHT_GOOD_MS + 5, &ping), 0);
	assert_true(dht_node_good(n0, DHT_GOOD_MS + 6));
	/* The same id from another address is ignored while the old one works. */
	struct dht_addr other = lo(9999);
	assert_int_equal(dht_table_seen(&t, ids[0], &other, DHT_SEEN_REPLY, 100, &ping), -EEXIST);
	/* At 16 min a newcomer finds questionable nodes: one gets pinged. */
	uint64_t now = DHT_GOOD_MS + 60000;
	uint8_t fresh[DHT_ID_LEN] = { 0 };
	fresh[0] = 0x80;
	fresh[19] = 0x77;
	struct dht_addr fa = lo(4000);
	assert_int_equal(dht_table_seen(&t, fresh, &fa, DHT_SEEN_REPLY, now, &ping), 1);
	assert_memory_not_equal(ping.id, ids[0], DHT_ID_LEN); /* ids[0] is still good */
	assert_null(dht_table_find(&t, fresh));
	/* It does not answer: after DHT_MAX_FAILS it is bad and replaced. */
	for (int f = 0; f < DHT_MAX_FAILS; f++)
		dht_table_failed(&t, ping.id, &ping.addr);
	assert_null(dht_table_find(&t, ping.id));
	struct dht_node *fn = dht_table_find(&t, fresh);
	assert_non_null(fn);
	assert_true(dht_node_good(fn, now));
	/* closest(): ordered by XOR distance, never bad nodes. */
	struct dht_node out[4];
	size_t n = dht_table_closest(&t, near, out, 4);
	assert_int_equal(n, 4);
	assert_memory_equal(out[0].id, near, DHT_ID_LEN);
	for (size_t i = 1; i < n; i++)
		assert_true(dht_id_cmp_dist(near, out[i - 1].id, out[i].id) < 0);
	size_t good, total;
	dht_table_count(&t, now, &good, &total);
	assert_int_equal(total, DHT_K + 1);
	dht_table_destroy(&t);
}

static void test_restart_new_id(void **state)
{
	(void)state;
	uint8_t self[DHT_ID_LEN] = { 0 };
	struct dht_table t;
	assert_int_equal(dht_table_init(&t, self), 0);
	struct dht_node ping;
	uint8_t a_id[DHT_ID_LEN], b_id[DHT_ID_LEN];
	memset(a_id, 0xaa, sizeof a_id);
	memset(b_id, 0xbb, sizeof b_id);
	struct dht_addr a = lo(5000);
	assert_int_equal(dht_table_seen(&t, a_id, &a, DHT_SEEN_REPLY, 0, &ping), 0);
	/* The endpoint answers under a new id: the old entry becomes bad. */
	assert_int_equal(dht_table_seen(&t, b_id, &a, DHT_SEEN_REPLY, 1, &ping), 0);
	assert_true(dht_node_bad(dht_table_find(&t, a_id)));
	size_t good, total;
	dht_table_count(&t, 1, &good, &total);
	assert_int_equal(total, 1);
	dht_table_destroy(&t);
}

static void test_random_in_bucket(void **state)
{
	(void)state;
	uint8_t self[DHT_ID_LEN];
	memset(self, 0x33, sizeof self);
	struct dht_table t;
	assert_int_equal(dht_table_init(&t, self), 0);
	struct dht_node ping;
	uint16_t port = 100;
	for (unsigned p = 0; p < 12; p++)
		for (int j = 0; j < DHT_K; j++) {
			uint8_t id[DHT_ID_LEN];
			id_with_prefix(id, self, p, (uint8_t)(j * 29 + 3));
			struct dht_addr a = lo(port++);
			int rc = dht_table_seen(&t, id, &a, DHT_SEEN_REPLY, 0, &ping);
			assert_true(rc == 0 || rc == -ENOSPC);
		}
	assert_true(t.nb > 5);
	for (size_t i = 0; i < t.nb; i++) {
		uint8_t r[DHT_ID_LEN], out[DHT_ID_LEN];
		memset(r, (int)(i * 17 + 5), sizeof r);
		dht_table_random_in_bucket(&t, i, r, out);
		assert_int_equal(dht_table_bucket_of(&t, out), i);
	}
	dht_table_destroy(&t);
}

static void test_addr(void **state)
{
	(void)state;
	struct sockaddr_in6 s6;
	memset(&s6, 0, sizeof s6);
	s6.sin6_family = AF_INET6;
	s6.sin6_port = htons(6881);
	s6.sin6_addr.s6_addr[10] = 0xff;
	s6.sin6_addr.s6_addr[11] = 0xff;
	s6.sin6_addr.s6_addr[12] = 10;
	s6.sin6_addr.s6_addr[15] = 7;
	struct dht_addr a;
	assert_int_equal(dht_addr_from_sa(&a, (struct sockaddr *)&s6, sizeof s6), 0);
	assert_int_equal(a.family, AF_INET); /* v4-mapped becomes IPv4 */
	assert_int_equal(a.ip[0], 10);
	assert_int_equal(a.port, 6881);
	struct sockaddr_storage ss;
	assert_int_equal(dht_addr_to_sa(&a, &ss), sizeof(struct sockaddr_in));
	s6.sin6_port = 0;
	assert_int_equal(dht_addr_from_sa(&a, (struct sockaddr *)&s6, sizeof s6), -EAFNOSUPPORT);
	assert_int_equal(dht_addr_from_sa(&a, (struct sockaddr *)&s6, 4), -EAFNOSUPPORT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_xor_metric),
		cmocka_unit_test(test_split),
		cmocka_unit_test(test_states_and_replacement),
		cmocka_unit_test(test_restart_new_id),
		cmocka_unit_test(test_random_in_bucket),
		cmocka_unit_test(test_addr),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
