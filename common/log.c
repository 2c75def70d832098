/* log.c: leveled logging to stderr, with UTC timestamps or journald's
 * <N> priority prefixes. */
#include "config.h"

#include "common/log.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Atomic because a reload on the loop thread changes them while worker
 * threads log; relaxed is enough: a line logged in the old format or at
 * the old level around a reload is fine, a torn read is not. */
static _Atomic int current_level = LOG_LVL_INFO;
static _Atomic int current_format = LOG_FMT_TEXT;
static const char *const level_names[] = { "error", "warn", "info", "debug" };
static const char *const format_names[] = { "auto", "text", "journal" };
/* syslog(3) priorities of our levels: LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG. */
static const int level_priority[] = { 3, 4, 6, 7 };

void log_set_level(enum log_level level)
{
	atomic_store_explicit(&current_level, (int)level, memory_order_relaxed);
}

enum log_level log_get_level(void)
{
	return (enum log_level)atomic_load_explicit(&current_level, memory_order_relaxed);
}

/* The index of `s` among `names`, or -1. */
static int name_index(const char *const *names, size_t n, const char *s)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(s, names[i]) == 0)
			return (int)i;
	return -1;
}

int log_parse_level(const char *s, enum log_level *level_out)
{
	int i = name_index(level_names, sizeof level_names / sizeof level_names[0], s);
	if (i < 0)
		return -EINVAL;
	*level_out = (enum log_level)i;
	return 0;
}

const char *log_level_name(enum log_level level)
{
	return (unsigned)level < sizeof level_names / sizeof level_names[0] ? level_names[level]
									      : "?";
}

int log_parse_format(const char *s, enum log_format *fmt_out)
{
	int i = name_index(format_names, sizeof format_names / sizeof format_names[0], s);
	if (i < 0)
		return -EINVAL;
	*fmt_out = (enum log_format)i;
	return 0;
}

const char *log_format_name(enum log_format fmt)
{
	return (unsigned)fmt < sizeof format_names / sizeof format_names[0] ? format_names[fmt]
									       : "?";
}

/* One unsigned decimal number, nothing else; advances *p past it. */
static bool read_decimal(const char **p, uintmax_t *out)
{
	const char *s = *p;
	if (*s < '0' || *s > '9')
		return false;
	char *end = NULL;
	errno = 0;
	uintmax_t v = strtoumax(s, &end, 10);
	if (errno || end == s)
		return false;
	*out = v;
	*p = end;
	return true;
}

bool log_journal_stream_matches(const char *journal_stream, dev_t dev, ino_t ino)
{
	if (!journal_stream)
		return false;
	const char *p = journal_stream;
	uintmax_t d, i;
	if (!read_decimal(&p, &d) || *p++ != ':' || !read_decimal(&p, &i) || *p != '\0')
		return false;
	return d == (uintmax_t)dev && i == (uintmax_t)ino;
}

bool log_stderr_is_journal(void)
{
	struct stat st;
	const char *js = getenv("JOURNAL_STREAM");
	if (!js || fstat(STDERR_FILENO, &st) != 0)
		return false;
	return log_journal_stream_matches(js, st.st_dev, st.st_ino);
}

void log_set_format(enum log_format fmt)
{
	if (fmt == LOG_FMT_AUTO)
		fmt = log_stderr_is_journal() ? LOG_FMT_JOURNAL : LOG_FMT_TEXT;
	atomic_store_explicit(&current_format, (int)fmt, memory_order_relaxed);
}

enum log_format log_get_format(void)
{
	return (enum log_format)atomic_load_explicit(&current_format, memory_order_relaxed);
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	if ((int)level > atomic_load_explicit(&current_level, memory_order_relaxed))
		return;
	char line[1024];
	int n;
	if (atomic_load_explicit(&current_format, memory_order_relaxed) == LOG_FMT_JOURNAL) {
		n = snprintf(line, sizeof line, "<%d>", level_priority[level]);
	} else {
		struct timespec ts;
		struct tm tm;
		clock_gettime(CLOCK_REALTIME, &ts);
		gmtime_r(&ts.tv_sec, &tm);
		n = snprintf(line, sizeof line, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %-5s ",
			     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
			     tm.tm_sec, ts.tv_nsec / 1000000L, level_names[level]);
	}
	if (n < 0)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
	va_end(ap);
	/* A newline inside a message would start a journal entry without a
	 * priority: fold it to a space there. */
	if (line[0] == '<')
		for (char *c = line + n; (c = strchr(c, '\n')) != NULL; c++)
			*c = ' ';
	/* One fputs per line so concurrent threads never interleave within a line. */
	size_t len = strlen(line);
	if (len + 1 < sizeof line) {
		line[len] = '\n';
		line[len + 1] = '\0';
	} else {
		line[sizeof line - 2] = '\n';
	}
	fputs(line, stderr);
}
