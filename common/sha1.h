/* sha1.h: the one SHA-1 wrapper, the same face as sha256.h.  OpenSSL
 * libcrypto (EVP) by default; with ./configure --without-openssl, a small
 * portable implementation of FIPS 180-4 section 6.1 (libsodium has no SHA-1).
 * SHA-1 is used only where BitTorrent v1 requires it (v1 piece hashes and the
 * v1 info-hash of hybrid torrents), never for anything that must resist
 * collisions on its own. */
#ifndef SHOAL_COMMON_SHA1_H
#define SHOAL_COMMON_SHA1_H

#include <stddef.h>
#include <stdint.h>

#define SHA1_LEN 20

/* A reusable hashing context; keep one per thread on hot paths. */
struct sha1_ctx;

/* Returns a new context, or NULL when out of memory. */
struct sha1_ctx *sha1_new(void);
void sha1_free(struct sha1_ctx *ctx);

/* Incremental use: begin, update any number of times, then final. */
void sha1_begin(struct sha1_ctx *ctx);
void sha1_update(struct sha1_ctx *ctx, const void *p, size_t n);
void sha1_final(struct sha1_ctx *ctx, uint8_t out[SHA1_LEN]);

/* One-shot digest of one buffer, reusing `ctx`. */
void sha1_once(struct sha1_ctx *ctx, const void *p, size_t n, uint8_t out[SHA1_LEN]);

/* One-shot digest without a context.  Returns 0 or -ENOMEM. */
int sha1_digest(const void *p, size_t n, uint8_t out[SHA1_LEN])
	__attribute__((warn_unused_result));

/* Which implementation was compiled in: "openssl" or "builtin". */
const char *sha1_backend(void);

#endif
