/* fuzz_wire.c: fuzz harness for the peer wire decoder (handshake, messages) and the BEP 10/9/11 payload parsers. */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "transfer/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A broken invariant is a crash the fuzzer (and make check) reports. */
#define CHECK(x)                                                                         \
	do {                                                                             \
		if (!(x))                                                                \
			abort();                                                         \
	} while (0)

static uint32_t sink;

static void touch(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		sink += p[i];
}

/* Extended payloads go through every BEP 10/9/11 parser; whatever parses
 * must re-encode and parse back to the same values. */
static void fuzz_ext(const uint8_t *p, size_t n)
{
	static struct wire_pex pex, pex2;
	struct wire_ext_hs hs, hs2;
	struct wire_metadata_msg md, md2;
	struct buf b;
	buf_init(&b, 1u << 21);
	const uint8_t *end = p + n;

	if (wire_ext_hs_parse(&hs, p, end) == 0) {
		CHECK(hs.metadata_size <= WIRE_METADATA_MAX);
		CHECK(hs.yourip_len == 0 || hs.yourip_len == 4 || hs.yourip_len == 16);
		CHECK(wire_ext_hs_encode(&b, &hs) == 0);
		CHECK(b.len > WIRE_EXT_HDR_LEN);
		CHECK(wire_ext_hs_parse(&hs2, b.data + WIRE_EXT_HDR_LEN, b.data + b.len) == 0);
		/* "v" may hold a NUL that ends the copy early; compare the rest. */
		CHECK(hs.ut_metadata == hs2.ut_metadata && hs.ut_pex == hs2.ut_pex);
		CHECK(hs.metadata_size == hs2.metadata_size && hs.port == hs2.port);
		CHECK(hs.reqq == hs2.reqq && hs.yourip_len == hs2.yourip_len);
		buf_reset(&b);
	}
	if (wire_metadata_parse(&md, p, end) == 0) {
		if (md.type == WIRE_MD_DATA) {
			CHECK(md.data >= p && md.data + md.len == end);
			CHECK(md.len >= 1 && md.len <= WIRE_METADATA_PIECE);
		}
		CHECK(wire_metadata_encode(&b, 1, &md) == 0);
		CHECK(wire_metadata_parse(&md2, b.data + WIRE_EXT_HDR_LEN, b.data + b.len) == 0);
		CHECK(md2.type == md.type && md2.piece == md.piece && md2.len == md.len);
		buf_reset(&b);
	}
	if (wire_pex_parse(&pex, p, end) == 0) {
		CHECK(pex.n_added <= WIRE_PEX_MAX && pex.n_dropped <= WIRE_PEX_MAX);
		CHECK(wire_pex_encode(&b, 1, &pex) == 0);
		CHECK(wire_pex_parse(&pex2, b.data + WIRE_EXT_HDR_LEN, b.data + b.len) == 0);
		CHECK(pex2.n_added == pex.n_added && pex2.n_dropped == pex.n_dropped);
	}
	buf_destroy(&b);
}

/* Input: byte 0 = flags (bit 0: expect a handshake; bits 1-7: chunk size,
 * 0 = all at once), bytes 1-4 = piece count (big-endian, 0 = unknown), then
 * the byte stream as a peer would send it. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 5)
		return 0;
	bool hs = data[0] & 1;
	size_t chunk = data[0] >> 1;
	uint32_t pieces = (uint32_t)data[1] << 24 | (uint32_t)data[2] << 16 | (uint32_t)data[3] << 8 | data[4];
	data += 5;
	size -= 5;
	if (chunk == 0)
		chunk = size ? size : 1;

	struct wire_decoder d;
	wire_decoder_init(&d, hs);
	wire_decoder_set_num_pieces(&d, pieces);
	int err = 0;
	for (size_t off = 0; off < size && !err; off += chunk) {
		const uint8_t *p = data + off, *end = data + (size - off < chunk ? size : off + chunk);
		for (;;) {
			struct wire_msg m;
			int rc = wire_decode(&d, &p, end, &m);
			CHECK(p >= data + off && p <= end);
			if (rc < 0) {
				err = rc;
				break;
			}
			if (rc == 0) {
				CHECK(p == end);
				break;
			}
			switch (m.type) {
			case WIRE_BITFIELD:
				CHECK(m.u.bitfield.len >= 1 && m.u.bitfield.len <= WIRE_MAX_BITFIELD);
				CHECK(!pieces || m.u.bitfield.len == (pieces + 7u) / 8u);
				touch(m.u.bitfield.bits, m.u.bitfield.len);
				break;
			case WIRE_PIECE:
				CHECK(m.u.piece.len >= 1 && m.u.piece.len <= WIRE_BLOCK_MAX);
				CHECK(!pieces || m.u.piece.index < pieces);
				touch(m.u.piece.data, m.u.piece.len);
				break;
			case WIRE_REQUEST:
			case WIRE_CANCEL:
				CHECK(m.u.block.length >= 1 && m.u.block.length <= WIRE_BLOCK_MAX);
				break;
			case WIRE_HAVE:
				CHECK(!pieces || m.u.have < pieces);
				break;
			case WIRE_HASHES:
				CHECK(m.u.hashes.count >= m.u.hashes.req.length);
				CHECK(m.u.hashes.count <= WIRE_MAX_HASHES);
				touch(m.u.hashes.hashes, m.u.hashes.count * 32);
				break;
			case WIRE_EXTENDED:
				CHECK(m.u.ext.len < WIRE_MAX_EXTENDED);
				touch(m.u.ext.payload, m.u.ext.len);
				fuzz_ext(m.u.ext.payload, m.u.ext.len);
				break;
			default:
				break;
			}
		}
	}
	if (err) {
		/* Sticky: the decoder never resumes after an error. */
		const uint8_t *p = data;
		struct wire_msg m;
		CHECK(wire_decode(&d, &p, data + size, &m) == err);
	}
	wire_decoder_destroy(&d);
	return 0;
}
