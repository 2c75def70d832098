/* conn.h: one peer connection below the engine: TCP through a bufferevent,
 * the transport (plain BitTorrent, or the shoal encrypted transport of
 * transfer/crypt.h, told apart by an incoming connection's first bytes),
 * framing through the wire decoder, sending, and deferred close and
 * reaping.  It knows nothing of swarms, pieces or the engine: the engine
 * (node/peer.c and the rest) calls down into it, and it reports up only through the
 * callbacks of struct conn_ops, each given the `owner` pointer the
 * connection was made with.
 *
 * Threading: everything here runs on the event-loop thread, except the
 * sealing and opening of an established encrypted connection's bulk
 * records, which a hub made with crypto threads runs on them (conn.c,
 * "Crypto threads", has the contract: one job each way per connection,
 * the thread owns that half of the struct crypt and the job's buffers,
 * and calls no libevent function).  Callbacks all run on the loop.
 *
 * Ownership and lifetime (the contract):
 *   - A conn is made by conn_accept or conn_connect and belongs to its hub.
 *     The owner holds a borrowed pointer from then until its on_close runs.
 *   - conn_close(c, why) is the only way a connection ends, whoever decides
 *     it (the owner, the remote, an error, the hub at conn_hub_free).  The
 *     first call stops all I/O, frees the bufferevent and calls on_close
 *     exactly once, synchronously, before it returns; later calls do
 *     nothing.  It never frees the conn itself: the memory is freed by the
 *     hub's reaper on a later turn of the event loop, so conn_close may be
 *     called from inside any callback of this connection (or of another),
 *     and the conn's own code that called the callback finds it still
 *     there, marked closed.
 *   - After on_close returns, the owner must not pass c to any conn_*
 *     function again (it should forget the pointer inside on_close).  The
 *     owner's own struct is the owner's: the conn never frees it.
 *   - conn_send and conn_send_owned may close the connection (a peer that
 *     lets more than CONN_MAX_OUTBUF_HARD bytes pile up unread is dropped):
 *     then on_close has run before they return -ENOBUFS.
 *   - No callback is ever called from inside conn_accept or conn_connect.
 */
#ifndef SHOAL_NODE_CONN_H
#define SHOAL_NODE_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "node/settings.h"
#include "transfer/crypt.h"
#include "transfer/wire.h"

struct conn;
struct conn_hub;
struct event_base;
struct ratelimit;

/* Unsent bytes after which a peer is dropped: it does not read what it
 * asked for, and we will not let it grow our memory past this (4x the
 * engine's serving ceiling, so an honest but slow reader is only paused). */
#define CONN_MAX_OUTBUF_HARD (16u << 20)
/* Bytes moved per read or write call.  libevent's default is 16 KiB (one
 * block); bigger moves mean far fewer syscalls and wakeups. */
#define CONN_MAX_SINGLE_IO (256u * 1024)
/* Bytes of an incoming connection's head looked at to tell the transports
 * apart: enough for crypt_classify to be sure either way. */
#define CONN_SNIFF_BYTES 32

struct conn_ops {
	/* An outgoing connection's transport is up (its TCP connect completed
	 * for plain BitTorrent, its encrypted handshake for the encrypted
	 * transport): the owner sends its handshake now.  Called at most once,
	 * and never for an incoming connection (which waits for the remote's
	 * handshake). */
	void (*on_ready)(void *owner);
	/* The remote's BitTorrent handshake.  Return 0 to accept it (the
	 * connection is then open and messages follow), or a negative code
	 * to refuse; the owner may close the connection itself with its own
	 * reason first, else the conn closes it. */
	int (*on_handshake)(void *owner, const struct wire_handshake *hs);
	/* One whole message of an open connection (never a handshake).  The
	 * message's pointers are valid only during the call.  Return 0, or a
	 * negative code to drop the peer (as above). */
	int (*on_message)(void *owner, const struct wire_msg *m);
	/* An open connection's unsent bytes fell to its write low mark. */
	void (*on_writable)(void *owner);
	/* The connection closed (see the contract above).  `crypt_refused`:
	 * it was outgoing and closed (by the remote or an error) while our
	 * encrypted hello was unanswered: the remote may speak only plain
	 * BitTorrent. */
	void (*on_close)(void *owner, const char *why, bool crypt_refused);
	/* An encrypted responder asks for the 32-byte info-hash whose hello
	 * this is (transfer/crypt.h, crypt_lookup_fn); 0 or -ENOENT. */
	int (*lookup_hello)(void *arg, const uint8_t hello[CRYPT_HELLO_LEN],
			    uint8_t info_hash_out[CRYPT_INFO_HASH_LEN]);
};

/* The connections of one engine: their callbacks, shared buffers and the
 * reaper.  `limit` (may be NULL) is the rate-limit group every connection
 * joins; `policy` decides which transports incoming connections may use;
 * `ciphers` which record ciphers the encrypted transport may pick or offer
 * (transfer/crypt.h); `crypto_threads` (0: none, everything on the loop)
 * how many threads seal and open bulk records beside the loop;
 * `lookup_arg` is passed to ops->lookup_hello.  NULL when out of memory or
 * the threads cannot start. */
struct conn_hub *conn_hub_new(struct event_base *base, struct ratelimit *limit,
			      enum encryption_policy policy, enum crypt_ciphers ciphers,
			      int crypto_threads, const struct conn_ops *ops, void *lookup_arg);
/* Change the policy for connections accepted from now on (a reload); those
 * already sniffed keep their transport.  Crypto threads are not started
 * here: a hub made with encryption off seals on the loop after a change. */
void conn_hub_set_policy(struct conn_hub *hub, enum encryption_policy policy);
/* The hub's crypto threads (0 when none, or with encryption off). */
int conn_hub_crypto_threads(const struct conn_hub *hub);
/* Plaintext bytes sealed and opened on the crypto threads so far. */
void conn_hub_off_loop(const struct conn_hub *hub, uint64_t *sealed, uint64_t *opened);
/* Every byte received ([0]) and handed on to send ([1]) on the hub's
 * sockets so far: the bufferevents' (the rate limit group's totals), the
 * fast path's own reads, and what closes dropped unsent (so [1] matches
 * bytes queued, as the payload counter counts them). */
void conn_hub_wire_bytes(const struct conn_hub *hub, uint64_t out[2]);
/* Close every connection still open (each owner's on_close runs), free
 * those already closed, then the hub.  NULL does nothing. */
void conn_hub_free(struct conn_hub *hub);
/* Free the connections closed so far (the reaper does this on its own). */
void conn_hub_reap(struct conn_hub *hub);

/* An accepted socket: the transport is sniffed from its first bytes.  The
 * conn owns `fd` from here on; on failure (NULL) fd is closed. */
struct conn *conn_accept(struct conn_hub *hub, int fd, const struct sockaddr *sa,
			 socklen_t len, void *owner);
/* How an outgoing connection starts. */
enum conn_start {
	CONN_START_PLAIN,     /* plain BitTorrent */
	CONN_START_ENCRYPTED, /* a shoal hello offering the hub's ciphers */
	CONN_START_LEGACY,    /* a shoal hello offering nothing (flags 00): what a
			       * shoal from before cipher negotiation accepts */
};

/* Dial `sa`.  Encrypted starts are bound to `info_hash` (ignored for
 * plain).  NULL if the dial cannot start. */
struct conn *conn_connect(struct conn_hub *hub, const struct sockaddr *sa, socklen_t len,
			  enum conn_start start, const uint8_t info_hash[CRYPT_INFO_HASH_LEN],
			  void *owner);

/* Close (see the contract above).  `why` is for the log. */
void conn_close(struct conn *c, const char *why);
/* Close a connection whose handshake took too long.  An outgoing one still
 * waiting for the answer to its encrypted hello counts as refused
 * (on_close's crypt_refused): a client that only speaks BitTorrent may
 * wait for more bytes instead of closing (aria2 reads them as the start
 * of an MSE handshake), and the owner may retry in plain. */
void conn_close_timeout(struct conn *c, const char *why);

/* Queue a || b (either may be empty) to be sent, sealed when encrypted.
 * The bytes are copied (or sealed) before the call returns: the caller
 * keeps its buffers.  (With crypto threads the sealing may happen later,
 * and a failure of it closes the connection then.)  0, -ENOTCONN (closed), -ENOBUFS (dropped: see the
 * contract), -ENOMEM or -EIO. */
int conn_send(struct conn *c, const void *a, size_t alen, const void *b, size_t blen);
/* Queue one message that lies inside `owner` (a malloc'd block).  The conn
 * takes `owner` whatever happens: freed once the bytes are sent (plain: no
 * copy), once sealed (encrypted), or at once on failure. */
int conn_send_owned(struct conn *c, const void *msg, size_t len, void *owner);

/* Unsent bytes queued (with crypto threads: also plaintext being sealed). */
size_t conn_outbuf_len(const struct conn *c);
/* Call on_writable when unsent bytes drop to `n`. */
void conn_set_write_lowmark(struct conn *c, size_t n);
/* Read the socket ourselves in CONN_MAX_SINGLE_IO gulps (true), or through
 * the bufferevent so libevent's rate limits apply (false).  libevent 2.1
 * reads at most 4 KiB per call, which made reading the leecher's
 * bottleneck. */
void conn_set_fast_read(struct conn *c, bool fast);
/* Give the connection its own token buckets (bytes/s; 0/0: none), on top
 * of the hub's group.  0, or -ENOMEM with the old buckets still in force. */
int conn_set_limit(struct conn *c, uint64_t up, uint64_t down);
/* The torrent's piece count, once known (see wire_decoder_set_num_pieces). */
void conn_set_num_pieces(struct conn *c, uint32_t n);

bool conn_encrypted(const struct conn *c);
/* The encrypted transport's record cipher ("aes256gcm",
 * "xchacha20poly1305"), or NULL: plain, or not chosen yet. */
const char *conn_cipher_name(const struct conn *c);
/* Outgoing and encrypted: did our hello offer more than XChaCha20-Poly1305?
 * (Valid inside on_close: an older shoal refuses such a hello by closing.) */
bool conn_offered_ciphers(const struct conn *c);
/* The 32-byte info-hash the encrypted transport is bound to, or NULL. */
const uint8_t *conn_crypt_info_hash(const struct conn *c);
/* Messages with ids the wire codec does not know, skipped so far. */
uint64_t conn_skipped(const struct conn *c);
/* now_ms() of the TCP connect (incoming: of the accept), of the last whole
 * message received, and of the last bytes queued. */
uint64_t conn_connected_ms(const struct conn *c);
uint64_t conn_last_recv_ms(const struct conn *c);
uint64_t conn_last_send_ms(const struct conn *c);

#endif
