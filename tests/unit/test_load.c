/*
 * test_load.c - strict loading: every kind of mistake is refused with a
 * message that says where (line:column, or the rule / group / setting).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "policy_fixtures.h"

#define RULE_OK                                                                                    \
    "\"agents\": [\"billing-bot\"], \"actions\": [\"payments:refund\"], "                          \
    "\"audiences\": [\"https://payments.internal\"], \"resources\": [\"orders/*\"]"

/* Refuse doc with err and a message containing want (and, if given, want2). */
static void refuse(const char *doc, ztb_err err, const char *want, const char *want2)
{
    ztb_err got;
    char *m = fx_refuse(doc, err, &got);
    if (got != err || strstr(m, want) == NULL || (want2 && strstr(m, want2) == NULL))
        fail_msg("want %s with \"%s\"%s%s, got %s:\n%s\n-- document --\n%s", ztb_err_name(err),
                 want, want2 ? " and " : "", want2 ? want2 : "", ztb_err_name(got), m, doc);
    free(m);
}

/* A document with one rule whose body is body (inside the braces). */
static void refuse_rule(const char *body, const char *want, const char *want2)
{
    char rule[4096];
    snprintf(rule, sizeof(rule), "{%s}", body);
    char *doc = fx_doc("\"g\": {\"members\": [\"billing-bot\"]}", rule);
    refuse(doc, ZTB_ERR_POLICY, want, want2);
    free(doc);
}

static void test_minimal_documents_load(void **state)
{
    (void)state;
    char *doc = fx_doc("", "");
    policy *p = fx_load(doc); /* no rules: a policy that denies everything */
    assert_non_null(p);
    assert_int_equal(policy_rule_count(p), 0);
    assert_string_equal(policy_trust_domain(p), "example.org");
    assert_int_equal(strlen(policy_digest(p)), 64);
    policy_unref(p);
    free(doc);
    doc = fx_doc("", "{\"id\": \"r1\", \"effect\": \"allow\", " RULE_OK "}");
    p = fx_load(doc);
    assert_non_null(p);
    assert_int_equal(policy_rule_count(p), 1);
    policy_unref(p);
    free(doc);
}

static void test_syntax_errors_have_line_and_column(void **state)
{
    (void)state;
    refuse("{\"version\": 1,\n  \"rules\": [\n  }", ZTB_ERR_JSON, "3:3: ", NULL);
    refuse("{\"version\": 1, \"version\": 1}", ZTB_ERR_JSON, "1:", "duplicate");
    refuse("", ZTB_ERR_JSON, "1:", NULL);
    refuse("{\"a\": \"\xff\"}", ZTB_ERR_JSON, "1:", NULL);
    refuse("{\"a\": 1} trailing", ZTB_ERR_JSON, "1:", NULL);
    refuse("{\"a\": 99999999999999999999999}", ZTB_ERR_JSON, "1:", NULL);
    refuse("{\"a\": \"\\u0000\"}", ZTB_ERR_JSON, "1:", NULL);
}

static void test_document_level(void **state)
{
    (void)state;
    refuse("[]", ZTB_ERR_POLICY, "must be a JSON object", NULL);
    refuse("{\"trust_domain\": \"example.org\", \"rules\": []}", ZTB_ERR_POLICY,
           "document: version: missing", NULL);
    refuse("{\"version\": 2}", ZTB_ERR_POLICY, "version: must be 1", NULL);
    refuse("{\"version\": \"1\"}", ZTB_ERR_POLICY, "version: must be 1", NULL);
    refuse("{\"version\": 1, \"rulez\": []}", ZTB_ERR_POLICY,
           "unknown field \"rulez\" (did you mean \"rules\"?)", NULL);
    refuse("{\"version\": 1, \"zzzzzz\": []}", ZTB_ERR_POLICY, "unknown field \"zzzzzz\"", NULL);
    refuse("{\"version\": 1, \"trust_domain\": \"Example.org\"}", ZTB_ERR_POLICY,
           "trust domain is lowercase", NULL);
    refuse("{\"version\": 1}", ZTB_ERR_POLICY, "trust_domain: missing", "settings: missing");
    /* many problems, one run */
    refuse("{\"version\": 1}", ZTB_ERR_POLICY, "rules: missing", NULL);
    refuse("{\"version\": 1, \"trust_domain\": \"example.org\", \"description\": \"a\\u0001b\"}",
           ZTB_ERR_POLICY, "without control characters", NULL);
}

static void test_settings(void **state)
{
    (void)state;
    const char *head = "{\"version\": 1, \"trust_domain\": \"example.org\", \"rules\": [], ";
    char doc[1024];
    snprintf(doc, sizeof(doc), "%s\"settings\": {\"default_ttl\": 60}}", head);
    refuse(doc, ZTB_ERR_POLICY, "settings: max_ttl: missing", "rate_limits: missing");
    snprintf(doc, sizeof(doc),
             "%s\"settings\": {\"max_ttl\": 300, \"default_ttl\": 400, \"rate_limits\": {"
             "\"per_agent\": {\"rate\": 1, \"burst\": 1, \"period\": 1}, "
             "\"per_action\": {\"rate\": 1, \"burst\": 1, \"period\": 1}}}}",
             head);
    refuse(doc, ZTB_ERR_POLICY, "settings: default_ttl: 400 exceeds max_ttl 300", NULL);
    snprintf(doc, sizeof(doc),
             "%s\"settings\": {\"max_ttl\": 300, \"default_ttl\": 60, \"default_binding\": "
             "\"tls\", \"rate_limits\": {"
             "\"per_agent\": {\"rate\": 1, \"burst\": 0, \"period\": 1}, "
             "\"per_action\": {\"rate\": 1, \"burst\": 1}}}}",
             head);
    refuse(doc, ZTB_ERR_POLICY, "default_binding: must be \"none\", \"any\", \"dpop\" or \"mtls\"",
           "rate_limits.per_agent.burst: must be an integer from 1 to 1000000");
    refuse(doc, ZTB_ERR_POLICY, "rate_limits.per_action.period: missing", NULL);
    snprintf(doc, sizeof(doc), "%s\"settings\": {\"max_ttl\": 100000}}", head);
    refuse(doc, ZTB_ERR_POLICY, "max_ttl: must be an integer from 1 to 86400", NULL);
}

static void test_groups(void **state)
{
    (void)state;
    char *doc = fx_doc("\"a\": {\"members\": []}", "");
    refuse(doc, ZTB_ERR_POLICY, "group \"a\": members: must be a non-empty list", NULL);
    free(doc);
    doc = fx_doc("\"a\": {\"members\": [\"group:b\"]}, \"b\": {\"members\": [\"x\"]}", "");
    refuse(doc, ZTB_ERR_POLICY, "a group cannot contain a group", NULL);
    free(doc);
    doc = fx_doc("\"a\": {\"members\": [\"x\", \"spiffe://example.org/agent/x\"]}", "");
    refuse(doc, ZTB_ERR_POLICY, "group \"a\": members: \"x\" is listed twice", NULL);
    free(doc);
    doc = fx_doc("\"a b\": {\"members\": [\"x\"]}", "");
    refuse(doc, ZTB_ERR_POLICY, "group name \"a b\"", NULL);
    free(doc);
    doc = fx_doc("\"a\": {\"members\": [\"x\"], \"memebers\": 1}", "");
    refuse(doc, ZTB_ERR_POLICY, "unknown field \"memebers\" (did you mean \"members\"?)", NULL);
    free(doc);
    doc = fx_doc("\"a\": {\"members\": [\"bad name\"]}", "");
    refuse(doc, ZTB_ERR_POLICY, "\"bad name\": an agent name is 1 to 128", NULL);
    free(doc);
    doc = fx_doc("\"a\": {\"members\": [\"spiffe://other.org/agent/x\"]}", "");
    refuse(doc, ZTB_ERR_POLICY, "an agent's SPIFFE ID is spiffe://example.org/agent/NAME", NULL);
    free(doc);
    doc = fx_doc("\"a\": {\"members\": [\"x**\"]}", "");
    refuse(doc, ZTB_ERR_POLICY, "** is not allowed here", NULL);
    free(doc);
    doc = fx_doc("\"a\": [\"x\"]", "");
    refuse(doc, ZTB_ERR_POLICY, "group \"a\": must be an object", NULL);
    free(doc);
}

static void test_rule_fields(void **state)
{
    (void)state;
    refuse_rule("\"id\": \"r1\", \"effect\": \"allow\", " RULE_OK
                ", \"obligations\": {\"ttl\": 900}",
                "rule \"r1\": obligations.ttl: 900 exceeds settings.max_ttl 300", NULL);
    refuse_rule("\"id\": \"r1\", \"effect\": \"allow\", " RULE_OK ", \"obligation\": {}",
                "rule \"r1\": unknown field \"obligation\" (did you mean \"obligations\"?)", NULL);
    refuse_rule("\"id\": \"r1\", \"effect\": \"permit\", " RULE_OK,
                "rule \"r1\": effect: must be \"allow\" or \"deny\"", NULL);
    refuse_rule("\"effect\": \"allow\", " RULE_OK, "rules[0]: id: missing: a rule needs an id",
                NULL);
    refuse_rule("\"id\": \"bad id!\", \"effect\": \"allow\", " RULE_OK, "rules[0]: id: \"bad id!\"",
                NULL);
    refuse_rule("\"id\": \"r1\", \"effect\": \"deny\", " RULE_OK ", \"obligations\": {\"ttl\": 5}",
                "a deny rule has no obligations", NULL);
    refuse_rule("\"id\": \"r1\", \"effect\": \"allow\", \"agents\": [], \"actions\": [\"a:b\"], "
                "\"audiences\": [\"x\"], \"resources\": [\"*\"]",
                "rule \"r1\": agents: must be a non-empty list", NULL);
    refuse_rule("\"id\": \"r1\", \"effect\": \"allow\", \"actions\": [\"a:b\"], "
                "\"audiences\": [\"x\"], \"resources\": [\"*\"]",
                "rule \"r1\": agents: missing", NULL);
    refuse_rule("\"id\": \"r1\", \"effect\": \"allow\", \"agents\": [\"*\", \"x\"], "
                "\"actions\": [\"a:b\"], \"audiences\": [\"x\"], \"resources\": [\"*\"]",
                "\"*\" already names every agent", NULL);
    refuse_rule("\"id\": \"r1\", \"effect\": \"allow\", \"agents\": [\"group:nope\"], "
                "\"actions\": [\"a:b\"], \"audiences\": [\"x\"], \"resources\": [\"*\"]",
                "\"group:nope\": no such group", NULL);
    refuse_rule("\"id\": \"r1\", \"effect\": \"allow\", \"agents\": [\"x\"], "
                "\"actions\": [\"payments\"], \"audiences\": [\"x\"], \"resources\": [\"*\"]",
                "\"payments\": an action is service:verb", NULL);
    refuse_rule("\"id\": \"r1\", \"effect\": \"allow\", \"agents\": [\"x\"], "
                "\"actions\": [\"a:b:c\"], \"audiences\": [\"x\"], \"resources\": [\"*\"]",
                "an action is service:verb", NULL);
    refuse_rule("\"id\": \"r1\", \"effect\": \"allow\", \"agents\": [\"x\"], "
                "\"actions\": [\"pay**:x\"], \"audiences\": [\"x\"], \"resources\": [\"*\"]",
                "** is not allowed here", NULL);
    refuse_rule("\"id\": \"r1\", \"effect\": \"allow\", \"agents\": [\"x\"], "
                "\"actions\": [\"pay ments:x\"], \"audiences\": [\"x\"], \"resources\": [\"*\"]",
                "service and verb are 1 to 64", NULL);
    refuse_rule("\"id\": \"r1\", \"effect\": \"allow\", \"agents\": [\"x\"], "
                "\"actions\": [\"a:b\", \"a:b\"], \"audiences\": [\"x\"], \"resources\": [\"*\"]",
                "\"a:b\" is listed twice", NULL);
    refuse_rule("\"id\": \"r1\", \"effect\": \"allow\", \"agents\": [\"x\"], "
                "\"actions\": [\"a:b\"], \"audiences\": [\"x\"], \"resources\": [\"orders/***\"]",
                "rule \"r1\": resources: \"orders/***\": three or more stars", NULL);
    refuse_rule("\"id\": \"r1\", \"effect\": \"allow\", \"agents\": [\"x\"], "
                "\"actions\": [\"a:b\"], \"audiences\": [\"\"], \"resources\": [\"*\"]",
                "audiences: \"\": empty pattern", NULL);
    refuse_rule("\"id\": \"r1\", \"effect\": \"allow\", \"agents\": [\"x\"], "
                "\"actions\": [\"a:b\"], \"audiences\": [\"a\\u0007\"], \"resources\": [\"*\"]",
                "control characters", NULL);
    refuse_rule("\"id\": \"r1\", \"effect\": \"allow\", \"agents\": [\"x\"], "
                "\"actions\": [\"a:b\"], \"audiences\": [5], \"resources\": [\"*\"]",
                "audiences: entry 0 must be a string", NULL);
}

#define COND_RULE(c) "\"id\": \"r1\", \"effect\": \"allow\", " RULE_OK ", \"conditions\": " c

static void test_conditions(void **state)
{
    (void)state;
    refuse_rule(COND_RULE("{\"time_windows\": [{\"start\": \"25:00\", \"end\": \"18:00\"}]}"),
                "conditions.time_windows[0].start: must be \"HH:MM\"", NULL);
    refuse_rule(COND_RULE("{\"time_windows\": [{\"start\": \"08:00\", \"end\": \"08:00\"}]}"),
                "the window is empty", NULL);
    refuse_rule(COND_RULE("{\"time_windows\": [{\"days\": [\"monday\"], \"start\": \"08:00\", "
                          "\"end\": \"09:00\"}]}"),
                "days are \"mon\"", NULL);
    refuse_rule(COND_RULE("{\"time_windows\": [{\"start\": \"08:00\", \"end\": \"09:00\", "
                          "\"utc_offset\": \"+15:00\"}]}"),
                "utc_offset: must be", NULL);
    refuse_rule(COND_RULE("{\"time_windows\": [{\"start\": \"08:00\", \"end\": \"09:00\", "
                          "\"tz\": \"UTC\"}]}"),
                "conditions.time_windows[0]: unknown field \"tz\"", NULL);
    refuse_rule(COND_RULE("{\"source_ip\": [\"10.0.0.1/8\"]}"), "host bits zero", NULL);
    refuse_rule(COND_RULE("{\"source_ip\": [\"10.0.0.0/8\", \"10.0.0.0/8\"]}"), "listed twice",
                NULL);
    refuse_rule(COND_RULE("{\"limits\": [{\"path\": \"amount\", \"min\": 10, \"max\": 5}]}"),
                "min is above max", NULL);
    refuse_rule(COND_RULE("{\"limits\": [{\"path\": \"amount\"}]}"), "needs \"min\", \"max\"",
                NULL);
    refuse_rule(COND_RULE("{\"limits\": [{\"path\": \"a..b\", \"max\": 1}]}"),
                "path: must be object keys joined by '.'", NULL);
    refuse_rule(COND_RULE("{\"limits\": [{\"path\": \"a\", \"max\": \"5\"}]}"),
                "max: must be a number", NULL);
    refuse_rule(COND_RULE("{\"limits\": [{\"path\": \"a\", \"max\": 1e300}]}"), "2^53", NULL);
    refuse_rule(COND_RULE("{\"delegation\": \"forbidden\", \"act\": [\"spiffe://x/*\"]}"),
                "can never apply", NULL);
    refuse_rule(COND_RULE("{\"delegation\": \"maybe\"}"), "must be \"required\", \"restricted\"",
                NULL);
    refuse_rule(COND_RULE("{\"not_before\": \"2025-02-01T00:00:00Z\", "
                          "\"not_after\": \"2025-01-01T00:00:00Z\"}"),
                "not_after is before not_before", NULL);
    refuse_rule(COND_RULE("{\"not_before\": \"2025-02-30T00:00:00Z\"}"),
                "not_before: must be a UTC time", NULL);
    refuse_rule(COND_RULE("{}"), "conditions: is empty", NULL);
    refuse_rule(COND_RULE("{\"source_ips\": [\"10.0.0.0/8\"]}"),
                "unknown field \"source_ips\" (did you mean \"source_ip\"?)", NULL);
}

#define OB_RULE(o) "\"id\": \"r1\", \"effect\": \"allow\", " RULE_OK ", \"obligations\": " o

static void test_obligations(void **state)
{
    (void)state;
    refuse_rule(OB_RULE("{\"ttl\": \"60\"}"), "obligations.ttl: must be a positive integer", NULL);
    refuse_rule(OB_RULE("{\"ttl\": 0}"), "obligations.ttl: must be a positive integer", NULL);
    refuse_rule(OB_RULE("{\"binding\": \"tls\"}"), "obligations.binding: must be", NULL);
    refuse_rule(OB_RULE("{\"single_use\": 1}"), "single_use: must be true or false", NULL);
    refuse_rule(OB_RULE("{\"approval_required\": {\"group\": \"fin\", \"approvers\": 0}}"),
                "approvers: must be an integer from 1 to 10", NULL);
    refuse_rule(OB_RULE("{\"approval_required\": {\"approvers\": 2}}"),
                "obligations.approval_required.group: missing", NULL);
    refuse_rule(OB_RULE("{\"rate_limits\": {\"per_agent\": {\"rate\": 0, \"burst\": 1, "
                        "\"period\": 1}}}"),
                "obligations.rate_limits.per_agent.rate: must be an integer", NULL);
    refuse_rule(OB_RULE("{\"rate_limits\": {\"per_actions\": {}}}"),
                "unknown field \"per_actions\" (did you mean \"per_action\"?)", NULL);
}

static void test_unique_ids_and_many_errors(void **state)
{
    (void)state;
    char *doc = fx_doc("", "{\"id\": \"r1\", \"effect\": \"allow\", " RULE_OK "},"
                           "{\"id\": \"r1\", \"effect\": \"deny\", " RULE_OK "}");
    refuse(doc, ZTB_ERR_POLICY, "used by rules[0] and rules[1]; ids must be unique", NULL);
    free(doc);
    /* two bad rules: both named in one run */
    doc = fx_doc("", "{\"id\": \"a\", \"effect\": \"allow\", " RULE_OK ", \"obligations\": "
                     "{\"ttl\": 301}},"
                     "{\"id\": \"b\", \"effect\": \"allow\", " RULE_OK ", \"conditions\": "
                     "{\"source_ip\": [\"nope\"]}}");
    refuse(doc, ZTB_ERR_POLICY, "rule \"a\": obligations.ttl: 301 exceeds",
           "rule \"b\": conditions.source_ip: \"nope\"");
    free(doc);
}

static void test_anomaly_responses(void **state)
{
    (void)state;
#define RESP_HEAD                                                                                  \
    "{\"version\": 1, \"trust_domain\": \"example.org\", " FX_SETTINGS                             \
    ", \"rules\": [], \"anomaly_responses\": [%s]}"
    struct {
        const char *entry, *want;
    } v[] = {
        {"{\"id\": \"x\", \"signals\": [\"token_reply\"], \"min_severity\": \"high\", "
         "\"response\": \"quarantine\"}",
         "\"token_reply\" looks like a typo of \"token_replay\""},
        {"{\"id\": \"x\", \"signals\": [\"token_replay\"], \"min_severity\": \"high\", "
         "\"response\": \"nuke\"}",
         "response: must be one of"},
        {"{\"id\": \"x\", \"signals\": [\"token_replay\"], \"min_severity\": \"severe\", "
         "\"response\": \"quarantine\"}",
         "min_severity: must be"},
        {"{\"id\": \"x\", \"signals\": [\"token_replay\"], \"min_severity\": \"high\", "
         "\"response\": \"quarantine\", \"window\": 60}",
         "window: only means something with independent_signals of 2"},
        {"{\"id\": \"x\", \"signals\": [\"token_replay\"], \"min_severity\": \"high\", "
         "\"min_confidence\": 1.5, \"response\": \"quarantine\"}",
         "min_confidence: must be a number from 0 to 1"},
        {"{\"id\": \"x\", \"signals\": [\"Token Replay\"], \"min_severity\": \"high\", "
         "\"response\": \"quarantine\"}",
         "a signal type is 1 to 64"},
        {"{\"id\": \"x\", \"signals\": [\"*\", \"token_replay\"], \"min_severity\": \"high\", "
         "\"response\": \"quarantine\"}",
         "\"*\" already means any signal"},
        {"{\"id\": \"x\", \"signals\": [\"token_replay\"], \"min_severity\": \"high\", "
         "\"response\": \"quarantine\", \"independent_signals\": 11}",
         "independent_signals: must be an integer from 1 to 10"},
        {"{\"id\": \"x\", \"signals\": [\"token_replay\"], \"min_severity\": \"high\", "
         "\"response\": \"quarantine\", \"agents\": [\"group:none\"]}",
         "no such group"},
        {"{\"id\": \"x\", \"signals\": [\"token_replay\"], \"min_severity\": \"high\", "
         "\"response\": \"quarantine\", \"operator_confirmation\": \"yes\"}",
         "operator_confirmation: must be true or false"},
        {"{\"id\": \"x\", \"signals\": [\"token_replay\"], \"min_severity\": \"high\", "
         "\"response\": \"quarantine\"}, {\"id\": \"x\", \"signals\": [\"*\"], "
         "\"min_severity\": \"low\", \"response\": \"revoke_token\"}",
         "used by anomaly_responses[0] and [1]"},
    };
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        char doc[4096];
        snprintf(doc, sizeof(doc), RESP_HEAD, v[i].entry);
        refuse(doc, ZTB_ERR_POLICY, v[i].want, NULL);
    }
    /* SOC-specific signal types are fine */
    char doc[4096];
    snprintf(doc, sizeof(doc), RESP_HEAD,
             "{\"id\": \"x\", \"signals\": [\"soc:impossible_travel\"], \"min_severity\": "
             "\"low\", \"response\": \"require_approval\"}");
    policy *p = fx_load(doc);
    assert_non_null(p);
    assert_int_equal(policy_response_count(p), 1);
    policy_unref(p);
}

static void test_too_large(void **state)
{
    (void)state;
    size_t n = (16u << 20) + 1;
    char *big = malloc(n);
    assert_non_null(big);
    memset(big, ' ', n);
    policy *p = NULL;
    policy_diag d;
    policy_diag_init(&d);
    assert_int_equal(policy_load(big, n, &p, &d), ZTB_ERR_TOO_LARGE);
    assert_null(p);
    assert_true(policy_diag_count(&d) > 0);
    policy_diag_free(&d);
    free(big);
    assert_int_equal(policy_load(NULL, 5, &p, NULL), ZTB_ERR_INVALID_ARG);
    assert_int_equal(policy_load("{}", 2, NULL, NULL), ZTB_ERR_INVALID_ARG);
}

static void test_files(void **state)
{
    (void)state;
    char path[4096];
    policy *p = NULL;
    policy_diag d;
    policy_diag_init(&d);
    assert_int_equal(
        policy_load_file(fx_src(path, sizeof(path), "examples/policy/fleet.json"), &p, &d), ZTB_OK);
    assert_non_null(p);
    assert_int_equal(policy_diag_count(&d), 0);
    policy_unref(p);
    assert_int_equal(policy_load_file("/nonexistent/policy.json", &p, &d), ZTB_ERR_IO);
    assert_null(p);
    assert_non_null(strstr(d.msgs[0].text, "/nonexistent/policy.json"));
    policy_diag_free(&d);
    policy_diag_init(&d);
    assert_int_equal(policy_load_file("/", &p, &d), ZTB_ERR_IO);
    assert_non_null(strstr(d.msgs[0].text, "not a regular file"));
    policy_diag_free(&d);
    /* an invalid file gives its messages */
    char tmpl[] = "/tmp/ztb-test-policy-XXXXXX";
    int fd = mkstemp(tmpl);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "{\n\"version\": 1,\n}", 17), 17);
    close(fd);
    policy_diag_init(&d);
    assert_int_equal(policy_load_file(tmpl, &p, &d), ZTB_ERR_JSON);
    assert_int_equal(d.msgs[0].line, 3);
    policy_diag_free(&d);
    unlink(tmpl);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_minimal_documents_load),
        cmocka_unit_test(test_syntax_errors_have_line_and_column),
        cmocka_unit_test(test_document_level),
        cmocka_unit_test(test_settings),
        cmocka_unit_test(test_groups),
        cmocka_unit_test(test_rule_fields),
        cmocka_unit_test(test_conditions),
        cmocka_unit_test(test_obligations),
        cmocka_unit_test(test_unique_ids_and_many_errors),
        cmocka_unit_test(test_anomaly_responses),
        cmocka_unit_test(test_too_large),
        cmocka_unit_test(test_files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
