/*
 * test_agent_token.c - per-action tokens (agent_token.c): DPoP-bound tokens with a fresh proof per
 * attempt, and proofs for the caller's own requests.
 */
#include "agent_fixture.h"

static void test_dpop(void **state)
{
    (void)state;
    ztb_agent *a = enrolled_agent(1);
    char *tok, *prf;
    /* retried requests carry fresh proofs (the broker refuses a proof id twice) */
    B.nscript = 1;
    B.iscript = 0;
    B.script[0].status = 503;
    B.script[0].body = "{\"error\":\"temporarily_unavailable\"}";
    B.script[0].retry_after = NULL;
    assert_int_equal(ztb_agent_token(a, "payments", "payments:refund", NULL, NULL, &tok), ZTB_OK);
    assert_true(B.last_had_dpop);
    assert_int_equal(ztb_dpop_proof(a, "POST", "https://gw.test/refunds/1", tok, &prf), ZTB_OK);
    ztb_dpop_result d;
    assert_int_equal(ztb_dpop_proof_check(prf, strlen(prf), "POST", "https://gw.test/refunds/1",
                                          tok, (int64_t)time(NULL), 60, 5, &d),
                     ZTB_OK);
    /* the token is bound to the proof's key */
    char payload[4096];
    ztb_buf p;
    ztb_buf_init_fixed(&p, payload, sizeof(payload));
    ztb_keyset *ks;
    assert_int_equal(ztb_keyset_new(&B.sign_key, NULL, 1, &ks), ZTB_OK);
    assert_int_equal(ztb_jws_verify(ks, tok, strlen(tok), NULL, NULL, &p), ZTB_OK);
    ztb_keyset_free(ks);
    assert_non_null(strstr(payload, d.jkt));
    ztb_token_free(prf);
    ztb_token_free(tok);
    assert_int_equal(ztb_dpop_proof(a, "", "https://x", NULL, &prf), ZTB_ERR_INVALID_ARG);
    /* a broker that does not bind the token when asked to: refused */
    ztb_agent_free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dpop),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
