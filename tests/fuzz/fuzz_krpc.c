/* fuzz_krpc.c: libFuzzer harness for the KRPC decoder and for a whole DHT
 * instance receiving the input as a datagram, both as a query from a stranger
 * and as the reply to a lookup query it has outstanding. */
#include "config.h"

#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dht/dht-internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct fz {
	struct sockaddr_in first_to; /* where the first query went */
	int nsent;
};

static int fz_send(void *ctx, const struct sockaddr *to, socklen_t len, const uint8_t *buf,
		   size_t n)
{
	struct fz *f = ctx;
	/* Whatever the instance sends must itself decode. */
	struct krpc_msg m;
	if (krpc_decode(&m, buf, buf + n) != 0)
		__builtin_trap();
	if (f->nsent++ == 0 && len == sizeof f->first_to)
		memcpy(&f->first_to, to, sizeof f->first_to);
	return 0;
}

/* Zeros: transaction ids become predictable (slot 0, nonce 0 = "\0\0\0\0"),
 * so corpus replies can match the outstanding query. */
static void fz_random(void *ctx, void *buf, size_t n)
{
	(void)ctx;
	memset(buf, 0, n);
}

static struct sockaddr_in lo(uint16_t port)
{
	struct sockaddr_in s;
	memset(&s, 0, sizeof s);
	s.sin_family = AF_INET;
	s.sin_port = htons(port);
	s.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct krpc_msg *m = malloc(sizeof *m);
	if (!m)
		return 0;
	if (krpc_decode(m, data, data + size) == 0) {
		/* Everything the decoder points at lies inside the input. */
		if (m->tid < data || m->tid + m->tid_len > data + size)
			__builtin_trap();
		if (m->nodes && (m->nodes_len % KRPC_NODE4_LEN || m->nodes + m->nodes_len > data + size))
			__builtin_trap();
		if (m->nodes6 && (m->nodes6_len % KRPC_NODE6_LEN ||
				  m->nodes6 + m->nodes6_len > data + size))
			__builtin_trap();
		if (m->nvalues > KRPC_MAX_VALUES)
			__builtin_trap();
	}
	free(m);

	struct fz f = { .nsent = 0 };
	struct dht_config cfg;
	dht_config_default(&cfg);
	cfg.has_id = true;
	memset(cfg.id, 0x11, DHT_ID_LEN);
	cfg.rate_per_s = 0;
	struct dht_callbacks cb = { .send = fz_send, .random_bytes = fz_random };
	struct dht *d = dht_new(&cfg, &cb, &f);
	if (!d)
		return 0;
	for (uint16_t i = 0; i < 10; i++) {
		uint8_t id[DHT_ID_LEN];
		memset(id, 0x10 + i, sizeof id);
		struct sockaddr_in a = lo((uint16_t)(10000 + i));
		int rc = dht_add_node(d, id, (struct sockaddr *)&a, sizeof a, 0);
		(void)rc; /* a full bucket is fine */
	}
	uint8_t key[DHT_ID_LEN];
	memset(key, 0x12, sizeof key);
	if (dht_get_peers(d, key, true, 6881, false, 0) != 0)
		__builtin_trap();
	struct sockaddr_in stranger = lo(7000);
	(void)dht_receive(d, (struct sockaddr *)&stranger, sizeof stranger, data, size, 1);
	(void)dht_receive(d, (struct sockaddr *)&f.first_to, sizeof f.first_to, data, size, 2);
	uint64_t wait;
	for (uint64_t t = 1000; t <= 12000; t += 1000)
		(void)dht_periodic(d, t, &wait);
	(void)dht_receive(d, (struct sockaddr *)&stranger, sizeof stranger, data, size, 13000);
	dht_free(d);
	return 0;
}
