/* sha1.c: SHA-1 through OpenSSL EVP, or written here from FIPS 180-4 (see sha1.h). */
#include "config.h"

#include "common/sha1.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#ifdef SHOAL_HAVE_OPENSSL
#include <openssl/evp.h>

struct sha1_ctx {
	EVP_MD_CTX *md_ctx;
	EVP_MD *md; /* fetched once, as in sha256.c */
};

struct sha1_ctx *sha1_new(void)
{
	struct sha1_ctx *ctx = calloc(1, sizeof *ctx);
	if (!ctx)
		return NULL;
	ctx->md_ctx = EVP_MD_CTX_new();
	ctx->md = EVP_MD_fetch(NULL, "SHA1", NULL);
	if (!ctx->md_ctx || !ctx->md) {
		sha1_free(ctx);
		return NULL;
	}
	return ctx;
}

void sha1_free(struct sha1_ctx *ctx)
{
	if (!ctx)
		return;
	EVP_MD_CTX_free(ctx->md_ctx);
	EVP_MD_free(ctx->md);
	free(ctx);
}

void sha1_begin(struct sha1_ctx *ctx)
{
	EVP_DigestInit_ex2(ctx->md_ctx, ctx->md, NULL);
}

void sha1_update(struct sha1_ctx *ctx, const void *p, size_t n)
{
	EVP_DigestUpdate(ctx->md_ctx, p, n);
}

void sha1_final(struct sha1_ctx *ctx, uint8_t out[SHA1_LEN])
{
	unsigned int len = SHA1_LEN;
	EVP_DigestFinal_ex(ctx->md_ctx, out, &len);
}

const char *sha1_backend(void)
{
	return "openssl";
}

#else
/* FIPS 180-4 section 6.1.2: 512-bit blocks, an 80-word schedule, four
 * rounds of 20 steps with the functions Ch, Parity, Maj, Parity. */

struct sha1_ctx {
	uint32_t h[5];
	uint64_t bytes;      /* message length so far */
	uint8_t block[64];   /* partial block */
	size_t fill;         /* bytes in `block` */
};

static uint32_t rotl(uint32_t x, unsigned n)
{
	return (x << n) | (x >> (32 - n));
}

static void compress(uint32_t h[5], const uint8_t m[64])
{
	uint32_t w[80];
	for (int t = 0; t < 16; t++)
		w[t] = (uint32_t)m[4 * t] << 24 | (uint32_t)m[4 * t + 1] << 16 |
		       (uint32_t)m[4 * t + 2] << 8 | (uint32_t)m[4 * t + 3];
	for (int t = 16; t < 80; t++)
		w[t] = rotl(w[t - 3] ^ w[t - 8] ^ w[t - 14] ^ w[t - 16], 1);
	uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
	for (int t = 0; t < 80; t++) {
		uint32_t f, k;
		if (t < 20) {
			f = (b & c) ^ (~b & d);
			k = 0x5a827999u;
		} else if (t < 40) {
			f = b ^ c ^ d;
			k = 0x6ed9eba1u;
		} else if (t < 60) {
			f = (b & c) ^ (b & d) ^ (c & d);
			k = 0x8f1bbcdcu;
		} else {
			f = b ^ c ^ d;
			k = 0xca62c1d6u;
		}
		uint32_t tmp = rotl(a, 5) + f + e + k + w[t];
		e = d;
		d = c;
		c = rotl(b, 30);
		b = a;
		a = tmp;
	}
	h[0] += a;
	h[1] += b;
	h[2] += c;
	h[3] += d;
	h[4] += e;
}

struct sha1_ctx *sha1_new(void)
{
	return calloc(1, sizeof(struct sha1_ctx));
}

void sha1_free(struct sha1_ctx *ctx)
{
	free(ctx);
}

void sha1_begin(struct sha1_ctx *ctx)
{
	static const uint32_t init[5] = { 0x67452301u, 0xefcdab89u, 0x98badcfeu, 0x10325476u,
					  0xc3d2e1f0u };
	memcpy(ctx->h, init, sizeof init);
	ctx->bytes = 0;
	ctx->fill = 0;
}

void sha1_update(struct sha1_ctx *ctx, const void *p, size_t n)
{
	const uint8_t *s = p;
	ctx->bytes += n;
	if (ctx->fill) {
		size_t take = 64 - ctx->fill < n ? 64 - ctx->fill : n;
		memcpy(ctx->block + ctx->fill, s, take);
		ctx->fill += take;
		s += take;
		n -= take;
		if (ctx->fill < 64)
			return;
		compress(ctx->h, ctx->block);
		ctx->fill = 0;
	}
	for (; n >= 64; s += 64, n -= 64)
		compress(ctx->h, s);
	memcpy(ctx->block, s, n);
	ctx->fill = n;
}

void sha1_final(struct sha1_ctx *ctx, uint8_t out[SHA1_LEN])
{
	/* Padding (5.1.1): a 1 bit, zeros to 448 mod 512, the bit length. */
	uint64_t bits = ctx->bytes * 8;
	ctx->block[ctx->fill++] = 0x80;
	if (ctx->fill > 56) {
		memset(ctx->block + ctx->fill, 0, 64 - ctx->fill);
		compress(ctx->h, ctx->block);
		ctx->fill = 0;
	}
	memset(ctx->block + ctx->fill, 0, 56 - ctx->fill);
	for (int i = 0; i < 8; i++)
		ctx->block[56 + i] = (uint8_t)(bits >> (56 - 8 * i));
	compress(ctx->h, ctx->block);
	for (int i = 0; i < 5; i++) {
		out[4 * i] = (uint8_t)(ctx->h[i] >> 24);
		out[4 * i + 1] = (uint8_t)(ctx->h[i] >> 16);
		out[4 * i + 2] = (uint8_t)(ctx->h[i] >> 8);
		out[4 * i + 3] = (uint8_t)ctx->h[i];
	}
}

const char *sha1_backend(void)
{
	return "builtin";
}
#endif

void sha1_once(struct sha1_ctx *ctx, const void *p, size_t n, uint8_t out[SHA1_LEN])
{
	sha1_begin(ctx);
	sha1_update(ctx, p, n);
	sha1_final(ctx, out);
}

int sha1_digest(const void *p, size_t n, uint8_t out[SHA1_LEN])
{
	struct sha1_ctx *ctx = sha1_new();
	if (!ctx)
		return -ENOMEM;
	sha1_once(ctx, p, n, out);
	sha1_free(ctx);
	return 0;
}
