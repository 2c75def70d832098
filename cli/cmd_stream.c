/* cmd_stream.c: `shoal stream SWARM FILE`: an address a player opens to
 * read one file while it downloads; --list and --revoke ID. */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/browser.h"
#include "cli/cli.h"
#include "cli/client.h"
#include "cli/table.h"

struct stream_opts {
	int json, open, list;
	const char *ttl, *revoke;
};

static int on_opt(int val, const char *arg, void *ctx)
{
	struct stream_opts *o = ctx;
	if (val == 'j')
		o->json = 1;
	else if (val == 'o')
		o->open = 1;
	else if (val == 'l')
		o->list = 1;
	else if (val == 't')
		o->ttl = arg;
	else if (val == 'r')
		o->revoke = arg;
	else
		return CLI_USAGE;
	return 0;
}

/* A swarm id or info-hash prefix, or a stream id: digits and hex only, so
 * it goes into a path as it is. */
static bool plain_key(const char *s)
{
	size_t n = strlen(s);
	return n >= 1 && n <= 64 && strspn(s, "0123456789abcdefABCDEF") == n;
}

/* The index of FILE in the swarm: its path inside the torrent (as `shoal
 * files` shows it), else a number taken as the index.  The files come from
 * GET /api/v1/swarms/ID/files, or from GET /api/v1/swarms/ID ("files" in
 * index order) from a daemon without that endpoint.  Returns 0 with
 * *index_out, or an exit code after printing why. */
static int resolve_file(const struct cli_conn *conn, const char *swarm, const char *file,
			long *index_out)
{
	char path[160];
	snprintf(path, sizeof path, "/api/v1/swarms/%s/files", swarm);
	int status = 0;
	json_t *reply = NULL;
	int rc = cli_request(conn, "GET", path, NULL, &status, &reply);
	if (rc)
		return rc;
	if (status == 404 || status == 405) {
		/* No such endpoint (an older daemon) or no such swarm: the
		 * swarm itself says which. */
		json_decref(reply);
		reply = NULL;
		snprintf(path, sizeof path, "/api/v1/swarms/%s", swarm);
		if ((rc = cli_call(conn, "stream", "GET", path, NULL, &reply)))
			return rc;
	} else if (status < 200 || status > 299) {
		cli_print_error("stream", status, reply);
		json_decref(reply);
		return CLI_FAIL;
	}
	json_t *files = json_object_get(reply, "files");
	if (!json_is_array(files) || json_array_size(files) == 0) {
		fprintf(stderr, "shoal stream: swarm %s has no file list yet (a magnet link whose "
				"metadata has not arrived)\n", swarm);
		json_decref(reply);
		return CLI_FAIL;
	}
	size_t i;
	json_t *f;
	long found = -1;
	json_array_foreach(files, i, f) {
		const char *p = json_string_value(json_object_get(f, "path"));
		json_t *idx = json_object_get(f, "index");
		if (p && strcmp(p, file) == 0) {
			found = json_is_integer(idx) ? (long)json_integer_value(idx) : (long)i;
			break;
		}
	}
	size_t n = strlen(file);
	if (found < 0 && n > 0 && n <= 9 && strspn(file, "0123456789") == n) {
		long v = strtol(file, NULL, 10);
		if ((size_t)v < json_array_size(files))
			found = v;
	}
	if (found < 0) {
		fprintf(stderr, "shoal stream: swarm %s has no file '%s'; its files are:\n", swarm,
			file);
		json_array_foreach(files, i, f) {
			if (i == 20) {
				fprintf(stderr, "  ... and %zu more (shoal files %s)\n",
					json_array_size(files) - 20, swarm);
				break;
			}
			fprintf(stderr, "  %zu  %s\n", i,
				json_string_value(json_object_get(f, "path")) ?: "?");
		}
		json_decref(reply);
		return CLI_FAIL;
	}
	json_decref(reply);
	*index_out = found;
	return 0;
}

/* Is `url` a stream address of the daemon we asked ("http://ADDR/stream/"
 * then only URL-safe characters)?  Whatever holds the port while the
 * daemon is down must not steer a player or browser elsewhere, nor get
 * xdg-open to take an option, nor put markup into the redirect page. */
static bool url_is_stream(const char *url, const char *addr)
{
	if (!url || strncmp(url, "http://", 7) != 0)
		return false;
	char host[160], want[200];
	cli_reach_addr(addr, host, sizeof host);
	snprintf(want, sizeof want, "http://%s/stream/", host);
	size_t n = strlen(want);
	if (strncmp(url, want, n) != 0)
		return false;
	const char *rest = url + n;
	return *rest && strspn(rest, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
				     "0123456789-._~%/") == strlen(rest);
}

static int list_streams(const struct cli_conn *conn, bool json)
{
	json_t *reply = NULL;
	int rc = cli_call(conn, "stream", "GET", "/api/v1/streams", NULL, &reply);
	if (rc)
		return rc;
	if (json) {
		json_dumpf(reply, stdout, JSON_INDENT(2) | JSON_SORT_KEYS);
		putchar('\n');
		json_decref(reply);
		return CLI_OK;
	}
	json_t *list = json_object_get(reply, "streams");
	if (json_array_size(list) == 0) {
		printf("no stream addresses (make one: shoal stream SWARM FILE)\n");
		json_decref(reply);
		return CLI_OK;
	}
	struct table t;
	table_init(&t, 6, 1u << 1 | 1u << 2 | 1u << 4);
	int e = table_add(&t, "ID", "SWARM", "FILE", "EXPIRES", "READERS", "PATH");
	size_t i;
	json_t *s;
	json_array_foreach(list, i, s) {
		char sw[24], file[24], readers[24];
		snprintf(sw, sizeof sw, "%lld", (long long)json_integer_value(json_object_get(s, "swarm")));
		snprintf(file, sizeof file, "%lld", (long long)json_integer_value(json_object_get(s, "file")));
		snprintf(readers, sizeof readers, "%lld",
			 (long long)json_integer_value(json_object_get(s, "readers")));
		e |= table_add(&t, json_string_value(json_object_get(s, "id")) ?: "?", sw, file,
			       json_string_value(json_object_get(s, "expires_at")) ?: "?", readers,
			       json_string_value(json_object_get(s, "path")) ?: "(swarm gone)");
	}
	if (!e)
		table_print(&t, stdout);
	table_destroy(&t);
	json_decref(reply);
	return CLI_OK;
}

static int revoke_stream(const struct cli_conn *conn, const char *id)
{
	if (!plain_key(id)) {
		fprintf(stderr, "shoal stream: '%s' is not a stream id (see shoal stream --list)\n", id);
		return CLI_USAGE;
	}
	char path[128];
	snprintf(path, sizeof path, "/api/v1/streams/%s", id);
	json_t *reply = NULL;
	int rc = cli_call(conn, "stream", "DELETE", path, NULL, &reply);
	json_decref(reply);
	if (rc)
		return rc;
	printf("revoked %s: its address no longer works, and its readers were closed\n", id);
	return CLI_OK;
}

int cmd_stream(int argc, char **argv)
{
	static const struct option extra[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "open", no_argument, NULL, 'o' },
		{ "list", no_argument, NULL, 'l' },
		{ "ttl", required_argument, NULL, 't' },
		{ "revoke", required_argument, NULL, 'r' },
		{ 0 },
	};
	struct stream_opts o = { 0 };
	struct cli_conn conn;
	int rc = cli_getopt("stream", argc, argv, extra, on_opt, &o, &conn);
	if (rc < 0)
		return CLI_GETOPT_EXIT(rc);
	int npos = argc - rc;
	if (o.list || o.revoke) {
		if (npos || (o.list && o.revoke) || o.open || o.ttl) {
			fprintf(stderr, "shoal stream: --list and --revoke ID take no other argument "
					"(but --json with --list)\n");
			return CLI_USAGE;
		}
		if ((rc = cli_load_conn(&conn)))
			return rc;
		return o.list ? list_streams(&conn, o.json) : revoke_stream(&conn, o.revoke);
	}
	if (npos != 2) {
		fprintf(stderr, "shoal stream: expected SWARM and FILE (see shoal stream --help)\n");
		return CLI_USAGE;
	}
	const char *swarm = argv[rc], *file = argv[rc + 1];
	if (!plain_key(swarm)) {
		fprintf(stderr, "shoal stream: '%s' is not a swarm id or info-hash prefix\n", swarm);
		return CLI_USAGE;
	}
	long ttl = -1;
	if (o.ttl) {
		char *end = NULL;
		errno = 0;
		ttl = strtol(o.ttl, &end, 10);
		if (errno || !*o.ttl || *end || ttl < 1 || ttl > 604800) {
			fprintf(stderr, "shoal stream: --ttl takes whole seconds, 1 to 604800 (7 days)\n");
			return CLI_USAGE;
		}
	}
	if ((rc = cli_load_conn(&conn)))
		return rc;
	long index;
	if ((rc = resolve_file(&conn, swarm, file, &index)))
		return rc;
	char path[160];
	snprintf(path, sizeof path, "/api/v1/swarms/%s/files/%ld/stream", swarm, index);
	json_t *body = ttl > 0 ? json_pack("{s:I}", "ttl", (json_int_t)ttl) : NULL;
	json_t *reply = NULL;
	rc = cli_call(&conn, "stream", "POST", path, body, &reply);
	json_decref(body);
	if (rc)
		return rc;
	const char *url = json_string_value(json_object_get(reply, "url"));
	if (!url_is_stream(url, conn.addr)) {
		fprintf(stderr, "shoal stream: the reply from %s is not a stream address of a shoal "
				"daemon\n", conn.addr);
		json_decref(reply);
		return CLI_FAIL;
	}
	if (o.json) {
		json_dumpf(reply, stdout, JSON_INDENT(2) | JSON_SORT_KEYS);
		putchar('\n');
	} else {
		printf("%s\n", url);
		fprintf(stderr, "stream %s: until %s (shoal stream --revoke %s ends it sooner); "
				"anyone on this machine with the address can read the file\n",
			json_string_value(json_object_get(reply, "id")) ?: "?",
			json_string_value(json_object_get(reply, "expires_at")) ?: "?",
			json_string_value(json_object_get(reply, "id")) ?: "?");
	}
	rc = CLI_OK;
	if (o.open && cli_open_address("stream", conn.data_dir, "shoal-stream.html",
				       "shoal: opening a stream", "Open the stream", url) != 0)
		rc = CLI_FAIL;
	json_decref(reply);
	return rc;
}
