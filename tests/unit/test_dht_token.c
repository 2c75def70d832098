/* test_dht_token.c: the announce token validity window (rotation every
 * 5 minutes, previous secret accepted, nothing older). */
#include "config.h"

#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "dht/dht-internal.h"

static void counter_random(void *ctx, void *buf, size_t n)
{
	/* Distinct, reproducible "random" secrets. */
	uint8_t *c = ctx;
	memset(buf, ++*c, n);
}

static struct dht_addr ip4(uint8_t last, uint16_t port)
{
	struct dht_addr a = { .family = AF_INET, .port = port, .ip = { 192, 0, 2, last } };
	return a;
}

static bool valid_at(struct dht_tokens *tk, uint8_t *ctr, const struct dht_addr *a,
		     const uint8_t tok[DHT_TOKEN_LEN], uint64_t now)
{
	dht_tokens_advance(tk, now, counter_random, ctr);
	return dht_token_check(tk, a, tok, DHT_TOKEN_LEN);
}

static void test_window(void **state)
{
	(void)state;
	const uint64_t M = 60 * 1000, T0 = 1000000;
	uint8_t ctr = 0;
	struct dht_tokens tk;
	dht_tokens_init(&tk, T0, counter_random, &ctr);
	struct dht_addr a = ip4(1, 6881), b = ip4(2, 6881);
	uint8_t tok[DHT_TOKEN_LEN];
	dht_token_make(&tk, &a, tok);
	/* Handed out right after a rotation: valid for just under 10 minutes. */
	assert_true(valid_at(&tk, &ctr, &a, tok, T0));
	assert_true(valid_at(&tk, &ctr, &a, tok, T0 + 5 * M - 1));
	assert_true(valid_at(&tk, &ctr, &a, tok, T0 + 5 * M)); /* previous secret */
	assert_true(valid_at(&tk, &ctr, &a, tok, T0 + 10 * M - 1));
	assert_false(valid_at(&tk, &ctr, &a, tok, T0 + 10 * M));
	/* Bound to the IP: another IP's token differs, another port does not. */
	uint8_t tok_b[DHT_TOKEN_LEN];
	dht_token_make(&tk, &b, tok_b);
	assert_memory_not_equal(tok, tok_b, DHT_TOKEN_LEN);
	dht_token_make(&tk, &a, tok);
	assert_false(dht_token_check(&tk, &b, tok, DHT_TOKEN_LEN));
	struct dht_addr a_other_port = ip4(1, 9999);
	assert_true(dht_token_check(&tk, &a_other_port, tok, DHT_TOKEN_LEN));
	/* Wrong length or flipped bits fail. */
	assert_false(dht_token_check(&tk, &a, tok, DHT_TOKEN_LEN - 1));
	tok[0] ^= 1;
	assert_false(dht_token_check(&tk, &a, tok, DHT_TOKEN_LEN));
}

static void test_late_token_and_jumps(void **state)
{
	(void)state;
	const uint64_t M = 60 * 1000;
	uint8_t ctr = 0;
	struct dht_tokens tk;
	dht_tokens_init(&tk, 0, counter_random, &ctr);
	struct dht_addr a = ip4(9, 1);
	uint8_t tok[DHT_TOKEN_LEN];
	/* Handed out just before a rotation: valid for just over 5 minutes. */
	dht_tokens_advance(&tk, 5 * M - 1, counter_random, &ctr);
	dht_token_make(&tk, &a, tok);
	assert_true(valid_at(&tk, &ctr, &a, tok, 10 * M - 1));
	assert_false(valid_at(&tk, &ctr, &a, tok, 10 * M));
	/* A long silence (no calls for 20 minutes) invalidates everything,
	 * even though only one advance call happens. */
	dht_token_make(&tk, &a, tok);
	assert_false(valid_at(&tk, &ctr, &a, tok, 30 * M));
	/* IPv6 tokens work the same way. */
	struct dht_addr v6 = { .family = AF_INET6, .port = 1, .ip = { 0x20, 0x01, [15] = 5 } };
	dht_token_make(&tk, &v6, tok);
	assert_true(dht_token_check(&tk, &v6, tok, DHT_TOKEN_LEN));
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_window),
		cmocka_unit_test(test_late_token_and_jumps),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
