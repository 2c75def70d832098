/* magnet.c: parse and format v1, v2 and hybrid magnet links with bounded,
 * percent-decoded fields. */
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
	case MAGNET_E_NO_HASH: return "magnet link has no info-hash (urn:btih or urn:btmh)";
	case MAGNET_E_HASH: return "malformed info-hash (expected urn:btmh:1220 and 64 hex digits)";
	case MAGNET_E_V1_HASH:
		return "malformed v1 info-hash (expected urn:btih: and 40 hex or 32 base32 digits)";
	case MAGNET_E_TRACKER: return "bad tracker URL (tr too long, or with a space or control byte)";
	case MAGNET_E_TOO_MANY_TRACKERS: return "too many tracker URLs";
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

/* RFC 4648 base32 (A-Z, 2-7, either case, no padding) of exactly 20 bytes
 * in 32 digits. */
static int base32_decode20(const uint8_t *in, uint8_t out[MAGNET_V1_HASH_LEN])
{
	uint32_t acc = 0;
	unsigned bits = 0;
	size_t n = 0;
	for (size_t i = 0; i < 32; i++) {
		uint8_t c = in[i];
		int v;
		if (c >= 'a' && c <= 'z')
			v = c - 'a';
		else if (c >= 'A' && c <= 'Z')
			v = c - 'A';
		else if (c >= '2' && c <= '7')
			v = c - '2' + 26;
		else
			return -1;
		acc = acc << 5 | (uint32_t)v;
		bits += 5;
		if (bits >= 8) {
			bits -= 8;
			out[n++] = (uint8_t)(acc >> bits);
		}
	}
	return n == MAGNET_V1_HASH_LEN ? 0 : -1;
}

/* The digits after "urn:btih:": 40 hex or 32 base32. */
static int parse_btih(const uint8_t *v, size_t n, uint8_t out[MAGNET_V1_HASH_LEN])
{
	if (n == 2 * MAGNET_V1_HASH_LEN)
		return hex_decode((const char *)v, n, out, MAGNET_V1_HASH_LEN) ? -1 : 0;
	if (n == 32)
		return base32_decode20(v, out);
	return -1;
}

/* A tracker URL may hold any printable byte but a space. */
static bool tracker_ok(const uint8_t *v, size_t n)
{
	if (n == 0 || n > MAGNET_MAX_TRACKER_URL)
		return false;
	for (size_t i = 0; i < n; i++)
		if (v[i] <= ' ' || v[i] == 0x7f)
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
				if (m->has_v2 && memcmp(h, m->info_hash, sizeof h) != 0) {
					rc = MAGNET_E_HASH_CONFLICT;
					goto fail;
				}
				memcpy(m->info_hash, h, sizeof h);
				m->has_v2 = true;
			} else if (prefix_ci(val, (size_t)n, BTIH_PREFIX)) {
				uint8_t h[MAGNET_V1_HASH_LEN];
				const size_t pre = strlen(BTIH_PREFIX);
				if (parse_btih(val + pre, (size_t)n - pre, h) != 0) {
					rc = MAGNET_E_V1_HASH;
					goto fail;
				}
				if (m->has_v1 && memcmp(h, m->info_hash_v1, sizeof h) != 0) {
					rc = MAGNET_E_HASH_CONFLICT;
					goto fail;
				}
				memcpy(m->info_hash_v1, h, sizeof h);
				m->has_v1 = true;
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
		} else if (key_is(k, klen, "tr")) {
			if (!tracker_ok(val, (size_t)n)) {
				rc = MAGNET_E_TRACKER;
				goto fail;
			}
			bool dup = false;
			for (size_t t = 0; t < m->tracker_count && !dup; t++)
				dup = strcmp(m->trackers[t], (const char *)val) == 0;
			if (dup)
				continue;
			if (m->tracker_count == MAGNET_MAX_TRACKERS) {
				rc = MAGNET_E_TOO_MANY_TRACKERS;
				goto fail;
			}
			memcpy(m->trackers[m->tracker_count++], val, (size_t)n + 1);
		}
	}
	if (!m->has_v1 && !m->has_v2) {
		rc = MAGNET_E_NO_HASH;
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

int magnet_format(const struct magnet *m, struct buf *out)
{
	if (!m || (!m->has_v1 && !m->has_v2))
		return -EINVAL;
	const char *name = m->has_name ? m->name : NULL;
	if (name && strlen(name) > MAGNET_MAX_NAME)
		return -EINVAL;
	if (m->peer_count > MAGNET_MAX_PEERS || m->tracker_count > MAGNET_MAX_TRACKERS)
		return -EINVAL;
	for (size_t k = 0; k < m->peer_count; k++)
		if (!m->peers[k].host[0] || m->peers[k].port == 0 ||
		    !memchr(m->peers[k].host, '\0', sizeof m->peers[k].host))
			return -EINVAL;
	for (size_t t = 0; t < m->tracker_count; t++) {
		const char *u = m->trackers[t];
		size_t n = strnlen(u, sizeof m->trackers[t]);
		if (n == sizeof m->trackers[t] || !tracker_ok((const uint8_t *)u, n))
			return -EINVAL;
	}

	size_t start = out->len;
	char hex[2 * MAGNET_HASH_LEN + 1];
	const char *sep = "magnet:?";
	int rc = 0;
	if (m->has_v1) {
		hex_encode(m->info_hash_v1, MAGNET_V1_HASH_LEN, hex);
		rc = buf_printf(out, "%sxt=" BTIH_PREFIX "%s", sep, hex);
		sep = "&";
	}
	if (rc == 0 && m->has_v2) {
		hex_encode(m->info_hash, MAGNET_HASH_LEN, hex);
		rc = buf_printf(out, "%sxt=" BTMH_PREFIX "%s", sep, hex);
	}
	if (rc == 0 && name) {
		rc = buf_printf(out, "&dn=");
		if (rc == 0)
			rc = pct_encode(out, name, NULL);
	}
	for (size_t t = 0; t < m->tracker_count && rc == 0; t++) {
		rc = buf_printf(out, "&tr=");
		if (rc == 0)
			rc = pct_encode(out, m->trackers[t], NULL);
	}
	for (size_t k = 0; k < m->peer_count && rc == 0; k++) {
		const struct magnet_peer *pe = &m->peers[k];
		bool v6 = strchr(pe->host, ':') != NULL;
		rc = buf_printf(out, "&x.pe=%s", v6 ? "%5B" : "");
		if (rc == 0)
			rc = pct_encode(out, pe->host, ":");
		if (rc == 0)
			rc = buf_printf(out, "%s:%u", v6 ? "%5D" : "", (unsigned)pe->port);
	}
	if (rc == 0 && out->len - start > MAGNET_MAX_LEN)
		rc = -EMSGSIZE; /* magnet_parse would refuse it */
	if (rc)
		out->len = start;
	return rc;
}
