/* test_store.c: database creation, migrations, refusal of newer or corrupt files. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "node/store.h"
#include "node/swarm.h"
#include "transfer/storage.h"

static char dir[64];
static char path[128];

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof dir, "/tmp/shoal-test-store-XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	snprintf(path, sizeof path, "%s/shoal.db", dir);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	char cmd[160];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static void test_create_and_reopen(void **state)
{
	(void)state;
	char err[512];
	struct store *st = store_open(path, err, sizeof err);
	assert_non_null(st);
	assert_int_equal(store_schema_version(st), STORE_SCHEMA_VERSION);
	struct stat sb;
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	assert_int_equal(store_setting_set(st, "k", "value", 5), 0);
	assert_int_equal(store_setting_set(st, "k", "other", 5), 0);
	store_close(st);

	st = store_open(path, err, sizeof err);
	assert_non_null(st);
	char buf[16];
	assert_int_equal(store_setting_get(st, "k", buf, sizeof buf), 5);
	assert_memory_equal(buf, "other", 5);
	assert_int_equal(store_setting_get(st, "missing", buf, sizeof buf), -ENOENT);
	assert_int_equal(store_integrity_check(st), 0);
	/* Foreign keys are enforced: a file row needs its swarm. */
	assert_int_not_equal(store_exec(st, "INSERT INTO files(swarm_id, idx, path, size,"
					    " first_piece, num_pieces) VALUES (99, 0, 'a', 1, 0, 1);"),
			     0);
	/* WAL mode is on. */
	sqlite3_stmt *stmt;
	assert_int_equal(sqlite3_prepare_v2(st->db, "PRAGMA journal_mode;", -1, &stmt, NULL),
			 SQLITE_OK);
	assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
	assert_string_equal((const char *)sqlite3_column_text(stmt, 0), "wal");
	sqlite3_finalize(stmt);
	store_close(st);
}

static void test_refuses_newer(void **state)
{
	(void)state;
	char err[512];
	struct store *st = store_open(path, err, sizeof err);
	assert_non_null(st);
	assert_int_equal(store_exec(st, "PRAGMA user_version = 999;"), 0);
	store_close(st);
	struct stat before, after;
	assert_int_equal(stat(path, &before), 0);
	st = store_open(path, err, sizeof err);
	assert_null(st);
	assert_non_null(strstr(err, "newer"));
	assert_int_equal(stat(path, &after), 0);
	assert_int_equal(before.st_size, after.st_size);
	assert_int_equal(before.st_mtime, after.st_mtime);
}

static void test_refuses_garbage(void **state)
{
	(void)state;
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	char junk[4096];
	memset(junk, 'x', sizeof junk);
	assert_int_equal(write(fd, junk, sizeof junk), (ssize_t)sizeof junk);
	close(fd);
	char err[512];
	struct store *st = store_open(path, err, sizeof err);
	assert_null(st);
	assert_non_null(strstr(err, "refusing"));
	/* Untouched: still our junk. */
	char back[16];
	fd = open(path, O_RDONLY);
	assert_int_equal(read(fd, back, sizeof back), (ssize_t)sizeof back);
	close(fd);
	assert_memory_equal(back, junk, sizeof back);
}

static void test_refuses_corrupt_pages(void **state)
{
	(void)state;
	char err[512];
	struct store *st = store_open(path, err, sizeof err);
	assert_non_null(st);
	/* Enough rows to span several pages, then scribble over a middle page. */
	assert_int_equal(store_exec(st, "CREATE TABLE filler(x BLOB);"
					"WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM c"
					" WHERE i < 200) INSERT INTO filler SELECT randomblob(500) FROM c;"),
			 0);
	store_close(st);
	int fd = open(path, O_WRONLY);
	assert_true(fd >= 0);
	char junk[4096];
	memset(junk, 0xa5, sizeof junk);
	assert_int_equal(pwrite(fd, junk, sizeof junk, 4096 * 3), (ssize_t)sizeof junk);
	close(fd);
	st = store_open(path, err, sizeof err);
	assert_null(st);
	assert_non_null(strstr(err, "refusing"));
}

/* A database written by schema 1 is carried forward, keeping its rows. */
static void test_migrates_forward(void **state)
{
	(void)state;
	char err[512];
	struct store *st = store_open(path, err, sizeof err);
	assert_non_null(st);
	/* Turn it back into a schema-1 file with one swarm in it. */
	assert_int_equal(store_exec(st, "ALTER TABLE files DROP COLUMN priority;"
					"ALTER TABLE swarms DROP COLUMN sequential;"
					"ALTER TABLE swarms DROP COLUMN select_rules;"
					"DROP TABLE trackers;"
					"ALTER TABLE swarms DROP COLUMN key_v1;"
					"ALTER TABLE swarms DROP COLUMN upload_limit;"
					"ALTER TABLE swarms DROP COLUMN download_limit;"
					"ALTER TABLE files DROP COLUMN owned;"
					"PRAGMA user_version = 1;"
					"INSERT INTO swarms(id, info_hash, name, role, root, state, added_at)"
					" VALUES (7, zeroblob(32), 'old', 'share', '/x', 'seeding', 1);"
					"INSERT INTO swarms(id, info_hash, name, role, root, state, added_at)"
					" VALUES (8, randomblob(32), 'got', 'join', '/y', 'seeding', 1);"
					"INSERT INTO files(swarm_id, idx, path, size, first_piece, num_pieces)"
					" VALUES (7, 0, 'a', 1, 0, 1), (8, 0, 'b', 1, 0, 1);"),
			 0);
	store_close(st);
	st = store_open(path, err, sizeof err);
	assert_non_null(st);
	assert_int_equal(store_schema_version(st), STORE_SCHEMA_VERSION);
	assert_int_equal(store_exec(st, "UPDATE swarms SET upload_limit = 5, download_limit = 6"
					" WHERE id = 7;"),
			 0);
	sqlite3_stmt *stmt;
	assert_int_equal(sqlite3_prepare_v2(st->db,
					    "SELECT name, upload_limit FROM swarms WHERE id = 7;", -1,
					    &stmt, NULL),
			 SQLITE_OK);
	assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
	assert_string_equal((const char *)sqlite3_column_text(stmt, 0), "old");
	assert_int_equal(sqlite3_column_int(stmt, 1), 5);
	sqlite3_finalize(stmt);
	/* 3 -> 4: old swarms are known by their v2 hash; no trackers. */
	assert_int_equal(sqlite3_prepare_v2(st->db,
					    "SELECT count(*) FROM swarms WHERE key_v1 = 0;"
					    , -1, &stmt, NULL),
			 SQLITE_OK);
	assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int(stmt, 0), 2);
	sqlite3_finalize(stmt);
	assert_int_equal(store_exec(st, "INSERT INTO trackers(swarm_id, tier, pos, url)"
					" VALUES (7, 0, 0, 'udp://t:1');"),
			 0);
	/* 2 -> 3: a join made its files before files.owned existed; a share
	 * never owns its files. */
	assert_int_equal(sqlite3_prepare_v2(st->db,
					    "SELECT swarm_id, owned FROM files ORDER BY swarm_id;", -1,
					    &stmt, NULL),
			 SQLITE_OK);
	assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int(stmt, 0), 7);
	assert_int_equal(sqlite3_column_int(stmt, 1), 0);
	assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int(stmt, 0), 8);
	assert_int_equal(sqlite3_column_int(stmt, 1), 1);
	sqlite3_finalize(stmt);
	store_close(st);
}

/* files.owned: a file the join has decided to create but not yet created is
 * "to create", which reloads as STORAGE_CREATE (O_EXCL), never as the
 * swarm's own file (opened read-write, deleted by delete_data). */
static void test_owned_reload(void **state)
{
	(void)state;
	uint8_t access[4] = { STORAGE_READ, STORAGE_OWN, STORAGE_CREATE, STORAGE_REPLACE };
	const enum storage_access want[4] = { STORAGE_READ, STORAGE_OWN, STORAGE_CREATE,
					      STORAGE_CREATE };
	struct swarm sw;
	memset(&sw, 0, sizeof sw);
	sw.role = SWARM_ROLE_JOIN;
	sw.file_access = access;
	for (size_t f = 0; f < 4; f++) {
		int code = swarm_file_owned_code(&sw, f);
		assert_int_equal(swarm_file_access_from_code(SWARM_ROLE_JOIN, code), want[f]);
		assert_int_equal(swarm_file_access_from_code(SWARM_ROLE_SHARE, code), STORAGE_READ);
	}
	assert_false(swarm_file_owned(&sw, 0));
	assert_true(swarm_file_owned(&sw, 1));
	assert_false(swarm_file_owned(&sw, 2)); /* not created yet: not ours */
	assert_false(swarm_file_owned(&sw, 3));
	/* Databases written before "to create" existed hold 0 and 1. */
	assert_int_equal(swarm_file_access_from_code(SWARM_ROLE_JOIN, 1), STORAGE_OWN);
	assert_int_equal(swarm_file_access_from_code(SWARM_ROLE_JOIN, 0), STORAGE_READ);
	sw.role = SWARM_ROLE_SHARE;
	assert_int_equal(swarm_file_owned_code(&sw, 1), SWARM_FILE_NOT_OWNED);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_create_and_reopen, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refuses_newer, setup, teardown),
		cmocka_unit_test_setup_teardown(test_migrates_forward, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refuses_garbage, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refuses_corrupt_pages, setup, teardown),
		cmocka_unit_test(test_owned_reload),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
