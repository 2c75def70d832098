/* fuzz_magnet.c: fuzz harness for magnet link parsing (transfer/magnet.h).
 * Anything accepted must format back into a link that parses to the same
 * hash, name and peers. */
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
	int rc = magnet_format(m.info_hash, m.has_name ? m.name : NULL, m.peers, m.peer_count, &b);
	if (rc == -ENOMEM || rc == -EMSGSIZE) /* escaping can outgrow the link ceiling */
		goto done;
	if (rc)
		abort();
	if (magnet_parse(&again, b.data, b.data + b.len) != 0)
		abort();
	if (memcmp(again.info_hash, m.info_hash, MAGNET_HASH_LEN) != 0 ||
	    again.has_name != m.has_name || strcmp(again.name, m.name) != 0 ||
	    again.peer_count != m.peer_count)
		abort();
	for (size_t k = 0; k < m.peer_count; k++)
		if (strcmp(again.peers[k].host, m.peers[k].host) != 0 ||
		    again.peers[k].port != m.peers[k].port)
			abort();
done:
	buf_destroy(&b);
	return 0;
}
