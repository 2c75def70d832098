# common/: helpers every library may use; depends on nothing of ours.
noinst_LIBRARIES += common/libcommon.a
common_libcommon_a_CPPFLAGS = $(AM_CPPFLAGS) $(SODIUM_CFLAGS) $(CRYPTO_CFLAGS)
common_libcommon_a_SOURCES = \
	common/buf.c common/buf.h \
	common/log.c common/log.h \
	common/sha256.c common/sha256.h common/sha1.c common/sha1.h \
	common/util.c common/util.h common/bytes.h common/addr.c common/addr.h \
	common/bencode.c common/bencode.h \
	common/hmap.c common/hmap.h
COMMON_LIBS = common/libcommon.a $(SODIUM_LIBS) $(CRYPTO_LIBS)

check_PROGRAMS += tests/unit/test_util
TESTS += tests/unit/test_util
tests_unit_test_util_SOURCES = tests/unit/test_util.c
tests_unit_test_util_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_util_LDADD = $(COMMON_LIBS) $(UNIT_LIBS)

check_PROGRAMS += tests/unit/test_hmap
TESTS += tests/unit/test_hmap
tests_unit_test_hmap_SOURCES = tests/unit/test_hmap.c
tests_unit_test_hmap_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_hmap_LDADD = $(COMMON_LIBS) $(UNIT_LIBS)

check_PROGRAMS += tests/unit/test_bencode
TESTS += tests/unit/test_bencode
tests_unit_test_bencode_SOURCES = tests/unit/test_bencode.c
tests_unit_test_bencode_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_bencode_LDADD = $(COMMON_LIBS) $(UNIT_LIBS)

# Fuzz harnesses replayed over their stored corpus (tests/fuzz/replay.c).
check_PROGRAMS += tests/fuzz/replay_bencode
TESTS += tests/fuzz/replay_bencode
tests_fuzz_replay_bencode_SOURCES = tests/fuzz/replay.c tests/fuzz/fuzz_bencode.c
tests_fuzz_replay_bencode_CPPFLAGS = $(AM_CPPFLAGS) -DFUZZ_SURFACE=\"bencode\"
tests_fuzz_replay_bencode_LDADD = $(COMMON_LIBS)

check_PROGRAMS += tests/unit/test_sha1
TESTS += tests/unit/test_sha1
tests_unit_test_sha1_SOURCES = tests/unit/test_sha1.c
tests_unit_test_sha1_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_sha1_LDADD = $(COMMON_LIBS) $(UNIT_LIBS)
