/* wire.h: BitTorrent peer wire codec (BEP 3, 10, 9, 11, 52) with no I/O and no policy. */
#ifndef SHOAL_TRANSFER_WIRE_H
#define SHOAL_TRANSFER_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

/* ---- Handshake (BEP 3 "handshake", BEP 10, BEP 52) ---------------------- */

/* \x13 "BitTorrent protocol" | reserved[8] | info-hash[20] | peer id[20]. */
#define WIRE_HANDSHAKE_LEN 68
#define WIRE_PSTR "BitTorrent protocol"
#define WIRE_PSTR_LEN 19
#define WIRE_HASH_LEN 20
#define WIRE_PEER_ID_LEN 20

/* Reserved-bit flags, as bits of one value for convenience. */
#define WIRE_RSV_EXTENDED 0x1u /* BEP 10: reserved[5] & 0x10 */
#define WIRE_RSV_V2 0x2u       /* BEP 52: reserved[7] & 0x10 */
#define WIRE_RSV_DHT 0x4u      /* BEP 5:  reserved[7] & 0x01 */

struct wire_handshake {
	uint8_t reserved[8];
	uint8_t info_hash[WIRE_HASH_LEN]; /* v2: SHA-256 info-hash truncated to 20 bytes */
	uint8_t peer_id[WIRE_PEER_ID_LEN];
};

/* Write the 68-byte handshake into `out`.  `flags` is a set of WIRE_RSV_*;
 * every other reserved bit is zero. */
void wire_handshake_encode(uint8_t out[WIRE_HANDSHAKE_LEN], const uint8_t info_hash[WIRE_HASH_LEN],
			   const uint8_t peer_id[WIRE_PEER_ID_LEN], unsigned flags);

/* Parse a complete 68-byte handshake from [p, end) (extra bytes are ignored).
 * Returns 0; -EAGAIN if fewer than 68 bytes are present but those agree with
 * the protocol string so far; -EPROTO if the bytes are not a BitTorrent
 * handshake. */
int wire_handshake_parse(struct wire_handshake *hs_out, const uint8_t *p, const uint8_t *end)
	__attribute__((warn_unused_result));

/* The WIRE_RSV_* flags set in a parsed handshake. */
unsigned wire_handshake_flags(const struct wire_handshake *hs);

/* ---- Messages (BEP 3 "peer messages", BEP 5, BEP 10, BEP 52) ------------- */

enum wire_msg_id {
	WIRE_CHOKE = 0,
	WIRE_UNCHOKE = 1,
	WIRE_INTERESTED = 2,
	WIRE_NOT_INTERESTED = 3,
	WIRE_HAVE = 4,
	WIRE_BITFIELD = 5,
	WIRE_REQUEST = 6,
	WIRE_PIECE = 7,
	WIRE_CANCEL = 8,
	WIRE_PORT = 9,          /* BEP 5: DHT port */
	WIRE_EXTENDED = 20,     /* BEP 10 */
	WIRE_HASH_REQUEST = 21, /* BEP 52 */
	WIRE_HASHES = 22,       /* BEP 52 */
	WIRE_HASH_REJECT = 23,  /* BEP 52 */
	/* Pseudo ids for events that are not id-carrying messages. */
	WIRE_KEEPALIVE = 256,
	WIRE_HANDSHAKE = 257,
};

/* Ceilings.  Anything larger is a protocol violation, rejected as soon as the
 * length prefix and id have arrived, before any body byte is buffered. */
#define WIRE_BLOCK_MAX 16384u                   /* request/piece block (BEP 52: 16 KiB) */
#define WIRE_MAX_PIECES (1u << 22)              /* bitfield cap when count unknown */
#define WIRE_MAX_BITFIELD (WIRE_MAX_PIECES / 8) /* bytes */
#define WIRE_MAX_EXTENDED (1u << 20)            /* extended payload incl. ext id */
#define WIRE_MAX_HASHES 8192u                   /* hashes in one HASHES message */
#define WIRE_MAX_UNKNOWN 65536u                 /* unknown ids are skipped up to this */
#define WIRE_MAX_MSG (1u + WIRE_MAX_EXTENDED)   /* largest accepted length prefix */

/* BEP 52 hash request / hash reject body, and the head of a hashes message. */
#define WIRE_HASH_REQ_LEN 48 /* pieces root 32 + four u32 */
struct wire_hash_req {
	uint8_t pieces_root[32];
	uint32_t base_layer;
	uint32_t index;
	uint32_t length;
	uint32_t proof_layers;
};

/* A request or cancel (BEP 3). */
struct wire_block {
	uint32_t index;
	uint32_t begin;
	uint32_t length;
};

/* One decoded message.  Pointers refer either into the caller's input or into
 * the decoder's own buffer and stay valid until the next wire_decode() call
 * on the same decoder, and only while the input passed to that call is alive. */
struct wire_msg {
	enum wire_msg_id type;
	union {
		struct wire_handshake handshake; /* WIRE_HANDSHAKE */
		uint32_t have;                   /* WIRE_HAVE: piece index */
		struct {
			const uint8_t *bits;
			size_t len;
		} bitfield;               /* WIRE_BITFIELD */
		struct wire_block block;  /* WIRE_REQUEST, WIRE_CANCEL */
		struct {
			uint32_t index;
			uint32_t begin;
			const uint8_t *data;
			size_t len;
		} piece;                  /* WIRE_PIECE */
		uint16_t port;            /* WIRE_PORT */
		struct {
			uint8_t id;       /* 0 = extended handshake */
			const uint8_t *payload;
			size_t len;
		} ext;                    /* WIRE_EXTENDED */
		struct wire_hash_req hash_req; /* WIRE_HASH_REQUEST, WIRE_HASH_REJECT */
		struct {
			struct wire_hash_req req;
			const uint8_t *hashes; /* count * 32 bytes */
			size_t count;
		} hashes;                 /* WIRE_HASHES */
	} u;
};

/* The streaming decoder: awaiting handshake -> (length -> id -> body)*.
 * Embedded in the peer connection; one per direction of one connection. */
struct wire_decoder {
	int state;
	int err;            /* sticky error, 0 while healthy */
	uint32_t num_pieces; /* 0 = unknown */
	uint32_t msg_len;   /* length prefix of the message being read */
	uint8_t id;         /* its id */
	uint8_t hdr[WIRE_HANDSHAKE_LEN];
	size_t hdr_have;
	uint32_t remaining; /* body bytes still to buffer or skip */
	struct buf body;    /* partial bodies only; grows to the largest seen */
	bool shrink;        /* release `body` storage at the next call */
	uint64_t skipped;   /* messages with unknown ids skipped so far */
};

/* Start a decoder.  With `expect_handshake`, the stream must begin with the
 * 68-byte handshake, reported as a WIRE_HANDSHAKE message. */
void wire_decoder_init(struct wire_decoder *d, bool expect_handshake);
/* Release the decoder's buffer. */
void wire_decoder_destroy(struct wire_decoder *d);

/* Declare the torrent's piece count once known (0 = unknown).  From then on
 * a bitfield must be exactly ceil(n/8) bytes with zero spare bits, and piece
 * indices in have/request/cancel/piece must be below n. */
void wire_decoder_set_num_pieces(struct wire_decoder *d, uint32_t num_pieces);

/* Decode from *pp up to `end`, advancing *pp over consumed bytes.
 * Returns 1 with *msg_out filled (call again for more); 0 when every input
 * byte was consumed without completing a message (*pp == end); or a negative
 * error, after which the caller must disconnect (the error is sticky):
 *   -EPROTO      the handshake is not "\x13BitTorrent protocol"
 *   -EMSGSIZE    a length prefix is wrong for its id or over its ceiling
 *   -EBADMSG     a well-sized body with invalid content (bitfield spare bits,
 *                index >= piece count, zero or oversize request length)
 *   -ENOMEM      out of memory buffering a split body
 * A body that arrives whole in one input chunk is returned in place; a split
 * one is copied exactly once into the decoder's buffer. */
int wire_decode(struct wire_decoder *d, const uint8_t **pp, const uint8_t *end,
		struct wire_msg *msg_out) __attribute__((warn_unused_result));

/* ---- Encoders.  Each writes a complete message (or, for messages with a
 * caller-supplied body, its header) into `out` and returns its length. ---- */

#define WIRE_KEEPALIVE_LEN 4
#define WIRE_SIMPLE_LEN 5   /* choke .. not interested */
#define WIRE_HAVE_LEN 9
#define WIRE_BLOCK_MSG_LEN 17 /* request, cancel */
#define WIRE_PIECE_HDR_LEN 13 /* followed by the block data */
#define WIRE_PORT_LEN 7
#define WIRE_BITFIELD_HDR_LEN 5 /* followed by the bits */
#define WIRE_EXT_HDR_LEN 6     /* followed by the extended payload */
#define WIRE_HASH_MSG_LEN (5 + WIRE_HASH_REQ_LEN) /* request, reject, hashes head */

size_t wire_put_keepalive(uint8_t out[WIRE_KEEPALIVE_LEN]);
/* id is one of WIRE_CHOKE, WIRE_UNCHOKE, WIRE_INTERESTED, WIRE_NOT_INTERESTED. */
size_t wire_put_simple(uint8_t out[WIRE_SIMPLE_LEN], enum wire_msg_id id);
size_t wire_put_have(uint8_t out[WIRE_HAVE_LEN], uint32_t index);
/* id is WIRE_REQUEST or WIRE_CANCEL. */
size_t wire_put_block(uint8_t out[WIRE_BLOCK_MSG_LEN], enum wire_msg_id id,
		      const struct wire_block *b);
/* Header of a piece message carrying `len` data bytes that the caller sends next. */
size_t wire_put_piece_hdr(uint8_t out[WIRE_PIECE_HDR_LEN], uint32_t index, uint32_t begin,
			  uint32_t len);
size_t wire_put_port(uint8_t out[WIRE_PORT_LEN], uint16_t port);
/* Header of a bitfield of `nbytes` bytes that the caller sends next. */
size_t wire_put_bitfield_hdr(uint8_t out[WIRE_BITFIELD_HDR_LEN], uint32_t nbytes);
/* Header of an extended message (BEP 10) with extended id `ext_id` and a
 * payload of `len` bytes that the caller sends next. */
size_t wire_put_ext_hdr(uint8_t out[WIRE_EXT_HDR_LEN], uint8_t ext_id, uint32_t len);
/* id is WIRE_HASH_REQUEST or WIRE_HASH_REJECT: the whole message.  For
 * WIRE_HASHES: the head, followed by `nhashes` * 32 bytes from the caller. */
size_t wire_put_hash_msg(uint8_t out[WIRE_HASH_MSG_LEN], enum wire_msg_id id,
			 const struct wire_hash_req *r, uint32_t nhashes);

/* ---- BEP 10 extended handshake ------------------------------------------ */

#define WIRE_EXT_HANDSHAKE_ID 0
#define WIRE_EXT_CLIENT_MAX 64 /* bytes of "v" kept */
#define WIRE_METADATA_MAX (4u << 20) /* BEP 9: metadata_size ceiling (4 MiB) */

/* The fields shoal uses.  Ids are the sender's ids for its messages; 0 means
 * "not supported".  Absent scalars are 0 / empty. */
struct wire_ext_hs {
	uint8_t ut_metadata;  /* m.ut_metadata */
	uint8_t ut_pex;       /* m.ut_pex */
	uint32_t metadata_size; /* BEP 9, 0 = unknown; never above WIRE_METADATA_MAX */
	uint16_t port;        /* p: listen port, 0 = absent */
	uint32_t reqq;        /* outstanding requests the sender allows, 0 = absent */
	char client[WIRE_EXT_CLIENT_MAX + 1]; /* v, NUL-terminated, truncated */
	uint8_t yourip[16];   /* how the sender sees us */
	uint8_t yourip_len;   /* 0, 4 or 16 */
};

/* Parse an extended handshake payload (the bencoded dict after ext id 0).
 * Unknown keys are ignored; ids outside 0..255 and ports outside 1..65535
 * are treated as absent.  Returns 0; -EILSEQ if not a bencoded dict; -E2BIG
 * if it needs too many nodes; -EMSGSIZE if metadata_size exceeds
 * WIRE_METADATA_MAX or is negative. */
int wire_ext_hs_parse(struct wire_ext_hs *hs_out, const uint8_t *p, const uint8_t *end)
	__attribute__((warn_unused_result));

/* Append a complete extended handshake message (length prefix, id 20, ext
 * id 0, dict) to `b`, writing only the non-zero fields.  Returns 0 or the
 * error of buf_append (-EMSGSIZE, -ENOMEM). */
int wire_ext_hs_encode(struct buf *b, const struct wire_ext_hs *hs)
	__attribute__((warn_unused_result));

/* ---- BEP 9 ut_metadata -------------------------------------------------- */

#define WIRE_METADATA_PIECE 16384u

enum wire_metadata_type { WIRE_MD_REQUEST = 0, WIRE_MD_DATA = 1, WIRE_MD_REJECT = 2 };

struct wire_metadata_msg {
	enum wire_metadata_type type;
	uint32_t piece;
	uint32_t total_size;  /* WIRE_MD_DATA only */
	const uint8_t *data;  /* WIRE_MD_DATA only: points into the input */
	size_t len;
};

/* Parse a ut_metadata payload (after the ext id byte).  For data messages it
 * checks 0 < total_size <= WIRE_METADATA_MAX, piece within total_size and
 * data length exactly 16 KiB, or the remainder for the last piece.
 * Returns 0; -ENOTSUP for an unknown msg_type (BEP 9: ignore the message);
 * -EILSEQ/-E2BIG for bad bencode; -EBADMSG for missing or inconsistent
 * fields; -EMSGSIZE for total_size over the ceiling. */
int wire_metadata_parse(struct wire_metadata_msg *m_out, const uint8_t *p, const uint8_t *end)
	__attribute__((warn_unused_result));

/* Append a complete ut_metadata message for the peer's extended id `ext_id`.
 * For WIRE_MD_DATA, m->total_size and m->data/len are sent, else ignored.
 * Returns 0, -EINVAL for an inconsistent data message, or buf_append's error. */
int wire_metadata_encode(struct buf *b, uint8_t ext_id, const struct wire_metadata_msg *m)
	__attribute__((warn_unused_result));

/* ---- BEP 11 ut_pex ------------------------------------------------------ */

#define WIRE_PEX_MAX 200 /* peers per list (added / dropped, v4 and v6 together) */

/* BEP 11 added.f flags */
#define WIRE_PEX_F_ENCRYPTION 0x01
#define WIRE_PEX_F_SEED 0x02
#define WIRE_PEX_F_UTP 0x04
#define WIRE_PEX_F_HOLEPUNCH 0x08
#define WIRE_PEX_F_REACHABLE 0x10

struct wire_peer {
	uint8_t addr[16];   /* network order; first 4 bytes for IPv4 */
	uint8_t family;     /* 4 or 6 */
	uint8_t flags;      /* WIRE_PEX_F_*, added peers only */
	uint16_t port;      /* host order */
};

struct wire_pex {
	size_t n_added;
	size_t n_dropped;
	struct wire_peer added[WIRE_PEX_MAX];
	struct wire_peer dropped[WIRE_PEX_MAX];
};

/* Parse a ut_pex payload (after the ext id byte).  Compact lists must be a
 * whole number of entries (6 bytes IPv4, 18 bytes IPv6) and flag strings
 * must have one byte per added peer when present; entries with port 0 are
 * left out.
 * Returns 0; -EILSEQ/-E2BIG for bad bencode; -EBADMSG for malformed lists;
 * -EMSGSIZE if a list exceeds WIRE_PEX_MAX. */
int wire_pex_parse(struct wire_pex *pex_out, const uint8_t *p, const uint8_t *end)
	__attribute__((warn_unused_result));

/* Append a complete ut_pex message for the peer's extended id `ext_id`.
 * Returns 0, -EINVAL for a bad family or count, or buf_append's error. */
int wire_pex_encode(struct buf *b, uint8_t ext_id, const struct wire_pex *pex)
	__attribute__((warn_unused_result));

#endif
