/* trackers.c: the tracker client on the event loop (see trackers.h and
 * docs/trackers.md).
 *
 * Three kinds of object:
 *   struct trk        one tracker URL of a swarm, with what it last told
 *                     us (per info-hash: a hybrid announces two);
 *   struct tier_ann   one tier announcing one info-hash: a timer, the
 *                     tracker of the tier in use (BEP 12: tried in order,
 *                     the one that answers moves to the front), and the
 *                     request in flight;
 *   struct treq       one request (announce or scrape) over HTTP(S) or
 *                     UDP.  A "stopped" announce outlives its swarm: it is
 *                     then an orphan, owned by struct trackers until it
 *                     ends, and carries copies of all it needs.
 * Tiers are announced to side by side, each one tracker at a time. */
#include "config.h"

#include "node/trackers.h"

#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/util.h>
#include <sodium.h>

#ifdef SHOAL_HAVE_EVENT_OPENSSL
#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#endif

#include "common/addr.h"
#include "common/log.h"
#include "common/util.h"
#include "node/engine.h"
#include "node/node.h"
#include "node/swarm.h"
#include "transfer/metainfo.h"

#define TID_BUCKETS 256u
#define MAX_DEAD_CONNS 64u
#define HTTP_MAX_HEADERS (64u << 10)
#define FULL_URL_MAX 2048u

struct trackers;
struct tracker_swarm;
struct tier_ann;

struct trk_key {
	bool started;              /* "started" was answered; no "stopped" since */
	int64_t last_announce;     /* unix s of its last good answer */
	int64_t next_at;           /* unix s of the next regular announce */
	int64_t peers;
	char tracker_id[TRACKER_MAX_TRACKER_ID + 1];
};

struct trk {
	struct tracker_swarm *ts;
	unsigned tier;
	char url[TRACKER_MAX_URL + 1];
	struct tracker_url u;
	struct trk_key k[2];
	int64_t seeders, leechers, downloaded, last_scrape;
	bool contacted, failing, scraped;
	char error[TRACKER_MAX_MESSAGE + 64];
	char warning[TRACKER_MAX_MESSAGE + 1];
	unsigned announces, failures;
	uint64_t conn_id, conn_until_ms; /* UDP */
	struct treq *scrape;
};

struct tier_ann {
	struct tracker_swarm *ts;
	unsigned tier;
	int key;
	struct event *timer;
	struct trk *cur;
	unsigned tried;            /* trackers of the tier that failed this round */
	unsigned fails;            /* rounds that failed in a row */
	struct treq *req;
	bool completed;            /* "completed" is still to be sent */
	bool again;                /* announce once the request in flight ends */
	int64_t next_at;
};

struct tracker_swarm {
	struct node *node;
	struct swarm *sw;
	size_t n;
	struct trk *t[TRACKER_MAX_TRACKERS];
	size_t n_ann;
	struct tier_ann *ann[2 * TRACKER_MAX_TRACKERS];
	bool running;
	bool completed;            /* completed while running: new tiers send it too */
	int nkeys;                 /* info-hashes the announcers were built for */
};

enum treq_kind { TREQ_ANNOUNCE, TREQ_SCRAPE };
enum udp_step { UDP_RESOLVING, UDP_CONNECTING, UDP_ASKING };

struct treq {
	struct trackers *T;
	enum treq_kind kind;
	struct trk *t;             /* NULL for an orphan */
	struct tier_ann *ann;      /* announces of a running tier */
	struct tracker_url u;
	char url[TRACKER_MAX_URL + 1];
	struct tracker_announce a;
	char tracker_id[TRACKER_MAX_TRACKER_ID + 1];
	struct event *deadline;
	/* UDP */
	struct evdns_getaddrinfo_request *dns;
	struct sockaddr_storage addr;
	socklen_t addr_len;
	int family;                /* of the tracker's address: 4 or 6 */
	enum udp_step step;
	unsigned tries;
	uint32_t tid;
	bool in_table;
	struct treq *tid_next;
	uint64_t conn_id, conn_until_ms;
	uint8_t pkt[TRACKER_UDP_ANNOUNCE_LEN];
	size_t pkt_len;
	/* HTTP */
	struct evhttp_connection *conn;
	void *ssl;
	bool https;
	unsigned redirects;
	char http_error[160];
	bool http_timeout;         /* http_error is evhttp's timeout */
	bool in_go, failed_in_go;
	/* orphans */
	struct treq *next;
	bool orphan;
	/* the cap on requests in flight (TRACKERS_MAX_INFLIGHT) */
	bool started;              /* counted in T->inflight */
	bool waiting;              /* on T->wait, for a free slot */
	struct treq *wait_next, *wait_prev;
};

struct trackers {
	struct node *node;
	struct event_base *base;
	struct evdns_base *dns;
	evutil_socket_t udp;
	bool udp6;                 /* the socket is IPv6 dual-stack */
	struct event *udp_ev;
	struct treq *tids[TID_BUCKETS];
	struct treq *orphans;
	struct evhttp_connection *dead[MAX_DEAD_CONNS];
	size_t n_dead;
	struct event *reap_ev;
	struct event *drain_ev;
	bool draining;
	uint64_t udp_ignored;      /* answers with an unknown transaction id or source */
	unsigned inflight;         /* requests started and not yet freed */
	struct treq *wait, *wait_last; /* requests waiting for a slot, oldest first */
	struct event *slot_ev;     /* a slot came free: start the next waiting ones */
	uint32_t key;
#ifdef SHOAL_HAVE_EVENT_OPENSSL
	SSL_CTX *ssl_ctx;
#endif
};

static void treq_free(struct treq *q);
static void treq_start(struct treq *q);
static void ann_schedule(struct tier_ann *ann, int64_t delay_s);
static void ann_kick(struct tier_ann *ann);

/* ------------------------------------------------------------ helpers */

static int64_t wall_now(void)
{
	return (int64_t)time(NULL);
}

static bool swarm_active(const struct swarm *sw)
{
	return !sw->remove_pending && (sw->state == SWARM_SEEDING || sw->state == SWARM_DOWNLOADING ||
				       sw->state == SWARM_METADATA);
}

/* The swarm's announce keys: the v2 hash truncated to 20 bytes (BEP 52)
 * and, for a hybrid, the v1 hash.  Returns how many. */
static int swarm_keys(const struct swarm *sw, const uint8_t *keys[2])
{
	int n = 0;
	if (sw->has_info_hash)
		keys[n++] = sw->info_hash;
	if (sw->has_info_hash_v1 && (n == 0 || memcmp(sw->info_hash_v1, sw->info_hash, 20) != 0))
		keys[n++] = sw->info_hash_v1;
	return n;
}

static int64_t min_interval(const struct trackers *T)
{
	return T ? (int64_t)T->node->cfg.tracker_min_interval : 30;
}

static int64_t timeout_s(const struct trackers *T)
{
	return T ? (int64_t)T->node->cfg.tracker_timeout : 15;
}

/* ------------------------------------------------------------ requests */

static struct treq *treq_new(struct trackers *T, enum treq_kind kind, const struct trk *t)
{
	struct treq *q = calloc(1, sizeof *q);
	if (!q)
		return NULL;
	q->T = T;
	q->kind = kind;
	q->u = t->u;
	snprintf(q->url, sizeof q->url, "%s", t->url);
	q->conn_id = t->conn_id;
	q->conn_until_ms = t->conn_until_ms;
	return q;
}

static void tid_remove(struct treq *q)
{
	if (!q->in_table)
		return;
	struct treq **pp = &q->T->tids[q->tid % TID_BUCKETS];
	while (*pp && *pp != q)
		pp = &(*pp)->tid_next;
	if (*pp)
		*pp = q->tid_next;
	q->in_table = false;
}

static struct treq *tid_find(struct trackers *T, uint32_t tid)
{
	for (struct treq *q = T->tids[tid % TID_BUCKETS]; q; q = q->tid_next)
		if (q->tid == tid)
			return q;
	return NULL;
}

/* A fresh transaction id, unique among those waiting (BEP 15: random, so
 * an off-path spoofer has to guess 32 bits). */
static void tid_assign(struct treq *q)
{
	tid_remove(q);
	do
		q->tid = randombytes_random();
	while (tid_find(q->T, q->tid));
	struct treq **head = &q->T->tids[q->tid % TID_BUCKETS];
	q->tid_next = *head;
	*head = q;
	q->in_table = true;
}

static void reap_cb(evutil_socket_t fd, short what, void *arg)
{
	struct trackers *T = arg;
	for (size_t i = 0; i < T->n_dead; i++)
		evhttp_connection_free(T->dead[i]);
	T->n_dead = 0;
}

/* An evhttp connection may not be freed inside its own request callback:
 * it is freed on a later turn of the loop. */
static void retire_conn(struct treq *q)
{
	struct trackers *T = q->T;
	if (!q->conn)
		return;
	if (T->n_dead == MAX_DEAD_CONNS)
		reap_cb(-1, 0, T); /* never inside a callback of those: they ended before */
	T->dead[T->n_dead++] = q->conn;
	q->conn = NULL;
	q->ssl = NULL;
	event_active(T->reap_ev, EV_TIMEOUT, 0);
}

static void treq_unlink_orphan(struct treq *q)
{
	struct treq **pp = &q->T->orphans;
	while (*pp && *pp != q)
		pp = &(*pp)->next;
	if (*pp)
		*pp = q->next;
}

/* Free a request and everything in flight for it.  Never called from the
 * request's own evhttp callback with its connection still set. */
static void wait_unlink(struct treq *q)
{
	struct trackers *T = q->T;
	if (q->wait_prev)
		q->wait_prev->wait_next = q->wait_next;
	else
		T->wait = q->wait_next;
	if (q->wait_next)
		q->wait_next->wait_prev = q->wait_prev;
	else
		T->wait_last = q->wait_prev;
	q->wait_next = q->wait_prev = NULL;
	q->waiting = false;
}

static void treq_free(struct treq *q)
{
	if (!q)
		return;
	struct trackers *T = q->T;
	tid_remove(q);
	if (q->waiting)
		wait_unlink(q);
	if (q->started) {
		T->inflight--;
		if (T->wait && T->slot_ev)
			event_active(T->slot_ev, EV_TIMEOUT, 0);
	}
	if (q->deadline)
		event_free(q->deadline);
	if (q->dns)
		evdns_getaddrinfo_cancel(q->dns); /* its callback sees EAI_CANCEL and q is not read */
	if (q->conn)
		evhttp_connection_free(q->conn);
	if (q->orphan) {
		treq_unlink_orphan(q);
		if (T->draining && !T->orphans)
			event_base_loopbreak(T->base);
	}
	if (q->ann && q->ann->req == q)
		q->ann->req = NULL;
	if (q->t && q->t->scrape == q)
		q->t->scrape = NULL;
	free(q);
}

/* ------------------------------------------------------------ outcomes */

static int64_t clamp_interval(struct trackers *T, int64_t v)
{
	int64_t lo = min_interval(T);
	if (v < 0)
		v = TRACKERS_DEFAULT_INTERVAL_S;
	return v < lo ? lo : v > TRACKERS_MAX_INTERVAL_S ? TRACKERS_MAX_INTERVAL_S : v;
}

/* Back-off for a tier none of whose trackers answered: twice the minimum
 * interval (60 s by default), doubling, at most an hour. */
static int64_t retry_delay(struct trackers *T, unsigned fails)
{
	int64_t base = 2 * min_interval(T);
	if (base > 60)
		base = 60;
	int64_t d = base << (fails > 6 ? 6 : fails ? fails - 1 : 0);
	return d > TRACKERS_MAX_RETRY_S ? TRACKERS_MAX_RETRY_S : d;
}

static size_t trk_index(const struct tracker_swarm *ts, const struct trk *t)
{
	for (size_t i = 0; i < ts->n; i++)
		if (ts->t[i] == t)
			return i;
	return ts->n;
}

static unsigned tier_size(const struct tracker_swarm *ts, unsigned tier)
{
	unsigned n = 0;
	for (size_t i = 0; i < ts->n; i++)
		n += ts->t[i]->tier == tier;
	return n;
}

static struct trk *tier_first(const struct tracker_swarm *ts, unsigned tier)
{
	for (size_t i = 0; i < ts->n; i++)
		if (ts->t[i]->tier == tier)
			return ts->t[i];
	return NULL;
}

/* The tracker after `t` in its tier, wrapping round. */
static struct trk *tier_next(const struct tracker_swarm *ts, const struct trk *t)
{
	size_t i = trk_index(ts, t);
	for (size_t k = i + 1; k < ts->n; k++)
		if (ts->t[k]->tier == t->tier)
			return ts->t[k];
	return tier_first(ts, t->tier);
}

/* BEP 12: a tracker that answered moves to the front of its tier. */
static bool move_to_front(struct tracker_swarm *ts, struct trk *t)
{
	size_t i = trk_index(ts, t), first = trk_index(ts, tier_first(ts, t->tier));
	if (i >= ts->n || first >= i)
		return false;
	memmove(&ts->t[first + 1], &ts->t[first], (i - first) * sizeof ts->t[0]);
	ts->t[first] = t;
	return true;
}

static void save_list(struct tracker_swarm *ts)
{
	struct tracker_list *l = malloc(sizeof *l);
	if (!l)
		return;
	trackers_swarm_list(ts->sw, l);
	if (trackers_db_save(ts->node, ts->sw, l) != 0)
		log_warn("swarm %" PRId64 ": the trackers' new order is not recorded", ts->sw->id);
	free(l);
}

static void start_scrape(struct trk *t);

/* Hand the answer's peers to the swarm (through the mediator's event). */
static void take_peers(struct tracker_swarm *ts, const struct tracker_reply *r)
{
	size_t added = 0;
	for (size_t i = 0; i < r->peer_count && added < TRACKERS_MAX_ADD; i++) {
		char host[64];
		tracker_peer_host(&r->peers[i], host, sizeof host);
		int rc = swarm_report_peer(ts->node, ts->sw, host, r->peers[i].port, "tracker");
		if (rc == -ENOSPC)
			break;
		added += rc == 0;
	}
}

static void trk_fail(struct trk *t, const char *why)
{
	t->contacted = true;
	t->failing = true;
	t->failures++;
	snprintf(t->error, sizeof t->error, "%s", why);
}

/* An announce ended: `rc` 0 with `r` (which may hold a failure reason),
 * or an error described by `why`. */
static void announce_done(struct treq *q, int rc, const char *why, struct tracker_reply *r)
{
	struct trk *t = q->t;
	struct tier_ann *ann = q->ann;
	struct tracker_swarm *ts = t->ts;
	int key = ann ? ann->key : 0;
	enum tracker_event ev = q->a.event;
	q->ann = NULL;
	if (ann && ann->req == q)
		ann->req = NULL;
	char msg[TRACKER_MAX_MESSAGE + 64];
	if (rc == 0 && r->failed) {
		snprintf(msg, sizeof msg, "tracker said: %s", r->message);
		why = msg;
		rc = -EPROTO;
	}
	if (rc) {
		trk_fail(t, why);
		log_info("swarm %" PRId64 ": tracker %s: %s", ts->sw->id, t->url, why);
		if (!ann)
			return;
		ann->tried++;
		if (ann->tried < tier_size(ts, ann->tier)) {
			ann->cur = tier_next(ts, t);
			ann_schedule(ann, 0);
		} else {
			ann->tried = 0;
			ann->fails++;
			ann->cur = tier_first(ts, ann->tier);
			ann_schedule(ann, retry_delay(q->T, ann->fails));
		}
		return;
	}
	int64_t now = wall_now();
	t->contacted = true;
	t->failing = false;
	t->error[0] = '\0';
	t->announces++;
	snprintf(t->warning, sizeof t->warning, "%s", r->warning);
	struct trk_key *k = &t->k[key];
	k->last_announce = now;
	k->peers = (int64_t)r->peer_count;
	if (r->tracker_id[0])
		snprintf(k->tracker_id, sizeof k->tracker_id, "%s", r->tracker_id);
	if (ev == TRACKER_EVENT_STARTED)
		k->started = true;
	if (r->complete >= 0)
		t->seeders = r->complete;
	if (r->incomplete >= 0)
		t->leechers = r->incomplete;
	if (r->downloaded >= 0)
		t->downloaded = r->downloaded;
	int64_t next = clamp_interval(q->T, r->interval);
	if (r->min_interval >= 0 && clamp_interval(q->T, r->min_interval) > next)
		next = clamp_interval(q->T, r->min_interval);
	k->next_at = now + next;
	log_debug("swarm %" PRId64 ": tracker %s: %zu peers, next in %" PRId64 " s", ts->sw->id,
		  t->url, r->peer_count, next);
	if (!ann)
		return;
	if (ev == TRACKER_EVENT_COMPLETED)
		ann->completed = false;
	ann->tried = ann->fails = 0;
	ann->cur = t;
	if (move_to_front(ts, t))
		save_list(ts);
	take_peers(ts, r);
	if (r->complete < 0 && r->incomplete < 0)
		start_scrape(t);
	/* The tier's other trackers are backups: scrape each once, so the
	 * user sees whether they are alive. */
	for (size_t i = 0; i < ts->n; i++)
		if (ts->t[i]->tier == t->tier && ts->t[i] != t && !ts->t[i]->scraped)
			start_scrape(ts->t[i]);
	if (ann->again || (ann->completed && ev != TRACKER_EVENT_COMPLETED))
		ann_schedule(ann, 0);
	else
		ann_schedule(ann, next);
}

static void scrape_done(struct treq *q, int rc, const char *why, struct tracker_reply *r)
{
	struct trk *t = q->t;
	t->scrape = NULL;
	t->scraped = true;
	if (rc == 0 && r->failed) {
		log_info("swarm %" PRId64 ": scrape of %s refused: %s", t->ts->sw->id, t->url,
			 r->message);
		return;
	}
	if (rc) {
		log_debug("swarm %" PRId64 ": scrape of %s: %s", t->ts->sw->id, t->url, why);
		return;
	}
	t->last_scrape = wall_now();
	if (r->complete >= 0)
		t->seeders = r->complete;
	if (r->incomplete >= 0)
		t->leechers = r->incomplete;
	if (r->downloaded >= 0)
		t->downloaded = r->downloaded;
}

/* An announce ended: count it for GET /metrics, by protocol and outcome. */
static void count_announce(struct treq *q, int rc, const struct tracker_reply *r)
{
	int proto = q->u.scheme == TRACKER_UDP	  ? METRICS_TRACKER_UDP
		    : q->u.scheme == TRACKER_HTTPS ? METRICS_TRACKER_HTTPS
						   : METRICS_TRACKER_HTTP;
	int result = rc == -ETIMEDOUT		? METRICS_TRACKER_TIMEOUT
		     : rc != 0 || r->failed ? METRICS_TRACKER_ERROR
					    : METRICS_TRACKER_OK;
	q->T->node->metrics.tracker_announces[proto][result]++;
}

/* Every request ends here exactly once; `q` is freed. */
static void treq_done(struct treq *q, int rc, const char *why, struct tracker_reply *r)
{
	struct tracker_reply empty;
	if (!r) {
		tracker_reply_init(&empty);
		r = &empty;
	}
	if (q->kind == TREQ_ANNOUNCE)
		count_announce(q, rc, r);
	if (q->t && q->t->conn_until_ms < q->conn_until_ms) {
		q->t->conn_id = q->conn_id;
		q->t->conn_until_ms = q->conn_until_ms;
	}
	if (q->orphan)
		log_debug("tracker %s: \"stopped\" %s", q->url, rc ? why : "sent");
	else if (q->t && q->kind == TREQ_ANNOUNCE)
		announce_done(q, rc, why, r);
	else if (q->t)
		scrape_done(q, rc, why, r);
	treq_free(q);
}

/* ------------------------------------------------------------ UDP */

static void udp_timeout_cb(evutil_socket_t fd, short what, void *arg);

static void udp_build(struct treq *q)
{
	tid_assign(q);
	if (q->step == UDP_CONNECTING)
		q->pkt_len = tracker_udp_connect_req(q->pkt, q->tid);
	else if (q->kind == TREQ_SCRAPE)
		q->pkt_len = tracker_udp_scrape_req(q->pkt, q->conn_id, q->tid, q->a.info_hash);
	else
		q->pkt_len = tracker_udp_announce_req(q->pkt, q->conn_id, q->tid, &q->a);
}

/* Send the current step's packet and wait 15 * 2^tries seconds (BEP 15). */
static void udp_transmit(struct treq *q)
{
	struct trackers *T = q->T;
	if (sendto(T->udp, q->pkt, q->pkt_len, 0, (struct sockaddr *)&q->addr, q->addr_len) < 0)
		log_debug("tracker %s: sendto: %s", q->url, strerror(errno));
	int64_t wait = timeout_s(T) << q->tries;
	struct timeval tv = { (time_t)wait, 0 };
	if (!q->deadline)
		q->deadline = evtimer_new(T->base, udp_timeout_cb, q);
	if (q->deadline)
		evtimer_add(q->deadline, &tv);
}

static void udp_step(struct treq *q, enum udp_step step)
{
	q->step = step;
	q->tries = 0;
	udp_build(q);
	udp_transmit(q);
}

static void udp_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct treq *q = arg;
	if (++q->tries >= TRACKERS_UDP_TRIES) {
		char why[96];
		snprintf(why, sizeof why, "no answer (UDP, %u tries over %" PRId64 " s)",
			 TRACKERS_UDP_TRIES, timeout_s(q->T) * ((1 << TRACKERS_UDP_TRIES) - 1));
		treq_done(q, -ETIMEDOUT, why, NULL);
		return;
	}
	/* A connection id that expired while we waited is asked for again. */
	if (q->step == UDP_ASKING && now_ms() >= q->conn_until_ms) {
		unsigned tries = q->tries;
		q->step = UDP_CONNECTING;
		udp_build(q);
		q->tries = tries;
	}
	udp_transmit(q);
}

static void udp_have_addr(struct treq *q, const struct sockaddr *sa, socklen_t len)
{
	struct trackers *T = q->T;
	memset(&q->addr, 0, sizeof q->addr);
	if (sa->sa_family == AF_INET && T->udp6) {
		/* The dual-stack socket speaks IPv4 through mapped addresses. */
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&q->addr;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = in->sin_port;
		s6->sin6_addr.s6_addr[10] = s6->sin6_addr.s6_addr[11] = 0xff;
		memcpy(&s6->sin6_addr.s6_addr[12], &in->sin_addr, 4);
		q->addr_len = sizeof *s6;
		q->family = 4;
	} else if (sa->sa_family == AF_INET6 && !T->udp6) {
		treq_done(q, -EAFNOSUPPORT, "the tracker has only an IPv6 address and this host has no IPv6",
			  NULL);
		return;
	} else {
		memcpy(&q->addr, sa, len);
		q->addr_len = len;
		q->family = sa->sa_family == AF_INET ? 4 : 6;
		if (q->family == 6 && IN6_IS_ADDR_V4MAPPED(&((struct sockaddr_in6 *)&q->addr)->sin6_addr))
			q->family = 4;
	}
	udp_step(q, now_ms() < q->conn_until_ms ? UDP_ASKING : UDP_CONNECTING);
}

static void udp_dns_cb(int result, struct evutil_addrinfo *res, void *arg)
{
	if (result == EVUTIL_EAI_CANCEL)
		return; /* the request was freed */
	struct treq *q = arg;
	q->dns = NULL;
	struct evutil_addrinfo *pick = NULL;
	for (struct evutil_addrinfo *ai = res; ai && result == 0; ai = ai->ai_next)
		if (ai->ai_family == AF_INET || (ai->ai_family == AF_INET6 && q->T->udp6))
			if (!pick || (pick->ai_family == AF_INET6 && ai->ai_family == AF_INET))
				pick = ai; /* IPv4 first: every tracker has it */
	if (!pick) {
		char why[TRACKER_MAX_HOST + 64];
		snprintf(why, sizeof why, "cannot resolve %s: %s", q->u.host,
			 result ? evutil_gai_strerror(result) : "no usable address");
		if (res)
			evutil_freeaddrinfo(res);
		treq_done(q, -EHOSTUNREACH, why, NULL);
		return;
	}
	struct sockaddr_storage ss;
	socklen_t len = (socklen_t)pick->ai_addrlen;
	memcpy(&ss, pick->ai_addr, len);
	evutil_freeaddrinfo(res);
	udp_have_addr(q, (struct sockaddr *)&ss, len);
}

static void udp_start(struct treq *q)
{
	struct sockaddr_storage ss;
	socklen_t len = addr_from_numeric(q->u.host, q->u.port, &ss);
	if (len) {
		udp_have_addr(q, (struct sockaddr *)&ss, len);
		return;
	}
	struct evutil_addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_DGRAM,
					 .ai_protocol = IPPROTO_UDP };
	char port[8];
	snprintf(port, sizeof port, "%u", (unsigned)q->u.port);
	q->step = UDP_RESOLVING;
	q->in_go = true;
	/* May answer at once (a cached or bad name): then q->dns stays NULL. */
	struct evdns_getaddrinfo_request *r =
		evdns_getaddrinfo(q->T->dns, q->u.host, port, &hints, udp_dns_cb, q);
	q->in_go = false;
	if (r && q->step == UDP_RESOLVING)
		q->dns = r;
}

static bool same_addr(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	if (a->ss_family != b->ss_family)
		return false;
	if (a->ss_family == AF_INET) {
		const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
		return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
	}
	const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;
	return x->sin6_port == y->sin6_port && memcmp(&x->sin6_addr, &y->sin6_addr, 16) == 0;
}

static void udp_packet(struct trackers *T, const uint8_t *p, size_t n,
		       const struct sockaddr_storage *from)
{
	uint32_t action, tid;
	if (tracker_udp_header(p, p + n, &action, &tid) != 0) {
		T->udp_ignored++;
		return;
	}
	struct treq *q = tid_find(T, tid);
	if (!q || !same_addr(&q->addr, from)) {
		/* Not an answer to anything we asked, or from another host:
		 * ignored, never a failure (a spoofer must not end a request). */
		T->udp_ignored++;
		return;
	}
	struct tracker_reply r;
	tracker_reply_init(&r);
	if (q->step == UDP_CONNECTING) {
		uint64_t cid;
		if (tracker_udp_parse_connect(p, p + n, &cid) == 0) {
			q->conn_id = cid;
			q->conn_until_ms = now_ms() + TRACKERS_UDP_CONN_TTL_MS;
			udp_step(q, UDP_ASKING);
			return;
		}
		if (action == TRACKER_UDP_ERROR &&
		    tracker_udp_parse_reply(p, p + n, TRACKER_UDP_ANNOUNCE, q->family, &r) == 0) {
			treq_done(q, 0, NULL, &r);
			tracker_reply_destroy(&r);
			return;
		}
		T->udp_ignored++;
		return;
	}
	int rc = tracker_udp_parse_reply(p, p + n,
					 q->kind == TREQ_SCRAPE ? TRACKER_UDP_SCRAPE : TRACKER_UDP_ANNOUNCE,
					 q->family, &r);
	if (rc == -ENOMEM) {
		treq_done(q, rc, "out of memory", NULL);
	} else if (rc) {
		T->udp_ignored++; /* malformed: keep waiting for a real one */
	} else {
		treq_done(q, 0, NULL, &r);
	}
	tracker_reply_destroy(&r);
}

static void udp_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct trackers *T = arg;
	uint8_t buf[TRACKER_UDP_MAX_PACKET];
	for (int i = 0; i < 64; i++) {
		struct sockaddr_storage from;
		socklen_t flen = sizeof from;
		ssize_t n = recvfrom(fd, buf, sizeof buf, 0, (struct sockaddr *)&from, &flen);
		if (n < 0)
			return;
		udp_packet(T, buf, (size_t)n, &from);
	}
}

/* ------------------------------------------------------------ HTTP */

static void http_go(struct treq *q, const char *full);

static void http_deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	struct treq *q = arg;
	char why[64];
	snprintf(why, sizeof why, "no answer within %" PRId64 " s (HTTP)", timeout_s(q->T));
	treq_done(q, -ETIMEDOUT, why, NULL); /* frees the connection: not inside its callbacks */
}

static void http_error_cb(enum evhttp_request_error err, void *arg)
{
	struct treq *q = arg;
	const char *what = err == EVREQ_HTTP_EOF	     ? "connection closed before an answer"
			   : err == EVREQ_HTTP_INVALID_HEADER ? "invalid HTTP answer"
			   : err == EVREQ_HTTP_DATA_TOO_LONG  ? "answer larger than 1 MiB"
							      : "cannot connect";
	q->http_timeout = err == EVREQ_HTTP_TIMEOUT;
	if (err == EVREQ_HTTP_TIMEOUT)
		snprintf(q->http_error, sizeof q->http_error, "no answer within %" PRId64 " s (HTTP)",
			 timeout_s(q->T));
	else
		snprintf(q->http_error, sizeof q->http_error, "%s", what);
#ifdef SHOAL_HAVE_EVENT_OPENSSL
	if (q->https && q->conn && err != EVREQ_HTTP_TIMEOUT) {
		struct bufferevent *bev = evhttp_connection_get_bufferevent(q->conn);
		unsigned long e = bev ? bufferevent_get_openssl_error(bev) : 0;
		long vr = q->ssl ? SSL_get_verify_result(q->ssl) : X509_V_OK;
		if (vr != X509_V_OK)
			snprintf(q->http_error, sizeof q->http_error, "TLS: %s",
				 X509_verify_cert_error_string(vr));
		else if (e) {
			char s[120];
			ERR_error_string_n(e, s, sizeof s);
			snprintf(q->http_error, sizeof q->http_error, "TLS: %s", s);
		}
	}
#endif
}

/* "scheme://authority" of `full`, for a relative redirect. */
static size_t authority_end(const char *full)
{
	const char *sep = strstr(full, "://");
	return sep ? (size_t)(sep - full) + 3 + strcspn(sep + 3, "/?") : 0;
}

static void http_done_cb(struct evhttp_request *req, void *arg)
{
	struct treq *q = arg;
	retire_conn(q);
	if (q->in_go) {
		q->failed_in_go = true; /* evhttp_make_request failed at once: http_go ends it */
		return;
	}
	int code = req ? evhttp_request_get_response_code(req) : 0;
	if (code == 0) {
		treq_done(q, q->http_timeout ? -ETIMEDOUT : -ECONNREFUSED,
			  q->http_error[0] ? q->http_error : "cannot connect", NULL);
		return;
	}
	if (code == 301 || code == 302 || code == 303 || code == 307 || code == 308) {
		const char *loc = evhttp_find_header(evhttp_request_get_input_headers(req), "Location");
		char next[FULL_URL_MAX];
		if (!loc || !*loc) {
			treq_done(q, -EPROTO, "redirect without a Location", NULL);
			return;
		}
		if (++q->redirects > TRACKERS_MAX_REDIRECTS) {
			treq_done(q, -ELOOP, "too many redirects", NULL);
			return;
		}
		if (loc[0] == '/') {
			char base[TRACKER_MAX_URL + 16];
			int n = snprintf(base, sizeof base, "%s://%s%s%s:%u",
					 q->https ? "https" : "http", q->u.host_v6 ? "[" : "",
					 q->u.host, q->u.host_v6 ? "]" : "", (unsigned)q->u.port);
			if (n < 0 || snprintf(next, sizeof next, "%s%s", base, loc) >= (int)sizeof next) {
				treq_done(q, -EMSGSIZE, "redirect URL too long", NULL);
				return;
			}
		} else if (snprintf(next, sizeof next, "%s", loc) >= (int)sizeof next) {
			treq_done(q, -EMSGSIZE, "redirect URL too long", NULL);
			return;
		}
		http_go(q, next);
		return;
	}
	if (code != 200) {
		char why[96];
		const char *reason = evhttp_request_get_response_code_line(req);
		snprintf(why, sizeof why, "HTTP %d %.60s", code, reason ? reason : "");
		treq_done(q, -EPROTO, why, NULL);
		return;
	}
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t len = evbuffer_get_length(in);
	if (len > TRACKER_MAX_BODY) {
		treq_done(q, TRACKER_E_TOO_BIG, "answer larger than 1 MiB", NULL);
		return;
	}
	const uint8_t *body = len ? evbuffer_pullup(in, -1) : (const uint8_t *)"";
	struct tracker_reply r;
	tracker_reply_init(&r);
	int rc = !body ? -ENOMEM
	       : q->kind == TREQ_SCRAPE ? tracker_http_parse_scrape(body, body + len, q->a.info_hash, &r)
					: tracker_http_parse_announce(body, body + len, &r);
	char why[128];
	snprintf(why, sizeof why, "bad answer: %s", tracker_strerror(rc));
	treq_done(q, rc, rc ? why : NULL, &r);
	tracker_reply_destroy(&r);
}

/* Make the bufferevent of a connection to `u`: plain, or TLS checking the
 * certificate against the system's CAs and the host name. */
static struct bufferevent *http_bev(struct treq *q, const struct tracker_url *u, char *err,
				    size_t err_len)
{
	struct trackers *T = q->T;
	if (u->scheme == TRACKER_HTTP)
		return bufferevent_socket_new(T->base, -1, BEV_OPT_CLOSE_ON_FREE);
#ifdef SHOAL_HAVE_EVENT_OPENSSL
	SSL *ssl = T->ssl_ctx ? SSL_new(T->ssl_ctx) : NULL;
	if (!ssl) {
		snprintf(err, err_len, "TLS: cannot start");
		return NULL;
	}
	struct sockaddr_storage ss;
	if (addr_from_numeric(u->host, 443, &ss)) {
		X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), u->host);
	} else {
		SSL_set_tlsext_host_name(ssl, u->host);
		SSL_set1_host(ssl, u->host);
	}
	struct bufferevent *bev = bufferevent_openssl_socket_new(
		T->base, -1, ssl, BUFFEREVENT_SSL_CONNECTING, BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	if (!bev) {
		SSL_free(ssl);
		snprintf(err, err_len, "TLS: cannot start");
		return NULL;
	}
	q->ssl = ssl;
	return bev;
#else
	snprintf(err, err_len, "https trackers need OpenSSL (this shoal was built --without-openssl)");
	return NULL;
#endif
}

/* Request `full` (an absolute http(s) URL: the announce URL with its query,
 * or where a redirect points). */
static void http_go(struct treq *q, const char *full)
{
	struct trackers *T = q->T;
	size_t ae = authority_end(full);
	char base[TRACKER_MAX_URL + 1], err[160];
	struct tracker_url u;
	if (ae == 0 || ae >= sizeof base) {
		treq_done(q, TRACKER_E_URL, q->redirects ? "redirect to an unusable URL" : "bad URL",
			  NULL);
		return;
	}
	memcpy(base, full, ae);
	base[ae] = '\0';
	int rc = tracker_url_parse(base, &u);
	if (rc || u.scheme == TRACKER_UDP) {
		snprintf(err, sizeof err, "%s%s", q->redirects ? "redirect to a non-http URL: " : "",
			 rc ? tracker_strerror(rc) : "udp");
		treq_done(q, TRACKER_E_SCHEME, err, NULL);
		return;
	}
	struct bufferevent *bev = http_bev(q, &u, err, sizeof err);
	if (!bev) {
		treq_done(q, -ENOTSUP, err, NULL);
		return;
	}
	q->https = u.scheme == TRACKER_HTTPS;
	q->u = u;
	q->conn = evhttp_connection_base_bufferevent_new(T->base, T->dns, bev, u.host, u.port);
	struct evhttp_request *req = q->conn ? evhttp_request_new(http_done_cb, q) : NULL;
	if (!req) {
		if (!q->conn)
			bufferevent_free(bev);
		treq_done(q, -ENOMEM, "out of memory", NULL);
		return;
	}
	/* Our deadline covers the whole request; evhttp's only idle gaps. */
	evhttp_connection_set_timeout(q->conn, (int)timeout_s(T) + 1);
	evhttp_connection_set_max_body_size(q->conn, TRACKER_MAX_BODY);
	evhttp_connection_set_max_headers_size(q->conn, HTTP_MAX_HEADERS);
	evhttp_connection_set_retries(q->conn, 0);
	evhttp_request_set_error_cb(req, http_error_cb);
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);
	char host[TRACKER_MAX_HOST + 16];
	bool default_port = u.port == (q->https ? 443 : 80);
	snprintf(host, sizeof host, "%s%s%s", u.host_v6 ? "[" : "", u.host, u.host_v6 ? "]" : "");
	if (!default_port)
		snprintf(host + strlen(host), sizeof host - strlen(host), ":%u", (unsigned)u.port);
	evhttp_add_header(h, "Host", host);
	evhttp_add_header(h, "User-Agent", "shoal/" PACKAGE_VERSION);
	evhttp_add_header(h, "Connection", "close");
	const char *path = full + ae;
	char pathbuf[FULL_URL_MAX + 1];
	snprintf(pathbuf, sizeof pathbuf, "%s%s", *path == '/' ? "" : "/", path);
	q->http_error[0] = '\0';
	q->in_go = true;
	q->failed_in_go = false;
	rc = evhttp_make_request(q->conn, req, EVHTTP_REQ_GET, pathbuf);
	q->in_go = false;
	if (rc != 0 || q->failed_in_go) {
		retire_conn(q);
		treq_done(q, -ECONNREFUSED, q->http_error[0] ? q->http_error : "cannot connect", NULL);
		return;
	}
	if (!q->deadline)
		q->deadline = evtimer_new(T->base, http_deadline_cb, q);
	struct timeval tv = { (time_t)timeout_s(T), 0 };
	if (q->deadline && q->redirects == 0)
		evtimer_add(q->deadline, &tv); /* one deadline for the whole chain */
}

static void http_start(struct treq *q)
{
	struct buf b;
	buf_init(&b, FULL_URL_MAX);
	int rc = q->kind == TREQ_SCRAPE ? tracker_http_scrape_url(q->url, q->a.info_hash, &b)
					: tracker_http_announce_url(q->url, &q->a, &b);
	if (!rc)
		rc = buf_append_byte(&b, 0);
	if (rc) {
		buf_destroy(&b);
		treq_done(q, rc, tracker_strerror(rc), NULL);
		return;
	}
	http_go(q, (const char *)b.data);
	buf_destroy(&b);
}

/* Start a request; it ends in treq_done (maybe before this returns). */
/* Start `q`, or queue it until one of the TRACKERS_MAX_INFLIGHT slots is
 * free (its deadline starts with it, so waiting costs it no time). */
static void treq_start(struct treq *q)
{
	struct trackers *T = q->T;
	if (T->inflight >= TRACKERS_MAX_INFLIGHT) {
		q->waiting = true;
		q->wait_prev = T->wait_last;
		if (T->wait_last)
			T->wait_last->wait_next = q;
		else
			T->wait = q;
		T->wait_last = q;
		return;
	}
	q->started = true;
	T->inflight++;
	if (q->u.scheme == TRACKER_UDP)
		udp_start(q);
	else
		http_start(q);
}

/* Slots came free (treq_free): start waiting requests in order.  Run from
 * the loop, never inside a request's own callback. */
static void slot_cb(evutil_socket_t fd, short what, void *arg)
{
	struct trackers *T = arg;
	(void)fd;
	(void)what;
	while (T->wait && T->inflight < TRACKERS_MAX_INFLIGHT) {
		struct treq *q = T->wait;
		wait_unlink(q);
		treq_start(q); /* may end (and free q) at once */
	}
}

/* ------------------------------------------------------------ announcing */

/* What we tell a tracker about the swarm. */
static void fill_announce(struct tracker_swarm *ts, int key, enum tracker_event ev,
			  struct tracker_announce *a)
{
	struct swarm *sw = ts->sw;
	struct node *node = ts->node;
	const uint8_t *keys[2];
	int nk = swarm_keys(sw, keys);
	memset(a, 0, sizeof *a);
	memcpy(a->info_hash, keys[key < nk ? key : 0], TRACKER_HASH_LEN);
	engine_peer_id(node->engine, a->peer_id);
	a->port = node->cfg.peer_port;
	struct engine_swarm_stats st;
	engine_swarm_stats(sw, &st);
	a->uploaded = st.uploaded;
	a->downloaded = st.downloaded;
	uint64_t have = swarm_bytes_have(sw);
	/* Without metadata the size is unknown: say "not done". */
	a->left = !sw->meta ? 16384 : sw->meta->total_size > have ? sw->meta->total_size - have : 0;
	a->event = ev;
	a->numwant = ev == TRACKER_EVENT_STOPPED ? 0 : TRACKERS_NUMWANT;
	a->key = node->trackers ? node->trackers->key : 0;
}

static void build_anns(struct tracker_swarm *ts);

/* A magnet join learns a hybrid's v1 hash with the metadata: announce it
 * too from then on.  Returns true when the announcers were rebuilt. */
static bool keys_changed(struct tracker_swarm *ts)
{
	const uint8_t *keys[2];
	if (!ts->running || swarm_keys(ts->sw, keys) == ts->nkeys)
		return false;
	build_anns(ts);
	return true;
}

static void ann_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct tier_ann *ann = arg;
	if (!keys_changed(ann->ts)) /* (which frees `ann`) */
		ann_kick(ann);
}

static void ann_schedule(struct tier_ann *ann, int64_t delay_s)
{
	struct timeval tv = { (time_t)delay_s, 0 };
	ann->next_at = wall_now() + delay_s;
	if (ann->timer)
		evtimer_add(ann->timer, &tv);
}

/* Announce to the tier's current tracker now. */
static void ann_kick(struct tier_ann *ann)
{
	struct tracker_swarm *ts = ann->ts;
	struct trackers *T = ts->node->trackers;
	if (ann->req) {
		ann->again = true;
		return;
	}
	ann->again = false;
	if (!T || !ts->running || !ann->cur)
		return;
	if (!swarm_active(ts->sw)) {
		ann_schedule(ann, 60); /* in error or checking: look again later */
		return;
	}
	evtimer_del(ann->timer);
	struct trk *t = ann->cur;
	enum tracker_event ev = !t->k[ann->key].started ? TRACKER_EVENT_STARTED
				: ann->completed	  ? TRACKER_EVENT_COMPLETED
							  : TRACKER_EVENT_NONE;
	struct treq *q = treq_new(T, TREQ_ANNOUNCE, t);
	if (!q) {
		ann_schedule(ann, 60);
		return;
	}
	q->t = t;
	q->ann = ann;
	fill_announce(ts, ann->key, ev, &q->a);
	snprintf(q->tracker_id, sizeof q->tracker_id, "%s", t->k[ann->key].tracker_id);
	q->a.tracker_id = q->tracker_id;
	ann->req = q;
	ann->next_at = 0;
	treq_start(q);
}

static void start_scrape(struct trk *t)
{
	struct tracker_swarm *ts = t->ts;
	struct trackers *T = ts->node->trackers;
	if (!T || t->scrape || !ts->running)
		return;
	if (t->u.scheme != TRACKER_UDP) {
		struct buf b;
		buf_init(&b, FULL_URL_MAX);
		int rc = tracker_http_scrape_url(t->url, ts->sw->info_hash, &b);
		buf_destroy(&b);
		if (rc) {
			t->scraped = true; /* no scrape URL (BEP 48): nothing to ask */
			return;
		}
	}
	struct treq *q = treq_new(T, TREQ_SCRAPE, t);
	if (!q)
		return;
	q->t = t;
	fill_announce(ts, 0, TRACKER_EVENT_NONE, &q->a);
	t->scrape = q;
	treq_start(q);
}

/* Send "stopped" for key `key` to `t`: an orphan request that outlives the
 * swarm (its answer only ends it). */
static void send_stopped(struct tracker_swarm *ts, struct trk *t, int key)
{
	struct trackers *T = ts->node->trackers;
	t->k[key].started = false;
	if (!T)
		return;
	struct treq *q = treq_new(T, TREQ_ANNOUNCE, t);
	if (!q)
		return;
	fill_announce(ts, key, TRACKER_EVENT_STOPPED, &q->a);
	snprintf(q->tracker_id, sizeof q->tracker_id, "%s", t->k[key].tracker_id);
	q->a.tracker_id = q->tracker_id;
	q->orphan = true;
	q->next = T->orphans;
	T->orphans = q;
	treq_start(q);
}

static void ann_free(struct tier_ann *ann)
{
	if (!ann)
		return;
	treq_free(ann->req);
	if (ann->timer)
		event_free(ann->timer);
	free(ann);
}

static void trk_free(struct trk *t)
{
	if (!t)
		return;
	treq_free(t->scrape);
	free(t);
}

static void free_anns(struct tracker_swarm *ts)
{
	for (size_t i = 0; i < ts->n_ann; i++)
		ann_free(ts->ann[i]);
	ts->n_ann = 0;
}

/* One announcer per tier and key, each starting at its tier's first
 * tracker, announcing now or when that tracker's interval ends. */
static void build_anns(struct tracker_swarm *ts)
{
	const uint8_t *keys[2];
	int nk = swarm_keys(ts->sw, keys);
	free_anns(ts);
	ts->nkeys = nk;
	int64_t now = wall_now();
	for (size_t i = 0; i < ts->n; i++) {
		if (i > 0 && ts->t[i]->tier == ts->t[i - 1]->tier)
			continue;
		for (int k = 0; k < nk; k++) {
			struct tier_ann *ann = calloc(1, sizeof *ann);
			if (!ann)
				return;
			ann->ts = ts;
			ann->tier = ts->t[i]->tier;
			ann->key = k;
			ann->cur = ts->t[i];
			ann->completed = ts->completed;
			ann->timer = evtimer_new(ts->node->base, ann_timer_cb, ann);
			if (!ann->timer) {
				free(ann);
				return;
			}
			ts->ann[ts->n_ann++] = ann;
			struct trk_key *tk = &ann->cur->k[k];
			ann_schedule(ann, tk->started && tk->next_at > now ? tk->next_at - now : 0);
		}
	}
}

/* ------------------------------------------------------------ per swarm */

static struct tracker_swarm *ts_get(struct node *node, struct swarm *sw)
{
	if (!sw->trk) {
		sw->trk = calloc(1, sizeof *sw->trk);
		if (sw->trk) {
			sw->trk->node = node;
			sw->trk->sw = sw;
		}
	}
	return sw->trk;
}

int trackers_swarm_set(struct node *node, struct swarm *sw, const struct tracker_list *l)
{
	struct tracker_swarm *ts = ts_get(node, sw);
	if (!ts)
		return -ENOMEM;
	struct trk *next[TRACKER_MAX_TRACKERS] = { 0 };
	size_t n = 0;
	for (size_t i = 0; i < l->count && n < TRACKER_MAX_TRACKERS; i++) {
		struct trk *t = NULL;
		for (size_t k = 0; k < ts->n; k++)
			if (ts->t[k] && strcmp(ts->t[k]->url, l->e[i].url) == 0) {
				t = ts->t[k];
				ts->t[k] = NULL; /* kept */
			}
		if (!t) {
			t = calloc(1, sizeof *t);
			if (!t || tracker_url_parse(l->e[i].url, &t->u) != 0) {
				free(t);
				continue;
			}
			t->ts = ts;
			snprintf(t->url, sizeof t->url, "%s", l->e[i].url);
			t->seeders = t->leechers = t->downloaded = -1;
			for (int k = 0; k < 2; k++)
				t->k[k].peers = -1;
		}
		t->tier = l->e[i].tier;
		next[n++] = t;
	}
	/* Those left were removed: their requests go; a tracker we announced
	 * to hears "stopped". */
	free_anns(ts);
	for (size_t k = 0; k < ts->n; k++) {
		struct trk *t = ts->t[k];
		if (!t)
			continue;
		for (int key = 0; key < 2; key++)
			if (t->k[key].started && ts->running)
				send_stopped(ts, t, key);
		trk_free(t);
	}
	memcpy(ts->t, next, sizeof next);
	ts->n = n;
	if (ts->running)
		build_anns(ts);
	return 0;
}

void trackers_swarm_list(const struct swarm *sw, struct tracker_list *out)
{
	memset(out, 0, sizeof *out);
	const struct tracker_swarm *ts = sw->trk;
	for (size_t i = 0; ts && i < ts->n; i++) {
		out->e[out->count].tier = ts->t[i]->tier;
		snprintf(out->e[out->count].url, sizeof out->e[0].url, "%s", ts->t[i]->url);
		out->count++;
	}
}

void trackers_swarm_start(struct node *node, struct swarm *sw)
{
	struct tracker_swarm *ts = sw->trk;
	if (!ts || ts->running || ts->n == 0 || !node->trackers || !swarm_active(sw))
		return;
	ts->running = true;
	ts->completed = false;
	for (size_t i = 0; i < ts->n; i++)
		ts->t[i]->scraped = false;
	build_anns(ts);
}

void trackers_swarm_stop(struct node *node, struct swarm *sw)
{
	struct tracker_swarm *ts = sw->trk;
	if (!ts || !ts->running)
		return;
	free_anns(ts);
	for (size_t i = 0; i < ts->n; i++) {
		struct trk *t = ts->t[i];
		treq_free(t->scrape);
		for (int key = 0; key < 2; key++)
			if (t->k[key].started)
				send_stopped(ts, t, key);
	}
	ts->running = false;
}

void trackers_swarm_completed(struct node *node, struct swarm *sw)
{
	struct tracker_swarm *ts = sw->trk;
	if (!ts || !ts->running)
		return;
	ts->completed = true;
	keys_changed(ts);
	for (size_t i = 0; i < ts->n_ann; i++) {
		struct tier_ann *ann = ts->ann[i];
		ann->completed = true;
		/* A tracker not yet told "started" hears that first; the
		 * answer then sends "completed" at once. */
		ann_kick(ann);
	}
}

int trackers_swarm_reannounce(struct node *node, struct swarm *sw)
{
	struct tracker_swarm *ts = sw->trk;
	if (!ts || ts->n == 0)
		return 0;
	if (!ts->running) {
		if (!swarm_active(sw))
			return -EAGAIN;
		trackers_swarm_start(node, sw);
		return 0;
	}
	for (size_t i = 0; i < ts->n; i++)
		ts->t[i]->scraped = false;
	for (size_t i = 0; i < ts->n_ann; i++) {
		ts->ann[i]->fails = 0;
		ts->ann[i]->tried = 0;
		ann_kick(ts->ann[i]);
	}
	return 0;
}

void trackers_swarm_free(struct swarm *sw)
{
	struct tracker_swarm *ts = sw->trk;
	if (!ts)
		return;
	free_anns(ts);
	for (size_t i = 0; i < ts->n; i++)
		trk_free(ts->t[i]);
	free(ts);
	sw->trk = NULL;
}

size_t trackers_swarm_count(const struct swarm *sw)
{
	return sw->trk ? sw->trk->n : 0;
}

void trackers_swarm_each(const struct swarm *sw, void (*fn)(void *ctx, const struct trackers_info *),
			 void *ctx)
{
	const struct tracker_swarm *ts = sw->trk;
	if (!ts)
		return;
	const uint8_t *keys[2];
	int nk = swarm_keys(sw, keys);
	for (size_t i = 0; i < ts->n; i++) {
		const struct trk *t = ts->t[i];
		struct trackers_info in = { .url = t->url, .tier = t->tier,
					    .seeders = t->seeders, .leechers = t->leechers,
					    .downloaded = t->downloaded, .last_scrape = t->last_scrape,
					    .peers = -1, .announces = t->announces,
					    .failures = t->failures };
		bool busy = false;
		for (size_t a = 0; a < ts->n_ann; a++) {
			const struct tier_ann *ann = ts->ann[a];
			if (ann->cur != t)
				continue;
			in.current = true;
			busy |= ann->req != NULL;
			if (ann->next_at && (!in.next_announce || ann->next_at < in.next_announce))
				in.next_announce = ann->next_at;
		}
		for (int k = 0; k < nk; k++) {
			if (t->k[k].last_announce > in.last_announce)
				in.last_announce = t->k[k].last_announce;
			if (t->k[k].peers >= 0)
				in.peers = (in.peers < 0 ? 0 : in.peers) + t->k[k].peers;
			in.hashes[in.n_hashes++] = keys[k];
		}
		in.last_error = t->failing ? t->error : NULL;
		in.warning = t->warning[0] ? t->warning : NULL;
		in.status = busy	       ? "announcing"
			    : t->failing       ? "error"
			    : !in.current      ? (t->contacted || t->scraped ? "backup" : "idle")
			    : t->announces > 0 ? "working"
					       : "idle";
		if (!ts->running && !t->failing)
			in.status = "idle";
		fn(ctx, &in);
	}
}

/* ------------------------------------------------------------ the runtime */

static void drain_cb(evutil_socket_t fd, short what, void *arg)
{
	struct trackers *T = arg;
	event_base_loopbreak(T->base);
}

struct trackers *trackers_new(struct node *node, char *err, size_t err_len)
{
	struct trackers *T = calloc(1, sizeof *T);
	if (!T) {
		snprintf(err, err_len, "out of memory");
		return NULL;
	}
	T->node = node;
	T->base = node->base;
	T->udp = -1;
	T->key = randombytes_random();
	T->dns = evdns_base_new(node->base, EVDNS_BASE_INITIALIZE_NAMESERVERS);
	if (!T->dns) /* no resolv.conf: names fail, numeric trackers work */
		T->dns = evdns_base_new(node->base, 0);
	T->udp = socket(AF_INET6, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (T->udp >= 0) {
		int off = 0;
		struct sockaddr_in6 any = { .sin6_family = AF_INET6 };
		if (setsockopt(T->udp, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off) != 0 ||
		    bind(T->udp, (struct sockaddr *)&any, sizeof any) != 0) {
			close(T->udp);
			T->udp = -1;
		} else {
			T->udp6 = true;
		}
	}
	if (T->udp < 0) {
		T->udp = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		struct sockaddr_in any = { .sin_family = AF_INET };
		if (T->udp >= 0 && bind(T->udp, (struct sockaddr *)&any, sizeof any) != 0) {
			close(T->udp);
			T->udp = -1;
		}
	}
	if (T->udp < 0 || !T->dns) {
		snprintf(err, err_len, "trackers: cannot open a UDP socket or the resolver: %s",
			 strerror(errno));
		trackers_free(T);
		return NULL;
	}
	T->udp_ev = event_new(node->base, T->udp, EV_READ | EV_PERSIST, udp_read_cb, T);
	T->reap_ev = event_new(node->base, -1, 0, reap_cb, T);
	T->drain_ev = evtimer_new(node->base, drain_cb, T);
	T->slot_ev = event_new(node->base, -1, 0, slot_cb, T);
	if (!T->udp_ev || !T->reap_ev || !T->drain_ev || !T->slot_ev ||
	    event_add(T->udp_ev, NULL) != 0) {
		snprintf(err, err_len, "trackers: cannot watch the UDP socket");
		trackers_free(T);
		return NULL;
	}
#ifdef SHOAL_HAVE_EVENT_OPENSSL
	T->ssl_ctx = SSL_CTX_new(TLS_client_method());
	if (T->ssl_ctx) {
		SSL_CTX_set_verify(T->ssl_ctx, SSL_VERIFY_PEER, NULL);
		SSL_CTX_set_min_proto_version(T->ssl_ctx, TLS1_2_VERSION);
		if (SSL_CTX_set_default_verify_paths(T->ssl_ctx) != 1)
			log_warn("trackers: no CA certificates found; https trackers will fail");
	} else {
		log_warn("trackers: cannot set up TLS; https trackers will fail");
	}
#endif
	return T;
}

void trackers_shutdown(struct trackers *T)
{
	if (!T)
		return;
	for (struct swarm *sw = T->node->swarms; sw; sw = sw->next)
		trackers_swarm_stop(T->node, sw);
	if (!T->orphans)
		return;
	struct timeval tv = { TRACKERS_STOP_GRACE_MS / 1000, (TRACKERS_STOP_GRACE_MS % 1000) * 1000 };
	T->draining = true;
	evtimer_add(T->drain_ev, &tv);
	event_base_loop(T->base, 0);
	T->draining = false;
	evtimer_del(T->drain_ev);
}

void trackers_free(struct trackers *T)
{
	if (!T)
		return;
	for (struct swarm *sw = T->node->swarms; sw; sw = sw->next)
		if (sw->trk) {
			free_anns(sw->trk);
			sw->trk->running = false;
			for (size_t i = 0; i < sw->trk->n; i++)
				treq_free(sw->trk->t[i]->scrape);
		}
	while (T->orphans)
		treq_free(T->orphans);
	reap_cb(-1, 0, T);
	if (T->udp_ev)
		event_free(T->udp_ev);
	if (T->reap_ev)
		event_free(T->reap_ev);
	if (T->drain_ev)
		event_free(T->drain_ev);
	if (T->slot_ev)
		event_free(T->slot_ev);
	T->slot_ev = NULL;
	if (T->udp >= 0)
		close(T->udp);
	if (T->dns)
		evdns_base_free(T->dns, 1);
#ifdef SHOAL_HAVE_EVENT_OPENSSL
	if (T->ssl_ctx)
		SSL_CTX_free(T->ssl_ctx);
#endif
	free(T);
}
