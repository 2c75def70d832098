/* tracker.c: the tracker protocols as a pure codec (see tracker.h).
 *
 * Answers are read by a small cursor over the bencoded bytes rather than by
 * common/bencode's strict decoder: a tracker's answer is not hashed, and
 * real trackers write dict keys in any order, so order is not checked here;
 * what is checked is every length, every type we read and the nesting
 * depth, and nothing that is skipped costs memory. */
#include "config.h"

#include "transfer/tracker.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/bencode.h"

const char *tracker_strerror(int err)
{
	switch (err) {
	case TRACKER_E_URL:
		return "not a usable tracker URL";
	case TRACKER_E_SCHEME:
		return "only http://, https:// and udp:// trackers are supported";
	case TRACKER_E_BENCODE:
		return "the answer is not a bencoded dictionary";
	case TRACKER_E_TOO_BIG:
		return "the answer is too large";
	case TRACKER_E_FIELD:
		return "the answer holds a malformed field";
	case TRACKER_E_NO_PEERS:
		return "the answer has neither peers nor a failure reason";
	case TRACKER_E_SHORT:
		return "the UDP answer is too short";
	case TRACKER_E_ACTION:
		return "the UDP answer is not for what was asked";
	case TRACKER_E_NO_SCRAPE:
		return "the tracker's URL has no scrape counterpart";
	case -ENOMEM:
		return "out of memory";
	case -EMSGSIZE:
		return "too large";
	case -ENOSPC:
		return "too many trackers";
	case -ERANGE:
		return "tier number too large";
	default:
		return "tracker error";
	}
}

const char *tracker_event_name(enum tracker_event ev)
{
	switch (ev) {
	case TRACKER_EVENT_STARTED:
		return "started";
	case TRACKER_EVENT_COMPLETED:
		return "completed";
	case TRACKER_EVENT_STOPPED:
		return "stopped";
	case TRACKER_EVENT_NONE:
		break;
	}
	return "";
}

/* ------------------------------------------------------------ URLs */

static bool prefix_ci(const char *s, const char *prefix)
{
	for (; *prefix; s++, prefix++) {
		char c = *s >= 'A' && *s <= 'Z' ? (char)(*s - 'A' + 'a') : *s;
		if (c != *prefix)
			return false;
	}
	return true;
}

int tracker_url_parse(const char *url, struct tracker_url *out)
{
	memset(out, 0, sizeof *out);
	size_t len = strnlen(url, TRACKER_MAX_URL + 1);
	if (len > TRACKER_MAX_URL)
		return TRACKER_E_URL;
	for (size_t i = 0; i < len; i++)
		if (url[i] <= 0x20 || url[i] >= 0x7f || url[i] == '#')
			return TRACKER_E_URL;
	const char *sep = strstr(url, "://");
	if (!sep)
		return TRACKER_E_URL;
	size_t slen = (size_t)(sep - url);
	if (slen == 4 && prefix_ci(url, "http"))
		out->scheme = TRACKER_HTTP, out->port = 80;
	else if (slen == 5 && prefix_ci(url, "https"))
		out->scheme = TRACKER_HTTPS, out->port = 443;
	else if (slen == 3 && prefix_ci(url, "udp"))
		out->scheme = TRACKER_UDP, out->port = 0;
	else
		return TRACKER_E_SCHEME;
	const char *a = sep + 3;
	size_t alen = strcspn(a, "/?");
	const char *rest = a + alen;
	if (memchr(a, '@', alen))
		goto bad; /* user info: never sent to a tracker */
	const char *host = a, *port = NULL;
	size_t hlen;
	if (alen > 0 && a[0] == '[') {
		const char *close = memchr(a, ']', alen);
		if (!close)
			goto bad;
		host = a + 1;
		hlen = (size_t)(close - host);
		out->host_v6 = true;
		if (close + 1 < rest) {
			if (close[1] != ':')
				goto bad;
			port = close + 2;
		}
	} else {
		const char *colon = memchr(a, ':', alen);
		hlen = colon ? (size_t)(colon - a) : alen;
		if (colon)
			port = colon + 1;
		if (colon && memchr(colon + 1, ':', (size_t)(rest - colon - 1)))
			goto bad;
	}
	if (hlen == 0 || hlen > TRACKER_MAX_HOST)
		goto bad;
	memcpy(out->host, host, hlen);
	out->host[hlen] = '\0';
	if (out->host_v6) {
		struct in6_addr a6;
		if (inet_pton(AF_INET6, out->host, &a6) != 1)
			goto bad;
	}
	if (port) {
		size_t plen = (size_t)(rest - port);
		unsigned v = 0;
		if (plen == 0 || plen > 5)
			goto bad;
		for (size_t i = 0; i < plen; i++) {
			if (port[i] < '0' || port[i] > '9')
				goto bad;
			v = v * 10 + (unsigned)(port[i] - '0');
		}
		if (v == 0 || v > 65535)
			goto bad;
		out->port = (uint16_t)v;
	}
	if (out->port == 0)
		goto bad; /* udp:// needs a port */
	snprintf(out->path, sizeof out->path, "%s%s", *rest == '/' ? "" : "/", rest);
	return 0;
bad:
	memset(out, 0, sizeof *out);
	return TRACKER_E_URL;
}

/* ------------------------------------------------------------ lists */

int tracker_list_add(struct tracker_list *l, unsigned tier, const char *url)
{
	struct tracker_url u;
	int rc = tracker_url_parse(url, &u);
	if (rc)
		return rc;
	if (tier > TRACKER_MAX_TIER)
		return -ERANGE;
	for (size_t i = 0; i < l->count; i++)
		if (strcmp(l->e[i].url, url) == 0)
			return 1;
	if (l->count >= TRACKER_MAX_TRACKERS)
		return -ENOSPC;
	/* Keep tiers together and in order: insert after the last entry of a
	 * tier <= this one. */
	size_t at = l->count;
	while (at > 0 && l->e[at - 1].tier > tier)
		at--;
	memmove(&l->e[at + 1], &l->e[at], (l->count - at) * sizeof l->e[0]);
	l->e[at].tier = tier;
	snprintf(l->e[at].url, sizeof l->e[at].url, "%s", url);
	l->count++;
	return 0;
}

/* A cursor over bencoded bytes. */
struct cur {
	const uint8_t *p, *end;
};

static bool cur_at(const struct cur *c, uint8_t ch)
{
	return c->p < c->end && *c->p == ch;
}

/* A byte string: 0, or TRACKER_E_BENCODE (the cursor is then unusable). */
static int cur_str(struct cur *c, const uint8_t **s, size_t *n)
{
	size_t v = 0;
	const uint8_t *d = c->p;
	while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
		if (v > (SIZE_MAX - 9) / 10)
			return TRACKER_E_BENCODE;
		v = v * 10 + (size_t)(*c->p - '0');
		c->p++;
	}
	if (c->p == d || c->p >= c->end || *c->p != ':')
		return TRACKER_E_BENCODE;
	c->p++;
	if (v > (size_t)(c->end - c->p))
		return TRACKER_E_BENCODE;
	*s = c->p;
	*n = v;
	c->p += v;
	return 0;
}

static int cur_int(struct cur *c, int64_t *out)
{
	if (!cur_at(c, 'i'))
		return TRACKER_E_BENCODE;
	c->p++;
	bool neg = cur_at(c, '-');
	if (neg)
		c->p++;
	uint64_t v = 0;
	const uint8_t *d = c->p;
	while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
		if (v > ((uint64_t)INT64_MAX - 9) / 10)
			return TRACKER_E_BENCODE;
		v = v * 10 + (uint64_t)(*c->p - '0');
		c->p++;
	}
	if (c->p == d || !cur_at(c, 'e'))
		return TRACKER_E_BENCODE;
	c->p++;
	*out = neg ? -(int64_t)v : (int64_t)v;
	return 0;
}

/* Skip one whole value, nested at most BENC_MAX_DEPTH deep. */
static int cur_skip(struct cur *c)
{
	unsigned depth = 0;
	do {
		if (c->p >= c->end)
			return TRACKER_E_BENCODE;
		uint8_t ch = *c->p;
		int64_t i;
		const uint8_t *s;
		size_t n;
		if (ch == 'i') {
			if (cur_int(c, &i))
				return TRACKER_E_BENCODE;
		} else if (ch >= '0' && ch <= '9') {
			if (cur_str(c, &s, &n))
				return TRACKER_E_BENCODE;
		} else if (ch == 'l' || ch == 'd') {
			if (++depth > BENC_MAX_DEPTH)
				return TRACKER_E_BENCODE;
			c->p++;
		} else if (ch == 'e' && depth > 0) {
			depth--;
			c->p++;
		} else {
			return TRACKER_E_BENCODE;
		}
	} while (depth > 0);
	return 0;
}

static bool key_is(const uint8_t *k, size_t n, const char *s)
{
	return n == strlen(s) && memcmp(k, s, n) == 0;
}

/* Add a URL from a torrent, counting what cannot be used. */
static void list_take(struct tracker_list *l, unsigned tier, const uint8_t *s, size_t n)
{
	char url[TRACKER_MAX_URL + 1];
	if (n == 0 || n > TRACKER_MAX_URL || memchr(s, 0, n)) {
		l->dropped++;
		return;
	}
	memcpy(url, s, n);
	url[n] = '\0';
	int rc = tracker_list_add(l, tier, url);
	if (rc < 0 || rc == 1)
		l->dropped++;
}

/* announce-list: a list of tiers, each a list of URL strings.  Items of
 * another shape are skipped. */
static int read_announce_list(struct cur *c, struct tracker_list *l)
{
	if (!cur_at(c, 'l'))
		return cur_skip(c);
	c->p++;
	unsigned tier = 0;
	while (!cur_at(c, 'e')) {
		if (c->p >= c->end)
			return TRACKER_E_BENCODE;
		if (!cur_at(c, 'l')) {
			if (cur_skip(c))
				return TRACKER_E_BENCODE;
			continue;
		}
		c->p++;
		size_t before = l->count;
		while (!cur_at(c, 'e')) {
			const uint8_t *s;
			size_t n;
			if (c->p >= c->end)
				return TRACKER_E_BENCODE;
			if (*c->p >= '0' && *c->p <= '9') {
				if (cur_str(c, &s, &n))
					return TRACKER_E_BENCODE;
				if (tier <= TRACKER_MAX_TIER)
					list_take(l, tier, s, n);
				else
					l->dropped++;
			} else if (cur_skip(c)) {
				return TRACKER_E_BENCODE;
			}
		}
		c->p++;
		if (l->count > before)
			tier++; /* an empty tier takes no number */
	}
	c->p++;
	return 0;
}

int tracker_list_from_torrent(const uint8_t *p, const uint8_t *end, struct tracker_list *out)
{
	memset(out, 0, sizeof *out);
	struct cur c = { p, end };
	const uint8_t *announce = NULL;
	size_t announce_len = 0;
	if (!cur_at(&c, 'd'))
		return TRACKER_E_BENCODE;
	c.p++;
	while (!cur_at(&c, 'e')) {
		const uint8_t *k;
		size_t kn;
		if (cur_str(&c, &k, &kn))
			goto bad;
		if (key_is(k, kn, "announce") && c.p < c.end && *c.p >= '0' && *c.p <= '9') {
			if (cur_str(&c, &announce, &announce_len))
				goto bad;
		} else if (key_is(k, kn, "announce-list")) {
			if (read_announce_list(&c, out))
				goto bad;
		} else if (cur_skip(&c)) {
			goto bad;
		}
	}
	/* BEP 12: with a usable announce-list, "announce" is not used. */
	if (out->count == 0 && announce) {
		size_t dropped = out->dropped;
		list_take(out, 0, announce, announce_len);
		if (out->count)
			out->dropped = dropped;
	}
	return 0;
bad:
	memset(out, 0, sizeof *out);
	return TRACKER_E_BENCODE;
}

static int key_cmp(const uint8_t *a, size_t an, const char *b)
{
	size_t bn = strlen(b);
	int r = memcmp(a, b, an < bn ? an : bn);
	return r ? r : an < bn ? -1 : an > bn ? 1 : 0;
}

static int put_announce(struct buf *o, const struct tracker_list *l)
{
	int rc = benc_put_cstr(o, "announce");
	return rc ? rc : benc_put_cstr(o, l->e[0].url);
}

static int put_announce_list(struct buf *o, const struct tracker_list *l)
{
	int rc = benc_put_cstr(o, "announce-list");
	if (!rc)
		rc = benc_put_list(o);
	for (size_t i = 0; !rc && i < l->count; i++) {
		if (i == 0 || l->e[i].tier != l->e[i - 1].tier)
			rc = i ? benc_put_end(o) : 0;
		if (!rc && (i == 0 || l->e[i].tier != l->e[i - 1].tier))
			rc = benc_put_list(o);
		if (!rc)
			rc = benc_put_cstr(o, l->e[i].url);
	}
	if (!rc && l->count)
		rc = benc_put_end(o);
	return rc ? rc : benc_put_end(o);
}

int tracker_torrent_set(const uint8_t *p, const uint8_t *end, const struct tracker_list *l,
			struct buf *out)
{
	struct cur c = { p, end };
	bool put_a = l->count == 0, put_al = l->count == 0;
	if (!cur_at(&c, 'd'))
		return TRACKER_E_BENCODE;
	c.p++;
	int rc = benc_put_dict(out);
	while (!rc && !cur_at(&c, 'e')) {
		const uint8_t *k, *start = c.p;
		size_t kn;
		if (cur_str(&c, &k, &kn) || cur_skip(&c))
			return TRACKER_E_BENCODE;
		if (key_is(k, kn, "announce") || key_is(k, kn, "announce-list"))
			continue;
		if (!put_a && key_cmp(k, kn, "announce") > 0) {
			rc = put_announce(out, l);
			put_a = true;
		}
		if (!rc && !put_al && key_cmp(k, kn, "announce-list") > 0) {
			rc = put_announce_list(out, l);
			put_al = true;
		}
		if (!rc)
			rc = buf_append(out, start, (size_t)(c.p - start));
	}
	if (!rc && !put_a)
		rc = put_announce(out, l);
	if (!rc && !put_al)
		rc = put_announce_list(out, l);
	return rc ? rc : benc_put_end(out);
}

/* ------------------------------------------------------------ HTTP */

/* Percent-encode every byte but the unreserved ones (RFC 3986). */
static int put_escaped(struct buf *b, const uint8_t *s, size_t n)
{
	static const char hex[] = "0123456789ABCDEF";
	for (size_t i = 0; i < n; i++) {
		uint8_t ch = s[i];
		bool plain = (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
			     (ch >= '0' && ch <= '9') || ch == '-' || ch == '.' || ch == '_' ||
			     ch == '~';
		int rc = plain ? buf_append_byte(b, ch)
			       : buf_printf(b, "%%%c%c", hex[ch >> 4], hex[ch & 15]);
		if (rc)
			return rc;
	}
	return 0;
}

static int put_hash_param(struct buf *b, const char *announce_url, const uint8_t *hash)
{
	int rc = buf_printf(b, "%s%cinfo_hash=", announce_url,
			    strchr(announce_url, '?') ? '&' : '?');
	return rc ? rc : put_escaped(b, hash, TRACKER_HASH_LEN);
}

int tracker_http_announce_url(const char *announce_url, const struct tracker_announce *a,
			      struct buf *out)
{
	if (strnlen(announce_url, TRACKER_MAX_URL + 1) > TRACKER_MAX_URL)
		return -EINVAL;
	size_t was = out->len;
	int rc = put_hash_param(out, announce_url, a->info_hash);
	if (!rc)
		rc = buf_printf(out, "&peer_id=");
	if (!rc)
		rc = put_escaped(out, a->peer_id, TRACKER_PEER_ID_LEN);
	if (!rc)
		rc = buf_printf(out,
				"&port=%u&uploaded=%" PRIu64 "&downloaded=%" PRIu64 "&left=%" PRIu64
				"&compact=1&no_peer_id=1&numwant=%u&key=%08" PRIx32,
				(unsigned)a->port, a->uploaded, a->downloaded, a->left,
				(unsigned)a->numwant, a->key);
	if (!rc && a->event != TRACKER_EVENT_NONE)
		rc = buf_printf(out, "&event=%s", tracker_event_name(a->event));
	if (!rc && a->tracker_id && a->tracker_id[0]) {
		rc = buf_printf(out, "&trackerid=");
		if (!rc)
			rc = put_escaped(out, (const uint8_t *)a->tracker_id, strlen(a->tracker_id));
	}
	if (rc)
		out->len = was;
	return rc;
}

int tracker_http_scrape_url(const char *announce_url, const uint8_t info_hash[TRACKER_HASH_LEN],
			    struct buf *out)
{
	char url[TRACKER_MAX_URL + 1];
	size_t n = strnlen(announce_url, sizeof url);
	if (n >= sizeof url)
		return -EINVAL;
	memcpy(url, announce_url, n + 1);
	size_t qpos = strcspn(url, "?");
	char *slash = NULL;
	for (size_t i = 0; i < qpos; i++)
		if (url[i] == '/')
			slash = &url[i];
	const char *scheme_end = strstr(url, "://");
	if (!slash || !scheme_end || slash < scheme_end + 3 || strncmp(slash + 1, "announce", 8) != 0)
		return TRACKER_E_NO_SCRAPE;
	char scraped[TRACKER_MAX_URL + 8];
	snprintf(scraped, sizeof scraped, "%.*sscrape%s", (int)(slash + 1 - url), url, slash + 9);
	size_t was = out->len;
	int rc = put_hash_param(out, scraped, info_hash);
	if (rc)
		out->len = was;
	return rc;
}

void tracker_reply_init(struct tracker_reply *r)
{
	memset(r, 0, sizeof *r);
	r->interval = r->min_interval = -1;
	r->complete = r->incomplete = r->downloaded = -1;
}

void tracker_reply_destroy(struct tracker_reply *r)
{
	free(r->peers);
	tracker_reply_init(r);
}

/* Keep a message as printable ASCII (anything else becomes '?'). */
static void copy_text(char *dst, size_t cap, const uint8_t *s, size_t n)
{
	size_t k = 0;
	for (size_t i = 0; i < n && k + 1 < cap; i++)
		dst[k++] = s[i] >= 0x20 && s[i] < 0x7f ? (char)s[i] : '?';
	dst[k] = '\0';
}

static int add_peer(struct tracker_reply *r, int family, const uint8_t *addr, uint16_t port)
{
	if (port == 0 || r->peer_count >= TRACKER_MAX_PEERS) {
		r->peers_dropped++;
		return 0;
	}
	if (!r->peers) {
		r->peers = calloc(TRACKER_MAX_PEERS, sizeof *r->peers);
		if (!r->peers)
			return -ENOMEM;
	}
	struct tracker_peer *pe = &r->peers[r->peer_count++];
	pe->family = (uint8_t)family;
	memcpy(pe->addr, addr, family == 4 ? 4 : 16);
	pe->port = port;
	return 0;
}

static int add_compact(struct tracker_reply *r, int family, const uint8_t *s, size_t n)
{
	size_t step = family == 4 ? 6 : 18, alen = step - 2;
	if (n % step)
		return TRACKER_E_FIELD;
	for (size_t i = 0; i + step <= n; i += step) {
		int rc = add_peer(r, family, s + i, (uint16_t)(s[i + alen] << 8 | s[i + alen + 1]));
		if (rc)
			return rc;
	}
	return 0;
}

/* The dict model: [{"ip": "1.2.3.4", "port": 6881, "peer id": ...}, ...].
 * Only numeric addresses are taken (a name would need a lookup per peer). */
static int read_peer_dicts(struct cur *c, struct tracker_reply *r)
{
	c->p++; /* 'l' */
	while (!cur_at(c, 'e')) {
		if (c->p >= c->end)
			return TRACKER_E_BENCODE;
		if (!cur_at(c, 'd')) {
			if (cur_skip(c))
				return TRACKER_E_BENCODE;
			r->peers_dropped++;
			continue;
		}
		c->p++;
		char ip[64] = "";
		int64_t port = -1;
		while (!cur_at(c, 'e')) {
			const uint8_t *k, *s;
			size_t kn, n;
			if (cur_str(c, &k, &kn))
				return TRACKER_E_BENCODE;
			if (key_is(k, kn, "ip") && c->p < c->end && *c->p >= '0' && *c->p <= '9') {
				if (cur_str(c, &s, &n))
					return TRACKER_E_BENCODE;
				if (n < sizeof ip && !memchr(s, 0, n)) {
					memcpy(ip, s, n);
					ip[n] = '\0';
				}
			} else if (key_is(k, kn, "port") && cur_at(c, 'i')) {
				if (cur_int(c, &port))
					return TRACKER_E_BENCODE;
			} else if (cur_skip(c)) {
				return TRACKER_E_BENCODE;
			}
		}
		c->p++;
		uint8_t addr[16];
		int rc = 0;
		if (port < 1 || port > 65535)
			r->peers_dropped++;
		else if (inet_pton(AF_INET, ip, addr) == 1)
			rc = add_peer(r, 4, addr, (uint16_t)port);
		else if (inet_pton(AF_INET6, ip, addr) == 1)
			rc = add_peer(r, 6, addr, (uint16_t)port);
		else
			r->peers_dropped++;
		if (rc)
			return rc;
	}
	c->p++;
	return 0;
}

/* An integer field: TRACKER_E_FIELD unless it is one and not negative. */
static int read_count(struct cur *c, int64_t *out)
{
	if (!cur_at(c, 'i'))
		return TRACKER_E_FIELD;
	int64_t v;
	if (cur_int(c, &v))
		return TRACKER_E_BENCODE;
	if (v < 0)
		return TRACKER_E_FIELD;
	*out = v;
	return 0;
}

static bool at_str(const struct cur *c)
{
	return c->p < c->end && *c->p >= '0' && *c->p <= '9';
}

int tracker_http_parse_announce(const uint8_t *p, const uint8_t *end, struct tracker_reply *out)
{
	if ((size_t)(end - p) > TRACKER_MAX_BODY)
		return TRACKER_E_TOO_BIG;
	struct cur c = { p, end };
	bool have_peers = false;
	if (!cur_at(&c, 'd'))
		return TRACKER_E_BENCODE;
	c.p++;
	while (!cur_at(&c, 'e')) {
		const uint8_t *k, *s;
		size_t kn, n;
		int rc = 0;
		if (cur_str(&c, &k, &kn))
			return TRACKER_E_BENCODE;
		if (key_is(k, kn, "failure reason") || key_is(k, kn, "warning message") ||
		    key_is(k, kn, "tracker id")) {
			if (!at_str(&c))
				return TRACKER_E_FIELD;
			if (cur_str(&c, &s, &n))
				return TRACKER_E_BENCODE;
			if (k[0] == 'f') {
				out->failed = true;
				copy_text(out->message, sizeof out->message, s, n);
			} else if (k[0] == 'w') {
				copy_text(out->warning, sizeof out->warning, s, n);
			} else {
				copy_text(out->tracker_id, sizeof out->tracker_id, s, n);
			}
		} else if (key_is(k, kn, "interval")) {
			rc = read_count(&c, &out->interval);
		} else if (key_is(k, kn, "min interval")) {
			rc = read_count(&c, &out->min_interval);
		} else if (key_is(k, kn, "complete")) {
			rc = read_count(&c, &out->complete);
		} else if (key_is(k, kn, "incomplete")) {
			rc = read_count(&c, &out->incomplete);
		} else if (key_is(k, kn, "downloaded")) {
			rc = read_count(&c, &out->downloaded);
		} else if (key_is(k, kn, "peers") && at_str(&c)) {
			if (cur_str(&c, &s, &n))
				return TRACKER_E_BENCODE;
			rc = add_compact(out, 4, s, n);
			have_peers = true;
		} else if (key_is(k, kn, "peers") && cur_at(&c, 'l')) {
			rc = read_peer_dicts(&c, out);
			have_peers = true;
		} else if (key_is(k, kn, "peers6") && at_str(&c)) {
			if (cur_str(&c, &s, &n))
				return TRACKER_E_BENCODE;
			rc = add_compact(out, 6, s, n);
			have_peers = true;
		} else if (key_is(k, kn, "peers") || key_is(k, kn, "peers6")) {
			return TRACKER_E_FIELD;
		} else if (cur_skip(&c)) {
			return TRACKER_E_BENCODE;
		}
		if (rc)
			return rc;
	}
	if (!out->failed && !have_peers)
		return TRACKER_E_NO_PEERS;
	return 0;
}

/* One scrape entry: {"complete": N, "downloaded": N, "incomplete": N}. */
static int read_scrape_entry(struct cur *c, struct tracker_reply *out)
{
	if (!cur_at(c, 'd'))
		return TRACKER_E_FIELD;
	c->p++;
	while (!cur_at(c, 'e')) {
		const uint8_t *k;
		size_t kn;
		int rc = 0;
		if (cur_str(c, &k, &kn))
			return TRACKER_E_BENCODE;
		if (key_is(k, kn, "complete"))
			rc = read_count(c, &out->complete);
		else if (key_is(k, kn, "incomplete"))
			rc = read_count(c, &out->incomplete);
		else if (key_is(k, kn, "downloaded"))
			rc = read_count(c, &out->downloaded);
		else
			rc = cur_skip(c);
		if (rc)
			return rc;
	}
	c->p++;
	return 0;
}

int tracker_http_parse_scrape(const uint8_t *p, const uint8_t *end,
			      const uint8_t info_hash[TRACKER_HASH_LEN], struct tracker_reply *out)
{
	if ((size_t)(end - p) > TRACKER_MAX_BODY)
		return TRACKER_E_TOO_BIG;
	struct cur c = { p, end };
	if (!cur_at(&c, 'd'))
		return TRACKER_E_BENCODE;
	c.p++;
	while (!cur_at(&c, 'e')) {
		const uint8_t *k, *s;
		size_t kn, n;
		if (cur_str(&c, &k, &kn))
			return TRACKER_E_BENCODE;
		if (key_is(k, kn, "failure reason") && at_str(&c)) {
			if (cur_str(&c, &s, &n))
				return TRACKER_E_BENCODE;
			out->failed = true;
			copy_text(out->message, sizeof out->message, s, n);
		} else if (key_is(k, kn, "files") && cur_at(&c, 'd')) {
			c.p++;
			while (!cur_at(&c, 'e')) {
				const uint8_t *h;
				size_t hn;
				if (cur_str(&c, &h, &hn))
					return TRACKER_E_BENCODE;
				int rc = hn == TRACKER_HASH_LEN && memcmp(h, info_hash, hn) == 0
						 ? read_scrape_entry(&c, out)
						 : cur_skip(&c);
				if (rc)
					return rc;
			}
			c.p++;
		} else if (cur_skip(&c)) {
			return TRACKER_E_BENCODE;
		}
	}
	return 0;
}

/* ------------------------------------------------------------ UDP */

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static void put64(uint8_t *p, uint64_t v)
{
	put32(p, (uint32_t)(v >> 32));
	put32(p + 4, (uint32_t)v);
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t get64(const uint8_t *p)
{
	return (uint64_t)get32(p) << 32 | get32(p + 4);
}

size_t tracker_udp_connect_req(uint8_t out[TRACKER_UDP_CONNECT_LEN], uint32_t transaction_id)
{
	put64(out, TRACKER_UDP_MAGIC);
	put32(out + 8, TRACKER_UDP_CONNECT);
	put32(out + 12, transaction_id);
	return TRACKER_UDP_CONNECT_LEN;
}

size_t tracker_udp_announce_req(uint8_t out[TRACKER_UDP_ANNOUNCE_LEN], uint64_t connection_id,
				uint32_t transaction_id, const struct tracker_announce *a)
{
	put64(out, connection_id);
	put32(out + 8, TRACKER_UDP_ANNOUNCE);
	put32(out + 12, transaction_id);
	memcpy(out + 16, a->info_hash, TRACKER_HASH_LEN);
	memcpy(out + 36, a->peer_id, TRACKER_PEER_ID_LEN);
	put64(out + 56, a->downloaded);
	put64(out + 64, a->left);
	put64(out + 72, a->uploaded);
	put32(out + 80, (uint32_t)a->event);
	put32(out + 84, 0); /* IP: the one we send from */
	put32(out + 88, a->key);
	put32(out + 92, a->numwant);
	out[96] = (uint8_t)(a->port >> 8);
	out[97] = (uint8_t)a->port;
	return TRACKER_UDP_ANNOUNCE_LEN;
}

size_t tracker_udp_scrape_req(uint8_t out[TRACKER_UDP_SCRAPE_LEN], uint64_t connection_id,
			      uint32_t transaction_id, const uint8_t info_hash[TRACKER_HASH_LEN])
{
	put64(out, connection_id);
	put32(out + 8, TRACKER_UDP_SCRAPE);
	put32(out + 12, transaction_id);
	memcpy(out + 16, info_hash, TRACKER_HASH_LEN);
	return TRACKER_UDP_SCRAPE_LEN;
}

int tracker_udp_header(const uint8_t *p, const uint8_t *end, uint32_t *action_out,
		       uint32_t *transaction_id_out)
{
	if (end - p < 8)
		return TRACKER_E_SHORT;
	*action_out = get32(p);
	*transaction_id_out = get32(p + 4);
	return 0;
}

int tracker_udp_parse_connect(const uint8_t *p, const uint8_t *end, uint64_t *connection_id_out)
{
	if (end - p < 8)
		return TRACKER_E_SHORT;
	if (get32(p) != TRACKER_UDP_CONNECT)
		return TRACKER_E_ACTION;
	if (end - p < 16)
		return TRACKER_E_SHORT;
	*connection_id_out = get64(p + 8);
	return 0;
}

int tracker_udp_parse_reply(const uint8_t *p, const uint8_t *end, enum tracker_udp_action expect,
			    int family, struct tracker_reply *out)
{
	if (end - p < 8)
		return TRACKER_E_SHORT;
	uint32_t action = get32(p);
	if (action == TRACKER_UDP_ERROR) {
		out->failed = true;
		copy_text(out->message, sizeof out->message, p + 8, (size_t)(end - p - 8));
		if (!out->message[0])
			snprintf(out->message, sizeof out->message, "error (no message)");
		return 0;
	}
	if (action != (uint32_t)expect ||
	    (expect != TRACKER_UDP_ANNOUNCE && expect != TRACKER_UDP_SCRAPE))
		return TRACKER_E_ACTION;
	if (end - p < 20)
		return TRACKER_E_SHORT;
	if (expect == TRACKER_UDP_SCRAPE) {
		out->complete = get32(p + 8);
		out->downloaded = get32(p + 12);
		out->incomplete = get32(p + 16);
		return 0;
	}
	out->interval = get32(p + 8);
	out->incomplete = get32(p + 12);
	out->complete = get32(p + 16);
	size_t step = family == 6 ? 18 : 6, n = (size_t)(end - p - 20);
	const uint8_t *s = p + 20;
	for (size_t i = 0; i + step <= n; i += step) {
		int rc = add_peer(out, family == 6 ? 6 : 4, s + i,
				  (uint16_t)(s[i + step - 2] << 8 | s[i + step - 1]));
		if (rc)
			return rc;
	}
	return 0;
}

void tracker_peer_host(const struct tracker_peer *peer, char *out, size_t out_len)
{
	char tmp[INET6_ADDRSTRLEN];
	if (!inet_ntop(peer->family == 4 ? AF_INET : AF_INET6, peer->addr, tmp, sizeof tmp))
		snprintf(tmp, sizeof tmp, "?");
	snprintf(out, out_len, "%s", tmp);
}
