/* joincheck.c: probe and hash what is already where a fresh join's files go. */
#include "config.h"

#include "node/joincheck.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/bytes.h"
#include "common/sha256.h"
#include "transfer/merkle.h"
#include "transfer/metainfo.h"

/* Bytes read per call while hashing an existing file. */
#define JOIN_READ_CHUNK (1u << 20)

enum fate {
	FATE_CREATE,   /* nothing there */
	FATE_HASH,     /* a regular file of the right size: to hash */
	FATE_ADOPT,    /* hashed and every piece matches */
	FATE_REPLACE,  /* in the way, and the user said overwrite */
	FATE_CONFLICT, /* in the way */
	FATE_SKIP,     /* not to be downloaded: whatever is there is left alone */
};

struct join_check {
	const struct metainfo *mi;
	char *root;
	bool overwrite;
	struct join_layout layout;
	struct storage *st;
	enum fate *fate;
	char conflict[PATH_MAX + 400];
};

int join_layout_init(struct join_layout *l, const struct metainfo *mi, bool join,
		     const uint8_t *access)
{
	memset(l, 0, sizeof *l);
	size_t n = mi->file_count;
	bool prefix = join && !(n == 1 && strcmp(mi->files[0].path, mi->name) == 0);
	l->files = calloc(n ? n : 1, sizeof *l->files);
	l->paths = prefix ? calloc(n ? n : 1, sizeof *l->paths) : NULL;
	if (!l->files || (prefix && !l->paths)) {
		join_layout_destroy(l);
		return -ENOMEM;
	}
	l->n = n;
	for (size_t f = 0; f < n; f++) {
		const struct metainfo_file *mf = &mi->files[f];
		if (prefix) {
			size_t len = strlen(mi->name) + 1 + strlen(mf->path) + 1;
			l->paths[f] = malloc(len);
			if (!l->paths[f]) {
				join_layout_destroy(l);
				return -ENOMEM;
			}
			snprintf(l->paths[f], len, "%s/%s", mi->name, mf->path);
		}
		l->files[f].path = prefix ? l->paths[f] : mf->path;
		l->files[f].size = mf->size;
		l->files[f].first_piece = mf->first_piece;
		l->files[f].offset = mf->offset;
		l->files[f].access = access ? (enum storage_access)access[f] : STORAGE_READ;
	}
	l->stream = !mi->has_v2;
	l->stream_total = mi->v1_total;
	l->piece_length = (uint32_t)mi->piece_length;
	return 0;
}

int join_layout_storage(const struct join_layout *l, const char *root, unsigned max_open,
			struct storage **out)
{
	if (l->stream)
		return storage_new_stream(root, l->files, l->n, l->piece_length, l->stream_total,
					  max_open, out);
	return storage_new(root, l->files, l->n, l->piece_length, max_open, out);
}

void join_layout_destroy(struct join_layout *l)
{
	for (size_t f = 0; l->paths && f < l->n; f++)
		free(l->paths[f]);
	free(l->paths);
	free(l->files);
	memset(l, 0, sizeof *l);
}

static void set_conflict(struct join_check *jc, size_t f, size_t depth, const char *why)
{
	if (jc->conflict[0])
		return; /* the first one is enough to act on */
	const char *path = jc->layout.files[f].path;
	if (depth == 0)
		depth = strlen(path);
	snprintf(jc->conflict, sizeof jc->conflict, "%s/%.*s %s", jc->root, (int)depth, path, why);
}

static const char *const WHY_EXISTS =
	"already exists and does not hold this torrent's data; shoal never writes into a file "
	"it did not create (move it away, join into another directory, or use --overwrite to "
	"replace it)";
static const char *const WHY_BLOCKED =
	"is in the way: a directory where the torrent has a file, or a symbolic link or file "
	"where it has a directory; shoal never follows symbolic links below the download "
	"directory nor removes directories (move it away or join into another directory)";
static const char *const WHY_UNHASHED =
	"already exists; a magnet join cannot check it against the torrent before its download "
	"starts, and shoal never writes into a file it did not create (move it away, join the "
	".torrent instead to use the file as downloaded data, or use --overwrite)";

static const char *const WHY_V1 =
	"already exists; in a v1 torrent pieces span files, so shoal cannot check one file "
	"alone against it and never writes into a file it did not create (move it away, "
	"join into another directory, or use --overwrite)";

int join_check_new(const char *root, const struct metainfo *mi, bool overwrite,
		   const uint8_t *skip, struct join_check **jc_out)
{
	*jc_out = NULL;
	struct join_check *jc = calloc(1, sizeof *jc);
	if (!jc)
		return -ENOMEM;
	jc->mi = mi;
	jc->overwrite = overwrite;
	jc->root = strdup(root);
	jc->fate = calloc(mi->file_count ? mi->file_count : 1, sizeof *jc->fate);
	int rc = -ENOMEM;
	if (!jc->root || !jc->fate || (rc = join_layout_init(&jc->layout, mi, true, NULL)) != 0)
		goto fail;
	rc = join_layout_storage(&jc->layout, root, 0, &jc->st);
	if (rc)
		goto fail;
	for (size_t f = 0; f < mi->file_count; f++) {
		enum storage_probe probe;
		size_t depth = 0;
		if (skip && skip[f]) {
			jc->fate[f] = FATE_SKIP;
			continue;
		}
		rc = storage_probe_file(jc->st, f, &probe, &depth);
		if (rc)
			goto fail;
		switch (probe) {
		case STORAGE_ABSENT:
			jc->fate[f] = FATE_CREATE;
			break;
		case STORAGE_PRESENT:
			if (mi->files[f].size == 0) {
				jc->fate[f] = FATE_ADOPT;
			} else if (!mi->has_v2) {
				/* v1 pieces span files: a file cannot be checked
				 * alone, so it is never adopted. */
				jc->fate[f] = overwrite ? FATE_REPLACE : FATE_CONFLICT;
				if (!overwrite)
					set_conflict(jc, f, 0, WHY_V1);
			} else {
				jc->fate[f] = FATE_HASH;
			}
			break;
		case STORAGE_OTHER:
			jc->fate[f] = overwrite ? FATE_REPLACE : FATE_CONFLICT;
			if (!overwrite)
				set_conflict(jc, f, 0, WHY_EXISTS);
			break;
		case STORAGE_BLOCKED:
			jc->fate[f] = FATE_CONFLICT;
			set_conflict(jc, f, depth, WHY_BLOCKED);
			break;
		}
	}
	*jc_out = jc;
	return 0;
fail:
	join_check_free(jc);
	return rc;
}

void join_check_free(struct join_check *jc)
{
	if (!jc)
		return;
	storage_free(jc->st);
	join_layout_destroy(&jc->layout);
	free(jc->fate);
	free(jc->root);
	free(jc);
}

const char *join_check_conflict(const struct join_check *jc)
{
	return jc->conflict[0] ? jc->conflict : NULL;
}

bool join_check_needs_hash(const struct join_check *jc)
{
	for (size_t f = 0; f < jc->mi->file_count; f++)
		if (jc->fate[f] == FATE_HASH)
			return true;
	return false;
}

/* Does file f on disk hash to its pieces root?  Returns 1, 0, or a
 * negative errno. */
static int file_matches(struct join_check *jc, size_t f, struct sha256_ctx *ctx, uint8_t *buf)
{
	const struct metainfo_file *mf = &jc->mi->files[f];
	uint64_t plen = jc->mi->piece_length;
	uint64_t leaves = merkle_piece_leaves(mf->size, plen);
	uint8_t *layer = malloc((size_t)mf->piece_count * MERKLE_HASH_LEN);
	int rc = 1;
	if (!layer)
		return -ENOMEM;
	for (uint32_t i = 0; i < mf->piece_count && rc == 1; i++) {
		uint64_t size = merkle_piece_size(mf->size, plen, i);
		struct merkle_piece mp;
		if (merkle_piece_init(&mp, ctx, leaves) != 0) {
			rc = -EINVAL;
			break;
		}
		for (uint64_t off = 0; off < size && rc == 1;) {
			size_t n = size - off < JOIN_READ_CHUNK ? (size_t)(size - off) : JOIN_READ_CHUNK;
			int r = storage_read_fast(jc->st, mf->first_piece + i, (uint32_t)off, buf, n);
			if (r == -ENODATA)
				rc = 0; /* it shrank: not the data */
			else if (r < 0)
				rc = r;
			else if (merkle_piece_update(&mp, buf, n) != 0)
				rc = -EINVAL;
			off += n;
		}
		if (rc == 1 && merkle_piece_final(&mp, layer + (size_t)i * MERKLE_HASH_LEN) != 0)
			rc = -EINVAL;
	}
	uint8_t root[MERKLE_HASH_LEN];
	if (rc == 1 && merkle_layer_root(ctx, layer, mf->piece_count, plen, root) != 0)
		rc = -EINVAL;
	if (rc == 1)
		rc = memcmp(root, mf->root, MERKLE_HASH_LEN) == 0;
	free(layer);
	return rc;
}

void join_check_hash(struct join_check *jc)
{
	struct sha256_ctx *ctx = sha256_new();
	uint8_t *buf = malloc(JOIN_READ_CHUNK);
	for (size_t f = 0; f < jc->mi->file_count; f++) {
		if (jc->fate[f] != FATE_HASH)
			continue;
		int ok = ctx && buf ? file_matches(jc, f, ctx, buf) : -ENOMEM;
		/* Its pieces will be recorded as had: on disk first, as every
		 * downloaded piece (the user may have just written it). */
		if (ok == 1) {
			int rc = storage_flush_file(jc->st, f);
			if (rc < 0)
				ok = rc;
		}
		if (ok == 1) {
			jc->fate[f] = FATE_ADOPT;
		} else if (jc->overwrite) {
			jc->fate[f] = FATE_REPLACE;
		} else {
			jc->fate[f] = FATE_CONFLICT;
			if (ok < 0) {
				char why[200];
				snprintf(why, sizeof why,
					 "already exists and cannot be checked against the torrent (%s); "
					 "shoal never writes into a file it did not create",
					 strerror(-ok));
				set_conflict(jc, f, 0, why);
			} else {
				set_conflict(jc, f, 0, WHY_EXISTS);
			}
		}
	}
	free(buf);
	sha256_free(ctx);
}

void join_check_refuse_unhashed(struct join_check *jc)
{
	for (size_t f = 0; f < jc->mi->file_count; f++) {
		if (jc->fate[f] != FATE_HASH)
			continue;
		jc->fate[f] = jc->overwrite ? FATE_REPLACE : FATE_CONFLICT;
		if (!jc->overwrite)
			set_conflict(jc, f, 0, WHY_UNHASHED);
	}
}

uint8_t *join_check_access(const struct join_check *jc)
{
	size_t n = jc->mi->file_count;
	uint8_t *a = malloc(n ? n : 1);
	for (size_t f = 0; a && f < n; f++)
		a[f] = jc->fate[f] == FATE_ADOPT     ? STORAGE_READ
		       : jc->fate[f] == FATE_REPLACE ? STORAGE_REPLACE
		       : jc->fate[f] == FATE_SKIP    ? STORAGE_SKIP
						     : STORAGE_CREATE;
	return a;
}

uint32_t join_check_mark_have(const struct join_check *jc, uint8_t *have)
{
	uint32_t n = 0;
	for (size_t f = 0; f < jc->mi->file_count; f++) {
		if (jc->fate[f] != FATE_ADOPT)
			continue;
		const struct metainfo_file *mf = &jc->mi->files[f];
		for (uint32_t i = mf->first_piece; i < mf->first_piece + mf->piece_count; i++) {
			if (!bit_get(have, i)) {
				bit_set(have, i);
				n++;
			}
		}
	}
	return n;
}
