/* share.c: scan a directory, hash it into BEP 52 merkle trees (and v1
 * SHA-1 pieces) on the worker threads, build its metainfo, record it; and
 * re-verify swarms' files.
 *
 * A job runs in phases, each a batch of worker tasks whose completions come
 * back to the loop thread:
 *   share:  scan (1 task) -> hash units (N tasks) -> finalize (1 task) -> record
 *   verify: stat (1 task) -> hash units (N tasks) -> apply
 * A unit is a run of pieces of one file, or of several whole small files,
 * about UNIT_BYTES long, so both cores stay busy on one big file and a
 * directory of 100 000 small files is not 100 000 tasks.  A v1 torrent's
 * pieces span files, so its units are runs of pieces of the stream of all
 * files (a "stream" unit reads across file boundaries).  Memory is
 * O(files + pieces): piece hashes, never block hashes, are kept. */
#include "config.h"

#include "node/share.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/log.h"
#include "common/sha1.h"
#include "common/sha256.h"
#include "common/util.h"
#include "node/engine.h"
#include "node/node.h"
#include "node/swarm.h"
#include "node/workers.h"
#include "transfer/merkle.h"
#include "transfer/metainfo.h"

#define UNIT_BYTES (8u << 20)       /* work per task */
#define UNIT_MAX_FILES 256          /* whole small files per task */
#define READ_CHUNK (1u << 20)       /* pread size while hashing */

enum job_kind { JOB_SHARE, JOB_VERIFY };

struct job_file {
	char *path;             /* relative; owned */
	uint64_t size;
	int64_t mtime_ns;       /* as scanned (share) or as found (verify) */
	uint32_t first_piece;   /* verify: global index */
	uint64_t pieces;        /* v2 pieces; v1 (verify): the pieces it touches */
	uint64_t offset;        /* stream: where it starts in the v1 stream */
	uint8_t *layer;         /* share: computed piece hashes, owned */
	uint8_t *v1;            /* share, hybrid: SHA-1 of each piece, owned */
	bool pad_after;         /* share, hybrid: a pad file follows it (its last
				 * piece's SHA-1 covers the pad's zeros too) */
	const uint8_t *expect;  /* verify: stored piece hashes (borrowed), or NULL */
	bool check;             /* verify: hash this file */
	bool missing;           /* verify: could not be opened / wrong size */
	bool skipped;           /* verify: a skipped file never made: not looked at */
};

struct job_unit {
	struct share_job *job;
	size_t file;            /* first file; SIZE_MAX: a stream unit, of the
				 * global pieces [first_piece, first_piece + pieces) */
	size_t files;           /* whole files (when > 1, all from piece 0) */
	uint64_t first_piece;   /* within `file` when files == 1 */
	uint64_t pieces;
};

struct share_job {
	struct node *node;
	struct swarm *sw;
	enum job_kind kind;
	char root[PATH_MAX];         /* where the files are (a join's content root) */
	char part[PATH_MAX];         /* verify of a v1 join: its part file, where the
				      * skipped files' bytes of shared pieces are */
	uint64_t piece_length;
	enum metainfo_format format; /* share: what to build */
	struct job_file *files;
	size_t n_files, cap_files;
	uint64_t total;
	struct job_unit *units;
	size_t n_units;
	size_t outstanding;          /* tasks submitted and not yet completed (loop only) */
	int phase;                   /* PHASE_* (loop only) */
	uint8_t *piece_ok;           /* verify: one byte per global piece */
	/* A v1 torrent (share --format v1, or a check of a v1 swarm): its
	 * pieces are hashed over the files in stream order (job->files is in
	 * that order once hashing starts). */
	bool stream;
	uint64_t stream_total;       /* bytes of the stream */
	uint64_t stream_pieces;      /* pieces of the stream */
	uint8_t *v1_out;             /* share: 20 bytes per piece, owned */
	const uint8_t *v1_expect;    /* verify: the torrent's, borrowed */
	bool sync_first;             /* verify of a join: fdatasync each file before
				      * hashing it, so what checks out is durable */
	struct metainfo *meta;       /* share: the result, handed to the swarm */
	atomic_bool cancel;
	pthread_mutex_t lock;
	bool failed;
	char error[512];
};

static void job_fail(struct share_job *job, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void job_fail(struct share_job *job, const char *fmt, ...)
{
	pthread_mutex_lock(&job->lock);
	if (!job->failed) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(job->error, sizeof job->error, fmt, ap);
		va_end(ap);
		job->failed = true;
	}
	pthread_mutex_unlock(&job->lock);
	atomic_store(&job->cancel, true);
}

static bool job_failed(struct share_job *job)
{
	pthread_mutex_lock(&job->lock);
	bool f = job->failed;
	pthread_mutex_unlock(&job->lock);
	return f;
}

static struct share_job *job_new(struct node *node, struct swarm *sw, enum job_kind kind)
{
	struct share_job *job = calloc(1, sizeof *job);
	if (!job)
		return NULL;
	job->node = node;
	job->sw = sw;
	job->kind = kind;
	if (kind == JOB_VERIFY && sw->meta)
		swarm_content_root(sw, job->root, sizeof job->root);
	else
		snprintf(job->root, sizeof job->root, "%s", sw->root);
	pthread_mutex_init(&job->lock, NULL);
	return job;
}

void share_job_free(struct share_job *job)
{
	if (!job)
		return;
	for (size_t i = 0; i < job->n_files; i++) {
		free(job->files[i].path);
		free(job->files[i].layer);
		free(job->files[i].v1);
	}
	free(job->files);
	free(job->units);
	free(job->piece_ok);
	free(job->v1_out);
	if (job->meta) {
		metainfo_destroy(job->meta);
		free(job->meta);
	}
	pthread_mutex_destroy(&job->lock);
	free(job);
}

void share_job_cancel(struct share_job *job)
{
	if (job)
		atomic_store(&job->cancel, true);
}

static int64_t mtime_ns(const struct stat *st)
{
	return (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
}

/* ------------------------------------------------------------------ scan */

static int add_file(struct share_job *job, const char *path, const struct stat *st)
{
	if (job->n_files == job->cap_files) {
		size_t cap = job->cap_files ? job->cap_files * 2 : 64;
		struct job_file *p = realloc(job->files, cap * sizeof *p);
		if (!p)
			return -ENOMEM;
		job->files = p;
		job->cap_files = cap;
	}
	struct job_file *f = &job->files[job->n_files];
	memset(f, 0, sizeof *f);
	f->path = strdup(path);
	if (!f->path)
		return -ENOMEM;
	f->size = (uint64_t)st->st_size;
	f->mtime_ns = mtime_ns(st);
	job->n_files++;
	job->total += f->size;
	return 0;
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Walk the directory iteratively (a stack of relative paths), entries in
 * sorted order, refusing anything that is not a plain file or directory. */
static void work_scan(void *arg)
{
	struct share_job *job = arg;
	const char *root = job->root;
	char **stack = NULL, **names = NULL;
	size_t depth_n = 0, depth_cap = 0, n_names = 0, cap_names = 0;
	int rootfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (rootfd < 0) {
		job_fail(job, "cannot open %s: %s", root, strerror(errno));
		return;
	}
	stack = malloc(sizeof *stack);
	if (!stack || !(stack[0] = strdup(""))) {
		job_fail(job, "out of memory");
		goto done;
	}
	depth_n = 1;
	depth_cap = 1;
	while (depth_n > 0 && !atomic_load(&job->cancel)) {
		char *rel = stack[--depth_n];
		int dfd = *rel ? openat(rootfd, rel, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
			       : dup(rootfd);
		DIR *dir = dfd >= 0 ? fdopendir(dfd) : NULL;
		if (!dir) {
			job_fail(job, "cannot read directory %s/%s: %s", root, rel, strerror(errno));
			if (dfd >= 0)
				close(dfd);
			free(rel);
			break;
		}
		n_names = 0;
		struct dirent *de;
		while ((de = readdir(dir))) {
			if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
				continue;
			if (n_names == cap_names) {
				size_t cap = cap_names ? cap_names * 2 : 64;
				char **p = realloc(names, cap * sizeof *p);
				if (!p)
					break;
				names = p;
				cap_names = cap;
			}
			if (!(names[n_names] = strdup(de->d_name)))
				break;
			n_names++;
		}
		qsort(names, n_names, sizeof *names, cmp_names);
		/* Push subdirectories in reverse so they pop in sorted order. */
		size_t dirs_from = depth_n;
		for (size_t i = 0; i < n_names && !job_failed(job); i++) {
			const char *name = names[i];
			char path[METAINFO_MAX_PATH + 1];
			int plen = snprintf(path, sizeof path, "%s%s%s", rel, *rel ? "/" : "", name);
			if (!metainfo_component_ok((const uint8_t *)name, strlen(name))) {
				char shown[METAINFO_MAX_PATH + 1];
				utf8_escape_invalid(path, shown, sizeof shown);
				job_fail(job, "%s/%s: the name is not valid UTF-8 or not allowed in a torrent",
					 root, shown);
				break;
			}
			if (plen < 0 || (size_t)plen >= sizeof path) {
				job_fail(job, "%s/%s...: path too long", root, rel);
				break;
			}
			struct stat st;
			if (fstatat(dirfd(dir), name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
				job_fail(job, "%s/%s: %s", root, path, strerror(errno));
				break;
			}
			if (S_ISLNK(st.st_mode)) {
				job_fail(job,
					 "%s/%s is a symbolic link; shoal never follows links while "
					 "sharing (replace it with the file or share its target)",
					 root, path);
			} else if (S_ISDIR(st.st_mode)) {
				if (depth_n == depth_cap) {
					char **p = realloc(stack, 2 * depth_cap * sizeof *p);
					if (!p) {
						job_fail(job, "out of memory");
						break;
					}
					stack = p;
					depth_cap *= 2;
				}
				size_t slashes = 1;
				for (const char *c = path; *c; c++)
					slashes += *c == '/';
				if (slashes > METAINFO_MAX_DEPTH) {
					job_fail(job, "%s/%s: nested deeper than %u levels", root, path,
						 METAINFO_MAX_DEPTH);
					break;
				}
				if (!(stack[depth_n] = strdup(path))) {
					job_fail(job, "out of memory");
					break;
				}
				depth_n++;
			} else if (S_ISREG(st.st_mode)) {
				if (faccessat(dirfd(dir), name, R_OK, AT_EACCESS) != 0) {
					job_fail(job, "%s/%s is not readable: %s", root, path,
						 strerror(errno));
				} else if (job->n_files >= METAINFO_MAX_FILES) {
					job_fail(job, "%s holds more than %u files", root,
						 METAINFO_MAX_FILES);
				} else if (add_file(job, path, &st) != 0) {
					job_fail(job, "out of memory");
				}
			} else {
				job_fail(job, "%s/%s is not a regular file or directory", root, path);
			}
		}
		for (size_t a = dirs_from, b = depth_n; a + 1 < b; a++, b--) {
			char *t = stack[a];
			stack[a] = stack[b - 1];
			stack[b - 1] = t;
		}
		for (size_t i = 0; i < n_names; i++)
			free(names[i]);
		closedir(dir);
		free(rel);
		if (job_failed(job))
			break;
	}
	if (!job_failed(job) && job->n_files == 0)
		job_fail(job, "%s holds no files to share", root);
done:
	for (size_t i = 0; i < depth_n; i++)
		free(stack[i]);
	free(stack);
	free(names);
	close(rootfd);
}

/* ------------------------------------------------------------ hash units */

/* A stream's units: runs of at most `unit_pieces` pieces, of every piece
 * (share) or of those touching a file to check (verify). */
static int plan_stream_units(struct share_job *job, uint64_t unit_pieces)
{
	uint64_t n = job->stream_pieces;
	uint8_t *need = calloc(n ? n : 1, 1);
	if (!need)
		return -ENOMEM;
	for (size_t f = 0; f < job->n_files; f++) {
		const struct job_file *file = &job->files[f];
		if (job->kind == JOB_VERIFY && !file->check)
			continue;
		if (file->size == 0)
			continue;
		uint64_t first = file->offset / job->piece_length;
		uint64_t last = (file->offset + file->size - 1) / job->piece_length;
		memset(need + first, 1, last - first + 1);
	}
	size_t cap = (size_t)(n / unit_pieces + n / 2 + 2);
	if (cap > n + 1)
		cap = (size_t)n + 1;
	free(job->units);
	job->units = malloc(cap * sizeof *job->units);
	if (!job->units) {
		free(need);
		return -ENOMEM;
	}
	for (uint64_t p = 0; p < n;) {
		if (!need[p]) {
			p++;
			continue;
		}
		struct job_unit *u = &job->units[job->n_units++];
		u->job = job;
		u->file = SIZE_MAX;
		u->files = 0;
		u->first_piece = p;
		u->pieces = 0;
		while (p < n && need[p] && u->pieces < unit_pieces) {
			p++;
			u->pieces++;
		}
	}
	free(need);
	return 0;
}

/* Cut the checked files into units of about UNIT_BYTES. */
static int plan_units(struct share_job *job)
{
	size_t cap = 16;
	job->units = malloc(cap * sizeof *job->units);
	if (!job->units)
		return -ENOMEM;
	uint64_t unit_pieces = UNIT_BYTES / job->piece_length;
	if (unit_pieces == 0)
		unit_pieces = 1;
	if (job->stream)
		return plan_stream_units(job, unit_pieces);
	struct job_unit *open_batch = NULL; /* a unit gathering small files */
	uint64_t batch_bytes = 0;
	for (size_t f = 0; f < job->n_files; f++) {
		struct job_file *file = &job->files[f];
		if (file->pieces == 0 || (job->kind == JOB_VERIFY && (!file->check || file->missing)))
			continue;
		if (job->n_units + file->pieces / unit_pieces + 2 > cap) {
			cap = (job->n_units + file->pieces / unit_pieces + 2) * 2;
			struct job_unit *p = realloc(job->units, cap * sizeof *p);
			if (!p)
				return -ENOMEM;
			job->units = p;
			open_batch = NULL;
		}
		bool small = file->size < UNIT_BYTES / 4;
		if (small && open_batch && open_batch->file + open_batch->files == f &&
		    open_batch->files < UNIT_MAX_FILES && batch_bytes + file->size <= UNIT_BYTES) {
			open_batch->files++;
			batch_bytes += file->size;
			continue;
		}
		for (uint64_t p = 0; p < file->pieces; p += unit_pieces) {
			struct job_unit *u = &job->units[job->n_units++];
			u->job = job;
			u->file = f;
			u->files = 1;
			u->first_piece = p;
			u->pieces = file->pieces - p < unit_pieces ? file->pieces - p : unit_pieces;
		}
		open_batch = small ? &job->units[job->n_units - 1] : NULL;
		batch_bytes = small ? file->size : 0;
	}
	return 0;
}

/* Hash pieces [first, first+count) of one open file. */
/* Zeros to feed SHA-1 for a pad file (one piece at most, in chunks). */
static const uint8_t pad_zeros[64 * 1024];

/* Hash pieces [first, first+count) of one open file: the merkle piece hash,
 * and for a hybrid share (`sha1` not NULL) in the same pass the v1 SHA-1. */
static int hash_pieces(struct share_job *job, struct job_file *file, int fd, uint64_t first,
		       uint64_t count, struct sha256_ctx *ctx, struct sha1_ctx *sha1,
		       uint8_t *buf, const char *root)
{
	uint64_t leaves = merkle_piece_leaves(file->size, job->piece_length);
	for (uint64_t i = first; i < first + count; i++) {
		if (atomic_load(&job->cancel))
			return -ECANCELED;
		uint64_t off = i * job->piece_length;
		uint64_t left = merkle_piece_size(file->size, job->piece_length, i);
		struct merkle_piece mp;
		if (merkle_piece_init(&mp, ctx, leaves) != 0)
			return -EINVAL;
		if (sha1)
			sha1_begin(sha1);
		uint64_t pad = file->pad_after && i + 1 == file->pieces ? job->piece_length - left : 0;
		while (left > 0) {
			size_t want = left < READ_CHUNK ? (size_t)left : READ_CHUNK;
			ssize_t n = pread(fd, buf, want, (off_t)off);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0) {
				if (job->kind == JOB_SHARE)
					job_fail(job, "%s/%s: %s while hashing", root, file->path,
						 n < 0 ? strerror(errno) : "file shrank");
				return -EIO;
			}
			if (merkle_piece_update(&mp, buf, (size_t)n) != 0)
				return -EINVAL;
			if (sha1)
				sha1_update(sha1, buf, (size_t)n);
			off += (uint64_t)n;
			left -= (uint64_t)n;
			atomic_fetch_add(&job->sw->work_done, (uint64_t)n);
		}
		for (; sha1 && pad > 0; pad -= pad < sizeof pad_zeros ? pad : sizeof pad_zeros)
			sha1_update(sha1, pad_zeros, pad < sizeof pad_zeros ? pad : sizeof pad_zeros);
		if (sha1)
			sha1_final(sha1, file->v1 + SHA1_LEN * i);
		uint8_t h[MERKLE_HASH_LEN];
		if (merkle_piece_final(&mp, h) != 0)
			return -EINVAL;
		if (job->kind == JOB_SHARE)
			memcpy(file->layer + 32 * i, h, 32);
		else
			job->piece_ok[file->first_piece + i] =
				file->expect && memcmp(file->expect + 32 * i, h, 32) == 0;
	}
	return 0;
}

/* The first file (in stream order) holding a byte at or after `pos`. */
static size_t stream_file_at(const struct share_job *job, uint64_t pos)
{
	size_t lo = 0, hi = job->n_files;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct job_file *f = &job->files[mid];
		if (f->offset + f->size <= pos)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Hash the stream unit's pieces with SHA-1, reading across files (gaps,
 * BEP 47 pad files, are zeros).  Share: into job->v1_out; verify: each
 * piece's verdict into piece_ok (a missing, short or unreadable file fails
 * the pieces it is part of). */
static void hash_stream(struct job_unit *u, struct sha1_ctx *sha1, uint8_t *buf)
{
	struct share_job *job = u->job;
	static const uint8_t zero_chunk[READ_CHUNK];
	uint64_t plen = job->piece_length;
	size_t fi = stream_file_at(job, u->first_piece * plen);
	size_t open_fi = SIZE_MAX;
	int fd = -1;
	for (uint64_t p = u->first_piece; p < u->first_piece + u->pieces; p++) {
		if (atomic_load(&job->cancel))
			break;
		uint64_t pos = p * plen;
		uint64_t end = pos + plen < job->stream_total ? pos + plen : job->stream_total;
		bool ok = true;
		sha1_begin(sha1);
		while (pos < end && ok) {
			while (fi < job->n_files && job->files[fi].offset + job->files[fi].size <= pos)
				fi++;
			struct job_file *f = fi < job->n_files ? &job->files[fi] : NULL;
			if (!f || f->offset > pos) {
				uint64_t gap_end = f && f->offset < end ? f->offset : end;
				uint64_t n = gap_end - pos < READ_CHUNK ? gap_end - pos : READ_CHUNK;
				sha1_update(sha1, zero_chunk, (size_t)n);
				pos += n;
				continue;
			}
			if (f->missing) {
				ok = false;
				break;
			}
			if (open_fi != fi) {
				if (fd >= 0)
					close(fd);
				char path[PATH_MAX + 300];
				/* A skipped file's bytes of this piece are in the part
				 * file, at their stream position. */
				if (f->skipped)
					snprintf(path, sizeof path, "%s", job->part);
				else
					snprintf(path, sizeof path, "%s/%s", job->root, f->path);
				fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
				open_fi = fi;
				struct stat st;
				if (fd >= 0 && job->kind == JOB_SHARE &&
				    (fstat(fd, &st) != 0 || (uint64_t)st.st_size != f->size ||
				     mtime_ns(&st) != f->mtime_ns)) {
					job_fail(job, "%s changed while being shared; try again once it is "
						 "stable", path);
					ok = false;
					break;
				}
				if (fd < 0) {
					if (job->kind == JOB_SHARE)
						job_fail(job, "cannot open %s: %s", path, strerror(errno));
					ok = false;
					break;
				}
			}
			uint64_t stop = f->offset + f->size < end ? f->offset + f->size : end;
			size_t want = stop - pos < READ_CHUNK ? (size_t)(stop - pos) : READ_CHUNK;
			ssize_t n = pread(fd, buf, want, (off_t)(f->skipped ? pos : pos - f->offset));
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0) {
				if (job->kind == JOB_SHARE)
					job_fail(job, "%s/%s: %s while hashing", job->root, f->path,
						 n < 0 ? strerror(errno) : "file shrank");
				ok = false;
				break;
			}
			sha1_update(sha1, buf, (size_t)n);
			pos += (uint64_t)n;
			atomic_fetch_add(&job->sw->work_done, (uint64_t)n);
		}
		uint8_t h[SHA1_LEN];
		sha1_final(sha1, h);
		if (job->kind == JOB_SHARE)
			memcpy(job->v1_out + SHA1_LEN * p, h, SHA1_LEN);
		else
			job->piece_ok[p] = ok && memcmp(job->v1_expect + SHA1_LEN * p, h, SHA1_LEN) == 0;
		if (!ok && job->kind == JOB_SHARE)
			break;
	}
	if (fd >= 0)
		close(fd);
}

static void work_unit(void *arg)
{
	struct job_unit *u = arg;
	struct share_job *job = u->job;
	const char *root = job->root;
	if (u->file == SIZE_MAX) {
		struct sha1_ctx *sha1 = sha1_new();
		uint8_t *buf = malloc(READ_CHUNK);
		if (sha1 && buf)
			hash_stream(u, sha1, buf);
		else
			job_fail(job, "out of memory");
		sha1_free(sha1);
		free(buf);
		return;
	}
	struct sha256_ctx *ctx = sha256_new();
	bool v1 = job->kind == JOB_SHARE && job->format == METAINFO_FORMAT_HYBRID;
	struct sha1_ctx *sha1 = v1 ? sha1_new() : NULL;
	uint8_t *buf = malloc(READ_CHUNK);
	if (!ctx || !buf || (v1 && !sha1)) {
		job_fail(job, "out of memory");
		goto done;
	}
	for (size_t k = 0; k < u->files && !atomic_load(&job->cancel); k++) {
		struct job_file *file = &job->files[u->file + k];
		if (file->pieces == 0 || (job->kind == JOB_VERIFY && (!file->check || file->missing)))
			continue;
		char path[PATH_MAX];
		snprintf(path, sizeof path, "%s/%s", root, file->path);
		int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
		struct stat before, after;
		if (fd < 0 || fstat(fd, &before) != 0) {
			if (job->kind == JOB_SHARE)
				job_fail(job, "cannot open %s: %s", path, strerror(errno));
			if (fd >= 0)
				close(fd);
			continue; /* verify: pieces stay not ok */
		}
		if (job->kind == JOB_SHARE &&
		    ((uint64_t)before.st_size != file->size || mtime_ns(&before) != file->mtime_ns)) {
			job_fail(job, "%s changed while being shared; try again once it is stable",
				 path);
			close(fd);
			break;
		}
		if (job->kind == JOB_VERIFY && (uint64_t)before.st_size > file->size) {
			close(fd);
			continue;
		}
		uint64_t first = u->files == 1 ? u->first_piece : 0;
		uint64_t count = u->files == 1 ? u->pieces : file->pieces;
		if (job->kind == JOB_VERIFY && (uint64_t)before.st_size < file->size) {
			/* Only pieces wholly on disk can match; the rest stay not ok. */
			uint64_t whole = (uint64_t)before.st_size / job->piece_length;
			count = first >= whole ? 0 : (first + count > whole ? whole - first : count);
		}
		int rc = hash_pieces(job, file, fd, first, count, ctx, sha1, buf, root);
		if (rc == 0 && fstat(fd, &after) == 0 &&
		    ((uint64_t)after.st_size != (uint64_t)before.st_size ||
		     mtime_ns(&after) != mtime_ns(&before))) {
			if (job->kind == JOB_SHARE)
				job_fail(job, "%s changed while being hashed; try again once it is stable",
					 path);
			else
				for (uint64_t i = first; i < first + count; i++)
					job->piece_ok[file->first_piece + i] = 0;
		}
		close(fd);
	}
done:
	sha256_free(ctx);
	sha1_free(sha1);
	free(buf);
}

/* -------------------------------------------------------------- finalize */

static int cmp_job_files(const void *a, const void *b)
{
	return strcmp(((const struct job_file *)a)->path, ((const struct job_file *)b)->path);
}

static int write_torrent_file(struct share_job *job, const struct buf *torrent)
{
	char dir[PATH_MAX], path[PATH_MAX + 100], hex[65];
	snprintf(dir, sizeof dir, "%s/torrents", job->node->cfg.data_dir);
	int rc = mkdir_p(dir, 0700);
	if (rc)
		return rc;
	hex_encode(job->meta->info_hash, job->meta->has_v2 ? 32 : 20, hex);
	snprintf(path, sizeof path, "%s/%s.torrent", dir, hex);
	return write_file_atomic(path, torrent->data, torrent->len, 0644);
}

static void work_finalize(void *arg)
{
	struct share_job *job = arg;
	struct sha256_ctx *ctx = sha256_new();
	struct metainfo_file_in *in = calloc(job->n_files, sizeof *in);
	struct buf torrent;
	buf_init(&torrent, METAINFO_MAX_TORRENT_SIZE);
	if (!ctx || !in) {
		job_fail(job, "out of memory");
		goto done;
	}
	for (size_t f = 0; f < job->n_files; f++) {
		struct job_file *file = &job->files[f];
		in[f].path = file->path;
		in[f].size = file->size;
		in[f].layer = file->layer;
		in[f].v1_pieces = file->v1;
		if (job->stream) {
			/* The pieces that start in this file (job->files is in
			 * stream order, the order the builder sorts into). */
			uint64_t first = (file->offset + job->piece_length - 1) / job->piece_length;
			in[f].v1_pieces = job->v1_out + SHA1_LEN * first;
			continue;
		}
		if (file->pieces == 1) {
			memcpy(in[f].root, file->layer, 32);
		} else if (file->pieces > 1 &&
			   merkle_layer_root(ctx, file->layer, file->pieces, job->piece_length,
					     in[f].root) != 0) {
			job_fail(job, "internal error computing the root of %s", file->path);
			goto done;
		}
	}
	char created_by[32];
	snprintf(created_by, sizeof created_by, "shoal/%s", PACKAGE_VERSION);
	uint8_t info_hash[32];
	int rc = metainfo_build_torrent(job->sw->name, job->piece_length, job->format, in,
					job->n_files,
					created_by, (int64_t)time(NULL), &torrent, info_hash);
	if (rc == METAINFO_E_TOO_BIG || rc == -EMSGSIZE) {
		job_fail(job, "cannot build the metainfo: its info dictionary would exceed %u MiB "
			 "(%zu files)%s", METAINFO_MAX_INFO_SIZE >> 20, job->n_files,
			 job->format != METAINFO_FORMAT_V2
				 ? "; the v1 file list and pad files of --format hybrid or v1 take "
				   "the most room: share it with --format v2"
				 : "");
		goto done;
	}
	if (rc) {
		job_fail(job, "cannot build the metainfo: %s", metainfo_strerror(rc));
		goto done;
	}
	job->meta = calloc(1, sizeof *job->meta);
	if (!job->meta) {
		job_fail(job, "out of memory");
		goto done;
	}
	rc = metainfo_parse_torrent(job->meta, torrent.data, torrent.data + torrent.len);
	if (rc) {
		free(job->meta);
		job->meta = NULL;
		job_fail(job, "the metainfo we built does not parse back: %s", metainfo_strerror(rc));
		goto done;
	}
	if ((rc = write_torrent_file(job, &torrent)) != 0)
		job_fail(job, "cannot write the .torrent into %s/torrents: %s",
			 job->node->cfg.data_dir, strerror(-rc));
	/* Sort by path so the loop can match scan results to metainfo files. */
	qsort(job->files, job->n_files, sizeof *job->files, cmp_job_files);
done:
	buf_destroy(&torrent);
	free(in);
	sha256_free(ctx);
}

/* ------------------------------------------------------------ verify stat */

/* Decide which files a verify job hashes: all (full) or those whose size or
 * mtime moved since they were last verified; missing ones fail outright. */
static void work_stat(void *arg)
{
	struct share_job *job = arg;
	for (size_t f = 0; f < job->n_files; f++) {
		struct job_file *file = &job->files[f];
		char path[PATH_MAX];
		snprintf(path, sizeof path, "%s/%s", job->root, file->path);
		struct stat st;
		int64_t recorded = file->mtime_ns;
		if (file->skipped) {
			/* Not downloaded, so absent by design: its pieces (and, in
			 * v1, the bytes of it a neighbour's piece holds, in the part
			 * file) stay as they are. */
			file->check = false;
			continue;
		}
		/* Larger than it should be: changed.  Smaller: a download in
		 * progress (or a truncated file); its whole pieces are checked. */
		if (lstat(path, &st) != 0 || !S_ISREG(st.st_mode) ||
		    (uint64_t)st.st_size > file->size) {
			file->missing = true;
			file->check = file->pieces > 0;
			file->mtime_ns = 0;
			continue;
		}
		file->mtime_ns = mtime_ns(&st);
		file->check = file->pieces > 0 &&
			      (file->mtime_ns != recorded || (uint64_t)st.st_size < file->size);
		/* A join's file may hold data written but never synced (an
		 * unclean stop): sync it before its pieces count as verified. */
		if (file->check && job->sync_first) {
			int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
			if (fd < 0 || fdatasync(fd) < 0) {
				file->missing = true;
				file->mtime_ns = 0;
			}
			if (fd >= 0)
				close(fd);
		}
	}
}

/* ------------------------------------------------------ loop-side phases */

enum { PHASE_SCAN, PHASE_HASH, PHASE_FINAL };

static void phase_done(struct share_job *job);

static void done_job_task(void *arg)
{
	struct share_job *job = arg;
	if (--job->outstanding == 0)
		phase_done(job);
}

static void done_unit(void *arg)
{
	struct share_job *job = ((struct job_unit *)arg)->job;
	if (--job->outstanding == 0)
		phase_done(job);
}

static int submit_job_task(struct share_job *job, work_fn fn)
{
	if (workers_submit(job->node->workers, fn, done_job_task, job) != 0)
		return -EAGAIN;
	job->outstanding++;
	return 0;
}

/* Plan and queue the hash units; returns the number queued. */
static size_t start_hashing(struct share_job *job)
{
	if (plan_units(job) != 0) {
		job_fail(job, "out of memory");
		return 0;
	}
	uint64_t bytes = 0;
	for (size_t f = 0; f < job->n_files; f++)
		if (job->kind == JOB_SHARE || (job->files[f].check && !job->files[f].missing))
			bytes += job->files[f].size;
	job->sw->work_total = bytes;
	atomic_store(&job->sw->work_done, 0);
	job->sw->work_started_ms = now_ms();
	job->phase = PHASE_HASH;
	for (size_t i = 0; i < job->n_units; i++) {
		if (workers_submit(job->node->workers, work_unit, done_unit, &job->units[i]) != 0) {
			job_fail(job, "cannot queue hashing work");
			break;
		}
		job->outstanding++;
	}
	return job->outstanding;
}

static void record_share(struct share_job *job)
{
	struct node *node = job->node;
	struct swarm *sw = job->sw;
	struct metainfo *mi = job->meta;
	struct swarm *twin = swarm_find_by_hash(node, mi->info_hash);
	if (twin && twin != sw) {
		swarm_set_state(node, sw, SWARM_ERROR);
		snprintf(sw->error, sizeof sw->error,
			 "the same content is already shared as swarm %" PRId64 " (%s)", twin->id,
			 twin->root);
		return;
	}
	sw->have = calloc((mi->total_pieces + 7) / 8 + 1, 1);
	sw->mtimes_ns = calloc(mi->file_count ? mi->file_count : 1, sizeof *sw->mtimes_ns);
	if (!sw->have || !sw->mtimes_ns || swarm_set_key(node, sw, mi->info_hash, !mi->has_v2) != 0) {
		swarm_set_state(node, sw, SWARM_ERROR);
		snprintf(sw->error, sizeof sw->error, "out of memory");
		return;
	}
	for (size_t f = 0; f < mi->file_count; f++) {
		struct job_file key = { .path = mi->files[f].path };
		struct job_file *jf =
			bsearch(&key, job->files, job->n_files, sizeof *job->files, cmp_job_files);
		sw->mtimes_ns[f] = jf ? jf->mtime_ns : 0;
	}
	for (uint32_t i = 0; i < mi->total_pieces; i++)
		swarm_have_set(sw, i);
	sw->meta = mi;
	job->meta = NULL;
	if (swarm_learn_v1(node, sw) != 0) {
		swarm_set_state(node, sw, SWARM_ERROR);
		snprintf(sw->error, sizeof sw->error, "out of memory");
		return;
	}
	swarm_set_state(node, sw, SWARM_SEEDING);
	swarm_report_hashed(node, sw); /* the mediator records it */
}

static uint32_t apply_verify(struct share_job *job)
{
	struct swarm *sw = job->sw;
	uint32_t dropped = 0, gained = 0;
	sw->last_check.files_hashed = 0;
	for (size_t f = 0; f < job->n_files; f++) {
		struct job_file *file = &job->files[f];
		if (!file->check)
			continue;
		sw->last_check.files_hashed += !file->missing;
		for (uint64_t i = 0; i < file->pieces; i++) {
			uint32_t p = file->first_piece + (uint32_t)i;
			bool ok = !file->missing && job->piece_ok[p] == 1;
			if (ok && !swarm_have_test(sw, p)) {
				swarm_have_set(sw, p);
				gained++;
			} else if (!ok && swarm_have_test(sw, p)) {
				swarm_have_clear(sw, p);
				dropped++;
			}
		}
		sw->mtimes_ns[f] = file->mtime_ns;
	}
	if (dropped)
		log_warn("swarm %" PRId64 ": %u pieces no longer match their hashes and are no longer "
			 "offered",
			 sw->id, dropped);
	/* One line per swarm at every start would be 50,000 lines: a check
	 * that read nothing is logged at debug level. */
	if (sw->last_check.files_hashed || dropped)
		log_info("swarm %" PRId64 ": checked; %u of %u pieces verified (%u newly)", sw->id,
			 sw->have_count, sw->meta->total_pieces, gained);
	else
		log_debug("swarm %" PRId64 ": checked; nothing changed (%u pieces)", sw->id,
			  sw->have_count);
	return dropped;
}

/* The job is over: hand its result to the swarm and free it. */
static void job_end(struct share_job *job)
{
	struct node *node = job->node;
	struct swarm *sw = job->sw;
	bool failed = job_failed(job), cancelled = atomic_load(&job->cancel);
	if (job->kind == JOB_SHARE) {
		if (failed) {
			swarm_set_state(node, sw, SWARM_ERROR);
			snprintf(sw->error, sizeof sw->error, "%s", job->error);
			log_error("swarm %" PRId64 ": cannot share %s: %s", sw->id, sw->root, job->error);
		} else if (cancelled) {
			swarm_set_state(node, sw, SWARM_ERROR);
			snprintf(sw->error, sizeof sw->error, "cancelled");
		} else {
			record_share(job);
		}
	} else {
		uint32_t dropped = 0;
		if (failed)
			log_error("swarm %" PRId64 ": check failed: %s", sw->id, job->error);
		else if (!cancelled)
			dropped = apply_verify(job);
		sw->last_check.seq++;
		sw->last_check.result = failed ? "failed" : cancelled ? "cancelled" : "ok";
		sw->last_check.pieces_verified = sw->have_count;
		sw->last_check.pieces_dropped = dropped;
		sw->last_check.finished_at = (int64_t)time(NULL);
		swarm_set_state(node, sw, sw->resume_state);
		swarm_report_checked(node, sw, !failed && !cancelled);
	}
	sw->job = NULL;
	share_job_free(job);
	swarm_report_job_ended(node, sw);
}

static int cmp_job_tree_order(const void *a, const void *b)
{
	return metainfo_path_cmp(((const struct job_file *)a)->path,
				 ((const struct job_file *)b)->path);
}

/* A v1 share: the files in file tree order make one stream of pieces. */
static int start_stream_share(struct share_job *job)
{
	if (job->total == 0) {
		job_fail(job, "a v1 torrent needs at least one byte of data (every file in %s is "
			 "empty); share it as --format v2 or hybrid", job->root);
		return -EINVAL;
	}
	qsort(job->files, job->n_files, sizeof *job->files, cmp_job_tree_order);
	uint64_t off = 0;
	for (size_t f = 0; f < job->n_files; f++) {
		job->files[f].offset = off;
		off += job->files[f].size;
	}
	job->stream = true;
	job->stream_total = off;
	job->stream_pieces = (off + job->piece_length - 1) / job->piece_length;
	job->v1_out = malloc((size_t)job->stream_pieces * SHA1_LEN);
	if (!job->v1_out) {
		job_fail(job, "out of memory");
		return -ENOMEM;
	}
	return 0;
}

static void phase_done(struct share_job *job)
{
	if (job_failed(job) || atomic_load(&job->cancel)) {
		job_end(job);
		return;
	}
	switch (job->phase) {
	case PHASE_SCAN:
		if (job->kind == JOB_SHARE) {
			job->piece_length = metainfo_pick_piece_length(job->total);
			/* A torrent of one file has no pad file (metainfo_build_info's
			 * rule for "single"). */
			bool single = job->n_files == 1 && strcmp(job->files[0].path, job->sw->name) == 0;
			bool v1 = job->format == METAINFO_FORMAT_HYBRID;
			if (job->format == METAINFO_FORMAT_V1 && start_stream_share(job) != 0) {
				job_end(job);
				return;
			}
			for (size_t f = 0; f < job->n_files; f++) {
				struct job_file *file = &job->files[f];
				if (job->stream)
					continue; /* no v2 hashes */
				file->pieces = merkle_piece_count(file->size, job->piece_length);
				file->pad_after =
					v1 && metainfo_v1_pad(file->size, job->piece_length, single) > 0;
				if (file->pieces && !(file->layer = malloc(32 * file->pieces))) {
					job_fail(job, "out of memory");
					job_end(job);
					return;
				}
				if (v1 && file->pieces && !(file->v1 = malloc(SHA1_LEN * file->pieces))) {
					job_fail(job, "out of memory");
					job_end(job);
					return;
				}
			}
		}
		if (start_hashing(job) > 0)
			return;
		/* nothing to hash */
		__attribute__((fallthrough));
	case PHASE_HASH:
		if (job->kind == JOB_SHARE && !job_failed(job)) {
			job->phase = PHASE_FINAL;
			if (submit_job_task(job, work_finalize) == 0)
				return;
			job_fail(job, "cannot queue work");
		}
		job_end(job);
		return;
	default:
		job_end(job);
		return;
	}
}

int share_start(struct node *node, struct swarm *sw, enum metainfo_format format)
{
	struct share_job *job = job_new(node, sw, JOB_SHARE);
	if (!job)
		return -ENOMEM;
	job->format = format;
	sw->job = job;
	swarm_set_state(node, sw, SWARM_HASHING);
	sw->work_started_ms = now_ms();
	job->phase = PHASE_SCAN;
	if (submit_job_task(job, work_scan) != 0) {
		sw->job = NULL;
		share_job_free(job);
		return -EAGAIN;
	}
	return 0;
}

int share_verify_start(struct node *node, struct swarm *sw, bool full)
{
	const struct metainfo *mi = sw->meta;
	if (sw->job)
		return -EBUSY;
	if (!mi || !sw->have || !sw->mtimes_ns)
		return -EINVAL;
	struct share_job *job = job_new(node, sw, JOB_VERIFY);
	if (!job)
		return -ENOMEM;
	job->piece_length = mi->piece_length;
	job->files = calloc(mi->file_count ? mi->file_count : 1, sizeof *job->files);
	job->piece_ok = calloc(mi->total_pieces + 1, 1);
	if (!job->files || !job->piece_ok)
		goto fail;
	for (size_t f = 0; f < mi->file_count; f++) {
		struct job_file *file = &job->files[f];
		file->path = strdup(mi->files[f].path);
		if (!file->path)
			goto fail;
		job->n_files++;
		file->size = mi->files[f].size;
		file->first_piece = mi->files[f].first_piece;
		file->pieces = mi->files[f].piece_count;
		file->expect = mi->files[f].layer;
		file->offset = mi->files[f].offset;
		file->mtime_ns = full ? -1 : sw->mtimes_ns[f]; /* -1 never matches: check all */
		file->skipped = sw->file_access && sw->file_access[f] == STORAGE_SKIP;
		if (file->skipped && !job->part[0]) {
			char dir[PATH_MAX], name[80];
			swarm_part_file(node, sw, dir, sizeof dir, name, sizeof name);
			snprintf(job->part, sizeof job->part, "%s/%s", dir, name);
		}
	}
	if (!mi->has_v2) {
		job->stream = true;
		job->stream_total = mi->v1_total;
		job->stream_pieces = mi->total_pieces;
		job->v1_expect = mi->v1_pieces;
	}
	job->total = mi->total_size;
	job->phase = PHASE_SCAN;
	job->sync_first = sw->role == SWARM_ROLE_JOIN;
	if (sw->state != SWARM_CHECKING)
		sw->resume_state = sw->state;
	swarm_set_state(node, sw, SWARM_CHECKING);
	sw->job = job;
	if (submit_job_task(job, work_stat) != 0) {
		sw->job = NULL;
		swarm_set_state(node, sw, sw->resume_state);
		goto fail;
	}
	return 0;
fail:
	share_job_free(job);
	return -ENOMEM;
}
