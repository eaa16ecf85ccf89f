/*
 * test_admin_approvals.c - who the broker records as the approver
 * (broker/admin/admin_approvals.c): the admin socket peer's user name, or
 * the sudo_user a root peer names, never a name a non-root peer claims.
 * The handlers themselves run in tests/integration/test_approvals.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "broker/admin/admin_approvals.h"

static void test_peer_name(void **state)
{
    (void)state;
    char who[65];
    const char *why = NULL;
    assert_true(admin_approver_name(0, NULL, who, sizeof(who), &why));
    assert_string_equal(who, "root");
    /* a uid with no user: nobody to record */
    assert_false(admin_approver_name(2147483000L, NULL, who, sizeof(who), &why));
    assert_non_null(why);
    assert_string_equal(who, "");
    /* no peer credentials */
    assert_false(admin_approver_name(-1, NULL, who, sizeof(who), &why));
}

static void test_sudo_user(void **state)
{
    (void)state;
    char who[65];
    const char *why = NULL;
    assert_true(admin_approver_name(0, "alice", who, sizeof(who), &why));
    assert_string_equal(who, "alice");
    /* a non-root peer cannot speak for someone else */
    assert_false(admin_approver_name(65534, "alice", who, sizeof(who), &why));
    assert_non_null(strstr(why, "only from root"));
    assert_string_equal(who, "");
    /* names that would break the approvers list or a key */
    assert_false(admin_approver_name(0, "alice,bob", who, sizeof(who), &why));
    assert_false(admin_approver_name(0, "", who, sizeof(who), &why));
    assert_false(admin_approver_name(0, "a b", who, sizeof(who), &why));
    assert_false(admin_approver_name(0, "-x", who, sizeof(who), &why));
    char small[4];
    assert_false(admin_approver_name(0, "alice", small, sizeof(small), &why));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_peer_name),
        cmocka_unit_test(test_sudo_user),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
