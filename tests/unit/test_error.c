/* test_error.c - every code has a name and text; numbers never move. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include <ztb/error.h>

/* The ABI: if one of these fails, a number moved. */
static void test_stable_numbers(void **state)
{
    (void)state;
    assert_int_equal(ZTB_OK, 0);
    assert_int_equal(ZTB_ERR_NOMEM, 1);
    assert_int_equal(ZTB_ERR_BASE64, 6);
    assert_int_equal(ZTB_ERR_UNSUPPORTED, 17);
    assert_int_equal(ZTB_ERR_AUDIT_UNAVAILABLE, 18);
    assert_int_equal(ZTB_ERR_JWS_FORMAT, 100);
    assert_int_equal(ZTB_ERR_SIGNATURE, 106);
    assert_int_equal(ZTB_ERR_PASSPHRASE, 110);
    assert_int_equal(ZTB_ERR_TYP, 200);
    assert_int_equal(ZTB_ERR_REVOCATION_STALE, 217);
    assert_int_equal(ZTB_ERR_SINGLE_USE, 218);
    assert_int_equal(ZTB_ERR_HTTP, 300);
    assert_int_equal(ZTB_ERR_INVALID_SCOPE, 307);
    assert_int_equal(ZTB_ERR_APPROVAL_PENDING, 308);
    assert_int_equal(ZTB_ERR_APPROVAL_DENIED, 309);
    assert_int_equal(ZTB_ERR_APPROVAL_EXPIRED, 310);
    assert_int_equal(ZTB_ERR_CSR, 400);
    assert_int_equal(ZTB_ERR_JOIN_TOKEN, 404);
    assert_int_equal(ZTB_ERR_POLICY, 500);
}

/* Every number in the ranges that has a name has text, and names are unique. */
static void test_every_code_described(void **state)
{
    (void)state;
    const char *seen[1000] = {0};
    int named = 0;
    for (int i = 0; i < 1000; i++) {
        const char *name = ztb_err_name((ztb_err)i);
        const char *text = ztb_strerror((ztb_err)i);
        assert_non_null(name);
        assert_non_null(text);
        if (strcmp(name, "UNKNOWN") == 0) {
            assert_string_equal(text, "unknown error");
            continue;
        }
        assert_string_not_equal(text, "unknown error");
        for (int j = 0; j < named; j++)
            assert_string_not_equal(seen[j], name);
        seen[named++] = name;
    }
    /* at least every code declared in error.h (count kept in step by hand) */
    assert_int_equal(named, 66);
}

static void test_unknown_and_hostile_numbers(void **state)
{
    (void)state;
    assert_string_equal(ztb_strerror((ztb_err)-1), "unknown error");
    assert_string_equal(ztb_strerror((ztb_err)99), "unknown error");
    assert_string_equal(ztb_strerror((ztb_err)0x7fffffff), "unknown error");
    assert_string_equal(ztb_err_name((ztb_err)-12345), "UNKNOWN");
    assert_string_equal(ztb_strerror(ZTB_OK), "success");
    assert_string_equal(ztb_err_name(ZTB_ERR_SIGNATURE), "SIGNATURE");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stable_numbers),
        cmocka_unit_test(test_every_code_described),
        cmocka_unit_test(test_unknown_and_hostile_numbers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
