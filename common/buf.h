/* buf.h: a growable byte buffer that is born with a hard maximum size. */
#ifndef SHOAL_COMMON_BUF_H
#define SHOAL_COMMON_BUF_H

#include <stddef.h>
#include <stdint.h>

struct buf {
	uint8_t *data; /* owned; NULL until the first append */
	size_t len;
	size_t cap;
	size_t max; /* appends that would grow past this fail with -EMSGSIZE */
};

/* Start an empty buffer that may never hold more than `max` bytes. */
void buf_init(struct buf *b, size_t max);
/* Release the storage; the buffer is empty and reusable afterwards. */
void buf_destroy(struct buf *b);
/* Forget the contents but keep the storage. */
void buf_reset(struct buf *b);

/* Append bytes.  Returns 0, -EMSGSIZE past `max`, or -ENOMEM. */
int buf_append(struct buf *b, const void *p, size_t n) __attribute__((warn_unused_result));
int buf_append_byte(struct buf *b, uint8_t c) __attribute__((warn_unused_result));
int buf_printf(struct buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3), warn_unused_result));

/* Hand the storage to the caller (who frees it) and leave `b` empty. */
uint8_t *buf_take(struct buf *b, size_t *len_out);

#endif
