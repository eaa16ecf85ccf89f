/*
 * buf.h - a bounded, growable byte buffer for building output.
 *
 * A ztb_buf has a hard maximum size chosen by its creator, so output built from
 * untrusted input can never grow without bound. It is always NUL-terminated
 * (the terminator is not counted in len), so text can be handed to C APIs.
 *
 * Errors are sticky: once an append fails (TOO_LARGE or NOMEM), every later
 * append is a no-op that returns the same error, and ztb_buf_error() reports
 * it. A sequence of appends can therefore be checked once at the end.
 *
 * A buffer marked secret wipes its old storage when it grows and its contents
 * when reset or freed. A fixed buffer uses caller storage and never allocates
 * (for hot paths); it fails with TOO_LARGE when full.
 */
#ifndef ZTB_BUF_H
#define ZTB_BUF_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <ztb/error.h>

typedef struct ztb_buf {
    uint8_t *data;
    size_t len;  /* bytes in use, excluding the NUL */
    size_t cap;  /* bytes allocated, including room for the NUL */
    size_t max;  /* most bytes len may reach */
    ztb_err err; /* sticky first error */
    unsigned secret : 1;
    unsigned fixed : 1;
} ztb_buf;

/* An empty heap buffer whose len may never exceed max. Allocates lazily. */
void ztb_buf_init(ztb_buf *b, size_t max);

/* Same, wiping old storage on growth and contents on reset/free. */
void ztb_buf_init_secret(ztb_buf *b, size_t max);

/* A buffer over caller storage of size cap (holds cap-1 bytes + NUL). */
void ztb_buf_init_fixed(ztb_buf *b, void *storage, size_t cap);

ztb_err ztb_buf_append(ztb_buf *b, const void *p, size_t n);
ztb_err ztb_buf_append_str(ztb_buf *b, const char *s);
ztb_err ztb_buf_append_byte(ztb_buf *b, uint8_t c);
ztb_err ztb_buf_append_u64(ztb_buf *b, uint64_t v);
ztb_err ztb_buf_append_i64(ztb_buf *b, int64_t v);
ztb_err ztb_buf_printf(ztb_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
ztb_err ztb_buf_vprintf(ztb_buf *b, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

/*
 * Append s as the inside of a JSON string (quotes not included): escapes ",
 * \, and every byte below 0x20 and 0x7f. Bytes >= 0x80 are copied as they are;
 * callers that need valid UTF-8 check it before.
 */
ztb_err ztb_buf_append_json_escaped(ztb_buf *b, const char *s, size_t n);

/*
 * Extend len by n bytes and set *at to where they start, for callers that
 * write in place (encoders). The new bytes are uninitialised until written;
 * the NUL after them is set.
 */
ztb_err ztb_buf_extend(ztb_buf *b, size_t n, uint8_t **at);

/*
 * Capacity hint: make room for n more bytes (clamped to what max allows) in
 * one allocation, so a buffer whose final size is roughly known does not
 * grow by doubling (for secret buffers each step is a copy and a wipe). The
 * contents are unchanged; only running out of memory sets the sticky error.
 */
ztb_err ztb_buf_reserve(ztb_buf *b, size_t n);

/* The sticky error, ZTB_OK if none. */
static inline ztb_err ztb_buf_error(const ztb_buf *b)
{
    return b->err;
}

/* The contents as a NUL-terminated string; "" for an empty buffer. */
const char *ztb_buf_cstr(const ztb_buf *b);

/* Forget the contents (wiping them if secret) and clear the sticky error. */
void ztb_buf_reset(ztb_buf *b);

/*
 * Roll back to len bytes (len <= current length) and clear the sticky error:
 * lets a caller undo a partial append that failed. Dropped secret bytes are
 * wiped.
 */
void ztb_buf_truncate(ztb_buf *b, size_t len);

/* Release storage (wiping it if secret). The buffer is then empty. */
void ztb_buf_free(ztb_buf *b);

/*
 * Hand over the heap storage: returns a NUL-terminated string the caller frees
 * with free() (or ztb_free_secret() for secret buffers), and sets *len if len
 * is not NULL. Returns NULL for fixed buffers, after an error, or if out of
 * memory. The buffer is empty afterwards.
 */
char *ztb_buf_steal(ztb_buf *b, size_t *len);

#endif /* ZTB_BUF_H */
