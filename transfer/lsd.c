/* lsd.c: BEP 14 announces, built and parsed (see lsd.h). */
#include "config.h"

#include "transfer/lsd.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "common/util.h"

#define REQUEST_LINE "BT-SEARCH * HTTP/1.1"
#define HASH_HEX (2 * LSD_HASH_LEN)
/* "Infohash: " + 40 hex + CRLF */
#define HASH_LINE_LEN (10 + HASH_HEX + 2)

const char *lsd_strerror(int err)
{
	switch (err) {
	case 0:
		return "ok";
	case LSD_E_TOO_BIG:
		return "announce longer than a datagram may be";
	case LSD_E_REQUEST:
		return "not a BT-SEARCH request";
	case LSD_E_SYNTAX:
		return "malformed header line";
	case LSD_E_PORT:
		return "missing, repeated or invalid Port";
	case LSD_E_HASH:
		return "Infohash is not 40 hex digits";
	case LSD_E_NO_HASH:
		return "no Infohash";
	case LSD_E_TOO_MANY:
		return "too many headers or info-hashes";
	case LSD_E_COOKIE:
		return "repeated or oversized cookie";
	default:
		return "unknown LSD error";
	}
}

/* ------------------------------------------------------------ parsing */

static bool ieq(const uint8_t *p, size_t n, const char *lit)
{
	size_t m = strlen(lit);
	if (n != m)
		return false;
	for (size_t i = 0; i < n; i++) {
		uint8_t a = p[i], b = (uint8_t)lit[i];
		if (a >= 'A' && a <= 'Z')
			a = (uint8_t)(a - 'A' + 'a');
		if (b >= 'A' && b <= 'Z')
			b = (uint8_t)(b - 'A' + 'a');
		if (a != b)
			return false;
	}
	return true;
}

/* An HTTP token character (RFC 9110 tchar). */
static bool tchar(uint8_t c)
{
	if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
		return true;
	return c && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* The end of the line starting at p: the CR of its CRLF, or NULL when the
 * line holds a control byte (other than tab) or does not end in CRLF
 * before `end`. */
static const uint8_t *line_end(const uint8_t *p, const uint8_t *end)
{
	for (; p < end; p++) {
		if (*p == '\r')
			return end - p >= 2 && p[1] == '\n' ? p : NULL;
		if ((*p < 0x20 && *p != '\t') || *p == 0x7f)
			return NULL;
	}
	return NULL;
}

static int port_value(const uint8_t *v, size_t n, uint16_t *out)
{
	if (n == 0 || n > 5)
		return LSD_E_PORT;
	unsigned long x = 0;
	for (size_t i = 0; i < n; i++) {
		if (v[i] < '0' || v[i] > '9')
			return LSD_E_PORT;
		x = x * 10 + (unsigned long)(v[i] - '0');
	}
	if (x == 0 || x > 65535)
		return LSD_E_PORT;
	*out = (uint16_t)x;
	return 0;
}

static int add_hash(struct lsd_announce *a, const uint8_t *v, size_t n)
{
	uint8_t h[LSD_HASH_LEN];
	if (n != HASH_HEX || hex_decode((const char *)v, n, h, sizeof h) != 0)
		return LSD_E_HASH;
	for (size_t i = 0; i < a->hash_count; i++)
		if (memcmp(a->hashes[i], h, sizeof h) == 0)
			return 0;
	if (a->hash_count >= LSD_MAX_HASHES)
		return LSD_E_TOO_MANY;
	memcpy(a->hashes[a->hash_count++], h, sizeof h);
	return 0;
}

static int parse(const uint8_t *p, const uint8_t *end, struct lsd_announce *out)
{
	if ((size_t)(end - p) > LSD_MAX_DATAGRAM)
		return LSD_E_TOO_BIG;
	size_t rl = strlen(REQUEST_LINE);
	if ((size_t)(end - p) < rl + 2 || memcmp(p, REQUEST_LINE "\r\n", rl + 2) != 0)
		return LSD_E_REQUEST;
	p += rl + 2;
	bool have_port = false, have_cookie = false;
	unsigned headers = 0;
	for (;;) {
		const uint8_t *eol = line_end(p, end);
		if (!eol)
			return LSD_E_SYNTAX;
		if (eol == p) { /* the empty line: the headers end */
			p += 2;
			break;
		}
		if (++headers > LSD_MAX_HEADERS)
			return LSD_E_TOO_MANY;
		const uint8_t *colon = p;
		while (colon < eol && tchar(*colon))
			colon++;
		if (colon == p || colon == eol || *colon != ':')
			return LSD_E_SYNTAX;
		const uint8_t *v = colon + 1, *ve = eol;
		while (v < ve && (*v == ' ' || *v == '\t'))
			v++;
		while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
			ve--;
		size_t name_len = (size_t)(colon - p), vlen = (size_t)(ve - v);
		int rc = 0;
		if (ieq(p, name_len, "port")) {
			rc = have_port ? LSD_E_PORT : port_value(v, vlen, &out->port);
			have_port = true;
		} else if (ieq(p, name_len, "infohash")) {
			rc = add_hash(out, v, vlen);
		} else if (ieq(p, name_len, "cookie")) {
			if (have_cookie || vlen > LSD_MAX_COOKIE)
				return LSD_E_COOKIE;
			have_cookie = true;
			memcpy(out->cookie, v, vlen);
			out->cookie[vlen] = '\0';
		}
		if (rc)
			return rc;
		p = eol + 2;
	}
	/* BEP 14 ends with one more CRLF; allow any number, nothing else. */
	while (p < end) {
		if (end - p < 2 || p[0] != '\r' || p[1] != '\n')
			return LSD_E_SYNTAX;
		p += 2;
	}
	if (!have_port)
		return LSD_E_PORT;
	if (out->hash_count == 0)
		return LSD_E_NO_HASH;
	return 0;
}

int lsd_parse(const uint8_t *p, const uint8_t *end, struct lsd_announce *out)
{
	memset(out, 0, sizeof *out);
	int rc = parse(p, end, out);
	if (rc)
		memset(out, 0, sizeof *out);
	return rc;
}

/* ------------------------------------------------------------ building */

static bool cookie_ok(const char *c)
{
	size_t n = strlen(c);
	if (n > LSD_MAX_COOKIE)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((uint8_t)c[i] <= 0x20 || (uint8_t)c[i] >= 0x7f)
			return false;
	return true;
}

int lsd_packet_begin(struct lsd_packet *pk, bool ipv6, uint16_t port, const char *cookie)
{
	if (!cookie)
		cookie = "";
	if (port == 0 || !cookie_ok(cookie)) {
		memset(pk, 0, sizeof *pk);
		return -EINVAL;
	}
	char keep[LSD_MAX_COOKIE + 1]; /* `cookie` may be pk->cookie itself */
	snprintf(keep, sizeof keep, "%s", cookie);
	memset(pk, 0, sizeof *pk);
	memcpy(pk->cookie, keep, sizeof keep);
	cookie = pk->cookie;
	int n = snprintf((char *)pk->buf, sizeof pk->buf,
			 REQUEST_LINE "\r\nHost: %s%s%s:%u\r\nPort: %u\r\n", ipv6 ? "[" : "",
			 ipv6 ? LSD_GROUP6 : LSD_GROUP4, ipv6 ? "]" : "", (unsigned)LSD_PORT,
			 (unsigned)port);
	pk->len = (size_t)n;
	/* "cookie: X\r\n" when there is one, then "\r\n\r\n". */
	pk->tail_len = (cookie[0] ? 8 + strlen(cookie) + 2 : 0) + 4;
	return 0;
}

int lsd_packet_add(struct lsd_packet *pk, const uint8_t hash[LSD_HASH_LEN])
{
	if (pk->finished)
		return -EINVAL;
	if (pk->hash_count >= LSD_MAX_HASHES ||
	    pk->len + HASH_LINE_LEN + pk->tail_len > sizeof pk->buf)
		return -ENOSPC;
	char hex[HASH_HEX + 1];
	hex_encode(hash, LSD_HASH_LEN, hex);
	memcpy(pk->buf + pk->len, "Infohash: ", 10);
	memcpy(pk->buf + pk->len + 10, hex, HASH_HEX);
	memcpy(pk->buf + pk->len + 10 + HASH_HEX, "\r\n", 2);
	pk->len += HASH_LINE_LEN;
	pk->hash_count++;
	return 0;
}

size_t lsd_packet_finish(struct lsd_packet *pk)
{
	if (pk->finished)
		return pk->len;
	/* memcpy, not snprintf: the tail may end exactly at the buffer's end,
	 * leaving no room for the NUL snprintf would write (and truncate for). */
	uint8_t *w = pk->buf + pk->len;
	size_t c = strlen(pk->cookie);
	if (c) {
		memcpy(w, "cookie: ", 8);
		memcpy(w + 8, pk->cookie, c);
		memcpy(w + 8 + c, "\r\n", 2);
		w += 8 + c + 2;
	}
	memcpy(w, "\r\n\r\n", 4);
	pk->len += pk->tail_len;
	pk->finished = true;
	return pk->len;
}
