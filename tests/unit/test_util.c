/* test_util.c: unit tests for common/ helpers (util, buf, sha256). */
#include "config.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>

#include <cmocka.h>

#include "common/addr.h"
#include "common/buf.h"
#include "common/sha256.h"
#include "common/util.h"

static void test_parse_rate(void **state)
{
	(void)state;
	uint64_t v = 1;
	assert_int_equal(parse_rate("0", &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(parse_rate("500K", &v), 0);
	assert_int_equal(v, 500 * 1024);
	assert_int_equal(parse_rate("2M", &v), 0);
	assert_int_equal(v, 2 * 1024 * 1024);
	assert_int_equal(parse_rate("3MiB", &v), 0);
	assert_int_equal(v, 3 * 1024 * 1024);
	assert_int_equal(parse_rate("1g", &v), 0);
	assert_int_equal(v, 1024ULL * 1024 * 1024);
	assert_int_equal(parse_rate("123", &v), 0);
	assert_int_equal(v, 123);
	assert_int_equal(parse_rate("", &v), -EINVAL);
	assert_int_equal(parse_rate("-5K", &v), -EINVAL);
	assert_int_equal(parse_rate("5X", &v), -EINVAL);
	assert_int_equal(parse_rate("5KK", &v), -EINVAL);
	assert_int_equal(parse_rate("99999999999999999999", &v), -EINVAL);
	assert_int_equal(parse_rate("18014398509481984G", &v), -EINVAL);
}

static void test_hostport(void **state)
{
	(void)state;
	char host[64];
	uint16_t port;
	assert_int_equal(parse_hostport("127.0.0.1:6881", host, sizeof host, &port), 0);
	assert_string_equal(host, "127.0.0.1");
	assert_int_equal(port, 6881);
	assert_int_equal(parse_hostport("[::1]:80", host, sizeof host, &port), 0);
	assert_string_equal(host, "::1");
	assert_int_equal(port, 80);
	assert_int_equal(parse_hostport("router.example:1", host, sizeof host, &port), 0);
	assert_string_equal(host, "router.example");
	assert_int_equal(parse_hostport("::1:80", host, sizeof host, &port), -EINVAL);
	assert_int_equal(parse_hostport("host", host, sizeof host, &port), -EINVAL);
	assert_int_equal(parse_hostport(":80", host, sizeof host, &port), -EINVAL);
	assert_int_equal(parse_hostport("h:0", host, sizeof host, &port), -EINVAL);
	assert_int_equal(parse_hostport("h:65536", host, sizeof host, &port), -EINVAL);
	assert_int_equal(parse_hostport("[::1]80", host, sizeof host, &port), -EINVAL);
	assert_int_equal(parse_hostport("abcdefghij:1", host, 4, &port), -ENAMETOOLONG);
}

static void test_addr_from_numeric(void **state)
{
	(void)state;
	struct sockaddr_storage ss;
	char text[ADDR_TEXT_MAX];
	assert_int_equal(addr_from_numeric("10.1.2.3", 6881, &ss), sizeof(struct sockaddr_in));
	addr_format((const struct sockaddr *)&ss, text, sizeof text);
	assert_string_equal(text, "10.1.2.3:6881");
	assert_int_equal(addr_from_numeric("::1", 7, &ss), sizeof(struct sockaddr_in6));
	addr_format((const struct sockaddr *)&ss, text, sizeof text);
	assert_string_equal(text, "[::1]:7");
	/* Names, brackets and junk are not numeric addresses. */
	assert_int_equal(addr_from_numeric("localhost", 1, &ss), 0);
	assert_int_equal(addr_from_numeric("[::1]", 1, &ss), 0);
	assert_int_equal(addr_from_numeric("1.2.3.4.5", 1, &ss), 0);
	assert_int_equal(ss.ss_family, 0);
}

static void test_hex(void **state)
{
	(void)state;
	const uint8_t in[] = { 0x00, 0xab, 0xff, 0x10 };
	char out[9];
	hex_encode(in, sizeof in, out);
	assert_string_equal(out, "00abff10");
	uint8_t back[4];
	assert_int_equal(hex_decode("00ABff10", 8, back, 4), 0);
	assert_memory_equal(back, in, 4);
	assert_int_equal(hex_decode("00ABff1", 7, back, 4), -EINVAL);
	assert_int_equal(hex_decode("00ABff1g", 8, back, 4), -EINVAL);
}

static void test_buf_bounded(void **state)
{
	(void)state;
	struct buf b;
	buf_init(&b, 8);
	assert_int_equal(buf_append(&b, "abcd", 4), 0);
	assert_int_equal(buf_printf(&b, "%d", 12), 0);
	assert_int_equal(b.len, 6);
	assert_memory_equal(b.data, "abcd12", 6);
	assert_int_equal(buf_append(&b, "xyz", 3), -EMSGSIZE);
	assert_int_equal(b.len, 6); /* a failed append changes nothing */
	size_t len;
	uint8_t *p = buf_take(&b, &len);
	assert_int_equal(len, 6);
	assert_null(b.data);
	free(p);
	buf_destroy(&b);
}

/* FIPS 180-2 test vectors. */
static void test_sha256_vectors(void **state)
{
	(void)state;
	uint8_t d[SHA256_LEN];
	char hex[2 * SHA256_LEN + 1];
	assert_int_equal(sha256_digest("abc", 3, d), 0);
	hex_encode(d, sizeof d, hex);
	assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	assert_int_equal(sha256_digest("", 0, d), 0);
	hex_encode(d, sizeof d, hex);
	assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	struct sha256_ctx *ctx = sha256_new();
	assert_non_null(ctx);
	const char *m = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
	sha256_begin(ctx);
	sha256_update(ctx, m, 20);
	sha256_update(ctx, m + 20, strlen(m) - 20);
	sha256_final(ctx, d);
	hex_encode(d, sizeof d, hex);
	assert_string_equal(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
	sha256_free(ctx);
}

static void test_path_glob(void **state)
{
	(void)state;
	assert_true(path_glob_match("*.mkv", "Season 1/e01.mkv")); /* '*' crosses '/' */
	assert_true(path_glob_match("e0?.mkv", "Season 1/e01.mkv")); /* base name */
	assert_true(path_glob_match("Season 1/*", "Season 1/e01.mkv"));
	assert_false(path_glob_match("Season 2/*", "Season 1/e01.mkv"));
	assert_false(path_glob_match("1/e01.mkv", "Season 1/e01.mkv")); /* '/': whole path only */
	assert_false(path_glob_match("*.nfo", "a.mkv"));
	assert_true(path_glob_match("a.mkv", "a.mkv"));
}

static void test_rfc1918(void **state)
{
	(void)state;
	static const uint8_t yes[][4] = { { 10, 0, 0, 1 }, { 172, 16, 0, 1 }, { 172, 31, 255, 255 },
					  { 192, 168, 1, 1 } };
	static const uint8_t no[][4] = { { 11, 0, 0, 1 }, { 172, 15, 0, 1 }, { 172, 32, 0, 1 },
					 { 192, 169, 0, 1 }, { 100, 64, 0, 1 }, { 169, 254, 0, 1 } };
	for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++)
		assert_true(ipv4_rfc1918(yes[i]));
	for (size_t i = 0; i < sizeof no / sizeof no[0]; i++)
		assert_false(ipv4_rfc1918(no[i]));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_rate),
		cmocka_unit_test(test_hostport),
		cmocka_unit_test(test_addr_from_numeric),
		cmocka_unit_test(test_hex),
		cmocka_unit_test(test_buf_bounded),
		cmocka_unit_test(test_sha256_vectors),
		cmocka_unit_test(test_path_glob),
		cmocka_unit_test(test_rfc1918),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
