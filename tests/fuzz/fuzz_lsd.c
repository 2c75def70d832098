/* fuzz_lsd.c: fuzz harness for what the LAN sends (transfer/lsd.h).
 * Every input is parsed as an LSD datagram; when it parses, the announce
 * is built again (hashes, port, cookie when it is one we could send) and
 * the packet we build must parse back to the same announce, in as many
 * packets as the size limit needs. */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "transfer/lsd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const struct lsd_announce *a)
{
	if (a->port == 0 || a->hash_count == 0 || a->hash_count > LSD_MAX_HASHES ||
	    strlen(a->cookie) > LSD_MAX_COOKIE)
		abort();
	for (size_t i = 0; i < a->hash_count; i++)
		for (size_t j = i + 1; j < a->hash_count; j++)
			if (memcmp(a->hashes[i], a->hashes[j], LSD_HASH_LEN) == 0)
				abort();
}

static void round_trip(const struct lsd_announce *a, bool ipv6)
{
	static struct lsd_packet pk;
	static struct lsd_announce back;
	const char *cookie = a->cookie;
	if (lsd_packet_begin(&pk, ipv6, a->port, cookie) != 0 &&
	    lsd_packet_begin(&pk, ipv6, a->port, NULL) != 0)
		abort(); /* a parsed port is always one we can send */
	size_t done = 0;
	while (done < a->hash_count) {
		size_t first = done;
		while (done < a->hash_count && lsd_packet_add(&pk, a->hashes[done]) == 0)
			done++;
		if (done == first)
			abort(); /* an empty packet takes at least one hash */
		size_t len = lsd_packet_finish(&pk);
		if (len > LSD_MAX_PACKET || lsd_parse(pk.buf, pk.buf + len, &back) != 0)
			abort();
		if (back.port != a->port || back.hash_count != done - first ||
		    memcmp(back.hashes, a->hashes[first], back.hash_count * LSD_HASH_LEN) != 0 ||
		    strcmp(back.cookie, pk.cookie) != 0)
			abort();
		if (lsd_packet_begin(&pk, ipv6, a->port, pk.cookie) != 0)
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct lsd_announce a;
	int rc = lsd_parse(data, data + size, &a);
	if (rc == 0) {
		check(&a);
		round_trip(&a, size & 1);
	} else if (a.port || a.hash_count || a.cookie[0]) {
		abort(); /* a refused packet leaves nothing behind */
	}
	return 0;
}
