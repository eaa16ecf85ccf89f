/* test_base64url.c - RFC 4648 vectors and every way to be non-canonical. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/base64url.h"

struct vec {
    const char *raw;
    const char *enc;
};

/* RFC 4648 §10 test vectors, without padding. */
static const struct vec rfc4648[] = {
    {"", ""},           {"f", "Zg"},          {"fo", "Zm8"},          {"foo", "Zm9v"},
    {"foob", "Zm9vYg"}, {"fooba", "Zm9vYmE"}, {"foobar", "Zm9vYmFy"},
};

static void test_rfc4648_vectors(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(rfc4648) / sizeof(rfc4648[0]); i++) {
        char enc[32];
        uint8_t dec[32];
        size_t n;
        const struct vec *v = &rfc4648[i];
        assert_int_equal(ztb_b64url_encode(v->raw, strlen(v->raw), enc, sizeof(enc), &n), ZTB_OK);
        assert_string_equal(enc, v->enc);
        assert_int_equal(n, ztb_b64url_encoded_len(strlen(v->raw)));
        assert_int_equal(ztb_b64url_decode(v->enc, strlen(v->enc), dec, sizeof(dec), &n), ZTB_OK);
        assert_int_equal(n, strlen(v->raw));
        assert_memory_equal(dec, v->raw, n);
    }
}

/* The url-safe alphabet: 0xfb 0xff encode with '-' and '_'. */
static void test_url_alphabet(void **state)
{
    (void)state;
    const uint8_t raw[] = {0xfb, 0xff, 0xbf};
    char enc[8];
    assert_int_equal(ztb_b64url_encode(raw, 3, enc, sizeof(enc), NULL), ZTB_OK);
    assert_string_equal(enc, "-_-_");
    uint8_t dec[3];
    size_t n;
    assert_int_equal(ztb_b64url_decode("-_-_", 4, dec, 3, &n), ZTB_OK);
    assert_memory_equal(dec, raw, 3);
    /* the standard alphabet's + and / are refused */
    assert_int_equal(ztb_b64url_decode("+/+/", 4, dec, 3, &n), ZTB_ERR_BASE64);
}

static void test_rejects_padding_and_junk(void **state)
{
    (void)state;
    uint8_t out[64];
    size_t n;
    const char *bad[] = {
        "Zg==",   "Zm8=",  "Zg=",                /* padding */
        "Zm9v\n", " Zm9v", "Zm 9v",   "Zm9\tv",  /* whitespace */
        "Z",      "Zm9vY",                       /* length % 4 == 1 */
        "Zm9v!",  "Zm9v.", "Zm9\x80", "Zm9\xff", /* non-alphabet */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(ztb_b64url_decode(bad[i], strlen(bad[i]), out, sizeof(out), &n),
                         ZTB_ERR_BASE64);
    /* an embedded NUL is a non-alphabet byte, not an end */
    assert_int_equal(ztb_b64url_decode("Zm\0v", 4, out, sizeof(out), &n), ZTB_ERR_BASE64);
}

/* "Zh" decodes to the same byte as "Zg" if the low bits are ignored. */
static void test_rejects_noncanonical_trailing_bits(void **state)
{
    (void)state;
    uint8_t out[8];
    size_t n;
    assert_int_equal(ztb_b64url_decode("Zg", 2, out, sizeof(out), &n), ZTB_OK);
    for (const char *c = "hijklmnopqrstuv"; *c; c++) { /* 33..47: low bits set */
        char in[3] = {'Z', *c, 0};
        assert_int_equal(ztb_b64url_decode(in, 2, out, sizeof(out), &n), ZTB_ERR_BASE64);
    }
    assert_int_equal(ztb_b64url_decode("Zm8", 3, out, sizeof(out), &n), ZTB_OK);
    assert_int_equal(ztb_b64url_decode("Zm9", 3, out, sizeof(out), &n), ZTB_ERR_BASE64);
    assert_int_equal(ztb_b64url_decode("Zm-", 3, out, sizeof(out), &n), ZTB_ERR_BASE64);
}

static void test_output_capacity(void **state)
{
    (void)state;
    char enc[4];
    assert_int_equal(ztb_b64url_encode("foo", 3, enc, 4, NULL), ZTB_ERR_TOO_LARGE);
    assert_int_equal(ztb_b64url_encode("fo", 2, enc, 4, NULL), ZTB_OK);
    uint8_t dec[2];
    size_t n;
    assert_int_equal(ztb_b64url_decode("Zm9v", 4, dec, 2, &n), ZTB_ERR_TOO_LARGE);
    assert_int_equal(ztb_b64url_decode(NULL, 4, dec, 2, &n), ZTB_ERR_INVALID_ARG);
    assert_int_equal(ztb_b64url_decode(NULL, 0, NULL, 0, &n), ZTB_OK);
    assert_int_equal(n, 0);
    assert_int_equal(ztb_b64url_encode(NULL, 1, enc, 4, NULL), ZTB_ERR_INVALID_ARG);
}

/* Round trip every length 0..300 over all byte values. */
static void test_round_trip_lengths(void **state)
{
    (void)state;
    uint8_t raw[300], dec[300];
    char enc[401];
    for (size_t i = 0; i < sizeof(raw); i++)
        raw[i] = (uint8_t)(i * 37 + 11);
    for (size_t len = 0; len <= sizeof(raw); len++) {
        size_t en, dn;
        assert_int_equal(ztb_b64url_encode(raw, len, enc, sizeof(enc), &en), ZTB_OK);
        assert_int_not_equal(en % 4, 1);
        assert_true(ztb_b64url_decoded_max(en) >= len);
        assert_int_equal(ztb_b64url_decode(enc, en, dec, sizeof(dec), &dn), ZTB_OK);
        assert_int_equal(dn, len);
        assert_memory_equal(dec, raw, len);
    }
}

static void test_encode_into_buf(void **state)
{
    (void)state;
    ztb_buf b;
    ztb_buf_init(&b, 16);
    assert_int_equal(ztb_buf_append_str(&b, "x."), ZTB_OK);
    assert_int_equal(ztb_b64url_encode_buf(&b, "foobar", 6), ZTB_OK);
    assert_string_equal(ztb_buf_cstr(&b), "x.Zm9vYmFy");
    assert_int_equal(ztb_b64url_encode_buf(&b, "foobar", 6), ZTB_ERR_TOO_LARGE);
    ztb_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc4648_vectors),
        cmocka_unit_test(test_url_alphabet),
        cmocka_unit_test(test_rejects_padding_and_junk),
        cmocka_unit_test(test_rejects_noncanonical_trailing_bits),
        cmocka_unit_test(test_output_capacity),
        cmocka_unit_test(test_round_trip_lengths),
        cmocka_unit_test(test_encode_into_buf),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
