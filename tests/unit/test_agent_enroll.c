/*
 * test_agent_enroll.c - enrollment and renewal (agent_enroll.c): enroll with a join token, the
 * credential file, tokens after enrollment, renewal in the background and when it cannot happen.
 */
#include "agent_fixture.h"

static void test_enroll_and_tokens(void **state)
{
    (void)state;
    char *dir = st_tmpdir();
    char path[600];
    snprintf(path, sizeof(path), "%s/bot.pem", dir);
    ztb_agent *a = new_agent(path, 0);
    assert_false(ztb_agent_is_enrolled(a));
    assert_string_equal(ztb_agent_spiffe_id(a), AGENT_ID);
    char *tok = (char *)1;
    assert_int_equal(ztb_agent_token(a, "payments", "payments:refund", NULL, NULL, &tok),
                     ZTB_ERR_STATE);
    assert_null(tok);
    assert_non_null(strstr(ztb_agent_errdetail(a), "not enrolled"));
    assert_int_equal(ztb_agent_enroll(a, "ztbj_wrong"), ZTB_ERR_JOIN_TOKEN);
    assert_non_null(strstr(ztb_agent_errdetail(a), "join token"));
    assert_false(ztb_agent_is_enrolled(a));
    assert_int_equal(ztb_agent_enroll(a, "ztbj_good"), ZTB_OK);
    assert_true(ztb_agent_is_enrolled(a));
    int64_t exp = ztb_agent_identity_expires_at(a);
    assert_true(exp > (int64_t)time(NULL) + 3500);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    /* a used join token stays used */
    assert_int_equal(ztb_agent_enroll(a, "ztbj_good"), ZTB_ERR_JOIN_TOKEN);
    assert_true(ztb_agent_is_enrolled(a));

    assert_int_equal(ztb_agent_token(a, "payments", "payments:refund", "orders/1234", NULL, &tok),
                     ZTB_OK);
    token_is_valid(tok);
    ztb_token_free(tok);
    char v[1024];
    assert_true(st_form_get(B.last_form, "grant_type", v, sizeof(v)));
    assert_string_equal(v, "urn:ietf:params:oauth:grant-type:token-exchange");
    assert_true(st_form_get(B.last_form, "audience", v, sizeof(v)));
    assert_string_equal(v, "payments");
    assert_true(st_form_get(B.last_form, "scope", v, sizeof(v)));
    assert_string_equal(v, "payments:refund");
    assert_true(st_form_get(B.last_form, "resource", v, sizeof(v)));
    assert_string_equal(v, "orders/1234");
    assert_false(st_form_get(B.last_form, "authorization_details", v, sizeof(v)));
    assert_false(B.last_had_dpop);

    /* details travel as the one object of authorization_details ("type" defaulted) */
    assert_int_equal(
        ztb_agent_token(a, "payments", "payments:refund", "orders/1&2", "{\"amount\": 40}", &tok),
        ZTB_OK);
    ztb_token_free(tok);
    assert_true(st_form_get(B.last_form, "resource", v, sizeof(v)));
    assert_string_equal(v, "orders/1&2");
    assert_true(st_form_get(B.last_form, "authorization_details", v, sizeof(v)));
    json_error_t e;
    json_t *d = json_loads(v, 0, &e);
    assert_true(json_is_array(d) && json_array_size(d) == 1);
    json_t *o = json_array_get(d, 0);
    assert_string_equal(json_string_value(json_object_get(o, "type")), "ztb_action");
    assert_int_equal(json_integer_value(json_object_get(o, "amount")), 40);
    json_decref(d);
    assert_int_equal(ztb_agent_token(a, "payments", "payments:refund", NULL,
                                     "{\"type\":\"payment\",\"amount\":7}", &tok),
                     ZTB_OK);
    ztb_token_free(tok);
    assert_true(st_form_get(B.last_form, "authorization_details", v, sizeof(v)));
    assert_string_equal(v, "[{\"type\":\"payment\",\"amount\":7}]");
    assert_int_equal(ztb_agent_token(a, "payments", "payments:refund", NULL, "{\"type\":1}", &tok),
                     ZTB_ERR_INVALID_ARG);
    /* one session served every token so far */
    assert_int_equal(B.sessions, 1);

    /* argument mistakes */
    assert_int_equal(ztb_agent_token(a, "", "payments:refund", NULL, NULL, &tok),
                     ZTB_ERR_INVALID_ARG);
    assert_int_equal(ztb_agent_token(a, "payments", NULL, NULL, NULL, &tok), ZTB_ERR_INVALID_ARG);
    assert_int_equal(ztb_agent_token(a, "payments", "payments:refund", "a\nb", NULL, &tok),
                     ZTB_ERR_INVALID_ARG);
    assert_int_equal(ztb_agent_token(a, "payments", "payments:refund", NULL, "[1]", &tok),
                     ZTB_ERR_INVALID_ARG);
    assert_int_equal(
        ztb_agent_token(a, "payments", "payments:refund", NULL, "{\"a\":1,\"a\":2}", &tok),
        ZTB_ERR_INVALID_ARG);
    assert_int_equal(ztb_agent_token(a, "payments", "payments:refund", NULL, NULL, NULL),
                     ZTB_ERR_INVALID_ARG);
    assert_int_equal(ztb_dpop_proof(a, "POST", "https://x/y", NULL, &tok), ZTB_ERR_STATE);
    ztb_agent_free(a);

    /* a restarted agent uses its credential file: no join token needed */
    a = new_agent(path, 0);
    assert_true(ztb_agent_is_enrolled(a));
    assert_int_equal(ztb_agent_identity_expires_at(a), exp);
    assert_int_equal(ztb_agent_token(a, "payments", "payments:refund", NULL, NULL, &tok), ZTB_OK);
    ztb_token_free(tok);
    ztb_agent_free(a);

    /* a credential file others can read is refused, not used */
    chmod(path, 0640);
    ztb_agent_config *c = ztb_agent_config_new();
    ztb_agent_config_set_broker(c, B.srv.base);
    ztb_agent_config_set_name(c, "bot");
    ztb_agent_config_set_credential_file(c, path);
    assert_int_equal(ztb_agent_new(c, &a), ZTB_ERR_PERMISSION);
    assert_null(a);
    assert_non_null(strstr(ztb_agent_errdetail(NULL), "credential file"));
    /* nor one for another agent */
    chmod(path, 0600);
    ztb_agent_config_set_name(c, "other");
    assert_int_equal(ztb_agent_new(c, &a), ZTB_ERR_CERT);
    ztb_agent_config_free(c);
    st_rmdir(dir);
}

/* B.renews, read under the server's lock: the agent's own renewal thread
 * makes the requests that count it, while the test polls. */
static unsigned renews_seen(void)
{
    pthread_mutex_lock(&B.srv.mu);
    unsigned n = B.renews;
    pthread_mutex_unlock(&B.srv.mu);
    return n;
}

static void test_renewal(void **state)
{
    (void)state;
    ztb_agent *a = enrolled_agent(0);
    int64_t e1 = ztb_agent_identity_expires_at(a);
    clock_sleep_ms(1100);
    assert_int_equal(ztb_agent_renew(a), ZTB_OK);
    assert_true(ztb_agent_identity_expires_at(a) > e1);
    assert_int_equal(B.renews, 1);
    ztb_agent_free(a);

    /* in the background at two thirds of the life: 6 s of a 9 s identity */
    B.cert_ttl = 9;
    B.renews = 0;
    a = enrolled_agent(0);
    /* the broker counts the renewal before the agent has installed its
     * answer: wait for both */
    for (int i = 0; i < 120 && !(renews_seen() >= 1 &&
                                 ztb_agent_identity_expires_at(a) > (int64_t)time(NULL) + 3);
         i++)
        clock_sleep_ms(100);
    assert_true(renews_seen() >= 1);
    assert_true(ztb_agent_identity_expires_at(a) > (int64_t)time(NULL) + 3);
    pthread_mutex_lock(&B.srv.mu); /* the agent's renewal thread may still ask */
    B.cert_ttl = 3600;
    pthread_mutex_unlock(&B.srv.mu);
    ztb_agent_free(a);

    /* an identity that cannot be renewed (the broker refuses it) eventually expires */
    ztb_agent *n = new_agent(NULL, 0);
    assert_int_equal(ztb_agent_renew(n), ZTB_ERR_STATE);
    ztb_agent_free(n);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_enroll_and_tokens),
        cmocka_unit_test(test_renewal),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
