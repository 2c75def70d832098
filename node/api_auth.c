/* api_auth.c: the checks every API request passes: Host, bearer token, JSON depth. */
#include "config.h"

#include "node/api.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "common/log.h"
#include "common/util.h"

bool api_host_allowed(const char *host, uint16_t port, const char *bind_addr)
{
	if (!host)
		return false;
	char name[80];
	const char *colon;
	size_t nlen;
	if (host[0] == '[') {
		const char *close = strchr(host, ']');
		if (!close)
			return false;
		nlen = (size_t)(close - host) + 1; /* keep the brackets */
		colon = close[1] == ':' ? close + 1 : NULL;
		if (!colon && close[1] != '\0')
			return false;
	} else {
		colon = strchr(host, ':');
		nlen = colon ? (size_t)(colon - host) : strlen(host);
	}
	if (nlen == 0 || nlen >= sizeof name)
		return false;
	memcpy(name, host, nlen);
	name[nlen] = '\0';

	/* The port must be present and ours (a browser always sends it for a
	 * non-default port; we never listen on 80). */
	uint16_t p;
	if (!colon || parse_port(colon + 1, &p) || p != port)
		return false;

	if (strcasecmp(name, "localhost") == 0 || strcmp(name, "127.0.0.1") == 0 ||
	    strcmp(name, "[::1]") == 0)
		return true;
	/* Bound elsewhere on purpose (--api-bind): that literal address too. */
	if (bind_addr && *bind_addr) {
		char lit[80];
		if (strchr(bind_addr, ':'))
			snprintf(lit, sizeof lit, "[%s]", bind_addr);
		else
			snprintf(lit, sizeof lit, "%s", bind_addr);
		if (strcmp(name, lit) == 0)
			return true;
	}
	return false;
}

bool api_bearer_ok(const char *authorization, const uint8_t token[API_TOKEN_LEN])
{
	if (!authorization || strncasecmp(authorization, "Bearer ", 7) != 0)
		return false;
	const char *t = authorization + 7;
	while (*t == ' ')
		t++;
	size_t n = strlen(t);
	while (n > 0 && (t[n - 1] == ' ' || t[n - 1] == '\t'))
		n--;
	uint8_t given[API_TOKEN_LEN];
	if (hex_decode(t, n, given, sizeof given))
		return false;
	return sodium_memcmp(given, token, API_TOKEN_LEN) == 0;
}

int api_json_depth(const char *text, size_t len)
{
	int depth = 0, max = 0;
	bool in_str = false, esc = false;
	for (size_t i = 0; i < len; i++) {
		char c = text[i];
		if (in_str) {
			if (esc)
				esc = false;
			else if (c == '\\')
				esc = true;
			else if (c == '"')
				in_str = false;
			continue;
		}
		if (c == '"') {
			in_str = true;
		} else if (c == '[' || c == '{') {
			if (++depth > max)
				max = depth;
		} else if ((c == ']' || c == '}') && depth > 0) {
			depth--;
		}
	}
	return max;
}

/* Read the token file at `path`; when it is absent and `create`, make it.
 * `tighten`: a file other users can read is made 0600 (the API token, ours
 * alone); else such a file is only warned about when anyone may read it
 * (a metrics token file the administrator shares with the scraper's
 * group).  Only a regular file is read, opened without blocking (a FIFO
 * there would stall the loop). */
static int token_file(const char *path, bool create, bool tighten, const char *what,
		      uint8_t token_out[API_TOKEN_LEN], char *err, size_t err_len)
{
	char hex[2 * API_TOKEN_LEN + 2];
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (fd < 0 && errno == ENOENT && create) {
		randombytes_buf(token_out, API_TOKEN_LEN);
		int rc = write_secret_hex_file(path, token_out, API_TOKEN_LEN, (uid_t)-1, (gid_t)-1);
		if (rc != 0)
			snprintf(err, err_len, "%s: cannot write the %s: %s", path, what, strerror(-rc));
		return rc;
	}
	if (fd < 0)
		goto sys_fail;
	struct stat st;
	if (fstat(fd, &st) != 0)
		goto sys_fail_close;
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		snprintf(err, err_len, "%s: not a regular file", path);
		return -EINVAL;
	}
	if (tighten && (st.st_mode & 077)) {
		log_warn("%s was readable by other users; tightening it to 0600", path);
		if (fchmod(fd, 0600) != 0)
			log_warn("%s: chmod: %s", path, strerror(errno));
	} else if (!tighten && (st.st_mode & 004)) {
		log_warn("%s can be read by every user of this machine: anyone can read the "
			 "metrics with it (chmod o-rwx it)",
			 path);
	}
	ssize_t n = read(fd, hex, sizeof hex);
	close(fd);
	size_t len = n > 0 ? (size_t)n : 0;
	while (len > 0 && (hex[len - 1] == '\n' || hex[len - 1] == '\r'))
		len--;
	if (n < 0 || hex_decode(hex, len, token_out, API_TOKEN_LEN)) {
		sodium_memzero(hex, sizeof hex);
		snprintf(err, err_len,
			 "%s does not hold a valid %s (64 hex digits); delete it to get a new one",
			 path, what);
		return -EINVAL;
	}
	sodium_memzero(hex, sizeof hex);
	return 0;
sys_fail_close:;
	int saved = errno;
	close(fd);
	errno = saved;
sys_fail:;
	int e = errno;
	snprintf(err, err_len, "%s: %s", path, strerror(e));
	return -e;
}

int api_token_load_or_create(const char *path, uint8_t token_out[API_TOKEN_LEN], char *err,
			     size_t err_len)
{
	return token_file(path, true, true, "API token", token_out, err, err_len);
}

int api_token_load(const char *path, uint8_t token_out[API_TOKEN_LEN], char *err, size_t err_len)
{
	return token_file(path, false, false, "token", token_out, err, err_len);
}
