/* dht_node.h: the daemon's side of the Mainline DHT: UDP sockets on the peer
 * port, the dht_periodic timer, bootstrap, the routing table in SQLite, and
 * announcing / looking up every running swarm. */
#ifndef SHOAL_NODE_DHT_NODE_H
#define SHOAL_NODE_DHT_NODE_H

#include <stddef.h>

#include <jansson.h>

#include "dht/dht.h"

struct node;
struct swarm;
struct dht_node;

/* Open UDP on node->cfg.peer_port (IPv4, and IPv6 when the host has a
 * global IPv6 address or the bootstrap list names one), restore the routing
 * table saved in the database, start bootstrapping from node->cfg.bootstrap
 * and the periodic work on node->base.  Call after the engine exists: found
 * peers go to node->engine.  Returns NULL with a message in `err` (the
 * IPv4 port is taken, out of memory, a bootstrap entry is not HOST:PORT). */
struct dht_node *dht_node_new(struct node *node, char *err, size_t err_len);

/* Save the routing table, close the sockets and free everything.  Call
 * before the engine and the store go.  NULL is a no-op. */
void dht_node_free(struct dht_node *dn);

/* Look the swarm up now instead of at the next poll (the poll runs every
 * second, so calling this is optional).  NULL `dn` is a no-op. */
void dht_node_swarm_added(struct dht_node *dn, struct swarm *sw);

/* The `dht` section of GET /api/v1/status: running, nodes, good_nodes,
 * port, ipv6.  New reference; never NULL unless out of memory.  NULL `dn`
 * gives {"running": false, ...}. */
json_t *dht_node_status_json(struct dht_node *dn);

/* GET /api/v1/dht: id, counts, buckets, lookups, store, drops, bootstrap
 * list, per-family figures and per-swarm lookup state.  New reference. */
json_t *dht_node_json(struct dht_node *dn);

/* The figures of GET /metrics, summed over both families: routing-table
 * nodes per family ([0] IPv4, [1] IPv6; good and questionable) and the
 * queries by method and outcome (dht/dht.h, struct dht_stats).  All zero
 * for a NULL `dn` (no DHT). */
struct dht_node_counts {
	size_t nodes[2];
	uint64_t sent[DHT_METHODS][DHT_RESULTS];
	uint64_t received[DHT_METHODS][2];
};
void dht_node_counts(struct dht_node *dn, struct dht_node_counts *out);

#endif
