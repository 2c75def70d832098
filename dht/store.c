/* store.c: peers announced to us (BEP 5 announce_peer), per info-hash, with
 * expiry and hard caps on keys, peers per key and peers in total. */
#include "config.h"

#include <errno.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "dht/dht-internal.h"

int dht_store_init(struct dht_store *s, size_t max_keys, size_t max_per_key, size_t max_peers,
		   const uint8_t hashkey[16])
{
	memset(s, 0, sizeof *s);
	/* About one chain per two keys; a power of two for cheap masking. */
	size_t nslots = 16;
	while (nslots < max_keys / 2 && nslots < (1u << 20))
		nslots *= 2;
	s->slots = calloc(nslots, sizeof *s->slots);
	if (!s->slots)
		return -ENOMEM;
	s->nslots = nslots;
	s->max_keys = max_keys;
	s->max_per_key = max_per_key;
	s->max_peers = max_peers;
	memcpy(s->hashkey, hashkey, 16);
	s->bytes = nslots * sizeof *s->slots;
	return 0;
}

void dht_store_destroy(struct dht_store *s)
{
	for (size_t i = 0; s->slots && i < s->nslots; i++) {
		struct dht_store_key *k = s->slots[i];
		while (k) {
			struct dht_store_key *next = k->next;
			free(k->peers);
			free(k);
			k = next;
		}
	}
	free(s->slots);
	memset(s, 0, sizeof *s);
}

/* Keys are chosen by remote nodes, so chains are placed with a keyed hash
 * (SipHash) that they cannot aim at one slot. */
static size_t slot_of(const struct dht_store *s, const uint8_t key[DHT_ID_LEN])
{
	uint8_t h[crypto_shorthash_BYTES];
	crypto_shorthash(h, key, DHT_ID_LEN, s->hashkey);
	uint64_t v;
	memcpy(&v, h, sizeof v);
	return (size_t)(v & (s->nslots - 1));
}

static struct dht_store_key *find_key(const struct dht_store *s, const uint8_t key[DHT_ID_LEN],
				      struct dht_store_key ***link_out)
{
	struct dht_store_key **link = &s->slots[slot_of(s, key)];
	while (*link && memcmp((*link)->key, key, DHT_ID_LEN) != 0)
		link = &(*link)->next;
	if (link_out)
		*link_out = link;
	return *link;
}

int dht_store_add(struct dht_store *s, const uint8_t key[DHT_ID_LEN],
		  const struct dht_addr *peer, uint64_t now)
{
	struct dht_store_key **link;
	struct dht_store_key *k = find_key(s, key, &link);
	if (k) {
		for (uint32_t i = 0; i < k->n; i++)
			if (dht_addr_eq(&k->peers[i].addr, peer)) {
				k->peers[i].expires = now + DHT_PEER_TTL_MS;
				return 0;
			}
	} else {
		if (s->keys >= s->max_keys || s->peers >= s->max_peers)
			return -ENOSPC;
		k = calloc(1, sizeof *k);
		if (!k)
			return -ENOMEM;
		memcpy(k->key, key, DHT_ID_LEN);
		*link = k;
		s->keys++;
		s->bytes += sizeof *k;
	}
	if (k->n >= s->max_per_key) {
		/* Full: the peer heard from longest ago makes room. */
		uint32_t old = 0;
		for (uint32_t i = 1; i < k->n; i++)
			if (k->peers[i].expires < k->peers[old].expires)
				old = i;
		k->peers[old].addr = *peer;
		k->peers[old].expires = now + DHT_PEER_TTL_MS;
		return 0;
	}
	if (s->peers >= s->max_peers)
		return -ENOSPC; /* not for a new key: checked above */
	if (k->n == k->cap) {
		uint32_t cap = k->cap ? k->cap * 2 : 4;
		if (cap > s->max_per_key)
			cap = (uint32_t)s->max_per_key;
		struct dht_store_peer *np = realloc(k->peers, cap * sizeof *np);
		if (!np) {
			if (k->n == 0) { /* the key we just made: undo it */
				*link = k->next;
				s->bytes -= sizeof *k;
				free(k->peers);
				free(k);
				s->keys--;
			}
			return -ENOMEM;
		}
		s->bytes += (cap - k->cap) * sizeof *np;
		k->peers = np;
		k->cap = cap;
	}
	k->peers[k->n].addr = *peer;
	k->peers[k->n].expires = now + DHT_PEER_TTL_MS;
	k->n++;
	s->peers++;
	return 0;
}

size_t dht_store_get(const struct dht_store *s, const uint8_t key[DHT_ID_LEN], uint64_t now,
		     size_t offset, struct dht_addr *out, size_t max)
{
	const struct dht_store_key *k = find_key(s, key, NULL);
	if (!k || k->n == 0)
		return 0;
	size_t cnt = 0;
	for (uint32_t j = 0; j < k->n && cnt < max; j++) {
		const struct dht_store_peer *p = &k->peers[(offset + j) % k->n];
		if (p->expires > now)
			out[cnt++] = p->addr;
	}
	return cnt;
}

void dht_store_expire(struct dht_store *s, uint64_t now)
{
	for (size_t i = 0; i < s->nslots; i++) {
		struct dht_store_key **link = &s->slots[i];
		while (*link) {
			struct dht_store_key *k = *link;
			uint32_t keep = 0;
			for (uint32_t j = 0; j < k->n; j++)
				if (k->peers[j].expires > now)
					k->peers[keep++] = k->peers[j];
			s->peers -= k->n - keep;
			k->n = keep;
			if (keep == 0) {
				*link = k->next;
				s->bytes -= sizeof *k + k->cap * sizeof *k->peers;
				free(k->peers);
				free(k);
				s->keys--;
			} else {
				link = &k->next;
			}
		}
	}
}
