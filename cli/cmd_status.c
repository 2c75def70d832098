/* cmd_status.c: `shoal status` and `shoal token`. */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/client.h"
#include "cli/table.h"
#include "common/util.h"

/* Without --all, a node with more swarms than fit on a screen shows the
 * counts by state and its busiest swarms instead of a row per swarm. */
#define STATUS_ROWS_NOT_TTY 20 /* rows of swarms when stdout is not a terminal */
#define STATUS_BUSIEST 10      /* swarms shown in the summary, at most */
#define STATUS_ERRORS 5        /* swarms in error named in the summary */
#define STATUS_PAGE 1000       /* swarms per request when listing them all */

struct status_opts {
	int json, all;
};

static int on_status_opt(int val, const char *arg, void *ctx)
{
	(void)arg;
	struct status_opts *o = ctx;
	if (val == 'j')
		o->json = 1;
	else if (val == 'a')
		o->all = 1;
	return 0;
}

static const char *str_or(const json_t *obj, const char *key, const char *dflt)
{
	const char *s = json_string_value(json_object_get(obj, key));
	return s ? s : dflt;
}

static void format_uptime(json_int_t s, char *out, size_t len)
{
	if (s >= 86400)
		snprintf(out, len, "%lldd%02lldh", (long long)s / 86400, (long long)(s % 86400) / 3600);
	else if (s >= 3600)
		snprintf(out, len, "%lldh%02lldm", (long long)s / 3600, (long long)(s % 3600) / 60);
	else
		snprintf(out, len, "%lldm%02llds", (long long)s / 60, (long long)s % 60);
}

/* How many swarm rows fit: the terminal's height less the lines around
 * the table (the node's 7, two blank ones, the heading, the prompt), or
 * STATUS_ROWS_NOT_TTY when stdout is not a terminal. */
static size_t swarm_rows_that_fit(void)
{
	struct winsize ws;
	if (isatty(STDOUT_FILENO) && ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_row > 0)
		return ws.ws_row > 16 ? (size_t)ws.ws_row - 11 : 5;
	return STATUS_ROWS_NOT_TTY;
}

static const char *const state_order[] = { "seeding", "downloading", "metadata", "hashing",
					    "checking", "paused", "error" };
#define N_STATE_ORDER (sizeof state_order / sizeof state_order[0])

static bool known_state(const char *name)
{
	for (size_t k = 0; k < N_STATE_ORDER; k++)
		if (strcmp(state_order[k], name) == 0)
			return true;
	return false;
}

/* Append ", COUNT NAME" (": " before the first) when COUNT > 0. */
static void add_count(char *out, size_t len, size_t *used, const char **sep, const char *name,
		      json_int_t count)
{
	if (count <= 0 || *used >= len)
		return;
	*used += (size_t)snprintf(out + *used, len - *used, "%s%lld %s", *sep, (long long)count,
				  name);
	*sep = ", ";
}

/* "4: 3 seeding, 1 downloading" from status.swarms (states with no swarm
 * left out): the usual states in this order, then any this CLI does not
 * know yet. */
static void format_counts(const json_t *swarms, char *out, size_t len)
{
	const json_t *by = json_object_get(swarms, "by_state");
	size_t used = (size_t)snprintf(out, len, "%lld",
				       (long long)json_integer_value(json_object_get(swarms, "total")));
	const char *sep = ": ";
	for (size_t k = 0; k < N_STATE_ORDER; k++)
		add_count(out, len, &used, &sep, state_order[k],
			  json_integer_value(json_object_get(by, state_order[k])));
	const char *name;
	json_t *v;
	json_object_foreach((json_t *)by, name, v)
		if (!known_state(name))
			add_count(out, len, &used, &sep, name, json_integer_value(v));
}

/* The reachability cell: "reachable: 203.0.113.7:6881 via UPnP", "not
 * mapped: <why>" or "port mapping off" (with what peers say we are). */
/* RFC 1918 or shared 100.64/10: a router reporting such a WAN address is
 * itself behind another NAT. */
static bool private_v4(const char *text)
{
	uint8_t a[4];
	if (inet_pton(AF_INET, text, a) != 1)
		return false;
	return ipv4_rfc1918(a) || (a[0] == 100 && (a[1] & 0xc0) == 64);
}

static void format_reach(const json_t *r, char *cell, size_t len)
{
	const char *method = str_or(r, "method", "off");
	const char *ext = str_or(r, "external_addr", NULL);
	const json_t *port = json_object_get(r, "mapped_port");
	const char *router = str_or(r, "router_addr", NULL);
	const char *src = str_or(r, "external_addr_source", "");
	if ((strcmp(method, "upnp") == 0 || strcmp(method, "natpmp") == 0) && router &&
	    strcmp(src, "router") != 0 && private_v4(router))
		/* The router's own address is not public: another NAT is in the way. */
		snprintf(cell, len, "mapped on the router via %s (port %lld), but its address %s is "
				    "behind another NAT: not reachable from the Internet",
			 strcmp(method, "upnp") == 0 ? "UPnP" : "NAT-PMP",
			 (long long)json_integer_value(port), router);
	else if (strcmp(method, "upnp") == 0 || strcmp(method, "natpmp") == 0)
		snprintf(cell, len, "reachable: %s:%lld via %s", ext ? ext : "(address unknown)",
			 (long long)json_integer_value(port),
			 strcmp(method, "upnp") == 0 ? "UPnP" : "NAT-PMP");
	else if (strcmp(method, "off") == 0)
		snprintf(cell, len, "port mapping off%s%s%s", ext ? " (peers see us as " : "",
			 ext ? ext : "", ext ? ")" : "");
	else
		snprintf(cell, len, "not mapped: %s",
			 str_or(r, "last_error", "looking for a router (no attempt finished yet)"));
}

static void print_node(const json_t *st)
{
	const json_t *node = json_object_get(st, "node");
	const json_t *dht = json_object_get(st, "dht");
	const json_t *xfer = json_object_get(st, "transfer");
	const json_t *swarms = json_object_get(st, "swarms");
	char up[32], cell[TABLE_MAX_CELL];
	format_uptime(json_integer_value(json_object_get(node, "uptime_s")), up, sizeof up);

	struct table t;
	table_init(&t, 2, 0);
	int e = 0;
	snprintf(cell, sizeof cell, "shoal %s, pid %lld, up %s", str_or(node, "version", "?"),
		 (long long)json_integer_value(json_object_get(node, "pid")), up);
	e |= table_add(&t, "node", cell);
	e |= table_add(&t, "id", str_or(node, "id", "?"));
	e |= table_add(&t, "data dir", str_or(node, "data_dir", "?"));
	snprintf(cell, sizeof cell, "http://%s/api/v1/", str_or(node, "api", "?"));
	e |= table_add(&t, "API", cell);
	if (json_is_true(json_object_get(dht, "running")))
		snprintf(cell, sizeof cell, "running, %lld good / %lld nodes",
			 (long long)json_integer_value(json_object_get(dht, "good_nodes")),
			 (long long)json_integer_value(json_object_get(dht, "nodes")));
	else
		snprintf(cell, sizeof cell, "not running (%s)", str_or(dht, "note", "off"));
	e |= table_add(&t, "DHT", cell);
	const json_t *lsd = json_object_get(st, "lsd");
	if (json_is_true(json_object_get(lsd, "enabled")))
		snprintf(cell, sizeof cell, "on %lld interface(s), %lld sent, %lld peers found, "
			 "%lld malformed",
			 (long long)json_integer_value(json_object_get(lsd, "interfaces")),
			 (long long)json_integer_value(json_object_get(lsd, "announces_sent")),
			 (long long)json_integer_value(json_object_get(lsd, "peers_found")),
			 (long long)json_integer_value(json_object_get(lsd, "malformed")));
	else
		snprintf(cell, sizeof cell, "off (%s)", str_or(lsd, "note", "off"));
	if (lsd)
		e |= table_add(&t, "LAN", cell);
	if (json_is_true(json_object_get(xfer, "running")))
		snprintf(cell, sizeof cell, "listening on port %lld, encryption %s, cipher %s%s",
			 (long long)json_integer_value(json_object_get(xfer, "peer_port")),
			 str_or(xfer, "encryption", "?"), str_or(xfer, "cipher", "?"),
			 json_is_false(json_object_get(xfer, "aes256gcm_available"))
				 ? " (no AES-NI: xchacha20poly1305)"
				 : "");
	else
		snprintf(cell, sizeof cell, "not running (%s)", str_or(xfer, "note", "off"));
	e |= table_add(&t, "transfer", cell);
	if (json_is_object(json_object_get(st, "reachability"))) {
		format_reach(json_object_get(st, "reachability"), cell, sizeof cell);
		e |= table_add(&t, "reach", cell);
	}
	if (json_is_object(json_object_get(swarms, "by_state"))) {
		format_counts(swarms, cell, sizeof cell);
		e |= table_add(&t, "swarms", cell);
	}
	if (!e)
		table_print(&t, stdout);
	table_destroy(&t);
}

static void print_swarm_table(const json_t *list)
{
	struct table t;
	table_init(&t, 9, 1u << 0 | 1u << 4 | 1u << 5 | 1u << 6 | 1u << 7 | 1u << 8);
	int e = table_add(&t, "ID", "NAME", "ROLE", "STATE", "DONE", "SIZE", "DOWN/s", "UP/s", "PEERS");
	size_t i;
	json_t *sw;
	json_array_foreach(list, i, sw) {
		char id[24], size[32], done[16], down[24], upr[24], peers[16];
		const json_t *x = json_object_get(sw, "transfer");
		snprintf(id, sizeof id, "%lld", (long long)json_integer_value(json_object_get(sw, "id")));
		format_bytes((uint64_t)json_integer_value(json_object_get(sw, "total_size")), size,
			     sizeof size);
		/* With files skipped, DONE is of the wanted files, and a swarm
		 * that has them all says how many of its files it holds. */
		const json_t *sel = json_object_get(sw, "selection");
		double progress = json_number_value(json_object_get(sw, "progress"));
		json_int_t wanted = json_integer_value(json_object_get(sel, "bytes_wanted"));
		if (json_is_object(sel) && wanted > 0)
			progress = (double)json_integer_value(json_object_get(sel, "bytes_have_wanted")) /
				   (double)wanted;
		snprintf(done, sizeof done, "%.1f%%", 100.0 * progress);
		format_bytes((uint64_t)json_number_value(json_object_get(x, "download_rate")), down,
			     sizeof down);
		format_bytes((uint64_t)json_number_value(json_object_get(x, "upload_rate")), upr,
			     sizeof upr);
		snprintf(peers, sizeof peers, "%lld",
			 (long long)json_integer_value(json_object_get(x, "peers")));
		char state[64];
		snprintf(state, sizeof state, "%s", str_or(sw, "state", ""));
		if (json_is_object(sel) && strcmp(state, "seeding") == 0)
			snprintf(state, sizeof state, "seeding (%lld of %lld files)",
				 (long long)json_integer_value(json_object_get(sel, "files_wanted")),
				 (long long)(json_integer_value(json_object_get(sel, "files_wanted")) +
					     json_integer_value(json_object_get(sel, "files_skipped"))));
		e |= table_add(&t, id, str_or(sw, "name", ""), str_or(sw, "role", ""), state, done,
			       size, down, upr, peers);
	}
	if (!e)
		table_print(&t, stdout);
	table_destroy(&t);
}

static bool in_list(const json_t *list, json_int_t id)
{
	size_t i;
	json_t *sw;
	json_array_foreach(list, i, sw)
		if (json_integer_value(json_object_get(sw, "id")) == id)
			return true;
	return false;
}

/* "swarm N: why" for each swarm of `list` in error or with a disk error,
 * leaving out those in `skip` (may be NULL).  Returns how many it printed. */
static size_t print_swarm_errors(const json_t *list, const json_t *skip)
{
	size_t i, n = 0;
	json_t *sw;
	json_array_foreach(list, i, sw) {
		json_int_t id = json_integer_value(json_object_get(sw, "id"));
		const char *err = json_string_value(json_object_get(sw, "error"));
		const char *disk = json_string_value(
			json_object_get(json_object_get(sw, "transfer"), "disk_error"));
		if ((err || disk) && !(skip && in_list(skip, id))) {
			printf("swarm %lld: %s\n", (long long)id, err ? err : disk);
			n++;
		}
	}
	return n;
}

/* Every swarm, a page of STATUS_PAGE at a time (so no one request holds
 * the daemon's loop for long, and no reply grows past the client's cap). */
static int fetch_all_swarms(const struct cli_conn *conn, json_t **out)
{
	json_t *all = json_array();
	char path[96];
	snprintf(path, sizeof path, "/api/v1/swarms?limit=%d", STATUS_PAGE);
	json_int_t after = 0;
	for (;;) {
		json_t *page = NULL;
		int rc = cli_call(conn, "status", "GET", path, NULL, &page);
		if (rc) {
			json_decref(all);
			return rc;
		}
		json_array_extend(all, json_object_get(page, "swarms"));
		const json_t *next = json_object_get(page, "next");
		bool more = json_is_integer(next) && json_integer_value(next) > after;
		if (more)
			after = json_integer_value(next);
		json_decref(page);
		if (!more)
			break;
		snprintf(path, sizeof path, "/api/v1/swarms?limit=%d&after=%lld", STATUS_PAGE,
			 (long long)after);
	}
	*out = all;
	return 0;
}

/* The summary: the busiest swarms, those in error, and how to see all. */
static int print_summary(const struct cli_conn *conn, const json_t *st, size_t fit)
{
	json_int_t total = json_integer_value(json_object_get(json_object_get(st, "swarms"), "total"));
	json_int_t in_error = json_integer_value(json_object_get(
		json_object_get(json_object_get(st, "swarms"), "by_state"), "error"));
	size_t shown = fit < STATUS_BUSIEST ? fit : STATUS_BUSIEST;
	char path[96];
	snprintf(path, sizeof path, "/api/v1/swarms?sort=busiest&limit=%zu", shown);
	json_t *busy = NULL, *errs = NULL;
	int rc = cli_call(conn, "status", "GET", path, NULL, &busy);
	if (!rc && in_error > 0) {
		snprintf(path, sizeof path, "/api/v1/swarms?state=error&limit=%d", STATUS_ERRORS);
		rc = cli_call(conn, "status", "GET", path, NULL, &errs);
	}
	if (rc) {
		json_decref(busy);
		return rc;
	}
	const json_t *list = json_object_get(busy, "swarms");
	printf("\nthe %zu busiest of %lld swarms (by transfer rate, then peers, then bytes moved):\n",
	       json_array_size(list), (long long)total);
	print_swarm_table(list);
	print_swarm_errors(list, NULL);
	size_t named = print_swarm_errors(json_object_get(errs, "swarms"), list);
	if (in_error > (json_int_t)named && errs)
		printf("(%lld swarms in error in all)\n", (long long)in_error);
	printf("\n`shoal status --all` lists all %lld swarms.\n", (long long)total);
	json_decref(busy);
	json_decref(errs);
	return CLI_OK;
}

int cmd_status(int argc, char **argv)
{
	static const struct option opts[] = { { "json", no_argument, NULL, 'j' },
					      { "all", no_argument, NULL, 'a' },
					      { 0 } };
	struct cli_conn conn;
	struct status_opts o = { 0, 0 };
	int rc = cli_getopt("status", argc, argv, opts, on_status_opt, &o, &conn);
	if (rc < 0)
		return CLI_GETOPT_EXIT(rc);
	if (rc < argc) {
		fprintf(stderr, "shoal status: unexpected argument '%s'\n", argv[rc]);
		return CLI_USAGE;
	}
	if ((rc = cli_load_conn(&conn)))
		return rc;
	json_t *st = NULL, *swarms = NULL;
	if ((rc = cli_call(&conn, "status", "GET", "/api/v1/status", NULL, &st)))
		return rc;
	if (o.json) {
		json_dumpf(st, stdout, JSON_INDENT(2) | JSON_SORT_KEYS);
		putchar('\n');
		json_decref(st);
		return CLI_OK;
	}
	print_node(st);
	const json_t *total = json_object_get(json_object_get(st, "swarms"), "total");
	size_t fit = swarm_rows_that_fit();
	if (!o.all && json_is_integer(total) && json_integer_value(total) > (json_int_t)fit) {
		rc = print_summary(&conn, st, fit);
		json_decref(st);
		return rc;
	}
	json_decref(st);
	if ((rc = fetch_all_swarms(&conn, &swarms)))
		return rc;
	printf("\n");
	if (json_array_size(swarms) == 0)
		printf("no swarms yet: `shoal share DIR` or `shoal join LINK`\n");
	else
		print_swarm_table(swarms);
	print_swarm_errors(swarms, NULL);
	json_decref(swarms);
	return CLI_OK;
}

static int on_token_opt(int val, const char *arg, void *ctx)
{
	(void)arg;
	if (val == 'm')
		*(bool *)ctx = true;
	return 0;
}

/* Make DATA_DIR/metrics.token: 32 random bytes as hex, 0600, never over an
 * existing file (O_EXCL: a daemon or another `shoal token` may race us).
 * Returns 0, or -errno. */
static int make_metrics_token(const char *path, const struct stat *data_dir_st)
{
	uint8_t raw[32];
	if (getrandom(raw, sizeof raw, 0) != (ssize_t)sizeof raw)
		return -EIO;
	/* Root making the token of a daemon that runs as another user (the
	 * service's /var/lib/shoal): the file belongs to the data dir's owner,
	 * or that daemon could not read it. */
	bool give = geteuid() == 0 && data_dir_st && data_dir_st->st_uid != 0;
	int e = write_secret_hex_file(path, raw, sizeof raw,
				      give ? data_dir_st->st_uid : (uid_t)-1,
				      give ? data_dir_st->st_gid : (gid_t)-1);
	memset(raw, 0, sizeof raw);
	return e == -EEXIST ? 0 : e;
}

int cmd_token(int argc, char **argv)
{
	static const struct option opts[] = { { "metrics", no_argument, NULL, 'm' }, { 0 } };
	struct cli_conn conn;
	bool metrics = false;
	int rc = cli_getopt("token", argc, argv, opts, on_token_opt, &metrics, &conn);
	if (rc < 0)
		return CLI_GETOPT_EXIT(rc);
	if (rc < argc) {
		fprintf(stderr, "shoal token: unexpected argument '%s'\n", argv[rc]);
		return CLI_USAGE;
	}
	char path[PATH_MAX + 16];
	snprintf(path, sizeof path, "%s/%s", conn.data_dir, metrics ? "metrics.token" : "api.token");
	if (metrics) {
		struct stat dst;
		int e = make_metrics_token(path, stat(conn.data_dir, &dst) == 0 ? &dst : NULL);
		if (e) {
			fprintf(stderr, "shoal token: cannot create %s: %s\n", path, strerror(-e));
			return CLI_FAIL;
		}
	}
	/* Only a regular file, never through a symlink: root printing the
	 * token of a data dir another user owns must not print a file that
	 * user linked there. */
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		bool missing = fd < 0 && errno == ENOENT;
		if (fd >= 0)
			close(fd);
		if (missing) {
			fprintf(stderr,
				"shoal token: no token in %s yet; start `shoal daemon` once to create it\n",
				conn.data_dir);
			return CLI_NO_DAEMON;
		}
		fprintf(stderr, "shoal token: %s is not a regular file\n", path);
		return CLI_FAIL;
	}
	char tok[80] = "";
	ssize_t n = read(fd, tok, sizeof tok - 1);
	close(fd);
	tok[n > 0 ? n : 0] = '\0';
	tok[strcspn(tok, "\r\n")] = '\0';
	if (strlen(tok) != 64) {
		fprintf(stderr, "shoal token: %s is malformed\n", path);
		return CLI_FAIL;
	}
	puts(tok);
	return CLI_OK;
}
