/* merkle.c: BEP 52 merkle trees, folded leaf by leaf so memory stays O(log n). */
#include "config.h"

#include "transfer/merkle.h"

#include <errno.h>
#include <string.h>

#include "common/bytes.h"

/* Levels of a piece layer fold: pieces < 2^64 / 2^14, far below 2^63. */
#define LAYER_LEVELS 64

static bool is_pow2(uint64_t x)
{
	return x && (x & (x - 1)) == 0;
}

/* out = SHA-256(a || b); `out` may alias `a` or `b`. */
static void hash_pair(struct sha256_ctx *ctx, const uint8_t a[MERKLE_HASH_LEN],
		      const uint8_t b[MERKLE_HASH_LEN], uint8_t out[MERKLE_HASH_LEN])
{
	sha256_begin(ctx);
	sha256_update(ctx, a, MERKLE_HASH_LEN);
	sha256_update(ctx, b, MERKLE_HASH_LEN);
	sha256_final(ctx, out);
}

/* Add hash number `count` (0-based) as the next leaf of a fold.  Like a
 * binary counter: each carry merges two complete sibling subtrees. */
static void fold_push(struct sha256_ctx *ctx, uint8_t (*pending)[MERKLE_HASH_LEN], uint64_t count,
		      const uint8_t h[MERKLE_HASH_LEN])
{
	uint8_t cur[MERKLE_HASH_LEN];
	memcpy(cur, h, sizeof cur);
	unsigned l = 0;
	while (count & ((uint64_t)1 << l)) {
		hash_pair(ctx, pending[l], cur, cur);
		l++;
	}
	memcpy(pending[l], cur, sizeof cur);
}

/* Root of a tree `width` leaves wide (a power of two >= count) whose first
 * `count` leaves were pushed and whose other leaves are `pad` (the root of a
 * subtree at the leaf level; zero subtrees higher up are derived from it). */
static void fold_finish(struct sha256_ctx *ctx, uint8_t (*pending)[MERKLE_HASH_LEN],
			uint64_t count, uint64_t width, const uint8_t pad[MERKLE_HASH_LEN],
			uint8_t out[MERKLE_HASH_LEN])
{
	if (count == width && count > 0) {
		memcpy(out, pending[log2_floor(width)], MERKLE_HASH_LEN);
		return;
	}
	uint8_t z[MERKLE_HASH_LEN], h[MERKLE_HASH_LEN];
	bool have = false;
	memcpy(z, pad, sizeof z);
	for (unsigned l = 0; ((uint64_t)1 << l) < width; l++) {
		if (count & ((uint64_t)1 << l)) {
			/* A complete left subtree waits at this level. */
			hash_pair(ctx, pending[l], have ? h : z, h);
			have = true;
		} else if (have) {
			/* The partial subtree is a left child; its sibling is all padding. */
			hash_pair(ctx, h, z, h);
		}
		hash_pair(ctx, z, z, z);
	}
	memcpy(out, have ? h : z, MERKLE_HASH_LEN);
}

bool merkle_piece_length_ok(uint64_t piece_length)
{
	return piece_length >= XFER_BLOCK_SIZE && is_pow2(piece_length) &&
	       piece_length / XFER_BLOCK_SIZE <= ((uint64_t)1 << MERKLE_MAX_PIECE_LEVELS);
}

uint64_t merkle_piece_count(uint64_t file_size, uint64_t piece_length)
{
	if (file_size == 0 || piece_length == 0)
		return 0;
	return file_size / piece_length + (file_size % piece_length != 0);
}

uint64_t merkle_piece_leaves(uint64_t file_size, uint64_t piece_length)
{
	if (file_size == 0 || piece_length < XFER_BLOCK_SIZE)
		return 0;
	if (file_size > piece_length)
		return piece_length / XFER_BLOCK_SIZE;
	uint64_t blocks = file_size / XFER_BLOCK_SIZE + (file_size % XFER_BLOCK_SIZE != 0);
	return pow2_ceil(blocks);
}

uint64_t merkle_piece_size(uint64_t file_size, uint64_t piece_length, uint64_t index)
{
	if (index >= merkle_piece_count(file_size, piece_length))
		return 0;
	uint64_t start = index * piece_length;
	uint64_t left = file_size - start;
	return left < piece_length ? left : piece_length;
}

int merkle_zero_root(struct sha256_ctx *ctx, uint64_t leaves, uint8_t out[MERKLE_HASH_LEN])
{
	if (!is_pow2(leaves) || leaves > ((uint64_t)1 << MERKLE_MAX_PIECE_LEVELS))
		return -EINVAL;
	static const uint8_t zero[MERKLE_HASH_LEN];
	fold_finish(ctx, NULL, 0, leaves, zero, out);
	return 0;
}

int merkle_piece_init(struct merkle_piece *mp, struct sha256_ctx *ctx, uint64_t leaves)
{
	if (!is_pow2(leaves) || leaves > ((uint64_t)1 << MERKLE_MAX_PIECE_LEVELS))
		return -EINVAL;
	mp->ctx = ctx;
	mp->leaves = leaves;
	mp->blocks = 0;
	mp->fill = 0;
	return 0;
}

/* The block in progress is complete (or the piece ends): make it a leaf. */
static void piece_close_block(struct merkle_piece *mp)
{
	uint8_t leaf[MERKLE_HASH_LEN];
	sha256_final(mp->ctx, leaf);
	fold_push(mp->ctx, mp->pending, mp->blocks, leaf);
	mp->blocks++;
	mp->fill = 0;
}

int merkle_piece_update(struct merkle_piece *mp, const void *p, size_t n)
{
	uint64_t cap = mp->leaves * XFER_BLOCK_SIZE;
	uint64_t used = mp->blocks * XFER_BLOCK_SIZE + mp->fill;
	if ((uint64_t)n > cap - used)
		return -EMSGSIZE;
	const uint8_t *b = p;
	while (n > 0) {
		if (mp->fill == 0)
			sha256_begin(mp->ctx);
		size_t take = XFER_BLOCK_SIZE - mp->fill;
		if (take > n)
			take = n;
		sha256_update(mp->ctx, b, take);
		mp->fill += take;
		b += take;
		n -= take;
		if (mp->fill == XFER_BLOCK_SIZE)
			piece_close_block(mp);
	}
	return 0;
}

int merkle_piece_final(struct merkle_piece *mp, uint8_t out[MERKLE_HASH_LEN])
{
	if (mp->fill > 0)
		piece_close_block(mp); /* BEP 52: the last block at its real length */
	if (mp->blocks == 0)
		return -EINVAL;
	static const uint8_t zero[MERKLE_HASH_LEN];
	fold_finish(mp->ctx, mp->pending, mp->blocks, mp->leaves, zero, out);
	mp->blocks = 0;
	mp->leaves = 0; /* any further update fails until re-initialised */
	return 0;
}

int merkle_piece_root(struct sha256_ctx *ctx, uint64_t file_size, uint64_t piece_length,
		      uint64_t index, const void *data, size_t len, uint8_t out[MERKLE_HASH_LEN])
{
	if (!merkle_piece_length_ok(piece_length))
		return -EINVAL;
	uint64_t size = merkle_piece_size(file_size, piece_length, index);
	if (size == 0 || (uint64_t)len != size)
		return -EINVAL;
	struct merkle_piece mp;
	int rc = merkle_piece_init(&mp, ctx, merkle_piece_leaves(file_size, piece_length));
	if (rc == 0)
		rc = merkle_piece_update(&mp, data, len);
	if (rc == 0)
		rc = merkle_piece_final(&mp, out);
	return rc;
}

int merkle_layer_root(struct sha256_ctx *ctx, const uint8_t *layer, uint64_t count,
		      uint64_t piece_length, uint8_t out[MERKLE_HASH_LEN])
{
	if (count == 0 || count > ((uint64_t)1 << 62) || !merkle_piece_length_ok(piece_length))
		return -EINVAL;
	uint8_t pending[LAYER_LEVELS][MERKLE_HASH_LEN];
	for (uint64_t k = 0; k < count; k++)
		fold_push(ctx, pending, k, layer + k * MERKLE_HASH_LEN);
	uint64_t width = pow2_ceil(count);
	uint8_t pad[MERKLE_HASH_LEN] = { 0 };
	if (width != count) {
		int rc = merkle_zero_root(ctx, piece_length / XFER_BLOCK_SIZE, pad);
		if (rc)
			return rc;
	}
	fold_finish(ctx, pending, count, width, pad, out);
	return 0;
}

int merkle_layer_verify(struct sha256_ctx *ctx, const uint8_t *layer, size_t layer_len,
			uint64_t file_size, uint64_t piece_length,
			const uint8_t root[MERKLE_HASH_LEN])
{
	if (!merkle_piece_length_ok(piece_length))
		return -EINVAL;
	uint64_t count = merkle_piece_count(file_size, piece_length);
	if (count == 0 || layer_len % MERKLE_HASH_LEN != 0 || layer_len / MERKLE_HASH_LEN != count)
		return -EINVAL;
	uint8_t got[MERKLE_HASH_LEN];
	int rc = merkle_layer_root(ctx, layer, count, piece_length, got);
	if (rc)
		return rc;
	return memcmp(got, root, MERKLE_HASH_LEN) == 0 ? 0 : -EBADMSG;
}

int merkle_piece_verify(struct sha256_ctx *ctx, const uint8_t *layer, uint64_t file_size,
			uint64_t piece_length, uint64_t index, const void *data, size_t len)
{
	uint8_t got[MERKLE_HASH_LEN];
	int rc = merkle_piece_root(ctx, file_size, piece_length, index, data, len, got);
	if (rc)
		return rc;
	return memcmp(got, layer + index * MERKLE_HASH_LEN, MERKLE_HASH_LEN) == 0 ? 0 : -EBADMSG;
}

int merkle_file_hash(struct sha256_ctx *ctx, const void *data, uint64_t file_size,
		     uint64_t piece_length, uint8_t *layer_out, uint8_t root_out[MERKLE_HASH_LEN])
{
	if (!merkle_piece_length_ok(piece_length) || file_size == 0 || file_size > SIZE_MAX)
		return -EINVAL;
	uint64_t count = merkle_piece_count(file_size, piece_length);
	uint8_t pending[LAYER_LEVELS][MERKLE_HASH_LEN];
	const uint8_t *p = data;
	for (uint64_t k = 0; k < count; k++) {
		uint8_t h[MERKLE_HASH_LEN];
		uint64_t size = merkle_piece_size(file_size, piece_length, k);
		int rc = merkle_piece_root(ctx, file_size, piece_length, k, p + k * piece_length,
					   (size_t)size, h);
		if (rc)
			return rc;
		if (layer_out)
			memcpy(layer_out + k * MERKLE_HASH_LEN, h, MERKLE_HASH_LEN);
		fold_push(ctx, pending, k, h);
	}
	uint64_t width = pow2_ceil(count);
	uint8_t pad[MERKLE_HASH_LEN] = { 0 };
	if (width != count) {
		int rc = merkle_zero_root(ctx, piece_length / XFER_BLOCK_SIZE, pad);
		if (rc)
			return rc;
	}
	fold_finish(ctx, pending, count, width, pad, root_out);
	return 0;
}

void merkle_reduce(struct sha256_ctx *ctx, uint8_t *buf, uint64_t width)
{
	for (; width > 1; width /= 2)
		for (uint64_t i = 0; i < width / 2; i++)
			sha256_once(ctx, buf + 2 * MERKLE_HASH_LEN * i, 2 * MERKLE_HASH_LEN,
				    buf + MERKLE_HASH_LEN * i);
}
