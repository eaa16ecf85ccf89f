/* test_buf.c - bounded buffer: limits hold, errors stick, secrets wiped. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/buf.h"

static void test_append_and_cstr(void **state)
{
    (void)state;
    ztb_buf b;
    ztb_buf_init(&b, 1024);
    assert_string_equal(ztb_buf_cstr(&b), "");
    assert_int_equal(ztb_buf_append_str(&b, "abc"), ZTB_OK);
    assert_int_equal(ztb_buf_append_byte(&b, '-'), ZTB_OK);
    assert_int_equal(ztb_buf_append_u64(&b, 18446744073709551615ull), ZTB_OK);
    assert_int_equal(ztb_buf_append_byte(&b, ' '), ZTB_OK);
    assert_int_equal(ztb_buf_append_i64(&b, INT64_MIN), ZTB_OK);
    assert_int_equal(ztb_buf_append_byte(&b, ' '), ZTB_OK);
    assert_int_equal(ztb_buf_append_i64(&b, 0), ZTB_OK);
    assert_int_equal(ztb_buf_printf(&b, " %d:%s", 42, "x"), ZTB_OK);
    assert_string_equal(ztb_buf_cstr(&b), "abc-18446744073709551615 -9223372036854775808 0 42:x");
    assert_int_equal(b.len, strlen(ztb_buf_cstr(&b)));
    ztb_buf_free(&b);
    assert_null(b.data);
}

static void test_max_is_hard_and_error_sticks(void **state)
{
    (void)state;
    ztb_buf b;
    ztb_buf_init(&b, 8);
    assert_int_equal(ztb_buf_append_str(&b, "12345678"), ZTB_OK);
    assert_int_equal(ztb_buf_append_byte(&b, '9'), ZTB_ERR_TOO_LARGE);
    /* sticky: a tiny append after the error also fails */
    assert_int_equal(ztb_buf_append(&b, "", 0), ZTB_ERR_TOO_LARGE);
    assert_int_equal(ztb_buf_printf(&b, "%s", ""), ZTB_ERR_TOO_LARGE);
    assert_int_equal(ztb_buf_error(&b), ZTB_ERR_TOO_LARGE);
    assert_string_equal(ztb_buf_cstr(&b), "12345678");
    assert_null(ztb_buf_steal(&b, NULL));
    ztb_buf_reset(&b);
    assert_int_equal(ztb_buf_error(&b), ZTB_OK);
    assert_int_equal(ztb_buf_append_str(&b, "ok"), ZTB_OK);
    ztb_buf_free(&b);
}

static void test_size_overflow_refused(void **state)
{
    (void)state;
    ztb_buf b;
    ztb_buf_init(&b, SIZE_MAX); /* clamped internally */
    assert_int_equal(ztb_buf_append_str(&b, "x"), ZTB_OK);
    /* a length that would wrap len + n + 1 */
    assert_int_equal(ztb_buf_append(&b, "y", SIZE_MAX), ZTB_ERR_TOO_LARGE);
    assert_int_equal(ztb_buf_append(&b, "y", SIZE_MAX - 1), ZTB_ERR_TOO_LARGE);
    ztb_buf_free(&b);
}

static void test_fixed_never_allocates(void **state)
{
    (void)state;
    char store[8];
    ztb_buf b;
    ztb_buf_init_fixed(&b, store, sizeof(store));
    assert_int_equal(ztb_buf_append_str(&b, "1234567"), ZTB_OK);
    assert_ptr_equal(b.data, (uint8_t *)store);
    assert_string_equal(store, "1234567");
    assert_int_equal(ztb_buf_append_byte(&b, '8'), ZTB_ERR_TOO_LARGE);
    assert_null(ztb_buf_steal(&b, NULL));
    ztb_buf_truncate(&b, 3);
    assert_string_equal(store, "123");
    assert_int_equal(ztb_buf_error(&b), ZTB_OK);
    ztb_buf_free(&b); /* harmless on a fixed buffer */

    ztb_buf bad;
    ztb_buf_init_fixed(&bad, NULL, 10);
    assert_int_equal(ztb_buf_append_str(&bad, "x"), ZTB_ERR_INVALID_ARG);
    ztb_buf_init_fixed(&bad, store, 0);
    assert_int_equal(ztb_buf_append_str(&bad, ""), ZTB_ERR_INVALID_ARG);
}

static void test_json_escape_hostile(void **state)
{
    (void)state;
    ztb_buf b;
    ztb_buf_init(&b, 256);
    const char in[] = "a\"b\\c\nd\r\te\x01\x1f\x7f"
                      "f\xc3\xa9";
    assert_int_equal(ztb_buf_append_json_escaped(&b, in, sizeof(in) - 1), ZTB_OK);
    assert_string_equal(ztb_buf_cstr(&b), "a\\\"b\\\\c\\nd\\r\\te\\u0001\\u001f\\u007ff\xc3\xa9");
    /* embedded NUL is escaped, not a terminator */
    ztb_buf_reset(&b);
    assert_int_equal(ztb_buf_append_json_escaped(&b, "x\0y", 3), ZTB_OK);
    assert_string_equal(ztb_buf_cstr(&b), "x\\u0000y");
    ztb_buf_free(&b);
}

static void test_extend_and_truncate(void **state)
{
    (void)state;
    ztb_buf b;
    ztb_buf_init(&b, 100);
    uint8_t *at;
    assert_int_equal(ztb_buf_append_str(&b, "ab"), ZTB_OK);
    assert_int_equal(ztb_buf_extend(&b, 3, &at), ZTB_OK);
    memcpy(at, "cde", 3);
    assert_string_equal(ztb_buf_cstr(&b), "abcde");
    assert_int_equal(ztb_buf_extend(&b, 1000, &at), ZTB_ERR_TOO_LARGE);
    ztb_buf_truncate(&b, 2);
    assert_string_equal(ztb_buf_cstr(&b), "ab");
    ztb_buf_truncate(&b, 50); /* beyond len: no-op */
    assert_int_equal(b.len, 2);
    ztb_buf_free(&b);
}

static void test_reserve(void **state)
{
    (void)state;
    ztb_buf b;
    ztb_buf_init_secret(&b, 100);
    assert_int_equal(ztb_buf_append_str(&b, "ab"), ZTB_OK);
    assert_int_equal(ztb_buf_reserve(&b, 50), ZTB_OK);
    size_t cap = b.cap;
    assert_true(cap >= 53);
    assert_string_equal(ztb_buf_cstr(&b), "ab");
    for (int i = 0; i < 50; i++)
        assert_int_equal(ztb_buf_append_byte(&b, 'x'), ZTB_OK);
    assert_int_equal(b.cap, cap); /* no growth */
    /* a hint beyond max is clamped, not an error */
    assert_int_equal(ztb_buf_reserve(&b, 1000), ZTB_OK);
    assert_int_equal(ztb_buf_error(&b), ZTB_OK);
    assert_true(b.cap <= 101);
    ztb_buf_free(&b);
    /* fixed buffers never allocate */
    char store[8];
    ztb_buf_init_fixed(&b, store, sizeof(store));
    assert_int_equal(ztb_buf_reserve(&b, 3), ZTB_OK);
    assert_ptr_equal(b.data, store);
}

static void test_secret_growth_and_steal(void **state)
{
    (void)state;
    ztb_buf b;
    ztb_buf_init_secret(&b, 1 << 20);
    for (int i = 0; i < 1000; i++)
        assert_int_equal(ztb_buf_append_str(&b, "secret-bytes "), ZTB_OK);
    assert_int_equal(b.len, 13000);
    size_t n = 0;
    char *s = ztb_buf_steal(&b, &n);
    assert_non_null(s);
    assert_int_equal(n, 13000);
    assert_int_equal(strncmp(s, "secret-bytes secret", 19), 0);
    free(s);
    assert_null(b.data);
    /* steal of an empty buffer gives "" */
    s = ztb_buf_steal(&b, &n);
    assert_non_null(s);
    assert_int_equal(n, 0);
    assert_string_equal(s, "");
    free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_append_and_cstr),
        cmocka_unit_test(test_max_is_hard_and_error_sticks),
        cmocka_unit_test(test_size_overflow_refused),
        cmocka_unit_test(test_fixed_never_allocates),
        cmocka_unit_test(test_json_escape_hostile),
        cmocka_unit_test(test_extend_and_truncate),
        cmocka_unit_test(test_reserve),
        cmocka_unit_test(test_secret_growth_and_steal),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
