/* table.c: aligned text tables for the CLI. */
#include "config.h"

#include "cli/table.h"

#include <errno.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

void table_init(struct table *t, size_t cols, unsigned right_align)
{
	memset(t, 0, sizeof *t);
	t->cols = cols < TABLE_MAX_COLS ? cols : TABLE_MAX_COLS;
	t->right_align = right_align;
}

void table_destroy(struct table *t)
{
	free(t->cells);
	t->cells = NULL;
	t->rows = t->cap = 0;
}

int table_add(struct table *t, ...)
{
	if (t->rows == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 8;
		void *p = realloc(t->cells, cap * sizeof *t->cells);
		if (!p)
			return -ENOMEM;
		t->cells = p;
		t->cap = cap;
	}
	va_list ap;
	va_start(ap, t);
	for (size_t c = 0; c < t->cols; c++) {
		const char *s = va_arg(ap, const char *);
		snprintf(t->cells[t->rows][c], TABLE_MAX_CELL, "%s", s ? s : "");
	}
	va_end(ap);
	t->rows++;
	return 0;
}

/* Display width: count UTF-8 lead bytes, not continuation bytes. */
static size_t text_width(const char *s)
{
	size_t w = 0;
	for (; *s; s++)
		if (((unsigned char)*s & 0xc0) != 0x80)
			w++;
	return w;
}

void table_print(const struct table *t, FILE *out)
{
	size_t width[TABLE_MAX_COLS] = { 0 };
	for (size_t r = 0; r < t->rows; r++)
		for (size_t c = 0; c < t->cols; c++) {
			size_t w = text_width(t->cells[r][c]);
			if (w > width[c])
				width[c] = w;
		}
	for (size_t r = 0; r < t->rows; r++) {
		for (size_t c = 0; c < t->cols; c++) {
			const char *s = t->cells[r][c];
			size_t pad = width[c] - text_width(s);
			bool last = c + 1 == t->cols;
			if (t->right_align & (1u << c))
				fprintf(out, "%*s%s", (int)pad, "", s);
			else
				fprintf(out, "%s%*s", s, last ? 0 : (int)pad, "");
			if (!last)
				fputs("  ", out);
		}
		fputc('\n', out);
	}
}
