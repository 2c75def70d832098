/* portmap.h: asking the home router to forward the peer port (NAT-PMP, UPnP IGD), and
 * learning our external address from the router and from peers' votes. */
#ifndef SHOAL_NODE_PORTMAP_H
#define SHOAL_NODE_PORTMAP_H

#include <stdint.h>

#include <jansson.h>

struct node;
struct sockaddr;
struct portmap;

/* Who told us our address. */
enum reach_source {
	REACH_ROUTER, /* the router's UPnP GetExternalIPAddress / NAT-PMP public address */
	REACH_PEER,   /* a peer's BEP 10 handshake `yourip` */
	REACH_DHT,    /* a DHT response's `ip` key (BEP 42) */
};

/* Start mapping node->cfg.peer_port (TCP and UDP) on a thread of its own.
 * Never fails for want of a router (that is a status); NULL only when the
 * thread or its wake-up cannot be made, with `err` filled. */
struct portmap *portmap_new(struct node *node, char *err, size_t errlen);

/* Remove the mappings and stop the thread, waiting at most ~2 s in all: a
 * router that does not answer is left behind (its leases expire). NULL ok. */
void portmap_free(struct portmap *pm);

/* Tell the thread to remove its mappings now, without waiting (so the
 * removal runs beside the trackers' "stopped" announces); portmap_free
 * then waits what is left of its bound.  NULL is fine. */
void portmap_stop(struct portmap *pm);

/* The `reachability` object of GET /api/v1/status.  pm may be NULL (port
 * mapping off); node gives the peer votes. */
json_t *portmap_status_json(struct node *node, const struct portmap *pm);

/* One report of how someone sees us: `addr` is 4 (AF_INET) or 16 (AF_INET6)
 * bytes; `voter` is who said it (NULL for the router).  Loop thread only.
 * A peer's word counts once per distinct voter address; the router's wins. */
void reach_vote(struct node *node, int family, const uint8_t *addr,
		const struct sockaddr *voter, enum reach_source source);

/* The vote table (made on the first vote). */
void reach_free(struct node *node);

#endif
