/* addr.h: socket addresses as text, one copy for every library. */
#ifndef SHOAL_COMMON_ADDR_H
#define SHOAL_COMMON_ADDR_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* Room for "[v6 address]:65535" and its NUL. */
#define ADDR_TEXT_MAX 56

/* The numeric host of an IPv4 or IPv6 address (no brackets) into `host`,
 * and its port.  Returns 0, or -EAFNOSUPPORT for another family (host is
 * then "?"), -ENOSPC if `host` is too small. */
int addr_host_port(const struct sockaddr *sa, char *host, size_t host_len, uint16_t *port_out)
	__attribute__((warn_unused_result));

/* "1.2.3.4:5" or "[::1]:5" into `out` (ADDR_TEXT_MAX is always enough; a
 * shorter buffer gets a truncated, NUL-terminated string); "?" for another
 * family. */
void addr_format(const struct sockaddr *sa, char *out, size_t out_len);

/* A numeric IPv4 or IPv6 host (no brackets) and a port into `ss`.  Returns
 * the address's length, or 0 when `host` is not a numeric address (`ss` is
 * then zeroed). */
socklen_t addr_from_numeric(const char *host, uint16_t port, struct sockaddr_storage *ss);

#endif
