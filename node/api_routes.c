/* api_routes.c: the table of endpoints and the node-wide handlers (status). */
#include "config.h"

#include <stdint.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "common/sha256.h"
#include "common/util.h"
#include "node/api_server.h"
#include "node/dht_node.h"
#include "node/lsd.h"
#include "node/node.h"
#include "node/portmap.h"
#include "node/swarm.h"
#include "node/swarms.h"

static json_t *status_node(struct node *node)
{
	char id[2 * NODE_ID_LEN + 1], started[32];
	hex_encode(node->node_id, NODE_ID_LEN, id);
	struct tm tm;
	gmtime_r(&node->started_at, &tm);
	strftime(started, sizeof started, "%Y-%m-%dT%H:%M:%SZ", &tm);
	return json_pack("{s:s,s:s,s:I,s:s,s:I,s:s,s:i,s:s,s:s}", "id", id, "version",
			 NODE_VERSION_STRING, "uptime_s",
			 (json_int_t)((now_ms() - node->started_ms) / 1000), "started_at", started,
			 "pid", (json_int_t)getpid(), "data_dir", node->cfg.data_dir, "peer_port",
			 (int)node->cfg.peer_port, "api", api_address(node->api), "sha256",
			 sha256_backend());
}

static json_t *status_dht(struct node *node)
{
	return dht_node_status_json(node->dht);
}

static void handle_dht(struct api_req *r)
{
	api_reply(r, 200, dht_node_json(r->node->dht));
}

static void handle_status(struct api_req *r)
{
	struct node *node = r->node;
	json_t *status = json_object();
	json_object_set_new(status, "node", status_node(node));
	json_object_set_new(status, "swarms", api_status_swarms_json(node));
	json_object_set_new(status, "peers",
			    json_pack("{s:i}", "connected", (int)swarms_peer_count(node)));
	json_object_set_new(status, "dht", status_dht(node));
	json_object_set_new(status, "reachability", portmap_status_json(node, node->portmap));
	json_object_set_new(status, "lsd", node_lsd_status_json(node->lsd));
	json_object_set_new(status, "transfer", node_transfer_json(node));
	json_object_set_new(status, "events", api_events_status_json(api_events_of(r->api)));
	api_reply(r, 200, status);
}

const struct api_route api_routes[] = {
	{ API_GET, "/api/v1/status", handle_status },
	{ API_POST, "/api/v1/limits", api_set_global_limits },
	{ API_GET, "/api/v1/dht", handle_dht },
};
const size_t api_routes_count = sizeof api_routes / sizeof api_routes[0];
