/* api_swarms.c: endpoints under /api/v1/swarms: share, list, show, verify,
 * pause, resume, remove. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>
#include <sodium.h>

#include "common/addr.h"
#include "common/log.h"
#include "common/util.h"
#include "node/api_server.h"
#include "node/engine.h"
#include "node/node.h"
#include "node/swarm.h"
#include "node/swarms.h"
#include "transfer/magnet.h"
#include "transfer/metainfo.h"
#include "transfer/tracker.h"

/* ------------------------------------------------ GET /api/v1/swarms */

static const char *const query_keys = "limit, after, state, q and sort";

/* A decimal number without sign, spaces or leading junk, at most `max`. */
static bool parse_count(const char *s, uint64_t max, uint64_t *out)
{
	if (!*s || strlen(s) > 19)
		return false;
	uint64_t v = 0;
	for (const char *p = s; *p; p++) {
		if (*p < '0' || *p > '9')
			return false;
		v = v * 10 + (uint64_t)(*p - '0');
	}
	if (v > max)
		return false;
	*out = v;
	return true;
}

/* "seeding,downloading" into bits of enum swarm_state. */
static bool parse_states(const char *s, uint32_t *out, char *err, size_t err_len)
{
	uint32_t bits = 0;
	while (true) {
		size_t n = strcspn(s, ",");
		int found = -1;
		for (int st = 0; st < SWARM_STATE_COUNT && found < 0; st++) {
			const char *name = swarm_state_name((enum swarm_state)st);
			if (strlen(name) == n && strncmp(name, s, n) == 0)
				found = st;
		}
		if (found < 0) {
			char names[160] = "";
			for (int st = 0; st < SWARM_STATE_COUNT; st++)
				snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s",
					 st ? ", " : "", swarm_state_name((enum swarm_state)st));
			snprintf(err, err_len,
				 "state: '%.*s' is not a state (give one or more of %s, separated "
				 "by commas)",
				 (int)(n > 64 ? 64 : n), s, names);
			return false;
		}
		bits |= 1u << found;
		if (!s[n])
			break;
		s += n + 1;
	}
	*out = bits;
	return true;
}

int api_swarms_query_parse(const char *query, struct api_swarms_query *out, char *err,
			   size_t err_len)
{
	memset(out, 0, sizeof *out);
	if (!query || !*query)
		return 0;
	struct evkeyvalq params;
	TAILQ_INIT(&params);
	if (evhttp_parse_query_str(query, &params) != 0) {
		snprintf(err, err_len, "the query string cannot be parsed (expected "
				       "NAME=VALUE pairs joined by &, percent-encoded)");
		return -EINVAL;
	}
	int rc = 0;
	unsigned seen = 0;
	const char *const keys[] = { "limit", "after", "state", "q", "sort" };
	struct evkeyval *kv;
	TAILQ_FOREACH(kv, &params, next) {
		const char *k = kv->key, *v = kv->value;
		unsigned which = 0;
		while (which < sizeof keys / sizeof keys[0] && strcmp(k, keys[which]) != 0)
			which++;
		if (which == sizeof keys / sizeof keys[0]) {
			snprintf(err, err_len, "unknown parameter '%.64s' (GET /api/v1/swarms takes %s)",
				 k, query_keys);
			rc = -EINVAL;
			break;
		}
		if (seen & (1u << which)) {
			snprintf(err, err_len, "'%s' is given twice", k);
			rc = -EINVAL;
			break;
		}
		seen |= 1u << which;
		uint64_t n = 0;
		switch (which) {
		case 0: /* limit */
			if (!parse_count(v, API_SWARMS_MAX_LIMIT, &n) || n == 0) {
				snprintf(err, err_len,
					 "limit must be a whole number from 1 to %d (leave it out "
					 "for every swarm at once)",
					 API_SWARMS_MAX_LIMIT);
				rc = -EINVAL;
			}
			out->limit = (uint32_t)n;
			break;
		case 1: /* after */
			if (!parse_count(v, INT64_MAX, &n)) {
				snprintf(err, err_len,
					 "after must be a swarm id (a whole number: the \"next\" of "
					 "the page before)");
				rc = -EINVAL;
			}
			out->has_after = true;
			out->after = (int64_t)n;
			break;
		case 2: /* state */
			if (!parse_states(v, &out->states, err, err_len))
				rc = -EINVAL;
			break;
		case 3: /* q */
			if (!*v || strlen(v) >= sizeof out->q) {
				snprintf(err, err_len, "q must be 1 to %d bytes of a name to look for",
					 API_SWARMS_MAX_QUERY - 1);
				rc = -EINVAL;
				break;
			}
			snprintf(out->q, sizeof out->q, "%s", v);
			break;
		default: /* sort */
			if (strcmp(v, "busiest") == 0) {
				out->busiest = true;
			} else if (strcmp(v, "id") != 0) {
				snprintf(err, err_len, "sort must be \"id\" (the default) or \"busiest\"");
				rc = -EINVAL;
			}
			break;
		}
		if (rc)
			break;
	}
	evhttp_clear_headers(&params);
	if (rc == 0 && out->busiest && out->has_after) {
		snprintf(err, err_len, "after pages through the swarms in id order; sort=busiest "
				       "answers one page (its limit)");
		rc = -EINVAL;
	}
	return rc;
}

/* Does `name` contain `q`, ASCII letters compared without case? */
static bool name_has(const char *name, const char *q)
{
	size_t nq = strlen(q);
	for (const char *p = name; *p; p++) {
		size_t i = 0;
		while (i < nq && p[i] &&
		       tolower((unsigned char)p[i]) == tolower((unsigned char)q[i]))
			i++;
		if (i == nq)
			return true;
		if (!p[i])
			return false;
	}
	return nq == 0;
}

static bool query_matches(const struct api_swarms_query *qy, const struct swarm *sw)
{
	return !sw->remove_pending &&
	       (!qy->states || ((unsigned)sw->state < 32 && (qy->states & (1u << sw->state)))) &&
	       (!qy->q[0] || name_has(sw->name, qy->q));
}

/* One page in id order: `next` is the id to give as `after` for the rest,
 * or -1 when the walk reached the end. */
static json_t *list_by_id(struct node *node, const struct api_swarms_query *qy, int64_t *next)
{
	json_t *list = json_array();
	uint32_t count = 0, scanned = 0;
	int64_t last_returned = 0, last_looked_at = 0;
	*next = -1;
	struct swarm *sw = qy->has_after ? swarm_first_after(node, qy->after) : node->swarms;
	for (; sw; sw = sw->next) {
		if (qy->limit && scanned == API_SWARMS_PAGE_SCAN) {
			/* Nothing looked at since the last one returned
			 * matched: the next page starts past all of them. */
			*next = last_looked_at;
			break;
		}
		scanned++;
		last_looked_at = sw->id;
		if (!query_matches(qy, sw))
			continue;
		if (qy->limit && count == qy->limit) {
			*next = last_returned; /* more follow */
			break;
		}
		json_array_append_new(list, swarm_to_json(node, sw, false));
		count++;
		last_returned = sw->id;
	}
	return list;
}

struct busy_entry {
	double rate;
	unsigned peers;
	uint64_t moved;
	int64_t id;
	const struct swarm *sw;
};

static int cmp_busiest(const void *pa, const void *pb)
{
	const struct busy_entry *a = pa, *b = pb;
	if (a->rate != b->rate)
		return a->rate > b->rate ? -1 : 1;
	if (a->peers != b->peers)
		return a->peers > b->peers ? -1 : 1;
	if (a->moved != b->moved)
		return a->moved > b->moved ? -1 : 1;
	return a->id > b->id ? -1 : a->id < b->id;
}

/* The matching swarms busiest first: by transfer rate (down + up), then
 * connected peers, then bytes moved since the daemon started, then the
 * newest.  O(M log M) in the M swarms that match. */
static json_t *list_busiest(struct node *node, const struct api_swarms_query *qy, bool *oom)
{
	size_t n = 0, cap = 0;
	struct busy_entry *e = NULL;
	*oom = false;
	for (const struct swarm *sw = node->swarms; sw; sw = sw->next) {
		if (!query_matches(qy, sw))
			continue;
		if (n == cap) {
			size_t ncap = cap ? 2 * cap : 256;
			struct busy_entry *ne = realloc(e, ncap * sizeof *e);
			if (!ne) {
				free(e);
				*oom = true;
				return NULL;
			}
			e = ne;
			cap = ncap;
		}
		struct engine_swarm_stats st;
		swarms_swarm_stats(sw, &st);
		e[n++] = (struct busy_entry){ .rate = st.down_rate + st.up_rate,
					      .peers = st.peers,
					      .moved = st.downloaded + st.uploaded,
					      .id = sw->id,
					      .sw = sw };
	}
	if (n)
		qsort(e, n, sizeof *e, cmp_busiest);
	json_t *list = json_array();
	for (size_t i = 0; i < n && (!qy->limit || i < qy->limit); i++)
		json_array_append_new(list, swarm_to_json(node, e[i].sw, false));
	free(e);
	return list;
}

static void api_swarms_list(struct api_req *r)
{
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(r->req);
	struct api_swarms_query qy;
	char err[320];
	if (api_swarms_query_parse(uri ? evhttp_uri_get_query(uri) : NULL, &qy, err, sizeof err) !=
	    0) {
		api_reply_error(r, 400, "bad_request", "%s", err);
		return;
	}
	int64_t next = -1;
	json_t *list;
	if (qy.busiest) {
		bool oom;
		list = list_busiest(r->node, &qy, &oom);
		if (oom) {
			api_reply_error(r, 500, "internal", "out of memory");
			return;
		}
	} else {
		list = list_by_id(r->node, &qy, &next);
	}
	api_reply(r, 200,
		  json_pack("{s:o,s:o}", "swarms", list, "next",
			    next >= 0 ? json_integer(next) : json_null()));
}

/* {"share": "/abs/dir"}: start sharing, or return the swarm already sharing it. */
static void share_dir(struct api_req *r, const char *path)
{
	/* Hybrid by default, as libtorrent and qBittorrent make them: v1-only
	 * and v2 clients can all download it. */
	enum metainfo_format format = METAINFO_FORMAT_HYBRID;
	json_t *fmt = json_object_get(r->body, "format");
	if (fmt && (!json_is_string(fmt) ||
		    metainfo_format_parse(json_string_value(fmt), &format) != 0)) {
		api_reply_error(r, 400, "bad_request",
				"\"format\" must be \"hybrid\" (the default), \"v2\" or \"v1\"");
		return;
	}
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
	struct tracker_list *trk = malloc(sizeof *trk);
	if (!trk) {
		api_reply_error(r, 500, "internal", "out of memory");
		return;
	}
	if (!api_read_trackers(r, trk)) {
		free(trk);
		return;
	}
	struct swarm *sw = NULL;
	int rc = swarms_share(r->node, root, name, format, &sw);
	/* A new share takes the tiers as given; an existing one adds them. */
	if ((rc == 0 || rc == 1) && trk->count &&
	    swarms_add_trackers(r->node, sw, trk, rc == 0, NULL) != 0)
		log_warn("swarm %" PRId64 ": not every tracker could be added", sw->id);
	free(trk);
	if (rc == -ENOMEM) {
		api_reply_error(r, 500, "internal", "out of memory");
		return;
	}
	if (rc == -EEXIST) {
		api_reply_error(r, 409, "format_differs",
				"%s is already shared as swarm %" PRId64 " in format %s; remove it "
				"first to share it in another format",
				root, sw->id, sw->meta ? metainfo_format_name(metainfo_format_of(sw->meta)) : "?");
		return;
	}
	if (rc < 0) {
		api_reply_error(r, 503, "busy", "cannot start hashing: %s", strerror(-rc));
		return;
	}
	api_reply(r, rc == 1 ? 200 : 202,
		  json_pack("{s:o,s:b}", "swarm", swarm_to_json(r->node, sw, false), "existing",
			    rc == 1));
}

/* Parse the bytes of a .torrent (`what` names it in messages: its path,
 * or "the uploaded .torrent") into `mi`, and its announce / announce-list
 * into `trk`.  Replies 400 bad_link and returns -1 when it is unusable. */
static int parse_torrent(struct api_req *r, const char *what, const uint8_t *data, size_t n,
			 struct metainfo *mi, struct tracker_list *trk)
{
	int rc = n > METAINFO_MAX_TORRENT_SIZE ? METAINFO_E_TOO_BIG
					       : metainfo_parse_torrent(mi, data, data + n);
	struct tracker_list *from = rc ? NULL : malloc(sizeof *from);
	if (from && tracker_list_from_torrent(data, data + n, from) == 0)
		for (size_t i = 0; i < from->count; i++)
			if (tracker_list_add(trk, from->e[i].tier, from->e[i].url) == -ENOSPC)
				break;
	free(from);
	if (rc) {
		api_reply_error(r, 400, "bad_link", "%s is not a usable .torrent file: %s", what,
				metainfo_strerror(rc));
		return -1;
	}
	return 0;
}

/* Read a .torrent file (absolute path) and parse it (parse_torrent). */
static int load_torrent(struct api_req *r, const char *path, struct metainfo *mi,
			struct tracker_list *trk)
{
	/* O_NONBLOCK: a FIFO (or a device) named like a .torrent must not
	 * block the event loop in open or read; only a regular file is read. */
	int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) != 0) {
		api_reply_error(r, 400, "bad_link", "%s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		api_reply_error(r, 400, "bad_link", "%s is not a regular file (expected a .torrent)",
				path);
		return -1;
	}
	FILE *f = fdopen(fd, "rb");
	if (!f) {
		close(fd);
		api_reply_error(r, 500, "internal", "out of memory");
		return -1;
	}
	uint8_t *data = malloc(METAINFO_MAX_TORRENT_SIZE + 1);
	size_t n = data ? fread(data, 1, METAINFO_MAX_TORRENT_SIZE + 1, f) : 0;
	fclose(f);
	if (!data) {
		api_reply_error(r, 500, "internal", "out of memory");
		return -1;
	}
	int rc = parse_torrent(r, path, data, n, mi, trk);
	free(data);
	return rc;
}

/* A .torrent sent in the body as base64 ("torrent"), decoded into
 * *data_out (owned by the caller) and *n_out.  Replies 400 bad_link and
 * returns false when it is not base64 (RFC 4648, padded; whitespace is
 * ignored) or empty. */
static bool decode_torrent(struct api_req *r, const char *b64, uint8_t **data_out, size_t *n_out)
{
	size_t len = strlen(b64);
	/* The body is at most API_MAX_BODY, so this is bounded. */
	uint8_t *data = malloc(len / 4 * 3 + 3);
	size_t n = 0;
	if (!data) {
		api_reply_error(r, 500, "internal", "out of memory");
		return false;
	}
	if (len == 0 || sodium_base642bin(data, len / 4 * 3 + 3, b64, len, " \t\r\n", &n, NULL,
					  sodium_base64_VARIANT_ORIGINAL) != 0 ||
	    n == 0) {
		free(data);
		api_reply_error(r, 400, "bad_link",
				"\"torrent\" must be the bytes of a .torrent file in base64");
		return false;
	}
	*data_out = data;
	*n_out = n;
	return true;
}

/* Read the "peers" list of a join request and the magnet's x.pe peers
 * into `out` (at most JOIN_MAX_PEERS); returns false after replying. */
#define JOIN_MAX_PEERS 64
static bool read_peers(struct api_req *r, const struct magnet *mg, struct swarms_peer *out,
		       size_t *n_out)
{
	json_t *peers = json_object_get(r->body, "peers"), *v;
	size_t i, n = 0;
	if (peers && !json_is_array(peers)) {
		api_reply_error(r, 400, "bad_request", "\"peers\" must be a list of \"HOST:PORT\"");
		return false;
	}
	if (json_array_size(peers) > JOIN_MAX_PEERS) {
		api_reply_error(r, 400, "bad_request", "at most %d \"peers\" in one join",
				JOIN_MAX_PEERS);
		return false;
	}
	json_array_foreach(peers, i, v) {
		struct swarms_peer *p = &out[n];
		struct sockaddr_storage ss;
		if (!json_is_string(v) ||
		    parse_hostport(json_string_value(v), p->host, sizeof p->host, &p->port) != 0 ||
		    p->port == 0 || addr_from_numeric(p->host, p->port, &ss) == 0) {
			api_reply_error(r, 400, "bad_request",
					"bad peer %s: expected a numeric HOST:PORT ([v6]:PORT)",
					json_is_string(v) ? json_string_value(v) : "(not a string)");
			return false;
		}
		p->source = "user";
		n++;
	}
	for (size_t k = 0; mg && k < mg->peer_count && n < JOIN_MAX_PEERS; k++) {
		snprintf(out[n].host, sizeof out[n].host, "%s", mg->peers[k].host);
		out[n].port = mg->peers[k].port;
		out[n].source = "magnet";
		n++;
	}
	*n_out = n;
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

/* "only" and "skip": lists of globs, as "+GLOB" / "-GLOB" lines in a new
 * string (*out, NULL when neither is given).  False when answered 400. */
#define JOIN_MAX_GLOBS 64
#define JOIN_MAX_GLOB_LEN 1000
static bool read_rules(struct api_req *r, char **out)
{
	*out = NULL;
	static const char *const keys[2] = { "only", "skip" };
	size_t len = 0;
	for (int k = 0; k < 2; k++) {
		json_t *a = json_object_get(r->body, keys[k]);
		if (!a)
			continue;
		size_t i;
		json_t *e;
		if (!json_is_array(a) || json_array_size(a) > JOIN_MAX_GLOBS) {
			api_reply_error(r, 400, "bad_request",
					"\"%s\" must be a list of at most %d file patterns", keys[k],
					JOIN_MAX_GLOBS);
			return false;
		}
		json_array_foreach(a, i, e) {
			const char *s = json_is_string(e) ? json_string_value(e) : NULL;
			if (!s || !*s || strlen(s) > JOIN_MAX_GLOB_LEN || strchr(s, '\n')) {
				api_reply_error(r, 400, "bad_request",
						"\"%s\"[%zu] must be a non-empty pattern of at most %d "
						"bytes on one line", keys[k], i, JOIN_MAX_GLOB_LEN);
				return false;
			}
			len += strlen(s) + 2;
		}
	}
	if (len == 0)
		return true;
	char *rules = malloc(len + 1), *p = rules;
	if (!rules) {
		api_reply_error(r, 500, "internal", "out of memory");
		return false;
	}
	for (int k = 0; k < 2; k++) {
		size_t i;
		json_t *e;
		json_array_foreach(json_object_get(r->body, keys[k]), i, e)
			p += sprintf(p, "%c%s\n", k == 0 ? '+' : '-', json_string_value(e));
	}
	*out = rules;
	return true;
}

/* The reply to a join, sent when the mediator is done (maybe later, after
 * the existing files were hashed: evhttp keeps the request until then). */
struct join_ctx {
	struct api_req r;            /* first: the reply callback's context */
	struct tracker_list trackers; /* the link's, the body's */
};

static void join_replied(void *ctx, int rc, struct swarm *sw, const char *msg)
{
	struct join_ctx *jc = ctx;
	struct api_req *r = &jc->r;
	if ((rc == 0 || rc == 1) && jc->trackers.count &&
	    swarms_add_trackers(r->node, sw, &jc->trackers, rc == 0, NULL) != 0)
		log_warn("swarm %" PRId64 ": not every tracker could be added", sw->id);
	switch (rc) {
	case 0:
	case 1:
		api_reply(r, rc == 1 ? 200 : 202,
			  json_pack("{s:o,s:b}", "swarm", swarm_to_json(r->node, sw, false),
				    "existing", rc == 1));
		break;
	case -ECANCELED:
		break; /* the daemon is stopping: nobody to answer */
	case -EEXIST:
		api_reply_error(r, 409, "path_conflict", "%s", msg);
		break;
	case -EDOM:
		api_reply_error(r, 400, "bad_request", "%s", msg);
		break;
	case -EIO:
		api_reply_error(r, 500, "database", "%s", msg);
		break;
	case -EBUSY:
		api_reply_error(r, 503, "busy", "%s", msg);
		break;
	default:
		api_reply_error(r, 500, "internal", "%s", msg ? msg : strerror(-rc));
		break;
	}
	json_decref(r->body);
	free(jc);
}

/* {"link": magnet or /abs/file.torrent, "into": "/abs/dir", "peers": [...],
 *  "overwrite": false}, or instead of "link" the .torrent's bytes
 *  (`upload`, `upload_len`: from "torrent", decoded) with `link` NULL. */
static void join_link(struct api_req *r, const char *link, const uint8_t *upload,
		      size_t upload_len)
{
	struct magnet mg;
	struct metainfo *mi = NULL;
	bool is_magnet = link && strncmp(link, "magnet:", 7) == 0;
	memset(&mg, 0, sizeof mg);
	json_t *ow = json_object_get(r->body, "overwrite");
	if (ow && !json_is_boolean(ow)) {
		api_reply_error(r, 400, "bad_request", "\"overwrite\" must be true or false");
		return;
	}
	json_t *seq = json_object_get(r->body, "sequential");
	if (seq && !json_is_boolean(seq)) {
		api_reply_error(r, 400, "bad_request", "\"sequential\" must be true or false");
		return;
	}
	if (is_magnet) {
		int rc = magnet_parse(&mg, (const uint8_t *)link, (const uint8_t *)link + strlen(link));
		if (rc) {
			api_reply_error(r, 400, "bad_link", "not a usable magnet link: %s",
					magnet_strerror(rc));
			return;
		}

	} else if (link && link[0] != '/') {
		api_reply_error(r, 400, "bad_link",
				"a .torrent must be given by its absolute path (got '%s')", link);
		return;
	}
	char *rules = NULL;
	if (!read_rules(r, &rules))
		return;
	struct swarms_peer peers[JOIN_MAX_PEERS];
	struct swarms_join_req req;
	memset(&req, 0, sizeof req);
	struct join_ctx *jc = calloc(1, sizeof *jc);
	if (!jc) {
		free(rules);
		api_reply_error(r, 500, "internal", "out of memory");
		return;
	}
	if (!read_peers(r, is_magnet ? &mg : NULL, peers, &req.n_peers) || !join_dir(r, req.dir) ||
	    !api_read_trackers(r, &jc->trackers)) {
		free(rules);
		free(jc);
		return;
	}
	/* The link's trackers come after the body's: each tr= is a tier of
	 * its own (a magnet has no tiers); unusable ones are left out. */
	unsigned tier = jc->trackers.count ? jc->trackers.e[jc->trackers.count - 1].tier + 1 : 0;
	for (size_t k = 0; is_magnet && k < mg.tracker_count; k++)
		if (tracker_list_add(&jc->trackers, tier, mg.trackers[k]) == 0)
			tier++;
	req.peers = peers;
	req.overwrite = json_is_true(ow);
	if (is_magnet) {
		/* Keyed by the v2 hash when the link has one, else by the v1
		 * hash until the metadata says whether it is a hybrid. */
		if (mg.has_v2) {
			memcpy(req.info_hash, mg.info_hash, 32);
		} else {
			memcpy(req.info_hash, mg.info_hash_v1, 20);
			req.key_v1 = true;
		}
		req.has_v1 = mg.has_v1;
		memcpy(req.info_hash_v1, mg.info_hash_v1, 20);
		char hex[65];
		hex_encode(req.info_hash, mg.has_v2 ? 32 : 20, hex);
		snprintf(req.name, sizeof req.name, "%s", mg.name[0] ? mg.name : hex);
	} else {
		mi = calloc(1, sizeof *mi);
		struct tracker_list *trk = malloc(sizeof *trk);
		if (trk)
			memset(trk, 0, sizeof *trk);
		if (!mi || !trk ||
		    (link ? load_torrent(r, link, mi, trk)
			  : parse_torrent(r, "the uploaded .torrent", upload, upload_len, mi, trk)) !=
			    0) {
			if (!mi || !trk)
				api_reply_error(r, 500, "internal", "out of memory");
			free(mi);
			free(trk);
			free(jc);
			free(rules);
			return;
		}
		/* The torrent's tiers after the body's. */
		for (size_t k = 0; k < trk->count; k++)
			if (tracker_list_add(&jc->trackers, tier + trk->e[k].tier, trk->e[k].url) ==
			    -ENOSPC)
				break;
		free(trk);
		memcpy(req.info_hash, mi->info_hash, 32);
		req.key_v1 = !mi->has_v2;
		req.has_v1 = mi->has_v1;
		memcpy(req.info_hash_v1, mi->info_hash_v1, 20);
		snprintf(req.name, sizeof req.name, "%s", mi->name);
		req.meta = mi;
	}
	req.rules = rules; /* the mediator's now */
	req.sequential = json_is_true(seq);
	jc->r = *r;
	jc->r.param = NULL;
	jc->r.body = json_incref(r->body);
	swarms_join(r->node, &req, join_replied, jc);
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
	json_t *torrent = json_object_get(r->body, "torrent");
	int given = !!share + !!link + !!torrent;
	if (given == 1 && share && json_is_string(share)) {
		share_dir(r, json_string_value(share));
		return;
	}
	if (given == 1 && link && json_is_string(link)) {
		join_link(r, json_string_value(link), NULL, 0);
		return;
	}
	if (given == 1 && torrent && json_is_string(torrent)) {
		uint8_t *data = NULL;
		size_t n = 0;
		if (decode_torrent(r, json_string_value(torrent), &data, &n))
			join_link(r, NULL, data, n);
		free(data);
		return;
	}
	api_reply_error(r, 400, "bad_request",
			"expected exactly one of \"share\" (a directory), \"link\" (a magnet "
			"link or .torrent path) or \"torrent\" (a .torrent file in base64)");
}

static void handle_swarm_get(struct api_req *r)
{
	struct swarm *sw = api_swarm_or_404(r);
	if (sw)
		api_reply(r, 200, swarm_to_json(r->node, sw, true));
}

static void handle_swarm_peers(struct api_req *r)
{
	struct swarm *sw = api_swarm_or_404(r);
	if (sw)
		api_reply(r, 200, json_pack("{s:I,s:o}", "id", (json_int_t)sw->id, "peers",
					    swarm_peers_json(sw)));
}

/* GET /api/v1/swarms/{id}/pieces: the verified pieces as a BEP 3
 * bitfield (piece 0 in the high bit of the first byte), base64. */
static void handle_swarm_pieces(struct api_req *r)
{
	struct swarm *sw = api_swarm_or_404(r);
	if (!sw)
		return;
	uint32_t n = sw->meta ? sw->meta->total_pieces : 0;
	size_t bytes = ((size_t)n + 7) / 8;
	uint8_t *bits = calloc(1, bytes + 1);
	size_t b64_len = sodium_base64_encoded_len(bytes, sodium_base64_VARIANT_ORIGINAL);
	char *b64 = malloc(b64_len);
	if (!bits || !b64) {
		free(bits);
		free(b64);
		api_reply_error(r, 500, "internal", "out of memory");
		return;
	}
	if (sw->have && bytes) {
		memcpy(bits, sw->have, bytes);
		if (n % 8) /* bits past the last piece are zero */
			bits[bytes - 1] &= (uint8_t)(0xff00u >> (n % 8));
	}
	sodium_bin2base64(b64, b64_len, bits, bytes, sodium_base64_VARIANT_ORIGINAL);
	api_reply(r, 200,
		  json_pack("{s:I,s:i,s:i,s:s}", "id", (json_int_t)sw->id, "num_pieces", (int)n,
			    "pieces_have", (int)(sw->meta ? sw->have_count : 0), "bitfield", b64));
	free(bits);
	free(b64);
}

static void handle_swarm_delete(struct api_req *r)
{
	struct swarm *sw = api_swarm_or_404(r);
	if (!sw)
		return;
	bool delete_data = r->body && json_is_true(json_object_get(r->body, "delete_data"));
	int64_t id = sw->id;
	int deleted = 0;
	int rc = swarms_remove(r->node, sw, delete_data, &deleted);
	if (rc == -EPERM) {
		api_reply_error(r, 400, "bad_request",
				"delete_data is refused for shared directories: shoal never deletes "
				"what you shared");
		return;
	}
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
	struct swarm *sw = api_swarm_or_404(r);
	if (!sw)
		return;
	int rc = swarms_verify(r->node, sw);
	if (rc == -EINPROGRESS) {
		api_reply_error(r, 409, "busy",
				"swarm %" PRId64 " is downloading (every piece is checked as it "
				"arrives); pause it first to re-check its files",
				sw->id);
		return;
	}
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
	struct swarm *sw = api_swarm_or_404(r);
	if (!sw)
		return;
	int rc = pause ? swarms_pause(r->node, sw) : swarms_resume(r->node, sw);
	if (rc == -EBUSY)
		api_reply_error(r, 409, "busy", "swarm %" PRId64 " is %s", sw->id,
				swarm_state_name(sw->state));
	else if (rc == -EFAULT)
		api_reply_error(r, 500, "internal", "cannot restart transfers");
	else if (rc)
		api_reply_error(r, 500, "database", "cannot save the swarm's state");
	else
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

/* GET /api/v1/swarms/{id}/files */
static void handle_files_get(struct api_req *r)
{
	struct swarm *sw = api_swarm_or_404(r);
	if (sw)
		api_reply(r, 200, swarm_files_json(sw));
}

/* POST /api/v1/swarms/{id}/files {"priorities": [{"index", "priority"}],
 * "sequential": bool} */
static void handle_files_set(struct api_req *r)
{
	struct swarm *sw = api_swarm_or_404(r);
	if (!sw)
		return;
	json_t *pr = r->body ? json_object_get(r->body, "priorities") : NULL;
	json_t *seq = r->body ? json_object_get(r->body, "sequential") : NULL;
	if (!r->body || (!pr && !seq) || (pr && !json_is_array(pr)) ||
	    (seq && !json_is_boolean(seq))) {
		api_reply_error(r, 400, "bad_request",
				"send {\"priorities\": [{\"index\": N, \"priority\": "
				"\"skip|low|normal|high\"}], \"sequential\": true|false} (either or both)");
		return;
	}
	if (sw->role != SWARM_ROLE_JOIN) {
		api_reply_error(r, 409, "not_a_join",
				"swarm %" PRId64 " is a share: every file of it is seeded", sw->id);
		return;
	}
	if (!sw->meta) {
		api_reply_error(r, 409, "no_metadata",
				"swarm %" PRId64 " has no metadata yet, so its files are not known; "
				"choose files at the join (--only/--skip) or once it has them",
				sw->id);
		return;
	}
	size_t n = sw->meta->file_count;
	int *prio = malloc((n ? n : 1) * sizeof *prio);
	if (!prio) {
		api_reply_error(r, 500, "internal", "out of memory");
		return;
	}
	for (size_t f = 0; f < n; f++)
		prio[f] = -1;
	size_t i;
	json_t *e;
	json_array_foreach(pr, i, e) {
		json_t *ix = json_object_get(e, "index"), *pv = json_object_get(e, "priority");
		int p = json_is_string(pv) ? swarm_prio_from_name(json_string_value(pv)) : -1;
		json_int_t k = json_is_integer(ix) ? json_integer_value(ix) : -1;
		if (!json_is_object(e) || k < 0 || (size_t)k >= n || p < 0 || prio[k] >= 0) {
			api_reply_error(r, 400, "bad_request",
					"priorities[%zu]: %s", i,
					!json_is_object(e) || !json_is_integer(ix)
						? "needs \"index\" (a number) and \"priority\""
					: k < 0 || (size_t)k >= n ? "index out of range"
					: p < 0 ? "priority must be skip, low, normal or high"
						: "that file is named twice");
			free(prio);
			return;
		}
		prio[k] = p;
	}
	char msg[4600];
	int rc = swarms_set_files(r->node, sw, prio, seq ? json_is_true(seq) : -1, msg,
				  sizeof msg);
	free(prio);
	switch (rc) {
	case 0:
		api_reply(r, 200, swarm_files_json(sw));
		break;
	case -EEXIST:
		api_reply_error(r, 409, "path_conflict", "%s", msg);
		break;
	case -EBUSY:
		api_reply_error(r, 409, "busy", "swarm %" PRId64 " is being checked; try again when "
				"it is done", sw->id);
		break;
	case -EIO:
		api_reply_error(r, 500, "database", "cannot record the files' priorities");
		break;
	default:
		api_reply_error(r, 500, "internal", "%s", strerror(-rc));
		break;
	}
}

static void handle_swarm_limits(struct api_req *r)
{
	struct swarm *sw = api_swarm_or_404(r);
	if (!sw)
		return;
	uint64_t up = sw->upload_limit, down = sw->download_limit;
	if (!read_limits(r, &up, &down))
		return;
	if (swarms_set_limits(r->node, sw, up, down) != 0) {
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
	if (swarms_set_global_limits(r->node, up, down) != 0) {
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
	{ API_GET, "/api/v1/swarms/{id}/pieces", handle_swarm_pieces },
	{ API_POST, "/api/v1/swarms/{id}/verify", handle_swarm_verify },
	{ API_POST, "/api/v1/swarms/{id}/limits", handle_swarm_limits },
	{ API_GET, "/api/v1/swarms/{id}/files", handle_files_get },
	{ API_POST, "/api/v1/swarms/{id}/files", handle_files_set },
	{ API_POST, "/api/v1/swarms/{id}/pause", handle_swarm_pause },
	{ API_POST, "/api/v1/swarms/{id}/resume", handle_swarm_resume },
};
const size_t api_swarm_routes_count = sizeof api_swarm_routes / sizeof api_swarm_routes[0];
