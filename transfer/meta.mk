# transfer/meta.mk
