# transfer/picker.mk
