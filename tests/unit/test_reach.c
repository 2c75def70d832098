/* test_reach.c: the external-address vote (node/portmap.c reach_vote): distinct
 * voters, the router's word first, junk addresses ignored, a flood from one voter. */
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "node/node.h"
#include "node/portmap.h"

static struct sockaddr_in voter(const char *ip)
{
	struct sockaddr_in sa;
	memset(&sa, 0, sizeof sa);
	sa.sin_family = AF_INET;
	sa.sin_port = htons(6881);
	assert_int_equal(inet_pton(AF_INET, ip, &sa.sin_addr), 1);
	return sa;
}

static void vote(struct node *node, const char *addr, const char *from, enum reach_source src)
{
	uint8_t a[4];
	assert_int_equal(inet_pton(AF_INET, addr, a), 1);
	struct sockaddr_in v;
	if (from)
		v = voter(from);
	reach_vote(node, AF_INET, a, from ? (const struct sockaddr *)&v : NULL, src);
}

/* external_addr and its source from the status object ("" / "" when null). */
static void external(struct node *node, char *addr, size_t alen, char *src, size_t slen)
{
	json_t *o = portmap_status_json(node, NULL);
	assert_non_null(o);
	const char *a = json_string_value(json_object_get(o, "external_addr"));
	const char *s = json_string_value(json_object_get(o, "external_addr_source"));
	snprintf(addr, alen, "%s", a ? a : "");
	snprintf(src, slen, "%s", s ? s : "");
	assert_string_equal(json_string_value(json_object_get(o, "method")), "off");
	assert_true(json_is_null(json_object_get(o, "mapped_port")));
	json_decref(o);
}

static void test_votes(void **state)
{
	(void)state;
	struct node node;
	memset(&node, 0, sizeof node);
	char a[64], s[16];
	external(&node, a, sizeof a, s, sizeof s);
	assert_string_equal(a, ""); /* nobody said anything */

	/* One peer, however often, is not enough. */
	for (int i = 0; i < 50; i++)
		vote(&node, "198.51.100.9", "192.0.2.1", REACH_PEER);
	external(&node, a, sizeof a, s, sizeof s);
	assert_string_equal(a, "");
	/* A second, distinct voter (the DHT counts the same). */
	vote(&node, "198.51.100.9", "192.0.2.2", REACH_DHT);
	external(&node, a, sizeof a, s, sizeof s);
	assert_string_equal(a, "198.51.100.9");
	assert_string_equal(s, "peers");

	/* Junk is not an address: loopback, unspecified, multicast. */
	vote(&node, "127.0.0.1", "192.0.2.3", REACH_PEER);
	vote(&node, "127.0.0.1", "192.0.2.4", REACH_PEER);
	vote(&node, "0.0.0.0", "192.0.2.3", REACH_PEER);
	vote(&node, "0.0.0.0", "192.0.2.4", REACH_PEER);
	vote(&node, "239.1.2.3", "192.0.2.3", REACH_PEER);
	vote(&node, "239.1.2.3", "192.0.2.4", REACH_PEER);
	external(&node, a, sizeof a, s, sizeof s);
	assert_string_equal(a, "198.51.100.9");
	/* Neighbours on the LAN see our LAN address: not an external one. */
	for (int i = 0; i < 5; i++) {
		char from[32];
		snprintf(from, sizeof from, "192.168.1.%d", 10 + i);
		vote(&node, "192.168.1.2", from, REACH_PEER);
		vote(&node, "10.151.1.2", from, REACH_PEER);
		vote(&node, "100.64.0.9", from, REACH_PEER);
	}
	external(&node, a, sizeof a, s, sizeof s);
	assert_string_equal(a, "198.51.100.9");

	/* One voter filling the table with made-up addresses does not push
	 * out the one two voters agree on. */
	for (int i = 0; i < 200; i++) {
		char fake[32];
		snprintf(fake, sizeof fake, "100.%d.%d.1", i / 250, i % 250 + 1);
		vote(&node, fake, "192.0.2.66", REACH_PEER);
	}
	external(&node, a, sizeof a, s, sizeof s);
	assert_string_equal(a, "198.51.100.9");

	/* Three others agree on another address: most voters win. */
	vote(&node, "203.0.113.5", "192.0.2.10", REACH_PEER);
	vote(&node, "203.0.113.5", "192.0.2.11", REACH_PEER);
	vote(&node, "203.0.113.5", "192.0.2.12", REACH_PEER);
	external(&node, a, sizeof a, s, sizeof s);
	assert_string_equal(a, "203.0.113.5");

	/* The router's word wins over any number of peers. */
	vote(&node, "11.151.2.1", NULL, REACH_ROUTER);
	external(&node, a, sizeof a, s, sizeof s);
	assert_string_equal(a, "11.151.2.1");
	assert_string_equal(s, "router");
	/* A peer's vote without a voter is not counted. */
	vote(&node, "203.0.113.99", NULL, REACH_PEER);
	reach_free(&node);
	assert_null(node.reach);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_votes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
