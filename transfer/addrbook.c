/* addrbook.c: a swarm's address book; see addrbook.h for the rules. */
#include "config.h"

#include "transfer/addrbook.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

/* The array starts this small and doubles up to the cap: most swarms know
 * a handful of peers. */
#define ADDRBOOK_FIRST_SLOTS 16u

struct slot {
	struct addrbook_addr addr;  /* normalised: bytes past an IPv4 address are 0 */
	uint64_t next_dial_ms;
	uint64_t seq;               /* arrival order: smaller is older */
	uint32_t gen;               /* bumped when the slot is given to another address */
	uint32_t failures;
	uint8_t source;             /* enum addrbook_source */
	bool connected, banned, plain_only, legacy_hello;
};

struct ban_host {
	uint8_t family;
	uint8_t ip[16];
};

struct addrbook {
	struct slot *slots;        /* [0, n) are in use: entries are never removed, */
	size_t n, n_alloc, cap;    /* only replaced in place by eviction */
	uint64_t next_seq;
	struct ban_host hosts[ADDRBOOK_MAX_BANS];
	size_t n_hosts, next_host;
	uint8_t ids[ADDRBOOK_MAX_BANS][ADDRBOOK_PEER_ID_LEN];
	size_t n_ids, next_id;
};

static const char *const source_names[ADDRBOOK_SRC_COUNT] = {
	[ADDRBOOK_SRC_DHT] = "dht",   [ADDRBOOK_SRC_PEX] = "pex",       [ADDRBOOK_SRC_INCOMING] = "incoming",
	[ADDRBOOK_SRC_USER] = "user", [ADDRBOOK_SRC_MAGNET] = "magnet",
	[ADDRBOOK_SRC_TRACKER] = "tracker", [ADDRBOOK_SRC_LSD] = "lsd",
};

static size_t ip_len(uint8_t family)
{
	return family == 4 ? 4 : family == 6 ? 16 : 0;
}

static bool same_host(const struct addrbook_addr *a, uint8_t family, const uint8_t *ip)
{
	return a->family == family && memcmp(a->ip, ip, ip_len(family)) == 0;
}

static bool same_addr(const struct addrbook_addr *a, const struct addrbook_addr *b)
{
	return same_host(a, b->family, b->ip) && a->port == b->port;
}

static uint64_t handle_of(const struct addrbook *ab, size_t i)
{
	return ((uint64_t)ab->slots[i].gen << 32) | (uint64_t)i;
}

/* The slot a handle names, or NULL for 0 or a stale handle. */
static struct slot *slot_of(const struct addrbook *ab, uint64_t h)
{
	uint64_t i = h & 0xffffffffu;
	uint32_t gen = (uint32_t)(h >> 32);
	if (gen == 0 || i >= ab->n || ab->slots[i].gen != gen)
		return NULL;
	return &ab->slots[i];
}

/* A user-given address ranks highest, then one that dialled us. */
static int source_rank(uint8_t src)
{
	switch (src) {
	case ADDRBOOK_SRC_USER:
	case ADDRBOOK_SRC_MAGNET:
		return 2;
	case ADDRBOOK_SRC_INCOMING:
		return 1;
	default:
		return 0;
	}
}

int addrbook_new(size_t cap, struct addrbook **out)
{
	*out = NULL;
	if (cap == 0 || cap > ADDRBOOK_MAX_CAP)
		return -EINVAL;
	struct addrbook *ab = calloc(1, sizeof *ab);
	if (!ab)
		return -ENOMEM;
	ab->cap = cap;
	*out = ab;
	return 0;
}

void addrbook_free(struct addrbook *ab)
{
	if (!ab)
		return;
	free(ab->slots);
	free(ab);
}

size_t addrbook_count(const struct addrbook *ab)
{
	return ab->n;
}

size_t addrbook_cap(const struct addrbook *ab)
{
	return ab->cap;
}

const char *addrbook_source_name(enum addrbook_source src)
{
	return (unsigned)src < ADDRBOOK_SRC_COUNT ? source_names[src] : "?";
}

int addrbook_source_parse(const char *name, enum addrbook_source *out)
{
	for (unsigned i = 0; i < ADDRBOOK_SRC_COUNT; i++) {
		if (strcmp(name, source_names[i]) == 0) {
			*out = (enum addrbook_source)i;
			return 0;
		}
	}
	return -EINVAL;
}

int addrbook_addr_from_sockaddr(const struct sockaddr *sa, socklen_t len, struct addrbook_addr *out)
{
	memset(out, 0, sizeof *out);
	if (sa->sa_family == AF_INET) {
		if (len < (socklen_t)sizeof(struct sockaddr_in))
			return -EINVAL;
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
		out->family = 4;
		memcpy(out->ip, &s4->sin_addr, 4);
		out->port = ntohs(s4->sin_port);
		return 0;
	}
	if (sa->sa_family == AF_INET6) {
		if (len < (socklen_t)sizeof(struct sockaddr_in6))
			return -EINVAL;
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
		out->family = 6;
		memcpy(out->ip, &s6->sin6_addr, 16);
		out->port = ntohs(s6->sin6_port);
		return 0;
	}
	return -EAFNOSUPPORT;
}

socklen_t addrbook_addr_to_sockaddr(const struct addrbook_addr *a, struct sockaddr_storage *out)
{
	memset(out, 0, sizeof *out);
	if (a->family == 4) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)out;
		s4->sin_family = AF_INET;
		memcpy(&s4->sin_addr, a->ip, 4);
		s4->sin_port = htons(a->port);
		return sizeof *s4;
	}
	if (a->family == 6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)out;
		s6->sin6_family = AF_INET6;
		memcpy(&s6->sin6_addr, a->ip, 16);
		s6->sin6_port = htons(a->port);
		return sizeof *s6;
	}
	return 0;
}

uint64_t addrbook_backoff_ms(uint32_t failures)
{
	/* 2000 << 8 is past the cap already: no shift can overflow. */
	uint64_t wait = (uint64_t)ADDRBOOK_BACKOFF_BASE_MS << (failures < 8 ? failures : 8);
	return wait > ADDRBOOK_BACKOFF_MAX_MS ? ADDRBOOK_BACKOFF_MAX_MS : wait;
}

uint64_t addrbook_find(const struct addrbook *ab, const struct addrbook_addr *a)
{
	for (size_t i = 0; i < ab->n; i++)
		if (same_addr(&ab->slots[i].addr, a))
			return handle_of(ab, i);
	return 0;
}

/* The slot to give a new address in a full book (see addrbook.h), or -1. */
static long evict_victim(const struct addrbook *ab)
{
	long v = -1;
	for (size_t i = 0; i < ab->n; i++) {
		const struct slot *s = &ab->slots[i];
		if (s->connected || s->banned || source_rank(s->source) == 2 || s->failures == 0)
			continue;
		if (v < 0 || s->failures > ab->slots[v].failures ||
		    (s->failures == ab->slots[v].failures && s->seq < ab->slots[v].seq))
			v = (long)i;
	}
	return v;
}

int addrbook_add(struct addrbook *ab, const struct addrbook_addr *a, enum addrbook_source src,
		 uint64_t *handle_out)
{
	if (handle_out)
		*handle_out = 0;
	size_t n = ip_len(a->family);
	if (n == 0)
		return -EAFNOSUPPORT;
	static const uint8_t zero[16];
	if (a->port == 0 || memcmp(a->ip, zero, n) == 0 || (unsigned)src >= ADDRBOOK_SRC_COUNT)
		return -EINVAL;
	struct addrbook_addr norm;
	memset(&norm, 0, sizeof norm);
	norm.family = a->family;
	memcpy(norm.ip, a->ip, n);
	norm.port = a->port;

	uint64_t h = addrbook_find(ab, &norm);
	if (h) {
		struct slot *s = slot_of(ab, h);
		if (source_rank((uint8_t)src) > source_rank(s->source))
			s->source = (uint8_t)src;
		if (handle_out)
			*handle_out = h;
		return 1;
	}

	size_t i;
	uint32_t gen = 1;
	if (ab->n < ab->cap) {
		if (ab->n == ab->n_alloc) {
			size_t na = ab->n_alloc ? 2 * ab->n_alloc : ADDRBOOK_FIRST_SLOTS;
			if (na > ab->cap)
				na = ab->cap;
			struct slot *ns = realloc(ab->slots, na * sizeof *ns);
			if (!ns)
				return -ENOMEM;
			ab->slots = ns;
			ab->n_alloc = na;
		}
		i = ab->n++;
	} else {
		long v = evict_victim(ab);
		if (v < 0)
			return -ENOSPC;
		i = (size_t)v;
		gen = ab->slots[i].gen + 1;
		if (gen == 0) /* after 2^32 reuses of one slot: 0 means "no handle" */
			gen = 1;
	}
	struct slot *s = &ab->slots[i];
	memset(s, 0, sizeof *s);
	s->addr = norm;
	s->seq = ab->next_seq++;
	s->gen = gen;
	s->source = (uint8_t)src;
	if (handle_out)
		*handle_out = handle_of(ab, i);
	return 0;
}

int addrbook_get(const struct addrbook *ab, uint64_t h, struct addrbook_entry *out)
{
	const struct slot *s = slot_of(ab, h);
	if (!s)
		return -ENOENT;
	memset(out, 0, sizeof *out);
	out->addr = s->addr;
	out->source = (enum addrbook_source)s->source;
	out->failures = s->failures;
	out->next_dial_ms = s->next_dial_ms;
	out->connected = s->connected;
	out->banned = s->banned;
	out->plain_only = s->plain_only;
	out->legacy_hello = s->legacy_hello;
	return 0;
}

/* Does slot a come before slot b among candidates? */
static bool dials_before(const struct slot *a, const struct slot *b)
{
	if (a->failures != b->failures)
		return a->failures < b->failures;
	if (a->next_dial_ms != b->next_dial_ms)
		return a->next_dial_ms < b->next_dial_ms;
	return a->seq < b->seq;
}

size_t addrbook_candidates(const struct addrbook *ab, uint64_t now, uint64_t *handles_out,
			   size_t k)
{
	/* Insertion into a sorted list of at most k: O(n k) with k the few
	 * free connection slots, and no allocation. */
	size_t got = 0;
	for (size_t i = 0; i < ab->n && k > 0; i++) {
		const struct slot *s = &ab->slots[i];
		if (s->connected || s->banned || s->next_dial_ms > now)
			continue;
		size_t at = got;
		while (at > 0 && dials_before(s, slot_of(ab, handles_out[at - 1])))
			at--;
		if (at == k)
			continue;
		size_t last = got < k ? got : k - 1;
		memmove(&handles_out[at + 1], &handles_out[at], (last - at) * sizeof *handles_out);
		handles_out[at] = handle_of(ab, i);
		if (got < k)
			got++;
	}
	return got;
}

int addrbook_dial(struct addrbook *ab, uint64_t h, uint64_t now)
{
	struct slot *s = slot_of(ab, h);
	if (!s)
		return -ENOENT;
	if (s->banned)
		return -EACCES;
	if (s->connected)
		return -EBUSY;
	if (s->next_dial_ms > now)
		return -EAGAIN;
	uint64_t wait = addrbook_backoff_ms(s->failures);
	s->next_dial_ms = now > UINT64_MAX - wait ? UINT64_MAX : now + wait;
	if (s->failures < UINT32_MAX)
		s->failures++;
	s->connected = true;
	return 0;
}

int addrbook_succeeded(struct addrbook *ab, uint64_t h)
{
	struct slot *s = slot_of(ab, h);
	if (!s)
		return -ENOENT;
	s->failures = 0;
	return 0;
}

int addrbook_set_connected(struct addrbook *ab, uint64_t h, bool connected)
{
	struct slot *s = slot_of(ab, h);
	if (!s)
		return -ENOENT;
	s->connected = connected;
	return 0;
}

int addrbook_retry_now(struct addrbook *ab, uint64_t h)
{
	struct slot *s = slot_of(ab, h);
	if (!s)
		return -ENOENT;
	s->next_dial_ms = 0;
	return 0;
}

void addrbook_retry_all(struct addrbook *ab)
{
	for (size_t i = 0; i < ab->n; i++)
		ab->slots[i].next_dial_ms = 0;
}

int addrbook_set_plain_only(struct addrbook *ab, uint64_t h, bool plain)
{
	struct slot *s = slot_of(ab, h);
	if (!s)
		return -ENOENT;
	s->plain_only = plain;
	if (plain) {
		s->failures = 0;
		s->next_dial_ms = 0;
	}
	return 0;
}

int addrbook_set_legacy_hello(struct addrbook *ab, uint64_t h, bool legacy)
{
	struct slot *s = slot_of(ab, h);
	if (!s)
		return -ENOENT;
	s->legacy_hello = legacy;
	if (legacy) {
		s->failures = 0;
		s->next_dial_ms = 0;
	}
	return 0;
}

int addrbook_ban_entry(struct addrbook *ab, uint64_t h)
{
	struct slot *s = slot_of(ab, h);
	if (!s)
		return -ENOENT;
	s->banned = true;
	return 0;
}

bool addrbook_host_banned(const struct addrbook *ab, const struct addrbook_addr *a)
{
	if (ip_len(a->family) == 0)
		return false;
	for (size_t i = 0; i < ab->n_hosts; i++)
		if (ab->hosts[i].family == a->family &&
		    memcmp(ab->hosts[i].ip, a->ip, ip_len(a->family)) == 0)
			return true;
	return false;
}

int addrbook_ban_host(struct addrbook *ab, const struct addrbook_addr *a)
{
	size_t n = ip_len(a->family);
	if (n == 0)
		return -EAFNOSUPPORT;
	if (addrbook_host_banned(ab, a))
		return 0;
	struct ban_host *b = &ab->hosts[ab->next_host];
	memset(b, 0, sizeof *b);
	b->family = a->family;
	memcpy(b->ip, a->ip, n);
	ab->next_host = (ab->next_host + 1) % ADDRBOOK_MAX_BANS;
	if (ab->n_hosts < ADDRBOOK_MAX_BANS)
		ab->n_hosts++;
	return 0;
}

bool addrbook_id_banned(const struct addrbook *ab, const uint8_t id[ADDRBOOK_PEER_ID_LEN])
{
	for (size_t i = 0; i < ab->n_ids; i++)
		if (memcmp(ab->ids[i], id, ADDRBOOK_PEER_ID_LEN) == 0)
			return true;
	return false;
}

int addrbook_ban_id(struct addrbook *ab, const uint8_t id[ADDRBOOK_PEER_ID_LEN])
{
	if (addrbook_id_banned(ab, id))
		return 0;
	memcpy(ab->ids[ab->next_id], id, ADDRBOOK_PEER_ID_LEN);
	ab->next_id = (ab->next_id + 1) % ADDRBOOK_MAX_BANS;
	if (ab->n_ids < ADDRBOOK_MAX_BANS)
		ab->n_ids++;
	return 0;
}

#define BROKEN(why)                      \
	do {                             \
		if (what_out)            \
			*what_out = why; \
		return -EFAULT;          \
	} while (0)

int addrbook_check_invariants(const struct addrbook *ab, const char **what_out)
{
	if (ab->cap == 0 || ab->cap > ADDRBOOK_MAX_CAP)
		BROKEN("cap out of range");
	if (ab->n > ab->cap)
		BROKEN("more entries than the cap");
	if (ab->n > ab->n_alloc)
		BROKEN("more entries than slots");
	for (size_t i = 0; i < ab->n; i++) {
		const struct slot *s = &ab->slots[i];
		size_t n = ip_len(s->addr.family);
		if (n == 0)
			BROKEN("an entry of a bad family");
		if (s->addr.port == 0)
			BROKEN("an entry with port 0");
		for (size_t b = n; b < 16; b++)
			if (s->addr.ip[b])
				BROKEN("an IPv4 entry not normalised");
		if (s->gen == 0)
			BROKEN("an entry of generation 0");
		if (s->source >= ADDRBOOK_SRC_COUNT)
			BROKEN("an entry of no known source");
		if (s->seq >= ab->next_seq)
			BROKEN("an entry from the future");
		if (slot_of(ab, handle_of(ab, i)) != s)
			BROKEN("a handle that does not name its entry");
		for (size_t j = i + 1; j < ab->n; j++)
			if (same_addr(&s->addr, &ab->slots[j].addr))
				BROKEN("an address listed twice");
	}
	if (ab->n_hosts > ADDRBOOK_MAX_BANS || ab->next_host >= ADDRBOOK_MAX_BANS)
		BROKEN("host bans out of range");
	if (ab->n_ids > ADDRBOOK_MAX_BANS || ab->next_id >= ADDRBOOK_MAX_BANS)
		BROKEN("id bans out of range");
	for (size_t i = 0; i < ab->n_hosts; i++)
		if (ip_len(ab->hosts[i].family) == 0)
			BROKEN("a host ban of a bad family");
	return 0;
}
