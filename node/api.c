/* api.c: the HTTP server: making it, and checking (Host, Origin, token, session) and routing every request; api_reply.c answers. */
#include "config.h"

#include "common/addr.h"
#include "node/api.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <sodium.h>

#include "common/log.h"
#include "common/util.h"
#include "node/api_server.h"
#include "node/node.h"
#include "node/web_auth.h"

/* A test knob (docs/web.md): SHOAL_TEST_WEB_CODE_TTL=S makes login codes
 * live S seconds, 1-60, so a test sees one expire without waiting a
 * minute.  It can only shorten the life of a code. */
static uint64_t web_code_ttl_ms(void)
{
	const char *v = getenv("SHOAL_TEST_WEB_CODE_TTL");
	if (!v || !*v)
		return WEB_CODE_TTL_MS;
	char *end = NULL;
	long s = strtol(v, &end, 10);
	if (*end || s < 1 || s > (long)(WEB_CODE_TTL_MS / 1000)) {
		log_warn("SHOAL_TEST_WEB_CODE_TTL=%s ignored: expected 1-60 seconds", v);
		return WEB_CODE_TTL_MS;
	}
	log_warn("login codes live %ld s (SHOAL_TEST_WEB_CODE_TTL, a test knob)", s);
	return (uint64_t)s * 1000;
}

static void on_request(struct evhttp_request *req, void *arg);

struct api *api_new(struct node *node, const char *bind_addr, uint16_t port,
		    const uint8_t token[API_TOKEN_LEN], char *err, size_t err_len)
{
	struct api *api = calloc(1, sizeof *api);
	if (!api) {
		snprintf(err, err_len, "out of memory");
		return NULL;
	}
	api->node = node;
	memcpy(api->token, token, API_TOKEN_LEN);
	web_auth_init(&api->web, web_code_ttl_ms());
	snprintf(api->bind, sizeof api->bind, "%s", bind_addr);
	api->http = evhttp_new(node->base);
	api->events = api_events_new(node);
	api->streams = api_streams_new(node);
	if (!api->http || !api->events || !api->streams) {
		snprintf(err, err_len, "cannot create the HTTP server");
		goto fail;
	}
	evhttp_set_max_body_size(api->http, API_HARD_MAX_BODY);
	evhttp_set_max_headers_size(api->http, 16 * 1024);
	evhttp_set_timeout(api->http, API_HTTP_TIMEOUT_S);
	/* Let every method reach us so wrong ones get a JSON 405. */
	evhttp_set_allowed_methods(api->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
						      EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
						      EVHTTP_REQ_OPTIONS | EVHTTP_REQ_PATCH);
	evhttp_set_gencb(api->http, on_request, api);

	struct evhttp_bound_socket *bs = evhttp_bind_socket_with_handle(api->http, bind_addr, port);
	if (!bs) {
		snprintf(err, err_len, "cannot listen for the API on %s port %u: %s", bind_addr,
			 (unsigned)port, strerror(errno));
		goto fail;
	}
	struct sockaddr_storage ss;
	socklen_t sl = sizeof ss;
	if (getsockname(evhttp_bound_socket_get_fd(bs), (struct sockaddr *)&ss, &sl) != 0) {
		snprintf(err, err_len, "getsockname: %s", strerror(errno));
		goto fail;
	}
	char ip[INET6_ADDRSTRLEN];
	if (addr_host_port((const struct sockaddr *)&ss, ip, sizeof ip, &api->port) != 0) {
		snprintf(err, err_len, "the API is bound to an address of no known family");
		goto fail;
	}
	addr_format((const struct sockaddr *)&ss, api->address, sizeof api->address);
	return api;
fail:
	api_free(api);
	return NULL;
}

void api_free(struct api *api)
{
	if (!api)
		return;
	api_events_free(api->events); /* closes its streams first */
	api_streams_free(api->streams); /* and the readers of files */
	if (api->http)
		evhttp_free(api->http);
	sodium_memzero(api->token, sizeof api->token);
	sodium_memzero(api->metrics_token, sizeof api->metrics_token);
	web_auth_destroy(&api->web);
	free(api);
}

/* Match `path` against `pattern`; a "{id}" segment matches one non-empty
 * segment, copied into `param`, and a "{n}" segment one copied into
 * `param2` (both `param_len` bytes). */
static bool route_match(const char *pattern, const char *path, char *param, char *param2,
			size_t param_len)
{
	while (*pattern && *path) {
		bool id = strncmp(pattern, "{id}", 4) == 0, n = strncmp(pattern, "{n}", 3) == 0;
		if (id || n) {
			size_t len = strcspn(path, "/");
			if (len == 0 || len >= param_len)
				return false;
			char *out = id ? param : param2;
			memcpy(out, path, len);
			out[len] = '\0';
			path += len;
			pattern += id ? 4 : 3;
			continue;
		}
		if (*pattern != *path)
			return false;
		pattern++;
		path++;
	}
	return *pattern == '\0' && *path == '\0';
}

/* Does a route of method `route` answer a request of method `m`? */
static bool method_fits(enum api_method route, enum api_method m)
{
	return route == m || (route == API_GET_HEAD && (m == API_GET || m == API_HEAD));
}

static enum api_method method_of(enum evhttp_cmd_type cmd)
{
	switch (cmd) {
	case EVHTTP_REQ_GET: return API_GET;
	case EVHTTP_REQ_POST: return API_POST;
	case EVHTTP_REQ_DELETE: return API_DELETE;
	case EVHTTP_REQ_HEAD: return API_HEAD;
	default: return 0;
	}
}

/* Parse the request body as a JSON object into r->body.  Replies and
 * returns false on any problem. */
static bool read_body(struct api_req *r)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(r->req);
	size_t len = evbuffer_get_length(in);
	if (len > API_MAX_BODY) {
		api_reply_error(r, 413, "body_too_large", "request body over %d bytes",
				API_MAX_BODY);
		return false;
	}
	if (len == 0)
		return true; /* e.g. POST /pause: no body needed */
	const char *ctype =
		evhttp_find_header(evhttp_request_get_input_headers(r->req), "Content-Type");
	if (!ctype || strncasecmp(ctype, "application/json", 16) != 0 ||
	    (ctype[16] != '\0' && ctype[16] != ';' && ctype[16] != ' ')) {
		api_reply_error(r, 415, "unsupported_media_type",
				"request bodies must be sent as Content-Type: application/json");
		return false;
	}
	const char *text = (const char *)evbuffer_pullup(in, -1);
	if (api_json_depth(text, len) > API_MAX_JSON_DEPTH) {
		api_reply_error(r, 400, "bad_json", "JSON nested deeper than %d levels",
				API_MAX_JSON_DEPTH);
		return false;
	}
	json_error_t jerr;
	json_t *body = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!body) {
		api_reply_error(r, 400, "bad_json", "invalid JSON at line %d column %d: %s",
				jerr.line, jerr.column, jerr.text);
		return false;
	}
	if (!json_is_object(body)) {
		json_decref(body);
		api_reply_error(r, 400, "bad_json", "the request body must be a JSON object");
		return false;
	}
	r->body = body;
	return true;
}

/* The live session named by a shoal_session cookie of the request, or
 * NULL.  Every Cookie header and every cookie of that name is tried (a
 * browser may hold a stale one beside the live one). */
static struct web_session *request_session(struct api *api, struct evkeyvalq *in)
{
	uint64_t now = now_ms();
	for (struct evkeyval *kv = in->tqh_first; kv; kv = kv->next.tqe_next) {
		if (strcasecmp(kv->key, "Cookie") != 0)
			continue;
		const char *cursor = kv->value, *v;
		size_t n;
		while (web_cookie_next(&cursor, WEB_COOKIE_NAME, &v, &n)) {
			struct web_session *s = web_session_find(&api->web, v, n, now);
			if (s)
				return s;
		}
	}
	return NULL;
}

/* The session token a request carries: the X-Shoal-CSRF header, or for
 * GET /api/v1/events (EventSource sends no custom header) the query's
 * csrf=, copied into `buf`.  NULL when neither. */
static const char *request_csrf(struct evhttp_request *req, struct evkeyvalq *in,
				enum evhttp_cmd_type cmd, char buf[WEB_SECRET_HEX + 1])
{
	const char *h = evhttp_find_header(in, WEB_CSRF_HEADER);
	if (h || cmd != EVHTTP_REQ_GET)
		return h;
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
	const char *query = uri ? evhttp_uri_get_query(uri) : NULL;
	if (!path || !query || strcmp(path, API_EVENTS_PATH) != 0)
		return NULL;
	buf[0] = '\0';
	struct evkeyvalq q; /* evhttp_parse_query_str initialises it */
	if (evhttp_parse_query_str(query, &q) == 0) {
		const char *v = evhttp_find_header(&q, "csrf");
		if (v && strlen(v) == WEB_SECRET_HEX)
			memcpy(buf, v, WEB_SECRET_HEX + 1);
	}
	evhttp_clear_headers(&q);
	return buf[0] ? buf : NULL;
}

/* Replies go out at once: with Nagle's algorithm the last segment of a
 * reply larger than one segment (a page of swarms) waited for the ACK of
 * the one before, which a kept-alive client delays by 40 ms.  evhttp has
 * no hook for new connections, so this is set on the socket of every
 * request (one cheap syscall). */
static void set_nodelay(struct evhttp_request *req)
{
	struct evhttp_connection *evcon = evhttp_request_get_connection(req);
	struct bufferevent *bev = evcon ? evhttp_connection_get_bufferevent(evcon) : NULL;
	evutil_socket_t fd = bev ? bufferevent_getfd(bev) : -1;
	int one = 1;
	if (fd >= 0 && setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0)
		log_debug("API: TCP_NODELAY: %s", strerror(errno));
}

static void on_request(struct evhttp_request *req, void *arg)
{
	struct api *api = arg;
	struct api_req r = { .api = api, .node = api->node, .req = req };
	struct evkeyvalq *in = evhttp_request_get_input_headers(req);
	set_nodelay(req);
	/* On every response, pages and API alike (docs/web.md). */
	api_security_headers(evhttp_request_get_output_headers(req));

	/* Host, then Origin: before any route, pages included. */
	const char *host = evhttp_find_header(in, "Host");
	if (!api_host_allowed(host, api->port, api->bind)) {
		api_reply_error(&r, 403, "forbidden_host",
				"the Host header must name this node by a loopback address");
		return;
	}
	const char *origin = evhttp_find_header(in, "Origin");
	if (origin && !web_origin_matches(origin, host)) {
		api_reply_error(&r, 403, "forbidden_origin",
				"requests from another origin are refused (Origin must be http://%s)",
				host);
		return;
	}

	/* Oversized bodies are refused on every path, before any routing. */
	if (evbuffer_get_length(evhttp_request_get_input_buffer(req)) > API_MAX_BODY) {
		api_reply_error(&r, 413, "body_too_large", "request body over %d bytes",
				API_MAX_BODY);
		return;
	}

	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
	if (!path)
		path = "/";
	enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
	/* Pages hold no data: they need no credential. */
	if (api_web_is_page(path)) {
		api_web_serve(&r, path, cmd == EVHTTP_REQ_GET || cmd == EVHTTP_REQ_HEAD);
		return;
	}
	/* A stream address carries its own credential, good for one file and
	 * nothing else: it never reaches the routes below.  It is opened by
	 * players and by the user (typed, pasted), so Sec-Fetch-Site is not
	 * asked; Host and Origin were. */
	if (api_stream_is_capability(path)) {
		api_stream_capability(&r, path);
		return;
	}

	/* A browser says where an API request comes from: only the page
	 * itself ("same-origin") or the user ("none": typed, a bookmark) may
	 * call it; another site, or another port of this host ("same-site"),
	 * may not, whatever it carries. */
	const char *fetch_site = evhttp_find_header(in, "Sec-Fetch-Site");
	if (fetch_site && strcasecmp(fetch_site, "same-origin") != 0 &&
	    strcasecmp(fetch_site, "none") != 0) {
		api_reply_error(&r, 403, "forbidden_origin",
				"API requests from another site are refused (Sec-Fetch-Site: %s)",
				fetch_site);
		return;
	}

	/* Metrics take a bearer token only: the API's, or the read-only one
	 * of a scraper, which opens nothing else. */
	if (strcmp(path, API_METRICS_PATH) == 0) {
		api_metrics_serve(&r, cmd == EVHTTP_REQ_GET || cmd == EVHTTP_REQ_HEAD);
		return;
	}

	/* The API: the bearer token, or a live session cookie, which for
	 * anything but GET and HEAD must come with that session's CSRF
	 * header.  Trading a login code needs neither (the code is the
	 * credential); minting one takes the bearer token only, so a page
	 * cannot mint codes for itself. */
	bool bearer = api_bearer_ok(evhttp_find_header(in, "Authorization"), api->token);
	r.session = request_session(api, in);
	bool is_codes = strcmp(path, API_WEB_CODES_PATH) == 0;
	bool is_login = cmd == EVHTTP_REQ_POST && strcmp(path, API_WEB_SESSION_PATH) == 0;
	if (!bearer && !is_login && (!r.session || is_codes)) {
		if (api_auth_failed(&r))
			return;
		evhttp_add_header(evhttp_request_get_output_headers(req), "WWW-Authenticate",
				  "Bearer realm=\"shoal\"");
		api_reply_error(&r, 401, "unauthorized",
				is_codes ? "minting login codes takes the bearer token (see `shoal token`)"
					 : "missing or wrong bearer token (see `shoal token`), and no "
					   "live session cookie");
		return;
	}
	/* With the cookie, every request (GET too) also proves it comes from
	 * the page that logged in: browsers send a cookie of 127.0.0.1 to every
	 * port of it, so a server of another local user that the owner is lured
	 * to would get the cookie, but never the token, which the page keeps in
	 * storage no other origin (port) can read.  EventSource cannot set a
	 * header: the event stream also takes the token as ?csrf=. */
	char qtoken[WEB_SECRET_HEX + 1];
	if (!bearer && !is_login &&
	    !web_session_csrf_ok(r.session, request_csrf(req, in, cmd, qtoken))) {
		api_reply_error(&r, 403, "csrf",
				"a request with the session cookie must carry the session's "
				WEB_CSRF_HEADER " header: log in again with `shoal web` if the page "
				"lost it");
		return;
	}
	enum api_method m = method_of(cmd);
	char param[256], param2[256];
	bool path_known = false;
	char allow[64] = "";
	const struct {
		const struct api_route *routes;
		size_t count;
	} tables[] = { { api_routes, api_routes_count }, { api_swarm_routes, api_swarm_routes_count },
		       { api_tracker_routes, api_tracker_routes_count },
		       { api_web_routes, api_web_routes_count },
		       { api_event_routes, api_event_routes_count },
		       { api_stream_routes, api_stream_routes_count } };
	for (size_t t = 0; t < sizeof tables / sizeof tables[0]; t++) {
		for (size_t i = 0; i < tables[t].count; i++) {
			const struct api_route *rt = &tables[t].routes[i];
			if (!route_match(rt->pattern, path, param, param2, sizeof param))
				continue;
			path_known = true;
			if (!method_fits(rt->method, m)) {
				const char *name = rt->method == API_GET	  ? "GET"
						   : rt->method == API_GET_HEAD ? "GET, HEAD"
						   : rt->method == API_POST	  ? "POST"
										  : "DELETE";
				if (!strstr(allow, name))
					snprintf(allow + strlen(allow), sizeof allow - strlen(allow),
						 "%s%s", *allow ? ", " : "", name);
				continue;
			}
			r.param = strstr(rt->pattern, "{id}") ? param : NULL;
			r.param2 = strstr(rt->pattern, "{n}") ? param2 : NULL;
			if ((m == API_POST || m == API_DELETE) && !read_body(&r))
				return;
			rt->handler(&r);
			json_decref(r.body);
			return;
		}
	}
	if (path_known) {
		evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", allow);
		api_reply_error(&r, 405, "method_not_allowed", "%s accepts only %s", path, allow);
		return;
	}
	api_reply_error(&r, 404, "not_found", "no such endpoint: %s", path);
}
