/* api_routes.c: the table of endpoints and the node-wide handlers (status). */
#include "config.h"

#include <stdint.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <sqlite3.h>

#include "common/sha256.h"
#include "common/util.h"
#include "node/api-internal.h"
#include "node/node.h"
#include "node/store.h"

static int count_swarms(struct node *node)
{
	sqlite3_stmt *stmt = NULL;
	int n = 0;
	if (sqlite3_prepare_v2(node->store->db, "SELECT count(*) FROM swarms;", -1, &stmt, NULL) ==
		    SQLITE_OK &&
	    sqlite3_step(stmt) == SQLITE_ROW)
		n = sqlite3_column_int(stmt, 0);
	sqlite3_finalize(stmt);
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
		" s:{s:i},"
		" s:{s:i},"
		" s:{s:b,s:s},"
		" s:{s:b,s:i,s:s,s:I,s:I,s:s}}",
		"node", "id", id, "version", NODE_VERSION_STRING, "uptime_s",
		(json_int_t)((now_ms() - node->started_ms) / 1000), "started_at", started, "pid",
		(json_int_t)getpid(), "data_dir", node->cfg.data_dir, "peer_port",
		(int)node->cfg.peer_port, "api", api_address(node->api),
		"swarms", "total", count_swarms(node),
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

static void handle_swarms_list(struct api_req *r)
{
	sqlite3_stmt *stmt = NULL;
	json_t *list = json_array();
	if (sqlite3_prepare_v2(r->node->store->db,
			       "SELECT id, info_hash, name, role, state, total_size FROM swarms"
			       " ORDER BY id;",
			       -1, &stmt, NULL) != SQLITE_OK) {
		json_decref(list);
		api_reply_error(r, 500, "database", "%s", sqlite3_errmsg(r->node->store->db));
		return;
	}
	while (sqlite3_step(stmt) == SQLITE_ROW) {
		char hash[2 * SHA256_LEN + 1] = "";
		if (sqlite3_column_bytes(stmt, 1) == SHA256_LEN)
			hex_encode(sqlite3_column_blob(stmt, 1), SHA256_LEN, hash);
		json_array_append_new(
			list, json_pack("{s:I,s:s,s:s,s:s,s:s,s:I}", "id",
					(json_int_t)sqlite3_column_int64(stmt, 0), "info_hash", hash,
					"name", (const char *)sqlite3_column_text(stmt, 2), "role",
					(const char *)sqlite3_column_text(stmt, 3), "state",
					(const char *)sqlite3_column_text(stmt, 4), "total_size",
					(json_int_t)sqlite3_column_int64(stmt, 5)));
	}
	sqlite3_finalize(stmt);
	api_reply(r, 200, json_pack("{s:o}", "swarms", list));
}

const struct api_route api_routes[] = {
	{ API_GET, "/api/v1/status", handle_status },
	{ API_GET, "/api/v1/swarms", handle_swarms_list },
};
const size_t api_routes_count = sizeof api_routes / sizeof api_routes[0];
