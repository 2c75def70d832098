/* lsd.h: local peer discovery (BEP 14) in the daemon: multicast sockets on
 * every LAN interface, announcing the running swarms and handing the peers
 * heard to the engine.  Codec: transfer/lsd.h. */
#ifndef SHOAL_NODE_LSD_H
#define SHOAL_NODE_LSD_H

#include <stddef.h>

#include <jansson.h>

struct node;
struct node_lsd;

/* Open the IPv4 and IPv6 sockets on port 6771, join the groups on every
 * up, multicast-capable, non-loopback interface, and start the timer on
 * node->base.  Call after the engine exists (found peers go to it).  LSD
 * is an extra: when neither family can be opened this still returns an
 * object (status says why: "note"), never fails the daemon; NULL only
 * when out of memory, with a message in `err`. */
struct node_lsd *node_lsd_new(struct node *node, char *err, size_t err_len);

/* Leave the groups, close the sockets, free.  Before the engine goes.
 * NULL is a no-op. */
void node_lsd_free(struct node_lsd *l);

/* The `lsd` section of GET /api/v1/status: enabled, interfaces,
 * announces_sent, received, peers_found, malformed, and more (docs/api.md).
 * New reference.  NULL `l` (LSD off) gives {"enabled": false, ...}. */
json_t *node_lsd_status_json(const struct node_lsd *l);

#endif
