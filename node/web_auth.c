/* web_auth.c: login codes, cookie sessions and the pure checks of the dashboard's requests. */
#include "config.h"

#include "node/web_auth.h"

#include <string.h>
#include <strings.h>

#include <sodium.h>

#include "common/util.h"

void web_auth_init(struct web_auth *w, uint64_t code_ttl_ms)
{
	memset(w, 0, sizeof *w);
	w->code_ttl_ms = code_ttl_ms;
}

void web_auth_destroy(struct web_auth *w)
{
	sodium_memzero(w, sizeof *w);
}

void web_code_new(struct web_auth *w, uint64_t now, char hex_out[WEB_CODE_HEX + 1])
{
	struct web_code *slot = NULL;
	for (size_t i = 0; i < WEB_MAX_CODES; i++) {
		struct web_code *c = &w->codes[i];
		if (c->expires_ms && c->expires_ms <= now)
			sodium_memzero(c, sizeof *c); /* expired: free it */
		if (!c->expires_ms) {
			if (!slot || slot->expires_ms)
				slot = c;
		} else if (!slot || (slot->expires_ms && c->created_ms < slot->created_ms)) {
			slot = c;
		}
	}
	/* slot is a free one if any, else the oldest outstanding code. */
	sodium_memzero(slot, sizeof *slot);
	randombytes_buf(slot->code, WEB_CODE_LEN);
	slot->created_ms = now;
	slot->expires_ms = now + w->code_ttl_ms;
	hex_encode(slot->code, WEB_CODE_LEN, hex_out);
}

/* A free slot, else the oldest live session (which is forgotten). */
static struct web_session *session_slot(struct web_auth *w, uint64_t now)
{
	struct web_session *slot = NULL;
	for (size_t i = 0; i < WEB_MAX_SESSIONS; i++) {
		struct web_session *s = &w->sessions[i];
		if (s->expires_ms && s->expires_ms <= now)
			web_session_end(s);
		if (!s->expires_ms) {
			if (!slot || slot->expires_ms)
				slot = s;
		} else if (!slot || (slot->expires_ms && s->created_ms < slot->created_ms)) {
			slot = s;
		}
	}
	web_session_end(slot);
	return slot;
}

struct web_session *web_code_redeem(struct web_auth *w, const char *hex, size_t len,
				    uint64_t now)
{
	uint8_t given[WEB_CODE_LEN];
	if (!hex || hex_decode(hex, len, given, sizeof given))
		return NULL;
	struct web_code *match = NULL;
	for (size_t i = 0; i < WEB_MAX_CODES; i++) {
		struct web_code *c = &w->codes[i];
		if (c->expires_ms && sodium_memcmp(c->code, given, WEB_CODE_LEN) == 0)
			match = c;
	}
	sodium_memzero(given, sizeof given);
	if (!match)
		return NULL;
	bool live = now < match->expires_ms;
	sodium_memzero(match, sizeof *match); /* single use, even when late */
	if (!live)
		return NULL;
	struct web_session *s = session_slot(w, now);
	randombytes_buf(s->id, WEB_SECRET_LEN);
	randombytes_buf(s->csrf, WEB_SECRET_LEN);
	s->created_ms = now;
	s->expires_ms = now + WEB_SESSION_TTL_MS;
	return s;
}

/* The live session of this id, or NULL; ends the expired ones on the way.
 * Every slot is compared (constant time in which one matches). */
static struct web_session *session_by_id(struct web_auth *w, const uint8_t id[WEB_SECRET_LEN],
					 uint64_t now)
{
	struct web_session *match = NULL;
	for (size_t i = 0; i < WEB_MAX_SESSIONS; i++) {
		struct web_session *s = &w->sessions[i];
		if (s->expires_ms && s->expires_ms <= now)
			web_session_end(s);
		if (s->expires_ms && sodium_memcmp(s->id, id, WEB_SECRET_LEN) == 0)
			match = s;
	}
	return match;
}

bool web_session_alive(struct web_auth *w, const uint8_t id[WEB_SECRET_LEN], uint64_t now)
{
	return session_by_id(w, id, now) != NULL;
}

struct web_session *web_session_find(struct web_auth *w, const char *hex, size_t len,
				     uint64_t now)
{
	uint8_t given[WEB_SECRET_LEN];
	if (!hex || hex_decode(hex, len, given, sizeof given))
		return NULL;
	struct web_session *match = session_by_id(w, given, now);
	sodium_memzero(given, sizeof given);
	return match;
}

bool web_session_csrf_ok(const struct web_session *s, const char *header)
{
	if (!s || !header)
		return false;
	size_t n = strlen(header);
	while (n > 0 && (header[n - 1] == ' ' || header[n - 1] == '\t'))
		n--;
	while (n > 0 && (*header == ' ' || *header == '\t')) {
		header++;
		n--;
	}
	uint8_t given[WEB_SECRET_LEN];
	if (hex_decode(header, n, given, sizeof given))
		return false;
	bool ok = sodium_memcmp(given, s->csrf, WEB_SECRET_LEN) == 0;
	sodium_memzero(given, sizeof given);
	return ok;
}

void web_session_end(struct web_session *s)
{
	if (s)
		sodium_memzero(s, sizeof *s);
}

void web_session_id_hex(const struct web_session *s, char out[WEB_SECRET_HEX + 1])
{
	hex_encode(s->id, WEB_SECRET_LEN, out);
}

void web_session_csrf_hex(const struct web_session *s, char out[WEB_SECRET_HEX + 1])
{
	hex_encode(s->csrf, WEB_SECRET_LEN, out);
}

uint64_t web_session_expires_in(const struct web_session *s, uint64_t now)
{
	if (!s || s->expires_ms <= now)
		return 0;
	return (s->expires_ms - now + 999) / 1000;
}

bool web_cookie_next(const char **cursor, const char *name, const char **value_out,
		     size_t *len_out)
{
	const char *p = *cursor;
	size_t name_len = strlen(name);
	while (p && *p) {
		while (*p == ' ' || *p == '\t' || *p == ';')
			p++;
		const char *pair = p;
		size_t n = strcspn(pair, ";");
		p = pair + n;
		const char *eq = memchr(pair, '=', n);
		if (!eq)
			continue;
		const char *key_end = eq;
		while (key_end > pair && (key_end[-1] == ' ' || key_end[-1] == '\t'))
			key_end--;
		if ((size_t)(key_end - pair) != name_len || memcmp(pair, name, name_len) != 0)
			continue;
		const char *v = eq + 1, *end = pair + n;
		while (v < end && (*v == ' ' || *v == '\t'))
			v++;
		while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
			end--;
		if (end - v >= 2 && v[0] == '"' && end[-1] == '"') {
			v++;
			end--;
		}
		*value_out = v;
		*len_out = (size_t)(end - v);
		*cursor = p;
		return true;
	}
	*cursor = p;
	return false;
}

bool web_origin_matches(const char *origin, const char *host)
{
	if (!origin || !host || !*host || strncasecmp(origin, "http://", 7) != 0)
		return false;
	return strcasecmp(origin + 7, host) == 0;
}

bool web_file_name_ok(const char *name)
{
	size_t n = strlen(name);
	if (n == 0 || n > WEB_MAX_NAME || name[0] == '.')
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = name[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return false;
	}
	return true;
}

const char *web_content_type(const char *name)
{
	static const struct {
		const char *ext, *type;
	} types[] = {
		{ "html", "text/html; charset=utf-8" },
		{ "js", "text/javascript; charset=utf-8" },
		{ "css", "text/css; charset=utf-8" },
		{ "svg", "image/svg+xml" },
		{ "png", "image/png" },
		{ "ico", "image/x-icon" },
		{ "json", "application/json" },
		{ "txt", "text/plain; charset=utf-8" },
	};
	const char *dot = strrchr(name, '.');
	if (!dot)
		return NULL;
	for (size_t i = 0; i < ARRAY_LEN(types); i++)
		if (strcasecmp(dot + 1, types[i].ext) == 0)
			return types[i].type;
	return NULL;
}
