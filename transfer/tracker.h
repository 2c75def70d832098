/* tracker.h: the BitTorrent tracker protocols as a pure codec: HTTP(S)
 * announce and scrape (BEP 3, compact peers BEP 23, IPv6 peers BEP 7,
 * the scrape URL rule BEP 48), UDP trackers (BEP 15), announce-list tiers
 * (BEP 12) read from and written into a .torrent, and tracker URLs.
 *
 * Nothing here does I/O or keeps time: node/trackers.c owns the sockets,
 * the timers and the retries, and feeds these functions bytes.  Every
 * answer is hostile input: each parser works on [p, end), never needs a
 * NUL, and holds what it keeps to the ceilings below, so a tracker that
 * returns a megabyte of garbage or a million peers costs a bounded amount
 * of memory and an error, never a crash. */
#ifndef SHOAL_TRANSFER_TRACKER_H
#define SHOAL_TRANSFER_TRACKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

#define TRACKER_HASH_LEN 20      /* v1 info-hash, or a v2 one truncated (BEP 52) */
#define TRACKER_PEER_ID_LEN 20
#define TRACKER_MAX_URL 512u     /* bytes in one announce URL (as magnet tr=) */
#define TRACKER_MAX_HOST 255u    /* a DNS name's ceiling */
#define TRACKER_MAX_TRACKERS 32u /* per swarm: more in a torrent are ignored */
#define TRACKER_MAX_TIER 255u    /* tiers are numbered 0..this */
#define TRACKER_MAX_BODY (1u << 20) /* an HTTP answer larger than this is refused */
#define TRACKER_MAX_PEERS 10000u /* peers kept from one answer; the rest are counted */
#define TRACKER_MAX_MESSAGE 255u /* bytes of a failure reason or warning kept */
#define TRACKER_MAX_TRACKER_ID 64u /* bytes of a "tracker id" kept */
/* Bencode values in one HTTP answer: 10,000 dict-model peers take 70,001.
 * The node array costs about 56 bytes a value. */
#define TRACKER_MAX_NODES 131072u

/* Specific errors (negative, below the errno range). */
enum tracker_error {
	TRACKER_E_URL = -1200,     /* not a tracker URL we can use */
	TRACKER_E_SCHEME,          /* a scheme other than http, https or udp */
	TRACKER_E_BENCODE,         /* the answer is not bencode, or not a dict */
	TRACKER_E_TOO_BIG,         /* the answer is over a ceiling */
	TRACKER_E_FIELD,           /* a known key holds the wrong type or a bad value */
	TRACKER_E_NO_PEERS,        /* an announce answer without "peers" nor a failure */
	TRACKER_E_SHORT,           /* a UDP packet shorter than its action needs */
	TRACKER_E_ACTION,          /* a UDP action we did not ask for */
	TRACKER_E_NO_SCRAPE,       /* the URL has no scrape counterpart (BEP 48) */
};

/* A short English description of an error from this module.  Never NULL. */
const char *tracker_strerror(int err);

/* ------------------------------------------------------------ URLs */

enum tracker_scheme { TRACKER_HTTP, TRACKER_HTTPS, TRACKER_UDP };

struct tracker_url {
	enum tracker_scheme scheme;
	char host[TRACKER_MAX_HOST + 1]; /* a name or a numeric address, no brackets */
	bool host_v6;                    /* the host was a bracketed IPv6 literal */
	uint16_t port;                   /* 80 / 443 when not given; UDP needs one */
	char path[TRACKER_MAX_URL + 1];  /* from the first '/' (query included), or "/" */
};

/* Split "http://host[:port]/path?query", "https://..." or "udp://host:port[/...]"
 * (scheme case-insensitive, IPv6 hosts in brackets).  Refused: another
 * scheme (TRACKER_E_SCHEME), user info, a fragment, an empty host, port 0,
 * a missing UDP port, longer than TRACKER_MAX_URL, or any byte that is not
 * printable ASCII (TRACKER_E_URL).  Returns 0 or the error; `out` is zeroed
 * on error. */
int tracker_url_parse(const char *url, struct tracker_url *out) __attribute__((warn_unused_result));

/* ------------------------------------------------------------ lists */

/* One swarm's trackers in BEP 12 tiers: `tier` 0 first, and within a tier
 * in the order they are tried. */
struct tracker_entry {
	unsigned tier;
	char url[TRACKER_MAX_URL + 1];
};
struct tracker_list {
	size_t count;
	struct tracker_entry e[TRACKER_MAX_TRACKERS];
	size_t dropped;  /* URLs left out: unusable, duplicate, or over the ceiling */
};

/* Append `url` in `tier` unless the list holds it already (returns 1), it
 * is not a URL tracker_url_parse accepts (its error), the tier is over
 * TRACKER_MAX_TIER (-ERANGE) or the list is full (-ENOSPC).  0 when added. */
int tracker_list_add(struct tracker_list *l, unsigned tier, const char *url)
	__attribute__((warn_unused_result));

/* Read "announce" and "announce-list" from a whole .torrent in [p, end):
 * announce-list's tiers in order when it is there and holds a usable URL
 * (BEP 12 says "announce" is then ignored), else "announce" as tier 0.  Any
 * other key, the info dict included, is skipped without being parsed.
 * URLs that are unusable or over the ceilings are counted in `dropped`.
 * Returns 0 (also with no tracker at all), or TRACKER_E_BENCODE when the
 * top level is not a dict or a value is malformed; `out` is filled anew. */
int tracker_list_from_torrent(const uint8_t *p, const uint8_t *end, struct tracker_list *out)
	__attribute__((warn_unused_result));

/* Write the .torrent in [p, end) again into `out` with "announce" (the
 * first tracker) and "announce-list" (one list per tier) set from `l`, in
 * their sorted place among the top-level keys; any old ones are dropped,
 * every other key is copied byte for byte (so the info-hash stays).  An
 * empty `l` removes both.  Returns 0, TRACKER_E_BENCODE, or buf_append's
 * -EMSGSIZE / -ENOMEM. */
int tracker_torrent_set(const uint8_t *p, const uint8_t *end, const struct tracker_list *l,
			struct buf *out) __attribute__((warn_unused_result));

/* ------------------------------------------------------------ announces */

enum tracker_event {
	TRACKER_EVENT_NONE = 0, /* a regular announce */
	TRACKER_EVENT_COMPLETED = 1,
	TRACKER_EVENT_STARTED = 2,
	TRACKER_EVENT_STOPPED = 3, /* numbered as BEP 15 numbers them */
};
const char *tracker_event_name(enum tracker_event ev); /* "started", ..., "" */

struct tracker_announce {
	uint8_t info_hash[TRACKER_HASH_LEN];
	uint8_t peer_id[TRACKER_PEER_ID_LEN];
	uint16_t port;
	uint64_t uploaded, downloaded, left;
	enum tracker_event event;
	uint32_t numwant;
	uint32_t key;            /* random per daemon: lets a tracker know us across IPs */
	const char *tracker_id;  /* HTTP: the "tracker id" it gave us, or NULL */
};

/* One peer from an answer: 4 or 16 address bytes. */
struct tracker_peer {
	uint8_t family;          /* 4 or 6 */
	uint8_t addr[16];
	uint16_t port;
};

/* What an announce or a scrape told us.  -1: not in the answer. */
struct tracker_reply {
	bool failed;                          /* "failure reason" (or UDP error) */
	char message[TRACKER_MAX_MESSAGE + 1]; /* the reason, printable ASCII */
	char warning[TRACKER_MAX_MESSAGE + 1];
	char tracker_id[TRACKER_MAX_TRACKER_ID + 1];
	int64_t interval, min_interval;       /* seconds */
	int64_t complete, incomplete, downloaded; /* seeders, leechers, completions */
	struct tracker_peer *peers;           /* owned (tracker_reply_destroy) */
	size_t peer_count;
	size_t peers_dropped;                 /* over TRACKER_MAX_PEERS, port 0, bad "ip" */
};
void tracker_reply_init(struct tracker_reply *r);
void tracker_reply_destroy(struct tracker_reply *r);

/* The announce URL with the BEP 3 query appended ('?' or '&' as the URL
 * needs): info_hash and peer_id percent-encoded byte by byte, port,
 * uploaded, downloaded, left, compact=1, numwant, key, event when not NONE,
 * trackerid when given.  Appends to `out`; 0, -EINVAL or buf_append's
 * errors. */
int tracker_http_announce_url(const char *announce_url, const struct tracker_announce *a,
			      struct buf *out) __attribute__((warn_unused_result));

/* The scrape URL (BEP 48: the last '/' must be followed by "announce",
 * which becomes "scrape") with info_hash appended.  TRACKER_E_NO_SCRAPE
 * when the rule does not apply. */
int tracker_http_scrape_url(const char *announce_url, const uint8_t info_hash[TRACKER_HASH_LEN],
			    struct buf *out) __attribute__((warn_unused_result));

/* Parse an HTTP announce answer (a bencoded dict).  A "failure reason"
 * makes a reply with failed = true (return 0: the tracker answered).
 * Peers come from "peers" (compact, 6 bytes each, or a list of dicts with
 * a numeric "ip" and "port") and "peers6" (18 bytes each); at most
 * TRACKER_MAX_PEERS are kept.  Unknown keys are ignored.  Returns 0 or an
 * error (TRACKER_E_BENCODE, TRACKER_E_TOO_BIG, TRACKER_E_FIELD,
 * TRACKER_E_NO_PEERS, -ENOMEM); `out` (initialised) holds what was read. */
int tracker_http_parse_announce(const uint8_t *p, const uint8_t *end, struct tracker_reply *out)
	__attribute__((warn_unused_result));

/* Parse an HTTP scrape answer: {"files": {<20-byte hash>: {"complete",
 * "incomplete", "downloaded"}}}, or a failure reason.  Fills complete,
 * incomplete and downloaded of the entry for `info_hash` (-1 when it is not
 * there).  Returns 0 or an error as above. */
int tracker_http_parse_scrape(const uint8_t *p, const uint8_t *end,
			      const uint8_t info_hash[TRACKER_HASH_LEN], struct tracker_reply *out)
	__attribute__((warn_unused_result));

/* ------------------------------------------------------------ UDP (BEP 15) */

#define TRACKER_UDP_MAGIC 0x41727101980ull /* the connect request's protocol id */
#define TRACKER_UDP_CONNECT_LEN 16u
#define TRACKER_UDP_ANNOUNCE_LEN 98u
#define TRACKER_UDP_SCRAPE_LEN 36u        /* one info-hash */
#define TRACKER_UDP_MAX_PACKET 2048u      /* larger answers are cut: peers beyond it are not read */

enum tracker_udp_action {
	TRACKER_UDP_CONNECT = 0,
	TRACKER_UDP_ANNOUNCE = 1,
	TRACKER_UDP_SCRAPE = 2,
	TRACKER_UDP_ERROR = 3,
};

/* Requests, written into `out` (at least the _LEN above); each returns the
 * length written. */
size_t tracker_udp_connect_req(uint8_t out[TRACKER_UDP_CONNECT_LEN], uint32_t transaction_id);
size_t tracker_udp_announce_req(uint8_t out[TRACKER_UDP_ANNOUNCE_LEN], uint64_t connection_id,
				uint32_t transaction_id, const struct tracker_announce *a);
size_t tracker_udp_scrape_req(uint8_t out[TRACKER_UDP_SCRAPE_LEN], uint64_t connection_id,
			      uint32_t transaction_id, const uint8_t info_hash[TRACKER_HASH_LEN]);

/* The action and transaction id of any answer (8 bytes at least): the
 * runtime matches them to what it sent before reading on.  0 or
 * TRACKER_E_SHORT. */
int tracker_udp_header(const uint8_t *p, const uint8_t *end, uint32_t *action_out,
		       uint32_t *transaction_id_out) __attribute__((warn_unused_result));

/* A connect answer: the connection id.  0, TRACKER_E_SHORT or
 * TRACKER_E_ACTION (the caller has checked the transaction id). */
int tracker_udp_parse_connect(const uint8_t *p, const uint8_t *end, uint64_t *connection_id_out)
	__attribute__((warn_unused_result));

/* An announce (`expect` TRACKER_UDP_ANNOUNCE: interval, leechers, seeders,
 * then peers of `family` 4 or 6: 6 or 18 bytes each, the family of the
 * socket the answer came on) or scrape (TRACKER_UDP_SCRAPE: seeders,
 * completed, leechers of the one hash asked) answer, or an error answer
 * (action 3: failed and message set, return 0).  A trailing partial peer
 * is ignored.  Returns 0, TRACKER_E_SHORT, TRACKER_E_ACTION or -ENOMEM. */
int tracker_udp_parse_reply(const uint8_t *p, const uint8_t *end, enum tracker_udp_action expect,
			    int family, struct tracker_reply *out) __attribute__((warn_unused_result));

/* "1.2.3.4" or "2001:db8::1" of a peer into `out` (46 bytes is enough). */
void tracker_peer_host(const struct tracker_peer *peer, char *out, size_t out_len);

#endif
