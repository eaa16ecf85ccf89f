/*
 * test_store_quorum.c - dual verification (distinct sources within a window) against a real
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

#include "broker/store/store_quorum.h"
#include "store_fixture.h"

static void test_dual_count(void **state)
{
    (void)state;
    unsigned have;
    int fired;
    char ids[128];
    assert_int_equal(store_dual_count("agent", "bot", "q2", "soc", "sig1", 60, 2, &have, &fired,
                                      ids, sizeof(ids)),
                     ZTB_OK);
    assert_int_equal(have, 1);
    assert_false(fired);
    assert_string_equal(ids, "sig1");
    /* the same source again: not independent */
    assert_int_equal(store_dual_count("agent", "bot", "q2", "soc", "sig2", 60, 2, &have, &fired,
                                      ids, sizeof(ids)),
                     ZTB_OK);
    assert_int_equal(have, 1);
    assert_false(fired);
    assert_string_equal(ids, "sig2");
    assert_true(cmd_int("TTL %s", "ztb:{bot}:dual:q2") <= 60);
    /* another target or entry counts apart */
    assert_int_equal(store_dual_count("agent", "bot2", "q2", "siem", "sig3", 60, 2, &have, &fired,
                                      ids, sizeof(ids)),
                     ZTB_OK);
    assert_int_equal(have, 1);
    /* a second source: the quorum fires once, and the count starts over */
    assert_int_equal(store_dual_count("agent", "bot", "q2", "siem", "sig4", 60, 2, &have, &fired,
                                      ids, sizeof(ids)),
                     ZTB_OK);
    assert_int_equal(have, 2);
    assert_true(fired);
    assert_true(strstr(ids, "sig2") != NULL && strstr(ids, "sig4") != NULL);
    assert_int_equal(cmd_int("EXISTS %s", "ztb:{bot}:dual:q2"), 0);
    /* a report outside the window does not count */
    assert_int_equal(store_dual_count("audience", "crm", "k", "soc", "sig5", 1, 2, &have, &fired,
                                      ids, sizeof(ids)),
                     ZTB_OK);
    sleep(2);
    assert_int_equal(store_dual_count("audience", "crm", "k", "siem", "sig6", 1, 2, &have, &fired,
                                      ids, sizeof(ids)),
                     ZTB_OK);
    assert_int_equal(have, 1);
    assert_false(fired);
    assert_string_equal(ids, "sig6");
}

/* Redis gone: UNAVAILABLE, nothing guessed. */
static void test_unavailable(void **state)
{
    (void)state;
    zh_redis_stop(&rd, 0);
    unsigned have = 0;
    int fired = 0;
    char ids[64];
    assert_int_equal(store_dual_count("agent", "bot", "q9", "soc", "sig1", 60, 2, &have, &fired,
                                      ids, sizeof(ids)),
                     ZTB_ERR_UNAVAILABLE);
    assert_false(fired);
    zh_redis_restart(&rd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dual_count),
        cmocka_unit_test(test_unavailable),
    };
    return cmocka_run_group_tests(tests, store_setup, store_teardown);
}
