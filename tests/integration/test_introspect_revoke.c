/*
 * test_introspect_revoke.c - RFC 7662 introspection, RFC 7009 revocation and the
 * operators' revocation commands (ztbctl revoke / quarantine / release),
 * against the real broker and a real Redis.
 *
 * The key store is made with a 1-second skew so that an expired token is
 * seen as expired within the test.
 */
#include <pwd.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "agent.h"
#include "harness.h"
#include "pki/jws.h"

static const char *policy_doc =
    "{\"version\": 1, \"trust_domain\": \"ztb.local\",\n"
    " \"settings\": {\"max_ttl\": 120, \"default_ttl\": 60,\n"
    "   \"rate_limits\": {\"per_agent\": {\"rate\": 1000, \"burst\": 100, \"period\": 60},\n"
    "                   \"per_action\": {\"rate\": 1000, \"burst\": 100, \"period\": 60}}},\n"
    " \"rules\": [\n"
    "  {\"id\": \"gateway-introspects\", \"effect\": \"allow\", \"agents\": [\"gate\"],\n"
    "   \"actions\": [\"ztb:introspect\", \"ztb:consume\"], \"audiences\": [\"**\"],\n"
    "   \"resources\": [\"**\"]},\n"
    "  {\"id\": \"reads\", \"effect\": \"allow\", \"agents\": [\"*\"],\n"
    "   \"actions\": [\"payments:read\", \"crm:read\"], \"audiences\": [\"payments\", \"crm\"],\n"
    "   \"resources\": [\"**\"]},\n"
    "  {\"id\": \"brief\", \"effect\": \"allow\", \"agents\": [\"*\"],\n"
    "   \"actions\": [\"payments:peek\"], \"audiences\": [\"payments\"], \"resources\": [\"**\"],\n"
    "   \"obligations\": {\"ttl\": 1}},\n"
    "  {\"id\": \"once\", \"effect\": \"allow\", \"agents\": [\"*\"],\n"
    "   \"actions\": [\"payments:refund\"], \"audiences\": [\"payments\"], \"resources\": "
    "[\"**\"],\n"
    "   \"obligations\": {\"single_use\": true}}\n"
    " ]}\n";

static struct zh_redis rd;
static struct zh_broker b;
static struct za_agent alice, bob, gate;
static char state_root[256];

static int ctl(char **out, char **err, const char *const *args)
{
    const char *argv[16] = {zh_bin("ztbctl"), "--socket", b.admin_sock};
    int n = 3;
    for (const char *const *a = args; *a && n < 15; a++)
        argv[n++] = *a;
    argv[n] = NULL;
    return zh_run(argv, out, err);
}

static void run(const char *const *args, int want, char **out)
{
    char *o, *e;
    int rc = ctl(&o, &e, args);
    if (rc != want)
        fail_msg("ztbctl %s %s: exit %d, want %d: %s%s", args[0], args[1] ? args[1] : "", rc, want,
                 o, e);
    free(e);
    if (out != NULL)
        *out = o;
    else
        free(o);
}

static void provision(const char *state)
{
    char keys[400];
    mkdir(state, 0700);
    snprintf(keys, sizeof(keys), "%s/keys", state);
    const char *init[] = {zh_bin("ztbctl"), "keys", "--dir",           keys,  "init",
                          "--skew",         "1",    "--max-token-ttl", "120", NULL};
    const char *ca[] = {zh_bin("ztbctl"), "ca",        "--dir", keys, "init",
                        "--trust-domain", "ztb.local", NULL};
    char *out, *err;
    if (zh_run(init, &out, &err) != 0)
        fail_msg("keys init: %s", err);
    free(out);
    free(err);
    if (zh_run(ca, &out, &err) != 0)
        fail_msg("ca init: %s", err);
    free(out);
    free(err);
}

static int setup(void **state)
{
    (void)state;
    srand((unsigned)time(NULL) ^ (unsigned)getpid());
    zh_redis_start(&rd);
    char st[300];
    zh_tmpdir(state_root, sizeof(state_root));
    snprintf(st, sizeof(st), "%s/state", state_root);
    provision(st);
    struct zh_broker_opts o = {.redis_url = rd.url, .policy = policy_doc, .state_dir = st};
    zh_broker_start(&b, &o);
    za_enroll(&b, &alice, "alice");
    za_enroll(&b, &bob, "bob");
    za_enroll(&b, &gate, "gate");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    za_free(&alice);
    za_free(&bob);
    za_free(&gate);
    assert_int_equal(zh_broker_stop(&b), 0);
    zh_redis_stop(&rd, 1);
    zh_rmtree(b.dir);
    zh_rmtree(state_root);
    return 0;
}

static long introspect(const struct za_agent *caller, const char *tok, const char *extra,
                       struct zh_resp *r)
{
    char form[12288];
    if (caller != NULL)
        snprintf(form, sizeof(form), "token=%s&client_assertion_type=%s&client_assertion=%s%s", tok,
                 ZA_SESSION_TYPE, caller->session, extra ? extra : "");
    else
        snprintf(form, sizeof(form), "token=%s%s", tok, extra ? extra : "");
    return za_post_form(&b, "/v1/introspect", form, r);
}

static long revoke_tok(const struct za_agent *caller, const char *tok, struct zh_resp *r)
{
    char form[12288];
    snprintf(form, sizeof(form),
             "token=%s&token_type_hint=access_token"
             "&client_assertion_type=%s&client_assertion=%s",
             tok, ZA_SESSION_TYPE, caller->session);
    return za_post_form(&b, "/v1/revoke", form, r);
}

static void token(const struct za_agent *a, const char *aud, const char *scope, char *tok)
{
    struct zh_resp r;
    if (za_token(&b, a, aud, scope, &r, tok, 4096) != 200)
        fail_msg("token %s %s: HTTP %ld %s", aud, scope, r.status, r.body);
    zh_resp_free(&r);
}

/* ---- RFC 7662 ------------------------------------------------------------------ */

static void test_introspection(void **state)
{
    (void)state;
    char tok[4096];
    token(&alice, "payments", "payments%3Aread", tok);
    struct zh_resp r;
    /* only authenticated callers */
    introspect(NULL, tok, NULL, &r);
    za_expect_error(&r, 401, "invalid_client");
    zh_resp_free(&r);
    char form[1024];
    snprintf(form, sizeof(form), "client_assertion_type=%s&client_assertion=%s", ZA_SESSION_TYPE,
             gate.session);
    za_post_form(&b, "/v1/introspect", form, &r);
    za_expect_error(&r, 400, "invalid_request");
    zh_resp_free(&r);

    /* active: the claims, and the token type */
    assert_int_equal(introspect(&gate, tok, NULL, &r), 200);
    json_t *j = za_json(&r);
    assert_true(json_is_true(json_object_get(j, "active")));
    assert_string_equal(json_string_value(json_object_get(j, "sub")),
                        "spiffe://ztb.local/agent/alice");
    assert_string_equal(json_string_value(json_object_get(j, "aud")), "payments");
    assert_string_equal(json_string_value(json_object_get(j, "scope")), "payments:read");
    assert_string_equal(json_string_value(json_object_get(j, "token_type")), "Bearer");
    assert_string_equal(json_string_value(json_object_get(j, "iss")), b.url);
    assert_true(json_is_integer(json_object_get(j, "exp")));
    assert_true(json_is_string(json_object_get(j, "jti")));
    json_decref(j);
    zh_resp_free(&r);

    /* inactive: garbage, a token we did not sign, an expired one */
    assert_false(za_active(&b, &gate, "garbage"));
    assert_false(za_active(&b, &gate, "eyJhbGciOiJFUzI1NiJ9.e30.AAAA"));
    ztb_key *k;
    assert_int_equal(ztb_key_generate(&k), ZTB_OK);
    json_t *c = za_claims(tok);
    char *claims = json_dumps(c, JSON_COMPACT);
    ztb_buf forged;
    ztb_buf_init(&forged, 8192);
    ztb_jws_sign_opts so = {.typ = "at+jwt"};
    assert_int_equal(ztb_jws_sign(k, &so, claims, strlen(claims), &forged), ZTB_OK);
    assert_false(za_active(&b, &gate, ztb_buf_cstr(&forged)));
    ztb_buf_free(&forged);
    free(claims);
    json_decref(c);
    ztb_key_free(k);
    char brief[4096];
    token(&alice, "payments", "payments%3Apeek", brief);
    assert_true(za_active(&b, &gate, brief));
    sleep(3); /* ttl 1: inactive from exp on (no skew on the broker's clock) */
    assert_false(za_active(&b, &gate, brief));

    /* single-use: introspection can consume it, once */
    char once[4096];
    token(&alice, "payments", "payments%3Arefund", once);
    assert_true(za_active(&b, &gate, once)); /* looking does not consume */
    assert_int_equal(introspect(&gate, once, "&ztb_consume=1", &r), 200);
    assert_non_null(strstr(r.body, "\"active\":true"));
    zh_resp_free(&r);
    assert_int_equal(introspect(&gate, once, "&ztb_consume=1", &r), 200);
    assert_string_equal(r.body, "{\"active\":false}");
    zh_resp_free(&r);
    assert_false(za_active(&b, &gate, once));
    /* the marker outlives exp + the largest skew a verifier may have, not
     * exp + the key store's 1 s: a verifier with skew 60 cannot take it again */
    za_expect_used_marker(&rd, once);

    /* Redis down: never "active" without the revocation state */
    zh_redis_stop(&rd, 0);
    introspect(&gate, tok, NULL, &r);
    za_expect_error(&r, 503, "temporarily_unavailable");
    char ra[16];
    assert_non_null(zh_resp_header(&r, "Retry-After", ra, sizeof(ra)));
    zh_resp_free(&r);
    zh_redis_restart(&rd);
    za_settle(&b, &gate, tok);
    assert_true(za_active(&b, &gate, tok));
}

/* ---- RFC 7009 ------------------------------------------------------------------ */

static void test_revocation_endpoint(void **state)
{
    (void)state;
    char mine[4096], theirs[4096];
    token(&alice, "payments", "payments%3Aread", mine);
    token(&bob, "payments", "payments%3Aread", theirs);
    struct zh_resp r;
    char form[12288];
    snprintf(form, sizeof(form), "token=%s", mine);
    za_post_form(&b, "/v1/revoke", form, &r);
    za_expect_error(&r, 401, "invalid_client");
    zh_resp_free(&r);
    snprintf(form, sizeof(form), "client_assertion_type=%s&client_assertion=%s", ZA_SESSION_TYPE,
             alice.session);
    za_post_form(&b, "/v1/revoke", form, &r);
    za_expect_error(&r, 400, "invalid_request");
    zh_resp_free(&r);

    /* always 200 for a well-formed request: garbage, someone else's token */
    assert_int_equal(revoke_tok(&alice, "garbage", &r), 200);
    zh_resp_free(&r);
    assert_int_equal(revoke_tok(&alice, theirs, &r), 200);
    zh_resp_free(&r);
    assert_true(za_active(&b, &gate, theirs)); /* owner only */
    /* its own token: revoked, announced, until its exp + skew */
    redisContext *sub = zh_redis_connect(&rd);
    redisReply *sr = redisCommand(sub, "SUBSCRIBE ztb:revocations");
    freeReplyObject(sr);
    assert_int_equal(revoke_tok(&alice, mine, &r), 200);
    zh_resp_free(&r);
    assert_false(za_active(&b, &gate, mine));
    json_t *c = za_claims(mine);
    const char *jti = json_string_value(json_object_get(c, "jti"));
    void *vr = NULL;
    struct timeval tv = {2, 0};
    redisSetTimeout(sub, tv);
    assert_int_equal(redisGetReply(sub, &vr), REDIS_OK);
    redisReply *m = vr;
    assert_non_null(strstr(m->element[2]->str, jti));
    freeReplyObject(m);
    redisFree(sub);
    /* again: still 200 */
    assert_int_equal(revoke_tok(&alice, mine, &r), 200);
    zh_resp_free(&r);
    char *audit = za_audit_text(&b);
    assert_non_null(strstr(audit, "\"cause\":\"revoke_endpoint\""));
    assert_non_null(strstr(audit, "\"reason\":\"not the caller's token\""));
    free(audit);
    json_decref(c);
}

/* ---- ztbctl ------------------------------------------------------------------ */

static void test_ztbctl_revoke(void **state)
{
    (void)state;
    char t1[4096], t2[4096], t3[4096], *out;
    token(&alice, "payments", "payments%3Aread", t1);
    token(&alice, "payments", "payments%3Aread", t2);
    /* by jti (with its exp), and from a token file */
    json_t *c = za_claims(t1);
    char exp[32];
    snprintf(exp, sizeof(exp), "%lld", (long long)json_integer_value(json_object_get(c, "exp")));
    const char *by_jti[] = {"revoke",
                            "token",
                            json_string_value(json_object_get(c, "jti")),
                            "--exp",
                            exp,
                            "--reason",
                            "leaked in a ticket",
                            NULL};
    run(by_jti, 0, &out);
    assert_non_null(strstr(out, "revoked until"));
    free(out);
    assert_false(za_active(&b, &gate, t1));
    json_decref(c);
    char path[400];
    snprintf(path, sizeof(path), "%s/t2.jwt", b.dir);
    FILE *f = fopen(path, "w");
    fputs(t2, f);
    fclose(f);
    const char *by_file[] = {"--json", "revoke", "token", "--token-file", path, NULL};
    run(by_file, 0, &out);
    assert_non_null(strstr(out, "\"changed\": true"));
    free(out);
    assert_false(za_active(&b, &gate, t2));

    /* `revoke token -`: the whole token on stdin, never in argv */
    char t4[4096];
    token(&alice, "payments", "payments%3Aread", t4);
    snprintf(path, sizeof(path), "%s/t4.jwt", b.dir);
    f = fopen(path, "w");
    fputs(t4, f);
    fclose(f);
    char cmd[1200], said[4096];
    snprintf(cmd, sizeof(cmd), "'%s' --socket '%s' revoke token - < '%s' 2>&1", zh_bin("ztbctl"),
             b.admin_sock, path);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    said[fread(said, 1, sizeof(said) - 1, p)] = '\0';
    int st = pclose(p);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        fail_msg("ztbctl revoke token - < FILE: %s", said);
    assert_non_null(strstr(said, "revoked until"));
    assert_false(za_active(&b, &gate, t4));
    /* a whole token pasted as the argument: refused with the hint */
    char *po, *pe;
    const char *pasted[] = {"revoke", "token", t3, NULL};
    token(&alice, "payments", "payments%3Aread", t3);
    assert_int_equal(ctl(&po, &pe, pasted), 2);
    assert_non_null(strstr(pe, "looks like a whole token"));
    assert_non_null(strstr(pe, "ztbctl revoke token - < FILE"));
    free(po);
    free(pe);
    assert_true(za_active(&b, &gate, t3)); /* nothing was sent */

    /* an agent: its generation moves, its tokens die, new ones work */
    token(&bob, "crm", "crm%3Aread", t3);
    const char *agent[] = {"revoke", "agent", "bob", NULL};
    run(agent, 0, &out);
    assert_non_null(strstr(out, "generation now 2"));
    free(out);
    assert_false(za_active(&b, &gate, t3));
    const char *ghost[] = {"revoke", "agent", "ghost", NULL};
    run(ghost, 1, NULL);

    /* an audience */
    const char *aud[] = {"revoke", "audience", "crm", "--reason", "incident 42", NULL};
    run(aud, 0, &out);
    assert_non_null(strstr(out, "audience crm disabled until lifted"));
    free(out);
    struct zh_resp r;
    za_token(&b, &alice, "crm", "crm%3Aread", &r, NULL, 0);
    za_expect_error(&r, 403, "access_denied");
    zh_resp_free(&r);

    /* the list: table and JSON */
    const char *list[] = {"revoke", "list", NULL};
    run(list, 0, &out);
    assert_non_null(strstr(out, "TYPE"));
    assert_non_null(strstr(out, "until lifted"));
    assert_non_null(strstr(out, "bob"));
    free(out);
    const char *jlist[] = {"--json", "revoke", "list", NULL};
    run(jlist, 0, &out);
    json_error_t e;
    json_t *arr = json_loads(out, 0, &e);
    assert_true(json_is_array(arr) && json_array_size(arr) >= 4);
    json_decref(arr);
    free(out);
    const char *lift[] = {"revoke", "audience", "crm", "--lift", NULL};
    run(lift, 0, NULL);

    /* quarantine and release */
    const char *q[] = {"quarantine", "alice", "--reason", "SOC ticket 7", NULL};
    run(q, 0, &out);
    assert_non_null(strstr(out, "agent alice quarantined"));
    free(out);
    za_token(&b, &alice, "payments", "payments%3Aread", &r, NULL, 0);
    za_expect_error(&r, 403, "access_denied");
    zh_resp_free(&r);
    run(q, 0, &out);
    assert_non_null(strstr(out, "(already)"));
    free(out);
    const char *rel[] = {"--json", "release", "alice", NULL};
    run(rel, 0, &out);
    assert_non_null(strstr(out, "\"quarantined\": false"));
    free(out);
    token(&alice, "payments", "payments%3Aread", t1);

    /* a key: tainted, and signing moves to another */
    char kid[64];
    za_kid(t1, kid, sizeof(kid));
    const char *key[] = {"revoke", "key", kid, NULL};
    run(key, 0, &out);
    assert_non_null(strstr(out, "tainted until"));
    assert_non_null(strstr(out, "tokens are now signed by"));
    free(out);
    assert_false(za_active(&b, &gate, t1));
    token(&alice, "payments", "payments%3Aread", t2);
    char kid2[64];
    za_kid(t2, kid2, sizeof(kid2));
    assert_string_not_equal(kid, kid2);

    /* usage errors */
    const char *bad1[] = {"revoke", "frob", "x", NULL};
    run(bad1, 2, NULL);
    const char *bad2[] = {"revoke", "agent", "bob", "--lift", NULL};
    run(bad2, 2, NULL);
    const char *bad3[] = {"revoke", "token", NULL};
    run(bad3, 2, NULL);

    /* every operator revocation is in the audit log, durably, with the reason */
    char *audit = za_audit_text(&b);
    assert_non_null(strstr(audit, "\"reason\":\"leaked in a ticket\""));
    assert_non_null(strstr(audit, "\"reason\":\"incident 42\""));
    assert_non_null(strstr(audit, "\"event\":\"revocation.lifted\""));
    char me[96]; /* audited by user name */
    snprintf(me, sizeof(me), "\"actor\":\"operator:%s\"", getpwuid(geteuid())->pw_name);
    assert_non_null(strstr(audit, me));
    free(audit);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_introspection),
        cmocka_unit_test(test_revocation_endpoint),
        cmocka_unit_test(test_ztbctl_revoke),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
