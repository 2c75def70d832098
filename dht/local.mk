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
