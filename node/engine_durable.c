/* engine_durable.c: the durability gate: pieces are recorded only once node/diskio.h says their data is fdatasync'ed;
 * and stopping, failing and freeing a swarm's transfer state. */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <limits.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <sodium.h>
#include "common/addr.h"
#include "common/bytes.h"
#include "common/buf.h"
#include "common/log.h"
#include "common/sha256.h"
#include "common/util.h"
#include "node/diskio.h"
#include "node/engine_state.h"
#include "node/joincheck.h"
#include "node/node.h"
#include "node/ratelimit.h"
#include "transfer/ratesplit.h"
#include "node/swarm.h"
#include "node/workers.h"
#include "transfer/merkle.h"
#include "transfer/metainfo.h"
#include "transfer/layerfetch.h"
#include "transfer/mdfetch.h"
#include "transfer/picker.h"
#include "transfer/storage.h"
#include "transfer/transfer.h"
#include "node/engine-parts.h"

static size_t bitmap_bytes(const struct swarm *sw);
static uint8_t *durable_bitmap(const struct xfer *xf);
static int on_durable(struct xfer *xf);

/* ---------------------------------------------------------- durability
 *
 * The disk layer (node/diskio.h, "Durability") knows which verified pieces
 * are not yet durable; this file owns what is recorded.  A verified piece
 * goes: note_unsynced -> diskio_note_verified -> a sync job (flush_have)
 * -> durable_synced (pieces whose file was fdatasync'd are durable) or
 * durable_lost (their file's sync failed: un-verified, fetched again) ->
 * on_durable records sw->have without every piece the disk layer still
 * holds pending.  The threading contract is in node/diskio.h. */

static size_t bitmap_bytes(const struct swarm *sw)
{
	return (sw->meta->total_pieces + 7) / 8;
}

/* The verified bitmap as it may be recorded: without pieces whose data is
 * not yet durable.  Returns a new buffer or NULL. */
static uint8_t *durable_bitmap(const struct xfer *xf)
{
	const struct swarm *sw = xf->sw;
	size_t n = bitmap_bytes(sw);
	uint8_t *bm = malloc(n ? n : 1);
	if (!bm)
		return NULL;
	memcpy(bm, sw->have, n);
	if (xf->dio)
		diskio_mask_pending(xf->dio, bm, n);
	return bm;
}

/* The durability gate: the only code that writes a swarm's recorded
 * have-bitmap (swarm_db_save_have, and the bitmap row of swarm_db_insert
 * and swarm_db_store_meta through engine_swarm_durable_have), always
 * without the pieces not yet durable.  What a swarm starts with counts as
 * durable: all of a share (the user's files), and of a join the pieces of
 * files it adopted, which join_check_hash fdatasync'd first. */
static int on_durable(struct xfer *xf)
{
	if (!xf->sw->meta || !xf->sw->have)
		return 0;
	uint8_t *bm = durable_bitmap(xf);
	int rc = bm ? swarm_db_save_have(xf->node, xf->sw, bm) : -ENOMEM;
	free(bm);
	if (rc) {
		log_error("swarm %" PRId64 ": cannot save verified pieces", xf->sw->id);
		return rc;
	}
	xf->dirty = false;
	return 0;
}

uint8_t *engine_swarm_durable_have(const struct swarm *sw)
{
	if (sw->xfer && sw->xfer->dio)
		return durable_bitmap(sw->xfer);
	size_t n = sw->meta ? bitmap_bytes(sw) : 0;
	uint8_t *bm = malloc(n ? n : 1);
	if (bm && n)
		memcpy(bm, sw->have, n);
	return bm;
}

int engine_swarm_save_have(struct node *node, struct swarm *sw)
{
	if (sw->xfer && sw->xfer->dio)
		return on_durable(sw->xfer);
	/* No engine state: nothing is waiting for a sync, so the bitmap in
	 * memory is what the disk holds (loaded from the database, or found by
	 * a check that synced the files first). */
	return swarm_db_save_have(node, sw, sw->have);
}

/* The disk layer lost pieces to a failed sync (diskio_ops.lost): their data
 * not yet recorded may be gone from the disk whatever a later sync says.
 * Every one of them is un-verified, and the picker rebuilt so they and
 * every piece in progress there are downloaded again.  The picker is
 * rebuilt even when no verified piece was dropped: a piece whose block was
 * written before the failure may still be in its write or verify job, and
 * only a rebuild makes the loop ignore that job's verdict (the file's next
 * sync would find nothing dirty and "make durable" data that is gone).
 * Returns the number of pieces dropped. */
size_t durable_lost(void *ctx, const uint8_t *lost)
{
	struct xfer *xf = ctx;
	struct swarm *sw = xf->sw;
	size_t dropped = 0;
	for (uint32_t p = 0; sw->meta && p < sw->meta->total_pieces; p++) {
		if (bit_get(lost, p) && swarm_have_test(sw, p)) {
			swarm_have_clear(sw, p);
			dropped++;
		}
	}
	if (!xf->picker)
		return dropped;
	if (!xf->stopped) {
		/* Peers were told we have them: reconnect (as after a check),
		 * through engine.c's engine_swarm_have_changed. */
		xf->eng->have_changed(xf->eng, sw);
	} else {
		if (rebuild_picker(xf) != 0)
			log_error("swarm %" PRId64 ": cannot rebuild its piece picker", sw->id);
		if (sw->role == SWARM_ROLE_JOIN && sw->state == SWARM_SEEDING)
			swarm_set_state(xf->node, sw, SWARM_DOWNLOADING);
	}
	return dropped;
}

/* A sync job came back (diskio_ops.durable): keep the synced files' mtimes
 * (the check at the next start skips files that match) and record. */
void durable_synced(void *ctx, const int64_t *mtimes_ns, size_t nfiles)
{
	struct xfer *xf = ctx;
	struct swarm *sw = xf->sw;
	for (size_t f = 0; sw->mtimes_ns && sw->meta && f < nfiles && f < sw->meta->file_count; f++)
		if (mtimes_ns[f] >= 0)
			sw->mtimes_ns[f] = mtimes_ns[f];
	on_durable(xf);
}

/* Record progress: fdatasync the pieces verified since the last flush on a
 * worker, then save the bitmap.  One flush at a time per swarm. */
void flush_have(struct xfer *xf)
{
	if ((!xf->dio || diskio_flush(xf->dio)) && xf->dirty)
		on_durable(xf);
}

/* At shutdown: make every verified piece durable now, on this thread, and
 * record it, so a clean stop never costs a re-download.  A file whose sync
 * fails loses all its pending pieces (durable_lost un-verifies them: they
 * are fetched again at the next start); see diskio_flush_now. */
void flush_have_now(struct xfer *xf)
{
	if (!xf->dio || !xf->sw->meta)
		return;
	struct swarm *sw = xf->sw;
	int rc = diskio_flush_now(xf->dio);
	if (rc == -ENOMEM)
		return; /* nothing recorded beyond what is durable */
	/* Every file is synced (or its pieces are dropped): its mtime now
	 * marks the state the recorded pieces describe, so the check at the
	 * next start skips it. */
	char root[PATH_MAX], path[PATH_MAX + 1024];
	swarm_content_root(sw, root, sizeof root);
	for (size_t f = 0; rc == 0 && sw->mtimes_ns && f < sw->meta->file_count; f++) {
		struct stat st;
		snprintf(path, sizeof path, "%s/%s", root, sw->meta->files[f].path);
		if (lstat(path, &st) == 0)
			sw->mtimes_ns[f] = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
	}
	on_durable(xf);
}

/* A piece passed its hash: remember to make it durable before recording.
 * Never allocates: the disk layer's bitmaps are sized with it. */
void note_unsynced(struct xfer *xf, uint32_t piece)
{
	diskio_note_verified(xf->dio, piece);
}

void engine_swarm_stop(struct engine *eng, struct swarm *sw)
{
	struct xfer *xf = sw->xfer;
	if (!eng || !xf || xf->stopped)
		return;
	xf->stopped = true;
	close_list(xf->peers, "swarm stopped");
	flush_have(xf);
	flush_peer_rows(xf);
	xfer_sleep(xf);
}

bool engine_swarm_busy(const struct swarm *sw)
{
	return sw->xfer && sw->xfer->dio && diskio_busy(sw->xfer->dio);
}

/* Free the picker, the disk layer (closing the swarm's files) and what
 * hangs off them. */
static void free_disk(struct xfer *xf)
{
	struct swarm *sw = xf->sw;
	picker_free(xf->picker);
	xf->picker = NULL;
	diskio_free(xf->dio);
	xf->dio = NULL;
	free_layerfetch(xf);
	for (uint32_t i = 0; xf->leaves && sw->meta && i < sw->meta->total_pieces; i++)
		free(xf->leaves[i]);
	free(xf->leaves);
	xf->leaves = NULL;
	for (size_t f = 0; xf->hash_trees && sw->meta && f < sw->meta->file_count; f++)
		free(xf->hash_trees[f]);
	free(xf->hash_trees);
	xf->hash_trees = NULL;
	free(xf->base_prio);
	xf->base_prio = NULL;
	proof_reset_all(xf);
}

bool xfer_release_disk(struct xfer *xf)
{
	const struct swarm *sw = xf->sw;
	if (!xf->dio || !sw->meta || !swarm_done(sw) || xf->peers ||
	    xf->dirty || !diskio_quiet(xf->dio))
		return false;
	free_disk(xf);
	return true;
}

void engine_swarm_free(struct swarm *sw)
{
	struct xfer *xf = sw->xfer;
	if (!xf)
		return;
	xfer_sleep(xf); /* never awake here in fact: stopped first */
	free_disk(xf);
	addrbook_free(xf->book);
	mdfetch_free(xf->mdf);
	free(xf->rows); /* flushed at the stop; a batch is never left here */
	free(xf);
	sw->xfer = NULL;
}

/* A worker job of this swarm has come back (diskio_ops.job_ended): the
 * last one of a stopped swarm lets the swarm be freed or restarted. */
void job_done(void *ctx)
{
	struct xfer *xf = ctx;
	if (xf->stopped && !diskio_busy(xf->dio))
		swarm_report_job_ended(xf->node, xf->sw);
}

/* Stop the swarm in error (sw->error says why) and record that. */
void swarm_fail(struct xfer *xf)
{
	struct swarm *sw = xf->sw;
	swarm_set_state(xf->node, sw, SWARM_ERROR);
	log_error("swarm %" PRId64 ": %s", sw->id, sw->error);
	engine_swarm_stop(xf->eng, sw);
	if (swarm_db_save_state(xf->node, sw) != 0)
		log_error("swarm %" PRId64 ": cannot record its error", sw->id);
}

int store_meta(struct xfer *xf)
{
	/* Through the durability gate: never a piece not yet on disk. */
	uint8_t *have = xf->sw->have ? engine_swarm_durable_have(xf->sw) : NULL;
	int rc = xf->sw->have && !have ? -EIO : swarm_db_store_meta(xf->node, xf->sw, have);
	free(have);
	return rc;
}

void free_layerfetch(struct xfer *xf)
{
	layerfetch_free(xf->lf);
	xf->lf = NULL;
}
