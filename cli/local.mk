# cli/: the `shoal` command, a plain HTTP client of a running daemon: it
# never opens the database and links none of node/, dht/ or transfer/.
# `shoal daemon` execs shoal-daemon (node/local.mk).
bin_PROGRAMS += shoal
shoal_SOURCES = cli/main.c cli/cli.h cli/client.c cli/client.h cli/table.c cli/table.h \
	cli/cmd_status.c cli/cmd_swarm.c cli/cmd_join.c cli/join.c cli/join.h cli/join_many.c cli/cmd_trackers.c cli/args.c cli/progress.c cli/progress.h \
	cli/cmd_web.c cli/cmd_stream.c cli/browser.c cli/browser.h
shoal_SOURCES += cli/cmd_files.c cli/cmd_complete.c
shoal_CPPFLAGS = $(AM_CPPFLAGS) $(JANSSON_CFLAGS) -DSHOAL_BINDIR='"$(bindir)"'
shoal_LDADD = $(COMMON_LIBS) $(JANSSON_LIBS)
