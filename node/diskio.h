/* diskio.h: a swarm's disk layer: storage, the write/verify/read jobs on the
 * worker pool, and which verified pieces are durable yet.
 *
 * The engine calls down (write, verify, read, note a verified piece, flush,
 * flush now, new generation) and hears back through the callbacks it gave
 * diskio_new (struct diskio_ops).  This layer knows no peer, picker, swarm
 * row or database: it decides nothing about the swarm, it only says what the
 * disk did.
 *
 * Threading contract.  A diskio belongs to the event-loop thread: every
 * function below is called on the loop, and every callback runs on the loop
 * (from the worker pool's completions, or from inside a call below where
 * said).  Worker threads run only the job functions of diskio.c, and they
 * touch exactly this:
 *
 *   lock        the I/O lock.  Every storage_* call on a worker holds it;
 *               fdatasync and hashing run without it.  The loop takes it
 *               too, to change `gen` and in diskio_flush_now.
 *   storage     the pointer is set by diskio_new and freed by diskio_free,
 *               which the owner calls only when diskio_busy() is false.  Its
 *               mutable state (open files, kept sync errors, the files it
 *               created) is used only under the lock; its layout (which
 *               file holds a piece, the number of files), fixed by
 *               storage_new, is also read on the loop without it.
 *   meta        read by verify jobs (the piece layers); immutable for the
 *               diskio's life.
 *   gen         written on the loop under the lock (diskio_new_generation),
 *               read by write jobs under the lock: a batch of an older
 *               generation writes nothing, so a block fetched for an old
 *               picker can never land on a piece fetched again, verified and
 *               recorded since.
 *   metrics     the pointer is set on the loop before the first job
 *               (diskio_set_metrics) and only read after; workers add to
 *               its disk byte counters and fdatasync histogram, which are
 *               relaxed atomics (node/metrics.h says why that is enough).
 *   job structs allocated on the loop, handed to one worker by
 *               workers_submit, owned by the job until its completion frees
 *               it on the loop.  The worker writes only the job's own result
 *               fields and its blocks' rc, data and leaf.  A write job owns
 *               its blocks; a verify job owns its pieces' leaves; a sync job
 *               owns a copy of the bitmap of pieces it syncs (so noting more
 *               pieces meanwhile never touches what a worker reads), a
 *               per-file mtime array and a per-file failure array.
 *
 * Everything else (the write and verify queues, the unsynced/syncing
 * bitmaps, the counters, and the caller's total given to
 * diskio_count_into) is the loop's own and never seen by a worker.
 *
 * Completions may run after the engine is freed (workers_free drains them):
 * the callbacks get the `ctx` given to diskio_new, which must outlive every
 * job (the owner frees the diskio, and ctx, only when diskio_busy() is
 * false).  Each completion calls ops->job_ended last and touches the diskio
 * no more after it, so job_ended may free the diskio.
 *
 * Durability.  A verified piece goes: diskio_note_verified (the unsynced
 * bitmap) -> a sync job (diskio_flush copies the bitmap into the job and
 * keeps its own copy as `syncing`) -> the completion: pieces whose file was
 * fdatasync'd are durable, pieces not synced go back to unsynced, pieces of a
 * file whose sync failed are lost (ops->lost) -> ops->durable.  The engine
 * records the have-bitmap only through its one gate, masking it with
 * diskio_mask_pending.  Both bitmaps are allocated by diskio_new, so noting
 * or re-queueing a piece never allocates and never drops one. */
#ifndef SHOAL_NODE_DISKIO_H
#define SHOAL_NODE_DISKIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "transfer/transfer.h"
#include "transfer/wire.h"

struct diskio;
struct metainfo;
struct storage;
struct workers;

/* Disk work goes to the workers in batches: up to two write batches and two
 * verify batches in flight per swarm.  A job per 16 KiB block made thread
 * hand-offs, not the disk or the hash, the bottleneck.  Two write batches
 * at once: each also hashes its blocks (outside the lock), and one at a time
 * left that hashing, the leecher's largest cost, on a single core. */
#define IO_BATCH 64
#define WRITE_PARALLEL 2
#define VERIFY_BATCH 16
#define VERIFY_PARALLEL 2
#define READ_BATCH 16

/* One 16 KiB block on its way to or from the disk. */
struct block {
	uint32_t peer;        /* uid of the peer it came from or goes to */
	uint32_t piece, begin, len;
	uint32_t avail;       /* reads: bytes of file data; the rest of len is padding */
	int rc;               /* the job's result (-ECANCELED until it ran) */
	bool hash;            /* writes: hash the block into `leaf` (v2) */
	uint8_t leaf[32];     /* writes: the block's SHA-256, hashed by the write job */
	uint8_t hdr[WIRE_PIECE_HDR_LEN]; /* reads: the PIECE header, right before data, */
	uint8_t data[XFER_BLOCK_SIZE];   /* so the message is sent from one buffer */
};

/* How a write batch came back. */
enum diskio_written {
	DISKIO_WRITTEN,  /* of the current generation: each block's rc says */
	DISKIO_STALE,    /* of an older generation: nothing was written */
};

/* The callbacks up to the engine.  All run on the loop with `ctx`. */
struct diskio_ops {
	/* A write batch came back.  When DISKIO_WRITTEN, b[i]->rc is 0 (on
	 * disk, and b[i]->leaf hashed when b[i]->hash) or a negative errno
	 * (-EACCES: a file the swarm may not write; -ENOSPC, -EIO, ...).  The
	 * blocks are no longer counted in diskio_write_queued and are freed
	 * after the call.  Queued work does not start by itself after a
	 * completion: the engine calls diskio_kick here and in `verified`
	 * unless its swarm is stopped. */
	void (*written)(void *ctx, struct block *const *b, size_t n, enum diskio_written how);
	/* A verify batch came back: rc[i] is piece[i]'s verdict (0 verified,
	 * -EBADMSG mismatch, -ECANCELED never ran, another negative errno: I/O).
	 * `current`: submitted under the current generation; an older one's
	 * verdicts mean nothing. */
	void (*verified)(void *ctx, const uint32_t *piece, const int *rc, size_t n, bool current);
	/* A read batch for peer `peer` came back: b[i]->rc is 0 (data filled,
	 * zero-padded past avail) or a negative errno.  The callee takes every
	 * block (sends or frees it). */
	void (*read)(void *ctx, uint32_t peer, struct block **b, size_t n);
	/* A block-hash job (diskio_leaves) for peer `peer` came back: rc 0 and
	 * `width` leaves (the piece's blocks' SHA-256, then zeros: BEP 52's
	 * base layer under one piece), or a negative errno.  `leaves` is freed
	 * after the call. */
	void (*leaves)(void *ctx, uint32_t peer, uint32_t piece, const uint8_t *leaves,
		       size_t width, int rc, const void *tag, size_t tag_len);
	/* The sync of some files failed: the pieces set in `lost` (a bitmap of
	 * the swarm's pieces) were verified but may be gone from the disk;
	 * they are no longer pending here.  The engine un-verifies them and
	 * rebuilds its picker, even when `lost` is empty (a piece of such a
	 * file may still be in a write or verify job).  Returns the number of
	 * pieces it dropped, for the log.  May call back into this layer. */
	size_t (*lost)(void *ctx, const uint8_t *lost);
	/* A sync job came back: pending pieces whose file synced are durable
	 * now.  mtimes_ns[f] (nfiles of them) is file f's mtime right after its
	 * successful fdatasync, or -1.  The engine records its bitmap through
	 * its gate (masked with diskio_mask_pending).  May call back. */
	void (*durable)(void *ctx, const int64_t *mtimes_ns, size_t nfiles);
	/* A job of this diskio has ended (called last by every completion; the
	 * diskio is not touched after it, so the callee may free it). */
	void (*job_ended)(void *ctx);
};

/* A disk layer over `storage` (taken: freed by diskio_free, also on
 * failure) for the pieces of `meta` (kept, must outlive the diskio), with
 * jobs on `workers`.  `label` names it in logs ("swarm 3").  Returns 0 and
 * *out, or -ENOMEM. */
int diskio_new(struct storage *storage, const struct metainfo *meta, struct workers *workers,
	       const struct diskio_ops *ops, void *ctx, const char *label, struct diskio **out)
	__attribute__((warn_unused_result));
/* Count the disk bytes and time the fdatasyncs of this diskio into `m`
 * (node/metrics.h), which must outlive every job.  Called before the
 * first job; NULL (the default) counts nothing. */
struct node_metrics;
void diskio_set_metrics(struct diskio *dio, struct node_metrics *m);
/* Free the queues, the bitmaps and the storage (closing files without
 * syncing).  Only when diskio_busy() is false.  NULL is fine. */
void diskio_free(struct diskio *dio);

/* Jobs submitted whose completion has not run yet. */
bool diskio_busy(const struct diskio *dio);
/* Not busy, and nothing queued: no write, no verify, no verified piece
 * waiting for its sync.  Freeing it now loses nothing. */
bool diskio_quiet(const struct diskio *dio);
/* Bytes of received blocks queued for or in a write job. */
size_t diskio_write_queued(const struct diskio *dio);
/* Keep *total (loop-owned, outliving the diskio; NULL: none) added to as
 * diskio_write_queued changes, so a caller with many diskios reads their
 * sum in O(1).  What is queued now moves into the new total. */
void diskio_count_into(struct diskio *dio, size_t *total);
/* Index of the file holding `piece`, or SIZE_MAX; the number of files. */
size_t diskio_piece_file(const struct diskio *dio, uint32_t piece);
size_t diskio_file_count(const struct diskio *dio);

/* Change file `fi`'s access (an enum storage_access) under the I/O lock, so
 * no job is between its check and its write (storage_set_access).  An
 * access the storage already has is left alone (a file it created itself
 * is STORAGE_OWN there before the caller hears of it).  Returns 0 or a
 * negative errno. */
int diskio_set_file_access(struct diskio *dio, size_t fi, int access)
	__attribute__((warn_unused_result));

/* storage_create_file under the I/O lock (a file un-skipped: made now, so
 * it is the swarm's own before it records it so). */
int diskio_create_file(struct diskio *dio, size_t fi) __attribute__((warn_unused_result));

/* Hash piece `piece`'s blocks from disk on a worker, for a peer that asked
 * for them (BEP 52 hash request of the base layer): ops->leaves gets
 * `width` hashes (the piece's blocks, then 32 zero bytes each) and the
 * caller's `tag` (at most 64 bytes, copied: the request to answer).
 * Returns 0, -EINVAL or -ENOMEM. */
int diskio_leaves(struct diskio *dio, uint32_t peer, uint32_t piece, size_t width,
		  const void *tag, size_t tag_len) __attribute__((warn_unused_result));

/* A new generation (the engine's picker was rebuilt): queued writes are
 * freed (and leave diskio_write_queued), queued verifies dropped; jobs in
 * flight come back stale, and write jobs not yet run write nothing. */
void diskio_new_generation(struct diskio *dio);

/* Queue a received block for writing (taken on success) and start write
 * batches while fewer than WRITE_PARALLEL run.  Returns 0, or -ENOMEM with
 * the block still the caller's. */
int diskio_write(struct diskio *dio, struct block *b) __attribute__((warn_unused_result));
/* Queue piece `piece`, whose blocks are all written, for hashing against
 * its piece layer; `leaves` (its blocks' SHA-256 in order, or NULL to read
 * the piece back) is taken in every case.  Nothing starts until
 * diskio_kick.  Returns 0 or -ENOMEM (the piece is not queued). */
int diskio_verify(struct diskio *dio, uint32_t piece, uint8_t *leaves)
	__attribute__((warn_unused_result));
/* Start queued write and verify batches, as many as the limits allow.  A
 * batch whose submission fails stays queued for the next kick. */
void diskio_kick(struct diskio *dio);
/* Read blocks (b[i]->piece, begin, avail; len bytes with padding) for peer
 * `peer`; n <= READ_BATCH.  Returns 0 with the blocks taken (ops->read
 * gives them back), or a negative errno with them still the caller's. */
int diskio_read(struct diskio *dio, uint32_t peer, struct block *const *b, size_t n)
	__attribute__((warn_unused_result));

/* A piece passed its hash: make it durable before it is recorded.  Never
 * allocates. */
void diskio_note_verified(struct diskio *dio, uint32_t piece);
/* Start a sync job for the pieces noted since the last one, unless one is
 * in flight.  Returns true when nothing waits and no sync is in flight
 * (the bitmap may be recorded now), false otherwise (ops->durable will
 * come; after an allocation failure, the next flush tries again). */
bool diskio_flush(struct diskio *dio);
/* At shutdown, on the loop thread: fdatasync every file with pending
 * pieces now (each file once; a sync job in flight is not trusted, its
 * files are synced again).  Pieces of files that synced are durable; of
 * files that failed, lost (ops->lost is called, before this returns).
 * Returns 0 (all durable), -EIO (some lost), or -ENOMEM (nothing done). */
int diskio_flush_now(struct diskio *dio) __attribute__((warn_unused_result));
/* Clear from `bm` (nbytes of a bitmap of the swarm's pieces) every piece
 * not yet durable: noted and waiting, or in the sync job in flight. */
void diskio_mask_pending(const struct diskio *dio, uint8_t *bm, size_t nbytes);

#endif
