/* engine_peers.c: the address book, bans, incoming connections, handshakes and peer exchange (BEP 11). */
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
#include "node/engine_state.h"
#include "node/joincheck.h"
#include "node/node.h"
#include "node/ratelimit.h"
#include "transfer/ratesplit.h"
#include "node/swarm.h"
#include "node/workers.h"
#include "transfer/addrbook.h"
#include "transfer/merkle.h"
#include "transfer/metainfo.h"
#include "transfer/layerfetch.h"
#include "transfer/mdfetch.h"
#include "transfer/picker.h"
#include "transfer/storage.h"
#include "transfer/transfer.h"
#include "node/engine-parts.h"

static bool same_host(const struct sockaddr_storage *a, const struct sockaddr *b);
static bool host_banned(const struct xfer *xf, const struct sockaddr *sa);
static bool id_banned(const struct xfer *xf, const uint8_t id[WIRE_PEER_ID_LEN]);
static bool is_self(const struct xfer *xf, const struct addrbook_addr *a);
static bool handshake_slot_free(const struct engine *eng, const struct sockaddr *sa);
static void unlink_peer(struct peer **list, struct peer *p);
static bool evict_idle(struct xfer *xf, uint64_t now);
static bool peer_listen_addr(const struct peer *p, struct wire_peer *out);

_Static_assert(WIRE_PEER_ID_LEN == ADDRBOOK_PEER_ID_LEN, "a peer id is a peer id");

/* -------------------------------------------------------- known peers
 *
 * The address book itself (entries, back-off, caps, bans, whom to dial)
 * is transfer/addrbook.h, one per swarm in xf->book; this file feeds it
 * from the DHT, PEX, the user and incoming peers, dials what it answers,
 * and writes its rows to SQLite.  A peer holds its entry's handle in
 * p->known: a handle of an evicted entry goes stale, and every addrbook
 * call given one does nothing. */

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

/* Numeric host and port of an address ("?" and 0 for another family). */
uint16_t addr_host(const struct sockaddr_storage *ss, char *host, size_t len)
{
	uint16_t port = 0;
	if (addr_host_port((const struct sockaddr *)ss, host, len, &port) != 0)
		return 0;
	return port;
}

/* ------------------------------------------------------------- bans
 *
 * A ban (strike) covers three things, because a banned peer chooses how it
 * comes back (docs/security.md, "Bans"; the rings are transfer/addrbook.h's):
 *   - its host (the IP address, any port): incoming connections from it are
 *     refused at their BitTorrent handshake, before anything is sent to
 *     them, whether or not they would send an extension handshake;
 *   - its peer id, refused from any address and in either direction;
 *   - its address-book entry (IP and listen port), never dialled again.
 * Outgoing dials to other ports of a banned host stay allowed: we dial only
 * addresses someone gave us, and several nodes may share one IP (a NAT, or
 * every daemon of a loopback test). */

static bool host_banned(const struct xfer *xf, const struct sockaddr *sa)
{
	struct addrbook_addr a;
	if (addrbook_addr_from_sockaddr(sa, sizeof(struct sockaddr_storage), &a) != 0)
		return false;
	return addrbook_host_banned(xf->book, &a);
}

void ban_host(struct xfer *xf, const struct sockaddr *sa)
{
	struct addrbook_addr a;
	if (addrbook_addr_from_sockaddr(sa, sizeof(struct sockaddr_storage), &a) == 0)
		(void)addrbook_ban_host(xf->book, &a); /* 0: a is IPv4 or IPv6 */
}

static bool id_banned(const struct xfer *xf, const uint8_t id[WIRE_PEER_ID_LEN])
{
	return addrbook_id_banned(xf->book, id);
}

void ban_id(struct xfer *xf, const uint8_t id[WIRE_PEER_ID_LEN])
{
	(void)addrbook_ban_id(xf->book, id);
}

/* Ban the address-book entry `known` (if it still names one) and queue the
 * row that keeps the ban across restarts: the entry's address, or for a
 * peer with no entry (it never named a listen port), `from`, the address
 * it came from.  Every banned row's host is refused again at load. */
void ban_known(struct xfer *xf, uint64_t known, const struct sockaddr_storage *from)
{
	struct addrbook_entry e;
	struct sockaddr_storage ss = *from;
	const char *source = "incoming";
	if (addrbook_get(xf->book, known, &e) == 0) {
		(void)addrbook_ban_entry(xf->book, known); /* 0: the handle is live */
		(void)addrbook_addr_to_sockaddr(&e.addr, &ss);
		source = addrbook_source_name(e.source);
	}
	char host[INET6_ADDRSTRLEN];
	uint16_t port = addr_host(&ss, host, sizeof host);
	if (port)
		queue_peer_row(xf, host, port, source, true);
}

/* Address-book rows wait in xf->rows and go to SQLite in one transaction
 * (each commit is an fdatasync of the WAL, on the event loop): at the next
 * tick, when ENGINE_PEER_WRITE_BATCH wait, and at stop.  A PEX message of
 * 50 addresses costs one commit, not 50.  The address book is a cache: a
 * crash loses at most the last second's addresses; a ban lost so is made
 * again by the next bad data. */
void flush_peer_rows(struct xfer *xf)
{
	if (xf->n_rows == 0)
		return;
	if (xf->sw->in_db) {
		(void)swarm_db_save_peers(xf->node, xf->sw, xf->rows, xf->n_rows); /* logs */
		xf->eng->peer_db_commits++;
	}
	xf->n_rows = 0;
	/* An idle swarm holds no batch (ENGINE_PEER_WRITE_BATCH rows: 3.7 KiB). */
	free(xf->rows);
	xf->rows = NULL;
}

void queue_peer_row(struct xfer *xf, const char *host, uint16_t port, const char *source,
			   bool banned)
{
	if (xf->n_rows == ENGINE_PEER_WRITE_BATCH)
		flush_peer_rows(xf);
	if (!xf->rows && !(xf->rows = malloc(ENGINE_PEER_WRITE_BATCH * sizeof *xf->rows))) {
		log_warn("swarm %" PRId64 ": out of memory for address-book rows", xf->sw->id);
		return; /* the address book is a cache: the row is only not remembered */
	}
	struct swarm_peer_row *r = &xf->rows[xf->n_rows++];
	snprintf(r->host, sizeof r->host, "%s", host);
	r->port = port;
	snprintf(r->source, sizeof r->source, "%s", source);
	r->banned = banned;
	xfer_wake(xf); /* the tick writes the rows */
	if (xf->stopped)
		flush_peer_rows(xf); /* no tick runs for a stopped swarm */
}

/* Our own listen port on a loopback address: never dialled. */
static bool is_self(const struct xfer *xf, const struct addrbook_addr *a)
{
	if (a->port != xf->node->cfg.peer_port)
		return false;
	if (a->family == 4)
		return a->ip[0] == 127;
	static const uint8_t loop6[16] = { [15] = 1 };
	return a->family == 6 && memcmp(a->ip, loop6, 16) == 0;
}

/* Remember an address (transfer/addrbook.h, addrbook_add) and queue its
 * row when it is new.  Returns 0 or 1 (new, or already known) with its
 * handle in *known_out, -ELOOP for our own listen address, or addrbook_add's
 * error (-EAFNOSUPPORT, -EINVAL, -ENOSPC, -ENOMEM); *known_out is 0 then. */
int known_add(struct xfer *xf, const struct sockaddr_storage *ss, socklen_t len,
	      enum addrbook_source src, uint64_t *known_out)
{
	*known_out = 0;
	struct addrbook_addr a;
	int rc = addrbook_addr_from_sockaddr((const struct sockaddr *)ss, len, &a);
	if (rc)
		return rc;
	if (is_self(xf, &a))
		return -ELOOP;
	rc = addrbook_add(xf->book, &a, src, known_out);
	if (rc == 0 && !xf->loading_peers) {
		char host[INET6_ADDRSTRLEN] = "";
		uint16_t port = addr_host(ss, host, sizeof host);
		queue_peer_row(xf, host, port, addrbook_source_name(src), false);
	}
	return rc;
}

int known_add_text(struct xfer *xf, const char *host, uint16_t port, const char *source,
		   uint64_t *known_out)
{
	*known_out = 0;
	enum addrbook_source src;
	struct sockaddr_storage ss;
	socklen_t len = addr_from_numeric(host, port, &ss);
	if (addrbook_source_parse(source, &src) != 0 || len == 0)
		return -EINVAL;
	return known_add(xf, &ss, len, src, known_out);
}

/* A row of the address book from SQLite (banned: its entry and its host
 * are banned again).  A source this version does not know loads as "dht",
 * the least trusted; a banned host is banned even when the book has no
 * room for its entry. */
void known_load(struct xfer *xf, const char *host, uint16_t port, const char *source, bool banned)
{
	enum addrbook_source src;
	if (addrbook_source_parse(source, &src) != 0)
		src = ADDRBOOK_SRC_DHT;
	struct sockaddr_storage ss;
	socklen_t len = addr_from_numeric(host, port, &ss);
	if (len == 0)
		return;
	uint64_t h;
	if (known_add(xf, &ss, len, src, &h) >= 0 && banned)
		(void)addrbook_ban_entry(xf->book, h); /* 0: h is live */
	if (banned)
		ban_host(xf, (const struct sockaddr *)&ss);
}

int engine_add_peer(struct engine *eng, struct swarm *sw, const char *host, uint16_t port,
		    const char *source)
{
	(void)eng;
	if (!sw->xfer)
		return -EINVAL;
	uint64_t h;
	int rc = known_add_text(sw->xfer, host, port, source, &h);
	if (rc < 0)
		return rc;
	/* An address named again by the user, a magnet or a tracker is dialled
	 * again at once; one the DHT or a LAN announce repeats keeps its
	 * back-off, or a host spoofing LSD sources could have us redial a chosen
	 * address every few seconds. */
	if (strcmp(source, "lsd") != 0 && strcmp(source, "dht") != 0)
		(void)addrbook_retry_now(sw->xfer->book, h); /* 0: h is live */
	/* What the user gave (--peer, a magnet's x.pe) is recorded before the
	 * request returns: a crash in the next second must not forget the one
	 * address a join may have. */
	if (!sw->xfer->loading_peers && (strcmp(source, "user") == 0 || strcmp(source, "magnet") == 0))
		flush_peer_rows(sw->xfer);
	if (!sw->xfer->loading_peers)
		connect_more(sw->xfer, now_ms()); /* now, not at the next tick */
	return 0;
}

/* An incoming peer named its listen port (extension handshake): remember
 * that address, as connected.  Returns 0, or -EACCES when the address is
 * banned (drop the peer). */
int known_incoming(struct peer *p)
{
	struct xfer *xf = p->xf;
	struct sockaddr_storage ss = p->addr;
	if (ss.ss_family == AF_INET)
		((struct sockaddr_in *)&ss)->sin_port = htons(p->listen_port);
	else
		((struct sockaddr_in6 *)&ss)->sin6_port = htons(p->listen_port);
	uint64_t h;
	struct addrbook_entry e;
	if (known_add(xf, &ss, p->addr_len, ADDRBOOK_SRC_INCOMING, &h) < 0 ||
	    addrbook_get(xf->book, h, &e) != 0)
		return 0;
	if (e.banned)
		return -EACCES;
	(void)addrbook_set_connected(xf->book, h, true); /* 0: h is live */
	p->known = h;
	return 0;
}

void known_speaks_plain(struct peer *p)
{
	if (p->xf)
		(void)addrbook_set_plain_only(p->xf->book, p->known, true); /* -ENOENT: none */
}

void known_refuses_offer(struct peer *p)
{
	if (p->xf)
		(void)addrbook_set_legacy_hello(p->xf->book, p->known, true); /* -ENOENT: none */
}

/* Open connections to remembered peers while there is room, in the
 * address book's order (addrbook_candidates). */
void connect_more(struct xfer *xf, uint64_t now)
{
	struct engine *eng = xf->eng;
	if (xf->stopped || !swarm_runnable(xf->sw))
		return;
	/* A complete swarm waits to be asked; it does not dial out. */
	if (xf->sw->meta && swarm_done(xf->sw))
		return;
	if (xf->n_peers >= ENGINE_MAX_PEERS_SWARM || eng->n_peers >= ENGINE_MAX_PEERS_TOTAL)
		return;
	size_t room = ENGINE_MAX_PEERS_SWARM - xf->n_peers;
	if (room > ENGINE_MAX_PEERS_TOTAL - eng->n_peers)
		room = ENGINE_MAX_PEERS_TOTAL - eng->n_peers;
	uint64_t cand[ENGINE_MAX_PEERS_SWARM];
	size_t n = addrbook_candidates(xf->book, now, cand, room);
	for (size_t i = 0; i < n; i++) {
		struct addrbook_entry e;
		struct sockaddr_storage ss;
		if (addrbook_get(xf->book, cand[i], &e) != 0 || addrbook_dial(xf->book, cand[i], now) != 0)
			continue;
		socklen_t len = addrbook_addr_to_sockaddr(&e.addr, &ss);
		/* A dial that fails at once has closed (and unmarked) its peer;
		 * one that could not start at all must unmark the entry here. */
		if (!peer_connect(eng, xf, &ss, len, cand[i]))
			(void)addrbook_set_connected(xf->book, cand[i], false);
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

void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
		      int len, void *arg)
{
	struct engine *eng = arg;
	(void)l;
	if (eng->n_peers >= ENGINE_MAX_PEERS_TOTAL || !handshake_slot_free(eng, sa)) {
		evutil_closesocket(fd);
		return;
	}
	(void)peer_accept(eng, fd, sa, (socklen_t)len); /* in eng->pending, or fd closed */
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
		/* A hybrid is also met by a node that knows only its v1 link
		 * (it binds the keys to the v1 hash and 12 zero bytes). */
		uint8_t v1_key[CRYPT_INFO_HASH_LEN];
		if (swarm_v1_key(sw, v1_key) && crypt_hello_matches(hello, v1_key)) {
			memcpy(info_hash_out, v1_key, CRYPT_INFO_HASH_LEN);
			return 0;
		}
	}
	return -ENOENT;
}

/* The lowest-id swarm with transfers running whose key (v1: whose v1
 * info-hash) is the handshake's 20 bytes. */
static struct swarm *swarm_find_running(struct node *node, const uint8_t key[20], bool v1)
{
	struct swarm *found = NULL;
	size_t pos = 0;
	for (struct swarm *sw; (sw = swarm_next_by_key20(node, key, v1, &pos));)
		if (sw->xfer && !sw->xfer->stopped && (!found || sw->id < found->id))
			found = sw;
	return found;
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
int peer_meta_ready(struct peer *p)
{
	struct xfer *xf = p->xf;
	uint32_t n = xf->sw->meta->total_pieces;
	if (p->has.nbits == n && p->has.bits)
		return 0;
	int rc = bitfield_init(&p->has, n);
	if (rc)
		return rc;
	if (p->conn)
		conn_set_num_pieces(p->conn, n);
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
	/* A v1 torrent's peers are told nothing of v2 (BEP 52's upgrade bit). */
	bool v2 = !sw->key_v1 && (!sw->meta || sw->meta->has_v2);
	wire_handshake_encode(hs, p->v1_hello ? sw->info_hash_v1 : sw->info_hash, eng->peer_id,
			      WIRE_RSV_EXTENDED | (v2 ? WIRE_RSV_V2 : 0));
	(void)peer_send(p, hs, sizeof hs, NULL, 0);
}

/* What follows the handshakes: the BEP 10 extension handshake and our
 * bitfield.  Sent only once the peer's handshake is in, also when we
 * dialled: aria2 1.36 drops an incoming peer whose first read holds more
 * than the 68-byte handshake. */
static void send_greeting(struct peer *p)
{
	struct xfer *xf = p->xf;
	struct swarm *sw = xf->sw;
	struct engine *eng = p->eng;
	/* BEP 10 extension handshake. */
	struct wire_ext_hs ext;
	memset(&ext, 0, sizeof ext);
	ext.ut_metadata = EXT_UT_METADATA;
	/* BEP 27: no peer exchange in a private torrent (its metadata may come
	 * later; from then on we neither send PEX nor take it). */
	ext.ut_pex = swarm_private(sw) ? 0 : EXT_UT_PEX;
	ext.metadata_size = sw->meta ? (uint32_t)sw->meta->info_len : 0;
	ext.port = eng->node->cfg.peer_port;
	ext.reqq = PEER_REQQ;
	/* BEP 10 yourip: how we see the peer, which it may count towards
	 * learning its external address (as we do: reach_vote). */
	if (p->addr.ss_family == AF_INET) {
		memcpy(ext.yourip, &((const struct sockaddr_in *)&p->addr)->sin_addr, 4);
		ext.yourip_len = 4;
	} else if (p->addr.ss_family == AF_INET6) {
		const struct in6_addr *a6 = &((const struct sockaddr_in6 *)&p->addr)->sin6_addr;
		bool mapped = IN6_IS_ADDR_V4MAPPED(a6);
		memcpy(ext.yourip, mapped ? a6->s6_addr + 12 : a6->s6_addr, mapped ? 4 : 16);
		ext.yourip_len = mapped ? 4 : 16;
	}
	snprintf(ext.client, sizeof ext.client, "shoal %s", PACKAGE_VERSION);
	struct buf b;
	buf_init(&b, 4096);
	if (wire_ext_hs_encode(&b, &ext) == 0)
		(void)peer_send(p, b.data, b.len, NULL, 0);
	buf_destroy(&b);
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
		    now - peer_connected_ms(o) >= PEER_EVICT_AFTER_MS &&
		    (!victim || peer_connected_ms(o) < peer_connected_ms(victim)))
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
		/* A hybrid is also known by its v1 hash (v1-only clients); a
		 * v1-keyed swarm's key is its v1 hash, which counts as such. */
		struct swarm *found = swarm_find_running(eng->node, hs->info_hash, true);
		p->v1_hello = found != NULL;
		if (!found)
			found = swarm_find_running(eng->node, hs->info_hash, false);
		if (!found)
			return -ENOENT;
		/* Encrypted: the 20 bytes must belong to the swarm the keys were
		 * bound to (the full 32-byte hash). */
		const uint8_t *bound = conn_crypt_info_hash(p->conn);
		uint8_t v1_key[32];
		if (bound && memcmp(bound, found->info_hash, 32) != 0 &&
		    !(swarm_v1_key(found, v1_key) && memcmp(bound, v1_key, 32) == 0))
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
		xfer_wake(xf);
	}
	if (eng->node->cfg.encryption == ENCRYPTION_REQUIRE && !conn_encrypted(p->conn))
		return -EPROTO;
	/* BEP 52's bit, on the v2 hash: it answers hash requests. */
	p->v2_hashes = (wire_handshake_flags(hs) & WIRE_RSV_V2) && !p->v1_hello;
	/* One connection per remote node and swarm. */
	for (struct peer *o = xf->peers; o; o = o->next) {
		if (o != p && o->state == PEER_ACTIVE &&
		    memcmp(o->peer_id, hs->peer_id, WIRE_PEER_ID_LEN) == 0)
			return -EALREADY;
	}
	memcpy(p->peer_id, hs->peer_id, WIRE_PEER_ID_LEN);
	p->state = PEER_ACTIVE;
	p->metered = true;
	p->metered_encrypted = conn_encrypted(p->conn);
	eng->node->metrics.peers[p->metered_encrypted][p->outgoing]++;
	(void)addrbook_succeeded(xf->book, p->known); /* -ENOENT: no entry */
	if (xf->sw->meta && xf->picker && peer_meta_ready(p) != 0)
		return -ENOMEM;
	apply_swarm_limits(xf); /* before a single block moves */
	update_read_mode(p);
	if (!p->handshake_sent)
		peer_send_handshake(p);
	send_greeting(p);
	log_debug("peer %s: connected to swarm %" PRId64 " (%s, %s)", p->name, xf->sw->id,
		  p->outgoing ? "outgoing" : "incoming", conn_encrypted(p->conn) ? "encrypted" : "plain");
	return 0;
}

void engine_on_peer_gone(struct peer *p)
{
	struct engine *eng = p->eng;
	struct xfer *xf = p->xf;
	if (!xf) {
		if (!p->outgoing) { /* an outgoing peer has its swarm from the start */
			unlink_peer(&eng->pending, p);
			eng->n_pending--;
		}
		return;
	}
	if (xf->picker && p->has.bits) {
		if (picker_peer_gone(xf->picker, p->uid, &p->has) != 0)
			log_error("picker refused peer %s leaving", p->name);
	}
	(void)addrbook_set_connected(xf->book, p->known, false); /* -ENOENT: no entry */
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
	serve_count(xf, &xf->serve_out, 0, p->serve_out);
	p->serve_out = 0;
	p->serve_waiting = false;
	if (!p->am_choking) {
		unchoked_count(xf, false);
		p->am_choking = true;
	}
	serve_freed(xf);
	unlink_peer(&xf->peers, p);
	xf->n_peers--;
	p->xf = NULL;
	p->n_reqs = 0;
}

struct peer *find_peer(struct xfer *xf, uint32_t uid)
{
	for (struct peer *p = xf->peers; p; p = p->next)
		if (p->uid == uid && p->state == PEER_ACTIVE)
			return p;
	return NULL;
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
	if (p->conn && conn_encrypted(p->conn))
		out->flags |= WIRE_PEX_F_ENCRYPTION;
	if (p->has.bits && bitfield_all(&p->has))
		out->flags |= WIRE_PEX_F_SEED;
	out->flags |= WIRE_PEX_F_REACHABLE;
	return true;
}

/* Tell each peer about the others we are connected to. */
void send_pex(struct xfer *xf)
{
	static struct wire_pex pex; /* loop thread only; too large for the stack */
	if (swarm_private(xf->sw))
		return;
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

void on_pex(struct peer *p, const uint8_t *payload, size_t len)
{
	static struct wire_pex pex;
	struct xfer *xf = p->xf;
	if (swarm_private(xf->sw) || wire_pex_parse(&pex, payload, payload + len) != 0)
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
		uint64_t h;
		if (known_add(xf, &ss, sl, ADDRBOOK_SRC_PEX, &h) >= 0 &&
		    (w->flags & WIRE_PEX_F_ENCRYPTION) == 0 &&
		    xf->node->cfg.encryption == ENCRYPTION_PREFER)
			(void)addrbook_set_plain_only(xf->book, h, false); /* try encrypted first
									    * anyway; it falls back */
	}
}
