/* test_assertion.c - a client assertion's claims read strictly (broker/auth/assertion.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "broker/auth/assertion.h"

static ztb_err rd(const char *s, struct assertion_claims *c, const char **why)
{
    return assertion_claims_read(s, strlen(s), c, why);
}

static void test_reads_the_claims(void **state)
{
    (void)state;
    struct assertion_claims c;
    const char *doc = "{\"iss\":\"spiffe://td/agent/a\",\"sub\":\"spiffe://td/agent/a\","
                      "\"aud\":\"https://b/v1/token\",\"iat\":100,\"exp\":160,"
                      "\"jti\":\"0123456789abcdef\",\"extra\":{\"x\":[1,2]}}";
    assert_int_equal(rd(doc, &c, NULL), ZTB_OK);
    assert_true(c.has_iss && c.has_sub && c.has_aud && c.has_iat && c.has_exp && c.has_jti);
    assert_string_equal(c.iss, "spiffe://td/agent/a");
    assert_int_equal(c.naud, 1);
    assert_string_equal(c.aud[0], "https://b/v1/token");
    assert_int_equal(c.iat, 100);
    assert_int_equal(c.exp, 160);
    assert_false(c.nbf_member || c.has_nbf);
    assert_string_equal(c.jti, "0123456789abcdef");
    /* aud as an array of one to four strings (RFC 7519 4.1.3) */
    assert_int_equal(rd("{\"aud\":[\"x\"]}", &c, NULL), ZTB_OK);
    assert_true(c.has_aud);
    assert_int_equal(c.naud, 1);
    assert_string_equal(c.aud[0], "x");
    assert_int_equal(rd("{\"aud\":[\"x\",\"y\",\"z\",\"w\"]}", &c, NULL), ZTB_OK);
    assert_true(c.has_aud);
    assert_int_equal(c.naud, 4);
    assert_string_equal(c.aud[1], "y");
    assert_string_equal(c.aud[3], "w");
    /* nbf, when there */
    assert_int_equal(rd("{\"nbf\":120}", &c, NULL), ZTB_OK);
    assert_true(c.nbf_member && c.has_nbf);
    assert_int_equal(c.nbf, 120);
}

static void test_wrong_types_are_absent(void **state)
{
    (void)state;
    struct assertion_claims c;
    assert_int_equal(rd("{\"iss\":1,\"sub\":null,\"aud\":[\"x\",2],\"iat\":1.5,"
                        "\"exp\":1e3,\"jti\":[\"j\"]}",
                        &c, NULL),
                     ZTB_OK);
    assert_false(c.has_iss || c.has_sub || c.has_aud || c.has_iat || c.has_exp || c.has_jti);
    /* an nbf of another type is absent, but known to have been there */
    assert_int_equal(rd("{\"nbf\":\"120\"}", &c, NULL), ZTB_OK);
    assert_true(c.nbf_member);
    assert_false(c.has_nbf);
    assert_int_equal(rd("{\"aud\":[1],\"exp\":99999999999999999999}", &c, NULL), ZTB_OK);
    assert_false(c.has_aud || c.has_exp);
    /* an empty array, or more than four values, is no audience at all */
    assert_int_equal(rd("{\"aud\":[]}", &c, NULL), ZTB_OK);
    assert_false(c.has_aud);
    assert_int_equal(rd("{\"aud\":[\"a\",\"b\",\"c\",\"d\",\"e\"]}", &c, NULL), ZTB_OK);
    assert_false(c.has_aud);
    assert_int_equal(c.naud, 0);
    /* a jti too long to be acceptable is absent, not an error */
    char doc[400];
    snprintf(doc, sizeof(doc), "{\"jti\":\"%0200d\"}", 0);
    assert_int_equal(rd(doc, &c, NULL), ZTB_OK);
    assert_false(c.has_jti);
}

static void test_refuses_what_is_not_strict_json(void **state)
{
    (void)state;
    struct assertion_claims c;
    const char *why = NULL;
    assert_int_equal(rd("{\"iss\":\"a\",\"\\u0069ss\":\"b\"}", &c, &why), ZTB_ERR_JSON);
    assert_string_equal(why, "duplicate member name");
    assert_false(c.has_iss); /* nothing half-read survives */
    assert_int_equal(rd("{\"iss\":\"\\ud800\"}", &c, &why), ZTB_ERR_JSON);
    assert_non_null(strstr(why, "surrogate"));
    assert_int_equal(rd("{\"iss\":\"a\"} x", &c, &why), ZTB_ERR_JSON);
    assert_string_equal(why, "trailing bytes after the value");
    assert_int_equal(rd("[1]", &c, &why), ZTB_ERR_JSON);
    assert_int_equal(rd("{\"iss\":\"\xc0\xaf\"}", &c, &why), ZTB_ERR_JSON);
    assert_string_equal(why, "invalid UTF-8 in a string");
    char deep[128] = "{\"x\":";
    for (int i = 0; i < 40; i++)
        strcat(deep, "[");
    assert_int_equal(rd(deep, &c, &why), ZTB_ERR_TOO_LARGE);
    assert_string_equal(why, "nested too deeply");
    assert_int_equal(assertion_claims_read(NULL, 1, &c, NULL), ZTB_ERR_INVALID_ARG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reads_the_claims),
        cmocka_unit_test(test_wrong_types_are_absent),
        cmocka_unit_test(test_refuses_what_is_not_strict_json),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
