/* choker.c: rate-ranked regular unchokes plus a rotating optimistic unchoke. */
#include "config.h"

#include "common/bytes.h"
#include "transfer/choker.h"

#include <errno.h>
#include <limits.h>


void choker_state_init(struct choker_state *st)
{
	st->has_optimistic = false;
	st->optimistic_id = 0;
	st->optimistic_since_ms = 0;
}

static bool regular_candidate(const struct choker_peer *pe, bool seeding)
{
	return pe->interested && (seeding || !pe->snubbed);
}

/* Is a better than b for a regular slot? */
static bool better(const struct choker_peer *a, const struct choker_peer *b, bool seeding,
		   uint64_t salt)
{
	uint64_t ra = seeding ? a->rate_to : a->rate_from;
	uint64_t rb = seeding ? b->rate_to : b->rate_from;
	if (ra != rb)
		return ra > rb;
	uint64_t ka = mix64(salt ^ a->id), kb = mix64(salt ^ b->id);
	if (ka != kb)
		return ka < kb;
	return a->id < b->id;
}

int choker_decide(const struct choker_peer *peers, size_t n, bool seeding, unsigned regular_slots,
		  uint64_t now_ms, struct choker_state *st, uint64_t *rng, bool *unchoke_out)
{
	if (st == NULL || rng == NULL || (n > 0 && (peers == NULL || unchoke_out == NULL)) ||
	    regular_slots == 0 || regular_slots > CHOKER_MAX_SLOTS || n > INT_MAX)
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		unchoke_out[i] = false;

	/* Regular slots: the best `regular_slots` candidates, one pass each. */
	uint64_t salt = splitmix64_next(rng);
	int unchoked = 0;
	for (unsigned slot = 0; slot < regular_slots; slot++) {
		size_t best = n;
		for (size_t i = 0; i < n; i++) {
			if (unchoke_out[i] || !regular_candidate(&peers[i], seeding))
				continue;
			if (best == n || better(&peers[i], &peers[best], seeding, salt))
				best = i;
		}
		if (best == n)
			break;
		unchoke_out[best] = true;
		unchoked++;
	}

	/* Optimistic slot: keep the current one while it is still eligible and
	 * its time is not up. */
	size_t eligible = 0, current = n;
	for (size_t i = 0; i < n; i++) {
		if (!peers[i].interested || unchoke_out[i])
			continue;
		eligible++;
		if (st->has_optimistic && peers[i].id == st->optimistic_id)
			current = i;
	}
	bool expired = now_ms < st->optimistic_since_ms ||
		       now_ms - st->optimistic_since_ms >= CHOKER_OPTIMISTIC_INTERVAL_MS;
	if (current < n && !expired) {
		unchoke_out[current] = true;
		return unchoked + 1;
	}
	/* Rotate: a uniform choice, avoiding the peer whose turn just ended
	 * when anyone else is waiting. */
	size_t pool = eligible - (current < n && eligible > 1 ? 1 : 0);
	if (pool == 0) {
		st->has_optimistic = false;
		return unchoked;
	}
	size_t pickn = (size_t)(splitmix64_next(rng) % pool);
	for (size_t i = 0; i < n; i++) {
		if (!peers[i].interested || unchoke_out[i] || (i == current && eligible > 1))
			continue;
		if (pickn-- == 0) {
			unchoke_out[i] = true;
			st->has_optimistic = true;
			st->optimistic_id = peers[i].id;
			st->optimistic_since_ms = now_ms;
			return unchoked + 1;
		}
	}
	return -EINVAL; /* not reached: pool counted the same peers */
}
