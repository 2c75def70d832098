/* test_hmap.c: unit tests for common/hmap (the hash index of pointers). */
#include "config.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/hmap.h"

/* How many times `item` is found under `hash`. */
static int count(const struct hmap *m, uint64_t hash, const void *item)
{
	int n = 0;
	size_t pos = 0;
	for (void *it; (it = hmap_next(m, hash, &pos));)
		n += it == item;
	return n;
}

static void test_add_find_remove(void **state)
{
	(void)state;
	struct hmap m = HMAP_INIT;
	assert_null(hmap_next(&m, 1, &(size_t){ 0 }));
	assert_false(hmap_remove(&m, 1, &m));
	enum { N = 10000 };
	static int items[N];
	for (int i = 0; i < N; i++)
		assert_int_equal(hmap_add(&m, hmap_hash_u64((uint64_t)i), &items[i]), 0);
	assert_int_equal(hmap_len(&m), N);
	for (int i = 0; i < N; i++)
		assert_int_equal(count(&m, hmap_hash_u64((uint64_t)i), &items[i]), 1);
	/* Remove every other one: the rest stay findable (backward shift). */
	for (int i = 0; i < N; i += 2)
		assert_true(hmap_remove(&m, hmap_hash_u64((uint64_t)i), &items[i]));
	assert_false(hmap_remove(&m, hmap_hash_u64(0), &items[0]));
	assert_int_equal(hmap_len(&m), N / 2);
	for (int i = 0; i < N; i++)
		assert_int_equal(count(&m, hmap_hash_u64((uint64_t)i), &items[i]), i % 2);
	assert_int_equal(hmap_add(&m, 5, NULL), -EINVAL);
	hmap_clear(&m);
	assert_int_equal(hmap_len(&m), 0);
	assert_null(hmap_next(&m, hmap_hash_u64(1), &(size_t){ 0 }));
}

/* Many items under one hash, and hashes whose home slots collide: every
 * item is walked exactly once, before and after removals in the middle. */
static void test_collisions(void **state)
{
	(void)state;
	struct hmap m = HMAP_INIT;
	static int same[50], near[50];
	for (int i = 0; i < 50; i++) {
		assert_int_equal(hmap_add(&m, 42, &same[i]), 0);
		/* same low bits as 42 in any table up to 2^16 slots */
		assert_int_equal(hmap_add(&m, 42 + ((uint64_t)(i + 1) << 16), &near[i]), 0);
	}
	for (int i = 0; i < 50; i += 3) {
		assert_true(hmap_remove(&m, 42, &same[i]));
		assert_true(hmap_remove(&m, 42 + ((uint64_t)(i + 1) << 16), &near[i]));
	}
	int seen = 0;
	size_t pos = 0;
	for (void *it; (it = hmap_next(&m, 42, &pos));)
		seen++;
	assert_int_equal(seen, 50 - 17);
	for (int i = 0; i < 50; i++) {
		assert_int_equal(count(&m, 42, &same[i]), i % 3 != 0);
		assert_int_equal(count(&m, 42 + ((uint64_t)(i + 1) << 16), &near[i]), i % 3 != 0);
		assert_int_equal(count(&m, 42, &near[i]), 0); /* another hash: not walked */
	}
	hmap_clear(&m);
}

/* Random adds and removes against a plain array as the reference. */
static void test_random_against_reference(void **state)
{
	(void)state;
	struct hmap m = HMAP_INIT;
	enum { N = 2000 };
	static int items[N];
	static bool in[N];
	srand(7);
	for (int step = 0; step < 100000; step++) {
		int i = rand() % N;
		uint64_t h = (uint64_t)(i % 97); /* few distinct hashes: long runs */
		if (in[i]) {
			assert_true(hmap_remove(&m, h, &items[i]));
			in[i] = false;
		} else {
			assert_int_equal(hmap_add(&m, h, &items[i]), 0);
			in[i] = true;
		}
	}
	size_t live = 0;
	for (int i = 0; i < N; i++) {
		live += in[i];
		assert_int_equal(count(&m, (uint64_t)(i % 97), &items[i]), in[i]);
	}
	assert_int_equal(hmap_len(&m), live);
	hmap_clear(&m);
}

static void test_hash_bytes(void **state)
{
	(void)state;
	uint8_t a[32] = { 0 }, b[32] = { 0 };
	assert_true(hmap_hash_bytes(a, 32) == hmap_hash_bytes(b, 32));
	b[31] = 1;
	assert_true(hmap_hash_bytes(a, 32) != hmap_hash_bytes(b, 32));
	assert_true(hmap_hash_bytes(a, 20) != hmap_hash_bytes(a, 21)); /* length counts */
	assert_true(hmap_hash_bytes("", 0) == hmap_hash_bytes("x", 0));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_add_find_remove),
		cmocka_unit_test(test_collisions),
		cmocka_unit_test(test_random_against_reference),
		cmocka_unit_test(test_hash_bytes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
