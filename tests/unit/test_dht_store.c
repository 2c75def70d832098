/* test_dht_store.c: peer store expiry and its caps per key and in total. */
#include "config.h"

#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "dht/dht-internal.h"

static const uint8_t HK[16] = "0123456789abcdef";

static struct dht_addr peer(uint16_t port)
{
	struct dht_addr a = { .family = AF_INET, .port = port, .ip = { 127, 0, 0, 1 } };
	return a;
}

static void key_of(uint8_t key[DHT_ID_LEN], unsigned i)
{
	memset(key, 0, DHT_ID_LEN);
	memcpy(key, &i, sizeof i);
}

static void test_expiry(void **state)
{
	(void)state;
	struct dht_store s;
	assert_int_equal(dht_store_init(&s, 16, 8, 64, HK), 0);
	uint8_t k[DHT_ID_LEN];
	key_of(k, 1);
	struct dht_addr p1 = peer(1), p2 = peer(2), out[8];
	assert_int_equal(dht_store_add(&s, k, &p1, 0), 0);
	assert_int_equal(dht_store_add(&s, k, &p2, 10 * 60000), 0);
	assert_int_equal(dht_store_add(&s, k, &p1, 0), 0); /* refresh, not a duplicate */
	assert_int_equal(s.peers, 2);
	assert_int_equal(dht_store_get(&s, k, 1, 0, out, 8), 2);
	/* p1 expires at 30 min; p2 at 40 min. */
	assert_int_equal(dht_store_get(&s, k, DHT_PEER_TTL_MS, 0, out, 8), 1);
	assert_true(dht_addr_eq(&out[0], &p2));
	dht_store_expire(&s, DHT_PEER_TTL_MS);
	assert_int_equal(s.peers, 1);
	dht_store_expire(&s, 40 * 60000);
	assert_int_equal(s.peers, 0);
	assert_int_equal(s.keys, 0); /* the empty key is gone too */
	assert_int_equal(dht_store_get(&s, k, 40 * 60000, 0, out, 8), 0);
	dht_store_destroy(&s);
}

static void test_caps(void **state)
{
	(void)state;
	struct dht_store s;
	assert_int_equal(dht_store_init(&s, 4, 5, 12, HK), 0);
	uint8_t k[DHT_ID_LEN];
	key_of(k, 7);
	/* Per key: the sixth peer replaces the oldest. */
	for (uint16_t i = 1; i <= 6; i++) {
		struct dht_addr p = peer(i);
		assert_int_equal(dht_store_add(&s, k, &p, i * 1000u), 0);
	}
	struct dht_addr out[10];
	assert_int_equal(dht_store_get(&s, k, 7000, 0, out, 10), 5);
	for (size_t i = 0; i < 5; i++)
		assert_int_not_equal(out[i].port, 1);
	/* Replies are capped by the caller's max, and rotate with offset. */
	assert_int_equal(dht_store_get(&s, k, 7000, 0, out, 2), 2);
	uint16_t first = out[0].port;
	assert_int_equal(dht_store_get(&s, k, 7000, 1, out, 2), 2);
	assert_int_not_equal(out[0].port, first);
	/* Total peers: 12; keys: 4. */
	uint8_t k2[DHT_ID_LEN], k3[DHT_ID_LEN], k4[DHT_ID_LEN], k5[DHT_ID_LEN];
	key_of(k2, 2);
	key_of(k3, 3);
	key_of(k4, 4);
	key_of(k5, 5);
	for (uint16_t i = 1; i <= 5; i++) {
		struct dht_addr p = peer(i);
		assert_int_equal(dht_store_add(&s, k2, &p, 1), 0);
	}
	struct dht_addr p = peer(100);
	assert_int_equal(dht_store_add(&s, k3, &p, 1), 0);
	p = peer(101);
	assert_int_equal(dht_store_add(&s, k4, &p, 1), 0);
	assert_int_equal(s.peers, 12);
	p = peer(102);
	assert_int_equal(dht_store_add(&s, k3, &p, 1), -ENOSPC); /* total full */
	assert_int_equal(dht_store_add(&s, k5, &p, 1), -ENOSPC); /* no new key */
	p = peer(100);
	assert_int_equal(dht_store_add(&s, k3, &p, 2), 0); /* refresh still fine */
	assert_int_equal(s.keys, 4);
	assert_true(s.bytes > 0);
	dht_store_destroy(&s);
}

static void test_many_keys(void **state)
{
	(void)state;
	struct dht_store s;
	assert_int_equal(dht_store_init(&s, 1000, 3, 5000, HK), 0);
	for (unsigned i = 0; i < 1200; i++) {
		uint8_t k[DHT_ID_LEN];
		key_of(k, i);
		struct dht_addr p = peer((uint16_t)(i + 1));
		int rc = dht_store_add(&s, k, &p, i);
		assert_int_equal(rc, i < 1000 ? 0 : -ENOSPC);
	}
	for (unsigned i = 0; i < 1000; i += 97) {
		uint8_t k[DHT_ID_LEN];
		struct dht_addr out[3];
		key_of(k, i);
		assert_int_equal(dht_store_get(&s, k, 0, 0, out, 3), 1);
		assert_int_equal(out[0].port, i + 1);
	}
	dht_store_expire(&s, UINT64_MAX);
	assert_int_equal(s.keys, 0);
	dht_store_destroy(&s);
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_expiry),
		cmocka_unit_test(test_caps),
		cmocka_unit_test(test_many_keys),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
