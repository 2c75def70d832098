/* test_picker.c: unit tests for transfer/picker (availability, picks, endgame, blame). */
#include "config.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "transfer/bitfield.h"
#include "transfer/picker.h"
#include "transfer/transfer.h"

#define BS XFER_BLOCK_SIZE

static void check(const struct picker *p)
{
	const char *what = NULL;
	int rc = picker_check_invariants(p, &what);
	if (rc != 0)
		fail_msg("invariant broken: %s", what ? what : "?");
}

/* A picker of n pieces of `len` bytes each. */
static struct picker *make_uniform(uint32_t n, uint32_t len)
{
	uint32_t *lens = malloc(n * sizeof *lens);
	assert_non_null(lens);
	for (uint32_t i = 0; i < n; i++)
		lens[i] = len;
	struct picker *p = NULL;
	assert_int_equal(picker_new(lens, n, &p), 0);
	free(lens);
	return p;
}

/* Give a fresh peer bitfield with the listed pieces (terminated by -1). */
static void peer_with(struct picker *p, struct bitfield *bf, const int *pieces)
{
	assert_int_equal(bitfield_init(bf, picker_num_pieces(p)), 0);
	struct bitfield in;
	assert_int_equal(bitfield_init(&in, picker_num_pieces(p)), 0);
	for (; *pieces >= 0; pieces++)
		bitfield_set(&in, (uint32_t)*pieces);
	assert_int_equal(picker_peer_bitfield(p, bf, &in), 0);
	bitfield_destroy(&in);
}

static void load_have(struct picker *p, uint32_t first, uint32_t count)
{
	struct bitfield v;
	assert_int_equal(bitfield_init(&v, picker_num_pieces(p)), 0);
	for (uint32_t i = first; i < first + count; i++)
		bitfield_set(&v, i);
	assert_int_equal(picker_load_have(p, &v), 0);
	bitfield_destroy(&v);
}

static size_t pick(struct picker *p, uint32_t id, const struct bitfield *has, size_t want,
		   struct picker_block *out, uint64_t seed)
{
	struct picker_peer peer = { id, has, 0 };
	size_t n = 99;
	assert_int_equal(picker_pick(p, &peer, want, out, PICKER_MAX_PICK, &n, &seed), 0);
	return n;
}

static void test_new_rejects(void **state)
{
	(void)state;
	struct picker *p = (struct picker *)1;
	uint32_t bad[] = { BS, 0 };
	assert_int_equal(picker_new(bad, 2, &p), -EINVAL);
	assert_null(p);
	uint32_t big[] = { PICKER_MAX_PIECE_LEN + 1 };
	assert_int_equal(picker_new(big, 1, &p), -EINVAL);
	assert_int_equal(picker_new(bad, 0, &p), -EINVAL);
	picker_free(NULL);
}

/* BEP 52: each file's last piece is short; blocks follow the exact lengths. */
static void test_variable_lengths(void **state)
{
	(void)state;
	/* file A: 2 pieces of 4 blocks, the second 40000 bytes; file B: one
	 * piece of 1 byte; file C: one full piece. */
	const uint32_t lens[] = { 4 * BS, 40000, 1, 4 * BS };
	struct picker *p = NULL;
	assert_int_equal(picker_new(lens, 4, &p), 0);
	assert_int_equal(picker_piece_blocks(p, 0), 4);
	assert_int_equal(picker_piece_blocks(p, 1), 3);
	assert_int_equal(picker_piece_blocks(p, 2), 1);
	assert_int_equal(picker_piece_len(p, 1), 40000);
	assert_int_equal(picker_piece_len(p, 9), 0);

	struct bitfield seed;
	const int all[] = { 0, 1, 2, 3, -1 };
	peer_with(p, &seed, all);
	struct picker_block out[PICKER_MAX_PICK];
	size_t n = pick(p, 1, &seed, 100, out, 7);
	assert_int_equal(n, 12);
	uint64_t bytes[4] = { 0 };
	for (size_t i = 0; i < n; i++) {
		assert_true(out[i].piece < 4);
		assert_int_equal(out[i].len, out[i].block + 1 < picker_piece_blocks(p, out[i].piece)
						     ? BS
						     : lens[out[i].piece] - out[i].block * BS);
		bytes[out[i].piece] += out[i].len;
		assert_int_equal(picker_mark_requested(p, 1, out[i].piece, out[i].block), 0);
	}
	for (int i = 0; i < 4; i++)
		assert_int_equal(bytes[i], lens[i]);
	/* out-of-range block of the short piece */
	assert_int_equal(picker_mark_requested(p, 1, 1, 3), -ERANGE);
	assert_int_equal(picker_mark_requested(p, 1, 2, 1), -ERANGE);
	check(p);

	/* deliver everything; the last block of each piece completes it */
	for (size_t i = 0; i < n; i++) {
		size_t nc;
		uint32_t cancel[PICKER_MAX_REQUESTERS];
		assert_int_equal(picker_mark_writing(p, 1, out[i].piece, out[i].block, cancel,
						     PICKER_MAX_REQUESTERS, &nc),
				 0);
		assert_int_equal(nc, 0);
		int rc = picker_mark_finished(p, out[i].piece, out[i].block);
		assert_true(rc == 0 || rc == 1);
		if (rc == 1)
			assert_int_equal(picker_piece_verified(p, out[i].piece), 0);
		check(p);
	}
	assert_true(picker_is_complete(p));
	assert_int_equal(bitfield_count(picker_have(p)), 4);
	assert_int_equal(picker_block_state(p, 1, 2), PICKER_BLOCK_HAVE);
	bitfield_destroy(&seed);
	picker_free(p);
}

static void test_rarest_first(void **state)
{
	(void)state;
	struct picker *p = make_uniform(10, BS); /* one block per piece */
	load_have(p, 0, PICKER_RANDOM_FIRST);     /* past the random start */
	struct bitfield a, b, c;
	const int pa[] = { 4, 5, 6, 7, 8, 9, -1 };
	const int pb[] = { 4, 5, 7, 8, 9, -1 };
	const int pc[] = { 4, 5, 8, 9, -1 };
	peer_with(p, &a, pa);
	peer_with(p, &b, pb);
	peer_with(p, &c, pc);
	assert_int_equal(picker_availability(p, 6), 1);
	assert_int_equal(picker_availability(p, 7), 2);
	assert_int_equal(picker_availability(p, 4), 3);

	struct picker_block out[PICKER_MAX_PICK];
	for (uint64_t seed = 0; seed < 20; seed++) {
		size_t n = pick(p, 1, &a, 2, out, seed);
		assert_int_equal(n, 2);
		assert_int_equal(out[0].piece, 6);
		assert_int_equal(out[1].piece, 7);
	}
	/* B lacks 6: its rarest is 7 */
	assert_int_equal(pick(p, 2, &b, 1, out, 3), 1);
	assert_int_equal(out[0].piece, 7);

	/* HAVEs for 6 from B and C make it commoner (3) than 7 (2) */
	assert_int_equal(picker_peer_have(p, &b, 6), 0);
	assert_int_equal(picker_peer_have(p, &b, 6), 0); /* repeated HAVE counts once */
	assert_int_equal(picker_availability(p, 6), 2);
	assert_int_equal(picker_peer_have(p, &c, 6), 0);
	assert_int_equal(pick(p, 1, &a, 1, out, 11), 1);
	assert_int_equal(out[0].piece, 7);
	assert_int_equal(picker_peer_have(p, &c, 10), -ERANGE);

	/* pieces we have are never picked, nor pieces the peer lacks */
	struct bitfield d;
	const int pd[] = { 0, 1, 2, 3, -1 };
	peer_with(p, &d, pd);
	assert_int_equal(pick(p, 4, &d, 10, out, 1), 0);
	assert_false(picker_is_interesting(p, &d));
	assert_true(picker_is_interesting(p, &c));
	check(p);
	bitfield_destroy(&a);
	bitfield_destroy(&b);
	bitfield_destroy(&c);
	bitfield_destroy(&d);
	picker_free(p);
}

/* Equal rarity: every candidate gets chosen, and a seed fixes the choice. */
static void test_random_among_equal(void **state)
{
	(void)state;
	struct picker *p = make_uniform(12, BS);
	load_have(p, 0, PICKER_RANDOM_FIRST);
	struct bitfield a, b;
	const int pa[] = { 4, 5, 6, 7, 8, 9, 10, 11, -1 };
	const int pb[] = { 4, -1 }; /* 4 is commoner than the rest */
	peer_with(p, &a, pa);
	peer_with(p, &b, pb);
	unsigned hits[12] = { 0 };
	struct picker_block out[PICKER_MAX_PICK];
	for (uint64_t seed = 1; seed <= 700; seed++) {
		assert_int_equal(pick(p, 1, &a, 1, out, seed), 1);
		hits[out[0].piece]++;
	}
	assert_int_equal(hits[4], 0); /* never the commoner one */
	for (int i = 5; i < 12; i++) {
		/* 100 expected each; a fair choice is far inside these bounds */
		assert_in_range(hits[i], 50, 150);
	}
	/* deterministic: the same seed gives the same piece */
	assert_int_equal(pick(p, 1, &a, 1, out, 42), 1);
	uint32_t first = out[0].piece;
	for (int k = 0; k < 5; k++) {
		assert_int_equal(pick(p, 1, &a, 1, out, 42), 1);
		assert_int_equal(out[0].piece, first);
	}
	bitfield_destroy(&a);
	bitfield_destroy(&b);
	picker_free(p);
}

/* The first few pieces are random, not rarest, then rarest first takes over. */
static void test_random_first_pieces(void **state)
{
	(void)state;
	struct picker *p = make_uniform(8, BS);
	struct bitfield a, b, c;
	const int all[] = { 0, 1, 2, 3, 4, 5, 6, 7, -1 };
	const int most[] = { 1, 2, 3, 4, 5, 6, 7, -1 };
	peer_with(p, &a, all);
	peer_with(p, &b, most);
	peer_with(p, &c, most);
	/* piece 0 is rarest (1 copy) but a new node picks at random */
	unsigned rare = 0;
	struct picker_block out[PICKER_MAX_PICK];
	for (uint64_t seed = 1; seed <= 400; seed++) {
		assert_int_equal(pick(p, 1, &a, 1, out, seed), 1);
		rare += out[0].piece == 0;
	}
	assert_in_range(rare, 20, 90); /* about 1 in 8, not always */
	/* after PICKER_RANDOM_FIRST pieces, rarest first */
	load_have(p, 4, PICKER_RANDOM_FIRST);
	for (uint64_t seed = 1; seed <= 50; seed++) {
		assert_int_equal(pick(p, 1, &a, 1, out, seed), 1);
		assert_int_equal(out[0].piece, 0);
	}
	bitfield_destroy(&a);
	bitfield_destroy(&b);
	bitfield_destroy(&c);
	picker_free(p);
}

static void test_partial_preference(void **state)
{
	(void)state;
	struct picker *p = make_uniform(10, 4 * BS);
	load_have(p, 0, PICKER_RANDOM_FIRST);
	struct bitfield a, b;
	const int pa[] = { 4, 5, 6, 7, 8, 9, -1 };
	const int pb[] = { 4, 5, 7, 8, 9, -1 }; /* 6 is the rarest */
	peer_with(p, &a, pa);
	peer_with(p, &b, pb);
	/* piece 8 has one block requested, piece 9 three */
	assert_int_equal(picker_mark_requested(p, 2, 8, 0), 0);
	for (uint32_t blk = 0; blk < 3; blk++)
		assert_int_equal(picker_mark_requested(p, 2, 9, blk), 0);
	struct picker_block out[PICKER_MAX_PICK];
	size_t n = pick(p, 1, &a, 5, out, 9);
	assert_int_equal(n, 5);
	/* 9's last open block, then 8's three, then the rarest new piece, 6 */
	assert_int_equal(out[0].piece, 9);
	assert_int_equal(out[0].block, 3);
	for (int i = 1; i <= 3; i++) {
		assert_int_equal(out[i].piece, 8);
		assert_int_equal(out[i].block, (uint32_t)i);
	}
	assert_int_equal(out[4].piece, 6);
	assert_int_equal(out[4].block, 0);
	/* a partial piece the peer lacks is not offered */
	struct bitfield c;
	const int pc[] = { 5, -1 };
	peer_with(p, &c, pc);
	n = pick(p, 3, &c, 8, out, 9);
	assert_int_equal(n, 4);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(out[i].piece, 5);
	/* the pick did not change state */
	assert_int_equal(picker_block_state(p, 9, 3), PICKER_BLOCK_NONE);
	check(p);
	bitfield_destroy(&a);
	bitfield_destroy(&b);
	bitfield_destroy(&c);
	picker_free(p);
}

static void test_endgame_cancels(void **state)
{
	(void)state;
	struct picker *p = make_uniform(5, 2 * BS);
	load_have(p, 0, 4);
	struct bitfield a, b, c;
	const int all[] = { 0, 1, 2, 3, 4, -1 };
	peer_with(p, &a, all);
	peer_with(p, &b, all);
	peer_with(p, &c, all);
	struct picker_block out[PICKER_MAX_PICK];
	assert_false(picker_in_endgame(p));
	assert_int_equal(pick(p, 1, &a, 1, out, 1), 1);
	assert_int_equal(picker_mark_requested(p, 1, 4, out[0].block), 0);
	assert_false(picker_in_endgame(p)); /* one block still open */
	assert_int_equal(pick(p, 1, &a, 8, out, 1), 1);
	assert_int_equal(picker_mark_requested(p, 1, 4, out[0].block), 0);
	assert_true(picker_in_endgame(p));
	check(p);

	/* A has everything requested already: nothing more for A */
	assert_int_equal(pick(p, 1, &a, 8, out, 1), 0);
	/* B may duplicate both */
	size_t n = pick(p, 2, &b, 8, out, 1);
	assert_int_equal(n, 2);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(picker_mark_requested(p, 2, out[i].piece, out[i].block), 0);
	assert_int_equal(picker_mark_requested(p, 2, 4, 0), -EALREADY);
	/* C duplicates block 1 only */
	assert_int_equal(picker_mark_requested(p, 3, 4, 1), 0);
	check(p);

	/* too little room for the cancels: refused, nothing changes */
	uint32_t small[1];
	size_t ns = 9;
	assert_int_equal(picker_mark_writing(p, 3, 4, 1, small, 1, &ns), -ENOBUFS);
	assert_int_equal(ns, 0);
	assert_int_equal(picker_block_state(p, 4, 1), PICKER_BLOCK_REQUESTED);

	/* block 1 arrives from C: cancel A and B */
	uint32_t cancel[PICKER_MAX_REQUESTERS];
	size_t nc = 0;
	assert_int_equal(picker_mark_writing(p, 3, 4, 1, cancel, PICKER_MAX_REQUESTERS, &nc), 0);
	assert_int_equal(nc, 2);
	assert_true((cancel[0] == 1 && cancel[1] == 2) || (cancel[0] == 2 && cancel[1] == 1));
	/* A's late copy of block 1 is a duplicate */
	assert_int_equal(picker_mark_writing(p, 1, 4, 1, cancel, PICKER_MAX_REQUESTERS, &nc),
			 -EALREADY);
	/* block 0 from B: cancel A */
	assert_int_equal(picker_mark_writing(p, 2, 4, 0, cancel, PICKER_MAX_REQUESTERS, &nc), 0);
	assert_int_equal(nc, 1);
	assert_int_equal(cancel[0], 1);
	assert_int_equal(picker_mark_finished(p, 4, 0), 0);
	assert_int_equal(picker_mark_finished(p, 4, 1), 1);
	assert_int_equal(picker_mark_finished(p, 4, 1), -EINVAL);
	check(p);
	assert_int_equal(picker_piece_verified(p, 4), 0);
	assert_true(picker_is_complete(p));
	assert_false(picker_in_endgame(p));
	assert_int_equal(pick(p, 3, &c, 8, out, 1), 0);
	check(p);
	bitfield_destroy(&a);
	bitfield_destroy(&b);
	bitfield_destroy(&c);
	picker_free(p);
}

static void test_endgame_requester_cap(void **state)
{
	(void)state;
	struct picker *p = make_uniform(1, BS);
	for (uint32_t peer = 0; peer < PICKER_MAX_REQUESTERS; peer++)
		assert_int_equal(picker_mark_requested(p, peer, 0, 0), 0);
	assert_int_equal(picker_mark_requested(p, 99, 0, 0), -EBUSY);
	struct bitfield a;
	const int all[] = { 0, -1 };
	peer_with(p, &a, all);
	struct picker_block out[PICKER_MAX_PICK];
	assert_int_equal(pick(p, 99, &a, 4, out, 1), 0);
	check(p);
	bitfield_destroy(&a);
	picker_free(p);
}

/* In endgame a peer still sending our requests gets no duplicates, an idle
 * one at most PICKER_ENDGAME_BUSY: deep duplicate queues over slow links
 * sent 10-20 % of the payload twice. */
static void test_endgame_busy_cap(void **state)
{
	(void)state;
	struct picker *p = make_uniform(2, 4 * BS);
	struct bitfield a, b;
	const int all[] = { 0, 1, -1 };
	peer_with(p, &a, all);
	peer_with(p, &b, all);
	struct picker_block out[PICKER_MAX_PICK];
	/* A is asked for all eight blocks: endgame. */
	assert_int_equal(pick(p, 1, &a, 8, out, 1), 8);
	for (size_t i = 0; i < 8; i++)
		assert_int_equal(picker_mark_requested(p, 1, out[i].piece, out[i].block), 0);
	assert_true(picker_in_endgame(p));
	uint64_t rng = 1;
	size_t n = 99;
	/* B with requests of its own in flight: nothing. */
	struct picker_peer busy = { 2, &b, PICKER_ENDGAME_BUSY };
	assert_int_equal(picker_pick(p, &busy, 8, out, PICKER_MAX_PICK, &n, &rng), 0);
	assert_int_equal(n, 0);
	/* B with one in flight: one more. */
	struct picker_peer one = { 2, &b, PICKER_ENDGAME_BUSY - 1 };
	assert_int_equal(picker_pick(p, &one, 8, out, PICKER_MAX_PICK, &n, &rng), 0);
	assert_int_equal(n, 1);
	/* B idle: PICKER_ENDGAME_BUSY of the eight, however many it wants. */
	struct picker_peer idle = { 2, &b, 0 };
	assert_int_equal(picker_pick(p, &idle, 8, out, PICKER_MAX_PICK, &n, &rng), 0);
	assert_int_equal(n, PICKER_ENDGAME_BUSY);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(picker_mark_requested(p, 2, out[i].piece, out[i].block), 0);
	check(p);
	bitfield_destroy(&a);
	bitfield_destroy(&b);
	picker_free(p);
}

static void deliver(struct picker *p, uint32_t peer, uint32_t piece, uint32_t block)
{
	uint32_t cancel[PICKER_MAX_REQUESTERS];
	size_t nc;
	assert_int_equal(picker_mark_writing(p, peer, piece, block, cancel, PICKER_MAX_REQUESTERS, &nc),
			 0);
}

static void test_hash_fail_blame(void **state)
{
	(void)state;
	struct picker *p = make_uniform(2, 4 * BS);
	/* blocks from peers 7, 8, 7, 9 */
	const uint32_t from[] = { 7, 8, 7, 9 };
	for (uint32_t b = 0; b < 4; b++) {
		assert_int_equal(picker_mark_requested(p, from[b], 1, b), 0);
		deliver(p, from[b], 1, b);
		assert_int_equal(picker_mark_finished(p, 1, b), b == 3 ? 1 : 0);
	}
	check(p);
	uint32_t blame[4];
	size_t nb = 99;
	assert_int_equal(picker_piece_failed(p, 1, blame, 4, &nb), 0);
	assert_int_equal(nb, 3);
	assert_int_equal(blame[0], 7);
	assert_int_equal(blame[1], 8);
	assert_int_equal(blame[2], 9);
	for (uint32_t b = 0; b < 4; b++)
		assert_int_equal(picker_block_state(p, 1, b), PICKER_BLOCK_NONE);
	assert_false(bitfield_test(picker_have(p), 1));
	check(p);
	/* the piece can be fetched again, and verified this time */
	struct bitfield a;
	const int all[] = { 0, 1, -1 };
	peer_with(p, &a, all);
	struct picker_block out[PICKER_MAX_PICK];
	assert_int_equal(pick(p, 5, &a, 16, out, 3), 8);
	assert_int_equal(picker_piece_failed(p, 0, blame, 4, &nb), -EINVAL); /* not started */
	assert_int_equal(picker_piece_verified(p, 1), -EINVAL);
	bitfield_destroy(&a);
	picker_free(p);
}

/* Issue 12, defect 2: a piece that 17 or more peers contributed to and that
 * fails its hash must still be fetched again, whatever the blame record can
 * hold (the engine once passed a 16-entry array and the piece stalled). */
static void test_hash_fail_many_contributors(void **state)
{
	(void)state;
	enum { NB = 24 };
	struct picker *p = make_uniform(2, NB * BS);
	struct bitfield has[NB];
	const int both[] = { 0, 1, -1 };
	for (uint32_t b = 0; b < NB; b++) {
		peer_with(p, &has[b], both);
		assert_int_equal(picker_mark_requested(p, 100 + b, 1, b), 0);
		deliver(p, 100 + b, 1, b);
		assert_int_equal(picker_mark_finished(p, 1, b), b == NB - 1 ? 1 : 0);
	}
	check(p);
	uint32_t blame[16];
	size_t nb = 99;
	/* A short record still resets the piece; it reports the truncation. */
	int rc = picker_piece_failed(p, 1, blame, 16, &nb);
	print_message("# piece_failed with 24 contributors, 16 slots: rc %d, %zu blamed, block 0 "
		      "state %d\n", rc, nb, (int)picker_block_state(p, 1, 0));
	assert_int_equal(rc, -ENOBUFS);
	assert_int_equal(nb, 16);
	for (uint32_t i = 0; i < 16; i++)
		assert_int_equal(blame[i], 100 + i);
	for (uint32_t b = 0; b < NB; b++)
		assert_int_equal(picker_block_state(p, 1, b), PICKER_BLOCK_NONE);
	check(p);
	/* ... and it is picked again: piece 1 is in no one's hands now. */
	struct picker_block out[PICKER_MAX_PICK];
	load_have(p, 0, 1);
	size_t n = pick(p, 7, &has[0], NB, out, 1);
	assert_int_equal(n, NB);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(out[i].piece, 1);
	/* A record of picker_piece_blocks() entries names every contributor. */
	for (uint32_t b = 0; b < NB; b++) {
		assert_int_equal(picker_mark_requested(p, 200 + b, 1, b), 0);
		deliver(p, 200 + b, 1, b);
		assert_int_equal(picker_mark_finished(p, 1, b), b == NB - 1 ? 1 : 0);
	}
	uint32_t all[NB];
	assert_true(picker_piece_blocks(p, 1) <= PICKER_MAX_BLAME);
	assert_int_equal(picker_piece_failed(p, 1, all, picker_piece_blocks(p, 1), &nb), 0);
	assert_int_equal(nb, NB);
	for (uint32_t i = 0; i < NB; i++)
		assert_int_equal(all[i], 200 + i);
	check(p);
	for (uint32_t b = 0; b < NB; b++)
		bitfield_destroy(&has[b]);
	picker_free(p);
}

static void test_peer_gone_and_timeout(void **state)
{
	(void)state;
	struct picker *p = make_uniform(4, 2 * BS);
	struct bitfield a, b;
	const int pa[] = { 0, 1, 2, 3, -1 };
	const int pb[] = { 0, 1, -1 };
	peer_with(p, &a, pa);
	peer_with(p, &b, pb);
	assert_int_equal(picker_availability(p, 0), 2);
	assert_int_equal(picker_mark_requested(p, 1, 0, 0), 0);
	assert_int_equal(picker_mark_requested(p, 1, 0, 1), 0);
	assert_int_equal(picker_mark_requested(p, 1, 2, 0), 0);
	assert_int_equal(picker_mark_requested(p, 2, 1, 0), 0);
	deliver(p, 1, 0, 0); /* A delivered block 0 of piece 0 before leaving */
	check(p);

	/* B's request timed out */
	assert_int_equal(picker_abort_request(p, 2, 1, 0), 0);
	assert_int_equal(picker_abort_request(p, 2, 1, 0), -ENOENT);
	assert_int_equal(picker_block_state(p, 1, 0), PICKER_BLOCK_NONE);
	/* a late answer to the timed-out request is still accepted */
	deliver(p, 2, 1, 0);
	assert_int_equal(picker_block_state(p, 1, 0), PICKER_BLOCK_WRITING);
	assert_int_equal(picker_write_failed(p, 1, 0), 0); /* disk full: back to NONE */
	assert_int_equal(picker_block_state(p, 1, 0), PICKER_BLOCK_NONE);
	check(p);

	assert_int_equal(picker_peer_gone(p, 1, &a), 0);
	assert_int_equal(picker_availability(p, 0), 1);
	assert_int_equal(picker_availability(p, 3), 0);
	assert_int_equal(picker_block_state(p, 0, 0), PICKER_BLOCK_WRITING); /* kept */
	assert_int_equal(picker_block_state(p, 0, 1), PICKER_BLOCK_NONE);
	assert_int_equal(picker_block_state(p, 2, 0), PICKER_BLOCK_NONE);
	check(p);
	/* B now gets the open block of piece 0 first, then piece 1 */
	struct picker_block out[PICKER_MAX_PICK];
	size_t n = pick(p, 2, &b, 8, out, 5);
	assert_int_equal(n, 3);
	assert_int_equal(out[0].piece, 0);
	assert_int_equal(out[0].block, 1);
	/* the blame for a block A delivered survives A leaving */
	assert_int_equal(picker_mark_finished(p, 0, 0), 0);
	assert_int_equal(picker_mark_requested(p, 2, 0, 1), 0);
	deliver(p, 2, 0, 1);
	assert_int_equal(picker_mark_finished(p, 0, 1), 1);
	uint32_t blame[2];
	size_t nb;
	assert_int_equal(picker_piece_failed(p, 0, blame, 2, &nb), 0);
	assert_int_equal(nb, 2);
	assert_int_equal(blame[0], 1);
	assert_int_equal(blame[1], 2);
	assert_int_equal(picker_peer_gone(p, 2, &b), 0);
	for (uint32_t i = 0; i < 4; i++)
		assert_int_equal(picker_availability(p, i), 0);
	check(p);
	bitfield_destroy(&a);
	bitfield_destroy(&b);
	picker_free(p);
}

static void test_resume_and_wanted(void **state)
{
	(void)state;
	struct picker *p = make_uniform(6, 2 * BS);
	assert_int_equal(picker_mark_requested(p, 1, 2, 0), 0); /* in progress */
	load_have(p, 1, 2);                                     /* pieces 1, 2 verified on disk */
	assert_true(bitfield_test(picker_have(p), 2));
	assert_int_equal(picker_block_state(p, 2, 0), PICKER_BLOCK_HAVE);
	assert_int_equal(picker_mark_requested(p, 1, 2, 1), -EPERM);
	check(p);

	struct bitfield a;
	struct bitfield none;
	assert_int_equal(bitfield_init(&a, 6), 0);
	assert_int_equal(bitfield_init(&none, 6), 0);
	assert_int_equal(picker_peer_have_all(p, &a), 0);
	assert_true(bitfield_all(&a));
	assert_int_equal(picker_availability(p, 5), 1);
	assert_int_equal(picker_peer_have_all(p, &a), 0); /* counted once */
	assert_int_equal(picker_availability(p, 5), 1);

	/* skip 0, 3 and 4: only 5 is left to get */
	assert_int_equal(picker_set_wanted(p, 0, false), 0);
	assert_int_equal(picker_set_wanted(p, 3, false), 0);
	assert_int_equal(picker_set_wanted(p, 4, false), 0);
	assert_int_equal(picker_set_wanted(p, 9, false), -ERANGE);
	check(p);
	struct picker_block out[PICKER_MAX_PICK];
	size_t n = pick(p, 1, &a, 16, out, 1);
	assert_int_equal(n, 2);
	assert_int_equal(out[0].piece, 5);
	assert_int_equal(out[1].piece, 5);
	assert_int_equal(picker_mark_requested(p, 1, 0, 0), -EPERM);
	assert_false(picker_is_complete(p));
	assert_int_equal(picker_set_wanted(p, 5, false), 0);
	assert_true(picker_is_complete(p));
	assert_false(picker_is_interesting(p, &a));
	assert_false(picker_in_endgame(p));
	assert_int_equal(pick(p, 1, &a, 16, out, 1), 0);
	assert_int_equal(picker_set_wanted(p, 3, true), 0);
	assert_true(picker_is_interesting(p, &a));
	assert_false(picker_is_interesting(p, &none));
	check(p);

	struct bitfield wrong;
	assert_int_equal(bitfield_init(&wrong, 5), 0);
	assert_int_equal(picker_load_have(p, &wrong), -EINVAL);
	assert_int_equal(picker_peer_bitfield(p, &wrong, &a), -EINVAL);
	assert_int_equal(picker_peer_gone(p, 1, &wrong), -EINVAL);
	bitfield_destroy(&wrong);
	bitfield_destroy(&none);
	bitfield_destroy(&a);
	picker_free(p);
}

/* A whole download with several peers, random events and invariant checks
 * after every step. */
static void test_simulated_swarm(void **state)
{
	(void)state;
	enum { NPIECES = 37, NPEERS = 5 };
	uint32_t lens[NPIECES];
	for (int i = 0; i < NPIECES; i++)
		lens[i] = (i % 7 == 6) ? (uint32_t)(1 + i * 1000) : 3 * BS; /* some short pieces */
	struct picker *p = NULL;
	assert_int_equal(picker_new(lens, NPIECES, &p), 0);
	struct bitfield has[NPEERS];
	uint64_t rng = 12345;
	for (int k = 0; k < NPEERS; k++) {
		assert_int_equal(bitfield_init(&has[k], NPIECES), 0);
		for (uint32_t i = 0; i < NPIECES; i++)
			if ((i + (uint32_t)k) % 3 != 0 || k == 0)
				assert_int_equal(picker_peer_have(p, &has[k], i), 0);
	}
	unsigned steps = 0, fails = 0;
	while (!picker_is_complete(p)) {
		assert_true(++steps < 10000);
		uint32_t k = (uint32_t)(rng % NPEERS);
		rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
		struct picker_block out[8];
		size_t n;
		struct picker_peer peer = { k, &has[k], 0 };
		assert_int_equal(picker_pick(p, &peer, 3, out, 8, &n, &rng), 0);
		for (size_t i = 0; i < n; i++)
			assert_int_equal(picker_mark_requested(p, k, out[i].piece, out[i].block), 0);
		check(p);
		for (size_t i = 0; i < n; i++) {
			if ((rng >> 33) % 5 == 0) { /* a timeout */
				assert_int_equal(picker_abort_request(p, k, out[i].piece, out[i].block), 0);
				continue;
			}
			uint32_t cancel[PICKER_MAX_REQUESTERS];
			size_t nc;
			int rc = picker_mark_writing(p, k, out[i].piece, out[i].block, cancel,
						     PICKER_MAX_REQUESTERS, &nc);
			if (rc == -EALREADY)
				continue;
			assert_int_equal(rc, 0);
			for (size_t c = 0; c < nc; c++)
				assert_int_equal(picker_abort_request(p, cancel[c], out[i].piece,
								      out[i].block),
						 0);
			rc = picker_mark_finished(p, out[i].piece, out[i].block);
			assert_true(rc >= 0);
			if (rc == 1) {
				if (out[i].piece == 13 && fails == 0) {
					fails++;
					uint32_t blame[8];
					size_t nb;
					assert_int_equal(picker_piece_failed(p, 13, blame, 8, &nb), 0);
					assert_true(nb >= 1);
				} else {
					assert_int_equal(picker_piece_verified(p, out[i].piece), 0);
				}
			}
			check(p);
		}
	}
	assert_int_equal(fails, 1);
	assert_true(bitfield_all(picker_have(p)));
	for (int k = 0; k < NPEERS; k++) {
		assert_int_equal(picker_peer_gone(p, (uint32_t)k, &has[k]), 0);
		bitfield_destroy(&has[k]);
	}
	for (uint32_t i = 0; i < NPIECES; i++)
		assert_int_equal(picker_availability(p, i), 0);
	check(p);
	picker_free(p);
}


/* Priorities: a higher one always first (a started low piece waits behind a
 * new high one), skip never; sequential mode goes in index order. */
static void test_priorities(void **state)
{
	(void)state;
	struct picker *p = make_uniform(16, 2 * BS);
	struct bitfield all;
	int every[17];
	for (int i = 0; i < 16; i++)
		every[i] = i;
	every[16] = -1;
	peer_with(p, &all, every);
	load_have(p, 12, 4); /* out of random-first mode */
	struct picker_peer pp = { 1, &all, 0 };
	uint64_t rng = 7;
	struct picker_block out[32];
	size_t n = 0;
	/* Piece 3 low and started by peer 2; 9 and 10 high; 0-2 skipped. */
	for (uint32_t i = 0; i < 3; i++)
		assert_int_equal(picker_set_priority(p, i, PICKER_PRIO_SKIP), 0);
	assert_int_equal(picker_set_priority(p, 3, PICKER_PRIO_LOW), 0);
	assert_int_equal(picker_set_priority(p, 9, PICKER_PRIO_HIGH), 0);
	assert_int_equal(picker_set_priority(p, 10, PICKER_PRIO_HIGH), 0);
	assert_int_equal(picker_set_priority(p, 11, 9), -EINVAL);
	assert_int_equal(picker_priority(p, 9), PICKER_PRIO_HIGH);
	assert_int_equal(picker_mark_requested(p, 2, 0, 0), -EPERM);
	assert_int_equal(picker_mark_requested(p, 2, 3, 0), 0);
	assert_int_equal(picker_pick(p, &pp, 32, out, 32, &n, &rng), 0);
	assert_int_equal(n, 2 * 8 + 1);
	assert_true(out[0].piece == 9 || out[0].piece == 10);
	assert_true(out[2].piece == 9 || out[2].piece == 10);
	for (size_t i = 4; i < n - 1; i++)
		assert_true(out[i].piece >= 4 && out[i].piece <= 11 && out[i].piece != 9 &&
			    out[i].piece != 10);
	assert_int_equal(out[n - 1].piece, 3); /* low: last, although started */
	assert_int_equal(out[n - 1].block, 1);
	/* Sequential: index order within a priority. */
	picker_set_sequential(p, true);
	assert_int_equal(picker_pick(p, &pp, 32, out, 32, &n, &rng), 0);
	assert_int_equal(n, 17);
	uint32_t want[] = { 9, 10, 4, 5, 6, 7, 8, 11 };
	for (size_t i = 0; i < 16; i++)
		assert_int_equal(out[i].piece, want[i / 2]);
	assert_int_equal(out[16].piece, 3);
	/* A reader's window over 4 and 5 while 7 is started at the same
	 * priority: 4 and 5 go first, in order, then 7. */
	picker_set_sequential(p, false);
	assert_int_equal(picker_set_priority(p, 7, PICKER_PRIO_DEADLINE), 0);
	assert_int_equal(picker_mark_requested(p, 2, 7, 0), 0);
	assert_int_equal(picker_set_priority(p, 4, PICKER_PRIO_DEADLINE), 0);
	assert_int_equal(picker_set_priority(p, 5, PICKER_PRIO_DEADLINE), 0);
	assert_int_equal(picker_pick(p, &pp, 5, out, 32, &n, &rng), 0);
	assert_int_equal(n, 5);
	uint32_t win[] = { 4, 4, 5, 5, 7 };
	for (size_t i = 0; i < n; i++)
		assert_int_equal(out[i].piece, win[i]);
	/* The newest reader's window (NOW) over 8 goes before the others. */
	assert_int_equal(picker_set_priority(p, 8, PICKER_PRIO_NOW), 0);
	assert_int_equal(picker_pick(p, &pp, 3, out, 32, &n, &rng), 0);
	assert_int_equal(n, 3);
	assert_int_equal(out[0].piece, 8);
	assert_int_equal(out[1].piece, 8);
	assert_int_equal(out[2].piece, 4);
	assert_int_equal(picker_set_priority(p, 8, PICKER_PRIO_NORMAL), 0);
	assert_int_equal(picker_abort_request(p, 2, 7, 0), 0);
	for (uint32_t i = 4; i <= 7; i++)
		assert_int_equal(picker_set_priority(p, i, PICKER_PRIO_NORMAL), 0);
	picker_set_sequential(p, true);
	check(p);
	/* Every wanted piece had: complete although 0-2 are missing. */
	for (uint32_t i = 3; i < 12; i++) {
		for (uint32_t blk = 0; blk < 2; blk++) {
			uint32_t who = i == 3 && blk == 0 ? 2 : 1;
			if (who == 1)
				assert_int_equal(picker_mark_requested(p, 1, i, blk), 0);
			size_t nc = 0;
			uint32_t cancel[PICKER_MAX_REQUESTERS];
			assert_int_equal(picker_mark_writing(p, who, i, blk, cancel,
							     PICKER_MAX_REQUESTERS, &nc),
					 0);
			assert_true(picker_mark_finished(p, i, blk) >= 0);
		}
		assert_int_equal(picker_piece_verified(p, i), 0);
	}
	assert_true(picker_is_complete(p));
	assert_int_equal(picker_set_priority(p, 1, PICKER_PRIO_NORMAL), 0);
	assert_false(picker_is_complete(p));
	check(p);
	bitfield_destroy(&all);
	picker_free(p);
}

/* The most urgent streaming piece: blocks asked of one peer are asked of a
 * second too, before anything else; other DEADLINE pieces are not. */
static void test_deadline_duplicates(void **state)
{
	(void)state;
	struct picker *p = make_uniform(8, 4 * BS);
	struct bitfield a, b;
	int every[] = { 0, 1, 2, 3, 4, 5, 6, 7, -1 };
	peer_with(p, &a, every);
	peer_with(p, &b, every);
	load_have(p, 6, 2);
	struct picker_peer pa = { 1, &a, 0 }, pb = { 2, &b, 0 };
	uint64_t rng = 3;
	struct picker_block out[32];
	size_t n = 0;
	assert_int_equal(picker_set_priority(p, 4, PICKER_PRIO_DEADLINE), 0);
	assert_int_equal(picker_set_priority(p, 5, PICKER_PRIO_DEADLINE), 0);
	/* Peer 1 takes the window (8 blocks). */
	assert_int_equal(picker_pick(p, &pa, 8, out, 32, &n, &rng), 0);
	assert_int_equal(n, 8);
	for (size_t i = 0; i < n; i++) {
		assert_true(out[i].piece == 4 || out[i].piece == 5);
		assert_int_equal(picker_mark_requested(p, 1, out[i].piece, out[i].block), 0);
	}
	/* Peer 2 is asked for piece 4's four blocks again first, then new
	 * pieces; piece 5's blocks are not duplicated. */
	assert_int_equal(picker_pick(p, &pb, 8, out, 32, &n, &rng), 0);
	assert_int_equal(n, 8);
	for (size_t i = 0; i < 4; i++)
		assert_int_equal(out[i].piece, 4);
	for (size_t i = 4; i < n; i++)
		assert_true(out[i].piece < 4);
	check(p);
	bitfield_destroy(&a);
	bitfield_destroy(&b);
	picker_free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_new_rejects),
		cmocka_unit_test(test_variable_lengths),
		cmocka_unit_test(test_rarest_first),
		cmocka_unit_test(test_random_among_equal),
		cmocka_unit_test(test_random_first_pieces),
		cmocka_unit_test(test_partial_preference),
		cmocka_unit_test(test_endgame_cancels),
		cmocka_unit_test(test_endgame_requester_cap),
		cmocka_unit_test(test_endgame_busy_cap),
		cmocka_unit_test(test_hash_fail_blame),
		cmocka_unit_test(test_hash_fail_many_contributors),
		cmocka_unit_test(test_peer_gone_and_timeout),
		cmocka_unit_test(test_resume_and_wanted),
		cmocka_unit_test(test_simulated_swarm),
		cmocka_unit_test(test_priorities),
		cmocka_unit_test(test_deadline_duplicates),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
