/* store.h: the node's SQLite database (WAL, foreign keys, versioned schema). */
#ifndef SHOAL_NODE_STORE_H
#define SHOAL_NODE_STORE_H

#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

#define STORE_FILE_NAME "shoal.db"
/* Bump with every migration appended to store.c's table. */
#define STORE_SCHEMA_VERSION 5

#define STORE_STMT_CACHE 16

struct store {
	sqlite3 *db;
	char path[4096];
	/* Statements prepared once and reused (store_stmt): per-swarm queries
	 * run 50,000 times at a start would otherwise be parsed each time. */
	struct {
		const char *sql;
		sqlite3_stmt *stmt;
	} cache[STORE_STMT_CACHE];
	/* Each store_exec("COMMIT;") is timed into it (GET /metrics); NULL:
	 * not timed.  Set by the daemon after store_open. */
	struct metrics_hist *commit_time;
};

/* Open (creating with mode 0600 if absent) the database at `path`, check its
 * integrity and migrate it forward to STORE_SCHEMA_VERSION.  A database from
 * a newer shoal, or one that is not a healthy SQLite database, is refused and
 * left untouched.  Returns a new store or NULL with a message in `err`. */
struct store *store_open(const char *path, char *err, size_t err_len);

/* Checkpoint the WAL and close.  NULL is a no-op. */
void store_close(struct store *st);

/* Schema version recorded in the file. */
int store_schema_version(struct store *st);

/* Run `PRAGMA integrity_check`; returns 0 when it answers "ok". */
int store_integrity_check(struct store *st) __attribute__((warn_unused_result));

/* settings(key, value): a small key/value table for node-wide state.
 * store_setting_get copies at most `cap` bytes; returns the value's length,
 * -ENOENT when absent, or -EIO. */
int store_setting_get(struct store *st, const char *key, void *out, size_t cap)
	__attribute__((warn_unused_result));
int store_setting_set(struct store *st, const char *key, const void *value, size_t len)
	__attribute__((warn_unused_result));

struct metrics_hist;
/* Run a statement with no result rows (BEGIN, COMMIT, ...).  Returns 0 or
 * -EIO.  A "COMMIT;" is timed into st->commit_time. */
int store_exec(struct store *st, const char *sql) __attribute__((warn_unused_result));

/* The prepared statement for `sql`, which must be a string literal (it is
 * cached by its address), ready to bind and step; owned by the store (never
 * finalize it).  Call store_stmt_done when finished with it, so it holds no
 * read lock.  NULL when it cannot be prepared (logged by the caller). */
sqlite3_stmt *store_stmt(struct store *st, const char *sql);
void store_stmt_done(sqlite3_stmt *stmt);

/* Roll back the open transaction; failures are logged (nothing else to do). */
void store_rollback(struct store *st);

#endif
