/* swarms.h: the mediator, the one owner of every swarm's lifecycle.
 *
 * Share, join, pause, resume, verify, remove, limits, start-up and
 * shutdown: each is one call here, and this is the only code that calls
 * the engine (node/engine.h), the share and check jobs (node/share.h) and
 * the database (swarm_db_*) to change a swarm.  The API (api_swarms.c)
 * parses and answers requests and calls only this; the engine and the share
 * jobs never call up into it, they report through the events it installs
 * (struct swarm_events in node/swarm.h): "a swarm's last job ended" and "a
 * check changed what it has".  So whether a swarm may be freed, restarted
 * or recorded is decided in one place (swarms_job_ended below).
 *
 * Everything runs on the event loop.  Errors are negative errno values;
 * each function says which it returns and what they mean to a user. */
#ifndef SHOAL_NODE_SWARMS_H
#define SHOAL_NODE_SWARMS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "transfer/metainfo.h"

struct node;
struct swarm;
struct metainfo;
struct magnet;

/* Install the events engine and share jobs report through.  Call once,
 * before the engine starts. */
void swarms_init(struct node *node);

/* Load every swarm from the database (at start-up, before the engine).
 * 0, or -EIO with a message logged. */
int swarms_load(struct node *node) __attribute__((warn_unused_result));

/* Share the directory `root` (absolute, resolved) as `name`.  Returns 0 when
 * a new swarm started hashing, 1 when `root` is already shared (*out is that
 * swarm; a check of what changed was started), -ENOMEM, or another negative
 * errno when the hashing job could not start (the daemon is busy). */
int swarms_share(struct node *node, const char *root, const char *name,
		 enum metainfo_format format, struct swarm **out);

/* A peer address to add to a join (numeric host). */
struct swarms_peer {
	char host[64];
	uint16_t port;
	const char *source;        /* "user" or "magnet" */
};

/* What a join asks for.  `meta` (a .torrent's) is taken by swarms_join
 * whatever happens; NULL for a magnet, whose info-hash and name are given. */
struct swarms_join_req {
	uint8_t info_hash[32];     /* the key (struct swarm's info_hash) */
	bool key_v1;               /* the key is a v1 hash (see struct swarm) */
	bool has_v1;               /* a v1 hash is known too: */
	uint8_t info_hash_v1[20];
	char name[256];
	char dir[4096];            /* resolved download directory */
	struct metainfo *meta;
	bool overwrite;
	const struct swarms_peer *peers;
	size_t n_peers;
	/* --only / --skip as "+GLOB" / "-GLOB" lines (struct swarm's
	 * select_rules), or NULL: owned, and always taken by swarms_join. */
	char *rules;
	bool sequential;           /* pieces in file order */
};

/* The outcome of a join: rc 0 joined (sw is the new swarm), 1 already
 * joined (sw is that swarm; the peers were added to it), -EEXIST a file in
 * the way (msg names it: nothing was written), -EDOM the rules leave no
 * file to download, -ENOMEM, -EIO the database
 * refused, -EBUSY the existing files could not be queued for checking,
 * -ECANCELED the daemon is stopping (nothing was created), or -EFAULT the
 * transfer could not start (the join was undone). */
typedef void (*swarms_join_done)(void *ctx, int rc, struct swarm *sw, const char *msg);

/* Join.  When the download directory already holds files of the torrent's
 * sizes they are hashed on a worker first, and `done` is called later from
 * the loop; otherwise before swarms_join returns.  `done` is called exactly
 * once. */
void swarms_join(struct node *node, struct swarms_join_req *req, swarms_join_done done, void *ctx);

/* Add a peer address to a swarm's address book.  -EINVAL when `host` is not
 * a numeric address; 0 otherwise (a swarm not transferring ignores it). */
int swarms_add_peer(struct node *node, struct swarm *sw, const char *host, uint16_t port,
		    const char *source);

/* Change a joined swarm's file priorities (prio[f]: an enum swarm_prio, or
 * -1 to keep file f's; prio may be NULL) and sequential mode (0, 1, or -1
 * to keep it); recorded, then the engine follows.  A file un-skipped that
 * was never created is created now (O_EXCL) or at the next start, and its
 * pieces that were had are fetched again.  Returns 0; -EPERM for a share;
 * -ENODATA without metadata; -EBUSY while a check runs; -EEXIST when
 * something is at an un-skipped file's name (msg says what: found by the
 * check first, nothing changed; appeared after it, that file stays
 * skipped and the rest of the change stands); -ENOMEM; -EIO. */
int swarms_set_files(struct node *node, struct swarm *sw, const int *prio, int sequential,
		     char *msg, size_t msg_len) __attribute__((warn_unused_result));

/* Pause (stop transfers, keep everything) or resume.  Returns 0 (also when
 * already so), -EBUSY while a job runs or the swarm is in error, -EFAULT
 * when transfers cannot restart, or -EIO when the state was not saved. */
int swarms_pause(struct node *node, struct swarm *sw);
int swarms_resume(struct node *node, struct swarm *sw);

/* Re-check the files against the hashes.  Returns 0 when the check
 * started, -EINPROGRESS while the swarm downloads (pause it first: every
 * piece is checked as it arrives), -EBUSY when a check or hashing runs,
 * -EINVAL without metadata yet, or another negative errno. */
int swarms_verify(struct node *node, struct swarm *sw);

/* Remove a swarm, and with `delete_data` the files a join created.
 * Returns 0 when removed now, 1 when it goes once its jobs end, -EPERM for
 * delete_data on a share (shoal never deletes what you shared), or -EIO
 * when the database refused (nothing changed).  *files_deleted (may be
 * NULL) is the number of files deleted. */
int swarms_remove(struct node *node, struct swarm *sw, bool delete_data, int *files_deleted);

/* A swarm's own limits (bytes/s, 0 = none), saved.  0 or -EIO. */
int swarms_set_limits(struct node *node, struct swarm *sw, uint64_t up, uint64_t down);
/* The daemon-wide limits until it restarts.  0 or -EINVAL. */
int swarms_set_global_limits(struct node *node, uint64_t up, uint64_t down);

/* Figures for the API (node/api_json.c builds the JSON). */
struct engine_node_stats;
struct engine_swarm_stats;
struct engine_peer_info;
void swarms_node_stats(struct node *node, struct engine_node_stats *out);
void swarms_swarm_stats(const struct swarm *sw, struct engine_swarm_stats *out);
void swarms_each_peer(const struct swarm *sw, void (*fn)(void *ctx, const struct engine_peer_info *),
		      void *ctx);
unsigned swarms_peer_count(struct node *node);

/* Trackers (node/trackers.h).  Add the URLs of `add` not already there,
 * its tiers after the swarm's last one (or, `as_given`, in the tiers it
 * names).  Recorded, and announced to at once when
 * the swarm runs.  Returns 0, -EINVAL (a URL that cannot be used: nothing
 * after it is added), -ENOSPC (TRACKER_MAX_TRACKERS reached), -ENOMEM or
 * -EIO; *added_out (may be NULL) counts the URLs added. */
struct tracker_list;
struct trackers_info;
int swarms_add_trackers(struct node *node, struct swarm *sw, const struct tracker_list *add,
			bool as_given, size_t *added_out);
/* Remove one (it hears "stopped" if announced to).  0, -ENOENT, -ENOMEM
 * or -EIO. */
int swarms_remove_tracker(struct node *node, struct swarm *sw, const char *url);
/* Announce to every tier now.  0 or -EAGAIN (the swarm is not running). */
int swarms_reannounce(struct node *node, struct swarm *sw);
void swarms_each_tracker(const struct swarm *sw,
			 void (*fn)(void *ctx, const struct trackers_info *), void *ctx);

/* Streaming readers (node/api_stream.c, docs/streaming.md): the engine's
 * calls of node/engine.h (engine_piece_ready, engine_stream_window,
 * engine_stream_window_drop), through here like every other.  Without an
 * engine (the daemon stopping) the window calls do nothing and return 0.
 * Defined in node/swarms_stream.c. */
bool swarms_piece_ready(const struct swarm *sw, uint32_t piece);
int swarms_stream_window(struct node *node, struct swarm *sw, uint64_t owner, size_t file,
			 uint64_t offset);
void swarms_stream_window_drop(struct node *node, struct swarm *sw, uint64_t owner);
uint64_t swarms_stream_window_span(const struct swarm *sw);
bool swarms_block_ready(const struct swarm *sw, uint32_t piece, uint32_t block);

/* At start-up, once the engine exists: check or start every swarm loaded
 * from the database (a joined swarm's files are checked too). */
void swarms_start_all(struct node *node);

/* At shutdown, after the engine is freed: cancel every share and check
 * job (they end when the workers are drained). */
void swarms_cancel_jobs(struct node *node);

/* At shutdown, once the workers are gone: free every swarm. */
void swarms_free_all(struct node *node);

#endif
