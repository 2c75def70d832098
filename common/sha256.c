/* sha256.c: SHA-256 through OpenSSL EVP or libsodium (see sha256.h). */
#include "config.h"

#include "common/sha256.h"

#include <errno.h>
#include <stdlib.h>

#ifdef SHOAL_HAVE_OPENSSL
#include <openssl/evp.h>

struct sha256_ctx {
	EVP_MD_CTX *md_ctx;
	EVP_MD *md; /* fetched once: implicit fetching on every init is slow in OpenSSL 3 */
};

struct sha256_ctx *sha256_new(void)
{
	struct sha256_ctx *ctx = calloc(1, sizeof *ctx);
	if (!ctx)
		return NULL;
	ctx->md_ctx = EVP_MD_CTX_new();
	ctx->md = EVP_MD_fetch(NULL, "SHA256", NULL);
	if (!ctx->md_ctx || !ctx->md) {
		sha256_free(ctx);
		return NULL;
	}
	return ctx;
}

void sha256_free(struct sha256_ctx *ctx)
{
	if (!ctx)
		return;
	EVP_MD_CTX_free(ctx->md_ctx);
	EVP_MD_free(ctx->md);
	free(ctx);
}

void sha256_begin(struct sha256_ctx *ctx)
{
	EVP_DigestInit_ex2(ctx->md_ctx, ctx->md, NULL);
}

void sha256_update(struct sha256_ctx *ctx, const void *p, size_t n)
{
	EVP_DigestUpdate(ctx->md_ctx, p, n);
}

void sha256_final(struct sha256_ctx *ctx, uint8_t out[SHA256_LEN])
{
	unsigned int len = SHA256_LEN;
	EVP_DigestFinal_ex(ctx->md_ctx, out, &len);
}

const char *sha256_backend(void)
{
	return "openssl";
}

#else
#include <sodium.h>

struct sha256_ctx {
	crypto_hash_sha256_state st;
};

struct sha256_ctx *sha256_new(void)
{
	return calloc(1, sizeof(struct sha256_ctx));
}

void sha256_free(struct sha256_ctx *ctx)
{
	free(ctx);
}

void sha256_begin(struct sha256_ctx *ctx)
{
	crypto_hash_sha256_init(&ctx->st);
}

void sha256_update(struct sha256_ctx *ctx, const void *p, size_t n)
{
	crypto_hash_sha256_update(&ctx->st, p, n);
}

void sha256_final(struct sha256_ctx *ctx, uint8_t out[SHA256_LEN])
{
	crypto_hash_sha256_final(&ctx->st, out);
}

const char *sha256_backend(void)
{
	return "libsodium";
}
#endif

void sha256_once(struct sha256_ctx *ctx, const void *p, size_t n, uint8_t out[SHA256_LEN])
{
	sha256_begin(ctx);
	sha256_update(ctx, p, n);
	sha256_final(ctx, out);
}

int sha256_digest(const void *p, size_t n, uint8_t out[SHA256_LEN])
{
	struct sha256_ctx *ctx = sha256_new();
	if (!ctx)
		return -ENOMEM;
	sha256_once(ctx, p, n, out);
	sha256_free(ctx);
	return 0;
}
