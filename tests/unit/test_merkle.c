/* test_merkle.c: BEP 52 merkle trees (transfer/merkle.h) against values
 * computed independently here with plain SHA-256 calls. */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/sha256.h"
#include "transfer/merkle.h"

#define B XFER_BLOCK_SIZE
#define H MERKLE_HASH_LEN

static const uint8_t Z[H]; /* a zero leaf */

/* SHA-256 of a buffer, the test's own way. */
static void sha(const void *p, size_t n, uint8_t out[H])
{
	assert_int_equal(sha256_digest(p, n, out), 0);
}

/* SHA-256(a || b). */
static void pair(const uint8_t a[H], const uint8_t b[H], uint8_t out[H])
{
	uint8_t cat[2 * H];
	memcpy(cat, a, H);
	memcpy(cat + H, b, H);
	sha(cat, sizeof cat, out);
}

/* Deterministic non-trivial content. */
static uint8_t *make_data(size_t n)
{
	uint8_t *d = malloc(n ? n : 1);
	assert_non_null(d);
	uint32_t x = 2463534242u;
	for (size_t k = 0; k < n; k++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		d[k] = (uint8_t)x;
	}
	return d;
}

/* Leaf k of the data: the block hashed at its real length. */
static void leaf(const uint8_t *d, size_t n, size_t k, uint8_t out[H])
{
	size_t off = k * B, len = n - off < B ? n - off : B;
	sha(d + off, len, out);
}

/* Reference: the naive whole tree (every leaf in memory, zero leaves up to a
 * power of two), returning the root and the layer `height` levels above the
 * leaves (malloc'd, `*layer_n` entries before padding). */
static void naive_tree(const uint8_t *d, size_t n, unsigned height, uint8_t root[H],
		       uint8_t **layer_out, size_t *layer_n)
{
	size_t blocks = (n + B - 1) / B, width = 1;
	while (width < blocks)
		width <<= 1;
	uint8_t *lv = calloc(width, H);
	assert_non_null(lv);
	for (size_t k = 0; k < blocks; k++)
		leaf(d, n, k, lv + k * H);
	size_t real = blocks;
	for (unsigned h = 0; width > 1; h++) {
		if (h == height && layer_out) {
			*layer_out = malloc(real * H);
			memcpy(*layer_out, lv, real * H);
			*layer_n = real;
			layer_out = NULL;
		}
		for (size_t k = 0; k < width / 2; k++)
			pair(lv + 2 * k * H, lv + (2 * k + 1) * H, lv + k * H);
		width /= 2;
		real = (real + 1) / 2;
	}
	if (layer_out) { /* the layer is the root itself */
		*layer_out = malloc(H);
		memcpy(*layer_out, lv, H);
		*layer_n = 1;
	}
	memcpy(root, lv, H);
	free(lv);
}

static struct sha256_ctx *g_ctx;

static int setup(void **state)
{
	(void)state;
	g_ctx = sha256_new();
	return g_ctx ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	sha256_free(g_ctx);
	return 0;
}

static void file_root(const uint8_t *d, size_t n, uint64_t pl, uint8_t root[H])
{
	assert_int_equal(merkle_file_hash(g_ctx, d, n, pl, NULL, root), 0);
}

static void test_geometry(void **state)
{
	(void)state;
	assert_false(merkle_piece_length_ok(0));
	assert_false(merkle_piece_length_ok(B / 2));
	assert_false(merkle_piece_length_ok(3 * B));
	assert_true(merkle_piece_length_ok(B));
	assert_true(merkle_piece_length_ok(1u << 24));
	assert_false(merkle_piece_length_ok((uint64_t)B << (MERKLE_MAX_PIECE_LEVELS + 1)));
	assert_int_equal(merkle_piece_count(0, 4 * B), 0);
	assert_int_equal(merkle_piece_count(1, 4 * B), 1);
	assert_int_equal(merkle_piece_count(4 * B, 4 * B), 1);
	assert_int_equal(merkle_piece_count(4 * B + 1, 4 * B), 2);
	/* A file of one piece: next power of two of its blocks. */
	assert_int_equal(merkle_piece_leaves(0, 4 * B), 0);
	assert_int_equal(merkle_piece_leaves(1, 4 * B), 1);
	assert_int_equal(merkle_piece_leaves(B, 4 * B), 1);
	assert_int_equal(merkle_piece_leaves(B + 1, 4 * B), 2);
	assert_int_equal(merkle_piece_leaves(2 * B + 1, 4 * B), 4);
	assert_int_equal(merkle_piece_leaves(4 * B, 4 * B), 4);
	assert_int_equal(merkle_piece_leaves(5 * B, 8 * B), 8);
	/* Larger than one piece: the full piece width, even for the last piece. */
	assert_int_equal(merkle_piece_leaves(4 * B + 1, 4 * B), 4);
	assert_int_equal(merkle_piece_size(4 * B + 1, 4 * B, 0), 4 * B);
	assert_int_equal(merkle_piece_size(4 * B + 1, 4 * B, 1), 1);
	assert_int_equal(merkle_piece_size(4 * B + 1, 4 * B, 2), 0);
}

static void test_zero_root(void **state)
{
	(void)state;
	uint8_t got[H], want[H], z2[H];
	assert_int_equal(merkle_zero_root(g_ctx, 1, got), 0);
	assert_memory_equal(got, Z, H);
	pair(Z, Z, z2);
	assert_int_equal(merkle_zero_root(g_ctx, 2, got), 0);
	assert_memory_equal(got, z2, H);
	pair(z2, z2, want);
	assert_int_equal(merkle_zero_root(g_ctx, 4, got), 0);
	assert_memory_equal(got, want, H);
	assert_int_equal(merkle_zero_root(g_ctx, 3, got), -EINVAL);
	assert_int_equal(merkle_zero_root(g_ctx, 0, got), -EINVAL);
}

/* merkle_reduce: leaves to their subtree root, in place; four zero
 * leaves make merkle_zero_root(4), and one leaf is its own root. */
static void test_reduce(void **state)
{
	(void)state;
	uint8_t buf[4 * H], a[H], b[H], ab[H], want[H];
	memset(a, 0x11, H);
	memset(b, 0x22, H);
	memcpy(buf, a, H);
	memcpy(buf + H, b, H);
	merkle_reduce(g_ctx, buf, 2);
	pair(a, b, ab);
	assert_memory_equal(buf, ab, H);
	memset(buf, 0, sizeof buf);
	merkle_reduce(g_ctx, buf, 4);
	assert_int_equal(merkle_zero_root(g_ctx, 4, want), 0);
	assert_memory_equal(buf, want, H);
	memcpy(buf, a, H);
	merkle_reduce(g_ctx, buf, 1);
	assert_memory_equal(buf, a, H);
}

/* Hand-built vectors: each expected root written out as the BEP 52 tree. */
static void test_one_byte(void **state)
{
	(void)state;
	uint8_t *d = make_data(1), want[H], got[H];
	sha(d, 1, want); /* one leaf: the root is the leaf, not padded */
	file_root(d, 1, 4 * B, got);
	assert_memory_equal(got, want, H);
	assert_int_equal(merkle_piece_root(g_ctx, 1, 4 * B, 0, d, 1, got), 0);
	assert_memory_equal(got, want, H);
	free(d);
}

static void test_one_block(void **state)
{
	(void)state;
	uint8_t *d = make_data(B), want[H], got[H];
	sha(d, B, want);
	file_root(d, B, 4 * B, got);
	assert_memory_equal(got, want, H);
	file_root(d, B, B, got); /* piece length = one block */
	assert_memory_equal(got, want, H);
	free(d);
}

static void test_block_plus_one(void **state)
{
	(void)state;
	uint8_t *d = make_data(B + 1), l0[H], l1[H], want[H], got[H];
	sha(d, B, l0);
	sha(d + B, 1, l1); /* last block at its real length: 1 byte */
	pair(l0, l1, want); /* one piece of 4 blocks: padded to 2 leaves only */
	file_root(d, B + 1, 4 * B, got);
	assert_memory_equal(got, want, H);
	/* With 16 KiB pieces the file is two pieces, same tree. */
	uint8_t layer[2 * H];
	assert_int_equal(merkle_file_hash(g_ctx, d, B + 1, B, layer, got), 0);
	assert_memory_equal(got, want, H);
	assert_memory_equal(layer, l0, H);
	assert_memory_equal(layer + H, l1, H);
	free(d);
}

static void test_one_piece(void **state)
{
	(void)state;
	size_t n = 4 * B;
	uint8_t *d = make_data(n), l[4][H], a[H], b[H], want[H], got[H];
	for (int k = 0; k < 4; k++)
		sha(d + k * B, B, l[k]);
	pair(l[0], l[1], a);
	pair(l[2], l[3], b);
	pair(a, b, want);
	file_root(d, n, 4 * B, got);
	assert_memory_equal(got, want, H);
	assert_int_equal(merkle_piece_root(g_ctx, n, 4 * B, 0, d, n, got), 0);
	assert_memory_equal(got, want, H);

	/* Three blocks in a 4-block piece: a zero leaf (not a hash) fills in. */
	pair(l[2], Z, b);
	pair(a, b, want);
	file_root(d, 3 * B, 4 * B, got);
	assert_memory_equal(got, want, H);
	free(d);
}

static void test_piece_plus_one(void **state)
{
	(void)state;
	size_t n = 4 * B + 1;
	uint8_t *d = make_data(n), l[5][H], a[H], b[H], p0[H], p1[H], want[H];
	for (int k = 0; k < 4; k++)
		sha(d + k * B, B, l[k]);
	sha(d + 4 * B, 1, l[4]);
	pair(l[0], l[1], a);
	pair(l[2], l[3], b);
	pair(a, b, p0);
	/* The last piece of a multi-piece file is padded to the full piece width. */
	uint8_t zz[H];
	pair(Z, Z, zz);
	pair(l[4], Z, a);
	pair(a, zz, p1);
	pair(p0, p1, want);

	uint8_t layer[2 * H], got[H];
	assert_int_equal(merkle_file_hash(g_ctx, d, n, 4 * B, layer, got), 0);
	assert_memory_equal(got, want, H);
	assert_memory_equal(layer, p0, H);
	assert_memory_equal(layer + H, p1, H);
	assert_int_equal(merkle_piece_root(g_ctx, n, 4 * B, 1, d + 4 * B, 1, got), 0);
	assert_memory_equal(got, p1, H);
	assert_int_equal(merkle_layer_root(g_ctx, layer, 2, 4 * B, got), 0);
	assert_memory_equal(got, want, H);
	assert_int_equal(merkle_layer_verify(g_ctx, layer, sizeof layer, n, 4 * B, want), 0);
	free(d);
}

static void test_three_pieces(void **state)
{
	(void)state;
	/* Piece = 2 blocks; 3 pieces, the last one short (1 block + 100 bytes). */
	size_t n = 5 * B + 100;
	uint8_t *d = make_data(n), l[6][H], p[3][H], pad[H], a[H], b[H], want[H];
	for (int k = 0; k < 5; k++)
		sha(d + k * B, B, l[k]);
	sha(d + 5 * B, 100, l[5]);
	for (int k = 0; k < 3; k++)
		pair(l[2 * k], l[2 * k + 1], p[k]);
	/* The layer is padded with the root of an all-zero piece, not with zeros. */
	pair(Z, Z, pad);
	pair(p[0], p[1], a);
	pair(p[2], pad, b);
	pair(a, b, want);

	uint8_t layer[3 * H], got[H];
	assert_int_equal(merkle_file_hash(g_ctx, d, n, 2 * B, layer, got), 0);
	assert_memory_equal(got, want, H);
	for (int k = 0; k < 3; k++)
		assert_memory_equal(layer + k * H, p[k], H);
	assert_int_equal(merkle_layer_root(g_ctx, layer, 3, 2 * B, got), 0);
	assert_memory_equal(got, want, H);
	/* Padding with zero bytes instead would give a different root. */
	pair(p[2], Z, b);
	pair(a, b, got);
	assert_memory_not_equal(got, want, H);
	free(d);
}

static void test_power_of_two(void **state)
{
	(void)state;
	/* 1 MiB = 64 blocks; piece 64 KiB = 4 blocks; 16 pieces, no padding at all. */
	size_t n = 1 << 20;
	uint8_t *d = make_data(n), want[H], got[H], *ref_layer = NULL;
	size_t ref_n = 0;
	naive_tree(d, n, 2, want, &ref_layer, &ref_n);
	assert_int_equal(ref_n, 16);
	uint8_t *layer = malloc(16 * H);
	assert_int_equal(merkle_file_hash(g_ctx, d, n, 4 * B, layer, got), 0);
	assert_memory_equal(got, want, H);
	assert_memory_equal(layer, ref_layer, 16 * H);
	/* Same file, different piece length: same root (the tree does not depend on it). */
	file_root(d, n, 16 * B, got);
	assert_memory_equal(got, want, H);
	file_root(d, n, 64 * B, got);
	assert_memory_equal(got, want, H);
	free(layer);
	free(ref_layer);
	free(d);
}

/* Many sizes and piece lengths against the naive whole-tree reference. */
static void test_against_naive(void **state)
{
	(void)state;
	static const size_t sizes[] = { 1, 2, B - 1, B, B + 1, 2 * B, 3 * B - 7, 4 * B,
					7 * B + 5, 8 * B, 9 * B, 17 * B + 1, 33 * B - 1 };
	static const unsigned bpp_log[] = { 0, 1, 2, 3, 5 };
	uint8_t *d = make_data(33 * B);
	for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
		for (size_t q = 0; q < sizeof bpp_log / sizeof bpp_log[0]; q++) {
			size_t n = sizes[s];
			uint64_t pl = (uint64_t)B << bpp_log[q];
			uint8_t want[H], got[H], *ref_layer = NULL;
			size_t ref_n = 0;
			naive_tree(d, n, bpp_log[q], want, &ref_layer, &ref_n);
			uint64_t pieces = merkle_piece_count(n, pl);
			uint8_t *layer = malloc(pieces * H);
			assert_int_equal(merkle_file_hash(g_ctx, d, n, pl, layer, got), 0);
			assert_memory_equal(got, want, H);
			if (n > pl) { /* a piece layer exists only then */
				assert_int_equal(ref_n, pieces);
				assert_memory_equal(layer, ref_layer, pieces * H);
				assert_int_equal(merkle_layer_verify(g_ctx, layer, pieces * H, n, pl, want), 0);
			}
			for (uint64_t k = 0; k < pieces; k++) {
				size_t len = (size_t)merkle_piece_size(n, pl, k);
				assert_int_equal(merkle_piece_verify(g_ctx, layer, n, pl, k, d + k * pl, len), 0);
			}
			free(layer);
			free(ref_layer);
		}
	}
	free(d);
}

static void test_empty_file(void **state)
{
	(void)state;
	uint8_t got[H];
	/* BEP 52: an empty file has no pieces root. */
	assert_int_equal(merkle_file_hash(g_ctx, "", 0, 4 * B, NULL, got), -EINVAL);
	assert_int_equal(merkle_piece_count(0, 4 * B), 0);
	assert_int_equal(merkle_piece_root(g_ctx, 0, 4 * B, 0, "", 0, got), -EINVAL);
	struct merkle_piece mp;
	assert_int_equal(merkle_piece_init(&mp, g_ctx, 4), 0);
	assert_int_equal(merkle_piece_final(&mp, got), -EINVAL);
}

static void test_incremental(void **state)
{
	(void)state;
	size_t n = 8 * B;
	uint8_t *d = make_data(n), want[H], got[H];
	assert_int_equal(merkle_piece_root(g_ctx, n - 3, n, 0, d, n - 3, want), 0);
	/* Odd chunk sizes across block boundaries give the same root. */
	static const size_t chunks[] = { 1, 7, B - 1, B, B + 1, 3 * B };
	for (size_t c = 0; c < sizeof chunks / sizeof chunks[0]; c++) {
		struct merkle_piece mp;
		assert_int_equal(merkle_piece_init(&mp, g_ctx, 8), 0);
		for (size_t off = 0; off < n - 3; off += chunks[c]) {
			size_t take = n - 3 - off < chunks[c] ? n - 3 - off : chunks[c];
			assert_int_equal(merkle_piece_update(&mp, d + off, take), 0);
		}
		assert_int_equal(merkle_piece_update(&mp, d, 0), 0);
		assert_int_equal(merkle_piece_final(&mp, got), 0);
		assert_memory_equal(got, want, H);
	}
	/* Feeding more than the piece holds is refused and changes nothing. */
	struct merkle_piece mp;
	assert_int_equal(merkle_piece_init(&mp, g_ctx, 2), 0);
	assert_int_equal(merkle_piece_update(&mp, d, 2 * B - 1), 0);
	assert_int_equal(merkle_piece_update(&mp, d, 2), -EMSGSIZE);
	assert_int_equal(merkle_piece_update(&mp, d + 2 * B - 1, 1), 0);
	assert_int_equal(merkle_piece_final(&mp, got), 0);
	assert_int_equal(merkle_piece_root(g_ctx, 2 * B, 2 * B, 0, d, 2 * B, want), 0);
	assert_memory_equal(got, want, H);
	assert_int_equal(merkle_piece_init(&mp, g_ctx, 3), -EINVAL);
	assert_int_equal(merkle_piece_init(&mp, g_ctx, 0), -EINVAL);
	/* Wrong data length for a piece. */
	assert_int_equal(merkle_piece_root(g_ctx, 5 * B, 4 * B, 1, d, 2, got), -EINVAL);
	assert_int_equal(merkle_piece_root(g_ctx, 5 * B, 4 * B, 2, d, 0, got), -EINVAL);
	assert_int_equal(merkle_piece_root(g_ctx, 5 * B, 3 * B, 0, d, 3 * B, got), -EINVAL);
	free(d);
}

static void test_verify_failures(void **state)
{
	(void)state;
	size_t n = 9 * B + 3;
	uint64_t pl = 2 * B;
	uint8_t *d = make_data(n), root[H], layer[5 * H];
	assert_int_equal(merkle_file_hash(g_ctx, d, n, pl, layer, root), 0);
	assert_int_equal(merkle_layer_verify(g_ctx, layer, sizeof layer, n, pl, root), 0);
	assert_int_equal(merkle_layer_verify(g_ctx, layer, sizeof layer - H, n, pl, root), -EINVAL);
	assert_int_equal(merkle_layer_verify(g_ctx, layer, sizeof layer - 1, n, pl, root), -EINVAL);
	assert_int_equal(merkle_layer_verify(g_ctx, layer, sizeof layer, 0, pl, root), -EINVAL);
	layer[3 * H + 7] ^= 1;
	assert_int_equal(merkle_layer_verify(g_ctx, layer, sizeof layer, n, pl, root), -EBADMSG);
	layer[3 * H + 7] ^= 1;

	/* A corrupted piece is caught, the others still pass. */
	d[2 * pl + 5] ^= 0x80;
	assert_int_equal(merkle_piece_verify(g_ctx, layer, n, pl, 2, d + 2 * pl, pl), -EBADMSG);
	assert_int_equal(merkle_piece_verify(g_ctx, layer, n, pl, 1, d + pl, pl), 0);
	/* Corrupting the last, short piece past its end (in the zero padding) is impossible:
	 * its length is exact, so a truncated or extended piece is refused. */
	assert_int_equal(merkle_piece_verify(g_ctx, layer, n, pl, 4, d + 4 * pl, B + 3), 0);
	assert_int_equal(merkle_piece_verify(g_ctx, layer, n, pl, 4, d + 4 * pl, B + 2), -EINVAL);
	assert_int_equal(merkle_piece_verify(g_ctx, layer, n, pl, 5, d, 1), -EINVAL);
	free(d);
}

struct worker {
	const uint8_t *data;
	uint64_t size, pl, first, step;
	uint8_t *layer;
	int rc;
};

static void *hash_pieces(void *arg)
{
	struct worker *w = arg;
	struct sha256_ctx *ctx = sha256_new();
	if (!ctx) {
		w->rc = -ENOMEM;
		return NULL;
	}
	uint64_t count = merkle_piece_count(w->size, w->pl);
	for (uint64_t k = w->first; k < count && w->rc == 0; k += w->step)
		w->rc = merkle_piece_root(ctx, w->size, w->pl, k, w->data + k * w->pl,
					  (size_t)merkle_piece_size(w->size, w->pl, k),
					  w->layer + k * H);
	sha256_free(ctx);
	return NULL;
}

/* Two threads hash alternate pieces of one file; the layer and root match. */
static void test_two_threads(void **state)
{
	(void)state;
	size_t n = 37 * B + 11;
	uint64_t pl = 4 * B;
	uint64_t count = merkle_piece_count(n, pl);
	uint8_t *d = make_data(n), *layer = calloc(count, H), want[H], got[H];
	struct worker w[2] = {
		{ d, n, pl, 0, 2, layer, 0 },
		{ d, n, pl, 1, 2, layer, 0 },
	};
	pthread_t t[2];
	for (int k = 0; k < 2; k++)
		assert_int_equal(pthread_create(&t[k], NULL, hash_pieces, &w[k]), 0);
	for (int k = 0; k < 2; k++) {
		assert_int_equal(pthread_join(t[k], NULL), 0);
		assert_int_equal(w[k].rc, 0);
	}
	assert_int_equal(merkle_layer_root(g_ctx, layer, count, pl, got), 0);
	naive_tree(d, n, 2, want, NULL, NULL);
	assert_memory_equal(got, want, H);
	free(layer);
	free(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_geometry),
		cmocka_unit_test(test_zero_root),
		cmocka_unit_test(test_one_byte),
		cmocka_unit_test(test_one_block),
		cmocka_unit_test(test_block_plus_one),
		cmocka_unit_test(test_one_piece),
		cmocka_unit_test(test_piece_plus_one),
		cmocka_unit_test(test_three_pieces),
		cmocka_unit_test(test_power_of_two),
		cmocka_unit_test(test_against_naive),
		cmocka_unit_test(test_empty_file),
		cmocka_unit_test(test_incremental),
		cmocka_unit_test(test_verify_failures),
		cmocka_unit_test(test_two_threads),
		cmocka_unit_test(test_reduce),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
