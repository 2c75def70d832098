# cli/: the `shoal` command.  `shoal daemon` enters node/; every other
# subcommand is a plain HTTP client of a running daemon.
bin_PROGRAMS += shoal
shoal_SOURCES = cli/main.c
shoal_CPPFLAGS = $(AM_CPPFLAGS)
shoal_LDADD = $(COMMON_LIBS)
