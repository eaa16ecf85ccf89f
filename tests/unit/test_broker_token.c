/*
 * test_broker_token.c - POST /v1/token (token.c), served by a real
 * http_server in this process (broker_fixture.h bf_serve) against a real
 * Redis, key store and policy: the token issued and what it carries; every
 * parameter refused for its shape (and which code names it); RFC 9396
 * authorization_details checked against scope, audience and resource;
 * policy denials audited; bindings the policy asks for; one DPoP header
 * at most, a used proof remembered while it could pass; quarantine, killed
 * audiences and rate limits; a revoked session refused without a trace;
 * 503 when Redis is gone. (Named test_broker_token:
 * tests/integration/test_token.c is the end-to-end test with the daemon.)
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "agent.h"
#include "broker/tokens/introspect.h"
#include "broker/store/store.h"
#include "broker/store/store_rev.h"
#include "broker_fixture.h"
#include "pki/dpop.h"

#define GRANT "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange"

static const char *policy_doc =
    "{\"version\": 1, \"trust_domain\": \"ztb.local\",\n"
    " \"settings\": {\"max_ttl\": 300, \"default_ttl\": 60,\n"
    "   \"rate_limits\": {\"per_agent\": {\"rate\": 1000, \"burst\": 100, \"period\": 60},\n"
    "                   \"per_action\": {\"rate\": 1000, \"burst\": 100, \"period\": 60}}},\n"
    " \"rules\": [\n"
    "  {\"id\": \"read\", \"effect\": \"allow\", \"agents\": [\"bot\", \"quiet\"],\n"
    "   \"actions\": [\"crm:read\"], \"audiences\": [\"crm\", \"old\"], \"resources\": [\"**\"]},\n"
    "  {\"id\": \"pay\", \"effect\": \"allow\", \"agents\": [\"bot\"],\n"
    "   \"actions\": [\"pay:refund\"], \"audiences\": [\"pay\"], \"resources\": [\"orders/*\"],\n"
    "   \"conditions\": {\"limits\": [{\"path\": \"amount\", \"max\": 50}]},\n"
    "   \"obligations\": {\"ttl\": 30}},\n"
    "  {\"id\": \"few\", \"effect\": \"allow\", \"agents\": [\"bot\"],\n"
    "   \"actions\": [\"crm:list\"], \"audiences\": [\"crm\"], \"resources\": [\"**\"],\n"
    "   \"obligations\": {\"rate_limits\": {\"per_action\": {\"rate\": 2, \"burst\": 2,\n"
    "                     \"period\": 60}}}},\n"
    "  {\"id\": \"dpop\", \"effect\": \"allow\", \"agents\": [\"bot\"],\n"
    "   \"actions\": [\"t:create\"], \"audiences\": [\"t\"], \"resources\": [\"**\"],\n"
    "   \"obligations\": {\"binding\": \"dpop\"}},\n"
    "  {\"id\": \"mtls\", \"effect\": \"allow\", \"agents\": [\"bot\"],\n"
    "   \"actions\": [\"m:write\"], \"audiences\": [\"m\"], \"resources\": [\"**\"],\n"
    "   \"obligations\": {\"binding\": \"mtls\"}}\n"
    " ]}\n";

static struct za_agent bot;

static int setup(void **state)
{
    (void)state;
    bf_setup_ca(policy_doc, 1);
    bf_serve(0);
    za_enroll(&bf_broker, &bot, "bot");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    za_free(&bot);
    bf_unserve();
    bf_teardown();
    return 0;
}

/* POST /v1/token with the session of a and these extra parameters. */
static long ask(const struct za_agent *a, const char *params, struct zh_resp *r)
{
    char form[8192];
    snprintf(form, sizeof(form), "%s&client_assertion_type=%s&client_assertion=%s&%s", GRANT,
             ZA_SESSION_TYPE, a->session, params);
    return za_post_form(&bf_broker, "/v1/token", form, r);
}

/* Fail unless the request is refused with status and code. */
static void ask_refused(const char *params, long status, const char *code)
{
    struct zh_resp r;
    ask(&bot, params, &r);
    za_expect_error(&r, status, code);
    zh_resp_free(&r);
}

static void test_issued(void **state)
{
    (void)state;
    struct zh_resp r;
    char tok[4096];
    assert_int_equal(za_token(&bf_broker, &bot, "crm", "crm:read", &r, tok, sizeof(tok)), 200);
    json_t *j = za_json(&r);
    assert_string_equal(json_string_value(json_object_get(j, "token_type")), "Bearer");
    assert_string_equal(json_string_value(json_object_get(j, "issued_token_type")),
                        "urn:ietf:params:oauth:token-type:access_token");
    assert_int_equal(json_integer_value(json_object_get(j, "expires_in")), 60);
    assert_string_equal(json_string_value(json_object_get(j, "scope")), "crm:read");
    json_decref(j);
    zh_resp_free(&r);
    /* ours: it verifies with the broker's key, and says what was asked */
    json_t *c = NULL;
    assert_int_equal(introspect_token(tok, strlen(tok), g_broker.issuer, time(NULL), 0, &c),
                     ZTB_OK);
    assert_string_equal(json_string_value(json_object_get(c, "sub")),
                        "spiffe://ztb.local/agent/bot");
    assert_string_equal(json_string_value(json_object_get(c, "aud")), "crm");
    assert_string_equal(json_string_value(json_object_get(c, "scope")), "crm:read");
    assert_string_equal(json_string_value(json_object_get(c, "iss")), bf_broker.url);
    json_decref(c);
    assert_true(bf_audit_has("token.issued", "\"audience\":\"crm\""));
}

static void test_request_shape_refused(void **state)
{
    (void)state;
    struct zh_resp r;
    char url[256];
    snprintf(url, sizeof(url), "%s/v1/token", bf_broker.url);
    assert_int_equal(zh_http("POST", url, NULL, "application/json", "{}", 2, NULL, &r), 0);
    za_expect_error(&r, 415, "invalid_request");
    zh_resp_free(&r);

    za_post_form(&bf_broker, "/v1/token", "audience=crm&scope=crm:read", &r);
    za_expect_error(&r, 400, "invalid_request"); /* no grant_type */
    zh_resp_free(&r);
    za_post_form(&bf_broker, "/v1/token", "grant_type=client_credentials", &r);
    za_expect_error(&r, 400, "unsupported_grant_type");
    zh_resp_free(&r);
    za_post_form(&bf_broker, "/v1/token", GRANT "&audience=crm&scope=crm:read", &r);
    za_expect_error(&r, 401, "invalid_client"); /* no credential */
    zh_resp_free(&r);

    ask_refused("audience=crm&scope=crm:read&password=x", 400, "invalid_request");
    ask_refused("audience=crm&scope=crm:read&scope=crm:write", 400, "invalid_request");
    ask_refused("audience=crm&scope=crm:read&requested_token_type=urn%3Aietf%3Aparams%3Aoauth%3A"
                "token-type%3Aid_token",
                400, "invalid_request");
    ask_refused("scope=crm:read", 400, "invalid_request");
    ask_refused("audience=a%20b&scope=crm:read", 400, "invalid_request");
    ask_refused("audience=crm", 400, "invalid_scope");
    ask_refused("audience=crm&scope=crm:read%20crm:write", 400, "invalid_scope");
    ask_refused("audience=crm&scope=read", 400, "invalid_scope");
    ask_refused("audience=crm&scope=CRM:Read", 400, "invalid_scope");
    ask_refused("audience=crm&scope=ztb:introspect", 400, "invalid_scope");
    ask_refused("audience=crm&scope=crm:read&resource=a%20b", 400, "invalid_request");
}

/* authorization_details (URL-encoded JSON) for pay:refund on pay. */
static void details(const char *json, long status, const char *code)
{
    char params[2048], enc[1536];
    size_t o = 0;
    for (const char *p = json; *p && o + 4 < sizeof(enc); p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9'))
            enc[o++] = *p;
        else
            o += (size_t)snprintf(enc + o, sizeof(enc) - o, "%%%02X", (unsigned char)*p);
    }
    enc[o] = '\0';
    snprintf(params, sizeof(params),
             "audience=pay&scope=pay:refund&resource=orders/7&authorization_details=%s", enc);
    struct zh_resp r;
    ask(&bot, params, &r);
    if (status == 200) {
        if (r.status != 200)
            fail_msg("%s: HTTP %ld %s", json, r.status, r.body);
        json_t *j = za_json(&r);
        json_t *c = za_claims(json_string_value(json_object_get(j, "access_token")));
        json_t *ad = json_array_get(json_object_get(c, "authorization_details"), 0);
        /* the token carries the object with actions, locations, identifier set */
        assert_string_equal(json_string_value(json_array_get(json_object_get(ad, "actions"), 0)),
                            "pay:refund");
        assert_string_equal(json_string_value(json_array_get(json_object_get(ad, "locations"), 0)),
                            "pay");
        assert_string_equal(json_string_value(json_object_get(ad, "identifier")), "orders/7");
        assert_int_equal(json_integer_value(json_object_get(c, "exp")) -
                             json_integer_value(json_object_get(c, "iat")),
                         30); /* the rule's ttl */
        json_decref(c);
        json_decref(j);
    } else {
        za_expect_error(&r, status, code);
    }
    zh_resp_free(&r);
}

static void test_authorization_details(void **state)
{
    (void)state;
    details("[{\"type\":\"payment\",\"amount\":20}]", 200, NULL);
    details("[{\"type\":\"payment\",\"amount\":20,\"actions\":[\"pay:refund\"],"
            "\"locations\":[\"pay\"],\"identifier\":\"orders/7\"}]",
            200, NULL);
    /* the policy's limit reads it */
    details("[{\"type\":\"payment\",\"amount\":51}]", 403, "access_denied");
    const char *bad[] = {
        "{\"type\":\"payment\"}",
        "[]",
        "[{\"type\":\"payment\"},{\"type\":\"payment\"}]",
        "[{\"amount\":1}]",
        "[{\"type\":\"has space\"}]",
        "[{\"type\":\"payment\",\"actions\":[\"pay:other\"]}]",
        "[{\"type\":\"payment\",\"actions\":[\"pay:refund\",\"pay:other\"]}]",
        "[{\"type\":\"payment\",\"locations\":[\"elsewhere\"]}]",
        "[{\"type\":\"payment\",\"identifier\":\"orders/8\"}]",
        "[{\"type\":\"payment\",\"identifier\":7}]",
        "[{\"type\":\"payment\",\"type\":\"payment\"}]",
        "not json",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        details(bad[i], 400, "invalid_authorization_details");
}

static void test_policy_denies_and_audits(void **state)
{
    (void)state;
    ask_refused("audience=crm&scope=crm:delete", 403, "access_denied");
    assert_true(bf_audit_has("token.denied", "\"action\":\"crm:delete\""));
    ask_refused("audience=pay&scope=pay:refund&resource=invoices/1", 403, "access_denied");
}

static void test_bindings(void **state)
{
    (void)state;
    struct zh_resp r;
    ask(&bot, "audience=t&scope=t:create", &r);
    za_expect_error(&r, 400, "invalid_request");
    assert_non_null(strstr(r.body, "DPoP-bound"));
    zh_resp_free(&r);
    ask(&bot, "audience=m&scope=m:write", &r);
    za_expect_error(&r, 400, "invalid_request");
    assert_non_null(strstr(r.body, "mTLS-bound"));
    zh_resp_free(&r);
    /* a DPoP header that is not a proof */
    char form[4096], url[256];
    snprintf(form, sizeof(form),
             "%s&client_assertion_type=%s&client_assertion=%s&audience=t&scope=t:create", GRANT,
             ZA_SESSION_TYPE, bot.session);
    snprintf(url, sizeof(url), "%s/v1/token", bf_broker.url);
    const char *h[] = {"DPoP: not.a.proof", NULL};
    assert_int_equal(
        zh_http("POST", url, NULL, "application/x-www-form-urlencoded", form, strlen(form), h, &r),
        0);
    za_expect_error(&r, 400, "invalid_dpop_proof");
    zh_resp_free(&r);
}

/* POST /v1/token for t:create (the policy's DPoP rule) as bot, with these
 * extra request headers ("Name: value", NULL-terminated). */
static long ask_with_headers(const char *const *headers, struct zh_resp *r)
{
    char form[4096], url[256];
    snprintf(form, sizeof(form),
             "%s&client_assertion_type=%s&client_assertion=%s&audience=t&scope=t:create", GRANT,
             ZA_SESSION_TYPE, bot.session);
    snprintf(url, sizeof(url), "%s/v1/token", bf_broker.url);
    assert_int_equal(zh_http("POST", url, NULL, "application/x-www-form-urlencoded", form,
                             strlen(form), headers, r),
                     0);
    return r->status;
}

/* A DPoP proof of k for POST /v1/token issued at iat, as a "DPoP: ..." header. */
static void proof_header(const ztb_key *k, int64_t iat, char *out, size_t cap)
{
    char htu[300];
    snprintf(htu, sizeof(htu), "%s/v1/token", bf_broker.url);
    ztb_buf p;
    ztb_buf_init(&p, 4096);
    assert_int_equal(ztb_dpop_proof_make(k, "POST", htu, iat, NULL, &p), ZTB_OK);
    assert_true((size_t)snprintf(out, cap, "DPoP: %s", ztb_buf_cstr(&p)) < cap);
    ztb_buf_free(&p);
}

/*
 * More than one DPoP header is refused (RFC 9449 §4.3, check 1), whichever
 * of them is a valid proof, and nothing is remembered of them: the valid
 * proof alone then gets its token. Before, the first header was checked and
 * the others ignored, so a request whose proofs said two things was served.
 */
static void test_dpop_one_header(void **state)
{
    (void)state;
    ztb_key *k;
    assert_int_equal(ztb_key_generate(&k), ZTB_OK);
    char good[2048], other[2048];
    proof_header(k, time(NULL), good, sizeof(good));
    proof_header(k, time(NULL), other, sizeof(other));
    struct zh_resp r;
    const char *valid_first[] = {good, "DPoP: not.a.proof", NULL};
    ask_with_headers(valid_first, &r);
    za_expect_error(&r, 400, "invalid_dpop_proof");
    zh_resp_free(&r);
    const char *two_valid[] = {good, other, NULL};
    ask_with_headers(two_valid, &r);
    za_expect_error(&r, 400, "invalid_dpop_proof");
    zh_resp_free(&r);
    const char *one[] = {good, NULL};
    assert_int_equal(ask_with_headers(one, &r), 200);
    zh_resp_free(&r);
    /* and, once used, for this or another request, never again */
    assert_int_equal(ask_with_headers(one, &r), 400);
    za_expect_error(&r, 400, "invalid_dpop_proof");
    zh_resp_free(&r);
    char form[4096];
    snprintf(form, sizeof(form),
             "%s&client_assertion_type=%s&client_assertion=%s&audience=crm&scope=crm:read", GRANT,
             ZA_SESSION_TYPE, bot.session);
    char url[256];
    snprintf(url, sizeof(url), "%s/v1/token", bf_broker.url);
    assert_int_equal(zh_http("POST", url, NULL, "application/x-www-form-urlencoded", form,
                             strlen(form), one, &r),
                     0);
    za_expect_error(&r, 400, "invalid_dpop_proof");
    zh_resp_free(&r);
    ztb_key_free(k);
}

static int64_t realtime_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * A used proof's jti is remembered at least as long as the broker would
 * still accept the proof. /v1/token accepts an iat up to 5 s ahead and
 * 60 + 5 s behind its clock, in whole seconds: a proof of iat T passes until
 * T + 66. Before, the marker lived 70 s from first use, so a proof stamped
 * 5 s ahead and used at once could be replayed in its last second. The
 * request is sent early in a second so that the old marker's shortfall is
 * there to see (the broker's clock reads the same second).
 */
static void test_dpop_replay_window(void **state)
{
    (void)state;
    if (realtime_ms() % 1000 > 300) {
        struct timespec ts = {0, (long)(1020 - realtime_ms() % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
    /* time(), as the broker reads it (a coarser clock than realtime_ms) */
    int64_t iat = (int64_t)time(NULL) + 5; /* as far ahead as the broker allows */
    ztb_key *k;
    assert_int_equal(ztb_key_generate(&k), ZTB_OK);
    char h[2048];
    proof_header(k, iat, h, sizeof(h));
    ztb_dpop_result pr; /* for its jti */
    char htu[300];
    snprintf(htu, sizeof(htu), "%s/v1/token", bf_broker.url);
    assert_int_equal(ztb_dpop_proof_check(h + 6, strlen(h + 6), "POST", htu, NULL, iat, 60, 5, &pr),
                     ZTB_OK);
    struct zh_resp r;
    const char *one[] = {h, NULL};
    if (ask_with_headers(one, &r) != 200)
        fail_msg("a proof stamped 5 s ahead: HTTP %ld %s", r.status, r.body);
    zh_resp_free(&r);
    long long pttl = bf_redis_int("PTTL ztb:{bot}:dpop:%s", pr.jti);
    int64_t asked = realtime_ms();
    assert_true(pttl > 0);
    /* the broker refuses the proof from T + 66 on: the marker must last till then */
    if (asked + pttl < (iat + 60 + 5 + 1) * 1000)
        fail_msg("the proof's marker expires %lld ms before the broker stops accepting it",
                 (long long)((iat + 66) * 1000 - (asked + pttl)));
    ztb_key_free(k);
}

static void test_rate_limit(void **state)
{
    (void)state;
    struct zh_resp r;
    for (int i = 0; i < 2; i++) {
        assert_int_equal(ask(&bot, "audience=crm&scope=crm:list", &r), 200);
        zh_resp_free(&r);
    }
    ask(&bot, "audience=crm&scope=crm:list", &r);
    za_expect_error(&r, 429, "slow_down");
    char v[16];
    assert_non_null(zh_resp_header(&r, "Retry-After", v, sizeof(v)));
    assert_true(atoi(v) >= 1);
    zh_resp_free(&r);
    /* the other action is not charged */
    assert_int_equal(ask(&bot, "audience=crm&scope=crm:read", &r), 200);
    zh_resp_free(&r);
}

static void test_agent_state(void **state)
{
    (void)state;
    struct za_agent q;
    za_enroll(&bf_broker, &q, "quiet");
    int changed;
    assert_int_equal(store_rev_audience("old", 0, 60, &changed), ZTB_OK);
    struct zh_resp r;
    ask(&q, "audience=old&scope=crm:read", &r);
    za_expect_error(&r, 403, "access_denied");
    assert_non_null(strstr(r.body, "audience is disabled"));
    zh_resp_free(&r);

    assert_int_equal(store_agent_flag("quiet", "quarantined", 1, &changed), ZTB_OK);
    ask(&q, "audience=crm&scope=crm:read", &r);
    za_expect_error(&r, 403, "access_denied");
    assert_non_null(strstr(r.body, "quarantined"));
    zh_resp_free(&r);
    assert_int_equal(store_agent_flag("quiet", "quarantined", 0, &changed), ZTB_OK);
    assert_int_equal(store_agent_flag("quiet", "approval", 1, &changed), ZTB_OK);
    ask(&q, "audience=crm&scope=crm:read", &r); /* waits for an operator */
    za_expect_error(&r, 400, "authorization_pending");
    assert_non_null(strstr(r.body, "\"approval_id\":\"apr_"));
    zh_resp_free(&r);
    assert_int_equal(store_agent_flag("quiet", "approval", 0, &changed), ZTB_OK);

    /* revoked: the session is refused before anything is recorded */
    int64_t gen, exp;
    assert_int_equal(store_rev_agent("quiet", 300, 60, &gen, &exp), ZTB_OK);
    ask(&q, "audience=crm&scope=crm:purge", &r); /* would be a policy denial */
    za_expect_error(&r, 401, "invalid_client");
    zh_resp_free(&r);
    assert_false(bf_audit_has("token.denied", "crm:purge"));
    za_free(&q);
}

/* Last: Redis gone is 503 with Retry-After, nothing issued. */
static void test_redis_down(void **state)
{
    (void)state;
    zh_redis_kill(&bf_redis);
    struct zh_resp r;
    ask(&bot, "audience=crm&scope=crm:read", &r);
    za_expect_error(&r, 503, "temporarily_unavailable");
    char v[16];
    assert_non_null(zh_resp_header(&r, "Retry-After", v, sizeof(v)));
    zh_resp_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_issued),
        cmocka_unit_test(test_request_shape_refused),
        cmocka_unit_test(test_authorization_details),
        cmocka_unit_test(test_policy_denies_and_audits),
        cmocka_unit_test(test_bindings),
        cmocka_unit_test(test_dpop_one_header),
        cmocka_unit_test(test_dpop_replay_window),
        cmocka_unit_test(test_rate_limit),
        cmocka_unit_test(test_agent_state),
        cmocka_unit_test(test_redis_down),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
