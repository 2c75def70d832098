/* test_diskio.c: the disk layer alone: writes, verdicts, reads and durability through its callbacks, on a real worker pool. */
#include "config.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>

#include "common/sha256.h"
#include "node/diskio.h"
#include "node/workers.h"
#include "transfer/metainfo.h"
#include "transfer/storage.h"

#define NPIECES 4 /* one 16 KiB block a piece: a piece's hash is its block's SHA-256 */

/* What the callbacks saw. */
struct seen {
	struct event_base *base;
	struct diskio *dio;
	unsigned jobs_ended;
	size_t written_ok, written_stale;
	int verdict[NPIECES];
	size_t verdicts;
	size_t read_ok;
	uint8_t read_first;
	unsigned durable_calls;
	int64_t mtime0;
	unsigned lost_calls;
};

static void on_written(void *ctx, struct block *const *b, size_t n, enum diskio_written how)
{
	struct seen *s = ctx;
	for (size_t i = 0; i < n; i++) {
		if (how == DISKIO_STALE)
			s->written_stale++;
		else if (b[i]->rc == 0)
			s->written_ok++;
		if (how == DISKIO_WRITTEN && b[i]->rc == 0 && b[i]->hash) {
			/* Its leaf is its own data's hash, whatever order the
			 * batch wrote it in. */
			uint8_t want[32];
			struct sha256_ctx *h = sha256_new();
			assert_non_null(h);
			sha256_once(h, b[i]->data, b[i]->len, want);
			sha256_free(h);
			assert_memory_equal(b[i]->leaf, want, 32);
		}
		else
			fprintf(stderr, "write of piece %u: %s\n", b[i]->piece, strerror(-b[i]->rc));
	}
	diskio_kick(s->dio); /* as the engine does, unless stopped */
}

static void on_verified(void *ctx, const uint32_t *piece, const int *rc, size_t n, bool current)
{
	struct seen *s = ctx;
	for (size_t i = 0; i < n; i++) {
		assert_true(current);
		s->verdict[piece[i]] = rc[i];
		s->verdicts++;
	}
}

static void on_read(void *ctx, uint32_t peer, struct block **b, size_t n)
{
	struct seen *s = ctx;
	assert_int_equal(peer, 7);
	for (size_t i = 0; i < n; i++) {
		if (b[i]->rc == 0) {
			s->read_ok++;
			s->read_first = b[i]->data[0];
		}
		free(b[i]);
	}
}

static size_t on_lost(void *ctx, const uint8_t *lost)
{
	struct seen *s = ctx;
	(void)lost;
	s->lost_calls++;
	return 0;
}

static void on_durable(void *ctx, const int64_t *mtimes_ns, size_t nfiles)
{
	struct seen *s = ctx;
	assert_int_equal(nfiles, 1);
	s->durable_calls++;
	s->mtime0 = mtimes_ns[0];
}

static void on_job_ended(void *ctx)
{
	struct seen *s = ctx;
	s->jobs_ended++;
}

static const struct diskio_ops ops = { .written = on_written, .verified = on_verified,
				       .read = on_read,       .lost = on_lost,
				       .durable = on_durable, .job_ended = on_job_ended };

/* Run the loop until `done` holds (bounded: a hung job fails the test). */
#define RUN_UNTIL(s, done)                                                            \
	do {                                                                          \
		for (int spin_ = 0; !(done) && spin_ < 2000; spin_++) {               \
			struct timeval tv_ = { 0, 5000 };                             \
			event_base_loopexit((s)->base, &tv_);                         \
			event_base_dispatch((s)->base);                               \
		}                                                                     \
		if (!(done))                                                          \
			fprintf(stderr, "ok %zu stale %zu ended %u verdicts %zu\n",     \
				(s)->written_ok, (s)->written_stale, (s)->jobs_ended,    \
				(s)->verdicts);                                          \
		assert_true(done);                                                    \
	} while (0)

static void test_write_verify_read_sync(void **state)
{
	(void)state;
	char dir[] = "/tmp/shoal-test-diskio-XXXXXX";
	assert_non_null(mkdtemp(dir));
	struct storage_file sf = { "data", (uint64_t)NPIECES * XFER_BLOCK_SIZE, 0, STORAGE_CREATE, 0 };
	struct storage *st = NULL;
	assert_int_equal(storage_new(dir, &sf, 1, XFER_BLOCK_SIZE, 0, &st), 0);
	size_t bad;
	assert_int_equal(storage_create_files(st, &bad), 0);

	/* The blocks, and the piece layer they should match (piece 3's is wrong). */
	static uint8_t data[NPIECES][XFER_BLOCK_SIZE];
	uint8_t layer[NPIECES * 32];
	struct sha256_ctx *h = sha256_new();
	assert_non_null(h);
	for (int p = 0; p < NPIECES; p++) {
		memset(data[p], 'a' + p, sizeof data[p]);
		sha256_once(h, data[p], sizeof data[p], layer + 32 * p);
	}
	sha256_free(h);
	layer[3 * 32] ^= 1;
	struct metainfo_file mf = { .path = (char *)"data",
				    .size = sf.size,
				    .has_root = true,
				    .first_piece = 0,
				    .piece_count = NPIECES,
				    .layer = layer };
	struct metainfo mi = { .has_v2 = true, .piece_length = XFER_BLOCK_SIZE,
			       .files = &mf,
			       .file_count = 1,
			       .total_pieces = NPIECES };

	struct seen s = { 0 };
	s.base = event_base_new();
	assert_non_null(s.base);
	struct workers *w = workers_new(s.base, 2);
	assert_non_null(w);
	struct diskio *dio = NULL;
	assert_int_equal(diskio_new(st, &mi, w, &ops, &s, "test", &dio), 0);
	s.dio = dio;
	assert_false(diskio_busy(dio));

	/* Writes: each block hashed into its leaf, counted while queued. */
	uint8_t leaves[NPIECES][32];
	for (uint32_t p = 0; p < NPIECES; p++) {
		struct block *b = calloc(1, sizeof *b);
		assert_non_null(b);
		b->piece = p;
		b->len = b->avail = XFER_BLOCK_SIZE;
		b->hash = true;
		memcpy(b->data, data[p], XFER_BLOCK_SIZE);
		assert_int_equal(diskio_write(dio, b), 0);
	}
	assert_true(diskio_write_queued(dio) > 0);
	RUN_UNTIL(&s, s.written_ok == NPIECES && !diskio_busy(dio));
	assert_int_equal(diskio_write_queued(dio), 0);
	assert_int_equal(s.written_stale, 0);

	/* Verdicts: pieces 0 and 1 from their leaves, 2 and 3 read back. */
	h = sha256_new();
	for (int p = 0; p < 2; p++) {
		uint8_t *lv = malloc(32);
		assert_non_null(lv);
		sha256_once(h, data[p], XFER_BLOCK_SIZE, leaves[p]);
		memcpy(lv, leaves[p], 32);
		assert_int_equal(diskio_verify(dio, (uint32_t)p, lv), 0);
	}
	sha256_free(h);
	assert_int_equal(diskio_verify(dio, 2, NULL), 0);
	assert_int_equal(diskio_verify(dio, 3, NULL), 0);
	assert_int_equal(s.verdicts, 0); /* nothing starts before a kick */
	diskio_kick(dio);
	RUN_UNTIL(&s, s.verdicts == NPIECES && !diskio_busy(dio));
	assert_int_equal(s.verdict[0], 0);
	assert_int_equal(s.verdict[1], 0);
	assert_int_equal(s.verdict[2], 0);
	assert_int_equal(s.verdict[3], -EBADMSG);

	/* Reads for a peer come back to it, padded past `avail`. */
	struct block *rb = calloc(1, sizeof *rb);
	assert_non_null(rb);
	rb->peer = 7;
	rb->piece = 2;
	rb->len = rb->avail = XFER_BLOCK_SIZE;
	assert_int_equal(diskio_read(dio, 7, &rb, 1), 0);
	RUN_UNTIL(&s, s.read_ok == 1 && !diskio_busy(dio));
	assert_int_equal(s.read_first, 'c');

	/* Durability: noted pieces are pending until the sync job says so. */
	uint8_t bm[1] = { 0xf0 }; /* pieces 0..3, most significant bit first */
	assert_true(diskio_flush(dio)); /* nothing noted: may record now */
	diskio_note_verified(dio, 0);
	diskio_note_verified(dio, 2);
	diskio_mask_pending(dio, bm, sizeof bm);
	assert_int_equal(bm[0], 0x50);
	assert_false(diskio_flush(dio)); /* a sync job is in flight */
	bm[0] = 0xf0;
	diskio_mask_pending(dio, bm, sizeof bm); /* in the job: still pending */
	assert_int_equal(bm[0], 0x50);
	diskio_note_verified(dio, 1); /* noted meanwhile: waits for the next job */
	RUN_UNTIL(&s, s.durable_calls == 1 && !diskio_busy(dio));
	assert_true(s.mtime0 > 0);
	assert_int_equal(s.lost_calls, 0);
	bm[0] = 0xf0;
	diskio_mask_pending(dio, bm, sizeof bm);
	assert_int_equal(bm[0], 0xb0);
	assert_int_equal(diskio_flush_now(dio), 0);
	bm[0] = 0xf0;
	diskio_mask_pending(dio, bm, sizeof bm);
	assert_int_equal(bm[0], 0xf0);

	/* A new generation drops what is queued: nothing starts. */
	uint8_t *lv = malloc(32);
	assert_non_null(lv);
	assert_int_equal(diskio_verify(dio, 0, lv), 0); /* taken: freed with the queue */
	diskio_new_generation(dio);
	diskio_kick(dio);
	assert_false(diskio_busy(dio));

	unsigned ended = s.jobs_ended;
	assert_true(ended >= 1 + 2 + 1 + 1); /* write, verify, read and sync jobs */
	diskio_free(dio);
	workers_free(w);
	event_base_free(s.base);
	char cmd[96];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

/* Pages of the first `len` bytes of `path` in the page cache. */
static size_t resident(const char *path, size_t len)
{
	int fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	void *m = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
	assert_true(m != MAP_FAILED);
	size_t pg = (size_t)sysconf(_SC_PAGESIZE), n = (len + pg - 1) / pg, in = 0;
	unsigned char *vec = malloc(n);
	assert_non_null(vec);
	assert_int_equal(mincore(m, len, vec), 0);
	for (size_t i = 0; i < n; i++)
		in += vec[i] & 1;
	free(vec);
	munmap(m, len);
	close(fd);
	return in;
}

#define RUN_BLOCKS 9 /* one piece of 8 blocks, then a piece of one short block */
#define RUN_LAST 5000

/* Blocks handed over in no order, twice for one of them: each lands where
 * it belongs.  A v2-only swarm's runs go around the page cache (where the
 * file system allows O_DIRECT); a hybrid's stay in it, to be read back. */
static void write_scrambled(bool hybrid)
{
	char dir[] = "/tmp/shoal-test-diskio-XXXXXX";
	assert_non_null(mkdtemp(dir));
	const uint32_t pl = 8 * XFER_BLOCK_SIZE;
	const uint64_t size = (uint64_t)pl + RUN_LAST;
	struct storage_file sf = { "data", size, 0, STORAGE_CREATE, 0 };
	struct storage *st = NULL;
	assert_int_equal(storage_new(dir, &sf, 1, pl, 0, &st), 0);
	uint8_t layer[2 * 32] = { 0 };
	struct metainfo_file mf = { .path = (char *)"data", .size = size, .has_root = true,
				    .first_piece = 0, .piece_count = 2, .layer = layer };
	struct metainfo mi = { .has_v2 = true, .has_v1 = hybrid, .piece_length = pl,
			       .files = &mf, .file_count = 1, .total_pieces = 2 };
	struct seen s = { 0 };
	s.base = event_base_new();
	assert_non_null(s.base);
	struct workers *w = workers_new(s.base, 2);
	assert_non_null(w);
	struct diskio *dio = NULL;
	assert_int_equal(diskio_new(st, &mi, w, &ops, &s, "test", &dio), 0);
	s.dio = dio;
	static const int order[] = { 8, 3, 0, 7, 1, 2, 6, 4, 5, 3 };
	const size_t n = sizeof order / sizeof order[0];
	uint8_t *want = malloc(size);
	assert_non_null(want);
	for (uint64_t i = 0; i < size; i++)
		want[i] = (uint8_t)(i * 13 + (i >> 12));
	for (size_t i = 0; i < n; i++) {
		struct block *b = calloc(1, sizeof *b);
		assert_non_null(b);
		uint32_t k = (uint32_t)order[i];
		b->piece = k / 8;
		b->begin = (k % 8) * XFER_BLOCK_SIZE;
		b->len = b->avail = k == 8 ? RUN_LAST : XFER_BLOCK_SIZE;
		b->hash = true;
		memcpy(b->data, want + (uint64_t)k * XFER_BLOCK_SIZE, b->len);
		assert_int_equal(diskio_write(dio, b), 0);
	}
	RUN_UNTIL(&s, s.written_ok == n && !diskio_busy(dio));
	char path[64];
	snprintf(path, sizeof path, "%s/data", dir);
	char probe[80];
	snprintf(probe, sizeof probe, "%s/probe", dir);
	int pfd = open(probe, O_RDWR | O_CREAT | O_EXCL | O_DIRECT, 0600);
	bool direct = pfd >= 0;
	if (pfd >= 0)
		close(pfd);
	size_t pages = (size_t)pl / (size_t)sysconf(_SC_PAGESIZE);
	if (hybrid)
		assert_int_equal(resident(path, pl), pages);
	else if (direct && sysconf(_SC_PAGESIZE) == 4096)
		assert_int_equal(resident(path, pl), 0);
	assert_int_equal(diskio_flush_now(dio), 0);
	uint8_t *got = malloc(size);
	assert_non_null(got);
	FILE *f = fopen(path, "rb");
	assert_non_null(f);
	assert_int_equal(fread(got, 1, size, f), size);
	assert_int_equal(fgetc(f), EOF);
	fclose(f);
	assert_memory_equal(got, want, size);
	free(got);
	free(want);
	diskio_free(dio);
	workers_free(w);
	event_base_free(s.base);
	char cmd[96];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

static void test_runs_v2(void **state)
{
	(void)state;
	write_scrambled(false);
}

static void test_runs_hybrid(void **state)
{
	(void)state;
	write_scrambled(true);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_write_verify_read_sync),
		cmocka_unit_test(test_runs_v2),
		cmocka_unit_test(test_runs_hybrid),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
