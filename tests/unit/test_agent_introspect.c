/*
 * test_agent_introspect.c - asking the broker's /v1/introspect as the agent (agent_introspect.c),
 * alone and behind a verifier without Redis.
 */
#include "agent_fixture.h"

static void test_introspection(void **state)
{
    (void)state;
    ztb_agent *a = enrolled_agent(0);
    int active = -1;
    B.introspect_active = 1;
    assert_int_equal(agent_introspect(a, "some.token.here", &active), ZTB_OK);
    assert_int_equal(active, 1);
    B.introspect_active = 0;
    assert_int_equal(agent_introspect(a, "some.token.here", &active), ZTB_OK);
    assert_int_equal(active, 0);
    ztb_agent_free(a);
}

/* A gateway without Redis asks the broker's /v1/introspect, as this agent. */
static void test_verifier_with_introspection(void **state)
{
    (void)state;
    ztb_agent *a = enrolled_agent(0);
    char *dir = st_tmpdir();
    char path[600], jwks[4096];
    snprintf(path, sizeof(path), "%s/jwks.json", dir);
    ztb_buf jb;
    ztb_buf_init_fixed(&jb, jwks, sizeof(jwks));
    assert_int_equal(ztb_jwks_render((const ztb_key *const *)&B.sign_key, 1, &jb), ZTB_OK);
    FILE *f = fopen(path, "w");
    fputs(jwks, f);
    fclose(f);
    chmod(path, 0600);
    ztb_verifier_config *c = ztb_verifier_config_new();
    ztb_verifier_config_set_issuer(c, B.srv.base);
    ztb_verifier_config_set_audience(c, "payments");
    ztb_verifier_config_set_jwks_file(c, path);
    assert_int_equal(ztb_verifier_config_set_introspection(c, a), ZTB_OK);
    assert_int_equal(ztb_verifier_config_set_redis(c, "redis://127.0.0.1"), ZTB_ERR_STATE);
    ztb_verifier *v;
    assert_int_equal(ztb_verifier_new(c, &v), ZTB_OK);
    ztb_verifier_config_free(c);
    char *tok;
    assert_int_equal(ztb_agent_token(a, "payments", "payments:refund", NULL, NULL, &tok), ZTB_OK);
    ztb_expect e = {.action = "payments:refund"};
    B.introspect_active = 1;
    assert_int_equal(ztb_verify(v, tok, &e, NULL), ZTB_OK);
    B.introspect_active = 0; /* the broker says it was revoked */
    assert_int_equal(ztb_verify(v, tok, &e, NULL), ZTB_ERR_REVOKED);
    ztb_token_free(tok);
    ztb_verifier_free(v);
    ztb_agent_free(a);
    st_rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_introspection),
        cmocka_unit_test(test_verifier_with_introspection),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
