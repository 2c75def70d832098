/* store.c: open, check and migrate the SQLite database; small helpers. */
#include "config.h"

#include "node/store.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "node/metrics.h"

/* Forward migrations: entry i takes user_version i to i+1.  Never edit an
 * entry once released; append a new one and bump STORE_SCHEMA_VERSION. */
static const char *const migrations[] = {
	/* 0 -> 1: the first schema. */
	"CREATE TABLE settings ("
	"  key TEXT PRIMARY KEY,"
	"  value BLOB NOT NULL);"
	/* One row per swarm: shared directories and joined links alike. */
	"CREATE TABLE swarms ("
	"  id INTEGER PRIMARY KEY,"
	"  info_hash BLOB NOT NULL UNIQUE CHECK (length(info_hash) = 32),"
	"  name TEXT NOT NULL,"
	"  role TEXT NOT NULL CHECK (role IN ('share', 'join')),"
	"  root TEXT NOT NULL,"            /* directory holding the files */
	"  state TEXT NOT NULL,"           /* hashing, seeding, downloading, paused, error */
	"  error TEXT,"
	"  info BLOB,"                     /* exact bencoded info dict, NULL until known */
	"  piece_length INTEGER,"
	"  total_size INTEGER,"
	"  num_pieces INTEGER,"
	"  uploaded INTEGER NOT NULL DEFAULT 0,"
	"  downloaded INTEGER NOT NULL DEFAULT 0,"
	"  paused INTEGER NOT NULL DEFAULT 0,"
	"  added_at INTEGER NOT NULL,"
	"  completed_at INTEGER);"
	"CREATE TABLE files ("
	"  swarm_id INTEGER NOT NULL REFERENCES swarms(id) ON DELETE CASCADE,"
	"  idx INTEGER NOT NULL,"
	"  path TEXT NOT NULL,"            /* relative, '/'-separated, sanitised */
	"  size INTEGER NOT NULL,"
	"  pieces_root BLOB CHECK (pieces_root IS NULL OR length(pieces_root) = 32),"
	"  first_piece INTEGER NOT NULL,"
	"  num_pieces INTEGER NOT NULL,"
	"  mtime_ns INTEGER,"              /* what the file looked like when verified */
	"  PRIMARY KEY (swarm_id, idx));"
	/* BEP 52 piece layer of each file larger than one piece. */
	"CREATE TABLE piece_layers ("
	"  swarm_id INTEGER NOT NULL,"
	"  file_idx INTEGER NOT NULL,"
	"  hashes BLOB NOT NULL CHECK (length(hashes) % 32 = 0),"
	"  PRIMARY KEY (swarm_id, file_idx),"
	"  FOREIGN KEY (swarm_id, file_idx) REFERENCES files(swarm_id, idx) ON DELETE CASCADE);"
	/* Verified pieces: a bit is set only after the piece is durable on disk. */
	"CREATE TABLE have ("
	"  swarm_id INTEGER PRIMARY KEY REFERENCES swarms(id) ON DELETE CASCADE,"
	"  bitmap BLOB NOT NULL);"
	"CREATE TABLE peers ("
	"  swarm_id INTEGER NOT NULL REFERENCES swarms(id) ON DELETE CASCADE,"
	"  host TEXT NOT NULL,"
	"  port INTEGER NOT NULL CHECK (port BETWEEN 1 AND 65535),"
	"  source TEXT NOT NULL,"          /* user, dht, pex, incoming */
	"  last_seen INTEGER,"
	"  failures INTEGER NOT NULL DEFAULT 0,"
	"  banned INTEGER NOT NULL DEFAULT 0,"
	"  PRIMARY KEY (swarm_id, host, port));"
	"CREATE TABLE dht_nodes ("
	"  id BLOB NOT NULL CHECK (length(id) = 20),"
	"  host TEXT NOT NULL,"
	"  port INTEGER NOT NULL CHECK (port BETWEEN 1 AND 65535),"
	"  last_seen INTEGER NOT NULL,"
	"  PRIMARY KEY (host, port));",
	/* 1 -> 2: per-swarm rate limits (bytes/s, 0 = none). */
	"ALTER TABLE swarms ADD COLUMN upload_limit INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE swarms ADD COLUMN download_limit INTEGER NOT NULL DEFAULT 0;",
	/* 2 -> 3: which files a joined swarm created itself (1) and so may
	 * reopen and write, versus files it found and adopted or a share's
	 * files (0), which it only reads.  Joins recorded before this created
	 * all of theirs. */
	"ALTER TABLE files ADD COLUMN owned INTEGER NOT NULL DEFAULT 1;"
	"UPDATE files SET owned = 0 WHERE swarm_id IN (SELECT id FROM swarms WHERE role = 'share');",
	/* 3 -> 4: v1 swarms and trackers.  key_v1 = 1: the swarm is known only
	 * by its v1 (SHA-1) info-hash so far (a v1 torrent, or a urn:btih
	 * link before its metadata came), kept in info_hash as its 20 bytes
	 * and 12 zero bytes.  trackers: each swarm's announce URLs in BEP 12
	 * tiers (tier 0 first), in the order they are tried. */
	"ALTER TABLE swarms ADD COLUMN key_v1 INTEGER NOT NULL DEFAULT 0;"
	"CREATE TABLE trackers ("
	"  swarm_id INTEGER NOT NULL REFERENCES swarms(id) ON DELETE CASCADE,"
	"  tier INTEGER NOT NULL CHECK (tier >= 0),"
	"  pos INTEGER NOT NULL,"
	"  url TEXT NOT NULL,"
	"  PRIMARY KEY (swarm_id, url));",
	/* 4 -> 5: choosing what to download.  files.priority: 0 skip, 1 low,
	 * 2 normal, 3 high; files.owned 3: skipped and never created (its
	 * bytes of a shared v1 piece are in DATA_DIR/parts/<info-hash>.part).
	 * swarms.sequential: pieces in file order.  swarms.select_rules: a
	 * magnet join's --only/--skip globs until its metadata comes, one
	 * per line, "+" (only) or "-" (skip) first; NULL once applied. */
	"ALTER TABLE files ADD COLUMN priority INTEGER NOT NULL DEFAULT 2;"
	"ALTER TABLE swarms ADD COLUMN sequential INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE swarms ADD COLUMN select_rules TEXT;",
};

_Static_assert(sizeof migrations / sizeof migrations[0] == STORE_SCHEMA_VERSION,
	       "one migration per schema version");

static int query_int(sqlite3 *db, const char *sql, int *out)
{
	sqlite3_stmt *stmt = NULL;
	int rc = sqlite3_prepare_v2(db, sql, -1, &stmt, NULL);
	if (rc == SQLITE_OK) {
		rc = sqlite3_step(stmt);
		if (rc == SQLITE_ROW) {
			*out = sqlite3_column_int(stmt, 0);
			rc = SQLITE_OK;
		}
	}
	sqlite3_finalize(stmt);
	return rc;
}

static int migrate(struct store *st, int from, char *err, size_t err_len)
{
	for (int v = from; v < STORE_SCHEMA_VERSION; v++) {
		char *msg = NULL;
		char sql[64];
		snprintf(sql, sizeof sql, "PRAGMA user_version = %d;", v + 1);
		int rc = sqlite3_exec(st->db, "BEGIN IMMEDIATE;", NULL, NULL, &msg);
		if (rc == SQLITE_OK)
			rc = sqlite3_exec(st->db, migrations[v], NULL, NULL, &msg);
		if (rc == SQLITE_OK)
			rc = sqlite3_exec(st->db, sql, NULL, NULL, &msg);
		if (rc == SQLITE_OK)
			rc = sqlite3_exec(st->db, "COMMIT;", NULL, NULL, &msg);
		if (rc != SQLITE_OK) {
			snprintf(err, err_len, "%s: migration to schema %d failed: %s", st->path, v + 1,
				 msg ? msg : sqlite3_errmsg(st->db));
			sqlite3_free(msg);
			sqlite3_exec(st->db, "ROLLBACK;", NULL, NULL, NULL);
			return -EIO;
		}
		log_info("database %s migrated to schema %d", st->path, v + 1);
	}
	return 0;
}

struct store *store_open(const char *path, char *err, size_t err_len)
{
	struct store *st = calloc(1, sizeof *st);
	if (!st) {
		snprintf(err, err_len, "out of memory");
		return NULL;
	}
	snprintf(st->path, sizeof st->path, "%s", path);

	/* Create the file ourselves so it is 0600 from the start; SQLite gives
	 * the -wal and -shm files the same mode. */
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		snprintf(err, err_len, "%s: %s", path, strerror(errno));
		goto fail;
	}
	close(fd);

	int rc = sqlite3_open_v2(path, &st->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOFOLLOW, NULL);
	if (rc != SQLITE_OK) {
		snprintf(err, err_len, "%s: %s", path, st->db ? sqlite3_errmsg(st->db) : "cannot open");
		goto fail;
	}
	sqlite3_busy_timeout(st->db, 5000);
	sqlite3_extended_result_codes(st->db, 1);

	int version = 0;
	rc = query_int(st->db, "PRAGMA user_version;", &version);
	if (rc == SQLITE_OK) {
		int dummy;
		/* Reading the schema touches every page header of sqlite_master. */
		rc = query_int(st->db, "SELECT count(*) FROM sqlite_master;", &dummy);
	}
	if (rc != SQLITE_OK) {
		snprintf(err, err_len,
			 "%s is not a usable shoal database (%s); refusing to touch it. "
			 "Move it away to start afresh.",
			 path, sqlite3_errstr(rc));
		goto fail;
	}
	if (version > STORE_SCHEMA_VERSION) {
		snprintf(err, err_len,
			 "%s has schema version %d, newer than this shoal understands (%d); "
			 "refusing to touch it. Run a newer shoal.",
			 path, version, STORE_SCHEMA_VERSION);
		goto fail;
	}
	char *msg = NULL;
	if (sqlite3_exec(st->db,
			 "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;"
			 " PRAGMA foreign_keys = ON;",
			 NULL, NULL, &msg) != SQLITE_OK) {
		snprintf(err, err_len, "%s: %s", path, msg ? msg : sqlite3_errmsg(st->db));
		sqlite3_free(msg);
		goto fail;
	}
	if (version > 0 && store_integrity_check(st) != 0) {
		snprintf(err, err_len,
			 "%s failed its integrity check; refusing to touch it. "
			 "Move it away to start afresh.",
			 path);
		goto fail;
	}
	if (migrate(st, version, err, err_len))
		goto fail;
	return st;
fail:
	if (st->db)
		sqlite3_close(st->db);
	free(st);
	return NULL;
}

sqlite3_stmt *store_stmt(struct store *st, const char *sql)
{
	size_t i = 0;
	for (; i < STORE_STMT_CACHE && st->cache[i].sql; i++) {
		if (st->cache[i].sql == sql) {
			sqlite3_reset(st->cache[i].stmt);
			sqlite3_clear_bindings(st->cache[i].stmt);
			return st->cache[i].stmt;
		}
	}
	sqlite3_stmt *stmt = NULL;
	if (sqlite3_prepare_v3(st->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt, NULL) != SQLITE_OK)
		return NULL;
	if (i == STORE_STMT_CACHE) {
		/* Full: the caller still gets a statement, which store_stmt_done
		 * cannot tell from a cached one, so keep it in the last slot. */
		i = STORE_STMT_CACHE - 1;
		sqlite3_finalize(st->cache[i].stmt);
	}
	st->cache[i].sql = sql;
	st->cache[i].stmt = stmt;
	return stmt;
}

void store_stmt_done(sqlite3_stmt *stmt)
{
	if (stmt) {
		sqlite3_reset(stmt);
		sqlite3_clear_bindings(stmt);
	}
}

void store_close(struct store *st)
{
	if (!st)
		return;
	for (size_t i = 0; i < STORE_STMT_CACHE && st->cache[i].sql; i++)
		sqlite3_finalize(st->cache[i].stmt);
	sqlite3_exec(st->db, "PRAGMA wal_checkpoint(TRUNCATE);", NULL, NULL, NULL);
	int rc = sqlite3_close(st->db);
	if (rc != SQLITE_OK)
		log_error("closing %s: %s", st->path, sqlite3_errstr(rc));
	free(st);
}

int store_schema_version(struct store *st)
{
	int v = -1;
	if (query_int(st->db, "PRAGMA user_version;", &v) != SQLITE_OK)
		return -1;
	return v;
}

int store_integrity_check(struct store *st)
{
	sqlite3_stmt *stmt = NULL;
	int ok = -EIO;
	if (sqlite3_prepare_v2(st->db, "PRAGMA integrity_check;", -1, &stmt, NULL) == SQLITE_OK &&
	    sqlite3_step(stmt) == SQLITE_ROW) {
		const unsigned char *r = sqlite3_column_text(stmt, 0);
		if (r && strcmp((const char *)r, "ok") == 0)
			ok = 0;
	}
	sqlite3_finalize(stmt);
	return ok;
}

int store_setting_get(struct store *st, const char *key, void *out, size_t cap)
{
	sqlite3_stmt *stmt = NULL;
	int rc = -EIO;
	if (sqlite3_prepare_v2(st->db, "SELECT value FROM settings WHERE key = ?1;", -1, &stmt,
			       NULL) != SQLITE_OK)
		goto done;
	sqlite3_bind_text(stmt, 1, key, -1, SQLITE_STATIC);
	int s = sqlite3_step(stmt);
	if (s == SQLITE_DONE) {
		rc = -ENOENT;
	} else if (s == SQLITE_ROW) {
		int n = sqlite3_column_bytes(stmt, 0);
		const void *p = sqlite3_column_blob(stmt, 0);
		memcpy(out, p, (size_t)n < cap ? (size_t)n : cap);
		rc = n;
	}
done:
	sqlite3_finalize(stmt);
	return rc;
}

int store_setting_set(struct store *st, const char *key, const void *value, size_t len)
{
	sqlite3_stmt *stmt = NULL;
	int rc = -EIO;
	if (sqlite3_prepare_v2(st->db,
			       "INSERT INTO settings(key, value) VALUES (?1, ?2)"
			       " ON CONFLICT(key) DO UPDATE SET value = excluded.value;",
			       -1, &stmt, NULL) != SQLITE_OK)
		goto done;
	sqlite3_bind_text(stmt, 1, key, -1, SQLITE_STATIC);
	sqlite3_bind_blob(stmt, 2, value, (int)len, SQLITE_STATIC);
	if (sqlite3_step(stmt) == SQLITE_DONE)
		rc = 0;
done:
	sqlite3_finalize(stmt);
	return rc;
}

int store_exec(struct store *st, const char *sql)
{
	char *msg = NULL;
	bool timed = st->commit_time && strcmp(sql, "COMMIT;") == 0;
	uint64_t t0 = timed ? metrics_now_ns() : 0;
	int rc = sqlite3_exec(st->db, sql, NULL, NULL, &msg);
	if (timed)
		metrics_hist_observe(st->commit_time, metrics_now_ns() - t0);
	if (rc != SQLITE_OK) {
		log_error("database: %s: %s", sql, msg ? msg : "error");
		sqlite3_free(msg);
		return -EIO;
	}
	return 0;
}

void store_rollback(struct store *st)
{
	if (store_exec(st, "ROLLBACK;") != 0)
		log_error("%s: rollback failed", st->path);
}
