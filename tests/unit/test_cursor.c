/* test_cursor.c - bounded reads: every failure leaves the cursor unmoved. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/cursor.h"

static void test_reads_in_bounds(void **state)
{
    (void)state;
    const uint8_t in[] = {0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07};
    ztb_cursor c;
    ztb_cursor_init(&c, in, sizeof(in));
    uint8_t b;
    uint16_t w;
    uint32_t d;
    assert_int_equal(ztb_cursor_read_u8(&c, &b), ZTB_OK);
    assert_int_equal(b, 1);
    assert_int_equal(ztb_cursor_read_u16be(&c, &w), ZTB_OK);
    assert_int_equal(w, 0x0203);
    assert_int_equal(ztb_cursor_read_u32be(&c, &d), ZTB_OK);
    assert_int_equal(d, 0x04050607u);
    assert_true(ztb_cursor_eof(&c));
    assert_int_equal(ztb_cursor_remaining(&c), 0);
}

static void test_truncated_reads_do_not_move(void **state)
{
    (void)state;
    const uint8_t in[] = {0xaa, 0xbb, 0xcc};
    ztb_cursor c;
    ztb_cursor_init(&c, in, sizeof(in));
    uint32_t d = 0xdeadbeef;
    assert_int_equal(ztb_cursor_read_u32be(&c, &d), ZTB_ERR_TRUNCATED);
    assert_int_equal(d, 0xdeadbeef);
    assert_int_equal(ztb_cursor_mark(&c), 0);
    uint8_t out[4];
    assert_int_equal(ztb_cursor_read(&c, out, 4), ZTB_ERR_TRUNCATED);
    assert_int_equal(ztb_cursor_skip(&c, 4), ZTB_ERR_TRUNCATED);
    assert_int_equal(ztb_cursor_mark(&c), 0);
    assert_int_equal(ztb_cursor_skip(&c, 3), ZTB_OK);
    uint8_t b;
    assert_int_equal(ztb_cursor_read_u8(&c, &b), ZTB_ERR_TRUNCATED);
    assert_int_equal(ztb_cursor_peek_u8(&c, &b), ZTB_ERR_TRUNCATED);
    uint16_t w;
    assert_int_equal(ztb_cursor_read_u16be(&c, &w), ZTB_ERR_TRUNCATED);
}

/* A length near SIZE_MAX must not wrap pos + n. */
static void test_huge_lengths_cannot_overflow(void **state)
{
    (void)state;
    const uint8_t in[8] = {0};
    ztb_cursor c;
    ztb_cursor_init(&c, in, sizeof(in));
    assert_int_equal(ztb_cursor_skip(&c, 2), ZTB_OK);
    assert_int_equal(ztb_cursor_skip(&c, SIZE_MAX), ZTB_ERR_TRUNCATED);
    assert_int_equal(ztb_cursor_skip(&c, SIZE_MAX - 1), ZTB_ERR_TRUNCATED);
    ztb_span s;
    assert_int_equal(ztb_cursor_take(&c, SIZE_MAX - 1, &s), ZTB_ERR_TRUNCATED);
    assert_int_equal(ztb_cursor_expect(&c, in, SIZE_MAX), ZTB_ERR_MALFORMED);
    assert_int_equal(ztb_cursor_mark(&c), 2);
}

static void test_null_and_empty(void **state)
{
    (void)state;
    ztb_cursor c;
    ztb_cursor_init(&c, NULL, 100); /* NULL data means nothing to read */
    assert_int_equal(ztb_cursor_remaining(&c), 0);
    assert_true(ztb_cursor_eof(&c));
    ztb_span s;
    ztb_cursor_take_rest(&c, &s);
    assert_int_equal(s.len, 0);
    assert_int_equal(ztb_cursor_take_until(&c, '.', &s), ZTB_ERR_NOT_FOUND);
    assert_int_equal(ztb_cursor_read(&c, NULL, 0), ZTB_OK);
    assert_int_equal(ztb_cursor_expect(&c, "", 0), ZTB_OK);
}

/* Splitting a JWS-like string the way the JWS parser does. */
static void test_take_until_splits_segments(void **state)
{
    (void)state;
    const char *tok = "aaa.bb..c";
    ztb_cursor c;
    ztb_cursor_init(&c, tok, strlen(tok));
    ztb_span s;
    assert_int_equal(ztb_cursor_take_until(&c, '.', &s), ZTB_OK);
    assert_true(ztb_span_eq_str(s, "aaa"));
    assert_int_equal(ztb_cursor_take_until(&c, '.', &s), ZTB_OK);
    assert_true(ztb_span_eq_str(s, "bb"));
    assert_int_equal(ztb_cursor_take_until(&c, '.', &s), ZTB_OK);
    assert_int_equal(s.len, 0); /* empty segment is a span of length 0 */
    size_t before = ztb_cursor_mark(&c);
    assert_int_equal(ztb_cursor_take_until(&c, '.', &s), ZTB_ERR_NOT_FOUND);
    assert_int_equal(ztb_cursor_mark(&c), before);
    ztb_cursor_take_rest(&c, &s);
    assert_true(ztb_span_eq_str(s, "c"));
    assert_true(ztb_cursor_eof(&c));
}

/* Embedded NULs are data, not terminators. */
static void test_embedded_nul(void **state)
{
    (void)state;
    const uint8_t in[] = {'a', 0, 'b', '=', 'c'};
    ztb_cursor c;
    ztb_cursor_init(&c, in, sizeof(in));
    ztb_span s;
    assert_int_equal(ztb_cursor_take_until(&c, '=', &s), ZTB_OK);
    assert_int_equal(s.len, 3);
    assert_false(ztb_span_eq_str(s, "a"));
    assert_int_equal(ztb_cursor_expect(&c, "c", 1), ZTB_OK);
    assert_int_equal(ztb_cursor_expect(&c, "c", 1), ZTB_ERR_MALFORMED);
}

static void test_expect_mismatch_does_not_move(void **state)
{
    (void)state;
    const char *in = "HTTP/1.1";
    ztb_cursor c;
    ztb_cursor_init(&c, in, strlen(in));
    assert_int_equal(ztb_cursor_expect(&c, "HTTX", 4), ZTB_ERR_MALFORMED);
    assert_int_equal(ztb_cursor_mark(&c), 0);
    assert_int_equal(ztb_cursor_expect(&c, "HTTP/", 5), ZTB_OK);
    assert_int_equal(ztb_cursor_expect(&c, "1.1+", 4), ZTB_ERR_MALFORMED);
    assert_int_equal(ztb_cursor_mark(&c), 5);
}

/* The helpers parsers use instead of the cursor's fields. */
static void test_peek_ahead_mark_since_unread(void **state)
{
    (void)state;
    const char *in = "ab/cd";
    ztb_cursor c;
    ztb_cursor_init(&c, in, 5);
    assert_int_equal(ztb_cursor_peek(&c), 'a');
    size_t m = ztb_cursor_mark(&c);
    ztb_span a = ztb_cursor_ahead(&c);
    assert_int_equal(a.len, 5);
    assert_ptr_equal(a.ptr, in);
    ztb_span s;
    assert_int_equal(ztb_cursor_take_until(&c, '/', &s), ZTB_OK);
    ztb_span since = ztb_cursor_since(&c, m);
    assert_int_equal(since.len, 3);
    assert_memory_equal(since.ptr, "ab/", 3);
    assert_int_equal(ztb_cursor_unread(&c, 1), ZTB_OK);
    assert_int_equal(ztb_cursor_peek(&c), '/');
    assert_int_equal(ztb_cursor_unread(&c, 3), ZTB_ERR_TRUNCATED); /* only 2 were read */
    assert_int_equal(ztb_cursor_mark(&c), 2);
    assert_int_equal(ztb_cursor_since(&c, 4).len, 0); /* a mark ahead: nothing */
    assert_int_equal(ztb_cursor_skip(&c, 3), ZTB_OK);
    assert_int_equal(ztb_cursor_peek(&c), -1);
    assert_int_equal(ztb_cursor_ahead(&c).len, 0);
    ztb_cursor_init(&c, NULL, 0);
    assert_int_equal(ztb_cursor_peek(&c), -1);
    assert_null(ztb_cursor_ahead(&c).ptr);
    assert_int_equal(ztb_cursor_since(&c, 0).len, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reads_in_bounds),
        cmocka_unit_test(test_truncated_reads_do_not_move),
        cmocka_unit_test(test_huge_lengths_cannot_overflow),
        cmocka_unit_test(test_null_and_empty),
        cmocka_unit_test(test_take_until_splits_segments),
        cmocka_unit_test(test_embedded_nul),
        cmocka_unit_test(test_expect_mismatch_does_not_move),
        cmocka_unit_test(test_peek_ahead_mark_since_unread),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
