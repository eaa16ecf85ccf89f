/* test_json_reader.c - the strict pull reader (common/json_reader.c): what it accepts,
 * refuses and limits, and how it names a refusal. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "common/json_reader.h"

/* Skip one whole value and require the end: the verdict on a document. */
static ztb_err whole(const char *s)
{
    struct jr r;
    jr_init(&r, s, strlen(s));
    ztb_err rv = jr_skip(&r);
    return rv != ZTB_OK ? rv : jr_finish(&r);
}

static void test_accepts_valid_json(void **state)
{
    (void)state;
    const char *ok[] = {"{}",
                        "[]",
                        " {\"a\":1} ",
                        "{\"a\":[1,2,{\"b\":null}],\"c\":true}",
                        "\"x\"",
                        "-0",
                        "1.5e-3",
                        "[\"\\u00e9\\ud83d\\ude00\"]",
                        "{\"\\/\":false}",
                        "\"caf\xc3\xa9\""};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
        assert_int_equal(whole(ok[i]), ZTB_OK);
}

static void test_refuses_invalid_json(void **state)
{
    (void)state;
    const char *bad[] = {"",
                         "{",
                         "{\"a\"}",
                         "{\"a\":}",
                         "[1,]",
                         "{\"a\":1,}",
                         "[1 2]",
                         "01",
                         "1.",
                         "1e",
                         "+1",
                         "\"\\x\"",
                         "\"a\nb\"",
                         "\"\\u0000\"",
                         "\"\\ud800\"",
                         "\"\\udc00x\"",
                         "\"\xc0\xaf\"",
                         "\"\xed\xa0\x80\"",
                         "tru",
                         "nul",
                         "{} {}",
                         "{'a':1}",
                         "[,1]",
                         "{,}",
                         "\"abc",
                         "{\"a\":1 \"b\":2}"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ztb_err rv = whole(bad[i]);
        assert_int_not_equal(rv, ZTB_OK);
    }
}

static void test_duplicate_names_after_unescaping(void **state)
{
    (void)state;
    assert_int_equal(whole("{\"a\":1,\"a\":2}"), ZTB_ERR_JSON);
    assert_int_equal(whole("{\"alg\":1,\"\\u0061lg\":2}"), ZTB_ERR_JSON);
    /* the same name at different levels is fine */
    assert_int_equal(whole("{\"a\":{\"a\":1},\"b\":{\"a\":2}}"), ZTB_OK);
}

static void test_limits(void **state)
{
    (void)state;
    char deep[64] = "";
    for (int i = 0; i <= JR_DEPTH; i++)
        strcat(deep, "[");
    assert_int_equal(whole(deep), ZTB_ERR_TOO_LARGE);
    char name[JR_NAME_MAX + 16];
    memset(name, 'n', sizeof(name));
    name[0] = '{';
    name[1] = '"';
    strcpy(name + JR_NAME_MAX + 3, "\":1}");
    assert_int_equal(whole(name), ZTB_ERR_TOO_LARGE);
    /* many names in one object */
    char big[JR_NAMES * 12 + 16];
    size_t o = 0;
    big[o++] = '{';
    for (int i = 0; i <= JR_NAMES; i++)
        o += (size_t)snprintf(big + o, sizeof(big) - o, "%s\"k%d\":1", i ? "," : "", i);
    big[o++] = '}';
    big[o] = '\0';
    assert_int_equal(whole(big), ZTB_ERR_TOO_LARGE);
}

/*
 * Member names that fill the name arena exactly (32 names of 127 bytes, each
 * with its NUL), then one more: the reader must refuse it, not unescape it
 * past the arena. The reader sits in a larger block with a canary behind it,
 * so the test sees an overflow without ASan too.
 */
static void test_names_fill_arena_exactly(void **state)
{
    (void)state;
    enum { NAME = 127, FILL = JR_ARENA / (NAME + 1) };
    static char doc[JR_ARENA + 512];
    size_t o = 0;
    doc[o++] = '{';
    for (int i = 0; i < FILL; i++) {
        o += (size_t)snprintf(doc + o, sizeof(doc) - o, "%s\"%03d", i ? "," : "", i);
        memset(doc + o, 'n', NAME - 3);
        o += NAME - 3;
        o += (size_t)snprintf(doc + o, sizeof(doc) - o, "\":0");
    }
    o += (size_t)snprintf(doc + o, sizeof(doc) - o, ",\"");
    memset(doc + o, 'Z', 100);
    o += 100;
    o += (size_t)snprintf(doc + o, sizeof(doc) - o, "\":0}");
    static struct {
        struct jr r;
        uint8_t canary[JR_NAME_MAX + 64];
    } block;
    memset(block.canary, 0xa5, sizeof(block.canary));
    jr_init(&block.r, doc, o);
    assert_int_equal(jr_enter_object(&block.r), ZTB_OK);
    ztb_span name;
    int more = 0;
    for (int i = 0; i < FILL; i++) {
        assert_int_equal(jr_next_member(&block.r, &name, &more), ZTB_OK);
        assert_int_equal(more, 1);
        assert_int_equal(name.len, NAME);
        assert_int_equal(jr_skip(&block.r), ZTB_OK);
    }
    assert_int_equal(block.r.arena_len, JR_ARENA); /* full to the last byte */
    ztb_err rv = jr_next_member(&block.r, &name, &more);
    for (size_t i = 0; i < sizeof(block.canary); i++)
        if (block.canary[i] != 0xa5)
            fail_msg("the reader wrote past its name arena (byte %zu behind it)", i);
    assert_int_equal(rv, ZTB_ERR_TOO_LARGE);
    /* the whole document, as the fuzz corpus has it */
    assert_int_equal(whole(doc), ZTB_ERR_TOO_LARGE);
    /* one byte less in the last name of the fill: an empty name still fits */
    struct jr r;
    const char *empty_ok = "{\"\":0}";
    jr_init(&r, empty_ok, strlen(empty_ok));
    assert_int_equal(jr_skip(&r), ZTB_OK);
}

static void test_typed_reads(void **state)
{
    (void)state;
    const char *doc = "{\"s\":\"h\\u00e9\\n\",\"i\":-42,\"big\":9223372036854775807,"
                      "\"min\":-9223372036854775808,\"f\":2.5,\"t\":true,\"o\":{\"x\":[1]}}";
    struct jr r;
    jr_init(&r, doc, strlen(doc));
    assert_int_equal(jr_enter_object(&r), ZTB_OK);
    ztb_span name;
    int more;
    char s[16];
    size_t sl;
    int64_t i;
    double d;
    int b;
    assert_int_equal(jr_next_member(&r, &name, &more), ZTB_OK);
    assert_true(more && ztb_span_eq_str(name, "s"));
    assert_int_equal(jr_read_string(&r, s, sizeof(s), &sl), ZTB_OK);
    assert_int_equal(sl, 4);
    assert_string_equal(s, "h\xc3\xa9\n");
    assert_int_equal(jr_next_member(&r, &name, &more), ZTB_OK);
    assert_int_equal(jr_read_int(&r, &i), ZTB_OK);
    assert_int_equal(i, -42);
    assert_int_equal(jr_next_member(&r, &name, &more), ZTB_OK);
    assert_int_equal(jr_read_int(&r, &i), ZTB_OK);
    assert_true(i == INT64_MAX);
    assert_int_equal(jr_next_member(&r, &name, &more), ZTB_OK);
    assert_int_equal(jr_read_int(&r, &i), ZTB_OK);
    assert_true(i == INT64_MIN);
    assert_int_equal(jr_next_member(&r, &name, &more), ZTB_OK);
    assert_int_equal(jr_peek(&r), JR_NUMBER);
    assert_int_equal(jr_read_number(&r, &d), ZTB_OK);
    assert_true(d == 2.5);
    assert_int_equal(jr_next_member(&r, &name, &more), ZTB_OK);
    assert_int_equal(jr_read_bool(&r, &b), ZTB_OK);
    assert_true(b);
    assert_int_equal(jr_next_member(&r, &name, &more), ZTB_OK);
    ztb_span raw;
    assert_int_equal(jr_raw(&r, &raw), ZTB_OK);
    assert_int_equal(raw.len, strlen("{\"x\":[1]}"));
    assert_memory_equal(raw.ptr, "{\"x\":[1]}", raw.len);
    assert_int_equal(jr_next_member(&r, &name, &more), ZTB_OK);
    assert_false(more);
    assert_int_equal(jr_finish(&r), ZTB_OK);
}

static void test_type_and_range_errors(void **state)
{
    (void)state;
    struct jr r;
    int64_t i;
    char s[4];
    jr_init(&r, "1.5", 3);
    assert_int_equal(jr_read_int(&r, &i), ZTB_ERR_MALFORMED);
    jr_init(&r, "9223372036854775808", 19);
    assert_int_equal(jr_read_int(&r, &i), ZTB_ERR_MALFORMED);
    jr_init(&r, "\"abc\"", 5);
    assert_int_equal(jr_read_int(&r, &i), ZTB_ERR_JSON);
    jr_init(&r, "\"abcd\"", 6);
    assert_int_equal(jr_read_string(&r, s, sizeof(s), NULL), ZTB_ERR_TOO_LARGE);
    jr_init(&r, "3", 1);
    assert_int_equal(jr_read_string(&r, s, sizeof(s), NULL), ZTB_ERR_JSON);
    /* not NUL-terminated input is read only within its length */
    const char buf[] = {'[', '1', ']', '9'};
    jr_init(&r, buf, 3);
    assert_int_equal(jr_skip(&r), ZTB_OK);
    assert_int_equal(jr_finish(&r), ZTB_OK);
}

/* Each strictness rule, and the words a refusal names it with. */
static void why_of(const char *s, ztb_err want, const char *why)
{
    struct jr r;
    jr_init(&r, s, strlen(s));
    ztb_err rv = jr_skip(&r);
    if (rv == ZTB_OK)
        rv = jr_finish(&r);
    if (rv != want || strstr(jr_why(&r), why) == NULL)
        fail_msg("%s: got %d \"%s\", want %d \"%s\"", s, rv, jr_why(&r), want, why);
}

static void test_refusals_name_the_problem(void **state)
{
    (void)state;
    why_of("{\"a\":1,\"\\u0061\":2}", ZTB_ERR_JSON, "duplicate member name");
    why_of("{\"a\\u00e9\":1,\"a\xc3\xa9\":2}", ZTB_ERR_JSON, "duplicate member name");
    why_of("\"\\ud800\"", ZTB_ERR_JSON, "lone UTF-16 surrogate");
    why_of("\"\\ud800\\u0041\"", ZTB_ERR_JSON, "lone UTF-16 surrogate");
    why_of("\"\\udfff\"", ZTB_ERR_JSON, "lone UTF-16 surrogate");
    why_of("\"\\u0000\"", ZTB_ERR_JSON, "\\u0000");
    why_of("{\"\\u0000\":1}", ZTB_ERR_JSON, "\\u0000");
    why_of("\"\xc0\xaf\"", ZTB_ERR_JSON, "invalid UTF-8");         /* overlong '/' */
    why_of("\"\xe0\x80\xaf\"", ZTB_ERR_JSON, "invalid UTF-8");     /* overlong, 3 bytes */
    why_of("\"\xf0\x80\x80\xaf\"", ZTB_ERR_JSON, "invalid UTF-8"); /* overlong, 4 bytes */
    why_of("\"\xed\xa0\x80\"", ZTB_ERR_JSON, "invalid UTF-8");     /* a surrogate, encoded */
    why_of("\"\xf4\x90\x80\x80\"", ZTB_ERR_JSON, "invalid UTF-8"); /* above U+10FFFF */
    why_of("\"\xe2\x82\"", ZTB_ERR_JSON, "invalid UTF-8");         /* truncated */
    why_of("\"a\tb\"", ZTB_ERR_JSON, "raw control character");
    why_of("\"\\q\"", ZTB_ERR_JSON, "invalid escape");
    why_of("\"\\u12\"", ZTB_ERR_JSON, "\\u escape");
    why_of("\"abc", ZTB_ERR_JSON, "unterminated string");
    why_of("{} x", ZTB_ERR_JSON, "trailing bytes");
    why_of("[1] [2]", ZTB_ERR_JSON, "trailing bytes");
    why_of("01", ZTB_ERR_JSON, "trailing bytes"); /* "0", then "1" */
    why_of("1.", ZTB_ERR_JSON, "no digit after the point");
    why_of("1e", ZTB_ERR_JSON, "no digit in the exponent");
    why_of("1e+", ZTB_ERR_JSON, "no digit in the exponent");
    why_of("-", ZTB_ERR_JSON, "invalid number");
    why_of("-a", ZTB_ERR_JSON, "invalid number");
    why_of(".5", ZTB_ERR_JSON, "expected a value");
    why_of("+1", ZTB_ERR_JSON, "expected a value");
    why_of("", ZTB_ERR_JSON, "a value is missing");
    why_of("[1 2]", ZTB_ERR_JSON, "expected ',' or ']'");
    why_of("{\"a\":1 \"b\":2}", ZTB_ERR_JSON, "expected ',' or '}'");
    why_of("{\"a\" 1}", ZTB_ERR_JSON, "expected ':'");
    why_of("{1:2}", ZTB_ERR_JSON, "expected a member name");
    why_of("nul", ZTB_ERR_JSON, "invalid literal");
    why_of("[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]", ZTB_ERR_TOO_LARGE, "nested too deeply");
    /* numbers the grammar allows */
    why_of("[-0,0.5,1e5,1E-5,-1.25e+10,123456789012345678901234567890]", ZTB_OK, "invalid JSON");
    /* the offset of the problem */
    struct jr r;
    jr_init(&r, "[1,2,,3]", 8);
    assert_int_not_equal(jr_skip(&r), ZTB_OK);
    assert_int_equal(jr_where(&r), 5);
}

/* Tighter limits, as pki/jws_header.c runs the reader. */
static void test_init_limits(void **state)
{
    (void)state;
    struct jr r;
    jr_init_limits(&r, "[[[1]]]", 7, 2, JR_NAMES, JR_NAME_MAX);
    assert_int_equal(jr_skip(&r), ZTB_ERR_TOO_LARGE);
    jr_init_limits(&r, "[[1]]", 5, 2, JR_NAMES, JR_NAME_MAX);
    assert_int_equal(jr_skip(&r), ZTB_OK);
    jr_init_limits(&r, "{\"a\":1,\"b\":2,\"c\":3}", 19, JR_DEPTH, 2, JR_NAME_MAX);
    assert_int_equal(jr_skip(&r), ZTB_ERR_TOO_LARGE);
    assert_string_equal(jr_why(&r), "too many member names");
    jr_init_limits(&r, "{\"abcd\":1}", 10, JR_DEPTH, JR_NAMES, 3);
    assert_int_equal(jr_skip(&r), ZTB_ERR_TOO_LARGE);
    assert_string_equal(jr_why(&r), "member name too long");
    /* a larger name limit than the default, up to the arena */
    char doc[600];
    int o = snprintf(doc, sizeof(doc), "{\"");
    memset(doc + o, 'n', 500);
    snprintf(doc + o + 500, sizeof(doc) - (size_t)o - 500, "\":1}");
    jr_init(&r, doc, strlen(doc));
    assert_int_equal(jr_skip(&r), ZTB_ERR_TOO_LARGE);
    jr_init_limits(&r, doc, strlen(doc), JR_DEPTH, JR_NAMES, 100000); /* clamped */
    assert_int_equal(jr_skip(&r), ZTB_OK);
}

/* jr_mark / jr_since give back the exact input bytes of what was read. */
static void test_mark_and_since(void **state)
{
    (void)state;
    const char *doc = "{\"a\":  {\"b\":[1, 2]} , \"c\":1}";
    struct jr r;
    jr_init(&r, doc, strlen(doc));
    ztb_span name;
    int more;
    assert_int_equal(jr_enter_object(&r), ZTB_OK);
    assert_int_equal(jr_next_member(&r, &name, &more), ZTB_OK);
    size_t m = jr_mark(&r);
    assert_int_equal(jr_skip(&r), ZTB_OK);
    ztb_span raw = jr_since(&r, m);
    assert_int_equal(raw.len, strlen("{\"b\":[1, 2]}"));
    assert_memory_equal(raw.ptr, "{\"b\":[1, 2]}", raw.len);
    /* a mark ahead of the position gives nothing */
    raw = jr_since(&r, strlen(doc) + 1);
    assert_int_equal(raw.len, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accepts_valid_json),
        cmocka_unit_test(test_refuses_invalid_json),
        cmocka_unit_test(test_duplicate_names_after_unescaping),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_names_fill_arena_exactly),
        cmocka_unit_test(test_typed_reads),
        cmocka_unit_test(test_type_and_range_errors),
        cmocka_unit_test(test_refusals_name_the_problem),
        cmocka_unit_test(test_init_limits),
        cmocka_unit_test(test_mark_and_since),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
