/* dht_sim.c: lookup success, latency, hops, messages and memory of the DHT
 * over simulated networks of N in-process instances (virtual clock).
 *
 * Usage: dht_sim [-l LOOKUPS] [-s SEED] [-p LOSS_PPM] [-a MIN_MS] [-b MAX_MS] [N...]
 * Defaults: N = 100 250 500 1000, 200 lookups, 1% loss, 10-100 ms one way.
 *
 * Each run: nodes join over 20 s knowing only node 0, the network settles
 * for 10 minutes, then one lookup at a time a random node announces a random
 * key and another random node looks it up.  A lookup succeeds when the
 * announcer's address comes back. */
#include "config.h"

#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dht/simnet.h"

struct run {
	struct simnet *net;
	uint8_t key[DHT_ID_LEN];
	size_t watch;
	uint16_t want_port;
	bool done;
	uint64_t started, first_hit; /* first_hit 0: not found yet */
	struct dht_lookup_summary s;
	uint64_t rng;
};

static uint64_t rnd64(struct run *r)
{
	uint64_t x = r->rng;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	r->rng = x;
	return x * 0x2545F4914F6CDD1DULL;
}

static void on_peers(void *ctx, size_t node, const uint8_t key[DHT_ID_LEN],
		     const struct sockaddr_storage *peers, size_t n)
{
	struct run *r = ctx;
	if (node != r->watch || memcmp(key, r->key, DHT_ID_LEN) != 0 || r->first_hit)
		return;
	for (size_t i = 0; i < n; i++) {
		const struct sockaddr_in *s = (const struct sockaddr_in *)(const void *)&peers[i];
		if (ntohs(s->sin_port) == r->want_port) {
			r->first_hit = simnet_now(r->net) - r->started + 1;
			return;
		}
	}
}

static void on_done(void *ctx, size_t node, const uint8_t key[DHT_ID_LEN],
		    const struct dht_lookup_summary *s)
{
	struct run *r = ctx;
	if (node == r->watch && memcmp(key, r->key, DHT_ID_LEN) == 0) {
		r->done = true;
		r->s = *s;
	}
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static uint64_t pct(uint64_t *v, size_t n, unsigned p)
{
	if (n == 0)
		return 0;
	qsort(v, n, sizeof *v, cmp_u64);
	size_t i = (n * p + 99) / 100;
	return v[i ? i - 1 : 0];
}

/* Start a lookup at node `who` and run the network until it is done. */
static bool lookup(struct run *r, size_t who, bool announce, uint64_t limit)
{
	r->watch = who;
	r->done = false;
	r->first_hit = 0;
	r->started = simnet_now(r->net);
	if (dht_get_peers(simnet_dht(r->net, who), r->key, announce, 0, true, r->started) != 0)
		return false;
	simnet_poke(r->net, who);
	return simnet_run_while(r->net, &r->done, r->started + limit);
}

static int run_one(size_t n, unsigned lookups, uint64_t seed, uint32_t loss, uint32_t lat_min,
		   uint32_t lat_max)
{
	struct run *r = calloc(1, sizeof *r);
	uint64_t *t_first = calloc(lookups, sizeof *t_first), *t_done = calloc(lookups, sizeof *t_done);
	uint64_t *hops = calloc(lookups, sizeof *hops), *msgs = calloc(lookups, sizeof *msgs);
	if (!r || !t_first || !t_done || !hops || !msgs)
		goto oom;
	r->rng = seed ^ (n * 0x9E3779B97F4A7C15ULL) ^ 1;
	struct simnet_cfg cfg = { .n = n, .family = AF_INET, .base_port = 10000,
				  .lat_min_ms = lat_min, .lat_max_ms = lat_max, .loss_ppm = loss,
				  .seed = seed + n, .hook_ctx = r, .on_peers = on_peers,
				  .on_done = on_done };
	struct simnet *net = simnet_new(&cfg);
	if (!net)
		goto oom;
	r->net = net;
	clock_t c0 = clock();
	struct sockaddr_storage boot;
	socklen_t blen = simnet_addr(net, 0, &boot);
	for (size_t i = 1; i < n; i++) {
		simnet_run(net, i * 20000 / n);
		if (dht_ping_node(simnet_dht(net, i), (struct sockaddr *)&boot, blen,
				  simnet_now(net)) != 0)
			fprintf(stderr, "ping failed at node %zu\n", i);
		simnet_poke(net, i);
	}
	simnet_run(net, 9 * 60 * 1000);
	uint64_t sent0, dropped0, sent1, dropped1;
	simnet_counts(net, &sent0, &dropped0);
	simnet_run(net, 10 * 60 * 1000); /* one idle minute: background traffic */
	simnet_counts(net, &sent1, &dropped1);
	double bg = (double)(sent1 - sent0) / (double)n;

	unsigned ok = 0, announced_ok = 0, done_n = 0;
	size_t nfirst = 0;
	for (unsigned j = 0; j < lookups; j++) {
		size_t a = (size_t)(rnd64(r) % n), s;
		do
			s = (size_t)(rnd64(r) % n);
		while (s == a);
		for (size_t k = 0; k < DHT_ID_LEN; k += 8) {
			uint64_t v = rnd64(r);
			memcpy(r->key + k, &v, DHT_ID_LEN - k < 8 ? DHT_ID_LEN - k : 8);
		}
		r->want_port = (uint16_t)(cfg.base_port + a);
		if (lookup(r, a, true, 60000) && r->s.announced > 0)
			announced_ok++;
		if (!lookup(r, s, false, 60000))
			continue;
		t_done[done_n] = r->s.elapsed_ms;
		hops[done_n] = r->s.hops;
		msgs[done_n] = r->s.queries;
		done_n++;
		if (r->first_hit) {
			ok++;
			t_first[nfirst++] = r->first_hit - 1;
		}
	}
	size_t mem = 0, mem_max = 0, good = 0;
	for (size_t i = 0; i < n; i++) {
		struct dht_stats st;
		dht_get_stats(simnet_dht(net, i), &st, simnet_now(net));
		mem += st.memory_bytes;
		if (st.memory_bytes > mem_max)
			mem_max = st.memory_bytes;
		good += st.nodes_good;
	}
	double cpu = (double)(clock() - c0) / CLOCKS_PER_SEC;
	uint64_t q_med = pct(msgs, done_n, 50), q_p95 = pct(msgs, done_n, 95);
	printf("%5zu %6.1f%% %6.1f%% %7llu %7llu %7llu %7llu %4llu %4llu %4llu %4llu %8.1f %7zu %7zu %6.1f %6.1f\n",
	       n, 100.0 * ok / lookups, 100.0 * announced_ok / lookups,
	       (unsigned long long)pct(t_first, nfirst, 50),
	       (unsigned long long)pct(t_first, nfirst, 95),
	       (unsigned long long)pct(t_done, done_n, 50),
	       (unsigned long long)pct(t_done, done_n, 95),
	       (unsigned long long)pct(hops, done_n, 50), (unsigned long long)pct(hops, done_n, 95),
	       (unsigned long long)q_med, (unsigned long long)q_p95,
	       bg, mem / n, mem_max, (double)good / n, cpu);
	simnet_free(net);
	free(r);
	free(t_first);
	free(t_done);
	free(hops);
	free(msgs);
	return 0;
oom:
	fprintf(stderr, "out of memory\n");
	free(r);
	free(t_first);
	free(t_done);
	free(hops);
	free(msgs);
	return 1;
}

int main(int argc, char **argv)
{
	unsigned lookups = 200;
	uint64_t seed = 1;
	uint32_t loss = 10000, lat_min = 10, lat_max = 100;
	size_t sizes[32], nsizes = 0;
	for (int i = 1; i < argc; i++) {
		if (i + 1 < argc && strcmp(argv[i], "-l") == 0)
			lookups = (unsigned)strtoul(argv[++i], NULL, 10);
		else if (i + 1 < argc && strcmp(argv[i], "-s") == 0)
			seed = strtoull(argv[++i], NULL, 10);
		else if (i + 1 < argc && strcmp(argv[i], "-p") == 0)
			loss = (uint32_t)strtoul(argv[++i], NULL, 10);
		else if (i + 1 < argc && strcmp(argv[i], "-a") == 0)
			lat_min = (uint32_t)strtoul(argv[++i], NULL, 10);
		else if (i + 1 < argc && strcmp(argv[i], "-b") == 0)
			lat_max = (uint32_t)strtoul(argv[++i], NULL, 10);
		else if (nsizes < 32 && strtoul(argv[i], NULL, 10) >= 2)
			sizes[nsizes++] = strtoul(argv[i], NULL, 10);
		else {
			fprintf(stderr, "usage: %s [-l LOOKUPS] [-s SEED] [-p LOSS_PPM] [-a MIN_MS] "
					"[-b MAX_MS] [N...]\n", argv[0]);
			return 2;
		}
	}
	if (lookups == 0 || lat_max < lat_min) {
		fprintf(stderr, "need at least one lookup and MIN_MS <= MAX_MS\n");
		return 2;
	}
	if (nsizes == 0) {
		const size_t def[] = { 100, 250, 500, 1000 };
		memcpy(sizes, def, sizeof def);
		nsizes = 4;
	}
	printf("# %u lookups per size, one-way latency %u-%u ms, loss %.2f%%, seed %llu\n", lookups,
	       lat_min, lat_max, loss / 10000.0, (unsigned long long)seed);
	printf("# found: seeker got the announcer; announced: >=1 node stored it\n");
	printf("# first/done: ms to the announcer's address / to lookup end (median, p95)\n");
	printf("# hops: path length to the closest node; queries: get_peers sent by the seeker\n");
	printf("# bg: datagrams sent per node in one idle minute (maintenance)\n");
	printf("# mem: heap held per instance (dht_get_stats memory_bytes), mean and max\n");
	printf("#   N  found   annc   first    p95    done    p95 hops  p95  qry  p95       bg mem/node mem_max  good  cpu_s\n");
	for (size_t i = 0; i < nsizes; i++)
		if (run_one(sizes[i], lookups, seed, loss, lat_min, lat_max) != 0)
			return 1;
	return 0;
}
