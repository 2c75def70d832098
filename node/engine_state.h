/* engine_state.h: the transfer engine's state, shared by engine*.c (swarm
 * logic), peer.c (making peers, sending and closing) and peer_conn.c (the
 * connection itself, transport, framing and sending, is node/conn.h, whose
 * callbacks peer_conn.c turns into engine calls).  How the files are
 * layered: node/engine-parts.h.
 *
 * Threading contract.  Everything here belongs to the event-loop thread.
 * Worker threads touch only a swarm's disk layer (xf->dio, node/diskio.h),
 * whose own contract says what they may read and write; the engine calls
 * it on the loop and hears back through its callbacks, also on the loop.
 * Those callbacks may run after engine_free (workers_free drains them), so
 * they use xf, never xf->eng, and xf is freed (with its diskio) only when
 * diskio_busy() is false.
 *
 * The one exception to "the loop's own" that crosses into the disk layer:
 * xf->leaves.  A write job hashes each block into the block's own `leaf`,
 * the loop copies it into leaves[p], and queue_verify moves leaves[p] into
 * the disk layer, whose verify job owns and frees it.  So a job of an older
 * picker never shares a buffer with the piece fetched again.
 *
 * A struct peer owns its struct conn * until the conn's on_close (peer_conn.c),
 * which clears p->conn; the peer itself is freed only by engine_reap, on a
 * later loop turn (node/conn.h). */
#ifndef SHOAL_NODE_ENGINE_STATE_H
#define SHOAL_NODE_ENGINE_STATE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "node/conn.h"
#include "node/engine.h"
#include "node/node.h"
#include "node/swarm.h"
#include "transfer/addrbook.h"
#include "transfer/bitfield.h"
#include "transfer/choker.h"
#include "transfer/crypt.h"
#include "transfer/wire.h"

struct evconnlistener;
struct event;
struct picker;
struct diskio;
struct ratelimit;

/* Limits.  Every one of these is a named ceiling on what a peer can make us hold. */
#define ENGINE_MAX_PEERS_TOTAL 200
#define ENGINE_MAX_PEERS_SWARM 60
#define ENGINE_MAX_HANDSHAKING 64     /* incoming connections not yet in a swarm */
#define ENGINE_MAX_HANDSHAKING_PER_ADDR 16 /* of them from one IP, once half are taken */
#define ENGINE_MAX_KNOWN_PEERS 500    /* addresses remembered per swarm (the cap of
				       * its transfer/addrbook.h book) */
#define ENGINE_PEER_WRITE_BATCH 64    /* address-book rows held before a write; they
				       * are written in one transaction at the next
				       * tick, when this many wait, or at stop */
#define PEER_REQQ 256                 /* requests we tell a peer it may queue (BEP 10 reqq) */
#define PEER_MAX_INQ 512              /* requests a peer may have queued with us: twice
				       * reqq, since libtorrent's time-critical (streaming)
				       * requests come on top of a queue kept at reqq, and
				       * one ignored waits for libtorrent's timeout */
#define PEER_MAX_INQ_OVERFLOW 1024     /* requests past a full queue, none fitting
					 * between, before it counts as a flood */
#define PEER_MAX_REQS 256             /* our requests in flight to one peer */
#define ENGINE_BLOCK_PROOFS 64        /* pieces whose block hashes are held at once */
#define ENGINE_CANCEL_EVERY_MS 250    /* readers' jumps cancel requests at most this often */
#define ENGINE_CANCEL_OWED_MS 2000    /* ... and a jump not yet paid is forgotten after this */
#define ENGINE_PROOF_RETRY_MS 3000    /* block hashes unanswered: ask again (another peer) */
#define ENGINE_LEAVES_SERVING 4       /* block-hash jobs at once for one swarm's peers */
#define PEER_MIN_REQS 16
#define PEER_BAN_STRIKES 2            /* failed pieces before a ban */
#define PEER_MAX_CHATTER_PER_S 64     /* keep-alives + unknown-id messages; honest
				       * peers send one keep-alive in ~2 minutes */
/* Memory for blocks, in bytes (docs/architecture.md, "Memory ceilings"):
 * against the 64 MiB RSS goal, whatever the number of peers or swarms. */
#define ENGINE_SERVE_BUDGET (16u << 20)       /* blocks queued for serving, daemon-wide:
					       * being read, or unsent in output buffers */
#define ENGINE_SWARM_SERVE_BUDGET (8u << 20)  /* ... of them for one swarm's peers */
#define ENGINE_WRITE_BUDGET (24u << 20)       /* received blocks waiting for or in a
					       * write, daemon-wide: no new requests past it */
#define ENGINE_SWARM_WRITE_BUDGET (16u << 20) /* ... of them for one swarm */
#define PEER_MAX_OUTBUF (4u << 20)    /* unsent bytes before we stop serving */
/* unsent bytes before we drop the peer: CONN_MAX_OUTBUF_HARD (node/conn.h) */
#define ENGINE_UPLOAD_SLOTS 8
#define ENGINE_HASH_REQ_MAX 512       /* hashes per BEP 52 hash request */

/* What the engine knows of a connection's progress; the transport's own
 * states (connecting, sniffing, encrypted handshake) are conn.c's. */
/* Intervals and timeouts, each with the reason for its number.  Everything
 * periodic runs from the one tick, so no interval is finer than it. */
#define ENGINE_TICK_MS 1000           /* rates are sampled and timeouts checked once a
				       * second: finer costs CPU for every swarm */
#define ENGINE_CHOKE_INTERVAL_MS 10000 /* BEP 3's choking round: long enough to measure
					* a peer's rate, short enough to try others */
#define ENGINE_PEX_INTERVAL_MS 30000  /* BEP 11 suggests at most one a minute; at 30 s
				       * (and at once when a peer arrives) leechers of a
				       * small swarm find each other sooner */
#define ENGINE_MD_ROUND_MS 10000      /* metadata pieces nobody delivered are asked again,
				       * and an unanswered size gives way: ten ticks */
#define ENGINE_LAYERS_RETRY_MS 10000  /* piece layers unanswered this long are asked
				       * of another peer (a hash answer takes one RTT) */
#define ENGINE_DISK_RETRY_MS 5000     /* a full disk is looked at again this often:
				       * statvfs is cheap, and a user freeing space
				       * should not wait long */
/* Redial back-off: ADDRBOOK_BACKOFF_BASE_MS and _MAX_MS (transfer/addrbook.h). */
#define PEER_HANDSHAKE_TIMEOUT_MS 15000 /* connect, transport and BitTorrent handshake:
					 * several RTTs even on a bad link, and a slot
					 * held by a silent peer is freed soon */
#define PEER_REQUEST_TIMEOUT_MS 30000 /* a block unanswered this long marks the peer
				       * snubbed; 16 KiB needs 30 s only below ~4 kbit/s */
#define PEER_KEEPALIVE_MS 90000       /* BEP 3 clients send one every 2 minutes and
				       * drop a silent peer soon after: stay under it */
#define PEER_IDLE_TIMEOUT_MS 180000   /* silence this long is a dead peer: 1.5x the
				       * 2-minute keep-alive period of other clients */
#define PEER_EVICT_AFTER_MS 10000     /* a full swarm may drop, for a newcomer, a
				       * connection this old that moved no data */

enum peer_state {
	PEER_OPENING,      /* no BitTorrent handshake accepted yet */
	PEER_ACTIVE,       /* handshake accepted: in a swarm's list */
	PEER_DEAD,         /* closed; freed by engine_reap */
};

struct peer_req {
	uint32_t piece, block;
	uint64_t sent_ms;
};

struct xfer;
struct engine;

struct peer {
	struct engine *eng;
	struct xfer *xf;             /* NULL until the handshake names a swarm */
	uint32_t uid;                /* unique for the engine's life */
	enum peer_state state;
	bool outgoing;
	bool ext_ok;                 /* BEP 10 extension handshake received */
	struct conn *conn;           /* the connection (node/conn.h); NULL once it
				      * closed (then state is PEER_DEAD) */
	struct sockaddr_storage addr;
	socklen_t addr_len;
	char name[64];               /* "1.2.3.4:5" for logs and the API */
	uint16_t listen_port;        /* from the extension handshake, else 0 */
	uint8_t peer_id[WIRE_PEER_ID_LEN];
	char client[WIRE_EXT_CLIENT_MAX + 1];
	struct wire_ext_hs ext;
	bool am_choking, am_interested, peer_choking, peer_interested;
	bool snubbed;
	bool handshake_sent;
	bool v1_hello;          /* it handshook with the swarm's v1 info-hash: answer with it */
	struct bitfield has;         /* pieces it has (sized once metadata is known) */
	bool has_all_pending;        /* it said it has everything before we knew the size */
	uint8_t *early_bitfield;     /* bitfield received before metadata, owned */
	size_t early_bitfield_len;
	struct peer_req *reqs;       /* our requests to it */
	size_t n_reqs;
	size_t window;               /* requests in flight that answers keep up with */
	uint64_t min_reply_ms;       /* the quickest answer yet: the path's round
				      * trip, what "quick" is measured from; 0 = none */
	struct wire_block inq[PEER_MAX_INQ]; /* its requests to us, oldest first */
	size_t n_inq;
	unsigned inq_overflow;        /* requests ignored since one last fitted */
	bool v2_hashes;               /* set BEP 52's handshake bit: asks and answers hashes */
	bool metered, metered_encrypted; /* counted in node->metrics.peers (as it was
				       * when it joined its swarm) until it closes */
	unsigned reads_inflight;      /* read batches at the workers */
	size_t reads_blocks;          /* blocks in them */
	size_t serve_target;          /* see serve_target() in engine_io.c */
	size_t serve_out;             /* bytes of served blocks that may still be in
				       * the output buffer (counted in xf->serve_out) */
	bool serve_waiting;           /* its requests wait for the serving budget */
	uint64_t down_total, up_total;       /* payload bytes */
	uint64_t down_tick, up_tick;         /* since the last rate sample */
	double down_rate, up_rate;           /* bytes/s, smoothed */
	uint64_t last_block_ms;              /* the times of the connection itself:
					      * conn_connected_ms and the like */
	unsigned strikes;                    /* pieces it helped to fail */
	uint64_t chatter;                    /* keep-alives since the last tick */
	uint64_t skipped_seen;               /* dec.skipped at the last tick */
	uint32_t md_requested;               /* metadata pieces asked of it */
	uint32_t md_announced;               /* metadata_size counted in xf->mdf, or 0 */
	bool pex_sent_once;
	uint64_t known;                      /* its xf->book entry's handle, 0 if none;
					      * stale (every addrbook call then does
					      * nothing) once the entry is evicted */
	uint64_t share_up, share_down;       /* bytes/s of its own buckets
					      * (conn_set_limit; 0/0: none) */
	/* In xf->peers or eng->pending.  Unlinking (peer_close) leaves `next`
	 * as it was, so a loop over a list may close the peer it stands on,
	 * or any other, and go on with p->next: an unlinked peer is freed
	 * only by the reaper, on a later turn of the event loop, and its
	 * state is PEER_DEAD (loop bodies skip such peers). */
	struct peer *next;
	struct peer *dead_next;              /* in eng->dead, once closed */
};

struct xfer {
	struct engine *eng;                  /* never used by worker completions: they
					      * can run after the engine is freed */
	struct node *node;
	struct swarm *sw;
	struct picker *picker;               /* NULL until the metadata is known */
	struct diskio *dio;                  /* storage and disk jobs (node/diskio.h);
					      * made with the picker */
	struct peer *peers;
	unsigned n_peers;
	struct addrbook *book;               /* addresses, back-off, bans (transfer/addrbook.h) */
	/* Address-book rows (new addresses, bans) not yet in SQLite */
	struct swarm_peer_row *rows;         /* owned: ENGINE_PEER_WRITE_BATCH of them,
					      * allocated by the first row, freed by
					      * the flush */
	size_t n_rows;
	struct choker_state choker;
	uint64_t last_choke_ms, last_pex_ms;
	bool pex_due;                        /* a peer arrived: exchange at the next tick */
	bool rechoke;                        /* run the choker at the next tick */
	bool loading_peers;                  /* filling `book` from SQLite */
	bool stopped;
	bool dirty;                          /* verified bitmap not yet saved (verified
					      * pieces not yet durable wait in xf->dio:
					      * served and announced, recorded only
					      * after a batched fdatasync) */
	uint8_t **leaves;                    /* per piece in progress: its blocks' SHA-256,
					      * computed as they are written */
	uint8_t **hash_trees;                /* per file: tree over its piece layer,
					      * built when a peer first asks (BEP 52) */
	bool disk_full;
	uint64_t disk_retry_ms;
	/* BEP 9 metadata download (transfer/mdfetch.h): NULL until a peer
	 * announces a size, freed once the metadata is installed */
	struct mdfetch *mdf;
	bool md_kick;                        /* the fetched size changed: ask again */
	/* BEP 52 piece layers still missing (magnet joins) */
	bool layers_pending;
	uint64_t layers_asked_ms;            /* last asked, or last answer from layers_peer */
	struct layerfetch *lf;               /* transfer/layerfetch.h, made at the first ask */
	uint32_t layers_peer;                /* uid the layers were last asked of */
	/* Bytes held for this swarm's peers, against the budgets (engine_io.c,
	 * "serving and writing budgets").  Loop-side counts, also updated by
	 * the disk layer's callbacks (on_read), which run on the loop. */
	size_t serve_reading;                /* blocks in read jobs */
	size_t serve_out;                    /* sum of its peers' serve_out */
	unsigned n_unchoked;                 /* its peers we do not choke */
	/* counters */
	uint64_t down_total, up_total;
	uint64_t down_tick, up_tick;
	double down_rate, up_rate;
	uint64_t hash_fails;
	/* On eng->awake (xfer_wake): the tick looks only at these.  A
	 * complete swarm with no peer and nothing to flush sleeps. */
	bool awake;
	struct xfer *awake_next, *awake_prev;
	/* What to fetch first (engine_select.c): each piece's priority from
	 * the files' (owned, per piece, an enum picker_prio; NULL until the
	 * picker is made), and the streaming readers' windows over it. */
	uint8_t *base_prio;
	struct stream_window {
		uint64_t owner;                  /* 0: a free slot */
		uint64_t used;                   /* win_clock when last set or moved */
		uint32_t first, count;           /* pieces [first, first + count) */
	} win[ENGINE_STREAM_WINDOWS];
	uint64_t win_clock;
	uint64_t win_newest;                 /* owner of the window set or jumped last (NOW) */
	uint64_t last_cancel_ms;             /* a reader's jump last cancelled requests */
	bool cancel_owed;                    /* a jump came sooner: cancel at the next move */
	uint64_t cancel_owed_ms;             /* when that jump came */
	/* Block hashes of pieces in readers' windows (engine_select.c,
	 * "Block proofs"), so a block can be served to a reader once its own
	 * hash matches, before its whole piece is in.  Owned,
	 * ENGINE_BLOCK_PROOFS entries, NULL until a reader needs one. */
	struct block_proof *proofs;
	uint64_t proof_clock;
	unsigned leaves_serving;             /* diskio_leaves jobs for its peers */
};

/* One piece's block hashes, asked of one peer (BEP 52 base layer). */
struct block_proof {
	bool used;
	bool have;          /* leaves hash to the piece's layer hash */
	uint32_t piece;
	uint32_t asked_peer;
	uint64_t asked_ms;  /* 0: ask again */
	uint64_t clock;     /* xf->proof_clock at last use, for eviction */
	uint32_t nblocks;   /* blocks of the piece holding data */
	uint8_t *leaves;    /* owned, nblocks * 32, once `have` */
	uint8_t *ok;        /* owned bitmap: block on disk and its hash matched */
};

struct engine {
	struct node *node;
	struct evconnlistener *listen4, *listen6;
	struct event *tick, *reaper;
	struct event *serve_wake;            /* serving budget freed: serve who waits */
	bool serve_waiting;                  /* some peer waits for the serving budget */
	struct ratelimit *limit;             /* daemon-wide limits, every connection */
	struct conn_hub *conns;              /* every connection (node/conn.h) */
	struct peer *pending;                /* incoming, swarm not known yet */
	struct xfer *awake;                  /* swarms the tick looks at (xfer_wake) */
	double down_rate, up_rate;           /* sums over the swarms, as of the last tick */
	unsigned n_pending;
	struct peer *dead;                   /* closed, freed by the reaper */
	unsigned n_peers;                    /* all live connections */
	uint32_t next_uid;
	uint8_t peer_id[WIRE_PEER_ID_LEN];
	uint64_t rng;
	uint64_t last_tick_ms;
	uint64_t peer_db_commits;            /* address-book write transactions */
	/* Upward calls of the engine's lower files (engine-parts.h has the
	 * layering), set by engine_new: */
	void (*have_changed)(struct engine *eng, struct swarm *sw); /* engine.c's
				      * engine_swarm_have_changed, for
				      * engine_durable.c's durable_lost */
};

/* Change a swarm's serving count (`field` is &xf->serve_reading or
 * &xf->serve_out) or its unchoked count, and the daemon's sum with it
 * (node->queues).  Unsigned arithmetic: `add - sub` wraps as intended. */
static inline void serve_count(struct xfer *xf, size_t *field, size_t add, size_t sub)
{
	*field = *field + add - sub;
	xf->node->queues.serve = xf->node->queues.serve + add - sub;
}

static inline void unchoked_count(struct xfer *xf, bool up)
{
	xf->n_unchoked += up ? 1u : (unsigned)-1;
	xf->node->queues.unchoked += up ? 1u : (unsigned)-1;
}

/* peer.c: the engine's side of a connection, the bottom of the engine: it
 * calls no other engine file (node/conn.h holds the connection itself and
 * the rules of its lifetime). */
/* An accepted socket becomes a peer in eng->pending; NULL on failure (fd
 * is closed). */
struct peer *peer_accept(struct engine *eng, int fd, const struct sockaddr *sa, socklen_t len);
/* Begin an outgoing connection to `ss` for the address-book entry `known`
 * (kept in p->known), linked into xf->peers; NULL on failure (nothing
 * linked: the caller unmarks the entry). */
struct peer *peer_connect(struct engine *eng, struct xfer *xf, const struct sockaddr_storage *ss,
			  socklen_t len, uint64_t known);
/* Close the connection.  Its on_close (peer_conn.c) runs before this returns:
 * it unlinks the peer from its list (xf->peers or eng->pending, through
 * engine_on_peer_gone), sets p->conn to NULL, marks it PEER_DEAD and hands
 * it to engine_reap, which frees it on a later loop turn.  p->next is not
 * touched (see struct peer).  Closing a dead peer does nothing. */
void peer_close(struct peer *p, const char *why);
/* As peer_close, for a handshake that took too long (conn_close_timeout). */
void peer_close_timeout(struct peer *p, const char *why);
/* Queue bytes to the peer (sealed when encrypted).  a/b are concatenated
 * and copied: the caller keeps its buffers.  -ENOTCONN once closed; may
 * close the peer (-ENOBUFS: see conn_send), so a caller walking a list
 * must expect PEER_DEAD afterwards. */
int peer_send(struct peer *p, const void *a, size_t alen, const void *b, size_t blen);
/* Queue one message that lies inside `owner` (a malloc'd block), which
 * belongs to the connection from the call on: freed once the bytes are
 * sent (plain: no copy) or sealed (encrypted), or at once on failure. */
int peer_send_owned(struct peer *p, const void *msg, size_t len, void *owner);
size_t peer_outbuf_len(const struct peer *p);
/* Call engine_on_writable when unsent bytes drop to `n`. */
void peer_set_write_lowmark(struct peer *p, size_t n);
/* See conn_set_fast_read. */
void peer_set_fast_read(struct peer *p, bool fast);
/* The connection's times (conn.h); 0 once it is closed. */
uint64_t peer_connected_ms(const struct peer *p);
uint64_t peer_last_recv_ms(const struct peer *p);
uint64_t peer_last_send_ms(const struct peer *p);
void peer_format_addr(const struct sockaddr *sa, char *out, size_t len);
/* Free the peers closed so far (eng->dead). */
void engine_reap(struct engine *eng);
/* The peer's address-book entry speaks only plain BitTorrent (false when
 * it has none). */
bool known_plain_only(const struct peer *p);
/* Its entry is to be sent a hello offering nothing (flags 00). */
bool known_legacy_hello(const struct peer *p);

/* peer_conn.c: the callbacks engine_new gives its conn_hub. */
extern const struct conn_ops peer_conn_ops;

/* engine*.c, called by peer_conn.c (from the connection's callbacks) */
/* Send the BitTorrent and extension handshakes and our bitfield. */
void peer_send_handshake(struct peer *p);
/* A whole BitTorrent message arrived; returns 0 or a negative error to drop the peer. */
int engine_on_message(struct peer *p, const struct wire_msg *m);
/* The remote handshake named a swarm: attach (returns 0) or refuse
 * (-EACCES: a banned host or peer id; other negative codes otherwise). */
int engine_on_handshake(struct peer *p, const struct wire_handshake *hs);
/* (engine_meta.c) The peer just attached to a swarm that holds no disk
 * layer (a complete swarm starts without one and gives it back while it
 * sleeps): make it now and ready the peer for pieces.  Non-zero: the swarm
 * failed (its error says why) or the peer could not be readied; close it. */
int xfer_wake_disk(struct peer *p);
/* An encrypted responder needs the 32-byte hashes of running swarms. */
int engine_lookup_hello(void *arg, const uint8_t hello[CRYPT_HELLO_LEN],
			uint8_t info_hash_out[CRYPT_INFO_HASH_LEN]);
/* The output buffer drained: serve more requests. */
void engine_on_writable(struct peer *p);
/* The connection is gone (called once, from its on_close, with p->conn
 * already NULL and the peer still linked): unlink the peer. */
void engine_on_peer_gone(struct peer *p);
/* An encrypted hello to it was answered by a close: mark its entry plain
 * only and dialable again at once (nothing when it has none). */
void known_speaks_plain(struct peer *p);
/* An encrypted hello offering AES-256-GCM was answered by a close: mark
 * its entry for a hello offering nothing, dialable again at once. */
void known_refuses_offer(struct peer *p);

/* engine_base.c */
uint64_t engine_rand(struct engine *eng);

#endif
