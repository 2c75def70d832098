/* engine_send.c: what the engine sends on its own account: choking,
 * interest, requests (within the write budget) and HAVEs.  Below the
 * dispatch, the disk verdicts and the timers, which all call it; it calls
 * only the peer primitives (peer.c). */
#include "config.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "common/log.h"
#include "common/util.h"
#include "node/diskio.h"
#include "node/engine_state.h"
#include "node/node.h"
#include "node/swarm.h"
#include "transfer/picker.h"
#include "transfer/transfer.h"
#include "node/engine-parts.h"

static size_t request_target(const struct peer *p);

/* ------------------------------------------------------- sending */

static void send_simple(struct peer *p, enum wire_msg_id id)
{
	uint8_t m[WIRE_SIMPLE_LEN];
	wire_put_simple(m, id);
	(void)peer_send(p, m, sizeof m, NULL, 0);
}

void set_choke(struct peer *p, bool choke)
{
	if (p->am_choking == choke)
		return;
	p->am_choking = choke;
	if (p->xf) {
		unchoked_count(p->xf, !choke);
	}
	send_simple(p, choke ? WIRE_CHOKE : WIRE_UNCHOKE);
	if (choke)
		p->n_inq = 0; /* BEP 3: a choke discards its pending requests */
}

void update_interest(struct peer *p)
{
	struct xfer *xf = p->xf;
	bool want = xf && xf->picker && !xf->layers_pending && p->has.bits &&
		    picker_is_interesting(xf->picker, &p->has);
	if (want != p->am_interested) {
		p->am_interested = want;
		send_simple(p, want ? WIRE_INTERESTED : WIRE_NOT_INTERESTED);
	}
}

/* Abandon every request we have out to this peer. */
void drop_requests(struct peer *p)
{
	struct xfer *xf = p->xf;
	for (size_t i = 0; i < p->n_reqs; i++)
		if (xf && xf->picker &&
		    picker_abort_request(xf->picker, p->uid, p->reqs[i].piece, p->reqs[i].block) != 0)
			log_debug("picker: stale request %u/%u", p->reqs[i].piece, p->reqs[i].block);
	p->n_reqs = 0;
}

/* A reader jumped (a seek): requests out for pieces outside every window
 * are cancelled (BEP 3 CANCEL; a peer that has not read them yet drops
 * them, an answer already on its way is ignored), so the window's blocks
 * do not wait behind seconds of pipelined requests. */
void cancel_for_window(struct peer *p)
{
	struct xfer *xf = p->xf;
	if (!xf || !xf->picker)
		return;
	for (size_t i = 0; i < p->n_reqs;) {
		const struct peer_req *r = &p->reqs[i];
		if (picker_priority(xf->picker, r->piece) >= PICKER_PRIO_DEADLINE) {
			i++;
			continue;
		}
		uint32_t len = picker_piece_len(xf->picker, r->piece) - r->block * XFER_BLOCK_SIZE;
		struct wire_block b = { r->piece, r->block * XFER_BLOCK_SIZE,
					len < XFER_BLOCK_SIZE ? len : XFER_BLOCK_SIZE };
		uint8_t m[WIRE_BLOCK_MSG_LEN];
		wire_put_block(m, WIRE_CANCEL, &b);
		(void)peer_send(p, m, sizeof m, NULL, 0);
		if (picker_abort_request(xf->picker, p->uid, r->piece, r->block) != 0)
			log_debug("picker: stale request %u/%u", r->piece, r->block);
		p->reqs[i] = p->reqs[--p->n_reqs];
	}
}

/* How many requests to keep in flight: about two seconds of this peer's
 * rate in 16 KiB blocks, or the window of quick answers if larger, within
 * [PEER_MIN_REQS, PEER_MAX_REQS] and the peer's own reqq. */
static size_t request_target(const struct peer *p)
{
	size_t t = (size_t)(p->down_rate * 2.0 / XFER_BLOCK_SIZE);
	if (t < p->window)
		t = p->window;
	if (t < PEER_MIN_REQS)
		t = PEER_MIN_REQS;
	if (t > PEER_MAX_REQS)
		t = PEER_MAX_REQS;
	if (p->ext.reqq && t > p->ext.reqq)
		t = p->ext.reqq;
	return t;
}

void request_more(struct peer *p)
{
	struct xfer *xf = p->xf;
	if (!xf || xf->stopped || !xf->picker || xf->layers_pending || xf->disk_full ||
	    p->peer_choking || p->state != PEER_ACTIVE || xf->sw->state != SWARM_DOWNLOADING ||
	    write_budget_full(xf))
		return;
	size_t target = request_target(p);
	if (p->n_reqs >= target)
		return;
	if (!p->reqs) {
		p->reqs = calloc(PEER_MAX_REQS, sizeof *p->reqs);
		if (!p->reqs)
			return;
	}
	struct picker_block blocks[PEER_MAX_REQS];
	size_t n = 0;
	struct picker_peer pp = { .id = p->uid, .has = &p->has, .busy = (uint32_t)p->n_reqs };
	if (picker_pick(xf->picker, &pp, target - p->n_reqs, blocks, PEER_MAX_REQS, &n,
			&xf->eng->rng) != 0)
		return;
	uint64_t now = now_ms();
	uint32_t last_asked = UINT32_MAX;
	for (size_t i = 0; i < n; i++) {
		if (picker_mark_requested(xf->picker, p->uid, blocks[i].piece, blocks[i].block) != 0)
			continue;
		/* A reader's window piece: its block hashes first, from the peer
		 * sending its blocks (it has the piece), so each block can be
		 * served as soon as it is in (engine_select.c, "Block proofs"). */
		struct wire_hash_req hr;
		if (p->v2_hashes && blocks[i].piece != last_asked &&
		    proof_want(xf, blocks[i].piece, p->uid, &hr, now)) {
			uint8_t hm[WIRE_HASH_MSG_LEN];
			size_t len = wire_put_hash_msg(hm, WIRE_HASH_REQUEST, &hr, 0);
			(void)peer_send(p, hm, len, NULL, 0);
			log_debug("peer %s: block hashes of piece %u asked", p->name, blocks[i].piece);
		}
		last_asked = blocks[i].piece;
		struct wire_block b = { blocks[i].piece, blocks[i].block * XFER_BLOCK_SIZE, blocks[i].len };
		uint8_t m[WIRE_BLOCK_MSG_LEN];
		wire_put_block(m, WIRE_REQUEST, &b);
		(void)peer_send(p, m, sizeof m, NULL, 0);
		p->reqs[p->n_reqs++] = (struct peer_req){ blocks[i].piece, blocks[i].block, now };
	}
}

/* Tell the peers about a newly verified piece, but for seeds: a peer that
 * has every piece learns nothing from it (tests/integration/
 * test_have_redundant.py).  A peer that has only some pieces still hears
 * of each, even one it has: a super-seed (BEP 16) shows us one piece at a
 * time and offers the next only on our HAVE of the last, and libtorrent
 * sends such HAVEs by default too (send_redundant_have). */
void broadcast_have(struct xfer *xf, uint32_t piece)
{
	uint8_t m[WIRE_HAVE_LEN];
	wire_put_have(m, piece);
	for (struct peer *p = xf->peers; p; p = p->next) {
		if (p->state != PEER_ACTIVE)
			continue;
		if (!p->has.bits || !bitfield_all(&p->has))
			(void)peer_send(p, m, sizeof m, NULL, 0);
		update_interest(p);
	}
}

/* ------------------------------------------------ the write budget
 *
 * engine_io.c, "serving and writing budgets", says how the bytes are
 * counted; these two are here, below it, because requesting stops at the
 * write budget. */

void daemon_queued(const struct node *node, size_t *serve, size_t *write,
			  unsigned *unchoked)
{
	*serve = node->queues.serve;
	*write = node->queues.write;
	*unchoked = node->queues.unchoked;
}

bool write_budget_full(const struct xfer *xf)
{
	if (xf->dio && diskio_write_queued(xf->dio) >= ENGINE_SWARM_WRITE_BUDGET)
		return true;
	size_t serve, write;
	unsigned unchoked;
	daemon_queued(xf->node, &serve, &write, &unchoked);
	return write >= ENGINE_WRITE_BUDGET;
}
