/* bencode.c: strict, iterative, depth- and node-bounded bencode (BEP 3) codec. */
#include "config.h"

#include "common/bencode.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/* A node's `next` is a uint32_t, so a document never holds more nodes than
 * this whatever the caller's array size. */
#define BENC_MAX_NODES ((size_t)UINT32_MAX - 1)

/* One open container while parsing. */
struct benc_frame {
	size_t idx;              /* its node */
	const uint8_t *last_key; /* DICT: previous key, for the sort check */
	size_t last_key_len;
	bool have_key;           /* DICT: last_key is set */
	bool want_value;         /* DICT: a key was read, its value comes next */
};

/* Bytewise order of two byte strings, a proper prefix sorting first
 * (BEP 3: "keys must be strings and appear in sorted order"). */
static int key_cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
	int c = memcmp(a, b, alen < blen ? alen : blen);
	if (c)
		return c;
	return alen < blen ? -1 : alen > blen ? 1 : 0;
}

/* "i<digits>e" starting at *pp (which points at 'i').  Advances *pp past 'e'. */
static int parse_int(const uint8_t **pp, const uint8_t *end, int64_t *out)
{
	const uint8_t *p = *pp + 1;
	bool neg = false;
	if (p < end && *p == '-') {
		neg = true;
		p++;
	}
	const uint8_t *digits = p;
	while (p < end && *p >= '0' && *p <= '9')
		p++;
	size_t nd = (size_t)(p - digits);
	if (p >= end || *p != 'e' || nd == 0)
		return -EILSEQ;
	if (digits[0] == '0' && (nd > 1 || neg))
		return -EILSEQ; /* leading zero, or "-0" */
	/* Magnitude limit: INT64_MAX, or INT64_MAX + 1 for a negative value. */
	uint64_t limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
	uint64_t v = 0;
	for (size_t k = 0; k < nd; k++) {
		unsigned d = (unsigned)(digits[k] - '0');
		if (v > (limit - d) / 10)
			return -EOVERFLOW;
		v = v * 10 + d;
	}
	if (neg)
		*out = v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v;
	else
		*out = (int64_t)v;
	*pp = p + 1;
	return 0;
}

/* "<len>:<bytes>" starting at *pp (a digit).  Advances *pp past the bytes. */
static int parse_str(const uint8_t **pp, const uint8_t *end, const uint8_t **s_out,
		     size_t *len_out)
{
	const uint8_t *p = *pp;
	if (*p == '0' && p + 1 < end && p[1] != ':')
		return -EILSEQ; /* leading zero in the length */
	size_t len = 0;
	while (p < end && *p >= '0' && *p <= '9') {
		if (len > (SIZE_MAX - 9) / 10)
			return -EILSEQ;
		len = len * 10 + (size_t)(*p - '0');
		p++;
		/* Checked on every digit so a huge prefix can never wrap around:
		 * the string must fit in what is left of the input anyway. */
		if (len > (size_t)(end - p))
			return -EILSEQ;
	}
	if (p >= end || *p != ':')
		return -EILSEQ;
	p++;
	if (len > (size_t)(end - p))
		return -EILSEQ;
	*s_out = p;
	*len_out = len;
	*pp = p + len;
	return 0;
}

int benc_parse(struct benc_doc *doc, const uint8_t *p, const uint8_t *end,
	       const uint8_t **trailing_out)
{
	struct benc_frame stack[BENC_MAX_DEPTH];
	size_t depth = 0;
	size_t count = 0;
	size_t cap = doc->cap < BENC_MAX_NODES ? doc->cap : BENC_MAX_NODES;
	int rc = 0;

	doc->count = 0;
	if (!p || p >= end)
		return -EILSEQ;

	for (;;) {
		if (p >= end) {
			rc = -EILSEQ; /* truncated inside a container */
			goto fail;
		}
		struct benc_frame *top = depth ? &stack[depth - 1] : NULL;

		if (top && *p == 'e') {
			struct benc_node *c = &doc->nodes[top->idx];
			if (c->type == BENC_DICT && top->want_value) {
				rc = -EILSEQ; /* a key without a value */
				goto fail;
			}
			p++;
			c->next = (uint32_t)count;
			c->raw_len = (size_t)(p - c->raw);
			depth--;
		} else {
			if (top && doc->nodes[top->idx].type == BENC_DICT && !top->want_value &&
			    !(*p >= '0' && *p <= '9')) {
				rc = -EILSEQ; /* dict keys are strings */
				goto fail;
			}
			if (count >= cap) {
				rc = -E2BIG;
				goto fail;
			}
			struct benc_node *n = &doc->nodes[count];
			memset(n, 0, sizeof *n);
			n->raw = p;
			size_t idx = count++;

			if (*p == 'i') {
				n->type = BENC_INT;
				rc = parse_int(&p, end, &n->i);
				if (rc)
					goto fail;
			} else if (*p >= '0' && *p <= '9') {
				n->type = BENC_STR;
				rc = parse_str(&p, end, &n->s, &n->s_len);
				if (rc)
					goto fail;
			} else if (*p == 'l' || *p == 'd') {
				if (depth == BENC_MAX_DEPTH) {
					rc = -ELOOP;
					goto fail;
				}
				n->type = *p == 'l' ? BENC_LIST : BENC_DICT;
				stack[depth++] = (struct benc_frame){ .idx = idx };
				p++;
				continue; /* the container completes at its 'e' */
			} else {
				rc = -EILSEQ;
				goto fail;
			}
			n->next = (uint32_t)count;
			n->raw_len = (size_t)(p - n->raw);
		}

		/* A value just completed: account for it in its parent. */
		if (depth == 0)
			break;
		struct benc_frame *parent = &stack[depth - 1];
		struct benc_node *pn = &doc->nodes[parent->idx];
		if (pn->type == BENC_LIST) {
			pn->count++;
		} else if (!parent->want_value) {
			/* It was a key (a string: checked above). */
			const struct benc_node *k = &doc->nodes[count - 1];
			if (parent->have_key &&
			    key_cmp(parent->last_key, parent->last_key_len, k->s, k->s_len) >= 0) {
				rc = -EILSEQ; /* unsorted or duplicate key */
				goto fail;
			}
			parent->last_key = k->s;
			parent->last_key_len = k->s_len;
			parent->have_key = true;
			parent->want_value = true;
		} else {
			parent->want_value = false;
			pn->count++;
		}
	}

	if (trailing_out)
		*trailing_out = p;
	else if (p != end)
		return -EILSEQ;
	doc->count = count;
	return 0;
fail:
	doc->count = 0;
	return rc;
}

const struct benc_node *benc_root(const struct benc_doc *doc)
{
	return doc->count ? &doc->nodes[0] : NULL;
}

const struct benc_node *benc_child(const struct benc_doc *doc, const struct benc_node *parent)
{
	if (!parent || (parent->type != BENC_LIST && parent->type != BENC_DICT) || parent->count == 0)
		return NULL;
	return parent + 1;
}

const struct benc_node *benc_next(const struct benc_doc *doc, const struct benc_node *parent,
				  const struct benc_node *node)
{
	if (!parent || !node || node->next >= parent->next)
		return NULL;
	return &doc->nodes[node->next];
}

bool benc_str_eq(const struct benc_node *node, const char *s)
{
	if (!node || node->type != BENC_STR)
		return false;
	size_t n = strlen(s);
	return node->s_len == n && (n == 0 || memcmp(node->s, s, n) == 0);
}

const struct benc_node *benc_dict_get(const struct benc_doc *doc, const struct benc_node *dict,
				      const char *key)
{
	if (!dict || dict->type != BENC_DICT)
		return NULL;
	for (const struct benc_node *k = benc_child(doc, dict); k; ) {
		const struct benc_node *v = k + 1; /* a key is one STR node */
		if (benc_str_eq(k, key))
			return v;
		k = benc_next(doc, dict, v);
	}
	return NULL;
}

const struct benc_node *benc_dict_get_type(const struct benc_doc *doc,
					   const struct benc_node *dict, const char *key,
					   enum benc_type type)
{
	const struct benc_node *v = benc_dict_get(doc, dict, key);
	return v && v->type == type ? v : NULL;
}

/* Append a prefix and a body as one step: on failure `b` is unchanged. */
static int put2(struct buf *b, const void *a, size_t alen, const void *c, size_t clen)
{
	size_t old = b->len;
	int rc = buf_append(b, a, alen);
	if (rc == 0)
		rc = buf_append(b, c, clen);
	if (rc)
		b->len = old;
	return rc;
}

int benc_put_int(struct buf *b, int64_t v)
{
	char tmp[32];
	int n = snprintf(tmp, sizeof tmp, "i%" PRId64 "e", v);
	return buf_append(b, tmp, (size_t)n);
}

int benc_put_str(struct buf *b, const void *p, size_t n)
{
	char tmp[32];
	int k = snprintf(tmp, sizeof tmp, "%zu:", n);
	return put2(b, tmp, (size_t)k, p, n);
}

int benc_put_cstr(struct buf *b, const char *s)
{
	return benc_put_str(b, s, strlen(s));
}

int benc_put_list(struct buf *b)
{
	return buf_append_byte(b, 'l');
}

int benc_put_dict(struct buf *b)
{
	return buf_append_byte(b, 'd');
}

int benc_put_end(struct buf *b)
{
	return buf_append_byte(b, 'e');
}
