/*
 * test_unknown_report.c - the verifiers' reports of unknown callers
 * (wire/unknown_report.c): the encoder writes exactly the documented bytes,
 * the decoder reads them back, and every malformed or out-of-bounds report
 * is refused with its code.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "wire/unknown_report.h"

static ztb_err parse(const char *s, struct unknown_report *r)
{
    return unknown_report_parse(s, strlen(s), r);
}

static void test_round_trip(void **state)
{
    (void)state;
    struct unknown_report r;
    memset(&r, 0, sizeof(r));
    snprintf(r.gateway, sizeof(r.gateway), "pay\"ments");
    r.window_s = 10;
    r.n = 2;
    r.c[0] = (struct unknown_client){UNKNOWN_NO_TOKEN, "10.9.8.7", 3};
    r.c[1] = (struct unknown_client){UNKNOWN_FOREIGN_TOKEN, "_other", 12};
    char mem[1024];
    ztb_buf b;
    ztb_buf_init_fixed(&b, mem, sizeof(mem));
    assert_int_equal(unknown_report_write(&r, &b), ZTB_OK);
    assert_true(b.len < sizeof(mem));
    mem[b.len] = '\0';
    assert_string_equal(mem, "{\"v\":1,\"gateway\":\"pay\\\"ments\",\"window\":10,\"clients\":"
                             "[{\"reason\":\"no_token\",\"source\":\"10.9.8.7\",\"count\":3},"
                             "{\"reason\":\"foreign_token\",\"source\":\"_other\","
                             "\"count\":12}]}");
    struct unknown_report back;
    assert_int_equal(unknown_report_parse(mem, b.len, &back), ZTB_OK);
    assert_string_equal(back.gateway, "pay\"ments");
    assert_int_equal(back.window_s, 10);
    assert_int_equal(back.n, 2);
    assert_int_equal(back.c[0].reason, UNKNOWN_NO_TOKEN);
    assert_string_equal(back.c[0].source, "10.9.8.7");
    assert_int_equal(back.c[0].count, 3);
    assert_int_equal(back.c[1].reason, UNKNOWN_FOREIGN_TOKEN);
    assert_string_equal(back.c[1].source, "_other");
    assert_int_equal(back.c[1].count, 12);
    /* unknown members are skipped; IPv6 sources are labels */
    assert_int_equal(parse("{\"v\":1,\"gateway\":\"crm\",\"x\":[1,{}],\"clients\":[{\"reason\":"
                           "\"no_token\",\"source\":\"2001:db8::7\",\"count\":1,\"y\":null}]}",
                           &back),
                     ZTB_OK);
    assert_string_equal(back.c[0].source, "2001:db8::7");
}

static void test_refusals(void **state)
{
    (void)state;
    struct unknown_report r;
    struct {
        const char *s;
        ztb_err want;
    } cases[] = {
        {"{\"v\":2,\"gateway\":\"g\",\"clients\":[]}", ZTB_ERR_UNSUPPORTED},
        {"{\"gateway\":\"g\",\"v\":1,\"clients\":[]}", ZTB_ERR_MALFORMED},
        {"{\"v\":1,\"clients\":[]}", ZTB_ERR_MALFORMED},
        {"{\"v\":1,\"gateway\":\"g\"}", ZTB_ERR_MALFORMED},
        {"{\"v\":1,\"gateway\":\"\",\"clients\":[]}", ZTB_ERR_MALFORMED},
        {"{\"v\":1,\"gateway\":\"a\\nb\",\"clients\":[]}", ZTB_ERR_MALFORMED},
        {"{\"v\":1,\"gateway\":\"g\",\"window\":-1,\"clients\":[]}", ZTB_ERR_MALFORMED},
        {"{\"v\":1,\"gateway\":\"g\",\"clients\":[{\"reason\":\"stolen\",\"source\":\"a\","
         "\"count\":1}]}",
         ZTB_ERR_MALFORMED},
        {"{\"v\":1,\"gateway\":\"g\",\"clients\":[{\"reason\":\"no_token\",\"source\":\"a b\","
         "\"count\":1}]}",
         ZTB_ERR_MALFORMED},
        {"{\"v\":1,\"gateway\":\"g\",\"clients\":[{\"reason\":\"no_token\",\"source\":\"a|b\","
         "\"count\":1}]}",
         ZTB_ERR_MALFORMED},
        {"{\"v\":1,\"gateway\":\"g\",\"clients\":[{\"reason\":\"no_token\",\"source\":\"a\","
         "\"count\":0}]}",
         ZTB_ERR_MALFORMED},
        {"{\"v\":1,\"gateway\":\"g\",\"clients\":[{\"reason\":\"no_token\",\"source\":\"a\","
         "\"count\":1000000001}]}",
         ZTB_ERR_MALFORMED},
        {"{\"v\":1,\"gateway\":\"g\",\"clients\":[{\"reason\":\"no_token\",\"source\":\"a\"}]}",
         ZTB_ERR_MALFORMED},
        {"{\"v\":1,\"gateway\":\"g\",\"clients\":[{\"reason\":\"no_token\",\"source\":\"a\","
         "\"count\":1.5}]}",
         ZTB_ERR_MALFORMED},
        {"{\"v\":1,\"gateway\":\"g\",\"clients\":[]} x", ZTB_ERR_JSON},
        {"{\"v\":1,\"v\":1,\"gateway\":\"g\",\"clients\":[]}", ZTB_ERR_JSON},
        {"[]", ZTB_ERR_JSON},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        ztb_err rv = parse(cases[i].s, &r);
        if (rv != cases[i].want)
            fail_msg("case %zu (%s): %s", i, cases[i].s, ztb_strerror(rv));
    }
    /* a source label longer than 64 bytes */
    char big[300];
    snprintf(
        big, sizeof(big),
        "{\"v\":1,\"gateway\":\"g\",\"clients\":[{\"reason\":\"no_token\",\"source\":\"%065d\","
        "\"count\":1}]}",
        7);
    assert_int_equal(parse(big, &r), ZTB_ERR_MALFORMED);
    /* more entries than a verifier ever sends */
    size_t cap = 64 + (UNKNOWN_REPORT_MAX_CLIENTS + 1) * 64;
    char *many = malloc(cap);
    size_t len = (size_t)snprintf(many, cap, "{\"v\":1,\"gateway\":\"g\",\"clients\":[");
    for (int i = 0; i <= UNKNOWN_REPORT_MAX_CLIENTS; i++)
        len += (size_t)snprintf(many + len, cap - len,
                                "%s{\"reason\":\"no_token\",\"source\":\"s%d\",\"count\":1}",
                                i ? "," : "", i);
    len += (size_t)snprintf(many + len, cap - len, "]}");
    assert_int_equal(unknown_report_parse(many, len, &r), ZTB_ERR_TOO_LARGE);
    free(many);
    char huge[UNKNOWN_REPORT_MAX + 2];
    memset(huge, ' ', sizeof(huge));
    assert_int_equal(unknown_report_parse(huge, sizeof(huge), &r), ZTB_ERR_TOO_LARGE);
}

static void test_writer_refuses(void **state)
{
    (void)state;
    struct unknown_report r;
    memset(&r, 0, sizeof(r));
    char mem[256];
    ztb_buf b;
    ztb_buf_init_fixed(&b, mem, sizeof(mem));
    snprintf(r.gateway, sizeof(r.gateway), "g");
    assert_int_equal(unknown_report_write(&r, &b), ZTB_ERR_INVALID_ARG); /* no entry */
    r.n = 1;
    r.c[0] = (struct unknown_client){UNKNOWN_NO_TOKEN, "bad label", 1};
    assert_int_equal(unknown_report_write(&r, &b), ZTB_ERR_INVALID_ARG);
    r.c[0] = (struct unknown_client){UNKNOWN_REASONS_N, "a", 1};
    assert_int_equal(unknown_report_write(&r, &b), ZTB_ERR_INVALID_ARG);
    r.c[0] = (struct unknown_client){UNKNOWN_NO_TOKEN, "a", 0};
    assert_int_equal(unknown_report_write(&r, &b), ZTB_ERR_INVALID_ARG);
    assert_true(unknown_label_ok("fe80::1"));
    assert_false(unknown_label_ok(""));
    assert_false(unknown_label_ok(NULL));
    assert_null(unknown_reason_name(UNKNOWN_REASONS_N));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_writer_refuses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
