/* trackers.h: the daemon's tracker client: HTTP(S) and UDP announces and
 * scrapes for every running swarm, on the event loop.
 *
 * The protocols are transfer/tracker.h's; this file owns the sockets (one
 * UDP socket for every UDP tracker, one evhttp connection per HTTP
 * request), name resolution (evdns: never blocking the loop), one timer
 * per tier of each swarm (no polling: a thousand swarms cost nothing
 * between announces), retries and the tier order.  docs/trackers.md
 * explains the choices.
 *
 * Who calls what: the mediator (node/swarms.c) is the only caller of the
 * per-swarm functions below (start, stop, completed, the list); peers a
 * tracker returns go up through node->events (swarm_report_peer), never by
 * a call into the mediator.  A swarm's tracker state lives in sw->trk and
 * is freed with the swarm (trackers_swarm_free).  Everything runs on the
 * loop thread. */
#ifndef SHOAL_NODE_TRACKERS_H
#define SHOAL_NODE_TRACKERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "transfer/tracker.h"

struct node;
struct swarm;
struct trackers;

/* Ceilings and timings (docs/trackers.md, "Intervals and limits"). */
#define TRACKERS_NUMWANT 50u
#define TRACKERS_DEFAULT_INTERVAL_S 1800   /* when an answer has no interval */
#define TRACKERS_MAX_INTERVAL_S (4 * 3600) /* a longer interval is cut to this */
#define TRACKERS_MAX_RETRY_S 3600          /* back-off ceiling for a failing tier */
#define TRACKERS_UDP_TRIES 3u              /* sends per UDP step: after 15, 30, 60 s */
#define TRACKERS_UDP_CONN_TTL_MS 60000u    /* a connection id is good for 60 s (BEP 15) */
#define TRACKERS_MAX_REDIRECTS 3u
#define TRACKERS_MAX_ADD 500u              /* peers taken from one answer */
#define TRACKERS_STOP_GRACE_MS 2000u       /* shutdown waits this long for "stopped" */
#define TRACKERS_MAX_INFLIGHT 64u          /* requests in flight at once; more wait
					    * their turn in order (a restart with
					    * thousands of swarms must not open
					    * thousands of connections at once) */

/* Open the UDP socket (IPv6 dual-stack when the host has IPv6, else IPv4),
 * the resolver and, with OpenSSL, the TLS context.  Returns NULL with a
 * message in `err`. */
struct trackers *trackers_new(struct node *node, char *err, size_t err_len);

/* At shutdown, while the loop and the engine still exist: send "stopped"
 * to every tracker a swarm has announced to, and run the loop until they
 * answered or TRACKERS_STOP_GRACE_MS passed (a signal ends it sooner).
 * NULL is a no-op. */
void trackers_shutdown(struct trackers *T);

/* Cancel everything in flight and free.  NULL is a no-op. */
void trackers_free(struct trackers *T);

/* ---- per swarm: the mediator's calls ---- */

/* Replace the swarm's list (in memory only: the mediator records it with
 * trackers_db_save).  Safe while running: removed trackers that were
 * announced to are sent "stopped", new ones are announced to.  Returns 0 or
 * -ENOMEM. */
int trackers_swarm_set(struct node *node, struct swarm *sw, const struct tracker_list *l)
	__attribute__((warn_unused_result));
/* The swarm's list as it is now, tier by tier, each tier in the order it
 * is tried (a tracker that answered is moved to the front of its tier). */
void trackers_swarm_list(const struct swarm *sw, struct tracker_list *out);

/* Announce "started" to every tier (no-op when running, without
 * trackers, or when the swarm is not transferring). */
void trackers_swarm_start(struct node *node, struct swarm *sw);
/* Send "stopped" to the trackers announced to and stop (pause, remove). */
void trackers_swarm_stop(struct node *node, struct swarm *sw);
/* The download completed: announce "completed" now. */
void trackers_swarm_completed(struct node *node, struct swarm *sw);
/* Announce to every tier now (and scrape the others).  Returns 0, or
 * -EAGAIN when the swarm is not running (paused, checking, in error). */
int trackers_swarm_reannounce(struct node *node, struct swarm *sw)
	__attribute__((warn_unused_result));
/* Free sw->trk without any network traffic (requests in flight are
 * dropped).  The swarm is being freed. */
void trackers_swarm_free(struct swarm *sw);

/* One tracker as the API shows it.  Times are unix seconds (0: never);
 * counts -1 when unknown.  Strings live until the next loop turn. */
struct trackers_info {
	const char *url;
	unsigned tier;
	const char *status;      /* "idle", "announcing", "working", "error", "backup" */
	bool current;            /* the one of its tier announced to */
	int64_t last_announce, next_announce, last_scrape;
	int64_t peers;           /* addresses in its last answer */
	int64_t seeders, leechers, downloaded;
	const char *last_error;  /* NULL when the last contact worked */
	const char *warning;     /* its last "warning message", or NULL */
	unsigned announces, failures;
	size_t n_hashes;         /* 1, or 2 for a hybrid (v1 and truncated v2) */
	const uint8_t *hashes[2];
};
void trackers_swarm_each(const struct swarm *sw, void (*fn)(void *ctx, const struct trackers_info *),
			 void *ctx);
size_t trackers_swarm_count(const struct swarm *sw);

/* ---- the trackers table (node/trackers_db.c) ---- */

/* Record the swarm's list (all rows replaced, in one transaction).  A swarm
 * not in the database yet writes nothing.  0 or -EIO. */
int trackers_db_save(struct node *node, const struct swarm *sw, const struct tracker_list *l)
	__attribute__((warn_unused_result));
/* Read the swarm's list.  0 or -EIO (then `out` is empty). */
int trackers_db_load(struct node *node, const struct swarm *sw, struct tracker_list *out)
	__attribute__((warn_unused_result));

#endif
