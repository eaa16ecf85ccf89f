/*
 * test_ssf_set.c - reading a transmitter's SET: the unverified iss peek,
 * every RFC 9493 subject ztb maps (SPIFFE URI, jwt_id, the subjects table,
 * complex, CAEP drafts' event subject), and each refusal with its error.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

/* the cases are printf templates kept in tables; each is filled with the same arguments */
#pragma GCC diagnostic ignored "-Wformat-nonliteral"

#include "broker/ssf/ssf_set.h"
#include "common/base64url.h"
#include "common/buf.h"
#include "pki/jwk.h"
#include "pki/key.h"

#define NOW 1767225600
#define SR  "\"https://schemas.openid.net/secevent/caep/event-type/session-revoked\""

static struct ssf_config *cfg;

static int setup(void **state)
{
    (void)state;
    ztb_key *k = NULL;
    ztb_buf b;
    ztb_buf_init(&b, 2048);
    assert_int_equal(ztb_key_generate(&k), ZTB_OK);
    assert_int_equal(ztb_jwks_render((const ztb_key *const *)&k, 1, &b), ZTB_OK);
    char text[4096], why[300];
    snprintf(text, sizeof(text),
             "{\"transmitters\":[{\"name\":\"idp\",\"issuer\":\"https://idp.test\",\"jwks\":%s,"
             "\"subjects\":{\"email:bot@idp.test\":\"billing-bot\",\"opaque:x1\":\"ops-bot\","
             "\"iss_sub:https://idp.test|7\":\"sub-bot\"}}]}",
             ztb_buf_cstr(&b));
    assert_int_equal(
        ssf_config_parse(text, strlen(text), "https://broker.example", &cfg, why, sizeof(why)),
        ZTB_OK);
    ztb_buf_free(&b);
    ztb_key_free(k);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    ssf_config_free(cfg);
    return 0;
}

static ztb_err read_set(const char *json, struct ssf_set *s, char *why)
{
    struct ssf_set_opts o = {.t = &cfg->tx[0],
                             .trust_domain = "ztb.local",
                             .our_issuer = "https://broker.example",
                             .now = NOW,
                             .max_age = 300};
    why[0] = '\0';
    return ssf_set_read(json, strlen(json), &o, s, why, 300);
}

/* Claims with sub_id (JSON) and one event (quoted URI) of body ev. */
static char *claims(const char *sub_id, const char *event, const char *ev)
{
    static char buf[4096];
    snprintf(buf, sizeof(buf),
             "{\"iss\":\"https://idp.test\",\"aud\":\"https://broker.example\",\"iat\":%d,"
             "\"jti\":\"j1\",\"sub_id\":%s,\"events\":{%s:%s}}",
             NOW, sub_id, event, ev);
    return buf;
}

static void test_subjects(void **state)
{
    (void)state;
    struct ssf_set s;
    char why[300];
    assert_int_equal(
        read_set(claims("{\"format\":\"uri\",\"uri\":\"spiffe://ztb.local/agent/billing-bot\"}", SR,
                        "{\"event_timestamp\":1767225599,\"initiating_entity\":\"admin\","
                        "\"reason_admin\":{\"de\":\"x\",\"en\":\"stolen\\u0007 laptop\"}}"),
                 &s, why),
        ZTB_OK);
    assert_string_equal(s.agent, "billing-bot");
    assert_int_equal(s.event, SSF_EV_SESSION_REVOKED);
    assert_int_equal(s.event_time, 1767225599);
    assert_string_equal(s.initiating_entity, "admin");
    assert_string_equal(s.reason, "stolen laptop"); /* control characters dropped */
    assert_string_equal(s.jti, "j1");

    assert_int_equal(
        read_set(claims("{\"format\":\"email\",\"email\":\"bot@idp.test\"}", SR, "{}"), &s, why),
        ZTB_OK);
    assert_string_equal(s.agent, "billing-bot");
    assert_string_equal(s.subject, "email:bot@idp.test");
    assert_int_equal(read_set(claims("{\"format\":\"opaque\",\"id\":\"x1\"}", SR, "{}"), &s, why),
                     ZTB_OK);
    assert_string_equal(s.agent, "ops-bot");
    assert_int_equal(
        read_set(
            claims("{\"format\":\"iss_sub\",\"iss\":\"https://idp.test\",\"sub\":\"7\"}", SR, "{}"),
            &s, why),
        ZTB_OK);
    assert_string_equal(s.agent, "sub-bot");
    /* one of our tokens */
    assert_int_equal(
        read_set(claims("{\"format\":\"jwt_id\",\"iss\":\"https://broker.example\",\"jti\":\"t9\"}",
                        SR, "{}"),
                 &s, why),
        ZTB_OK);
    assert_string_equal(s.token_jti, "t9");
    assert_string_equal(s.agent, "");
    /* complex: the user names the agent, the session the token */
    assert_int_equal(
        read_set(claims("{\"format\":\"complex\",\"device\":{\"format\":\"opaque\",\"id\":\"zz\"},"
                        "\"user\":{\"format\":\"email\",\"email\":\"bot@idp.test\"},"
                        "\"session\":{\"format\":\"jwt_id\",\"iss\":\"https://broker.example\","
                        "\"jti\":\"t2\"}}",
                        "\"https://schemas.openid.net/secevent/caep/event-type/credential-change\"",
                        "{\"credential_type\":\"x509\",\"change_type\":\"revoke\"}"),
                 &s, why),
        ZTB_OK);
    assert_string_equal(s.agent, "billing-bot");
    assert_string_equal(s.token_jti, "t2");
    assert_int_equal(s.event, SSF_EV_CREDENTIAL_CHANGE);
    /* a CAEP draft: the subject inside the event */
    const char *legacy =
        "{\"iss\":\"https://idp.test\",\"aud\":[\"x\",\"https://"
        "broker.example\"],\"iat\":1767225600,"
        "\"jti\":\"j2\",\"events\":{\"https://schemas.openid.net/secevent/caep/event-type/"
        "token-claims-change\":{\"subject\":{\"format\":\"uri\",\"uri\":"
        "\"spiffe://ztb.local/agent/a1\"},\"claims\":{}}}}";
    assert_int_equal(read_set(legacy, &s, why), ZTB_OK);
    assert_string_equal(s.agent, "a1");
    assert_int_equal(s.event, SSF_EV_TOKEN_CLAIMS);
}

static void test_unknown_subjects(void **state)
{
    (void)state;
    struct ssf_set s;
    char why[300];
    static const char *const unknown[] = {
        "{\"format\":\"uri\",\"uri\":\"spiffe://other.domain/agent/billing-bot\"}",
        "{\"format\":\"uri\",\"uri\":\"spiffe://ztb.local/workload/billing-bot\"}",
        "{\"format\":\"email\",\"email\":\"BOT@idp.test\"}",
        "{\"format\":\"jwt_id\",\"iss\":\"https://evil.test\",\"jti\":\"t9\"}",
        "{\"format\":\"aliases\",\"identifiers\":[]}",
        "{\"format\":\"complex\",\"user\":{\"format\":\"opaque\",\"id\":\"nobody\"}}",
    };
    for (size_t i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++) {
        ztb_err rv = read_set(claims(unknown[i], SR, "{}"), &s, why);
        if (rv != ZTB_ERR_NOT_FOUND)
            fail_msg("%s: %s", unknown[i], ztb_strerror(rv));
    }
    static const char *const malformed[] = {
        "\"spiffe://ztb.local/agent/billing-bot\"",
        "{\"uri\":\"spiffe://ztb.local/agent/billing-bot\"}",
        "{\"format\":\"email\"}",
        "{\"format\":\"jwt_id\",\"jti\":\"t\"}",
        "{\"format\":\"complex\",\"user\":{\"format\":\"email\"}}",
    };
    for (size_t i = 0; i < sizeof(malformed) / sizeof(malformed[0]); i++) {
        ztb_err rv = read_set(claims(malformed[i], SR, "{}"), &s, why);
        if (rv != ZTB_ERR_CLAIMS)
            fail_msg("%s: %s", malformed[i], ztb_strerror(rv));
        assert_true(why[0] != '\0');
    }
}

static void test_claims_refused(void **state)
{
    (void)state;
    struct ssf_set s;
    char why[300];
    const char *sub = "{\"format\":\"uri\",\"uri\":\"spiffe://ztb.local/agent/a1\"}";
    char t[4096];
    struct {
        const char *fmt;
        ztb_err want;
    } cases[] = {
        {"{\"iss\":\"https://other\",\"aud\":\"https://broker.example\",\"iat\":%d,\"jti\":\"j\","
         "\"sub_id\":%s,\"events\":{" SR ":{}}}",
         ZTB_ERR_ISSUER},
        {"{\"iss\":\"https://idp.test\",\"aud\":\"https://else\",\"iat\":%d,\"jti\":\"j\","
         "\"sub_id\":%s,\"events\":{" SR ":{}}}",
         ZTB_ERR_AUDIENCE},
        {"{\"iss\":\"https://idp.test\",\"iat\":%d,\"jti\":\"j\",\"sub_id\":%s,\"events\":{" SR
         ":{}}}",
         ZTB_ERR_AUDIENCE},
        {"{\"iss\":\"https://idp.test\",\"aud\":\"https://broker.example\",\"iat\":%d000,"
         "\"jti\":\"j\",\"sub_id\":%s,\"events\":{" SR ":{}}}",
         ZTB_ERR_IAT},
        {"{\"iss\":\"https://idp.test\",\"aud\":\"https://broker.example\",\"iat\":\"%d\","
         "\"jti\":\"j\",\"sub_id\":%s,\"events\":{" SR ":{}}}",
         ZTB_ERR_IAT},
        {"{\"iss\":\"https://idp.test\",\"aud\":\"https://broker.example\",\"iat\":%d,\"exp\":1,"
         "\"jti\":\"j\",\"sub_id\":%s,\"events\":{" SR ":{}}}",
         ZTB_ERR_EXPIRED},
        {"{\"iss\":\"https://idp.test\",\"aud\":\"https://broker.example\",\"iat\":%d,"
         "\"sub_id\":%s,\"events\":{" SR ":{}}}",
         ZTB_ERR_CLAIMS},
        {"{\"iss\":\"https://idp.test\",\"aud\":\"https://broker.example\",\"iat\":%d,"
         "\"jti\":\"has space\",\"sub_id\":%s,\"events\":{" SR ":{}}}",
         ZTB_ERR_CLAIMS},
        {"{\"iss\":\"https://idp.test\",\"aud\":\"https://broker.example\",\"iat\":%d,"
         "\"jti\":\"j\",\"sub_id\":%s,\"events\":{}}",
         ZTB_ERR_CLAIMS},
        {"{\"iss\":\"https://idp.test\",\"aud\":\"https://broker.example\",\"iat\":%d,"
         "\"jti\":\"j\",\"sub_id\":%s,\"events\":{" SR ":{},\"urn:x\":{}}}",
         ZTB_ERR_CLAIMS},
        {"{\"iss\":\"https://idp.test\",\"aud\":\"https://broker.example\",\"iat\":%d,"
         "\"jti\":\"j\",\"sub_id\":%s,\"events\":{" SR ":[]}}",
         ZTB_ERR_CLAIMS},
        {"{\"iss\":\"https://idp.test\",\"aud\":\"https://broker.example\",\"iat\":%d,"
         "\"jti\":\"j\",\"sub_id\":%s,\"events\":{" SR ":{\"event_timestamp\":1.5}}}",
         ZTB_ERR_CLAIMS},
        {"{\"iss\":\"https://idp.test\",\"aud\":\"https://broker.example\",\"iat\":%d,"
         "\"jti\":\"j\",\"sub_id\":%s,\"events\":{\"https://schemas.openid.net/secevent/caep/"
         "event-type/assurance-level-change\":{}}}",
         ZTB_ERR_UNSUPPORTED},
        {"{\"iss\":\"https://idp.test\",\"aud\":\"https://broker.example\",\"iat\":%d,"
         "\"jti\":\"j\",\"sub_id\":%s,\"events\":{\"" SSF_EVENT_QUARANTINED "\":{}}}",
         ZTB_ERR_UNSUPPORTED},
        {"{\"iss\":\"https://idp.test\",\"aud\":\"https://broker.example\",\"iat\":%d,"
         "\"jti\":\"j\",\"jti\":\"k\",\"sub_id\":%s,\"events\":{" SR ":{}}}",
         ZTB_ERR_JSON},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        snprintf(t, sizeof(t), cases[i].fmt, NOW, sub);
        ztb_err rv = read_set(t, &s, why);
        if (rv != cases[i].want)
            fail_msg("case %zu: %s (%s), want %s", i, ztb_strerror(rv), why,
                     ztb_strerror(cases[i].want));
        assert_true(why[0] != '\0');
    }
    /* no subject at all */
    snprintf(t, sizeof(t),
             "{\"iss\":\"https://idp.test\",\"aud\":\"https://broker.example\",\"iat\":%d,"
             "\"jti\":\"j\",\"events\":{" SR ":{}}}",
             NOW);
    assert_int_equal(read_set(t, &s, why), ZTB_ERR_CLAIMS);
    assert_int_equal(read_set("[1]", &s, why), ZTB_ERR_CLAIMS);
    assert_int_equal(read_set("{", &s, why), ZTB_ERR_JSON);
}

static void test_peek_iss(void **state)
{
    (void)state;
    char iss[SSF_ISSUER_MAX], tok[512], p[256];
    const char *payload = "{\"aud\":\"x\",\"iss\":\"https://idp.test\"}";
    assert_int_equal(ztb_b64url_encode(payload, strlen(payload), p, sizeof(p), NULL), ZTB_OK);
    snprintf(tok, sizeof(tok), "eyJhbGciOiJFUzI1NiJ9.%s.c2ln", p);
    assert_int_equal(ssf_set_peek_iss(tok, strlen(tok), iss, sizeof(iss)), ZTB_OK);
    assert_string_equal(iss, "https://idp.test");
    assert_int_equal(ssf_set_peek_iss("abc", 3, iss, sizeof(iss)), ZTB_ERR_JWS_FORMAT);
    assert_int_equal(ssf_set_peek_iss("a.b", 3, iss, sizeof(iss)), ZTB_ERR_JWS_FORMAT);
    static const char *const bad[] = {"{\"aud\":\"x\"}", "{\"iss\":1}", "{\"iss\":\"\"}",
                                      "{\"iss\":\"a\",\"iss\":\"b\"}", "{\"iss\":\"a\"} x"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(ztb_b64url_encode(bad[i], strlen(bad[i]), p, sizeof(p), NULL), ZTB_OK);
        snprintf(tok, sizeof(tok), "e30.%s.c2ln", p);
        assert_int_not_equal(ssf_set_peek_iss(tok, strlen(tok), iss, sizeof(iss)), ZTB_OK);
    }
    char big[SSF_SET_MAX + 2];
    memset(big, 'a', sizeof(big));
    assert_int_equal(ssf_set_peek_iss(big, sizeof(big), iss, sizeof(iss)), ZTB_ERR_TOO_LARGE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_subjects),
        cmocka_unit_test(test_unknown_subjects),
        cmocka_unit_test(test_claims_refused),
        cmocka_unit_test(test_peek_iss),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
