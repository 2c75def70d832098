# transfer/picker.mk: bitfield, piece picker, choker and on-disk storage.
transfer_libtransfer_a_SOURCES += \
	transfer/bitfield.c transfer/bitfield.h \
	transfer/picker.c transfer/picker.h \
	transfer/choker.c transfer/choker.h \
	transfer/ratesplit.c transfer/ratesplit.h \
	transfer/storage.c transfer/storage.h

check_PROGRAMS += tests/unit/test_bitfield tests/unit/test_picker tests/unit/test_choker \
	tests/unit/test_ratesplit tests/unit/test_storage
TESTS += tests/unit/test_bitfield tests/unit/test_picker tests/unit/test_choker \
	tests/unit/test_ratesplit tests/unit/test_storage
tests_unit_test_bitfield_SOURCES = tests/unit/test_bitfield.c
tests_unit_test_bitfield_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_bitfield_LDADD = $(TRANSFER_LIBS) $(UNIT_LIBS)
tests_unit_test_picker_SOURCES = tests/unit/test_picker.c
tests_unit_test_picker_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_picker_LDADD = $(TRANSFER_LIBS) $(UNIT_LIBS)
tests_unit_test_choker_SOURCES = tests/unit/test_choker.c
tests_unit_test_choker_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_choker_LDADD = $(TRANSFER_LIBS) $(UNIT_LIBS)
tests_unit_test_ratesplit_SOURCES = tests/unit/test_ratesplit.c
tests_unit_test_ratesplit_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_ratesplit_LDADD = $(TRANSFER_LIBS) $(UNIT_LIBS)
tests_unit_test_storage_SOURCES = tests/unit/test_storage.c
tests_unit_test_storage_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_storage_LDADD = $(TRANSFER_LIBS) $(UNIT_LIBS)

# Fuzz harness of the picker (blame, block states), replayed over its corpus.
check_PROGRAMS += tests/fuzz/replay_picker
TESTS += tests/fuzz/replay_picker
tests_fuzz_replay_picker_SOURCES = tests/fuzz/replay.c tests/fuzz/fuzz_picker.c
tests_fuzz_replay_picker_CPPFLAGS = $(AM_CPPFLAGS) -DFUZZ_SURFACE=\"picker\"
tests_fuzz_replay_picker_LDADD = $(TRANSFER_LIBS)
