# transfer/addrbook.mk: the swarm's address book (back-off, bans, caps),
# a pure state machine hostile peers drive, with a cmocka suite and a fuzz
# harness replayed by make check.
transfer_libtransfer_a_SOURCES += transfer/addrbook.c transfer/addrbook.h

check_PROGRAMS += tests/unit/test_addrbook
TESTS += tests/unit/test_addrbook
tests_unit_test_addrbook_SOURCES = tests/unit/test_addrbook.c
tests_unit_test_addrbook_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_addrbook_LDADD = $(TRANSFER_LIBS) $(UNIT_LIBS)

# Fuzz harness replayed over its stored corpus (tests/fuzz/replay.c).
check_PROGRAMS += tests/fuzz/replay_addrbook
TESTS += tests/fuzz/replay_addrbook
tests_fuzz_replay_addrbook_SOURCES = tests/fuzz/replay.c tests/fuzz/fuzz_addrbook.c
tests_fuzz_replay_addrbook_CPPFLAGS = $(AM_CPPFLAGS) -DFUZZ_SURFACE=\"addrbook\"
tests_fuzz_replay_addrbook_LDADD = $(TRANSFER_LIBS)
