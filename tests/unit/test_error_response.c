/*
 * test_error_response.c - error answers (wire/error_response.c): the body
 * the broker writes names the ztb error beside the RFC 6749 code; the name
 * reads back to the same ztb_err for every stable error; each code's default;
 * names that are not ztb errors are not taken.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "wire/error_response.h"
#include "wire/wire.h"

static void test_write(void **state)
{
    (void)state;
    char out[512];
    ztb_buf b;
    ztb_buf_init_fixed(&b, out, sizeof(out));
    assert_int_equal(error_response_write(&b, "access_denied", ZTB_ERR_QUARANTINED,
                                          "the agent is \"quarantined\""),
                     ZTB_OK);
    assert_string_equal(ztb_buf_cstr(&b),
                        "{\"error\":\"access_denied\",\"error_description\":\"the agent is "
                        "\\\"quarantined\\\"\",\"ztb_error\":\"QUARANTINED\"}");
    ztb_buf_init_fixed(&b, out, sizeof(out));
    assert_int_equal(error_response_write(&b, "slow_down", ZTB_ERR_RATE_LIMITED, NULL), ZTB_OK);
    assert_string_equal(ztb_buf_cstr(&b),
                        "{\"error\":\"slow_down\",\"ztb_error\":\"RATE_LIMITED\"}");
    ztb_buf_init_fixed(&b, out, sizeof(out));
    assert_int_equal(error_response_write(&b, "x", ZTB_OK, NULL), ZTB_ERR_INVALID_ARG);
    ztb_buf_init_fixed(&b, out, 8);
    assert_int_not_equal(error_response_write(&b, "access_denied", ZTB_ERR_ACCESS_DENIED, NULL),
                         ZTB_OK);
    assert_string_equal(ZTB_WIRE_ERROR_MEMBER, "ztb_error");
}

static void test_every_name_reads_back(void **state)
{
    (void)state;
    int named = 0;
    for (int e = 1; e < 600; e++) {
        const char *n = ztb_err_name((ztb_err)e);
        if (strcmp(n, "UNKNOWN") == 0)
            continue;
        named++;
        assert_int_equal(error_response_name_to_err(n, strlen(n)), e);
    }
    assert_true(named > 50);
    /* the protocol refusals clients must tell apart */
    assert_int_equal(error_response_name_to_err("QUARANTINED", 11), ZTB_ERR_QUARANTINED);
    assert_int_equal(error_response_name_to_err("AUDIENCE_KILLED", 15), ZTB_ERR_AUDIENCE_KILLED);
    assert_int_equal(error_response_name_to_err("JOIN_TOKEN", 10), ZTB_ERR_JOIN_TOKEN);
}

static void test_unknown_names(void **state)
{
    (void)state;
    const char *bad[] = {"",
                         "OK",
                         "UNKNOWN",
                         "quarantined",
                         "QUARANTINED ",
                         "QUARANTINE",
                         "ZTB_ERR_QUARANTINED",
                         "QUARANTINED\n"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(error_response_name_to_err(bad[i], strlen(bad[i])), ZTB_OK);
    /* a prefix of a longer name is not that name */
    assert_int_equal(error_response_name_to_err("QUARANTINEDX", 11), ZTB_ERR_QUARANTINED);
    assert_int_equal(error_response_name_to_err("QUARANTINED", 10), ZTB_OK);
    assert_int_equal(error_response_name_to_err(NULL, 3), ZTB_OK);
}

static void test_code_defaults(void **state)
{
    (void)state;
    struct {
        const char *code;
        long status;
        ztb_err want;
    } cases[] = {
        {"invalid_request", 400, ZTB_ERR_INVALID_REQUEST},
        {"invalid_client", 401, ZTB_ERR_INVALID_CLIENT},
        {"invalid_grant", 400, ZTB_ERR_INVALID_REQUEST},
        {"invalid_scope", 400, ZTB_ERR_INVALID_SCOPE},
        {"invalid_dpop_proof", 400, ZTB_ERR_DPOP},
        {"access_denied", 403, ZTB_ERR_ACCESS_DENIED},
        {"approval_required", 403, ZTB_ERR_APPROVAL_REQUIRED},
        {"slow_down", 429, ZTB_ERR_RATE_LIMITED},
        {"temporarily_unavailable", 503, ZTB_ERR_UNAVAILABLE},
        {"server_error", 500, ZTB_ERR_INTERNAL},
        {"not_found", 404, ZTB_ERR_NOT_FOUND},
        {"conflict", 409, ZTB_ERR_EXISTS},
        {"invalid_policy", 400, ZTB_ERR_POLICY},
        {"something_new", 400, ZTB_ERR_INVALID_REQUEST},
        {"something_new", 502, ZTB_ERR_HTTP},
        {NULL, 429, ZTB_ERR_RATE_LIMITED},
        {NULL, 503, ZTB_ERR_UNAVAILABLE},
        {NULL, 404, ZTB_ERR_HTTP},
        {NULL, 500, ZTB_ERR_HTTP},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        if (error_response_for_code(cases[i].code, cases[i].status) != cases[i].want)
            fail_msg("case %zu (%s %ld)", i, cases[i].code ? cases[i].code : "NULL",
                     cases[i].status);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_write),
        cmocka_unit_test(test_every_name_reads_back),
        cmocka_unit_test(test_unknown_names),
        cmocka_unit_test(test_code_defaults),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
