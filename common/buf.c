/*
 * buf.c - bounded growable buffer (see buf.h).
 *
 * Growth doubles the capacity, capped at max + 1 (room for the NUL). Size
 * arithmetic is checked against max before anything is added, so no addition
 * can overflow.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "guard.h"
#include "secret.h"

static const char empty[1] = "";

static void init(ztb_buf *b, size_t max, int secret)
{
    memset(b, 0, sizeof(*b));
    /* keep max + 1 representable */
    b->max = max < SIZE_MAX / 2 ? max : SIZE_MAX / 2;
    b->secret = secret != 0;
}

void ztb_buf_init(ztb_buf *b, size_t max)
{
    init(b, max, 0);
}

void ztb_buf_init_secret(ztb_buf *b, size_t max)
{
    init(b, max, 1);
}

void ztb_buf_init_fixed(ztb_buf *b, void *storage, size_t cap)
{
    memset(b, 0, sizeof(*b));
    b->fixed = 1;
    if (storage == NULL || cap == 0) {
        b->err = ZTB_ERR_INVALID_ARG;
        return;
    }
    b->data = storage;
    b->cap = cap;
    b->max = cap - 1;
    b->data[0] = '\0';
}

/* Make room for n more bytes plus the NUL. */
static ztb_err reserve(ztb_buf *b, size_t n)
{
    if (b->err != ZTB_OK)
        return b->err;
    if (n > b->max - b->len) {
        b->err = ZTB_ERR_TOO_LARGE;
        return b->err;
    }
    size_t need = b->len + n + 1;
    if (need <= b->cap)
        return ZTB_OK;
    if (b->fixed) {
        b->err = ZTB_ERR_TOO_LARGE;
        return b->err;
    }
    size_t ncap = b->cap ? b->cap : 64;
    while (ncap < need)
        ncap = ncap <= (b->max + 1) / 2 ? ncap * 2 : b->max + 1;
    uint8_t *nd;
    if (b->secret) {
        /* realloc could leave a copy of the secret behind: move it by hand */
        nd = malloc(ncap);
        if (nd != NULL && b->data != NULL) {
            memcpy(nd, b->data, b->len + 1);
            ztb_wipe(b->data, b->cap);
            free(b->data);
        }
    } else {
        nd = realloc(b->data, ncap);
    }
    if (nd == NULL) {
        b->err = ZTB_ERR_NOMEM;
        return b->err;
    }
    if (b->data == NULL)
        nd[0] = '\0';
    b->data = nd;
    b->cap = ncap;
    return ZTB_OK;
}

ztb_err ztb_buf_reserve(ztb_buf *b, size_t n)
{
    if (b->err == ZTB_OK && n > b->max - b->len)
        n = b->max - b->len;
    return reserve(b, n);
}

ztb_err ztb_buf_append(ztb_buf *b, const void *p, size_t n)
{
    ZTB_GUARD(reserve(b, n));
    if (n > 0)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return ZTB_OK;
}

ztb_err ztb_buf_extend(ztb_buf *b, size_t n, uint8_t **at)
{
    ZTB_GUARD(reserve(b, n));
    *at = b->data + b->len;
    b->len += n;
    b->data[b->len] = '\0';
    return ZTB_OK;
}

ztb_err ztb_buf_append_str(ztb_buf *b, const char *s)
{
    return ztb_buf_append(b, s, strlen(s));
}

ztb_err ztb_buf_append_byte(ztb_buf *b, uint8_t c)
{
    return ztb_buf_append(b, &c, 1);
}

ztb_err ztb_buf_append_u64(ztb_buf *b, uint64_t v)
{
    char tmp[20];
    size_t i = sizeof(tmp);
    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    return ztb_buf_append(b, tmp + i, sizeof(tmp) - i);
}

ztb_err ztb_buf_append_i64(ztb_buf *b, int64_t v)
{
    if (v >= 0)
        return ztb_buf_append_u64(b, (uint64_t)v);
    ZTB_GUARD(ztb_buf_append_byte(b, '-'));
    /* -(v + 1) + 1 avoids overflow at INT64_MIN */
    return ztb_buf_append_u64(b, (uint64_t)(-(v + 1)) + 1);
}

ztb_err ztb_buf_vprintf(ztb_buf *b, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0) {
        if (b->err == ZTB_OK)
            b->err = ZTB_ERR_INVALID_ARG;
        return b->err;
    }
    ZTB_GUARD(reserve(b, (size_t)n));
    vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
    return ZTB_OK;
}

ztb_err ztb_buf_printf(ztb_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    ztb_err rv = ztb_buf_vprintf(b, fmt, ap);
    va_end(ap);
    return rv;
}

ztb_err ztb_buf_append_json_escaped(ztb_buf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    size_t run = 0; /* start of the current run of bytes needing no escape */
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\' && c != 0x7f)
            continue;
        ZTB_GUARD(ztb_buf_append(b, s + run, i - run));
        run = i + 1;
        char esc[6] = {'\\', 0, 0, 0, 0, 0};
        size_t elen = 2;
        switch (c) {
        case '"': esc[1] = '"'; break;
        case '\\': esc[1] = '\\'; break;
        case '\n': esc[1] = 'n'; break;
        case '\r': esc[1] = 'r'; break;
        case '\t': esc[1] = 't'; break;
        default:
            esc[1] = 'u';
            esc[2] = '0';
            esc[3] = '0';
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            elen = 6;
        }
        ZTB_GUARD(ztb_buf_append(b, esc, elen));
    }
    return ztb_buf_append(b, s + run, n - run);
}

const char *ztb_buf_cstr(const ztb_buf *b)
{
    return b->data ? (const char *)b->data : empty;
}

void ztb_buf_reset(ztb_buf *b)
{
    if (b->data != NULL) {
        if (b->secret)
            ztb_wipe(b->data, b->cap);
        b->data[0] = '\0';
    }
    b->len = 0;
    b->err = b->fixed && b->data == NULL ? ZTB_ERR_INVALID_ARG : ZTB_OK;
}

void ztb_buf_truncate(ztb_buf *b, size_t len)
{
    if (len > b->len)
        len = b->len;
    if (b->data != NULL) {
        if (b->secret)
            ztb_wipe(b->data + len, b->len - len);
        b->data[len] = '\0';
    }
    b->len = len;
    b->err = ZTB_OK;
}

void ztb_buf_free(ztb_buf *b)
{
    if (b->fixed) {
        ztb_buf_reset(b);
        return;
    }
    if (b->data != NULL) {
        if (b->secret)
            ztb_wipe(b->data, b->cap);
        free(b->data);
    }
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->err = ZTB_OK;
}

char *ztb_buf_steal(ztb_buf *b, size_t *len)
{
    if (b->fixed || b->err != ZTB_OK)
        return NULL;
    if (b->data == NULL && reserve(b, 0) != ZTB_OK)
        return NULL;
    char *s = (char *)b->data;
    if (len != NULL)
        *len = b->len;
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    return s;
}
