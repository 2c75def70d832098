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

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "common/addr.h"
#include "common/log.h"
#include "common/util.h"
#include "node/conn.h"
#include "node/ratelimit.h"

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
			      const struct conn_ops *ops, void *lookup_arg)
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
	return hub;
}

void conn_hub_reap(struct conn_hub *hub)
{
	while (hub->dead) {
		struct conn *c = hub->dead;
		hub->dead = c->next;
		wire_decoder_destroy(&c->dec);
		crypt_free(c->crypt);
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
	conn_hub_reap(hub);
	event_free(hub->reaper);
	free(hub);
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

size_t conn_outbuf_len(const struct conn *c)
{
	return c->bev ? evbuffer_get_length(bufferevent_get_output(c->bev)) : 0;
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
	struct evbuffer *out = bufferevent_get_output(c->bev);
	if (evbuffer_get_length(out) > CONN_MAX_OUTBUF_HARD) {
		conn_close(c, "not reading what it asked for");
		*rc = -ENOBUFS;
		return NULL;
	}
	return out;
}

int conn_send_owned(struct conn *c, const void *msg, size_t len, void *owner)
{
	if (c->crypt) {
		int rc = conn_send(c, msg, len, NULL, 0);
		free(owner);
		return rc;
	}
	int rc;
	struct evbuffer *out = output_for_send(c, &rc);
	if (!out) {
		free(owner);
		return rc;
	}
	if (evbuffer_add_reference(out, msg, len, free_owner, owner) != 0) {
		free(owner);
		return -ENOMEM;
	}
	c->last_send_ms = now_ms();
	return 0;
}

int conn_send(struct conn *c, const void *a, size_t alen, const void *b, size_t blen)
{
	int rc;
	struct evbuffer *out = output_for_send(c, &rc);
	if (!out)
		return rc;
	if (!c->crypt) {
		if ((alen && evbuffer_add(out, a, alen) != 0) ||
		    (blen && evbuffer_add(out, b, blen) != 0))
			return -ENOMEM;
		c->last_send_ms = now_ms();
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

static void on_fast_read(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	struct conn_hub *hub = c->hub;
	(void)what;
	ssize_t n = recv(fd, hub->rbuf, sizeof hub->rbuf, 0);
	if (n < 0) {
		if (errno == EAGAIN || errno == EINTR)
			return;
		conn_close(c, "connection error");
		return;
	}
	if (n == 0) {
		conn_close(c, "closed by peer");
		return;
	}
	if (c->crypt)
		feed_crypt(c, hub->rbuf, (size_t)n);
	else
		feed_plain(c, hub->rbuf, (size_t)n);
}

void conn_set_fast_read(struct conn *c, bool fast)
{
	if (c->state == CONN_DEAD || !c->bev || fast == (c->fast_read != NULL))
		return;
	if (fast) {
		c->fast_read = event_new(c->hub->base, bufferevent_getfd(c->bev),
					 EV_READ | EV_PERSIST, on_fast_read, c);
		if (!c->fast_read || event_add(c->fast_read, NULL) != 0) {
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
		bufferevent_enable(c->bev, EV_READ);
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
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
		/* An encrypted hello to a client that only speaks plain BitTorrent
		 * is answered by a close: the owner may retry in plain. */
		bool refused = c->outgoing && c->state == CONN_CRYPT;
		close_as(c, (what & BEV_EVENT_EOF) ? "closed by peer" : "connection error", refused);
	}
}
