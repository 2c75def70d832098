/* lsd.c: local peer discovery (BEP 14): announces the running swarms to
 * 239.192.152.143:6771 and [ff15::efc0:988f]:6771 on every LAN interface
 * and hands the peers heard there to the engine.
 *
 * Sending.  BEP 14 asks for an announce of each swarm every 5 minutes on
 * each interface, and no more than one announce a minute, with several
 * info-hashes in one packet of at most 1400 bytes (25 fit).  So:
 *   - a cursor walks node->swarms (by id, so a freed swarm never leaves it
 *     dangling), filling packets with the hashes of the swarms that
 *     transfer; one sweep of the list as it was when the sweep began
 *     starts at most every LSD_SWEEP_MS (5 min), so no swarm is announced
 *     twice in that time by it;
 *   - a swarm that appears while we run (a share that finished hashing, a
 *     join), and at start every swarm loaded, is queued (at most
 *     LSD_FRESH_MAX) and goes out as soon as it transfers, within a second
 *     or two while tokens last, instead of waiting for a sweep (the first
 *     sweep comes LSD_SWEEP_MS after start);
 *   - every packet costs a token of one bucket: LSD_BURST tokens, one
 *     back a minute (the BEP's rate), and never two packets within
 *     LSD_MIN_GAP_MS.  With more than 125 swarms running a sweep takes
 *     longer than 5 minutes: that is the BEP's "round-robin" case.
 *   One packet is sent on every interface of its family (IP_MULTICAST_IF),
 *   TTL LSD_TTL, loopback off.  A tick does O(LSD_SCAN_MAX) work however
 *   many swarms there are.
 *
 * Receiving.  At most LSD_RECV_BATCH datagrams per wake-up; one longer
 * than LSD_MAX_DATAGRAM is refused unparsed; each source address has a
 * token bucket (LSD_SRC_BURST, one back every LSD_SRC_REFILL_MS) in a
 * table of LSD_MAX_SOURCES that forgets the least recently heard; our own
 * cookie is dropped; each hash is looked up in the swarm index (O(1)) and
 * the sender's address with its Port goes to engine_add_peer ("lsd").
 *
 * Interfaces are listed with getifaddrs at start and every LSD_RESCAN_MS;
 * groups are joined on new ones and left on vanished ones.  Everything
 * runs on the event loop thread. */
#include "config.h"

#include "node/lsd.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>
#include <sodium.h>

#include "common/log.h"
#include "common/util.h"
#include "node/engine.h"
#include "node/node.h"
#include "node/swarm.h"
#include "transfer/lsd.h"

/* Tunables. */
#define LSD_TICK_MS 1000u
#define LSD_SWEEP_MS (5u * 60 * 1000)  /* BEP 14: each swarm every 5 minutes */
#define LSD_REFILL_MS (60u * 1000)     /* BEP 14: one announce a minute... */
#define LSD_BURST 5u                   /* ...after a start-up burst of this many */
#define LSD_MIN_GAP_MS 1000u           /* never two packets closer than this */
#define LSD_SCAN_MAX 256u              /* swarms looked at per packet built */
#define LSD_FRESH_MAX 256u             /* new swarms waiting for a quick announce */
#define LSD_FRESH_WAIT_MS (10u * 60 * 1000) /* a new swarm not running by then: sweep */
#define LSD_RESCAN_MS (60u * 1000)     /* interfaces */
#define LSD_MAX_IFACES 32u
#define LSD_RECV_BATCH 64u             /* datagrams per wake-up, so the loop stays fair */
#define LSD_SOCK_RCVBUF (256 * 1024)   /* absorbs a burst (many nodes starting, a flood) */
#define LSD_MAX_SOURCES 64u
#define LSD_SRC_BURST 8u               /* packets a source may send at once... */
#define LSD_SRC_REFILL_MS 5000u        /* ...and one more every this long */
/* Multicast TTL / hops.  BEP 14 notes the groups' scope is wider than one
 * link (org-local, site-local), so a TTL above 1 lets an organisation's
 * multicast routers carry announces; a home LAN is one hop either way. */
#define LSD_TTL 4

enum { LSD_V4, LSD_V6, LSD_FAMS };

struct lsd_iface {
	unsigned index;
	char name[IF_NAMESIZE];
	bool has[LSD_FAMS];    /* an address of the family (v6: not link-local) */
	bool joined[LSD_FAMS]; /* the group is joined on it */
	bool lan;              /* it carries a private address (lan_address) */
};

struct lsd_source {
	int family;
	uint8_t addr[16];
	uint64_t last_ms;  /* last packet, and where `tokens` was counted */
	uint32_t tokens;
	bool used;
};

struct lsd_fresh {
	int64_t id;
	uint64_t since_ms;
};

struct node_lsd {
	struct node *node;
	evutil_socket_t fd[LSD_FAMS];
	struct event *ev[LSD_FAMS];
	struct event *timer;
	struct sockaddr_storage group[LSD_FAMS];
	socklen_t group_len[LSD_FAMS];
	char cookie[17];
	struct lsd_iface ifs[LSD_MAX_IFACES];
	size_t nifs;
	uint64_t next_rescan_ms;
	/* Sending. */
	int64_t cursor;          /* the id of the last swarm a sweep took */
	int64_t sweep_end;       /* the last id when the sweep began: newer ones are fresh */
	bool sweeping;           /* a sweep is under way */
	uint64_t sweep_start_ms; /* when the last sweep started */
	uint32_t tokens;
	uint64_t refill_ms;      /* when the last token came back */
	uint64_t last_send_ms;
	int64_t max_id_seen;     /* swarms above this are new */
	struct lsd_fresh fresh[LSD_FRESH_MAX];
	size_t nfresh;
	/* Receiving. */
	struct lsd_source src[LSD_MAX_SOURCES];
	/* Figures for status. */
	uint64_t sent, send_errors, received, peers_found, malformed, rate_limited, own,
		unknown_swarm, oversized;
	char note[128];
};

/* ------------------------------------------------------------ helpers */

static void timer_in(struct node_lsd *l, uint64_t ms)
{
	struct timeval tv = { .tv_sec = (time_t)(ms / 1000), .tv_usec = (suseconds_t)(ms % 1000) * 1000 };
	event_add(l->timer, &tv);
}

/* A swarm we announce: it transfers (metadata, downloading, seeding) and
 * is not private (BEP 27: peers from its trackers only). */
static bool announced(const struct swarm *sw)
{
	return sw->xfer && !sw->remove_pending && sw->has_info_hash && !swarm_private(sw) &&
	       (sw->state == SWARM_METADATA || sw->state == SWARM_DOWNLOADING ||
		sw->state == SWARM_SEEDING);
}

/* The 20-byte keys a swarm is announced by: its key (v1 hash, or a v2 one
 * truncated) and a hybrid's v1 hash.  Returns how many (1 or 2). */
static size_t swarm_keys(const struct swarm *sw, uint8_t out[2][LSD_HASH_LEN])
{
	memcpy(out[0], sw->info_hash, LSD_HASH_LEN);
	if (sw->has_info_hash_v1 && !sw->key_v1 &&
	    memcmp(sw->info_hash_v1, sw->info_hash, LSD_HASH_LEN) != 0) {
		memcpy(out[1], sw->info_hash_v1, LSD_HASH_LEN);
		return 2;
	}
	return 1;
}

/* ------------------------------------------------------------ interfaces */

static int join_leave(struct node_lsd *l, int f, unsigned index, bool join)
{
	int rc;
	if (f == LSD_V4) {
		struct ip_mreqn m = { .imr_ifindex = (int)index };
		m.imr_multiaddr = ((struct sockaddr_in *)&l->group[f])->sin_addr;
		rc = setsockopt(l->fd[f], IPPROTO_IP, join ? IP_ADD_MEMBERSHIP : IP_DROP_MEMBERSHIP,
				&m, sizeof m);
	} else {
		struct ipv6_mreq m = { .ipv6mr_interface = index };
		m.ipv6mr_multiaddr = ((struct sockaddr_in6 *)&l->group[f])->sin6_addr;
		rc = setsockopt(l->fd[f], IPPROTO_IPV6, join ? IPV6_JOIN_GROUP : IPV6_LEAVE_GROUP,
				&m, sizeof m);
	}
	return rc == 0 ? 0 : -errno;
}

static bool lan_address(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET) {
		const uint8_t *a = (const uint8_t *)&((const struct sockaddr_in *)sa)->sin_addr;
		return ipv4_rfc1918(a) || (a[0] == 169 && a[1] == 254);
	}
	/* IPv6: a ULA or a global address (an IPv6 home LAN often has no
	 * ULA); link-local ones never get here (rescan skips them). */
	return sa->sa_family == AF_INET6;
}

static struct lsd_iface *iface_find(struct lsd_iface *ifs, size_t n, unsigned index)
{
	for (size_t i = 0; i < n; i++)
		if (ifs[i].index == index)
			return &ifs[i];
	return NULL;
}

/* List the interfaces again; join the groups where they are new, leave
 * them where an interface went or lost its last address of the family. */
static void rescan(struct node_lsd *l)
{
	struct lsd_iface now[LSD_MAX_IFACES];
	size_t n = 0;
	struct ifaddrs *list = NULL;
	if (getifaddrs(&list) != 0) {
		log_warn("lsd: cannot list interfaces: %s", strerror(errno));
		return;
	}
	for (struct ifaddrs *a = list; a; a = a->ifa_next) {
		/* Not a tunnel (a VPN's tun is point-to-point and may say
		 * MULTICAST): announces are for the LAN. */
		if (!a->ifa_addr || !(a->ifa_flags & IFF_UP) || !(a->ifa_flags & IFF_MULTICAST) ||
		    (a->ifa_flags & (IFF_LOOPBACK | IFF_POINTOPOINT)))
			continue;
		int f = a->ifa_addr->sa_family == AF_INET ? LSD_V4
			: a->ifa_addr->sa_family == AF_INET6 ? LSD_V6 : -1;
		if (f < 0)
			continue;
		/* Only link-local IPv6: announces would leave from an address
		 * no one can dial without its scope (see handle()). */
		if (f == LSD_V6 &&
		    IN6_IS_ADDR_LINKLOCAL(&((const struct sockaddr_in6 *)a->ifa_addr)->sin6_addr))
			continue;
		unsigned index = if_nametoindex(a->ifa_name);
		if (index == 0)
			continue;
		struct lsd_iface *i = iface_find(now, n, index);
		if (!i) {
			if (n == LSD_MAX_IFACES)
				continue;
			i = &now[n++];
			memset(i, 0, sizeof *i);
			i->index = index;
			snprintf(i->name, sizeof i->name, "%s", a->ifa_name);
		}
		i->has[f] = true;
		if (lan_address(a->ifa_addr))
			i->lan = true;
	}
	/* A LAN interface carries a private IPv4 address (RFC 1918,
	 * 169.254/16) or a routable IPv6 one; one with only public IPv4
	 * addresses faces a provider's network, where our info-hashes have no
	 * business. */
	for (size_t k = 0; k < n;) {
		if (now[k].lan) {
			k++;
			continue;
		}
		log_debug("lsd: %s has no private address: not a LAN interface", now[k].name);
		now[k] = now[--n];
	}
	freeifaddrs(list);
	/* Leave where gone. */
	for (size_t k = 0; k < l->nifs; k++) {
		struct lsd_iface *old = &l->ifs[k], *cur = iface_find(now, n, old->index);
		for (int f = 0; f < LSD_FAMS; f++)
			if (old->joined[f] && (!cur || !cur->has[f]))
				(void)join_leave(l, f, old->index, false); /* may be gone already */
	}
	/* Join where new (or kept). */
	for (size_t k = 0; k < n; k++) {
		struct lsd_iface *cur = &now[k], *old = iface_find(l->ifs, l->nifs, cur->index);
		for (int f = 0; f < LSD_FAMS; f++) {
			if (!cur->has[f] || l->fd[f] < 0)
				continue;
			if (old && old->joined[f]) {
				cur->joined[f] = true;
				continue;
			}
			int rc = join_leave(l, f, cur->index, true);
			if (rc == 0 || rc == -EADDRINUSE) {
				cur->joined[f] = true;
				log_info("lsd: joined %s on %s", f == LSD_V4 ? LSD_GROUP4 : LSD_GROUP6,
					 cur->name);
			} else {
				log_debug("lsd: cannot join %s on %s: %s",
					  f == LSD_V4 ? LSD_GROUP4 : LSD_GROUP6, cur->name, strerror(-rc));
			}
		}
	}
	memcpy(l->ifs, now, n * sizeof now[0]);
	l->nifs = n;
}

static unsigned joined_count(const struct node_lsd *l)
{
	unsigned n = 0;
	for (size_t i = 0; i < l->nifs; i++)
		if (l->ifs[i].joined[LSD_V4] || l->ifs[i].joined[LSD_V6])
			n++;
	return n;
}

/* ------------------------------------------------------------ sending */

/* Send one finished packet of family `f` on every interface that joined. */
static void send_all(struct node_lsd *l, int f, const struct lsd_packet *pk, size_t len)
{
	for (size_t i = 0; i < l->nifs; i++) {
		if (!l->ifs[i].joined[f])
			continue;
		int rc;
		if (f == LSD_V4) {
			struct ip_mreqn m = { .imr_ifindex = (int)l->ifs[i].index };
			rc = setsockopt(l->fd[f], IPPROTO_IP, IP_MULTICAST_IF, &m, sizeof m);
		} else {
			unsigned idx = l->ifs[i].index;
			rc = setsockopt(l->fd[f], IPPROTO_IPV6, IPV6_MULTICAST_IF, &idx, sizeof idx);
		}
		if (rc == 0 && sendto(l->fd[f], pk->buf, len, MSG_DONTWAIT | MSG_NOSIGNAL,
				      (const struct sockaddr *)&l->group[f], l->group_len[f]) == (ssize_t)len)
			l->sent++;
		else
			l->send_errors++;
	}
}

/* A set of hashes to send, as one packet per family. */
struct lsd_batch {
	uint8_t hashes[LSD_MAX_HASHES][LSD_HASH_LEN];
	size_t n, cap;
};

static void batch_send(struct node_lsd *l, const struct lsd_batch *b)
{
	if (b->n == 0)
		return;
	for (int f = 0; f < LSD_FAMS; f++) {
		if (l->fd[f] < 0)
			continue;
		struct lsd_packet pk;
		if (lsd_packet_begin(&pk, f == LSD_V6, l->node->cfg.peer_port, l->cookie) != 0)
			return;
		for (size_t i = 0; i < b->n; i++)
			if (lsd_packet_add(&pk, b->hashes[i]) != 0)
				break; /* b->cap keeps this from happening */
		send_all(l, f, &pk, lsd_packet_finish(&pk));
	}
}

/* Add the swarm's keys when both fit; false when the batch is full. */
static bool batch_add(struct lsd_batch *b, const struct swarm *sw)
{
	uint8_t k[2][LSD_HASH_LEN];
	size_t n = swarm_keys(sw, k);
	if (b->n + n > b->cap)
		return false;
	memcpy(b->hashes[b->n], k, n * LSD_HASH_LEN);
	b->n += n;
	return true;
}

/* How many hashes fit one packet of either family with our cookie. */
static size_t packet_capacity(const struct node_lsd *l)
{
	struct lsd_packet pk;
	uint8_t zero[LSD_HASH_LEN] = { 0 };
	if (lsd_packet_begin(&pk, true, 1, l->cookie) != 0)
		return 0;
	size_t n = 0;
	while (lsd_packet_add(&pk, zero) == 0)
		n++;
	return n;
}

/* New swarms since the last tick go on the fresh queue. */
static void note_new_swarms(struct node_lsd *l, uint64_t now)
{
	for (unsigned k = 0; k < LSD_SCAN_MAX; k++) {
		struct swarm *sw = swarm_first_after(l->node, l->max_id_seen);
		if (!sw)
			return;
		l->max_id_seen = sw->id;
		if (l->nfresh < LSD_FRESH_MAX)
			l->fresh[l->nfresh++] = (struct lsd_fresh){ sw->id, now };
	}
}

/* Fill `b` from the fresh queue: swarms running now leave it; those gone,
 * or not running after LSD_FRESH_WAIT_MS, leave it too (the sweep takes
 * them). */
static void take_fresh(struct node_lsd *l, struct lsd_batch *b, uint64_t now)
{
	size_t keep = 0;
	for (size_t i = 0; i < l->nfresh; i++) {
		struct swarm *sw = swarm_find_id(l->node, l->fresh[i].id);
		bool drop = !sw || sw->remove_pending || now - l->fresh[i].since_ms > LSD_FRESH_WAIT_MS;
		if (!drop && announced(sw))
			drop = batch_add(b, sw);
		if (!drop)
			l->fresh[keep++] = l->fresh[i];
	}
	l->nfresh = keep;
}

/* Fill `b` from the sweep's cursor, looking at no more than LSD_SCAN_MAX
 * swarms.  The sweep ends past the last swarm that existed when it began
 * (newer ones went out as fresh ones). */
static void take_sweep(struct node_lsd *l, struct lsd_batch *b, uint64_t now)
{
	if (!l->sweeping) {
		if (now - l->sweep_start_ms < LSD_SWEEP_MS)
			return;
		if (!l->node->swarm_ix.tail)
			return;
		l->sweeping = true;
		l->sweep_start_ms = now;
		l->cursor = 0;
		l->sweep_end = l->node->swarm_ix.tail->id;
	}
	for (unsigned k = 0; k < LSD_SCAN_MAX; k++) {
		struct swarm *sw = swarm_first_after(l->node, l->cursor);
		if (!sw || sw->id > l->sweep_end) {
			l->sweeping = false;
			return;
		}
		if (announced(sw) && !batch_add(b, sw))
			return; /* full: this one opens the next packet */
		l->cursor = sw->id;
	}
}

static void send_tick(struct node_lsd *l, uint64_t now)
{
	note_new_swarms(l, now);
	while (l->tokens < LSD_BURST && now - l->refill_ms >= LSD_REFILL_MS) {
		l->tokens++;
		l->refill_ms += LSD_REFILL_MS;
	}
	if (l->tokens == LSD_BURST)
		l->refill_ms = now;
	if (l->tokens == 0 || now - l->last_send_ms < LSD_MIN_GAP_MS || joined_count(l) == 0)
		return;
	struct lsd_batch b;
	b.n = 0;
	b.cap = packet_capacity(l);
	if (b.cap > LSD_MAX_HASHES)
		b.cap = LSD_MAX_HASHES;
	take_fresh(l, &b, now);
	take_sweep(l, &b, now);
	if (b.n == 0)
		return;
	batch_send(l, &b);
	l->tokens--;
	l->last_send_ms = now;
}

/* ------------------------------------------------------------ receiving */

/* May this source deliver one more packet now? */
static bool source_allows(struct node_lsd *l, int family, const uint8_t *addr, size_t alen,
			  uint64_t now)
{
	struct lsd_source *s = NULL, *oldest = &l->src[0];
	for (size_t i = 0; i < LSD_MAX_SOURCES; i++) {
		struct lsd_source *c = &l->src[i];
		if (c->used && c->family == family && memcmp(c->addr, addr, alen) == 0) {
			s = c;
			break;
		}
		if (!c->used || (oldest->used && c->last_ms < oldest->last_ms))
			oldest = c;
	}
	if (!s) {
		s = oldest;
		memset(s, 0, sizeof *s);
		s->used = true;
		s->family = family;
		memcpy(s->addr, addr, alen);
		s->tokens = LSD_SRC_BURST;
		s->last_ms = now;
	}
	uint64_t back = (now - s->last_ms) / LSD_SRC_REFILL_MS;
	if (back) {
		s->tokens = back >= LSD_SRC_BURST || s->tokens + back > LSD_SRC_BURST
				    ? LSD_SRC_BURST
				    : s->tokens + (uint32_t)back;
		s->last_ms += back * LSD_SRC_REFILL_MS;
	}
	if (s->tokens == 0)
		return false;
	s->tokens--;
	return true;
}

static void handle(struct node_lsd *l, const uint8_t *buf, size_t n,
		   const struct sockaddr_storage *from, uint64_t now)
{
	char host[INET6_ADDRSTRLEN];
	const uint8_t *addr;
	size_t alen;
	if (from->ss_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)from;
		addr = (const uint8_t *)&s4->sin_addr;
		alen = 4;
	} else if (from->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)from;
		addr = (const uint8_t *)&s6->sin6_addr;
		alen = 16;
		/* A link-local sender cannot be dialled without its scope: no
		 * use to the engine (our senders pick a wider address). */
		if (IN6_IS_ADDR_LINKLOCAL(&s6->sin6_addr))
			return;
	} else {
		return;
	}
	if (!source_allows(l, from->ss_family, addr, alen, now)) {
		l->rate_limited++;
		return;
	}
	struct lsd_announce a;
	int rc = lsd_parse(buf, buf + n, &a);
	if (rc) {
		l->malformed++;
		log_debug("lsd: malformed announce (%zu bytes): %s", n, lsd_strerror(rc));
		return;
	}
	if (strcmp(a.cookie, l->cookie) == 0) {
		l->own++;
		return;
	}
	if (!inet_ntop(from->ss_family, addr, host, sizeof host))
		return;
	for (size_t i = 0; i < a.hash_count; i++) {
		struct swarm *sw = swarm_for_key20(l->node, a.hashes[i]);
		if (!sw || !sw->xfer || swarm_private(sw)) {
			l->unknown_swarm++;
			continue;
		}
		rc = engine_add_peer(l->node->engine, sw, host, a.port, "lsd");
		if (rc == 0)
			l->peers_found++;
		else
			log_debug("lsd: swarm %lld: peer %s port %u not taken: %s", (long long)sw->id,
				  host, (unsigned)a.port, strerror(-rc));
	}
}

static void on_read(evutil_socket_t fd, short what, void *arg)
{
	(void)what;
	struct node_lsd *l = arg;
	uint8_t buf[LSD_MAX_DATAGRAM + 1];
	uint64_t now = now_ms();
	for (unsigned k = 0; k < LSD_RECV_BATCH; k++) {
		struct sockaddr_storage from;
		socklen_t flen = sizeof from;
		/* MSG_TRUNC: the datagram's real length, so an oversized one is
		 * seen as such though only the buffer's worth is copied. */
		ssize_t n = recvfrom(fd, buf, sizeof buf, MSG_DONTWAIT | MSG_TRUNC,
				     (struct sockaddr *)&from, &flen);
		if (n < 0)
			return;
		l->received++;
		if ((size_t)n > LSD_MAX_DATAGRAM) {
			l->oversized++;
			l->malformed++;
			continue;
		}
		handle(l, buf, (size_t)n, &from, now);
	}
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct node_lsd *l = arg;
	uint64_t now = now_ms();
	if (now >= l->next_rescan_ms) {
		rescan(l);
		l->next_rescan_ms = now + LSD_RESCAN_MS;
	}
	send_tick(l, now);
	timer_in(l, LSD_TICK_MS);
}

/* ------------------------------------------------------------ lifecycle */

static int open_family(struct node_lsd *l, int f, char *why, size_t why_len)
{
	int domain = f == LSD_V4 ? AF_INET : AF_INET6;
	int fd = socket(domain, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		snprintf(why, why_len, "socket: %s", strerror(errno));
		return -1;
	}
	int one = 1, zero = 0, ttl = LSD_TTL, rcvbuf = LSD_SOCK_RCVBUF;
	struct sockaddr_storage bind_to;
	memset(&bind_to, 0, sizeof bind_to);
	socklen_t blen;
	(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
	if (f == LSD_V4) {
		struct sockaddr_in *g = (struct sockaddr_in *)&l->group[f], *b = (struct sockaddr_in *)&bind_to;
		g->sin_family = AF_INET;
		g->sin_port = htons(LSD_PORT);
		inet_pton(AF_INET, LSD_GROUP4, &g->sin_addr);
		l->group_len[f] = sizeof *g;
		/* Bound to the group: unicast to port 6771 and other groups
		 * joined on this host do not reach us. */
		*b = *g;
		blen = sizeof *b;
		if (setsockopt(fd, IPPROTO_IP, IP_MULTICAST_TTL, &ttl, sizeof ttl) != 0 ||
		    setsockopt(fd, IPPROTO_IP, IP_MULTICAST_LOOP, &zero, sizeof zero) != 0)
			goto fail;
#ifdef IP_MULTICAST_ALL
		(void)setsockopt(fd, IPPROTO_IP, IP_MULTICAST_ALL, &zero, sizeof zero);
#endif
	} else {
		struct sockaddr_in6 *g = (struct sockaddr_in6 *)&l->group[f], *b = (struct sockaddr_in6 *)&bind_to;
		g->sin6_family = AF_INET6;
		g->sin6_port = htons(LSD_PORT);
		inet_pton(AF_INET6, LSD_GROUP6, &g->sin6_addr);
		l->group_len[f] = sizeof *g;
		/* Bound to the group too: a unicast datagram to port 6771 from
		 * anywhere (a global address is reachable from the Internet) is
		 * no announce of a LAN neighbour. */
		*b = *g;
		blen = sizeof *b;
		if (setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) != 0 ||
		    setsockopt(fd, IPPROTO_IPV6, IPV6_MULTICAST_HOPS, &ttl, sizeof ttl) != 0 ||
		    setsockopt(fd, IPPROTO_IPV6, IPV6_MULTICAST_LOOP, &zero, sizeof zero) != 0)
			goto fail;
#ifdef IPV6_MULTICAST_ALL
		(void)setsockopt(fd, IPPROTO_IPV6, IPV6_MULTICAST_ALL, &zero, sizeof zero);
#endif
	}
	if (bind(fd, (struct sockaddr *)&bind_to, blen) != 0)
		goto fail;
	l->ev[f] = event_new(l->node->base, fd, EV_READ | EV_PERSIST, on_read, l);
	if (!l->ev[f] || event_add(l->ev[f], NULL) != 0) {
		errno = ENOMEM;
		goto fail;
	}
	l->fd[f] = fd;
	return 0;
fail:
	snprintf(why, why_len, "%s port %d: %s", f == LSD_V4 ? "IPv4" : "IPv6", LSD_PORT,
		 strerror(errno));
	if (l->ev[f]) {
		event_free(l->ev[f]);
		l->ev[f] = NULL;
	}
	close(fd);
	return -1;
}

struct node_lsd *node_lsd_new(struct node *node, char *err, size_t err_len)
{
	struct node_lsd *l = calloc(1, sizeof *l);
	if (!l) {
		snprintf(err, err_len, "lsd: out of memory");
		return NULL;
	}
	l->node = node;
	l->fd[LSD_V4] = l->fd[LSD_V6] = -1;
	uint8_t c[8];
	randombytes_buf(c, sizeof c);
	hex_encode(c, sizeof c, l->cookie);
	l->timer = evtimer_new(node->base, on_timer, l);
	if (!l->timer) {
		free(l);
		snprintf(err, err_len, "lsd: out of memory");
		return NULL;
	}
	char why4[128] = "", why6[128] = "";
	bool ok4 = open_family(l, LSD_V4, why4, sizeof why4) == 0;
	bool ok6 = open_family(l, LSD_V6, why6, sizeof why6) == 0;
	if (!ok4)
		log_warn("lsd: no IPv4 discovery: %s", why4);
	if (!ok6)
		log_info("lsd: no IPv6 discovery: %s", why6);
	if (!ok4 && !ok6)
		snprintf(l->note, sizeof l->note, "%s; %s", why4, why6);
	uint64_t now = now_ms();
	l->tokens = LSD_BURST;
	l->refill_ms = now;
	l->sweep_start_ms = now; /* the loaded swarms go out as fresh ones */
	/* The swarms loaded at start are "new" too: the first LSD_FRESH_MAX of
	 * them go out as soon as they run, the rest with the first sweep. */
	l->max_id_seen = 0;
	if (ok4 || ok6) {
		rescan(l);
		l->next_rescan_ms = now + LSD_RESCAN_MS;
		timer_in(l, LSD_TICK_MS);
		log_info("lsd: local peer discovery on %u interface(s)", joined_count(l));
	}
	return l;
}

void node_lsd_free(struct node_lsd *l)
{
	if (!l)
		return;
	for (size_t i = 0; i < l->nifs; i++)
		for (int f = 0; f < LSD_FAMS; f++)
			if (l->ifs[i].joined[f])
				(void)join_leave(l, f, l->ifs[i].index, false);
	for (int f = 0; f < LSD_FAMS; f++) {
		if (l->ev[f])
			event_free(l->ev[f]);
		if (l->fd[f] >= 0)
			close(l->fd[f]);
	}
	event_free(l->timer);
	free(l);
}

json_t *node_lsd_status_json(const struct node_lsd *l)
{
	if (!l)
		return json_pack("{s:b,s:i,s:I,s:I,s:I,s:I,s:s}", "enabled", 0, "interfaces", 0,
				 "announces_sent", (json_int_t)0, "received", (json_int_t)0,
				 "peers_found", (json_int_t)0, "malformed", (json_int_t)0, "note",
				 "--no-lsd");
	json_t *j = json_pack("{s:b,s:i,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:b,s:b}", "enabled",
			      l->fd[LSD_V4] >= 0 || l->fd[LSD_V6] >= 0, "interfaces",
			      (int)joined_count(l), "announces_sent", (json_int_t)l->sent, "received",
			      (json_int_t)l->received, "peers_found", (json_int_t)l->peers_found,
			      "malformed", (json_int_t)l->malformed, "oversized",
			      (json_int_t)l->oversized, "rate_limited", (json_int_t)l->rate_limited,
			      "own", (json_int_t)l->own, "send_errors", (json_int_t)l->send_errors,
			      "ipv4", l->fd[LSD_V4] >= 0, "ipv6", l->fd[LSD_V6] >= 0);
	if (j && l->note[0])
		json_object_set_new(j, "note", json_string(l->note));
	return j;
}
