/* ratelimit.c: daemon-wide limits refilled by elapsed time and demand, and
 * per-connection buckets (the reasons are in ratelimit.h). */
#include "config.h"

#include "node/ratelimit.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>

#include <event2/bufferevent.h>
#include <event2/event.h>

/* One direction: its rate, how often it is refilled, when it last was. */
struct rl_dir {
	uint64_t rate;       /* bytes/s, 0 = unlimited */
	unsigned period_ms;  /* refill period (ratelimit_period_ms) */
	uint64_t last_us;    /* when it was last refilled */
	uint64_t frac;       /* refill remainder, in byte-microseconds */
};

struct ratelimit {
	struct event_base *base;
	struct bufferevent_rate_limit_group *group;
	struct event *timer;
	unsigned timer_ms;   /* the timer's period: the shorter direction's */
	struct rl_dir up, down;
};

/* The level an unlimited direction is held at: far more than any transfer
 * moves between two refills, far from overflowing. */
#define UNLIMITED_LEVEL ((ev_ssize_t)(EV_RATE_LIMIT_MAX / 4))
/* Rates above this are treated as this (1 TiB/s), so rate x time cannot
 * overflow 64 bits. */
#define RATE_CEILING ((uint64_t)1 << 40)

static uint64_t clamp_rate(uint64_t rate)
{
	return rate > RATE_CEILING ? RATE_CEILING : rate;
}

static uint64_t mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static ev_ssize_t level_of(struct bufferevent_rate_limit_group *g, bool up)
{
	return up ? bufferevent_rate_limit_group_get_write_limit(g)
		  : bufferevent_rate_limit_group_get_read_limit(g);
}

static void set_level(struct bufferevent_rate_limit_group *g, bool up, ev_ssize_t want)
{
	ev_ssize_t decr = level_of(g, up) - want;
	if (decr == 0)
		return;
	if (up)
		bufferevent_rate_limit_group_decrement_write(g, decr);
	else
		bufferevent_rate_limit_group_decrement_read(g, decr);
}

static ev_ssize_t ms_of(uint64_t rate, unsigned ms)
{
	uint64_t v = rate * ms / 1000;
	return v ? (ev_ssize_t)v : 1;
}

unsigned ratelimit_period_ms(uint64_t rate)
{
	if (!rate)
		return 100;
	uint64_t ms = (RATELIMIT_REFILL_BYTES * 1000u + rate - 1) / rate;
	return ms < RATELIMIT_TICK_MS ? RATELIMIT_TICK_MS : ms > 100 ? 100 : (unsigned)ms;
}

/* Credit one direction with the time since its last refill, once a period
 * has passed. */
static void refill(struct ratelimit *rl, bool up, uint64_t now)
{
	struct rl_dir *d = up ? &rl->up : &rl->down;
	if (!d->rate)
		return;
	uint64_t elapsed = now - d->last_us;
	if (elapsed + 500 < (uint64_t)d->period_ms * 1000u)
		return; /* not due yet (half a millisecond early is on time) */
	d->last_us = now;
	uint64_t max_us = (uint64_t)RATELIMIT_CATCHUP_MS * 1000u;
	if (elapsed > max_us)
		elapsed = max_us;
	uint64_t rate = d->rate;
	uint64_t num = rate * elapsed + d->frac;
	ev_ssize_t earned = (ev_ssize_t)(num / 1000000u);
	d->frac = num % 1000000u;
	ev_ssize_t level = level_of(rl->group, up);
	/* Dry: connections waited, so pay what the time was worth (a late loop
	 * loses nothing).  Not dry: nobody waited, fill to the idle burst. */
	ev_ssize_t cap = level <= 0 ? ms_of(rate, RATELIMIT_CATCHUP_MS) : ms_of(rate, 2 * d->period_ms);
	ev_ssize_t want = level + earned;
	if (want > cap)
		want = cap;
	set_level(rl->group, up, want);
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
	struct ratelimit *rl = arg;
	(void)fd;
	(void)what;
	uint64_t now = mono_us();
	refill(rl, true, now);
	refill(rl, false, now);
}

static void dir_start(struct ratelimit *rl, struct rl_dir *d, bool up, uint64_t rate)
{
	rate = clamp_rate(rate);
	d->rate = rate;
	d->period_ms = ratelimit_period_ms(rate);
	d->last_us = mono_us();
	d->frac = 0;
	set_level(rl->group, up, rate ? ms_of(rate, 2 * d->period_ms) : UNLIMITED_LEVEL);
}

/* Start a limited direction at its idle burst, an unlimited one at
 * "unlimited", and run the refill timer only while something is limited. */
static void apply(struct ratelimit *rl, uint64_t up, uint64_t down)
{
	dir_start(rl, &rl->up, true, up);
	dir_start(rl, &rl->down, false, down);
	/* Each connection may move a whole refill per read or write, however
	 * many share the group: with bucket / members a 20 MiB/s download cap
	 * over 32 connections read 6 KiB a call, and a loaded loop that reads
	 * each socket once a round throttled every connection far below the
	 * cap.  The most one connection takes past the bucket is one share. */
	ev_ssize_t share = RATELIMIT_MAX_SHARE;
	if (up && ms_of(up, 2 * rl->up.period_ms) < share)
		share = ms_of(up, 2 * rl->up.period_ms);
	if (down && ms_of(down, 2 * rl->down.period_ms) < share)
		share = ms_of(down, 2 * rl->down.period_ms);
	if (share < RATELIMIT_MIN_SHARE)
		share = RATELIMIT_MIN_SHARE;
	bufferevent_rate_limit_group_set_min_share(rl->group, (size_t)share);
	unsigned ms = 0;
	if (up)
		ms = rl->up.period_ms;
	if (down && (!ms || rl->down.period_ms < ms))
		ms = rl->down.period_ms;
	rl->timer_ms = ms;
	if (ms) {
		struct timeval tv = { 0, (long)ms * 1000 };
		event_add(rl->timer, &tv);
	} else {
		event_del(rl->timer);
	}
}

struct ratelimit *ratelimit_new(struct event_base *base, uint64_t up, uint64_t down)
{
	struct ratelimit *rl = calloc(1, sizeof *rl);
	if (!rl)
		return NULL;
	rl->base = base;
	/* libevent's own refill is reduced to one byte a second: the levels are
	 * ours (on_tick).  Its ceiling is the largest, so it never trims them. */
	struct timeval sec = { 1, 0 };
	struct ev_token_bucket_cfg *cfg =
		ev_token_bucket_cfg_new(1, EV_RATE_LIMIT_MAX, 1, EV_RATE_LIMIT_MAX, &sec);
	if (cfg)
		rl->group = bufferevent_rate_limit_group_new(base, cfg);
	ev_token_bucket_cfg_free(cfg);
	rl->timer = event_new(base, -1, EV_PERSIST, on_tick, rl);
	if (!rl->group || !rl->timer) {
		ratelimit_free(rl);
		return NULL;
	}
	apply(rl, up, down);
	return rl;
}

int ratelimit_set(struct ratelimit *rl, uint64_t up, uint64_t down)
{
	up = clamp_rate(up);
	down = clamp_rate(down);
	if (up == rl->up.rate && down == rl->down.rate)
		return 0;
	apply(rl, up, down);
	return 0;
}

void ratelimit_attach(struct ratelimit *rl, struct bufferevent *bev)
{
	bufferevent_add_to_rate_limit_group(bev, rl->group);
}

void ratelimit_totals(const struct ratelimit *rl, uint64_t *read_out, uint64_t *written_out)
{
	ev_uint64_t r = 0, w = 0;
	if (rl && rl->group)
		bufferevent_rate_limit_group_get_totals(rl->group, &r, &w);
	*read_out = r;
	*written_out = w;
}

void ratelimit_free(struct ratelimit *rl)
{
	if (!rl)
		return;
	if (rl->timer)
		event_free(rl->timer);
	if (rl->group)
		bufferevent_rate_limit_group_free(rl->group);
	free(rl);
}

/* Per-connection buckets are libevent's own: one tick for both directions
 * (the faster direction's period sets it), and a burst of two ticks. */

static void conn_dir(uint64_t rate, unsigned ms, size_t *refill_out, size_t *burst_out)
{
	*refill_out = *burst_out = EV_RATE_LIMIT_MAX;
	if (!rate)
		return;
	*refill_out = (size_t)ms_of(rate, ms);
	*burst_out = 2 * *refill_out;
}

struct ev_token_bucket_cfg *ratelimit_conn_cfg(uint64_t up, uint64_t down)
{
	up = clamp_rate(up);
	down = clamp_rate(down);
	unsigned tu = ratelimit_period_ms(up), td = ratelimit_period_ms(down);
	unsigned ms = tu < td ? tu : td;
	size_t rr, rb, wr, wb;
	conn_dir(down, ms, &rr, &rb);
	conn_dir(up, ms, &wr, &wb);
	struct timeval tick_len = { 0, (long)ms * 1000 };
	return ev_token_bucket_cfg_new(rr, rb, wr, wb, &tick_len);
}
