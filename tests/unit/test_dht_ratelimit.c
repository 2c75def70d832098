/* test_dht_ratelimit.c: per-source token buckets, bounded state, and the
 * global limit. */
#include "config.h"

#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "dht/dht-internal.h"

static const uint8_t HK[16] = "fedcba9876543210";

static struct dht_addr src(uint32_t ip, uint16_t port)
{
	struct dht_addr a = { .family = AF_INET, .port = port };
	memcpy(a.ip, &ip, 4);
	return a;
}

static unsigned allowed(struct dht_ratelimit *rl, const struct dht_addr *a, unsigned n,
			uint64_t now)
{
	unsigned ok = 0;
	for (unsigned i = 0; i < n; i++)
		ok += dht_rl_allow(rl, a, now);
	return ok;
}

static void test_bucket(void **state)
{
	(void)state;
	struct dht_ratelimit *rl = malloc(sizeof *rl);
	assert_non_null(rl);
	dht_rl_init(rl, 10, 20, false, 0, HK);
	struct dht_addr a = src(0x01020304, 1), b = src(0x05060708, 1);
	/* A burst of 20, then nothing until time passes. */
	assert_int_equal(allowed(rl, &a, 100, 1000), 20);
	/* Another source is unaffected. */
	assert_int_equal(allowed(rl, &b, 5, 1000), 5);
	/* 10/s: after 500 ms, 5 more. */
	assert_int_equal(allowed(rl, &a, 100, 1500), 5);
	/* A flood of 100000 packets over 10 s gets ~ burst + 10/s. */
	unsigned ok = 0;
	for (uint64_t t = 2000; t < 12000; t += 1)
		ok += allowed(rl, &a, 10, t);
	assert_in_range(ok, 95, 125);
	/* Per IP by default: another port of the same IP shares the bucket. */
	struct dht_addr a2 = src(0x01020304, 2);
	assert_int_equal(allowed(rl, &a2, 10, 11999), 0);
	/* Keyed by port, it would not. */
	dht_rl_init(rl, 10, 20, true, 0, HK);
	assert_int_equal(allowed(rl, &a, 30, 0), 20);
	assert_int_equal(allowed(rl, &a2, 30, 0), 20);
	free(rl);
}

static void test_bounded_state(void **state)
{
	(void)state;
	struct dht_ratelimit *rl = malloc(sizeof *rl);
	assert_non_null(rl);
	dht_rl_init(rl, 1, 2, false, 0, HK);
	/* Far more sources than slots: the table stays the same size (it is a
	 * fixed array) and each new source gets only its burst. */
	unsigned ok = 0;
	for (uint32_t ip = 1; ip <= 100000; ip++) {
		struct dht_addr a = src(ip, 9);
		ok += allowed(rl, &a, 3, 5000);
	}
	assert_int_equal(ok, 200000);
	/* A hot source that keeps sending stays tracked, hence limited, even
	 * while many others pass through its set. */
	struct dht_addr hot = src(0xdeadbeef, 1);
	unsigned hot_ok = 0;
	for (uint32_t i = 0; i < 2000; i++) {
		hot_ok += dht_rl_allow(rl, &hot, 6000 + i);
		struct dht_addr other = src(0x10000000u + i, 1);
		(void)dht_rl_allow(rl, &other, 6000 + i);
	}
	assert_true(hot_ok <= 2 + 2 + 1); /* burst + 2 s at 1/s (+ rounding) */
	free(rl);
}

static void test_global(void **state)
{
	(void)state;
	struct dht_ratelimit *rl = malloc(sizeof *rl);
	assert_non_null(rl);
	dht_rl_init(rl, 0, 0, false, 100, HK);
	unsigned ok = 0;
	for (uint32_t ip = 1; ip <= 1000; ip++) {
		struct dht_addr a = src(ip, 9);
		ok += dht_rl_allow(rl, &a, 0);
	}
	assert_int_equal(ok, 100);
	struct dht_addr a = src(77, 9);
	assert_int_equal(allowed(rl, &a, 100, 1000), 100);
	free(rl);
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bucket),
		cmocka_unit_test(test_bounded_state),
		cmocka_unit_test(test_global),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
