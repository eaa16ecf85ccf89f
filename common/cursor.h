/*
 * cursor.h - a bounded reader over untrusted bytes.
 *
 * Every parser in ztb reads input (HTTP bodies, JWS segments, form fields,
 * Redis replies, files) through a ztb_cursor: a pointer, a length and a read
 * position. Every read checks the remaining length first and fails with
 * ZTB_ERR_TRUNCATED without moving the position, so a failed read never leaves
 * a parser half-advanced. Nothing here allocates, and nothing requires the
 * input to be NUL-terminated. A cursor borrows its bytes: the caller keeps them
 * alive while the cursor and any span taken from it are in use.
 *
 * The fields of ztb_cursor are the cursor's own: parsers read and move it
 * only through the functions below (as s2n's stuffer is used), so the bounds
 * check lives in one place.
 */
#ifndef ZTB_CURSOR_H
#define ZTB_CURSOR_H

#include <stddef.h>
#include <stdint.h>

#include <ztb/error.h>

/* A borrowed slice of bytes: ptr may be NULL only when len is 0. */
typedef struct ztb_span {
    const uint8_t *ptr;
    size_t len;
} ztb_span;

typedef struct ztb_cursor {
    const uint8_t *data; /* private: use the functions below */
    size_t len;          /* private */
    size_t pos;          /* private */
} ztb_cursor;

/* Start reading len bytes at data (data may be NULL if len is 0). */
void ztb_cursor_init(ztb_cursor *c, const void *data, size_t len);

/* Bytes left to read. */
static inline size_t ztb_cursor_remaining(const ztb_cursor *c)
{
    return c->len - c->pos;
}

/* 1 when every byte has been read. */
static inline int ztb_cursor_eof(const ztb_cursor *c)
{
    return c->pos >= c->len;
}

/* The next byte without advancing, or -1 at the end. */
static inline int ztb_cursor_peek(const ztb_cursor *c)
{
    return c->pos < c->len ? c->data[c->pos] : -1;
}

/*
 * Borrow everything left without advancing (a look ahead: the caller scans
 * it, then moves with ztb_cursor_skip). out->ptr is NULL only when empty.
 */
static inline ztb_span ztb_cursor_ahead(const ztb_cursor *c)
{
    ztb_span s = {NULL, 0};
    if (c->data != NULL) {
        s.ptr = c->data + c->pos;
        s.len = c->len - c->pos;
    }
    return s;
}

/* A mark: how many bytes have been read. Pair with ztb_cursor_since. */
static inline size_t ztb_cursor_mark(const ztb_cursor *c)
{
    return c->pos;
}

/*
 * Borrow the bytes read since mark (a value from ztb_cursor_mark on this
 * cursor). An empty span if mark is not behind the position.
 */
ztb_span ztb_cursor_since(const ztb_cursor *c, size_t mark);

/* Step back n bytes (n at most what has been read; TRUNCATED and no move if more). */
ztb_err ztb_cursor_unread(ztb_cursor *c, size_t n);

/* Copy n bytes into out and advance. TRUNCATED if fewer remain. */
ztb_err ztb_cursor_read(ztb_cursor *c, void *out, size_t n);

/* Read one byte / a big-endian 16- or 32-bit integer. */
ztb_err ztb_cursor_read_u8(ztb_cursor *c, uint8_t *out);
ztb_err ztb_cursor_read_u16be(ztb_cursor *c, uint16_t *out);
ztb_err ztb_cursor_read_u32be(ztb_cursor *c, uint32_t *out);

/* Look at the next byte without advancing. TRUNCATED at the end. */
ztb_err ztb_cursor_peek_u8(const ztb_cursor *c, uint8_t *out);

/* Advance n bytes. TRUNCATED (and no move) if fewer remain. (Inline: the
 * JSON reader moves by a byte or a run at a time on the verifier's path.) */
static inline ztb_err ztb_cursor_skip(ztb_cursor *c, size_t n)
{
    if (n > c->len - c->pos)
        return ZTB_ERR_TRUNCATED;
    c->pos += n;
    return ZTB_OK;
}

/* Borrow the next n bytes as a span and advance. */
ztb_err ztb_cursor_take(ztb_cursor *c, size_t n, ztb_span *out);

/* Borrow everything left (possibly empty) and advance to the end. */
void ztb_cursor_take_rest(ztb_cursor *c, ztb_span *out);

/*
 * Borrow the bytes up to (not including) the next delim, then advance past the
 * delimiter. NOT_FOUND (and no move) if delim does not occur in what remains.
 */
ztb_err ztb_cursor_take_until(ztb_cursor *c, uint8_t delim, ztb_span *out);

/* Advance past lit if the next bytes equal it; MALFORMED (no move) if not. */
ztb_err ztb_cursor_expect(ztb_cursor *c, const void *lit, size_t n);

/* 1 if the span's bytes equal the NUL-terminated string s (not constant time). */
int ztb_span_eq_str(ztb_span s, const char *str);

#endif /* ZTB_CURSOR_H */
