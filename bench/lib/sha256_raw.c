/* sha256_raw: the single-core SHA-256 limit over a set of files, for
 * bench/share_throughput.py.  Built at run time into the out dir:
 *     cc -O2 -o OUT/sha256_raw bench/lib/sha256_raw.c -lcrypto
 *
 * usage: sha256_raw [-b] FILE...
 *   default: one SHA-256 per file over its whole content (like `openssl dgst`)
 *   -b:      one SHA-256 per 16 KiB block, the leaf work of a BEP 52 merkle
 *            tree (inner nodes add only 1/256 more bytes and are left out)
 * Reads with read(2) into a 1 MiB buffer, OpenSSL EVP (SHA-NI where the CPU
 * has it), one thread.  Prints one JSON line:
 *     {"bytes": N, "seconds": wall, "cpu_seconds": user+sys, "digest_xor": "hex"}
 * digest_xor keeps the compiler and the reader honest. */
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define BUF (1u << 20)
#define BLOCK 16384u

static double clock_s(clockid_t id)
{
	struct timespec ts;
	clock_gettime(id, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	int blocks = 0, first = 1;
	if (argc > 1 && strcmp(argv[1], "-b") == 0) {
		blocks = 1;
		first = 2;
	}
	if (first >= argc) {
		fprintf(stderr, "usage: sha256_raw [-b] FILE...\n");
		return 2;
	}
	unsigned char *buf = malloc(BUF);
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	if (!buf || !ctx)
		return 1;
	unsigned char acc[32] = {0}, md[32];
	unsigned int mdlen;
	unsigned long long total = 0;
	double t0 = clock_s(CLOCK_MONOTONIC), c0 = clock_s(CLOCK_PROCESS_CPUTIME_ID);
	for (int i = first; i < argc; i++) {
		int fd = open(argv[i], O_RDONLY);
		if (fd < 0) {
			perror(argv[i]);
			return 1;
		}
		if (!blocks)
			EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
		ssize_t n;
		size_t have = 0; /* -b: bytes in buf not yet hashed (a partial block) */
		while ((n = read(fd, buf + have, BUF - have)) > 0) {
			total += (unsigned long long)n;
			if (!blocks) {
				EVP_DigestUpdate(ctx, buf, (size_t)n);
				continue;
			}
			have += (size_t)n;
			size_t off = 0;
			while (have - off >= BLOCK) {
				EVP_Digest(buf + off, BLOCK, md, &mdlen, EVP_sha256(), NULL);
				for (int k = 0; k < 32; k++)
					acc[k] ^= md[k];
				off += BLOCK;
			}
			memmove(buf, buf + off, have - off);
			have -= off;
		}
		if (n < 0) {
			perror(argv[i]);
			return 1;
		}
		if (blocks && have) {
			EVP_Digest(buf, have, md, &mdlen, EVP_sha256(), NULL);
			for (int k = 0; k < 32; k++)
				acc[k] ^= md[k];
		}
		if (!blocks) {
			EVP_DigestFinal_ex(ctx, md, &mdlen);
			for (int k = 0; k < 32; k++)
				acc[k] ^= md[k];
		}
		close(fd);
	}
	double t = clock_s(CLOCK_MONOTONIC) - t0, c = clock_s(CLOCK_PROCESS_CPUTIME_ID) - c0;
	printf("{\"bytes\": %llu, \"seconds\": %.6f, \"cpu_seconds\": %.6f, \"digest_xor\": \"",
	       total, t, c);
	for (int k = 0; k < 32; k++)
		printf("%02x", acc[k]);
	printf("\"}\n");
	EVP_MD_CTX_free(ctx);
	free(buf);
	return 0;
}
