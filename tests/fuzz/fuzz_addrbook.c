/* fuzz_addrbook.c: fuzz harness for the address book (transfer/addrbook.h).
 * Each input is a script of operations (add, dial, fail, succeed, ban,
 * query, candidates, advance the clock); after every step the invariants
 * must hold: the count within the cap, no banned, connected or backed-off
 * candidate, candidates in their documented order, nothing eligible left
 * out of a short answer, and bans that answer their queries. */
#include "config.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "transfer/addrbook.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_HANDLES 64
#define FUZZ_K 24

/* A small pool of hosts, so that addresses collide and merge. */
static struct addrbook_addr addr_of(uint8_t a, uint8_t b, uint8_t c)
{
	struct addrbook_addr x;
	memset(&x, 0, sizeof x);
	static const uint8_t families[8] = { 4, 4, 4, 6, 6, 6, 0, 5 };
	x.family = families[a & 7];
	x.ip[0] = (b & 8) ? 0 : 10;  /* sometimes 0.0.0.x / ::x, and 0.0.0.0 / :: */
	x.ip[3] = b & 7;
	x.ip[15] = (b & 0x10) ? 1 : 0; /* ignored for IPv4 */
	x.port = (uint16_t)(c % 4 == 0 ? 0 : 6880 + c % 4);
	return x;
}

static bool eligible(const struct addrbook_entry *e, uint64_t now)
{
	return !e->banned && !e->connected && e->next_dial_ms <= now;
}

/* May `a` come before `b`?  (Arrival order, the last key, is not visible.) */
static bool before(const struct addrbook_entry *a, const struct addrbook_entry *b)
{
	if (a->failures != b->failures)
		return a->failures < b->failures;
	return a->next_dial_ms <= b->next_dial_ms;
}

static void check_candidates(const struct addrbook *ab, uint64_t now, size_t k,
			     const uint64_t *known, size_t n_known)
{
	uint64_t c[FUZZ_K];
	size_t n = addrbook_candidates(ab, now, c, k);
	if (n > k)
		abort();
	struct addrbook_entry prev;
	for (size_t i = 0; i < n; i++) {
		struct addrbook_entry e;
		if (addrbook_get(ab, c[i], &e) != 0)
			abort(); /* a candidate that names nothing */
		if (!eligible(&e, now))
			abort(); /* banned, connected or backed off */
		if (i > 0 && !before(&prev, &e))
			abort(); /* out of the documented order */
		for (size_t j = 0; j < i; j++)
			if (c[j] == c[i])
				abort(); /* listed twice */
		prev = e;
	}
	if (n < k) {
		/* A short answer holds every eligible entry we know of. */
		for (size_t i = 0; i < n_known; i++) {
			struct addrbook_entry e;
			if (addrbook_get(ab, known[i], &e) != 0 || !eligible(&e, now))
				continue;
			bool found = false;
			for (size_t j = 0; j < n; j++)
				found |= c[j] == known[i];
			if (!found)
				abort();
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	struct addrbook *ab = NULL;
	if (addrbook_new(1 + data[0] % 16, &ab) != 0)
		abort();
	const uint8_t *p = data + 1, *end = data + size;
	uint64_t handles[FUZZ_HANDLES] = { 0 };
	size_t n_handles = 0;
	uint64_t now = 0;
	while (end - p >= 4) {
		uint8_t op = p[0] % 10, a = p[1], b = p[2], c = p[3];
		p += 4;
		uint64_t h = n_handles ? handles[b % n_handles] : (uint64_t)b << 32;
		struct addrbook_entry e;
		switch (op) {
		case 0: { /* add */
			struct addrbook_addr x = addr_of(a, b, c);
			size_t before_n = addrbook_count(ab);
			uint64_t got = 0;
			int rc = addrbook_add(ab, &x, (enum addrbook_source)(a >> 4) % 7, &got);
			if (rc < 0 && got != 0)
				abort();
			if (rc == -ENOSPC && before_n != addrbook_cap(ab))
				abort(); /* refused with room left */
			if (rc < 0 && addrbook_count(ab) != before_n)
				abort();
			if (rc == 0 || rc == 1) {
				if (addrbook_get(ab, got, &e) != 0 || e.addr.port != x.port)
					abort();
				if (addrbook_find(ab, &x) != got)
					abort();
				if (rc == 0 && (e.failures || e.connected || e.banned))
					abort(); /* a new entry starts clean */
				if (n_handles < FUZZ_HANDLES)
					handles[n_handles++] = got;
				else
					handles[c % FUZZ_HANDLES] = got;
			}
			break;
		}
		case 1: { /* dial */
			bool had = addrbook_get(ab, h, &e) == 0;
			int rc = addrbook_dial(ab, h, now);
			if (rc == 0) {
				if (!had || !eligible(&e, now))
					abort(); /* dialled what was not a candidate */
				struct addrbook_entry after;
				if (addrbook_get(ab, h, &after) != 0 || !after.connected ||
				    after.next_dial_ms < now + addrbook_backoff_ms(e.failures) ||
				    (e.failures < UINT32_MAX && after.failures != e.failures + 1))
					abort();
			} else if (had && eligible(&e, now)) {
				abort(); /* refused a candidate */
			}
			break;
		}
		case 2: /* the connection closes (a failed dial, or the end of one) */
			(void)addrbook_set_connected(ab, h, false);
			break;
		case 3: /* a handshake succeeded */
			if (addrbook_succeeded(ab, h) == 0 &&
			    (addrbook_get(ab, h, &e) != 0 || e.failures != 0))
				abort();
			break;
		case 4: /* an incoming peer at this entry */
			(void)addrbook_set_connected(ab, h, true);
			break;
		case 5: { /* bans */
			struct addrbook_addr x = addr_of(a, b, c);
			uint8_t id[ADDRBOOK_PEER_ID_LEN] = { 0 };
			id[0] = c & 7;
			if (a & 0x10) {
				if (addrbook_ban_entry(ab, h) == 0 &&
				    (addrbook_get(ab, h, &e) != 0 || !e.banned))
					abort();
			} else if (a & 0x20) {
				if (addrbook_ban_host(ab, &x) == 0 && !addrbook_host_banned(ab, &x))
					abort();
				x.port = (uint16_t)(x.port * 7 + 1); /* every port of the host */
				if (x.family == 4 || x.family == 6)
					if (!addrbook_host_banned(ab, &x))
						abort();
			} else {
				if (addrbook_ban_id(ab, id) != 0 || !addrbook_id_banned(ab, id))
					abort();
			}
			break;
		}
		case 6: { /* queries */
			struct addrbook_addr x = addr_of(a, b, c);
			uint8_t id[ADDRBOOK_PEER_ID_LEN] = { 0 };
			id[0] = c & 7;
			(void)addrbook_host_banned(ab, &x);
			(void)addrbook_id_banned(ab, id);
			uint64_t f = addrbook_find(ab, &x);
			if (f && (addrbook_get(ab, f, &e) != 0 || e.addr.port != x.port))
				abort();
			break;
		}
		case 7: /* candidates */
			check_candidates(ab, now, a % (FUZZ_K + 1), handles, n_handles);
			break;
		case 8: /* the clock moves on, by up to ~10 minutes */
			now += (uint64_t)b << (c % 12);
			break;
		default: /* retries and the plain-only fallback */
			if (a & 1)
				addrbook_retry_all(ab);
			else if (a & 2)
				(void)addrbook_retry_now(ab, h);
			else if (a & 8)
				(void)addrbook_set_legacy_hello(ab, h, a & 4);
			else
				(void)addrbook_set_plain_only(ab, h, a & 4);
			break;
		}
		if (addrbook_check_invariants(ab, NULL) != 0 || addrbook_count(ab) > addrbook_cap(ab))
			abort();
		check_candidates(ab, now, FUZZ_K, handles, n_handles);
	}
	addrbook_free(ab);
	return 0;
}
