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

static uint8_t scratch[CRYPT_MAX_PLAIN];

static void vec_inputs(uint8_t hash[32], struct crypt_det *di, struct crypt_det *dr)
{
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

/* Run the handshake between I and R, delivering `chunk` bytes at a time. */
static void handshake(struct crypt *I, struct crypt *R, size_t chunk)
{
	uint8_t buf[128];
	size_t n = take_output(I, buf);
	assert_int_equal(n, CRYPT_HELLO_LEN);
	assert_int_equal(feed_chunked(R, buf, n, chunk, NULL, NULL), 0);
	assert_false(crypt_established(R));
	n = take_output(R, buf);
	assert_int_equal(n, CRYPT_REPLY_LEN);
	assert_int_equal(feed_chunked(I, buf, n, chunk, NULL, NULL), 0);
	assert_true(crypt_established(I));
	n = take_output(I, buf);
	assert_int_equal(n, CRYPT_FINISH_LEN);
	assert_int_equal(feed_chunked(R, buf, n, chunk, NULL, NULL), 0);
	assert_true(crypt_established(R));
	size_t none;
	assert_null(crypt_output(R, &none));
	assert_int_equal(none, 0);
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

	struct crypt *I = NULL, *R = NULL;
	assert_int_equal(crypt_new_initiator(&I, hash, &di), 0);
	assert_int_equal(crypt_new_responder(&R, (const uint8_t(*)[32])hash, 1, NULL, NULL, &dr), 0);
	assert_null(crypt_info_hash(R));

	uint8_t buf[128];
	size_t n = take_output(I, buf);
	assert_hex(buf, n, VEC_HELLO);
	assert_true(crypt_hello_matches(buf, hash));
	assert_int_equal(feed_chunked(R, buf, n, n, NULL, NULL), 0);
	assert_memory_equal(crypt_info_hash(R), hash, 32);
	n = take_output(R, buf);
	assert_hex(buf, n, VEC_REPLY);
	assert_int_equal(feed_chunked(I, buf, n, n, NULL, NULL), 0);
	n = take_output(I, buf);
	assert_hex(buf, n, VEC_FINISH);
	assert_int_equal(feed_chunked(R, buf, n, n, NULL, NULL), 0);
	assert_true(crypt_established(R));

	uint8_t a[32], b[32];
	assert_int_equal(crypt_session_keys(I, a, b), 0);
	assert_hex(a, 32, VEC_K_I2R);
	assert_hex(b, 32, VEC_K_R2I);
	assert_int_equal(crypt_session_keys(R, a, b), 0);
	assert_hex(a, 32, VEC_K_I2R);
	assert_hex(b, 32, VEC_K_R2I);

	uint8_t rec[64];
	assert_int_equal(crypt_seal(I, (const uint8_t *)VEC_MSG, strlen(VEC_MSG), rec), 0);
	assert_hex(rec, CRYPT_SEALED_LEN(strlen(VEC_MSG)), VEC_RECORD);
	uint8_t plain[64];
	size_t pl = 0;
	assert_int_equal(feed_chunked(R, rec, CRYPT_SEALED_LEN(strlen(VEC_MSG)), 1, plain, &pl), 0);
	assert_int_equal(pl, strlen(VEC_MSG));
	assert_memory_equal(plain, VEC_MSG, pl);
	assert_int_equal(crypt_finish(R), 0);
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

/* Round trip with random keys both ways, `chunk` bytes at a time. */
static void round_trip(size_t chunk, bool det_responder)
{
	uint8_t hash[32], other[32];
	randombytes_buf(hash, sizeof hash);
	randombytes_buf(other, sizeof other);
	uint8_t list[2][32];
	memcpy(list[0], other, 32);
	memcpy(list[1], hash, 32);
	struct crypt_det dr;
	memset(&dr, 0x5a, sizeof dr);

	struct crypt *I = NULL, *R = NULL;
	assert_int_equal(crypt_new_initiator(&I, hash, NULL), 0);
	assert_int_equal(crypt_new_responder(&R, (const uint8_t(*)[32])list, 2, NULL, NULL, det_responder ? &dr : NULL), 0);
	handshake(I, R, chunk);
	assert_memory_equal(crypt_info_hash(R), hash, 32);

	/* Several records of assorted sizes including the maximum, each way. */
	static const size_t sizes[] = { 0, 1, 68, 16397, CRYPT_MAX_PLAIN, 3 };
	size_t total = 0;
	for (size_t i = 0; i < ARRAY_LEN(sizes); i++)
		total += CRYPT_SEALED_LEN(sizes[i]);
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
			assert_int_equal(crypt_seal(tx, msg, sizes[i], wire + off), 0);
			off += CRYPT_SEALED_LEN(sizes[i]);
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
	crypt_free(I);
	crypt_free(R);
}

static void test_round_trip_whole(void **state)
{
	(void)state;
	round_trip(1u << 20, false);
}

static void test_round_trip_bytewise(void **state)
{
	(void)state;
	round_trip(1, false);
	round_trip(7, true); /* a deterministic side interoperates with a random one */
}

/* A full transcript: hello, reply, finish and two records each way. */
struct transcript {
	uint8_t hash[32];
	uint8_t hello[CRYPT_HELLO_LEN], reply[CRYPT_REPLY_LEN], finish[CRYPT_FINISH_LEN];
	uint8_t i2r[2][CRYPT_SEALED_LEN(40)];
};

static void make_transcript(struct transcript *t)
{
	struct crypt_det di, dr;
	vec_inputs(t->hash, &di, &dr);
	struct crypt *I = NULL, *R = NULL;
	assert_int_equal(crypt_new_initiator(&I, t->hash, &di), 0);
	assert_int_equal(crypt_new_responder(&R, (const uint8_t(*)[32])t->hash, 1, NULL, NULL, &dr), 0);
	take_output(I, t->hello);
	assert_int_equal(feed_chunked(R, t->hello, sizeof t->hello, 1000, NULL, NULL), 0);
	take_output(R, t->reply);
	assert_int_equal(feed_chunked(I, t->reply, sizeof t->reply, 1000, NULL, NULL), 0);
	take_output(I, t->finish);
	uint8_t m[40];
	memset(m, 'x', sizeof m);
	assert_int_equal(crypt_seal(I, m, sizeof m, t->i2r[0]), 0);
	assert_int_equal(crypt_seal(I, m, sizeof m, t->i2r[1]), 0);
	crypt_free(I);
	crypt_free(R);
}

/* Flip every bit of what the initiator sends: the responder must fail
 * (at once, or at EOF for a length that now asks for more bytes). */
static void test_tamper_responder_side(void **state)
{
	(void)state;
	struct transcript t;
	make_transcript(&t);
	uint8_t stream[sizeof t.hello + sizeof t.finish + sizeof t.i2r];
	size_t n = 0;
	memcpy(stream + n, t.hello, sizeof t.hello);
	n += sizeof t.hello;
	memcpy(stream + n, t.finish, sizeof t.finish);
	n += sizeof t.finish;
	memcpy(stream + n, t.i2r, sizeof t.i2r);
	n += sizeof t.i2r;
	struct crypt_det dr;
	uint8_t h[32];
	struct crypt_det di;
	vec_inputs(h, &di, &dr);

	/* Untampered, the stream is accepted (sanity for the loop below). */
	struct crypt *R = NULL;
	assert_int_equal(crypt_new_responder(&R, (const uint8_t(*)[32])t.hash, 1, NULL, NULL, &dr), 0);
	size_t pl = 0;
	uint8_t plain[128];
	assert_int_equal(feed_chunked(R, stream, n, 1000, plain, &pl), 0);
	assert_int_equal(pl, 80);
	assert_int_equal(crypt_finish(R), 0);
	crypt_free(R);

	for (size_t bit = 0; bit < n * 8; bit++) {
		stream[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		assert_int_equal(crypt_new_responder(&R, (const uint8_t(*)[32])t.hash, 1, NULL, NULL, &dr), 0);
		int rc = feed_chunked(R, stream, n, 1000, plain, &pl);
		if (rc == 0)
			rc = crypt_finish(R);
		if (rc >= 0)
			fail_msg("bit %zu flipped went unnoticed", bit);
		crypt_free(R);
		stream[bit / 8] ^= (uint8_t)(1u << (bit % 8));
	}
}

/* Flip every bit of the reply: the initiator must fail. */
static void test_tamper_initiator_side(void **state)
{
	(void)state;
	struct transcript t;
	make_transcript(&t);
	uint8_t h[32];
	struct crypt_det di, dr;
	vec_inputs(h, &di, &dr);
	for (size_t bit = 0; bit < sizeof t.reply * 8; bit++) {
		t.reply[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		struct crypt *I = NULL;
		assert_int_equal(crypt_new_initiator(&I, t.hash, &di), 0);
		crypt_output_done(I);
		int rc = feed_chunked(I, t.reply, sizeof t.reply, 1000, NULL, NULL);
		if (rc == 0)
			rc = crypt_finish(I);
		if (rc >= 0)
			fail_msg("reply bit %zu flipped went unnoticed", bit);
		assert_false(crypt_established(I));
		crypt_free(I);
		t.reply[bit / 8] ^= (uint8_t)(1u << (bit % 8));
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
	assert_int_equal(crypt_new_initiator(&I, hash, &di), 0);
	take_output(I, hello);

	/* Someone who knows only the DHT's 20-byte key: same prefix, wrong tail. */
	uint8_t trunc[2][32];
	memcpy(trunc[0], hash, 20);
	memset(trunc[0] + 20, 0, 12);
	memcpy(trunc[1], hash, 32);
	trunc[1][31] ^= 0x80;
	assert_false(crypt_hello_matches(hello, trunc[0]));
	assert_false(crypt_hello_matches(hello, trunc[1]));
	assert_int_equal(crypt_new_responder(&R, (const uint8_t(*)[32])trunc, 2, NULL, NULL, NULL), 0);
	assert_int_equal(feed_chunked(R, hello, sizeof hello, 3, NULL, NULL), -ENOENT);
	assert_null(crypt_info_hash(R));
	size_t n;
	assert_null(crypt_output(R, &n)); /* nothing is ever sent back */
	/* Errors are sticky. */
	const uint8_t *p = hello, *end = hello + 1;
	size_t got;
	assert_int_equal(crypt_feed(R, &p, end, scratch, &got), -ENOENT);
	crypt_free(R);

	/* Lookup callbacks: none found; a liar is verified; a scan finds it. */
	int calls = 0;
	assert_int_equal(crypt_new_responder(&R, NULL, 0, lookup_none, &calls, NULL), 0);
	assert_int_equal(feed_chunked(R, hello, sizeof hello, 100, NULL, NULL), -ENOENT);
	assert_int_equal(calls, 1);
	crypt_free(R);
	assert_int_equal(crypt_new_responder(&R, NULL, 0, lookup_liar, trunc[0], NULL), 0);
	assert_int_equal(feed_chunked(R, hello, sizeof hello, 100, NULL, NULL), -ENOENT);
	crypt_free(R);
	uint8_t list[3][32];
	memcpy(list[0], trunc[0], 32);
	memcpy(list[1], trunc[1], 32);
	memcpy(list[2], hash, 32);
	struct lookup_list l = { (const uint8_t(*)[32])list, 3 };
	assert_int_equal(crypt_new_responder(&R, NULL, 0, lookup_scan, &l, NULL), 0);
	assert_int_equal(feed_chunked(R, hello, sizeof hello, 100, NULL, NULL), 0);
	assert_memory_equal(crypt_info_hash(R), hash, 32);
	crypt_free(R);
	assert_int_equal(crypt_new_responder(&R, NULL, 0, NULL, NULL, NULL), -EINVAL);

	/* An initiator that pads the 20-byte key cannot talk to the real swarm. */
	struct crypt *I2 = NULL;
	assert_int_equal(crypt_new_initiator(&I2, trunc[0], NULL), 0);
	take_output(I2, hello);
	assert_int_equal(crypt_new_responder(&R, (const uint8_t(*)[32])hash, 1, NULL, NULL, NULL), 0);
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
	assert_int_equal(crypt_new_responder(&R, (const uint8_t(*)[32])hash, 1, NULL, NULL, NULL), 0);
	assert_int_equal(feed_chunked(R, plain, 1, 1, NULL, NULL), -EPROTO); /* first byte */
	crypt_free(R);
	uint8_t hello[CRYPT_HELLO_LEN];
	struct crypt *I = NULL;
	assert_int_equal(crypt_new_initiator(&I, hash, NULL), 0);
	take_output(I, hello);
	crypt_free(I);
	hello[6] = 2;
	assert_int_equal(crypt_new_responder(&R, (const uint8_t(*)[32])hash, 1, NULL, NULL, NULL), 0);
	assert_int_equal(feed_chunked(R, hello, 7, 1, NULL, NULL), -EPROTONOSUPPORT);
	crypt_free(R);
	hello[6] = 1;
	hello[7] = 0x80; /* reserved flags */
	assert_int_equal(crypt_new_responder(&R, (const uint8_t(*)[32])hash, 1, NULL, NULL, NULL), 0);
	assert_int_equal(feed_chunked(R, hello, sizeof hello, 100, NULL, NULL), -EPROTO);
	crypt_free(R);

	/* A low-order public key with a valid tag yields no shared secret. */
	hello[7] = 0;
	memset(hello + 8, 0, 32);
	crypto_generichash_blake2b_salt_personal(hello + 40, 32, hello, 40, hash, 32, NULL,
						 (const uint8_t *)"shoal-v1-hello\0");
	assert_true(crypt_hello_matches(hello, hash));
	assert_int_equal(crypt_new_responder(&R, (const uint8_t(*)[32])hash, 1, NULL, NULL, NULL), 0);
	assert_int_equal(feed_chunked(R, hello, sizeof hello, 100, NULL, NULL), -EBADMSG);
	crypt_free(R);
}

static void test_truncation(void **state)
{
	(void)state;
	struct transcript t;
	make_transcript(&t);
	uint8_t h[32];
	struct crypt_det di, dr;
	vec_inputs(h, &di, &dr);
	uint8_t stream[sizeof t.hello + sizeof t.finish + sizeof t.i2r[0]];
	memcpy(stream, t.hello, sizeof t.hello);
	memcpy(stream + sizeof t.hello, t.finish, sizeof t.finish);
	memcpy(stream + sizeof t.hello + sizeof t.finish, t.i2r[0], sizeof t.i2r[0]);
	for (size_t cut = 0; cut < sizeof stream; cut++) {
		struct crypt *R = NULL;
		assert_int_equal(crypt_new_responder(&R, (const uint8_t(*)[32])t.hash, 1, NULL, NULL, &dr), 0);
		assert_int_equal(feed_chunked(R, stream, cut, 5, NULL, NULL), 0);
		/* Only a cut between whole records reads as a clean end. */
		bool boundary = cut == sizeof t.hello + sizeof t.finish;
		assert_int_equal(crypt_finish(R), boundary ? 0 : -EBADMSG);
		crypt_free(R);
	}
	struct crypt *R = NULL;
	assert_int_equal(crypt_new_responder(&R, (const uint8_t(*)[32])t.hash, 1, NULL, NULL, &dr), 0);
	assert_int_equal(feed_chunked(R, stream, sizeof stream, 5, NULL, NULL), 0);
	assert_int_equal(crypt_finish(R), 0);
	crypt_free(R);
}

static void test_record_limits(void **state)
{
	(void)state;
	uint8_t hash[32] = { 9 };
	struct crypt *I = NULL, *R = NULL;
	assert_int_equal(crypt_new_initiator(&I, hash, NULL), 0);
	assert_int_equal(crypt_new_responder(&R, (const uint8_t(*)[32])hash, 1, NULL, NULL, NULL), 0);
	uint8_t rec[64];
	/* Not before the handshake is done. */
	assert_int_equal(crypt_seal(I, (const uint8_t *)"x", 1, rec), -ENOTCONN);
	uint8_t buf[128];
	size_t n = take_output(I, buf);
	assert_int_equal(feed_chunked(R, buf, n, n, NULL, NULL), 0);
	assert_int_equal(crypt_seal(R, (const uint8_t *)"x", 1, rec), -ENOTCONN);
	n = take_output(R, buf);
	assert_int_equal(feed_chunked(I, buf, n, n, NULL, NULL), 0);
	/* Established, but the finish is not yet handed over. */
	assert_true(crypt_established(I));
	assert_int_equal(crypt_seal(I, (const uint8_t *)"x", 1, rec), -ENOTCONN);
	n = take_output(I, buf);
	assert_int_equal(feed_chunked(R, buf, n, n, NULL, NULL), 0);
	assert_int_equal(crypt_seal(I, scratch, CRYPT_MAX_PLAIN + 1, rec), -EMSGSIZE);

	/* A length prefix over the maximum fails before any body arrives. */
	uint8_t big[4] = { 0, 1, 0, 0x12 }; /* 65554 = 17 + 65537 */
	const uint8_t *p = big;
	size_t got;
	assert_int_equal(crypt_feed(R, &p, big + 4, scratch, &got), -EMSGSIZE);
	crypt_free(R);
	crypt_free(I);

	/* And one under the minimum (a record can never be shorter than its MAC). */
	assert_int_equal(crypt_new_initiator(&I, hash, NULL), 0);
	assert_int_equal(crypt_new_responder(&R, (const uint8_t(*)[32])hash, 1, NULL, NULL, NULL), 0);
	handshake(I, R, 1000);
	uint8_t small[4] = { 0, 0, 0, 16 };
	p = small;
	assert_int_equal(crypt_feed(I, &p, small + 4, scratch, &got), -EMSGSIZE);
	assert_int_equal(crypt_seal(I, scratch, 1, rec), -ENOTCONN); /* failed for good */
	crypt_free(R);
	crypt_free(I);

	/* The largest legal record goes through. */
	assert_int_equal(crypt_new_initiator(&I, hash, NULL), 0);
	assert_int_equal(crypt_new_responder(&R, (const uint8_t(*)[32])hash, 1, NULL, NULL, NULL), 0);
	handshake(I, R, 1000);
	uint8_t *max = malloc(CRYPT_SEALED_LEN(CRYPT_MAX_PLAIN));
	assert_non_null(max);
	memset(scratch, 0xab, CRYPT_MAX_PLAIN);
	assert_int_equal(crypt_seal(I, scratch, CRYPT_MAX_PLAIN, max), 0);
	p = max;
	assert_int_equal(crypt_feed(R, &p, max + CRYPT_SEALED_LEN(CRYPT_MAX_PLAIN), scratch, &got), 1);
	assert_int_equal(got, CRYPT_MAX_PLAIN);
	assert_int_equal(scratch[CRYPT_MAX_PLAIN - 1], 0xab);
	/* Reordering or replaying a record fails authentication. */
	p = max;
	assert_int_equal(crypt_feed(R, &p, max + CRYPT_SEALED_LEN(CRYPT_MAX_PLAIN), scratch, &got),
			 -EBADMSG);
	free(max);
	crypt_free(R);
	crypt_free(I);
}

/* Replaying a recorded hello (and what followed it) to a responder gives
 * the replayer nothing: the responder picks a fresh key, the old finish no
 * longer authenticates, and the old records cannot be injected. */
static void test_replay(void **state)
{
	(void)state;
	struct transcript t;
	make_transcript(&t);
	struct crypt *R = NULL;
	assert_int_equal(crypt_new_responder(&R, (const uint8_t(*)[32])t.hash, 1, NULL, NULL, NULL), 0);
	assert_int_equal(feed_chunked(R, t.hello, sizeof t.hello, 100, NULL, NULL), 0);
	uint8_t reply[CRYPT_REPLY_LEN];
	take_output(R, reply);
	assert_memory_not_equal(reply, t.reply, 32); /* a fresh responder key */
	assert_int_equal(feed_chunked(R, t.finish, sizeof t.finish, 100, NULL, NULL), -EBADMSG);
	assert_false(crypt_established(R));
	crypt_free(R);

	/* A replayed reply is refused by a new initiator of the same swarm. */
	struct crypt *I = NULL;
	assert_int_equal(crypt_new_initiator(&I, t.hash, NULL), 0);
	crypt_output_done(I);
	assert_int_equal(feed_chunked(I, t.reply, sizeof t.reply, 100, NULL, NULL), -EBADMSG);
	assert_false(crypt_established(I));
	crypt_free(I);
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vectors),
		cmocka_unit_test(test_classify),
		cmocka_unit_test(test_round_trip_whole),
		cmocka_unit_test(test_round_trip_bytewise),
		cmocka_unit_test(test_tamper_responder_side),
		cmocka_unit_test(test_tamper_initiator_side),
		cmocka_unit_test(test_wrong_hash),
		cmocka_unit_test(test_bad_preamble),
		cmocka_unit_test(test_truncation),
		cmocka_unit_test(test_record_limits),
		cmocka_unit_test(test_replay),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
