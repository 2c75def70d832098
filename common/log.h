/* log.h: leveled logging to stderr, shared by every library of shoal. */
#ifndef SHOAL_COMMON_LOG_H
#define SHOAL_COMMON_LOG_H

#include <stdbool.h>
#include <sys/types.h>

enum log_level { LOG_LVL_ERROR = 0, LOG_LVL_WARN, LOG_LVL_INFO, LOG_LVL_DEBUG };

/* How a line looks.  TEXT: "TIME LEVEL message".  JOURNAL: "<N>message",
 * N the syslog priority (3 error, 4 warn, 6 info, 7 debug), no time:
 * journald reads the prefix as the entry's PRIORITY and stamps it itself.
 * AUTO: JOURNAL when stderr is the journal's stream (log_stderr_is_journal),
 * else TEXT. */
enum log_format { LOG_FMT_AUTO = 0, LOG_FMT_TEXT, LOG_FMT_JOURNAL };

/* Messages above `level` are dropped.  Default: LOG_LVL_INFO.  The level
 * and the format may change while other threads log (a SIGHUP reload). */
void log_set_level(enum log_level level);
enum log_level log_get_level(void);

/* Parse "error", "warn", "info" or "debug".  Returns 0 or -EINVAL. */
int log_parse_level(const char *s, enum log_level *level_out)
	__attribute__((warn_unused_result));
const char *log_level_name(enum log_level level);

/* Choose the line format; AUTO is resolved here, once, against stderr.
 * Default (before any call): TEXT. */
void log_set_format(enum log_format fmt);
/* The format lines are written in now (TEXT or JOURNAL, never AUTO). */
enum log_format log_get_format(void);
/* Parse "auto", "text" or "journal".  Returns 0 or -EINVAL. */
int log_parse_format(const char *s, enum log_format *fmt_out)
	__attribute__((warn_unused_result));
const char *log_format_name(enum log_format fmt);

/* Whether `journal_stream` (the value of $JOURNAL_STREAM, "DEV:INO" in
 * decimal, which systemd sets when it connects stdout/stderr to journald)
 * names the file whose device and inode are `dev` and `ino`.  NULL or a
 * malformed value: false. */
bool log_journal_stream_matches(const char *journal_stream, dev_t dev, ino_t ino);
/* log_journal_stream_matches($JOURNAL_STREAM, fstat(2)): a child whose
 * stderr was redirected elsewhere inherits the variable but not the
 * stream, hence the comparison. */
bool log_stderr_is_journal(void);

/* Write one line to stderr in the current format.  Thread-safe. */
void log_msg(enum log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define log_error(...) log_msg(LOG_LVL_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LVL_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LVL_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_LVL_DEBUG, __VA_ARGS__)

#endif
