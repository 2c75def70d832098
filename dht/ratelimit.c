/* ratelimit.c: per-source token buckets in a fixed-size set-associative
 * table, so a flood from any number of addresses costs bounded memory. */
#include "config.h"

#include <sodium.h>
#include <string.h>

#include "dht/dht-internal.h"

void dht_rl_init(struct dht_ratelimit *rl, uint32_t rate, uint32_t burst, bool key_port,
		 uint32_t global_rate, const uint8_t hashkey[16])
{
	memset(rl, 0, sizeof *rl);
	rl->rate = rate;
	rl->burst = burst ? burst : 1;
	rl->key_port = key_port;
	rl->global_rate = global_rate;
	memcpy(rl->hashkey, hashkey, 16);
}

/* Refill by the time elapsed, then take one packet (1000 milli-tokens). */
static bool take(struct dht_rl_slot *s, uint32_t rate, uint32_t burst, uint64_t now)
{
	uint64_t cap = (uint64_t)burst * 1000;
	if (now > s->last_ms) {
		uint64_t add = (now - s->last_ms) * rate; /* ms * pkt/s = milli-packets */
		uint64_t t = s->tokens + add;
		s->tokens = (uint32_t)(t > cap ? cap : t);
		s->last_ms = now;
	}
	if (s->tokens < 1000)
		return false;
	s->tokens -= 1000;
	return true;
}

bool dht_rl_allow(struct dht_ratelimit *rl, const struct dht_addr *a, uint64_t now)
{
	if (rl->global_rate) {
		if (rl->global.key == 0) {
			rl->global.key = 1;
			rl->global.last_ms = now;
			rl->global.tokens = rl->global_rate * 1000;
		}
		if (!take(&rl->global, rl->global_rate, rl->global_rate, now))
			return false;
	}
	if (rl->rate == 0)
		return true;
	uint8_t msg[2 + 2 + 16];
	size_t len = 0;
	memcpy(msg, &a->family, 2);
	len += 2;
	if (rl->key_port) {
		memcpy(msg + len, &a->port, 2);
		len += 2;
	}
	memcpy(msg + len, a->ip, 16);
	len += 16;
	uint8_t h[crypto_shorthash_BYTES];
	crypto_shorthash(h, msg, len, rl->hashkey);
	uint64_t key;
	memcpy(&key, h, sizeof key);
	key |= 1; /* 0 marks an empty slot */
	struct dht_rl_slot *set = rl->slots[(key >> 1) % DHT_RL_SETS];
	struct dht_rl_slot *s = NULL, *victim = &set[0];
	for (size_t i = 0; i < DHT_RL_WAYS; i++) {
		if (set[i].key == key) {
			s = &set[i];
			break;
		}
		if (victim->key != 0 && (set[i].key == 0 || set[i].last_ms < victim->last_ms))
			victim = &set[i];
	}
	if (!s) {
		/* A new source evicts the set's least recently active one and
		 * starts with a full bucket. */
		s = victim;
		s->key = key;
		s->last_ms = now;
		s->tokens = rl->burst * 1000;
	}
	return take(s, rl->rate, rl->burst, now);
}
