/* api_swarms.c: endpoints under /api/v1/swarms: share, list, show, verify,
 * pause, resume, remove. */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>

#include "common/log.h"
#include "common/util.h"
#include "node/api-internal.h"
#include "node/engine.h"
#include "node/joincheck.h"
#include "node/node.h"
#include "node/share.h"
#include "node/swarm.h"
#include "node/workers.h"
#include "transfer/magnet.h"
#include "transfer/metainfo.h"

static void api_swarms_list(struct api_req *r)
{
	json_t *list = json_array();
	for (struct swarm *sw = r->node->swarms; sw; sw = sw->next)
		if (!sw->remove_pending)
			json_array_append_new(list, swarm_to_json(r->node, sw, false));
	api_reply(r, 200, json_pack("{s:o}", "swarms", list));
}

/* {"share": "/abs/dir"}: start sharing, or return the swarm already sharing it. */
static void share_dir(struct api_req *r, const char *path)
{
	if (path[0] != '/') {
		api_reply_error(r, 400, "bad_path",
				"share needs an absolute path (got '%s'); the daemon does not know "
				"your working directory",
				path);
		return;
	}
	char root[PATH_MAX];
	if (!realpath(path, root)) {
		api_reply_error(r, errno == ENOENT ? 404 : 400, "bad_path", "%s: %s", path,
				strerror(errno));
		return;
	}
	struct stat st;
	if (stat(root, &st) != 0 || !S_ISDIR(st.st_mode)) {
		api_reply_error(r, 400, "bad_path", "%s is not a directory", path);
		return;
	}
	if (strcmp(root, "/") == 0) {
		api_reply_error(r, 400, "bad_path", "refusing to share the whole file system");
		return;
	}
	const char *name = strrchr(root, '/') + 1;
	if (!metainfo_component_ok((const uint8_t *)name, strlen(name))) {
		api_reply_error(r, 400, "bad_path",
				"the directory name is not valid UTF-8 or not allowed in a torrent");
		return;
	}
	struct swarm *sw = swarm_find_by_root(r->node, SWARM_ROLE_SHARE, root);
	if (sw && !sw->remove_pending && sw->state != SWARM_ERROR) {
		/* Same directory again: same swarm; re-check only what changed. */
		if (!sw->job && sw->meta) {
			int rc = share_verify_start(r->node, sw, false);
			if (rc)
				log_warn("swarm %" PRId64 ": cannot start a check: %s", sw->id,
					 strerror(-rc));
		}
		api_reply(r, 200, json_pack("{s:o,s:b}", "swarm", swarm_to_json(r->node, sw, false),
					    "existing", 1));
		return;
	}
	if (sw && sw->state == SWARM_ERROR && !sw->in_db && !sw->job)
		swarm_free(r->node, sw); /* a failed earlier attempt: try afresh */
	sw = swarm_new(r->node, 0, SWARM_ROLE_SHARE, name, root);
	if (!sw) {
		api_reply_error(r, 500, "internal", "out of memory");
		return;
	}
	int rc = share_start(r->node, sw);
	if (rc) {
		swarm_free(r->node, sw);
		api_reply_error(r, 503, "busy", "cannot start hashing: %s", strerror(-rc));
		return;
	}
	log_info("swarm %" PRId64 ": hashing %s", sw->id, root);
	api_reply(r, 202, json_pack("{s:o,s:b}", "swarm", swarm_to_json(r->node, sw, false),
				    "existing", 0));
}

/* Read a .torrent file (absolute path) into a parsed metainfo. */
static int load_torrent(struct api_req *r, const char *path, struct metainfo *mi)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		api_reply_error(r, 400, "bad_link", "%s: %s", path, strerror(errno));
		return -1;
	}
	uint8_t *data = malloc(METAINFO_MAX_TORRENT_SIZE + 1);
	size_t n = data ? fread(data, 1, METAINFO_MAX_TORRENT_SIZE + 1, f) : 0;
	fclose(f);
	int rc = !data ? -ENOMEM : n > METAINFO_MAX_TORRENT_SIZE ? METAINFO_E_TOO_BIG
								 : metainfo_parse_torrent(mi, data, data + n);
	free(data);
	if (rc) {
		api_reply_error(r, 400, "bad_link", "%s is not a usable BitTorrent v2 file: %s", path,
				metainfo_strerror(rc));
		return -1;
	}
	return 0;
}

/* Add the "peers" list of a join request; returns false after replying. */
static bool add_peers(struct api_req *r, struct swarm *sw, const struct magnet *mg)
{
	json_t *peers = json_object_get(r->body, "peers"), *v;
	size_t i;
	if (peers && !json_is_array(peers)) {
		api_reply_error(r, 400, "bad_request", "\"peers\" must be a list of \"HOST:PORT\"");
		return false;
	}
	json_array_foreach(peers, i, v) {
		char host[256];
		uint16_t port;
		if (!json_is_string(v) ||
		    parse_hostport(json_string_value(v), host, sizeof host, &port) != 0 ||
		    engine_add_peer(r->node->engine, sw, host, port, "user") == -EINVAL) {
			api_reply_error(r, 400, "bad_request",
					"bad peer %s: expected a numeric HOST:PORT ([v6]:PORT)",
					json_is_string(v) ? json_string_value(v) : "(not a string)");
			return false;
		}
	}
	for (size_t k = 0; mg && k < mg->peer_count; k++)
		if (engine_add_peer(r->node->engine, sw, mg->peers[k].host, mg->peers[k].port,
				    "magnet") != 0)
			log_debug("magnet peer %s not usable", mg->peers[k].host);
	return true;
}

/* Resolve where a join downloads: `into` (absolute; created with its
 * parents when missing) or the daemon's download-dir.  An `into` must not
 * be a symlink (storage opens it with O_NOFOLLOW, and everything below it
 * too); symlinks above it are the user's own layout and allowed.  The
 * download-dir is the user's setting: a symlink there is resolved.
 * Fills `dir` (resolved) and returns true, or replies and returns false. */
static bool join_dir(struct api_req *r, char dir[PATH_MAX])
{
	json_t *v = json_object_get(r->body, "into");
	const char *into = json_string_value(v);
	if (v && !json_is_null(v) && (!into || into[0] != '/')) {
		api_reply_error(r, 400, "bad_path",
				"\"into\" must be an absolute directory path to download into "
				"(or left out for the daemon's download-dir)");
		return false;
	}
	bool configured = !into;
	if (!into) {
		into = r->node->cfg.download_dir;
		if (!into[0]) {
			api_reply_error(r, 400, "bad_path",
					"no download directory: give \"into\", or set download-dir "
					"for the daemon (neither XDG_DOWNLOAD_DIR nor HOME is set)");
			return false;
		}
	}
	struct stat st;
	int rc = lstat(into, &st) == 0 ? 0 : -errno;
	if (rc == -ENOENT) {
		rc = mkdir_p(into, 0755);
		if (rc == 0)
			rc = lstat(into, &st) == 0 ? 0 : -errno;
		if (rc == 0)
			log_info("created %s to download into", into);
	}
	/* The configured download-dir is the user's choice: a symlink there
	 * is resolved (once: the daemon resolves it at start, or here when it
	 * was created since), and only what lies below it is checked. */
	char resolved[PATH_MAX];
	if (rc == 0 && configured && S_ISLNK(st.st_mode) && realpath(into, resolved) &&
	    strlen(resolved) < sizeof r->node->cfg.download_dir) {
		snprintf(r->node->cfg.download_dir, sizeof r->node->cfg.download_dir, "%s", resolved);
		into = r->node->cfg.download_dir;
		rc = lstat(into, &st) == 0 ? 0 : -errno;
	}
	if (rc == 0 && S_ISLNK(st.st_mode)) {
		bool known = realpath(into, resolved) != NULL;
		api_reply_error(r, 409, "path_conflict",
				"%s is a symbolic link; shoal never downloads through one (give the "
				"directory it points to%s%s)",
				into, known ? ": " : "", known ? resolved : "");
		return false;
	}
	if (rc != 0 || !S_ISDIR(st.st_mode)) {
		api_reply_error(r, 400, "bad_path", "%s is not a directory%s%s", into,
				rc ? ": " : "", rc ? strerror(-rc) : "");
		return false;
	}
	if (!realpath(into, dir)) {
		api_reply_error(r, 400, "bad_path", "%s: %s", into, strerror(errno));
		return false;
	}
	return true;
}

/* A .torrent join whose target already holds files of the right sizes:
 * they are hashed on a worker and the HTTP reply waits for the verdict. */
struct join_hash_job {
	struct api_req r;       /* a copy; body is ours (a reference) */
	struct metainfo *mi;    /* owned until handed to the swarm */
	struct join_check *jc;  /* owned */
	char dir[PATH_MAX];
};

static void join_finish(struct api_req *r, const char *dir, struct metainfo *mi,
			const struct magnet *mg, struct join_check *jc);

static void work_join_hash(void *arg)
{
	struct join_hash_job *j = arg;
	join_check_hash(j->jc);
}

static void done_join_hash(void *arg)
{
	struct join_hash_job *j = arg;
	if (j->r.node->api) { /* else the daemon is stopping: nobody to answer */
		join_finish(&j->r, j->dir, j->mi, NULL, j->jc);
	} else {
		metainfo_destroy(j->mi);
		free(j->mi);
	}
	join_check_free(j->jc);
	json_decref(j->r.body);
	free(j);
}

/* {"link": magnet or /abs/file.torrent, "into": "/abs/dir", "peers": [...],
 *  "overwrite": false} */
static void join_link(struct api_req *r, const char *link)
{
	struct magnet mg;
	struct metainfo *mi = NULL;
	bool is_magnet = strncmp(link, "magnet:", 7) == 0;
	memset(&mg, 0, sizeof mg);
	json_t *ow = json_object_get(r->body, "overwrite");
	if (ow && !json_is_boolean(ow)) {
		api_reply_error(r, 400, "bad_request", "\"overwrite\" must be true or false");
		return;
	}
	char dir[PATH_MAX];
	if (is_magnet) {
		int rc = magnet_parse(&mg, (const uint8_t *)link, (const uint8_t *)link + strlen(link));
		if (rc) {
			api_reply_error(r, 400, "bad_link", "not a usable magnet link: %s",
					magnet_strerror(rc));
			return;
		}
		if (join_dir(r, dir))
			join_finish(r, dir, NULL, &mg, NULL);
		return;
	}
	if (link[0] != '/') {
		api_reply_error(r, 400, "bad_link",
				"a .torrent must be given by its absolute path (got '%s')", link);
		return;
	}
	mi = calloc(1, sizeof *mi);
	if (!mi || load_torrent(r, link, mi) != 0) {
		free(mi);
		if (!mi)
			api_reply_error(r, 500, "internal", "out of memory");
		return;
	}
	if (!join_dir(r, dir)) {
		metainfo_destroy(mi);
		free(mi);
		return;
	}
	struct swarm *known = swarm_find_by_hash(r->node, mi->info_hash);
	if (known && !known->remove_pending) {
		join_finish(r, dir, mi, NULL, NULL); /* answers "existing" */
		return;
	}
	/* What is already where the files go (node/joincheck.h). */
	struct join_check *jc = NULL;
	int rc = join_check_new(dir, mi, json_is_true(ow), &jc);
	const char *conflict = rc == 0 ? join_check_conflict(jc) : NULL;
	if (rc || conflict) {
		if (rc)
			api_reply_error(r, 409, "path_conflict", "cannot use %s: %s", dir,
					strerror(-rc));
		else
			api_reply_error(r, 409, "path_conflict", "%s", conflict);
		join_check_free(jc);
		metainfo_destroy(mi);
		free(mi);
		return;
	}
	if (!join_check_needs_hash(jc)) {
		join_finish(r, dir, mi, NULL, jc);
		join_check_free(jc);
		return;
	}
	struct join_hash_job *j = calloc(1, sizeof *j);
	if (j) {
		j->r = *r;
		j->r.param = NULL;
		j->r.body = json_incref(r->body);
		j->mi = mi;
		j->jc = jc;
		snprintf(j->dir, sizeof j->dir, "%s", dir);
	}
	if (!j || workers_submit(r->node->workers, work_join_hash, done_join_hash, j) != 0) {
		if (j)
			json_decref(j->r.body);
		free(j);
		join_check_free(jc);
		metainfo_destroy(mi);
		free(mi);
		api_reply_error(r, 503, "busy", "cannot start checking the existing files");
		return;
	}
	/* The reply is sent by done_join_hash: evhttp keeps the request (even
	 * if the client goes away) until then. */
}

/* Create the swarm of a join (or answer "existing").  Takes `mi`; `jc`
 * (NULL for a magnet) has decided what happens to each file. */
static void join_finish(struct api_req *r, const char *dir, struct metainfo *mi,
			const struct magnet *mg, struct join_check *jc)
{
	uint8_t hash[32];
	char name[256];
	if (mg) {
		memcpy(hash, mg->info_hash, 32);
		char hex[65];
		hex_encode(hash, 32, hex);
		snprintf(name, sizeof name, "%s", mg->name[0] ? mg->name : hex);
	} else {
		if (jc) {
			const char *conflict = join_check_conflict(jc);
			if (conflict) {
				api_reply_error(r, 409, "path_conflict", "%s", conflict);
				metainfo_destroy(mi);
				free(mi);
				return;
			}
		}
		memcpy(hash, mi->info_hash, 32);
		snprintf(name, sizeof name, "%s", mi->name);
	}
	struct swarm *sw = swarm_find_by_hash(r->node, hash);
	if (sw && !sw->remove_pending) {
		if (mi) {
			metainfo_destroy(mi);
			free(mi);
		}
		if (sw->xfer && !add_peers(r, sw, mg))
			return;
		api_reply(r, 200, json_pack("{s:o,s:b}", "swarm", swarm_to_json(r->node, sw, false),
					    "existing", 1));
		return;
	}
	sw = mi && !jc ? NULL : swarm_new(r->node, 0, SWARM_ROLE_JOIN, name, dir);
	if (!sw) {
		if (mi) {
			metainfo_destroy(mi);
			free(mi);
		}
		api_reply_error(r, 500, "internal", "out of memory");
		return;
	}
	memcpy(sw->info_hash, hash, 32);
	sw->has_info_hash = true;
	sw->meta = mi;
	sw->overwrite = json_is_true(json_object_get(r->body, "overwrite"));
	if (mi) {
		sw->have = calloc((mi->total_pieces + 7) / 8 + 1, 1);
		sw->mtimes_ns = calloc(mi->file_count ? mi->file_count : 1, sizeof *sw->mtimes_ns);
		sw->file_access = join_check_access(jc);
		if (!sw->have || !sw->mtimes_ns || !sw->file_access) {
			swarm_free(r->node, sw);
			api_reply_error(r, 500, "internal", "out of memory");
			return;
		}
		/* Adopted files are downloaded data: their pieces are had. */
		sw->have_count = join_check_mark_have(jc, sw->have);
	}
	sw->state = !mi ? SWARM_METADATA
		    : sw->have_count == mi->total_pieces ? SWARM_SEEDING
							  : SWARM_DOWNLOADING;
	if (swarm_db_insert(r->node, sw) != 0) {
		swarm_free(r->node, sw);
		api_reply_error(r, 500, "database", "cannot record the swarm");
		return;
	}
	if (engine_swarm_start(r->node->engine, sw) != 0) {
		api_reply_error(r, 500, "internal", "cannot start the swarm");
		if (swarm_remove(r->node, sw) < 0)
			log_error("swarm %" PRId64 ": cannot undo the join", sw->id);
		return;
	}
	if (sw->state == SWARM_ERROR) {
		/* Files could not be created (one appeared since the check, say):
		 * xfer_setup_meta has unlinked the files and empty directories this
		 * join created (storage_undo_create) and wrote into no other; say
		 * why and forget the swarm. */
		api_reply_error(r, 409, "path_conflict", "%s", sw->error);
		engine_swarm_stop(r->node->engine, sw);
		if (swarm_remove(r->node, sw) < 0)
			log_error("swarm %" PRId64 ": cannot undo the join", sw->id);
		return;
	}
	if (!add_peers(r, sw, mg)) {
		if (swarm_remove(r->node, sw) < 0)
			log_error("swarm %" PRId64 ": cannot undo the join", sw->id);
		return;
	}
	swarm_write_torrent(r->node, sw);
	if (sw->have_count > 0)
		log_info("swarm %" PRId64 ": joining %s into %s, %" PRIu32
			 " pieces already there (adopted)", sw->id, name, dir, sw->have_count);
	else
		log_info("swarm %" PRId64 ": joining %s into %s", sw->id, name, dir);
	api_reply(r, 202, json_pack("{s:o,s:b}", "swarm", swarm_to_json(r->node, sw, false),
				    "existing", 0));
}

static void handle_swarms_add(struct api_req *r)
{
	if (!r->body) {
		api_reply_error(r, 400, "bad_request",
				"send {\"share\": \"/absolute/dir\"} as application/json");
		return;
	}
	json_t *share = json_object_get(r->body, "share");
	json_t *link = json_object_get(r->body, "link");
	if (share && json_is_string(share) && !link) {
		share_dir(r, json_string_value(share));
		return;
	}
	if (link && json_is_string(link) && !share) {
		join_link(r, json_string_value(link));
		return;
	}
	api_reply_error(r, 400, "bad_request",
			"expected exactly one of \"share\" (a directory) or \"link\" (a magnet "
			"link or .torrent path)");
}

static struct swarm *swarm_or_404(struct api_req *r)
{
	struct swarm *sw = swarm_find(r->node, r->param);
	if (!sw || sw->remove_pending)
		api_reply_error(r, 404, "no_such_swarm",
				"no swarm '%s' (use its id or at least 8 hex digits of its info-hash)",
				r->param);
	return sw && !sw->remove_pending ? sw : NULL;
}

static void handle_swarm_get(struct api_req *r)
{
	struct swarm *sw = swarm_or_404(r);
	if (sw)
		api_reply(r, 200, swarm_to_json(r->node, sw, true));
}

static void handle_swarm_peers(struct api_req *r)
{
	struct swarm *sw = swarm_or_404(r);
	if (sw)
		api_reply(r, 200, json_pack("{s:I,s:o}", "id", (json_int_t)sw->id, "peers",
					    engine_peers_json(sw)));
}

static void handle_swarm_delete(struct api_req *r)
{
	struct swarm *sw = swarm_or_404(r);
	if (!sw)
		return;
	bool delete_data = r->body && json_is_true(json_object_get(r->body, "delete_data"));
	if (r->body && json_is_true(json_object_get(r->body, "delete_data")) &&
	    sw->role == SWARM_ROLE_SHARE) {
		api_reply_error(r, 400, "bad_request",
				"delete_data is refused for shared directories: shoal never deletes "
				"what you shared");
		return;
	}
	int64_t id = sw->id;
	engine_swarm_stop(r->node->engine, sw);
	int deleted = delete_data ? swarm_delete_data(sw) : 0;
	int rc = swarm_remove(r->node, sw);
	if (rc < 0) {
		api_reply_error(r, 500, "database", "cannot remove swarm %" PRId64, id);
		return;
	}
	log_info("swarm %" PRId64 ": removed%s", id, delete_data ? " with its data" : "");
	api_reply(r, 200, json_pack("{s:I,s:b,s:i}", "removed", (json_int_t)id, "pending", rc == 1,
				    "files_deleted", deleted));
}

static void handle_swarm_verify(struct api_req *r)
{
	struct swarm *sw = swarm_or_404(r);
	if (!sw)
		return;
	if (sw->state == SWARM_DOWNLOADING || sw->state == SWARM_METADATA) {
		api_reply_error(r, 409, "busy",
				"swarm %" PRId64 " is downloading (every piece is checked as it "
				"arrives); pause it first to re-check its files",
				sw->id);
		return;
	}
	int rc = sw->meta ? share_verify_start(r->node, sw, true) : -EINVAL;
	if (rc == -EBUSY) {
		api_reply_error(r, 409, "busy", "swarm %" PRId64 " is already %s", sw->id,
				swarm_state_name(sw->state));
		return;
	}
	if (rc) {
		api_reply_error(r, 409, "not_ready", "swarm %" PRId64 " has no metadata to verify yet",
				sw->id);
		return;
	}
	api_reply(r, 202, swarm_to_json(r->node, sw, false));
}

static void set_paused(struct api_req *r, bool pause)
{
	struct swarm *sw = swarm_or_404(r);
	if (!sw)
		return;
	if (sw->job || sw->state == SWARM_ERROR) {
		api_reply_error(r, 409, "busy", "swarm %" PRId64 " is %s", sw->id,
				swarm_state_name(sw->state));
		return;
	}
	if (pause && sw->state != SWARM_PAUSED) {
		engine_swarm_stop(r->node->engine, sw);
		sw->resume_state = sw->state;
		sw->state = SWARM_PAUSED;
	} else if (!pause && sw->state == SWARM_PAUSED) {
		sw->state = sw->resume_state;
		if (engine_swarm_start(r->node->engine, sw) != 0) {
			api_reply_error(r, 500, "internal", "cannot restart transfers");
			return;
		}
	}
	if (swarm_db_save_state(r->node, sw) != 0) {
		api_reply_error(r, 500, "database", "cannot save the swarm's state");
		return;
	}
	api_reply(r, 200, swarm_to_json(r->node, sw, false));
}

/* Read "upload" and "download" (bytes/s as a number, or text like 500K;
 * 0 = unlimited) into up and down when present.  Replies and returns
 * false on a bad value. */
static bool read_limits(struct api_req *r, uint64_t *up, uint64_t *down)
{
	const char *keys[2] = { "upload", "download" };
	uint64_t *out[2] = { up, down };
	if (!r->body) {
		api_reply_error(r, 400, "bad_request", "send {\"upload\": RATE, \"download\": RATE}");
		return false;
	}
	for (int i = 0; i < 2; i++) {
		json_t *v = json_object_get(r->body, keys[i]);
		if (!v)
			continue;
		uint64_t rate;
		if (json_is_integer(v) && json_integer_value(v) >= 0) {
			rate = (uint64_t)json_integer_value(v);
		} else if (!json_is_string(v) || parse_rate(json_string_value(v), &rate) != 0) {
			api_reply_error(r, 400, "bad_request",
					"\"%s\" must be bytes/s (a number, or text like 500K or 2M; 0 = "
					"unlimited)",
					keys[i]);
			return false;
		}
		*out[i] = rate;
	}
	return true;
}

static void handle_swarm_limits(struct api_req *r)
{
	struct swarm *sw = swarm_or_404(r);
	if (!sw)
		return;
	uint64_t up = sw->upload_limit, down = sw->download_limit;
	if (!read_limits(r, &up, &down))
		return;
	sw->upload_limit = up;
	sw->download_limit = down;
	if (swarm_db_save_limits(r->node, sw) != 0) {
		api_reply_error(r, 500, "database", "cannot save the limits");
		return;
	}
	api_reply(r, 200, swarm_to_json(r->node, sw, false));
}

void api_set_global_limits(struct api_req *r)
{
	uint64_t up = r->node->cfg.upload_limit, down = r->node->cfg.download_limit;
	if (!read_limits(r, &up, &down))
		return;
	if (engine_set_limits(r->node->engine, up, down) != 0) {
		api_reply_error(r, 400, "bad_request", "those limits cannot be applied");
		return;
	}
	api_reply(r, 200, json_pack("{s:I,s:I}", "upload_limit", (json_int_t)up, "download_limit",
				    (json_int_t)down));
}

static void handle_swarm_pause(struct api_req *r)
{
	set_paused(r, true);
}

static void handle_swarm_resume(struct api_req *r)
{
	set_paused(r, false);
}

const struct api_route api_swarm_routes[] = {
	{ API_GET, "/api/v1/swarms", api_swarms_list },
	{ API_POST, "/api/v1/swarms", handle_swarms_add },
	{ API_GET, "/api/v1/swarms/{id}", handle_swarm_get },
	{ API_DELETE, "/api/v1/swarms/{id}", handle_swarm_delete },
	{ API_GET, "/api/v1/swarms/{id}/peers", handle_swarm_peers },
	{ API_POST, "/api/v1/swarms/{id}/verify", handle_swarm_verify },
	{ API_POST, "/api/v1/swarms/{id}/limits", handle_swarm_limits },
	{ API_POST, "/api/v1/swarms/{id}/pause", handle_swarm_pause },
	{ API_POST, "/api/v1/swarms/{id}/resume", handle_swarm_resume },
};
const size_t api_swarm_routes_count = sizeof api_swarm_routes / sizeof api_swarm_routes[0];
