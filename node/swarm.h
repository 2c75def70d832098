/* swarm.h: the node's swarms in memory (shared directories and joined links)
 * and their rows in SQLite.  Owned by the event loop thread. */
#ifndef SHOAL_NODE_SWARM_H
#define SHOAL_NODE_SWARM_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>


#include "transfer/storage.h"

struct node;
struct metainfo;
struct share_job;

enum swarm_role { SWARM_ROLE_SHARE, SWARM_ROLE_JOIN };

enum swarm_state {
	SWARM_HASHING,     /* share: building the metainfo */
	SWARM_CHECKING,    /* re-verifying data against stored hashes */
	SWARM_METADATA,    /* join: waiting for the info dict from peers */
	SWARM_DOWNLOADING,
	SWARM_SEEDING,
	SWARM_PAUSED,
	SWARM_ERROR,
	SWARM_STATE_COUNT
};

struct swarm {
	int64_t id;                 /* stable: the row id in the swarms table */
	bool in_db;                 /* false while a share is still hashing */
	enum swarm_role role;
	enum swarm_state state;
	enum swarm_state resume_state; /* what to return to after pause */
	char error[512];            /* set in SWARM_ERROR */
	char *name;                 /* owned */
	char *root;                 /* owned: absolute directory holding the files */
	/* The swarm's key: its v2 info-hash, or while only the v1 one is known
	 * (a v1 torrent, or a urn:btih link before its metadata came:
	 * key_v1) the v1 info-hash followed by 12 zero bytes, so the first 20
	 * bytes are what the wire and the DHT use either way. */
	uint8_t info_hash[32];
	bool has_info_hash;
	bool key_v1;
	/* A hybrid's v1 info-hash (SHA-1 of the same info dict): peers may
	 * handshake with it, and it is announced on the DHT beside the v2 one.
	 * Derived from the metainfo whenever it is installed (swarm_learn_v1),
	 * so the database needs no column for it. */
	uint8_t info_hash_v1[20];
	bool has_info_hash_v1;
	struct metainfo *meta;      /* owned, NULL until known */
	int64_t *mtimes_ns;         /* owned, per meta file: mtime when last verified */
	/* Owned, per meta file: an enum storage_access - what the swarm may do
	 * with the file (a join writes only files it created; see
	 * node/joincheck.h).  NULL: a share's files are only read; a join has
	 * not yet checked its target (a magnet before its metadata, or a check
	 * that failed), so none of its files is its own.  Persisted as
	 * files.owned. */
	uint8_t *file_access;
	bool overwrite;             /* join: replace files in the way (not persisted) */
	uint8_t *have;              /* owned bitmap of verified pieces (BEP 3 bit order) */
	uint32_t have_count;
	/* What the user chose to download (docs/api.md, "Files").  Owned, per
	 * meta file, an enum swarm_prio; NULL: every file normal.  `wanted`
	 * (owned; NULL when every piece is) marks the pieces holding a byte of
	 * a file not skipped, counted in wanted_count, of which wanted_have
	 * are had (kept by swarm_have_set/clear; swarm_selection_update
	 * recomputes them).  Persisted as files.priority. */
	uint8_t *file_prio;
	uint8_t *wanted;
	uint32_t wanted_count, wanted_have;
	bool sequential;            /* pieces in file order (swarms.sequential) */
	/* A join's --only/--skip globs ("+GLOB" / "-GLOB" lines), owned, kept
	 * until the metadata comes (swarms.select_rules); NULL after. */
	char *select_rules;
	int64_t added_at;
	uint64_t upload_limit, download_limit; /* bytes/s for this swarm, 0 = none */
	/* Progress of hashing or checking, written by workers. */
	_Atomic uint64_t work_done;
	uint64_t work_total;
	uint64_t work_started_ms;
	struct share_job *job;      /* owned while hashing/checking */
	/* The outcome of the last check of the files (`shoal verify`, or the
	 * resume check at start), kept because the pieces it dropped may be
	 * fetched again before anyone reads pieces_have. */
	struct {
		uint32_t seq;           /* 0: never checked since the daemon started */
		const char *result;     /* "ok", "failed" or "cancelled" */
		uint32_t pieces_verified, pieces_dropped;
		uint32_t files_hashed;  /* files read (the rest were unchanged) */
		int64_t finished_at;    /* unix seconds */
	} last_check;
	bool remove_pending;        /* removed while a job ran: free when it ends */
	struct xfer *xfer;          /* transfer state (engine.c), NULL when idle */
	struct tracker_swarm *trk;  /* trackers and their state (node/trackers.c), NULL without */
	struct swarm *next, *prev;  /* node->swarms, in id order */
};

/* Names used in JSON and the database. */
const char *swarm_state_name(enum swarm_state s);
const char *swarm_role_name(enum swarm_role r);

/* Allocate a swarm with id `id`, or the next free id when `id` is 0, and
 * link it into node's list.  Returns NULL when out of memory. */
struct swarm *swarm_new(struct node *node, int64_t id, enum swarm_role role, const char *name,
			const char *root);
/* Unlink and free the record.  The caller (the mediator, node/swarms.c)
 * has freed its transfer state and job first: sw->xfer and sw->job are
 * NULL. */
void swarm_free(struct node *node, struct swarm *sw);

/* Setters of what node->swarm_ix indexes: use these, never assign the
 * fields.  swarm_set_key sets info_hash, has_info_hash and key_v1;
 * swarm_set_v1 sets info_hash_v1 and has_info_hash_v1.  -ENOMEM leaves the
 * swarm as it was. */
int swarm_set_key(struct node *node, struct swarm *sw, const uint8_t info_hash[32], bool key_v1)
	__attribute__((warn_unused_result));
int swarm_set_v1(struct node *node, struct swarm *sw, const uint8_t info_hash_v1[20])
	__attribute__((warn_unused_result));
void swarm_set_state(struct node *node, struct swarm *sw, enum swarm_state state);
/* Something a follower of the list may care about changed beyond what the
 * setters record (the engine gave the swarm its transfer state). */
void swarm_note_changed(struct node *node);
/* The swarm is being removed (its job still runs): it leaves the counts
 * and sets remove_pending. */
void swarm_mark_removed(struct node *node, struct swarm *sw);
/* Swarms not removed, in all and per state, in O(1).  `counts` has
 * SWARM_STATE_COUNT entries. */
uint32_t swarm_count_states(const struct node *node, uint32_t counts[SWARM_STATE_COUNT]);

/* What the engine and the share jobs report up, on the loop.  The mediator
 * (node/swarms.c) installs them in node->events; the reporters call the
 * two functions below, which do nothing before it has. */
struct swarm_events {
	/* A job of the swarm's ended: a share's hashing, a check, or the
	 * engine's last disk job.  The swarm may be freed by this call. */
	void (*job_ended)(struct node *node, struct swarm *sw);
	/* A share finished hashing: sw->meta, sw->have (every piece: the
	 * user's files) and sw->mtimes_ns are set and sw->state is
	 * SWARM_SEEDING.  Recording it may set SWARM_ERROR.  Called before
	 * the job's job_ended. */
	void (*hashed)(struct node *node, struct swarm *sw);
	/* A check ended and wrote sw->have; `ok` when it neither failed nor
	 * was cancelled.  Called before the check's job_ended. */
	void (*checked)(struct node *node, struct swarm *sw, bool ok);
	/* A download completed (every piece verified): trackers hear
	 * "completed". */
	void (*completed)(struct node *node, struct swarm *sw);
	/* A tracker returned a peer address (numeric host).  Returns what
	 * swarms_add_peer returns (-ENOSPC: the address book is full). */
	int (*peer_found)(struct node *node, struct swarm *sw, const char *host, uint16_t port,
			  const char *source);
};
void swarm_report_job_ended(struct node *node, struct swarm *sw);
void swarm_report_checked(struct node *node, struct swarm *sw, bool ok);
void swarm_report_hashed(struct node *node, struct swarm *sw);
void swarm_report_completed(struct node *node, struct swarm *sw);
int swarm_report_peer(struct node *node, struct swarm *sw, const char *host, uint16_t port,
		      const char *source);

/* Look up by decimal id or by a unique prefix (>= 8 hex digits) of the
 * info-hash.  NULL if none or ambiguous. */
struct swarm *swarm_find(struct node *node, const char *key);
struct swarm *swarm_find_by_root(struct node *node, enum swarm_role role, const char *root);
struct swarm *swarm_find_by_hash(struct node *node, const uint8_t info_hash[32]);
/* The first swarm in id order whose id is greater than `after` (less than
 * the first id: the first swarm), or NULL when there is none; the ones
 * after it are its ->next.  For paging (GET /api/v1/swarms?after=ID).
 * O(1) when the swarm `after` names, or one soon after it, still exists;
 * when the ids past `after` were removed, O(min(removed ids, swarms
 * after)) (one lookup per missing id, or one step back from the tail per
 * swarm, whichever ends first). */
struct swarm *swarm_first_after(const struct node *node, int64_t after);
/* By the first 20 bytes of its key (what a handshake or the DHT carries). */
struct swarm *swarm_find_by_key20(struct node *node, const uint8_t key[20]);
/* A hybrid's v1 key (its v1 info-hash and 12 zero bytes, what a swarm
 * joined by the v1 link is keyed by) into `out`; false when the swarm has
 * no v1 hash or its key is that already. */
bool swarm_v1_key(const struct swarm *sw, uint8_t out[32]);
/* Walk the swarms whose key (v1: whose v1 info-hash) starts with the 20
 * bytes `key`, in no particular order: *pos = 0 first, NULL at the end. */
struct swarm *swarm_next_by_key20(struct node *node, const uint8_t key[20], bool v1, size_t *pos);
/* The swarm a 20-byte hash from the wire (the DHT, an LSD announce) names:
 * by its key, else by a hybrid's v1 info-hash; the lowest id when several
 * do; swarms being removed are skipped.  NULL when none. */
struct swarm *swarm_for_key20(struct node *node, const uint8_t key[20]);
/* By id, through the index (O(1)); NULL when there is none. */
struct swarm *swarm_find_id(const struct node *node, int64_t id);
/* Its metadata says "private" (BEP 27): peers from its trackers only, no
 * DHT, no peer exchange. */
bool swarm_private(const struct swarm *sw);
/* By the v1 info-hash (a v1 swarm's, or a hybrid's). */
struct swarm *swarm_find_by_v1(struct node *node, const uint8_t info_hash_v1[20]);

/* Is `mi` the swarm's metadata?  Its key must match (the SHA-1 of the
 * info dict for a swarm known by its v1 hash, else the SHA-256), and a
 * v1 hash given beside a v2 one (a hybrid's link) must match too.
 * Returns 0 or METAINFO_E_HASH_MISMATCH. */
int swarm_meta_check(const struct swarm *sw, const struct metainfo *mi);
/* A swarm known by its v1 hash whose metadata turned out a hybrid takes
 * the v2 info-hash as its key (recorded with the metadata by
 * swarm_db_store_meta), so v2 peers, the v2 DHT key and the encrypted
 * transport's binding all use it.  Returns 0 (also when nothing changes)
 * or -EEXIST when another swarm already has that key. */
int swarm_take_v2_key(struct node *node, struct swarm *sw);

/* Take the v1 info-hash from sw->meta when it is a hybrid (no-op otherwise).
 * Returns 0 or -ENOMEM. */
int swarm_learn_v1(struct node *node, struct swarm *sw) __attribute__((warn_unused_result));

/* Set a piece's bit; returns true if it was newly set. */
bool swarm_have_set(struct swarm *sw, uint32_t piece);
bool swarm_have_test(const struct swarm *sw, uint32_t piece);
void swarm_have_clear(struct swarm *sw, uint32_t piece);

/* Where the files are: a multi-file torrent of a join lives in
 * ROOT/<name>, a single file directly in ROOT; a share's ROOT is the shared
 * directory itself.  Needs sw->meta. */
void swarm_content_root(const struct swarm *sw, char *out, size_t len);

/* Did the swarm create file `file` (so it may write it, and delete it with
 * delete_data)?  Never for a share, nor for a file a join adopted. */
bool swarm_file_owned(const struct swarm *sw, size_t file);

/* A file's priority (files.priority, and the JSON names below). */
enum swarm_prio {
	SWARM_PRIO_SKIP = 0,
	SWARM_PRIO_LOW,
	SWARM_PRIO_NORMAL,
	SWARM_PRIO_HIGH,
};
const char *swarm_prio_name(enum swarm_prio p);
/* -1 for an unknown name. */
int swarm_prio_from_name(const char *name);
enum swarm_prio swarm_file_prio(const struct swarm *sw, size_t file);
/* Recompute `wanted` and its counts from file_prio (after it changed or was
 * loaded).  Returns 0 or -ENOMEM (the swarm is left as before). */
int swarm_selection_update(struct swarm *sw) __attribute__((warn_unused_result));
/* Is every wanted piece had?  (Every piece, when no file is skipped.)
 * False without metadata. */
bool swarm_done(const struct swarm *sw);
/* Does the piece hold a byte of a file that is not skipped? */
bool swarm_piece_wanted(const struct swarm *sw, uint32_t piece);
/* Apply the "+GLOB" / "-GLOB" rules (select_rules format) to the files of
 * sw->meta: file_prio gets SKIP for the files they leave out, NORMAL for
 * the rest (and `wanted` is updated).  Returns the number of non-empty
 * files left to download (0: the rules skip everything), or -ENOMEM. */
int swarm_apply_rules(struct swarm *sw, const char *rules);
/* The same into prio[mi->file_count] (SKIP or NORMAL), for a join not yet
 * made: returns the number of non-empty files kept. */
int swarm_rules_prio(const struct metainfo *mi, const char *rules, uint8_t *prio);
/* Record every file's priority and owned code, and the swarm's sequential
 * flag and select_rules, in one transaction.  Returns 0 or -EIO. */
int swarm_db_save_selection(struct node *node, struct swarm *sw)
	__attribute__((warn_unused_result));

/* files.owned in the database: what the join may do with the file. */
enum {
	SWARM_FILE_NOT_OWNED = 0, /* a share's, or adopted: never written */
	SWARM_FILE_OWNED = 1,     /* shoal created it: reopened read-write */
	SWARM_FILE_TO_CREATE = 2, /* decided, not created yet: reloads as
				   * STORAGE_CREATE (O_EXCL) */
	SWARM_FILE_SKIPPED = 3,   /* skipped, never created: STORAGE_SKIP */
};
int swarm_file_owned_code(const struct swarm *sw, size_t file);
enum storage_access swarm_file_access_from_code(enum swarm_role role, int code);

/* Record files.owned of every file again (after the join created them).
 * Returns 0 or -EIO. */
int swarm_db_save_owned(struct node *node, struct swarm *sw) __attribute__((warn_unused_result));

/* Delete a joined swarm's downloaded files (only those its metadata names
 * and it created itself: never an adopted file of the user's) and the
 * directories left empty.  Returns the number of files deleted. */
int swarm_delete_data(const struct swarm *sw);

/* Write DATA_DIR/torrents/<hash>.torrent from the metadata: the exact info
 * dict plus every piece layer.  Does nothing while layers are missing;
 * failures are logged (the file is a convenience, the database is the
 * record). */
void swarm_write_torrent(struct node *node, const struct swarm *sw);

/* Where a join keeps its skipped files' bytes of shared v1 pieces:
 * DATA_DIR/parts (dir) and "<info-hash hex>.part" (name: 70 bytes with
 * its NUL). */
void swarm_part_file(const struct node *node, const struct swarm *sw, char *dir, size_t dir_len,
		     char *name, size_t name_len);

/* DATA_DIR/torrents/<info-hash hex>.torrent */
void swarm_torrent_path(const struct node *node, const struct swarm *sw, char *out, size_t len);

/* Bytes of the verified pieces. */
uint64_t swarm_bytes_have(const struct swarm *sw);
/* The pieces holding bytes [off, off + len) of file `file` (len >= 1, the
 * range inside the file): *first_out and *last_out, inclusive.  Returns 0,
 * -ERANGE for a file or range out of bounds, -ENODATA without metadata. */
int swarm_file_pieces(const struct swarm *sw, size_t file, uint64_t off, uint64_t len,
		      uint32_t *first_out, uint32_t *last_out) __attribute__((warn_unused_result));

/* Database.  Insert the swarm, its files, piece layers and `have` (its
 * durable verified pieces: what a swarm starts with, before any transfer;
 * NULL without metadata) in one transaction.  Returns 0 or -EIO with
 * nothing written. */
int swarm_db_insert(struct node *node, struct swarm *sw, const uint8_t *have)
	__attribute__((warn_unused_result));
/* Record metadata learned after the swarm was inserted (a magnet join): the
 * info dict, files, known piece layers and `have` (from the engine's
 * durability gate), in one transaction. */
int swarm_db_store_meta(struct node *node, struct swarm *sw, const uint8_t *have)
	__attribute__((warn_unused_result));
/* One address-book row to remember across restarts (banned: never
 * dialled again, its host refused; see swarm_db_save_peers). */
struct swarm_peer_row {
	char host[46];              /* numeric, INET6_ADDRSTRLEN */
	uint16_t port;
	char source[8];
	bool banned;
};
/* Write `n` rows in one transaction (banned rows stay banned; others
 * refresh last_seen).  Returns 0, or -EIO with nothing written (logged:
 * the address book is a cache).  A swarm not in the database writes
 * nothing and returns 0. */
int swarm_db_save_peers(struct node *node, const struct swarm *sw,
			const struct swarm_peer_row *rows, size_t n);
/* Call `fn` for every remembered peer of the swarm. */
void swarm_db_load_peers(struct node *node, const struct swarm *sw,
			 void (*fn)(void *ctx, const char *host, uint16_t port, const char *source,
				    bool banned),
			 void *ctx);

/* Persist the swarm's own rate limits. */
int swarm_db_save_limits(struct node *node, const struct swarm *sw)
	__attribute__((warn_unused_result));

/* Persist the swarm's state and, when `bitmap` is not NULL, `bitmap`
 * (total_pieces bits) as its verified pieces with the files' mtimes.  Only
 * the durability gate in engine_durable.c (on_durable, engine_swarm_save_have)
 * passes a bitmap: see "durability" there. */
int swarm_db_save_have(struct node *node, struct swarm *sw, const uint8_t *bitmap)
	__attribute__((warn_unused_result));
/* Persist the state only (state, error, paused), never the bitmap. */
int swarm_db_save_state(struct node *node, struct swarm *sw) __attribute__((warn_unused_result));
int swarm_db_delete(struct node *node, struct swarm *sw) __attribute__((warn_unused_result));
/* Load every swarm at start-up.  Returns 0 or -EIO with a message logged. */
int swarm_db_load_all(struct node *node) __attribute__((warn_unused_result));

#endif
