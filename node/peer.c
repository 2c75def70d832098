/* peer.c: one peer connection: TCP through a bufferevent, the transport
 * (plain BitTorrent or the shoal encrypted transport, told apart by the first
 * bytes), message framing through the wire decoder, and sending.  What the
 * messages mean is engine.c's business. */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "common/addr.h"
#include "common/log.h"
#include "common/util.h"
#include "node/engine-internal.h"
#include "node/ratelimit.h"
#include "node/node.h"
#include "node/swarm.h"

static void on_read(struct bufferevent *bev, void *arg);
static void on_write(struct bufferevent *bev, void *arg);
static void on_event(struct bufferevent *bev, short what, void *arg);

void peer_format_addr(const struct sockaddr *sa, char *out, size_t len)
{
	addr_format(sa, out, len);
}

static struct peer *peer_alloc(struct engine *eng, const struct sockaddr *sa, socklen_t len,
			       bool outgoing)
{
	struct peer *p = calloc(1, sizeof *p);
	if (!p)
		return NULL;
	p->eng = eng;
	p->uid = ++eng->next_uid;
	p->outgoing = outgoing;
	p->am_choking = true;
	p->peer_choking = true;
	memcpy(&p->addr, sa, len);
	p->addr_len = len;
	peer_format_addr(sa, p->name, sizeof p->name);
	p->connected_ms = p->last_recv_ms = now_ms();
	wire_decoder_init(&p->dec, true);
	return p;
}

static int peer_attach_bev(struct peer *p, int fd)
{
	struct engine *eng = p->eng;
	p->bev = bufferevent_socket_new(eng->node->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (!p->bev)
		return -ENOMEM;
	bufferevent_setcb(p->bev, on_read, on_write, on_event, p);
	/* libevent moves at most 16 KiB per read or write call by default: one
	 * block.  Bigger moves mean far fewer syscalls and wakeups. */
	bufferevent_set_max_single_read(p->bev, 256 * 1024);
	bufferevent_set_max_single_write(p->bev, 256 * 1024);
	/* Call on_write when the output drains to half the serving ceiling. */
	bufferevent_setwatermark(p->bev, EV_WRITE, PEER_MAX_OUTBUF / 2, 0);
	if (eng->limit)
		ratelimit_attach(eng->limit, p->bev);
	bufferevent_enable(p->bev, EV_READ | EV_WRITE);
	return 0;
}

struct peer *peer_new(struct engine *eng, int fd, const struct sockaddr *sa, socklen_t len,
		      bool outgoing)
{
	struct peer *p = peer_alloc(eng, sa, len, outgoing);
	if (!p) {
		evutil_closesocket(fd);
		return NULL;
	}
	if (peer_attach_bev(p, fd) != 0) {
		evutil_closesocket(fd);
		wire_decoder_destroy(&p->dec);
		free(p);
		return NULL;
	}
	p->state = PEER_SNIFFING;
	eng->n_peers++;
	return p;
}

struct peer *peer_connect(struct engine *eng, struct xfer *xf, const struct sockaddr_storage *ss,
			  socklen_t len, uint64_t known)
{
	struct peer *p = peer_alloc(eng, (const struct sockaddr *)ss, len, true);
	if (!p)
		return NULL;
	if (peer_attach_bev(p, -1) != 0) {
		wire_decoder_destroy(&p->dec);
		free(p);
		return NULL;
	}
	p->state = PEER_CONNECTING;
	p->xf = xf;
	p->known = known;
	p->next = xf->peers;
	xf->peers = p;
	xf->n_peers++;
	eng->n_peers++;
	if (bufferevent_socket_connect(p->bev, (const struct sockaddr *)ss, (int)len) != 0) {
		peer_close(p, "connect failed");
		return NULL;
	}
	return p;
}

size_t peer_outbuf_len(const struct peer *p)
{
	return p->bev ? evbuffer_get_length(bufferevent_get_output(p->bev)) : 0;
}

void peer_set_write_lowmark(struct peer *p, size_t n)
{
	if (p->bev)
		bufferevent_setwatermark(p->bev, EV_WRITE, n, 0);
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
static int seal_into(struct peer *p, struct evbuffer *out, const uint8_t *m, size_t n)
{
	uint8_t *rec = malloc(CRYPT_SEALED_LEN(n));
	if (!rec)
		return -ENOMEM;
	if (crypt_seal(p->crypt, m, n, rec) != 0) {
		free(rec);
		return -EIO;
	}
	if (evbuffer_add_reference(out, rec, CRYPT_SEALED_LEN(n), free_owner, rec) != 0) {
		free(rec);
		return -ENOMEM;
	}
	return 0;
}

/* The output buffer to queue on, or NULL (and *rc) when the peer is gone or
 * is dropped here.  Whatever we queue for a peer is bounded: one that does
 * not read its answers is dropped rather than allowed to grow our memory. */
static struct evbuffer *output_for_send(struct peer *p, int *rc)
{
	if (p->state == PEER_DEAD || !p->bev) {
		*rc = -ENOTCONN;
		return NULL;
	}
	struct evbuffer *out = bufferevent_get_output(p->bev);
	if (evbuffer_get_length(out) > PEER_MAX_OUTBUF_HARD) {
		peer_close(p, "not reading what it asked for");
		*rc = -ENOBUFS;
		return NULL;
	}
	return out;
}

int peer_send_owned(struct peer *p, const void *msg, size_t len, void *owner)
{
	if (p->crypt) {
		int rc = peer_send(p, msg, len, NULL, 0);
		free(owner);
		return rc;
	}
	int rc;
	struct evbuffer *out = output_for_send(p, &rc);
	if (!out) {
		free(owner);
		return rc;
	}
	if (evbuffer_add_reference(out, msg, len, free_owner, owner) != 0) {
		free(owner);
		return -ENOMEM;
	}
	p->last_send_ms = now_ms();
	return 0;
}

int peer_send(struct peer *p, const void *a, size_t alen, const void *b, size_t blen)
{
	int rc;
	struct evbuffer *out = output_for_send(p, &rc);
	if (!out)
		return rc;
	if (!p->crypt) {
		if ((alen && evbuffer_add(out, a, alen) != 0) ||
		    (blen && evbuffer_add(out, b, blen) != 0))
			return -ENOMEM;
		p->last_send_ms = now_ms();
		return 0;
	}
	/* Seal a || b into records of at most CRYPT_MAX_PLAIN bytes.  A message
	 * that is already one contiguous record (a served block: header and
	 * data share a buffer) is sealed straight from the caller's memory. */
	if (blen == 0 && alen <= CRYPT_MAX_PLAIN) {
		if (seal_into(p, out, a, alen) != 0)
			return -EIO;
		p->last_send_ms = now_ms();
		return 0;
	}
	uint8_t *plain = p->eng->sendplain;
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
				if (seal_into(p, out, plain, fill) != 0)
					return -EIO;
				fill = 0;
			}
		}
	}
	if (fill > 0 && seal_into(p, out, plain, fill) != 0)
		return -EIO;
	p->last_send_ms = now_ms();
	return 0;
}

/* Hand pending transport handshake bytes (hello, reply, finish) to the socket. */
static void flush_crypt_output(struct peer *p)
{
	size_t n;
	const uint8_t *out = crypt_output(p->crypt, &n);
	if (out && n) {
		bufferevent_write(p->bev, out, n);
		crypt_output_done(p->crypt);
	}
}

void peer_close(struct peer *p, const char *why)
{
	if (p->state == PEER_DEAD)
		return;
	log_debug("peer %s: closed: %s", p->name, why);
	engine_on_peer_gone(p);
	p->state = PEER_DEAD;
	if (p->fast_read) {
		event_free(p->fast_read);
		p->fast_read = NULL;
	}
	if (p->bev) {
		/* Leave the rate-limit group and drop any per-connection bucket
		 * before freeing: libevent finalizes a bufferevent later, and a
		 * group that unsuspends its members in between would write on it. */
		bufferevent_disable(p->bev, EV_READ | EV_WRITE);
		bufferevent_set_rate_limit(p->bev, NULL);
		bufferevent_remove_from_rate_limit_group(p->bev);
		bufferevent_setcb(p->bev, NULL, NULL, NULL, NULL);
		bufferevent_free(p->bev);
		p->bev = NULL;
	}
	p->eng->n_peers--;
	p->dead_next = p->eng->dead; /* p->next stays: a list walk may be on p */
	p->eng->dead = p;
	event_active(p->eng->reaper, EV_TIMEOUT, 0);
}

void engine_reap(struct engine *eng)
{
	while (eng->dead) {
		struct peer *p = eng->dead;
		eng->dead = p->dead_next;
		wire_decoder_destroy(&p->dec);
		crypt_free(p->crypt);
		if (p->limit_cfg) /* its bufferevent dropped it in peer_close */
			ev_token_bucket_cfg_free(p->limit_cfg);
		bitfield_destroy(&p->has);
		free(p->reqs);
		free(p->early_bitfield);
		free(p);
	}
}

/* Decode plain BitTorrent bytes into messages and hand them on. */
static void feed_plain(struct peer *p, const uint8_t *data, size_t len)
{
	const uint8_t *cur = data, *end = data + len;
	while (p->state != PEER_DEAD) {
		struct wire_msg msg;
		int rc = wire_decode(&p->dec, &cur, end, &msg);
		if (rc == 0)
			return;
		if (rc < 0) {
			char why[64];
			snprintf(why, sizeof why, "protocol error: %s", strerror(-rc));
			peer_close(p, why);
			return;
		}
		p->last_recv_ms = now_ms();
		if (msg.type == WIRE_HANDSHAKE) {
			rc = engine_on_handshake(p, &msg.u.handshake);
			if (rc != 0) {
				peer_close(p, rc == -EACCES ? "banned" : "handshake names no swarm we serve");
				return;
			}
			continue;
		}
		rc = engine_on_message(p, &msg);
		if (rc < 0 && p->state != PEER_DEAD) {
			char why[64];
			snprintf(why, sizeof why, "bad message %d: %s", (int)msg.type, strerror(-rc));
			peer_close(p, why);
			return;
		}
	}
}

/* Decrypt records and feed their plaintext on. */
static void feed_crypt(struct peer *p, const uint8_t *data, size_t len)
{
	const uint8_t *cur = data, *end = data + len;
	while (p->state != PEER_DEAD) {
		size_t out_len = 0;
		int rc = crypt_feed(p->crypt, &cur, end, p->eng->scratch, &out_len);
		if (rc < 0) {
			char why[80];
			snprintf(why, sizeof why, "encrypted transport: %s", strerror(-rc));
			peer_close(p, why);
			return;
		}
		flush_crypt_output(p);
		if (crypt_established(p->crypt) && p->state == PEER_CRYPT) {
			p->state = PEER_HANDSHAKE;
			p->encrypted = true;
			if (p->outgoing)
				peer_send_handshake(p);
		}
		if (rc == 0)
			return;
		if (out_len)
			feed_plain(p, p->eng->scratch, out_len);
	}
}

/* Incoming connection: decide the transport from the first bytes. */
static int sniff(struct peer *p, struct evbuffer *in)
{
	size_t have = evbuffer_get_length(in);
	size_t want = have < 32 ? have : 32;
	const uint8_t *head = evbuffer_pullup(in, (ssize_t)want);
	enum crypt_class cls = crypt_classify(head, want);
	enum encryption_policy pol = p->eng->node->cfg.encryption;
	switch (cls) {
	case CRYPT_NEED_MORE:
		return 0;
	case CRYPT_PLAIN:
		if (pol == ENCRYPTION_REQUIRE) {
			peer_close(p, "plain BitTorrent refused (encryption = require)");
			return -1;
		}
		p->state = PEER_HANDSHAKE;
		return 1;
	case CRYPT_ENCRYPTED:
		if (pol == ENCRYPTION_OFF) {
			peer_close(p, "encrypted transport refused (encryption = off)");
			return -1;
		}
		if (crypt_new_responder(&p->crypt, NULL, 0, engine_lookup_hello, p->eng, NULL) != 0) {
			peer_close(p, "out of memory");
			return -1;
		}
		p->state = PEER_CRYPT;
		return 1;
	default:
		peer_close(p, "neither BitTorrent nor shoal transport");
		return -1;
	}
}

static void on_fast_read(evutil_socket_t fd, short what, void *arg)
{
	struct peer *p = arg;
	(void)what;
	ssize_t n = recv(fd, p->eng->rbuf, sizeof p->eng->rbuf, 0);
	if (n < 0) {
		if (errno == EAGAIN || errno == EINTR)
			return;
		peer_close(p, "connection error");
		return;
	}
	if (n == 0) {
		peer_close(p, "closed by peer");
		return;
	}
	if (p->crypt)
		feed_crypt(p, p->eng->rbuf, (size_t)n);
	else
		feed_plain(p, p->eng->rbuf, (size_t)n);
}

void peer_set_fast_read(struct peer *p, bool fast)
{
	if (p->state == PEER_DEAD || !p->bev || fast == (p->fast_read != NULL))
		return;
	if (fast) {
		p->fast_read = event_new(p->eng->node->base, bufferevent_getfd(p->bev),
					 EV_READ | EV_PERSIST, on_fast_read, p);
		if (!p->fast_read || event_add(p->fast_read, NULL) != 0) {
			if (p->fast_read)
				event_free(p->fast_read);
			p->fast_read = NULL;
			return;
		}
		/* Whatever the bufferevent already holds is still drained by
		 * on_read, which is running or about to run. */
		bufferevent_disable(p->bev, EV_READ);
	} else {
		event_free(p->fast_read);
		p->fast_read = NULL;
		bufferevent_enable(p->bev, EV_READ);
	}
}

static void on_read(struct bufferevent *bev, void *arg)
{
	struct peer *p = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	if (p->state == PEER_SNIFFING && sniff(p, in) <= 0)
		return;
	while (p->state != PEER_DEAD && evbuffer_get_length(in) > 0) {
		struct evbuffer_iovec v;
		if (evbuffer_peek(in, -1, NULL, &v, 1) < 1 || v.iov_len == 0)
			break;
		size_t n = v.iov_len;
		if (p->crypt)
			feed_crypt(p, v.iov_base, n);
		else
			feed_plain(p, v.iov_base, n);
		if (p->state == PEER_DEAD)
			return; /* the bufferevent is gone */
		evbuffer_drain(in, n);
	}
}

static void on_write(struct bufferevent *bev, void *arg)
{
	struct peer *p = arg;
	(void)bev;
	if (p->state == PEER_ACTIVE)
		engine_on_writable(p);
}

static void start_transport(struct peer *p)
{
	struct engine *eng = p->eng;
	bool encrypt = eng->node->cfg.encryption != ENCRYPTION_OFF &&
		       !(known_plain_only(p) && eng->node->cfg.encryption == ENCRYPTION_PREFER);
	if (encrypt) {
		if (crypt_new_initiator(&p->crypt, p->xf->sw->info_hash, NULL) != 0) {
			peer_close(p, "out of memory");
			return;
		}
		p->state = PEER_CRYPT;
		flush_crypt_output(p);
	} else {
		p->state = PEER_HANDSHAKE;
		peer_send_handshake(p);
	}
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
	struct peer *p = arg;
	(void)bev;
	if (what & BEV_EVENT_CONNECTED) {
		p->connected_ms = p->last_recv_ms = now_ms();
		start_transport(p);
		return;
	}
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
		/* An encrypted hello to a client that only speaks plain BitTorrent
		 * is answered by a close: remember that and retry in plain. */
		if (p->outgoing && p->state == PEER_CRYPT && p->known &&
		    p->eng->node->cfg.encryption == ENCRYPTION_PREFER) {
			known_speaks_plain(p);
		}
		peer_close(p, (what & BEV_EVENT_EOF) ? "closed by peer" : "connection error");
	}
}
