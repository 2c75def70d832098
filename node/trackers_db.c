/* trackers_db.c: a swarm's trackers in the trackers table (schema 4):
 * (swarm_id, tier, pos, url), tier 0 first, pos the order within a tier. */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include <sqlite3.h>

#include "common/log.h"
#include "node/node.h"
#include "node/store.h"
#include "node/swarm.h"
#include "node/trackers.h"

int trackers_db_save(struct node *node, const struct swarm *sw, const struct tracker_list *l)
{
	if (!sw->in_db)
		return 0;
	sqlite3 *db = node->store->db;
	sqlite3_stmt *del = NULL, *ins = NULL;
	if (store_exec(node->store, "BEGIN IMMEDIATE;") != 0)
		return -EIO;
	if (sqlite3_prepare_v2(db, "DELETE FROM trackers WHERE swarm_id = ?1;", -1, &del, NULL) !=
		    SQLITE_OK ||
	    sqlite3_prepare_v2(db, "INSERT INTO trackers(swarm_id, tier, pos, url) VALUES (?1, ?2, ?3, ?4);",
			       -1, &ins, NULL) != SQLITE_OK)
		goto fail;
	sqlite3_bind_int64(del, 1, sw->id);
	if (sqlite3_step(del) != SQLITE_DONE)
		goto fail;
	for (size_t i = 0; i < l->count; i++) {
		sqlite3_reset(ins);
		sqlite3_bind_int64(ins, 1, sw->id);
		sqlite3_bind_int(ins, 2, (int)l->e[i].tier);
		sqlite3_bind_int(ins, 3, (int)i);
		sqlite3_bind_text(ins, 4, l->e[i].url, -1, SQLITE_STATIC);
		if (sqlite3_step(ins) != SQLITE_DONE)
			goto fail;
	}
	sqlite3_finalize(del);
	sqlite3_finalize(ins);
	del = ins = NULL;
	if (store_exec(node->store, "COMMIT;") == 0)
		return 0;
fail:
	log_error("swarm %" PRId64 ": cannot record its trackers: %s", sw->id, sqlite3_errmsg(db));
	sqlite3_finalize(del);
	sqlite3_finalize(ins);
	store_rollback(node->store);
	return -EIO;
}

int trackers_db_load(struct node *node, const struct swarm *sw, struct tracker_list *out)
{
	memset(out, 0, sizeof *out);
	sqlite3_stmt *st = store_stmt(node->store, "SELECT tier, url FROM trackers WHERE swarm_id = ?1"
						   " ORDER BY tier, pos;");
	if (!st) {
		log_error("swarm %" PRId64 ": cannot read its trackers: %s", sw->id,
			  sqlite3_errmsg(node->store->db));
		return -EIO;
	}
	sqlite3_bind_int64(st, 1, sw->id);
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		int tier = sqlite3_column_int(st, 0);
		const char *url = (const char *)sqlite3_column_text(st, 1);
		if (tier < 0 || !url || tracker_list_add(out, (unsigned)tier, url) < 0)
			out->dropped++; /* a row this shoal cannot use: left out */
	}
	store_stmt_done(st);
	if (rc != SQLITE_DONE) {
		memset(out, 0, sizeof *out);
		return -EIO;
	}
	return 0;
}
