/* notify.h: readiness and status for a service manager (sd_notify(3)'s
 * datagram protocol), without linking libsystemd. */
#ifndef SHOAL_NODE_NOTIFY_H
#define SHOAL_NODE_NOTIFY_H

#include <sys/socket.h>
#include <sys/un.h>

/* The largest message sent: a few "KEY=value" lines. */
#define NOTIFY_MAX_MSG 512

/* Fill `out` with the address named by a $NOTIFY_SOCKET value: an
 * absolute path, or '@' then the name of a socket in the abstract
 * namespace (the '@' becomes the leading NUL).  Returns 0 with the
 * address length in *len_out, -EINVAL for an empty or relative value,
 * -ENAMETOOLONG when it does not fit sun_path, -EAFNOSUPPORT for other
 * kinds (systemd's "vsock:" addresses). */
int notify_addr(const char *value, struct sockaddr_un *out, socklen_t *len_out)
	__attribute__((warn_unused_result));

/* Send `msg` (newline-separated "KEY=value" assignments, e.g. "READY=1")
 * as one datagram to $NOTIFY_SOCKET.  Returns 1 when sent, 0 when no
 * manager listens (the variable is unset: run by hand), or a negative
 * errno; never blocks (a full socket drops the message, which for status
 * lines is what we want).  Loop thread or any: it keeps no state. */
int notify_send(const char *msg);

/* notify_send of a printf-formatted message (cut at NOTIFY_MAX_MSG). */
int notify_sendf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
