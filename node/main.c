/* main.c: entry point of `shoal-daemon`, the node itself.  `shoal daemon`
 * execs this program, so the `shoal` CLI links none of the daemon. */
#include "config.h"

#include "node/node.h"

int main(int argc, char **argv)
{
	return node_daemon_main(argc, argv);
}
