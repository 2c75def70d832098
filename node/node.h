/* node.h: the running daemon: one event loop owning the database and the API. */
#ifndef SHOAL_NODE_NODE_H
#define SHOAL_NODE_NODE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include "common/hmap.h"
#include "node/metrics.h"
#include "node/settings.h"

struct event_base;
struct event;
struct store;
struct api;
struct swarm;
struct workers;
struct engine;
struct dht_node;
struct node_lsd;
struct trackers;
struct swarm_events;
struct portmap;
struct reach;

#define NODE_ID_LEN 20
#define NODE_SWARM_STATES 8 /* >= the number of enum swarm_state values */

/* The swarms' indexes, kept by node/swarm.c alone (swarm_new, swarm_free,
 * swarm_set_key, swarm_set_v1, swarm_set_state, swarm_mark_removed), so a
 * lookup by id, info-hash or directory and the counts by state cost O(1)
 * however many swarms there are. */
struct swarm_index {
	struct hmap by_id;   /* sw->id */
	struct hmap by_key;  /* sw->info_hash[0..20): what the wire and the DHT carry */
	struct hmap by_v1;   /* sw->info_hash_v1 */
	struct hmap by_root; /* sw->root */
	struct swarm *tail;  /* last of node->swarms, for appending */
	uint64_t gen;        /* moves with every change of a swarm's key, state or
			      * transfer (swarm_note_changed): followers such as the
			      * DHT walk the list only when it moved */
	uint32_t count;      /* swarms not removed */
	uint32_t by_state[NODE_SWARM_STATES]; /* of those, per enum swarm_state */
};
#define NODE_VERSION_STRING PACKAGE_VERSION

/* Files kept in the data directory. */
#define NODE_LOCK_FILE "daemon.lock"
#define NODE_TOKEN_FILE "api.token"
#define NODE_METRICS_TOKEN_FILE "metrics.token" /* GET /metrics only (docs/metrics.md) */
#define NODE_API_ADDR_FILE "api.addr"

/* The engine's daemon-wide budget figures (node/engine_io.c, "serving and
 * writing budgets"): sums over every swarm, kept as the swarms' figures
 * change so that checking a budget is O(1).  Here and not in the engine
 * because disk completions may run after engine_free.  Loop thread only. */
struct node_queues {
	size_t serve;      /* sum of xf->serve_reading + xf->serve_out */
	size_t write;      /* sum of diskio_write_queued() */
	unsigned unchoked; /* sum of xf->n_unchoked */
};

struct node {
	struct node_config cfg;
	struct event_base *base;
	struct store *store;
	struct api *api;
	struct event *sig_int, *sig_term;
	int lock_fd;
	uint8_t node_id[NODE_ID_LEN]; /* persistent; the DHT id */
	uint64_t started_ms;          /* monotonic */
	time_t started_at;            /* wall clock */
	struct workers *workers;      /* hashing and disk I/O */
	struct engine *engine;        /* peer connections and transfers */
	struct dht_node *dht;         /* Mainline DHT on UDP peer_port (dht_node.c); NULL with no-dht */
	struct trackers *trackers;    /* HTTP(S) and UDP trackers (trackers.c) */
	struct portmap *portmap;      /* the router's port mapping (portmap.c); NULL with no-port-mapping */
	struct reach *reach;          /* external address votes (portmap.c); made on the first vote */
	struct node_lsd *lsd;         /* BEP 14 on the LAN (lsd.c); NULL with no-lsd */
	struct swarm *swarms;         /* every swarm, in id order */
	struct swarm_index swarm_ix;  /* node/swarm.c's indexes of `swarms` */
	struct node_queues queues;    /* the engine's budget sums */
	int64_t next_swarm_id;        /* ids are never reused while running */
	const struct swarm_events *events; /* set by the mediator (node/swarms.c) */
	bool stopping;                /* shutting down: jobs that end create nothing */
	struct node_metrics metrics;  /* GET /metrics (node/metrics.h has its threading contract) */
};

/* `shoal daemon [flags]`: parse flags, run until SIGINT/SIGTERM.  Returns
 * the process exit code: 0 after a clean stop, 1 on a runtime failure, 2 on
 * a usage error. */
int node_daemon_main(int argc, char **argv);

/* The daemon's --help text. */
void node_daemon_usage(FILE *out);

#endif
