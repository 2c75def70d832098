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

json_t *join_body(const struct join_opts *o, const char *link, const char *into)
{
	json_t *peers = json_array();
	for (size_t i = 0; peers && i < o->n_peers; i++)
		json_array_append_new(peers, json_string(o->peers[i]));
	json_t *body = json_pack("{s:s,s:o,s:b}", "link", link, "peers", peers, "overwrite",
				 o->overwrite);
	if (body && into[0])
		json_object_set_new(body, "into", json_string(into));
	return body;
}
