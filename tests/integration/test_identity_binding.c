/*
 * test_identity_binding.c - a superseded or revoked identity is dead at
 * every endpoint, against the real broker (HTTPS with client certificates)
 * and its real Redis.
 *
 * The attack: an intruder copies an agent's identity document and key (or
 * a session made from them). The operator re-enrolls the agent with a new
 * join token, or revokes it. Whatever the intruder holds must then get
 * nothing anywhere (tokens, sessions, introspection, signals, renewal), it
 * must not be able to renew the identity onto a key of its own, and the
 * real agent must be unaffected. A stale session must be refused before it
 * costs the agent anything (rate-limit buckets, detector signals).
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

#include <cmocka.h>
#include <jansson.h>

#include "agent.h"
#include "harness.h"
#include "pki/csr.h"

static const char *policy_doc =
    "{\"version\": 1, \"trust_domain\": \"ztb.local\",\n"
    " \"settings\": {\"max_ttl\": 300, \"default_ttl\": 60, \"rate_limits\": {\n"
    "   \"per_agent\": {\"rate\": 600, \"burst\": 100, \"period\": 60},\n"
    "   \"per_action\": {\"rate\": 600, \"burst\": 100, \"period\": 60}}},\n"
    " \"rules\": [\n"
    "  {\"id\": \"crm-read\", \"effect\": \"allow\", \"agents\": [\"crm-sync\", \"worker\"],\n"
    "   \"actions\": [\"crm:read\"], \"audiences\": [\"crm\"], \"resources\": [\"**\"]},\n"
    "  {\"id\": \"introspect\", \"effect\": \"allow\", \"agents\": [\"crm-sync\", \"worker\"],\n"
    "   \"actions\": [\"ztb:introspect\"], \"audiences\": [\"**\"], \"resources\": [\"**\"]}]}\n";

#define GRANT     "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange"
#define FORM_READ GRANT "&audience=crm&scope=crm%3Aread"

static struct zh_broker b;
static struct zh_redis rd;
static char dir[256], srv_crt[300], srv_key[300];

/* An identity as an intruder would copy it: the certificate and key files. */
struct identity {
    struct za_agent a;
    char crt[300], key[300];
};

static void write_file(const char *path, const char *text, mode_t mode)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    chmod(path, mode);
}

/* Enroll name with a fresh key and join token; keep the document in files. */
static void enroll(struct identity *id, const char *name, const char *tag, const char *join)
{
    memset(id, 0, sizeof(*id));
    snprintf(id->a.name, sizeof(id->a.name), "%s", name);
    assert_int_equal(ztb_key_generate(&id->a.key), ZTB_OK);
    struct zh_resp r;
    zh_tls_client(NULL, NULL);
    if (za_enroll_with(&b, &id->a, join, &r) != 201)
        fail_msg("enroll %s: %ld %s", name, r.status, r.body);
    json_t *j = za_json(&r);
    snprintf(id->crt, sizeof(id->crt), "%s/%s.crt", dir, tag);
    snprintf(id->key, sizeof(id->key), "%s/%s.key", dir, tag);
    write_file(id->crt, json_string_value(json_object_get(j, "identity")), 0644);
    ztb_buf pem;
    ztb_buf_init(&pem, 4096);
    assert_int_equal(ztb_key_private_pem(id->a.key, NULL, 0, &pem), ZTB_OK);
    write_file(id->key, ztb_buf_cstr(&pem), 0600);
    ztb_buf_free(&pem);
    json_decref(j);
    zh_resp_free(&r);
}

/* A new join token for an existing agent (admin API); caller frees. */
static char *join_again(const char *name)
{
    char path[128];
    snprintf(path, sizeof(path), "/v1/agents/%s/join-tokens", name);
    struct zh_resp r;
    assert_int_equal(zh_admin(&b, "POST", path, NULL, &r), 0);
    assert_int_equal(r.status, 201);
    json_t *j = za_json(&r);
    char *tok = strdup(json_string_value(json_object_get(j, "join_token")));
    json_decref(j);
    zh_resp_free(&r);
    return tok;
}

static void revoke_agent(const char *name)
{
    char body[128];
    snprintf(body, sizeof(body), "{\"type\":\"agent\",\"id\":\"%s\"}", name);
    struct zh_resp r;
    assert_int_equal(zh_admin(&b, "POST", "/v1/revocations", body, &r), 0);
    if (r.status != 200)
        fail_msg("revoke: %ld %s", r.status, r.body);
    zh_resp_free(&r);
}

/* POST as the holder of id's certificate (mTLS, no other credential). */
static long post_mtls(const struct identity *id, const char *path, const char *ctype,
                      const char *body, struct zh_resp *r)
{
    char url[160];
    snprintf(url, sizeof(url), "%s%s", b.url, path);
    zh_tls_client(id->crt, id->key);
    int rc = zh_http("POST", url, NULL, ctype, body, strlen(body), NULL, r);
    zh_tls_client(NULL, NULL);
    return rc == 0 ? r->status : 0;
}

/* A renewal request (mTLS) with a CSR signed by csr_key. */
static long renew_mtls(const struct identity *id, ztb_key *csr_key, struct zh_resp *r)
{
    char spiffe[128];
    snprintf(spiffe, sizeof(spiffe), "spiffe://ztb.local/agent/%s", id->a.name);
    ztb_buf csr;
    ztb_buf_init(&csr, 8192);
    assert_int_equal(ztb_csr_make(csr_key, spiffe, &csr), ZTB_OK);
    json_t *req = json_pack("{s:s}", "csr", ztb_buf_cstr(&csr));
    char *text = json_dumps(req, 0);
    long st = post_mtls(id, "/v1/renew", "application/json", text, r);
    free(text);
    json_decref(req);
    ztb_buf_free(&csr);
    return st;
}

/* A session credential from a client assertion of a; its HTTP status. */
static long session_of(struct za_agent *a)
{
    ztb_buf as;
    ztb_buf_init(&as, 4096);
    za_assertion(&b, a, NULL, &as);
    char form[4096];
    snprintf(form, sizeof(form), "client_assertion_type=%s&client_assertion=%s", ZA_ASSERTION_TYPE,
             ztb_buf_cstr(&as));
    ztb_buf_free(&as);
    struct zh_resp r;
    long st = za_post_form(&b, "/v1/session", form, &r);
    if (st == 200) {
        json_t *j = za_json(&r);
        snprintf(a->session, sizeof(a->session), "%s",
                 json_string_value(json_object_get(j, "session")));
        json_decref(j);
    }
    zh_resp_free(&r);
    return st;
}

/* Every endpoint an identity document opens: all must refuse a dead one. */
static void expect_dead_everywhere(const struct identity *id, const char *live_token)
{
    struct zh_resp r;
    char form[8192];
    assert_int_equal(post_mtls(id, "/v1/token", "application/x-www-form-urlencoded", FORM_READ, &r),
                     401);
    za_expect_error(&r, 401, "invalid_client");
    zh_resp_free(&r);
    assert_int_equal(post_mtls(id, "/v1/session", "application/x-www-form-urlencoded", "", &r),
                     401);
    zh_resp_free(&r);
    snprintf(form, sizeof(form), "token=%s", live_token);
    assert_int_equal(post_mtls(id, "/v1/introspect", "application/x-www-form-urlencoded", form, &r),
                     401);
    zh_resp_free(&r);
    char sig[512];
    snprintf(sig, sizeof(sig),
             "{\"jti\":\"sig-%ld-%d\",\"events\":{\"prompt_injection\":{\"subject\":"
             "{\"agent\":\"worker\"},\"severity\":\"low\",\"confidence\":0.1}}}",
             (long)time(NULL), rand());
    assert_int_equal(post_mtls(id, "/v1/signals", "application/json", sig, &r), 401);
    zh_resp_free(&r);
    assert_int_equal(renew_mtls(id, id->a.key, &r), 401);
    zh_resp_free(&r);
}

static void expect_alive(const struct identity *id)
{
    struct zh_resp r;
    long st = post_mtls(id, "/v1/token", "application/x-www-form-urlencoded", FORM_READ, &r);
    if (st != 200)
        fail_msg("the current identity was refused: %ld %s", st, r.body);
    zh_resp_free(&r);
}

static int setup(void **state)
{
    (void)state;
    zh_tmpdir(dir, sizeof(dir));
    zh_tls_server_cert(dir, srv_crt, srv_key);
    zh_redis_start(&rd);
    struct zh_broker_opts o = {.redis_url = rd.url,
                               .with_keys = 1,
                               .policy = policy_doc,
                               .tls_cert = srv_crt,
                               .tls_key = srv_key};
    zh_broker_start(&b, &o);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    zh_tls_client(NULL, NULL);
    assert_int_equal(zh_broker_stop(&b), 0);
    zh_rmtree(b.dir);
    zh_redis_stop(&rd, 1);
    zh_rmtree(dir);
    return 0;
}

/* Re-enrollment supersedes: the copied document and key, and sessions made
 * from them, get nothing anywhere; the re-enrolled agent is unaffected. */
static void test_reenrollment_kills_the_old_identity(void **state)
{
    (void)state;
    struct za_agent w;
    za_enroll(&b, &w, "worker"); /* owns a live token the intruder may probe */
    char tok[4096];
    struct zh_resp r;
    assert_int_equal(za_token(&b, &w, "crm", "crm%3Aread", &r, tok, sizeof(tok)), 200);
    zh_resp_free(&r);

    char *join = za_join_token(&b, "crm-sync");
    struct identity old;
    enroll(&old, "crm-sync", "old", join);
    free(join);
    /* crm-sync may send signals as an enrolled identity */
    assert_int_equal(zh_admin(&b, "POST", "/v1/signal-sources",
                              "{\"name\":\"crm-src\",\"agent\":\"crm-sync\"}", &r),
                     0);
    assert_int_equal(r.status, 201);
    zh_resp_free(&r);
    expect_alive(&old);
    assert_int_equal(session_of(&old.a), 200); /* the intruder's copy of a session */
    struct za_agent stolen_session = old.a;

    join = join_again("crm-sync");
    struct identity cur;
    enroll(&cur, "crm-sync", "cur", join);
    free(join);

    expect_dead_everywhere(&old, tok);
    /* and its key's assertions, and the session made before */
    assert_int_equal(session_of(&old.a), 401);
    assert_int_equal(za_token(&b, &stolen_session, "crm", "crm%3Aread", &r, NULL, 0), 401);
    zh_resp_free(&r);
    /* the real agent works everywhere */
    expect_alive(&cur);
    assert_int_equal(session_of(&cur.a), 200);
    assert_int_equal(za_token(&b, &cur.a, "crm", "crm%3Aread", &r, NULL, 0), 200);
    zh_resp_free(&r);

    /* renewal keeps the key: onto a foreign key it is refused, and the
     * current document stays the agent's */
    ztb_key *foreign;
    assert_int_equal(ztb_key_generate(&foreign), ZTB_OK);
    assert_int_equal(renew_mtls(&cur, foreign, &r), 400);
    za_expect_error(&r, 400, "invalid_request");
    zh_resp_free(&r);
    ztb_key_free(foreign);
    expect_alive(&cur);
    /* a renewal with the same key supersedes the document it renewed */
    assert_int_equal(renew_mtls(&cur, cur.a.key, &r), 201);
    json_t *j = za_json(&r);
    struct identity renewed = cur;
    snprintf(renewed.crt, sizeof(renewed.crt), "%s/renewed.crt", dir);
    write_file(renewed.crt, json_string_value(json_object_get(j, "identity")), 0644);
    json_decref(j);
    zh_resp_free(&r);
    expect_alive(&renewed);
    assert_int_equal(
        post_mtls(&cur, "/v1/token", "application/x-www-form-urlencoded", FORM_READ, &r), 401);
    zh_resp_free(&r);
    /* sessions of the same identity survive its renewal */
    assert_int_equal(za_token(&b, &cur.a, "crm", "crm%3Aread", &r, NULL, 0), 200);
    zh_resp_free(&r);

    za_free(&old.a);
    za_free(&cur.a);
    za_free(&w);
}

/* A revocation of the agent kills every identity document issued before it,
 * until an operator hands out a new join token. */
static void test_revocation_needs_a_new_join_token(void **state)
{
    (void)state;
    char *join = za_join_token(&b, "rev-bot");
    struct identity id;
    enroll(&id, "rev-bot", "rev", join);
    free(join);
    assert_int_equal(session_of(&id.a), 200);
    revoke_agent("rev-bot");
    /* certificate, assertion and session: all refused */
    struct zh_resp r;
    assert_int_equal(post_mtls(&id, "/v1/session", "application/x-www-form-urlencoded", "", &r),
                     401);
    assert_non_null(strstr(r.body, "join token"));
    zh_resp_free(&r);
    assert_int_equal(renew_mtls(&id, id.a.key, &r), 401);
    zh_resp_free(&r);
    struct za_agent copy = id.a;
    assert_int_equal(za_token(&b, &copy, "crm", "crm%3Aread", &r, NULL, 0), 401);
    zh_resp_free(&r);
    assert_int_equal(session_of(&id.a), 401);
    /* a new join token brings the agent back */
    join = join_again("rev-bot");
    struct identity back;
    enroll(&back, "rev-bot", "back", join);
    free(join);
    assert_int_equal(session_of(&back.a), 200);
    assert_int_equal(post_mtls(&id, "/v1/session", "application/x-www-form-urlencoded", "", &r),
                     401);
    zh_resp_free(&r);
    za_free(&id.a);
    za_free(&back.a);
}

/* 1 if key exists in the broker's Redis. */
static long long redis_exists(const char *key)
{
    redisContext *c = zh_redis_connect(&rd);
    redisReply *rep = redisCommand(c, "EXISTS %s", key);
    assert_non_null(rep);
    long long v = rep->integer;
    freeReplyObject(rep);
    redisFree(c);
    return v;
}

/* A session of a revoked generation is refused before policy, rate limits
 * and detectors: its holder cannot drain the agent's buckets nor raise
 * signals against it. */
static void test_stale_session_costs_nothing(void **state)
{
    (void)state;
    struct za_agent a;
    za_enroll(&b, &a, "worker2");
    revoke_agent("worker2");
    struct zh_resp r;
    for (int i = 0; i < 5; i++) {
        /* allowed by no rule: a live session would get 403 and feed the
         * policy-violation detector */
        assert_int_equal(za_token(&b, &a, "crm", "crm%3Adelete", &r, NULL, 0), 401);
        za_expect_error(&r, 401, "invalid_client");
        zh_resp_free(&r);
        /* allowed: a live session would be charged to the agent's buckets */
        assert_int_equal(za_token(&b, &a, "crm", "crm%3Aread", &r, NULL, 0), 401);
        zh_resp_free(&r);
    }
    char *audit = za_audit_text(&b);
    assert_null(strstr(audit, "\"agent\":\"worker2\",\"action\":\"crm:delete\""));
    assert_null(strstr(audit, "token.denied"));
    free(audit);
    assert_int_equal(redis_exists("ztb:{worker2}:seen"), 0); /* buckets and activity */
    za_free(&a);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    srand((unsigned)time(NULL));
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reenrollment_kills_the_old_identity),
        cmocka_unit_test(test_revocation_needs_a_new_join_token),
        cmocka_unit_test(test_stale_session_costs_nothing),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
