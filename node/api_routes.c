/* api_routes.c: the table of endpoints and the node-wide handlers (status). */
#include "config.h"

#include <stdint.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "common/sha256.h"
#include "common/util.h"
#include "node/api-internal.h"
#include "node/dht_node.h"
#include "node/node.h"
#include "node/swarm.h"
#include "node/swarms.h"

/* O(1): node/swarm.c keeps the counts as states change. */
static int count_swarms(struct node *node, enum swarm_state state, bool any)
{
	uint32_t counts[SWARM_STATE_COUNT];
	uint32_t total = swarm_count_states(node, counts);
	return (int)(any ? total : counts[state]);
}

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

static json_t *status_swarms(struct node *node)
{
	return json_pack("{s:i,s:i,s:i,s:i,s:i}", "total", count_swarms(node, 0, true), "seeding",
			 count_swarms(node, SWARM_SEEDING, false), "downloading",
			 count_swarms(node, SWARM_DOWNLOADING, false) +
				 count_swarms(node, SWARM_METADATA, false),
			 "hashing",
			 count_swarms(node, SWARM_HASHING, false) +
				 count_swarms(node, SWARM_CHECKING, false),
			 "error", count_swarms(node, SWARM_ERROR, false));
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
	json_object_set_new(status, "swarms", status_swarms(node));
	json_object_set_new(status, "peers",
			    json_pack("{s:i}", "connected", (int)swarms_peer_count(node)));
	json_object_set_new(status, "dht", status_dht(node));
	json_object_set_new(status, "transfer", node_transfer_json(node));
	api_reply(r, 200, status);
}

const struct api_route api_routes[] = {
	{ API_GET, "/api/v1/status", handle_status },
	{ API_POST, "/api/v1/limits", api_set_global_limits },
	{ API_GET, "/api/v1/dht", handle_dht },
};
const size_t api_routes_count = sizeof api_routes / sizeof api_routes[0];
