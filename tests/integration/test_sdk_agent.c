/*
 * test_sdk_agent.c - libztb's agent client against the real ztb-broker and
 * a real Redis: enrollment with a join token from the admin API, the
 * credential file, one token per action, refusals mapped to their codes
 * (by the ztb error name every error answer carries),
 * rate limits with Retry-After, DPoP-bound tokens, identity renewal, and one
 * handle shared by many threads.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "pki/dpop.h"
#include "pki/jwk.h"
#include "pki/jws.h"
#include "sdk_it.h"

static struct zh_redis rd;
static struct zh_broker b;

static int setup(void **state)
{
    (void)state;
    zh_redis_start(&rd);
    zh_broker_start_issuing(&b, rd.url, sdk_it_policy);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    zh_broker_stop(&b);
    zh_redis_stop(&rd, 1);
    zh_rmtree(b.dir);
    return 0;
}

static ztb_err token(ztb_agent *a, const char *action, const char *resource, const char *details,
                     char **out)
{
    ztb_err rv = ztb_agent_token(a, "payments", action, resource, details, out);
    if (rv != ZTB_OK)
        fprintf(stderr, "token %s: %s: %s\n", action, ztb_err_name(rv), ztb_agent_errdetail(a));
    return rv;
}

/* The payload of a token the broker signed (checked against its JWKS). */
static json_t *claims_of(const char *tok)
{
    struct zh_resp r;
    assert_int_equal(zh_get(&b, "/.well-known/jwks.json", &r), 0);
    ztb_keyset *ks = NULL;
    assert_int_equal(ztb_jwks_parse(r.body, r.len, 0, &ks), ZTB_OK);
    zh_resp_free(&r);
    char store[8192];
    ztb_buf p;
    ztb_buf_init_fixed(&p, store, sizeof(store));
    assert_int_equal(ztb_jws_verify(ks, tok, strlen(tok), NULL, NULL, &p), ZTB_OK);
    ztb_keyset_free(ks);
    json_error_t e;
    json_t *j = json_loadb(store, p.len, 0, &e);
    assert_non_null(j);
    return j;
}

static void test_enroll_and_one_token_per_action(void **state)
{
    (void)state;
    char dir[256], path[300];
    zh_tmpdir(dir, sizeof(dir));
    chmod(dir, 0700);
    snprintf(path, sizeof(path), "%s/billing-bot.pem", dir);
    ztb_agent_config *c = ztb_agent_config_new();
    ztb_agent_config_set_broker(c, b.url);
    ztb_agent_config_set_name(c, "billing-bot");
    ztb_agent_config_set_credential_file(c, path);
    ztb_agent *a;
    assert_int_equal(ztb_agent_new(c, &a), ZTB_OK);
    assert_false(ztb_agent_is_enrolled(a));
    assert_int_equal(ztb_agent_enroll(a, "ztbj_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
                     ZTB_ERR_JOIN_TOKEN);
    char *join = sdk_it_join_token(&b, "billing-bot");
    assert_int_equal(ztb_agent_enroll(a, join), ZTB_OK);
    assert_true(ztb_agent_is_enrolled(a));
    assert_string_equal(ztb_agent_spiffe_id(a), "spiffe://ztb.local/agent/billing-bot");
    assert_true(ztb_agent_identity_expires_at(a) > (int64_t)time(NULL) + 600);
    /* the join token worked once */
    assert_int_equal(ztb_agent_enroll(a, join), ZTB_ERR_JOIN_TOKEN);
    free(join);

    char *tok = NULL;
    assert_int_equal(
        token(a, "payments:refund", "orders/1234", "{\"type\":\"payment\",\"amount\":40}", &tok),
        ZTB_OK);
    json_t *j = claims_of(tok);
    assert_string_equal(json_string_value(json_object_get(j, "sub")),
                        "spiffe://ztb.local/agent/billing-bot");
    assert_string_equal(json_string_value(json_object_get(j, "aud")), "payments");
    assert_string_equal(json_string_value(json_object_get(j, "scope")), "payments:refund");
    json_t *d = json_array_get(json_object_get(j, "authorization_details"), 0);
    assert_string_equal(json_string_value(json_object_get(d, "identifier")), "orders/1234");
    assert_string_equal(json_string_value(json_object_get(d, "type")), "payment");
    assert_int_equal(json_integer_value(json_object_get(d, "amount")), 40);
    assert_true(json_is_true(json_object_get(json_object_get(j, "ztb"), "single_use")));
    json_decref(j);
    ztb_token_free(tok);
    assert_int_equal(token(a, "payments:list", NULL, NULL, &tok), ZTB_OK);
    ztb_token_free(tok);

    /* refusals: policy, limits, unknown actions */
    assert_int_equal(
        token(a, "payments:refund", "orders/1234", "{\"type\":\"payment\",\"amount\":400}", &tok),
        ZTB_ERR_ACCESS_DENIED);
    assert_non_null(strstr(ztb_agent_errdetail(a), "access_denied"));
    assert_null(tok);
    assert_int_equal(token(a, "payments:refund", "orders/disputed-7",
                           "{\"type\":\"payment\",\"amount\":1}", &tok),
                     ZTB_ERR_ACCESS_DENIED);
    assert_int_equal(ztb_agent_token(a, "payments", "not-an-action", NULL, NULL, &tok),
                     ZTB_ERR_INVALID_SCOPE);
    ztb_agent_free(a);

    /* a restarted agent needs no join token: its credential file is enough */
    assert_int_equal(ztb_agent_new(c, &a), ZTB_OK);
    ztb_agent_config_free(c);
    assert_true(ztb_agent_is_enrolled(a));
    assert_int_equal(token(a, "payments:list", NULL, NULL, &tok), ZTB_OK);
    ztb_token_free(tok);
    /* and renews its identity with its own key */
    int64_t before = ztb_agent_identity_expires_at(a);
    sleep(1);
    assert_int_equal(ztb_agent_renew(a), ZTB_OK);
    assert_true(ztb_agent_identity_expires_at(a) > before);
    assert_int_equal(token(a, "payments:list", NULL, NULL, &tok), ZTB_OK);
    ztb_token_free(tok);
    ztb_agent_free(a);
    zh_rmtree(dir);
}

static void test_rate_limit_and_retry_after(void **state)
{
    (void)state;
    /* billing-bot's payments:read allows 3 per minute: the 4th is refused after the
     * broker's Retry-After (~20 s) is found to exceed the retry budget (3 s) */
    ztb_agent *a = sdk_it_enrolled(&b, "billing-bot", 0);
    char *tok = NULL;
    for (int i = 0; i < 3; i++) {
        assert_int_equal(token(a, "payments:read", "orders/1", NULL, &tok), ZTB_OK);
        ztb_token_free(tok);
    }
    time_t t0 = time(NULL);
    assert_int_equal(token(a, "payments:read", "orders/1", NULL, &tok), ZTB_ERR_RATE_LIMITED);
    assert_true(time(NULL) - t0 <= 2);
    assert_non_null(strstr(ztb_agent_errdetail(a), "slow_down"));
    ztb_agent_free(a);
}

static void test_dpop_bound_tokens(void **state)
{
    (void)state;
    /* the policy requires DPoP for tickets:create */
    ztb_agent *plain = sdk_it_enrolled(&b, "billing-bot", 0);
    char *tok = NULL;
    ztb_err rv = ztb_agent_token(plain, "payments", "tickets:create", NULL, NULL, &tok);
    assert_int_not_equal(rv, ZTB_OK);
    assert_non_null(strstr(ztb_agent_errdetail(plain), "DPoP"));
    ztb_agent_free(plain);

    ztb_agent *a = sdk_it_enrolled(&b, "billing-bot", 1);
    assert_int_equal(token(a, "tickets:create", NULL, NULL, &tok), ZTB_OK);
    json_t *j = claims_of(tok);
    const char *jkt = json_string_value(json_object_get(json_object_get(j, "cnf"), "jkt"));
    assert_non_null(jkt);
    char *proof = NULL;
    assert_int_equal(ztb_dpop_proof(a, "POST", "https://tickets.example/tickets", tok, &proof),
                     ZTB_OK);
    ztb_dpop_result d;
    assert_int_equal(ztb_dpop_proof_check(proof, strlen(proof), "POST",
                                          "https://tickets.example/tickets", tok,
                                          (int64_t)time(NULL), 60, 5, &d),
                     ZTB_OK);
    assert_string_equal(d.jkt, jkt); /* the token is bound to the proof's key */
    json_decref(j);
    ztb_token_free(proof);
    ztb_token_free(tok);
    /* every other action gets bound tokens too when the handle uses DPoP */
    assert_int_equal(token(a, "payments:list", NULL, NULL, &tok), ZTB_OK);
    j = claims_of(tok);
    assert_non_null(json_object_get(j, "cnf"));
    json_decref(j);
    ztb_token_free(tok);
    ztb_agent_free(a);
}

struct worker {
    ztb_agent *a;
    int ok;
};

static void *many(void *arg)
{
    struct worker *w = arg;
    for (int i = 0; i < 25; i++) {
        char *tok = NULL;
        w->ok += ztb_agent_token(w->a, "payments", "payments:list", NULL, NULL, &tok) == ZTB_OK;
        ztb_token_free(tok);
    }
    return NULL;
}

static void test_one_handle_many_threads(void **state)
{
    (void)state;
    ztb_agent *a = sdk_it_enrolled(&b, "billing-bot", 1);
    pthread_t t[8];
    struct worker w[8];
    for (int i = 0; i < 8; i++) {
        w[i] = (struct worker){.a = a};
        pthread_create(&t[i], NULL, many, &w[i]);
    }
    for (int i = 0; i < 8; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(w[i].ok, 25);
    }
    ztb_agent_free(a);
}

/* An admin call that must answer 200. */
static void admin_ok(const char *path, const char *body)
{
    struct zh_resp r;
    assert_int_equal(zh_admin(&b, "POST", path, body, &r), 0);
    if (r.status != 200)
        fail_msg("%s: %ld %s", path, r.status, r.body);
    zh_resp_free(&r);
}

/* The ztb error the broker's answer names (wire/error_response.h), or "". */
static const char *named_error(const struct zh_resp *r, char *out, size_t cap)
{
    json_error_t e;
    json_t *j = json_loadb(r->body, r->len, 0, &e);
    const char *n = json_string_value(json_object_get(j, "ztb_error"));
    snprintf(out, cap, "%s", n ? n : "");
    json_decref(j);
    return out;
}

/*
 * Each refusal reaches the SDK as its own code, from the name the broker
 * puts beside the RFC 6749 code, not from the English description: the
 * quarantine and the audience kill are both access_denied. And every error
 * answer of the HTTP API carries a name.
 */
static void test_refusals_named_by_the_broker(void **state)
{
    (void)state;
    ztb_agent *a = sdk_it_enrolled(&b, "ticket-bot", 0);
    char *tok = NULL;
    assert_int_equal(token(a, "payments:list", NULL, NULL, &tok), ZTB_OK);
    ztb_token_free(tok);
    assert_int_equal(token(a, "payments:refund", "orders/1", NULL, &tok), ZTB_ERR_ACCESS_DENIED);

    admin_ok("/v1/revocations", "{\"type\":\"audience\",\"id\":\"payments\"}");
    assert_int_equal(token(a, "payments:list", NULL, NULL, &tok), ZTB_ERR_AUDIENCE_KILLED);
    assert_non_null(strstr(ztb_agent_errdetail(a), "access_denied"));
    admin_ok("/v1/revocations", "{\"type\":\"audience\",\"id\":\"payments\",\"lift\":true}");

    admin_ok("/v1/quarantine", "{\"agent\":\"ticket-bot\"}");
    assert_int_equal(token(a, "payments:list", NULL, NULL, &tok), ZTB_ERR_QUARANTINED);
    assert_non_null(strstr(ztb_agent_errdetail(a), "access_denied"));
    admin_ok("/v1/release", "{\"agent\":\"ticket-bot\"}");
    assert_int_equal(token(a, "payments:list", NULL, NULL, &tok), ZTB_OK);
    ztb_token_free(tok);
    ztb_agent_free(a);

    /* the raw answers: each error names its ztb error */
    struct {
        const char *path, *form;
        long status;
        const char *name;
    } cases[] = {
        {"/v1/token", "grant_type=x", 400, "INVALID_REQUEST"},
        {"/v1/token",
         "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange&audience=payments"
         "&scope=payments%3Alist",
         401, "INVALID_CLIENT"},
        {"/v1/nowhere", "a=b", 404, "NOT_FOUND"},
        {"/v1/introspect", "token=x", 401, "INVALID_CLIENT"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct zh_resp r;
        char n[64];
        assert_int_equal(zh_post_form(&b, cases[i].path, cases[i].form, &r), 0);
        if (r.status != cases[i].status || strcmp(named_error(&r, n, sizeof(n)), cases[i].name))
            fail_msg("case %zu: %ld %s", i, r.status, r.body);
        zh_resp_free(&r);
    }
    /* the admin API's errors too */
    struct zh_resp r;
    char n[64];
    assert_int_equal(zh_admin(&b, "POST", "/v1/quarantine", "{\"agent\":\"nobody\"}", &r), 0);
    assert_int_equal(r.status, 404);
    assert_string_equal(named_error(&r, n, sizeof(n)), "NOT_FOUND");
    zh_resp_free(&r);
}

/* An operator's decision on approval id through the admin API (as root,
 * a member of the finance group). */
static void operator_decides(const char *id, int approve, const char *reason)
{
    char path[128], body[160];
    snprintf(path, sizeof(path), "/v1/approvals/%s/%s", id, approve ? "approve" : "deny");
    snprintf(body, sizeof(body), "{\"reason\":\"%s\"}", reason ? reason : "");
    struct zh_resp r;
    assert_int_equal(zh_admin(&b, "POST", path, approve ? "{}" : body, &r), 0);
    if (r.status != 200)
        fail_msg("decide: HTTP %ld %s", r.status, r.body);
    zh_resp_free(&r);
}

struct later {
    char id[64];
};

/* Approve the one pending approval of refund-bot after a second. */
static void *approve_later(void *arg)
{
    struct later *l = arg;
    sleep(1);
    operator_decides(l->id, 1, NULL);
    return NULL;
}

/*
 * A refund above the autonomous limit waits for a human: the pending
 * answer is read by its ztb_error name into a handle to poll; the token
 * comes once approved (with the DPoP key it was asked with), a denial
 * brings the approver's reason, and the blocking call gives up at its
 * timeout or returns the token once someone approves.
 */
static void test_approval_pending_poll_and_wait(void **state)
{
    (void)state;
    struct zh_resp r;
    assert_int_equal(zh_admin(&b, "POST", "/v1/approvers/finance/add", "{\"user\":\"root\"}", &r),
                     0);
    zh_resp_free(&r);
    ztb_agent *a = sdk_it_enrolled(&b, "refund-bot", 1);
    const char *big = "{\"type\":\"payment\",\"amount\":2000}";
    char *tok = NULL;
    assert_int_equal(ztb_agent_token(a, "payments", "payments:refund", "orders/77", big, &tok),
                     ZTB_ERR_APPROVAL_PENDING);
    assert_null(tok);
    ztb_approval *p = NULL;
    assert_int_equal(
        ztb_agent_token_start(a, "payments", "payments:refund", "orders/77", big, &tok, &p),
        ZTB_ERR_APPROVAL_PENDING);
    assert_non_null(p);
    assert_int_equal(strncmp(ztb_approval_id(p), "apr_", 4), 0);
    assert_true(ztb_approval_interval(p) >= 1);
    assert_true(ztb_approval_expires_at(p) > time(NULL));
    assert_int_equal(ztb_approval_poll(p, &tok), ZTB_ERR_APPROVAL_PENDING);
    operator_decides(ztb_approval_id(p), 1, NULL);
    assert_int_equal(ztb_approval_poll(p, &tok), ZTB_OK);
    json_t *c = claims_of(tok);
    json_t *d = json_array_get(json_object_get(c, "authorization_details"), 0);
    assert_int_equal(json_integer_value(json_object_get(d, "amount")), 2000);
    assert_non_null(json_object_get(json_object_get(c, "cnf"), "jkt"));
    json_decref(c);
    ztb_token_free(tok);
    tok = NULL;
    assert_int_equal(ztb_approval_poll(p, &tok), ZTB_ERR_APPROVAL_EXPIRED); /* once */
    ztb_approval_free(p);

    /* denied, with the approver's reason */
    assert_int_equal(
        ztb_agent_token_start(a, "payments", "payments:refund", "orders/78", big, &tok, &p),
        ZTB_ERR_APPROVAL_PENDING);
    operator_decides(ztb_approval_id(p), 0, "duplicate refund");
    assert_int_equal(ztb_approval_poll(p, &tok), ZTB_ERR_APPROVAL_DENIED);
    assert_non_null(strstr(ztb_agent_errdetail(a), "duplicate refund"));
    ztb_approval_free(p);

    /* blocking: nobody decides in time */
    assert_int_equal(
        ztb_agent_token_wait(a, "payments", "payments:refund", "orders/79", big, 1200, &tok),
        ZTB_ERR_TIMEOUT);
    assert_non_null(strstr(ztb_agent_errdetail(a), "apr_"));
    /* blocking: an operator approves while it waits (the same request
     * finds the same approval) */
    assert_int_equal(
        ztb_agent_token_start(a, "payments", "payments:refund", "orders/79", big, &tok, &p),
        ZTB_ERR_APPROVAL_PENDING);
    struct later l;
    snprintf(l.id, sizeof(l.id), "%s", ztb_approval_id(p));
    ztb_approval_free(p);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, approve_later, &l), 0);
    ztb_err rv =
        ztb_agent_token_wait(a, "payments", "payments:refund", "orders/79", big, 10000, &tok);
    pthread_join(th, NULL);
    if (rv != ZTB_OK)
        fail_msg("wait: %s: %s", ztb_err_name(rv), ztb_agent_errdetail(a));
    ztb_token_free(tok);
    ztb_agent_free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_enroll_and_one_token_per_action),
        cmocka_unit_test(test_rate_limit_and_retry_after),
        cmocka_unit_test(test_dpop_bound_tokens),
        cmocka_unit_test(test_one_handle_many_threads),
        cmocka_unit_test(test_refusals_named_by_the_broker),
        cmocka_unit_test(test_approval_pending_poll_and_wait),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
