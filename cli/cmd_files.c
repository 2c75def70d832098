/* cmd_files.c: `shoal files`: a swarm's files with their priorities, and
 * changes to them (GET and POST /api/v1/swarms/{id}/files). */
#include "config.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/client.h"
#include "cli/table.h"
#include "common/util.h"

/* Ceiling on --set options in one command (each is one argument). */
#define FILES_MAX_SETS 256

static const char *const priorities[] = { "skip", "low", "normal", "high" };
#define N_PRIORITIES (sizeof priorities / sizeof priorities[0])

struct files_set {
	const char *target; /* an index (all digits) or a glob */
	size_t target_len;  /* the bytes of `target` before the last '=' */
	const char *prio;   /* one of priorities[] */
};

struct files_opts {
	int json;
	int sequential; /* -1: leave as it is, 0 off, 1 on */
	struct files_set sets[FILES_MAX_SETS];
	size_t n_sets;
};

static bool known_priority(const char *s)
{
	for (size_t i = 0; i < N_PRIORITIES; i++)
		if (strcmp(priorities[i], s) == 0)
			return true;
	return false;
}

/* --set N=PRIO: split at the last '=' (a glob may hold '=', a priority
 * never does). */
static int add_set(struct files_opts *o, const char *arg)
{
	const char *eq = strrchr(arg, '=');
	if (!eq || eq == arg) {
		fprintf(stderr, "shoal files: --set '%s': expected N=PRIORITY or GLOB=PRIORITY\n", arg);
		return CLI_USAGE;
	}
	if (!known_priority(eq + 1)) {
		fprintf(stderr, "shoal files: --set '%s': '%s' is not a priority (skip, low, normal "
				"or high)\n",
			arg, eq + 1);
		return CLI_USAGE;
	}
	if (o->n_sets == FILES_MAX_SETS) {
		fprintf(stderr, "shoal files: at most %d --set options\n", FILES_MAX_SETS);
		return CLI_USAGE;
	}
	o->sets[o->n_sets++] = (struct files_set){ arg, (size_t)(eq - arg), eq + 1 };
	return 0;
}

static int on_files_opt(int val, const char *arg, void *ctx)
{
	struct files_opts *o = ctx;
	switch (val) {
	case 'j':
		o->json = 1;
		return 0;
	case 's':
		return add_set(o, arg);
	case 'q':
		if (strcmp(arg, "on") == 0) {
			o->sequential = 1;
			return 0;
		}
		if (strcmp(arg, "off") == 0) {
			o->sequential = 0;
			return 0;
		}
		fprintf(stderr, "shoal files: --sequential takes on or off, not '%s'\n", arg);
		return CLI_USAGE;
	}
	return CLI_USAGE;
}

static bool all_digits(const char *s, size_t n)
{
	if (n == 0 || n > 18)
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

/* Resolve every --set against the swarm's `files` into one priority per
 * file (a later --set wins over an earlier one for the same file) and
 * return the POST body's "priorities" list, or NULL after printing why
 * (*rc_out: CLI_FAIL, or CLI_USAGE for a target longer than a pattern may
 * be). */
static json_t *resolve_sets(const struct files_opts *o, const char *id, const json_t *files,
			    int *rc_out)
{
	size_t n = json_array_size(files);
	const char **chosen = n ? calloc(n, sizeof *chosen) : NULL;
	json_t *list = NULL;
	*rc_out = CLI_FAIL;
	if (n && !chosen) {
		fprintf(stderr, "shoal files: out of memory\n");
		return NULL;
	}
	for (size_t k = 0; k < o->n_sets; k++) {
		const struct files_set *s = &o->sets[k];
		char target[1024];
		if (s->target_len >= sizeof target) {
			fprintf(stderr, "shoal files: --set: a pattern is at most %zu bytes\n",
				sizeof target - 1);
			*rc_out = CLI_USAGE;
			goto fail;
		}
		memcpy(target, s->target, s->target_len);
		target[s->target_len] = '\0';
		if (all_digits(target, s->target_len)) {
			unsigned long long i = strtoull(target, NULL, 10);
			if (i >= n) {
				fprintf(stderr, "shoal files: swarm %s has no file %llu (its files are "
						"0 to %zu)\n",
					id, i, n ? n - 1 : 0);
				goto fail;
			}
			chosen[i] = s->prio;
			continue;
		}
		size_t hits = 0, i;
		json_t *f;
		json_array_foreach((json_t *)files, i, f) {
			const char *path = json_string_value(json_object_get(f, "path"));
			if (path && path_glob_match(target, path)) {
				chosen[i] = s->prio;
				hits++;
			}
		}
		if (hits == 0) {
			fprintf(stderr, "shoal files: no file of swarm %s matches '%s' (`shoal files %s` "
					"lists them)\n",
				id, target, id);
			goto fail;
		}
	}
	list = json_array();
	for (size_t i = 0; list && i < n; i++)
		if (chosen[i] &&
		    json_array_append_new(list, json_pack("{s:I,s:s}", "index", (json_int_t)i,
							  "priority", chosen[i])) != 0) {
			json_decref(list);
			list = NULL;
		}
	if (!list)
		fprintf(stderr, "shoal files: out of memory\n");
	free(chosen);
	return list;
fail:
	free(chosen);
	return NULL;
}

static const char *str_or(const json_t *o, const char *k, const char *d)
{
	const char *s = json_string_value(json_object_get(o, k));
	return s ? s : d;
}

/* "only a*, b*; skip *.nfo" from the rules a join keeps until the
 * metadata comes. */
static void print_rules(const json_t *rules)
{
	static const char *const kinds[] = { "only", "skip" };
	bool any = false;
	for (size_t k = 0; k < 2; k++) {
		const json_t *list = json_object_get(rules, kinds[k]);
		if (json_array_size(list) == 0)
			continue;
		printf("%s%s ", any ? "; " : "  rules: ", kinds[k]);
		size_t i;
		json_t *g;
		json_array_foreach((json_t *)list, i, g)
			printf("%s%s", i ? ", " : "", json_string_value(g) ?: "?");
		any = true;
	}
	if (any)
		putchar('\n');
}

static void print_files(const char *id, const json_t *reply)
{
	printf("swarm %s: sequential %s\n", id,
	       json_is_true(json_object_get(reply, "sequential")) ? "on" : "off");
	if (!json_is_true(json_object_get(reply, "metadata"))) {
		printf("  the file list is not known yet: the metadata has not arrived\n");
		print_rules(json_object_get(reply, "rules"));
		return;
	}
	struct table t;
	table_init(&t, 5, 1u << 0 | 1u << 2 | 1u << 3);
	int e = table_add(&t, "INDEX", "PRIORITY", "DONE", "SIZE", "PATH");
	size_t i;
	json_t *f;
	json_array_foreach(json_object_get(reply, "files"), i, f) {
		char index[24], done[16], size[32];
		snprintf(index, sizeof index, "%lld",
			 (long long)json_integer_value(json_object_get(f, "index")));
		snprintf(done, sizeof done, "%.1f%%",
			 100.0 * json_number_value(json_object_get(f, "progress")));
		format_bytes((uint64_t)json_integer_value(json_object_get(f, "size")), size,
			     sizeof size);
		e |= table_add(&t, index, str_or(f, "priority", "?"), done, size, str_or(f, "path", ""));
	}
	if (!e)
		table_print(&t, stdout);
	table_destroy(&t);
}

int cmd_files(int argc, char **argv)
{
	static const struct option opts[] = { { "json", no_argument, NULL, 'j' },
					      { "set", required_argument, NULL, 's' },
					      { "sequential", required_argument, NULL, 'q' },
					      { 0 } };
	struct cli_conn conn;
	struct files_opts o = { .sequential = -1 };
	int rc = cli_getopt("files", argc, argv, opts, on_files_opt, &o, &conn);
	if (rc < 0)
		return CLI_GETOPT_EXIT(rc);
	if (rc + 1 != argc) {
		fprintf(stderr, "shoal files: expected one swarm (id or info-hash)\n");
		cli_usage(cli_find("files"), stderr);
		return CLI_USAGE;
	}
	const char *id = argv[rc];
	if (strspn(id, "0123456789abcdefABCDEF") != strlen(id) || strlen(id) > 64) {
		fprintf(stderr, "shoal files: '%s' is not a swarm id or info-hash\n", id);
		return CLI_USAGE;
	}
	if ((rc = cli_load_conn(&conn)))
		return rc;
	char path[128];
	snprintf(path, sizeof path, "/api/v1/swarms/%s/files", id);
	json_t *reply = NULL, *body = NULL;
	if ((rc = cli_call(&conn, "files", "GET", path, NULL, &reply)))
		return rc;
	if (o.n_sets || o.sequential >= 0) {
		body = json_object();
		if (!body) {
			fprintf(stderr, "shoal files: out of memory\n");
			rc = CLI_FAIL;
			goto done;
		}
		if (o.n_sets) {
			if (!json_is_true(json_object_get(reply, "metadata"))) {
				fprintf(stderr, "shoal files: swarm %s has no metadata yet, so its "
						"files are not known (the join's --only/--skip apply "
						"when it comes)\n",
					id);
				rc = CLI_FAIL;
				goto done;
			}
			json_t *list = resolve_sets(&o, id, json_object_get(reply, "files"), &rc);
			if (!list)
				goto done;
			json_object_set_new(body, "priorities", list);
		}
		if (o.sequential >= 0)
			json_object_set_new(body, "sequential", json_boolean(o.sequential));
		json_decref(reply);
		reply = NULL;
		if ((rc = cli_call(&conn, "files", "POST", path, body, &reply)))
			goto done;
	}
	if (o.json) {
		json_dumpf(reply, stdout, JSON_INDENT(2) | JSON_SORT_KEYS);
		putchar('\n');
	} else {
		char sid[32];
		json_t *swarm = json_object_get(reply, "swarm");
		if (json_is_integer(swarm))
			snprintf(sid, sizeof sid, "%lld", (long long)json_integer_value(swarm));
		else
			snprintf(sid, sizeof sid, "%s", id);
		print_files(sid, reply);
	}
	rc = CLI_OK;
done:
	json_decref(body);
	json_decref(reply);
	return rc;
}
