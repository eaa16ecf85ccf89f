/* test_json_depth.c - the nesting bound, with brackets inside strings. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "common/json_depth.h"

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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_depth),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
