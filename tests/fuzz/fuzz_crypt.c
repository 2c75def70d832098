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

/* Drive both ends to an established session (all in memory). */
static void pair(struct crypt **I, struct crypt **R)
{
	uint8_t hash[32];
	struct crypt_det di, dr;
	vec_inputs(hash, &di, &dr);
	CHECK(crypt_new_initiator(I, hash, &di) == 0);
	CHECK(crypt_new_responder(R, (const uint8_t(*)[32])hash, 1, NULL, NULL, &dr) == 0);
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
}

/* Input: byte 0 = mode, byte 1 = chunk size (0 = all at once), then data.
 *   mode 0: bytes sent to a responder (hello, finish, records)
 *   mode 1: bytes sent to an initiator after its hello (reply, records)
 *   mode 2: records sent to an established responder
 *   mode 3: plaintext sealed in pieces and opened again (must round-trip) */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	unsigned mode = data[0] % 4;
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
		CHECK(crypt_new_responder(&R, (const uint8_t(*)[32])hashes, 2, NULL, NULL, &dr) == 0);
		int rc = feed(R, p, end, chunk);
		if (rc == 0) {
			int f = crypt_finish(R);
			CHECK(f == 0 || f == -EBADMSG);
		} else
			CHECK(crypt_finish(R) == rc);
	} else if (mode == 1) {
		CHECK(crypt_new_initiator(&I, hash, &di) == 0);
		crypt_output_done(I);
		(void)feed(I, p, end, chunk);
	} else if (mode == 2) {
		pair(&I, &R);
		(void)feed(R, p, end, chunk);
	} else {
		pair(&I, &R);
		static uint8_t rec[CRYPT_SEALED_LEN(CRYPT_MAX_PLAIN)];
		size_t piece = chunk;
		for (const uint8_t *q = p; q < end; q += piece) {
			size_t n = (size_t)(end - q) < piece ? (size_t)(end - q) : piece;
			CHECK(crypt_seal(I, q, n, rec) == 0);
			const uint8_t *r = rec;
			size_t got = 0;
			CHECK(crypt_feed(R, &r, rec + CRYPT_SEALED_LEN(n), out, &got) == 1);
			CHECK(got == n && memcmp(out, q, n) == 0);
			CHECK(r == rec + CRYPT_SEALED_LEN(n));
		}
		CHECK(crypt_finish(R) == 0);
	}
	crypt_free(I);
	crypt_free(R);
	return 0;
}
