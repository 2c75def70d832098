/* aesgcm.h: AES-256-GCM for one direction of a connection (12-byte nonce, 16-byte tag), from
 * OpenSSL EVP by default or libsodium with ./configure --without-openssl.
 *
 * The record layer (transfer/crypt.c) owns the framing, the record counter
 * and the nonce; this is only the seal/open primitive under them, so the
 * two builds differ in nothing but these few calls.  OpenSSL's GCM uses
 * the CPU's VAES and VPCLMULQDQ where it has them and runs several times
 * faster than libsodium 1.0.18's AES-NI code (docs/protocol.md 2.12); the
 * output is the same bytes (tests/unit/test_aesgcm.c checks one against
 * the other).
 *
 * Threading: a `struct aesgcm` belongs to one connection and is used by
 * one thread at a time (shoal: the loop thread).  Nothing here is shared
 * between instances. */
#ifndef SHOAL_TRANSFER_AESGCM_H
#define SHOAL_TRANSFER_AESGCM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifndef SHOAL_HAVE_OPENSSL
#include <sodium.h>
#endif

#define AESGCM_KEY_LEN 32
#define AESGCM_NONCE_LEN 12
#define AESGCM_TAG_LEN 16
/* The longest message or AD one call takes (EVP counts in int). */
#define AESGCM_MAX_LEN ((size_t)1 << 30)

/* One key, for sealing or for opening.  Zero it before the first
 * aesgcm_init (a zeroed one may be destroyed without being initialised;
 * initialising again replaces the key). */
struct aesgcm {
#ifdef SHOAL_HAVE_OPENSSL
	struct evp_cipher_ctx_st *ctx; /* EVP_CIPHER_CTX: key schedule inside, made once */
#else
	crypto_aead_aes256gcm_state st; /* expanded key; wants 16-byte alignment */
#endif
	bool ready; /* initialised */
	bool seal;  /* for sealing, else for opening */
};

/* Does this CPU have AES-NI and carry-less multiply, the hardware both
 * backends need to be fast (and libsodium's to run at all)?  Initialises
 * libsodium; false if it cannot. */
bool aesgcm_hw_available(void);

/* "openssl" or "libsodium": which one was compiled in. */
const char *aesgcm_backend(void);

/* Expand `key` for sealing (`seal` true) or opening.  The one allocation
 * of the OpenSSL backend happens here, never per message.  Returns 0;
 * -ENOMEM; -EIO if the library refuses (e.g. libsodium on a CPU without
 * AES-NI).  On error `g` holds nothing and may be destroyed. */
int aesgcm_init(struct aesgcm *g, const uint8_t key[AESGCM_KEY_LEN], bool seal)
	__attribute__((warn_unused_result));

/* Free and wipe the expanded key.  Safe on a zeroed or destroyed `g`. */
void aesgcm_destroy(struct aesgcm *g);

/* Seal `n` bytes of `m` with additional data `ad` (`adlen` bytes) under
 * `nonce`, writing the ciphertext and then the 16-byte tag to `c` (n + 16
 * bytes; `c` may not overlap `m` or `ad`).  `m` may be NULL when n is 0.
 * Needs an `aesgcm_init(.., true)` key.  Returns 0; -EINVAL for a length
 * over AESGCM_MAX_LEN or an opening key; -EIO if the library fails
 * (nothing usable was written). */
int aesgcm_seal(struct aesgcm *g, uint8_t *c, const uint8_t *m, size_t n, const uint8_t *ad,
		size_t adlen, const uint8_t nonce[AESGCM_NONCE_LEN])
	__attribute__((warn_unused_result));

/* Open `clen` >= 16 bytes of `c` (ciphertext, then tag) into `m`
 * (clen - 16 bytes, not overlapping `c`).  Needs an `aesgcm_init(.., false)`
 * key.  Returns 0; -EBADMSG if the tag does not match (then `m` is wiped:
 * no unauthenticated byte is left there); -EINVAL for a bad length or a
 * sealing key. */
int aesgcm_open(struct aesgcm *g, uint8_t *m, const uint8_t *c, size_t clen, const uint8_t *ad,
		size_t adlen, const uint8_t nonce[AESGCM_NONCE_LEN])
	__attribute__((warn_unused_result));

#endif
