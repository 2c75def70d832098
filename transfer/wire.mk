# transfer/wire.mk
