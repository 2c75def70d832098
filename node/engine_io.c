/* engine_io.c: the disk pipeline (writes, verification, reads for serving) and its byte budgets. */
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

static void serve_refresh(struct peer *p);
static size_t serve_budget_blocks(const struct xfer *xf);
static void enter_disk_full(struct xfer *xf, int rc);
static void work_write(void *arg);
static void queue_verify(struct xfer *xf, uint32_t piece);
static void done_write(void *arg);
static int submit_write(struct xfer *xf);
static const struct metainfo_file *piece_file(const struct metainfo *mi, uint32_t piece,
					      uint32_t *local_out);
static int verify_one(struct xfer *xf, uint32_t piece, const uint8_t *leaves,
		      struct sha256_ctx *ctx, uint8_t *buf, size_t buf_len);
static void work_verify(void *arg);
static void swarm_completed(struct xfer *xf);
static void piece_checked(struct xfer *xf, uint32_t piece, int rc);
static void done_verify(void *arg);
static void kick_verify(struct xfer *xf);
static void work_read(void *arg);
static void done_read(void *arg);
static size_t serve_target(const struct peer *p);
static size_t fair_share(size_t budget, unsigned n);

/* -------------------------------------------------- disk and hashing */

/* Free the blocks waiting for a write job, and take them out of the write
 * budget (a rebuilt picker will ask for them again). */
void drop_write_queue(struct xfer *xf)
{
	for (size_t i = 0; i < xf->n_wq; i++) {
		xf->write_queued -= xf->wq[i]->len;
		free(xf->wq[i]);
	}
	xf->n_wq = 0;
}

_Static_assert(offsetof(struct block, data) == offsetof(struct block, hdr) + WIRE_PIECE_HDR_LEN,
	       "a PIECE message is header and data contiguous");

/* ------------------------------------ serving and writing budgets
 *
 * Blocks in memory are counted in bytes against named ceilings
 * (engine-internal.h, docs/architecture.md "Memory ceilings"), because a
 * count of requests per peer multiplies by the number of peers: 60 peers of
 * one swarm could each hold PEER_MAX_OUTBUF (4 MiB) of served blocks.
 *
 * Serving: a block is counted from the read job that loads it until it has
 * left its peer's output buffer.  The output buffer also holds small
 * messages and libevent does not say when a given block leaves it, so each
 * peer's serve_out is an upper bound that only shrinks, to the buffer's
 * length, whenever the peer is looked at (serve_refresh).  A peer's
 * requests are read only while its swarm and the daemon stay within
 * ENGINE_SWARM_SERVE_BUDGET and ENGINE_SERVE_BUDGET; otherwise it waits,
 * its requests kept in p->inq, and serve_wake serves it as bytes drain.
 * Each unchoked peer is also held to a fair share of both budgets, so the
 * first peers to ask cannot keep the whole budget while others wait.
 *
 * Writing: received blocks count from their arrival until their write job
 * ends; past ENGINE_SWARM_WRITE_BUDGET or ENGINE_WRITE_BUDGET no new
 * requests are sent.  Blocks already requested still arrive and are
 * kept (never dropped): each peer has at most PEER_MAX_REQS in flight.
 *
 * The daemon-wide figures are sums over the swarms, not counters of the
 * engine, because done_* callbacks may run after engine_free. */

void daemon_queued(const struct node *node, size_t *serve, size_t *write,
			  unsigned *unchoked)
{
	*serve = *write = 0;
	*unchoked = 0;
	for (const struct swarm *sw = node->swarms; sw; sw = sw->next) {
		const struct xfer *xf = sw->xfer;
		if (!xf)
			continue;
		*serve += xf->serve_reading + xf->serve_out;
		*write += xf->write_queued;
		*unchoked += xf->n_unchoked;
	}
}

bool write_budget_full(const struct xfer *xf)
{
	if (xf->write_queued >= ENGINE_SWARM_WRITE_BUDGET)
		return true;
	size_t serve, write;
	unsigned unchoked;
	daemon_queued(xf->node, &serve, &write, &unchoked);
	return write >= ENGINE_WRITE_BUDGET;
}

/* Bytes left us by the serving budget: wake the peers that wait for it.
 * (A stopped swarm's engine may be gone: its peers are closed anyway.) */
void serve_freed(struct xfer *xf)
{
	if (!xf->stopped && xf->eng->serve_waiting)
		event_active(xf->eng->serve_wake, EV_TIMEOUT, 0);
}

/* Shrink the peer's count of served bytes to what its output buffer still
 * holds. */
static void serve_refresh(struct peer *p)
{
	size_t out = peer_outbuf_len(p);
	if (p->serve_out <= out)
		return;
	p->xf->serve_out -= p->serve_out - out;
	p->serve_out = out;
	serve_freed(p->xf);
}

/* How many more blocks the budgets allow this swarm to read now. */
static size_t serve_budget_blocks(const struct xfer *xf)
{
	size_t serve, write;
	unsigned unchoked;
	daemon_queued(xf->node, &serve, &write, &unchoked);
	size_t own = xf->serve_reading + xf->serve_out;
	if (serve >= ENGINE_SERVE_BUDGET || own >= ENGINE_SWARM_SERVE_BUDGET)
		return 0;
	size_t room = ENGINE_SERVE_BUDGET - serve;
	if (room > ENGINE_SWARM_SERVE_BUDGET - own)
		room = ENGINE_SWARM_SERVE_BUDGET - own;
	return room / SERVE_BLOCK_CHARGE;
}

void serve_wake(evutil_socket_t fd, short what, void *arg)
{
	struct engine *eng = arg;
	(void)fd;
	(void)what;
	eng->serve_waiting = false;
	for (struct swarm *sw = eng->node->swarms; sw; sw = sw->next) {
		if (!sw->xfer || sw->xfer->stopped)
			continue;
		for (struct peer *p = sw->xfer->peers; p; p = p->next) {
			if (!p->serve_waiting || p->state != PEER_ACTIVE)
				continue;
			p->serve_waiting = false;
			serve_requests(p); /* sets it again if the budget is still short */
		}
	}
}

static void enter_disk_full(struct xfer *xf, int rc)
{
	struct swarm *sw = xf->sw;
	if (xf->disk_full)
		return;
	xf->disk_full = true;
	xf->disk_retry_ms = now_ms() + ENGINE_DISK_RETRY_MS;
	snprintf(sw->error, sizeof sw->error,
		 "cannot write under %s: %s; the download resumes when there is space again", sw->root,
		 strerror(-rc));
	log_error("swarm %" PRId64 ": %s", sw->id, sw->error);
	for (struct peer *p = xf->peers; p; p = p->next)
		drop_requests(p);
}

/* Write the batch, and hash each block (a BEP 52 leaf) while it is in
 * memory, so a complete piece is verified from its leaves without reading
 * it back.  A batch of an older picker writes nothing (xf->io_gen). */
static void work_write(void *arg)
{
	struct io_batch *j = arg;
	pthread_mutex_lock(&j->xf->io_lock);
	bool current = j->gen == j->xf->io_gen;
	for (size_t i = 0; i < j->n; i++)
		j->b[i]->rc = !current ? -ECANCELED
				       : storage_write(j->xf->storage, j->b[i]->piece, j->b[i]->begin,
						       j->b[i]->data, j->b[i]->len);
	pthread_mutex_unlock(&j->xf->io_lock);
	struct sha256_ctx *ctx = current && j->hash ? sha256_new() : NULL;
	for (size_t i = 0; ctx && i < j->n; i++)
		if (j->b[i]->rc == 0)
			sha256_once(ctx, j->b[i]->data, j->b[i]->len, j->b[i]->leaf);
	if (j->hash && current && !ctx)
		for (size_t i = 0; i < j->n; i++)
			if (j->b[i]->rc == 0)
				j->b[i]->rc = -ENOMEM; /* unhashed: fetched again, not trusted */
	sha256_free(ctx);
}

/* Queue a piece whose blocks are all on disk for hashing. */
static void queue_verify(struct xfer *xf, uint32_t piece)
{
	if (xf->n_vq == xf->cap_vq) {
		size_t cap = xf->cap_vq ? xf->cap_vq * 2 : 64;
		uint32_t *q = realloc(xf->vq, cap * sizeof *q);
		if (!q) {
			log_error("out of memory queueing piece %u for verification", piece);
			return;
		}
		xf->vq = q;
		xf->cap_vq = cap;
	}
	xf->vq[xf->n_vq++] = piece;
}

static void done_write(void *arg)
{
	struct io_batch *j = arg;
	struct xfer *xf = j->xf;
	bool failed = false;
	xf->writes_inflight--;
	for (size_t i = 0; i < j->n; i++) {
		struct block *b = j->b[i];
		uint32_t block = b->begin / XFER_BLOCK_SIZE;
		xf->write_queued -= b->len;
		if (!xf->stopped && xf->picker && j->gen == xf->picker_gen) {
			if (b->rc != 0) {
				if (picker_write_failed(xf->picker, b->piece, block) != 0)
					log_debug("picker: write-failed on %u/%u refused", b->piece, block);
				if (b->rc == -EACCES) {
					/* Not space: a file we must not write (adopted). */
					size_t f = storage_piece_file(xf->storage, b->piece);
					if (f < storage_file_count(xf->storage))
						adopted_changed(xf, f, "");
					else
						snprintf(xf->sw->error, sizeof xf->sw->error,
							 "cannot write under %s: %s", xf->sw->root,
							 strerror(EACCES));
					failed = true;
				} else {
					enter_disk_full(xf, b->rc);
				}
			} else {
				uint8_t *leaves = xf->leaves ? xf->leaves[b->piece] : NULL;
				if (leaves)
					memcpy(leaves + 32 * (size_t)block, b->leaf, 32);
				if (picker_mark_finished(xf->picker, b->piece, block) == 1)
					queue_verify(xf, b->piece);
			}
		}
		free(b);
	}
	free(j);
	if (failed && !xf->stopped)
		swarm_fail(xf);
	if (!xf->stopped) {
		kick_writes(xf);
		kick_verify(xf);
		/* Other swarms' peers ask again at their next block or tick. */
		if (!write_budget_full(xf))
			for (struct peer *p = xf->peers; p; p = p->next)
				request_more(p);
	}
	job_done(xf);
}

/* Start write batches while fewer than WRITE_PARALLEL run.  Two at once:
 * each also hashes its blocks (outside io_lock), and one at a time left that
 * hashing, the leecher's largest cost, on a single core. */
void kick_writes(struct xfer *xf)
{
	while (xf->writes_inflight < WRITE_PARALLEL && xf->n_wq > 0)
		if (submit_write(xf) != 0)
			return;
}

static int submit_write(struct xfer *xf)
{
	struct io_batch *j = malloc(sizeof *j);
	if (!j)
		return -ENOMEM;
	j->xf = xf;
	j->gen = xf->picker_gen;
	j->hash = xf->leaves != NULL;
	j->n = xf->n_wq < IO_BATCH ? xf->n_wq : IO_BATCH;
	memcpy(j->b, xf->wq, j->n * sizeof *j->b);
	memmove(xf->wq, xf->wq + j->n, (xf->n_wq - j->n) * sizeof *xf->wq);
	xf->n_wq -= j->n;
	for (size_t i = 0; i < j->n; i++)
		j->b[i]->rc = -ECANCELED; /* until the work runs */
	if (workers_submit(xf->node->workers, work_write, done_write, j) != 0) {
		/* Shutting down: give the blocks back to the picker. */
		for (size_t i = 0; i < j->n; i++) {
			if (xf->picker &&
			    picker_write_failed(xf->picker, j->b[i]->piece, j->b[i]->begin / XFER_BLOCK_SIZE))
				log_debug("picker: write-failed refused");
			xf->write_queued -= j->b[i]->len;
			free(j->b[i]);
		}
		free(j);
		return -ECANCELED;
	}
	xf->writes_inflight++;
	xf->jobs++;
	return 0;
}

/* Which file holds global piece `piece`, and its index inside the file. */
static const struct metainfo_file *piece_file(const struct metainfo *mi, uint32_t piece,
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

/* Hash one piece from disk against its piece layer.  The storage lock is
 * held only while reading, so writes go on while we hash. */
static int verify_one(struct xfer *xf, uint32_t piece, const uint8_t *leaves,
		      struct sha256_ctx *ctx, uint8_t *buf, size_t buf_len)
{
	const struct metainfo *mi = xf->sw->meta;
	uint32_t local;
	const struct metainfo_file *f = piece_file(mi, piece, &local);
	if (!f || !f->layer)
		return -EINVAL;
	uint64_t size = merkle_piece_size(f->size, mi->piece_length, local);
	uint64_t width = merkle_piece_leaves(f->size, mi->piece_length);
	if (leaves && width * 32 <= buf_len) {
		/* The subtree from the leaves hashed at write time; missing leaves
		 * past the data are 32 zero bytes (BEP 52). */
		uint64_t n = (size + XFER_BLOCK_SIZE - 1) / XFER_BLOCK_SIZE;
		memcpy(buf, leaves, (size_t)n * 32);
		memset(buf + n * 32, 0, (size_t)(width - n) * 32);
		for (; width > 1; width /= 2)
			for (uint64_t i = 0; i < width / 2; i++)
				sha256_once(ctx, buf + 64 * i, 64, buf + 32 * i);
		return memcmp(buf, f->layer + 32 * (size_t)local, 32) == 0 ? 0 : -EBADMSG;
	}
	struct merkle_piece mp;
	int rc = merkle_piece_init(&mp, ctx, width);
	for (uint64_t off = 0; rc == 0 && off < size;) {
		size_t n = size - off < buf_len ? (size_t)(size - off) : buf_len;
		pthread_mutex_lock(&xf->io_lock);
		rc = storage_read_fast(xf->storage, piece, (uint32_t)off, buf, n);
		pthread_mutex_unlock(&xf->io_lock);
		if (rc == 0)
			rc = merkle_piece_update(&mp, buf, n);
		off += n;
	}
	uint8_t h[MERKLE_HASH_LEN];
	if (rc == 0)
		rc = merkle_piece_final(&mp, h);
	if (rc == 0)
		rc = memcmp(h, f->layer + 32 * (size_t)local, 32) == 0 ? 0 : -EBADMSG;
	return rc;
}

static void work_verify(void *arg)
{
	struct verify_batch *j = arg;
	struct sha256_ctx *ctx = sha256_new();
	uint8_t *buf = malloc(256 * 1024);
	for (size_t i = 0; i < j->n; i++)
		j->rc[i] = (!ctx || !buf) ? -ENOMEM : verify_one(j->xf, j->piece[i], j->leaves[i], ctx, buf,
								  256 * 1024);
	sha256_free(ctx);
	free(buf);
}

static void swarm_completed(struct xfer *xf)
{
	struct swarm *sw = xf->sw;
	sw->state = SWARM_SEEDING;
	xf->dirty = true;
	flush_have(xf);
	log_info("swarm %" PRId64 ": download complete (%" PRIu64 " bytes); seeding", sw->id,
		 sw->meta->total_size);
	for (struct peer *p = xf->peers; p; p = p->next) {
		if (p->state != PEER_ACTIVE)
			continue;
		update_interest(p);
		/* Two seeds have nothing to say to each other. */
		if (p->has.bits && bitfield_all(&p->has))
			peer_close(p, "both complete");
	}
}

/* Count `n` strikes against a peer that sent data failing its hash (a
 * piece, the metadata, a piece layer); at PEER_BAN_STRIKES it is banned
 * for the swarm's life (remembered in SQLite) and dropped.  Returns true
 * when the peer was dropped. */
bool strike(struct peer *p, unsigned n, const char *what)
{
	struct xfer *xf = p->xf;
	p->strikes += n;
	if (p->strikes < PEER_BAN_STRIKES)
		return false;
	log_warn("swarm %" PRId64 ": banning %s: sent %s that fails its hash", xf->sw->id, p->name,
		 what);
	/* The address book entry, the host and the peer id (see "bans").  The
	 * row that keeps the ban across restarts is the entry's address, or
	 * for a peer that never named a listen port, the address it came
	 * from: every banned row's host is refused again at load. */
	ban_host(xf, (const struct sockaddr *)&p->addr);
	ban_id(xf, p->peer_id);
	ban_known(xf, p->known, &p->addr);
	peer_close(p, "banned: bad data");
	return true;
}

/* A piece's verdict, on the loop. */
static void piece_checked(struct xfer *xf, uint32_t piece, int rc)
{
	struct swarm *sw = xf->sw;
	if (xf->leaves) {
		free(xf->leaves[piece]); /* re-fetched blocks hash afresh */
		xf->leaves[piece] = NULL;
	}
	if (rc == 0) {
		if (picker_piece_verified(xf->picker, piece) != 0)
			log_error("picker refused verified piece %u", piece);
		swarm_have_set(sw, piece);
		note_unsynced(xf, piece);
		xf->dirty = true;
		broadcast_have(xf, piece);
		if (sw->have_count == sw->meta->total_pieces)
			swarm_completed(xf);
		return;
	}
	/* One slot per block names every contributor (at most PICKER_MAX_BLAME).
	 * Without the record the piece is still reset for re-request; only
	 * the blame is lost, and a truncated record blames no one, since
	 * "sole contributor" could not be told apart. */
	uint32_t nblocks = picker_piece_blocks(xf->picker, piece);
	uint32_t *blame = malloc((nblocks ? nblocks : 1) * sizeof *blame);
	size_t nb = 0;
	if (picker_piece_failed(xf->picker, piece, blame, blame ? nblocks : 0, &nb) != 0)
		nb = 0;
	xf->hash_fails++;
	if (rc != -EBADMSG) {
		log_error("swarm %" PRId64 ": piece %u: %s", sw->id, piece, strerror(-rc));
		if (rc == -ENOSPC || rc == -EFBIG || rc == -EIO)
			enter_disk_full(xf, rc);
	} else {
		log_warn("swarm %" PRId64 ": piece %u failed its hash check", sw->id, piece);
	}
	for (size_t i = 0; rc == -EBADMSG && i < nb; i++) {
		struct peer *p = find_peer(xf, blame[i]);
		if (!p)
			continue;
		/* Sole contributor: certainly guilty; counts double. */
		strike(p, nb == 1 ? PEER_BAN_STRIKES : 1, "data");
	}
	free(blame);
	for (struct peer *p = xf->peers; p; p = p->next)
		request_more(p);
}

static void done_verify(void *arg)
{
	struct verify_batch *j = arg;
	struct xfer *xf = j->xf;
	xf->verify_inflight--;
	for (size_t i = 0; i < j->n; i++) {
		free(j->leaves[i]);
		if (!xf->stopped && xf->picker && j->gen == xf->picker_gen && j->rc[i] != -ECANCELED)
			piece_checked(xf, j->piece[i], j->rc[i]);
	}
	free(j);
	if (!xf->stopped)
		kick_verify(xf);
	job_done(xf);
}

static void kick_verify(struct xfer *xf)
{
	while (xf->verify_inflight < VERIFY_PARALLEL && xf->n_vq > 0) {
		struct verify_batch *j = malloc(sizeof *j);
		if (!j)
			return;
		j->xf = xf;
		j->gen = xf->picker_gen;
		j->n = xf->n_vq < VERIFY_BATCH ? xf->n_vq : VERIFY_BATCH;
		memcpy(j->piece, xf->vq, j->n * sizeof *j->piece);
		memmove(xf->vq, xf->vq + j->n, (xf->n_vq - j->n) * sizeof *xf->vq);
		xf->n_vq -= j->n;
		for (size_t i = 0; i < j->n; i++) {
			j->rc[i] = -ECANCELED;
			/* The job owns the piece's leaves from here (see the contract). */
			j->leaves[i] = xf->leaves ? xf->leaves[j->piece[i]] : NULL;
			if (xf->leaves)
				xf->leaves[j->piece[i]] = NULL;
		}
		if (workers_submit(xf->node->workers, work_verify, done_verify, j) != 0) {
			for (size_t i = 0; i < j->n; i++)
				free(j->leaves[i]);
			free(j);
			return;
		}
		xf->verify_inflight++;
		xf->jobs++;
	}
}

static void work_read(void *arg)
{
	struct io_batch *j = arg;
	pthread_mutex_lock(&j->xf->io_lock);
	for (size_t i = 0; i < j->n; i++) {
		struct block *b = j->b[i];
		b->rc = storage_read_fast(j->xf->storage, b->piece, b->begin, b->data, b->avail);
		if (b->avail < b->len)
			memset(b->data + b->avail, 0, b->len - b->avail);
	}
	pthread_mutex_unlock(&j->xf->io_lock);
}

static void done_read(void *arg)
{
	struct io_batch *j = arg;
	struct xfer *xf = j->xf;
	struct peer *p = xf->stopped ? NULL : find_peer(xf, j->peer);
	if (p) {
		p->reads_inflight--;
		p->reads_blocks -= j->n;
	}
	xf->serve_reading -= j->n * SERVE_BLOCK_CHARGE;
	for (size_t i = 0; i < j->n; i++) {
		struct block *b = j->b[i];
		if (p && b->rc == 0 && !p->am_choking) {
			wire_put_piece_hdr(b->hdr, b->piece, b->begin, b->len);
			uint32_t len = b->len;
			if (peer_send_owned(p, b->hdr, sizeof b->hdr + len, b) == 0) {
				/* At most what the read was charged: the total never grows here. */
				p->serve_out += sizeof b->hdr + len;
				xf->serve_out += sizeof b->hdr + len;
				p->up_total += len;
				p->up_tick += len;
				xf->up_total += len;
				xf->up_tick += len;
			}
			continue; /* b belongs to the output buffer now, or is freed */
		} else if (p && b->rc != 0 && b->rc != -ECANCELED) {
			log_error("swarm %" PRId64 ": cannot read piece %u: %s", xf->sw->id, b->piece,
				  strerror(-b->rc));
		}
		free(b);
	}
	free(j);
	if (p)
		serve_requests(p);
	serve_freed(xf);
	job_done(xf);
}

static size_t serve_target(const struct peer *p)
{
	if (!p->eng->node->cfg.upload_limit && !p->xf->sw->upload_limit)
		return PEER_MAX_OUTBUF;
	size_t t = (size_t)(p->up_rate * SERVE_QUEUE_SECONDS);
	if (t < SERVE_QUEUE_MIN)
		t = SERVE_QUEUE_MIN;
	return t < PEER_MAX_OUTBUF ? t : PEER_MAX_OUTBUF;
}

/* A fair share of a budget among n unchoked peers, never below one
 * SERVE_QUEUE_MIN. */
static size_t fair_share(size_t budget, unsigned n)
{
	size_t s = n ? budget / n : budget;
	return s < SERVE_QUEUE_MIN ? SERVE_QUEUE_MIN : s;
}

void serve_requests(struct peer *p)
{
	struct xfer *xf = p->xf;
	if (!xf || xf->stopped || !xf->storage)
		return;
	serve_refresh(p);
	size_t target = serve_target(p);
	{
		size_t serve, write;
		unsigned unchoked;
		daemon_queued(xf->node, &serve, &write, &unchoked);
		size_t fs = fair_share(ENGINE_SWARM_SERVE_BUDGET, xf->n_unchoked);
		size_t fd = fair_share(ENGINE_SERVE_BUDGET, unchoked);
		if (target > fs)
			target = fs;
		if (target > fd)
			target = fd;
	}
	if (target != p->serve_target) {
		p->serve_target = target;
		peer_set_write_lowmark(p, target / 2);
	}
	for (;;) {
		size_t queued = peer_outbuf_len(p) + p->reads_blocks * (size_t)XFER_BLOCK_SIZE;
		if (p->n_inq == 0 || p->reads_inflight >= PEER_MAX_READ_BATCHES || queued >= target ||
		    p->am_choking)
			return;
		size_t room = (target - queued) / XFER_BLOCK_SIZE + 1;
		size_t budget = serve_budget_blocks(xf);
		if (budget == 0) {
			/* Wait, requests kept, until bytes drain (serve_wake). */
			p->serve_waiting = true;
			p->eng->serve_waiting = true;
			return;
		}
		if (room > budget)
			room = budget;
		struct io_batch *j = malloc(sizeof *j);
		if (!j)
			return;
		j->xf = xf;
		j->peer = p->uid;
		j->n = 0;
		while (p->n_inq > 0 && j->n < READ_BATCH && j->n < room) {
			struct block *b = malloc(sizeof *b);
			if (!b)
				break;
			b->peer = p->uid;
			b->piece = p->inq[0].index;
			b->begin = p->inq[0].begin;
			b->len = p->inq[0].length;
			uint32_t plen = picker_piece_len(xf->picker, b->piece);
			b->avail = plen - b->begin < b->len ? plen - b->begin : b->len;
			b->rc = -ECANCELED;
			j->b[j->n++] = b;
			memmove(p->inq, p->inq + 1, (p->n_inq - 1) * sizeof *p->inq);
			p->n_inq--;
		}
		if (j->n == 0 || workers_submit(xf->node->workers, work_read, done_read, j) != 0) {
			for (size_t i = 0; i < j->n; i++)
				free(j->b[i]);
			free(j);
			return;
		}
		xf->jobs++;
		p->reads_inflight++;
		p->reads_blocks += j->n;
		xf->serve_reading += j->n * SERVE_BLOCK_CHARGE;
	}
}

void engine_on_writable(struct peer *p)
{
	serve_requests(p);
}
