/* bencode.h: a bounded, iterative bencode decoder (BEP 3) that never copies,
 * and an encoder onto a bounded struct buf.
 *
 * Decoding fills a caller-supplied flat array of nodes in document order
 * (pre-order): node 0 is the root, a list's items follow it, a dict's keys and
 * values alternate after it (key node, value node, key node, ...).  Each node
 * knows the index one past its whole subtree, so siblings are reached in O(1).
 * Strings point into the input buffer, which must outlive the nodes. */
#ifndef SHOAL_COMMON_BENCODE_H
#define SHOAL_COMMON_BENCODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

/* Nesting deeper than this is rejected (-ELOOP): Transmission's recursive
 * parser was a stack-smashing bug; ours is iterative and still bounded. */
#define BENC_MAX_DEPTH 64

enum benc_type { BENC_INT = 1, BENC_STR, BENC_LIST, BENC_DICT };

struct benc_node {
	enum benc_type type;
	uint32_t next;        /* index one past this node's subtree */
	uint32_t count;       /* LIST: items; DICT: key/value pairs; else 0 */
	const uint8_t *raw;   /* first byte of this value's encoding */
	size_t raw_len;       /* length of this value's whole encoding */
	int64_t i;            /* BENC_INT: the value */
	const uint8_t *s;     /* BENC_STR: the bytes (not NUL-terminated) */
	size_t s_len;         /* BENC_STR: their length */
};

struct benc_doc {
	struct benc_node *nodes; /* caller-owned array */
	size_t cap;              /* its length */
	size_t count;            /* nodes in use after a successful parse */
};

/* Parse exactly one value spanning [p, end).  Strict: integers without
 * leading zeros or "-0", string lengths that fit, dict keys strictly sorted
 * and unique, nothing after the value (unless `trailing_out` is non-NULL, in
 * which case it receives the first unparsed byte).
 * Returns 0; -EILSEQ for malformed input; -E2BIG when more than doc->cap
 * nodes would be needed; -ELOOP when nested deeper than BENC_MAX_DEPTH;
 * -EOVERFLOW for an integer outside int64_t. */
int benc_parse(struct benc_doc *doc, const uint8_t *p, const uint8_t *end,
	       const uint8_t **trailing_out) __attribute__((warn_unused_result));

/* The root node (index 0) of a parsed document. */
const struct benc_node *benc_root(const struct benc_doc *doc);

/* In a DICT, the value whose key equals `key` (NUL-terminated), else NULL. */
const struct benc_node *benc_dict_get(const struct benc_doc *doc, const struct benc_node *dict,
				      const char *key);
/* Same, but NULL unless the value also has type `type`. */
const struct benc_node *benc_dict_get_type(const struct benc_doc *doc,
					   const struct benc_node *dict, const char *key,
					   enum benc_type type);

/* Iteration: the first child of a LIST or DICT (NULL if empty), and the
 * sibling after `node` within `parent` (NULL at the end).  In a DICT the
 * children alternate key, value. */
const struct benc_node *benc_child(const struct benc_doc *doc, const struct benc_node *parent);
const struct benc_node *benc_next(const struct benc_doc *doc, const struct benc_node *parent,
				  const struct benc_node *node);

/* True if a BENC_STR node equals the NUL-terminated `s`. */
bool benc_str_eq(const struct benc_node *node, const char *s);

/* Encoder.  Each returns 0 or the error of buf_append (-EMSGSIZE, -ENOMEM).
 * Callers write dict keys in sorted order themselves. */
int benc_put_int(struct buf *b, int64_t v) __attribute__((warn_unused_result));
int benc_put_str(struct buf *b, const void *p, size_t n) __attribute__((warn_unused_result));
int benc_put_cstr(struct buf *b, const char *s) __attribute__((warn_unused_result));
int benc_put_list(struct buf *b) __attribute__((warn_unused_result)); /* 'l' */
int benc_put_dict(struct buf *b) __attribute__((warn_unused_result)); /* 'd' */
int benc_put_end(struct buf *b) __attribute__((warn_unused_result));  /* 'e' */

#endif
