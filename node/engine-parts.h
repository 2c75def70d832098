/* engine-parts.h: what the files of the engine (engine*.c) share with each other
 * and nothing else: constants, the disk pipeline's job structs, and the
 * functions one file calls in another.  Outside node/engine*.c use
 * node/engine.h (and node/engine_state.h for the connection layer). */
#ifndef SHOAL_NODE_ENGINE_PARTS_H
#define SHOAL_NODE_ENGINE_PARTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <event2/util.h>

#include "node/diskio.h"
#include "node/engine_state.h"
#include "transfer/metainfo.h"
#include "transfer/wire.h"

struct evconnlistener;
struct node;
struct storage;
struct swarm;

/* Our BEP 10 extension ids. */
#define EXT_UT_METADATA 1
#define EXT_UT_PEX 2

/* The rate behind request_target is sampled once a second, so on its own
 * a new connection spends its first second at PEER_MIN_REQS in flight.
 * The window grows by one block for each answer that comes back quickly
 * (doubling per round trip, like TCP's slow start) and halves when answers
 * queue up, which a rate-limited or slow peer's do.  Quick and late are
 * counted from the quickest answer the peer has given (its round trip): a
 * fixed 100 ms never let the window grow over a 140 ms path, and the
 * first second ran at 16 blocks a round trip (bench/RESULTS.md,
 * 2026-12-03 "distribution over emulated links"). */
#define PEER_FAST_REPLY_MS 100  /* this far above the round trip: the link has room, grow */
#define PEER_SLOW_REPLY_MS 1000 /* this far above it: the answer waited in a queue, shrink */

/* Read batches (node/diskio.h has the batch sizes) in flight per peer. */
#define PEER_MAX_READ_BATCHES 2

/* What a block costs while it is being read: the whole struct block. */
#define SERVE_BLOCK_CHARGE (sizeof(struct block))

/* Bytes of blocks we let queue for a peer (being read or unsent) before
 * serving more of its requests.  Without an upload cap: enough to keep a
 * fast link busy.  Under a cap, about a quarter second of what this
 * connection sends: a block already queued can no longer be cancelled, and
 * in endgame every copy another peer also sends is upload wasted. */
#define SERVE_QUEUE_SECONDS 0.25
#define SERVE_QUEUE_MIN (2 * (XFER_BLOCK_SIZE + WIRE_PIECE_HDR_LEN))

/* Functions one engine file calls in another.  Each one's contract is the
 * comment at its definition.  The files are layered, and each calls only
 * files below it (docs/architecture.md, "The engine's files").  Top to
 * bottom:
 *
 *   engine.c          lifecycle, swarm start/stop/have-changed, timers, figures
 *   peer_conn.c       the conn's callbacks (node/conn.h) into engine calls
 *   engine_wire.c     dispatch of incoming messages
 *   engine_meta.c     BEP 9 and BEP 52; setting a swarm up from its metadata
 *   engine_io.c       the disk pipeline's verdicts, serving and its budget
 *   engine_durable.c  the durability gate, stopping and freeing a swarm
 *   engine_peers.c    address book, bans, accept, handshakes, PEX
 *   engine_send.c     choke, interest, requests, HAVEs; the write budget
 *   engine_base.c     small helpers every file may call
 *   engine_select.c   piece priorities: the files', sequential, readers' windows
 *   peer.c            making peers, sending and closing (engine_state.h)
 *
 * The one call that goes up is a pointer set by the file above:
 * eng->have_changed (engine_state.h), engine.c's
 * engine_swarm_have_changed, called by engine_durable.c's durable_lost
 * when a failed sync may have lost data of a running swarm.  The disk layer's callbacks (diskio_ops) and the
 * conn's (conn_ops) are set by the file they call. */

/* engine.c */
void tick(evutil_socket_t fd, short what, void *arg);

/* engine_meta.c */
int check_fresh_join(struct xfer *xf);
int check_adopted(struct xfer *xf);
int xfer_setup_meta(struct xfer *xf);
void request_metadata(struct peer *p);
void request_metadata_all(struct xfer *xf);
int metadata_announced(struct peer *p);
int on_metadata_msg(struct peer *p, const uint8_t *payload, size_t len);
void request_layers(struct xfer *xf);
void on_hashes(struct peer *p, const struct wire_msg *m);
void on_hash_request(struct peer *p, const struct wire_hash_req *r);

/* engine_io.c */
int xfer_open_disk(struct xfer *xf, struct storage *st) __attribute__((warn_unused_result));
int queue_block(struct peer *p, uint32_t piece, uint32_t begin, const uint8_t *data, size_t len)
	__attribute__((warn_unused_result));
void serve_wake(evutil_socket_t fd, short what, void *arg);
bool strike(struct peer *p, unsigned n, const char *what);
void serve_requests(struct peer *p);
void serve_block_hashes(struct peer *p, const struct wire_hash_req *r, uint32_t piece,
			size_t width);

/* engine_durable.c */
void swarm_fail(struct xfer *xf);
/* Record the metadata (files, layers) with the durable bitmap.  0 or -EIO. */
int store_meta(struct xfer *xf);
void flush_have(struct xfer *xf);
void flush_have_now(struct xfer *xf);
void note_unsynced(struct xfer *xf, uint32_t piece);
void job_done(void *ctx);
size_t durable_lost(void *ctx, const uint8_t *lost);
void durable_synced(void *ctx, const int64_t *mtimes_ns, size_t nfiles);
void free_layerfetch(struct xfer *xf);
/* A sleeping complete swarm gives back its picker and disk layer (its
 * files close) when nothing is pending; false when it keeps them. */
bool xfer_release_disk(struct xfer *xf);

/* engine_peers.c */
uint16_t addr_host(const struct sockaddr_storage *ss, char *host, size_t len);
void ban_host(struct xfer *xf, const struct sockaddr *sa);
void ban_id(struct xfer *xf, const uint8_t id[WIRE_PEER_ID_LEN]);
void ban_known(struct xfer *xf, uint64_t known, const struct sockaddr_storage *from);
void flush_peer_rows(struct xfer *xf);
void queue_peer_row(struct xfer *xf, const char *host, uint16_t port, const char *source,
			   bool banned);
int known_add(struct xfer *xf, const struct sockaddr_storage *ss, socklen_t len,
	      enum addrbook_source src, uint64_t *known_out);
int known_add_text(struct xfer *xf, const char *host, uint16_t port, const char *source,
		   uint64_t *known_out);
void known_load(struct xfer *xf, const char *host, uint16_t port, const char *source, bool banned);
int known_incoming(struct peer *p);
void connect_more(struct xfer *xf, uint64_t now);
void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
		      int len, void *arg);
int peer_meta_ready(struct peer *p);
struct peer *find_peer(struct xfer *xf, uint32_t uid);
void send_pex(struct xfer *xf);
void on_pex(struct peer *p, const uint8_t *payload, size_t len);

/* engine_send.c */
void set_choke(struct peer *p, bool choke);
void update_interest(struct peer *p);
void drop_requests(struct peer *p);
void cancel_for_window(struct peer *p);
void request_more(struct peer *p);
void broadcast_have(struct xfer *xf, uint32_t piece);
void daemon_queued(const struct node *node, size_t *serve, size_t *write,
			  unsigned *unchoked);
bool write_budget_full(const struct xfer *xf);

/* engine_select.c */
int select_apply(struct xfer *xf) __attribute__((warn_unused_result));
/* Set reader `owner`'s window to pieces [first, first + count): 2 for a
 * new window or a jump (a seek), 1 when it moved on from inside the old
 * one, 0 when it was so already.  With every slot taken, the window set
 * or moved longest ago is dropped for it. */
int select_window(struct xfer *xf, uint64_t owner, uint32_t first, uint32_t count)
	__attribute__((warn_unused_result));
void select_window_drop(struct xfer *xf, uint64_t owner);
/* Block proofs: a window piece's block hashes (engine_select.c). */
int proof_want(struct xfer *xf, uint32_t piece, uint32_t peer, struct wire_hash_req *req,
	       uint64_t now);
int proof_hashes(struct xfer *xf, uint32_t peer, const struct wire_hash_req *r,
		 const uint8_t *hashes, size_t n);
void proof_rejected(struct xfer *xf, uint32_t peer, const struct wire_hash_req *r);
void proof_block_written(struct xfer *xf, uint32_t piece, uint32_t block, const uint8_t leaf[32]);
void proof_piece_reset(struct xfer *xf, uint32_t piece);
void proof_piece_done(struct xfer *xf, uint32_t piece);
void proof_reset_all(struct xfer *xf);
bool proof_block_ok(const struct xfer *xf, uint32_t piece, uint32_t block);

/* engine_base.c */
void update_read_mode(struct peer *p);
void apply_swarm_limits(struct xfer *xf);
void close_list(struct peer *list, const char *why);
bool swarm_runnable(const struct swarm *sw);
void adopted_changed(struct xfer *xf, size_t file, const char *why);
int rebuild_picker(struct xfer *xf);
void serve_freed(struct xfer *xf);
void xfer_wake(struct xfer *xf);
void xfer_sleep(struct xfer *xf);
bool xfer_can_sleep(const struct xfer *xf);

#endif
