/* test_bencode.c: unit tests for the strict bencode codec (common/bencode.h). */
#include "config.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/bencode.h"
#include "common/buf.h"

#define NODES 256

static struct benc_node g_nodes[NODES];

/* Parse a NUL-terminated literal (the NUL is not part of the input). */
static int parse_lit(struct benc_doc *doc, const char *s)
{
	doc->nodes = g_nodes;
	doc->cap = NODES;
	const uint8_t *p = (const uint8_t *)s;
	return benc_parse(doc, p, p + strlen(s), NULL);
}

/* Parse from an exact-size heap copy so ASan catches any read past `end`. */
static int parse_exact(struct benc_doc *doc, const void *s, size_t n, size_t cap,
		       const uint8_t **trailing_out)
{
	uint8_t *copy = malloc(n ? n : 1);
	assert_non_null(copy);
	memcpy(copy, s, n);
	doc->nodes = g_nodes;
	doc->cap = cap;
	int rc = benc_parse(doc, copy, copy + n, trailing_out);
	if (trailing_out && rc == 0)
		*trailing_out = (const uint8_t *)s + (*trailing_out - copy);
	free(copy);
	return rc;
}

static int parse_err(const char *s)
{
	struct benc_doc doc;
	int rc = parse_exact(&doc, s, strlen(s), NODES, NULL);
	if (rc)
		assert_int_equal(doc.count, 0);
	return rc;
}

/* Re-encode a parsed subtree from its nodes; returns the index after it. */
static size_t reencode(const struct benc_doc *doc, size_t i, struct buf *b)
{
	const struct benc_node *n = &doc->nodes[i];
	switch (n->type) {
	case BENC_INT:
		assert_int_equal(benc_put_int(b, n->i), 0);
		return i + 1;
	case BENC_STR:
		assert_int_equal(benc_put_str(b, n->s, n->s_len), 0);
		return i + 1;
	case BENC_LIST:
	case BENC_DICT: {
		assert_int_equal(n->type == BENC_LIST ? benc_put_list(b) : benc_put_dict(b), 0);
		size_t j = i + 1;
		size_t items = n->type == BENC_LIST ? n->count : 2 * (size_t)n->count;
		for (size_t k = 0; k < items; k++)
			j = reencode(doc, j, b);
		assert_int_equal(j, n->next);
		assert_int_equal(benc_put_end(b), 0);
		return j;
	}
	}
	fail();
	return 0;
}

static void assert_roundtrip(const char *s)
{
	struct benc_doc doc;
	assert_int_equal(parse_lit(&doc, s), 0);
	struct buf b;
	buf_init(&b, 1 << 20);
	assert_int_equal(reencode(&doc, 0, &b), doc.count);
	assert_int_equal(b.len, strlen(s));
	assert_memory_equal(b.data, s, b.len);
	assert_int_equal(doc.nodes[0].raw_len, strlen(s));
	buf_destroy(&b);
}

static void test_integers(void **state)
{
	(void)state;
	struct benc_doc doc;
	static const struct {
		const char *in;
		int64_t v;
	} ok[] = {
		{ "i0e", 0 },
		{ "i-1e", -1 },
		{ "i42e", 42 },
		{ "i9223372036854775807e", INT64_MAX },
		{ "i-9223372036854775808e", INT64_MIN },
	};
	for (size_t k = 0; k < sizeof ok / sizeof ok[0]; k++) {
		assert_int_equal(parse_lit(&doc, ok[k].in), 0);
		assert_int_equal(doc.count, 1);
		assert_int_equal(doc.nodes[0].type, BENC_INT);
		assert_true(doc.nodes[0].i == ok[k].v);
		assert_int_equal(doc.nodes[0].next, 1);
		assert_int_equal(doc.nodes[0].raw_len, strlen(ok[k].in));
	}
	static const char *const bad[] = {
		"i-0e", "i00e", "i01e", "i-01e", "ie", "i-e", "i1", "i", "i1xe", "i+1e",
		"i--1e", "i 1e", "i1 e", "i0x1e", "i1.5e",
	};
	for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++)
		assert_int_equal(parse_err(bad[k]), -EILSEQ);
	assert_int_equal(parse_err("i9223372036854775808e"), -EOVERFLOW);
	assert_int_equal(parse_err("i-9223372036854775809e"), -EOVERFLOW);
	assert_int_equal(parse_err("i99999999999999999999999999999999e"), -EOVERFLOW);
}

static void test_strings(void **state)
{
	(void)state;
	struct benc_doc doc;
	assert_int_equal(parse_lit(&doc, "4:spam"), 0);
	assert_int_equal(doc.nodes[0].type, BENC_STR);
	assert_int_equal(doc.nodes[0].s_len, 4);
	assert_memory_equal(doc.nodes[0].s, "spam", 4);
	assert_true(benc_str_eq(&doc.nodes[0], "spam"));
	assert_false(benc_str_eq(&doc.nodes[0], "spa"));
	assert_false(benc_str_eq(&doc.nodes[0], "spams"));

	assert_int_equal(parse_lit(&doc, "0:"), 0);
	assert_int_equal(doc.nodes[0].s_len, 0);
	assert_true(benc_str_eq(&doc.nodes[0], ""));

	/* Binary content, including NUL and bencode syntax bytes. */
	static const uint8_t bin[] = { '5', ':', 0, 'e', 'd', 0xff, 'l' };
	assert_int_equal(parse_exact(&doc, bin, sizeof bin, NODES, NULL), 0);
	assert_int_equal(doc.nodes[0].s_len, 5);

	static const char *const bad[] = {
		"01:a", "00:", "5:abc", "4spam", ":abc", "1:", "-1:a", "4", "2 :ab",
		"0", "1",
	};
	for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++)
		assert_int_equal(parse_err(bad[k]), -EILSEQ);
}

static void test_huge_lengths(void **state)
{
	(void)state;
	/* Lengths that would overflow size_t or run far past the input. */
	assert_int_equal(parse_err("18446744073709551616:x"), -EILSEQ);
	assert_int_equal(parse_err("18446744073709551615:x"), -EILSEQ);
	assert_int_equal(parse_err("9223372036854775807:x"), -EILSEQ);
	assert_int_equal(parse_err("4294967296:x"), -EILSEQ);
	assert_int_equal(parse_err("99999999999999999999999999999999999999999:"), -EILSEQ);
	assert_int_equal(parse_err("l4:abe"), -EILSEQ); /* runs past the end */
	assert_int_equal(parse_err("l3:abe"), -EILSEQ);
	assert_int_equal(parse_err("d1:a100:xe"), -EILSEQ);
}

static void test_lists_dicts(void **state)
{
	(void)state;
	struct benc_doc doc;
	const char *s = "d1:ai1e1:bl4:spami-2ee1:cde1:dlee";
	assert_int_equal(parse_lit(&doc, s), 0);
	assert_int_equal(doc.count, 11);
	const struct benc_node *root = benc_root(&doc);
	assert_non_null(root);
	assert_int_equal(root->type, BENC_DICT);
	assert_int_equal(root->count, 4);
	assert_int_equal(root->next, 11);
	assert_int_equal(root->raw_len, strlen(s));

	const struct benc_node *a = benc_dict_get(&doc, root, "a");
	assert_non_null(a);
	assert_int_equal(a->type, BENC_INT);
	assert_int_equal(a->i, 1);
	assert_null(benc_dict_get_type(&doc, root, "a", BENC_STR));
	assert_non_null(benc_dict_get_type(&doc, root, "a", BENC_INT));

	const struct benc_node *l = benc_dict_get_type(&doc, root, "b", BENC_LIST);
	assert_non_null(l);
	assert_int_equal(l->count, 2);
	assert_int_equal(l->raw_len, strlen("l4:spami-2ee"));
	assert_memory_equal(l->raw, "l4:spami-2ee", l->raw_len);
	const struct benc_node *it = benc_child(&doc, l);
	assert_true(benc_str_eq(it, "spam"));
	it = benc_next(&doc, l, it);
	assert_non_null(it);
	assert_int_equal(it->i, -2);
	assert_null(benc_next(&doc, l, it));

	const struct benc_node *c = benc_dict_get_type(&doc, root, "c", BENC_DICT);
	assert_non_null(c);
	assert_int_equal(c->count, 0);
	assert_null(benc_child(&doc, c));
	const struct benc_node *d = benc_dict_get_type(&doc, root, "d", BENC_LIST);
	assert_non_null(d);
	assert_int_equal(d->count, 0);
	assert_null(benc_child(&doc, d));
	assert_null(benc_dict_get(&doc, root, "e"));
	assert_null(benc_dict_get(&doc, root, ""));
	assert_null(benc_dict_get(&doc, l, "a")); /* not a dict */

	/* Iterate a dict: key, value, key, value... */
	size_t pairs = 0;
	for (const struct benc_node *k = benc_child(&doc, root); k;
	     k = benc_next(&doc, root, benc_next(&doc, root, k))) {
		assert_int_equal(k->type, BENC_STR);
		assert_non_null(benc_next(&doc, root, k));
		pairs++;
	}
	assert_int_equal(pairs, 4);
}

static void test_dict_strictness(void **state)
{
	(void)state;
	struct benc_doc doc;
	assert_int_equal(parse_lit(&doc, "d1:ai1e2:abi2ee"), 0); /* prefix sorts first */
	assert_int_equal(parse_lit(&doc, "d0:i0e1:ai1ee"), 0);   /* empty key is smallest */
	assert_int_equal(parse_err("d2:abi2e1:ai1ee"), -EILSEQ); /* unsorted */
	assert_int_equal(parse_err("d1:bi1e1:ai1ee"), -EILSEQ);
	assert_int_equal(parse_err("d1:ai1e1:ai2ee"), -EILSEQ); /* duplicate */
	assert_int_equal(parse_err("di1ei2ee"), -EILSEQ);       /* integer key */
	assert_int_equal(parse_err("dlei1ee"), -EILSEQ);        /* list key */
	assert_int_equal(parse_err("d1:ae"), -EILSEQ);          /* key without value */
	assert_int_equal(parse_err("d1:a"), -EILSEQ);
	assert_int_equal(parse_err("d1:ai1e"), -EILSEQ); /* unterminated */
	/* Keys compare as unsigned bytes. */
	assert_int_equal(parse_lit(&doc, "d1:\x7fi1e1:\xc3i2ee"), 0);
	assert_int_equal(parse_err("d1:\xc3i1e1:\x7fi2ee"), -EILSEQ);
	/* Sorting applies per dict, not across nesting levels. */
	assert_int_equal(parse_lit(&doc, "d1:bd1:ai1ee1:cd1:ai1eee"), 0);
}

static void test_malformed_misc(void **state)
{
	(void)state;
	static const char *const bad[] = {
		"", "e", "x", "l", "d", "li1e", "lle", "l4:spam", "le e", " i1e", "ie",
		"l-e", "d-e", "lxe", "i1ee", "lee",
	};
	for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++)
		assert_int_equal(parse_err(bad[k]), -EILSEQ);
	struct benc_doc doc = { .nodes = g_nodes, .cap = NODES };
	assert_int_equal(benc_parse(&doc, NULL, NULL, NULL), -EILSEQ);
	assert_null(benc_root(&doc));
}

static void test_trailing(void **state)
{
	(void)state;
	struct benc_doc doc;
	assert_int_equal(parse_err("i1ei2e"), -EILSEQ);
	assert_int_equal(parse_err("lei"), -EILSEQ);
	assert_int_equal(parse_err("4:spam\n"), -EILSEQ);
	const char *s = "d1:ai1ee<extra>";
	const uint8_t *t = NULL;
	assert_int_equal(parse_exact(&doc, s, strlen(s), NODES, &t), 0);
	assert_ptr_equal(t, (const uint8_t *)s + 8);
	assert_int_equal(doc.count, 3);
	t = NULL;
	assert_int_equal(parse_exact(&doc, "i7e", 3, NODES, &t), 0);
	assert_non_null(t);
	/* Trailing mode still rejects a malformed value. */
	assert_int_equal(parse_exact(&doc, "i07e", 4, NODES, &t), -EILSEQ);
}

static void test_depth(void **state)
{
	(void)state;
	struct benc_doc doc;
	char s[2 * (BENC_MAX_DEPTH + 1) + 1];
	/* Exactly BENC_MAX_DEPTH nested lists are fine... */
	memset(s, 'l', BENC_MAX_DEPTH);
	memset(s + BENC_MAX_DEPTH, 'e', BENC_MAX_DEPTH);
	s[2 * BENC_MAX_DEPTH] = '\0';
	assert_int_equal(parse_lit(&doc, s), 0);
	assert_int_equal(doc.count, BENC_MAX_DEPTH);
	assert_int_equal(doc.nodes[0].next, BENC_MAX_DEPTH);
	assert_int_equal(doc.nodes[BENC_MAX_DEPTH - 1].count, 0);
	/* ...one more is not. */
	memset(s, 'l', BENC_MAX_DEPTH + 1);
	memset(s + BENC_MAX_DEPTH + 1, 'e', BENC_MAX_DEPTH + 1);
	s[2 * (BENC_MAX_DEPTH + 1)] = '\0';
	assert_int_equal(parse_err(s), -ELOOP);

	/* A depth bomb: a megabyte of '[' must fail fast without deep recursion. */
	size_t n = 1 << 20;
	uint8_t *bomb = malloc(n);
	assert_non_null(bomb);
	memset(bomb, 'l', n);
	doc.nodes = g_nodes;
	doc.cap = NODES;
	assert_int_equal(benc_parse(&doc, bomb, bomb + n, NULL), -ELOOP);
	/* Mixed dict/list nesting counts too. */
	for (size_t k = 0; k < n; k += 4)
		memcpy(bomb + k, "d1:a", 4);
	assert_int_equal(benc_parse(&doc, bomb, bomb + n, NULL), -ELOOP);
	free(bomb);
}

static void test_node_cap(void **state)
{
	(void)state;
	struct benc_doc doc;
	const char *s = "li1ei2ee"; /* 3 nodes */
	assert_int_equal(parse_exact(&doc, s, strlen(s), 2, NULL), -E2BIG);
	assert_int_equal(doc.count, 0);
	assert_int_equal(parse_exact(&doc, s, strlen(s), 3, NULL), 0);
	assert_int_equal(doc.count, 3);
	assert_int_equal(parse_exact(&doc, "i1e", 3, 0, NULL), -E2BIG);

	/* Many tiny items against a small cap. */
	size_t n = 2 + 3 * 10000;
	char *big = malloc(n + 1);
	assert_non_null(big);
	big[0] = 'l';
	for (size_t k = 0; k < 10000; k++)
		memcpy(big + 1 + 3 * k, "i0e", 3);
	big[n - 1] = 'e';
	big[n] = '\0';
	assert_int_equal(parse_exact(&doc, big, n, NODES, NULL), -E2BIG);
	struct benc_node *many = calloc(10001, sizeof *many);
	assert_non_null(many);
	doc.nodes = many;
	doc.cap = 10001;
	assert_int_equal(benc_parse(&doc, (const uint8_t *)big, (const uint8_t *)big + n, NULL), 0);
	assert_int_equal(doc.count, 10001);
	assert_int_equal(benc_root(&doc)->count, 10000);
	free(many);
	free(big);
}

static void test_roundtrips(void **state)
{
	(void)state;
	static const char *const docs[] = {
		"i0e",
		"i-9223372036854775808e",
		"0:",
		"4:spam",
		"le",
		"de",
		"llleee",
		"d1:ai1e1:bl4:spami-2ee1:cde1:dlee",
		"d4:infod6:lengthi12345e4:name5:a.txt12:piece lengthi16384eee",
		"l1:a1:bd1:xli1ei2ei3eeee",
	};
	for (size_t k = 0; k < sizeof docs / sizeof docs[0]; k++)
		assert_roundtrip(docs[k]);
}

static void test_encoder(void **state)
{
	(void)state;
	struct buf b;
	buf_init(&b, 1024);
	assert_int_equal(benc_put_dict(&b), 0);
	assert_int_equal(benc_put_cstr(&b, "a"), 0);
	assert_int_equal(benc_put_int(&b, INT64_MIN), 0);
	assert_int_equal(benc_put_cstr(&b, "b"), 0);
	assert_int_equal(benc_put_list(&b), 0);
	assert_int_equal(benc_put_str(&b, "\0x", 2), 0);
	assert_int_equal(benc_put_str(&b, NULL, 0), 0);
	assert_int_equal(benc_put_int(&b, 0), 0);
	assert_int_equal(benc_put_end(&b), 0);
	assert_int_equal(benc_put_end(&b), 0);
	const char *want = "d1:ai-9223372036854775808e1:bl2:\0x0:i0eee";
	size_t want_len = 41;
	assert_int_equal(b.len, want_len);
	assert_memory_equal(b.data, want, want_len);
	struct benc_doc doc = { .nodes = g_nodes, .cap = NODES };
	assert_int_equal(benc_parse(&doc, b.data, b.data + b.len, NULL), 0);
	const struct benc_node *l = benc_dict_get_type(&doc, benc_root(&doc), "b", BENC_LIST);
	assert_non_null(l);
	assert_int_equal(l->count, 3);
	assert_int_equal(benc_child(&doc, l)->s_len, 2);
	buf_destroy(&b);

	/* A bounded buffer refuses a string that does not fit, and stays as it was. */
	buf_init(&b, 8);
	assert_int_equal(benc_put_cstr(&b, "abc"), 0); /* "3:abc" */
	assert_int_equal(benc_put_cstr(&b, "xy"), -EMSGSIZE);
	assert_int_equal(b.len, 5);
	assert_int_equal(benc_put_int(&b, 1000), -EMSGSIZE);
	assert_int_equal(b.len, 5);
	assert_int_equal(benc_put_int(&b, 10), -EMSGSIZE); /* "i10e" would make 9 */
	assert_int_equal(benc_put_int(&b, 7), 0);           /* "i7e" fits exactly */
	assert_int_equal(b.len, 8);
	buf_destroy(&b);
}

static void test_encoder_exact_fit(void **state)
{
	(void)state;
	struct buf b;
	buf_init(&b, 4);
	assert_int_equal(benc_put_int(&b, 10), 0); /* exactly 4 bytes: "i10e" */
	assert_int_equal(b.len, 4);
	assert_int_equal(benc_put_end(&b), -EMSGSIZE);
	buf_destroy(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_integers),
		cmocka_unit_test(test_strings),
		cmocka_unit_test(test_huge_lengths),
		cmocka_unit_test(test_lists_dicts),
		cmocka_unit_test(test_dict_strictness),
		cmocka_unit_test(test_malformed_misc),
		cmocka_unit_test(test_trailing),
		cmocka_unit_test(test_depth),
		cmocka_unit_test(test_node_cap),
		cmocka_unit_test(test_roundtrips),
		cmocka_unit_test(test_encoder),
		cmocka_unit_test(test_encoder_exact_fit),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
