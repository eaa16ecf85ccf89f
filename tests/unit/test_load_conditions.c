/*
 * test_load_conditions.c - strict loading of the "conditions" of a rule: time windows, source
 * addresses, limits, delegation.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "load_fixture.h"

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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conditions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
