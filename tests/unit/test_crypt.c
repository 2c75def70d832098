/* test_crypt.c: unit tests for the shoal encrypted transport (transfer/crypt.h, docs/protocol.md). */
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
#include "common/util.h"
#include "transfer/crypt.h"

/* ---- docs/protocol.md test vectors ---------------------------------------- */

#define VEC_PK_I "20243c2fa724ef40cdd0a518dd546e05b914cad065b4e8a3958079080aac6607"
#define VEC_SK_I "62093cd92cefd1bcb597c82ad3a8f14f9905d30b298108a8da3ecbc672cfb8dc"
#define VEC_SK_R "bb0e24befe35cd612ad06da77a4a54a4c78d01b38f4609edcb1d4d00628cc2fa"
#define VEC_RX_I "c5ed9f89e4b5816588e4b59f386e42917a7aba734a0d8c5652ab27cdd42fa3d2"
#define VEC_TX_I "02dc8f6514171f35ee2cb413b8dfdae57de2a1963e58998bcd9b8a301186461c"
#define VEC_PK_R "7dde4ebc7e6bb3293a4643423b22ca4df3542b90c1779230bd777a9ee6d3d92f"
#define VEC_HELLO                                                                        \
	"0073686f616c0100"                                                               \
	"20243c2fa724ef40cdd0a518dd546e05b914cad065b4e8a3958079080aac6607"               \
	"761d5f17514363482f76c3e045bb9f726a5f354a5426767d2da595fd59da92a9"
#define VEC_REPLY                                                                        \
	"7dde4ebc7e6bb3293a4643423b22ca4df3542b90c1779230bd777a9ee6d3d92f"               \
	"c0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7"                               \
	"000000117c0807c1295513b16adf48edb4ac280047"
#define VEC_FINISH                                                                       \
	"a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7"                               \
	"0000001112a4503eb4fc971b4ec49c9b261816a6dc"
#define VEC_K_I2R "d524be2b260bcecde8db237ab9ede7f9206dc57037f777abdb293d8bac48213a"
#define VEC_K_R2I "ed65bada642cf9edabee851733841bb9d5cea53b6e9326b578fad7a4a1fdba40"
#define VEC_MSG "hello, shoal"
#define VEC_RECORD "0000001dc4756d6005bc0c2885d7c21d80b0b146f8f37e92a8b3c61287c232a001"

/* The AES-256-GCM path (docs/protocol.md 2.17): the same fixed inputs, an
 * initiator offering AES-256-GCM (flags 01) and a responder that takes it. */
#define VEC_AES_HELLO                                                                    \
	"0073686f616c0101"                                                               \
	"20243c2fa724ef40cdd0a518dd546e05b914cad065b4e8a3958079080aac6607"               \
	"a3df4af3595b52723cdac5a5947c31d87f9d653f50bd3f0d604a6f8ffc11e4e1"
#define VEC_AES_K_I2R "8ab9922762e2fd709bcdfefb79cf49e7af650e8761fb8900ae8b47ab7df13bf9"
#define VEC_AES_K_R2I "523e951aed316ec3764cf088fcacad9af375301b0f8b64c47a1a7c6d72def0cf"
#define VEC_AES_REPLY                                                                    \
	"7dde4ebc7e6bb3293a4643423b22ca4df3542b90c1779230bd777a9ee6d3d92f"               \
	"01"                                                                             \
	"000000100e5bfb435f7979f30d9ef16ee8c0f7a9"
#define VEC_AES_FINISH "000000108c8a33fceca1510c5ceb0d3f3107648c"
#define VEC_AES_RECORD_I2R "0000001c19871d31e3a7f183cb4987e9212fd106a15ecd8ea76f50f778fa98d9"
#define VEC_AES_RECORD_R2I "0000001c7ad8a2154b3b847a994506d53a7eee9465b3f2f6574506dd942cf554"
/* The same offer declined (the responder has no AES-256-GCM): XChaCha20-
 * Poly1305 with the negotiated key derivation. */
#define VEC_NX_K_I2R "3bcab89163531810df9a6fa673f4d6270fda9676a8f9f452a9d5bf20aba67a18"
#define VEC_NX_K_R2I "5f625f91cb900a51d1bf9495b017bb8dd9104d0f1786629f879665fd1f1304df"
#define VEC_NX_REPLY                                                                     \
	"7dde4ebc7e6bb3293a4643423b22ca4df3542b90c1779230bd777a9ee6d3d92f"               \
	"00"                                                                             \
	"c0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7"                               \
	"000000110c19d492a70c86c446fcdaed9cc979a4ab"
#define VEC_NX_FINISH                                                                    \
	"a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7"                               \
	"000000117c6079ac6830a13580797129796c3a99a1"
#define VEC_NX_RECORD "0000001d731c393b76cd421d6bccf056725a4c3ab1796acbf5f90e2f90eb99c280"

static uint8_t scratch[CRYPT_MAX_PLAIN];

static void vec_inputs(uint8_t hash[32], struct crypt_det *di, struct crypt_det *dr)
{
	memset(di, 0, sizeof *di);
	memset(dr, 0, sizeof *dr);
	for (int i = 0; i < 32; i++) {
		hash[i] = (uint8_t)i;
		di->kx_seed[i] = (uint8_t)(0x40 + i);
		dr->kx_seed[i] = (uint8_t)(0x80 + i);
	}
	for (int i = 0; i < CRYPT_HEADER_LEN; i++) {
		di->header[i] = (uint8_t)(0xa0 + i);
		dr->header[i] = (uint8_t)(0xc0 + i);
	}
}

/* AES-256-GCM needs AES-NI and PCLMUL: tests of that path alone are
 * skipped on a CPU without them (the fallback tests run everywhere). */
#define NEED_AES()                                                                       \
	do {                                                                             \
		if (!crypt_aes256gcm_available()) {                                      \
			print_message("no AES-256-GCM on this CPU: skipped\n");          \
			skip();                                                          \
		}                                                                        \
	} while (0)

static void assert_hex(const uint8_t *p, size_t n, const char *hex)
{
	char *s = malloc(2 * n + 1);
	assert_non_null(s);
	hex_encode(p, n, s);
	assert_string_equal(s, hex);
	free(s);
}

/* Take a side's pending handshake output into `dst` (appending). */
static size_t take_output(struct crypt *c, uint8_t *dst)
{
	size_t n = 0;
	const uint8_t *o = crypt_output(c, &n);
	if (n)
		memcpy(dst, o, n);
	crypt_output_done(c);
	return n;
}

/* Feed `n` bytes to `c` in chunks of `chunk`; collect plaintext into `plain`
 * (if non-NULL).  Returns the first error or 0; *plain_len gets the total. */
static int feed_chunked(struct crypt *c, const uint8_t *p, size_t n, size_t chunk, uint8_t *plain,
			size_t *plain_len)
{
	size_t total = 0;
	for (size_t off = 0; off < n;) {
		size_t k = n - off < chunk ? n - off : chunk;
		const uint8_t *q = p + off, *end = p + off + k;
		while (q < end) {
			size_t got = 0;
			int rc = crypt_feed(c, &q, end, scratch, &got);
			if (rc < 0)
				return rc;
			if (rc == 1 && plain) {
				memcpy(plain + total, scratch, got);
				total += got;
			}
		}
		off += k;
	}
	if (plain_len)
		*plain_len = total;
	return 0;
}

/* Seal `n` bytes, asserting success; returns the record's length. */
static size_t seal(struct crypt *c, const void *m, size_t n, uint8_t *out)
{
	size_t len = 0;
	assert_int_equal(crypt_seal(c, m, n, out, &len), 0);
	assert_true(len <= CRYPT_SEALED_MAX(n));
	assert_int_equal(len, n + (crypt_cipher(c) == CRYPT_CIPHER_AES256GCM
					   ? CRYPT_LEN_LEN + CRYPT_GCM_ABYTES
					   : CRYPT_RECORD_OVERHEAD));
	return len;
}

/* Run the handshake between I and R, delivering `chunk` bytes at a time,
 * and check every message has the length its cipher gives it. */
static void handshake(struct crypt *I, struct crypt *R, size_t chunk)
{
	uint8_t buf[128];
	size_t n = take_output(I, buf);
	assert_int_equal(n, CRYPT_HELLO_LEN);
	assert_int_equal(buf[CRYPT_MAGIC_LEN], crypt_offers_ciphers(I) ? CRYPT_HELLO_FLAG_AES256GCM : 0);
	assert_int_equal(crypt_cipher(I), -ENOTCONN);
	assert_int_equal(feed_chunked(R, buf, n, chunk, NULL, NULL), 0);
	assert_false(crypt_established(R));
	int cipher = crypt_cipher(R);
	assert_true(cipher >= 0);
	n = take_output(R, buf);
	size_t want = !crypt_offers_ciphers(I)		    ? CRYPT_REPLY_LEN
		      : cipher == CRYPT_CIPHER_AES256GCM ? CRYPT_REPLY_AES_LEN
							 : CRYPT_REPLY_XCHACHA_LEN;
	assert_int_equal(n, want);
	assert_int_equal(feed_chunked(I, buf, n, chunk, NULL, NULL), 0);
	assert_true(crypt_established(I));
	assert_int_equal(crypt_cipher(I), cipher);
	n = take_output(I, buf);
	assert_int_equal(n, cipher == CRYPT_CIPHER_AES256GCM ? CRYPT_FINISH_AES_LEN : CRYPT_FINISH_LEN);
	assert_int_equal(feed_chunked(R, buf, n, chunk, NULL, NULL), 0);
	assert_true(crypt_established(R));
	size_t none;
	assert_null(crypt_output(R, &none));
	assert_int_equal(none, 0);
}

/* How the two ends of a test are set up. */
enum mode {
	M_LEGACY, /* an initiator that offers nothing (flags 00, as before negotiation) */
	M_AES,    /* both offer and take AES-256-GCM */
	M_NEGX,   /* AES-256-GCM offered, declined: negotiated XChaCha20-Poly1305 */
};
static const char *const mode_names[] = { "legacy", "aes256gcm", "negotiated xchacha" };

static enum crypt_ciphers mode_init(enum mode m)
{
	return m == M_LEGACY ? CRYPT_CIPHERS_XCHACHA_ONLY : CRYPT_CIPHERS_AUTO;
}

static enum crypt_ciphers mode_resp(enum mode m)
{
	return m == M_NEGX ? CRYPT_CIPHERS_XCHACHA_ONLY : CRYPT_CIPHERS_AUTO;
}

static int mode_cipher(enum mode m)
{
	return m == M_AES ? CRYPT_CIPHER_AES256GCM : CRYPT_CIPHER_XCHACHA20POLY1305;
}

/* Modes this CPU can run: an initiator offers AES-256-GCM only if it has it. */
static size_t modes_here(void)
{
	return crypt_aes256gcm_available() ? 3 : 1;
}

static void vec_check(enum mode m, const char *hello, const char *k_i2r, const char *k_r2i,
		      const char *reply, const char *finish, const char *rec_i2r)
{
	uint8_t hash[32];
	struct crypt_det di, dr;
	vec_inputs(hash, &di, &dr);
	struct crypt *I = NULL, *R = NULL;
	assert_int_equal(crypt_new_initiator(&I, hash, mode_init(m), &di), 0);
	assert_int_equal(crypt_new_responder(&R, (const uint8_t(*)[32])hash, 1, NULL, NULL, mode_resp(m), &dr), 0);
	assert_null(crypt_info_hash(R));

	uint8_t buf[128];
	size_t n = take_output(I, buf);
	assert_hex(buf, n, hello);
	assert_true(crypt_hello_matches(buf, hash));
	assert_int_equal(feed_chunked(R, buf, n, n, NULL, NULL), 0);
	assert_memory_equal(crypt_info_hash(R), hash, 32);
	assert_int_equal(crypt_cipher(R), mode_cipher(m));
	n = take_output(R, buf);
	assert_hex(buf, n, reply);
	assert_int_equal(feed_chunked(I, buf, n, n, NULL, NULL), 0);
	assert_int_equal(crypt_cipher(I), mode_cipher(m));
	n = take_output(I, buf);
	assert_hex(buf, n, finish);
	assert_int_equal(feed_chunked(R, buf, n, n, NULL, NULL), 0);
	assert_true(crypt_established(R));

	uint8_t a[32], b[32];
	assert_int_equal(crypt_session_keys(I, a, b), 0);
	assert_hex(a, 32, k_i2r);
	assert_hex(b, 32, k_r2i);
	assert_int_equal(crypt_session_keys(R, a, b), 0);
	assert_hex(a, 32, k_i2r);
	assert_hex(b, 32, k_r2i);

	uint8_t rec[64];
	size_t rl = seal(I, VEC_MSG, strlen(VEC_MSG), rec);
	assert_hex(rec, rl, rec_i2r);
	uint8_t plain[64];
	size_t pl = 0;
	assert_int_equal(feed_chunked(R, rec, rl, 1, plain, &pl), 0);
	assert_int_equal(pl, strlen(VEC_MSG));
	assert_memory_equal(plain, VEC_MSG, pl);
	assert_int_equal(crypt_finish(R), 0);
	if (m == M_AES) {
		rl = seal(R, VEC_MSG, strlen(VEC_MSG), rec);
		assert_hex(rec, rl, VEC_AES_RECORD_R2I);
		assert_int_equal(feed_chunked(I, rec, rl, 3, plain, &pl), 0);
		assert_int_equal(pl, strlen(VEC_MSG));
		assert_memory_equal(plain, VEC_MSG, pl);
	}
	crypt_free(I);
	crypt_free(R);
}

static void test_vectors(void **state)
{
	(void)state;
	uint8_t hash[32];
	struct crypt_det di, dr;
	vec_inputs(hash, &di, &dr);

	uint8_t pk[32], sk[32], pk_r[32], sk_r[32], rx[32], tx[32];
	crypto_kx_seed_keypair(pk, sk, di.kx_seed);
	assert_hex(pk, 32, VEC_PK_I);
	assert_hex(sk, 32, VEC_SK_I);
	crypto_kx_seed_keypair(pk_r, sk_r, dr.kx_seed);
	assert_hex(pk_r, 32, VEC_PK_R);
	assert_hex(sk_r, 32, VEC_SK_R);
	assert_int_equal(crypto_kx_client_session_keys(rx, tx, pk, sk, pk_r), 0);
	assert_hex(rx, 32, VEC_RX_I);
	assert_hex(tx, 32, VEC_TX_I);

	/* An initiator that offers nothing (an older shoal, or --cipher
	 * xchacha20poly1305), answered by a responder that could take AES-GCM:
	 * every byte as before negotiation existed. */
	vec_check(M_LEGACY, VEC_HELLO, VEC_K_I2R, VEC_K_R2I, VEC_REPLY, VEC_FINISH, VEC_RECORD);

	/* A CPU without AES-256-GCM sends that same hello, flags 00. */
	di.no_aes = true;
	struct crypt *I = NULL;
	assert_int_equal(crypt_new_initiator(&I, hash, CRYPT_CIPHERS_AUTO, &di), 0);
	uint8_t buf[128];
	size_t n = take_output(I, buf);
	assert_hex(buf, n, VEC_HELLO);
	assert_false(crypt_offers_ciphers(I));
	crypt_free(I);
}

static void test_vectors_aes(void **state)
{
	(void)state;
	NEED_AES();
	vec_check(M_AES, VEC_AES_HELLO, VEC_AES_K_I2R, VEC_AES_K_R2I, VEC_AES_REPLY,
		  VEC_AES_FINISH, VEC_AES_RECORD_I2R);
	vec_check(M_NEGX, VEC_AES_HELLO, VEC_NX_K_I2R, VEC_NX_K_R2I, VEC_NX_REPLY, VEC_NX_FINISH,
		  VEC_NX_RECORD);

	/* A responder on a CPU without AES-256-GCM declines the same way, to
	 * the byte. */
	uint8_t hash[32], buf[128];
	struct crypt_det di, dr;
	vec_inputs(hash, &di, &dr);
	dr.no_aes = true;
	struct crypt *I = NULL, *R = NULL;
	assert_int_equal(crypt_new_initiator(&I, hash, CRYPT_CIPHERS_AUTO, &di), 0);
	assert_int_equal(crypt_new_responder(&R, (const uint8_t(*)[32])hash, 1, NULL, NULL,
					     CRYPT_CIPHERS_AUTO, &dr), 0);
	size_t n = take_output(I, buf);
	assert_int_equal(feed_chunked(R, buf, n, n, NULL, NULL), 0);
	n = take_output(R, buf);
	assert_hex(buf, n, VEC_NX_REPLY);
	crypt_free(I);
	crypt_free(R);
}

static void test_classify(void **state)
{
	(void)state;
	const uint8_t plain[] = "\x13"
				"BitTorrent protocol\0\0\0";
	const uint8_t enc[] = { 0, 's', 'h', 'o', 'a', 'l', 1, 0 };
	assert_int_equal(crypt_classify(plain, 0), CRYPT_NEED_MORE);
	for (size_t i = 1; i < 20; i++) {
		assert_int_equal(crypt_classify(plain, i), CRYPT_NEED_MORE);
	}
	assert_int_equal(crypt_classify(plain, 20), CRYPT_PLAIN);
	assert_int_equal(crypt_classify(plain, sizeof plain), CRYPT_PLAIN);
	for (size_t i = 1; i < CRYPT_MAGIC_LEN; i++)
		assert_int_equal(crypt_classify(enc, i), CRYPT_NEED_MORE);
	assert_int_equal(crypt_classify(enc, CRYPT_MAGIC_LEN), CRYPT_ENCRYPTED);
	assert_int_equal(crypt_classify(enc, sizeof enc), CRYPT_ENCRYPTED);

	uint8_t bad[20];
	memcpy(bad, plain, 20);
	bad[10] ^= 1;
	assert_int_equal(crypt_classify(bad, 20), CRYPT_INVALID);
	assert_int_equal(crypt_classify(bad, 10), CRYPT_NEED_MORE); /* not yet visible */
	memcpy(bad, enc, sizeof enc);
	bad[6] = 2; /* a version we do not speak */
	assert_int_equal(crypt_classify(bad, 7), CRYPT_INVALID);
	const uint8_t http[] = "GET / HTTP/1.1";
	assert_int_equal(crypt_classify(http, 1), CRYPT_INVALID);
	/* The encrypted preamble can never begin like plain BitTorrent. */
	assert_int_not_equal(enc[0], plain[0]);
}

/* A det with random keys and headers, pretending the CPU lacks AES-GCM. */
static const struct crypt_det *no_aes_det(struct crypt_det *d, bool no_aes)
{
	if (!no_aes)
		return NULL;
	memset(d, 0, sizeof *d);
	randombytes_buf(d->kx_seed, sizeof d->kx_seed);
	randombytes_buf(d->header, sizeof d->header);
	d->no_aes = true;
	return d;
}

/* Both ways, several records of assorted sizes including the maximum,
 * `chunk` bytes at a time. */
static void exchange(struct crypt *I, struct crypt *R, size_t chunk)
{
	static const size_t sizes[] = { 0, 1, 68, 16397, CRYPT_MAX_PLAIN, 3 };
	size_t total = 0;
	for (size_t i = 0; i < ARRAY_LEN(sizes); i++)
		total += CRYPT_SEALED_MAX(sizes[i]);
	uint8_t *wire = malloc(total), *msg = malloc(CRYPT_MAX_PLAIN), *got = malloc(total);
	assert_non_null(wire);
	assert_non_null(msg);
	assert_non_null(got);
	for (int dir = 0; dir < 2; dir++) {
		struct crypt *tx = dir ? R : I, *rx = dir ? I : R;
		size_t off = 0, expect = 0;
		for (size_t i = 0; i < ARRAY_LEN(sizes); i++) {
			for (size_t j = 0; j < sizes[i]; j++)
				msg[j] = (uint8_t)(j * 7 + i + (size_t)dir);
			off += seal(tx, msg, sizes[i], wire + off);
			expect += sizes[i];
		}
		size_t pl = 0;
		assert_int_equal(feed_chunked(rx, wire, off, chunk, got, &pl), 0);
		assert_int_equal(pl, expect);
		size_t at = 0;
		for (size_t i = 0; i < ARRAY_LEN(sizes); i++) {
			for (size_t j = 0; j < sizes[i]; j++)
				assert_int_equal(got[at + j], (uint8_t)(j * 7 + i + (size_t)dir));
			at += sizes[i];
		}
		assert_int_equal(crypt_finish(rx), 0);
	}
	free(wire);
	free(msg);
	free(got);
}

/* Round trip with random keys both ways in mode `m`, `chunk` bytes at a time. */
static void round_trip(enum mode m, size_t chunk, bool det_responder)
{
	uint8_t hash[32], other[32];
	randombytes_buf(hash, sizeof hash);
	randombytes_buf(other, sizeof other);
	uint8_t list[2][32];
	memcpy(list[0], other, 32);
	memcpy(list[1], hash, 32);
	struct crypt_det dr;
	memset(&dr, 0x5a, sizeof dr);
	dr.no_aes = false;

	struct crypt *I = NULL, *R = NULL;
	assert_int_equal(crypt_new_initiator(&I, hash, mode_init(m), NULL), 0);
	assert_int_equal(crypt_new_responder(&R, (const uint8_t(*)[32])list, 2, NULL, NULL, mode_resp(m),
					     det_responder ? &dr : NULL), 0);
	handshake(I, R, chunk);
	assert_int_equal(crypt_cipher(R), mode_cipher(m));
	assert_memory_equal(crypt_info_hash(R), hash, 32);
	exchange(I, R, chunk);
	crypt_free(I);
	crypt_free(R);
}

static void test_round_trip_whole(void **state)
{
	(void)state;
	for (size_t m = 0; m < modes_here(); m++)
		round_trip((enum mode)m, 1u << 20, false);
}

static void test_round_trip_bytewise(void **state)
{
	(void)state;
	for (size_t m = 0; m < modes_here(); m++) {
		round_trip((enum mode)m, 1, false);
		round_trip((enum mode)m, 7, true); /* a deterministic side interoperates with a random one */
	}
}

/* Who gets which cipher: AES-256-GCM exactly when both ends allow it and
 * the CPU has it; otherwise XChaCha20-Poly1305, whichever end lacks it,
 * through the policy (--cipher) or the CPU (the no_aes hook). */
static void test_cipher_choice(void **state)
{
	(void)state;
	bool hw = crypt_aes256gcm_available();
	struct {
		enum crypt_ciphers ciphers;
		bool no_aes;
	} ends[] = {
		{ CRYPT_CIPHERS_AUTO, false },
		{ CRYPT_CIPHERS_XCHACHA_ONLY, false },
		{ CRYPT_CIPHERS_AUTO, true },
	};
	for (size_t i = 0; i < ARRAY_LEN(ends); i++) {
		for (size_t r = 0; r < ARRAY_LEN(ends); r++) {
			uint8_t hash[32];
			randombytes_buf(hash, sizeof hash);
			struct crypt_det di, dr;
			struct crypt *I = NULL, *R = NULL;
			assert_int_equal(crypt_new_initiator(&I, hash, ends[i].ciphers,
							     no_aes_det(&di, ends[i].no_aes)), 0);
			assert_int_equal(crypt_new_responder(&R, (const uint8_t(*)[32])hash, 1, NULL, NULL,
							     ends[r].ciphers, no_aes_det(&dr, ends[r].no_aes)),
					 0);
			assert_int_equal(crypt_offers_ciphers(I), hw && i == 0);
			handshake(I, R, 1000);
			int want = hw && i == 0 && r == 0 ? CRYPT_CIPHER_AES256GCM
							  : CRYPT_CIPHER_XCHACHA20POLY1305;
			assert_int_equal(crypt_cipher(I), want);
			assert_int_equal(crypt_cipher(R), want);
			exchange(I, R, 4096);
			crypt_free(I);
			crypt_free(R);
		}
	}
	assert_string_equal(crypt_cipher_name(CRYPT_CIPHER_AES256GCM), "aes256gcm");
	assert_string_equal(crypt_cipher_name(CRYPT_CIPHER_XCHACHA20POLY1305), "xchacha20poly1305");
}

/* A full transcript: hello, reply, finish and two records i->r. */
struct transcript {
	enum mode mode;
	uint8_t hash[32];
	struct crypt_det di, dr;
	uint8_t hello[CRYPT_HELLO_LEN];
	uint8_t reply[CRYPT_REPLY_XCHACHA_LEN], finish[CRYPT_FINISH_LEN];
	size_t reply_len, finish_len;
	uint8_t i2r[2][CRYPT_SEALED_MAX(40)];
	size_t rec_len;
};

static struct crypt *t_responder(const struct transcript *t)
{
	struct crypt *R = NULL;
	assert_int_equal(crypt_new_responder(&R, (const uint8_t(*)[32])t->hash, 1, NULL, NULL,
					     mode_resp(t->mode), &t->dr), 0);
	return R;
}

static struct crypt *t_initiator(const struct transcript *t)
{
	struct crypt *I = NULL;
	assert_int_equal(crypt_new_initiator(&I, t->hash, mode_init(t->mode), &t->di), 0);
	return I;
}

static void make_transcript(struct transcript *t, enum mode m)
{
	memset(t, 0, sizeof *t);
	t->mode = m;
	vec_inputs(t->hash, &t->di, &t->dr);
	struct crypt *I = t_initiator(t), *R = t_responder(t);
	take_output(I, t->hello);
	assert_int_equal(feed_chunked(R, t->hello, sizeof t->hello, 1000, NULL, NULL), 0);
	t->reply_len = take_output(R, t->reply);
	assert_int_equal(feed_chunked(I, t->reply, t->reply_len, 1000, NULL, NULL), 0);
	t->finish_len = take_output(I, t->finish);
	uint8_t msg[40];
	memset(msg, 'x', sizeof msg);
	t->rec_len = seal(I, msg, sizeof msg, t->i2r[0]);
	assert_int_equal(seal(I, msg, sizeof msg, t->i2r[1]), t->rec_len);
	assert_int_equal(crypt_cipher(I), mode_cipher(m));
	crypt_free(I);
	crypt_free(R);
}

/* hello | finish | the records, as the responder receives them. */
static size_t responder_stream(const struct transcript *t, uint8_t *out, size_t n_records)
{
	size_t n = 0;
	memcpy(out, t->hello, sizeof t->hello);
	n += sizeof t->hello;
	memcpy(out + n, t->finish, t->finish_len);
	n += t->finish_len;
	for (size_t i = 0; i < n_records; i++) {
		memcpy(out + n, t->i2r[i], t->rec_len);
		n += t->rec_len;
	}
	return n;
}

/* Flip every bit of what the initiator sends: the responder must fail
 * (at once, or at EOF for a length that now asks for more bytes). */
static void test_tamper_responder_side(void **state)
{
	(void)state;
	for (size_t m = 0; m < modes_here(); m++) {
		struct transcript t;
		make_transcript(&t, (enum mode)m);
		uint8_t stream[sizeof t.hello + sizeof t.finish + sizeof t.i2r];
		size_t n = responder_stream(&t, stream, 2);

		/* Untampered, the stream is accepted (sanity for the loop below). */
		struct crypt *R = t_responder(&t);
		size_t pl = 0;
		uint8_t plain[128];
		assert_int_equal(feed_chunked(R, stream, n, 1000, plain, &pl), 0);
		assert_int_equal(pl, 80);
		assert_int_equal(crypt_finish(R), 0);
		crypt_free(R);

		for (size_t bit = 0; bit < n * 8; bit++) {
			stream[bit / 8] ^= (uint8_t)(1u << (bit % 8));
			R = t_responder(&t);
			int rc = feed_chunked(R, stream, n, 1000, plain, &pl);
			if (rc == 0)
				rc = crypt_finish(R);
			if (rc >= 0)
				fail_msg("%s: bit %zu flipped went unnoticed", mode_names[m], bit);
			crypt_free(R);
			stream[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		}
	}
}

/* Flip every bit of the reply: the initiator must fail. */
static void test_tamper_initiator_side(void **state)
{
	(void)state;
	for (size_t m = 0; m < modes_here(); m++) {
		struct transcript t;
		make_transcript(&t, (enum mode)m);
		for (size_t bit = 0; bit < t.reply_len * 8; bit++) {
			t.reply[bit / 8] ^= (uint8_t)(1u << (bit % 8));
			struct crypt *I = t_initiator(&t);
			crypt_output_done(I);
			int rc = feed_chunked(I, t.reply, t.reply_len, 1000, NULL, NULL);
			if (rc == 0)
				rc = crypt_finish(I);
			if (rc >= 0)
				fail_msg("%s: reply bit %zu flipped went unnoticed", mode_names[m], bit);
			assert_false(crypt_established(I));
			crypt_free(I);
			t.reply[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		}
	}
}

/* Rewrite a hello's flags and give it a valid tag again: only someone who
 * holds H can do this (docs/protocol.md 2.16 treats such a member of the
 * swarm as trusted); the test does it to show that the keys, not only the
 * tag, bind the offer. */
static void retag(uint8_t hello[CRYPT_HELLO_LEN], uint8_t flags, const uint8_t hash[32])
{
	hello[CRYPT_MAGIC_LEN] = flags;
	crypto_generichash_blake2b_salt_personal(hello + 40, 32, hello, 40, hash, 32, NULL,
						 (const uint8_t *)"shoal-v1-hello\0");
	assert_true(crypt_hello_matches(hello, hash));
}

/* Feed `n` bytes to an end that must fail: with -EBADMSG at once, or (it
 * waits for more) at the end of the stream. */
static void assert_fails_badmsg(struct crypt *c, const uint8_t *p, size_t n)
{
	int rc = feed_chunked(c, p, n, 1000, NULL, NULL);
	if (rc == 0)
		rc = crypt_finish(c);
	assert_int_equal(rc, -EBADMSG);
	assert_false(crypt_established(c));
}

/* A man in the middle who changes the offer or the choice: both ends fail
 * with -EBADMSG before either accepts a byte of data. */
static void test_downgrade(void **state)
{
	(void)state;
	NEED_AES();
	struct transcript t;
	make_transcript(&t, M_AES);

	/* 1. Without H, a flipped offer breaks the hello's tag: no swarm
	 * matches and the responder closes without a reply. */
	for (int bit = 0; bit < 8; bit++) {
		uint8_t h[CRYPT_HELLO_LEN];
		memcpy(h, t.hello, sizeof h);
		h[CRYPT_MAGIC_LEN] ^= (uint8_t)(1u << bit);
		struct crypt *R = t_responder(&t);
		assert_int_equal(feed_chunked(R, h, sizeof h, 1000, NULL, NULL), -ENOENT);
		size_t none;
		assert_null(crypt_output(R, &none));
		crypt_free(R);
	}

	/* 2. The offer stripped (01 -> 00, re-tagged).  The responder answers
	 * the legacy way; the initiator, which offered, reads the reply's
	 * byte 32 as the cipher and refuses it; given the reply with a cipher
	 * byte 00 spliced in, its keys (which bind the offer it made) fail the
	 * confirmation.  The responder never gets a finish: at EOF it fails,
	 * and the honest finish of the untampered run does not open either. */
	uint8_t h[CRYPT_HELLO_LEN];
	memcpy(h, t.hello, sizeof h);
	retag(h, 0x00, t.hash);
	struct crypt *R = t_responder(&t);
	assert_int_equal(feed_chunked(R, h, sizeof h, 1000, NULL, NULL), 0);
	assert_int_equal(crypt_cipher(R), CRYPT_CIPHER_XCHACHA20POLY1305);
	uint8_t reply[CRYPT_REPLY_XCHACHA_LEN];
	size_t rn = take_output(R, reply);
	assert_int_equal(rn, CRYPT_REPLY_LEN);
	struct crypt *I = t_initiator(&t);
	crypt_output_done(I);
	assert_fails_badmsg(I, reply, rn);
	crypt_free(I);
	uint8_t spliced[CRYPT_REPLY_XCHACHA_LEN];
	memcpy(spliced, reply, CRYPT_PK_LEN);
	spliced[CRYPT_PK_LEN] = CRYPT_CIPHER_XCHACHA20POLY1305;
	memcpy(spliced + CRYPT_PK_LEN + 1, reply + CRYPT_PK_LEN, rn - CRYPT_PK_LEN);
	I = t_initiator(&t);
	crypt_output_done(I);
	assert_fails_badmsg(I, spliced, sizeof spliced);
	crypt_free(I);
	assert_int_equal(crypt_finish(R), -EBADMSG);
	assert_fails_badmsg(R, t.finish, t.finish_len);
	crypt_free(R);

	/* 3. A reserved bit added (01 -> 03, re-tagged): the responder still
	 * picks AES-256-GCM, but binds 03 into its keys.  Each end's
	 * confirmation fails at the other. */
	memcpy(h, t.hello, sizeof h);
	retag(h, 0x03, t.hash);
	R = t_responder(&t);
	assert_int_equal(feed_chunked(R, h, sizeof h, 1000, NULL, NULL), 0);
	assert_int_equal(crypt_cipher(R), CRYPT_CIPHER_AES256GCM);
	rn = take_output(R, reply);
	assert_int_equal(rn, CRYPT_REPLY_AES_LEN);
	I = t_initiator(&t);
	crypt_output_done(I);
	assert_fails_badmsg(I, reply, rn);
	crypt_free(I);
	assert_fails_badmsg(R, t.finish, t.finish_len);
	crypt_free(R);

	/* 4. The choice flipped in the reply, 01 -> 00: the initiator now
	 * expects a secretstream header and a 21-byte confirmation; whatever
	 * completes them, the keys (bound to choice 00) do not open it. */
	memcpy(reply, t.reply, t.reply_len);
	reply[CRYPT_PK_LEN] = CRYPT_CIPHER_XCHACHA20POLY1305;
	I = t_initiator(&t);
	crypt_output_done(I);
	assert_int_equal(feed_chunked(I, reply, t.reply_len, 1000, NULL, NULL), 0);
	assert_false(crypt_established(I));
	assert_int_equal(crypt_finish(I), -EBADMSG); /* the stream ends here */
	uint8_t pad[CRYPT_REPLY_XCHACHA_LEN - CRYPT_REPLY_AES_LEN];
	memset(pad, 0, sizeof pad);
	assert_fails_badmsg(I, pad, sizeof pad);
	crypt_free(I);
	/* ... and the responder, which chose 01, gets no finish it can open. */
	R = t_responder(&t);
	assert_int_equal(feed_chunked(R, t.hello, sizeof t.hello, 1000, NULL, NULL), 0);
	crypt_output_done(R);
	assert_int_equal(crypt_finish(R), -EBADMSG);
	crypt_free(R);

	/* 5. The choice flipped the other way, in a declined offer's reply
	 * (00 -> 01): the header's first bytes now read as the length of an
	 * AES-GCM confirmation, which they are not. */
	struct transcript nx;
	make_transcript(&nx, M_NEGX);
	nx.reply[CRYPT_PK_LEN] = CRYPT_CIPHER_AES256GCM;
	I = t_initiator(&nx);
	crypt_output_done(I);
	assert_fails_badmsg(I, nx.reply, nx.reply_len);
	crypt_free(I);
	/* A cipher byte naming nothing we offered. */
	for (unsigned v = 2; v < 256; v++) {
		memcpy(reply, t.reply, t.reply_len);
		reply[CRYPT_PK_LEN] = (uint8_t)v;
		I = t_initiator(&t);
		crypt_output_done(I);
		assert_int_equal(feed_chunked(I, reply, t.reply_len, 1000, NULL, NULL), -EBADMSG);
		crypt_free(I);
	}
}

/* Reserved flag bits are ignored, not refused: a later shoal may offer
 * more, and this one still answers (the bits count in the keys). */
static void test_reserved_flags(void **state)
{
	(void)state;
	uint8_t hash[32];
	struct crypt_det di, dr;
	vec_inputs(hash, &di, &dr);
	struct crypt *I = NULL;
	assert_int_equal(crypt_new_initiator(&I, hash, CRYPT_CIPHERS_XCHACHA_ONLY, &di), 0);
	uint8_t hello[CRYPT_HELLO_LEN];
	take_output(I, hello);
	crypt_free(I);
	static const uint8_t flags[] = { 0x80, 0xfe, 0x81, 0xff };
	for (size_t i = 0; i < ARRAY_LEN(flags); i++) {
		retag(hello, flags[i], hash);
		struct crypt *R = NULL;
		assert_int_equal(crypt_new_responder(&R, (const uint8_t(*)[32])hash, 1, NULL, NULL,
						     CRYPT_CIPHERS_AUTO, &dr), 0);
		assert_int_equal(feed_chunked(R, hello, sizeof hello, 100, NULL, NULL), 0);
		bool aes = (flags[i] & 1) && crypt_aes256gcm_available();
		uint8_t reply[CRYPT_REPLY_XCHACHA_LEN];
		size_t n = take_output(R, reply);
		assert_int_equal(n, aes ? CRYPT_REPLY_AES_LEN : CRYPT_REPLY_XCHACHA_LEN);
		assert_int_equal(reply[CRYPT_PK_LEN], aes ? CRYPT_CIPHER_AES256GCM
							  : CRYPT_CIPHER_XCHACHA20POLY1305);
		crypt_free(R);
	}
}

static int lookup_none(void *arg, const uint8_t hello[CRYPT_HELLO_LEN], uint8_t out[32])
{
	(void)hello;
	(void)out;
	(*(int *)arg)++;
	return -ENOENT;
}

static int lookup_liar(void *arg, const uint8_t hello[CRYPT_HELLO_LEN], uint8_t out[32])
{
	(void)hello;
	memcpy(out, arg, 32);
	return 0;
}

struct lookup_list {
	const uint8_t (*hashes)[32];
	size_t n;
};

static int lookup_scan(void *arg, const uint8_t hello[CRYPT_HELLO_LEN], uint8_t out[32])
{
	const struct lookup_list *l = arg;
	for (size_t i = 0; i < l->n; i++)
		if (crypt_hello_matches(hello, l->hashes[i])) {
			memcpy(out, l->hashes[i], 32);
			return 0;
		}
	return -ENOENT;
}

static void test_wrong_hash(void **state)
{
	(void)state;
	uint8_t hash[32];
	struct crypt_det di, dr;
	vec_inputs(hash, &di, &dr);
	uint8_t hello[CRYPT_HELLO_LEN];
	struct crypt *I = NULL, *R = NULL;
	assert_int_equal(crypt_new_initiator(&I, hash, CRYPT_CIPHERS_AUTO, &di), 0);
	take_output(I, hello);

	/* Someone who knows only the DHT's 20-byte key: same prefix, wrong tail. */
	uint8_t trunc[2][32];
	memcpy(trunc[0], hash, 20);
	memset(trunc[0] + 20, 0, 12);
	memcpy(trunc[1], hash, 32);
	trunc[1][31] ^= 0x80;
	assert_false(crypt_hello_matches(hello, trunc[0]));
	assert_false(crypt_hello_matches(hello, trunc[1]));
	assert_int_equal(crypt_new_responder(&R, (const uint8_t(*)[32])trunc, 2, NULL, NULL,
					     CRYPT_CIPHERS_AUTO, NULL), 0);
	assert_int_equal(feed_chunked(R, hello, sizeof hello, 3, NULL, NULL), -ENOENT);
	assert_null(crypt_info_hash(R));
	assert_int_equal(crypt_cipher(R), -ENOTCONN);
	size_t n;
	assert_null(crypt_output(R, &n)); /* nothing is ever sent back */
	/* Errors are sticky. */
	const uint8_t *p = hello, *end = hello + 1;
	size_t got;
	assert_int_equal(crypt_feed(R, &p, end, scratch, &got), -ENOENT);
	crypt_free(R);

	/* Lookup callbacks: none found; a liar is verified; a scan finds it. */
	int calls = 0;
	assert_int_equal(crypt_new_responder(&R, NULL, 0, lookup_none, &calls, CRYPT_CIPHERS_AUTO, NULL), 0);
	assert_int_equal(feed_chunked(R, hello, sizeof hello, 100, NULL, NULL), -ENOENT);
	assert_int_equal(calls, 1);
	crypt_free(R);
	assert_int_equal(crypt_new_responder(&R, NULL, 0, lookup_liar, trunc[0], CRYPT_CIPHERS_AUTO, NULL), 0);
	assert_int_equal(feed_chunked(R, hello, sizeof hello, 100, NULL, NULL), -ENOENT);
	crypt_free(R);
	uint8_t list[3][32];
	memcpy(list[0], trunc[0], 32);
	memcpy(list[1], trunc[1], 32);
	memcpy(list[2], hash, 32);
	struct lookup_list l = { (const uint8_t(*)[32])list, 3 };
	assert_int_equal(crypt_new_responder(&R, NULL, 0, lookup_scan, &l, CRYPT_CIPHERS_AUTO, NULL), 0);
	assert_int_equal(feed_chunked(R, hello, sizeof hello, 100, NULL, NULL), 0);
	assert_memory_equal(crypt_info_hash(R), hash, 32);
	crypt_free(R);
	assert_int_equal(crypt_new_responder(&R, NULL, 0, NULL, NULL, CRYPT_CIPHERS_AUTO, NULL), -EINVAL);

	/* An initiator that pads the 20-byte key cannot talk to the real swarm. */
	struct crypt *I2 = NULL;
	assert_int_equal(crypt_new_initiator(&I2, trunc[0], CRYPT_CIPHERS_AUTO, NULL), 0);
	take_output(I2, hello);
	assert_int_equal(crypt_new_responder(&R, (const uint8_t(*)[32])hash, 1, NULL, NULL,
					     CRYPT_CIPHERS_AUTO, NULL), 0);
	assert_int_equal(feed_chunked(R, hello, sizeof hello, 100, NULL, NULL), -ENOENT);
	crypt_free(R);
	crypt_free(I2);
	crypt_free(I);
}

static void test_bad_preamble(void **state)
{
	(void)state;
	uint8_t hash[32] = { 1 };
	struct crypt *R = NULL;
	const uint8_t plain[] = "\x13"
				"BitTorrent protocol";
	assert_int_equal(crypt_new_responder(&R, (const uint8_t(*)[32])hash, 1, NULL, NULL,
					     CRYPT_CIPHERS_AUTO, NULL), 0);
	assert_int_equal(feed_chunked(R, plain, 1, 1, NULL, NULL), -EPROTO); /* first byte */
	crypt_free(R);
	uint8_t hello[CRYPT_HELLO_LEN];
	struct crypt *I = NULL;
	assert_int_equal(crypt_new_initiator(&I, hash, CRYPT_CIPHERS_AUTO, NULL), 0);
	take_output(I, hello);
	crypt_free(I);
	hello[6] = 2;
	assert_int_equal(crypt_new_responder(&R, (const uint8_t(*)[32])hash, 1, NULL, NULL,
					     CRYPT_CIPHERS_AUTO, NULL), 0);
	assert_int_equal(feed_chunked(R, hello, 7, 1, NULL, NULL), -EPROTONOSUPPORT);
	crypt_free(R);
	hello[6] = 1;

	/* A low-order public key with a valid tag yields no shared secret,
	 * whatever the offer. */
	for (unsigned flags = 0; flags < 2; flags++) {
		memset(hello + 8, 0, 32);
		retag(hello, (uint8_t)flags, hash);
		assert_int_equal(crypt_new_responder(&R, (const uint8_t(*)[32])hash, 1, NULL, NULL,
						     CRYPT_CIPHERS_AUTO, NULL), 0);
		assert_int_equal(feed_chunked(R, hello, sizeof hello, 100, NULL, NULL), -EBADMSG);
		crypt_free(R);
	}
}

static void test_truncation(void **state)
{
	(void)state;
	for (size_t m = 0; m < modes_here(); m++) {
		struct transcript t;
		make_transcript(&t, (enum mode)m);
		uint8_t stream[sizeof t.hello + sizeof t.finish + sizeof t.i2r[0]];
		size_t n = responder_stream(&t, stream, 1);
		for (size_t cut = 0; cut < n; cut++) {
			struct crypt *R = t_responder(&t);
			assert_int_equal(feed_chunked(R, stream, cut, 5, NULL, NULL), 0);
			/* Only a cut between whole records reads as a clean end. */
			bool boundary = cut == sizeof t.hello + t.finish_len;
			assert_int_equal(crypt_finish(R), boundary ? 0 : -EBADMSG);
			crypt_free(R);
		}
		struct crypt *R = t_responder(&t);
		assert_int_equal(feed_chunked(R, stream, n, 5, NULL, NULL), 0);
		assert_int_equal(crypt_finish(R), 0);
		crypt_free(R);
	}
}

/* An established pair in mode `m`, random keys. */
static void pair(enum mode m, struct crypt **I, struct crypt **R)
{
	uint8_t hash[32];
	randombytes_buf(hash, sizeof hash);
	assert_int_equal(crypt_new_initiator(I, hash, mode_init(m), NULL), 0);
	assert_int_equal(crypt_new_responder(R, (const uint8_t(*)[32])hash, 1, NULL, NULL, mode_resp(m), NULL), 0);
	handshake(*I, *R, 1000);
	assert_int_equal(crypt_cipher(*I), mode_cipher(m));
}

static void test_record_limits(void **state)
{
	(void)state;
	for (size_t m = 0; m < modes_here(); m++) {
		uint8_t hash[32] = { 9 };
		struct crypt *I = NULL, *R = NULL;
		assert_int_equal(crypt_new_initiator(&I, hash, mode_init((enum mode)m), NULL), 0);
		assert_int_equal(crypt_new_responder(&R, (const uint8_t(*)[32])hash, 1, NULL, NULL,
						     mode_resp((enum mode)m), NULL), 0);
		uint8_t rec[64];
		size_t rl;
		/* Not before the handshake is done. */
		assert_int_equal(crypt_seal(I, (const uint8_t *)"x", 1, rec, &rl), -ENOTCONN);
		uint8_t buf[128];
		size_t n = take_output(I, buf);
		assert_int_equal(feed_chunked(R, buf, n, n, NULL, NULL), 0);
		assert_int_equal(crypt_seal(R, (const uint8_t *)"x", 1, rec, &rl), -ENOTCONN);
		n = take_output(R, buf);
		assert_int_equal(feed_chunked(I, buf, n, n, NULL, NULL), 0);
		/* Established, but the finish is not yet handed over. */
		assert_true(crypt_established(I));
		assert_int_equal(crypt_seal(I, (const uint8_t *)"x", 1, rec, &rl), -ENOTCONN);
		n = take_output(I, buf);
		assert_int_equal(feed_chunked(R, buf, n, n, NULL, NULL), 0);
		assert_int_equal(crypt_seal(I, scratch, CRYPT_MAX_PLAIN + 1, rec, &rl), -EMSGSIZE);

		/* A length prefix over the cipher's maximum fails before any body
		 * arrives. */
		uint32_t ab = m == M_AES ? CRYPT_GCM_ABYTES : CRYPT_ABYTES;
		uint8_t big[4];
		wr32(big, ab + CRYPT_MAX_PLAIN + 1);
		const uint8_t *p = big;
		size_t got;
		assert_int_equal(crypt_feed(R, &p, big + 4, scratch, &got), -EMSGSIZE);
		crypt_free(R);
		crypt_free(I);

		/* And one under the minimum (a record can never be shorter than its MAC). */
		pair((enum mode)m, &I, &R);
		uint8_t small[4];
		wr32(small, ab - 1);
		p = small;
		assert_int_equal(crypt_feed(I, &p, small + 4, scratch, &got), -EMSGSIZE);
		/* The receiving half failed for good; the sending half is its own
		 * once established (crypt.h, "Threads"): the owner closes. */
		p = small;
		assert_int_not_equal(crypt_feed(I, &p, small + 4, scratch, &got), 0);
		assert_true(crypt_established(I));
		assert_int_equal(crypt_seal(I, scratch, 1, rec, &rl), 0);
		crypt_free(R);
		crypt_free(I);

		/* The largest legal record goes through. */
		pair((enum mode)m, &I, &R);
		uint8_t *max = malloc(CRYPT_SEALED_MAX(CRYPT_MAX_PLAIN));
		assert_non_null(max);
		memset(scratch, 0xab, CRYPT_MAX_PLAIN);
		size_t ml = seal(I, scratch, CRYPT_MAX_PLAIN, max);
		assert_int_equal(rd32(max), ab + CRYPT_MAX_PLAIN);
		p = max;
		assert_int_equal(crypt_feed(R, &p, max + ml, scratch, &got), 1);
		assert_int_equal(got, CRYPT_MAX_PLAIN);
		assert_int_equal(scratch[CRYPT_MAX_PLAIN - 1], 0xab);
		/* Reordering or replaying a record fails authentication. */
		p = max;
		assert_int_equal(crypt_feed(R, &p, max + ml, scratch, &got), -EBADMSG);
		free(max);
		crypt_free(R);
		crypt_free(I);
	}
}

/* A confirmation that is not the empty record is refused as soon as its
 * length arrives, before anything is buffered. */
static void test_confirm_length(void **state)
{
	(void)state;
	for (size_t m = 0; m < modes_here(); m++) {
		struct transcript t;
		make_transcript(&t, (enum mode)m);
		struct crypt *I = t_initiator(&t);
		crypt_output_done(I);
		size_t at = t.reply_len - (m == M_AES ? CRYPT_GCM_CONFIRM_LEN : CRYPT_CONFIRM_LEN);
		uint8_t head[CRYPT_REPLY_XCHACHA_LEN];
		memcpy(head, t.reply, at);
		wr32(head + at, (m == M_AES ? CRYPT_GCM_ABYTES : CRYPT_ABYTES) + 1);
		assert_int_equal(feed_chunked(I, head, at + 4, 1000, NULL, NULL), -EBADMSG);
		crypt_free(I);
	}
}

/* AES-256-GCM numbers its records by the nonce: out of order, twice, or
 * from the other direction, a record does not open. */
static void test_aes_order(void **state)
{
	(void)state;
	NEED_AES();
	struct crypt *I = NULL, *R = NULL;
	pair(M_AES, &I, &R);
	uint8_t r[3][CRYPT_SEALED_MAX(8)], back[CRYPT_SEALED_MAX(8)];
	size_t len = 0;
	for (int i = 0; i < 3; i++)
		len = seal(I, "record!", 8, r[i]);
	size_t blen = seal(R, "record!", 8, back);
	uint8_t plain[16];
	size_t pl;
	/* In order: fine.  Skipping one: refused. */
	assert_int_equal(feed_chunked(R, r[0], len, 100, plain, &pl), 0);
	assert_int_equal(pl, 8);
	assert_int_equal(feed_chunked(R, r[2], len, 100, plain, &pl), -EBADMSG);
	crypt_free(R);
	crypt_free(I);

	pair(M_AES, &I, &R);
	for (int i = 0; i < 3; i++)
		len = seal(I, "record!", 8, r[i]);
	assert_int_equal(feed_chunked(R, r[0], len, 100, plain, &pl), 0);
	assert_int_equal(feed_chunked(R, r[0], len, 100, plain, &pl), -EBADMSG); /* replayed */
	crypt_free(R);
	crypt_free(I);

	/* Reflected: the responder's own record, sent back to it. */
	pair(M_AES, &I, &R);
	blen = seal(R, "record!", 8, back);
	assert_int_equal(feed_chunked(R, back, blen, 100, plain, &pl), -EBADMSG);
	crypt_free(R);
	crypt_free(I);

	/* A record of another session with the same swarm: other keys. */
	struct crypt *I2 = NULL, *R2 = NULL;
	pair(M_AES, &I, &R);
	pair(M_AES, &I2, &R2);
	len = seal(I2, "record!", 8, r[0]);
	assert_int_equal(feed_chunked(R, r[0], len, 100, plain, &pl), -EBADMSG);
	crypt_free(R);
	crypt_free(I);
	crypt_free(R2);
	crypt_free(I2);
}

/* The nonce is a 64-bit record counter: record 2^64 - 1 is the last one
 * either way, and nothing is ever sealed or opened after it. */
static void test_aes_nonce_limit(void **state)
{
	(void)state;
	NEED_AES();
	struct crypt *I = NULL, *R = NULL;
	uint8_t rec[CRYPT_SEALED_MAX(4)], plain[8];
	size_t len, pl;
	pair(M_AES, &I, &R);
	/* Confirmations used record 0; data starts at 1. */
	assert_int_equal(crypt_skip_records(I, UINT64_MAX, 0), -EOVERFLOW);
	assert_int_equal(crypt_skip_records(I, UINT64_MAX - 1, 0), 0);
	len = seal(I, "last", 4, rec);
	/* Record 2^64 - 1 does not open as record 1: the counter is the nonce. */
	assert_int_equal(feed_chunked(R, rec, len, 100, plain, &pl), -EBADMSG);
	/* The sender has no nonce left. */
	size_t rl = 99;
	assert_int_equal(crypt_seal(I, (const uint8_t *)"more", 4, rec, &rl), -EOVERFLOW);
	assert_int_equal(rl, 0);
	assert_int_equal(crypt_seal(I, (const uint8_t *)"", 0, rec, &rl), -EOVERFLOW);
	assert_int_equal(crypt_skip_records(I, 1, 0), -EOVERFLOW);
	crypt_free(R);
	crypt_free(I);

	/* Both counters moved: the last record opens, nothing after it. */
	pair(M_AES, &I, &R);
	assert_int_equal(crypt_skip_records(I, UINT64_MAX - 2, 0), 0);
	assert_int_equal(crypt_skip_records(R, 0, UINT64_MAX - 2), 0);
	uint8_t r1[CRYPT_SEALED_MAX(4)];
	size_t l1 = seal(I, "next", 4, r1);
	len = seal(I, "last", 4, rec);
	assert_int_equal(feed_chunked(R, r1, l1, 100, plain, &pl), 0);
	assert_int_equal(feed_chunked(R, rec, len, 100, plain, &pl), 0);
	assert_int_equal(pl, 4);
	assert_memory_equal(plain, "last", 4);
	assert_int_equal(crypt_finish(R), 0);
	assert_int_equal(feed_chunked(R, rec, len, 100, plain, &pl), -EOVERFLOW);
	crypt_free(R);
	crypt_free(I);

	/* The hook is for AES-GCM sessions only, once established. */
	pair(M_LEGACY, &I, &R);
	assert_int_equal(crypt_skip_records(I, 1, 1), -EINVAL);
	crypt_free(R);
	crypt_free(I);
	uint8_t hash[32] = { 3 };
	assert_int_equal(crypt_new_initiator(&I, hash, CRYPT_CIPHERS_AUTO, NULL), 0);
	assert_int_equal(crypt_skip_records(I, 1, 1), -ENOTCONN);
	crypt_free(I);
}

/* Replaying a recorded hello (and what followed it) to a responder gives
 * the replayer nothing: the responder picks a fresh key, the old finish no
 * longer authenticates, and the old records cannot be injected. */
static void test_replay(void **state)
{
	(void)state;
	for (size_t m = 0; m < modes_here(); m++) {
		struct transcript t;
		make_transcript(&t, (enum mode)m);
		struct crypt *R = NULL;
		assert_int_equal(crypt_new_responder(&R, (const uint8_t(*)[32])t.hash, 1, NULL, NULL,
						     mode_resp((enum mode)m), NULL), 0);
		assert_int_equal(feed_chunked(R, t.hello, sizeof t.hello, 100, NULL, NULL), 0);
		uint8_t reply[CRYPT_REPLY_XCHACHA_LEN];
		assert_int_equal(take_output(R, reply), t.reply_len);
		assert_memory_not_equal(reply, t.reply, 32); /* a fresh responder key */
		assert_int_equal(feed_chunked(R, t.finish, t.finish_len, 100, NULL, NULL), -EBADMSG);
		assert_false(crypt_established(R));
		crypt_free(R);

		/* A replayed reply is refused by a new initiator of the same swarm. */
		struct crypt *I = NULL;
		assert_int_equal(crypt_new_initiator(&I, t.hash, mode_init((enum mode)m), NULL), 0);
		crypt_output_done(I);
		assert_int_equal(feed_chunked(I, t.reply, t.reply_len, 100, NULL, NULL), -EBADMSG);
		assert_false(crypt_established(I));
		crypt_free(I);
	}
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	print_message("AES-256-GCM on this CPU: %s\n", crypt_aes256gcm_available() ? "yes" : "no");
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vectors),
		cmocka_unit_test(test_vectors_aes),
		cmocka_unit_test(test_classify),
		cmocka_unit_test(test_round_trip_whole),
		cmocka_unit_test(test_round_trip_bytewise),
		cmocka_unit_test(test_cipher_choice),
		cmocka_unit_test(test_tamper_responder_side),
		cmocka_unit_test(test_tamper_initiator_side),
		cmocka_unit_test(test_downgrade),
		cmocka_unit_test(test_reserved_flags),
		cmocka_unit_test(test_wrong_hash),
		cmocka_unit_test(test_bad_preamble),
		cmocka_unit_test(test_truncation),
		cmocka_unit_test(test_record_limits),
		cmocka_unit_test(test_confirm_length),
		cmocka_unit_test(test_aes_order),
		cmocka_unit_test(test_aes_nonce_limit),
		cmocka_unit_test(test_replay),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
