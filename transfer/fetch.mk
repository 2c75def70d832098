# transfer/fetch.mk: pure state machines for what hostile peers drive
# (BEP 9 metadata with an agreed size, BEP 52 piece layers that accept only
# answers), each with a cmocka suite.
transfer_libtransfer_a_SOURCES += \
	transfer/mdfetch.c transfer/mdfetch.h \
	transfer/layerfetch.c transfer/layerfetch.h

check_PROGRAMS += tests/unit/test_mdfetch tests/unit/test_layerfetch
TESTS += tests/unit/test_mdfetch tests/unit/test_layerfetch
tests_unit_test_mdfetch_SOURCES = tests/unit/test_mdfetch.c
tests_unit_test_mdfetch_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_mdfetch_LDADD = $(TRANSFER_LIBS) $(UNIT_LIBS)
tests_unit_test_layerfetch_SOURCES = tests/unit/test_layerfetch.c
tests_unit_test_layerfetch_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_layerfetch_LDADD = $(TRANSFER_LIBS) $(UNIT_LIBS)

# Fuzz harness replayed over its stored corpus (tests/fuzz/replay.c).
check_PROGRAMS += tests/fuzz/replay_fetch
TESTS += tests/fuzz/replay_fetch
tests_fuzz_replay_fetch_SOURCES = tests/fuzz/replay.c tests/fuzz/fuzz_fetch.c
tests_fuzz_replay_fetch_CPPFLAGS = $(AM_CPPFLAGS) -DFUZZ_SURFACE=\"fetch\"
tests_fuzz_replay_fetch_LDADD = $(TRANSFER_LIBS)
