/* test_dht_krpc.c: KRPC encoder/decoder round trips, BEP 5 wire examples,
 * and rejection of malformed messages. */
#include "config.h"

#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "dht/dht-internal.h"

static int decode_str(struct krpc_msg *m, const char *s, size_t len)
{
	return krpc_decode(m, (const uint8_t *)s, (const uint8_t *)s + len);
}
#define DECODE(m, lit) decode_str((m), (lit), sizeof(lit) - 1)

static const uint8_t ID_A[DHT_ID_LEN] = "abcdefghij0123456789";
static const uint8_t ID_M[DHT_ID_LEN] = "mnopqrstuvwxyz123456";

/* The examples of BEP 5 "KRPC Protocol", byte for byte. */
static void test_bep5_examples(void **state)
{
	(void)state;
	struct krpc_msg m;
	assert_int_equal(DECODE(&m, "d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe"), 0);
	assert_int_equal(m.y, KRPC_QUERY);
	assert_int_equal(m.q, KRPC_PING);
	assert_true(m.has_id);
	assert_memory_equal(m.id, ID_A, DHT_ID_LEN);
	assert_int_equal(m.tid_len, 2);
	assert_memory_equal(m.tid, "aa", 2);

	assert_int_equal(DECODE(&m, "d1:ad2:id20:abcdefghij01234567896:target20:mnopqrstuvwxyz123456e"
				    "1:q9:find_node1:t2:aa1:y1:qe"), 0);
	assert_int_equal(m.q, KRPC_FIND_NODE);
	assert_true(m.has_target);
	assert_memory_equal(m.target, ID_M, DHT_ID_LEN);

	assert_int_equal(DECODE(&m, "d1:ad2:id20:abcdefghij012345678912:implied_porti1e9:info_hash20:"
				    "mnopqrstuvwxyz1234564:porti6881e5:token8:aoeusnthe1:q13:announce_peer"
				    "1:t2:aa1:y1:qe"), 0);
	assert_int_equal(m.q, KRPC_ANNOUNCE_PEER);
	assert_true(m.implied_port);
	assert_int_equal(m.port, 6881);
	assert_memory_equal(m.target, ID_M, DHT_ID_LEN);
	assert_int_equal(m.token_len, 8);

	assert_int_equal(DECODE(&m, "d1:rd2:id20:abcdefghij01234567895:token8:aoeusnth6:valuesl6:axje.u"
				    "6:idhtnmee1:t2:aa1:y1:re"), 0);
	assert_int_equal(m.y, KRPC_RESPONSE);
	assert_int_equal(m.nvalues, 2);
	assert_int_equal(m.values[0].family, AF_INET);
	assert_memory_equal(m.values[0].ip, "axje", 4);
	assert_int_equal(m.values[0].port, ('.' << 8) | 'u');

	assert_int_equal(DECODE(&m, "d1:eli201e23:A Generic Error Ocurrede1:t2:aa1:y1:ee"), 0);
	assert_int_equal(m.y, KRPC_ERROR);
	assert_int_equal(m.ecode, 201);
	assert_int_equal(m.emsg_len, 23);
}

static void test_round_trip(void **state)
{
	(void)state;
	struct buf b;
	buf_init(&b, DHT_MAX_PACKET);
	struct krpc_msg m;
	const uint8_t tid[4] = { 0, 7, 0xab, 0xcd };
	uint8_t tok[DHT_TOKEN_LEN] = { 1, 2, 3, 4, 5, 6, 7, 8 };
	enum krpc_q qs[] = { KRPC_PING, KRPC_FIND_NODE, KRPC_GET_PEERS, KRPC_ANNOUNCE_PEER };
	for (size_t i = 0; i < sizeof qs / sizeof qs[0]; i++) {
		struct krpc_query q = { .q = qs[i], .id = ID_A, .target = ID_M, .port = 51413,
					.implied_port = i % 2, .token = tok, .token_len = sizeof tok };
		buf_reset(&b);
		assert_int_equal(krpc_put_query(&b, tid, sizeof tid, &q), 0);
		assert_int_equal(krpc_decode(&m, b.data, b.data + b.len), 0);
		assert_int_equal(m.y, KRPC_QUERY);
		assert_int_equal(m.q, qs[i]);
		assert_memory_equal(m.tid, tid, 4);
		assert_memory_equal(m.id, ID_A, DHT_ID_LEN);
		if (qs[i] != KRPC_PING) {
			assert_true(m.has_target);
			assert_memory_equal(m.target, ID_M, DHT_ID_LEN);
		}
		if (qs[i] == KRPC_ANNOUNCE_PEER) {
			assert_int_equal(m.port, 51413);
			assert_int_equal(m.implied_port, i % 2);
			assert_int_equal(m.token_len, sizeof tok);
			assert_memory_equal(m.token, tok, sizeof tok);
		}
	}
	/* A reply with nodes, nodes6 and values of both families. */
	struct dht_addr a4 = { .family = AF_INET, .port = 6881, .ip = { 10, 0, 0, 1 } };
	struct dht_addr a6 = { .family = AF_INET6, .port = 443, .ip = { 0x20, 0x01, 0xd, 0xb8, [15] = 1 } };
	uint8_t nodes[2 * KRPC_NODE4_LEN], nodes6[KRPC_NODE6_LEN];
	assert_int_equal(krpc_compact_node(nodes, ID_A, &a4), KRPC_NODE4_LEN);
	assert_int_equal(krpc_compact_node(nodes + KRPC_NODE4_LEN, ID_M, &a4), KRPC_NODE4_LEN);
	assert_int_equal(krpc_compact_node(nodes6, ID_M, &a6), KRPC_NODE6_LEN);
	struct dht_addr vals[2] = { a4, a6 };
	struct krpc_reply r = { .id = ID_M, .nodes = nodes, .nodes_len = sizeof nodes,
				.nodes6 = nodes6, .nodes6_len = sizeof nodes6,
				.token = tok, .token_len = sizeof tok, .values = vals, .nvalues = 2 };
	buf_reset(&b);
	assert_int_equal(krpc_put_reply(&b, tid, sizeof tid, &r), 0);
	assert_int_equal(krpc_decode(&m, b.data, b.data + b.len), 0);
	assert_int_equal(m.y, KRPC_RESPONSE);
	assert_memory_equal(m.id, ID_M, DHT_ID_LEN);
	assert_int_equal(m.nodes_len, sizeof nodes);
	assert_int_equal(m.nodes6_len, sizeof nodes6);
	assert_int_equal(m.nvalues, 2);
	assert_true(dht_addr_eq(&m.values[0], &a4));
	assert_true(dht_addr_eq(&m.values[1], &a6));
	uint8_t id[DHT_ID_LEN];
	struct dht_addr got;
	krpc_read_node(m.nodes, KRPC_NODE4_LEN, 1, id, &got);
	assert_memory_equal(id, ID_M, DHT_ID_LEN);
	assert_true(dht_addr_eq(&got, &a4));
	krpc_read_node(m.nodes6, KRPC_NODE6_LEN, 0, id, &got);
	assert_true(dht_addr_eq(&got, &a6));
	/* Errors. */
	buf_reset(&b);
	assert_int_equal(krpc_put_error(&b, tid, sizeof tid, KRPC_E_METHOD, "method unknown"), 0);
	assert_int_equal(krpc_decode(&m, b.data, b.data + b.len), 0);
	assert_int_equal(m.y, KRPC_ERROR);
	assert_int_equal(m.ecode, 204);
	assert_int_equal(m.emsg_len, strlen("method unknown"));
	/* Unknown query names decode (to be answered with 204). */
	assert_int_equal(DECODE(&m, "d1:ad2:id20:abcdefghij0123456789e1:q4:vote1:t1:x1:y1:qe"), 0);
	assert_int_equal(m.q, KRPC_Q_UNKNOWN);
	/* BEP 43 read-only flag. */
	assert_int_equal(DECODE(&m, "d1:ad2:id20:abcdefghij0123456789e1:q4:ping2:roi1e1:t1:x1:y1:qe"), 0);
	assert_true(m.read_only);
	buf_destroy(&b);
}

static void test_malformed(void **state)
{
	(void)state;
	static const char *bad[] = {
		"",
		"d",
		"le",
		"i42e",
		"de",
		/* no t / empty t / t too long / t not a string */
		"d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:y1:qe",
		"d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t0:1:y1:qe",
		"d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t17:aaaaaaaaaaaaaaaaa1:y1:qe",
		"d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:ti1e1:y1:qe",
		/* y missing, wrong, too long */
		"d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aae",
		"d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:xe",
		"d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y2:qqe",
		/* query without a / q, a not a dict */
		"d1:q4:ping1:t2:aa1:y1:qe",
		"d1:ad2:id20:abcdefghij0123456789e1:t2:aa1:y1:qe",
		"d1:al2:ide1:q4:ping1:t2:aa1:y1:qe",
		/* id of the wrong size or type */
		"d1:ad2:id19:abcdefghij012345678e1:q4:ping1:t2:aa1:y1:qe",
		"d1:ad2:idi5ee1:q4:ping1:t2:aa1:y1:qe",
		/* port out of range, negative */
		"d1:ad2:id20:abcdefghij01234567894:porti65536ee1:q4:ping1:t2:aa1:y1:qe",
		"d1:ad2:id20:abcdefghij01234567894:porti-1ee1:q4:ping1:t2:aa1:y1:qe",
		/* response without r or without id */
		"d1:t2:aa1:y1:re",
		"d1:rd5:token1:xe1:t2:aa1:y1:re",
		/* nodes not a multiple of 26, nodes6 of 38 */
		"d1:rd2:id20:abcdefghij01234567895:nodes3:abce1:t2:aa1:y1:re",
		"d1:rd2:id20:abcdefghij01234567896:nodes626:abcdefghij0123456789abcdefe1:t2:aa1:y1:re",
		/* values entries of the wrong size or type */
		"d1:rd2:id20:abcdefghij01234567896:valuesl5:abcdeee1:t2:aa1:y1:re",
		"d1:rd2:id20:abcdefghij01234567896:valuesli1eee1:t2:aa1:y1:re",
		/* error not [int, str] */
		"d1:eli201ee1:t2:aa1:y1:ee",
		"d1:el3:abc3:abce1:t2:aa1:y1:ee",
		"d1:eli201e3:abci1ee1:t2:aa1:y1:ee",
		/* unsorted keys, trailing garbage, deep nesting */
		"d1:t2:aa1:ad2:id20:abcdefghij0123456789e1:q4:ping1:y1:qe",
		"d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qeX",
	};
	struct krpc_msg m;
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		int rc = decode_str(&m, bad[i], strlen(bad[i]));
		if (rc == 0)
			fail_msg("accepted malformed #%zu: %s", i, bad[i]);
	}
	/* Nesting past the bencode depth limit. */
	char deep[400];
	size_t n = 0;
	for (int i = 0; i < 150; i++)
		deep[n++] = 'l';
	for (int i = 0; i < 150; i++)
		deep[n++] = 'e';
	assert_int_not_equal(decode_str(&m, deep, n), 0);
	/* Too many bencode nodes for one message. */
	char big[1400];
	n = 0;
	big[n++] = 'l';
	for (int i = 0; i < 600; i++) {
		big[n++] = 'i';
		big[n++] = '1';
		big[n++] = 'e';
		if (n > sizeof big - 2)
			break;
	}
	big[n++] = 'e';
	assert_int_equal(decode_str(&m, big, n), -E2BIG);
}

static void test_values_capped(void **state)
{
	(void)state;
	/* More values than KRPC_MAX_VALUES: decoded, the rest ignored. */
	struct buf b;
	buf_init(&b, 4096);
	assert_int_equal(buf_printf(&b, "d1:rd2:id20:abcdefghij01234567896:valuesl"), 0);
	for (int i = 0; i < KRPC_MAX_VALUES + 20; i++)
		assert_int_equal(buf_append(&b, "6:abcdef", 8), 0);
	assert_int_equal(buf_printf(&b, "ee1:t2:aa1:y1:re"), 0);
	struct krpc_msg m;
	assert_int_equal(krpc_decode(&m, b.data, b.data + b.len), 0);
	assert_int_equal(m.nvalues, KRPC_MAX_VALUES);
	buf_destroy(&b);
}

/* BEP 42: a response's top-level "ip" (how the responder sees us) is read
 * when it is 6 or 18 bytes, ignored otherwise; replies carry the querier's. */
static void test_bep42_ip(void **state)
{
	(void)state;
	struct krpc_msg m;
	/* 203.0.113.7:6881 */
	assert_int_equal(DECODE(&m, "d2:ip6:\xcb\x00\x71\x07\x1a\xe1"
				    "1:rd2:id20:mnopqrstuvwxyz123456e1:t2:aa1:y1:re"), 0);
	assert_int_equal(m.y, KRPC_RESPONSE);
	assert_non_null(m.ip);
	assert_int_equal(m.ip_len, 6);
	assert_memory_equal(m.ip, "\xcb\x00\x71\x07\x1a\xe1", 6);
	/* IPv6 + port */
	assert_int_equal(DECODE(&m, "d2:ip18:\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\x01\x1a\xe1"
				    "1:rd2:id20:mnopqrstuvwxyz123456e1:t2:aa1:y1:re"), 0);
	assert_int_equal(m.ip_len, 18);
	/* A wrong size or type: no ip, the response itself still decodes. */
	assert_int_equal(DECODE(&m, "d2:ip5:\x01\x02\x03\x04\x05"
				    "1:rd2:id20:mnopqrstuvwxyz123456e1:t2:aa1:y1:re"), 0);
	assert_null(m.ip);
	assert_int_equal(DECODE(&m, "d2:ipi7e1:rd2:id20:mnopqrstuvwxyz123456e1:t2:aa1:y1:re"), 0);
	assert_null(m.ip);
	/* Absent. */
	assert_int_equal(DECODE(&m, "d1:rd2:id20:mnopqrstuvwxyz123456e1:t2:aa1:y1:re"), 0);
	assert_null(m.ip);
	/* Encoded before "r" (sorted keys) and read back. */
	struct dht_addr a = { .family = AF_INET, .port = 6881, .ip = { 203, 0, 113, 7 } };
	struct krpc_reply r = { .ip = &a, .id = ID_M };
	struct buf b;
	buf_init(&b, 512);
	assert_int_equal(krpc_put_reply(&b, (const uint8_t *)"aa", 2, &r), 0);
	const char want[] = "d2:ip6:\xcb\x00\x71\x07\x1a\xe1"
			    "1:rd2:id20:mnopqrstuvwxyz123456e1:t2:aa1:y1:re";
	assert_int_equal(b.len, sizeof want - 1);
	assert_memory_equal(b.data, want, sizeof want - 1);
	assert_int_equal(krpc_decode(&m, b.data, b.data + b.len), 0);
	assert_int_equal(m.ip_len, 6);
	buf_destroy(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bep5_examples),
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_values_capped),
		cmocka_unit_test(test_bep42_ip),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
