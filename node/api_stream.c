/* api_stream.c: a file's bytes over HTTP, served while its swarm downloads
 * (GET|HEAD /api/v1/swarms/{id}/files/{n}/content), and the stream
 * addresses that let a player read one file without the bearer token
 * (/stream/TOKEN/NAME, made by POST .../files/{n}/stream, listed by
 * GET /api/v1/streams, revoked by DELETE /api/v1/streams/{id});
 * docs/streaming.md and docs/security.md, "Stream addresses".
 *
 * A reader.  Each GET of content is one struct stream_reader: the range
 * it still has to send [pos, end), its own read-only storage of the
 * swarm's files (opened for it, so nothing it does touches the engine's
 * descriptors or locks), one buffer of STREAM_CHUNK bytes and at most one
 * worker job reading into it.  Its loop is pump(): when the connection
 * holds less than STREAM_CHUNK unsent and the pieces at pos are verified
 * (swarms_piece_ready), a job reads up to STREAM_CHUNK of them from disk
 * (storage_read_fast, piece by piece); its completion hands the bytes to
 * evhttp and pumps again.  Waiting for a piece is a STREAM_POLL_MS timer;
 * waiting for the client to read is evhttp's "all written" callback (and
 * a slower timer, which also notices a removed swarm).  So a reader holds
 * at most about 3 x STREAM_CHUNK of memory, whatever the client does.  Its
 * position drives the engine's window (swarms_stream_window): set when it
 * starts and moved each half window (at most STREAM_WINDOW_STEP bytes),
 * dropped when it ends.
 *
 * Ownership and threading.  Everything but the read itself (read_work, on
 * a worker, touching only the reader's storage, buffer and plan) runs on
 * the loop.  struct api owns one struct api_streams, which owns the
 * readers (a list) and the stream tokens (a list).  A reader never keeps
 * a pointer to its swarm: it keeps the id and looks the swarm up each time
 * it acts, so a swarm removed meanwhile ends the reader, never a dangling
 * pointer.  A reader leaves the list in exactly one of three ways:
 *   - reader_finish, every byte queued: the reply ends, the connection
 *     lives on (keep-alive);
 *   - reader_abort, our side ends it (the swarm gone or paused, a read
 *     failed, its token revoked, the client stalled, api_streams_free):
 *     the close callback is cleared, then evhttp_connection_free frees the
 *     connection and its request (the client sees a short body);
 *   - on_conn_closed, evhttp's close callback, the client gone: after a
 *     client's EOF evhttp has detached the request, which is ours to free
 *     with evhttp_send_reply_end (as node/api_events.c does).
 * Then reader_release frees it, or, while its job runs, leaves it
 * orphaned (owner NULL) for read_done to free; nothing of an orphan points
 * at the api or the connection, so that may happen after api_free. */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>
#include <sodium.h>

#include "common/log.h"
#include "common/util.h"
#include "node/api_server.h"
#include "node/joincheck.h"
#include "node/node.h"
#include "node/swarm.h"
#include "node/swarms.h"
#include "node/workers.h"
#include "transfer/metainfo.h"
#include "transfer/storage.h"

/* Bytes one worker job reads, and the most the connection may hold unsent
 * before the next read starts. */
#define STREAM_CHUNK (128u << 10)
/* A job reads at most this many pieces (a chunk of small pieces is cut
 * short). */
#define STREAM_MAX_SEGS 16
/* Readers open at once, over every swarm (each holds up to ~3 chunks). */
#define STREAM_MAX_READERS 128
/* How often a reader waiting for a piece looks again, and one waiting for
 * its client to read (evhttp's callback wakes it sooner). */
#define STREAM_POLL_MS 25
#define STREAM_DRAIN_POLL_MS 250
/* A client that reads nothing for this long is dropped. */
#define STREAM_STALL_MS (10u * 60 * 1000)
/* The engine's window moves when the reader is this far past where it was
 * last set (the window is larger: docs/streaming.md). */
#define STREAM_WINDOW_STEP (4u << 20)
/* A window refused for lack of room (-ENOSPC) is asked again this often. */
#define STREAM_WINDOW_RETRY_MS 1000
/* What a reader's client may send meanwhile that is kept unread. */
#define STREAM_MAX_INPUT (64u << 10)
/* Stream tokens: how many at once, their life in seconds. */
#define STREAM_MAX_TOKENS 1024
#define STREAM_TTL_DEFAULT 86400
#define STREAM_TTL_MIN 1
#define STREAM_TTL_MAX 604800
#define STREAM_TOKEN_LEN 32
#define STREAM_TOKEN_B64 43 /* base64url of 32 bytes, no padding */
#define STREAM_ID_LEN 8     /* shown as 16 hex digits */

/* One stream address.  The token itself is never kept: only its digest,
 * compared in constant time. */
struct stream_token {
	char id[2 * STREAM_ID_LEN + 1];
	uint8_t digest[crypto_generichash_BYTES];
	int64_t swarm;
	size_t file;
	time_t expires_at;   /* wall clock, for the JSON */
	uint64_t expires_ms; /* monotonic, for the check */
	struct stream_token *next;
};

/* One piece's part of a read. */
struct stream_seg {
	uint32_t piece, off, len;
};

struct stream_reader {
	struct api_streams *owner; /* NULL: orphaned, freed when its job ends */
	struct node *node;
	struct evhttp_request *req;
	struct evhttp_connection *evcon;
	struct event *timer;
	struct event *hup;         /* the client hung up (EV_CLOSED), when the backend tells */
	struct stream_reader *prev, *next;
	uint64_t id;               /* the engine window's owner */
	int64_t swarm;
	size_t file;
	uint64_t base;             /* the file's first byte in the piece stream */
	uint64_t pos, end;         /* still to send: [pos, end) of the file */
	char token_id[2 * STREAM_ID_LEN + 1]; /* the stream address used, or "" */
	bool window;               /* the engine's window is wanted (the swarm was incomplete) */
	bool window_set;           /* ... and was set, at window_at */
	uint64_t window_at, window_retry_ms;
	uint64_t progress_ms;      /* when the client last took bytes */
	size_t unsent_seen;
	struct storage *st;        /* owned: read-only, this reader's own */
	uint8_t *buf;              /* owned: STREAM_CHUNK bytes */
	/* The job: set on the loop before it is submitted, read by the worker,
	 * its result read on the loop after. */
	bool job;
	struct stream_seg segs[STREAM_MAX_SEGS];
	size_t nsegs, job_len;
	int job_rc;
};

struct api_streams {
	struct node *node;
	struct stream_reader *readers;
	unsigned n_readers;
	uint64_t next_id;
	struct stream_token *tokens;
	unsigned n_tokens;
};

static void on_timer(evutil_socket_t fd, short what, void *arg);
static void on_hup(evutil_socket_t fd, short what, void *arg);
static void on_conn_closed(struct evhttp_connection *evcon, void *arg);
static void on_drained(struct evhttp_connection *evcon, void *arg);
static void pump(struct stream_reader *rd);
static bool token_alive(const struct api_streams *s, const char *id, uint64_t now);

/* ------------------------------------------------------------ helpers */

/* The swarm of id `id` unless it is gone or going. */
static struct swarm *swarm_by_id(struct node *node, int64_t id)
{
	struct swarm *sw = swarm_find_id(node, id);
	return sw && !sw->remove_pending ? sw : NULL;
}

/* A skipped file never made: nothing under the root is its (its bytes of
 * shared v1 pieces are in the daemon's part file), so nothing is read at
 * its name - whatever is there is the user's. */
static bool never_made(const struct swarm *sw, size_t file)
{
	return sw->file_access && sw->file_access[file] == STORAGE_SKIP;
}

static const char *base_name(const char *path)
{
	const char *slash = strrchr(path, '/');
	return slash ? slash + 1 : path;
}

/* Content-Type by the name's extension.  Nothing a browser would run in
 * our origin (HTML, SVG, XML, JavaScript) is named as such: those are
 * application/octet-stream like every unknown type. */
static const char *content_type(const char *name)
{
	static const struct {
		const char *ext, *type;
	} types[] = {
		{ "mp4", "video/mp4" },        { "m4v", "video/mp4" },
		{ "mkv", "video/x-matroska" }, { "webm", "video/webm" },
		{ "mov", "video/quicktime" },  { "avi", "video/x-msvideo" },
		{ "ts", "video/mp2t" },        { "ogv", "video/ogg" },
		{ "mp3", "audio/mpeg" },       { "m4a", "audio/mp4" },
		{ "aac", "audio/aac" },        { "ogg", "audio/ogg" },
		{ "oga", "audio/ogg" },        { "opus", "audio/ogg" },
		{ "flac", "audio/flac" },      { "wav", "audio/wav" },
		{ "mka", "audio/x-matroska" }, { "txt", "text/plain; charset=utf-8" },
		{ "srt", "text/plain; charset=utf-8" }, { "vtt", "text/vtt" },
		{ "pdf", "application/pdf" },  { "epub", "application/epub+zip" },
		{ "jpg", "image/jpeg" },       { "jpeg", "image/jpeg" },
		{ "png", "image/png" },        { "gif", "image/gif" },
		{ "webp", "image/webp" },      { "zip", "application/zip" },
	};
	const char *dot = strrchr(base_name(name), '.');
	if (dot && dot[1]) {
		for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
			if (strcasecmp(dot + 1, types[i].ext) == 0)
				return types[i].type;
	}
	return "application/octet-stream";
}

/* A decimal file index below `count` ("0", "12"; no sign, no leading
 * zero but "0"). */
static bool parse_index(const char *s, size_t count, size_t *out)
{
	size_t n = s ? strlen(s) : 0;
	if (n == 0 || n > 9 || strspn(s, "0123456789") != n || (s[0] == '0' && n > 1))
		return false;
	unsigned long v = strtoul(s, NULL, 10);
	if (v >= count)
		return false;
	*out = (size_t)v;
	return true;
}

/* A decimal number of up to 19 digits at *p, moving *p past it. */
static bool parse_u64(const char **p, uint64_t *out)
{
	const char *s = *p;
	size_t n = strspn(s, "0123456789");
	if (n == 0 || n > 19)
		return false;
	uint64_t v = 0;
	for (size_t i = 0; i < n; i++)
		v = v * 10 + (uint64_t)(s[i] - '0');
	*p = s + n;
	*out = v;
	return true;
}

enum range_kind { RANGE_NONE, RANGE_OK, RANGE_UNSATISFIABLE };

/* The Range header `h` (NULL: none) over a file of `size` bytes: the
 * first range of "bytes=a-b", "bytes=a-" or "bytes=-n" (a request for
 * several ranges gets its first), as [*first, *last] inclusive.  A header
 * that is not a byte range is ignored (RANGE_NONE: the whole file), as
 * RFC 9110 asks. */
static enum range_kind parse_range(const char *h, uint64_t size, uint64_t *first, uint64_t *last)
{
	if (!h)
		return RANGE_NONE;
	while (*h == ' ' || *h == '\t')
		h++;
	if (strncasecmp(h, "bytes", 5) != 0)
		return RANGE_NONE;
	h += 5;
	while (*h == ' ' || *h == '\t')
		h++;
	if (*h++ != '=')
		return RANGE_NONE;
	while (*h == ' ' || *h == '\t')
		h++;
	uint64_t a = 0, b = 0;
	bool has_a = false, has_b = false;
	if (*h != '-') {
		if (!parse_u64(&h, &a))
			return RANGE_NONE;
		has_a = true;
	}
	if (*h++ != '-')
		return RANGE_NONE;
	if (*h >= '0' && *h <= '9') {
		if (!parse_u64(&h, &b))
			return RANGE_NONE;
		has_b = true;
	}
	while (*h == ' ' || *h == '\t')
		h++;
	if (*h != '\0' && *h != ',')
		return RANGE_NONE;
	if (!has_a && !has_b)
		return RANGE_NONE;
	if (has_a && has_b && b < a)
		return RANGE_NONE;
	if (!has_a) { /* the last b bytes */
		if (b == 0 || size == 0)
			return RANGE_UNSATISFIABLE;
		*first = b >= size ? 0 : size - b;
		*last = size - 1;
		return RANGE_OK;
	}
	if (a >= size)
		return RANGE_UNSATISFIABLE;
	*first = a;
	*last = has_b && b < size ? b : size - 1;
	return RANGE_OK;
}

static size_t unsent(const struct stream_reader *rd)
{
	struct bufferevent *bev = rd->evcon ? evhttp_connection_get_bufferevent(rd->evcon) : NULL;
	return bev ? evbuffer_get_length(bufferevent_get_output(bev)) : 0;
}

static void arm(struct stream_reader *rd, unsigned ms)
{
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
	event_del(rd->timer);
	event_add(rd->timer, &tv);
}

/* ------------------------------------------------------------ readers */

static void reader_free(struct stream_reader *rd)
{
	storage_free(rd->st);
	free(rd->buf);
	free(rd);
}

/* Out of the list, its window dropped, its events freed, the connection's
 * callbacks of ours cleared.  The connection and request are left as they
 * are. */
static void reader_unlink(struct stream_reader *rd)
{
	struct api_streams *s = rd->owner;
	if (!s)
		return;
	if (rd->prev)
		rd->prev->next = rd->next;
	else
		s->readers = rd->next;
	if (rd->next)
		rd->next->prev = rd->prev;
	s->n_readers--;
	rd->owner = NULL;
	if (rd->window_set) {
		struct swarm *sw = swarm_by_id(rd->node, rd->swarm);
		if (sw)
			swarms_stream_window_drop(rd->node, sw, rd->id);
		rd->window_set = false;
	}
	if (rd->timer)
		event_free(rd->timer);
	rd->timer = NULL;
	if (rd->hup)
		event_free(rd->hup);
	rd->hup = NULL;
	if (rd->evcon)
		evhttp_connection_set_closecb(rd->evcon, NULL, NULL);
}

/* Free it now, or when its job ends. */
static void reader_release(struct stream_reader *rd)
{
	rd->req = NULL;
	rd->evcon = NULL;
	if (!rd->job)
		reader_free(rd);
}

static void reader_abort(struct stream_reader *rd, const char *why)
{
	log_info("API: a reader of swarm %" PRId64 " file %zu ends at byte %" PRIu64 " of %" PRIu64
		 ": %s", rd->swarm, rd->file, rd->pos, rd->end, why);
	struct evhttp_connection *evcon = rd->evcon;
	reader_unlink(rd);
	if (evcon)
		evhttp_connection_free(evcon); /* frees the request with it */
	reader_release(rd);
}

static void reader_finish(struct stream_reader *rd)
{
	struct evhttp_connection *evcon = rd->evcon;
	struct evhttp_request *req = rd->req;
	reader_unlink(rd);
	struct bufferevent *bev = evhttp_connection_get_bufferevent(evcon);
	if (bev)
		bufferevent_setwatermark(bev, EV_READ, 0, 0);
	evhttp_connection_set_timeout(evcon, API_HTTP_TIMEOUT_S);
	evhttp_send_reply_end(req); /* may free the connection (Connection: close) */
	reader_release(rd);
}

static void on_conn_closed(struct evhttp_connection *evcon, void *arg)
{
	struct stream_reader *rd = arg;
	(void)evcon;
	struct evhttp_request *req = rd->req;
	log_debug("API: the client of a reader of swarm %" PRId64 " went away at byte %" PRIu64,
		  rd->swarm, rd->pos);
	reader_unlink(rd);
	/* After a client's EOF evhttp has detached the request it was still
	 * sending, which is ours to free; otherwise the connection frees it
	 * as it goes. */
	if (req && !evhttp_request_get_connection(req))
		evhttp_send_reply_end(req);
	reader_release(rd);
}

static void on_hup(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	reader_abort(arg, "the client hung up");
}

static void on_drained(struct evhttp_connection *evcon, void *arg)
{
	struct stream_reader *rd = arg;
	(void)evcon;
	if (rd->owner && !rd->job)
		arm(rd, 0);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	pump(arg);
}

static void read_work(void *arg)
{
	struct stream_reader *rd = arg;
	size_t at = 0;
	rd->job_rc = 0;
	for (size_t i = 0; i < rd->nsegs; i++) {
		const struct stream_seg *g = &rd->segs[i];
		int rc = storage_read_fast(rd->st, g->piece, g->off, rd->buf + at, g->len);
		if (rc) {
			rd->job_rc = rc;
			break;
		}
		at += g->len;
	}
	rd->job_len = at;
}

static void read_done(void *arg)
{
	struct stream_reader *rd = arg;
	rd->job = false;
	if (!rd->owner) {
		reader_free(rd); /* orphaned while it read */
		return;
	}
	if (rd->job_rc) {
		char why[160];
		snprintf(why, sizeof why, "reading the file failed: %s", strerror(-rd->job_rc));
		reader_abort(rd, why);
		return;
	}
	struct evbuffer *b = evbuffer_new();
	if (!b || evbuffer_add(b, rd->buf, rd->job_len) != 0) {
		if (b)
			evbuffer_free(b);
		reader_abort(rd, "out of memory");
		return;
	}
	rd->pos += rd->job_len;
	/* The last bytes go without our callback: once the reply ends, evhttp
	 * must hold no pointer to this reader. */
	if (rd->pos < rd->end)
		evhttp_send_reply_chunk_with_cb(rd->req, b, on_drained, rd);
	else
		evhttp_send_reply_chunk(rd->req, b);
	evbuffer_free(b);
	pump(rd);
}

/* Plan the next read from rd->pos: the verified pieces there, up to
 * STREAM_CHUNK bytes.  Returns the bytes planned (0: the piece at pos is
 * not there yet). */
static size_t plan_read(struct stream_reader *rd, const struct swarm *sw)
{
	uint64_t plen = sw->meta->piece_length;
	uint64_t want = rd->end - rd->pos, got = 0;
	if (want > STREAM_CHUNK)
		want = STREAM_CHUNK;
	rd->nsegs = 0;
	while (got < want && rd->nsegs < STREAM_MAX_SEGS) {
		uint64_t at = rd->base + rd->pos + got;
		uint32_t piece = (uint32_t)(at / plen);
		uint64_t off = at % plen, len = plen - off;
		if (!swarms_piece_ready(sw, piece)) {
			/* Not verified whole: the blocks from `off` verified on
			 * their own (a v2 piece in the window), if any. */
			uint64_t end = off;
			while (end < plen &&
			       swarms_block_ready(sw, piece, (uint32_t)(end / XFER_BLOCK_SIZE)))
				end = (end / XFER_BLOCK_SIZE + 1) * XFER_BLOCK_SIZE;
			if (end <= off)
				break;
			len = (end < plen ? end : plen) - off;
		}
		if (len > want - got)
			len = want - got;
		rd->segs[rd->nsegs++] = (struct stream_seg){ piece, (uint32_t)off, (uint32_t)len };
		got += len;
		if (!swarms_piece_ready(sw, piece))
			break; /* the rest of the piece is not there yet */
	}
	return (size_t)got;
}

/* Set or move the engine's window to rd->pos when it is due. */
static void window_move(struct stream_reader *rd, struct swarm *sw, uint64_t now)
{
	if (!rd->window)
		return;
	/* Moved at half the window (at most STREAM_WINDOW_STEP): with small
	 * pieces a window is smaller than the step, and a reader moving it
	 * only every STREAM_WINDOW_STEP ran off its end. */
	uint64_t step = swarms_stream_window_span(sw) / 2;
	if (step == 0 || step > STREAM_WINDOW_STEP)
		step = STREAM_WINDOW_STEP;
	/* Also said again every STREAM_WINDOW_RETRY_MS: a reader whose window
	 * gave way to a newer reader's takes one back (engine.h). */
	bool due = rd->window_set ? rd->pos >= rd->window_at + step || now >= rd->window_retry_ms
				  : now >= rd->window_retry_ms;
	if (!due)
		return;
	int rc = swarms_stream_window(rd->node, sw, rd->id, rd->file, rd->pos);
	if (rc == 0 || rc != -ENOSPC) {
		/* Other refusals (a file skipped meanwhile) are not retried at
		 * this position: the pieces there may still come. */
		rd->window_set = rc == 0;
		rd->window_at = rd->pos;
		rd->window_retry_ms = now + STREAM_WINDOW_RETRY_MS;
		if (rc == 0)
			return;
		rd->window = false;
		log_debug("API: reader of swarm %" PRId64 ": no window (%s)", rd->swarm, strerror(-rc));
		return;
	}
	rd->window_set = false;
	rd->window_retry_ms = now + STREAM_WINDOW_RETRY_MS;
}

static void pump(struct stream_reader *rd)
{
	if (!rd->owner || rd->job)
		return;
	struct swarm *sw = swarm_by_id(rd->node, rd->swarm);
	if (!sw || !sw->meta) {
		reader_abort(rd, "the swarm was removed");
		return;
	}
	if (rd->pos >= rd->end) {
		reader_finish(rd);
		return;
	}
	uint64_t now = now_ms();
	if (rd->token_id[0] && !token_alive(rd->owner, rd->token_id, now)) {
		reader_abort(rd, "its stream address expired");
		return;
	}
	size_t u = unsent(rd);
	if (u < rd->unsent_seen || u == 0)
		rd->progress_ms = now;
	rd->unsent_seen = u;
	if (u >= STREAM_CHUNK) {
		if (now - rd->progress_ms > STREAM_STALL_MS) {
			reader_abort(rd, "the client read nothing for 10 minutes");
			return;
		}
		arm(rd, STREAM_DRAIN_POLL_MS);
		return;
	}
	if (never_made(sw, rd->file)) {
		reader_abort(rd, "its file is skipped");
		return;
	}
	window_move(rd, sw, now);
	size_t n = plan_read(rd, sw);
	if (n == 0) {
		if (swarm_file_prio(sw, rd->file) == SWARM_PRIO_SKIP) {
			reader_abort(rd, "its file is skipped");
			return;
		}
		if (sw->state == SWARM_PAUSED || sw->state == SWARM_ERROR) {
			reader_abort(rd, sw->state == SWARM_PAUSED ? "the swarm is paused"
								   : "the swarm is in error");
			return;
		}
		arm(rd, STREAM_POLL_MS);
		return;
	}
	rd->job = true;
	if (workers_submit(rd->node->workers, read_work, read_done, rd) != 0) {
		rd->job = false;
		reader_abort(rd, "no worker to read with");
	}
}

/* ------------------------------------------------------------ serving */

/* Answer a GET or HEAD of file `file` of `sw` (the bearer's, or a stream
 * address's: `token_id`, else NULL). */
static void serve_content(struct api_req *r, struct swarm *sw, size_t file, const char *token_id)
{
	struct api_streams *s = api_streams_of(r->api);
	const struct metainfo *mi = sw->meta;
	bool head = evhttp_request_get_command(r->req) == EVHTTP_REQ_HEAD;
	if (never_made(sw, file)) {
		api_reply_error(r, 409, "file_skipped",
				"file %zu is skipped and not on disk: set its priority to download it "
				"first (shoal files %" PRId64 " --set %zu=normal)",
				file, sw->id, file);
		return;
	}
	const struct metainfo_file *mf = &mi->files[file];
	uint64_t size = mf->size, first = 0, last = size ? size - 1 : 0;
	struct evkeyvalq *in = evhttp_request_get_input_headers(r->req);
	struct evkeyvalq *out = evhttp_request_get_output_headers(r->req);
	enum range_kind range = parse_range(evhttp_find_header(in, "Range"), size, &first, &last);
	char v[96];
	evhttp_add_header(out, "Accept-Ranges", "bytes");
	if (range == RANGE_UNSATISFIABLE) {
		snprintf(v, sizeof v, "bytes */%" PRIu64, size);
		evhttp_add_header(out, "Content-Range", v);
		api_reply_error(r, 416, "range_not_satisfiable",
				"the range is outside the file's %" PRIu64 " bytes", size);
		return;
	}
	uint64_t len = size ? last - first + 1 : 0;
	if (!s || (!head && len && s->n_readers >= STREAM_MAX_READERS)) {
		api_reply_error(r, 503, "too_many_streams",
				"%d readers are open already; close one", STREAM_MAX_READERS);
		return;
	}
	bool all_ready = true;
	uint32_t p0 = 0, p1 = 0;
	if (len && swarm_file_pieces(sw, file, first, len, &p0, &p1) == 0) {
		for (uint32_t p = p0; p <= p1 && all_ready; p++)
			all_ready = swarms_piece_ready(sw, p);
	}
	if (!all_ready && (sw->state == SWARM_PAUSED || sw->state == SWARM_ERROR)) {
		api_reply_error(r, 409, "not_downloading",
				"the swarm is %s and this range is not all downloaded yet%s",
				swarm_state_name(sw->state),
				sw->state == SWARM_PAUSED ? ": resume it first" : "");
		return;
	}
	/* The window first: it says whether the file is wanted at all. */
	uint64_t id = ++s->next_id;
	bool window = false;
	if (!head && !all_ready) {
		int rc = swarms_stream_window(r->node, sw, id, file, first);
		if (rc == -EPERM) {
			api_reply_error(r, 409, "file_skipped",
					"file %zu is skipped: set its priority to download it first",
					file);
			return;
		}
		window = rc == 0;
	}

	/* A GET with bytes to send gets a reader, with storage of its own:
	 * every file read-only (no access array), so it never writes nor
	 * creates anything. */
	struct stream_reader *rd = NULL;
	struct evhttp_connection *evcon = evhttp_request_get_connection(r->req);
	if (!head && len) {
		struct join_layout layout = { 0 };
		int rc = -ENOMEM;
		rd = calloc(1, sizeof *rd);
		if (evcon && rd && (rd->buf = malloc(STREAM_CHUNK)) &&
		    (rd->timer = event_new(r->node->base, -1, 0, on_timer, rd)) &&
		    (rc = join_layout_init(&layout, mi, sw->role == SWARM_ROLE_JOIN, NULL)) == 0)
			rc = join_layout_storage(&layout, sw->root, 1, &rd->st);
		join_layout_destroy(&layout);
		if (rc || !evcon) {
			if (window)
				swarms_stream_window_drop(r->node, sw, id);
			if (rd && rd->timer)
				event_free(rd->timer);
			if (rd)
				reader_free(rd);
			api_reply_error(r, 500, "internal", "cannot open the swarm's files: %s",
					strerror(rc ? -rc : ENOTCONN));
			return;
		}
	}

	/* Everything but the bytes is known: the headers. */
	evhttp_remove_header(out, "Content-Security-Policy");
	/* A file is data, never a page of ours: sandboxed, media only. */
	evhttp_add_header(out, "Content-Security-Policy",
			  "sandbox; default-src 'none'; media-src 'self'; img-src 'self'; "
			  "style-src 'unsafe-inline'");
	evhttp_add_header(out, "Content-Type", content_type(mf->path));
	evhttp_add_header(out, "Cache-Control", "no-store");
	snprintf(v, sizeof v, "%" PRIu64, len);
	evhttp_add_header(out, "Content-Length", v);
	int status = range == RANGE_OK ? 206 : 200;
	if (range == RANGE_OK) {
		snprintf(v, sizeof v, "bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64, first, last, size);
		evhttp_add_header(out, "Content-Range", v);
	}
	if (!rd) { /* HEAD, or nothing to send */
		if (window)
			swarms_stream_window_drop(r->node, sw, id);
		api_send_reply(r, status, NULL, NULL);
		return;
	}

	rd->owner = s;
	rd->node = r->node;
	rd->req = r->req;
	rd->evcon = evcon;
	rd->id = id;
	rd->swarm = sw->id;
	rd->file = file;
	rd->base = mf->offset;
	rd->pos = first;
	rd->end = first + len;
	rd->window = !all_ready;
	rd->window_set = window;
	rd->window_at = first;
	rd->progress_ms = now_ms();
	rd->window_retry_ms = rd->progress_ms + STREAM_WINDOW_RETRY_MS;
	snprintf(rd->token_id, sizeof rd->token_id, "%s", token_id ? token_id : "");
	rd->next = s->readers;
	if (s->readers)
		s->readers->prev = rd;
	s->readers = rd;
	s->n_readers++;

	/* The body may take long (pieces still to come, a player that reads
	 * as it plays): evhttp's idle timeout must not end it.  A client that
	 * stops reading for good is dropped after STREAM_STALL_MS. */
	evhttp_connection_set_timeout(evcon, 0);
	evhttp_connection_set_closecb(evcon, on_conn_closed, rd);
	api_send_reply_start(r, status, NULL);
	/* evhttp reads on while it writes (to see a close) and keeps what it
	 * reads: bounded here, and the hang-up is then seen by EV_CLOSED. */
	struct bufferevent *bev = evhttp_connection_get_bufferevent(evcon);
	if (bev)
		bufferevent_setwatermark(bev, EV_READ, 0, STREAM_MAX_INPUT);
	evutil_socket_t fd = bev ? bufferevent_getfd(bev) : -1;
	if (fd >= 0 && (event_base_get_features(r->node->base) & EV_FEATURE_EARLY_CLOSE)) {
		rd->hup = event_new(r->node->base, fd, EV_CLOSED | EV_PERSIST, on_hup, rd);
		if (rd->hup)
			event_add(rd->hup, NULL);
	}
	pump(rd);
}

/* The swarm of r->param and the file of r->param2, or NULL after a reply
 * (404 unknown swarm or file, 409 no_metadata). */
static struct swarm *file_or_error(struct api_req *r, size_t *file_out)
{
	struct swarm *sw = api_swarm_or_404(r);
	if (!sw)
		return NULL;
	if (!sw->meta) {
		api_reply_error(r, 409, "no_metadata",
				"swarm %" PRId64 " has no metadata yet: its files are not known",
				sw->id);
		return NULL;
	}
	if (!parse_index(r->param2, sw->meta->file_count, file_out)) {
		api_reply_error(r, 404, "not_found", "swarm %" PRId64 " has no file %s (0..%zu)",
				sw->id, r->param2 ? r->param2 : "?", sw->meta->file_count - 1);
		return NULL;
	}
	return sw;
}

/* GET|HEAD /api/v1/swarms/{id}/files/{n}/content */
static void handle_content(struct api_req *r)
{
	size_t file;
	struct swarm *sw = file_or_error(r, &file);
	if (sw)
		serve_content(r, sw, file, NULL);
}

/* ------------------------------------------------------------ tokens */

static void token_digest(const uint8_t token[STREAM_TOKEN_LEN], uint8_t out[crypto_generichash_BYTES])
{
	crypto_generichash(out, crypto_generichash_BYTES, token, STREAM_TOKEN_LEN, NULL, 0);
}

/* Forget the tokens that expired. */
/* Readers opened with stream address `id` end now: it was revoked or it
 * expired (the address's limits hold for a reader already open too). */
static void end_token_readers(struct api_streams *s, const char *id, const char *why)
{
	for (struct stream_reader *rd = s->readers, *next; rd; rd = next) {
		next = rd->next;
		if (strcmp(rd->token_id, id) == 0)
			reader_abort(rd, why);
	}
}

static void tokens_prune(struct api_streams *s, uint64_t now)
{
	for (struct stream_token **pp = &s->tokens; *pp;) {
		struct stream_token *t = *pp;
		if (now < t->expires_ms) {
			pp = &t->next;
			continue;
		}
		*pp = t->next;
		s->n_tokens--;
		end_token_readers(s, t->id, "its stream address expired");
		sodium_memzero(t, sizeof *t);
		free(t);
	}
}

/* Is stream address `id` still good? */
static bool token_alive(const struct api_streams *s, const char *id, uint64_t now)
{
	for (const struct stream_token *t = s->tokens; t; t = t->next)
		if (strcmp(t->id, id) == 0)
			return now < t->expires_ms;
	return false;
}

static void iso_time(time_t t, char out[32])
{
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static json_t *token_json(struct api_streams *s, const struct stream_token *t)
{
	char when[32];
	iso_time(t->expires_at, when);
	unsigned readers = 0;
	for (const struct stream_reader *rd = s->readers; rd; rd = rd->next)
		readers += strcmp(rd->token_id, t->id) == 0;
	struct swarm *sw = swarm_by_id(s->node, t->swarm);
	const char *path = sw && sw->meta && t->file < sw->meta->file_count
				   ? sw->meta->files[t->file].path
				   : NULL;
	return json_pack("{s:s,s:I,s:I,s:s?,s:s,s:i}", "id", t->id, "swarm", (json_int_t)t->swarm,
			 "file", (json_int_t)t->file, "path", path, "expires_at", when, "readers",
			 (int)readers);
}

/* POST /api/v1/swarms/{id}/files/{n}/stream {"ttl": SECONDS} */
static void handle_stream_new(struct api_req *r)
{
	struct api_streams *s = api_streams_of(r->api);
	size_t file;
	struct swarm *sw = file_or_error(r, &file);
	if (!sw)
		return;
	if (swarm_file_prio(sw, file) == SWARM_PRIO_SKIP) {
		api_reply_error(r, 409, "file_skipped",
				"file %zu is skipped: set its priority to download it first "
				"(shoal files %" PRId64 " --set %zu=normal)",
				file, sw->id, file);
		return;
	}
	json_int_t ttl = STREAM_TTL_DEFAULT;
	if (r->body) {
		const char *k;
		json_t *v;
		json_object_foreach(r->body, k, v) {
			if (strcmp(k, "ttl") != 0) {
				api_reply_error(r, 400, "bad_request", "unknown field \"%s\" (only \"ttl\")",
						k);
				return;
			}
			if (!json_is_integer(v) || json_integer_value(v) < STREAM_TTL_MIN ||
			    json_integer_value(v) > STREAM_TTL_MAX) {
				api_reply_error(r, 400, "bad_request",
						"\"ttl\" must be whole seconds, %d to %d", STREAM_TTL_MIN,
						STREAM_TTL_MAX);
				return;
			}
			ttl = json_integer_value(v);
		}
	}
	uint64_t now = now_ms();
	tokens_prune(s, now);
	if (s->n_tokens >= STREAM_MAX_TOKENS) {
		api_reply_error(r, 409, "too_many_tokens",
				"%d stream addresses exist already: revoke some (DELETE "
				"/api/v1/streams/ID)",
				STREAM_MAX_TOKENS);
		return;
	}
	struct stream_token *t = calloc(1, sizeof *t);
	const char *name = base_name(sw->meta->files[file].path);
	char *enc = evhttp_uriencode(name, -1, 0);
	if (!t || !enc) {
		free(t);
		free(enc);
		api_reply_error(r, 500, "internal", "out of memory");
		return;
	}
	uint8_t token[STREAM_TOKEN_LEN], idb[STREAM_ID_LEN];
	char b64[STREAM_TOKEN_B64 + 1];
	randombytes_buf(token, sizeof token);
	randombytes_buf(idb, sizeof idb);
	sodium_bin2base64(b64, sizeof b64, token, sizeof token,
			  sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	token_digest(token, t->digest);
	sodium_memzero(token, sizeof token);
	hex_encode(idb, sizeof idb, t->id);
	t->swarm = sw->id;
	t->file = file;
	t->expires_ms = now + (uint64_t)ttl * 1000;
	t->expires_at = time(NULL) + (time_t)ttl;
	t->next = s->tokens;
	s->tokens = t;
	s->n_tokens++;
	char host[128];
	api_page_host(r->api, host, sizeof host);
	size_t url_len = strlen(host) + strlen(enc) + sizeof b64 + 32;
	char *url = malloc(url_len);
	if (url)
		snprintf(url, url_len, "http://%s" API_STREAM_PREFIX "%s/%s", host, b64, enc);
	json_t *j = token_json(s, t);
	json_object_del(j, "readers");
	json_object_set_new(j, "url", url ? json_string(url) : json_null());
	sodium_memzero(b64, sizeof b64);
	if (url)
		sodium_memzero(url, strlen(url));
	free(url);
	free(enc);
	log_info("API: stream address %s for swarm %" PRId64 " file %zu, %lld s", t->id, sw->id,
		 file, (long long)ttl);
	api_reply(r, 201, j);
}

/* GET /api/v1/streams */
static void handle_streams_list(struct api_req *r)
{
	struct api_streams *s = api_streams_of(r->api);
	tokens_prune(s, now_ms());
	json_t *list = json_array();
	for (const struct stream_token *t = s->tokens; t; t = t->next)
		json_array_append_new(list, token_json(s, t));
	api_reply(r, 200, json_pack("{s:o}", "streams", list));
}

/* DELETE /api/v1/streams/{id}: the address stops working, and the
 * readers opened with it end now. */
static void handle_stream_delete(struct api_req *r)
{
	struct api_streams *s = api_streams_of(r->api);
	tokens_prune(s, now_ms());
	for (struct stream_token **pp = &s->tokens; *pp; pp = &(*pp)->next) {
		struct stream_token *t = *pp;
		if (strcmp(t->id, r->param) != 0)
			continue;
		*pp = t->next;
		s->n_tokens--;
		end_token_readers(s, t->id, "its stream address was revoked");
		log_info("API: stream address %s revoked", t->id);
		sodium_memzero(t, sizeof *t);
		free(t);
		api_send_reply(r, 204, "No Content", NULL);
		return;
	}
	api_reply_error(r, 404, "not_found", "no stream address %s (expired, revoked, or never made)",
			r->param);
}

bool api_stream_is_capability(const char *path)
{
	return strncmp(path, API_STREAM_PREFIX, strlen(API_STREAM_PREFIX)) == 0;
}

void api_stream_capability(struct api_req *r, const char *path)
{
	struct api_streams *s = api_streams_of(r->api);
	enum evhttp_cmd_type cmd = evhttp_request_get_command(r->req);
	if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_HEAD) {
		evhttp_add_header(evhttp_request_get_output_headers(r->req), "Allow", "GET, HEAD");
		api_reply_error(r, 405, "method_not_allowed",
				"a stream address answers only GET and HEAD");
		return;
	}
	const char *tok = path + strlen(API_STREAM_PREFIX);
	const char *slash = strchr(tok, '/');
	const char *name = slash ? slash + 1 : NULL;
	if (!slash || !*name || strchr(name, '/')) {
		api_reply_error(r, 404, "not_found",
				"a stream address is " API_STREAM_PREFIX "TOKEN/NAME (see `shoal stream`)");
		return;
	}
	uint8_t token[STREAM_TOKEN_LEN], digest[crypto_generichash_BYTES];
	size_t bin_len = 0;
	const struct stream_token *t = NULL;
	if (s && (size_t)(slash - tok) == STREAM_TOKEN_B64 &&
	    sodium_base642bin(token, sizeof token, tok, STREAM_TOKEN_B64, NULL, &bin_len, NULL,
			      sodium_base64_VARIANT_URLSAFE_NO_PADDING) == 0 &&
	    bin_len == sizeof token) {
		token_digest(token, digest);
		tokens_prune(s, now_ms());
		/* Every token is compared (no early exit), each in constant time. */
		for (const struct stream_token *c = s->tokens; c; c = c->next)
			if (sodium_memcmp(c->digest, digest, sizeof digest) == 0)
				t = c;
	}
	sodium_memzero(token, sizeof token);
	if (!t) {
		if (api_auth_failed(r))
			return;
		api_reply_error(r, 403, "forbidden",
				"this stream address is unknown, expired or revoked (a restart of "
				"the daemon revokes them all): make a new one with `shoal stream`");
		return;
	}
	struct swarm *sw = swarm_by_id(r->node, t->swarm);
	if (!sw || !sw->meta || t->file >= sw->meta->file_count) {
		api_reply_error(r, 404, "not_found", "the swarm of this stream address is gone");
		return;
	}
	/* The name is the file's (percent-decoded): an address names one file. */
	size_t n = 0;
	char *dec = evhttp_uridecode(name, 0, &n);
	const char *want = base_name(sw->meta->files[t->file].path);
	bool same = dec && n == strlen(dec) && strcmp(dec, want) == 0;
	free(dec);
	if (!same) {
		api_reply_error(r, 404, "not_found", "this stream address names another file");
		return;
	}
	serve_content(r, sw, t->file, t->id);
}

/* ------------------------------------------------------------ setup */

struct api_streams *api_streams_new(struct node *node)
{
	struct api_streams *s = calloc(1, sizeof *s);
	if (s)
		s->node = node;
	return s;
}

void api_streams_free(struct api_streams *s)
{
	if (!s)
		return;
	while (s->readers)
		reader_abort(s->readers, "the daemon is stopping");
	while (s->tokens) {
		struct stream_token *t = s->tokens;
		s->tokens = t->next;
		sodium_memzero(t, sizeof *t);
		free(t);
	}
	free(s);
}

const struct api_route api_stream_routes[] = {
	{ API_GET_HEAD, "/api/v1/swarms/{id}/files/{n}/content", handle_content },
	{ API_POST, "/api/v1/swarms/{id}/files/{n}/stream", handle_stream_new },
	{ API_GET, "/api/v1/streams", handle_streams_list },
	{ API_DELETE, "/api/v1/streams/{id}", handle_stream_delete },
};
const size_t api_stream_routes_count = sizeof api_stream_routes / sizeof api_stream_routes[0];
