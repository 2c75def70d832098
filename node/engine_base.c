/* engine_base.c: the small swarm helpers every engine file may call
 * (random numbers, closing a list, limits and read mode, the adopted-file
 * error, rebuilding the picker, waking the peers that wait for the serving
 * budget).  Above peer.c and below everything else; it calls only peer.c. */
#include "config.h"

#include <inttypes.h>

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <event2/event.h>

#include "common/bytes.h"
#include "common/log.h"
#include "common/util.h"
#include "node/diskio.h"
#include "node/engine_state.h"
#include "node/node.h"
#include "node/swarm.h"
#include "transfer/merkle.h"
#include "transfer/picker.h"
#include "transfer/ratesplit.h"
#include "node/engine-parts.h"

static bool slightly_more(uint64_t want, uint64_t have);
static void set_peer_limit(struct peer *p, uint64_t up, uint64_t down);

uint64_t engine_rand(struct engine *eng)
{
	/* splitmix64 over a seed from libsodium: fast, and only for choices
	 * that need no secrecy (which piece, which peer). */
	return splitmix64_next(&eng->rng);
}

bool swarm_runnable(const struct swarm *sw)
{
	return sw->state == SWARM_DOWNLOADING || sw->state == SWARM_SEEDING ||
	       sw->state == SWARM_METADATA;
}

void close_list(struct peer *list, const char *why)
{
	while (list) {
		struct peer *next = list->next;
		peer_close(list, why);
		list = next;
	}
}

/* Reading through the bufferevent is needed only when a download limit
 * applies (libevent's buckets meter its reads); otherwise read directly. */
void update_read_mode(struct peer *p)
{
	if (p->state != PEER_ACTIVE || !p->xf)
		return;
	peer_set_fast_read(p, p->eng->node->cfg.download_limit == 0 &&
				      p->xf->sw->download_limit == 0);
}

/* Is `want` at most an eighth above `have` (and not below it)? */
static bool slightly_more(uint64_t want, uint64_t have)
{
	return want >= have && want - have <= have / 8 && (want == 0) == (have == 0);
}

/* Give a connection its share of its swarm's limits (0/0: none).  A share
 * that grows by an eighth or less is left as it is, so a steady connection
 * is not re-bucketed every second; a share that shrinks always applies, so
 * the shares in force never add up to more than the limit. */
static void set_peer_limit(struct peer *p, uint64_t up, uint64_t down)
{
	bool on = up || down, was = p->share_up || p->share_down;
	if (on == was && slightly_more(up, p->share_up) && slightly_more(down, p->share_down))
		return;
	if (conn_set_limit(p->conn, up, down) != 0)
		return;
	p->share_up = up;
	p->share_down = down;
}

/* A swarm's own limits, divided over its connections by what each used in
 * the last second (transfer/ratesplit.h), because a connection can be in
 * only one libevent rate-limit group and that is the daemon-wide one.  Run
 * every tick and whenever a connection becomes active. */
void apply_swarm_limits(struct xfer *xf)
{
	struct swarm *sw = xf->sw;
	size_t n = 0;
	for (struct peer *p = xf->peers; p; p = p->next)
		n += p->state == PEER_ACTIVE && p->conn;
	if (n == 0)
		return;
	if (!sw->upload_limit && !sw->download_limit) {
		for (struct peer *p = xf->peers; p; p = p->next)
			if (p->state == PEER_ACTIVE && p->conn)
				set_peer_limit(p, 0, 0);
		return;
	}
	double *used = malloc(2 * n * sizeof *used);
	uint64_t *cur = malloc(4 * n * sizeof *cur);
	if (!used || !cur) {
		free(used);
		free(cur);
		return;
	}
	uint64_t *up = cur + 2 * n, *down = cur + 3 * n;
	size_t i = 0;
	for (struct peer *p = xf->peers; p; p = p->next) {
		if (p->state != PEER_ACTIVE || !p->conn)
			continue;
		used[i] = p->up_rate;
		used[n + i] = p->down_rate;
		cur[i] = p->share_up;
		cur[n + i] = p->share_down;
		i++;
	}
	ratesplit_shares(sw->upload_limit, n, used, cur, up);
	ratesplit_shares(sw->download_limit, n, used + n, cur + n, down);
	i = 0;
	for (struct peer *p = xf->peers; p; p = p->next)
		if (p->state == PEER_ACTIVE && p->conn) {
			set_peer_limit(p, up[i], down[i]);
			i++;
		}
	free(used);
	free(cur);
}

/* An adopted file (STORAGE_READ) is never written, so it is never repaired
 * either: name it in the error.  `why` is appended to the path. */
void adopted_changed(struct xfer *xf, size_t file, const char *why)
{
	struct swarm *sw = xf->sw;
	char root[PATH_MAX];
	swarm_content_root(sw, root, sizeof root);
	snprintf(sw->error, sizeof sw->error,
		 "%s/%s changed since it was adopted%s; shoal never writes into a file it did "
		 "not create: remove the swarm and join again with --overwrite to replace it",
		 root, sw->meta->files[file].path, why);
}

/* Bytes left us by the serving budget: wake the peers that wait for it.
 * (A stopped swarm's engine may be gone: its peers are closed anyway.) */
void serve_freed(struct xfer *xf)
{
	if (!xf->stopped && xf->eng->serve_waiting)
		event_active(xf->eng->serve_wake, EV_TIMEOUT, 0);
}

/* ------------------------------------------------------- awake list
 *
 * The tick (engine.c) looks only at the swarms on eng->awake, so a daemon
 * holding tens of thousands of idle seeds does no per-second work for
 * them.  A swarm goes on the list when it starts and whenever something
 * gives its tick work: a peer joins it, a verified bitmap or address rows
 * wait to be written (xfer_wake's callers).  The tick takes it off again
 * once xfer_can_sleep: complete, no peer, nothing to flush or sync, rates
 * decayed; it then gives back its picker and disk layer (xfer_release_disk,
 * closing its files), made again when a peer comes (xfer_wake_disk).  A
 * complete swarm starts without them.  An incomplete swarm never sleeps (it
 * dials and asks for metadata). */

void xfer_wake(struct xfer *xf)
{
	if (xf->awake || xf->stopped)
		return;
	struct engine *eng = xf->eng;
	xf->awake = true;
	xf->awake_prev = NULL;
	xf->awake_next = eng->awake;
	if (eng->awake)
		eng->awake->awake_prev = xf;
	eng->awake = xf;
}

void xfer_sleep(struct xfer *xf)
{
	if (!xf->awake)
		return;
	if (xf->awake_prev)
		xf->awake_prev->awake_next = xf->awake_next;
	else
		xf->eng->awake = xf->awake_next;
	if (xf->awake_next)
		xf->awake_next->awake_prev = xf->awake_prev;
	xf->awake = false;
	xf->awake_next = xf->awake_prev = NULL;
}

bool xfer_can_sleep(const struct xfer *xf)
{
	const struct swarm *sw = xf->sw;
	if (xf->stopped)
		return true;
	return sw->meta && swarm_done(sw) && !xf->peers &&
	       !xf->dirty && xf->n_rows == 0 && !xf->disk_full && !xf->mdf &&
	       (!xf->dio || diskio_quiet(xf->dio)) && xf->down_rate < 1.0 && xf->up_rate < 1.0;
}

/* (Re)build the picker from the metadata's piece sizes and the verified
 * bitmap: at set-up, and after a check changed the bitmap. */
int rebuild_picker(struct xfer *xf)
{
	const struct metainfo *mi = xf->sw->meta;
	uint32_t *lens = calloc(mi->total_pieces ? mi->total_pieces : 1, sizeof *lens);
	if (!lens)
		return -ENOMEM;
	for (uint32_t p = 0; !mi->has_v2 && p < mi->total_pieces; p++)
		lens[p] = (uint32_t)metainfo_v1_piece_size(mi, p); /* v1: pieces span files */
	for (size_t f = 0; mi->has_v2 && f < mi->file_count; f++)
		for (uint32_t i = 0; i < mi->files[f].piece_count; i++)
			lens[mi->files[f].first_piece + i] =
				(uint32_t)merkle_piece_size(mi->files[f].size, mi->piece_length, i);
	struct picker *np = NULL;
	int rc = picker_new(lens, mi->total_pieces, &np);
	free(lens);
	struct bitfield have;
	if (rc == 0 && (rc = bitfield_init(&have, mi->total_pieces)) == 0) {
		for (uint32_t i = 0; i < mi->total_pieces; i++)
			if (swarm_have_test(xf->sw, i))
				bitfield_set(&have, i);
		rc = picker_load_have(np, &have);
		bitfield_destroy(&have);
	}
	if (rc) {
		picker_free(np);
		return rc;
	}
	picker_free(xf->picker);
	xf->picker = np;
	proof_reset_all(xf); /* blocks verified for the old picker mean nothing now */
	if (select_apply(xf) != 0)
		log_error("swarm %" PRId64 ": cannot set its piece priorities", xf->sw->id);
	/* Disk work queued for the old picker is dropped; jobs in flight for
	 * it come back stale and are ignored, and writes not yet run write
	 * nothing (diskio_new_generation). */
	if (xf->dio)
		diskio_new_generation(xf->dio);
	return 0;
}
