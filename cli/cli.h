/* cli.h: the subcommands of `shoal` and their shared option handling. */
#ifndef SHOAL_CLI_CLI_H
#define SHOAL_CLI_CLI_H

#include <getopt.h>
#include <stdio.h>

struct cli_conn;

struct cli_command {
	const char *name;
	const char *summary;
	const char *usage; /* full --help text after "Usage: " */
	int (*run)(int argc, char **argv);
};

/* Find a command by name, or NULL. */
const struct cli_command *cli_find(const char *name);
/* Every command, hidden ones (a name starting with '_') included; *n_out
 * is how many. */
const struct cli_command *cli_commands(size_t *n_out);
/* Print "Usage: ..." of a command to `out`. */
void cli_usage(const struct cli_command *cmd, FILE *out);

/* Parse a command's options: the shared --data-dir and --help plus the
 * command's own `extra` options (terminated by a zeroed entry), each handed
 * to `on_opt(val, optarg, ctx)`, which returns 0 or CLI_USAGE.  Resolves the
 * data dir into `conn`.  Returns the index of the first positional argument,
 * -1 after printing --help (exit 0), or -CLI_USAGE after printing usage. */
int cli_getopt(const char *name, int argc, char **argv, const struct option *extra,
	       int (*on_opt)(int val, const char *arg, void *ctx), void *ctx,
	       struct cli_conn *conn);

/* Turn cli_getopt's negative returns into an exit code. */
#define CLI_GETOPT_EXIT(rc) ((rc) == -1 ? 0 : -(rc))

int cmd_status(int argc, char **argv);
int cmd_token(int argc, char **argv);
int cmd_share(int argc, char **argv);
int cmd_join(int argc, char **argv);
int cmd_files(int argc, char **argv);
int cmd_peers(int argc, char **argv);
int cmd_verify(int argc, char **argv);
int cmd_pause(int argc, char **argv);
int cmd_resume(int argc, char **argv);
int cmd_remove(int argc, char **argv);
int cmd_limit(int argc, char **argv);
int cmd_trackers(int argc, char **argv);
int cmd_web(int argc, char **argv);
int cmd_stream(int argc, char **argv);
int cmd_complete(int argc, char **argv);

#endif
