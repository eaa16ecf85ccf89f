/*
 * test_signal_parse.c - reading anomaly signals: every member checked, every
 * refusal with its own reason, credentials in the evidence redacted.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "broker/signals/signal_parse.h"
#include "common/base64url.h"

static const struct signal_parse_opts opts = {.trust_domain = "ztb.local",
                                              .issuer = "https://broker.example",
                                              .source = "soc",
                                              .signed_set = 0,
                                              .now = 1767225600};

static ztb_err parse(const char *json, struct signal *s, char *why)
{
    memset(s, 0, sizeof(*s));
    return signal_parse(json, strlen(json), &opts, s, why, 200);
}

static void test_full_signal(void **state)
{
    (void)state;
    const char *j =
        "{\"iss\":\"soc\",\"aud\":[\"x\",\"https://broker.example\"],\"iat\":1767225600,"
        "\"jti\":\"4d3559ec\",\"txn\":\"t-1\",\"toe\":1767225500,\"events\":{"
        "\"urn:ztb:signal:token_replay\":{\"subject\":{\"agent\":"
        "\"spiffe://ztb.local/agent/billing-bot\",\"jti\":\"kq3x9Jd0\",\"exp\":1767225660,"
        "\"audience\":\"payments\",\"kid\":\"k1\"},\"severity\":\"high\",\"confidence\":0.9,"
        "\"evidence\":{\"gateway\":\"gw-2\",\"seen\":[1,2]},\"event_timestamp\":1767225599}}}";
    struct signal s;
    char why[200];
    memset(&s, 0, sizeof(s));
    snprintf(s.source, sizeof(s.source), "soc"); /* the caller's: kept */
    assert_int_equal(signal_parse(j, strlen(j), &opts, &s, why, sizeof(why)), ZTB_OK);
    assert_string_equal(s.source, "soc");
    assert_string_equal(s.type, "token_replay");
    assert_int_equal(s.severity, POLICY_SEVERITY_HIGH);
    assert_true(s.confidence > 0.89 && s.confidence < 0.91);
    assert_string_equal(s.agent, "billing-bot"); /* the SPIFFE ID, as a name */
    assert_string_equal(s.jti, "kq3x9Jd0");
    assert_int_equal(s.jti_exp, 1767225660);
    assert_string_equal(s.audience, "payments");
    assert_string_equal(s.kid, "k1");
    assert_string_equal(s.source_jti, "4d3559ec");
    assert_int_equal(s.iat, 1767225600);
    assert_int_equal(s.event_time, 1767225599);
    assert_string_equal(s.evidence, "{\"gateway\":\"gw-2\",\"seen\":[1,2]}");
}

static void test_minimal_and_bare_type(void **state)
{
    (void)state;
    struct signal s;
    char why[200];
    assert_int_equal(parse("{\"jti\":\"a\",\"events\":{\"soc:impossible_travel\":{\"subject\":"
                           "{\"audience\":\"crm\"},\"severity\":\"low\",\"confidence\":0}}}",
                           &s, why),
                     ZTB_OK);
    assert_string_equal(s.type, "soc:impossible_travel");
    assert_string_equal(s.agent, "");
    assert_string_equal(s.audience, "crm");
    assert_int_equal(s.iat, 0);
    assert_string_equal(s.evidence, "");
    /* an integer confidence, a string as evidence */
    assert_int_equal(parse("{\"jti\":\"b\",\"events\":{\"token_replay\":{\"subject\":"
                           "{\"agent\":\"a\"},\"severity\":\"critical\",\"confidence\":1,"
                           "\"evidence\":\"seen twice\"}}}",
                           &s, why),
                     ZTB_OK);
    assert_true(s.confidence == 1.0);
    assert_string_equal(s.evidence, "\"seen twice\"");
}

static void test_evidence_redacted(void **state)
{
    (void)state;
    struct signal s;
    char why[200];
    assert_int_equal(
        parse("{\"jti\":\"c\",\"events\":{\"token_replay\":{\"subject\":{\"agent\":\"a\"},"
              "\"severity\":\"high\",\"confidence\":1,\"evidence\":{\"access_token\":\"opaque\","
              "\"copy\":\"eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhIn0.c2lnbmF0dXJl\",\"list\":"
              "[\"ztbs_abc.def\",\"fine\"],\"n\":{\"password\":\"hunter2\"}}}}}",
              &s, why),
        ZTB_OK);
    assert_null(strstr(s.evidence, "opaque"));
    assert_null(strstr(s.evidence, "eyJ"));
    assert_null(strstr(s.evidence, "ztbs_"));
    assert_null(strstr(s.evidence, "hunter2"));
    assert_non_null(strstr(s.evidence, "\"fine\""));
    assert_non_null(strstr(s.evidence, "[redacted]"));
}

struct bad {
    const char *json;
    ztb_err err;
    const char *why; /* a substring of the reason */
};

static void test_refusals(void **state)
{
    (void)state;
    static const struct bad bad[] = {
        {"", ZTB_ERR_JSON, "invalid JSON"},
        {"[]", ZTB_ERR_JSON, "JSON object"},
        {"{\"jti\":\"a\",\"jti\":\"b\"}", ZTB_ERR_JSON, "invalid JSON"},
        {"{\"jti\":\"a\",\"events\":{}}", ZTB_ERR_MALFORMED, "exactly one event"},
        {"{\"events\":{\"x\":{}}}", ZTB_ERR_MALFORMED, "jti"},
        {"{\"jti\":\"has space\",\"events\":{}}", ZTB_ERR_MALFORMED, "jti"},
        {"{\"jti\":\"a\",\"extra\":1,\"events\":{}}", ZTB_ERR_MALFORMED, "unknown member 'extra'"},
        {"{\"jti\":\"a\",\"iss\":\"siem\",\"events\":{}}", ZTB_ERR_ISSUER, "iss"},
        {"{\"jti\":\"a\",\"aud\":\"https://other\",\"events\":{}}", ZTB_ERR_AUDIENCE, "aud"},
        {"{\"jti\":\"a\",\"iat\":\"now\",\"events\":{}}", ZTB_ERR_MALFORMED, "iat"},
        {"{\"jti\":\"a\",\"events\":{\"Token_Replay\":{}}}", ZTB_ERR_MALFORMED, "event type"},
        {"{\"jti\":\"a\",\"events\":{\"urn:ztb:signal:\":{}}}", ZTB_ERR_MALFORMED, "event type"},
        {"{\"jti\":\"a\",\"events\":{\"x\":[]}}", ZTB_ERR_MALFORMED, "object"},
        {"{\"jti\":\"a\",\"events\":{\"x\":{\"severity\":\"high\",\"confidence\":1}}}",
         ZTB_ERR_MALFORMED, "subject"},
        {"{\"jti\":\"a\",\"events\":{\"x\":{\"subject\":{},\"severity\":\"high\","
         "\"confidence\":1}}}",
         ZTB_ERR_MALFORMED, "at least one"},
        {"{\"jti\":\"a\",\"events\":{\"x\":{\"subject\":{\"user\":\"a\"},\"severity\":\"high\","
         "\"confidence\":1}}}",
         ZTB_ERR_MALFORMED, "unknown member 'user'"},
        {"{\"jti\":\"a\",\"events\":{\"x\":{\"subject\":{\"agent\":\"Bad Name\"},"
         "\"severity\":\"high\",\"confidence\":1}}}",
         ZTB_ERR_MALFORMED, "agent"},
        {"{\"jti\":\"a\",\"events\":{\"x\":{\"subject\":{\"agent\":"
         "\"spiffe://other.example/agent/a\"},\"severity\":\"high\",\"confidence\":1}}}",
         ZTB_ERR_MALFORMED, "trust domain"},
        {"{\"jti\":\"a\",\"events\":{\"x\":{\"subject\":{\"exp\":5,\"agent\":\"a\"},"
         "\"severity\":\"high\",\"confidence\":1}}}",
         ZTB_ERR_MALFORMED, "give both"},
        {"{\"jti\":\"a\",\"events\":{\"x\":{\"subject\":{\"agent\":\"a\"},"
         "\"severity\":\"severe\",\"confidence\":1}}}",
         ZTB_ERR_MALFORMED, "severity"},
        {"{\"jti\":\"a\",\"events\":{\"x\":{\"subject\":{\"agent\":\"a\"},"
         "\"severity\":\"high\"}}}",
         ZTB_ERR_MALFORMED, "confidence"},
        {"{\"jti\":\"a\",\"events\":{\"x\":{\"subject\":{\"agent\":\"a\"},"
         "\"severity\":\"high\",\"confidence\":-0.1}}}",
         ZTB_ERR_MALFORMED, "confidence"},
        {"{\"jti\":\"a\",\"events\":{\"x\":{\"subject\":{\"agent\":\"a\"},"
         "\"severity\":\"high\",\"confidence\":\"0.5\"}}}",
         ZTB_ERR_MALFORMED, "confidence"},
        {"{\"jti\":\"a\",\"events\":{\"x\":{\"subject\":{\"jti\":\"a\\u0000b\"},"
         "\"severity\":\"high\",\"confidence\":1}}}",
         ZTB_ERR_JSON, "\\u0000"}, /* jansson refuses an embedded NUL */
        {"{\"jti\":\"a\",\"events\":{\"x\":{\"subject\":{\"agent\":\"a\"},"
         "\"severity\":\"high\",\"confidence\":1,\"severty\":\"x\"}}}",
         ZTB_ERR_MALFORMED, "unknown member 'severty'"},
        {"{\"jti\":\"a\",\"events\":{\"x\":{\"subject\":{\"agent\":\"a\"},"
         "\"severity\":\"high\",\"confidence\":1,\"event_timestamp\":-1}}}",
         ZTB_ERR_MALFORMED, "event_timestamp"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct signal s;
        char why[200];
        ztb_err rv = parse(bad[i].json, &s, why);
        if (rv != bad[i].err || strstr(why, bad[i].why) == NULL)
            fail_msg("case %zu: %s -> %s (%s), want %s with '%s'", i, bad[i].json, ztb_err_name(rv),
                     why, ztb_err_name(bad[i].err), bad[i].why);
        assert_string_equal(s.type, ""); /* nothing half-filled */
    }
}

static void test_limits(void **state)
{
    (void)state;
    struct signal s;
    char why[200];
    /* nesting */
    char deep[256] = "{\"jti\":\"a\",\"events\":{\"x\":{\"evidence\":";
    for (int i = 0; i < 20; i++)
        strcat(deep, "[");
    assert_int_equal(parse(deep, &s, why), ZTB_ERR_JSON);
    assert_non_null(strstr(why, "nested"));
    /* size */
    char *big = calloc(1, SIGNAL_BODY_MAX + 10);
    memset(big, ' ', SIGNAL_BODY_MAX + 1);
    assert_int_equal(signal_parse(big, SIGNAL_BODY_MAX + 1, &opts, &s, why, sizeof(why)),
                     ZTB_ERR_TOO_LARGE);
    free(big);
    /* evidence over its limit */
    char *ev = calloc(1, SIGNAL_BODY_MAX);
    int n = snprintf(ev, SIGNAL_BODY_MAX,
                     "{\"jti\":\"a\",\"events\":{\"x\":{\"subject\":{\"agent\":\"a\"},"
                     "\"severity\":\"high\",\"confidence\":1,\"evidence\":\"");
    memset(ev + n, 'e', SIGNAL_EVIDENCE_MAX);
    strcat(ev, "\"}}}");
    assert_int_equal(parse(ev, &s, why), ZTB_ERR_MALFORMED);
    assert_non_null(strstr(why, "evidence"));
    free(ev);
    assert_int_equal(signal_parse(NULL, 0, &opts, &s, why, sizeof(why)), ZTB_ERR_INVALID_ARG);
}

static void test_signed_set_rules(void **state)
{
    (void)state;
    struct signal_parse_opts o = opts;
    o.signed_set = 1;
    struct signal s;
    char why[200];
    const char *body = "\"jti\":\"a\",\"events\":{\"x\":{\"subject\":{\"agent\":\"a\"},"
                       "\"severity\":\"high\",\"confidence\":1}}}";
    char j[1024];
    /* iss, aud and iat are required */
    snprintf(j, sizeof(j), "{%s", body);
    assert_int_equal(signal_parse(j, strlen(j), &o, &s, why, sizeof(why)), ZTB_ERR_MALFORMED);
    snprintf(j, sizeof(j), "{\"iss\":\"soc\",%s", body);
    assert_int_equal(signal_parse(j, strlen(j), &o, &s, why, sizeof(why)), ZTB_ERR_AUDIENCE);
    snprintf(j, sizeof(j), "{\"iss\":\"soc\",\"aud\":\"https://broker.example\",%s", body);
    assert_int_equal(signal_parse(j, strlen(j), &o, &s, why, sizeof(why)), ZTB_ERR_MALFORMED);
    snprintf(j, sizeof(j), "{\"iss\":\"soc\",\"aud\":\"https://broker.example\",\"iat\":%lld,%s",
             (long long)o.now - 10, body);
    assert_int_equal(signal_parse(j, strlen(j), &o, &s, why, sizeof(why)), ZTB_OK);
    /* and fresh */
    snprintf(j, sizeof(j), "{\"iss\":\"soc\",\"aud\":\"https://broker.example\",\"iat\":%lld,%s",
             (long long)o.now - SIGNAL_MAX_AGE - 1, body);
    assert_int_equal(signal_parse(j, strlen(j), &o, &s, why, sizeof(why)), ZTB_ERR_IAT);
    snprintf(j, sizeof(j), "{\"iss\":\"soc\",\"aud\":\"https://broker.example\",\"iat\":%lld,%s",
             (long long)o.now + SIGNAL_MAX_AGE + 1, body);
    assert_int_equal(signal_parse(j, strlen(j), &o, &s, why, sizeof(why)), ZTB_ERR_IAT);
}

static void test_peek_iss(void **state)
{
    (void)state;
    char iss[STORE_SOURCE_MAX + 1], tok[512], p[256];
    const char *claims = "{\"iss\":\"tx\",\"jti\":\"a\"}";
    ztb_b64url_encode(claims, strlen(claims), p, sizeof(p), NULL);
    snprintf(tok, sizeof(tok), "eyJhbGciOiJFUzI1NiJ9.%s.c2ln", p);
    assert_int_equal(signal_set_peek_iss(tok, strlen(tok), iss), ZTB_OK);
    assert_string_equal(iss, "tx");
    assert_int_equal(signal_set_peek_iss("nodots", 6, iss), ZTB_ERR_JWS_FORMAT);
    assert_int_equal(signal_set_peek_iss("a.b", 3, iss), ZTB_ERR_JWS_FORMAT);
    assert_int_equal(signal_set_peek_iss("a.!!!.c", 7, iss), ZTB_ERR_BASE64);
    const char *noiss = "{\"jti\":\"a\"}";
    ztb_b64url_encode(noiss, strlen(noiss), p, sizeof(p), NULL);
    snprintf(tok, sizeof(tok), "h.%s.s", p);
    assert_int_equal(signal_set_peek_iss(tok, strlen(tok), iss), ZTB_ERR_CLAIMS);
    const char *badname = "{\"iss\":\"Bad Name\"}";
    ztb_b64url_encode(badname, strlen(badname), p, sizeof(p), NULL);
    snprintf(tok, sizeof(tok), "h.%s.s", p);
    assert_int_equal(signal_set_peek_iss(tok, strlen(tok), iss), ZTB_ERR_CLAIMS);
}

static void test_type_names(void **state)
{
    (void)state;
    assert_true(signal_type_ok("token_replay"));
    assert_true(signal_type_ok("soc:impossible_travel"));
    assert_true(signal_type_ok("9x.y-z"));
    assert_false(signal_type_ok(""));
    assert_false(signal_type_ok(NULL));
    assert_false(signal_type_ok("_x"));
    assert_false(signal_type_ok("Upper"));
    assert_false(signal_type_ok("a b"));
    char long_type[80];
    memset(long_type, 'a', 65);
    long_type[65] = '\0';
    assert_false(signal_type_ok(long_type));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_signal),
        cmocka_unit_test(test_minimal_and_bare_type),
        cmocka_unit_test(test_evidence_redacted),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_signed_set_rules),
        cmocka_unit_test(test_peek_iss),
        cmocka_unit_test(test_type_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
