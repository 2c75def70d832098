/* cli.h: the subcommands of `shoal` and their shared option handling. */
#ifndef SHOAL_CLI_CLI_H
#define SHOAL_CLI_CLI_H

#include <stdio.h>

struct cli_command {
	const char *name;
	const char *summary;
	const char *usage; /* full --help text after "Usage: " */
	int (*run)(int argc, char **argv);
};

/* Find a command by name, or NULL. */
const struct cli_command *cli_find(const char *name);
/* Print "Usage: ..." of a command to `out`. */
void cli_usage(const struct cli_command *cmd, FILE *out);

int cmd_status(int argc, char **argv);
int cmd_token(int argc, char **argv);

#endif
