/* crypt.h: the shoal encrypted transport (docs/protocol.md), a byte-in/byte-out state machine
 * with two record ciphers, negotiated inside the authenticated handshake. */
#ifndef SHOAL_TRANSFER_CRYPT_H
#define SHOAL_TRANSFER_CRYPT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Sizes, all fixed by docs/protocol.md ("shoal transport v1"). */
#define CRYPT_INFO_HASH_LEN 32 /* the full BEP 52 info-hash */
#define CRYPT_MAGIC_LEN 7      /* "\0shoal" + version byte */
#define CRYPT_VERSION 1
#define CRYPT_PK_LEN 32
#define CRYPT_TAG_LEN 32
#define CRYPT_HELLO_LEN (CRYPT_MAGIC_LEN + 1 + CRYPT_PK_LEN + CRYPT_TAG_LEN) /* 72 */
#define CRYPT_HEADER_LEN 24    /* secretstream header */
#define CRYPT_ABYTES 17        /* secretstream per-record overhead */
#define CRYPT_GCM_ABYTES 16    /* AES-256-GCM per-record overhead (its tag) */
#define CRYPT_LEN_LEN 4        /* record length prefix */
/* The larger of the two ciphers' framing: size buffers with it. */
#define CRYPT_RECORD_OVERHEAD (CRYPT_LEN_LEN + CRYPT_ABYTES) /* 21 */
#define CRYPT_MAX_PLAIN 65536u /* plaintext bytes per record */
#define CRYPT_MAX_RECORD (CRYPT_LEN_LEN + CRYPT_ABYTES + CRYPT_MAX_PLAIN)
#define CRYPT_CONFIRM_LEN CRYPT_RECORD_OVERHEAD /* an empty secretstream record */
#define CRYPT_GCM_CONFIRM_LEN (CRYPT_LEN_LEN + CRYPT_GCM_ABYTES) /* 20: an empty AES-GCM record */
/* The hello's flags byte (offset 7): bit 0 offers AES-256-GCM; the other
 * bits are reserved (sent as 0, ignored by a responder, but covered by the
 * tag and bound into the keys like the rest). */
#define CRYPT_HELLO_FLAG_AES256GCM 0x01u
/* Replies.  To a hello with flags 00 (every shoal before cipher
 * negotiation): exactly the original 77 bytes.  To any other hello: pk_r,
 * then one byte naming the chosen cipher, then that cipher's part. */
#define CRYPT_REPLY_LEN (CRYPT_PK_LEN + CRYPT_HEADER_LEN + CRYPT_CONFIRM_LEN) /* 77 */
#define CRYPT_REPLY_XCHACHA_LEN (CRYPT_PK_LEN + 1 + CRYPT_HEADER_LEN + CRYPT_CONFIRM_LEN) /* 78 */
#define CRYPT_REPLY_AES_LEN (CRYPT_PK_LEN + 1 + CRYPT_GCM_CONFIRM_LEN)                   /* 53 */
#define CRYPT_FINISH_LEN (CRYPT_HEADER_LEN + CRYPT_CONFIRM_LEN)                          /* 45 */
#define CRYPT_FINISH_AES_LEN CRYPT_GCM_CONFIRM_LEN                                       /* 20 */

/* At most this many wire bytes seal `n` plaintext bytes (n <= CRYPT_MAX_PLAIN),
 * whichever the cipher; crypt_seal says how many it wrote. */
#define CRYPT_SEALED_MAX(n) ((size_t)(n) + CRYPT_RECORD_OVERHEAD)

/* The record ciphers.  The values are the reply's cipher byte. */
enum crypt_cipher {
	CRYPT_CIPHER_XCHACHA20POLY1305 = 0, /* secretstream: every shoal has it, the fallback */
	CRYPT_CIPHER_AES256GCM = 1,         /* only where the CPU has AES-NI and PCLMUL */
};

/* What one end is willing to use (crypt_new_*). */
enum crypt_ciphers {
	CRYPT_CIPHERS_AUTO = 0,     /* AES-256-GCM when both ends can, else XChaCha20-Poly1305 */
	CRYPT_CIPHERS_XCHACHA_ONLY, /* offer and pick nothing but XChaCha20-Poly1305 */
};

/* Does this CPU run AES-256-GCM in hardware (AES-NI and PCLMUL, as
 * libsodium's crypto_aead_aes256gcm_is_available() sees them)?  Only then
 * is it offered or picked.  (Initialises libsodium; false if it cannot.) */
bool crypt_aes256gcm_available(void);

/* Which library seals and opens AES-256-GCM records: "openssl" (EVP, the
 * default build) or "libsodium" (./configure --without-openssl).  The bytes
 * on the wire are the same either way. */
const char *crypt_aes256gcm_backend(void);

/* "xchacha20poly1305" or "aes256gcm" (the API's names). */
const char *crypt_cipher_name(enum crypt_cipher cipher);

enum crypt_class {
	CRYPT_NEED_MORE = 0, /* too few bytes to tell yet */
	CRYPT_PLAIN,         /* "\x13BitTorrent protocol": plain BEP 3 */
	CRYPT_ENCRYPTED,     /* a shoal transport hello, version 1 */
	CRYPT_INVALID,       /* neither: close the connection */
};

/* Tell an incoming connection's first bytes apart.  Looks at no more than
 * 20 bytes; never reads past p[len-1]. */
enum crypt_class crypt_classify(const uint8_t *p, size_t len);

/* One end of one connection.  Opaque: it holds secret keys and wipes them.
 *
 * Threads: a struct crypt is used by one thread at a time, with one
 * exception.  Once crypt_established() is true its two halves are
 * disjoint: crypt_seal touches only the sending half and crypt_feed only
 * the receiving half (an error there is kept as the receiving half's own;
 * it does not change what crypt_established, crypt_cipher or crypt_seal
 * see), so one thread may seal while another opens.  crypt_established,
 * crypt_cipher, crypt_info_hash and crypt_offers_ciphers only read what
 * the handshake wrote and may be called beside either. */
struct crypt;

/* A responder's way to find the swarm a hello is for: return 0 and fill
 * `info_hash_out` with the matching 32-byte hash, or -ENOENT.  Use
 * crypt_hello_matches() to test a candidate. */
typedef int (*crypt_lookup_fn)(void *arg, const uint8_t hello[CRYPT_HELLO_LEN],
			       uint8_t info_hash_out[CRYPT_INFO_HASH_LEN]);

/* Test hooks: fix the ephemeral key seed and the outgoing secretstream
 * header so the handshake is reproducible (docs/protocol.md test vectors,
 * fuzzing), and pretend the CPU lacks AES-NI.  Pass NULL in production:
 * then keys and headers are random and the CPU is asked.  Zero it before
 * filling it in. */
struct crypt_det {
	uint8_t kx_seed[32];                /* for crypto_kx_seed_keypair */
	uint8_t header[CRYPT_HEADER_LEN];   /* our secretstream header (AES-GCM has none) */
	bool no_aes;                        /* behave as on a CPU without AES-256-GCM */
};

/* Start the initiator side for the swarm `info_hash`.  The hello is queued
 * as output at once (see crypt_output).  With CRYPT_CIPHERS_AUTO on a CPU
 * that has AES-256-GCM the hello offers it (flags 01); otherwise its flags
 * are 00, byte for byte the hello of a shoal without negotiation.  Returns
 * 0 and *c_out; -ENOMEM; -EIO if libsodium cannot initialise. */
int crypt_new_initiator(struct crypt **c_out, const uint8_t info_hash[CRYPT_INFO_HASH_LEN],
			enum crypt_ciphers ciphers, const struct crypt_det *det)
	__attribute__((warn_unused_result));

/* Start the responder side.  The hello's tag is tested against `hashes`
 * (`n` hashes of 32 bytes, copied) or, if `hashes` is NULL, by `lookup`.
 * It picks AES-256-GCM when the hello offers it, `ciphers` allows it and
 * the CPU has it, else XChaCha20-Poly1305.  Returns 0 and *c_out; -EINVAL
 * if neither hashes nor lookup is given; -ENOMEM; -EIO. */
int crypt_new_responder(struct crypt **c_out, const uint8_t (*hashes)[CRYPT_INFO_HASH_LEN],
			size_t n, crypt_lookup_fn lookup, void *lookup_arg,
			enum crypt_ciphers ciphers, const struct crypt_det *det)
	__attribute__((warn_unused_result));

/* Wipe all keys and free.  NULL is fine. */
void crypt_free(struct crypt *c);

/* Does this hello's tag match `info_hash`?  (Constant-time compare.) */
bool crypt_hello_matches(const uint8_t hello[CRYPT_HELLO_LEN],
			 const uint8_t info_hash[CRYPT_INFO_HASH_LEN]);

/* Handshake bytes waiting to be sent (hello, reply or finish), or NULL with
 * *len_out == 0.  They must reach the peer before any sealed record; call
 * crypt_output_done() once they are handed to the socket. */
const uint8_t *crypt_output(const struct crypt *c, size_t *len_out);
void crypt_output_done(struct crypt *c);

/* Feed received bytes.  Consumes from *pp towards `end`, advancing *pp, and
 * stops after at most one record:
 *   1  a record's plaintext was written to `out` (*out_len, possibly 0);
 *      call again with the rest of the input;
 *   0  every byte was consumed without completing a record (*pp == end).
 *      Handshake steps happen inside: check crypt_output() afterwards.
 * `out` must hold CRYPT_MAX_PLAIN bytes; it may be one scratch buffer shared
 * by every connection of a thread.  Errors are hard (sticky; disconnect):
 *   -EPROTO      not a shoal hello (magic)
 *   -EPROTONOSUPPORT  unknown version
 *   -ENOENT      responder: no known swarm matches the hello's tag
 *   -EMSGSIZE    a record length outside [A, A + CRYPT_MAX_PLAIN], A being
 *                the cipher's CRYPT_ABYTES or CRYPT_GCM_ABYTES
 *   -EBADMSG     authentication failed, a bad public key, a missing or
 *                misplaced confirmation record, an unknown record tag, or
 *                a reply naming a cipher the hello did not offer
 *   -EOVERFLOW   AES-256-GCM: a record after the 2^64th in its direction
 *   -ENOMEM      out of memory for the reassembly buffer or, once per
 *                direction, the AES-256-GCM key context
 *   -EIO         the AES-256-GCM library failed (a key, or sealing our
 *                confirmation)
 * A record that arrives whole is decrypted straight from the input; a split
 * one is copied once into a per-connection buffer. */
int crypt_feed(struct crypt *c, const uint8_t **pp, const uint8_t *end, uint8_t *out,
	       size_t *out_len) __attribute__((warn_unused_result));

/* The stream ended (EOF).  Returns 0 if it ended on a record boundary of an
 * established session, else -EBADMSG (truncated record or handshake). */
int crypt_finish(const struct crypt *c) __attribute__((warn_unused_result));

/* True once the peer has proven it holds the same session keys. */
bool crypt_established(const struct crypt *c);

/* The swarm's 32-byte info-hash: the initiator's, or for a responder the one
 * its hello matched; NULL before that. */
const uint8_t *crypt_info_hash(const struct crypt *c);

/* The session's record cipher (enum crypt_cipher), known to a responder
 * once it has read the hello and to an initiator once it has read the
 * reply's cipher byte; -ENOTCONN before.  It only counts once
 * crypt_established() says the peer proved it agrees. */
int crypt_cipher(const struct crypt *c);

/* Initiator: did its hello offer anything beyond XChaCha20-Poly1305 (flags
 * not 00)?  A shoal older than cipher negotiation refuses such a hello by
 * closing; the caller may then retry with CRYPT_CIPHERS_XCHACHA_ONLY. */
bool crypt_offers_ciphers(const struct crypt *c);

/* Seal `n` <= CRYPT_MAX_PLAIN bytes into one record at `out`, which must
 * hold CRYPT_SEALED_MAX(n) bytes and may not overlap `m`; *len_out gets the
 * record's length (n + 21 for XChaCha20-Poly1305, n + 20 for AES-256-GCM).
 * Returns 0; -ENOTCONN before the session is established or while
 * handshake output is still pending; -EMSGSIZE if n is too large;
 * -EOVERFLOW when an AES-256-GCM direction has used all 2^64 nonces (close
 * the connection: nothing was written); -EIO if the AES-256-GCM library
 * fails (close the connection: this direction seals nothing more). */
int crypt_seal(struct crypt *c, const uint8_t *m, size_t n, uint8_t *out, size_t *len_out)
	__attribute__((warn_unused_result));

/* For tests and docs/protocol.md vectors: the two derived record keys,
 * initiator->responder and responder->initiator.  Returns 0, or -ENOTCONN
 * before they exist. */
int crypt_session_keys(const struct crypt *c, uint8_t i2r_out[32], uint8_t r2i_out[32])
	__attribute__((warn_unused_result));

/* For tests of the nonce limit: move an established AES-256-GCM session's
 * record counters forward by `tx` (records we send) and `rx` (records we
 * receive), as if that many had passed.  Only forward, so no nonce is ever
 * used twice.  Returns 0; -ENOTCONN before the session is established;
 * -EINVAL for XChaCha20-Poly1305; -EOVERFLOW if a counter would pass
 * 2^64 - 1 (nothing changed). */
int crypt_skip_records(struct crypt *c, uint64_t tx, uint64_t rx)
	__attribute__((warn_unused_result));

#endif
