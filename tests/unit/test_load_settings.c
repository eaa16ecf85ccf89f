/*
 * test_load_settings.c - strict loading of the "settings" section: required fields, ranges,
 * default_ttl within max_ttl, bindings and rate limits.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "load_fixture.h"

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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_settings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
