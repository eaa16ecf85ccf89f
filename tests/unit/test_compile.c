/*
 * test_compile.c - the agent table and the rule index: every rule that can
 * apply is found, once, in canonical order; no other rule is visited.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "policy/compile.h"
#include "policy/match.h"
#include "policy_fixtures.h"

static const char *GROUPS = "\"g1\": {\"members\": [\"a1\", \"a2\"]},"
                            "\"g2\": {\"members\": [\"a2\", \"bot-*\"]}";

static const char *RULES =
    "{\"id\": \"exact\", \"effect\": \"allow\", \"agents\": [\"a1\"], "
    "\"actions\": [\"pay:read\", \"pay:list\"], \"audiences\": [\"A\"], \"resources\": [\"*\"]},"
    "{\"id\": \"anysvc\", \"effect\": \"allow\", \"agents\": [\"a1\"], "
    "\"actions\": [\"p*:read\"], \"audiences\": [\"A\"], \"resources\": [\"*\"]},"
    "{\"id\": \"wild\", \"effect\": \"allow\", \"agents\": [\"a1\"], "
    "\"actions\": [\"pay:read\"], \"audiences\": [\"A*\", \"A\"], \"resources\": [\"*\"]},"
    "{\"id\": \"wildany\", \"effect\": \"allow\", \"agents\": [\"group:g2\"], "
    "\"actions\": [\"*\"], \"audiences\": [\"**\"], \"resources\": [\"*\"]},"
    "{\"id\": \"other-aud\", \"effect\": \"allow\", \"agents\": [\"a1\"], "
    "\"actions\": [\"pay:read\"], \"audiences\": [\"B\"], \"resources\": [\"*\"]},"
    "{\"id\": \"other-svc\", \"effect\": \"allow\", \"agents\": [\"a1\"], "
    "\"actions\": [\"crm:read\"], \"audiences\": [\"A\"], \"resources\": [\"*\"]},"
    "{\"id\": \"deny-z\", \"effect\": \"deny\", \"agents\": [\"zz\"], "
    "\"actions\": [\"pay:read\"], \"audiences\": [\"A\"], \"resources\": [\"*\"]}";

/* The ids visited for (agent, action, audience), comma-separated. */
static void visited(const policy *p, const char *action, const char *aud, char *out, size_t cap)
{
    policy_request req = {.agent = "a1", .action = action, .audience = aud, .resource = "x"};
    struct policy_subject s;
    assert_null(policy_subject_resolve(p, &req, &s));
    struct policy_candidates it;
    policy_candidates_init(p, &s, &it);
    const struct policy_rule *r;
    out[0] = '\0';
    while ((r = policy_candidates_next(p, &it)) != NULL) {
        /* "audience known" is claimed only when a literal audience is the request's */
        if (it.audience_known) {
            int lit = 0;
            for (uint32_t i = 0; i < r->n_audiences; i++)
                lit |= policy_glob_is_literal(&r->audiences[i]) &&
                       strcmp(r->audiences[i].text, aud) == 0;
            assert_true(lit);
        }
        /* and skipping the audience check never changes a rule's verdict */
        assert_int_equal(policy_rule_target(p, r, &s, it.audience_known),
                         policy_rule_target(p, r, &s, 0));
        strncat(out, r->id, cap - strlen(out) - 1);
        strncat(out, ",", cap - strlen(out) - 1);
    }
}

static void test_index(void **state)
{
    (void)state;
    char *doc = fx_doc(GROUPS, RULES);
    policy *p = fx_load(doc);
    assert_non_null(p);
    char got[512];
    visited(p, "pay:read", "A", got, sizeof(got));
    /* deny first, then by id; "wild" listed under A and under the wild bucket: once */
    assert_string_equal(got, "deny-z,anysvc,exact,wild,wildany,");
    visited(p, "pay:list", "A", got, sizeof(got));
    assert_string_equal(got, "deny-z,anysvc,exact,wild,wildany,");
    visited(p, "pay:read", "AB", got, sizeof(got));
    assert_string_equal(got, "wild,wildany,");
    visited(p, "pay:read", "B", got, sizeof(got));
    assert_string_equal(got, "other-aud,wild,wildany,"); /* "A*" is a candidate, then misses */
    visited(p, "crm:read", "A", got, sizeof(got));
    assert_string_equal(got, "anysvc,other-svc,wildany,");
    visited(p, "zz:read", "Q", got, sizeof(got));
    assert_string_equal(got, "wildany,");
    /* the pre-merged path (exact audience and service) and the run-time merge
     * (anything else) both exist in this policy */
    struct policy_subject s;
    struct policy_candidates it;
    policy_request q = {.agent = "a1", .action = "pay:read", .audience = "A", .resource = "x"};
    assert_null(policy_subject_resolve(p, &q, &s));
    policy_candidates_init(p, &s, &it);
    assert_non_null(it.merged);
    q.audience = "AB";
    assert_null(policy_subject_resolve(p, &q, &s));
    policy_candidates_init(p, &s, &it);
    assert_null(it.merged);
    policy_unref(p);
    free(doc);
}

static void test_agents(void **state)
{
    (void)state;
    char *doc = fx_doc(GROUPS, RULES);
    policy *p = fx_load(doc);
    assert_non_null(p);
    /* a1, a2 (groups), zz (a rule): bot-* is a pattern, not an agent */
    assert_int_equal(policy_agent_count(p), 3);
    assert_int_equal(policy_group_count(p), 2);
    const char *g[4];
    size_t n;
    assert_int_equal(policy_agent_groups(p, "a2", g, 4, &n), ZTB_OK);
    assert_int_equal(n, 2);
    assert_string_equal(g[0], "g1");
    assert_string_equal(g[1], "g2");
    assert_int_equal(policy_agent_groups(p, "bot-7", g, 4, &n), ZTB_OK);
    assert_int_equal(n, 1);
    assert_string_equal(g[0], "g2");
    assert_int_equal(policy_agent_groups(p, "spiffe://example.org/agent/a1", g, 4, &n), ZTB_OK);
    assert_int_equal(n, 1);
    assert_int_equal(policy_agent_groups(p, "nobody", g, 4, &n), ZTB_OK);
    assert_int_equal(n, 0);
    assert_int_equal(policy_agent_groups(p, "a2", g, 1, &n), ZTB_ERR_TOO_LARGE);
    assert_int_equal(n, 2);
    assert_string_equal(g[0], "g1");
    assert_int_equal(policy_agent_groups(p, "bad name", g, 4, &n), ZTB_ERR_INVALID_ARG);
    assert_int_equal(policy_agent_groups(p, "spiffe://other.org/agent/a1", g, 4, &n),
                     ZTB_ERR_INVALID_ARG);
    policy_unref(p);
    free(doc);
}

/* Groups beyond 64 use more than one bitset word. */
static void test_many_groups(void **state)
{
    (void)state;
    char *groups = malloc(200 * 64);
    assert_non_null(groups);
    groups[0] = '\0';
    for (int i = 0; i < 150; i++) {
        char g[64];
        snprintf(g, sizeof(g), "%s\"g%03d\": {\"members\": [\"agent-%d\"]}", i ? "," : "", i, i);
        strcat(groups, g);
    }
    const char *rules = "{\"id\": \"r\", \"effect\": \"allow\", \"agents\": [\"group:g149\"], "
                        "\"actions\": [\"a:b\"], \"audiences\": [\"x\"], \"resources\": [\"*\"]}";
    char *doc = fx_doc(groups, rules);
    policy *p = fx_load(doc);
    assert_non_null(p);
    policy_request req = {.agent = "agent-149", .action = "a:b", .audience = "x", .resource = ""};
    policy_decision d;
    assert_int_equal(policy_eval(p, &req, &d), ZTB_OK);
    assert_int_equal(d.effect, POLICY_ALLOW);
    req.agent = "agent-148";
    assert_int_equal(policy_eval(p, &req, &d), ZTB_OK);
    assert_int_equal(d.effect, POLICY_DENY);
    policy_unref(p);
    free(doc);
    free(groups);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_index),
        cmocka_unit_test(test_agents),
        cmocka_unit_test(test_many_groups),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
