/* picker.h: which blocks to request from which peer; a core with no I/O. */
#ifndef SHOAL_TRANSFER_PICKER_H
#define SHOAL_TRANSFER_PICKER_H

/*
 * One picker per swarm.  It is told what peers have (bitfield, HAVE,
 * HAVE ALL, peer gone) and what happened to requests (sent, received,
 * written, hashed, timed out), and it answers "which blocks should I ask
 * this peer for?".  It never touches sockets, disks or clocks; randomness
 * comes from a PRNG state the caller owns, so a fixed seed gives a fixed
 * sequence of decisions.
 *
 * Peers are named by a caller-chosen 32-bit id (e.g. a connection slot).
 * The picker does not keep peers' bitfields: the caller owns one per peer
 * and passes it in; the picker keeps only the availability counts.
 *
 * Block life cycle (per block of a piece being downloaded):
 *
 *   NONE --picker_mark_requested--> REQUESTED --picker_mark_writing--> WRITING
 *     ^                                 |                                 |
 *     +--abort_request / peer_gone------+              picker_mark_finished
 *     |                                                                   v
 *     +------------------- picker_piece_failed (hash fail) ------- FINISHED
 *
 * When every block of a piece is FINISHED the caller hashes it and calls
 * picker_piece_verified() (the piece becomes "have": it is not requested
 * again; whether its data is durable yet is the caller's business), or
 * picker_piece_failed() which returns all its blocks to NONE and reports
 * which peers sent them.
 *
 * Pieces may have different lengths (BEP 52: every file starts on a piece
 * boundary, so each file's last piece is short); the caller gives every
 * piece's exact length.  Blocks are XFER_BLOCK_SIZE bytes except the last
 * block of a piece.
 *
 * Not thread-safe: one picker is used from one thread (the event loop).
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "transfer/bitfield.h"

/* Largest piece accepted (BEP 52 pieces are powers of two >= 16 KiB). */
#ifndef PICKER_MAX_PIECE_LEN
#define PICKER_MAX_PIECE_LEN (1u << 27)
#endif
/* Largest number of blocks one pick may return. */
#ifndef PICKER_MAX_PICK
#define PICKER_MAX_PICK 512u
#endif
/* Until we have this many pieces, new pieces are chosen at random rather
 * than rarest first, so a new node quickly has something to trade. */
#ifndef PICKER_RANDOM_FIRST
#define PICKER_RANDOM_FIRST 4u
#endif
/* Most distinct peers that can have contributed to one piece: one per
 * block (16 KiB, XFER_BLOCK_SIZE) of the largest piece.  A blame record of
 * picker_piece_blocks(piece) entries, never more than this, always holds
 * every contributor. */
#define PICKER_MAX_BLAME (PICKER_MAX_PIECE_LEN / 16384u)
/* In endgame a peer is offered blocks others are already sending only
 * while it has fewer than this many requests in flight (picker_peer.busy),
 * and only up to that many: a peer that is still sending our requests
 * gains nothing from more, and over slow uplinks deep duplicate queues
 * cost 10-20 % of the payload twice (bench/distribution --netns,
 * 2026-12-03).  An idle peer takes a duplicate, delivers it and takes the
 * next, so the last pieces still never wait on one slow peer. */
#ifndef PICKER_ENDGAME_BUSY
#define PICKER_ENDGAME_BUSY 2u
#endif
/* In endgame a block may be requested from at most this many peers. */
#ifndef PICKER_MAX_REQUESTERS
#define PICKER_MAX_REQUESTERS 4u
#endif

struct picker;

enum picker_block_state {
	PICKER_BLOCK_NONE = 0,  /* not requested from anyone */
	PICKER_BLOCK_REQUESTED, /* asked of one or more peers */
	PICKER_BLOCK_WRITING,   /* data received, being written to disk */
	PICKER_BLOCK_FINISHED,  /* on disk, piece not yet hashed */
	PICKER_BLOCK_HAVE,      /* the whole piece is verified */
};

/* One block to request: wire "request" is (piece, block * XFER_BLOCK_SIZE, len). */
struct picker_block {
	uint32_t piece;
	uint32_t block;
	uint32_t len;
};

/* The peer a pick is for. */
struct picker_peer {
	uint32_t id;                /* caller's name for the peer */
	const struct bitfield *has; /* pieces it has; nbits == piece count */
	uint32_t busy;              /* requests of ours it has in flight now */
};

/* Create a picker for `num_pieces` pieces whose exact byte lengths are
 * `piece_len[0..num_pieces-1]` (each 1..PICKER_MAX_PIECE_LEN).  All
 * pieces start wanted, missing and unseen.  Returns 0 and the picker in
 * *picker_out (free with picker_free), -EINVAL for a bad count or length,
 * or -ENOMEM. */
int picker_new(const uint32_t *piece_len, uint32_t num_pieces, struct picker **picker_out)
	__attribute__((warn_unused_result));

/* Free the picker (NULL is fine). */
void picker_free(struct picker *p);

/* ---- availability ------------------------------------------------------ */

/* A peer told us about pieces (BITFIELD message, or a whole bitfield at
 * once).  Every bit set in `incoming` but not yet in `peer_has` is set in
 * `peer_has` and counted once.  Returns 0, or -EINVAL if either bitfield
 * is not num_pieces long (nothing changes then). */
int picker_peer_bitfield(struct picker *p, struct bitfield *peer_has,
			 const struct bitfield *incoming) __attribute__((warn_unused_result));

/* A peer sent HAVE for `piece`: sets the bit in `peer_has` and counts it
 * if it was new.  Returns 0, -ERANGE for a piece out of range, -EINVAL for
 * a wrongly sized bitfield. */
int picker_peer_have(struct picker *p, struct bitfield *peer_has, uint32_t piece)
	__attribute__((warn_unused_result));

/* A peer sent HAVE ALL (BEP 6): like a bitfield with every bit set. */
int picker_peer_have_all(struct picker *p, struct bitfield *peer_has)
	__attribute__((warn_unused_result));

/* A peer disconnected: its pieces are no longer counted, and every block
 * it had requested and not delivered goes back to NONE (blocks it already
 * delivered stay, and still remember it for blame).  `peer_has` is left
 * as is for the caller to destroy.  Returns 0 or -EINVAL (wrong size). */
int picker_peer_gone(struct picker *p, uint32_t peer, const struct bitfield *peer_has)
	__attribute__((warn_unused_result));

/* How many connected peers have `piece` (0 when out of range). */
uint32_t picker_availability(const struct picker *p, uint32_t piece);

/* Does the peer have any piece we still want and do not have? */
bool picker_is_interesting(const struct picker *p, const struct bitfield *peer_has);

/* ---- picking ----------------------------------------------------------- */

/* Choose up to `want` (<= out_cap, <= PICKER_MAX_PICK) blocks to request
 * from `peer`, written to blocks_out in the order they should be sent.
 * Policy: blocks of pieces already in progress first (closest to done
 * first), then new pieces: at random while we have fewer than
 * PICKER_RANDOM_FIRST pieces, otherwise rarest first with random choice
 * among equally rare pieces.  In endgame
 * (every missing wanted block is already requested) blocks already
 * requested from other peers are offered again, never ones this peer was
 * already asked for, and only while the peer has fewer than
 * PICKER_ENDGAME_BUSY requests in flight (peer->busy).
 *
 * The pick changes no block state: call picker_mark_requested() for each
 * block actually sent.  `rng` is the caller's PRNG state (any value;
 * advanced).  Returns 0 and the count in *n_out (0 when the peer has
 * nothing we need), or -EINVAL for bad arguments. */
int picker_pick(struct picker *p, const struct picker_peer *peer, size_t want,
		struct picker_block *blocks_out, size_t out_cap, size_t *n_out, uint64_t *rng)
	__attribute__((warn_unused_result));

/* True when every missing wanted block has been requested at least once. */
bool picker_in_endgame(const struct picker *p);

/* ---- block transitions ------------------------------------------------- */

/* We sent a request for (piece, block) to `peer`.  NONE -> REQUESTED, or
 * (endgame) adds `peer` to the block's requesters.  Returns 0; -ERANGE
 * for a bad index; -EALREADY if `peer` already has it requested or the
 * block is already received; -EBUSY if PICKER_MAX_REQUESTERS peers have
 * it requested; -EPERM if the piece is not wanted or already had. */
int picker_mark_requested(struct picker *p, uint32_t peer, uint32_t piece, uint32_t block)
	__attribute__((warn_unused_result));

/* A request to `peer` timed out, was rejected or cancelled: the peer is
 * removed from the block's requesters and a block nobody else is asked
 * for goes back to NONE.  Returns 0, -ERANGE, or -ENOENT if `peer` had
 * not requested it. */
int picker_abort_request(struct picker *p, uint32_t peer, uint32_t piece, uint32_t block)
	__attribute__((warn_unused_result));

/* Data for (piece, block) arrived from `peer`: REQUESTED (or NONE, for a
 * late answer to a request that had timed out) -> WRITING, and `peer` is
 * remembered as its source.  The other peers it was requested from (in
 * endgame) are written to cancel_out (capacity PICKER_MAX_REQUESTERS is
 * always enough) so the caller can send them CANCEL.  Data for a skipped
 * (not wanted) piece is still accepted.  Returns 0; -ERANGE; -EALREADY if
 * the block was already received (drop the duplicate data); -EPERM if the
 * piece is already had; -ENOBUFS if cancel_cap is too small (nothing
 * changes then). */
int picker_mark_writing(struct picker *p, uint32_t peer, uint32_t piece, uint32_t block,
			uint32_t *cancel_out, size_t cancel_cap, size_t *n_cancel_out)
	__attribute__((warn_unused_result));

/* The block's data is written to disk: WRITING -> FINISHED.  Returns 1 if
 * that was the last block, so the whole piece is ready to hash, 0 if not,
 * -ERANGE, or -EINVAL if the block was not WRITING. */
int picker_mark_finished(struct picker *p, uint32_t piece, uint32_t block)
	__attribute__((warn_unused_result));

/* Writing the block failed (e.g. disk full): WRITING -> NONE.  Returns 0,
 * -ERANGE, or -EINVAL if the block was not WRITING. */
int picker_write_failed(struct picker *p, uint32_t piece, uint32_t block)
	__attribute__((warn_unused_result));

/* The piece hashed correctly: it becomes "have" and is never picked again
 * (its durability is the caller's: shoal records it only once synced).
 * Returns 0, -ERANGE, or -EINVAL unless every block was FINISHED. */
int picker_piece_verified(struct picker *p, uint32_t piece) __attribute__((warn_unused_result));

/* The piece failed its hash: every block returns to NONE, always, so the
 * piece is picked again whatever happens to the blame record.  The
 * distinct peers that delivered its blocks are written to blame_out (in
 * first-block order, at most blame_cap of them, count in *n_blame_out) so
 * the caller can penalise them; capacity picker_piece_blocks() (never more
 * than PICKER_MAX_BLAME) is always enough, and blame_out may be NULL when
 * blame_cap is 0.  Returns 0; -ERANGE; -EINVAL if the piece is not in
 * progress (nothing changes then); -ENOBUFS if blame_cap was too small to
 * name every contributor (the piece is reset all the same, and the first
 * blame_cap contributors are written). */
int picker_piece_failed(struct picker *p, uint32_t piece, uint32_t *blame_out, size_t blame_cap,
			size_t *n_blame_out) __attribute__((warn_unused_result));

/* ---- resume, priorities, queries --------------------------------------- */

/* Mark the pieces set in `verified` as had (loaded from the database at
 * start).  Pieces in progress that are now had drop their block state.
 * Returns 0 or -EINVAL (wrong size). */
int picker_load_have(struct picker *p, const struct bitfield *verified)
	__attribute__((warn_unused_result));

/* Piece priorities.  A piece of a higher priority is always picked before
 * one of a lower (a started piece before a new one of the same priority);
 * within a priority, rarest first (or in index order, sequential mode).
 * SKIP is never picked; its blocks in progress keep their state so
 * un-skipping resumes them.  FIRST is for the caller's "first and last
 * piece of a file first", DEADLINE for a streaming reader's window and NOW
 * for the newest one's (a seek), both taken in index order (whatever the
 * mode); the lowest-numbered piece of the highest of them in progress also
 * has its requested blocks asked of a second peer. */
enum picker_prio {
	PICKER_PRIO_SKIP = 0,
	PICKER_PRIO_LOW,
	PICKER_PRIO_NORMAL, /* every piece starts here */
	PICKER_PRIO_HIGH,
	PICKER_PRIO_FIRST,
	PICKER_PRIO_DEADLINE,
	PICKER_PRIO_NOW,    /* the newest reader's window: the one a person waits on */
	PICKER_PRIO_MAX = PICKER_PRIO_NOW,
};
/* Set a piece's priority.  Returns 0, -ERANGE or -EINVAL (no such priority). */
int picker_set_priority(struct picker *p, uint32_t piece, enum picker_prio prio)
	__attribute__((warn_unused_result));
/* The piece's priority (SKIP out of range). */
enum picker_prio picker_priority(const struct picker *p, uint32_t piece);
/* Want (NORMAL, or the priority it had if wanted) or skip a piece.  Returns
 * 0 or -ERANGE. */
int picker_set_wanted(struct picker *p, uint32_t piece, bool wanted)
	__attribute__((warn_unused_result));
/* Sequential mode: new pieces in index order within a priority, not rarest
 * first (and started pieces in index order too). */
void picker_set_sequential(struct picker *p, bool on);

/* The pieces we have (verified), for our own BITFIELD message. */
const struct bitfield *picker_have(const struct picker *p);

uint32_t picker_num_pieces(const struct picker *p);
/* Byte length of `piece` (0 when out of range). */
uint32_t picker_piece_len(const struct picker *p, uint32_t piece);
/* Number of blocks of `piece` (0 when out of range). */
uint32_t picker_piece_blocks(const struct picker *p, uint32_t piece);
/* State of one block (PICKER_BLOCK_HAVE for a verified piece; NONE for a
 * piece not started or an index out of range). */
enum picker_block_state picker_block_state(const struct picker *p, uint32_t piece, uint32_t block);
/* Is every wanted piece had? */
bool picker_is_complete(const struct picker *p);

/* Check every internal invariant (counters, indexes, block states).  For
 * tests and debug builds; O(pieces + blocks in progress).  Returns 0, or
 * -EFAULT naming the first broken invariant in *what_out (static string). */
int picker_check_invariants(const struct picker *p, const char **what_out)
	__attribute__((warn_unused_result));

#endif
