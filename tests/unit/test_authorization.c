/*
 * test_authorization.c - the Authorization header (wire/authorization.c):
 * both schemes in any case, one or more spaces, token68 with its padding
 * only at the end; everything else read as no token at all.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "wire/authorization.h"

static void test_read(void **state)
{
    (void)state;
    const char *t = NULL;
    size_t n = 0;
    assert_int_equal(ztb_wire_authorization_read("Bearer abc.def-_~+/==", &t, &n),
                     ZTB_SCHEME_BEARER);
    assert_string_equal(t, "abc.def-_~+/==");
    assert_int_equal(n, 14);
    assert_int_equal(ztb_wire_authorization_read("bEaReR x", &t, &n), ZTB_SCHEME_BEARER);
    assert_int_equal(ztb_wire_authorization_read("dpop x.y.z", &t, &n), ZTB_SCHEME_DPOP);
    assert_string_equal(t, "x.y.z");
    /* RFC 9110 §11.4: 1*SP between scheme and token */
    assert_int_equal(ztb_wire_authorization_read("Bearer   x.y", &t, &n), ZTB_SCHEME_BEARER);
    assert_string_equal(t, "x.y");
    assert_int_equal(n, 3);
    assert_int_equal(ztb_wire_authorization_read("DPoP  x", NULL, NULL), ZTB_SCHEME_NONE);
}

static void test_malformed(void **state)
{
    (void)state;
    static const char *const bad[] = {
        NULL,
        "",
        "Bearer",
        "Bearer ",
        "Bearer   ",
        "Bearer x ",
        "Bearer x y",
        "Bearer\tx",
        "Bearer \tx",
        "Bearer x\r\nA",
        "Basic abc",
        "Bearerx",
        "DPoP",
        "DPoP ",
        "Bearer \"x\"",
        "Bearer x,y",
        "Bearer =x",
        "Bearer x=y",
        "Bearer x==.",
        "Bearer x\x7f",
        "Bearer caf\xc3\xa9",
        "Token x",
        " Bearer x",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        const char *t = "set";
        size_t n = 7;
        if (ztb_wire_authorization_read(bad[i], &t, &n) != ZTB_SCHEME_NONE || t != NULL || n != 0)
            fail_msg("read a token from header %zu (%s)", i, bad[i] ? bad[i] : "NULL");
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_read),
        cmocka_unit_test(test_malformed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
