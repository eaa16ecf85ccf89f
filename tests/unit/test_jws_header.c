/*
 * test_jws_header.c - the strict JOSE header parser on its own: what it
 * reports, the JSON it accepts (escapes, Unicode, numbers, nesting) and
 * every kind of input it refuses, with the error each gets.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "common/base64url.h"
#include "pki/jws_header.h"

static ztb_jws_header h;

static ztb_err parse(const char *s)
{
    return ztb_jws_header_parse(s, strlen(s), &h);
}

static void expect(const char *s, ztb_err want)
{
    ztb_err got = parse(s);
    if (got != want)
        fail_msg("%s: got %s, want %s", s, ztb_err_name(got), ztb_err_name(want));
}

static void test_reports_fields(void **state)
{
    (void)state;
    assert_int_equal(parse("{\"alg\":\"ES256\",\"typ\":\"at+jwt\",\"kid\":\"abc\"}"), ZTB_OK);
    assert_int_equal(h.alg, ZTB_ALG_ES256);
    assert_string_equal(h.alg_name, "ES256");
    assert_true(h.has_kid);
    assert_string_equal(h.kid, "abc");
    assert_int_equal(h.kid_len, 3);
    assert_true(ztb_jws_header_typ_is(&h, "at+jwt"));
    assert_false(ztb_jws_header_typ_is(&h, "at+jw"));
    assert_int_equal(h.present, 0);

    /* unknown algorithms are reported by name, as ZTB_ALG_NONE */
    assert_int_equal(parse("{\"alg\":\"HS256\"}"), ZTB_OK);
    assert_int_equal(h.alg, ZTB_ALG_NONE);
    assert_string_equal(h.alg_name, "HS256");
    assert_false(h.has_kid);
    assert_false(h.has_typ);
    /* an alg too long to be known is still present */
    assert_int_equal(parse("{\"alg\":\"ES256ES256ES256ES256\"}"), ZTB_OK);
    assert_int_equal(h.alg, ZTB_ALG_NONE);

    /* members that verifiers refuse are reported; the jwk value is located */
    const char *j = "{\"alg\":\"ES256\", \"jwk\" : {\"kty\":\"EC\",\"x\":[1,2]} ,"
                    "\"jku\":1,\"x5u\":null,\"x5c\":[],\"crit\":[\"a\"]}";
    assert_int_equal(parse(j), ZTB_OK);
    assert_int_equal(h.present, ZTB_JWS_HDR_JWK | ZTB_JWS_HDR_JKU | ZTB_JWS_HDR_X5U |
                                    ZTB_JWS_HDR_X5C | ZTB_JWS_HDR_CRIT);
    assert_int_equal(h.jwk_len, strlen("{\"kty\":\"EC\",\"x\":[1,2]}"));
    assert_memory_equal(h.raw + h.jwk_off, "{\"kty\":\"EC\",\"x\":[1,2]}", h.jwk_len);
    /* names in nested objects are not header members */
    assert_int_equal(parse("{\"alg\":\"ES256\",\"ext\":{\"kid\":\"inner\",\"jku\":1}}"), ZTB_OK);
    assert_false(h.has_kid);
    assert_int_equal(h.present, 0);
}

static void test_json_it_accepts(void **state)
{
    (void)state;
    /* escapes are decoded before comparing */
    assert_int_equal(parse("{\"\\u0061lg\":\"E\\u0053256\",\"kid\":\"a\\/b\\\\c\\\"d\"}"), ZTB_OK);
    assert_int_equal(h.alg, ZTB_ALG_ES256);
    assert_string_equal(h.kid, "a/b\\c\"d");
    /* Unicode: raw UTF-8, BMP escapes, a surrogate pair */
    assert_int_equal(parse("{\"alg\":\"ES256\",\"kid\":\"\xc3\xa9\\u00e9\\ud83d\\ude00\"}"),
                     ZTB_OK);
    assert_string_equal(h.kid, "\xc3\xa9\xc3\xa9\xf0\x9f\x98\x80");
    /* whitespace, numbers, literals, nesting */
    assert_int_equal(parse(" \t\r\n{ \"alg\" : \"ES256\" , \"n\" : [ -0 , 1.5e+3 , 2E-2 , 10 ,"
                           " true , false , null , { } , [ ] ] } \n"),
                     ZTB_OK);
    /* the same name in different objects is fine */
    assert_int_equal(parse("{\"alg\":\"ES256\",\"a\":{\"x\":1},\"b\":{\"x\":1}}"), ZTB_OK);
    /* nesting up to the limit */
    char deep[256] = "{\"alg\":\"ES256\",\"d\":";
    for (int i = 1; i < ZTB_JWS_HEADER_DEPTH; i++)
        strcat(deep, "[");
    for (int i = 1; i < ZTB_JWS_HEADER_DEPTH; i++)
        strcat(deep, "]");
    strcat(deep, "}");
    assert_int_equal(parse(deep), ZTB_OK);
}

static void test_invalid_json(void **state)
{
    (void)state;
    const char *bad[] = {
        "",
        " ",
        "{",
        "{\"alg\":\"ES256\"",
        "{\"alg\":\"ES256\",}",
        "{\"alg\":\"ES256\"}}",
        "{\"alg\":\"ES256\"} {}",
        "{\"alg\" \"ES256\"}",
        "{\"alg\":\"ES256\";\"x\":1}",
        "{'alg':'ES256'}",
        "{alg:\"ES256\"}",
        "{\"alg\":\"ES256\",\"n\":01}",
        "{\"alg\":\"ES256\",\"n\":1.}",
        "{\"alg\":\"ES256\",\"n\":.5}",
        "{\"alg\":\"ES256\",\"n\":+1}",
        "{\"alg\":\"ES256\",\"n\":1e}",
        "{\"alg\":\"ES256\",\"n\":-}",
        "{\"alg\":\"ES256\",\"n\":NaN}",
        "{\"alg\":\"ES256\",\"n\":tru}",
        "{\"alg\":\"ES256\",\"n\":nul}",
        "{\"alg\":\"ES256\",\"n\":[1,]}",
        "{\"alg\":\"ES256\",\"n\":[1 2]}",
        "{\"alg\":\"ES256\",\"s\":\"a\nb\"}",
        "{\"alg\":\"ES256\",\"s\":\"\\x\"}",
        "{\"alg\":\"ES256\",\"s\":\"\\u12\"}",
        "{\"alg\":\"ES256\",\"s\":\"\\u12G4\"}",
        "{\"alg\":\"ES256\",\"s\":\"\\ud800\"}",
        "{\"alg\":\"ES256\",\"s\":\"\\udc00\"}",
        "{\"alg\":\"ES256\",\"s\":\"\\ud800\\u0041\"}",
        "{\"alg\":\"ES256\",\"s\":\"\\u0000\"}",
        "{\"alg\":\"ES256\",\"s\":\"\xff\"}",
        "{\"alg\":\"ES256\",\"s\":\"\xc3\"}",
        "{\"alg\":\"ES256\",\"s\":\"\xe0\x80\xaf\"}",
        "{\"alg\":\"ES256\",\"s\":\"\xed\xa0\x80\"}",
        "{\"alg\":\"ES256\",\"s\":\"\xf4\x90\x80\x80\"}",
        "{\"alg\":\"ES256\",\"s\":\"unterminated}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        expect(bad[i], ZTB_ERR_JSON);
    /* an embedded NUL byte is not the end of the input */
    assert_int_equal(ztb_jws_header_parse("{\"alg\":\"ES256\"}\0", 16, &h), ZTB_ERR_JSON);
}

static void test_duplicate_names(void **state)
{
    (void)state;
    expect("{\"alg\":\"ES256\",\"alg\":\"ES256\"}", ZTB_ERR_JSON);
    expect("{\"alg\":\"ES256\",\"kid\":\"a\",\"kid\":\"a\"}", ZTB_ERR_JSON);
    expect("{\"alg\":\"ES256\",\"\\u0061lg\":\"none\"}", ZTB_ERR_JSON);
    expect("{\"alg\":\"ES256\",\"x\":1,\"y\":2,\"x\":3}", ZTB_ERR_JSON);
    expect("{\"alg\":\"ES256\",\"o\":{\"a\":1,\"a\":2}}", ZTB_ERR_JSON);
    expect("{\"alg\":\"ES256\",\"\":1,\"\":2}", ZTB_ERR_JSON);
}

static void test_not_a_header(void **state)
{
    (void)state;
    const char *bad[] = {
        "[]",
        "\"ES256\"",
        "42",
        "null",
        "{}",
        "{\"typ\":\"JWT\"}",
        "{\"alg\":null}",
        "{\"alg\":[\"ES256\"]}",
        "{\"alg\":\"ES256\",\"kid\":7}",
        "{\"alg\":\"ES256\",\"typ\":{}}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        expect(bad[i], ZTB_ERR_JWS_HEADER);
    /* ...unless the JSON is also invalid, which is reported first */
    expect("{\"alg\":\"ES256\",\"kid\":7,", ZTB_ERR_JSON);
    expect("[1,", ZTB_ERR_JSON);
    /* over-long kid and typ */
    char s[512];
    char kid[ZTB_JWS_KID_MAX + 2];
    memset(kid, 'k', sizeof(kid) - 1);
    kid[sizeof(kid) - 1] = '\0';
    snprintf(s, sizeof(s), "{\"alg\":\"ES256\",\"kid\":\"%s\"}", kid);
    expect(s, ZTB_ERR_JWS_HEADER);
    kid[ZTB_JWS_KID_MAX] = '\0';
    snprintf(s, sizeof(s), "{\"alg\":\"ES256\",\"kid\":\"%s\"}", kid);
    expect(s, ZTB_OK);
    char typ[ZTB_JWS_TYP_MAX + 2];
    memset(typ, 't', sizeof(typ) - 1);
    typ[sizeof(typ) - 1] = '\0';
    snprintf(s, sizeof(s), "{\"alg\":\"ES256\",\"typ\":\"%s\"}", typ);
    expect(s, ZTB_ERR_JWS_HEADER);
    /* too deep */
    char deep[256] = "{\"alg\":\"ES256\",\"d\":";
    for (int i = 0; i < ZTB_JWS_HEADER_DEPTH; i++)
        strcat(deep, "[");
    for (int i = 0; i < ZTB_JWS_HEADER_DEPTH; i++)
        strcat(deep, "]");
    strcat(deep, "}");
    expect(deep, ZTB_ERR_JWS_HEADER);
    /* too many member names */
    char many[2048] = "{\"alg\":\"ES256\"";
    for (int i = 0; i < ZTB_JWS_HEADER_NAMES; i++)
        snprintf(many + strlen(many), sizeof(many) - strlen(many), ",\"m%d\":0", i);
    strcat(many, "}");
    expect(many, ZTB_ERR_JWS_HEADER);
    /* over the size cap */
    static char big[ZTB_JWS_HEADER_MAX + 2];
    memset(big, ' ', sizeof(big));
    assert_int_equal(ztb_jws_header_parse(big, ZTB_JWS_HEADER_MAX + 1, &h), ZTB_ERR_JWS_HEADER);
}

static void test_decode(void **state)
{
    (void)state;
    char b64[64];
    const char *j = "{\"alg\":\"ES256\"}";
    assert_int_equal(ztb_b64url_encode(j, strlen(j), b64, sizeof(b64), NULL), ZTB_OK);
    assert_int_equal(ztb_jws_header_decode(b64, strlen(b64), &h), ZTB_OK);
    assert_int_equal(h.alg, ZTB_ALG_ES256);
    assert_int_equal(h.raw_len, strlen(j));
    assert_int_equal(ztb_jws_header_decode("eyJhbGciOiJFUzI1NiJ9=", 21, &h), ZTB_ERR_BASE64);
    assert_int_equal(ztb_jws_header_decode("eyJhbGciOiJFUzI1NiJ+", 20, &h), ZTB_ERR_BASE64);
    assert_int_equal(ztb_jws_header_decode("", 0, &h), ZTB_ERR_JSON);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reports_fields), cmocka_unit_test(test_json_it_accepts),
        cmocka_unit_test(test_invalid_json),   cmocka_unit_test(test_duplicate_names),
        cmocka_unit_test(test_not_a_header),   cmocka_unit_test(test_decode),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
