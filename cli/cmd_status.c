/* cmd_status.c: `shoal status` and `shoal token`. */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/client.h"
#include "cli/table.h"
#include "common/util.h"

static int on_json_opt(int val, const char *arg, void *ctx)
{
	(void)arg;
	*(int *)ctx = val == 'j';
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

static void print_status(const json_t *st, const json_t *swarms)
{
	const json_t *node = json_object_get(st, "node");
	const json_t *dht = json_object_get(st, "dht");
	const json_t *xfer = json_object_get(st, "transfer");
	char up[32], cell[160];
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
	if (!e)
		table_print(&t, stdout);
	table_destroy(&t);

	const json_t *list = json_object_get(swarms, "swarms");
	printf("\n");
	if (json_array_size(list) == 0) {
		printf("no swarms yet: `shoal share DIR` or `shoal join LINK`\n");
		return;
	}
	table_init(&t, 9, 1u << 0 | 1u << 4 | 1u << 5 | 1u << 6 | 1u << 7 | 1u << 8);
	e = table_add(&t, "ID", "NAME", "ROLE", "STATE", "DONE", "SIZE", "DOWN/s", "UP/s", "PEERS");
	size_t i;
	json_t *sw;
	json_array_foreach(list, i, sw) {
		char id[24], size[32], done[16], down[24], upr[24], peers[16];
		const json_t *x = json_object_get(sw, "transfer");
		snprintf(id, sizeof id, "%lld", (long long)json_integer_value(json_object_get(sw, "id")));
		format_bytes((uint64_t)json_integer_value(json_object_get(sw, "total_size")), size,
			     sizeof size);
		snprintf(done, sizeof done, "%.1f%%",
			 100.0 * json_number_value(json_object_get(sw, "progress")));
		format_bytes((uint64_t)json_number_value(json_object_get(x, "download_rate")), down,
			     sizeof down);
		format_bytes((uint64_t)json_number_value(json_object_get(x, "upload_rate")), upr,
			     sizeof upr);
		snprintf(peers, sizeof peers, "%lld",
			 (long long)json_integer_value(json_object_get(x, "peers")));
		const char *state = str_or(sw, "state", "");
		e |= table_add(&t, id, str_or(sw, "name", ""), str_or(sw, "role", ""), state, done,
			       size, down, upr, peers);
	}
	if (!e)
		table_print(&t, stdout);
	table_destroy(&t);
	json_array_foreach(list, i, sw) {
		const char *err = json_string_value(json_object_get(sw, "error"));
		const char *disk = json_string_value(
			json_object_get(json_object_get(sw, "transfer"), "disk_error"));
		if (err || disk)
			printf("swarm %lld: %s\n", (long long)json_integer_value(json_object_get(sw, "id")),
			       err ? err : disk);
	}
}

int cmd_status(int argc, char **argv)
{
	static const struct option opts[] = { { "json", no_argument, NULL, 'j' }, { 0 } };
	struct cli_conn conn;
	int json = 0;
	int rc = cli_getopt("status", argc, argv, opts, on_json_opt, &json, &conn);
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
	if (json) {
		json_dumpf(st, stdout, JSON_INDENT(2) | JSON_SORT_KEYS);
		putchar('\n');
		json_decref(st);
		return CLI_OK;
	}
	if ((rc = cli_call(&conn, "status", "GET", "/api/v1/swarms", NULL, &swarms))) {
		json_decref(st);
		return rc;
	}
	print_status(st, swarms);
	json_decref(st);
	json_decref(swarms);
	return CLI_OK;
}

int cmd_token(int argc, char **argv)
{
	struct cli_conn conn;
	int rc = cli_getopt("token", argc, argv, NULL, NULL, NULL, &conn);
	if (rc < 0)
		return CLI_GETOPT_EXIT(rc);
	if (rc < argc) {
		fprintf(stderr, "shoal token: unexpected argument '%s'\n", argv[rc]);
		return CLI_USAGE;
	}
	char path[PATH_MAX + 16];
	snprintf(path, sizeof path, "%s/api.token", conn.data_dir);
	FILE *f = fopen(path, "r");
	if (!f) {
		fprintf(stderr, "shoal token: no token in %s yet; start `shoal daemon` once to create it\n",
			conn.data_dir);
		return CLI_NO_DAEMON;
	}
	char tok[80] = "";
	if (!fgets(tok, sizeof tok, f))
		tok[0] = '\0';
	fclose(f);
	tok[strcspn(tok, "\r\n")] = '\0';
	if (strlen(tok) != 64) {
		fprintf(stderr, "shoal token: %s is malformed\n", path);
		return CLI_FAIL;
	}
	puts(tok);
	return CLI_OK;
}
