/* ratelimit.h: the daemon-wide upload and download limits over every peer
 * connection, and the token buckets of a connection's own share.
 *
 * A limit must hold over any window a user would call a transfer, and must
 * still deliver its rate on a loaded machine.  The two pull apart in a plain
 * token bucket: a burst small enough that a file of a few hundred KiB cannot
 * pass a 10 MiB/s cap at 25 MiB/s (what a 200 ms burst allowed) also throws
 * away every refill the event loop serves late, and with 33 daemons on two
 * cores (bench/distribution, N = 32) a loop is often 10-50 ms late: the
 * swarm took 1.9x its bound instead of 1.14x.
 *
 * So the daemon-wide buckets are refilled here, not by libevent, by the time
 * that has really passed, once a period: RATELIMIT_REFILL_BYTES (64 KiB) /
 * rate, clamped to 5-100 ms (7 ms at 10 MiB/s, 63 ms at 1 MiB/s, 100 ms at
 * 256 KiB/s).  How far a bucket may fill depends on whether anyone waited:
 *   - a bucket that ran dry (connections were held back) gets everything the
 *     elapsed time is worth, up to RATELIMIT_CATCHUP_MS of the rate, so a
 *     late loop loses nothing;
 *   - a bucket that did not run dry (demand below the cap, or idle) fills to
 *     at most two periods of the rate: the idle burst (14 ms of the rate at
 *     10 MiB/s, 126 ms at 1 MiB/s, 200 ms = 51 KiB at 256 KiB/s).
 * Over any window T a capped direction therefore moves at most
 * rate x T + the idle burst + one share (below), except right after the
 * loop itself was held up, when it sends what the lost time owed.
 *
 * Every refill of a dry group wakes all of its connections and every write
 * that empties it puts them all to sleep again (an epoll change each), so a
 * refill is worth 64 KiB rather than a few: at 5 ms periods for every
 * direction, 33 daemons on two cores spent the swarm's CPU on it.
 *
 * libevent hands each connection of a group bucket / members per call, at
 * least the group's min_share; with 30 connections that would be a few KiB
 * a read or write, and a loaded loop that serves each socket once a round
 * then throttles every connection far below the cap.  So min_share is the
 * idle burst, between RATELIMIT_MIN_SHARE and RATELIMIT_MAX_SHARE: what a
 * connection takes past the bucket is owed and repaid by the next refills.
 *
 * A connection's share of a swarm's own limit is a per-connection libevent
 * bucket (ratelimit_conn_cfg), which libevent refills itself every period
 * (the faster direction's), with a burst of two periods.  libevent keeps a
 * bucket's tick count across a change of tick length, so the caller clears
 * a connection's bucket before giving it one with another period.
 *
 * Everything here runs on the loop thread. */
#ifndef SHOAL_NODE_RATELIMIT_H
#define SHOAL_NODE_RATELIMIT_H

#include <stdint.h>

struct bufferevent;
struct event_base;
struct ev_token_bucket_cfg;
struct ratelimit;

#define RATELIMIT_TICK_MS 5        /* the shortest refill period */
#define RATELIMIT_REFILL_BYTES 65536 /* what one refill is worth, at the least */
#define RATELIMIT_CATCHUP_MS 250 /* the most a late loop is paid back at once */
#define RATELIMIT_MIN_SHARE 4096   /* bytes a connection may always move per call */
#define RATELIMIT_MAX_SHARE 65536  /* ... and at most, if the idle burst is larger */

/* Daemon-wide limits of `up`/`down` bytes per second (0 = unlimited).
 * Returns NULL on allocation failure. */
struct ratelimit *ratelimit_new(struct event_base *base, uint64_t up, uint64_t down);

/* Change the limits at run time.  Returns 0 or -ENOMEM. */
int ratelimit_set(struct ratelimit *rl, uint64_t up, uint64_t down)
	__attribute__((warn_unused_result));

/* Put a connection under the daemon-wide limits.  It leaves them with
 * bufferevent_remove_from_rate_limit_group() (or when it is freed). */
void ratelimit_attach(struct ratelimit *rl, struct bufferevent *bev);

/* The refill period for `rate` bytes/s: 16 KiB worth, clamped to 5-100 ms
 * (100 for 0, unlimited). */
unsigned ratelimit_period_ms(uint64_t rate);

/* Bytes read and written so far by every connection under the limits
 * (libevent's group totals: every byte on a peer socket). */
void ratelimit_totals(const struct ratelimit *rl, uint64_t *read_out, uint64_t *written_out);

/* Frees `rl`; every connection must have left it. */
void ratelimit_free(struct ratelimit *rl);

/* A token bucket configuration for one connection's share of a swarm's
 * limits (0 = unlimited direction), for bufferevent_set_rate_limit().  The
 * caller owns it (ev_token_bucket_cfg_free once no connection uses it).
 * NULL on allocation failure. */
struct ev_token_bucket_cfg *ratelimit_conn_cfg(uint64_t up, uint64_t down);

#endif
