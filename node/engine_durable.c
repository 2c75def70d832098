/* engine_durable.c: the durability gate: pieces are recorded only once their data is fdatasync'ed. */
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
#include "node/engine-internal.h"
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
static void sync_job_free(struct sync_job *j);
static void work_sync(void *arg);
static size_t piece_file_index(const struct xfer *xf, uint32_t piece);
static size_t unverify_files(struct xfer *xf, const uint8_t *lost, const uint8_t *failed,
			     size_t nfiles);
static void done_sync(void *arg);

/* ---------------------------------------------------------- durability
 *
 * A verified piece goes: note_unsynced (its bit in xf->unsynced) -> a sync
 * job (flush_have takes a copy of the bitmap into the job, and keeps its own
 * in xf->syncing) -> done_sync: pieces whose file was fdatasync'd are
 * durable, the rest go back into xf->unsynced -> on_durable records
 * sw->have without every piece still in xf->unsynced or xf->syncing.
 * Both bitmaps are allocated with the picker, so noting or re-queueing a
 * piece never allocates and never drops one.  The threading contract is in
 * engine-internal.h. */

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
	for (size_t i = 0; i < n; i++) {
		bm[i] = sw->have[i];
		if (xf->unsynced)
			bm[i] &= (uint8_t)~xf->unsynced[i];
		if (xf->syncing)
			bm[i] &= (uint8_t)~xf->syncing[i];
	}
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
	if (sw->xfer && sw->xfer->unsynced)
		return durable_bitmap(sw->xfer);
	size_t n = sw->meta ? bitmap_bytes(sw) : 0;
	uint8_t *bm = malloc(n ? n : 1);
	if (bm && n)
		memcpy(bm, sw->have, n);
	return bm;
}

int engine_swarm_save_have(struct node *node, struct swarm *sw)
{
	if (sw->xfer && sw->xfer->unsynced)
		return on_durable(sw->xfer);
	/* No engine state: nothing is waiting for a sync, so the bitmap in
	 * memory is what the disk holds (loaded from the database, or found by
	 * a check that synced the files first). */
	return swarm_db_save_have(node, sw, sw->have);
}

static void sync_job_free(struct sync_job *j)
{
	if (!j)
		return;
	free(j->pieces);
	free(j->mtimes_ns);
	free(j->failed);
	free(j);
}

/* The fdatasyncs run without io_lock: held, they made every write (and so
 * the download) wait for the disk to flush up to a second's worth of data.
 * A failure is per file: pieces of files that synced are durable even when
 * another file's sync failed; each file is synced at most once.  A failed
 * file is marked in j->failed and its pieces stay in j->pieces: done_sync
 * un-verifies them (Linux may have dropped the dirty pages and reports the
 * error once, so syncing again would prove nothing). */
static void work_sync(void *arg)
{
	struct sync_job *j = arg;
	struct xfer *xf = j->xf;
	size_t nf = j->nfiles;
	int *fds = malloc((nf ? nf : 1) * sizeof *fds);
	uint8_t *bad = j->failed;
	if (!fds) {
		j->rc = -ENOMEM; /* nothing synced, nothing failed: all are re-queued */
		return;
	}
	j->rc = 0;
	for (size_t f = 0; f < nf; f++)
		fds[f] = -1;
	pthread_mutex_lock(&xf->io_lock);
	for (size_t b = 0; b < j->nbytes; b++) {
		for (unsigned k = 0; j->pieces[b] && k < 8; k++) {
			uint32_t p = (uint32_t)(b * 8 + k);
			if (!bit_get(j->pieces, p))
				continue;
			size_t fi = storage_piece_file(xf->storage, p);
			if (fi >= nf || bad[fi])
				continue;
			int fd;
			int rc = storage_sync_begin(xf->storage, p, &fd);
			if (rc < 0) {
				bad[fi] = 1;
				if (j->rc == 0)
					j->rc = rc;
			} else if (fd >= 0) {
				if (fds[fi] >= 0)
					close(fd); /* cannot happen: begin hands out a file once */
				else
					fds[fi] = fd;
			}
		}
	}
	pthread_mutex_unlock(&xf->io_lock);
	for (size_t f = 0; f < nf; f++) {
		if (fds[f] < 0)
			continue;
		struct stat st;
		if (fdatasync(fds[f]) < 0) {
			bad[f] = 1;
			if (j->rc == 0)
				j->rc = -errno;
		} else if (fstat(fds[f], &st) == 0) {
			j->mtimes_ns[f] = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
		}
		close(fds[f]);
	}
	/* Durable pieces leave the job's bitmap.  A close of the file (LRU, on
	 * another worker) meanwhile may have been told this sync's error:
	 * look at each file's kept error too. */
	pthread_mutex_lock(&xf->io_lock);
	for (size_t f = 0; f < nf; f++) {
		int e = bad[f] ? 0 : storage_sync_take_error(xf->storage, f);
		if (e < 0) {
			bad[f] = 1;
			j->mtimes_ns[f] = -1;
			if (j->rc == 0)
				j->rc = e;
		}
	}
	for (size_t b = 0; b < j->nbytes; b++) {
		for (unsigned k = 0; j->pieces[b] && k < 8; k++) {
			uint32_t p = (uint32_t)(b * 8 + k);
			if (!bit_get(j->pieces, p))
				continue;
			size_t fi = storage_piece_file(xf->storage, p);
			if (fi < nf && bad[fi])
				storage_sync_failed(xf->storage, p);
			else
				bit_clear(j->pieces, p);
		}
	}
	pthread_mutex_unlock(&xf->io_lock);
	free(fds);
}

/* Which file of the storage holds `piece` (SIZE_MAX without storage). */
static size_t piece_file_index(const struct xfer *xf, uint32_t piece)
{
	return xf->storage ? storage_piece_file(xf->storage, piece) : SIZE_MAX;
}

/* A sync of the files marked in `failed` failed: their data not yet
 * recorded may be gone from the disk whatever a later sync says.  Every
 * verified piece of them that is not recorded (pending in `lost`, waiting
 * in xf->unsynced or xf->syncing) is un-verified, and the picker rebuilt so
 * they and every piece in progress there are downloaded again.  The picker
 * is rebuilt even when no verified piece was dropped: a piece whose block
 * was written before the failure may still be in its write or verify job,
 * and only a rebuild makes the loop ignore that job's verdict (the file's
 * next sync would find nothing dirty and "make durable" data that is
 * gone).  Returns the number of pieces dropped. */
static size_t unverify_files(struct xfer *xf, const uint8_t *lost, const uint8_t *failed,
			     size_t nfiles)
{
	struct swarm *sw = xf->sw;
	size_t dropped = 0;
	for (uint32_t p = 0; sw->meta && p < sw->meta->total_pieces; p++) {
		bool pending = (lost && bit_get(lost, p)) || bit_get(xf->unsynced, p) ||
			       bit_get(xf->syncing, p);
		if (!pending)
			continue;
		size_t fi = piece_file_index(xf, p);
		if (fi >= nfiles || !failed[fi])
			continue;
		if (bit_get(xf->unsynced, p)) {
			bit_clear(xf->unsynced, p);
			xf->n_unsynced--;
		}
		bit_clear(xf->syncing, p);
		if (swarm_have_test(sw, p)) {
			swarm_have_clear(sw, p);
			dropped++;
		}
	}
	if (!xf->picker)
		return dropped;
	if (!xf->stopped) {
		/* Peers were told we have them: reconnect (as after a check). */
		engine_swarm_have_changed(xf->eng, sw);
	} else {
		if (rebuild_picker(xf) != 0)
			log_error("swarm %" PRId64 ": cannot rebuild its piece picker", sw->id);
		if (sw->role == SWARM_ROLE_JOIN && sw->state == SWARM_SEEDING)
			sw->state = SWARM_DOWNLOADING;
	}
	return dropped;
}

static void done_sync(void *arg)
{
	struct sync_job *j = arg;
	struct xfer *xf = j->xf;
	struct swarm *sw = xf->sw;
	size_t requeued = 0, nfailed = 0;
	xf->sync_inflight = false;
	for (size_t f = 0; f < j->nfiles; f++)
		nfailed += j->failed[f];
	/* Not synced and not failed (the job never ran, or ran out of memory):
	 * pending again, unless flush_have_now made them durable meanwhile
	 * (it clears them from xf->syncing). */
	for (size_t b = 0; b < j->nbytes; b++) {
		for (unsigned k = 0; j->pieces[b] && k < 8; k++) {
			uint32_t p = (uint32_t)(b * 8 + k);
			if (!bit_get(j->pieces, p) || !bit_get(xf->syncing, p))
				continue;
			size_t fi = piece_file_index(xf, p);
			if (fi < j->nfiles && j->failed[fi])
				continue; /* unverify_files below */
			if (!bit_get(xf->unsynced, p)) {
				bit_set(xf->unsynced, p);
				xf->n_unsynced++;
			}
			bit_clear(xf->syncing, p);
			requeued++;
		}
	}
	/* The rest of the job's pieces are durable or lost: none is syncing
	 * (cleared first: un-verifying may start the next job). */
	memset(xf->syncing, 0, j->nbytes);
	size_t dropped = nfailed ? unverify_files(xf, j->pieces, j->failed, j->nfiles) : 0;
	if (j->rc != 0 && j->rc != -ECANCELED)
		log_error("swarm %" PRId64 ": cannot make pieces durable: %s (%zu files failed, "
			  "%zu pieces to fetch again, %zu kept for the next sync)",
			  sw->id, strerror(-j->rc), nfailed, dropped, requeued);
	for (size_t f = 0; sw->mtimes_ns && f < j->nfiles; f++)
		if (j->mtimes_ns[f] >= 0)
			sw->mtimes_ns[f] = j->mtimes_ns[f];
	sync_job_free(j);
	on_durable(xf);
	job_done(xf);
}

/* Record progress: fdatasync the pieces verified since the last flush on a
 * worker, then save the bitmap.  One flush at a time per swarm. */
void flush_have(struct xfer *xf)
{
	if (xf->sync_inflight)
		return;
	if (xf->n_unsynced == 0) {
		if (xf->dirty)
			on_durable(xf);
		return;
	}
	struct sync_job *j = calloc(1, sizeof *j);
	size_t n = bitmap_bytes(xf->sw);
	if (j) {
		j->nbytes = n;
		j->nfiles = storage_file_count(xf->storage);
		j->pieces = malloc(n ? n : 1);
		j->mtimes_ns = malloc((j->nfiles ? j->nfiles : 1) * sizeof *j->mtimes_ns);
		j->failed = calloc(j->nfiles ? j->nfiles : 1, 1);
	}
	if (!j || !j->pieces || !j->mtimes_ns || !j->failed) {
		sync_job_free(j); /* nothing moved: the next flush tries again */
		return;
	}
	for (size_t f = 0; f < j->nfiles; f++)
		j->mtimes_ns[f] = -1;
	/* The job gets its own copy: the loop keeps noting pieces meanwhile. */
	memcpy(j->pieces, xf->unsynced, n);
	j->xf = xf;
	j->rc = -ECANCELED;
	if (workers_submit(xf->node->workers, work_sync, done_sync, j) != 0) {
		sync_job_free(j);
		return;
	}
	memcpy(xf->syncing, xf->unsynced, n);
	memset(xf->unsynced, 0, n);
	xf->n_unsynced = 0;
	xf->sync_inflight = true;
	xf->jobs++;
}

/* At shutdown: make every verified piece durable now, on this thread, and
 * record it, so a clean stop never costs a re-download.  Each file is
 * synced once; a file whose sync fails loses all its pending pieces (they
 * are un-verified and fetched again at the next start).  A sync job may
 * still be in flight: its files are synced again here rather than trusted
 * to it, and should the job's own sync of a file have failed, its
 * done_sync (drained by workers_free) un-verifies those pieces again. */
void flush_have_now(struct xfer *xf)
{
	if (!xf->storage || !xf->sw->meta || !xf->unsynced)
		return;
	struct swarm *sw = xf->sw;
	size_t nf = storage_file_count(xf->storage);
	/* Per file: 1 pending, 2 pending and in the job, 3 failed. */
	uint8_t *st_f = calloc(nf ? nf : 1, 1);
	bool ok = true;
	if (!st_f) {
		log_error("swarm %" PRId64 ": out of memory making pieces durable at shutdown",
			  sw->id);
		return; /* nothing recorded beyond what is durable */
	}
	pthread_mutex_lock(&xf->io_lock);
	for (uint32_t p = 0; p < sw->meta->total_pieces; p++) {
		size_t fi = storage_piece_file(xf->storage, p);
		if (fi >= nf)
			continue;
		if (bit_get(xf->syncing, p) && st_f[fi] < 2) {
			storage_sync_failed(xf->storage, p); /* its fdatasync may not be done */
			st_f[fi] = 2;
		} else if (bit_get(xf->unsynced, p) && st_f[fi] == 0) {
			st_f[fi] = 1;
		}
	}
	for (uint32_t p = 0; p < sw->meta->total_pieces; p++) {
		size_t fi = storage_piece_file(xf->storage, p);
		if (fi >= nf || st_f[fi] == 0 || st_f[fi] == 3)
			continue;
		/* The first piece of each pending file syncs the file, once. */
		int rc = storage_sync_piece(xf->storage, p);
		if (rc == 0)
			rc = storage_sync_take_error(xf->storage, fi);
		st_f[fi] = rc == 0 ? 0 : 3;
		if (rc != 0)
			ok = false;
	}
	pthread_mutex_unlock(&xf->io_lock);
	/* Pending pieces of synced files are durable; of failed files, lost. */
	for (size_t f = 0; f < nf; f++)
		st_f[f] = st_f[f] == 3;
	if (!ok)
		unverify_files(xf, NULL, st_f, nf);
	for (uint32_t p = 0; p < sw->meta->total_pieces; p++) {
		size_t fi = storage_piece_file(xf->storage, p);
		if (fi < nf && st_f[fi])
			continue;
		if (bit_get(xf->unsynced, p)) {
			bit_clear(xf->unsynced, p);
			xf->n_unsynced--;
		}
		bit_clear(xf->syncing, p);
	}
	if (!ok)
		log_error("swarm %" PRId64 ": some verified pieces could not be made durable at "
			  "shutdown; they will be fetched again",
			  sw->id);
	/* Every file is synced (or its pieces are dropped): its mtime now
	 * marks the state the recorded pieces describe, so the check at the
	 * next start skips it. */
	char root[PATH_MAX], path[PATH_MAX + 1024];
	swarm_content_root(sw, root, sizeof root);
	for (size_t f = 0; ok && sw->mtimes_ns && f < sw->meta->file_count; f++) {
		struct stat st;
		snprintf(path, sizeof path, "%s/%s", root, sw->meta->files[f].path);
		if (lstat(path, &st) == 0)
			sw->mtimes_ns[f] = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
	}
	free(st_f);
	on_durable(xf);
}

/* A piece passed its hash: remember to make it durable before recording.
 * Never allocates: the bitmap was sized with the picker. */
void note_unsynced(struct xfer *xf, uint32_t piece)
{
	if (bit_get(xf->unsynced, piece))
		return;
	bit_set(xf->unsynced, piece);
	xf->n_unsynced++;
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
}

bool engine_swarm_busy(const struct swarm *sw)
{
	return sw->xfer && sw->xfer->jobs > 0;
}

void engine_swarm_free(struct swarm *sw)
{
	struct xfer *xf = sw->xfer;
	if (!xf)
		return;
	picker_free(xf->picker);
	storage_free(xf->storage);
	free_layerfetch(xf);
	for (uint32_t i = 0; xf->leaves && sw->meta && i < sw->meta->total_pieces; i++)
		free(xf->leaves[i]);
	free(xf->leaves);
	for (size_t f = 0; xf->hash_trees && sw->meta && f < sw->meta->file_count; f++)
		free(xf->hash_trees[f]);
	free(xf->hash_trees);
	free(xf->unsynced);
	free(xf->syncing);
	for (size_t i = 0; i < xf->n_wq; i++)
		free(xf->wq[i]);
	free(xf->wq);
	free(xf->vq);
	pthread_mutex_destroy(&xf->io_lock);
	addrbook_free(xf->book);
	mdfetch_free(xf->mdf);
	free(xf);
	sw->xfer = NULL;
}

/* A worker job of this swarm has come back. */
void job_done(struct xfer *xf)
{
	if (--xf->jobs == 0 && xf->stopped)
		swarm_report_job_ended(xf->node, xf->sw);
}
