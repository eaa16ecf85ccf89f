/* test_json_gate.c - the gate in front of jansson: size, NUL, depth, duplicates. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include <jansson.h>

#include "common/json_gate.h"

static int ok(const char *s, int max)
{
    return ztb_json_depth_ok(s, strlen(s), max);
}

static void test_depth(void **state)
{
    (void)state;
    assert_true(ok("{\"a\":[1,{\"b\":2}]}", 3));
    assert_false(ok("{\"a\":[1,{\"b\":2}]}", 2));
    assert_true(ok("", 0));
    assert_true(ok("\"[[[[[[\"", 1));     /* brackets in a string */
    assert_true(ok("[\"\\\"[[[[\"]", 1)); /* an escaped quote does not end it */
    assert_false(ok("[[[[[[[[[[", 9));    /* unbalanced, still counted */
    assert_true(ok("]]]]]][", 1));
    char deep[2001];
    memset(deep, '[', 2000);
    deep[2000] = '\0';
    assert_false(ok(deep, 16));
    assert_true(ztb_json_depth_ok("[\0[", 3, 2)); /* NUL is just a byte here */
}

/* The gate: each check, in order, and its words. */
static void test_gate_load(void **state)
{
    (void)state;
    json_t *j = NULL;
    char why[200];
    assert_int_equal(ztb_json_gate_load("{\"a\":[1]}", 9, 100, 4, 0, &j, why, sizeof(why)), ZTB_OK);
    assert_true(json_is_object(j));
    assert_string_equal(why, "");
    json_decref(j);
    /* size first */
    assert_int_equal(ztb_json_gate_load("{\"a\":[1]}", 9, 8, 4, 0, &j, why, sizeof(why)),
                     ZTB_ERR_TOO_LARGE);
    assert_null(j);
    assert_string_equal(why, "JSON text too large (at most 8 bytes)");
    /* a NUL byte, even where jansson would stop reading */
    assert_int_equal(ztb_json_gate_load("[1]\0x", 5, 100, 4, 0, &j, why, sizeof(why)),
                     ZTB_ERR_JSON);
    assert_string_equal(why, "JSON text contains a NUL byte");
    assert_int_equal(ztb_json_gate_load("{\"a\":1\0}", 8, 100, 4, 0, &j, why, sizeof(why)),
                     ZTB_ERR_JSON);
    /* depth */
    assert_int_equal(ztb_json_gate_load("[[[[[1]]]]]", 11, 100, 4, 0, &j, why, sizeof(why)),
                     ZTB_ERR_TOO_LARGE);
    assert_string_equal(why, "JSON nested too deeply (at most 4 levels)");
    assert_int_equal(ztb_json_gate_load("[[[[1]]]]", 9, 100, 4, 0, &j, why, sizeof(why)), ZTB_OK);
    json_decref(j);
    /* duplicate names, also after unescaping, whatever the caller's flags */
    assert_int_equal(
        ztb_json_gate_load("{\"a\":1,\"\\u0061\":2}", 18, 100, 4, 0, &j, why, sizeof(why)),
        ZTB_ERR_JSON);
    assert_non_null(strstr(why, "duplicate"));
    /* jansson's own verdict, with where */
    assert_int_equal(ztb_json_gate_load("{\"a\":}", 6, 100, 4, 0, &j, why, sizeof(why)),
                     ZTB_ERR_JSON);
    assert_non_null(strstr(why, "invalid JSON at 1:"));
    /* decoding flags pass through; no reason wanted is fine */
    assert_int_equal(ztb_json_gate_load("7", 1, 100, 4, JSON_DECODE_ANY, &j, NULL, 0), ZTB_OK);
    assert_int_equal(json_integer_value(j), 7);
    json_decref(j);
    assert_int_equal(ztb_json_gate_load("7", 1, 100, 4, 0, &j, NULL, 0), ZTB_ERR_JSON);
    assert_int_equal(ztb_json_gate_load(NULL, 1, 100, 4, 0, &j, NULL, 0), ZTB_ERR_INVALID_ARG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_depth),
        cmocka_unit_test(test_gate_load),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
