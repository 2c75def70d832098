/* cmd_swarm.c: `shoal share`, `verify`, `pause`, `resume`, `remove`. */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/client.h"
#include "cli/progress.h"
#include "common/util.h"

#define POLL_MS 200

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

/* --json ('j') or --delete-data ('D'): both set the command's one flag. */
static int on_json_flag(int val, const char *arg, void *ctx)
{
	(void)arg;
	if (val == 'j' || val == 'D')
		*(int *)ctx = 1;
	return 0;
}

/* Exactly one positional argument after the options. */
static int one_arg(const char *name, int argc, char **argv, int first, const char **arg_out)
{
	if (first >= argc || first + 1 < argc) {
		fprintf(stderr, "shoal %s: expected exactly one %s\n", name,
			strcmp(name, "share") == 0 ? "directory" : "swarm (id or info-hash)");
		cli_usage(cli_find(name), stderr);
		return CLI_USAGE;
	}
	*arg_out = argv[first];
	return 0;
}

/* GET /swarms/{id} until it leaves hashing/checking, drawing progress. */
static int wait_work(const struct cli_conn *conn, const char *cmd, const char *id, json_t **final_out)
{
	char path[128];
	snprintf(path, sizeof path, "/api/v1/swarms/%s", id);
	struct progress bar;
	progress_init(&bar, stderr, strcmp(cmd, "share") == 0 ? "hashing " : "checking");
	for (;;) {
		int rc;
		json_t *sw = NULL;
		if ((rc = cli_call(conn, cmd, "GET", path, NULL, &sw))) {
			progress_finish(&bar);
			return rc;
		}
		const char *state = json_string_value(json_object_get(sw, "state"));
		json_t *work = json_object_get(sw, "work");
		if (state && (strcmp(state, "hashing") == 0 || strcmp(state, "checking") == 0)) {
			if (work)
				progress_update(&bar, (uint64_t)json_integer_value(json_object_get(work, "done")),
						(uint64_t)json_integer_value(json_object_get(work, "total")),
						json_real_value(json_object_get(work, "rate")), NULL);
			json_decref(sw);
			sleep_ms(POLL_MS);
			continue;
		}
		progress_finish(&bar);
		*final_out = sw;
		return 0;
	}
}

struct share_opts {
	int json;
	const char *format; /* NULL: the daemon's default (hybrid) */
	json_t *trackers;   /* one list of URLs per --tracker (a tier each) */
};

/* --tracker A[,B...]: one tier. */
static int add_tracker_tier(struct share_opts *o, const char *arg)
{
	json_t *tier = json_array();
	const char *p = arg;
	while (tier && *p) {
		size_t n = strcspn(p, ",");
		if (n)
			json_array_append_new(tier, json_stringn(p, n));
		p += n;
		if (*p == ',')
			p++;
	}
	if (!tier || json_array_size(tier) == 0) {
		json_decref(tier);
		fprintf(stderr, "shoal share: --tracker needs a URL\n");
		return -1;
	}
	if (!o->trackers)
		o->trackers = json_array();
	json_array_append_new(o->trackers, tier);
	return 0;
}

static int on_share_opt(int val, const char *arg, void *ctx)
{
	struct share_opts *o = ctx;
	if (val == 'j') {
		o->json = 1;
		return 0;
	}
	if (val == 't')
		return add_tracker_tier(o, arg);
	if (val == 'f') {
		if (strcmp(arg, "v2") != 0 && strcmp(arg, "hybrid") != 0 && strcmp(arg, "v1") != 0) {
			fprintf(stderr, "shoal share: --format %s is not a format (hybrid, v2 or v1)\n",
				arg);
			return -1;
		}
		o->format = arg;
		return 0;
	}
	return -1;
}

int cmd_share(int argc, char **argv)
{
	static const struct option opts[] = { { "json", no_argument, NULL, 'j' },
					      { "format", required_argument, NULL, 'f' },
					      { "tracker", required_argument, NULL, 't' },
					      { 0 } };
	struct cli_conn conn;
	struct share_opts so = { 0 };
	const char *dir = NULL;
	int rc = cli_getopt("share", argc, argv, opts, on_share_opt, &so, &conn);
	if (rc < 0) {
		json_decref(so.trackers);
		return CLI_GETOPT_EXIT(rc);
	}
	int json = so.json;
	if ((rc = one_arg("share", argc, argv, rc, &dir))) {
		json_decref(so.trackers);
		return rc;
	}
	char abs[PATH_MAX];
	if (!realpath(dir, abs)) {
		fprintf(stderr, "shoal share: %s: %s\n", dir, strerror(errno));
		json_decref(so.trackers);
		return CLI_FAIL;
	}
	if ((rc = cli_load_conn(&conn))) {
		json_decref(so.trackers);
		return rc;
	}
	json_t *body = json_pack("{s:s}", "share", abs), *reply = NULL;
	if (body && so.format)
		json_object_set_new(body, "format", json_string(so.format));
	if (body && so.trackers)
		json_object_set(body, "trackers", so.trackers);
	json_decref(so.trackers);
	rc = cli_call(&conn, "share", "POST", "/api/v1/swarms", body, &reply);
	json_decref(body);
	if (rc)
		return rc;
	char id[32];
	snprintf(id, sizeof id, "%lld",
		 (long long)json_integer_value(json_object_get(json_object_get(reply, "swarm"), "id")));
	if (json_is_true(json_object_get(reply, "existing")) && !json)
		fprintf(stderr, "%s is already shared as swarm %s\n", abs, id);
	json_decref(reply);
	json_t *sw = NULL;
	if ((rc = wait_work(&conn, "share", id, &sw)))
		return rc;
	const char *state = json_string_value(json_object_get(sw, "state"));
	if (!state || strcmp(state, "error") == 0) {
		fprintf(stderr, "shoal share: %s\n",
			json_string_value(json_object_get(sw, "error")) ?: "failed");
		json_decref(sw);
		return CLI_FAIL;
	}
	if (json) {
		json_dumpf(sw, stdout, JSON_INDENT(2) | JSON_SORT_KEYS);
		putchar('\n');
	} else {
		printf("%s\n%s\n", json_string_value(json_object_get(sw, "magnet")) ?: "",
		       json_string_value(json_object_get(sw, "torrent")) ?: "");
	}
	json_decref(sw);
	return CLI_OK;
}

/* verify / pause / resume / remove: one POST or DELETE on a swarm. */
static int swarm_action(const char *cmd, int argc, char **argv)
{
	static const struct option verify_opts[] = { { "json", no_argument, NULL, 'j' }, { 0 } };
	static const struct option remove_opts[] = { { "delete-data", no_argument, NULL, 'D' },
						     { 0 } };
	bool is_remove = strcmp(cmd, "remove") == 0, is_verify = strcmp(cmd, "verify") == 0;
	struct cli_conn conn;
	int flag = 0;
	const char *id = NULL;
	int rc = cli_getopt(cmd, argc, argv, is_remove ? remove_opts : is_verify ? verify_opts : NULL,
			    on_json_flag, &flag, &conn);
	if (rc < 0)
		return CLI_GETOPT_EXIT(rc);
	if ((rc = one_arg(cmd, argc, argv, rc, &id)))
		return rc;
	if (strspn(id, "0123456789abcdefABCDEF") != strlen(id)) {
		fprintf(stderr, "shoal %s: '%s' is not a swarm id or info-hash\n", cmd, id);
		return CLI_USAGE;
	}
	if ((rc = cli_load_conn(&conn)))
		return rc;
	char path[128];
	json_t *body = NULL, *reply = NULL;
	if (is_remove) {
		snprintf(path, sizeof path, "/api/v1/swarms/%s", id);
		body = json_pack("{s:b}", "delete_data", flag);
	} else {
		snprintf(path, sizeof path, "/api/v1/swarms/%s/%s", id, cmd);
		body = json_object();
	}
	rc = cli_call(&conn, cmd, is_remove ? "DELETE" : "POST", path, body, &reply);
	json_decref(body);
	if (rc)
		return rc;
	if (is_verify) {
		char sid[32];
		snprintf(sid, sizeof sid, "%lld",
			 (long long)json_integer_value(json_object_get(reply, "id")));
		/* Report this check's own outcome (last_check), not pieces_have:
		 * a joined swarm may fetch a dropped piece again before we look. */
		json_int_t before = json_integer_value(
			json_object_get(json_object_get(reply, "last_check"), "seq"));
		json_decref(reply);
		json_t *sw = NULL;
		if ((rc = wait_work(&conn, "verify", sid, &sw)))
			return rc;
		json_t *check = json_object_get(sw, "last_check");
		long long total = json_integer_value(json_object_get(sw, "num_pieces"));
		const char *result = json_string_value(json_object_get(check, "result"));
		if (!check || json_integer_value(json_object_get(check, "seq")) <= before || !result) {
			fprintf(stderr, "shoal verify: swarm %s: the daemon reported no result\n", sid);
			json_decref(sw);
			return CLI_FAIL;
		}
		long long ok = json_integer_value(json_object_get(check, "pieces_verified"));
		long long dropped = json_integer_value(json_object_get(check, "pieces_dropped"));
		if (flag) {
			json_dumpf(sw, stdout, JSON_INDENT(2) | JSON_SORT_KEYS);
			putchar('\n');
		} else if (strcmp(result, "ok") != 0) {
			fprintf(stderr, "shoal verify: swarm %s: the check %s%s%s\n", sid, result,
				json_string_value(json_object_get(sw, "error")) ? ": " : "",
				json_string_value(json_object_get(sw, "error")) ?: "");
		} else {
			printf("swarm %s: %lld of %lld pieces verified", sid, ok, total);
			if (dropped)
				printf(" (%lld no longer matched their hashes)", dropped);
			putchar('\n');
		}
		int status = strcmp(result, "ok") == 0 && ok == total ? CLI_OK : CLI_FAIL;
		json_decref(sw); /* result points into it */
		return status;
	}
	if (is_remove)
		printf("removed swarm %s\n", id);
	else
		printf("swarm %s: %s\n", id, json_string_value(json_object_get(reply, "state")) ?: "?");
	json_decref(reply);
	return CLI_OK;
}

int cmd_verify(int argc, char **argv)
{
	return swarm_action("verify", argc, argv);
}

int cmd_pause(int argc, char **argv)
{
	return swarm_action("pause", argc, argv);
}

int cmd_resume(int argc, char **argv)
{
	return swarm_action("resume", argc, argv);
}

int cmd_remove(int argc, char **argv)
{
	return swarm_action("remove", argc, argv);
}

struct limit_opts {
	const char *up, *down;
};

static int on_limit_opt(int val, const char *arg, void *ctx)
{
	struct limit_opts *o = ctx;
	uint64_t v;
	if (parse_rate(arg, &v) != 0) {
		fprintf(stderr, "shoal limit: bad rate '%s': use bytes/s like 500K or 2M (0 = none)\n",
			arg);
		return CLI_USAGE;
	}
	if (val == 'u')
		o->up = arg;
	else
		o->down = arg;
	return 0;
}

static void print_rate(const char *what, json_int_t v)
{
	char b[32];
	format_bytes((uint64_t)v, b, sizeof b);
	printf("%s %s\n", what, v ? strcat(b, "/s") : "unlimited");
}

int cmd_limit(int argc, char **argv)
{
	static const struct option opts[] = { { "upload", required_argument, NULL, 'u' },
					      { "download", required_argument, NULL, 'd' },
					      { 0 } };
	struct cli_conn conn;
	struct limit_opts o = { 0 };
	int rc = cli_getopt("limit", argc, argv, opts, on_limit_opt, &o, &conn);
	if (rc < 0)
		return CLI_GETOPT_EXIT(rc);
	const char *id = rc < argc ? argv[rc] : NULL;
	if (rc + 1 < argc || (id && strspn(id, "0123456789abcdefABCDEF") != strlen(id))) {
		cli_usage(cli_find("limit"), stderr);
		return CLI_USAGE;
	}
	if ((rc = cli_load_conn(&conn)))
		return rc;
	char path[128];
	json_t *reply = NULL, *body = NULL;
	if (!o.up && !o.down) {
		if (id)
			snprintf(path, sizeof path, "/api/v1/swarms/%s", id);
		if ((rc = cli_call(&conn, "limit", "GET", id ? path : "/api/v1/status", NULL, &reply)))
			return rc;
	} else {
		body = json_object();
		if (o.up)
			json_object_set_new(body, "upload", json_string(o.up));
		if (o.down)
			json_object_set_new(body, "download", json_string(o.down));
		if (id)
			snprintf(path, sizeof path, "/api/v1/swarms/%s/limits", id);
		rc = cli_call(&conn, "limit", "POST", id ? path : "/api/v1/limits", body, &reply);
		json_decref(body);
		if (rc)
			return rc;
	}
	const json_t *lim = json_object_get(reply, "transfer") ? json_object_get(reply, "transfer")
							       : reply;
	printf("%s\n", id ? "swarm limits:" : "daemon limits:");
	print_rate("  upload  ", json_integer_value(json_object_get(lim, "upload_limit")));
	print_rate("  download", json_integer_value(json_object_get(lim, "download_limit")));
	json_decref(reply);
	return CLI_OK;
}
