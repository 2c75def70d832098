/* web_auth.h: the dashboard's one-time login codes and cookie sessions
 * (docs/web.md), and the pure checks of its requests.  No I/O: the caller
 * passes the time in, so tests run a day in a microsecond. */
#ifndef SHOAL_NODE_WEB_AUTH_H
#define SHOAL_NODE_WEB_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A login code: 128 random bits, 32 hex digits in the URL's fragment. */
#define WEB_CODE_LEN 16
#define WEB_CODE_HEX (2 * WEB_CODE_LEN)
#define WEB_CODE_TTL_MS (60u * 1000)
/* Outstanding codes beyond this drop the oldest: `shoal web` run in a loop
 * costs bounded memory. */
#define WEB_MAX_CODES 16
/* A session: the cookie value and its CSRF token, 256 random bits each. */
#define WEB_SECRET_LEN 32
#define WEB_SECRET_HEX (2 * WEB_SECRET_LEN)
#define WEB_SESSION_TTL_S (12u * 3600)
#define WEB_SESSION_TTL_MS ((uint64_t)WEB_SESSION_TTL_S * 1000)
#define WEB_MAX_SESSIONS 32
#define WEB_COOKIE_NAME "shoal_session"
#define WEB_CSRF_HEADER "X-Shoal-CSRF"

struct web_code {
	uint8_t code[WEB_CODE_LEN];
	uint64_t created_ms;
	uint64_t expires_ms; /* 0: free slot */
};

struct web_session {
	uint8_t id[WEB_SECRET_LEN];   /* the cookie's value */
	uint8_t csrf[WEB_SECRET_LEN]; /* X-Shoal-CSRF */
	uint64_t created_ms;
	uint64_t expires_ms;          /* 0: free slot; absolute, never extended */
};

/* Every code and session of one API server; embedded, no heap. */
struct web_auth {
	struct web_code codes[WEB_MAX_CODES];
	struct web_session sessions[WEB_MAX_SESSIONS];
	uint64_t code_ttl_ms;
};

/* Start empty; codes live `code_ttl_ms` (WEB_CODE_TTL_MS in the product). */
void web_auth_init(struct web_auth *w, uint64_t code_ttl_ms);
/* Forget everything, zeroing every secret. */
void web_auth_destroy(struct web_auth *w);

/* Mint a code valid from `now` for code_ttl_ms, dropping the oldest
 * outstanding one when WEB_MAX_CODES are out; its hex (NUL-terminated)
 * goes to `hex_out`. */
void web_code_new(struct web_auth *w, uint64_t now, char hex_out[WEB_CODE_HEX + 1]);

/* Trade the code in `hex` (len bytes, not NUL-terminated) for a new
 * session: the code is consumed whatever happens next.  The session
 * (evicting the oldest when WEB_MAX_SESSIONS are live) is returned; NULL
 * when the code is malformed, unknown, used or expired. */
struct web_session *web_code_redeem(struct web_auth *w, const char *hex, size_t len,
				    uint64_t now);

/* The live session whose cookie value is `hex` (len bytes), or NULL.
 * Compared in constant time; expired sessions are forgotten on the way. */
struct web_session *web_session_find(struct web_auth *w, const char *hex, size_t len,
				     uint64_t now);

/* True if `header` (NULL: absent) is this session's CSRF token. */
bool web_session_csrf_ok(const struct web_session *s, const char *header);

/* Forget one session (logout), zeroing it. */
void web_session_end(struct web_session *s);

/* Is the session of this id still live (not ended, expired or evicted)? */
bool web_session_alive(struct web_auth *w, const uint8_t id[WEB_SECRET_LEN], uint64_t now);

/* Hex of a session's cookie value / CSRF token into out (NUL-terminated). */
void web_session_id_hex(const struct web_session *s, char out[WEB_SECRET_HEX + 1]);
void web_session_csrf_hex(const struct web_session *s, char out[WEB_SECRET_HEX + 1]);

/* Seconds left of a session at `now` (0 when it has ended). */
uint64_t web_session_expires_in(const struct web_session *s, uint64_t now);

/* --- pure request checks --- */

/* Find the next cookie called `name` in a Cookie header ("a=1; b=2"),
 * starting at *cursor (set it to the header first).  On a match sets
 * *value_out / *len_out to its value (double quotes stripped), advances
 * *cursor past it and returns true; false when there is no more.  Spaces
 * and tabs around pairs are skipped; pairs without '=' are ignored. */
bool web_cookie_next(const char **cursor, const char *name, const char **value_out,
		     size_t *len_out);

/* True if `origin` is "http://" followed by exactly `host` (ASCII case
 * folded); false for NULL either, "null" or any other scheme. */
bool web_origin_matches(const char *origin, const char *host);

/* True if `name` may be served from the web directory: one segment of
 * [A-Za-z0-9._-], 1-128 bytes, not starting with '.'. */
bool web_file_name_ok(const char *name);
#define WEB_MAX_NAME 128

/* The Content-Type of a file by its extension, or NULL for one not served. */
const char *web_content_type(const char *name);

#endif
