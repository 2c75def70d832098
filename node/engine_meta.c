/* engine_meta.c: metadata exchange (BEP 9) and piece-layer fetching and serving (BEP 52),
 * and setting a swarm up once its metadata is known (xfer_setup_meta). */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <limits.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <sodium.h>
#include "common/addr.h"
#include "common/bytes.h"
#include "common/buf.h"
#include "common/log.h"
#include "common/sha256.h"
#include "common/util.h"
#include "node/engine_state.h"
#include "node/joincheck.h"
#include "node/node.h"
#include "node/ratelimit.h"
#include "transfer/ratesplit.h"
#include "node/swarm.h"
#include "node/workers.h"
#include "transfer/merkle.h"
#include "transfer/metainfo.h"
#include "transfer/layerfetch.h"
#include "transfer/mdfetch.h"
#include "transfer/picker.h"
#include "transfer/storage.h"
#include "transfer/transfer.h"
#include "node/engine-parts.h"

static const uint8_t *layer_tree(struct xfer *xf, size_t fidx, uint64_t width);
static int install_meta(struct xfer *xf);

/* --------------------------------------------------- BEP 9 metadata */

void request_metadata(struct peer *p)
{
	struct xfer *xf = p->xf;
	if (!xf || xf->sw->meta || !xf->mdf || !p->ext.ut_metadata || !p->md_announced ||
	    p->state != PEER_ACTIVE)
		return;
	uint32_t pieces[MDFETCH_MAX_PIECES];
	size_t n = mdfetch_pick(xf->mdf, p->uid, p->md_announced, pieces, MDFETCH_MAX_PIECES);
	struct buf b;
	buf_init(&b, 256);
	for (size_t i = 0; i < n; i++) {
		struct wire_metadata_msg m = { .type = WIRE_MD_REQUEST, .piece = pieces[i] };
		buf_reset(&b);
		if (wire_metadata_encode(&b, p->ext.ut_metadata, &m) == 0) {
			(void)peer_send(p, b.data, b.len, NULL, 0);
			p->md_requested++;
		}
	}
	buf_destroy(&b);
}

/* Ask every peer for what the fetched metadata size still lacks. */
void request_metadata_all(struct xfer *xf)
{
	xf->md_kick = false;
	for (struct peer *q = xf->peers; q; q = q->next)
		request_metadata(q);
}

/* A peer's extension handshake announced a metadata size: count it (once). */
int metadata_announced(struct peer *p)
{
	struct xfer *xf = p->xf;
	if (xf->sw->meta || p->md_announced || !p->ext.ut_metadata || p->ext.metadata_size == 0)
		return 0;
	if (!xf->mdf && mdfetch_new(&xf->mdf) != 0)
		return -ENOMEM;
	uint32_t before = mdfetch_size(xf->mdf);
	if (mdfetch_announce(xf->mdf, p->ext.metadata_size) == 0)
		p->md_announced = p->ext.metadata_size;
	if (mdfetch_size(xf->mdf) != before)
		xf->md_kick = true;
	return 0;
}

int on_metadata_msg(struct peer *p, const uint8_t *payload, size_t len)
{
	struct xfer *xf = p->xf;
	struct swarm *sw = xf->sw;
	struct wire_metadata_msg m;
	if (wire_metadata_parse(&m, payload, payload + len) != 0)
		return -EBADMSG; /* a malformed or absurd message: drop the peer */
	if (m.type == WIRE_MD_REQUEST) {
		struct wire_metadata_msg reply = { .piece = m.piece };
		const struct metainfo *mi = sw->meta;
		uint32_t pieces = mi ? (uint32_t)((mi->info_len + WIRE_METADATA_PIECE - 1) / WIRE_METADATA_PIECE) : 0;
		if (!mi || !p->ext.ut_metadata || m.piece >= pieces) {
			reply.type = WIRE_MD_REJECT;
		} else {
			reply.type = WIRE_MD_DATA;
			reply.total_size = (uint32_t)mi->info_len;
			reply.data = mi->info + (size_t)m.piece * WIRE_METADATA_PIECE;
			reply.len = mi->info_len - (size_t)m.piece * WIRE_METADATA_PIECE;
			if (reply.len > WIRE_METADATA_PIECE)
				reply.len = WIRE_METADATA_PIECE;
		}
		if (!p->ext.ut_metadata)
			return 0;
		struct buf b;
		buf_init(&b, WIRE_METADATA_PIECE + 256);
		if (wire_metadata_encode(&b, p->ext.ut_metadata, &reply) == 0)
			(void)peer_send(p, b.data, b.len, NULL, 0);
		buf_destroy(&b);
		return 0;
	}
	if (sw->meta || !xf->mdf)
		return 0;
	if (m.type == WIRE_MD_REJECT) {
		(void)mdfetch_reject(xf->mdf, p->uid, m.piece);
		return 0;
	}
	/* Only an answer to what we asked of this peer, of the size fetched. */
	int rc = mdfetch_data(xf->mdf, p->uid, m.piece, m.total_size, m.data, m.len);
	if (rc == -ENOMEM)
		return rc;
	if (rc != 1)
		return 0;
	/* Complete: it must hash to the link's info-hash. */
	size_t md_len = 0;
	const uint8_t *md = mdfetch_buffer(xf->mdf, &md_len);
	struct metainfo *mi = calloc(1, sizeof *mi);
	rc = mi ? metainfo_parse_info(mi, md, md + md_len) : -ENOMEM;
	if (rc == 0)
		rc = swarm_meta_check(sw, mi);
	if (rc != 0) {
		log_warn("swarm %" PRId64 ": metadata of %zu bytes from peers is unusable (%s); "
			 "fetching again", sw->id, md_len, metainfo_strerror(rc));
		if (mi) {
			metainfo_destroy(mi);
			free(mi);
		}
		/* Blame who sent it: a sole sender is banned at once.  The size
		 * counts a setback, so another announced size is tried next. */
		uint32_t blame[MDFETCH_MAX_PIECES];
		int nb = mdfetch_failed(xf->mdf, blame, MDFETCH_MAX_PIECES);
		for (int i = 0; i < nb && i < (int)MDFETCH_MAX_PIECES; i++) {
			struct peer *q = find_peer(xf, blame[i]);
			if (q)
				strike(q, nb == 1 ? PEER_BAN_STRIKES : 1, "metadata");
		}
		request_metadata_all(xf);
		return p->state == PEER_DEAD ? -ECONNRESET : 0;
	}
	sw->meta = mi;
	mdfetch_free(xf->mdf);
	xf->mdf = NULL;
	rc = swarm_learn_v1(xf->node, sw);
	if (rc == 0)
		rc = swarm_take_v2_key(xf->node, sw);
	if (rc == -EEXIST) {
		/* A v1 link of a hybrid already joined by its v2 link. */
		struct swarm *twin = swarm_find_by_hash(xf->node, mi->info_hash);
		snprintf(sw->error, sizeof sw->error,
			 "this is the v1 link of a hybrid torrent already joined as swarm %" PRId64
			 "; remove one of them",
			 twin ? twin->id : (int64_t)0);
		swarm_fail(xf);
		return 0;
	} else if (rc != 0) {
		snprintf(sw->error, sizeof sw->error, "out of memory");
		swarm_fail(xf);
		return 0;
	}
	(void)install_meta(xf); /* failures put the swarm in error and log why */
	return 0;
}

/* --------------------------------------------- BEP 52 piece layers */

/* Ask one peer for every piece layer we lack: one request per file (or per
 * ENGINE_HASH_REQ_MAX hashes).  transfer/layerfetch accepts only answers
 * from the peer asked, and each whole layer is checked against its pieces
 * root when installed, so a lying peer's hashes are discarded and only
 * that peer is blamed.  The peer asked keeps the layers while it answers;
 * after 10 s without an answer (or on a reject, or when it leaves) another
 * peer is asked if there is one, so one that never answers cannot stall the
 * join, and one that answers slowly is not dropped halfway. */
void request_layers(struct xfer *xf)
{
	const struct metainfo *mi = xf->sw->meta;
	uint64_t now = now_ms();
	if (!mi || !xf->layers_pending || now - xf->layers_asked_ms < ENGINE_LAYERS_RETRY_MS)
		return;
	xf->layers_asked_ms = now;
	if (!xf->lf) {
		uint32_t *counts = calloc(mi->file_count ? mi->file_count : 1, sizeof *counts);
		if (!counts)
			return;
		for (size_t f = 0; f < mi->file_count; f++) {
			const struct metainfo_file *file = &mi->files[f];
			counts[f] = file->has_root && !file->layer && file->piece_count > 1 &&
						    file->piece_count <= LAYERFETCH_MAX_PIECES
					    ? (uint32_t)file->piece_count
					    : 0;
		}
		int rc = layerfetch_new(counts, mi->file_count, ENGINE_HASH_REQ_MAX, &xf->lf);
		free(counts);
		if (rc != 0)
			return;
	}
	/* A random connected peer, other than the last one asked if possible. */
	size_t eligible = 0, others = 0;
	for (struct peer *p = xf->peers; p; p = p->next)
		if (p->state == PEER_ACTIVE) {
			eligible++;
			others += p->uid != xf->layers_peer;
		}
	if (eligible == 0)
		return;
	bool skip_last = others > 0;
	uint64_t pick = engine_rand(xf->eng) % (skip_last ? others : eligible);
	struct peer *target = NULL;
	for (struct peer *p = xf->peers; p && !target; p = p->next) {
		if (p->state != PEER_ACTIVE || (skip_last && p->uid == xf->layers_peer))
			continue;
		if (pick-- == 0)
			target = p;
	}
	if (!target)
		return;
	size_t n = layerfetch_ask(xf->lf, target->uid, NULL, 0); /* how many */
	struct layerfetch_req *reqs = malloc((n ? n : 1) * sizeof *reqs);
	if (!reqs)
		return;
	n = layerfetch_ask(xf->lf, target->uid, reqs, n);
	xf->layers_peer = target->uid;
	unsigned base = log2_floor(mi->piece_length / XFER_BLOCK_SIZE);
	for (size_t i = 0; i < n; i++) {
		struct wire_hash_req r;
		memcpy(r.pieces_root, mi->files[reqs[i].file].root, 32);
		r.base_layer = base;
		r.index = reqs[i].index;
		r.length = reqs[i].length;
		r.proof_layers = 0;
		uint8_t m[WIRE_HASH_MSG_LEN];
		wire_put_hash_msg(m, WIRE_HASH_REQUEST, &r, 0);
		/* A request is exactly the header; no hashes follow. */
		(void)peer_send(target, m, WIRE_HASH_MSG_LEN, NULL, 0);
	}
	free(reqs);
}

/* Gather a chunk of a file's piece layer; install the layer when whole. */
void on_hashes(struct peer *p, const struct wire_msg *m)
{
	struct xfer *xf = p->xf;
	struct metainfo *mi = xf->sw->meta;
	/* With 16 KiB pieces the piece layer is base layer 0 itself: those
	 * are piece-layer answers, below. */
	if (mi && m->u.hashes.req.base_layer == 0 && mi->piece_length > XFER_BLOCK_SIZE) {
		/* Block hashes we asked for a reader: hashes that do not make the
		 * piece's layer hash are a lie. */
		int rc = proof_hashes(xf, p->uid, &m->u.hashes.req, m->u.hashes.hashes,
				      m->u.hashes.count);
		log_debug("peer %s: block hashes at %u: %s", p->name, m->u.hashes.req.index,
			  rc == 0 ? "verified" : strerror(-rc));
		if (rc == -EBADMSG)
			strike(p, 1, "block hashes");
		return;
	}
	if (!mi || !xf->layers_pending || !xf->lf)
		return;
	const struct wire_hash_req *r = &m->u.hashes.req;
	size_t f;
	for (f = 0; f < mi->file_count; f++)
		if (mi->files[f].has_root && !mi->files[f].layer && mi->files[f].piece_count > 1 &&
		    memcmp(mi->files[f].root, r->pieces_root, 32) == 0)
			break;
	if (f == mi->file_count || r->base_layer != log2_floor(mi->piece_length / XFER_BLOCK_SIZE))
		return; /* not an answer to anything we asked */
	/* Only an answer to a request of ours to this very peer is kept. */
	int rc = layerfetch_on_hashes(xf->lf, p->uid, (uint32_t)f, r->index, r->length,
				      m->u.hashes.hashes, m->u.hashes.count);
	/* Progress: the peer asked keeps the layers while it answers.  Asking
	 * another drops what this one sent, so switching on a fixed clock would
	 * never finish a layer that takes longer than the clock to arrive. */
	if (rc >= 0)
		xf->layers_asked_ms = now_ms();
	if (rc != 1)
		return;
	size_t len = 0;
	const uint8_t *layer = layerfetch_layer(xf->lf, (uint32_t)f, &len);
	if (metainfo_set_layer(mi, f, layer, len) != 0) {
		uint32_t sender = p->uid;
		(void)layerfetch_failed(xf->lf, (uint32_t)f, &sender);
		log_warn("swarm %" PRId64 ": peer %s sent piece hashes that do not verify", xf->sw->id,
			 p->name);
		xf->layers_asked_ms = 0;
		struct peer *q = find_peer(xf, sender); /* the one peer asked: p */
		if (q)
			strike(q, PEER_BAN_STRIKES, "piece hashes");
		return;
	}
	(void)layerfetch_done(xf->lf, (uint32_t)f);
	if (!mi->all_layers)
		return;
	free_layerfetch(xf);
	xf->layers_pending = false;
	if (store_meta(xf) != 0)
		log_error("swarm %" PRId64 ": cannot record piece layers", xf->sw->id);
	swarm_write_torrent(xf->node, xf->sw);
	log_info("swarm %" PRId64 ": piece layers complete; downloading", xf->sw->id);
	for (struct peer *q = xf->peers; q; q = q->next) {
		update_interest(q);
		request_more(q);
	}
}

/* The merkle tree above a file's piece layer, in heap order (node i has
 * children 2i and 2i+1; the width padded leaves start at index width),
 * built on the first hash request for the file and kept: rebuilding it for
 * every request let a peer buy O(pieces) hashing with 49 bytes. */
static const uint8_t *layer_tree(struct xfer *xf, size_t fidx, uint64_t width)
{
	const struct metainfo *mi = xf->sw->meta;
	const struct metainfo_file *file = &mi->files[fidx];
	if (!xf->hash_trees) {
		xf->hash_trees = calloc(mi->file_count, sizeof *xf->hash_trees);
		if (!xf->hash_trees)
			return NULL;
	}
	if (xf->hash_trees[fidx])
		return xf->hash_trees[fidx];
	uint8_t *tree = malloc(width * 2 * 32);
	struct sha256_ctx *ctx = sha256_new();
	uint8_t pad[32];
	if (!tree || !ctx || merkle_zero_root(ctx, mi->piece_length / XFER_BLOCK_SIZE, pad) != 0) {
		free(tree);
		sha256_free(ctx);
		return NULL;
	}
	for (uint64_t i = 0; i < width; i++)
		memcpy(tree + (width + i) * 32, i < file->piece_count ? file->layer + i * 32 : pad, 32);
	for (uint64_t i = width - 1; i >= 1; i--)
		sha256_once(ctx, tree + 2 * i * 32, 64, tree + i * 32);
	sha256_free(ctx);
	xf->hash_trees[fidx] = tree;
	return tree;
}

/* Answer a hash request from our verified layers (with proof hashes). */
void on_hash_request(struct peer *p, const struct wire_hash_req *r)
{
	struct xfer *xf = p->xf;
	const struct metainfo *mi = xf->sw->meta;
	size_t fidx = 0;
	const struct metainfo_file *file = metainfo_file_by_root(mi, r->pieces_root, &fidx);
	/* The block hashes under one piece (a streaming reader's proofs):
	 * exactly one piece's subtree, no proof above it (the asker has the
	 * piece layer). */
	uint64_t bw = file ? merkle_piece_leaves(file->size, mi->piece_length) : 0;
	if (file && r->base_layer == 0 && bw >= 2 && r->length == bw && r->index % bw == 0 &&
	    r->index / bw < file->piece_count && r->proof_layers == 0) {
		serve_block_hashes(p, r, file->first_piece + (uint32_t)(r->index / bw), (size_t)bw);
		return;
	}
	uint64_t width = file ? pow2_ceil(file->piece_count) : 0;
	unsigned levels = log2_floor(width);
	bool ok = file && file->layer && file->piece_count >= 2 &&
		  r->base_layer == log2_floor(mi->piece_length / XFER_BLOCK_SIZE) && r->length >= 2 &&
		  r->length <= ENGINE_HASH_REQ_MAX && (r->length & (r->length - 1)) == 0 &&
		  r->index % r->length == 0 && (uint64_t)r->index + r->length <= width &&
		  r->proof_layers < levels;
	/* A peer that asks and never reads gets rejects, not our memory. */
	if (peer_outbuf_len(p) >= PEER_MAX_OUTBUF)
		ok = false;
	const uint8_t *tree = ok ? layer_tree(xf, fidx, width) : NULL;
	/* The proof (BEP 52, as libtorrent 2.0 counts it): proof_layers names
	 * the layers above the base layer to prove up to; the lowest
	 * log2(length) - 1 of them follow from the hashes themselves, and each
	 * layer from the chunk's own root up adds the sibling of the chunk's
	 * ancestor there, bottom up.  proof_layers < levels keeps every one of
	 * them below the root. */
	unsigned chunk_h = log2_floor(r->length);
	size_t n_uncles = ok && r->proof_layers + 1 > chunk_h ? r->proof_layers + 1 - chunk_h : 0;
	uint8_t *out = tree ? malloc(((size_t)r->length + n_uncles) * 32) : NULL;
	if (out) {
		memcpy(out, tree + (width + r->index) * 32, (size_t)r->length * 32);
		uint64_t node = (width + r->index) >> chunk_h; /* the chunk's root */
		for (size_t k = 0; k < n_uncles; k++, node /= 2)
			memcpy(out + ((size_t)r->length + k) * 32, tree + (node ^ 1) * 32, 32);
		uint8_t hdr[WIRE_HASH_MSG_LEN];
		size_t n = (size_t)r->length + n_uncles;
		wire_put_hash_msg(hdr, WIRE_HASHES, r, (uint32_t)n);
		(void)peer_send(p, hdr, sizeof hdr, out, n * 32);
	} else {
		uint8_t hdr[WIRE_HASH_MSG_LEN];
		wire_put_hash_msg(hdr, WIRE_HASH_REJECT, r, 0);
		(void)peer_send(p, hdr, sizeof hdr, NULL, 0);
	}
	free(out);
}

/* The metadata just became known (magnet join): record it, set up. */
static int install_meta(struct xfer *xf)
{
	struct swarm *sw = xf->sw;
	struct metainfo *mi = sw->meta;
	sw->have = calloc((mi->total_pieces + 7) / 8 + 1, 1);
	sw->mtimes_ns = calloc(mi->file_count ? mi->file_count : 1, sizeof *sw->mtimes_ns);
	if (!sw->have || !sw->mtimes_ns)
		return -ENOMEM;
	free(sw->name);
	sw->name = strdup(mi->name);
	if (!sw->name)
		return -ENOMEM;
	int rc = xfer_setup_meta(xf); /* records the metadata (check_fresh_join) */
	if (rc) {
		swarm_fail(xf);
		return rc;
	}
	swarm_write_torrent(xf->node, sw);
	swarm_set_state(xf->node, sw, SWARM_DOWNLOADING);
	log_info("swarm %" PRId64 ": metadata received: %s, %zu files, %" PRIu64 " bytes", sw->id,
		 mi->name, mi->file_count, mi->total_size);
	for (struct peer *p = xf->peers; p; p = p->next) {
		if (p->state != PEER_ACTIVE)
			continue;
		if (peer_meta_ready(p) != 0) {
			peer_close(p, "out of memory");
			continue;
		}
		update_interest(p);
	}
	xf->layers_asked_ms = 0;
	request_layers(xf);
	return 0;
}

/* ------------------------------------- setting up from the metadata */

/* Set up picker and storage once the metadata is known. */

/* A join whose metadata just arrived (magnet): decide what happens to
 * whatever is already at its files' names, and record that before any
 * file is created, so a crash in between never turns our own files into
 * "the user's".  Files in the way fail the swarm with a message naming
 * them (node/joincheck.h has the rules). */
int check_fresh_join(struct xfer *xf)
{
	struct swarm *sw = xf->sw;
	struct join_check *jc = NULL;
	/* The join's --only/--skip, known only now that the names are. */
	uint8_t *skip = NULL;
	if (sw->select_rules) {
		int left = swarm_apply_rules(sw, sw->select_rules);
		if (left == 0) {
			snprintf(sw->error, sizeof sw->error,
				 "the selection (--only/--skip) leaves no file to download");
			return -EDOM;
		}
		if (left < 0)
			return left;
		free(sw->select_rules);
		sw->select_rules = NULL;
	}
	if (sw->file_prio) {
		skip = malloc(sw->meta->file_count ? sw->meta->file_count : 1);
		if (!skip)
			return -ENOMEM;
		for (size_t f = 0; f < sw->meta->file_count; f++)
			skip[f] = sw->file_prio[f] == SWARM_PRIO_SKIP;
	}
	int rc = join_check_new(sw->root, sw->meta, sw->overwrite, skip, &jc);
	free(skip);
	if (rc) {
		snprintf(sw->error, sizeof sw->error, "cannot use %s: %s%s", sw->root, strerror(-rc),
			 rc == -ELOOP ? " (a symbolic link: shoal never downloads through one)" : "");
		return rc;
	}
	join_check_refuse_unhashed(jc);
	const char *conflict = join_check_conflict(jc);
	if (conflict) {
		snprintf(sw->error, sizeof sw->error, "%s", conflict);
		join_check_free(jc);
		return -EEXIST;
	}
	sw->file_access = join_check_access(jc);
	join_check_free(jc);
	if (!sw->file_access)
		return -ENOMEM;
	if (store_meta(xf) != 0 || swarm_db_save_selection(xf->node, sw) != 0) {
		snprintf(sw->error, sizeof sw->error, "cannot record the metadata");
		return -EIO;
	}
	return 0;
}

/* Does every adopted file still have all its pieces?  A piece of one that a
 * check dropped could only come back by writing into the user's file, so
 * no such piece is ever requested: the swarm stops in error instead
 * (-EACCES, sw->error set). */
int check_adopted(struct xfer *xf)
{
	struct swarm *sw = xf->sw;
	const struct metainfo *mi = sw->meta;
	if (sw->role != SWARM_ROLE_JOIN || !sw->file_access)
		return 0;
	for (size_t f = 0; f < mi->file_count; f++) {
		if (sw->file_access[f] != STORAGE_READ)
			continue;
		for (uint32_t i = 0; i < mi->files[f].piece_count; i++) {
			if (!swarm_have_test(sw, mi->files[f].first_piece + i)) {
				adopted_changed(xf, f, "");
				return -EACCES;
			}
		}
	}
	return 0;
}

int xfer_wake_disk(struct peer *p)
{
	struct xfer *xf = p->xf;
	if (!xf || !xf->sw->meta || xf->picker)
		return 0;
	int rc = xfer_setup_meta(xf);
	if (rc) {
		if (!xf->sw->error[0])
			snprintf(xf->sw->error, sizeof xf->sw->error, "cannot open its files: %s",
				 strerror(-rc));
		swarm_fail(xf); /* closes its peers, p too */
		return rc;
	}
	return p->state == PEER_ACTIVE ? peer_meta_ready(p) : 0;
}

/* Where a join's skipped files' bytes of shared v1 pieces go:
 * DATA_DIR/parts/<info-hash>.part (docs/transfer.md, "Choosing files"), never
 * the download directory. */
static int set_part_file(struct xfer *xf, struct storage *st)
{
	struct swarm *sw = xf->sw;
	char dir[4200], name[80];
	swarm_part_file(xf->node, sw, dir, sizeof dir, name, sizeof name);
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		int rc = -errno;
		snprintf(sw->error, sizeof sw->error, "cannot create %s: %s", dir, strerror(-rc));
		return rc;
	}
	int rc = storage_set_part_file(st, dir, name);
	if (rc)
		snprintf(sw->error, sizeof sw->error, "cannot use %s: %s", dir, strerror(-rc));
	return rc;
}

int xfer_setup_meta(struct xfer *xf)
{
	struct swarm *sw = xf->sw;
	const struct metainfo *mi = sw->meta;
	struct join_layout layout = { 0 };
	struct storage *st = NULL;
	int rc;
	if (sw->role == SWARM_ROLE_JOIN && (rc = mkdir_p(sw->root, 0755)) != 0) {
		snprintf(sw->error, sizeof sw->error, "cannot create %s: %s", sw->root, strerror(-rc));
		return rc;
	}
	if (sw->role == SWARM_ROLE_JOIN && !sw->file_access && (rc = check_fresh_join(xf)) != 0)
		return rc;
	if ((rc = join_layout_init(&layout, mi, sw->role == SWARM_ROLE_JOIN, sw->file_access)))
		return rc;
	rc = join_layout_storage(&layout, sw->root, STORAGE_MAX_OPEN_DEFAULT, &st);
	if (rc) {
		snprintf(sw->error, sizeof sw->error, "cannot use %s: %s%s", sw->root, strerror(-rc),
			 rc == -ELOOP ? " (a symbolic link: shoal never downloads through one)" : "");
		goto done;
	}
	if (sw->role == SWARM_ROLE_JOIN && (rc = set_part_file(xf, st)) != 0)
		goto done;
	size_t bad = 0;
	if (sw->role == SWARM_ROLE_JOIN && (rc = storage_create_files(st, &bad)) != 0) {
		if (rc == -ENOENT && layout.files[bad].access == STORAGE_READ)
			adopted_changed(xf, bad, " (it is gone)");
		else
			snprintf(sw->error, sizeof sw->error, "cannot create %s/%s: %s%s", sw->root,
				 layout.files[bad].path, strerror(-rc),
				 rc == -EEXIST ? " (it appeared after the join was checked; shoal "
						 "never writes into a file it did not create)"
				 : rc == -ELOOP || rc == -ENOTDIR
					 ? " (a symbolic link or file is in the way; shoal never "
					   "follows one)"
					 : "");
		/* Take back what this attempt created (files and directories),
		 * so a failed join leaves nothing behind. */
		storage_undo_create(st);
		goto done;
	}
	/* Created now: ours to reopen from here on, and recorded as ours only
	 * now that they exist (files.owned "to create" until here). */
	bool created = false;
	for (size_t f = 0; sw->file_access && f < mi->file_count; f++) {
		if (sw->file_access[f] == STORAGE_CREATE || sw->file_access[f] == STORAGE_REPLACE) {
			sw->file_access[f] = STORAGE_OWN;
			created = true;
		}
	}
	if (created && swarm_db_save_owned(xf->node, sw) != 0) {
		snprintf(sw->error, sizeof sw->error, "cannot record the files created");
		rc = -EIO;
		goto done;
	}
	if (sw->role == SWARM_ROLE_JOIN && (rc = check_adopted(xf)) != 0)
		goto done;
	rc = xfer_open_disk(xf, st); /* takes st */
	st = NULL;
	if (rc)
		goto done;
	rc = rebuild_picker(xf);
	xf->layers_pending = mi->has_v2 && !mi->all_layers;
done:
	storage_free(st);
	if (rc && !xf->picker) {
		/* Set up again from scratch at the next start; no job has it. */
		diskio_free(xf->dio);
		xf->dio = NULL;
	}
	join_layout_destroy(&layout);
	return rc;
}
