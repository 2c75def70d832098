/* test_layerfetch.c: unit tests for transfer/layerfetch (BEP 52 layers, answers only). */
#include "config.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "transfer/layerfetch.h"

static uint8_t hashes[512 * 32];

static struct layerfetch *make(void)
{
	/* file 0: 1 piece (no layer); file 1: 600 pieces (2 chunks of 512);
	 * file 2: 3 pieces (1 chunk of 4) */
	const uint32_t counts[] = { 1, 600, 3 };
	struct layerfetch *lf = NULL;
	assert_int_equal(layerfetch_new(counts, 3, 512, &lf), 0);
	assert_int_equal(layerfetch_chunk(lf, 0), 0);
	assert_int_equal(layerfetch_chunk(lf, 1), 512);
	assert_int_equal(layerfetch_chunk(lf, 2), 4);
	return lf;
}

static void test_new_rejects(void **state)
{
	(void)state;
	const uint32_t counts[] = { 5 };
	struct layerfetch *lf = (struct layerfetch *)1;
	assert_int_equal(layerfetch_new(counts, 1, 3, &lf), -EINVAL);
	assert_null(lf);
	const uint32_t huge[] = { LAYERFETCH_MAX_PIECES + 1 };
	assert_int_equal(layerfetch_new(huge, 1, 512, &lf), -EINVAL);
}

/* The defect: unsolicited HASHES are refused, so an honest peer that
 * completes a layer is never blamed for a liar's chunk. */
static void test_unsolicited_refused(void **state)
{
	(void)state;
	struct layerfetch *lf = make();
	memset(hashes, 0xbb, sizeof hashes);
	/* Nothing asked yet: a liar's chunk is not stored. */
	assert_int_equal(layerfetch_on_hashes(lf, 66, 1, 0, 512, hashes, 512), -EPERM);
	struct layerfetch_req req[8];
	assert_int_equal(layerfetch_ask(lf, 7, req, 8), 3);
	assert_int_equal(req[0].file, 1);
	assert_int_equal(req[1].index, 512);
	assert_int_equal(req[2].file, 2);
	assert_int_equal(req[2].length, 4);
	/* Asked of 7, not of 66. */
	assert_int_equal(layerfetch_on_hashes(lf, 66, 1, 0, 512, hashes, 512), -EPERM);
	memset(hashes, 0x77, sizeof hashes);
	assert_int_equal(layerfetch_on_hashes(lf, 7, 1, 0, 512, hashes, 512), 0);
	assert_int_equal(layerfetch_on_hashes(lf, 7, 1, 0, 512, hashes, 512), -EPERM); /* dup */
	assert_int_equal(layerfetch_on_hashes(lf, 7, 1, 512, 512, hashes, 511), -EINVAL);
	assert_int_equal(layerfetch_on_hashes(lf, 7, 1, 100, 512, hashes, 512), -EINVAL);
	assert_int_equal(layerfetch_on_hashes(lf, 7, 1, 512, 512, hashes, 512), 1);
	size_t len = 0;
	const uint8_t *layer = layerfetch_layer(lf, 1, &len);
	assert_non_null(layer);
	assert_int_equal(len, 600 * 32);
	assert_int_equal(layer[0], 0x77);
	assert_int_equal(layer[len - 1], 0x77);
	uint32_t sender = 0;
	assert_int_equal(layerfetch_failed(lf, 1, &sender), 0);
	assert_int_equal(sender, 7);
	assert_null(layerfetch_layer(lf, 1, &len));
	assert_false(layerfetch_complete(lf));
	layerfetch_free(lf);
}

/* Asking another peer drops what came before; each layer has one sender. */
static void test_one_sender_per_layer(void **state)
{
	(void)state;
	struct layerfetch *lf = make();
	struct layerfetch_req req[8];
	assert_int_equal(layerfetch_ask(lf, 1, req, 8), 3);
	assert_int_equal(layerfetch_on_hashes(lf, 1, 1, 0, 512, hashes, 512), 0);
	assert_int_equal(layerfetch_on_hashes(lf, 1, 2, 0, 4, hashes, 4), 1);
	assert_int_equal(layerfetch_done(lf, 2), 0);
	/* Peer 1 never sends chunk 2 of file 1; peer 2 is asked for all of file 1. */
	assert_int_equal(layerfetch_ask(lf, 2, req, 8), 2);
	assert_int_equal(layerfetch_on_hashes(lf, 1, 1, 512, 512, hashes, 512), -EPERM);
	assert_int_equal(layerfetch_on_hashes(lf, 2, 1, 512, 512, hashes, 512), 0);
	assert_int_equal(layerfetch_reject(lf, 2, 1, 0), 0);
	assert_int_equal(layerfetch_reject(lf, 2, 1, 0), -ENOENT);
	assert_int_equal(layerfetch_on_hashes(lf, 2, 1, 0, 512, hashes, 512), -EPERM);
	/* Too little room: reported, not recorded. */
	assert_int_equal(layerfetch_ask(lf, 3, req, 1), 2);
	assert_int_equal(layerfetch_on_hashes(lf, 3, 1, 0, 512, hashes, 512), -EPERM);
	assert_int_equal(layerfetch_ask(lf, 3, req, 8), 2);
	layerfetch_peer_gone(lf, 3);
	assert_int_equal(layerfetch_on_hashes(lf, 3, 1, 0, 512, hashes, 512), -EPERM);
	assert_int_equal(layerfetch_ask(lf, 4, req, 8), 2);
	assert_int_equal(layerfetch_on_hashes(lf, 4, 1, 512, 512, hashes, 512), 0);
	assert_int_equal(layerfetch_on_hashes(lf, 4, 1, 0, 512, hashes, 512), 1);
	/* Whole and waiting for its verdict: not asked again. */
	assert_int_equal(layerfetch_ask(lf, 5, req, 8), 0);
	assert_int_equal(layerfetch_done(lf, 1), 0);
	assert_true(layerfetch_complete(lf));
	assert_int_equal(layerfetch_done(lf, 1), -EINVAL);
	layerfetch_free(lf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_new_rejects),
		cmocka_unit_test(test_unsolicited_refused),
		cmocka_unit_test(test_one_sender_per_layer),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
