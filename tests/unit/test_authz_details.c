/* test_authz_details.c - authorization_details checked strictly (broker/tokens/authz_details.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "broker/tokens/authz_details.h"

static char why[256];

static int ok(const char *s, const char *resource)
{
    why[0] = '\0';
    return authz_details_check(s, strlen(s), "payments:refund", "payments", resource, why,
                               sizeof(why));
}

static void test_accepts(void **state)
{
    (void)state;
    assert_true(ok("[{\"type\":\"payment\"}]", NULL));
    assert_true(ok("[{\"type\":\"payment\",\"amount\":12.5,\"actions\":[\"payments:refund\"],"
                   "\"locations\":[\"payments\"],\"identifier\":\"orders/1\"}]",
                   "orders/1"));
    assert_true(ok(" [ {\"identifier\":\"orders/2\",\"type\":\"p\"} ] ", NULL));
}

static void test_refuses_the_shape(void **state)
{
    (void)state;
    assert_false(ok("[1]", NULL));
    assert_non_null(strstr(why, "with one object"));
    assert_false(ok("{\"type\":\"p\"}", NULL));
    assert_false(ok("[{\"type\":\"p\"},{\"type\":\"q\"}]", NULL));
    assert_false(ok("[{\"type\":\"has space\"}]", NULL));
    assert_false(ok("[{\"type\":1}]", NULL));
    char big[128];
    snprintf(big, sizeof(big), "[{\"type\":\"%065d\"}]", 0);
    assert_false(ok(big, NULL));
    assert_false(ok("[{\"type\":\"p\",\"actions\":[\"payments:read\"]}]", NULL));
    assert_non_null(strstr(why, "actions"));
    assert_false(ok("[{\"type\":\"p\",\"actions\":\"payments:refund\"}]", NULL));
    assert_false(ok("[{\"type\":\"p\",\"locations\":[\"payments\",\"x\"]}]", NULL));
    assert_non_null(strstr(why, "locations"));
    assert_false(ok("[{\"type\":\"p\",\"identifier\":\"orders/1\"}]", "orders/2"));
    assert_non_null(strstr(why, "identifier"));
    assert_false(ok("[{\"type\":\"p\",\"identifier\":7}]", NULL));
}

static void test_refuses_what_is_not_strict_json(void **state)
{
    (void)state;
    assert_false(ok("[{\"type\":\"p\",\"\\u0074ype\":\"q\"}]", NULL));
    assert_non_null(strstr(why, "duplicate member name"));
    assert_false(ok("[{\"type\":\"p\",\"n\":01}]", NULL));
    assert_non_null(strstr(why, "not strict JSON"));
    assert_false(ok("[{\"type\":\"p\",\"s\":\"\\u0000\"}]", NULL));
    assert_non_null(strstr(why, "\\u0000"));
    assert_false(ok("[{\"type\":\"p\"}] []", NULL));
    assert_non_null(strstr(why, "trailing bytes"));
    /* AUTHZ_DETAILS_DEPTH levels fit; one more does not */
    char doc[256];
    int o = snprintf(doc, sizeof(doc), "[{\"type\":\"p\",\"x\":");
    for (int i = 0; i < AUTHZ_DETAILS_DEPTH - 2; i++)
        doc[o++] = '[';
    for (int i = 0; i < AUTHZ_DETAILS_DEPTH - 2; i++)
        doc[o++] = ']';
    snprintf(doc + o, sizeof(doc) - (size_t)o, "}]");
    assert_true(ok(doc, NULL));
    o = snprintf(doc, sizeof(doc), "[{\"type\":\"p\",\"x\":");
    for (int i = 0; i < AUTHZ_DETAILS_DEPTH - 1; i++)
        doc[o++] = '[';
    for (int i = 0; i < AUTHZ_DETAILS_DEPTH - 1; i++)
        doc[o++] = ']';
    snprintf(doc + o, sizeof(doc) - (size_t)o, "}]");
    assert_false(ok(doc, NULL));
    assert_non_null(strstr(why, "nested too deeply"));
}

static void test_too_large(void **state)
{
    (void)state;
    static char doc[AUTHZ_DETAILS_MAX + 64];
    int o = snprintf(doc, sizeof(doc), "[{\"type\":\"p\",\"pad\":\"");
    memset(doc + o, 'a', AUTHZ_DETAILS_MAX);
    snprintf(doc + o + AUTHZ_DETAILS_MAX, sizeof(doc) - (size_t)o - AUTHZ_DETAILS_MAX, "\"}]");
    assert_false(ok(doc, NULL));
    assert_string_equal(why, "authorization_details too large");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accepts),
        cmocka_unit_test(test_refuses_the_shape),
        cmocka_unit_test(test_refuses_what_is_not_strict_json),
        cmocka_unit_test(test_too_large),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
