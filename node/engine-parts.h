/* engine-parts.h: what the files of the engine (engine*.c) share with each other
 * and nothing else: constants, the disk pipeline's job structs, and the
 * functions one file calls in another.  Outside node/engine*.c use
 * node/engine.h (and node/engine-internal.h for the connection layer). */
#ifndef SHOAL_NODE_ENGINE_PARTS_H
#define SHOAL_NODE_ENGINE_PARTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <event2/util.h>

#include "node/diskio.h"
#include "node/engine-internal.h"
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
 * queue up, which a rate-limited or slow peer's do. */
#define PEER_FAST_REPLY_MS 100  /* an answer this quick: the link has room, grow */
#define PEER_SLOW_REPLY_MS 1000 /* an answer this late waited in a queue: shrink */

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
 * comment at its definition; the file it lives in is named by the section
 * it belongs to (engine.c lifecycle, swarm state, timers, JSON;
 * engine_durable.c the durability gate and the disk layer's durability
 * callbacks; engine_peers.c address book, bans, accept, handshakes,
 * PEX; engine_wire.c sending and messages; engine_io.c the disk pipeline
 * and budgets; engine_meta.c BEP 9 and BEP 52). */
void update_read_mode(struct peer *p);
void apply_swarm_limits(struct xfer *xf);
void close_list(struct peer *list, const char *why);
bool swarm_runnable(const struct swarm *sw);
int check_fresh_join(struct xfer *xf);
void adopted_changed(struct xfer *xf, size_t file, const char *why);
void swarm_fail(struct xfer *xf);
int xfer_setup_meta(struct xfer *xf);
int rebuild_picker(struct xfer *xf);
/* Record the metadata (files, layers) with the durable bitmap.  0 or -EIO. */
int store_meta(struct xfer *xf);
void tick(evutil_socket_t fd, short what, void *arg);
void flush_have(struct xfer *xf);
void flush_have_now(struct xfer *xf);
void note_unsynced(struct xfer *xf, uint32_t piece);
void job_done(void *ctx);
size_t durable_lost(void *ctx, const uint8_t *lost);
void durable_synced(void *ctx, const int64_t *mtimes_ns, size_t nfiles);
int xfer_open_disk(struct xfer *xf, struct storage *st) __attribute__((warn_unused_result));
int queue_block(struct peer *p, uint32_t piece, uint32_t begin, const uint8_t *data, size_t len)
	__attribute__((warn_unused_result));
void daemon_queued(const struct node *node, size_t *serve, size_t *write,
			  unsigned *unchoked);
bool write_budget_full(const struct xfer *xf);
void serve_freed(struct xfer *xf);
void serve_wake(evutil_socket_t fd, short what, void *arg);
bool strike(struct peer *p, unsigned n, const char *what);
void serve_requests(struct peer *p);
void request_metadata(struct peer *p);
void request_metadata_all(struct xfer *xf);
int metadata_announced(struct peer *p);
int on_metadata_msg(struct peer *p, const uint8_t *payload, size_t len);
void request_layers(struct xfer *xf);
void free_layerfetch(struct xfer *xf);
void on_hashes(struct peer *p, const struct wire_msg *m);
void on_hash_request(struct peer *p, const struct wire_hash_req *r);
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
void set_choke(struct peer *p, bool choke);
void update_interest(struct peer *p);
void drop_requests(struct peer *p);
void request_more(struct peer *p);
void broadcast_have(struct xfer *xf, uint32_t piece);

#endif
