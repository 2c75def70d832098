/* progress.h: a one-line progress bar on a terminal, sparse plain lines otherwise. */
#ifndef SHOAL_CLI_PROGRESS_H
#define SHOAL_CLI_PROGRESS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

struct progress {
	FILE *out;
	bool tty;
	const char *label;
	int last_decile;    /* plain mode: last 10% step printed */
	bool drawn;
};

void progress_init(struct progress *p, FILE *out, const char *label);
/* Draw `done` of `total` bytes at `rate` bytes/s; `extra` (may be NULL) is
 * appended, e.g. "3 peers". */
void progress_update(struct progress *p, uint64_t done, uint64_t total, double rate,
		     const char *extra);
/* End the bar line (terminal) so following output starts on a new line. */
void progress_finish(struct progress *p);

#endif
