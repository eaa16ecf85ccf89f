/*
 * test_jwk.c - RFC 7638 thumbprints (the RFC's RSA example, RFC 8037's OKP
 * example, EC against the key's kid), JWK rendering and strict parsing, and
 * JWKS parsing with one crafted document per refusal.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "pki/jwk.h"

/* RFC 7638 §3.1 */
#define RFC7638_N                                                                                  \
    "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_"      \
    "BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-"              \
    "65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-"   \
    "bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"

/* RFC 7515 A.3's P-256 key (public part) */
#define A3_X "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU"
#define A3_Y "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"

static json_t *parse(const char *s)
{
    json_error_t e;
    json_t *j = json_loads(s, JSON_REJECT_DUPLICATES, &e);
    assert_non_null(j);
    return j;
}

static void test_rfc7638_rsa_example(void **state)
{
    (void)state;
    /* the RFC's JWK, with its optional members, which must not matter */
    json_t *j = parse("{\"kty\":\"RSA\",\"n\":\"" RFC7638_N "\",\"e\":\"AQAB\",\"alg\":\"RS256\","
                      "\"kid\":\"2011-04-29\"}");
    char t[ZTB_KID_LEN + 1];
    assert_int_equal(ztb_jwk_thumbprint(j, t), ZTB_OK);
    assert_string_equal(t, "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
    json_decref(j);
    /* one character of n changed: another thumbprint */
    j = parse("{\"kty\":\"RSA\",\"n\":\"1" RFC7638_N "\",\"e\":\"AQAB\"}");
    assert_int_equal(ztb_jwk_thumbprint(j, t), ZTB_OK);
    assert_string_not_equal(t, "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
    json_decref(j);
}

static void test_rfc8037_okp_example(void **state)
{
    (void)state;
    json_t *j = parse("{\"kty\":\"OKP\",\"crv\":\"Ed25519\","
                      "\"x\":\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo\"}");
    char t[ZTB_KID_LEN + 1];
    assert_int_equal(ztb_jwk_thumbprint(j, t), ZTB_OK);
    assert_string_equal(t, "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k");
    json_decref(j);
}

static void test_thumbprint_refusals(void **state)
{
    (void)state;
    char t[ZTB_KID_LEN + 1];
    const char *bad_key[] = {
        "{\"kty\":\"RSA\",\"e\":\"AQAB\"}",               /* no n */
        "{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"a\"}", /* no y */
        "{\"kty\":\"RSA\",\"n\":\"a\",\"e\":1}",          /* e not a string */
        "{\"n\":\"a\",\"e\":\"AQAB\"}",                   /* no kty */
    };
    for (size_t i = 0; i < sizeof(bad_key) / sizeof(bad_key[0]); i++) {
        json_t *j = parse(bad_key[i]);
        assert_int_equal(ztb_jwk_thumbprint(j, t), ZTB_ERR_KEY);
        json_decref(j);
    }
    json_t *j = parse("{\"kty\":\"XYZ\"}");
    assert_int_equal(ztb_jwk_thumbprint(j, t), ZTB_ERR_UNSUPPORTED);
    json_decref(j);
    j = parse("[1]");
    assert_int_equal(ztb_jwk_thumbprint(j, t), ZTB_ERR_JWKS);
    json_decref(j);
}

/* A key's kid is the thumbprint of its rendered JWK, and parses back. */
static void test_render_and_parse_ec(void **state)
{
    (void)state;
    ztb_key *k = NULL, *back = NULL;
    assert_int_equal(ztb_key_generate(&k), ZTB_OK);
    ztb_buf b;
    ztb_buf_init(&b, 1024);
    assert_int_equal(ztb_jwk_render(k, &b), ZTB_OK);
    json_t *j = parse(ztb_buf_cstr(&b));
    assert_string_equal(json_string_value(json_object_get(j, "kty")), "EC");
    assert_string_equal(json_string_value(json_object_get(j, "crv")), "P-256");
    assert_string_equal(json_string_value(json_object_get(j, "alg")), "ES256");
    assert_string_equal(json_string_value(json_object_get(j, "use")), "sig");
    assert_string_equal(json_string_value(json_object_get(j, "kid")), ztb_key_kid(k));
    assert_null(json_object_get(j, "d"));
    assert_int_equal(json_object_size(j), 7);
    char t[ZTB_KID_LEN + 1];
    assert_int_equal(ztb_jwk_thumbprint(j, t), ZTB_OK);
    assert_string_equal(t, ztb_key_kid(k));
    assert_int_equal(ztb_jwk_to_key(j, 0, &back), ZTB_OK);
    assert_true(ztb_key_same_public(k, back));
    assert_false(ztb_key_has_private(back));
    json_decref(j);
    ztb_key_free(back);
    ztb_key_free(k);
    ztb_buf_free(&b);
}

static void test_jwk_to_key_refusals(void **state)
{
    (void)state;
    ztb_key *k = NULL;
    const char *ok = "{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"" A3_X "\",\"y\":\"" A3_Y "\"}";
    assert_int_equal(ztb_jwk_parse(ok, strlen(ok), 0, &k), ZTB_OK);
    ztb_key_free(k);
    const char *bad[] = {
        "{\"kty\":\"RSA\",\"n\":\"" RFC7638_N "\",\"e\":\"AQAB\"}",
        "{\"kty\":\"EC\",\"crv\":\"P-384\",\"x\":\"" A3_X "\",\"y\":\"" A3_Y "\"}",
        "{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"" A3_X "\"}",
        /* 31-byte x; a non-canonical last character; not base64url */
        "{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVA\","
        "\"y\":\"" A3_Y "\"}",
        "{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEV\","
        "\"y\":\"" A3_Y "\"}",
        "{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVE=\","
        "\"y\":\"" A3_Y "\"}",
        /* a point off the curve (y of another point) */
        "{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"" A3_X "\",\"y\":\"" A3_X "\"}",
        /* private material, another alg, another use, other key_ops */
        "{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"" A3_X "\",\"y\":\"" A3_Y
        "\",\"d\":\"jpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9LI\"}",
        "{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"" A3_X "\",\"y\":\"" A3_Y
        "\",\"alg\":\"HS256\"}",
        "{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"" A3_X "\",\"y\":\"" A3_Y "\",\"use\":\"enc\"}",
        "{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"" A3_X "\",\"y\":\"" A3_Y
        "\",\"key_ops\":[\"sign\"]}",
        "{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"" A3_X "\",\"y\":\"" A3_Y "\",\"key_ops\":[]}",
        /* a kid that is not its thumbprint; a kid that is not a string */
        "{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"" A3_X "\",\"y\":\"" A3_Y "\",\"kid\":\"1\"}",
        "{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"" A3_X "\",\"y\":\"" A3_Y "\",\"kid\":1}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ztb_err rv = ztb_jwk_parse(bad[i], strlen(bad[i]), 0, &k);
        if (rv != ZTB_ERR_KEY)
            fail_msg("case %zu: %s", i, ztb_err_name(rv));
    }
    /* with ZTB_JWK_KID_ANY any string kid is fine */
    const char *kid1 =
        "{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"" A3_X "\",\"y\":\"" A3_Y "\",\"kid\":\"1\"}";
    assert_int_equal(ztb_jwk_parse(kid1, strlen(kid1), ZTB_JWK_KID_ANY, &k), ZTB_OK);
    ztb_key_free(k);
    /* JSON problems */
    const char *dup = "{\"kty\":\"EC\",\"kty\":\"EC\"}";
    assert_int_equal(ztb_jwk_parse(dup, strlen(dup), 0, &k), ZTB_ERR_JSON);
    assert_int_equal(ztb_jwk_parse("{", 1, 0, &k), ZTB_ERR_JSON);
    /* a NUL byte after a number (jansson alone would let it through) */
    const char nul[] = "{\"kty\":\"EC\",\"n\":1\0}";
    assert_int_equal(ztb_jwk_parse(nul, sizeof(nul) - 1, 0, &k), ZTB_ERR_JSON);
    static char big[ZTB_JWK_MAX + 1];
    assert_int_equal(ztb_jwk_parse(big, sizeof(big), 0, &k), ZTB_ERR_TOO_LARGE);
}

/* A JWKS of n fresh keys; their kids out. */
static void make_jwks(size_t n, ztb_buf *out, char (*kids)[ZTB_KID_LEN + 1])
{
    ztb_key *keys[8];
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(ztb_key_generate(&keys[i]), ZTB_OK);
        strcpy(kids[i], ztb_key_kid(keys[i]));
    }
    assert_int_equal(ztb_jwks_render((const ztb_key *const *)keys, n, out), ZTB_OK);
    for (size_t i = 0; i < n; i++)
        ztb_key_free(keys[i]);
}

static void test_jwks_round_trip(void **state)
{
    (void)state;
    ztb_buf b;
    ztb_buf_init(&b, ZTB_JWKS_MAX);
    char kids[3][ZTB_KID_LEN + 1];
    make_jwks(3, &b, kids);
    ztb_keyset *ks = NULL;
    assert_int_equal(ztb_jwks_parse(ztb_buf_cstr(&b), b.len, 0, &ks), ZTB_OK);
    assert_int_equal(ztb_keyset_count(ks), 3);
    for (int i = 0; i < 3; i++) {
        const ztb_key *k = ztb_keyset_find(ks, kids[i], ZTB_KID_LEN);
        assert_non_null(k);
        assert_string_equal(ztb_key_kid(k), kids[i]);
        assert_int_equal(ztb_key_alg(k), ZTB_ALG_ES256);
    }
    ztb_keyset_free(ks);
    ztb_buf_free(&b);
    /* an empty set renders, and parses as "no usable key" */
    ztb_buf_init(&b, 64);
    assert_int_equal(ztb_jwks_render(NULL, 0, &b), ZTB_OK);
    assert_string_equal(ztb_buf_cstr(&b), "{\"keys\":[]}");
    assert_int_equal(ztb_jwks_parse(ztb_buf_cstr(&b), b.len, 0, &ks), ZTB_ERR_JWKS);
    ztb_buf_free(&b);
}

/* Other key types and uses are skipped; what is kept is exactly the P-256 signing keys. */
static void test_jwks_skips_what_it_does_not_use(void **state)
{
    (void)state;
    char doc[4096];
    snprintf(doc, sizeof(doc),
             "{\"keys\":["
             "{\"kty\":\"RSA\",\"n\":\"%s\",\"e\":\"AQAB\",\"kid\":\"2011-04-29\"},"
             "{\"kty\":\"EC\",\"crv\":\"P-384\",\"x\":\"a\",\"y\":\"b\",\"kid\":\"p384\"},"
             "{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"%s\",\"y\":\"%s\",\"use\":\"enc\","
             "\"kid\":\"enc\"},"
             "{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"%s\",\"y\":\"%s\",\"kid\":\"sig-1\"}"
             "],\"other\":true}",
             RFC7638_N, A3_X, A3_Y, A3_X, A3_Y);
    ztb_keyset *ks = NULL;
    /* the kid is not the thumbprint: refused, unless any kid is allowed */
    assert_int_equal(ztb_jwks_parse(doc, strlen(doc), 0, &ks), ZTB_ERR_JWKS);
    assert_int_equal(ztb_jwks_parse(doc, strlen(doc), ZTB_JWK_KID_ANY, &ks), ZTB_OK);
    assert_int_equal(ztb_keyset_count(ks), 1);
    assert_non_null(ztb_keyset_find(ks, "sig-1", 5));
    assert_null(ztb_keyset_find(ks, "enc", 3));
    assert_null(ztb_keyset_find(ks, "2011-04-29", 10));
    ztb_keyset_free(ks);
}

static void test_jwks_refusals(void **state)
{
    (void)state;
    char good[512];
    snprintf(good, sizeof(good), "{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"%s\",\"y\":\"%s\"",
             A3_X, A3_Y); /* an entry missing its closing brace and kid */
    struct {
        const char *doc;
        ztb_err want;
    } cases[] = {
        {"", ZTB_ERR_JSON},
        {"{\"keys\":[]", ZTB_ERR_JSON},
        {"{\"keys\":[],\"keys\":[]}", ZTB_ERR_JSON},
        {"{\"keys\":[]} x", ZTB_ERR_JSON},
        {"[]", ZTB_ERR_JWKS},
        {"{}", ZTB_ERR_JWKS},
        {"{\"keys\":{}}", ZTB_ERR_JWKS},
        {"{\"keys\":[1]}", ZTB_ERR_JWKS},
        {"{\"keys\":[{}]}", ZTB_ERR_JWKS},
        {"{\"keys\":[{\"kty\":\"oct\",\"k\":\"c2VjcmV0\"}]}", ZTB_ERR_JWKS},
        {"{\"keys\":[{\"kty\":\"RSA\",\"n\":\"x\",\"e\":\"AQAB\",\"d\":\"x\"}]}", ZTB_ERR_JWKS},
    };
    ztb_keyset *ks = NULL;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        ztb_err rv = ztb_jwks_parse(cases[i].doc, strlen(cases[i].doc), 0, &ks);
        if (rv != cases[i].want)
            fail_msg("case %zu: %s, want %s", i, ztb_err_name(rv), ztb_err_name(cases[i].want));
    }
    const char nul[] = "{\"keys\":[],\"n\":1\0}";
    assert_int_equal(ztb_jwks_parse(nul, sizeof(nul) - 1, 0, &ks), ZTB_ERR_JSON);
    char doc[4096];
    /* no kid; an empty kid; a bad coordinate; the same kid twice */
    snprintf(doc, sizeof(doc), "{\"keys\":[%s}]}", good);
    assert_int_equal(ztb_jwks_parse(doc, strlen(doc), ZTB_JWK_KID_ANY, &ks), ZTB_ERR_JWKS);
    snprintf(doc, sizeof(doc), "{\"keys\":[%s,\"kid\":\"\"}]}", good);
    assert_int_equal(ztb_jwks_parse(doc, strlen(doc), ZTB_JWK_KID_ANY, &ks), ZTB_ERR_JWKS);
    snprintf(doc, sizeof(doc),
             "{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"AAAA\",\"y\":\"%s\","
             "\"kid\":\"a\"}]}",
             A3_Y);
    assert_int_equal(ztb_jwks_parse(doc, strlen(doc), ZTB_JWK_KID_ANY, &ks), ZTB_ERR_JWKS);
    snprintf(doc, sizeof(doc), "{\"keys\":[%s,\"kid\":\"a\"},%s,\"kid\":\"a\"}]}", good, good);
    assert_int_equal(ztb_jwks_parse(doc, strlen(doc), ZTB_JWK_KID_ANY, &ks), ZTB_ERR_JWKS);
    /* a kid over the key set's limit */
    char longkid[ZTB_KEYSET_KID_MAX + 2];
    memset(longkid, 'k', sizeof(longkid) - 1);
    longkid[sizeof(longkid) - 1] = '\0';
    snprintf(doc, sizeof(doc), "{\"keys\":[%s,\"kid\":\"%s\"}]}", good, longkid);
    assert_int_equal(ztb_jwks_parse(doc, strlen(doc), ZTB_JWK_KID_ANY, &ks), ZTB_ERR_JWKS);

    /* too many entries, too many bytes */
    ztb_buf b;
    ztb_buf_init(&b, 1 << 20);
    ztb_buf_append_str(&b, "{\"keys\":[");
    for (int i = 0; i <= ZTB_KEYSET_MAX; i++)
        ztb_buf_printf(&b, "%s{\"kty\":\"RSA\",\"n\":\"x\",\"e\":\"AQAB\"}", i ? "," : "");
    ztb_buf_append_str(&b, "]}");
    assert_int_equal(ztb_jwks_parse(ztb_buf_cstr(&b), b.len, 0, &ks), ZTB_ERR_TOO_LARGE);
    ztb_buf_reset(&b);
    ztb_buf_append_str(&b, "{\"keys\":[],\"pad\":\"");
    for (int i = 0; i < ZTB_JWKS_MAX; i++)
        ztb_buf_append_byte(&b, 'x');
    ztb_buf_append_str(&b, "\"}");
    assert_int_equal(ztb_jwks_parse(ztb_buf_cstr(&b), b.len, 0, &ks), ZTB_ERR_TOO_LARGE);
    ztb_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc7638_rsa_example),
        cmocka_unit_test(test_rfc8037_okp_example),
        cmocka_unit_test(test_thumbprint_refusals),
        cmocka_unit_test(test_render_and_parse_ec),
        cmocka_unit_test(test_jwk_to_key_refusals),
        cmocka_unit_test(test_jwks_round_trip),
        cmocka_unit_test(test_jwks_skips_what_it_does_not_use),
        cmocka_unit_test(test_jwks_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
