/* fuzz_fetch.c: fuzz harness for the fetch state machines hostile peers drive
 * (transfer/mdfetch.h, transfer/layerfetch.h).  Each input is a script of
 * operations from a handful of peers; after every step the invariants must
 * hold, and nothing may be accepted that was not asked of its sender. */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "transfer/layerfetch.h"
#include "transfer/mdfetch.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t zeros[WIRE_METADATA_PIECE > 512 * 32 ? WIRE_METADATA_PIECE : 512 * 32];

static void run_mdfetch(const uint8_t *p, const uint8_t *end)
{
	struct mdfetch *mf = NULL;
	if (mdfetch_new(&mf) != 0)
		return;
	static const uint32_t sizes[4] = { 100, 3 * WIRE_METADATA_PIECE + 7, WIRE_METADATA_PIECE,
					   WIRE_METADATA_MAX };
	uint32_t announced[8] = { 0 };
	while (end - p >= 3) {
		uint8_t op = p[0] % 7, peer = p[1] % 8, arg = p[2];
		p += 3;
		uint32_t pieces[MDFETCH_MAX_PIECES], blame[MDFETCH_MAX_PIECES];
		size_t len = 0;
		switch (op) {
		case 0:
			if (!announced[peer] && mdfetch_announce(mf, sizes[arg % 4]) == 0)
				announced[peer] = sizes[arg % 4];
			break;
		case 1:
			if (announced[peer])
				(void)mdfetch_peer_gone(mf, peer, announced[peer]);
			announced[peer] = 0;
			break;
		case 2:
			(void)mdfetch_pick(mf, peer, announced[peer], pieces, arg);
			break;
		case 3:
			(void)mdfetch_reject(mf, peer, arg);
			break;
		case 4: {
			uint32_t total = sizes[(arg >> 6) % 4], piece = arg & 0x3f;
			uint32_t start = piece * WIRE_METADATA_PIECE;
			size_t n = start < total ? (total - start < WIRE_METADATA_PIECE ? total - start
										: WIRE_METADATA_PIECE)
						 : 1;
			int rc = mdfetch_data(mf, peer, piece, total, zeros, n);
			if (rc >= 0 && total != mdfetch_size(mf))
				abort(); /* accepted a size not being fetched */
			break;
		}
		case 5:
			if (mdfetch_buffer(mf, &len) && len != mdfetch_size(mf))
				abort();
			(void)mdfetch_failed(mf, blame, arg % 4);
			break;
		default:
			(void)mdfetch_round(mf);
			break;
		}
		if (mdfetch_check_invariants(mf, NULL) != 0)
			abort();
	}
	mdfetch_free(mf);
}

static void run_layerfetch(const uint8_t *p, const uint8_t *end)
{
	const uint32_t counts[4] = { 1, 600, 3, 1100 };
	struct layerfetch *lf = NULL;
	if (layerfetch_new(counts, 4, 512, &lf) != 0)
		return;
	while (end - p >= 4) {
		uint8_t op = p[0] % 5, peer = p[1] % 4, file = p[2] % 5, arg = p[3];
		p += 4;
		struct layerfetch_req req[8];
		size_t len = 0;
		uint32_t sender = 0;
		switch (op) {
		case 0:
			(void)layerfetch_ask(lf, peer, req, arg % 9);
			break;
		case 1: {
			uint32_t index = (uint32_t)(arg % 4) * 512, length = arg & 0x80 ? 512 : 4;
			int rc = layerfetch_on_hashes(lf, peer, file, index, length, zeros, 512);
			if (rc >= 0 && layerfetch_chunk(lf, file) != length)
				abort();
			break;
		}
		case 2:
			(void)layerfetch_reject(lf, peer, file, (uint32_t)(arg % 4) * 512);
			break;
		case 3:
			layerfetch_peer_gone(lf, peer);
			break;
		default:
			if (layerfetch_layer(lf, file, &len)) {
				if (len != (size_t)counts[file] * 32)
					abort();
				if (arg & 1)
					(void)layerfetch_done(lf, file);
				else if (layerfetch_failed(lf, file, &sender) != 0 || sender >= 4)
					abort();
			}
			break;
		}
	}
	layerfetch_free(lf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	if (data[0] & 1)
		run_layerfetch(data + 1, data + size);
	else
		run_mdfetch(data + 1, data + size);
	return 0;
}
