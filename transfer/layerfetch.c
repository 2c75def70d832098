/* layerfetch.c: BEP 52 piece layers, one asking peer per file, answers only. */
#include "config.h"

#include "transfer/layerfetch.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/bytes.h"

#define NO_PEER UINT32_MAX /* peer ids are the caller's; this one means "nobody" */

struct lf_file {
	uint32_t pieces;  /* 0: no layer wanted (or done) */
	uint32_t chunk;   /* hashes per request */
	uint32_t nchunks;
	uint32_t ngot;
	uint32_t asked;   /* the one peer this file's chunks are asked of, or NO_PEER */
	bool asked_valid;
	uint8_t *got;     /* per chunk: 0 not asked, 1 outstanding from `asked`, 2 received */
	uint8_t *layer;   /* pieces * 32, at the first chunk */
};

struct layerfetch {
	size_t nfiles;
	struct lf_file *files;
};

int layerfetch_new(const uint32_t *piece_count, size_t nfiles, uint32_t chunk_max,
		   struct layerfetch **out)
{
	*out = NULL;
	if (nfiles > LAYERFETCH_MAX_FILES || chunk_max == 0 || (chunk_max & (chunk_max - 1)) ||
	    (nfiles && !piece_count))
		return -EINVAL;
	for (size_t f = 0; f < nfiles; f++)
		if (piece_count[f] > LAYERFETCH_MAX_PIECES)
			return -EINVAL;
	struct layerfetch *lf = calloc(1, sizeof *lf);
	if (!lf)
		return -ENOMEM;
	lf->nfiles = nfiles;
	lf->files = calloc(nfiles ? nfiles : 1, sizeof *lf->files);
	if (!lf->files) {
		free(lf);
		return -ENOMEM;
	}
	for (size_t f = 0; f < nfiles; f++) {
		struct lf_file *fl = &lf->files[f];
		fl->asked = NO_PEER;
		if (piece_count[f] < 2)
			continue;
		uint32_t width = (uint32_t)pow2_ceil(piece_count[f]);
		fl->pieces = piece_count[f];
		fl->chunk = width < chunk_max ? width : chunk_max;
		fl->nchunks = (fl->pieces + fl->chunk - 1) / fl->chunk;
		fl->got = calloc(fl->nchunks, 1);
		if (!fl->got) {
			layerfetch_free(lf);
			return -ENOMEM;
		}
	}
	*out = lf;
	return 0;
}

void layerfetch_free(struct layerfetch *lf)
{
	if (!lf)
		return;
	for (size_t f = 0; f < lf->nfiles; f++) {
		free(lf->files[f].got);
		free(lf->files[f].layer);
	}
	free(lf->files);
	free(lf);
}

uint32_t layerfetch_chunk(const struct layerfetch *lf, uint32_t file)
{
	return file < lf->nfiles ? lf->files[file].chunk : 0;
}

/* Forget everything received or asked for a file still wanted. */
static void file_reset(struct lf_file *fl)
{
	memset(fl->got, 0, fl->nchunks);
	fl->ngot = 0;
	fl->asked = NO_PEER;
	fl->asked_valid = false;
}

size_t layerfetch_ask(struct layerfetch *lf, uint32_t peer, struct layerfetch_req *out, size_t cap)
{
	size_t n = 0;
	for (size_t f = 0; f < lf->nfiles; f++) {
		struct lf_file *fl = &lf->files[f];
		if (fl->pieces == 0 || (fl->asked_valid && fl->ngot == fl->nchunks))
			continue; /* not wanted, or whole and waiting for its verdict */
		if (n + fl->nchunks > cap) {
			n += fl->nchunks; /* reported, not recorded */
			continue;
		}
		file_reset(fl);
		fl->asked = peer;
		fl->asked_valid = true;
		for (uint32_t c = 0; c < fl->nchunks; c++) {
			fl->got[c] = 1;
			out[n++] = (struct layerfetch_req){ (uint32_t)f, c * fl->chunk, fl->chunk };
		}
	}
	return n;
}

int layerfetch_on_hashes(struct layerfetch *lf, uint32_t peer, uint32_t file, uint32_t index,
			 uint32_t length, const uint8_t *hashes, size_t count)
{
	if (file >= lf->nfiles || lf->files[file].pieces == 0)
		return -EPERM;
	struct lf_file *fl = &lf->files[file];
	if (length != fl->chunk || index % fl->chunk != 0 || index >= fl->pieces || count < length)
		return -EINVAL;
	uint32_t c = index / fl->chunk;
	if (!fl->asked_valid || fl->asked != peer || fl->got[c] != 1)
		return -EPERM;
	if (!fl->layer) {
		fl->layer = malloc((size_t)fl->pieces * 32);
		if (!fl->layer)
			return -ENOMEM;
	}
	uint32_t n = fl->pieces - index < fl->chunk ? fl->pieces - index : fl->chunk;
	memcpy(fl->layer + (size_t)index * 32, hashes, (size_t)n * 32);
	fl->got[c] = 2;
	fl->ngot++;
	return fl->ngot == fl->nchunks ? 1 : 0;
}

int layerfetch_reject(struct layerfetch *lf, uint32_t peer, uint32_t file, uint32_t index)
{
	if (file >= lf->nfiles || lf->files[file].pieces == 0)
		return -ENOENT;
	struct lf_file *fl = &lf->files[file];
	if (index % fl->chunk != 0 || index >= fl->pieces || !fl->asked_valid || fl->asked != peer ||
	    fl->got[index / fl->chunk] != 1)
		return -ENOENT;
	fl->got[index / fl->chunk] = 0;
	return 0;
}

void layerfetch_peer_gone(struct layerfetch *lf, uint32_t peer)
{
	for (size_t f = 0; f < lf->nfiles; f++) {
		struct lf_file *fl = &lf->files[f];
		if (fl->pieces == 0 || !fl->asked_valid || fl->asked != peer)
			continue;
		for (uint32_t c = 0; c < fl->nchunks; c++)
			if (fl->got[c] == 1)
				fl->got[c] = 0;
	}
}

const uint8_t *layerfetch_layer(const struct layerfetch *lf, uint32_t file, size_t *len_out)
{
	*len_out = 0;
	if (file >= lf->nfiles)
		return NULL;
	const struct lf_file *fl = &lf->files[file];
	if (fl->pieces == 0 || fl->ngot != fl->nchunks || !fl->layer)
		return NULL;
	*len_out = (size_t)fl->pieces * 32;
	return fl->layer;
}

int layerfetch_done(struct layerfetch *lf, uint32_t file)
{
	size_t len;
	if (!layerfetch_layer(lf, file, &len))
		return -EINVAL;
	struct lf_file *fl = &lf->files[file];
	free(fl->layer);
	fl->layer = NULL;
	fl->pieces = 0;
	return 0;
}

int layerfetch_failed(struct layerfetch *lf, uint32_t file, uint32_t *sender_out)
{
	size_t len;
	if (!layerfetch_layer(lf, file, &len))
		return -EINVAL;
	struct lf_file *fl = &lf->files[file];
	*sender_out = fl->asked;
	file_reset(fl);
	return 0;
}

bool layerfetch_complete(const struct layerfetch *lf)
{
	for (size_t f = 0; f < lf->nfiles; f++)
		if (lf->files[f].pieces != 0)
			return false;
	return true;
}
