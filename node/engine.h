/* engine.h: the transfer engine: peer connections over TCP (plain BitTorrent
 * or the shoal encrypted transport), piece exchange, verification, seeding. */
#ifndef SHOAL_NODE_ENGINE_H
#define SHOAL_NODE_ENGINE_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "node/settings.h"

struct node;
struct swarm;
struct engine;

/* Listen on the peer port (IPv4 and, when available, IPv6) and start the
 * periodic work.  Returns NULL with a message in `err`. */
struct engine *engine_new(struct node *node, char *err, size_t err_len);
/* Close every connection and stop.  NULL is a no-op. */
void engine_free(struct engine *eng);

/* Start transferring for a swarm whose metadata is known or being fetched.
 * Safe to call again (no-op while running).  Returns 0 or -ENOMEM. */
int engine_swarm_start(struct engine *eng, struct swarm *sw) __attribute__((warn_unused_result));
/* Stop a swarm's transfers (pause, error, removal); its peers are closed. */
void engine_swarm_stop(struct engine *eng, struct swarm *sw);
/* The verified bitmap changed outside the engine (a check): rebuild the
 * picker and reconnect. */
void engine_swarm_have_changed(struct engine *eng, struct swarm *sw);
/* Record the swarm's state and its verified pieces in the database through
 * the durability gate: pieces whose data is not yet known to be durable are
 * left out (they are recorded by the sync that makes them so).  The only
 * way code outside engine.c may write the have-bitmap.  Works with or
 * without a running engine.  Returns 0 or -EIO. */
int engine_swarm_save_have(struct node *node, struct swarm *sw) __attribute__((warn_unused_result));
/* The swarm's verified bitmap without the pieces not yet durable (the
 * durability gate's view), as a new buffer of (total_pieces + 7) / 8
 * bytes, or NULL without memory.  Needs the metadata. */
uint8_t *engine_swarm_durable_have(const struct swarm *sw);
/* True while worker jobs still reference the swarm's transfer state. */
bool engine_swarm_busy(const struct swarm *sw);
/* Free a stopped swarm's transfer state. */
void engine_swarm_free(struct swarm *sw);

/* Streaming readers (node/api_stream.c).  Is the piece verified (its data
 * on disk and checked, perhaps not yet durable)?  False without metadata. */
bool engine_piece_ready(const struct swarm *sw, uint32_t piece);
/* Is block `block` (16 KiB) of the piece on disk and verified: its piece
 * verified, or (a v2 piece in a reader's window) its own hash matched the
 * block hashes a peer sent, checked against the piece layer?  (docs/
 * streaming.md, "Block proofs"). */
bool engine_block_ready(const struct swarm *sw, uint32_t piece, uint32_t block);
/* At most this many reading windows per swarm. */
#define ENGINE_STREAM_WINDOWS 16
/* Reader `owner` (a nonzero id of the caller's, one per reader) reads file
 * `file` from `offset`: the pieces from there on (a window: docs/streaming.md)
 * are requested before any other, in order, and a window piece already
 * requested may be asked of a second peer.  Calling it again moves the
 * window (a seek).  With ENGINE_STREAM_WINDOWS windows already, the one
 * set or moved longest ago gives way (its reader is still served as pieces
 * arrive, and gets a window back when it next calls).  Returns 0; -ENODATA
 * without metadata; -ERANGE for a file or offset out of range; -EPERM for
 * a skipped file. */
int engine_stream_window(struct engine *eng, struct swarm *sw, uint64_t owner, size_t file,
			 uint64_t offset);
/* The swarm's file priorities, sequential flag or file access (an
 * un-skipped file is STORAGE_CREATE now) changed: the picker and the disk
 * layer follow, and the state moves between downloading and seeding.  The
 * caller (the mediator) has recorded them.  Un-skipped files are created
 * now when the swarm has its files open (else at its next start).
 * Returns 0, -ENOMEM, -EIO, or the error creating a file (-EEXIST: one
 * appeared at its name; sw->error names it, the swarm is not failed). */
int engine_swarm_selection_changed(struct engine *eng, struct swarm *sw)
	__attribute__((warn_unused_result));
/* Bytes a window covers from the reader's position (before the file's end
 * cuts it): a reader moves its window well before it reads past it.  0
 * without metadata. */
uint64_t engine_stream_window_span(const struct swarm *sw);
/* The reader is gone or done: its window is dropped (unknown owner: no-op). */
void engine_stream_window_drop(struct engine *eng, struct swarm *sw, uint64_t owner);

/* Remember a peer address for the swarm and connect when there is room.
 * Returns 0 (also when it was known), -EINVAL for a bad address (not
 * numeric, port 0, the unspecified address), a source the address book
 * does not know, or a swarm with no transfer state, -ELOOP for our own
 * listen address, -ENOSPC when the address book is full (transfer/addrbook.h). */
int engine_add_peer(struct engine *eng, struct swarm *sw, const char *host, uint16_t port,
		    const char *source) __attribute__((warn_unused_result));

/* Change the daemon-wide limits (bytes/s, 0 = unlimited) at run time.
 * Returns 0 or -EINVAL.  A swarm's own limits live in its struct swarm
 * (upload_limit, download_limit) and take effect within a second. */
int engine_set_limits(struct engine *eng, uint64_t up, uint64_t down)
	__attribute__((warn_unused_result));

/* Change the encryption policy at run time (a SIGHUP reload): new
 * connections follow it, established ones keep their transport. */
void engine_set_encryption(struct engine *eng, enum encryption_policy policy);

/* Figures for status and the API (which builds the JSON: node/api_json.c). */
struct engine_node_stats {
	bool ipv6;                  /* listening on IPv6 too */
	unsigned peers;             /* connections, every swarm and handshaking */
	double down_rate, up_rate;  /* bytes/s, summed over the swarms */
	uint64_t peer_db_commits;   /* address-book commits to SQLite */
	size_t serve_queued, serve_budget, write_queued, write_budget; /* bytes */
	int crypto_threads;         /* sealing and opening beside the loop (0: none) */
	uint64_t sealed_off_loop, opened_off_loop; /* plaintext bytes they handled */
};
void engine_node_stats(const struct engine *eng, struct engine_node_stats *out);

struct engine_swarm_stats {
	bool active;                /* transferring (else every figure is 0) */
	unsigned peers, known_peers;
	double down_rate, up_rate;  /* bytes/s */
	uint64_t downloaded, uploaded, hash_failures;
	bool disk_error;            /* sw->error says which */
	bool waiting_layers;        /* a magnet join waiting for piece layers */
};
void engine_swarm_stats(const struct swarm *sw, struct engine_swarm_stats *out);

/* One connection, as the API shows it; the strings live until the next
 * turn of the loop. */
struct engine_peer_info {
	const char *address, *client;
	const char *cipher;         /* "aes256gcm", "xchacha20poly1305"; NULL: plain or not yet */
	bool outgoing, encrypted, active;
	double progress, down_rate, up_rate;
	uint64_t downloaded, uploaded;
	bool am_choking, am_interested, peer_choking, peer_interested;
	unsigned requests;
	uint64_t upload_share, download_share; /* bytes/s of the swarm's limits; 0 none */
};
/* Call `fn` for each connection of the swarm. */
void engine_each_peer(const struct swarm *sw, void (*fn)(void *ctx, const struct engine_peer_info *),
		      void *ctx);
unsigned engine_peer_count(const struct engine *eng);
/* Every byte on peer sockets so far: [0] received, [1] sent (zeros
 * without an engine). */
void engine_wire_bytes(const struct engine *eng, uint64_t out[2]);
/* The peer id of our handshakes (trackers announce the same one); zeros
 * without an engine. */
void engine_peer_id(const struct engine *eng, uint8_t out[20]);

#endif
