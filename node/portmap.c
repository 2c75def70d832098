/* portmap.c: the peer port forwarded by the home router (NAT-PMP, then UPnP IGD) on a
 * thread of its own, and the external address voted by the router and by peers. */
/*
 * Threading contract.
 *
 * miniupnpc and libnatpmp block (SSDP waits, HTTP/SOAP with the library's
 * own multi-second socket timeouts, NAT-PMP retries), so every call into
 * them runs on ONE thread, pm_main, started by portmap_new.  It is not the
 * worker pool: its calls last seconds and would hold up hashing and disk I/O.
 *
 * struct pm_shared is the only memory both threads touch.  Its fields:
 *   lock            guards every field below it;
 *   wake            the thread sleeps on it until its next renewal or `stop`;
 *   done_cv         portmap_free waits on it (bounded) for `done`;
 *   stop            set by the loop (portmap_free): remove the mappings, end;
 *   done            set by the thread as its last act on the shared state;
 *   refs            2 while both sides hold it; the last to drop it frees it
 *                   (the loop may give up waiting and detach the thread);
 *   st              the latest status, written by the thread, copied out by
 *                   the loop (portmap_status_json, on_posted);
 *   port, lease_ask written by portmap_new before the thread starts, then
 *                   read-only (pthread_create orders them);
 *   efd             an eventfd the thread writes after changing `st` (only
 *                   while !stop), read by the loop's `posted` event.
 * Everything else is owned by one side: struct portmap (the loop), struct
 * pm_work (the thread: the IGD's URLs, the NAT-PMP socket, leases, backoff).
 * The thread never touches struct node.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <poll.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <miniupnpc/miniupnpc.h>
#include <miniupnpc/upnpcommands.h>
#include <miniupnpc/upnperrors.h>
#define ENABLE_STRNATPMPERR 1 /* Debian's libnatpmp exports it; the header hides it behind this */
#include <natpmp.h>

#include "common/log.h"
#include "common/util.h"
#include "node/node.h"
#include "node/portmap.h"

#define PM_LEASE_S 3600           /* asked of both protocols; renewed at half-life */
#define PM_BACKOFF_MIN_S 30       /* after a failure, doubling ... */
#define PM_BACKOFF_MAX_S 1800     /* ... up to this */
#define PM_NATPMP_WAIT_MS 1000    /* a gateway answers NAT-PMP within this, or is not one */
#define PM_UPNP_DISCOVER_MS 2000  /* SSDP: how long we listen for IGDs */
#define PM_STOP_WAIT_MS 2000      /* portmap_free: at most this for the removals */
#define PM_PERMANENT_RENEW_S 1800 /* a permanent UPnP mapping: check it is still there */
#define PM_LEASE_MIN_S 4          /* a shorter lease granted is treated as this long */

enum pm_method { PM_NONE, PM_NATPMP, PM_UPNP };

static const char *const method_names[] = { "none", "natpmp", "upnp" };

struct pm_status {
	enum pm_method method;
	char external[INET6_ADDRSTRLEN]; /* the router's word, "" when none */
	uint16_t tcp_port, udp_port;     /* mapped external ports, 0 = none */
	int64_t lease_until_ms;          /* now_ms() time the lease ends; 0 = permanent/none */
	char last_error[192];            /* "" = none */
	uint64_t attempts, successes;
};

struct pm_shared {
	pthread_mutex_t lock;
	pthread_cond_t wake, done_cv;
	bool stop, done;
	int refs;
	int efd;
	struct pm_status st;
	uint16_t port;      /* the peer port to map */
	uint32_t lease_ask; /* seconds asked of the router (PM_LEASE_S, or the test knob) */
};

/* The thread's own state. */
struct pm_work {
	uint16_t port;
	uint32_t lease_ask; /* what we ask for */
	enum pm_method method;
	uint32_t lease_s; /* what the router granted; 0 = permanent (UPnP) */
	/* NAT-PMP */
	natpmp_t np;
	bool np_open;
	/* UPnP */
	struct UPNPUrls urls;
	struct IGDdatas data;
	bool igd;
	char lanaddr[64];
	char upnp_lease[12];    /* lease_ask as text, or "0" (permanent only) */
};

struct portmap {
	struct node *node;
	struct pm_shared *sh;
	struct event *posted;
	pthread_t thread;
	struct pm_status seen; /* the loop's copy of sh->st */
	uint64_t stop_ms;      /* when portmap_stop ran; 0 = not yet */
};

/* Peer votes: a handful of candidate addresses, each with the distinct
 * voters seen recently.  Small fixed tables: a flood of votes costs a scan
 * of REACH_ADDRS x REACH_VOTERS at most and never allocates. */
#define REACH_ADDRS 8
#define REACH_VOTERS 8
#define REACH_FORGET_MS (30 * 60 * 1000)

struct reach_cand {
	int family; /* 0 = empty slot */
	uint8_t addr[16];
	uint8_t voters[REACH_VOTERS][8]; /* the voter's IPv4 or IPv6 /64 */
	unsigned n_voters;
	uint64_t last_ms;
};

struct reach {
	struct reach_cand cand[REACH_ADDRS];
	uint64_t votes, router_votes;
	int router_family;
	uint8_t router_addr[16];
};

/* ------------------------------------------------------------ the thread */

static void shared_unref(struct pm_shared *sh)
{
	pthread_mutex_lock(&sh->lock);
	bool last = --sh->refs == 0;
	pthread_mutex_unlock(&sh->lock);
	if (!last)
		return;
	if (sh->efd >= 0)
		close(sh->efd);
	pthread_mutex_destroy(&sh->lock);
	pthread_cond_destroy(&sh->wake);
	pthread_cond_destroy(&sh->done_cv);
	free(sh);
}

/* Under no lock: publish the thread's view (w, err) into sh->st and wake the loop. */
static void publish(struct pm_shared *sh, const struct pm_work *w, const char *external,
		    uint16_t tcp, uint16_t udp, const char *err, bool attempt)
{
	pthread_mutex_lock(&sh->lock);
	struct pm_status *st = &sh->st;
	st->method = w->method;
	if (external)
		snprintf(st->external, sizeof st->external, "%s", external);
	if (w->method == PM_NONE)
		st->tcp_port = st->udp_port = 0;
	else
		st->tcp_port = tcp, st->udp_port = udp;
	st->lease_until_ms =
		w->method != PM_NONE && w->lease_s ? (int64_t)now_ms() + (int64_t)w->lease_s * 1000 : 0;
	snprintf(st->last_error, sizeof st->last_error, "%s", err ? err : "");
	if (attempt)
		st->attempts++;
	if (attempt && !err)
		st->successes++;
	if (!sh->stop) {
		uint64_t one = 1;
		if (write(sh->efd, &one, sizeof one) != sizeof one)
			(void)0; /* the counter is full: the loop is already woken */
	}
	pthread_mutex_unlock(&sh->lock);
}

/* One NAT-PMP exchange already sent: wait for its answer, at most
 * `wait_ms`, resending on libnatpmp's schedule.  Returns 0 with *resp
 * filled, or a NATPMP_ERR_* / -ETIMEDOUT. */
static int natpmp_wait(natpmp_t *np, int wait_ms, natpmpresp_t *resp)
{
	uint64_t deadline = now_ms() + (uint64_t)wait_ms;
	for (;;) {
		uint64_t now = now_ms();
		if (now >= deadline)
			return -ETIMEDOUT;
		struct timeval tv;
		if (getnatpmprequesttimeout(np, &tv) < 0)
			tv.tv_sec = 0, tv.tv_usec = 100000;
		uint64_t left = deadline - now;
		if ((uint64_t)tv.tv_sec * 1000 + (uint64_t)tv.tv_usec / 1000 > left) {
			tv.tv_sec = (time_t)(left / 1000);
			tv.tv_usec = (suseconds_t)(left % 1000) * 1000;
		}
		/* poll, not select: a daemon with many swarms holds descriptors
		 * past FD_SETSIZE, which FD_SET would write beyond. */
		struct pollfd pfd = { .fd = np->s, .events = POLLIN };
		int ms = (int)((uint64_t)tv.tv_sec * 1000 + (uint64_t)tv.tv_usec / 1000);
		if (poll(&pfd, 1, ms > 0 ? ms : 1) < 0 && errno != EINTR)
			return NATPMP_ERR_SOCKETERROR;
		int r = readnatpmpresponseorretry(np, resp);
		if (r == 0)
			return 0;
		/* Another host's datagram is not the gateway's answer: keep waiting. */
		if (r != NATPMP_TRYAGAIN && r != NATPMP_ERR_WRONGPACKETSOURCE)
			return r;
	}
}

static const char *natpmp_why(int r)
{
	if (r == -ETIMEDOUT)
		return "no answer";
	const char *s = strnatpmperr(r);
	return s ? s : "error";
}

/* Map (or renew, or with lease 0 remove) one protocol.  Returns 0 and the public port. */
static int natpmp_map(struct pm_work *w, int proto, uint32_t lease, uint16_t *pub_out, char *err,
		      size_t errlen)
{
	natpmpresp_t resp;
	int r = sendnewportmappingrequest(&w->np, proto, w->port, lease ? w->port : 0, lease);
	if (r >= 0)
		r = natpmp_wait(&w->np, PM_NATPMP_WAIT_MS, &resp);
	if (r == 0 && resp.type != (proto == NATPMP_PROTOCOL_TCP ? NATPMP_RESPTYPE_TCPPORTMAPPING
								 : NATPMP_RESPTYPE_UDPPORTMAPPING))
		r = NATPMP_ERR_UNDEFINEDERROR;
	if (r != 0) {
		snprintf(err, errlen, "NAT-PMP %s mapping: %s", proto == NATPMP_PROTOCOL_TCP ? "TCP" : "UDP",
			 natpmp_why(r));
		return -1;
	}
	if (lease && (resp.pnu.newportmapping.mappedpublicport == 0 ||
		      resp.pnu.newportmapping.lifetime == 0 ||
		      resp.pnu.newportmapping.privateport != w->port)) {
		snprintf(err, errlen, "NAT-PMP: the gateway's answer maps nothing usable (port %u -> %u, "
				      "%u s)",
			 (unsigned)resp.pnu.newportmapping.privateport,
			 (unsigned)resp.pnu.newportmapping.mappedpublicport,
			 (unsigned)resp.pnu.newportmapping.lifetime);
		return -1;
	}
	*pub_out = resp.pnu.newportmapping.mappedpublicport;
	if (lease && resp.pnu.newportmapping.lifetime < w->lease_s)
		w->lease_s = resp.pnu.newportmapping.lifetime < PM_LEASE_MIN_S
				     ? PM_LEASE_MIN_S /* renewals no faster than every 2 s */
				     : resp.pnu.newportmapping.lifetime;
	return 0;
}

/* NAT-PMP: the gateway's public address, then TCP and UDP.  0 = mapped. */
static int try_natpmp(struct pm_work *w, char *ext, uint16_t *tcp, uint16_t *udp, char *err,
		      size_t errlen)
{
	if (!w->np_open) {
		int r = initnatpmp(&w->np, 0, 0);
		if (r < 0) {
			snprintf(err, errlen, "NAT-PMP: %s", natpmp_why(r));
			return -1;
		}
		w->np_open = true;
	}
	natpmpresp_t resp;
	int r = sendpublicaddressrequest(&w->np);
	if (r >= 0)
		r = natpmp_wait(&w->np, PM_NATPMP_WAIT_MS, &resp);
	if (r == 0 && resp.type != NATPMP_RESPTYPE_PUBLICADDRESS)
		r = NATPMP_ERR_UNDEFINEDERROR;
	if (r != 0) {
		snprintf(err, errlen, "NAT-PMP public address: %s", natpmp_why(r));
		return -1;
	}
	if (!inet_ntop(AF_INET, &resp.pnu.publicaddress.addr, ext, INET6_ADDRSTRLEN))
		ext[0] = '\0';
	w->lease_s = w->lease_ask;
	if (natpmp_map(w, NATPMP_PROTOCOL_TCP, w->lease_ask, tcp, err, errlen) != 0)
		return -1;
	if (natpmp_map(w, NATPMP_PROTOCOL_UDP, w->lease_ask, udp, err, errlen) != 0) {
		uint16_t ignored;
		char e2[64];
		(void)natpmp_map(w, NATPMP_PROTOCOL_TCP, 0, &ignored, e2, sizeof e2);
		return -1;
	}
	return 0;
}

static void upnp_close(struct pm_work *w)
{
	if (w->igd)
		FreeUPNPUrls(&w->urls);
	w->igd = false;
}

static int upnp_add(struct pm_work *w, const char *proto, char *err, size_t errlen)
{
	char port[8];
	snprintf(port, sizeof port, "%u", (unsigned)w->port);
	int r = UPNP_AddPortMapping(w->urls.controlURL, w->data.first.servicetype, port, port,
				    w->lanaddr, "shoal", proto, NULL, w->upnp_lease);
	if (r == 725 && strcmp(w->upnp_lease, "0") != 0) { /* OnlyPermanentLeasesSupported */
		snprintf(w->upnp_lease, sizeof w->upnp_lease, "0");
		r = UPNP_AddPortMapping(w->urls.controlURL, w->data.first.servicetype, port, port,
					w->lanaddr, "shoal", proto, NULL, w->upnp_lease);
	}
	if (r != UPNPCOMMAND_SUCCESS) {
		const char *why = strupnperror(r);
		snprintf(err, errlen, "UPnP %s mapping: %s (%d)", proto, why ? why : "error", r);
		return -1;
	}
	/* miniupnpc calls any answer without an errorCode a success, noise
	 * included: believe the mapping only when the router lists it as ours. */
	char client[40] = "", inport[16] = "", desc[96] = "", enabled[8] = "", lease[24] = "";
	r = UPNP_GetSpecificPortMappingEntry(w->urls.controlURL, w->data.first.servicetype, port,
					     proto, NULL, client, inport, desc, enabled, lease);
	client[sizeof client - 1] = inport[sizeof inport - 1] = '\0';
	if (r != UPNPCOMMAND_SUCCESS || strcmp(client, w->lanaddr) != 0 || strcmp(inport, port) != 0) {
		snprintf(err, errlen,
			 "UPnP %s mapping: the router accepted it but does not list it as ours", proto);
		return -1;
	}
	/* A router may grant less than we asked: renew by what it says. */
	lease[sizeof lease - 1] = '\0';
	char *end = NULL;
	unsigned long granted = strtoul(lease, &end, 10);
	if (end != lease && *end == '\0' && granted > 0 && granted < w->lease_s)
		w->lease_s = (uint32_t)granted;
	return 0;
}

/* UPnP: find an IGD, ask its external address, map TCP and UDP.  0 = mapped. */
static int try_upnp(struct pm_work *w, char *ext, char *err, size_t errlen)
{
	if (!w->igd) {
		int e = 0;
		struct UPNPDev *devs =
			upnpDiscover(PM_UPNP_DISCOVER_MS, NULL, NULL, UPNP_LOCAL_PORT_ANY, 0, 2, &e);
		if (!devs) {
			snprintf(err, errlen, "UPnP: no IGD answered discovery");
			return -1;
		}
		int r = UPNP_GetValidIGD(devs, &w->urls, &w->data, w->lanaddr, sizeof w->lanaddr);
		freeUPNPDevlist(devs);
		if (r == 1 || r == 2) {
			w->igd = true;
		} else {
			if (r != 0)
				FreeUPNPUrls(&w->urls);
			snprintf(err, errlen, "UPnP: %s",
				 r == 3 ? "a UPnP device answered but is not an Internet gateway"
					: "no valid Internet gateway in the devices that answered");
			return -1;
		}
		snprintf(w->upnp_lease, sizeof w->upnp_lease, "%u", (unsigned)w->lease_ask);
		struct in_addr probe;
		if (!w->urls.controlURL || !w->urls.controlURL[0] ||
		    inet_pton(AF_INET, w->lanaddr, &probe) != 1) {
			upnp_close(w);
			snprintf(err, errlen, "UPnP: the gateway's description is unusable");
			return -1;
		}
	}
	char ip[40] = "";
	if (UPNP_GetExternalIPAddress(w->urls.controlURL, w->data.first.servicetype, ip) ==
		    UPNPCOMMAND_SUCCESS) {
		struct in_addr a;
		ip[sizeof ip - 1] = '\0';
		if (inet_pton(AF_INET, ip, &a) == 1 && a.s_addr != 0)
			snprintf(ext, INET6_ADDRSTRLEN, "%s", ip);
	}
	w->lease_s = w->lease_ask;
	if (upnp_add(w, "TCP", err, errlen) != 0)
		goto fail;
	if (upnp_add(w, "UDP", err, errlen) != 0) {
		char port[8];
		snprintf(port, sizeof port, "%u", (unsigned)w->port);
		(void)UPNP_DeletePortMapping(w->urls.controlURL, w->data.first.servicetype, port, "TCP",
					     NULL);
		goto fail;
	}
	if (strcmp(w->upnp_lease, "0") == 0)
		w->lease_s = 0; /* permanent: PM_PERMANENT_RENEW_S checks it is still there */
	return 0;
fail:
	upnp_close(w); /* rediscover next time: the router may have changed */
	return -1;
}

/* Remove what is mapped; each call is bounded (NAT-PMP by us, UPnP by the
 * library's socket timeouts); portmap_free does not wait past its own bound. */
static void unmap(struct pm_work *w)
{
	char err[64];
	uint16_t ignored;
	if (w->method == PM_NATPMP) {
		(void)natpmp_map(w, NATPMP_PROTOCOL_TCP, 0, &ignored, err, sizeof err);
		(void)natpmp_map(w, NATPMP_PROTOCOL_UDP, 0, &ignored, err, sizeof err);
	} else if (w->method == PM_UPNP && w->igd) {
		char port[8];
		snprintf(port, sizeof port, "%u", (unsigned)w->port);
		(void)UPNP_DeletePortMapping(w->urls.controlURL, w->data.first.servicetype, port, "TCP",
					     NULL);
		(void)UPNP_DeletePortMapping(w->urls.controlURL, w->data.first.servicetype, port, "UDP",
					     NULL);
	}
	w->method = PM_NONE;
}

/* One attempt (or renewal): NAT-PMP first, then UPnP.  Returns 0 when mapped. */
static int attempt(struct pm_work *w, char *ext, uint16_t *tcp, uint16_t *udp, char *err,
		   size_t errlen)
{
	char e1[96] = "", e2[96] = "";
	if (w->method != PM_UPNP) {
		if (try_natpmp(w, ext, tcp, udp, e1, sizeof e1) == 0) {
			w->method = PM_NATPMP;
			return 0;
		}
		/* initnatpmp bound the socket to the gateway of its time: after
		 * a move or a new lease from DHCP the next attempt asks anew. */
		if (w->np_open)
			closenatpmp(&w->np);
		w->np_open = false;
	}
	if (try_upnp(w, ext, e2, sizeof e2) == 0) {
		w->method = PM_UPNP;
		*tcp = *udp = w->port;
		return 0;
	}
	w->method = PM_NONE;
	if (e1[0])
		snprintf(err, errlen, "%s; %s", e1, e2);
	else
		snprintf(err, errlen, "%s", e2);
	return -1;
}

static void *pm_main(void *arg)
{
	struct pm_shared *sh = arg;
	struct pm_work w;
	memset(&w, 0, sizeof w);
	w.port = sh->port;
	w.lease_ask = sh->lease_ask;
	uint64_t next = now_ms();
	uint32_t backoff = PM_BACKOFF_MIN_S;
	for (;;) {
		pthread_mutex_lock(&sh->lock);
		for (;;) {
			/* One reading of the clock: two could straddle `next`, and
			 * next - now would wrap to a sleep until shutdown. */
			uint64_t now = now_ms();
			if (sh->stop || now >= next)
				break;
			struct timespec ts;
			clock_gettime(CLOCK_MONOTONIC, &ts);
			uint64_t wait = next - now;
			ts.tv_sec += (time_t)(wait / 1000);
			ts.tv_nsec += (long)(wait % 1000) * 1000000L;
			if (ts.tv_nsec >= 1000000000L)
				ts.tv_sec++, ts.tv_nsec -= 1000000000L;
			pthread_cond_timedwait(&sh->wake, &sh->lock, &ts);
		}
		bool stop = sh->stop;
		pthread_mutex_unlock(&sh->lock);
		if (stop)
			break;
		char ext[INET6_ADDRSTRLEN] = "", err[192] = "";
		uint16_t tcp = 0, udp = 0;
		if (attempt(&w, ext, &tcp, &udp, err, sizeof err) == 0) {
			publish(sh, &w, ext, tcp, udp, NULL, true);
			uint32_t renew = w.lease_s ? w.lease_s / 2 : PM_PERMANENT_RENEW_S;
			next = now_ms() + (uint64_t)(renew ? renew : 1) * 1000;
			backoff = PM_BACKOFF_MIN_S;
		} else {
			publish(sh, &w, ext, 0, 0, err, true); /* "" clears the router's old word */
			next = now_ms() + (uint64_t)backoff * 1000;
			backoff = backoff * 2 > PM_BACKOFF_MAX_S ? PM_BACKOFF_MAX_S : backoff * 2;
		}
	}
	unmap(&w);
	upnp_close(&w);
	if (w.np_open)
		closenatpmp(&w.np);
	pthread_mutex_lock(&sh->lock);
	sh->done = true;
	pthread_cond_broadcast(&sh->done_cv);
	pthread_mutex_unlock(&sh->lock);
	shared_unref(sh);
	return NULL;
}

/* ------------------------------------------------------------ the loop side */

static void on_posted(evutil_socket_t fd, short events, void *arg)
{
	struct portmap *pm = arg;
	(void)events;
	uint64_t n;
	if (read(fd, &n, sizeof n) < 0 && errno != EAGAIN)
		log_error("portmap: eventfd: %s", strerror(errno));
	struct pm_status was = pm->seen;
	pthread_mutex_lock(&pm->sh->lock);
	pm->seen = pm->sh->st;
	pthread_mutex_unlock(&pm->sh->lock);
	const struct pm_status *st = &pm->seen;
	if (st->method != PM_NONE && (was.method != st->method || was.tcp_port != st->tcp_port))
		log_info("port mapping: %s maps external %s:%u (TCP), :%u (UDP) to peer port %u",
			 st->method == PM_UPNP ? "UPnP" : "NAT-PMP", st->external[0] ? st->external : "?",
			 (unsigned)st->tcp_port, (unsigned)st->udp_port,
			 (unsigned)pm->node->cfg.peer_port);
	if (st->method == PM_UPNP && st->lease_until_ms == 0 &&
	    (was.method != PM_UPNP || was.lease_until_ms != 0))
		log_warn("port mapping: the router grants only permanent UPnP mappings; if this "
			 "daemon is killed the forward of port %u stays on the router until it "
			 "restarts (remove it with `upnpc -d %u TCP` and `... UDP`)",
			 (unsigned)pm->node->cfg.peer_port, (unsigned)pm->node->cfg.peer_port);
	else if (st->method == PM_NONE && strcmp(was.last_error, st->last_error) != 0)
		log_info("port mapping: not mapped: %s", st->last_error);
	uint8_t a[16];
	if (st->external[0] && inet_pton(AF_INET, st->external, a) == 1)
		reach_vote(pm->node, AF_INET, a, NULL, REACH_ROUTER);
	else
		reach_vote(pm->node, 0, NULL, NULL, REACH_ROUTER); /* the router says nothing now */
}

/* A test knob (docs/reachability.md): SHOAL_TEST_PORTMAP_LEASE=S asks the
 * router for S-second leases, 4-3600, so a test sees renewals without
 * waiting half an hour.  It can only shorten them. */
static uint32_t lease_ask(void)
{
	const char *v = getenv("SHOAL_TEST_PORTMAP_LEASE");
	if (!v || !*v)
		return PM_LEASE_S;
	char *end = NULL;
	long s = strtol(v, &end, 10);
	if (*end || s < 4 || s > PM_LEASE_S) {
		log_warn("SHOAL_TEST_PORTMAP_LEASE=%s ignored: expected 4-%d seconds", v, PM_LEASE_S);
		return PM_LEASE_S;
	}
	log_warn("port mapping leases of %ld s (SHOAL_TEST_PORTMAP_LEASE, a test knob)", s);
	return (uint32_t)s;
}

struct portmap *portmap_new(struct node *node, char *err, size_t errlen)
{
	struct portmap *pm = calloc(1, sizeof *pm);
	struct pm_shared *sh = calloc(1, sizeof *sh);
	if (!pm || !sh) {
		snprintf(err, errlen, "port mapping: out of memory");
		free(pm);
		free(sh);
		return NULL;
	}
	pm->node = node;
	pm->sh = sh;
	pthread_mutex_init(&sh->lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&sh->wake, &ca);
	pthread_cond_init(&sh->done_cv, &ca);
	pthread_condattr_destroy(&ca);
	sh->refs = 1; /* the loop's */
	sh->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (sh->efd < 0) {
		snprintf(err, errlen, "port mapping: eventfd: %s", strerror(errno));
		goto fail;
	}
	pm->posted = event_new(node->base, sh->efd, EV_READ | EV_PERSIST, on_posted, pm);
	if (!pm->posted || event_add(pm->posted, NULL) != 0) {
		snprintf(err, errlen, "port mapping: cannot watch its eventfd");
		goto fail;
	}
	pm->seen = sh->st;
	sh->port = node->cfg.peer_port;
	sh->lease_ask = lease_ask();
	sh->refs = 2; /* and the thread's */
	/* The thread takes no signal: a SIGTERM landing there would interrupt
	 * a router call, fail the mapping and leave nothing to remove. */
	sigset_t all, old;
	sigfillset(&all);
	/* Faults stay deliverable: a crash in a library call must be reported. */
	sigdelset(&all, SIGSEGV);
	sigdelset(&all, SIGBUS);
	sigdelset(&all, SIGFPE);
	sigdelset(&all, SIGILL);
	sigdelset(&all, SIGABRT);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	int prc = pthread_create(&pm->thread, NULL, pm_main, sh);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (prc != 0) {
		sh->refs = 1;
		snprintf(err, errlen, "port mapping: cannot start its thread");
		goto fail;
	}
	return pm;
fail:
	if (pm->posted)
		event_free(pm->posted);
	shared_unref(sh);
	free(pm);
	return NULL;
}

void portmap_stop(struct portmap *pm)
{
	if (!pm)
		return;
	pm->stop_ms = now_ms();
	pthread_mutex_lock(&pm->sh->lock);
	pm->sh->stop = true;
	pthread_cond_broadcast(&pm->sh->wake);
	pthread_mutex_unlock(&pm->sh->lock);
}

void portmap_free(struct portmap *pm)
{
	if (!pm)
		return;
	struct pm_shared *sh = pm->sh;
	/* The bound runs from portmap_stop when it was called. */
	uint64_t now = now_ms();
	uint64_t spent = pm->stop_ms && now > pm->stop_ms ? now - pm->stop_ms : 0;
	uint64_t wait = spent < PM_STOP_WAIT_MS ? PM_STOP_WAIT_MS - spent : 0;
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += (time_t)(wait / 1000);
	ts.tv_nsec += (long)(wait % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L)
		ts.tv_sec++, ts.tv_nsec -= 1000000000L;
	pthread_mutex_lock(&sh->lock);
	sh->stop = true;
	pthread_cond_broadcast(&sh->wake);
	int rc = 0;
	while (!sh->done && rc != ETIMEDOUT)
		rc = pthread_cond_timedwait(&sh->done_cv, &sh->lock, &ts);
	bool done = sh->done;
	pthread_mutex_unlock(&sh->lock);
	if (done) {
		pthread_join(pm->thread, NULL);
	} else {
		/* A router that does not answer: leave the thread to finish its
		 * call alone (it frees the shared state); its leases expire. */
		log_warn("port mapping: the router did not answer the removal within %d ms; "
			 "leaving its leases to expire",
			 PM_STOP_WAIT_MS);
		pthread_detach(pm->thread);
	}
	event_free(pm->posted);
	shared_unref(sh);
	free(pm);
}

/* ------------------------------------------------------------ votes */

static struct reach *reach_of(struct node *node)
{
	if (!node->reach)
		node->reach = calloc(1, sizeof *node->reach);
	return node->reach;
}

void reach_free(struct node *node)
{
	free(node->reach);
	node->reach = NULL;
}

static bool addr_usable(int family, const uint8_t *a)
{
	static const uint8_t zero[16];
	if (family == AF_INET)
		return a[0] != 0 && a[0] != 127 && !(a[0] >= 224) && !(a[0] == 169 && a[1] == 254);
	if (family == AF_INET6) {
		static const uint8_t one[16] = { [15] = 1 };
		static const uint8_t mapped[12] = { [10] = 0xff, [11] = 0xff };
		return memcmp(a, zero, 16) != 0 && memcmp(a, one, 16) != 0 && a[0] != 0xff &&
		       !(a[0] == 0xfe && (a[1] & 0xc0) == 0x80) && memcmp(a, mapped, 12) != 0;
	}
	return false;
}

/* A LAN address (RFC 1918, shared 100.64/10, IPv6 ULA): how a neighbour
 * sees us, not the Internet.  A router may report one (double NAT), a
 * peer's vote for one is counted but is no candidate. */
static bool addr_private(int family, const uint8_t *a)
{
	if (family == AF_INET)
		return ipv4_rfc1918(a) || (a[0] == 100 && (a[1] & 0xc0) == 64);
	return (a[0] & 0xfe) == 0xfc;
}

void reach_vote(struct node *node, int family, const uint8_t *addr, const struct sockaddr *voter,
		enum reach_source source)
{
	struct reach *R = reach_of(node);
	if (!R)
		return;
	if (source == REACH_ROUTER) {
		/* The router's word, while it has one and it is public: a router
		 * behind another NAT (100.64/10, RFC 1918) reports an address the
		 * Internet does not see (router_addr still shows it). */
		R->router_family = 0;
		if (addr && addr_usable(family, addr) && !addr_private(family, addr)) {
			R->router_family = family;
			memcpy(R->router_addr, addr, family == AF_INET ? 4 : 16);
			R->router_votes++;
		}
		return;
	}
	if (!addr || !addr_usable(family, addr))
		return;
	size_t alen = family == AF_INET ? 4 : 16;
	uint8_t who[8] = { 0 };
	if (!voter)
		return;
	if (voter->sa_family == AF_INET)
		memcpy(who, &((const struct sockaddr_in *)voter)->sin_addr, 4);
	else if (voter->sa_family == AF_INET6)
		memcpy(who, &((const struct sockaddr_in6 *)voter)->sin6_addr, 8);
	else
		return;
	R->votes++;
	if (addr_private(family, addr))
		return;
	uint64_t now = now_ms();
	struct reach_cand *c = NULL, *victim = NULL;
	for (int i = 0; i < REACH_ADDRS; i++) {
		struct reach_cand *x = &R->cand[i];
		if (x->family && now - x->last_ms > REACH_FORGET_MS)
			x->family = 0;
		if (x->family == family && memcmp(x->addr, addr, alen) == 0)
			c = x;
		else if (!victim || !x->family ||
			 (victim->family && (x->n_voters < victim->n_voters ||
					     (x->n_voters == victim->n_voters && x->last_ms < victim->last_ms))))
			victim = x;
	}
	if (!c) {
		c = victim;
		memset(c, 0, sizeof *c);
		c->family = family;
		memcpy(c->addr, addr, alen);
	}
	c->last_ms = now;
	for (unsigned i = 0; i < c->n_voters; i++)
		if (memcmp(c->voters[i], who, sizeof who) == 0)
			return;
	if (c->n_voters < REACH_VOTERS)
		memcpy(c->voters[c->n_voters++], who, sizeof who);
}

/* The external address: the router's word, else the one >= 2 distinct
 * peers agree on (most voters wins).  Writes text into out; returns the source name or NULL. */
static const char *reach_best(struct node *node, char *out, size_t outlen)
{
	struct reach *R = node->reach;
	if (!R)
		return NULL;
	if (R->router_family) {
		inet_ntop(R->router_family, R->router_addr, out, (socklen_t)outlen);
		return "router";
	}
	const struct reach_cand *best = NULL;
	uint64_t now = now_ms();
	for (int i = 0; i < REACH_ADDRS; i++) {
		const struct reach_cand *x = &R->cand[i];
		if (!x->family || x->n_voters < 2 || now - x->last_ms > REACH_FORGET_MS)
			continue;
		if (!best || x->n_voters > best->n_voters ||
		    (x->n_voters == best->n_voters && x->family == AF_INET && best->family != AF_INET))
			best = x;
	}
	if (!best)
		return NULL;
	inet_ntop(best->family, best->addr, out, (socklen_t)outlen);
	return "peers";
}

json_t *portmap_status_json(struct node *node, const struct portmap *pm)
{
	char ext[INET6_ADDRSTRLEN] = "";
	const char *src = reach_best(node, ext, sizeof ext);
	json_t *o = json_object();
	if (!o)
		return NULL;
	json_object_set_new(o, "external_addr", src ? json_string(ext) : json_null());
	json_object_set_new(o, "external_addr_source", src ? json_string(src) : json_null());
	json_object_set_new(o, "peer_votes",
			    json_integer(node->reach ? (json_int_t)node->reach->votes : 0));
	if (!pm) {
		json_object_set_new(o, "method", json_string("off"));
		json_object_set_new(o, "mapped_port", json_null());
		json_object_set_new(o, "mapped_udp_port", json_null());
		json_object_set_new(o, "last_error", json_null());
		json_object_set_new(o, "lease_expires_in", json_null());
		return o;
	}
	struct pm_status st;
	pthread_mutex_lock(&pm->sh->lock);
	st = pm->sh->st;
	pthread_mutex_unlock(&pm->sh->lock);
	bool mapped = st.method != PM_NONE;
	json_object_set_new(o, "method", json_string(method_names[st.method]));
	json_object_set_new(o, "mapped_port", mapped ? json_integer(st.tcp_port) : json_null());
	json_object_set_new(o, "mapped_udp_port", mapped ? json_integer(st.udp_port) : json_null());
	json_object_set_new(o, "last_error", st.last_error[0] ? json_string(st.last_error) : json_null());
	int64_t left = st.lease_until_ms ? (st.lease_until_ms - (int64_t)now_ms()) / 1000 : -1;
	json_object_set_new(o, "lease_expires_in", left >= 0 ? json_integer(left) : json_null());
	json_object_set_new(o, "router_addr", st.external[0] ? json_string(st.external) : json_null());
	json_object_set_new(o, "attempts", json_integer((json_int_t)st.attempts));
	return o;
}
