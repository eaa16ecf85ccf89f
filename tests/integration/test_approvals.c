/*
 * test_approvals.c - human approval gates with the real broker and a real
 * Redis: a request policy marks approval_required waits (400
 * authorization_pending with an approval id), operators approve or deny it
 * on the admin socket, and the agent that asked polls /v1/approvals/{id}
 * for the token, which is bound to exactly what was approved.
 *
 * The attacks: a poll without the DPoP key or with another key, another
 * agent polling the id, a poll asking for more than was approved, an agent
 * approving its own request, one person counting twice towards two
 * approvers, an approver outside the group, an approval used twice, after
 * its expiry, or after the agent was revoked or quarantined.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "agent.h"
#include "common/buf.h"
#include "harness.h"
#include "pki/dpop.h"
#include "pki/key.h"

#define GRANT "urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange"

static const char *policy_doc =
    "{\"version\": 1, \"trust_domain\": \"ztb.local\",\n"
    " \"settings\": {\"max_ttl\": 300, \"default_ttl\": 60,\n"
    "   \"rate_limits\": {\"per_agent\": {\"rate\": 1000, \"burst\": 100, \"period\": 60},\n"
    "                   \"per_action\": {\"rate\": 1000, \"burst\": 100, \"period\": 60}}},\n"
    " \"rules\": [\n"
    "  {\"id\": \"refund-small\", \"effect\": \"allow\", \"agents\": [\"*\"],\n"
    "   \"actions\": [\"payments:refund\"], \"audiences\": [\"payments\"],\n"
    "   \"resources\": [\"orders/*\"],\n"
    "   \"conditions\": {\"limits\": [{\"path\": \"amount\", \"max\": 50}]},\n"
    "   \"obligations\": {\"binding\": \"dpop\", \"single_use\": true}},\n"
    "  {\"id\": \"refund-large\", \"effect\": \"allow\", \"agents\": [\"*\"],\n"
    "   \"actions\": [\"payments:refund\"], \"audiences\": [\"payments\"],\n"
    "   \"resources\": [\"orders/*\"],\n"
    "   \"conditions\": {\"limits\": [{\"path\": \"amount\", \"min\": 50.01, \"max\": 4999}]},\n"
    "   \"obligations\": {\"binding\": \"dpop\", \"single_use\": true,\n"
    "     \"approval_required\": {\"group\": \"finance\", \"approvers\": 1,\n"
    "                             \"expires_in\": 120}}},\n"
    "  {\"id\": \"isolate\", \"effect\": \"allow\", \"agents\": [\"*\"],\n"
    "   \"actions\": [\"hosts:isolate\"], \"audiences\": [\"ops\"], \"resources\": [\"hosts/*\"],\n"
    "   \"obligations\": {\"approval_required\": {\"group\": \"sre\", \"approvers\": 2}}},\n"
    "  {\"id\": \"read\", \"effect\": \"allow\", \"agents\": [\"*\"],\n"
    "   \"actions\": [\"orders:read\"], \"audiences\": [\"orders\"], \"resources\": [\"**\"]}\n"
    " ]}\n";

static struct zh_redis rd;
static struct zh_broker b;
static struct za_agent bot, other, victim;
static ztb_key *dpop_key, *thief_key;

/* ---- acting as an agent -------------------------------------------------- */

/* A DPoP proof of k for method and path on the broker into out. */
static void proof(const ztb_key *k, const char *method, const char *path, ztb_buf *out)
{
    char htu[256];
    snprintf(htu, sizeof(htu), "%s%s", b.url, path);
    ztb_buf_reset(out);
    assert_int_equal(ztb_dpop_proof_make(k, method, htu, time(NULL), NULL, out), ZTB_OK);
}

static long post(const char *path, const char *form, const char *dpop, struct zh_resp *r)
{
    char url[256], hdr[2200];
    snprintf(url, sizeof(url), "%s%s", b.url, path);
    const char *headers[] = {hdr, NULL};
    if (dpop != NULL)
        snprintf(hdr, sizeof(hdr), "DPoP: %s", dpop);
    assert_int_equal(zh_http("POST", url, NULL, "application/x-www-form-urlencoded", form,
                             strlen(form), dpop ? headers : NULL, r),
                     0);
    return r->status;
}

/* A refund of amount for order as agent a, DPoP-bound to k (NULL: none). */
static long refund(const struct za_agent *a, const char *order, const char *amount,
                   const ztb_key *k, struct zh_resp *r)
{
    char form[4096];
    snprintf(form, sizeof(form),
             "grant_type=%s&client_assertion_type=%s&client_assertion=%s"
             "&audience=payments&scope=payments%%3Arefund&resource=%s"
             "&authorization_details=%%5B%%7B%%22type%%22%%3A%%22payment%%22%%2C%%22amount%%22%%3A"
             "%s%%7D%%5D",
             GRANT, ZA_SESSION_TYPE, a->session, order, amount);
    ztb_buf p;
    ztb_buf_init(&p, 4096);
    if (k != NULL)
        proof(k, "POST", "/v1/token", &p);
    long st = post("/v1/token", form, k ? ztb_buf_cstr(&p) : NULL, r);
    ztb_buf_free(&p);
    return st;
}

/* A plain token request (no binding) of a for audience, scope, resource. */
static long ask(const struct za_agent *a, const char *audience, const char *scope,
                const char *resource, struct zh_resp *r)
{
    char form[2048];
    snprintf(form, sizeof(form),
             "grant_type=%s&client_assertion_type=%s&client_assertion=%s&audience=%s"
             "&scope=%s&resource=%s",
             GRANT, ZA_SESSION_TYPE, a->session, audience, scope, resource);
    return post("/v1/token", form, NULL, r);
}

/* Poll approval id as a (with a DPoP proof of k, NULL: none), extra form
 * fields appended; the status. */
static long poll_as(const struct za_agent *a, const char *id, const ztb_key *k, const char *extra,
                    struct zh_resp *r)
{
    char path[128], form[1024];
    snprintf(path, sizeof(path), "/v1/approvals/%s", id);
    snprintf(form, sizeof(form), "client_assertion_type=%s&client_assertion=%s%s", ZA_SESSION_TYPE,
             a->session, extra ? extra : "");
    ztb_buf p;
    ztb_buf_init(&p, 4096);
    if (k != NULL)
        proof(k, "POST", path, &p);
    long st = post(path, form, k ? ztb_buf_cstr(&p) : NULL, r);
    ztb_buf_free(&p);
    return st;
}

/* The member k of r's JSON body as a string into out. */
static void member(const struct zh_resp *r, const char *k, char *out, size_t cap)
{
    json_t *j = za_json(r);
    const char *v = json_string_value(json_object_get(j, k));
    if (v == NULL)
        fail_msg("no %s in %s", k, r->body);
    snprintf(out, cap, "%s", v);
    json_decref(j);
}

/* Fail unless r is the pending answer; its approval id into id. */
static void expect_pending(const struct zh_resp *r, char *id, size_t cap)
{
    za_expect_error(r, 400, "authorization_pending");
    json_t *j = za_json(r);
    assert_string_equal(json_string_value(json_object_get(j, "ztb_error")), "APPROVAL_PENDING");
    const char *v = json_string_value(json_object_get(j, "approval_id"));
    assert_non_null(v);
    assert_int_equal(strncmp(v, "apr_", 4), 0);
    snprintf(id, cap, "%s", v);
    assert_true(json_integer_value(json_object_get(j, "interval")) >= 1);
    json_int_t left = json_integer_value(json_object_get(j, "expires_in"));
    assert_true(left > 0 && left <= 900);
    char uri[256];
    snprintf(uri, sizeof(uri), "%s/v1/approvals/%s", b.url, id);
    assert_string_equal(json_string_value(json_object_get(j, "approval_uri")), uri);
    json_decref(j);
}

static void expect_ztb_error(const struct zh_resp *r, long status, const char *name)
{
    if (r->status != status)
        fail_msg("want HTTP %ld, got %ld: %s", status, r->status, r->body);
    json_t *j = za_json(r);
    const char *got = json_string_value(json_object_get(j, "ztb_error"));
    if (got == NULL || strcmp(got, name) != 0)
        fail_msg("want ztb_error %s, got %s", name, r->body);
    json_decref(j);
}

/* ---- acting as operators ------------------------------------------------- */

/* approve (1) or deny (0) id as the admin peer (root), or as sudo_user. */
static long decide(const char *id, int approve, const char *sudo_user, const char *reason,
                   struct zh_resp *r)
{
    char path[128];
    snprintf(path, sizeof(path), "/v1/approvals/%s/%s", id, approve ? "approve" : "deny");
    json_t *body = json_object();
    if (sudo_user != NULL)
        json_object_set_new(body, "sudo_user", json_string(sudo_user));
    if (reason != NULL)
        json_object_set_new(body, "reason", json_string(reason));
    char *text = json_dumps(body, 0);
    assert_int_equal(zh_admin(&b, "POST", path, text, r), 0);
    free(text);
    json_decref(body);
    return r->status;
}

static void approver(const char *group, const char *user, int add)
{
    char path[128], body[128];
    snprintf(path, sizeof(path), "/v1/approvers/%s/%s", group, add ? "add" : "remove");
    snprintf(body, sizeof(body), "{\"user\":\"%s\"}", user);
    struct zh_resp r;
    assert_int_equal(zh_admin(&b, "POST", path, body, &r), 0);
    assert_int_equal(r.status, 200);
    zh_resp_free(&r);
}

static void expect_status(const char *id, const char *status)
{
    char path[128];
    snprintf(path, sizeof(path), "/v1/approvals/%s", id);
    struct zh_resp r;
    assert_int_equal(zh_admin(&b, "GET", path, NULL, &r), 0);
    assert_int_equal(r.status, 200);
    char st[32];
    member(&r, "status", st, sizeof(st));
    assert_string_equal(st, status);
    zh_resp_free(&r);
}

static void expect_audit(const char *needle)
{
    char *log = za_audit_text(&b);
    if (strstr(log, needle) == NULL)
        fail_msg("audit log has no %s", needle);
    free(log);
}

/* ---- the tests ------------------------------------------------------------- */

/*
 * A large refund waits; the same request shares the approval; the approved
 * token goes only to the agent that asked, with the DPoP key it asked with,
 * for exactly the approved action, audience, resource and details, once.
 */
static void test_scope_binding(void **state)
{
    (void)state;
    struct zh_resp r;
    char id[64], again[64];
    refund(&bot, "orders%2F1", "200", dpop_key, &r);
    expect_pending(&r, id, sizeof(id));
    zh_resp_free(&r);
    refund(&bot, "orders%2F1", "200", dpop_key, &r); /* the same request: shared */
    expect_pending(&r, again, sizeof(again));
    assert_string_equal(id, again);
    zh_resp_free(&r);
    refund(&bot, "orders%2F2", "200", dpop_key, &r); /* another resource: its own */
    expect_pending(&r, again, sizeof(again));
    assert_string_not_equal(id, again);
    zh_resp_free(&r);
    poll_as(&bot, id, dpop_key, NULL, &r);
    expect_pending(&r, again, sizeof(again));
    zh_resp_free(&r);

    /* root is not in the finance group: refused, until added */
    decide(id, 1, NULL, NULL, &r);
    expect_ztb_error(&r, 403, "ACCESS_DENIED");
    zh_resp_free(&r);
    expect_status(id, "pending");
    expect_audit("\"event\":\"approval.refused\""); /* the refusal is on record */
    approver("finance", "root", 1);
    expect_audit("\"event\":\"admin.approver_added\"");
    assert_int_equal(decide(id, 1, NULL, NULL, &r), 200);
    zh_resp_free(&r);
    expect_status(id, "approved");

    /* another agent asking for it: as unknown as an id that never was */
    assert_int_equal(poll_as(&other, id, dpop_key, NULL, &r), 404);
    zh_resp_free(&r);
    assert_int_equal(poll_as(&bot, "apr_AAAAAAAAAAAAAAAAAAAAAA", dpop_key, NULL, &r), 404);
    zh_resp_free(&r);
    /* without the DPoP key, or with another key */
    poll_as(&bot, id, NULL, NULL, &r);
    expect_ztb_error(&r, 400, "BINDING");
    zh_resp_free(&r);
    poll_as(&bot, id, thief_key, NULL, &r);
    expect_ztb_error(&r, 400, "BINDING");
    zh_resp_free(&r);
    /* asking for more than was approved: the poll takes no request fields */
    poll_as(&bot, id, dpop_key, "&resource=orders%2F2", &r);
    za_expect_error(&r, 400, "invalid_request");
    zh_resp_free(&r);
    poll_as(&bot, id, dpop_key, "&audience=ops", &r);
    za_expect_error(&r, 400, "invalid_request");
    zh_resp_free(&r);
    /* the approval of orders/1 is no token for orders/2 */
    refund(&bot, "orders%2F2", "200", dpop_key, &r);
    za_expect_error(&r, 400, "authorization_pending");
    zh_resp_free(&r);

    /* the agent, its key: the token of exactly the approved request */
    if (poll_as(&bot, id, dpop_key, NULL, &r) != 200)
        fail_msg("poll: HTTP %ld %s", r.status, r.body);
    char tok[4096], type[16];
    member(&r, "access_token", tok, sizeof(tok));
    member(&r, "token_type", type, sizeof(type));
    assert_string_equal(type, "DPoP");
    zh_resp_free(&r);
    json_t *c = za_claims(tok);
    assert_string_equal(json_string_value(json_object_get(c, "scope")), "payments:refund");
    assert_string_equal(json_string_value(json_object_get(c, "aud")), "payments");
    assert_string_equal(json_string_value(json_object_get(json_object_get(c, "cnf"), "jkt")),
                        ztb_key_kid(dpop_key));
    json_t *ad = json_array_get(json_object_get(c, "authorization_details"), 0);
    assert_int_equal(json_integer_value(json_object_get(ad, "amount")), 200);
    assert_string_equal(json_string_value(json_object_get(ad, "identifier")), "orders/1");
    char jti[64];
    snprintf(jti, sizeof(jti), "%s", json_string_value(json_object_get(c, "jti")));
    json_decref(c);
    /* once */
    poll_as(&bot, id, dpop_key, NULL, &r);
    expect_ztb_error(&r, 400, "APPROVAL_EXPIRED");
    zh_resp_free(&r);
    expect_status(id, "issued");
    char line[160];
    snprintf(line, sizeof(line), "\"approval\":\"%s\"", id);
    expect_audit("\"event\":\"approval.requested\"");
    expect_audit("\"event\":\"approval.approved\"");
    expect_audit("\"by\":\"root\"");
    char *log = za_audit_text(&b);
    const char *issued = strstr(log, jti);
    assert_non_null(issued);
    assert_non_null(strstr(log, line));
    free(log);
    approver("finance", "root", 0);
    expect_audit("\"event\":\"admin.approver_removed\"");
}

/*
 * Two distinct approvers of the group: one person twice does not count
 * twice, someone outside the group cannot, and an agent has no way to
 * approve on the public API.
 */
static void test_two_approvers_and_no_self_approval(void **state)
{
    (void)state;
    struct zh_resp r;
    char id[64];
    ask(&bot, "ops", "hosts%3Aisolate", "hosts%2Fdb1", &r);
    expect_pending(&r, id, sizeof(id));
    zh_resp_free(&r);
    approver("sre", "alice", 1);
    approver("sre", "bob", 1);

    /* the agent tries to approve its own request on the public API */
    char path[160], form[1024];
    snprintf(path, sizeof(path), "/v1/approvals/%s/approve", id);
    snprintf(form, sizeof(form), "client_assertion_type=%s&client_assertion=%s", ZA_SESSION_TYPE,
             bot.session);
    post(path, form, NULL, &r);
    assert_int_equal(r.status, 404);
    zh_resp_free(&r);
    snprintf(path, sizeof(path), "/v1/approvals/%s", id);
    snprintf(form, sizeof(form), "client_assertion_type=%s&client_assertion=%s&decision=approve",
             ZA_SESSION_TYPE, bot.session);
    post(path, form, NULL, &r);
    za_expect_error(&r, 400, "invalid_request");
    zh_resp_free(&r);
    expect_status(id, "pending");

    assert_int_equal(decide(id, 1, "alice", NULL, &r), 200);
    zh_resp_free(&r);
    expect_status(id, "pending"); /* one of two */
    decide(id, 1, "alice", NULL, &r);
    expect_ztb_error(&r, 409, "EXISTS");
    zh_resp_free(&r);
    decide(id, 1, "mallory", NULL, &r);
    expect_ztb_error(&r, 403, "ACCESS_DENIED");
    zh_resp_free(&r);
    decide(id, 1, "no/such user", NULL, &r);
    assert_int_equal(r.status, 403);
    zh_resp_free(&r);
    poll_as(&bot, id, NULL, NULL, &r);
    za_expect_error(&r, 400, "authorization_pending");
    zh_resp_free(&r);
    assert_int_equal(decide(id, 1, "bob", NULL, &r), 200);
    zh_resp_free(&r);
    expect_status(id, "approved");
    if (poll_as(&bot, id, NULL, NULL, &r) != 200)
        fail_msg("poll: HTTP %ld %s", r.status, r.body);
    zh_resp_free(&r);
    expect_audit("\"approvers\":\"alice,bob\"");
}

/* A denial reaches the agent with its reason; the agent cannot re-open it. */
static void test_denied(void **state)
{
    (void)state;
    struct zh_resp r;
    char id[64];
    ask(&bot, "ops", "hosts%3Aisolate", "hosts%2Fweb7", &r);
    expect_pending(&r, id, sizeof(id));
    zh_resp_free(&r);
    assert_int_equal(decide(id, 0, "alice", "not during the sale", &r), 200);
    zh_resp_free(&r);
    poll_as(&bot, id, NULL, NULL, &r);
    expect_ztb_error(&r, 403, "APPROVAL_DENIED");
    char why[64];
    member(&r, "reason", why, sizeof(why));
    assert_string_equal(why, "not during the sale");
    zh_resp_free(&r);
    decide(id, 1, "bob", NULL, &r); /* decided: stays denied */
    assert_int_equal(r.status, 409);
    zh_resp_free(&r);
    expect_audit("\"event\":\"approval.denied\"");
}

/* Past its expiry an approval gives nothing, cannot be approved, and is recorded. */
static void test_expiry(void **state)
{
    (void)state;
    struct zh_resp r;
    char id[64], next[64];
    ask(&bot, "ops", "hosts%3Aisolate", "hosts%2Fcache3", &r);
    expect_pending(&r, id, sizeof(id));
    zh_resp_free(&r);
    assert_int_equal(decide(id, 1, "alice", NULL, &r), 200);
    zh_resp_free(&r);
    /* its time runs out (moved in Redis: the broker's clock stays) */
    redisContext *c = zh_redis_connect(&rd);
    redisReply *rr =
        redisCommand(c, "HSET ztb:{apr}:id:%s expires %lld", id, (long long)time(NULL) - 1);
    assert_non_null(rr);
    freeReplyObject(rr);
    redisFree(c);
    decide(id, 1, "bob", NULL, &r);
    assert_int_equal(r.status, 409);
    zh_resp_free(&r);
    poll_as(&bot, id, NULL, NULL, &r);
    expect_ztb_error(&r, 400, "APPROVAL_EXPIRED");
    zh_resp_free(&r);
    expect_status(id, "expired");
    expect_audit("\"event\":\"approval.expired\"");
    /* the same request now files a new one */
    ask(&bot, "ops", "hosts%3Aisolate", "hosts%2Fcache3", &r);
    expect_pending(&r, next, sizeof(next));
    assert_string_not_equal(id, next);
    zh_resp_free(&r);
}

/* An agent has at most 10 approvals waiting. */
static void test_per_agent_limit(void **state)
{
    (void)state;
    struct zh_resp r;
    char id[64];
    for (int i = 0; i < 10; i++) {
        char res[32];
        snprintf(res, sizeof(res), "hosts%%2Fh%d", i);
        ask(&other, "ops", "hosts%3Aisolate", res, &r);
        expect_pending(&r, id, sizeof(id));
        zh_resp_free(&r);
    }
    ask(&other, "ops", "hosts%3Aisolate", "hosts%2Fone-more", &r);
    za_expect_error(&r, 429, "slow_down");
    zh_resp_free(&r);
    /* a repeated request still finds its own */
    ask(&other, "ops", "hosts%3Aisolate", "hosts%2Fh3", &r);
    expect_pending(&r, id, sizeof(id));
    zh_resp_free(&r);
}

/* A new session for a (after a revocation: a new join token and identity). */
static void re_enroll(struct za_agent *a)
{
    char path[128];
    snprintf(path, sizeof(path), "/v1/agents/%s/join-tokens", a->name);
    struct zh_resp r;
    assert_int_equal(zh_admin(&b, "POST", path, "{}", &r), 0);
    char join[256];
    member(&r, "join_token", join, sizeof(join));
    zh_resp_free(&r);
    ztb_key_free(a->key);
    assert_int_equal(ztb_key_generate(&a->key), ZTB_OK);
    if (za_enroll_with(&b, a, join, &r) != 201)
        fail_msg("enroll: HTTP %ld %s", r.status, r.body);
    zh_resp_free(&r);
    ztb_buf as;
    ztb_buf_init(&as, 4096);
    za_assertion(&b, a, NULL, &as);
    char form[4096];
    snprintf(form, sizeof(form), "client_assertion_type=%s&client_assertion=%s", ZA_ASSERTION_TYPE,
             ztb_buf_cstr(&as));
    ztb_buf_free(&as);
    assert_int_equal(za_post_form(&b, "/v1/session", form, &r), 200);
    member(&r, "session", a->session, sizeof(a->session));
    zh_resp_free(&r);
}

/* Quarantined or revoked between the request and its approval: no token. */
static void test_quarantine_and_revocation_checked_again(void **state)
{
    (void)state;
    struct zh_resp r;
    char id1[64], id2[64];
    ask(&victim, "ops", "hosts%3Aisolate", "hosts%2Fa", &r);
    expect_pending(&r, id1, sizeof(id1));
    zh_resp_free(&r);
    ask(&victim, "ops", "hosts%3Aisolate", "hosts%2Fb", &r);
    expect_pending(&r, id2, sizeof(id2));
    zh_resp_free(&r);
    for (int i = 0; i < 2; i++) {
        const char *id = i ? id2 : id1;
        assert_int_equal(decide(id, 1, "alice", NULL, &r), 200);
        zh_resp_free(&r);
        assert_int_equal(decide(id, 1, "bob", NULL, &r), 200);
        zh_resp_free(&r);
    }
    assert_int_equal(zh_admin(&b, "POST", "/v1/quarantine", "{\"agent\":\"victim\"}", &r), 0);
    assert_int_equal(r.status, 200);
    zh_resp_free(&r);
    poll_as(&victim, id1, NULL, NULL, &r);
    expect_ztb_error(&r, 403, "QUARANTINED");
    zh_resp_free(&r);
    expect_status(id1, "approved"); /* not used up by the refusal */
    assert_int_equal(zh_admin(&b, "POST", "/v1/release", "{\"agent\":\"victim\"}", &r), 0);
    zh_resp_free(&r);
    /* revoked: its session is dead, and a new identity is a new generation */
    assert_int_equal(
        zh_admin(&b, "POST", "/v1/revocations", "{\"type\":\"agent\",\"id\":\"victim\"}", &r), 0);
    assert_true(r.status == 200 || r.status == 201);
    zh_resp_free(&r);
    poll_as(&victim, id2, NULL, NULL, &r);
    za_expect_error(&r, 401, "invalid_client");
    zh_resp_free(&r);
    re_enroll(&victim);
    poll_as(&victim, id2, NULL, NULL, &r);
    expect_ztb_error(&r, 403, "AGENT_REVOKED");
    zh_resp_free(&r);
    poll_as(&victim, id1, NULL, NULL, &r);
    expect_ztb_error(&r, 403, "AGENT_REVOKED");
    zh_resp_free(&r);
}

/* A signal's require_approval puts every request under one operator's approval. */
static void test_signal_requires_approval(void **state)
{
    (void)state;
    struct zh_resp r;
    char id[64];
    redisContext *c = zh_redis_connect(&rd);
    redisReply *rr = redisCommand(c, "HSET ztb:{billing-bot}:agent approval 1");
    freeReplyObject(rr);
    ask(&bot, "orders", "orders%3Aread", "orders%2F9", &r);
    expect_pending(&r, id, sizeof(id));
    zh_resp_free(&r);
    assert_int_equal(decide(id, 1, NULL, NULL, &r), 200); /* any operator */
    zh_resp_free(&r);
    if (poll_as(&bot, id, NULL, NULL, &r) != 200)
        fail_msg("poll: HTTP %ld %s", r.status, r.body);
    zh_resp_free(&r);
    rr = redisCommand(c, "HSET ztb:{billing-bot}:agent approval 0");
    freeReplyObject(rr);
    redisFree(c);
}

/* ztbctl a1..a5 (NULL-terminated early) against the broker; exit status. */
static int ctl(char **out, char **err, const char *a1, const char *a2, const char *a3,
               const char *a4, const char *a5)
{
    const char *argv[] = {zh_bin("ztbctl"), "--socket", b.admin_sock, a1, a2, a3, a4, a5, NULL};
    return zh_run(argv, out, err);
}

/*
 * The operators' tool: approvers add/list, approvals list/show/approve/
 * deny, the approver's name under sudo (SUDO_USER, passed by a root
 * ztbctl), and usage errors.
 */
static void test_ztbctl(void **state)
{
    (void)state;
    char *out = NULL, *err = NULL;
    struct zh_resp r;
    char id[64], id2[64];
    assert_int_equal(ctl(&out, &err, "approvers", "add", "sre", "carol", NULL), 0);
    assert_non_null(strstr(out, "carol added to sre"));
    free(out);
    free(err);
    assert_int_equal(ctl(&out, &err, "approvers", "list", NULL, NULL, NULL), 0);
    assert_non_null(strstr(out, "sre: "));
    assert_non_null(strstr(out, "carol"));
    free(out);
    free(err);
    ask(&bot, "ops", "hosts%3Aisolate", "hosts%2Fctl", &r);
    expect_pending(&r, id, sizeof(id));
    zh_resp_free(&r);
    assert_int_equal(ctl(&out, &err, "approvals", "list", NULL, NULL, NULL), 0);
    assert_non_null(strstr(out, id));
    assert_non_null(strstr(out, "hosts:isolate"));
    free(out);
    free(err);
    assert_int_equal(ctl(&out, &err, "approvals", "show", id, NULL, NULL), 0);
    assert_non_null(strstr(out, "hosts/ctl"));
    assert_non_null(strstr(out, "sre (2 approver(s) needed)"));
    free(out);
    free(err);
    /* run as root under sudo by carol: carol approves */
    setenv("SUDO_USER", "carol", 1);
    int rc = ctl(&out, &err, "approvals", "approve", id, NULL, NULL);
    unsetenv("SUDO_USER");
    assert_int_equal(rc, 0);
    assert_non_null(strstr(out, "waiting for 2 approver(s)"));
    free(out);
    free(err);
    assert_int_equal(ctl(&out, &err, "--json", "approvals", "show", id, NULL), 0);
    assert_non_null(strstr(out, "\"carol\""));
    free(out);
    free(err);
    /* watch prints what waits (stopped by SIGINT after 2 s) */
    const char *watch[] = {"/usr/bin/timeout",
                           "-s",
                           "INT",
                           "2",
                           zh_bin("ztbctl"),
                           "--socket",
                           b.admin_sock,
                           "approvals",
                           "watch",
                           "--interval",
                           "1",
                           NULL};
    rc = zh_run(watch, &out, &err);
    if (rc != 0 && rc != 124) /* 124: timeout stopped it, as asked */
        fail_msg("watch: %d: %s / %s", rc, out ? out : "", err ? err : "");
    assert_non_null(strstr(out, id));
    assert_non_null(strstr(out, "pending"));
    free(out);
    free(err);
    /* root is not in sre: refused, exit 1, the reason printed */
    assert_int_equal(ctl(&out, &err, "approvals", "approve", id, NULL, NULL), 1);
    assert_non_null(strstr(err, "not in the approver group"));
    free(out);
    free(err);
    ask(&bot, "ops", "hosts%3Aisolate", "hosts%2Fctl2", &r);
    expect_pending(&r, id2, sizeof(id2));
    zh_resp_free(&r);
    setenv("SUDO_USER", "carol", 1);
    rc = ctl(&out, &err, "approvals", "deny", id2, "--reason", "change freeze");
    unsetenv("SUDO_USER");
    assert_int_equal(rc, 0);
    assert_non_null(strstr(out, "denied"));
    free(out);
    free(err);
    expect_audit("\"by\":\"carol\"");
    expect_audit("\"reason\":\"change freeze\"");
    /* usage */
    assert_int_equal(ctl(&out, &err, "approvals", "approve", "../v1/agents", NULL, NULL), 2);
    free(out);
    free(err);
    assert_int_equal(ctl(&out, &err, "approvals", "approve", id, "--reason", "x"), 2);
    free(out);
    free(err);
    assert_int_equal(ctl(&out, &err, "approvers", "add", "sre", "-rf", NULL), 2);
    free(out);
    free(err);
    assert_int_equal(ctl(&out, &err, "approvals", "--help", NULL, NULL, NULL), 0);
    assert_non_null(strstr(out, "approvals watch"));
    free(out);
    free(err);
}

static int setup(void **state)
{
    (void)state;
    srand((unsigned)time(NULL) ^ (unsigned)getpid());
    zh_redis_start(&rd);
    zh_broker_start_issuing(&b, rd.url, policy_doc);
    za_enroll(&b, &bot, "billing-bot");
    za_enroll(&b, &other, "other");
    za_enroll(&b, &victim, "victim");
    assert_int_equal(ztb_key_generate(&dpop_key), ZTB_OK);
    assert_int_equal(ztb_key_generate(&thief_key), ZTB_OK);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    za_free(&bot);
    za_free(&other);
    za_free(&victim);
    ztb_key_free(dpop_key);
    ztb_key_free(thief_key);
    assert_int_equal(zh_broker_stop(&b), 0);
    zh_redis_stop(&rd, 1);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scope_binding),
        cmocka_unit_test(test_two_approvers_and_no_self_approval),
        cmocka_unit_test(test_denied),
        cmocka_unit_test(test_expiry),
        cmocka_unit_test(test_per_agent_limit),
        cmocka_unit_test(test_quarantine_and_revocation_checked_again),
        cmocka_unit_test(test_signal_requires_approval),
        cmocka_unit_test(test_ztbctl),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
