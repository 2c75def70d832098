/* share.h: turn a directory into a swarm (scan, hash on workers, record) and
 * re-verify a swarm's files against its stored hashes. */
#ifndef SHOAL_NODE_SHARE_H
#define SHOAL_NODE_SHARE_H

#include <stdbool.h>

#include "transfer/metainfo.h"

struct node;
struct swarm;
struct share_job;

/* Start hashing sw->root (absolute, resolved, a directory) for `sw`, which
 * must be in SWARM_HASHING.  Scanning and hashing run on the workers; when
 * done, on the loop, `sw` becomes SWARM_SEEDING with its metainfo, its
 * .torrent (v2 or hybrid, as `format` says; a hybrid's SHA-1 piece hashes are
 * computed in the same pass over the data) is written to DATA_DIR/torrents/ and everything is recorded in
 * SQLite in one transaction - or `sw` becomes SWARM_ERROR with a message and
 * nothing is recorded.  Returns 0 or a negative errno. */
int share_start(struct node *node, struct swarm *sw, enum metainfo_format format)
	__attribute__((warn_unused_result));

/* Re-hash `sw`'s files and compare with the stored piece hashes: every file
 * when `full`, else only those whose size or mtime changed since they were
 * last verified (and missing ones).  Pieces that do not match are dropped
 * from the verified bitmap; pieces that match are added.  Returns 0,
 * -EBUSY if a job is already running, or a negative errno. */
int share_verify_start(struct node *node, struct swarm *sw, bool full)
	__attribute__((warn_unused_result));

/* Ask a running job to stop early; its swarm still waits for it. */
void share_job_cancel(struct share_job *job);

/* Free a job that is not running (or after the workers were stopped).
 * NULL is a no-op. */
void share_job_free(struct share_job *job);

#endif
