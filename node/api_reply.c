/* api_reply.c: answering a request (JSON replies and errors), the
 * per-source back-off on failed credentials, and the accessors of struct
 * api the handler files use.  It is the floor the handlers stand on:
 * node/api.c (making the server, checking and routing every request) sits
 * above them and calls down into them and into this. */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>

#include "common/util.h"
#include "node/api_server.h"
#include "node/metrics.h"
#include "node/node.h"

const char *api_address(const struct api *api)
{
	return api->address;
}

uint16_t api_port(const struct api *api)
{
	return api->port;
}

struct web_auth *api_web_auth(struct api *api)
{
	return &api->web;
}

void api_page_host(const struct api *api, char *out, size_t out_len)
{
	if (strcmp(api->bind, "0.0.0.0") == 0)
		snprintf(out, out_len, "127.0.0.1:%u", (unsigned)api->port);
	else if (strcmp(api->bind, "::") == 0)
		snprintf(out, out_len, "[::1]:%u", (unsigned)api->port);
	else
		snprintf(out, out_len, "%s", api->address);
}

struct api_events *api_events_of(struct api *api)
{
	return api->events;
}

struct api_streams *api_streams_of(struct api *api)
{
	return api->streams;
}

static const char *reason_phrase(int status)
{
	switch (status) {
	case 200: return "OK";
	case 201: return "Created";
	case 202: return "Accepted";
	case 204: return "No Content";
	case 206: return "Partial Content";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 409: return "Conflict";
	case 410: return "Gone";
	case 413: return "Payload Too Large";
	case 415: return "Unsupported Media Type";
	case 416: return "Range Not Satisfiable";
	case 422: return "Unprocessable Entity";
	case 429: return "Too Many Requests";
	case 500: return "Internal Server Error";
	case 503: return "Service Unavailable";
	default: return "Status";
	}
}

void api_send_reply(struct api_req *r, int status, const char *reason, struct evbuffer *body)
{
	metrics_api_reply(&r->node->metrics, status);
	evhttp_send_reply(r->req, status, reason, body);
}

void api_send_reply_start(struct api_req *r, int status, const char *reason)
{
	metrics_api_reply(&r->node->metrics, status);
	evhttp_send_reply_start(r->req, status, reason);
}

void api_reply(struct api_req *r, int status, json_t *json)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(r->req);
	evhttp_add_header(h, "Content-Type", "application/json");
	evhttp_add_header(h, "Cache-Control", "no-store");
	struct evbuffer *out = evbuffer_new();
	char *text = json_dumps(json, JSON_INDENT(2) | JSON_SORT_KEYS);
	if (out && text) {
		evbuffer_add(out, text, strlen(text));
		evbuffer_add(out, "\n", 1);
	}
	api_send_reply(r, status, reason_phrase(status), out);
	free(text);
	if (out)
		evbuffer_free(out);
	json_decref(json);
}

void api_reply_error(struct api_req *r, int status, const char *code, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	api_reply(r, status,
		  json_pack("{s:{s:i,s:s,s:s}}", "error", "status", status, "code", code, "message",
			    msg));
}

/* The slot of this source, creating one (evicting the least recently
 * used) when absent. */
static struct auth_slot *auth_slot(struct api *api, const char *source, uint64_t now)
{
	struct auth_slot *oldest = &api->auth[0];
	for (size_t i = 0; i < API_AUTH_SLOTS; i++) {
		struct auth_slot *s = &api->auth[i];
		if (s->last_ms && strcmp(s->source, source) == 0)
			return s;
		if (s->last_ms < oldest->last_ms)
			oldest = s;
	}
	memset(oldest, 0, sizeof *oldest);
	snprintf(oldest->source, sizeof oldest->source, "%s", source);
	oldest->window_start_ms = now;
	oldest->last_ms = now;
	return oldest;
}

/* Count a failed attempt; true when the source is over its budget. */
static bool auth_failed(struct api *api, const char *source)
{
	uint64_t now = now_ms();
	struct auth_slot *s = auth_slot(api, source, now);
	if (now - s->window_start_ms > API_AUTH_WINDOW_S * 1000u) {
		s->window_start_ms = now;
		s->fails = 0;
	}
	s->last_ms = now;
	s->fails++;
	return s->fails > API_AUTH_MAX_FAILS;
}

bool api_auth_failed(struct api_req *r)
{
	char *peer = NULL;
	ev_uint16_t peer_port = 0;
	evhttp_connection_get_peer(evhttp_request_get_connection(r->req), &peer, &peer_port);
	if (!auth_failed(r->api, peer ? peer : "?"))
		return false;
	char wait[16];
	snprintf(wait, sizeof wait, "%d", API_AUTH_WINDOW_S);
	evhttp_add_header(evhttp_request_get_output_headers(r->req), "Retry-After", wait);
	api_reply_error(r, 429, "too_many_failures",
			"too many requests with a wrong token or login code from %s; wait a minute",
			peer ? peer : "this address");
	return true;
}

