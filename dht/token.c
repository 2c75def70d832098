/* token.c: announce_peer write tokens (BEP 5), keyed BLAKE2b over the
 * requester's IP with a secret that rotates every five minutes. */
#include "config.h"

#include <sodium.h>
#include <string.h>

#include "dht/dht-internal.h"

void dht_tokens_init(struct dht_tokens *tk, uint64_t now, dht_random_fn rnd, void *rctx)
{
	memset(tk, 0, sizeof *tk);
	rnd(rctx, tk->secret[0], sizeof tk->secret[0]);
	tk->rotated_at = now;
	tk->have_prev = false;
}

void dht_tokens_advance(struct dht_tokens *tk, uint64_t now, dht_random_fn rnd, void *rctx)
{
	if (now < tk->rotated_at)
		return; /* a clock that went backwards changes nothing */
	uint64_t periods = (now - tk->rotated_at) / DHT_TOKEN_ROTATE_MS;
	if (periods == 0)
		return;
	if (periods == 1) {
		memcpy(tk->secret[1], tk->secret[0], sizeof tk->secret[0]);
		tk->have_prev = true;
	} else {
		/* Both secrets are too old: no earlier token may survive. */
		rnd(rctx, tk->secret[1], sizeof tk->secret[1]);
		tk->have_prev = false;
	}
	rnd(rctx, tk->secret[0], sizeof tk->secret[0]);
	tk->rotated_at += periods * DHT_TOKEN_ROTATE_MS;
}

static void token_with(const uint8_t secret[32], const struct dht_addr *a,
		       uint8_t out[DHT_TOKEN_LEN])
{
	uint8_t h[crypto_generichash_BYTES_MIN];
	/* BEP 5 binds the token to the IP only, so a node may announce from the
	 * same host through another port (implied_port behind NAT). */
	crypto_generichash(h, sizeof h, a->ip, dht_addr_iplen(a), secret, 32);
	memcpy(out, h, DHT_TOKEN_LEN);
}

void dht_token_make(const struct dht_tokens *tk, const struct dht_addr *a,
		    uint8_t out[DHT_TOKEN_LEN])
{
	token_with(tk->secret[0], a, out);
}

bool dht_token_check(const struct dht_tokens *tk, const struct dht_addr *a, const uint8_t *tok,
		     size_t len)
{
	uint8_t want[DHT_TOKEN_LEN];
	if (len != DHT_TOKEN_LEN)
		return false;
	token_with(tk->secret[0], a, want);
	if (sodium_memcmp(want, tok, DHT_TOKEN_LEN) == 0)
		return true;
	if (!tk->have_prev)
		return false;
	token_with(tk->secret[1], a, want);
	return sodium_memcmp(want, tok, DHT_TOKEN_LEN) == 0;
}
