/* bytes.h: big-endian integers, MSB-first bit arrays and splitmix64, the
 * small byte-level helpers every library uses (one copy of each). */
#ifndef SHOAL_COMMON_BYTES_H
#define SHOAL_COMMON_BYTES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Big-endian (network order) 32-bit integer at p[0..3]. */
static inline uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline void wr32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

/* Smallest power of two >= v (1 for v = 0), for v <= 2^63: the width of a
 * padded merkle layer. */
static inline uint64_t pow2_ceil(uint64_t v)
{
	uint64_t p = 1;
	while (p < v)
		p <<= 1;
	return p;
}

/* floor(log2(v)) (0 for v <= 1): a power of two's exponent. */
static inline unsigned log2_floor(uint64_t v)
{
	unsigned n = 0;
	while (v > 1) {
		v >>= 1;
		n++;
	}
	return n;
}

/* Bit `i` of an MSB-first bit array (bit 0 is the top bit of byte 0), the
 * order of BitTorrent bitfields, have-bitmaps and DHT ids. */
static inline bool bit_get(const uint8_t *bits, size_t i)
{
	return (bits[i / 8] >> (7 - i % 8)) & 1;
}

static inline void bit_set(uint8_t *bits, size_t i)
{
	bits[i / 8] |= (uint8_t)(0x80u >> (i % 8));
}

static inline void bit_clear(uint8_t *bits, size_t i)
{
	bits[i / 8] &= (uint8_t)~(0x80u >> (i % 8));
}

static inline void bit_put(uint8_t *bits, size_t i, bool v)
{
	if (v)
		bit_set(bits, i);
	else
		bit_clear(bits, i);
}

/* splitmix64's finaliser: a well-mixed 64-bit function of z.  Fast and
 * reproducible; for choices that need no secrecy (ties, rotation, order). */
static inline uint64_t mix64(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* The next value of the splitmix64 sequence whose state is *state. */
static inline uint64_t splitmix64_next(uint64_t *state)
{
	*state += 0x9e3779b97f4a7c15ULL;
	return mix64(*state);
}

#endif
