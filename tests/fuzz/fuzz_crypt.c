/* fuzz_crypt.c: fuzz harness for the shoal transport's preamble, handshake and record framing. */
#include "config.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "transfer/crypt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x)                                                                         \
	do {                                                                             \
		if (!(x))                                                                \
			abort();                                                         \
	} while (0)

static uint8_t out[CRYPT_MAX_PLAIN];

/* The fixed inputs of docs/protocol.md's test vectors, so the stored seeds
 * (recorded vector bytes) get past authentication and reach deep states. */
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

/* Feed [p, end) to c, `chunk` bytes at a time.  Returns the error or 0. */
static int feed(struct crypt *c, const uint8_t *p, const uint8_t *end, size_t chunk)
{
	while (p < end) {
		const uint8_t *stop = (size_t)(end - p) < chunk ? end : p + chunk;
		while (p < stop) {
			size_t n = 0;
			const uint8_t *before = p;
			int rc = crypt_feed(c, &p, stop, out, &n);
			CHECK(p >= before && p <= stop);
			if (rc < 0)
				return rc;
			CHECK(n <= CRYPT_MAX_PLAIN);
			CHECK(rc == 1 || n == 0);
		}
	}
	return 0;
}

/* How the two ends are set up: which ciphers each allows. */
enum pairing {
	P_LEGACY, /* the initiator offers nothing (flags 00) */
	P_AES,    /* both allow AES-256-GCM (chosen where the CPU has it) */
	P_NEGX,   /* offered, declined: negotiated XChaCha20-Poly1305 */
};

static enum crypt_ciphers init_ciphers(enum pairing p)
{
	return p == P_LEGACY ? CRYPT_CIPHERS_XCHACHA_ONLY : CRYPT_CIPHERS_AUTO;
}

/* Drive both ends to an established session (all in memory). */
static void pair(struct crypt **I, struct crypt **R, enum pairing pp)
{
	uint8_t hash[32];
	struct crypt_det di, dr;
	vec_inputs(hash, &di, &dr);
	CHECK(crypt_new_initiator(I, hash, init_ciphers(pp), &di) == 0);
	CHECK(crypt_new_responder(R, (const uint8_t(*)[32])hash, 1, NULL, NULL,
				  pp == P_NEGX ? CRYPT_CIPHERS_XCHACHA_ONLY : CRYPT_CIPHERS_AUTO,
				  &dr) == 0);
	size_t n;
	const uint8_t *o = crypt_output(*I, &n);
	CHECK(feed(*R, o, o + n, n) == 0);
	crypt_output_done(*I);
	o = crypt_output(*R, &n);
	CHECK(feed(*I, o, o + n, n) == 0);
	crypt_output_done(*R);
	o = crypt_output(*I, &n);
	CHECK(feed(*R, o, o + n, n) == 0);
	crypt_output_done(*I);
	CHECK(crypt_established(*I) && crypt_established(*R));
	int want = pp == P_AES && crypt_aes256gcm_available() ? CRYPT_CIPHER_AES256GCM
							       : CRYPT_CIPHER_XCHACHA20POLY1305;
	CHECK(crypt_cipher(*I) == want && crypt_cipher(*R) == want);
}

/* Seal [p, end) in records of `piece` bytes and open each again. */
static void round_trip(struct crypt *I, struct crypt *R, const uint8_t *p, const uint8_t *end,
		       size_t piece)
{
	static uint8_t rec[CRYPT_SEALED_MAX(CRYPT_MAX_PLAIN)];
	for (const uint8_t *q = p; q < end; q += piece) {
		size_t n = (size_t)(end - q) < piece ? (size_t)(end - q) : piece;
		size_t len = 0;
		CHECK(crypt_seal(I, q, n, rec, &len) == 0);
		CHECK(len <= CRYPT_SEALED_MAX(n));
		const uint8_t *r = rec;
		size_t got = 0;
		CHECK(crypt_feed(R, &r, rec + len, out, &got) == 1);
		CHECK(got == n && memcmp(out, q, n) == 0);
		CHECK(r == rec + len);
	}
	CHECK(crypt_finish(R) == 0);
}

/* Input: byte 0 = mode, byte 1 = chunk size (0 = all at once), then data.
 *   mode 0: bytes sent to a responder that allows AES-256-GCM (hello,
 *           finish, records: the hello's flags pick the path)
 *   mode 1: bytes sent to an initiator that offered nothing, after its hello
 *   mode 2: records sent to an established legacy (flags 00) responder
 *   mode 3: plaintext sealed in pieces and opened again (must round-trip)
 *   mode 4: bytes sent to an initiator that offered AES-256-GCM (reply
 *           with a cipher byte, records)
 *   mode 5: records sent to an established AES-256-GCM responder
 *   mode 6: as 3 over AES-256-GCM
 *   mode 7: records sent to an established negotiated-XChaCha responder
 * Without AES-NI, modes 4-7 run the XChaCha20-Poly1305 fallback. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	unsigned mode = data[0] % 8;
	size_t chunk = data[1] ? data[1] : (size > 2 ? size - 2 : 1);
	const uint8_t *p = data + 2, *end = data + size;
	(void)crypt_classify(p, (size_t)(end - p));

	uint8_t hash[32], other[32];
	struct crypt_det di, dr;
	vec_inputs(hash, &di, &dr);
	memset(other, 0xee, sizeof other);
	struct crypt *I = NULL, *R = NULL;

	if (mode == 0) {
		uint8_t hashes[2][32];
		memcpy(hashes[0], other, 32);
		memcpy(hashes[1], hash, 32);
		CHECK(crypt_new_responder(&R, (const uint8_t(*)[32])hashes, 2, NULL, NULL,
					  CRYPT_CIPHERS_AUTO, &dr) == 0);
		int rc = feed(R, p, end, chunk);
		if (rc == 0) {
			int f = crypt_finish(R);
			CHECK(f == 0 || f == -EBADMSG);
		} else
			CHECK(crypt_finish(R) == rc);
	} else if (mode == 1 || mode == 4) {
		CHECK(crypt_new_initiator(&I, hash,
					  mode == 1 ? CRYPT_CIPHERS_XCHACHA_ONLY : CRYPT_CIPHERS_AUTO,
					  &di) == 0);
		crypt_output_done(I);
		int rc = feed(I, p, end, chunk);
		if (rc == 0 && !crypt_established(I))
			CHECK(crypt_finish(I) == -EBADMSG);
	} else if (mode == 2 || mode == 5 || mode == 7) {
		pair(&I, &R, mode == 2 ? P_LEGACY : mode == 5 ? P_AES : P_NEGX);
		(void)feed(R, p, end, chunk);
	} else {
		pair(&I, &R, mode == 3 ? P_LEGACY : P_AES);
		round_trip(I, R, p, end, chunk);
	}
	crypt_free(I);
	crypt_free(R);
	return 0;
}
