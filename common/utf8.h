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
 * ztb_utf8_decode and ztb_utf8_encode are the project's one UTF-8 codec:
 * the strict JSON reader (common/json_reader.c) decodes and re-encodes with
 * them, so there is no second idea of what valid UTF-8 is.
 *
 * Must never: allocate or depend on locale.
 */
#ifndef ZTB_UTF8_H
#define ZTB_UTF8_H

#include <stddef.h>
#include <stdint.h>

/* 1 if the n bytes at p are valid UTF-8, else 0. p may be NULL if n is 0. */
int ztb_utf8_valid(const void *p, size_t n);

/* 1 if the n bytes at p are valid UTF-8 without any control character. */
int ztb_utf8_printable(const void *p, size_t n);

/*
 * Decode the one sequence at s[0..n) (n >= 1): returns its length (1..4) and
 * sets *cp, or 0 if it is not valid (overlong, surrogate, above U+10FFFF,
 * truncated, or a stray continuation byte).
 */
size_t ztb_utf8_decode(const uint8_t *s, size_t n, uint32_t *cp);

/*
 * Encode the scalar value cp (at most U+10FFFF, not a surrogate: the caller
 * checked) into out; returns the number of bytes written (1..4).
 */
size_t ztb_utf8_encode(uint32_t cp, uint8_t out[4]);

#endif /* ZTB_UTF8_H */
