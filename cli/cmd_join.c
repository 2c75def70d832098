/* cmd_join.c: `shoal join` (with a progress bar under --wait) and `shoal peers`. */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sys/stat.h>

#include "cli/cli.h"
#include "cli/client.h"
#include "cli/join.h"
#include "cli/progress.h"
#include "cli/table.h"
#include "common/util.h"

static int on_join_opt(int val, const char *arg, void *ctx)
{
	struct join_opts *o = ctx;
	switch (val) {
	case 'i':
		o->into = arg;
		return 0;
	case 'p':
		if (o->n_peers == JOIN_MAX_PEERS) {
			fprintf(stderr, "shoal join: at most %d --peer options\n", JOIN_MAX_PEERS);
			return CLI_USAGE;
		}
		o->peers[o->n_peers++] = arg;
		return 0;
	case 'w':
		o->wait = 1;
		return 0;
	case 'j':
		o->json = 1;
		return 0;
	case 'O':
		o->overwrite = 1;
		return 0;
	case 'o':
	case 's': {
		const char **v = val == 'o' ? o->only : o->skip;
		size_t *n = val == 'o' ? &o->n_only : &o->n_skip;
		if (!arg[0]) {
			fprintf(stderr, "shoal join: --%s needs a pattern (e.g. '*.mkv')\n",
				val == 'o' ? "only" : "skip");
			return CLI_USAGE;
		}
		if (*n == JOIN_MAX_GLOBS) {
			fprintf(stderr, "shoal join: at most %d --%s patterns\n", JOIN_MAX_GLOBS,
				val == 'o' ? "only" : "skip");
			return CLI_USAGE;
		}
		v[(*n)++] = arg;
		return 0;
	}
	case 'q':
		o->sequential = 1;
		return 0;
	}
	return CLI_USAGE;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

/* The bytes to download and those verified: of the wanted files when some
 * are skipped (the swarm's "selection"), else of the whole swarm. */
static void wanted_bytes(const json_t *sw, uint64_t *have_out, uint64_t *total_out)
{
	const json_t *sel = json_object_get(sw, "selection");
	if (json_is_object(sel)) {
		*have_out = (uint64_t)json_integer_value(json_object_get(sel, "bytes_have_wanted"));
		*total_out = (uint64_t)json_integer_value(json_object_get(sel, "bytes_wanted"));
	} else {
		*have_out = (uint64_t)json_integer_value(json_object_get(sw, "bytes_have"));
		*total_out = (uint64_t)json_integer_value(json_object_get(sw, "total_size"));
	}
}

/* Poll the swarm until it seeds (0), fails (CLI_FAIL) or Ctrl-C (130). */
static int wait_done(const struct cli_conn *conn, long long id)
{
	char path[64], extra[64];
	snprintf(path, sizeof path, "/api/v1/swarms/%lld", id);
	struct progress bar;
	progress_init(&bar, stderr, "downloading");
	join_catch_sigint();
	for (;;) {
		if (join_interrupted) {
			progress_finish(&bar);
			fprintf(stderr, "still downloading in the daemon; `shoal status` shows progress\n");
			return 130;
		}
		int rc;
		json_t *sw = NULL;
		if ((rc = cli_call(conn, "join", "GET", path, NULL, &sw))) {
			progress_finish(&bar);
			return rc;
		}
		const char *state = json_string_value(json_object_get(sw, "state"));
		json_t *xfer = json_object_get(sw, "transfer");
		uint64_t have, total;
		wanted_bytes(sw, &have, &total);
		if (state && strcmp(state, "seeding") == 0) {
			progress_update(&bar, total, total,
					json_real_value(json_object_get(xfer, "download_rate")), "done");
			progress_finish(&bar);
			json_decref(sw);
			return CLI_OK;
		}
		if (!state || strcmp(state, "error") == 0) {
			progress_finish(&bar);
			fprintf(stderr, "shoal join: %s\n",
				json_string_value(json_object_get(sw, "error")) ?: "failed");
			json_decref(sw);
			return CLI_FAIL;
		}
		const char *disk = json_string_value(json_object_get(xfer, "disk_error"));
		if (strcmp(state, "metadata") == 0)
			snprintf(extra, sizeof extra, "%lld peers, fetching metadata",
				 (long long)json_integer_value(json_object_get(xfer, "peers")));
		else
			snprintf(extra, sizeof extra, "%lld peers%s%s",
				 (long long)json_integer_value(json_object_get(xfer, "peers")),
				 disk ? ", disk full" : "", strcmp(state, "paused") == 0 ? ", paused" : "");
		progress_update(&bar, have, total, json_real_value(json_object_get(xfer, "download_rate")), extra);
		json_decref(sw);
		sleep_ms(300);
	}
}

/* Is `arg` a directory (of .torrent files to join)?  A magnet never is. */
static bool is_dir_arg(const char *arg)
{
	struct stat st;
	return strncmp(arg, "magnet:", 7) != 0 && stat(arg, &st) == 0 && S_ISDIR(st.st_mode);
}

/* One magnet link or .torrent file: the reply's swarm, and with --wait its
 * download followed to the end. */
static int join_one(const struct cli_conn *conn, const struct join_opts *o, const char *link,
		    const char *into)
{
	json_t *body = join_body(o, link, into);
	if (!body) {
		fprintf(stderr, "shoal join: out of memory\n");
		return CLI_FAIL;
	}
	json_t *reply = NULL;
	int rc = cli_call(conn, "join", "POST", "/api/v1/swarms", body, &reply);
	json_decref(body);
	if (rc)
		return rc;
	json_t *sw = json_object_get(reply, "swarm");
	long long id = (long long)json_integer_value(json_object_get(sw, "id"));
	if (o->json) {
		json_dumpf(reply, stdout, JSON_INDENT(2) | JSON_SORT_KEYS);
		putchar('\n');
	} else {
		printf("swarm %lld: %s %s into %s", id,
		       json_is_true(json_object_get(reply, "existing")) ? "already joined:" : "joining",
		       json_string_value(json_object_get(sw, "name")) ?: "?",
		       json_string_value(json_object_get(sw, "root")) ?: into);
		const json_t *sel = json_object_get(sw, "selection");
		if (json_is_object(sel))
			printf(" (%lld of %lld files)",
			       (long long)json_integer_value(json_object_get(sel, "files_wanted")),
			       (long long)(json_integer_value(json_object_get(sel, "files_wanted")) +
					   json_integer_value(json_object_get(sel, "files_skipped"))));
		putchar('\n');
	}
	json_decref(reply);
	fflush(stdout);
	return o->wait ? wait_done(conn, id) : CLI_OK;
}

int cmd_join(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "into", required_argument, NULL, 'i' }, { "peer", required_argument, NULL, 'p' },
		{ "wait", no_argument, NULL, 'w' },       { "json", no_argument, NULL, 'j' },
		{ "overwrite", no_argument, NULL, 'O' },  { "only", required_argument, NULL, 'o' },
		{ "skip", required_argument, NULL, 's' }, { "sequential", no_argument, NULL, 'q' },
		{ 0 },
	};
	struct cli_conn conn;
	struct join_opts o = { 0 };
	int rc = cli_getopt("join", argc, argv, opts, on_join_opt, &o, &conn);
	if (rc < 0)
		return CLI_GETOPT_EXIT(rc);
	if (rc == argc) {
		fprintf(stderr, "shoal join: expected a magnet link, a .torrent file or a directory "
				"of .torrent files\n");
		cli_usage(cli_find("join"), stderr);
		return CLI_USAGE;
	}
	size_t n_args = (size_t)(argc - rc);
	bool many = n_args > 1 || is_dir_arg(argv[rc]);
	if (many && o.wait) {
		fprintf(stderr, "shoal join: --wait follows one download: give one magnet link or "
				".torrent file (`shoal status` shows many)\n");
		return CLI_USAGE;
	}
	/* --into is made absolute but not resolved: the daemon creates it when
	 * missing and must see a symlink to refuse it.  Without --into the
	 * daemon's download-dir is used, never this process's directory. */
	char into[PATH_MAX];
	into[0] = '\0';
	if (o.into && o.into[0] == '/') {
		snprintf(into, sizeof into, "%s", o.into);
	} else if (o.into) {
		char cwd[PATH_MAX];
		errno = 0;
		if (!getcwd(cwd, sizeof cwd) ||
		    (size_t)snprintf(into, sizeof into, "%s/%s", cwd, o.into) >= sizeof into) {
			fprintf(stderr, "shoal join: %s: %s\n", o.into,
				errno ? strerror(errno) : "path too long");
			return CLI_FAIL;
		}
	}
	for (size_t i = 0; i < o.n_peers; i++) {
		char host[256];
		uint16_t port;
		if (parse_hostport(o.peers[i], host, sizeof host, &port) != 0) {
			fprintf(stderr, "shoal join: bad --peer '%s': expected HOST:PORT ([v6]:PORT)\n",
				o.peers[i]);
			return CLI_USAGE;
		}
	}
	char **args = argv + rc;
	const char *link = args[0];
	char abs_link[PATH_MAX];
	if (!many && strncmp(link, "magnet:", 7) != 0) {
		if (!realpath(link, abs_link)) {
			fprintf(stderr, "shoal join: %s: %s (expected a magnet link, a .torrent file or "
					"a directory of them)\n",
				link, strerror(errno));
			return CLI_FAIL;
		}
		link = abs_link;
	}
	if ((rc = cli_load_conn(&conn)) != 0)
		return rc;
	return many ? join_many(&conn, &o, into, args, n_args) : join_one(&conn, &o, link, into);
}

static const char *str_or(const json_t *o, const char *k, const char *d)
{
	const char *s = json_string_value(json_object_get(o, k));
	return s ? s : d;
}

int cmd_peers(int argc, char **argv)
{
	static const struct option opts[] = { { "json", no_argument, NULL, 'j' }, { 0 } };
	struct cli_conn conn;
	struct join_opts o = { 0 };
	int rc = cli_getopt("peers", argc, argv, opts, on_join_opt, &o, &conn);
	if (rc < 0)
		return CLI_GETOPT_EXIT(rc);
	if (rc + 1 != argc) {
		fprintf(stderr, "shoal peers: expected one swarm (id or info-hash)\n");
		return CLI_USAGE;
	}
	const char *id = argv[rc];
	if (strspn(id, "0123456789abcdefABCDEF") != strlen(id)) {
		fprintf(stderr, "shoal peers: '%s' is not a swarm id or info-hash\n", id);
		return CLI_USAGE;
	}
	if ((rc = cli_load_conn(&conn)))
		return rc;
	char path[128];
	snprintf(path, sizeof path, "/api/v1/swarms/%s/peers", id);
	json_t *reply = NULL;
	if ((rc = cli_call(&conn, "peers", "GET", path, NULL, &reply)))
		return rc;
	if (o.json) {
		json_dumpf(reply, stdout, JSON_INDENT(2) | JSON_SORT_KEYS);
		putchar('\n');
		json_decref(reply);
		return CLI_OK;
	}
	json_t *list = json_object_get(reply, "peers"), *p;
	size_t i;
	if (json_array_size(list) == 0) {
		printf("no peers connected\n");
		json_decref(reply);
		return CLI_OK;
	}
	struct table t;
	table_init(&t, 8, 1u << 3 | 1u << 4 | 1u << 5);
	int e = table_add(&t, "ADDRESS", "DIR", "CRYPTO", "HAVE", "DOWN/s", "UP/s", "FLAGS", "CLIENT");
	json_array_foreach(list, i, p) {
		char have[16], down[24], up[24], flags[8];
		snprintf(have, sizeof have, "%.0f%%",
			 100 * json_real_value(json_object_get(p, "progress")));
		format_bytes((uint64_t)json_real_value(json_object_get(p, "download_rate")), down, sizeof down);
		format_bytes((uint64_t)json_real_value(json_object_get(p, "upload_rate")), up, sizeof up);
		/* D: we download (they unchoke us), U: we upload (we unchoke them) */
		snprintf(flags, sizeof flags, "%s%s%s%s",
			 json_is_true(json_object_get(p, "am_interested")) ? "i" : "-",
			 json_is_false(json_object_get(p, "peer_choking")) ? "D" : "-",
			 json_is_true(json_object_get(p, "peer_interested")) ? "I" : "-",
			 json_is_false(json_object_get(p, "am_choking")) ? "U" : "-");
		const char *cipher = str_or(p, "cipher", "");
		const char *crypto = !json_is_true(json_object_get(p, "encrypted")) ? "plain"
				     : strcmp(cipher, "aes256gcm") == 0		 ? "aes-gcm"
				     : strcmp(cipher, "xchacha20poly1305") == 0	 ? "xchacha"
										 : "shoal";
		e |= table_add(&t, str_or(p, "address", "?"), str_or(p, "direction", "?"), crypto,
			       have, down, up, flags, str_or(p, "client", ""));
	}
	if (!e)
		table_print(&t, stdout);
	table_destroy(&t);
	json_decref(reply);
	return CLI_OK;
}
