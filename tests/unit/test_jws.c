/*
 * test_jws.c - compact JWS sign/verify: round trips, every rejection with a
 * crafted token of its own, RFC 7515 examples, and interop with libjwt and
 * `openssl dgst`.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#ifdef ZTB_HAVE_LIBJWT /* optional, test-only (CMakeLists.txt) */
#include <jwt.h>
#endif
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "pki_test.h"

#include "common/secret.h"
#include "pki/es256.h"
#include "pki/jwk.h"
#include "common/guard.h"
#include "pki/jws.h"

static const char claims[] = "{\"iss\":\"https://broker.example.org\",\"sub\":\"spiffe://"
                             "example.org/agent/a1\",\"aud\":\"tools\",\"exp\":1900000000}";

struct fx {
    ztb_key *key;   /* signing key */
    ztb_key *other; /* a second key, not in the set */
    ztb_keyset *ks; /* public half of key */
    char hdr[256];  /* default header JSON of key with typ at+jwt */
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    assert_int_equal(ztb_key_generate(&f->key), ZTB_OK);
    assert_int_equal(ztb_key_generate(&f->other), ZTB_OK);
    ztb_key *pub;
    assert_int_equal(ztb_key_public_only(f->key, &pub), ZTB_OK);
    assert_int_equal(ztb_keyset_new(&pub, NULL, 1, &f->ks), ZTB_OK);
    ztb_key_free(pub);
    snprintf(f->hdr, sizeof(f->hdr), "{\"alg\":\"ES256\",\"typ\":\"at+jwt\",\"kid\":\"%s\"}",
             ztb_key_kid(f->key));
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    ztb_keyset_free(f->ks);
    ztb_key_free(f->key);
    ztb_key_free(f->other);
    free(f);
    return 0;
}

/* A token with header h and payload p, correctly signed with k. */
static const char *signed_token(const ztb_key *k, const char *h, const char *p)
{
    static char store[65536];
    ztb_buf b;
    ztb_buf_init_fixed(&b, store, sizeof(store));
    ztb_b64url_encode_buf(&b, h, strlen(h));
    ztb_buf_append_byte(&b, '.');
    ztb_b64url_encode_buf(&b, p, strlen(p));
    uint8_t sig[64];
    assert_int_equal(ztb_es256_sign(k, b.data, b.len, sig), ZTB_OK);
    ztb_buf_append_byte(&b, '.');
    ztb_b64url_encode_buf(&b, sig, sizeof(sig));
    assert_int_equal(ztb_buf_error(&b), ZTB_OK);
    return store;
}

static ztb_err verify(struct fx *f, const char *tok)
{
    return ztb_jws_verify(f->ks, tok, strlen(tok), NULL, NULL, NULL);
}

static void test_round_trip(void **state)
{
    struct fx *f = *state;
    char store[2048];
    ztb_buf tok;
    ztb_buf_init_fixed(&tok, store, sizeof(store));
    ztb_jws_sign_opts o = {.typ = "at+jwt"};
    assert_int_equal(ztb_jws_sign(f->key, &o, claims, strlen(claims), &tok), ZTB_OK);

    ztb_jws_header h;
    ztb_buf payload;
    ztb_buf_init(&payload, 4096);
    assert_int_equal(ztb_jws_verify(f->ks, store, tok.len, NULL, &h, &payload), ZTB_OK);
    assert_int_equal(payload.len, strlen(claims));
    assert_memory_equal(payload.data, claims, payload.len);
    assert_int_equal(h.alg, ZTB_ALG_ES256);
    assert_string_equal(h.kid, ztb_key_kid(f->key));
    assert_true(ztb_jws_header_typ_is(&h, "at+jwt"));
    /* the header is exactly the documented one, in this order */
    assert_int_equal(h.raw_len, strlen(f->hdr));
    assert_memory_equal(h.raw, f->hdr, h.raw_len);
    ztb_buf_free(&payload);

    /* the same token through the explicit-key path */
    assert_int_equal(ztb_jws_verify_with_key(f->key, store, tok.len, NULL, NULL, NULL), ZTB_OK);
}

static void test_sign_options_and_empty_payload(void **state)
{
    struct fx *f = *state;
    ztb_buf tok;
    ztb_buf_init(&tok, 4096);
    ztb_jws_sign_opts o = {.omit_kid = 1};
    assert_int_equal(ztb_jws_sign(f->key, &o, "", 0, &tok), ZTB_OK);
    ztb_jws_header h;
    ztb_buf payload;
    ztb_buf_init(&payload, 16);
    /* no kid: the key set cannot pick a key; the explicit key can */
    assert_int_equal(ztb_jws_verify(f->ks, ztb_buf_cstr(&tok), tok.len, NULL, &h, NULL),
                     ZTB_ERR_UNKNOWN_KID);
    assert_int_equal(
        ztb_jws_verify_with_key(f->key, ztb_buf_cstr(&tok), tok.len, NULL, &h, &payload), ZTB_OK);
    assert_false(h.has_kid);
    assert_false(h.has_typ);
    assert_int_equal(payload.len, 0);
    ztb_buf_free(&payload);
    ztb_buf_free(&tok);

    /* a typ needing JSON escapes is escaped, and reads back the same */
    ztb_buf_init(&tok, 4096);
    ztb_jws_sign_opts o2 = {.typ = "a\"b\\c"};
    assert_int_equal(ztb_jws_sign(f->key, &o2, claims, strlen(claims), &tok), ZTB_OK);
    assert_int_equal(ztb_jws_verify(f->ks, ztb_buf_cstr(&tok), tok.len, NULL, &h, NULL), ZTB_OK);
    assert_string_equal(h.typ, "a\"b\\c");
    ztb_buf_free(&tok);

    /* an over-long typ is the caller's mistake */
    char longtyp[ZTB_JWS_TYP_MAX + 2];
    memset(longtyp, 'x', sizeof(longtyp) - 1);
    longtyp[sizeof(longtyp) - 1] = '\0';
    ztb_buf_init(&tok, 4096);
    ztb_jws_sign_opts o3 = {.typ = longtyp};
    assert_int_equal(ztb_jws_sign(f->key, &o3, "x", 1, &tok), ZTB_ERR_INVALID_ARG);
    assert_int_equal(tok.len, 0);
    ztb_buf_free(&tok);
}

/* Signing into a fixed buffer that is too small leaves it as it was. */
static void test_sign_output_full(void **state)
{
    struct fx *f = *state;
    char store[100];
    ztb_buf tok;
    ztb_buf_init_fixed(&tok, store, sizeof(store));
    assert_int_equal(ztb_buf_append_str(&tok, "Bearer "), ZTB_OK);
    assert_int_equal(ztb_jws_sign(f->key, NULL, claims, strlen(claims), &tok), ZTB_ERR_TOO_LARGE);
    assert_int_equal(tok.len, 7);
    assert_int_equal(ztb_buf_error(&tok), ZTB_OK);
    assert_string_equal(store, "Bearer ");
}

static void test_public_key_cannot_sign(void **state)
{
    struct fx *f = *state;
    const ztb_key *pub = ztb_keyset_at(f->ks, 0);
    ztb_buf tok;
    ztb_buf_init(&tok, 4096);
    assert_int_equal(ztb_jws_sign(pub, NULL, "x", 1, &tok), ZTB_ERR_KEY);
    ztb_buf_free(&tok);
}

/* ztb_jws_sign_with: the header names the public key's kid, the callback
 * gets that kid and the SHA-256 of the signing input (the broker's signer
 * process signs it); its error is returned and leaves out as it was. */
static ztb_err remote_sign(void *arg, const char *kid, const uint8_t digest[32],
                           uint8_t sig[ZTB_ES256_SIG_LEN])
{
    const ztb_key *k = arg;
    assert_string_equal(kid, ztb_key_kid(k));
    uint8_t der[ZTB_ES256_DER_MAX];
    size_t derlen = sizeof(der);
    ZTB_GUARD(ztb_es256_sign_digest(k, digest, der, &derlen));
    return ztb_es256_der_to_raw(der, derlen, sig);
}

static ztb_err remote_down(void *arg, const char *kid, const uint8_t digest[32],
                           uint8_t sig[ZTB_ES256_SIG_LEN])
{
    (void)arg;
    (void)kid;
    (void)digest;
    (void)sig;
    return ZTB_ERR_UNAVAILABLE;
}

static void test_sign_with_remote_signer(void **state)
{
    struct fx *f = *state;
    const ztb_key *pub = ztb_keyset_at(f->ks, 0);
    assert_false(ztb_key_has_private(pub));
    ztb_buf tok;
    ztb_buf_init(&tok, 4096);
    ztb_jws_sign_opts o = {.typ = "at+jwt"};
    /* the signing key behind the public one, as the signer holds it */
    assert_int_equal(
        ztb_jws_sign_with(pub, &o, claims, strlen(claims), remote_sign, (void *)f->key, &tok),
        ZTB_OK);
    assert_int_equal(verify(f, ztb_buf_cstr(&tok)), ZTB_OK);
    ztb_buf_reset(&tok);
    ztb_buf_append_str(&tok, "kept");
    assert_int_equal(ztb_jws_sign_with(pub, &o, claims, strlen(claims), remote_down, NULL, &tok),
                     ZTB_ERR_UNAVAILABLE);
    assert_int_equal(tok.len, 4); /* left as it was */
    assert_int_equal(ztb_jws_sign_with(pub, &o, claims, strlen(claims), NULL, NULL, &tok),
                     ZTB_ERR_INVALID_ARG);
    ztb_buf_free(&tok);
}

/* HS256 with the verifier's public key PEM as the HMAC secret (the classic). */
static void test_rejects_hs256_keyed_with_public_key(void **state)
{
    struct fx *f = *state;
    ztb_buf pem;
    ztb_buf_init(&pem, 4096);
    assert_int_equal(ztb_key_public_pem(f->key, &pem), ZTB_OK);
    char h[256];
    snprintf(h, sizeof(h), "{\"alg\":\"HS256\",\"typ\":\"at+jwt\",\"kid\":\"%s\"}",
             ztb_key_kid(f->key));
    char input[4096];
    ztb_buf in;
    ztb_buf_init_fixed(&in, input, sizeof(input));
    ztb_b64url_encode_buf(&in, h, strlen(h));
    ztb_buf_append_byte(&in, '.');
    ztb_b64url_encode_buf(&in, claims, strlen(claims));
    uint8_t mac[32];
    unsigned int maclen = 0;
    assert_non_null(HMAC(EVP_sha256(), pem.data, (int)pem.len, in.data, in.len, mac, &maclen));
    ztb_buf_append_byte(&in, '.');
    ztb_b64url_encode_buf(&in, mac, maclen);
    assert_int_equal(ztb_buf_error(&in), ZTB_OK);
    assert_int_equal(verify(f, input), ZTB_ERR_ALG);
    ztb_buf_free(&pem);
}

static void test_rejects_alg_none(void **state)
{
    struct fx *f = *state;
    char h[256];
    snprintf(h, sizeof(h), "{\"alg\":\"none\",\"kid\":\"%s\"}", ztb_key_kid(f->key));
    /* the unsecured form has an empty signature */
    const char *tok = pkt_token(h, claims, "", 0);
    assert_int_equal(verify(f, tok), ZTB_ERR_ALG);
    /* and with a real ES256 signature over it, still the alg decides */
    assert_int_equal(verify(f, signed_token(f->key, h, claims)), ZTB_ERR_ALG);
    /* RFC 7515 A.5, verbatim */
    const char *a5 = "eyJhbGciOiJub25lIn0"
                     ".eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9p"
                     "c19yb290Ijp0cnVlfQ.";
    assert_int_equal(ztb_jws_verify_with_key(f->key, a5, strlen(a5), NULL, NULL, NULL),
                     ZTB_ERR_ALG);
}

static void test_rejects_other_algs(void **state)
{
    struct fx *f = *state;
    const char *algs[] = {"RS256", "ES384",  "ES512",
                          "PS256", "EdDSA",  "HS512",
                          "es256", "ES256 ", "ES2560123456789012345"};
    for (size_t i = 0; i < sizeof(algs) / sizeof(algs[0]); i++) {
        char h[256];
        snprintf(h, sizeof(h), "{\"alg\":\"%s\",\"kid\":\"%s\"}", algs[i], ztb_key_kid(f->key));
        assert_int_equal(verify(f, signed_token(f->key, h, claims)), ZTB_ERR_ALG);
    }
    /* RFC 7515 A.1 (HS256), verbatim */
    const char *a1 = "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9"
                     ".eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9p"
                     "c19yb290Ijp0cnVlfQ.dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    assert_int_equal(ztb_jws_verify_with_key(f->key, a1, strlen(a1), NULL, NULL, NULL),
                     ZTB_ERR_ALG);
}

static void test_rejects_unknown_kid(void **state)
{
    struct fx *f = *state;
    /* a well-formed token from a key the set does not have */
    char h[256];
    snprintf(h, sizeof(h), "{\"alg\":\"ES256\",\"kid\":\"%s\"}", ztb_key_kid(f->other));
    assert_int_equal(verify(f, signed_token(f->other, h, claims)), ZTB_ERR_UNKNOWN_KID);
    /* no kid at all */
    assert_int_equal(verify(f, signed_token(f->key, "{\"alg\":\"ES256\"}", claims)),
                     ZTB_ERR_UNKNOWN_KID);
    /* a prefix of the right kid */
    snprintf(h, sizeof(h), "{\"alg\":\"ES256\",\"kid\":\"%.42s\"}", ztb_key_kid(f->key));
    assert_int_equal(verify(f, signed_token(f->key, h, claims)), ZTB_ERR_UNKNOWN_KID);
}

static void test_rejects_forbidden_headers(void **state)
{
    struct fx *f = *state;
    const char *members[] = {
        "\"jwk\":{\"kty\":\"EC\"}",
        "\"jku\":\"https://evil.example/jwks\"",
        "\"x5u\":\"https://evil.example/cert\"",
        "\"x5c\":[\"MIIB\"]",
        "\"crit\":[\"exp\"]",
        "\"crit\":[]",
    };
    for (size_t i = 0; i < sizeof(members) / sizeof(members[0]); i++) {
        char h[512];
        snprintf(h, sizeof(h), "{\"alg\":\"ES256\",\"kid\":\"%s\",%s}", ztb_key_kid(f->key),
                 members[i]);
        const char *tok = signed_token(f->key, h, claims);
        assert_int_equal(verify(f, tok), ZTB_ERR_FORBIDDEN_HEADER);
        ztb_jws_header hdr;
        assert_int_equal(ztb_jws_peek(tok, strlen(tok), NULL, &hdr), ZTB_ERR_FORBIDDEN_HEADER);
    }
}

/* DPoP: a caller-chosen header with an embedded jwk, verified with that jwk. */
static void test_dpop_style_jwk_header(void **state)
{
    struct fx *f = *state;
    ztb_buf jwk, h;
    ztb_buf_init(&jwk, 1024);
    ztb_buf_init(&h, 1024);
    assert_int_equal(ztb_jwk_render(f->other, &jwk), ZTB_OK);
    ztb_buf_printf(&h, "{\"typ\":\"dpop+jwt\",\"alg\":\"ES256\",\"jwk\":%s}", ztb_buf_cstr(&jwk));
    ztb_jws_sign_opts o = {.header = ztb_buf_cstr(&h), .header_len = h.len};
    ztb_buf tok;
    ztb_buf_init(&tok, 4096);
    const char *proof = "{\"htm\":\"POST\",\"htu\":\"https://broker/v1/token\"}";
    assert_int_equal(ztb_jws_sign(f->other, &o, proof, strlen(proof), &tok), ZTB_OK);

    /* refused as an access token, whatever the key */
    assert_int_equal(
        ztb_jws_verify_with_key(f->other, ztb_buf_cstr(&tok), tok.len, NULL, NULL, NULL),
        ZTB_ERR_FORBIDDEN_HEADER);
    /* accepted as a DPoP proof: peek, build the key from the jwk, verify with it */
    ztb_jws_verify_opts vo = {.flags = ZTB_JWS_ALLOW_JWK};
    ztb_jws_header hdr;
    assert_int_equal(ztb_jws_peek(ztb_buf_cstr(&tok), tok.len, &vo, &hdr), ZTB_OK);
    assert_true(hdr.present & ZTB_JWS_HDR_JWK);
    ztb_key *k = NULL;
    assert_int_equal(ztb_jwk_parse((const char *)hdr.raw + hdr.jwk_off, hdr.jwk_len, 0, &k),
                     ZTB_OK);
    assert_true(ztb_key_same_public(k, f->other));
    ztb_buf payload;
    ztb_buf_init(&payload, 1024);
    assert_int_equal(ztb_jws_verify_with_key(k, ztb_buf_cstr(&tok), tok.len, &vo, &hdr, &payload),
                     ZTB_OK);
    assert_true(ztb_jws_header_typ_is(&hdr, "dpop+jwt"));
    assert_string_equal(ztb_buf_cstr(&payload), proof);
    /* and a proof whose jwk is not the signer's fails */
    assert_int_equal(ztb_jws_verify_with_key(f->key, ztb_buf_cstr(&tok), tok.len, &vo, &hdr, NULL),
                     ZTB_ERR_SIGNATURE);
    ztb_key_free(k);
    ztb_buf_free(&payload);
    ztb_buf_free(&tok);
    ztb_buf_free(&jwk);
    ztb_buf_free(&h);
}

static void test_sign_refuses_bad_caller_header(void **state)
{
    struct fx *f = *state;
    struct {
        const char *h;
        ztb_err want;
    } cases[] = {
        {"{\"alg\":\"HS256\"}", ZTB_ERR_ALG},
        {"{\"alg\":\"none\"}", ZTB_ERR_ALG},
        {"{\"alg\":\"ES256\",\"x5u\":\"https://x\"}", ZTB_ERR_FORBIDDEN_HEADER},
        {"{\"alg\":\"ES256\",\"crit\":[\"b64\"],\"b64\":false}", ZTB_ERR_FORBIDDEN_HEADER},
        {"{\"alg\":\"ES256\",\"alg\":\"ES256\"}", ZTB_ERR_JSON},
        {"{\"alg\":\"ES256\"", ZTB_ERR_JSON},
        {"{\"typ\":\"x\"}", ZTB_ERR_JWS_HEADER},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        ztb_buf tok;
        ztb_buf_init(&tok, 4096);
        ztb_jws_sign_opts o = {.header = cases[i].h, .header_len = strlen(cases[i].h)};
        assert_int_equal(ztb_jws_sign(f->key, &o, "x", 1, &tok), cases[i].want);
        assert_int_equal(tok.len, 0);
        ztb_buf_free(&tok);
    }
}

/* A DER signature is valid ECDSA but not JWS: its length gives it away. */
static void test_rejects_der_signature(void **state)
{
    struct fx *f = *state;
    const char *tok = signed_token(f->key, f->hdr, claims);
    const char *d2 = strrchr(tok, '.');
    uint8_t raw[64], der[ZTB_ES256_DER_MAX];
    size_t n;
    assert_int_equal(ztb_b64url_decode(d2 + 1, strlen(d2 + 1), raw, sizeof(raw), &n), ZTB_OK);
    size_t dlen = ztb_es256_raw_to_der(raw, der);
    char bad[4096];
    snprintf(bad, sizeof(bad), "%.*s.", (int)(d2 - tok), tok);
    size_t at = strlen(bad);
    assert_int_equal(ztb_b64url_encode(der, dlen, bad + at, sizeof(bad) - at, NULL), ZTB_OK);
    assert_int_equal(verify(f, bad), ZTB_ERR_SIG_FORMAT);
}

static void test_rejects_wrong_length_signature(void **state)
{
    struct fx *f = *state;
    uint8_t sig[66] = {1};
    const size_t lens[] = {0, 1, 32, 63, 65, 66};
    for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++)
        assert_int_equal(verify(f, pkt_token(f->hdr, claims, sig, lens[i])), ZTB_ERR_SIG_FORMAT);
}

static void test_rejects_bad_signature(void **state)
{
    struct fx *f = *state;
    char tok[4096];
    snprintf(tok, sizeof(tok), "%s", signed_token(f->key, f->hdr, claims));
    assert_int_equal(verify(f, tok), ZTB_OK);

    /* one bit of the signature (a middle character keeps it canonical) */
    char *sig = strrchr(tok, '.') + 1;
    sig[10] = sig[10] == 'A' ? 'B' : 'A';
    assert_int_equal(verify(f, tok), ZTB_ERR_SIGNATURE);

    /* right kid, signed by another key */
    assert_int_equal(verify(f, signed_token(f->other, f->hdr, claims)), ZTB_ERR_SIGNATURE);

    /* payload swapped after signing */
    snprintf(tok, sizeof(tok), "%s", signed_token(f->key, f->hdr, claims));
    char *p = strchr(tok, '.') + 1;
    p[3] = p[3] == 'A' ? 'B' : 'A';
    assert_int_equal(verify(f, tok), ZTB_ERR_SIGNATURE);

    /* r = 0, s = 0, and r = s = the group order */
    uint8_t zero[64] = {0};
    assert_int_equal(verify(f, pkt_token(f->hdr, claims, zero, 64)), ZTB_ERR_SIGNATURE);
    static const uint8_t order[32] = {0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00,
                                      0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                      0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84,
                                      0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51};
    uint8_t rs[64];
    memcpy(rs, order, 32);
    memcpy(rs + 32, order, 32);
    assert_int_equal(verify(f, pkt_token(f->hdr, claims, rs, 64)), ZTB_ERR_SIGNATURE);
}

static void test_rejects_noncanonical_base64(void **state)
{
    struct fx *f = *state;
    char tok[4096], bad[4096];
    snprintf(tok, sizeof(tok), "%s", signed_token(f->key, f->hdr, claims));
    const char *d1 = strchr(tok, '.'), *d2 = strrchr(tok, '.');

    /* header with '=' padding */
    snprintf(bad, sizeof(bad), "%.*s=%s", (int)(d1 - tok), tok, d1);
    assert_int_equal(verify(f, bad), ZTB_ERR_BASE64);
    /* header in the standard alphabet ('+' instead of '-') is not base64url */
    snprintf(bad, sizeof(bad), "+%s", tok + 1);
    assert_int_equal(verify(f, bad), ZTB_ERR_BASE64);

    /* signature: 86 characters whose last one carries stray low bits */
    snprintf(bad, sizeof(bad), "%s", tok);
    char *last = bad + strlen(bad) - 1;
    const char *alpha = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    int v = (int)(strchr(alpha, *last) - alpha);
    *last = alpha[v | 1]; /* 86 % 4 == 2: the low 4 bits must be zero */
    assert_int_equal(verify(f, bad), ZTB_ERR_BASE64);

    /* payload: a non-canonical spelling, validly signed, is still refused */
    char hb[512];
    size_t hbn;
    assert_int_equal(ztb_b64url_encode(f->hdr, strlen(f->hdr), hb, sizeof(hb), &hbn), ZTB_OK);
    const char *pl = "eyJhIjoxfR"; /* {"a":1} is "eyJhIjoxfQ": 'R' sets a stray bit */
    char input[1024];
    snprintf(input, sizeof(input), "%s.%s", hb, pl);
    uint8_t sig[64];
    assert_int_equal(ztb_es256_sign(f->key, input, strlen(input), sig), ZTB_OK);
    size_t at = strlen(input);
    input[at++] = '.';
    assert_int_equal(ztb_b64url_encode(sig, 64, input + at, sizeof(input) - at, NULL), ZTB_OK);
    ztb_buf payload;
    ztb_buf_init(&payload, 1024);
    assert_int_equal(ztb_jws_verify(f->ks, input, strlen(input), NULL, NULL, &payload),
                     ZTB_ERR_BASE64);
    assert_int_equal(payload.len, 0);
    assert_int_equal(ztb_jws_verify(f->ks, input, strlen(input), NULL, NULL, NULL), ZTB_ERR_BASE64);
    /* the canonical spelling of the same payload verifies */
    ztb_buf_free(&payload);
    (void)d2;
}

static void test_rejects_wrong_segment_count(void **state)
{
    struct fx *f = *state;
    char tok[4096], bad[8192];
    snprintf(tok, sizeof(tok), "%s", signed_token(f->key, f->hdr, claims));
    snprintf(bad, sizeof(bad), "%s.", tok); /* four segments, last empty */
    assert_int_equal(verify(f, bad), ZTB_ERR_JWS_FORMAT);
    snprintf(bad, sizeof(bad), "%s.%s", tok, strrchr(tok, '.') + 1); /* four */
    assert_int_equal(verify(f, bad), ZTB_ERR_JWS_FORMAT);
    snprintf(bad, sizeof(bad), "%s.a.b", tok); /* five, JWE-like */
    assert_int_equal(verify(f, bad), ZTB_ERR_JWS_FORMAT);
    snprintf(bad, sizeof(bad), "%.*s", (int)(strrchr(tok, '.') - tok), tok); /* two */
    assert_int_equal(verify(f, bad), ZTB_ERR_JWS_FORMAT);
    assert_int_equal(verify(f, "abc"), ZTB_ERR_JWS_FORMAT);
    assert_int_equal(verify(f, ""), ZTB_ERR_JWS_FORMAT);
    assert_int_equal(verify(f, ".."), ZTB_ERR_JWS_FORMAT);
    snprintf(bad, sizeof(bad), "%s", strchr(tok, '.')); /* empty header */
    assert_int_equal(verify(f, bad), ZTB_ERR_JWS_FORMAT);
    /* an embedded NUL is not a terminator: the length given is what counts */
    size_t n = strlen(tok);
    memcpy(bad, tok, n + 1);
    bad[2] = '\0';
    assert_int_equal(ztb_jws_verify(f->ks, bad, n, NULL, NULL, NULL), ZTB_ERR_BASE64);
}

static void test_rejects_oversized(void **state)
{
    struct fx *f = *state;
    /* build a payload so the token is exactly 8192 bytes, then one more */
    char *big = malloc(8192);
    assert_non_null(big);
    size_t hb = ztb_b64url_encoded_len(strlen(f->hdr));
    size_t room = ZTB_JWS_DEFAULT_MAX - hb - 2 - 86; /* characters for the payload */
    size_t praw = room / 4 * 3;                      /* whole quanta */
    memset(big, 'a', praw);
    big[0] = '"';
    big[praw - 1] = '"';
    big[praw] = '\0';
    const char *tok = signed_token(f->key, f->hdr, big);
    size_t len = strlen(tok);
    assert_true(len <= ZTB_JWS_DEFAULT_MAX);
    assert_int_equal(verify(f, tok), ZTB_OK);
    char *over = malloc(ZTB_JWS_DEFAULT_MAX + 2);
    assert_non_null(over);
    memset(over, 'A', ZTB_JWS_DEFAULT_MAX + 1);
    over[ZTB_JWS_DEFAULT_MAX + 1] = '\0';
    assert_int_equal(verify(f, over), ZTB_ERR_TOO_LARGE);
    /* a caller cap below the token's length */
    ztb_jws_verify_opts o = {.max_len = len - 1};
    assert_int_equal(ztb_jws_verify(f->ks, tok, len, &o, NULL, NULL), ZTB_ERR_TOO_LARGE);
    o.max_len = len;
    assert_int_equal(ztb_jws_verify(f->ks, tok, len, &o, NULL, NULL), ZTB_OK);
    /* a header longer than the header cap */
    char *hbig = malloc(ZTB_JWS_HEADER_MAX + 64);
    assert_non_null(hbig);
    int k = snprintf(hbig, ZTB_JWS_HEADER_MAX + 64, "{\"alg\":\"ES256\",\"kid\":\"%s\",\"x\":\"",
                     ztb_key_kid(f->key));
    memset(hbig + k, 'x', ZTB_JWS_HEADER_MAX + 1 - (size_t)k);
    strcpy(hbig + ZTB_JWS_HEADER_MAX + 1 - 2, "\"}"); /* one byte over the cap */
    assert_int_equal(verify(f, signed_token(f->key, hbig, claims)), ZTB_ERR_JWS_HEADER);
    free(hbig);
    free(over);
    free(big);
}

static void test_rejects_bad_header_json(void **state)
{
    struct fx *f = *state;
    const char *kid = ztb_key_kid(f->key);
    char h[512];
    const char *fmts[] = {
        "{\"alg\":\"ES256\",\"alg\":\"ES256\",\"kid\":\"%s\"}",       /* duplicate alg */
        "{\"alg\":\"ES256\",\"kid\":\"%s\",\"kid\":\"x\"}",           /* duplicate kid */
        "{\"alg\":\"ES256\",\"\\u0061lg\":\"HS256\",\"kid\":\"%s\"}", /* dup via escape */
        "{\"alg\":\"ES256\",\"kid\":\"%s\",}",                        /* trailing comma */
        "{\"alg\":\"ES256\",\"kid\":\"%s\"}x",                        /* trailing bytes */
        "{\"alg\":'ES256',\"kid\":\"%s\"}",                           /* single quotes */
        "{alg:\"ES256\",\"kid\":\"%s\"}",                             /* bare name */
        "{\"alg\":\"ES256\",\"kid\":\"%s\",\"n\":01}",                /* leading zero */
        "{\"alg\":\"ES256\",\"kid\":\"%s\",\"n\":NaN}",               /* not JSON */
        "{\"alg\":\"ES256\",\"kid\":\"%s\",\"s\":\"a\tb\"}",          /* raw tab */
        "{\"alg\":\"ES256\",\"kid\":\"%s\",\"s\":\"\\x41\"}",         /* bad escape */
        "{\"alg\":\"ES256\",\"kid\":\"%s\",\"s\":\"\\ud800\"}",       /* lone surrogate */
        "{\"alg\":\"ES256\",\"kid\":\"%s\",\"s\":\"\xc0\xaf\"}",      /* overlong UTF-8 */
        "{\"alg\":\"ES256\",\"kid\":\"%s\",\"s\":\"\\u0000\"}",       /* NUL */
        "{\"alg\":\"ES256\",\"kid\":\"%s\"",                          /* unterminated */
    };
    for (size_t i = 0; i < sizeof(fmts) / sizeof(fmts[0]); i++) {
        pkt_subst(h, sizeof(h), fmts[i], kid);
        assert_int_equal(verify(f, signed_token(f->key, h, claims)), ZTB_ERR_JSON);
    }
    /* valid JSON that is not a usable header */
    const char *notheader[] = {"[\"ES256\"]",
                               "\"ES256\"",
                               "{}",
                               "{\"alg\":256,\"kid\":\"%s\"}",
                               "{\"alg\":\"ES256\",\"kid\":42}",
                               "{\"alg\":\"ES256\",\"kid\":\"%s\",\"typ\":[\"at+jwt\"]}"};
    for (size_t i = 0; i < sizeof(notheader) / sizeof(notheader[0]); i++) {
        pkt_subst(h, sizeof(h), notheader[i], kid);
        assert_int_equal(verify(f, signed_token(f->key, h, claims)), ZTB_ERR_JWS_HEADER);
    }
}

/* RFC 7515 Appendix A.3: the ES256 example verifies with its published key. */
static void test_rfc7515_a3(void **state)
{
    (void)state;
    const char *jwk = "{\"kty\":\"EC\",\"crv\":\"P-256\","
                      "\"x\":\"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU\","
                      "\"y\":\"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0\"}";
    const char *tok = "eyJhbGciOiJFUzI1NiJ9"
                      ".eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNv"
                      "bS9pc19yb290Ijp0cnVlfQ"
                      ".DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJ"
                      "qPP3-Kg6NU1Q";
    ztb_key *k = NULL;
    assert_int_equal(ztb_jwk_parse(jwk, strlen(jwk), 0, &k), ZTB_OK);
    ztb_buf payload;
    ztb_buf_init(&payload, 1024);
    assert_int_equal(ztb_jws_verify_with_key(k, tok, strlen(tok), NULL, NULL, &payload), ZTB_OK);
    const char *want = "{\"iss\":\"joe\",\r\n \"exp\":1300819380,\r\n "
                       "\"http://example.com/is_root\":true}";
    assert_string_equal(ztb_buf_cstr(&payload), want);
    /* the example has no kid, so a key set cannot pick its key */
    ztb_keyset *ks;
    assert_int_equal(ztb_keyset_new(&k, NULL, 1, &ks), ZTB_OK);
    assert_int_equal(ztb_jws_verify(ks, tok, strlen(tok), NULL, NULL, NULL), ZTB_ERR_UNKNOWN_KID);
    ztb_keyset_free(ks);
    ztb_buf_free(&payload);
    ztb_key_free(k);
}

/* A payload buffer that is too small: TOO_LARGE, buffer untouched. */
static void test_payload_buffer_too_small(void **state)
{
    struct fx *f = *state;
    const char *tok = signed_token(f->key, f->hdr, claims);
    char store[16];
    ztb_buf p;
    ztb_buf_init_fixed(&p, store, sizeof(store));
    assert_int_equal(ztb_jws_verify(f->ks, tok, strlen(tok), NULL, NULL, &p), ZTB_ERR_TOO_LARGE);
    assert_int_equal(p.len, 0);
}

#ifdef ZTB_HAVE_LIBJWT
/* Interop: libjwt decodes and verifies what we sign, and we verify libjwt's. */
static void test_interop_libjwt(void **state)
{
    struct fx *f = *state;
    ztb_buf pub, priv, tok;
    ztb_buf_init(&pub, 4096);
    ztb_buf_init_secret(&priv, 4096);
    ztb_buf_init(&tok, 4096);
    assert_int_equal(ztb_key_public_pem(f->key, &pub), ZTB_OK);
    assert_int_equal(ztb_key_private_pem(f->key, NULL, 0, &priv), ZTB_OK);
    /*
     * libjwt 1.10 refuses any typ but "JWT" (EINVAL) whatever the signature,
     * so an RFC 9068 access token (typ at+jwt) cannot be read by it; the same
     * key and claims with typ "JWT" show that the signature is what it checks.
     */
    ztb_jws_sign_opts at = {.typ = "at+jwt"};
    assert_int_equal(ztb_jws_sign(f->key, &at, claims, strlen(claims), &tok), ZTB_OK);
    jwt_t *jwt = NULL;
    assert_int_equal(jwt_decode(&jwt, ztb_buf_cstr(&tok), pub.data, (int)pub.len), EINVAL);
    jwt_free(jwt);
    ztb_buf_reset(&tok);

    ztb_jws_sign_opts o = {.typ = "JWT"};
    assert_int_equal(ztb_jws_sign(f->key, &o, claims, strlen(claims), &tok), ZTB_OK);
    jwt = NULL;
    assert_int_equal(jwt_decode(&jwt, ztb_buf_cstr(&tok), pub.data, (int)pub.len), 0);
    assert_int_equal(jwt_get_alg(jwt), JWT_ALG_ES256);
    assert_string_equal(jwt_get_grant(jwt, "aud"), "tools");
    assert_string_equal(jwt_get_header(jwt, "kid"), ztb_key_kid(f->key));
    jwt_free(jwt);
    /* and libjwt refuses it under another key (so the check above means something) */
    ztb_buf opub;
    ztb_buf_init(&opub, 4096);
    assert_int_equal(ztb_key_public_pem(f->other, &opub), ZTB_OK);
    jwt = NULL;
    assert_int_not_equal(jwt_decode(&jwt, ztb_buf_cstr(&tok), opub.data, (int)opub.len), 0);
    jwt_free(jwt);
    ztb_buf_free(&opub);

    /* the other direction */
    jwt = NULL;
    assert_int_equal(jwt_new(&jwt), 0);
    assert_int_equal(jwt_add_grants_json(jwt, claims), 0);
    assert_int_equal(jwt_add_header(jwt, "kid", ztb_key_kid(f->key)), 0);
    assert_int_equal(jwt_set_alg(jwt, JWT_ALG_ES256, priv.data, (int)priv.len), 0);
    char *lt = jwt_encode_str(jwt);
    assert_non_null(lt);
    ztb_buf payload;
    ztb_buf_init(&payload, 4096);
    assert_int_equal(ztb_jws_verify(f->ks, lt, strlen(lt), NULL, NULL, &payload), ZTB_OK);
    assert_non_null(strstr(ztb_buf_cstr(&payload), "\"aud\":\"tools\""));
    ztb_buf_free(&payload);
    free(lt);
    jwt_free(jwt);
    ztb_buf_free(&pub);
    ztb_buf_free(&priv);
    ztb_buf_free(&tok);
}

#endif /* ZTB_HAVE_LIBJWT */

/* Interop: `openssl dgst -sha256 -verify` accepts the signing input and the
 * signature converted to DER; and refuses it for a changed input. */
static void test_interop_openssl_dgst(void **state)
{
    struct fx *f = *state;
    char *dir = pkt_tmpdir();
    assert_non_null(dir);
    ztb_buf pub, tok;
    ztb_buf_init(&pub, 4096);
    ztb_buf_init(&tok, 4096);
    assert_int_equal(ztb_key_public_pem(f->key, &pub), ZTB_OK);
    assert_int_equal(ztb_jws_sign(f->key, NULL, claims, strlen(claims), &tok), ZTB_OK);
    const char *t = ztb_buf_cstr(&tok);
    const char *d2 = strrchr(t, '.');
    uint8_t raw[64], der[ZTB_ES256_DER_MAX];
    size_t n;
    assert_int_equal(ztb_b64url_decode(d2 + 1, strlen(d2 + 1), raw, sizeof(raw), &n), ZTB_OK);
    assert_int_equal(n, 64);
    size_t dlen = ztb_es256_raw_to_der(raw, der);

    char p_pub[600], p_in[600], p_sig[600], p_bad[600], cmd[4096];
    snprintf(p_pub, sizeof(p_pub), "%s/pub.pem", dir);
    snprintf(p_in, sizeof(p_in), "%s/input", dir);
    snprintf(p_bad, sizeof(p_bad), "%s/input.bad", dir);
    snprintf(p_sig, sizeof(p_sig), "%s/sig.der", dir);
    assert_int_equal(pkt_write(p_pub, pub.data, pub.len, 0600), 0);
    assert_int_equal(pkt_write(p_in, t, (size_t)(d2 - t), 0600), 0);
    assert_int_equal(pkt_write(p_bad, t, (size_t)(d2 - t) - 1, 0600), 0);
    assert_int_equal(pkt_write(p_sig, der, dlen, 0600), 0);
    snprintf(cmd, sizeof(cmd), "openssl dgst -sha256 -verify %s -signature %s %s >/dev/null 2>&1",
             p_pub, p_sig, p_in);
    assert_int_equal(system(cmd), 0);
    snprintf(cmd, sizeof(cmd), "openssl dgst -sha256 -verify %s -signature %s %s >/dev/null 2>&1",
             p_pub, p_sig, p_bad);
    assert_int_not_equal(system(cmd), 0);
    ztb_buf_free(&pub);
    ztb_buf_free(&tok);
    pkt_rmdir(dir);
}

/* Malformed tokens are refused without touching the output buffers. */
static void test_reject_leaves_outputs(void **state)
{
    struct fx *f = *state;
    ztb_buf p;
    ztb_buf_init(&p, 1024);
    assert_int_equal(ztb_buf_append_str(&p, "keep"), ZTB_OK);
    assert_int_equal(ztb_jws_verify(f->ks, "a.b", 3, NULL, NULL, &p), ZTB_ERR_JWS_FORMAT);
    assert_string_equal(ztb_buf_cstr(&p), "keep");
    assert_int_equal(ztb_jws_verify(NULL, "a.b.c", 5, NULL, NULL, &p), ZTB_ERR_INVALID_ARG);
    assert_int_equal(ztb_jws_verify(f->ks, NULL, 5, NULL, NULL, &p), ZTB_ERR_INVALID_ARG);
    ztb_buf_free(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_sign_options_and_empty_payload),
        cmocka_unit_test(test_sign_output_full),
        cmocka_unit_test(test_public_key_cannot_sign),
        cmocka_unit_test(test_sign_with_remote_signer),
        cmocka_unit_test(test_rejects_hs256_keyed_with_public_key),
        cmocka_unit_test(test_rejects_alg_none),
        cmocka_unit_test(test_rejects_other_algs),
        cmocka_unit_test(test_rejects_unknown_kid),
        cmocka_unit_test(test_rejects_forbidden_headers),
        cmocka_unit_test(test_dpop_style_jwk_header),
        cmocka_unit_test(test_sign_refuses_bad_caller_header),
        cmocka_unit_test(test_rejects_der_signature),
        cmocka_unit_test(test_rejects_wrong_length_signature),
        cmocka_unit_test(test_rejects_bad_signature),
        cmocka_unit_test(test_rejects_noncanonical_base64),
        cmocka_unit_test(test_rejects_wrong_segment_count),
        cmocka_unit_test(test_rejects_oversized),
        cmocka_unit_test(test_rejects_bad_header_json),
        cmocka_unit_test(test_rfc7515_a3),
        cmocka_unit_test(test_payload_buffer_too_small),
#ifdef ZTB_HAVE_LIBJWT
        cmocka_unit_test(test_interop_libjwt),
#endif
        cmocka_unit_test(test_interop_openssl_dgst),
        cmocka_unit_test(test_reject_leaves_outputs),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
