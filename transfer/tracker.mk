# transfer/tracker.mk: the tracker protocols as a pure codec (HTTP announce
# and scrape answers, BEP 15 UDP packets, announce-list tiers), with a
# cmocka suite and a fuzz harness replayed by make check.
transfer_libtransfer_a_SOURCES += transfer/tracker.c transfer/tracker.h

check_PROGRAMS += tests/unit/test_tracker
TESTS += tests/unit/test_tracker
tests_unit_test_tracker_SOURCES = tests/unit/test_tracker.c
tests_unit_test_tracker_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_tracker_LDADD = $(TRANSFER_LIBS) $(UNIT_LIBS)

# Fuzz harness replayed over its stored corpus (tests/fuzz/replay.c).
check_PROGRAMS += tests/fuzz/replay_tracker
TESTS += tests/fuzz/replay_tracker
tests_fuzz_replay_tracker_SOURCES = tests/fuzz/replay.c tests/fuzz/fuzz_tracker.c
tests_fuzz_replay_tracker_CPPFLAGS = $(AM_CPPFLAGS) -DFUZZ_SURFACE=\"tracker\"
tests_fuzz_replay_tracker_LDADD = $(TRANSFER_LIBS)
