/* fuzz_metainfo.c: fuzz harness for .torrent and info dict parsing
 * (transfer/metainfo.h).
 *
 * Checked properties of anything accepted: every path is safe component by
 * component; v2: pieces are numbered contiguously, the info-hash is SHA-256
 * of the kept info bytes; v1: files lie in stream order and their pieces
 * follow from their offsets, the key is the SHA-1 of the info bytes; and
 * the parsed files rebuild (metainfo_build_info) into an info dict that
 * parses back to the same files. */
#include "config.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/sha1.h"
#include "common/sha256.h"
#include "transfer/metainfo.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_paths(const struct metainfo *mi)
{
	if (!metainfo_component_ok((const uint8_t *)mi->name, strlen(mi->name)))
		abort();
	for (size_t k = 0; k < mi->file_count; k++) {
		const char *c = mi->files[k].path;
		for (;;) {
			const char *slash = strchr(c, '/');
			size_t len = slash ? (size_t)(slash - c) : strlen(c);
			if (!metainfo_component_ok((const uint8_t *)c, len))
				abort();
			if (!slash)
				break;
			c = slash + 1;
		}
	}
}

/* v1: offsets never go back, pieces follow from them, the key is the SHA-1
 * padded with zeros; rebuilt (when there are no pad gaps) it parses back to
 * the same files. */
static void check_v1(const struct metainfo *mi)
{
	uint8_t key[METAINFO_HASH_LEN] = { 0 };
	if (sha1_digest(mi->info, mi->info_len, key) || memcmp(key, mi->info_hash, sizeof key) ||
	    !mi->has_v1 || memcmp(key, mi->info_hash_v1, METAINFO_V1_HASH_LEN))
		abort();
	uint64_t end = 0, total = 0;
	bool gaps = false;
	for (size_t k = 0; k < mi->file_count; k++) {
		const struct metainfo_file *f = &mi->files[k];
		if (f->offset < end || f->has_root || f->layer)
			abort();
		gaps |= f->offset != end;
		end = f->offset + f->size;
		total += f->size;
		if (f->size && (f->first_piece != f->offset / mi->piece_length ||
				f->first_piece + f->piece_count - 1 != (end - 1) / mi->piece_length))
			abort();
	}
	if (end > mi->v1_total || total != mi->total_size || mi->file_count == 0 ||
	    mi->total_pieces != (mi->v1_total + mi->piece_length - 1) / mi->piece_length)
		abort();
	/* Rebuild only what the builder would write: no pad gaps, files in
	 * file tree order (a list in another order is valid, just not ours). */
	if (gaps || mi->v1_total != end)
		return;
	for (size_t k = 1; k < mi->file_count; k++)
		if (metainfo_path_cmp(mi->files[k - 1].path, mi->files[k].path) >= 0)
			return;
	struct metainfo_file_in *in = calloc(mi->file_count, sizeof *in);
	if (!in)
		return;
	for (size_t k = 0; k < mi->file_count; k++) {
		in[k].path = mi->files[k].path;
		in[k].size = mi->files[k].size;
		uint64_t first = (mi->files[k].offset + mi->piece_length - 1) / mi->piece_length;
		in[k].v1_pieces = mi->v1_pieces + METAINFO_V1_HASH_LEN * first;
	}
	struct buf b;
	buf_init(&b, 2 * (size_t)METAINFO_MAX_INFO_SIZE);
	int rc = metainfo_build_info(mi->name, mi->piece_length, METAINFO_FORMAT_V1, in,
				     mi->file_count, &b, NULL);
	if (rc == 0) {
		struct metainfo again;
		if (metainfo_parse_info(&again, b.data, b.data + b.len) != 0)
			abort();
		if (again.file_count != mi->file_count || again.total_size != mi->total_size ||
		    again.total_pieces != mi->total_pieces)
			abort();
		metainfo_destroy(&again);
	} else if (rc != -ENOMEM) {
		abort();
	}
	buf_destroy(&b);
	free(in);
}

static void check(const struct metainfo *mi)
{
	check_paths(mi);
	if (!mi->has_v2) {
		check_v1(mi);
		return;
	}
	uint8_t h[METAINFO_HASH_LEN];
	if (sha256_digest(mi->info, mi->info_len, h) || memcmp(h, mi->info_hash, sizeof h))
		abort();
	if (metainfo_check_hash(mi, h) != 0)
		abort();
	uint32_t next = 0;
	uint64_t total = 0;
	for (size_t k = 0; k < mi->file_count; k++) {
		const struct metainfo_file *f = &mi->files[k];
		if (f->first_piece != next || f->has_root != (f->size > 0))
			abort();
		if (f->piece_count != merkle_piece_count(f->size, mi->piece_length))
			abort();
		if (f->piece_count == 1 && f->layer != f->root)
			abort();
		next += f->piece_count;
		total += f->size;
	}
	if (next != mi->total_pieces || total != mi->total_size)
		abort();

	/* Rebuild from the parsed fields and parse again. */
	struct metainfo_file_in *in = calloc(mi->file_count, sizeof *in);
	if (!in)
		return;
	for (size_t k = 0; k < mi->file_count; k++) {
		in[k].path = mi->files[k].path;
		in[k].size = mi->files[k].size;
		memcpy(in[k].root, mi->files[k].root, METAINFO_HASH_LEN);
	}
	struct buf b;
	buf_init(&b, 2 * (size_t)METAINFO_MAX_INFO_SIZE);
	int rc = metainfo_build_info(mi->name, mi->piece_length, METAINFO_FORMAT_V2, in, mi->file_count, &b, NULL);
	if (rc == -ENOMEM)
		goto done;
	if (rc)
		abort();
	struct metainfo again;
	if (metainfo_parse_info(&again, b.data, b.data + b.len) != 0)
		abort();
	if (again.file_count != mi->file_count || again.total_size != mi->total_size)
		abort();
	for (size_t k = 0; k < mi->file_count; k++)
		if (strcmp(again.files[k].path, mi->files[k].path) != 0 ||
		    again.files[k].size != mi->files[k].size)
			abort();
	metainfo_destroy(&again);
done:
	buf_destroy(&b);
	free(in);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct metainfo mi;
	if (metainfo_parse_torrent(&mi, data, data + size) == 0) {
		check(&mi);
		metainfo_destroy(&mi);
	} else if (mi.files || mi.name || mi.info) {
		abort(); /* a failed parse owns nothing */
	}
	if (metainfo_parse_info(&mi, data, data + size) == 0) {
		check(&mi);
		metainfo_destroy(&mi);
	}
	return 0;
}
