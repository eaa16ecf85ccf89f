/*
 * test_store_actions.c - responses waiting for an operator (filed, decided once) against a real
 * redis-server.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "broker/store/store_actions.h"
#include "store_fixture.h"

static void test_actions(void **state)
{
    (void)state;
    struct store_action a;
    memset(&a, 0, sizeof(a));
    snprintf(a.entry, sizeof(a.entry), "revoke-all");
    snprintf(a.response, sizeof(a.response), "revoke_all");
    snprintf(a.target_kind, sizeof(a.target_kind), "agent");
    snprintf(a.target, sizeof(a.target), "bot");
    snprintf(a.signals, sizeof(a.signals), "sig_1");
    int created = 0;
    assert_int_equal(store_action_create(&a, 1000, &created), ZTB_OK);
    assert_true(created);
    assert_int_equal(strncmp(a.id, "act_", 4), 0);
    char first[32];
    snprintf(first, sizeof(first), "%s", a.id);
    /* the same (entry, target) again: the pending one grows */
    snprintf(a.signals, sizeof(a.signals), "sig_2");
    assert_int_equal(store_action_create(&a, 1001, &created), ZTB_OK);
    assert_false(created);
    assert_string_equal(a.id, first);

    json_t *list = NULL;
    assert_int_equal(store_action_list(10, &list), ZTB_OK);
    assert_int_equal(json_array_size(list), 1);
    json_t *o = json_array_get(list, 0);
    assert_string_equal(json_string_value(json_object_get(o, "signals")), "sig_1,sig_2");
    assert_string_equal(json_string_value(json_object_get(o, "status")), "pending");
    json_decref(list);

    char st[16];
    assert_int_equal(store_action_status(first, st), ZTB_OK);
    assert_string_equal(st, "pending");
    assert_int_equal(store_action_status("act_nope", st), ZTB_ERR_NOT_FOUND);
    assert_int_equal(store_action_status("../x", st), ZTB_ERR_NOT_FOUND);
    struct store_action d;
    assert_int_equal(store_action_decide(first, 1, "operator:uid=0", 1002, &d), ZTB_OK);
    assert_string_equal(d.status, "confirmed");
    assert_int_equal(store_action_status(first, st), ZTB_OK);
    assert_string_equal(st, "confirmed");
    assert_string_equal(d.target, "bot");
    assert_string_equal(d.response, "revoke_all");
    /* decided once only */
    assert_int_equal(store_action_decide(first, 1, "operator:uid=0", 1003, &d), ZTB_ERR_STATE);
    assert_int_equal(store_action_decide(first, 0, "operator:uid=0", 1003, &d), ZTB_ERR_STATE);
    assert_int_equal(store_action_set_status(first, "failed"), ZTB_OK);
    /* a failed one may be confirmed again */
    assert_int_equal(store_action_decide(first, 1, "operator:uid=0", 1004, &d), ZTB_OK);
    assert_int_equal(store_action_decide("act_nope", 1, "x", 1, &d), ZTB_ERR_NOT_FOUND);
    /* once decided, the next signal files a new action */
    assert_int_equal(store_action_create(&a, 1005, &created), ZTB_OK);
    assert_true(created);
    assert_string_not_equal(a.id, first);
    assert_int_equal(store_action_decide(a.id, 0, "operator:uid=0", 1006, &d), ZTB_OK);
    assert_string_equal(d.status, "rejected");
}

/* Redis gone: UNAVAILABLE, nothing guessed. */
static void test_unavailable(void **state)
{
    (void)state;
    zh_redis_stop(&rd, 0);
    struct store_action a;
    memset(&a, 0, sizeof(a));
    snprintf(a.entry, sizeof(a.entry), "e");
    snprintf(a.response, sizeof(a.response), "quarantine");
    snprintf(a.target_kind, sizeof(a.target_kind), "agent");
    snprintf(a.target, sizeof(a.target), "bot");
    int created = 0;
    assert_int_equal(store_action_create(&a, 1, &created), ZTB_ERR_UNAVAILABLE);
    assert_false(created);
    zh_redis_restart(&rd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_actions),
        cmocka_unit_test(test_unavailable),
    };
    return cmocka_run_group_tests(tests, store_setup, store_teardown);
}
