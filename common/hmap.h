/* hmap.h: a hash index of pointers, for finding records by a key in O(1).
 *
 * The map stores (hash, item) pairs and never looks inside an item: the
 * caller hashes its key (hmap_hash_bytes, hmap_hash_u64) and, when looking
 * up, checks each candidate with that hash for a real match.  Several items
 * may share a hash, or even a key.  The map owns only its slot array; the
 * items belong to whoever added them, and an item must be removed before it
 * is freed.
 *
 * Open addressing with linear probing and backward-shift deletion (no
 * tombstones), kept at most 3/4 full; lookups, adds and removes are O(1) on
 * average.  The hash functions are seeded with a constant: keys come from
 * the local user (swarm ids, info-hashes of swarms it added, paths), so
 * nobody outside can fill one chain; a remote peer can only look up. */
#ifndef SHOAL_COMMON_HMAP_H
#define SHOAL_COMMON_HMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct hmap_slot {
	uint64_t hash;
	void *item; /* NULL: empty */
};

struct hmap {
	struct hmap_slot *slots; /* owned; NULL while empty */
	size_t mask;             /* capacity - 1 (capacity is a power of two) */
	size_t len;
};

#define HMAP_INIT { NULL, 0, 0 }

/* Free the slot array (not the items); the map is empty and usable after. */
void hmap_clear(struct hmap *m);

/* Add `item` (not NULL) under `hash`.  Returns 0 or -ENOMEM (map unchanged). */
int hmap_add(struct hmap *m, uint64_t hash, void *item) __attribute__((warn_unused_result));

/* Remove the entry (hash, item).  Returns false when it is not there. */
bool hmap_remove(struct hmap *m, uint64_t hash, const void *item);

/* Walk the items added under `hash`: start with *pos = 0, call until NULL.
 * The map must not change during the walk. */
void *hmap_next(const struct hmap *m, uint64_t hash, size_t *pos);

static inline size_t hmap_len(const struct hmap *m)
{
	return m->len;
}

uint64_t hmap_hash_bytes(const void *p, size_t n);
uint64_t hmap_hash_u64(uint64_t v);

#endif
