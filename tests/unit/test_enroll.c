/*
 * test_enroll.c - POST /v1/enroll, /v1/renew and /v1/session (enroll.c),
 * served by a real http_server in this process (broker_fixture.h bf_serve)
 * against a real Redis, key store and agent CA: the body shapes refused, a
 * join token used once and not burned by a bad CSR, a disabled agent, a
 * renewal that tries to change the key, sessions for quarantined agents,
 * and 503 when Redis is gone.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "agent.h"
#include "broker/store/store.h"
#include "broker/store/store_rev.h"
#include "broker_fixture.h"
#include "pki/csr.h"

static int setup(void **state)
{
    (void)state;
    bf_setup_ca(NULL, 1);
    bf_serve(0);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    bf_unserve();
    bf_teardown();
    return 0;
}

/* POST a JSON text to path on the served API; returns the status. */
static long post_json(const char *path, const char *json, struct zh_resp *r)
{
    char url[256];
    snprintf(url, sizeof(url), "%s%s", bf_broker.url, path);
    assert_int_equal(zh_http("POST", url, NULL, "application/json", json, strlen(json), NULL, r),
                     0);
    return r->status;
}

/* {"join_token": join, "csr": a CSR of key for spiffe://ztb.local/agent/name} */
static char *enroll_body(const char *join, const ztb_key *key, const char *name)
{
    char spiffe[128];
    snprintf(spiffe, sizeof(spiffe), "spiffe://ztb.local/agent/%s", name);
    ztb_buf csr;
    ztb_buf_init(&csr, 8192);
    assert_int_equal(ztb_csr_make(key, spiffe, &csr), ZTB_OK);
    json_t *j = json_pack("{s:s,s:s}", "join_token", join, "csr", ztb_buf_cstr(&csr));
    char *text = json_dumps(j, 0);
    json_decref(j);
    ztb_buf_free(&csr);
    return text;
}

static void test_enroll_issues_identity(void **state)
{
    (void)state;
    struct za_agent a;
    za_enroll(&bf_broker, &a, "alpha"); /* enrollment, then a session */
    assert_true(a.session[0] != '\0');
    assert_true(bf_audit_has("enroll.identity_issued", "\"agent\":\"alpha\""));
    assert_true(bf_audit_has("auth.session_created", "\"agent\":\"alpha\""));
    struct store_agent st;
    assert_int_equal(store_agent_get("alpha", &st), ZTB_OK);
    assert_int_equal(st.generation, 1);
    za_free(&a);
}

static void test_enroll_body_shape(void **state)
{
    (void)state;
    struct zh_resp r;
    const char *bad[] = {
        "not json",
        "[]",
        "{}",
        "{\"join_token\":\"ztbj_x\"}",
        "{\"csr\":\"x\"}",
        "{\"join_token\":\"ztbj_x\",\"csr\":\"x\",\"extra\":1}",
        "{\"join_token\":1,\"csr\":\"x\"}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        post_json("/v1/enroll", bad[i], &r);
        za_expect_error(&r, 400, "invalid_request");
        zh_resp_free(&r);
    }
    /* a CSR over the limit is refused before anything else */
    size_t n = 9000;
    char *big = malloc(n + 64);
    int off = snprintf(big, n + 64, "{\"join_token\":\"ztbj_x\",\"csr\":\"");
    memset(big + off, 'A', n);
    snprintf(big + off + n, 64, "\"}");
    post_json("/v1/enroll", big, &r);
    za_expect_error(&r, 400, "invalid_request");
    zh_resp_free(&r);
    free(big);
}

static void test_join_token_once_and_not_burned(void **state)
{
    (void)state;
    ztb_key *key, *other;
    assert_int_equal(ztb_key_generate(&key), ZTB_OK);
    assert_int_equal(ztb_key_generate(&other), ZTB_OK);
    char *join = za_join_token(&bf_broker, "beta");
    struct zh_resp r;

    /* unknown join token */
    char *body = enroll_body("ztbj_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", key, "beta");
    post_json("/v1/enroll", body, &r);
    za_expect_error(&r, 400, "invalid_grant");
    zh_resp_free(&r);
    free(body);

    /* a CSR for another agent's SPIFFE ID: refused, naming the one it must
     * name, and the token is not used up */
    body = enroll_body(join, key, "someone-else");
    post_json("/v1/enroll", body, &r);
    za_expect_error(&r, 400, "invalid_request");
    assert_non_null(strstr(r.body, "spiffe://ztb.local/agent/beta"));
    zh_resp_free(&r);
    free(body);
    body = enroll_body(join, key, "beta");
    assert_int_equal(post_json("/v1/enroll", body, &r), 201);
    json_t *j = za_json(&r);
    assert_string_equal(json_string_value(json_object_get(j, "spiffe_id")),
                        "spiffe://ztb.local/agent/beta");
    assert_non_null(strstr(json_string_value(json_object_get(j, "identity")), "CERTIFICATE"));
    assert_true(json_integer_value(json_object_get(j, "expires_at")) > time(NULL));
    json_decref(j);
    zh_resp_free(&r);

    /* the same token again, even with a good CSR: refused, and the reuse
     * is counted (a detector event) */
    post_json("/v1/enroll", body, &r);
    za_expect_error(&r, 400, "invalid_grant");
    assert_non_null(strstr(r.body, "unknown, used or expired"));
    zh_resp_free(&r);
    free(body);
    free(join);
    ztb_key_free(key);
    ztb_key_free(other);
}

static void test_disabled_agent(void **state)
{
    (void)state;
    ztb_key *key;
    assert_int_equal(ztb_key_generate(&key), ZTB_OK);
    char *join = za_join_token(&bf_broker, "gamma");
    assert_int_equal(store_agent_set_status("gamma", "disabled"), ZTB_OK);
    char *body = enroll_body(join, key, "gamma");
    struct zh_resp r;
    post_json("/v1/enroll", body, &r);
    za_expect_error(&r, 400, "invalid_grant");
    assert_non_null(strstr(r.body, "disabled"));
    zh_resp_free(&r);
    /* enabled again: the token was not used up by the refusal */
    assert_int_equal(store_agent_set_status("gamma", "active"), ZTB_OK);
    assert_int_equal(post_json("/v1/enroll", body, &r), 201);
    zh_resp_free(&r);
    free(body);
    free(join);
    ztb_key_free(key);
}

/* POST /v1/renew for a with a CSR of key (a fresh assertion of a). */
static long renew(const struct za_agent *a, const ztb_key *key, struct zh_resp *r)
{
    char spiffe[128];
    snprintf(spiffe, sizeof(spiffe), "spiffe://ztb.local/agent/%s", a->name);
    ztb_buf csr, as;
    ztb_buf_init(&csr, 8192);
    ztb_buf_init(&as, 4096);
    assert_int_equal(ztb_csr_make(key, spiffe, &csr), ZTB_OK);
    za_assertion(&bf_broker, a, NULL, &as);
    json_t *j = json_pack("{s:s,s:s,s:s}", "csr", ztb_buf_cstr(&csr), "client_assertion_type",
                          ZA_ASSERTION_TYPE, "client_assertion", ztb_buf_cstr(&as));
    char *text = json_dumps(j, 0);
    long st = post_json("/v1/renew", text, r);
    free(text);
    json_decref(j);
    ztb_buf_free(&csr);
    ztb_buf_free(&as);
    return st;
}

static void test_renew(void **state)
{
    (void)state;
    struct za_agent a;
    za_enroll(&bf_broker, &a, "delta");
    struct zh_resp r;
    assert_int_equal(renew(&a, a.key, &r), 201);
    zh_resp_free(&r);
    assert_true(bf_audit_has("enroll.identity_renewed", "\"agent\":\"delta\""));

    /* renewal keeps the key: a CSR of another key is refused and audited */
    ztb_key *other;
    assert_int_equal(ztb_key_generate(&other), ZTB_OK);
    renew(&a, other, &r);
    za_expect_error(&r, 400, "invalid_request");
    assert_non_null(strstr(r.body, "new join token"));
    zh_resp_free(&r);
    assert_true(bf_audit_has("enroll.renewal_key_refused", "\"agent\":\"delta\""));

    /* no credential: 401 */
    post_json("/v1/renew", "{\"csr\":\"x\"}", &r);
    za_expect_error(&r, 401, "invalid_client");
    zh_resp_free(&r);
    post_json("/v1/renew", "{}", &r);
    za_expect_error(&r, 400, "invalid_request");
    zh_resp_free(&r);

    /* quarantined: authenticated, but no new identity */
    int changed;
    assert_int_equal(store_agent_flag("delta", "quarantined", 1, &changed), ZTB_OK);
    renew(&a, a.key, &r);
    za_expect_error(&r, 403, "access_denied");
    zh_resp_free(&r);
    assert_true(bf_audit_has("enroll.renewal_refused", "\"agent\":\"delta\""));
    assert_int_equal(store_agent_flag("delta", "quarantined", 0, &changed), ZTB_OK);
    ztb_key_free(other);
    za_free(&a);
}

static void test_session(void **state)
{
    (void)state;
    struct za_agent a;
    za_enroll(&bf_broker, &a, "epsilon");
    struct zh_resp r;
    char url[256];
    snprintf(url, sizeof(url), "%s/v1/session", bf_broker.url);
    /* form only */
    assert_int_equal(zh_http("POST", url, NULL, "application/json", "{}", 2, NULL, &r), 0);
    za_expect_error(&r, 415, "invalid_request");
    zh_resp_free(&r);
    /* unknown fields are refused */
    za_post_form(&bf_broker, "/v1/session", "client_assertion_type=x&grant_type=y", &r);
    za_expect_error(&r, 400, "invalid_request");
    zh_resp_free(&r);
    /* nothing: 401 */
    za_post_form(&bf_broker, "/v1/session", "", &r);
    za_expect_error(&r, 401, "invalid_client");
    zh_resp_free(&r);

    ztb_buf as;
    ztb_buf_init(&as, 4096);
    char form[4096];
    za_assertion(&bf_broker, &a, NULL, &as);
    snprintf(form, sizeof(form), "client_assertion_type=%s&client_assertion=%s", ZA_ASSERTION_TYPE,
             ztb_buf_cstr(&as));
    assert_int_equal(za_post_form(&bf_broker, "/v1/session", form, &r), 200);
    json_t *j = za_json(&r);
    assert_string_equal(json_string_value(json_object_get(j, "token_type")), "ztb-session");
    assert_int_equal(json_integer_value(json_object_get(j, "expires_in")),
                     g_broker.cfg.session_ttl_s);
    json_decref(j);
    zh_resp_free(&r);
    /* the same assertion again is a replay */
    za_post_form(&bf_broker, "/v1/session", form, &r);
    za_expect_error(&r, 401, "invalid_client");
    zh_resp_free(&r);

    /* a quarantined agent gets no session */
    int changed;
    assert_int_equal(store_agent_flag("epsilon", "quarantined", 1, &changed), ZTB_OK);
    za_assertion(&bf_broker, &a, NULL, &as);
    snprintf(form, sizeof(form), "client_assertion_type=%s&client_assertion=%s", ZA_ASSERTION_TYPE,
             ztb_buf_cstr(&as));
    za_post_form(&bf_broker, "/v1/session", form, &r);
    za_expect_error(&r, 403, "access_denied");
    zh_resp_free(&r);
    /* the refusal is a decision: it leaves a record */
    assert_true(bf_audit_has("auth.session_refused", "\"reason\":\"quarantined\""));
    ztb_buf_free(&as);
    za_free(&a);
}

/* Last: Redis gone means 503 with Retry-After, never an identity. */
static void test_redis_down(void **state)
{
    (void)state;
    ztb_key *key;
    assert_int_equal(ztb_key_generate(&key), ZTB_OK);
    char *join = za_join_token(&bf_broker, "zeta");
    zh_redis_kill(&bf_redis);
    char *body = enroll_body(join, key, "zeta");
    struct zh_resp r;
    post_json("/v1/enroll", body, &r);
    za_expect_error(&r, 503, "temporarily_unavailable");
    char v[32];
    assert_non_null(zh_resp_header(&r, "Retry-After", v, sizeof(v)));
    zh_resp_free(&r);
    free(body);
    free(join);
    ztb_key_free(key);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_enroll_issues_identity),
        cmocka_unit_test(test_enroll_body_shape),
        cmocka_unit_test(test_join_token_once_and_not_burned),
        cmocka_unit_test(test_disabled_agent),
        cmocka_unit_test(test_renew),
        cmocka_unit_test(test_session),
        cmocka_unit_test(test_redis_down),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
