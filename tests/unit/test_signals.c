/* test_signals.c - anomaly responses chosen by type, agent, severity and confidence. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "policy_fixtures.h"

static policy *P;

static int setup(void **state)
{
    (void)state;
    char path[4096];
    return policy_load_file(fx_src(path, sizeof(path), "examples/policy/fleet.json"), &P, NULL) ==
                   ZTB_OK
               ? 0
               : -1;
}

static int teardown(void **state)
{
    (void)state;
    policy_unref(P);
    return 0;
}

/* The ids that apply, comma-separated, strongest first. */
static void ids(const char *agent, const char *type, policy_severity sev, double conf, char *out,
                size_t cap)
{
    policy_signal_response r[16];
    size_t n = 0;
    assert_int_equal(policy_signal_responses(P, agent, type, sev, conf, r, 16, &n), ZTB_OK);
    out[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        strncat(out, r[i].id, cap - strlen(out) - 1);
        strncat(out, ",", cap - strlen(out) - 1);
    }
}

static void test_thresholds(void **state)
{
    (void)state;
    char got[256];
    ids("billing-bot", "token_replay", POLICY_SEVERITY_LOW, 1.0, got, sizeof(got));
    assert_string_equal(got, "");
    ids("billing-bot", "token_replay", POLICY_SEVERITY_MEDIUM, 0.5, got, sizeof(got));
    assert_string_equal(got, "replay-revoke-token,");
    ids("billing-bot", "token_replay", POLICY_SEVERITY_MEDIUM, 0.49, got, sizeof(got));
    assert_string_equal(got, "");
    ids("billing-bot", "token_replay", POLICY_SEVERITY_HIGH, 0.8, got, sizeof(got));
    assert_string_equal(got, "replay-quarantine,replay-revoke-token,"); /* strongest first */
    ids("billing-bot", "dpop_replay", POLICY_SEVERITY_CRITICAL, 1.0, got, sizeof(got));
    assert_string_equal(got, "replay-revoke-token,");
    ids("billing-bot", "credential_compromise", POLICY_SEVERITY_CRITICAL, 0.95, got, sizeof(got));
    assert_string_equal(got, "compromise-revoke-all,");
    ids("billing-bot", "credential_compromise", POLICY_SEVERITY_HIGH, 0.95, got, sizeof(got));
    assert_string_equal(got, "");
    ids("billing-bot", "unheard_of", POLICY_SEVERITY_CRITICAL, 1.0, got, sizeof(got));
    assert_string_equal(got, "");
}

static void test_agents_and_details(void **state)
{
    (void)state;
    char got[256];
    /* payments-injection names only the payments group */
    ids("refund-agent-9", "prompt_injection", POLICY_SEVERITY_HIGH, 0.9, got, sizeof(got));
    assert_string_equal(got, "payments-injection,");
    ids("support-bot-01", "prompt_injection", POLICY_SEVERITY_HIGH, 0.9, got, sizeof(got));
    assert_string_equal(got, "");
    ids(NULL, "prompt_injection", POLICY_SEVERITY_HIGH, 0.9, got, sizeof(got));
    assert_string_equal(got, "");
    /* a signal about no agent still finds the entries for every agent */
    ids(NULL, "soc:audience_compromise", POLICY_SEVERITY_CRITICAL, 0.99, got, sizeof(got));
    assert_string_equal(got, "soc-kill-audience,");
    policy_signal_response r[4];
    size_t n;
    assert_int_equal(policy_signal_responses(P, NULL, "soc:audience_compromise",
                                             POLICY_SEVERITY_CRITICAL, 0.99, r, 4, &n),
                     ZTB_OK);
    assert_int_equal(r[0].response, POLICY_RESPONSE_KILL_AUDIENCE);
    assert_int_equal(r[0].independent_signals, 2);
    assert_int_equal(r[0].window, 900);
    assert_int_equal(r[0].operator_confirmation, 1);
    assert_int_equal(policy_signal_responses(P, "billing-bot", "rate_limit_burst",
                                             POLICY_SEVERITY_MEDIUM, 0.6, r, 4, &n),
                     ZTB_OK);
    assert_int_equal(n, 1);
    assert_int_equal(r[0].response, POLICY_RESPONSE_QUARANTINE);
    assert_int_equal(r[0].operator_confirmation, 0);
}

static void test_capacity_and_arguments(void **state)
{
    (void)state;
    policy_signal_response r[2];
    size_t n = 99;
    assert_int_equal(policy_signal_responses(P, "billing-bot", "token_replay",
                                             POLICY_SEVERITY_CRITICAL, 1.0, r, 1, &n),
                     ZTB_ERR_TOO_LARGE);
    assert_int_equal(n, 2);
    assert_string_equal(r[0].id, "replay-quarantine"); /* the strongest is kept */
    assert_int_equal(policy_signal_responses(P, "billing-bot", "token_replay",
                                             POLICY_SEVERITY_CRITICAL, 1.0, NULL, 0, &n),
                     ZTB_ERR_TOO_LARGE);
    assert_int_equal(n, 2);
    assert_int_equal(policy_signal_responses(P, "billing-bot", "Token Replay", POLICY_SEVERITY_HIGH,
                                             1.0, r, 2, &n),
                     ZTB_ERR_INVALID_ARG);
    assert_int_equal(policy_signal_responses(P, "billing bot", "token_replay", POLICY_SEVERITY_HIGH,
                                             1.0, r, 2, &n),
                     ZTB_ERR_INVALID_ARG);
    assert_int_equal(
        policy_signal_responses(P, "x", "token_replay", (policy_severity)9, 1.0, r, 2, &n),
        ZTB_ERR_INVALID_ARG);
    assert_int_equal(
        policy_signal_responses(P, "x", "token_replay", POLICY_SEVERITY_HIGH, 1.5, r, 2, &n),
        ZTB_ERR_INVALID_ARG);
    assert_int_equal(
        policy_signal_responses(P, "x", "token_replay", POLICY_SEVERITY_HIGH, NAN, r, 2, &n),
        ZTB_ERR_INVALID_ARG);
    assert_int_equal(policy_signal_responses(P, "x", "", POLICY_SEVERITY_HIGH, 1, r, 2, &n),
                     ZTB_ERR_INVALID_ARG);
}

/* Wildcard signals and an agent pattern. */
static void test_wildcards(void **state)
{
    (void)state;
    const char *doc =
        "{\"version\": 1, \"trust_domain\": \"example.org\", " FX_SETTINGS ", \"rules\": [],"
        "\"anomaly_responses\": ["
        "{\"id\": \"all\", \"signals\": [\"*\"], \"agents\": [\"bot-*\"], \"min_severity\": "
        "\"low\", \"response\": \"revoke_token\"},"
        "{\"id\": \"key\", \"signals\": [\"soc:key_leak\"], \"min_severity\": \"critical\", "
        "\"min_confidence\": 1, \"response\": \"taint_key\", \"operator_confirmation\": true}]}";
    policy *p = fx_load(doc);
    assert_non_null(p);
    policy_signal_response r[4];
    size_t n;
    assert_int_equal(
        policy_signal_responses(p, "bot-1", "anything", POLICY_SEVERITY_LOW, 0, r, 4, &n), ZTB_OK);
    assert_int_equal(n, 1);
    assert_int_equal(
        policy_signal_responses(p, "other", "anything", POLICY_SEVERITY_LOW, 0, r, 4, &n), ZTB_OK);
    assert_int_equal(n, 0);
    assert_int_equal(policy_signal_responses(p, "bot-1", "soc:key_leak", POLICY_SEVERITY_CRITICAL,
                                             1.0, r, 4, &n),
                     ZTB_OK);
    assert_int_equal(n, 2);
    assert_int_equal(r[0].response, POLICY_RESPONSE_TAINT_KEY);
    assert_int_equal(r[1].response, POLICY_RESPONSE_REVOKE_TOKEN);
    policy_unref(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_thresholds),
        cmocka_unit_test(test_agents_and_details),
        cmocka_unit_test(test_capacity_and_arguments),
        cmocka_unit_test(test_wildcards),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
