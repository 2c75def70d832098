/* node.h: the running daemon: one event loop owning the database and the API. */
#ifndef SHOAL_NODE_NODE_H
#define SHOAL_NODE_NODE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include "node/settings.h"

struct event_base;
struct event;
struct store;
struct api;
struct swarm;
struct workers;
struct engine;
struct dht_node;
struct trackers;
struct swarm_events;

#define NODE_ID_LEN 20
#define NODE_VERSION_STRING PACKAGE_VERSION

/* Files kept in the data directory. */
#define NODE_LOCK_FILE "daemon.lock"
#define NODE_TOKEN_FILE "api.token"
#define NODE_API_ADDR_FILE "api.addr"

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
	struct swarm *swarms;         /* every swarm, in id order */
	int64_t next_swarm_id;        /* ids are never reused while running */
	const struct swarm_events *events; /* set by the mediator (node/swarms.c) */
	bool stopping;                /* shutting down: jobs that end create nothing */
};

/* `shoal daemon [flags]`: parse flags, run until SIGINT/SIGTERM.  Returns
 * the process exit code: 0 after a clean stop, 1 on a runtime failure, 2 on
 * a usage error. */
int node_daemon_main(int argc, char **argv);

/* The daemon's --help text. */
void node_daemon_usage(FILE *out);

#endif
