/* ratesplit.c: share one rate limit among connections by what they use. */
#include "config.h"

#include "transfer/ratesplit.h"

#include <stdbool.h>

/* Did the connection leave part of its share unused?  If so, *share_out is
 * what it keeps: headroom over its use, at least the floor, at most its
 * old share. */
static bool idle_share(double used, uint64_t cur, uint64_t floor_share, uint64_t *share_out)
{
	if (cur == 0 || used >= RATESPLIT_BUSY * (double)cur)
		return false;
	double want = used * RATESPLIT_HEADROOM;
	uint64_t s = want < (double)floor_share ? floor_share : (uint64_t)want;
	*share_out = s < cur ? s : cur;
	return true;
}

void ratesplit_shares(uint64_t limit, size_t n, const double *used, const uint64_t *cur,
		      uint64_t *share_out)
{
	if (n == 0)
		return;
	if (limit == 0) {
		for (size_t i = 0; i < n; i++)
			share_out[i] = 0;
		return;
	}
	uint64_t floor_share = limit / ((uint64_t)n * RATESPLIT_FLOOR_DIV);
	if (floor_share == 0)
		floor_share = 1;
	/* The shares of connections that did not use theirs (each ≥ 1, so 0
	 * marks a busy connection).  Each is below its old share, and old
	 * shares summed to at most the limit, but connections come and go:
	 * scale them down if they alone overflow. */
	uint64_t kept = 0;
	size_t busy = 0;
	for (size_t i = 0; i < n; i++) {
		if (idle_share(used[i], cur[i], floor_share, &share_out[i])) {
			kept += share_out[i];
		} else {
			share_out[i] = 0;
			busy++;
		}
	}
	if (kept > limit) {
		double scale = (double)limit / (double)kept;
		kept = 0;
		for (size_t i = 0; i < n; i++) {
			if (share_out[i] == 0)
				continue;
			uint64_t s = (uint64_t)((double)share_out[i] * scale);
			share_out[i] = s ? s : 1;
			kept += share_out[i];
		}
	}
	/* The rest goes to the busy ones, or to everyone when none is busy. */
	uint64_t rest = kept < limit ? limit - kept : 0;
	uint64_t each = rest / (busy ? busy : n);
	for (size_t i = 0; i < n; i++) {
		if (busy == 0)
			share_out[i] += each;
		else if (share_out[i] == 0)
			share_out[i] = each ? each : 1;
	}
}
