/* api_server.h: what api.c, api_reply.c and the handler files share: the
 * server's state, the route tables, the JSON builders. */
#ifndef SHOAL_NODE_API_SERVER_H
#define SHOAL_NODE_API_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "node/api.h"
#include "node/web_auth.h"

/* Per-source back-off on failed authentication: a small fixed table (LRU
 * replacement), so a flood of bad tokens costs bounded memory.  A source
 * with API_AUTH_MAX_FAILS failures inside API_AUTH_WINDOW_S gets 429 for
 * failed attempts until the window passes; the right token still works,
 * so a local attacker cannot lock the owner out. */
#define API_AUTH_SLOTS 64
#define API_AUTH_MAX_FAILS 10
#define API_AUTH_WINDOW_S 60

struct auth_slot {
	char source[64];
	unsigned fails;
	uint64_t window_start_ms;
	uint64_t last_ms;
};

/* The API server (node/api.c makes and routes; node/api_reply.c answers).
 * The handler files reach it only through the functions below. */
struct api {
	struct node *node;
	struct auth_slot auth[API_AUTH_SLOTS];
	struct evhttp *http;
	struct api_events *events; /* GET /api/v1/events (node/api_events.c) */
	struct api_streams *streams; /* file contents and stream tokens (node/api_stream.c) */
	uint16_t port;
	char bind[64];
	char address[96];
	uint8_t token[API_TOKEN_LEN];
	uint8_t metrics_token[API_TOKEN_LEN]; /* GET /metrics only, when has_metrics_token */
	bool has_metrics_token;
	struct web_auth web; /* the dashboard's login codes and sessions */
};

/* API_HEAD is what a HEAD request asks; a route of API_GET_HEAD answers
 * both GET and HEAD (its handler tells them apart). */
enum api_method { API_GET = 1, API_POST = 2, API_DELETE = 4, API_HEAD = 8, API_GET_HEAD = 16 };

/* evhttp's idle timeout of every connection, seconds (a stream lifts it
 * while it sends and puts it back when done). */
#define API_HTTP_TIMEOUT_S 30

struct api_route {
	enum api_method method;
	/* "/api/v1/swarms/{id}/peers": {id} matches one segment (r->param),
	 * {n} another (r->param2) */
	const char *pattern;
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
extern const struct api_route api_event_routes[];
extern const size_t api_event_routes_count;
extern const struct api_route api_stream_routes[];
extern const size_t api_stream_routes_count;

/* --- streaming a file (node/api_stream.c, docs/streaming.md) --- */
/* Where the capability addresses live: /stream/TOKEN/NAME. */
#define API_STREAM_PREFIX "/stream/"
/* The readers and stream tokens of the server.  struct api owns one: made
 * by api_new, freed by api_free before the HTTP server (it closes every
 * reader's connection).  NULL when out of memory. */
struct api_streams;
struct api_streams *api_streams_new(struct node *node);
void api_streams_free(struct api_streams *s);
/* The api's streams (node/api.c); NULL when none could be made. */
struct api_streams *api_streams_of(struct api *api);
/* True for a path under API_STREAM_PREFIX. */
bool api_stream_is_capability(const char *path);
/* Answer a request under API_STREAM_PREFIX: its token alone authorizes it
 * (no bearer token, no cookie), for GET and HEAD of that one file.  The
 * Host and Origin checks have passed. */
void api_stream_capability(struct api_req *r, const char *path);

#define API_EVENTS_PATH "/api/v1/events"

/* --- Prometheus metrics (node/api_metrics.c, docs/metrics.md) --- */
#define API_METRICS_PATH "/metrics"
/* Answer GET or HEAD /metrics: its own bearer check (the API token or the
 * metrics token), after the Host, Origin and Sec-Fetch-Site checks. */
void api_metrics_serve(struct api_req *r, bool get_or_head);
/* Every reply of the API leaves through one of these two (api_reply too),
 * which count it by status for GET /metrics: evhttp_send_reply and
 * evhttp_send_reply_start, counted. */
struct evbuffer;
void api_send_reply(struct api_req *r, int status, const char *reason, struct evbuffer *body);
void api_send_reply_start(struct api_req *r, int status, const char *reason);

/* The event streams of GET /api/v1/events (node/api_events.c, whose
 * header comment says who owns and frees what).  struct api owns one:
 * made by api_new, freed by api_free before the HTTP server (it closes
 * every stream).  NULL when out of memory. */
struct api_events;
struct node;
struct api_events *api_events_new(struct node *node);
void api_events_free(struct api_events *ev);
/* The api's event streams (node/api.c); NULL when none could be made. */
struct api_events *api_events_of(struct api *api);
/* {"streams": open now, "dropped": closed for not reading} (GET /status). */
json_t *api_events_status_json(const struct api_events *ev);
/* "swarms" of GET /api/v1/status: totals and by_state (api_routes.c). */
json_t *api_status_swarms_json(struct node *node);

/* --- the web dashboard (api_web.c, docs/web.md) --- */
#define API_WEB_CODES_PATH "/api/v1/web/codes"
#define API_WEB_SESSION_PATH "/api/v1/web/session"
extern const struct api_route api_web_routes[];
extern const size_t api_web_routes_count;
struct evkeyvalq;
struct web_auth;
/* Add the headers every response carries (CSP, X-Frame-Options,
 * Referrer-Policy, X-Content-Type-Options) to `h`. */
void api_security_headers(struct evkeyvalq *h);
/* True for the paths of the pages: "/", "/login" and "/web/...". */
bool api_web_is_page(const char *path);
/* Answer a page path (api_web_is_page) from the web directory; anything
 * but GET and HEAD is a 405. */
void api_web_serve(struct api_req *r, const char *path, bool get_or_head);
/* The login codes and sessions of this server (api.c). */
struct web_auth *api_web_auth(struct api *api);
/* "HOST:PORT" a browser on this machine reaches the API at: the bound
 * address, a wildcard one replaced by loopback (api.c). */
void api_page_host(const struct api *api, char *out, size_t out_len);
/* Count a failed credential (a wrong login code) against the source's
 * budget; when it is over, reply 429 and return true (api.c). */
bool api_auth_failed(struct api_req *r);

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

/* The query of GET /api/v1/swarms (docs/api.md): a page of at most
 * `limit` swarms (0: all of them) whose ids are above `after`, filtered by
 * state and name, in id order or busiest first. */
#define API_SWARMS_MAX_LIMIT 1000
/* A page looks at no more swarms than this (a filter that matches few of
 * them answers a short page and a `next` to go on from), so one request
 * costs the loop a bounded time however many swarms there are. */
#define API_SWARMS_PAGE_SCAN 10000
#define API_SWARMS_MAX_QUERY 256
struct api_swarms_query {
	uint32_t limit;         /* 1..API_SWARMS_MAX_LIMIT, 0 = every swarm */
	bool has_after;
	int64_t after;
	uint32_t states;        /* bit (1u << state) per wanted state; 0 = any */
	char q[API_SWARMS_MAX_QUERY]; /* the name contains it, ASCII case folded; "" = any */
	bool busiest;           /* sort=busiest: by rate, peers, bytes moved, newest */
};
/* Parse a URL query (NULL or "" for none; percent-encoded) into `out`.
 * Returns 0, or -EINVAL with a message for the user in `err`: an unknown
 * or repeated parameter, or a value out of its range. */
int api_swarms_query_parse(const char *query, struct api_swarms_query *out, char *err,
			   size_t err_len) __attribute__((warn_unused_result));

/* The JSON bodies (node/api_json.c; docs/api.md). */
struct swarm;
struct node;
/* GET /swarms and /swarms/{id}; `full` adds files. */
json_t *swarm_to_json(struct node *node, const struct swarm *sw, bool full);
json_t *swarm_peers_json(const struct swarm *sw);   /* one entry per connection */
/* What of a swarm changes swarm_to_json(.., false) while the daemon runs,
 * as plain values: equal prints mean the same JSON, but for what no print
 * holds (the .torrent file appearing, the trackers' URLs in the magnet, a
 * stalled hashing's rate), which node/api_events.c catches with a full
 * comparison of each swarm every few seconds.  Compared with memcmp:
 * zero it first. */
struct swarm_print {
	int64_t id;
	uint64_t work_done, work_total, last_check_seq, upload_limit, download_limit;
	uint64_t trackers, peers, known_peers, downloaded, uploaded, hash_failures;
	uint64_t error_hash; /* of sw->error while in error or with a disk error */
	double down_rate, up_rate;
	int32_t state, role;
	uint32_t have_count, total_pieces, wanted_count, wanted_have;
	uint8_t info_hash[8];
	bool has_info_hash, key_v1, has_info_hash_v1, has_meta, active, disk_error,
		waiting_layers, sequential;
};
/* memcmp compares every byte: there must be no padding. */
_Static_assert(sizeof(struct swarm_print) == 15 * 8 + 6 * 4 + 8 + 8,
	       "struct swarm_print has padding");
void swarm_json_print(const struct swarm *sw, struct swarm_print *out);
json_t *node_transfer_json(struct node *node);      /* "transfer" of /status */
/* GET /api/v1/swarms/{id}/files: docs/api.md, "Files". */
json_t *swarm_files_json(const struct swarm *sw);

#endif
