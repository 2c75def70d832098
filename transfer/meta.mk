# transfer/meta.mk: BEP 52 merkle trees, metainfo (.torrent / info dict), magnet links.
transfer_libtransfer_a_SOURCES += \
	transfer/merkle.c transfer/merkle.h

check_PROGRAMS += tests/unit/test_merkle
TESTS += tests/unit/test_merkle
tests_unit_test_merkle_SOURCES = tests/unit/test_merkle.c
tests_unit_test_merkle_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_merkle_LDADD = $(TRANSFER_LIBS) $(UNIT_LIBS)

transfer_libtransfer_a_SOURCES += \
	transfer/metainfo.c transfer/metainfo.h

check_PROGRAMS += tests/unit/test_metainfo
TESTS += tests/unit/test_metainfo
tests_unit_test_metainfo_SOURCES = tests/unit/test_metainfo.c
tests_unit_test_metainfo_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_metainfo_LDADD = $(TRANSFER_LIBS) $(UNIT_LIBS)

transfer_libtransfer_a_SOURCES += \
	transfer/magnet.c transfer/magnet.h

check_PROGRAMS += tests/unit/test_magnet
TESTS += tests/unit/test_magnet
tests_unit_test_magnet_SOURCES = tests/unit/test_magnet.c
tests_unit_test_magnet_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_magnet_LDADD = $(TRANSFER_LIBS) $(UNIT_LIBS)

# Fuzz harnesses replayed over their stored corpus (tests/fuzz/replay.c).
check_PROGRAMS += tests/fuzz/replay_metainfo tests/fuzz/replay_magnet
TESTS += tests/fuzz/replay_metainfo tests/fuzz/replay_magnet
tests_fuzz_replay_metainfo_SOURCES = tests/fuzz/replay.c tests/fuzz/fuzz_metainfo.c
tests_fuzz_replay_metainfo_CPPFLAGS = $(AM_CPPFLAGS) -DFUZZ_SURFACE=\"metainfo\"
tests_fuzz_replay_metainfo_LDADD = $(TRANSFER_LIBS)
tests_fuzz_replay_magnet_SOURCES = tests/fuzz/replay.c tests/fuzz/fuzz_magnet.c
tests_fuzz_replay_magnet_CPPFLAGS = $(AM_CPPFLAGS) -DFUZZ_SURFACE=\"magnet\"
tests_fuzz_replay_magnet_LDADD = $(TRANSFER_LIBS)

# Interop with libtorrent: our builder and parser against the reference.
check_PROGRAMS += tests/interop/mktorrent
tests_interop_mktorrent_SOURCES = tests/interop/mktorrent.c
tests_interop_mktorrent_LDADD = $(TRANSFER_LIBS)
TESTS += tests/interop/test_metainfo_lt.py
