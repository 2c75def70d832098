# cli/: the `shoal` command.  `shoal daemon` enters node/; every other
# subcommand is a plain HTTP client of a running daemon and never opens the
# database.
bin_PROGRAMS += shoal
shoal_SOURCES = cli/main.c cli/cli.h cli/client.c cli/client.h cli/table.c cli/table.h \
	cli/cmd_status.c cli/cmd_swarm.c cli/cmd_join.c cli/args.c cli/progress.c cli/progress.h
shoal_CPPFLAGS = $(AM_CPPFLAGS) $(JANSSON_CFLAGS)
shoal_LDADD = $(NODE_LIBS)
