/* simnet.c: a discrete-event in-memory network of DHT instances (virtual
 * clock, per-datagram latency and loss) for tests and benchmarks. */
#include "config.h"

#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "dht/simnet.h"

struct sim_event {
	uint64_t at, seq;
	size_t dst;
	bool timer;
	uint16_t src_port;
	uint8_t *data; /* owned by the event */
	size_t len;
};

struct sim_node {
	struct simnet *net;
	size_t idx;
	struct dht *dht;
	uint64_t wake; /* time of the timer event that counts */
	bool dead;
};

struct simnet {
	struct simnet_cfg cfg;
	struct sim_node *nodes;
	struct sim_event *heap;
	size_t nheap, capheap;
	uint64_t now, seq, rng, sent, dropped;
};

static uint64_t rng_next(struct simnet *net)
{
	/* xorshift64*: small, fast, and reproducible from the seed. */
	uint64_t x = net->rng;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	net->rng = x;
	return x * 0x2545F4914F6CDD1DULL;
}

static void sim_random(void *ctx, void *buf, size_t n)
{
	struct sim_node *node = ctx;
	uint8_t *p = buf;
	while (n > 0) {
		uint64_t v = rng_next(node->net);
		size_t k = n < sizeof v ? n : sizeof v;
		memcpy(p, &v, k);
		p += k;
		n -= k;
	}
}

static bool before(const struct sim_event *a, const struct sim_event *b)
{
	return a->at < b->at || (a->at == b->at && a->seq < b->seq);
}

static int heap_push(struct simnet *net, struct sim_event ev)
{
	if (net->nheap == net->capheap) {
		size_t cap = net->capheap ? net->capheap * 2 : 1024;
		struct sim_event *h = realloc(net->heap, cap * sizeof *h);
		if (!h)
			return -1;
		net->heap = h;
		net->capheap = cap;
	}
	ev.seq = net->seq++;
	size_t i = net->nheap++;
	while (i > 0) {
		size_t parent = (i - 1) / 2;
		if (!before(&ev, &net->heap[parent]))
			break;
		net->heap[i] = net->heap[parent];
		i = parent;
	}
	net->heap[i] = ev;
	return 0;
}

static struct sim_event heap_pop(struct simnet *net)
{
	struct sim_event top = net->heap[0];
	struct sim_event last = net->heap[--net->nheap];
	size_t i = 0;
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;
		const struct sim_event *best = &last;
		if (l < net->nheap && before(&net->heap[l], best)) {
			m = l;
			best = &net->heap[l];
		}
		if (r < net->nheap && before(&net->heap[r], best))
			m = r;
		if (m == i)
			break;
		net->heap[i] = net->heap[m];
		i = m;
	}
	if (net->nheap > 0)
		net->heap[i] = last;
	return top;
}

static void schedule(struct sim_node *node, uint64_t wait)
{
	struct simnet *net = node->net;
	node->wake = net->now + wait;
	struct sim_event ev = { .at = node->wake, .dst = node->idx, .timer = true };
	(void)heap_push(net, ev);
}

static int sim_send(void *ctx, const struct sockaddr *to, socklen_t len, const uint8_t *buf,
		    size_t n)
{
	struct sim_node *node = ctx;
	struct simnet *net = node->net;
	uint16_t port = 0;
	net->sent++;
	if (to->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in))
		port = ntohs(((const struct sockaddr_in *)(const void *)to)->sin_port);
	else if (to->sa_family == AF_INET6 && len >= (socklen_t)sizeof(struct sockaddr_in6))
		port = ntohs(((const struct sockaddr_in6 *)(const void *)to)->sin6_port);
	size_t dst = (size_t)(port - net->cfg.base_port);
	if (port < net->cfg.base_port || dst >= net->cfg.n || to->sa_family != net->cfg.family ||
	    net->nodes[dst].dead ||
	    (net->cfg.loss_ppm && rng_next(net) % 1000000 < net->cfg.loss_ppm)) {
		net->dropped++;
		return 0;
	}
	uint32_t span = net->cfg.lat_max_ms - net->cfg.lat_min_ms;
	uint64_t lat = net->cfg.lat_min_ms + (span ? rng_next(net) % (span + 1) : 0);
	struct sim_event ev = { .at = net->now + lat, .dst = dst,
				.src_port = (uint16_t)(net->cfg.base_port + node->idx), .len = n };
	ev.data = malloc(n ? n : 1);
	if (!ev.data)
		return -1;
	memcpy(ev.data, buf, n);
	if (heap_push(net, ev) != 0) {
		free(ev.data);
		return -1;
	}
	return 0;
}

static void sim_peers(void *ctx, const uint8_t key[DHT_ID_LEN], const struct sockaddr_storage *p,
		      size_t n)
{
	struct sim_node *node = ctx;
	if (node->net->cfg.on_peers)
		node->net->cfg.on_peers(node->net->cfg.hook_ctx, node->idx, key, p, n);
}

static void sim_done(void *ctx, const uint8_t key[DHT_ID_LEN], const struct dht_lookup_summary *s)
{
	struct sim_node *node = ctx;
	if (node->net->cfg.on_done)
		node->net->cfg.on_done(node->net->cfg.hook_ctx, node->idx, key, s);
}

struct simnet *simnet_new(const struct simnet_cfg *cfg)
{
	if (cfg->n == 0 || cfg->n + cfg->base_port > 65536 || cfg->base_port == 0 ||
	    cfg->lat_max_ms < cfg->lat_min_ms)
		return NULL;
	struct simnet *net = calloc(1, sizeof *net);
	if (!net)
		return NULL;
	net->cfg = *cfg;
	net->rng = cfg->seed ? cfg->seed : 0x9E3779B97F4A7C15ULL;
	net->nodes = calloc(cfg->n, sizeof *net->nodes);
	if (!net->nodes)
		goto fail;
	struct dht_callbacks cb = { .send = sim_send, .peers_found = sim_peers,
				    .lookup_done = sim_done, .random_bytes = sim_random };
	for (size_t i = 0; i < cfg->n; i++) {
		struct dht_config dc;
		dht_config_default(&dc);
		dc.family = cfg->family;
		dc.port = (uint16_t)(cfg->base_port + i);
		dc.rate_key_port = true; /* every node is on the same loopback IP */
		net->nodes[i].net = net;
		net->nodes[i].idx = i;
		net->nodes[i].dht = dht_new(&dc, &cb, &net->nodes[i]);
		if (!net->nodes[i].dht)
			goto fail;
		schedule(&net->nodes[i], 0);
	}
	return net;
fail:
	simnet_free(net);
	return NULL;
}

void simnet_free(struct simnet *net)
{
	if (!net)
		return;
	for (size_t i = 0; net->nodes && i < net->cfg.n; i++)
		dht_free(net->nodes[i].dht);
	for (size_t i = 0; i < net->nheap; i++)
		free(net->heap[i].data);
	free(net->heap);
	free(net->nodes);
	free(net);
}

struct dht *simnet_dht(struct simnet *net, size_t i)
{
	return net->nodes[i].dht;
}

uint64_t simnet_now(const struct simnet *net)
{
	return net->now;
}

socklen_t simnet_addr(const struct simnet *net, size_t i, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof *ss);
	uint16_t port = htons((uint16_t)(net->cfg.base_port + i));
	if (net->cfg.family == AF_INET6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)(void *)ss;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = port;
		s6->sin6_addr = in6addr_loopback;
		return (socklen_t)sizeof *s6;
	}
	struct sockaddr_in *s4 = (struct sockaddr_in *)(void *)ss;
	s4->sin_family = AF_INET;
	s4->sin_port = port;
	s4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	return (socklen_t)sizeof *s4;
}

void simnet_poke(struct simnet *net, size_t i)
{
	struct sim_node *node = &net->nodes[i];
	if (node->dead)
		return;
	uint64_t wait;
	(void)dht_periodic(node->dht, net->now, &wait);
	schedule(node, wait);
}

void simnet_kill(struct simnet *net, size_t i)
{
	net->nodes[i].dead = true;
}

static bool step(struct simnet *net, uint64_t until)
{
	if (net->nheap == 0 || net->heap[0].at > until)
		return false;
	struct sim_event ev = heap_pop(net);
	net->now = ev.at;
	struct sim_node *node = &net->nodes[ev.dst];
	if (ev.timer) {
		if (!node->dead && ev.at == node->wake)
			simnet_poke(net, ev.dst);
		return true;
	}
	if (!node->dead) {
		struct sockaddr_storage ss;
		socklen_t len = simnet_addr(net, ev.src_port - net->cfg.base_port, &ss);
		(void)dht_receive(node->dht, (const struct sockaddr *)&ss, len, ev.data, ev.len,
				  net->now);
		/* Like an embedder that runs dht_periodic after each datagram,
		 * so deadlines set while answering are timed exactly. */
		simnet_poke(net, ev.dst);
	}
	free(ev.data);
	return true;
}

void simnet_run(struct simnet *net, uint64_t until)
{
	while (step(net, until))
		;
	if (net->now < until)
		net->now = until;
}

bool simnet_run_while(struct simnet *net, const bool *flag, uint64_t until)
{
	while (!*flag && step(net, until))
		;
	if (!*flag && net->now < until)
		net->now = until;
	return *flag;
}

void simnet_counts(const struct simnet *net, uint64_t *sent_out, uint64_t *dropped_out)
{
	*sent_out = net->sent;
	*dropped_out = net->dropped;
}
