/*
 * test_version.c - ztb_version() reports the version the build was made as,
 * and <ztb/version.h>'s macros say the same (both from CMake's project
 * version, passed here as ZTB_EXPECTED_VERSION).
 */
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

static void test_version_macros(void **state)
{
    (void)state;
    char v[32];
    snprintf(v, sizeof(v), "%d.%d.%d", ZTB_VERSION_MAJOR, ZTB_VERSION_MINOR, ZTB_VERSION_PATCH);
    assert_string_equal(v, ZTB_VERSION_STRING);
    assert_string_equal(ZTB_VERSION_STRING, ZTB_EXPECTED_VERSION);
    /* the library built with this header reports the same version */
    assert_string_equal(ztb_version(), ZTB_VERSION_STRING);
    /* the number orders releases */
    assert_int_equal(ZTB_VERSION_NUM,
                     (ZTB_VERSION_MAJOR << 16) | (ZTB_VERSION_MINOR << 8) | ZTB_VERSION_PATCH);
    assert_true(ZTB_VERSION_ENCODE(1, 0, 0) > ZTB_VERSION_ENCODE(0, 255, 255));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_version_shape),
        cmocka_unit_test(test_version_macros),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
