/* test_mdfetch.c: unit tests for transfer/mdfetch (BEP 9 fetch with an agreed size). */
#include "config.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "transfer/mdfetch.h"

#define PS WIRE_METADATA_PIECE

static void check(const struct mdfetch *mf)
{
	const char *what = NULL;
	if (mdfetch_check_invariants(mf, &what) != 0)
		fail_msg("invariant broken: %s", what ? what : "?");
}

static struct mdfetch *make(void)
{
	struct mdfetch *mf = NULL;
	assert_int_equal(mdfetch_new(&mf), 0);
	assert_non_null(mf);
	return mf;
}

/* Ask `peer` (announcing `size`) for everything and answer each piece with
 * bytes `fill`; returns the last mdfetch_data result. */
static int fetch_all(struct mdfetch *mf, uint32_t peer, uint32_t size, uint8_t fill)
{
	uint32_t pieces[MDFETCH_MAX_PIECES];
	size_t n = mdfetch_pick(mf, peer, size, pieces, MDFETCH_MAX_PIECES);
	static uint8_t data[PS];
	memset(data, fill, sizeof data);
	int rc = -1;
	for (size_t i = 0; i < n; i++) {
		uint32_t len = size - pieces[i] * PS < PS ? size - pieces[i] * PS : PS;
		rc = mdfetch_data(mf, peer, pieces[i], size, data, len);
		assert_true(rc >= 0);
	}
	check(mf);
	return rc;
}

static void test_announce_limits(void **state)
{
	(void)state;
	struct mdfetch *mf = make();
	assert_int_equal(mdfetch_size(mf), 0);
	assert_int_equal(mdfetch_announce(mf, 0), -EMSGSIZE);
	assert_int_equal(mdfetch_announce(mf, WIRE_METADATA_MAX + 1), -EMSGSIZE);
	for (uint32_t i = 0; i < MDFETCH_MAX_SIZES; i++)
		assert_int_equal(mdfetch_announce(mf, 1000 + i), 0);
	assert_int_equal(mdfetch_announce(mf, 5000), -ENOSPC);
	/* The first heard is fetched while all are equal. */
	assert_int_equal(mdfetch_size(mf), 1000);
	/* A size nobody announces any more frees its entry. */
	assert_false(mdfetch_peer_gone(mf, 9, 1003));
	assert_int_equal(mdfetch_announce(mf, 5000), 0);
	check(mf);
	mdfetch_free(mf);
}

/* The defect: a liar's wrong size first, then the honest size: when the
 * liar's dictionary fails, the honest size is fetched and completes. */
static void test_wrong_size_then_honest(void **state)
{
	(void)state;
	const uint32_t real = 3 * PS + 100, wrong = real + PS;
	struct mdfetch *mf = make();
	assert_int_equal(mdfetch_announce(mf, wrong), 0); /* liar, peer 1 */
	assert_int_equal(mdfetch_size(mf), wrong);
	assert_int_equal(mdfetch_announce(mf, real), 0);  /* honest, peer 2 */
	uint32_t pieces[MDFETCH_MAX_PIECES];
	/* The honest peer is not asked for a size it did not announce. */
	assert_int_equal(mdfetch_pick(mf, 2, real, pieces, MDFETCH_MAX_PIECES), 0);
	assert_int_equal(fetch_all(mf, 1, wrong, 0xee), 1);
	size_t len = 0;
	assert_non_null(mdfetch_buffer(mf, &len));
	assert_int_equal(len, wrong);
	uint32_t blame[MDFETCH_MAX_PIECES];
	assert_int_equal(mdfetch_failed(mf, blame, MDFETCH_MAX_PIECES), 1);
	assert_int_equal(blame[0], 1);
	check(mf);
	/* Both sizes have one announcer; the failed one has a setback. */
	assert_int_equal(mdfetch_size(mf), real);
	assert_null(mdfetch_buffer(mf, &len));
	assert_int_equal(fetch_all(mf, 2, real, 0x11), 1);
	const uint8_t *b = mdfetch_buffer(mf, &len);
	assert_int_equal(len, real);
	assert_int_equal(b[0], 0x11);
	assert_int_equal(b[real - 1], 0x11);
	mdfetch_free(mf);
}

/* A liar that announces and never answers: a round without progress moves on. */
static void test_silent_size_stalls(void **state)
{
	(void)state;
	const uint32_t real = 2 * PS, wrong = 9 * PS;
	struct mdfetch *mf = make();
	assert_int_equal(mdfetch_announce(mf, wrong), 0);
	uint32_t pieces[MDFETCH_MAX_PIECES];
	assert_int_equal(mdfetch_pick(mf, 1, wrong, pieces, MDFETCH_MAX_PIECES), 9);
	assert_int_equal(mdfetch_announce(mf, real), 0);
	assert_int_equal(mdfetch_size(mf), wrong);
	assert_true(mdfetch_round(mf)); /* nothing arrived: stall */
	assert_int_equal(mdfetch_size(mf), real);
	check(mf);
	/* Progress keeps the size through a round. */
	assert_int_equal(mdfetch_pick(mf, 2, real, pieces, MDFETCH_MAX_PIECES), 2);
	static uint8_t data[PS];
	assert_int_equal(mdfetch_data(mf, 2, 0, real, data, PS), 0);
	assert_false(mdfetch_round(mf));
	assert_int_equal(mdfetch_size(mf), real);
	/* The round returned the unanswered piece 1 to NONE: ask again. */
	assert_int_equal(mdfetch_pick(mf, 2, real, pieces, MDFETCH_MAX_PIECES), 1);
	assert_int_equal(pieces[0], 1);
	assert_int_equal(mdfetch_data(mf, 2, 1, real, data, PS), 1);
	check(mf);
	mdfetch_free(mf);
}

/* Data is accepted only from the peer that was asked, with the right sizes. */
static void test_only_asked_peer(void **state)
{
	(void)state;
	const uint32_t size = 2 * PS + 1;
	struct mdfetch *mf = make();
	assert_int_equal(mdfetch_announce(mf, size), 0);
	assert_int_equal(mdfetch_announce(mf, size), 0);
	uint32_t pieces[MDFETCH_MAX_PIECES];
	assert_int_equal(mdfetch_pick(mf, 1, size, pieces, 1), 1);
	assert_int_equal(pieces[0], 0);
	assert_int_equal(mdfetch_pick(mf, 2, size, pieces, MDFETCH_MAX_PIECES), 2);
	static uint8_t data[PS];
	assert_int_equal(mdfetch_data(mf, 2, 0, size, data, PS), -EPERM); /* asked of 1 */
	assert_int_equal(mdfetch_data(mf, 1, 0, size + 1, data, PS), -EINVAL);
	assert_int_equal(mdfetch_data(mf, 1, 0, size, data, PS - 1), -EINVAL);
	assert_int_equal(mdfetch_data(mf, 1, 9, size, data, PS), -EPERM);
	assert_int_equal(mdfetch_data(mf, 1, 0, size, data, PS), 0);
	assert_int_equal(mdfetch_data(mf, 1, 0, size, data, PS), -EPERM); /* duplicate */
	assert_int_equal(mdfetch_reject(mf, 1, 1), -ENOENT);
	assert_int_equal(mdfetch_reject(mf, 2, 1), 0);
	/* Peer 2 leaves: its piece 2 is free again, and asked of 1. */
	assert_false(mdfetch_peer_gone(mf, 2, size));
	assert_int_equal(mdfetch_pick(mf, 1, size, pieces, MDFETCH_MAX_PIECES), 2);
	assert_int_equal(mdfetch_data(mf, 1, 2, size, data, 1), 0);
	assert_int_equal(mdfetch_data(mf, 1, 1, size, data, PS), 1);
	assert_int_equal(mdfetch_failed(mf, NULL, 0), 1);
	check(mf);
	mdfetch_free(mf);
}

/* Every sender is blamed, however many; the last announcer leaving moves on. */
static void test_blame_and_gone(void **state)
{
	(void)state;
	const uint32_t size = 40 * PS, other = 3 * PS;
	struct mdfetch *mf = make();
	for (int i = 0; i < 40; i++)
		assert_int_equal(mdfetch_announce(mf, size), 0);
	assert_int_equal(mdfetch_announce(mf, other), 0);
	static uint8_t data[PS];
	uint32_t piece;
	for (uint32_t peer = 0; peer < 40; peer++) {
		assert_int_equal(mdfetch_pick(mf, 100 + peer, size, &piece, 1), 1);
		assert_int_equal(mdfetch_data(mf, 100 + peer, piece, size, data, PS),
				 peer == 39 ? 1 : 0);
	}
	uint32_t blame[MDFETCH_MAX_PIECES];
	assert_int_equal(mdfetch_failed(mf, blame, 16), 40); /* more than fit */
	assert_int_equal(blame[15], 115);
	assert_int_equal(mdfetch_failed(mf, blame, MDFETCH_MAX_PIECES), -EINVAL); /* not complete */
	/* Fewer setbacks win over more announcers. */
	assert_int_equal(mdfetch_size(mf), other);
	assert_true(mdfetch_peer_gone(mf, 7, other));
	assert_int_equal(mdfetch_size(mf), size);
	check(mf);
	mdfetch_free(mf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_announce_limits),
		cmocka_unit_test(test_wrong_size_then_honest),
		cmocka_unit_test(test_silent_size_stalls),
		cmocka_unit_test(test_only_asked_peer),
		cmocka_unit_test(test_blame_and_gone),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
