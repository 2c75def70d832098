/* addr.c: socket addresses as text. */
#include "config.h"

#include "common/addr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

int addr_host_port(const struct sockaddr *sa, char *host, size_t host_len, uint16_t *port_out)
{
	const void *ip;
	uint16_t port;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
		ip = &s4->sin_addr;
		port = ntohs(s4->sin_port);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
		ip = &s6->sin6_addr;
		port = ntohs(s6->sin6_port);
	} else {
		snprintf(host, host_len, "?");
		return -EAFNOSUPPORT;
	}
	if (!inet_ntop(sa->sa_family, ip, host, (socklen_t)host_len)) {
		snprintf(host, host_len, "?");
		return -ENOSPC;
	}
	*port_out = port;
	return 0;
}

void addr_format(const struct sockaddr *sa, char *out, size_t out_len)
{
	char ip[INET6_ADDRSTRLEN];
	uint16_t port = 0;
	if (addr_host_port(sa, ip, sizeof ip, &port) != 0)
		snprintf(out, out_len, "?");
	else if (sa->sa_family == AF_INET6)
		snprintf(out, out_len, "[%s]:%u", ip, (unsigned)port);
	else
		snprintf(out, out_len, "%s:%u", ip, (unsigned)port);
}

socklen_t addr_from_numeric(const char *host, uint16_t port, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof *ss);
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
	if (inet_pton(AF_INET, host, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons(port);
		return sizeof *s4;
	}
	if (inet_pton(AF_INET6, host, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(port);
		return sizeof *s6;
	}
	return 0; /* inet_pton wrote nothing: ss is still zeroed */
}
