/*
 * test_store_detect.c - the detectors' counters (events in a window, new audiences) against a real
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

#include "broker/store/store.h"
#include "broker/store/store_detect.h"
#include "store_fixture.h"

static void test_detectors(void **state)
{
    (void)state;
    int64_t n = 0;
    for (int i = 1; i <= 3; i++) {
        assert_int_equal(store_detect_count("noisy", "denials", 60, &n), ZTB_OK);
        assert_int_equal(n, i);
    }
    assert_true(cmd_int("TTL %s", "ztb:{noisy}:det:denials") <= 60);
    assert_int_equal(store_detect_count("Bad Name", "denials", 60, &n), ZTB_ERR_INVALID_ARG);

    int fire = 0;
    assert_int_equal(store_detect_audience("ghost", "crm", 0, &fire), ZTB_ERR_NOT_FOUND);
    assert_int_equal(store_agent_add("explorer", 1), ZTB_OK);
    /* during the learning period nothing is new */
    assert_int_equal(store_detect_audience("explorer", "crm", 1, &fire), ZTB_OK);
    assert_false(fire);
    sleep(2);
    assert_int_equal(store_detect_audience("explorer", "crm", 1, &fire), ZTB_OK);
    assert_false(fire); /* known */
    assert_int_equal(store_detect_audience("explorer", "payments", 1, &fire), ZTB_OK);
    assert_true(fire);
    assert_int_equal(store_detect_audience("explorer", "payments", 1, &fire), ZTB_OK);
    assert_false(fire);
}

/* Redis gone: UNAVAILABLE, nothing guessed. */
static void test_unavailable(void **state)
{
    (void)state;
    zh_redis_stop(&rd, 0);
    int64_t n = 0;
    int fire = 0;
    assert_int_equal(store_detect_count("noisy", "denials", 60, &n), ZTB_ERR_UNAVAILABLE);
    assert_int_equal(store_detect_audience("explorer", "crm", 1, &fire), ZTB_ERR_UNAVAILABLE);
    assert_false(fire);
    zh_redis_restart(&rd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_detectors),
        cmocka_unit_test(test_unavailable),
    };
    return cmocka_run_group_tests(tests, store_setup, store_teardown);
}
