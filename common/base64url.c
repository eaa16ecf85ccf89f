/*
 * base64url.c - strict unpadded base64url (see base64url.h).
 *
 * The decode table maps every byte to its 6-bit value or to 0xff; four values
 * are OR-ed together so one test per quantum detects any invalid character.
 */
#include "base64url.h"
#include "guard.h"

static const char enc_table[64] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* clang-format off */
#define X 0xff
static const uint8_t dec_table[256] = {
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, 62, X, X,
    52, 53, 54, 55, 56, 57, 58, 59, 60, 61, X, X, X, X, X, X,
    X, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14,
    15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, X, X, X, X, 63,
    X, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40,
    41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
};
#undef X
/* clang-format on */

static void encode_raw(const uint8_t *in, size_t n, char *out)
{
    size_t i = 0;
    char *o = out;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        *o++ = enc_table[v >> 18];
        *o++ = enc_table[(v >> 12) & 63];
        *o++ = enc_table[(v >> 6) & 63];
        *o++ = enc_table[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        *o++ = enc_table[v >> 18];
        *o++ = enc_table[(v >> 12) & 63];
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        *o++ = enc_table[v >> 18];
        *o++ = enc_table[(v >> 12) & 63];
        *o++ = enc_table[(v >> 6) & 63];
    }
    *o = '\0';
}

ztb_err ztb_b64url_encode(const void *in, size_t n, char *out, size_t out_cap, size_t *out_len)
{
    ZTB_ENSURE(in != NULL || n == 0, ZTB_ERR_INVALID_ARG);
    ZTB_ENSURE(out != NULL, ZTB_ERR_INVALID_ARG);
    ZTB_ENSURE(n <= (SIZE_MAX - 8) / 4 * 3, ZTB_ERR_TOO_LARGE);
    size_t need = ztb_b64url_encoded_len(n);
    ZTB_ENSURE(out_cap > need, ZTB_ERR_TOO_LARGE);
    encode_raw(in, n, out);
    if (out_len != NULL)
        *out_len = need;
    return ZTB_OK;
}

ztb_err ztb_b64url_encode_buf(ztb_buf *b, const void *in, size_t n)
{
    ZTB_ENSURE(in != NULL || n == 0, ZTB_ERR_INVALID_ARG);
    ZTB_ENSURE(n <= (SIZE_MAX - 8) / 4 * 3, ZTB_ERR_TOO_LARGE);
    uint8_t *at;
    ZTB_GUARD(ztb_buf_extend(b, ztb_b64url_encoded_len(n), &at));
    encode_raw(in, n, (char *)at); /* its NUL lands on the buffer's NUL */
    return ZTB_OK;
}

ztb_err ztb_b64url_decode(const char *in, size_t n, void *out, size_t out_cap, size_t *out_len)
{
    ZTB_ENSURE(in != NULL || n == 0, ZTB_ERR_INVALID_ARG);
    ZTB_ENSURE(out != NULL || n == 0, ZTB_ERR_INVALID_ARG);
    ZTB_ENSURE(n % 4 != 1, ZTB_ERR_BASE64);
    size_t need = ztb_b64url_decoded_max(n);
    ZTB_ENSURE(out_cap >= need, ZTB_ERR_TOO_LARGE);

    const uint8_t *s = (const uint8_t *)in;
    uint8_t *o = out;
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        uint8_t a = dec_table[s[i]], b = dec_table[s[i + 1]];
        uint8_t c = dec_table[s[i + 2]], d = dec_table[s[i + 3]];
        if ((a | b | c | d) & 0x80)
            return ZTB_ERR_BASE64;
        uint32_t v = (uint32_t)a << 18 | (uint32_t)b << 12 | (uint32_t)c << 6 | d;
        *o++ = (uint8_t)(v >> 16);
        *o++ = (uint8_t)(v >> 8);
        *o++ = (uint8_t)v;
    }
    size_t rest = n - i;
    if (rest == 2) {
        uint8_t a = dec_table[s[i]], b = dec_table[s[i + 1]];
        if ((a | b) & 0x80 || (b & 0x0f) != 0)
            return ZTB_ERR_BASE64;
        *o++ = (uint8_t)(a << 2 | b >> 4);
    } else if (rest == 3) {
        uint8_t a = dec_table[s[i]], b = dec_table[s[i + 1]], c = dec_table[s[i + 2]];
        if ((a | b | c) & 0x80 || (c & 0x03) != 0)
            return ZTB_ERR_BASE64;
        *o++ = (uint8_t)(a << 2 | b >> 4);
        *o++ = (uint8_t)(b << 4 | c >> 2);
    }
    if (out_len != NULL)
        *out_len = (size_t)(o - (uint8_t *)out);
    return ZTB_OK;
}
