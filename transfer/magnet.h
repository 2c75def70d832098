/* magnet.h: BitTorrent magnet links (BEP 9): v1 urn:btih, v2 urn:btmh (BEP 52)
 * or both (a hybrid), trackers (tr) and peer addresses (x.pe). */
#ifndef SHOAL_TRANSFER_MAGNET_H
#define SHOAL_TRANSFER_MAGNET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

#define MAGNET_HASH_LEN 32
#define MAGNET_V1_HASH_LEN 20
#define MAGNET_MAX_LEN 8192u   /* whole link, bytes */
#define MAGNET_MAX_NAME 1024u  /* decoded display name, bytes */
#define MAGNET_MAX_PEERS 32u   /* x.pe entries */
#define MAGNET_MAX_HOST 255u   /* host part of one x.pe entry */
#define MAGNET_MAX_TRACKERS 16u      /* tr entries kept */
#define MAGNET_MAX_TRACKER_URL 512u  /* bytes in one decoded tr URL */

/* Specific errors (negative, below the errno range). */
enum magnet_error {
	MAGNET_E_SCHEME = -1100,  /* does not start with "magnet:?" */
	MAGNET_E_TOO_LONG,        /* longer than MAGNET_MAX_LEN */
	MAGNET_E_ESCAPE,          /* '%' not followed by two hex digits */
	MAGNET_E_NO_HASH,         /* neither urn:btih nor urn:btmh */
	MAGNET_E_HASH,            /* urn:btmh that is not 1220 + 64 hex digits */
	MAGNET_E_HASH_CONFLICT,   /* two different info-hashes of one kind */
	MAGNET_E_V1_HASH,         /* urn:btih that is not 40 hex or 32 base32 digits */
	MAGNET_E_NAME,            /* dn too long or containing NUL */
	MAGNET_E_PEER,            /* x.pe that is not host:port */
	MAGNET_E_TOO_MANY_PEERS,  /* more than MAGNET_MAX_PEERS x.pe */
	MAGNET_E_TRACKER,         /* tr too long, or with a space, control byte or NUL */
	MAGNET_E_TOO_MANY_TRACKERS, /* more than MAGNET_MAX_TRACKERS tr */
};

struct magnet_peer {
	char host[MAGNET_MAX_HOST + 1]; /* without brackets for IPv6 */
	uint16_t port;
};

/* A parsed link.  Plain data, no heap: copy or discard freely. */
struct magnet {
	bool has_v2;
	uint8_t info_hash[MAGNET_HASH_LEN]; /* full v2 (SHA-256) info-hash */
	bool has_v1;
	uint8_t info_hash_v1[MAGNET_V1_HASH_LEN]; /* v1 (SHA-1) info-hash */
	bool has_name;
	char name[MAGNET_MAX_NAME + 1]; /* dn, percent-decoded, '+' as space.  A
					 * display hint only: never a path. */
	size_t peer_count;
	struct magnet_peer peers[MAGNET_MAX_PEERS];
	/* Tracker URLs (tr), percent-decoded, in the link's order, duplicates
	 * dropped.  Any scheme is kept here; the tracker client decides which
	 * it can use. */
	size_t tracker_count;
	char trackers[MAGNET_MAX_TRACKERS][MAGNET_MAX_TRACKER_URL + 1];
};

/* Parse "magnet:?xt=urn:btih:<40 hex or 32 base32>&xt=urn:btmh:1220<64 hex>
 * &dn=<name>&tr=<url>&x.pe=<host:port>..." in [p, end) (no NUL needed).  At
 * least one of the two info-hashes must be there.  Parameters are
 * '&'-separated and percent-decoded; "xt" may also be numbered ("xt.1").
 * Unknown parameters (ws, xl, ...) are ignored.  Returns 0 or a negative
 * error (see magnet_strerror); on error `m` is zeroed. */
int magnet_parse(struct magnet *m, const uint8_t *p, const uint8_t *end)
	__attribute__((warn_unused_result));

/* Append the link for `m`: "magnet:?xt=urn:btih:<hex>" when has_v1,
 * "xt=urn:btmh:1220<hex>" when has_v2 (at least one is needed), and when
 * given "dn=<name>", one "tr=<url>" per tracker and one "x.pe=host:port" per
 * peer (IPv6 hosts in brackets), percent-encoded.  Returns 0, -EINVAL
 * (no hash, or a host, name or tracker that magnet_parse would refuse),
 * -EMSGSIZE or -ENOMEM; on failure `out` is left as it was. */
int magnet_format(const struct magnet *m, struct buf *out) __attribute__((warn_unused_result));

/* A short English description of an error from this module.  Never NULL. */
const char *magnet_strerror(int err);

#endif
