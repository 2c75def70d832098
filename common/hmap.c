/* hmap.c: see hmap.h. */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/hmap.h"

#define HMAP_MIN_CAP 16

void hmap_clear(struct hmap *m)
{
	free(m->slots);
	m->slots = NULL;
	m->mask = 0;
	m->len = 0;
}

static void put(struct hmap_slot *slots, size_t mask, uint64_t hash, void *item)
{
	size_t i = (size_t)hash & mask;
	while (slots[i].item)
		i = (i + 1) & mask;
	slots[i].hash = hash;
	slots[i].item = item;
}

static int grow(struct hmap *m)
{
	size_t cap = m->slots ? (m->mask + 1) * 2 : HMAP_MIN_CAP;
	if (cap > SIZE_MAX / sizeof(struct hmap_slot))
		return -ENOMEM;
	struct hmap_slot *slots = calloc(cap, sizeof *slots);
	if (!slots)
		return -ENOMEM;
	if (m->slots)
		for (size_t i = 0; i <= m->mask; i++)
			if (m->slots[i].item)
				put(slots, cap - 1, m->slots[i].hash, m->slots[i].item);
	free(m->slots);
	m->slots = slots;
	m->mask = cap - 1;
	return 0;
}

int hmap_add(struct hmap *m, uint64_t hash, void *item)
{
	if (!item)
		return -EINVAL;
	if ((!m->slots || (m->len + 1) * 4 > (m->mask + 1) * 3) && grow(m) != 0)
		return -ENOMEM;
	put(m->slots, m->mask, hash, item);
	m->len++;
	return 0;
}

bool hmap_remove(struct hmap *m, uint64_t hash, const void *item)
{
	if (!m->slots)
		return false;
	size_t i = (size_t)hash & m->mask;
	while (m->slots[i].item && !(m->slots[i].item == item && m->slots[i].hash == hash))
		i = (i + 1) & m->mask;
	if (!m->slots[i].item)
		return false;
	/* Backward shift: pull later entries of the run into the hole when
	 * their home slot is not between the hole and where they sit. */
	for (size_t j = i;;) {
		j = (j + 1) & m->mask;
		if (!m->slots[j].item)
			break;
		size_t home = (size_t)m->slots[j].hash & m->mask;
		bool stays = i <= j ? (i < home && home <= j) : (i < home || home <= j);
		if (stays)
			continue;
		m->slots[i] = m->slots[j];
		i = j;
	}
	m->slots[i].item = NULL;
	m->slots[i].hash = 0;
	m->len--;
	return true;
}

void *hmap_next(const struct hmap *m, uint64_t hash, size_t *pos)
{
	if (!m->slots)
		return NULL;
	/* *pos: 0 before the first call, else 1 + the slot to look at next. */
	size_t i = *pos ? *pos - 1 : (size_t)hash & m->mask;
	while (m->slots[i].item) {
		size_t here = i;
		i = (i + 1) & m->mask;
		if (m->slots[here].hash == hash) {
			*pos = i + 1;
			return m->slots[here].item;
		}
	}
	*pos = i + 1;
	return NULL;
}

/* A 64-bit mix (the finaliser of splitmix64): every input bit reaches
 * every output bit, so the low bits used as the slot index are good even
 * for sequential ids. */
uint64_t hmap_hash_u64(uint64_t v)
{
	v += 0x9e3779b97f4a7c15ull;
	v = (v ^ (v >> 30)) * 0xbf58476d1ce4e5b9ull;
	v = (v ^ (v >> 27)) * 0x94d049bb133111ebull;
	return v ^ (v >> 31);
}

uint64_t hmap_hash_bytes(const void *p, size_t n)
{
	const unsigned char *b = p;
	uint64_t h = 0x6a09e667f3bcc908ull ^ (uint64_t)n;
	while (n >= 8) {
		uint64_t w;
		memcpy(&w, b, 8);
		h = hmap_hash_u64(h ^ w);
		b += 8;
		n -= 8;
	}
	uint64_t w = 0;
	memcpy(&w, b, n);
	return hmap_hash_u64(h ^ w);
}
