/* api_json.c: the JSON the control API answers with, built from the
 * swarm records and the engine's figures (docs/api.md names every field).
 * JSON lives here, in the API layer: the engine and the records only give
 * their state as C structs. */
#include "config.h"

#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "common/buf.h"
#include "common/util.h"
#include "node/api_server.h"
#include "node/engine.h"
#include "node/node.h"
#include "node/settings.h"
#include "node/swarm.h"
#include "node/swarms.h"
#include "node/trackers.h"
#include "transfer/crypt.h"
#include "transfer/magnet.h"
#include "transfer/metainfo.h"

/* The "transfer" object of a swarm: rates, peer counts. */
static json_t *transfer_json(const struct swarm *sw)
{
	struct engine_swarm_stats st;
	swarms_swarm_stats(sw, &st);
	if (!st.active)
		return json_pack("{s:i,s:f,s:f,s:I,s:I}", "peers", 0, "download_rate", 0.0,
				 "upload_rate", 0.0, "downloaded", (json_int_t)0, "uploaded",
				 (json_int_t)0);
	json_t *o = json_pack("{s:i,s:f,s:f,s:I,s:I,s:I,s:i}", "peers", (int)st.peers,
			      "download_rate", st.down_rate, "upload_rate", st.up_rate,
			      "downloaded", (json_int_t)st.downloaded, "uploaded",
			      (json_int_t)st.uploaded, "hash_failures", (json_int_t)st.hash_failures,
			      "known_peers", (int)st.known_peers);
	if (st.disk_error)
		json_object_set_new(o, "disk_error", json_string(sw->error));
	if (st.waiting_layers)
		json_object_set_new(o, "waiting_for", json_string("piece layers"));
	return o;
}

/* A JSON string even for text that is not valid UTF-8 (paths can be). */
static json_t *json_text(const char *s)
{
	json_t *j = json_string(s);
	if (j)
		return j;
	char shown[4 * PATH_MAX];
	utf8_escape_invalid(s, shown, sizeof shown);
	return json_string(shown);
}

static json_t *selection_json(const struct swarm *sw);

json_t *swarm_to_json(struct node *node, const struct swarm *sw, bool full)
{
	json_t *o = json_object();
	json_object_set_new(o, "id", json_integer(sw->id));
	json_object_set_new(o, "name", json_text(sw->name));
	json_object_set_new(o, "role", json_string(swarm_role_name(sw->role)));
	json_object_set_new(o, "state", json_string(swarm_state_name(sw->state)));
	json_object_set_new(o, "error", sw->state == SWARM_ERROR ? json_text(sw->error) : json_null());
	json_object_set_new(o, "root", json_text(sw->root));
	json_object_set_new(o, "trackers", json_integer((json_int_t)trackers_swarm_count(sw)));
	if (sw->has_info_hash) {
		/* The key: 64 hex digits of the v2 info-hash, or 40 of the v1
		 * one for a swarm known only by that. */
		char hex[65];
		hex_encode(sw->info_hash, sw->key_v1 ? 20 : 32, hex);
		json_object_set_new(o, "info_hash", json_string(hex));
		struct buf magnet;
		buf_init(&magnet, MAGNET_MAX_LEN);
		/* Every hash of the format: v1 clients read btih. */
		static struct magnet ml; /* the loop's only: too big for the stack */
		memset(&ml, 0, sizeof ml);
		ml.has_v2 = !sw->key_v1;
		memcpy(ml.info_hash, sw->info_hash, 32);
		ml.has_v1 = sw->has_info_hash_v1;
		memcpy(ml.info_hash_v1, sw->info_hash_v1, 20);
		ml.has_name = snprintf(ml.name, sizeof ml.name, "%s", sw->name) < (int)sizeof ml.name;
		/* The trackers as tr=, so a link alone finds them. */
		static struct tracker_list tl;
		trackers_swarm_list(sw, &tl);
		for (size_t i = 0; i < tl.count && ml.tracker_count < MAGNET_MAX_TRACKERS; i++)
			snprintf(ml.trackers[ml.tracker_count++], sizeof ml.trackers[0], "%s",
				 tl.e[i].url);
		if (magnet_format(&ml, &magnet) == 0 && buf_append_byte(&magnet, 0) == 0)
			json_object_set_new(o, "magnet", json_string((const char *)magnet.data));
		buf_destroy(&magnet);
		if (sw->has_info_hash_v1) {
			char v1[41];
			hex_encode(sw->info_hash_v1, 20, v1);
			json_object_set_new(o, "info_hash_v1", json_string(v1));
		} else {
			json_object_set_new(o, "info_hash_v1", json_null());
		}
	} else {
		json_object_set_new(o, "info_hash", json_null());
		json_object_set_new(o, "info_hash_v1", json_null());
		json_object_set_new(o, "magnet", json_null());
	}
	const struct metainfo *mi = sw->meta;
	json_object_set_new(o, "format",
			    mi ? json_string(metainfo_format_name(metainfo_format_of(mi))) : json_null());
	if (mi) {
		char path[PATH_MAX + 100];
		swarm_torrent_path(node, sw, path, sizeof path);
		/* Named only once written (a magnet join writes it when the
		 * piece layers are complete). */
		json_object_set_new(o, "torrent",
				    access(path, R_OK) == 0 ? json_text(path) : json_null());
		json_object_set_new(o, "total_size", json_integer((json_int_t)mi->total_size));
		json_object_set_new(o, "piece_length", json_integer((json_int_t)mi->piece_length));
		json_object_set_new(o, "num_pieces", json_integer(mi->total_pieces));
		json_object_set_new(o, "num_files", json_integer((json_int_t)mi->file_count));
		json_object_set_new(o, "pieces_have", json_integer(sw->have_count));
		uint64_t have = swarm_bytes_have(sw);
		json_object_set_new(o, "bytes_have", json_integer((json_int_t)have));
		json_object_set_new(o, "progress", json_real(mi->total_size ? (double)have /
											(double)mi->total_size
									    : 1.0));
	} else {
		json_object_set_new(o, "torrent", json_null());
		json_object_set_new(o, "total_size", json_integer((json_int_t)sw->work_total));
		json_object_set_new(o, "progress", json_real(0));
	}
	if (sw->state == SWARM_HASHING || sw->state == SWARM_CHECKING) {
		uint64_t done = atomic_load(&sw->work_done);
		uint64_t ms = now_ms() - sw->work_started_ms;
		json_object_set_new(
			o, "work",
			json_pack("{s:s,s:I,s:I,s:f}", "kind",
				  sw->state == SWARM_HASHING ? "hashing" : "checking", "done",
				  (json_int_t)done, "total", (json_int_t)sw->work_total, "rate",
				  ms ? (double)done * 1000.0 / (double)ms : 0.0));
	}
	json_object_set_new(o, "last_check",
			    sw->last_check.seq == 0
				    ? json_null()
				    : json_pack("{s:i,s:s,s:i,s:i,s:i,s:I}", "seq", (int)sw->last_check.seq,
						"result", sw->last_check.result, "pieces_verified",
						(int)sw->last_check.pieces_verified, "pieces_dropped",
						(int)sw->last_check.pieces_dropped, "files_hashed",
						(int)sw->last_check.files_hashed, "finished_at",
						(json_int_t)sw->last_check.finished_at));
	json_t *t = transfer_json(sw);
	json_object_set_new(t, "upload_limit", json_integer((json_int_t)sw->upload_limit));
	json_object_set_new(t, "download_limit", json_integer((json_int_t)sw->download_limit));
	json_object_set_new(o, "transfer", t);
	json_object_set_new(o, "sequential", json_boolean(sw->sequential));
	json_object_set_new(o, "selection", selection_json(sw));
	if (full && mi) {
		json_t *files = json_array();
		for (size_t f = 0; f < mi->file_count; f++) {
			const struct metainfo_file *file = &mi->files[f];
			uint32_t have = 0;
			for (uint32_t i = 0; i < file->piece_count; i++)
				have += swarm_have_test(sw, file->first_piece + i);
			json_array_append_new(
				files, json_pack("{s:s,s:I,s:i,s:i,s:s}", "path", file->path, "size",
						 (json_int_t)file->size, "pieces", (int)file->piece_count,
						 "pieces_have", (int)have, "priority",
						 swarm_prio_name(swarm_file_prio(sw, f))));
		}
		json_object_set_new(o, "files", files);
	}
	return o;
}

/* Bytes of file f in verified pieces (a v1 piece may hold several files:
 * only the file's own bytes of it count). */
static uint64_t file_bytes_have(const struct swarm *sw, size_t f)
{
	const struct metainfo *mi = sw->meta;
	const struct metainfo_file *mf = &mi->files[f];
	uint64_t start = mf->offset, end = mf->offset + mf->size, n = 0;
	for (uint32_t i = 0; i < mf->piece_count; i++) {
		uint32_t p = mf->first_piece + i;
		if (!swarm_have_test(sw, p))
			continue;
		uint64_t ps = (uint64_t)p * mi->piece_length, pe = ps + mi->piece_length;
		n += (pe < end ? pe : end) - (ps > start ? ps : start);
	}
	return n;
}

/* null when every file is wanted, else what is chosen and how far along. */
static json_t *selection_json(const struct swarm *sw)
{
	const struct metainfo *mi = sw->meta;
	if (!mi || !sw->wanted)
		return json_null();
	unsigned wanted = 0, skipped = 0;
	uint64_t bytes = 0, have = 0;
	for (size_t f = 0; f < mi->file_count; f++) {
		if (swarm_file_prio(sw, f) == SWARM_PRIO_SKIP) {
			skipped++;
			continue;
		}
		wanted++;
		bytes += mi->files[f].size;
		have += file_bytes_have(sw, f);
	}
	return json_pack("{s:i,s:i,s:I,s:I,s:b}", "files_wanted", (int)wanted, "files_skipped",
			 (int)skipped, "bytes_wanted", (json_int_t)bytes, "bytes_have_wanted",
			 (json_int_t)have, "done", swarm_done(sw));
}

json_t *swarm_files_json(const struct swarm *sw)
{
	const struct metainfo *mi = sw->meta;
	json_t *files = json_array();
	for (size_t f = 0; mi && f < mi->file_count; f++) {
		const struct metainfo_file *mf = &mi->files[f];
		uint32_t have = 0;
		for (uint32_t i = 0; i < mf->piece_count; i++)
			have += swarm_have_test(sw, mf->first_piece + i);
		uint64_t bytes = file_bytes_have(sw, f);
		/* On disk: a skipped file never made is not; the rest are (made
		 * at the start, or the user's). */
		bool on_disk = !(sw->role == SWARM_ROLE_JOIN &&
				 (!sw->file_access || sw->file_access[f] == STORAGE_SKIP ||
				  sw->file_access[f] == STORAGE_CREATE ||
				  sw->file_access[f] == STORAGE_REPLACE));
		json_array_append_new(
			files, json_pack("{s:I,s:s,s:I,s:s,s:i,s:i,s:I,s:f,s:b}", "index", (json_int_t)f,
					 "path", mf->path, "size", (json_int_t)mf->size, "priority",
					 swarm_prio_name(swarm_file_prio(sw, f)), "pieces",
					 (int)mf->piece_count, "pieces_have", (int)have, "bytes_have",
					 (json_int_t)bytes, "progress",
					 mf->size ? (double)bytes / (double)mf->size : 1.0, "on_disk",
					 on_disk));
	}
	json_t *o = json_pack("{s:I,s:b,s:b,s:o}", "swarm", (json_int_t)sw->id, "metadata",
			      mi != NULL, "sequential", sw->sequential, "files", files);
	if (!mi) {
		json_t *only = json_array(), *skip = json_array();
		char pat[1024];
		for (const char *line = sw->select_rules; line && *line;) {
			const char *end = strchr(line, '\n');
			size_t len = end ? (size_t)(end - line) : strlen(line);
			if (len >= 2 && len - 1 < sizeof pat) {
				memcpy(pat, line + 1, len - 1);
				pat[len - 1] = '\0';
				json_array_append_new(line[0] == '+' ? only : skip, json_string(pat));
			}
			line = end ? end + 1 : NULL;
		}
		json_object_set_new(o, "rules", json_pack("{s:o,s:o}", "only", only, "skip", skip));
	}
	return o;
}

/* "swarms": every state's count (by_state), and the older summary keys
 * that lump states together, kept for clients that read them.  O(1) in
 * the number of swarms: node/swarm.c keeps the counts as states change. */
json_t *api_status_swarms_json(struct node *node)
{
	uint32_t n[SWARM_STATE_COUNT];
	uint32_t total = swarm_count_states(node, n);
	json_t *by_state = json_object();
	for (int s = 0; s < SWARM_STATE_COUNT; s++)
		json_object_set_new(by_state, swarm_state_name((enum swarm_state)s),
				    json_integer((json_int_t)n[s]));
	return json_pack("{s:I,s:I,s:I,s:I,s:I,s:o}", "total", (json_int_t)total, "seeding",
			 (json_int_t)n[SWARM_SEEDING], "downloading",
			 (json_int_t)n[SWARM_DOWNLOADING] + n[SWARM_METADATA], "hashing",
			 (json_int_t)n[SWARM_HASHING] + n[SWARM_CHECKING], "error",
			 (json_int_t)n[SWARM_ERROR], "by_state", by_state);
}

void swarm_json_print(const struct swarm *sw, struct swarm_print *out)
{
	memset(out, 0, sizeof *out);
	out->id = sw->id;
	out->state = (int32_t)sw->state;
	out->role = (int32_t)sw->role;
	out->has_info_hash = sw->has_info_hash;
	out->key_v1 = sw->key_v1;
	out->has_info_hash_v1 = sw->has_info_hash_v1;
	memcpy(out->info_hash, sw->info_hash, sizeof out->info_hash);
	out->has_meta = sw->meta != NULL;
	out->total_pieces = sw->meta ? sw->meta->total_pieces : 0;
	out->have_count = sw->have_count;
	out->wanted_count = sw->wanted ? sw->wanted_count : UINT32_MAX;
	out->wanted_have = sw->wanted_have;
	out->sequential = sw->sequential;
	out->work_done = atomic_load(&sw->work_done);
	out->work_total = sw->work_total;
	out->last_check_seq = sw->last_check.seq;
	out->upload_limit = sw->upload_limit;
	out->download_limit = sw->download_limit;
	out->trackers = trackers_swarm_count(sw);
	struct engine_swarm_stats st;
	swarms_swarm_stats(sw, &st);
	out->active = st.active;
	if (st.active) {
		out->peers = st.peers;
		out->known_peers = st.known_peers;
		out->down_rate = st.down_rate;
		out->up_rate = st.up_rate;
		out->downloaded = st.downloaded;
		out->uploaded = st.uploaded;
		out->hash_failures = st.hash_failures;
		out->disk_error = st.disk_error;
		out->waiting_layers = st.waiting_layers;
	}
	if (sw->state == SWARM_ERROR || out->disk_error) {
		uint64_t h = 1469598103934665603ull; /* FNV-1a */
		for (const char *c = sw->error; *c; c++)
			h = (h ^ (uint8_t)*c) * 1099511628211ull;
		out->error_hash = h;
	}
}

static void add_peer_json(void *ctx, const struct engine_peer_info *p)
{
	json_t *o = json_pack("{s:s,s:s,s:b,s:s,s:s,s:f,s:f,s:f,s:I,s:I,s:b,s:b,s:b,s:b,s:i}",
			      "address", p->address, "direction", p->outgoing ? "out" : "in",
			      "encrypted", p->encrypted, "client", p->client, "state",
			      p->active ? "active" : "handshake", "progress", p->progress,
			      "download_rate", p->down_rate, "upload_rate", p->up_rate, "downloaded",
			      (json_int_t)p->downloaded, "uploaded", (json_int_t)p->uploaded,
			      "am_choking", p->am_choking, "am_interested", p->am_interested,
			      "peer_choking", p->peer_choking, "peer_interested", p->peer_interested,
			      "requests", (int)p->requests);
	json_object_set_new(o, "cipher", p->cipher ? json_string(p->cipher) : json_null());
	/* Its share of the swarm's own limits, bytes/s (0: no such limit). */
	json_object_set_new(o, "upload_share", json_integer((json_int_t)p->upload_share));
	json_object_set_new(o, "download_share", json_integer((json_int_t)p->download_share));
	json_array_append_new(ctx, o);
}

json_t *swarm_peers_json(const struct swarm *sw)
{
	json_t *list = json_array();
	swarms_each_peer(sw, add_peer_json, list);
	return list;
}

json_t *node_transfer_json(struct node *node)
{
	struct engine_node_stats st;
	swarms_node_stats(node, &st);
	json_t *o = json_pack("{s:b,s:i,s:b,s:s,s:I,s:I,s:i,s:f,s:f,s:b}", "running", 1, "peer_port",
			      (int)node->cfg.peer_port, "ipv6", st.ipv6, "encryption",
			      config_encryption_name(node->cfg.encryption), "upload_limit",
			      (json_int_t)node->cfg.upload_limit, "download_limit",
			      (json_int_t)node->cfg.download_limit, "peers", (int)st.peers,
			      "download_rate", st.down_rate, "upload_rate", st.up_rate, "no_upload",
			      node->cfg.no_upload);
	if (o) {
		json_object_set_new(o, "cipher", json_string(config_cipher_name(node->cfg.cipher)));
		json_object_set_new(o, "aes256gcm_available", json_boolean(crypt_aes256gcm_available()));
		json_t *ct = json_pack("{s:i,s:I,s:I}", "threads", st.crypto_threads, "sealed_bytes",
				       (json_int_t)st.sealed_off_loop, "opened_bytes",
				       (json_int_t)st.opened_off_loop);
		if (ct)
			json_object_set_new(o, "crypto_threads", ct);
		json_object_set_new(o, "peer_db_commits", json_integer((json_int_t)st.peer_db_commits));
		json_object_set_new(o, "serve_queued_bytes", json_integer((json_int_t)st.serve_queued));
		json_object_set_new(o, "serve_budget_bytes", json_integer((json_int_t)st.serve_budget));
		json_object_set_new(o, "write_queued_bytes", json_integer((json_int_t)st.write_queued));
		json_object_set_new(o, "write_budget_bytes", json_integer((json_int_t)st.write_budget));
	}
	return o;
}

/* The swarm a route's {id} names (shared by node/api_swarms.c and
 * node/api_trackers.c, so neither calls the other for it). */
struct swarm *api_swarm_or_404(struct api_req *r)
{
	struct swarm *sw = swarm_find(r->node, r->param);
	if (!sw || sw->remove_pending)
		api_reply_error(r, 404, "no_such_swarm",
				"no swarm '%s' (use its id or at least 8 hex digits of its info-hash)",
				r->param);
	return sw && !sw->remove_pending ? sw : NULL;
}
