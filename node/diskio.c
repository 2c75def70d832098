/* diskio.c: the disk layer: write, verify, read and sync jobs on the workers, and the pending-durability bitmaps.  The threading contract is in diskio.h. */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/bytes.h"
#include "common/log.h"
#include "common/sha1.h"
#include "common/sha256.h"
#include "node/diskio.h"
#include "node/metrics.h"
#include "node/workers.h"
#include "transfer/merkle.h"
#include "transfer/metainfo.h"
#include "transfer/storage.h"

struct verify_entry {
	uint32_t piece;
	uint8_t *leaves;      /* owned, or NULL */
};

struct diskio {
	pthread_mutex_t lock;         /* see the contract in diskio.h */
	struct storage *storage;      /* owned; state used only under lock */
	const struct metainfo *meta;  /* immutable, read by verify jobs */
	struct workers *workers;
	struct diskio_ops ops;
	void *ctx;
	char label[32];
	unsigned gen;                 /* written on the loop under lock */
	unsigned jobs;                /* submitted, completion not yet run */
	/* Writes: received blocks waiting for a batch. */
	struct block **wq;
	size_t n_wq, cap_wq;
	unsigned writes_inflight;
	size_t write_queued;          /* bytes in wq and in write jobs */
	size_t *write_total;          /* the caller's sum over every diskio, or NULL */
	/* Verifies: pieces waiting for a batch. */
	struct verify_entry *vq;
	size_t n_vq, cap_vq;
	unsigned verify_inflight;
	/* Verified pieces not yet known to be on disk (one bit a piece):
	 * unsynced waits for the next sync job, syncing is the loop's copy of
	 * what the job in flight holds (the job owns another copy). */
	uint8_t *unsynced, *syncing;
	size_t nbytes, n_unsynced;
	uint32_t npieces;
	bool sync_inflight;
	struct node_metrics *metrics; /* NULL: none; set before the first job, then
				       * only read (workers add to its atomics) */
};

struct write_batch {
	struct diskio *dio;
	unsigned gen;         /* dio->gen when submitted */
	size_t n;
	struct block *b[IO_BATCH];
};

struct read_batch {
	struct diskio *dio;
	uint32_t peer;
	size_t n;
	struct block *b[READ_BATCH];
};

struct verify_batch {
	struct diskio *dio;
	unsigned gen;         /* dio->gen when submitted */
	size_t n;
	uint32_t piece[VERIFY_BATCH];
	uint8_t *leaves[VERIFY_BATCH]; /* owned, or NULL */
	int rc[VERIFY_BATCH]; /* 0 verified, -EBADMSG mismatch, other I/O error */
};

struct sync_job {
	struct diskio *dio;  /* on the worker: only storage, lock and metrics */
	uint8_t *pieces;     /* owned: bitmap of the pieces to make durable; the
			      * worker clears each one that became durable */
	int64_t *mtimes_ns;  /* owned, per file: its mtime just after a
			      * successful fdatasync, else -1 (set so by
			      * diskio_flush: a job that never runs has none) */
	uint8_t *failed;     /* owned, per file: 1 when its sync failed (its
			      * pieces in `pieces` are lost, not pending) */
	size_t nbytes, nfiles;
	int rc;              /* the first error, for the log */
};

/* The registry's disk counters (node/metrics.h: relaxed atomics, any thread). */
static void count_disk(const struct diskio *dio, bool written, uint64_t n)
{
	if (dio->metrics && n)
		atomic_fetch_add_explicit(written ? &dio->metrics->disk_written_bytes
						  : &dio->metrics->disk_read_bytes,
					  n, memory_order_relaxed);
}

/* fdatasync(fd), timed into the registry's histogram. */
static int timed_fdatasync(const struct diskio *dio, int fd)
{
	uint64_t t0 = dio->metrics ? metrics_now_ns() : 0;
	int rc = fdatasync(fd);
	if (dio->metrics)
		metrics_hist_observe(&dio->metrics->fdatasync, metrics_now_ns() - t0);
	return rc;
}

static void work_write(void *arg);
static void done_write(void *arg);
static int submit_write(struct diskio *dio);
static void kick_writes(struct diskio *dio);
static int verify_one(struct diskio *dio, uint32_t piece, const uint8_t *leaves,
		      struct sha256_ctx *ctx, struct sha1_ctx *sha1, uint8_t *buf, size_t buf_len);
static void work_verify(void *arg);
static void done_verify(void *arg);
static int submit_verify(struct diskio *dio);
static void work_read(void *arg);
static void done_read(void *arg);
static void sync_job_free(struct sync_job *j);
static void work_sync(void *arg);
static void done_sync(void *arg);
static void job_ended(struct diskio *dio);

/* ------------------------------------------------------------ life */

int diskio_new(struct storage *storage, const struct metainfo *meta, struct workers *workers,
	       const struct diskio_ops *ops, void *ctx, const char *label, struct diskio **out)
{
	struct diskio *dio = calloc(1, sizeof *dio);
	size_t nb = (meta->total_pieces + 7) / 8;
	if (dio) {
		dio->unsynced = calloc(nb ? nb : 1, 1);
		dio->syncing = calloc(nb ? nb : 1, 1);
	}
	if (!dio || !dio->unsynced || !dio->syncing) {
		if (dio) {
			free(dio->unsynced);
			free(dio->syncing);
		}
		free(dio);
		storage_free(storage);
		return -ENOMEM;
	}
	pthread_mutex_init(&dio->lock, NULL);
	dio->storage = storage;
	dio->meta = meta;
	dio->workers = workers;
	dio->ops = *ops;
	dio->ctx = ctx;
	snprintf(dio->label, sizeof dio->label, "%s", label);
	dio->nbytes = nb;
	dio->npieces = meta->total_pieces;
	*out = dio;
	return 0;
}

/* Change write_queued, and the caller's sum with it (unsigned wrap). */
static void count_queued(struct diskio *dio, size_t add, size_t sub)
{
	dio->write_queued = dio->write_queued + add - sub;
	if (dio->write_total)
		*dio->write_total = *dio->write_total + add - sub;
}

void diskio_count_into(struct diskio *dio, size_t *total)
{
	if (dio->write_total)
		*dio->write_total -= dio->write_queued;
	dio->write_total = total;
	if (total)
		*total += dio->write_queued;
}

void diskio_set_metrics(struct diskio *dio, struct node_metrics *m)
{
	dio->metrics = m;
}

void diskio_free(struct diskio *dio)
{
	if (!dio)
		return;
	count_queued(dio, 0, dio->write_queued);
	storage_free(dio->storage);
	for (size_t i = 0; i < dio->n_wq; i++)
		free(dio->wq[i]);
	free(dio->wq);
	for (size_t i = 0; i < dio->n_vq; i++)
		free(dio->vq[i].leaves);
	free(dio->vq);
	free(dio->unsynced);
	free(dio->syncing);
	pthread_mutex_destroy(&dio->lock);
	free(dio);
}

bool diskio_busy(const struct diskio *dio)
{
	return dio->jobs > 0;
}

bool diskio_quiet(const struct diskio *dio)
{
	return dio->jobs == 0 && dio->n_wq == 0 && dio->n_vq == 0 && dio->n_unsynced == 0;
}

size_t diskio_write_queued(const struct diskio *dio)
{
	return dio->write_queued;
}

size_t diskio_piece_file(const struct diskio *dio, uint32_t piece)
{
	size_t first;
	return storage_piece_files(dio->storage, piece, &first) ? first : SIZE_MAX;
}

/* Is any file holding a byte of `piece` marked in `bad` (nf entries)? */
static bool piece_in_bad_file(const struct diskio *dio, uint32_t piece, const uint8_t *bad,
			      size_t nf)
{
	size_t first;
	size_t n = storage_piece_files(dio->storage, piece, &first);
	for (size_t fi = first; n && fi < first + n; fi++)
		if (fi < nf && bad[fi])
			return true;
	return false;
}

size_t diskio_file_count(const struct diskio *dio)
{
	return storage_file_count(dio->storage);
}

int diskio_set_file_access(struct diskio *dio, size_t fi, int access)
{
	pthread_mutex_lock(&dio->lock);
	int rc = storage_file_access(dio->storage, fi) == (enum storage_access)access
			 ? 0
			 : storage_set_access(dio->storage, fi, (enum storage_access)access);
	pthread_mutex_unlock(&dio->lock);
	return rc;
}

int diskio_create_file(struct diskio *dio, size_t fi)
{
	pthread_mutex_lock(&dio->lock);
	int rc = storage_create_file(dio->storage, fi);
	pthread_mutex_unlock(&dio->lock);
	return rc;
}

void diskio_new_generation(struct diskio *dio)
{
	pthread_mutex_lock(&dio->lock);
	dio->gen++;
	pthread_mutex_unlock(&dio->lock);
	for (size_t i = 0; i < dio->n_wq; i++) {
		count_queued(dio, 0, dio->wq[i]->len);
		free(dio->wq[i]);
	}
	dio->n_wq = 0;
	for (size_t i = 0; i < dio->n_vq; i++)
		free(dio->vq[i].leaves);
	dio->n_vq = 0;
}

/* The last thing every completion does: the callee may free the diskio. */
static void job_ended(struct diskio *dio)
{
	dio->jobs--;
	dio->ops.job_ended(dio->ctx);
}

/* ------------------------------------------------------------ writes */

/* Write the batch, and hash each block (a BEP 52 leaf) while it is in
 * memory, so a complete piece is verified from its leaves without reading
 * it back.  A batch of an older generation writes nothing (dio->gen). */
/* Write the batch's blocks, under the lock.  A v2-only swarm's blocks go
 * in runs: sorted by place (a stable insertion sort; n <= IO_BATCH), each
 * run of blocks that follow each other in one piece copied into the
 * worker's aligned scratch buffer and written by one
 * storage_write_aligned, which sends whole 4 KiB pages around the page
 * cache.  The kernel's copy into the page cache was the leecher's largest
 * cost (bench/RESULTS.md), and nothing reads these pages back: the leaves
 * are hashed from the blocks.  v1 and hybrid pieces are read back to be
 * SHA-1 checked, so their blocks stay in the page cache, one write each. */
static void write_blocks(struct diskio *dio, struct write_batch *j)
{
	const struct metainfo *mi = dio->meta;
	uint8_t *bounce = mi && mi->has_v2 && !mi->has_v1
				  ? workers_scratch((size_t)IO_BATCH * XFER_BLOCK_SIZE)
				  : NULL;
	if (bounce == NULL) {
		for (size_t i = 0; i < j->n; i++)
			j->b[i]->rc = storage_write(dio->storage, j->b[i]->piece, j->b[i]->begin,
						    j->b[i]->data, j->b[i]->len);
		return;
	}
	struct block *o[IO_BATCH];
	for (size_t i = 0; i < j->n; i++) {
		struct block *b = j->b[i];
		size_t k = i;
		for (; k > 0 && (o[k - 1]->piece > b->piece ||
				 (o[k - 1]->piece == b->piece && o[k - 1]->begin > b->begin));
		     k--)
			o[k] = o[k - 1];
		o[k] = b;
	}
	for (size_t i = 0; i < j->n;) {
		size_t k = i + 1, run = o[i]->len;
		while (k < j->n && o[k]->piece == o[i]->piece &&
		       o[k]->begin == o[k - 1]->begin + o[k - 1]->len)
			run += o[k++]->len;
		for (size_t at = 0, m = i; m < k; at += o[m]->len, m++)
			memcpy(bounce + at, o[m]->data, o[m]->len);
		int rc = storage_write_aligned(dio->storage, o[i]->piece, o[i]->begin, bounce, run);
		for (; i < k; i++)
			o[i]->rc = rc;
	}
}

static void work_write(void *arg)
{
	struct write_batch *j = arg;
	struct diskio *dio = j->dio;
	pthread_mutex_lock(&dio->lock);
	bool current = j->gen == dio->gen;
	uint64_t written = 0;
	if (current)
		write_blocks(dio, j);
	for (size_t i = 0; i < j->n; i++) {
		if (!current)
			j->b[i]->rc = -ECANCELED;
		if (j->b[i]->rc == 0)
			written += j->b[i]->len;
	}
	pthread_mutex_unlock(&dio->lock);
	count_disk(dio, true, written);
	bool hash = false;
	for (size_t i = 0; current && i < j->n; i++)
		hash |= j->b[i]->hash;
	struct sha256_ctx *ctx = hash ? sha256_new() : NULL;
	for (size_t i = 0; i < j->n; i++) {
		struct block *b = j->b[i];
		if (b->rc != 0 || !b->hash)
			continue;
		if (ctx)
			sha256_once(ctx, b->data, b->len, b->leaf);
		else
			b->rc = -ENOMEM; /* unhashed: fetched again, not trusted */
	}
	sha256_free(ctx);
}

static void done_write(void *arg)
{
	struct write_batch *j = arg;
	struct diskio *dio = j->dio;
	dio->writes_inflight--;
	for (size_t i = 0; i < j->n; i++)
		count_queued(dio, 0, j->b[i]->len);
	dio->ops.written(dio->ctx, j->b, j->n, j->gen == dio->gen ? DISKIO_WRITTEN : DISKIO_STALE);
	for (size_t i = 0; i < j->n; i++)
		free(j->b[i]);
	free(j);
	job_ended(dio);
}

int diskio_write(struct diskio *dio, struct block *b)
{
	if (dio->n_wq == dio->cap_wq) {
		size_t cap = dio->cap_wq ? dio->cap_wq * 2 : 256;
		struct block **q = realloc(dio->wq, cap * sizeof *q);
		if (!q)
			return -ENOMEM;
		dio->wq = q;
		dio->cap_wq = cap;
	}
	b->rc = -ECANCELED; /* until the work runs */
	dio->wq[dio->n_wq++] = b;
	count_queued(dio, b->len, 0);
	kick_writes(dio);
	return 0;
}

/* Hand the oldest queued blocks to a worker.  On failure they stay queued. */
static int submit_write(struct diskio *dio)
{
	struct write_batch *j = malloc(sizeof *j);
	if (!j)
		return -ENOMEM;
	j->dio = dio;
	j->gen = dio->gen;
	j->n = dio->n_wq < IO_BATCH ? dio->n_wq : IO_BATCH;
	memcpy(j->b, dio->wq, j->n * sizeof *j->b);
	int rc = workers_submit(dio->workers, work_write, done_write, j);
	if (rc != 0) {
		free(j);
		return rc;
	}
	memmove(dio->wq, dio->wq + j->n, (dio->n_wq - j->n) * sizeof *dio->wq);
	dio->n_wq -= j->n;
	dio->writes_inflight++;
	dio->jobs++;
	return 0;
}

/* Start write batches while fewer than WRITE_PARALLEL run. */
static void kick_writes(struct diskio *dio)
{
	while (dio->writes_inflight < WRITE_PARALLEL && dio->n_wq > 0)
		if (submit_write(dio) != 0)
			break;
}

void diskio_kick(struct diskio *dio)
{
	kick_writes(dio);
	while (dio->verify_inflight < VERIFY_PARALLEL && dio->n_vq > 0)
		if (submit_verify(dio) != 0)
			break;
}

/* ----------------------------------------------------------- verifies */

int diskio_verify(struct diskio *dio, uint32_t piece, uint8_t *leaves)
{
	if (dio->n_vq == dio->cap_vq) {
		size_t cap = dio->cap_vq ? dio->cap_vq * 2 : 64;
		struct verify_entry *q = realloc(dio->vq, cap * sizeof *q);
		if (!q) {
			free(leaves);
			return -ENOMEM;
		}
		dio->vq = q;
		dio->cap_vq = cap;
	}
	dio->vq[dio->n_vq++] = (struct verify_entry){ piece, leaves };
	return 0;
}

/* Read [0, size) of `piece` in chunks of `buf`, holding the lock only while
 * reading, so writes go on while we hash; each chunk to `fn`. */
static int read_piece(struct diskio *dio, uint32_t piece, uint64_t size, uint8_t *buf,
		      size_t buf_len, int (*fn)(void *ctx, const uint8_t *p, size_t n), void *ctx)
{
	int rc = 0;
	for (uint64_t off = 0; rc == 0 && off < size;) {
		size_t n = size - off < buf_len ? (size_t)(size - off) : buf_len;
		pthread_mutex_lock(&dio->lock);
		rc = storage_read_fast(dio->storage, piece, (uint32_t)off, buf, n);
		pthread_mutex_unlock(&dio->lock);
		if (rc == 0) {
			count_disk(dio, false, n);
			rc = fn(ctx, buf, n);
		}
		off += n;
	}
	return rc;
}

struct both_hashes {
	struct merkle_piece *mp; /* NULL: SHA-1 only */
	struct sha1_ctx *sha1;   /* NULL: merkle only */
};

static int hash_chunk(void *ctx, const uint8_t *p, size_t n)
{
	struct both_hashes *h = ctx;
	if (h->sha1)
		sha1_update(h->sha1, p, n);
	return h->mp ? merkle_piece_update(h->mp, p, n) : 0;
}

static const uint8_t zeros[XFER_BLOCK_SIZE];

/* The v1 SHA-1 of a piece whose first `have` bytes went through h->sha1
 * already: the rest of its v1 size (a hybrid's pad) is zeros. */
static int v1_final(const struct metainfo *mi, uint32_t piece, uint64_t have,
		    struct sha1_ctx *sha1)
{
	for (uint64_t left = metainfo_v1_piece_size(mi, piece) - have; left > 0;) {
		size_t n = left < sizeof zeros ? (size_t)left : sizeof zeros;
		sha1_update(sha1, zeros, n);
		left -= n;
	}
	uint8_t h[SHA1_LEN];
	sha1_final(sha1, h);
	return memcmp(h, mi->v1_pieces + SHA1_LEN * (size_t)piece, SHA1_LEN) == 0 ? 0 : -EBADMSG;
}

/* Hash one piece: a v1 piece by SHA-1 from disk; a v2 piece against its
 * piece layer, from its leaves when the write jobs hashed them, else from
 * disk.  A hybrid's piece is checked both ways: data that matches its v2
 * hash but not its v1 hash means the torrent's two halves disagree
 * (-EPROTO), not that a peer lied. */
static int verify_one(struct diskio *dio, uint32_t piece, const uint8_t *leaves,
		      struct sha256_ctx *ctx, struct sha1_ctx *sha1, uint8_t *buf, size_t buf_len)
{
	const struct metainfo *mi = dio->meta;
	if (!mi->has_v2) {
		uint64_t size = metainfo_v1_piece_size(mi, piece);
		struct both_hashes h = { NULL, sha1 };
		sha1_begin(sha1);
		int rc = read_piece(dio, piece, size, buf, buf_len, hash_chunk, &h);
		return rc ? rc : v1_final(mi, piece, size, sha1);
	}
	uint32_t local;
	const struct metainfo_file *f = metainfo_v2_piece_file(mi, piece, &local);
	if (!f || !f->layer)
		return -EINVAL;
	uint64_t size = merkle_piece_size(f->size, mi->piece_length, local);
	uint64_t width = merkle_piece_leaves(f->size, mi->piece_length);
	int rc;
	if (leaves && width * 32 <= buf_len) {
		/* The subtree from the leaves hashed at write time; missing leaves
		 * past the data are 32 zero bytes (BEP 52). */
		uint64_t n = (size + XFER_BLOCK_SIZE - 1) / XFER_BLOCK_SIZE;
		memcpy(buf, leaves, (size_t)n * 32);
		memset(buf + n * 32, 0, (size_t)(width - n) * 32);
		merkle_reduce(ctx, buf, width);
		rc = memcmp(buf, f->layer + 32 * (size_t)local, 32) == 0 ? 0 : -EBADMSG;
		if (rc == 0 && mi->has_v1) {
			struct both_hashes h = { NULL, sha1 };
			sha1_begin(sha1);
			rc = read_piece(dio, piece, size, buf, buf_len, hash_chunk, &h);
			if (rc == 0)
				rc = v1_final(mi, piece, size, sha1) == 0 ? 0 : -EPROTO;
		}
		return rc;
	}
	struct merkle_piece mp;
	struct both_hashes h = { &mp, mi->has_v1 ? sha1 : NULL };
	rc = merkle_piece_init(&mp, ctx, width);
	if (h.sha1)
		sha1_begin(sha1);
	if (rc == 0)
		rc = read_piece(dio, piece, size, buf, buf_len, hash_chunk, &h);
	uint8_t root[MERKLE_HASH_LEN];
	if (rc == 0)
		rc = merkle_piece_final(&mp, root);
	if (rc == 0)
		rc = memcmp(root, f->layer + 32 * (size_t)local, 32) == 0 ? 0 : -EBADMSG;
	if (rc == 0 && h.sha1)
		rc = v1_final(mi, piece, size, sha1) == 0 ? 0 : -EPROTO;
	return rc;
}

static void work_verify(void *arg)
{
	struct verify_batch *j = arg;
	struct sha256_ctx *ctx = sha256_new();
	struct sha1_ctx *sha1 = sha1_new();
	uint8_t *buf = malloc(256 * 1024);
	for (size_t i = 0; i < j->n; i++)
		j->rc[i] = (!ctx || !sha1 || !buf)
				   ? -ENOMEM
				   : verify_one(j->dio, j->piece[i], j->leaves[i], ctx, sha1, buf,
						256 * 1024);
	sha256_free(ctx);
	sha1_free(sha1);
	free(buf);
}

static void done_verify(void *arg)
{
	struct verify_batch *j = arg;
	struct diskio *dio = j->dio;
	dio->verify_inflight--;
	for (size_t i = 0; i < j->n; i++) {
		free(j->leaves[i]);
		j->leaves[i] = NULL;
	}
	dio->ops.verified(dio->ctx, j->piece, j->rc, j->n, j->gen == dio->gen);
	free(j);
	job_ended(dio);
}

/* Hand the oldest queued pieces to a worker.  On failure they stay queued. */
static int submit_verify(struct diskio *dio)
{
	struct verify_batch *j = malloc(sizeof *j);
	if (!j)
		return -ENOMEM;
	j->dio = dio;
	j->gen = dio->gen;
	j->n = dio->n_vq < VERIFY_BATCH ? dio->n_vq : VERIFY_BATCH;
	for (size_t i = 0; i < j->n; i++) {
		j->piece[i] = dio->vq[i].piece;
		j->leaves[i] = dio->vq[i].leaves;
		j->rc[i] = -ECANCELED;
	}
	int rc = workers_submit(dio->workers, work_verify, done_verify, j);
	if (rc != 0) {
		free(j); /* the leaves are still the queue's */
		return rc;
	}
	/* The job owns the pieces' leaves from here. */
	memmove(dio->vq, dio->vq + j->n, (dio->n_vq - j->n) * sizeof *dio->vq);
	dio->n_vq -= j->n;
	dio->verify_inflight++;
	dio->jobs++;
	return 0;
}

/* -------------------------------------------------------------- reads */

static void work_read(void *arg)
{
	struct read_batch *j = arg;
	struct diskio *dio = j->dio;
	uint64_t read = 0;
	pthread_mutex_lock(&dio->lock);
	for (size_t i = 0; i < j->n; i++) {
		struct block *b = j->b[i];
		b->rc = b->avail ? storage_read_fast(dio->storage, b->piece, b->begin, b->data, b->avail)
				 : 0; /* wholly inside a pad file */
		if (b->rc == 0)
			read += b->avail;
		if (b->avail < b->len)
			memset(b->data + b->avail, 0, b->len - b->avail);
	}
	pthread_mutex_unlock(&dio->lock);
	count_disk(dio, false, read);
}

static void done_read(void *arg)
{
	struct read_batch *j = arg;
	struct diskio *dio = j->dio;
	dio->ops.read(dio->ctx, j->peer, j->b, j->n);
	free(j);
	job_ended(dio);
}

int diskio_read(struct diskio *dio, uint32_t peer, struct block *const *b, size_t n)
{
	if (n == 0 || n > READ_BATCH)
		return -EINVAL;
	struct read_batch *j = malloc(sizeof *j);
	if (!j)
		return -ENOMEM;
	j->dio = dio;
	j->peer = peer;
	j->n = n;
	for (size_t i = 0; i < n; i++) {
		j->b[i] = b[i];
		b[i]->rc = -ECANCELED;
	}
	int rc = workers_submit(dio->workers, work_read, done_read, j);
	if (rc != 0) {
		free(j);
		return rc;
	}
	dio->jobs++;
	return 0;
}

/* ------------------------------------------------------- block hashes */

struct leaves_job {
	struct diskio *dio;
	uint32_t peer, piece;
	size_t width;
	int rc;
	uint8_t *out;         /* width * 32 */
	size_t tag_len;
	uint8_t tag[64];
};

static void work_leaves(void *arg)
{
	struct leaves_job *j = arg;
	struct diskio *dio = j->dio;
	uint8_t *buf = malloc(XFER_BLOCK_SIZE);
	struct sha256_ctx *ctx = sha256_new();
	uint32_t size = storage_piece_size(dio->storage, j->piece);
	size_t n = (size + XFER_BLOCK_SIZE - 1) / XFER_BLOCK_SIZE;
	j->rc = !buf || !ctx ? -ENOMEM : n > j->width ? -EINVAL : 0;
	for (size_t i = 0; i < n && j->rc == 0; i++) {
		uint32_t off = (uint32_t)(i * XFER_BLOCK_SIZE);
		uint32_t len = size - off < XFER_BLOCK_SIZE ? size - off : XFER_BLOCK_SIZE;
		pthread_mutex_lock(&dio->lock);
		j->rc = storage_read_fast(dio->storage, j->piece, off, buf, len);
		pthread_mutex_unlock(&dio->lock);
		if (j->rc == 0)
			sha256_once(ctx, buf, len, j->out + 32 * i);
	}
	if (j->rc == 0)
		memset(j->out + 32 * n, 0, 32 * (j->width - n));
	sha256_free(ctx);
	free(buf);
}

static void done_leaves(void *arg)
{
	struct leaves_job *j = arg;
	struct diskio *dio = j->dio;
	dio->ops.leaves(dio->ctx, j->peer, j->piece, j->out, j->width, j->rc, j->tag, j->tag_len);
	free(j->out);
	free(j);
	job_ended(dio);
}

int diskio_leaves(struct diskio *dio, uint32_t peer, uint32_t piece, size_t width,
		  const void *tag, size_t tag_len)
{
	if (piece >= dio->npieces || width == 0 || width > (1u << 16) || tag_len > 64)
		return -EINVAL;
	struct leaves_job *j = calloc(1, sizeof *j);
	uint8_t *out = j ? malloc(width * 32) : NULL;
	if (!out) {
		free(j);
		return -ENOMEM;
	}
	*j = (struct leaves_job){ dio, peer, piece, width, -ECANCELED, out, tag_len, { 0 } };
	memcpy(j->tag, tag, tag_len);
	int rc = workers_submit(dio->workers, work_leaves, done_leaves, j);
	if (rc != 0) {
		free(out);
		free(j);
		return rc;
	}
	dio->jobs++;
	return 0;
}

/* ---------------------------------------------------------- durability */

void diskio_note_verified(struct diskio *dio, uint32_t piece)
{
	if (piece >= dio->npieces || bit_get(dio->unsynced, piece))
		return;
	bit_set(dio->unsynced, piece);
	dio->n_unsynced++;
}

void diskio_mask_pending(const struct diskio *dio, uint8_t *bm, size_t nbytes)
{
	for (size_t i = 0; i < nbytes && i < dio->nbytes; i++)
		bm[i] &= (uint8_t) ~(dio->unsynced[i] | dio->syncing[i]);
}

static void sync_job_free(struct sync_job *j)
{
	if (!j)
		return;
	free(j->pieces);
	free(j->mtimes_ns);
	free(j->failed);
	free(j);
}

/* The fdatasyncs run without the lock: held, they made every write (and so
 * the download) wait for the disk to flush up to a second's worth of data.
 * A failure is per file: pieces of files that synced are durable even when
 * another file's sync failed; each file is synced at most once.  A failed
 * file is marked in j->failed and its pieces stay in j->pieces: done_sync
 * reports them lost (Linux may have dropped the dirty pages and reports the
 * error once, so syncing again would prove nothing). */
static void work_sync(void *arg)
{
	struct sync_job *j = arg;
	struct diskio *dio = j->dio;
	size_t nf = j->nfiles;
	int *fds = malloc((nf ? nf : 1) * sizeof *fds);
	uint8_t *bad = j->failed;
	if (!fds) {
		j->rc = -ENOMEM; /* nothing synced, nothing failed: all are re-queued */
		return;
	}
	j->rc = 0;
	for (size_t f = 0; f < nf; f++)
		fds[f] = -1;
	pthread_mutex_lock(&dio->lock);
	for (size_t b = 0; b < j->nbytes; b++) {
		for (unsigned k = 0; j->pieces[b] && k < 8; k++) {
			uint32_t p = (uint32_t)(b * 8 + k);
			if (!bit_get(j->pieces, p))
				continue;
			size_t first;
			size_t n = storage_piece_files(dio->storage, p, &first);
			for (size_t fi = first; n && fi < first + n && fi < nf; fi++) {
				if (bad[fi])
					continue;
				int fd;
				int rc = storage_sync_begin(dio->storage, fi, &fd);
				if (rc < 0) {
					bad[fi] = 1;
					if (j->rc == 0)
						j->rc = rc;
				} else if (fd >= 0) {
					if (fds[fi] >= 0)
						close(fd); /* cannot happen: begin hands out a file once */
					else
						fds[fi] = fd;
				}
			}
		}
	}
	pthread_mutex_unlock(&dio->lock);
	for (size_t f = 0; f < nf; f++) {
		if (fds[f] < 0)
			continue;
		struct stat st;
		if (timed_fdatasync(dio, fds[f]) < 0) {
			bad[f] = 1;
			if (j->rc == 0)
				j->rc = -errno;
		} else if (fstat(fds[f], &st) == 0) {
			j->mtimes_ns[f] = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
		}
		close(fds[f]);
	}
	/* Durable pieces leave the job's bitmap.  A close of the file (LRU, on
	 * another worker) meanwhile may have been told this sync's error:
	 * look at each file's kept error too. */
	pthread_mutex_lock(&dio->lock);
	for (size_t f = 0; f < nf; f++) {
		int e = bad[f] ? 0 : storage_sync_take_error(dio->storage, f);
		if (e < 0) {
			bad[f] = 1;
			j->mtimes_ns[f] = -1;
			if (j->rc == 0)
				j->rc = e;
		}
	}
	for (size_t b = 0; b < j->nbytes; b++) {
		for (unsigned k = 0; j->pieces[b] && k < 8; k++) {
			uint32_t p = (uint32_t)(b * 8 + k);
			if (!bit_get(j->pieces, p))
				continue;
			if (!piece_in_bad_file(dio, p, bad, nf)) {
				bit_clear(j->pieces, p);
				continue;
			}
			size_t first;
			size_t n = storage_piece_files(dio->storage, p, &first);
			for (size_t fi = first; n && fi < first + n && fi < nf; fi++)
				if (bad[fi])
					storage_sync_failed(dio->storage, fi);
		}
	}
	pthread_mutex_unlock(&dio->lock);
	free(fds);
}

/* The sync of the files marked in `failed` failed: their data not yet
 * recorded may be gone from the disk whatever a later sync says.  Every
 * pending piece of them (in `lost` already, waiting in unsynced or in
 * syncing) leaves the pending bitmaps and is set in `lost`; every other
 * bit of `lost` is cleared.  Returns the number of pieces set. */
static size_t take_lost(struct diskio *dio, uint8_t *lost, const uint8_t *failed, size_t nfiles)
{
	size_t n = 0;
	for (uint32_t p = 0; p < dio->npieces; p++) {
		bool pending = bit_get(lost, p) || bit_get(dio->unsynced, p) ||
			       bit_get(dio->syncing, p);
		if (!pending || !piece_in_bad_file(dio, p, failed, nfiles)) {
			bit_clear(lost, p);
			continue;
		}
		if (bit_get(dio->unsynced, p)) {
			bit_clear(dio->unsynced, p);
			dio->n_unsynced--;
		}
		bit_clear(dio->syncing, p);
		bit_set(lost, p);
		n++;
	}
	return n;
}

static void done_sync(void *arg)
{
	struct sync_job *j = arg;
	struct diskio *dio = j->dio;
	size_t requeued = 0, nfailed = 0, dropped = 0;
	dio->sync_inflight = false;
	for (size_t f = 0; f < j->nfiles; f++)
		nfailed += j->failed[f];
	/* Not synced and not failed (the job never ran, or ran out of memory):
	 * pending again, unless diskio_flush_now made them durable meanwhile
	 * (it clears them from syncing). */
	for (size_t b = 0; b < j->nbytes; b++) {
		for (unsigned k = 0; j->pieces[b] && k < 8; k++) {
			uint32_t p = (uint32_t)(b * 8 + k);
			if (!bit_get(j->pieces, p) || !bit_get(dio->syncing, p))
				continue;
			if (piece_in_bad_file(dio, p, j->failed, j->nfiles))
				continue; /* lost, below */
			if (!bit_get(dio->unsynced, p)) {
				bit_set(dio->unsynced, p);
				dio->n_unsynced++;
			}
			bit_clear(dio->syncing, p);
			requeued++;
		}
	}
	/* The rest of the job's pieces are durable or lost: none is syncing
	 * (cleared first: the engine's answer to a loss may start the next
	 * job). */
	memset(dio->syncing, 0, j->nbytes);
	if (nfailed) {
		take_lost(dio, j->pieces, j->failed, j->nfiles);
		dropped = dio->ops.lost(dio->ctx, j->pieces);
	}
	if (j->rc != 0 && j->rc != -ECANCELED)
		log_error("%s: cannot make pieces durable: %s (%zu files failed, "
			  "%zu pieces to fetch again, %zu kept for the next sync)",
			  dio->label, strerror(-j->rc), nfailed, dropped, requeued);
	dio->ops.durable(dio->ctx, j->mtimes_ns, j->nfiles);
	sync_job_free(j);
	job_ended(dio);
}

bool diskio_flush(struct diskio *dio)
{
	if (dio->sync_inflight)
		return false;
	if (dio->n_unsynced == 0)
		return true;
	struct sync_job *j = calloc(1, sizeof *j);
	size_t n = dio->nbytes;
	if (j) {
		j->nbytes = n;
		j->nfiles = storage_file_count(dio->storage);
		j->pieces = malloc(n ? n : 1);
		j->mtimes_ns = malloc((j->nfiles ? j->nfiles : 1) * sizeof *j->mtimes_ns);
		j->failed = calloc(j->nfiles ? j->nfiles : 1, 1);
	}
	if (!j || !j->pieces || !j->mtimes_ns || !j->failed) {
		sync_job_free(j); /* nothing moved: the next flush tries again */
		return false;
	}
	for (size_t f = 0; f < j->nfiles; f++)
		j->mtimes_ns[f] = -1;
	/* The job gets its own copy: the loop keeps noting pieces meanwhile. */
	memcpy(j->pieces, dio->unsynced, n);
	j->dio = dio;
	j->rc = -ECANCELED;
	if (workers_submit(dio->workers, work_sync, done_sync, j) != 0) {
		sync_job_free(j);
		return false;
	}
	memcpy(dio->syncing, dio->unsynced, n);
	memset(dio->unsynced, 0, n);
	dio->n_unsynced = 0;
	dio->sync_inflight = true;
	dio->jobs++;
	return false;
}

int diskio_flush_now(struct diskio *dio)
{
	size_t nf = storage_file_count(dio->storage);
	/* Per file: 1 pending, 2 pending and in the job; after the syncs 1
	 * means failed. */
	uint8_t *st_f = calloc(nf ? nf : 1, 1);
	uint8_t *lost = calloc(dio->nbytes ? dio->nbytes : 1, 1);
	bool ok = true;
	if (!st_f || !lost) {
		free(st_f);
		free(lost);
		log_error("%s: out of memory making pieces durable at shutdown", dio->label);
		return -ENOMEM; /* nothing recorded beyond what is durable */
	}
	pthread_mutex_lock(&dio->lock);
	for (uint32_t p = 0; p < dio->npieces; p++) {
		bool syncing = bit_get(dio->syncing, p), unsynced = bit_get(dio->unsynced, p);
		if (!syncing && !unsynced)
			continue;
		size_t first;
		size_t n = storage_piece_files(dio->storage, p, &first);
		for (size_t fi = first; n && fi < first + n && fi < nf; fi++) {
			if (syncing && st_f[fi] < 2) {
				storage_sync_failed(dio->storage, fi); /* its fdatasync may not be done */
				st_f[fi] = 2;
			} else if (unsynced && st_f[fi] == 0) {
				st_f[fi] = 1;
			}
		}
	}
	/* Each pending file is synced once. */
	for (size_t fi = 0; fi < nf; fi++) {
		if (st_f[fi] == 0)
			continue;
		int fd;
		int rc = storage_sync_begin(dio->storage, fi, &fd);
		if (rc == 0 && fd >= 0) {
			if (timed_fdatasync(dio, fd) < 0) {
				rc = -errno;
				storage_sync_failed(dio->storage, fi);
			}
			close(fd);
		}
		if (rc == 0)
			rc = storage_sync_take_error(dio->storage, fi);
		st_f[fi] = rc == 0 ? 0 : 1;
		if (rc != 0)
			ok = false;
	}
	pthread_mutex_unlock(&dio->lock);
	/* Pending pieces of synced files are durable; of failed files, lost. */
	if (!ok)
		take_lost(dio, lost, st_f, nf);
	for (uint32_t p = 0; p < dio->npieces; p++) {
		if (piece_in_bad_file(dio, p, st_f, nf))
			continue;
		if (bit_get(dio->unsynced, p)) {
			bit_clear(dio->unsynced, p);
			dio->n_unsynced--;
		}
		bit_clear(dio->syncing, p);
	}
	free(st_f);
	if (!ok) {
		log_error("%s: some verified pieces could not be made durable at shutdown; they "
			  "will be fetched again",
			  dio->label);
		dio->ops.lost(dio->ctx, lost);
	}
	free(lost);
	return ok ? 0 : -EIO;
}
