/*
 * test_load_fields.c - the loader's field helpers on their own: the key
 * check (a typo gets a suggestion, a stranger none), typed getters and
 * their ranges, strings without control characters, list sizes, and the id
 * and name alphabets. Every refusal lands in the diagnostics with the
 * field's path and counts as an error.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "policy/load_internal.h"
#include "policy_fixtures.h"

static policy_diag diag;
static struct ld L;

static int setup(void **state)
{
    (void)state;
    policy_diag_init(&diag);
    memset(&L, 0, sizeof(L));
    L.d = &diag;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    policy_diag_free(&diag);
    return 0;
}

/* The diagnostics so far contain want (and were counted as errors). */
static void saw(const char *want)
{
    char *m = fx_messages(&diag);
    if (strstr(m, want) == NULL || L.errors == 0)
        fail_msg("want \"%s\", got:\n%s", want, m);
    free(m);
}

static void test_check_keys(void **state)
{
    (void)state;
    static const char *const allowed[] = {"members", "description", NULL};
    json_t *o = fx_json("{\"members\": [], \"description\": \"d\"}");
    load_check_keys(&L, o, "group \"a\"", "", allowed);
    assert_int_equal(L.errors, 0);
    json_decref(o);
    o = fx_json("{\"memebers\": [], \"zzzzzz\": 1}");
    load_check_keys(&L, o, "group \"a\"", "", allowed);
    assert_int_equal(L.errors, 2);
    saw("unknown field \"memebers\" (did you mean \"members\"?)");
    char *m = fx_messages(&diag);
    assert_non_null(strstr(m, "unknown field \"zzzzzz\""));
    assert_null(strstr(m, "\"zzzzzz\" (did you mean"));
    free(m);
    json_decref(o);
    assert_string_equal(load_suggest("descripton", allowed), "description");
    assert_null(load_suggest("owner", allowed));
    assert_true(load_in_list("members", allowed));
    assert_false(load_in_list("member", allowed));
}

static void test_getters(void **state)
{
    (void)state;
    json_t *o = fx_json("{\"n\": 7, \"big\": 100000, \"neg\": -1, \"s\": \"x\", \"b\": true, "
                        "\"ctl\": \"a\\u0001b\", \"num\": \"7\"}");
    uint32_t u = 0;
    assert_true(load_get_u32(&L, o, "n", "settings", "", 1, 10, 1, &u));
    assert_int_equal(u, 7);
    assert_int_equal(L.errors, 0);
    assert_false(load_get_u32(&L, o, "big", "settings", "", 1, 86400, 1, &u));
    saw("settings: big: must be an integer from 1 to 86400");
    assert_false(load_get_u32(&L, o, "neg", "settings", "", 0, 10, 1, &u));
    assert_false(load_get_u32(&L, o, "num", "settings", "x", 0, 10, 1, &u));
    saw("x.num: must be an integer from 0 to 10");
    int before = L.errors;
    assert_false(load_get_u32(&L, o, "absent", "settings", "", 0, 10, 0, &u)); /* optional */
    assert_int_equal(L.errors, before);
    assert_false(load_get_u32(&L, o, "absent", "settings", "rate", 0, 10, 1, &u));
    saw("rate.absent: missing (required)");
    uint8_t b = 0;
    assert_true(load_get_bool(&L, o, "b", "rule", "", &b));
    assert_int_equal(b, 1);
    assert_false(load_get_bool(&L, o, "s", "rule", "", &b));
    saw("s: must be true or false");
    assert_string_equal(load_get_str(&L, o, "s", "rule", "", 8, 1), "x");
    assert_null(load_get_str(&L, o, "n", "rule", "", 8, 1));
    saw("n: must be a string");
    assert_null(load_get_str(&L, o, "ctl", "rule", "", 8, 1));
    saw("ctl: must be 1 to 8 characters without control characters");
    json_decref(o);
}

static void test_lists(void **state)
{
    (void)state;
    json_t *v = fx_json("[\"a\", \"b\", \"c\"]");
    assert_ptr_equal(load_want_list(&L, v, "rule", "agents", 3), v);
    assert_int_equal(L.errors, 0);
    assert_null(load_want_list(&L, v, "rule", "agents", 2));
    saw("agents: has 3 entries; at most 2 are allowed");
    json_decref(v);
    v = fx_json("[]");
    assert_null(load_want_list(&L, v, "rule", "actions", 2));
    saw("actions: must be a non-empty list");
    json_decref(v);
    const char *seen[] = {"a", "b"};
    assert_true(load_seen_before(seen, 2, "b"));
    assert_false(load_seen_before(seen, 1, "b"));
}

static void test_alphabets(void **state)
{
    (void)state;
    assert_true(load_valid_id("rule-1_a.b", 10));
    assert_false(load_valid_id("", 0));
    assert_false(load_valid_id("a b", 3));
    assert_false(load_valid_id("a/b", 3));
    assert_true(load_valid_name("billing-bot", 11, 128, 0));
    assert_false(load_valid_name("bot-*", 5, 128, 0));
    assert_true(load_valid_name("bot-*", 5, 128, 1));
    assert_false(load_valid_name(".", 1, 128, 0));
    assert_false(load_valid_name("..", 2, 128, 0));
    assert_false(load_valid_name("abc", 3, 2, 0));
    char buf[32], small[8];
    assert_string_equal(load_path(buf, sizeof(buf), "rate_limits", "burst"), "rate_limits.burst");
    assert_string_equal(load_path(buf, sizeof(buf), "", "burst"), "burst");
    /* a path too long is cut, never overflows */
    assert_true(strlen(load_path(small, sizeof(small), "a_very_long_prefix", "key")) <
                sizeof(small));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_check_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(test_getters, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lists, setup, teardown),
        cmocka_unit_test_setup_teardown(test_alphabets, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
