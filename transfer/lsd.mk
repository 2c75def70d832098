# transfer/lsd.mk: BEP 14 local service discovery announces as a pure codec
# (node/lsd.c does the multicast), with a cmocka suite and a fuzz harness
# replayed by make check.
transfer_libtransfer_a_SOURCES += transfer/lsd.c transfer/lsd.h

check_PROGRAMS += tests/unit/test_lsd
TESTS += tests/unit/test_lsd
tests_unit_test_lsd_SOURCES = tests/unit/test_lsd.c
tests_unit_test_lsd_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_lsd_LDADD = $(TRANSFER_LIBS) $(UNIT_LIBS)

# Fuzz harness replayed over its stored corpus (tests/fuzz/replay.c).
check_PROGRAMS += tests/fuzz/replay_lsd
TESTS += tests/fuzz/replay_lsd
tests_fuzz_replay_lsd_SOURCES = tests/fuzz/replay.c tests/fuzz/fuzz_lsd.c
tests_fuzz_replay_lsd_CPPFLAGS = $(AM_CPPFLAGS) -DFUZZ_SURFACE=\"lsd\"
tests_fuzz_replay_lsd_LDADD = $(TRANSFER_LIBS)
