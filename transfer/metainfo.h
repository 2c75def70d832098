/* metainfo.h: BitTorrent metainfo: v2 (BEP 52), v1 (BEP 3) and hybrids of
 * the two; build and parse the info dictionary and .torrent files, with
 * hostile-input sanitising. */
#ifndef SHOAL_TRANSFER_METAINFO_H
#define SHOAL_TRANSFER_METAINFO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "transfer/merkle.h"

struct metainfo;

#define METAINFO_HASH_LEN 32
#define METAINFO_V1_HASH_LEN 20 /* SHA-1: v1 piece hashes and v1 info-hash */

/* What metainfo_build_* writes.  V2: BEP 52 keys only.  HYBRID: the v2 keys
 * and the v1 keys (BEP 52 "upgrade path") of the same content: "pieces"
 * (SHA-1 of each piece) and "files" (same order as the file tree, a BEP 47
 * pad file {attr "p", length N, path [".pad", "N"]} after every file whose
 * size is not a multiple of the piece length, except the last) or, for a
 * single file, "length".  Each v1 piece is then exactly one v2 piece; the
 * SHA-1 of a file's last piece covers its bytes and the pad's zeros. */
enum metainfo_format {
	METAINFO_FORMAT_V2,
	METAINFO_FORMAT_HYBRID,
	/* v1 only (BEP 3): "pieces" over the files concatenated in file tree
	 * order with no pad files (what libtorrent's v1_only writes), so a
	 * piece may span files; "files" or, for one file, "length". */
	METAINFO_FORMAT_V1,
};

/* Zero bytes of the pad file written after a file of `size` bytes in a
 * hybrid (0 when `single`, a torrent of one file, or when the size is a
 * multiple of the piece length).  The last file is padded too, as
 * libtorrent 2.0 does, so both make the same hybrid of the same files. */
uint64_t metainfo_v1_pad(uint64_t size, uint64_t piece_length, bool single);

/* The format a parsed torrent is in, and its name ("v1", "v2", "hybrid";
 * the names `shoal share --format` takes). */
enum metainfo_format metainfo_format_of(const struct metainfo *mi);
const char *metainfo_format_name(enum metainfo_format f);
/* The format named `name` into *out: 0, or -EINVAL. */
int metainfo_format_parse(const char *name, enum metainfo_format *out);

/* Bytes of piece `piece` in the v1 view (has_v1): piece_length but for
 * the last piece.  0 out of range. */
uint64_t metainfo_v1_piece_size(const struct metainfo *mi, uint32_t piece);

/* A v2 (or hybrid) torrent's file holding global piece `piece` (every piece
 * lies in one file), with the piece's index inside the file in
 * *local_out; NULL for a piece no file holds. */
const struct metainfo_file *metainfo_v2_piece_file(const struct metainfo *mi, uint32_t piece,
						   uint32_t *local_out);

/* The first file whose pieces root is `root` (a v2 hash request names its
 * file so), with its index in *index_out when not NULL; NULL when none. */
const struct metainfo_file *metainfo_file_by_root(const struct metainfo *mi, const uint8_t root[32],
						  size_t *index_out);

/* The file tree order of two '/'-separated paths (a depth-first walk with
 * keys sorted bytewise: "a" < "a/b" < "a-b"); <0, 0 or >0 like strcmp. */
int metainfo_path_cmp(const char *a, const char *b);

/* Ceilings on what a parsed (or built) torrent may contain. */
#define METAINFO_MAX_TORRENT_SIZE (64u << 20) /* whole .torrent file */
#define METAINFO_MAX_INFO_SIZE (16u << 20)    /* the info dict (BEP 9 metadata) */
#define METAINFO_MAX_NODES (1u << 21)         /* bencode values in one document */
#define METAINFO_MAX_FILES 100000u            /* files in the file tree */
#define METAINFO_MAX_DEPTH 32u                /* directory levels in a path */
#define METAINFO_MAX_COMPONENT 255u           /* bytes in one path component */
#define METAINFO_MAX_PATH 4096u               /* bytes in a whole relative path */
#define METAINFO_MAX_PIECE_LENGTH (256u << 20)
#define METAINFO_MAX_PIECES 0x7fffffffu       /* piece indices are 31-bit on the wire */

/* Piece-length rule used when sharing (metainfo_pick_piece_length):
 * the smallest power of two, at least METAINFO_MIN_PIECE_LENGTH (16 KiB, one
 * block), for which the content needs at most METAINFO_TARGET_PIECES pieces
 * (ceil(total / piece_length) <= 2048), but never above
 * METAINFO_MAX_AUTO_PIECE_LENGTH (16 MiB).  So anything up to 32 MiB gets
 * 16 KiB pieces, content up to 32 GiB gets between 1025 and 2048 pieces, and
 * larger content keeps 16 MiB pieces (the piece count then grows).  Few
 * thousand pieces keep piece layers and bitfields small while pieces stay
 * small enough to spread across peers. */
#define METAINFO_MIN_PIECE_LENGTH XFER_BLOCK_SIZE
#define METAINFO_TARGET_PIECES 2048u
#define METAINFO_MAX_AUTO_PIECE_LENGTH (16u << 20)

/* Specific errors (negative, below the errno range).  Functions may also
 * return -ENOMEM, -EMSGSIZE (output buffer full) or -EINVAL (bad argument). */
enum metainfo_error {
	METAINFO_E_BENCODE = -1000,  /* not valid, strict bencode */
	METAINFO_E_TOO_BIG,          /* input or structure over a ceiling */
	METAINFO_E_NO_INFO,          /* no info dictionary */
	METAINFO_E_VERSION,          /* meta version is not 2 */
	METAINFO_E_NAME,             /* name missing or unsafe */
	METAINFO_E_PIECE_LENGTH,     /* piece length missing or invalid */
	METAINFO_E_FILE_TREE,        /* file tree missing or malformed */
	METAINFO_E_PATH,             /* a path component is unsafe or invalid */
	METAINFO_E_TOO_DEEP,         /* directories nested deeper than allowed */
	METAINFO_E_TOO_MANY_FILES,   /* more files than METAINFO_MAX_FILES */
	METAINFO_E_SIZE,             /* a length is invalid or the sizes overflow */
	METAINFO_E_PIECES_ROOT,      /* pieces root missing, malformed or unexpected */
	METAINFO_E_LAYER,            /* piece layers malformed or missing */
	METAINFO_E_LAYER_MISMATCH,   /* a piece layer does not hash to its root */
	METAINFO_E_HASH_MISMATCH,    /* info-hash differs from the expected one */
	METAINFO_E_DUPLICATE,        /* two files with one path, or file vs folder */
	METAINFO_E_V1_PIECES,        /* v1 "pieces" missing, malformed or of the wrong length */
	METAINFO_E_V1_FILES,         /* v1 "files"/"length" missing or malformed */
	METAINFO_E_HYBRID_MISMATCH,  /* a hybrid's v1 and v2 halves describe other files */
};

/* A short English description of any error returned by this module
 * (including the errno values above).  Never NULL; static storage. */
const char *metainfo_strerror(int err);

/* The piece length for content of `total_size` bytes (rule above). */
uint64_t metainfo_pick_piece_length(uint64_t total_size);

/* True if `s[0..len)` may be one component of a path on disk: 1..255 bytes of
 * valid, shortest-form UTF-8 (no surrogates, at most U+10FFFF), not "." or
 * "..", and without '/', '\\' or NUL. */
bool metainfo_component_ok(const uint8_t *s, size_t len);

/* ------------------------------------------------------------------ build */

/* One file to put in a torrent. */
struct metainfo_file_in {
	/* Relative '/'-separated path inside the torrent.  For a multi-file
	 * torrent it is relative to the shared folder (which is `name`); for a
	 * single-file torrent pass the file's own name (equal to `name`). */
	const char *path;
	uint64_t size;
	uint8_t root[METAINFO_HASH_LEN]; /* pieces root; ignored when size == 0 */
	/* The piece layer (32 * pieces bytes), needed by metainfo_build_torrent
	 * for files larger than one piece; ignored otherwise. */
	const uint8_t *layer;
	/* HYBRID: the SHA-1 of each piece (20 * pieces bytes; the last one
	 * covers the pad zeros, see enum metainfo_format); required for files
	 * that are not empty.  V1: the SHA-1 of each piece of the stream
	 * (the files concatenated in file tree order) whose first byte lies
	 * in this file; required when there is one.  Ignored for V2. */
	const uint8_t *v1_pieces;
};

/* Append the bencoded info dict (BEP 52: "file tree", "meta version"
 * 2, "name", "piece length"; and the v1 keys for HYBRID; only "name",
 * "piece length" and the v1 keys for V1) for `files` to `out`, and put its
 * swarm key (struct metainfo's info_hash: the SHA-256 of exactly the
 * appended bytes, or for V1 their SHA-1 and 12 zero bytes) in
 * `info_hash_out` (may be NULL).
 * Files may come in any order: the file tree is written sorted, as bencode
 * requires.  Returns 0, METAINFO_E_NAME / _PIECE_LENGTH / _PATH / _TOO_DEEP /
 * _TOO_MANY_FILES / _SIZE / _DUPLICATE, -EINVAL (no files, an unknown format, or a HYBRID file without v1_pieces), -EMSGSIZE or
 * -ENOMEM.  On failure `out` is left as it was. */
int metainfo_build_info(const char *name, uint64_t piece_length, enum metainfo_format format,
			const struct metainfo_file_in *files, size_t n, struct buf *out,
			uint8_t info_hash_out[METAINFO_HASH_LEN]) __attribute__((warn_unused_result));

/* Append a complete .torrent: "created by" (if `created_by` is non-NULL),
 * "creation date" (if `creation_date` > 0, seconds since the epoch), "info"
 * as metainfo_build_info writes it, and (not for V1) "piece layers" keyed by
 * pieces root for every file larger than one piece (each layer is checked against its
 * root first).  Returns what metainfo_build_info returns, plus
 * METAINFO_E_LAYER (a layer is missing) or METAINFO_E_LAYER_MISMATCH. */
int metainfo_build_torrent(const char *name, uint64_t piece_length,
			   enum metainfo_format format, const struct metainfo_file_in *files, size_t n, const char *created_by,
			   int64_t creation_date, struct buf *out,
			   uint8_t info_hash_out[METAINFO_HASH_LEN]) __attribute__((warn_unused_result));

/* ------------------------------------------------------------------ parse */

struct metainfo_file {
	char *path;        /* sanitised relative '/'-separated path; owned */
	uint64_t size;
	bool has_root;     /* false exactly for empty files */
	uint8_t root[METAINFO_HASH_LEN];
	uint32_t first_piece; /* global index of its first piece (v2: files start
			       * on piece boundaries; empty files take none) */
	uint32_t piece_count; /* pieces holding any of its bytes (v1: the first
			       * and last may be shared with neighbours) */
	/* Where its first byte sits in the piece stream: v2 and hybrid
	 * first_piece * piece_length; v1 the bytes of every file (pad files
	 * included) before it. */
	uint64_t offset;
	/* piece_count verified piece hashes, or NULL while unknown.  For a file
	 * of one piece it is the pieces root itself (always known).  Points into
	 * storage owned by the struct metainfo. */
	const uint8_t *layer;
};

struct metainfo {
	char *name;                /* sanitised; the folder or single file name */
	uint64_t piece_length;
	struct metainfo_file *files; /* in file tree order (sorted paths) */
	size_t file_count;
	uint64_t total_size;
	uint32_t total_pieces;
	uint8_t *info;             /* the exact bencoded info dict */
	size_t info_len;
	/* The swarm's key: when has_v2 the v2 info-hash (SHA-256 of `info`);
	 * for a v1 torrent its v1 info-hash followed by 12 zero bytes. */
	uint8_t info_hash[METAINFO_HASH_LEN];
	/* The v2 keys ("file tree", meta version 2): files start on piece
	 * boundaries and are verified by their merkle trees. */
	bool has_v2;
	/* The v1 keys ("pieces" and "files" or "length"): known by the SHA-1
	 * of `info`, pieces verified by SHA-1.  With has_v2 too (a hybrid)
	 * the v1 file list is checked to describe the same files at the same
	 * piece boundaries (BEP 47 pad files in between), so each v1 piece is
	 * one v2 piece. */
	bool has_v1;
	uint8_t info_hash_v1[METAINFO_V1_HASH_LEN];
	const uint8_t *v1_pieces;  /* has_v1: 20 bytes per piece, inside `info` */
	/* has_v1: the v1 piece stream's length, pad files included: a v1
	 * piece p covers [p * piece_length, min((p + 1) * piece_length, v1_total)). */
	uint64_t v1_total;
	bool private_flag;         /* "private" = 1 (BEP 27): no DHT, no PEX */
	bool all_layers;           /* every file's layer is known */
	uint8_t **layer_store;     /* owned layer buffers (internal) */
	size_t layer_store_count;
};

/* Parse a .torrent (a dict with "info" and optionally "piece layers") in
 * [p, end).  Every piece layer present is verified against its file's pieces
 * root; layers of files not in the torrent are ignored.  A missing layer is
 * not an error: the file's `layer` stays NULL and `all_layers` false.
 * On success `mi` owns everything (free with metainfo_destroy) and the input
 * may be released.  On failure `mi` holds nothing.  Returns 0 or an error
 * (see metainfo_strerror). */
int metainfo_parse_torrent(struct metainfo *mi, const uint8_t *p, const uint8_t *end)
	__attribute__((warn_unused_result));

/* Parse a bare info dict, e.g. metadata received through BEP 9.  As above,
 * with no layers except the implicit ones of single-piece files. */
int metainfo_parse_info(struct metainfo *mi, const uint8_t *p, const uint8_t *end)
	__attribute__((warn_unused_result));

/* Returns 0 if the parsed info dict hashes to `expected` (a v2 info-hash from
 * a magnet link), else METAINFO_E_HASH_MISMATCH. */
int metainfo_check_hash(const struct metainfo *mi, const uint8_t expected[METAINFO_HASH_LEN])
	__attribute__((warn_unused_result));

/* Install the piece layer of file `index` learned later (e.g. from BEP 52
 * hash messages) after checking it against the file's pieces root.  Returns
 * 0, -EINVAL (bad index, empty file or wrong length), -ENOMEM, or
 * METAINFO_E_LAYER_MISMATCH. */
int metainfo_set_layer(struct metainfo *mi, size_t index, const uint8_t *layer, size_t len)
	__attribute__((warn_unused_result));

/* Release everything `mi` owns; it is zeroed and may be parsed into again. */
void metainfo_destroy(struct metainfo *mi);

#endif
