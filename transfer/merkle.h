/* merkle.h: BEP 52 per-file SHA-256 merkle trees over 16 KiB blocks, hashed
 * piece by piece in O(log n) memory per piece and O(pieces) per file.
 *
 * BEP 52 ("File tree" / "Piece layers"), the rules this module implements:
 *  - a leaf is SHA-256 of one 16 KiB block (XFER_BLOCK_SIZE); the last block of
 *    a file is hashed at its real length, never padded with zero bytes;
 *  - a parent is SHA-256(left || right);
 *  - leaves past the end of the file, needed to fill the tree to a power of
 *    two, are 32 zero bytes (not the hash of anything);
 *  - the "piece layer" is the layer where one hash covers one piece
 *    (piece length / 16 KiB leaves).  The last piece of a file larger than one
 *    piece is padded with zero leaves to the full piece width; the layer is
 *    padded to a power of two with the root of an all-zero-leaf piece subtree;
 *  - a file no larger than one piece is one subtree of next_pow2(blocks)
 *    leaves, whose root is the file's "pieces root"; such files have no entry
 *    in "piece layers";
 *  - an empty file has no tree and no pieces root.
 *
 * Threading: nothing here is global.  A caller may hash different pieces of
 * one file on different threads as long as each thread uses its own
 * struct sha256_ctx and struct merkle_piece, then combine the piece hashes
 * with merkle_layer_root(). */
#ifndef SHOAL_TRANSFER_MERKLE_H
#define SHOAL_TRANSFER_MERKLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/sha256.h"
#include "transfer/transfer.h"

#define MERKLE_HASH_LEN SHA256_LEN

/* Pieces may not be wider than 2^MERKLE_MAX_PIECE_LEVELS blocks (2^26 blocks
 * = 1 TiB): far above any real piece length, and it bounds the fixed stack
 * inside struct merkle_piece. */
#define MERKLE_MAX_PIECE_LEVELS 26

/* True if `piece_length` is a power of two of at least XFER_BLOCK_SIZE bytes
 * and no wider than 2^MERKLE_MAX_PIECE_LEVELS blocks. */
bool merkle_piece_length_ok(uint64_t piece_length);

/* Number of pieces of a file of `file_size` bytes: ceil(size / piece_length);
 * 0 for an empty file.  `piece_length` must satisfy merkle_piece_length_ok. */
uint64_t merkle_piece_count(uint64_t file_size, uint64_t piece_length);

/* Width in leaves (a power of two) of each piece subtree of a file: the piece
 * length in blocks if the file is larger than one piece, else the next power
 * of two of the file's block count.  0 for an empty file. */
uint64_t merkle_piece_leaves(uint64_t file_size, uint64_t piece_length);

/* Byte length of piece `index` of a file (the last one may be short);
 * 0 when `index` is past the end. */
uint64_t merkle_piece_size(uint64_t file_size, uint64_t piece_length, uint64_t index);

/* Root of a subtree of `leaves` all-zero leaves (leaves a power of two, at
 * most 2^MERKLE_MAX_PIECE_LEVELS): 32 zero bytes for one leaf.  This is the
 * hash that pads a piece layer.  Uses `ctx`.  Returns 0 or -EINVAL. */
int merkle_zero_root(struct sha256_ctx *ctx, uint64_t leaves, uint8_t out[MERKLE_HASH_LEN])
	__attribute__((warn_unused_result));

/* Reduce `width` hashes (a power of two, at least 1) at `buf`, in place, to
 * the root of the subtree they are the leaves of: it is left in the first
 * 32 bytes (the rest of buf is overwritten).  Uses `ctx`. */
void merkle_reduce(struct sha256_ctx *ctx, uint8_t *buf, uint64_t width);

/* Incremental hasher of one piece subtree.  Embedded by the caller; holds no
 * heap memory.  `ctx` is borrowed and must not be used for anything else
 * between merkle_piece_init and merkle_piece_final. */
struct merkle_piece {
	struct sha256_ctx *ctx;
	uint64_t leaves;  /* subtree width (power of two) */
	uint64_t blocks;  /* leaves completed so far */
	size_t fill;      /* bytes of the block in progress */
	/* pending[l] is the root of a complete subtree of 2^l leaves still
	 * waiting for its right sibling; valid when bit l of `blocks` is set. */
	uint8_t pending[MERKLE_MAX_PIECE_LEVELS + 1][MERKLE_HASH_LEN];
};

/* Start hashing a piece whose subtree is `leaves` wide (see
 * merkle_piece_leaves).  Returns 0 or -EINVAL if `leaves` is not a power of
 * two within MERKLE_MAX_PIECE_LEVELS. */
int merkle_piece_init(struct merkle_piece *mp, struct sha256_ctx *ctx, uint64_t leaves)
	__attribute__((warn_unused_result));

/* Feed the next `n` bytes of the piece, in any chunking.  Returns 0, or
 * -EMSGSIZE if the piece would exceed leaves * XFER_BLOCK_SIZE bytes (nothing
 * is consumed in that case). */
int merkle_piece_update(struct merkle_piece *mp, const void *p, size_t n)
	__attribute__((warn_unused_result));

/* Finish: the last partial block is hashed at its real length, missing
 * leaves count as zero, and the subtree root goes to `out`.  Returns 0, or
 * -EINVAL if no byte was fed (a piece is never empty).  The hasher must be
 * re-initialised before reuse. */
int merkle_piece_final(struct merkle_piece *mp, uint8_t out[MERKLE_HASH_LEN])
	__attribute__((warn_unused_result));

/* One-shot: root of piece `index` of a file of `file_size` bytes from its
 * data (`len` must equal merkle_piece_size(file_size, piece_length, index)).
 * For a file of one piece this is the file's pieces root.  Returns 0 or
 * -EINVAL. */
int merkle_piece_root(struct sha256_ctx *ctx, uint64_t file_size, uint64_t piece_length,
		      uint64_t index, const void *data, size_t len, uint8_t out[MERKLE_HASH_LEN])
	__attribute__((warn_unused_result));

/* A file's pieces root from its piece layer: `count` (>= 1) concatenated
 * 32-byte piece hashes, padded to a power of two with
 * merkle_zero_root(piece_length / XFER_BLOCK_SIZE).  With count == 1 the root
 * is the single hash itself.  O(log count) memory.  Returns 0 or -EINVAL. */
int merkle_layer_root(struct sha256_ctx *ctx, const uint8_t *layer, uint64_t count,
		      uint64_t piece_length, uint8_t out[MERKLE_HASH_LEN])
	__attribute__((warn_unused_result));

/* Check a piece layer (as in a .torrent's "piece layers") of a file of
 * `file_size` bytes against its pieces root: `layer_len` must be exactly
 * 32 * merkle_piece_count(...).  Returns 0, -EINVAL for a wrong length, or
 * -EBADMSG if the layer does not hash to `root`. */
int merkle_layer_verify(struct sha256_ctx *ctx, const uint8_t *layer, size_t layer_len,
			uint64_t file_size, uint64_t piece_length,
			const uint8_t root[MERKLE_HASH_LEN]) __attribute__((warn_unused_result));

/* Check received piece `index` of a file against the file's verified piece
 * layer (`layer` holds merkle_piece_count(file_size, piece_length) hashes; for
 * a file of one piece, pass its pieces root as a one-entry layer).
 * Returns 0, -EINVAL for a bad index or a `len` that is not that piece's
 * size, or -EBADMSG if the data does not match. */
int merkle_piece_verify(struct sha256_ctx *ctx, const uint8_t *layer, uint64_t file_size,
			uint64_t piece_length, uint64_t index, const void *data, size_t len)
	__attribute__((warn_unused_result));

/* Convenience for data already in memory: the piece layer (`layer_out` must
 * hold 32 * merkle_piece_count(...) bytes; may be NULL) and the pieces root of
 * a whole file.  Returns 0, or -EINVAL for an empty file (no pieces root). */
int merkle_file_hash(struct sha256_ctx *ctx, const void *data, uint64_t file_size,
		     uint64_t piece_length, uint8_t *layer_out, uint8_t root_out[MERKLE_HASH_LEN])
	__attribute__((warn_unused_result));

#endif
