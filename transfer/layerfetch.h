/* layerfetch.h: BEP 52 piece-layer fetching that accepts only answers; a core with no I/O. */
#ifndef SHOAL_TRANSFER_LAYERFETCH_H
#define SHOAL_TRANSFER_LAYERFETCH_H

/*
 * A magnet join learns each file's piece layer (the SHA-256 of every
 * piece) from peers with BEP 52 hash requests, in chunks of at most
 * `chunk_max` hashes.  A layer can be checked only when whole (it must
 * hash up to the file's pieces root), so whoever sent a chunk of a bad
 * layer cannot be told apart from whoever sent the rest.  Accepting any
 * HASHES message of the right shape let a liar slip in one unsolicited
 * bogus chunk and have the honest peer that completed the layer banned.
 *
 * Here each file's layer is asked of one peer at a time, every chunk of
 * it, and a chunk is accepted only from the peer it was asked of (per
 * chunk: asked peer, received or not).  Asking another peer for a file
 * drops what came for it before, so a complete layer always has exactly
 * one sender: layerfetch_failed() names it, and only it.
 *
 * Files are numbered as in the metainfo; a file needs a layer when its
 * piece count is 2 or more.  Peers are caller-chosen 32-bit ids.
 * Not thread-safe.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Files a fetcher tracks, and the largest piece count of one file (its
 * layer buffer is piece_count * 32 bytes, allocated at its first chunk). */
#define LAYERFETCH_MAX_FILES (1u << 20)
#define LAYERFETCH_MAX_PIECES (1u << 24)

struct layerfetch;

/* One hash request to send: hashes [index, index + length) of `file`. */
struct layerfetch_req {
	uint32_t file;
	uint32_t index;
	uint32_t length;
};

/* A fetcher for `nfiles` files with piece_count[f] pieces each (0 or 1:
 * no layer wanted; also pass 0 for a file whose layer is already known).
 * chunk_max is the most hashes per request (a power of two).  Each file's
 * chunk is min(chunk_max, next power of two >= its piece count).  Returns
 * 0, -EINVAL for bad arguments, or -ENOMEM. */
int layerfetch_new(const uint32_t *piece_count, size_t nfiles, uint32_t chunk_max,
		   struct layerfetch **out) __attribute__((warn_unused_result));
void layerfetch_free(struct layerfetch *lf);

/* Hashes per request for `file` (0 when it needs no layer or is out of range). */
uint32_t layerfetch_chunk(const struct layerfetch *lf, uint32_t file);

/* Ask `peer` for every layer still missing: everything received for those
 * files from other peers is dropped, and each of their chunks is now asked
 * of `peer`.  Up to `cap` requests are written; returns how many were
 * needed (more than cap means the rest were not recorded as asked). */
size_t layerfetch_ask(struct layerfetch *lf, uint32_t peer, struct layerfetch_req *out,
		      size_t cap);

/* HASHES from `peer`: `count` hashes (32 bytes each) for request (file,
 * index, length).  Returns 0 (stored), 1 (stored and the file's layer is
 * whole: check layerfetch_layer(), then layerfetch_done() or
 * layerfetch_failed()), -EPERM when that chunk is not outstanding from
 * this peer (unsolicited, duplicate or late: ignore it, blame no one),
 * -EINVAL when the shape is not one we ask for (index, length, count), or
 * -ENOMEM.  Nothing changes on an error. */
int layerfetch_on_hashes(struct layerfetch *lf, uint32_t peer, uint32_t file, uint32_t index,
			 uint32_t length, const uint8_t *hashes, size_t count)
	__attribute__((warn_unused_result));

/* `peer` rejected the request for (file, index): the chunk is no longer
 * outstanding.  Returns 0, or -ENOENT if it was not asked of that peer. */
int layerfetch_reject(struct layerfetch *lf, uint32_t peer, uint32_t file, uint32_t index);

/* `peer` left: its outstanding chunks are no longer asked of anyone. */
void layerfetch_peer_gone(struct layerfetch *lf, uint32_t peer);

/* The whole layer of `file` (piece_count * 32 bytes in *len_out) once
 * layerfetch_on_hashes returned 1 for it, else NULL. */
const uint8_t *layerfetch_layer(const struct layerfetch *lf, uint32_t file, size_t *len_out);

/* The layer of `file` checked out and was installed: it is no longer
 * wanted and its buffer is freed.  Returns 0 or -EINVAL if it was not
 * whole. */
int layerfetch_done(struct layerfetch *lf, uint32_t file);

/* The layer of `file` failed its pieces root: it is dropped and wanted
 * again.  Returns 0 and its one sender in *sender_out, or -EINVAL if it
 * was not whole. */
int layerfetch_failed(struct layerfetch *lf, uint32_t file, uint32_t *sender_out);

/* Is every wanted layer done? */
bool layerfetch_complete(const struct layerfetch *lf);

#endif
