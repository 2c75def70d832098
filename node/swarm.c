/* swarm.c: the swarm registry, its JSON view and its rows in SQLite. */
#include "config.h"

#include "common/bytes.h"
#include "node/swarm.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "common/bencode.h"
#include "common/buf.h"
#include "common/log.h"
#include "common/util.h"
#include "node/node.h"
#include "node/engine.h"
#include "node/joincheck.h"
#include "node/store.h"
#include "transfer/magnet.h"
#include "transfer/metainfo.h"
#include "transfer/storage.h"

static const char *const state_names[] = {
	[SWARM_HASHING] = "hashing",         [SWARM_CHECKING] = "checking",
	[SWARM_METADATA] = "metadata",       [SWARM_DOWNLOADING] = "downloading",
	[SWARM_SEEDING] = "seeding",         [SWARM_PAUSED] = "paused",
	[SWARM_ERROR] = "error",
};

const char *swarm_state_name(enum swarm_state s)
{
	return (unsigned)s < ARRAY_LEN(state_names) ? state_names[s] : "unknown";
}

static int state_from_name(const char *s, enum swarm_state *out)
{
	for (size_t i = 0; i < ARRAY_LEN(state_names); i++)
		if (state_names[i] && s && strcmp(s, state_names[i]) == 0) {
			*out = (enum swarm_state)i;
			return 0;
		}
	return -EINVAL;
}

const char *swarm_role_name(enum swarm_role r)
{
	return r == SWARM_ROLE_SHARE ? "share" : "join";
}

_Static_assert(SWARM_STATE_COUNT <= NODE_SWARM_STATES, "node.h's NODE_SWARM_STATES is too small");

/* ------------------------------------------------------------ indexes */

static uint64_t id_hash(int64_t id)
{
	return hmap_hash_u64((uint64_t)id);
}

static uint64_t key_hash(const uint8_t *h20)
{
	return hmap_hash_bytes(h20, 20);
}

static uint64_t root_hash(const char *root)
{
	return hmap_hash_bytes(root, strlen(root));
}

void swarm_note_changed(struct node *node)
{
	node->swarm_ix.gen++;
}

static void count_state(struct node *node, const struct swarm *sw, int delta)
{
	node->swarm_ix.gen++;
	if (sw->remove_pending)
		return;
	node->swarm_ix.count += (uint32_t)delta;
	node->swarm_ix.by_state[sw->state] += (uint32_t)delta;
}

void swarm_set_state(struct node *node, struct swarm *sw, enum swarm_state state)
{
	count_state(node, sw, -1);
	sw->state = state;
	count_state(node, sw, +1);
}

void swarm_mark_removed(struct node *node, struct swarm *sw)
{
	count_state(node, sw, -1);
	sw->remove_pending = true;
}

uint32_t swarm_count_states(const struct node *node, uint32_t counts[SWARM_STATE_COUNT])
{
	for (int i = 0; i < SWARM_STATE_COUNT; i++)
		counts[i] = node->swarm_ix.by_state[i];
	return node->swarm_ix.count;
}

int swarm_set_key(struct node *node, struct swarm *sw, const uint8_t info_hash[32], bool key_v1)
{
	struct hmap *m = &node->swarm_ix.by_key;
	if (hmap_add(m, key_hash(info_hash), sw) != 0)
		return -ENOMEM;
	if (sw->has_info_hash)
		(void)hmap_remove(m, key_hash(sw->info_hash), sw);
	memcpy(sw->info_hash, info_hash, 32);
	sw->has_info_hash = true;
	sw->key_v1 = key_v1;
	swarm_note_changed(node);
	return 0;
}

int swarm_set_v1(struct node *node, struct swarm *sw, const uint8_t info_hash_v1[20])
{
	struct hmap *m = &node->swarm_ix.by_v1;
	if (hmap_add(m, key_hash(info_hash_v1), sw) != 0)
		return -ENOMEM;
	if (sw->has_info_hash_v1)
		(void)hmap_remove(m, key_hash(sw->info_hash_v1), sw);
	memcpy(sw->info_hash_v1, info_hash_v1, 20);
	sw->has_info_hash_v1 = true;
	swarm_note_changed(node);
	return 0;
}

struct swarm *swarm_new(struct node *node, int64_t id, enum swarm_role role, const char *name,
			const char *root)
{
	struct swarm *sw = calloc(1, sizeof *sw);
	if (!sw)
		return NULL;
	sw->name = strdup(name);
	sw->root = strdup(root);
	sw->id = id > 0 ? id : node->next_swarm_id;
	struct swarm_index *ix = &node->swarm_ix;
	if (!sw->name || !sw->root || hmap_add(&ix->by_id, id_hash(sw->id), sw) != 0)
		goto fail;
	if (hmap_add(&ix->by_root, root_hash(sw->root), sw) != 0) {
		(void)hmap_remove(&ix->by_id, id_hash(sw->id), sw);
		goto fail;
	}
	if (sw->id >= node->next_swarm_id)
		node->next_swarm_id = sw->id + 1;
	sw->role = role;
	sw->added_at = (int64_t)time(NULL);
	/* Append, so listings come in id order (ids only grow: a loaded
	 * swarm's id comes from the table, read in id order). */
	sw->prev = ix->tail;
	if (ix->tail)
		ix->tail->next = sw;
	else
		node->swarms = sw;
	ix->tail = sw;
	count_state(node, sw, +1);
	return sw;
fail:
	free(sw->name);
	free(sw->root);
	free(sw);
	return NULL;
}

void swarm_free(struct node *node, struct swarm *sw)
{
	struct swarm_index *ix = &node->swarm_ix;
	count_state(node, sw, -1);
	(void)hmap_remove(&ix->by_id, id_hash(sw->id), sw);
	(void)hmap_remove(&ix->by_root, root_hash(sw->root), sw);
	if (sw->has_info_hash)
		(void)hmap_remove(&ix->by_key, key_hash(sw->info_hash), sw);
	if (sw->has_info_hash_v1)
		(void)hmap_remove(&ix->by_v1, key_hash(sw->info_hash_v1), sw);
	if (sw->prev)
		sw->prev->next = sw->next;
	else
		node->swarms = sw->next;
	if (sw->next)
		sw->next->prev = sw->prev;
	else
		ix->tail = sw->prev;
	if (!node->swarms) {
		hmap_clear(&ix->by_id);
		hmap_clear(&ix->by_root);
		hmap_clear(&ix->by_key);
		hmap_clear(&ix->by_v1);
	}
	if (sw->meta) {
		metainfo_destroy(sw->meta);
		free(sw->meta);
	}
	free(sw->mtimes_ns);
	free(sw->file_access);
	free(sw->file_prio);
	free(sw->wanted);
	free(sw->select_rules);
	free(sw->have);
	free(sw->name);
	free(sw->root);
	free(sw);
}

void swarm_report_job_ended(struct node *node, struct swarm *sw)
{
	if (node->events && node->events->job_ended)
		node->events->job_ended(node, sw);
}

void swarm_report_hashed(struct node *node, struct swarm *sw)
{
	if (node->events && node->events->hashed)
		node->events->hashed(node, sw);
}

void swarm_report_completed(struct node *node, struct swarm *sw)
{
	if (node->events && node->events->completed)
		node->events->completed(node, sw);
}

int swarm_report_peer(struct node *node, struct swarm *sw, const char *host, uint16_t port,
		      const char *source)
{
	if (node->events && node->events->peer_found)
		return node->events->peer_found(node, sw, host, port, source);
	return 0;
}

void swarm_report_checked(struct node *node, struct swarm *sw, bool ok)
{
	if (node->events && node->events->checked)
		node->events->checked(node, sw, ok);
}

/* Of the swarms indexed in `m` under the 20 bytes `h20`, the first in id
 * order (as a walk of the list would find) that `match` accepts. */
static struct swarm *find_in(const struct hmap *m, const uint8_t *h20,
			     bool (*match)(const struct swarm *sw, const void *arg), const void *arg)
{
	struct swarm *found = NULL;
	size_t pos = 0;
	for (struct swarm *sw; (sw = hmap_next(m, key_hash(h20), &pos));)
		if (match(sw, arg) && (!found || sw->id < found->id))
			found = sw;
	return found;
}

struct swarm *swarm_find(struct node *node, const char *key)
{
	char *end;
	long long id = strtoll(key, &end, 10);
	if (*key && *end == '\0') {
		size_t pos = 0;
		for (struct swarm *sw; (sw = hmap_next(&node->swarm_ix.by_id, id_hash(id), &pos));)
			if (sw->id == id)
				return sw;
	}
	size_t n = strlen(key);
	if (n < 8 || n > 64)
		return NULL;
	/* A prefix of the hash: typed by a person, so a walk is fine. */
	struct swarm *found = NULL;
	for (struct swarm *sw = node->swarms; sw; sw = sw->next) {
		if (!sw->has_info_hash)
			continue;
		char hex[65];
		hex_encode(sw->info_hash, 32, hex);
		if (strncasecmp(hex, key, n) == 0) {
			if (found)
				return NULL; /* ambiguous */
			found = sw;
		}
	}
	return found;
}

static struct swarm *find_by_id(const struct node *node, int64_t id)
{
	size_t pos = 0;
	for (struct swarm *sw; (sw = hmap_next(&node->swarm_ix.by_id, id_hash(id), &pos));)
		if (sw->id == id)
			return sw;
	return NULL;
}

struct swarm *swarm_find_id(const struct node *node, int64_t id)
{
	return find_by_id(node, id);
}

struct swarm *swarm_for_key20(struct node *node, const uint8_t key[20])
{
	struct swarm *found = NULL;
	for (int v1 = 0; v1 < 2; v1++) {
		size_t pos = 0;
		for (struct swarm *sw; (sw = swarm_next_by_key20(node, key, v1, &pos));)
			if (!sw->remove_pending && (!found || sw->id < found->id))
				found = sw;
	}
	return found;
}

struct swarm *swarm_first_after(const struct node *node, int64_t after)
{
	struct swarm *head = node->swarms, *tail = node->swarm_ix.tail;
	if (!head || after >= tail->id)
		return NULL;
	if (after < head->id)
		return head;
	/* head->id <= after < tail->id: the answer exists.  Look up `after`
	 * and the ids past it, and walk back from the tail, in step. */
	struct swarm *back = tail;
	for (int64_t id = after;; id++) {
		struct swarm *sw = find_by_id(node, id);
		if (sw)
			return id == after ? sw->next : sw;
		if (back->prev->id <= after)
			return back;
		back = back->prev;
	}
}

struct swarm *swarm_find_by_root(struct node *node, enum swarm_role role, const char *root)
{
	struct swarm *found = NULL;
	size_t pos = 0;
	for (struct swarm *sw; (sw = hmap_next(&node->swarm_ix.by_root, root_hash(root), &pos));)
		if (sw->role == role && strcmp(sw->root, root) == 0 && (!found || sw->id < found->id))
			found = sw;
	return found;
}

static bool match_key32(const struct swarm *sw, const void *arg)
{
	return sw->has_info_hash && memcmp(sw->info_hash, arg, 32) == 0;
}

struct swarm *swarm_find_by_hash(struct node *node, const uint8_t info_hash[32])
{
	return find_in(&node->swarm_ix.by_key, info_hash, match_key32, info_hash);
}

struct swarm *swarm_next_by_key20(struct node *node, const uint8_t key[20], bool v1, size_t *pos)
{
	const struct hmap *m = v1 ? &node->swarm_ix.by_v1 : &node->swarm_ix.by_key;
	for (struct swarm *sw; (sw = hmap_next(m, key_hash(key), pos));)
		if (v1 ? sw->has_info_hash_v1 && memcmp(sw->info_hash_v1, key, 20) == 0
		       : sw->has_info_hash && memcmp(sw->info_hash, key, 20) == 0)
			return sw;
	return NULL;
}

static bool match_key20(const struct swarm *sw, const void *arg)
{
	return sw->has_info_hash && memcmp(sw->info_hash, arg, 20) == 0;
}

struct swarm *swarm_find_by_key20(struct node *node, const uint8_t key[20])
{
	return find_in(&node->swarm_ix.by_key, key, match_key20, key);
}

bool swarm_private(const struct swarm *sw)
{
	return sw->meta && sw->meta->private_flag;
}

bool swarm_v1_key(const struct swarm *sw, uint8_t out[32])
{
	if (!sw->has_info_hash_v1 || sw->key_v1)
		return false;
	memset(out, 0, 32);
	memcpy(out, sw->info_hash_v1, 20);
	return true;
}

static bool match_v1(const struct swarm *sw, const void *arg)
{
	return sw->has_info_hash_v1 && memcmp(sw->info_hash_v1, arg, 20) == 0;
}

struct swarm *swarm_find_by_v1(struct node *node, const uint8_t info_hash_v1[20])
{
	return find_in(&node->swarm_ix.by_v1, info_hash_v1, match_v1, info_hash_v1);
}

int swarm_meta_check(const struct swarm *sw, const struct metainfo *mi)
{
	if (sw->key_v1)
		return mi->has_v1 && memcmp(mi->info_hash_v1, sw->info_hash, 20) == 0
			       ? 0
			       : METAINFO_E_HASH_MISMATCH;
	int rc = metainfo_check_hash(mi, sw->info_hash);
	if (rc == 0 && sw->has_info_hash_v1 &&
	    (!mi->has_v1 || memcmp(mi->info_hash_v1, sw->info_hash_v1, 20) != 0))
		rc = METAINFO_E_HASH_MISMATCH; /* a link naming both hashes, of two torrents */
	return rc;
}

int swarm_take_v2_key(struct node *node, struct swarm *sw)
{
	const struct metainfo *mi = sw->meta;
	if (!sw->key_v1 || !mi || !mi->has_v2)
		return 0;
	struct swarm *twin = swarm_find_by_hash(node, mi->info_hash);
	if (twin && twin != sw)
		return -EEXIST;
	return swarm_set_key(node, sw, mi->info_hash, false);
}

int swarm_learn_v1(struct node *node, struct swarm *sw)
{
	if (sw->meta && sw->meta->has_v1)
		return swarm_set_v1(node, sw, sw->meta->info_hash_v1);
	return 0;
}

bool swarm_have_set(struct swarm *sw, uint32_t piece)
{
	if (bit_get(sw->have, piece))
		return false;
	bit_set(sw->have, piece);
	sw->have_count++;
	if (sw->wanted && bit_get(sw->wanted, piece))
		sw->wanted_have++;
	return true;
}

bool swarm_have_test(const struct swarm *sw, uint32_t piece)
{
	return sw->have && bit_get(sw->have, piece);
}

void swarm_have_clear(struct swarm *sw, uint32_t piece)
{
	if (bit_get(sw->have, piece)) {
		bit_clear(sw->have, piece);
		sw->have_count--;
		if (sw->wanted && bit_get(sw->wanted, piece))
			sw->wanted_have--;
	}
}

/* Bytes held: sum of verified pieces' lengths. */
uint64_t swarm_bytes_have(const struct swarm *sw)
{
	const struct metainfo *mi = sw->meta;
	if (!mi || !sw->have)
		return 0;
	uint64_t total = 0;
	if (!mi->has_v2) {
		/* v1: the stream bytes of the pieces had (a piece holding a BEP 47
		 * pad counts it, so the exact figure comes only when complete). */
		if (sw->have_count == mi->total_pieces)
			return mi->total_size;
		for (uint32_t p = 0; p < mi->total_pieces; p++)
			if (swarm_have_test(sw, p))
				total += metainfo_v1_piece_size(mi, p);
		return total;
	}
	for (size_t f = 0; f < mi->file_count; f++) {
		const struct metainfo_file *file = &mi->files[f];
		for (uint32_t i = 0; i < file->piece_count; i++)
			if (swarm_have_test(sw, file->first_piece + i))
				total += merkle_piece_size(file->size, mi->piece_length, i);
	}
	return total;
}

/* ------------------------------------------------------------ selection */

static int bind_exec(sqlite3_stmt *stmt);

static const char *const prio_names[] = { "skip", "low", "normal", "high" };

const char *swarm_prio_name(enum swarm_prio p)
{
	return (unsigned)p <= SWARM_PRIO_HIGH ? prio_names[p] : "normal";
}

int swarm_prio_from_name(const char *name)
{
	for (int i = 0; i <= SWARM_PRIO_HIGH; i++)
		if (name && strcmp(name, prio_names[i]) == 0)
			return i;
	return -1;
}

enum swarm_prio swarm_file_prio(const struct swarm *sw, size_t file)
{
	if (!sw->file_prio || !sw->meta || file >= sw->meta->file_count)
		return SWARM_PRIO_NORMAL;
	return (enum swarm_prio)sw->file_prio[file];
}

int swarm_selection_update(struct swarm *sw)
{
	const struct metainfo *mi = sw->meta;
	if (!mi)
		return 0;
	bool any_skip = false;
	for (size_t f = 0; sw->file_prio && f < mi->file_count && !any_skip; f++)
		any_skip = sw->file_prio[f] == SWARM_PRIO_SKIP && mi->files[f].size > 0;
	uint8_t *w = NULL;
	uint32_t count = 0, have = 0;
	if (any_skip) {
		w = calloc((mi->total_pieces + 7) / 8 + 1, 1);
		if (!w)
			return -ENOMEM;
		for (size_t f = 0; f < mi->file_count; f++) {
			const struct metainfo_file *mf = &mi->files[f];
			if (sw->file_prio[f] == SWARM_PRIO_SKIP || mf->size == 0)
				continue;
			for (uint32_t i = 0; i < mf->piece_count; i++)
				bit_set(w, mf->first_piece + i);
		}
		for (uint32_t i = 0; i < mi->total_pieces; i++) {
			if (!bit_get(w, i))
				continue;
			count++;
			have += swarm_have_test(sw, i) ? 1 : 0;
		}
	}
	free(sw->wanted);
	sw->wanted = w;
	sw->wanted_count = count;
	sw->wanted_have = have;
	return 0;
}

bool swarm_done(const struct swarm *sw)
{
	if (!sw->meta)
		return false;
	return sw->wanted ? sw->wanted_have == sw->wanted_count
			  : sw->have_count == sw->meta->total_pieces;
}

bool swarm_piece_wanted(const struct swarm *sw, uint32_t piece)
{
	return !sw->wanted || bit_get(sw->wanted, piece);
}

/* Does any rule of `kind` ('+' or '-') match the path?  *any_out: is there a
 * rule of that kind at all. */
static bool rules_match(const char *rules, char kind, const char *path, bool *any_out)
{
	bool hit = false;
	*any_out = false;
	char pat[1024];
	for (const char *line = rules; line && *line;) {
		const char *end = strchr(line, '\n');
		size_t len = end ? (size_t)(end - line) : strlen(line);
		if (len >= 2 && line[0] == kind && len - 1 < sizeof pat) {
			memcpy(pat, line + 1, len - 1);
			pat[len - 1] = '\0';
			*any_out = true;
			hit = hit || path_glob_match(pat, path);
		}
		line = end ? end + 1 : NULL;
	}
	return hit;
}

int swarm_rules_prio(const struct metainfo *mi, const char *rules, uint8_t *prio)
{
	size_t n = mi->file_count;
	int left = 0;
	for (size_t f = 0; f < n; f++) {
		bool any_only, any_skip;
		bool only = rules_match(rules, '+', mi->files[f].path, &any_only);
		bool skip = rules_match(rules, '-', mi->files[f].path, &any_skip);
		bool keep = (!any_only || only) && !skip;
		prio[f] = keep ? SWARM_PRIO_NORMAL : SWARM_PRIO_SKIP;
		left += keep && mi->files[f].size > 0;
	}
	return left;
}

int swarm_apply_rules(struct swarm *sw, const char *rules)
{
	size_t n = sw->meta->file_count;
	uint8_t *prio = malloc(n ? n : 1);
	if (!prio)
		return -ENOMEM;
	int left = swarm_rules_prio(sw->meta, rules, prio);
	free(sw->file_prio);
	sw->file_prio = prio;
	int rc = swarm_selection_update(sw);
	return rc < 0 ? rc : left;
}

int swarm_db_save_selection(struct node *node, struct swarm *sw)
{
	sqlite3 *db = node->store->db;
	sqlite3_stmt *fs = NULL, *ss = NULL;
	int rc = -EIO;
	if (!sw->in_db)
		return 0;
	if (store_exec(node->store, "BEGIN IMMEDIATE;"))
		return -EIO;
	if (sqlite3_prepare_v2(db,
			       "UPDATE files SET priority = ?3, owned = ?4"
			       " WHERE swarm_id = ?1 AND idx = ?2;",
			       -1, &fs, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db,
			       "UPDATE swarms SET sequential = ?2, select_rules = ?3 WHERE id = ?1;",
			       -1, &ss, NULL) != SQLITE_OK)
		goto done;
	for (size_t f = 0; sw->meta && f < sw->meta->file_count; f++) {
		sqlite3_bind_int64(fs, 1, sw->id);
		sqlite3_bind_int64(fs, 2, (sqlite3_int64)f);
		sqlite3_bind_int(fs, 3, (int)swarm_file_prio(sw, f));
		sqlite3_bind_int(fs, 4, swarm_file_owned_code(sw, f));
		if (bind_exec(fs))
			goto done;
	}
	sqlite3_bind_int64(ss, 1, sw->id);
	sqlite3_bind_int(ss, 2, sw->sequential);
	if (sw->select_rules)
		sqlite3_bind_text(ss, 3, sw->select_rules, -1, SQLITE_STATIC);
	if (bind_exec(ss))
		goto done;
	rc = 0;
done:
	sqlite3_finalize(fs);
	sqlite3_finalize(ss);
	if (store_exec(node->store, rc == 0 ? "COMMIT;" : "ROLLBACK;") && rc == 0)
		rc = -EIO;
	return rc;
}

int swarm_file_pieces(const struct swarm *sw, size_t file, uint64_t off, uint64_t len,
		      uint32_t *first_out, uint32_t *last_out)
{
	const struct metainfo *mi = sw->meta;
	if (!mi)
		return -ENODATA;
	if (file >= mi->file_count || len == 0 || off >= mi->files[file].size ||
	    len > mi->files[file].size - off)
		return -ERANGE;
	/* Both layouts: the file's offset in the piece stream (v2: its first
	 * piece times the piece length) plus the offset in the file. */
	uint64_t start = mi->files[file].offset + off;
	*first_out = (uint32_t)(start / mi->piece_length);
	*last_out = (uint32_t)((start + len - 1) / mi->piece_length);
	return 0;
}

bool swarm_file_owned(const struct swarm *sw, size_t file)
{
	if (sw->role != SWARM_ROLE_JOIN)
		return false;
	/* NULL: the join has not decided about its files yet, so it made none.
	 * STORAGE_CREATE / STORAGE_REPLACE: decided, but not created yet. */
	return sw->file_access && sw->file_access[file] == STORAGE_OWN;
}

int swarm_file_owned_code(const struct swarm *sw, size_t file)
{
	if (sw->role != SWARM_ROLE_JOIN || !sw->file_access)
		return SWARM_FILE_NOT_OWNED;
	switch (sw->file_access[file]) {
	case STORAGE_OWN:
		return SWARM_FILE_OWNED;
	case STORAGE_CREATE:
	case STORAGE_REPLACE:
		return SWARM_FILE_TO_CREATE;
	case STORAGE_SKIP:
		return SWARM_FILE_SKIPPED;
	default:
		return SWARM_FILE_NOT_OWNED;
	}
}

enum storage_access swarm_file_access_from_code(enum swarm_role role, int code)
{
	if (role != SWARM_ROLE_JOIN)
		return STORAGE_READ;
	/* "To create" reloads as STORAGE_CREATE (O_EXCL): if shoal did create
	 * it before a crash, that is an error, never a write into a file that
	 * may be the user's.  --overwrite is not kept across a restart. */
	return code == SWARM_FILE_OWNED       ? STORAGE_OWN
	       : code == SWARM_FILE_TO_CREATE ? STORAGE_CREATE
	       : code == SWARM_FILE_SKIPPED   ? STORAGE_SKIP
					      : STORAGE_READ;
}

void swarm_content_root(const struct swarm *sw, char *out, size_t len)
{
	const struct metainfo *mi = sw->meta;
	if (sw->role == SWARM_ROLE_SHARE ||
	    (mi->file_count == 1 && strcmp(mi->files[0].path, mi->name) == 0))
		snprintf(out, len, "%s", sw->root);
	else
		snprintf(out, len, "%s/%s", sw->root, mi->name);
}

int swarm_delete_data(const struct swarm *sw)
{
	if (sw->role != SWARM_ROLE_JOIN || !sw->meta)
		return 0;
	if (!sw->file_access)
		return 0; /* undecided: nothing was created */
	/* Through the same layout the downloads used: the walk from sw->root
	 * never follows a symlink, and only STORAGE_OWN files (never an
	 * adopted one) are unlinked, with their emptied directories. */
	struct join_layout layout = { 0 };
	struct storage *st = NULL;
	int n = join_layout_init(&layout, sw->meta, true, sw->file_access);
	if (n == 0)
		n = join_layout_storage(&layout, sw->root, 1, &st);
	if (n == 0)
		n = storage_delete_owned(st);
	if (n < 0)
		log_warn("swarm %" PRId64 ": cannot delete its data under %s: %s", sw->id,
			 sw->root, strerror(-n));
	storage_free(st);
	join_layout_destroy(&layout);
	return n < 0 ? 0 : n;
}

static int bind_exec(sqlite3_stmt *stmt);

int swarm_db_save_owned(struct node *node, struct swarm *sw)
{
	sqlite3 *db = node->store->db;
	sqlite3_stmt *st = NULL;
	int rc = -EIO;
	if (!sw->meta || !sw->in_db)
		return 0;
	if (store_exec(node->store, "BEGIN IMMEDIATE;"))
		return -EIO;
	if (sqlite3_prepare_v2(db, "UPDATE files SET owned = ?3 WHERE swarm_id = ?1 AND idx = ?2;",
			       -1, &st, NULL) != SQLITE_OK)
		goto done;
	for (size_t f = 0; f < sw->meta->file_count; f++) {
		sqlite3_bind_int64(st, 1, sw->id);
		sqlite3_bind_int64(st, 2, (sqlite3_int64)f);
		sqlite3_bind_int(st, 3, swarm_file_owned_code(sw, f));
		if (bind_exec(st))
			goto done;
	}
	rc = 0;
done:
	sqlite3_finalize(st);
	if (store_exec(node->store, rc == 0 ? "COMMIT;" : "ROLLBACK;") && rc == 0)
		rc = -EIO;
	return rc;
}

static int cmp_root(const void *a, const void *b)
{
	const struct metainfo_file *x = *(const struct metainfo_file *const *)a;
	const struct metainfo_file *y = *(const struct metainfo_file *const *)b;
	return memcmp(x->root, y->root, 32);
}

void swarm_write_torrent(struct node *node, const struct swarm *sw)
{
	const struct metainfo *mi = sw->meta;
	if (!mi || !mi->all_layers)
		return;
	/* "piece layers" keys are the roots of multi-piece files, sorted and
	 * unique (identical files share one). */
	const struct metainfo_file **files = calloc(mi->file_count + 1, sizeof *files);
	if (!files)
		return;
	size_t n = 0;
	for (size_t f = 0; f < mi->file_count; f++)
		if (mi->files[f].has_root && mi->files[f].piece_count > 1)
			files[n++] = &mi->files[f];
	qsort(files, n, sizeof *files, cmp_root);
	struct buf b;
	buf_init(&b, METAINFO_MAX_TORRENT_SIZE);
	int rc = benc_put_dict(&b);
	if (!rc)
		rc = benc_put_cstr(&b, "info");
	if (!rc)
		rc = buf_append(&b, mi->info, mi->info_len); /* the exact bytes: same hash */
	if (!rc && mi->has_v2) /* a v1 torrent has none */
		rc = benc_put_cstr(&b, "piece layers");
	if (!rc && mi->has_v2)
		rc = benc_put_dict(&b);
	for (size_t i = 0; !rc && i < n; i++) {
		if (i > 0 && memcmp(files[i]->root, files[i - 1]->root, 32) == 0)
			continue;
		rc = benc_put_str(&b, files[i]->root, 32);
		if (!rc)
			rc = benc_put_str(&b, files[i]->layer, 32 * (size_t)files[i]->piece_count);
	}
	if (!rc && mi->has_v2)
		rc = benc_put_end(&b);
	if (!rc)
		rc = benc_put_end(&b);
	free(files);
	char dir[PATH_MAX], path[PATH_MAX + 100];
	snprintf(dir, sizeof dir, "%s/torrents", node->cfg.data_dir);
	if (!rc)
		rc = mkdir_p(dir, 0700);
	swarm_torrent_path(node, sw, path, sizeof path);
	if (!rc)
		rc = write_file_atomic(path, b.data, b.len, 0644);
	buf_destroy(&b);
	if (rc)
		log_error("swarm %" PRId64 ": cannot write %s: %s", sw->id, path, strerror(-rc));
}

void swarm_part_file(const struct node *node, const struct swarm *sw, char *dir, size_t dir_len,
		     char *name, size_t name_len)
{
	snprintf(dir, dir_len, "%s/parts", node->cfg.data_dir);
	/* By the info-hash, not the id: ids are reused after a removal, and a
	 * removed swarm's late write must not hand its bytes to another. */
	char hex[65];
	hex_encode(sw->info_hash, sw->key_v1 ? 20 : 32, hex);
	snprintf(name, name_len, "%s.part", hex);
}

void swarm_torrent_path(const struct node *node, const struct swarm *sw, char *out, size_t len)
{
	char hex[65];
	hex_encode(sw->info_hash, sw->key_v1 ? 20 : 32, hex);
	snprintf(out, len, "%s/torrents/%s.torrent", node->cfg.data_dir, hex);
}

/* ------------------------------------------------------------ database */

static int bind_exec(sqlite3_stmt *stmt)
{
	int rc = sqlite3_step(stmt);
	sqlite3_reset(stmt);
	sqlite3_clear_bindings(stmt);
	return rc == SQLITE_DONE ? 0 : -EIO;
}

/* Write the metadata-dependent rows (files, layers, bitmap `have`) of a
 * swarm that has its metainfo; inside the caller's transaction. */
static int store_meta_rows(struct node *node, struct swarm *sw, const uint8_t *have)
{
	sqlite3 *db = node->store->db;
	const struct metainfo *mi = sw->meta;
	sqlite3_stmt *s_upd = NULL, *s_file = NULL, *s_layer = NULL, *s_have = NULL;
	int rc = -EIO;
	if (sqlite3_prepare_v2(db,
			       "UPDATE swarms SET info = ?2, piece_length = ?3, total_size = ?4,"
			       " num_pieces = ?5, name = ?6, info_hash = ?7, key_v1 = ?8 WHERE id = ?1;",
			       -1, &s_upd, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db,
			       "INSERT OR REPLACE INTO files(swarm_id, idx, path, size, pieces_root,"
			       " first_piece, num_pieces, mtime_ns, owned, priority)"
			       " VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10);",
			       -1, &s_file, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db,
			       "INSERT OR REPLACE INTO piece_layers(swarm_id, file_idx, hashes)"
			       " VALUES (?1,?2,?3);",
			       -1, &s_layer, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db,
			       "INSERT OR REPLACE INTO have(swarm_id, bitmap) VALUES (?1, ?2);", -1,
			       &s_have, NULL) != SQLITE_OK)
		goto done;
	sqlite3_bind_int64(s_upd, 1, sw->id);
	sqlite3_bind_blob(s_upd, 2, mi->info, (int)mi->info_len, SQLITE_STATIC);
	sqlite3_bind_int64(s_upd, 3, (sqlite3_int64)mi->piece_length);
	sqlite3_bind_int64(s_upd, 4, (sqlite3_int64)mi->total_size);
	sqlite3_bind_int64(s_upd, 5, mi->total_pieces);
	sqlite3_bind_text(s_upd, 6, sw->name, -1, SQLITE_STATIC);
	sqlite3_bind_blob(s_upd, 7, sw->info_hash, 32, SQLITE_STATIC);
	sqlite3_bind_int(s_upd, 8, sw->key_v1);
	if (bind_exec(s_upd))
		goto done;
	for (size_t f = 0; f < mi->file_count; f++) {
		const struct metainfo_file *file = &mi->files[f];
		sqlite3_bind_int64(s_file, 1, sw->id);
		sqlite3_bind_int64(s_file, 2, (sqlite3_int64)f);
		sqlite3_bind_text(s_file, 3, file->path, -1, SQLITE_STATIC);
		sqlite3_bind_int64(s_file, 4, (sqlite3_int64)file->size);
		if (file->has_root)
			sqlite3_bind_blob(s_file, 5, file->root, 32, SQLITE_STATIC);
		sqlite3_bind_int64(s_file, 6, file->first_piece);
		sqlite3_bind_int64(s_file, 7, file->piece_count);
		if (sw->mtimes_ns)
			sqlite3_bind_int64(s_file, 8, sw->mtimes_ns[f]);
		sqlite3_bind_int(s_file, 9, swarm_file_owned_code(sw, f));
		sqlite3_bind_int(s_file, 10, (int)swarm_file_prio(sw, f));
		if (bind_exec(s_file))
			goto done;
		if (file->piece_count > 1 && file->layer) {
			sqlite3_bind_int64(s_layer, 1, sw->id);
			sqlite3_bind_int64(s_layer, 2, (sqlite3_int64)f);
			sqlite3_bind_blob(s_layer, 3, file->layer, (int)(32 * file->piece_count),
					  SQLITE_STATIC);
			if (bind_exec(s_layer))
				goto done;
		}
	}
	/* The caller's bitmap: never a piece not yet on disk (swarm.h). */
	sqlite3_bind_int64(s_have, 1, sw->id);
	sqlite3_bind_blob(s_have, 2, have ? (const void *)have : "",
			  have ? (int)((mi->total_pieces + 7) / 8) : 0, SQLITE_STATIC);
	if (bind_exec(s_have))
		goto done;
	rc = 0;
done:
	sqlite3_finalize(s_upd);
	sqlite3_finalize(s_file);
	sqlite3_finalize(s_layer);
	sqlite3_finalize(s_have);
	return rc;
}

int swarm_db_insert(struct node *node, struct swarm *sw, const uint8_t *have)
{
	sqlite3 *db = node->store->db;
	sqlite3_stmt *st = NULL;
	int rc = -EIO;
	if (store_exec(node->store, "BEGIN IMMEDIATE;"))
		return -EIO;
	if (sqlite3_prepare_v2(db,
			       "INSERT INTO swarms(id, info_hash, name, role, root, state, added_at,"
			       " key_v1, sequential, select_rules)"
			       " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10);",
			       -1, &st, NULL) != SQLITE_OK)
		goto done;
	sqlite3_bind_int64(st, 1, sw->id);
	sqlite3_bind_blob(st, 2, sw->info_hash, 32, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, sw->name, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, swarm_role_name(sw->role), -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, sw->root, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 6, swarm_state_name(sw->state), -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 7, sw->added_at);
	sqlite3_bind_int(st, 8, sw->key_v1);
	sqlite3_bind_int(st, 9, sw->sequential);
	if (sw->select_rules)
		sqlite3_bind_text(st, 10, sw->select_rules, -1, SQLITE_STATIC);
	if (bind_exec(st))
		goto done;
	if (sw->meta && store_meta_rows(node, sw, have) != 0)
		goto done;
	rc = 0;
done:
	sqlite3_finalize(st);
	if (rc == 0 && store_exec(node->store, "COMMIT;") == 0) {
		sw->in_db = true;
		return 0;
	}
	log_error("cannot record swarm %" PRId64 ": %s", sw->id, sqlite3_errmsg(db));
	store_rollback(node->store);
	return -EIO;
}

int swarm_db_store_meta(struct node *node, struct swarm *sw, const uint8_t *have)
{
	if (!sw->in_db || !sw->meta)
		return 0;
	if (store_exec(node->store, "BEGIN IMMEDIATE;"))
		return -EIO;
	if (store_meta_rows(node, sw, have) == 0 && store_exec(node->store, "COMMIT;") == 0)
		return 0;
	store_rollback(node->store);
	return -EIO;
}

int swarm_db_save_state(struct node *node, struct swarm *sw)
{
	/* The state row only: the bitmap is written by the durability gate
	 * (engine_swarm_save_have), which leaves out pieces not yet durable. */
	return swarm_db_save_have(node, sw, NULL);
}

int swarm_db_save_have(struct node *node, struct swarm *sw, const uint8_t *bitmap)
{
	if (!sw->in_db)
		return 0;
	sqlite3 *db = node->store->db;
	sqlite3_stmt *st = NULL, *hv = NULL, *mt = NULL;
	int rc = -EIO;
	if (store_exec(node->store, "BEGIN IMMEDIATE;"))
		return -EIO;
	if (sqlite3_prepare_v2(db, "UPDATE swarms SET state = ?2, error = ?3, paused = ?4 WHERE id = ?1;",
			       -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db,
			       "INSERT INTO have(swarm_id, bitmap) VALUES (?1, ?2) ON CONFLICT(swarm_id)"
			       " DO UPDATE SET bitmap = excluded.bitmap;",
			       -1, &hv, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, "UPDATE files SET mtime_ns = ?3 WHERE swarm_id = ?1 AND idx = ?2;",
			       -1, &mt, NULL) != SQLITE_OK)
		goto done;
	sqlite3_bind_int64(st, 1, sw->id);
	enum swarm_state s = sw->state == SWARM_PAUSED ? sw->resume_state : sw->state;
	sqlite3_bind_text(st, 2, swarm_state_name(s), -1, SQLITE_STATIC);
	if (sw->state == SWARM_ERROR)
		sqlite3_bind_text(st, 3, sw->error, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 4, sw->state == SWARM_PAUSED);
	if (bind_exec(st))
		goto done;
	if (sw->meta && bitmap) {
		sqlite3_bind_int64(hv, 1, sw->id);
		sqlite3_bind_blob(hv, 2, bitmap, (int)((sw->meta->total_pieces + 7) / 8),
				  SQLITE_STATIC);
		if (bind_exec(hv))
			goto done;
	}
	for (size_t f = 0; bitmap && sw->meta && sw->mtimes_ns && f < sw->meta->file_count; f++) {
		sqlite3_bind_int64(mt, 1, sw->id);
		sqlite3_bind_int64(mt, 2, (sqlite3_int64)f);
		sqlite3_bind_int64(mt, 3, sw->mtimes_ns[f]);
		if (bind_exec(mt))
			goto done;
	}
	rc = 0;
done:
	sqlite3_finalize(st);
	sqlite3_finalize(hv);
	sqlite3_finalize(mt);
	if (rc == 0 && store_exec(node->store, "COMMIT;") == 0)
		return 0;
	store_rollback(node->store);
	return -EIO;
}

int swarm_db_delete(struct node *node, struct swarm *sw)
{
	if (!sw->in_db)
		return 0;
	sqlite3_stmt *st = NULL;
	int rc = -EIO;
	if (sqlite3_prepare_v2(node->store->db, "DELETE FROM swarms WHERE id = ?1;", -1, &st,
			       NULL) == SQLITE_OK) {
		sqlite3_bind_int64(st, 1, sw->id);
		rc = bind_exec(st);
	}
	sqlite3_finalize(st);
	if (rc == 0)
		sw->in_db = false;
	return rc;
}

/* Load files' mtimes, piece layers and the bitmap of one swarm. */
static int load_details(struct node *node, struct swarm *sw)
{
	struct store *store = node->store;
	sqlite3_stmt *st = NULL;
	int rc = -EIO;
	struct metainfo *mi = sw->meta;
	sw->mtimes_ns = calloc(mi->file_count ? mi->file_count : 1, sizeof *sw->mtimes_ns);
	sw->have = calloc((mi->total_pieces + 7) / 8 + 1, 1);
	if (!sw->mtimes_ns || !sw->have)
		return -ENOMEM;
	sw->file_access = calloc(mi->file_count ? mi->file_count : 1, 1);
	if (!sw->file_access)
		return -ENOMEM;
	sw->file_prio = malloc(mi->file_count ? mi->file_count : 1);
	if (!sw->file_prio)
		return -ENOMEM;
	memset(sw->file_prio, SWARM_PRIO_NORMAL, mi->file_count ? mi->file_count : 1);
	if (!(st = store_stmt(store,
			      "SELECT idx, mtime_ns, owned, priority FROM files WHERE swarm_id = ?1;")))
		goto done;
	sqlite3_bind_int64(st, 1, sw->id);
	while (sqlite3_step(st) == SQLITE_ROW) {
		sqlite3_int64 idx = sqlite3_column_int64(st, 0);
		if (idx >= 0 && (size_t)idx < mi->file_count) {
			sw->mtimes_ns[idx] = sqlite3_column_int64(st, 1);
			/* Only a join's own files are ever written again. */
			sw->file_access[idx] =
				swarm_file_access_from_code(sw->role, sqlite3_column_int(st, 2));
			int prio = sqlite3_column_int(st, 3);
			sw->file_prio[idx] = (uint8_t)(sw->role == SWARM_ROLE_JOIN &&
							       prio >= SWARM_PRIO_SKIP &&
							       prio <= SWARM_PRIO_HIGH
						       ? prio
						       : SWARM_PRIO_NORMAL);
		}
	}
	store_stmt_done(st);
	if (!(st = store_stmt(store, "SELECT file_idx, hashes FROM piece_layers WHERE swarm_id = ?1;")))
		goto done;
	sqlite3_bind_int64(st, 1, sw->id);
	while (sqlite3_step(st) == SQLITE_ROW) {
		sqlite3_int64 idx = sqlite3_column_int64(st, 0);
		int n = sqlite3_column_bytes(st, 1);
		const void *p = sqlite3_column_blob(st, 1);
		if (idx < 0 || (size_t)idx >= mi->file_count ||
		    metainfo_set_layer(mi, (size_t)idx, p, (size_t)n) != 0) {
			log_error("swarm %" PRId64 ": stored piece layer %lld does not verify; ignoring it",
				  sw->id, (long long)idx);
		}
	}
	store_stmt_done(st);
	if (!(st = store_stmt(store, "SELECT bitmap FROM have WHERE swarm_id = ?1;")))
		goto done;
	sqlite3_bind_int64(st, 1, sw->id);
	if (sqlite3_step(st) == SQLITE_ROW) {
		size_t n = (size_t)sqlite3_column_bytes(st, 0);
		size_t want = (mi->total_pieces + 7) / 8;
		if (n == want) {
			memcpy(sw->have, sqlite3_column_blob(st, 0), n);
			for (uint32_t i = 0; i < mi->total_pieces; i++)
				sw->have_count += swarm_have_test(sw, i) ? 1 : 0;
		}
	}
	rc = swarm_selection_update(sw);
done:
	store_stmt_done(st);
	return rc;
}

int swarm_db_load_all(struct node *node)
{
	sqlite3 *db = node->store->db;
	sqlite3_stmt *st = NULL;
	int rc = -EIO;
	if (sqlite3_prepare_v2(db,
			       "SELECT id, info_hash, name, role, root, state, error, info, paused,"
			       " added_at, upload_limit, download_limit, key_v1, sequential, select_rules"
			       " FROM swarms ORDER BY id;",
			       -1, &st, NULL) != SQLITE_OK)
		goto done;
	while (sqlite3_step(st) == SQLITE_ROW) {
		int64_t id = sqlite3_column_int64(st, 0);
		const char *name = (const char *)sqlite3_column_text(st, 2);
		const char *role = (const char *)sqlite3_column_text(st, 3);
		const char *root = (const char *)sqlite3_column_text(st, 4);
		struct swarm *sw = swarm_new(node, id,
					     strcmp(role, "share") == 0 ? SWARM_ROLE_SHARE
									: SWARM_ROLE_JOIN,
					     name ? name : "", root ? root : "");
		if (!sw)
			goto done;
		sw->in_db = true;
		sw->added_at = sqlite3_column_int64(st, 9);
		sw->upload_limit = (uint64_t)sqlite3_column_int64(st, 10);
		sw->download_limit = (uint64_t)sqlite3_column_int64(st, 11);
		sw->sequential = sqlite3_column_int(st, 13) != 0;
		if (sqlite3_column_text(st, 14) &&
		    !(sw->select_rules = strdup((const char *)sqlite3_column_text(st, 14))))
			goto done;
		if (swarm_set_key(node, sw, sqlite3_column_blob(st, 1),
				  sqlite3_column_int(st, 12) != 0) != 0)
			goto done;
		/* Known by its v1 hash so far: v1 clients handshake with it. */
		if (sw->key_v1 && swarm_set_v1(node, sw, sw->info_hash) != 0)
			goto done;
		enum swarm_state state;
		if (state_from_name((const char *)sqlite3_column_text(st, 5), &state))
			state = SWARM_ERROR;
		swarm_set_state(node, sw, state);
		if (sw->state == SWARM_ERROR)
			snprintf(sw->error, sizeof sw->error, "%s",
				 sqlite3_column_text(st, 6) ? (const char *)sqlite3_column_text(st, 6)
							    : "unknown error");
		if (sqlite3_column_bytes(st, 7) > 0) {
			const uint8_t *info = sqlite3_column_blob(st, 7);
			size_t len = (size_t)sqlite3_column_bytes(st, 7);
			sw->meta = calloc(1, sizeof *sw->meta);
			int e = sw->meta ? metainfo_parse_info(sw->meta, info, info + len) : -ENOMEM;
			if (e == 0)
				e = swarm_meta_check(sw, sw->meta);
			if (e != 0) {
				free(sw->meta);
				sw->meta = NULL;
				swarm_set_state(node, sw, SWARM_ERROR);
				snprintf(sw->error, sizeof sw->error, "stored metadata is unusable: %s",
					 metainfo_strerror(e));
			} else if (load_details(node, sw) != 0) {
				goto done;
			}
			if (swarm_learn_v1(node, sw) != 0)
				goto done;
		}
		if (sqlite3_column_int(st, 8)) {
			sw->resume_state = sw->state;
			swarm_set_state(node, sw, SWARM_PAUSED);
		}
	}
	rc = 0;
done:
	if (rc)
		log_error("cannot load swarms: %s", sqlite3_errmsg(db));
	sqlite3_finalize(st);
	return rc;
}

int swarm_db_save_peers(struct node *node, const struct swarm *sw,
			const struct swarm_peer_row *rows, size_t n)
{
	if (!sw->in_db || n == 0)
		return 0;
	sqlite3 *db = node->store->db;
	sqlite3_stmt *st = NULL;
	if (store_exec(node->store, "BEGIN IMMEDIATE;") != 0)
		return -EIO; /* logged by store_exec */
	if (sqlite3_prepare_v2(db,
			       "INSERT INTO peers(swarm_id, host, port, source, last_seen, banned)"
			       " VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT(swarm_id, host, port)"
			       " DO UPDATE SET last_seen = excluded.last_seen,"
			       " banned = max(banned, excluded.banned);",
			       -1, &st, NULL) != SQLITE_OK)
		goto fail;
	for (size_t i = 0; i < n; i++) {
		sqlite3_reset(st);
		sqlite3_bind_int64(st, 1, sw->id);
		sqlite3_bind_text(st, 2, rows[i].host, -1, SQLITE_STATIC);
		sqlite3_bind_int(st, 3, rows[i].port);
		sqlite3_bind_text(st, 4, rows[i].source, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 5, (sqlite3_int64)time(NULL));
		sqlite3_bind_int(st, 6, rows[i].banned);
		if (sqlite3_step(st) != SQLITE_DONE)
			goto fail;
	}
	sqlite3_finalize(st);
	st = NULL;
	if (store_exec(node->store, "COMMIT;") == 0)
		return 0;
fail:
	log_warn("swarm %" PRId64 ": cannot remember %zu peer addresses: %s", sw->id, n,
		 sqlite3_errmsg(db));
	sqlite3_finalize(st);
	store_rollback(node->store);
	return -EIO;
}

void swarm_db_load_peers(struct node *node, const struct swarm *sw,
			 void (*fn)(void *ctx, const char *host, uint16_t port, const char *source,
				    bool banned),
			 void *ctx)
{
	sqlite3_stmt *st = store_stmt(node->store,
				      "SELECT host, port, source, banned FROM peers WHERE swarm_id = ?1"
				      " ORDER BY last_seen DESC LIMIT 500;");
	if (st) {
		sqlite3_bind_int64(st, 1, sw->id);
		while (sqlite3_step(st) == SQLITE_ROW)
			fn(ctx, (const char *)sqlite3_column_text(st, 0),
			   (uint16_t)sqlite3_column_int(st, 1), (const char *)sqlite3_column_text(st, 2),
			   sqlite3_column_int(st, 3) != 0);
	}
	store_stmt_done(st);
}

int swarm_db_save_limits(struct node *node, const struct swarm *sw)
{
	if (!sw->in_db)
		return 0;
	sqlite3_stmt *st = NULL;
	int rc = -EIO;
	if (sqlite3_prepare_v2(node->store->db,
			       "UPDATE swarms SET upload_limit = ?2, download_limit = ?3 WHERE id = ?1;",
			       -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_int64(st, 1, sw->id);
		sqlite3_bind_int64(st, 2, (sqlite3_int64)sw->upload_limit);
		sqlite3_bind_int64(st, 3, (sqlite3_int64)sw->download_limit);
		rc = bind_exec(st);
	}
	sqlite3_finalize(st);
	return rc;
}
