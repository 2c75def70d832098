/* table.h: print rows of text as columns that line up. */
#ifndef SHOAL_CLI_TABLE_H
#define SHOAL_CLI_TABLE_H

#include <stddef.h>
#include <stdio.h>

#define TABLE_MAX_COLS 10
#define TABLE_MAX_CELL 160

struct table {
	size_t cols;
	size_t rows, cap;
	char (*cells)[TABLE_MAX_COLS][TABLE_MAX_CELL]; /* owned */
	unsigned right_align;                          /* bit i: column i right-aligned */
};

void table_init(struct table *t, size_t cols, unsigned right_align);
void table_destroy(struct table *t);
/* Append a row of `cols` printf-formatted cells (use "%s" with values).
 * Cells longer than TABLE_MAX_CELL-1 bytes are cut.  Returns 0 or -ENOMEM. */
int table_add(struct table *t, ...) __attribute__((warn_unused_result));
/* Print all rows with two spaces between columns. */
void table_print(const struct table *t, FILE *out);

#endif
