/* aesgcm.c: AES-256-GCM seal/open through OpenSSL EVP or libsodium (see aesgcm.h). */
#include "config.h"

#include "transfer/aesgcm.h"

#include <errno.h>
#include <string.h>

#include <sodium.h>

#ifdef SHOAL_HAVE_OPENSSL
#include <openssl/evp.h>
#endif

/* Both builds ask libsodium.  OpenSSL has no public query for "this CPU
 * runs AES in hardware" (its capability vector is internal), and its GCM
 * would still run without AES-NI, in constant-time software several times
 * slower than XChaCha20-Poly1305; so the offer is made where libsodium sees
 * AES-NI and PCLMUL, the same CPUs on which OpenSSL takes its AES-NI (and,
 * where present, VAES) path. */
bool aesgcm_hw_available(void)
{
	return sodium_init() >= 0 && crypto_aead_aes256gcm_is_available() == 1;
}

#ifdef SHOAL_HAVE_OPENSSL

const char *aesgcm_backend(void)
{
	return "openssl";
}

int aesgcm_init(struct aesgcm *g, const uint8_t key[AESGCM_KEY_LEN], bool seal)
{
	aesgcm_destroy(g); /* zeroed, or a key from before: never leaked */
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	if (!ctx)
		return -ENOMEM;
	/* The cipher and key once: the key schedule lives in ctx from now on.
	 * The default IV length of GCM in EVP is 12 bytes, ours. */
	if (EVP_CipherInit_ex(ctx, EVP_aes_256_gcm(), NULL, key, NULL, seal ? 1 : 0) != 1 ||
	    EVP_CIPHER_CTX_iv_length(ctx) != AESGCM_NONCE_LEN) {
		EVP_CIPHER_CTX_free(ctx);
		return -EIO;
	}
	g->ctx = ctx;
	g->seal = seal;
	g->ready = true;
	return 0;
}

void aesgcm_destroy(struct aesgcm *g)
{
	/* Freeing the context wipes the key schedule inside it (OpenSSL
	 * clears a cipher context's data before releasing it). */
	EVP_CIPHER_CTX_free(g->ctx);
	memset(g, 0, sizeof *g);
}

/* Start one message: the new nonce only (NULL cipher and key keep the
 * expanded key), then the AD. */
static int begin(struct aesgcm *g, const uint8_t *ad, size_t adlen,
		 const uint8_t nonce[AESGCM_NONCE_LEN])
{
	int outl = 0;
	if (EVP_CipherInit_ex(g->ctx, NULL, NULL, NULL, nonce, -1) != 1)
		return -EIO;
	if (adlen && EVP_CipherUpdate(g->ctx, NULL, &outl, ad, (int)adlen) != 1)
		return -EIO;
	return 0;
}

int aesgcm_seal(struct aesgcm *g, uint8_t *c, const uint8_t *m, size_t n, const uint8_t *ad,
		size_t adlen, const uint8_t nonce[AESGCM_NONCE_LEN])
{
	if (!g->ready || !g->seal || n > AESGCM_MAX_LEN || adlen > AESGCM_MAX_LEN)
		return -EINVAL;
	int outl = 0, fin = 0;
	if (begin(g, ad, adlen, nonce) < 0)
		return -EIO;
	if (n && (EVP_EncryptUpdate(g->ctx, c, &outl, m, (int)n) != 1 || (size_t)outl != n))
		return -EIO;
	/* GCM is a stream mode: Final writes nothing, it computes the tag. */
	if (EVP_EncryptFinal_ex(g->ctx, c + n, &fin) != 1 || fin != 0 ||
	    EVP_CIPHER_CTX_ctrl(g->ctx, EVP_CTRL_GCM_GET_TAG, AESGCM_TAG_LEN, c + n) != 1)
		return -EIO;
	return 0;
}

int aesgcm_open(struct aesgcm *g, uint8_t *m, const uint8_t *c, size_t clen, const uint8_t *ad,
		size_t adlen, const uint8_t nonce[AESGCM_NONCE_LEN])
{
	if (!g->ready || g->seal || clen < AESGCM_TAG_LEN || clen - AESGCM_TAG_LEN > AESGCM_MAX_LEN ||
	    adlen > AESGCM_MAX_LEN)
		return -EINVAL;
	size_t n = clen - AESGCM_TAG_LEN;
	int outl = 0, fin = 0;
	/* EVP takes the expected tag as a non-const pointer but only copies it. */
	if (begin(g, ad, adlen, nonce) < 0 ||
	    EVP_CIPHER_CTX_ctrl(g->ctx, EVP_CTRL_GCM_SET_TAG, AESGCM_TAG_LEN,
				(void *)(c + n)) != 1)
		return -EBADMSG;
	if (n && (EVP_DecryptUpdate(g->ctx, m, &outl, c, (int)n) != 1 || (size_t)outl != n))
		goto bad;
	if (EVP_DecryptFinal_ex(g->ctx, m ? m + n : NULL, &fin) != 1 || fin != 0)
		goto bad;
	return 0;
bad:
	/* EVP decrypts before the tag is checked: take the plaintext back. */
	if (n)
		sodium_memzero(m, n);
	return -EBADMSG;
}

#else /* libsodium */

const char *aesgcm_backend(void)
{
	return "libsodium";
}

int aesgcm_init(struct aesgcm *g, const uint8_t key[AESGCM_KEY_LEN], bool seal)
{
	aesgcm_destroy(g);
	if (!aesgcm_hw_available())
		return -EIO; /* libsodium's AES-GCM exists only with AES-NI */
	crypto_aead_aes256gcm_beforenm(&g->st, key);
	g->ready = true;
	g->seal = seal; /* one expanded key would serve both ways; keep the two apart */
	return 0;
}

void aesgcm_destroy(struct aesgcm *g)
{
	sodium_memzero(g, sizeof *g);
}

int aesgcm_seal(struct aesgcm *g, uint8_t *c, const uint8_t *m, size_t n, const uint8_t *ad,
		size_t adlen, const uint8_t nonce[AESGCM_NONCE_LEN])
{
	if (!g->ready || !g->seal || n > AESGCM_MAX_LEN || adlen > AESGCM_MAX_LEN)
		return -EINVAL;
	if (crypto_aead_aes256gcm_encrypt_afternm(c, NULL, m, n, ad, adlen, NULL, nonce, &g->st) != 0)
		return -EIO;
	return 0;
}

int aesgcm_open(struct aesgcm *g, uint8_t *m, const uint8_t *c, size_t clen, const uint8_t *ad,
		size_t adlen, const uint8_t nonce[AESGCM_NONCE_LEN])
{
	if (!g->ready || g->seal || clen < AESGCM_TAG_LEN || clen - AESGCM_TAG_LEN > AESGCM_MAX_LEN ||
	    adlen > AESGCM_MAX_LEN)
		return -EINVAL;
	unsigned long long mlen = 0;
	if (crypto_aead_aes256gcm_decrypt_afternm(m, &mlen, NULL, c, clen, ad, adlen, nonce,
						  &g->st) != 0) {
		if (clen > AESGCM_TAG_LEN)
			sodium_memzero(m, clen - AESGCM_TAG_LEN); /* as the EVP path does */
		return -EBADMSG;
	}
	return 0;
}

#endif
