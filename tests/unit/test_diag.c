/* test_diag.c - problem lists: formatting, quoting, limits, hostile text. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "policy/diag.h"

static void test_add_and_format(void **state)
{
    (void)state;
    policy_diag d;
    policy_diag_init(&d);
    policy_diag_add(&d, 3, 14, NULL, NULL, "'[' or '{' expected near '%s'", "x");
    policy_diag_add(&d, 0, 0, "rule \"refund\"", "obligations.ttl", "%d exceeds %d", 900, 300);
    policy_diag_add(&d, 0, 0, "settings", NULL, "must be an object");
    assert_int_equal(policy_diag_count(&d), 3);
    ztb_buf b;
    ztb_buf_init(&b, 4096);
    policy_diag_format(&d.msgs[0], &b);
    assert_string_equal(ztb_buf_cstr(&b), "3:14: '[' or '{' expected near 'x'");
    ztb_buf_reset(&b);
    policy_diag_format(&d.msgs[1], &b);
    assert_string_equal(ztb_buf_cstr(&b), "rule \"refund\": obligations.ttl: 900 exceeds 300");
    ztb_buf_reset(&b);
    policy_diag_format(&d.msgs[2], &b);
    assert_string_equal(ztb_buf_cstr(&b), "settings: must be an object");
    ztb_buf_free(&b);
    policy_diag_free(&d);
    assert_int_equal(policy_diag_count(&d), 0);
}

static void test_limit_counts_dropped(void **state)
{
    (void)state;
    policy_diag d;
    policy_diag_init(&d);
    for (int i = 0; i < POLICY_DIAG_MAX + 25; i++)
        policy_diag_add(&d, 0, 0, "x", NULL, "problem %d", i);
    assert_int_equal(d.n, POLICY_DIAG_MAX);
    assert_int_equal(d.dropped, 25);
    assert_int_equal(policy_diag_count(&d), POLICY_DIAG_MAX + 25);
    assert_string_equal(d.msgs[0].text, "problem 0");
    policy_diag_free(&d);
}

static void test_control_bytes_never_reach_messages(void **state)
{
    (void)state;
    policy_diag d;
    policy_diag_init(&d);
    policy_diag_add(&d, 1, 1, NULL, NULL, "near '%s'", "\x1b[31m\n\xff");
    for (const char *c = d.msgs[0].text; *c; c++)
        assert_true((unsigned char)*c >= 0x20 && (unsigned char)*c < 0x7f);
    policy_diag_free(&d);
}

static void test_quote(void **state)
{
    (void)state;
    char q[96];
    assert_string_equal(policy_diag_quote(q, sizeof(q), "abc", 3), "\"abc\"");
    assert_string_equal(policy_diag_quote(q, sizeof(q), "a\"b\n", 4), "\"a\\\"b\\n\"");
    assert_string_equal(policy_diag_quote(q, sizeof(q), NULL, 0), "\"\"");
    char longs[100];
    memset(longs, 'x', sizeof(longs));
    policy_diag_quote(q, sizeof(q), longs, sizeof(longs));
    assert_int_equal(strlen(q), 64 + 5); /* quote + 64 + ...quote */
    assert_memory_equal(q + 65, "...\"", 4);
    /* never cuts inside a UTF-8 sequence */
    char u[80];
    memset(u, 'a', 63);
    memcpy(u + 63, "\xc3\xa9zzzz", 6);
    policy_diag_quote(q, sizeof(q), u, 69);
    assert_non_null(strstr(q, "a...\""));
    /* too small a buffer gives a marker, not half an escape */
    char tiny[8];
    policy_diag_quote(tiny, sizeof(tiny), "\"\"\"\"\"\"", 6);
    assert_string_equal(tiny, "\"...\"");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_add_and_format),
        cmocka_unit_test(test_limit_counts_dropped),
        cmocka_unit_test(test_control_bytes_never_reach_messages),
        cmocka_unit_test(test_quote),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
