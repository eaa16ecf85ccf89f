/* test_version.c - ztb_version() reports the version the build was made as. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include <ztb/ztb.h>

static void test_version_shape(void **state)
{
    (void)state;
    const char *v = ztb_version();
    assert_non_null(v);
    int major, minor, patch;
    char extra;
    assert_int_equal(sscanf(v, "%d.%d.%d%c", &major, &minor, &patch, &extra), 3);
    assert_true(major >= 0 && minor >= 0 && patch >= 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_version_shape),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
