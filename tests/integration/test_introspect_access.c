/*
 * test_introspect_access.c - introspection tells the truth, and only to those
 * allowed to ask (RFC 7662 §2.2, §4), against the real broker (its key store
 * made with the default 60 s skew) and a real Redis:
 *
 *   - a token is inactive from its exp on: the broker applies no skew to its
 *     own clock;
 *   - a caller policy does not allow "ztb:introspect" on the token's audience
 *     hears {"active": false}; a quarantined caller is refused;
 *   - only the token's audience, or a caller allowed "ztb:consume", may use
 *     up a single-use token, and the marker it leaves outlives exp + the
 *     largest skew a verifier may have.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "agent.h"
#include "harness.h"

static const char *policy_doc =
    "{\"version\": 1, \"trust_domain\": \"ztb.local\",\n"
    " \"settings\": {\"max_ttl\": 120, \"default_ttl\": 60,\n"
    "   \"rate_limits\": {\"per_agent\": {\"rate\": 1000, \"burst\": 100, \"period\": 60},\n"
    "                   \"per_action\": {\"rate\": 1000, \"burst\": 100, \"period\": 60}}},\n"
    " \"rules\": [\n"
    "  {\"id\": \"reads\", \"effect\": \"allow\", \"agents\": [\"alice\"],\n"
    "   \"actions\": [\"payments:read\", \"crm:read\"], \"audiences\": [\"payments\", \"crm\"],\n"
    "   \"resources\": [\"**\"]},\n"
    "  {\"id\": \"brief\", \"effect\": \"allow\", \"agents\": [\"alice\"],\n"
    "   \"actions\": [\"payments:peek\"], \"audiences\": [\"payments\"], \"resources\": [\"**\"],\n"
    "   \"obligations\": {\"ttl\": 1}},\n"
    "  {\"id\": \"once\", \"effect\": \"allow\", \"agents\": [\"alice\"],\n"
    "   \"actions\": [\"payments:refund\"], \"audiences\": [\"payments\"],\n"
    "   \"resources\": [\"**\"], \"obligations\": {\"single_use\": true}},\n"
    "  {\"id\": \"gateways-introspect\", \"effect\": \"allow\",\n"
    "   \"agents\": [\"gate\", \"payments\", \"consumer\"], \"actions\": [\"ztb:introspect\"],\n"
    "   \"audiences\": [\"payments\"], \"resources\": [\"**\"]},\n"
    "  {\"id\": \"soc-introspects-all\", \"effect\": \"allow\", \"agents\": [\"soc\"],\n"
    "   \"actions\": [\"ztb:introspect\"], \"audiences\": [\"**\"], \"resources\": [\"**\"]},\n"
    "  {\"id\": \"designated-consumer\", \"effect\": \"allow\", \"agents\": [\"consumer\"],\n"
    "   \"actions\": [\"ztb:consume\"], \"audiences\": [\"payments\"], \"resources\": [\"**\"]}\n"
    " ]}\n";

static struct zh_redis rd;
static struct zh_broker b;
static struct za_agent alice, gate, payments, consumer, soc, carol;

static int setup(void **state)
{
    (void)state;
    srand((unsigned)time(NULL) ^ (unsigned)getpid());
    zh_redis_start(&rd);
    zh_broker_start_issuing(&b, rd.url, policy_doc);
    za_enroll(&b, &alice, "alice");
    za_enroll(&b, &gate, "gate");
    za_enroll(&b, &payments, "payments");
    za_enroll(&b, &consumer, "consumer");
    za_enroll(&b, &soc, "soc");
    za_enroll(&b, &carol, "carol");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    struct za_agent *all[] = {&alice, &gate, &payments, &consumer, &soc, &carol};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        za_free(all[i]);
    assert_int_equal(zh_broker_stop(&b), 0);
    zh_redis_stop(&rd, 1);
    zh_rmtree(b.dir);
    return 0;
}

static void token(const char *aud, const char *scope, char *tok)
{
    struct zh_resp r;
    if (za_token(&b, &alice, aud, scope, &r, tok, 4096) != 200)
        fail_msg("token %s %s: HTTP %ld %s", aud, scope, r.status, r.body);
    zh_resp_free(&r);
}

/* Introspect tok as caller, consuming when asked: the response (caller frees). */
static long introspect(const struct za_agent *caller, const char *tok, int consume,
                       struct zh_resp *r)
{
    char form[12288];
    snprintf(form, sizeof(form), "token=%s&client_assertion_type=%s&client_assertion=%s%s", tok,
             ZA_SESSION_TYPE, caller->session, consume ? "&ztb_consume=1" : "");
    return za_post_form(&b, "/v1/introspect", form, r);
}

/* 1 active, 0 inactive (and nothing more said); fails on other answers. */
static int consume(const struct za_agent *caller, const char *tok)
{
    struct zh_resp r;
    if (introspect(caller, tok, 1, &r) != 200)
        fail_msg("introspect: HTTP %ld %s", r.status, r.body);
    int active = strstr(r.body, "\"active\":true") != NULL;
    if (!active)
        assert_string_equal(r.body, "{\"active\":false}");
    zh_resp_free(&r);
    return active;
}

static void ctl(const char *verb, const char *agent)
{
    const char *argv[] = {zh_bin("ztbctl"), "--socket", b.admin_sock, verb, agent, NULL};
    char *out = NULL, *err = NULL;
    int rc = zh_run(argv, &out, &err);
    if (rc != 0)
        fail_msg("ztbctl %s %s: exit %d: %s%s", verb, agent, rc, out, err);
    free(out);
    free(err);
}

/* exp is the end: no skew on the broker's own clock (the key store has 60 s). */
static void test_expired_token_is_inactive(void **state)
{
    (void)state;
    char tok[4096];
    token("payments", "payments%3Apeek", tok);
    json_t *c = za_claims(tok);
    int64_t exp = json_integer_value(json_object_get(c, "exp"));
    json_decref(c);
    assert_true(za_active(&b, &gate, tok));
    while ((int64_t)time(NULL) < exp + 5)
        usleep(200000);
    assert_false(za_active(&b, &gate, tok));
}

/* Only callers policy allows "ztb:introspect" on the audience learn anything. */
static void test_unauthorised_caller_learns_nothing(void **state)
{
    (void)state;
    char tok[4096], crm[4096];
    token("payments", "payments%3Aread", tok);
    token("crm", "crm%3Aread", crm);
    assert_true(za_active(&b, &gate, tok));
    assert_false(za_active(&b, &carol, tok)); /* no rule at all */
    assert_false(za_active(&b, &alice, tok)); /* its own holder: not a gateway */
    assert_false(za_active(&b, &gate, crm));  /* another audience */
    assert_true(za_active(&b, &soc, crm));    /* "**": any audience */
    assert_true(za_active(&b, &soc, tok));
    char *audit = za_audit_text(&b);
    assert_non_null(strstr(audit, "\"event\":\"introspect.refused\""));
    free(audit);
}

/* A quarantined (or disabled) caller is refused outright. */
static void test_quarantined_caller_refused(void **state)
{
    (void)state;
    char tok[4096];
    token("payments", "payments%3Aread", tok);
    ctl("quarantine", "gate");
    struct zh_resp r;
    introspect(&gate, tok, 0, &r);
    za_expect_error(&r, 403, "access_denied");
    zh_resp_free(&r);
    ctl("release", "gate");
    assert_true(za_active(&b, &gate, tok));
    struct zh_resp a;
    assert_int_equal(zh_admin(&b, "POST", "/v1/agents/carol/disable", NULL, &a), 0);
    zh_resp_free(&a);
    introspect(&carol, tok, 0, &r);
    za_expect_error(&r, 401, "invalid_client");
    zh_resp_free(&r);
}

/* Only the audience (or a designated consumer) uses up a single-use token. */
static void test_only_audience_consumes(void **state)
{
    (void)state;
    char once[4096];
    token("payments", "payments%3Arefund", once);
    /* gate may look, not consume: it hears "not active" and the token stays unused */
    assert_false(consume(&gate, once));
    assert_false(consume(&carol, once));
    assert_true(za_active(&b, &gate, once));
    /* the audience itself consumes it, once */
    assert_true(consume(&payments, once));
    assert_false(consume(&payments, once));
    assert_false(za_active(&b, &gate, once));
    /* the marker outlives exp + the largest skew any verifier may have */
    za_expect_used_marker(&rd, once);
    /* a caller policy designates ("ztb:consume") */
    token("payments", "payments%3Arefund", once);
    assert_true(consume(&consumer, once));
    assert_false(consume(&consumer, once));
}

/* Being allowed ztb:introspect does not make it a token's scope. */
static void test_broker_actions_are_not_tokens(void **state)
{
    (void)state;
    struct zh_resp r;
    za_token(&b, &gate, "payments", "ztb%3Aintrospect", &r, NULL, 0);
    za_expect_error(&r, 400, "invalid_scope");
    zh_resp_free(&r);
    za_token(&b, &consumer, "payments", "ztb%3Aconsume", &r, NULL, 0);
    za_expect_error(&r, 400, "invalid_scope");
    zh_resp_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unauthorised_caller_learns_nothing),
        cmocka_unit_test(test_only_audience_consumes),
        cmocka_unit_test(test_quarantined_caller_refused),
        cmocka_unit_test(test_broker_actions_are_not_tokens),
        cmocka_unit_test(test_expired_token_is_inactive),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
