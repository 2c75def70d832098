/* api-internal.h: the route table shared by api.c and the handler files. */
#ifndef SHOAL_NODE_API_INTERNAL_H
#define SHOAL_NODE_API_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include "node/api.h"

enum api_method { API_GET = 1, API_POST = 2, API_DELETE = 4 };

struct api_route {
	enum api_method method;
	const char *pattern; /* "/api/v1/swarms/{id}/peers": {id} matches one segment */
	void (*handler)(struct api_req *r);
};

/* Node-wide endpoints (api_routes.c) and swarm endpoints (api_swarms.c);
 * api.c searches both. */
extern const struct api_route api_routes[];
extern const size_t api_routes_count;
extern const struct api_route api_swarm_routes[];
extern const size_t api_swarm_routes_count;
extern const struct api_route api_tracker_routes[];
extern const size_t api_tracker_routes_count;

/* POST /api/v1/limits: the daemon-wide limits (api_swarms.c). */
void api_set_global_limits(struct api_req *r);

struct swarm;
struct tracker_list;
/* The swarm named by r->param, or NULL after a 404 (api_swarms.c). */
struct swarm *api_swarm_or_404(struct api_req *r);
/* Read "trackers" of a share or join body (api_trackers.c): a list whose
 * items are a URL (a tier of its own) or a list of URLs (one tier).
 * Returns false after replying 400. */
bool api_read_trackers(struct api_req *r, struct tracker_list *out);

/* The JSON bodies (node/api_json.c; docs/api.md). */
struct swarm;
struct node;
/* GET /swarms and /swarms/{id}; `full` adds files. */
json_t *swarm_to_json(struct node *node, const struct swarm *sw, bool full);
json_t *swarm_peers_json(const struct swarm *sw);   /* one entry per connection */
json_t *node_transfer_json(struct node *node);      /* "transfer" of /status */

#endif
