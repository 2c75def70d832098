/* api_events.c: GET /api/v1/events, a server-sent event stream of the
 * swarms and the node's counters: a snapshot, then what changed, once a
 * second (docs/api.md, "Events").
 *
 * Ownership and threading.  Everything here runs on the event loop
 * thread.  struct api owns one struct api_events (api_events_new in
 * api_new, api_events_free in api_free, before evhttp_free), and the
 * events module owns every open stream (struct ev_stream, on its list),
 * the baseline (the last JSON sent per swarm id, struct ev_last, in a hash
 * map and a list), the ring of recent events and the one timer.  A stream
 * ends in exactly one of two places, each of which unlinks and frees it:
 *   - on_stream_closed, evhttp's close callback, when the client goes away
 *     (or evhttp drops the connection); evhttp has already taken the
 *     request off the connection then, so it is freed here with
 *     evhttp_send_reply_end;
 *   - stream_drop, when this module ends it (over EVENTS_MAX_UNSENT, the
 *     streams together over EVENTS_MAX_UNSENT_TOTAL, the session that opened
 *     it ended, or api_events_free): the close callback is cleared first, then
 *     evhttp_connection_free frees the connection and its request.
 * The bytes of one round of events are serialized once into a
 * reference-counted block (struct ev_block) that every stream's output
 * buffer references (evbuffer_add_reference) rather than copies; the block
 * is freed when the last buffer holding it lets go, which may be after this
 * module is gone (a connection being torn down), so nothing in a block
 * points back here.
 *
 * Cost.  A round (one per second while a stream is open, none otherwise)
 * takes every swarm's print (struct swarm_print, a few plain values) and
 * builds and compares the JSON only of a swarm whose print moved, and of
 * each swarm once in EVENTS_FULL_EVERY rounds: O(N) in swarms, cheap per
 * idle swarm, independent of the streams; each stream then costs O(1)
 * (one reference and one length check). */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>
#include <sodium.h>

#include "common/hmap.h"
#include "common/log.h"
#include "common/util.h"
#include "node/api_server.h"
#include "node/dht_node.h"
#include "node/engine.h"
#include "node/node.h"
#include "node/web_auth.h"
#include "node/swarm.h"
#include "node/swarms.h"

/* Events kept for resuming (Last-Event-ID), and the bytes they may use. */
#define EVENTS_RING 4096
#define EVENTS_RING_MAX_BYTES (8u << 20)
#define EVENTS_MAX_STREAMS 128
/* A stream with more than this written to it and not yet taken by the
 * kernel (its connection's output buffer) is closed: a client that stops
 * reading holds at most this much of the daemon's memory. */
#define EVENTS_MAX_UNSENT (8u << 20)
/* Each swarm's JSON is compared in full at least once in this many rounds
 * (seconds), whether or not its print moved (struct swarm_print). */
#define EVENTS_FULL_EVERY 10u
/* ... and all streams together: past it the streams holding most are
 * closed, so 128 clients that stop reading cannot hold 128 x 8 MiB. */
#define EVENTS_MAX_UNSENT_TOTAL (64u << 20)
/* What a stream's client may send that is kept unread (it should send
 * nothing). */
#define EVENTS_MAX_INPUT (64u << 10)
#define EVENTS_TICK_MS 1000
#define EVENTS_PING_MS 15000
#define EVENTS_RETRY_MS 2000

/* Bytes shared by the output buffers of many streams. */
struct ev_block {
	unsigned refs;
	size_t len;
	char data[];
};

/* The last JSON sent for one swarm. */
struct ev_last {
	int64_t id;
	json_t *json;             /* owned: swarm_to_json as of the last full look */
	struct swarm_print print; /* ... and what changes of it, as of then */
	uint64_t round;           /* the last round that saw the swarm */
	struct ev_last *prev, *next; /* in the order added (ids only grow) */
};

struct ev_stream {
	struct api_events *ev;
	struct evhttp_request *req;
	struct evhttp_connection *evcon;
	struct ev_stream *prev, *next;
	struct event *hup;                /* the client hung up (EV_CLOSED), when the backend can tell */
	bool by_session;                  /* opened with a session cookie, not the token */
	uint8_t session[WEB_SECRET_LEN];  /* ... that session's id: the stream ends with it */
};

struct ev_saved {
	uint64_t seq;
	char *text; /* owned: the event as sent, "id: ...\n...\n\n" */
	size_t len;
};

struct api_events {
	struct node *node;
	struct event *tick;       /* pending only while a stream is open */
	char run[9];              /* 8 hex digits chosen at start */
	uint64_t seq;             /* of the last event made; 0 before any */
	uint64_t round;
	bool primed;              /* the baseline has been filled once */
	struct hmap by_id;        /* struct ev_last by hmap_hash_u64(id) */
	struct ev_last *first, *last;
	json_t *node_last;        /* owned: the node object as last sent */
	struct ev_saved ring[EVENTS_RING];
	size_t ring_head, ring_len, ring_bytes;
	struct ev_block *snapshot; /* one ref, cached for snapshot_seq */
	uint64_t snapshot_seq;
	struct ev_stream *streams;
	unsigned n_streams;
	uint64_t last_ping_ms;
	uint64_t dropped;         /* streams closed for not reading */
};

static void on_tick(evutil_socket_t fd, short what, void *arg);
static void on_stream_closed(struct evhttp_connection *evcon, void *arg);

/* ------------------------------------------------------------ blocks */

static struct ev_block *block_new(size_t len)
{
	struct ev_block *b = malloc(sizeof *b + (len ? len : 1));
	if (b) {
		b->refs = 1;
		b->len = len;
	}
	return b;
}

static void block_unref(struct ev_block *b)
{
	if (b && --b->refs == 0)
		free(b);
}

static void block_cleanup(const void *data, size_t len, void *arg)
{
	(void)data;
	(void)len;
	block_unref(arg);
}

/* A block holding what `buf` holds (drained). */
static struct ev_block *block_from(struct evbuffer *buf)
{
	size_t len = evbuffer_get_length(buf);
	struct ev_block *b = len ? block_new(len) : NULL;
	if (b)
		evbuffer_remove(buf, b->data, len);
	evbuffer_drain(buf, len);
	return b;
}

/* ------------------------------------------------------------ streams */

static size_t stream_unsent(const struct ev_stream *s)
{
	struct bufferevent *bev = evhttp_connection_get_bufferevent(s->evcon);
	return bev ? evbuffer_get_length(bufferevent_get_output(bev)) : 0;
}

/* Queue `b` on the stream without copying it. */
static void stream_send(struct ev_stream *s, struct ev_block *b)
{
	struct evbuffer *tmp = evbuffer_new();
	if (!tmp)
		return;
	b->refs++;
	if (evbuffer_add_reference(tmp, b->data, b->len, block_cleanup, b) != 0)
		b->refs--;
	else
		evhttp_send_reply_chunk(s->req, tmp);
	evbuffer_free(tmp); /* drops the reference if evhttp did not take it */
}

static void stream_send_text(struct ev_stream *s, const char *text)
{
	struct evbuffer *tmp = evbuffer_new();
	if (!tmp)
		return;
	if (evbuffer_add(tmp, text, strlen(text)) == 0)
		evhttp_send_reply_chunk(s->req, tmp);
	evbuffer_free(tmp);
}

static void stream_unlink(struct ev_stream *s)
{
	struct api_events *ev = s->ev;
	if (s->prev)
		s->prev->next = s->next;
	else
		ev->streams = s->next;
	if (s->next)
		s->next->prev = s->prev;
	ev->n_streams--;
	if (ev->n_streams == 0)
		event_del(ev->tick);
	if (s->hup) {
		event_free(s->hup);
		s->hup = NULL;
	}
}

static void on_stream_closed(struct evhttp_connection *evcon, void *arg)
{
	struct ev_stream *s = arg;
	(void)evcon;
	stream_unlink(s);
	/* After a client's EOF evhttp has detached the request it was still
	 * sending (it belongs to us until evhttp_send_reply_end frees it);
	 * otherwise the connection frees it itself as it goes. */
	if (!evhttp_request_get_connection(s->req))
		evhttp_send_reply_end(s->req);
	free(s);
}

/* Close the stream's connection from our side and free it. */
static void stream_drop(struct ev_stream *s)
{
	stream_unlink(s);
	evhttp_connection_set_closecb(s->evcon, NULL, NULL);
	evhttp_connection_free(s->evcon); /* frees s->req with it */
	free(s);
}

/* The client hung up.  evhttp notices that itself while it reads, but it
 * stops reading a stream past EVENTS_MAX_INPUT (see handle_events); then
 * only a failed write would tell, a ping or two later, and a closed tab
 * would hold one of the EVENTS_MAX_STREAMS that long. */
static void on_hup(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	stream_drop(arg);
}

/* ------------------------------------------------------------ the ring */

static void ring_push(struct api_events *ev, uint64_t seq, char *text, size_t len)
{
	if (ev->ring_len == EVENTS_RING ||
	    (ev->ring_len && ev->ring_bytes + len > EVENTS_RING_MAX_BYTES)) {
		/* Evict the oldest until it fits (at least one goes when full). */
		do {
			struct ev_saved *old = &ev->ring[ev->ring_head];
			ev->ring_bytes -= old->len;
			free(old->text);
			old->text = NULL;
			ev->ring_head = (ev->ring_head + 1) % EVENTS_RING;
			ev->ring_len--;
		} while (ev->ring_len && ev->ring_bytes + len > EVENTS_RING_MAX_BYTES);
	}
	struct ev_saved *e = &ev->ring[(ev->ring_head + ev->ring_len) % EVENTS_RING];
	e->seq = seq;
	e->text = text;
	e->len = len;
	ev->ring_len++;
	ev->ring_bytes += len;
}

/* The seq of the oldest event kept, or seq + 1 when none is. */
static uint64_t ring_first(const struct api_events *ev)
{
	return ev->ring_len ? ev->ring[ev->ring_head].seq : ev->seq + 1;
}

/* ------------------------------------------------------------ diffing */

/* What of `now` differs from `before`: the top-level fields that changed,
 * whole, except the object named `merge_key` (NULL: none), given key by
 * key (only its keys that changed); a key gone from `now` is null.  NULL
 * when nothing changed.  One level of key-by-key merge is what a client
 * applies (web/app.js merges "transfer" so; docs/api.md, "Events"). */
static json_t *json_diff(json_t *before, json_t *now, const char *merge_key)
{
	json_t *d = NULL, *v;
	const char *k;
	json_object_foreach(now, k, v) {
		json_t *old = json_object_get(before, k), *c = NULL;
		if (merge_key && strcmp(k, merge_key) == 0 && json_is_object(old) && json_is_object(v))
			c = json_diff(old, v, NULL);
		else if (!old || !json_equal(old, v))
			c = json_incref(v);
		if (!c)
			continue;
		if (!d)
			d = json_object();
		json_object_set_new(d, k, c);
	}
	json_object_foreach(before, k, v) {
		if (json_object_get(now, k))
			continue;
		if (!d)
			d = json_object();
		json_object_set_new(d, k, json_null());
	}
	return d;
}

/* The "node" object of the snapshot and of node events. */
static json_t *node_json(struct node *node)
{
	struct engine_node_stats st;
	swarms_node_stats(node, &st);
	json_t *dht = dht_node_status_json(node->dht);
	json_int_t dht_nodes = json_integer_value(json_object_get(dht, "nodes"));
	json_decref(dht);
	return json_pack("{s:i,s:I,s:f,s:f,s:I,s:I,s:o}", "peers", (int)swarms_peer_count(node),
			 "dht_nodes", dht_nodes, "download_rate", st.down_rate, "upload_rate",
			 st.up_rate, "download_limit", (json_int_t)node->cfg.download_limit,
			 "upload_limit", (json_int_t)node->cfg.upload_limit, "swarms",
			 api_status_swarms_json(node));
}

/* Make one event: saved in the ring and appended to `round`.  Takes no
 * reference of `data`. */
static void emit(struct api_events *ev, struct evbuffer *round, const char *name, json_t *data)
{
	char *js = data ? json_dumps(data, JSON_COMPACT) : NULL;
	if (!js)
		return;
	char head[96];
	int hn = snprintf(head, sizeof head, "id: %s-%" PRIu64 "\nevent: %s\ndata: ", ev->run,
			  ev->seq + 1, name);
	size_t jn = strlen(js), len = (size_t)hn + jn + 2;
	char *text = malloc(len);
	if (!text) {
		free(js);
		return;
	}
	ev->seq++;
	memcpy(text, head, (size_t)hn);
	memcpy(text + hn, js, jn);
	memcpy(text + hn + jn, "\n\n", 2);
	free(js);
	if (round)
		evbuffer_add(round, text, len);
	ring_push(ev, ev->seq, text, len);
}

static struct ev_last *last_find(struct api_events *ev, int64_t id)
{
	size_t pos = 0;
	struct ev_last *e;
	while ((e = hmap_next(&ev->by_id, hmap_hash_u64((uint64_t)id), &pos)))
		if (e->id == id)
			return e;
	return NULL;
}

static void last_remove(struct api_events *ev, struct ev_last *e)
{
	hmap_remove(&ev->by_id, hmap_hash_u64((uint64_t)e->id), e);
	if (e->prev)
		e->prev->next = e->next;
	else
		ev->first = e->next;
	if (e->next)
		e->next->prev = e->prev;
	else
		ev->last = e->prev;
	json_decref(e->json);
	free(e);
}

/* Compare the swarms and the node with the baseline, make an event per
 * difference and move the baseline on.  Returns the events' bytes, or NULL
 * when nothing changed.  The first round fills the baseline silently (a
 * new stream is sent a snapshot of it). */
static struct ev_block *run_round(struct api_events *ev, bool full)
{
	struct node *node = ev->node;
	struct evbuffer *round = ev->primed ? evbuffer_new() : NULL;
	bool quiet = !ev->primed;
	ev->round++;
	for (struct swarm *sw = node->swarms; sw; sw = sw->next) {
		if (sw->remove_pending)
			continue;
		/* Build and compare the JSON only of a swarm whose print moved,
		 * and of every swarm once in EVENTS_FULL_EVERY rounds (what no
		 * print holds); an idle swarm costs a print a round. */
		struct swarm_print print;
		swarm_json_print(sw, &print);
		struct ev_last *seen = last_find(ev, sw->id);
		if (seen && !full && (uint64_t)sw->id % EVENTS_FULL_EVERY != ev->round % EVENTS_FULL_EVERY &&
		    memcmp(&seen->print, &print, sizeof print) == 0) {
			seen->round = ev->round;
			continue;
		}
		json_t *j = swarm_to_json(node, sw, false);
		if (!j)
			continue;
		struct ev_last *e = seen;
		if (!e) {
			e = calloc(1, sizeof *e);
			if (!e || hmap_add(&ev->by_id, hmap_hash_u64((uint64_t)sw->id), e) != 0) {
				free(e);
				json_decref(j);
				continue; /* out of memory: added in a later round */
			}
			e->id = sw->id;
			e->json = j;
			e->prev = ev->last;
			if (ev->last)
				ev->last->next = e;
			else
				ev->first = e;
			ev->last = e;
			if (!quiet)
				emit(ev, round, "swarm-added", j);
		} else {
			json_t *d = quiet ? NULL : json_diff(e->json, j, "transfer");
			if (d) {
				json_t *data = json_pack("{s:I}", "id", (json_int_t)sw->id);
				json_object_update(data, d);
				emit(ev, round, "swarm-changed", data);
				json_decref(data);
				json_decref(d);
			}
			json_decref(e->json);
			e->json = j;
		}
		e->print = print;
		e->round = ev->round;
	}
	for (struct ev_last *e = ev->first, *next; e; e = next) {
		next = e->next;
		if (e->round == ev->round)
			continue;
		json_t *data = json_pack("{s:I}", "id", (json_int_t)e->id);
		emit(ev, round, "swarm-removed", data);
		json_decref(data);
		last_remove(ev, e);
	}
	json_t *n = node_json(node);
	if (n) {
		json_t *d = ev->node_last && !quiet ? json_diff(ev->node_last, n, NULL) : NULL;
		if (d)
			emit(ev, round, "node", d);
		json_decref(d);
		json_decref(ev->node_last);
		ev->node_last = n;
	}
	ev->primed = true;
	struct ev_block *b = round ? block_from(round) : NULL;
	if (round)
		evbuffer_free(round);
	return b;
}

/* The snapshot event of the baseline, with the id of the last event
 * before it; built once per seq and shared. */
static struct ev_block *snapshot(struct api_events *ev)
{
	if (ev->snapshot && ev->snapshot_seq == ev->seq)
		return ev->snapshot;
	block_unref(ev->snapshot);
	ev->snapshot = NULL;
	json_t *list = json_array();
	for (struct ev_last *e = ev->first; e; e = e->next)
		json_array_append(list, e->json);
	json_t *o = json_pack("{s:o,s:O}", "swarms", list, "node",
			      ev->node_last ? ev->node_last : json_null());
	char *js = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	if (!js)
		return NULL;
	char head[96];
	int hn = snprintf(head, sizeof head, "id: %s-%" PRIu64 "\nevent: snapshot\ndata: ", ev->run,
			  ev->seq);
	size_t jn = strlen(js);
	struct ev_block *b = block_new((size_t)hn + jn + 2);
	if (b) {
		memcpy(b->data, head, (size_t)hn);
		memcpy(b->data + hn, js, jn);
		memcpy(b->data + hn + jn, "\n\n", 2);
		ev->snapshot = b;
		ev->snapshot_seq = ev->seq;
	}
	free(js);
	return b;
}

/* The events after `seq` (which the caller checked is resumable). */
static struct ev_block *replay_after(struct api_events *ev, uint64_t seq)
{
	struct evbuffer *buf = evbuffer_new();
	if (!buf)
		return NULL;
	for (size_t i = 0; i < ev->ring_len; i++) {
		const struct ev_saved *e = &ev->ring[(ev->ring_head + i) % EVENTS_RING];
		if (e->seq > seq)
			evbuffer_add(buf, e->text, e->len);
	}
	struct ev_block *b = block_from(buf);
	evbuffer_free(buf);
	return b;
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
	struct api_events *ev = arg;
	(void)fd;
	(void)what;
	struct ev_block *b = run_round(ev, false);
	uint64_t now = now_ms();
	bool ping = now - ev->last_ping_ms >= EVENTS_PING_MS;
	if (ping)
		ev->last_ping_ms = now;
	size_t total = 0;
	for (struct ev_stream *s = ev->streams, *next; s; s = next) {
		next = s->next;
		if (s->by_session &&
		    !web_session_alive(api_web_auth(ev->node->api), s->session, now)) {
			log_info("API: closing an event stream whose session ended");
			stream_drop(s);
			continue;
		}
		if (b)
			stream_send(s, b);
		if (ping)
			stream_send_text(s, ": ping\n\n");
		size_t unsent = stream_unsent(s);
		if (unsent > EVENTS_MAX_UNSENT) {
			log_info("API: closing an event stream that is not read (%zu bytes unsent)",
				 unsent);
			ev->dropped++;
			stream_drop(s);
			continue;
		}
		total += unsent;
	}
	while (total > EVENTS_MAX_UNSENT_TOTAL) {
		struct ev_stream *most = NULL;
		size_t most_unsent = 0;
		for (struct ev_stream *s = ev->streams; s; s = s->next) {
			size_t u = stream_unsent(s);
			if (!most || u > most_unsent) {
				most = s;
				most_unsent = u;
			}
		}
		if (!most)
			break;
		log_info("API: closing an event stream: %zu bytes unsent over all streams, %zu on it",
			 total, most_unsent);
		ev->dropped++;
		stream_drop(most);
		total -= most_unsent < total ? most_unsent : total;
	}
	block_unref(b);
}

/* ------------------------------------------------------------ setup */

struct api_events *api_events_new(struct node *node)
{
	struct api_events *ev = calloc(1, sizeof *ev);
	if (!ev)
		return NULL;
	ev->node = node;
	ev->by_id = (struct hmap)HMAP_INIT;
	ev->tick = event_new(node->base, -1, EV_PERSIST, on_tick, ev);
	if (!ev->tick) {
		free(ev);
		return NULL;
	}
	uint8_t r[4];
	randombytes_buf(r, sizeof r);
	hex_encode(r, sizeof r, ev->run);
	return ev;
}

void api_events_free(struct api_events *ev)
{
	if (!ev)
		return;
	while (ev->streams)
		stream_drop(ev->streams);
	event_free(ev->tick);
	while (ev->first)
		last_remove(ev, ev->first);
	hmap_clear(&ev->by_id);
	json_decref(ev->node_last);
	for (size_t i = 0; i < ev->ring_len; i++)
		free(ev->ring[(ev->ring_head + i) % EVENTS_RING].text);
	block_unref(ev->snapshot);
	free(ev);
}

json_t *api_events_status_json(const struct api_events *ev)
{
	return json_pack("{s:i,s:I}", "streams", ev ? (int)ev->n_streams : 0, "dropped",
			 (json_int_t)(ev ? ev->dropped : 0));
}

/* Parse "RUN-SEQ" of this run; false for anything else. */
static bool parse_last_id(const struct api_events *ev, const char *s, uint64_t *seq_out)
{
	if (!s || strncmp(s, ev->run, 8) != 0 || s[8] != '-')
		return false;
	const char *p = s + 9;
	if (!*p || strlen(p) > 19)
		return false;
	uint64_t v = 0;
	for (; *p; p++) {
		if (*p < '0' || *p > '9')
			return false;
		v = v * 10 + (uint64_t)(*p - '0');
	}
	*seq_out = v;
	return true;
}

/* GET /api/v1/events */
static void handle_events(struct api_req *r)
{
	struct api_events *ev = api_events_of(r->api);
	struct evhttp_connection *evcon = evhttp_request_get_connection(r->req);
	if (!ev || !evcon) {
		api_reply_error(r, 500, "internal", "the event stream is not available");
		return;
	}
	if (ev->n_streams >= EVENTS_MAX_STREAMS) {
		api_reply_error(r, 503, "too_many_streams",
				"%d event streams are open already; close one", EVENTS_MAX_STREAMS);
		return;
	}
	struct ev_stream *s = calloc(1, sizeof *s);
	if (!s) {
		api_reply_error(r, 500, "internal", "out of memory");
		return;
	}
	/* With no stream open the baseline stopped moving: bring it up to
	 * date, so a resume gets what changed meanwhile and a snapshot is
	 * current.  With streams open it is at most a round old, and the
	 * next round's events bring this stream along with the others. */
	if (ev->n_streams == 0) {
		block_unref(run_round(ev, true)); /* in full: nothing moved for a while */
		ev->last_ping_ms = now_ms();
		struct timeval tv = { EVENTS_TICK_MS / 1000, (EVENTS_TICK_MS % 1000) * 1000 };
		event_add(ev->tick, &tv);
	}
	const char *last_id =
		evhttp_find_header(evhttp_request_get_input_headers(r->req), "Last-Event-ID");
	uint64_t seq = 0;
	bool resume = parse_last_id(ev, last_id, &seq) && seq <= ev->seq &&
		      seq + 1 >= ring_first(ev);
	s->ev = ev;
	s->req = r->req;
	s->evcon = evcon;
	if (r->session) {
		/* Opened with the cookie (on_request checked its token): it ends
		 * when the session does (logout, expiry, eviction). */
		s->by_session = true;
		memcpy(s->session, r->session->id, WEB_SECRET_LEN);
	}
	s->next = ev->streams;
	if (ev->streams)
		ev->streams->prev = s;
	ev->streams = s;
	ev->n_streams++;

	struct evkeyvalq *h = evhttp_request_get_output_headers(r->req);
	evhttp_add_header(h, "Content-Type", "text/event-stream");
	evhttp_add_header(h, "Cache-Control", "no-store"); /* on_request added the rest */
	/* The stream is quiet between events: evhttp's idle timeout (30 s,
	 * for every connection) must not end it. */
	evhttp_connection_set_timeout(evcon, 0);
	evhttp_connection_set_closecb(evcon, on_stream_closed, s);
	api_send_reply_start(r, 200, "OK");
	/* evhttp keeps reading while it writes, to see the client close, and
	 * keeps what it reads: a client that sends on would grow that buffer
	 * without end.  Past EVENTS_MAX_INPUT reading stops (a close is then
	 * noticed when a write fails, at the latest with the next ping). */
	struct bufferevent *bev = evhttp_connection_get_bufferevent(evcon);
	if (bev)
		bufferevent_setwatermark(bev, EV_READ, 0, EVENTS_MAX_INPUT);
	evutil_socket_t fd = bev ? bufferevent_getfd(bev) : -1;
	if (fd >= 0 && (event_base_get_features(ev->node->base) & EV_FEATURE_EARLY_CLOSE)) {
		s->hup = event_new(ev->node->base, fd, EV_CLOSED | EV_PERSIST, on_hup, s);
		if (s->hup)
			event_add(s->hup, NULL);
	}
	char retry[32];
	snprintf(retry, sizeof retry, "retry: %d\n\n", EVENTS_RETRY_MS);
	stream_send_text(s, retry);
	struct ev_block *b = resume ? replay_after(ev, seq) : snapshot(ev);
	if (b) {
		stream_send(s, b);
		if (resume)
			block_unref(b);
	}
}

const struct api_route api_event_routes[] = {
	{ API_GET, API_EVENTS_PATH, handle_events },
};
const size_t api_event_routes_count = sizeof api_event_routes / sizeof api_event_routes[0];
