/* test_storage.c: unit tests for transfer/storage in a temporary directory. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "transfer/storage.h"
#include "transfer/transfer.h"

#define BS XFER_BLOCK_SIZE
#define PL (2 * BS) /* piece length used by most tests */

struct tmp {
	char base[512]; /* removed at the end */
	char root[600]; /* base/root: the storage root */
	char out[600];  /* base/outside: must never be written */
};

static int setup(void **state)
{
	struct tmp *t = calloc(1, sizeof *t);
	if (t == NULL)
		return -1;
	const char *dir = getenv("TMPDIR");
	if (dir == NULL || dir[0] == '\0')
		dir = "/tmp";
	snprintf(t->base, sizeof t->base, "%s/shoal-storage-XXXXXX", dir);
	if (mkdtemp(t->base) == NULL) {
		free(t);
		return -1;
	}
	snprintf(t->root, sizeof t->root, "%s/root", t->base);
	snprintf(t->out, sizeof t->out, "%s/outside", t->base);
	if (mkdir(t->root, 0755) < 0 || mkdir(t->out, 0755) < 0) {
		free(t);
		return -1;
	}
	*state = t;
	return 0;
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static int teardown(void **state)
{
	struct tmp *t = *state;
	int rc = nftw(t->base, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	free(t);
	return rc;
}

static void path_in(char *buf, size_t len, const char *dir, const char *rel)
{
	snprintf(buf, len, "%s/%s", dir, rel);
}

/* Bytes of piece p at offset o: different everywhere, so misplaced data shows. */
static uint8_t pattern(uint32_t p, uint64_t o)
{
	return (uint8_t)(p * 31 + o * 7 + (o >> 9));
}

static void fill(uint8_t *b, uint32_t piece, uint32_t off, size_t len)
{
	for (size_t i = 0; i < len; i++)
		b[i] = pattern(piece, off + i);
}

static void test_rejects(void **state)
{
	struct tmp *t = *state;
	struct storage *st = (struct storage *)1;
	const char *bad[] = { "../x", "a/../../x", "/etc/passwd", "", "a//b", "a/./b", ".",
			      "a/", "a/..", "..", "./a" };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct storage_file f = { bad[i], 10, 0, STORAGE_OWN, 0 };
		assert_int_equal(storage_new(t->root, &f, 1, PL, 0, &st), -EINVAL);
		assert_null(st);
	}
	char longname[300];
	memset(longname, 'a', sizeof longname - 1);
	longname[sizeof longname - 1] = '\0';
	struct storage_file lf = { longname, 10, 0, STORAGE_OWN, 0 };
	assert_int_equal(storage_new(t->root, &lf, 1, PL, 0, &st), -EINVAL);

	/* layouts: overlap, gap, duplicate path, zero piece length */
	struct storage_file overlap[] = { { "a", PL + 1, 0, STORAGE_OWN, 0 }, { "b", 5, 1, STORAGE_OWN, 0 } };
	assert_int_equal(storage_new(t->root, overlap, 2, PL, 0, &st), -EINVAL);
	struct storage_file gap[] = { { "a", PL, 0, STORAGE_OWN, 0 }, { "b", 5, 2, STORAGE_OWN, 0 } };
	assert_int_equal(storage_new(t->root, gap, 2, PL, 0, &st), -EINVAL);
	struct storage_file dup[] = { { "d/a", PL, 0, STORAGE_OWN, 0 }, { "d/a", 5, 1, STORAGE_OWN, 0 } };
	assert_int_equal(storage_new(t->root, dup, 2, PL, 0, &st), -EINVAL);
	struct storage_file ok[] = { { "a", PL, 0, STORAGE_OWN, 0 } };
	assert_int_equal(storage_new(t->root, ok, 1, 0, 0, &st), -EINVAL);
	char missing[700];
	path_in(missing, sizeof missing, t->base, "nope");
	assert_int_equal(storage_new(missing, ok, 1, PL, 0, &st), -ENOENT);
	assert_null(st);
	/* nothing was created by any of this */
	assert_int_equal(rmdir(t->root), 0);
	assert_int_equal(mkdir(t->root, 0755), 0);
}

/* BEP 52 alignment: each file starts a piece; each file's last piece is short. */
static void test_round_trip(void **state)
{
	struct tmp *t = *state;
	const struct storage_file files[] = {
		{ "a.bin", 70000, 0, STORAGE_OWN, 0 },         /* pieces 0, 1, 2 (last is 4464 bytes) */
		{ "empty.txt", 0, 0, STORAGE_OWN, 0 },         /* no piece */
		{ "dir/sub/b.bin", PL, 3, STORAGE_OWN, 0 },    /* piece 3, exactly full */
		{ "dir/c.bin", 1, 4, STORAGE_OWN, 0 },         /* piece 4, one byte */
		{ "dir/sub/none", 0, 99, STORAGE_OWN, 0 },     /* empty, first_piece ignored */
	};
	struct storage *st = NULL;
	assert_int_equal(storage_new(t->root, files, 5, PL, 0, &st), 0);
	assert_int_equal(storage_num_pieces(st), 5);
	assert_int_equal(storage_piece_size(st, 0), PL);
	assert_int_equal(storage_piece_size(st, 2), 70000 - 2 * PL);
	assert_int_equal(storage_piece_size(st, 3), PL);
	assert_int_equal(storage_piece_size(st, 4), 1);
	assert_int_equal(storage_piece_size(st, 5), 0);

	size_t bad = 99, cf_bad;
	assert_int_equal(storage_check_files(st, &bad), -ENOENT);
	assert_int_equal(bad, 0);
	assert_int_equal(storage_create_files(st, &cf_bad), 0);
	char p[700];
	struct stat sb;
	path_in(p, sizeof p, t->root, "empty.txt");
	assert_int_equal(stat(p, &sb), 0);
	assert_int_equal(sb.st_size, 0);
	path_in(p, sizeof p, t->root, "dir/sub/none");
	assert_int_equal(stat(p, &sb), 0);
	assert_int_equal(storage_check_files(st, &bad), -ERANGE); /* a.bin is still empty */
	assert_int_equal(bad, 0);

	/* nothing written yet: reads fail rather than return zeros */
	uint8_t buf[PL], want[PL];
	assert_int_equal(storage_read(st, 0, 0, buf, BS), -ENODATA);
	assert_int_equal(storage_piece_on_disk(st, 0), 0);

	/* write every piece in blocks, last blocks short; make each durable */
	for (uint32_t piece = 0; piece < 5; piece++) {
		uint32_t size = storage_piece_size(st, piece);
		for (uint32_t off = 0; off < size; off += BS) {
			uint32_t len = size - off < BS ? size - off : BS;
			fill(buf, piece, off, len);
			assert_int_equal(storage_write(st, piece, off, buf, len), 0);
		}
		assert_int_equal(storage_sync_piece(st, piece), 0);
		assert_int_equal(storage_piece_on_disk(st, piece), 1);
	}
	assert_int_equal(storage_check_files(st, &bad), 0);

	/* out of range */
	assert_int_equal(storage_write(st, 5, 0, buf, 1), -ERANGE);
	assert_int_equal(storage_write(st, 4, 0, buf, 2), -EINVAL);
	assert_int_equal(storage_write(st, 2, 4464, buf, 1), -EINVAL);
	assert_int_equal(storage_read(st, 0, PL, buf, 1), -EINVAL);

	/* read back whole pieces and odd sub-ranges */
	for (uint32_t piece = 0; piece < 5; piece++) {
		uint32_t size = storage_piece_size(st, piece);
		assert_int_equal(storage_read(st, piece, 0, buf, size), 0);
		fill(want, piece, 0, size);
		assert_memory_equal(buf, want, size);
		if (size > 100) {
			assert_int_equal(storage_read(st, piece, 33, buf, size - 50), 0);
			fill(want, piece, 33, size - 50);
			assert_memory_equal(buf, want, size - 50);
		}
	}
	storage_free(st);

	/* the files themselves hold exactly the pieces, in order */
	path_in(p, sizeof p, t->root, "a.bin");
	FILE *fp = fopen(p, "rb");
	assert_non_null(fp);
	static uint8_t whole[70001];
	assert_int_equal(fread(whole, 1, sizeof whole, fp), 70000);
	fclose(fp);
	for (uint64_t o = 0; o < 70000; o++)
		if (whole[o] != pattern((uint32_t)(o / PL), o % PL))
			fail_msg("a.bin differs at %llu", (unsigned long long)o);
	path_in(p, sizeof p, t->root, "dir/c.bin");
	assert_int_equal(stat(p, &sb), 0);
	assert_int_equal(sb.st_size, 1);

	/* a new storage over the same tree (resume) sees everything */
	assert_int_equal(storage_new(t->root, files, 5, PL, 0, &st), 0);
	assert_int_equal(storage_check_files(st, &bad), 0);
	for (uint32_t piece = 0; piece < 5; piece++)
		assert_int_equal(storage_piece_on_disk(st, piece), 1);
	assert_int_equal(storage_read(st, 3, BS, buf, BS), 0);
	fill(want, 3, BS, BS);
	assert_memory_equal(buf, want, BS);
	storage_free(st);
}

/* Does the filesystem under `dir` report holes? */
static bool fs_reports_holes(const char *dir)
{
	char p[700];
	path_in(p, sizeof p, dir, "hole-probe");
	int fd = open(p, O_RDWR | O_CREAT | O_TRUNC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, "x", 1, 1 << 20), 1);
	bool holes = lseek(fd, 0, SEEK_HOLE) == 0;
	close(fd);
	unlink(p);
	return holes;
}

static void test_unwritten_ranges(void **state)
{
	struct tmp *t = *state;
	const struct storage_file files[] = { { "f", 4 * PL, 0, STORAGE_OWN, 0 }, { "g", PL, 4, STORAGE_OWN, 0 } };
	struct storage *st = NULL;
	assert_int_equal(storage_new(t->root, files, 2, PL, 0, &st), 0);
	uint8_t buf[BS];
	/* file not even created */
	assert_int_equal(storage_read(st, 4, 0, buf, BS), -ENODATA);
	assert_int_equal(storage_piece_on_disk(st, 4), 0);
	/* only piece 2 of f written */
	fill(buf, 2, 0, BS);
	assert_int_equal(storage_write(st, 2, 0, buf, BS), 0);
	assert_int_equal(storage_write(st, 2, BS, buf, BS), 0);
	assert_int_equal(storage_piece_on_disk(st, 2), 1);
	assert_int_equal(storage_read(st, 3, 0, buf, BS), -ENODATA); /* past the end */
	assert_int_equal(storage_piece_on_disk(st, 3), 0);
	if (fs_reports_holes(t->root)) {
		assert_int_equal(storage_read(st, 0, 0, buf, BS), -ENODATA); /* a hole */
		assert_int_equal(storage_read(st, 1, BS, buf, BS), -ENODATA);
		assert_int_equal(storage_piece_on_disk(st, 1), 0);
	} else {
		print_message("filesystem reports no holes; hole reads not checked\n");
	}
	assert_int_equal(storage_read(st, 2, 100, buf, 200), 0);
	storage_free(st);
}

static void test_escape_refused(void **state)
{
	struct tmp *t = *state;
	char p[700], q[700];
	/* root/evil -> outside (a directory); root/link -> outside/target */
	path_in(p, sizeof p, t->root, "evil");
	assert_int_equal(symlink(t->out, p), 0);
	path_in(q, sizeof q, t->out, "target");
	FILE *fp = fopen(q, "w");
	assert_non_null(fp);
	fputs("keep", fp);
	fclose(fp);
	path_in(p, sizeof p, t->root, "link");
	assert_int_equal(symlink(q, p), 0);

	uint8_t buf[BS];
	memset(buf, 'X', sizeof buf);
	const struct storage_file via_dir[] = { { "evil/x", 100, 0, STORAGE_OWN, 0 } };
	struct storage *st = NULL;
	assert_int_equal(storage_new(t->root, via_dir, 1, PL, 0, &st), 0);
	int rc = storage_write(st, 0, 0, buf, 100);
	assert_true(rc == -ELOOP || rc == -ENOTDIR);
	size_t cf_bad;
	rc = storage_create_files(st, &cf_bad);
	assert_true(rc == -ELOOP || rc == -ENOTDIR);
	assert_int_equal(storage_read(st, 0, 0, buf, 10), rc);
	size_t bad;
	assert_int_equal(storage_check_files(st, &bad), -EINVAL);
	storage_free(st);
	path_in(p, sizeof p, t->out, "x");
	assert_int_equal(access(p, F_OK), -1); /* nothing appeared outside */

	const struct storage_file via_file[] = { { "link", 4, 0, STORAGE_OWN, 0 } };
	assert_int_equal(storage_new(t->root, via_file, 1, PL, 0, &st), 0);
	rc = storage_write(st, 0, 0, buf, 4);
	assert_int_equal(rc, -ELOOP);
	assert_int_equal(storage_read(st, 0, 0, buf, 4), -ELOOP);
	assert_int_equal(storage_check_files(st, &bad), -EINVAL);
	storage_free(st);
	char back[8] = { 0 };
	fp = fopen(q, "r");
	assert_non_null(fp);
	assert_int_equal(fread(back, 1, sizeof back, fp), 4);
	fclose(fp);
	assert_string_equal(back, "keep");

	/* a directory where a file should be */
	path_in(p, sizeof p, t->root, "adir");
	assert_int_equal(mkdir(p, 0755), 0);
	const struct storage_file onto_dir[] = { { "adir", 4, 0, STORAGE_OWN, 0 } };
	assert_int_equal(storage_new(t->root, onto_dir, 1, PL, 0, &st), 0);
	assert_int_equal(storage_write(st, 0, 0, buf, 4), -EISDIR);
	storage_free(st);
}

/* The two-step sync: a descriptor only while the file has unsynced writes,
 * usable after the file itself is closed, and again after a failure. */
static void write_text(const char *path, const char *text)
{
	FILE *fp = fopen(path, "w");
	assert_non_null(fp);
	fputs(text, fp);
	fclose(fp);
}

static void assert_text(const char *path, const char *want)
{
	char got[64] = { 0 };
	FILE *fp = fopen(path, "r");
	assert_non_null(fp);
	size_t n = fread(got, 1, sizeof got - 1, fp);
	fclose(fp);
	got[n] = '\0';
	assert_string_equal(got, want);
}

/* Files the swarm does not own are never written, created or replaced by
 * surprise; a root that is a symlink is refused. */
static void test_access_modes(void **state)
{
	struct tmp *t = *state;
	char p[700], q[700];
	struct stat before, after;
	uint8_t buf[BS];
	memset(buf, 'X', sizeof buf);
	size_t bad = 99;
	path_in(p, sizeof p, t->root, "user");
	write_text(p, "mine");
	assert_int_equal(stat(p, &before), 0);

	/* READ: read, never written; a missing READ file is not created */
	const struct storage_file ro[] = { { "user", 4, 0, STORAGE_READ, 0 },
					   { "gone", 4, 1, STORAGE_READ, 0 } };
	struct storage *st = NULL;
	assert_int_equal(storage_new(t->root, ro, 2, PL, 0, &st), 0);
	assert_int_equal(storage_read(st, 0, 0, buf, 4), 0);
	assert_memory_equal(buf, "mine", 4);
	assert_int_equal(storage_write(st, 0, 0, "evil", 4), -EACCES);
	assert_int_equal(storage_create_files(st, &bad), -ENOENT);
	assert_int_equal(bad, 1);
	assert_int_equal(storage_write(st, 1, 0, "evil", 4), -EACCES);
	storage_free(st);
	path_in(q, sizeof q, t->root, "gone");
	assert_int_equal(access(q, F_OK), -1);
	assert_text(p, "mine");

	/* probe: what is at each name, without following links */
	path_in(q, sizeof q, t->root, "adir");
	assert_int_equal(mkdir(q, 0755), 0);
	path_in(q, sizeof q, t->root, "lnk");
	assert_int_equal(symlink(t->out, q), 0);
	const struct storage_file probe[] = {
		{ "user", 4, 0, STORAGE_READ, 0 },  { "short", 9, 1, STORAGE_READ, 0 },
		{ "adir", 4, 2, STORAGE_READ, 0 },  { "lnk", 4, 3, STORAGE_READ, 0 },
		{ "lnk/x", 4, 4, STORAGE_READ, 0 }, { "user/x", 4, 5, STORAGE_READ, 0 },
		{ "no/x", 4, 6, STORAGE_READ, 0 },
	};
	path_in(q, sizeof q, t->root, "short");
	write_text(q, "abc");
	assert_int_equal(storage_new(t->root, probe, 7, PL, 0, &st), 0);
	const enum storage_probe want[] = { STORAGE_PRESENT, STORAGE_OTHER,   STORAGE_BLOCKED,
					    STORAGE_OTHER,   STORAGE_BLOCKED, STORAGE_BLOCKED,
					    STORAGE_ABSENT };
	const size_t want_depth[] = { 0, 0, 4, 0, 3, 4, 0 };
	for (size_t i = 0; i < 7; i++) {
		enum storage_probe got;
		size_t depth = 99;
		assert_int_equal(storage_probe_file(st, i, &got, &depth), 0);
		assert_int_equal(got, want[i]);
		if (got == STORAGE_BLOCKED)
			assert_int_equal(depth, want_depth[i]);
	}
	storage_free(st);

	/* CREATE: an existing file is -EEXIST and stays as it is */
	const struct storage_file cr[] = { { "user", 4, 0, STORAGE_CREATE, 0 } };
	assert_int_equal(storage_new(t->root, cr, 1, PL, 0, &st), 0);
	assert_int_equal(storage_create_files(st, &bad), -EEXIST);
	assert_int_equal(storage_write(st, 0, 0, "evil", 4), -EEXIST);
	storage_free(st);
	assert_text(p, "mine");
	/* ... and a symlink at its name is not followed either */
	const struct storage_file crl[] = { { "lnk", 4, 0, STORAGE_CREATE, 0 } };
	assert_int_equal(storage_new(t->root, crl, 1, PL, 0, &st), 0);
	assert_int_equal(storage_create_files(st, &bad), -EEXIST);
	storage_free(st);

	/* REPLACE: a new inode; a hard link to the old one keeps its bytes */
	path_in(q, sizeof q, t->out, "hardlink");
	assert_int_equal(link(p, q), 0);
	const struct storage_file rp[] = { { "user", 4, 0, STORAGE_REPLACE, 0 } };
	assert_int_equal(storage_new(t->root, rp, 1, PL, 0, &st), 0);
	assert_int_equal(storage_create_files(st, &bad), 0);
	assert_int_equal(storage_write(st, 0, 0, "news", 4), 0);
	storage_free(st);
	assert_int_equal(stat(p, &after), 0);
	assert_true(after.st_ino != before.st_ino);
	assert_text(p, "news");
	assert_text(q, "mine");
	/* REPLACE never removes a directory */
	const struct storage_file rpd[] = { { "adir", 4, 0, STORAGE_REPLACE, 0 } };
	assert_int_equal(storage_new(t->root, rpd, 1, PL, 0, &st), 0);
	assert_true(storage_create_files(st, &bad) < 0);
	storage_free(st);
	path_in(q, sizeof q, t->root, "adir");
	assert_int_equal(stat(q, &after), 0);
	assert_true(S_ISDIR(after.st_mode));

	/* a root that is itself a symlink */
	path_in(q, sizeof q, t->root, "lnk");
	assert_int_equal(storage_new(q, rp, 1, PL, 0, &st), -ELOOP);
	assert_null(st);
}

static void test_sync_two_step(void **state)
{
	struct tmp *t = *state;
	const struct storage_file files[] = { { "a", PL, 0, STORAGE_OWN, 0 }, { "b", PL, 1, STORAGE_OWN, 0 } };
	struct storage *st = NULL;
	assert_int_equal(storage_new(t->root, files, 2, PL, 1, &st), 0);
	uint8_t buf[BS];
	fill(buf, 0, 0, BS);
	int fd = -2;
	assert_int_equal(storage_sync_begin(st, 0, &fd), 0);
	assert_int_equal(fd, -1); /* nothing written: nothing to sync */
	assert_int_equal(storage_write(st, 0, 0, buf, BS), 0);
	assert_int_equal(storage_sync_begin(st, 0, &fd), 0);
	assert_true(fd >= 0);
	/* a write to the other file closes "a" (max_open 1): the duplicate lives on */
	assert_int_equal(storage_write(st, 1, 0, buf, BS), 0);
	assert_int_equal(storage_open_count(st), 1);
	assert_int_equal(fdatasync(fd), 0);
	struct stat sb;
	assert_int_equal(fstat(fd, &sb), 0);
	assert_int_equal(sb.st_size, BS);
	close(fd);
	assert_int_equal(storage_write(st, 0, BS, buf, BS), 0);
	assert_int_equal(storage_sync_begin(st, 0, &fd), 0);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(storage_sync_begin(st, 0, &fd), 0);
	assert_int_equal(fd, -1); /* clean now */
	storage_sync_failed(st, 0); /* as if that fdatasync had failed */
	assert_int_equal(storage_sync_begin(st, 0, &fd), 0);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(storage_sync_piece(st, 1), 0);
	storage_free(st);
}

static void test_open_cap(void **state)
{
	struct tmp *t = *state;
	struct storage_file files[6];
	char names[6][16];
	for (uint32_t i = 0; i < 6; i++) {
		snprintf(names[i], sizeof names[i], "d%u/f%u", i % 2, i);
		files[i] = (struct storage_file){ names[i], PL + 10, 2 * i, STORAGE_OWN, 0 };
	}
	struct storage *st = NULL;
	assert_int_equal(storage_new(t->root, files, 6, PL, 2, &st), 0);
	uint8_t buf[BS], want[BS];
	/* two rounds over every piece of every file, touching files in turn */
	for (uint32_t piece = 0; piece < 12; piece++) {
		uint32_t size = storage_piece_size(st, piece);
		for (uint32_t off = 0; off < size; off += BS) {
			uint32_t len = size - off < BS ? size - off : BS;
			fill(buf, piece, off, len);
			assert_int_equal(storage_write(st, piece, off, buf, len), 0);
			assert_true(storage_open_count(st) <= 2);
		}
	}
	for (uint32_t piece = 0; piece < 12; piece++)
		assert_int_equal(storage_sync_piece(st, piece), 0);
	for (uint32_t piece = 0; piece < 12; piece++) {
		uint32_t size = storage_piece_size(st, piece);
		uint32_t len = size < BS ? size : BS;
		assert_int_equal(storage_read(st, piece, 0, buf, len), 0);
		fill(want, piece, 0, len);
		assert_memory_equal(buf, want, len);
		assert_true(storage_open_count(st) <= 2);
	}
	size_t bad;
	assert_int_equal(storage_check_files(st, &bad), 0);
	storage_free(st);
}

/* Child: with RLIMIT_FSIZE below the file size, writes past it fail with
 * EFBIG; the storage must say so, including for a write that got halfway. */
static int efbig_child(const char *root)
{
	struct rlimit rl = { 40000, 40000 };
	signal(SIGXFSZ, SIG_IGN);
	if (setrlimit(RLIMIT_FSIZE, &rl) < 0)
		return 10;
	const struct storage_file files[] = { { "big", 4 * PL, 0, STORAGE_OWN, 0 } };
	struct storage *st = NULL;
	if (storage_new(root, files, 1, PL, 0, &st) != 0)
		return 11;
	static uint8_t buf[BS];
	int code = 0;
	if (storage_write(st, 0, 0, buf, BS) != 0)
		code = 12; /* below the limit: fine */
	else if (storage_write(st, 1, 0, buf, BS) != -EFBIG)
		code = 13; /* 32768..49152 straddles 40000: partial, then EFBIG */
	else if (storage_write(st, 2, 0, buf, BS) != -EFBIG)
		code = 14; /* wholly past the limit */
	else if (storage_sync_piece(st, 0) != 0)
		code = 15;
	storage_free(st);
	return code;
}

static void test_write_failure(void **state)
{
	struct tmp *t = *state;
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(efbig_child(t->root));
	int status = 0;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	char p[700];
	struct stat sb;
	path_in(p, sizeof p, t->root, "big");
	assert_int_equal(stat(p, &sb), 0);
	assert_true(sb.st_size <= 40000);

	/* a file we may only read can be seeded but not written */
	if (geteuid() != 0) {
		const struct storage_file files[] = { { "ro", 10, 0, STORAGE_OWN, 0 } };
		path_in(p, sizeof p, t->root, "ro");
		FILE *fp = fopen(p, "w");
		assert_non_null(fp);
		fputs("0123456789", fp);
		fclose(fp);
		assert_int_equal(chmod(p, 0444), 0);
		struct storage *st = NULL;
		assert_int_equal(storage_new(t->root, files, 1, PL, 0, &st), 0);
		char buf[10];
		assert_int_equal(storage_read(st, 0, 0, buf, 10), 0);
		assert_memory_equal(buf, "0123456789", 10);
		assert_int_equal(storage_write(st, 0, 0, "x", 1), -EACCES);
		storage_free(st);
	}
}

/* A failed storage_create_files is undone: the files and directories this
 * storage created go, a file someone else put at a name stays. */
static void test_undo_create(void **state)
{
	struct tmp *t = *state;
	char p[700];
	struct storage_file files[] = {
		{ .path = "d/a", .size = 10, .first_piece = 0, .access = STORAGE_CREATE, 0 },
		{ .path = "d/e/b", .size = 10, .first_piece = 1, .access = STORAGE_CREATE, 0 },
		{ .path = "c", .size = 10, .first_piece = 2, .access = STORAGE_CREATE, 0 },
	};
	path_in(p, sizeof p, t->root, "c");
	write_text(p, "user");
	struct storage *st;
	assert_int_equal(storage_new(t->root, files, 3, PL, 0, &st), 0);
	size_t bad = 9;
	assert_int_equal(storage_create_files(st, &bad), -EEXIST);
	assert_int_equal(bad, 2);
	path_in(p, sizeof p, t->root, "d/e/b");
	assert_int_equal(access(p, F_OK), 0);
	storage_undo_create(st);
	storage_free(st);
	path_in(p, sizeof p, t->root, "d");
	assert_int_equal(access(p, F_OK), -1); /* d/a, d/e/b, d/e and d are gone */
	path_in(p, sizeof p, t->root, "c");
	assert_text(p, "user");
}

/* storage_delete_owned never follows a symlink planted for a directory,
 * and deletes only STORAGE_OWN files. */
static void test_delete_owned(void **state)
{
	struct tmp *t = *state;
	char p[700], q[700];
	struct storage_file files[] = {
		{ .path = "top/sub/x", .size = 4, .first_piece = 0, .access = STORAGE_CREATE, 0 },
		{ .path = "top/y", .size = 4, .first_piece = 1, .access = STORAGE_CREATE, 0 },
		{ .path = "top/z", .size = 4, .first_piece = 2, .access = STORAGE_READ, 0 },
	};
	path_in(p, sizeof p, t->root, "top");
	assert_int_equal(mkdir(p, 0755), 0);
	path_in(p, sizeof p, t->root, "top/z");
	write_text(p, "adop");
	struct storage *st;
	size_t bad;
	assert_int_equal(storage_new(t->root, files, 3, PL, 0, &st), 0);
	assert_int_equal(storage_create_files(st, &bad), 0);
	storage_free(st);
	/* Swap top/sub for a link to a directory holding a file "x". */
	path_in(p, sizeof p, t->root, "top/sub/x");
	assert_int_equal(unlink(p), 0);
	path_in(p, sizeof p, t->root, "top/sub");
	assert_int_equal(rmdir(p), 0);
	path_in(q, sizeof q, t->out, "x");
	write_text(q, "keep");
	assert_int_equal(symlink(t->out, p), 0);
	files[0].access = files[1].access = STORAGE_OWN;
	assert_int_equal(storage_new(t->root, files, 3, PL, 0, &st), 0);
	assert_int_equal(storage_delete_owned(st), 1); /* top/y only */
	storage_free(st);
	assert_text(q, "keep");
	struct stat sb;
	assert_int_equal(lstat(p, &sb), 0);
	assert_true(S_ISLNK(sb.st_mode));
	path_in(p, sizeof p, t->root, "top/z");
	assert_text(p, "adop");
	path_in(p, sizeof p, t->root, "top/y");
	assert_int_equal(access(p, F_OK), -1);
}


/* The v1 layout: one stream of files, pieces spanning them, a gap (a BEP 47
 * pad file) that reads as zeros and is never written. */
/* Pages of [off, off + len) of `path` in the page cache (mincore). */
static size_t resident_pages(const char *path, uint64_t off, size_t len)
{
	int fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	long pg = sysconf(_SC_PAGESIZE);
	void *m = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, (off_t)off);
	assert_true(m != MAP_FAILED);
	size_t n = (len + (size_t)pg - 1) / (size_t)pg, in = 0;
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

/* Can files under `dir` be opened with O_DIRECT (tmpfs before Linux 6.6
 * and some FUSE file systems say EINVAL)? */
static bool direct_io_here(const char *dir)
{
	char p[700];
	snprintf(p, sizeof p, "%s/.direct-probe", dir);
	int fd = open(p, O_RDWR | O_CREAT | O_EXCL | O_DIRECT, 0600);
	if (fd >= 0)
		close(fd);
	unlink(p);
	return fd >= 0;
}

static void test_write_aligned(void **state)
{
	struct tmp *t = *state;
	/* a: pieces 0..2 full, piece 3 of 5000 bytes (one whole 4 KiB page and
	 * 904 bytes); b: one piece. */
	const struct storage_file files[] = {
		{ "a.bin", 3 * PL + 5000, 0, STORAGE_CREATE, 0 },
		{ "d/b.bin", PL, 4, STORAGE_CREATE, 0 },
	};
	struct storage *st = NULL;
	assert_int_equal(storage_new(t->root, files, 2, PL, 0, &st), 0);
	uint8_t *buf = aligned_alloc(STORAGE_DIRECT_ALIGN, 2 * PL);
	uint8_t *back = malloc(PL);
	assert_non_null(buf);
	assert_non_null(back);
	bool direct = direct_io_here(t->root);
	char a[700], b[700];
	path_in(a, sizeof a, t->root, "a.bin");
	path_in(b, sizeof b, t->root, "d/b.bin");

	/* Piece 0 whole from an aligned buffer: around the page cache. */
	fill(buf, 0, 0, PL);
	assert_int_equal(storage_write_aligned(st, 0, 0, buf, PL), 0);
	/* Piece 1 by storage_write: through it (the check below can fail). */
	fill(buf, 1, 0, PL);
	assert_int_equal(storage_write(st, 1, 0, buf, PL), 0);
	/* Piece 2 from a buffer one byte off: storage_write's way. */
	fill(buf + 1, 2, 0, PL);
	assert_int_equal(storage_write_aligned(st, 2, 0, buf + 1, PL), 0);
	/* Piece 3: its whole page direct, the last 904 bytes buffered. */
	fill(buf, 3, 0, 5000);
	assert_int_equal(storage_write_aligned(st, 3, 0, buf, 5000), 0);
	/* Piece 4, the second half only: offset 16 KiB is aligned. */
	fill(buf, 4, BS, BS);
	assert_int_equal(storage_write_aligned(st, 4, BS, buf, BS), 0);
	fill(buf, 4, 0, BS);
	assert_int_equal(storage_write(st, 4, 0, buf, BS), 0);

	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	assert_int_equal(resident_pages(a, PL, PL), PL / page);
	assert_int_equal(resident_pages(a, 2 * PL, PL), PL / page);
	if (direct && page == STORAGE_DIRECT_ALIGN) {
		assert_int_equal(resident_pages(a, 0, PL), 0);
		assert_int_equal(resident_pages(a, 3 * PL, page), 0);
		assert_int_equal(resident_pages(a, 3 * PL + page, page), 1);
		assert_int_equal(resident_pages(b, BS, BS), 0);
		assert_int_equal(resident_pages(b, 0, BS), BS / page);
	} else {
		print_message("no O_DIRECT under %s: only the bytes are checked\n", t->root);
	}

	/* Every byte where it belongs, durable through the usual sync. */
	for (uint32_t p = 0; p < 5; p++) {
		uint32_t n = storage_piece_size(st, p);
		fill(buf, p, 0, n);
		assert_int_equal(storage_sync_piece(st, p), 0);
		assert_int_equal(storage_read(st, p, 0, back, n), 0);
		assert_memory_equal(back, buf, n);
	}
	/* The rules of storage_write hold: out of range, leaving the piece. */
	assert_int_equal(storage_write_aligned(st, 5, 0, buf, PL), -ERANGE);
	assert_int_equal(storage_write_aligned(st, 3, 4096, buf, 4096), -EINVAL);
	storage_free(st);

	/* A read-only file is refused before anything is opened for writing. */
	const struct storage_file ro[] = { { "a.bin", 3 * PL + 5000, 0, STORAGE_READ, 0 } };
	assert_int_equal(storage_new(t->root, ro, 1, PL, 0, &st), 0);
	assert_int_equal(storage_write_aligned(st, 0, 0, buf, PL), -EACCES);
	storage_free(st);

	/* The v1 stream layout writes as storage_write: through the cache. */
	const struct storage_file sfiles[] = { { "s.bin", 2 * PL, 0, STORAGE_CREATE, 0 } };
	assert_int_equal(storage_new_stream(t->root, sfiles, 1, PL, 2 * PL, 0, &st), 0);
	fill(buf, 0, 0, PL);
	assert_int_equal(storage_write_aligned(st, 0, 0, buf, PL), 0);
	char s1[700];
	path_in(s1, sizeof s1, t->root, "s.bin");
	assert_int_equal(resident_pages(s1, 0, PL), PL / page);
	assert_int_equal(storage_read(st, 0, 0, back, PL), 0);
	assert_memory_equal(back, buf, PL);
	storage_free(st);
	free(buf);
	free(back);
}

static void test_stream_layout(void **state)
{
	struct tmp *t = *state;
	/* a: 5 bytes | b: 40000 | empty | gap of 100 | c: 30000 = 70105 bytes,
	 * pieces of PL (32 KiB): 0 = a + b, 1 = b + gap + c, 2 = c. */
	struct storage_file files[] = {
		{ "a", 5, 0, STORAGE_CREATE, 0 },
		{ "d/b", 40000, 0, STORAGE_CREATE, 5 },
		{ "e", 0, 0, STORAGE_CREATE, 40005 },
		{ "d/c", 30000, 0, STORAGE_CREATE, 40105 },
	};
	const uint64_t total = 70105;
	struct storage *st;
	/* Bad layouts: going back, overlapping, past the end. */
	struct storage_file back[] = { { "x", 10, 0, STORAGE_OWN, 20 }, { "y", 10, 0, STORAGE_OWN, 0 } };
	assert_int_equal(storage_new_stream(t->root, back, 2, PL, 30, 0, &st), -EINVAL);
	struct storage_file over[] = { { "x", 10, 0, STORAGE_OWN, 0 }, { "y", 10, 0, STORAGE_OWN, 5 } };
	assert_int_equal(storage_new_stream(t->root, over, 2, PL, 30, 0, &st), -EINVAL);
	assert_int_equal(storage_new_stream(t->root, files, 4, PL, total - 1, 0, &st), -EINVAL);

	assert_int_equal(storage_new_stream(t->root, files, 4, PL, total, 0, &st), 0);
	assert_int_equal(storage_num_pieces(st), 3);
	assert_int_equal(storage_piece_size(st, 0), PL);
	assert_int_equal(storage_piece_size(st, 2), total - 2 * PL);
	size_t first;
	assert_int_equal(storage_piece_files(st, 0, &first), 2);
	assert_int_equal(first, 0);
	assert_int_equal(storage_piece_files(st, 1, &first), 3); /* b, e (empty) and c */
	assert_int_equal(first, 1);
	assert_int_equal(storage_piece_files(st, 2, &first), 1);
	assert_int_equal(first, 3);
	assert_int_equal(storage_piece_files(st, 3, &first), 0);
	size_t bad;
	assert_int_equal(storage_create_files(st, &bad), 0);

	/* Write every piece whole, the gap holding garbage: it is dropped. */
	uint8_t *buf = malloc(PL), *back_buf = malloc(PL);
	assert_non_null(buf);
	assert_non_null(back_buf);
	for (uint32_t p = 0; p < 3; p++) {
		uint32_t n = storage_piece_size(st, p);
		fill(buf, p, 0, n);
		assert_int_equal(storage_write(st, p, 0, buf, n), 0);
		assert_int_equal(storage_sync_piece(st, p), 0);
		assert_int_equal(storage_piece_on_disk(st, p), 1);
	}
	/* Read back: the gap is zeros, everything else as written. */
	for (uint32_t p = 0; p < 3; p++) {
		uint32_t n = storage_piece_size(st, p);
		fill(buf, p, 0, n);
		if (p == 1)
			memset(buf + (40005 - PL), 0, 100);
		assert_int_equal(storage_read(st, p, 0, back_buf, n), 0);
		assert_memory_equal(back_buf, buf, n);
	}
	/* The files hold exactly their bytes: b's last bytes came from piece 1. */
	char path[700];
	struct stat sb;
	path_in(path, sizeof path, t->root, "d/b");
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_size, 40000);
	path_in(path, sizeof path, t->root, "d/c");
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_size, 30000);
	FILE *f = fopen(path, "rb");
	assert_non_null(f);
	uint8_t c0;
	assert_int_equal(fread(&c0, 1, 1, f), 1);
	fclose(f);
	assert_int_equal(c0, pattern(1, 40105 - PL));
	/* A block across two files, at an offset. */
	fill(buf, 9, 0, 300);
	assert_int_equal(storage_write(st, 0, 4, buf, 300), 0);
	assert_int_equal(storage_read(st, 0, 4, back_buf, 300), 0);
	assert_memory_equal(back_buf, buf, 300);
	assert_int_equal(storage_write(st, 2, total - 2 * PL - 1, buf, 2), -EINVAL);
	storage_free(st);

	/* A piece spanning a file the swarm may only read: nothing is written,
	 * not even to the file it owns. */
	files[0].access = STORAGE_OWN;
	files[1].access = STORAGE_READ;
	files[2].access = STORAGE_OWN;
	files[3].access = STORAGE_OWN;
	assert_int_equal(storage_new_stream(t->root, files, 4, PL, total, 0, &st), 0);
	memset(buf, 0xee, PL);
	assert_int_equal(storage_write(st, 0, 0, buf, PL), -EACCES);
	assert_int_equal(storage_read(st, 0, 0, back_buf, 5), 0);
	assert_int_equal(back_buf[0], pattern(0, 0)); /* a untouched */
	storage_free(st);
	free(buf);
	free(back_buf);
}


/* A skipped file of a v1 layout: never created under the root; its bytes of
 * a piece shared with wanted files go to the part file outside it, so the
 * piece reads back whole; un-skipping makes the file with the next write. */
static void test_skipped_file(void **state)
{
	struct tmp *t = *state;
	/* a: 40000 (wanted) | b: 30000 (skipped) | c: 10000 (wanted); pieces of
	 * PL: 0 = a, 1 = a + b, 2 = b + c. */
	struct storage_file files[] = {
		{ "d/a", 40000, 0, STORAGE_CREATE, 0 },
		{ "d/b", 30000, 0, STORAGE_SKIP, 40000 },
		{ "d/c", 10000, 0, STORAGE_CREATE, 70000 },
	};
	struct storage *st;
	assert_int_equal(storage_new_stream(t->root, files, 3, PL, 80000, 0, &st), 0);
	size_t bad;
	assert_int_equal(storage_create_files(st, &bad), 0);
	char path[700];
	struct stat sb;
	path_in(path, sizeof path, t->root, "d/b");
	assert_int_equal(lstat(path, &sb), -1);
	uint8_t *buf = malloc(PL), *back = malloc(PL);
	assert_non_null(buf);
	assert_non_null(back);
	/* Without a part file the skipped bytes cannot be written. */
	fill(buf, 1, 0, PL);
	assert_int_equal(storage_write(st, 1, 0, buf, PL), -EACCES);
	assert_int_equal(storage_set_part_file(st, t->out, "7.part"), 0);
	for (uint32_t p = 0; p < 3; p++) {
		uint32_t n = storage_piece_size(st, p);
		fill(buf, p, 0, n);
		assert_int_equal(storage_write(st, p, 0, buf, n), 0);
		assert_int_equal(storage_sync_piece(st, p), 0);
		assert_int_equal(storage_piece_on_disk(st, p), 1);
		assert_int_equal(storage_read(st, p, 0, back, n), 0);
		assert_memory_equal(back, buf, n);
	}
	assert_int_equal(lstat(path, &sb), -1); /* still not under the root */
	char part[700];
	path_in(part, sizeof part, t->out, "7.part");
	assert_int_equal(stat(part, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	assert_int_equal(sb.st_size, 70000); /* b's bytes at their stream position */
	assert_int_equal(storage_check_files(st, &bad), 0);
	/* Un-skip: the file is made by the next write into it, and reads
	 * come from it (a hole until written). */
	assert_int_equal(storage_set_access(st, 1, STORAGE_CREATE), 0);
	assert_int_equal(storage_file_access(st, 1), STORAGE_CREATE);
	assert_int_equal(storage_piece_on_disk(st, 2), 0);
	fill(buf, 2, 0, storage_piece_size(st, 2));
	assert_int_equal(storage_write(st, 2, 0, buf, storage_piece_size(st, 2)), 0);
	assert_int_equal(lstat(path, &sb), 0);
	assert_int_equal(storage_file_access(st, 1), STORAGE_OWN);
	assert_int_equal(storage_read(st, 2, 0, back, storage_piece_size(st, 2)), 0);
	assert_memory_equal(back, buf, storage_piece_size(st, 2));
	assert_int_equal(storage_set_access(st, 9, STORAGE_OWN), -ERANGE);
	free(buf);
	free(back);
	storage_free(st);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_rejects, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stream_layout, setup, teardown),
		cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unwritten_ranges, setup, teardown),
		cmocka_unit_test_setup_teardown(test_escape_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_cap, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sync_two_step, setup, teardown),
		cmocka_unit_test_setup_teardown(test_write_failure, setup, teardown),
		cmocka_unit_test_setup_teardown(test_access_modes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_undo_create, setup, teardown),
		cmocka_unit_test_setup_teardown(test_delete_owned, setup, teardown),
		cmocka_unit_test_setup_teardown(test_skipped_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_write_aligned, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
