/* storage.c: pieces to files under a root directory, opened beneath it with openat. */
#include "config.h"

#include "transfer/storage.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "transfer/bitfield.h"

struct sfile {
	char *path;         /* owned, validated */
	uint64_t size;
	uint64_t offset;    /* of its first byte in the stream (BEP 52: first_piece * piece_len) */
	uint32_t first_piece;
	uint32_t npieces;
	int fd;             /* -1 while closed */
	bool writable;      /* fd was opened read-write */
	bool dirty;         /* written since the last fdatasync */
	bool created;       /* we created it; its directory entry is not synced */
	bool made;          /* this storage created it (made_dev/made_ino) */
	dev_t made_dev;
	ino_t made_ino;
	enum storage_access access;
	int sticky_err;     /* failed fdatasync at close, for the next sync */
	uint64_t last_use;
};

struct storage {
	int rootfd;
	uint32_t piece_len;
	uint32_t num_pieces;
	bool stream;          /* the v1 layout: pieces span files */
	uint64_t total;       /* stream: its length */
	/* BEP 52: the file of every piece.  Stream: the first file holding a
	 * byte of it, or UINT32_MAX when it lies wholly in a gap. */
	uint32_t *piece_file;
	struct sfile *files;
	size_t nfiles;
	size_t *open_list;    /* indices of files with an open fd */
	unsigned n_open, max_open;
	uint64_t clock;       /* use counter for LRU */
	char **made_dirs;     /* owned: directories this storage created, in order */
	size_t n_made_dirs;
	/* Where STORAGE_SKIP files' bytes go (storage_set_part_file): a
	 * directory descriptor and a name, or -1 / NULL. */
	int partdirfd;
	char *partname;
	/* storage_write_aligned met a file system without O_DIRECT. */
	bool no_direct;
};

/* Where a byte at `off` of file f is in its descriptor: a skipped file's
 * bytes sit in the part file at their stream position (sparse). */
static uint64_t disk_off(const struct sfile *f, uint64_t off)
{
	return f->access == STORAGE_SKIP ? f->offset + off : off;
}

/* ---- paths ------------------------------------------------------------- */

/* A relative path of plain components: no leading '/', no empty, "." or
 * ".." component, no component longer than NAME_MAX. */
static bool path_ok(const char *path)
{
	size_t len = strnlen(path, STORAGE_MAX_PATH + 1);
	if (len == 0 || len > STORAGE_MAX_PATH || path[0] == '/')
		return false;
	const char *c = path;
	for (;;) {
		const char *slash = strchr(c, '/');
		size_t n = slash ? (size_t)(slash - c) : strlen(c);
		if (n == 0 || n > NAME_MAX)
			return false;
		if ((n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.'))
			return false;
		if (slash == NULL)
			return true;
		c = slash + 1;
	}
}

/* Remember a directory we created (the first `len` bytes of `path`), for
 * storage_undo_create.  Out of memory only means it is not removed. */
static void note_made_dir(struct storage *st, const char *path, size_t len)
{
	char **d = realloc(st->made_dirs, (st->n_made_dirs + 1) * sizeof *d);
	if (d == NULL)
		return;
	st->made_dirs = d;
	d[st->n_made_dirs] = strndup(path, len);
	if (d[st->n_made_dirs] != NULL)
		st->n_made_dirs++;
}

/* Walk to the directory holding the last component of `path`, one
 * component at a time with O_NOFOLLOW, creating missing directories when
 * `create`.  Returns an fd the caller must close (or st->rootfd, which it
 * must not) in *dirfd_out, and the last component's offset in *name_out.
 * Returns 0 or a negative errno. */
static int open_parent(struct storage *st, const char *path, bool create, int *dirfd_out,
		       const char **name_out)
{
	char comp[NAME_MAX + 1];
	int cur = st->rootfd;
	const char *c = path;
	const char *slash;
	while ((slash = strchr(c, '/')) != NULL) {
		size_t n = (size_t)(slash - c);
		memcpy(comp, c, n);
		comp[n] = '\0';
		int next = openat(cur, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (next < 0 && errno == ENOENT && create) {
			if (mkdirat(cur, comp, 0755) == 0) {
				note_made_dir(st, path, (size_t)(slash - path));
			} else if (errno != EEXIST) {
				int e = -errno;
				if (cur != st->rootfd)
					close(cur);
				return e;
			}
			/* The new name must survive a crash like the data below it. */
			if (fsync(cur) < 0) {
				int e = -errno;
				if (cur != st->rootfd)
					close(cur);
				return e;
			}
			next = openat(cur, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		}
		int e = next < 0 ? -errno : 0;
		if (cur != st->rootfd)
			close(cur);
		if (next < 0)
			return e;
		cur = next;
		c = slash + 1;
	}
	*dirfd_out = cur;
	*name_out = c;
	return 0;
}

static void close_parent(struct storage *st, int dirfd)
{
	if (dirfd != st->rootfd)
		close(dirfd);
}

/* fsync the directory holding `path`. */
static int sync_parent(struct storage *st, const char *path)
{
	int dirfd;
	const char *name;
	int rc = open_parent(st, path, false, &dirfd, &name);
	if (rc < 0)
		return rc;
	rc = fsync(dirfd) < 0 ? -errno : 0;
	close_parent(st, dirfd);
	return rc;
}

/* ---- descriptors ------------------------------------------------------- */

static void close_file(struct storage *st, size_t fi)
{
	struct sfile *f = &st->files[fi];
	if (f->fd < 0)
		return;
	/* Closing does not make data durable, and an error seen by a later
	 * descriptor is not guaranteed: sync now and keep any error for the
	 * next storage_sync_piece of this file. */
	if (f->dirty && fdatasync(f->fd) < 0 && f->sticky_err == 0)
		f->sticky_err = -errno;
	f->dirty = false;
	close(f->fd);
	f->fd = -1;
	for (unsigned i = 0; i < st->n_open; i++) {
		if (st->open_list[i] == fi) {
			st->open_list[i] = st->open_list[--st->n_open];
			break;
		}
	}
}

static void evict_lru(struct storage *st)
{
	unsigned victim = 0;
	for (unsigned i = 1; i < st->n_open; i++)
		if (st->files[st->open_list[i]].last_use < st->files[st->open_list[victim]].last_use)
			victim = i;
	close_file(st, st->open_list[victim]);
}

/* A skipped file's descriptor: the part file, made (0600) on the first
 * write, its directory synced so the name survives a crash.  Never under
 * the root. */
static int part_fd(struct storage *st, struct sfile *f, bool create, int base, int *fd_out)
{
	if (st->partdirfd < 0)
		return -EACCES;
	int fd = openat(st->partdirfd, st->partname, O_RDWR | base);
	if (fd < 0 && errno == ENOENT && create) {
		fd = openat(st->partdirfd, st->partname, O_RDWR | O_CREAT | O_EXCL | base, 0600);
		if (fd >= 0 && fsync(st->partdirfd) < 0) {
			int e = -errno;
			close(fd);
			return e;
		}
		if (fd < 0 && errno == EEXIST) /* another storage of the swarm made it */
			fd = openat(st->partdirfd, st->partname, O_RDWR | base);
	}
	if (fd < 0)
		return -errno;
	struct stat sb;
	int rc = fstat(fd, &sb) < 0 ? -errno : S_ISREG(sb.st_mode) ? 0 : -EINVAL;
	if (rc < 0) {
		close(fd);
		return rc;
	}
	f->fd = fd;
	f->writable = true;
	st->open_list[st->n_open++] = (size_t)(f - st->files);
	*fd_out = fd;
	return 0;
}

/* Open file `fi` (creating it when `create`), keeping under max_open.
 * Returns 0 and the fd, -ENOENT when missing and not creating, or another
 * negative errno. */
static int file_fd(struct storage *st, size_t fi, bool create, int *fd_out)
{
	struct sfile *f = &st->files[fi];
	f->last_use = ++st->clock;
	if (f->fd >= 0) {
		*fd_out = f->fd;
		return 0;
	}
	if (st->n_open >= st->max_open)
		evict_lru(st);

	/* O_NONBLOCK: a FIFO planted in the tree must not hang the worker; it
	 * is refused below anyway. */
	const int base = O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK;
	if (f->access == STORAGE_SKIP)
		return part_fd(st, f, create, base, fd_out);
	int dirfd;
	const char *name;
	int rc = open_parent(st, f->path, create, &dirfd, &name);
	if (rc < 0)
		return rc;
	bool writable = f->access != STORAGE_READ, created = false;
	int fd = -1;
	errno = ENOENT;
	if (f->access == STORAGE_READ) {
		fd = openat(dirfd, name, O_RDONLY | base);
	} else if (f->access == STORAGE_OWN) {
		fd = openat(dirfd, name, O_RDWR | base);
		if (fd < 0 && errno == ENOENT && create) {
			/* Ours, but gone: make it again, never through a name
			 * someone else just took. */
			fd = openat(dirfd, name, O_RDWR | O_CREAT | O_EXCL | base, 0644);
			created = fd >= 0;
		}
		if (fd < 0 && (errno == EACCES || errno == EROFS)) {
			fd = openat(dirfd, name, O_RDONLY | base);
			writable = false;
		}
	} else if (create) {
		/* A fresh join's file: ours only once we made it. */
		if (f->access == STORAGE_REPLACE && unlinkat(dirfd, name, 0) < 0 && errno != ENOENT)
			fd = -1; /* errno says why (EISDIR, EPERM, ...) */
		else
			fd = openat(dirfd, name, O_RDWR | O_CREAT | O_EXCL | base, 0644);
		if (fd >= 0) {
			created = true;
			f->access = STORAGE_OWN;
		}
	}
	rc = fd < 0 ? -errno : 0;
	close_parent(st, dirfd);
	if (rc < 0)
		return rc;

	struct stat sb;
	if (fstat(fd, &sb) < 0) {
		rc = -errno;
		close(fd);
		return rc;
	}
	if (!S_ISREG(sb.st_mode)) {
		close(fd);
		return S_ISDIR(sb.st_mode) ? -EISDIR : -EINVAL;
	}
	if (created) {
		f->made = true;
		f->made_dev = sb.st_dev;
		f->made_ino = sb.st_ino;
	}
	f->fd = fd;
	f->writable = writable;
	f->created = f->created || created;
	st->open_list[st->n_open++] = fi;
	*fd_out = fd;
	return 0;
}

/* ---- setup ------------------------------------------------------------- */

static int cmp_str_ptr(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* No two files may share a path.  Sorting keeps it O(n log n). */
static int check_duplicates(const struct storage_file *files, size_t nfiles)
{
	if (nfiles < 2)
		return 0;
	const char **paths = malloc(nfiles * sizeof *paths);
	if (paths == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < nfiles; i++)
		paths[i] = files[i].path;
	qsort(paths, nfiles, sizeof *paths, cmp_str_ptr);
	int rc = 0;
	for (size_t i = 1; i < nfiles && rc == 0; i++)
		if (strcmp(paths[i - 1], paths[i]) == 0)
			rc = -EINVAL;
	free(paths);
	return rc;
}

/* Allocate `st` for `nfiles` files and `npieces` pieces, copying paths
 * and access modes (the caller sets the layout). */
static int storage_alloc(const struct storage_file *files, size_t nfiles, uint32_t piece_len,
			 uint64_t npieces, unsigned max_open, struct storage **out)
{
	*out = NULL;
	struct storage *st = calloc(1, sizeof *st);
	if (st == NULL)
		return -ENOMEM;
	st->rootfd = -1;
	st->partdirfd = -1;
	st->piece_len = piece_len;
	st->num_pieces = (uint32_t)npieces;
	st->max_open = max_open ? max_open : STORAGE_MAX_OPEN_DEFAULT;
	st->files = calloc(nfiles ? nfiles : 1, sizeof *st->files);
	st->piece_file = malloc((npieces ? npieces : 1) * sizeof *st->piece_file);
	st->open_list = malloc(st->max_open * sizeof *st->open_list);
	if (!st->files || !st->piece_file || !st->open_list) {
		storage_free(st);
		return -ENOMEM;
	}
	for (size_t i = 0; i < nfiles; i++)
		st->files[i].fd = -1;
	st->nfiles = nfiles;
	for (uint32_t i = 0; i < st->num_pieces; i++)
		st->piece_file[i] = UINT32_MAX;
	for (size_t i = 0; i < nfiles; i++) {
		struct sfile *f = &st->files[i];
		f->access = files[i].access;
		f->size = files[i].size;
		f->path = strdup(files[i].path);
		if (f->path == NULL) {
			storage_free(st);
			return -ENOMEM;
		}
	}
	*out = st;
	return 0;
}

/* Check the arguments both layouts share. */
static int check_args(const char *root, const struct storage_file *files, size_t nfiles,
		      uint32_t piece_len, unsigned max_open)
{
	if (root == NULL || (files == NULL && nfiles > 0) || nfiles > STORAGE_MAX_FILES ||
	    piece_len == 0 || max_open > STORAGE_MAX_OPEN)
		return -EINVAL;
	for (size_t i = 0; i < nfiles; i++)
		if (files[i].path == NULL || !path_ok(files[i].path) || files[i].size > INT64_MAX ||
		    files[i].access > STORAGE_SKIP)
			return -EINVAL;
	return check_duplicates(files, nfiles);
}

static int open_root(struct storage *st, const char *root)
{
	st->rootfd = open(root, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (st->rootfd >= 0)
		return 0;
	int rc = -errno;
	/* Linux says ENOTDIR for a symlink under O_DIRECTORY: name it. */
	struct stat sb;
	if (rc == -ENOTDIR && lstat(root, &sb) == 0 && S_ISLNK(sb.st_mode))
		rc = -ELOOP;
	return rc;
}

int storage_new(const char *root, const struct storage_file *files, size_t nfiles,
		uint32_t piece_len, unsigned max_open, struct storage **storage_out)
{
	struct storage *st = NULL;
	*storage_out = NULL;
	int rc = check_args(root, files, nfiles, piece_len, max_open);
	if (rc < 0)
		return rc;
	/* Layout: pieces per file, and the total. */
	uint64_t total = 0;
	for (size_t i = 0; i < nfiles; i++) {
		if (files[i].size == 0)
			continue;
		uint64_t np = (files[i].size - 1) / piece_len + 1;
		uint64_t end = (uint64_t)files[i].first_piece + np;
		if (end > BITFIELD_MAX_BITS)
			return -EINVAL;
		if (end > total)
			total = end;
	}
	rc = storage_alloc(files, nfiles, piece_len, total, max_open, &st);
	if (rc < 0)
		return rc;
	for (size_t i = 0; i < nfiles; i++) {
		struct sfile *f = &st->files[i];
		if (f->size == 0)
			continue;
		f->first_piece = files[i].first_piece;
		f->offset = (uint64_t)f->first_piece * piece_len;
		f->npieces = (uint32_t)((f->size - 1) / piece_len + 1);
		for (uint32_t k = 0; k < f->npieces; k++) {
			uint32_t *slot = &st->piece_file[f->first_piece + k];
			rc = -EINVAL;
			if (*slot != UINT32_MAX)
				goto fail; /* two files claim one piece */
			*slot = (uint32_t)i;
		}
	}
	rc = -EINVAL;
	for (uint32_t i = 0; i < st->num_pieces; i++)
		if (st->piece_file[i] == UINT32_MAX)
			goto fail; /* a piece no file holds */
	rc = open_root(st, root);
	if (rc < 0)
		goto fail;
	*storage_out = st;
	return 0;
fail:
	storage_free(st);
	return rc;
}

int storage_new_stream(const char *root, const struct storage_file *files, size_t nfiles,
		       uint32_t piece_len, uint64_t total, unsigned max_open,
		       struct storage **storage_out)
{
	struct storage *st = NULL;
	*storage_out = NULL;
	int rc = check_args(root, files, nfiles, piece_len, max_open);
	if (rc < 0)
		return rc;
	uint64_t end = 0;
	for (size_t i = 0; i < nfiles; i++) {
		if (files[i].offset < end || files[i].size > total ||
		    files[i].offset > total - files[i].size)
			return -EINVAL; /* going back, overlapping, or past the end */
		end = files[i].offset + files[i].size;
	}
	uint64_t np = total / piece_len + (total % piece_len != 0);
	if (np > BITFIELD_MAX_BITS)
		return -EINVAL;
	rc = storage_alloc(files, nfiles, piece_len, np, max_open, &st);
	if (rc < 0)
		return rc;
	st->stream = true;
	st->total = total;
	/* Each piece's first file: files are walked from the last, so the
	 * lowest index holding a piece writes its slot last. */
	for (size_t i = nfiles; i-- > 0;) {
		struct sfile *f = &st->files[i];
		f->offset = files[i].offset;
		if (f->size == 0)
			continue;
		uint64_t first = f->offset / piece_len, last = (f->offset + f->size - 1) / piece_len;
		f->first_piece = (uint32_t)first;
		f->npieces = (uint32_t)(last - first + 1);
		for (uint64_t p = first; p <= last; p++)
			st->piece_file[p] = (uint32_t)i;
	}
	rc = open_root(st, root);
	if (rc < 0) {
		storage_free(st);
		return rc;
	}
	*storage_out = st;
	return 0;
}

void storage_free(struct storage *st)
{
	if (st == NULL)
		return;
	for (size_t i = 0; i < st->nfiles; i++) {
		if (st->files[i].fd >= 0)
			close(st->files[i].fd);
		free(st->files[i].path);
	}
	if (st->rootfd >= 0)
		close(st->rootfd);
	if (st->partdirfd >= 0)
		close(st->partdirfd);
	free(st->partname);
	for (size_t i = 0; i < st->n_made_dirs; i++)
		free(st->made_dirs[i]);
	free(st->made_dirs);
	free(st->files);
	free(st->piece_file);
	free(st->open_list);
	free(st);
}

uint32_t storage_num_pieces(const struct storage *st)
{
	return st->num_pieces;
}

uint32_t storage_piece_size(const struct storage *st, uint32_t piece)
{
	if (piece >= st->num_pieces)
		return 0;
	if (st->stream) {
		uint64_t left = st->total - (uint64_t)piece * st->piece_len;
		return left < st->piece_len ? (uint32_t)left : st->piece_len;
	}
	const struct sfile *f = &st->files[st->piece_file[piece]];
	uint64_t start = (uint64_t)(piece - f->first_piece) * st->piece_len;
	uint64_t left = f->size - start;
	return left < st->piece_len ? (uint32_t)left : st->piece_len;
}

unsigned storage_open_count(const struct storage *st)
{
	return st->n_open;
}

int storage_create_files(struct storage *st, size_t *bad_file_out)
{
	const char *last_synced = NULL;
	size_t last_len = 0;
	*bad_file_out = 0;
	for (size_t i = 0; i < st->nfiles; i++) {
		int fd;
		*bad_file_out = i;
		if (st->files[i].access == STORAGE_SKIP)
			continue; /* never created: its bytes go to the part file */
		int rc = file_fd(st, i, true, &fd);
		if (rc < 0)
			return rc;
		struct sfile *f = &st->files[i];
		if (!f->created)
			continue;
		/* One directory sync covers every file created in it; files of
		 * one directory are usually listed together. */
		const char *slash = strrchr(f->path, '/');
		size_t dlen = slash ? (size_t)(slash - f->path) : 0;
		if (last_synced == NULL || dlen != last_len || memcmp(last_synced, f->path, dlen) != 0) {
			rc = sync_parent(st, f->path);
			if (rc < 0)
				return rc;
			last_synced = f->path;
			last_len = dlen;
		}
		f->created = false;
	}
	*bad_file_out = 0;
	return 0;
}

int storage_probe_file(struct storage *st, size_t index, enum storage_probe *probe_out,
		       size_t *depth_out)
{
	if (index >= st->nfiles)
		return -ERANGE;
	const struct sfile *f = &st->files[index];
	int cur = st->rootfd;
	const char *c = f->path, *slash;
	char comp[NAME_MAX + 1];
	struct stat sb;
	int rc = 0;
	if (depth_out)
		*depth_out = 0;
	*probe_out = STORAGE_ABSENT;
	while ((slash = strchr(c, '/')) != NULL) {
		size_t n = (size_t)(slash - c);
		memcpy(comp, c, n);
		comp[n] = '\0';
		int next = openat(cur, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		int e = next < 0 ? errno : 0;
		if (cur != st->rootfd)
			close(cur);
		if (next < 0) {
			if (e == ENOENT)
				return 0;
			if (e == ELOOP || e == ENOTDIR) {
				*probe_out = STORAGE_BLOCKED;
				if (depth_out)
					*depth_out = (size_t)(slash - f->path);
				return 0;
			}
			return -e;
		}
		cur = next;
		c = slash + 1;
	}
	if (fstatat(cur, c, &sb, AT_SYMLINK_NOFOLLOW) < 0)
		rc = errno == ENOENT ? 0 : -errno;
	else if (S_ISDIR(sb.st_mode))
		*probe_out = STORAGE_BLOCKED;
	else if (S_ISREG(sb.st_mode) && (uint64_t)sb.st_size == f->size)
		*probe_out = STORAGE_PRESENT;
	else
		*probe_out = STORAGE_OTHER;
	if (*probe_out == STORAGE_BLOCKED && depth_out)
		*depth_out = strlen(f->path);
	if (cur != st->rootfd)
		close(cur);
	return rc;
}

/* ---- blocks ------------------------------------------------------------ */

/* One piece of a byte range: the file holding it (SIZE_MAX for a gap) and
 * where inside the file. */
struct span {
	size_t fi;
	uint64_t off;
	size_t len;
};

/* The span starting at stream position `pos`, at most `len` bytes.  For a
 * BEP 52 piece the range never leaves the piece's file. */
static struct span span_at(const struct storage *st, uint32_t piece, uint64_t pos, size_t len)
{
	size_t fi = st->piece_file[piece];
	/* The piece's first file, then on through its neighbours. */
	for (; fi < st->nfiles; fi++) {
		const struct sfile *f = &st->files[fi];
		if (f->size == 0 || f->offset + f->size <= pos)
			continue;
		if (f->offset > pos) {
			/* A gap up to this file. */
			uint64_t n = f->offset - pos;
			return (struct span){ SIZE_MAX, 0, n < len ? (size_t)n : len };
		}
		uint64_t n = f->offset + f->size - pos;
		return (struct span){ fi, pos - f->offset, n < len ? (size_t)n : len };
	}
	return (struct span){ SIZE_MAX, 0, len }; /* a gap to the end */
}

/* Check (piece, offset, len) and give its stream position. */
static int locate(const struct storage *st, uint32_t piece, uint32_t offset, size_t len,
		  uint64_t *pos_out)
{
	if (piece >= st->num_pieces)
		return -ERANGE;
	uint32_t size = storage_piece_size(st, piece);
	if (offset > size || len > size - offset)
		return -EINVAL;
	uint64_t start = st->stream ? (uint64_t)piece * st->piece_len
				    : st->files[st->piece_file[piece]].offset +
					      (uint64_t)(piece - st->files[st->piece_file[piece]].first_piece) *
						      st->piece_len;
	*pos_out = start + offset;
	return 0;
}

static int pwrite_all(int fd, const uint8_t *p, size_t len, uint64_t off)
{
	size_t done = 0;
	while (done < len) {
		ssize_t w = pwrite(fd, p + done, len - done, (off_t)(off + done));
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (w == 0)
			return -EIO;
		done += (size_t)w;
	}
	return 0;
}

int storage_write(struct storage *st, uint32_t piece, uint32_t offset, const void *data, size_t len)
{
	uint64_t pos;
	int rc = locate(st, piece, offset, len, &pos);
	if (rc < 0 || len == 0)
		return rc;
	/* Every file the range touches must be ours before a byte is written. */
	for (size_t done = 0; done < len;) {
		struct span sp = span_at(st, piece, pos + done, len - done);
		if (sp.fi != SIZE_MAX && st->files[sp.fi].access == STORAGE_READ)
			return -EACCES;
		done += sp.len;
	}
	const uint8_t *p = data;
	for (size_t done = 0; done < len && rc == 0;) {
		struct span sp = span_at(st, piece, pos + done, len - done);
		if (sp.fi != SIZE_MAX) {
			int fd;
			rc = file_fd(st, sp.fi, true, &fd);
			if (rc == 0 && !st->files[sp.fi].writable)
				rc = -EACCES;
			if (rc == 0) {
				rc = pwrite_all(fd, p + done, sp.len, disk_off(&st->files[sp.fi], sp.off));
				st->files[sp.fi].dirty = true; /* even a short write may have landed */
			}
		} /* a gap (pad file): never on disk */
		done += sp.len;
	}
	return rc;
}

/* Write p[0, len) at `off` of `fd` with O_DIRECT set on its description
 * for the call: whole STORAGE_DIRECT_ALIGN blocks only.  Returns the bytes
 * written (a short count leaves the rest to the caller), or a negative
 * errno; -EINVAL when the file system refuses direct I/O here. */
static ssize_t pwrite_direct(int fd, const uint8_t *p, size_t len, uint64_t off)
{
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0)
		return -errno;
	if (fcntl(fd, F_SETFL, fl | O_DIRECT) < 0)
		return errno == EINVAL ? -EINVAL : -errno;
	size_t done = 0;
	int rc = 0;
	while (done < len) {
		ssize_t w = pwrite(fd, p + done, len - done, (off_t)(off + done));
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			rc = w < 0 ? -errno : -EIO;
			break;
		}
		done += (size_t)w;
		if (done % STORAGE_DIRECT_ALIGN != 0)
			break; /* the rest is no longer aligned: buffered */
	}
	/* Back to buffered, or the next unaligned write would fail. */
	if (fcntl(fd, F_SETFL, fl) < 0)
		return -errno;
	return done > 0 ? (ssize_t)done : rc;
}

int storage_write_aligned(struct storage *st, uint32_t piece, uint32_t offset, const void *data,
			  size_t len)
{
	if (st->stream || st->no_direct || len < STORAGE_DIRECT_ALIGN ||
	    (uintptr_t)data % STORAGE_DIRECT_ALIGN != 0)
		return storage_write(st, piece, offset, data, len);
	uint64_t pos;
	int rc = locate(st, piece, offset, len, &pos);
	if (rc < 0)
		return rc;
	struct span sp = span_at(st, piece, pos, len);
	if (sp.fi == SIZE_MAX || sp.len != len ||
	    disk_off(&st->files[sp.fi], sp.off) % STORAGE_DIRECT_ALIGN != 0)
		return storage_write(st, piece, offset, data, len);
	struct sfile *f = &st->files[sp.fi];
	if (f->access == STORAGE_READ)
		return -EACCES;
	int fd;
	rc = file_fd(st, sp.fi, true, &fd);
	if (rc == 0 && !f->writable)
		rc = -EACCES;
	if (rc < 0)
		return rc;
	const uint8_t *p = data;
	uint64_t off = disk_off(f, sp.off);
	size_t whole = len - len % STORAGE_DIRECT_ALIGN;
	ssize_t w = pwrite_direct(fd, p, whole, off);
	f->dirty = true; /* even a failed write may have landed */
	if (w == -EINVAL) {
		st->no_direct = true;
		w = 0;
	}
	if (w < 0)
		return (int)w;
	return pwrite_all(fd, p + w, len - (size_t)w, off + (uint64_t)w);
}

/* Does [off, off+len) of fd hold data, not a hole or the end of file? */
static int range_present(int fd, uint64_t off, uint64_t len)
{
	struct stat sb;
	if (fstat(fd, &sb) < 0)
		return -errno;
	if ((uint64_t)sb.st_size < off + len)
		return 0;
	if (len == 0)
		return 1;
	off_t hole = lseek(fd, (off_t)off, SEEK_HOLE);
	if (hole < 0)
		return errno == ENXIO ? 0 : 1; /* no SEEK_HOLE support: sizes are all we know */
	return (uint64_t)hole >= off + len ? 1 : 0;
}

static int read_impl(struct storage *st, uint32_t piece, uint32_t offset, void *data_out,
		     size_t len, bool check_holes)
{
	uint64_t pos;
	int rc = locate(st, piece, offset, len, &pos);
	if (rc < 0 || len == 0)
		return rc;
	uint8_t *p = data_out;
	for (size_t done = 0; done < len;) {
		struct span sp = span_at(st, piece, pos + done, len - done);
		if (sp.fi == SIZE_MAX) {
			memset(p + done, 0, sp.len); /* a pad file reads as zeros */
			done += sp.len;
			continue;
		}
		int fd;
		rc = file_fd(st, sp.fi, false, &fd);
		if (rc < 0)
			return rc == -ENOENT ? -ENODATA : rc;
		uint64_t off = disk_off(&st->files[sp.fi], sp.off);
		if (check_holes) {
			rc = range_present(fd, off, sp.len);
			if (rc <= 0)
				return rc == 0 ? -ENODATA : rc;
		}
		for (size_t got = 0; got < sp.len;) {
			ssize_t r = pread(fd, p + done + got, sp.len - got, (off_t)(off + got));
			if (r < 0) {
				if (errno == EINTR)
					continue;
				return -errno;
			}
			if (r == 0)
				return -ENODATA; /* truncated under us */
			got += (size_t)r;
		}
		done += sp.len;
	}
	return 0;
}

int storage_read(struct storage *st, uint32_t piece, uint32_t offset, void *data_out, size_t len)
{
	return read_impl(st, piece, offset, data_out, len, true);
}

int storage_read_fast(struct storage *st, uint32_t piece, uint32_t offset, void *data_out,
		      size_t len)
{
	return read_impl(st, piece, offset, data_out, len, false);
}

size_t storage_file_count(const struct storage *st)
{
	return st->nfiles;
}

size_t storage_piece_files(const struct storage *st, uint32_t piece, size_t *first_out)
{
	*first_out = SIZE_MAX;
	if (piece >= st->num_pieces || st->piece_file[piece] >= st->nfiles)
		return 0;
	size_t first = st->piece_file[piece];
	*first_out = first;
	if (!st->stream)
		return 1;
	uint64_t end = (uint64_t)piece * st->piece_len + storage_piece_size(st, piece);
	size_t last = first;
	for (size_t fi = first + 1; fi < st->nfiles && st->files[fi].offset < end; fi++)
		if (st->files[fi].size > 0)
			last = fi;
	return last - first + 1;
}

int storage_sync_begin(struct storage *st, size_t fi, int *fd_out)
{
	*fd_out = -1;
	if (fi >= st->nfiles)
		return -ERANGE;
	struct sfile *f = &st->files[fi];
	if (f->sticky_err != 0) {
		int e = f->sticky_err;
		f->sticky_err = 0;
		return e;
	}
	if (f->created) {
		int rc = sync_parent(st, f->path);
		if (rc < 0)
			return rc;
		f->created = false;
	}
	if (f->fd < 0 && f->dirty) {
		/* Its last sync failed (storage_sync_failed) after the file was
		 * closed: open it again, or the data would never be synced. */
		int fd;
		int rc = file_fd(st, fi, false, &fd);
		if (rc < 0)
			return rc;
	}
	if (f->fd >= 0 && f->dirty) {
		/* A duplicate, so the file may be closed (LRU) while it syncs. */
		int fd = fcntl(f->fd, F_DUPFD_CLOEXEC, 0);
		if (fd < 0)
			return -errno;
		f->dirty = false;
		*fd_out = fd;
	}
	return 0;
}

void storage_sync_failed(struct storage *st, size_t fi)
{
	if (fi < st->nfiles)
		st->files[fi].dirty = true;
}

int storage_sync_take_error(struct storage *st, size_t fi)
{
	if (fi >= st->nfiles)
		return 0;
	int e = st->files[fi].sticky_err;
	st->files[fi].sticky_err = 0;
	return e;
}

int storage_flush_file(struct storage *st, size_t fi)
{
	int fd;
	if (fi >= st->nfiles)
		return -ERANGE;
	int rc = storage_sync_take_error(st, fi);
	if (rc == 0)
		rc = file_fd(st, fi, false, &fd);
	if (rc == 0 && fdatasync(fd) < 0)
		rc = -errno;
	return rc;
}

int storage_sync_piece(struct storage *st, uint32_t piece)
{
	if (piece >= st->num_pieces)
		return -ERANGE;
	size_t first;
	size_t n = storage_piece_files(st, piece, &first);
	int rc = 0;
	for (size_t fi = first; n && fi < first + n && rc == 0; fi++) {
		int fd;
		rc = storage_sync_begin(st, fi, &fd);
		if (rc < 0 || fd < 0)
			continue;
		if (fdatasync(fd) < 0) {
			rc = -errno;
			storage_sync_failed(st, fi);
		}
		close(fd);
	}
	return rc;
}

int storage_piece_on_disk(struct storage *st, uint32_t piece)
{
	uint64_t pos;
	if (piece >= st->num_pieces)
		return -ERANGE;
	size_t len = storage_piece_size(st, piece);
	int rc = locate(st, piece, 0, len, &pos);
	if (rc < 0)
		return rc;
	for (size_t done = 0; done < len;) {
		struct span sp = span_at(st, piece, pos + done, len - done);
		done += sp.len;
		if (sp.fi == SIZE_MAX)
			continue;
		int fd;
		rc = file_fd(st, sp.fi, false, &fd);
		if (rc == -ENOENT)
			return 0;
		if (rc < 0)
			return rc;
		rc = range_present(fd, disk_off(&st->files[sp.fi], sp.off), sp.len);
		if (rc <= 0)
			return rc;
	}
	return 1;
}

int storage_check_files(struct storage *st, size_t *bad_file_out)
{
	for (size_t i = 0; i < st->nfiles; i++) {
		const struct sfile *f = &st->files[i];
		int dirfd;
		const char *name;
		struct stat sb;
		*bad_file_out = i;
		if (f->access == STORAGE_SKIP)
			continue;
		int rc = open_parent(st, f->path, false, &dirfd, &name);
		if (rc == 0) {
			rc = fstatat(dirfd, name, &sb, AT_SYMLINK_NOFOLLOW) < 0 ? -errno : 0;
			close_parent(st, dirfd);
		}
		if (rc == -ENOTDIR || rc == -ELOOP)
			return -EINVAL; /* something other than a directory on the way */
		if (rc < 0)
			return rc;
		if (!S_ISREG(sb.st_mode))
			return -EINVAL;
		if ((uint64_t)sb.st_size != f->size)
			return -ERANGE;
	}
	*bad_file_out = 0;
	return 0;
}

/* Unlink `path` (below the root) if it is the regular file (dev, ino) -
 * any regular file when `check_ino` is false - never following a link;
 * then, when `rmdirs`, remove the directories above it that became empty,
 * up to (not including) the root, each with unlinkat on its parent's
 * descriptor.  Returns 1 when the file was unlinked, 0 when it was not
 * there (or not that file), or a negative errno. */
static int unlink_below(struct storage *st, const char *path, bool check_ino, dev_t dev,
			ino_t ino, bool rmdirs)
{
	size_t depth = 0;
	for (const char *p = path; *p; p++)
		depth += *p == '/';
	int *fds = malloc((depth + 1) * sizeof *fds);
	size_t *ends = malloc((depth + 1) * sizeof *ends);
	if (fds == NULL || ends == NULL) {
		free(fds);
		free(ends);
		return -ENOMEM;
	}
	size_t n = 0; /* fds[0..n-1]: the directories walked, fds[0] the root */
	fds[n++] = st->rootfd;
	int rc = 0;
	char comp[NAME_MAX + 1];
	const char *c = path, *slash;
	while ((slash = strchr(c, '/')) != NULL) {
		size_t len = (size_t)(slash - c);
		memcpy(comp, c, len);
		comp[len] = '\0';
		int next = openat(fds[n - 1], comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (next < 0) {
			/* Gone, or a link or file in the way: nothing of ours there. */
			rc = errno == ENOENT || errno == ELOOP || errno == ENOTDIR ? 0 : -errno;
			goto done;
		}
		ends[n] = (size_t)(slash - path);
		fds[n++] = next;
		c = slash + 1;
	}
	struct stat sb;
	if (fstatat(fds[n - 1], c, &sb, AT_SYMLINK_NOFOLLOW) < 0) {
		rc = errno == ENOENT ? 0 : -errno;
		goto done;
	}
	if (!S_ISREG(sb.st_mode) || (check_ino && (sb.st_dev != dev || sb.st_ino != ino)))
		goto done; /* not our file: leave it */
	if (unlinkat(fds[n - 1], c, 0) < 0) {
		rc = errno == ENOENT ? 0 : -errno;
		goto done;
	}
	rc = 1;
	/* Empty parents: unlinkat(AT_REMOVEDIR) refuses a non-empty one. */
	for (size_t k = n - 1; rmdirs && k > 0; k--) {
		const char *name = path + (k >= 2 ? ends[k - 1] + 1 : 0);
		memcpy(comp, name, ends[k] - (size_t)(name - path));
		comp[ends[k] - (size_t)(name - path)] = '\0';
		if (unlinkat(fds[k - 1], comp, AT_REMOVEDIR) < 0)
			break;
	}
done:
	for (size_t k = 1; k < n; k++)
		close(fds[k]);
	free(fds);
	free(ends);
	return rc;
}

void storage_undo_create(struct storage *st)
{
	for (size_t i = 0; i < st->nfiles; i++) {
		struct sfile *f = &st->files[i];
		if (!f->made)
			continue;
		if (f->fd >= 0)
			close_file(st, i);
		(void)unlink_below(st, f->path, true, f->made_dev, f->made_ino, false);
		f->made = false;
	}
	/* Deepest first; a directory that is not empty (someone else's file
	 * in it now) stays. */
	for (size_t i = st->n_made_dirs; i-- > 0;) {
		const char *p = st->made_dirs[i];
		const char *slash = strrchr(p, '/');
		int dirfd = st->rootfd;
		const char *name = p;
		if (slash != NULL && open_parent(st, p, false, &dirfd, &name) < 0)
			continue;
		(void)unlinkat(dirfd, name, AT_REMOVEDIR);
		close_parent(st, dirfd);
	}
}

int storage_delete_owned(struct storage *st)
{
	int n = 0, first_err = 0;
	for (size_t i = 0; i < st->nfiles; i++) {
		if (st->files[i].access != STORAGE_OWN)
			continue;
		if (st->files[i].fd >= 0)
			close_file(st, i);
		int rc = unlink_below(st, st->files[i].path, false, 0, 0, true);
		if (rc > 0)
			n++;
		else if (rc < 0 && first_err == 0)
			first_err = rc;
	}
	return n > 0 || first_err == 0 ? n : first_err;
}

int storage_set_part_file(struct storage *st, const char *dir, const char *name)
{
	if (!dir || !name || !*name || strchr(name, '/') || st->partdirfd >= 0)
		return -EINVAL;
	char *copy = strdup(name);
	if (!copy)
		return -ENOMEM;
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		int e = -errno;
		free(copy);
		return e;
	}
	st->partdirfd = fd;
	st->partname = copy;
	return 0;
}

int storage_set_access(struct storage *st, size_t fi, enum storage_access access)
{
	if (fi >= st->nfiles)
		return -ERANGE;
	if ((unsigned)access > STORAGE_SKIP)
		return -EINVAL;
	struct sfile *f = &st->files[fi];
	if (f->access == access)
		return 0;
	/* Its descriptor is the old access's (the part file, or read-only):
	 * closed without a sync - the caller drops every piece holding a byte
	 * of the file (storage.h), so nothing written through it is kept, and
	 * no fdatasync stalls the caller's lock. */
	if (f->fd >= 0) {
		f->dirty = false;
		close_file(st, fi);
	}
	f->access = access;
	return 0;
}

int storage_create_file(struct storage *st, size_t fi)
{
	if (fi >= st->nfiles)
		return -ERANGE;
	struct sfile *f = &st->files[fi];
	if (f->access == STORAGE_SKIP || f->access == STORAGE_READ)
		return 0;
	int fd;
	int rc = file_fd(st, fi, true, &fd);
	if (rc == 0 && f->created) {
		rc = sync_parent(st, f->path);
		if (rc == 0)
			f->created = false;
	}
	return rc;
}

enum storage_access storage_file_access(const struct storage *st, size_t fi)
{
	return fi < st->nfiles ? st->files[fi].access : STORAGE_READ;
}
