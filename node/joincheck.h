/* joincheck.h: before a fresh join writes anything, decide for each file of
 * its torrent what to do with whatever is already at that file's name. */
#ifndef SHOAL_NODE_JOINCHECK_H
#define SHOAL_NODE_JOINCHECK_H

/*
 * The rules (docs/security.md, "Joins never take over your files"):
 * - nothing at the name: the swarm creates the file (STORAGE_CREATE: with
 *   O_EXCL, so a file appearing meanwhile is an error, not a target);
 * - a regular file of exactly the right size whose every piece hashes to
 *   the torrent's: adopted as downloaded data, read-only (STORAGE_READ) -
 *   shoal never writes into it and `delete_data` never deletes it;
 * - anything else that is a file (other content, other size, a symlink, a
 *   special file): a conflict, or with `overwrite` unlinked and created
 *   anew (STORAGE_REPLACE: a new inode, hard links keep the old bytes);
 * - a directory at the name, or a symlink or non-directory where a parent
 *   directory should be: always a conflict (nothing is followed through a
 *   symlink, nothing is removed recursively).
 * A partly matching file is a conflict: adopting only its good pieces would
 * mean writing the others into the user's file.
 *
 * Threading: join_check_new and everything but join_check_hash run on the
 * event loop; join_check_hash may run on one worker while the loop leaves
 * the check alone (the usual hand-off of a worker job).
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "transfer/storage.h"

struct metainfo;
struct join_check;

/* The storage layout of a swarm's files: paths relative to the swarm's
 * root directory, with "<name>/" in front for a multi-file join (so its
 * content directory is walked like every other, without following a
 * symlink).  `access` (per file, enum storage_access values) may be NULL:
 * then every file is STORAGE_READ. */
struct join_layout {
	struct storage_file *files; /* owned, mi->file_count entries */
	char **paths;               /* owned, the prefixed copies (or NULL) */
	size_t n;
	bool stream;                /* a v1 torrent: pieces span files */
	uint64_t stream_total;      /* stream: bytes of the v1 piece stream */
	uint32_t piece_length;
};
int join_layout_init(struct join_layout *l, const struct metainfo *mi, bool join,
		     const uint8_t *access) __attribute__((warn_unused_result));
void join_layout_destroy(struct join_layout *l);
/* A storage over the layout under `root` (storage_new, or
 * storage_new_stream for a v1 torrent); returns what they return. */
int join_layout_storage(const struct join_layout *l, const char *root, unsigned max_open,
			struct storage **out) __attribute__((warn_unused_result));

/* Look at every file of `mi` under `root` (the join's download directory,
 * which must not be a symlink): a walk and an fstatat per file, nothing
 * read or written.  Files with skip[f] nonzero (skip may be NULL) are not
 * looked at: they are not downloaded (STORAGE_SKIP), so whatever is at
 * their names is left alone and is no conflict.  `mi` must outlive the check.  Returns 0 and *jc_out
 * (free with join_check_free), -ELOOP / -ENOTDIR / -ENOENT / -EACCES when
 * the root cannot be opened, or -ENOMEM. */
int join_check_new(const char *root, const struct metainfo *mi, bool overwrite,
		   const uint8_t *skip, struct join_check **jc_out) __attribute__((warn_unused_result));
void join_check_free(struct join_check *jc);

/* NULL when the join may go ahead, else a message naming the first path in
 * the way (valid until the check is freed). */
const char *join_check_conflict(const struct join_check *jc);

/* Are there files of the right size to hash before deciding? */
bool join_check_needs_hash(const struct join_check *jc);

/* Hash those files against the torrent (slow: for a worker thread) and
 * decide: adopt, replace (with overwrite) or conflict.  Without `mi`'s
 * piece hashes only whole files can be judged, and that is all this does:
 * it compares each file's merkle root with its pieces root. */
void join_check_hash(struct join_check *jc);

/* For a magnet join, whose metadata arrives with a download already
 * running: files that would need hashing are treated as conflicts (or
 * replaced with overwrite) instead. */
void join_check_refuse_unhashed(struct join_check *jc);

/* The per-file access modes decided (enum storage_access values), as a new
 * array the caller frees; NULL when out of memory. */
uint8_t *join_check_access(const struct join_check *jc);

/* Set the bits of adopted files' pieces in `have` (BEP 3 bit order, at
 * least total_pieces bits); returns how many were set. */
uint32_t join_check_mark_have(const struct join_check *jc, uint8_t *have);

#endif
