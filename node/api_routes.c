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
#include "node/node.h"
#include "node/swarm.h"

static int count_swarms(struct node *node, enum swarm_state state, bool any)
{
	int n = 0;
	for (struct swarm *sw = node->swarms; sw; sw = sw->next)
		n += !sw->remove_pending && (any || sw->state == state);
	return n;
}

static void handle_status(struct api_req *r)
{
	struct node *node = r->node;
	char id[2 * NODE_ID_LEN + 1], started[32];
	hex_encode(node->node_id, NODE_ID_LEN, id);
	struct tm tm;
	gmtime_r(&node->started_at, &tm);
	strftime(started, sizeof started, "%Y-%m-%dT%H:%M:%SZ", &tm);
	json_t *status = json_pack(
		"{s:{s:s,s:s,s:I,s:s,s:I,s:s,s:i,s:s},"
		" s:{s:i,s:i,s:i,s:i,s:i},"
		" s:{s:i},"
		" s:{s:b,s:s},"
		" s:{s:b,s:i,s:s,s:I,s:I,s:s}}",
		"node", "id", id, "version", NODE_VERSION_STRING, "uptime_s",
		(json_int_t)((now_ms() - node->started_ms) / 1000), "started_at", started, "pid",
		(json_int_t)getpid(), "data_dir", node->cfg.data_dir, "peer_port",
		(int)node->cfg.peer_port, "api", api_address(node->api),
		"swarms", "total", count_swarms(node, 0, true), "seeding",
		count_swarms(node, SWARM_SEEDING, false), "downloading",
		count_swarms(node, SWARM_DOWNLOADING, false), "hashing",
		count_swarms(node, SWARM_HASHING, false) + count_swarms(node, SWARM_CHECKING, false),
		"error", count_swarms(node, SWARM_ERROR, false),
		"peers", "connected", 0,
		"dht", "running", 0, "note", "the DHT is not implemented yet",
		"transfer", "running", 0, "peer_port", (int)node->cfg.peer_port, "encryption",
		config_encryption_name(node->cfg.encryption), "upload_limit",
		(json_int_t)node->cfg.upload_limit, "download_limit",
		(json_int_t)node->cfg.download_limit, "note",
		"the transfer engine is not implemented yet; limits are recorded only");
	json_object_set_new(json_object_get(status, "node"), "sha256",
			    json_string(sha256_backend()));
	api_reply(r, 200, status);
}

const struct api_route api_routes[] = {
	{ API_GET, "/api/v1/status", handle_status },
};
const size_t api_routes_count = sizeof api_routes / sizeof api_routes[0];
