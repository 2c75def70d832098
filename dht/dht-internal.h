/* dht-internal.h: the DHT's building blocks (ids, addresses, routing table,
 * tokens, peer store, rate limiter, KRPC codec), exposed to dht.c and tests. */
#ifndef SHOAL_DHT_DHT_INTERNAL_H
#define SHOAL_DHT_DHT_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "common/bencode.h"
#include "common/buf.h"
#include "dht/dht.h"

/* ---- Constants (BEP 5 unless noted; overridable at compile time) ---- */
#ifndef DHT_K
#define DHT_K 8 /* bucket size and lookup width */
#endif
#ifndef DHT_ALPHA
#define DHT_ALPHA 3 /* lookup queries in flight */
#endif
#define DHT_REPL 4                          /* replacement candidates per bucket */
#define DHT_MAX_BUCKETS 160                 /* one per bit of the id */
#define DHT_GOOD_MS (15ULL * 60 * 1000)     /* the 15-minute rule */
#define DHT_REFRESH_MS (15ULL * 60 * 1000)  /* refresh buckets unchanged this long */
#define DHT_REFRESH_EMPTY_MS (5ULL * 60 * 1000) /* ... or empty this long */
#define DHT_MAX_FAILS 2                     /* unanswered queries in a row: bad */
#define DHT_QUERY_TIMEOUT_MS 2000
#define DHT_PING_RETRIES 1                  /* pings are resent once; lookups move on */
#define DHT_TICK_MS 1000                    /* longest sleep dht_periodic asks for */
#define DHT_MAINT_MS 5000                   /* bootstrap / refresh / expiry checks */
#define DHT_BOOTSTRAP_MS 30000              /* self-lookup spacing while short of nodes */
#define DHT_TOKEN_ROTATE_MS (5ULL * 60 * 1000)
#define DHT_TOKEN_LEN 8
#define DHT_MAX_TOKEN 32                    /* longest token we keep from others */
#define DHT_PEER_TTL_MS (30ULL * 60 * 1000)
#define DHT_MAX_VALUES 50                   /* values per get_peers reply */
#define DHT_LOOKUP_CANDS 32                 /* candidates a lookup remembers */
#define DHT_LOOKUP_MAX_QUERIES 128          /* hard cap per lookup */
#define DHT_MAX_PACKET 1500                 /* larger datagrams are dropped */
#define DHT_RL_SETS 128                     /* rate limiter: sets ... */
#define DHT_RL_WAYS 4                       /* ... of this many sources */

/* ---- Ids: 160-bit numbers under the XOR metric ---- */

/* <0, 0, >0 as `a` is closer to, as close to, or farther from `target` than `b`. */
int dht_id_cmp_dist(const uint8_t target[DHT_ID_LEN], const uint8_t a[DHT_ID_LEN],
		    const uint8_t b[DHT_ID_LEN]);
/* Number of leading bits `a` and `b` share: 0..160. */
unsigned dht_id_prefix(const uint8_t a[DHT_ID_LEN], const uint8_t b[DHT_ID_LEN]);
/* `out` = a XOR b. */
void dht_id_xor(uint8_t out[DHT_ID_LEN], const uint8_t a[DHT_ID_LEN], const uint8_t b[DHT_ID_LEN]);

/* ---- Addresses: a compact, comparable form of an IPv4/IPv6 UDP endpoint ---- */
struct dht_addr {
	uint16_t family; /* AF_INET or AF_INET6 */
	uint16_t port;   /* host order */
	uint8_t ip[16];  /* IPv4 uses the first 4 bytes; the rest stay zero */
};

/* Parse a sockaddr; IPv4-mapped IPv6 becomes IPv4.  Returns 0 or -EAFNOSUPPORT
 * (unknown family, short length, port 0). */
int dht_addr_from_sa(struct dht_addr *out, const struct sockaddr *sa, socklen_t len)
	__attribute__((warn_unused_result));
/* Fill `ss`; returns the sockaddr length. */
socklen_t dht_addr_to_sa(const struct dht_addr *a, struct sockaddr_storage *ss);
bool dht_addr_eq(const struct dht_addr *a, const struct dht_addr *b);
/* Length of the IP bytes: 4 or 16. */
size_t dht_addr_iplen(const struct dht_addr *a);

/* ---- Routing table (BEP 5 "Routing Table") ---- */
enum { DHT_NODE_REPLIED = 1, DHT_NODE_QUERIED = 2 };

struct dht_node {
	uint8_t id[DHT_ID_LEN];
	struct dht_addr addr;
	uint64_t last_reply; /* valid if flags & DHT_NODE_REPLIED */
	uint64_t last_query; /* valid if flags & DHT_NODE_QUERIED */
	uint64_t pinged_at;  /* last replacement ping we sent it */
	uint8_t flags;
	uint8_t fails;       /* unanswered queries in a row */
};

struct dht_bucket {
	struct dht_node nodes[DHT_K];
	struct dht_node repl[DHT_REPL]; /* candidates, newest last */
	uint8_t n, nrepl;
	bool need_refresh; /* set after joining: look up a random id in it soon */
	uint64_t last_changed;
};

struct dht_table {
	uint8_t self[DHT_ID_LEN];
	struct dht_bucket *b; /* b[i] holds ids sharing exactly i prefix bits
			       * with self; the last bucket holds all the rest */
	size_t nb, cap;
};

enum dht_seen { DHT_SEEN_REPLY, DHT_SEEN_QUERY, DHT_SEEN_UNVERIFIED };

bool dht_node_good(const struct dht_node *n, uint64_t now);
bool dht_node_bad(const struct dht_node *n);

/* Start a table with one empty bucket.  Returns 0 or -ENOMEM. */
int dht_table_init(struct dht_table *t, const uint8_t self[DHT_ID_LEN])
	__attribute__((warn_unused_result));
void dht_table_destroy(struct dht_table *t);
size_t dht_table_bucket_of(const struct dht_table *t, const uint8_t id[DHT_ID_LEN]);
struct dht_node *dht_table_find(struct dht_table *t, const uint8_t id[DHT_ID_LEN]);

/* Record that node (id, addr) replied to us, queried us, or was handed to us
 * unverified.  Inserts it when there is room (splitting our own bucket as
 * Kademlia does, or replacing a bad node), otherwise keeps it as a
 * replacement candidate and, if a questionable node of that bucket is due a
 * check, copies that node to `*ping_out` and returns 1.
 * Returns 0 (in the table), 1 (ping *ping_out), -EEXIST (id already there
 * under another address: ignored), -ENOSPC (kept as candidate or dropped),
 * -EINVAL (our own id), -ENOMEM. */
int dht_table_seen(struct dht_table *t, const uint8_t id[DHT_ID_LEN], const struct dht_addr *addr,
		   enum dht_seen how, uint64_t now, struct dht_node *ping_out)
	__attribute__((warn_unused_result));

/* A query to (id, addr) went unanswered.  After DHT_MAX_FAILS in a row the
 * node is bad and the freshest replacement candidate takes its place. */
void dht_table_failed(struct dht_table *t, const uint8_t id[DHT_ID_LEN],
		      const struct dht_addr *addr);

/* Up to `max` non-bad nodes closest to `target`, closest first, into `out`.
 * Returns the count. */
size_t dht_table_closest(const struct dht_table *t, const uint8_t target[DHT_ID_LEN],
			 struct dht_node *out, size_t max);

/* Counts of good and non-bad nodes. */
void dht_table_count(const struct dht_table *t, uint64_t now, size_t *good_out, size_t *total_out);

/* A random id that falls in bucket `i` (for refresh lookups). */
void dht_table_random_in_bucket(const struct dht_table *t, size_t i, const uint8_t rnd[DHT_ID_LEN],
				uint8_t out[DHT_ID_LEN]);

/* ---- Tokens (BEP 5 "announce_peer") ----
 * token = BLAKE2b-128(key = secret, message = requester IP bytes), first
 * DHT_TOKEN_LEN bytes.  The secret rotates every DHT_TOKEN_ROTATE_MS counted
 * from dht_tokens_init; the current and the previous secret are accepted,
 * so a token handed out t ms after a rotation is valid for
 * 2 * DHT_TOKEN_ROTATE_MS - t ms: between 5 and 10 minutes. */
struct dht_tokens {
	uint8_t secret[2][32]; /* [0] current, [1] previous */
	uint64_t rotated_at;
	bool have_prev;
};

typedef void (*dht_random_fn)(void *ctx, void *buf, size_t n);

void dht_tokens_init(struct dht_tokens *tk, uint64_t now, dht_random_fn rnd, void *rctx);
/* Rotate as many times as the clock says is due. */
void dht_tokens_advance(struct dht_tokens *tk, uint64_t now, dht_random_fn rnd, void *rctx);
void dht_token_make(const struct dht_tokens *tk, const struct dht_addr *a,
		    uint8_t out[DHT_TOKEN_LEN]);
/* True if `tok` is what we handed `a` under the current or previous secret.
 * Call dht_tokens_advance(now) first. */
bool dht_token_check(const struct dht_tokens *tk, const struct dht_addr *a, const uint8_t *tok,
		     size_t len);

/* ---- Peer store: announced peers per info-hash, bounded and expiring ---- */
struct dht_store_peer {
	struct dht_addr addr;
	uint64_t expires;
};

struct dht_store_key {
	uint8_t key[DHT_ID_LEN];
	struct dht_store_key *next; /* hash chain */
	struct dht_store_peer *peers;
	uint32_t n, cap;
};

struct dht_store {
	struct dht_store_key **slots;
	size_t nslots;
	size_t keys, peers;
	size_t max_keys, max_per_key, max_peers;
	uint8_t hashkey[16];
	size_t bytes; /* heap held, for statistics */
};

/* Returns 0 or -ENOMEM. */
int dht_store_init(struct dht_store *s, size_t max_keys, size_t max_per_key, size_t max_peers,
		   const uint8_t hashkey[16]) __attribute__((warn_unused_result));
void dht_store_destroy(struct dht_store *s);
/* Add or refresh `peer` under `key` until now + DHT_PEER_TTL_MS.  A full key
 * drops its oldest peer.  Returns 0, -ENOSPC (too many keys or peers in
 * total), -ENOMEM. */
int dht_store_add(struct dht_store *s, const uint8_t key[DHT_ID_LEN],
		  const struct dht_addr *peer, uint64_t now) __attribute__((warn_unused_result));
/* Up to `max` live peers of `key`, starting at a rotating `offset` so that
 * big swarms are shared out fairly.  Returns the count. */
size_t dht_store_get(const struct dht_store *s, const uint8_t key[DHT_ID_LEN], uint64_t now,
		     size_t offset, struct dht_addr *out, size_t max);
/* Drop expired peers and empty keys. */
void dht_store_expire(struct dht_store *s, uint64_t now);

/* ---- Rate limiter: token buckets in a fixed set-associative table ---- */
struct dht_rl_slot {
	uint64_t key;     /* keyed hash of the source; 0 = empty */
	uint64_t last_ms;
	uint32_t tokens;  /* in thousandths of a packet */
};

struct dht_ratelimit {
	struct dht_rl_slot slots[DHT_RL_SETS][DHT_RL_WAYS];
	uint32_t rate, burst;
	bool key_port;
	uint8_t hashkey[16];
	struct dht_rl_slot global;
	uint32_t global_rate;
};

void dht_rl_init(struct dht_ratelimit *rl, uint32_t rate, uint32_t burst, bool key_port,
		 uint32_t global_rate, const uint8_t hashkey[16]);
/* True if a packet from `a` at `now` is within limits (and is counted). */
bool dht_rl_allow(struct dht_ratelimit *rl, const struct dht_addr *a, uint64_t now);

/* ---- KRPC codec (BEP 5 "KRPC Protocol") ---- */
enum krpc_y { KRPC_QUERY = 1, KRPC_RESPONSE, KRPC_ERROR };
enum krpc_q { KRPC_Q_UNKNOWN = 0, KRPC_PING, KRPC_FIND_NODE, KRPC_GET_PEERS, KRPC_ANNOUNCE_PEER };
enum { KRPC_E_GENERIC = 201, KRPC_E_SERVER = 202, KRPC_E_PROTOCOL = 203, KRPC_E_METHOD = 204 };

#define KRPC_MAX_TID 16     /* longer transaction ids are rejected */
#define KRPC_MAX_VALUES 100 /* values kept from one reply */
#define KRPC_MAX_BENC 320   /* bencode nodes one message may use */
#define KRPC_NODE4_LEN 26   /* compact node info: id + IPv4 + port */
#define KRPC_NODE6_LEN 38   /* id + IPv6 + port (BEP 32) */

/* A decoded message.  Pointers refer into the datagram. */
struct krpc_msg {
	enum krpc_y y;
	const uint8_t *tid;
	size_t tid_len;
	enum krpc_q q;              /* queries; KRPC_Q_UNKNOWN for other names */
	bool has_id;
	uint8_t id[DHT_ID_LEN];     /* a.id or r.id */
	bool has_target;
	uint8_t target[DHT_ID_LEN]; /* find_node target / get_peers, announce info_hash */
	bool has_port;
	uint16_t port;
	bool implied_port;
	bool read_only;             /* BEP 43 "ro" */
	const uint8_t *token;
	size_t token_len;
	const uint8_t *nodes;       /* whole compact entries only */
	size_t nodes_len;
	const uint8_t *nodes6;
	size_t nodes6_len;
	struct dht_addr values[KRPC_MAX_VALUES];
	size_t nvalues;
	int64_t ecode;
	const uint8_t *emsg;
	size_t emsg_len;
	/* BEP 42: the top-level "ip" of a response, how the responder sees
	 * us: compact IPv4 or IPv6 + port (6 or 18 bytes); NULL when absent
	 * or of another size (then ignored, the message still counts). */
	const uint8_t *ip;
	size_t ip_len;
};

/* Decode one KRPC message from [p, end).  Checks the structure each message
 * type needs: "t" and "y" always; "q" and an "a" dict for queries (the
 * arguments each method needs are checked by the caller, which must answer
 * 203); "r" with a 20-byte "id" for responses; "e" = [int, str] for errors.
 * Every present field must have its right type and size (ids 20 bytes, nodes
 * a multiple of 26, nodes6 of 38, values entries 6 or 18 bytes, port 1..65535).
 * Returns 0, -EILSEQ, or the bencode decoder's -E2BIG / -ELOOP / -EOVERFLOW. */
int krpc_decode(struct krpc_msg *m, const uint8_t *p, const uint8_t *end)
	__attribute__((warn_unused_result));

/* Query arguments for krpc_put_query; unused fields are ignored per method. */
struct krpc_query {
	enum krpc_q q;
	const uint8_t *id;
	const uint8_t *target;  /* find_node, get_peers, announce_peer */
	uint16_t port;          /* announce_peer */
	bool implied_port;      /* announce_peer */
	const uint8_t *token;   /* announce_peer */
	size_t token_len;
};

/* Encoders: append one whole message to `b`.  Return 0 or the buf error. */
int krpc_put_query(struct buf *b, const uint8_t *tid, size_t tid_len, const struct krpc_query *q)
	__attribute__((warn_unused_result));

struct krpc_reply {
	const struct dht_addr *ip; /* BEP 42: the querier as we see it; may be NULL */
	const uint8_t *id;
	const uint8_t *nodes;   /* compact, may be NULL */
	size_t nodes_len;
	const uint8_t *nodes6;
	size_t nodes6_len;
	const uint8_t *token;   /* may be NULL */
	size_t token_len;
	const struct dht_addr *values;
	size_t nvalues;
};
int krpc_put_reply(struct buf *b, const uint8_t *tid, size_t tid_len, const struct krpc_reply *r)
	__attribute__((warn_unused_result));
int krpc_put_error(struct buf *b, const uint8_t *tid, size_t tid_len, int code, const char *msg)
	__attribute__((warn_unused_result));

/* Compact node info (BEP 5; 38-byte IPv6 form from BEP 32): write one entry
 * of 26 or 38 bytes; read entry `i` of a list. */
size_t krpc_compact_node(uint8_t *out, const uint8_t id[DHT_ID_LEN], const struct dht_addr *a);
void krpc_read_node(const uint8_t *nodes, size_t entry_len, size_t i, uint8_t id_out[DHT_ID_LEN],
		    struct dht_addr *addr_out);

#endif
