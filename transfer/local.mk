# transfer/: metainfo + merkle, wire codec, crypto transport, picker, swarm,
# and the fetch state machines hostile peers drive (fetch.mk).
# Depends on common/ only.  Components append their sources in their own
# fragments (meta.mk, wire.mk, picker.mk, fetch.mk, addrbook.mk, tracker.mk, lsd.mk) so they can grow independently.
noinst_LIBRARIES += transfer/libtransfer.a
transfer_libtransfer_a_CPPFLAGS = $(AM_CPPFLAGS) $(SODIUM_CFLAGS) $(CRYPTO_CFLAGS)
transfer_libtransfer_a_SOURCES = transfer/transfer.h
TRANSFER_LIBS = transfer/libtransfer.a $(COMMON_LIBS)
include transfer/meta.mk
include transfer/wire.mk
include transfer/picker.mk
include transfer/fetch.mk
include transfer/addrbook.mk
include transfer/tracker.mk
include transfer/lsd.mk
