/*
 * base64url.h - strict unpadded base64url (RFC 4648 §5), as JOSE uses it.
 *
 * Decoding is strict, because a token must have exactly one spelling: no '='
 * padding, no whitespace, no byte outside [A-Za-z0-9_-], no length that leaves
 * a single trailing character (len % 4 == 1), and the unused low bits of the
 * last character must be zero (canonical). Anything else is ZTB_ERR_BASE64.
 * Both directions are table-driven and branch-light; neither allocates.
 */
#ifndef ZTB_BASE64URL_H
#define ZTB_BASE64URL_H

#include <stddef.h>
#include <stdint.h>

#include <ztb/error.h>

#include "buf.h"

/* Characters needed to encode n bytes (no NUL). */
static inline size_t ztb_b64url_encoded_len(size_t n)
{
    return n / 3 * 4 + (n % 3 == 0 ? 0 : n % 3 + 1);
}

/* Upper bound of bytes decoded from n characters. */
static inline size_t ztb_b64url_decoded_max(size_t n)
{
    return n / 4 * 3 + (n % 4 == 0 ? 0 : n % 4 - 1 + (n % 4 == 1));
}

/*
 * Encode n bytes into out (out_cap bytes, must hold encoded_len + 1 for the
 * NUL). Sets *out_len (excluding the NUL) when out_len is not NULL.
 * TOO_LARGE if out_cap is too small.
 */
ztb_err ztb_b64url_encode(const void *in, size_t n, char *out, size_t out_cap, size_t *out_len);

/* Append the encoding of n bytes to b. */
ztb_err ztb_b64url_encode_buf(ztb_buf *b, const void *in, size_t n);

/*
 * Decode n characters into out (out_cap bytes). Sets *out_len. BASE64 for any
 * non-canonical or non-alphabet input, TOO_LARGE if out_cap is too small. On
 * error the contents of out are unspecified (callers holding secrets wipe it).
 */
ztb_err ztb_b64url_decode(const char *in, size_t n, void *out, size_t out_cap, size_t *out_len);

#endif /* ZTB_BASE64URL_H */
