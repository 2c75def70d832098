# dht/: Mainline DHT (BEP 5), no I/O of its own; depends on common/ only.
noinst_LIBRARIES += dht/libdht.a
dht_libdht_a_CPPFLAGS = $(AM_CPPFLAGS) $(SODIUM_CFLAGS)
dht_libdht_a_SOURCES = \
	dht/dht.h dht/dht-internal.h \
	dht/dht.c \
	dht/id.c \
	dht/krpc.c \
	dht/ratelimit.c \
	dht/store.c \
	dht/table.c \
	dht/token.c
DHT_LIBS = dht/libdht.a $(COMMON_LIBS)

check_PROGRAMS += tests/unit/test_dht_table
TESTS += tests/unit/test_dht_table
tests_unit_test_dht_table_SOURCES = tests/unit/test_dht_table.c
tests_unit_test_dht_table_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_dht_table_LDADD = $(DHT_LIBS) $(UNIT_LIBS)

check_PROGRAMS += tests/unit/test_dht_krpc
TESTS += tests/unit/test_dht_krpc
tests_unit_test_dht_krpc_SOURCES = tests/unit/test_dht_krpc.c
tests_unit_test_dht_krpc_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_dht_krpc_LDADD = $(DHT_LIBS) $(UNIT_LIBS)

check_PROGRAMS += tests/unit/test_dht_token
TESTS += tests/unit/test_dht_token
tests_unit_test_dht_token_SOURCES = tests/unit/test_dht_token.c
tests_unit_test_dht_token_CFLAGS = $(UNIT_CFLAGS) $(SODIUM_CFLAGS)
tests_unit_test_dht_token_LDADD = $(DHT_LIBS) $(UNIT_LIBS)

check_PROGRAMS += tests/unit/test_dht_store
TESTS += tests/unit/test_dht_store
tests_unit_test_dht_store_SOURCES = tests/unit/test_dht_store.c
tests_unit_test_dht_store_CFLAGS = $(UNIT_CFLAGS) $(SODIUM_CFLAGS)
tests_unit_test_dht_store_LDADD = $(DHT_LIBS) $(UNIT_LIBS)

check_PROGRAMS += tests/unit/test_dht_ratelimit
TESTS += tests/unit/test_dht_ratelimit
tests_unit_test_dht_ratelimit_SOURCES = tests/unit/test_dht_ratelimit.c
tests_unit_test_dht_ratelimit_CFLAGS = $(UNIT_CFLAGS) $(SODIUM_CFLAGS)
tests_unit_test_dht_ratelimit_LDADD = $(DHT_LIBS) $(UNIT_LIBS)

check_PROGRAMS += tests/unit/test_dht_sim
TESTS += tests/unit/test_dht_sim
tests_unit_test_dht_sim_SOURCES = tests/unit/test_dht_sim.c dht/simnet.c dht/simnet.h
tests_unit_test_dht_sim_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_dht_sim_LDADD = $(DHT_LIBS) $(UNIT_LIBS)

# Fuzz harness replayed over its stored corpus (tests/fuzz/replay.c).
check_PROGRAMS += tests/fuzz/replay_krpc
TESTS += tests/fuzz/replay_krpc
tests_fuzz_replay_krpc_SOURCES = tests/fuzz/replay.c tests/fuzz/fuzz_krpc.c
tests_fuzz_replay_krpc_CPPFLAGS = $(AM_CPPFLAGS) -DFUZZ_SURFACE=\"krpc\"
tests_fuzz_replay_krpc_LDADD = $(DHT_LIBS)

# Simulation benchmark: built on demand (make bench/dht_sim), not in check.
EXTRA_PROGRAMS += bench/dht_sim
bench_dht_sim_SOURCES = bench/dht_sim.c dht/simnet.c dht/simnet.h
bench_dht_sim_LDADD = $(DHT_LIBS)
