/* wire.c: BitTorrent peer wire codec: handshake, streaming message decoder, encoders. */
#include "config.h"

#include "common/bytes.h"
#include "transfer/wire.h"

#include "common/bencode.h"

#include <errno.h>
#include <string.h>

/* Decoder states (BEP 3: after the handshake, "all later integers sent in
 * the protocol are encoded as four bytes big-endian", each message being
 * <length prefix><message id><payload>). */
enum { ST_HANDSHAKE, ST_HEAD, ST_BODY, ST_SKIP, ST_FAILED };

/* A body buffer that grew beyond this is released after its message is used,
 * so one large extended message does not pin memory for the connection's life. */
#define WIRE_KEEP_BUF 65536u

static const uint8_t pstr_prefix[1 + WIRE_PSTR_LEN] = "\x13" WIRE_PSTR;


/* ---- Handshake ---------------------------------------------------------- */

void wire_handshake_encode(uint8_t out[WIRE_HANDSHAKE_LEN], const uint8_t info_hash[WIRE_HASH_LEN],
			   const uint8_t peer_id[WIRE_PEER_ID_LEN], unsigned flags)
{
	memcpy(out, pstr_prefix, sizeof pstr_prefix);
	uint8_t *rsv = out + sizeof pstr_prefix;
	memset(rsv, 0, 8);
	if (flags & WIRE_RSV_EXTENDED)
		rsv[5] |= 0x10; /* BEP 10 */
	if (flags & WIRE_RSV_V2)
		rsv[7] |= 0x10; /* BEP 52 */
	if (flags & WIRE_RSV_DHT)
		rsv[7] |= 0x01; /* BEP 5 */
	memcpy(out + 28, info_hash, WIRE_HASH_LEN);
	memcpy(out + 48, peer_id, WIRE_PEER_ID_LEN);
}

int wire_handshake_parse(struct wire_handshake *hs_out, const uint8_t *p, const uint8_t *end)
{
	size_t have = (size_t)(end - p);
	size_t cmp = have < sizeof pstr_prefix ? have : sizeof pstr_prefix;
	if (memcmp(p, pstr_prefix, cmp) != 0)
		return -EPROTO;
	if (have < WIRE_HANDSHAKE_LEN)
		return -EAGAIN;
	memcpy(hs_out->reserved, p + 20, 8);
	memcpy(hs_out->info_hash, p + 28, WIRE_HASH_LEN);
	memcpy(hs_out->peer_id, p + 48, WIRE_PEER_ID_LEN);
	return 0;
}

unsigned wire_handshake_flags(const struct wire_handshake *hs)
{
	unsigned f = 0;
	if (hs->reserved[5] & 0x10)
		f |= WIRE_RSV_EXTENDED;
	if (hs->reserved[7] & 0x10)
		f |= WIRE_RSV_V2;
	if (hs->reserved[7] & 0x01)
		f |= WIRE_RSV_DHT;
	return f;
}

/* ---- Decoder ------------------------------------------------------------ */

void wire_decoder_init(struct wire_decoder *d, bool expect_handshake)
{
	memset(d, 0, sizeof *d);
	d->state = expect_handshake ? ST_HANDSHAKE : ST_HEAD;
	buf_init(&d->body, WIRE_MAX_MSG);
}

void wire_decoder_destroy(struct wire_decoder *d)
{
	buf_destroy(&d->body);
}

void wire_decoder_set_num_pieces(struct wire_decoder *d, uint32_t num_pieces)
{
	d->num_pieces = num_pieces;
}

static int fail(struct wire_decoder *d, int err)
{
	d->err = err;
	d->state = ST_FAILED;
	return err;
}

/* Is `len` (the length prefix, id byte included) right for `id`?  Returns 0
 * to read the body, 1 to skip an unknown id, or -EMSGSIZE.  Called as soon as
 * the id is known, before a single body byte is stored. */
static int check_len(const struct wire_decoder *d, uint8_t id, uint32_t len)
{
	uint32_t body = len - 1; /* len >= 1 here */
	switch (id) {
	case WIRE_CHOKE:
	case WIRE_UNCHOKE:
	case WIRE_INTERESTED:
	case WIRE_NOT_INTERESTED:
		return body == 0 ? 0 : -EMSGSIZE;
	case WIRE_HAVE:
		return body == 4 ? 0 : -EMSGSIZE;
	case WIRE_BITFIELD:
		/* BEP 3: "Clients should drop the connection if they receive
		 * bitfields that are not of the correct size". */
		if (d->num_pieces)
			return body == (d->num_pieces + 7u) / 8u ? 0 : -EMSGSIZE;
		return body >= 1 && body <= WIRE_MAX_BITFIELD ? 0 : -EMSGSIZE;
	case WIRE_REQUEST:
	case WIRE_CANCEL:
		return body == 12 ? 0 : -EMSGSIZE;
	case WIRE_PIECE:
		return body > 8 && body <= 8 + WIRE_BLOCK_MAX ? 0 : -EMSGSIZE;
	case WIRE_PORT:
		return body == 2 ? 0 : -EMSGSIZE;
	case WIRE_EXTENDED:
		return body >= 1 && body <= WIRE_MAX_EXTENDED ? 0 : -EMSGSIZE;
	case WIRE_HASH_REQUEST:
	case WIRE_HASH_REJECT:
		return body == WIRE_HASH_REQ_LEN ? 0 : -EMSGSIZE;
	case WIRE_HASHES:
		if (body <= WIRE_HASH_REQ_LEN || (body - WIRE_HASH_REQ_LEN) % 32u != 0)
			return -EMSGSIZE;
		return (body - WIRE_HASH_REQ_LEN) / 32u <= WIRE_MAX_HASHES ? 0 : -EMSGSIZE;
	default:
		return body <= WIRE_MAX_UNKNOWN ? 1 : -EMSGSIZE;
	}
}

static int check_index(const struct wire_decoder *d, uint32_t index)
{
	return d->num_pieces && index >= d->num_pieces ? -EBADMSG : 0;
}

static void rd_hash_req(struct wire_hash_req *r, const uint8_t *p)
{
	memcpy(r->pieces_root, p, 32);
	r->base_layer = rd32(p + 32);
	r->index = rd32(p + 36);
	r->length = rd32(p + 40);
	r->proof_layers = rd32(p + 44);
}

/* Fill *m from a complete body [p, p + n) whose length check_len() accepted. */
static int parse_body(const struct wire_decoder *d, uint8_t id, const uint8_t *p, size_t n,
		      struct wire_msg *m)
{
	m->type = (enum wire_msg_id)id;
	switch (id) {
	case WIRE_CHOKE:
	case WIRE_UNCHOKE:
	case WIRE_INTERESTED:
	case WIRE_NOT_INTERESTED:
		return 0;
	case WIRE_HAVE:
		m->u.have = rd32(p);
		return check_index(d, m->u.have);
	case WIRE_BITFIELD:
		if (d->num_pieces % 8u) {
			/* BEP 3: "Spare bits at the end are set to zero." */
			uint8_t spare = (uint8_t)(0xffu >> (d->num_pieces % 8u));
			if (p[n - 1] & spare)
				return -EBADMSG;
		}
		m->u.bitfield.bits = p;
		m->u.bitfield.len = n;
		return 0;
	case WIRE_REQUEST:
	case WIRE_CANCEL:
		m->u.block.index = rd32(p);
		m->u.block.begin = rd32(p + 4);
		m->u.block.length = rd32(p + 8);
		if (m->u.block.length == 0 || m->u.block.length > WIRE_BLOCK_MAX)
			return -EBADMSG;
		return check_index(d, m->u.block.index);
	case WIRE_PIECE:
		m->u.piece.index = rd32(p);
		m->u.piece.begin = rd32(p + 4);
		m->u.piece.data = p + 8;
		m->u.piece.len = n - 8;
		return check_index(d, m->u.piece.index);
	case WIRE_PORT:
		m->u.port = (uint16_t)(p[0] << 8 | p[1]);
		return 0;
	case WIRE_EXTENDED:
		m->u.ext.id = p[0];
		m->u.ext.payload = p + 1;
		m->u.ext.len = n - 1;
		return 0;
	case WIRE_HASH_REQUEST:
	case WIRE_HASH_REJECT:
		/* BEP 52: <pieces root><base layer><index><length><proof layers> */
		rd_hash_req(&m->u.hash_req, p);
		return m->u.hash_req.length ? 0 : -EBADMSG;
	case WIRE_HASHES:
		rd_hash_req(&m->u.hashes.req, p);
		m->u.hashes.hashes = p + WIRE_HASH_REQ_LEN;
		m->u.hashes.count = (n - WIRE_HASH_REQ_LEN) / 32u;
		/* The requested hashes come first, then the proof (uncle) hashes. */
		if (m->u.hashes.req.length == 0 || m->u.hashes.count < m->u.hashes.req.length)
			return -EBADMSG;
		return 0;
	default:
		return -EBADMSG; /* unreachable: unknown ids are skipped */
	}
}

/* Handle the 5-byte message head in d->hdr (or a 4-byte zero length). */
static int start_message(struct wire_decoder *d, uint32_t len, uint8_t id)
{
	int rc = check_len(d, id, len);
	if (rc < 0)
		return rc;
	d->msg_len = len;
	d->id = id;
	d->remaining = len - 1;
	d->state = rc == 1 ? ST_SKIP : ST_BODY;
	buf_reset(&d->body);
	return 0;
}

int wire_decode(struct wire_decoder *d, const uint8_t **pp, const uint8_t *end,
		struct wire_msg *msg_out)
{
	if (d->err)
		return d->err;
	if (d->shrink) {
		buf_destroy(&d->body);
		d->shrink = false;
	}
	const uint8_t *p = *pp;
	int rc;

	for (;;) {
		size_t avail = (size_t)(end - p);
		switch (d->state) {
		case ST_HANDSHAKE: {
			size_t take = WIRE_HANDSHAKE_LEN - d->hdr_have;
			if (take > avail)
				take = avail;
			memcpy(d->hdr + d->hdr_have, p, take);
			p += take;
			d->hdr_have += take;
			*pp = p;
			/* Reject a non-BitTorrent stream on its first wrong byte. */
			rc = wire_handshake_parse(&msg_out->u.handshake, d->hdr, d->hdr + d->hdr_have);
			if (rc == -EAGAIN)
				return 0;
			if (rc < 0)
				return fail(d, rc);
			msg_out->type = WIRE_HANDSHAKE;
			d->hdr_have = 0;
			d->state = ST_HEAD;
			return 1;
		}
		case ST_HEAD:
			if (d->hdr_have == 0 && avail >= 5) {
				/* Fast path: the head is contiguous in the input. */
				uint32_t len = rd32(p);
				if (len == 0) {
					*pp = p + 4;
					msg_out->type = WIRE_KEEPALIVE;
					return 1;
				}
				if (len > WIRE_MAX_MSG)
					return fail(d, -EMSGSIZE);
				rc = start_message(d, len, p[4]);
				if (rc < 0)
					return fail(d, rc);
				p += 5;
				break;
			}
			if (avail == 0) {
				*pp = p;
				return 0;
			}
			d->hdr[d->hdr_have++] = *p++;
			if (d->hdr_have == 4) {
				uint32_t len = rd32(d->hdr);
				if (len == 0) {
					d->hdr_have = 0;
					*pp = p;
					msg_out->type = WIRE_KEEPALIVE;
					return 1;
				}
				if (len > WIRE_MAX_MSG)
					return fail(d, -EMSGSIZE);
			} else if (d->hdr_have == 5) {
				d->hdr_have = 0;
				rc = start_message(d, rd32(d->hdr), d->hdr[4]);
				if (rc < 0)
					return fail(d, rc);
			}
			break;
		case ST_BODY: {
			const uint8_t *body;
			if (d->body.len == 0 && avail >= d->remaining) {
				/* Whole body in this chunk: decode in place, no copy. */
				body = p;
				p += d->remaining;
			} else {
				size_t take = d->remaining < avail ? d->remaining : avail;
				rc = buf_append(&d->body, p, take);
				if (rc < 0)
					return fail(d, rc);
				p += take;
				d->remaining -= (uint32_t)take;
				if (d->remaining) {
					*pp = p;
					return 0;
				}
				body = d->body.data;
				if (d->body.cap > WIRE_KEEP_BUF)
					d->shrink = true;
			}
			d->remaining = 0;
			d->state = ST_HEAD;
			*pp = p;
			rc = parse_body(d, d->id, body, d->msg_len - 1u, msg_out);
			if (rc < 0)
				return fail(d, rc);
			return 1;
		}
		case ST_SKIP: {
			size_t take = d->remaining < avail ? d->remaining : avail;
			p += take;
			d->remaining -= (uint32_t)take;
			if (d->remaining == 0) {
				d->state = ST_HEAD;
				d->skipped++;
			}
			if (p == end && d->state == ST_SKIP) {
				*pp = p;
				return 0;
			}
			break;
		}
		default:
			return fail(d, -EPROTO);
		}
	}
}

/* ---- Encoders ----------------------------------------------------------- */

static size_t put_head(uint8_t *out, uint32_t len, uint8_t id)
{
	wr32(out, len);
	out[4] = id;
	return 5;
}

size_t wire_put_keepalive(uint8_t out[WIRE_KEEPALIVE_LEN])
{
	wr32(out, 0);
	return WIRE_KEEPALIVE_LEN;
}

size_t wire_put_simple(uint8_t out[WIRE_SIMPLE_LEN], enum wire_msg_id id)
{
	return put_head(out, 1, (uint8_t)id);
}

size_t wire_put_have(uint8_t out[WIRE_HAVE_LEN], uint32_t index)
{
	put_head(out, 5, WIRE_HAVE);
	wr32(out + 5, index);
	return WIRE_HAVE_LEN;
}

size_t wire_put_block(uint8_t out[WIRE_BLOCK_MSG_LEN], enum wire_msg_id id,
		      const struct wire_block *b)
{
	put_head(out, 13, (uint8_t)id);
	wr32(out + 5, b->index);
	wr32(out + 9, b->begin);
	wr32(out + 13, b->length);
	return WIRE_BLOCK_MSG_LEN;
}

size_t wire_put_piece_hdr(uint8_t out[WIRE_PIECE_HDR_LEN], uint32_t index, uint32_t begin,
			  uint32_t len)
{
	put_head(out, 9 + len, WIRE_PIECE);
	wr32(out + 5, index);
	wr32(out + 9, begin);
	return WIRE_PIECE_HDR_LEN;
}

size_t wire_put_port(uint8_t out[WIRE_PORT_LEN], uint16_t port)
{
	put_head(out, 3, WIRE_PORT);
	out[5] = (uint8_t)(port >> 8);
	out[6] = (uint8_t)port;
	return WIRE_PORT_LEN;
}

size_t wire_put_bitfield_hdr(uint8_t out[WIRE_BITFIELD_HDR_LEN], uint32_t nbytes)
{
	return put_head(out, 1 + nbytes, WIRE_BITFIELD);
}

size_t wire_put_ext_hdr(uint8_t out[WIRE_EXT_HDR_LEN], uint8_t ext_id, uint32_t len)
{
	put_head(out, 2 + len, WIRE_EXTENDED);
	out[5] = ext_id;
	return WIRE_EXT_HDR_LEN;
}

size_t wire_put_hash_msg(uint8_t out[WIRE_HASH_MSG_LEN], enum wire_msg_id id,
			 const struct wire_hash_req *r, uint32_t nhashes)
{
	uint32_t extra = id == WIRE_HASHES ? nhashes * 32u : 0;
	put_head(out, 1 + WIRE_HASH_REQ_LEN + extra, (uint8_t)id);
	memcpy(out + 5, r->pieces_root, 32);
	wr32(out + 37, r->base_layer);
	wr32(out + 41, r->index);
	wr32(out + 45, r->length);
	wr32(out + 49, r->proof_layers);
	return WIRE_HASH_MSG_LEN;
}

/* ---- Extension protocol (BEP 10) and its messages (BEP 9, BEP 11) ------- */

/* Node budgets for the bencoded payloads; more is refused with -E2BIG. */
#define EXT_HS_NODES 256
#define EXT_SMALL_NODES 32

/* Start a complete extended message in `b`: reserve its 6-byte head, to be
 * filled by ext_end() once the payload length is known. */
static int ext_begin(struct buf *b, size_t *start_out)
{
	static const uint8_t zero[WIRE_EXT_HDR_LEN];
	*start_out = b->len;
	return buf_append(b, zero, sizeof zero);
}

static int ext_end(struct buf *b, size_t start, uint8_t ext_id, int rc)
{
	if (rc < 0) {
		b->len = start; /* leave no half message behind */
		return rc;
	}
	size_t payload = b->len - start - WIRE_EXT_HDR_LEN;
	if (payload + 1 > WIRE_MAX_EXTENDED) {
		b->len = start;
		return -EMSGSIZE;
	}
	wire_put_ext_hdr(b->data + start, ext_id, (uint32_t)payload);
	return 0;
}

static bool int_in(const struct benc_node *n, int64_t lo, int64_t hi)
{
	return n && n->i >= lo && n->i <= hi;
}

int wire_ext_hs_parse(struct wire_ext_hs *hs_out, const uint8_t *p, const uint8_t *end)
{
	struct benc_node nodes[EXT_HS_NODES];
	struct benc_doc doc = { nodes, EXT_HS_NODES, 0 };
	memset(hs_out, 0, sizeof *hs_out);
	int rc = benc_parse(&doc, p, end, NULL);
	if (rc < 0)
		return rc;
	const struct benc_node *root = benc_root(&doc);
	if (root->type != BENC_DICT)
		return -EILSEQ;

	const struct benc_node *m = benc_dict_get_type(&doc, root, "m", BENC_DICT);
	if (m) {
		const struct benc_node *v = benc_dict_get_type(&doc, m, "ut_metadata", BENC_INT);
		if (int_in(v, 0, 255))
			hs_out->ut_metadata = (uint8_t)v->i;
		v = benc_dict_get_type(&doc, m, "ut_pex", BENC_INT);
		if (int_in(v, 0, 255))
			hs_out->ut_pex = (uint8_t)v->i;
	}
	const struct benc_node *v = benc_dict_get_type(&doc, root, "metadata_size", BENC_INT);
	if (v) {
		if (!int_in(v, 0, WIRE_METADATA_MAX))
			return -EMSGSIZE;
		hs_out->metadata_size = (uint32_t)v->i;
	}
	v = benc_dict_get_type(&doc, root, "p", BENC_INT);
	if (int_in(v, 1, 65535))
		hs_out->port = (uint16_t)v->i;
	v = benc_dict_get_type(&doc, root, "reqq", BENC_INT);
	if (int_in(v, 1, UINT32_MAX))
		hs_out->reqq = (uint32_t)v->i;
	v = benc_dict_get_type(&doc, root, "v", BENC_STR);
	if (v) {
		size_t n = v->s_len < WIRE_EXT_CLIENT_MAX ? v->s_len : WIRE_EXT_CLIENT_MAX;
		memcpy(hs_out->client, v->s, n);
		hs_out->client[n] = '\0';
	}
	v = benc_dict_get_type(&doc, root, "yourip", BENC_STR);
	if (v && (v->s_len == 4 || v->s_len == 16)) {
		memcpy(hs_out->yourip, v->s, v->s_len);
		hs_out->yourip_len = (uint8_t)v->s_len;
	}
	return 0;
}

int wire_ext_hs_encode(struct buf *b, const struct wire_ext_hs *hs)
{
	size_t start;
	int rc = ext_begin(b, &start);
	if (rc < 0)
		return rc;
	/* BEP 3: dictionary keys appear in sorted order. */
	if ((rc = benc_put_dict(b)) < 0)
		goto done;
	if ((rc = benc_put_cstr(b, "m")) < 0 || (rc = benc_put_dict(b)) < 0)
		goto done;
	if (hs->ut_metadata &&
	    ((rc = benc_put_cstr(b, "ut_metadata")) < 0 || (rc = benc_put_int(b, hs->ut_metadata)) < 0))
		goto done;
	if (hs->ut_pex && ((rc = benc_put_cstr(b, "ut_pex")) < 0 || (rc = benc_put_int(b, hs->ut_pex)) < 0))
		goto done;
	if ((rc = benc_put_end(b)) < 0)
		goto done;
	if (hs->metadata_size && ((rc = benc_put_cstr(b, "metadata_size")) < 0 ||
				  (rc = benc_put_int(b, hs->metadata_size)) < 0))
		goto done;
	if (hs->port && ((rc = benc_put_cstr(b, "p")) < 0 || (rc = benc_put_int(b, hs->port)) < 0))
		goto done;
	if (hs->reqq && ((rc = benc_put_cstr(b, "reqq")) < 0 || (rc = benc_put_int(b, hs->reqq)) < 0))
		goto done;
	if (hs->client[0] && ((rc = benc_put_cstr(b, "v")) < 0 ||
			      (rc = benc_put_str(b, hs->client, strnlen(hs->client, WIRE_EXT_CLIENT_MAX))) < 0))
		goto done;
	if ((hs->yourip_len == 4 || hs->yourip_len == 16) &&
	    ((rc = benc_put_cstr(b, "yourip")) < 0 || (rc = benc_put_str(b, hs->yourip, hs->yourip_len)) < 0))
		goto done;
	rc = benc_put_end(b);
done:
	return ext_end(b, start, WIRE_EXT_HANDSHAKE_ID, rc);
}

/* BEP 9: metadata is sent in 16 KiB pieces, the last one possibly shorter. */
int wire_metadata_parse(struct wire_metadata_msg *m_out, const uint8_t *p, const uint8_t *end)
{
	struct benc_node nodes[EXT_SMALL_NODES];
	struct benc_doc doc = { nodes, EXT_SMALL_NODES, 0 };
	const uint8_t *tail = NULL;
	memset(m_out, 0, sizeof *m_out);
	int rc = benc_parse(&doc, p, end, &tail);
	if (rc < 0)
		return rc;
	const struct benc_node *root = benc_root(&doc);
	if (root->type != BENC_DICT)
		return -EILSEQ;
	const struct benc_node *type = benc_dict_get_type(&doc, root, "msg_type", BENC_INT);
	const struct benc_node *piece = benc_dict_get_type(&doc, root, "piece", BENC_INT);
	if (!type)
		return -EBADMSG;
	if (!int_in(type, WIRE_MD_REQUEST, WIRE_MD_REJECT))
		return -ENOTSUP;
	if (!int_in(piece, 0, WIRE_METADATA_MAX / WIRE_METADATA_PIECE - 1))
		return -EBADMSG;
	m_out->type = (enum wire_metadata_type)type->i;
	m_out->piece = (uint32_t)piece->i;
	size_t data_len = (size_t)(end - tail);
	if (m_out->type != WIRE_MD_DATA)
		return data_len == 0 ? 0 : -EBADMSG;

	const struct benc_node *total = benc_dict_get_type(&doc, root, "total_size", BENC_INT);
	if (!int_in(total, 1, INT64_MAX))
		return -EBADMSG;
	if (total->i > (int64_t)WIRE_METADATA_MAX)
		return -EMSGSIZE;
	uint32_t ts = (uint32_t)total->i;
	uint32_t npieces = (ts + WIRE_METADATA_PIECE - 1) / WIRE_METADATA_PIECE;
	if (m_out->piece >= npieces)
		return -EBADMSG;
	uint32_t want = m_out->piece + 1 == npieces ? ts - m_out->piece * WIRE_METADATA_PIECE
						    : WIRE_METADATA_PIECE;
	if (data_len != want)
		return -EBADMSG;
	m_out->total_size = ts;
	m_out->data = tail;
	m_out->len = data_len;
	return 0;
}

int wire_metadata_encode(struct buf *b, uint8_t ext_id, const struct wire_metadata_msg *m)
{
	bool data = m->type == WIRE_MD_DATA;
	if ((unsigned)m->type > WIRE_MD_REJECT)
		return -EINVAL;
	if (data) {
		uint32_t ts = m->total_size;
		if (ts == 0 || ts > WIRE_METADATA_MAX || m->piece >= (ts + WIRE_METADATA_PIECE - 1) / WIRE_METADATA_PIECE)
			return -EINVAL;
		uint32_t npieces = (ts + WIRE_METADATA_PIECE - 1) / WIRE_METADATA_PIECE;
		size_t want = m->piece + 1 == npieces ? ts - m->piece * WIRE_METADATA_PIECE : WIRE_METADATA_PIECE;
		if (m->len != want || !m->data)
			return -EINVAL;
	}
	size_t start;
	int rc = ext_begin(b, &start);
	if (rc < 0)
		return rc;
	if ((rc = benc_put_dict(b)) < 0 || (rc = benc_put_cstr(b, "msg_type")) < 0 ||
	    (rc = benc_put_int(b, m->type)) < 0 || (rc = benc_put_cstr(b, "piece")) < 0 ||
	    (rc = benc_put_int(b, m->piece)) < 0)
		goto done;
	if (data && ((rc = benc_put_cstr(b, "total_size")) < 0 || (rc = benc_put_int(b, m->total_size)) < 0))
		goto done;
	if ((rc = benc_put_end(b)) < 0)
		goto done;
	if (data)
		rc = buf_append(b, m->data, m->len);
done:
	return ext_end(b, start, ext_id, rc);
}

/* BEP 11: compact peers are 4+2 (IPv4) or 16+2 (IPv6) bytes, port big-endian. */
static int pex_list(const struct benc_doc *doc, const struct benc_node *root, const char *key,
		    const char *fkey, int family, struct wire_peer *out, size_t *n_io)
{
	size_t alen = family == 4 ? 4 : 16, elen = alen + 2;
	const struct benc_node *v = benc_dict_get(doc, root, key);
	if (!v)
		return 0;
	if (v->type != BENC_STR || v->s_len % elen)
		return -EBADMSG;
	size_t n = v->s_len / elen;
	const struct benc_node *f = fkey ? benc_dict_get(doc, root, fkey) : NULL;
	if (f && (f->type != BENC_STR || f->s_len != n))
		return -EBADMSG;
	if (n > WIRE_PEX_MAX - *n_io)
		return -EMSGSIZE;
	for (size_t i = 0; i < n; i++) {
		const uint8_t *e = v->s + i * elen;
		uint16_t port = (uint16_t)(e[alen] << 8 | e[alen + 1]);
		if (port == 0)
			continue;
		struct wire_peer *peer = &out[(*n_io)++];
		memset(peer, 0, sizeof *peer);
		memcpy(peer->addr, e, alen);
		peer->family = (uint8_t)family;
		peer->port = port;
		peer->flags = f ? f->s[i] : 0;
	}
	return 0;
}

int wire_pex_parse(struct wire_pex *pex_out, const uint8_t *p, const uint8_t *end)
{
	struct benc_node nodes[EXT_SMALL_NODES];
	struct benc_doc doc = { nodes, EXT_SMALL_NODES, 0 };
	pex_out->n_added = 0;
	pex_out->n_dropped = 0;
	int rc = benc_parse(&doc, p, end, NULL);
	if (rc < 0)
		return rc;
	const struct benc_node *root = benc_root(&doc);
	if (root->type != BENC_DICT)
		return -EILSEQ;
	if ((rc = pex_list(&doc, root, "added", "added.f", 4, pex_out->added, &pex_out->n_added)) < 0 ||
	    (rc = pex_list(&doc, root, "added6", "added6.f", 6, pex_out->added, &pex_out->n_added)) < 0 ||
	    (rc = pex_list(&doc, root, "dropped", NULL, 4, pex_out->dropped, &pex_out->n_dropped)) < 0 ||
	    (rc = pex_list(&doc, root, "dropped6", NULL, 6, pex_out->dropped, &pex_out->n_dropped)) < 0)
		return rc;
	return 0;
}

/* Write the compact list (and, if `fkey`, the flags) of one family. */
static int pex_put(struct buf *b, const char *key, const char *fkey, int family,
		   const struct wire_peer *peers, size_t n)
{
	uint8_t compact[WIRE_PEX_MAX * 18], flags[WIRE_PEX_MAX];
	size_t alen = family == 4 ? 4 : 16, len = 0, cnt = 0;
	for (size_t i = 0; i < n; i++) {
		if (peers[i].family != family)
			continue;
		memcpy(compact + len, peers[i].addr, alen);
		compact[len + alen] = (uint8_t)(peers[i].port >> 8);
		compact[len + alen + 1] = (uint8_t)peers[i].port;
		len += alen + 2;
		flags[cnt++] = peers[i].flags;
	}
	if (cnt == 0)
		return 0;
	int rc;
	if ((rc = benc_put_cstr(b, key)) < 0 || (rc = benc_put_str(b, compact, len)) < 0)
		return rc;
	if (fkey && ((rc = benc_put_cstr(b, fkey)) < 0 || (rc = benc_put_str(b, flags, cnt)) < 0))
		return rc;
	return 0;
}

int wire_pex_encode(struct buf *b, uint8_t ext_id, const struct wire_pex *pex)
{
	if (pex->n_added > WIRE_PEX_MAX || pex->n_dropped > WIRE_PEX_MAX)
		return -EINVAL;
	for (size_t i = 0; i < pex->n_added; i++)
		if (pex->added[i].family != 4 && pex->added[i].family != 6)
			return -EINVAL;
	for (size_t i = 0; i < pex->n_dropped; i++)
		if (pex->dropped[i].family != 4 && pex->dropped[i].family != 6)
			return -EINVAL;
	size_t start;
	int rc = ext_begin(b, &start);
	if (rc < 0)
		return rc;
	/* Sorted keys: added < added.f < added6 < added6.f < dropped < dropped6. */
	if ((rc = benc_put_dict(b)) < 0 ||
	    (rc = pex_put(b, "added", "added.f", 4, pex->added, pex->n_added)) < 0 ||
	    (rc = pex_put(b, "added6", "added6.f", 6, pex->added, pex->n_added)) < 0 ||
	    (rc = pex_put(b, "dropped", NULL, 4, pex->dropped, pex->n_dropped)) < 0 ||
	    (rc = pex_put(b, "dropped6", NULL, 6, pex->dropped, pex->n_dropped)) < 0)
		goto done;
	rc = benc_put_end(b);
done:
	return ext_end(b, start, ext_id, rc);
}
