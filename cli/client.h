/* client.h: how the CLI finds a running daemon and talks HTTP to it. */
#ifndef SHOAL_CLI_CLIENT_H
#define SHOAL_CLI_CLIENT_H

#include <limits.h>
#include <stdbool.h>

#include <jansson.h>

/* Exit codes of every subcommand. */
enum cli_exit {
	CLI_OK = 0,
	CLI_FAIL = 1,      /* the daemon refused or the operation failed */
	CLI_USAGE = 2,     /* bad command line */
	CLI_NO_DAEMON = 3, /* no daemon answers for this data dir */
};

struct cli_conn {
	char data_dir[PATH_MAX];
	char addr[128];       /* "127.0.0.1:7881" */
	char token_hex[65];
};

/* Resolve the data dir (flag, else $SHOAL_DATA_DIR, else XDG default) into
 * conn->data_dir.  Returns 0 or CLI_USAGE after printing why. */
int cli_resolve_data_dir(struct cli_conn *conn, const char *flag_value);

/* Read the daemon's address and token from the data dir.  Returns 0, or
 * CLI_NO_DAEMON after printing one clear line. */
int cli_load_conn(struct cli_conn *conn);

/* Send `method path` with an optional JSON body (not consumed).  On success
 * returns 0 and sets *status_out and *json_out (a new reference, or NULL if
 * the reply was not JSON).  Returns CLI_NO_DAEMON after printing a message
 * when the daemon cannot be reached. */
int cli_request(const struct cli_conn *conn, const char *method, const char *path,
		const json_t *body, int *status_out, json_t **json_out);
/* cli_request done within timeout_ms in all (connect, send and every read
 * together) instead of 30 s per step: for callers that must stay quick
 * whatever the other end does, such as shell completion. */
int cli_request_within(const struct cli_conn *conn, const char *method, const char *path,
		       const json_t *body, int timeout_ms, int *status_out, json_t **json_out);

/* cli_request expecting success (2xx): returns 0 with *reply_out (a new
 * reference, may be NULL), or prints the daemon's error prefixed with
 * "shoal CMD: " and returns CLI_FAIL (or CLI_NO_DAEMON). */
int cli_call(const struct cli_conn *conn, const char *cmd, const char *method, const char *path,
	     const json_t *body, json_t **reply_out);

/* Print the "message" of a JSON error reply (or the status) to stderr,
 * prefixed with "shoal CMD: ". */
void cli_print_error(const char *cmd, int status, const json_t *reply);

#endif
