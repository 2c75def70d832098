/* swarms_stream.c: the mediator's part of streaming: the engine calls a
 * reader of a file's content makes (node/swarms.h, "Streaming readers"). */
#include "config.h"

#include "node/engine.h"
#include "node/node.h"
#include "node/swarm.h"
#include "node/swarms.h"

bool swarms_piece_ready(const struct swarm *sw, uint32_t piece)
{
	return engine_piece_ready(sw, piece);
}

bool swarms_block_ready(const struct swarm *sw, uint32_t piece, uint32_t block)
{
	return engine_block_ready(sw, piece, block);
}

int swarms_stream_window(struct node *node, struct swarm *sw, uint64_t owner, size_t file,
			 uint64_t offset)
{
	if (!node->engine)
		return 0;
	return engine_stream_window(node->engine, sw, owner, file, offset);
}

uint64_t swarms_stream_window_span(const struct swarm *sw)
{
	return engine_stream_window_span(sw);
}

void swarms_stream_window_drop(struct node *node, struct swarm *sw, uint64_t owner)
{
	if (node->engine)
		engine_stream_window_drop(node->engine, sw, owner);
}
