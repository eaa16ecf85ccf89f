/*
 * test_agent_delete.c - `ztbctl agent delete` against the real broker:
 * everything the agent held dies at once (tokens, sessions, identity
 * documents, join tokens not yet used), and a name deleted and enrolled
 * again starts at a generation above every one it had: nothing issued to
 * the deleted agent is valid for the new one (attack: keep a token, a
 * session, the old key and a spare join token across the delete and the
 * re-enrollment, and use them).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "agent.h"
#include "harness.h"

static const char *policy_doc =
    "{\"version\": 1, \"trust_domain\": \"ztb.local\",\n"
    " \"settings\": {\"max_ttl\": 300, \"default_ttl\": 60,\n"
    "   \"rate_limits\": {\"per_agent\": {\"rate\": 1000, \"burst\": 100, \"period\": 60},\n"
    "                   \"per_action\": {\"rate\": 1000, \"burst\": 100, \"period\": 60}}},\n"
    " \"rules\": [\n"
    "  {\"id\": \"read\", \"effect\": \"allow\", \"agents\": [\"bot\"],\n"
    "   \"actions\": [\"crm:read\"], \"audiences\": [\"crm\"], \"resources\": [\"**\"]}\n"
    " ]}\n";

static int ctl(const struct zh_broker *b, char **out, const char *verb, const char *name)
{
    const char *argv[] = {zh_bin("ztbctl"), "--socket", b->admin_sock, "agent", verb, name, NULL};
    char *err = NULL;
    int rc = zh_run(argv, out, &err);
    if (rc != 0)
        fprintf(stderr, "ztbctl agent %s %s: %s\n", verb, name, err);
    free(err);
    return rc;
}

static long session_status(const struct zh_broker *b, const struct za_agent *a)
{
    ztb_buf as;
    ztb_buf_init(&as, 4096);
    za_assertion(b, a, NULL, &as);
    char form[4096];
    snprintf(form, sizeof(form), "client_assertion_type=%s&client_assertion=%s", ZA_ASSERTION_TYPE,
             ztb_buf_cstr(&as));
    ztb_buf_free(&as);
    struct zh_resp r;
    long st = za_post_form(b, "/v1/session", form, &r);
    zh_resp_free(&r);
    return st;
}

static long long gen_of(const char *tok)
{
    json_t *c = za_claims(tok);
    char *s = json_dumps(c, 0);
    /* the broker claim carries the generation as "gen" */
    const char *g = strstr(s, "\"gen\":");
    long long v = g ? strtoll(g + 6, NULL, 10) : -1;
    free(s);
    json_decref(c);
    return v;
}

static char *spare_join_token(const struct zh_broker *b, const char *name)
{
    char path[128];
    snprintf(path, sizeof(path), "/v1/agents/%s/join-tokens", name);
    struct zh_resp r;
    assert_int_equal(zh_admin(b, "POST", path, NULL, &r), 0);
    assert_int_equal(r.status, 201);
    json_t *j = za_json(&r);
    char *t = strdup(json_string_value(json_object_get(j, "join_token")));
    json_decref(j);
    zh_resp_free(&r);
    return t;
}

static void test_delete_then_reenroll(void **state)
{
    (void)state;
    struct zh_broker b;
    struct zh_broker_opts o = {.with_keys = 1, .policy = policy_doc};
    zh_broker_start(&b, &o);
    struct za_agent old = {0};
    za_enroll(&b, &old, "bot");
    struct zh_resp r;
    char tok[4096];
    assert_int_equal(za_token(&b, &old, "crm", "crm%3Aread", &r, tok, sizeof(tok)), 200);
    zh_resp_free(&r);
    long long old_gen = gen_of(tok);
    assert_true(old_gen >= 1);
    char *spare = spare_join_token(&b, "bot");

    char *out = NULL;
    assert_int_equal(ctl(&b, &out, "delete", "bot"), 0);
    assert_non_null(strstr(out, "deleted bot"));
    free(out);
    /* gone: not listed, not shown, not deletable twice, no new join token */
    assert_int_equal(zh_admin(&b, "GET", "/v1/agents/bot", NULL, &r), 0);
    assert_int_equal(r.status, 404);
    zh_resp_free(&r);
    assert_int_equal(zh_admin(&b, "GET", "/v1/agents", NULL, &r), 0);
    assert_null(strstr(r.body, "\"bot\""));
    zh_resp_free(&r);
    assert_int_equal(zh_admin(&b, "DELETE", "/v1/agents/bot", NULL, &r), 0);
    assert_int_equal(r.status, 404);
    zh_resp_free(&r);
    assert_int_equal(zh_admin(&b, "POST", "/v1/agents/bot/enable", NULL, &r), 0);
    assert_int_equal(r.status, 404); /* a tombstone is not brought back by enable */
    zh_resp_free(&r);

    /* the name is enrolled again: a generation above every old one */
    char *join = za_join_token(&b, "bot");
    assert_int_equal(zh_admin(&b, "GET", "/v1/agents/bot", NULL, &r), 0);
    json_t *j = za_json(&r);
    long long new_gen = (long long)json_integer_value(json_object_get(j, "generation"));
    json_decref(j);
    zh_resp_free(&r);
    assert_true(new_gen > old_gen);

    /* attack: everything kept from before the delete */
    assert_int_not_equal(za_token(&b, &old, "crm", "crm%3Aread", &r, NULL, 0), 200);
    zh_resp_free(&r);
    assert_int_not_equal(session_status(&b, &old), 200);
    struct za_agent thief = {0};
    snprintf(thief.name, sizeof(thief.name), "bot");
    assert_int_equal(ztb_key_generate(&thief.key), ZTB_OK);
    assert_int_equal(za_enroll_with(&b, &thief, spare, &r), 400);
    zh_resp_free(&r);

    /* the new agent works, at its new generation */
    struct za_agent fresh = {0};
    snprintf(fresh.name, sizeof(fresh.name), "bot");
    assert_int_equal(ztb_key_generate(&fresh.key), ZTB_OK);
    assert_int_equal(za_enroll_with(&b, &fresh, join, &r), 201);
    zh_resp_free(&r);
    assert_int_equal(session_status(&b, &fresh), 200);
    /* the old key still cannot open a session for the new agent */
    assert_int_not_equal(session_status(&b, &old), 200);

    char *audit = za_audit_text(&b);
    assert_non_null(strstr(audit, "\"event\":\"admin.agent_deleted\""));
    free(audit);
    free(join);
    free(spare);
    za_free(&old);
    za_free(&thief);
    za_free(&fresh);
    assert_int_equal(zh_broker_stop(&b), 0);
    zh_rmtree(b.dir);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_delete_then_reenroll),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
