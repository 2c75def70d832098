/* simnet.h: an in-memory datagram network of DHT instances with simulated
 * latency and loss, for tests and benchmarks (not part of libdht). */
#ifndef SHOAL_DHT_SIMNET_H
#define SHOAL_DHT_SIMNET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "dht/dht.h"

struct simnet_cfg {
	size_t n;              /* instances */
	int family;            /* AF_INET: 127.0.0.1:port; AF_INET6: [::1]:port */
	uint16_t base_port;    /* node i listens on base_port + i */
	uint32_t lat_min_ms, lat_max_ms; /* one-way latency, uniform */
	uint32_t loss_ppm;     /* datagrams lost per million */
	uint64_t seed;         /* everything random derives from it */
	/* Optional observers of every instance's lookups. */
	void *hook_ctx;
	void (*on_peers)(void *hook_ctx, size_t node, const uint8_t key[DHT_ID_LEN],
			 const struct sockaddr_storage *peers, size_t n);
	void (*on_done)(void *hook_ctx, size_t node, const uint8_t key[DHT_ID_LEN],
			const struct dht_lookup_summary *s);
};

struct simnet;

/* A network of cfg->n fresh instances at virtual time 0 (each with its
 * config from dht_config_default, rate limits keyed by port), or NULL. */
struct simnet *simnet_new(const struct simnet_cfg *cfg);
void simnet_free(struct simnet *net);

struct dht *simnet_dht(struct simnet *net, size_t i);
uint64_t simnet_now(const struct simnet *net);
/* Node i's address. */
socklen_t simnet_addr(const struct simnet *net, size_t i, struct sockaddr_storage *ss);
/* Deliver datagrams and run timers until virtual time `until`. */
void simnet_run(struct simnet *net, uint64_t until);
/* Run until `*flag` becomes true or virtual time `until`; returns *flag. */
bool simnet_run_while(struct simnet *net, const bool *flag, uint64_t until);
/* Call after using node i's API directly (get_peers, ping) so its timer
 * is brought forward. */
void simnet_poke(struct simnet *net, size_t i);
/* A dead node drops everything it is sent and never runs again. */
void simnet_kill(struct simnet *net, size_t i);
/* Datagrams sent / dropped by loss or dead or unknown destinations. */
void simnet_counts(const struct simnet *net, uint64_t *sent_out, uint64_t *dropped_out);

#endif
