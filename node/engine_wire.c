/* engine_wire.c: the dispatch of incoming wire messages (below only
 * peer_conn.c; sending is engine_send.c). */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <limits.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <sodium.h>
#include "common/addr.h"
#include "common/bytes.h"
#include "common/buf.h"
#include "common/log.h"
#include "common/sha256.h"
#include "common/util.h"
#include "node/engine_state.h"
#include "node/joincheck.h"
#include "node/node.h"
#include "node/portmap.h"
#include "node/ratelimit.h"
#include "transfer/ratesplit.h"
#include "node/swarm.h"
#include "node/workers.h"
#include "transfer/merkle.h"
#include "transfer/metainfo.h"
#include "transfer/layerfetch.h"
#include "transfer/mdfetch.h"
#include "transfer/picker.h"
#include "transfer/storage.h"
#include "transfer/transfer.h"
#include "node/engine-parts.h"

static void adapt_window(struct peer *p, uint64_t latency_ms);
static bool take_request(struct peer *p, uint32_t piece, uint32_t block, uint64_t *sent_ms);
static int on_piece(struct peer *p, const struct wire_msg *m);
static int on_request(struct peer *p, const struct wire_block *b);

/* ------------------------------------------------ the request window */

static void adapt_window(struct peer *p, uint64_t latency_ms)
{
	if (p->window < PEER_MIN_REQS)
		p->window = PEER_MIN_REQS;
	if (!p->min_reply_ms || latency_ms < p->min_reply_ms)
		p->min_reply_ms = latency_ms ? latency_ms : 1;
	uint64_t rtt = p->min_reply_ms;
	if (latency_ms < rtt + PEER_FAST_REPLY_MS && p->window < PEER_MAX_REQS)
		p->window++;
	else if (latency_ms > rtt + PEER_SLOW_REPLY_MS && p->window > PEER_MIN_REQS)
		p->window = p->window / 2 > PEER_MIN_REQS ? p->window / 2 : PEER_MIN_REQS;
}

/* ------------------------------------------------------- messages */

/* Find and remove our request for (piece, block); false if unrequested. */
/* Forget our request for this block; true if there was one, its send time
 * in *sent_ms when that is not NULL. */
static bool take_request(struct peer *p, uint32_t piece, uint32_t block, uint64_t *sent_ms)
{
	for (size_t i = 0; i < p->n_reqs; i++) {
		if (p->reqs[i].piece == piece && p->reqs[i].block == block) {
			if (sent_ms)
				*sent_ms = p->reqs[i].sent_ms;
			p->reqs[i] = p->reqs[--p->n_reqs];
			return true;
		}
	}
	return false;
}

static int on_piece(struct peer *p, const struct wire_msg *m)
{
	struct xfer *xf = p->xf;
	uint32_t piece = m->u.piece.index, begin = m->u.piece.begin;
	size_t len = m->u.piece.len;
	if (!xf->picker || begin % XFER_BLOCK_SIZE != 0)
		return -EBADMSG;
	uint32_t block = begin / XFER_BLOCK_SIZE;
	uint64_t sent_ms;
	if (!take_request(p, piece, block, &sent_ms))
		return 0; /* unrequested, late or cancelled: ignored, and not counted */
	p->last_block_ms = now_ms();
	p->snubbed = false;
	p->down_total += len;
	p->down_tick += len;
	xf->down_total += len;
	xf->down_tick += len;
	xf->node->metrics.payload_bytes[METRICS_DOWN] += len;
	adapt_window(p, p->last_block_ms - sent_ms);
	if (piece >= picker_num_pieces(xf->picker) || block >= picker_piece_blocks(xf->picker, piece))
		return -EBADMSG;
	uint32_t want = picker_piece_len(xf->picker, piece) - begin;
	if (want > XFER_BLOCK_SIZE)
		want = XFER_BLOCK_SIZE;
	if (len != want)
		return -EBADMSG;
	if (picker_block_state(xf->picker, piece, block) != PICKER_BLOCK_REQUESTED) {
		request_more(p);
		return 0; /* another peer's copy won the race */
	}
	uint32_t cancel[PICKER_MAX_REQUESTERS];
	size_t nc = 0;
	if (picker_mark_writing(xf->picker, p->uid, piece, block, cancel, PICKER_MAX_REQUESTERS, &nc) != 0)
		return 0;
	for (size_t i = 0; i < nc; i++) {
		struct peer *o = find_peer(xf, cancel[i]);
		if (o && take_request(o, piece, block, NULL)) {
			struct wire_block b = { piece, begin, (uint32_t)len };
			uint8_t c[WIRE_BLOCK_MSG_LEN];
			wire_put_block(c, WIRE_CANCEL, &b);
			(void)peer_send(o, c, sizeof c, NULL, 0);
		}
	}
	if (queue_block(p, piece, begin, m->u.piece.data, len) != 0)
		return -ENOMEM;
	request_more(p);
	return 0;
}

static int on_request(struct peer *p, const struct wire_block *b)
{
	struct xfer *xf = p->xf;
	const struct swarm *sw = xf->sw;
	if (!sw->meta || !xf->picker || b->index >= sw->meta->total_pieces)
		return -EBADMSG; /* out of range: protocol violation */
	uint32_t plen = picker_piece_len(xf->picker, b->index);
	/* libtorrent models v2 with pad files up to each piece boundary and asks
	 * for whole 16 KiB blocks that run past a file's end; such a block is
	 * served as the file's bytes followed by zeros.  In a hybrid's v1 view
	 * (BEP 47) a file's last piece is a whole piece long, its pad included,
	 * so a v1 client may ask for blocks wholly inside the pad: zeros too.
	 * Past the piece length itself is a protocol violation. */
	uint64_t v1_size = metainfo_v1_piece_size(sw->meta, b->index);
	uint32_t served = v1_size > plen ? (uint32_t)v1_size : plen;
	if (b->length == 0 || b->length > XFER_BLOCK_SIZE || b->begin >= served ||
	    (uint64_t)b->begin + b->length > sw->meta->piece_length)
		return -EBADMSG;
	if (p->am_choking || xf->node->cfg.no_upload || sw->state == SWARM_PAUSED ||
	    !swarm_have_test(sw, b->index))
		return 0; /* not served; BEP 3 lets us ignore it */
	if (p->n_inq >= PEER_MAX_INQ) {
		/* Past its reqq: ignored (BEP 3 allows it; the peer asks again
		 * when its request times out).  libtorrent's deadline requests
		 * (streaming) come on top of a full queue, so a few over are not
		 * a flood; a peer whose queue never drains while it keeps asking
		 * is. */
		return ++p->inq_overflow > PEER_MAX_INQ_OVERFLOW ? -ENOBUFS : 0;
	}
	p->inq_overflow = 0;
	p->inq[p->n_inq++] = *b;
	serve_requests(p);
	return 0;
}

/* ------------------------------------------------------- dispatch
 *
 * Every incoming message goes through two tables: one by message id, and,
 * for BEP 10 extended messages, one by our extension id.  Each entry names
 * its handler and what it needs before it may run:
 *   - lengths: the wire decoder has already held every message with a
 *     fixed or bounded body to the length its id requires (transfer/wire.h,
 *     "Ceilings"), so the message table carries no length; an extended
 *     payload shorter than its entry's min_len is a protocol violation;
 *   - state: NEED_META entries are ignored until the swarm has its metadata
 *     and picker (a HAVE before we know the piece count says nothing we can
 *     use), NEED_META_STRICT entries are a protocol violation before then
 *     (nobody may ask for or send a block of a torrent we cannot describe).
 * An id with no entry, whether a message id the codec knows and we do not
 * handle or an extension id we never announced, takes one path, on_chatter:
 * like a keep-alive it costs us parsing and carries nothing, so it counts
 * against PEER_MAX_CHATTER_PER_S.  (Message ids the codec does not know at
 * all are skipped by the decoder and counted at the tick, conn_skipped.) */

enum msg_need {
	NEED_NOTHING = 0,
	NEED_META,          /* ignored without metadata and picker */
	NEED_META_STRICT,   /* a protocol violation without them */
};

struct msg_entry {
	int (*fn)(struct peer *p, const struct wire_msg *m);
	enum msg_need need;
};

struct ext_entry {
	int (*fn)(struct peer *p, const uint8_t *payload, size_t len);
	size_t min_len;     /* shorter payloads are a protocol violation */
};

/* Keep-alives and ids with no handler. */
static int on_chatter(struct peer *p)
{
	p->chatter++;
	return 0;
}

static int msg_choke(struct peer *p, const struct wire_msg *m)
{
	(void)m;
	p->peer_choking = true;
	drop_requests(p);
	return 0;
}

static int msg_unchoke(struct peer *p, const struct wire_msg *m)
{
	(void)m;
	p->peer_choking = false;
	request_more(p);
	return 0;
}

static int msg_interested(struct peer *p, const struct wire_msg *m)
{
	struct xfer *xf = p->xf;
	(void)m;
	p->peer_interested = true;
	if (p->am_choking && !xf->node->cfg.no_upload && xf->sw->state != SWARM_PAUSED) {
		/* A free upload slot is given at once rather than at the next round. */
		unsigned unchoked = 0;
		for (struct peer *o = xf->peers; o; o = o->next)
			unchoked += o->state == PEER_ACTIVE && !o->am_choking;
		if (unchoked < ENGINE_UPLOAD_SLOTS)
			set_choke(p, false);
		else
			xf->rechoke = true;
	}
	return 0;
}

static int msg_not_interested(struct peer *p, const struct wire_msg *m)
{
	(void)m;
	p->peer_interested = false;
	p->xf->rechoke = true; /* its slot is free for someone else */
	return 0;
}

static int msg_have(struct peer *p, const struct wire_msg *m)
{
	struct xfer *xf = p->xf;
	if (m->u.have >= xf->sw->meta->total_pieces)
		return -EBADMSG;
	if (!p->has.bits && peer_meta_ready(p) != 0)
		return -ENOMEM;
	if (picker_peer_have(xf->picker, &p->has, m->u.have) != 0)
		return -EBADMSG;
	update_interest(p);
	request_more(p);
	return 0;
}

static int msg_bitfield(struct peer *p, const struct wire_msg *m)
{
	struct xfer *xf = p->xf;
	const struct swarm *sw = xf->sw;
	if (!sw->meta || !xf->picker) {
		/* Kept until the piece count is known (peer_meta_ready). */
		if (m->u.bitfield.len > WIRE_MAX_BITFIELD)
			return -EMSGSIZE;
		free(p->early_bitfield);
		p->early_bitfield = malloc(m->u.bitfield.len ? m->u.bitfield.len : 1);
		if (!p->early_bitfield)
			return -ENOMEM;
		memcpy(p->early_bitfield, m->u.bitfield.bits, m->u.bitfield.len);
		p->early_bitfield_len = m->u.bitfield.len;
		return 0;
	}
	struct bitfield in;
	int rc = bitfield_init(&in, sw->meta->total_pieces);
	if (rc == 0)
		rc = bitfield_from_wire(&in, m->u.bitfield.bits, m->u.bitfield.len);
	if (rc == 0 && !p->has.bits)
		rc = peer_meta_ready(p);
	if (rc == 0)
		rc = picker_peer_bitfield(xf->picker, &p->has, &in);
	bitfield_destroy(&in);
	if (rc)
		return -EBADMSG;
	update_interest(p);
	request_more(p);
	return 0;
}

static int msg_request(struct peer *p, const struct wire_msg *m)
{
	return on_request(p, &m->u.block);
}

static int msg_cancel(struct peer *p, const struct wire_msg *m)
{
	for (size_t i = 0; i < p->n_inq; i++) {
		if (p->inq[i].index == m->u.block.index && p->inq[i].begin == m->u.block.begin) {
			memmove(p->inq + i, p->inq + i + 1, (p->n_inq - i - 1) * sizeof *p->inq);
			p->n_inq--;
			break;
		}
	}
	return 0;
}

/* BEP 5: the DHT port.  Our DHT learns nodes by itself; nothing to do. */
static int msg_port(struct peer *p, const struct wire_msg *m)
{
	(void)p;
	(void)m;
	return 0;
}

static int ext_handshake(struct peer *p, const uint8_t *payload, size_t len)
{
	struct xfer *xf = p->xf;
	if (wire_ext_hs_parse(&p->ext, payload, payload + len) != 0)
		return -EBADMSG;
	p->ext_ok = true;
	p->listen_port = p->ext.port;
	/* BEP 10 yourip: one peer's vote on our external address.  The bytes
	 * are compared, not cast to struct in6_addr: yourip sits unaligned
	 * in the extension record (UBSan under a v6 peer). */
	static const uint8_t v4mapped[12] = { [10] = 0xff, [11] = 0xff };
	if (p->ext.yourip_len == 4 ||
	    (p->ext.yourip_len == 16 && memcmp(p->ext.yourip, v4mapped, sizeof v4mapped) == 0))
		reach_vote(p->eng->node, AF_INET, p->ext.yourip + (p->ext.yourip_len == 16 ? 12 : 0),
			   (const struct sockaddr *)&p->addr, REACH_PEER);
	else if (p->ext.yourip_len == 16)
		reach_vote(p->eng->node, AF_INET6, p->ext.yourip, (const struct sockaddr *)&p->addr,
			   REACH_PEER);
	snprintf(p->client, sizeof p->client, "%s", p->ext.client);
	if (metadata_announced(p) != 0)
		return -ENOMEM;
	if (xf->md_kick)
		request_metadata_all(xf);
	else
		request_metadata(p);
	/* Peer exchange: the newcomer hears about everyone now, and
	 * everyone hears about the newcomer at the next tick (BEP 11
	 * leaves the schedule to us; waiting 30 s for the first round
	 * kept leechers from finding each other). */
	xf->pex_due = true;
	if (!p->outgoing && p->listen_port && known_incoming(p) == -EACCES)
		return -EACCES;
	return 0;
}

static int ext_pex(struct peer *p, const uint8_t *payload, size_t len)
{
	on_pex(p, payload, len); /* a malformed list is ignored */
	return 0;
}

/* Indexed by our extension ids, as announced in peer_send_handshake.  The
 * smallest bencoded dictionary, "de", is 2 bytes. */
static const struct ext_entry ext_table[] = {
	[WIRE_EXT_HANDSHAKE_ID] = { ext_handshake, 2 },
	[EXT_UT_METADATA] = { on_metadata_msg, 2 },
	[EXT_UT_PEX] = { ext_pex, 0 },
};

static int msg_extended(struct peer *p, const struct wire_msg *m)
{
	uint8_t id = m->u.ext.id;
	if (id >= sizeof ext_table / sizeof ext_table[0] || !ext_table[id].fn)
		return on_chatter(p);
	const struct ext_entry *e = &ext_table[id];
	if (m->u.ext.len < e->min_len)
		return -EBADMSG;
	return e->fn(p, m->u.ext.payload, m->u.ext.len);
}

static int msg_hash_request(struct peer *p, const struct wire_msg *m)
{
	on_hash_request(p, &m->u.hash_req); /* answers or rejects */
	return 0;
}

static int msg_hashes(struct peer *p, const struct wire_msg *m)
{
	on_hashes(p, m); /* unasked or wrong hashes are dropped */
	return 0;
}

static int msg_hash_reject(struct peer *p, const struct wire_msg *m)
{
	struct xfer *xf = p->xf;
	/* Ask someone else at the next tick; only the peer asked may say so. */
	if (xf->lf && p->uid == xf->layers_peer)
		xf->layers_asked_ms = 0;
	proof_rejected(xf, p->uid, &m->u.hash_req);
	return 0;
}

static const struct msg_entry msg_table[] = {
	[WIRE_CHOKE] = { msg_choke, NEED_NOTHING },
	[WIRE_UNCHOKE] = { msg_unchoke, NEED_NOTHING },
	[WIRE_INTERESTED] = { msg_interested, NEED_NOTHING },
	[WIRE_NOT_INTERESTED] = { msg_not_interested, NEED_NOTHING },
	[WIRE_HAVE] = { msg_have, NEED_META },
	[WIRE_BITFIELD] = { msg_bitfield, NEED_NOTHING }, /* kept for later without */
	[WIRE_REQUEST] = { msg_request, NEED_META_STRICT },
	[WIRE_PIECE] = { on_piece, NEED_META_STRICT },
	[WIRE_CANCEL] = { msg_cancel, NEED_NOTHING },
	[WIRE_PORT] = { msg_port, NEED_NOTHING },
	[WIRE_EXTENDED] = { msg_extended, NEED_NOTHING },
	[WIRE_HASH_REQUEST] = { msg_hash_request, NEED_NOTHING }, /* rejected without */
	[WIRE_HASHES] = { msg_hashes, NEED_NOTHING }, /* on_hashes ignores them without */
	[WIRE_HASH_REJECT] = { msg_hash_reject, NEED_NOTHING },
};

int engine_on_message(struct peer *p, const struct wire_msg *m)
{
	struct xfer *xf = p->xf;
	if (!xf || p->state != PEER_ACTIVE)
		return -EPROTO;
	if (m->type >= sizeof msg_table / sizeof msg_table[0] || !msg_table[m->type].fn)
		return on_chatter(p); /* keep-alives too: WIRE_KEEPALIVE is past the table */
	const struct msg_entry *e = &msg_table[m->type];
	if (e->need != NEED_NOTHING && (!xf->sw->meta || !xf->picker))
		return e->need == NEED_META_STRICT ? -EBADMSG : 0;
	return e->fn(p, m);
}
