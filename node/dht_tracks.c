/* dht_tracks.c: see dht_tracks.h. */
#include "config.h"

#include "node/dht_tracks.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/hmap.h"
#include "common/log.h"
#include "common/util.h"
#include "node/node.h"
#include "node/swarm.h"

#define DHTT_ANNOUNCE_MS (15 * 60 * 1000) /* re-announce: stored peers live 30 min */
#define DHTT_DOWNLOAD_LOOKUP_MS (60 * 1000) /* a downloading swarm looks for more peers */
#define DHTT_LONELY_LOOKUP_MS (15 * 1000)   /* ... sooner while the DHT gave it none */
#define DHTT_RETRY_MIN_MS (5 * 1000)        /* a lookup that failed, doubling ... */
#define DHTT_RETRY_MAX_MS (5 * 60 * 1000)   /* ... up to this */
#define DHTT_BUSY_RETRY_MS 1000             /* the library had no lookup slot */
#define DHTT_CHANGE_SYNC_MS 1000            /* a changed swarm list is walked this soon */

#define NOT_QUEUED SIZE_MAX

/* Lookup state of one track in one family. */
struct fam {
	bool running;              /* a dht_get_peers lookup is in flight */
	bool announcing;           /* ... and it announces */
	uint64_t next_lookup_ms;   /* downloading swarms: next plain lookup */
	uint64_t next_announce_ms; /* next lookup that also announces */
	uint64_t retry_ms;         /* current backoff after a failure, 0 = none */
	uint64_t lookups;          /* finished */
	unsigned last_responded, last_announced;
	uint64_t due_ms;           /* heap key while queued */
	size_t hpos;               /* index in the family's heap, or NOT_QUEUED */
};

struct track {
	int64_t swarm_id;
	uint8_t key[DHT_ID_LEN];
	bool active;               /* runnable with a transfer at the last sync */
	bool downloading;          /* ... and downloading (looks up between announces) */
	uint64_t seen;             /* sync round that last saw its swarm */
	uint64_t peers_found;      /* handed to the engine */
	struct fam fam[DHTT_FAMS];
	struct track *next, *prev; /* every track, newest first */
};

struct heap {
	struct track **t;
	size_t n, cap;
};

struct dht_tracks {
	struct track *all;
	size_t count;
	struct hmap by_key;        /* t->key */
	struct hmap by_swarm;      /* t->swarm_id */
	struct heap heap[DHTT_FAMS];
	unsigned running[DHTT_FAMS];
	uint64_t round;            /* sync rounds */
	uint64_t synced_gen;       /* node->swarm_ix.gen at the last sync */
	uint64_t next_sync_ms;     /* the safety-net walk */
	uint64_t last_sync_ms;
	/* The library refused a start for every key (an empty routing table,
	 * no lookup slot): nothing starts in that family before this. */
	uint64_t blocked_until[DHTT_FAMS];
	bool want_sync;
};

/* ------------------------------------------------------------ heap */

static bool earlier(const struct heap *h, int f, size_t a, size_t b)
{
	return h->t[a]->fam[f].due_ms < h->t[b]->fam[f].due_ms;
}

static void heap_set(struct heap *h, int f, size_t i, struct track *t)
{
	h->t[i] = t;
	t->fam[f].hpos = i;
}

static void sift_up(struct heap *h, int f, size_t i)
{
	while (i > 0 && earlier(h, f, i, (i - 1) / 2)) {
		struct track *up = h->t[(i - 1) / 2];
		heap_set(h, f, (i - 1) / 2, h->t[i]);
		heap_set(h, f, i, up);
		i = (i - 1) / 2;
	}
}

static void sift_down(struct heap *h, int f, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;
		if (l < h->n && earlier(h, f, l, m))
			m = l;
		if (r < h->n && earlier(h, f, r, m))
			m = r;
		if (m == i)
			return;
		struct track *down = h->t[m];
		heap_set(h, f, m, h->t[i]);
		heap_set(h, f, i, down);
		i = m;
	}
}

static void heap_remove(struct heap *h, int f, struct track *t)
{
	size_t i = t->fam[f].hpos;
	if (i == NOT_QUEUED)
		return;
	t->fam[f].hpos = NOT_QUEUED;
	struct track *last = h->t[--h->n];
	if (i == h->n)
		return;
	heap_set(h, f, i, last);
	sift_up(h, f, i);
	sift_down(h, f, last->fam[f].hpos);
}

/* Queue (or re-queue) t in family f at its due time.  Out of memory: the
 * track stays unqueued and the next sync tries again. */
static void heap_put(struct heap *h, int f, struct track *t)
{
	struct fam *fm = &t->fam[f];
	fm->due_ms = fm->next_announce_ms;
	if (t->downloading && fm->next_lookup_ms < fm->due_ms)
		fm->due_ms = fm->next_lookup_ms;
	if (fm->hpos != NOT_QUEUED) {
		sift_up(h, f, fm->hpos);
		sift_down(h, f, fm->hpos);
		return;
	}
	if (h->n == h->cap) {
		size_t cap = h->cap ? h->cap * 2 : 64;
		struct track **nt = realloc(h->t, cap * sizeof *nt);
		if (!nt) {
			log_warn("DHT: out of memory scheduling swarm %lld", (long long)t->swarm_id);
			return;
		}
		h->t = nt;
		h->cap = cap;
	}
	heap_set(h, f, h->n++, t);
	sift_up(h, f, h->n - 1);
}

/* Queued when it is active and no lookup runs; otherwise not. */
static void schedule(struct dht_tracks *tt, struct track *t, int f)
{
	if (t->active && !t->fam[f].running)
		heap_put(&tt->heap[f], f, t);
	else
		heap_remove(&tt->heap[f], f, t);
}

/* ------------------------------------------------------------ tracks */

static uint64_t key_hash(const uint8_t key[DHT_ID_LEN])
{
	return hmap_hash_bytes(key, DHT_ID_LEN);
}

static struct track *by_key(const struct dht_tracks *tt, const uint8_t key[DHT_ID_LEN])
{
	size_t pos = 0;
	for (struct track *t; (t = hmap_next(&tt->by_key, key_hash(key), &pos));)
		if (memcmp(t->key, key, DHT_ID_LEN) == 0)
			return t;
	return NULL;
}

static struct track *find(const struct dht_tracks *tt, int64_t swarm_id, const uint8_t *key)
{
	size_t pos = 0;
	for (struct track *t; (t = hmap_next(&tt->by_swarm, hmap_hash_u64((uint64_t)swarm_id), &pos));)
		if (t->swarm_id == swarm_id && memcmp(t->key, key, DHT_ID_LEN) == 0)
			return t;
	return NULL;
}

static struct track *add(struct dht_tracks *tt, int64_t swarm_id, const uint8_t *key)
{
	struct track *t = calloc(1, sizeof *t);
	if (!t)
		return NULL;
	t->swarm_id = swarm_id;
	memcpy(t->key, key, DHT_ID_LEN);
	for (int f = 0; f < DHTT_FAMS; f++)
		t->fam[f].hpos = NOT_QUEUED;
	if (hmap_add(&tt->by_key, key_hash(key), t) != 0) {
		free(t);
		return NULL;
	}
	if (hmap_add(&tt->by_swarm, hmap_hash_u64((uint64_t)swarm_id), t) != 0) {
		(void)hmap_remove(&tt->by_key, key_hash(key), t);
		free(t);
		return NULL;
	}
	t->next = tt->all;
	if (tt->all)
		tt->all->prev = t;
	tt->all = t;
	tt->count++;
	return t;
}

/* A lookup still in flight for it ends in the library later and finds no
 * track (or another one with the key, which ignores a result it did not
 * start: `running` is false there). */
static void drop(struct dht_tracks *tt, struct track *t)
{
	for (int f = 0; f < DHTT_FAMS; f++) {
		heap_remove(&tt->heap[f], f, t);
		if (t->fam[f].running)
			tt->running[f]--;
	}
	(void)hmap_remove(&tt->by_key, key_hash(t->key), t);
	(void)hmap_remove(&tt->by_swarm, hmap_hash_u64((uint64_t)t->swarm_id), t);
	if (t->prev)
		t->prev->next = t->next;
	else
		tt->all = t->next;
	if (t->next)
		t->next->prev = t->prev;
	tt->count--;
	free(t);
}

struct dht_tracks *dht_tracks_new(void)
{
	struct dht_tracks *tt = calloc(1, sizeof *tt);
	if (tt)
		tt->want_sync = true;
	return tt;
}

void dht_tracks_free(struct dht_tracks *tt)
{
	if (!tt)
		return;
	while (tt->all) {
		struct track *t = tt->all;
		tt->all = t->next;
		free(t);
	}
	hmap_clear(&tt->by_key);
	hmap_clear(&tt->by_swarm);
	for (int f = 0; f < DHTT_FAMS; f++)
		free(tt->heap[f].t);
	free(tt);
}

/* ------------------------------------------------------------ sync */

/* A swarm the transfer engine runs and that can use peers: worth
 * announcing and looking up. */
static bool swarm_active(const struct swarm *sw)
{
	return sw->has_info_hash && !sw->remove_pending && sw->xfer &&
	       (sw->state == SWARM_SEEDING || sw->state == SWARM_DOWNLOADING ||
		sw->state == SWARM_METADATA);
}

static bool swarm_downloading(const struct swarm *sw)
{
	return sw->state == SWARM_DOWNLOADING || sw->state == SWARM_METADATA;
}

bool dht_tracks_sync_due(const struct dht_tracks *tt, const struct node *node, uint64_t now)
{
	/* A change is followed within DHTT_CHANGE_SYNC_MS, not at once: adding
	 * thousands of swarms one by one must not walk the list per swarm. */
	return tt->want_sync || now >= tt->next_sync_ms ||
	       (node->swarm_ix.gen != tt->synced_gen && now >= tt->last_sync_ms + DHTT_CHANGE_SYNC_MS);
}

void dht_tracks_want_sync(struct dht_tracks *tt)
{
	tt->want_sync = true;
}

static void sync_track(struct dht_tracks *tt, const struct swarm *sw, const uint8_t *key,
		       uint64_t now)
{
	struct track *t = find(tt, sw->id, key);
	if (!t && !(t = add(tt, sw->id, key))) {
		log_warn("DHT: out of memory tracking swarm %lld", (long long)sw->id);
		return;
	}
	t->seen = tt->round;
	bool active = swarm_active(sw);
	if (active && !t->active) {
		for (int f = 0; f < DHTT_FAMS; f++) {
			t->fam[f].next_announce_ms = now;
			t->fam[f].next_lookup_ms = now;
			t->fam[f].retry_ms = 0;
		}
	}
	bool changed = active != t->active || swarm_downloading(sw) != t->downloading;
	t->active = active;
	t->downloading = swarm_downloading(sw);
	for (int f = 0; f < DHTT_FAMS; f++)
		if (changed || (t->active && !t->fam[f].running && t->fam[f].hpos == NOT_QUEUED))
			schedule(tt, t, f);
}

void dht_tracks_sync(struct dht_tracks *tt, struct node *node, uint64_t now)
{
	tt->round++;
	for (struct swarm *sw = node->swarms; sw; sw = sw->next) {
		/* BEP 27: a private torrent's peers come from its trackers only
		 * (a magnet's swarm learns it with the metadata: its tracks go). */
		if (!sw->has_info_hash || sw->remove_pending || swarm_private(sw))
			continue;
		sync_track(tt, sw, sw->info_hash, now);
		if (sw->has_info_hash_v1 && !sw->key_v1)
			sync_track(tt, sw, sw->info_hash_v1, now);
	}
	for (struct track *t = tt->all, *next; t; t = next) {
		next = t->next;
		if (t->seen != tt->round)
			drop(tt, t);
	}
	tt->synced_gen = node->swarm_ix.gen;
	tt->last_sync_ms = now;
	tt->next_sync_ms = now + DHTT_SYNC_MS;
	tt->want_sync = false;
}

/* ------------------------------------------------------------ lookups */

/* Start t's due lookup in family f.  Returns 0 (started, or rescheduled
 * after a failure that concerns only this key) or the library's -ENOSPC /
 * -ENETUNREACH, after which nothing else can start now either. */
static int start(struct dht_tracks *tt, struct track *t, int f, struct dht *dht, uint16_t port,
		 uint64_t now)
{
	struct fam *fm = &t->fam[f];
	bool announce = now >= fm->next_announce_ms;
	fm->running = true;
	fm->announcing = announce;
	tt->running[f]++;
	if (t->downloading)
		fm->next_lookup_ms =
			now + (t->peers_found ? DHTT_DOWNLOAD_LOOKUP_MS : DHTT_LONELY_LOOKUP_MS);
	int rc = dht_get_peers(dht, t->key, announce, port, false, now);
	if (rc == 0)
		return 0; /* dht_tracks_done clears `running` (perhaps already has) */
	fm->running = false;
	fm->announcing = false;
	tt->running[f]--;
	/* -ENETUNREACH (empty table), -ENOSPC (all lookup slots busy),
	 * -EALREADY (an old lookup for this key still runs): try again soon. */
	uint64_t retry = rc == -ENETUNREACH ? DHTT_RETRY_MIN_MS : DHTT_BUSY_RETRY_MS;
	if (announce)
		fm->next_announce_ms = now + retry;
	if (t->downloading)
		fm->next_lookup_ms = now + retry;
	schedule(tt, t, f);
	if (rc == -ENETUNREACH || rc == -ENOSPC)
		return rc;
	if (rc != -EALREADY)
		log_warn("DHT: swarm %lld: cannot start a lookup: %s", (long long)t->swarm_id,
			 strerror(-rc));
	return 0;
}

uint64_t dht_tracks_run(struct dht_tracks *tt, struct dht *const dht[DHTT_FAMS], uint16_t port,
			uint64_t now)
{
	uint64_t wake = UINT64_MAX;
	for (int f = 0; f < DHTT_FAMS; f++) {
		struct heap *h = &tt->heap[f];
		if (!dht[f])
			continue;
		if (now < tt->blocked_until[f]) {
			if (h->n && tt->blocked_until[f] < wake)
				wake = tt->blocked_until[f];
			continue;
		}
		while (h->n && h->t[0]->fam[f].due_ms <= now && tt->running[f] < DHTT_MAX_RUNNING) {
			struct track *t = h->t[0];
			heap_remove(h, f, t);
			int rc = start(tt, t, f, dht[f], port, now);
			if (rc != 0) {
				/* No key can start now: try again later, with one key,
				 * instead of spinning through every due one. */
				tt->blocked_until[f] =
					now + (rc == -ENETUNREACH ? DHTT_RETRY_MIN_MS : DHTT_BUSY_RETRY_MS);
				break;
			}
		}
		uint64_t next = h->n ? h->t[0]->fam[f].due_ms : UINT64_MAX;
		if (next < tt->blocked_until[f])
			next = tt->blocked_until[f];
		/* At the cap, a finished lookup wakes the loop (dht_tracks_done). */
		if (h->n && tt->running[f] < DHTT_MAX_RUNNING && next < wake)
			wake = next;
	}
	return wake;
}

void dht_tracks_done(struct dht_tracks *tt, int f, const uint8_t key[DHT_ID_LEN],
		     const struct dht_lookup_summary *s, uint64_t now)
{
	struct track *t = by_key(tt, key);
	if (!t || f < 0 || f >= DHTT_FAMS || !t->fam[f].running)
		return;
	struct fam *fm = &t->fam[f];
	bool announcing = fm->announcing;
	fm->running = false;
	fm->announcing = false;
	tt->running[f]--;
	tt->blocked_until[f] = 0; /* a slot is free (and the table is not empty) */
	fm->lookups++;
	fm->last_responded = s->responded;
	fm->last_announced = s->announced;
	bool ok = s->status == 0 && s->responded > 0 && (!announcing || s->announced > 0);
	if (ok) {
		fm->retry_ms = 0;
		if (announcing)
			fm->next_announce_ms = now + DHTT_ANNOUNCE_MS;
	} else {
		/* Nobody answered (or took our announce): try again soon, backing
		 * off so an isolated node does not spin. */
		fm->retry_ms = fm->retry_ms ? fm->retry_ms * 2 : DHTT_RETRY_MIN_MS;
		if (fm->retry_ms > DHTT_RETRY_MAX_MS)
			fm->retry_ms = DHTT_RETRY_MAX_MS;
		if (announcing)
			fm->next_announce_ms = now + fm->retry_ms;
		if (fm->next_lookup_ms > now + fm->retry_ms)
			fm->next_lookup_ms = now + fm->retry_ms;
	}
	schedule(tt, t, f);
}

void dht_tracks_found(struct dht_tracks *tt, const uint8_t key[DHT_ID_LEN], uint64_t n)
{
	struct track *t = by_key(tt, key);
	if (t)
		t->peers_found += n;
}

unsigned dht_tracks_running(const struct dht_tracks *tt, int f)
{
	return f >= 0 && f < DHTT_FAMS ? tt->running[f] : 0;
}

size_t dht_tracks_count(const struct dht_tracks *tt)
{
	return tt->count;
}

/* ------------------------------------------------------------ JSON */

json_t *dht_tracks_json(const struct dht_tracks *tt, struct dht *const dht[DHTT_FAMS],
			uint64_t now)
{
	json_t *arr = json_array();
	for (const struct track *t = tt->all; t && arr; t = t->next) {
		char key[2 * DHT_ID_LEN + 1];
		hex_encode(t->key, DHT_ID_LEN, key);
		json_t *o = json_pack("{s:I,s:s,s:b,s:I}", "id", (json_int_t)t->swarm_id, "key", key,
				      "active", t->active, "peers_found", (json_int_t)t->peers_found);
		if (!o)
			continue;
		uint64_t lookups = 0, next_announce = UINT64_MAX;
		unsigned announced = 0;
		bool running = false;
		for (int f = 0; f < DHTT_FAMS; f++) {
			if (!dht[f])
				continue;
			lookups += t->fam[f].lookups;
			announced += t->fam[f].last_announced;
			running |= t->fam[f].running;
			if (t->fam[f].next_announce_ms < next_announce)
				next_announce = t->fam[f].next_announce_ms;
		}
		json_object_set_new(o, "lookups", json_integer((json_int_t)lookups));
		json_object_set_new(o, "lookup_running", json_boolean(running));
		json_object_set_new(o, "announce_acks", json_integer((json_int_t)announced));
		if (t->active)
			json_object_set_new(
				o, "next_announce_s",
				json_integer((json_int_t)(next_announce > now
								  ? (next_announce - now + 999) / 1000
								  : 0)));
		json_array_append_new(arr, o);
	}
	return arr;
}
