/* join.c: what both of `shoal join`'s paths use (cli/join.h): the SIGINT
 * flag a long join stops on, and the body of one join request. */
#include "config.h"

#include <signal.h>
#include <stddef.h>

#include <jansson.h>

#include "cli/join.h"

volatile sig_atomic_t join_interrupted;

static void on_sigint(int sig)
{
	(void)sig;
	join_interrupted = 1;
}

void join_catch_sigint(void)
{
	struct sigaction sa = { .sa_handler = on_sigint };
	sigaction(SIGINT, &sa, NULL);
}

static json_t *string_list(const char *const *v, size_t n)
{
	json_t *list = json_array();
	for (size_t i = 0; list && i < n; i++)
		if (json_array_append_new(list, json_string(v[i])) != 0) {
			json_decref(list);
			return NULL;
		}
	return list;
}

json_t *join_body(const struct join_opts *o, const char *link, const char *into)
{
	json_t *body = json_pack("{s:s,s:o,s:b}", "link", link, "peers",
				 string_list(o->peers, o->n_peers), "overwrite", o->overwrite);
	int e = !body;
	if (!e && into[0])
		e = json_object_set_new(body, "into", json_string(into));
	/* Sent only when given, so a plain join's body is as it always was. */
	if (!e && o->n_only)
		e = json_object_set_new(body, "only", string_list(o->only, o->n_only));
	if (!e && o->n_skip)
		e = json_object_set_new(body, "skip", string_list(o->skip, o->n_skip));
	if (!e && o->sequential)
		e = json_object_set_new(body, "sequential", json_true());
	if (e) {
		json_decref(body);
		return NULL;
	}
	return body;
}
