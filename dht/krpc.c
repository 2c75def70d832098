/* krpc.c: the KRPC message codec of BEP 5 (bencoded dicts over UDP) with
 * BEP 32 "nodes6" and BEP 43 "ro"; strict and bounded on input. */
#include "config.h"

#include <errno.h>
#include <netinet/in.h>
#include <stddef.h>
#include <string.h>

#include "dht/dht-internal.h"

static const struct {
	const char *name;
	enum krpc_q q;
} methods[] = {
	{ "ping", KRPC_PING },
	{ "find_node", KRPC_FIND_NODE },
	{ "get_peers", KRPC_GET_PEERS },
	{ "announce_peer", KRPC_ANNOUNCE_PEER },
};

static const char *method_name(enum krpc_q q)
{
	for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++)
		if (methods[i].q == q)
			return methods[i].name;
	return NULL;
}

/* A present key must have the right type: absent is fine, wrong is -EILSEQ. */
static int get_opt(const struct benc_doc *doc, const struct benc_node *dict, const char *key,
		   enum benc_type type, const struct benc_node **out)
{
	const struct benc_node *v = benc_dict_get(doc, dict, key);
	*out = NULL;
	if (!v)
		return 0;
	if (v->type != type)
		return -EILSEQ;
	*out = v;
	return 0;
}

static int get_id(const struct benc_doc *doc, const struct benc_node *dict, const char *key,
		  bool *has, uint8_t out[DHT_ID_LEN])
{
	const struct benc_node *v;
	int rc = get_opt(doc, dict, key, BENC_STR, &v);
	if (rc || !v)
		return rc;
	if (v->s_len != DHT_ID_LEN)
		return -EILSEQ;
	memcpy(out, v->s, DHT_ID_LEN);
	*has = true;
	return 0;
}

static int read_values(struct krpc_msg *m, const struct benc_doc *doc,
		       const struct benc_node *list)
{
	for (const struct benc_node *it = benc_child(doc, list); it; it = benc_next(doc, list, it)) {
		if (it->type != BENC_STR || (it->s_len != 6 && it->s_len != 18))
			return -EILSEQ;
		if (m->nvalues == KRPC_MAX_VALUES)
			continue; /* more than any reply should carry: ignore the rest */
		struct dht_addr *a = &m->values[m->nvalues++];
		memset(a, 0, sizeof *a);
		size_t iplen = it->s_len - 2;
		a->family = iplen == 4 ? AF_INET : AF_INET6;
		memcpy(a->ip, it->s, iplen);
		a->port = (uint16_t)(it->s[iplen] << 8 | it->s[iplen + 1]);
	}
	return 0;
}

/* The fields of an "a" (query arguments) or "r" (reply values) dict. */
static int read_body(struct krpc_msg *m, const struct benc_doc *doc, const struct benc_node *d)
{
	const struct benc_node *v;
	int rc = get_id(doc, d, "id", &m->has_id, m->id);
	if (rc)
		return rc;
	const char *tkey = m->q == KRPC_FIND_NODE ? "target" : "info_hash";
	if ((rc = get_id(doc, d, tkey, &m->has_target, m->target)))
		return rc;
	if ((rc = get_opt(doc, d, "port", BENC_INT, &v)))
		return rc;
	if (v) {
		if (v->i < 0 || v->i > 65535)
			return -EILSEQ;
		m->has_port = true;
		m->port = (uint16_t)v->i;
	}
	if ((rc = get_opt(doc, d, "implied_port", BENC_INT, &v)))
		return rc;
	m->implied_port = v && v->i != 0;
	if ((rc = get_opt(doc, d, "token", BENC_STR, &v)))
		return rc;
	if (v) {
		m->token = v->s;
		m->token_len = v->s_len;
	}
	if ((rc = get_opt(doc, d, "nodes", BENC_STR, &v)))
		return rc;
	if (v) {
		if (v->s_len % KRPC_NODE4_LEN)
			return -EILSEQ;
		m->nodes = v->s;
		m->nodes_len = v->s_len;
	}
	if ((rc = get_opt(doc, d, "nodes6", BENC_STR, &v)))
		return rc;
	if (v) {
		if (v->s_len % KRPC_NODE6_LEN)
			return -EILSEQ;
		m->nodes6 = v->s;
		m->nodes6_len = v->s_len;
	}
	if ((rc = get_opt(doc, d, "values", BENC_LIST, &v)))
		return rc;
	if (v && (rc = read_values(m, doc, v)))
		return rc;
	return 0;
}

int krpc_decode(struct krpc_msg *m, const uint8_t *p, const uint8_t *end)
{
	struct benc_node nodes[KRPC_MAX_BENC];
	struct benc_doc doc = { .nodes = nodes, .cap = KRPC_MAX_BENC, .count = 0 };
	const struct benc_node *v;
	memset(m, 0, offsetof(struct krpc_msg, values));
	m->nvalues = 0;
	m->ecode = 0;
	m->emsg = NULL;
	m->emsg_len = 0;
	m->ip = NULL;
	m->ip_len = 0;
	int rc = benc_parse(&doc, p, end, NULL);
	if (rc)
		return rc;
	const struct benc_node *root = benc_root(&doc);
	if (root->type != BENC_DICT)
		return -EILSEQ;
	const struct benc_node *t = benc_dict_get_type(&doc, root, "t", BENC_STR);
	const struct benc_node *y = benc_dict_get_type(&doc, root, "y", BENC_STR);
	if (!t || t->s_len == 0 || t->s_len > KRPC_MAX_TID || !y || y->s_len != 1)
		return -EILSEQ;
	m->tid = t->s;
	m->tid_len = t->s_len;
	if ((rc = get_opt(&doc, root, "ro", BENC_INT, &v)))
		return rc;
	m->read_only = v && v->i == 1;
	switch (y->s[0]) {
	case 'q': {
		m->y = KRPC_QUERY;
		const struct benc_node *q = benc_dict_get_type(&doc, root, "q", BENC_STR);
		const struct benc_node *a = benc_dict_get_type(&doc, root, "a", BENC_DICT);
		if (!q || !a)
			return -EILSEQ;
		m->q = KRPC_Q_UNKNOWN;
		for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++)
			if (benc_str_eq(q, methods[i].name))
				m->q = methods[i].q;
		return read_body(m, &doc, a);
	}
	case 'r': {
		m->y = KRPC_RESPONSE;
		const struct benc_node *r = benc_dict_get_type(&doc, root, "r", BENC_DICT);
		if (!r)
			return -EILSEQ;
		const struct benc_node *ip = benc_dict_get_type(&doc, root, "ip", BENC_STR);
		if (ip && (ip->s_len == 6 || ip->s_len == 18)) {
			m->ip = ip->s;
			m->ip_len = ip->s_len;
		}
		/* A reply does not name its method: "target" never appears in
		 * one, so read_body's target key does not matter here. */
		if ((rc = read_body(m, &doc, r)))
			return rc;
		return m->has_id ? 0 : -EILSEQ;
	}
	case 'e': {
		m->y = KRPC_ERROR;
		const struct benc_node *e = benc_dict_get_type(&doc, root, "e", BENC_LIST);
		if (!e || e->count != 2)
			return -EILSEQ;
		const struct benc_node *code = benc_child(&doc, e);
		const struct benc_node *msg = benc_next(&doc, e, code);
		if (code->type != BENC_INT || msg->type != BENC_STR)
			return -EILSEQ;
		m->ecode = code->i;
		m->emsg = msg->s;
		m->emsg_len = msg->s_len;
		return 0;
	}
	default:
		return -EILSEQ;
	}
}

/* Encoding.  BEP 3 wants dict keys sorted; each writer below lists them in
 * that order by hand. */
#define TRY(x)                 \
	do {                   \
		int rc_ = (x); \
		if (rc_)       \
			return rc_; \
	} while (0)

static int put_kv_str(struct buf *b, const char *k, const void *v, size_t n)
{
	TRY(benc_put_cstr(b, k));
	return benc_put_str(b, v, n);
}

static int put_tail(struct buf *b, const uint8_t *tid, size_t tid_len, const char *y)
{
	TRY(put_kv_str(b, "t", tid, tid_len));
	TRY(put_kv_str(b, "y", y, 1));
	return benc_put_end(b);
}

int krpc_put_query(struct buf *b, const uint8_t *tid, size_t tid_len, const struct krpc_query *q)
{
	const char *name = method_name(q->q);
	if (!name)
		return -EINVAL;
	TRY(benc_put_dict(b));
	TRY(benc_put_cstr(b, "a"));
	TRY(benc_put_dict(b));
	TRY(put_kv_str(b, "id", q->id, DHT_ID_LEN));
	if (q->q == KRPC_ANNOUNCE_PEER && q->implied_port) {
		TRY(benc_put_cstr(b, "implied_port"));
		TRY(benc_put_int(b, 1));
	}
	if (q->q == KRPC_GET_PEERS || q->q == KRPC_ANNOUNCE_PEER)
		TRY(put_kv_str(b, "info_hash", q->target, DHT_ID_LEN));
	if (q->q == KRPC_ANNOUNCE_PEER) {
		TRY(benc_put_cstr(b, "port"));
		TRY(benc_put_int(b, q->port));
	}
	if (q->q == KRPC_FIND_NODE)
		TRY(put_kv_str(b, "target", q->target, DHT_ID_LEN));
	if (q->q == KRPC_ANNOUNCE_PEER)
		TRY(put_kv_str(b, "token", q->token, q->token_len));
	TRY(benc_put_end(b));
	TRY(put_kv_str(b, "q", name, strlen(name)));
	return put_tail(b, tid, tid_len, "q");
}

int krpc_put_reply(struct buf *b, const uint8_t *tid, size_t tid_len, const struct krpc_reply *r)
{
	TRY(benc_put_dict(b));
	if (r->ip) {
		uint8_t c[18];
		size_t iplen = dht_addr_iplen(r->ip);
		memcpy(c, r->ip->ip, iplen);
		c[iplen] = (uint8_t)(r->ip->port >> 8);
		c[iplen + 1] = (uint8_t)r->ip->port;
		TRY(put_kv_str(b, "ip", c, iplen + 2));
	}
	TRY(benc_put_cstr(b, "r"));
	TRY(benc_put_dict(b));
	TRY(put_kv_str(b, "id", r->id, DHT_ID_LEN));
	if (r->nodes)
		TRY(put_kv_str(b, "nodes", r->nodes, r->nodes_len));
	if (r->nodes6)
		TRY(put_kv_str(b, "nodes6", r->nodes6, r->nodes6_len));
	if (r->token)
		TRY(put_kv_str(b, "token", r->token, r->token_len));
	if (r->nvalues) {
		TRY(benc_put_cstr(b, "values"));
		TRY(benc_put_list(b));
		for (size_t i = 0; i < r->nvalues; i++) {
			const struct dht_addr *a = &r->values[i];
			uint8_t c[18];
			size_t iplen = dht_addr_iplen(a);
			memcpy(c, a->ip, iplen);
			c[iplen] = (uint8_t)(a->port >> 8);
			c[iplen + 1] = (uint8_t)a->port;
			TRY(benc_put_str(b, c, iplen + 2));
		}
		TRY(benc_put_end(b));
	}
	TRY(benc_put_end(b));
	return put_tail(b, tid, tid_len, "r");
}

int krpc_put_error(struct buf *b, const uint8_t *tid, size_t tid_len, int code, const char *msg)
{
	TRY(benc_put_dict(b));
	TRY(benc_put_cstr(b, "e"));
	TRY(benc_put_list(b));
	TRY(benc_put_int(b, code));
	TRY(benc_put_cstr(b, msg));
	TRY(benc_put_end(b));
	return put_tail(b, tid, tid_len, "e");
}

size_t krpc_compact_node(uint8_t *out, const uint8_t id[DHT_ID_LEN], const struct dht_addr *a)
{
	size_t iplen = dht_addr_iplen(a);
	memcpy(out, id, DHT_ID_LEN);
	memcpy(out + DHT_ID_LEN, a->ip, iplen);
	out[DHT_ID_LEN + iplen] = (uint8_t)(a->port >> 8);
	out[DHT_ID_LEN + iplen + 1] = (uint8_t)a->port;
	return DHT_ID_LEN + iplen + 2;
}

void krpc_read_node(const uint8_t *nodes, size_t entry_len, size_t i, uint8_t id_out[DHT_ID_LEN],
		    struct dht_addr *addr_out)
{
	const uint8_t *e = nodes + i * entry_len;
	size_t iplen = entry_len - DHT_ID_LEN - 2;
	memcpy(id_out, e, DHT_ID_LEN);
	memset(addr_out, 0, sizeof *addr_out);
	addr_out->family = iplen == 4 ? AF_INET : AF_INET6;
	memcpy(addr_out->ip, e + DHT_ID_LEN, iplen);
	addr_out->port = (uint16_t)(e[DHT_ID_LEN + iplen] << 8 | e[DHT_ID_LEN + iplen + 1]);
}
