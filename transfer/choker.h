/* choker.h: which peers to unchoke: rate-ranked regular slots plus one rotating optimistic slot. */
#ifndef SHOAL_TRANSFER_CHOKER_H
#define SHOAL_TRANSFER_CHOKER_H

/*
 * A pure decision over a snapshot of the swarm's peers (BEP 3 "choking"):
 * the caller measures rates, keeps the small choker_state between rounds,
 * passes the current time and its PRNG state, and sends CHOKE/UNCHOKE for
 * whatever changed.  Run it every 10 s or when a peer comes or goes.  No
 * clock reads, no I/O, no allocation.
 *
 * Regular slots go to interested peers with the best rate: the rate they
 * upload to us while we are leeching (tit for tat; snubbed peers are
 * skipped), the rate we upload to them while seeding (serve those who
 * take it fastest).  Equal rates are ordered at random.  One more
 * interested peer gets the optimistic slot, chosen at random and kept for
 * CHOKER_OPTIMISTIC_INTERVAL_MS, so newcomers get a chance to show their
 * rate and to obtain a first piece to trade.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifndef CHOKER_REGULAR_SLOTS
#define CHOKER_REGULAR_SLOTS 4u
#endif
#ifndef CHOKER_OPTIMISTIC_INTERVAL_MS
#define CHOKER_OPTIMISTIC_INTERVAL_MS 30000u
#endif
/* Ceiling on regular slots (each slot is one pass over the peers). */
#ifndef CHOKER_MAX_SLOTS
#define CHOKER_MAX_SLOTS 64u
#endif

/* What the choker needs to know about one peer. */
struct choker_peer {
	uint32_t id;        /* caller's name for the peer, stable across rounds */
	bool interested;    /* the peer wants data from us */
	bool snubbed;       /* unchoked us yet sent nothing for a while */
	uint64_t rate_from; /* bytes/s we receive from it */
	uint64_t rate_to;   /* bytes/s we send to it */
};

/* Kept by the caller between rounds. */
struct choker_state {
	bool has_optimistic;
	uint32_t optimistic_id;       /* valid when has_optimistic */
	uint64_t optimistic_since_ms; /* when it was chosen */
};

/* No optimistic peer yet. */
void choker_state_init(struct choker_state *st);

/* Decide which of `peers[0..n-1]` to unchoke.  Writes unchoke_out[i] for
 * every peer and updates `st` (the optimistic peer and since when).
 * `regular_slots` is 1..CHOKER_MAX_SLOTS (CHOKER_REGULAR_SLOTS is the
 * usual value), `now_ms` a monotonic time, `rng` the caller's PRNG state
 * (any value; advanced).  Peer ids must be distinct.  Returns the number
 * unchoked, or -EINVAL for bad arguments. */
int choker_decide(const struct choker_peer *peers, size_t n, bool seeding, unsigned regular_slots,
		  uint64_t now_ms, struct choker_state *st, uint64_t *rng, bool *unchoke_out)
	__attribute__((warn_unused_result));

#endif
