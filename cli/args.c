/* args.c: option parsing shared by every subcommand. */
#include "config.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/client.h"

#define MAX_OPTS 16

int cli_getopt(const char *name, int argc, char **argv, const struct option *extra,
	       int (*on_opt)(int val, const char *arg, void *ctx), void *ctx,
	       struct cli_conn *conn)
{
	struct option opts[MAX_OPTS + 3];
	size_t n = 0;
	opts[n++] = (struct option){ "data-dir", required_argument, NULL, 1 };
	opts[n++] = (struct option){ "help", no_argument, NULL, 'h' };
	for (size_t i = 0; extra && extra[i].name && i < MAX_OPTS; i++)
		opts[n++] = extra[i];
	opts[n] = (struct option){ 0 };

	const char *data_dir = NULL;
	optind = 1;
	opterr = 1;
	int c;
	/* GNU getopt permutes, so options may follow positionals
	 * ("shoal join LINK --wait"). */
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (c == 1) {
			data_dir = optarg;
		} else if (c == 'h') {
			cli_usage(cli_find(name), stdout);
			return -1;
		} else if (c == '?' || !on_opt || on_opt(c, optarg, ctx) != 0) {
			cli_usage(cli_find(name), stderr);
			return -CLI_USAGE;
		}
	}
	if (cli_resolve_data_dir(conn, data_dir) != 0)
		return -CLI_USAGE;
	return optind;
}
