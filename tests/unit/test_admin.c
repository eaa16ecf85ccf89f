/*
 * test_admin.c - the admin API's agent, key and policy handlers (admin.c),
 * served on a unix socket by a real http_server in this process
 * (broker_fixture.h bf_serve) against a real Redis and key store: unknown
 * fields and bad values refused, names checked, join tokens shown once and
 * never audited, the caller's uid in every audit line, rotation refused
 * until the next key was published long enough, policy reload keeping the
 * old policy on a bad file, 503 when Redis is gone. (The configuration is
 * fixed before the server starts, as in the daemon: handler threads read
 * it.)
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
#include "broker_fixture.h"

static const char *policy_doc =
    "{\"version\": 1, \"trust_domain\": \"ztb.local\",\n"
    " \"settings\": {\"max_ttl\": 300, \"default_ttl\": 60,\n"
    "   \"rate_limits\": {\"per_agent\": {\"rate\": 10, \"burst\": 10, \"period\": 60},\n"
    "                   \"per_action\": {\"rate\": 10, \"burst\": 10, \"period\": 60}}},\n"
    " \"rules\": [{\"id\": \"r\", \"effect\": \"allow\", \"agents\": [\"a\"],\n"
    "   \"actions\": [\"x:y\"], \"audiences\": [\"aud\"], \"resources\": [\"**\"]}]}\n";

static int setup(void **state)
{
    (void)state;
    bf_setup(NULL);
    bf_serve(0);
    /* set before any request: handler threads read the configuration */
    int n = snprintf(g_broker.cfg.policy_file, sizeof(g_broker.cfg.policy_file), "%s/policy.json",
                     bf_dir);
    assert_true(n > 0 && (size_t)n < sizeof(g_broker.cfg.policy_file));
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    bf_unserve();
    bf_teardown();
    return 0;
}

static void test_agent_add(void **state)
{
    (void)state;
    json_t *j = bf_admin("POST", "/v1/agents", "{\"name\":\"billing-bot\",\"ttl\":120}", 201);
    assert_string_equal(json_string_value(json_object_get(j, "name")), "billing-bot");
    assert_string_equal(json_string_value(json_object_get(j, "spiffe_id")),
                        "spiffe://ztb.local/agent/billing-bot");
    assert_string_equal(json_string_value(json_object_get(j, "status")), "active");
    assert_int_equal(json_integer_value(json_object_get(j, "join_token_expires_in")), 120);
    const char *tok = json_string_value(json_object_get(j, "join_token"));
    assert_non_null(tok);
    assert_int_equal(strlen(tok), STORE_JOIN_TOKEN_LEN);
    /* audited with the caller's uid, and the join token nowhere in the log */
    char uid[64];
    snprintf(uid, sizeof(uid), "operator:%s", getpwuid(getuid())->pw_name);
    assert_true(bf_audit_has("admin.agent_added", uid));
    assert_true(bf_audit_has("admin.join_token_created", "\"ttl\":120"));
    char *log = bf_audit();
    assert_null(strstr(log, tok));
    free(log);
    json_decref(j);

    bf_admin_refused("POST", "/v1/agents", "{\"name\":\"billing-bot\"}", 409, "conflict");
    bf_admin_refused("POST", "/v1/agents", "{\"name\":\"x\",\"policy\":\"p\"}", 400,
                     "invalid_request");
    const char *bad[] = {"{}",
                         "{\"name\":1}",
                         "{\"name\":\"Bad Name\"}",
                         "{\"name\":\"-x\"}",
                         "{\"name\":\"a{b}\"}",
                         "{\"name\":\"\"}"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        bf_admin_refused("POST", "/v1/agents", bad[i], 400, "invalid_request");
    const char *ttls[] = {"0", "-5", "604801", "\"60\"", "1.5", "null"};
    for (size_t i = 0; i < sizeof(ttls) / sizeof(ttls[0]); i++) {
        char body[96];
        snprintf(body, sizeof(body), "{\"name\":\"t%zu\",\"ttl\":%s}", i, ttls[i]);
        bf_admin_refused("POST", "/v1/agents", body, 400, "invalid_request");
        struct store_agent a;
        snprintf(body, sizeof(body), "t%zu", i);
        assert_int_equal(store_agent_get(body, &a), ZTB_ERR_NOT_FOUND); /* nothing added */
    }
    bf_admin_refused("POST", "/v1/agents", "not json", 400, "invalid_request");
}

static void test_agent_list_and_get(void **state)
{
    (void)state;
    json_decref(bf_admin("POST", "/v1/agents", "{\"name\":\"crm-sync\"}", 201));
    json_t *j = bf_admin("GET", "/v1/agents", NULL, 200);
    json_t *arr = json_object_get(j, "agents");
    assert_true(json_array_size(arr) >= 2);
    int seen = 0;
    for (size_t i = 0; i < json_array_size(arr); i++)
        seen += strcmp(json_string_value(json_object_get(json_array_get(arr, i), "name")),
                       "crm-sync") == 0;
    assert_int_equal(seen, 1);
    char *text = json_dumps(j, 0);
    assert_null(strstr(text, "join_token")); /* shown once only */
    free(text);
    json_decref(j);

    j = bf_admin("GET", "/v1/agents/crm-sync", NULL, 200);
    assert_int_equal(json_integer_value(json_object_get(j, "generation")), 1);
    assert_false(json_is_true(json_object_get(j, "quarantined")));
    json_decref(j);
    bf_admin_refused("GET", "/v1/agents/nobody", NULL, 404, "not_found");
    bf_admin_refused("GET", "/v1/agents/Not_Valid", NULL, 404, "not_found");
    bf_admin_refused("GET", "/v1/agents/", NULL, 404, "not_found");
    char longname[200] = "/v1/agents/";
    memset(longname + strlen(longname), 'a', 100);
    bf_admin_refused("GET", longname, NULL, 404, "not_found");
}

static void test_agent_verbs(void **state)
{
    (void)state;
    json_decref(bf_admin("POST", "/v1/agents", "{\"name\":\"ops\"}", 201));
    json_t *j = bf_admin("POST", "/v1/agents/ops/disable", NULL, 200);
    assert_string_equal(json_string_value(json_object_get(j, "status")), "disabled");
    json_decref(j);
    assert_true(bf_audit_has("admin.agent_disabled", "\"agent\":\"ops\""));
    j = bf_admin("POST", "/v1/agents/ops/enable", NULL, 200);
    assert_string_equal(json_string_value(json_object_get(j, "status")), "active");
    json_decref(j);
    assert_true(bf_audit_has("admin.agent_enabled", "\"agent\":\"ops\""));
    bf_admin_refused("POST", "/v1/agents/ghost/disable", NULL, 404, "not_found");

    j = bf_admin("POST", "/v1/agents/ops/join-tokens", "{\"ttl\":30}", 201);
    assert_string_equal(json_string_value(json_object_get(j, "agent")), "ops");
    assert_int_equal(json_integer_value(json_object_get(j, "join_token_expires_in")), 30);
    json_decref(j);
    j = bf_admin("POST", "/v1/agents/ops/join-tokens", NULL, 201); /* default ttl */
    assert_int_equal(json_integer_value(json_object_get(j, "join_token_expires_in")),
                     g_broker.cfg.join_ttl_s);
    json_decref(j);
    bf_admin_refused("POST", "/v1/agents/ops/join-tokens", "{\"ttl\":0}", 400, "invalid_request");
    bf_admin_refused("POST", "/v1/agents/ops/join-tokens", "{\"agent\":\"x\"}", 400,
                     "invalid_request");
    bf_admin_refused("POST", "/v1/agents/ghost/join-tokens", NULL, 404, "not_found");

    bf_admin_refused("GET", "/v1/agents/ops/disable", NULL, 405, "invalid_request");
    bf_admin_refused("PUT", "/v1/agents/ops", NULL, 405, "invalid_request");
    /* DELETE of an unknown agent is 404; of a known one, it is gone */
    bf_admin_refused("DELETE", "/v1/agents/nobody-here", NULL, 404, "not_found");
    bf_admin_refused("POST", "/v1/agents/ops/promote", NULL, 404, "not_found");
}

static void test_keys(void **state)
{
    (void)state;
    json_t *j = bf_admin("GET", "/v1/keys", NULL, 200);
    size_t before = json_array_size(json_object_get(j, "keys"));
    assert_true(before >= 1);
    json_decref(j);

    bf_admin_refused("POST", "/v1/keys/rotate", "{\"force\":\"yes\"}", 400, "invalid_request");
    bf_admin_refused("POST", "/v1/keys/rotate", "{\"now\":true}", 400, "invalid_request");
    bf_admin_refused("POST", "/v1/keys/rotate", "[1]", 400, "invalid_request");

    /* publish a next key; promoting it at once is refused (the JWKS caches
     * have not seen it) and the refusal audited; --force promotes it */
    j = bf_admin("POST", "/v1/keys/rotate", NULL, 200);
    assert_string_equal(json_string_value(json_object_get(j, "action")), "published");
    char kid[128];
    snprintf(kid, sizeof(kid), "%s", json_string_value(json_object_get(j, "kid")));
    json_decref(j);
    bf_admin_refused("POST", "/v1/keys/rotate", "{\"force\":false}", 409, "conflict");
    assert_true(bf_audit_has("admin.keys_rotate_refused", "\"force\":false"));
    j = bf_admin("POST", "/v1/keys/rotate", "{\"force\":true}", 200);
    assert_string_equal(json_string_value(json_object_get(j, "action")), "promoted");
    assert_string_equal(json_string_value(json_object_get(j, "kid")), kid);
    json_decref(j);
    assert_true(bf_audit_has("admin.keys_rotated", kid));
    j = bf_admin("GET", "/v1/keys", NULL, 200);
    assert_int_equal(json_array_size(json_object_get(j, "keys")), before + 1);
    json_decref(j);
}

static void test_policy_reload(void **state)
{
    (void)state;
    /* a policy file with a problem: refused, the old policy stays */
    const char *path = g_broker.cfg.policy_file;
    FILE *f = fopen(path, "w");
    fputs("{\"version\": 1, \"rules\": [{\"id\": \"r\", \"effect\": \"maybe\"}]}", f);
    fclose(f);
    json_t *j = bf_admin("POST", "/v1/policy/reload", NULL, 400);
    assert_string_equal(json_string_value(json_object_get(j, "error")), "invalid_policy");
    assert_true(json_array_size(json_object_get(j, "problems")) >= 1);
    json_decref(j);
    assert_true(bf_audit_has("policy.reload_refused", NULL));

    f = fopen(path, "w");
    fputs(policy_doc, f);
    fclose(f);
    j = bf_admin("POST", "/v1/policy/reload", NULL, 200);
    assert_string_equal(json_string_value(json_object_get(j, "status")), "loaded");
    assert_int_equal(strlen(json_string_value(json_object_get(j, "digest"))), 64);
    json_decref(j);
    assert_true(bf_audit_has("policy.loaded", NULL));
}

/* Last: Redis gone is 503 with Retry-After. */
static void test_redis_down(void **state)
{
    (void)state;
    zh_redis_kill(&bf_redis);
    struct zh_resp r;
    assert_int_equal(zh_admin(&bf_broker, "GET", "/v1/agents", NULL, &r), 0);
    za_expect_error(&r, 503, "temporarily_unavailable");
    char v[16];
    assert_string_equal(zh_resp_header(&r, "Retry-After", v, sizeof(v)), "1");
    zh_resp_free(&r);
    bf_admin_refused("POST", "/v1/agents", "{\"name\":\"late\"}", 503, "temporarily_unavailable");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_agent_add),     cmocka_unit_test(test_agent_list_and_get),
        cmocka_unit_test(test_agent_verbs),   cmocka_unit_test(test_keys),
        cmocka_unit_test(test_policy_reload), cmocka_unit_test(test_redis_down),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
