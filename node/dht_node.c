/* dht_node.c: runs the dht/ library inside the daemon: UDP sockets on the
 * peer port, the dht_periodic timer, bootstrap (numeric or through evdns),
 * the routing table in SQLite, and announces / lookups for every swarm.
 *
 * The library does no I/O; this file is the only place that moves its
 * datagrams.  Everything runs on the event loop thread. */
#include "config.h"

#include "common/addr.h"
#include "node/dht_node.h"
#include "node/dht_tracks.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/dns.h>
#include <event2/event.h>
#include <event2/util.h>
#include <sqlite3.h>

#include "common/log.h"
#include "common/util.h"
#include "dht/dht.h"
#include "node/engine.h"
#include "node/node.h"
#include "node/portmap.h"
#include "node/store.h"
#include "node/swarm.h"

/* Tunables. */
#define DHTN_MAX_BOOTSTRAP 32          /* entries in --bootstrap */
#define DHTN_RECV_BATCH 64             /* datagrams per wake-up, so the loop stays fair */
#define DHTN_RECV_BUF 2048             /* > DHT_MAX_PACKET: oversized ones are seen as such */
#define DHTN_SOCK_RCVBUF (512 * 1024)  /* absorbs bursts (a join, a flood) */
#define DHTN_BOOT_MIN_MS (5 * 1000)    /* bootstrap retry while no node answers, doubling */
#define DHTN_BOOT_MAX_MS (5 * 60 * 1000)
#define DHTN_SAVE_FIRST_MS (60 * 1000) /* first save of the routing table */
#define DHTN_SAVE_MS (5 * 60 * 1000)   /* then every 5 minutes, and at shutdown */
#define DHTN_SAVE_MAX 1024             /* routing entries saved per family */
#define DHTN_LOAD_MAX 2048             /* rows read at start */
#define DHTN_MAX_LOCAL_ADDRS 32        /* our interface addresses, to skip ourselves */

enum { FAM_V4, FAM_V6, FAM_N };

struct dht_node;

/* One address family: a socket, its read event and a dht instance. */
struct dhtn_inst {
	struct dht_node *dn;
	int family;
	evutil_socket_t fd;
	struct event *ev;
	struct dht *dht;      /* NULL when this family is not running */
	uint64_t send_errors;
};

/* The argument of one evdns request.  It belongs to the request: the
 * callback frees it.  dht_node_free detaches it (dn = NULL) and cancels the
 * request, so a callback that runs later touches nothing freed. */
struct dhtn_dns_ticket {
	struct dht_node *dn;
	size_t idx;                              /* in dn->boot */
	struct evdns_getaddrinfo_request *req;   /* NULL once answered */
};

struct dhtn_boot {
	char host[256];
	uint16_t port;
	struct dhtn_dns_ticket *ticket; /* an evdns request is outstanding */
};

struct dhtn_local_addr {
	int family;
	uint8_t addr[16];
};

struct dht_node {
	struct node *node;
	struct dhtn_inst inst[FAM_N];
	struct event *timer;
	struct evdns_base *dns;          /* only when a bootstrap entry is a name */
	struct dhtn_boot boot[DHTN_MAX_BOOTSTRAP];
	size_t nboot;
	uint64_t next_boot_ms, boot_backoff_ms;
	uint64_t boot_rounds;
	uint64_t next_save_ms;
	bool in_timer;                   /* on_timer runs (it sets the timer itself) */
	struct dht_tracks *tracks;       /* the swarms' lookups (dht_tracks.h) */
	struct dhtn_local_addr local[DHTN_MAX_LOCAL_ADDRS];
	size_t nlocal;
	uint64_t nodes_loaded;           /* routing entries restored at start */
	uint64_t peers_found;            /* peers handed to the engine */
	uint64_t saves, save_failures;
	bool freeing;
};

/* ------------------------------------------------------------ helpers */

static const char *fam_name(int f)
{
	return f == FAM_V4 ? "ipv4" : "ipv6";
}

static int fam_of(int family)
{
	return family == AF_INET ? FAM_V4 : family == AF_INET6 ? FAM_V6 : -1;
}

/* Numeric address text and port of `ss`; returns 0 or -EAFNOSUPPORT. */
static int sa_host(const struct sockaddr_storage *ss, char *host, size_t host_len,
		   uint16_t *port_out)
{
	return addr_host_port((const struct sockaddr *)ss, host, host_len, port_out) == 0
		       ? 0 : -EAFNOSUPPORT;
}

/* Our interface addresses, so a lookup never hands us ourselves. */
static void collect_local_addrs(struct dht_node *dn)
{
	struct ifaddrs *ifa = NULL;
	if (getifaddrs(&ifa) != 0)
		return;
	for (struct ifaddrs *i = ifa; i && dn->nlocal < DHTN_MAX_LOCAL_ADDRS; i = i->ifa_next) {
		if (!i->ifa_addr)
			continue;
		struct dhtn_local_addr *la = &dn->local[dn->nlocal];
		if (i->ifa_addr->sa_family == AF_INET) {
			la->family = AF_INET;
			memcpy(la->addr, &((struct sockaddr_in *)i->ifa_addr)->sin_addr, 4);
			dn->nlocal++;
		} else if (i->ifa_addr->sa_family == AF_INET6) {
			la->family = AF_INET6;
			memcpy(la->addr, &((struct sockaddr_in6 *)i->ifa_addr)->sin6_addr, 16);
			dn->nlocal++;
		}
	}
	freeifaddrs(ifa);
}

/* True if the host has an IPv6 address usable beyond this machine. */
static bool have_global_ipv6(const struct dht_node *dn)
{
	for (size_t i = 0; i < dn->nlocal; i++) {
		if (dn->local[i].family != AF_INET6)
			continue;
		struct in6_addr a;
		memcpy(&a, dn->local[i].addr, 16);
		if (!IN6_IS_ADDR_LOOPBACK(&a) && !IN6_IS_ADDR_LINKLOCAL(&a) &&
		    !IN6_IS_ADDR_UNSPECIFIED(&a) && !IN6_IS_ADDR_V4MAPPED(&a))
			return true;
	}
	return false;
}

/* True if `ss` is this node's own peer address (loopback, unspecified, or
 * one of our interfaces, with our peer port). */
static bool is_self(const struct dht_node *dn, const struct sockaddr_storage *ss)
{
	const uint8_t *a;
	size_t alen;
	uint16_t port;
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)ss;
		a = (const uint8_t *)&s4->sin_addr;
		alen = 4;
		port = ntohs(s4->sin_port);
		if (a[0] == 127 || s4->sin_addr.s_addr == htonl(INADDR_ANY))
			return port == dn->node->cfg.peer_port;
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;
		a = (const uint8_t *)&s6->sin6_addr;
		alen = 16;
		port = ntohs(s6->sin6_port);
		if (IN6_IS_ADDR_LOOPBACK(&s6->sin6_addr) || IN6_IS_ADDR_UNSPECIFIED(&s6->sin6_addr))
			return port == dn->node->cfg.peer_port;
	} else {
		return false;
	}
	if (port != dn->node->cfg.peer_port)
		return false;
	for (size_t i = 0; i < dn->nlocal; i++)
		if (dn->local[i].family == ss->ss_family && memcmp(dn->local[i].addr, a, alen) == 0)
			return true;
	return false;
}

static void timer_in(struct dht_node *dn, uint64_t ms)
{
	struct timeval tv = { .tv_sec = (time_t)(ms / 1000), .tv_usec = (suseconds_t)(ms % 1000) * 1000 };
	event_add(dn->timer, &tv);
}

/* ------------------------------------------------------------ library callbacks */

static int on_send(void *ctx, const struct sockaddr *to, socklen_t to_len, const uint8_t *buf,
		   size_t n)
{
	struct dhtn_inst *in = ctx;
	if (sendto(in->fd, buf, n, MSG_DONTWAIT | MSG_NOSIGNAL, to, to_len) < 0) {
		in->send_errors++;
		return -errno;
	}
	return 0;
}

static void on_peers_found(void *ctx, const uint8_t key[DHT_ID_LEN],
			   const struct sockaddr_storage *peers, size_t n)
{
	struct dhtn_inst *in = ctx;
	struct dht_node *dn = in->dn;
	struct swarm *sw = swarm_for_key20(dn->node, key);
	if (!sw || !sw->xfer || dn->freeing)
		return;
	uint64_t taken = 0;
	for (size_t i = 0; i < n; i++) {
		char host[INET6_ADDRSTRLEN];
		uint16_t port;
		if (sa_host(&peers[i], host, sizeof host, &port) != 0 || port == 0 ||
		    is_self(dn, &peers[i]))
			continue;
		int rc = engine_add_peer(dn->node->engine, sw, host, port, "dht");
		if (rc == 0) {
			taken++;
		} else {
			log_debug("dht: swarm %lld: peer %s port %u not taken: %s", (long long)sw->id,
				  host, (unsigned)port, strerror(-rc));
		}
	}
	dn->peers_found += taken;
	dht_tracks_found(dn->tracks, key, taken);
}

/* BEP 42: a node that answered us says how it sees us: one vote. */
static void on_external_addr(void *ctx, const struct sockaddr *voter, socklen_t voter_len,
			     int family, const uint8_t *ip)
{
	struct dhtn_inst *in = ctx;
	(void)voter_len;
	if (!in->dn->freeing)
		reach_vote(in->dn->node, family, ip, voter, REACH_DHT);
}

static void on_lookup_done(void *ctx, const uint8_t key[DHT_ID_LEN],
			   const struct dht_lookup_summary *s)
{
	struct dhtn_inst *in = ctx;
	struct dht_node *dn = in->dn;
	if (dn->freeing)
		return;
	int f = fam_of(in->family);
	dht_tracks_done(dn->tracks, f, key, s, now_ms());
	/* A lookup slot is free: start the next due one soon. */
	if (dn->timer && !dn->in_timer) {
		event_del(dn->timer);
		timer_in(dn, 0);
	}
	char hex[2 * DHT_ID_LEN + 1];
	hex_encode(key, DHT_ID_LEN, hex);
	log_debug("dht %s: lookup %s done: status %d, %u responded, %u queries, %u hops, "
		  "%u peers, %u announces acked, %llu ms",
		  fam_name(f), hex, s->status, s->responded, s->queries, s->hops, s->peers,
		  s->announced, (unsigned long long)s->elapsed_ms);
}

/* ------------------------------------------------------------ sockets */

static void on_readable(evutil_socket_t fd, short what, void *arg)
{
	struct dhtn_inst *in = arg;
	uint8_t buf[DHTN_RECV_BUF];
	(void)what;
	for (int i = 0; i < DHTN_RECV_BATCH; i++) {
		struct sockaddr_storage from;
		socklen_t from_len = sizeof from;
		ssize_t r = recvfrom(fd, buf, sizeof buf, MSG_DONTWAIT | MSG_TRUNC,
				     (struct sockaddr *)&from, &from_len);
		if (r < 0) {
			if (errno == EINTR || errno == ECONNREFUSED)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				log_debug("dht %s: recvfrom: %s", fam_name(fam_of(in->family)),
					  strerror(errno));
			return;
		}
		/* A truncated datagram is passed at the buffer's size, which the
		 * library refuses as too big. */
		size_t n = (size_t)r > sizeof buf ? sizeof buf : (size_t)r;
		(void)dht_receive(in->dht, (struct sockaddr *)&from, from_len, buf, n, now_ms());
	}
}

static int inst_open(struct dht_node *dn, int f, char *err, size_t err_len)
{
	struct dhtn_inst *in = &dn->inst[f];
	struct node *node = dn->node;
	uint16_t port = node->cfg.peer_port;
	in->dn = dn;
	in->family = f == FAM_V4 ? AF_INET : AF_INET6;
	in->fd = socket(in->family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (in->fd < 0) {
		int e = errno;
		snprintf(err, err_len, "DHT: cannot open a UDP %s socket: %s", fam_name(f),
			 strerror(e));
		return -e;
	}
	int one = 1, rcvbuf = DHTN_SOCK_RCVBUF;
	if (f == FAM_V6 && setsockopt(in->fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) != 0) {
		int e = errno;
		snprintf(err, err_len, "DHT: IPV6_V6ONLY: %s", strerror(e));
		return -e;
	}
	(void)setsockopt(in->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof ss);
	socklen_t len;
	if (f == FAM_V4) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
		s4->sin_family = AF_INET;
		s4->sin_addr.s_addr = htonl(INADDR_ANY);
		s4->sin_port = htons(port);
		len = sizeof *s4;
	} else {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
		s6->sin6_family = AF_INET6;
		s6->sin6_addr = in6addr_any;
		s6->sin6_port = htons(port);
		len = sizeof *s6;
	}
	if (bind(in->fd, (struct sockaddr *)&ss, len) != 0) {
		int e = errno;
		snprintf(err, err_len, "DHT: cannot bind UDP port %u (%s): %s", (unsigned)port,
			 fam_name(f), strerror(e));
		return -e;
	}
	struct dht_config cfg;
	dht_config_default(&cfg);
	cfg.has_id = true;
	memcpy(cfg.id, node->node_id, DHT_ID_LEN);
	cfg.family = in->family;
	cfg.max_lookups = DHTT_MAX_RUNNING + 8; /* dht_tracks' own cap binds first */
	cfg.port = port;
	struct dht_callbacks cb = {
		.send = on_send,
		.peers_found = on_peers_found,
		.lookup_done = on_lookup_done,
		.external_addr = on_external_addr,
	};
	in->dht = dht_new(&cfg, &cb, in);
	if (!in->dht) {
		snprintf(err, err_len, "DHT: cannot create the %s instance (out of memory)",
			 fam_name(f));
		return -ENOMEM;
	}
	in->ev = event_new(node->base, in->fd, EV_READ | EV_PERSIST, on_readable, in);
	if (!in->ev || event_add(in->ev, NULL) != 0) {
		snprintf(err, err_len, "DHT: cannot watch the UDP socket");
		return -ENOMEM;
	}
	return 0;
}

static void inst_close(struct dhtn_inst *in)
{
	if (in->ev)
		event_free(in->ev);
	in->ev = NULL;
	dht_free(in->dht);
	in->dht = NULL;
	if (in->fd >= 0)
		evutil_closesocket(in->fd);
	in->fd = -1;
}

/* ------------------------------------------------------------ bootstrap */

static void ping_addr(struct dht_node *dn, const struct sockaddr *sa, socklen_t len,
		      const char *what)
{
	int f = fam_of(sa->sa_family);
	if (f < 0 || !dn->inst[f].dht)
		return;
	int rc = dht_ping_node(dn->inst[f].dht, sa, len, now_ms());
	if (rc)
		log_debug("dht: cannot ping bootstrap node %s: %s", what, strerror(-rc));
}

static void on_resolved(int result, struct evutil_addrinfo *res, void *arg)
{
	struct dhtn_dns_ticket *ticket = arg;
	struct dht_node *dn = ticket->dn;
	size_t idx = ticket->idx;
	free(ticket);
	if (!dn || result == EVUTIL_EAI_CANCEL) {
		if (res)
			evutil_freeaddrinfo(res);
		return;
	}
	struct dhtn_boot *b = &dn->boot[idx];
	b->ticket = NULL;
	if (result != 0) {
		log_warn("DHT bootstrap: cannot resolve %s: %s", b->host, evutil_gai_strerror(result));
		return;
	}
	for (struct evutil_addrinfo *ai = res; ai; ai = ai->ai_next)
		ping_addr(dn, ai->ai_addr, (socklen_t)ai->ai_addrlen, b->host);
	evutil_freeaddrinfo(res);
}

/* Ping every bootstrap entry once: numeric ones directly, names through
 * evdns (asynchronously; the answer pings). */
static void bootstrap_round(struct dht_node *dn)
{
	dn->boot_rounds++;
	for (size_t i = 0; i < dn->nboot; i++) {
		struct dhtn_boot *b = &dn->boot[i];
		struct sockaddr_storage ss;
		socklen_t len = addr_from_numeric(b->host, b->port, &ss);
		if (len) {
			ping_addr(dn, (struct sockaddr *)&ss, len, b->host);
			continue;
		}
		if (b->ticket)
			continue;
		if (!dn->dns) {
			dn->dns = evdns_base_new(dn->node->base, EVDNS_BASE_INITIALIZE_NAMESERVERS |
								     EVDNS_BASE_DISABLE_WHEN_INACTIVE);
			if (!dn->dns) {
				log_warn("DHT bootstrap: no DNS resolver (cannot read the system's "
					 "resolver settings); use numeric addresses");
				return;
			}
		}
		struct evutil_addrinfo hints;
		memset(&hints, 0, sizeof hints);
		hints.ai_family = dn->inst[FAM_V6].dht ? AF_UNSPEC : AF_INET;
		hints.ai_socktype = SOCK_DGRAM;
		hints.ai_protocol = IPPROTO_UDP;
		hints.ai_flags = EVUTIL_AI_ADDRCONFIG;
		char port[8];
		snprintf(port, sizeof port, "%u", (unsigned)b->port);
		struct dhtn_dns_ticket *ticket = calloc(1, sizeof *ticket);
		if (!ticket)
			return;
		ticket->dn = dn;
		ticket->idx = i;
		b->ticket = ticket;
		/* The callback may run (and free the ticket) before this returns;
		 * then the result is NULL. */
		struct evdns_getaddrinfo_request *req =
			evdns_getaddrinfo(dn->dns, b->host, port, &hints, on_resolved, ticket);
		if (req)
			ticket->req = req;
	}
}

/* A family with no good node (never joined, or lost every node) asks the
 * bootstrap list again, with backoff. */
static void bootstrap_maybe(struct dht_node *dn, uint64_t now)
{
	bool lonely = false;
	for (int f = 0; f < FAM_N; f++) {
		if (!dn->inst[f].dht)
			continue;
		struct dht_stats st;
		dht_get_stats(dn->inst[f].dht, &st, now);
		if (st.nodes_good == 0)
			lonely = true;
	}
	if (!lonely && dn->boot_rounds > 0) {
		dn->boot_backoff_ms = DHTN_BOOT_MIN_MS;
		dn->next_boot_ms = now + DHTN_BOOT_MIN_MS;
		return;
	}
	bootstrap_round(dn);
	dn->next_boot_ms = now + dn->boot_backoff_ms;
	dn->boot_backoff_ms *= 2;
	if (dn->boot_backoff_ms > DHTN_BOOT_MAX_MS)
		dn->boot_backoff_ms = DHTN_BOOT_MAX_MS;
}

static int parse_bootstrap(struct dht_node *dn, const char *list, char *err, size_t err_len)
{
	const char *p = list;
	while (*p) {
		const char *comma = strchr(p, ',');
		size_t n = comma ? (size_t)(comma - p) : strlen(p);
		char item[300];
		if (n >= sizeof item) {
			snprintf(err, err_len, "DHT bootstrap entry too long: %.40s...", p);
			return -EINVAL;
		}
		memcpy(item, p, n);
		item[n] = '\0';
		p += n + (comma != NULL);
		if (n == 0)
			continue;
		if (dn->nboot == DHTN_MAX_BOOTSTRAP) {
			log_warn("DHT bootstrap: only the first %d entries are used",
				 DHTN_MAX_BOOTSTRAP);
			break;
		}
		struct dhtn_boot *b = &dn->boot[dn->nboot];
		if (parse_hostport(item, b->host, sizeof b->host, &b->port) != 0) {
			snprintf(err, err_len,
				 "DHT bootstrap entry '%s' is not HOST:PORT (IPv6 as [ADDR]:PORT)", item);
			return -EINVAL;
		}
		dn->nboot++;
	}
	return 0;
}

/* ------------------------------------------------------------ routing table in SQLite */

/* Restore saved nodes as "questionable"; the library's own bootstrap
 * (a lookup of our id while short of good nodes) then contacts them. */
static void load_table(struct dht_node *dn)
{
	sqlite3 *db = dn->node->store->db;
	sqlite3_stmt *st = NULL;
	if (sqlite3_prepare_v2(db,
			       "SELECT id, host, port FROM dht_nodes ORDER BY last_seen DESC LIMIT ?",
			       -1, &st, NULL) != SQLITE_OK) {
		log_warn("DHT: cannot read the saved routing table: %s", sqlite3_errmsg(db));
		return;
	}
	sqlite3_bind_int(st, 1, DHTN_LOAD_MAX);
	uint64_t now = now_ms();
	int rc;
	unsigned skipped = 0;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const void *id = sqlite3_column_blob(st, 0);
		int id_len = sqlite3_column_bytes(st, 0);
		const unsigned char *host = sqlite3_column_text(st, 1);
		int port = sqlite3_column_int(st, 2);
		struct sockaddr_storage ss;
		socklen_t len;
		if (!id || id_len != DHT_ID_LEN || !host || port < 1 || port > 65535 ||
		    !(len = addr_from_numeric((const char *)host, (uint16_t)port, &ss))) {
			skipped++;
			continue;
		}
		int f = fam_of(ss.ss_family);
		if (!dn->inst[f].dht)
			continue;
		if (dht_add_node(dn->inst[f].dht, id, (struct sockaddr *)&ss, len, now) == 0)
			dn->nodes_loaded++;
	}
	if (rc != SQLITE_DONE)
		log_warn("DHT: reading the saved routing table: %s", sqlite3_errmsg(db));
	sqlite3_finalize(st);
	if (skipped)
		log_warn("DHT: skipped %u malformed rows in dht_nodes", skipped);
	if (dn->nodes_loaded)
		log_info("DHT: restored %llu nodes from the saved routing table",
			 (unsigned long long)dn->nodes_loaded);
}

/* Replace each running family's rows with its current table, in one
 * transaction.  A family whose table is empty keeps its old rows: a node
 * that could not reach anyone this time should still rejoin next time. */
static void save_table(struct dht_node *dn)
{
	struct store *store = dn->node->store;
	sqlite3 *db = store->db;
	sqlite3_stmt *del = NULL, *ins = NULL;
	struct dht_node_info *nodes = calloc(DHTN_SAVE_MAX, sizeof *nodes);
	bool in_tx = false;
	size_t saved = 0;
	if (!nodes)
		goto fail;
	if (store_exec(store, "BEGIN IMMEDIATE;") != 0)
		goto fail;
	in_tx = true;
	if (sqlite3_prepare_v2(db, "DELETE FROM dht_nodes WHERE (instr(host, ':') > 0) = ?", -1,
			       &del, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db,
			       "INSERT OR REPLACE INTO dht_nodes (id, host, port, last_seen) "
			       "VALUES (?, ?, ?, ?)",
			       -1, &ins, NULL) != SQLITE_OK)
		goto fail;
	uint64_t now = now_ms();
	int64_t wall = (int64_t)time(NULL);
	for (int f = 0; f < FAM_N; f++) {
		if (!dn->inst[f].dht)
			continue;
		size_t n = dht_export_nodes(dn->inst[f].dht, nodes, DHTN_SAVE_MAX, now);
		if (n == 0)
			continue;
		sqlite3_bind_int(del, 1, f == FAM_V6);
		if (sqlite3_step(del) != SQLITE_DONE)
			goto fail;
		sqlite3_reset(del);
		for (size_t i = 0; i < n; i++) {
			char host[INET6_ADDRSTRLEN];
			uint16_t port;
			if (sa_host(&nodes[i].addr, host, sizeof host, &port) != 0 || port == 0)
				continue;
			sqlite3_bind_blob(ins, 1, nodes[i].id, DHT_ID_LEN, SQLITE_STATIC);
			sqlite3_bind_text(ins, 2, host, -1, SQLITE_TRANSIENT);
			sqlite3_bind_int(ins, 3, port);
			/* A questionable node was last heard from at least 15 minutes ago. */
			sqlite3_bind_int64(ins, 4, nodes[i].good ? wall : wall - 15 * 60);
			if (sqlite3_step(ins) != SQLITE_DONE)
				goto fail;
			sqlite3_reset(ins);
			saved++;
		}
	}
	sqlite3_finalize(del);
	sqlite3_finalize(ins);
	del = ins = NULL;
	if (store_exec(store, "COMMIT;") != 0)
		goto fail;
	free(nodes);
	dn->saves++;
	log_debug("DHT: saved %zu routing table entries", saved);
	return;
fail:
	dn->save_failures++;
	log_warn("DHT: cannot save the routing table: %s", db ? sqlite3_errmsg(db) : "no database");
	sqlite3_finalize(del);
	sqlite3_finalize(ins);
	if (in_tx)
		store_rollback(store);
	free(nodes);
}

/* ------------------------------------------------------------ timer */

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct dht_node *dn = arg;
	(void)fd;
	(void)what;
	uint64_t now = now_ms();
	dn->in_timer = true;
	if (dht_tracks_sync_due(dn->tracks, dn->node, now))
		dht_tracks_sync(dn->tracks, dn->node, now);
	struct dht *dhts[DHTT_FAMS] = { dn->inst[FAM_V4].dht, dn->inst[FAM_V6].dht };
	uint64_t wake = dht_tracks_run(dn->tracks, dhts, dn->node->cfg.peer_port, now);
	/* The swarm list is looked at again within a second of a change. */
	if (now + 1000 < wake)
		wake = now + 1000;
	if (dn->nboot && now >= dn->next_boot_ms)
		bootstrap_maybe(dn, now);
	if (now >= dn->next_save_ms) {
		save_table(dn);
		dn->next_save_ms = now + DHTN_SAVE_MS;
	}
	for (int f = 0; f < FAM_N; f++) {
		if (!dn->inst[f].dht)
			continue;
		uint64_t wait = 1000;
		dht_periodic(dn->inst[f].dht, now, &wait);
		if (now + wait < wake)
			wake = now + wait;
	}
	if (dn->nboot && dn->next_boot_ms < wake)
		wake = dn->next_boot_ms;
	if (dn->next_save_ms < wake)
		wake = dn->next_save_ms;
	dn->in_timer = false;
	timer_in(dn, wake > now ? wake - now : 0);
}

void dht_node_swarm_added(struct dht_node *dn, struct swarm *sw)
{
	(void)sw; /* the sync finds it; this only makes the sync happen now */
	if (!dn)
		return;
	dht_tracks_want_sync(dn->tracks);
	event_del(dn->timer);
	timer_in(dn, 0);
}

/* ------------------------------------------------------------ lifecycle */

struct dht_node *dht_node_new(struct node *node, char *err, size_t err_len)
{
	struct dht_node *dn = calloc(1, sizeof *dn);
	if (!dn) {
		snprintf(err, err_len, "DHT: out of memory");
		return NULL;
	}
	dn->node = node;
	for (int f = 0; f < FAM_N; f++)
		dn->inst[f].fd = -1;
	dn->tracks = dht_tracks_new();
	if (!dn->tracks) {
		snprintf(err, err_len, "DHT: out of memory");
		goto fail;
	}
	if (parse_bootstrap(dn, node->cfg.bootstrap, err, err_len) != 0)
		goto fail;
	collect_local_addrs(dn);
	if (inst_open(dn, FAM_V4, err, err_len) != 0)
		goto fail;
	bool want_v6 = have_global_ipv6(dn);
	for (size_t i = 0; i < dn->nboot && !want_v6; i++) {
		struct sockaddr_storage ss;
		want_v6 = addr_from_numeric(dn->boot[i].host, 1, &ss) && ss.ss_family == AF_INET6;
	}
	if (want_v6) {
		char err6[256];
		if (inst_open(dn, FAM_V6, err6, sizeof err6) != 0) {
			log_warn("%s; the DHT runs on IPv4 only", err6);
			inst_close(&dn->inst[FAM_V6]);
		}
	}
	dn->timer = evtimer_new(node->base, on_timer, dn);
	if (!dn->timer) {
		snprintf(err, err_len, "DHT: cannot create its timer");
		goto fail;
	}
	load_table(dn);
	uint64_t now = now_ms();
	dn->boot_backoff_ms = DHTN_BOOT_MIN_MS;
	dn->next_boot_ms = now;
	dn->next_save_ms = now + DHTN_SAVE_FIRST_MS;
	timer_in(dn, 0);
	char id[2 * DHT_ID_LEN + 1];
	hex_encode(node->node_id, DHT_ID_LEN, id);
	log_info("DHT: node %s on UDP port %u (%s), %zu bootstrap entr%s", id,
		 (unsigned)node->cfg.peer_port, dn->inst[FAM_V6].dht ? "IPv4 and IPv6" : "IPv4",
		 dn->nboot, dn->nboot == 1 ? "y" : "ies");
	return dn;
fail:
	dht_node_free(dn);
	return NULL;
}

void dht_node_free(struct dht_node *dn)
{
	if (!dn)
		return;
	if (dn->inst[FAM_V4].dht && dn->timer)
		save_table(dn); /* only a node that ran has a table worth keeping */
	dn->freeing = true;
	for (size_t i = 0; i < dn->nboot; i++) {
		struct dhtn_dns_ticket *ticket = dn->boot[i].ticket;
		if (!ticket)
			continue;
		/* Cancelled callbacks are deferred to a loop that will not run
		 * again; detached, the ticket cannot reach freed memory. */
		ticket->dn = NULL;
		if (ticket->req)
			evdns_getaddrinfo_cancel(ticket->req);
		dn->boot[i].ticket = NULL;
	}
	if (dn->dns)
		evdns_base_free(dn->dns, 1);
	dn->dns = NULL;
	if (dn->timer)
		event_free(dn->timer);
	for (int f = 0; f < FAM_N; f++)
		inst_close(&dn->inst[f]);
	dht_tracks_free(dn->tracks);
	free(dn);
}

/* ------------------------------------------------------------ JSON */

static void set_u(json_t *o, const char *key, uint64_t v)
{
	json_object_set_new(o, key, json_integer((json_int_t)v));
}

json_t *dht_node_status_json(struct dht_node *dn)
{
	if (!dn)
		return json_pack("{s:b,s:s}", "running", 0, "note", "the DHT is not running");
	uint64_t now = now_ms();
	size_t good = 0, total = 0;
	for (int f = 0; f < FAM_N; f++) {
		if (!dn->inst[f].dht)
			continue;
		struct dht_stats st;
		dht_get_stats(dn->inst[f].dht, &st, now);
		good += st.nodes_good;
		total += st.nodes_total;
	}
	json_t *o = json_pack("{s:b,s:i,s:b}", "running", 1, "port", (int)dn->node->cfg.peer_port,
			      "ipv6", dn->inst[FAM_V6].dht != NULL);
	if (!o)
		return NULL;
	set_u(o, "nodes", total);
	set_u(o, "good_nodes", good);
	return o;
}


void dht_node_counts(struct dht_node *dn, struct dht_node_counts *out)
{
	memset(out, 0, sizeof *out);
	if (!dn)
		return;
	uint64_t now = now_ms();
	for (int f = 0; f < FAM_N; f++) {
		if (!dn->inst[f].dht)
			continue;
		struct dht_stats st;
		dht_get_stats(dn->inst[f].dht, &st, now);
		out->nodes[f == FAM_V6] += st.nodes_total;
		for (int q = 0; q < DHT_METHODS; q++) {
			for (int r = 0; r < DHT_RESULTS; r++)
				out->sent[q][r] += st.sent[q][r];
			out->received[q][0] += st.received[q][0];
			out->received[q][1] += st.received[q][1];
		}
	}
}

json_t *dht_node_json(struct dht_node *dn)
{
	if (!dn)
		return dht_node_status_json(NULL);
	struct node *node = dn->node;
	uint64_t now = now_ms();
	char id[2 * DHT_ID_LEN + 1];
	hex_encode(node->node_id, DHT_ID_LEN, id);
	json_t *o = json_pack("{s:b,s:s,s:i,s:b}", "running", 1, "id", id, "port",
			      (int)node->cfg.peer_port, "ipv6", dn->inst[FAM_V6].dht != NULL);
	if (!o)
		return NULL;
	struct dht_stats sum;
	memset(&sum, 0, sizeof sum);
	uint64_t send_errors = 0;
	json_t *fams = json_array();
	for (int f = 0; f < FAM_N; f++) {
		if (!dn->inst[f].dht)
			continue;
		struct dht_stats st;
		dht_get_stats(dn->inst[f].dht, &st, now);
		sum.nodes_good += st.nodes_good;
		sum.nodes_total += st.nodes_total;
		sum.buckets += st.buckets;
		sum.lookups_running += st.lookups_running;
		sum.lookups_done += st.lookups_done;
		sum.keys_stored += st.keys_stored;
		sum.peers_stored += st.peers_stored;
		sum.packets_in += st.packets_in;
		sum.packets_out += st.packets_out;
		sum.queries_in += st.queries_in;
		sum.malformed += st.malformed;
		sum.rate_limited += st.rate_limited;
		sum.unexpected += st.unexpected;
		sum.timeouts += st.timeouts;
		sum.memory_bytes += st.memory_bytes;
		send_errors += dn->inst[f].send_errors;
		json_t *fo = json_pack("{s:s}", "family", fam_name(f));
		if (!fo)
			continue;
		set_u(fo, "nodes", st.nodes_total);
		set_u(fo, "good_nodes", st.nodes_good);
		set_u(fo, "buckets", st.buckets);
		set_u(fo, "lookups_running", st.lookups_running);
		set_u(fo, "lookups_done", st.lookups_done);
		set_u(fo, "keys_stored", st.keys_stored);
		set_u(fo, "peers_stored", st.peers_stored);
		set_u(fo, "packets_in", st.packets_in);
		set_u(fo, "packets_out", st.packets_out);
		set_u(fo, "queries_in", st.queries_in);
		set_u(fo, "malformed", st.malformed);
		set_u(fo, "rate_limited", st.rate_limited);
		set_u(fo, "unexpected", st.unexpected);
		set_u(fo, "timeouts", st.timeouts);
		set_u(fo, "send_errors", dn->inst[f].send_errors);
		set_u(fo, "memory_bytes", st.memory_bytes);
		json_array_append_new(fams, fo);
	}
	set_u(o, "nodes", sum.nodes_total);
	set_u(o, "good_nodes", sum.nodes_good);
	set_u(o, "buckets", sum.buckets);
	set_u(o, "lookups_running", sum.lookups_running);
	set_u(o, "lookups_done", sum.lookups_done);
	set_u(o, "keys_stored", sum.keys_stored);
	set_u(o, "peers_stored", sum.peers_stored);
	set_u(o, "packets_in", sum.packets_in);
	set_u(o, "packets_out", sum.packets_out);
	set_u(o, "queries_in", sum.queries_in);
	set_u(o, "malformed", sum.malformed);
	set_u(o, "rate_limited", sum.rate_limited);
	set_u(o, "unexpected", sum.unexpected);
	set_u(o, "timeouts", sum.timeouts);
	set_u(o, "send_errors", send_errors);
	set_u(o, "memory_bytes", sum.memory_bytes);
	set_u(o, "peers_found", dn->peers_found);
	set_u(o, "nodes_loaded", dn->nodes_loaded);
	set_u(o, "table_saves", dn->saves);
	json_t *boot = json_array();
	for (size_t i = 0; i < dn->nboot && boot; i++) {
		char hp[300];
		bool v6 = strchr(dn->boot[i].host, ':') != NULL;
		snprintf(hp, sizeof hp, v6 ? "[%s]:%u" : "%s:%u", dn->boot[i].host,
			 (unsigned)dn->boot[i].port);
		json_array_append_new(boot, json_string(hp));
	}
	json_object_set_new(o, "bootstrap", boot);
	json_object_set_new(o, "families", fams);
	struct dht *dhts[DHTT_FAMS] = { dn->inst[FAM_V4].dht, dn->inst[FAM_V6].dht };
	json_object_set_new(o, "swarms", dht_tracks_json(dn->tracks, dhts, now));
	return o;
}
