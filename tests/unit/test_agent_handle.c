/*
 * test_agent_handle.c - the agent handle (agent_handle.c): configuration checks, and one handle
 * shared by many threads (one session for all).
 */
#include "agent_fixture.h"

struct worker {
    ztb_agent *a;
    int ok;
};

static void *many_tokens(void *arg)
{
    struct worker *w = arg;
    for (int i = 0; i < 20; i++) {
        char *tok = NULL;
        if (ztb_agent_token(w->a, "payments", "payments:refund", NULL, NULL, &tok) == ZTB_OK)
            w->ok++;
        ztb_token_free(tok);
    }
    return NULL;
}

static void test_configuration(void **state)
{
    (void)state;
    ztb_agent_config *c = ztb_agent_config_new();
    ztb_agent *a = (ztb_agent *)1;
    assert_int_equal(ztb_agent_new(c, &a), ZTB_ERR_INVALID_ARG);
    assert_null(a);
    assert_int_equal(ztb_agent_config_set_broker(c, "ftp://x"), ZTB_ERR_INVALID_ARG);
    assert_int_equal(ztb_agent_config_set_broker(c, "http://broker.example/"), ZTB_OK);
    assert_int_equal(ztb_agent_config_set_name(c, "Bad Name"), ZTB_ERR_INVALID_ARG);
    assert_int_equal(ztb_agent_config_set_name(c, "bot"), ZTB_OK);
    assert_int_equal(ztb_agent_config_set_trust_domain(c, "UPPER"), ZTB_ERR_INVALID_ARG);
    assert_int_equal(ztb_agent_config_set_timeout(c, 5), ZTB_ERR_INVALID_ARG);
    assert_int_equal(ztb_agent_config_set_retries(c, 99, 1), ZTB_ERR_INVALID_ARG);
    /* plain http to a remote broker: only when allowed */
    assert_int_equal(ztb_agent_new(c, &a), ZTB_ERR_INVALID_ARG);
    assert_non_null(strstr(ztb_agent_errdetail(NULL), "https"));
    assert_int_equal(ztb_agent_config_set_allow_insecure_http(c, 1), ZTB_OK);
    assert_int_equal(ztb_agent_config_set_auto_renew(c, 0), ZTB_OK);
    assert_int_equal(ztb_agent_config_set_trust_domain(c, "example.org"), ZTB_OK);
    assert_int_equal(ztb_agent_new(c, &a), ZTB_OK);
    assert_string_equal(ztb_agent_spiffe_id(a), "spiffe://example.org/agent/bot");
    assert_int_equal(ztb_agent_identity_expires_at(a), 0);
    ztb_agent_free(a);
    ztb_agent_config_free(c);
    ztb_agent_config_free(NULL);
    ztb_agent_free(NULL);
    ztb_token_free(NULL);
    assert_int_equal(ztb_agent_enroll(NULL, "x"), ZTB_ERR_INVALID_ARG);
}

static void test_one_handle_many_threads(void **state)
{
    (void)state;
    ztb_agent *a = enrolled_agent(1);
    unsigned s = B.sessions;
    pthread_t t[8];
    struct worker w[8];
    for (int i = 0; i < 8; i++) {
        w[i] = (struct worker){.a = a};
        pthread_create(&t[i], NULL, many_tokens, &w[i]);
    }
    for (int i = 0; i < 8; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(w[i].ok, 20);
    }
    assert_int_equal(B.sessions, s + 1); /* one session for all of them */
    ztb_agent_free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_configuration),
        cmocka_unit_test(test_one_handle_many_threads),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
