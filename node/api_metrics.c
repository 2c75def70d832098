/* api_metrics.c: GET /metrics, the node's figures in the Prometheus text
 * format (docs/metrics.md), and the read-only token a scraper holds.
 *
 * A scrape costs O(1) in the number of swarms: the counts by state are
 * node/swarm.c's index counts, the peers by transport and direction are
 * kept as connections join and leave a swarm (engine_peers.c, peer_conn.c),
 * and the DHT's figures are its routing table's (bounded by its buckets). */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <sodium.h>

#include "common/buf.h"
#include "common/log.h"
#include "common/sha256.h"
#include "node/api_server.h"
#include "node/dht_node.h"
#include "node/engine.h"
#include "node/metrics.h"
#include "node/node.h"
#include "node/swarm.h"

void api_set_metrics_token(struct api *api, const uint8_t token[API_TOKEN_LEN])
{
	memcpy(api->metrics_token, token, API_TOKEN_LEN);
	api->has_metrics_token = true;
}

static const char *const dir_name[METRICS_DIRS] = { "download", "upload" };
static const char *const dht_method_name[DHT_METHODS] = { "ping", "find_node", "get_peers",
							   "announce_peer" };
static const char *const tracker_proto_name[METRICS_TRACKER_PROTOS] = { "http", "https", "udp" };
static const char *const result_name[] = { "ok", "error", "timeout" };

#define L1(a, x) (&(struct metrics_labels){ 1, { a }, { x } })
#define L2(a, x, b, y) (&(struct metrics_labels){ 2, { a, b }, { x, y } })

static void write_transfer(struct metrics_writer *w, struct node *node)
{
	struct node_metrics *m = &node->metrics;
	metrics_family(w, "shoal_swarms", "gauge", "Swarms by state.");
	for (int s = 0; s < SWARM_STATE_COUNT; s++)
		metrics_sample(w, "shoal_swarms", L1("state", swarm_state_name(s)),
			       node->swarm_ix.by_state[s]);

	metrics_family(w, "shoal_peers_connected", "gauge",
		       "Peer connections attached to a swarm, by transport and direction.");
	for (int e = 0; e < 2; e++)
		for (int o = 0; o < 2; o++)
			metrics_sample(w, "shoal_peers_connected",
				       L2("transport", e ? "encrypted" : "plain", "direction",
					  o ? "outbound" : "inbound"),
				       m->peers[e][o]);

	metrics_family(w, "shoal_payload_bytes_total", "counter",
		       "Piece data received (requested blocks) and sent to peers.");
	for (int d = 0; d < METRICS_DIRS; d++)
		metrics_sample(w, "shoal_payload_bytes_total", L1("direction", dir_name[d]),
			       m->payload_bytes[d]);

	/* Everything else on the peer sockets: handshakes, message headers,
	 * have/bitfield/request messages, hashes, extension messages, the
	 * encrypted transport's framing and tags, and unrequested blocks.  It
	 * is the sockets' total less the payload; payload sent is counted when
	 * queued and the socket's bytes when written, so the difference may dip
	 * for a moment: the counter holds its last value until it is past it. */
	uint64_t wire[METRICS_DIRS];
	engine_wire_bytes(node->engine, wire);
	metrics_family(w, "shoal_protocol_bytes_total", "counter",
		       "Bytes on peer connections that are not payload (wire overhead).");
	for (int d = 0; d < METRICS_DIRS; d++) {
		uint64_t p = wire[d] > m->payload_bytes[d] ? wire[d] - m->payload_bytes[d] : 0;
		if (p > m->protocol_shown[d])
			m->protocol_shown[d] = p;
		metrics_sample(w, "shoal_protocol_bytes_total", L1("direction", dir_name[d]),
			       m->protocol_shown[d]);
	}

	metrics_family(w, "shoal_hash_failures_total", "counter",
		       "Pieces whose data failed the hash check (v1 SHA-1 or v2 merkle).");
	metrics_sample(w, "shoal_hash_failures_total", NULL, m->hash_failures);
	metrics_family(w, "shoal_peer_bans_total", "counter", "Peers banned for sending bad data.");
	metrics_sample(w, "shoal_peer_bans_total", NULL, m->bans);
}

static void write_dht(struct metrics_writer *w, struct node *node)
{
	struct dht_node_counts c;
	dht_node_counts(node->dht, &c);
	metrics_family(w, "shoal_dht_nodes", "gauge",
		       "Nodes in the DHT routing tables (good and questionable), by family.");
	metrics_sample(w, "shoal_dht_nodes", L1("family", "ipv4"), c.nodes[0]);
	metrics_sample(w, "shoal_dht_nodes", L1("family", "ipv6"), c.nodes[1]);
	metrics_family(w, "shoal_dht_queries_sent_total", "counter",
		       "DHT queries this node sent, by method and outcome.");
	for (int q = 0; q < DHT_METHODS; q++)
		for (int r = 0; r < DHT_RESULTS; r++)
			metrics_sample(w, "shoal_dht_queries_sent_total",
				       L2("type", dht_method_name[q], "result", result_name[r]),
				       c.sent[q][r]);
	metrics_family(w, "shoal_dht_queries_received_total", "counter",
		       "DHT queries this node answered (ok) or refused with an error.");
	for (int q = 0; q < DHT_METHODS; q++)
		for (int r = 0; r < 2; r++)
			metrics_sample(w, "shoal_dht_queries_received_total",
				       L2("type", dht_method_name[q], "result", result_name[r]),
				       c.received[q][r]);
}

static void write_service(struct metrics_writer *w, struct node *node)
{
	struct node_metrics *m = &node->metrics;
	metrics_family(w, "shoal_tracker_announces_total", "counter",
		       "Tracker announces that ended, by protocol and outcome.");
	for (int p = 0; p < METRICS_TRACKER_PROTOS; p++)
		for (int r = 0; r < METRICS_TRACKER_RESULTS; r++)
			metrics_sample(w, "shoal_tracker_announces_total",
				       L2("protocol", tracker_proto_name[p], "result", result_name[r]),
				       m->tracker_announces[p][r]);

	metrics_family(w, "shoal_disk_read_bytes_total", "counter",
		       "Bytes the disk layer read (pieces served and verified).");
	metrics_sample(w, "shoal_disk_read_bytes_total", NULL,
		       atomic_load_explicit(&m->disk_read_bytes, memory_order_relaxed));
	metrics_family(w, "shoal_disk_written_bytes_total", "counter",
		       "Bytes the disk layer wrote (blocks downloaded).");
	metrics_sample(w, "shoal_disk_written_bytes_total", NULL,
		       atomic_load_explicit(&m->disk_written_bytes, memory_order_relaxed));
	metrics_family(w, "shoal_fdatasync_duration_seconds", "histogram",
		       "Time of each fdatasync that makes downloaded pieces durable.");
	metrics_histogram(w, "shoal_fdatasync_duration_seconds", NULL, &m->fdatasync);
	metrics_family(w, "shoal_sqlite_commit_duration_seconds", "histogram",
		       "Time of each SQLite transaction commit.");
	metrics_histogram(w, "shoal_sqlite_commit_duration_seconds", NULL, &m->sqlite_commit);

	metrics_family(w, "shoal_api_requests_total", "counter",
		       "Replies of the HTTP API and dashboard, by status code.");
	char code[8];
	for (int i = 0; i < METRICS_API_CODES; i++) {
		if (i < METRICS_API_CODES - 1)
			snprintf(code, sizeof code, "%d", metrics_api_codes[i]);
		else
			snprintf(code, sizeof code, "other");
		metrics_sample(w, "shoal_api_requests_total", L1("code", code), m->api_requests[i]);
	}
}

/* The whole exposition into `b`: 0, or the writer's first error. */
static int write_all(struct node *node, struct buf *b)
{
	struct metrics_writer w = { .b = b };
	metrics_family(&w, "shoal_build_info", "gauge",
		       "Always 1: the version and the SHA-256 backend of this build.");
	metrics_sample(&w, "shoal_build_info",
		       L2("version", NODE_VERSION_STRING, "sha256", sha256_backend()), 1);
	metrics_family(&w, "shoal_start_time_seconds", "gauge",
		       "When the daemon started, in seconds since the Unix epoch.");
	metrics_sample(&w, "shoal_start_time_seconds", NULL, (uint64_t)node->started_at);
	write_transfer(&w, node);
	write_dht(&w, node);
	write_service(&w, node);
	return w.err;
}

/* A bearer token for the metrics: the API's, or the metrics token. */
static bool metrics_bearer_ok(struct api *api, const char *authorization)
{
	bool api_ok = api_bearer_ok(authorization, api->token);
	bool metrics_ok = api->has_metrics_token &&
			  api_bearer_ok(authorization, api->metrics_token);
	return api_ok || metrics_ok;
}

void api_metrics_serve(struct api_req *r, bool get_or_head)
{
	struct evkeyvalq *in = evhttp_request_get_input_headers(r->req);
	struct evkeyvalq *out = evhttp_request_get_output_headers(r->req);
	if (!metrics_bearer_ok(r->api, evhttp_find_header(in, "Authorization"))) {
		if (api_auth_failed(r))
			return;
		evhttp_add_header(out, "WWW-Authenticate", "Bearer realm=\"shoal\"");
		api_reply_error(r, 401, "unauthorized",
				"missing or wrong bearer token (the API token, or the metrics "
				"token: see `shoal token --metrics`)");
		return;
	}
	if (!get_or_head) {
		evhttp_add_header(out, "Allow", "GET, HEAD");
		api_reply_error(r, 405, "method_not_allowed", "%s accepts only GET, HEAD",
				API_METRICS_PATH);
		return;
	}
	struct buf b;
	buf_init(&b, METRICS_MAX_TEXT);
	int rc = write_all(r->node, &b);
	struct evbuffer *body = rc == 0 ? evbuffer_new() : NULL;
	if (!body || evbuffer_add(body, b.data, b.len) != 0) {
		if (body)
			evbuffer_free(body);
		buf_destroy(&b);
		api_reply_error(r, 500, "internal", "cannot build the metrics");
		return;
	}
	buf_destroy(&b);
	evhttp_add_header(out, "Content-Type", METRICS_CONTENT_TYPE);
	evhttp_add_header(out, "Cache-Control", "no-store");
	api_send_reply(r, 200, "OK", body);
	evbuffer_free(body);
}

int api_metrics_token_setup(struct api *api, const struct node_config *cfg, bool *changed,
			    char *err, size_t err_len)
{
	char path[PATH_MAX + 32];
	bool configured = cfg->metrics_token_file[0] != '\0';
	if (configured)
		snprintf(path, sizeof path, "%s", cfg->metrics_token_file);
	else
		snprintf(path, sizeof path, "%s/%s", cfg->data_dir, NODE_METRICS_TOKEN_FILE);
	if (changed)
		*changed = false;
	uint8_t token[API_TOKEN_LEN];
	int rc = api_token_load(path, token, err, err_len);
	if (rc == -ENOENT && !configured) {
		/* None: only the API token reads the metrics (a reload after
		 * the file was deleted takes the old token away). */
		if (api->has_metrics_token) {
			sodium_memzero(api->metrics_token, sizeof api->metrics_token);
			api->has_metrics_token = false;
			if (changed)
				*changed = true;
			log_info("GET /metrics takes only the API token now (%s is gone)", path);
		}
		return 0;
	}
	if (rc != 0 && !configured) {
		/* DATA_DIR/metrics.token is there but cannot be used (made by
		 * root for a daemon that runs as another user, say): stopping
		 * the start for it would put a service in a restart loop, so
		 * say why and go on without it (a reload keeps any token read
		 * before). */
		log_warn("%s; GET /metrics takes only the API token%s", err,
			 api->has_metrics_token ? " and the metrics token read before" : "");
		return 0;
	}
	if (rc != 0)
		return rc; /* asked for and unreadable: the start stops, a reload keeps the old */
	if (sodium_memcmp(token, api->token, API_TOKEN_LEN) == 0) {
		sodium_memzero(token, sizeof token);
		snprintf(err, err_len, "%s holds the API token itself: a metrics token must be "
			 "another one (delete it and run `shoal token --metrics`)", path);
		return -EINVAL;
	}
	bool same = api->has_metrics_token &&
		    sodium_memcmp(token, api->metrics_token, API_TOKEN_LEN) == 0;
	if (!same) {
		api_set_metrics_token(api, token);
		if (changed)
			*changed = true;
		log_info("GET /metrics also takes the token in %s", path);
	}
	sodium_memzero(token, sizeof token);
	return 0;
}
