/*
 * test_overlap.c - unreachable, duplicate and conflicting rules are refused
 * with both rule ids; legitimate overlaps (a narrow deny carved out of a
 * broad allow, two allows that combine) are accepted.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "policy/overlap.h"
#include "policy_fixtures.h"

#define GROUPS                                                                                     \
    "\"pay\": {\"members\": [\"billing-bot\", \"refund-*\"]},"                                     \
    "\"two\": {\"members\": [\"billing-bot\", \"refund-7\"]},"                                     \
    "\"mixed\": {\"members\": [\"billing-bot\", \"crm-bot\"]}"

static char *rule(const char *id, const char *effect, const char *agents, const char *actions,
                  const char *auds, const char *res, const char *extra)
{
    char *s = malloc(4096);
    assert_non_null(s);
    snprintf(s, 4096,
             "{\"id\": \"%s\", \"effect\": \"%s\", \"agents\": [%s], \"actions\": [%s], "
             "\"audiences\": [%s], \"resources\": [%s]%s%s}",
             id, effect, agents, actions, auds, res, extra ? ", " : "", extra ? extra : "");
    return s;
}

/* Load groups + the two rules; return the messages ("" when accepted). */
static char *pair(const char *r1, const char *r2, ztb_err *got)
{
    char rules[9000];
    snprintf(rules, sizeof(rules), "%s, %s", r1, r2);
    char *doc = fx_doc(GROUPS, rules);
    policy_diag d;
    policy_diag_init(&d);
    policy *p = NULL;
    *got = policy_load(doc, strlen(doc), &p, &d);
    char *m = fx_messages(&d);
    policy_unref(p);
    policy_diag_free(&d);
    free(doc);
    return m;
}

static void expect(const char *r1, const char *r2, ztb_err want, const char *msg)
{
    ztb_err got;
    char *m = pair(r1, r2, &got);
    if (got != want || (msg != NULL && strstr(m, msg) == NULL))
        fail_msg("want %s \"%s\", got %s:\n%s\n%s\n%s", ztb_err_name(want), msg ? msg : "",
                 ztb_err_name(got), m, r1, r2);
    free(m);
    /* the verdict never depends on the order in the file */
    m = pair(r2, r1, &got);
    if (got != want || (msg != NULL && strstr(m, msg) == NULL))
        fail_msg("reversed: want %s \"%s\", got %s:\n%s", ztb_err_name(want), msg ? msg : "",
                 ztb_err_name(got), m);
    free(m);
}

#define AUD "\"https://payments.internal\""

static void test_deny_shadows_allow(void **state)
{
    (void)state;
    char *d = rule("deny-all-pay", "deny", "\"*\"", "\"payments:*\"", AUD, "\"**\"", NULL);
    char *a = rule("refund", "allow", "\"billing-bot\"", "\"payments:refund\"", AUD, "\"orders/*\"",
                   NULL);
    expect(d, a, ZTB_ERR_POLICY,
           "rule \"refund\": unreachable: deny rule \"deny-all-pay\" matches every request");
    free(d);
    /* a narrow deny carved out of a broad allow is the normal case */
    d = rule("deny-disputed", "deny", "\"*\"", "\"payments:*\"", AUD, "\"orders/disputed/**\"",
             NULL);
    expect(d, a, ZTB_OK, NULL);
    free(d);
    /* deny with conditions does not always fire: the allow is reachable */
    d = rule("deny-offnet", "deny", "\"*\"", "\"payments:*\"", AUD, "\"**\"",
             "\"conditions\": {\"source_ip\": [\"192.0.2.0/24\"]}");
    expect(d, a, ZTB_OK, NULL);
    free(d);
    free(a);
    /* ...unless the allow has exactly the same conditions */
    d = rule("deny-offnet", "deny", "\"*\"", "\"payments:*\"", AUD, "\"**\"",
             "\"conditions\": {\"source_ip\": [\"192.0.2.0/24\"]}");
    a = rule("refund", "allow", "\"billing-bot\"", "\"payments:refund\"", AUD, "\"orders/*\"",
             "\"conditions\": {\"source_ip\": [\"192.0.2.0/24\"]}");
    expect(d, a, ZTB_ERR_POLICY, "under the same conditions");
    free(d);
    free(a);
}

static void test_agent_coverage(void **state)
{
    (void)state;
    char *a = rule("refund", "allow", "\"billing-bot\"", "\"payments:refund\"", AUD, "\"orders/*\"",
                   NULL);
    char *d = rule("deny-pay", "deny", "\"group:pay\"", "\"payments:refund\"", AUD, "\"**\"", NULL);
    expect(d, a, ZTB_ERR_POLICY, "unreachable"); /* billing-bot is in pay */
    free(a);
    a = rule("refund", "allow", "\"group:two\"", "\"payments:refund\"", AUD, "\"orders/*\"", NULL);
    expect(d, a, ZTB_ERR_POLICY, "unreachable"); /* refund-7 matches refund-* */
    free(a);
    a = rule("refund", "allow", "\"group:mixed\"", "\"payments:refund\"", AUD, "\"orders/*\"",
             NULL);
    expect(d, a, ZTB_OK, NULL); /* crm-bot is not in pay */
    free(a);
    a = rule("refund", "allow", "\"refund-9*\"", "\"payments:refund\"", AUD, "\"orders/*\"", NULL);
    expect(d, a, ZTB_ERR_POLICY, "unreachable"); /* refund-9* within refund-* */
    free(a);
    a = rule("refund", "allow", "\"*\"", "\"payments:refund\"", AUD, "\"orders/*\"", NULL);
    expect(d, a, ZTB_OK, NULL); /* everyone is more than the group */
    free(a);
    a = rule("refund", "allow", "\"spiffe://example.org/agent/refund-1\"", "\"payments:refund\"",
             AUD, "\"orders/*\"", NULL);
    expect(d, a, ZTB_ERR_POLICY, "unreachable");
    free(a);
    free(d);
}

static void test_pattern_coverage(void **state)
{
    (void)state;
    char *a = rule("read", "allow", "\"x\"", "\"crm:read\"", "\"https://crm.internal\"",
                   "\"contacts/*\"", NULL);
    char *d = rule("deny-internal", "deny", "\"x\"", "\"crm:*\"", "\"https://*.internal\"",
                   "\"contacts/**\"", NULL);
    expect(d, a, ZTB_ERR_POLICY, "unreachable");
    free(d);
    d = rule("deny-internal", "deny", "\"x\"", "\"crm:*\"", "\"https://*.internal\"",
             "\"contacts/*/notes\"", NULL);
    expect(d, a, ZTB_OK, NULL); /* only part of the resources */
    free(d);
    d = rule("deny-internal", "deny", "\"x\"", "\"*\"", "\"https://crm.internal\"", "\"**\"", NULL);
    expect(d, a, ZTB_ERR_POLICY, "unreachable"); /* "*" is every action */
    free(d);
    d = rule("deny-internal", "deny", "\"x\"", "\"crm:write\"", "\"https://crm.internal\"",
             "\"**\"", NULL);
    expect(d, a, ZTB_OK, NULL);
    free(d);
    free(a);
}

static void test_duplicates_and_conflicts(void **state)
{
    (void)state;
    char *a = rule("a", "allow", "\"x\", \"y\"", "\"crm:read\", \"crm:list\"",
                   "\"https://crm.internal\"", "\"contacts/*\"", "\"obligations\": {\"ttl\": 60}");
    /* same match set, written in another order and spelling */
    char *b =
        rule("b", "allow", "\"spiffe://example.org/agent/y\", \"x\"", "\"crm:list\", \"crm:read\"",
             "\"https://crm.internal\"", "\"contacts/*\"", NULL);
    expect(a, b, ZTB_ERR_POLICY, "rule \"b\": duplicates rule \"a\"");
    free(b);
    b = rule("b", "allow", "\"y\", \"x\"", "\"crm:read\", \"crm:list\"", "\"https://crm.internal\"",
             "\"contacts/*\"", "\"obligations\": {\"ttl\": 120}");
    expect(a, b, ZTB_ERR_POLICY,
           "rule \"b\": conflicts with rule \"a\": both match exactly the same requests but "
           "their obligations differ (ttl 60 vs 120)");
    free(b);
    b = rule("b", "deny", "\"y\", \"x\"", "\"crm:read\", \"crm:list\"", "\"https://crm.internal\"",
             "\"contacts/*\"", NULL);
    expect(a, b, ZTB_ERR_POLICY,
           "rule \"a\": unreachable: deny rule \"b\" matches exactly the same requests");
    free(b);
    /* different conditions: different rules, and they combine at evaluation */
    b = rule("b", "allow", "\"y\", \"x\"", "\"crm:read\", \"crm:list\"", "\"https://crm.internal\"",
             "\"contacts/*\"", "\"conditions\": {\"delegation\": \"required\"}");
    expect(a, b, ZTB_OK, NULL);
    free(b);
    free(a);
    char *d1 =
        rule("d1", "deny", "\"*\"", "\"crm:delete\"", "\"https://crm.internal\"", "\"**\"", NULL);
    char *d2 =
        rule("d2", "deny", "\"*\"", "\"crm:delete\"", "\"https://crm.internal\"", "\"**\"", NULL);
    expect(d1, d2, ZTB_ERR_POLICY, "rule \"d2\": duplicates rule \"d1\"");
    free(d1);
    free(d2);
}

/* policy_rule_covers directly, on a loaded policy. */
static void test_rule_covers(void **state)
{
    (void)state;
    char *broad =
        rule("broad", "allow", "\"group:pay\"", "\"payments:*\"", AUD, "\"orders/**\"", NULL);
    char *narrow = rule("narrow", "allow", "\"refund-1\"", "\"payments:refund\"", AUD,
                        "\"orders/*\"", "\"obligations\": {\"single_use\": true}");
    char rules[9000];
    snprintf(rules, sizeof(rules), "%s, %s", broad, narrow);
    char *doc = fx_doc(GROUPS, rules);
    policy *p = fx_load(doc); /* two allows that overlap are fine: they combine */
    assert_non_null(p);
    const struct policy_rule *rb = &p->rules[0], *rn = &p->rules[1];
    assert_string_equal(rb->id, "broad");
    assert_true(policy_rule_covers(p, rb, rn));
    assert_false(policy_rule_covers(p, rn, rb));
    assert_true(policy_rule_covers(p, rb, rb));
    policy_unref(p);
    free(doc);
    free(broad);
    free(narrow);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_deny_shadows_allow), cmocka_unit_test(test_agent_coverage),
        cmocka_unit_test(test_pattern_coverage),   cmocka_unit_test(test_duplicates_and_conflicts),
        cmocka_unit_test(test_rule_covers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
