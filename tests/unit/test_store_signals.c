/*
 * test_store_signals.c - signal replay marks and the ztb:signals stream against a real
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

#include "broker/store/store_signals.h"
#include "store_fixture.h"

static void test_signal_records(void **state)
{
    (void)state;
    assert_int_equal(store_signal_known("soc", "s-1"), ZTB_OK);
    assert_int_equal(store_signal_seen("soc", "s-1", 60), ZTB_OK);
    assert_int_equal(store_signal_known("soc", "s-1"), ZTB_ERR_REPLAY);
    assert_int_equal(store_signal_seen("soc", "s-1", 60), ZTB_ERR_REPLAY);
    assert_int_equal(store_signal_known("siem", "s-1"), ZTB_OK); /* per source */
    assert_int_equal(store_signal_record("{\"id\":\"sig_a\"}"), ZTB_OK);
    assert_int_equal(store_signal_record("{\"id\":\"sig_b\"}"), ZTB_OK);
    json_t *list = NULL;
    assert_int_equal(store_signal_list(10, &list), ZTB_OK);
    assert_int_equal(json_array_size(list), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(list, 0), "id")), "sig_b");
    json_decref(list);
    assert_int_equal(store_signal_list(1, &list), ZTB_OK);
    assert_int_equal(json_array_size(list), 1);
    json_decref(list);
}

/* Observe mode: per source, and per detector only for the broker's own signals. */
static void test_modes(void **state)
{
    (void)state;
    int obs = 1;
    assert_int_equal(store_signal_mode_get("soc", "token_replay", 0, &obs), ZTB_OK);
    assert_int_equal(obs, 0); /* enforce unless said otherwise */
    assert_int_equal(store_signal_mode_set("source:soc", 1), ZTB_OK);
    assert_int_equal(store_signal_mode_set("detector:policy_violation", 1), ZTB_OK);
    assert_int_equal(store_signal_mode_get("soc", "token_replay", 0, &obs), ZTB_OK);
    assert_int_equal(obs, 1);
    assert_int_equal(store_signal_mode_get("siem", "token_replay", 0, &obs), ZTB_OK);
    assert_int_equal(obs, 0);
    /* a source naming a detector's type is not the detector */
    assert_int_equal(store_signal_mode_get("siem", "policy_violation", 0, &obs), ZTB_OK);
    assert_int_equal(obs, 0);
    assert_int_equal(store_signal_mode_get("ztb-broker", "policy_violation", 1, &obs), ZTB_OK);
    assert_int_equal(obs, 1);
    assert_int_equal(store_signal_mode_get("ztb-broker", "rate_limit_burst", 1, &obs), ZTB_OK);
    assert_int_equal(obs, 0);
    json_t *m = NULL;
    assert_int_equal(store_signal_modes(&m), ZTB_OK);
    assert_int_equal(json_object_size(m), 2);
    assert_string_equal(json_string_value(json_object_get(m, "source:soc")), "observe");
    json_decref(m);
    assert_int_equal(store_signal_mode_set("source:soc", 0), ZTB_OK);
    assert_int_equal(store_signal_mode_get("soc", "token_replay", 0, &obs), ZTB_OK);
    assert_int_equal(obs, 0);
    assert_int_equal(store_signal_mode_set(NULL, 1), ZTB_ERR_INVALID_ARG);
}

/* Redis gone: UNAVAILABLE, nothing guessed. */
static void test_unavailable(void **state)
{
    (void)state;
    zh_redis_stop(&rd, 0);
    json_t *list = NULL;
    assert_int_equal(store_signal_seen("soc", "s-9", 60), ZTB_ERR_UNAVAILABLE);
    assert_int_equal(store_signal_known("soc", "s-9"), ZTB_ERR_UNAVAILABLE);
    assert_int_equal(store_signal_list(10, &list), ZTB_ERR_UNAVAILABLE);
    assert_null(list);
    int obs = 0;
    assert_int_equal(store_signal_mode_get("soc", "x", 0, &obs), ZTB_ERR_UNAVAILABLE);
    zh_redis_restart(&rd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_signal_records),
        cmocka_unit_test(test_modes),
        cmocka_unit_test(test_unavailable),
    };
    return cmocka_run_group_tests(tests, store_setup, store_teardown);
}
