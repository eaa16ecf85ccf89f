/*
 * test_introspect_caller.c - introspect_caller_may: who may introspect and
 * consume the tokens of an audience (policy's ztb:introspect and
 * ztb:consume, the audience itself), and nobody without a policy.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "broker/broker.h"
#include "broker/tokens/introspect_caller.h"
#include "policy/holder.h"
#include "policy/policy.h"

/* The broker the check asks: built here, not the process's g_broker. */
static struct broker tb;

static int setup(void **state)
{
    (void)state;
    snprintf(tb.cfg.trust_domain, sizeof(tb.cfg.trust_domain), "ztb.local");
    assert_int_equal(policy_holder_new(&tb.policy), ZTB_OK);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    policy_holder_free(tb.policy);
    tb.policy = NULL;
    return 0;
}

static const char *access_policy =
    "{\"version\": 1, \"trust_domain\": \"ztb.local\",\n"
    " \"settings\": {\"max_ttl\": 300, \"default_ttl\": 60, \"rate_limits\": {\n"
    "   \"per_agent\": {\"rate\": 10, \"burst\": 10, \"period\": 60},\n"
    "   \"per_action\": {\"rate\": 10, \"burst\": 10, \"period\": 60}}}, \"rules\": [\n"
    " {\"id\": \"gw\", \"effect\": \"allow\", \"agents\": [\"gw\", \"eater\"],\n"
    "  \"actions\": [\"ztb:introspect\"], \"audiences\": [\"payments\"], \"resources\": "
    "[\"**\"]},\n"
    " {\"id\": \"soc\", \"effect\": \"allow\", \"agents\": [\"soc\"],\n"
    "  \"actions\": [\"ztb:introspect\"], \"audiences\": [\"**\"], \"resources\": [\"**\"]},\n"
    " {\"id\": \"eat\", \"effect\": \"allow\", \"agents\": [\"eater\"],\n"
    "  \"actions\": [\"ztb:consume\"], \"audiences\": [\"payments\"], \"resources\": [\"**\"],\n"
    "  \"conditions\": {\"source_ip\": [\"10.0.0.0/8\"]}}]}";

static void test_caller_may(void **state)
{
    (void)state;
    int64_t now = time(NULL);
    policy_ip ten = {.family = 4, .addr = {10, 1, 2, 3}};
    policy_ip other = {.family = 4, .addr = {192, 168, 0, 1}};
    /* no policy loaded: nobody */
    assert_false(introspect_caller_may(&tb, "gw", "payments", 0, NULL, now));
    policy_diag d;
    policy_diag_init(&d);
    assert_int_equal(policy_holder_reload(tb.policy, access_policy, strlen(access_policy), &d),
                     ZTB_OK);
    policy_diag_free(&d);
    /* ztb:introspect on the audience; "**" for any */
    assert_true(introspect_caller_may(&tb, "gw", "payments", 0, NULL, now));
    assert_false(introspect_caller_may(&tb, "gw", "crm", 0, NULL, now));
    assert_false(introspect_caller_may(&tb, "nobody", "payments", 0, NULL, now));
    assert_true(introspect_caller_may(&tb, "soc", "crm", 0, NULL, now));
    assert_true(introspect_caller_may(&tb, "soc", "https://broker.unit.test", 0, NULL, now));
    /* consuming: the audience itself (name or SPIFFE ID), or ztb:consume */
    assert_false(introspect_caller_may(&tb, "gw", "payments", 1, NULL, now));
    assert_false(introspect_caller_may(&tb, "soc", "payments", 1, NULL, now));
    assert_true(introspect_caller_may(&tb, "payments", "payments", 1, NULL, now));
    assert_true(introspect_caller_may(&tb, "crm", "spiffe://ztb.local/agent/crm", 1, NULL, now));
    assert_false(introspect_caller_may(&tb, "crm", "spiffe://other.org/agent/crm", 1, NULL, now));
    assert_true(introspect_caller_may(&tb, "eater", "payments", 1, &ten, now));
    assert_false(introspect_caller_may(&tb, "eater", "payments", 1, &other, now));
    assert_false(
        introspect_caller_may(&tb, "eater", "payments", 1, NULL, now)); /* unknown: closed */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_caller_may),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
