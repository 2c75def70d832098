/* dht.h: the Mainline DHT (BEP 5, single-family instances, BEP 32 for IPv6)
 * as a library without I/O: the embedder moves datagrams and tells the time.
 *
 * One `struct dht` speaks one address family.  It never opens a socket and
 * never reads a clock: every entry point takes `now_ms` from one monotonic
 * millisecond clock of the embedder's choosing, and outgoing datagrams leave
 * through the `send` callback.  Instances share nothing, so a process (or a
 * test) may run as many as it likes.  Nothing here is thread-safe: call one
 * instance from one thread.
 *
 * Callbacks may start new lookups (dht_get_peers) but must not call dht_free
 * on the instance that is calling them. */
#ifndef SHOAL_DHT_DHT_H
#define SHOAL_DHT_DHT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define DHT_ID_LEN 20

struct dht;

/* Provided by the embedder.  `ctx` is the pointer given to dht_new. */
struct dht_lookup_summary {
	int status;            /* 0, or -ETIMEDOUT when no node ever answered */
	unsigned responded;    /* nodes that answered the lookup's queries */
	unsigned queries;      /* get_peers / find_node queries sent */
	unsigned hops;         /* path length to the closest node that answered */
	unsigned peers;        /* peers delivered through peers_found (with repeats) */
	unsigned announced;    /* announce_peer queries acknowledged */
	uint64_t elapsed_ms;   /* from dht_get_peers to completion */
};

struct dht_callbacks {
	/* Send one datagram.  Return 0 or a negative errno; a failure is treated
	 * like a lost packet.  Required. */
	int (*send)(void *ctx, const struct sockaddr *to, socklen_t to_len, const uint8_t *buf,
		    size_t n);
	/* Peers for `key` found by a lookup started with dht_get_peers, delivered
	 * as each answer arrives (the same peer may come more than once).
	 * `peers` is only valid during the call.  Optional. */
	void (*peers_found)(void *ctx, const uint8_t key[DHT_ID_LEN],
			    const struct sockaddr_storage *peers, size_t n);
	/* The lookup for `key` has finished (and announced, if asked).  Optional. */
	void (*lookup_done)(void *ctx, const uint8_t key[DHT_ID_LEN],
			    const struct dht_lookup_summary *summary);
	/* Fill `buf` with `n` random bytes.  NULL means libsodium's randombytes;
	 * tests and simulations pass a seeded generator to be reproducible. */
	void (*random_bytes)(void *ctx, void *buf, size_t n);
	/* BEP 42: a node answering one of our queries says how it sees us:
	 * `ip` is 4 (AF_INET) or 16 (AF_INET6) bytes, valid during the call;
	 * `voter` is that node's address.  Optional. */
	void (*external_addr)(void *ctx, const struct sockaddr *voter, socklen_t voter_len,
			      int family, const uint8_t *ip);
};

/* Tunables.  Fill with dht_config_default, then change what you need. */
struct dht_config {
	bool has_id;                 /* use `id`; otherwise a random one */
	uint8_t id[DHT_ID_LEN];
	int family;                  /* AF_INET (default) or AF_INET6 */
	uint16_t port;               /* our UDP port, announced when implied_port is off */
	unsigned max_lookups;        /* concurrent lookups started by the embedder */
	unsigned max_transactions;   /* queries in flight at once (<= 65535) */
	unsigned store_max_keys;     /* info-hashes we keep peers for */
	unsigned store_max_per_key;  /* peers kept per info-hash */
	unsigned store_max_peers;    /* peers kept in total */
	uint32_t rate_per_s;         /* per-source packets per second; 0 = no limit */
	uint32_t rate_burst;         /* per-source burst */
	bool rate_key_port;          /* count sources per (IP, port), not per IP:
				      * for simulations where every node is 127.0.0.1 */
	uint32_t global_rate_per_s;  /* all packets together; 0 = no limit */
};

/* Defaults: random id, AF_INET, 16 lookups, 256 transactions, 2048 keys,
 * 100 peers per key, 16384 peers, 20 packets/s per IP with a burst of 60,
 * no global limit. */
void dht_config_default(struct dht_config *cfg);

/* A new instance, or NULL if out of memory, libsodium failed to start, or
 * `cfg`/`cb` is invalid (cb->send NULL, unknown family).  `cfg` and `cb` are
 * copied; `ctx` is passed back to every callback.  Free with dht_free. */
struct dht *dht_new(const struct dht_config *cfg, const struct dht_callbacks *cb, void *ctx);

/* Release the instance.  Running lookups end without callbacks.  NULL is ok. */
void dht_free(struct dht *dht);

/* Feed one received datagram.  Returns 0 when it was handled, or why it was
 * dropped: -EAFNOSUPPORT (other family or bad address), -EMSGSIZE (too big),
 * -EAGAIN (rate limited), -EILSEQ (malformed), -ENOENT (a reply nobody waited
 * for).  Dropping is normal on the Internet; the result is for tests and
 * statistics, the caller need not act on it. */
int dht_receive(struct dht *dht, const struct sockaddr *from, socklen_t from_len,
		const uint8_t *buf, size_t n, uint64_t now_ms);

/* Time-driven work: query timeouts and retries, lookup progress, bootstrap
 * and bucket refresh, token secret rotation, peer expiry.  Call it when the
 * `*wait_ms_out` milliseconds it asks for have passed (never more than one
 * second) and after starting lookups.  Returns 0. */
int dht_periodic(struct dht *dht, uint64_t now_ms, uint64_t *wait_ms_out);

/* Start an iterative get_peers lookup for `key` (BEP 5: alpha = 3 queries in
 * flight, converging on the k = 8 closest nodes).  Peers arrive through
 * peers_found; lookup_done ends it.  With `announce`, announce_peer is then
 * sent to those closest nodes, with `port` or, if `implied_port`, the
 * source port of our datagrams.  Returns 0, -EALREADY if a lookup for `key`
 * is running, -ENOSPC at max_lookups, -ENETUNREACH if the routing table is
 * empty (bootstrap first), -EINVAL (announce without a port), -ENOMEM.
 * lookup_done may run before this returns if no query could be sent. */
int dht_get_peers(struct dht *dht, const uint8_t key[DHT_ID_LEN], bool announce, uint16_t port,
		  bool implied_port, uint64_t now_ms) __attribute__((warn_unused_result));

/* Ping `sa` (a bootstrap node, address only).  When it answers it enters the
 * routing table and, while the table is nearly empty, a lookup of our own
 * id fills it.  Returns 0, -EAFNOSUPPORT, -EAGAIN (no free transaction). */
int dht_ping_node(struct dht *dht, const struct sockaddr *sa, socklen_t sa_len, uint64_t now_ms)
	__attribute__((warn_unused_result));

/* Put a node we knew before (e.g. loaded from the database) into the routing
 * table as "questionable": it is used by lookups and becomes good once it
 * answers.  Returns 0, -EEXIST (already known), -ENOSPC (its bucket is full),
 * -EAFNOSUPPORT, -EINVAL (our own id). */
int dht_add_node(struct dht *dht, const uint8_t id[DHT_ID_LEN], const struct sockaddr *sa,
		 socklen_t sa_len, uint64_t now_ms) __attribute__((warn_unused_result));

/* One routing table entry, for saving and restoring the table. */
struct dht_node_info {
	uint8_t id[DHT_ID_LEN];
	struct sockaddr_storage addr;
	bool good;
};

/* Copy up to `cap` non-bad routing table entries, good ones first, into
 * `out`; returns how many were written.  Restore them with dht_add_node. */
size_t dht_export_nodes(const struct dht *dht, struct dht_node_info *out, size_t cap,
			uint64_t now_ms);

/* The query methods, as the stats count them. */
enum dht_method { DHT_PING, DHT_FIND_NODE, DHT_GET_PEERS, DHT_ANNOUNCE_PEER, DHT_METHODS };
/* How a query we sent ended: a reply, an error reply, no answer in time
 * (each unanswered try of a resent ping counts). */
enum dht_result { DHT_RESULT_OK, DHT_RESULT_ERROR, DHT_RESULT_TIMEOUT, DHT_RESULTS };

struct dht_stats {
	uint8_t id[DHT_ID_LEN];
	int family;
	size_t nodes_good;       /* answered within 15 minutes */
	size_t nodes_total;      /* good + questionable (bad ones are not counted) */
	size_t buckets;
	size_t lookups_running;  /* embedder lookups and internal ones */
	uint64_t lookups_done;   /* embedder lookups finished */
	size_t keys_stored;
	size_t peers_stored;
	uint64_t packets_in, packets_out;
	uint64_t queries_in;     /* valid queries answered */
	uint64_t malformed;      /* dropped as undecodable or invalid */
	uint64_t rate_limited;   /* dropped by the per-source or global limit */
	uint64_t unexpected;     /* replies matching no transaction */
	uint64_t timeouts;       /* queries that got no answer */
	uint64_t sent[DHT_METHODS][DHT_RESULTS]; /* our queries, by how they ended */
	uint64_t received[DHT_METHODS][2]; /* queries of others: [0] answered,
					    * [1] refused with an error */
	size_t memory_bytes;     /* heap held by the instance */
};

/* Fill `out` with current figures. */
void dht_get_stats(const struct dht *dht, struct dht_stats *out, uint64_t now_ms);

#endif
