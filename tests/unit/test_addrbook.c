/* test_addrbook.c: unit tests for transfer/addrbook (back-off, bans, caps, candidates). */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "transfer/addrbook.h"

static void check(const struct addrbook *ab)
{
	const char *what = NULL;
	if (addrbook_check_invariants(ab, &what) != 0)
		fail_msg("invariant broken: %s", what ? what : "?");
}

static struct addrbook *make(size_t cap)
{
	struct addrbook *ab = NULL;
	assert_int_equal(addrbook_new(cap, &ab), 0);
	assert_non_null(ab);
	check(ab);
	return ab;
}

/* 10.0.0.<last>:<port> */
static struct addrbook_addr v4(uint8_t last, uint16_t port)
{
	struct addrbook_addr a;
	memset(&a, 0, sizeof a);
	a.family = 4;
	a.ip[0] = 10;
	a.ip[3] = last;
	a.port = port;
	return a;
}

static uint64_t add(struct addrbook *ab, struct addrbook_addr a, enum addrbook_source src)
{
	uint64_t h = 0;
	assert_int_equal(addrbook_add(ab, &a, src, &h), 0);
	assert_int_not_equal(h, 0);
	check(ab);
	return h;
}

static struct addrbook_entry get(const struct addrbook *ab, uint64_t h)
{
	struct addrbook_entry e;
	assert_int_equal(addrbook_get(ab, h, &e), 0);
	return e;
}

/* One dial at `now` that never reached a handshake. */
static void failed_dial(struct addrbook *ab, uint64_t h, uint64_t now)
{
	assert_int_equal(addrbook_dial(ab, h, now), 0);
	assert_int_equal(addrbook_set_connected(ab, h, false), 0);
	check(ab);
}

static bool is_candidate(const struct addrbook *ab, uint64_t h, uint64_t now)
{
	uint64_t c[64];
	size_t n = addrbook_candidates(ab, now, c, 64);
	for (size_t i = 0; i < n; i++)
		if (c[i] == h)
			return true;
	return false;
}

static void test_backoff_grows_and_caps(void **state)
{
	(void)state;
	assert_int_equal(addrbook_backoff_ms(0), ADDRBOOK_BACKOFF_BASE_MS);
	assert_int_equal(addrbook_backoff_ms(1), 2 * ADDRBOOK_BACKOFF_BASE_MS);
	assert_int_equal(addrbook_backoff_ms(7), 128 * ADDRBOOK_BACKOFF_BASE_MS);
	assert_int_equal(addrbook_backoff_ms(8), ADDRBOOK_BACKOFF_MAX_MS);
	assert_int_equal(addrbook_backoff_ms(UINT32_MAX), ADDRBOOK_BACKOFF_MAX_MS);

	struct addrbook *ab = make(8);
	uint64_t h = add(ab, v4(1, 6881), ADDRBOOK_SRC_DHT);
	uint64_t now = 1000, prev = 0;
	for (uint32_t f = 0; f < 12; f++) {
		assert_true(is_candidate(ab, h, now));
		failed_dial(ab, h, now);
		uint64_t wait = addrbook_backoff_ms(f);
		assert_true(wait >= prev); /* never shrinks */
		assert_true(wait <= ADDRBOOK_BACKOFF_MAX_MS);
		struct addrbook_entry e = get(ab, h);
		assert_int_equal(e.failures, f + 1);
		assert_int_equal(e.next_dial_ms, now + wait);
		assert_false(is_candidate(ab, h, now + wait - 1));
		assert_int_equal(addrbook_dial(ab, h, now + wait - 1), -EAGAIN);
		now += wait;
		prev = wait;
	}
	assert_int_equal(prev, ADDRBOOK_BACKOFF_MAX_MS);
	addrbook_free(ab);
}

static void test_reset_on_success(void **state)
{
	(void)state;
	struct addrbook *ab = make(8);
	uint64_t h = add(ab, v4(1, 6881), ADDRBOOK_SRC_PEX);
	uint64_t now = 0;
	for (int i = 0; i < 5; i++) {
		failed_dial(ab, h, now);
		now = get(ab, h).next_dial_ms;
	}
	assert_int_equal(get(ab, h).failures, 5);
	assert_int_equal(addrbook_dial(ab, h, now), 0);
	assert_int_equal(addrbook_dial(ab, h, now), -EBUSY); /* one dial at a time */
	assert_int_equal(addrbook_succeeded(ab, h), 0);
	assert_int_equal(get(ab, h).failures, 0);
	assert_int_equal(addrbook_set_connected(ab, h, false), 0);
	/* The next failed dial backs off by the shortest time again. */
	now = get(ab, h).next_dial_ms;
	failed_dial(ab, h, now);
	assert_int_equal(get(ab, h).next_dial_ms, now + ADDRBOOK_BACKOFF_BASE_MS);

	/* retry_now forgets the wait, not the count. */
	failed_dial(ab, h, now + ADDRBOOK_BACKOFF_BASE_MS);
	assert_int_equal(get(ab, h).failures, 2);
	assert_int_equal(addrbook_retry_now(ab, h), 0);
	assert_true(is_candidate(ab, h, now + ADDRBOOK_BACKOFF_BASE_MS));
	assert_int_equal(get(ab, h).failures, 2);
	/* A plain-only fallback clears both. */
	failed_dial(ab, h, now + ADDRBOOK_BACKOFF_BASE_MS);
	assert_int_equal(addrbook_set_plain_only(ab, h, true), 0);
	struct addrbook_entry e = get(ab, h);
	assert_true(e.plain_only);
	assert_int_equal(e.failures, 0);
	assert_int_equal(e.next_dial_ms, 0);
	assert_int_equal(addrbook_set_plain_only(ab, h, false), 0);
	assert_false(get(ab, h).plain_only);
	/* So does the fallback to a hello that offers no cipher. */
	failed_dial(ab, h, now + ADDRBOOK_BACKOFF_BASE_MS);
	assert_false(get(ab, h).legacy_hello);
	assert_int_equal(addrbook_set_legacy_hello(ab, h, true), 0);
	e = get(ab, h);
	assert_true(e.legacy_hello);
	assert_false(e.plain_only);
	assert_int_equal(e.failures, 0);
	assert_int_equal(e.next_dial_ms, 0);
	assert_true(is_candidate(ab, h, now));
	assert_int_equal(addrbook_set_legacy_hello(ab, h, false), 0);
	assert_false(get(ab, h).legacy_hello);
	assert_int_equal(addrbook_set_legacy_hello(ab, 12345678, true), -ENOENT);
	addrbook_free(ab);
}

static void test_cap_and_eviction(void **state)
{
	(void)state;
	struct addrbook *ab = make(6);
	uint64_t user = add(ab, v4(1, 1), ADDRBOOK_SRC_USER);
	uint64_t magnet = add(ab, v4(2, 1), ADDRBOOK_SRC_MAGNET);
	uint64_t banned = add(ab, v4(3, 1), ADDRBOOK_SRC_DHT);
	uint64_t conn = add(ab, v4(4, 1), ADDRBOOK_SRC_PEX);
	uint64_t once = add(ab, v4(5, 1), ADDRBOOK_SRC_PEX);
	uint64_t twice = add(ab, v4(6, 1), ADDRBOOK_SRC_DHT);
	assert_int_equal(addrbook_count(ab), 6);
	assert_int_equal(addrbook_cap(ab), 6);

	/* Full of addresses never tried: a newcomer is refused, nothing changes. */
	struct addrbook_addr fresh = v4(7, 1);
	uint64_t h = 99;
	assert_int_equal(addrbook_add(ab, &fresh, ADDRBOOK_SRC_PEX, &h), -ENOSPC);
	assert_int_equal(h, 0);
	assert_int_equal(addrbook_count(ab), 6);

	/* Every kind of entry fails; only the unprotected ones may go. */
	uint64_t all[6] = { user, magnet, banned, conn, once, twice };
	for (int i = 0; i < 6; i++)
		failed_dial(ab, all[i], 0);
	failed_dial(ab, twice, 10000);
	failed_dial(ab, user, 10000);
	failed_dial(ab, user, 20000);
	assert_int_equal(addrbook_ban_entry(ab, banned), 0);
	failed_dial(ab, conn, 10000);
	failed_dial(ab, conn, 20000);
	assert_int_equal(addrbook_dial(ab, conn, 100000), 0); /* stays connected */

	/* The most failures first among the evictable: `twice`. */
	uint64_t n1 = add(ab, v4(7, 1), ADDRBOOK_SRC_PEX);
	assert_int_equal(addrbook_count(ab), 6);
	struct addrbook_entry e;
	assert_int_equal(addrbook_get(ab, twice, &e), -ENOENT); /* stale, not another entry */
	assert_int_equal(addrbook_dial(ab, twice, 1u << 30), -ENOENT);
	assert_int_equal(addrbook_succeeded(ab, twice), -ENOENT);
	assert_int_equal(addrbook_ban_entry(ab, twice), -ENOENT);
	assert_int_equal(addrbook_find(ab, &(struct addrbook_addr){ 0 }), 0);
	struct addrbook_addr gone = v4(6, 1);
	assert_int_equal(addrbook_find(ab, &gone), 0);
	assert_false(get(ab, n1).banned);
	assert_int_equal(get(ab, n1).failures, 0);

	/* Then `once`; then nothing is left to evict (n1 never failed). */
	(void)add(ab, v4(8, 1), ADDRBOOK_SRC_DHT);
	assert_int_equal(addrbook_get(ab, once, &e), -ENOENT);
	fresh = v4(9, 1);
	assert_int_equal(addrbook_add(ab, &fresh, ADDRBOOK_SRC_USER, NULL), -ENOSPC);
	/* The protected ones are all still here. */
	assert_int_equal(get(ab, user).failures, 3);
	assert_int_equal(get(ab, magnet).source, ADDRBOOK_SRC_MAGNET);
	assert_true(get(ab, banned).banned);
	assert_true(get(ab, conn).connected);

	/* Equal failures: the oldest goes first. */
	struct addrbook *ab2 = make(3);
	uint64_t a = add(ab2, v4(1, 1), ADDRBOOK_SRC_DHT);
	uint64_t b = add(ab2, v4(2, 1), ADDRBOOK_SRC_DHT);
	uint64_t c = add(ab2, v4(3, 1), ADDRBOOK_SRC_DHT);
	failed_dial(ab2, c, 0);
	failed_dial(ab2, b, 0);
	failed_dial(ab2, a, 0);
	(void)add(ab2, v4(4, 1), ADDRBOOK_SRC_DHT);
	assert_int_equal(addrbook_get(ab2, a, &e), -ENOENT);
	assert_int_equal(addrbook_get(ab2, b, &e), 0);
	(void)add(ab2, v4(5, 1), ADDRBOOK_SRC_DHT);
	assert_int_equal(addrbook_get(ab2, b, &e), -ENOENT);
	assert_int_equal(addrbook_get(ab2, c, &e), 0);
	addrbook_free(ab2);
	addrbook_free(ab);
}

static void test_host_ban_every_port(void **state)
{
	(void)state;
	struct addrbook *ab = make(8);
	struct addrbook_addr a = v4(1, 6881);
	assert_false(addrbook_host_banned(ab, &a));
	assert_int_equal(addrbook_ban_host(ab, &a), 0);
	for (uint32_t port = 0; port <= 65535; port += 4097) {
		struct addrbook_addr p = v4(1, (uint16_t)port);
		assert_true(addrbook_host_banned(ab, &p));
	}
	struct addrbook_addr other = v4(2, 6881);
	assert_false(addrbook_host_banned(ab, &other));
	/* The same four bytes as IPv6 are another host. */
	struct addrbook_addr six = a;
	six.family = 6;
	assert_false(addrbook_host_banned(ab, &six));
	assert_int_equal(addrbook_ban_host(ab, &six), 0);
	assert_true(addrbook_host_banned(ab, &six));
	/* Bytes past an IPv4 address do not matter. */
	struct addrbook_addr junk = a;
	junk.ip[9] = 0xaa;
	assert_true(addrbook_host_banned(ab, &junk));
	/* A bad family is refused and never banned. */
	struct addrbook_addr bad = a;
	bad.family = 5;
	assert_int_equal(addrbook_ban_host(ab, &bad), -EAFNOSUPPORT);
	assert_false(addrbook_host_banned(ab, &bad));
	/* A host ban does not stop dials to the host's addresses (NAT, loopback). */
	uint64_t h = add(ab, v4(1, 7000), ADDRBOOK_SRC_DHT);
	assert_true(is_candidate(ab, h, 0));

	/* A ring: past ADDRBOOK_MAX_BANS the oldest gives way. */
	struct addrbook *r = make(8);
	for (unsigned i = 0; i < ADDRBOOK_MAX_BANS + 1; i++) {
		struct addrbook_addr x = v4(0, 1);
		x.ip[2] = (uint8_t)(i >> 8);
		x.ip[3] = (uint8_t)i;
		assert_int_equal(addrbook_ban_host(r, &x), 0);
		assert_int_equal(addrbook_ban_host(r, &x), 0); /* twice is once */
		check(r);
	}
	struct addrbook_addr first = v4(0, 1), second = v4(1, 1);
	assert_false(addrbook_host_banned(r, &first));
	assert_true(addrbook_host_banned(r, &second));
	addrbook_free(r);
	addrbook_free(ab);
}

static void test_id_ban(void **state)
{
	(void)state;
	struct addrbook *ab = make(8);
	uint8_t id[ADDRBOOK_PEER_ID_LEN], other[ADDRBOOK_PEER_ID_LEN];
	memset(id, 0x41, sizeof id);
	memcpy(other, id, sizeof other);
	other[19] ^= 1;
	assert_false(addrbook_id_banned(ab, id));
	assert_int_equal(addrbook_ban_id(ab, id), 0);
	assert_true(addrbook_id_banned(ab, id));
	assert_false(addrbook_id_banned(ab, other));
	/* Ring: ADDRBOOK_MAX_BANS more push the first one out. */
	for (unsigned i = 0; i < ADDRBOOK_MAX_BANS; i++) {
		uint8_t x[ADDRBOOK_PEER_ID_LEN] = { 0 };
		x[0] = (uint8_t)i;
		x[1] = (uint8_t)(i >> 8);
		x[2] = 1;
		assert_int_equal(addrbook_ban_id(ab, x), 0);
	}
	check(ab);
	assert_false(addrbook_id_banned(ab, id));
	uint8_t last[ADDRBOOK_PEER_ID_LEN] = { 0 };
	last[0] = (uint8_t)(ADDRBOOK_MAX_BANS - 1);
	last[1] = (uint8_t)((ADDRBOOK_MAX_BANS - 1) >> 8);
	last[2] = 1;
	assert_true(addrbook_id_banned(ab, last));
	addrbook_free(ab);
}

static void test_candidates_order_and_filters(void **state)
{
	(void)state;
	struct addrbook *ab = make(16);
	uint64_t h[8];
	for (int i = 0; i < 8; i++)
		h[i] = add(ab, v4((uint8_t)(i + 1), 6881), ADDRBOOK_SRC_DHT);
	uint64_t c[16];
	/* All fresh: in the order they arrived; k bounds the answer. */
	assert_int_equal(addrbook_candidates(ab, 0, c, 16), 8);
	for (int i = 0; i < 8; i++)
		assert_int_equal(c[i], h[i]);
	assert_int_equal(addrbook_candidates(ab, 0, c, 3), 3);
	assert_int_equal(c[0], h[0]);
	assert_int_equal(c[2], h[2]);
	assert_int_equal(addrbook_candidates(ab, 0, c, 0), 0);

	/* h0 failed twice, h1 once (both waited out), h2 banned, h3 connected
	 * from an incoming peer, h4 in back-off. */
	failed_dial(ab, h[0], 0);
	failed_dial(ab, h[0], 2000);
	failed_dial(ab, h[1], 0);
	assert_int_equal(addrbook_ban_entry(ab, h[2]), 0);
	assert_int_equal(addrbook_set_connected(ab, h[3], true), 0);
	failed_dial(ab, h[4], 1000000);
	uint64_t now = 10000;
	size_t n = addrbook_candidates(ab, now, c, 16);
	assert_int_equal(n, 5);
	/* Fewest failures, then earliest allowed time, then oldest. */
	assert_int_equal(c[0], h[5]);
	assert_int_equal(c[1], h[6]);
	assert_int_equal(c[2], h[7]);
	assert_int_equal(c[3], h[1]);
	assert_int_equal(c[4], h[0]);
	for (size_t i = 0; i < n; i++) {
		struct addrbook_entry e = get(ab, c[i]);
		assert_false(e.banned);
		assert_false(e.connected);
		assert_true(e.next_dial_ms <= now);
	}
	/* The same question twice gives the same answer. */
	uint64_t again[16];
	assert_int_equal(addrbook_candidates(ab, now, again, 16), n);
	assert_memory_equal(c, again, n * sizeof *c);
	/* A bounded answer is the head of the whole one. */
	assert_int_equal(addrbook_candidates(ab, now, again, 4), 4);
	assert_memory_equal(c, again, 4 * sizeof *c);
	/* Banned and connected entries refuse a dial. */
	assert_int_equal(addrbook_dial(ab, h[2], now), -EACCES);
	assert_int_equal(addrbook_dial(ab, h[3], now), -EBUSY);
	/* Earlier allowed time first, among equal failures. */
	assert_int_equal(addrbook_retry_now(ab, h[0]), 0);
	failed_dial(ab, h[1], 5000); /* now h1 has 2 failures, allowed at 5000 + 4000 */
	n = addrbook_candidates(ab, 20000, c, 16);
	assert_int_equal(c[3], h[0]); /* allowed at 0 */
	assert_int_equal(c[4], h[1]); /* allowed at 9000 */
	/* A new start retries everything not banned or connected. */
	addrbook_retry_all(ab);
	assert_true(is_candidate(ab, h[4], 0));
	assert_false(is_candidate(ab, h[2], 0));
	assert_false(is_candidate(ab, h[3], 0));
	addrbook_free(ab);
}

static void test_duplicates_merge(void **state)
{
	(void)state;
	struct addrbook *ab = make(8);
	struct addrbook_addr a = v4(1, 6881);
	uint64_t h1 = add(ab, a, ADDRBOOK_SRC_PEX);
	failed_dial(ab, h1, 0);
	uint64_t h2 = 0;
	/* The same address from the DHT: one entry, its state kept. */
	assert_int_equal(addrbook_add(ab, &a, ADDRBOOK_SRC_DHT, &h2), 1);
	assert_int_equal(h2, h1);
	assert_int_equal(addrbook_count(ab), 1);
	assert_int_equal(get(ab, h1).failures, 1);
	assert_int_equal(get(ab, h1).source, ADDRBOOK_SRC_PEX);
	/* Incoming outranks pex; the user outranks both; nothing outranks the user. */
	assert_int_equal(addrbook_add(ab, &a, ADDRBOOK_SRC_INCOMING, NULL), 1);
	assert_int_equal(get(ab, h1).source, ADDRBOOK_SRC_INCOMING);
	assert_int_equal(addrbook_add(ab, &a, ADDRBOOK_SRC_USER, NULL), 1);
	assert_int_equal(get(ab, h1).source, ADDRBOOK_SRC_USER);
	assert_int_equal(addrbook_add(ab, &a, ADDRBOOK_SRC_MAGNET, NULL), 1);
	assert_int_equal(addrbook_add(ab, &a, ADDRBOOK_SRC_PEX, NULL), 1);
	assert_int_equal(get(ab, h1).source, ADDRBOOK_SRC_USER);
	/* Junk past an IPv4 address is the same address. */
	struct addrbook_addr junk = a;
	junk.ip[15] = 7;
	assert_int_equal(addrbook_add(ab, &junk, ADDRBOOK_SRC_DHT, &h2), 1);
	assert_int_equal(h2, h1);
	/* Another port is another entry. */
	struct addrbook_addr b = v4(1, 6882);
	assert_int_equal(addrbook_add(ab, &b, ADDRBOOK_SRC_DHT, &h2), 0);
	assert_int_not_equal(h2, h1);
	assert_int_equal(addrbook_count(ab), 2);
	assert_int_equal(addrbook_find(ab, &b), h2);
	/* A banned entry stays banned when it is given again. */
	assert_int_equal(addrbook_ban_entry(ab, h2), 0);
	assert_int_equal(addrbook_add(ab, &b, ADDRBOOK_SRC_USER, NULL), 1);
	assert_true(get(ab, h2).banned);
	check(ab);
	addrbook_free(ab);
}

static void test_hostile_input(void **state)
{
	(void)state;
	struct addrbook *ab = NULL;
	assert_int_equal(addrbook_new(0, &ab), -EINVAL);
	assert_null(ab);
	assert_int_equal(addrbook_new(ADDRBOOK_MAX_CAP + 1, &ab), -EINVAL);
	ab = make(4);
	uint64_t h = 5;
	struct addrbook_addr a = v4(1, 0);
	assert_int_equal(addrbook_add(ab, &a, ADDRBOOK_SRC_PEX, &h), -EINVAL); /* port 0 */
	assert_int_equal(h, 0);
	a = v4(1, 1);
	for (unsigned f = 0; f < 256; f++) {
		if (f == 4 || f == 6)
			continue;
		a.family = (uint8_t)f;
		assert_int_equal(addrbook_add(ab, &a, ADDRBOOK_SRC_PEX, NULL), -EAFNOSUPPORT);
	}
	struct addrbook_addr any4 = { .family = 4, .port = 1 }, any6 = { .family = 6, .port = 1 };
	assert_int_equal(addrbook_add(ab, &any4, ADDRBOOK_SRC_PEX, NULL), -EINVAL);
	assert_int_equal(addrbook_add(ab, &any6, ADDRBOOK_SRC_PEX, NULL), -EINVAL);
	a = v4(1, 1);
	assert_int_equal(addrbook_add(ab, &a, ADDRBOOK_SRC_COUNT, NULL), -EINVAL);
	assert_int_equal(addrbook_add(ab, &a, (enum addrbook_source)-1, NULL), -EINVAL);
	assert_int_equal(addrbook_count(ab), 0);
	check(ab);
	/* Handles that name nothing. */
	struct addrbook_entry e;
	assert_int_equal(addrbook_get(ab, 0, &e), -ENOENT);
	assert_int_equal(addrbook_get(ab, UINT64_MAX, &e), -ENOENT);
	assert_int_equal(addrbook_set_connected(ab, 12345, true), -ENOENT);
	/* Source names both ways. */
	enum addrbook_source s;
	for (unsigned i = 0; i < ADDRBOOK_SRC_COUNT; i++) {
		assert_int_equal(addrbook_source_parse(addrbook_source_name((enum addrbook_source)i), &s), 0);
		assert_int_equal(s, i);
	}
	assert_int_equal(addrbook_source_parse("trackers", &s), -EINVAL);
	assert_int_equal(addrbook_source_parse("", &s), -EINVAL);
	assert_string_equal(addrbook_source_name(ADDRBOOK_SRC_COUNT), "?");
	addrbook_free(ab);
	addrbook_free(NULL);
}

static void test_sockaddr(void **state)
{
	(void)state;
	struct sockaddr_in s4;
	memset(&s4, 0, sizeof s4);
	s4.sin_family = AF_INET;
	s4.sin_port = htons(6881);
	assert_int_equal(inet_pton(AF_INET, "192.0.2.7", &s4.sin_addr), 1);
	struct addrbook_addr a;
	assert_int_equal(addrbook_addr_from_sockaddr((struct sockaddr *)&s4, sizeof s4, &a), 0);
	assert_int_equal(a.family, 4);
	assert_int_equal(a.port, 6881);
	assert_int_equal(a.ip[0], 192);
	assert_int_equal(a.ip[3], 7);
	struct sockaddr_storage ss;
	assert_int_equal(addrbook_addr_to_sockaddr(&a, &ss), sizeof s4);
	assert_memory_equal(&ss, &s4, sizeof s4);
	assert_int_equal(addrbook_addr_from_sockaddr((struct sockaddr *)&s4, sizeof s4 - 1, &a), -EINVAL);

	struct sockaddr_in6 s6;
	memset(&s6, 0, sizeof s6);
	s6.sin6_family = AF_INET6;
	s6.sin6_port = htons(443);
	assert_int_equal(inet_pton(AF_INET6, "2001:db8::1", &s6.sin6_addr), 1);
	assert_int_equal(addrbook_addr_from_sockaddr((struct sockaddr *)&s6, sizeof s6, &a), 0);
	assert_int_equal(a.family, 6);
	assert_int_equal(a.port, 443);
	assert_int_equal(addrbook_addr_to_sockaddr(&a, &ss), sizeof s6);
	assert_memory_equal(&ss, &s6, sizeof s6);

	struct sockaddr_storage un;
	memset(&un, 0, sizeof un);
	un.ss_family = AF_UNIX;
	assert_int_equal(addrbook_addr_from_sockaddr((struct sockaddr *)&un, sizeof un, &a), -EAFNOSUPPORT);
	a.family = 9;
	assert_int_equal(addrbook_addr_to_sockaddr(&a, &ss), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_backoff_grows_and_caps),
		cmocka_unit_test(test_reset_on_success),
		cmocka_unit_test(test_cap_and_eviction),
		cmocka_unit_test(test_host_ban_every_port),
		cmocka_unit_test(test_id_ban),
		cmocka_unit_test(test_candidates_order_and_filters),
		cmocka_unit_test(test_duplicates_merge),
		cmocka_unit_test(test_hostile_input),
		cmocka_unit_test(test_sockaddr),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
