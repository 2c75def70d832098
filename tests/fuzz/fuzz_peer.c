/* fuzz_peer.c: a whole peer connection of a real engine: bytes from a
 * "remote peer" go through the connection layer (node/conn.c: transport
 * sniffing, plain or encrypted, the encrypted transport, the wire decoder),
 * its callbacks into the engine (node/peer_conn.c) and the engine's message
 * dispatch (engine_wire.c) for a seeding swarm, with the event loop and a
 * worker thread running.
 *
 * Set up once per process (a data dir under $TMPDIR, a 40000-byte shared file
 * in 16 KiB pieces); each input is one incoming connection on a socketpair.
 * FUZZ_PEER_PRINT_HASH=1 prints the swarm's info-hash (to write seeds). */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>
#include <sodium.h>

#include "common/buf.h"
#include "common/log.h"
#include "common/sha256.h"
#include "common/util.h"
#include "node/engine_state.h"
#include "node/node.h"
#include "node/store.h"
#include "node/swarm.h"
#include "node/swarms.h"
#include "node/workers.h"
#include "transfer/merkle.h"
#include "transfer/metainfo.h"

#define FILE_SIZE 40000u
#define PIECE 16384u
#define FUZZ_PEER_MAX_INPUT (64u * 1024)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct node node;
static char dir[256];
static int ready = -1; /* -1 not yet, 0 ok, 1 failed */

static void teardown(void)
{
	if (ready != 0)
		return;
	engine_free(node.engine);
	node.engine = NULL;
	workers_free(node.workers);
	swarms_free_all(&node);
	store_close(node.store);
	event_base_free(node.base);
	char cmd[300];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "fuzz_peer: could not remove %s\n", dir);
}

/* A seeding share of one file, built the way `shoal share` would. */
static int make_swarm(void)
{
	char path[512];
	snprintf(path, sizeof path, "%s/share", dir);
	if (mkdir_p(path, 0700) != 0)
		return -1;
	static uint8_t content[FILE_SIZE];
	for (size_t i = 0; i < FILE_SIZE; i++)
		content[i] = (uint8_t)(i * 7 + i / 251);
	snprintf(path, sizeof path, "%s/share/a.bin", dir);
	if (write_file_atomic(path, content, FILE_SIZE, 0644) != 0)
		return -1;
	struct sha256_ctx *ctx = sha256_new();
	uint64_t pieces = merkle_piece_count(FILE_SIZE, PIECE);
	uint8_t layer[8 * 32];
	struct metainfo_file_in in = { .path = "a.bin", .size = FILE_SIZE, .layer = layer };
	for (uint64_t i = 0; i < pieces; i++) {
		uint64_t len = merkle_piece_size(FILE_SIZE, PIECE, i);
		if (merkle_piece_root(ctx, FILE_SIZE, PIECE, i, content + i * PIECE, (size_t)len,
				      layer + 32 * i) != 0)
			return -1;
	}
	int rc = merkle_layer_root(ctx, layer, pieces, PIECE, in.root);
	sha256_free(ctx);
	struct buf t;
	buf_init(&t, 1 << 20);
	uint8_t hash[32];
	if (rc || metainfo_build_torrent("share", PIECE, METAINFO_FORMAT_V2, &in, 1, NULL, 0, &t, hash) != 0)
		return -1;
	struct metainfo *mi = calloc(1, sizeof *mi);
	rc = mi ? metainfo_parse_torrent(mi, t.data, t.data + t.len) : -1;
	buf_destroy(&t);
	snprintf(path, sizeof path, "%s/share", dir);
	struct swarm *sw = rc == 0 ? swarm_new(&node, 0, SWARM_ROLE_SHARE, "share", path) : NULL;
	if (!sw) {
		free(mi);
		return -1;
	}
	sw->meta = mi;
	memcpy(sw->info_hash, mi->info_hash, 32);
	sw->has_info_hash = true;
	sw->have = calloc(1, 8);
	sw->mtimes_ns = calloc(1, sizeof *sw->mtimes_ns);
	if (!sw->have || !sw->mtimes_ns)
		return -1;
	for (uint32_t i = 0; i < mi->total_pieces; i++)
		swarm_have_set(sw, i);
	sw->state = SWARM_SEEDING;
	if (getenv("FUZZ_PEER_PRINT_HASH")) {
		char hex[65];
		hex_encode(mi->info_hash, 32, hex);
		printf("info-hash %s\n", hex);
	}
	return engine_swarm_start(node.engine, sw);
}

static int setup(void)
{
	char err[512];
	const char *tmp = getenv("TMPDIR");
	snprintf(dir, sizeof dir, "%s/shoal-fuzz-peer-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (sodium_init() < 0 || !mkdtemp(dir))
		return -1;
	log_set_level(LOG_LVL_ERROR);
	if (config_defaults(&node.cfg) != 0)
		node.cfg.data_dir[0] = '\0';
	snprintf(node.cfg.data_dir, sizeof node.cfg.data_dir, "%s", dir);
	node.cfg.peer_port = 0; /* the listener is not used: connections come from a socketpair */
	node.next_swarm_id = 1;
	char db[300];
	snprintf(db, sizeof db, "%s/shoal.db", dir);
	node.base = event_base_new();
	node.store = node.base ? store_open(db, err, sizeof err) : NULL;
	node.workers = node.store ? workers_new(node.base, 1) : NULL;
	node.engine = node.workers ? engine_new(&node, err, sizeof err) : NULL;
	ready = 0; /* from here on teardown() frees what exists */
	atexit(teardown);
	if (!node.engine || make_swarm() != 0)
		return -1;
	return 0;
}

/* Let the loop (and the worker) run until things settle, draining what the
 * engine writes back so it never blocks on us. */
static void pump(int ours, int rounds)
{
	uint8_t sink[65536];
	for (int i = 0; i < rounds; i++) {
		event_base_loop(node.base, EVLOOP_NONBLOCK);
		while (read(ours, sink, sizeof sink) > 0) {
		}
		if (i % 8 == 7)
			usleep(200); /* give a worker's completion time to land */
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (ready == -1 && setup() != 0) {
		fprintf(stderr, "fuzz_peer: setup failed\n");
		abort();
	}
	if (size > FUZZ_PEER_MAX_INPUT)
		return 0;
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0)
		return 0;
	struct sockaddr_in from = { .sin_family = AF_INET, .sin_port = htons(40000),
				    .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	/* As on_accept() does: the peer waits in eng->pending for its handshake. */
	struct peer *p = peer_accept(node.engine, sv[0], (struct sockaddr *)&from, sizeof from);
	if (!p) {
		close(sv[1]);
		return 0;
	}
	size_t off = 0;
	while (off < size) {
		ssize_t n = write(sv[1], data + off, size - off);
		if (n <= 0) {
			pump(sv[1], 4);
			if (n < 0 && errno != EAGAIN)
				break;
			continue;
		}
		off += (size_t)n;
	}
	pump(sv[1], 32);
	close(sv[1]); /* EOF: the engine closes its side */
	pump(-1, 8);
	return 0;
}
