/*
 * test_agent.c - the agent client's requests (agent.c) against a scripted
 * broker (agent_fixture.h): retries with Retry-After and the retry budget,
 * and the broker's error answers mapped to codes.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include <ztb/ztb.h>

#include "pki/ca.h"
#include "pki/csr.h"
#include "pki/dpop.h"
#include "pki/jwk.h"
#include "pki/jws.h"
#include "sdk/src/agent_internal.h"
#include "sdk/src/clock.h"
#include "agent_fixture.h"
#include "sdk_test.h"

/* ---- tests --------------------------------------------------------------- */

static void test_retries_and_errors(void **state)
{
    (void)state;
    ztb_agent *a = enrolled_agent(0);
    char *tok = NULL;
    /* rate limited, then unavailable, then fine: waits at least the Retry-After */
    B.nscript = 2;
    B.iscript = 0;
    B.script[0].status = 429;
    B.script[0].body = "{\"error\":\"slow_down\",\"error_description\":\"rate limit: agent\"}";
    B.script[0].retry_after = "1";
    B.script[1].status = 503;
    B.script[1].body = "{\"error\":\"temporarily_unavailable\"}";
    B.script[1].retry_after = NULL;
    int64_t t0 = clock_mono_ms();
    assert_int_equal(ztb_agent_token(a, "payments", "payments:refund", NULL, NULL, &tok), ZTB_OK);
    assert_true(clock_mono_ms() - t0 >= 1000);
    ztb_token_free(tok);
    /* a Retry-After beyond the retry budget (5 s here): give up at once */
    B.nscript = 1;
    B.iscript = 0;
    B.script[0].retry_after = "60";
    t0 = clock_mono_ms();
    assert_int_equal(ztb_agent_token(a, "payments", "payments:refund", NULL, NULL, &tok),
                     ZTB_ERR_RATE_LIMITED);
    assert_null(tok);
    assert_true(clock_mono_ms() - t0 < 1000);
    assert_non_null(strstr(ztb_agent_errdetail(a), "rate limit"));
    /* unavailable every time: 1 + 3 retries, then UNAVAILABLE */
    for (int i = 0; i < 4; i++) {
        B.script[i].status = 503;
        B.script[i].body = "{\"error\":\"temporarily_unavailable\"}";
        B.script[i].retry_after = NULL;
    }
    B.nscript = 4;
    B.iscript = 0;
    assert_int_equal(ztb_agent_token(a, "payments", "payments:refund", NULL, NULL, &tok),
                     ZTB_ERR_UNAVAILABLE);
    assert_int_equal(B.iscript, 4);
    /* each refusal has its own code */
    struct {
        unsigned status;
        const char *body;
        ztb_err want;
    } cases[] = {
        {403, "{\"error\":\"access_denied\",\"error_description\":\"no rule allows it\"}",
         ZTB_ERR_ACCESS_DENIED},
        /* the ztb error name decides (wire/error_response.h), whatever the text says */
        {403,
         "{\"error\":\"access_denied\",\"error_description\":\"on hold by the SOC\","
         "\"ztb_error\":\"QUARANTINED\"}",
         ZTB_ERR_QUARANTINED},
        {403,
         "{\"error\":\"access_denied\",\"error_description\":\"switched off\","
         "\"ztb_error\":\"AUDIENCE_KILLED\"}",
         ZTB_ERR_AUDIENCE_KILLED},
        {403,
         "{\"error\":\"access_denied\",\"error_description\":\"the audience is disabled\","
         "\"ztb_error\":\"ACCESS_DENIED\"}",
         ZTB_ERR_ACCESS_DENIED},
        /* never the text: without a name, only the RFC 6749 code counts */
        {403, "{\"error\":\"access_denied\",\"error_description\":\"the agent is quarantined\"}",
         ZTB_ERR_ACCESS_DENIED},
        {403, "{\"error\":\"access_denied\",\"error_description\":\"the audience is disabled\"}",
         ZTB_ERR_ACCESS_DENIED},
        /* a name that is no ztb error, or not a string: the code */
        {403, "{\"error\":\"access_denied\",\"ztb_error\":\"QUARANTINE\"}", ZTB_ERR_ACCESS_DENIED},
        {403, "{\"error\":\"access_denied\",\"ztb_error\":305}", ZTB_ERR_ACCESS_DENIED},
        {403, "{\"error\":\"access_denied\",\"ztb_error\":\"OK\"}", ZTB_ERR_ACCESS_DENIED},
        /* a name without an RFC 6749 code is not an error answer */
        {500, "{\"ztb_error\":\"QUARANTINED\"}", ZTB_ERR_HTTP},
        {400, "{\"error\":\"invalid_grant\",\"ztb_error\":\"REPLAY\"}", ZTB_ERR_REPLAY},
        {400, "{\"error\":\"invalid_grant\"}", ZTB_ERR_INVALID_REQUEST},
        {403, "{\"error\":\"approval_required\"}", ZTB_ERR_APPROVAL_REQUIRED},
        {400, "{\"error\":\"invalid_scope\"}", ZTB_ERR_INVALID_SCOPE},
        {400, "{\"error\":\"invalid_request\",\"error_description\":\"bad\\nline\"}",
         ZTB_ERR_INVALID_REQUEST},
        {400, "{\"error\":\"invalid_dpop_proof\"}", ZTB_ERR_DPOP},
        {500, "oops", ZTB_ERR_HTTP},
        {200, "{\"access_token\":5}", ZTB_ERR_HTTP},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        B.nscript = 1;
        B.iscript = 0;
        B.script[0].status = cases[i].status;
        B.script[0].body = cases[i].body;
        B.script[0].retry_after = NULL;
        ztb_err rv = ztb_agent_token(a, "payments", "payments:refund", NULL, NULL, &tok);
        if (rv != cases[i].want)
            fail_msg("case %zu: want %s got %s", i, ztb_err_name(cases[i].want), ztb_err_name(rv));
        assert_null(tok);
        assert_null(strchr(ztb_agent_errdetail(a), '\n'));
    }
    B.nscript = 0;
    ztb_agent_free(a);

    /* a broker that is not there: UNAVAILABLE after the retries */
    ztb_agent_config *c = ztb_agent_config_new();
    ztb_agent_config_set_broker(c, "http://127.0.0.1:1");
    ztb_agent_config_set_name(c, "bot");
    ztb_agent_config_set_retries(c, 1, 1000);
    assert_int_equal(ztb_agent_new(c, &a), ZTB_OK);
    ztb_agent_config_free(c);
    assert_int_equal(ztb_agent_enroll(a, "ztbj_x"), ZTB_ERR_UNAVAILABLE);
    assert_non_null(strstr(ztb_agent_errdetail(a), "unreachable"));
    ztb_agent_free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_retries_and_errors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
