/*
 * test_admin_roles.c - the admin API's role table: what only reads, what
 * writes, and that anything the table does not name writes (fail closed).
 * Every route of the real table is tried against the real read-only socket
 * in tests/integration/test_admin_access.c, with the callers' names.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "broker/admin/admin_roles.h"

static void test_reads(void **state)
{
    (void)state;
    static const char *const reads[] = {
        "/v1/agents",       "/v1/agents/bot",         "/v1/revocations", "/v1/signals",
        "/v1/signals/sig1", "/v1/signal-stats",       "/v1/keys",        "/v1/approvals",
        "/v1/approvers",    "/v1/policy/shadow/diff", "/metrics",        "/healthz",
        "/v1/inventory", /* docs/soc.md: the analyst's review list */
    };
    for (size_t i = 0; i < sizeof(reads) / sizeof(reads[0]); i++) {
        assert_int_equal(admin_route_writes("GET", reads[i]), 0);
        /* the same path with any other method writes */
        assert_int_equal(admin_route_writes("POST", reads[i]), 1);
        assert_int_equal(admin_route_writes("DELETE", reads[i]), 1);
        assert_int_equal(admin_route_writes("PUT", reads[i]), 1);
        assert_int_equal(admin_route_writes("get", reads[i]), 1);
    }
}

static void test_writes_and_unknowns(void **state)
{
    (void)state;
    assert_int_equal(admin_route_writes("POST", "/v1/quarantine"), 1);
    assert_int_equal(admin_route_writes("POST", "/v1/keys/rotate"), 1);
    assert_int_equal(admin_route_writes("POST", "/v1/policy/reload"), 1);
    assert_int_equal(admin_route_writes("POST", "/v1/approvals/a1/approve"), 1);
    /* not in the table: writes */
    assert_int_equal(admin_route_writes("GET", "/v1/quarantine"), 1);
    assert_int_equal(admin_route_writes("GET", "/v1/agent"), 1);
    assert_int_equal(admin_route_writes("GET", "/v1/keysx"), 1);
    assert_int_equal(admin_route_writes("GET", "/"), 1);
    assert_int_equal(admin_route_writes("GET", ""), 1);
    assert_int_equal(admin_route_writes(NULL, "/v1/agents"), 1);
    assert_int_equal(admin_route_writes("GET", NULL), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reads),
        cmocka_unit_test(test_writes_and_unknowns),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
