/*
 * test_agent_session.c - the agent's session credential (agent_session.c): renewed once when the
 * broker refuses it, and before it runs out.
 */
#include "agent_fixture.h"

static void test_session_renewed_when_refused(void **state)
{
    (void)state;
    ztb_agent *a = enrolled_agent(0);
    char *tok;
    assert_int_equal(ztb_agent_token(a, "payments", "payments:refund", NULL, NULL, &tok), ZTB_OK);
    ztb_token_free(tok);
    unsigned s = B.sessions;
    B.nvalid = 0; /* the broker ends every session (e.g. a generation bump) */
    assert_int_equal(ztb_agent_token(a, "payments", "payments:refund", NULL, NULL, &tok), ZTB_OK);
    ztb_token_free(tok);
    assert_int_equal(B.sessions, s + 1);
    /* a session about to run out is renewed before use */
    B.session_ttl = 1; /* renewed 200 ms before the end */
    B.nvalid = 0;
    assert_int_equal(ztb_agent_token(a, "payments", "payments:refund", NULL, NULL, &tok), ZTB_OK);
    ztb_token_free(tok);
    clock_sleep_ms(900);
    unsigned before = B.sessions;
    assert_int_equal(ztb_agent_token(a, "payments", "payments:refund", NULL, NULL, &tok), ZTB_OK);
    ztb_token_free(tok);
    assert_int_equal(B.sessions, before + 1);
    B.session_ttl = 300;
    ztb_agent_free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_session_renewed_when_refused),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
