/* engine-internal.h: the transfer engine's state, shared by engine*.c (swarm
 * logic) and peer.c (connections: transport, framing, sending).
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
 * picker never shares a buffer with the piece fetched again. */
#ifndef SHOAL_NODE_ENGINE_INTERNAL_H
#define SHOAL_NODE_ENGINE_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "node/engine.h"
#include "node/swarm.h"
#include "transfer/bitfield.h"
#include "transfer/choker.h"
#include "transfer/crypt.h"
#include "transfer/wire.h"

struct bufferevent;
struct evconnlistener;
struct event;
struct picker;
struct diskio;
struct ratelimit;
struct ev_token_bucket_cfg;

/* Limits.  Every one of these is a named ceiling on what a peer can make us hold. */
#define ENGINE_MAX_PEERS_TOTAL 200
#define ENGINE_MAX_PEERS_SWARM 60
#define ENGINE_MAX_HANDSHAKING 64     /* incoming connections not yet in a swarm */
#define ENGINE_MAX_HANDSHAKING_PER_ADDR 16 /* of them from one IP, once half are taken */
#define ENGINE_MAX_KNOWN_PEERS 500    /* addresses remembered per swarm */
#define ENGINE_PEER_WRITE_BATCH 64    /* address-book rows held before a write; they
				       * are written in one transaction at the next
				       * tick, when this many wait, or at stop */
#define PEER_MAX_INQ 256              /* requests a peer may have queued with us */
#define PEER_MAX_REQS 256             /* our requests in flight to one peer */
#define PEER_MIN_REQS 16
#define PEER_REQUEST_TIMEOUT_MS 30000
#define PEER_HANDSHAKE_TIMEOUT_MS 15000
#define PEER_IDLE_TIMEOUT_MS 180000
#define PEER_EVICT_AFTER_MS 10000     /* a full swarm may drop, for a newcomer, a
				       * connection this old that moved no data */
#define PEER_KEEPALIVE_MS 90000
#define PEER_BAN_STRIKES 2            /* failed pieces before a ban */
#define ENGINE_MAX_BANS 128           /* banned hosts, and banned peer ids, per swarm
				       * (the oldest ban gives way; docs/security.md) */
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
#define PEER_MAX_OUTBUF_HARD (16u << 20) /* unsent bytes before we drop the peer */
#define ENGINE_CHOKE_INTERVAL_MS 10000
#define ENGINE_UPLOAD_SLOTS 8
#define ENGINE_PEX_INTERVAL_MS 30000
#define ENGINE_HASH_REQ_MAX 512       /* hashes per BEP 52 hash request */

enum peer_state {
	PEER_CONNECTING,   /* outgoing TCP connect in progress */
	PEER_SNIFFING,     /* incoming: waiting for the first bytes */
	PEER_CRYPT,        /* encrypted transport handshake */
	PEER_HANDSHAKE,    /* waiting for the BitTorrent handshake */
	PEER_ACTIVE,
	PEER_DEAD,         /* closed; freed by the reaper */
};

struct peer_req {
	uint32_t piece, block;
	uint64_t sent_ms;
};

struct known_peer {
	struct sockaddr_storage addr;
	socklen_t len;
	uint64_t next_try_ms;
	uint32_t failures;
	bool connected;
	bool banned;
	bool plain_only;   /* an encrypted attempt failed: it speaks plain BitTorrent */
	char source[8];
};

/* A banned host: the IP address alone (family 4 or 6, 4 or 16 bytes). */
struct ban_host {
	uint8_t family;
	uint8_t addr[16];
};

/* A swarm's bans (docs/security.md, "Bans"): hosts refused for incoming
 * connections whatever their source port or extension handshake, and peer
 * ids refused from any address.  Rings of ENGINE_MAX_BANS: a new ban past
 * the ceiling replaces the oldest. */
struct banlist {
	struct ban_host hosts[ENGINE_MAX_BANS];
	size_t n_hosts, next_host;
	uint8_t ids[ENGINE_MAX_BANS][WIRE_PEER_ID_LEN];
	size_t n_ids, next_id;
};

struct xfer;
struct engine;

struct peer {
	struct engine *eng;
	struct xfer *xf;             /* NULL until the handshake names a swarm */
	uint32_t uid;                /* unique for the engine's life */
	enum peer_state state;
	bool outgoing;
	bool encrypted;
	bool ext_ok;                 /* BEP 10 extension handshake received */
	struct bufferevent *bev;
	struct event *fast_read;     /* our own reads, when no download limit applies */
	struct crypt *crypt;
	struct wire_decoder dec;
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
	struct bitfield has;         /* pieces it has (sized once metadata is known) */
	bool has_all_pending;        /* it said it has everything before we knew the size */
	uint8_t *early_bitfield;     /* bitfield received before metadata, owned */
	size_t early_bitfield_len;
	struct peer_req *reqs;       /* our requests to it */
	size_t n_reqs;
	size_t window;               /* requests in flight that answers keep up with */
	struct wire_block inq[PEER_MAX_INQ]; /* its requests to us, oldest first */
	size_t n_inq;
	unsigned reads_inflight;      /* read batches at the workers */
	size_t reads_blocks;          /* blocks in them */
	size_t serve_target;          /* see serve_target() in engine_io.c */
	size_t serve_out;             /* bytes of served blocks that may still be in
				       * the output buffer (counted in xf->serve_out) */
	bool serve_waiting;           /* its requests wait for the serving budget */
	uint64_t down_total, up_total;       /* payload bytes */
	uint64_t down_tick, up_tick;         /* since the last rate sample */
	double down_rate, up_rate;           /* bytes/s, smoothed */
	uint64_t last_recv_ms, last_send_ms, last_block_ms, connected_ms;
	unsigned strikes;                    /* pieces it helped to fail */
	uint64_t chatter;                    /* keep-alives since the last tick */
	uint64_t skipped_seen;               /* dec.skipped at the last tick */
	uint32_t md_requested;               /* metadata pieces asked of it */
	uint32_t md_announced;               /* metadata_size counted in xf->mdf, or 0 */
	bool pex_sent_once;
	struct known_peer *known;            /* the address book entry, if any */
	struct ev_token_bucket_cfg *limit_cfg; /* its share of the swarm's limits, owned */
	uint64_t share_up, share_down;       /* bytes/s in limit_cfg (0: none) */
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
	struct known_peer *known;
	size_t n_known;
	struct banlist bans;
	/* Address-book rows (new addresses, bans) not yet in SQLite */
	struct swarm_peer_row rows[ENGINE_PEER_WRITE_BATCH];
	size_t n_rows;
	struct choker_state choker;
	uint64_t last_choke_ms, last_pex_ms;
	bool pex_due;                        /* a peer arrived: exchange at the next tick */
	bool rechoke;                        /* run the choker at the next tick */
	bool loading_peers;                  /* filling `known` from SQLite */
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
};

struct engine {
	struct node *node;
	struct evconnlistener *listen4, *listen6;
	struct event *tick, *reaper;
	struct event *serve_wake;            /* serving budget freed: serve who waits */
	bool serve_waiting;                  /* some peer waits for the serving budget */
	struct ratelimit *limit;             /* daemon-wide limits, every connection */
	struct peer *pending;                /* incoming, swarm not known yet */
	unsigned n_pending;
	struct peer *dead;                   /* closed, freed by the reaper */
	unsigned n_peers;                    /* all live connections */
	uint32_t next_uid;
	uint8_t peer_id[WIRE_PEER_ID_LEN];
	uint64_t rng;
	uint8_t scratch[CRYPT_MAX_PLAIN];    /* decrypted record */
	uint8_t sendplain[CRYPT_MAX_PLAIN];  /* plaintext being sealed */
	uint8_t rbuf[256 * 1024];            /* socket reads on the fast path */
	uint64_t last_tick_ms;
	uint64_t peer_db_commits;            /* address-book write transactions */
};

/* peer.c */
struct peer *peer_new(struct engine *eng, int fd, const struct sockaddr *sa, socklen_t len,
		      bool outgoing);
/* Begin an outgoing connection; returns NULL on failure. */
struct peer *peer_connect(struct engine *eng, struct xfer *xf, struct known_peer *kp);
/* Close the connection: unlink it from its list (xf->peers or eng->pending,
 * through engine_on_peer_gone), mark it PEER_DEAD and hand it to the reaper,
 * which frees it on a later loop turn.  p->next is not touched (see struct
 * peer).  Closing a dead peer does nothing. */
void peer_close(struct peer *p, const char *why);
/* Queue bytes to the peer (sealed when encrypted).  a/b are concatenated. */
int peer_send(struct peer *p, const void *a, size_t alen, const void *b, size_t blen);
/* Queue one message that lies inside `owner` (a malloc'd block), which is
 * freed once the bytes are sent (plain: no copy) or sealed (encrypted), or
 * at once on failure. */
int peer_send_owned(struct peer *p, const void *msg, size_t len, void *owner);
/* Send the BitTorrent and extension handshakes and our bitfield. */
void peer_send_handshake(struct peer *p);
size_t peer_outbuf_len(const struct peer *p);
/* Call engine_on_writable when unsent bytes drop to `n`. */
void peer_set_write_lowmark(struct peer *p, size_t n);
/* Read the socket ourselves in 256 KiB gulps (true), or through the
 * bufferevent so libevent's rate limits apply (false).  libevent 2.1 reads
 * at most 4 KiB per call, which made reading the leecher's bottleneck. */
void peer_set_fast_read(struct peer *p, bool fast);
void peer_format_addr(const struct sockaddr *sa, char *out, size_t len);
void engine_reap(struct engine *eng);

/* engine*.c, called by peer.c */
/* A whole BitTorrent message arrived; returns 0 or a negative error to drop the peer. */
int engine_on_message(struct peer *p, const struct wire_msg *m);
/* The remote handshake named a swarm: attach (returns 0) or refuse
 * (-EACCES: a banned host or peer id; other negative codes otherwise). */
int engine_on_handshake(struct peer *p, const struct wire_handshake *hs);
/* An encrypted responder needs the 32-byte hashes of running swarms. */
int engine_lookup_hello(void *arg, const uint8_t hello[CRYPT_HELLO_LEN],
			uint8_t info_hash_out[CRYPT_INFO_HASH_LEN]);
/* The output buffer drained: serve more requests. */
void engine_on_writable(struct peer *p);
/* The connection is gone (called once, before the peer is unlinked). */
void engine_on_peer_gone(struct peer *p);
uint64_t engine_rand(struct engine *eng);

#endif
