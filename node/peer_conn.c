/* peer_conn.c: the callbacks a connection (node/conn.h) calls, turned into
 * engine calls.  engine_new gives the hub peer_conn_ops; no other engine
 * file refers to this one, and it calls down
 * into the dispatch (engine_wire.c), handshakes (engine_peers.c), a
 * sleeping swarm's disk layer (engine_meta.c), serving (engine_io.c) and
 * the peer primitives (peer.c). */
#include "config.h"

#include <errno.h>
#include <stdbool.h>

#include <event2/event.h>

#include "node/conn.h"
#include "node/engine_state.h"
#include "node/node.h"

/* ------------------------------------------------ the conn's callbacks */

static void conn_ready(void *owner)
{
	peer_send_handshake(owner);
}

static int conn_handshake(void *owner, const struct wire_handshake *hs)
{
	struct peer *p = owner;
	int rc = engine_on_handshake(p, hs);
	if (rc != 0) {
		peer_close(p, rc == -EACCES ? "banned" : "handshake names no swarm we serve");
		return rc;
	}
	/* A complete swarm may hold no disk layer (engine_base.c, "awake
	 * list"): it opens its files now, before any request is read. */
	rc = xfer_wake_disk(p);
	if (rc != 0)
		peer_close(p, "the swarm cannot open its files");
	return rc;
}

static int conn_message(void *owner, const struct wire_msg *m)
{
	return engine_on_message(owner, m);
}

static void conn_writable(void *owner)
{
	struct peer *p = owner;
	if (p->state == PEER_ACTIVE)
		engine_on_writable(p);
}

/* The connection is gone: unlink the peer and hand it to the reaper. */
static void conn_closed(void *owner, const char *why, bool crypt_refused)
{
	struct peer *p = owner;
	struct engine *eng = p->eng;
	(void)why; /* conn.c logged it */
	/* An encrypted hello to a client that only speaks plain BitTorrent
	 * is answered by a close: remember that and retry in plain (prefer).
	 * Under require there is no plain: a hello that offered AES-256-GCM is
	 * retried offering nothing, which a shoal from before cipher
	 * negotiation accepts (it refuses any other flags), so such a peer
	 * stays reachable on XChaCha20-Poly1305 (docs/protocol.md 2.16).
	 * Under prefer that extra round is not tried: nearly every peer that
	 * refuses a hello is a plain BitTorrent client, and each of them would
	 * pay one more refused connection before plain. */
	if (crypt_refused && p->known) {
		if (eng->node->cfg.encryption == ENCRYPTION_PREFER)
			known_speaks_plain(p);
		else if (p->conn && conn_offered_ciphers(p->conn) && !known_legacy_hello(p))
			known_refuses_offer(p);
	}
	p->conn = NULL; /* not ours to touch from here on */
	if (p->metered) {
		eng->node->metrics.peers[p->metered_encrypted][p->outgoing]--;
		p->metered = false;
	}
	engine_on_peer_gone(p);
	p->state = PEER_DEAD;
	eng->n_peers--;
	p->dead_next = eng->dead; /* p->next stays: a list walk may be on p */
	eng->dead = p;
	event_active(eng->reaper, EV_TIMEOUT, 0);
}

const struct conn_ops peer_conn_ops = {
	.on_ready = conn_ready,
	.on_handshake = conn_handshake,
	.on_message = conn_message,
	.on_writable = conn_writable,
	.on_close = conn_closed,
	.lookup_hello = engine_lookup_hello,
};
