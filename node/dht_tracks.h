/* dht_tracks.h: which DHT lookups and announces the daemon's swarms need,
 * and when: one track per swarm and key (the v2 hash truncated to 20 bytes,
 * and a hybrid's v1 hash), scheduled on a heap per address family, with at
 * most DHTT_MAX_RUNNING lookups in flight per family.
 *
 * The work per second does not grow with the number of swarms: the swarm
 * list is walked only when it changed (node->swarm_ix.gen) and once every
 * DHTT_SYNC_MS as a safety net, tracks are found by hash, and only lookups
 * that are due are looked at.  With more swarms than the lookups in flight
 * can serve within DHTN's announce interval, every swarm is still
 * announced in turn, earliest due first; its next announce is shown in the
 * API.  Event loop thread only; node/dht_node.c owns one. */
#ifndef SHOAL_NODE_DHT_TRACKS_H
#define SHOAL_NODE_DHT_TRACKS_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "dht/dht.h"

struct node;
struct dht_tracks;

#define DHTT_FAMS 2            /* IPv4, IPv6: the index f below */
#define DHTT_MAX_RUNNING 88    /* lookups in flight per family (libtorrent caps
				* its DHT announces at the same figure) */
#define DHTT_SYNC_MS (60 * 1000) /* walk the swarm list at least this often */

struct dht_tracks *dht_tracks_new(void);
void dht_tracks_free(struct dht_tracks *tt);

/* Should dht_tracks_sync run now?  (The swarm list changed, or a sync was
 * asked for, or DHTT_SYNC_MS passed.) */
bool dht_tracks_sync_due(const struct dht_tracks *tt, const struct node *node, uint64_t now);
/* Make the next dht_tracks_sync_due say yes. */
void dht_tracks_want_sync(struct dht_tracks *tt);
/* Follow node's swarms: a new swarm gets a track, due at once; a swarm that
 * becomes active again (resumed, checked) is due at once; a removed
 * swarm's track goes.  O(swarms). */
void dht_tracks_sync(struct dht_tracks *tt, struct node *node, uint64_t now);

/* Start the lookups that are due on dht[f] (NULL: family f not running),
 * announcing on `port` when an announce is due.  Returns the time the next
 * one falls due (UINT64_MAX: none). */
uint64_t dht_tracks_run(struct dht_tracks *tt, struct dht *const dht[DHTT_FAMS], uint16_t port,
			uint64_t now);

/* A lookup for `key` in family f ended (the dht library's lookup_done). */
void dht_tracks_done(struct dht_tracks *tt, int f, const uint8_t key[DHT_ID_LEN],
		     const struct dht_lookup_summary *s, uint64_t now);
/* `n` peers found for `key` were taken by the engine. */
void dht_tracks_found(struct dht_tracks *tt, const uint8_t key[DHT_ID_LEN], uint64_t n);

/* Lookups in flight in family f, and tracks in all. */
unsigned dht_tracks_running(const struct dht_tracks *tt, int f);
size_t dht_tracks_count(const struct dht_tracks *tt);

/* The per-swarm array of GET /api/v1/dht.  New reference. */
json_t *dht_tracks_json(const struct dht_tracks *tt, struct dht *const dht[DHTT_FAMS],
			uint64_t now);

#endif
