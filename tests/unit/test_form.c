/* test_form.c - strict form parsing, including every hostile shape. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "broker/http/form.h"

static const char *const allowed[] = {"grant_type",       "scope", "audience", "resource",
                                      "client_assertion", "flag",  NULL};

static ztb_err parse(struct form *f, const char *s)
{
    return form_parse(f, (const uint8_t *)s, strlen(s), allowed);
}

static void test_decodes(void **state)
{
    (void)state;
    struct form f;
    assert_int_equal(parse(&f, "grant_type=urn%3Aietf%3aparams&scope=payments:refund+now"
                               "&resource=a=b&flag"),
                     ZTB_OK);
    assert_int_equal(f.n, 4);
    assert_string_equal(form_get(&f, "grant_type"), "urn:ietf:params");
    assert_string_equal(form_get(&f, "scope"), "payments:refund now");
    assert_string_equal(form_get(&f, "resource"), "a=b");
    assert_string_equal(form_get(&f, "flag"), "");
    assert_null(form_get(&f, "audience"));
    form_free(&f);
    assert_int_equal(parse(&f, ""), ZTB_OK);
    assert_int_equal(f.n, 0);
    form_free(&f);
    assert_int_equal(parse(&f, "audience=%E2%82%AC"), ZTB_OK); /* UTF-8 passes through */
    assert_string_equal(form_get(&f, "audience"), "\xe2\x82\xac");
    form_free(&f);
}

static void test_rejects(void **state)
{
    (void)state;
    struct {
        const char *body;
        ztb_err want;
        const char *bad;
    } cases[] = {
        {"scope=a&scope=b", ZTB_ERR_EXISTS, "scope"},
        {"scope=a&sc%6Fpe=b", ZTB_ERR_EXISTS, "scope"}, /* repeat hidden by escaping */
        {"scope=a&evil=1", ZTB_ERR_MALFORMED, "evil"},
        {"scope=%", ZTB_ERR_MALFORMED, ""},
        {"scope=%4", ZTB_ERR_MALFORMED, ""},
        {"scope=%zz", ZTB_ERR_MALFORMED, ""},
        {"scope=%00", ZTB_ERR_MALFORMED, ""},
        {"=x", ZTB_ERR_MALFORMED, ""},
        {"scope=a&&audience=b", ZTB_ERR_MALFORMED, ""},
        {"scope=a&", ZTB_ERR_MALFORMED, ""},
        {"&", ZTB_ERR_MALFORMED, ""},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct form f;
        ztb_err rv = parse(&f, cases[i].body);
        if (rv != cases[i].want)
            fail_msg("case '%s': got %s", cases[i].body, ztb_err_name(rv));
        assert_string_equal(f.bad_name, cases[i].bad);
        assert_null(f.buf); /* nothing left to free */
    }
    /* a raw NUL inside the body */
    struct form f;
    assert_int_equal(form_parse(&f, (const uint8_t *)"scope=a\0b", 9, allowed), ZTB_ERR_MALFORMED);
}

/* Malformed UTF-8 after percent-decoding is a malformed request (400
 * invalid_request), never a name that policy then fails to match. */
static void test_rejects_malformed_utf8(void **state)
{
    (void)state;
    static const struct {
        const char *body;
        const char *bad;
    } cases[] = {
        {"scope=%C3%28", "scope"},                  /* a lead byte, then ASCII */
        {"audience=%FF", "audience"},               /* never valid */
        {"resource=a%C3", "resource"},              /* truncated at the end */
        {"resource=%C0%AF", "resource"},            /* overlong '/' */
        {"audience=%ED%A0%80", "audience"},         /* a UTF-16 surrogate */
        {"audience=%F4%90%80%80", "audience"},      /* above U+10FFFF */
        {"scope=a:b&audience=x%E2%82", "audience"}, /* the second one */
        {"grant_type=x&resource=\xff", "resource"}, /* raw, not escaped */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct form f;
        ztb_err rv = parse(&f, cases[i].body);
        if (rv != ZTB_ERR_MALFORMED)
            fail_msg("case '%s': got %s", cases[i].body, ztb_err_name(rv));
        assert_string_equal(f.bad_name, cases[i].bad);
        assert_null(f.buf);
        char want[96];
        snprintf(want, sizeof(want), "parameter '%s' is not valid UTF-8", cases[i].bad);
        assert_string_equal(form_error(&f), want);
    }
    /* a name that is not UTF-8 is refused without being echoed */
    struct form f;
    assert_int_equal(parse(&f, "sc%FFope=a"), ZTB_ERR_MALFORMED);
    assert_string_equal(f.bad_name, "");
    assert_string_equal(form_error(&f), "a parameter name is not valid UTF-8");
    /* valid multi-byte text still passes */
    assert_int_equal(parse(&f, "resource=%F0%9F%94%91%E2%82%AC%C3%A9"), ZTB_OK);
    assert_string_equal(form_get(&f, "resource"), "\xf0\x9f\x94\x91\xe2\x82\xac\xc3\xa9");
    form_free(&f);
}

/* Every error has a description that names the parameter and the fix. */
static void test_error_text(void **state)
{
    (void)state;
    struct form f;
    assert_int_equal(parse(&f, "scope=a&scope=b"), ZTB_ERR_EXISTS);
    assert_string_equal(form_error(&f), "parameter 'scope' given more than once");
    assert_int_equal(parse(&f, "evil=1"), ZTB_ERR_MALFORMED);
    assert_string_equal(form_error(&f), "unknown parameter 'evil'");
    assert_int_equal(parse(&f, "scope=%zz"), ZTB_ERR_MALFORMED);
    assert_string_equal(form_error(&f), "malformed form encoding");
    char body[2048] = "";
    for (int i = 0; i < FORM_MAX_PARAMS + 1; i++) {
        char p[32];
        snprintf(p, sizeof(p), "%sp%d=v", i ? "&" : "", i);
        strcat(body, p);
    }
    assert_int_equal(form_parse(&f, (const uint8_t *)body, strlen(body), NULL), ZTB_ERR_TOO_LARGE);
    assert_string_equal(form_error(&f), "more than 24 parameters");
}

static void test_limits(void **state)
{
    (void)state;
    char body[2048] = "";
    for (int i = 0; i < FORM_MAX_PARAMS + 1; i++) {
        char p[32];
        snprintf(p, sizeof(p), "%sp%d=v", i ? "&" : "", i);
        strcat(body, p);
    }
    struct form f;
    assert_int_equal(form_parse(&f, (const uint8_t *)body, strlen(body), NULL), ZTB_ERR_TOO_LARGE);
    /* exactly the maximum is fine */
    *strrchr(body, '&') = '\0';
    assert_int_equal(form_parse(&f, (const uint8_t *)body, strlen(body), NULL), ZTB_OK);
    assert_int_equal(f.n, FORM_MAX_PARAMS);
    form_free(&f);
    /* a long value decodes whole */
    size_t n = 12000;
    char *big = malloc(n + 8);
    memcpy(big, "scope=", 6);
    for (size_t i = 6; i < n; i += 3)
        memcpy(big + i, "%41", 3);
    big[n] = '\0';
    assert_int_equal(form_parse(&f, (const uint8_t *)big, strlen(big), allowed), ZTB_OK);
    assert_int_equal(f.p[0].value_len, (n - 6) / 3);
    form_free(&f);
    free(big);
    assert_int_equal(form_parse(&f, NULL, 3, allowed), ZTB_ERR_INVALID_ARG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decodes),
        cmocka_unit_test(test_rejects),
        cmocka_unit_test(test_rejects_malformed_utf8),
        cmocka_unit_test(test_error_text),
        cmocka_unit_test(test_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
