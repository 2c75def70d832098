/* test_choker.c: unit tests for transfer/choker (regular slots, optimistic rotation). */
#include "config.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "transfer/choker.h"

#define SLOTS CHOKER_REGULAR_SLOTS
#define T CHOKER_OPTIMISTIC_INTERVAL_MS

static void set(struct choker_peer *pe, uint32_t id, bool interested, uint64_t from, uint64_t to)
{
	memset(pe, 0, sizeof *pe);
	pe->id = id;
	pe->interested = interested;
	pe->rate_from = from;
	pe->rate_to = to;
}

static int count(const bool *u, size_t n)
{
	int c = 0;
	for (size_t i = 0; i < n; i++)
		c += u[i];
	return c;
}

/* Leeching: the four fastest uploaders to us, plus one optimistic. */
static void test_leeching_by_download_rate(void **state)
{
	(void)state;
	struct choker_peer peers[8];
	/* ids 0..7; rate from them 10*id; rate to them the reverse */
	for (uint32_t i = 0; i < 8; i++)
		set(&peers[i], i, true, 10 * i, 100 - 10 * i);
	peers[7].snubbed = true; /* fastest on paper but sends nothing now */
	peers[2].interested = false;
	struct choker_state st;
	choker_state_init(&st);
	uint64_t rng = 1;
	bool u[8];
	assert_int_equal(choker_decide(peers, 8, false, SLOTS, 1000, &st, &rng, u), (int)SLOTS + 1);
	assert_true(u[6] && u[5] && u[4] && u[3]); /* regular: 60, 50, 40, 30 */
	assert_false(u[2]);                        /* not interested */
	assert_true(st.has_optimistic);
	/* the optimistic one is one of the others that are interested */
	assert_true(st.optimistic_id == 0 || st.optimistic_id == 1 || st.optimistic_id == 7);
	assert_true(u[st.optimistic_id]);
	assert_int_equal(count(u, 8), (int)SLOTS + 1);
}

/* Seeding: rank by our upload rate to them; snubbing does not matter. */
static void test_seeding_by_upload_rate(void **state)
{
	(void)state;
	struct choker_peer peers[8];
	for (uint32_t i = 0; i < 8; i++)
		set(&peers[i], i, true, 10 * i, 100 - 10 * i);
	peers[0].snubbed = true;
	struct choker_state st;
	choker_state_init(&st);
	uint64_t rng = 2;
	bool u[8];
	assert_int_equal(choker_decide(peers, 8, true, SLOTS, 1000, &st, &rng, u), (int)SLOTS + 1);
	assert_true(u[0] && u[1] && u[2] && u[3]);
	assert_true(st.optimistic_id >= 4);
	assert_true(u[st.optimistic_id]);
}

/* The optimistic slot is kept for 30 s, then moves to someone else. */
static void test_optimistic_rotation(void **state)
{
	(void)state;
	struct choker_peer peers[7];
	for (uint32_t i = 0; i < 7; i++)
		set(&peers[i], 100 + i, true, i < 4 ? 1000 : 0, 0);
	struct choker_state st;
	choker_state_init(&st);
	uint64_t rng = 99;
	bool u[7];
	uint64_t now = 5000;
	assert_int_equal(choker_decide(peers, 7, false, SLOTS, now, &st, &rng, u), 5);
	uint32_t opt = st.optimistic_id;
	assert_true(opt >= 104);
	/* rerun every 10 s: same optimistic until 30 s are up */
	for (uint64_t dt = 10000; dt < T; dt += 10000) {
		assert_int_equal(choker_decide(peers, 7, false, SLOTS, now + dt, &st, &rng, u), 5);
		assert_int_equal(st.optimistic_id, opt);
		assert_true(u[opt - 100]);
	}
	assert_int_equal(choker_decide(peers, 7, false, SLOTS, now + T, &st, &rng, u), 5);
	assert_int_not_equal(st.optimistic_id, opt); /* two others were waiting */
	assert_int_equal(st.optimistic_since_ms, now + T);
	assert_false(u[opt - 100]);

	/* the optimistic peer loses interest: replaced at once */
	uint32_t cur = st.optimistic_id;
	peers[cur - 100].interested = false;
	assert_int_equal(choker_decide(peers, 7, false, SLOTS, now + T + 1, &st, &rng, u), 5);
	assert_int_not_equal(st.optimistic_id, cur);
	assert_false(u[cur - 100]);

	/* it disconnects (vanishes from the list): replaced too */
	cur = st.optimistic_id;
	struct choker_peer fewer[6];
	size_t m = 0;
	for (size_t i = 0; i < 7; i++)
		if (peers[i].id != cur)
			fewer[m++] = peers[i];
	assert_int_equal(choker_decide(fewer, m, false, SLOTS, now + T + 2, &st, &rng, u), 5);
	assert_int_not_equal(st.optimistic_id, cur);

	/* a single waiting peer keeps the slot when its turn ends */
	struct choker_peer five[5];
	for (uint32_t i = 0; i < 5; i++)
		set(&five[i], i, true, i < 4 ? 50 : 0, 0);
	choker_state_init(&st);
	assert_int_equal(choker_decide(five, 5, false, SLOTS, 0, &st, &rng, u), 5);
	assert_int_equal(st.optimistic_id, 4);
	assert_int_equal(choker_decide(five, 5, false, SLOTS, 10 * T, &st, &rng, u), 5);
	assert_int_equal(st.optimistic_id, 4);
}

/* Random choice among waiting peers: all get turns; a seed fixes them. */
static void test_optimistic_is_random_and_seeded(void **state)
{
	(void)state;
	struct choker_peer peers[10];
	for (uint32_t i = 0; i < 10; i++)
		set(&peers[i], i, true, i < 4 ? 500 : 0, 0);
	unsigned hits[10] = { 0 };
	bool u[10];
	for (uint64_t seed = 0; seed < 600; seed++) {
		struct choker_state st;
		choker_state_init(&st);
		uint64_t rng = seed;
		assert_int_equal(choker_decide(peers, 10, false, SLOTS, 0, &st, &rng, u), 5);
		hits[st.optimistic_id]++;
	}
	for (int i = 0; i < 4; i++)
		assert_int_equal(hits[i], 0);
	for (int i = 4; i < 10; i++)
		assert_in_range(hits[i], 50, 150); /* 100 expected each */

	struct choker_state a, b;
	choker_state_init(&a);
	choker_state_init(&b);
	uint64_t ra = 77, rb = 77;
	bool ua[10], ub[10];
	for (int round = 0; round < 5; round++) {
		assert_int_equal(choker_decide(peers, 10, false, SLOTS, (uint64_t)round * T, &a, &ra, ua), 5);
		assert_int_equal(choker_decide(peers, 10, false, SLOTS, (uint64_t)round * T, &b, &rb, ub), 5);
		assert_memory_equal(ua, ub, sizeof ua);
		assert_int_equal(a.optimistic_id, b.optimistic_id);
	}
}

/* Equal rates (a fresh swarm): ties broken at random, not by list order. */
static void test_ties_random(void **state)
{
	(void)state;
	struct choker_peer peers[8];
	for (uint32_t i = 0; i < 8; i++)
		set(&peers[i], i, true, 0, 0);
	unsigned first_four = 0;
	bool u[8];
	for (uint64_t seed = 0; seed < 200; seed++) {
		struct choker_state st;
		choker_state_init(&st);
		uint64_t rng = seed * 7919;
		assert_int_equal(choker_decide(peers, 8, false, SLOTS, 0, &st, &rng, u), 5);
		first_four += u[0] && u[1] && u[2] && u[3];
	}
	assert_true(first_four < 50);
}

static void test_small_and_bad(void **state)
{
	(void)state;
	struct choker_state st;
	choker_state_init(&st);
	uint64_t rng = 0;
	bool u[3];
	assert_int_equal(choker_decide(NULL, 0, false, SLOTS, 0, &st, &rng, NULL), 0);
	assert_false(st.has_optimistic);
	struct choker_peer peers[3];
	set(&peers[0], 1, true, 5, 0);
	set(&peers[1], 2, false, 500, 0);
	set(&peers[2], 3, true, 0, 0);
	/* fewer interested peers than slots: all of them, no optimistic left */
	assert_int_equal(choker_decide(peers, 3, false, SLOTS, 0, &st, &rng, u), 2);
	assert_true(u[0] && !u[1] && u[2]);
	assert_false(st.has_optimistic);
	/* one slot: the faster; the other is optimistic */
	assert_int_equal(choker_decide(peers, 3, false, 1, 0, &st, &rng, u), 2);
	assert_true(u[0] && u[2]);
	assert_int_equal(st.optimistic_id, 3);
	assert_int_equal(choker_decide(peers, 3, false, 0, 0, &st, &rng, u), -EINVAL);
	assert_int_equal(choker_decide(peers, 3, false, CHOKER_MAX_SLOTS + 1, 0, &st, &rng, u),
			 -EINVAL);
	assert_int_equal(choker_decide(peers, 3, false, SLOTS, 0, &st, NULL, u), -EINVAL);
	assert_int_equal(choker_decide(peers, 3, false, SLOTS, 0, &st, &rng, NULL), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_leeching_by_download_rate),
		cmocka_unit_test(test_seeding_by_upload_rate),
		cmocka_unit_test(test_optimistic_rotation),
		cmocka_unit_test(test_optimistic_is_random_and_seeded),
		cmocka_unit_test(test_ties_random),
		cmocka_unit_test(test_small_and_bad),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
