/* cmd_trackers.c: `shoal trackers SWARM` (the table, --json) and its
 * --add, --remove and --reannounce. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "cli/client.h"
#include "cli/table.h"

struct trackers_opts {
	int json, reannounce;
	const char *add, *remove;
};

static int on_opt(int val, const char *arg, void *ctx)
{
	struct trackers_opts *o = ctx;
	if (val == 'j')
		o->json = 1;
	else if (val == 'r')
		o->reannounce = 1;
	else if (val == 'a')
		o->add = arg;
	else if (val == 'R')
		o->remove = arg;
	else
		return CLI_USAGE;
	return 0;
}

/* "12s ago" / "in 29m" / "-" */
static void when(json_int_t t, json_int_t now, char *out, size_t len)
{
	if (t <= 0) {
		snprintf(out, len, "-");
		return;
	}
	long long d = (long long)(t > now ? t - now : now - t);
	char span[32];
	if (d >= 3600)
		snprintf(span, sizeof span, "%lldh%02lldm", d / 3600, d % 3600 / 60);
	else if (d >= 60)
		snprintf(span, sizeof span, "%lldm%02llds", d / 60, d % 60);
	else
		snprintf(span, sizeof span, "%llds", d);
	snprintf(out, len, t > now ? "in %s" : "%s ago", span);
}

static void count(const json_t *v, char *out, size_t len)
{
	if (json_is_integer(v))
		snprintf(out, len, "%lld", (long long)json_integer_value(v));
	else
		snprintf(out, len, "-");
}

static void print_table(const json_t *reply)
{
	const json_t *list = json_object_get(reply, "trackers");
	json_int_t now = json_integer_value(json_object_get(reply, "now"));
	if (!now)
		now = (json_int_t)time(NULL);
	if (json_array_size(list) == 0) {
		printf("swarm %lld has no trackers (add one: shoal trackers %lld --add URL)\n",
		       (long long)json_integer_value(json_object_get(reply, "id")),
		       (long long)json_integer_value(json_object_get(reply, "id")));
		return;
	}
	struct table t;
	table_init(&t, 9, 1u << 0 | 1u << 3 | 1u << 4 | 1u << 5);
	int e = table_add(&t, "TIER", "URL", "STATUS", "PEERS", "SEEDS", "LEECH", "LAST", "NEXT",
			  "ERROR");
	size_t i;
	json_t *tr;
	json_array_foreach(list, i, tr) {
		char tier[16], peers[24], seeds[24], leech[24], last[32], next[32];
		snprintf(tier, sizeof tier, "%lld%s", (long long)json_integer_value(json_object_get(tr, "tier")),
			 json_is_true(json_object_get(tr, "current")) ? "*" : "");
		count(json_object_get(tr, "peers"), peers, sizeof peers);
		count(json_object_get(tr, "seeders"), seeds, sizeof seeds);
		count(json_object_get(tr, "leechers"), leech, sizeof leech);
		when(json_integer_value(json_object_get(tr, "last_announce")), now, last, sizeof last);
		when(json_integer_value(json_object_get(tr, "next_announce")), now, next, sizeof next);
		const char *err = json_string_value(json_object_get(tr, "last_error"));
		const char *warn = json_string_value(json_object_get(tr, "warning"));
		char msg[TABLE_MAX_CELL];
		snprintf(msg, sizeof msg, "%s%s%s", err ? err : "", err && warn ? "; " : "",
			 warn ? warn : "");
		e |= table_add(&t, tier, json_string_value(json_object_get(tr, "url")) ?: "?",
			       json_string_value(json_object_get(tr, "status")) ?: "?", peers, seeds,
			       leech, last, next, msg);
	}
	if (!e)
		table_print(&t, stdout);
	table_destroy(&t);
	printf("(* the tracker of its tier announced to; tiers are announced side by side)\n");
}

/* Percent-encode `s` for a query value. */
static void query_escape(const char *s, char *out, size_t len)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t k = 0;
	for (; *s && k + 4 < len; s++) {
		unsigned char c = (unsigned char)*s;
		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		    strchr("-._~", c)) {
			out[k++] = (char)c;
		} else {
			out[k++] = '%';
			out[k++] = hex[c >> 4];
			out[k++] = hex[c & 15];
		}
	}
	out[k] = '\0';
}

int cmd_trackers(int argc, char **argv)
{
	static const struct option opts[] = { { "json", no_argument, NULL, 'j' },
					      { "reannounce", no_argument, NULL, 'r' },
					      { "add", required_argument, NULL, 'a' },
					      { "remove", required_argument, NULL, 'R' },
					      { 0 } };
	struct cli_conn conn;
	struct trackers_opts o = { 0 };
	int rc = cli_getopt("trackers", argc, argv, opts, on_opt, &o, &conn);
	if (rc < 0)
		return CLI_GETOPT_EXIT(rc);
	if (rc + 1 != argc || (o.add && o.remove) || ((o.add || o.remove) && o.reannounce)) {
		fprintf(stderr, "shoal trackers: expected one swarm and at most one of --add, "
				"--remove, --reannounce\n");
		cli_usage(cli_find("trackers"), stderr);
		return CLI_USAGE;
	}
	const char *id = argv[rc];
	if (strspn(id, "0123456789abcdefABCDEF") != strlen(id)) {
		fprintf(stderr, "shoal trackers: '%s' is not a swarm id or info-hash\n", id);
		return CLI_USAGE;
	}
	if ((rc = cli_load_conn(&conn)))
		return rc;
	char path[3 * 1024 + 128];
	json_t *body = NULL, *reply = NULL;
	const char *method = "GET";
	snprintf(path, sizeof path, "/api/v1/swarms/%s/trackers", id);
	if (o.add) {
		method = "POST";
		body = json_pack("{s:s}", "url", o.add);
	} else if (o.remove) {
		char esc[3 * 1024];
		if (strlen(o.remove) > 1000) {
			fprintf(stderr, "shoal trackers: that URL is too long to be a tracker's\n");
			return CLI_USAGE;
		}
		query_escape(o.remove, esc, sizeof esc);
		method = "DELETE";
		snprintf(path, sizeof path, "/api/v1/swarms/%s/trackers?url=%s", id, esc);
		body = json_object();
	} else if (o.reannounce) {
		method = "POST";
		snprintf(path, sizeof path, "/api/v1/swarms/%s/reannounce", id);
		body = json_object();
	}
	rc = cli_call(&conn, "trackers", method, path, body, &reply);
	json_decref(body);
	if (rc)
		return rc;
	if (o.json) {
		json_dumpf(reply, stdout, JSON_INDENT(2) | JSON_SORT_KEYS);
		putchar('\n');
	} else {
		if (o.add)
			printf("%s %s\n", json_is_true(json_object_get(reply, "added")) ? "added"
											: "already there:",
			       o.add);
		else if (o.remove)
			printf("removed %s\n", o.remove);
		else if (o.reannounce)
			printf("announcing now\n");
		print_table(reply);
	}
	json_decref(reply);
	return CLI_OK;
}
