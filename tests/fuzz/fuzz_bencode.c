/* fuzz_bencode.c: fuzz harness for the bencode decoder (common/bencode.h).
 *
 * Beyond "does not crash", it checks properties: a strict parse is canonical,
 * so re-encoding the node tree must reproduce the input byte for byte; node
 * bookkeeping (next, count, raw) must be consistent; and the accessors must
 * stay inside the document. */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/bencode.h"
#include "common/buf.h"

#define FUZZ_NODES 4096

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Iterative re-encode of the whole document (no recursion: depth is bounded
 * but the harness should not rely on it).  Returns 0 if it matched. */
static int reencode(const struct benc_doc *doc, struct buf *b)
{
	/* Stack of open containers: their index and the items still to emit. */
	size_t open_idx[BENC_MAX_DEPTH + 1];
	size_t left[BENC_MAX_DEPTH + 1];
	size_t depth = 0;
	size_t i = 0;
	for (;;) {
		while (depth && left[depth - 1] == 0) {
			if (benc_put_end(b))
				return -1;
			if (doc->nodes[open_idx[depth - 1]].next != i)
				abort();
			depth--;
		}
		if (depth == 0 && i > 0)
			break;
		if (depth)
			left[depth - 1]--;
		const struct benc_node *n = &doc->nodes[i];
		switch (n->type) {
		case BENC_INT:
			if (benc_put_int(b, n->i))
				return -1;
			i++;
			break;
		case BENC_STR:
			if (n->s < n->raw || n->s + n->s_len > n->raw + n->raw_len)
				abort();
			if (benc_put_str(b, n->s, n->s_len))
				return -1;
			i++;
			break;
		case BENC_LIST:
		case BENC_DICT:
			if (depth > BENC_MAX_DEPTH)
				abort();
			if (n->type == BENC_LIST ? benc_put_list(b) : benc_put_dict(b))
				return -1;
			open_idx[depth] = i;
			left[depth] = n->type == BENC_LIST ? n->count : 2 * (size_t)n->count;
			depth++;
			i++;
			break;
		default:
			abort();
		}
	}
	if (i != doc->count)
		abort();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct benc_node nodes[FUZZ_NODES];
	struct benc_doc doc = { .nodes = nodes, .cap = FUZZ_NODES };
	const uint8_t *end = data + size;

	const uint8_t *trail = NULL;
	int rc_trail = benc_parse(&doc, data, end, &trail);
	int rc = benc_parse(&doc, data, end, NULL);
	if (rc == 0) {
		/* Strict mode accepted it, so trailing mode must too, ending at `end`. */
		if (rc_trail != 0 || trail != end)
			abort();
		const struct benc_node *root = benc_root(&doc);
		if (!root || root->raw != data || root->raw_len != size || root->next != doc.count)
			abort();
		struct buf b;
		buf_init(&b, size + 64);
		if (reencode(&doc, &b) != 0 || b.len != size || memcmp(b.data, data, size) != 0)
			abort();
		buf_destroy(&b);
		/* Exercise lookups on every dict. */
		for (size_t k = 0; k < doc.count; k++) {
			if (nodes[k].type != BENC_DICT)
				continue;
			for (const struct benc_node *key = benc_child(&doc, &nodes[k]); key;
			     key = benc_next(&doc, &nodes[k], key + 1)) {
				if (key->type != BENC_STR || key->s_len > 64)
					continue;
				char name[65];
				memcpy(name, key->s, key->s_len);
				name[key->s_len] = '\0';
				if (strlen(name) == key->s_len && benc_dict_get(&doc, &nodes[k], name) != key + 1)
					abort();
			}
		}
	} else if (rc_trail == 0) {
		/* Only trailing bytes can make strict mode refuse what trailing mode took. */
		if (trail == end)
			abort();
	}
	return 0;
}
