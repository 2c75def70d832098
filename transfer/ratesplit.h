/* ratesplit.h: share one rate limit among connections by what they use. */
#ifndef SHOAL_TRANSFER_RATESPLIT_H
#define SHOAL_TRANSFER_RATESPLIT_H

/*
 * A swarm's own upload or download limit is enforced per connection
 * (libevent lets a connection join only one rate-limit group, and the
 * daemon-wide limit is that group), so the limit must be divided.  An even
 * split wastes the share of a connection that cannot use it: a peer behind
 * its own slow link, or one that wants little.  ratesplit_shares divides
 * by demand instead, one round per second: a connection that used less
 * than RATESPLIT_BUSY of its share last round keeps RATESPLIT_HEADROOM
 * times what it used (at least RATESPLIT_FLOOR_DIV-th of an even share, so
 * it can show it wants more); whatever remains is split evenly among the
 * connections that used their share, or, when none did, among all.  The
 * shares always sum to at most the limit.  Pure: no clock, no allocation.
 */

#include <stddef.h>
#include <stdint.h>

#define RATESPLIT_BUSY 0.9       /* above 1 / RATESPLIT_HEADROOM: a kept share is not "used" */
#define RATESPLIT_HEADROOM 1.25
#define RATESPLIT_FLOOR_DIV 4

/* `used[i]`: bytes/s connection i moved last round; `cur[i]`: its share
 * then (0 for a new connection, which counts as busy).  Writes n shares,
 * each ≥ 1 byte/s when limit > 0, into share_out (which must not overlap
 * cur).  limit 0 (no limit) gives shares of 0. */
void ratesplit_shares(uint64_t limit, size_t n, const double *used, const uint64_t *cur,
		      uint64_t *share_out);

#endif
