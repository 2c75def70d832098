/* test_lsd.c: the BEP 14 codec (transfer/lsd.h): what we build, what we
 * accept, and every way a LAN packet is refused. */
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

#include "transfer/lsd.h"

#define H1 "0123456789abcdef0123456789abcdef01234567"
#define REQ "BT-SEARCH * HTTP/1.1\r\n"

/* Parse an exact-size heap copy (no NUL) so ASan sees overreads. */
static int parse_n(const void *s, size_t n, struct lsd_announce *a)
{
	uint8_t *c = malloc(n ? n : 1);
	assert_non_null(c);
	memcpy(c, s, n);
	int rc = lsd_parse(c, c + n, a);
	free(c);
	return rc;
}
#define P(lit, a) parse_n(lit, sizeof lit - 1, a)

static void test_parse_bep_example(void **state)
{
	(void)state;
	struct lsd_announce a;
	assert_int_equal(P(REQ "Host: 239.192.152.143:6771\r\nPort: 6881\r\nInfohash: " H1
			       "\r\ncookie: c00k1e\r\n\r\n\r\n",
			   &a),
			 0);
	assert_int_equal(a.port, 6881);
	assert_int_equal(a.hash_count, 1);
	assert_int_equal(a.hashes[0][0], 0x01);
	assert_int_equal(a.hashes[0][19], 0x67);
	assert_string_equal(a.cookie, "c00k1e");
}

static void test_parse_lenient_where_http_is(void **state)
{
	(void)state;
	struct lsd_announce a;
	/* Names in any case, tabs and spaces around values, unknown headers,
	 * no Host, no cookie, a single closing CRLF, upper-case hex. */
	assert_int_equal(P(REQ "PORT:\t 51413 \r\nX-Whatever: ignored\r\niNfOhAsH:"
			       " 0123456789ABCDEF0123456789ABCDEF01234567\r\n\r\n",
			   &a),
			 0);
	assert_int_equal(a.port, 51413);
	assert_int_equal(a.hash_count, 1);
	assert_int_equal(a.hashes[0][1], 0x23);
	assert_string_equal(a.cookie, "");
	/* A hash given twice is kept once. */
	assert_int_equal(P(REQ "Port: 1\r\nInfohash: " H1 "\r\nInfohash: " H1 "\r\n\r\n", &a), 0);
	assert_int_equal(a.hash_count, 1);
	assert_int_equal(a.port, 1);
}

static void test_parse_refusals(void **state)
{
	(void)state;
	struct lsd_announce a;
	assert_int_equal(P("", &a), LSD_E_REQUEST);
	assert_int_equal(P("M-SEARCH * HTTP/1.1\r\nPort: 1\r\nInfohash: " H1 "\r\n\r\n", &a),
			 LSD_E_REQUEST);
	assert_int_equal(P("bt-search * HTTP/1.1\r\nPort: 1\r\nInfohash: " H1 "\r\n\r\n", &a),
			 LSD_E_REQUEST);
	assert_int_equal(P("BT-SEARCH * HTTP/1.1\nPort: 1\n\n", &a), LSD_E_REQUEST);
	/* Headers never closed, bare LF, a line without a colon, a space before it. */
	assert_int_equal(P(REQ "Port: 1\r\nInfohash: " H1 "\r\n", &a), LSD_E_SYNTAX);
	assert_int_equal(P(REQ "Port: 1\nInfohash: " H1 "\r\n\r\n", &a), LSD_E_SYNTAX);
	assert_int_equal(P(REQ "Port 1\r\n\r\n", &a), LSD_E_SYNTAX);
	assert_int_equal(P(REQ "Port : 1\r\n\r\n", &a), LSD_E_SYNTAX);
	assert_int_equal(P(REQ ": 1\r\n\r\n", &a), LSD_E_SYNTAX);
	/* A NUL or another control byte inside a value. */
	assert_int_equal(P(REQ "Port: 68\0" "81\r\nInfohash: " H1 "\r\n\r\n", &a), LSD_E_SYNTAX);
	assert_int_equal(P(REQ "Port: 6881\x01\r\nInfohash: " H1 "\r\n\r\n", &a), LSD_E_SYNTAX);
	/* Bytes after the end other than CRLFs. */
	assert_int_equal(P(REQ "Port: 1\r\nInfohash: " H1 "\r\n\r\n\r\nX", &a), LSD_E_SYNTAX);
	assert_int_equal(P(REQ "Port: 1\r\nInfohash: " H1 "\r\n\r\n\r", &a), LSD_E_SYNTAX);
	/* Ports. */
	assert_int_equal(P(REQ "Infohash: " H1 "\r\n\r\n", &a), LSD_E_PORT);
	assert_int_equal(P(REQ "Port: 0\r\nInfohash: " H1 "\r\n\r\n", &a), LSD_E_PORT);
	assert_int_equal(P(REQ "Port: 65536\r\nInfohash: " H1 "\r\n\r\n", &a), LSD_E_PORT);
	assert_int_equal(P(REQ "Port: 000001\r\nInfohash: " H1 "\r\n\r\n", &a), LSD_E_PORT);
	assert_int_equal(P(REQ "Port: +1\r\nInfohash: " H1 "\r\n\r\n", &a), LSD_E_PORT);
	assert_int_equal(P(REQ "Port: \r\nInfohash: " H1 "\r\n\r\n", &a), LSD_E_PORT);
	assert_int_equal(P(REQ "Port: 1\r\nPort: 1\r\nInfohash: " H1 "\r\n\r\n", &a), LSD_E_PORT);
	/* Hashes: 39, 41, 64 digits (a whole v2 hash is not BEP 14), non-hex. */
	assert_int_equal(P(REQ "Port: 1\r\nInfohash: 0123456789abcdef0123456789abcdef0123456\r\n\r\n",
			   &a),
			 LSD_E_HASH);
	assert_int_equal(P(REQ "Port: 1\r\nInfohash: " H1 "8\r\n\r\n", &a), LSD_E_HASH);
	assert_int_equal(P(REQ "Port: 1\r\nInfohash: " H1 H1 "012345678901234567890123\r\n\r\n", &a),
			 LSD_E_HASH);
	assert_int_equal(P(REQ "Port: 1\r\nInfohash: 0123456789abcdef0123456789abcdef0123456g\r\n\r\n",
			   &a),
			 LSD_E_HASH);
	assert_int_equal(P(REQ "Port: 1\r\n\r\n", &a), LSD_E_NO_HASH);
	/* Cookies. */
	assert_int_equal(P(REQ "Port: 1\r\nInfohash: " H1 "\r\ncookie: a\r\ncookie: b\r\n\r\n", &a),
			 LSD_E_COOKIE);
	char big[512];
	int n = snprintf(big, sizeof big, REQ "Port: 1\r\nInfohash: " H1 "\r\ncookie: %065d\r\n\r\n", 0);
	assert_int_equal(parse_n(big, (size_t)n, &a), LSD_E_COOKIE);
	/* A refused packet leaves nothing in `a`. */
	assert_int_equal(a.port, 0);
	assert_int_equal(a.hash_count, 0);
}

static void test_parse_ceilings(void **state)
{
	(void)state;
	struct lsd_announce a;
	static char buf[70000];
	/* One byte over the datagram ceiling, though otherwise valid. */
	size_t n = (size_t)snprintf(buf, sizeof buf, REQ "Port: 1\r\nInfohash: " H1 "\r\nX: ");
	size_t want = LSD_MAX_DATAGRAM + 1 - 4;
	memset(buf + n, 'a', want - n);
	memcpy(buf + want, "\r\n\r\n", 4);
	assert_int_equal(parse_n(buf, LSD_MAX_DATAGRAM + 1, &a), LSD_E_TOO_BIG);
	/* Exactly at the ceiling it parses. */
	memcpy(buf + want - 1, "\r\n\r\n", 4);
	assert_int_equal(parse_n(buf, LSD_MAX_DATAGRAM, &a), 0);
	/* 64 KiB of anything is refused the same way, without reading it. */
	memset(buf, 'x', sizeof buf);
	assert_int_equal(parse_n(buf, 65536, &a), LSD_E_TOO_BIG);
	/* More distinct hashes than LSD_MAX_HASHES (short enough to fit). */
	n = (size_t)snprintf(buf, sizeof buf, REQ "Port: 1\r\n");
	for (unsigned i = 0; i <= LSD_MAX_HASHES && n < LSD_MAX_DATAGRAM; i++)
		n += (size_t)snprintf(buf + n, sizeof buf - n, "Infohash:%040x\r\n", i);
	n += (size_t)snprintf(buf + n, sizeof buf - n, "\r\n");
	assert_true(n > LSD_MAX_DATAGRAM); /* 33 hashes cannot fit a datagram... */
	n = (size_t)snprintf(buf, sizeof buf, REQ "Port: 1\r\n");
	for (unsigned i = 0; i < LSD_MAX_HEADERS + 1; i++)
		n += (size_t)snprintf(buf + n, sizeof buf - n, "A:\r\n");
	n += (size_t)snprintf(buf + n, sizeof buf - n, "Infohash: " H1 "\r\n\r\n");
	assert_int_equal(parse_n(buf, n, &a), LSD_E_TOO_MANY); /* ...but many headers can */
}

static void test_build_round_trip(void **state)
{
	(void)state;
	struct lsd_packet pk;
	struct lsd_announce a;
	assert_int_equal(lsd_packet_begin(&pk, false, 0, NULL), -EINVAL);
	assert_int_equal(lsd_packet_begin(&pk, false, 1, "has space"), -EINVAL);
	assert_int_equal(lsd_packet_begin(&pk, false, 6881, "cafe0123"), 0);
	uint8_t h[LSD_HASH_LEN];
	memset(h, 0xab, sizeof h);
	assert_int_equal(lsd_packet_add(&pk, h), 0);
	size_t len = lsd_packet_finish(&pk);
	assert_int_equal(lsd_packet_finish(&pk), len);
	assert_int_equal(lsd_packet_add(&pk, h), -EINVAL);
	const char *want = REQ "Host: 239.192.152.143:6771\r\nPort: 6881\r\n"
			       "Infohash: abababababababababababababababababababab\r\n"
			       "cookie: cafe0123\r\n\r\n\r\n";
	assert_int_equal(len, strlen(want));
	assert_memory_equal(pk.buf, want, len);
	assert_int_equal(lsd_parse(pk.buf, pk.buf + len, &a), 0);
	assert_string_equal(a.cookie, "cafe0123");

	assert_int_equal(lsd_packet_begin(&pk, true, 65535, NULL), 0);
	assert_int_equal(lsd_packet_add(&pk, h), 0);
	len = lsd_packet_finish(&pk);
	assert_non_null(memmem(pk.buf, len, "Host: [ff15::efc0:988f]:6771\r\n", 30));
	assert_int_equal(lsd_parse(pk.buf, pk.buf + len, &a), 0);
	assert_int_equal(a.port, 65535);
	assert_string_equal(a.cookie, "");
}

static void test_build_fills_to_the_limit(void **state)
{
	(void)state;
	struct lsd_packet pk;
	struct lsd_announce a;
	char cookie[LSD_MAX_COOKIE + 1];
	memset(cookie, 'k', LSD_MAX_COOKIE);
	cookie[LSD_MAX_COOKIE] = '\0';
	assert_int_equal(lsd_packet_begin(&pk, true, 6881, cookie), 0);
	unsigned added = 0;
	uint8_t h[LSD_HASH_LEN] = { 0 };
	for (;; added++) {
		h[0] = (uint8_t)added;
		if (lsd_packet_add(&pk, h) != 0)
			break;
	}
	/* The longest header (IPv6 Host, the longest cookie) still takes 24. */
	assert_true(added >= 24);
	size_t before = pk.len;
	assert_int_equal(lsd_packet_add(&pk, h), -ENOSPC);
	assert_int_equal(pk.len, before); /* unchanged */
	size_t len = lsd_packet_finish(&pk);
	assert_true(len <= LSD_MAX_PACKET);
	assert_true(len + 52 > LSD_MAX_PACKET); /* another hash would not have fit */
	assert_int_equal(lsd_parse(pk.buf, pk.buf + len, &a), 0);
	assert_int_equal(a.hash_count, added);
	assert_string_equal(a.cookie, cookie);
	for (unsigned i = 0; i < added; i++)
		assert_int_equal(a.hashes[i][0], (uint8_t)i);
}

/* Regression (found by fuzz_lsd): when the cookie line and the end filled
 * the packet to exactly LSD_MAX_PACKET, the last byte was cut off (the
 * formatter wanted room for a NUL) and the packet did not parse. */
static void test_build_exactly_full(void **state)
{
	(void)state;
	struct lsd_packet pk;
	struct lsd_announce a;
	uint8_t h[LSD_HASH_LEN] = { 0 };
	bool hit = false;
	for (size_t c = 1; c <= LSD_MAX_COOKIE && !hit; c++) {
		char cookie[LSD_MAX_COOKIE + 1];
		memset(cookie, 't', c);
		cookie[c] = '\0';
		for (int v6 = 0; v6 < 2; v6++) {
			assert_int_equal(lsd_packet_begin(&pk, v6, 51413, cookie), 0);
			for (h[0] = 0; lsd_packet_add(&pk, h) == 0; h[0]++)
				;
			size_t len = lsd_packet_finish(&pk);
			assert_true(len <= LSD_MAX_PACKET);
			hit |= len == LSD_MAX_PACKET;
			assert_int_equal(lsd_parse(pk.buf, pk.buf + len, &a), 0);
			assert_string_equal(a.cookie, cookie);
			assert_int_equal(a.hash_count, pk.hash_count);
		}
	}
	assert_true(hit); /* some cookie length fills it exactly */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_bep_example),
		cmocka_unit_test(test_parse_lenient_where_http_is),
		cmocka_unit_test(test_parse_refusals),
		cmocka_unit_test(test_parse_ceilings),
		cmocka_unit_test(test_build_round_trip),
		cmocka_unit_test(test_build_fills_to_the_limit),
		cmocka_unit_test(test_build_exactly_full),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
