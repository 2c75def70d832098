/* mdfetch.h: BEP 9 metadata fetching with an agreed size; a core with no I/O. */
#ifndef SHOAL_TRANSFER_MDFETCH_H
#define SHOAL_TRANSFER_MDFETCH_H

/*
 * A magnet join knows only the info-hash; the info dictionary comes from
 * peers in 16 KiB pieces (BEP 9), and its size comes from each peer's
 * extension handshake (`metadata_size`).  Any peer can lie about either.
 * Trusting the first peer's size for good let one liar stall a join: the
 * buffer was sized by it and only peers announcing that size were asked.
 *
 * So every announced size is a candidate, and one at a time is fetched
 * (one buffer, at most WIRE_METADATA_MAX bytes): the candidate that failed
 * and stalled the fewest times, then the one most peers announce, then
 * the one heard first.  A size is "agreed" only when its pieces assemble
 * into a dictionary that hashes to the info-hash (the caller checks that:
 * this core does no hashing).  When the check fails, the data is dropped,
 * the distinct senders are reported for blame, and the next candidate is
 * chosen; a fetch round (the caller's re-ask timer) in which the fetched
 * size received nothing counts as a stall and also moves on.
 *
 * Each piece remembers the one peer it was asked of and, once received,
 * its sender: data is accepted only from the peer that was asked for it,
 * with the total_size being fetched.
 *
 * Peers are named by caller-chosen 32-bit ids.  Not thread-safe.
 *
 * Piece life cycle (of the size being fetched):
 *   NONE --mdfetch_pick--> ASKED(peer) --mdfetch_data from that peer--> HAVE(sender)
 *     ^                        |
 *     +-- mdfetch_reject, mdfetch_peer_gone, mdfetch_round
 *   Any change of the fetched size drops every piece back to NONE.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "transfer/wire.h"

/* Distinct announced sizes remembered at once.  An entry that no connected
 * peer announces any more is reused for a new size; past that, a new size
 * is refused (-ENOSPC) until a peer leaves. */
#ifndef MDFETCH_MAX_SIZES
#define MDFETCH_MAX_SIZES 8u
#endif
/* Pieces of the largest metadata (WIRE_METADATA_MAX / 16 KiB): also the
 * most distinct senders mdfetch_failed() can report. */
#define MDFETCH_MAX_PIECES (WIRE_METADATA_MAX / WIRE_METADATA_PIECE)

struct mdfetch;

/* Returns 0 and a fetcher in *out (free with mdfetch_free), or -ENOMEM. */
int mdfetch_new(struct mdfetch **out) __attribute__((warn_unused_result));
void mdfetch_free(struct mdfetch *mf);

/* A peer's extension handshake announced `size`.  Call once per peer, and
 * mdfetch_peer_gone() with the same size when it leaves.  Returns 0,
 * -EMSGSIZE for 0 or a size above WIRE_METADATA_MAX (not counted), or
 * -ENOSPC when MDFETCH_MAX_SIZES sizes are announced (not counted). */
int mdfetch_announce(struct mdfetch *mf, uint32_t size) __attribute__((warn_unused_result));

/* A peer that announced `size` (counted by mdfetch_announce) left: pieces
 * asked of it return to NONE, and if no one announces the fetched size any
 * more another candidate is chosen.  Returns true when the fetched size
 * changed (ask the peers again). */
bool mdfetch_peer_gone(struct mdfetch *mf, uint32_t peer, uint32_t size);

/* The size being fetched, 0 if none. */
uint32_t mdfetch_size(const struct mdfetch *mf);

/* Pieces to ask `peer`, which announced `size`, for now: up to `cap`
 * piece numbers written to pieces_out, each now ASKED of `peer`.  Returns
 * how many (0 when `size` is not the one being fetched or nothing is
 * left to ask). */
size_t mdfetch_pick(struct mdfetch *mf, uint32_t peer, uint32_t size, uint32_t *pieces_out,
		    size_t cap);

/* `peer` rejected a request for `piece`: ASKED(peer) -> NONE.  Returns 0,
 * or -ENOENT when the piece was not asked of that peer. */
int mdfetch_reject(struct mdfetch *mf, uint32_t peer, uint32_t piece);

/* A data message: `len` bytes of `piece` from `peer`, which says the whole
 * dictionary is `total_size` bytes.  Returns 0 (stored), 1 (stored, and
 * every piece is in: check mdfetch_buffer() and call mdfetch_failed() if
 * it does not hash to the info-hash), -EPERM when the piece was not asked
 * of this peer (unsolicited or late: ignore it), -EINVAL when total_size
 * is not the size being fetched or len is not the piece's length, or
 * -ENOMEM.  Nothing changes on an error. */
int mdfetch_data(struct mdfetch *mf, uint32_t peer, uint32_t piece, uint32_t total_size,
		 const uint8_t *data, size_t len) __attribute__((warn_unused_result));

/* The assembled dictionary once mdfetch_data() returned 1 (length in
 * *len_out), else NULL.  Owned by the fetcher. */
const uint8_t *mdfetch_buffer(const struct mdfetch *mf, size_t *len_out);

/* The assembled dictionary did not hash to the info-hash (or did not
 * parse): the distinct peers that sent its pieces are written to
 * blame_out (first-piece order; capacity MDFETCH_MAX_PIECES is always
 * enough, fewer writes only the first blame_cap), the data is dropped,
 * the size counts one failure, and the next candidate is chosen.  Returns
 * the number of distinct senders (which may exceed blame_cap), or -EINVAL
 * when no dictionary was complete. */
int mdfetch_failed(struct mdfetch *mf, uint32_t *blame_out, size_t blame_cap);

/* A re-ask round (the caller's timer): pieces still ASKED return to NONE;
 * if the fetched size received no piece since the previous round it
 * counts a stall and the next candidate is chosen.  Returns true when the
 * fetched size changed. */
bool mdfetch_round(struct mdfetch *mf);

/* Check the internal invariants; 0 or -EFAULT with a static description. */
int mdfetch_check_invariants(const struct mdfetch *mf, const char **what_out)
	__attribute__((warn_unused_result));

#endif
