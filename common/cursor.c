/*
 * cursor.c - bounded reads over untrusted bytes (see cursor.h).
 *
 * Invariant: c->pos <= c->len at all times. Length checks compare n against
 * the remaining count (never pos + n, which could overflow).
 */
#include <string.h>

#include "cursor.h"
#include "guard.h"

void ztb_cursor_init(ztb_cursor *c, const void *data, size_t len)
{
    c->data = data;
    c->len = data ? len : 0;
    c->pos = 0;
}

ztb_err ztb_cursor_read(ztb_cursor *c, void *out, size_t n)
{
    ZTB_ENSURE(n <= ztb_cursor_remaining(c), ZTB_ERR_TRUNCATED);
    if (n > 0)
        memcpy(out, c->data + c->pos, n);
    c->pos += n;
    return ZTB_OK;
}

ztb_err ztb_cursor_read_u8(ztb_cursor *c, uint8_t *out)
{
    ZTB_ENSURE(ztb_cursor_remaining(c) >= 1, ZTB_ERR_TRUNCATED);
    *out = c->data[c->pos++];
    return ZTB_OK;
}

ztb_err ztb_cursor_read_u16be(ztb_cursor *c, uint16_t *out)
{
    ZTB_ENSURE(ztb_cursor_remaining(c) >= 2, ZTB_ERR_TRUNCATED);
    const uint8_t *p = c->data + c->pos;
    *out = (uint16_t)((unsigned)p[0] << 8 | p[1]);
    c->pos += 2;
    return ZTB_OK;
}

ztb_err ztb_cursor_read_u32be(ztb_cursor *c, uint32_t *out)
{
    ZTB_ENSURE(ztb_cursor_remaining(c) >= 4, ZTB_ERR_TRUNCATED);
    const uint8_t *p = c->data + c->pos;
    *out = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
    c->pos += 4;
    return ZTB_OK;
}

ztb_err ztb_cursor_peek_u8(const ztb_cursor *c, uint8_t *out)
{
    ZTB_ENSURE(ztb_cursor_remaining(c) >= 1, ZTB_ERR_TRUNCATED);
    *out = c->data[c->pos];
    return ZTB_OK;
}

ztb_err ztb_cursor_take(ztb_cursor *c, size_t n, ztb_span *out)
{
    ZTB_ENSURE(n <= ztb_cursor_remaining(c), ZTB_ERR_TRUNCATED);
    out->ptr = c->data + c->pos;
    out->len = n;
    c->pos += n;
    return ZTB_OK;
}

void ztb_cursor_take_rest(ztb_cursor *c, ztb_span *out)
{
    out->ptr = c->data ? c->data + c->pos : NULL;
    out->len = ztb_cursor_remaining(c);
    c->pos = c->len;
}

ztb_err ztb_cursor_take_until(ztb_cursor *c, uint8_t delim, ztb_span *out)
{
    size_t left = ztb_cursor_remaining(c);
    if (left == 0)
        return ZTB_ERR_NOT_FOUND;
    const uint8_t *start = c->data + c->pos;
    const uint8_t *hit = memchr(start, delim, left);
    ZTB_ENSURE(hit != NULL, ZTB_ERR_NOT_FOUND);
    out->ptr = start;
    out->len = (size_t)(hit - start);
    c->pos += out->len + 1;
    return ZTB_OK;
}

ztb_err ztb_cursor_expect(ztb_cursor *c, const void *lit, size_t n)
{
    ZTB_ENSURE(n <= ztb_cursor_remaining(c), ZTB_ERR_MALFORMED);
    ZTB_ENSURE(n == 0 || memcmp(c->data + c->pos, lit, n) == 0, ZTB_ERR_MALFORMED);
    c->pos += n;
    return ZTB_OK;
}

int ztb_span_eq_str(ztb_span s, const char *str)
{
    size_t n = strlen(str);
    return s.len == n && (n == 0 || memcmp(s.ptr, str, n) == 0);
}

ztb_span ztb_cursor_since(const ztb_cursor *c, size_t mark)
{
    ztb_span s = {NULL, 0};
    if (mark <= c->pos && c->data != NULL) {
        s.ptr = c->data + mark;
        s.len = c->pos - mark;
    }
    return s;
}

ztb_err ztb_cursor_unread(ztb_cursor *c, size_t n)
{
    ZTB_ENSURE(n <= c->pos, ZTB_ERR_TRUNCATED);
    c->pos -= n;
    return ZTB_OK;
}
