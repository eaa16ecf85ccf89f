/* test_dpop.c - DPoP proofs: made, checked, and every forgery refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "common/base64url.h"
#include "pki/dpop.h"
#include "pki/jws.h"

#define HTU "https://broker.example/v1/token"
#define NOW 1767225600

static ztb_key *k1, *k2;

static int setup(void **state)
{
    (void)state;
    assert_int_equal(ztb_key_generate(&k1), ZTB_OK);
    assert_int_equal(ztb_key_generate(&k2), ZTB_OK);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    ztb_key_free(k1);
    ztb_key_free(k2);
    return 0;
}

static ztb_err check(const char *proof, const char *htm, const char *htu, const char *tok,
                     int64_t now, ztb_dpop_result *r)
{
    return ztb_dpop_proof_check(proof, strlen(proof), htm, htu, tok, now, 60, 5, r);
}

/* Sign arbitrary header and claims text with key `signer`. */
static void craft(const ztb_key *signer, const char *header, const char *claims, ztb_buf *out)
{
    ztb_jws_sign_opts o = {.header = header, .header_len = strlen(header)};
    ztb_buf_reset(out);
    assert_int_equal(ztb_jws_sign(signer, &o, claims, strlen(claims), out), ZTB_OK);
}

static void jwk_of(const ztb_key *k, char *out, size_t cap)
{
    ztb_buf b;
    ztb_buf_init_fixed(&b, out, cap);
    assert_int_equal(ztb_jwk_render(k, &b), ZTB_OK);
}

static void test_round_trip(void **state)
{
    (void)state;
    ztb_buf p;
    ztb_buf_init(&p, 8192);
    assert_int_equal(ztb_dpop_proof_make(k1, "POST", HTU, NOW, NULL, &p), ZTB_OK);
    ztb_dpop_result r;
    assert_int_equal(check(ztb_buf_cstr(&p), "POST", HTU, NULL, NOW, &r), ZTB_OK);
    assert_string_equal(r.jkt, ztb_key_kid(k1));
    assert_int_equal(r.iat, NOW);
    assert_true(strlen(r.jti) >= 22);
    /* query and fragment are not compared */
    assert_int_equal(check(ztb_buf_cstr(&p), "POST", HTU "?x=1#f", NULL, NOW, &r), ZTB_OK);
    /* the same URI written otherwise (RFC 9449 §4.3, RFC 3986 §6.2.2-6.2.3) */
    static const char *const same_uri[] = {
        "HTTPS://Broker.Example/v1/token", "https://broker.example:443/v1/token",
        "https://broker.example/v1/%74oken", "https://broker.example/v1/x/../token",
        "https://broker.example/./v1/token"};
    for (size_t i = 0; i < sizeof(same_uri) / sizeof(same_uri[0]); i++)
        if (check(ztb_buf_cstr(&p), "POST", same_uri[i], NULL, NOW, &r) != ZTB_OK)
            fail_msg("htu %s refused for the request URI %s", HTU, same_uri[i]);
    /* a second proof has another jti */
    ztb_buf p2;
    ztb_buf_init(&p2, 8192);
    assert_int_equal(ztb_dpop_proof_make(k1, "POST", HTU, NOW, NULL, &p2), ZTB_OK);
    ztb_dpop_result r2;
    assert_int_equal(check(ztb_buf_cstr(&p2), "POST", HTU, NULL, NOW, &r2), ZTB_OK);
    assert_string_not_equal(r.jti, r2.jti);
    ztb_buf_free(&p);
    ztb_buf_free(&p2);
}

static void test_request_mismatch_and_time(void **state)
{
    (void)state;
    ztb_buf p;
    ztb_buf_init(&p, 8192);
    assert_int_equal(ztb_dpop_proof_make(k1, "POST", HTU, NOW, NULL, &p), ZTB_OK);
    const char *s = ztb_buf_cstr(&p);
    ztb_dpop_result r;
    assert_int_equal(check(s, "GET", HTU, NULL, NOW, &r), ZTB_ERR_DPOP);
    assert_int_equal(check(s, "post", HTU, NULL, NOW, &r), ZTB_ERR_DPOP);
    assert_int_equal(check(s, "POST", "https://broker.example/v1/tokens", NULL, NOW, &r),
                     ZTB_ERR_DPOP);
    assert_int_equal(check(s, "POST", "https://evil.example/v1/token", NULL, NOW, &r),
                     ZTB_ERR_DPOP);
    static const char *const other_uri[] = {
        "http://broker.example/v1/token",      "https://broker.example:8443/v1/token",
        "https://broker.example/v1/Token",     "https://broker.example/v1/token/",
        "https://broker.example/v1%2Ftoken",   "https://broker.example.evil/v1/token",
        "https://user@broker.example/v1/token"};
    for (size_t i = 0; i < sizeof(other_uri) / sizeof(other_uri[0]); i++)
        if (check(s, "POST", other_uri[i], NULL, NOW, &r) != ZTB_ERR_DPOP)
            fail_msg("htu %s accepted for the request URI %s", HTU, other_uri[i]);
    /* iat window: [now - 60 - 5, now + 5] */
    assert_int_equal(check(s, "POST", HTU, NULL, NOW + 65, &r), ZTB_OK);
    assert_int_equal(check(s, "POST", HTU, NULL, NOW + 66, &r), ZTB_ERR_DPOP);
    assert_int_equal(check(s, "POST", HTU, NULL, NOW - 5, &r), ZTB_OK);
    assert_int_equal(check(s, "POST", HTU, NULL, NOW - 6, &r), ZTB_ERR_DPOP);
    ztb_buf_free(&p);
}

static void test_ath(void **state)
{
    (void)state;
    const char *tok = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln";
    ztb_buf p;
    ztb_buf_init(&p, 8192);
    assert_int_equal(ztb_dpop_proof_make(k1, "GET", "https://api/x", NOW, tok, &p), ZTB_OK);
    ztb_dpop_result r;
    assert_int_equal(check(ztb_buf_cstr(&p), "GET", "https://api/x", tok, NOW, &r), ZTB_OK);
    assert_int_equal(check(ztb_buf_cstr(&p), "GET", "https://api/x", "other.token.x", NOW, &r),
                     ZTB_ERR_DPOP);
    /* an ath where no token is presented, and no ath where one is */
    assert_int_equal(check(ztb_buf_cstr(&p), "GET", "https://api/x", NULL, NOW, &r), ZTB_ERR_DPOP);
    ztb_buf_reset(&p);
    assert_int_equal(ztb_dpop_proof_make(k1, "GET", "https://api/x", NOW, NULL, &p), ZTB_OK);
    assert_int_equal(check(ztb_buf_cstr(&p), "GET", "https://api/x", tok, NOW, &r), ZTB_ERR_DPOP);
    char ath[44];
    assert_int_equal(ztb_dpop_ath(tok, strlen(tok), ath), ZTB_OK);
    assert_int_equal(strlen(ath), 43);
    ztb_buf_free(&p);
}

static void test_forgeries(void **state)
{
    (void)state;
    char jwk1[512], hdr[1024], claims[512];
    jwk_of(k1, jwk1, sizeof(jwk1));
    snprintf(claims, sizeof(claims),
             "{\"jti\":\"abcdefghijklmnop\",\"htm\":\"POST\",\"htu\":\"%s\",\"iat\":%d}", HTU, NOW);
    ztb_buf p;
    ztb_buf_init(&p, 8192);
    ztb_dpop_result r;

    /* the reference: well formed, signed by the embedded key */
    snprintf(hdr, sizeof(hdr), "{\"typ\":\"dpop+jwt\",\"alg\":\"ES256\",\"jwk\":%s}", jwk1);
    craft(k1, hdr, claims, &p);
    assert_int_equal(check(ztb_buf_cstr(&p), "POST", HTU, NULL, NOW, &r), ZTB_OK);

    /* a kid in the jwk that is not its thumbprint, or none: RFC 9449 gives
     * it no meaning; the binding is still the key's thumbprint */
    char named[600];
    const char *kid = strstr(jwk1, "\"kid\":\"");
    assert_non_null(kid);
    const char *kid_end = strchr(kid + 7, '"');
    snprintf(named, sizeof(named), "%.*s\"kid\":\"client-key-1\"%s", (int)(kid - jwk1), jwk1,
             kid_end + 1);
    snprintf(hdr, sizeof(hdr), "{\"typ\":\"dpop+jwt\",\"alg\":\"ES256\",\"jwk\":%s}", named);
    craft(k1, hdr, claims, &p);
    assert_int_equal(check(ztb_buf_cstr(&p), "POST", HTU, NULL, NOW, &r), ZTB_OK);
    assert_string_equal(r.jkt, ztb_key_kid(k1));
    snprintf(named, sizeof(named), "%.*s%s", (int)(kid - jwk1), jwk1, kid_end + 2);
    snprintf(hdr, sizeof(hdr), "{\"typ\":\"dpop+jwt\",\"alg\":\"ES256\",\"jwk\":%s}", named);
    craft(k1, hdr, claims, &p);
    if (check(ztb_buf_cstr(&p), "POST", HTU, NULL, NOW, &r) != ZTB_OK)
        fail_msg("a jwk without kid refused: %s", named);
    snprintf(hdr, sizeof(hdr), "{\"typ\":\"dpop+jwt\",\"alg\":\"ES256\",\"jwk\":%s}", jwk1);

    /* signed by another key than the one it carries */
    craft(k2, hdr, claims, &p);
    assert_int_equal(check(ztb_buf_cstr(&p), "POST", HTU, NULL, NOW, &r), ZTB_ERR_SIGNATURE);

    /* wrong typ, no typ */
    snprintf(hdr, sizeof(hdr), "{\"typ\":\"JWT\",\"alg\":\"ES256\",\"jwk\":%s}", jwk1);
    craft(k1, hdr, claims, &p);
    assert_int_equal(check(ztb_buf_cstr(&p), "POST", HTU, NULL, NOW, &r), ZTB_ERR_DPOP);
    snprintf(hdr, sizeof(hdr), "{\"alg\":\"ES256\",\"jwk\":%s}", jwk1);
    craft(k1, hdr, claims, &p);
    assert_int_equal(check(ztb_buf_cstr(&p), "POST", HTU, NULL, NOW, &r), ZTB_ERR_DPOP);

    /* no jwk */
    craft(k1, "{\"typ\":\"dpop+jwt\",\"alg\":\"ES256\"}", claims, &p);
    assert_int_equal(check(ztb_buf_cstr(&p), "POST", HTU, NULL, NOW, &r), ZTB_ERR_DPOP);

    /* a jwk with a private member */
    char priv[600];
    snprintf(priv, sizeof(priv), "%.*s,\"d\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"}",
             (int)strlen(jwk1) - 1, jwk1);
    snprintf(hdr, sizeof(hdr), "{\"typ\":\"dpop+jwt\",\"alg\":\"ES256\",\"jwk\":%s}", priv);
    craft(k1, hdr, claims, &p);
    assert_int_equal(check(ztb_buf_cstr(&p), "POST", HTU, NULL, NOW, &r), ZTB_ERR_DPOP);

    /* missing or mistyped claims */
    snprintf(hdr, sizeof(hdr), "{\"typ\":\"dpop+jwt\",\"alg\":\"ES256\",\"jwk\":%s}", jwk1);
    const char *bad_claims[] = {
        "{\"htm\":\"POST\",\"htu\":\"" HTU "\",\"iat\":1767225600}",
        "{\"jti\":\"\",\"htm\":\"POST\",\"htu\":\"" HTU "\",\"iat\":1767225600}",
        "{\"jti\":\"abcdefghijklmnop\",\"htu\":\"" HTU "\",\"iat\":1767225600}",
        "{\"jti\":\"abcdefghijklmnop\",\"htm\":\"POST\",\"iat\":1767225600}",
        "{\"jti\":\"abcdefghijklmnop\",\"htm\":\"POST\",\"htu\":\"" HTU "\"}",
        "{\"jti\":\"abcdefghijklmnop\",\"htm\":\"POST\",\"htu\":\"" HTU
        "\",\"iat\":\"1767225600\"}",
        "{\"jti\":\"abcdefghijklmnop\",\"htm\":\"POST\",\"htu\":\"" HTU
        "\",\"iat\":1767225600,\"iat\":1767225600}",
        "[1]",
    };
    for (size_t i = 0; i < sizeof(bad_claims) / sizeof(bad_claims[0]); i++) {
        craft(k1, hdr, bad_claims[i], &p);
        assert_int_equal(check(ztb_buf_cstr(&p), "POST", HTU, NULL, NOW, &r), ZTB_ERR_DPOP);
    }

    /* alg none / HS256 with the same embedded key */
    snprintf(hdr, sizeof(hdr), "{\"typ\":\"dpop+jwt\",\"alg\":\"none\",\"jwk\":%s}", jwk1);
    char forged[4096];
    char h64[1400], c64[700];
    ztb_b64url_encode(hdr, strlen(hdr), h64, sizeof(h64), NULL);
    ztb_b64url_encode(claims, strlen(claims), c64, sizeof(c64), NULL);
    snprintf(forged, sizeof(forged), "%s.%s.", h64, c64);
    assert_int_not_equal(check(forged, "POST", HTU, NULL, NOW, &r), ZTB_OK);

    /* garbage */
    assert_int_not_equal(check("a.b.c", "POST", HTU, NULL, NOW, &r), ZTB_OK);
    assert_int_not_equal(check("", "POST", HTU, NULL, NOW, &r), ZTB_OK);
    assert_int_equal(ztb_dpop_proof_check(NULL, 0, "POST", HTU, NULL, NOW, 60, 5, &r),
                     ZTB_ERR_INVALID_ARG);
    assert_int_equal(ztb_dpop_proof_make(k1, "", HTU, NOW, NULL, &p), ZTB_ERR_INVALID_ARG);
    assert_int_equal(ztb_dpop_proof_make(k1, "POST", "has space", NOW, NULL, &p),
                     ZTB_ERR_INVALID_ARG);
    ztb_buf_free(&p);
}

/*
 * A proof's key is its own, so a valid signature authenticates nobody: its
 * claims are untrusted JSON and get the strict reader. Before, jansson
 * accepted claims nested 40 deep (any depth up to its own 2048), building a
 * tree per request for whoever sent it.
 */
static void test_claims_read_strictly(void **state)
{
    (void)state;
    char jwk1[512], hdr[1024], claims[1024];
    jwk_of(k1, jwk1, sizeof(jwk1));
    snprintf(hdr, sizeof(hdr), "{\"typ\":\"dpop+jwt\",\"alg\":\"ES256\",\"jwk\":%s}", jwk1);
    int o = snprintf(claims, sizeof(claims),
                     "{\"jti\":\"abcdefghijklmnop\",\"htm\":\"POST\",\"htu\":\"%s\",\"iat\":%d,"
                     "\"x\":",
                     HTU, NOW);
    for (int i = 0; i < 40; i++)
        claims[o++] = '[';
    for (int i = 0; i < 40; i++)
        claims[o++] = ']';
    claims[o++] = '}';
    claims[o] = '\0';
    ztb_buf p;
    ztb_buf_init(&p, 8192);
    ztb_dpop_result r;
    craft(k1, hdr, claims, &p);
    assert_int_equal(check(ztb_buf_cstr(&p), "POST", HTU, NULL, NOW, &r), ZTB_ERR_DPOP);
    /* a duplicate claim spelled with an escape: one name after unescaping */
    snprintf(claims, sizeof(claims),
             "{\"jti\":\"abcdefghijklmnop\",\"htm\":\"POST\",\"htu\":\"%s\",\"iat\":%d,"
             "\"\\u0068tm\":\"GET\"}",
             HTU, NOW);
    craft(k1, hdr, claims, &p);
    assert_int_equal(check(ztb_buf_cstr(&p), "POST", HTU, NULL, NOW, &r), ZTB_ERR_DPOP);
    ztb_buf_free(&p);
}

/* The claims reader on its own: types, strictness, what a has_ flag means. */
static void test_claims_reader(void **state)
{
    (void)state;
    ztb_dpop_claims c;
    const char *ok = "{\"jti\":\"j\",\"htm\":\"POST\",\"htu\":\"https://x/\",\"iat\":5,"
                     "\"ath\":\"a\",\"other\":[{}]}";
    assert_int_equal(ztb_dpop_claims_read(ok, strlen(ok), &c), ZTB_OK);
    assert_true(c.has_jti && c.has_htm && c.has_htu && c.has_iat && c.has_ath);
    assert_int_equal(c.iat, 5);
    const char *types = "{\"jti\":1,\"htm\":[],\"iat\":5.0,\"ath\":null}";
    assert_int_equal(ztb_dpop_claims_read(types, strlen(types), &c), ZTB_OK);
    assert_false(c.has_jti || c.has_htm || c.has_iat || c.has_ath);
    assert_true(c.has_ath_member); /* present, of the wrong type */
    const char *bad[] = {
        "{\"jti\":\"\\ud800\"}", "{\"iat\":01}",         "{} {}", "{\"a\":1,\"a\":1}",
        "{\"s\":\"\\u0000\"}",   "{\"s\":\"\xc0\xaf\"}", ""};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(ztb_dpop_claims_read(bad[i], strlen(bad[i]), &c), ZTB_ERR_DPOP);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_request_mismatch_and_time),
        cmocka_unit_test(test_ath),
        cmocka_unit_test(test_forgeries),
        cmocka_unit_test(test_claims_read_strictly),
        cmocka_unit_test(test_claims_reader),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
