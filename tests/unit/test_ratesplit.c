/* test_ratesplit.c: sharing a rate limit among connections by demand. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "transfer/ratesplit.h"

static uint64_t sum(const uint64_t *a, size_t n)
{
	uint64_t s = 0;
	for (size_t i = 0; i < n; i++)
		s += a[i];
	return s;
}

static void test_no_limit(void **state)
{
	(void)state;
	double used[2] = { 5, 6 };
	uint64_t cur[2] = { 7, 8 }, out[2] = { 1, 1 };
	ratesplit_shares(0, 2, used, cur, out);
	assert_int_equal(out[0], 0);
	assert_int_equal(out[1], 0);
}

static void test_new_connections_split_evenly(void **state)
{
	(void)state;
	double used[4] = { 0 };
	uint64_t cur[4] = { 0 }, out[4];
	ratesplit_shares(1000, 4, used, cur, out);
	for (int i = 0; i < 4; i++)
		assert_int_equal(out[i], 250);
}

/* The case an even split gets wrong: one connection cannot use its half. */
static void test_idle_share_goes_to_busy(void **state)
{
	(void)state;
	double used[2] = { 100, 500 };
	uint64_t cur[2] = { 500, 500 }, out[2];
	ratesplit_shares(1000, 2, used, cur, out);
	assert_int_equal(out[0], 125); /* 1.25 x what it used */
	assert_int_equal(out[1], 875); /* everything else */
	/* Next round the busy one uses its larger share: it keeps it. */
	double used2[2] = { 100, 870 };
	uint64_t cur2[2] = { out[0], out[1] }, out2[2];
	ratesplit_shares(1000, 2, used2, cur2, out2);
	assert_int_equal(out2[0], 125);
	assert_int_equal(out2[1], 875);
}

/* An idle connection keeps a floor, and gets its share back when it wants it. */
static void test_floor_and_recovery(void **state)
{
	(void)state;
	double used[2] = { 0, 1000 };
	uint64_t cur[2] = { 500, 500 }, out[2];
	ratesplit_shares(1000, 2, used, cur, out);
	assert_int_equal(out[0], 125); /* limit / (2 connections x 4) */
	assert_int_equal(out[1], 875);
	/* It now uses all of its floor: both busy, an even split again. */
	double used2[2] = { 125, 875 };
	uint64_t cur2[2] = { out[0], out[1] }, out2[2];
	ratesplit_shares(1000, 2, used2, cur2, out2);
	assert_int_equal(out2[0], 500);
	assert_int_equal(out2[1], 500);
}

static void test_all_idle_share_the_rest(void **state)
{
	(void)state;
	double used[2] = { 100, 100 };
	uint64_t cur[2] = { 500, 500 }, out[2];
	ratesplit_shares(1000, 2, used, cur, out);
	assert_int_equal(out[0], 500);
	assert_int_equal(out[1], 500);
}

/* Old shares from a round with fewer connections can overflow: scaled. */
static void test_overflow_scaled(void **state)
{
	(void)state;
	double used[3] = { 60, 60, 0 };
	uint64_t cur[3] = { 90, 90, 0 }, out[3];
	ratesplit_shares(100, 3, used, cur, out);
	assert_true(sum(out, 3) <= 100 + 3);
	assert_true(out[2] >= 1);
	assert_int_equal(out[0], out[1]);
}

/* Whatever the inputs: never over the limit (but for the 1 byte/s minimum),
 * never a zero share. */
static void test_random_rounds_bounded(void **state)
{
	(void)state;
	srand(12345);
	enum { N = 40 };
	uint64_t cur[N] = { 0 }, out[N];
	double used[N];
	for (int round = 0; round < 2000; round++) {
		size_t n = 1 + (size_t)(rand() % N);
		uint64_t limit = 1 + (uint64_t)(rand() % 5000000);
		for (size_t i = 0; i < n; i++) {
			if (rand() % 7 == 0)
				cur[i] = 0; /* a new connection */
			used[i] = cur[i] ? (double)(rand() % (int)(cur[i] + 1)) : 0;
		}
		ratesplit_shares(limit, n, used, cur, out);
		assert_true(sum(out, n) <= limit + n);
		for (size_t i = 0; i < n; i++) {
			assert_true(out[i] >= 1);
			cur[i] = out[i];
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_no_limit),
		cmocka_unit_test(test_new_connections_split_evenly),
		cmocka_unit_test(test_idle_share_goes_to_busy),
		cmocka_unit_test(test_floor_and_recovery),
		cmocka_unit_test(test_all_idle_share_the_rest),
		cmocka_unit_test(test_overflow_scaled),
		cmocka_unit_test(test_random_rounds_bounded),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
