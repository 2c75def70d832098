/* peer.c: the bottom of the engine: a struct peer (a remote node's state
 * in one swarm) owns a struct conn (node/conn.h: transport, framing,
 * sending).  This file makes and frees peers and wraps sending and closing
 * so the rest of the engine may send to a peer whose connection is already
 * gone.  It calls no other engine file; the conn's callbacks, which turn
 * into engine calls, are peer_conn.c, at the top. */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "common/addr.h"
#include "common/log.h"
#include "common/util.h"
#include "node/conn.h"
#include "node/engine_state.h"
#include "node/node.h"
#include "node/swarm.h"

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
	p->state = PEER_OPENING;
	p->am_choking = true;
	p->peer_choking = true;
	memcpy(&p->addr, sa, len);
	p->addr_len = len;
	peer_format_addr(sa, p->name, sizeof p->name);
	return p;
}

struct peer *peer_accept(struct engine *eng, int fd, const struct sockaddr *sa, socklen_t len)
{
	struct peer *p = peer_alloc(eng, sa, len, false);
	if (!p) {
		evutil_closesocket(fd);
		return NULL;
	}
	p->conn = conn_accept(eng->conns, fd, sa, len, p); /* closes fd on failure */
	if (!p->conn) {
		free(p);
		return NULL;
	}
	/* Call engine_on_writable when the output drains to half the serving ceiling. */
	conn_set_write_lowmark(p->conn, PEER_MAX_OUTBUF / 2);
	eng->n_peers++;
	p->next = eng->pending;
	eng->pending = p;
	eng->n_pending++;
	return p;
}

bool known_plain_only(const struct peer *p)
{
	struct addrbook_entry e;
	return p->xf && addrbook_get(p->xf->book, p->known, &e) == 0 && e.plain_only;
}

bool known_legacy_hello(const struct peer *p)
{
	struct addrbook_entry e;
	return p->xf && addrbook_get(p->xf->book, p->known, &e) == 0 && e.legacy_hello;
}

struct peer *peer_connect(struct engine *eng, struct xfer *xf, const struct sockaddr_storage *ss,
			  socklen_t len, uint64_t known)
{
	struct peer *p = peer_alloc(eng, (const struct sockaddr *)ss, len, true);
	if (!p)
		return NULL;
	p->xf = xf;
	p->known = known;
	enum encryption_policy pol = eng->node->cfg.encryption;
	bool encrypt = pol != ENCRYPTION_OFF && !(known_plain_only(p) && pol == ENCRYPTION_PREFER);
	enum conn_start start = !encrypt		 ? CONN_START_PLAIN
				: known_legacy_hello(p) ? CONN_START_LEGACY
							: CONN_START_ENCRYPTED;
	p->conn = conn_connect(eng->conns, (const struct sockaddr *)ss, len, start,
			       xf->sw->info_hash, p);
	if (!p->conn) {
		log_debug("peer %s: connect failed", p->name);
		free(p);
		return NULL;
	}
	conn_set_write_lowmark(p->conn, PEER_MAX_OUTBUF / 2);
	p->next = xf->peers;
	xf->peers = p;
	xf->n_peers++;
	eng->n_peers++;
	return p; /* xf is awake: only an awake swarm's tick dials (connect_more) */
}

void peer_close(struct peer *p, const char *why)
{
	if (p->conn)
		conn_close(p->conn, why); /* calls conn_closed below */
}

void peer_close_timeout(struct peer *p, const char *why)
{
	if (p->conn)
		conn_close_timeout(p->conn, why);
}

int peer_send(struct peer *p, const void *a, size_t alen, const void *b, size_t blen)
{
	return p->conn ? conn_send(p->conn, a, alen, b, blen) : -ENOTCONN;
}

int peer_send_owned(struct peer *p, const void *msg, size_t len, void *owner)
{
	if (!p->conn) {
		free(owner);
		return -ENOTCONN;
	}
	return conn_send_owned(p->conn, msg, len, owner);
}

size_t peer_outbuf_len(const struct peer *p)
{
	return p->conn ? conn_outbuf_len(p->conn) : 0;
}

void peer_set_write_lowmark(struct peer *p, size_t n)
{
	if (p->conn)
		conn_set_write_lowmark(p->conn, n);
}

void peer_set_fast_read(struct peer *p, bool fast)
{
	if (p->conn)
		conn_set_fast_read(p->conn, fast);
}

void engine_reap(struct engine *eng)
{
	while (eng->dead) {
		struct peer *p = eng->dead;
		eng->dead = p->dead_next;
		bitfield_destroy(&p->has);
		free(p->reqs);
		free(p->early_bitfield);
		free(p);
	}
}

uint64_t peer_connected_ms(const struct peer *p)
{
	return p->conn ? conn_connected_ms(p->conn) : 0;
}

uint64_t peer_last_recv_ms(const struct peer *p)
{
	return p->conn ? conn_last_recv_ms(p->conn) : 0;
}

uint64_t peer_last_send_ms(const struct peer *p)
{
	return p->conn ? conn_last_send_ms(p->conn) : 0;
}
