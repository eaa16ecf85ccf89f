/*
 * test_broker_signals.c - broker/signals/signals.c's evaluation of a signal (the
 * path external signals and the detectors share), against a real Redis and
 * a loaded policy: responses applied, counted for dual verification, filed
 * for an operator, skipped; duplicates; records; Redis trouble.
 * (tests/unit/test_signals.c is policy/signals.c's.)
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "broker/signals/signals.h"
#include "broker/store/store.h"
#include "broker/store/store_actions.h"
#include "broker/store/store_rev.h"
#include "broker/store/store_signals.h"
#include "broker_fixture.h"

static const char *policy_doc =
    "{\"version\": 1, \"trust_domain\": \"ztb.local\",\n"
    " \"settings\": {\"max_ttl\": 300, \"default_ttl\": 60,\n"
    "   \"rate_limits\": {\"per_agent\": {\"rate\": 10, \"burst\": 10, \"period\": 60},\n"
    "                   \"per_action\": {\"rate\": 10, \"burst\": 10, \"period\": 60}}},\n"
    " \"rules\": [],\n"
    " \"anomaly_responses\": [\n"
    "  {\"id\": \"r-token\", \"signals\": [\"token_replay\"], \"min_severity\": \"medium\",\n"
    "   \"response\": \"revoke_token\"},\n"
    "  {\"id\": \"r-dual\", \"signals\": [\"token_replay\"], \"min_severity\": \"high\",\n"
    "   \"min_confidence\": 0.8, \"response\": \"quarantine\", \"independent_signals\": 2,\n"
    "   \"window\": 60},\n"
    "  {\"id\": \"r-op\", \"signals\": [\"credential_compromise\"], \"min_severity\": "
    "\"critical\",\n"
    "   \"response\": \"revoke_all\", \"operator_confirmation\": true},\n"
    "  {\"id\": \"r-aud\", \"signals\": [\"soc:abuse\"], \"min_severity\": \"low\",\n"
    "   \"response\": \"kill_audience\"}\n"
    " ]}\n";

static int setup(void **state)
{
    (void)state;
    bf_setup(policy_doc);
    assert_int_equal(store_agent_add("bot", 1), ZTB_OK);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    bf_teardown();
    return 0;
}

static void make(struct signal *s, const char *source, const char *type, policy_severity sev,
                 double conf)
{
    memset(s, 0, sizeof(*s));
    snprintf(s->source, sizeof(s->source), "%s", source);
    snprintf(s->type, sizeof(s->type), "%s", type);
    s->severity = sev;
    s->confidence = conf;
}

static json_t *entry(json_t *res, const char *id)
{
    size_t i;
    json_t *o;
    json_array_foreach(json_object_get(res, "responses"), i, o)
    {
        if (strcmp(json_string_value(json_object_get(o, "id")), id) == 0)
            return o;
    }
    fail_msg("no response %s", id);
    return NULL;
}

static const char *status(json_t *res, const char *id)
{
    return json_string_value(json_object_get(entry(res, id), "status"));
}

static void test_applied_and_counted(void **state)
{
    (void)state;
    struct signal s;
    make(&s, "soc", "token_replay", POLICY_SEVERITY_HIGH, 0.9);
    snprintf(s.agent, sizeof(s.agent), "bot");
    snprintf(s.jti, sizeof(s.jti), "tok-1");
    s.jti_exp = time(NULL) + 60;
    snprintf(s.source_jti, sizeof(s.source_jti), "soc-1");
    json_t *res = NULL;
    assert_int_equal(signals_process(&g_broker, &s, &res), ZTB_OK);
    assert_int_equal(strncmp(s.id, "sig_", 4), 0);
    assert_string_equal(json_string_value(json_object_get(res, "signal")), s.id);
    assert_string_equal(status(res, "r-token"), "applied");
    assert_string_equal(status(res, "r-dual"), "pending_signals");
    assert_int_equal(json_integer_value(json_object_get(entry(res, "r-dual"), "have")), 1);
    json_decref(res);
    assert_int_equal(bf_redis_int("EXISTS ztb:{rev}:jti:%s", "tok-1"), 1);
    assert_true(bf_audit_has("signal.received", "\"source\":\"soc\""));
    assert_true(bf_audit_has("signal.response_pending", "\"entry\":\"r-dual\""));

    /* the same signal again: a duplicate, nothing counted */
    struct signal again = s;
    again.id[0] = '\0';
    assert_int_equal(signals_process(&g_broker, &again, &res), ZTB_OK);
    assert_true(json_is_true(json_object_get(res, "duplicate")));
    json_decref(res);

    /* another source: the quorum is met, once */
    make(&s, "siem", "token_replay", POLICY_SEVERITY_CRITICAL, 1.0);
    snprintf(s.agent, sizeof(s.agent), "bot");
    assert_int_equal(signals_process(&g_broker, &s, &res), ZTB_OK);
    assert_string_equal(status(res, "r-dual"), "applied");
    assert_string_equal(status(res, "r-token"), "skipped"); /* this one names no jti */
    json_decref(res);
    struct store_agent a;
    assert_int_equal(store_agent_get("bot", &a), ZTB_OK);
    assert_true(a.quarantined);
    /* applied again: unchanged */
    make(&s, "soc", "token_replay", POLICY_SEVERITY_HIGH, 0.9);
    snprintf(s.agent, sizeof(s.agent), "bot");
    assert_int_equal(signals_process(&g_broker, &s, &res), ZTB_OK);
    assert_string_equal(status(res, "r-dual"), "pending_signals");
    json_decref(res);
}

static void test_operator_action(void **state)
{
    (void)state;
    struct signal s;
    make(&s, "soc", "credential_compromise", POLICY_SEVERITY_CRITICAL, 1.0);
    snprintf(s.agent, sizeof(s.agent), "bot");
    json_t *res = NULL;
    assert_int_equal(signals_process(&g_broker, &s, &res), ZTB_OK);
    assert_string_equal(status(res, "r-op"), "pending_operator");
    char id[40];
    snprintf(id, sizeof(id), "%s",
             json_string_value(json_object_get(entry(res, "r-op"), "action")));
    json_decref(res);
    struct store_agent a;
    assert_int_equal(store_agent_get("bot", &a), ZTB_OK);
    int64_t gen = a.generation;
    struct store_action act;
    assert_int_equal(store_action_decide(id, 1, "operator:uid=0", time(NULL), &act), ZTB_OK);
    assert_int_equal(signals_apply_action(&act, "operator:uid=0", &res), ZTB_OK);
    assert_true(json_is_true(json_object_get(res, "changed")));
    json_decref(res);
    assert_int_equal(store_agent_get("bot", &a), ZTB_OK);
    assert_int_equal(a.generation, gen + 1);
    assert_true(bf_audit_has("revocation.applied", "\"cause\":\"action\""));
    json_t *list = NULL;
    assert_int_equal(store_action_list(10, &list), ZTB_OK);
    assert_string_equal(json_string_value(json_object_get(json_array_get(list, 0), "status")),
                        "applied");
    json_decref(list);
}

static void test_no_agent_and_no_policy(void **state)
{
    (void)state;
    struct signal s;
    make(&s, "soc", "soc:abuse", POLICY_SEVERITY_LOW, 0.1);
    snprintf(s.audience, sizeof(s.audience), "crm");
    json_t *res = NULL;
    assert_int_equal(signals_process(&g_broker, &s, &res), ZTB_OK);
    assert_string_equal(status(res, "r-aud"), "applied");
    json_decref(res);
    /* an agent the broker does not know: responses are skipped, not failed */
    make(&s, "soc", "token_replay", POLICY_SEVERITY_CRITICAL, 1.0);
    snprintf(s.agent, sizeof(s.agent), "ghost");
    for (int i = 0; i < 2; i++) {
        snprintf(s.source, sizeof(s.source), "%s", i ? "siem" : "soc");
        s.id[0] = '\0';
        assert_int_equal(signals_process(&g_broker, &s, &res), ZTB_OK);
        if (i == 1)
            assert_string_equal(status(res, "r-dual"), "skipped");
        json_decref(res);
    }
    /* nothing in the policy for this type: recorded, no responses */
    make(&s, "soc", "prompt_injection", POLICY_SEVERITY_CRITICAL, 1.0);
    snprintf(s.agent, sizeof(s.agent), "bot");
    assert_int_equal(signals_process(&g_broker, &s, &res), ZTB_OK);
    assert_int_equal(json_array_size(json_object_get(res, "responses")), 0);
    json_decref(res);
    json_t *list = NULL;
    assert_int_equal(store_signal_list(1, &list), ZTB_OK);
    assert_string_equal(json_string_value(json_object_get(json_array_get(list, 0), "type")),
                        "prompt_injection");
    json_decref(list);
    /* malformed input never reaches Redis */
    make(&s, "soc", "Bad Type", POLICY_SEVERITY_LOW, 0.5);
    assert_int_equal(signals_process(&g_broker, &s, &res), ZTB_ERR_INVALID_ARG);
    assert_int_equal(signals_process(&g_broker, NULL, &res), ZTB_ERR_INVALID_ARG);
}

static void test_unavailable(void **state)
{
    (void)state;
    zh_redis_stop(&bf_redis, 0);
    struct signal s;
    make(&s, "soc", "token_replay", POLICY_SEVERITY_HIGH, 0.9);
    snprintf(s.agent, sizeof(s.agent), "bot");
    snprintf(s.source_jti, sizeof(s.source_jti), "soc-retry");
    json_t *res = NULL;
    assert_int_equal(signals_process(&g_broker, &s, &res), ZTB_ERR_UNAVAILABLE);
    assert_null(res);
    zh_redis_restart(&bf_redis);
    /* the source retries the same signal: it is not a duplicate */
    for (int i = 0; i < 100; i++) {
        s.id[0] = '\0';
        if (signals_process(&g_broker, &s, &res) == ZTB_OK)
            break;
        usleep(20000);
    }
    assert_non_null(res);
    assert_false(json_is_true(json_object_get(res, "duplicate")));
    json_decref(res);
}

/*
 * Redis refuses writes after the signal was received (here: out of memory
 * under noeviction): the response cannot be applied, and the record says the
 * signal failed, after the one that says it was received.
 */
static void test_failed_is_recorded(void **state)
{
    (void)state;
    redisContext *c = zh_redis_connect(&bf_redis);
    redisReply *r = redisCommand(c, "CONFIG SET maxmemory 1");
    assert_true(r != NULL && r->type == REDIS_REPLY_STATUS);
    freeReplyObject(r);
    struct signal s;
    make(&s, "soc", "token_replay", POLICY_SEVERITY_HIGH, 0.9);
    snprintf(s.agent, sizeof(s.agent), "bot");
    snprintf(s.jti, sizeof(s.jti), "tok-oom");
    s.jti_exp = time(NULL) + 60;
    json_t *res = NULL;
    ztb_err rv = signals_process(&g_broker, &s, &res);
    r = redisCommand(c, "CONFIG SET maxmemory 0");
    assert_true(r != NULL && r->type == REDIS_REPLY_STATUS);
    freeReplyObject(r);
    redisFree(c);
    assert_int_not_equal(rv, ZTB_OK);
    assert_null(res);
    char needle[96];
    snprintf(needle, sizeof(needle), "\"signal\":\"%s\"", s.id);
    assert_true(bf_audit_has("signal.received", needle));
    assert_true(bf_audit_has("signal.failed", needle));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_applied_and_counted),    cmocka_unit_test(test_operator_action),
        cmocka_unit_test(test_no_agent_and_no_policy), cmocka_unit_test(test_unavailable),
        cmocka_unit_test(test_failed_is_recorded),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
