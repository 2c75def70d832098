/* engine_io.c: the engine's side of the disk pipeline (what to write, verify and serve; node/diskio.h does the I/O) and its byte budgets. */
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

static void serve_refresh(struct peer *p);
static size_t serve_budget_blocks(const struct xfer *xf);
static void enter_disk_full(struct xfer *xf, int rc);
static void queue_verify(struct xfer *xf, uint32_t piece);
static void on_written(void *ctx, struct block *const *b, size_t n, enum diskio_written how);
static void swarm_completed(struct xfer *xf);
static void piece_checked(struct xfer *xf, uint32_t piece, int rc);
static void on_verified(void *ctx, const uint32_t *piece, const int *rc, size_t n, bool current);
static void on_read(void *ctx, uint32_t peer, struct block **b, size_t n);
static void on_leaves(void *ctx, uint32_t peer, uint32_t piece, const uint8_t *leaves,
		      size_t width, int rc, const void *tag, size_t tag_len);
static size_t serve_target(const struct peer *p);
static size_t fair_share(size_t budget, unsigned n);

/* -------------------------------------------------- disk and hashing */

/* The callbacks of the swarm's disk layer (node/diskio.h): the verdicts
 * here, durability in engine_durable.c.  Each gets the xfer, never
 * xf->eng: completions can run after the engine is freed. */
static const struct diskio_ops disk_ops = {
	.written = on_written,
	.verified = on_verified,
	.read = on_read,
	.leaves = on_leaves,
	.lost = durable_lost,
	.durable = durable_synced,
	.job_ended = job_done,
};

/* Give the swarm its disk layer over `st` (taken, also on failure). */
int xfer_open_disk(struct xfer *xf, struct storage *st)
{
	char label[32];
	snprintf(label, sizeof label, "swarm %" PRId64, xf->sw->id);
	int rc = diskio_new(st, xf->sw->meta, xf->node->workers, &disk_ops, xf, label, &xf->dio);
	if (rc == 0) {
		diskio_set_metrics(xf->dio, &xf->node->metrics);
		diskio_count_into(xf->dio, &xf->node->queues.write);
	}
	return rc;
}

_Static_assert(offsetof(struct block, data) == offsetof(struct block, hdr) + WIRE_PIECE_HDR_LEN,
	       "a PIECE message is header and data contiguous");

/* ------------------------------------ serving and writing budgets
 *
 * Blocks in memory are counted in bytes against named ceilings
 * (engine_state.h, docs/architecture.md "Memory ceilings"), because a
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
 * The daemon-wide figures are sums over the swarms kept in node->queues as
 * each swarm's figures change (serve_count, unchoked_count,
 * diskio_count_into), so a budget check is O(1) however many swarms there
 * are; in the node, not the engine, because the disk layer's callbacks may
 * run after engine_free.
 * (daemon_queued and write_budget_full are in engine_send.c, below this
 * file, for requesting; serve_freed in engine_base.c, for engine_peers.c.) */

/* Shrink the peer's count of served bytes to what its output buffer still
 * holds. */
static void serve_refresh(struct peer *p)
{
	size_t out = peer_outbuf_len(p);
	if (p->serve_out <= out)
		return;
	serve_count(p->xf, &p->xf->serve_out, 0, p->serve_out - out);
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
	/* A peer waits only in a swarm with peers, which is awake. */
	for (struct xfer *xf = eng->awake; xf; xf = xf->awake_next) {
		if (xf->stopped)
			continue;
		for (struct peer *p = xf->peers; p; p = p->next) {
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

/* A received block (its data checked against the request) goes to the
 * disk layer.  Its leaf buffer is made here, so the write job hashes it
 * and the piece is verified without reading it back.  Returns 0 or
 * -ENOMEM. */
int queue_block(struct peer *p, uint32_t piece, uint32_t begin, const uint8_t *data, size_t len)
{
	struct xfer *xf = p->xf;
	/* v2 only: a v1 piece is checked by its SHA-1, read back whole. */
	if (!xf->leaves && xf->sw->meta->has_v2)
		xf->leaves = calloc(picker_num_pieces(xf->picker), sizeof *xf->leaves);
	if (xf->leaves && !xf->leaves[piece])
		xf->leaves[piece] = calloc(picker_piece_blocks(xf->picker, piece), 32);
	struct block *b = malloc(sizeof *b);
	if (!b)
		return -ENOMEM;
	b->peer = p->uid;
	b->piece = piece;
	b->begin = begin;
	b->len = (uint32_t)len;
	b->avail = b->len;
	b->rc = -ECANCELED;
	b->hash = xf->leaves != NULL;
	memcpy(b->data, data, len);
	if (diskio_write(xf->dio, b) != 0) {
		free(b);
		return -ENOMEM;
	}
	return 0;
}

/* Queue a piece whose blocks are all on disk for hashing: its leaves go
 * with it (the verify job owns them from here). */
static void queue_verify(struct xfer *xf, uint32_t piece)
{
	uint8_t *leaves = xf->leaves ? xf->leaves[piece] : NULL;
	if (xf->leaves)
		xf->leaves[piece] = NULL;
	if (diskio_verify(xf->dio, piece, leaves) != 0)
		log_error("out of memory queueing piece %u for verification", piece);
}

/* A write batch came back (diskio_ops.written). */
static void on_written(void *ctx, struct block *const *bl, size_t n, enum diskio_written how)
{
	struct xfer *xf = ctx;
	bool failed = false;
	for (size_t i = 0; i < n; i++) {
		const struct block *b = bl[i];
		uint32_t block = b->begin / XFER_BLOCK_SIZE;
		if (xf->stopped || !xf->picker || how != DISKIO_WRITTEN)
			continue;
		if (b->rc != 0) {
			if (picker_write_failed(xf->picker, b->piece, block) != 0)
				log_debug("picker: write-failed on %u/%u refused", b->piece, block);
			if (b->rc == -EACCES) {
				/* Not space: a file we must not write (adopted). */
				size_t f = diskio_piece_file(xf->dio, b->piece);
				if (f < diskio_file_count(xf->dio))
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
			if (b->hash)
				proof_block_written(xf, b->piece, block, b->leaf);
			if (picker_mark_finished(xf->picker, b->piece, block) == 1)
				queue_verify(xf, b->piece);
		}
	}
	if (failed && !xf->stopped)
		swarm_fail(xf);
	if (!xf->stopped) {
		diskio_kick(xf->dio);
		/* Other swarms' peers ask again at their next block or tick. */
		if (!write_budget_full(xf))
			for (struct peer *p = xf->peers; p; p = p->next)
				request_more(p);
	}
}

static void swarm_completed(struct xfer *xf)
{
	struct swarm *sw = xf->sw;
	swarm_set_state(xf->node, sw, SWARM_SEEDING);
	xf->dirty = true; /* awake: it has a peer, or it would not complete */
	flush_have(xf);
	if (sw->wanted)
		log_info("swarm %" PRId64 ": the chosen files are complete (%" PRIu32 " of %" PRIu32
			 " pieces); seeding what it has", sw->id, sw->have_count,
			 sw->meta->total_pieces);
	else
		log_info("swarm %" PRId64 ": download complete (%" PRIu64 " bytes); seeding", sw->id,
			 sw->meta->total_size);
	swarm_report_completed(xf->node, sw); /* the mediator tells the trackers */
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
	xf->node->metrics.bans++;
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
	if (rc == 0)
		proof_piece_done(xf, piece); /* whole now */
	else
		proof_piece_reset(xf, piece); /* its blocks come again */
	if (rc == 0) {
		if (picker_piece_verified(xf->picker, piece) != 0)
			log_error("picker refused verified piece %u", piece);
		swarm_have_set(sw, piece);
		note_unsynced(xf, piece);
		xf->dirty = true;
		broadcast_have(xf, piece);
		if (swarm_done(sw) && sw->state != SWARM_SEEDING)
			swarm_completed(xf); /* every wanted piece: every piece, or the files chosen */
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
	if (rc == -EPROTO) {
		/* Not a peer's fault: the data is what the v2 half asks for. */
		snprintf(sw->error, sizeof sw->error,
			 "bad torrent: piece %u matches its v2 hash but not its v1 hash (the "
			 "hybrid's two halves describe different data)",
			 piece);
		log_error("swarm %" PRId64 ": %s", sw->id, sw->error);
		free(blame);
		swarm_fail(xf);
		return;
	}
	xf->hash_fails++;
	if (rc != -EBADMSG) {
		log_error("swarm %" PRId64 ": piece %u: %s", sw->id, piece, strerror(-rc));
		if (rc == -ENOSPC || rc == -EFBIG || rc == -EIO)
			enter_disk_full(xf, rc);
	} else {
		xf->node->metrics.hash_failures++;
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

/* A verify batch came back (diskio_ops.verified). */
static void on_verified(void *ctx, const uint32_t *piece, const int *rc, size_t n, bool current)
{
	struct xfer *xf = ctx;
	for (size_t i = 0; i < n; i++)
		if (!xf->stopped && xf->picker && current && rc[i] != -ECANCELED)
			piece_checked(xf, piece[i], rc[i]);
	if (!xf->stopped)
		diskio_kick(xf->dio);
}

/* A read batch came back (diskio_ops.read): send what was read. */
/* A peer asked for the block hashes under a piece we have (BEP 52, base
 * layer 0): hashed from disk on a worker, at most ENGINE_LEAVES_SERVING at
 * once for the swarm; otherwise, or while its output waits, rejected. */
void serve_block_hashes(struct peer *p, const struct wire_hash_req *r, uint32_t piece,
			size_t width)
{
	struct xfer *xf = p->xf;
	int rc = -EBUSY;
	if (xf->dio && xf->leaves_serving < ENGINE_LEAVES_SERVING &&
	    peer_outbuf_len(p) < PEER_MAX_OUTBUF && swarm_have_test(xf->sw, piece))
		rc = diskio_leaves(xf->dio, p->uid, piece, width, r, sizeof *r);
	if (rc == 0) {
		xf->leaves_serving++;
		return;
	}
	uint8_t hdr[WIRE_HASH_MSG_LEN];
	size_t len = wire_put_hash_msg(hdr, WIRE_HASH_REJECT, r, 0);
	(void)peer_send(p, hdr, len, NULL, 0);
}

static void on_leaves(void *ctx, uint32_t peer, uint32_t piece, const uint8_t *leaves,
		      size_t width, int rc, const void *tag, size_t tag_len)
{
	struct xfer *xf = ctx;
	(void)piece;
	xf->leaves_serving--;
	struct peer *p = xf->stopped ? NULL : find_peer(xf, peer);
	if (!p || p->state != PEER_ACTIVE || tag_len != sizeof(struct wire_hash_req))
		return;
	struct wire_hash_req r;
	memcpy(&r, tag, sizeof r);
	uint8_t hdr[WIRE_HASH_MSG_LEN];
	if (rc != 0) {
		size_t len = wire_put_hash_msg(hdr, WIRE_HASH_REJECT, &r, 0);
		(void)peer_send(p, hdr, len, NULL, 0);
		return;
	}
	wire_put_hash_msg(hdr, WIRE_HASHES, &r, (uint32_t)width);
	(void)peer_send(p, hdr, sizeof hdr, leaves, width * 32);
}

static void on_read(void *ctx, uint32_t peer, struct block **bl, size_t n)
{
	struct xfer *xf = ctx;
	struct peer *p = xf->stopped ? NULL : find_peer(xf, peer);
	if (p) {
		p->reads_inflight--;
		p->reads_blocks -= n;
	}
	serve_count(xf, &xf->serve_reading, 0, n * SERVE_BLOCK_CHARGE);
	for (size_t i = 0; i < n; i++) {
		struct block *b = bl[i];
		if (p && b->rc == 0 && !p->am_choking) {
			wire_put_piece_hdr(b->hdr, b->piece, b->begin, b->len);
			uint32_t len = b->len;
			if (peer_send_owned(p, b->hdr, sizeof b->hdr + len, b) == 0) {
				/* At most what the read was charged: the total never grows here. */
				p->serve_out += sizeof b->hdr + len;
				serve_count(xf, &xf->serve_out, sizeof b->hdr + len, 0);
				p->up_total += len;
				p->up_tick += len;
				xf->up_total += len;
				xf->up_tick += len;
				xf->node->metrics.payload_bytes[METRICS_UP] += len;
			}
			continue; /* b belongs to the output buffer now, or is freed */
		} else if (p && b->rc != 0 && b->rc != -ECANCELED) {
			log_error("swarm %" PRId64 ": cannot read piece %u: %s", xf->sw->id, b->piece,
				  strerror(-b->rc));
		}
		free(b);
	}
	if (p)
		serve_requests(p);
	serve_freed(xf);
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
	if (!xf || xf->stopped || !xf->dio)
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
		struct block *bl[READ_BATCH];
		size_t nb = 0;
		while (p->n_inq > 0 && nb < READ_BATCH && nb < room) {
			struct block *b = malloc(sizeof *b);
			if (!b)
				break;
			b->peer = p->uid;
			b->piece = p->inq[0].index;
			b->begin = p->inq[0].begin;
			b->len = p->inq[0].length;
			uint32_t plen = picker_piece_len(xf->picker, b->piece);
			/* Bytes of file data; the rest (a pad) is zeros. */
			b->avail = b->begin >= plen ? 0 : plen - b->begin < b->len ? plen - b->begin : b->len;
			b->rc = -ECANCELED;
			bl[nb++] = b;
			memmove(p->inq, p->inq + 1, (p->n_inq - 1) * sizeof *p->inq);
			p->n_inq--;
		}
		if (nb == 0 || diskio_read(xf->dio, p->uid, bl, nb) != 0) {
			for (size_t i = 0; i < nb; i++)
				free(bl[i]);
			return;
		}
		p->reads_inflight++;
		p->reads_blocks += nb;
		serve_count(xf, &xf->serve_reading, nb * SERVE_BLOCK_CHARGE, 0);
	}
}

void engine_on_writable(struct peer *p)
{
	serve_requests(p);
}
