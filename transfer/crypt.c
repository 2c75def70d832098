/* crypt.c: shoal transport v1: X25519 key exchange bound to the 32-byte info-hash, then
 * XChaCha20-Poly1305 secretstream or AES-256-GCM records, the choice bound into the keys. */
#include "config.h"

#include "common/bytes.h"
#include "transfer/aesgcm.h"
#include "transfer/crypt.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

/* The layout is specified byte by byte in docs/protocol.md; keep them in step. */
static const uint8_t magic[CRYPT_MAGIC_LEN] = { 0x00, 's', 'h', 'o', 'a', 'l', CRYPT_VERSION };
static const uint8_t plain_prefix[20] = "\x13"
					"BitTorrent protocol";

/* BLAKE2b personalisation strings: exactly 16 bytes each. */
static const uint8_t pers_hello[16] = { 's', 'h', 'o', 'a', 'l', '-', 'v', '1',
					'-', 'h', 'e', 'l', 'l', 'o', 0, 0 };
static const uint8_t pers_i2r[16] = { 's', 'h', 'o', 'a', 'l', '-', 'v', '1',
				      '-', 'k', 'e', 'y', '-', 'i', '2', 'r' };
static const uint8_t pers_r2i[16] = { 's', 'h', 'o', 'a', 'l', '-', 'v', '1',
				      '-', 'k', 'e', 'y', '-', 'r', '2', 'i' };

#define TAG_DATA crypto_secretstream_xchacha20poly1305_TAG_MESSAGE
#define TAG_CONFIRM crypto_secretstream_xchacha20poly1305_TAG_PUSH
#define GCM_NONCE_LEN AESGCM_NONCE_LEN /* 12 */

enum state {
	S_I_AWAIT_REPLY,  /* initiator: hello sent, want pk_r (| cipher byte, if it offered) */
	S_I_AWAIT_HEADER, /* initiator, XChaCha20-Poly1305: want header_r2i */
	S_R_AWAIT_HELLO,  /* responder: want the 72-byte hello */
	S_R_AWAIT_HEADER, /* responder, XChaCha20-Poly1305: reply sent, want header_i2r */
	S_AWAIT_CONFIRM,  /* either: want the peer's confirmation record */
	S_OPEN,           /* established: data records both ways */
	S_FAILED,
};

struct crypt {
	enum state state;
	int err;
	bool initiator;
	bool have_hash;
	bool det_set;
	struct crypt_det det;
	uint8_t info_hash[CRYPT_INFO_HASH_LEN];

	/* Responder's swarm lookup. */
	uint8_t (*hashes)[CRYPT_INFO_HASH_LEN];
	size_t n_hashes;
	crypt_lookup_fn lookup;
	void *lookup_arg;

	/* The negotiation: the hello's flags byte (ours or the initiator's),
	 * whether we may use AES-256-GCM at all, and the outcome.  `flags`
	 * not 0 means the reply carries a cipher byte and the keys bind both. */
	uint8_t flags;
	bool aes_ok;
	bool have_cipher;
	enum crypt_cipher cipher;

	uint8_t pk[CRYPT_PK_LEN], sk[32];
	uint8_t k_i2r[32], k_r2i[32];
	bool have_keys;
	crypto_secretstream_xchacha20poly1305_state tx, rx;
	/* AES-256-GCM: expanded keys (transfer/aesgcm.h: OpenSSL's or
	 * libsodium's, chosen at build time), made once when the session
	 * starts, and each direction's record counter (the nonce), with
	 * `spent` once record 2^64 - 1 has been used. */
	struct aesgcm gcm_tx, gcm_rx;
	uint64_t tx_seq, rx_seq;
	bool tx_spent, rx_spent;

	/* Handshake input being gathered, and handshake output to send. */
	uint8_t hs_in[CRYPT_HELLO_LEN];
	size_t hs_have;
	uint8_t hs_out[CRYPT_HELLO_LEN > CRYPT_REPLY_XCHACHA_LEN ? CRYPT_HELLO_LEN
								  : CRYPT_REPLY_XCHACHA_LEN];
	size_t hs_out_len;

	/* Record input: length prefix, then a ciphertext split across feeds. */
	uint8_t len_in[CRYPT_LEN_LEN];
	size_t len_have;
	uint32_t rec_len;  /* ciphertext length once the prefix is complete */
	uint8_t *rec;      /* lazily allocated, CRYPT_ABYTES + CRYPT_MAX_PLAIN */
	size_t rec_have;
};

bool crypt_aes256gcm_available(void)
{
	return aesgcm_hw_available();
}

const char *crypt_aes256gcm_backend(void)
{
	return aesgcm_backend();
}

const char *crypt_cipher_name(enum crypt_cipher cipher)
{
	return cipher == CRYPT_CIPHER_AES256GCM ? "aes256gcm" : "xchacha20poly1305";
}

enum crypt_class crypt_classify(const uint8_t *p, size_t len)
{
	if (len == 0)
		return CRYPT_NEED_MORE;
	const uint8_t *want;
	size_t want_len;
	if (p[0] == plain_prefix[0]) {
		want = plain_prefix;
		want_len = sizeof plain_prefix;
	} else if (p[0] == magic[0]) {
		want = magic;
		want_len = sizeof magic;
	} else {
		return CRYPT_INVALID;
	}
	size_t n = len < want_len ? len : want_len;
	if (memcmp(p, want, n) != 0)
		return CRYPT_INVALID; /* includes other versions of ours */
	if (n < want_len)
		return CRYPT_NEED_MORE;
	return want == magic ? CRYPT_ENCRYPTED : CRYPT_PLAIN;
}

/* tag = BLAKE2b-256(hello[0..40), key = info-hash, personal "shoal-v1-hello"). */
static void hello_tag(uint8_t tag[CRYPT_TAG_LEN], const uint8_t *hello_head,
		      const uint8_t info_hash[CRYPT_INFO_HASH_LEN])
{
	crypto_generichash_blake2b_salt_personal(tag, CRYPT_TAG_LEN, hello_head,
						 CRYPT_MAGIC_LEN + 1 + CRYPT_PK_LEN, info_hash,
						 CRYPT_INFO_HASH_LEN, NULL, pers_hello);
}

bool crypt_hello_matches(const uint8_t hello[CRYPT_HELLO_LEN],
			 const uint8_t info_hash[CRYPT_INFO_HASH_LEN])
{
	uint8_t tag[CRYPT_TAG_LEN];
	hello_tag(tag, hello, info_hash);
	bool ok = sodium_memcmp(tag, hello + CRYPT_HELLO_LEN - CRYPT_TAG_LEN, CRYPT_TAG_LEN) == 0;
	sodium_memzero(tag, sizeof tag);
	return ok;
}

/* Built without OpenSSL, the struct holds libsodium's AES-GCM states, which
 * want 16-byte alignment: ask for the struct's own alignment rather than
 * trust malloc. */
static int crypt_alloc(struct crypt **c_out, enum crypt_ciphers ciphers,
		       const struct crypt_det *det)
{
	if (sodium_init() < 0)
		return -EIO;
	size_t align = _Alignof(struct crypt), size = sizeof(struct crypt);
	size = (size + align - 1) / align * align;
	struct crypt *c = aligned_alloc(align, size);
	if (!c)
		return -ENOMEM;
	memset(c, 0, sizeof *c);
	if (det) {
		c->det = *det;
		c->det_set = true;
		crypto_kx_seed_keypair(c->pk, c->sk, det->kx_seed);
	} else {
		crypto_kx_keypair(c->pk, c->sk);
	}
	c->aes_ok = ciphers == CRYPT_CIPHERS_AUTO && !(det && det->no_aes) &&
		    aesgcm_hw_available();
	*c_out = c;
	return 0;
}

int crypt_new_initiator(struct crypt **c_out, const uint8_t info_hash[CRYPT_INFO_HASH_LEN],
			enum crypt_ciphers ciphers, const struct crypt_det *det)
{
	struct crypt *c = NULL;
	int rc = crypt_alloc(&c, ciphers, det);
	if (rc < 0)
		return rc;
	c->initiator = true;
	c->have_hash = true;
	memcpy(c->info_hash, info_hash, CRYPT_INFO_HASH_LEN);
	/* hello = magic(7) | flags(1) | pk_i(32) | tag(32); flags offer AES-GCM
	 * or are 00, the hello of a shoal without negotiation. */
	c->flags = c->aes_ok ? CRYPT_HELLO_FLAG_AES256GCM : 0;
	uint8_t *h = c->hs_out;
	memcpy(h, magic, CRYPT_MAGIC_LEN);
	h[CRYPT_MAGIC_LEN] = c->flags;
	memcpy(h + CRYPT_MAGIC_LEN + 1, c->pk, CRYPT_PK_LEN);
	hello_tag(h + CRYPT_MAGIC_LEN + 1 + CRYPT_PK_LEN, h, info_hash);
	c->hs_out_len = CRYPT_HELLO_LEN;
	c->state = S_I_AWAIT_REPLY;
	*c_out = c;
	return 0;
}

int crypt_new_responder(struct crypt **c_out, const uint8_t (*hashes)[CRYPT_INFO_HASH_LEN],
			size_t n, crypt_lookup_fn lookup, void *lookup_arg,
			enum crypt_ciphers ciphers, const struct crypt_det *det)
{
	if (!hashes && !lookup)
		return -EINVAL;
	if (hashes && n > SIZE_MAX / CRYPT_INFO_HASH_LEN)
		return -EINVAL;
	struct crypt *c = NULL;
	int rc = crypt_alloc(&c, ciphers, det);
	if (rc < 0)
		return rc;
	if (hashes && n) {
		c->hashes = malloc(n * CRYPT_INFO_HASH_LEN);
		if (!c->hashes) {
			crypt_free(c);
			return -ENOMEM;
		}
		memcpy(c->hashes, hashes, n * CRYPT_INFO_HASH_LEN);
		c->n_hashes = n;
	}
	c->lookup = hashes ? NULL : lookup;
	c->lookup_arg = lookup_arg;
	c->state = S_R_AWAIT_HELLO;
	*c_out = c;
	return 0;
}

void crypt_free(struct crypt *c)
{
	if (!c)
		return;
	if (c->hashes) {
		sodium_memzero(c->hashes, c->n_hashes * CRYPT_INFO_HASH_LEN);
		free(c->hashes);
	}
	if (c->rec) {
		sodium_memzero(c->rec, CRYPT_ABYTES + CRYPT_MAX_PLAIN);
		free(c->rec);
	}
	aesgcm_destroy(&c->gcm_tx); /* frees and wipes the expanded keys */
	aesgcm_destroy(&c->gcm_rx);
	sodium_memzero(c, sizeof *c); /* keys, both ciphers' states */
	free(c);
}

const uint8_t *crypt_output(const struct crypt *c, size_t *len_out)
{
	*len_out = c->hs_out_len;
	return c->hs_out_len ? c->hs_out : NULL;
}

void crypt_output_done(struct crypt *c)
{
	c->hs_out_len = 0;
}

bool crypt_established(const struct crypt *c)
{
	return c->state == S_OPEN;
}

const uint8_t *crypt_info_hash(const struct crypt *c)
{
	return c->have_hash ? c->info_hash : NULL;
}

int crypt_cipher(const struct crypt *c)
{
	return c->have_cipher ? (int)c->cipher : -ENOTCONN;
}

bool crypt_offers_ciphers(const struct crypt *c)
{
	return c->initiator && c->flags != 0;
}

int crypt_session_keys(const struct crypt *c, uint8_t i2r_out[32], uint8_t r2i_out[32])
{
	if (!c->have_keys)
		return -ENOTCONN;
	memcpy(i2r_out, c->k_i2r, 32);
	memcpy(r2i_out, c->k_r2i, 32);
	return 0;
}

int crypt_skip_records(struct crypt *c, uint64_t tx, uint64_t rx)
{
	if (c->state != S_OPEN)
		return -ENOTCONN;
	if (c->cipher != CRYPT_CIPHER_AES256GCM)
		return -EINVAL;
	if ((tx && (c->tx_spent || tx > UINT64_MAX - c->tx_seq)) ||
	    (rx && (c->rx_spent || rx > UINT64_MAX - c->rx_seq)))
		return -EOVERFLOW;
	c->tx_seq += tx;
	c->rx_seq += rx;
	return 0;
}

/* A hard error.  Once the session is open only the receiving half fails
 * (`err`, which crypt_feed and crypt_finish return from then on): the state
 * is left alone, because the sending half may be in use on another thread
 * (crypt.h, "Threads") and the caller closes the connection anyway. */
static int fail(struct crypt *c, int err)
{
	c->err = err;
	if (c->state != S_OPEN)
		c->state = S_FAILED;
	return err;
}

/* Both record keys from the crypto_kx session key the initiator transmits
 * with (`kx_i2r`) and the one it receives with (`kx_r2i`), each run through
 * BLAKE2b keyed by the full info-hash: without the 32-byte hash, the DH
 * secret alone does not give the keys.  After a hello with flags other
 * than 00 the input is kx | flags | cipher: both ends then hold the same
 * keys only if they saw the same offer and the same choice, so tampering
 * with either fails the confirmation records (docs/protocol.md 2.16).
 * With flags 00 it is kx alone, as before negotiation existed. */
static void derive_keys(struct crypt *c, const uint8_t kx_i2r[32], const uint8_t kx_r2i[32])
{
	uint8_t in[32 + 2];
	size_t n = 32;
	if (c->flags) {
		in[32] = c->flags;
		in[33] = (uint8_t)c->cipher;
		n = sizeof in;
	}
	memcpy(in, kx_i2r, 32);
	crypto_generichash_blake2b_salt_personal(c->k_i2r, 32, in, n, c->info_hash,
						 CRYPT_INFO_HASH_LEN, NULL, pers_i2r);
	memcpy(in, kx_r2i, 32);
	crypto_generichash_blake2b_salt_personal(c->k_r2i, 32, in, n, c->info_hash,
						 CRYPT_INFO_HASH_LEN, NULL, pers_r2i);
	sodium_memzero(in, sizeof in);
	c->have_keys = true;
	sodium_memzero(c->sk, sizeof c->sk); /* forward secrecy: the DH is done */
}

/* Start our sending direction.  XChaCha20-Poly1305: write its 24-byte
 * secretstream header to `header_out`.  AES-256-GCM: expand the key, once
 * per connection (the only allocation of the OpenSSL backend); the nonce
 * is the record counter, so there is no header.  0, -ENOMEM or -EIO. */
static int start_tx(struct crypt *c, uint8_t header_out[CRYPT_HEADER_LEN])
{
	const uint8_t *key = c->initiator ? c->k_i2r : c->k_r2i;
	if (c->cipher == CRYPT_CIPHER_AES256GCM) {
		c->tx_seq = 0;
		return aesgcm_init(&c->gcm_tx, key, true);
	} else if (c->det_set) {
		/* The secretstream state from a given header is the same whether
		 * made by init_push or init_pull (libsodium: HChaCha20 of the
		 * key and header[0..16), nonce from header[16..24)). */
		memcpy(header_out, c->det.header, CRYPT_HEADER_LEN);
		crypto_secretstream_xchacha20poly1305_init_pull(&c->tx, header_out, key);
	} else {
		crypto_secretstream_xchacha20poly1305_init_push(&c->tx, header_out, key);
	}
	return 0;
}

/* Start our receiving direction: from the peer's secretstream header, */
static int start_rx(struct crypt *c, const uint8_t header[CRYPT_HEADER_LEN])
{
	const uint8_t *key = c->initiator ? c->k_r2i : c->k_i2r;
	return crypto_secretstream_xchacha20poly1305_init_pull(&c->rx, header, key) == 0 ? 0 : -EBADMSG;
}

/* ... or, for AES-256-GCM, by expanding the key (there is no header).
 * 0, -ENOMEM or -EIO. */
static int start_rx_aes(struct crypt *c)
{
	c->rx_seq = 0;
	return aesgcm_init(&c->gcm_rx, c->initiator ? c->k_r2i : c->k_i2r, false);
}

/* AES-256-GCM nonce of record `seq`: 4 zero bytes | seq, big-endian. */
static void gcm_nonce(uint8_t nonce[GCM_NONCE_LEN], uint64_t seq)
{
	memset(nonce, 0, 4);
	for (int i = 0; i < 8; i++)
		nonce[4 + i] = (uint8_t)(seq >> (56 - 8 * i));
}

/* One record; the length prefix is its AD.  Secretstream carries `tag`;
 * AES-256-GCM says confirmation or data by the record's place alone (the
 * first of a direction is the confirmation).  0, or -EOVERFLOW when the
 * AES-GCM nonces of this direction are spent, or -EIO if the AES-GCM
 * library fails.  A failure may have run the cipher part way under this
 * nonce, so the direction then counts as spent: it seals nothing more and
 * no nonce can ever be used twice (the caller closes the connection). */
static int seal_record(struct crypt *c, const uint8_t *m, size_t n, uint8_t *out, uint8_t tag,
		       size_t *len_out)
{
	if (c->cipher == CRYPT_CIPHER_AES256GCM) {
		if (c->tx_spent)
			return -EOVERFLOW;
		uint8_t nonce[GCM_NONCE_LEN];
		gcm_nonce(nonce, c->tx_seq);
		wr32(out, (uint32_t)(n + CRYPT_GCM_ABYTES));
		int rc = aesgcm_seal(&c->gcm_tx, out + CRYPT_LEN_LEN, m, n, out, CRYPT_LEN_LEN, nonce);
		if (rc < 0) {
			c->tx_spent = true;
			return -EIO;
		}
		if (c->tx_seq == UINT64_MAX)
			c->tx_spent = true;
		else
			c->tx_seq++;
		*len_out = CRYPT_LEN_LEN + n + CRYPT_GCM_ABYTES;
		return 0;
	}
	wr32(out, (uint32_t)(n + CRYPT_ABYTES));
	crypto_secretstream_xchacha20poly1305_push(&c->tx, out + CRYPT_LEN_LEN, NULL, m, n, out,
						   CRYPT_LEN_LEN, tag);
	*len_out = CRYPT_LEN_LEN + n + CRYPT_ABYTES;
	return 0;
}

int crypt_seal(struct crypt *c, const uint8_t *m, size_t n, uint8_t *out, size_t *len_out)
{
	*len_out = 0;
	if (c->state != S_OPEN || c->hs_out_len)
		return -ENOTCONN;
	if (n > CRYPT_MAX_PLAIN)
		return -EMSGSIZE;
	return seal_record(c, m, n, out, TAG_DATA, len_out);
}

/* Gather up to `want` handshake bytes into hs_in.  Returns true when full. */
static bool gather(struct crypt *c, const uint8_t **pp, const uint8_t *end, size_t want)
{
	size_t take = want - c->hs_have, avail = (size_t)(end - *pp);
	if (take > avail)
		take = avail;
	memcpy(c->hs_in + c->hs_have, *pp, take);
	*pp += take;
	c->hs_have += take;
	return c->hs_have == want;
}

/* Responder: a complete hello is in hs_in. */
static int on_hello(struct crypt *c)
{
	const uint8_t *h = c->hs_in;
	bool found = false;
	for (size_t i = 0; i < c->n_hashes && !found; i++) {
		if (crypt_hello_matches(h, c->hashes[i])) {
			memcpy(c->info_hash, c->hashes[i], CRYPT_INFO_HASH_LEN);
			found = true;
		}
	}
	if (!found && c->lookup && c->lookup(c->lookup_arg, h, c->info_hash) == 0)
		found = crypt_hello_matches(h, c->info_hash); /* trust, but verify */
	if (!found)
		return -ENOENT;
	c->have_hash = true;

	/* The offer is authentic (the tag covers it).  Reserved bits are
	 * ignored, so a later shoal may offer more. */
	c->flags = h[CRYPT_MAGIC_LEN];
	c->cipher = (c->flags & CRYPT_HELLO_FLAG_AES256GCM) && c->aes_ok ? CRYPT_CIPHER_AES256GCM
									 : CRYPT_CIPHER_XCHACHA20POLY1305;
	c->have_cipher = true;

	const uint8_t *pk_i = h + CRYPT_MAGIC_LEN + 1;
	uint8_t rx[32], tx[32];
	if (crypto_kx_server_session_keys(rx, tx, c->pk, c->sk, pk_i) != 0)
		return -EBADMSG; /* low-order point: no shared secret */
	derive_keys(c, rx, tx);
	sodium_memzero(rx, sizeof rx);
	sodium_memzero(tx, sizeof tx);

	/* reply = pk_r(32) [| cipher(1), unless flags 00]
	 *         | XChaCha: header_r2i(24) | confirmation(21)
	 *         | AES-GCM: confirmation(20) */
	uint8_t *o = c->hs_out;
	size_t n = 0, rec_len = 0;
	memcpy(o, c->pk, CRYPT_PK_LEN);
	n += CRYPT_PK_LEN;
	if (c->flags)
		o[n++] = (uint8_t)c->cipher;
	int rc = start_tx(c, o + n);
	if (rc < 0)
		return rc;
	if (c->cipher == CRYPT_CIPHER_XCHACHA20POLY1305)
		n += CRYPT_HEADER_LEN;
	rc = seal_record(c, NULL, 0, o + n, TAG_CONFIRM, &rec_len);
	if (rc < 0)
		return rc;
	c->hs_out_len = n + rec_len;
	c->hs_have = 0;
	if (c->cipher == CRYPT_CIPHER_AES256GCM) {
		c->state = S_AWAIT_CONFIRM;
		return start_rx_aes(c);
	}
	c->state = S_R_AWAIT_HEADER;
	return 0;
}

/* Initiator: pk_r [| cipher] are in hs_in. */
static int on_reply(struct crypt *c)
{
	c->cipher = CRYPT_CIPHER_XCHACHA20POLY1305;
	if (c->flags) {
		uint8_t id = c->hs_in[CRYPT_PK_LEN];
		if (id == CRYPT_CIPHER_AES256GCM && (c->flags & CRYPT_HELLO_FLAG_AES256GCM))
			c->cipher = CRYPT_CIPHER_AES256GCM;
		else if (id != CRYPT_CIPHER_XCHACHA20POLY1305)
			return -EBADMSG; /* a cipher we did not offer */
	}
	c->have_cipher = true;
	uint8_t rx[32], tx[32];
	if (crypto_kx_client_session_keys(rx, tx, c->pk, c->sk, c->hs_in) != 0)
		return -EBADMSG;
	derive_keys(c, tx, rx);
	sodium_memzero(rx, sizeof rx);
	sodium_memzero(tx, sizeof tx);
	c->hs_have = 0;
	if (c->cipher == CRYPT_CIPHER_AES256GCM) {
		c->state = S_AWAIT_CONFIRM;
		return start_rx_aes(c);
	}
	c->state = S_I_AWAIT_HEADER;
	return 0;
}

/* A record decrypted to `out` (n bytes) with secretstream tag `tag`. */
static int on_record(struct crypt *c, size_t n, uint8_t tag)
{
	if (c->state == S_AWAIT_CONFIRM) {
		if (tag != TAG_CONFIRM || n != 0)
			return -EBADMSG;
		if (c->initiator) {
			/* finish = XChaCha: header_i2r(24) | confirmation(21)
			 *        | AES-GCM: confirmation(20) */
			size_t at = c->cipher == CRYPT_CIPHER_AES256GCM ? 0 : CRYPT_HEADER_LEN, len = 0;
			int rc = start_tx(c, c->hs_out);
			if (rc < 0)
				return rc;
			rc = seal_record(c, NULL, 0, c->hs_out + at, TAG_CONFIRM, &len);
			if (rc < 0)
				return rc;
			c->hs_out_len = at + len;
		}
		c->state = S_OPEN;
		return 0;
	}
	return tag == TAG_DATA ? 1 : -EBADMSG;
}

/* Open the complete record `ct` (c->rec_len bytes) into `out`. */
static int open_record(struct crypt *c, const uint8_t *ct, uint8_t *out, size_t *out_len,
		       uint8_t *tag_out)
{
	unsigned long long mlen = 0;
	if (c->cipher == CRYPT_CIPHER_AES256GCM) {
		if (c->rx_spent)
			return -EOVERFLOW;
		uint8_t nonce[GCM_NONCE_LEN];
		gcm_nonce(nonce, c->rx_seq);
		if (aesgcm_open(&c->gcm_rx, out, ct, c->rec_len, c->len_in, CRYPT_LEN_LEN, nonce) != 0)
			return -EBADMSG;
		mlen = c->rec_len - CRYPT_GCM_ABYTES;
		*tag_out = c->rx_seq == 0 ? TAG_CONFIRM : TAG_DATA;
		if (c->rx_seq == UINT64_MAX)
			c->rx_spent = true;
		else
			c->rx_seq++;
	} else if (crypto_secretstream_xchacha20poly1305_pull(&c->rx, out, &mlen, tag_out, ct,
							      c->rec_len, c->len_in,
							      CRYPT_LEN_LEN) != 0) {
		return -EBADMSG;
	}
	*out_len = (size_t)mlen;
	return 0;
}

/* Read one record.  Returns 1 with a record decrypted into out, 0 if the
 * input ran out first, or an error. */
static int read_record(struct crypt *c, const uint8_t **pp, const uint8_t *end, uint8_t *out,
		       size_t *out_len, uint8_t *tag_out)
{
	const uint8_t *p = *pp;
	if (c->len_have < CRYPT_LEN_LEN) {
		size_t take = CRYPT_LEN_LEN - c->len_have, avail = (size_t)(end - p);
		if (take > avail)
			take = avail;
		memcpy(c->len_in + c->len_have, p, take);
		p += take;
		c->len_have += take;
		*pp = p;
		if (c->len_have < CRYPT_LEN_LEN)
			return 0;
		uint32_t len = rd32(c->len_in);
		uint32_t ab = c->cipher == CRYPT_CIPHER_AES256GCM ? CRYPT_GCM_ABYTES : CRYPT_ABYTES;
		/* Checked before a single ciphertext byte is stored.  A
		 * confirmation is empty: any other length cannot be one (and
		 * is not worth buffering to find out). */
		if (c->state == S_AWAIT_CONFIRM && len != ab)
			return -EBADMSG;
		if (len < ab || len > ab + CRYPT_MAX_PLAIN)
			return -EMSGSIZE;
		c->rec_len = len;
		c->rec_have = 0;
	}
	size_t avail = (size_t)(end - p);
	const uint8_t *ct;
	if (c->rec_have == 0 && avail >= c->rec_len) {
		ct = p; /* whole record in this chunk: decrypt in place */
		p += c->rec_len;
	} else {
		if (!c->rec && !(c->rec = malloc(CRYPT_ABYTES + CRYPT_MAX_PLAIN)))
			return -ENOMEM;
		size_t take = c->rec_len - c->rec_have;
		if (take > avail)
			take = avail;
		memcpy(c->rec + c->rec_have, p, take);
		p += take;
		c->rec_have += take;
		*pp = p;
		if (c->rec_have < c->rec_len)
			return 0;
		ct = c->rec;
	}
	*pp = p;
	int rc = open_record(c, ct, out, out_len, tag_out);
	if (rc < 0)
		return rc;
	c->len_have = 0;
	c->rec_have = 0;
	return 1;
}

int crypt_feed(struct crypt *c, const uint8_t **pp, const uint8_t *end, uint8_t *out,
	       size_t *out_len)
{
	*out_len = 0;
	if (c->err)
		return c->err;
	int rc;
	for (;;) {
		switch (c->state) {
		case S_R_AWAIT_HELLO: {
			bool full = gather(c, pp, end, CRYPT_HELLO_LEN);
			/* Refuse a foreign stream at its first wrong byte. */
			size_t upto = c->hs_have < CRYPT_MAGIC_LEN ? c->hs_have : CRYPT_MAGIC_LEN;
			for (size_t i = 0; i < upto; i++)
				if (c->hs_in[i] != magic[i])
					return fail(c, i == CRYPT_MAGIC_LEN - 1 ? -EPROTONOSUPPORT : -EPROTO);
			if (!full)
				return 0;
			if ((rc = on_hello(c)) < 0)
				return fail(c, rc);
			break;
		}
		case S_I_AWAIT_REPLY:
			if (!gather(c, pp, end, CRYPT_PK_LEN + (c->flags ? 1 : 0)))
				return 0;
			if ((rc = on_reply(c)) < 0)
				return fail(c, rc);
			break;
		case S_I_AWAIT_HEADER:
		case S_R_AWAIT_HEADER:
			if (!gather(c, pp, end, CRYPT_HEADER_LEN))
				return 0;
			c->hs_have = 0;
			c->state = S_AWAIT_CONFIRM;
			if ((rc = start_rx(c, c->hs_in)) < 0)
				return fail(c, rc);
			break;
		case S_AWAIT_CONFIRM:
		case S_OPEN: {
			uint8_t tag = 0;
			size_t n = 0;
			rc = read_record(c, pp, end, out, &n, &tag);
			if (rc <= 0)
				return rc < 0 ? fail(c, rc) : 0;
			rc = on_record(c, n, tag);
			if (rc < 0)
				return fail(c, rc);
			if (rc == 1) {
				*out_len = n;
				return 1;
			}
			break;
		}
		default:
			return fail(c, -EPROTO);
		}
	}
}

int crypt_finish(const struct crypt *c)
{
	if (c->err)
		return c->err;
	if (c->state != S_OPEN || c->len_have != 0)
		return -EBADMSG;
	return 0;
}
