/* test_tracker.c: the tracker codec (transfer/tracker.h): URLs, announce
 * lists in and out of a .torrent, HTTP announce and scrape answers, and
 * BEP 15 UDP packets. */
#include "config.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/buf.h"
#include "transfer/tracker.h"

/* Run a parser on an exact-size heap copy (no NUL) so ASan sees overreads. */
static uint8_t *dup_bytes(const void *s, size_t n)
{
	uint8_t *copy = malloc(n ? n : 1);
	assert_non_null(copy);
	memcpy(copy, s, n);
	return copy;
}

static int parse_announce(const void *s, size_t n, struct tracker_reply *r)
{
	uint8_t *c = dup_bytes(s, n);
	tracker_reply_init(r);
	int rc = tracker_http_parse_announce(c, c + n, r);
	free(c);
	return rc;
}

#define PA(lit, r) parse_announce(lit, sizeof lit - 1, r)

static void test_url(void **state)
{
	(void)state;
	struct tracker_url u;
	assert_int_equal(tracker_url_parse("http://tracker.example/announce", &u), 0);
	assert_int_equal(u.scheme, TRACKER_HTTP);
	assert_string_equal(u.host, "tracker.example");
	assert_int_equal(u.port, 80);
	assert_string_equal(u.path, "/announce");
	assert_int_equal(tracker_url_parse("HTTPS://t.example:8443/a?passkey=x", &u), 0);
	assert_int_equal(u.scheme, TRACKER_HTTPS);
	assert_int_equal(u.port, 8443);
	assert_string_equal(u.path, "/a?passkey=x");
	assert_int_equal(tracker_url_parse("udp://[::1]:6969", &u), 0);
	assert_int_equal(u.scheme, TRACKER_UDP);
	assert_true(u.host_v6);
	assert_string_equal(u.host, "::1");
	assert_int_equal(u.port, 6969);
	assert_string_equal(u.path, "/");
	assert_int_equal(tracker_url_parse("udp://127.0.0.1:80/announce", &u), 0);
	assert_int_equal(tracker_url_parse("http://h?x=1", &u), 0);
	assert_string_equal(u.path, "/?x=1");

	assert_int_equal(tracker_url_parse("wss://t.example/announce", &u), TRACKER_E_SCHEME);
	assert_int_equal(tracker_url_parse("ftp://t.example/", &u), TRACKER_E_SCHEME);
	const char *bad[] = {
		"udp://t.example/announce", /* no port */
		"http://",
		"http://:80/",
		"http://user@t.example/",
		"http://t.example:0/",
		"http://t.example:65536/",
		"http://t.example:12a/",
		"http://t.example/a b",
		"http://t.example/#frag",
		"http://[::1/",
		"http://[zz]/",
		"http://a:1:2/",
		"tracker.example/announce",
		"http://t.example/\x01",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		assert_int_equal(tracker_url_parse(bad[i], &u), TRACKER_E_URL);
		assert_int_equal(u.host[0], 0);
	}
	char longurl[TRACKER_MAX_URL + 16];
	memset(longurl, 'a', sizeof longurl - 1);
	memcpy(longurl, "http://", 7);
	longurl[sizeof longurl - 1] = '\0';
	assert_int_equal(tracker_url_parse(longurl, &u), TRACKER_E_URL);
}

static void test_list(void **state)
{
	(void)state;
	struct tracker_list *l = calloc(1, sizeof *l);
	assert_non_null(l);
	assert_int_equal(tracker_list_add(l, 1, "http://b/announce"), 0);
	assert_int_equal(tracker_list_add(l, 0, "http://a/announce"), 0);
	assert_int_equal(tracker_list_add(l, 1, "udp://c:1"), 0);
	assert_int_equal(tracker_list_add(l, 0, "http://a2/announce"), 0);
	assert_int_equal(tracker_list_add(l, 0, "http://a/announce"), 1);
	assert_int_equal(tracker_list_add(l, 0, "wss://x/"), TRACKER_E_SCHEME);
	assert_int_equal(tracker_list_add(l, TRACKER_MAX_TIER + 1, "http://z/"), -ERANGE);
	assert_int_equal(l->count, 4);
	assert_string_equal(l->e[0].url, "http://a/announce");
	assert_string_equal(l->e[1].url, "http://a2/announce");
	assert_string_equal(l->e[2].url, "http://b/announce");
	assert_string_equal(l->e[3].url, "udp://c:1");
	assert_int_equal(l->e[3].tier, 1);
	for (unsigned i = l->count; i < TRACKER_MAX_TRACKERS; i++) {
		char u[64];
		snprintf(u, sizeof u, "http://h%u/announce", i);
		assert_int_equal(tracker_list_add(l, 2, u), 0);
	}
	assert_int_equal(tracker_list_add(l, 2, "http://full/"), -ENOSPC);
	free(l);
}

#define INFO "4:infod4:name1:x12:piece lengthi16384ee"

static void test_from_torrent(void **state)
{
	(void)state;
	struct tracker_list *l = calloc(1, sizeof *l);
	assert_non_null(l);
	const char *t1 = "d8:announce17:http://a/announce" INFO "e";
	uint8_t *c = dup_bytes(t1, strlen(t1));
	assert_int_equal(tracker_list_from_torrent(c, c + strlen(t1), l), 0);
	free(c);
	assert_int_equal(l->count, 1);
	assert_string_equal(l->e[0].url, "http://a/announce");

	/* announce-list wins; empty and malformed tiers are skipped; a bad URL
	 * and a duplicate are counted. */
	const char *t2 = "d8:announce13:http://x/ann.13:announce-list"
			 "ll17:http://a/announce9:udp://b:1el5:junk:ei42eleli3e9:udp://c:2ee"
			 "10:created by3:abc" INFO "e";
	c = dup_bytes(t2, strlen(t2));
	assert_int_equal(tracker_list_from_torrent(c, c + strlen(t2), l), 0);
	free(c);
	assert_int_equal(l->count, 3);
	assert_int_equal(l->e[0].tier, 0);
	assert_int_equal(l->e[1].tier, 0);
	assert_string_equal(l->e[2].url, "udp://c:2");
	assert_int_equal(l->e[2].tier, 1);
	assert_int_equal(l->dropped, 1);

	const char *t3 = "d4:infod4:name1:xee";
	c = dup_bytes(t3, strlen(t3));
	assert_int_equal(tracker_list_from_torrent(c, c + strlen(t3), l), 0);
	assert_int_equal(l->count, 0);
	free(c);
	const char *bad[] = { "", "le", "d8:announce", "d8:announcei1e", "d3:abc999:xe",
			      "d4:infod4:name1:xe" };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		c = dup_bytes(bad[i], strlen(bad[i]));
		assert_int_equal(tracker_list_from_torrent(c, c + strlen(bad[i]), l),
				 TRACKER_E_BENCODE);
		free(c);
	}
	/* Deep nesting in a skipped value is refused, not recursed into. */
	char deep[400];
	size_t n = 0;
	n += (size_t)snprintf(deep, sizeof deep, "d1:x");
	for (int i = 0; i < 100; i++)
		deep[n++] = 'l';
	for (int i = 0; i < 100; i++)
		deep[n++] = 'e';
	deep[n++] = 'e';
	assert_int_equal(tracker_list_from_torrent((uint8_t *)deep, (uint8_t *)deep + n, l),
			 TRACKER_E_BENCODE);
	free(l);
}

static void test_torrent_set(void **state)
{
	(void)state;
	struct tracker_list *l = calloc(1, sizeof *l), *back = calloc(1, sizeof *back);
	assert_non_null(l);
	assert_non_null(back);
	assert_int_equal(tracker_list_add(l, 0, "http://a/announce"), 0);
	assert_int_equal(tracker_list_add(l, 1, "udp://b:1"), 0);
	assert_int_equal(tracker_list_add(l, 1, "udp://c:1"), 0);
	const char *t = "d8:announce5:old:/10:created by3:abc" INFO "12:piece layersdee";
	struct buf out;
	buf_init(&out, 4096);
	assert_int_equal(tracker_torrent_set((const uint8_t *)t, (const uint8_t *)t + strlen(t), l,
					     &out),
			 0);
	const char *want = "d8:announce17:http://a/announce13:announce-list"
			   "ll17:http://a/announceel9:udp://b:19:udp://c:1ee"
			   "10:created by3:abc" INFO "12:piece layersdee";
	assert_int_equal(out.len, strlen(want));
	assert_memory_equal(out.data, want, out.len);
	assert_int_equal(tracker_list_from_torrent(out.data, out.data + out.len, back), 0);
	assert_int_equal(back->count, 3);
	assert_int_equal(back->e[2].tier, 1);

	/* An empty list removes the keys; keys before "announce" stay first. */
	struct tracker_list empty = { 0 };
	buf_reset(&out);
	const char *t2 = "d1:a1:b8:announce1:x" INFO "e";
	assert_int_equal(tracker_torrent_set((const uint8_t *)t2, (const uint8_t *)t2 + strlen(t2),
					     &empty, &out),
			 0);
	assert_int_equal(out.len, strlen("d1:a1:b" INFO "e"));
	assert_memory_equal(out.data, "d1:a1:b" INFO "e", out.len);
	buf_reset(&out);
	assert_int_equal(tracker_torrent_set((const uint8_t *)"le", (const uint8_t *)"le" + 2, l,
					     &out),
			 TRACKER_E_BENCODE);
	buf_destroy(&out);
	free(l);
	free(back);
}

static void test_announce_url(void **state)
{
	(void)state;
	struct tracker_announce a = { .port = 6881, .uploaded = 1, .downloaded = 2, .left = 3,
				      .event = TRACKER_EVENT_STARTED, .numwant = 50,
				      .key = 0xdeadbeef };
	for (int i = 0; i < 20; i++) {
		a.info_hash[i] = (uint8_t)(i * 13);
		a.peer_id[i] = (uint8_t)('A' + i);
	}
	a.info_hash[1] = '~';
	a.info_hash[2] = ' ';
	struct buf b;
	buf_init(&b, 4096);
	assert_int_equal(tracker_http_announce_url("http://t/announce", &a, &b), 0);
	assert_int_equal(buf_append_byte(&b, 0), 0);
	assert_string_equal((char *)b.data,
			    "http://t/announce?info_hash=%00~%20%274AN%5Bhu%82%8F%9C%A9%B6%C3%D0"
			    "%DD%EA%F7&peer_id=ABCDEFGHIJKLMNOPQRST&port=6881&uploaded=1&downloaded=2"
			    "&left=3&compact=1&no_peer_id=1&numwant=50&key=deadbeef&event=started");
	buf_reset(&b);
	a.event = TRACKER_EVENT_NONE;
	a.tracker_id = "id 1";
	assert_int_equal(tracker_http_announce_url("http://t/a?pk=1", &a, &b), 0);
	assert_int_equal(buf_append_byte(&b, 0), 0);
	assert_non_null(strstr((char *)b.data, "http://t/a?pk=1&info_hash="));
	assert_null(strstr((char *)b.data, "event="));
	assert_non_null(strstr((char *)b.data, "&trackerid=id%201"));

	buf_reset(&b);
	assert_int_equal(tracker_http_scrape_url("http://t/x/announce.php?pk=1", a.info_hash, &b), 0);
	assert_int_equal(buf_append_byte(&b, 0), 0);
	assert_non_null(strstr((char *)b.data, "http://t/x/scrape.php?pk=1&info_hash=%00~"));
	buf_reset(&b);
	assert_int_equal(tracker_http_scrape_url("http://t/announce", a.info_hash, &b), 0);
	assert_int_equal(memcmp(b.data, "http://t/scrape?info_hash=", 26), 0);
	assert_int_equal(tracker_http_scrape_url("http://t/a", a.info_hash, &b), TRACKER_E_NO_SCRAPE);
	assert_int_equal(tracker_http_scrape_url("http://t/announce/x", a.info_hash, &b),
			 TRACKER_E_NO_SCRAPE);
	assert_int_equal(tracker_http_scrape_url("http://announce", a.info_hash, &b),
			 TRACKER_E_NO_SCRAPE);
	buf_destroy(&b);
}

static void test_http_announce(void **state)
{
	(void)state;
	struct tracker_reply r;
	/* Compact IPv4 and IPv6 peers, every count, keys out of order. */
	assert_int_equal(PA("d8:intervali1800e5:peers12:\x7f\0\0\x01\x1a\xe1\x0a\0\0\x02\0\x50"
			    "12:min intervali60e8:completei3e10:incompletei4e"
			    "6:peers618:\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\x01\x1a\xe2"
			    "10:tracker id3:abc15:warning message4:hmm\ne",
			    &r),
			 0);
	assert_false(r.failed);
	assert_int_equal(r.interval, 1800);
	assert_int_equal(r.min_interval, 60);
	assert_int_equal(r.complete, 3);
	assert_int_equal(r.incomplete, 4);
	assert_string_equal(r.tracker_id, "abc");
	assert_string_equal(r.warning, "hmm?");
	assert_int_equal(r.peer_count, 3);
	char host[64];
	tracker_peer_host(&r.peers[0], host, sizeof host);
	assert_string_equal(host, "127.0.0.1");
	assert_int_equal(r.peers[0].port, 6881);
	tracker_peer_host(&r.peers[2], host, sizeof host);
	assert_string_equal(host, "::1");
	assert_int_equal(r.peers[2].port, 6882);
	tracker_reply_destroy(&r);

	/* The dict model: numeric ips only, bad ports counted. */
	assert_int_equal(PA("d5:peersld2:ip9:127.0.0.17:peer id20:aaaaaaaaaaaaaaaaaaaa4:porti6881ee"
			    "d2:ip3:::14:porti1ee"
			    "d2:ip11:example.org4:porti1ee"
			    "d2:ip9:127.0.0.14:porti0ee"
			    "i5eee",
			    &r),
			 0);
	assert_int_equal(r.peer_count, 2);
	assert_int_equal(r.peers[1].family, 6);
	assert_int_equal(r.peers_dropped, 3);
	assert_int_equal(r.interval, -1);
	tracker_reply_destroy(&r);

	/* A failure reason is an answer. */
	assert_int_equal(PA("d14:failure reason23:Requested download is \x01" "e", &r), 0);
	assert_true(r.failed);
	assert_string_equal(r.message, "Requested download is ?");
	tracker_reply_destroy(&r);

	assert_int_equal(PA("d8:intervali5ee", &r), TRACKER_E_NO_PEERS);
	tracker_reply_destroy(&r);
	assert_int_equal(PA("<html>nope</html>", &r), TRACKER_E_BENCODE);
	assert_int_equal(PA("d5:peers5:abcdee", &r), TRACKER_E_FIELD);
	tracker_reply_destroy(&r);
	assert_int_equal(PA("d8:intervali-5e5:peers0:e", &r), TRACKER_E_FIELD);
	assert_int_equal(PA("d8:interval3:abc5:peers0:e", &r), TRACKER_E_FIELD);
	assert_int_equal(PA("d5:peersi1ee", &r), TRACKER_E_FIELD);
	assert_int_equal(PA("d5:peers0:", &r), TRACKER_E_BENCODE);
	assert_int_equal(PA("d5:peers99:abce", &r), TRACKER_E_BENCODE);
	assert_int_equal(PA("d8:intervali99999999999999999999e5:peers0:e", &r), TRACKER_E_BENCODE);
	assert_int_equal(PA("", &r), TRACKER_E_BENCODE);

	/* 20,000 compact peers: the first 10,000 are kept. */
	size_t n = 20000;
	struct buf b;
	buf_init(&b, 1 << 20);
	assert_int_equal(buf_printf(&b, "d5:peers%zu:", n * 6), 0);
	for (size_t i = 0; i < n; i++) {
		uint8_t pe[6] = { 10, (uint8_t)(i >> 16), (uint8_t)(i >> 8), (uint8_t)i, 0x1a, 0xe1 };
		assert_int_equal(buf_append(&b, pe, 6), 0);
	}
	assert_int_equal(buf_append_byte(&b, 'e'), 0);
	assert_int_equal(parse_announce(b.data, b.len, &r), 0);
	assert_int_equal(r.peer_count, TRACKER_MAX_PEERS);
	assert_int_equal(r.peers_dropped, n - TRACKER_MAX_PEERS);
	tracker_reply_destroy(&r);
	buf_destroy(&b);
	/* Over the body ceiling. */
	uint8_t *big = calloc(1, TRACKER_MAX_BODY + 1);
	assert_non_null(big);
	tracker_reply_init(&r);
	assert_int_equal(tracker_http_parse_announce(big, big + TRACKER_MAX_BODY + 1, &r),
			 TRACKER_E_TOO_BIG);
	free(big);
}

static void test_http_scrape(void **state)
{
	(void)state;
	uint8_t h[20];
	memset(h, 'H', sizeof h);
	const char *s = "d5:filesd20:GGGGGGGGGGGGGGGGGGGGd8:completei9ee"
			"20:HHHHHHHHHHHHHHHHHHHHd8:completei5e10:downloadedi7e10:incompletei2e"
			"4:namei1eeee";
	struct tracker_reply r;
	tracker_reply_init(&r);
	uint8_t *c = dup_bytes(s, strlen(s));
	assert_int_equal(tracker_http_parse_scrape(c, c + strlen(s), h, &r), 0);
	free(c);
	assert_int_equal(r.complete, 5);
	assert_int_equal(r.incomplete, 2);
	assert_int_equal(r.downloaded, 7);
	tracker_reply_init(&r);
	const char *f = "d14:failure reason4:nopee";
	assert_int_equal(tracker_http_parse_scrape((const uint8_t *)f, (const uint8_t *)f + strlen(f),
						   h, &r),
			 0);
	assert_true(r.failed);
	assert_int_equal(r.complete, -1);
	assert_int_equal(tracker_http_parse_scrape((const uint8_t *)"x", (const uint8_t *)"x" + 1, h,
						   &r),
			 TRACKER_E_BENCODE);
}

static void test_udp(void **state)
{
	(void)state;
	uint8_t pkt[TRACKER_UDP_ANNOUNCE_LEN];
	assert_int_equal(tracker_udp_connect_req(pkt, 0x01020304), 16);
	static const uint8_t want_connect[16] = { 0, 0, 0x04, 0x17, 0x27, 0x10, 0x19, 0x80,
						  0, 0, 0,    0,    1,    2,    3,    4 };
	assert_memory_equal(pkt, want_connect, 16);

	struct tracker_announce a = { .port = 0x1ae1, .uploaded = 5, .downloaded = 6, .left = 7,
				      .event = TRACKER_EVENT_COMPLETED, .numwant = 50, .key = 9 };
	memset(a.info_hash, 'i', 20);
	memset(a.peer_id, 'p', 20);
	assert_int_equal(tracker_udp_announce_req(pkt, 0x1122334455667788ull, 0xaabbccdd, &a), 98);
	assert_int_equal(pkt[0], 0x11);
	assert_int_equal(pkt[11], 1);
	assert_int_equal(pkt[15], 0xdd);
	assert_int_equal(pkt[16], 'i');
	assert_int_equal(pkt[36], 'p');
	assert_int_equal(pkt[63], 6);  /* downloaded */
	assert_int_equal(pkt[71], 7);  /* left */
	assert_int_equal(pkt[79], 5);  /* uploaded */
	assert_int_equal(pkt[83], 1);  /* event completed */
	assert_int_equal(pkt[91], 9);  /* key */
	assert_int_equal(pkt[95], 50); /* num_want */
	assert_int_equal(pkt[96], 0x1a);
	assert_int_equal(pkt[97], 0xe1);
	assert_int_equal(tracker_udp_scrape_req(pkt, 1, 2, a.info_hash), 36);
	assert_int_equal(pkt[11], 2);

	uint32_t action, tid;
	uint64_t cid;
	static const uint8_t conn[16] = { 0, 0, 0, 0, 1, 2, 3, 4, 9, 8, 7, 6, 5, 4, 3, 2 };
	assert_int_equal(tracker_udp_header(conn, conn + 16, &action, &tid), 0);
	assert_int_equal(action, 0);
	assert_int_equal(tid, 0x01020304);
	assert_int_equal(tracker_udp_parse_connect(conn, conn + 16, &cid), 0);
	assert_true(cid == 0x0908070605040302ull);
	assert_int_equal(tracker_udp_parse_connect(conn, conn + 15, &cid), TRACKER_E_SHORT);
	assert_int_equal(tracker_udp_header(conn, conn + 7, &action, &tid), TRACKER_E_SHORT);

	/* An announce answer with two IPv4 peers and half a third. */
	static const uint8_t ann[] = { 0, 0, 0, 1, 1, 2, 3, 4, 0, 0, 0x07, 0x08, 0, 0, 0, 2,
				       0, 0, 0, 3, 127, 0, 0, 1, 0x1a, 0xe1, 10, 0, 0, 9, 0, 80,
				       1, 2, 3 };
	struct tracker_reply r;
	tracker_reply_init(&r);
	assert_int_equal(tracker_udp_parse_reply(ann, ann + sizeof ann, TRACKER_UDP_ANNOUNCE, 4, &r),
			 0);
	assert_int_equal(r.interval, 1800);
	assert_int_equal(r.incomplete, 2);
	assert_int_equal(r.complete, 3);
	assert_int_equal(r.peer_count, 2);
	assert_int_equal(r.peers[1].port, 80);
	tracker_reply_destroy(&r);
	assert_int_equal(tracker_udp_parse_reply(ann, ann + 19, TRACKER_UDP_ANNOUNCE, 4, &r),
			 TRACKER_E_SHORT);
	assert_int_equal(tracker_udp_parse_reply(ann, ann + sizeof ann, TRACKER_UDP_SCRAPE, 4, &r),
			 TRACKER_E_ACTION);
	static const uint8_t scr[] = { 0, 0, 0, 2, 1, 2, 3, 4, 0, 0, 0, 5, 0, 0, 0, 6, 0, 0, 0, 7 };
	assert_int_equal(tracker_udp_parse_reply(scr, scr + sizeof scr, TRACKER_UDP_SCRAPE, 4, &r), 0);
	assert_int_equal(r.complete, 5);
	assert_int_equal(r.downloaded, 6);
	assert_int_equal(r.incomplete, 7);
	static const uint8_t err[] = { 0, 0, 0, 3, 1, 2, 3, 4, 'b', 'a', 'd', '\n' };
	tracker_reply_init(&r);
	assert_int_equal(tracker_udp_parse_reply(err, err + sizeof err, TRACKER_UDP_ANNOUNCE, 4, &r),
			 0);
	assert_true(r.failed);
	assert_string_equal(r.message, "bad?");
}

static void test_strerror(void **state)
{
	(void)state;
	for (int e = TRACKER_E_URL; e <= TRACKER_E_NO_SCRAPE; e++)
		assert_string_not_equal(tracker_strerror(e), "tracker error");
	assert_string_equal(tracker_event_name(TRACKER_EVENT_STOPPED), "stopped");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_url),
		cmocka_unit_test(test_list),
		cmocka_unit_test(test_from_torrent),
		cmocka_unit_test(test_torrent_set),
		cmocka_unit_test(test_announce_url),
		cmocka_unit_test(test_http_announce),
		cmocka_unit_test(test_http_scrape),
		cmocka_unit_test(test_udp),
		cmocka_unit_test(test_strerror),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
