/* fuzz_picker.c: fuzz harness for the piece picker (transfer/picker.h), the
 * state machine hostile peers drive with what they claim to have and the
 * blocks they send.  Each input is a script: the first bytes shape the
 * torrent (piece count, piece lengths up to 64 blocks, so one piece can
 * have more contributors than there are peers of a small swarm), the rest
 * are operations by up to 24 peers (bitfields, HAVEs, picks, deliveries,
 * write failures, aborts, departures) and the engine's verdicts (a piece
 * verified or failed).  After every step picker_check_invariants must
 * pass; and at every failed piece the blame must name exactly the distinct
 * peers that delivered its blocks, each once, the piece must be reset, and
 * the picker must offer it again to a peer that has it. */
#include "config.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "transfer/bitfield.h"
#include "transfer/picker.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FP_PEERS 24
#define FP_MAX_PIECES 32
#define FP_MAX_BLOCKS 64
#define FP_BLOCK 16384u

struct fp {
	const uint8_t *d;
	size_t n, at;
	struct picker *pk;
	uint32_t pieces;
	uint32_t nblocks[FP_MAX_PIECES];
	struct bitfield has[FP_PEERS];
	bool present[FP_PEERS];
	/* The model: who asked (bit per peer) and who delivered (peer + 1). */
	uint32_t asked[FP_MAX_PIECES][FP_MAX_BLOCKS];
	uint8_t sender[FP_MAX_PIECES][FP_MAX_BLOCKS];
	bool finished[FP_MAX_PIECES][FP_MAX_BLOCKS];
	bool had[FP_MAX_PIECES];
	uint64_t rng;
};

static uint8_t next(struct fp *f)
{
	return f->at < f->n ? f->d[f->at++] : 0;
}

static void check(struct fp *f)
{
	const char *what = NULL;
	if (picker_check_invariants(f->pk, &what) != 0) {
		fprintf(stderr, "picker invariant broken: %s\n", what ? what : "?");
		abort();
	}
}

static void expect(bool ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "fuzz_picker: %s\n", what);
		abort();
	}
}

static bool complete(const struct fp *f, uint32_t piece)
{
	if (f->had[piece])
		return false;
	for (uint32_t b = 0; b < f->nblocks[piece]; b++)
		if (!f->finished[piece][b])
			return false;
	return true;
}

static void reset_piece(struct fp *f, uint32_t piece)
{
	memset(f->asked[piece], 0, sizeof f->asked[piece]);
	memset(f->sender[piece], 0, sizeof f->sender[piece]);
	memset(f->finished[piece], 0, sizeof f->finished[piece]);
}

/* The piece failed its hash: the blame must be exactly its contributors. */
static void fail_piece(struct fp *f, uint32_t piece)
{
	uint32_t want[FP_PEERS + 1] = { 0 }; /* contributor peer+1 -> seen */
	size_t n_want = 0;
	for (uint32_t b = 0; b < f->nblocks[piece]; b++) {
		uint8_t s = f->sender[piece][b];
		if (s && !want[s]) {
			want[s] = 1;
			n_want++;
		}
	}
	uint32_t blame[FP_MAX_BLOCKS];
	size_t n = 0;
	int rc = picker_piece_failed(f->pk, piece, blame, picker_piece_blocks(f->pk, piece), &n);
	expect(rc == 0, "a complete piece fails with room for every contributor");
	expect(n == n_want, "the blame names every contributor");
	for (size_t i = 0; i < n; i++) {
		expect(blame[i] < FP_PEERS && want[blame[i] + 1] == 1, "the blame names only contributors, once");
		want[blame[i] + 1] = 2;
	}
	for (uint32_t b = 0; b < f->nblocks[piece]; b++)
		expect(picker_block_state(f->pk, piece, b) == PICKER_BLOCK_NONE,
		       "a failed piece is reset");
	reset_piece(f, piece);
	/* Wanted again: every peer that has it is interesting again. */
	for (uint32_t peer = 0; peer < FP_PEERS; peer++)
		if (f->present[peer] && bitfield_test(&f->has[peer], piece))
			expect(picker_is_interesting(f->pk, &f->has[peer]),
			       "a failed piece is wanted from the peers that have it");
}

static void peer_gone(struct fp *f, uint32_t peer)
{
	if (!f->present[peer])
		return;
	expect(picker_peer_gone(f->pk, peer, &f->has[peer]) == 0, "a peer leaves");
	for (uint32_t p = 0; p < f->pieces; p++)
		for (uint32_t b = 0; b < f->nblocks[p]; b++)
			f->asked[p][b] &= ~(1u << peer);
	bitfield_destroy(&f->has[peer]);
	f->present[peer] = false;
}

static void peer_join(struct fp *f, uint32_t peer)
{
	if (f->present[peer] || bitfield_init(&f->has[peer], f->pieces) != 0)
		return;
	f->present[peer] = true;
	struct bitfield in;
	if (bitfield_init(&in, f->pieces) != 0)
		return;
	uint8_t mode = next(f);
	for (uint32_t p = 0; p < f->pieces; p++)
		if (mode & 1 || (next(f) & 1))
			bitfield_set(&in, p);
	expect(picker_peer_bitfield(f->pk, &f->has[peer], &in) == 0, "a bitfield is taken");
	bitfield_destroy(&in);
}

/* A requested block arrives from `peer`; it is written (or not). */
static void deliver(struct fp *f, uint32_t peer, uint32_t piece, uint32_t block, bool write_ok)
{
	uint32_t cancel[PICKER_MAX_REQUESTERS];
	size_t nc = 0;
	int rc = picker_mark_writing(f->pk, peer, piece, block, cancel, PICKER_MAX_REQUESTERS, &nc);
	if (rc != 0)
		return; /* a duplicate or a piece already had: dropped */
	f->asked[piece][block] = 0;
	if (!write_ok) {
		expect(picker_write_failed(f->pk, piece, block) == 0, "a write fails");
		return;
	}
	f->sender[piece][block] = (uint8_t)(peer + 1);
	f->finished[piece][block] = true;
	rc = picker_mark_finished(f->pk, piece, block);
	expect(rc == 0 || rc == 1, "a written block finishes");
	expect((rc == 1) == complete(f, piece), "the last block says so");
}

static void op(struct fp *f)
{
	uint8_t o = next(f);
	uint32_t peer = next(f) % FP_PEERS;
	uint32_t piece = f->pieces ? next(f) % f->pieces : 0;
	switch (o % 8) {
	case 0:
		peer_join(f, peer);
		break;
	case 1:
		if (f->present[peer] && picker_peer_have(f->pk, &f->has[peer], piece) != 0)
			expect(false, "a HAVE in range is taken");
		break;
	case 2: { /* pick and request */
		if (!f->present[peer])
			break;
		struct picker_peer pp = { peer, &f->has[peer], 0 };
		struct picker_block out[32];
		size_t n = 0;
		expect(picker_pick(f->pk, &pp, 1 + next(f) % 32, out, 32, &n, &f->rng) == 0, "a pick");
		for (size_t i = 0; i < n; i++) {
			expect(out[i].piece < f->pieces && out[i].block < f->nblocks[out[i].piece],
			       "a pick is in range");
			expect(bitfield_test(&f->has[peer], out[i].piece), "a pick is of a piece the peer has");
			expect(!f->had[out[i].piece], "a had piece is never picked");
			if (picker_mark_requested(f->pk, peer, out[i].piece, out[i].block) == 0)
				f->asked[out[i].piece][out[i].block] |= 1u << peer;
		}
		break;
	}
	case 3:
	case 4: { /* the peer answers one of its requests, or sends unasked data */
		uint32_t block = next(f) % f->nblocks[piece];
		if (f->had[piece])
			break; /* data for a had piece is refused (-EPERM) */
		if (f->present[peer] && ((f->asked[piece][block] >> peer & 1) || (o & 0x80)))
			deliver(f, peer, piece, block, (o & 0x40) == 0);
		break;
	}
	case 5: { /* abort one request */
		uint32_t block = next(f) % f->nblocks[piece];
		if (picker_abort_request(f->pk, peer, piece, block) == 0)
			f->asked[piece][block] &= ~(1u << peer);
		break;
	}
	case 6:
		peer_gone(f, peer);
		break;
	case 7: /* the engine's verdict on a complete piece */
		if (!complete(f, piece))
			break;
		if (next(f) & 1) {
			expect(picker_piece_verified(f->pk, piece) == 0, "a complete piece verifies");
			reset_piece(f, piece);
			f->had[piece] = true;
			for (uint32_t b = 0; b < f->nblocks[piece]; b++)
				expect(picker_block_state(f->pk, piece, b) == PICKER_BLOCK_HAVE,
				       "a verified piece is had");
		} else {
			fail_piece(f, piece);
		}
		break;
	}
	check(f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fp *f = calloc(1, sizeof *f);
	if (!f)
		return 0;
	f->d = data;
	f->n = size;
	f->pieces = 1 + next(f) % FP_MAX_PIECES;
	uint32_t lens[FP_MAX_PIECES];
	for (uint32_t p = 0; p < f->pieces; p++) {
		uint32_t blocks = 1 + next(f) % FP_MAX_BLOCKS;
		uint32_t tail = next(f); /* a short last block, sometimes */
		lens[p] = blocks * FP_BLOCK - (tail & 1 ? (tail >> 1) * 64 : 0);
		f->nblocks[p] = blocks;
	}
	f->rng = 0x9e3779b97f4a7c15u;
	if (picker_new(lens, f->pieces, &f->pk) != 0) {
		free(f);
		return 0;
	}
	for (uint32_t p = 0; p < f->pieces; p++)
		expect(picker_piece_blocks(f->pk, p) == f->nblocks[p], "a piece has the blocks of its length");
	while (f->at < f->n)
		op(f);
	for (uint32_t peer = 0; peer < FP_PEERS; peer++)
		peer_gone(f, peer);
	check(f);
	picker_free(f->pk);
	free(f);
	return 0;
}
