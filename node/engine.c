/* engine.c: the transfer engine: its lifecycle, a swarm's transfer state, the timers and JSON views. */
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

static struct evconnlistener *listen_on(struct engine *eng, int family, uint16_t port);
static void reap(evutil_socket_t fd, short what, void *arg);
static void load_peer(void *ctx, const char *host, uint16_t port, const char *source,
		      bool banned);
static void choke_round(struct xfer *xf, uint64_t now);
static void peer_tick(struct peer *p, uint64_t now, double dt);
static void xfer_tick(struct xfer *xf, uint64_t now, double dt);

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

/* node->cfg.encryption is read at each outgoing connection and each
 * handshake; the hub keeps its own copy for sniffing incoming ones. */
void engine_set_encryption(struct engine *eng, enum encryption_policy policy)
{
	eng->node->cfg.encryption = policy;
	conn_hub_set_policy(eng->conns, policy);
}

struct engine *engine_new(struct node *node, char *err, size_t err_len)
{
	struct engine *eng = calloc(1, sizeof *eng);
	if (!eng) {
		snprintf(err, err_len, "out of memory");
		return NULL;
	}
	eng->node = node;
	eng->have_changed = engine_swarm_have_changed;
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
	eng->conns = conn_hub_new(node->base, eng->limit, node->cfg.encryption,
				  node->cfg.cipher == CIPHER_XCHACHA ? CRYPT_CIPHERS_XCHACHA_ONLY
								     : CRYPT_CIPHERS_AUTO,
				  config_crypto_threads(&node->cfg, sysconf(_SC_NPROCESSORS_ONLN)),
				  &peer_conn_ops, eng);
	if (!eng->conns) {
		snprintf(err, err_len, "out of memory");
		goto fail;
	}
	eng->tick = event_new(node->base, -1, EV_PERSIST, tick, eng);
	eng->reaper = event_new(node->base, -1, 0, reap, eng);
	eng->serve_wake = event_new(node->base, -1, 0, serve_wake, eng);
	struct timeval one = { ENGINE_TICK_MS / 1000, (ENGINE_TICK_MS % 1000) * 1000 };
	if (!eng->tick || !eng->reaper || !eng->serve_wake || event_add(eng->tick, &one) != 0) {
		snprintf(err, err_len, "cannot create timers");
		goto fail;
	}
	return eng;
fail:
	engine_free(eng);
	return NULL;
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
	conn_hub_free(eng->conns); /* closes any connection left */
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

void engine_wire_bytes(const struct engine *eng, uint64_t out[2])
{
	out[0] = out[1] = 0;
	if (eng)
		conn_hub_wire_bytes(eng->conns, out);
}

unsigned engine_peer_count(const struct engine *eng)
{
	return eng ? eng->n_peers : 0;
}

void engine_peer_id(const struct engine *eng, uint8_t out[20])
{
	if (eng)
		memcpy(out, eng->peer_id, WIRE_PEER_ID_LEN);
	else
		memset(out, 0, WIRE_PEER_ID_LEN);
}

/* ------------------------------------------------------- swarm state */

static void load_peer(void *ctx, const char *host, uint16_t port, const char *source,
		      bool banned)
{
	struct swarm *sw = ctx;
	known_load(sw->xfer, host, port, source, banned);
}

void engine_swarm_have_changed(struct engine *eng, struct swarm *sw)
{
	struct xfer *xf = sw->xfer;
	if (!eng || !xf || !sw->meta)
		return;
	bool running = !xf->stopped;
	/* Peers hold availability counted into the old picker: reconnect. */
	engine_swarm_stop(eng, sw);
	/* Without a disk layer (a sleeping seed) there is no picker either:
	 * the start below sets both up if the swarm is now incomplete. */
	if (xf->dio && rebuild_picker(xf) != 0)
		log_error("swarm %" PRId64 ": cannot rebuild its piece picker", sw->id);
	if (check_adopted(xf) != 0) {
		swarm_fail(xf);
		return;
	}
	if (sw->role == SWARM_ROLE_JOIN && sw->state == SWARM_SEEDING && !swarm_done(sw))
		swarm_set_state(eng->node, sw, SWARM_DOWNLOADING);
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
		if (addrbook_new(ENGINE_MAX_KNOWN_PEERS, &xf->book) != 0) {
			free(xf);
			return -ENOMEM;
		}
		xf->eng = eng;
		xf->node = eng->node;
		xf->sw = sw;
		choker_state_init(&xf->choker);
		sw->xfer = xf;
		swarm_note_changed(eng->node);
		xf->loading_peers = true;
		swarm_db_load_peers(eng->node, sw, load_peer, sw);
		xf->loading_peers = false;
	}
	xf->stopped = false;
	xfer_wake(xf);
	/* A complete swarm needs no picker or open files until a peer comes
	 * (xfer_wake_disk): tens of thousands of idle seeds hold no file
	 * descriptor and little memory. */
	bool complete = sw->meta && swarm_done(sw);
	if (sw->meta && !xf->picker && !complete) {
		int rc = xfer_setup_meta(xf);
		if (rc) {
			swarm_set_state(eng->node, sw, SWARM_ERROR);
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
		swarm_set_state(eng->node, sw, swarm_done(sw) ? SWARM_SEEDING : SWARM_DOWNLOADING);
	else if (!sw->meta)
		swarm_set_state(eng->node, sw, SWARM_METADATA);
	/* Retry every remembered address soon. */
	addrbook_retry_all(xf->book);
	return 0;
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
	if (p->state == PEER_DEAD)
		return;
	if (p->state != PEER_ACTIVE) {
		if (now - peer_connected_ms(p) > PEER_HANDSHAKE_TIMEOUT_MS)
			peer_close_timeout(p, "handshake timed out");
		return;
	}
	if (now - peer_last_recv_ms(p) > PEER_IDLE_TIMEOUT_MS) {
		peer_close(p, "idle");
		return;
	}
	/* Messages that carry nothing cost us parsing: a stream of them is
	 * abuse, not forward compatibility. */
	uint64_t skipped = conn_skipped(p->conn);
	uint64_t chatter = p->chatter + (skipped - p->skipped_seen);
	p->chatter = 0;
	p->skipped_seen = skipped;
	if ((double)chatter > PEER_MAX_CHATTER_PER_S * (dt > 1.0 ? dt : 1.0)) {
		peer_close(p, "flooding with keep-alives or unknown messages");
		return;
	}
	p->down_rate = 0.6 * p->down_rate + 0.4 * (double)p->down_tick / dt;
	p->up_rate = 0.6 * p->up_rate + 0.4 * (double)p->up_tick / dt;
	p->down_tick = p->up_tick = 0;
	update_read_mode(p); /* limits may have changed */
	if (now - peer_last_send_ms(p) > PEER_KEEPALIVE_MS) {
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
	if (!sw->meta && xf->mdf && now % ENGINE_MD_ROUND_MS < ENGINE_TICK_MS) {
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
			xf->disk_retry_ms = now + ENGINE_DISK_RETRY_MS;
		}
	}
	flush_have(xf);
	flush_peer_rows(xf);
	connect_more(xf, now);
	apply_swarm_limits(xf);
}

void tick(evutil_socket_t fd, short what, void *arg)
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
		if (now - peer_connected_ms(p) > PEER_HANDSHAKE_TIMEOUT_MS)
			peer_close_timeout(p, "handshake timed out");
	}
	eng->down_rate = eng->up_rate = 0;
	for (struct xfer *xf = eng->awake, *next; xf; xf = next) {
		next = xf->awake_next;
		if (!xf->stopped)
			xfer_tick(xf, now, dt);
		eng->down_rate += xf->down_rate;
		eng->up_rate += xf->up_rate;
		/* xfer_tick may close peers but never frees an xfer, so `next`
		 * stays valid; it may wake others, which go to the front. */
		if (xfer_can_sleep(xf)) {
			xfer_sleep(xf);
			(void)xfer_release_disk(xf); /* its files close until a peer comes */
		}
	}
}

/* ----------------------------------------------------------- figures */

void engine_node_stats(const struct engine *eng, struct engine_node_stats *out)
{
	memset(out, 0, sizeof *out);
	if (!eng)
		return;
	struct node *node = eng->node;
	out->down_rate = eng->down_rate;
	out->up_rate = eng->up_rate;
	out->ipv6 = eng->listen6 != NULL;
	out->peers = eng->n_peers;
	out->peer_db_commits = eng->peer_db_commits;
	unsigned unchoked;
	daemon_queued(node, &out->serve_queued, &out->write_queued, &unchoked);
	out->serve_budget = ENGINE_SERVE_BUDGET;
	out->write_budget = ENGINE_WRITE_BUDGET;
	if (eng->conns) {
		out->crypto_threads = conn_hub_crypto_threads(eng->conns);
		conn_hub_off_loop(eng->conns, &out->sealed_off_loop, &out->opened_off_loop);
	}
}

void engine_swarm_stats(const struct swarm *sw, struct engine_swarm_stats *out)
{
	memset(out, 0, sizeof *out);
	const struct xfer *xf = sw->xfer;
	if (!xf)
		return;
	out->active = true;
	out->peers = xf->n_peers;
	out->known_peers = (unsigned)addrbook_count(xf->book);
	out->down_rate = xf->down_rate;
	out->up_rate = xf->up_rate;
	out->downloaded = xf->down_total;
	out->uploaded = xf->up_total;
	out->hash_failures = xf->hash_fails;
	out->disk_error = xf->disk_full;
	out->waiting_layers = xf->layers_pending;
}

void engine_each_peer(const struct swarm *sw, void (*fn)(void *ctx, const struct engine_peer_info *),
		      void *ctx)
{
	const struct xfer *xf = sw->xfer;
	for (const struct peer *p = xf ? xf->peers : NULL; p; p = p->next) {
		struct engine_peer_info i = {
			.address = p->name,
			.client = p->client,
			.outgoing = p->outgoing,
			.encrypted = p->conn && conn_encrypted(p->conn),
			.cipher = p->conn ? conn_cipher_name(p->conn) : NULL,
			.active = p->state == PEER_ACTIVE,
			.progress = p->has.nbits ? (double)p->has.count / p->has.nbits : 0.0,
			.down_rate = p->down_rate,
			.up_rate = p->up_rate,
			.downloaded = p->down_total,
			.uploaded = p->up_total,
			.am_choking = p->am_choking,
			.am_interested = p->am_interested,
			.peer_choking = p->peer_choking,
			.peer_interested = p->peer_interested,
			.requests = p->n_reqs,
			.upload_share = p->share_up,
			.download_share = p->share_down,
		};
		fn(ctx, &i);
	}
}

/* ---------------------------------------------------------- streaming readers */

bool engine_piece_ready(const struct swarm *sw, uint32_t piece)
{
	if (!sw->meta || piece >= sw->meta->total_pieces)
		return false;
	if (swarm_have_test(sw, piece))
		return true;
	const struct xfer *xf = sw->xfer;
	return xf && xf->picker && bitfield_test(picker_have(xf->picker), piece);
}

/* Bytes a reader's window covers ahead of its position: a few seconds of a
 * high-bitrate video, and never fewer than ENGINE_STREAM_MIN_PIECES pieces. */
#define ENGINE_STREAM_WINDOW_BYTES (8u << 20)
#define ENGINE_STREAM_MIN_PIECES 4u
#define ENGINE_STREAM_MAX_PIECES 512u

/* Whether any reader holds a window in this swarm. */
static bool any_window(const struct xfer *xf)
{
	for (size_t w = 0; w < ENGINE_STREAM_WINDOWS; w++)
		if (xf->win[w].owner)
			return true;
	return false;
}

/* Peers may now want other pieces first: ask them at once, not at their
 * next block (after a reader's jump, cancelling what is out for pieces
 * outside the windows). */
static void selection_moved(struct xfer *xf, bool jump)
{
	/* At most one cancelling round per ENGINE_CANCEL_EVERY_MS: players
	 * open a request per seek, and many readers at once must not keep
	 * throwing away what is on its way.  A jump inside that time is owed,
	 * not dropped: the reader's next word on its window (readers say it
	 * again every second, engine_stream_window) pays it, unless it is
	 * older than ENGINE_CANCEL_OWED_MS or no window is left.  Before, a
	 * seek soon after a start found its window's requests queued behind
	 * the start's, at the seed. */
	uint64_t now = now_ms();
	if (jump && !xf->cancel_owed) {
		xf->cancel_owed = true;
		xf->cancel_owed_ms = now;
	}
	if (xf->cancel_owed && (now - xf->cancel_owed_ms > ENGINE_CANCEL_OWED_MS || !any_window(xf)))
		xf->cancel_owed = false;
	bool cancel = xf->cancel_owed &&
		      (!xf->last_cancel_ms || now - xf->last_cancel_ms >= ENGINE_CANCEL_EVERY_MS);
	if (cancel) {
		xf->last_cancel_ms = now;
		xf->cancel_owed = false;
	}
	for (struct peer *p = xf->peers; p; p = p->next) {
		if (p->state != PEER_ACTIVE)
			continue;
		update_interest(p);
		if (cancel)
			cancel_for_window(p);
		request_more(p);
	}
}

/* Pieces in a reader's window. */
static uint32_t window_pieces(const struct metainfo *mi)
{
	uint64_t count = ENGINE_STREAM_WINDOW_BYTES / mi->piece_length;
	if (count < ENGINE_STREAM_MIN_PIECES)
		count = ENGINE_STREAM_MIN_PIECES;
	if (count > ENGINE_STREAM_MAX_PIECES)
		count = ENGINE_STREAM_MAX_PIECES;
	return (uint32_t)count;
}

uint64_t engine_stream_window_span(const struct swarm *sw)
{
	return sw->meta ? (uint64_t)window_pieces(sw->meta) * sw->meta->piece_length : 0;
}

bool engine_block_ready(const struct swarm *sw, uint32_t piece, uint32_t block)
{
	if (engine_piece_ready(sw, piece))
		return true;
	const struct xfer *xf = sw->xfer;
	return xf && xf->picker && proof_block_ok(xf, piece, block);
}

int engine_stream_window(struct engine *eng, struct swarm *sw, uint64_t owner, size_t file,
			 uint64_t offset)
{
	(void)eng;
	const struct metainfo *mi = sw->meta;
	if (!mi)
		return -ENODATA;
	if (file >= mi->file_count || offset > mi->files[file].size || owner == 0)
		return -ERANGE;
	if (swarm_file_prio(sw, file) == SWARM_PRIO_SKIP)
		return -EPERM;
	const struct metainfo_file *mf = &mi->files[file];
	struct xfer *xf = sw->xfer;
	if (!xf || mf->size == 0)
		return 0;
	if (offset == mf->size)
		offset = mf->size - 1;
	uint32_t first, last;
	if (swarm_file_pieces(sw, file, offset, mf->size - offset, &first, &last) != 0)
		return -ERANGE;
	uint32_t count = window_pieces(mi);
	if (count > last - first + 1)
		count = last - first + 1;
	int rc = select_window(xf, owner, first, count);
	if (rc > 0)
		selection_moved(xf, rc == 2);
	else if (rc == 0 && xf->cancel_owed)
		selection_moved(xf, false); /* the window said again pays a jump owed */
	return rc < 0 ? rc : 0;
}

void engine_stream_window_drop(struct engine *eng, struct swarm *sw, uint64_t owner)
{
	(void)eng;
	if (sw->xfer) {
		select_window_drop(sw->xfer, owner);
		if (!any_window(sw->xfer))
			sw->xfer->cancel_owed = false;
	}
}

int engine_swarm_selection_changed(struct engine *eng, struct swarm *sw)
{
	struct xfer *xf = sw->xfer;
	if (!eng || !xf)
		return 0;
	int failed = 0;
	if (xf->dio && sw->file_access) {
		bool created = false;
		for (size_t f = 0; f < sw->meta->file_count; f++) {
			if (diskio_set_file_access(xf->dio, f, sw->file_access[f]) != 0)
				return -EIO;
			if (sw->file_access[f] != STORAGE_CREATE && sw->file_access[f] != STORAGE_REPLACE)
				continue;
			/* Un-skipped: made now (O_EXCL) and recorded as ours.  One
			 * that cannot be made is skipped again, and so are the
			 * rest still to make (the caller says which and why). */
			int rc = failed ? failed : diskio_create_file(xf->dio, f);
			if (rc) {
				if (!failed)
					snprintf(sw->error, sizeof sw->error, "cannot create %s/%s: %s",
						 sw->root, sw->meta->files[f].path, strerror(-rc));
				failed = rc;
				sw->file_access[f] = STORAGE_SKIP;
				if (diskio_set_file_access(xf->dio, f, STORAGE_SKIP) != 0)
					return -EIO;
				continue;
			}
			sw->file_access[f] = STORAGE_OWN;
			created = true;
		}
		if (created && swarm_db_save_owned(eng->node, sw) != 0)
			return -EIO;
	}
	if (failed)
		return failed;
	if (select_apply(xf) != 0)
		return -ENOMEM;
	if (!swarm_done(sw) && sw->state == SWARM_SEEDING && sw->role == SWARM_ROLE_JOIN) {
		/* More to fetch: a complete swarm has no picker yet (an idle
		 * seed), and a running one goes back to downloading. */
		if (!xf->picker && !xf->stopped) {
			engine_swarm_stop(eng, sw);
			return engine_swarm_start(eng, sw);
		}
		swarm_set_state(eng->node, sw, SWARM_DOWNLOADING);
	} else if (swarm_done(sw) && sw->state == SWARM_DOWNLOADING) {
		swarm_set_state(eng->node, sw, SWARM_SEEDING);
	}
	xfer_wake(xf);
	selection_moved(xf, false);
	return 0;
}
