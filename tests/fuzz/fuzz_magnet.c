/* fuzz_magnet.c: fuzz harness for magnet link parsing (transfer/magnet.h).
 * Anything accepted must format back into a link that parses to the same
 * hashes, name, trackers and peers. */
#include "config.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "transfer/magnet.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct magnet m, again;
	if (magnet_parse(&m, data, data + size) != 0)
		return 0;
	struct buf b;
	buf_init(&b, 4 * MAGNET_MAX_LEN);
	int rc = magnet_format(&m, &b);
	if (rc == -ENOMEM || rc == -EMSGSIZE) /* escaping can outgrow the link ceiling */
		goto done;
	if (rc)
		abort();
	if (magnet_parse(&again, b.data, b.data + b.len) != 0)
		abort();
	if (again.has_v2 != m.has_v2 || again.has_v1 != m.has_v1 ||
	    memcmp(again.info_hash, m.info_hash, MAGNET_HASH_LEN) != 0 ||
	    memcmp(again.info_hash_v1, m.info_hash_v1, MAGNET_V1_HASH_LEN) != 0 ||
	    again.has_name != m.has_name || strcmp(again.name, m.name) != 0 ||
	    again.peer_count != m.peer_count || again.tracker_count != m.tracker_count)
		abort();
	for (size_t t = 0; t < m.tracker_count; t++)
		if (strcmp(again.trackers[t], m.trackers[t]) != 0)
			abort();
	for (size_t k = 0; k < m.peer_count; k++)
		if (strcmp(again.peers[k].host, m.peers[k].host) != 0 ||
		    again.peers[k].port != m.peers[k].port)
			abort();
done:
	buf_destroy(&b);
	return 0;
}
