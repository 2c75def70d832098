/* mdfetch.c: BEP 9 metadata fetching: candidate sizes, per-piece asked peer and sender. */
#include "config.h"

#include "transfer/mdfetch.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

enum { PIECE_NONE = 0, PIECE_ASKED, PIECE_HAVE };

struct candidate {
	uint32_t size;     /* 0: free entry */
	uint32_t announcers;
	uint32_t setbacks; /* failed hash checks + stalled rounds */
	uint64_t order;    /* when first heard: earlier wins ties */
};

struct mdfetch {
	struct candidate cand[MDFETCH_MAX_SIZES];
	uint64_t next_order;
	int active;          /* index in cand, or -1 */
	uint32_t npieces;    /* of the active size */
	uint32_t nhave;
	bool progress;       /* a piece arrived since the last round */
	uint8_t state[MDFETCH_MAX_PIECES];
	uint32_t peer[MDFETCH_MAX_PIECES]; /* asked (ASKED) or sender (HAVE) */
	uint8_t *buf;        /* active size bytes, allocated at the first piece */
};

static uint32_t pieces_of(uint32_t size)
{
	return (size + WIRE_METADATA_PIECE - 1) / WIRE_METADATA_PIECE;
}

static uint32_t piece_len(uint32_t size, uint32_t piece)
{
	uint32_t start = piece * WIRE_METADATA_PIECE;
	return size - start < WIRE_METADATA_PIECE ? size - start : WIRE_METADATA_PIECE;
}

int mdfetch_new(struct mdfetch **out)
{
	struct mdfetch *mf = calloc(1, sizeof *mf);
	*out = mf;
	if (!mf)
		return -ENOMEM;
	mf->active = -1;
	return 0;
}

void mdfetch_free(struct mdfetch *mf)
{
	if (!mf)
		return;
	free(mf->buf);
	free(mf);
}

static int find(const struct mdfetch *mf, uint32_t size)
{
	for (unsigned i = 0; i < MDFETCH_MAX_SIZES; i++)
		if (mf->cand[i].size == size)
			return (int)i;
	return -1;
}

static bool better(const struct candidate *a, const struct candidate *b)
{
	if (a->setbacks != b->setbacks)
		return a->setbacks < b->setbacks;
	if (a->announcers != b->announcers)
		return a->announcers > b->announcers;
	return a->order < b->order;
}

/* Make `idx` (or -1) the size being fetched; every piece starts afresh
 * when it changes.  Returns true if it changed. */
static bool activate(struct mdfetch *mf, int idx)
{
	if (idx == mf->active)
		return false;
	mf->active = idx;
	free(mf->buf);
	mf->buf = NULL;
	mf->nhave = 0;
	mf->progress = false;
	memset(mf->state, PIECE_NONE, sizeof mf->state);
	memset(mf->peer, 0, sizeof mf->peer);
	mf->npieces = idx >= 0 ? pieces_of(mf->cand[idx].size) : 0;
	return true;
}

/* Choose the best candidate someone still announces. */
static bool choose(struct mdfetch *mf)
{
	int best = -1;
	for (unsigned i = 0; i < MDFETCH_MAX_SIZES; i++) {
		const struct candidate *c = &mf->cand[i];
		if (c->size == 0 || c->announcers == 0)
			continue;
		if (best < 0 || better(c, &mf->cand[best]))
			best = (int)i;
	}
	return activate(mf, best);
}

int mdfetch_announce(struct mdfetch *mf, uint32_t size)
{
	if (size == 0 || size > WIRE_METADATA_MAX)
		return -EMSGSIZE;
	int i = find(mf, size);
	if (i < 0) {
		/* A free entry, or one nobody announces any more (never the
		 * active one: it has an announcer or was just replaced). */
		for (unsigned k = 0; k < MDFETCH_MAX_SIZES && i < 0; k++)
			if (mf->cand[k].size == 0 ||
			    (mf->cand[k].announcers == 0 && (int)k != mf->active))
				i = (int)k;
		if (i < 0)
			return -ENOSPC;
		mf->cand[i] = (struct candidate){ .size = size, .order = mf->next_order++ };
	}
	mf->cand[i].announcers++;
	if (mf->active < 0)
		(void)choose(mf);
	return 0;
}

bool mdfetch_peer_gone(struct mdfetch *mf, uint32_t peer, uint32_t size)
{
	int i = find(mf, size);
	if (i >= 0 && mf->cand[i].announcers > 0)
		mf->cand[i].announcers--;
	if (i >= 0 && i == mf->active) {
		for (uint32_t k = 0; k < mf->npieces; k++)
			if (mf->state[k] == PIECE_ASKED && mf->peer[k] == peer)
				mf->state[k] = PIECE_NONE;
		if (mf->cand[i].announcers == 0)
			return choose(mf);
	}
	return false;
}

uint32_t mdfetch_size(const struct mdfetch *mf)
{
	return mf->active >= 0 ? mf->cand[mf->active].size : 0;
}

size_t mdfetch_pick(struct mdfetch *mf, uint32_t peer, uint32_t size, uint32_t *pieces_out,
		    size_t cap)
{
	size_t n = 0;
	if (mf->active < 0 || size != mf->cand[mf->active].size)
		return 0;
	for (uint32_t k = 0; k < mf->npieces && n < cap; k++) {
		if (mf->state[k] != PIECE_NONE)
			continue;
		mf->state[k] = PIECE_ASKED;
		mf->peer[k] = peer;
		pieces_out[n++] = k;
	}
	return n;
}

int mdfetch_reject(struct mdfetch *mf, uint32_t peer, uint32_t piece)
{
	if (piece >= mf->npieces || mf->state[piece] != PIECE_ASKED || mf->peer[piece] != peer)
		return -ENOENT;
	mf->state[piece] = PIECE_NONE;
	return 0;
}

int mdfetch_data(struct mdfetch *mf, uint32_t peer, uint32_t piece, uint32_t total_size,
		 const uint8_t *data, size_t len)
{
	if (piece >= mf->npieces || mf->state[piece] != PIECE_ASKED || mf->peer[piece] != peer)
		return -EPERM;
	uint32_t size = mf->cand[mf->active].size;
	if (total_size != size || len != piece_len(size, piece))
		return -EINVAL;
	if (!mf->buf) {
		mf->buf = malloc(size);
		if (!mf->buf)
			return -ENOMEM;
	}
	memcpy(mf->buf + (size_t)piece * WIRE_METADATA_PIECE, data, len);
	mf->state[piece] = PIECE_HAVE;
	mf->nhave++;
	mf->progress = true;
	return mf->nhave == mf->npieces ? 1 : 0;
}

const uint8_t *mdfetch_buffer(const struct mdfetch *mf, size_t *len_out)
{
	if (mf->active < 0 || mf->nhave != mf->npieces || !mf->buf) {
		*len_out = 0;
		return NULL;
	}
	*len_out = mf->cand[mf->active].size;
	return mf->buf;
}

int mdfetch_failed(struct mdfetch *mf, uint32_t *blame_out, size_t blame_cap)
{
	if (mf->active < 0 || mf->nhave != mf->npieces)
		return -EINVAL;
	/* Distinct senders, first-piece order. */
	int n = 0;
	for (uint32_t k = 0; k < mf->npieces; k++) {
		bool seen = false;
		for (uint32_t e = 0; e < k && !seen; e++)
			seen = mf->peer[e] == mf->peer[k];
		if (seen)
			continue;
		if ((size_t)n < blame_cap)
			blame_out[n] = mf->peer[k];
		n++;
	}
	mf->cand[mf->active].setbacks++;
	/* Start afresh even if the same size is still the best choice. */
	(void)activate(mf, -1);
	(void)choose(mf);
	return n;
}

bool mdfetch_round(struct mdfetch *mf)
{
	if (mf->active < 0)
		return choose(mf);
	for (uint32_t k = 0; k < mf->npieces; k++)
		if (mf->state[k] == PIECE_ASKED)
			mf->state[k] = PIECE_NONE;
	if (mf->progress) {
		mf->progress = false;
		return false;
	}
	mf->cand[mf->active].setbacks++;
	return choose(mf);
}

#define BROKEN(msg)                      \
	do {                             \
		if (what_out)            \
			*what_out = msg; \
		return -EFAULT;          \
	} while (0)

int mdfetch_check_invariants(const struct mdfetch *mf, const char **what_out)
{
	for (unsigned i = 0; i < MDFETCH_MAX_SIZES; i++) {
		const struct candidate *c = &mf->cand[i];
		if (c->size > WIRE_METADATA_MAX)
			BROKEN("candidate size above the ceiling");
		for (unsigned j = i + 1; c->size && j < MDFETCH_MAX_SIZES; j++)
			if (mf->cand[j].size == c->size)
				BROKEN("size listed twice");
	}
	if (mf->active >= (int)MDFETCH_MAX_SIZES || (mf->active >= 0 && mf->cand[mf->active].size == 0))
		BROKEN("active size is not a candidate");
	if (mf->npieces != (mf->active >= 0 ? pieces_of(mf->cand[mf->active].size) : 0))
		BROKEN("piece count does not match the active size");
	uint32_t have = 0;
	for (uint32_t k = 0; k < MDFETCH_MAX_PIECES; k++) {
		if (k >= mf->npieces && mf->state[k] != PIECE_NONE)
			BROKEN("piece state beyond the active size");
		have += mf->state[k] == PIECE_HAVE;
	}
	if (have != mf->nhave)
		BROKEN("have count wrong");
	if (have > 0 && !mf->buf)
		BROKEN("pieces held without a buffer");
	return 0;
}
