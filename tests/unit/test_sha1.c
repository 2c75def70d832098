/* test_sha1.c: common/sha1 against the FIPS 180-4 / RFC 3174 test vectors,
 * in whichever backend this build compiled in (openssl or builtin). */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/sha1.h"

static void hex(const uint8_t d[SHA1_LEN], char out[2 * SHA1_LEN + 1])
{
	for (int i = 0; i < SHA1_LEN; i++)
		snprintf(out + 2 * i, 3, "%02x", d[i]);
}

/* Hash `repeat` copies of `s` fed in one update each. */
static void check(const char *s, size_t repeat, const char *want)
{
	struct sha1_ctx *ctx = sha1_new();
	assert_non_null(ctx);
	sha1_begin(ctx);
	for (size_t i = 0; i < repeat; i++)
		sha1_update(ctx, s, strlen(s));
	uint8_t d[SHA1_LEN];
	char got[2 * SHA1_LEN + 1];
	sha1_final(ctx, d);
	hex(d, got);
	assert_string_equal(got, want);
	sha1_free(ctx);
}

static void test_vectors(void **state)
{
	(void)state;
	check("", 1, "da39a3ee5e6b4b0d3255bfef95601890afd80709");
	check("abc", 1, "a9993e364706816aba3e25717850c26c9cd0d89d");
	check("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 1,
	      "84983e441c3bd26ebaae4aa1f95129e5e54670f1");
	check("a", 1000000, "34aa973cd4c4daa4f61eeb2bdbad27316534016f");
	check("0123456701234567012345670123456701234567012345670123456701234567", 10,
	      "dea356a2cddd90c7a7ecedc5ebb563934f460452");
	/* FIPS 180-4 example, two blocks with a 896-bit message. */
	check("abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmno"
	      "ijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu",
	      1, "a49b2446a02c645bf419f995b67091253a04a259");
}

/* Every split of a message around the padding boundaries (55, 56, 63, 64
 * bytes and beyond) hashes like the one-shot digest. */
static void test_splits(void **state)
{
	(void)state;
	uint8_t msg[200];
	for (size_t i = 0; i < sizeof msg; i++)
		msg[i] = (uint8_t)(i * 37 + 11);
	struct sha1_ctx *ctx = sha1_new();
	assert_non_null(ctx);
	for (size_t len = 0; len <= sizeof msg; len++) {
		uint8_t one[SHA1_LEN], two[SHA1_LEN];
		assert_int_equal(sha1_digest(msg, len, one), 0);
		for (size_t cut = 0; cut <= len; cut += 7) {
			sha1_begin(ctx);
			sha1_update(ctx, msg, cut);
			sha1_update(ctx, msg + cut, len - cut);
			sha1_final(ctx, two);
			assert_memory_equal(one, two, SHA1_LEN);
		}
	}
	/* The context is reusable after final. */
	uint8_t a[SHA1_LEN], b[SHA1_LEN];
	sha1_once(ctx, "abc", 3, a);
	sha1_once(ctx, "abc", 3, b);
	assert_memory_equal(a, b, SHA1_LEN);
	sha1_free(ctx);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vectors),
		cmocka_unit_test(test_splits),
	};
	printf("# sha1 backend: %s\n", sha1_backend());
	return cmocka_run_group_tests(tests, NULL, NULL);
}
