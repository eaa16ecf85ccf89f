/*
 * utf8.c - strict UTF-8 validation (see utf8.h).
 *
 * One pass; ASCII is checked eight bytes at a time when aligned runs allow,
 * the multi-byte forms by the table of RFC 3629 §4 (second-byte ranges that
 * exclude overlongs, surrogates and values above U+10FFFF).
 *
 * Must never: read past n bytes, or accept an overlong or surrogate form.
 */
#include <stdint.h>
#include <string.h>

#include "utf8.h"

size_t ztb_utf8_decode(const uint8_t *s, size_t n, uint32_t *cp)
{
    uint8_t c = s[0];
    size_t len;
    uint8_t lo = 0x80, hi = 0xbf; /* allowed range of the second byte */
    if (c < 0x80) {
        *cp = c;
        return 1;
    } else if (c >= 0xc2 && c <= 0xdf) {
        len = 2;
        *cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        *cp = c & 0x0f;
        if (c == 0xe0)
            lo = 0xa0; /* overlong */
        else if (c == 0xed)
            hi = 0x9f; /* surrogates */
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        *cp = c & 0x07;
        if (c == 0xf0)
            lo = 0x90; /* overlong */
        else if (c == 0xf4)
            hi = 0x8f; /* above U+10FFFF */
    } else {
        return 0; /* continuation byte, 0xc0/0xc1, or 0xf5.. */
    }
    if (n < len)
        return 0;
    if (s[1] < lo || s[1] > hi)
        return 0;
    *cp = (*cp << 6) | (s[1] & 0x3f);
    for (size_t i = 2; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        *cp = (*cp << 6) | (s[i] & 0x3f);
    }
    return len;
}

static int check(const void *p, size_t n, int printable)
{
    const uint8_t *s = p;
    if (s == NULL)
        return n == 0;
    size_t i = 0;
    while (i < n) {
        /* fast path: eight ASCII bytes that need no further look */
        if (n - i >= 8) {
            uint64_t w;
            memcpy(&w, s + i, 8);
            if ((w & 0x8080808080808080ull) == 0) {
                if (!printable) {
                    i += 8;
                    continue;
                }
                /* any byte < 0x20 or == 0x7f? (classic has-less / has-value tricks) */
                uint64_t lt = (w - 0x2020202020202020ull) & ~w & 0x8080808080808080ull;
                uint64_t x = w ^ 0x7f7f7f7f7f7f7f7full;
                uint64_t del = (x - 0x0101010101010101ull) & ~x & 0x8080808080808080ull;
                if ((lt | del) == 0) {
                    i += 8;
                    continue;
                }
            }
        }
        uint32_t cp;
        size_t len = ztb_utf8_decode(s + i, n - i, &cp);
        if (len == 0)
            return 0;
        if (printable && (cp < 0x20 || (cp >= 0x7f && cp <= 0x9f)))
            return 0;
        i += len;
    }
    return 1;
}

int ztb_utf8_valid(const void *p, size_t n)
{
    return check(p, n, 0);
}

int ztb_utf8_printable(const void *p, size_t n)
{
    return check(p, n, 1);
}

size_t ztb_utf8_encode(uint32_t cp, uint8_t out[4])
{
    if (cp < 0x80) {
        out[0] = (uint8_t)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (uint8_t)(0xc0 | cp >> 6);
        out[1] = (uint8_t)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (uint8_t)(0xe0 | cp >> 12);
        out[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
        out[2] = (uint8_t)(0x80 | (cp & 0x3f));
        return 3;
    }
    out[0] = (uint8_t)(0xf0 | cp >> 18);
    out[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3f));
    out[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
    out[3] = (uint8_t)(0x80 | (cp & 0x3f));
    return 4;
}
