/* test_swarm_pages.c: seeking to a swarm id (swarm_first_after, over
 * node/swarm.c's index by id) and the query of GET /api/v1/swarms. */
#include "config.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "node/api_server.h"
#include "node/node.h"
#include "node/swarm.h"

static struct node *node_new(void)
{
	struct node *node = calloc(1, sizeof *node);
	assert_non_null(node);
	node->next_swarm_id = 1;
	return node;
}

static void node_drop(struct node *node)
{
	while (node->swarms)
		swarm_free(node, node->swarms);
	free(node);
}

/* The list is in ascending id order, and every swarm's successor is what
 * a seek to its id answers. */
static void assert_consistent(const struct node *node)
{
	for (const struct swarm *sw = node->swarms; sw; sw = sw->next) {
		if (sw->next)
			assert_true(sw->id < sw->next->id);
		assert_ptr_equal(swarm_first_after(node, sw->id), sw->next);
		assert_ptr_equal(swarm_first_after(node, sw->id - 1), sw);
	}
}

static void test_seek(void **state)
{
	(void)state;
	struct node *node = node_new();
	assert_null(swarm_first_after(node, 0));
	struct swarm *sw[300];
	for (int i = 0; i < 300; i++) {
		sw[i] = swarm_new(node, 0, SWARM_ROLE_SHARE, "x", "/x");
		assert_non_null(sw[i]);
		assert_int_equal(sw[i]->id, i + 1);
	}
	assert_consistent(node);
	assert_ptr_equal(swarm_first_after(node, 0), sw[0]);
	assert_ptr_equal(swarm_first_after(node, -5), sw[0]);
	assert_ptr_equal(swarm_first_after(node, 1), sw[1]);
	assert_ptr_equal(swarm_first_after(node, 150), sw[150]);
	assert_ptr_equal(swarm_first_after(node, 299), sw[299]);
	assert_null(swarm_first_after(node, 300));
	assert_null(swarm_first_after(node, INT64_MAX));

	/* Remove every third swarm: a seek to a removed id lands on the
	 * next one still there. */
	for (int i = 0; i < 300; i += 3)
		swarm_free(node, sw[i]);
	assert_consistent(node);
	assert_ptr_equal(swarm_first_after(node, 0), sw[1]);
	assert_ptr_equal(swarm_first_after(node, 3), sw[4]); /* id 4 is gone: 5 */
	assert_ptr_equal(swarm_first_after(node, 297), sw[298]);
	/* Ids are never reused while running. */
	struct swarm *more = swarm_new(node, 0, SWARM_ROLE_JOIN, "y", "/y");
	assert_int_equal(more->id, 301);
	assert_ptr_equal(swarm_first_after(node, 300), more);
	assert_consistent(node);
	node_drop(node);
}

/* Loading from the database gives ids with gaps, in order. */
static void test_load_order(void **state)
{
	(void)state;
	struct node *node = node_new();
	int64_t ids[] = { 3, 7, 8, 20, 1000 };
	for (size_t i = 0; i < 5; i++)
		assert_int_equal(swarm_new(node, ids[i], SWARM_ROLE_SHARE, "x", "/x")->id, ids[i]);
	assert_consistent(node);
	assert_int_equal(swarm_first_after(node, 8)->id, 20);
	assert_int_equal(swarm_first_after(node, 9)->id, 20);
	assert_int_equal(swarm_first_after(node, 0)->id, 3);
	assert_int_equal(swarm_new(node, 0, SWARM_ROLE_SHARE, "x", "/x")->id, 1001);
	node_drop(node);
}

/* A long run of removed ids, the cursor inside it: the seek still lands
 * on the first swarm past the cursor, from either side of the run. */
static void test_holes(void **state)
{
	(void)state;
	struct node *node = node_new();
	struct swarm *sw[2000];
	for (int i = 0; i < 2000; i++)
		sw[i] = swarm_new(node, 0, SWARM_ROLE_SHARE, "x", "/x");
	for (int i = 10; i < 1990; i++)
		swarm_free(node, sw[i]); /* ids 11..1990 are gone */
	assert_consistent(node);
	assert_ptr_equal(swarm_first_after(node, 10), sw[1990]);
	assert_ptr_equal(swarm_first_after(node, 11), sw[1990]);
	assert_ptr_equal(swarm_first_after(node, 500), sw[1990]);
	assert_ptr_equal(swarm_first_after(node, 1989), sw[1990]);
	assert_ptr_equal(swarm_first_after(node, 1990), sw[1990]);
	assert_ptr_equal(swarm_first_after(node, 1991), sw[1991]);
	assert_ptr_equal(swarm_first_after(node, 9), sw[9]);
	for (int i = 1990; i < 2000; i++)
		swarm_free(node, sw[i]);
	assert_null(swarm_first_after(node, 10));
	assert_null(swarm_first_after(node, 500));
	assert_ptr_equal(swarm_first_after(node, 3), sw[3]);
	node_drop(node);
	node = node_new();
	assert_null(swarm_first_after(node, 0));
	node_drop(node);
}

static void test_query(void **state)
{
	(void)state;
	struct api_swarms_query q;
	char err[320];
	assert_int_equal(api_swarms_query_parse(NULL, &q, err, sizeof err), 0);
	assert_int_equal(q.limit, 0);
	assert_false(q.has_after);
	assert_int_equal(q.states, 0);
	assert_int_equal(api_swarms_query_parse("", &q, err, sizeof err), 0);

	assert_int_equal(api_swarms_query_parse("limit=100&after=250", &q, err, sizeof err), 0);
	assert_int_equal(q.limit, 100);
	assert_true(q.has_after);
	assert_int_equal(q.after, 250);
	assert_int_equal(api_swarms_query_parse("after=0", &q, err, sizeof err), 0);
	assert_true(q.has_after);
	assert_int_equal(q.after, 0);

	assert_int_equal(api_swarms_query_parse("state=seeding,error", &q, err, sizeof err), 0);
	assert_int_equal(q.states, 1u << SWARM_SEEDING | 1u << SWARM_ERROR);
	assert_int_equal(api_swarms_query_parse("state=seeding%2Cpaused", &q, err, sizeof err), 0);
	assert_int_equal(q.states, 1u << SWARM_SEEDING | 1u << SWARM_PAUSED);

	assert_int_equal(api_swarms_query_parse("q=My%20Photos&sort=busiest&limit=5", &q, err,
						sizeof err),
			 0);
	assert_string_equal(q.q, "My Photos");
	assert_true(q.busiest);
	assert_int_equal(api_swarms_query_parse("sort=id", &q, err, sizeof err), 0);
	assert_false(q.busiest);

	/* Every bad value is refused with a message naming the parameter. */
	const char *bad[] = { "limit=0",       "limit=1001",  "limit=-1",        "limit=1e3",
			      "limit=",        "limit=10x",   "limit=%2010",     "after=-1",
			      "after=abc",     "after=",      "after=99999999999999999999",
			      "state=",        "state=seed",  "state=seeding,",  "state=,seeding",
			      "q=",            "sort=rate",   "limit=5&limit=6", "bogus=1",
			      "sort=busiest&after=3" };
	const char *names[] = { "limit", "limit", "limit", "limit", "limit", "limit", "limit",
				"after", "after", "after", "after", "state", "state", "state",
				"state", "q", "sort", "twice", "bogus", "after" };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		err[0] = '\0';
		int rc = api_swarms_query_parse(bad[i], &q, err, sizeof err);
		if (rc != -EINVAL || !strstr(err, names[i]))
			fail_msg("%s: rc %d, message '%s'", bad[i], rc, err);
	}
	char longq[API_SWARMS_MAX_QUERY + 8] = "q=";
	memset(longq + 2, 'a', API_SWARMS_MAX_QUERY);
	longq[API_SWARMS_MAX_QUERY + 2] = '\0';
	assert_int_equal(api_swarms_query_parse(longq, &q, err, sizeof err), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_seek),
		cmocka_unit_test(test_load_order),
		cmocka_unit_test(test_holes),
		cmocka_unit_test(test_query),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
