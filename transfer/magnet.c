/* magnet.c: parse and format v2 magnet links with bounded, percent-decoded fields. */
#include "config.h"

#include "transfer/magnet.h"

#include <errno.h>
#include <string.h>
#include <strings.h>

#include "common/util.h"

/* "1220": multihash of sha2-256 (0x12) with a 32-byte (0x20) digest. */
#define BTMH_PREFIX "urn:btmh:1220"
#define BTIH_PREFIX "urn:btih:"

const char *magnet_strerror(int err)
{
	switch (err) {
	case 0: return "success";
	case MAGNET_E_SCHEME: return "not a magnet link";
	case MAGNET_E_TOO_LONG: return "magnet link too long";
	case MAGNET_E_ESCAPE: return "bad percent-encoding in magnet link";
	case MAGNET_E_V1_ONLY: return "v1-only links are not supported";
	case MAGNET_E_NO_HASH: return "magnet link has no info-hash";
	case MAGNET_E_HASH: return "malformed info-hash (expected urn:btmh:1220 and 64 hex digits)";
	case MAGNET_E_HASH_CONFLICT: return "magnet link names two different info-hashes";
	case MAGNET_E_NAME: return "display name too long or invalid";
	case MAGNET_E_PEER: return "bad peer address (x.pe must be host:port)";
	case MAGNET_E_TOO_MANY_PEERS: return "too many peer addresses";
	case -ENOMEM: return "out of memory";
	case -EMSGSIZE: return "output too large";
	case -EINVAL: return "invalid argument";
	default: return "unknown error";
	}
}

/* Percent-decode [p, end) into out (at least end - p bytes); '+' becomes a
 * space when `plus_space`.  Returns the decoded length or MAGNET_E_ESCAPE. */
static long pct_decode(const uint8_t *p, const uint8_t *end, bool plus_space, uint8_t *out)
{
	size_t n = 0;
	while (p < end) {
		if (*p == '%') {
			if (end - p < 3)
				return MAGNET_E_ESCAPE;
			int hi = hex_digit_value(p[1]), lo = hex_digit_value(p[2]);
			if (hi < 0 || lo < 0)
				return MAGNET_E_ESCAPE;
			out[n++] = (uint8_t)(hi << 4 | lo);
			p += 3;
		} else {
			out[n++] = plus_space && *p == '+' ? ' ' : *p;
			p++;
		}
	}
	return (long)n;
}

static bool key_is(const uint8_t *k, size_t klen, const char *want)
{
	return klen == strlen(want) && memcmp(k, want, klen) == 0;
}

/* "xt" or "xt.<digits>". */
static bool key_is_xt(const uint8_t *k, size_t klen)
{
	if (klen < 2 || k[0] != 'x' || k[1] != 't')
		return false;
	if (klen == 2)
		return true;
	if (klen == 3 || k[2] != '.')
		return false;
	for (size_t i = 3; i < klen; i++)
		if (k[i] < '0' || k[i] > '9')
			return false;
	return true;
}

static bool prefix_ci(const uint8_t *v, size_t n, const char *pre)
{
	size_t l = strlen(pre);
	return n >= l && strncasecmp((const char *)v, pre, l) == 0;
}

int magnet_parse(struct magnet *m, const uint8_t *p, const uint8_t *end)
{
	uint8_t val[MAGNET_MAX_LEN + 1];
	bool have_hash = false, have_v1 = false;
	int rc = 0;

	memset(m, 0, sizeof *m);
	if (!p || end < p)
		return -EINVAL;
	if ((size_t)(end - p) > MAGNET_MAX_LEN)
		return MAGNET_E_TOO_LONG;
	if (!prefix_ci(p, (size_t)(end - p), "magnet:?"))
		return MAGNET_E_SCHEME;
	p += 8;

	while (p < end) {
		const uint8_t *amp = memchr(p, '&', (size_t)(end - p));
		const uint8_t *pend = amp ? amp : end;
		const uint8_t *eq = memchr(p, '=', (size_t)(pend - p));
		const uint8_t *k = p;
		size_t klen = (size_t)((eq ? eq : pend) - p);
		const uint8_t *v = eq ? eq + 1 : pend;
		p = amp ? amp + 1 : end;
		if (!eq)
			continue; /* a bare word: nothing we use */

		bool is_dn = key_is(k, klen, "dn");
		long n = pct_decode(v, pend, is_dn, val);
		if (n < 0) {
			rc = (int)n;
			goto fail;
		}
		val[n] = '\0';

		if (key_is_xt(k, klen)) {
			if (prefix_ci(val, (size_t)n, "urn:btmh:")) {
				uint8_t h[MAGNET_HASH_LEN];
				const size_t pre = strlen(BTMH_PREFIX);
				if (!prefix_ci(val, (size_t)n, BTMH_PREFIX) ||
				    (size_t)n != pre + 2 * MAGNET_HASH_LEN ||
				    hex_decode((const char *)val + pre, 2 * MAGNET_HASH_LEN, h, sizeof h)) {
					rc = MAGNET_E_HASH;
					goto fail;
				}
				if (have_hash && memcmp(h, m->info_hash, sizeof h) != 0) {
					rc = MAGNET_E_HASH_CONFLICT;
					goto fail;
				}
				memcpy(m->info_hash, h, sizeof h);
				have_hash = true;
			} else if (prefix_ci(val, (size_t)n, BTIH_PREFIX)) {
				have_v1 = true;
			}
		} else if (is_dn) {
			if (m->has_name)
				continue; /* the first dn wins */
			if ((size_t)n > MAGNET_MAX_NAME || memchr(val, '\0', (size_t)n)) {
				rc = MAGNET_E_NAME;
				goto fail;
			}
			memcpy(m->name, val, (size_t)n + 1);
			m->has_name = true;
		} else if (key_is(k, klen, "x.pe")) {
			if (m->peer_count == MAGNET_MAX_PEERS) {
				rc = MAGNET_E_TOO_MANY_PEERS;
				goto fail;
			}
			struct magnet_peer *peer = &m->peers[m->peer_count];
			if (memchr(val, '\0', (size_t)n) ||
			    parse_hostport((const char *)val, peer->host, sizeof peer->host, &peer->port)) {
				rc = MAGNET_E_PEER;
				goto fail;
			}
			m->peer_count++;
		}
	}
	if (!have_hash) {
		rc = have_v1 ? MAGNET_E_V1_ONLY : MAGNET_E_NO_HASH;
		goto fail;
	}
	return 0;
fail:
	memset(m, 0, sizeof *m);
	return rc;
}

/* Append `s` percent-encoding all but RFC 3986 unreserved characters (and
 * `extra`, if any). */
static int pct_encode(struct buf *out, const char *s, const char *extra)
{
	static const char hex[] = "0123456789ABCDEF";
	int rc = 0;
	for (const unsigned char *c = (const unsigned char *)s; *c && rc == 0; c++) {
		bool plain = (*c >= 'A' && *c <= 'Z') || (*c >= 'a' && *c <= 'z') ||
			     (*c >= '0' && *c <= '9') || *c == '-' || *c == '.' || *c == '_' ||
			     *c == '~' || (extra && strchr(extra, *c));
		if (plain) {
			rc = buf_append_byte(out, *c);
		} else {
			char e[3] = { '%', hex[*c >> 4], hex[*c & 15] };
			rc = buf_append(out, e, 3);
		}
	}
	return rc;
}

int magnet_format(const uint8_t info_hash[MAGNET_HASH_LEN], const char *name,
		  const struct magnet_peer *peers, size_t n_peers, struct buf *out)
{
	if (name && strlen(name) > MAGNET_MAX_NAME)
		return -EINVAL;
	if (n_peers > MAGNET_MAX_PEERS || (n_peers && !peers))
		return -EINVAL;
	for (size_t k = 0; k < n_peers; k++)
		if (!peers[k].host[0] || peers[k].port == 0 ||
		    !memchr(peers[k].host, '\0', sizeof peers[k].host))
			return -EINVAL;

	size_t start = out->len;
	char hex[2 * MAGNET_HASH_LEN + 1];
	hex_encode(info_hash, MAGNET_HASH_LEN, hex);
	int rc = buf_printf(out, "magnet:?xt=" BTMH_PREFIX "%s", hex);
	if (rc == 0 && name) {
		rc = buf_printf(out, "&dn=");
		if (rc == 0)
			rc = pct_encode(out, name, NULL);
	}
	for (size_t k = 0; k < n_peers && rc == 0; k++) {
		bool v6 = strchr(peers[k].host, ':') != NULL;
		rc = buf_printf(out, "&x.pe=%s", v6 ? "%5B" : "");
		if (rc == 0)
			rc = pct_encode(out, peers[k].host, ":");
		if (rc == 0)
			rc = buf_printf(out, "%s:%u", v6 ? "%5D" : "", (unsigned)peers[k].port);
	}
	if (rc == 0 && out->len - start > MAGNET_MAX_LEN)
		rc = -EMSGSIZE; /* magnet_parse would refuse it */
	if (rc)
		out->len = start;
	return rc;
}
