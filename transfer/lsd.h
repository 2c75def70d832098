/* lsd.h: BEP 14 local service discovery announces as a pure codec.
 *
 * An announce is an HTTP-like request sent to a multicast group:
 *
 *   BT-SEARCH * HTTP/1.1\r\n
 *   Host: 239.192.152.143:6771\r\n
 *   Port: <listen port>\r\n
 *   Infohash: <40 hex digits>\r\n      (one or more, consecutive)
 *   cookie: <opaque>\r\n               (optional: to recognise our own)
 *   \r\n
 *   \r\n
 *
 * BEP 14 lets one packet carry several Infohash headers and asks that it
 * stay under 1400 bytes (MTU).  A v2 swarm is announced by the first 20
 * bytes of its SHA-256 info-hash, as on the wire and the DHT (BEP 52).
 *
 * Nothing here does I/O: node/lsd.c owns the sockets, the interfaces and
 * the schedule.  Every packet received is hostile input: the parser works
 * on [p, end), never needs a NUL, and refuses anything over the ceilings
 * below, so garbage costs one bounded pass and a counted drop. */
#ifndef SHOAL_TRANSFER_LSD_H
#define SHOAL_TRANSFER_LSD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LSD_PORT 6771
#define LSD_GROUP4 "239.192.152.143"   /* org-local scope (BEP 14 "A") */
#define LSD_GROUP6 "ff15::efc0:988f"   /* site-local scope (BEP 14 "B") */
#define LSD_HASH_LEN 20
/* What we build (BEP 14: "should not exceed 1400 bytes"). */
#define LSD_MAX_PACKET 1400u
/* What we accept: a full Ethernet frame's UDP payload.  Anything longer
 * is refused before it is parsed (a sender that fragments is not
 * following the BEP). */
#define LSD_MAX_DATAGRAM 1472u
/* Infohash headers kept from one packet: 1472 bytes hold at most 27. */
#define LSD_MAX_HASHES 32u
/* Bytes of a cookie, sent or accepted. */
#define LSD_MAX_COOKIE 64u
/* Header lines in one packet, Infohash ones included. */
#define LSD_MAX_HEADERS 48u

/* Specific errors (negative, below the errno range). */
enum lsd_error {
	LSD_E_TOO_BIG = -1300,  /* longer than LSD_MAX_DATAGRAM */
	LSD_E_REQUEST,          /* not "BT-SEARCH * HTTP/1.1" */
	LSD_E_SYNTAX,           /* a line that is not "Name: value" CRLF, a
				 * control byte, or bytes after the end */
	LSD_E_PORT,             /* no Port, two, or not 1..65535 */
	LSD_E_HASH,             /* an Infohash that is not 40 hex digits */
	LSD_E_NO_HASH,          /* no Infohash at all */
	LSD_E_TOO_MANY,         /* more than LSD_MAX_HASHES or LSD_MAX_HEADERS */
	LSD_E_COOKIE,           /* two cookies, or one over LSD_MAX_COOKIE */
};

/* A short English description of an error from this module.  Never NULL. */
const char *lsd_strerror(int err);

/* ------------------------------------------------------------ parsing */

struct lsd_announce {
	uint16_t port;                                   /* 1..65535 */
	size_t hash_count;                               /* 1..LSD_MAX_HASHES, no repeats */
	uint8_t hashes[LSD_MAX_HASHES][LSD_HASH_LEN];
	char cookie[LSD_MAX_COOKIE + 1];                 /* "" when none was sent */
};

/* Parse one datagram [p, end).  The request line must be exactly
 * "BT-SEARCH * HTTP/1.1"; header names are case-insensitive, values are
 * trimmed of spaces and tabs; unknown headers (Host among them: we listen
 * on the group it names anyway) are ignored as HTTP asks; lines end in
 * CRLF; the headers end with an empty line, after which only further CRLFs
 * may follow.  A repeated hash is kept once.  Returns 0 with `out` filled,
 * or an LSD_E_* code with `out` zeroed. */
int lsd_parse(const uint8_t *p, const uint8_t *end, struct lsd_announce *out)
	__attribute__((warn_unused_result));

/* ------------------------------------------------------------ building */

/* An announce being built, as many hashes as fit in LSD_MAX_PACKET. */
struct lsd_packet {
	uint8_t buf[LSD_MAX_PACKET];
	size_t len;        /* bytes of buf written so far (before finish: without the tail) */
	size_t tail_len;   /* bytes lsd_packet_finish will add: cookie line and the end */
	size_t hash_count; /* Infohash headers added */
	char cookie[LSD_MAX_COOKIE + 1];
	bool finished;
};

/* Start an announce for the IPv4 group (`ipv6` false) or the IPv6 one,
 * giving `port` (1..65535) and `cookie` (NULL or "" for none; printable
 * ASCII without spaces, at most LSD_MAX_COOKIE bytes).  Returns 0 or
 * -EINVAL (port 0, a bad cookie). */
int lsd_packet_begin(struct lsd_packet *pk, bool ipv6, uint16_t port, const char *cookie)
	__attribute__((warn_unused_result));

/* Add one Infohash header.  Returns 0, or -ENOSPC when it would take the
 * packet over LSD_MAX_PACKET or past LSD_MAX_HASHES (the packet is
 * unchanged: send it and start another), -EINVAL after finish. */
int lsd_packet_add(struct lsd_packet *pk, const uint8_t hash[LSD_HASH_LEN])
	__attribute__((warn_unused_result));

/* Close the packet (cookie line, empty line, final CRLF).  Returns its
 * length; the bytes are pk->buf[0, length).  Calling it again returns the
 * same length. */
size_t lsd_packet_finish(struct lsd_packet *pk);

#endif
