/* test_magnet.c: v1, v2 and hybrid magnet link parsing and formatting (transfer/magnet.h). */
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
#include "transfer/magnet.h"

#define HEX "0123456789abcdef00112233445566778899aabbccddeeffdeadbeefcafef00d"
#define BTMH "urn:btmh:1220" HEX
#define BTIH "urn:btih:0123456789abcdef0123456789abcdef01234567"

static const uint8_t want_v1[20] = {
	0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0x01, 0x23,
	0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0x01, 0x23, 0x45, 0x67,
};

static const uint8_t want_hash[32] = {
	0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0x00, 0x11, 0x22,
	0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd,
	0xee, 0xff, 0xde, 0xad, 0xbe, 0xef, 0xca, 0xfe, 0xf0, 0x0d,
};

/* Parse from an exact-size heap copy (no NUL) so ASan sees any overread. */
static int parse(struct magnet *m, const char *s)
{
	size_t n = strlen(s);
	uint8_t *copy = malloc(n ? n : 1);
	assert_non_null(copy);
	memcpy(copy, s, n);
	int rc = magnet_parse(m, copy, copy + n);
	free(copy);
	return rc;
}

static void expect_err(const char *s, int want)
{
	struct magnet m;
	int rc = parse(&m, s);
	if (rc != want)
		fprintf(stderr, "%s: got %d (%s), want %d\n", s, rc, magnet_strerror(rc), want);
	assert_int_equal(rc, want);
	assert_int_equal(m.peer_count, 0);
	assert_false(m.has_name);
}

static void test_parse_ok(void **state)
{
	(void)state;
	struct magnet m;
	assert_int_equal(parse(&m, "magnet:?xt=" BTMH), 0);
	assert_memory_equal(m.info_hash, want_hash, 32);
	assert_false(m.has_name);
	assert_int_equal(m.peer_count, 0);

	assert_int_equal(parse(&m, "magnet:?xt=" BTMH "&dn=My%20File+%C3%A9t%C3%A9.iso"
				   "&x.pe=127.0.0.1:6881&x.pe=%5B::1%5D:7000&x.pe=[::1]:7001"
				   "&tr=http%3A%2F%2Ftracker.example%2Fannounce&so=0-3&&junk"),
			 0);
	assert_memory_equal(m.info_hash, want_hash, 32);
	assert_true(m.has_name);
	assert_string_equal(m.name, "My File \xc3\xa9t\xc3\xa9.iso");
	assert_int_equal(m.peer_count, 3);
	assert_string_equal(m.peers[0].host, "127.0.0.1");
	assert_int_equal(m.peers[0].port, 6881);
	assert_string_equal(m.peers[1].host, "::1");
	assert_int_equal(m.peers[1].port, 7000);
	assert_int_equal(m.peers[2].port, 7001);

	/* Upper-case hex and scheme, a percent-encoded colon, numbered xt. */
	assert_int_equal(parse(&m, "MAGNET:?xt.1=URN:BTMH:1220" "0123456789ABCDEF00112233445566778899AABBCCDDEEFFDEADBEEFCAFEF00D"), 0);
	assert_memory_equal(m.info_hash, want_hash, 32);
	assert_int_equal(parse(&m, "magnet:?xt=urn%3Abtmh%3A1220" HEX), 0);
	assert_memory_equal(m.info_hash, want_hash, 32);
	assert_true(m.has_v2);
	assert_false(m.has_v1);
	/* Hybrid links carry both. */
	assert_int_equal(parse(&m, "magnet:?xt=" BTIH "&xt=" BTMH), 0);
	assert_memory_equal(m.info_hash, want_hash, 32);
	assert_memory_equal(m.info_hash_v1, want_v1, 20);
	assert_true(m.has_v1 && m.has_v2);
	assert_int_equal(parse(&m, "magnet:?xt.1=" BTMH "&xt.2=" BTIH "&xt.3=" BTMH), 0);
	/* v1 only: 40 hex digits (either case) or 32 base32 digits. */
	assert_int_equal(parse(&m, "magnet:?xt=" BTIH "&dn=x"), 0);
	assert_true(m.has_v1);
	assert_false(m.has_v2);
	assert_memory_equal(m.info_hash_v1, want_v1, 20);
	assert_int_equal(parse(&m, "magnet:?xt=urn:btih:0123456789ABCDEF0123456789ABCDEF01234567"), 0);
	assert_memory_equal(m.info_hash_v1, want_v1, 20);
	assert_int_equal(parse(&m, "magnet:?xt=urn:btih:AERUKZ4JVPG66AJDIVTYTK6N54ASGRLH"), 0);
	assert_memory_equal(m.info_hash_v1, want_v1, 20);
	assert_int_equal(parse(&m, "magnet:?xt=urn:btih:aeruKZ4JVPG66AJDIVTYTK6N54ASGRLH"), 0);
	assert_memory_equal(m.info_hash_v1, want_v1, 20);
	/* Trackers, decoded, in order, duplicates dropped. */
	assert_int_equal(parse(&m, "magnet:?xt=" BTIH "&tr=http%3A%2F%2Ft.example%2Fannounce"
				   "&tr=udp://u.example:6969&tr=http%3A%2F%2Ft.example%2Fannounce"), 0);
	assert_int_equal(m.tracker_count, 2);
	assert_string_equal(m.trackers[0], "http://t.example/announce");
	assert_string_equal(m.trackers[1], "udp://u.example:6969");
	/* The first dn wins; an empty dn is a name of zero bytes. */
	assert_int_equal(parse(&m, "magnet:?dn=a&xt=" BTMH "&dn=b"), 0);
	assert_string_equal(m.name, "a");
	assert_int_equal(parse(&m, "magnet:?xt=" BTMH "&dn="), 0);
	assert_true(m.has_name);
	assert_string_equal(m.name, "");
}

static void test_parse_errors(void **state)
{
	(void)state;
	expect_err("", MAGNET_E_SCHEME);
	expect_err("magnet:", MAGNET_E_SCHEME);
	expect_err("magnet:xt=" BTMH, MAGNET_E_SCHEME);
	expect_err("http://x/?xt=" BTMH, MAGNET_E_SCHEME);
	expect_err("magnet:?", MAGNET_E_NO_HASH);
	expect_err("magnet:?dn=x", MAGNET_E_NO_HASH);
	expect_err("magnet:?xt=urn:sha1:abc", MAGNET_E_NO_HASH);
	expect_err("magnet:?xt=urn:btih:0123", MAGNET_E_V1_HASH);
	expect_err("magnet:?xt=urn:btih:0123456789abcdef0123456789abcdef0123456g", MAGNET_E_V1_HASH);
	expect_err("magnet:?xt=urn:btih:AERUKZ4JVPG66AJDIVTYTK6N54ASGRL1", MAGNET_E_V1_HASH);
	expect_err("magnet:?xt=urn:btih:0123456789abcdef0123456789abcdef012345678", MAGNET_E_V1_HASH);
	expect_err("magnet:?xt=" BTIH "&xt=urn:btih:1123456789abcdef0123456789abcdef01234567",
		   MAGNET_E_HASH_CONFLICT);
	expect_err("magnet:?xt=" BTIH "&tr=", MAGNET_E_TRACKER);
	expect_err("magnet:?xt=" BTIH "&tr=http://a%20b/", MAGNET_E_TRACKER);
	expect_err("magnet:?xt=" BTIH "&tr=http://a%0a/", MAGNET_E_TRACKER);
	expect_err("magnet:?xt=urn:btmh:1114" HEX, MAGNET_E_HASH);  /* not sha2-256 */
	expect_err("magnet:?xt=urn:btmh:" HEX, MAGNET_E_HASH);      /* no multihash prefix */
	expect_err("magnet:?xt=urn:btmh:1220" HEX "0", MAGNET_E_HASH);
	expect_err("magnet:?xt=urn:btmh:1220" "0123456789abcdef00112233445566778899aabbccddeeffdeadbeefcafef00", MAGNET_E_HASH);
	expect_err("magnet:?xt=urn:btmh:1220" "0123456789abcdef00112233445566778899aabbccddeeffdeadbeefcafef00g", MAGNET_E_HASH);
	expect_err("magnet:?xt=" BTMH "&xt=urn:btmh:1220" "1123456789abcdef00112233445566778899aabbccddeeffdeadbeefcafef00d",
		   MAGNET_E_HASH_CONFLICT);
	expect_err("magnet:?xt=" BTMH "&dn=%4", MAGNET_E_ESCAPE);
	expect_err("magnet:?xt=" BTMH "&dn=%", MAGNET_E_ESCAPE);
	expect_err("magnet:?xt=" BTMH "&dn=%zz", MAGNET_E_ESCAPE);
	expect_err("magnet:?xt=urn:btmh:%zz1220" HEX, MAGNET_E_ESCAPE);
	expect_err("magnet:?xt=urn:btmh:1220%" HEX, MAGNET_E_HASH); /* "%01" decodes to a byte */
	expect_err("magnet:?xt=" BTMH "&dn=a%00b", MAGNET_E_NAME);
	expect_err("magnet:?xt=" BTMH "&x.pe=host", MAGNET_E_PEER);
	expect_err("magnet:?xt=" BTMH "&x.pe=1.2.3.4:0", MAGNET_E_PEER);
	expect_err("magnet:?xt=" BTMH "&x.pe=1.2.3.4:65536", MAGNET_E_PEER);
	expect_err("magnet:?xt=" BTMH "&x.pe=::1:80", MAGNET_E_PEER);
	expect_err("magnet:?xt=" BTMH "&x.pe=", MAGNET_E_PEER);
	expect_err("magnet:?xt=" BTMH "&x.pe=a%00b:1", MAGNET_E_PEER);

	/* Ceilings: name, peers, whole link. */
	struct buf b;
	buf_init(&b, 1 << 16);
	assert_int_equal(buf_printf(&b, "magnet:?xt=" BTMH "&dn="), 0);
	for (unsigned k = 0; k < MAGNET_MAX_NAME; k++)
		assert_int_equal(buf_append_byte(&b, 'n'), 0);
	assert_int_equal(buf_append_byte(&b, '\0'), 0);
	struct magnet m;
	assert_int_equal(parse(&m, (const char *)b.data), 0);
	assert_int_equal(strlen(m.name), MAGNET_MAX_NAME);
	b.data[b.len - 1] = 'n';
	assert_int_equal(buf_append_byte(&b, '\0'), 0);
	expect_err((const char *)b.data, MAGNET_E_NAME);

	buf_reset(&b);
	assert_int_equal(buf_printf(&b, "magnet:?xt=" BTMH), 0);
	for (unsigned k = 0; k < MAGNET_MAX_PEERS; k++)
		assert_int_equal(buf_printf(&b, "&x.pe=10.0.0.%u:%u", k, 1000 + k), 0);
	assert_int_equal(buf_append_byte(&b, '\0'), 0);
	assert_int_equal(parse(&m, (const char *)b.data), 0);
	assert_int_equal(m.peer_count, MAGNET_MAX_PEERS);
	assert_int_equal(m.peers[31].port, 1031);
	b.len--;
	assert_int_equal(buf_printf(&b, "&x.pe=10.0.1.1:1"), 0);
	assert_int_equal(buf_append_byte(&b, '\0'), 0);
	expect_err((const char *)b.data, MAGNET_E_TOO_MANY_PEERS);

	buf_reset(&b);
	assert_int_equal(buf_printf(&b, "magnet:?xt=" BTMH), 0);
	for (unsigned k = 0; k < MAGNET_MAX_TRACKERS; k++)
		assert_int_equal(buf_printf(&b, "&tr=udp://t%u.example:1", k), 0);
	assert_int_equal(buf_append_byte(&b, '\0'), 0);
	assert_int_equal(parse(&m, (const char *)b.data), 0);
	assert_int_equal(m.tracker_count, MAGNET_MAX_TRACKERS);
	b.len--;
	assert_int_equal(buf_printf(&b, "&tr=udp://one.more:1"), 0);
	assert_int_equal(buf_append_byte(&b, '\0'), 0);
	expect_err((const char *)b.data, MAGNET_E_TOO_MANY_TRACKERS);
	buf_reset(&b);
	assert_int_equal(buf_printf(&b, "magnet:?xt=" BTMH "&tr=http://"), 0);
	while (b.len < strlen("magnet:?xt=" BTMH "&tr=") + MAGNET_MAX_TRACKER_URL)
		assert_int_equal(buf_append_byte(&b, 'u'), 0);
	assert_int_equal(buf_append_byte(&b, '\0'), 0);
	assert_int_equal(parse(&m, (const char *)b.data), 0);
	assert_int_equal(strlen(m.trackers[0]), MAGNET_MAX_TRACKER_URL);
	b.data[b.len - 1] = 'u';
	assert_int_equal(buf_append_byte(&b, '\0'), 0);
	expect_err((const char *)b.data, MAGNET_E_TRACKER);

	buf_reset(&b);
	assert_int_equal(buf_printf(&b, "magnet:?xt=" BTMH "&ws="), 0);
	while (b.len < MAGNET_MAX_LEN)
		assert_int_equal(buf_append_byte(&b, 't'), 0);
	assert_int_equal(buf_append_byte(&b, '\0'), 0);
	assert_int_equal(parse(&m, (const char *)b.data), 0); /* exactly the ceiling */
	b.data[b.len - 1] = 't';
	assert_int_equal(buf_append_byte(&b, '\0'), 0);
	expect_err((const char *)b.data, MAGNET_E_TOO_LONG);
	buf_destroy(&b);
}

static void test_format(void **state)
{
	(void)state;
	struct buf b;
	buf_init(&b, 1 << 16);
	static struct magnet in;
	memset(&in, 0, sizeof in);
	assert_int_equal(magnet_format(&in, &b), -EINVAL); /* no hash */
	in.has_v2 = true;
	memcpy(in.info_hash, want_hash, 32);
	assert_int_equal(magnet_format(&in, &b), 0);
	assert_int_equal(b.len, strlen("magnet:?xt=" BTMH));
	assert_memory_equal(b.data, "magnet:?xt=" BTMH, b.len);

	buf_reset(&b);
	in.has_v1 = true;
	memcpy(in.info_hash_v1, want_v1, 20);
	assert_int_equal(magnet_format(&in, &b), 0);
	assert_int_equal(b.len, strlen("magnet:?xt=" BTIH "&xt=" BTMH));
	assert_memory_equal(b.data, "magnet:?xt=" BTIH "&xt=" BTMH, b.len);

	buf_reset(&b);
	struct magnet_peer peers[3] = { { "127.0.0.1", 6881 }, { "::1", 7000 }, { "node.example", 1 } };
	const char *name = "a b&c=d%e+f/\xc3\xa9";
	in.has_v1 = false;
	in.has_name = true;
	strcpy(in.name, name);
	memcpy(in.peers, peers, sizeof peers);
	in.peer_count = 3;
	in.tracker_count = 1;
	strcpy(in.trackers[0], "http://t.example/a?b=1");
	assert_int_equal(magnet_format(&in, &b), 0);
	const char *want = "magnet:?xt=" BTMH "&dn=a%20b%26c%3Dd%25e%2Bf%2F%C3%A9"
			   "&tr=http%3A%2F%2Ft.example%2Fa%3Fb%3D1"
			   "&x.pe=127.0.0.1:6881&x.pe=%5B::1%5D:7000&x.pe=node.example:1";
	assert_int_equal(b.len, strlen(want));
	assert_memory_equal(b.data, want, b.len);

	/* And it parses back to the same fields. */
	struct magnet m;
	assert_int_equal(magnet_parse(&m, b.data, b.data + b.len), 0);
	assert_memory_equal(m.info_hash, want_hash, 32);
	assert_string_equal(m.name, name);
	assert_int_equal(m.tracker_count, 1);
	assert_string_equal(m.trackers[0], "http://t.example/a?b=1");
	assert_int_equal(m.peer_count, 3);
	for (int k = 0; k < 3; k++) {
		assert_string_equal(m.peers[k].host, peers[k].host);
		assert_int_equal(m.peers[k].port, peers[k].port);
	}

	/* Refusals leave the buffer alone. */
	size_t before = b.len;
	in.peers[0] = (struct magnet_peer){ "", 1 };
	assert_int_equal(magnet_format(&in, &b), -EINVAL);
	in.peers[0] = (struct magnet_peer){ "h", 0 };
	assert_int_equal(magnet_format(&in, &b), -EINVAL);
	in.peer_count = 0;
	strcpy(in.trackers[0], "http://a b/");
	assert_int_equal(magnet_format(&in, &b), -EINVAL);
	assert_int_equal(b.len, before);
	in.tracker_count = 0;
	in.has_name = false;
	struct buf small;
	buf_init(&small, 20);
	assert_int_equal(magnet_format(&in, &small), -EMSGSIZE);
	assert_int_equal(small.len, 0);
	buf_destroy(&small);
	buf_destroy(&b);
}

static void test_strerror(void **state)
{
	(void)state;
	for (int e = MAGNET_E_SCHEME; e <= MAGNET_E_TOO_MANY_TRACKERS; e++)
		assert_string_not_equal(magnet_strerror(e), "unknown error");
	assert_string_equal(magnet_strerror(1), "unknown error");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_ok),
		cmocka_unit_test(test_parse_errors),
		cmocka_unit_test(test_format),
		cmocka_unit_test(test_strerror),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
