/* test_wire.c: unit tests for the peer wire codec (transfer/wire.h). */
#include "config.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/buf.h"
#include "transfer/wire.h"

#define MAX_MSGS 64

/* Decode `n` bytes fed `chunk` at a time; store copies of the messages. */
struct decoded {
	size_t count;
	struct wire_msg msg[MAX_MSGS];
	uint8_t *payload[MAX_MSGS]; /* copy of the message's variable body */
	size_t payload_len[MAX_MSGS];
	int err;
};

static void keep_payload(struct decoded *out, const struct wire_msg *m)
{
	const uint8_t *p = NULL;
	size_t n = 0;
	switch (m->type) {
	case WIRE_BITFIELD:
		p = m->u.bitfield.bits, n = m->u.bitfield.len;
		break;
	case WIRE_PIECE:
		p = m->u.piece.data, n = m->u.piece.len;
		break;
	case WIRE_EXTENDED:
		p = m->u.ext.payload, n = m->u.ext.len;
		break;
	case WIRE_HASHES:
		p = m->u.hashes.hashes, n = m->u.hashes.count * 32;
		break;
	default:
		break;
	}
	out->payload[out->count] = NULL;
	out->payload_len[out->count] = n;
	if (n) {
		out->payload[out->count] = malloc(n);
		assert_non_null(out->payload[out->count]);
		memcpy(out->payload[out->count], p, n);
	}
}

static void decode_all(struct wire_decoder *d, const uint8_t *buf, size_t n, size_t chunk,
		       struct decoded *out)
{
	memset(out, 0, sizeof *out);
	for (size_t off = 0; off < n && !out->err;) {
		size_t k = n - off < chunk ? n - off : chunk;
		const uint8_t *p = buf + off, *end = p + k;
		for (;;) {
			struct wire_msg m;
			int rc = wire_decode(d, &p, end, &m);
			if (rc < 0) {
				out->err = rc;
				break;
			}
			if (rc == 0) {
				assert_ptr_equal(p, end);
				break;
			}
			assert_true(out->count < MAX_MSGS);
			keep_payload(out, &m);
			out->msg[out->count++] = m;
		}
		off += k;
	}
}

static void decoded_free(struct decoded *out)
{
	for (size_t i = 0; i < out->count; i++)
		free(out->payload[i]);
}

static void test_handshake(void **state)
{
	(void)state;
	uint8_t ih[20], pid[20], out[WIRE_HANDSHAKE_LEN];
	for (int i = 0; i < 20; i++) {
		ih[i] = (uint8_t)(0xa0 + i);
		pid[i] = (uint8_t)('A' + i);
	}
	wire_handshake_encode(out, ih, pid, WIRE_RSV_EXTENDED | WIRE_RSV_V2);
	assert_int_equal(out[0], 19);
	assert_memory_equal(out + 1, "BitTorrent protocol", 19);
	static const uint8_t rsv[8] = { 0, 0, 0, 0, 0, 0x10, 0, 0x10 };
	assert_memory_equal(out + 20, rsv, 8);
	assert_memory_equal(out + 28, ih, 20);
	assert_memory_equal(out + 48, pid, 20);

	struct wire_handshake hs;
	assert_int_equal(wire_handshake_parse(&hs, out, out + sizeof out), 0);
	assert_int_equal(wire_handshake_flags(&hs), WIRE_RSV_EXTENDED | WIRE_RSV_V2);
	assert_memory_equal(hs.info_hash, ih, 20);
	assert_memory_equal(hs.peer_id, pid, 20);
	assert_int_equal(wire_handshake_parse(&hs, out, out + 67), -EAGAIN);
	assert_int_equal(wire_handshake_parse(&hs, out, out), -EAGAIN);
	wire_handshake_encode(out, ih, pid, WIRE_RSV_DHT);
	assert_int_equal(out[27], 0x01);
	assert_int_equal(out[25], 0);
	assert_int_equal(wire_handshake_parse(&hs, out, out + sizeof out), 0);
	assert_int_equal(wire_handshake_flags(&hs), WIRE_RSV_DHT);
	out[5] ^= 0x20;
	assert_int_equal(wire_handshake_parse(&hs, out, out + 6), -EPROTO);
	assert_int_equal(wire_handshake_parse(&hs, out, out + sizeof out), -EPROTO);

	/* In the decoder: the first wrong byte is enough to refuse. */
	struct wire_decoder d;
	wire_decoder_init(&d, true);
	const uint8_t *p = (const uint8_t *)"GET / HTTP/1.1";
	struct wire_msg m;
	assert_int_equal(wire_decode(&d, &p, p + 1, &m), -EPROTO);
	wire_decoder_destroy(&d);
}

/* A stream with one of every message, built with the encoders. */
static size_t build_stream(uint8_t *s, const uint8_t *block, size_t block_len)
{
	size_t n = 0;
	uint8_t ih[20] = { 1, 2, 3 }, pid[20] = { 'S', 'H' };
	wire_handshake_encode(s + n, ih, pid, WIRE_RSV_EXTENDED | WIRE_RSV_V2);
	n += WIRE_HANDSHAKE_LEN;
	n += wire_put_keepalive(s + n);
	n += wire_put_simple(s + n, WIRE_CHOKE);
	n += wire_put_simple(s + n, WIRE_UNCHOKE);
	n += wire_put_simple(s + n, WIRE_INTERESTED);
	n += wire_put_simple(s + n, WIRE_NOT_INTERESTED);
	n += wire_put_have(s + n, 77);
	n += wire_put_bitfield_hdr(s + n, 2);
	s[n++] = 0xff;
	s[n++] = 0x80; /* 9 pieces: spare bits zero */
	struct wire_block b = { 5, 16384, 16384 };
	n += wire_put_block(s + n, WIRE_REQUEST, &b);
	n += wire_put_piece_hdr(s + n, 5, 16384, (uint32_t)block_len);
	memcpy(s + n, block, block_len);
	n += block_len;
	n += wire_put_block(s + n, WIRE_CANCEL, &b);
	n += wire_put_port(s + n, 6881);
	n += wire_put_ext_hdr(s + n, 3, 5);
	memcpy(s + n, "hello", 5);
	n += 5;
	struct wire_hash_req r;
	memset(r.pieces_root, 0x42, 32);
	r.base_layer = 0;
	r.index = 4;
	r.length = 2;
	r.proof_layers = 1;
	n += wire_put_hash_msg(s + n, WIRE_HASH_REQUEST, &r, 0);
	n += wire_put_hash_msg(s + n, WIRE_HASHES, &r, 3);
	for (int i = 0; i < 3 * 32; i++)
		s[n++] = (uint8_t)i;
	n += wire_put_hash_msg(s + n, WIRE_HASH_REJECT, &r, 0);
	/* An unknown id (BEP 6 suggest) is skipped. */
	static const uint8_t suggest[] = { 0, 0, 0, 5, 13, 0, 0, 0, 1 };
	memcpy(s + n, suggest, sizeof suggest);
	n += sizeof suggest;
	n += wire_put_simple(s + n, WIRE_CHOKE);
	return n;
}

static void check_stream(const struct decoded *o, const uint8_t *block, size_t block_len)
{
	static const enum wire_msg_id want[] = {
		WIRE_HANDSHAKE, WIRE_KEEPALIVE, WIRE_CHOKE,        WIRE_UNCHOKE,    WIRE_INTERESTED,
		WIRE_NOT_INTERESTED, WIRE_HAVE, WIRE_BITFIELD,     WIRE_REQUEST,    WIRE_PIECE,
		WIRE_CANCEL,    WIRE_PORT,      WIRE_EXTENDED,     WIRE_HASH_REQUEST, WIRE_HASHES,
		WIRE_HASH_REJECT, WIRE_CHOKE,
	};
	assert_int_equal(o->err, 0);
	assert_int_equal(o->count, sizeof want / sizeof want[0]);
	for (size_t i = 0; i < o->count; i++)
		assert_int_equal(o->msg[i].type, want[i]);
	assert_int_equal(o->msg[0].u.handshake.info_hash[2], 3);
	assert_int_equal(o->msg[0].u.handshake.peer_id[1], 'H');
	assert_int_equal(o->msg[6].u.have, 77);
	assert_int_equal(o->payload_len[7], 2);
	assert_int_equal(o->payload[7][1], 0x80);
	assert_int_equal(o->msg[8].u.block.index, 5);
	assert_int_equal(o->msg[8].u.block.begin, 16384);
	assert_int_equal(o->msg[8].u.block.length, 16384);
	assert_int_equal(o->msg[9].u.piece.index, 5);
	assert_int_equal(o->msg[9].u.piece.begin, 16384);
	assert_int_equal(o->payload_len[9], block_len);
	assert_memory_equal(o->payload[9], block, block_len);
	assert_int_equal(o->msg[10].u.block.length, 16384);
	assert_int_equal(o->msg[11].u.port, 6881);
	assert_int_equal(o->msg[12].u.ext.id, 3);
	assert_int_equal(o->payload_len[12], 5);
	assert_memory_equal(o->payload[12], "hello", 5);
	const struct wire_hash_req *r = &o->msg[13].u.hash_req;
	assert_int_equal(r->pieces_root[31], 0x42);
	assert_int_equal(r->index, 4);
	assert_int_equal(r->length, 2);
	assert_int_equal(r->proof_layers, 1);
	assert_int_equal(o->msg[14].u.hashes.count, 3);
	assert_int_equal(o->msg[14].u.hashes.req.index, 4);
	assert_int_equal(o->payload[14][95], 95);
	assert_int_equal(o->msg[15].u.hash_req.length, 2);
}

static void test_stream_chunked(void **state)
{
	(void)state;
	static uint8_t block[WIRE_BLOCK_MAX], s[WIRE_BLOCK_MAX + 1024];
	for (size_t i = 0; i < sizeof block; i++)
		block[i] = (uint8_t)(i * 31 + 7);
	size_t n = build_stream(s, block, sizeof block);
	static const size_t chunks[] = { 1, 2, 3, 5, 13, 100, 4096, 1u << 20 };
	for (size_t c = 0; c < sizeof chunks / sizeof chunks[0]; c++) {
		struct wire_decoder d;
		wire_decoder_init(&d, true);
		struct decoded o;
		decode_all(&d, s, n, chunks[c], &o);
		check_stream(&o, block, sizeof block);
		assert_int_equal(d.skipped, 1);
		decoded_free(&o);
		wire_decoder_destroy(&d);
	}
}

/* A body that arrives whole is handed back in place: no copy at all. */
static void test_zero_copy(void **state)
{
	(void)state;
	static uint8_t s[WIRE_PIECE_HDR_LEN + WIRE_BLOCK_MAX];
	size_t n = wire_put_piece_hdr(s, 1, 0, WIRE_BLOCK_MAX);
	memset(s + n, 0x77, WIRE_BLOCK_MAX);
	struct wire_decoder d;
	wire_decoder_init(&d, false);
	const uint8_t *p = s;
	struct wire_msg m;
	assert_int_equal(wire_decode(&d, &p, s + sizeof s, &m), 1);
	assert_int_equal(m.type, WIRE_PIECE);
	assert_ptr_equal(m.u.piece.data, s + WIRE_PIECE_HDR_LEN);
	assert_int_equal(m.u.piece.len, WIRE_BLOCK_MAX);
	assert_null(d.body.data); /* never buffered */
	assert_ptr_equal(p, s + sizeof s);
	assert_int_equal(wire_decode(&d, &p, s + sizeof s, &m), 0);

	/* Split in two: one copy into the decoder, storage then reused. */
	p = s;
	assert_int_equal(wire_decode(&d, &p, s + 100, &m), 0);
	assert_int_equal(wire_decode(&d, &p, s + sizeof s, &m), 1);
	assert_ptr_equal(m.u.piece.data, d.body.data + 8);
	uint8_t *storage = d.body.data;
	p = s;
	assert_int_equal(wire_decode(&d, &p, s + 100, &m), 0);
	assert_int_equal(wire_decode(&d, &p, s + sizeof s, &m), 1);
	assert_ptr_equal(d.body.data, storage); /* no allocation per message */
	assert_int_equal(m.u.piece.data[WIRE_BLOCK_MAX - 1], 0x77);
	wire_decoder_destroy(&d);
}

/* Feed one message head (and body) and expect `err`. */
static void expect_error(const uint8_t *msg, size_t n, uint32_t num_pieces, int err)
{
	struct wire_decoder d;
	wire_decoder_init(&d, false);
	wire_decoder_set_num_pieces(&d, num_pieces);
	const uint8_t *p = msg;
	struct wire_msg m;
	int rc = wire_decode(&d, &p, msg + n, &m);
	assert_int_equal(rc, err);
	/* Sticky. */
	p = msg;
	assert_int_equal(wire_decode(&d, &p, msg + n, &m), err);
	wire_decoder_destroy(&d);
}

static void head(uint8_t *h, uint32_t len, uint8_t id)
{
	h[0] = (uint8_t)(len >> 24);
	h[1] = (uint8_t)(len >> 16);
	h[2] = (uint8_t)(len >> 8);
	h[3] = (uint8_t)len;
	h[4] = id;
}

static void test_lengths_checked_before_body(void **state)
{
	(void)state;
	uint8_t h[5];
	/* Only the 5-byte head is given: the verdict must not wait for a body. */
	static const struct {
		uint8_t id;
		uint32_t len;
	} bad[] = {
		{ WIRE_CHOKE, 2 },          { WIRE_UNCHOKE, 5 },        { WIRE_INTERESTED, 2 },
		{ WIRE_NOT_INTERESTED, 9 }, { WIRE_HAVE, 4 },           { WIRE_HAVE, 6 },
		{ WIRE_BITFIELD, 1 },       { WIRE_BITFIELD, 1 + WIRE_MAX_BITFIELD + 1 },
		{ WIRE_REQUEST, 12 },       { WIRE_REQUEST, 14 },       { WIRE_CANCEL, 17 },
		{ WIRE_PIECE, 9 },          { WIRE_PIECE, 9 + WIRE_BLOCK_MAX + 1 },
		{ WIRE_PORT, 5 },           { WIRE_EXTENDED, 1 },       { WIRE_EXTENDED, WIRE_MAX_MSG + 1 },
		{ WIRE_EXTENDED, 2 + WIRE_MAX_EXTENDED },
		{ WIRE_HASH_REQUEST, 48 },  { WIRE_HASH_REQUEST, 50 },  { WIRE_HASH_REJECT, 81 },
		{ WIRE_HASHES, 49 },        { WIRE_HASHES, 49 + 33 },   { WIRE_HASHES, 49 + 31 },
		{ WIRE_HASHES, 49 + 32 * (WIRE_MAX_HASHES + 1) },
		{ 99, WIRE_MAX_UNKNOWN + 2 }, { 0xff, 0xffffffffu },
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		head(h, bad[i].len, bad[i].id);
		expect_error(h, 5, 0, -EMSGSIZE);
	}
	/* An absurd length prefix is refused on its own 4 bytes, byte by byte too. */
	head(h, WIRE_MAX_MSG + 1, 0);
	struct wire_decoder d;
	wire_decoder_init(&d, false);
	struct wire_msg m;
	const uint8_t *p = h;
	for (int i = 0; i < 3; i++)
		assert_int_equal(wire_decode(&d, &p, p + 1, &m), 0);
	assert_int_equal(wire_decode(&d, &p, p + 1, &m), -EMSGSIZE);
	wire_decoder_destroy(&d);

	/* Known piece count: the bitfield must be exactly ceil(n/8) bytes. */
	head(h, 1 + 2, WIRE_BITFIELD);
	expect_error(h, 5, 17, -EMSGSIZE);
	expect_error(h, 5, 8, -EMSGSIZE);
	head(h, 1 + 3, WIRE_BITFIELD);
	expect_error(h, 5, 16, -EMSGSIZE);
}

static void test_bad_content(void **state)
{
	(void)state;
	uint8_t s[64];
	/* Spare bits set (BEP 3). */
	size_t n = wire_put_bitfield_hdr(s, 2);
	s[n++] = 0xff;
	s[n++] = 0xc0;
	expect_error(s, n, 9, -EBADMSG);
	s[n - 1] = 0x80;
	struct wire_decoder d;
	wire_decoder_init(&d, false);
	wire_decoder_set_num_pieces(&d, 9);
	const uint8_t *p = s;
	struct wire_msg m;
	assert_int_equal(wire_decode(&d, &p, s + n, &m), 1);
	assert_int_equal(m.type, WIRE_BITFIELD);
	wire_decoder_destroy(&d);

	/* Index past the piece count. */
	n = wire_put_have(s, 9);
	expect_error(s, n, 9, -EBADMSG);
	struct wire_block b = { 9, 0, 16384 };
	n = wire_put_block(s, WIRE_REQUEST, &b);
	expect_error(s, n, 9, -EBADMSG);
	n = wire_put_piece_hdr(s, 9, 0, 1);
	s[n++] = 0;
	expect_error(s, n, 9, -EBADMSG);
	/* Request lengths: zero, and over one 16 KiB block. */
	b.index = 0;
	b.length = 0;
	n = wire_put_block(s, WIRE_REQUEST, &b);
	expect_error(s, n, 9, -EBADMSG);
	b.length = WIRE_BLOCK_MAX + 1;
	n = wire_put_block(s, WIRE_CANCEL, &b);
	expect_error(s, n, 0, -EBADMSG);
	/* BEP 52: fewer hashes than requested, and an empty request. */
	struct wire_hash_req r;
	memset(&r, 0, sizeof r);
	r.length = 2;
	static uint8_t big[WIRE_HASH_MSG_LEN + 32];
	n = wire_put_hash_msg(big, WIRE_HASHES, &r, 1);
	memset(big + n, 0, 32);
	expect_error(big, n + 32, 0, -EBADMSG);
	r.length = 0;
	n = wire_put_hash_msg(big, WIRE_HASH_REQUEST, &r, 0);
	expect_error(big, n, 0, -EBADMSG);
}

/* Unknown ids are skipped without being stored; an oversize extended
 * message is refused; a big legal one is buffered and then released. */
static void test_skip_and_shrink(void **state)
{
	(void)state;
	size_t big = 300000;
	uint8_t *s = malloc(2 * big);
	assert_non_null(s);
	size_t n = 0;
	head(s, (uint32_t)(1 + WIRE_MAX_UNKNOWN), 200);
	n += 5;
	memset(s + n, 0xee, WIRE_MAX_UNKNOWN);
	n += WIRE_MAX_UNKNOWN;
	n += wire_put_ext_hdr(s + n, 7, (uint32_t)big);
	memset(s + n, 0x33, big);
	n += big;
	n += wire_put_have(s + n, 3);
	struct wire_decoder d;
	wire_decoder_init(&d, false);
	struct decoded o;
	decode_all(&d, s, n, 1000, &o);
	assert_int_equal(o.err, 0);
	assert_int_equal(o.count, 2);
	assert_int_equal(o.msg[0].type, WIRE_EXTENDED);
	assert_int_equal(o.payload_len[0], big);
	assert_int_equal(o.payload[0][big - 1], 0x33);
	assert_int_equal(o.msg[1].type, WIRE_HAVE);
	assert_int_equal(o.msg[1].u.have, 3);
	assert_int_equal(d.skipped, 1);
	assert_true(d.body.cap <= 65536); /* the 300 KB buffer was released */
	decoded_free(&o);
	wire_decoder_destroy(&d);
	free(s);
}

/* ---- BEP 10 / 9 / 11 ---------------------------------------------------- */

/* Decode one complete extended message from `b` and return its payload. */
static const uint8_t *ext_payload(const struct buf *b, uint8_t *id_out, size_t *len_out)
{
	static struct wire_decoder d;
	wire_decoder_destroy(&d);
	wire_decoder_init(&d, false);
	const uint8_t *p = b->data;
	struct wire_msg m;
	assert_int_equal(wire_decode(&d, &p, b->data + b->len, &m), 1);
	assert_ptr_equal(p, b->data + b->len);
	assert_int_equal(m.type, WIRE_EXTENDED);
	*id_out = m.u.ext.id;
	*len_out = m.u.ext.len;
	return m.u.ext.payload; /* in place: points into b */
}

static void test_ext_handshake(void **state)
{
	(void)state;
	struct wire_ext_hs hs, got;
	memset(&hs, 0, sizeof hs);
	hs.ut_metadata = 2;
	hs.ut_pex = 1;
	hs.metadata_size = 31235;
	hs.port = 6881;
	hs.reqq = 500;
	strcpy(hs.client, "shoal 0.1.0");
	hs.yourip_len = 4;
	memcpy(hs.yourip, "\x7f\x00\x00\x01", 4);
	struct buf b;
	buf_init(&b, 4096);
	assert_int_equal(wire_ext_hs_encode(&b, &hs), 0);
	uint8_t id;
	size_t len;
	const uint8_t *pl = ext_payload(&b, &id, &len);
	assert_int_equal(id, 0);
	static const char want[] = "d1:md11:ut_metadatai2e6:ut_pexi1ee13:metadata_sizei31235e"
				   "1:pi6881e4:reqqi500e1:v11:shoal 0.1.06:yourip4:\x7f\x00\x00\x01"
				   "e";
	assert_int_equal(len, sizeof want - 1);
	assert_memory_equal(pl, want, len);
	assert_int_equal(wire_ext_hs_parse(&got, pl, pl + len), 0);
	assert_memory_equal(&got, &hs, sizeof hs);

	/* A libtorrent-style handshake with keys we do not use. */
	static const char lt[] = "d12:complete_agoi-1e1:md11:lt_donthavei7e12:ut_holepunchi4e"
				 "11:ut_metadatai3e6:ut_pexi1ee13:metadata_sizei100e1:pi0e"
				 "4:reqqi500e11:upload_onlyi0e1:v16:libtorrent 2.0.96:yourip"
				 "16:0123456789abcdefe";
	assert_int_equal(wire_ext_hs_parse(&got, (const uint8_t *)lt,
					   (const uint8_t *)lt + sizeof lt - 1), 0);
	assert_int_equal(got.ut_metadata, 3);
	assert_int_equal(got.ut_pex, 1);
	assert_int_equal(got.metadata_size, 100);
	assert_int_equal(got.port, 0); /* p = 0 is no port */
	assert_string_equal(got.client, "libtorrent 2.0.9");
	assert_int_equal(got.yourip_len, 16);
	/* An id that does not fit a byte is "not supported". */
	static const char wide[] = "d1:md11:ut_metadatai256eee";
	assert_int_equal(wire_ext_hs_parse(&got, (const uint8_t *)wide,
					   (const uint8_t *)wide + sizeof wide - 1), 0);
	assert_int_equal(got.ut_metadata, 0);
	static const char huge[] = "d13:metadata_sizei4194305ee";
	assert_int_equal(wire_ext_hs_parse(&got, (const uint8_t *)huge,
					   (const uint8_t *)huge + sizeof huge - 1), -EMSGSIZE);
	static const char list[] = "li1ee";
	assert_int_equal(wire_ext_hs_parse(&got, (const uint8_t *)list,
					   (const uint8_t *)list + sizeof list - 1), -EILSEQ);
	static const char junk[] = "d1:m";
	assert_int_equal(wire_ext_hs_parse(&got, (const uint8_t *)junk,
					   (const uint8_t *)junk + sizeof junk - 1), -EILSEQ);
	/* Encoding into a full buffer leaves nothing half-written. */
	struct buf tiny;
	buf_init(&tiny, 20);
	assert_int_equal(wire_ext_hs_encode(&tiny, &hs), -EMSGSIZE);
	assert_int_equal(tiny.len, 0);
	buf_destroy(&tiny);
	buf_destroy(&b);
}

static void test_metadata(void **state)
{
	(void)state;
	static uint8_t data[WIRE_METADATA_PIECE];
	memset(data, 'm', sizeof data);
	struct buf b;
	buf_init(&b, 1 << 20);
	uint32_t total = 2 * WIRE_METADATA_PIECE + 100;
	struct wire_metadata_msg m = { WIRE_MD_DATA, 1, total, data, WIRE_METADATA_PIECE }, got;
	assert_int_equal(wire_metadata_encode(&b, 9, &m), 0);
	uint8_t id;
	size_t len;
	const uint8_t *pl = ext_payload(&b, &id, &len);
	assert_int_equal(id, 9);
	static const char head_want[] = "d8:msg_typei1e5:piecei1e10:total_sizei32868ee";
	assert_memory_equal(pl, head_want, sizeof head_want - 1);
	assert_int_equal(wire_metadata_parse(&got, pl, pl + len), 0);
	assert_int_equal(got.type, WIRE_MD_DATA);
	assert_int_equal(got.piece, 1);
	assert_int_equal(got.total_size, total);
	assert_int_equal(got.len, WIRE_METADATA_PIECE);
	assert_ptr_equal(got.data, pl + sizeof head_want - 1);
	/* The last piece carries exactly the remainder. */
	buf_reset(&b);
	m.piece = 2;
	m.len = 100;
	assert_int_equal(wire_metadata_encode(&b, 9, &m), 0);
	pl = ext_payload(&b, &id, &len);
	assert_int_equal(wire_metadata_parse(&got, pl, pl + len), 0);
	assert_int_equal(got.len, 100);
	/* Wrong data length is refused, on both sides. */
	assert_int_equal(wire_metadata_parse(&got, pl, pl + len - 1), -EBADMSG);
	m.len = 101;
	assert_int_equal(wire_metadata_encode(&b, 9, &m), -EINVAL);
	m.piece = 3;
	m.len = 100;
	assert_int_equal(wire_metadata_encode(&b, 9, &m), -EINVAL);

	/* Request and reject carry no data. */
	buf_reset(&b);
	struct wire_metadata_msg req = { WIRE_MD_REQUEST, 0, 0, NULL, 0 };
	assert_int_equal(wire_metadata_encode(&b, 2, &req), 0);
	pl = ext_payload(&b, &id, &len);
	assert_int_equal(len, strlen("d8:msg_typei0e5:piecei0ee"));
	assert_memory_equal(pl, "d8:msg_typei0e5:piecei0ee", len);
	assert_int_equal(wire_metadata_parse(&got, pl, pl + len), 0);
	assert_int_equal(got.type, WIRE_MD_REQUEST);

	static const struct {
		const char *s;
		int err;
	} cases[] = {
		{ "d8:msg_typei2e5:piecei3ee", 0 },
		{ "d8:msg_typei3e5:piecei0ee", -ENOTSUP },
		{ "d5:piecei0ee", -EBADMSG },
		{ "d8:msg_typei0ee", -EBADMSG },
		{ "d8:msg_typei0e5:piecei-1ee", -EBADMSG },
		{ "d8:msg_typei0e5:piecei256ee", -EBADMSG },
		{ "d8:msg_typei0e5:piecei0eeXX", -EBADMSG },
		{ "d8:msg_typei1e5:piecei0e10:total_sizei4194305eeX", -EMSGSIZE },
		{ "d8:msg_typei1e5:piecei0e10:total_sizei0ee", -EBADMSG },
		{ "d8:msg_typei1e5:piecei0eeX", -EBADMSG },
		{ "d8:msg_typei1e5:piecei1e10:total_sizei3eeabc", -EBADMSG },
		{ "d8:msg_typei1e5:piecei0e10:total_sizei3eeabc", 0 },
		{ "i5e", -EILSEQ },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const uint8_t *p = (const uint8_t *)cases[i].s;
		assert_int_equal(wire_metadata_parse(&got, p, p + strlen(cases[i].s)), cases[i].err);
	}
	buf_destroy(&b);
}

static void test_pex(void **state)
{
	(void)state;
	static struct wire_pex pex, got;
	memset(&pex, 0, sizeof pex);
	pex.n_added = 3;
	memcpy(pex.added[0].addr, "\x0a\x00\x00\x01", 4);
	pex.added[0].family = 4;
	pex.added[0].port = 6881;
	pex.added[0].flags = WIRE_PEX_F_SEED;
	memcpy(pex.added[1].addr, "\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\x01", 16);
	pex.added[1].family = 6;
	pex.added[1].port = 51413;
	pex.added[1].flags = WIRE_PEX_F_REACHABLE;
	memcpy(pex.added[2].addr, "\xc0\xa8\x01\x02", 4);
	pex.added[2].family = 4;
	pex.added[2].port = 1;
	pex.n_dropped = 1;
	memcpy(pex.dropped[0].addr, "\x01\x02\x03\x04", 4);
	pex.dropped[0].family = 4;
	pex.dropped[0].port = 0x1234;
	struct buf b;
	buf_init(&b, 1 << 16);
	assert_int_equal(wire_pex_encode(&b, 1, &pex), 0);
	uint8_t id;
	size_t len;
	const uint8_t *pl = ext_payload(&b, &id, &len);
	assert_int_equal(id, 1);
	static const char want[] =
		"d5:added12:\x0a\x00\x00\x01\x1a\xe1\xc0\xa8\x01\x02\x00\x01"
		"7:added.f2:\x02\x00"
		"6:added618:\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\x01\xc8\xd5"
		"8:added6.f1:\x10"
		"7:dropped6:\x01\x02\x03\x04\x12\x34"
		"e";
	assert_int_equal(len, sizeof want - 1);
	assert_memory_equal(pl, want, len);
	assert_int_equal(wire_pex_parse(&got, pl, pl + len), 0);
	/* Parsed back grouped by family: IPv4 first, then IPv6. */
	assert_int_equal(got.n_added, 3);
	assert_int_equal(got.n_dropped, 1);
	assert_memory_equal(&got.added[0], &pex.added[0], sizeof pex.added[0]);
	assert_memory_equal(&got.added[1], &pex.added[2], sizeof pex.added[0]);
	assert_memory_equal(&got.added[2], &pex.added[1], sizeof pex.added[0]);
	assert_memory_equal(&got.dropped[0], &pex.dropped[0], sizeof pex.dropped[0]);

	static const struct {
		const char *s;
		size_t n;
		int err;
	} cases[] = {
		{ "de", 0, 0 },
		{ "d5:added5:abcdee", 0, -EBADMSG },       /* not a whole entry */
		{ "d5:added6:abcdef7:added.f2:xye", 0, -EBADMSG }, /* flag count */
		{ "d5:addedi1ee", 0, -EBADMSG },          /* wrong type */
		{ "d8:dropped617:aaaaaaaaaaaaaaaaae", 0, -EBADMSG },
		{ "d5:added6:abcd\0\0e", 17, 0 },           /* port 0: left out */
		{ "le", 0, -EILSEQ },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const uint8_t *p = (const uint8_t *)cases[i].s;
		assert_int_equal(wire_pex_parse(&got, p, p + (cases[i].n ? cases[i].n : strlen(cases[i].s))),
				 cases[i].err);
		if (i == 5)
			assert_int_equal(got.n_added, 0);
	}

	/* Over the per-list cap. */
	buf_reset(&b);
	size_t n = WIRE_PEX_MAX + 1;
	assert_int_equal(buf_printf(&b, "d5:added%zu:", n * 6), 0);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(buf_append(&b, "\x01\x01\x01\x01\x00\x01", 6), 0);
	assert_int_equal(buf_append_byte(&b, 'e'), 0);
	assert_int_equal(wire_pex_parse(&got, b.data, b.data + b.len), -EMSGSIZE);
	pex.added[0].family = 5;
	assert_int_equal(wire_pex_encode(&b, 1, &pex), -EINVAL);
	buf_destroy(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_handshake),
		cmocka_unit_test(test_stream_chunked),
		cmocka_unit_test(test_zero_copy),
		cmocka_unit_test(test_lengths_checked_before_body),
		cmocka_unit_test(test_bad_content),
		cmocka_unit_test(test_skip_and_shrink),
		cmocka_unit_test(test_ext_handshake),
		cmocka_unit_test(test_metadata),
		cmocka_unit_test(test_pex),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
