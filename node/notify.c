/* notify.c: sd_notify(3)'s protocol in a few lines: one datagram of
 * "KEY=value" lines to the AF_UNIX socket named by $NOTIFY_SOCKET. */
#include "config.h"

#include "node/notify.h"

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int notify_addr(const char *value, struct sockaddr_un *out, socklen_t *len_out)
{
	if (!value || !*value)
		return -EINVAL;
	if (value[0] != '/' && value[0] != '@')
		return strchr(value, ':') ? -EAFNOSUPPORT : -EINVAL;
	size_t n = strlen(value);
	if (n > sizeof out->sun_path || (value[0] == '/' && n == sizeof out->sun_path))
		return -ENAMETOOLONG; /* a path also needs its NUL */
	memset(out, 0, sizeof *out);
	out->sun_family = AF_UNIX;
	memcpy(out->sun_path, value, n);
	if (value[0] == '@') {
		/* Abstract: the name is exactly the bytes after the NUL, no
		 * terminator, so the length counts them and no more. */
		out->sun_path[0] = '\0';
		*len_out = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
	} else {
		*len_out = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
	}
	return 0;
}

int notify_send(const char *msg)
{
	const char *where = getenv("NOTIFY_SOCKET");
	if (!where)
		return 0;
	struct sockaddr_un sa;
	socklen_t len;
	int rc = notify_addr(where, &sa, &len);
	if (rc)
		return rc;
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	size_t n = strlen(msg);
	ssize_t sent = sendto(fd, msg, n, MSG_NOSIGNAL, (struct sockaddr *)&sa, len);
	rc = sent < 0 ? -errno : (size_t)sent == n ? 1 : -EMSGSIZE;
	close(fd);
	return rc;
}

int notify_sendf(const char *fmt, ...)
{
	if (!getenv("NOTIFY_SOCKET"))
		return 0;
	char msg[NOTIFY_MAX_MSG];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	return notify_send(msg);
}
