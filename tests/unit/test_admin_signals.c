/*
 * test_admin_signals.c - the admin API for revocations, quarantine, signals,
 * signal sources and operator actions (admin_signals.c), served on a unix
 * socket by a real http_server in this process (broker_fixture.h bf_serve)
 * against a real Redis and key store: every body checked field by field,
 * a revocation by whole token only for tokens of this broker, a source
 * secret shown once and never audited, an operator action decided once,
 * 503 when Redis is gone.
 */
#include <pwd.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "agent.h"
#include "broker/store/store.h"
#include "broker/store/store_sources.h"
#include "broker/store/store_actions.h"
#include "broker/store/store_rev.h"
#include "broker_fixture.h"

static int setup(void **state)
{
    (void)state;
    bf_setup(NULL);
    bf_serve(0);
    assert_int_equal(store_agent_add("bot", 1), ZTB_OK);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    bf_unserve();
    bf_teardown();
    return 0;
}

static void test_revoke_by_id(void **state)
{
    (void)state;
    json_t *j = bf_admin("POST", "/v1/revocations",
                         "{\"type\":\"jti\",\"id\":\"jti-one\",\"reason\":\"leaked\"}", 200);
    assert_string_equal(json_string_value(json_object_get(j, "response")), "revoke_token");
    assert_true(json_is_true(json_object_get(j, "changed")));
    json_decref(j);
    char uid[64];
    snprintf(uid, sizeof(uid), "operator:%s", getpwuid(getuid())->pw_name);
    assert_true(bf_audit_has("revocation.applied", uid));

    j = bf_admin("POST", "/v1/revocations", "{\"type\":\"agent\",\"id\":\"bot\"}", 200);
    assert_int_equal(json_integer_value(json_object_get(j, "gen")), 2);
    json_decref(j);
    bf_admin_refused("POST", "/v1/revocations", "{\"type\":\"agent\",\"id\":\"ghost\"}", 404,
                     "not_found");

    j = bf_admin("POST", "/v1/revocations", "{\"type\":\"audience\",\"id\":\"crm\"}", 200);
    assert_true(json_is_true(json_object_get(j, "changed")));
    json_decref(j);
    j = bf_admin("POST", "/v1/revocations", "{\"type\":\"audience\",\"id\":\"crm\",\"lift\":true}",
                 200);
    assert_true(json_is_true(json_object_get(j, "lift")));
    json_decref(j);

    j = bf_admin("GET", "/v1/revocations", NULL, 200);
    json_t *arr = json_object_get(j, "revocations");
    assert_true(json_array_size(arr) >= 2);
    json_decref(j);
    j = bf_admin("GET", "/v1/revocations?limit=1", NULL, 200);
    assert_int_equal(json_array_size(json_object_get(j, "revocations")), 1);
    json_decref(j);
}

static void test_revoke_refusals(void **state)
{
    (void)state;
    const char *bad[] = {
        "{}",
        "{\"id\":\"x\"}",
        "{\"type\":\"jti\"}",
        "{\"type\":\"bogus\",\"id\":\"x\"}",
        "{\"type\":\"jti\",\"id\":\"x\",\"extra\":1}",
        "{\"type\":\"jti\",\"id\":\"x\",\"exp\":\"soon\"}",
        "{\"type\":\"jti\",\"id\":\"x\",\"lift\":1}",
        "{\"type\":\"agent\",\"id\":\"bot\",\"lift\":true}",
        "{\"type\":\"jti\",\"id\":\"has space\"}",
        "{\"type\":\"jti\",\"id\":\"\"}",
        "{\"type\":1,\"id\":\"x\"}",
        "{\"type\":\"jti\",\"id\":\"x\",\"reason\":7}",
        "{\"type\":\"agent\",\"token\":\"a.b.c\"}",
        "{\"type\":\"jti\",\"id\":\"x\",\"token\":\"a.b.c\"}",
        "{\"type\":\"jti\",\"token\":\"garbage\"}",
        "[]",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        bf_admin_refused("POST", "/v1/revocations", bad[i], 400, "invalid_request");
    bf_admin_refused("PUT", "/v1/revocations", "{}", 405, "invalid_request");

    /* a token signed by a key this broker does not have */
    ztb_key *k;
    assert_int_equal(ztb_key_generate(&k), ZTB_OK);
    const char *claims = "{\"iss\":\"" BF_ISSUER "\",\"jti\":\"forged\",\"exp\":9999999999}";
    ztb_buf b;
    ztb_buf_init(&b, 4096);
    ztb_jws_sign_opts so = {.typ = "at+jwt"};
    assert_int_equal(ztb_jws_sign(k, &so, claims, strlen(claims), &b), ZTB_OK);
    char body[4096];
    snprintf(body, sizeof(body), "{\"type\":\"jti\",\"token\":\"%s\"}", ztb_buf_cstr(&b));
    json_t *j = bf_admin("POST", "/v1/revocations", body, 400);
    assert_non_null(strstr(json_string_value(json_object_get(j, "error_description")),
                           "not a token of this broker"));
    json_decref(j);
    ztb_buf_free(&b);
    ztb_key_free(k);
}

static void test_revoke_by_token(void **state)
{
    (void)state;
    char tok[4096], jti[24], body[4200];
    int64_t now = time(NULL);
    bf_mint("bot", "payments", now, now + 60, 2, 0, "at+jwt", jti, tok, sizeof(tok));
    snprintf(body, sizeof(body), "{\"type\":\"jti\",\"token\":\"%s\"}", tok);
    json_t *j = bf_admin("POST", "/v1/revocations", body, 200);
    assert_string_equal(json_string_value(json_object_get(j, "id")), jti);
    assert_int_equal(json_integer_value(json_object_get(j, "exp")), now + 60);
    json_decref(j);
    assert_int_equal(bf_redis_int("EXISTS ztb:{rev}:jti:%s", jti), 1);
}

static void test_quarantine(void **state)
{
    (void)state;
    json_t *j = bf_admin("POST", "/v1/quarantine", "{\"agent\":\"bot\",\"reason\":\"odd\"}", 200);
    assert_true(json_is_true(json_object_get(j, "quarantined")));
    assert_true(json_is_true(json_object_get(j, "changed")));
    json_decref(j);
    j = bf_admin("POST", "/v1/quarantine", "{\"agent\":\"bot\"}", 200);
    assert_false(json_is_true(json_object_get(j, "changed"))); /* already */
    json_decref(j);
    int changed;
    assert_int_equal(store_agent_flag("bot", "approval", 1, &changed), ZTB_OK);
    j = bf_admin("POST", "/v1/release", "{\"agent\":\"bot\"}", 200);
    assert_false(json_is_true(json_object_get(j, "quarantined")));
    assert_false(json_is_true(json_object_get(j, "approval_required"))); /* lifted too */
    json_decref(j);

    bf_admin_refused("POST", "/v1/quarantine", "{\"agent\":\"ghost\"}", 404, "not_found");
    const char *bad[] = {"{}", "{\"agent\":\"Bad\"}", "{\"agent\":1}",
                         "{\"agent\":\"bot\",\"for\":\"ever\"}",
                         "{\"agent\":\"bot\",\"reason\":[]}"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        bf_admin_refused("POST", "/v1/quarantine", bad[i], 400, "invalid_request");
}

static void test_sources(void **state)
{
    (void)state;
    json_t *j = bf_admin("POST", "/v1/signal-sources", "{\"name\":\"siem\"}", 201);
    assert_string_equal(json_string_value(json_object_get(j, "kind")), "secret");
    char secret[128];
    snprintf(secret, sizeof(secret), "%s", json_string_value(json_object_get(j, "secret")));
    assert_int_equal(strlen(secret), STORE_SOURCE_SECRET_LEN);
    json_decref(j);
    /* the secret is in that one answer only: not in the audit log, not listed */
    assert_true(bf_audit_has("admin.signal_source_added", "\"source\":\"siem\""));
    char *log = bf_audit();
    assert_null(strstr(log, secret));
    free(log);
    struct zh_resp r;
    assert_int_equal(zh_admin(&bf_broker, "GET", "/v1/signal-sources", NULL, &r), 0);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "\"siem\""));
    assert_null(strstr(r.body, secret));
    zh_resp_free(&r);

    j = bf_admin("POST", "/v1/signal-sources", "{\"name\":\"gw\",\"agent\":\"bot\"}", 201);
    assert_string_equal(json_string_value(json_object_get(j, "kind")), "agent");
    assert_null(json_object_get(j, "secret"));
    json_decref(j);

    bf_admin_refused("POST", "/v1/signal-sources", "{\"name\":\"siem\"}", 409, "conflict");
    bf_admin_refused("POST", "/v1/signal-sources", "{\"name\":\"ztb-broker\"}", 409, "conflict");
    bf_admin_refused("POST", "/v1/signal-sources", "{\"name\":\"x\",\"agent\":\"ghost\"}", 404,
                     "not_found");
    const char *bad[] = {
        "{}",
        "{\"name\":\"Bad Name\"}",
        "{\"name\":\"x\",\"secret\":\"mine\"}",
        "{\"name\":\"x\",\"agent\":\"bot\",\"jwk\":{}}",
        "{\"name\":\"x\",\"agent\":\"No\"}",
        "{\"name\":\"x\",\"jwk\":{\"kty\":\"oct\",\"k\":\"AAAA\"}}",
        "{\"name\":\"x\",\"jwk\":\"not a jwk\"}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        bf_admin_refused("POST", "/v1/signal-sources", bad[i], 400, "invalid_request");
    bf_admin_refused("DELETE", "/v1/signal-sources", NULL, 405, "invalid_request");

    j = bf_admin("DELETE", "/v1/signal-sources/siem", NULL, 200);
    assert_string_equal(json_string_value(json_object_get(j, "removed")), "siem");
    json_decref(j);
    assert_true(bf_audit_has("admin.signal_source_removed", "\"source\":\"siem\""));
    bf_admin_refused("DELETE", "/v1/signal-sources/siem", NULL, 404, "not_found");
    bf_admin_refused("GET", "/v1/signal-sources/gw", NULL, 405, "invalid_request");
}

static void test_signals_list(void **state)
{
    (void)state;
    json_t *j = bf_admin("GET", "/v1/signals?limit=5", NULL, 200);
    assert_true(json_is_array(json_object_get(j, "signals")));
    json_decref(j);
    j = bf_admin("GET", "/v1/signals?agent=nobody", NULL, 200);
    assert_int_equal(json_array_size(json_object_get(j, "signals")), 0);
    json_decref(j);
}

static void test_actions(void **state)
{
    (void)state;
    struct store_action a;
    memset(&a, 0, sizeof(a));
    snprintf(a.entry, sizeof(a.entry), "manual");
    snprintf(a.response, sizeof(a.response), "quarantine");
    snprintf(a.target_kind, sizeof(a.target_kind), "agent");
    snprintf(a.target, sizeof(a.target), "bot");
    snprintf(a.signals, sizeof(a.signals), "sig-1");
    int created;
    assert_int_equal(store_action_create(&a, time(NULL), &created), ZTB_OK);
    assert_int_equal(created, 1);

    json_t *j = bf_admin("GET", "/v1/signal-actions", NULL, 200);
    assert_true(json_array_size(json_object_get(j, "actions")) >= 1);
    json_decref(j);

    char path[128];
    snprintf(path, sizeof(path), "/v1/signal-actions/%s/confirm", a.id);
    bf_admin_refused("GET", path, NULL, 405, "invalid_request");
    bf_admin_refused("POST", "/v1/signal-actions/unknown-id/confirm", NULL, 404, "not_found");
    bf_admin_refused("POST", "/v1/signal-actions//confirm", NULL, 404, "not_found");
    snprintf(path, sizeof(path), "/v1/signal-actions/%s/approve", a.id);
    bf_admin_refused("POST", path, NULL, 404, "not_found");
    bf_admin_refused("POST", "/v1/signal-actions/no-verb", NULL, 404, "not_found");

    snprintf(path, sizeof(path), "/v1/signal-actions/%s/confirm", a.id);
    json_decref(bf_admin("POST", path, NULL, 200));
    assert_true(bf_audit_has("admin.signal_action_confirmed", a.id));
    struct store_agent st;
    assert_int_equal(store_agent_get("bot", &st), ZTB_OK);
    assert_true(st.quarantined); /* applied */
    /* decided once: confirming or rejecting again is a conflict */
    bf_admin_refused("POST", path, NULL, 409, "conflict");
    snprintf(path, sizeof(path), "/v1/signal-actions/%s/reject", a.id);
    bf_admin_refused("POST", path, NULL, 409, "conflict");
}

/* Last: Redis gone is 503 with Retry-After. */
static void test_redis_down(void **state)
{
    (void)state;
    zh_redis_kill(&bf_redis);
    bf_admin_refused("GET", "/v1/revocations", NULL, 503, "temporarily_unavailable");
    bf_admin_refused("GET", "/v1/signals", NULL, 503, "temporarily_unavailable");
    bf_admin_refused("GET", "/v1/signal-sources", NULL, 503, "temporarily_unavailable");
    bf_admin_refused("POST", "/v1/quarantine", "{\"agent\":\"bot\"}", 503,
                     "temporarily_unavailable");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_revoke_by_id),    cmocka_unit_test(test_revoke_refusals),
        cmocka_unit_test(test_revoke_by_token), cmocka_unit_test(test_quarantine),
        cmocka_unit_test(test_sources),         cmocka_unit_test(test_signals_list),
        cmocka_unit_test(test_actions),         cmocka_unit_test(test_redis_down),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
