/* engine.c: the transfer engine's swarm logic: which peers to talk to, what
 * to request (through the picker), what to serve, verifying pieces against
 * their BEP 52 hashes on the workers, metadata (BEP 9) and piece layers
 * (BEP 52 hash requests) for magnet links, peer exchange (BEP 11), choking.
 * Connections themselves live in peer.c. */
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

/* Our BEP 10 extension ids. */
#define EXT_UT_METADATA 1
#define EXT_UT_PEX 2

static void tick(evutil_socket_t fd, short what, void *arg);
static void reap(evutil_socket_t fd, short what, void *arg);
static void serve_wake(evutil_socket_t fd, short what, void *arg);
static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
		      int len, void *arg);
static void request_more(struct peer *p);
static void serve_requests(struct peer *p);
static void update_interest(struct peer *p);
static int install_meta(struct xfer *xf);
static void free_layerfetch(struct xfer *xf);
static void flush_have_now(struct xfer *xf);
static void apply_swarm_limits(struct xfer *xf);
static void update_read_mode(struct peer *p);
static void job_done(struct xfer *xf);
static void connect_more(struct xfer *xf, uint64_t now);
static void drop_write_queue(struct xfer *xf);
static bool write_budget_full(const struct xfer *xf);
static void serve_freed(struct xfer *xf);
static void ban_host(struct xfer *xf, const struct sockaddr *sa);
static void flush_peer_rows(struct xfer *xf);

uint64_t engine_rand(struct engine *eng)
{
	/* splitmix64 over a seed from libsodium: fast, and only for choices
	 * that need no secrecy (which piece, which peer). */
	return splitmix64_next(&eng->rng);
}

/* ----------------------------------------------------------- lifecycle */

static struct evconnlistener *listen_on(struct engine *eng, int family, uint16_t port)
{
	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof ss);
	socklen_t len;
	unsigned flags = LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC;
	if (family == AF_INET6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
		s6->sin6_family = AF_INET6;
		s6->sin6_addr = in6addr_any;
		s6->sin6_port = htons(port);
		len = sizeof *s6;
		flags |= LEV_OPT_BIND_IPV6ONLY;
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
		s4->sin_family = AF_INET;
		s4->sin_addr.s_addr = htonl(INADDR_ANY);
		s4->sin_port = htons(port);
		len = sizeof *s4;
	}
	return evconnlistener_new_bind(eng->node->base, on_accept, eng, flags, 128,
				       (struct sockaddr *)&ss, (int)len);
}

/* The daemon-wide limits (node/ratelimit.h says how they are kept). */
int engine_set_limits(struct engine *eng, uint64_t up, uint64_t down)
{
	if (ratelimit_set(eng->limit, up, down) != 0)
		return -EINVAL;
	eng->node->cfg.upload_limit = up;
	eng->node->cfg.download_limit = down;
	return 0;
}

/* Reading through the bufferevent is needed only when a download limit
 * applies (libevent's buckets meter its reads); otherwise read directly. */
static void update_read_mode(struct peer *p)
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
	bool on = up || down, was = p->limit_cfg != NULL;
	if (on == was && slightly_more(up, p->share_up) && slightly_more(down, p->share_down))
		return;
	struct ev_token_bucket_cfg *cfg = on ? ratelimit_conn_cfg(up, down) : NULL;
	if (on && !cfg)
		return;
	/* libevent keeps a connection's tick count when its bucket is given a
	 * configuration with another tick length, and a longer tick would then
	 * wait several times its age for the next refill: clear the old one
	 * first, so the new one starts from a fresh count. */
	if (p->limit_cfg)
		bufferevent_set_rate_limit(p->bev, NULL);
	bufferevent_set_rate_limit(p->bev, cfg);
	if (p->limit_cfg)
		ev_token_bucket_cfg_free(p->limit_cfg); /* the connection no longer uses it */
	p->limit_cfg = cfg;
	p->share_up = up;
	p->share_down = down;
}

/* A swarm's own limits, divided over its connections by what each used in
 * the last second (transfer/ratesplit.h), because a connection can be in
 * only one libevent rate-limit group and that is the daemon-wide one.  Run
 * every tick and whenever a connection becomes active. */
static void apply_swarm_limits(struct xfer *xf)
{
	struct swarm *sw = xf->sw;
	size_t n = 0;
	for (struct peer *p = xf->peers; p; p = p->next)
		n += p->state == PEER_ACTIVE && p->bev;
	if (n == 0)
		return;
	if (!sw->upload_limit && !sw->download_limit) {
		for (struct peer *p = xf->peers; p; p = p->next)
			if (p->state == PEER_ACTIVE && p->bev)
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
		if (p->state != PEER_ACTIVE || !p->bev)
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
		if (p->state == PEER_ACTIVE && p->bev) {
			set_peer_limit(p, up[i], down[i]);
			i++;
		}
	free(used);
	free(cur);
}

struct engine *engine_new(struct node *node, char *err, size_t err_len)
{
	struct engine *eng = calloc(1, sizeof *eng);
	if (!eng) {
		snprintf(err, err_len, "out of memory");
		return NULL;
	}
	eng->node = node;
	randombytes_buf(&eng->rng, sizeof eng->rng);
	/* Azureus-style peer id: client and version, then random bytes. */
	memcpy(eng->peer_id, "-SH0100-", 8);
	randombytes_buf(eng->peer_id + 8, WIRE_PEER_ID_LEN - 8);
	eng->listen4 = listen_on(eng, AF_INET, node->cfg.peer_port);
	if (!eng->listen4) {
		snprintf(err, err_len, "cannot listen for peers on TCP port %u: %s",
			 (unsigned)node->cfg.peer_port, strerror(errno));
		goto fail;
	}
	eng->listen6 = listen_on(eng, AF_INET6, node->cfg.peer_port);
	if (!eng->listen6)
		log_info("no IPv6 peer listener (%s); IPv4 only", strerror(errno));
	/* One rate-limit group for every peer connection, even when unlimited,
	 * so limits can change at run time. */
	eng->limit = ratelimit_new(node->base, node->cfg.upload_limit, node->cfg.download_limit);
	if (!eng->limit) {
		snprintf(err, err_len, "cannot set up rate limits");
		goto fail;
	}
	eng->tick = event_new(node->base, -1, EV_PERSIST, tick, eng);
	eng->reaper = event_new(node->base, -1, 0, reap, eng);
	eng->serve_wake = event_new(node->base, -1, 0, serve_wake, eng);
	struct timeval one = { 1, 0 };
	if (!eng->tick || !eng->reaper || !eng->serve_wake || event_add(eng->tick, &one) != 0) {
		snprintf(err, err_len, "cannot create timers");
		goto fail;
	}
	return eng;
fail:
	engine_free(eng);
	return NULL;
}

static void close_list(struct peer *list, const char *why)
{
	while (list) {
		struct peer *next = list->next;
		peer_close(list, why);
		list = next;
	}
}

void engine_free(struct engine *eng)
{
	if (!eng)
		return;
	for (struct swarm *sw = eng->node->swarms; sw; sw = sw->next) {
		engine_swarm_stop(eng, sw);
		if (sw->xfer)
			flush_have_now(sw->xfer);
	}
	close_list(eng->pending, "shutting down");
	engine_reap(eng);
	if (eng->listen4)
		evconnlistener_free(eng->listen4);
	if (eng->listen6)
		evconnlistener_free(eng->listen6);
	if (eng->tick)
		event_free(eng->tick);
	if (eng->reaper)
		event_free(eng->reaper);
	if (eng->serve_wake)
		event_free(eng->serve_wake);
	ratelimit_free(eng->limit);
	free(eng);
}

static void reap(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	engine_reap(arg);
}

unsigned engine_peer_count(const struct engine *eng)
{
	return eng ? eng->n_peers : 0;
}

/* ------------------------------------------------------- swarm state */

static bool swarm_runnable(const struct swarm *sw)
{
	return sw->state == SWARM_DOWNLOADING || sw->state == SWARM_SEEDING ||
	       sw->state == SWARM_METADATA;
}

/* Set up picker and storage once the metadata is known. */
static int rebuild_picker(struct xfer *xf);

/* A join whose metadata just arrived (magnet): decide what happens to
 * whatever is already at its files' names, and record that before any
 * file is created, so a crash in between never turns our own files into
 * "the user's".  Files in the way fail the swarm with a message naming
 * them (node/joincheck.h has the rules). */
static int check_fresh_join(struct xfer *xf)
{
	struct swarm *sw = xf->sw;
	struct join_check *jc = NULL;
	int rc = join_check_new(sw->root, sw->meta, sw->overwrite, &jc);
	if (rc) {
		snprintf(sw->error, sizeof sw->error, "cannot use %s: %s%s", sw->root, strerror(-rc),
			 rc == -ELOOP ? " (a symbolic link: shoal never downloads through one)" : "");
		return rc;
	}
	join_check_refuse_unhashed(jc);
	const char *conflict = join_check_conflict(jc);
	if (conflict) {
		snprintf(sw->error, sizeof sw->error, "%s", conflict);
		join_check_free(jc);
		return -EEXIST;
	}
	sw->file_access = join_check_access(jc);
	join_check_free(jc);
	if (!sw->file_access)
		return -ENOMEM;
	if (swarm_db_store_meta(xf->node, sw) != 0) {
		snprintf(sw->error, sizeof sw->error, "cannot record the metadata");
		return -EIO;
	}
	return 0;
}

/* An adopted file (STORAGE_READ) is never written, so it is never repaired
 * either: name it in the error.  `why` is appended to the path. */
static void adopted_changed(struct xfer *xf, size_t file, const char *why)
{
	struct swarm *sw = xf->sw;
	char root[PATH_MAX];
	swarm_content_root(sw, root, sizeof root);
	snprintf(sw->error, sizeof sw->error,
		 "%s/%s changed since it was adopted%s; shoal never writes into a file it did "
		 "not create: remove the swarm and join again with --overwrite to replace it",
		 root, sw->meta->files[file].path, why);
}

/* Does every adopted file still have all its pieces?  A piece of one that a
 * check dropped could only come back by writing into the user's file, so
 * no such piece is ever requested: the swarm stops in error instead
 * (-EACCES, sw->error set). */
static int check_adopted(struct xfer *xf)
{
	struct swarm *sw = xf->sw;
	const struct metainfo *mi = sw->meta;
	if (sw->role != SWARM_ROLE_JOIN || !sw->file_access)
		return 0;
	for (size_t f = 0; f < mi->file_count; f++) {
		if (sw->file_access[f] != STORAGE_READ)
			continue;
		for (uint32_t i = 0; i < mi->files[f].piece_count; i++) {
			if (!swarm_have_test(sw, mi->files[f].first_piece + i)) {
				adopted_changed(xf, f, "");
				return -EACCES;
			}
		}
	}
	return 0;
}

/* Stop the swarm in error (sw->error says why) and record that. */
static void swarm_fail(struct xfer *xf)
{
	struct swarm *sw = xf->sw;
	sw->state = SWARM_ERROR;
	log_error("swarm %" PRId64 ": %s", sw->id, sw->error);
	engine_swarm_stop(xf->eng, sw);
	if (swarm_db_save_state(xf->node, sw) != 0)
		log_error("swarm %" PRId64 ": cannot record its error", sw->id);
}

static int xfer_setup_meta(struct xfer *xf)
{
	struct swarm *sw = xf->sw;
	const struct metainfo *mi = sw->meta;
	struct join_layout layout = { 0 };
	int rc;
	if (sw->role == SWARM_ROLE_JOIN && (rc = mkdir_p(sw->root, 0755)) != 0) {
		snprintf(sw->error, sizeof sw->error, "cannot create %s: %s", sw->root, strerror(-rc));
		return rc;
	}
	if (sw->role == SWARM_ROLE_JOIN && !sw->file_access && (rc = check_fresh_join(xf)) != 0)
		return rc;
	if ((rc = join_layout_init(&layout, mi, sw->role == SWARM_ROLE_JOIN, sw->file_access)))
		return rc;
	rc = storage_new(sw->root, layout.files, layout.n, (uint32_t)mi->piece_length,
			 STORAGE_MAX_OPEN_DEFAULT, &xf->storage);
	if (rc) {
		snprintf(sw->error, sizeof sw->error, "cannot use %s: %s%s", sw->root, strerror(-rc),
			 rc == -ELOOP ? " (a symbolic link: shoal never downloads through one)" : "");
		goto done;
	}
	size_t bad = 0;
	if (sw->role == SWARM_ROLE_JOIN && (rc = storage_create_files(xf->storage, &bad)) != 0) {
		if (rc == -ENOENT && layout.files[bad].access == STORAGE_READ)
			adopted_changed(xf, bad, " (it is gone)");
		else
			snprintf(sw->error, sizeof sw->error, "cannot create %s/%s: %s%s", sw->root,
				 layout.files[bad].path, strerror(-rc),
				 rc == -EEXIST ? " (it appeared after the join was checked; shoal "
						 "never writes into a file it did not create)"
				 : rc == -ELOOP || rc == -ENOTDIR
					 ? " (a symbolic link or file is in the way; shoal never "
					   "follows one)"
					 : "");
		/* Take back what this attempt created (files and directories),
		 * so a failed join leaves nothing behind. */
		storage_undo_create(xf->storage);
		storage_free(xf->storage);
		xf->storage = NULL;
		goto done;
	}
	/* Created now: ours to reopen from here on, and recorded as ours only
	 * now that they exist (files.owned "to create" until here). */
	bool created = false;
	for (size_t f = 0; sw->file_access && f < mi->file_count; f++) {
		if (sw->file_access[f] == STORAGE_CREATE || sw->file_access[f] == STORAGE_REPLACE) {
			sw->file_access[f] = STORAGE_OWN;
			created = true;
		}
	}
	if (created && swarm_db_save_owned(xf->node, sw) != 0) {
		snprintf(sw->error, sizeof sw->error, "cannot record the files created");
		rc = -EIO;
		goto done;
	}
	if (sw->role == SWARM_ROLE_JOIN && (rc = check_adopted(xf)) != 0)
		goto done;
	size_t nb = (mi->total_pieces + 7) / 8;
	if (!xf->unsynced)
		xf->unsynced = calloc(nb ? nb : 1, 1);
	if (!xf->syncing)
		xf->syncing = calloc(nb ? nb : 1, 1);
	if (!xf->unsynced || !xf->syncing) {
		rc = -ENOMEM;
		goto done;
	}
	rc = rebuild_picker(xf);
	xf->layers_pending = !mi->all_layers;
done:
	if (rc && !xf->picker) {
		/* Set up again from scratch at the next start; no job has it. */
		storage_free(xf->storage);
		xf->storage = NULL;
	}
	join_layout_destroy(&layout);
	return rc;
}

static void load_peer(void *ctx, const char *host, uint16_t port, const char *source,
		      bool banned)
{
	struct swarm *sw = ctx;
	if (engine_add_peer(sw->xfer->eng, sw, host, port, source) != 0)
		return;
	if (banned) {
		struct known_peer *kp = &sw->xfer->known[sw->xfer->n_known - 1];
		kp->banned = true;
		ban_host(sw->xfer, (const struct sockaddr *)&kp->addr);
	}
}

/* (Re)build the picker from the metadata's piece sizes and the verified
 * bitmap: at set-up, and after a check changed the bitmap. */
static int rebuild_picker(struct xfer *xf)
{
	const struct metainfo *mi = xf->sw->meta;
	uint32_t *lens = calloc(mi->total_pieces ? mi->total_pieces : 1, sizeof *lens);
	if (!lens)
		return -ENOMEM;
	for (size_t f = 0; f < mi->file_count; f++)
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
	/* Work queued for the old picker is dropped; jobs in flight for it
	 * come back with an old picker_gen and are ignored. */
	xf->picker_gen++;
	drop_write_queue(xf);
	xf->n_vq = 0;
	return 0;
}

void engine_swarm_have_changed(struct engine *eng, struct swarm *sw)
{
	struct xfer *xf = sw->xfer;
	if (!eng || !xf || !xf->picker)
		return;
	bool running = !xf->stopped;
	/* Peers hold availability counted into the old picker: reconnect. */
	engine_swarm_stop(eng, sw);
	if (rebuild_picker(xf) != 0)
		log_error("swarm %" PRId64 ": cannot rebuild its piece picker", sw->id);
	if (check_adopted(xf) != 0) {
		swarm_fail(xf);
		return;
	}
	if (sw->role == SWARM_ROLE_JOIN && sw->state == SWARM_SEEDING &&
	    sw->have_count < sw->meta->total_pieces)
		sw->state = SWARM_DOWNLOADING;
	if (running && engine_swarm_start(eng, sw) != 0)
		log_error("swarm %" PRId64 ": cannot restart transfers", sw->id);
}

int engine_swarm_start(struct engine *eng, struct swarm *sw)
{
	if (!eng)
		return 0;
	struct xfer *xf = sw->xfer;
	if (xf && !xf->stopped)
		return 0;
	if (!xf) {
		xf = calloc(1, sizeof *xf);
		if (!xf)
			return -ENOMEM;
		xf->eng = eng;
		xf->node = eng->node;
		xf->sw = sw;
		pthread_mutex_init(&xf->io_lock, NULL);
		choker_state_init(&xf->choker);
		sw->xfer = xf;
		xf->loading_peers = true;
		swarm_db_load_peers(eng->node, sw, load_peer, sw);
		xf->loading_peers = false;
	}
	xf->stopped = false;
	if (sw->meta && !xf->picker) {
		int rc = xfer_setup_meta(xf);
		if (rc) {
			sw->state = SWARM_ERROR;
			if (!sw->error[0])
				snprintf(sw->error, sizeof sw->error, "cannot start: %s", strerror(-rc));
			xf->stopped = true;
			if (swarm_db_save_state(xf->node, sw) != 0)
				log_error("swarm %" PRId64 ": cannot record its error", sw->id);
			return 0;
		}
	} else if (sw->meta && xf->picker && rebuild_picker(xf) != 0) {
		/* Resumed: blocks that were being written or verified at the
		 * pause had their transitions skipped; start them afresh. */
		log_error("swarm %" PRId64 ": cannot rebuild its piece picker", sw->id);
	}
	if (sw->meta && sw->role == SWARM_ROLE_JOIN)
		sw->state = sw->have_count == sw->meta->total_pieces ? SWARM_SEEDING : SWARM_DOWNLOADING;
	else if (!sw->meta)
		sw->state = SWARM_METADATA;
	/* Retry every remembered address soon. */
	for (size_t i = 0; i < xf->n_known; i++)
		xf->known[i].next_try_ms = 0;
	return 0;
}

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

static bool bit_test(const uint8_t *bm, uint32_t i)
{
	return (bm[i >> 3] & (0x80 >> (i & 7))) != 0;
}

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

struct sync_job {
	struct xfer *xf;     /* on the worker: only storage and io_lock */
	uint8_t *pieces;     /* owned: bitmap of the pieces to make durable; the
			      * worker clears each one that became durable */
	int64_t *mtimes_ns;  /* owned, per file: its mtime just after a
			      * successful fdatasync, else -1 (set so by
			      * flush_have: a job that never runs has none) */
	uint8_t *failed;     /* owned, per file: 1 when its sync failed (its
			      * pieces in `pieces` are lost, not pending) */
	size_t nbytes, nfiles;
	int rc;              /* the first error, for the log */
};

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
			if (!bit_test(j->pieces, p))
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
			if (!bit_test(j->pieces, p))
				continue;
			size_t fi = storage_piece_file(xf->storage, p);
			if (fi < nf && bad[fi])
				storage_sync_failed(xf->storage, p);
			else
				j->pieces[b] &= (uint8_t)~(0x80 >> k);
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
 * they and every piece in progress there are downloaded again.  Returns the
 * number of pieces dropped. */
static size_t unverify_files(struct xfer *xf, const uint8_t *lost, const uint8_t *failed,
			     size_t nfiles)
{
	struct swarm *sw = xf->sw;
	size_t dropped = 0;
	for (uint32_t p = 0; sw->meta && p < sw->meta->total_pieces; p++) {
		bool pending = (lost && bit_test(lost, p)) || bit_test(xf->unsynced, p) ||
			       bit_test(xf->syncing, p);
		if (!pending)
			continue;
		size_t fi = piece_file_index(xf, p);
		if (fi >= nfiles || !failed[fi])
			continue;
		if (bit_test(xf->unsynced, p)) {
			xf->unsynced[p >> 3] &= (uint8_t)~(0x80 >> (p & 7));
			xf->n_unsynced--;
		}
		xf->syncing[p >> 3] &= (uint8_t)~(0x80 >> (p & 7));
		if (swarm_have_test(sw, p)) {
			swarm_have_clear(sw, p);
			dropped++;
		}
	}
	if (!dropped || !xf->picker)
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
			if (!bit_test(j->pieces, p) || !bit_test(xf->syncing, p))
				continue;
			size_t fi = piece_file_index(xf, p);
			if (fi < j->nfiles && j->failed[fi])
				continue; /* unverify_files below */
			if (!bit_test(xf->unsynced, p)) {
				xf->unsynced[b] |= (uint8_t)(0x80 >> k);
				xf->n_unsynced++;
			}
			xf->syncing[b] &= (uint8_t)~(0x80 >> k);
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
static void flush_have(struct xfer *xf)
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
static void flush_have_now(struct xfer *xf)
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
		if (bit_test(xf->syncing, p) && st_f[fi] < 2) {
			storage_sync_failed(xf->storage, p); /* its fdatasync may not be done */
			st_f[fi] = 2;
		} else if (bit_test(xf->unsynced, p) && st_f[fi] == 0) {
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
		if (bit_test(xf->unsynced, p)) {
			xf->unsynced[p >> 3] &= (uint8_t)~(0x80 >> (p & 7));
			xf->n_unsynced--;
		}
		xf->syncing[p >> 3] &= (uint8_t)~(0x80 >> (p & 7));
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
static void note_unsynced(struct xfer *xf, uint32_t piece)
{
	if (bit_test(xf->unsynced, piece))
		return;
	xf->unsynced[piece >> 3] |= (uint8_t)(0x80 >> (piece & 7));
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
	free(xf->known);
	mdfetch_free(xf->mdf);
	free(xf);
	sw->xfer = NULL;
}

/* A worker job of this swarm has come back. */
static void job_done(struct xfer *xf)
{
	if (--xf->jobs == 0 && xf->stopped)
		swarm_job_ended(xf->node, xf->sw);
}

/* -------------------------------------------------------- known peers */

/* The same IP address (any port)? */
static bool same_host(const struct sockaddr_storage *a, const struct sockaddr *b)
{
	if (a->ss_family != b->sa_family)
		return false;
	if (b->sa_family == AF_INET)
		return ((const struct sockaddr_in *)a)->sin_addr.s_addr ==
		       ((const struct sockaddr_in *)b)->sin_addr.s_addr;
	return memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
		      &((const struct sockaddr_in6 *)b)->sin6_addr, 16) == 0;
}

/* The same IP address and port? */
static bool same_addr(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	if (!same_host(a, (const struct sockaddr *)b))
		return false;
	if (a->ss_family == AF_INET)
		return ((const struct sockaddr_in *)a)->sin_port ==
		       ((const struct sockaddr_in *)b)->sin_port;
	return ((const struct sockaddr_in6 *)a)->sin6_port == ((const struct sockaddr_in6 *)b)->sin6_port;
}

/* Numeric host and port of an address ("?" and 0 for another family). */
static uint16_t addr_host(const struct sockaddr_storage *ss, char *host, size_t len)
{
	uint16_t port = 0;
	if (addr_host_port((const struct sockaddr *)ss, host, len, &port) != 0)
		return 0;
	return port;
}

/* ------------------------------------------------------------- bans
 *
 * A ban (strike) covers three things, because a banned peer chooses how it
 * comes back (docs/security.md, "Bans"):
 *   - its host (the IP address, any port): incoming connections from it are
 *     refused at their BitTorrent handshake, before anything is sent to
 *     them, whether or not they would send an extension handshake;
 *   - its peer id, refused from any address and in either direction;
 *   - its address-book entry (IP and listen port), never dialled again.
 * Outgoing dials to other ports of a banned host stay allowed: we dial only
 * addresses someone gave us, and several nodes may share one IP (a NAT, or
 * every daemon of a loopback test). */

static bool ban_host_of(const struct sockaddr *sa, struct ban_host *out)
{
	memset(out, 0, sizeof *out);
	if (sa->sa_family == AF_INET) {
		out->family = 4;
		memcpy(out->addr, &((const struct sockaddr_in *)sa)->sin_addr, 4);
		return true;
	}
	if (sa->sa_family == AF_INET6) {
		out->family = 6;
		memcpy(out->addr, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
		return true;
	}
	return false;
}

static bool host_banned(const struct xfer *xf, const struct sockaddr *sa)
{
	struct ban_host h;
	if (!ban_host_of(sa, &h))
		return false;
	for (size_t i = 0; i < xf->bans.n_hosts; i++)
		if (memcmp(&xf->bans.hosts[i], &h, sizeof h) == 0)
			return true;
	return false;
}

static void ban_host(struct xfer *xf, const struct sockaddr *sa)
{
	struct banlist *b = &xf->bans;
	struct ban_host h;
	if (!ban_host_of(sa, &h) || host_banned(xf, sa))
		return;
	b->hosts[b->next_host] = h;
	b->next_host = (b->next_host + 1) % ENGINE_MAX_BANS;
	if (b->n_hosts < ENGINE_MAX_BANS)
		b->n_hosts++;
}

static bool id_banned(const struct xfer *xf, const uint8_t id[WIRE_PEER_ID_LEN])
{
	for (size_t i = 0; i < xf->bans.n_ids; i++)
		if (memcmp(xf->bans.ids[i], id, WIRE_PEER_ID_LEN) == 0)
			return true;
	return false;
}

static void ban_id(struct xfer *xf, const uint8_t id[WIRE_PEER_ID_LEN])
{
	struct banlist *b = &xf->bans;
	if (id_banned(xf, id))
		return;
	memcpy(b->ids[b->next_id], id, WIRE_PEER_ID_LEN);
	b->next_id = (b->next_id + 1) % ENGINE_MAX_BANS;
	if (b->n_ids < ENGINE_MAX_BANS)
		b->n_ids++;
}

/* Address-book rows wait in xf->rows and go to SQLite in one transaction
 * (each commit is an fdatasync of the WAL, on the event loop): at the next
 * tick, when ENGINE_PEER_WRITE_BATCH wait, and at stop.  A PEX message of
 * 50 addresses costs one commit, not 50.  The address book is a cache: a
 * crash loses at most the last second's addresses; a ban lost so is made
 * again by the next bad data. */
static void flush_peer_rows(struct xfer *xf)
{
	if (xf->n_rows == 0)
		return;
	if (xf->sw->in_db) {
		(void)swarm_db_save_peers(xf->node, xf->sw, xf->rows, xf->n_rows); /* logs */
		xf->eng->peer_db_commits++;
	}
	xf->n_rows = 0;
}

static void queue_peer_row(struct xfer *xf, const char *host, uint16_t port, const char *source,
			   bool banned)
{
	if (xf->n_rows == ENGINE_PEER_WRITE_BATCH)
		flush_peer_rows(xf);
	struct swarm_peer_row *r = &xf->rows[xf->n_rows++];
	snprintf(r->host, sizeof r->host, "%s", host);
	r->port = port;
	snprintf(r->source, sizeof r->source, "%s", source);
	r->banned = banned;
	if (xf->stopped)
		flush_peer_rows(xf); /* no tick runs for a stopped swarm */
}

static struct known_peer *known_find(struct xfer *xf, const struct sockaddr_storage *ss)
{
	for (size_t i = 0; i < xf->n_known; i++)
		if (same_addr(&xf->known[i].addr, ss))
			return &xf->known[i];
	return NULL;
}

static struct known_peer *known_add(struct xfer *xf, const struct sockaddr_storage *ss,
				    socklen_t len, const char *source)
{
	struct known_peer *kp = known_find(xf, ss);
	if (kp)
		return kp;
	if (xf->n_known >= ENGINE_MAX_KNOWN_PEERS)
		return NULL;
	/* Never ourselves: our own listen port on a local address. */
	char host[INET6_ADDRSTRLEN] = "";
	uint16_t port = addr_host(ss, host, sizeof host);
	if (port == 0)
		return NULL;
	if (port == xf->node->cfg.peer_port) {
		if (ss->ss_family == AF_INET &&
		    (ntohl(((const struct sockaddr_in *)ss)->sin_addr.s_addr) >> 24) == 127)
			return NULL;
		if (ss->ss_family == AF_INET6 &&
		    IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)ss)->sin6_addr))
			return NULL;
	}
	struct known_peer *p = realloc(xf->known, (xf->n_known + 1) * sizeof *p);
	if (!p)
		return NULL;
	/* Peers point into this array: fix them up after a move. */
	if (p != xf->known)
		for (struct peer *pr = xf->peers; pr; pr = pr->next)
			if (pr->known)
				pr->known = p + (pr->known - xf->known);
	xf->known = p;
	kp = &xf->known[xf->n_known++];
	memset(kp, 0, sizeof *kp);
	memcpy(&kp->addr, ss, len);
	kp->len = len;
	snprintf(kp->source, sizeof kp->source, "%s", source);
	if (!xf->loading_peers)
		queue_peer_row(xf, host, port, source, false);
	return kp;
}

int engine_add_peer(struct engine *eng, struct swarm *sw, const char *host, uint16_t port,
		    const char *source)
{
	(void)eng;
	if (!sw->xfer)
		return -EINVAL;
	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof ss);
	socklen_t len;
	struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
	if (inet_pton(AF_INET, host, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons(port);
		len = sizeof *s4;
	} else if (inet_pton(AF_INET6, host, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(port);
		len = sizeof *s6;
	} else {
		return -EINVAL;
	}
	struct known_peer *kp = known_add(sw->xfer, &ss, len, source);
	if (!kp)
		return -ENOSPC;
	kp->next_try_ms = 0;
	/* What the user gave (--peer, a magnet's x.pe) is recorded before the
	 * request returns: a crash in the next second must not forget the one
	 * address a join may have. */
	if (!sw->xfer->loading_peers && (strcmp(source, "user") == 0 || strcmp(source, "magnet") == 0))
		flush_peer_rows(sw->xfer);
	if (!sw->xfer->loading_peers)
		connect_more(sw->xfer, now_ms()); /* now, not at the next tick */
	return 0;
}

/* Open connections to remembered peers while there is room. */
static void connect_more(struct xfer *xf, uint64_t now)
{
	struct engine *eng = xf->eng;
	if (xf->stopped || !swarm_runnable(xf->sw))
		return;
	/* A complete swarm waits to be asked; it does not dial out. */
	if (xf->sw->meta && xf->sw->have_count == xf->sw->meta->total_pieces)
		return;
	for (size_t i = 0; i < xf->n_known; i++) {
		if (xf->n_peers >= ENGINE_MAX_PEERS_SWARM || eng->n_peers >= ENGINE_MAX_PEERS_TOTAL)
			return;
		struct known_peer *kp = &xf->known[i];
		if (kp->connected || kp->banned || kp->next_try_ms > now)
			continue;
		/* Back off: 2 s, 4 s, ... up to 5 minutes. */
		uint64_t wait = 2000ULL << (kp->failures < 8 ? kp->failures : 8);
		kp->next_try_ms = now + (wait > 300000 ? 300000 : wait);
		kp->failures++;
		peer_connect(eng, xf, kp);
	}
}

/* ------------------------------------------------------------ accept */

/* One host may not hold every handshake slot (opening connections and
 * never handshaking, each for PEER_HANDSHAKE_TIMEOUT_MS, then again): once
 * half the slots are taken, an address that already holds
 * ENGINE_MAX_HANDSHAKING_PER_ADDR of them gets no more. */
static bool handshake_slot_free(const struct engine *eng, const struct sockaddr *sa)
{
	if (eng->n_pending >= ENGINE_MAX_HANDSHAKING)
		return false;
	if (eng->n_pending < ENGINE_MAX_HANDSHAKING / 2)
		return true;
	unsigned same = 0;
	for (const struct peer *p = eng->pending; p; p = p->next)
		same += same_host(&p->addr, sa);
	return same < ENGINE_MAX_HANDSHAKING_PER_ADDR;
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
		      int len, void *arg)
{
	struct engine *eng = arg;
	(void)l;
	if (eng->n_peers >= ENGINE_MAX_PEERS_TOTAL || !handshake_slot_free(eng, sa)) {
		evutil_closesocket(fd);
		return;
	}
	struct peer *p = peer_new(eng, fd, sa, (socklen_t)len, false);
	if (!p)
		return;
	p->next = eng->pending;
	eng->pending = p;
	eng->n_pending++;
}

int engine_lookup_hello(void *arg, const uint8_t hello[CRYPT_HELLO_LEN],
			uint8_t info_hash_out[CRYPT_INFO_HASH_LEN])
{
	struct engine *eng = arg;
	for (struct swarm *sw = eng->node->swarms; sw; sw = sw->next) {
		if (!sw->has_info_hash || !sw->xfer || sw->xfer->stopped)
			continue;
		if (crypt_hello_matches(hello, sw->info_hash)) {
			memcpy(info_hash_out, sw->info_hash, CRYPT_INFO_HASH_LEN);
			return 0;
		}
	}
	return -ENOENT;
}

static void unlink_peer(struct peer **list, struct peer *p)
{
	for (struct peer **pp = list; *pp; pp = &(*pp)->next) {
		if (*pp == p) {
			*pp = p->next;
			return;
		}
	}
}

/* Size the peer's bitfield once the piece count is known, applying
 * anything it told us before. */
static int peer_meta_ready(struct peer *p)
{
	struct xfer *xf = p->xf;
	uint32_t n = xf->sw->meta->total_pieces;
	if (p->has.nbits == n && p->has.bits)
		return 0;
	int rc = bitfield_init(&p->has, n);
	if (rc)
		return rc;
	wire_decoder_set_num_pieces(&p->dec, n);
	if (p->has_all_pending) {
		rc = picker_peer_have_all(xf->picker, &p->has);
		p->has_all_pending = false;
	} else if (p->early_bitfield) {
		struct bitfield in;
		rc = bitfield_init(&in, n);
		if (rc == 0) {
			rc = bitfield_from_wire(&in, p->early_bitfield, p->early_bitfield_len);
			if (rc == 0)
				rc = picker_peer_bitfield(xf->picker, &p->has, &in);
			bitfield_destroy(&in);
		}
		free(p->early_bitfield);
		p->early_bitfield = NULL;
	}
	return rc;
}

/* -------------------------------------------------------- handshakes */

void peer_send_handshake(struct peer *p)
{
	struct xfer *xf = p->xf;
	struct swarm *sw = xf->sw;
	struct engine *eng = p->eng;
	if (p->handshake_sent)
		return;
	p->handshake_sent = true;
	uint8_t hs[WIRE_HANDSHAKE_LEN];
	wire_handshake_encode(hs, sw->info_hash, eng->peer_id, WIRE_RSV_EXTENDED | WIRE_RSV_V2);
	if (peer_send(p, hs, sizeof hs, NULL, 0) != 0)
		return;
	/* BEP 10 extension handshake. */
	struct wire_ext_hs ext;
	memset(&ext, 0, sizeof ext);
	ext.ut_metadata = EXT_UT_METADATA;
	ext.ut_pex = EXT_UT_PEX;
	ext.metadata_size = sw->meta ? (uint32_t)sw->meta->info_len : 0;
	ext.port = eng->node->cfg.peer_port;
	ext.reqq = PEER_MAX_INQ;
	snprintf(ext.client, sizeof ext.client, "shoal %s", PACKAGE_VERSION);
	struct buf b;
	buf_init(&b, 4096);
	if (wire_ext_hs_encode(&b, &ext) == 0)
		(void)peer_send(p, b.data, b.len, NULL, 0);
	buf_destroy(&b);
	/* Our verified pieces, if any. */
	/* Our verified pieces, if any (sw->have is in BEP 3 bit order). */
	if (sw->meta && sw->have_count > 0 && sw->have) {
		size_t n = (sw->meta->total_pieces + 7) / 8;
		uint8_t hdr[WIRE_BITFIELD_HDR_LEN];
		wire_put_bitfield_hdr(hdr, (uint32_t)n);
		(void)peer_send(p, hdr, sizeof hdr, sw->have, n);
	}
}

/* A full swarm makes room for a newcomer by dropping the oldest connection
 * that has moved no payload either way in PEER_EVICT_AFTER_MS, so a host
 * that knows the hash cannot hold every slot with idle connections.
 * Returns true if one was dropped. */
static bool evict_idle(struct xfer *xf, uint64_t now)
{
	struct peer *victim = NULL;
	for (struct peer *o = xf->peers; o; o = o->next)
		if (o->state == PEER_ACTIVE && o->down_total == 0 && o->up_total == 0 &&
		    now - o->connected_ms >= PEER_EVICT_AFTER_MS &&
		    (!victim || o->connected_ms < victim->connected_ms))
			victim = o;
	if (!victim)
		return false;
	peer_close(victim, "evicted: the swarm is full and it moved no data");
	return true;
}

int engine_on_handshake(struct peer *p, const struct wire_handshake *hs)
{
	struct engine *eng = p->eng;
	if (memcmp(hs->peer_id, eng->peer_id, WIRE_PEER_ID_LEN) == 0)
		return -ELOOP; /* we dialled ourselves */
	struct xfer *xf = p->xf;
	if (xf) {
		if (memcmp(hs->info_hash, xf->sw->info_hash, WIRE_HASH_LEN) != 0)
			return -EPROTO;
		if (id_banned(xf, hs->peer_id)) {
			log_debug("peer %s: refused: its peer id is banned", p->name);
			return -EACCES;
		}
	} else {
		struct swarm *found = NULL;
		for (struct swarm *sw = eng->node->swarms; sw; sw = sw->next) {
			if (sw->has_info_hash && sw->xfer && !sw->xfer->stopped &&
			    memcmp(sw->info_hash, hs->info_hash, WIRE_HASH_LEN) == 0) {
				found = sw;
				break;
			}
		}
		if (!found)
			return -ENOENT;
		/* Encrypted: the 20 bytes must belong to the swarm the keys were
		 * bound to (the full 32-byte hash). */
		if (p->crypt && memcmp(crypt_info_hash(p->crypt), found->info_hash, 32) != 0)
			return -EPROTO;
		xf = found->xfer;
		/* A banned host is refused whatever it would say next: before
		 * the extension handshake it may leave out, before anything of
		 * ours is sent. */
		if (host_banned(xf, (const struct sockaddr *)&p->addr) ||
		    id_banned(xf, hs->peer_id)) {
			log_debug("peer %s: refused: banned in swarm %" PRId64, p->name, xf->sw->id);
			return -EACCES;
		}
		if (xf->n_peers >= ENGINE_MAX_PEERS_SWARM && !evict_idle(xf, now_ms()))
			return -EMFILE;
		unlink_peer(&eng->pending, p);
		eng->n_pending--;
		p->xf = xf;
		p->next = xf->peers;
		xf->peers = p;
		xf->n_peers++;
	}
	if (eng->node->cfg.encryption == ENCRYPTION_REQUIRE && !p->crypt)
		return -EPROTO;
	/* One connection per remote node and swarm. */
	for (struct peer *o = xf->peers; o; o = o->next) {
		if (o != p && o->state == PEER_ACTIVE &&
		    memcmp(o->peer_id, hs->peer_id, WIRE_PEER_ID_LEN) == 0)
			return -EALREADY;
	}
	memcpy(p->peer_id, hs->peer_id, WIRE_PEER_ID_LEN);
	p->state = PEER_ACTIVE;
	if (p->known) {
		p->known->failures = 0;
	}
	if (xf->sw->meta && xf->picker && peer_meta_ready(p) != 0)
		return -ENOMEM;
	apply_swarm_limits(xf); /* before a single block moves */
	update_read_mode(p);
	if (!p->handshake_sent)
		peer_send_handshake(p);
	log_debug("peer %s: connected to swarm %" PRId64 " (%s, %s)", p->name, xf->sw->id,
		  p->outgoing ? "outgoing" : "incoming", p->crypt ? "encrypted" : "plain");
	return 0;
}

void engine_on_peer_gone(struct peer *p)
{
	struct engine *eng = p->eng;
	struct xfer *xf = p->xf;
	if (!xf) {
		if (p->state != PEER_CONNECTING) {
			unlink_peer(&eng->pending, p);
			eng->n_pending--;
		}
		return;
	}
	if (xf->picker && p->has.bits) {
		if (picker_peer_gone(xf->picker, p->uid, &p->has) != 0)
			log_error("picker refused peer %s leaving", p->name);
	}
	if (p->known)
		p->known->connected = false;
	if (xf->mdf && p->md_announced &&
	    mdfetch_peer_gone(xf->mdf, p->uid, p->md_announced))
		xf->md_kick = true; /* asked at the next tick, not from inside a close */
	p->md_announced = 0;
	if (xf->lf) {
		layerfetch_peer_gone(xf->lf, p->uid);
		if (p->uid == xf->layers_peer)
			xf->layers_asked_ms = 0; /* ask another at the next tick */
	}
	/* Its output buffer goes with it: the bytes leave the serving budget. */
	xf->serve_out -= p->serve_out;
	p->serve_out = 0;
	p->serve_waiting = false;
	if (!p->am_choking) {
		xf->n_unchoked--;
		p->am_choking = true;
	}
	serve_freed(xf);
	unlink_peer(&xf->peers, p);
	xf->n_peers--;
	p->xf = NULL;
	p->n_reqs = 0;
}

static struct peer *find_peer(struct xfer *xf, uint32_t uid)
{
	for (struct peer *p = xf->peers; p; p = p->next)
		if (p->uid == uid && p->state == PEER_ACTIVE)
			return p;
	return NULL;
}

/* ------------------------------------------------------- sending */

static void send_simple(struct peer *p, enum wire_msg_id id)
{
	uint8_t m[WIRE_SIMPLE_LEN];
	wire_put_simple(m, id);
	(void)peer_send(p, m, sizeof m, NULL, 0);
}

static void set_choke(struct peer *p, bool choke)
{
	if (p->am_choking == choke)
		return;
	p->am_choking = choke;
	if (p->xf) {
		if (choke)
			p->xf->n_unchoked--;
		else
			p->xf->n_unchoked++;
	}
	send_simple(p, choke ? WIRE_CHOKE : WIRE_UNCHOKE);
	if (choke)
		p->n_inq = 0; /* BEP 3: a choke discards its pending requests */
}

static void update_interest(struct peer *p)
{
	struct xfer *xf = p->xf;
	bool want = xf && xf->picker && !xf->layers_pending && p->has.bits &&
		    picker_is_interesting(xf->picker, &p->has);
	if (want != p->am_interested) {
		p->am_interested = want;
		send_simple(p, want ? WIRE_INTERESTED : WIRE_NOT_INTERESTED);
	}
}

/* Abandon every request we have out to this peer. */
static void drop_requests(struct peer *p)
{
	struct xfer *xf = p->xf;
	for (size_t i = 0; i < p->n_reqs; i++)
		if (xf && xf->picker &&
		    picker_abort_request(xf->picker, p->uid, p->reqs[i].piece, p->reqs[i].block) != 0)
			log_debug("picker: stale request %u/%u", p->reqs[i].piece, p->reqs[i].block);
	p->n_reqs = 0;
}

/* The rate behind request_target is sampled once a second, so on its own
 * a new connection spends its first second at PEER_MIN_REQS in flight.
 * The window grows by one block for each answer that comes back quickly
 * (doubling per round trip, like TCP's slow start) and halves when answers
 * queue up, which a rate-limited or slow peer's do. */
#define PEER_FAST_REPLY_MS 100
#define PEER_SLOW_REPLY_MS 1000

static void adapt_window(struct peer *p, uint64_t latency_ms)
{
	if (p->window < PEER_MIN_REQS)
		p->window = PEER_MIN_REQS;
	if (latency_ms < PEER_FAST_REPLY_MS && p->window < PEER_MAX_REQS)
		p->window++;
	else if (latency_ms > PEER_SLOW_REPLY_MS && p->window > PEER_MIN_REQS)
		p->window = p->window / 2 > PEER_MIN_REQS ? p->window / 2 : PEER_MIN_REQS;
}

/* How many requests to keep in flight: about two seconds of this peer's
 * rate in 16 KiB blocks, or the window of quick answers if larger, within
 * [PEER_MIN_REQS, PEER_MAX_REQS] and the peer's own reqq. */
static size_t request_target(const struct peer *p)
{
	size_t t = (size_t)(p->down_rate * 2.0 / XFER_BLOCK_SIZE);
	if (t < p->window)
		t = p->window;
	if (t < PEER_MIN_REQS)
		t = PEER_MIN_REQS;
	if (t > PEER_MAX_REQS)
		t = PEER_MAX_REQS;
	if (p->ext.reqq && t > p->ext.reqq)
		t = p->ext.reqq;
	return t;
}

static void request_more(struct peer *p)
{
	struct xfer *xf = p->xf;
	if (!xf || xf->stopped || !xf->picker || xf->layers_pending || xf->disk_full ||
	    p->peer_choking || p->state != PEER_ACTIVE || xf->sw->state != SWARM_DOWNLOADING ||
	    write_budget_full(xf))
		return;
	size_t target = request_target(p);
	if (p->n_reqs >= target)
		return;
	if (!p->reqs) {
		p->reqs = calloc(PEER_MAX_REQS, sizeof *p->reqs);
		if (!p->reqs)
			return;
	}
	struct picker_block blocks[PEER_MAX_REQS];
	size_t n = 0;
	struct picker_peer pp = { .id = p->uid, .has = &p->has };
	if (picker_pick(xf->picker, &pp, target - p->n_reqs, blocks, PEER_MAX_REQS, &n,
			&xf->eng->rng) != 0)
		return;
	uint64_t now = now_ms();
	for (size_t i = 0; i < n; i++) {
		if (picker_mark_requested(xf->picker, p->uid, blocks[i].piece, blocks[i].block) != 0)
			continue;
		struct wire_block b = { blocks[i].piece, blocks[i].block * XFER_BLOCK_SIZE, blocks[i].len };
		uint8_t m[WIRE_BLOCK_MSG_LEN];
		wire_put_block(m, WIRE_REQUEST, &b);
		(void)peer_send(p, m, sizeof m, NULL, 0);
		p->reqs[p->n_reqs++] = (struct peer_req){ blocks[i].piece, blocks[i].block, now };
	}
}

/* Tell every peer about a newly verified piece. */
static void broadcast_have(struct xfer *xf, uint32_t piece)
{
	uint8_t m[WIRE_HAVE_LEN];
	wire_put_have(m, piece);
	for (struct peer *p = xf->peers; p; p = p->next) {
		if (p->state != PEER_ACTIVE)
			continue;
		(void)peer_send(p, m, sizeof m, NULL, 0);
		update_interest(p);
	}
}

/* -------------------------------------------------- disk and hashing */

/* Disk work goes to the workers in batches: up to two write batches and two
 * verify batches in flight per swarm, up to two read batches per peer.  A
 * job per 16 KiB block made thread hand-offs, not the disk or the hash, the
 * bottleneck. */
#define IO_BATCH 64
#define WRITE_PARALLEL 2
#define VERIFY_BATCH 16
#define VERIFY_PARALLEL 2
#define READ_BATCH 16
#define PEER_MAX_READ_BATCHES 2

struct block {
	uint32_t peer;        /* uid of the peer it came from or goes to */
	uint32_t piece, begin, len;
	uint32_t avail;       /* reads: bytes of file data; the rest of len is padding */
	int rc;
	uint8_t hdr[WIRE_PIECE_HDR_LEN]; /* reads: the PIECE header, right before data, */
	uint8_t data[XFER_BLOCK_SIZE];   /* so the message is sent from one buffer */
};

/* Free the blocks waiting for a write job, and take them out of the write
 * budget (a rebuilt picker will ask for them again). */
static void drop_write_queue(struct xfer *xf)
{
	for (size_t i = 0; i < xf->n_wq; i++) {
		xf->write_queued -= xf->wq[i]->len;
		free(xf->wq[i]);
	}
	xf->n_wq = 0;
}

_Static_assert(offsetof(struct block, data) == offsetof(struct block, hdr) + WIRE_PIECE_HDR_LEN,
	       "a PIECE message is header and data contiguous");

struct io_batch {
	struct xfer *xf;
	unsigned gen;         /* writes: xf->picker_gen when submitted */
	uint32_t peer;        /* reads: the peer they are for */
	size_t n;
	struct block *b[IO_BATCH];
};

struct verify_batch {
	struct xfer *xf;
	unsigned gen;         /* xf->picker_gen when submitted */
	size_t n;
	uint32_t piece[VERIFY_BATCH];
	int rc[VERIFY_BATCH]; /* 0 verified, -EBADMSG mismatch, other I/O error */
};

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

/* What a block costs while it is being read: the whole struct block. */
#define SERVE_BLOCK_CHARGE (sizeof(struct block))

static void daemon_queued(const struct node *node, size_t *serve, size_t *write,
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

static bool write_budget_full(const struct xfer *xf)
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
static void serve_freed(struct xfer *xf)
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

static void serve_wake(evutil_socket_t fd, short what, void *arg)
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
	xf->disk_retry_ms = now_ms() + 5000;
	snprintf(sw->error, sizeof sw->error,
		 "cannot write under %s: %s; the download resumes when there is space again", sw->root,
		 strerror(-rc));
	log_error("swarm %" PRId64 ": %s", sw->id, sw->error);
	for (struct peer *p = xf->peers; p; p = p->next)
		drop_requests(p);
}

static void kick_writes(struct xfer *xf);
static int submit_write(struct xfer *xf);
static void kick_verify(struct xfer *xf);

/* Write the batch, and hash each block (a BEP 52 leaf) while it is in
 * memory, so a complete piece is verified from its leaves without reading
 * it back.  The leaf buffers were allocated on the loop before queueing. */
static void work_write(void *arg)
{
	struct io_batch *j = arg;
	struct sha256_ctx *ctx = sha256_new();
	pthread_mutex_lock(&j->xf->io_lock);
	for (size_t i = 0; i < j->n; i++)
		j->b[i]->rc = storage_write(j->xf->storage, j->b[i]->piece, j->b[i]->begin,
					    j->b[i]->data, j->b[i]->len);
	pthread_mutex_unlock(&j->xf->io_lock);
	for (size_t i = 0; ctx && i < j->n; i++) {
		struct block *b = j->b[i];
		uint8_t *leaves = j->xf->leaves ? j->xf->leaves[b->piece] : NULL;
		if (b->rc == 0 && leaves)
			sha256_once(ctx, b->data, b->len, leaves + 32 * (size_t)(b->begin / XFER_BLOCK_SIZE));
	}
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
			} else if (picker_mark_finished(xf->picker, b->piece, block) == 1) {
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
static void kick_writes(struct xfer *xf)
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
static int verify_one(struct xfer *xf, uint32_t piece, struct sha256_ctx *ctx, uint8_t *buf,
		      size_t buf_len)
{
	const struct metainfo *mi = xf->sw->meta;
	uint32_t local;
	const struct metainfo_file *f = piece_file(mi, piece, &local);
	if (!f || !f->layer)
		return -EINVAL;
	uint64_t size = merkle_piece_size(f->size, mi->piece_length, local);
	uint64_t width = merkle_piece_leaves(f->size, mi->piece_length);
	const uint8_t *leaves = xf->leaves ? xf->leaves[piece] : NULL;
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
		j->rc[i] = (!ctx || !buf) ? -ENOMEM : verify_one(j->xf, j->piece[i], ctx, buf, 256 * 1024);
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
static bool strike(struct peer *p, unsigned n, const char *what)
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
	char host[INET6_ADDRSTRLEN];
	uint16_t port = addr_host(p->known ? &p->known->addr : &p->addr, host, sizeof host);
	if (p->known)
		p->known->banned = true;
	if (port)
		queue_peer_row(xf, host, port, p->known ? p->known->source : "incoming", true);
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
	for (size_t i = 0; i < j->n; i++)
		if (!xf->stopped && xf->picker && j->gen == xf->picker_gen && j->rc[i] != -ECANCELED)
			piece_checked(xf, j->piece[i], j->rc[i]);
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
		for (size_t i = 0; i < j->n; i++)
			j->rc[i] = -ECANCELED;
		if (workers_submit(xf->node->workers, work_verify, done_verify, j) != 0) {
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

/* Bytes of blocks we let queue for a peer (being read or unsent) before
 * serving more of its requests.  Without an upload cap: enough to keep a
 * fast link busy.  Under a cap, about a quarter second of what this
 * connection sends: a block already queued can no longer be cancelled, and
 * in endgame every copy another peer also sends is upload wasted. */
#define SERVE_QUEUE_SECONDS 0.25
#define SERVE_QUEUE_MIN (2 * (XFER_BLOCK_SIZE + WIRE_PIECE_HDR_LEN))

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

static void serve_requests(struct peer *p)
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

/* --------------------------------------------------- BEP 9 metadata */

static void request_metadata(struct peer *p)
{
	struct xfer *xf = p->xf;
	if (!xf || xf->sw->meta || !xf->mdf || !p->ext.ut_metadata || !p->md_announced ||
	    p->state != PEER_ACTIVE)
		return;
	uint32_t pieces[MDFETCH_MAX_PIECES];
	size_t n = mdfetch_pick(xf->mdf, p->uid, p->md_announced, pieces, MDFETCH_MAX_PIECES);
	struct buf b;
	buf_init(&b, 256);
	for (size_t i = 0; i < n; i++) {
		struct wire_metadata_msg m = { .type = WIRE_MD_REQUEST, .piece = pieces[i] };
		buf_reset(&b);
		if (wire_metadata_encode(&b, p->ext.ut_metadata, &m) == 0) {
			(void)peer_send(p, b.data, b.len, NULL, 0);
			p->md_requested++;
		}
	}
	buf_destroy(&b);
}

/* Ask every peer for what the fetched metadata size still lacks. */
static void request_metadata_all(struct xfer *xf)
{
	xf->md_kick = false;
	for (struct peer *q = xf->peers; q; q = q->next)
		request_metadata(q);
}

/* A peer's extension handshake announced a metadata size: count it (once). */
static int metadata_announced(struct peer *p)
{
	struct xfer *xf = p->xf;
	if (xf->sw->meta || p->md_announced || !p->ext.ut_metadata || p->ext.metadata_size == 0)
		return 0;
	if (!xf->mdf && mdfetch_new(&xf->mdf) != 0)
		return -ENOMEM;
	uint32_t before = mdfetch_size(xf->mdf);
	if (mdfetch_announce(xf->mdf, p->ext.metadata_size) == 0)
		p->md_announced = p->ext.metadata_size;
	if (mdfetch_size(xf->mdf) != before)
		xf->md_kick = true;
	return 0;
}

static int on_metadata_msg(struct peer *p, const uint8_t *payload, size_t len)
{
	struct xfer *xf = p->xf;
	struct swarm *sw = xf->sw;
	struct wire_metadata_msg m;
	if (wire_metadata_parse(&m, payload, payload + len) != 0)
		return -EBADMSG; /* a malformed or absurd message: drop the peer */
	if (m.type == WIRE_MD_REQUEST) {
		struct wire_metadata_msg reply = { .piece = m.piece };
		const struct metainfo *mi = sw->meta;
		uint32_t pieces = mi ? (uint32_t)((mi->info_len + WIRE_METADATA_PIECE - 1) / WIRE_METADATA_PIECE) : 0;
		if (!mi || !p->ext.ut_metadata || m.piece >= pieces) {
			reply.type = WIRE_MD_REJECT;
		} else {
			reply.type = WIRE_MD_DATA;
			reply.total_size = (uint32_t)mi->info_len;
			reply.data = mi->info + (size_t)m.piece * WIRE_METADATA_PIECE;
			reply.len = mi->info_len - (size_t)m.piece * WIRE_METADATA_PIECE;
			if (reply.len > WIRE_METADATA_PIECE)
				reply.len = WIRE_METADATA_PIECE;
		}
		if (!p->ext.ut_metadata)
			return 0;
		struct buf b;
		buf_init(&b, WIRE_METADATA_PIECE + 256);
		if (wire_metadata_encode(&b, p->ext.ut_metadata, &reply) == 0)
			(void)peer_send(p, b.data, b.len, NULL, 0);
		buf_destroy(&b);
		return 0;
	}
	if (sw->meta || !xf->mdf)
		return 0;
	if (m.type == WIRE_MD_REJECT) {
		(void)mdfetch_reject(xf->mdf, p->uid, m.piece);
		return 0;
	}
	/* Only an answer to what we asked of this peer, of the size fetched. */
	int rc = mdfetch_data(xf->mdf, p->uid, m.piece, m.total_size, m.data, m.len);
	if (rc == -ENOMEM)
		return rc;
	if (rc != 1)
		return 0;
	/* Complete: it must hash to the link's info-hash. */
	size_t md_len = 0;
	const uint8_t *md = mdfetch_buffer(xf->mdf, &md_len);
	struct metainfo *mi = calloc(1, sizeof *mi);
	rc = mi ? metainfo_parse_info(mi, md, md + md_len) : -ENOMEM;
	if (rc == 0)
		rc = metainfo_check_hash(mi, sw->info_hash);
	if (rc != 0) {
		log_warn("swarm %" PRId64 ": metadata of %zu bytes from peers is unusable (%s); "
			 "fetching again", sw->id, md_len, metainfo_strerror(rc));
		if (mi) {
			metainfo_destroy(mi);
			free(mi);
		}
		/* Blame who sent it: a sole sender is banned at once.  The size
		 * counts a setback, so another announced size is tried next. */
		uint32_t blame[MDFETCH_MAX_PIECES];
		int nb = mdfetch_failed(xf->mdf, blame, MDFETCH_MAX_PIECES);
		for (int i = 0; i < nb && i < (int)MDFETCH_MAX_PIECES; i++) {
			struct peer *q = find_peer(xf, blame[i]);
			if (q)
				strike(q, nb == 1 ? PEER_BAN_STRIKES : 1, "metadata");
		}
		request_metadata_all(xf);
		return p->state == PEER_DEAD ? -ECONNRESET : 0;
	}
	sw->meta = mi;
	mdfetch_free(xf->mdf);
	xf->mdf = NULL;
	(void)install_meta(xf); /* failures put the swarm in error and log why */
	return 0;
}

/* --------------------------------------------- BEP 52 piece layers */

static unsigned log2u(uint64_t v)
{
	unsigned n = 0;
	while (v > 1) {
		v >>= 1;
		n++;
	}
	return n;
}

static uint64_t pow2_ceil(uint64_t v)
{
	uint64_t p = 1;
	while (p < v)
		p <<= 1;
	return p;
}

/* Ask one peer for every piece layer we lack: one request per file (or per
 * ENGINE_HASH_REQ_MAX hashes).  transfer/layerfetch accepts only answers
 * from the peer asked, and each whole layer is checked against its pieces
 * root when installed, so a lying peer's hashes are discarded and only
 * that peer is blamed.  The peer asked keeps the layers while it answers;
 * after 10 s without an answer (or on a reject, or when it leaves) another
 * peer is asked if there is one, so one that never answers cannot stall the
 * join, and one that answers slowly is not dropped halfway. */
static void request_layers(struct xfer *xf)
{
	const struct metainfo *mi = xf->sw->meta;
	uint64_t now = now_ms();
	if (!mi || !xf->layers_pending || now - xf->layers_asked_ms < 10000)
		return;
	xf->layers_asked_ms = now;
	if (!xf->lf) {
		uint32_t *counts = calloc(mi->file_count ? mi->file_count : 1, sizeof *counts);
		if (!counts)
			return;
		for (size_t f = 0; f < mi->file_count; f++) {
			const struct metainfo_file *file = &mi->files[f];
			counts[f] = file->has_root && !file->layer && file->piece_count > 1 &&
						    file->piece_count <= LAYERFETCH_MAX_PIECES
					    ? (uint32_t)file->piece_count
					    : 0;
		}
		int rc = layerfetch_new(counts, mi->file_count, ENGINE_HASH_REQ_MAX, &xf->lf);
		free(counts);
		if (rc != 0)
			return;
	}
	/* A random connected peer, other than the last one asked if possible. */
	size_t eligible = 0, others = 0;
	for (struct peer *p = xf->peers; p; p = p->next)
		if (p->state == PEER_ACTIVE) {
			eligible++;
			others += p->uid != xf->layers_peer;
		}
	if (eligible == 0)
		return;
	bool skip_last = others > 0;
	uint64_t pick = engine_rand(xf->eng) % (skip_last ? others : eligible);
	struct peer *target = NULL;
	for (struct peer *p = xf->peers; p && !target; p = p->next) {
		if (p->state != PEER_ACTIVE || (skip_last && p->uid == xf->layers_peer))
			continue;
		if (pick-- == 0)
			target = p;
	}
	if (!target)
		return;
	size_t n = layerfetch_ask(xf->lf, target->uid, NULL, 0); /* how many */
	struct layerfetch_req *reqs = malloc((n ? n : 1) * sizeof *reqs);
	if (!reqs)
		return;
	n = layerfetch_ask(xf->lf, target->uid, reqs, n);
	xf->layers_peer = target->uid;
	unsigned base = log2u(mi->piece_length / XFER_BLOCK_SIZE);
	for (size_t i = 0; i < n; i++) {
		struct wire_hash_req r;
		memcpy(r.pieces_root, mi->files[reqs[i].file].root, 32);
		r.base_layer = base;
		r.index = reqs[i].index;
		r.length = reqs[i].length;
		r.proof_layers = 0;
		uint8_t m[WIRE_HASH_MSG_LEN];
		wire_put_hash_msg(m, WIRE_HASH_REQUEST, &r, 0);
		/* A request is exactly the header; no hashes follow. */
		(void)peer_send(target, m, WIRE_HASH_MSG_LEN, NULL, 0);
	}
	free(reqs);
}

static void free_layerfetch(struct xfer *xf)
{
	layerfetch_free(xf->lf);
	xf->lf = NULL;
}

/* Gather a chunk of a file's piece layer; install the layer when whole. */
static void on_hashes(struct peer *p, const struct wire_msg *m)
{
	struct xfer *xf = p->xf;
	struct metainfo *mi = xf->sw->meta;
	if (!mi || !xf->layers_pending || !xf->lf)
		return;
	const struct wire_hash_req *r = &m->u.hashes.req;
	size_t f;
	for (f = 0; f < mi->file_count; f++)
		if (mi->files[f].has_root && !mi->files[f].layer && mi->files[f].piece_count > 1 &&
		    memcmp(mi->files[f].root, r->pieces_root, 32) == 0)
			break;
	if (f == mi->file_count || r->base_layer != log2u(mi->piece_length / XFER_BLOCK_SIZE))
		return; /* not an answer to anything we asked */
	/* Only an answer to a request of ours to this very peer is kept. */
	int rc = layerfetch_on_hashes(xf->lf, p->uid, (uint32_t)f, r->index, r->length,
				      m->u.hashes.hashes, m->u.hashes.count);
	/* Progress: the peer asked keeps the layers while it answers.  Asking
	 * another drops what this one sent, so switching on a fixed clock would
	 * never finish a layer that takes longer than the clock to arrive. */
	if (rc >= 0)
		xf->layers_asked_ms = now_ms();
	if (rc != 1)
		return;
	size_t len = 0;
	const uint8_t *layer = layerfetch_layer(xf->lf, (uint32_t)f, &len);
	if (metainfo_set_layer(mi, f, layer, len) != 0) {
		uint32_t sender = p->uid;
		(void)layerfetch_failed(xf->lf, (uint32_t)f, &sender);
		log_warn("swarm %" PRId64 ": peer %s sent piece hashes that do not verify", xf->sw->id,
			 p->name);
		xf->layers_asked_ms = 0;
		struct peer *q = find_peer(xf, sender); /* the one peer asked: p */
		if (q)
			strike(q, PEER_BAN_STRIKES, "piece hashes");
		return;
	}
	(void)layerfetch_done(xf->lf, (uint32_t)f);
	if (!mi->all_layers)
		return;
	free_layerfetch(xf);
	xf->layers_pending = false;
	if (swarm_db_store_meta(xf->node, xf->sw) != 0)
		log_error("swarm %" PRId64 ": cannot record piece layers", xf->sw->id);
	swarm_write_torrent(xf->node, xf->sw);
	log_info("swarm %" PRId64 ": piece layers complete; downloading", xf->sw->id);
	for (struct peer *q = xf->peers; q; q = q->next) {
		update_interest(q);
		request_more(q);
	}
}

/* The merkle tree above a file's piece layer, in heap order (node i has
 * children 2i and 2i+1; the width padded leaves start at index width),
 * built on the first hash request for the file and kept: rebuilding it for
 * every request let a peer buy O(pieces) hashing with 49 bytes. */
static const uint8_t *layer_tree(struct xfer *xf, size_t fidx, uint64_t width)
{
	const struct metainfo *mi = xf->sw->meta;
	const struct metainfo_file *file = &mi->files[fidx];
	if (!xf->hash_trees) {
		xf->hash_trees = calloc(mi->file_count, sizeof *xf->hash_trees);
		if (!xf->hash_trees)
			return NULL;
	}
	if (xf->hash_trees[fidx])
		return xf->hash_trees[fidx];
	uint8_t *tree = malloc(width * 2 * 32);
	struct sha256_ctx *ctx = sha256_new();
	uint8_t pad[32];
	if (!tree || !ctx || merkle_zero_root(ctx, mi->piece_length / XFER_BLOCK_SIZE, pad) != 0) {
		free(tree);
		sha256_free(ctx);
		return NULL;
	}
	for (uint64_t i = 0; i < width; i++)
		memcpy(tree + (width + i) * 32, i < file->piece_count ? file->layer + i * 32 : pad, 32);
	for (uint64_t i = width - 1; i >= 1; i--)
		sha256_once(ctx, tree + 2 * i * 32, 64, tree + i * 32);
	sha256_free(ctx);
	xf->hash_trees[fidx] = tree;
	return tree;
}

/* Answer a hash request from our verified layers (with proof hashes). */
static void on_hash_request(struct peer *p, const struct wire_hash_req *r)
{
	struct xfer *xf = p->xf;
	const struct metainfo *mi = xf->sw->meta;
	const struct metainfo_file *file = NULL;
	size_t fidx = 0;
	for (size_t f = 0; mi && f < mi->file_count; f++) {
		if (mi->files[f].has_root && memcmp(mi->files[f].root, r->pieces_root, 32) == 0) {
			file = &mi->files[f];
			fidx = f;
		}
	}
	uint64_t width = file ? pow2_ceil(file->piece_count) : 0;
	unsigned levels = log2u(width);
	bool ok = file && file->layer && file->piece_count >= 2 &&
		  r->base_layer == log2u(mi->piece_length / XFER_BLOCK_SIZE) && r->length >= 2 &&
		  r->length <= ENGINE_HASH_REQ_MAX && (r->length & (r->length - 1)) == 0 &&
		  r->index % r->length == 0 && (uint64_t)r->index + r->length <= width &&
		  r->proof_layers <= levels;
	/* A peer that asks and never reads gets rejects, not our memory. */
	if (peer_outbuf_len(p) >= PEER_MAX_OUTBUF)
		ok = false;
	const uint8_t *tree = ok ? layer_tree(xf, fidx, width) : NULL;
	uint8_t *out = tree ? malloc(((size_t)r->length + r->proof_layers) * 32) : NULL;
	if (out) {
		memcpy(out, tree + (width + r->index) * 32, (size_t)r->length * 32);
		/* Proof: uncles of the chunk's subtree root, bottom up. */
		uint64_t node = (width + r->index) / r->length;
		for (uint32_t k = 0; k < r->proof_layers && node > 1; k++, node /= 2)
			memcpy(out + ((size_t)r->length + k) * 32, tree + (node ^ 1) * 32, 32);
		uint8_t hdr[WIRE_HASH_MSG_LEN];
		size_t n = (size_t)r->length + r->proof_layers;
		wire_put_hash_msg(hdr, WIRE_HASHES, r, (uint32_t)n);
		(void)peer_send(p, hdr, sizeof hdr, out, n * 32);
	} else {
		uint8_t hdr[WIRE_HASH_MSG_LEN];
		wire_put_hash_msg(hdr, WIRE_HASH_REJECT, r, 0);
		(void)peer_send(p, hdr, sizeof hdr, NULL, 0);
	}
	free(out);
}

/* The metadata just became known (magnet join): record it, set up. */
static int install_meta(struct xfer *xf)
{
	struct swarm *sw = xf->sw;
	struct metainfo *mi = sw->meta;
	sw->have = calloc((mi->total_pieces + 7) / 8 + 1, 1);
	sw->mtimes_ns = calloc(mi->file_count ? mi->file_count : 1, sizeof *sw->mtimes_ns);
	if (!sw->have || !sw->mtimes_ns)
		return -ENOMEM;
	free(sw->name);
	sw->name = strdup(mi->name);
	if (!sw->name)
		return -ENOMEM;
	int rc = xfer_setup_meta(xf); /* records the metadata (check_fresh_join) */
	if (rc) {
		swarm_fail(xf);
		return rc;
	}
	swarm_write_torrent(xf->node, sw);
	sw->state = SWARM_DOWNLOADING;
	log_info("swarm %" PRId64 ": metadata received: %s, %zu files, %" PRIu64 " bytes", sw->id,
		 mi->name, mi->file_count, mi->total_size);
	for (struct peer *p = xf->peers; p; p = p->next) {
		if (p->state != PEER_ACTIVE)
			continue;
		if (peer_meta_ready(p) != 0) {
			peer_close(p, "out of memory");
			continue;
		}
		update_interest(p);
	}
	xf->layers_asked_ms = 0;
	request_layers(xf);
	return 0;
}

/* ----------------------------------------------------- BEP 11 PEX */

static bool peer_listen_addr(const struct peer *p, struct wire_peer *out)
{
	uint16_t port = p->outgoing ? (p->addr.ss_family == AF_INET
					       ? ntohs(((const struct sockaddr_in *)&p->addr)->sin_port)
					       : ntohs(((const struct sockaddr_in6 *)&p->addr)->sin6_port))
				    : p->listen_port;
	if (!port)
		return false;
	memset(out, 0, sizeof *out);
	out->port = port;
	if (p->addr.ss_family == AF_INET) {
		out->family = 4;
		memcpy(out->addr, &((const struct sockaddr_in *)&p->addr)->sin_addr, 4);
	} else {
		out->family = 6;
		memcpy(out->addr, &((const struct sockaddr_in6 *)&p->addr)->sin6_addr, 16);
	}
	if (p->crypt)
		out->flags |= WIRE_PEX_F_ENCRYPTION;
	if (p->has.bits && bitfield_all(&p->has))
		out->flags |= WIRE_PEX_F_SEED;
	out->flags |= WIRE_PEX_F_REACHABLE;
	return true;
}

/* Tell each peer about the others we are connected to. */
static void send_pex(struct xfer *xf)
{
	static struct wire_pex pex; /* loop thread only; too large for the stack */
	struct buf b;
	buf_init(&b, 64 * 1024);
	for (struct peer *to = xf->peers; to; to = to->next) {
		if (to->state != PEER_ACTIVE || !to->ext.ut_pex)
			continue;
		memset(&pex, 0, sizeof pex);
		for (struct peer *o = xf->peers; o && pex.n_added < 50; o = o->next)
			if (o != to && o->state == PEER_ACTIVE && peer_listen_addr(o, &pex.added[pex.n_added]))
				pex.n_added++;
		if (pex.n_added == 0)
			continue;
		buf_reset(&b);
		if (wire_pex_encode(&b, to->ext.ut_pex, &pex) == 0)
			(void)peer_send(to, b.data, b.len, NULL, 0);
	}
	buf_destroy(&b);
}

static void on_pex(struct peer *p, const uint8_t *payload, size_t len)
{
	static struct wire_pex pex;
	struct xfer *xf = p->xf;
	if (wire_pex_parse(&pex, payload, payload + len) != 0)
		return;
	for (size_t i = 0; i < pex.n_added; i++) {
		const struct wire_peer *w = &pex.added[i];
		struct sockaddr_storage ss;
		memset(&ss, 0, sizeof ss);
		socklen_t sl;
		if (w->family == 4) {
			struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
			s4->sin_family = AF_INET;
			memcpy(&s4->sin_addr, w->addr, 4);
			s4->sin_port = htons(w->port);
			sl = sizeof *s4;
		} else {
			struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
			s6->sin6_family = AF_INET6;
			memcpy(&s6->sin6_addr, w->addr, 16);
			s6->sin6_port = htons(w->port);
			sl = sizeof *s6;
		}
		struct known_peer *kp = known_add(xf, &ss, sl, "pex");
		if (kp && (w->flags & WIRE_PEX_F_ENCRYPTION) == 0 &&
		    xf->node->cfg.encryption == ENCRYPTION_PREFER)
			kp->plain_only = false; /* try encrypted first anyway; it falls back */
	}
}

/* ------------------------------------------------------- messages */

/* Find and remove our request for (piece, block); false if unrequested. */
/* Forget our request for this block; true if there was one, its send time
 * in *sent_ms when that is not NULL. */
static bool take_request(struct peer *p, uint32_t piece, uint32_t block, uint64_t *sent_ms)
{
	for (size_t i = 0; i < p->n_reqs; i++) {
		if (p->reqs[i].piece == piece && p->reqs[i].block == block) {
			if (sent_ms)
				*sent_ms = p->reqs[i].sent_ms;
			p->reqs[i] = p->reqs[--p->n_reqs];
			return true;
		}
	}
	return false;
}

static int on_piece(struct peer *p, const struct wire_msg *m)
{
	struct xfer *xf = p->xf;
	uint32_t piece = m->u.piece.index, begin = m->u.piece.begin;
	size_t len = m->u.piece.len;
	if (!xf->picker || begin % XFER_BLOCK_SIZE != 0)
		return -EBADMSG;
	uint32_t block = begin / XFER_BLOCK_SIZE;
	uint64_t sent_ms;
	if (!take_request(p, piece, block, &sent_ms))
		return 0; /* unrequested, late or cancelled: ignored, and not counted */
	p->last_block_ms = now_ms();
	p->snubbed = false;
	p->down_total += len;
	p->down_tick += len;
	xf->down_total += len;
	xf->down_tick += len;
	adapt_window(p, p->last_block_ms - sent_ms);
	if (piece >= picker_num_pieces(xf->picker) || block >= picker_piece_blocks(xf->picker, piece))
		return -EBADMSG;
	uint32_t want = picker_piece_len(xf->picker, piece) - begin;
	if (want > XFER_BLOCK_SIZE)
		want = XFER_BLOCK_SIZE;
	if (len != want)
		return -EBADMSG;
	if (picker_block_state(xf->picker, piece, block) != PICKER_BLOCK_REQUESTED) {
		request_more(p);
		return 0; /* another peer's copy won the race */
	}
	uint32_t cancel[PICKER_MAX_REQUESTERS];
	size_t nc = 0;
	if (picker_mark_writing(xf->picker, p->uid, piece, block, cancel, PICKER_MAX_REQUESTERS, &nc) != 0)
		return 0;
	for (size_t i = 0; i < nc; i++) {
		struct peer *o = find_peer(xf, cancel[i]);
		if (o && take_request(o, piece, block, NULL)) {
			struct wire_block b = { piece, begin, (uint32_t)len };
			uint8_t c[WIRE_BLOCK_MSG_LEN];
			wire_put_block(c, WIRE_CANCEL, &b);
			(void)peer_send(o, c, sizeof c, NULL, 0);
		}
	}
	if (xf->n_wq == xf->cap_wq) {
		size_t cap = xf->cap_wq ? xf->cap_wq * 2 : 256;
		struct block **q = realloc(xf->wq, cap * sizeof *q);
		if (!q)
			return -ENOMEM;
		xf->wq = q;
		xf->cap_wq = cap;
	}
	if (!xf->leaves)
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
	memcpy(b->data, m->u.piece.data, len);
	xf->wq[xf->n_wq++] = b;
	xf->write_queued += b->len;
	kick_writes(xf);
	request_more(p);
	return 0;
}

static int on_request(struct peer *p, const struct wire_block *b)
{
	struct xfer *xf = p->xf;
	const struct swarm *sw = xf->sw;
	if (!sw->meta || !xf->picker || b->index >= sw->meta->total_pieces)
		return -EBADMSG; /* out of range: protocol violation */
	uint32_t plen = picker_piece_len(xf->picker, b->index);
	/* libtorrent models v2 with pad files up to each piece boundary and asks
	 * for whole 16 KiB blocks that run past a file's end; such a block is
	 * served as the file's bytes followed by zeros.  Past the piece length
	 * itself is a protocol violation. */
	if (b->length == 0 || b->length > XFER_BLOCK_SIZE || b->begin >= plen ||
	    (uint64_t)b->begin + b->length > sw->meta->piece_length)
		return -EBADMSG;
	if (p->am_choking || xf->node->cfg.no_upload || sw->state == SWARM_PAUSED ||
	    !swarm_have_test(sw, b->index))
		return 0; /* not served; BEP 3 lets us ignore it */
	if (p->n_inq >= PEER_MAX_INQ)
		return -ENOBUFS; /* request flood */
	p->inq[p->n_inq++] = *b;
	serve_requests(p);
	return 0;
}

int engine_on_message(struct peer *p, const struct wire_msg *m)
{
	struct xfer *xf = p->xf;
	if (!xf || p->state != PEER_ACTIVE)
		return -EPROTO;
	const struct swarm *sw = xf->sw;
	switch (m->type) {
	case WIRE_KEEPALIVE:
		p->chatter++;
		return 0;
	case WIRE_CHOKE:
		p->peer_choking = true;
		drop_requests(p);
		return 0;
	case WIRE_UNCHOKE:
		p->peer_choking = false;
		request_more(p);
		return 0;
	case WIRE_INTERESTED:
		p->peer_interested = true;
		if (p->am_choking && !xf->node->cfg.no_upload && sw->state != SWARM_PAUSED) {
			/* A free upload slot is given at once rather than at the next round. */
			unsigned unchoked = 0;
			for (struct peer *o = xf->peers; o; o = o->next)
				unchoked += o->state == PEER_ACTIVE && !o->am_choking;
			if (unchoked < ENGINE_UPLOAD_SLOTS)
				set_choke(p, false);
			else
				xf->rechoke = true;
		}
		return 0;
	case WIRE_NOT_INTERESTED:
		p->peer_interested = false;
		xf->rechoke = true; /* its slot is free for someone else */
		return 0;
	case WIRE_HAVE:
		if (!sw->meta || !xf->picker)
			return 0;
		if (m->u.have >= sw->meta->total_pieces)
			return -EBADMSG;
		if (!p->has.bits && peer_meta_ready(p) != 0)
			return -ENOMEM;
		if (picker_peer_have(xf->picker, &p->has, m->u.have) != 0)
			return -EBADMSG;
		update_interest(p);
		request_more(p);
		return 0;
	case WIRE_BITFIELD:
		if (!sw->meta || !xf->picker) {
			if (m->u.bitfield.len > WIRE_MAX_BITFIELD)
				return -EMSGSIZE;
			free(p->early_bitfield);
			p->early_bitfield = malloc(m->u.bitfield.len ? m->u.bitfield.len : 1);
			if (!p->early_bitfield)
				return -ENOMEM;
			memcpy(p->early_bitfield, m->u.bitfield.bits, m->u.bitfield.len);
			p->early_bitfield_len = m->u.bitfield.len;
			return 0;
		} else {
			struct bitfield in;
			int rc = bitfield_init(&in, sw->meta->total_pieces);
			if (rc == 0)
				rc = bitfield_from_wire(&in, m->u.bitfield.bits, m->u.bitfield.len);
			if (rc == 0 && !p->has.bits)
				rc = peer_meta_ready(p);
			if (rc == 0)
				rc = picker_peer_bitfield(xf->picker, &p->has, &in);
			bitfield_destroy(&in);
			if (rc)
				return -EBADMSG;
			update_interest(p);
			request_more(p);
			return 0;
		}
	case WIRE_REQUEST:
		return on_request(p, &m->u.block);
	case WIRE_CANCEL:
		for (size_t i = 0; i < p->n_inq; i++) {
			if (p->inq[i].index == m->u.block.index && p->inq[i].begin == m->u.block.begin) {
				memmove(p->inq + i, p->inq + i + 1, (p->n_inq - i - 1) * sizeof *p->inq);
				p->n_inq--;
				break;
			}
		}
		return 0;
	case WIRE_PIECE:
		return on_piece(p, m);
	case WIRE_PORT:
		return 0;
	case WIRE_EXTENDED:
		if (m->u.ext.id == WIRE_EXT_HANDSHAKE_ID) {
			if (wire_ext_hs_parse(&p->ext, m->u.ext.payload, m->u.ext.payload + m->u.ext.len) != 0)
				return -EBADMSG;
			p->ext_ok = true;
			p->listen_port = p->ext.port;
			snprintf(p->client, sizeof p->client, "%s", p->ext.client);
			if (metadata_announced(p) != 0)
				return -ENOMEM;
			if (xf->md_kick)
				request_metadata_all(xf);
			else
				request_metadata(p);
			/* Peer exchange: the newcomer hears about everyone now, and
			 * everyone hears about the newcomer at the next tick (BEP 11
			 * leaves the schedule to us; waiting 30 s for the first round
			 * kept leechers from finding each other). */
			xf->pex_due = true;
			if (!p->outgoing && p->listen_port) {
				struct sockaddr_storage ss = p->addr;
				if (ss.ss_family == AF_INET)
					((struct sockaddr_in *)&ss)->sin_port = htons(p->listen_port);
				else
					((struct sockaddr_in6 *)&ss)->sin6_port = htons(p->listen_port);
				struct known_peer *kp = known_add(xf, &ss, p->addr_len, "incoming");
				if (kp) {
					if (kp->banned)
						return -EACCES;
					kp->connected = true;
					p->known = kp;
				}
			}
			return 0;
		}
		if (m->u.ext.id == EXT_UT_METADATA) {
			return on_metadata_msg(p, m->u.ext.payload, m->u.ext.len);
		}
		if (m->u.ext.id == EXT_UT_PEX) {
			on_pex(p, m->u.ext.payload, m->u.ext.len);
			return 0;
		}
		return 0;
	case WIRE_HASH_REQUEST:
		on_hash_request(p, &m->u.hash_req);
		return 0;
	case WIRE_HASHES:
		on_hashes(p, m);
		return 0;
	case WIRE_HASH_REJECT:
		/* Ask someone else at the next tick; only the peer asked may say so. */
		if (xf->lf && p->uid == xf->layers_peer)
			xf->layers_asked_ms = 0;
		return 0;
	default:
		return 0;
	}
}

/* ---------------------------------------------------------- timers */

static void choke_round(struct xfer *xf, uint64_t now)
{
	struct choker_peer cp[ENGINE_MAX_PEERS_SWARM];
	struct peer *list[ENGINE_MAX_PEERS_SWARM];
	bool unchoke[ENGINE_MAX_PEERS_SWARM];
	size_t n = 0;
	for (struct peer *p = xf->peers; p && n < ENGINE_MAX_PEERS_SWARM; p = p->next) {
		if (p->state != PEER_ACTIVE)
			continue;
		list[n] = p;
		cp[n] = (struct choker_peer){ .id = p->uid, .interested = p->peer_interested,
					      .snubbed = p->snubbed,
					      .rate_from = (uint64_t)p->down_rate,
					      .rate_to = (uint64_t)p->up_rate };
		n++;
	}
	xf->last_choke_ms = now;
	if (n == 0)
		return;
	bool seeding = xf->sw->state == SWARM_SEEDING;
	if (xf->node->cfg.no_upload || xf->sw->state == SWARM_PAUSED ||
	    choker_decide(cp, n, seeding, ENGINE_UPLOAD_SLOTS, now, &xf->choker, &xf->eng->rng,
			  unchoke) < 0)
		memset(unchoke, 0, sizeof unchoke);
	for (size_t i = 0; i < n; i++)
		set_choke(list[i], !unchoke[i]);
}

static void peer_tick(struct peer *p, uint64_t now, double dt)
{
	if (p->state != PEER_ACTIVE) {
		if (now - p->connected_ms > PEER_HANDSHAKE_TIMEOUT_MS)
			peer_close(p, "handshake timed out");
		return;
	}
	if (now - p->last_recv_ms > PEER_IDLE_TIMEOUT_MS) {
		peer_close(p, "idle");
		return;
	}
	/* Messages that carry nothing cost us parsing: a stream of them is
	 * abuse, not forward compatibility. */
	uint64_t chatter = p->chatter + (p->dec.skipped - p->skipped_seen);
	p->chatter = 0;
	p->skipped_seen = p->dec.skipped;
	if ((double)chatter > PEER_MAX_CHATTER_PER_S * (dt > 1.0 ? dt : 1.0)) {
		peer_close(p, "flooding with keep-alives or unknown messages");
		return;
	}
	p->down_rate = 0.6 * p->down_rate + 0.4 * (double)p->down_tick / dt;
	p->up_rate = 0.6 * p->up_rate + 0.4 * (double)p->up_tick / dt;
	p->down_tick = p->up_tick = 0;
	update_read_mode(p); /* limits may have changed */
	if (now - p->last_send_ms > PEER_KEEPALIVE_MS) {
		uint8_t k[WIRE_KEEPALIVE_LEN];
		wire_put_keepalive(k);
		(void)peer_send(p, k, sizeof k, NULL, 0);
	}
	for (size_t i = 0; i < p->n_reqs; i++) {
		if (now - p->reqs[i].sent_ms > PEER_REQUEST_TIMEOUT_MS) {
			log_debug("peer %s: requests timed out", p->name);
			p->snubbed = true;
			drop_requests(p);
			break;
		}
	}
	request_more(p);
	serve_requests(p);
}

static void xfer_tick(struct xfer *xf, uint64_t now, double dt)
{
	struct swarm *sw = xf->sw;
	xf->down_rate = 0.6 * xf->down_rate + 0.4 * (double)xf->down_tick / dt;
	xf->up_rate = 0.6 * xf->up_rate + 0.4 * (double)xf->up_tick / dt;
	xf->down_tick = xf->up_tick = 0;
	for (struct peer *p = xf->peers, *next; p; p = next) {
		next = p->next;
		peer_tick(p, now, dt);
	}
	if (xf->rechoke || now - xf->last_choke_ms >= ENGINE_CHOKE_INTERVAL_MS) {
		xf->rechoke = false;
		choke_round(xf, now);
	}
	if (xf->pex_due || now - xf->last_pex_ms >= ENGINE_PEX_INTERVAL_MS) {
		xf->pex_due = false;
		xf->last_pex_ms = now;
		send_pex(xf);
	}
	if (!sw->meta && xf->mdf && now % 10000 < 1000) {
		/* Re-ask pieces nobody delivered; a size that got nothing in a
		 * whole round gives way to the next announced size. */
		(void)mdfetch_round(xf->mdf);
		xf->md_kick = true;
	}
	if (!sw->meta && xf->mdf && xf->md_kick)
		request_metadata_all(xf);
	request_layers(xf);
	if (xf->disk_full && now >= xf->disk_retry_ms) {
		struct statvfs vfs;
		if (statvfs(sw->root, &vfs) == 0 &&
		    (uint64_t)vfs.f_bavail * vfs.f_frsize >= 2 * (sw->meta ? sw->meta->piece_length : 1u << 20)) {
			log_info("swarm %" PRId64 ": space is back; resuming", sw->id);
			xf->disk_full = false;
			sw->error[0] = '\0';
			for (struct peer *p = xf->peers; p; p = p->next)
				request_more(p);
		} else {
			xf->disk_retry_ms = now + 5000;
		}
	}
	flush_have(xf);
	flush_peer_rows(xf);
	connect_more(xf, now);
	apply_swarm_limits(xf);
}

static void tick(evutil_socket_t fd, short what, void *arg)
{
	struct engine *eng = arg;
	(void)fd;
	(void)what;
	uint64_t now = now_ms();
	double dt = eng->last_tick_ms ? (double)(now - eng->last_tick_ms) / 1000.0 : 1.0;
	if (dt < 0.1)
		dt = 0.1;
	eng->last_tick_ms = now;
	for (struct peer *p = eng->pending, *next; p; p = next) {
		next = p->next;
		if (now - p->connected_ms > PEER_HANDSHAKE_TIMEOUT_MS)
			peer_close(p, "handshake timed out");
	}
	for (struct swarm *sw = eng->node->swarms; sw; sw = sw->next)
		if (sw->xfer && !sw->xfer->stopped)
			xfer_tick(sw->xfer, now, dt);
}

/* ------------------------------------------------------------ JSON */

json_t *engine_status_json(struct engine *eng)
{
	struct node *node = eng->node;
	double down = 0, up = 0;
	for (struct swarm *sw = node->swarms; sw; sw = sw->next)
		if (sw->xfer) {
			down += sw->xfer->down_rate;
			up += sw->xfer->up_rate;
		}
	json_t *o = json_pack("{s:b,s:i,s:b,s:s,s:I,s:I,s:i,s:f,s:f,s:b}", "running", 1, "peer_port",
			      (int)node->cfg.peer_port, "ipv6", eng->listen6 != NULL, "encryption",
			      config_encryption_name(node->cfg.encryption), "upload_limit",
			      (json_int_t)node->cfg.upload_limit, "download_limit",
			      (json_int_t)node->cfg.download_limit, "peers", (int)eng->n_peers,
			      "download_rate", down, "upload_rate", up, "no_upload",
			      node->cfg.no_upload);
	size_t serve, write;
	unsigned unchoked;
	daemon_queued(node, &serve, &write, &unchoked);
	if (o) {
		json_object_set_new(o, "peer_db_commits", json_integer((json_int_t)eng->peer_db_commits));
		json_object_set_new(o, "serve_queued_bytes", json_integer((json_int_t)serve));
		json_object_set_new(o, "serve_budget_bytes", json_integer(ENGINE_SERVE_BUDGET));
		json_object_set_new(o, "write_queued_bytes", json_integer((json_int_t)write));
		json_object_set_new(o, "write_budget_bytes", json_integer(ENGINE_WRITE_BUDGET));
	}
	return o;
}

json_t *engine_swarm_json(const struct swarm *sw)
{
	const struct xfer *xf = sw->xfer;
	if (!xf)
		return json_pack("{s:i,s:f,s:f,s:I,s:I}", "peers", 0, "download_rate", 0.0,
				 "upload_rate", 0.0, "downloaded", (json_int_t)0, "uploaded",
				 (json_int_t)0);
	json_t *o = json_pack("{s:i,s:f,s:f,s:I,s:I,s:I,s:i}", "peers", (int)xf->n_peers,
			      "download_rate", xf->down_rate, "upload_rate", xf->up_rate,
			      "downloaded", (json_int_t)xf->down_total, "uploaded",
			      (json_int_t)xf->up_total, "hash_failures", (json_int_t)xf->hash_fails,
			      "known_peers", (int)xf->n_known);
	if (xf->disk_full)
		json_object_set_new(o, "disk_error", json_string(sw->error));
	if (xf->layers_pending)
		json_object_set_new(o, "waiting_for", json_string("piece layers"));
	return o;
}

json_t *engine_peers_json(const struct swarm *sw)
{
	json_t *list = json_array();
	const struct xfer *xf = sw->xfer;
	for (const struct peer *p = xf ? xf->peers : NULL; p; p = p->next) {
		double progress = p->has.nbits ? (double)p->has.count / p->has.nbits : 0.0;
		json_t *o =
			json_pack("{s:s,s:s,s:b,s:s,s:s,s:f,s:f,s:f,s:I,s:I,s:b,s:b,s:b,s:b,s:i}",
				  "address", p->name, "direction", p->outgoing ? "out" : "in",
				  "encrypted", p->crypt != NULL, "client", p->client, "state",
				  p->state == PEER_ACTIVE ? "active" : "handshake", "progress", progress,
				  "download_rate", p->down_rate, "upload_rate", p->up_rate, "downloaded",
				  (json_int_t)p->down_total, "uploaded", (json_int_t)p->up_total,
				  "am_choking", p->am_choking, "am_interested", p->am_interested,
				  "peer_choking", p->peer_choking, "peer_interested", p->peer_interested,
				  "requests", (int)p->n_reqs);
		/* Its share of the swarm's own limits, bytes/s (0: no such limit). */
		json_object_set_new(o, "upload_share", json_integer((json_int_t)p->share_up));
		json_object_set_new(o, "download_share", json_integer((json_int_t)p->share_down));
		json_array_append_new(list, o);
	}
	return list;
}
