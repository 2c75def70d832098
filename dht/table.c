/* table.c: the Kademlia routing table of BEP 5 (k-buckets over the XOR metric,
 * only the bucket holding our own id splits, good/questionable/bad nodes). */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/bytes.h"
#include "dht/dht-internal.h"

enum { DHT_NODE_PINGED = 4 };

bool dht_node_bad(const struct dht_node *n)
{
	return n->fails >= DHT_MAX_FAILS;
}

/* BEP 5: good if it answered one of our queries in the last 15 minutes, or
 * has ever answered and queried us in the last 15 minutes. */
bool dht_node_good(const struct dht_node *n, uint64_t now)
{
	if (dht_node_bad(n) || !(n->flags & DHT_NODE_REPLIED))
		return false;
	if (now - n->last_reply < DHT_GOOD_MS)
		return true;
	return (n->flags & DHT_NODE_QUERIED) && now - n->last_query < DHT_GOOD_MS;
}

int dht_table_init(struct dht_table *t, const uint8_t self[DHT_ID_LEN])
{
	memcpy(t->self, self, DHT_ID_LEN);
	t->b = calloc(1, sizeof *t->b);
	if (!t->b)
		return -ENOMEM;
	t->nb = 1;
	t->cap = 1;
	return 0;
}

void dht_table_destroy(struct dht_table *t)
{
	free(t->b);
	t->b = NULL;
	t->nb = t->cap = 0;
}

size_t dht_table_bucket_of(const struct dht_table *t, const uint8_t id[DHT_ID_LEN])
{
	size_t p = dht_id_prefix(t->self, id);
	return p < t->nb - 1 ? p : t->nb - 1;
}

static struct dht_node *bucket_find(struct dht_node *arr, size_t n, const uint8_t id[DHT_ID_LEN])
{
	for (size_t i = 0; i < n; i++)
		if (memcmp(arr[i].id, id, DHT_ID_LEN) == 0)
			return &arr[i];
	return NULL;
}

struct dht_node *dht_table_find(struct dht_table *t, const uint8_t id[DHT_ID_LEN])
{
	struct dht_bucket *b = &t->b[dht_table_bucket_of(t, id)];
	return bucket_find(b->nodes, b->n, id);
}

static void note(struct dht_node *n, enum dht_seen how, uint64_t now)
{
	if (how == DHT_SEEN_REPLY) {
		n->flags |= DHT_NODE_REPLIED;
		n->last_reply = now;
		n->fails = 0;
	} else if (how == DHT_SEEN_QUERY) {
		n->flags |= DHT_NODE_QUERIED;
		n->last_query = now;
	}
}

static void init_node(struct dht_node *n, const uint8_t id[DHT_ID_LEN],
		      const struct dht_addr *addr, enum dht_seen how, uint64_t now)
{
	memset(n, 0, sizeof *n);
	memcpy(n->id, id, DHT_ID_LEN);
	n->addr = *addr;
	note(n, how, now);
}

/* Split the last bucket: ids sharing more than nb-1 bits with us move on. */
static int split(struct dht_table *t)
{
	if (t->nb == t->cap) {
		size_t cap = t->cap * 2 > DHT_MAX_BUCKETS ? DHT_MAX_BUCKETS : t->cap * 2;
		struct dht_bucket *nb = realloc(t->b, cap * sizeof *nb);
		if (!nb)
			return -ENOMEM;
		t->b = nb;
		t->cap = cap;
	}
	size_t last = t->nb - 1;
	struct dht_bucket *old = &t->b[last], *fresh = &t->b[last + 1];
	memset(fresh, 0, sizeof *fresh);
	fresh->last_changed = old->last_changed;
	t->nb++;
	uint8_t keep = 0, keep_r = 0;
	for (size_t i = 0; i < old->n; i++) {
		if (dht_id_prefix(t->self, old->nodes[i].id) > last)
			fresh->nodes[fresh->n++] = old->nodes[i];
		else
			old->nodes[keep++] = old->nodes[i];
	}
	old->n = keep;
	for (size_t i = 0; i < old->nrepl; i++) {
		if (dht_id_prefix(t->self, old->repl[i].id) > last)
			fresh->repl[fresh->nrepl++] = old->repl[i];
		else
			old->repl[keep_r++] = old->repl[i];
	}
	old->nrepl = keep_r;
	return 0;
}

static void remember_candidate(struct dht_bucket *b, const uint8_t id[DHT_ID_LEN],
			       const struct dht_addr *addr, enum dht_seen how, uint64_t now)
{
	struct dht_node *c = bucket_find(b->repl, b->nrepl, id);
	struct dht_node tmp;
	if (c) {
		tmp = *c;
		if (!dht_addr_eq(&tmp.addr, addr))
			return;
		/* move it to the newest position */
		size_t idx = (size_t)(c - b->repl);
		memmove(&b->repl[idx], &b->repl[idx + 1], (b->nrepl - idx - 1) * sizeof *c);
		b->nrepl--;
		note(&tmp, how, now);
	} else {
		init_node(&tmp, id, addr, how, now);
	}
	if (b->nrepl == DHT_REPL) {
		memmove(&b->repl[0], &b->repl[1], (DHT_REPL - 1) * sizeof tmp);
		b->nrepl--;
	}
	b->repl[b->nrepl++] = tmp;
}

/* When an endpoint answers under a new id, the old id at that address is
 * stale (the node restarted): mark it bad so it is replaced first. */
static void retire_address(struct dht_table *t, const uint8_t id[DHT_ID_LEN],
			   const struct dht_addr *addr)
{
	for (size_t i = 0; i < t->nb; i++)
		for (size_t j = 0; j < t->b[i].n; j++) {
			struct dht_node *n = &t->b[i].nodes[j];
			if (dht_addr_eq(&n->addr, addr) && memcmp(n->id, id, DHT_ID_LEN) != 0)
				n->fails = DHT_MAX_FAILS;
		}
}

int dht_table_seen(struct dht_table *t, const uint8_t id[DHT_ID_LEN], const struct dht_addr *addr,
		   enum dht_seen how, uint64_t now, struct dht_node *ping_out)
{
	if (memcmp(id, t->self, DHT_ID_LEN) == 0)
		return -EINVAL;
	size_t bi = dht_table_bucket_of(t, id);
	struct dht_bucket *b = &t->b[bi];
	struct dht_node *n = bucket_find(b->nodes, b->n, id);
	if (n) {
		if (!dht_addr_eq(&n->addr, addr)) {
			/* Keep the address we know unless it stopped answering:
			 * otherwise anyone could redirect a good node. */
			if (!dht_node_bad(n) || how != DHT_SEEN_REPLY)
				return -EEXIST;
			n->addr = *addr;
		}
		note(n, how, now);
		if (how == DHT_SEEN_REPLY)
			b->last_changed = now;
		return 0;
	}
	if (how == DHT_SEEN_REPLY)
		retire_address(t, id, addr);
	for (;;) {
		if (b->n < DHT_K) {
			init_node(&b->nodes[b->n++], id, addr, how, now);
			b->last_changed = now;
			struct dht_node *c = bucket_find(b->repl, b->nrepl, id);
			if (c) {
				size_t idx = (size_t)(c - b->repl);
				memmove(&b->repl[idx], &b->repl[idx + 1],
					(b->nrepl - idx - 1) * sizeof *c);
				b->nrepl--;
			}
			return 0;
		}
		if (bi != t->nb - 1 || t->nb >= DHT_MAX_BUCKETS)
			break;
		int rc = split(t);
		if (rc)
			return rc;
		bi = dht_table_bucket_of(t, id);
		b = &t->b[bi];
	}
	for (size_t i = 0; i < b->n; i++) {
		if (dht_node_bad(&b->nodes[i])) {
			init_node(&b->nodes[i], id, addr, how, now);
			b->last_changed = now;
			return 0;
		}
	}
	if (how == DHT_SEEN_UNVERIFIED)
		return -ENOSPC;
	remember_candidate(b, id, addr, how, now);
	/* Kademlia keeps old nodes that still answer: check the stalest
	 * questionable one, and let the candidate in only if it fails. */
	struct dht_node *stale = NULL;
	for (size_t i = 0; i < b->n; i++) {
		struct dht_node *q = &b->nodes[i];
		if (dht_node_good(q, now))
			continue;
		if ((q->flags & DHT_NODE_PINGED) &&
		    now - q->pinged_at < (uint64_t)DHT_QUERY_TIMEOUT_MS * (DHT_PING_RETRIES + 2))
			continue;
		uint64_t qa = q->flags & DHT_NODE_REPLIED ? q->last_reply : 0;
		uint64_t sa = stale && (stale->flags & DHT_NODE_REPLIED) ? stale->last_reply : 0;
		if (!stale || qa < sa)
			stale = q;
	}
	if (!stale)
		return -ENOSPC;
	stale->flags |= DHT_NODE_PINGED;
	stale->pinged_at = now;
	*ping_out = *stale;
	return 1;
}

void dht_table_failed(struct dht_table *t, const uint8_t id[DHT_ID_LEN],
		      const struct dht_addr *addr)
{
	struct dht_bucket *b = &t->b[dht_table_bucket_of(t, id)];
	struct dht_node *n = bucket_find(b->nodes, b->n, id);
	if (!n || !dht_addr_eq(&n->addr, addr))
		return;
	if (n->fails < UINT8_MAX)
		n->fails++;
	if (dht_node_bad(n) && b->nrepl > 0) {
		*n = b->repl[--b->nrepl];
		n->flags &= (uint8_t)~DHT_NODE_PINGED;
	}
}

size_t dht_table_closest(const struct dht_table *t, const uint8_t target[DHT_ID_LEN],
			 struct dht_node *out, size_t max)
{
	size_t cnt = 0;
	for (size_t i = 0; i < t->nb; i++) {
		for (size_t j = 0; j < t->b[i].n; j++) {
			const struct dht_node *n = &t->b[i].nodes[j];
			if (dht_node_bad(n))
				continue;
			size_t pos = cnt;
			while (pos > 0 && dht_id_cmp_dist(target, n->id, out[pos - 1].id) < 0)
				pos--;
			if (pos >= max)
				continue;
			size_t last = cnt < max ? cnt : max - 1;
			memmove(&out[pos + 1], &out[pos], (last - pos) * sizeof *out);
			out[pos] = *n;
			if (cnt < max)
				cnt++;
		}
	}
	return cnt;
}

void dht_table_count(const struct dht_table *t, uint64_t now, size_t *good_out, size_t *total_out)
{
	size_t good = 0, total = 0;
	for (size_t i = 0; i < t->nb; i++)
		for (size_t j = 0; j < t->b[i].n; j++) {
			const struct dht_node *n = &t->b[i].nodes[j];
			if (dht_node_bad(n))
				continue;
			total++;
			good += dht_node_good(n, now);
		}
	*good_out = good;
	*total_out = total;
}


void dht_table_random_in_bucket(const struct dht_table *t, size_t i, const uint8_t rnd[DHT_ID_LEN],
				uint8_t out[DHT_ID_LEN])
{
	memcpy(out, rnd, DHT_ID_LEN);
	for (size_t bit = 0; bit < i && bit < DHT_MAX_BUCKETS; bit++)
		bit_put(out, bit, bit_get(t->self, bit));
	if (i < t->nb - 1)
		bit_put(out, i, !bit_get(t->self, i));
}
