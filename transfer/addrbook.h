/* addrbook.h: a swarm's address book (whom to dial, back-off, bans, caps); a core with no I/O. */
#ifndef SHOAL_TRANSFER_ADDRBOOK_H
#define SHOAL_TRANSFER_ADDRBOOK_H

/*
 * Every address a swarm learns (the DHT, peer exchange, the user, a
 * magnet's x.pe, a peer that connected to us and named its listen port)
 * lands here, and most of them come from peers we do not trust: one PEX
 * message carries 50 addresses, and a peer may send one every second.  So
 * the book is bounded, refuses what is malformed, and decides alone whom
 * the engine dials next; the engine owns sockets, the clock and SQLite
 * and passes `now` (milliseconds, any monotonic origin) and addresses in.
 *
 * Addresses are a small struct (family 4 or 6, 16 address bytes, port),
 * not struct sockaddr_storage: it has one meaning on every platform (no
 * sin6_flowinfo or scope id to compare, no ss_len), it is the shape of a
 * BEP 11 / BEP 5 compact peer, and a fuzzer can build one from bytes.
 * addrbook_addr_from_sockaddr() and addrbook_addr_to_sockaddr() convert.
 *
 * Entries are named by handles (uint64_t, never 0): a slot number and the
 * slot's generation.  An evicted entry's slot is reused with a new
 * generation, so a handle kept by a connection goes stale instead of
 * naming another address: every call given a stale handle returns -ENOENT
 * (or false) and changes nothing.
 *
 * Dialling and back-off.  A dial attempt is charged when it starts
 * (addrbook_dial): it counts one failure and forbids another dial for
 * addrbook_backoff_ms(failures before it); a successful handshake
 * (addrbook_succeeded) clears the count.  So `failures` is "dials in a
 * row that never reached a handshake", whether the connect was refused,
 * timed out or the peer hung up, and the caller need not tell which.
 * The entry is `connected` from addrbook_dial (or addrbook_set_connected
 * for a peer that dialled us) until addrbook_set_connected(.., false).
 *
 * Bans (docs/security.md, "Bans").  Three kinds, because a banned peer
 * chooses how it comes back:
 *   - a host: the IP alone, every port (addrbook_host_banned).  The engine
 *     refuses incoming connections from it;
 *   - a peer id (20 bytes), from any address (addrbook_id_banned);
 *   - an entry (IP and port): never a dial candidate, never evicted.
 * A host ban does not stop dials to other ports of that host: we dial only
 * addresses we were given, and several nodes may share an IP (a NAT, or
 * every daemon of a loopback test).  Host and id bans are rings of
 * ADDRBOOK_MAX_BANS each: past it, a new ban replaces the oldest.
 *
 * Candidates (addrbook_candidates) are the entries that are not
 * connected, not banned and whose back-off has expired at `now`, in this
 * order, which callers may rely on: fewest failures first (an address
 * that worked before is tried before one that keeps failing), then the
 * earliest next-allowed-dial time (the longest waiting), then the oldest
 * entry (the order addresses arrived in).
 *
 * Cap and eviction.  At most `cap` entries (addrbook_new).  When the book
 * is full, a new address takes the place of one entry that has failed at
 * least once and is not connected, not banned and not given by the user
 * (ADDRBOOK_SRC_USER or ADDRBOOK_SRC_MAGNET): the one with the most
 * failures, then the oldest.  If no entry qualifies the new address is
 * refused (-ENOSPC).  Banned and user-given entries are never evicted,
 * and neither is an address that works or was never tried: a flood of
 * made-up addresses can push out only addresses that already failed us,
 * never the ones a swarm depends on.
 *
 * Not thread-safe: one book is used from one thread (the event loop).
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* A BEP 3 peer id. */
#define ADDRBOOK_PEER_ID_LEN 20
/* Banned hosts, and banned peer ids, remembered at once (each a ring; the
 * oldest gives way).  A ban costs the banned peer a connection and a piece
 * of bad data, so 128 outlasts any honest swarm's liars; a determined
 * attacker with more than 128 hosts can be banned again when it comes back. */
#ifndef ADDRBOOK_MAX_BANS
#define ADDRBOOK_MAX_BANS 128u
#endif
/* The largest cap addrbook_new accepts: 65,536 entries of 64 bytes is
 * 4 MiB, a ceiling on what one swarm's peers can make us hold. */
#define ADDRBOOK_MAX_CAP 65536u
/* Back-off after a dial that reached no handshake: 2 s, doubling, at most
 * 5 minutes.  2 s is two engine ticks, soon enough that a peer restarting
 * or briefly full is found again at once; 5 minutes keeps a book full of
 * dead addresses (500 of them) at under two connect attempts a second,
 * while an address that comes back is retried within minutes. */
#define ADDRBOOK_BACKOFF_BASE_MS 2000u
#define ADDRBOOK_BACKOFF_MAX_MS 300000u

/* Where an address came from.  Keep in step with addrbook_source_name(). */
enum addrbook_source {
	ADDRBOOK_SRC_DHT,       /* a get_peers answer */
	ADDRBOOK_SRC_PEX,       /* a peer's BEP 11 message */
	ADDRBOOK_SRC_INCOMING,  /* a peer that dialled us, at its listen port */
	ADDRBOOK_SRC_USER,      /* --peer, the API */
	ADDRBOOK_SRC_MAGNET,    /* a magnet's x.pe: the user gave it too */
	ADDRBOOK_SRC_TRACKER,   /* an HTTP or UDP tracker's announce answer */
	ADDRBOOK_SRC_LSD,       /* a BEP 14 announce on the LAN (node/lsd.c) */
	ADDRBOOK_SRC_COUNT
};

struct addrbook_addr {
	uint8_t family;  /* 4 or 6 */
	uint8_t ip[16];  /* IPv4 in the first 4 bytes; the rest is ignored */
	uint16_t port;   /* host order; 0 only for a host ban, where it is ignored */
};

/* A copy of one entry, for the caller. */
struct addrbook_entry {
	struct addrbook_addr addr;
	enum addrbook_source source;
	uint32_t failures;      /* dials in a row without a handshake */
	uint64_t next_dial_ms;  /* no dial before this */
	bool connected;
	bool banned;
	bool plain_only;        /* an encrypted attempt failed: it speaks plain BitTorrent */
	bool legacy_hello;      /* a hello offering a cipher was refused: offer none */
};

struct addrbook;

/* Returns 0 and a book of at most `cap` entries in *out (free with
 * addrbook_free), -EINVAL for a cap of 0 or above ADDRBOOK_MAX_CAP, or
 * -ENOMEM. */
int addrbook_new(size_t cap, struct addrbook **out) __attribute__((warn_unused_result));
void addrbook_free(struct addrbook *ab);

size_t addrbook_count(const struct addrbook *ab);
size_t addrbook_cap(const struct addrbook *ab);

/* "dht", "pex", "incoming", "user", "magnet", "tracker" ("?" out of range). */
const char *addrbook_source_name(enum addrbook_source src);
/* The source named `name` (as addrbook_source_name spells it) into *out;
 * 0 or -EINVAL for another name. */
int addrbook_source_parse(const char *name, enum addrbook_source *out)
	__attribute__((warn_unused_result));

/* The address of an AF_INET or AF_INET6 sockaddr of `len` bytes into *out.
 * Returns 0, -EAFNOSUPPORT for another family, -EINVAL when `len` is too
 * short for its family. */
int addrbook_addr_from_sockaddr(const struct sockaddr *sa, socklen_t len, struct addrbook_addr *out)
	__attribute__((warn_unused_result));
/* The sockaddr of `a` into *out (zeroed first); returns its length, or 0
 * for a family other than 4 or 6. */
socklen_t addrbook_addr_to_sockaddr(const struct addrbook_addr *a, struct sockaddr_storage *out);

/* The back-off after `failures` earlier failed dials:
 * min(ADDRBOOK_BACKOFF_BASE_MS * 2^failures, ADDRBOOK_BACKOFF_MAX_MS). */
uint64_t addrbook_backoff_ms(uint32_t failures);

/* Remember `a`, learned from `src`; its handle into *handle_out (may be
 * NULL).  Returns
 *   0             a new entry: not connected, no failures, dialable at once;
 *   1             the address was known (same family, IP and port): the
 *                 entry is kept as it was, except that a source given by
 *                 the user (user, magnet) replaces another, and
 *                 "incoming" replaces dht and pex (it proved to exist);
 *   -EAFNOSUPPORT a family other than 4 or 6;
 *   -EINVAL       port 0, the unspecified address (0.0.0.0 or ::), or a
 *                 source out of range;
 *   -ENOSPC       the book is full and no entry may be evicted (above).
 * Nothing changes on an error. */
int addrbook_add(struct addrbook *ab, const struct addrbook_addr *a, enum addrbook_source src,
		 uint64_t *handle_out) __attribute__((warn_unused_result));

/* The handle of the entry for `a` (family, IP and port), or 0. */
uint64_t addrbook_find(const struct addrbook *ab, const struct addrbook_addr *a);

/* A copy of entry `h` into *out; 0, or -ENOENT for a stale or 0 handle. */
int addrbook_get(const struct addrbook *ab, uint64_t h, struct addrbook_entry *out)
	__attribute__((warn_unused_result));

/* Up to `k` candidates to dial at `now` (not connected, not banned,
 * back-off expired), in the order described at the top, into handles_out.
 * Returns how many.  Nothing changes: the caller dials with addrbook_dial. */
size_t addrbook_candidates(const struct addrbook *ab, uint64_t now, uint64_t *handles_out,
			   size_t k);

/* The caller starts dialling entry `h` at `now`: it becomes connected, its
 * failures grow by one (saturating) and it is not a candidate again before
 * now + addrbook_backoff_ms(its failures before this dial).  Returns 0,
 * -ENOENT (stale handle), -EACCES (banned), -EBUSY (already connected) or
 * -EAGAIN (its back-off has not expired); nothing changes on an error. */
int addrbook_dial(struct addrbook *ab, uint64_t h, uint64_t now) __attribute__((warn_unused_result));

/* A handshake with the peer at entry `h` succeeded: its failures return to
 * 0, so the next back-off is the shortest.  0 or -ENOENT. */
int addrbook_succeeded(struct addrbook *ab, uint64_t h);

/* Entry `h` has a connection (a peer that dialled us: true) or no longer
 * has one (the connection closed: false).  0 or -ENOENT. */
int addrbook_set_connected(struct addrbook *ab, uint64_t h, bool connected);

/* Entry `h` may be dialled at once (its back-off is forgotten; its failure
 * count, and so the back-off after the next dial, is kept).  0 or -ENOENT. */
int addrbook_retry_now(struct addrbook *ab, uint64_t h);
/* The same for every entry (a swarm that starts again retries them all). */
void addrbook_retry_all(struct addrbook *ab);

/* Mark entry `h` as speaking only plain BitTorrent (true), or as worth an
 * encrypted attempt again (false).  An encrypted hello answered by a close
 * shows the transport was wrong, not the address: setting true also
 * clears its failures and back-off, so it is dialled again at once in
 * plain.  0 or -ENOENT. */
int addrbook_set_plain_only(struct addrbook *ab, uint64_t h, bool plain);

/* Mark entry `h` as refusing an encrypted hello that offers a cipher
 * (a shoal from before cipher negotiation): dial it with a hello that
 * offers none (true), or offer again (false).  Like plain_only, setting
 * true clears its failures and back-off: the refusal was the hello's, not
 * the address's.  0 or -ENOENT. */
int addrbook_set_legacy_hello(struct addrbook *ab, uint64_t h, bool legacy);

/* Ban entry `h` (its IP and port): never a candidate, never evicted, and
 * addrbook_get reports it banned.  Its host and peer id are separate bans.
 * 0 or -ENOENT. */
int addrbook_ban_entry(struct addrbook *ab, uint64_t h);

/* Ban the host of `a` (its IP; the port is ignored).  Returns 0 (also when
 * already banned) or -EAFNOSUPPORT. */
int addrbook_ban_host(struct addrbook *ab, const struct addrbook_addr *a);
/* Ban a peer id.  Returns 0 (also when already banned). */
int addrbook_ban_id(struct addrbook *ab, const uint8_t id[ADDRBOOK_PEER_ID_LEN]);

/* Is the IP of `a` banned, whatever its port? (false for a bad family) */
bool addrbook_host_banned(const struct addrbook *ab, const struct addrbook_addr *a);
/* Is this peer id banned? */
bool addrbook_id_banned(const struct addrbook *ab, const uint8_t id[ADDRBOOK_PEER_ID_LEN]);

/* Check the internal invariants (count within the cap, no address twice,
 * every entry valid and named by its handle, ban rings within bounds); 0
 * or -EFAULT with a static description in *what_out (may be NULL). */
int addrbook_check_invariants(const struct addrbook *ab, const char **what_out)
	__attribute__((warn_unused_result));

#endif
