/*
 * test_match.c - the building blocks of a decision: agent resolution,
 * request checks, the order targets are tested in, and how the obligations
 * of several allow rules combine.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "policy/match.h"
#include "policy_fixtures.h"

static const char *GROUPS =
    "\"g\": {\"members\": [\"a1\", \"bot-*\"]}, \"h\": {\"members\": [\"a1\"]}";
static const char *RULES =
    "{\"id\": \"r\", \"effect\": \"allow\", \"agents\": [\"group:g\"], \"actions\": "
    "[\"pay:read\", \"crm:*\"], \"audiences\": [\"A\", \"B*\"], \"resources\": [\"x/*\"]}";

static void test_agent_resolve(void **state)
{
    (void)state;
    char *doc = fx_doc(GROUPS, RULES);
    policy *p = fx_load(doc);
    assert_non_null(p);
    struct policy_agent_ref a;
    assert_null(policy_agent_resolve(p, "a1", &a));
    assert_int_not_equal(a.idx, UINT32_MAX);
    assert_true(policy_bit(a.groups, 0) && policy_bit(a.groups, 1)); /* g and h */
    assert_null(policy_agent_resolve(p, "spiffe://example.org/agent/bot-9", &a));
    assert_int_equal(a.len, 5);
    assert_memory_equal(a.name, "bot-9", 5);
    assert_int_equal(a.idx, UINT32_MAX); /* named only by a pattern */
    assert_true(policy_bit(a.groups, 0));
    assert_false(policy_bit(a.groups, 1));
    assert_null(policy_agent_resolve(p, "stranger", &a));
    assert_false(policy_bit(a.groups, 0));
    assert_non_null(policy_agent_resolve(p, NULL, &a));
    assert_non_null(policy_agent_resolve(p, "", &a));
    assert_non_null(policy_agent_resolve(p, "spiffe://example.org/agent/", &a));
    assert_non_null(policy_agent_resolve(p, "spiffe://example.org/agent/a/b", &a));
    assert_non_null(policy_agent_resolve(p, "spiffe://example.org.evil/agent/a1", &a));
    assert_non_null(policy_agent_resolve(p, "SPIFFE://example.org/agent/a1", &a));
    policy_unref(p);
    free(doc);
}

static void test_subject_and_target_order(void **state)
{
    (void)state;
    char *doc = fx_doc(GROUPS, RULES);
    policy *p = fx_load(doc);
    const struct policy_rule *r = &p->rules[0];
    struct {
        const char *agent, *action, *audience, *resource;
        enum policy_miss want;
    } v[] = {
        {"a1", "pay:read", "A", "x/1", POLICY_MISS_NONE},
        {"bot-2", "crm:anything", "B-side", "x/", POLICY_MISS_NONE},
        {"zz", "pay:write", "C", "y", POLICY_MISS_AGENT}, /* the first miss is reported */
        {"a1", "pay:write", "C", "y", POLICY_MISS_ACTION},
        {"a1", "crm:read", "C", "y", POLICY_MISS_AUDIENCE},
        {"a1", "crm:read", "Bx", "x/1/2", POLICY_MISS_RESOURCE},
    };
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        policy_request req = {.agent = v[i].agent,
                              .action = v[i].action,
                              .audience = v[i].audience,
                              .resource = v[i].resource};
        struct policy_subject s;
        assert_null(policy_subject_resolve(p, &req, &s));
        assert_int_equal(policy_rule_target(p, r, &s, 0), v[i].want);
    }
    /* audience_known skips only the audience check */
    policy_request req = {.agent = "a1", .action = "crm:read", .audience = "C", .resource = "x/1"};
    struct policy_subject s;
    assert_null(policy_subject_resolve(p, &req, &s));
    assert_int_equal(policy_rule_target(p, r, &s, 0), POLICY_MISS_AUDIENCE);
    assert_int_equal(policy_rule_target(p, r, &s, 1), POLICY_MISS_NONE);
    /* request checks */
    const char *why;
    policy_request bad = {.agent = "a1", .action = "pay:read", .audience = "A", .resource = NULL};
    assert_null(policy_subject_resolve(p, &bad, &s));
    assert_int_equal(s.resource_len, 0);
    bad.ctx.act = "";
    why = policy_subject_resolve(p, &bad, &s);
    assert_non_null(why);
    assert_non_null(strstr(why, "act"));
    policy_unref(p);
    free(doc);
}

static struct policy_rule allow_rule(const char *id, uint32_t ttl, int single, int binding,
                                     policy_rate pa, policy_rate pc, const char *ag,
                                     uint32_t approvers)
{
    struct policy_rule r;
    memset(&r, 0, sizeof(r));
    r.id = id;
    r.effect = POLICY_ALLOW;
    r.ob.ttl = ttl;
    r.ob.single_use = (uint8_t)single;
    r.ob.binding = (uint8_t)binding;
    r.ob.per_agent = pa;
    r.ob.per_action = pc;
    r.ob.approval_group = ag;
    r.ob.approvers = approvers;
    return r;
}

static void test_combine(void **state)
{
    (void)state;
    policy_rate slow = {10, 5, 60}, fast = {100, 50, 60}, same_rate_low_burst = {10, 2, 60},
                per_hour = {100, 5, 3600}; /* 100/h is slower than 10/min */
    struct policy_rule a = allow_rule("a", 120, 0, POLICY_BINDING_NONE, fast, fast, NULL, 0);
    struct policy_rule b = allow_rule("b", 60, 1, POLICY_BINDING_ANY, slow, per_hour, NULL, 0);
    struct policy_rule c =
        allow_rule("c", 300, 0, POLICY_BINDING_DPOP, same_rate_low_burst, fast, "fin", 2);
    struct policy_combine k;
    policy_combine_init(&k);
    policy_combine_add(&k, &a);
    assert_int_equal(k.ob.ttl, 120);
    assert_ptr_equal(k.primary, &a);
    assert_null(k.src_single_use);
    policy_combine_add(&k, &b);
    policy_combine_add(&k, &c);
    assert_int_equal(k.n, 3);
    assert_int_equal(k.ob.ttl, 60);
    assert_ptr_equal(k.src_ttl, &b);
    assert_int_equal(k.ob.single_use, 1);
    assert_ptr_equal(k.src_single_use, &b);
    assert_int_equal(k.ob.binding, POLICY_BINDING_DPOP);
    assert_ptr_equal(k.src_binding, &c);
    assert_int_equal(k.ob.per_agent.burst, 2); /* same rate, lower burst wins */
    assert_ptr_equal(k.src_per_agent, &c);
    assert_int_equal(k.ob.per_action.period, 3600);
    assert_ptr_equal(k.src_per_action, &b);
    assert_string_equal(k.ob.approval_group, "fin");
    assert_int_equal(k.ob.approvers, 2);
    assert_null(k.conflict);
    /* the same approver group asking for more: the larger count */
    struct policy_rule d = allow_rule("d", 60, 0, 0, slow, slow, "fin", 3);
    policy_combine_add(&k, &d);
    assert_int_equal(k.ob.approvers, 3);
    assert_ptr_equal(k.approval, &c);
    /* mTLS against DPoP: conflict, naming both */
    struct policy_rule e = allow_rule("e", 60, 0, POLICY_BINDING_MTLS, slow, slow, NULL, 0);
    policy_combine_add(&k, &e);
    assert_non_null(k.conflict);
    assert_ptr_equal(k.conflict_a, &c);
    assert_ptr_equal(k.conflict_b, &e);
    /* the first conflict is kept */
    struct policy_rule f = allow_rule("f", 60, 0, 0, slow, slow, "other", 1);
    policy_combine_add(&k, &f);
    assert_ptr_equal(k.conflict_b, &e);
    assert_int_equal(k.n, 6);
    /* approval groups that differ conflict on their own */
    policy_combine_init(&k);
    policy_combine_add(&k, &c);
    policy_combine_add(&k, &f);
    assert_non_null(strstr(k.conflict, "approver groups"));
    /* "any" then dpop then "any": dpop stays */
    policy_combine_init(&k);
    policy_combine_add(&k, &b);
    policy_combine_add(&k, &c);
    policy_combine_add(&k, &b);
    assert_int_equal(k.ob.binding, POLICY_BINDING_DPOP);
    assert_null(k.conflict);
}

/* An approval rule that leaves expires_in out waits the documented default
 * (900 s): combined with a rule that allows a longer wait, the shorter one
 * applies in either order, as for two explicit waits. Before, the unset wait
 * was skipped and the request waited the other rule's hour. */
static void test_combine_approval_default_wait(void **state)
{
    (void)state;
    policy_rate r = {10, 5, 60};
    struct policy_rule unset = allow_rule("unset", 60, 0, 0, r, r, "fin", 1);
    struct policy_rule hour = allow_rule("hour", 60, 0, 0, r, r, "fin", 1);
    hour.ob.approval_ttl = 3600;
    struct policy_rule brief = allow_rule("brief", 60, 0, 0, r, r, "fin", 1);
    brief.ob.approval_ttl = 60;
    struct policy_combine k;
    policy_combine_init(&k);
    policy_combine_add(&k, &hour);
    policy_combine_add(&k, &unset);
    assert_null(k.conflict);
    assert_true(k.ob.approval_ttl == 0 || k.ob.approval_ttl == POLICY_APPROVAL_TTL_DEFAULT);
    policy_combine_init(&k);
    policy_combine_add(&k, &unset);
    policy_combine_add(&k, &hour);
    assert_true(k.ob.approval_ttl == 0 || k.ob.approval_ttl == POLICY_APPROVAL_TTL_DEFAULT);
    /* a wait shorter than the default still wins over an unset one */
    policy_combine_add(&k, &brief);
    assert_int_equal(k.ob.approval_ttl, 60);
    policy_combine_init(&k);
    policy_combine_add(&k, &brief);
    policy_combine_add(&k, &unset);
    assert_int_equal(k.ob.approval_ttl, 60);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_agent_resolve),
        cmocka_unit_test(test_subject_and_target_order),
        cmocka_unit_test(test_combine),
        cmocka_unit_test(test_combine_approval_default_wait),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
