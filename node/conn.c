/* conn.c: one peer connection: TCP through a bufferevent, the transport
 * (plain BitTorrent or the shoal encrypted transport, told apart by the
 * first bytes), message framing through the wire decoder, and sending.
 * What the messages mean is the owner's business (node/conn.h). */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "common/addr.h"
#include "common/log.h"
#include "common/util.h"
#include "node/conn.h"
#include "node/ratelimit.h"
#include "node/workers.h"

enum conn_state {
	CONN_CONNECTING,   /* outgoing TCP connect in progress */
	CONN_SNIFFING,     /* incoming: waiting for the first bytes */
	CONN_CRYPT,        /* encrypted transport handshake */
	CONN_HANDSHAKE,    /* waiting for the BitTorrent handshake */
	CONN_OPEN,         /* the owner accepted the handshake */
	CONN_DEAD,         /* closed; freed by the reaper */
};

struct conn {
	struct conn_hub *hub;
	void *owner;
	enum conn_state state;
	bool outgoing;
	bool encrypt;                /* outgoing: start the encrypted transport */
	bool legacy_hello;           /* ... offering nothing (CONN_START_LEGACY) */
	uint8_t info_hash[CRYPT_INFO_HASH_LEN]; /* outgoing and encrypted: bound to */
	struct bufferevent *bev;
	struct event *fast_read;     /* our own reads, when no download limit applies */
	struct crypt *crypt;
	struct wire_decoder dec;
	struct ev_token_bucket_cfg *limit_cfg; /* its own buckets, owned */
	char name[64];               /* "1.2.3.4:5", for the log */
	uint64_t connected_ms, last_recv_ms, last_send_ms;
	struct conn *prev, *next;    /* in hub->live, or (next only) hub->dead */

	/* Sealing and opening on the hub's crypto threads (see "Crypto
	 * threads" below).  Loop-only fields, except what a job in flight
	 * lends its thread. */
	struct evbuffer *tx_plain;   /* plaintext queued behind tx_job, in order */
	struct evbuffer *rx_cipher;  /* ciphertext read while rx_job runs, in order */
	struct crypt_job *tx_job, *rx_job; /* in flight: at most one each way */
	size_t tx_inflight;          /* plaintext bytes tx_job is sealing */
	bool rx_paused;              /* reading stopped: rx_cipher is full */
	bool rx_eof;                 /* the peer closed; close once rx_cipher is opened */
	const char *rx_end_why;      /* ... with this reason (NULL: "closed by peer") */
};

struct conn_hub {
	struct event_base *base;
	struct ratelimit *limit;
	enum encryption_policy policy;
	enum crypt_ciphers ciphers;
	const struct conn_ops *ops;
	void *lookup_arg;
	struct event *reaper;
	struct conn *live, *dead;
	uint8_t scratch[CRYPT_MAX_PLAIN];    /* decrypted record */
	uint8_t sendplain[CRYPT_MAX_PLAIN];  /* plaintext being sealed */
	uint8_t rbuf[CONN_MAX_SINGLE_IO];    /* socket reads on the fast path */
	struct workers *crypto;              /* NULL: seal and open on the loop */
	int crypto_threads;
	uint64_t sealed_off_loop, opened_off_loop; /* plaintext bytes, for the API */
	uint64_t fast_read_bytes;            /* read past the bufferevents (on_fast_read) */
	uint64_t dropped_out_bytes;          /* queued to send, then dropped by a close */
};

static void on_read(struct bufferevent *bev, void *arg);
static void on_write(struct bufferevent *bev, void *arg);
static void on_event(struct bufferevent *bev, short what, void *arg);

static void reap_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	conn_hub_reap(arg);
}

struct conn_hub *conn_hub_new(struct event_base *base, struct ratelimit *limit,
			      enum encryption_policy policy, enum crypt_ciphers ciphers,
			      int crypto_threads, const struct conn_ops *ops, void *lookup_arg)
{
	struct conn_hub *hub = calloc(1, sizeof *hub);
	if (!hub)
		return NULL;
	hub->base = base;
	hub->limit = limit;
	hub->policy = policy;
	hub->ciphers = ciphers;
	hub->ops = ops;
	hub->lookup_arg = lookup_arg;
	hub->reaper = event_new(base, -1, 0, reap_cb, hub);
	if (!hub->reaper) {
		free(hub);
		return NULL;
	}
	if (crypto_threads > 0 && policy != ENCRYPTION_OFF) {
		hub->crypto = workers_new(base, crypto_threads);
		if (!hub->crypto) {
			event_free(hub->reaper);
			free(hub);
			return NULL;
		}
		hub->crypto_threads = crypto_threads;
	}
	return hub;
}

void conn_hub_reap(struct conn_hub *hub)
{
	struct conn **link = &hub->dead;
	while (*link) {
		struct conn *c = *link;
		if (c->tx_job || c->rx_job) { /* a crypto thread still holds it */
			link = &c->next;
			continue;
		}
		*link = c->next;
		wire_decoder_destroy(&c->dec);
		crypt_free(c->crypt);
		if (c->tx_plain)
			evbuffer_free(c->tx_plain);
		if (c->rx_cipher)
			evbuffer_free(c->rx_cipher);
		if (c->limit_cfg) /* its bufferevent dropped it in conn_close */
			ev_token_bucket_cfg_free(c->limit_cfg);
		free(c);
	}
}

void conn_hub_free(struct conn_hub *hub)
{
	if (!hub)
		return;
	while (hub->live)
		conn_close(hub->live, "shutting down");
	/* Joins the crypto threads and hands back every job still owed, so
	 * no closed connection is held any more. */
	workers_free(hub->crypto);
	hub->crypto = NULL;
	conn_hub_reap(hub);
	event_free(hub->reaper);
	free(hub);
}

void conn_hub_set_policy(struct conn_hub *hub, enum encryption_policy policy)
{
	hub->policy = policy;
}

int conn_hub_crypto_threads(const struct conn_hub *hub)
{
	return hub->crypto_threads;
}

void conn_hub_wire_bytes(const struct conn_hub *hub, uint64_t out[2])
{
	out[0] = out[1] = 0;
	if (!hub)
		return;
	if (hub->limit)
		ratelimit_totals(hub->limit, &out[0], &out[1]);
	out[0] += hub->fast_read_bytes;
	out[1] += hub->dropped_out_bytes;
}

void conn_hub_off_loop(const struct conn_hub *hub, uint64_t *sealed, uint64_t *opened)
{
	*sealed = hub->sealed_off_loop;
	*opened = hub->opened_off_loop;
}

static struct conn *conn_alloc(struct conn_hub *hub, const struct sockaddr *sa, socklen_t len,
			       bool outgoing, void *owner)
{
	(void)len;
	struct conn *c = calloc(1, sizeof *c);
	if (!c)
		return NULL;
	c->hub = hub;
	c->owner = owner;
	c->outgoing = outgoing;
	addr_format(sa, c->name, sizeof c->name);
	c->connected_ms = c->last_recv_ms = now_ms();
	wire_decoder_init(&c->dec, true);
	return c;
}

static int attach_bev(struct conn *c, int fd)
{
	struct conn_hub *hub = c->hub;
	c->bev = bufferevent_socket_new(hub->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (!c->bev)
		return -ENOMEM;
	bufferevent_setcb(c->bev, on_read, on_write, on_event, c);
	bufferevent_set_max_single_read(c->bev, CONN_MAX_SINGLE_IO);
	bufferevent_set_max_single_write(c->bev, CONN_MAX_SINGLE_IO);
	if (hub->limit)
		ratelimit_attach(hub->limit, c->bev);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	return 0;
}

static void link_live(struct conn *c)
{
	struct conn_hub *hub = c->hub;
	c->prev = NULL;
	c->next = hub->live;
	if (hub->live)
		hub->live->prev = c;
	hub->live = c;
}

static void discard(struct conn *c)
{
	if (c->bev)
		bufferevent_free(c->bev);
	wire_decoder_destroy(&c->dec);
	free(c);
}

struct conn *conn_accept(struct conn_hub *hub, int fd, const struct sockaddr *sa,
			 socklen_t len, void *owner)
{
	struct conn *c = conn_alloc(hub, sa, len, false, owner);
	if (!c) {
		evutil_closesocket(fd);
		return NULL;
	}
	if (attach_bev(c, fd) != 0) {
		evutil_closesocket(fd);
		discard(c);
		return NULL;
	}
	c->state = CONN_SNIFFING;
	link_live(c);
	return c;
}

struct conn *conn_connect(struct conn_hub *hub, const struct sockaddr *sa, socklen_t len,
			  enum conn_start start, const uint8_t info_hash[CRYPT_INFO_HASH_LEN],
			  void *owner)
{
	struct conn *c = conn_alloc(hub, sa, len, true, owner);
	if (!c)
		return NULL;
	if (attach_bev(c, -1) != 0) {
		discard(c);
		return NULL;
	}
	c->state = CONN_CONNECTING;
	c->encrypt = start != CONN_START_PLAIN;
	c->legacy_hello = start == CONN_START_LEGACY;
	if (c->encrypt)
		memcpy(c->info_hash, info_hash, CRYPT_INFO_HASH_LEN);
	/* libevent reports even an immediate refusal through on_event on a
	 * later turn, so no callback runs inside this call. */
	if (bufferevent_socket_connect(c->bev, (struct sockaddr *)sa, (int)len) != 0) {
		discard(c); /* frees the socket libevent made */
		return NULL;
	}
	link_live(c);
	return c;
}

/* Unsent bytes: the socket's output buffer, plus plaintext being sealed or
 * waiting to be. */
static size_t pending_out(const struct conn *c)
{
	size_t n = c->bev ? evbuffer_get_length(bufferevent_get_output(c->bev)) : 0;
	if (c->tx_plain)
		n += evbuffer_get_length(c->tx_plain);
	return n + c->tx_inflight;
}

size_t conn_outbuf_len(const struct conn *c)
{
	return pending_out(c);
}

void conn_set_write_lowmark(struct conn *c, size_t n)
{
	if (c->bev)
		bufferevent_setwatermark(c->bev, EV_WRITE, n, 0);
}

/* evbuffer cleanup for bytes that lie inside a malloc'd `owner`. */
static void free_owner(const void *data, size_t len, void *owner)
{
	(void)data;
	(void)len;
	free(owner);
}

/* ---- Crypto threads ---------------------------------------------------
 *
 * With a hub made with crypto threads, an established encrypted
 * connection's bulk sealing and opening runs on them, beside the loop:
 *   - Sending: a message of CONN_OFFLOAD_MIN bytes or more (a served
 *     block), or any message while a seal job is in flight, is queued as
 *     plaintext on c->tx_plain (a served block by reference: no copy).
 *     When no seal job is in flight, everything queued becomes one job;
 *     its records are appended to the socket's output buffer when it
 *     returns, and whatever was queued meanwhile becomes the next job.
 *     Small messages with nothing queued are sealed at once, on the loop.
 *   - Receiving: ciphertext read while an open job is in flight, or a read
 *     of CONN_OFFLOAD_MIN bytes or more, goes to c->rx_cipher; with no job
 *     in flight it all becomes one job, whose plaintext the loop then feeds
 *     to the wire decoder.  Reading pauses while CONN_RX_QUEUE_MAX bytes
 *     wait, and an EOF waits until what came before it is opened.
 * Contract: one seal job and one open job per connection at a time, so
 * records keep their order and each direction's cipher state (transfer/
 * crypt.h says the two halves are disjoint once established) has one user.
 * While a job is in flight its thread owns that half of c->crypt, the
 * job's input evbuffer's bytes (read only; the loop peeked its chains into
 * job->iov before submitting, and neither changes nor frees the evbuffer
 * until the job returns) and job->out; the thread calls no libevent
 * function and touches nothing else of the conn.  The hub's reaper does
 * not free a conn with a job in flight; a job that returns to a closed conn
 * is discarded. */

/* Below this a message or a read is sealed or opened on the loop: handing
 * it to a thread would cost more than the cipher. */
#define CONN_OFFLOAD_MIN 8192u
/* Ciphertext queued behind an open job before reading pauses.  A
 * connection then holds at most this plus one read queued, about as much
 * in the job out, and the job's plaintext (docs/architecture.md, "Memory
 * ceilings"); past it the bytes wait in the kernel's socket buffer. */
#define CONN_RX_QUEUE_MAX (1u << 20)

struct crypt_job {
	struct conn *c;
	bool ran;
	int rc;                      /* 0, or the crypt error */
	struct evbuffer *in;         /* plaintext to seal, or ciphertext to open */
	struct evbuffer_iovec *iov;  /* its chains */
	int n_iov;
	size_t in_len;
	uint8_t *out;                /* sealed records, or opened plaintext */
	size_t out_len, out_cap;
};

static void close_as(struct conn *c, const char *why, bool crypt_refused);
static void feed_plain(struct conn *c, const uint8_t *data, size_t len);
static void feed_crypt(struct conn *c, const uint8_t *data, size_t len);
static int start_seal_job(struct conn *c);
static void rx_kick(struct conn *c);
static void set_reading(struct conn *c);

static void job_free(struct crypt_job *j)
{
	if (!j)
		return;
	if (j->in)
		evbuffer_free(j->in); /* runs the owners' cleanups: loop thread */
	free(j->iov);
	free(j->out);
	free(j);
}

/* Move all of `from` into a new job.  NULL when out of memory (`from`
 * keeps its bytes). */
static struct crypt_job *job_new(struct conn *c, struct evbuffer *from)
{
	struct crypt_job *j = calloc(1, sizeof *j);
	if (!j)
		return NULL;
	j->c = c;
	j->in = evbuffer_new();
	if (!j->in || evbuffer_add_buffer(j->in, from) != 0)
		goto fail;
	j->in_len = evbuffer_get_length(j->in);
	j->n_iov = evbuffer_peek(j->in, -1, NULL, NULL, 0);
	j->iov = calloc((size_t)(j->n_iov > 0 ? j->n_iov : 1), sizeof *j->iov);
	if (!j->iov || evbuffer_peek(j->in, -1, NULL, j->iov, j->n_iov) != j->n_iov)
		goto fail;
	return j;
fail:
	if (j->in && evbuffer_get_length(j->in))
		evbuffer_prepend_buffer(from, j->in);
	job_free(j);
	return NULL;
}

/* Crypto thread: seal every chain of the job's plaintext into records. */
static void seal_work(void *arg)
{
	struct crypt_job *j = arg;
	j->ran = true;
	size_t records = 0;
	for (int i = 0; i < j->n_iov; i++)
		records += (j->iov[i].iov_len + CRYPT_MAX_PLAIN - 1) / CRYPT_MAX_PLAIN;
	j->out_cap = j->in_len + records * CRYPT_RECORD_OVERHEAD;
	j->out = malloc(j->out_cap ? j->out_cap : 1);
	if (!j->out) {
		j->rc = -ENOMEM;
		return;
	}
	for (int i = 0; i < j->n_iov; i++) {
		const uint8_t *p = j->iov[i].iov_base;
		size_t left = j->iov[i].iov_len;
		while (left > 0) {
			size_t n = left < CRYPT_MAX_PLAIN ? left : CRYPT_MAX_PLAIN, len = 0;
			int rc = crypt_seal(j->c->crypt, p, n, j->out + j->out_len, &len);
			if (rc < 0) {
				j->rc = rc;
				return;
			}
			j->out_len += len;
			p += n;
			left -= n;
		}
	}
}

/* Loop: a seal job came back. */
static void seal_done(void *arg)
{
	struct crypt_job *j = arg;
	struct conn *c = j->c;
	c->tx_job = NULL;
	c->tx_inflight = 0;
	if (c->state == CONN_DEAD || !j->ran) {
		job_free(j);
		if (c->state == CONN_DEAD && !c->rx_job)
			event_active(c->hub->reaper, EV_TIMEOUT, 0);
		return;
	}
	if (j->rc < 0) {
		char why[80];
		snprintf(why, sizeof why, "encrypted transport: %s", strerror(-j->rc));
		job_free(j);
		close_as(c, why, false);
		return;
	}
	struct evbuffer *out = bufferevent_get_output(c->bev);
	if (j->out_len && evbuffer_add_reference(out, j->out, j->out_len, free_owner, j->out) != 0) {
		job_free(j);
		close_as(c, "out of memory", false);
		return;
	}
	if (j->out_len)
		j->out = NULL; /* the output buffer frees it once sent */
	c->hub->sealed_off_loop += j->in_len;
	job_free(j);
	if (evbuffer_get_length(c->tx_plain))
		(void)start_seal_job(c); /* closes the connection when it fails */
}

/* Hand everything queued on tx_plain to a crypto thread.  Returns 0, or
 * -ENOBUFS after closing the connection (what conn_send promises when a
 * send closed it). */
static int start_seal_job(struct conn *c)
{
	struct crypt_job *j = job_new(c, c->tx_plain);
	if (!j) {
		close_as(c, "out of memory", false);
		return -ENOBUFS;
	}
	c->tx_job = j;
	c->tx_inflight = j->in_len;
	if (workers_submit(c->hub->crypto, seal_work, seal_done, j) != 0) {
		c->tx_job = NULL;
		c->tx_inflight = 0;
		job_free(j);
		close_as(c, "cannot queue sealing", false);
		return -ENOBUFS;
	}
	return 0;
}

/* Crypto thread: open the job's ciphertext, record after record. */
static void open_work(void *arg)
{
	struct crypt_job *j = arg;
	j->ran = true;
	j->out_cap = j->in_len + CRYPT_MAX_PLAIN;
	j->out = malloc(j->out_cap);
	if (!j->out) {
		j->rc = -ENOMEM;
		return;
	}
	for (int i = 0; i < j->n_iov; i++) {
		const uint8_t *cur = j->iov[i].iov_base, *end = cur + j->iov[i].iov_len;
		while (cur < end) {
			if (j->out_cap - j->out_len < CRYPT_MAX_PLAIN) {
				/* A record begun in an earlier job ends here, so this
				 * one's plaintext may outgrow its ciphertext. */
				uint8_t *grown = realloc(j->out, j->out_cap + CRYPT_MAX_PLAIN);
				if (!grown) {
					j->rc = -ENOMEM;
					return;
				}
				j->out = grown;
				j->out_cap += CRYPT_MAX_PLAIN;
			}
			size_t n = 0;
			int rc = crypt_feed(j->c->crypt, &cur, end, j->out + j->out_len, &n);
			if (rc < 0) {
				j->rc = rc;
				return;
			}
			if (rc == 1)
				j->out_len += n;
		}
	}
}

/* Loop: an open job came back: feed its plaintext on, then the next. */
static void open_done(void *arg)
{
	struct crypt_job *j = arg;
	struct conn *c = j->c;
	c->rx_job = NULL;
	if (c->state == CONN_DEAD || !j->ran) {
		job_free(j);
		if (c->state == CONN_DEAD && !c->tx_job)
			event_active(c->hub->reaper, EV_TIMEOUT, 0);
		return;
	}
	c->hub->opened_off_loop += j->out_len;
	/* What was opened before an error still counts, as on the loop. */
	if (j->out_len)
		feed_plain(c, j->out, j->out_len);
	if (c->state != CONN_DEAD && j->rc < 0) {
		char why[80];
		snprintf(why, sizeof why, "encrypted transport: %s", strerror(-j->rc));
		close_as(c, why, false);
	}
	job_free(j);
	if (c->state == CONN_DEAD)
		return;
	/* Kick first: the queue that paused reading may now be out as the next
	 * job, and reading can overlap with it. */
	rx_kick(c);
	if (c->state != CONN_DEAD && c->rx_paused && !c->rx_eof &&
	    evbuffer_get_length(c->rx_cipher) < CONN_RX_QUEUE_MAX) {
		c->rx_paused = false;
		set_reading(c);
	}
}

/* Open what rx_cipher holds: on the loop when it is small and nothing is
 * in flight, else on a crypto thread.  Closes on EOF once all is opened. */
static void rx_kick(struct conn *c)
{
	if (c->rx_job || c->state == CONN_DEAD)
		return;
	size_t n = evbuffer_get_length(c->rx_cipher);
	if (n >= CONN_OFFLOAD_MIN) {
		struct crypt_job *j = job_new(c, c->rx_cipher);
		if (!j) {
			close_as(c, "out of memory", false);
			return;
		}
		c->rx_job = j;
		if (workers_submit(c->hub->crypto, open_work, open_done, j) != 0) {
			c->rx_job = NULL;
			job_free(j);
			close_as(c, "cannot queue opening", false);
		}
		return;
	}
	while (c->state != CONN_DEAD && evbuffer_get_length(c->rx_cipher) > 0) {
		struct evbuffer_iovec v;
		if (evbuffer_peek(c->rx_cipher, -1, NULL, &v, 1) < 1 || v.iov_len == 0)
			break;
		feed_crypt(c, v.iov_base, v.iov_len);
		if (c->state == CONN_DEAD)
			return;
		evbuffer_drain(c->rx_cipher, v.iov_len);
	}
	if (c->rx_eof && c->state != CONN_DEAD)
		close_as(c, c->rx_end_why ? c->rx_end_why : "closed by peer", false);
}

/* Should bytes read from this connection go through rx_cipher? */
static bool rx_offloaded(const struct conn *c)
{
	return c->hub->crypto && c->crypt && c->state != CONN_CRYPT && c->state != CONN_SNIFFING &&
	       crypt_established(c->crypt);
}

/* Take `n` bytes just read for an offloaded connection (copied, or moved
 * from `src` when given). */
static void rx_queue(struct conn *c, const uint8_t *data, size_t n, struct evbuffer *src)
{
	if (!c->rx_cipher && !(c->rx_cipher = evbuffer_new())) {
		close_as(c, "out of memory", false);
		return;
	}
	int rc = src ? evbuffer_add_buffer(c->rx_cipher, src) : evbuffer_add(c->rx_cipher, data, n);
	if (rc != 0) {
		close_as(c, "out of memory", false);
		return;
	}
	if (!c->rx_paused && evbuffer_get_length(c->rx_cipher) >= CONN_RX_QUEUE_MAX) {
		c->rx_paused = true;
		set_reading(c);
	}
	rx_kick(c);
}

/* Seal one record of `n` plaintext bytes into a buffer of its own that the
 * output buffer takes by reference: no copy after sealing.  (Reserving
 * space in the evbuffer instead made libevent copy its last chain to keep
 * the reservation contiguous, which cost more than it saved.) */
static int seal_into(struct conn *c, struct evbuffer *out, const uint8_t *m, size_t n)
{
	uint8_t *rec = malloc(CRYPT_SEALED_MAX(n));
	if (!rec)
		return -ENOMEM;
	size_t len = 0;
	if (crypt_seal(c->crypt, m, n, rec, &len) != 0) {
		free(rec);
		return -EIO;
	}
	if (evbuffer_add_reference(out, rec, len, free_owner, rec) != 0) {
		free(rec);
		return -ENOMEM;
	}
	return 0;
}

/* The output buffer to queue on, or NULL (and *rc) when the connection is
 * closed or is dropped here.  Whatever we queue for a peer is bounded: one
 * that does not read its answers is dropped rather than allowed to grow
 * our memory. */
static struct evbuffer *output_for_send(struct conn *c, int *rc)
{
	if (c->state == CONN_DEAD || !c->bev) {
		*rc = -ENOTCONN;
		return NULL;
	}
	if (pending_out(c) > CONN_MAX_OUTBUF_HARD) {
		conn_close(c, "not reading what it asked for");
		*rc = -ENOBUFS;
		return NULL;
	}
	return bufferevent_get_output(c->bev);
}

/* Does this message go to a crypto thread (see "Crypto threads")?  Makes
 * tx_plain when it does.  *rc gets -ENOMEM when it cannot. */
static bool tx_offloaded(struct conn *c, size_t len, int *rc)
{
	*rc = 0;
	if (!c->hub->crypto || !crypt_established(c->crypt))
		return false;
	if (!c->tx_job && len < CONN_OFFLOAD_MIN &&
	    (!c->tx_plain || evbuffer_get_length(c->tx_plain) == 0))
		return false;
	if (!c->tx_plain && !(c->tx_plain = evbuffer_new())) {
		*rc = -ENOMEM;
		return false;
	}
	return true;
}

int conn_send_owned(struct conn *c, const void *msg, size_t len, void *owner)
{
	int rc;
	struct evbuffer *out = output_for_send(c, &rc);
	if (!out) {
		free(owner);
		return rc;
	}
	if (c->crypt) {
		if (!tx_offloaded(c, len, &rc)) {
			rc = rc ? rc : conn_send(c, msg, len, NULL, 0);
			free(owner);
			return rc;
		}
		out = c->tx_plain; /* sealed from the caller's block, no copy */
	}
	if (evbuffer_add_reference(out, msg, len, free_owner, owner) != 0) {
		free(owner);
		return -ENOMEM;
	}
	c->last_send_ms = now_ms();
	if (c->crypt && !c->tx_job)
		return start_seal_job(c);
	return 0;
}

int conn_send(struct conn *c, const void *a, size_t alen, const void *b, size_t blen)
{
	int rc;
	struct evbuffer *out = output_for_send(c, &rc);
	if (!out)
		return rc;
	rc = 0;
	bool queue = !c->crypt || tx_offloaded(c, alen + blen, &rc);
	if (rc)
		return rc;
	if (queue) {
		struct evbuffer *q = c->crypt ? c->tx_plain : out;
		if ((alen && evbuffer_add(q, a, alen) != 0) || (blen && evbuffer_add(q, b, blen) != 0)) {
			/* Half a message may be queued: it must never reach the
			 * peer, whose framing it would break. */
			close_as(c, "out of memory", false);
			return -ENOBUFS;
		}
		c->last_send_ms = now_ms();
		if (c->crypt && !c->tx_job)
			return start_seal_job(c);
		return 0;
	}
	/* Seal a || b into records of at most CRYPT_MAX_PLAIN bytes.  A message
	 * that is already one contiguous record (a served block: header and
	 * data share a buffer) is sealed straight from the caller's memory. */
	if (blen == 0 && alen <= CRYPT_MAX_PLAIN) {
		if (seal_into(c, out, a, alen) != 0)
			return -EIO;
		c->last_send_ms = now_ms();
		return 0;
	}
	uint8_t *plain = c->hub->sendplain;
	const uint8_t *parts[2] = { a, b };
	size_t lens[2] = { alen, blen };
	size_t fill = 0;
	for (int i = 0; i < 2; i++) {
		size_t off = 0;
		while (off < lens[i]) {
			size_t n = lens[i] - off;
			if (n > CRYPT_MAX_PLAIN - fill)
				n = CRYPT_MAX_PLAIN - fill;
			memcpy(plain + fill, parts[i] + off, n);
			fill += n;
			off += n;
			if (fill == CRYPT_MAX_PLAIN) {
				if (seal_into(c, out, plain, fill) != 0)
					return -EIO;
				fill = 0;
			}
		}
	}
	if (fill > 0 && seal_into(c, out, plain, fill) != 0)
		return -EIO;
	c->last_send_ms = now_ms();
	return 0;
}

/* Hand pending transport handshake bytes (hello, reply, finish) to the socket. */
static void flush_crypt_output(struct conn *c)
{
	size_t n;
	const uint8_t *out = crypt_output(c->crypt, &n);
	if (out && n) {
		bufferevent_write(c->bev, out, n);
		crypt_output_done(c->crypt);
	}
}

static void close_as(struct conn *c, const char *why, bool crypt_refused)
{
	if (c->state == CONN_DEAD)
		return;
	struct conn_hub *hub = c->hub;
	log_debug("peer %s: closed: %s", c->name, why);
	/* What was queued but never reaches the socket counts as handed to
	 * it: payload sent is counted when queued (node/engine_io.c), and the
	 * metrics' protocol bytes are the difference of the two. */
	hub->dropped_out_bytes += pending_out(c);
	c->state = CONN_DEAD;
	if (c->fast_read) {
		event_free(c->fast_read);
		c->fast_read = NULL;
	}
	if (c->bev) {
		/* Leave the rate-limit group and drop any per-connection bucket
		 * before freeing: libevent finalizes a bufferevent later, and a
		 * group that unsuspends its members in between would write on it. */
		bufferevent_disable(c->bev, EV_READ | EV_WRITE);
		bufferevent_set_rate_limit(c->bev, NULL);
		bufferevent_remove_from_rate_limit_group(c->bev);
		bufferevent_setcb(c->bev, NULL, NULL, NULL, NULL);
		bufferevent_free(c->bev);
		c->bev = NULL;
	}
	if (c->prev)
		c->prev->next = c->next;
	else
		hub->live = c->next;
	if (c->next)
		c->next->prev = c->prev;
	c->prev = NULL;
	c->next = hub->dead;
	hub->dead = c;
	event_active(hub->reaper, EV_TIMEOUT, 0);
	hub->ops->on_close(c->owner, why, crypt_refused);
}

void conn_close(struct conn *c, const char *why)
{
	close_as(c, why, false);
}

void conn_close_timeout(struct conn *c, const char *why)
{
	close_as(c, why, c->outgoing && c->state == CONN_CRYPT);
}

/* Decode plain BitTorrent bytes into messages and hand them on. */
static void feed_plain(struct conn *c, const uint8_t *data, size_t len)
{
	const uint8_t *cur = data, *end = data + len;
	const struct conn_ops *ops = c->hub->ops;
	while (c->state != CONN_DEAD) {
		struct wire_msg msg;
		int rc = wire_decode(&c->dec, &cur, end, &msg);
		if (rc == 0)
			return;
		if (rc < 0) {
			char why[64];
			snprintf(why, sizeof why, "protocol error: %s", strerror(-rc));
			conn_close(c, why);
			return;
		}
		c->last_recv_ms = now_ms();
		if (msg.type == WIRE_HANDSHAKE) {
			rc = ops->on_handshake(c->owner, &msg.u.handshake);
			if (rc != 0) {
				conn_close(c, "handshake refused");
				return;
			}
			if (c->state != CONN_DEAD)
				c->state = CONN_OPEN;
			continue;
		}
		rc = ops->on_message(c->owner, &msg);
		if (rc < 0 && c->state != CONN_DEAD) {
			char why[64];
			snprintf(why, sizeof why, "bad message %d: %s", (int)msg.type, strerror(-rc));
			conn_close(c, why);
			return;
		}
	}
}

/* Decrypt records and feed their plaintext on. */
static void feed_crypt(struct conn *c, const uint8_t *data, size_t len)
{
	const uint8_t *cur = data, *end = data + len;
	struct conn_hub *hub = c->hub;
	while (c->state != CONN_DEAD) {
		size_t out_len = 0;
		int rc = crypt_feed(c->crypt, &cur, end, hub->scratch, &out_len);
		if (rc < 0) {
			char why[80];
			snprintf(why, sizeof why, "encrypted transport: %s", strerror(-rc));
			conn_close(c, why);
			return;
		}
		flush_crypt_output(c);
		if (crypt_established(c->crypt) && c->state == CONN_CRYPT) {
			c->state = CONN_HANDSHAKE;
			if (c->outgoing)
				hub->ops->on_ready(c->owner);
			if (c->state == CONN_DEAD)
				return;
		}
		if (rc == 0)
			return;
		if (out_len)
			feed_plain(c, hub->scratch, out_len);
	}
}

/* Incoming connection: decide the transport from the first bytes.  1 when
 * decided, 0 for more bytes, -1 when closed. */
static int sniff(struct conn *c, struct evbuffer *in)
{
	struct conn_hub *hub = c->hub;
	size_t have = evbuffer_get_length(in);
	size_t want = have < CONN_SNIFF_BYTES ? have : CONN_SNIFF_BYTES;
	const uint8_t *head = evbuffer_pullup(in, (ssize_t)want);
	enum crypt_class cls = crypt_classify(head, want);
	switch (cls) {
	case CRYPT_NEED_MORE:
		return 0;
	case CRYPT_PLAIN:
		if (hub->policy == ENCRYPTION_REQUIRE) {
			conn_close(c, "plain BitTorrent refused (encryption = require)");
			return -1;
		}
		c->state = CONN_HANDSHAKE;
		return 1;
	case CRYPT_ENCRYPTED:
		if (hub->policy == ENCRYPTION_OFF) {
			conn_close(c, "encrypted transport refused (encryption = off)");
			return -1;
		}
		if (crypt_new_responder(&c->crypt, NULL, 0, hub->ops->lookup_hello, hub->lookup_arg,
					hub->ciphers, NULL) != 0) {
			conn_close(c, "out of memory");
			return -1;
		}
		c->state = CONN_CRYPT;
		return 1;
	default:
		conn_close(c, "neither BitTorrent nor shoal transport");
		return -1;
	}
}

/* Is ciphertext of this connection still queued or being opened? */
static bool rx_waiting(const struct conn *c)
{
	return c->rx_job || (c->rx_cipher && evbuffer_get_length(c->rx_cipher));
}

/* The peer closed, or reading failed: close now, or, when ciphertext read
 * before that still waits to be opened, once it is (rx_kick). */
static void rx_end(struct conn *c, const char *why)
{
	if (!rx_waiting(c)) {
		conn_close(c, why);
		return;
	}
	c->rx_eof = true;
	c->rx_end_why = why;
	c->rx_paused = true;
	set_reading(c);
}

/* One recv of up to CONN_MAX_SINGLE_IO bytes into the end of `buf`
 * (evbuffer_read stops at 4 KiB a call in libevent 2.1). */
static ssize_t read_into(struct evbuffer *buf, evutil_socket_t fd)
{
	struct evbuffer_iovec v[2];
	int nv = evbuffer_reserve_space(buf, CONN_MAX_SINGLE_IO, v, 2);
	if (nv < 1) {
		errno = ENOMEM;
		return -1;
	}
	struct iovec iov[2];
	for (int i = 0; i < nv; i++)
		iov[i] = (struct iovec){ .iov_base = v[i].iov_base, .iov_len = v[i].iov_len };
	ssize_t n = readv(fd, iov, nv);
	size_t left = n > 0 ? (size_t)n : 0;
	for (int i = 0; i < nv; i++) {
		v[i].iov_len = left < v[i].iov_len ? left : v[i].iov_len;
		left -= v[i].iov_len;
	}
	int saved = errno;
	evbuffer_commit_space(buf, v, nv);
	errno = saved;
	return n;
}

static void on_fast_read(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	struct conn_hub *hub = c->hub;
	(void)what;
	bool queue = rx_offloaded(c);
	if (queue && !c->rx_cipher && !(c->rx_cipher = evbuffer_new())) {
		conn_close(c, "out of memory");
		return;
	}
	/* Offloaded: read straight into the queue, no copy. */
	ssize_t n = queue ? read_into(c->rx_cipher, fd) : recv(fd, hub->rbuf, sizeof hub->rbuf, 0);
	if (n <= 0) {
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		const char *why = n == 0 ? "closed by peer" : errno == ENOMEM ? "out of memory"
									  : "connection error";
		/* What was read before the end is still opened and acted on, as
		 * it would have been on the loop. */
		if (n == 0 || errno != ENOMEM)
			rx_end(c, why);
		else
			conn_close(c, why);
		return;
	}
	hub->fast_read_bytes += (uint64_t)n;
	if (queue)
		rx_queue(c, NULL, 0, NULL);
	else if (c->crypt)
		feed_crypt(c, hub->rbuf, (size_t)n);
	else
		feed_plain(c, hub->rbuf, (size_t)n);
}

/* Read or not: not while paused (rx_cipher full, or an EOF waiting), else
 * through our own event on the fast path or the bufferevent. */
static void set_reading(struct conn *c)
{
	if (c->state == CONN_DEAD || !c->bev)
		return;
	if (c->fast_read) {
		if (c->rx_paused)
			event_del(c->fast_read);
		else
			event_add(c->fast_read, NULL);
	} else if (c->rx_paused) {
		bufferevent_disable(c->bev, EV_READ);
	} else {
		bufferevent_enable(c->bev, EV_READ);
	}
}

void conn_set_fast_read(struct conn *c, bool fast)
{
	if (c->state == CONN_DEAD || !c->bev || fast == (c->fast_read != NULL))
		return;
	if (fast) {
		c->fast_read = event_new(c->hub->base, bufferevent_getfd(c->bev),
					 EV_READ | EV_PERSIST, on_fast_read, c);
		if (!c->fast_read || (!c->rx_paused && event_add(c->fast_read, NULL) != 0)) {
			if (c->fast_read)
				event_free(c->fast_read);
			c->fast_read = NULL;
			return;
		}
		/* Whatever the bufferevent already holds is still drained by
		 * on_read, which is running or about to run. */
		bufferevent_disable(c->bev, EV_READ);
	} else {
		event_free(c->fast_read);
		c->fast_read = NULL;
		set_reading(c);
	}
}

int conn_set_limit(struct conn *c, uint64_t up, uint64_t down)
{
	if (c->state == CONN_DEAD || !c->bev)
		return -ENOTCONN;
	struct ev_token_bucket_cfg *cfg = NULL;
	if (up || down) {
		cfg = ratelimit_conn_cfg(up, down);
		if (!cfg)
			return -ENOMEM;
	}
	/* libevent keeps a connection's tick count when its bucket is given a
	 * configuration with another tick length, and a longer tick would then
	 * wait several times its age for the next refill: clear the old one
	 * first, so the new one starts from a fresh count. */
	if (c->limit_cfg)
		bufferevent_set_rate_limit(c->bev, NULL);
	bufferevent_set_rate_limit(c->bev, cfg);
	if (c->limit_cfg)
		ev_token_bucket_cfg_free(c->limit_cfg); /* the connection no longer uses it */
	c->limit_cfg = cfg;
	return 0;
}

void conn_set_num_pieces(struct conn *c, uint32_t n)
{
	wire_decoder_set_num_pieces(&c->dec, n);
}

bool conn_encrypted(const struct conn *c)
{
	return c->crypt != NULL;
}

const char *conn_cipher_name(const struct conn *c)
{
	int cipher = c->crypt ? crypt_cipher(c->crypt) : -ENOTCONN;
	return cipher < 0 ? NULL : crypt_cipher_name((enum crypt_cipher)cipher);
}

bool conn_offered_ciphers(const struct conn *c)
{
	return c->crypt && crypt_offers_ciphers(c->crypt);
}

const uint8_t *conn_crypt_info_hash(const struct conn *c)
{
	return c->crypt ? crypt_info_hash(c->crypt) : NULL;
}

uint64_t conn_skipped(const struct conn *c)
{
	return c->dec.skipped;
}

uint64_t conn_connected_ms(const struct conn *c)
{
	return c->connected_ms;
}

uint64_t conn_last_recv_ms(const struct conn *c)
{
	return c->last_recv_ms;
}

uint64_t conn_last_send_ms(const struct conn *c)
{
	return c->last_send_ms;
}

static void on_read(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	if (c->state == CONN_SNIFFING && sniff(c, in) <= 0)
		return;
	while (c->state != CONN_DEAD && evbuffer_get_length(in) > 0) {
		if (rx_offloaded(c)) {
			rx_queue(c, NULL, 0, in); /* moves the chains, no copy */
			return;
		}
		struct evbuffer_iovec v;
		if (evbuffer_peek(in, -1, NULL, &v, 1) < 1 || v.iov_len == 0)
			break;
		size_t n = v.iov_len;
		if (c->crypt)
			feed_crypt(c, v.iov_base, n);
		else
			feed_plain(c, v.iov_base, n);
		if (c->state == CONN_DEAD)
			return; /* the bufferevent is gone */
		evbuffer_drain(in, n);
	}
}

static void on_write(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;
	(void)bev;
	if (c->state == CONN_OPEN)
		c->hub->ops->on_writable(c->owner);
}

static void start_transport(struct conn *c)
{
	if (c->encrypt) {
		enum crypt_ciphers ciphers = c->legacy_hello ? CRYPT_CIPHERS_XCHACHA_ONLY
							     : c->hub->ciphers;
		if (crypt_new_initiator(&c->crypt, c->info_hash, ciphers, NULL) != 0) {
			conn_close(c, "out of memory");
			return;
		}
		c->state = CONN_CRYPT;
		flush_crypt_output(c);
	} else {
		c->state = CONN_HANDSHAKE;
		c->hub->ops->on_ready(c->owner);
	}
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
	struct conn *c = arg;
	(void)bev;
	if (what & BEV_EVENT_CONNECTED) {
		c->connected_ms = c->last_recv_ms = now_ms();
		start_transport(c);
		return;
	}
	if ((what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) && (what & BEV_EVENT_READING) &&
	    rx_waiting(c)) {
		rx_end(c, (what & BEV_EVENT_EOF) ? "closed by peer" : "connection error");
		return;
	}
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
		/* An encrypted hello to a client that only speaks plain BitTorrent
		 * is answered by a close: the owner may retry in plain. */
		bool refused = c->outgoing && c->state == CONN_CRYPT;
		close_as(c, (what & BEV_EVENT_EOF) ? "closed by peer" : "connection error", refused);
	}
}
