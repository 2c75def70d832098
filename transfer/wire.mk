# transfer/wire.mk: BitTorrent peer wire codec and the encrypted shoal transport.
transfer_libtransfer_a_SOURCES += \
	transfer/wire.c transfer/wire.h \
	transfer/crypt.c transfer/crypt.h
