/* storage.h: a swarm's pieces on disk, as files under one root directory. */
#ifndef SHOAL_TRANSFER_STORAGE_H
#define SHOAL_TRANSFER_STORAGE_H

/*
 * Two layouts.  BEP 52 (storage_new): every file starts on a piece
 * boundary, so each piece lies inside exactly one file and each file's last
 * piece may be short.  v1 (storage_new_stream): the files lie one after the
 * other in one stream of bytes cut into pieces of the piece length (the
 * last may be short), so a piece may span several files, and gaps between
 * files (BEP 47 pad files) are never on disk: they read as zeros and what
 * is written there is dropped.  Empty files hold no piece in either.
 *
 * Nothing is ever created or opened outside the root: paths are checked
 * again here (no "..", ".", empty component or leading '/', even though
 * the caller sanitised them), the root itself is opened with O_NOFOLLOW
 * (a root that is a symlink is -ELOOP) and every path is walked one
 * component at a time with openat(..., O_DIRECTORY | O_NOFOLLOW) from a
 * descriptor of the root, so no symlink at or below the root is followed:
 * one in the way is -ELOOP (or -ENOTDIR), never a way out.
 *
 * Files the swarm does not own are never written: each file has an access
 * mode (enum storage_access) and only the swarm's own files are opened
 * read-write or created.  A file to create is created with
 * O_CREAT | O_EXCL | O_NOFOLLOW, so a file or symlink that appeared at its
 * name is an error, not a file to write into.
 *
 * Files are opened lazily and at most `max_open` stay open (least recently
 * used closed first).  Files grow as blocks are written (sparse); they are
 * not preallocated.
 *
 * Threading: a storage has no locks of its own.  Several worker threads
 * run one swarm's jobs at once and in no set order, so the caller holds one
 * lock around every call that reads or changes its state (node/diskio.h:
 * the I/O lock, and the one exception, fdatasync on a descriptor from
 * storage_sync_begin, which runs without it).  The layout (which file holds
 * a piece, the file count) is fixed at storage_open and may be read
 * without the lock.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifndef STORAGE_MAX_OPEN_DEFAULT
#define STORAGE_MAX_OPEN_DEFAULT 32u
#endif
#ifndef STORAGE_MAX_OPEN
#define STORAGE_MAX_OPEN 1024u
#endif
#ifndef STORAGE_MAX_FILES
#define STORAGE_MAX_FILES (1u << 20)
#endif
/* Longest relative path accepted, in bytes. */
#ifndef STORAGE_MAX_PATH
#define STORAGE_MAX_PATH 4095u
#endif

struct storage;

/* What the swarm may do with one of its files. */
enum storage_access {
	/* Not the swarm's (a shared file, or a user's file that a join found
	 * already holding the torrent's data and adopted): opened read-only,
	 * never created, never written (storage_write is -EACCES). */
	STORAGE_READ = 0,
	/* The swarm's own file (it created it earlier): opened read-write, and
	 * created again with O_EXCL if it has gone. */
	STORAGE_OWN,
	/* A fresh join's file that must not exist yet: created with O_EXCL, so
	 * anything at its name is -EEXIST.  Becomes STORAGE_OWN once created. */
	STORAGE_CREATE,
	/* As STORAGE_CREATE after unlinking what is at its name (a file or a
	 * symlink, never a directory): the user asked to overwrite.  Writes go
	 * to a new inode, so hard links to the old file keep their content. */
	STORAGE_REPLACE,
	/* A join's file the user chose not to download and that does not
	 * exist: never created, nothing under the root is touched for it.  In
	 * a v1 torrent a piece may hold bytes of a wanted file and of a skipped
	 * one; the skipped file's bytes of it (needed to check the piece's
	 * SHA-1, and to serve it whole) go to the part file
	 * (storage_set_part_file) at their stream position, a sparse file
	 * outside the root.  Without a part file, writing them is -EACCES. */
	STORAGE_SKIP,
};

/* One file of the swarm, in the caller's order. */
struct storage_file {
	const char *path;     /* relative, '/'-separated; copied */
	uint64_t size;        /* bytes */
	uint32_t first_piece; /* its first piece (ignored when size is 0, and by
			       * storage_new_stream) */
	enum storage_access access;
	uint64_t offset;      /* storage_new_stream: where its first byte is in
			       * the stream; ignored by storage_new */
};

/* Map `files` onto `root` (an existing directory, not a symlink).  Every piece
 * 0..N-1 must belong to exactly one file, where file f covers
 * ceil(size/piece_len) pieces from first_piece.  `max_open` caps the open
 * descriptors (0 means STORAGE_MAX_OPEN_DEFAULT).  Creates nothing on
 * disk.  Returns 0 and *storage_out (free with storage_free); -EINVAL for
 * a bad path, duplicate path, bad layout or piece_len 0; -ENOENT /
 * -ENOTDIR / -EACCES / -ELOOP (a symlink) when the root cannot be opened;
 * -ENOMEM. */
int storage_new(const char *root, const struct storage_file *files, size_t nfiles,
		uint32_t piece_len, unsigned max_open, struct storage **storage_out)
	__attribute__((warn_unused_result));

/* The v1 layout: `files` in stream order (offsets never going back, no two
 * files overlapping), `total` bytes of stream (the end of the last file or
 * of a pad after it), pieces of `piece_len` bytes.  Returns as
 * storage_new. */
int storage_new_stream(const char *root, const struct storage_file *files, size_t nfiles,
		       uint32_t piece_len, uint64_t total, unsigned max_open,
		       struct storage **storage_out) __attribute__((warn_unused_result));

/* Close every file (without syncing: call storage_sync_piece first for
 * what must be durable) and free.  NULL is fine. */
void storage_free(struct storage *st);

/* Number of pieces N. */
uint32_t storage_num_pieces(const struct storage *st);
/* Byte length of `piece` (0 when out of range). */
uint32_t storage_piece_size(const struct storage *st, uint32_t piece);
/* Number of files, as given to storage_new. */
size_t storage_file_count(const struct storage *st);
/* The files holding any byte of `piece`: they are consecutive in the
 * caller's order, from *first_out (empty files between them included).
 * Returns how many (1 for every BEP 52 piece; 0 out of range, or for a v1
 * piece wholly inside a pad). */
size_t storage_piece_files(const struct storage *st, uint32_t piece, size_t *first_out);
/* Descriptors currently open (for tests). */
unsigned storage_open_count(const struct storage *st);

/* Create the directories and every file the swarm owns that does not exist
 * yet (empty files included), and sync the directories so the names
 * survive a crash.  STORAGE_OWN files that exist are kept as they are;
 * STORAGE_CREATE files must not exist (-EEXIST); STORAGE_REPLACE files are
 * unlinked first; STORAGE_READ files must exist (-ENOENT).  Returns 0, or
 * a negative errno (-ELOOP / -ENOTDIR when a symlink or file is in the way)
 * with the index of the file that failed in *bad_file_out. */
int storage_create_files(struct storage *st, size_t *bad_file_out)
	__attribute__((warn_unused_result));

/* What is at a file's name now, seen without following any symlink. */
enum storage_probe {
	STORAGE_ABSENT,   /* nothing (or a parent directory is missing) */
	STORAGE_PRESENT,  /* a regular file of exactly the file's size */
	STORAGE_OTHER,    /* a regular file of another size, a symlink or a
			   * special file: something a replace may unlink */
	STORAGE_BLOCKED,  /* a directory at the name, or a symlink or
			   * non-directory where a parent directory should be */
};

/* Look at file `index`'s name (cheap: a walk and an fstatat).  When the
 * answer is STORAGE_BLOCKED, *depth_out (may be NULL) is the length of the
 * path prefix that is in the way.  Returns 0 and *probe_out, or a negative
 * errno (-EACCES, -EIO, -ERANGE for a bad index). */
int storage_probe_file(struct storage *st, size_t index, enum storage_probe *probe_out,
		       size_t *depth_out) __attribute__((warn_unused_result));

/* Write `len` bytes at `offset` inside `piece`, creating the file and its
 * directories if needed (as storage_create_files would).  All bytes are
 * written or an error is returned (a short write is never success):
 * -ENOSPC, -EFBIG, -EIO, -EACCES (a STORAGE_READ file, or one only
 * readable), -EEXIST (see storage_create_files), ...; -ERANGE for a piece out of range, -EINVAL
 * when the range leaves the piece. */
int storage_write(struct storage *st, uint32_t piece, uint32_t offset, const void *data,
		  size_t len) __attribute__((warn_unused_result));

/* As storage_write, for a caller whose `data` is aligned to
 * STORAGE_DIRECT_ALIGN (a write job's bounce buffer): where the range's
 * place in its file is aligned too, its whole aligned part is written
 * around the page cache (O_DIRECT on the file's descriptor for that one
 * write), the rest as storage_write does.  Durability is unchanged: the
 * data is durable only after storage_sync_piece or a sync from
 * storage_sync_begin, as before.  Only for the BEP 52 layout (a v1 stream
 * writes as storage_write does); a file system that refuses O_DIRECT
 * (EINVAL) makes this storage write as storage_write from then on. */
#define STORAGE_DIRECT_ALIGN 4096u
int storage_write_aligned(struct storage *st, uint32_t piece, uint32_t offset, const void *data,
			  size_t len) __attribute__((warn_unused_result));

/* Read `len` bytes at `offset` inside `piece` into `data_out`.  Returns 0;
 * -ENODATA if any of the range is not on disk (file missing, shorter, or
 * a hole, detected at filesystem-block granularity where the filesystem
 * reports holes); -ERANGE / -EINVAL as for storage_write; or another
 * negative errno. */
int storage_read(struct storage *st, uint32_t piece, uint32_t offset, void *data_out, size_t len)
	__attribute__((warn_unused_result));

/* As storage_read, without asking the file system whether the range was
 * ever written (two syscalls per call): for serving pieces already
 * verified, and for hashing, where a hole reads as zeros and fails the
 * hash anyway.  A range past the end of the file is still -ENODATA. */
int storage_read_fast(struct storage *st, uint32_t piece, uint32_t offset, void *data_out,
		      size_t len) __attribute__((warn_unused_result));

/* Make the piece's data durable (fdatasync of its files, and of their
 * directories if a file was created since).  Only after 0 may the caller
 * record the piece as verified.  Also reports a failed sync that happened
 * when the file was closed to stay under max_open.  Returns 0 or a
 * negative errno (-EIO, -ENOSPC, ...). */
int storage_sync_piece(struct storage *st, uint32_t piece) __attribute__((warn_unused_result));

/* A file's sync in two steps, for a caller that serialises storage calls
 * under a lock and must not hold it across a slow fdatasync (writes would
 * wait behind it).  storage_sync_begin, under the lock, does all but the
 * data sync of file `fi` and gives in *fd_out a duplicate descriptor of it
 * to fdatasync and close without the lock, or -1 when the file has nothing
 * unsynced.  Returns 0 or a negative errno as storage_sync_piece (-ERANGE
 * for a bad index).  If that fdatasync fails, call storage_sync_failed
 * (under the lock) so the next sync of the file does it again (for data
 * written after it: see storage_sync_take_error). */
int storage_sync_begin(struct storage *st, size_t fi, int *fd_out)
	__attribute__((warn_unused_result));
void storage_sync_failed(struct storage *st, size_t fi);

/* Take (and clear) file `fi`'s error from a failed fdatasync at close
 * (LRU): 0 or a negative errno.  A caller that fdatasync'd a descriptor
 * from storage_sync_begin checks this under the lock afterwards: a close
 * on another thread may have been told the error instead.  After any
 * failed fdatasync Linux may have dropped the file's dirty pages and
 * reports the error only once, so a later sync that succeeds does not
 * prove the earlier writes durable: the caller must treat every piece of
 * the file not yet durable as lost. */
int storage_sync_take_error(struct storage *st, size_t fi);

/* fdatasync file `fi` whether or not it was written through this storage
 * (a file found on disk, about to count as downloaded).  Returns 0,
 * -ENOENT when it is missing, or another negative errno. */
int storage_flush_file(struct storage *st, size_t fi) __attribute__((warn_unused_result));

/* Is the whole piece on disk (file long enough, no hole in its range)?
 * Returns 1, 0, -ERANGE, or another negative errno. */
int storage_piece_on_disk(struct storage *st, uint32_t piece) __attribute__((warn_unused_result));

/* For resume of a complete swarm: does every file exist as a regular file
 * of exactly its size?  Returns 0; or -ENOENT (missing), -EINVAL (not a
 * regular file) or -ERANGE (wrong size) with the first bad file's index
 * in *bad_file_out; or another negative errno. */
int storage_check_files(struct storage *st, size_t *bad_file_out)
	__attribute__((warn_unused_result));

/* Where STORAGE_SKIP files' bytes go: file `name` (one component) in the
 * directory `dir` (opened now; normally the daemon's own data directory,
 * never the download directory), created 0600 on the first write to a
 * skipped file.  Call once, before any I/O.  Returns 0, -EINVAL, -ENOMEM
 * or the error of opening `dir`. */
int storage_set_part_file(struct storage *st, const char *dir, const char *name)
	__attribute__((warn_unused_result));

/* Change file `fi`'s access (e.g. STORAGE_SKIP -> STORAGE_CREATE when the
 * user un-skips a file: the next write, or storage_create_file, creates it
 * with O_EXCL).  Its open descriptor, if any, is closed first WITHOUT a
 * sync: the caller must treat every piece holding a byte of the file as
 * not had (they are fetched again).  Under the caller's lock like every
 * other call.  Returns 0, -ERANGE or -EINVAL. */
int storage_set_access(struct storage *st, size_t fi, enum storage_access access)
	__attribute__((warn_unused_result));
/* Create file `fi` if it is the swarm's to create and missing (as
 * storage_create_files does for all), and sync its directory.  Returns 0
 * or a negative errno (-EEXIST: something took its name). */
int storage_create_file(struct storage *st, size_t fi) __attribute__((warn_unused_result));
/* File `fi`'s access now (STORAGE_READ out of range). */
enum storage_access storage_file_access(const struct storage *st, size_t fi);

/* Undo a failed storage_create_files: unlink every file this storage
 * created (only if its name still holds that same inode: a file someone
 * put there since stays), then the directories it created, deepest first,
 * each only if empty.  Walks with O_NOFOLLOW like everything else. */
void storage_undo_create(struct storage *st);

/* For "remove --delete-data": unlink every STORAGE_OWN file that is a
 * regular file at its name, then the directories above it left empty (up
 * to, not including, the root).  Every directory is entered with
 * O_NOFOLLOW from its parent's descriptor and every name removed with
 * unlinkat on that descriptor, so a symlink planted in the tree is never
 * followed (what is behind it stays) and is not removed either.  Returns
 * how many files were unlinked, or a negative errno when none was and a
 * walk failed for another reason than a missing or blocked name. */
int storage_delete_owned(struct storage *st) __attribute__((warn_unused_result));

#endif
