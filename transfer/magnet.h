/* magnet.h: BitTorrent v2 magnet links (BEP 9 with BEP 52's urn:btmh). */
#ifndef SHOAL_TRANSFER_MAGNET_H
#define SHOAL_TRANSFER_MAGNET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

#define MAGNET_HASH_LEN 32
#define MAGNET_MAX_LEN 8192u   /* whole link, bytes */
#define MAGNET_MAX_NAME 1024u  /* decoded display name, bytes */
#define MAGNET_MAX_PEERS 32u   /* x.pe entries */
#define MAGNET_MAX_HOST 255u   /* host part of one x.pe entry */

/* Specific errors (negative, below the errno range). */
enum magnet_error {
	MAGNET_E_SCHEME = -1100,  /* does not start with "magnet:?" */
	MAGNET_E_TOO_LONG,        /* longer than MAGNET_MAX_LEN */
	MAGNET_E_ESCAPE,          /* '%' not followed by two hex digits */
	MAGNET_E_V1_ONLY,         /* only a v1 urn:btih info-hash */
	MAGNET_E_NO_HASH,         /* no urn:btmh info-hash at all */
	MAGNET_E_HASH,            /* urn:btmh that is not 1220 + 64 hex digits */
	MAGNET_E_HASH_CONFLICT,   /* two different urn:btmh info-hashes */
	MAGNET_E_NAME,            /* dn too long or containing NUL */
	MAGNET_E_PEER,            /* x.pe that is not host:port */
	MAGNET_E_TOO_MANY_PEERS,  /* more than MAGNET_MAX_PEERS x.pe */
};

struct magnet_peer {
	char host[MAGNET_MAX_HOST + 1]; /* without brackets for IPv6 */
	uint16_t port;
};

/* A parsed link.  Plain data, no heap: copy or discard freely. */
struct magnet {
	uint8_t info_hash[MAGNET_HASH_LEN]; /* full v2 (SHA-256) info-hash */
	bool has_name;
	char name[MAGNET_MAX_NAME + 1]; /* dn, percent-decoded, '+' as space.  A
					 * display hint only: never a path. */
	size_t peer_count;
	struct magnet_peer peers[MAGNET_MAX_PEERS];
};

/* Parse "magnet:?xt=urn:btmh:1220<64 hex>&dn=<name>&x.pe=<host:port>..." in
 * [p, end) (no NUL needed).  Parameters are '&'-separated and
 * percent-decoded; "xt" may also be numbered ("xt.1").  Unknown parameters
 * (tr, ws, ...) are ignored; a urn:btih next to a urn:btmh is ignored.
 * Returns 0 or a negative error (see magnet_strerror); on error `m` is
 * zeroed. */
int magnet_parse(struct magnet *m, const uint8_t *p, const uint8_t *end)
	__attribute__((warn_unused_result));

/* Append "magnet:?xt=urn:btmh:1220<hex>" and, when given, "&dn=<name>"
 * (percent-encoded) and one "&x.pe=host:port" per peer (IPv6 hosts in
 * brackets) to `out`.  `name` may be NULL.  Returns 0, -EINVAL (a host or
 * name that magnet_parse would refuse), -EMSGSIZE or -ENOMEM; on failure
 * `out` is left as it was. */
int magnet_format(const uint8_t info_hash[MAGNET_HASH_LEN], const char *name,
		  const struct magnet_peer *peers, size_t n_peers, struct buf *out)
	__attribute__((warn_unused_result));

/* A short English description of an error from this module.  Never NULL. */
const char *magnet_strerror(int err);

#endif
