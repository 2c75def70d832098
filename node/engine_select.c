/* engine_select.c: what a swarm fetches first - the user's file priorities,
 * sequential mode, and the windows of streaming readers - as piece
 * priorities in its picker (transfer/picker.h). */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/sha256.h"
#include "node/engine-parts.h"
#include "node/engine_state.h"
#include "transfer/merkle.h"
#include "transfer/metainfo.h"
#include "transfer/picker.h"

static enum picker_prio picker_prio_of(enum swarm_prio p)
{
	switch (p) {
	case SWARM_PRIO_SKIP:
		return PICKER_PRIO_SKIP;
	case SWARM_PRIO_LOW:
		return PICKER_PRIO_LOW;
	case SWARM_PRIO_HIGH:
		return PICKER_PRIO_HIGH;
	default:
		return PICKER_PRIO_NORMAL;
	}
}

/* Each piece's priority from its files: the highest of the files holding a
 * byte of it (a v1 piece shared by a skipped and a wanted file is wanted);
 * in sequential mode the first and last piece of each wanted file above
 * them all (players read a container's index at the end). */
static void compute_base(struct xfer *xf)
{
	const struct swarm *sw = xf->sw;
	const struct metainfo *mi = sw->meta;
	uint32_t n = mi->total_pieces;
	/* With nothing skipped every piece is wanted, even one no file holds
	 * (wholly inside a v1 pad): swarm_done counts them all then. */
	if (!sw->file_prio) {
		memset(xf->base_prio, PICKER_PRIO_NORMAL, n);
	} else {
		memset(xf->base_prio, PICKER_PRIO_SKIP, n);
		for (size_t f = 0; f < mi->file_count; f++) {
			const struct metainfo_file *mf = &mi->files[f];
			uint8_t pp = (uint8_t)picker_prio_of(swarm_file_prio(sw, f));
			for (uint32_t i = 0; i < mf->piece_count; i++)
				if (xf->base_prio[mf->first_piece + i] < pp)
					xf->base_prio[mf->first_piece + i] = pp;
		}
		for (uint32_t p = 0; !sw->wanted && p < n; p++)
			if (xf->base_prio[p] == PICKER_PRIO_SKIP)
				xf->base_prio[p] = PICKER_PRIO_NORMAL; /* a pad's */
	}
	for (size_t f = 0; sw->sequential && f < mi->file_count; f++) {
		const struct metainfo_file *mf = &mi->files[f];
		if (mf->piece_count == 0 || swarm_file_prio(sw, f) == SWARM_PRIO_SKIP)
			continue;
		xf->base_prio[mf->first_piece] = PICKER_PRIO_FIRST;
		xf->base_prio[mf->first_piece + mf->piece_count - 1] = PICKER_PRIO_FIRST;
	}
}

/* Give the picker piece p's priority: NOW inside the newest window (the
 * reader that started or seeked last: usually the one a person waits on),
 * DEADLINE inside another, else its base. */
static int set_piece(struct xfer *xf, uint32_t p)
{
	enum picker_prio prio = (enum picker_prio)xf->base_prio[p];
	for (size_t w = 0; w < ENGINE_STREAM_WINDOWS && prio != PICKER_PRIO_SKIP; w++) {
		const struct stream_window *win = &xf->win[w];
		if (!win->owner || p < win->first || p - win->first >= win->count)
			continue;
		if (win->owner == xf->win_newest)
			prio = PICKER_PRIO_NOW;
		else if (prio != PICKER_PRIO_NOW)
			prio = PICKER_PRIO_DEADLINE;
	}
	return picker_set_priority(xf->picker, p, prio);
}

static void refresh(struct xfer *xf, uint32_t first, uint32_t count);

/* `owner`'s window becomes the newest; the one that was goes back to
 * DEADLINE. */
static void make_newest(struct xfer *xf, uint64_t owner)
{
	uint64_t old = xf->win_newest;
	xf->win_newest = owner;
	for (size_t w = 0; old && old != owner && w < ENGINE_STREAM_WINDOWS; w++)
		if (xf->win[w].owner == old)
			refresh(xf, xf->win[w].first, xf->win[w].count);
}

int select_apply(struct xfer *xf)
{
	const struct metainfo *mi = xf->sw->meta;
	if (!xf->picker || !mi)
		return 0;
	if (!xf->base_prio && !(xf->base_prio = malloc(mi->total_pieces ? mi->total_pieces : 1)))
		return -ENOMEM;
	compute_base(xf);
	for (uint32_t p = 0; p < mi->total_pieces; p++) {
		int rc = set_piece(xf, p);
		if (rc)
			return rc;
	}
	picker_set_sequential(xf->picker, xf->sw->sequential);
	return 0;
}

/* Pieces [first, first + count) back to what they would be now. */
static void refresh(struct xfer *xf, uint32_t first, uint32_t count)
{
	if (!xf->picker || !xf->base_prio)
		return;
	for (uint32_t p = first; p - first < count && p < xf->sw->meta->total_pieces; p++)
		if (set_piece(xf, p) != 0)
			return;
}

int select_window(struct xfer *xf, uint64_t owner, uint32_t first, uint32_t count)
{
	struct stream_window *slot = NULL, *free_slot = NULL, *oldest = NULL;
	for (size_t w = 0; w < ENGINE_STREAM_WINDOWS; w++) {
		struct stream_window *win = &xf->win[w];
		if (win->owner == owner)
			slot = win;
		else if (!win->owner && !free_slot)
			free_slot = win;
		else if (win->owner && (!oldest || win->used < oldest->used))
			oldest = win;
	}
	uint64_t now = ++xf->win_clock;
	if (!slot && !free_slot) {
		/* Every slot taken: the window set or moved longest ago gives
		 * way (its reader is served as pieces come, and takes a window
		 * back when it next moves), so the newest reader - a player
		 * that just seeked - is never the one left without. */
		struct stream_window old = *oldest;
		oldest->owner = 0;
		if (xf->win_newest == old.owner)
			xf->win_newest = 0;
		refresh(xf, old.first, old.count);
		free_slot = oldest;
	}
	if (!slot) {
		slot = free_slot;
	} else if (slot->first == first && slot->count == count) {
		slot->used = now;
		return 0; /* unchanged */
	} else {
		/* Moved (a seek, or reading on): the old pieces go back. */
		uint32_t of = slot->first, oc = slot->count;
		slot->owner = 0;
		refresh(xf, of, oc);
		*slot = (struct stream_window){ owner, now, first, count };
		/* Reading on starts inside the old window; anything else is a
		 * jump, and the jumper's window becomes the newest. */
		bool on = first >= of && first - of <= oc;
		if (!on)
			make_newest(xf, owner);
		refresh(xf, first, count);
		return on ? 1 : 2;
	}
	*slot = (struct stream_window){ owner, now, first, count };
	make_newest(xf, owner);
	refresh(xf, first, count);
	return 2;
}

void select_window_drop(struct xfer *xf, uint64_t owner)
{
	for (size_t w = 0; w < ENGINE_STREAM_WINDOWS; w++) {
		if (xf->win[w].owner != owner)
			continue;
		struct stream_window old = xf->win[w];
		xf->win[w].owner = 0;
		if (xf->win_newest == owner)
			xf->win_newest = 0;
		refresh(xf, old.first, old.count);
	}
}

/* ------------------------------------------------------- block proofs
 *
 * A reader waits for verified bytes.  A piece is verified whole, from its
 * blocks' hashes, once every block is in: with 16 MiB pieces at 2 MiB/s
 * that is 8 s before the reader's first byte.  BitTorrent v2 lets one do
 * better: a peer that has the piece sends its blocks' hashes (a BEP 52
 * hash request of the base layer, the one under the piece), which we check
 * against the piece's hash in the piece layer (already verified against
 * the file's root); then each block written whose own SHA-256 (hashed by
 * the write job) matches is verified on its own and may be read.  Only
 * for window pieces, of v2 files with a layer, wider than one block. */

static bool proof_shape(const struct xfer *xf, uint32_t piece, const struct metainfo_file **f_out,
			uint32_t *local_out, uint64_t *width_out, uint32_t *nblocks_out)
{
	const struct metainfo *mi = xf->sw->meta;
	if (!mi || !mi->has_v2)
		return false;
	uint32_t local;
	const struct metainfo_file *f = metainfo_v2_piece_file(mi, piece, &local);
	if (!f || !f->layer)
		return false;
	uint64_t width = merkle_piece_leaves(f->size, mi->piece_length);
	if (width < 2 || width > ENGINE_HASH_REQ_MAX)
		return false;
	uint64_t size = merkle_piece_size(f->size, mi->piece_length, local);
	*f_out = f;
	*local_out = local;
	*width_out = width;
	*nblocks_out = (uint32_t)((size + XFER_BLOCK_SIZE - 1) / XFER_BLOCK_SIZE);
	return true;
}

static struct block_proof *proof_find(const struct xfer *xf, uint32_t piece)
{
	for (size_t i = 0; xf->proofs && i < ENGINE_BLOCK_PROOFS; i++)
		if (xf->proofs[i].used && xf->proofs[i].piece == piece)
			return &xf->proofs[i];
	return NULL;
}

static void proof_clear(struct block_proof *bp)
{
	free(bp->leaves);
	free(bp->ok);
	memset(bp, 0, sizeof *bp);
}

int proof_want(struct xfer *xf, uint32_t piece, uint32_t peer, struct wire_hash_req *req,
	       uint64_t now)
{
	const struct metainfo_file *f;
	uint32_t local, nblocks;
	uint64_t width;
	if (!xf->picker || picker_priority(xf->picker, piece) < PICKER_PRIO_DEADLINE ||
	    bitfield_test(picker_have(xf->picker), piece) ||
	    !proof_shape(xf, piece, &f, &local, &width, &nblocks))
		return 0;
	struct block_proof *bp = proof_find(xf, piece);
	if (bp && (bp->have || (bp->asked_ms && now - bp->asked_ms < ENGINE_PROOF_RETRY_MS)))
		return 0;
	if (!bp) {
		if (!xf->proofs && !(xf->proofs = calloc(ENGINE_BLOCK_PROOFS, sizeof *xf->proofs)))
			return 0;
		for (size_t i = 0; i < ENGINE_BLOCK_PROOFS && !bp; i++)
			if (!xf->proofs[i].used)
				bp = &xf->proofs[i];
		/* Every slot used: the one used longest ago goes. */
		if (!bp) {
			size_t oldest = 0;
			for (size_t i = 1; i < ENGINE_BLOCK_PROOFS; i++)
				if (xf->proofs[i].clock < xf->proofs[oldest].clock)
					oldest = i;
			bp = &xf->proofs[oldest];
			proof_clear(bp);
		}
		bp->used = true;
		bp->piece = piece;
		bp->nblocks = nblocks;
	}
	bp->asked_peer = peer;
	bp->asked_ms = now;
	bp->clock = ++xf->proof_clock;
	memset(req, 0, sizeof *req);
	memcpy(req->pieces_root, f->root, 32);
	req->base_layer = 0;
	req->index = (uint32_t)(local * width);
	req->length = (uint32_t)width;
	req->proof_layers = 0;
	return 1;
}

int proof_hashes(struct xfer *xf, uint32_t peer, const struct wire_hash_req *r,
		 const uint8_t *hashes, size_t n)
{
	const struct metainfo *mi = xf->sw->meta;
	const struct metainfo_file *f = metainfo_file_by_root(mi, r->pieces_root, NULL);
	if (!f || r->base_layer != 0 || r->length < 2 || f->piece_count == 0)
		return -ENOENT;
	uint64_t width = merkle_piece_leaves(f->size, mi->piece_length);
	if (width != r->length || r->index % width != 0 || r->index / width >= f->piece_count)
		return -ENOENT;
	uint32_t local = (uint32_t)(r->index / width);
	struct block_proof *bp = proof_find(xf, f->first_piece + local);
	if (!bp || bp->have || bp->asked_peer != peer || n != width || !f->layer)
		return -ENOENT; /* not what we asked of this peer */
	uint8_t *tree = malloc(width * 32);
	struct sha256_ctx *ctx = sha256_new();
	int rc = !tree || !ctx ? -ENOMEM : 0;
	if (rc == 0) {
		memcpy(tree, hashes, width * 32);
		merkle_reduce(ctx, tree, width);
		rc = memcmp(tree, f->layer + 32 * (size_t)local, 32) == 0 ? 0 : -EBADMSG;
	}
	sha256_free(ctx);
	free(tree);
	if (rc == 0) {
		bp->leaves = malloc((size_t)bp->nblocks * 32);
		bp->ok = calloc((bp->nblocks + 7) / 8, 1);
		if (!bp->leaves || !bp->ok) {
			proof_clear(bp);
			return -ENOMEM;
		}
		memcpy(bp->leaves, hashes, (size_t)bp->nblocks * 32);
		bp->have = true;
		/* Blocks already on disk, their hashes kept by the write jobs. */
		const uint8_t *got = xf->leaves ? xf->leaves[bp->piece] : NULL;
		for (uint32_t b = 0; got && b < bp->nblocks; b++)
			if (picker_block_state(xf->picker, bp->piece, b) == PICKER_BLOCK_FINISHED &&
			    memcmp(got + 32 * (size_t)b, bp->leaves + 32 * (size_t)b, 32) == 0)
				bp->ok[b / 8] |= (uint8_t)(1u << (b % 8));
	} else if (rc == -EBADMSG) {
		bp->asked_ms = 0; /* ask someone else */
	}
	return rc;
}

void proof_rejected(struct xfer *xf, uint32_t peer, const struct wire_hash_req *r)
{
	for (size_t i = 0; xf->proofs && i < ENGINE_BLOCK_PROOFS; i++) {
		struct block_proof *bp = &xf->proofs[i];
		if (bp->used && !bp->have && bp->asked_peer == peer && r->base_layer == 0)
			bp->asked_ms = 0;
	}
}

void proof_block_written(struct xfer *xf, uint32_t piece, uint32_t block, const uint8_t leaf[32])
{
	struct block_proof *bp = proof_find(xf, piece);
	if (!bp || !bp->have || block >= bp->nblocks)
		return;
	if (memcmp(leaf, bp->leaves + 32 * (size_t)block, 32) == 0)
		bp->ok[block / 8] |= (uint8_t)(1u << (block % 8));
	else
		bp->ok[block / 8] &= (uint8_t) ~(1u << (block % 8));
}

void proof_piece_reset(struct xfer *xf, uint32_t piece)
{
	struct block_proof *bp = proof_find(xf, piece);
	if (bp && bp->ok)
		memset(bp->ok, 0, (bp->nblocks + 7) / 8);
}

void proof_piece_done(struct xfer *xf, uint32_t piece)
{
	struct block_proof *bp = proof_find(xf, piece);
	if (bp)
		proof_clear(bp);
}

void proof_reset_all(struct xfer *xf)
{
	for (size_t i = 0; xf->proofs && i < ENGINE_BLOCK_PROOFS; i++)
		proof_clear(&xf->proofs[i]);
	free(xf->proofs);
	xf->proofs = NULL;
}

bool proof_block_ok(const struct xfer *xf, uint32_t piece, uint32_t block)
{
	const struct block_proof *bp = proof_find(xf, piece);
	return bp && bp->have && block < bp->nblocks && (bp->ok[block / 8] >> (block % 8)) & 1u;
}
