/* engine_select.c: what a swarm fetches first - the user's file priorities,
 * sequential mode, and the windows of streaming readers - as piece
 * priorities in its picker (transfer/picker.h). */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "node/engine-parts.h"
#include "node/engine_state.h"
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
	memset(xf->base_prio, sw->wanted ? PICKER_PRIO_SKIP : PICKER_PRIO_NORMAL, n);
	if (sw->wanted || sw->file_prio) {
		if (!sw->wanted)
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

/* Give the picker piece p's priority: DEADLINE inside a window, else its
 * base. */
static int set_piece(struct xfer *xf, uint32_t p)
{
	enum picker_prio prio = (enum picker_prio)xf->base_prio[p];
	for (size_t w = 0; w < ENGINE_STREAM_WINDOWS; w++) {
		const struct stream_window *win = &xf->win[w];
		if (win->owner && p >= win->first && p - win->first < win->count &&
		    prio != PICKER_PRIO_SKIP)
			prio = PICKER_PRIO_DEADLINE;
	}
	return picker_set_priority(xf->picker, p, prio);
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
		refresh(xf, first, count);
		/* Reading on starts inside the old window; anything else is a
		 * jump. */
		return first >= of && first - of <= oc ? 1 : 2;
	}
	*slot = (struct stream_window){ owner, now, first, count };
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
		refresh(xf, old.first, old.count);
	}
}
