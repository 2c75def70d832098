/* sha256.h: the one SHA-256 wrapper.  OpenSSL libcrypto (EVP, which uses the
 * CPU's SHA extensions) by default; libsodium with ./configure --without-openssl. */
#ifndef SHOAL_COMMON_SHA256_H
#define SHOAL_COMMON_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define SHA256_LEN 32

/* A reusable hashing context.  Keep one per thread on hot paths: creating it
 * costs far more than hashing a 64-byte merkle node. */
struct sha256_ctx;

/* Returns a new context, or NULL when out of memory. */
struct sha256_ctx *sha256_new(void);
void sha256_free(struct sha256_ctx *ctx);

/* Incremental use: begin, update any number of times, then final. */
void sha256_begin(struct sha256_ctx *ctx);
void sha256_update(struct sha256_ctx *ctx, const void *p, size_t n);
void sha256_final(struct sha256_ctx *ctx, uint8_t out[SHA256_LEN]);

/* One-shot digest of one buffer, reusing `ctx`. */
void sha256_once(struct sha256_ctx *ctx, const void *p, size_t n, uint8_t out[SHA256_LEN]);

/* One-shot digest without a context (slower; for cold paths).
 * Returns 0 or -ENOMEM. */
int sha256_digest(const void *p, size_t n, uint8_t out[SHA256_LEN])
	__attribute__((warn_unused_result));

/* Which implementation was compiled in: "openssl" or "libsodium". */
const char *sha256_backend(void);

#endif
