/* aead_speed.c: seal and open throughput of the shoal transport's two record ciphers, one core.
 *
 * Runs the real record layer (transfer/crypt.h: crypt_seal, crypt_feed),
 * not bare libsodium calls, between two in-memory ends: for each cipher it
 * seals --mib MiB in records of --record plaintext bytes (default 65536,
 * CRYPT_MAX_PLAIN, what shoal sends when it has data queued) and opens them
 * again, timing the two apart.  Prints one JSON line:
 *
 *   {"bench": "aead_speed", "record_bytes": 65536, "mib": 256,
 *    "aes256gcm_available": true, "aes256gcm_backend": "openssl",
 *    "ciphers": {"xchacha20poly1305": {"seal_mbps": ..., "open_mbps": ...},
 *                "aes256gcm": {...} or null}}
 *
 * aes256gcm_backend names the library that sealed and opened the AES-256-GCM
 * records: "openssl" (EVP, the default build) or "libsodium" (a build with
 * ./configure --without-openssl).  XChaCha20-Poly1305 is always libsodium.
 * MB = 10^6 bytes of plaintext.  Built on demand: make bench/aead_speed.
 * Exit 0, or 2 on bad usage, 1 if a record fails to open (a bug). */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "transfer/crypt.h"

#define BATCH 64 /* records sealed, then opened, per round */

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Hand one side's handshake output to the other. */
static int pass(struct crypt *from, struct crypt *to, uint8_t *scratch)
{
	size_t n = 0;
	const uint8_t *o = crypt_output(from, &n);
	const uint8_t *p = o, *end = o + n;
	while (p < end) {
		size_t got = 0;
		if (crypt_feed(to, &p, end, scratch, &got) < 0)
			return -1;
	}
	crypt_output_done(from);
	return 0;
}

struct result {
	double seal_mbps, open_mbps;
};

/* Measure one cipher.  0, or -1 if the pair does not agree on `want`. */
static int measure(enum crypt_ciphers ciphers, enum crypt_cipher want, size_t record,
		   uint64_t total, uint8_t *wire, uint8_t *plain, uint8_t *scratch,
		   struct result *out)
{
	uint8_t hash[CRYPT_INFO_HASH_LEN] = { 0x5a };
	struct crypt *I = NULL, *R = NULL;
	int rc = -1;
	if (crypt_new_initiator(&I, hash, ciphers, NULL) != 0 ||
	    crypt_new_responder(&R, (const uint8_t(*)[CRYPT_INFO_HASH_LEN])hash, 1, NULL, NULL,
				ciphers, NULL) != 0)
		goto done;
	if (pass(I, R, scratch) || pass(R, I, scratch) || pass(I, R, scratch) ||
	    !crypt_established(R) || crypt_cipher(R) != (int)want)
		goto done;
	double t_seal = 0, t_open = 0;
	uint64_t done_bytes = 0;
	size_t lens[BATCH];
	/* Round 0 is not timed: it faults the buffers in and wakes the core. */
	for (int round = 0; done_bytes < total; round++) {
		double t0 = now_s();
		size_t off = 0;
		for (int i = 0; i < BATCH; i++) {
			if (crypt_seal(I, plain, record, wire + off, &lens[i]) != 0)
				goto done;
			off += lens[i];
		}
		double t1 = now_s();
		const uint8_t *p = wire;
		for (int i = 0; i < BATCH; i++) {
			size_t got = 0;
			const uint8_t *end = p + lens[i];
			if (crypt_feed(R, &p, end, scratch, &got) != 1 || got != record)
				goto done;
		}
		if (round == 0)
			continue;
		t_open += now_s() - t1;
		t_seal += t1 - t0;
		done_bytes += (uint64_t)record * BATCH;
	}
	out->seal_mbps = (double)done_bytes / t_seal / 1e6;
	out->open_mbps = (double)done_bytes / t_open / 1e6;
	rc = 0;
done:
	crypt_free(I);
	crypt_free(R);
	return rc;
}

static void usage(FILE *f)
{
	fprintf(f, "Usage: aead_speed [--mib N] [--record BYTES]\n"
		   "  --mib N         MiB of plaintext per cipher (default 256)\n"
		   "  --record BYTES  plaintext per record, 1-%u (default %u)\n",
		CRYPT_MAX_PLAIN, CRYPT_MAX_PLAIN);
}

static int parse_num(const char *s, unsigned long lo, unsigned long hi, unsigned long *out)
{
	char *end = NULL;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (!*s || *end || errno || s[0] == '-' || v < lo || v > hi)
		return -1;
	*out = v;
	return 0;
}

int main(int argc, char **argv)
{
	unsigned long mib = 256, record = CRYPT_MAX_PLAIN;
	for (int i = 1; i < argc; i += 2) {
		if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
			usage(stdout);
			return 0;
		}
		unsigned long *dst = strcmp(argv[i], "--mib") == 0      ? &mib
				     : strcmp(argv[i], "--record") == 0 ? &record
									: NULL;
		unsigned long hi = dst == &mib ? 1u << 20 : CRYPT_MAX_PLAIN;
		if (!dst || i + 1 >= argc || parse_num(argv[i + 1], 1, hi, dst) != 0) {
			fprintf(stderr, "aead_speed: bad argument '%s'\n", argv[i]);
			usage(stderr);
			return 2;
		}
	}
	uint8_t *wire = malloc(BATCH * CRYPT_SEALED_MAX(CRYPT_MAX_PLAIN));
	uint8_t *plain = malloc(CRYPT_MAX_PLAIN), *scratch = malloc(CRYPT_MAX_PLAIN);
	if (!wire || !plain || !scratch) {
		fprintf(stderr, "aead_speed: out of memory\n");
		return 1;
	}
	for (size_t i = 0; i < CRYPT_MAX_PLAIN; i++)
		plain[i] = (uint8_t)(i * 131 + 7);
	uint64_t total = (uint64_t)mib << 20;
	bool aes = crypt_aes256gcm_available();
	struct result x = { 0 }, a = { 0 };
	int rc = measure(CRYPT_CIPHERS_XCHACHA_ONLY, CRYPT_CIPHER_XCHACHA20POLY1305, record, total,
			 wire, plain, scratch, &x);
	if (rc == 0 && aes)
		rc = measure(CRYPT_CIPHERS_AUTO, CRYPT_CIPHER_AES256GCM, record, total, wire, plain,
			     scratch, &a);
	free(wire);
	free(plain);
	free(scratch);
	if (rc != 0) {
		fprintf(stderr, "aead_speed: a record failed to seal or open\n");
		return 1;
	}
	printf("{\"bench\": \"aead_speed\", \"record_bytes\": %lu, \"mib\": %lu, "
	       "\"aes256gcm_available\": %s, \"aes256gcm_backend\": \"%s\", "
	       "\"ciphers\": {\"xchacha20poly1305\": "
	       "{\"seal_mbps\": %.1f, \"open_mbps\": %.1f}, \"aes256gcm\": ",
	       record, mib, aes ? "true" : "false", crypt_aes256gcm_backend(), x.seal_mbps,
	       x.open_mbps);
	if (aes)
		printf("{\"seal_mbps\": %.1f, \"open_mbps\": %.1f}}}\n", a.seal_mbps, a.open_mbps);
	else
		printf("null}}\n");
	return 0;
}
