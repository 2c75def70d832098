/* client.c: a small blocking HTTP/1.1 client for the local control API. */
#include "config.h"

#include "cli/client.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/util.h"

#define CLIENT_TIMEOUT_MS 30000
#define CLIENT_MAX_REPLY (64u * 1024 * 1024)

int cli_resolve_data_dir(struct cli_conn *conn, const char *flag_value)
{
	if (flag_value) {
		if (!*flag_value || strlen(flag_value) >= sizeof conn->data_dir) {
			fprintf(stderr, "shoal: bad --data-dir\n");
			return CLI_USAGE;
		}
		snprintf(conn->data_dir, sizeof conn->data_dir, "%s", flag_value);
		return 0;
	}
	if (default_data_dir(conn->data_dir, sizeof conn->data_dir) != 0) {
		fprintf(stderr, "shoal: no data dir: set --data-dir, SHOAL_DATA_DIR or HOME\n");
		return CLI_USAGE;
	}
	return 0;
}

static int read_small_file(const char *dir, const char *name, char *out, size_t cap)
{
	char path[PATH_MAX];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ssize_t n = read(fd, out, cap - 1);
	close(fd);
	if (n < 0)
		return -EIO;
	out[n] = '\0';
	out[strcspn(out, "\r\n")] = '\0';
	return 0;
}

int cli_load_conn(struct cli_conn *conn)
{
	int rc = read_small_file(conn->data_dir, "api.addr", conn->addr, sizeof conn->addr);
	if (rc == -ENOENT) {
		fprintf(stderr, "shoal: no shoal daemon for %s; start one with `shoal daemon`\n",
			conn->data_dir);
		return CLI_NO_DAEMON;
	}
	if (rc == 0)
		rc = read_small_file(conn->data_dir, "api.token", conn->token_hex,
				     sizeof conn->token_hex);
	if (rc != 0) {
		fprintf(stderr, "shoal: cannot read the daemon's address or token in %s: %s\n",
			conn->data_dir, strerror(-rc));
		return CLI_NO_DAEMON;
	}
	return 0;
}

static int connect_to(const char *addr, int timeout_ms)
{
	char host[100];
	uint16_t port;
	if (parse_hostport(addr, host, sizeof host, &port))
		return -EINVAL;
	char port_s[8];
	snprintf(port_s, sizeof port_s, "%u", (unsigned)port);
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICHOST };
	struct addrinfo *ai = NULL;
	if (getaddrinfo(host, port_s, &hints, &ai) != 0 || !ai)
		return -EINVAL;
	int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	int rc = 0;
	if (fd < 0) {
		rc = -errno;
		goto out;
	}
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
		if (errno != EINPROGRESS) {
			rc = -errno;
			goto out;
		}
		struct pollfd pfd = { .fd = fd, .events = POLLOUT };
		if (poll(&pfd, 1, timeout_ms < 5000 ? timeout_ms : 5000) != 1) {
			rc = -ETIMEDOUT;
			goto out;
		}
		int soerr = 0;
		socklen_t sl = sizeof soerr;
		getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
		if (soerr) {
			rc = -soerr;
			goto out;
		}
	}
out:
	freeaddrinfo(ai);
	if (rc) {
		if (fd >= 0)
			close(fd);
		return rc;
	}
	return fd;
}

static int send_all(int fd, const uint8_t *p, size_t n, int timeout_ms)
{
	while (n > 0) {
		struct pollfd pfd = { .fd = fd, .events = POLLOUT };
		if (poll(&pfd, 1, timeout_ms) != 1)
			return -ETIMEDOUT;
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EAGAIN || errno == EINTR)
				continue;
			return -errno;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* The milliseconds left of a step: the whole budget for each step when
 * there is no deadline (deadline 0), else what is left of it (0 once past). */
static int step_ms(int timeout_ms, int64_t deadline)
{
	if (!deadline)
		return timeout_ms;
	int64_t left = deadline - (int64_t)now_ms();
	return left <= 0 ? 0 : left < timeout_ms ? (int)left : timeout_ms;
}

static int request(const struct cli_conn *conn, const char *method, const char *path,
		   const json_t *body, int timeout_ms, bool whole, int *status_out,
		   json_t **json_out)
{
	int64_t deadline = whole ? (int64_t)now_ms() + timeout_ms : 0;
	*json_out = NULL;
	char *body_text = body ? json_dumps(body, JSON_COMPACT) : NULL;
	struct buf req, reply;
	buf_init(&req, 1u << 20);
	buf_init(&reply, CLIENT_MAX_REPLY);
	int rc = CLI_FAIL, fd = connect_to(conn->addr, step_ms(timeout_ms, deadline));
	if (fd < 0) {
		fprintf(stderr,
			"shoal: no shoal daemon answers at %s for %s (%s); start one with `shoal daemon`\n",
			conn->addr, conn->data_dir, strerror(-fd));
		rc = CLI_NO_DAEMON;
		goto done;
	}
	int e = buf_printf(&req,
			   "%s %s HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\n"
			   "Connection: close\r\nAccept: application/json\r\n",
			   method, path, conn->addr, conn->token_hex);
	if (!e && body_text)
		e = buf_printf(&req, "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
			       strlen(body_text), body_text);
	else if (!e)
		e = buf_printf(&req, "Content-Length: 0\r\n\r\n");
	if (e || send_all(fd, req.data, req.len, step_ms(timeout_ms, deadline)) != 0) {
		fprintf(stderr, "shoal: cannot send the request to %s\n", conn->addr);
		goto done;
	}
	for (;;) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		/* Past the deadline, stop even while bytes keep coming. */
		int pr = deadline && (int64_t)now_ms() >= deadline
				 ? 0
				 : poll(&pfd, 1, step_ms(timeout_ms, deadline));
		if (pr == 0) {
			if (timeout_ms % 1000 == 0)
				fprintf(stderr, "shoal: the daemon at %s did not answer in %d s\n",
					conn->addr, timeout_ms / 1000);
			else
				fprintf(stderr, "shoal: the daemon at %s did not answer in %d ms\n",
					conn->addr, timeout_ms);
			goto done;
		}
		if (pr < 0 && errno == EINTR)
			continue;
		uint8_t chunk[16384];
		ssize_t n = recv(fd, chunk, sizeof chunk, 0);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (n <= 0)
			break;
		if (buf_append(&reply, chunk, (size_t)n)) {
			fprintf(stderr, "shoal: reply from %s too large\n", conn->addr);
			goto done;
		}
	}
	if (buf_append_byte(&reply, 0))
		goto done;
	const char *text = (const char *)reply.data;
	int status;
	if (sscanf(text, "HTTP/1.%*d %d", &status) != 1) {
		fprintf(stderr, "shoal: malformed reply from %s\n", conn->addr);
		goto done;
	}
	const char *hdr_end = strstr(text, "\r\n\r\n");
	if (hdr_end) {
		json_error_t jerr;
		*json_out = json_loads(hdr_end + 4, 0, &jerr);
	}
	*status_out = status;
	rc = 0;
done:
	if (fd >= 0)
		close(fd);
	free(body_text);
	buf_destroy(&req);
	buf_destroy(&reply);
	return rc;
}

int cli_request(const struct cli_conn *conn, const char *method, const char *path,
		const json_t *body, int *status_out, json_t **json_out)
{
	return request(conn, method, path, body, CLIENT_TIMEOUT_MS, false, status_out, json_out);
}

int cli_request_within(const struct cli_conn *conn, const char *method, const char *path,
		       const json_t *body, int timeout_ms, int *status_out, json_t **json_out)
{
	return request(conn, method, path, body, timeout_ms, true, status_out, json_out);
}

int cli_call(const struct cli_conn *conn, const char *cmd, const char *method, const char *path,
	     const json_t *body, json_t **reply_out)
{
	int status;
	int rc = cli_request(conn, method, path, body, &status, reply_out);
	if (rc)
		return rc;
	if (status < 200 || status > 299) {
		cli_print_error(cmd, status, *reply_out);
		json_decref(*reply_out);
		*reply_out = NULL;
		return CLI_FAIL;
	}
	return 0;
}

void cli_print_error(const char *cmd, int status, const json_t *reply)
{
	const char *msg = NULL;
	json_t *err = reply ? json_object_get(reply, "error") : NULL;
	if (err)
		msg = json_string_value(json_object_get(err, "message"));
	if (msg)
		fprintf(stderr, "shoal %s: %s\n", cmd, msg);
	else
		fprintf(stderr, "shoal %s: the daemon answered HTTP %d\n", cmd, status);
}
