/* swarms.c: the mediator (see swarms.h): every change to a swarm's
 * lifecycle, and the events the engine and the share jobs report. */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "node/engine.h"
#include "node/joincheck.h"
#include "node/node.h"
#include "node/share.h"
#include "node/swarm.h"
#include "node/store.h"
#include "node/swarms.h"
#include "node/trackers.h"
#include "node/workers.h"
#include "transfer/metainfo.h"
#include "transfer/tracker.h"

/* Unlink and free a swarm with its transfer state and job. */
static void swarms_free(struct node *node, struct swarm *sw)
{
	engine_swarm_free(sw);
	share_job_free(sw->job);
	sw->job = NULL;
	trackers_swarm_free(sw);
	swarm_free(node, sw);
}

/* Start a swarm's transfers, and its trackers once it transfers. */
static int start_swarm(struct node *node, struct swarm *sw)
{
	int rc = engine_swarm_start(node->engine, sw);
	if (rc == 0)
		trackers_swarm_start(node, sw);
	return rc;
}

/* A share's .torrent (DATA_DIR/torrents) carries its trackers: "announce"
 * and "announce-list" are set in it anew whenever they change.  Failures
 * are logged: the file is a convenience, the database is the record. */
static void write_share_trackers(struct node *node, struct swarm *sw)
{
	if (sw->role != SWARM_ROLE_SHARE || !sw->meta || !sw->in_db)
		return;
	char path[PATH_MAX];
	swarm_torrent_path(node, sw, path, sizeof path);
	struct tracker_list *l = malloc(sizeof *l);
	uint8_t *data = malloc(METAINFO_MAX_TORRENT_SIZE);
	struct buf out;
	buf_init(&out, METAINFO_MAX_TORRENT_SIZE);
	FILE *f = l && data ? fopen(path, "rb") : NULL;
	size_t n = f ? fread(data, 1, METAINFO_MAX_TORRENT_SIZE, f) : 0;
	int rc = !l || !data ? -ENOMEM : !f ? -errno : 0;
	if (f)
		fclose(f);
	if (!rc) {
		trackers_swarm_list(sw, l);
		rc = tracker_torrent_set(data, data + n, l, &out);
	}
	if (!rc)
		rc = write_file_atomic(path, out.data, out.len, 0644);
	if (rc)
		log_warn("swarm %" PRId64 ": cannot write its trackers into %s: %s", sw->id, path,
			 rc < 0 && rc > -1000 ? strerror(-rc) : tracker_strerror(rc));
	buf_destroy(&out);
	free(data);
	free(l);
}

/* ------------------------------------------------------------ events */

/* A swarm's job ended (a share's hashing, a check, or the engine's last
 * disk job): the one place that frees a removed swarm or starts transfers
 * once nothing else runs. */
static void swarms_job_ended(struct node *node, struct swarm *sw)
{
	if (sw->remove_pending && !sw->job && !engine_swarm_busy(sw))
		swarms_free(node, sw);
	else if (!sw->remove_pending && !sw->job && sw->meta && node->engine &&
		 (sw->state == SWARM_SEEDING || sw->state == SWARM_DOWNLOADING) &&
		 start_swarm(node, sw) != 0)
		log_error("swarm %" PRId64 ": cannot start transfers", sw->id);
}

/* A check ended (ok: not failed nor cancelled): the engine's picker and
 * peers learn what changed, and the result is recorded through the
 * durability gate. */
static void swarms_checked(struct node *node, struct swarm *sw, bool ok)
{
	/* A check that read no file and dropped no piece changed nothing
	 * (the start-up check of every unchanged swarm): no restart of its
	 * transfers, no write.  With 50,000 swarms those writes were most of
	 * the start-up. */
	if (ok && sw->last_check.files_hashed == 0 && sw->last_check.pieces_dropped == 0)
		return;
	if (ok)
		engine_swarm_have_changed(node->engine, sw);
	if (engine_swarm_save_have(node, sw) != 0)
		log_error("swarm %" PRId64 ": cannot save its verified pieces", sw->id);
}

/* A share finished hashing: record it, with every piece (nothing is
 * pending a sync: the files are the user's). */
static void swarms_hashed(struct node *node, struct swarm *sw)
{
	if (swarm_db_insert(node, sw, sw->have) != 0) {
		swarm_set_state(node, sw, SWARM_ERROR);
		snprintf(sw->error, sizeof sw->error, "cannot record the swarm in the database");
		return;
	}
	if (trackers_swarm_count(sw) > 0) {
		struct tracker_list *l = malloc(sizeof *l);
		if (l) {
			trackers_swarm_list(sw, l);
			if (trackers_db_save(node, sw, l) != 0)
				log_error("swarm %" PRId64 ": cannot record its trackers", sw->id);
			free(l);
		}
		write_share_trackers(node, sw);
	}
	const struct metainfo *mi = sw->meta;
	char hex[65];
	hex_encode(sw->info_hash, 32, hex);
	log_info("swarm %" PRId64 ": sharing %s: %zu files, %" PRIu64 " bytes, %u pieces of %" PRIu64
		 " bytes, info-hash %s",
		 sw->id, sw->root, mi->file_count, mi->total_size, mi->total_pieces,
		 mi->piece_length, hex);
}

static void swarms_completed(struct node *node, struct swarm *sw)
{
	trackers_swarm_completed(node, sw);
}

static int swarms_peer_found(struct node *node, struct swarm *sw, const char *host, uint16_t port,
			     const char *source)
{
	return swarms_add_peer(node, sw, host, port, source);
}

static const struct swarm_events events = {
	.job_ended = swarms_job_ended,
	.checked = swarms_checked,
	.hashed = swarms_hashed,
	.completed = swarms_completed,
	.peer_found = swarms_peer_found,
};

void swarms_init(struct node *node)
{
	node->events = &events;
}

int swarms_load(struct node *node)
{
	/* One read transaction for the whole load: per-query locking was a
	 * large part of starting with 50,000 swarms. */
	if (store_exec(node->store, "BEGIN;") != 0)
		return -EIO;
	int rc = swarm_db_load_all(node) != 0 ? -EIO : 0;
	struct tracker_list *l = rc ? NULL : malloc(sizeof *l);
	if (!rc && !l)
		rc = -EIO;
	for (struct swarm *sw = rc ? NULL : node->swarms; sw; sw = sw->next) {
		if (trackers_db_load(node, sw, l) != 0) {
			rc = -EIO;
			break;
		}
		if (l->count && trackers_swarm_set(node, sw, l) != 0)
			log_error("swarm %" PRId64 ": out of memory for its trackers", sw->id);
	}
	free(l);
	if (store_exec(node->store, "COMMIT;") != 0) {
		store_rollback(node->store);
		rc = -EIO;
	}
	return rc;
}

/* ------------------------------------------------------------- share */

int swarms_share(struct node *node, const char *root, const char *name,
		 enum metainfo_format format, struct swarm **out)
{
	struct swarm *sw = swarm_find_by_root(node, SWARM_ROLE_SHARE, root);
	if (sw && !sw->remove_pending && sw->state != SWARM_ERROR) {
		if (sw->meta && metainfo_format_of(sw->meta) != format) {
			*out = sw;
			return -EEXIST;
		}
		/* Same directory again: same swarm; re-check only what changed. */
		if (!sw->job && sw->meta) {
			int rc = share_verify_start(node, sw, false);
			if (rc)
				log_warn("swarm %" PRId64 ": cannot start a check: %s", sw->id,
					 strerror(-rc));
		}
		*out = sw;
		return 1;
	}
	if (sw && sw->state == SWARM_ERROR && !sw->in_db && !sw->job)
		swarms_free(node, sw); /* a failed earlier attempt: try afresh */
	sw = swarm_new(node, 0, SWARM_ROLE_SHARE, name, root);
	if (!sw)
		return -ENOMEM;
	int rc = share_start(node, sw, format);
	if (rc) {
		swarms_free(node, sw);
		return rc;
	}
	log_info("swarm %" PRId64 ": hashing %s", sw->id, root);
	*out = sw;
	return 0;
}

/* -------------------------------------------------------------- join */

static void add_peers(struct node *node, struct swarm *sw, const struct swarms_join_req *req)
{
	for (size_t i = 0; i < req->n_peers; i++)
		if (engine_add_peer(node->engine, sw, req->peers[i].host, req->peers[i].port,
				    req->peers[i].source) != 0)
			log_debug("peer %s not usable", req->peers[i].host);
}

static void free_meta(struct metainfo *mi)
{
	if (mi) {
		metainfo_destroy(mi);
		free(mi);
	}
}

/* Undo a join that was recorded but cannot go on. */
static void undo_join(struct node *node, struct swarm *sw)
{
	if (swarms_remove(node, sw, false, NULL) < 0)
		log_error("swarm %" PRId64 ": cannot undo the join", sw->id);
}

/* Create the swarm of a join (or find it already joined).  Takes req->meta;
 * `jc` (NULL for a magnet) has decided what happens to each file.  Calls
 * `done` once. */
/* The swarm a join names already, by its key or (a v1 link of a hybrid)
 * by its v1 hash. */
static struct swarm *find_join_twin(struct node *node, const struct swarms_join_req *req)
{
	struct swarm *sw = swarm_find_by_hash(node, req->info_hash);
	if (!sw && req->has_v1)
		sw = swarm_find_by_v1(node, req->info_hash_v1);
	return sw;
}

static void join_create_swarm(struct node *node, struct swarms_join_req *req,
			      struct metainfo *mi, char *rules, struct join_check *jc,
			      swarms_join_done done, void *ctx);

static void join_create(struct node *node, struct swarms_join_req *req, struct join_check *jc,
			swarms_join_done done, void *ctx)
{
	struct metainfo *mi = req->meta;
	req->meta = NULL;
	char *rules = req->rules; /* ours, whatever happens */
	req->rules = NULL;
	join_create_swarm(node, req, mi, rules, jc, done, ctx);
	free(rules);
}

static void join_create_swarm(struct node *node, struct swarms_join_req *req,
			      struct metainfo *mi, char *rules, struct join_check *jc,
			      swarms_join_done done, void *ctx)
{
	const char *conflict = jc ? join_check_conflict(jc) : NULL;
	if (conflict) {
		free_meta(mi);
		done(ctx, -EEXIST, NULL, conflict);
		return;
	}
	struct swarm *sw = find_join_twin(node, req);
	if (sw && !sw->remove_pending) {
		free_meta(mi);
		if (sw->xfer)
			add_peers(node, sw, req);
		done(ctx, 1, sw, NULL);
		return;
	}
	sw = mi && !jc ? NULL : swarm_new(node, 0, SWARM_ROLE_JOIN, req->name, req->dir);
	if (!sw) {
		free_meta(mi);
		done(ctx, -ENOMEM, NULL, "out of memory");
		return;
	}
	sw->meta = mi;
	if (swarm_set_key(node, sw, req->info_hash, req->key_v1) != 0 ||
	    (req->has_v1 && swarm_set_v1(node, sw, req->info_hash_v1) != 0) ||
	    swarm_learn_v1(node, sw) != 0) {
		swarms_free(node, sw);
		done(ctx, -ENOMEM, NULL, "out of memory");
		return;
	}
	sw->overwrite = req->overwrite;
	sw->sequential = req->sequential;
	if (!mi && rules && !(sw->select_rules = strdup(rules))) {
		swarms_free(node, sw);
		done(ctx, -ENOMEM, NULL, "out of memory");
		return;
	}
	if (mi) {
		sw->have = calloc((mi->total_pieces + 7) / 8 + 1, 1);
		sw->mtimes_ns = calloc(mi->file_count ? mi->file_count : 1, sizeof *sw->mtimes_ns);
		sw->file_access = join_check_access(jc);
		if (!sw->have || !sw->mtimes_ns || !sw->file_access ||
		    (rules && swarm_apply_rules(sw, rules) < 0)) {
			swarms_free(node, sw);
			done(ctx, -ENOMEM, NULL, "out of memory");
			return;
		}
		/* Adopted files are downloaded data: their pieces are had. */
		sw->have_count = join_check_mark_have(jc, sw->have);
		if (swarm_selection_update(sw) != 0) {
			swarms_free(node, sw);
			done(ctx, -ENOMEM, NULL, "out of memory");
			return;
		}
	}
	swarm_set_state(node, sw, !mi ? SWARM_METADATA
		    : swarm_done(sw) ? SWARM_SEEDING
				     : SWARM_DOWNLOADING);
	/* Nothing is pending a sync before the swarm starts: what it has is
	 * adopted data, which join_check_hash made durable. */
	if (swarm_db_insert(node, sw, sw->have) != 0) {
		swarms_free(node, sw);
		done(ctx, -EIO, NULL, "cannot record the swarm");
		return;
	}
	if (start_swarm(node, sw) != 0) {
		undo_join(node, sw);
		done(ctx, -EFAULT, NULL, "cannot start the swarm");
		return;
	}
	if (sw->state == SWARM_ERROR) {
		/* Files could not be created (one appeared since the check, say):
		 * the engine has unlinked the files and empty directories this
		 * join created (storage_undo_create) and wrote into no other; say
		 * why and forget the swarm. */
		char msg[sizeof sw->error];
		snprintf(msg, sizeof msg, "%s", sw->error);
		engine_swarm_stop(node->engine, sw);
		undo_join(node, sw);
		done(ctx, -EEXIST, NULL, msg);
		return;
	}
	add_peers(node, sw, req);
	swarm_write_torrent(node, sw);
	if (sw->have_count > 0)
		log_info("swarm %" PRId64 ": joining %s into %s, %" PRIu32
			 " pieces already there (adopted)", sw->id, sw->name, req->dir, sw->have_count);
	else
		log_info("swarm %" PRId64 ": joining %s into %s", sw->id, sw->name, req->dir);
	done(ctx, 0, sw, NULL);
}

/* A .torrent join whose target already holds files of the right sizes:
 * they are hashed on a worker, and the join goes on when they are. */
struct join_hash_job {
	struct node *node;
	struct swarms_join_req req;   /* a copy; its meta is ours */
	struct swarms_peer *peers;    /* owned copy of req.peers */
	struct join_check *jc;        /* owned */
	swarms_join_done done;
	void *ctx;
};

static void work_join_hash(void *arg)
{
	struct join_hash_job *j = arg;
	join_check_hash(j->jc);
}

static void done_join_hash(void *arg)
{
	struct join_hash_job *j = arg;
	if (j->node->stopping) {
		free_meta(j->req.meta);
		free(j->req.rules);
		j->done(j->ctx, -ECANCELED, NULL, "the daemon is stopping");
	} else {
		join_create(j->node, &j->req, j->jc, j->done, j->ctx);
	}
	join_check_free(j->jc);
	free(j->peers);
	free(j);
}

void swarms_join(struct node *node, struct swarms_join_req *req, swarms_join_done done, void *ctx)
{
	struct metainfo *mi = req->meta;
	struct swarm *known = find_join_twin(node, req);
	if (!mi || (known && !known->remove_pending)) {
		join_create(node, req, NULL, done, ctx); /* a magnet, or "existing" */
		return;
	}
	/* The files the rules leave out are not looked at: they are never
	 * created, so nothing at their names is in the way. */
	uint8_t *skip = NULL;
	if (req->rules) {
		skip = malloc(mi->file_count ? mi->file_count : 1);
		int left = skip ? swarm_rules_prio(mi, req->rules, skip) : -ENOMEM;
		if (left <= 0) {
			free(skip);
			free_meta(mi);
			req->meta = NULL;
			free(req->rules);
			req->rules = NULL;
			done(ctx, left == 0 ? -EDOM : -ENOMEM, NULL,
			     left == 0 ? "the selection (--only/--skip) leaves no file to download"
				       : "out of memory");
			return;
		}
		for (size_t f = 0; f < mi->file_count; f++)
			skip[f] = skip[f] == SWARM_PRIO_SKIP;
	}
	/* What is already where the files go (node/joincheck.h). */
	struct join_check *jc = NULL;
	int rc = join_check_new(req->dir, mi, req->overwrite, skip, &jc);
	free(skip);
	if (rc) {
		char msg[4200];
		snprintf(msg, sizeof msg, "cannot use %s: %s", req->dir, strerror(-rc));
		free_meta(mi);
		req->meta = NULL;
		free(req->rules);
		req->rules = NULL;
		done(ctx, -EEXIST, NULL, msg);
		return;
	}
	if (join_check_conflict(jc) || !join_check_needs_hash(jc)) {
		join_create(node, req, jc, done, ctx);
		join_check_free(jc);
		return;
	}
	struct join_hash_job *j = calloc(1, sizeof *j);
	if (j) {
		j->node = node;
		j->req = *req;
		j->peers = req->n_peers ? calloc(req->n_peers, sizeof *j->peers) : NULL;
		j->jc = jc;
		j->done = done;
		j->ctx = ctx;
	}
	if (j && req->n_peers && !j->peers) {
		free(j);
		j = NULL;
	}
	if (j && req->n_peers) {
		memcpy(j->peers, req->peers, req->n_peers * sizeof *j->peers);
		j->req.peers = j->peers;
	}
	if (!j || workers_submit(node->workers, work_join_hash, done_join_hash, j) != 0) {
		if (j)
			free(j->peers);
		free(j);
		join_check_free(jc);
		free_meta(mi);
		req->meta = NULL;
		free(req->rules);
		req->rules = NULL;
		done(ctx, -EBUSY, NULL, "cannot start checking the existing files");
		return;
	}
	req->meta = NULL; /* the job's now, and the rules */
	req->rules = NULL;
}

int swarms_add_peer(struct node *node, struct swarm *sw, const char *host, uint16_t port,
		    const char *source)
{
	return engine_add_peer(node->engine, sw, host, port, source);
}

/* ------------------------------------------------ pause, resume, verify */

static int set_paused(struct node *node, struct swarm *sw, bool pause)
{
	if (sw->job || sw->state == SWARM_ERROR)
		return -EBUSY;
	if (pause && sw->state != SWARM_PAUSED) {
		trackers_swarm_stop(node, sw);
		engine_swarm_stop(node->engine, sw);
		sw->resume_state = sw->state;
		swarm_set_state(node, sw, SWARM_PAUSED);
	} else if (!pause && sw->state == SWARM_PAUSED) {
		swarm_set_state(node, sw, sw->resume_state);
		if (start_swarm(node, sw) != 0)
			return -EFAULT;
	}
	return swarm_db_save_state(node, sw) != 0 ? -EIO : 0;
}

/* The skipped files' bytes of shared v1 pieces are the daemon's own, never
 * the user's: gone with the swarm, or once no file is skipped. */
static void remove_part_file(struct node *node, const struct swarm *sw)
{
	char dir[4200], name[80], path[4300];
	swarm_part_file(node, sw, dir, sizeof dir, name, sizeof name);
	snprintf(path, sizeof path, "%s/%s", dir, name);
	if (unlink(path) < 0 && errno != ENOENT)
		log_warn("swarm %" PRId64 ": cannot remove %s: %s", sw->id, path, strerror(errno));
}

/* Files the change un-skips that were never created: is anything at their
 * names?  NULL when all are free, else a message (in `msg`). */
static const char *unskip_conflict(struct swarm *sw, const uint8_t *unskip, char *msg,
				   size_t msg_len)
{
	size_t n = sw->meta->file_count;
	uint8_t *skip = malloc(n ? n : 1);
	if (!skip) {
		snprintf(msg, msg_len, "out of memory");
		return msg;
	}
	for (size_t f = 0; f < n; f++)
		skip[f] = !unskip[f];
	struct join_check *jc = NULL;
	int rc = join_check_new(sw->root, sw->meta, false, skip, &jc);
	free(skip);
	if (rc) {
		snprintf(msg, msg_len, "cannot use %s: %s", sw->root, strerror(-rc));
		return msg;
	}
	/* A file of the right size could be the data, but only hashing could
	 * say so: it is the user's, so it is in the way like any other. */
	join_check_refuse_unhashed(jc);
	const char *c = join_check_conflict(jc);
	if (c)
		snprintf(msg, msg_len, "%s", c);
	join_check_free(jc);
	return c ? msg : NULL;
}

int swarms_set_files(struct node *node, struct swarm *sw, const int *prio, int sequential,
		     char *msg, size_t msg_len)
{
	msg[0] = '\0';
	if (sw->role != SWARM_ROLE_JOIN)
		return -EPERM;
	const struct metainfo *mi = sw->meta;
	if (!mi)
		return -ENODATA;
	if (sw->job || sw->remove_pending)
		return -EBUSY;
	size_t n = mi->file_count;
	uint8_t *np = malloc(n ? n : 1), *unskip = calloc(n ? n : 1, 1);
	if (!np || !unskip) {
		free(np);
		free(unskip);
		return -ENOMEM;
	}
	bool any_unskip = false;
	for (size_t f = 0; f < n; f++) {
		np[f] = (uint8_t)(prio && prio[f] >= 0 ? prio[f] : (int)swarm_file_prio(sw, f));
		/* Back from skipped, and never made: it is created now. */
		if (np[f] != SWARM_PRIO_SKIP && sw->file_access &&
		    sw->file_access[f] == STORAGE_SKIP)
			unskip[f] = any_unskip = true;
	}
	int rc = 0;
	if (any_unskip && unskip_conflict(sw, unskip, msg, msg_len)) {
		rc = -EEXIST;
		goto out;
	}
	/* Skipping a file not yet made (decided "to create"): it never will
	 * be.  A file already on disk stays as it is. */
	for (size_t f = 0; sw->file_access && f < n; f++) {
		if (unskip[f])
			sw->file_access[f] = STORAGE_CREATE;
		else if (np[f] == SWARM_PRIO_SKIP && sw->file_access[f] == STORAGE_CREATE)
			sw->file_access[f] = STORAGE_SKIP;
	}
	/* Pieces of an un-skipped file that were had hold its bytes in the
	 * part file, not in the file: fetched again. */
	bool dropped = false;
	for (size_t f = 0; f < n; f++) {
		for (uint32_t i = 0; unskip[f] && i < mi->files[f].piece_count; i++) {
			uint32_t p = mi->files[f].first_piece + i;
			if (swarm_have_test(sw, p)) {
				swarm_have_clear(sw, p);
				dropped = true;
			}
		}
	}
	free(sw->file_prio);
	sw->file_prio = np;
	np = NULL;
	if (sequential >= 0)
		sw->sequential = sequential != 0;
	if (swarm_selection_update(sw) != 0) {
		rc = -ENOMEM;
		goto out;
	}
	if (swarm_db_save_selection(node, sw) != 0 ||
	    (dropped && engine_swarm_save_have(node, sw) != 0)) {
		rc = -EIO;
		goto out;
	}
	rc = engine_swarm_selection_changed(node->engine, sw);
	if (rc != 0 && rc != -ENOMEM && rc != -EIO) {
		/* A file could not be made (one appeared at its name since the
		 * check): it, and those after it, are skipped again - recorded
		 * so - and the rest of the change stands. */
		snprintf(msg, msg_len, "%s%s", sw->error,
			 rc == -EEXIST ? " (it appeared after the check; shoal never writes into a "
					 "file it did not create); it stays skipped"
				       : "; it stays skipped");
		sw->error[0] = '\0';
		for (size_t f = 0; f < n; f++)
			if (unskip[f] && sw->file_access[f] == STORAGE_SKIP)
				sw->file_prio[f] = SWARM_PRIO_SKIP;
		if (swarm_selection_update(sw) != 0 || swarm_db_save_selection(node, sw) != 0 ||
		    engine_swarm_selection_changed(node->engine, sw) != 0)
			log_error("swarm %" PRId64 ": cannot restore its file selection", sw->id);
		rc = -EEXIST;
	}
	/* Pieces of an un-skipped file in progress hold bytes in the part
	 * file, which the new file lacks: the picker starts them afresh (a
	 * new generation), and had ones were dropped above. */
	if (any_unskip || dropped)
		engine_swarm_have_changed(node->engine, sw);
	if (rc == -EEXIST)
		goto out;
	if (sw->state == SWARM_SEEDING && !swarm_done(sw))
		swarm_set_state(node, sw, SWARM_DOWNLOADING);
	else if (sw->state == SWARM_DOWNLOADING && swarm_done(sw))
		swarm_set_state(node, sw, SWARM_SEEDING);
	if (swarm_db_save_state(node, sw) != 0)
		rc = -EIO;
	bool any_skipped = false;
	for (size_t f = 0; sw->file_access && f < n; f++)
		any_skipped = any_skipped || sw->file_access[f] == STORAGE_SKIP;
	if (!any_skipped)
		remove_part_file(node, sw); /* nothing of a skipped file is kept any more */
	log_info("swarm %" PRId64 ": file selection changed (%" PRIu32 " of %" PRIu32
		 " pieces wanted%s)", sw->id, sw->wanted ? sw->wanted_count : mi->total_pieces,
		 mi->total_pieces, sw->sequential ? ", sequential" : "");
out:
	free(np);
	free(unskip);
	return rc;
}

int swarms_pause(struct node *node, struct swarm *sw)
{
	return set_paused(node, sw, true);
}

int swarms_resume(struct node *node, struct swarm *sw)
{
	return set_paused(node, sw, false);
}

int swarms_verify(struct node *node, struct swarm *sw)
{
	if (sw->state == SWARM_DOWNLOADING || sw->state == SWARM_METADATA)
		return -EINPROGRESS;
	return sw->meta ? share_verify_start(node, sw, true) : -EINVAL;
}

/* ------------------------------------------------------------ remove */

int swarms_remove(struct node *node, struct swarm *sw, bool delete_data, int *files_deleted)
{
	if (files_deleted)
		*files_deleted = 0;
	if (delete_data && sw->role == SWARM_ROLE_SHARE)
		return -EPERM;
	trackers_swarm_stop(node, sw);
	engine_swarm_stop(node->engine, sw);
	int deleted = delete_data ? swarm_delete_data(sw) : 0;
	if (files_deleted)
		*files_deleted = deleted;
	if (swarm_db_delete(node, sw) != 0)
		return -EIO;
	remove_part_file(node, sw);
	if (sw->job || engine_swarm_busy(sw)) {
		share_job_cancel(sw->job);
		swarm_mark_removed(node, sw);
		return 1;
	}
	swarms_free(node, sw);
	return 0;
}

/* ------------------------------------------------------------ limits */

int swarms_set_limits(struct node *node, struct swarm *sw, uint64_t up, uint64_t down)
{
	sw->upload_limit = up;
	sw->download_limit = down;
	return swarm_db_save_limits(node, sw) != 0 ? -EIO : 0;
}

int swarms_set_global_limits(struct node *node, uint64_t up, uint64_t down)
{
	return engine_set_limits(node->engine, up, down) != 0 ? -EINVAL : 0;
}

/* ----------------------------------------------------------- figures */

void swarms_node_stats(struct node *node, struct engine_node_stats *out)
{
	engine_node_stats(node->engine, out);
}

void swarms_swarm_stats(const struct swarm *sw, struct engine_swarm_stats *out)
{
	engine_swarm_stats(sw, out);
}

void swarms_each_peer(const struct swarm *sw, void (*fn)(void *ctx, const struct engine_peer_info *),
		      void *ctx)
{
	engine_each_peer(sw, fn, ctx);
}

unsigned swarms_peer_count(struct node *node)
{
	return engine_peer_count(node->engine);
}

/* --------------------------------------------------- start and stop */

void swarms_start_all(struct node *node)
{
	for (struct swarm *sw = node->swarms; sw; sw = sw->next) {
		if (sw->state == SWARM_ERROR || sw->state == SWARM_PAUSED)
			continue;
		/* Joined swarms too: their files may have been changed, or a
		 * stop without a final sync may have left writes the recorded
		 * mtimes do not describe.  Files whose mtime matches are not
		 * read; a clean stop records every file's mtime. */
		/* The stored state may predate the metadata (a kill soon after
		 * it arrived); the check returns the swarm to this state. */
		if (sw->meta && sw->role == SWARM_ROLE_JOIN && sw->state == SWARM_METADATA)
			swarm_set_state(node, sw, SWARM_DOWNLOADING);
		if (sw->meta) {
			if (share_verify_start(node, sw, false) != 0)
				log_warn("swarm %" PRId64 ": cannot start its check", sw->id);
		} else if (start_swarm(node, sw) != 0) {
			log_warn("swarm %" PRId64 ": cannot start transfers", sw->id);
		}
	}
}

void swarms_cancel_jobs(struct node *node)
{
	for (struct swarm *sw = node->swarms; sw; sw = sw->next)
		share_job_cancel(sw->job);
}

void swarms_free_all(struct node *node)
{
	while (node->swarms)
		swarms_free(node, node->swarms);
}

/* ---------------------------------------------------------- trackers */

/* Record the list and, for a share, its .torrent. */
static int save_trackers(struct node *node, struct swarm *sw)
{
	struct tracker_list *l = malloc(sizeof *l);
	if (!l)
		return -ENOMEM;
	trackers_swarm_list(sw, l);
	int rc = trackers_db_save(node, sw, l);
	free(l);
	if (rc == 0)
		write_share_trackers(node, sw);
	return rc;
}

int swarms_add_trackers(struct node *node, struct swarm *sw, const struct tracker_list *add,
			bool as_given, size_t *added_out)
{
	struct tracker_list *l = malloc(sizeof *l);
	size_t added = 0;
	if (added_out)
		*added_out = 0;
	if (!l)
		return -ENOMEM;
	trackers_swarm_list(sw, l);
	/* New tiers go after the swarm's own, so a tracker added later is
	 * announced to beside them rather than only when they fail. */
	unsigned base = l->count && !as_given ? l->e[l->count - 1].tier + 1 : 0;
	int rc = 0;
	for (size_t i = 0; i < add->count && rc == 0; i++) {
		unsigned tier = add->e[i].tier + base;
		if (tier > TRACKER_MAX_TIER)
			tier = TRACKER_MAX_TIER;
		int r = tracker_list_add(l, tier, add->e[i].url);
		if (r == 0)
			added++;
		else if (r == -ENOSPC)
			rc = -ENOSPC;
		else if (r < 0)
			rc = -EINVAL;
	}
	if (added && trackers_swarm_set(node, sw, l) != 0)
		rc = -ENOMEM;
	free(l);
	if (added && rc != -ENOMEM) {
		if (save_trackers(node, sw) != 0)
			return -EIO;
		trackers_swarm_start(node, sw); /* no-op unless running now with trackers */
	}
	if (added_out)
		*added_out = added;
	return rc;
}

int swarms_remove_tracker(struct node *node, struct swarm *sw, const char *url)
{
	struct tracker_list *l = malloc(sizeof *l), *keep = malloc(sizeof *keep);
	int rc = -ENOENT;
	if (!l || !keep) {
		free(l);
		free(keep);
		return -ENOMEM;
	}
	trackers_swarm_list(sw, l);
	memset(keep, 0, sizeof *keep);
	for (size_t i = 0; i < l->count; i++) {
		if (strcmp(l->e[i].url, url) == 0)
			rc = 0;
		else
			keep->e[keep->count++] = l->e[i];
	}
	if (rc == 0 && trackers_swarm_set(node, sw, keep) != 0)
		rc = -ENOMEM;
	if (rc == 0 && save_trackers(node, sw) != 0)
		rc = -EIO;
	free(l);
	free(keep);
	return rc;
}

int swarms_reannounce(struct node *node, struct swarm *sw)
{
	return trackers_swarm_reannounce(node, sw);
}

void swarms_each_tracker(const struct swarm *sw,
			 void (*fn)(void *ctx, const struct trackers_info *), void *ctx)
{
	trackers_swarm_each(sw, fn, ctx);
}
