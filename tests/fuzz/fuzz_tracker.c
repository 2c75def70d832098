/* fuzz_tracker.c: fuzz harness for what trackers send (transfer/tracker.h).
 * The first byte picks the surface: an HTTP announce answer, an HTTP
 * scrape answer, a UDP answer (connect, announce over IPv4 or IPv6,
 * scrape), or a .torrent's announce-list (read, then written back and read
 * again: the same list must come out). */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "transfer/tracker.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_reply(const struct tracker_reply *r)
{
	if (r->peer_count > TRACKER_MAX_PEERS || (r->peer_count && !r->peers))
		abort();
	for (size_t i = 0; i < r->peer_count; i++)
		if ((r->peers[i].family != 4 && r->peers[i].family != 6) || r->peers[i].port == 0)
			abort();
	if (strlen(r->message) > TRACKER_MAX_MESSAGE || strlen(r->warning) > TRACKER_MAX_MESSAGE)
		abort();
}

static void torrent_round_trip(const uint8_t *p, const uint8_t *end)
{
	static struct tracker_list l, again;
	if (tracker_list_from_torrent(p, end, &l) != 0)
		return;
	struct buf b;
	buf_init(&b, 4u << 20);
	if (tracker_torrent_set(p, end, &l, &b) == 0) {
		if (tracker_list_from_torrent(b.data, b.data + b.len, &again) != 0 ||
		    again.count != l.count)
			abort();
		for (size_t i = 0; i < l.count; i++)
			if (strcmp(again.e[i].url, l.e[i].url) != 0 || again.e[i].tier != l.e[i].tier)
				abort();
	}
	buf_destroy(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	const uint8_t *p = data + 1, *end = data + size;
	struct tracker_reply r;
	tracker_reply_init(&r);
	uint8_t hash[TRACKER_HASH_LEN];
	memset(hash, 'H', sizeof hash);
	uint64_t cid;
	uint32_t action, tid;
	int rc = 0;
	switch (data[0] % 7) {
	case 0:
		rc = tracker_http_parse_announce(p, end, &r);
		break;
	case 1:
		rc = tracker_http_parse_scrape(p, end, hash, &r);
		break;
	case 2:
		if (tracker_udp_header(p, end, &action, &tid) == 0)
			rc = tracker_udp_parse_connect(p, end, &cid);
		break;
	case 3:
		rc = tracker_udp_parse_reply(p, end, TRACKER_UDP_ANNOUNCE, 4, &r);
		break;
	case 4:
		rc = tracker_udp_parse_reply(p, end, TRACKER_UDP_ANNOUNCE, 6, &r);
		break;
	case 5:
		rc = tracker_udp_parse_reply(p, end, TRACKER_UDP_SCRAPE, 4, &r);
		break;
	default:
		torrent_round_trip(p, end);
		break;
	}
	if (rc == 0)
		check_reply(&r);
	else
		check_reply(&r); /* a failed parse leaves a consistent reply too */
	tracker_reply_destroy(&r);
	return 0;
}
