/* test_aesgcm.c: the AES-256-GCM primitive (transfer/aesgcm.h) against libsodium's, alone and under the records. */
#include "config.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "common/bytes.h"
#include "transfer/aesgcm.h"
#include "transfer/crypt.h"

/* In the default build this compares OpenSSL's EVP with libsodium: same
 * ciphertext, same tag, for random keys, nonces, AD and lengths.  Built
 * --without-openssl, the primitive is libsodium itself and the same tests
 * still check the wrapper (lengths, wiping, misuse) and the record layer's
 * framing against a by-hand record. */

#define NEED_AES()                                                                       \
	do {                                                                             \
		if (!aesgcm_hw_available()) {                                            \
			print_message("no AES-NI on this CPU: skipped\n");               \
			skip();                                                          \
		}                                                                        \
	} while (0)

/* Reproducible randomness: a seed (printed; SHOAL_TEST_SEED=<64 hex> sets
 * it) and a counter, through libsodium's deterministic generator. */
static uint8_t seed[randombytes_SEEDBYTES];
static uint64_t draws;

static void rnd(void *p, size_t n)
{
	uint8_t s[randombytes_SEEDBYTES];
	memcpy(s, seed, sizeof s);
	for (int i = 0; i < 8; i++)
		s[i] ^= (uint8_t)(draws >> (8 * i));
	draws++;
	randombytes_buf_deterministic(p, n, s);
}

static uint32_t rnd_below(uint32_t n)
{
	uint32_t v;
	rnd(&v, sizeof v);
	return v % n;
}

/* A message length: the edges of the block size and of a record, or any. */
static size_t pick_len(void)
{
	static const size_t edges[] = { 0, 1, 15, 16, 17, 31, 32, 33, 255, 4095, 4096, 16384,
					65535, CRYPT_MAX_PLAIN };
	if (rnd_below(2) == 0)
		return edges[rnd_below(sizeof edges / sizeof edges[0])];
	return rnd_below(CRYPT_MAX_PLAIN + 1);
}

/* Buffers with room for a record plus an offset of up to 15 bytes, so
 * neither backend may assume aligned input or output. */
#define BUF_LEN (CRYPT_MAX_PLAIN + AESGCM_TAG_LEN + 64)
static uint8_t msg_buf[BUF_LEN], ours_buf[BUF_LEN], ref_buf[BUF_LEN], back_buf[BUF_LEN];

static void test_backend(void **state)
{
	(void)state;
#ifdef SHOAL_HAVE_OPENSSL
	assert_string_equal(aesgcm_backend(), "openssl");
#else
	assert_string_equal(aesgcm_backend(), "libsodium");
#endif
	assert_string_equal(crypt_aes256gcm_backend(), aesgcm_backend());
	/* The offer follows the hardware probe, whichever the backend. */
	assert_true(crypt_aes256gcm_available() == aesgcm_hw_available());
	assert_true(aesgcm_hw_available() == (crypto_aead_aes256gcm_is_available() == 1));
}

/* One key per direction is set up once and then reused for many messages,
 * each under its own nonce: exactly how the record layer drives it. */
static void test_primitive_matches_libsodium(void **state)
{
	(void)state;
	NEED_AES();
	struct aesgcm seal_key, open_key;
	memset(&seal_key, 0, sizeof seal_key);
	memset(&open_key, 0, sizeof open_key);
	for (int k = 0; k < 8; k++) {
		uint8_t key[AESGCM_KEY_LEN];
		rnd(key, sizeof key);
		/* Initialising again replaces the key (and must not leak: ASan). */
		assert_int_equal(aesgcm_init(&seal_key, key, true), 0);
		assert_int_equal(aesgcm_init(&open_key, key, false), 0);
		for (int t = 0; t < 24; t++) {
			uint8_t nonce[AESGCM_NONCE_LEN], ad[64];
			rnd(nonce, sizeof nonce);
			size_t adlen = rnd_below(sizeof ad + 1), n = pick_len();
			rnd(ad, adlen);
			uint8_t *m = msg_buf + rnd_below(16), *ours = ours_buf + rnd_below(16);
			uint8_t *back = back_buf + rnd_below(16);
			rnd(m, n);

			assert_int_equal(aesgcm_seal(&seal_key, ours, m, n, ad, adlen, nonce), 0);
			unsigned long long clen = 0;
			assert_int_equal(crypto_aead_aes256gcm_encrypt(ref_buf, &clen, m, n, ad, adlen,
								       NULL, nonce, key), 0);
			assert_int_equal(clen, n + AESGCM_TAG_LEN);
			assert_memory_equal(ours, ref_buf, n + AESGCM_TAG_LEN);

			/* Opens what libsodium sealed (the same bytes), and libsodium
			 * opens what it sealed. */
			assert_int_equal(aesgcm_open(&open_key, back, ref_buf, n + AESGCM_TAG_LEN, ad,
						     adlen, nonce), 0);
			if (n)
				assert_memory_equal(back, m, n);
			unsigned long long mlen = 0;
			assert_int_equal(crypto_aead_aes256gcm_decrypt(ref_buf, &mlen, NULL, ours,
								       n + AESGCM_TAG_LEN, ad, adlen,
								       nonce, key), 0);
			assert_int_equal(mlen, n);

			/* One flipped bit anywhere (ciphertext, tag, AD, nonce) is
			 * refused, the output holds nothing of the plaintext, and the
			 * key still opens the next message. */
			size_t where = rnd_below((uint32_t)(n + AESGCM_TAG_LEN + adlen + AESGCM_NONCE_LEN));
			uint8_t bit = (uint8_t)(1u << rnd_below(8));
			uint8_t *flip = where < n + AESGCM_TAG_LEN ? ours + where
					: where < n + AESGCM_TAG_LEN + adlen ? ad + (where - n - AESGCM_TAG_LEN)
					: nonce + (where - n - AESGCM_TAG_LEN - adlen);
			*flip ^= bit;
			memset(back, 0x5c, n);
			assert_int_equal(aesgcm_open(&open_key, back, ours, n + AESGCM_TAG_LEN, ad, adlen,
						     nonce), -EBADMSG);
			for (size_t i = 0; i < n; i++)
				assert_int_equal(back[i], 0);
			*flip ^= bit;
			assert_int_equal(aesgcm_open(&open_key, back, ours, n + AESGCM_TAG_LEN, ad, adlen,
						     nonce), 0);
			if (n)
				assert_memory_equal(back, m, n);
		}
		sodium_memzero(key, sizeof key);
	}
	aesgcm_destroy(&seal_key);
	aesgcm_destroy(&open_key);
	aesgcm_destroy(&open_key); /* twice is fine */
}

/* Misuse fails cleanly, with nothing sealed or opened. */
static void test_primitive_misuse(void **state)
{
	(void)state;
	struct aesgcm g;
	memset(&g, 0, sizeof g);
	uint8_t key[AESGCM_KEY_LEN] = { 1 }, nonce[AESGCM_NONCE_LEN] = { 0 }, c[AESGCM_TAG_LEN + 4];
	uint8_t m[4] = { 0 };
	/* Not initialised. */
	assert_int_equal(aesgcm_seal(&g, c, m, sizeof m, NULL, 0, nonce), -EINVAL);
	assert_int_equal(aesgcm_open(&g, m, c, sizeof c, NULL, 0, nonce), -EINVAL);
	aesgcm_destroy(&g);
	if (!aesgcm_hw_available())
		return;
	/* A sealing key does not open, an opening key does not seal. */
	assert_int_equal(aesgcm_init(&g, key, true), 0);
	assert_int_equal(aesgcm_open(&g, m, c, sizeof c, NULL, 0, nonce), -EINVAL);
	assert_int_equal(aesgcm_seal(&g, c, m, sizeof m, NULL, 0, nonce), 0);
	assert_int_equal(aesgcm_init(&g, key, false), 0);
	assert_int_equal(aesgcm_seal(&g, c, m, sizeof m, NULL, 0, nonce), -EINVAL);
	/* Shorter than a tag. */
	assert_int_equal(aesgcm_open(&g, m, c, AESGCM_TAG_LEN - 1, NULL, 0, nonce), -EINVAL);
	assert_int_equal(aesgcm_open(&g, m, c, sizeof c, NULL, 0, nonce), 0);
	assert_int_equal(aesgcm_open(&g, m, c, sizeof c, (const uint8_t *)"x", 1, nonce), -EBADMSG);
	aesgcm_destroy(&g);
}

/* Hand one side's handshake output to the other. */
static void pass(struct crypt *from, struct crypt *to)
{
	size_t n = 0;
	const uint8_t *o = crypt_output(from, &n);
	const uint8_t *p = o, *end = o + n;
	while (p < end) {
		size_t got = 0;
		assert_true(crypt_feed(to, &p, end, back_buf, &got) >= 0);
	}
	crypt_output_done(from);
}

/* Record `seq` of a direction, made by hand with libsodium from docs/protocol.md 2.15:
 * L | AES-256-GCM(key, nonce = 00000000 | seq big-endian, ad = L). */
static size_t ref_record(uint8_t *out, const uint8_t key[32], uint64_t seq, const uint8_t *m,
			 size_t n)
{
	uint8_t nonce[AESGCM_NONCE_LEN] = { 0 };
	for (int i = 0; i < 8; i++)
		nonce[4 + i] = (uint8_t)(seq >> (56 - 8 * i));
	wr32(out, (uint32_t)(n + AESGCM_TAG_LEN));
	unsigned long long clen = 0;
	assert_int_equal(crypto_aead_aes256gcm_encrypt(out + 4, &clen, m, n, out, 4, NULL, nonce, key),
			 0);
	return 4 + (size_t)clen;
}

/* The record layer over this primitive writes, byte for byte, the records
 * 2.15 describes, at any record number, and opens them whole or split. */
static void test_records_match_libsodium(void **state)
{
	(void)state;
	NEED_AES();
	for (int s = 0; s < 6; s++) {
		uint8_t hash[CRYPT_INFO_HASH_LEN];
		rnd(hash, sizeof hash);
		struct crypt *I = NULL, *R = NULL;
		assert_int_equal(crypt_new_initiator(&I, hash, CRYPT_CIPHERS_AUTO, NULL), 0);
		assert_int_equal(crypt_new_responder(&R, (const uint8_t(*)[CRYPT_INFO_HASH_LEN])hash, 1,
						     NULL, NULL, CRYPT_CIPHERS_AUTO, NULL), 0);
		pass(I, R);
		pass(R, I);
		pass(I, R);
		assert_true(crypt_established(I) && crypt_established(R));
		assert_int_equal(crypt_cipher(I), CRYPT_CIPHER_AES256GCM);
		uint8_t k_i2r[32], k_r2i[32];
		assert_int_equal(crypt_session_keys(I, k_i2r, k_r2i), 0);

		/* Confirmations used record 0 each way; jump to a random number
		 * (the nonce's high bytes too) in both directions. */
		uint64_t skip = 0;
		rnd(&skip, sizeof skip);
		skip = s == 0 ? 0 : skip >> (8 * rnd_below(8)) >> 1;
		assert_int_equal(crypt_skip_records(I, skip, skip), 0);
		uint64_t seq = 1 + skip;
		for (int t = 0; t < 12; t++, seq++) {
			size_t n = pick_len();
			uint8_t *m = msg_buf + rnd_below(16);
			rnd(m, n);
			size_t len = 0, rlen;
			assert_int_equal(crypt_seal(I, m, n, ours_buf, &len), 0);
			rlen = ref_record(ref_buf, k_i2r, seq, m, n);
			assert_int_equal(len, rlen);
			assert_memory_equal(ours_buf, ref_buf, len);

			/* The other way: a by-hand responder record opens at I,
			 * whole, or split at a random point (the reassembly path). */
			rlen = ref_record(ref_buf, k_r2i, seq, m, n);
			size_t cut = rnd_below(2) ? rlen : rnd_below((uint32_t)rlen);
			const uint8_t *p = ref_buf;
			size_t got = 0;
			int rc = crypt_feed(I, &p, ref_buf + cut, back_buf, &got);
			if (cut < rlen) {
				assert_int_equal(rc, 0);
				rc = crypt_feed(I, &p, ref_buf + rlen, back_buf, &got);
			}
			assert_int_equal(rc, 1);
			assert_int_equal(got, n);
			if (n)
				assert_memory_equal(back_buf, m, n);
		}
		/* A record that fails leaves nothing of its plaintext behind. */
		size_t n = 64;
		memset(msg_buf, 0xa5, n);
		size_t rlen = ref_record(ref_buf, k_r2i, seq, msg_buf, n);
		ref_buf[rlen - 1] ^= 1;
		const uint8_t *p = ref_buf;
		size_t got = 0;
		memset(back_buf, 0x5c, n);
		assert_int_equal(crypt_feed(I, &p, ref_buf + rlen, back_buf, &got), -EBADMSG);
		for (size_t i = 0; i < n; i++)
			assert_int_equal(back_buf[i], 0);
		sodium_memzero(k_i2r, sizeof k_i2r);
		sodium_memzero(k_r2i, sizeof k_r2i);
		crypt_free(I);
		crypt_free(R);
	}
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	const char *env = getenv("SHOAL_TEST_SEED");
	size_t got = 0;
	if (env && *env) {
		if (sodium_hex2bin(seed, sizeof seed, env, strlen(env), NULL, &got, NULL) != 0 ||
		    got != sizeof seed) {
			fprintf(stderr, "SHOAL_TEST_SEED: want %zu bytes of hex\n", sizeof seed);
			return 2;
		}
	} else {
		randombytes_buf(seed, sizeof seed);
	}
	char hex[2 * sizeof seed + 1];
	sodium_bin2hex(hex, sizeof hex, seed, sizeof seed);
	print_message("AES-256-GCM backend: %s; AES-NI: %s; SHOAL_TEST_SEED=%s\n", aesgcm_backend(),
		      aesgcm_hw_available() ? "yes" : "no", hex);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_backend),
		cmocka_unit_test(test_primitive_matches_libsodium),
		cmocka_unit_test(test_primitive_misuse),
		cmocka_unit_test(test_records_match_libsodium),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
