/* id.c: 160-bit node ids under the XOR metric, and compact endpoint addresses. */
#include "config.h"

#include <errno.h>
#include <netinet/in.h>
#include <string.h>

#include "dht/dht-internal.h"

int dht_id_cmp_dist(const uint8_t target[DHT_ID_LEN], const uint8_t a[DHT_ID_LEN],
		    const uint8_t b[DHT_ID_LEN])
{
	for (size_t i = 0; i < DHT_ID_LEN; i++) {
		uint8_t da = a[i] ^ target[i], db = b[i] ^ target[i];
		if (da != db)
			return da < db ? -1 : 1;
	}
	return 0;
}

unsigned dht_id_prefix(const uint8_t a[DHT_ID_LEN], const uint8_t b[DHT_ID_LEN])
{
	for (unsigned i = 0; i < DHT_ID_LEN; i++) {
		uint8_t x = a[i] ^ b[i];
		if (x) {
			unsigned bits = 0;
			while (!(x & 0x80)) {
				x <<= 1;
				bits++;
			}
			return i * 8 + bits;
		}
	}
	return DHT_ID_LEN * 8;
}

void dht_id_xor(uint8_t out[DHT_ID_LEN], const uint8_t a[DHT_ID_LEN], const uint8_t b[DHT_ID_LEN])
{
	for (size_t i = 0; i < DHT_ID_LEN; i++)
		out[i] = a[i] ^ b[i];
}

static const uint8_t v4mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

int dht_addr_from_sa(struct dht_addr *out, const struct sockaddr *sa, socklen_t len)
{
	memset(out, 0, sizeof *out);
	if (!sa || len < (socklen_t)sizeof(sa_family_t))
		return -EAFNOSUPPORT;
	if (sa->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) {
		struct sockaddr_in sin;
		memcpy(&sin, sa, sizeof sin);
		out->family = AF_INET;
		out->port = ntohs(sin.sin_port);
		memcpy(out->ip, &sin.sin_addr, 4);
	} else if (sa->sa_family == AF_INET6 && len >= (socklen_t)sizeof(struct sockaddr_in6)) {
		struct sockaddr_in6 sin6;
		memcpy(&sin6, sa, sizeof sin6);
		out->port = ntohs(sin6.sin6_port);
		if (memcmp(sin6.sin6_addr.s6_addr, v4mapped, 12) == 0) {
			out->family = AF_INET;
			memcpy(out->ip, sin6.sin6_addr.s6_addr + 12, 4);
		} else {
			out->family = AF_INET6;
			memcpy(out->ip, sin6.sin6_addr.s6_addr, 16);
		}
	} else {
		return -EAFNOSUPPORT;
	}
	if (out->port == 0)
		return -EAFNOSUPPORT;
	return 0;
}

socklen_t dht_addr_to_sa(const struct dht_addr *a, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof *ss);
	if (a->family == AF_INET) {
		struct sockaddr_in sin;
		memset(&sin, 0, sizeof sin);
		sin.sin_family = AF_INET;
		sin.sin_port = htons(a->port);
		memcpy(&sin.sin_addr, a->ip, 4);
		memcpy(ss, &sin, sizeof sin);
		return (socklen_t)sizeof sin;
	}
	struct sockaddr_in6 sin6;
	memset(&sin6, 0, sizeof sin6);
	sin6.sin6_family = AF_INET6;
	sin6.sin6_port = htons(a->port);
	memcpy(sin6.sin6_addr.s6_addr, a->ip, 16);
	memcpy(ss, &sin6, sizeof sin6);
	return (socklen_t)sizeof sin6;
}

bool dht_addr_eq(const struct dht_addr *a, const struct dht_addr *b)
{
	return a->family == b->family && a->port == b->port && memcmp(a->ip, b->ip, 16) == 0;
}

size_t dht_addr_iplen(const struct dht_addr *a)
{
	return a->family == AF_INET ? 4 : 16;
}
