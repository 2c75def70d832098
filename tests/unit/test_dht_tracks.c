/* test_dht_tracks.c: the DHT's per-swarm schedule (node/dht_tracks): the
 * cap on lookups in flight, every swarm announced in turn, the swarm list
 * followed only when it changed, removed and paused swarms dropped. */
#include "config.h"

#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "dht/dht.h"
#include "node/dht_tracks.h"
#include "node/node.h"
#include "node/swarm.h"

#define NSWARMS 300

static int sent;

static int on_send(void *ctx, const struct sockaddr *to, socklen_t to_len, const uint8_t *buf,
		   size_t n)
{
	(void)ctx, (void)to, (void)to_len, (void)buf, (void)n;
	sent++;
	return 0; /* nobody answers: lookups stay in flight until we end them */
}

struct fixture {
	struct node node;
	struct dht *dht[DHTT_FAMS];
	struct dht_tracks *tt;
	struct swarm *sw[NSWARMS];
	int dummy_xfer; /* sw->xfer only has to be non-NULL for a swarm to be active */
};

static int setup(void **state)
{
	static struct fixture fx;
	memset(&fx, 0, sizeof fx);
	fx.node.next_swarm_id = 1;
	struct dht_config cfg;
	dht_config_default(&cfg);
	cfg.port = 6881;
	cfg.max_lookups = 1000; /* the library's cap must not be the one that binds */
	struct dht_callbacks cb = { .send = on_send };
	fx.dht[0] = dht_new(&cfg, &cb, NULL);
	assert_non_null(fx.dht[0]);
	/* A routing table that is not empty, so lookups can start. */
	for (int i = 0; i < 16; i++) {
		uint8_t id[DHT_ID_LEN];
		memset(id, 0x11 * (i + 1), sizeof id);
		struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)(7000 + i)),
					  .sin_addr.s_addr = htonl(0x7f000001) };
		int rc = dht_add_node(fx.dht[0], id, (const struct sockaddr *)&sa, sizeof sa, 0);
		assert_true(rc == 0 || rc == -ENOSPC);
	}
	for (int i = 0; i < NSWARMS; i++) {
		char name[32], root[64];
		snprintf(name, sizeof name, "s%d", i);
		snprintf(root, sizeof root, "/srv/s%d", i);
		fx.sw[i] = swarm_new(&fx.node, 0, SWARM_ROLE_SHARE, name, root);
		assert_non_null(fx.sw[i]);
		uint8_t h[32];
		for (int b = 0; b < 32; b++)
			h[b] = (uint8_t)(i * 7 + b * 13 + (i >> 3));
		h[0] = (uint8_t)i;
		h[1] = (uint8_t)(i >> 8);
		assert_int_equal(swarm_set_key(&fx.node, fx.sw[i], h, false), 0);
		swarm_set_state(&fx.node, fx.sw[i], SWARM_SEEDING);
		fx.sw[i]->xfer = (struct xfer *)&fx.dummy_xfer;
	}
	fx.tt = dht_tracks_new();
	assert_non_null(fx.tt);
	*state = &fx;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *fx = *state;
	dht_tracks_free(fx->tt);
	while (fx->node.swarms) {
		fx->node.swarms->xfer = NULL;
		swarm_free(&fx->node, fx->node.swarms);
	}
	dht_free(fx->dht[0]);
	return 0;
}

/* Per swarm id: lookups finished and whether one runs, from the JSON. */
static void lookups_of(struct fixture *fx, uint64_t now, int64_t *lookups, int *running)
{
	json_t *arr = dht_tracks_json(fx->tt, fx->dht, now);
	assert_non_null(arr);
	size_t i;
	json_t *o;
	json_array_foreach(arr, i, o) {
		int64_t id = json_integer_value(json_object_get(o, "id"));
		assert_true(id >= 1 && id <= NSWARMS);
		lookups[id - 1] = json_integer_value(json_object_get(o, "lookups"));
		running[id - 1] = json_is_true(json_object_get(o, "lookup_running"));
	}
	json_decref(arr);
}

/* End every lookup in flight with success (as if the DHT answered and took
 * the announce); returns how many ended. */
static int finish_running(struct fixture *fx, uint64_t now)
{
	int64_t lookups[NSWARMS];
	int running[NSWARMS];
	lookups_of(fx, now, lookups, running);
	struct dht_lookup_summary s = { .status = 0, .responded = 8, .announced = 8 };
	int n = 0;
	for (int i = 0; i < NSWARMS; i++)
		if (running[i] && fx->sw[i]) {
			dht_tracks_done(fx->tt, 0, fx->sw[i]->info_hash, &s, now);
			n++;
		}
	return n;
}

static void test_cap_and_turns(void **state)
{
	struct fixture *fx = *state;
	uint64_t now = 1000000;
	assert_true(dht_tracks_sync_due(fx->tt, &fx->node, now));
	dht_tracks_sync(fx->tt, &fx->node, now);
	assert_int_equal(dht_tracks_count(fx->tt), NSWARMS);
	assert_false(dht_tracks_sync_due(fx->tt, &fx->node, now + 1000));

	/* All are due; only the cap's worth start, and asking again starts none. */
	uint64_t wake = dht_tracks_run(fx->tt, fx->dht, 6881, now);
	assert_int_equal(dht_tracks_running(fx->tt, 0), DHTT_MAX_RUNNING);
	assert_true(sent > 0);
	assert_true(wake == UINT64_MAX); /* at the cap: a finished lookup wakes the loop */
	(void)dht_tracks_run(fx->tt, fx->dht, 6881, now + 10);
	assert_int_equal(dht_tracks_running(fx->tt, 0), DHTT_MAX_RUNNING);

	/* Rounds of "all in flight finish, the next ones start": every swarm
	 * gets its announce in ceil(300 / 88) = 4 rounds, none twice. */
	int rounds = 0;
	for (; rounds < 10; rounds++) {
		int ended = finish_running(fx, now + 100 + (uint64_t)rounds);
		if (ended == 0)
			break;
		(void)dht_tracks_run(fx->tt, fx->dht, 6881, now + 100 + (uint64_t)rounds);
		assert_true(dht_tracks_running(fx->tt, 0) <= DHTT_MAX_RUNNING);
	}
	assert_int_equal(rounds, (NSWARMS + DHTT_MAX_RUNNING - 1) / DHTT_MAX_RUNNING);
	int64_t lookups[NSWARMS];
	int running[NSWARMS];
	lookups_of(fx, now + 200, lookups, running);
	for (int i = 0; i < NSWARMS; i++) {
		assert_int_equal(lookups[i], 1);
		assert_false(running[i]);
	}
	/* Nothing is due until the re-announce, 15 minutes on. */
	wake = dht_tracks_run(fx->tt, fx->dht, 6881, now + 300);
	assert_int_equal(dht_tracks_running(fx->tt, 0), 0);
	assert_true(wake >= now + 100 + 15 * 60 * 1000 && wake != UINT64_MAX);
}

static void test_follows_changes(void **state)
{
	struct fixture *fx = *state;
	uint64_t now = 5000000;
	/* Paused before anything runs: it is never looked up. */
	struct swarm *p = fx->sw[NSWARMS - 1];
	swarm_set_state(&fx->node, p, SWARM_PAUSED);
	dht_tracks_sync(fx->tt, &fx->node, now);
	(void)dht_tracks_run(fx->tt, fx->dht, 6881, now);
	assert_int_equal(dht_tracks_running(fx->tt, 0), DHTT_MAX_RUNNING);

	/* No change: no walk needed. */
	assert_false(dht_tracks_sync_due(fx->tt, &fx->node, now + 1));

	/* A swarm removed while its lookup runs: its track goes and the slot
	 * is free again. */
	int64_t lookups[NSWARMS];
	int running[NSWARMS];
	lookups_of(fx, now, lookups, running);
	int victim = 0;
	while (victim < NSWARMS && !running[victim])
		victim++;
	assert_true(victim < NSWARMS);
	struct swarm *gone = fx->sw[victim];
	fx->sw[victim] = NULL;
	gone->xfer = NULL;
	swarm_free(&fx->node, gone);
	assert_true(dht_tracks_sync_due(fx->tt, &fx->node, now + 2000));
	dht_tracks_sync(fx->tt, &fx->node, now + 2000);
	assert_int_equal(dht_tracks_count(fx->tt), NSWARMS - 1);
	assert_int_equal(dht_tracks_running(fx->tt, 0), DHTT_MAX_RUNNING - 1);

	/* Everything else gets its turn; the paused one does not. */
	while (finish_running(fx, now + 4000) > 0)
		(void)dht_tracks_run(fx->tt, fx->dht, 6881, now + 4000);
	memset(lookups, 0, sizeof lookups);
	lookups_of(fx, now + 5000, lookups, running);
	for (int i = 0; i < NSWARMS - 1; i++)
		assert_int_equal(lookups[i], i == victim ? 0 : 1);
	assert_int_equal(lookups[NSWARMS - 1], 0);

	/* Resumed: due at once. */
	swarm_set_state(&fx->node, p, SWARM_SEEDING);
	assert_true(dht_tracks_sync_due(fx->tt, &fx->node, now + 6000));
	dht_tracks_sync(fx->tt, &fx->node, now + 6000);
	(void)dht_tracks_run(fx->tt, fx->dht, 6881, now + 6000);
	assert_int_equal(dht_tracks_running(fx->tt, 0), 1);
	lookups_of(fx, now + 6000, lookups, running);
	assert_true(running[NSWARMS - 1]);
}

/* The counts by state follow every setter, and removed swarms leave them. */
static void test_state_counts(void **state)
{
	struct fixture *fx = *state;
	uint32_t counts[SWARM_STATE_COUNT];
	assert_int_equal(swarm_count_states(&fx->node, counts), NSWARMS);
	assert_int_equal(counts[SWARM_SEEDING], NSWARMS);
	swarm_set_state(&fx->node, fx->sw[3], SWARM_ERROR);
	swarm_mark_removed(&fx->node, fx->sw[4]);
	assert_int_equal(swarm_count_states(&fx->node, counts), NSWARMS - 1);
	assert_int_equal(counts[SWARM_SEEDING], NSWARMS - 2);
	assert_int_equal(counts[SWARM_ERROR], 1);
	/* Lookups by the indexes find the same swarm a walk would. */
	assert_ptr_equal(swarm_find_by_hash(&fx->node, fx->sw[7]->info_hash), fx->sw[7]);
	assert_ptr_equal(swarm_find_by_key20(&fx->node, fx->sw[8]->info_hash), fx->sw[8]);
	assert_ptr_equal(swarm_find_by_root(&fx->node, SWARM_ROLE_SHARE, "/srv/s9"), fx->sw[9]);
	assert_null(swarm_find_by_root(&fx->node, SWARM_ROLE_JOIN, "/srv/s9"));
	char id[24];
	snprintf(id, sizeof id, "%lld", (long long)fx->sw[10]->id);
	assert_ptr_equal(swarm_find(&fx->node, id), fx->sw[10]);
	uint8_t v1[20];
	memset(v1, 0xab, sizeof v1);
	assert_null(swarm_find_by_v1(&fx->node, v1));
	assert_int_equal(swarm_set_v1(&fx->node, fx->sw[11], v1), 0);
	assert_ptr_equal(swarm_find_by_v1(&fx->node, v1), fx->sw[11]);
	/* Re-keyed: found by the new key only. */
	uint8_t old[32], nk[32];
	memcpy(old, fx->sw[12]->info_hash, 32);
	memset(nk, 0xcd, sizeof nk);
	assert_int_equal(swarm_set_key(&fx->node, fx->sw[12], nk, false), 0);
	assert_null(swarm_find_by_hash(&fx->node, old));
	assert_ptr_equal(swarm_find_by_hash(&fx->node, nk), fx->sw[12]);
	/* Freed from the middle: the list stays whole, in id order. */
	struct swarm *mid = fx->sw[20];
	fx->sw[20] = NULL;
	mid->xfer = NULL;
	swarm_free(&fx->node, mid);
	int n = 0;
	int64_t last = 0;
	for (struct swarm *sw = fx->node.swarms; sw; sw = sw->next, n++) {
		assert_true(sw->id > last);
		assert_true(!sw->next || sw->next->prev == sw);
		last = sw->id;
	}
	assert_int_equal(n, NSWARMS - 1);
	assert_ptr_equal(fx->node.swarm_ix.tail, fx->sw[NSWARMS - 1]);
}

/* With an empty routing table every start fails: one key is tried, the
 * family waits DHTT's retry, and the loop is told to sleep until then. */
static void test_empty_table_does_not_spin(void **state)
{
	struct fixture *fx = *state;
	struct dht_config cfg;
	dht_config_default(&cfg);
	cfg.port = 6881;
	struct dht_callbacks cb = { .send = on_send };
	struct dht *empty = dht_new(&cfg, &cb, NULL);
	assert_non_null(empty);
	struct dht *d[DHTT_FAMS] = { empty, NULL };
	uint64_t now = 9000000;
	dht_tracks_sync(fx->tt, &fx->node, now);
	uint64_t wake = dht_tracks_run(fx->tt, d, 6881, now);
	assert_int_equal(dht_tracks_running(fx->tt, 0), 0);
	assert_true(wake >= now + 5000 && wake != UINT64_MAX);
	/* Asked again before then: nothing is tried, same answer. */
	assert_true(dht_tracks_run(fx->tt, d, 6881, now + 10) == wake);
	/* A changed list is walked within a second, not at every call. */
	swarm_set_state(&fx->node, fx->sw[1], SWARM_PAUSED);
	assert_false(dht_tracks_sync_due(fx->tt, &fx->node, now + 10));
	assert_true(dht_tracks_sync_due(fx->tt, &fx->node, now + 1000));
	dht_free(empty);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_cap_and_turns, setup, teardown),
		cmocka_unit_test_setup_teardown(test_follows_changes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_state_counts, setup, teardown),
		cmocka_unit_test_setup_teardown(test_empty_table_does_not_spin, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
