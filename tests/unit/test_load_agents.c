/*
 * test_load_agents.c - strict loading of agent references ("*", names, name patterns, SPIFFE IDs,
 * "group:NAME") in groups and rules.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "load_fixture.h"

static void test_agent_refs_load(void **state)
{
    (void)state;
    char *doc = fx_doc("\"g\": {\"members\": [\"x\", \"bot-*\", \"spiffe://example.org/agent/y\"]}",
                       "{\"id\": \"r1\", \"effect\": \"allow\", \"agents\": [\"group:g\", \"z\"], "
                       "\"actions\": [\"a:b\"], \"audiences\": [\"x\"], \"resources\": [\"*\"]},"
                       "{\"id\": \"r2\", \"effect\": \"allow\", \"agents\": [\"*\"], "
                       "\"actions\": [\"a:c\"], \"audiences\": [\"x\"], \"resources\": [\"*\"]}");
    policy *p = fx_load(doc);
    assert_non_null(p);
    assert_int_equal(policy_rule_count(p), 2);
    policy_unref(p);
    free(doc);
}

static void test_agent_refs_refused(void **state)
{
    (void)state;
    char *doc;
    doc = fx_doc("\"a\": {\"members\": [\"group:b\"]}, \"b\": {\"members\": [\"x\"]}", "");
    refuse(doc, ZTB_ERR_POLICY, "a group cannot contain a group", NULL);
    free(doc);
    doc = fx_doc("\"a\": {\"members\": [\"x\", \"spiffe://example.org/agent/x\"]}", "");
    refuse(doc, ZTB_ERR_POLICY, "group \"a\": members: \"x\" is listed twice", NULL);
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
    refuse_rule("\"id\": \"r1\", \"effect\": \"allow\", \"agents\": [\"*\", \"x\"], "
                "\"actions\": [\"a:b\"], \"audiences\": [\"x\"], \"resources\": [\"*\"]",
                "\"*\" already names every agent", NULL);
    refuse_rule("\"id\": \"r1\", \"effect\": \"allow\", \"agents\": [\"group:nope\"], "
                "\"actions\": [\"a:b\"], \"audiences\": [\"x\"], \"resources\": [\"*\"]",
                "\"group:nope\": no such group", NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_agent_refs_load),
        cmocka_unit_test(test_agent_refs_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
