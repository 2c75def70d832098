/* join.h: `shoal join`'s options, shared by its one-swarm path (cmd_join.c)
 * and its many-swarm path (join_many.c). */
#ifndef SHOAL_CLI_JOIN_H
#define SHOAL_CLI_JOIN_H

#include <signal.h>
#include <stddef.h>

#include <jansson.h>

#include "cli/client.h"

#define JOIN_MAX_PEERS 32
/* The daemon's ceiling on each of a join's "only" and "skip" lists. */
#define JOIN_MAX_GLOBS 64

struct join_opts {
	const char *into;
	const char *peers[JOIN_MAX_PEERS];
	size_t n_peers;
	int wait;
	int json;
	int overwrite;
	const char *only[JOIN_MAX_GLOBS]; /* --only: download only the files matching one */
	size_t n_only;
	const char *skip[JOIN_MAX_GLOBS]; /* --skip: never download the files matching one */
	size_t n_skip;
	int sequential; /* --sequential: fetch pieces in file order */
};

/* Set by the SIGINT handler that join_catch_sigint installs: a long
 * command stops at its next step and says what it did. */
extern volatile sig_atomic_t join_interrupted;
void join_catch_sigint(void);

/* The body of POST /api/v1/swarms joining `link` (a magnet link or an
 * absolute .torrent path) with the options' peers and overwrite, their
 * "only", "skip" and "sequential" when given, and `into` when not empty.
 * A new reference, or NULL when out of memory. */
json_t *join_body(const struct join_opts *o, const char *link, const char *into);

/* Join every magnet link, .torrent file and directory of .torrent files
 * (not recursive) among args[0..n-1], one request per swarm, in the order
 * given (a directory's files sorted by name).  Prints a progress line on a
 * terminal and a summary at the end (or, with --json, one JSON document:
 * docs/api.md, "Joining many").  Returns CLI_OK when every one joined or
 * was already there, CLI_FAIL when any failed (the others are joined
 * still), CLI_NO_DAEMON when the daemon went away (the rest not tried), 130
 * on Ctrl-C. */
int join_many(const struct cli_conn *conn, const struct join_opts *o, const char *into,
	      char *const *args, size_t n);

#endif
