/* picker.c: piece picker: availability, block states, rarest-first picks, endgame. */
#include "config.h"

#include "common/bytes.h"
#include "transfer/picker.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "transfer/transfer.h"

#define NOT_IN_PROGRESS UINT32_MAX
/* flags[piece]: its priority (enum picker_prio) in the low bits. */
#define PRIO_MASK 0x07u

/* Per-block state of a piece in progress. */
struct dl_block {
	uint8_t state;                     /* enum picker_block_state, < HAVE */
	uint8_t nreq;                      /* peers it is requested from */
	uint32_t from;                     /* who delivered it (WRITING, FINISHED) */
	uint32_t req[PICKER_MAX_REQUESTERS];
};

/* A piece with at least one block not NONE. */
struct dl_piece {
	uint32_t piece;
	uint32_t nblocks;
	uint32_t n[4]; /* blocks per state NONE..FINISHED */
	struct dl_block blocks[];
};

/* A candidate new piece during a pick: ordered by (rank, key, piece), where
 * rank is the priority (highest first) then the availability. */
struct cand {
	uint64_t rank;
	uint32_t piece;
	uint64_t key;
};

/* A partial piece during a pick: ordered by (priority, open blocks, avail,
 * piece), or (priority, piece) in sequential mode. */
struct partial {
	uint32_t prio;
	uint32_t open;
	uint32_t avail;
	uint32_t piece;
	uint32_t dl_index;
};

struct picker {
	uint32_t num_pieces;
	uint32_t *piece_len;
	uint32_t *avail;   /* connected peers having each piece */
	uint8_t *flags;    /* priority (PRIO_MASK) */
	bool sequential;   /* new pieces in index order, not rarest first */
	uint32_t *dl_pos;  /* index in dl[] or NOT_IN_PROGRESS */
	struct bitfield have;
	struct dl_piece **dl;
	size_t ndl, dl_cap;
	uint64_t open_blocks;        /* NONE blocks of wanted, missing pieces */
	uint32_t num_wanted_missing; /* pieces wanted and not had */
	struct cand heap[PICKER_MAX_PICK];
	struct partial *partials; /* scratch, dl_cap entries */
};


static uint32_t blocks_of_len(uint32_t len)
{
	return (len + XFER_BLOCK_SIZE - 1) / XFER_BLOCK_SIZE;
}

static uint32_t block_len(const struct picker *p, uint32_t piece, uint32_t block)
{
	uint32_t len = p->piece_len[piece];
	uint32_t start = block * XFER_BLOCK_SIZE;
	return len - start < XFER_BLOCK_SIZE ? len - start : XFER_BLOCK_SIZE;
}

static unsigned prio_of(const struct picker *p, uint32_t piece)
{
	return p->flags[piece] & PRIO_MASK;
}

static bool is_wanted(const struct picker *p, uint32_t piece)
{
	return prio_of(p, piece) != PICKER_PRIO_SKIP;
}

static bool counts_open(const struct picker *p, uint32_t piece)
{
	return is_wanted(p, piece) && !bitfield_test(&p->have, piece);
}

static struct dl_piece *dl_of(const struct picker *p, uint32_t piece)
{
	uint32_t pos = p->dl_pos[piece];
	return pos == NOT_IN_PROGRESS ? NULL : p->dl[pos];
}

/* NONE blocks of a missing piece, whether it is in progress or not. */
static uint32_t piece_none(const struct picker *p, uint32_t piece)
{
	const struct dl_piece *dp = dl_of(p, piece);
	return dp ? dp->n[PICKER_BLOCK_NONE] : blocks_of_len(p->piece_len[piece]);
}

int picker_new(const uint32_t *piece_len, uint32_t num_pieces, struct picker **picker_out)
{
	struct picker *p = NULL;
	int rc = -EINVAL;

	*picker_out = NULL;
	if (num_pieces == 0 || num_pieces > BITFIELD_MAX_BITS || piece_len == NULL)
		return -EINVAL;
	for (uint32_t i = 0; i < num_pieces; i++)
		if (piece_len[i] == 0 || piece_len[i] > PICKER_MAX_PIECE_LEN)
			return -EINVAL;

	p = calloc(1, sizeof *p);
	if (p == NULL)
		return -ENOMEM;
	p->num_pieces = num_pieces;
	rc = bitfield_init(&p->have, num_pieces);
	if (rc < 0)
		goto fail;
	rc = -ENOMEM;
	p->piece_len = malloc(num_pieces * sizeof *p->piece_len);
	p->avail = calloc(num_pieces, sizeof *p->avail);
	p->flags = malloc(num_pieces);
	p->dl_pos = malloc(num_pieces * sizeof *p->dl_pos);
	if (!p->piece_len || !p->avail || !p->flags || !p->dl_pos)
		goto fail;
	memcpy(p->piece_len, piece_len, num_pieces * sizeof *p->piece_len);
	memset(p->flags, PICKER_PRIO_NORMAL, num_pieces);
	for (uint32_t i = 0; i < num_pieces; i++) {
		p->dl_pos[i] = NOT_IN_PROGRESS;
		p->open_blocks += blocks_of_len(piece_len[i]);
	}
	p->num_wanted_missing = num_pieces;
	*picker_out = p;
	return 0;
fail:
	picker_free(p);
	return rc;
}

void picker_free(struct picker *p)
{
	if (p == NULL)
		return;
	for (size_t i = 0; i < p->ndl; i++)
		free(p->dl[i]);
	free(p->dl);
	free(p->partials);
	free(p->piece_len);
	free(p->avail);
	free(p->flags);
	free(p->dl_pos);
	bitfield_destroy(&p->have);
	free(p);
}

/* ---- downloading pieces ------------------------------------------------ */

static int dl_start(struct picker *p, uint32_t piece, struct dl_piece **dp_out)
{
	struct dl_piece *dp = dl_of(p, piece);
	if (dp != NULL) {
		*dp_out = dp;
		return 0;
	}
	if (p->ndl == p->dl_cap) {
		size_t cap = p->dl_cap ? p->dl_cap * 2 : 16;
		struct dl_piece **dl = realloc(p->dl, cap * sizeof *dl);
		if (dl == NULL)
			return -ENOMEM;
		p->dl = dl;
		struct partial *pa = realloc(p->partials, cap * sizeof *pa);
		if (pa == NULL)
			return -ENOMEM;
		p->partials = pa;
		p->dl_cap = cap;
	}
	uint32_t nb = blocks_of_len(p->piece_len[piece]);
	dp = calloc(1, sizeof *dp + nb * sizeof dp->blocks[0]);
	if (dp == NULL)
		return -ENOMEM;
	dp->piece = piece;
	dp->nblocks = nb;
	dp->n[PICKER_BLOCK_NONE] = nb;
	p->dl_pos[piece] = (uint32_t)p->ndl;
	p->dl[p->ndl++] = dp;
	*dp_out = dp;
	return 0;
}

/* Forget a piece's block state (it is had, or every block is NONE again). */
static void dl_drop(struct picker *p, struct dl_piece *dp)
{
	uint32_t pos = p->dl_pos[dp->piece];
	assert(pos < p->ndl && p->dl[pos] == dp);
	p->dl[pos] = p->dl[--p->ndl];
	p->dl_pos[p->dl[pos]->piece] = pos;
	p->dl_pos[dp->piece] = NOT_IN_PROGRESS;
	free(dp);
}

static void dl_drop_if_idle(struct picker *p, struct dl_piece *dp)
{
	if (dp->n[PICKER_BLOCK_NONE] == dp->nblocks)
		dl_drop(p, dp);
}

/* Every state change of a block goes through here so counters stay right. */
static void block_move(struct picker *p, struct dl_piece *dp, struct dl_block *b, uint8_t to)
{
	assert(b->state < PICKER_BLOCK_HAVE && to < PICKER_BLOCK_HAVE);
	if (counts_open(p, dp->piece)) {
		if (b->state == PICKER_BLOCK_NONE)
			p->open_blocks--;
		if (to == PICKER_BLOCK_NONE)
			p->open_blocks++;
	}
	dp->n[b->state]--;
	dp->n[to]++;
	b->state = to;
	if (to != PICKER_BLOCK_REQUESTED)
		b->nreq = 0;
}

static int find_req(const struct dl_block *b, uint32_t peer)
{
	for (unsigned i = 0; i < b->nreq; i++)
		if (b->req[i] == peer)
			return (int)i;
	return -1;
}

/* Remove `peer` from a block's requesters; a block left with none goes back
 * to NONE.  Returns true if the peer was a requester. */
static bool unrequest(struct picker *p, struct dl_piece *dp, struct dl_block *b, uint32_t peer)
{
	if (b->state != PICKER_BLOCK_REQUESTED)
		return false;
	int i = find_req(b, peer);
	if (i < 0)
		return false;
	b->req[i] = b->req[--b->nreq];
	if (b->nreq == 0)
		block_move(p, dp, b, PICKER_BLOCK_NONE);
	return true;
}

/* ---- availability ------------------------------------------------------ */

int picker_peer_bitfield(struct picker *p, struct bitfield *peer_has, const struct bitfield *incoming)
{
	if (peer_has->nbits != p->num_pieces || incoming->nbits != p->num_pieces)
		return -EINVAL;
	size_t nbytes = bitfield_wire_len(incoming);
	for (size_t byte = 0; byte < nbytes; byte++) {
		uint8_t fresh = incoming->bits[byte] & (uint8_t)~peer_has->bits[byte];
		for (unsigned bit = 0; fresh != 0; bit++, fresh = (uint8_t)(fresh << 1)) {
			if (fresh & 0x80) {
				uint32_t i = (uint32_t)(byte * 8 + bit);
				bitfield_set(peer_has, i);
				p->avail[i]++;
			}
		}
	}
	return 0;
}

int picker_peer_have(struct picker *p, struct bitfield *peer_has, uint32_t piece)
{
	if (peer_has->nbits != p->num_pieces)
		return -EINVAL;
	if (piece >= p->num_pieces)
		return -ERANGE;
	if (bitfield_set(peer_has, piece))
		p->avail[piece]++;
	return 0;
}

int picker_peer_have_all(struct picker *p, struct bitfield *peer_has)
{
	if (peer_has->nbits != p->num_pieces)
		return -EINVAL;
	for (uint32_t i = 0; i < p->num_pieces; i++)
		if (bitfield_set(peer_has, i))
			p->avail[i]++;
	return 0;
}

int picker_peer_gone(struct picker *p, uint32_t peer, const struct bitfield *peer_has)
{
	if (peer_has->nbits != p->num_pieces)
		return -EINVAL;
	size_t nbytes = bitfield_wire_len(peer_has);
	for (size_t byte = 0; byte < nbytes; byte++) {
		uint8_t bits = peer_has->bits[byte];
		for (unsigned bit = 0; bits != 0; bit++, bits = (uint8_t)(bits << 1)) {
			if (bits & 0x80) {
				uint32_t i = (uint32_t)(byte * 8 + bit);
				assert(p->avail[i] > 0);
				if (p->avail[i] > 0)
					p->avail[i]--;
			}
		}
	}
	/* Backwards, because dropping an idle piece moves the last one here. */
	for (size_t k = p->ndl; k-- > 0;) {
		struct dl_piece *dp = p->dl[k];
		for (uint32_t b = 0; b < dp->nblocks; b++)
			unrequest(p, dp, &dp->blocks[b], peer);
		dl_drop_if_idle(p, dp);
	}
	return 0;
}

uint32_t picker_availability(const struct picker *p, uint32_t piece)
{
	return piece < p->num_pieces ? p->avail[piece] : 0;
}

bool picker_is_interesting(const struct picker *p, const struct bitfield *peer_has)
{
	if (peer_has->nbits != p->num_pieces)
		return false;
	size_t nbytes = bitfield_wire_len(peer_has);
	for (size_t byte = 0; byte < nbytes; byte++) {
		uint8_t cand = peer_has->bits[byte] & (uint8_t)~p->have.bits[byte];
		for (unsigned bit = 0; cand != 0; bit++, cand = (uint8_t)(cand << 1))
			if ((cand & 0x80) && is_wanted(p, (uint32_t)(byte * 8 + bit)))
				return true;
	}
	return false;
}

/* ---- picking ----------------------------------------------------------- */

static int partial_cmp(const void *a, const void *b)
{
	const struct partial *x = a, *y = b;
	if (x->prio != y->prio)
		return x->prio > y->prio ? -1 : 1;
	if (x->open != y->open)
		return x->open < y->open ? -1 : 1;
	if (x->avail != y->avail)
		return x->avail < y->avail ? -1 : 1;
	return x->piece < y->piece ? -1 : x->piece > y->piece;
}

static bool cand_less(const struct cand *x, const struct cand *y)
{
	if (x->rank != y->rank)
		return x->rank < y->rank;
	if (x->key != y->key)
		return x->key < y->key;
	return x->piece < y->piece;
}

/* Max-heap on cand_less: the root is the worst of the kept candidates. */
static void heap_sift_down(struct cand *h, size_t n, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;
		if (l < n && cand_less(&h[m], &h[l]))
			m = l;
		if (r < n && cand_less(&h[m], &h[r]))
			m = r;
		if (m == i)
			return;
		struct cand t = h[i];
		h[i] = h[m];
		h[m] = t;
		i = m;
	}
}

static void heap_sift_up(struct cand *h, size_t i)
{
	while (i > 0) {
		size_t parent = (i - 1) / 2;
		if (!cand_less(&h[parent], &h[i]))
			return;
		struct cand t = h[i];
		h[i] = h[parent];
		h[parent] = t;
		i = parent;
	}
}

static int cand_cmp(const void *a, const void *b)
{
	return cand_less(a, b) ? -1 : cand_less(b, a) ? 1 : 0;
}

static void pick_add(const struct picker *p, struct picker_block *out, size_t *n, uint32_t piece,
		     uint32_t block)
{
	out[*n].piece = piece;
	out[*n].block = block;
	out[*n].len = block_len(p, piece, block);
	(*n)++;
}

/* Keep the `k` best never-started pieces the peer has, sorted best first:
 * the highest priority, then the rarest.  Random mode ignores availability;
 * the random key breaks ties so that equally rare pieces are chosen
 * uniformly.  Sequential mode ranks by priority, then index. */
static size_t best_new_pieces(struct picker *p, const struct bitfield *has, size_t k, bool random_mode,
			      uint64_t salt)
{
	size_t n = 0;
	for (uint32_t i = 0; i < p->num_pieces; i++) {
		if (!bitfield_test(has, i) || !counts_open(p, i) || p->dl_pos[i] != NOT_IN_PROGRESS)
			continue;
		unsigned prio = prio_of(p, i);
		bool ordered = p->sequential || prio >= PICKER_PRIO_DEADLINE;
		uint64_t rank = (uint64_t)(PICKER_PRIO_MAX - prio) << 32;
		if (!random_mode && !ordered)
			rank |= p->avail[i];
		struct cand c = { rank, i, ordered ? i : mix64(salt ^ i) };
		if (n < k) {
			p->heap[n] = c;
			heap_sift_up(p->heap, n++);
		} else if (cand_less(&c, &p->heap[0])) {
			p->heap[0] = c;
			heap_sift_down(p->heap, n, 0);
		}
	}
	if (n > 1)
		qsort(p->heap, n, sizeof p->heap[0], cand_cmp);
	return n;
}

int picker_pick(struct picker *p, const struct picker_peer *peer, size_t want,
		struct picker_block *blocks_out, size_t out_cap, size_t *n_out, uint64_t *rng)
{
	struct picker_block *out = blocks_out;
	size_t n = 0;
	*n_out = 0;
	if (peer == NULL || peer->has == NULL || peer->has->nbits != p->num_pieces || rng == NULL ||
	    (out == NULL && out_cap > 0))
		return -EINVAL;
	if (want > out_cap)
		want = out_cap;
	if (want > PICKER_MAX_PICK)
		want = PICKER_MAX_PICK;
	if (want == 0)
		return 0;

	/* 0. The most urgent streaming piece (the lowest-numbered missing one
	 * of the highest streaming priority, when it is in progress): its
	 * blocks already asked of one other peer are asked of this one too, so
	 * one slow peer cannot hold up the reader. */
	const struct dl_piece *urgent = NULL;
	unsigned up = 0;
	for (size_t k = 0; k < p->ndl; k++) {
		const struct dl_piece *dp = p->dl[k];
		unsigned pr = prio_of(p, dp->piece);
		if (pr >= PICKER_PRIO_DEADLINE && counts_open(p, dp->piece) &&
		    (!urgent || pr > up || (pr == up && dp->piece < urgent->piece))) {
			urgent = dp;
			up = pr;
		}
	}
	/* Only if it is the lowest missing one of the highest priority: a lower
	 * one not started yet comes first through the ordinary picks. */
	for (uint32_t i = 0; urgent && i < p->num_pieces; i++) {
		if (up == PICKER_PRIO_NOW && i >= urgent->piece)
			break; /* nothing is above NOW */
		unsigned pr = prio_of(p, i);
		if (counts_open(p, i) && p->dl_pos[i] == NOT_IN_PROGRESS &&
		    (pr > up || (pr == up && i < urgent->piece)))
			urgent = NULL;
	}
	if (urgent && bitfield_test(peer->has, urgent->piece)) {
		for (uint32_t b = 0; b < urgent->nblocks && n < want; b++) {
			const struct dl_block *bl = &urgent->blocks[b];
			if (bl->state == PICKER_BLOCK_REQUESTED && bl->nreq == 1 &&
			    find_req(bl, peer->id) < 0)
				pick_add(p, out, &n, urgent->piece, b);
		}
	}

	/* 1. Pieces already started (fewest open blocks first) and 2. new
	 * pieces (random at first, then rarest first), merged by priority: a
	 * started piece goes before a new one of the same priority (unless
	 * index order rules: then the lower index), never before one of a
	 * higher priority. */
	size_t np = 0;
	for (size_t k = 0; k < p->ndl; k++) {
		const struct dl_piece *dp = p->dl[k];
		if (dp->n[PICKER_BLOCK_NONE] == 0 || !counts_open(p, dp->piece) ||
		    !bitfield_test(peer->has, dp->piece))
			continue;
		unsigned prio = prio_of(p, dp->piece);
		bool ordered = p->sequential || prio >= PICKER_PRIO_DEADLINE;
		p->partials[np++] = (struct partial){ prio, ordered ? 0 : dp->n[PICKER_BLOCK_NONE],
						      ordered ? 0 : p->avail[dp->piece], dp->piece,
						      (uint32_t)k };
	}
	if (np > 1)
		qsort(p->partials, np, sizeof p->partials[0], partial_cmp);
	size_t nc = 0;
	if (n < want) {
		bool random_mode = bitfield_count(&p->have) < PICKER_RANDOM_FIRST;
		nc = best_new_pieces(p, peer->has, want - n, random_mode, splitmix64_next(rng));
	}
	for (size_t kp = 0, kc = 0; (kp < np || kc < nc) && n < want;) {
		uint32_t new_prio = kc < nc ? prio_of(p, p->heap[kc].piece) : 0;
		/* Where index order rules (sequential mode, a reader's window) a
		 * new piece before a started one of the same priority goes
		 * first: the reader waits on the lowest. */
		bool ordered = p->sequential || new_prio >= PICKER_PRIO_DEADLINE;
		bool partial_first =
			kp < np && (p->partials[kp].prio > new_prio ||
				    (p->partials[kp].prio == new_prio &&
				     (kc >= nc || !ordered || p->partials[kp].piece < p->heap[kc].piece)));
		if (partial_first) {
			const struct dl_piece *dp = p->dl[p->partials[kp++].dl_index];
			for (uint32_t b = 0; b < dp->nblocks && n < want; b++)
				if (dp->blocks[b].state == PICKER_BLOCK_NONE)
					pick_add(p, out, &n, dp->piece, b);
		} else {
			uint32_t piece = p->heap[kc++].piece;
			uint32_t nb = blocks_of_len(p->piece_len[piece]);
			for (uint32_t b = 0; b < nb && n < want; b++)
				pick_add(p, out, &n, piece, b);
		}
	}

	/* 3. Endgame: ask for blocks other peers are already sending, least
	 * duplicated first, so the last pieces do not wait on one slow peer. */
	if (n < want && picker_in_endgame(p) && peer->busy + n < PICKER_ENDGAME_BUSY) {
		if (want > PICKER_ENDGAME_BUSY - peer->busy)
			want = PICKER_ENDGAME_BUSY - peer->busy;
		for (unsigned dup = 1; dup < PICKER_MAX_REQUESTERS && n < want; dup++) {
			for (size_t k = 0; k < p->ndl && n < want; k++) {
				const struct dl_piece *dp = p->dl[k];
				if (!counts_open(p, dp->piece) || !bitfield_test(peer->has, dp->piece))
					continue;
				for (uint32_t b = 0; b < dp->nblocks && n < want; b++) {
					const struct dl_block *bl = &dp->blocks[b];
					if (bl->state == PICKER_BLOCK_REQUESTED && bl->nreq == dup &&
					    find_req(bl, peer->id) < 0)
						pick_add(p, out, &n, dp->piece, b);
				}
			}
		}
	}
	*n_out = n;
	return 0;
}

bool picker_in_endgame(const struct picker *p)
{
	return p->open_blocks == 0 && p->num_wanted_missing > 0;
}

/* ---- block transitions ------------------------------------------------- */

static int check_block(const struct picker *p, uint32_t piece, uint32_t block)
{
	if (piece >= p->num_pieces || block >= blocks_of_len(p->piece_len[piece]))
		return -ERANGE;
	return 0;
}

int picker_mark_requested(struct picker *p, uint32_t peer, uint32_t piece, uint32_t block)
{
	int rc = check_block(p, piece, block);
	if (rc < 0)
		return rc;
	if (!counts_open(p, piece))
		return -EPERM;
	struct dl_piece *dp;
	rc = dl_start(p, piece, &dp);
	if (rc < 0)
		return rc;
	struct dl_block *b = &dp->blocks[block];
	switch (b->state) {
	case PICKER_BLOCK_NONE:
		block_move(p, dp, b, PICKER_BLOCK_REQUESTED);
		b->req[0] = peer;
		b->nreq = 1;
		return 0;
	case PICKER_BLOCK_REQUESTED:
		if (find_req(b, peer) >= 0)
			return -EALREADY;
		if (b->nreq >= PICKER_MAX_REQUESTERS)
			return -EBUSY;
		b->req[b->nreq++] = peer;
		return 0;
	default:
		return -EALREADY;
	}
}

int picker_abort_request(struct picker *p, uint32_t peer, uint32_t piece, uint32_t block)
{
	int rc = check_block(p, piece, block);
	if (rc < 0)
		return rc;
	struct dl_piece *dp = dl_of(p, piece);
	if (dp == NULL || !unrequest(p, dp, &dp->blocks[block], peer))
		return -ENOENT;
	dl_drop_if_idle(p, dp);
	return 0;
}

int picker_mark_writing(struct picker *p, uint32_t peer, uint32_t piece, uint32_t block,
			uint32_t *cancel_out, size_t cancel_cap, size_t *n_cancel_out)
{
	*n_cancel_out = 0;
	int rc = check_block(p, piece, block);
	if (rc < 0)
		return rc;
	if (bitfield_test(&p->have, piece))
		return -EPERM;
	struct dl_piece *dp;
	rc = dl_start(p, piece, &dp);
	if (rc < 0)
		return rc;
	struct dl_block *b = &dp->blocks[block];
	if (b->state != PICKER_BLOCK_NONE && b->state != PICKER_BLOCK_REQUESTED)
		return -EALREADY;
	size_t nc = 0;
	for (unsigned i = 0; i < b->nreq; i++)
		nc += b->req[i] != peer;
	if (nc > cancel_cap)
		return -ENOBUFS;
	nc = 0;
	for (unsigned i = 0; i < b->nreq; i++)
		if (b->req[i] != peer)
			cancel_out[nc++] = b->req[i];
	block_move(p, dp, b, PICKER_BLOCK_WRITING);
	b->from = peer;
	*n_cancel_out = nc;
	return 0;
}

int picker_mark_finished(struct picker *p, uint32_t piece, uint32_t block)
{
	int rc = check_block(p, piece, block);
	if (rc < 0)
		return rc;
	struct dl_piece *dp = dl_of(p, piece);
	if (dp == NULL || dp->blocks[block].state != PICKER_BLOCK_WRITING)
		return -EINVAL;
	block_move(p, dp, &dp->blocks[block], PICKER_BLOCK_FINISHED);
	return dp->n[PICKER_BLOCK_FINISHED] == dp->nblocks ? 1 : 0;
}

int picker_write_failed(struct picker *p, uint32_t piece, uint32_t block)
{
	int rc = check_block(p, piece, block);
	if (rc < 0)
		return rc;
	struct dl_piece *dp = dl_of(p, piece);
	if (dp == NULL || dp->blocks[block].state != PICKER_BLOCK_WRITING)
		return -EINVAL;
	block_move(p, dp, &dp->blocks[block], PICKER_BLOCK_NONE);
	dl_drop_if_idle(p, dp);
	return 0;
}

/* Count a missing piece as had. */
static void become_had(struct picker *p, uint32_t piece)
{
	if (counts_open(p, piece)) {
		p->open_blocks -= piece_none(p, piece);
		p->num_wanted_missing--;
	}
	struct dl_piece *dp = dl_of(p, piece);
	if (dp != NULL)
		dl_drop(p, dp);
	bitfield_set(&p->have, piece);
}

int picker_piece_verified(struct picker *p, uint32_t piece)
{
	if (piece >= p->num_pieces)
		return -ERANGE;
	struct dl_piece *dp = dl_of(p, piece);
	if (dp == NULL || dp->n[PICKER_BLOCK_FINISHED] != dp->nblocks)
		return -EINVAL;
	become_had(p, piece);
	return 0;
}

int picker_piece_failed(struct picker *p, uint32_t piece, uint32_t *blame_out, size_t blame_cap,
			size_t *n_blame_out)
{
	*n_blame_out = 0;
	if (piece >= p->num_pieces)
		return -ERANGE;
	struct dl_piece *dp = dl_of(p, piece);
	if (dp == NULL)
		return -EINVAL;
	size_t nb = 0;
	bool truncated = false;
	for (uint32_t b = 0; b < dp->nblocks; b++) {
		const struct dl_block *bl = &dp->blocks[b];
		if (bl->state != PICKER_BLOCK_WRITING && bl->state != PICKER_BLOCK_FINISHED)
			continue;
		/* Distinct senders, in first-block order.  A sender not yet
		 * written (the record is full) is searched for among earlier
		 * blocks, so the truncation flag is exact. */
		bool seen = false;
		for (size_t e = 0; e < nb && !seen; e++)
			seen = blame_out[e] == bl->from;
		if (!seen && nb == blame_cap) {
			for (uint32_t e = 0; e < b && !seen; e++) {
				const struct dl_block *earlier = &dp->blocks[e];
				seen = (earlier->state == PICKER_BLOCK_WRITING ||
					earlier->state == PICKER_BLOCK_FINISHED) &&
				       earlier->from == bl->from;
			}
			truncated |= !seen;
			continue;
		}
		if (!seen)
			blame_out[nb++] = bl->from;
	}
	for (uint32_t b = 0; b < dp->nblocks; b++)
		if (dp->blocks[b].state != PICKER_BLOCK_NONE)
			block_move(p, dp, &dp->blocks[b], PICKER_BLOCK_NONE);
	dl_drop(p, dp);
	*n_blame_out = nb;
	return truncated ? -ENOBUFS : 0;
}

/* ---- resume, priorities, queries --------------------------------------- */

int picker_load_have(struct picker *p, const struct bitfield *verified)
{
	if (verified->nbits != p->num_pieces)
		return -EINVAL;
	for (uint32_t i = 0; i < p->num_pieces; i++)
		if (bitfield_test(verified, i) && !bitfield_test(&p->have, i))
			become_had(p, i);
	return 0;
}

int picker_set_priority(struct picker *p, uint32_t piece, enum picker_prio prio)
{
	if (piece >= p->num_pieces)
		return -ERANGE;
	if ((unsigned)prio > PICKER_PRIO_MAX)
		return -EINVAL;
	bool wanted = prio != PICKER_PRIO_SKIP;
	if (is_wanted(p, piece) != wanted && !bitfield_test(&p->have, piece)) {
		uint32_t none = piece_none(p, piece);
		if (wanted) {
			p->open_blocks += none;
			p->num_wanted_missing++;
		} else {
			p->open_blocks -= none;
			p->num_wanted_missing--;
		}
	}
	p->flags[piece] = (uint8_t)((p->flags[piece] & ~PRIO_MASK) | (unsigned)prio);
	return 0;
}

int picker_set_wanted(struct picker *p, uint32_t piece, bool wanted)
{
	if (piece >= p->num_pieces)
		return -ERANGE;
	if (is_wanted(p, piece) == wanted)
		return 0;
	return picker_set_priority(p, piece, wanted ? PICKER_PRIO_NORMAL : PICKER_PRIO_SKIP);
}

enum picker_prio picker_priority(const struct picker *p, uint32_t piece)
{
	return piece < p->num_pieces ? (enum picker_prio)prio_of(p, piece) : PICKER_PRIO_SKIP;
}

void picker_set_sequential(struct picker *p, bool on)
{
	p->sequential = on;
}

const struct bitfield *picker_have(const struct picker *p)
{
	return &p->have;
}

uint32_t picker_num_pieces(const struct picker *p)
{
	return p->num_pieces;
}

uint32_t picker_piece_len(const struct picker *p, uint32_t piece)
{
	return piece < p->num_pieces ? p->piece_len[piece] : 0;
}

uint32_t picker_piece_blocks(const struct picker *p, uint32_t piece)
{
	return piece < p->num_pieces ? blocks_of_len(p->piece_len[piece]) : 0;
}

enum picker_block_state picker_block_state(const struct picker *p, uint32_t piece, uint32_t block)
{
	if (check_block(p, piece, block) < 0)
		return PICKER_BLOCK_NONE;
	if (bitfield_test(&p->have, piece))
		return PICKER_BLOCK_HAVE;
	const struct dl_piece *dp = dl_of(p, piece);
	return dp ? (enum picker_block_state)dp->blocks[block].state : PICKER_BLOCK_NONE;
}

bool picker_is_complete(const struct picker *p)
{
	return p->num_wanted_missing == 0;
}

#define BROKEN(msg)                 \
	do {                        \
		if (what_out)       \
			*what_out = msg; \
		return -EFAULT;     \
	} while (0)

int picker_check_invariants(const struct picker *p, const char **what_out)
{
	uint64_t open = 0;
	uint32_t wanted_missing = 0, had = 0;
	for (uint32_t i = 0; i < p->num_pieces; i++) {
		bool have = bitfield_test(&p->have, i);
		had += have;
		if (p->dl_pos[i] != NOT_IN_PROGRESS) {
			if (p->dl_pos[i] >= p->ndl || p->dl[p->dl_pos[i]]->piece != i)
				BROKEN("dl_pos does not point back at its piece");
			if (have)
				BROKEN("a had piece still has block state");
		}
		if (counts_open(p, i)) {
			wanted_missing++;
			open += piece_none(p, i);
		}
	}
	if (had != bitfield_count(&p->have))
		BROKEN("have count out of step with have bits");
	if (wanted_missing != p->num_wanted_missing)
		BROKEN("num_wanted_missing wrong");
	if (open != p->open_blocks)
		BROKEN("open_blocks wrong");
	for (size_t k = 0; k < p->ndl; k++) {
		const struct dl_piece *dp = p->dl[k];
		uint32_t n[4] = { 0, 0, 0, 0 };
		if (dp->piece >= p->num_pieces || p->dl_pos[dp->piece] != k)
			BROKEN("dl entry not indexed by its piece");
		if (dp->nblocks != blocks_of_len(p->piece_len[dp->piece]))
			BROKEN("dl block count does not match piece length");
		for (uint32_t b = 0; b < dp->nblocks; b++) {
			const struct dl_block *bl = &dp->blocks[b];
			if (bl->state >= PICKER_BLOCK_HAVE)
				BROKEN("block state out of range");
			n[bl->state]++;
			if ((bl->state == PICKER_BLOCK_REQUESTED) != (bl->nreq > 0))
				BROKEN("requesters present iff REQUESTED");
			if (bl->nreq > PICKER_MAX_REQUESTERS)
				BROKEN("too many requesters");
			for (unsigned x = 0; x < bl->nreq; x++)
				for (unsigned y = x + 1; y < bl->nreq; y++)
					if (bl->req[x] == bl->req[y])
						BROKEN("duplicate requester");
		}
		if (memcmp(n, dp->n, sizeof n) != 0)
			BROKEN("per-state block counters wrong");
		if (n[PICKER_BLOCK_NONE] == dp->nblocks)
			BROKEN("idle piece kept in progress");
	}
	return 0;
}
