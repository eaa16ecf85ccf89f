/*
 * test_access_token.c - the one path that verifies a ztb access token
 * (wire/access_token.c), used by the SDK's verifier, the broker's
 * introspection and its delegation: signature by a key of the set only, typ,
 * the claims' shape, then issuer, audience and each time check with its own
 * skew; each step refuses to run on a struct the step before did not fill.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "pki/jws.h"
#include "pki/key.h"
#include "pki/keyset.h"
#include "wire/access_token.h"
#include "wire/claims.h"

#define ISS "https://broker.example"
#define NOW 1767225600

static ztb_key *key, *other;
static ztb_keyset *ks;
static struct access_token t;

static int setup(void **state)
{
    (void)state;
    assert_int_equal(ztb_key_generate(&key), ZTB_OK);
    assert_int_equal(ztb_key_generate(&other), ZTB_OK);
    assert_int_equal(ztb_keyset_new(&key, NULL, 1, &ks), ZTB_OK);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    ztb_keyset_free(ks);
    ztb_key_free(key);
    ztb_key_free(other);
    return 0;
}

/* A token for audience aud, issued at iat, expiring at exp, signed by k with typ. */
static const char *mint(const ztb_key *k, const char *typ, const char *iss, const char *aud,
                        int64_t iat, int64_t exp)
{
    static char tok[4096];
    struct token_claims c = {.iss = iss,
                             .agent = "bot",
                             .spiffe_id = "spiffe://ztb.local/agent/bot",
                             .audience = aud,
                             .action = "payments:refund",
                             .jti = "jti-1",
                             .iat = iat,
                             .exp = exp,
                             .generation = 1};
    char cs[2048];
    ztb_buf cb, tb;
    ztb_buf_init_fixed(&cb, cs, sizeof(cs));
    ztb_buf_init_fixed(&tb, tok, sizeof(tok));
    assert_int_equal(claims_write(&c, &cb), ZTB_OK);
    ztb_jws_sign_opts so = {.typ = typ};
    assert_int_equal(ztb_jws_sign(k, &so, cs, cb.len, &tb), ZTB_OK);
    assert_non_null(ztb_buf_cstr(&tb));
    return tok;
}

static ztb_err verify(const char *tok, const struct access_token_expect *e)
{
    return access_token_verify(ks, tok, strlen(tok), e, &t);
}

static const struct access_token_expect gateway = {
    .issuer = ISS, .audience = "payments", .now = NOW, .skew_s = 30, .exp_skew_s = 30};

static void test_valid(void **state)
{
    (void)state;
    const char *tok = mint(key, "at+jwt", ISS, "payments", NOW, NOW + 60);
    assert_int_equal(verify(tok, &gateway), ZTB_OK);
    assert_string_equal(claims_str(&t.c, CL_AGENT), "bot");
    assert_string_equal(t.hdr.kid, ztb_key_kid(key));
    assert_non_null(strstr(t.payload, "\"jti\":\"jti-1\""));
    assert_int_equal(strlen(t.payload), t.payload_len);
    /* the long form of the typ too (RFC 9068 §4) */
    tok = mint(key, "application/at+jwt", ISS, "payments", NOW, NOW + 60);
    assert_int_equal(verify(tok, &gateway), ZTB_OK);
    /* any audience when the caller checks it itself (the broker) */
    struct access_token_expect any = gateway;
    any.audience = NULL;
    tok = mint(key, "at+jwt", ISS, "crm", NOW, NOW + 60);
    assert_int_equal(verify(tok, &any), ZTB_OK);
}

static void test_signature_and_shape(void **state)
{
    (void)state;
    const char *tok = mint(other, "at+jwt", ISS, "payments", NOW, NOW + 60);
    assert_int_equal(verify(tok, &gateway), ZTB_ERR_UNKNOWN_KID);
    assert_false(t.signed_ok);
    /* a good signature, a bad byte in it */
    char bad[4096];
    snprintf(bad, sizeof(bad), "%s", mint(key, "at+jwt", ISS, "payments", NOW, NOW + 60));
    char *last = bad + strlen(bad) - 2;
    *last = *last == 'A' ? 'B' : 'A';
    assert_int_equal(verify(bad, &gateway), ZTB_ERR_SIGNATURE);
    assert_int_equal(verify("garbage", &gateway), ZTB_ERR_JWS_FORMAT);
    tok = mint(key, "JWT", ISS, "payments", NOW, NOW + 60);
    assert_int_equal(verify(tok, &gateway), ZTB_ERR_TYP);
    /* signed by our key, but not the claims' shape */
    static const char claims[] = "{\"iss\":\"" ISS "\",\"aud\":\"payments\",\"jti\":\"x\"}";
    char tk[2048];
    ztb_buf tb;
    ztb_buf_init_fixed(&tb, tk, sizeof(tk));
    ztb_jws_sign_opts so = {.typ = "at+jwt"};
    assert_int_equal(ztb_jws_sign(key, &so, claims, sizeof(claims) - 1, &tb), ZTB_OK);
    assert_non_null(ztb_buf_cstr(&tb));
    assert_int_equal(verify(tk, &gateway), ZTB_ERR_CLAIMS);
    /* over the token size cap: refused before any parsing */
    static char big[ZTB_JWS_DEFAULT_MAX + 2];
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(verify(big, &gateway), ZTB_ERR_TOO_LARGE);
}

static void test_claims_checks_in_order(void **state)
{
    (void)state;
    const char *tok =
        mint(key, "at+jwt", "https://other.example", "crm", NOW - 1000, NOW - 1000 + 60);
    assert_int_equal(verify(tok, &gateway), ZTB_ERR_ISSUER); /* first, before aud or exp */
    tok = mint(key, "at+jwt", ISS, "crm", NOW - 1000, NOW - 1000 + 60);
    assert_int_equal(verify(tok, &gateway), ZTB_ERR_AUDIENCE);
    tok = mint(key, "at+jwt", ISS, "payments", NOW - 1000, NOW - 1000 + 60);
    assert_int_equal(verify(tok, &gateway), ZTB_ERR_EXPIRED);
}

static void test_times_and_skews(void **state)
{
    (void)state;
    struct access_token_expect e = gateway;
    /* exp: now < exp + exp_skew */
    const char *tok = mint(key, "at+jwt", ISS, "payments", NOW - 100, NOW - 29);
    assert_int_equal(verify(tok, &e), ZTB_OK);
    tok = mint(key, "at+jwt", ISS, "payments", NOW - 100, NOW - 30);
    assert_int_equal(verify(tok, &e), ZTB_ERR_EXPIRED);
    /* the broker's own clock: no skew on exp */
    e.exp_skew_s = 0;
    tok = mint(key, "at+jwt", ISS, "payments", NOW - 100, NOW + 1);
    assert_int_equal(verify(tok, &e), ZTB_OK);
    tok = mint(key, "at+jwt", ISS, "payments", NOW - 100, NOW);
    assert_int_equal(verify(tok, &e), ZTB_ERR_EXPIRED);
    /* nbf (= iat in our tokens) within the skew, not beyond */
    e = gateway;
    tok = mint(key, "at+jwt", ISS, "payments", NOW + 30, NOW + 90);
    assert_int_equal(verify(tok, &e), ZTB_OK);
    tok = mint(key, "at+jwt", ISS, "payments", NOW + 31, NOW + 90);
    assert_int_equal(verify(tok, &e), ZTB_ERR_NOT_YET_VALID);
}

static void test_iat_without_nbf(void **state)
{
    (void)state;
    /* a token without nbf: iat in the future beyond the skew is IAT */
    static const char claims[] =
        "{\"iss\":\"" ISS "\",\"sub\":\"s\",\"aud\":\"payments\",\"iat\":1767225700,"
        "\"exp\":1767225800,\"jti\":\"j\",\"scope\":\"x:y\",\"authorization_details\":"
        "[{\"type\":\"ztb_action\",\"actions\":[\"x:y\"],\"locations\":[\"payments\"]}],"
        "\"ztb\":{\"agent\":\"n\",\"gen\":1}}";
    char tk[2048];
    ztb_buf tb;
    ztb_buf_init_fixed(&tb, tk, sizeof(tk));
    ztb_jws_sign_opts so = {.typ = "at+jwt"};
    assert_int_equal(ztb_jws_sign(key, &so, claims, sizeof(claims) - 1, &tb), ZTB_OK);
    assert_non_null(ztb_buf_cstr(&tb));
    assert_int_equal(verify(tk, &gateway), ZTB_ERR_IAT);
}

static void test_steps_need_the_step_before(void **state)
{
    (void)state;
    memset(&t, 0, sizeof(t));
    assert_int_equal(access_token_read_claims(&t), ZTB_ERR_INVALID_ARG);
    assert_int_equal(access_token_check(&t, &gateway), ZTB_ERR_INVALID_ARG);
    /* a failed signature clears what an earlier token left */
    const char *tok = mint(key, "at+jwt", ISS, "payments", NOW, NOW + 60);
    assert_int_equal(verify(tok, &gateway), ZTB_OK);
    assert_int_equal(access_token_verify_signature(ks, "x.y.z", 5, &t), ZTB_ERR_BASE64);
    assert_int_equal(access_token_read_claims(&t), ZTB_ERR_INVALID_ARG);
    assert_int_equal(access_token_check(&t, &gateway), ZTB_ERR_INVALID_ARG);
    assert_int_equal(access_token_verify_signature(NULL, tok, strlen(tok), &t),
                     ZTB_ERR_INVALID_ARG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid),
        cmocka_unit_test(test_signature_and_shape),
        cmocka_unit_test(test_claims_checks_in_order),
        cmocka_unit_test(test_times_and_skews),
        cmocka_unit_test(test_iat_without_nbf),
        cmocka_unit_test(test_steps_need_the_step_before),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
