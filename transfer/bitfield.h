/* bitfield.h: fixed-size bit array in BEP 3 wire order (high bit of byte 0 is piece 0). */
#ifndef SHOAL_TRANSFER_BITFIELD_H
#define SHOAL_TRANSFER_BITFIELD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Hard ceiling on the number of bits (pieces).  With the smallest BEP 52
 * piece (16 KiB) this is 512 GiB of content; larger pieces reach further. */
#ifndef BITFIELD_MAX_BITS
#define BITFIELD_MAX_BITS (1u << 25)
#endif

struct bitfield {
	uint8_t *bits;  /* owned; (nbits + 7) / 8 bytes, spare bits always zero */
	uint32_t nbits;
	uint32_t count; /* number of set bits, kept up to date */
};

/* Start an all-clear bitfield of `nbits` bits (0 is allowed: no storage).
 * Returns 0, -EINVAL if nbits > BITFIELD_MAX_BITS, or -ENOMEM.  On failure
 * `bf` is left empty and bitfield_destroy() on it is harmless. */
int bitfield_init(struct bitfield *bf, uint32_t nbits) __attribute__((warn_unused_result));

/* Release the storage; `bf` becomes an empty 0-bit bitfield. */
void bitfield_destroy(struct bitfield *bf);

/* Make `dst` (already initialised, any size) an exact copy of `src`.
 * Returns 0 or -ENOMEM (then `dst` is unchanged). */
int bitfield_copy(struct bitfield *dst, const struct bitfield *src)
	__attribute__((warn_unused_result));

/* Is bit `i` set?  Out-of-range indices read as clear. */
bool bitfield_test(const struct bitfield *bf, uint32_t i);

/* Set / clear bit `i`.  Return true if the bit changed.  An out-of-range
 * index changes nothing and returns false (callers validate wire input
 * against the piece count before getting here). */
bool bitfield_set(struct bitfield *bf, uint32_t i);
bool bitfield_clear(struct bitfield *bf, uint32_t i);

/* Set or clear every bit. */
void bitfield_set_all(struct bitfield *bf);
void bitfield_clear_all(struct bitfield *bf);

/* Number of set bits. */
uint32_t bitfield_count(const struct bitfield *bf);

/* True when every bit is set (also true for a 0-bit bitfield). */
bool bitfield_all(const struct bitfield *bf);

/* True when no bit is set. */
bool bitfield_none(const struct bitfield *bf);

/* Bytes the wire form takes: ceil(nbits / 8). */
size_t bitfield_wire_len(const struct bitfield *bf);

/* Replace the contents of `bf` (keeping its size) with a BEP 3 bitfield
 * payload.  `len` must be exactly bitfield_wire_len(bf) (-EMSGSIZE
 * otherwise) and the spare bits after the last piece must be zero
 * (-EILSEQ otherwise).  On error `bf` is unchanged. */
int bitfield_from_wire(struct bitfield *bf, const uint8_t *p, size_t len)
	__attribute__((warn_unused_result));

/* Write the BEP 3 payload into `out`.  Returns the number of bytes
 * written, or -ENOBUFS if `out_len` < bitfield_wire_len(bf). */
long bitfield_to_wire(const struct bitfield *bf, uint8_t *out, size_t out_len)
	__attribute__((warn_unused_result));

#endif
