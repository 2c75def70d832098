/* api_trackers.c: endpoints under /api/v1/swarms/{id}/trackers and
 * /reannounce, and the "trackers" field of share and join bodies. */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>

#include "common/log.h"
#include "common/util.h"
#include "node/api_server.h"
#include "node/node.h"
#include "node/swarm.h"
#include "node/swarms.h"
#include "node/trackers.h"
#include "transfer/tracker.h"

static json_t *time_or_null(int64_t t)
{
	return t > 0 ? json_integer((json_int_t)t) : json_null();
}

static json_t *count_or_null(int64_t n)
{
	return n >= 0 ? json_integer((json_int_t)n) : json_null();
}

static void add_tracker(void *ctx, const struct trackers_info *in)
{
	json_t *list = ctx, *hashes = json_array();
	for (size_t i = 0; i < in->n_hashes; i++) {
		char hex[41];
		hex_encode(in->hashes[i], 20, hex);
		json_array_append_new(hashes, json_string(hex));
	}
	json_t *o = json_object();
	json_object_set_new(o, "url", json_string(in->url));
	json_object_set_new(o, "tier", json_integer(in->tier));
	json_object_set_new(o, "status", json_string(in->status));
	json_object_set_new(o, "current", json_boolean(in->current));
	json_object_set_new(o, "last_announce", time_or_null(in->last_announce));
	json_object_set_new(o, "next_announce", time_or_null(in->next_announce));
	json_object_set_new(o, "last_scrape", time_or_null(in->last_scrape));
	json_object_set_new(o, "peers", count_or_null(in->peers));
	json_object_set_new(o, "seeders", count_or_null(in->seeders));
	json_object_set_new(o, "leechers", count_or_null(in->leechers));
	json_object_set_new(o, "downloaded", count_or_null(in->downloaded));
	json_object_set_new(o, "last_error", in->last_error ? json_string(in->last_error) : json_null());
	json_object_set_new(o, "warning", in->warning ? json_string(in->warning) : json_null());
	json_object_set_new(o, "announces", json_integer(in->announces));
	json_object_set_new(o, "failures", json_integer(in->failures));
	json_object_set_new(o, "info_hashes", hashes);
	json_array_append_new(list, o);
}

static json_t *trackers_json(const struct swarm *sw)
{
	json_t *list = json_array();
	swarms_each_tracker(sw, add_tracker, list);
	return json_pack("{s:I,s:I,s:o}", "id", (json_int_t)sw->id, "now", (json_int_t)time(NULL),
			 "trackers", list);
}

static bool url_ok(struct api_req *r, const char *url)
{
	struct tracker_url u;
	int rc = tracker_url_parse(url, &u);
	if (rc)
		api_reply_error(r, 400, "bad_tracker", "%s: %s", url, tracker_strerror(rc));
	return rc == 0;
}

bool api_read_trackers(struct api_req *r, struct tracker_list *out)
{
	memset(out, 0, sizeof *out);
	json_t *v = json_object_get(r->body, "trackers"), *item, *u;
	size_t i, k;
	if (!v || json_is_null(v))
		return true;
	if (!json_is_array(v)) {
		api_reply_error(r, 400, "bad_request",
				"\"trackers\" must be a list of URLs or of lists of URLs (tiers)");
		return false;
	}
	unsigned tier = 0;
	json_array_foreach(v, i, item) {
		json_t *one = json_is_string(item) ? json_pack("[O]", item) : json_incref(item);
		bool any = false;
		if (!json_is_array(one)) {
			json_decref(one);
			api_reply_error(r, 400, "bad_request",
					"each tier of \"trackers\" is a URL or a list of URLs");
			return false;
		}
		json_array_foreach(one, k, u) {
			const char *url = json_string_value(u);
			if (!url || !url_ok(r, url)) {
				if (!url)
					api_reply_error(r, 400, "bad_request", "a tracker URL must be a string");
				json_decref(one);
				return false;
			}
			int rc = tracker_list_add(out, tier, url);
			if (rc == -ENOSPC || rc == -ERANGE) {
				json_decref(one);
				api_reply_error(r, 400, "bad_request", "at most %u trackers in %u tiers",
						TRACKER_MAX_TRACKERS, TRACKER_MAX_TIER + 1);
				return false;
			}
			any |= rc == 0;
		}
		json_decref(one);
		tier += any;
	}
	return true;
}

static void handle_trackers_get(struct api_req *r)
{
	struct swarm *sw = api_swarm_or_404(r);
	if (sw)
		api_reply(r, 200, trackers_json(sw));
}

/* {"url": URL, "tier": N (optional: a tier of its own after the others)} */
static void handle_trackers_add(struct api_req *r)
{
	struct swarm *sw = api_swarm_or_404(r);
	if (!sw)
		return;
	json_t *url = json_object_get(r->body, "url"), *tier = json_object_get(r->body, "tier");
	if (!json_is_string(url) ||
	    (tier && (!json_is_integer(tier) || json_integer_value(tier) < 0 ||
		      json_integer_value(tier) > TRACKER_MAX_TIER))) {
		api_reply_error(r, 400, "bad_request",
				"send {\"url\": \"http://host/announce\" or \"udp://host:port\"} "
				"(and optionally \"tier\": 0-%u)",
				TRACKER_MAX_TIER);
		return;
	}
	if (!url_ok(r, json_string_value(url)))
		return;
	struct tracker_list *l = calloc(1, sizeof *l);
	if (!l) {
		api_reply_error(r, 500, "internal", "out of memory");
		return;
	}
	int rc = tracker_list_add(l, tier ? (unsigned)json_integer_value(tier) : 0,
				  json_string_value(url));
	size_t added = 0;
	if (rc == 0)
		rc = swarms_add_trackers(r->node, sw, l, tier != NULL, &added);
	free(l);
	if (rc == -ENOSPC) {
		api_reply_error(r, 409, "too_many_trackers", "swarm %" PRId64 " has %u trackers already",
				sw->id, TRACKER_MAX_TRACKERS);
		return;
	}
	if (rc) {
		api_reply_error(r, 500, rc == -EIO ? "database" : "internal", "cannot add the tracker");
		return;
	}
	if (added)
		log_info("swarm %" PRId64 ": tracker %s added", sw->id, json_string_value(url));
	json_t *o = trackers_json(sw);
	json_object_set_new(o, "added", json_boolean(added > 0));
	api_reply(r, added ? 201 : 200, o);
}

/* DELETE .../trackers?url=URL (or {"url": URL} as the body) */
static void handle_trackers_delete(struct api_req *r)
{
	struct swarm *sw = api_swarm_or_404(r);
	if (!sw)
		return;
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(r->req);
	const char *query = uri ? evhttp_uri_get_query(uri) : NULL;
	struct evkeyvalq params;
	TAILQ_INIT(&params);
	const char *url = NULL;
	if (query && evhttp_parse_query_str(query, &params) == 0)
		url = evhttp_find_header(&params, "url");
	if (!url && r->body)
		url = json_string_value(json_object_get(r->body, "url"));
	if (!url) {
		evhttp_clear_headers(&params);
		api_reply_error(r, 400, "bad_request", "name the tracker: ?url=URL (percent-encoded)");
		return;
	}
	int rc = swarms_remove_tracker(r->node, sw, url);
	if (rc == -ENOENT)
		api_reply_error(r, 404, "no_such_tracker", "swarm %" PRId64 " has no tracker %s", sw->id,
				url);
	else if (rc)
		api_reply_error(r, 500, rc == -EIO ? "database" : "internal",
				"cannot remove the tracker");
	else {
		log_info("swarm %" PRId64 ": tracker %s removed", sw->id, url);
		api_reply(r, 200, trackers_json(sw));
	}
	evhttp_clear_headers(&params);
}

static void handle_reannounce(struct api_req *r)
{
	struct swarm *sw = api_swarm_or_404(r);
	if (!sw)
		return;
	if (swarms_reannounce(r->node, sw) != 0) {
		api_reply_error(r, 409, "not_running", "swarm %" PRId64 " is %s: nothing to announce",
				sw->id, swarm_state_name(sw->state));
		return;
	}
	api_reply(r, 202, trackers_json(sw));
}

const struct api_route api_tracker_routes[] = {
	{ API_GET, "/api/v1/swarms/{id}/trackers", handle_trackers_get },
	{ API_POST, "/api/v1/swarms/{id}/trackers", handle_trackers_add },
	{ API_DELETE, "/api/v1/swarms/{id}/trackers", handle_trackers_delete },
	{ API_POST, "/api/v1/swarms/{id}/reannounce", handle_reannounce },
};
const size_t api_tracker_routes_count = sizeof api_tracker_routes / sizeof api_tracker_routes[0];
