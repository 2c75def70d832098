/* bitfield.c: fixed-size bit array in BEP 3 wire order. */
#include "config.h"

#include "common/bytes.h"
#include "transfer/bitfield.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static size_t bytes_for(uint32_t nbits)
{
	return ((size_t)nbits + 7) / 8;
}

/* Mask of the bits of the last byte that belong to pieces (BEP 3 fills a
 * byte from its high bit down). */
static uint8_t last_byte_mask(uint32_t nbits)
{
	unsigned used = nbits % 8;
	return used == 0 ? 0xff : (uint8_t)(0xff << (8 - used));
}

static uint32_t popcount_bytes(const uint8_t *p, size_t n)
{
	uint32_t c = 0;
	for (size_t i = 0; i < n; i++)
		c += (uint32_t)__builtin_popcount(p[i]);
	return c;
}

int bitfield_init(struct bitfield *bf, uint32_t nbits)
{
	bf->bits = NULL;
	bf->nbits = 0;
	bf->count = 0;
	if (nbits > BITFIELD_MAX_BITS)
		return -EINVAL;
	if (nbits > 0) {
		bf->bits = calloc(bytes_for(nbits), 1);
		if (bf->bits == NULL)
			return -ENOMEM;
	}
	bf->nbits = nbits;
	return 0;
}

void bitfield_destroy(struct bitfield *bf)
{
	free(bf->bits);
	bf->bits = NULL;
	bf->nbits = 0;
	bf->count = 0;
}

int bitfield_copy(struct bitfield *dst, const struct bitfield *src)
{
	if (dst == src)
		return 0;
	uint8_t *bits = NULL;
	size_t n = bytes_for(src->nbits);
	if (n > 0) {
		bits = malloc(n);
		if (bits == NULL)
			return -ENOMEM;
		memcpy(bits, src->bits, n);
	}
	free(dst->bits);
	dst->bits = bits;
	dst->nbits = src->nbits;
	dst->count = src->count;
	return 0;
}

bool bitfield_test(const struct bitfield *bf, uint32_t i)
{
	if (i >= bf->nbits)
		return false;
	return bit_get(bf->bits, i);
}

bool bitfield_set(struct bitfield *bf, uint32_t i)
{
	if (i >= bf->nbits || bitfield_test(bf, i))
		return false;
	bit_set(bf->bits, i);
	bf->count++;
	return true;
}

bool bitfield_clear(struct bitfield *bf, uint32_t i)
{
	if (!bitfield_test(bf, i))
		return false;
	bit_clear(bf->bits, i);
	bf->count--;
	return true;
}

void bitfield_set_all(struct bitfield *bf)
{
	size_t n = bytes_for(bf->nbits);
	if (n == 0)
		return;
	memset(bf->bits, 0xff, n);
	bf->bits[n - 1] = last_byte_mask(bf->nbits);
	bf->count = bf->nbits;
}

void bitfield_clear_all(struct bitfield *bf)
{
	size_t n = bytes_for(bf->nbits);
	if (n > 0)
		memset(bf->bits, 0, n);
	bf->count = 0;
}

uint32_t bitfield_count(const struct bitfield *bf)
{
	return bf->count;
}

bool bitfield_all(const struct bitfield *bf)
{
	return bf->count == bf->nbits;
}

bool bitfield_none(const struct bitfield *bf)
{
	return bf->count == 0;
}

size_t bitfield_wire_len(const struct bitfield *bf)
{
	return bytes_for(bf->nbits);
}

int bitfield_from_wire(struct bitfield *bf, const uint8_t *p, size_t len)
{
	size_t n = bytes_for(bf->nbits);
	if (len != n)
		return -EMSGSIZE;
	if (n == 0)
		return 0;
	/* BEP 3: "Spare bits at the end are set to zero.  Clients should drop
	 * the connection if they receive bitfields that are not of the correct
	 * size, or if the bitfield has any of the spare bits set." */
	if (p[n - 1] & (uint8_t)~last_byte_mask(bf->nbits))
		return -EILSEQ;
	memcpy(bf->bits, p, n);
	bf->count = popcount_bytes(bf->bits, n);
	return 0;
}

long bitfield_to_wire(const struct bitfield *bf, uint8_t *out, size_t out_len)
{
	size_t n = bytes_for(bf->nbits);
	if (out_len < n)
		return -ENOBUFS;
	if (n > 0)
		memcpy(out, bf->bits, n);
	return (long)n;
}
