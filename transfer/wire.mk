# transfer/wire.mk: BitTorrent peer wire codec and the encrypted shoal transport.
transfer_libtransfer_a_SOURCES += \
	transfer/wire.c transfer/wire.h \
	transfer/crypt.c transfer/crypt.h \
	transfer/aesgcm.c transfer/aesgcm.h

check_PROGRAMS += tests/unit/test_crypt
TESTS += tests/unit/test_crypt
tests_unit_test_crypt_SOURCES = tests/unit/test_crypt.c
tests_unit_test_crypt_CPPFLAGS = $(AM_CPPFLAGS) $(SODIUM_CFLAGS)
tests_unit_test_crypt_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_crypt_LDADD = $(TRANSFER_LIBS) $(UNIT_LIBS)

# The AES-256-GCM primitive (OpenSSL's or libsodium's) against libsodium's.
check_PROGRAMS += tests/unit/test_aesgcm
TESTS += tests/unit/test_aesgcm
tests_unit_test_aesgcm_SOURCES = tests/unit/test_aesgcm.c
tests_unit_test_aesgcm_CPPFLAGS = $(AM_CPPFLAGS) $(SODIUM_CFLAGS)
tests_unit_test_aesgcm_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_aesgcm_LDADD = $(TRANSFER_LIBS) $(UNIT_LIBS)

check_PROGRAMS += tests/unit/test_wire
TESTS += tests/unit/test_wire
tests_unit_test_wire_SOURCES = tests/unit/test_wire.c
tests_unit_test_wire_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_wire_LDADD = $(TRANSFER_LIBS) $(UNIT_LIBS)

# Fuzz harnesses replayed over their stored corpus (tests/fuzz/replay.c).
check_PROGRAMS += tests/fuzz/replay_wire
TESTS += tests/fuzz/replay_wire
tests_fuzz_replay_wire_SOURCES = tests/fuzz/replay.c tests/fuzz/fuzz_wire.c
tests_fuzz_replay_wire_CPPFLAGS = $(AM_CPPFLAGS) -DFUZZ_SURFACE=\"wire\"
tests_fuzz_replay_wire_LDADD = $(TRANSFER_LIBS)

check_PROGRAMS += tests/fuzz/replay_crypt
TESTS += tests/fuzz/replay_crypt
tests_fuzz_replay_crypt_SOURCES = tests/fuzz/replay.c tests/fuzz/fuzz_crypt.c
tests_fuzz_replay_crypt_CPPFLAGS = $(AM_CPPFLAGS) -DFUZZ_SURFACE=\"crypt\"
tests_fuzz_replay_crypt_LDADD = $(TRANSFER_LIBS)

# The record ciphers' seal/open speed on one core (bench/README.md): built
# on demand (make bench/aead_speed), not by make or make check.
EXTRA_PROGRAMS += bench/aead_speed
bench_aead_speed_SOURCES = bench/aead_speed.c
bench_aead_speed_LDADD = $(TRANSFER_LIBS)
