/*
 * test_delegation.c - RFC 8693 delegation (subject_token) against the real
 * broker (serving HTTPS, so an agent can also authenticate by mTLS) and a
 * real Redis, played as an attacker would: a single-use subject token
 * replayed, a DPoP- or mTLS-bound one presented without its proof, one
 * restricted by may_act presented by another agent, an agent delegating to
 * itself; and a policy rule that requires may_act.
 *
 * alice owns the subject tokens; bob is the agent she delegates to; carol
 * is any other enrolled agent (a thief holding alice's token).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "agent.h"
#include "harness.h"
#include "pki/dpop.h"

#define SUBJECT_TYPE "urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Aaccess_token"

static const char *policy_doc =
    "{\"version\": 1, \"trust_domain\": \"ztb.local\",\n"
    " \"settings\": {\"max_ttl\": 300, \"default_ttl\": 60,\n"
    "   \"rate_limits\": {\"per_agent\": {\"rate\": 1000, \"burst\": 100, \"period\": 60},\n"
    "                   \"per_action\": {\"rate\": 1000, \"burst\": 100, \"period\": 60}}},\n"
    " \"rules\": [\n"
    "  {\"id\": \"subject\", \"effect\": \"allow\", \"agents\": [\"alice\"],\n"
    "   \"actions\": [\"orders:delegate\"], \"audiences\": [\"https://127.0.0.1:*\"],\n"
    "   \"resources\": [\"**\"]},\n"
    "  {\"id\": \"subject-once\", \"effect\": \"allow\", \"agents\": [\"alice\"],\n"
    "   \"actions\": [\"orders:delegate-once\"], \"audiences\": [\"https://127.0.0.1:*\"],\n"
    "   \"resources\": [\"**\"], \"obligations\": {\"single_use\": true}},\n"
    "  {\"id\": \"subject-dpop\", \"effect\": \"allow\", \"agents\": [\"alice\"],\n"
    "   \"actions\": [\"orders:delegate-dpop\"], \"audiences\": [\"https://127.0.0.1:*\"],\n"
    "   \"resources\": [\"**\"], \"obligations\": {\"binding\": \"dpop\"}},\n"
    "  {\"id\": \"subject-mtls\", \"effect\": \"allow\", \"agents\": [\"alice\"],\n"
    "   \"actions\": [\"orders:delegate-mtls\"], \"audiences\": [\"https://127.0.0.1:*\"],\n"
    "   \"resources\": [\"**\"], \"obligations\": {\"binding\": \"mtls\"}},\n"
    "  {\"id\": \"act-read\", \"effect\": \"allow\", \"agents\": [\"*\"],\n"
    "   \"actions\": [\"orders:read\"], \"audiences\": [\"orders\"], \"resources\": [\"**\"],\n"
    "   \"conditions\": {\"delegation\": \"required\"}},\n"
    "  {\"id\": \"act-write-restricted\", \"effect\": \"allow\", \"agents\": [\"*\"],\n"
    "   \"actions\": [\"orders:write\"], \"audiences\": [\"orders\"], \"resources\": [\"**\"],\n"
    "   \"conditions\": {\"delegation\": \"restricted\"}}\n"
    " ]}\n";

static struct zh_redis rd;
static struct zh_broker b;
static struct za_agent alice, bob, carol;
static char dir[256], srv_crt[300], srv_key[300], alice_crt[300], alice_key[300];
static char issuer_enc[400]; /* the broker's issuer, form-encoded */

static void write_file(const char *path, const char *text, mode_t mode)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    chmod(path, mode);
}

/* Enroll a (as za_enroll) and keep its identity document and key as files. */
static void enroll_with_files(struct za_agent *a, const char *name, const char *crt,
                              const char *key)
{
    memset(a, 0, sizeof(*a));
    snprintf(a->name, sizeof(a->name), "%s", name);
    assert_int_equal(ztb_key_generate(&a->key), ZTB_OK);
    char *join = za_join_token(&b, name);
    struct zh_resp r;
    if (za_enroll_with(&b, a, join, &r) != 201)
        fail_msg("enroll %s: HTTP %ld %s", name, r.status, r.body);
    free(join);
    json_t *j = za_json(&r);
    write_file(crt, json_string_value(json_object_get(j, "identity")), 0644);
    json_decref(j);
    zh_resp_free(&r);
    ztb_buf pem;
    ztb_buf_init(&pem, 8192);
    assert_int_equal(ztb_key_private_pem(a->key, NULL, 0, &pem), ZTB_OK);
    write_file(key, ztb_buf_cstr(&pem), 0600);
    ztb_buf_free(&pem);
    ztb_buf as;
    ztb_buf_init(&as, 4096);
    za_assertion(&b, a, NULL, &as);
    char form[4096];
    snprintf(form, sizeof(form), "client_assertion_type=%s&client_assertion=%s", ZA_ASSERTION_TYPE,
             ztb_buf_cstr(&as));
    ztb_buf_free(&as);
    if (za_post_form(&b, "/v1/session", form, &r) != 200)
        fail_msg("session %s: HTTP %ld %s", name, r.status, r.body);
    j = za_json(&r);
    snprintf(a->session, sizeof(a->session), "%s",
             json_string_value(json_object_get(j, "session")));
    json_decref(j);
    zh_resp_free(&r);
}

static int setup(void **state)
{
    (void)state;
    srand((unsigned)time(NULL) ^ (unsigned)getpid());
    zh_tmpdir(dir, sizeof(dir));
    zh_tls_server_cert(dir, srv_crt, srv_key);
    snprintf(alice_crt, sizeof(alice_crt), "%s/alice.crt", dir);
    snprintf(alice_key, sizeof(alice_key), "%s/alice.key", dir);
    zh_redis_start(&rd);
    struct zh_broker_opts o = {.redis_url = rd.url,
                               .with_keys = 1,
                               .policy = policy_doc,
                               .tls_cert = srv_crt,
                               .tls_key = srv_key};
    zh_broker_start(&b, &o);
    assert_int_equal(strncmp(b.url, "https://127.0.0.1:", 18), 0);
    snprintf(issuer_enc, sizeof(issuer_enc), "https%%3A%%2F%%2F127.0.0.1%%3A%s", b.url + 18);
    enroll_with_files(&alice, "alice", alice_crt, alice_key);
    za_enroll(&b, &bob, "bob");
    za_enroll(&b, &carol, "carol");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    zh_tls_client(NULL, NULL);
    za_free(&alice);
    za_free(&bob);
    za_free(&carol);
    assert_int_equal(zh_broker_stop(&b), 0);
    zh_redis_stop(&rd, 1);
    zh_rmtree(b.dir);
    zh_rmtree(dir);
    return 0;
}

/*
 * POST /v1/token as a (session; a NULL: mTLS, no client assertion) with
 * extra form parameters and an optional DPoP proof. On 200 the token is
 * copied into tok (4096 bytes) when tok is not NULL. Returns the status.
 */
static long token(const struct za_agent *a, const char *audience, const char *scope,
                  const char *extra, const char *dpop, struct zh_resp *r, char *tok)
{
    char form[12288], url[128], hdr[4200];
    int n = snprintf(form, sizeof(form),
                     "grant_type=urn%%3Aietf%%3Aparams%%3Aoauth%%3Agrant-type%%3Atoken-exchange"
                     "&audience=%s&scope=%s%s",
                     audience, scope, extra ? extra : "");
    if (a != NULL)
        snprintf(form + n, sizeof(form) - (size_t)n,
                 "&client_assertion_type=%s&client_assertion=%s", ZA_SESSION_TYPE, a->session);
    snprintf(url, sizeof(url), "%s/v1/token", b.url);
    const char *headers[] = {hdr, NULL};
    if (dpop != NULL)
        snprintf(hdr, sizeof(hdr), "DPoP: %s", dpop);
    assert_int_equal(zh_http("POST", url, NULL, "application/x-www-form-urlencoded", form,
                             strlen(form), dpop ? headers : NULL, r),
                     0);
    if (r->status == 200 && tok != NULL) {
        json_t *j = za_json(r);
        snprintf(tok, 4096, "%s", json_string_value(json_object_get(j, "access_token")));
        json_decref(j);
    }
    return r->status;
}

/* alice's subject token for scope (addressed to the broker); extra as above. */
static void subject_token(const char *scope, const char *extra, const char *dpop, char *tok)
{
    struct zh_resp r;
    if (token(&alice, issuer_enc, scope, extra, dpop, &r, tok) != 200)
        fail_msg("subject token %s: HTTP %ld %s", scope, r.status, r.body);
    zh_resp_free(&r);
}

/* presenter exchanges subject for orders:read (or scope) on orders. */
static long exchange(const struct za_agent *presenter, const char *scope, const char *subject,
                     const char *dpop, struct zh_resp *r, char *tok)
{
    char extra[8192];
    snprintf(extra, sizeof(extra), "&subject_token=%s&subject_token_type=%s", subject,
             SUBJECT_TYPE);
    return token(presenter, "orders", scope, extra, dpop, r, tok);
}

static void expect_grant_refused(const struct zh_resp *r, const char *why_part)
{
    za_expect_error(r, 400, "invalid_grant");
    if (why_part != NULL && strstr(r->body, why_part) == NULL)
        fail_msg("want a reason naming \"%s\": %s", why_part, r->body);
}

static void dpop_proof(const ztb_key *k, ztb_buf *out)
{
    char htu[160];
    snprintf(htu, sizeof(htu), "%s/v1/token", b.url);
    ztb_buf_reset(out);
    assert_int_equal(ztb_dpop_proof_make(k, "POST", htu, time(NULL), NULL, out), ZTB_OK);
}

/* ---- the attacks ------------------------------------------------------------ */

/* The happy path, and an agent presenting its own token (self-delegation). */
static void test_self_delegation_refused(void **state)
{
    (void)state;
    char subj[4096], tok[4096];
    subject_token("orders%3Adelegate", NULL, NULL, subj);
    struct zh_resp r;
    assert_int_equal(exchange(&bob, "orders%3Aread", subj, NULL, &r, tok), 200);
    zh_resp_free(&r);
    json_t *c = za_claims(tok);
    assert_string_equal(json_string_value(json_object_get(c, "sub")),
                        "spiffe://ztb.local/agent/bob");
    assert_string_equal(json_string_value(json_object_get(json_object_get(c, "act"), "sub")),
                        "spiffe://ztb.local/agent/alice");
    json_decref(c);
    /* alice "on behalf of" alice: refused */
    exchange(&alice, "orders%3Aread", subj, NULL, &r, NULL);
    expect_grant_refused(&r, "self-delegation");
    zh_resp_free(&r);
}

/* A single-use subject token works once, for everyone together. */
static void test_single_use_subject_consumed(void **state)
{
    (void)state;
    char subj[4096];
    subject_token("orders%3Adelegate-once", NULL, NULL, subj);
    json_t *c = za_claims(subj);
    assert_true(json_is_true(json_object_get(json_object_get(c, "ztb"), "single_use")));
    struct zh_resp r;
    assert_int_equal(exchange(&bob, "orders%3Aread", subj, NULL, &r, NULL), 200);
    zh_resp_free(&r);
    exchange(&bob, "orders%3Aread", subj, NULL, &r, NULL);
    expect_grant_refused(&r, "already used");
    zh_resp_free(&r);
    exchange(&carol, "orders%3Aread", subj, NULL, &r, NULL);
    expect_grant_refused(&r, NULL);
    zh_resp_free(&r);
    /* the same marker verifiers use, kept until exp + the largest verifier skew */
    za_expect_used_marker(&rd, subj);
    json_decref(c);
    /* a denied exchange does not use a single-use token up */
    subject_token("orders%3Adelegate-once", NULL, NULL, subj);
    exchange(&bob, "orders%3Awrite", subj, NULL, &r, NULL); /* not restricted: denied */
    za_expect_error(&r, 403, "access_denied");
    zh_resp_free(&r);
    assert_int_equal(exchange(&bob, "orders%3Aread", subj, NULL, &r, NULL), 200);
    zh_resp_free(&r);
}

/* A DPoP-bound subject token needs a proof of its cnf.jkt key. */
static void test_dpop_bound_subject_needs_proof(void **state)
{
    (void)state;
    ztb_key *ka, *kb;
    assert_int_equal(ztb_key_generate(&ka), ZTB_OK);
    assert_int_equal(ztb_key_generate(&kb), ZTB_OK);
    ztb_buf p;
    ztb_buf_init(&p, 4096);
    dpop_proof(ka, &p);
    char subj[4096];
    subject_token("orders%3Adelegate-dpop", NULL, ztb_buf_cstr(&p), subj);
    json_t *c = za_claims(subj);
    assert_non_null(json_object_get(json_object_get(c, "cnf"), "jkt"));
    json_decref(c);
    struct zh_resp r;
    /* stolen without the key: no proof, or a proof of the thief's own key */
    exchange(&carol, "orders%3Aread", subj, NULL, &r, NULL);
    expect_grant_refused(&r, "DPoP-bound");
    zh_resp_free(&r);
    dpop_proof(kb, &p);
    exchange(&carol, "orders%3Aread", subj, ztb_buf_cstr(&p), &r, NULL);
    expect_grant_refused(&r, "DPoP-bound");
    zh_resp_free(&r);
    /* with a proof of the bound key (alice handed bob the key): accepted */
    dpop_proof(ka, &p);
    assert_int_equal(exchange(&bob, "orders%3Aread", subj, ztb_buf_cstr(&p), &r, NULL), 200);
    zh_resp_free(&r);
    ztb_buf_free(&p);
    ztb_key_free(ka);
    ztb_key_free(kb);
}

/* An mTLS-bound subject token needs the connection's certificate to be its cnf.x5t#S256. */
static void test_mtls_bound_subject_needs_certificate(void **state)
{
    (void)state;
    char subj[4096];
    struct zh_resp r;
    zh_tls_client(alice_crt, alice_key);
    if (token(NULL, issuer_enc, "orders%3Adelegate-mtls", NULL, NULL, &r, subj) != 200)
        fail_msg("mTLS subject token: HTTP %ld %s", r.status, r.body);
    zh_resp_free(&r);
    zh_tls_client(NULL, NULL);
    json_t *c = za_claims(subj);
    assert_non_null(json_object_get(json_object_get(c, "cnf"), "x5t#S256"));
    json_decref(c);
    /* presented by another agent, without alice's certificate */
    exchange(&carol, "orders%3Aread", subj, NULL, &r, NULL);
    expect_grant_refused(&r, "mTLS-bound");
    zh_resp_free(&r);
    exchange(&bob, "orders%3Aread", subj, NULL, &r, NULL);
    expect_grant_refused(&r, "mTLS-bound");
    zh_resp_free(&r);
}

/* may_act names who may present the token; policy can require it. */
static void test_may_act(void **state)
{
    (void)state;
    char subj[4096], tok[4096];
    subject_token("orders%3Adelegate", "&may_act=spiffe%3A%2F%2Fztb.local%2Fagent%2Fbob", NULL,
                  subj);
    json_t *c = za_claims(subj);
    assert_string_equal(json_string_value(json_object_get(json_object_get(c, "may_act"), "sub")),
                        "spiffe://ztb.local/agent/bob");
    json_decref(c);
    struct zh_resp r;
    /* carol stole it: refused, whatever policy would allow her */
    exchange(&carol, "orders%3Aread", subj, NULL, &r, NULL);
    expect_grant_refused(&r, "may_act");
    zh_resp_free(&r);
    /* bob: allowed, also by the rule that requires may_act */
    assert_int_equal(exchange(&bob, "orders%3Aread", subj, NULL, &r, NULL), 200);
    zh_resp_free(&r);
    assert_int_equal(exchange(&bob, "orders%3Awrite", subj, NULL, &r, tok), 200);
    zh_resp_free(&r);
    c = za_claims(tok);
    assert_string_equal(json_string_value(json_object_get(c, "scope")), "orders:write");
    json_decref(c);
    /* delegation without may_act: the restricted rule does not apply */
    subject_token("orders%3Adelegate", NULL, NULL, subj);
    exchange(&bob, "orders%3Awrite", subj, NULL, &r, NULL);
    za_expect_error(&r, 403, "access_denied");
    assert_non_null(strstr(r.body, "delegation restricted"));
    zh_resp_free(&r);

    /* asking for may_act: a SPIFFE ID of another agent, on a subject token */
    const char *bad[] = {"&may_act=bob", "&may_act=spiffe%3A%2F%2Fother.org%2Fagent%2Fbob",
                         "&may_act=spiffe%3A%2F%2Fztb.local%2Fagent%2Falice",
                         "&may_act=spiffe%3A%2F%2Fztb.local%2Fagent%2FBad%20Name", NULL};
    for (const char *const *x = bad; *x; x++) {
        token(&alice, issuer_enc, "orders%3Adelegate", *x, NULL, &r, NULL);
        za_expect_error(&r, 400, "invalid_request");
        zh_resp_free(&r);
    }
    token(&alice, "orders", "orders%3Adelegate", "&may_act=spiffe%3A%2F%2Fztb.local%2Fagent%2Fbob",
          NULL, &r, NULL);
    za_expect_error(&r, 400, "invalid_request");
    zh_resp_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_self_delegation_refused),
        cmocka_unit_test(test_single_use_subject_consumed),
        cmocka_unit_test(test_dpop_bound_subject_needs_proof),
        cmocka_unit_test(test_mtls_bound_subject_needs_certificate),
        cmocka_unit_test(test_may_act),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
