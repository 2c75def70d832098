/* api.h: the local HTTP JSON control interface (evhttp + jansson). */
#ifndef SHOAL_NODE_API_H
#define SHOAL_NODE_API_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

struct node;
struct evhttp_request;

#define API_TOKEN_LEN 32
/* Bodies above this are answered 413 with a JSON error. */
#define API_MAX_BODY (1024 * 1024)
/* Bodies above this are cut off by evhttp itself (its own 413 page). */
#define API_HARD_MAX_BODY (4 * 1024 * 1024)
#define API_MAX_JSON_DEPTH 32

struct api;

/* Listen on bind_addr:port (port 0 = any free one) and serve requests that
 * carry `token`.  Returns NULL with a message in `err` on failure. */
struct api *api_new(struct node *node, const char *bind_addr, uint16_t port,
		    const uint8_t token[API_TOKEN_LEN], char *err, size_t err_len);
void api_free(struct api *api);

/* "127.0.0.1:7881" or "[::1]:7881": the address actually bound. */
const char *api_address(const struct api *api);
uint16_t api_port(const struct api *api);

/* --- pure checks, unit-tested --- */

/* True if the Host header names this server by a loopback name or literal
 * (localhost, 127.0.0.1, [::1]) or by the numeric bind address, with
 * exactly our port.  Guards against DNS rebinding. */
bool api_host_allowed(const char *host, uint16_t port, const char *bind_addr);

/* True if `authorization` is "Bearer <64 hex>" naming `token`, compared in
 * constant time. */
bool api_bearer_ok(const char *authorization, const uint8_t token[API_TOKEN_LEN]);

/* Deepest nesting of arrays/objects in a JSON text (strings are skipped). */
int api_json_depth(const char *text, size_t len);

/* Read the token file at `path`, or create it (0600, 32 random bytes as hex)
 * when absent.  A file readable by others is tightened to 0600 with a warning.
 * Returns 0, or a negative errno with a message in `err`. */
int api_token_load_or_create(const char *path, uint8_t token_out[API_TOKEN_LEN], char *err,
			     size_t err_len) __attribute__((warn_unused_result));

/* As api_token_load_or_create, but a missing file is -ENOENT (with a
 * message): never created. */
int api_token_load(const char *path, uint8_t token_out[API_TOKEN_LEN], char *err, size_t err_len)
	__attribute__((warn_unused_result));

/* Also accept `token` for GET /metrics, and for nothing else (node/api_metrics.c). */
void api_set_metrics_token(struct api *api, const uint8_t token[API_TOKEN_LEN]);
/* (Re)read the metrics token of `cfg`: its metrics-token-file (which must
 * hold a token), else DATA_DIR/metrics.token when that exists, else none
 * (clearing a token read before).  Called at start and on every SIGHUP, so
 * a token rewritten in place takes effect.  Returns 0 (with *changed, when
 * given, telling whether the accepted token changed), or a negative errno
 * with a message in `err` and the token as it was. */
struct node_config;
int api_metrics_token_setup(struct api *api, const struct node_config *cfg, bool *changed,
			    char *err, size_t err_len) __attribute__((warn_unused_result));

/* --- for request handlers (api_routes.c and friends) --- */

struct web_session;

struct api_req {
	struct api *api;
	struct node *node;
	struct evhttp_request *req;
	const char *param;  /* the {id} path segment, or NULL */
	const char *param2; /* the {n} path segment, or NULL */
	json_t *body;       /* parsed JSON body of POST/DELETE, or NULL */
	struct web_session *session; /* the live session of its cookie, or NULL */
};

/* Send `json` (reference taken) with `status`.  Exactly one reply per request. */
void api_reply(struct api_req *r, int status, json_t *json);
/* Send {"error": {"status": S, "code": CODE, "message": ...}}. */
void api_reply_error(struct api_req *r, int status, const char *code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

#endif
