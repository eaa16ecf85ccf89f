/*
 * test_load_rules.c - strict loading of the "rules": each field of a rule, its patterns and its
 * obligations, refused with the rule named.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "load_fixture.h"

#define OB_RULE(o) "\"id\": \"r1\", \"effect\": \"allow\", " RULE_OK ", \"obligations\": " o

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
    refuse_rule(OB_RULE("{\"approval_required\": {\"group\": \"fin\", \"approvers\": 1, "
                        "\"expires_in\": 5}}"),
                "expires_in: must be an integer from 10 to 86400", NULL);
    refuse_rule(OB_RULE("{\"approval_required\": {\"group\": \"fin\", \"approvers\": 1, "
                        "\"expires_in\": 86401}}"),
                "expires_in", NULL);
    refuse_rule(OB_RULE("{\"rate_limits\": {\"per_agent\": {\"rate\": 0, \"burst\": 1, "
                        "\"period\": 1}}}"),
                "obligations.rate_limits.per_agent.rate: must be an integer", NULL);
    refuse_rule(OB_RULE("{\"rate_limits\": {\"per_actions\": {}}}"),
                "unknown field \"per_actions\" (did you mean \"per_action\"?)", NULL);
}

/* approval_required.expires_in reaches the decision; the shortest of two rules wins. */
static void test_approval_expiry(void **state)
{
    (void)state;
    static const char doc[] =
        "{\"version\": 1, \"trust_domain\": \"ztb.local\", "
        "\"settings\": {\"max_ttl\": 300, \"default_ttl\": 60, \"rate_limits\": "
        "{\"per_agent\": {\"rate\": 10, \"burst\": 10, \"period\": 60}, "
        "\"per_action\": {\"rate\": 10, \"burst\": 10, \"period\": 60}}}, \"rules\": ["
        "{\"id\": \"a\", \"effect\": \"allow\", \"agents\": [\"x\"], \"actions\": [\"s:v\"], "
        "\"audiences\": [\"aud\"], \"resources\": [\"*\"], \"obligations\": "
        "{\"approval_required\": {\"group\": \"fin\", \"approvers\": 1, \"expires_in\": 600}}},"
        "{\"id\": \"b\", \"effect\": \"allow\", \"agents\": [\"x\"], \"actions\": [\"s:v\"], "
        "\"audiences\": [\"aud\"], \"resources\": [\"r2\"], \"obligations\": "
        "{\"approval_required\": {\"group\": \"fin\", \"approvers\": 2, \"expires_in\": 60}}},"
        "{\"id\": \"c\", \"effect\": \"allow\", \"agents\": [\"x\"], \"actions\": [\"s:w\"], "
        "\"audiences\": [\"aud\"], \"resources\": [\"*\"], \"obligations\": "
        "{\"approval_required\": {\"group\": \"fin\", \"approvers\": 1}}}]}";
    policy *p = NULL;
    policy_diag diag;
    policy_diag_init(&diag);
    ztb_err rv = policy_load(doc, strlen(doc), &p, &diag);
    if (rv != ZTB_OK)
        fail_msg("policy: %s %s", diag.n ? diag.msgs[0].field : "",
                 diag.n ? diag.msgs[0].text : "");
    policy_diag_free(&diag);
    policy_request rq = {.agent = "x", .action = "s:v", .audience = "aud", .resource = "r1"};
    policy_decision d;
    assert_int_equal(policy_eval(p, &rq, &d), ZTB_OK);
    assert_int_equal(d.effect, POLICY_APPROVAL_REQUIRED);
    assert_int_equal(d.ob.approval_ttl, 600);
    rq.resource = "r2";
    assert_int_equal(policy_eval(p, &rq, &d), ZTB_OK);
    assert_int_equal(d.ob.approvers, 2);
    assert_int_equal(d.ob.approval_ttl, 60);
    rq.action = "s:w";
    assert_int_equal(policy_eval(p, &rq, &d), ZTB_OK);
    assert_int_equal(d.ob.approval_ttl, 0); /* the broker's default */
    policy_unref(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rule_fields),
        cmocka_unit_test(test_obligations),
        cmocka_unit_test(test_approval_expiry),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
