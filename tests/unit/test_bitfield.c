/* test_bitfield.c: unit tests for transfer/bitfield (BEP 3 bit order, wire form). */
#include "config.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "transfer/bitfield.h"

static void test_bit_order(void **state)
{
	(void)state;
	struct bitfield bf;
	assert_int_equal(bitfield_init(&bf, 12), 0);
	assert_int_equal(bitfield_wire_len(&bf), 2);
	assert_true(bitfield_set(&bf, 0));
	assert_true(bitfield_set(&bf, 9));
	assert_true(bitfield_set(&bf, 11));
	assert_false(bitfield_set(&bf, 11)); /* already set */
	uint8_t out[2];
	assert_int_equal(bitfield_to_wire(&bf, out, sizeof out), 2);
	/* piece 0 is the high bit of byte 0; 9 and 11 are bits 6 and 4 of byte 1 */
	assert_int_equal(out[0], 0x80);
	assert_int_equal(out[1], 0x50);
	assert_int_equal(bitfield_count(&bf), 3);
	assert_true(bitfield_test(&bf, 9));
	assert_false(bitfield_test(&bf, 10));
	assert_false(bitfield_test(&bf, 12)); /* out of range reads clear */
	assert_false(bitfield_set(&bf, 12));  /* and cannot be set */
	assert_true(bitfield_clear(&bf, 9));
	assert_false(bitfield_clear(&bf, 9));
	assert_int_equal(bitfield_count(&bf), 2);
	assert_int_equal(bitfield_to_wire(&bf, out, 1), -ENOBUFS);
	bitfield_destroy(&bf);
}

static void test_all_and_none(void **state)
{
	(void)state;
	struct bitfield bf;
	assert_int_equal(bitfield_init(&bf, 10), 0);
	assert_true(bitfield_none(&bf));
	assert_false(bitfield_all(&bf));
	bitfield_set_all(&bf);
	assert_true(bitfield_all(&bf));
	assert_int_equal(bitfield_count(&bf), 10);
	uint8_t out[2];
	assert_int_equal(bitfield_to_wire(&bf, out, sizeof out), 2);
	assert_int_equal(out[0], 0xff);
	assert_int_equal(out[1], 0xc0); /* spare bits stay zero */
	bitfield_clear(&bf, 3);
	assert_false(bitfield_all(&bf));
	bitfield_clear_all(&bf);
	assert_true(bitfield_none(&bf));
	bitfield_destroy(&bf);

	struct bitfield empty;
	assert_int_equal(bitfield_init(&empty, 0), 0);
	assert_true(bitfield_all(&empty));
	assert_int_equal(bitfield_wire_len(&empty), 0);
	assert_int_equal(bitfield_from_wire(&empty, NULL, 0), 0);
	bitfield_destroy(&empty);

	assert_int_equal(bitfield_init(&bf, BITFIELD_MAX_BITS + 1), -EINVAL);
	bitfield_destroy(&bf);
}

static void test_from_wire(void **state)
{
	(void)state;
	struct bitfield bf;
	assert_int_equal(bitfield_init(&bf, 10), 0);
	const uint8_t good[] = { 0xa5, 0x40 };
	assert_int_equal(bitfield_from_wire(&bf, good, sizeof good), 0);
	assert_int_equal(bitfield_count(&bf), 5);
	assert_true(bitfield_test(&bf, 0));
	assert_false(bitfield_test(&bf, 1));
	assert_true(bitfield_test(&bf, 7));
	assert_true(bitfield_test(&bf, 9));
	assert_false(bitfield_test(&bf, 8));

	/* a spare bit set: rejected and nothing changes */
	const uint8_t spare[] = { 0x00, 0x60 };
	assert_int_equal(bitfield_from_wire(&bf, spare, sizeof spare), -EILSEQ);
	const uint8_t last_spare[] = { 0x00, 0x01 };
	assert_int_equal(bitfield_from_wire(&bf, last_spare, sizeof last_spare), -EILSEQ);
	assert_int_equal(bitfield_count(&bf), 5);
	assert_true(bitfield_test(&bf, 0));

	/* wrong length either way */
	const uint8_t three[] = { 0, 0, 0 };
	assert_int_equal(bitfield_from_wire(&bf, three, 3), -EMSGSIZE);
	assert_int_equal(bitfield_from_wire(&bf, three, 1), -EMSGSIZE);

	/* multiple of 8: no spare bits to check */
	struct bitfield b16;
	assert_int_equal(bitfield_init(&b16, 16), 0);
	const uint8_t full[] = { 0xff, 0xff };
	assert_int_equal(bitfield_from_wire(&b16, full, 2), 0);
	assert_true(bitfield_all(&b16));

	/* round trip through copy */
	struct bitfield cp;
	assert_int_equal(bitfield_init(&cp, 3), 0);
	assert_int_equal(bitfield_copy(&cp, &bf), 0);
	assert_int_equal(cp.nbits, 10);
	uint8_t out[2];
	assert_int_equal(bitfield_to_wire(&cp, out, sizeof out), 2);
	assert_memory_equal(out, good, 2);
	bitfield_destroy(&cp);
	bitfield_destroy(&b16);
	bitfield_destroy(&bf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bit_order),
		cmocka_unit_test(test_all_and_none),
		cmocka_unit_test(test_from_wire),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
