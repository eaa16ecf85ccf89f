/*
 * test_token.c - per-action tokens from the real broker and a real Redis.
 *
 * The test plays the agent with pki directly (its own P-256 key, a CSR, RFC
 * 7523 client assertions, DPoP proofs) so that every byte on the wire is
 * checked against docs/protocol.md, not against the SDK's reading of it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "common/base64url.h"
#include "common/buf.h"
#include "harness.h"
#include "pki/csr.h"
#include "pki/dpop.h"
#include "pki/jwk.h"
#include "pki/jws.h"

/* Spelled out on purpose, not wire/wire.h's: this test is the check that the
 * wire format (docs/protocol.md) did not change with the shared constants. */
#define ASSERTION_TYPE "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
#define SESSION_TYPE   "urn:ztb:params:oauth:client-assertion-type:session"
#define GRANT          "urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange"

static const char *policy_doc =
    "{\"version\": 1, \"trust_domain\": \"ztb.local\",\n"
    " \"settings\": {\"max_ttl\": 300, \"default_ttl\": 60,\n"
    "   \"rate_limits\": {\"per_agent\": {\"rate\": 1000, \"burst\": 100, \"period\": 60},\n"
    "                   \"per_action\": {\"rate\": 1000, \"burst\": 100, \"period\": 60}}},\n"
    " \"rules\": [\n"
    "  {\"id\": \"refund-small\", \"effect\": \"allow\", \"agents\": [\"billing-bot\"],\n"
    "   \"actions\": [\"payments:refund\"], \"audiences\": [\"payments\"],\n"
    "   \"resources\": [\"orders/*\"],\n"
    "   \"conditions\": {\"limits\": [{\"path\": \"amount\", \"max\": 50}]},\n"
    "   \"obligations\": {\"ttl\": 30, \"single_use\": true}},\n"
    "  {\"id\": \"orders-read\", \"effect\": \"allow\", \"agents\": [\"billing-bot\"],\n"
    "   \"actions\": [\"payments:read\"], \"audiences\": [\"payments\"],\n"
    "   \"resources\": [\"**\"],\n"
    "   \"obligations\": {\"rate_limits\": {\"per_action\": {\"rate\": 3, \"burst\": 3,\n"
    "                     \"period\": 60}}}},\n"
    "  {\"id\": \"tickets-dpop\", \"effect\": \"allow\", \"agents\": [\"billing-bot\"],\n"
    "   \"actions\": [\"tickets:create\"], \"audiences\": [\"tickets\"], \"resources\": [\"**\"],\n"
    "   \"obligations\": {\"binding\": \"dpop\"}},\n"
    "  {\"id\": \"no-disputed\", \"effect\": \"deny\", \"agents\": [\"*\"],\n"
    "   \"actions\": [\"payments:*\"], \"audiences\": [\"payments\"],\n"
    "   \"resources\": [\"orders/disputed-*\"]}\n"
    " ]}\n";

static struct zh_redis rd;
static struct zh_broker b;
static ztb_key *agent_key;
static char session[512];

/* ---- acting as an agent -------------------------------------------------- */

static json_t *body_json(const struct zh_resp *r)
{
    json_error_t e;
    json_t *j = json_loads(r->body, 0, &e);
    if (j == NULL)
        fail_msg("not JSON (HTTP %ld): %s", r->status, r->body);
    return j;
}

static void expect_error(const struct zh_resp *r, long status, const char *code)
{
    if (r->status != status)
        fail_msg("want HTTP %ld, got %ld: %s", status, r->status, r->body);
    json_t *j = body_json(r);
    const char *got = json_string_value(json_object_get(j, "error"));
    if (got == NULL || strcmp(got, code) != 0)
        fail_msg("want error %s, got %s", code, r->body);
    json_decref(j);
}

static char *join_token_for(const char *name)
{
    char body[128];
    snprintf(body, sizeof(body), "{\"name\":\"%s\"}", name);
    struct zh_resp r;
    assert_int_equal(zh_admin(&b, "POST", "/v1/agents", body, &r), 0);
    assert_int_equal(r.status, 201);
    json_t *j = body_json(&r);
    char *tok = strdup(json_string_value(json_object_get(j, "join_token")));
    json_decref(j);
    zh_resp_free(&r);
    return tok;
}

static long enroll(const char *join, ztb_key *k, const char *spiffe, struct zh_resp *r)
{
    ztb_buf csr;
    ztb_buf_init(&csr, 8192);
    assert_int_equal(ztb_csr_make(k, spiffe, &csr), ZTB_OK);
    json_t *req = json_pack("{s:s,s:s}", "join_token", join, "csr", ztb_buf_cstr(&csr));
    char *text = json_dumps(req, 0);
    char url[128];
    snprintf(url, sizeof(url), "%s/v1/enroll", b.url);
    assert_int_equal(zh_http("POST", url, NULL, "application/json", text, strlen(text), NULL, r),
                     0);
    free(text);
    json_decref(req);
    ztb_buf_free(&csr);
    return r->status;
}

/* A client assertion with header typ (NULL: none) into out. */
static void assertion_typ(ztb_key *k, const char *name, const char *jti, int64_t iat, int64_t exp,
                          const char *typ, ztb_buf *out)
{
    char claims[1024], jti_buf[32];
    if (jti == NULL) {
        uint8_t rnd[16];
        for (int i = 0; i < 16; i++)
            rnd[i] = (uint8_t)rand();
        ztb_b64url_encode(rnd, 16, jti_buf, sizeof(jti_buf), NULL);
        jti = jti_buf;
    }
    snprintf(claims, sizeof(claims),
             "{\"iss\":\"spiffe://ztb.local/agent/%s\",\"sub\":\"spiffe://ztb.local/agent/%s\","
             "\"aud\":\"%s/v1/token\",\"iat\":%lld,\"exp\":%lld,\"jti\":\"%s\"}",
             name, name, b.url, (long long)iat, (long long)exp, jti);
    ztb_jws_sign_opts o = {.typ = typ};
    ztb_buf_reset(out);
    assert_int_equal(ztb_jws_sign(k, &o, claims, strlen(claims), out), ZTB_OK);
}

/* A client assertion as docs/protocol.md has it: typ JWT. */
static void assertion(ztb_key *k, const char *name, const char *jti, int64_t iat, int64_t exp,
                      ztb_buf *out)
{
    assertion_typ(k, name, jti, iat, exp, "JWT", out);
}

static long post_form(const char *path, const char *form, const char *dpop, struct zh_resp *r)
{
    char url[128], hdr[2200];
    snprintf(url, sizeof(url), "%s%s", b.url, path);
    const char *headers[] = {hdr, NULL};
    if (dpop != NULL)
        snprintf(hdr, sizeof(hdr), "DPoP: %s", dpop);
    assert_int_equal(zh_http("POST", url, NULL, "application/x-www-form-urlencoded", form,
                             strlen(form), dpop ? headers : NULL, r),
                     0);
    return r->status;
}

/* A token request with the session credential and extra form fields. */
static long token_req(const char *extra, const char *dpop, struct zh_resp *r)
{
    char form[16384];
    snprintf(form, sizeof(form), "grant_type=%s&client_assertion_type=%s&client_assertion=%s%s",
             GRANT, SESSION_TYPE, session, extra);
    return post_form("/v1/token", form, dpop, r);
}

/* Verify an access token against the broker's JWKS; return its claims. */
static json_t *verify_token(const char *tok)
{
    struct zh_resp r;
    assert_int_equal(zh_get(&b, "/.well-known/jwks.json", &r), 0);
    assert_int_equal(r.status, 200);
    char cc[96];
    assert_non_null(zh_resp_header(&r, "Cache-Control", cc, sizeof(cc)));
    assert_non_null(strstr(cc, "max-age="));
    ztb_keyset *ks;
    assert_int_equal(ztb_jwks_parse(r.body, r.len, 0, &ks), ZTB_OK);
    zh_resp_free(&r);
    ztb_jws_header hdr;
    ztb_buf payload;
    ztb_buf_init(&payload, 8192);
    assert_int_equal(ztb_jws_verify(ks, tok, strlen(tok), NULL, &hdr, &payload), ZTB_OK);
    assert_string_equal(hdr.typ, "at+jwt");
    json_error_t e;
    json_t *c = json_loads(ztb_buf_cstr(&payload), 0, &e);
    assert_non_null(c);
    ztb_buf_free(&payload);
    ztb_keyset_free(ks);
    return c;
}

/* ---- fixture -------------------------------------------------------------- */

static int setup(void **state)
{
    (void)state;
    srand((unsigned)time(NULL) ^ (unsigned)getpid());
    zh_redis_start(&rd);
    zh_broker_start_issuing(&b, rd.url, policy_doc);
    assert_int_equal(ztb_key_generate(&agent_key), ZTB_OK);
    char *join = join_token_for("billing-bot");
    struct zh_resp r;
    assert_int_equal(enroll(join, agent_key, "spiffe://ztb.local/agent/billing-bot", &r), 201);
    free(join);
    zh_resp_free(&r);
    /* a session for the per-action path */
    ztb_buf a;
    ztb_buf_init(&a, 4096);
    int64_t now = time(NULL);
    assertion(agent_key, "billing-bot", NULL, now, now + 30, &a);
    char form[4096];
    snprintf(form, sizeof(form), "client_assertion_type=%s&client_assertion=%s", ASSERTION_TYPE,
             ztb_buf_cstr(&a));
    if (post_form("/v1/session", form, NULL, &r) != 200)
        fail_msg("session: HTTP %ld %s", r.status, r.body);
    json_t *j = body_json(&r);
    snprintf(session, sizeof(session), "%s", json_string_value(json_object_get(j, "session")));
    assert_int_equal(strncmp(session, "ztbs_", 5), 0);
    json_decref(j);
    zh_resp_free(&r);
    ztb_buf_free(&a);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    ztb_key_free(agent_key);
    assert_int_equal(zh_broker_stop(&b), 0);
    zh_redis_stop(&rd, 1);
    zh_rmtree(b.dir);
    return 0;
}

/* ---- tests ---------------------------------------------------------------- */

static void test_metadata(void **state)
{
    (void)state;
    struct zh_resp r;
    assert_int_equal(zh_get(&b, "/.well-known/oauth-authorization-server", &r), 0);
    assert_int_equal(r.status, 200);
    json_t *j = body_json(&r);
    assert_string_equal(json_string_value(json_object_get(j, "issuer")), b.url);
    char want[128];
    snprintf(want, sizeof(want), "%s/v1/token", b.url);
    assert_string_equal(json_string_value(json_object_get(j, "token_endpoint")), want);
    json_decref(j);
    zh_resp_free(&r);
}

static void test_session_token_happy_path(void **state)
{
    (void)state;
    struct zh_resp r;
    const char *details = "%5B%7B%22type%22%3A%22payment%22%2C%22amount%22%3A40%7D%5D";
    char extra[512];
    snprintf(extra, sizeof(extra),
             "&audience=payments&scope=payments%%3Arefund&resource=orders%%2F1234"
             "&authorization_details=%s",
             details);
    assert_int_equal(token_req(extra, NULL, &r), 200);
    json_t *j = body_json(&r);
    assert_string_equal(json_string_value(json_object_get(j, "token_type")), "Bearer");
    assert_int_equal(json_integer_value(json_object_get(j, "expires_in")), 30);
    assert_string_equal(json_string_value(json_object_get(j, "issued_token_type")),
                        "urn:ietf:params:oauth:token-type:access_token");
    json_t *c = verify_token(json_string_value(json_object_get(j, "access_token")));
    assert_string_equal(json_string_value(json_object_get(c, "iss")), b.url);
    assert_string_equal(json_string_value(json_object_get(c, "sub")),
                        "spiffe://ztb.local/agent/billing-bot");
    assert_string_equal(json_string_value(json_object_get(c, "aud")), "payments");
    assert_string_equal(json_string_value(json_object_get(c, "scope")), "payments:refund");
    int64_t iat = json_integer_value(json_object_get(c, "iat"));
    assert_int_equal(json_integer_value(json_object_get(c, "exp")) - iat, 30);
    assert_int_equal(strlen(json_string_value(json_object_get(c, "jti"))), 22);
    json_t *ad = json_array_get(json_object_get(c, "authorization_details"), 0);
    assert_string_equal(json_string_value(json_object_get(ad, "type")), "payment");
    assert_int_equal(json_integer_value(json_object_get(ad, "amount")), 40);
    assert_string_equal(json_string_value(json_object_get(ad, "identifier")), "orders/1234");
    assert_string_equal(json_string_value(json_array_get(json_object_get(ad, "actions"), 0)),
                        "payments:refund");
    json_t *z = json_object_get(c, "ztb");
    assert_string_equal(json_string_value(json_object_get(z, "agent")), "billing-bot");
    assert_int_equal(json_integer_value(json_object_get(z, "gen")), 1);
    assert_true(json_is_true(json_object_get(z, "single_use")));
    assert_string_equal(json_string_value(json_object_get(z, "rule")), "refund-small");
    assert_null(json_object_get(c, "cnf"));
    json_decref(c);
    json_decref(j);
    zh_resp_free(&r);
}

static void test_assertion_auth_and_replay(void **state)
{
    (void)state;
    ztb_buf a;
    ztb_buf_init(&a, 4096);
    int64_t now = time(NULL);
    assertion(agent_key, "billing-bot", "fixed-jti-0123456789", now, now + 30, &a);
    char form[4096];
    snprintf(form, sizeof(form),
             "grant_type=%s&client_assertion_type=%s&client_assertion=%s"
             "&audience=payments&scope=payments%%3Aread",
             GRANT, ASSERTION_TYPE, ztb_buf_cstr(&a));
    struct zh_resp r;
    assert_int_equal(post_form("/v1/token", form, NULL, &r), 200);
    zh_resp_free(&r);
    post_form("/v1/token", form, NULL, &r); /* the same assertion again */
    expect_error(&r, 401, "invalid_client");
    assert_non_null(strstr(r.body, "replay"));
    zh_resp_free(&r);
    /* a replay is counted, not audited one by one (anyone holding a copy can
     * send thousands); the detector's signal is what the audit log records */
    assert_int_equal(zh_get(&b, "/metrics", &r), 0);
    assert_non_null(strstr(
        r.body,
        "ztb_requests_refused_total{endpoint=\"/v1/token\",reason=\"assertion_replay\"} 1\n"));
    zh_resp_free(&r);

    /* an assertion for another audience, expired, too long-lived, or signed
     * by a key that is not the agent's */
    ztb_key *other;
    assert_int_equal(ztb_key_generate(&other), ZTB_OK);
    struct {
        ztb_key *k;
        int64_t iat, exp;
    } bad[] = {
        {agent_key, now - 200, now - 100}, {agent_key, now, now + 3600}, {other, now, now + 30}};
    for (size_t i = 0; i < 3; i++) {
        assertion(bad[i].k, "billing-bot", NULL, bad[i].iat, bad[i].exp, &a);
        snprintf(form, sizeof(form),
                 "grant_type=%s&client_assertion_type=%s&client_assertion=%s"
                 "&audience=payments&scope=payments%%3Aread",
                 GRANT, ASSERTION_TYPE, ztb_buf_cstr(&a));
        post_form("/v1/token", form, NULL, &r);
        expect_error(&r, 401, "invalid_client");
        zh_resp_free(&r);
    }
    ztb_key_free(other);
    ztb_buf_free(&a);
}

/*
 * The assertion's header typ is JWT (docs/protocol.md): a JWS of another type
 * signed by the agent's key, or one without typ, is not a client assertion
 * even with the right claims (explicit typing, RFC 8725 section 3.11).
 */
static void test_assertion_typ(void **state)
{
    (void)state;
    ztb_buf a;
    ztb_buf_init(&a, 4096);
    int64_t now = time(NULL);
    char form[4096];
    struct zh_resp r;
    const char *wrong[] = {"at+jwt", "dpop+jwt", "secevent+jwt", "JOSE", "jwt ", NULL};
    for (size_t i = 0; i < sizeof(wrong) / sizeof(wrong[0]); i++) {
        assertion_typ(agent_key, "billing-bot", NULL, now, now + 30, wrong[i], &a);
        snprintf(form, sizeof(form), "client_assertion_type=%s&client_assertion=%s", ASSERTION_TYPE,
                 ztb_buf_cstr(&a));
        post_form("/v1/session", form, NULL, &r);
        if (r.status != 401)
            fail_msg("an assertion with typ %s%s%s got HTTP %ld: %s", wrong[i] ? "'" : "",
                     wrong[i] ? wrong[i] : "(none)", wrong[i] ? "'" : "", r.status, r.body);
        expect_error(&r, 401, "invalid_client");
        assert_non_null(strstr(r.body, "typ"));
        zh_resp_free(&r);
    }
    /* the same with typ JWT is fine */
    assertion_typ(agent_key, "billing-bot", NULL, now, now + 30, "JWT", &a);
    snprintf(form, sizeof(form), "client_assertion_type=%s&client_assertion=%s", ASSERTION_TYPE,
             ztb_buf_cstr(&a));
    assert_int_equal(post_form("/v1/session", form, NULL, &r), 200);
    zh_resp_free(&r);
    ztb_buf_free(&a);
}

static void test_policy_denies(void **state)
{
    (void)state;
    struct zh_resp r;
    /* an action no rule allows */
    token_req("&audience=payments&scope=payments%3Adelete", NULL, &r);
    expect_error(&r, 403, "access_denied");
    zh_resp_free(&r);
    /* the explicit deny wins over refund-small */
    token_req("&audience=payments&scope=payments%3Arefund&resource=orders%2Fdisputed-9"
              "&authorization_details=%5B%7B%22type%22%3A%22payment%22%2C%22amount%22%3A1%7D%5D",
              NULL, &r);
    expect_error(&r, 403, "access_denied");
    assert_non_null(strstr(r.body, "no-disputed"));
    zh_resp_free(&r);
    /* over the amount limit */
    token_req("&audience=payments&scope=payments%3Arefund&resource=orders%2F1"
              "&authorization_details=%5B%7B%22type%22%3A%22payment%22%2C%22amount%22%3A51%7D%5D",
              NULL, &r);
    expect_error(&r, 403, "access_denied");
    zh_resp_free(&r);
}

static void test_rate_limit(void **state)
{
    (void)state;
    struct zh_resp r;
    int ok = 0, limited = 0;
    /* payments:read has 3 per minute; one was used by the assertion test */
    for (int i = 0; i < 5; i++) {
        long s = token_req("&audience=payments&scope=payments%3Aread", NULL, &r);
        if (s == 200) {
            ok++;
        } else {
            expect_error(&r, 429, "slow_down");
            char v[16];
            assert_non_null(zh_resp_header(&r, "Retry-After", v, sizeof(v)));
            assert_true(atoi(v) >= 1 && atoi(v) <= 20);
            limited++;
        }
        zh_resp_free(&r);
    }
    assert_int_equal(ok, 2);
    assert_int_equal(limited, 3);
}

static void test_dpop_binding(void **state)
{
    (void)state;
    struct zh_resp r;
    token_req("&audience=tickets&scope=tickets%3Acreate", NULL, &r);
    expect_error(&r, 400, "invalid_request");
    assert_non_null(strstr(r.body, "DPoP"));
    zh_resp_free(&r);

    ztb_key *dk;
    assert_int_equal(ztb_key_generate(&dk), ZTB_OK);
    char htu[128];
    snprintf(htu, sizeof(htu), "%s/v1/token", b.url);
    ztb_buf p;
    ztb_buf_init(&p, 8192);
    assert_int_equal(ztb_dpop_proof_make(dk, "POST", htu, time(NULL), NULL, &p), ZTB_OK);
    assert_int_equal(token_req("&audience=tickets&scope=tickets%3Acreate", ztb_buf_cstr(&p), &r),
                     200);
    json_t *j = body_json(&r);
    assert_string_equal(json_string_value(json_object_get(j, "token_type")), "DPoP");
    json_t *c = verify_token(json_string_value(json_object_get(j, "access_token")));
    assert_string_equal(json_string_value(json_object_get(json_object_get(c, "cnf"), "jkt")),
                        ztb_key_kid(dk));
    json_decref(c);
    json_decref(j);
    zh_resp_free(&r);
    /* the same proof twice */
    token_req("&audience=tickets&scope=tickets%3Acreate", ztb_buf_cstr(&p), &r);
    expect_error(&r, 400, "invalid_dpop_proof");
    zh_resp_free(&r);
    /* and with a client assertion (the agent's state read at authentication)
     * instead of a session: a fresh proof once, then its replay refused */
    ztb_buf_reset(&p);
    assert_int_equal(ztb_dpop_proof_make(dk, "POST", htu, time(NULL), NULL, &p), ZTB_OK);
    for (int i = 0; i < 2; i++) {
        ztb_buf a;
        ztb_buf_init(&a, 4096);
        int64_t now = time(NULL);
        assertion(agent_key, "billing-bot", NULL, now, now + 30, &a);
        char form[8192];
        snprintf(form, sizeof(form),
                 "grant_type=%s&client_assertion_type=%s&client_assertion=%s"
                 "&audience=tickets&scope=tickets%%3Acreate",
                 GRANT, ASSERTION_TYPE, ztb_buf_cstr(&a));
        long st = post_form("/v1/token", form, ztb_buf_cstr(&p), &r);
        if (i == 0 && st != 200)
            fail_msg("assertion + DPoP: %ld %s", st, r.body);
        if (i == 1)
            expect_error(&r, 400, "invalid_dpop_proof");
        zh_resp_free(&r);
        ztb_buf_free(&a);
    }
    /* a proof for another URL */
    ztb_buf_reset(&p);
    assert_int_equal(
        ztb_dpop_proof_make(dk, "POST", "https://elsewhere/v1/token", time(NULL), NULL, &p),
        ZTB_OK);
    token_req("&audience=tickets&scope=tickets%3Acreate", ztb_buf_cstr(&p), &r);
    expect_error(&r, 400, "invalid_dpop_proof");
    zh_resp_free(&r);
    ztb_buf_free(&p);
    ztb_key_free(dk);
}

static void test_bad_requests(void **state)
{
    (void)state;
    struct zh_resp r;
    char url[128];
    snprintf(url, sizeof(url), "%s/v1/token", b.url);
    assert_int_equal(zh_http("POST", url, NULL, "application/json", "{}", 2, NULL, &r), 0);
    expect_error(&r, 415, "invalid_request");
    zh_resp_free(&r);
    token_req("&audience=payments&audience=other&scope=payments%3Aread", NULL, &r);
    expect_error(&r, 400, "invalid_request");
    assert_non_null(strstr(r.body, "more than once"));
    zh_resp_free(&r);
    token_req("&audience=payments&scope=payments%3Aread&colour=red", NULL, &r);
    expect_error(&r, 400, "invalid_request");
    assert_non_null(strstr(r.body, "colour"));
    zh_resp_free(&r);
    token_req("&audience=payments&scope=payments%3Aread+payments%3Arefund", NULL, &r);
    expect_error(&r, 400, "invalid_scope");
    zh_resp_free(&r);
    token_req("&audience=payments&scope=%ZZ", NULL, &r);
    expect_error(&r, 400, "invalid_request");
    zh_resp_free(&r);
    token_req("&audience=payments&scope=payments%3Aread&authorization_details=%5B1%5D", NULL, &r);
    expect_error(&r, 400, "invalid_authorization_details");
    zh_resp_free(&r);
    char *huge = malloc(12000);
    strcpy(huge, "&audience=payments&scope=payments%3Aread&authorization_details=%5B%7B%22type%22"
                 "%3A%22x%22%2C%22pad%22%3A%22");
    size_t hl = strlen(huge);
    memset(huge + hl, 'a', 6000);
    strcpy(huge + hl + 6000, "%22%7D%5D");
    token_req(huge, NULL, &r);
    expect_error(&r, 400, "invalid_authorization_details");
    assert_non_null(strstr(r.body, "too large"));
    zh_resp_free(&r);
    free(huge);
    post_form("/v1/token", "grant_type=password&audience=payments&scope=a%3Ab", NULL, &r);
    expect_error(&r, 400, "unsupported_grant_type");
    zh_resp_free(&r);
    char form[512];
    snprintf(form, sizeof(form), "grant_type=%s&audience=payments&scope=payments%%3Aread", GRANT);
    post_form("/v1/token", form, NULL, &r);
    expect_error(&r, 401, "invalid_client");
    zh_resp_free(&r);
    snprintf(form, sizeof(form),
             "grant_type=%s&client_assertion_type=%s&client_assertion=ztbs_forged.AAAA"
             "&audience=payments&scope=payments%%3Aread",
             GRANT, SESSION_TYPE);
    post_form("/v1/token", form, NULL, &r);
    expect_error(&r, 401, "invalid_client");
    zh_resp_free(&r);
    /* the daemon is unharmed */
    assert_int_equal(zh_get(&b, "/readyz", &r), 0);
    assert_int_equal(r.status, 200);
    zh_resp_free(&r);
}

/*
 * Untrusted JSON is read by the strict reader, and a refusal names the
 * problem. Before, authorization_details went to jansson: nested deeper than
 * any verifier reads, it was carried into a token no verifier accepted; and
 * an unauthenticated client assertion nested 40 deep was parsed by jansson,
 * then cost a Redis read and an ECDSA verification before its refusal.
 */
static void test_untrusted_json_is_read_strictly(void **state)
{
    (void)state;
    struct zh_resp r;
    /* [{"type":"payment","x":[[[...1...]]]}] nested 16 deep: the token's claims
     * would nest 17, one more than every verifier reads */
    char extra[2048];
    size_t o = (size_t)snprintf(extra, sizeof(extra),
                                "&audience=payments&scope=payments%%3Arefund&resource=orders%%2F1"
                                "&authorization_details=%%5B%%7B%%22type%%22%%3A%%22payment%%22"
                                "%%2C%%22amount%%22%%3A1%%2C%%22x%%22%%3A");
    for (int i = 0; i < 14; i++)
        o += (size_t)snprintf(extra + o, sizeof(extra) - o, "%%5B");
    o += (size_t)snprintf(extra + o, sizeof(extra) - o, "1");
    for (int i = 0; i < 14; i++)
        o += (size_t)snprintf(extra + o, sizeof(extra) - o, "%%5D");
    snprintf(extra + o, sizeof(extra) - o, "%%7D%%5D");
    token_req(extra, NULL, &r);
    expect_error(&r, 400, "invalid_authorization_details");
    assert_non_null(strstr(r.body, "nested too deeply"));
    zh_resp_free(&r);
    /* 15 deep is what a token can carry: issued */
    o = (size_t)snprintf(extra, sizeof(extra),
                         "&audience=payments&scope=payments%%3Arefund&resource=orders%%2F1"
                         "&authorization_details=%%5B%%7B%%22type%%22%%3A%%22payment%%22"
                         "%%2C%%22amount%%22%%3A1%%2C%%22x%%22%%3A");
    for (int i = 0; i < 13; i++)
        o += (size_t)snprintf(extra + o, sizeof(extra) - o, "%%5B");
    o += (size_t)snprintf(extra + o, sizeof(extra) - o, "1");
    for (int i = 0; i < 13; i++)
        o += (size_t)snprintf(extra + o, sizeof(extra) - o, "%%5D");
    snprintf(extra + o, sizeof(extra) - o, "%%7D%%5D");
    assert_int_equal(token_req(extra, NULL, &r), 200);
    zh_resp_free(&r);
    /* a duplicate name after unescaping ("type" and "\u0074ype") is named */
    token_req("&audience=payments&scope=payments%3Arefund&resource=orders%2F1"
              "&authorization_details="
              "%5B%7B%22type%22%3A%22payment%22%2C%22%5Cu0074ype%22%3A%22x%22%7D%5D",
              NULL, &r);
    expect_error(&r, 400, "invalid_authorization_details");
    assert_non_null(strstr(r.body, "duplicate member name"));
    zh_resp_free(&r);

    /* an unsigned (forged) assertion naming the enrolled agent, its claims
     * nested 40 deep: refused for its JSON, before any key is looked up */
    char claims[512];
    o = (size_t)snprintf(claims, sizeof(claims),
                         "{\"iss\":\"spiffe://ztb.local/agent/billing-bot\",\"x\":");
    for (int i = 0; i < 40; i++)
        claims[o++] = '[';
    for (int i = 0; i < 40; i++)
        claims[o++] = ']';
    claims[o++] = '}';
    claims[o] = '\0';
    const char *hdr = "{\"alg\":\"ES256\",\"typ\":\"JWT\"}";
    uint8_t sig[64] = {1};
    char h64[128], c64[1024], s64[128], form[2048];
    assert_int_equal(ztb_b64url_encode(hdr, strlen(hdr), h64, sizeof(h64), NULL), ZTB_OK);
    assert_int_equal(ztb_b64url_encode(claims, o, c64, sizeof(c64), NULL), ZTB_OK);
    assert_int_equal(ztb_b64url_encode(sig, sizeof(sig), s64, sizeof(s64), NULL), ZTB_OK);
    snprintf(form, sizeof(form),
             "grant_type=%s&client_assertion_type=%s&client_assertion=%s.%s.%s"
             "&audience=payments&scope=payments%%3Aread",
             GRANT, ASSERTION_TYPE, h64, c64, s64);
    post_form("/v1/token", form, NULL, &r);
    expect_error(&r, 401, "invalid_client");
    assert_non_null(strstr(r.body, "nested too deeply"));
    zh_resp_free(&r);

    /* enrollment and renewal bodies arrive before authentication too */
    char url[128];
    const char *bodies[] = {"{\"join_token\":\"x\",\"csr\":\"a\",\"\\u0063sr\":\"b\"}",
                            "{\"join_token\":\"x\",\"csr\":\"\\udc00\"}",
                            "{\"join_token\":\"x\",\"csr\":\"a\"} {}"};
    const char *names[] = {"duplicate member name", "lone UTF-16 surrogate", "trailing bytes"};
    for (size_t i = 0; i < 3; i++) {
        for (int k = 0; k < 2; k++) {
            snprintf(url, sizeof(url), "%s%s", b.url, k ? "/v1/renew" : "/v1/enroll");
            assert_int_equal(zh_http("POST", url, NULL, "application/json", bodies[i],
                                     strlen(bodies[i]), NULL, &r),
                             0);
            expect_error(&r, 400, "invalid_request");
            if (strstr(r.body, names[i]) == NULL)
                fail_msg("%s: want \"%s\", got %s", url, names[i], r.body);
            zh_resp_free(&r);
        }
    }
}

static void test_enrollment_rules(void **state)
{
    (void)state;
    char *join = join_token_for("crm-sync");
    ztb_key *k;
    assert_int_equal(ztb_key_generate(&k), ZTB_OK);
    struct zh_resp r;
    /* a CSR for another name is refused, and does not burn the token */
    enroll(join, k, "spiffe://ztb.local/agent/billing-bot", &r);
    expect_error(&r, 400, "invalid_request");
    zh_resp_free(&r);
    assert_int_equal(enroll(join, k, "spiffe://ztb.local/agent/crm-sync", &r), 201);
    json_t *j = body_json(&r);
    assert_non_null(
        strstr(json_string_value(json_object_get(j, "identity")), "-----BEGIN CERTIFICATE-----"));
    assert_string_equal(json_string_value(json_object_get(j, "spiffe_id")),
                        "spiffe://ztb.local/agent/crm-sync");
    json_decref(j);
    zh_resp_free(&r);
    /* used once only */
    enroll(join, k, "spiffe://ztb.local/agent/crm-sync", &r);
    expect_error(&r, 400, "invalid_grant");
    zh_resp_free(&r);
    enroll("ztbj_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", k,
           "spiffe://ztb.local/agent/crm-sync", &r);
    expect_error(&r, 400, "invalid_grant");
    zh_resp_free(&r);
    free(join);
    ztb_key_free(k);
}

static void test_expired_join_token_and_renewal(void **state)
{
    (void)state;
    /* a join token that lived one second */
    struct zh_resp r;
    assert_int_equal(zh_admin(&b, "POST", "/v1/agents", "{\"name\":\"slowpoke\",\"ttl\":1}", &r),
                     0);
    assert_int_equal(r.status, 201);
    json_t *j = body_json(&r);
    char join[64];
    snprintf(join, sizeof(join), "%s", json_string_value(json_object_get(j, "join_token")));
    json_decref(j);
    zh_resp_free(&r);
    usleep(1300000);
    ztb_key *k;
    assert_int_equal(ztb_key_generate(&k), ZTB_OK);
    enroll(join, k, "spiffe://ztb.local/agent/slowpoke", &r);
    expect_error(&r, 400, "invalid_grant");
    zh_resp_free(&r);
    ztb_key_free(k);

    /* renewal: the current identity (a client assertion) and a CSR for the
     * same key give a new identity document. A CSR for another key is
     * refused: a holder of a stolen identity must not move it onto its own
     * key and lock the agent out; a new key needs a new join token. */
    ztb_key *next;
    assert_int_equal(ztb_key_generate(&next), ZTB_OK);
    ztb_buf csr, a;
    ztb_buf_init(&csr, 8192);
    ztb_buf_init(&a, 4096);
    char url[128];
    snprintf(url, sizeof(url), "%s/v1/renew", b.url);
    int64_t now = time(NULL);
    const struct {
        ztb_key *csr_key;
        const char *spiffe;
        long status;
    } cases[] = {
        {next, "spiffe://ztb.local/agent/billing-bot", 400},      /* another key */
        {agent_key, "spiffe://ztb.local/agent/crm-sync", 400},    /* another agent's name */
        {agent_key, "spiffe://ztb.local/agent/billing-bot", 201}, /* the same key */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        ztb_buf_reset(&csr);
        assert_int_equal(ztb_csr_make(cases[i].csr_key, cases[i].spiffe, &csr), ZTB_OK);
        assertion(agent_key, "billing-bot", NULL, now, now + 30, &a);
        json_t *req = json_pack("{s:s,s:s,s:s}", "client_assertion_type", ASSERTION_TYPE,
                                "client_assertion", ztb_buf_cstr(&a), "csr", ztb_buf_cstr(&csr));
        char *text = json_dumps(req, 0);
        assert_int_equal(
            zh_http("POST", url, NULL, "application/json", text, strlen(text), NULL, &r), 0);
        if (r.status != cases[i].status)
            fail_msg("renew case %zu: %ld %s", i, r.status, r.body);
        if (cases[i].status == 400)
            expect_error(&r, 400, "invalid_request");
        zh_resp_free(&r);
        free(text);
        json_decref(req);
    }
    /* the foreign key never became the agent's: its assertions do not
     * authenticate; the agent's own still do */
    char form[4096];
    assertion(next, "billing-bot", NULL, now, now + 30, &a);
    snprintf(form, sizeof(form), "client_assertion_type=%s&client_assertion=%s", ASSERTION_TYPE,
             ztb_buf_cstr(&a));
    post_form("/v1/session", form, NULL, &r);
    expect_error(&r, 401, "invalid_client");
    zh_resp_free(&r);
    assertion(agent_key, "billing-bot", NULL, now, now + 30, &a);
    snprintf(form, sizeof(form), "client_assertion_type=%s&client_assertion=%s", ASSERTION_TYPE,
             ztb_buf_cstr(&a));
    assert_int_equal(post_form("/v1/session", form, NULL, &r), 200);
    zh_resp_free(&r);
    ztb_key_free(next);
    ztb_buf_free(&csr);
    ztb_buf_free(&a);
}

/* Redis goes away mid-test: 503 and no token; it returns: tokens again. */
static void test_redis_loss_fails_closed(void **state)
{
    (void)state;
    struct zh_resp r;
    zh_redis_kill(&rd);
    for (int i = 0; i < 3; i++) {
        token_req("&audience=tickets&scope=tickets%3Acreate", NULL, &r);
        /* no DPoP: policy would refuse anyway after Redis; use a scope that
         * gets as far as Redis instead */
        zh_resp_free(&r);
        token_req(
            "&audience=payments&scope=payments%3Arefund&resource=orders%2F5"
            "&authorization_details=%5B%7B%22type%22%3A%22payment%22%2C%22amount%22%3A5%7D%5D",
            NULL, &r);
        expect_error(&r, 503, "temporarily_unavailable");
        char v[16];
        assert_non_null(zh_resp_header(&r, "Retry-After", v, sizeof(v)));
        assert_null(strstr(r.body, "access_token"));
        zh_resp_free(&r);
    }
    zh_redis_restart(&rd);
    long s = 0;
    for (int i = 0; i < 100 && s != 200; i++) {
        s = token_req("&audience=payments&scope=payments%3Arefund&resource=orders%2F5"
                      "&authorization_details=%5B%7B%22type%22%3A%22payment%22%2C%22amount%22%3A5"
                      "%7D%5D",
                      NULL, &r);
        zh_resp_free(&r);
        if (s != 200)
            usleep(50000);
    }
    assert_int_equal(s, 200);
}

static void test_audit_records(void **state)
{
    (void)state;
    char path[400];
    snprintf(path, sizeof(path), "%s/audit/audit.log", b.state);
    const char *argv[] = {zh_bin("ztbctl"), "audit", "verify", path, NULL};
    char *out, *err;
    assert_int_equal(zh_run(argv, &out, &err), 0);
    free(out);
    free(err);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char *all = calloc(1, 1 << 22);
    size_t n = fread(all, 1, (1 << 22) - 1, f);
    fclose(f);
    all[n] = '\0';
    assert_non_null(strstr(all, "\"event\":\"token.issued\""));
    assert_non_null(strstr(all, "\"event\":\"token.denied\""));
    assert_null(strstr(all, "\"event\":\"auth.assertion_replay\""));
    char *replay = strstr(all, "\"type\":\"assertion_replay\"");
    assert_non_null(replay); /* the detector's signal.received line */
    assert_null(strstr(all, session));
    assert_null(strstr(all, "eyJ"));
    free(all);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_metadata),
        cmocka_unit_test(test_session_token_happy_path),
        cmocka_unit_test(test_assertion_auth_and_replay),
        cmocka_unit_test(test_assertion_typ),
        cmocka_unit_test(test_policy_denies),
        cmocka_unit_test(test_rate_limit),
        cmocka_unit_test(test_dpop_binding),
        cmocka_unit_test(test_bad_requests),
        cmocka_unit_test(test_untrusted_json_is_read_strictly),
        cmocka_unit_test(test_enrollment_rules),
        cmocka_unit_test(test_expired_join_token_and_renewal),
        cmocka_unit_test(test_redis_loss_fails_closed),
        cmocka_unit_test(test_audit_records),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
