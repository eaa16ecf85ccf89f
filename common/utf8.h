/*
 * utf8.h - strict UTF-8 checks for text that came from outside.
 *
 * Valid means RFC 3629: shortest form only (no overlongs), no UTF-16
 * surrogates (U+D800..U+DFFF), nothing above U+10FFFF, no truncated sequence.
 * "Printable" additionally refuses the C0 controls (U+0000..U+001F), DEL
 * (U+007F) and the C1 controls (U+0080..U+009F): text that will be matched
 * against patterns, put in tokens or written to logs and terminals. Neither
 * function allocates, and neither needs the input to be NUL-terminated.
 *
 * Must never: allocate or depend on locale.
 */
#ifndef ZTB_UTF8_H
#define ZTB_UTF8_H

#include <stddef.h>

/* 1 if the n bytes at p are valid UTF-8, else 0. p may be NULL if n is 0. */
int ztb_utf8_valid(const void *p, size_t n);

/* 1 if the n bytes at p are valid UTF-8 without any control character. */
int ztb_utf8_printable(const void *p, size_t n);

#endif /* ZTB_UTF8_H */
