/* metainfo.c: v2 (BEP 52), v1 (BEP 3) and hybrid info dict and .torrent
 * builder and sanitising parser. */
#include "config.h"

#include "transfer/metainfo.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/bencode.h"
#include "common/sha1.h"
#include "common/sha256.h"

const char *metainfo_strerror(int err)
{
	switch (err) {
	case 0: return "success";
	case METAINFO_E_BENCODE: return "not valid bencode";
	case METAINFO_E_TOO_BIG: return "torrent is too large";
	case METAINFO_E_NO_INFO: return "no info dictionary";
	case METAINFO_E_VERSION:
		return "unknown torrent version (no v1 \"pieces\" and meta version is not 2)";
	case METAINFO_E_NAME: return "missing or unsafe name";
	case METAINFO_E_PIECE_LENGTH: return "invalid piece length";
	case METAINFO_E_FILE_TREE: return "missing or malformed file tree";
	case METAINFO_E_PATH: return "unsafe or invalid file path";
	case METAINFO_E_TOO_DEEP: return "folders nested too deeply";
	case METAINFO_E_TOO_MANY_FILES: return "too many files";
	case METAINFO_E_SIZE: return "invalid or overflowing file size";
	case METAINFO_E_PIECES_ROOT: return "missing or malformed pieces root";
	case METAINFO_E_LAYER: return "malformed or missing piece layers";
	case METAINFO_E_LAYER_MISMATCH: return "piece layer does not match its pieces root";
	case METAINFO_E_HASH_MISMATCH: return "info-hash does not match";
	case METAINFO_E_DUPLICATE: return "duplicate file path";
	case METAINFO_E_V1_PIECES: return "v1 piece hashes missing, malformed or of the wrong length";
	case METAINFO_E_V1_FILES: return "v1 file list missing or malformed";
	case METAINFO_E_HYBRID_MISMATCH:
		return "the v1 and v2 halves of a hybrid torrent describe different files";
	case -ENOMEM: return "out of memory";
	case -EMSGSIZE: return "output too large";
	case -EINVAL: return "invalid argument";
	default: return "unknown error";
	}
}

uint64_t metainfo_pick_piece_length(uint64_t total_size)
{
	uint64_t pl = METAINFO_MIN_PIECE_LENGTH;
	while (pl < METAINFO_MAX_AUTO_PIECE_LENGTH && total_size > (uint64_t)METAINFO_TARGET_PIECES * pl)
		pl <<= 1;
	return pl;
}

/* Length of the valid UTF-8 sequence at s[0..n), or 0 if it is not valid
 * shortest-form UTF-8 of a scalar value (RFC 3629). */
static size_t utf8_seq(const uint8_t *s, size_t n)
{
	uint8_t c = s[0];
	if (c < 0x80)
		return 1;
	size_t len;
	uint32_t cp, min;
	if ((c & 0xe0) == 0xc0) {
		len = 2, cp = c & 0x1f, min = 0x80;
	} else if ((c & 0xf0) == 0xe0) {
		len = 3, cp = c & 0x0f, min = 0x800;
	} else if ((c & 0xf8) == 0xf0) {
		len = 4, cp = c & 0x07, min = 0x10000;
	} else {
		return 0; /* continuation byte or 0xf8..0xff */
	}
	if (len > n)
		return 0;
	for (size_t k = 1; k < len; k++) {
		if ((s[k] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[k] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0; /* overlong, out of range, or a surrogate */
	return len;
}

bool metainfo_component_ok(const uint8_t *s, size_t len)
{
	if (len == 0 || len > METAINFO_MAX_COMPONENT)
		return false;
	if ((len == 1 && s[0] == '.') || (len == 2 && s[0] == '.' && s[1] == '.'))
		return false;
	for (size_t k = 0; k < len;) {
		if (s[k] == '/' || s[k] == '\\' || s[k] == '\0')
			return false;
		size_t step = utf8_seq(s + k, len - k);
		if (step == 0)
			return false;
		k += step;
	}
	return true;
}

/* Check a relative '/'-separated path and count its components. */
static int path_check(const char *path, size_t *depth_out)
{
	size_t len = strlen(path);
	if (len == 0 || len > METAINFO_MAX_PATH)
		return METAINFO_E_PATH;
	size_t depth = 0;
	const char *c = path, *end = path + len;
	for (;;) {
		const char *slash = memchr(c, '/', (size_t)(end - c));
		const char *cend = slash ? slash : end;
		if (!metainfo_component_ok((const uint8_t *)c, (size_t)(cend - c)))
			return METAINFO_E_PATH;
		if (++depth > METAINFO_MAX_DEPTH)
			return METAINFO_E_TOO_DEEP;
		if (!slash)
			break;
		c = slash + 1;
	}
	*depth_out = depth;
	return 0;
}

/* --------------------------------------------------------------- builder */

/* Bytewise order of paths compared component by component: as if '/' sorted
 * below every other byte.  This is the order of a depth-first walk of the
 * file tree whose dict keys are sorted bytewise. */
int metainfo_path_cmp(const char *a, const char *b)
{
	for (;; a++, b++) {
		unsigned ca = (unsigned char)*a, cb = (unsigned char)*b;
		if (ca == '/')
			ca = 0;
		if (cb == '/')
			cb = 0;
		if (ca != cb || *a == '\0' || *b == '\0') {
			/* The string end sorts before the separator: "a" < "a/b". */
			if (*a == '\0' && *b == '\0')
				return 0;
			if (*a == '\0')
				return -1;
			if (*b == '\0')
				return 1;
			return ca < cb ? -1 : 1;
		}
	}
}

static int cmp_in_path(const void *x, const void *y)
{
	const struct metainfo_file_in *a = *(const struct metainfo_file_in *const *)x;
	const struct metainfo_file_in *b = *(const struct metainfo_file_in *const *)y;
	return metainfo_path_cmp(a->path, b->path);
}

/* True if `dir` (a path) names a folder that contains `path`. */
static bool path_is_inside(const char *dir, const char *path)
{
	size_t n = strlen(dir);
	return strncmp(dir, path, n) == 0 && path[n] == '/';
}

/* Pieces of a v1 stream whose first byte lies in [off, off + size). */
static uint64_t v1_pieces_starting(uint64_t off, uint64_t size, uint64_t piece_length)
{
	uint64_t end = off + size;
	return (end + piece_length - 1) / piece_length - (off + piece_length - 1) / piece_length;
}

/* Validate the inputs and return them sorted in file tree order (malloc'd
 * array of pointers). */
static int build_prepare(const char *name, uint64_t piece_length, enum metainfo_format format,
			 const struct metainfo_file_in *files, size_t n,
			 const struct metainfo_file_in ***sorted_out)
{
	if (format != METAINFO_FORMAT_V2 && format != METAINFO_FORMAT_HYBRID &&
	    format != METAINFO_FORMAT_V1)
		return -EINVAL;
	if (!name || !metainfo_component_ok((const uint8_t *)name, strlen(name)))
		return METAINFO_E_NAME;
	if (!merkle_piece_length_ok(piece_length) || piece_length > METAINFO_MAX_PIECE_LENGTH)
		return METAINFO_E_PIECE_LENGTH;
	if (!files || n == 0)
		return -EINVAL;
	if (n > METAINFO_MAX_FILES)
		return METAINFO_E_TOO_MANY_FILES;
	uint64_t total = 0, pieces = 0;
	for (size_t k = 0; k < n; k++) {
		size_t depth;
		if (!files[k].path)
			return METAINFO_E_PATH;
		if (format == METAINFO_FORMAT_HYBRID && files[k].size > 0 && !files[k].v1_pieces)
			return -EINVAL; /* (V1: checked in file tree order below) */
		int rc = path_check(files[k].path, &depth);
		if (rc)
			return rc;
		if (files[k].size > (uint64_t)INT64_MAX - total)
			return METAINFO_E_SIZE;
		total += files[k].size;
		pieces += merkle_piece_count(files[k].size, piece_length);
		if (pieces > METAINFO_MAX_PIECES)
			return METAINFO_E_SIZE;
	}
	const struct metainfo_file_in **s = malloc(n * sizeof *s);
	if (!s)
		return -ENOMEM;
	for (size_t k = 0; k < n; k++)
		s[k] = &files[k];
	qsort(s, n, sizeof *s, cmp_in_path);
	uint64_t off = 0;
	for (size_t k = 0; k < n; k++) {
		/* Sorted, a clash is always between neighbours: "a" then "a/..." or "a" twice. */
		if (k > 0 && (strcmp(s[k - 1]->path, s[k]->path) == 0 ||
			      path_is_inside(s[k - 1]->path, s[k]->path))) {
			free(s);
			return METAINFO_E_DUPLICATE;
		}
		if (format == METAINFO_FORMAT_V1 && v1_pieces_starting(off, s[k]->size, piece_length) &&
		    !s[k]->v1_pieces) {
			free(s);
			return -EINVAL;
		}
		off += s[k]->size;
	}
	if (format == METAINFO_FORMAT_V1 && total == 0) {
		free(s);
		return METAINFO_E_SIZE; /* v1 has no way to say "no pieces" */
	}
	*sorted_out = s;
	return 0;
}

/* The next component of a path at *c: its start and length; advances *c. */
static size_t next_component(const char **c, const char **start_out)
{
	const char *s = *c, *slash = strchr(s, '/');
	size_t len = slash ? (size_t)(slash - s) : strlen(s);
	*start_out = s;
	*c = slash ? slash + 1 : s + len;
	return len;
}

/* Write the "file tree" dict (BEP 52) for sorted files. */
static int put_file_tree(struct buf *out, const struct metainfo_file_in *const *s, size_t n)
{
	/* Folders currently open, as components of the previous file's path. */
	const char *open_c[METAINFO_MAX_DEPTH];
	size_t open_len[METAINFO_MAX_DEPTH];
	size_t nopen = 0;
	int rc = benc_put_dict(out);
	for (size_t k = 0; k < n && rc == 0; k++) {
		const char *comp[METAINFO_MAX_DEPTH];
		size_t clen[METAINFO_MAX_DEPTH], depth = 0;
		for (const char *c = s[k]->path; *c;) {
			clen[depth] = next_component(&c, &comp[depth]);
			depth++;
		}
		/* Keep the folders this file shares with the previous one open. */
		size_t common = 0;
		while (common < nopen && common < depth - 1 && open_len[common] == clen[common] &&
		       memcmp(open_c[common], comp[common], clen[common]) == 0)
			common++;
		for (; nopen > common && rc == 0; nopen--)
			rc = benc_put_end(out);
		for (; nopen < depth - 1 && rc == 0; nopen++) {
			open_c[nopen] = comp[nopen];
			open_len[nopen] = clen[nopen];
			rc = benc_put_str(out, comp[nopen], clen[nopen]);
			if (rc == 0)
				rc = benc_put_dict(out);
		}
		/* The file: name -> { "" -> { length, pieces root } }. */
		if (rc == 0)
			rc = benc_put_str(out, comp[depth - 1], clen[depth - 1]);
		if (rc == 0)
			rc = benc_put_dict(out);
		if (rc == 0)
			rc = benc_put_str(out, "", 0);
		if (rc == 0)
			rc = benc_put_dict(out);
		if (rc == 0)
			rc = benc_put_cstr(out, "length");
		if (rc == 0)
			rc = benc_put_int(out, (int64_t)s[k]->size);
		if (rc == 0 && s[k]->size > 0) {
			rc = benc_put_cstr(out, "pieces root");
			if (rc == 0)
				rc = benc_put_str(out, s[k]->root, METAINFO_HASH_LEN);
		}
		if (rc == 0)
			rc = benc_put_end(out);
		if (rc == 0)
			rc = benc_put_end(out);
	}
	for (; nopen > 0 && rc == 0; nopen--)
		rc = benc_put_end(out);
	if (rc == 0)
		rc = benc_put_end(out);
	return rc;
}

/* The v1 keys of a hybrid (BEP 52 "upgrade path", BEP 47 pad files): for a
 * multi-file torrent "files" in file tree order, with a pad file after
 * every file whose size is not a multiple of the piece length (the last
 * too, as libtorrent 2.0 writes them); for a single file "length".  Written as the dict's keys "files" or
 * "length"; "pieces" is written by put_v1_pieces. */
static int put_v1_files(struct buf *out, uint64_t piece_length, bool pads,
			const struct metainfo_file_in *const *s, size_t n)
{
	int rc = benc_put_cstr(out, "files");
	if (rc == 0)
		rc = benc_put_list(out);
	for (size_t k = 0; k < n && rc == 0; k++) {
		rc = benc_put_dict(out);
		if (rc == 0)
			rc = benc_put_cstr(out, "length");
		if (rc == 0)
			rc = benc_put_int(out, (int64_t)s[k]->size);
		if (rc == 0)
			rc = benc_put_cstr(out, "path");
		if (rc == 0)
			rc = benc_put_list(out);
		for (const char *c = s[k]->path; *c && rc == 0;) {
			const char *start;
			size_t len = next_component(&c, &start);
			rc = benc_put_str(out, start, len);
		}
		if (rc == 0)
			rc = benc_put_end(out);
		if (rc == 0)
			rc = benc_put_end(out);
		uint64_t pad = pads ? metainfo_v1_pad(s[k]->size, piece_length, false) : 0;
		if (pad > 0 && rc == 0) {
			char num[24];
			snprintf(num, sizeof num, "%" PRIu64, pad);
			rc = benc_put_dict(out);
			if (rc == 0)
				rc = benc_put_cstr(out, "attr");
			if (rc == 0)
				rc = benc_put_cstr(out, "p");
			if (rc == 0)
				rc = benc_put_cstr(out, "length");
			if (rc == 0)
				rc = benc_put_int(out, (int64_t)pad);
			if (rc == 0)
				rc = benc_put_cstr(out, "path");
			if (rc == 0)
				rc = benc_put_list(out);
			if (rc == 0)
				rc = benc_put_cstr(out, ".pad");
			if (rc == 0)
				rc = benc_put_cstr(out, num);
			if (rc == 0)
				rc = benc_put_end(out);
			if (rc == 0)
				rc = benc_put_end(out);
		}
	}
	if (rc == 0)
		rc = benc_put_end(out);
	return rc;
}

/* "pieces": every file's v1 piece hashes, concatenated in file tree order:
 * for a hybrid each v1 piece is exactly one v2 piece; for a v1 torrent
 * (`stream`) each file gives the pieces that start in it. */
static int put_v1_pieces(struct buf *out, uint64_t piece_length, bool stream,
			 const struct metainfo_file_in *const *s, size_t n)
{
	uint64_t total = 0, off = 0;
	for (size_t k = 0; k < n; k++) {
		total += stream ? v1_pieces_starting(off, s[k]->size, piece_length)
				: merkle_piece_count(s[k]->size, piece_length);
		off += s[k]->size;
	}
	char head[32];
	int hl = snprintf(head, sizeof head, "%" PRIu64 ":", total * METAINFO_V1_HASH_LEN);
	int rc = benc_put_cstr(out, "pieces");
	if (rc == 0)
		rc = buf_append(out, head, (size_t)hl);
	off = 0;
	for (size_t k = 0; k < n && rc == 0; k++) {
		uint64_t count = stream ? v1_pieces_starting(off, s[k]->size, piece_length)
					: merkle_piece_count(s[k]->size, piece_length);
		off += s[k]->size;
		if (count)
			rc = buf_append(out, s[k]->v1_pieces, (size_t)count * METAINFO_V1_HASH_LEN);
	}
	return rc;
}

static int put_info(struct buf *out, const char *name, uint64_t piece_length,
		    enum metainfo_format format, const struct metainfo_file_in *const *s, size_t n)
{
	bool v1 = format != METAINFO_FORMAT_V2, v2 = format != METAINFO_FORMAT_V1;
	/* A single file is the torrent itself: its path is its name. */
	bool single = n == 1 && strcmp(s[0]->path, name) == 0;
	int rc = benc_put_dict(out);
	if (rc == 0 && v2)
		rc = benc_put_cstr(out, "file tree");
	if (rc == 0 && v2)
		rc = put_file_tree(out, s, n);
	if (rc == 0 && v1 && !single)
		rc = put_v1_files(out, piece_length, v2, s, n);
	if (rc == 0 && v1 && single) {
		rc = benc_put_cstr(out, "length");
		if (rc == 0)
			rc = benc_put_int(out, (int64_t)s[0]->size);
	}
	if (rc == 0 && v2)
		rc = benc_put_cstr(out, "meta version");
	if (rc == 0 && v2)
		rc = benc_put_int(out, 2);
	if (rc == 0)
		rc = benc_put_cstr(out, "name");
	if (rc == 0)
		rc = benc_put_cstr(out, name);
	if (rc == 0)
		rc = benc_put_cstr(out, "piece length");
	if (rc == 0)
		rc = benc_put_int(out, (int64_t)piece_length);
	if (rc == 0 && v1)
		rc = put_v1_pieces(out, piece_length, !v2, s, n);
	if (rc == 0)
		rc = benc_put_end(out);
	return rc;
}

uint64_t metainfo_v1_pad(uint64_t size, uint64_t piece_length, bool single)
{
	if (single || piece_length == 0 || size % piece_length == 0)
		return 0;
	return piece_length - size % piece_length;
}

/* The swarm key of a built info dict (struct metainfo's info_hash). */
static int info_key(enum metainfo_format format, const uint8_t *info, size_t len,
		    uint8_t out[METAINFO_HASH_LEN])
{
	if (format != METAINFO_FORMAT_V1)
		return sha256_digest(info, len, out);
	memset(out, 0, METAINFO_HASH_LEN);
	return sha1_digest(info, len, out);
}

int metainfo_build_info(const char *name, uint64_t piece_length, enum metainfo_format format,
			const struct metainfo_file_in *files, size_t n, struct buf *out,
			uint8_t info_hash_out[METAINFO_HASH_LEN])
{
	const struct metainfo_file_in **s = NULL;
	size_t start = out->len;
	int rc = build_prepare(name, piece_length, format, files, n, &s);
	if (rc)
		return rc;
	rc = put_info(out, name, piece_length, format, s, n);
	if (rc == 0 && info_hash_out)
		rc = info_key(format, out->data + start, out->len - start, info_hash_out);
	if (rc)
		out->len = start;
	free(s);
	return rc;
}

static int cmp_in_root(const void *x, const void *y)
{
	const struct metainfo_file_in *a = *(const struct metainfo_file_in *const *)x;
	const struct metainfo_file_in *b = *(const struct metainfo_file_in *const *)y;
	return memcmp(a->root, b->root, METAINFO_HASH_LEN);
}

int metainfo_build_torrent(const char *name, uint64_t piece_length,
			   enum metainfo_format format, const struct metainfo_file_in *files, size_t n, const char *created_by,
			   int64_t creation_date, struct buf *out,
			   uint8_t info_hash_out[METAINFO_HASH_LEN])
{
	const struct metainfo_file_in **s = NULL, **big = NULL;
	struct sha256_ctx *ctx = NULL;
	struct buf info;
	size_t start = out->len, nbig = 0;
	buf_init(&info, METAINFO_MAX_INFO_SIZE);

	int rc = build_prepare(name, piece_length, format, files, n, &s);
	if (rc)
		goto done;
	rc = put_info(&info, name, piece_length, format, s, n);
	if (rc)
		goto done;
	if (info_hash_out) {
		rc = info_key(format, info.data, info.len, info_hash_out);
		if (rc)
			goto done;
	}

	/* Files larger than one piece need a layer, each checked against its root. */
	big = malloc(n * sizeof *big);
	ctx = sha256_new();
	if (!big || !ctx) {
		rc = -ENOMEM;
		goto done;
	}
	for (size_t k = 0; k < n && format != METAINFO_FORMAT_V1; k++) {
		const struct metainfo_file_in *f = s[k];
		if (f->size <= piece_length)
			continue;
		if (!f->layer) {
			rc = METAINFO_E_LAYER;
			goto done;
		}
		uint64_t count = merkle_piece_count(f->size, piece_length);
		rc = merkle_layer_verify(ctx, f->layer, (size_t)count * METAINFO_HASH_LEN, f->size,
					 piece_length, f->root);
		if (rc) {
			rc = rc == -EBADMSG ? METAINFO_E_LAYER_MISMATCH : METAINFO_E_LAYER;
			goto done;
		}
		big[nbig++] = f;
	}
	qsort(big, nbig, sizeof *big, cmp_in_root);

	rc = benc_put_dict(out);
	if (rc == 0 && created_by) {
		rc = benc_put_cstr(out, "created by");
		if (rc == 0)
			rc = benc_put_cstr(out, created_by);
	}
	if (rc == 0 && creation_date > 0) {
		rc = benc_put_cstr(out, "creation date");
		if (rc == 0)
			rc = benc_put_int(out, creation_date);
	}
	if (rc == 0)
		rc = benc_put_cstr(out, "info");
	if (rc == 0)
		rc = buf_append(out, info.data, info.len);
	if (rc == 0 && format != METAINFO_FORMAT_V1)
		rc = benc_put_cstr(out, "piece layers");
	if (rc == 0 && format != METAINFO_FORMAT_V1)
		rc = benc_put_dict(out);
	for (size_t k = 0; k < nbig && rc == 0; k++) {
		/* Identical files share one root and one entry. */
		if (k > 0 && memcmp(big[k - 1]->root, big[k]->root, METAINFO_HASH_LEN) == 0)
			continue;
		rc = benc_put_str(out, big[k]->root, METAINFO_HASH_LEN);
		if (rc == 0)
			rc = benc_put_str(out, big[k]->layer,
					  (size_t)merkle_piece_count(big[k]->size, piece_length) *
						  METAINFO_HASH_LEN);
	}
	if (rc == 0 && format != METAINFO_FORMAT_V1)
		rc = benc_put_end(out);
	if (rc == 0)
		rc = benc_put_end(out);
done:
	if (rc)
		out->len = start;
	sha256_free(ctx);
	free(big);
	free(s);
	buf_destroy(&info);
	return rc;
}

/* ---------------------------------------------------------------- parser */

void metainfo_destroy(struct metainfo *mi)
{
	free(mi->name);
	for (size_t k = 0; k < mi->file_count; k++)
		free(mi->files[k].path);
	free(mi->files);
	free(mi->info);
	for (size_t k = 0; k < mi->layer_store_count; k++)
		free(mi->layer_store[k]);
	free(mi->layer_store);
	memset(mi, 0, sizeof *mi);
}

/* Parse [p, end) into a node array sized by the input (a value takes at
 * least two bytes, so len/2 + 1 nodes always suffice).  The caller frees
 * doc->nodes. */
static int parse_doc(struct benc_doc *doc, const uint8_t *p, const uint8_t *end, size_t max)
{
	doc->nodes = NULL;
	if (!p || end < p)
		return -EINVAL;
	size_t len = (size_t)(end - p);
	if (len > max)
		return METAINFO_E_TOO_BIG;
	size_t cap = len / 2 + 1;
	if (cap > METAINFO_MAX_NODES)
		cap = METAINFO_MAX_NODES;
	doc->nodes = malloc(cap * sizeof *doc->nodes);
	if (!doc->nodes)
		return -ENOMEM;
	doc->cap = cap;
	int rc = benc_parse(doc, p, end, NULL);
	if (rc == -E2BIG)
		return METAINFO_E_TOO_BIG;
	if (rc == -ELOOP)
		return METAINFO_E_TOO_DEEP;
	if (rc)
		return METAINFO_E_BENCODE;
	return 0;
}

/* Append one file to mi->files (growing it). */
static int push_file(struct metainfo *mi, size_t *cap, const char *path, size_t path_len)
{
	if (mi->file_count == METAINFO_MAX_FILES)
		return METAINFO_E_TOO_MANY_FILES;
	if (mi->file_count == *cap) {
		size_t ncap = *cap ? 2 * *cap : 16;
		if (ncap > METAINFO_MAX_FILES)
			ncap = METAINFO_MAX_FILES;
		struct metainfo_file *f = realloc(mi->files, ncap * sizeof *f);
		if (!f)
			return -ENOMEM;
		mi->files = f;
		*cap = ncap;
	}
	struct metainfo_file *f = &mi->files[mi->file_count];
	memset(f, 0, sizeof *f);
	f->path = malloc(path_len + 1);
	if (!f->path)
		return -ENOMEM;
	memcpy(f->path, path, path_len);
	f->path[path_len] = '\0';
	mi->file_count++;
	return 0;
}

/* Add one file leaf (the dict under key "") at `path`. */
static int add_file(struct metainfo *mi, size_t *cap, const struct benc_doc *doc,
		    const struct benc_node *leaf, const char *path, size_t path_len)
{
	if (leaf->type != BENC_DICT)
		return METAINFO_E_FILE_TREE;
	const struct benc_node *len = benc_dict_get_type(doc, leaf, "length", BENC_INT);
	if (!len || len->i < 0)
		return METAINFO_E_SIZE;
	uint64_t size = (uint64_t)len->i;
	const struct benc_node *root = benc_dict_get(doc, leaf, "pieces root");
	if (size > 0 && (!root || root->type != BENC_STR || root->s_len != METAINFO_HASH_LEN))
		return METAINFO_E_PIECES_ROOT;
	if (size == 0 && root)
		return METAINFO_E_PIECES_ROOT; /* BEP 52: empty files have none */
	if (size > (uint64_t)INT64_MAX - mi->total_size)
		return METAINFO_E_SIZE;
	uint64_t pieces = merkle_piece_count(size, mi->piece_length);
	if (pieces > METAINFO_MAX_PIECES - (uint64_t)mi->total_pieces)
		return METAINFO_E_SIZE;
	int rc = push_file(mi, cap, path, path_len);
	if (rc)
		return rc;
	struct metainfo_file *f = &mi->files[mi->file_count - 1];
	f->size = size;
	f->has_root = size > 0;
	if (size > 0)
		memcpy(f->root, root->s, METAINFO_HASH_LEN);
	f->first_piece = mi->total_pieces;
	f->piece_count = (uint32_t)pieces;
	mi->total_size += size;
	mi->total_pieces += (uint32_t)pieces;
	return 0;
}

/* Walk the file tree depth first, iteratively, in key order (BEP 52: a
 * folder is a dict of names; a file is a dict whose only key is ""). */
static int walk_file_tree(struct metainfo *mi, const struct benc_doc *doc,
			  const struct benc_node *tree)
{
	struct frame {
		const struct benc_node *dict;
		const struct benc_node *key; /* next key to visit */
		size_t path_len;             /* path length at this folder */
	} stack[METAINFO_MAX_DEPTH];
	char path[METAINFO_MAX_PATH + 1];
	size_t depth = 0, cap = 0;

	if (tree->type != BENC_DICT || tree->count == 0 || benc_dict_get(doc, tree, ""))
		return METAINFO_E_FILE_TREE;
	stack[depth++] = (struct frame){ tree, benc_child(doc, tree), 0 };
	while (depth > 0) {
		struct frame *f = &stack[depth - 1];
		const struct benc_node *key = f->key;
		if (!key) {
			depth--;
			continue;
		}
		const struct benc_node *val = key + 1;
		f->key = benc_next(doc, f->dict, val);

		if (!metainfo_component_ok(key->s, key->s_len))
			return METAINFO_E_PATH;
		size_t len = f->path_len + (f->path_len ? 1 : 0) + key->s_len;
		if (len > METAINFO_MAX_PATH)
			return METAINFO_E_PATH;
		if (f->path_len)
			path[f->path_len] = '/';
		memcpy(path + len - key->s_len, key->s, key->s_len);

		if (val->type != BENC_DICT || val->count == 0)
			return METAINFO_E_FILE_TREE;
		const struct benc_node *leaf = benc_dict_get(doc, val, "");
		if (leaf) {
			if (val->count != 1)
				return METAINFO_E_FILE_TREE; /* both a file and a folder */
			int rc = add_file(mi, &cap, doc, leaf, path, len);
			if (rc)
				return rc;
		} else {
			if (depth == METAINFO_MAX_DEPTH)
				return METAINFO_E_TOO_DEEP;
			stack[depth++] = (struct frame){ val, benc_child(doc, val), len };
		}
	}
	return 0;
}

/* One v1 file list entry ({"length", "path" [components], "attr"}) into
 * a '/'-joined path in `path` (at least METAINFO_MAX_PATH + 1 bytes). */
static int v1_entry(const struct benc_doc *doc, const struct benc_node *e, char *path,
		    size_t *path_len, uint64_t *size, bool *pad)
{
	if (e->type != BENC_DICT)
		return METAINFO_E_V1_FILES;
	const struct benc_node *len = benc_dict_get_type(doc, e, "length", BENC_INT);
	if (!len || len->i < 0)
		return METAINFO_E_SIZE;
	*size = (uint64_t)len->i;
	const struct benc_node *attr = benc_dict_get_type(doc, e, "attr", BENC_STR);
	*pad = attr && memchr(attr->s, 'p', attr->s_len) != NULL;
	const struct benc_node *pl = benc_dict_get_type(doc, e, "path", BENC_LIST);
	if (!pl || pl->count == 0)
		return METAINFO_E_PATH;
	if (pl->count > METAINFO_MAX_DEPTH + 1)
		return METAINFO_E_TOO_DEEP;
	size_t n = 0;
	for (const struct benc_node *c = benc_child(doc, pl); c; c = benc_next(doc, pl, c)) {
		if (c->type != BENC_STR || !metainfo_component_ok(c->s, c->s_len))
			return METAINFO_E_PATH;
		if (n + (n ? 1 : 0) + c->s_len > METAINFO_MAX_PATH)
			return METAINFO_E_PATH;
		if (n)
			path[n++] = '/';
		memcpy(path + n, c->s, c->s_len);
		n += c->s_len;
	}
	path[n] = '\0';
	*path_len = n;
	return 0;
}

static int cmp_file_path(const void *x, const void *y)
{
	const struct metainfo_file *a = *(const struct metainfo_file *const *)x;
	const struct metainfo_file *b = *(const struct metainfo_file *const *)y;
	return metainfo_path_cmp(a->path, b->path);
}

/* No two files of a v1 list may share a path, nor may one be a folder of
 * another (the v2 file tree rules this out by its shape). */
static int v1_check_duplicates(const struct metainfo *mi)
{
	if (mi->file_count < 2)
		return 0;
	const struct metainfo_file **s = malloc(mi->file_count * sizeof *s);
	if (!s)
		return -ENOMEM;
	for (size_t k = 0; k < mi->file_count; k++)
		s[k] = &mi->files[k];
	qsort(s, mi->file_count, sizeof *s, cmp_file_path);
	int rc = 0;
	for (size_t k = 1; k < mi->file_count && rc == 0; k++)
		if (strcmp(s[k - 1]->path, s[k]->path) == 0 || path_is_inside(s[k - 1]->path, s[k]->path))
			rc = METAINFO_E_DUPLICATE;
	free(s);
	return rc;
}


/* The v1 keys: "pieces", and "files" or "length".  For a v1 torrent
 * (`fill`) the files go into mi->files with their stream offsets; for a
 * hybrid they are checked against the v2 files already parsed: the same
 * paths and sizes in the same order, each non-empty file starting where
 * its v2 pieces do, and only pad files (BEP 47) in between. */
static int parse_v1(struct metainfo *mi, const struct benc_doc *doc, const struct benc_node *info,
		    bool fill)
{
	const struct benc_node *pieces = benc_dict_get_type(doc, info, "pieces", BENC_STR);
	const struct benc_node *files = benc_dict_get(doc, info, "files");
	const struct benc_node *length = benc_dict_get(doc, info, "length");
	if (!pieces || pieces->s_len == 0 || pieces->s_len % METAINFO_V1_HASH_LEN != 0)
		return METAINFO_E_V1_PIECES;
	if ((files != NULL) == (length != NULL))
		return METAINFO_E_V1_FILES;
	char path[METAINFO_MAX_PATH + 1];
	size_t cap = 0, next = 0; /* next: the v2 file to match (hybrid) */
	uint64_t off = 0, real = 0;
	int rc = 0;
	if (length) {
		if (length->type != BENC_INT || length->i < 0)
			return METAINFO_E_SIZE;
		uint64_t size = (uint64_t)length->i;
		if (fill) {
			rc = push_file(mi, &cap, mi->name, strlen(mi->name));
			if (rc)
				return rc;
			mi->files[0].size = size;
		} else if (mi->file_count != 1 || mi->files[0].size != size ||
			   strcmp(mi->files[0].path, mi->name) != 0) {
			return METAINFO_E_HYBRID_MISMATCH;
		}
		off = real = size;
		next = 1;
	} else {
		if (files->type != BENC_LIST || files->count == 0)
			return METAINFO_E_V1_FILES;
		for (const struct benc_node *e = benc_child(doc, files); e; e = benc_next(doc, files, e)) {
			size_t plen;
			uint64_t size;
			bool pad;
			rc = v1_entry(doc, e, path, &plen, &size, &pad);
			if (rc)
				return rc;
			if (size > (uint64_t)INT64_MAX - off)
				return METAINFO_E_SIZE;
			if (pad) {
				/* Never on disk: only its length counts. */
				off += size;
				continue;
			}
			if (fill) {
				rc = push_file(mi, &cap, path, plen);
				if (rc)
					return rc;
				struct metainfo_file *f = &mi->files[mi->file_count - 1];
				f->size = size;
				f->offset = off;
			} else {
				const struct metainfo_file *f = next < mi->file_count ? &mi->files[next] : NULL;
				if (!f || f->size != size || strcmp(f->path, path) != 0 ||
				    (size > 0 && f->offset != off))
					return METAINFO_E_HYBRID_MISMATCH;
				next++;
			}
			off += size;
			real += size;
		}
	}
	if (!fill && next != mi->file_count)
		return METAINFO_E_HYBRID_MISMATCH;
	if (fill && mi->file_count == 0)
		return METAINFO_E_V1_FILES; /* only pad files: nothing to download */
	uint64_t np = off / mi->piece_length + (off % mi->piece_length != 0);
	if (np == 0 || np > METAINFO_MAX_PIECES)
		return METAINFO_E_SIZE;
	if ((uint64_t)pieces->s_len != np * METAINFO_V1_HASH_LEN)
		return METAINFO_E_V1_PIECES;
	if (!fill && (np != mi->total_pieces || off > (uint64_t)mi->total_pieces * mi->piece_length))
		return METAINFO_E_HYBRID_MISMATCH;
	mi->v1_total = off;
	mi->v1_pieces = pieces->s; /* into the input: moved into mi->info by the caller */
	if (fill) {
		mi->total_size = real;
		mi->total_pieces = (uint32_t)np;
		for (size_t k = 0; k < mi->file_count; k++) {
			struct metainfo_file *f = &mi->files[k];
			if (f->size == 0) {
				f->first_piece = (uint32_t)(f->offset / mi->piece_length);
				continue;
			}
			uint64_t first = f->offset / mi->piece_length;
			uint64_t last = (f->offset + f->size - 1) / mi->piece_length;
			f->first_piece = (uint32_t)first;
			f->piece_count = (uint32_t)(last - first + 1);
		}
		rc = v1_check_duplicates(mi);
	}
	return rc;
}

/* Fill `mi` from an info dict node (everything but layers). */
static int parse_info_node(struct metainfo *mi, const struct benc_doc *doc,
			   const struct benc_node *info)
{
	if (!info || info->type != BENC_DICT)
		return METAINFO_E_NO_INFO;
	if (info->raw_len > METAINFO_MAX_INFO_SIZE)
		return METAINFO_E_TOO_BIG;
	const struct benc_node *v = benc_dict_get(doc, info, "meta version");
	bool v1 = benc_dict_get(doc, info, "pieces") != NULL;
	mi->has_v2 = v && v->type == BENC_INT && v->i == 2;
	if (!mi->has_v2 && (v || !v1))
		return METAINFO_E_VERSION;
	v = benc_dict_get_type(doc, info, "piece length", BENC_INT);
	if (!v || v->i <= 0 || !merkle_piece_length_ok((uint64_t)v->i) ||
	    (uint64_t)v->i > METAINFO_MAX_PIECE_LENGTH)
		return METAINFO_E_PIECE_LENGTH;
	mi->piece_length = (uint64_t)v->i;
	v = benc_dict_get_type(doc, info, "name", BENC_STR);
	if (!v || !metainfo_component_ok(v->s, v->s_len))
		return METAINFO_E_NAME;
	mi->name = malloc(v->s_len + 1);
	if (!mi->name)
		return -ENOMEM;
	memcpy(mi->name, v->s, v->s_len);
	mi->name[v->s_len] = '\0';
	v = benc_dict_get_type(doc, info, "private", BENC_INT);
	mi->private_flag = v && v->i == 1;
	int rc = 0;
	if (mi->has_v2) {
		v = benc_dict_get(doc, info, "file tree");
		if (!v)
			return METAINFO_E_FILE_TREE;
		rc = walk_file_tree(mi, doc, v);
		if (rc)
			return rc;
		for (size_t k = 0; k < mi->file_count; k++)
			mi->files[k].offset = (uint64_t)mi->files[k].first_piece * mi->piece_length;
	}
	if (v1) {
		rc = parse_v1(mi, doc, info, !mi->has_v2);
		if (rc)
			return rc;
	}

	mi->info = malloc(info->raw_len);
	if (!mi->info)
		return -ENOMEM;
	memcpy(mi->info, info->raw, info->raw_len);
	mi->info_len = info->raw_len;
	if (v1) {
		mi->v1_pieces = mi->info + (mi->v1_pieces - info->raw);
		rc = sha1_digest(mi->info, mi->info_len, mi->info_hash_v1);
		if (rc)
			return rc;
		mi->has_v1 = true;
	}
	if (mi->has_v2) {
		rc = sha256_digest(mi->info, mi->info_len, mi->info_hash);
		if (rc)
			return rc;
	} else {
		memcpy(mi->info_hash, mi->info_hash_v1, METAINFO_V1_HASH_LEN);
	}

	/* v2: a file of one piece is its own layer.  v1 has no layers. */
	mi->all_layers = true;
	for (size_t k = 0; mi->has_v2 && k < mi->file_count; k++) {
		struct metainfo_file *f = &mi->files[k];
		if (f->piece_count == 1)
			f->layer = f->root;
		else if (f->piece_count > 1)
			mi->all_layers = false;
	}
	return 0;
}

enum metainfo_format metainfo_format_of(const struct metainfo *mi)
{
	return !mi->has_v2 ? METAINFO_FORMAT_V1 : mi->has_v1 ? METAINFO_FORMAT_HYBRID : METAINFO_FORMAT_V2;
}

static const char *const format_names[] = {
	[METAINFO_FORMAT_V2] = "v2",
	[METAINFO_FORMAT_HYBRID] = "hybrid",
	[METAINFO_FORMAT_V1] = "v1",
};

const char *metainfo_format_name(enum metainfo_format f)
{
	return (unsigned)f < sizeof format_names / sizeof format_names[0] ? format_names[f] : "?";
}

int metainfo_format_parse(const char *name, enum metainfo_format *out)
{
	for (unsigned f = 0; name && f < sizeof format_names / sizeof format_names[0]; f++) {
		if (strcmp(name, format_names[f]) == 0) {
			*out = (enum metainfo_format)f;
			return 0;
		}
	}
	return -EINVAL;
}

uint64_t metainfo_v1_piece_size(const struct metainfo *mi, uint32_t piece)
{
	if (!mi->has_v1 || piece >= mi->total_pieces)
		return 0;
	uint64_t start = (uint64_t)piece * mi->piece_length;
	uint64_t left = mi->v1_total - start;
	return left < mi->piece_length ? left : mi->piece_length;
}

static int cmp_key_node(const void *x, const void *y)
{
	const struct benc_node *a = *(const struct benc_node *const *)x;
	const struct benc_node *b = *(const struct benc_node *const *)y;
	return memcmp(a->s, b->s, METAINFO_HASH_LEN);
}

/* Verify and keep the layers of "piece layers" (BEP 52) that match files. */
static int parse_layers(struct metainfo *mi, const struct benc_doc *doc,
			const struct benc_node *layers)
{
	const struct benc_node **keys = NULL;
	const uint8_t **found = NULL;
	struct sha256_ctx *ctx = NULL;
	uint8_t *store = NULL, **slots = NULL;
	int rc = 0;

	if (layers->type != BENC_DICT)
		return METAINFO_E_LAYER;
	if (layers->count == 0)
		return 0;
	keys = malloc(layers->count * sizeof *keys);
	found = calloc(mi->file_count, sizeof *found);
	ctx = sha256_new();
	if (!keys || !found || !ctx) {
		rc = -ENOMEM;
		goto done;
	}
	size_t nkeys = 0;
	for (const struct benc_node *k = benc_child(doc, layers); k;
	     k = benc_next(doc, layers, k + 1)) {
		if (k->s_len != METAINFO_HASH_LEN || k[1].type != BENC_STR) {
			rc = METAINFO_E_LAYER;
			goto done;
		}
		keys[nkeys++] = k; /* already sorted: the parser enforces key order */
	}

	size_t total = 0;
	for (size_t k = 0; k < mi->file_count; k++) {
		struct metainfo_file *f = &mi->files[k];
		if (f->piece_count <= 1)
			continue;
		struct benc_node probe = { .s = f->root, .s_len = METAINFO_HASH_LEN };
		const struct benc_node *pp = &probe;
		const struct benc_node **hit = bsearch(&pp, keys, nkeys, sizeof *keys, cmp_key_node);
		if (!hit)
			continue;
		const struct benc_node *val = *hit + 1;
		rc = merkle_layer_verify(ctx, val->s, val->s_len, f->size, mi->piece_length, f->root);
		if (rc) {
			rc = rc == -EBADMSG ? METAINFO_E_LAYER_MISMATCH : METAINFO_E_LAYER;
			goto done;
		}
		found[k] = val->s;
		total += val->s_len;
	}
	if (total == 0)
		goto done;
	store = malloc(total);
	slots = realloc(mi->layer_store, (mi->layer_store_count + 1) * sizeof *slots);
	if (slots)
		mi->layer_store = slots;
	if (!store || !slots) {
		rc = -ENOMEM;
		goto done;
	}
	mi->layer_store[mi->layer_store_count++] = store;
	size_t off = 0;
	for (size_t k = 0; k < mi->file_count; k++) {
		if (!found[k])
			continue;
		size_t n = (size_t)mi->files[k].piece_count * METAINFO_HASH_LEN;
		memcpy(store + off, found[k], n);
		mi->files[k].layer = store + off;
		off += n;
	}
	store = NULL;
	mi->all_layers = true;
	for (size_t k = 0; k < mi->file_count; k++)
		if (mi->files[k].piece_count > 0 && !mi->files[k].layer)
			mi->all_layers = false;
done:
	free(store);
	sha256_free(ctx);
	free(found);
	free(keys);
	return rc;
}

int metainfo_parse_torrent(struct metainfo *mi, const uint8_t *p, const uint8_t *end)
{
	struct benc_doc doc;
	memset(mi, 0, sizeof *mi);
	int rc = parse_doc(&doc, p, end, METAINFO_MAX_TORRENT_SIZE);
	if (rc)
		goto done;
	const struct benc_node *root = benc_root(&doc);
	if (root->type != BENC_DICT) {
		rc = METAINFO_E_NO_INFO;
		goto done;
	}
	rc = parse_info_node(mi, &doc, benc_dict_get(&doc, root, "info"));
	if (rc)
		goto done;
	const struct benc_node *layers = benc_dict_get(&doc, root, "piece layers");
	if (layers && mi->has_v2) /* v1 has no layers: ignored */
		rc = parse_layers(mi, &doc, layers);
done:
	free(doc.nodes);
	if (rc)
		metainfo_destroy(mi);
	return rc;
}

int metainfo_parse_info(struct metainfo *mi, const uint8_t *p, const uint8_t *end)
{
	struct benc_doc doc;
	memset(mi, 0, sizeof *mi);
	int rc = parse_doc(&doc, p, end, METAINFO_MAX_INFO_SIZE);
	if (rc == 0)
		rc = parse_info_node(mi, &doc, benc_root(&doc));
	free(doc.nodes);
	if (rc)
		metainfo_destroy(mi);
	return rc;
}

int metainfo_check_hash(const struct metainfo *mi, const uint8_t expected[METAINFO_HASH_LEN])
{
	return memcmp(mi->info_hash, expected, METAINFO_HASH_LEN) == 0 ? 0
									: METAINFO_E_HASH_MISMATCH;
}

int metainfo_set_layer(struct metainfo *mi, size_t index, const uint8_t *layer, size_t len)
{
	if (index >= mi->file_count || !layer)
		return -EINVAL;
	struct metainfo_file *f = &mi->files[index];
	if (f->piece_count == 0 || len != (size_t)f->piece_count * METAINFO_HASH_LEN)
		return -EINVAL;
	struct sha256_ctx *ctx = sha256_new();
	if (!ctx)
		return -ENOMEM;
	int rc = merkle_layer_verify(ctx, layer, len, f->size, mi->piece_length, f->root);
	sha256_free(ctx);
	if (rc)
		return rc == -EBADMSG ? METAINFO_E_LAYER_MISMATCH : rc;
	if (f->layer)
		return 0; /* already known, and the same since both match the root */
	uint8_t *copy = malloc(len);
	uint8_t **slots = realloc(mi->layer_store, (mi->layer_store_count + 1) * sizeof *slots);
	if (slots)
		mi->layer_store = slots;
	if (!copy || !slots) {
		free(copy);
		return -ENOMEM;
	}
	memcpy(copy, layer, len);
	mi->layer_store[mi->layer_store_count++] = copy;
	f->layer = copy;
	mi->all_layers = true;
	for (size_t k = 0; k < mi->file_count; k++)
		if (mi->files[k].piece_count > 0 && !mi->files[k].layer)
			mi->all_layers = false;
	return 0;
}

const struct metainfo_file *metainfo_file_by_root(const struct metainfo *mi, const uint8_t root[32],
						  size_t *index_out)
{
	for (size_t f = 0; mi && f < mi->file_count; f++) {
		if (mi->files[f].has_root && memcmp(mi->files[f].root, root, 32) == 0) {
			if (index_out)
				*index_out = f;
			return &mi->files[f];
		}
	}
	return NULL;
}

const struct metainfo_file *metainfo_v2_piece_file(const struct metainfo *mi, uint32_t piece,
						   uint32_t *local_out)
{
	size_t lo = 0, hi = mi->file_count;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		const struct metainfo_file *f = &mi->files[mid];
		if (f->piece_count == 0 || piece >= f->first_piece + f->piece_count) {
			if (f->piece_count == 0 && piece < f->first_piece)
				hi = mid;
			else
				lo = mid + 1;
		} else if (piece < f->first_piece) {
			hi = mid;
		} else {
			*local_out = piece - f->first_piece;
			return f;
		}
	}
	/* Empty files share first_piece values with their neighbours; fall back
	 * to a scan when the bisection lands between them. */
	for (size_t i = 0; i < mi->file_count; i++) {
		const struct metainfo_file *f = &mi->files[i];
		if (f->piece_count && piece >= f->first_piece && piece < f->first_piece + f->piece_count) {
			*local_out = piece - f->first_piece;
			return f;
		}
	}
	return NULL;
}

