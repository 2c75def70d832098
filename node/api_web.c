/* api_web.c: the dashboard's side of the API: its static files, the
 * headers every response carries, and the login code and session endpoints
 * (docs/web.md). */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <sodium.h>

#include "common/log.h"
#include "common/util.h"
#include "node/api_server.h"
#include "node/node.h"
#include "node/web_auth.h"

/* The page files are small; one larger than this is refused rather than
 * read into memory on the event loop. */
#define API_WEB_MAX_FILE (4u * 1024 * 1024)

#define WEB_CSP                                                                              \
	"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "     \
	"connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

void api_security_headers(struct evkeyvalq *h)
{
	evhttp_add_header(h, "Content-Security-Policy", WEB_CSP);
	evhttp_add_header(h, "X-Frame-Options", "DENY");
	evhttp_add_header(h, "Referrer-Policy", "no-referrer");
	evhttp_add_header(h, "X-Content-Type-Options", "nosniff");
}

bool api_web_is_page(const char *path)
{
	return strcmp(path, "/") == 0 || strcmp(path, "/login") == 0 ||
	       strncmp(path, "/web/", 5) == 0;
}

/* Read the regular file `name` of the web directory into a new buffer.
 * Returns 0, -ENOENT for anything that is not a regular file there (a
 * symbolic link, a directory, a FIFO: none is opened through), -EFBIG, or
 * another negative errno. */
static int read_web_file(const char *dir, const char *name, struct evbuffer **out)
{
	char path[PATH_MAX];
	if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, name) >= sizeof path)
		return -ENAMETOOLONG;
	/* O_NOFOLLOW: a link is refused, not followed; O_NONBLOCK: a FIFO
	 * cannot hold the loop in open(). */
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (fd < 0)
		return errno == ELOOP || errno == ENOTDIR ? -ENOENT : -errno;
	int rc = 0;
	char *data = NULL;
	struct stat st;
	if (fstat(fd, &st) != 0) {
		rc = -errno;
		goto done;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = -ENOENT;
		goto done;
	}
	if ((uint64_t)st.st_size > API_WEB_MAX_FILE) {
		rc = -EFBIG;
		goto done;
	}
	size_t size = (size_t)st.st_size, got = 0;
	data = malloc(size ? size : 1);
	if (!data) {
		rc = -ENOMEM;
		goto done;
	}
	while (got < size) {
		ssize_t n = read(fd, data + got, size - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = -errno;
			goto done;
		}
		if (n == 0)
			break; /* shrank meanwhile: serve what is there */
		got += (size_t)n;
	}
	*out = evbuffer_new();
	if (!*out || evbuffer_add(*out, data, got) != 0) {
		if (*out)
			evbuffer_free(*out);
		*out = NULL;
		rc = -ENOMEM;
	}
done:
	free(data);
	close(fd);
	return rc;
}

static void serve_file(struct api_req *r, const char *name, bool is_index)
{
	const char *dir = r->node->cfg.web_dir;
	const char *ctype = web_content_type(name);
	struct evbuffer *body = NULL;
	int rc = ctype ? read_web_file(dir, name, &body) : -ENOENT;
	if (rc == -ENOENT && is_index) {
		api_reply_error(r, 404, "no_web_ui",
				"no web dashboard: %s/index.html is missing (install it with "
				"`make install`, or point --web-dir at a directory that holds it)",
				dir);
		return;
	}
	if (rc == -ENOENT || rc == -ENAMETOOLONG) {
		api_reply_error(r, 404, "not_found", "no such page: %s", name);
		return;
	}
	if (rc) {
		log_warn("web: %s/%s: %s", dir, name, strerror(-rc));
		api_reply_error(r, 500, "internal", "cannot read the page %s: %s", name,
				strerror(-rc));
		return;
	}
	struct evkeyvalq *h = evhttp_request_get_output_headers(r->req);
	evhttp_add_header(h, "Content-Type", ctype);
	evhttp_add_header(h, "Cache-Control", "no-cache");
	api_send_reply(r, 200, "OK", body);
	evbuffer_free(body);
}

void api_web_serve(struct api_req *r, const char *path, bool get_or_head)
{
	if (!get_or_head) {
		evhttp_add_header(evhttp_request_get_output_headers(r->req), "Allow", "GET, HEAD");
		api_reply_error(r, 405, "method_not_allowed", "%s accepts only GET, HEAD", path);
		return;
	}
	if (strcmp(path, "/") == 0) {
		serve_file(r, "index.html", true);
		return;
	}
	if (strcmp(path, "/login") == 0) {
		serve_file(r, "login.html", false);
		return;
	}
	const char *name = path + 5; /* after "/web/" */
	if (!web_file_name_ok(name)) {
		api_reply_error(r, 404, "not_found", "no such page: %s", path);
		return;
	}
	serve_file(r, name, false);
}

/* --- login codes and sessions ---------------------------------------------- */

/* POST /api/v1/web/codes: bearer token only (on_request refuses a cookie). */
static void handle_codes(struct api_req *r)
{
	struct web_auth *w = api_web_auth(r->api);
	char code[WEB_CODE_HEX + 1], origin[128], url[sizeof origin + WEB_CODE_HEX + 32];
	web_code_new(w, now_ms(), code);
	api_page_host(r->api, origin, sizeof origin);
	snprintf(url, sizeof url, "http://%s/login#%s", origin, code);
	api_reply(r, 201,
		  json_pack("{s:s,s:I,s:s}", "code", code, "expires_in",
			    (json_int_t)(w->code_ttl_ms / 1000), "url", url));
	sodium_memzero(code, sizeof code);
	sodium_memzero(url, sizeof url);
}

static void set_cookie(struct api_req *r, const char *value, uint64_t max_age)
{
	char cookie[WEB_SECRET_HEX + 128];
	snprintf(cookie, sizeof cookie,
		 WEB_COOKIE_NAME "=%s; HttpOnly; SameSite=Strict; Path=/; Max-Age=%llu", value,
		 (unsigned long long)max_age);
	evhttp_add_header(evhttp_request_get_output_headers(r->req), "Set-Cookie", cookie);
	sodium_memzero(cookie, sizeof cookie);
}

static void reply_session(struct api_req *r, int status, const struct web_session *s)
{
	char csrf[WEB_SECRET_HEX + 1];
	web_session_csrf_hex(s, csrf);
	api_reply(r, status,
		  json_pack("{s:s,s:I}", "csrf", csrf, "expires_in",
			    (json_int_t)web_session_expires_in(s, now_ms())));
	sodium_memzero(csrf, sizeof csrf);
}

/* POST /api/v1/web/session {"code"}: the code is the credential. */
static void handle_session_new(struct api_req *r)
{
	const json_t *code = r->body ? json_object_get(r->body, "code") : NULL;
	const char *hex = json_string_value(code);
	struct web_session *s =
		hex ? web_code_redeem(api_web_auth(r->api), hex, json_string_length(code), now_ms())
		    : NULL;
	if (!s) {
		if (api_auth_failed(r))
			return; /* 429 sent */
		api_reply_error(r, 401, "bad_code",
				"this login code is wrong, used or expired (codes work once, "
				"for 60 seconds): run `shoal web` again");
		return;
	}
	char id[WEB_SECRET_HEX + 1];
	web_session_id_hex(s, id);
	set_cookie(r, id, WEB_SESSION_TTL_S);
	sodium_memzero(id, sizeof id);
	reply_session(r, 200, s);
}

/* GET /api/v1/web/session: the page, reloaded, gets its CSRF token again. */
static void handle_session_get(struct api_req *r)
{
	if (!r->session) {
		api_reply_error(r, 401, "unauthorized",
				"no live session cookie: log in again with `shoal web`");
		return;
	}
	reply_session(r, 200, r->session);
}

/* DELETE /api/v1/web/session: log out (on_request has checked the CSRF). */
static void handle_session_delete(struct api_req *r)
{
	if (!r->session) {
		api_reply_error(r, 401, "unauthorized", "no live session cookie to log out");
		return;
	}
	web_session_end(r->session);
	r->session = NULL;
	set_cookie(r, "", 0);
	api_reply(r, 200, json_pack("{s:b}", "logged_out", 1));
}

const struct api_route api_web_routes[] = {
	{ API_POST, API_WEB_CODES_PATH, handle_codes },
	{ API_POST, API_WEB_SESSION_PATH, handle_session_new },
	{ API_GET, API_WEB_SESSION_PATH, handle_session_get },
	{ API_DELETE, API_WEB_SESSION_PATH, handle_session_delete },
};
const size_t api_web_routes_count = sizeof api_web_routes / sizeof api_web_routes[0];
