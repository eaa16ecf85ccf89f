/* test_utf8.c - strict UTF-8: every invalid form refused, controls spotted. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/utf8.h"

#define V(s) ztb_utf8_valid((s), sizeof(s) - 1)
#define P(s) ztb_utf8_printable((s), sizeof(s) - 1)

static void test_valid_forms(void **state)
{
    (void)state;
    assert_true(V(""));
    assert_true(V("plain ascii that is longer than eight bytes"));
    assert_true(V("caf\xc3\xa9"));      /* U+00E9 */
    assert_true(V("\xe2\x82\xac"));     /* U+20AC */
    assert_true(V("\xf0\x9f\x94\x91")); /* U+1F511 */
    assert_true(V("\xf4\x8f\xbf\xbf")); /* U+10FFFF, the last one */
    assert_true(V("\xed\x9f\xbf"));     /* U+D7FF, just below surrogates */
    assert_true(V("\xee\x80\x80"));     /* U+E000, just above */
    assert_true(ztb_utf8_valid(NULL, 0));
    assert_false(ztb_utf8_valid(NULL, 1));
}

static void test_invalid_forms(void **state)
{
    (void)state;
    assert_false(V("\x80"));             /* lone continuation */
    assert_false(V("\xc3"));             /* truncated */
    assert_false(V("abc\xe2\x82"));      /* truncated at the end */
    assert_false(V("\xc0\xaf"));         /* overlong '/' */
    assert_false(V("\xc1\xbf"));         /* overlong */
    assert_false(V("\xe0\x80\xaf"));     /* overlong 3-byte */
    assert_false(V("\xf0\x80\x80\xaf")); /* overlong 4-byte */
    assert_false(V("\xed\xa0\x80"));     /* U+D800 surrogate */
    assert_false(V("\xed\xbf\xbf"));     /* U+DFFF surrogate */
    assert_false(V("\xf4\x90\x80\x80")); /* U+110000 */
    assert_false(V("\xf5\x80\x80\x80"));
    assert_false(V("\xff"));
    assert_false(V("\xc3\x28"));             /* bad continuation */
    assert_false(V("12345678\xe2\x28\xa1")); /* after the 8-byte fast path */
}

static void test_printable(void **state)
{
    (void)state;
    assert_true(P("orders/1234"));
    assert_true(P("r\xc3\xa9sum\xc3\xa9 \xf0\x9f\x94\x91 ~"));
    assert_false(P("a\nb"));
    assert_false(P("tab\there"));
    assert_false(P("del\x7f"));
    assert_false(P("0123456789abcdef\x1b[31m")); /* escape after a fast run */
    assert_false(P("c1\xc2\x85"));               /* U+0085 NEL */
    assert_false(P("c1\xc2\x9f"));
    assert_true(P("nbsp\xc2\xa0"));
    assert_false(ztb_utf8_printable("a\0b", 3));
    assert_true(ztb_utf8_valid("a\0b", 3)); /* NUL is valid UTF-8, not printable */
    assert_false(P("\xc3"));
}

/* Each control byte at each position of a long run: the word trick must not miss it. */
static void test_controls_at_every_offset(void **state)
{
    (void)state;
    char s[40];
    for (int pos = 0; pos < 32; pos++) {
        for (int c = 0; c < 0x80; c++) {
            memset(s, 'a', sizeof(s));
            s[pos] = (char)c;
            int want = c >= 0x20 && c != 0x7f;
            assert_int_equal(ztb_utf8_printable(s, 32), want);
            assert_true(ztb_utf8_valid(s, 32));
        }
    }
}

/* The codec the JSON reader uses: decode what encode wrote, at every length. */
static void test_decode_encode(void **state)
{
    (void)state;
    const uint32_t cps[] = {0x0,    0x41,   0x7f,   0x80,   0x7ff,   0x800,
                            0xd7ff, 0xe000, 0xfffd, 0xffff, 0x10000, 0x10ffff};
    const size_t lens[] = {1, 1, 1, 2, 2, 3, 3, 3, 3, 3, 4, 4};
    for (size_t i = 0; i < sizeof(cps) / sizeof(cps[0]); i++) {
        uint8_t b[4];
        size_t n = ztb_utf8_encode(cps[i], b);
        assert_int_equal(n, lens[i]);
        uint32_t cp = 0xffffffff;
        assert_int_equal(ztb_utf8_decode(b, n, &cp), n);
        assert_int_equal(cp, cps[i]);
        if (n > 1)
            assert_int_equal(ztb_utf8_decode(b, n - 1, &cp), 0); /* truncated */
    }
    uint32_t cp;
    assert_int_equal(ztb_utf8_decode((const uint8_t *)"\xc0\xaf", 2, &cp), 0);
    assert_int_equal(ztb_utf8_decode((const uint8_t *)"\xed\xa0\x80", 3, &cp), 0);
    assert_int_equal(ztb_utf8_decode((const uint8_t *)"\x80", 1, &cp), 0);
    assert_int_equal(ztb_utf8_decode((const uint8_t *)"\xf4\x90\x80\x80", 4, &cp), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_forms),   cmocka_unit_test(test_invalid_forms),
        cmocka_unit_test(test_printable),     cmocka_unit_test(test_controls_at_every_offset),
        cmocka_unit_test(test_decode_encode),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
