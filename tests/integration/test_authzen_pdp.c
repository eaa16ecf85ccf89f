/*
 * test_authzen_pdp.c - the OpenID AuthZEN Authorization API 1.0 endpoints of the
 * real broker on a real Redis (docs/authzen.md):
 *
 *   - /.well-known/authzen-configuration names the PDP and both endpoints;
 *   - a permit and the denials (no rule, unknown subject, a subject type
 *     that is not an agent, a failed source_ip condition, a limit in
 *     authorization_details, a quarantined subject), each with its reason,
 *     and the X-Request-ID echoed;
 *   - a rule that needs a human approval, or a single-use token, is never
 *     a permit;
 *   - batches with default values and each evaluations_semantic;
 *   - refusals: no credential or a forged one (401 with WWW-Authenticate),
 *     a caller without ztb:evaluate on the audience (403, for any one
 *     evaluation of a batch), malformed (400), oversized (413) and
 *     mistyped (415) bodies;
 *   - every decision is in the audit log.
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
#include "common/buf.h"
#include "harness.h"

static const char *policy_doc =
    "{\"version\": 1, \"trust_domain\": \"ztb.local\",\n"
    " \"settings\": {\"max_ttl\": 120, \"default_ttl\": 60,\n"
    "   \"rate_limits\": {\"per_agent\": {\"rate\": 1000, \"burst\": 100, \"period\": 60},\n"
    "                   \"per_action\": {\"rate\": 1000, \"burst\": 100, \"period\": 60}}},\n"
    " \"rules\": [\n"
    "  {\"id\": \"reads\", \"effect\": \"allow\", \"agents\": [\"alice\"],\n"
    "   \"actions\": [\"payments:read\"], \"audiences\": [\"payments\"],\n"
    "   \"resources\": [\"orders/**\"], \"obligations\": {\"ttl\": 30}},\n"
    "  {\"id\": \"refund-once\", \"effect\": \"allow\", \"agents\": [\"alice\"],\n"
    "   \"actions\": [\"payments:refund\"], \"audiences\": [\"payments\"],\n"
    "   \"resources\": [\"orders/*\"], \"obligations\": {\"single_use\": true}},\n"
    "  {\"id\": \"payout-approved\", \"effect\": \"allow\", \"agents\": [\"alice\"],\n"
    "   \"actions\": [\"payments:payout\"], \"audiences\": [\"payments\"],\n"
    "   \"resources\": [\"**\"],\n"
    "   \"obligations\": {\"approval_required\": {\"group\": \"finance\", \"approvers\": 1}}},\n"
    "  {\"id\": \"crm-office\", \"effect\": \"allow\", \"agents\": [\"alice\", \"bob\"],\n"
    "   \"actions\": [\"crm:read\"], \"audiences\": [\"crm\"], \"resources\": [\"**\"],\n"
    "   \"conditions\": {\"source_ip\": [\"10.20.0.0/16\"]}},\n"
    "  {\"id\": \"crm-small-credit\", \"effect\": \"allow\", \"agents\": [\"alice\"],\n"
    "   \"actions\": [\"crm:credit\"], \"audiences\": [\"crm\"], \"resources\": [\"**\"],\n"
    "   \"conditions\": {\"limits\": [{\"path\": \"amount\", \"type\": \"credit\", \"max\": "
    "50}]}},\n"
    "  {\"id\": \"pep-evaluates\", \"effect\": \"allow\", \"agents\": [\"gate\"],\n"
    "   \"actions\": [\"ztb:evaluate\"], \"audiences\": [\"payments\", \"crm\"],\n"
    "   \"resources\": [\"**\"]},\n"
    "  {\"id\": \"pep-introspects\", \"effect\": \"allow\", \"agents\": [\"carol\"],\n"
    "   \"actions\": [\"ztb:introspect\"], \"audiences\": [\"payments\"],\n"
    "   \"resources\": [\"**\"]}\n"
    " ]}\n";

static struct zh_redis rd;
static struct zh_broker b;
static struct za_agent alice, bob, gate, carol;

static int setup(void **state)
{
    (void)state;
    srand((unsigned)time(NULL) ^ (unsigned)getpid());
    zh_redis_start(&rd);
    zh_broker_start_issuing(&b, rd.url, policy_doc);
    za_enroll(&b, &alice, "alice");
    za_enroll(&b, &bob, "bob");
    za_enroll(&b, &gate, "gate");
    za_enroll(&b, &carol, "carol");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    struct za_agent *all[] = {&alice, &bob, &gate, &carol};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        za_free(all[i]);
    assert_int_equal(zh_broker_stop(&b), 0);
    zh_redis_stop(&rd, 1);
    zh_rmtree(b.dir);
    return 0;
}

/* POST body to path with the Authorization header auth (NULL: none) and
 * more headers (NULL-terminated, may be NULL); returns the status. */
static long post(const char *path, const char *auth, const char *ctype, const char *body,
                 size_t len, const char *extra, struct zh_resp *r)
{
    char url[300], hdr[4096];
    snprintf(url, sizeof(url), "%s%s", b.url, path);
    const char *headers[3] = {NULL, NULL, NULL};
    size_t n = 0;
    if (auth != NULL) {
        snprintf(hdr, sizeof(hdr), "Authorization: %s", auth);
        headers[n++] = hdr;
    }
    if (extra != NULL)
        headers[n++] = extra;
    if (zh_http("POST", url, NULL, ctype, body, len, headers, r) != 0)
        fail_msg("POST %s: transport error", path);
    return r->status;
}

/* The caller's session as an Authorization header value. */
static const char *bearer(const struct za_agent *a)
{
    static char v[600];
    snprintf(v, sizeof(v), "Bearer %s", a->session);
    return v;
}

/* Ask gate about body at path; expects 200 and returns the parsed answer. */
static json_t *ask(const char *path, const char *body)
{
    struct zh_resp r;
    if (post(path, bearer(&gate), "application/json", body, strlen(body), NULL, &r) != 200)
        fail_msg("%s: HTTP %ld %s", path, r.status, r.body);
    json_t *j = za_json(&r);
    zh_resp_free(&r);
    return j;
}

/* One decision: 1/0, and its reason must be want. */
static int decision_of(const json_t *d, const char *want)
{
    const json_t *dec = json_object_get(d, "decision");
    assert_true(json_is_boolean(dec));
    const char *reason =
        json_string_value(json_object_get(json_object_get(d, "context"), "reason"));
    assert_non_null(reason);
    if (strcmp(reason, want) != 0)
        fail_msg("reason %s, expected %s", reason, want);
    return json_is_true(dec);
}

/* Evaluate one 4-tuple (JSON members) at /access/v1/evaluation. */
static int single(const char *tuple, const char *want)
{
    char body[2048];
    snprintf(body, sizeof(body), "{%s}", tuple);
    json_t *j = ask("/access/v1/evaluation", body);
    int d = decision_of(j, want);
    json_decref(j);
    return d;
}

#define SUBJ(id)  "\"subject\": {\"type\": \"agent\", \"id\": \"" id "\"}"
#define ACT(n)    "\"action\": {\"name\": \"" n "\"}"
#define RES(t, i) "\"resource\": {\"type\": \"" t "\", \"id\": \"" i "\"}"

static void test_metadata(void **state)
{
    (void)state;
    struct zh_resp r;
    assert_int_equal(zh_get(&b, "/.well-known/authzen-configuration", &r), 0);
    assert_int_equal(r.status, 200);
    json_t *j = za_json(&r);
    char want[300];
    assert_string_equal(json_string_value(json_object_get(j, "policy_decision_point")), b.url);
    snprintf(want, sizeof(want), "%s/access/v1/evaluation", b.url);
    assert_string_equal(json_string_value(json_object_get(j, "access_evaluation_endpoint")), want);
    snprintf(want, sizeof(want), "%s/access/v1/evaluations", b.url);
    assert_string_equal(json_string_value(json_object_get(j, "access_evaluations_endpoint")), want);
    assert_null(json_object_get(j, "search_endpoint")); /* only what is served */
    json_decref(j);
    zh_resp_free(&r);
}

static void test_single_decisions(void **state)
{
    (void)state;
    /* a permit, with the request id echoed and the token's ttl as advice */
    struct zh_resp r;
    const char *body = "{" SUBJ("alice") ", " ACT("payments:read") ", " RES(
        "payments", "orders/7") ", \"context\": {\"time\": \"2026-12-04T03:00:00Z\"}}";
    assert_int_equal(post("/access/v1/evaluation", bearer(&gate), "application/json", body,
                          strlen(body), "X-Request-ID: bfe9eb29-ab87", &r),
                     200);
    char rid[64];
    assert_non_null(zh_resp_header(&r, "X-Request-ID", rid, sizeof(rid)));
    assert_string_equal(rid, "bfe9eb29-ab87");
    json_t *j = za_json(&r);
    assert_true(decision_of(j, "allowed"));
    assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "context"), "ttl")), 30);
    json_decref(j);
    zh_resp_free(&r);

    /* the SPIFFE ID names the agent as well as its name */
    assert_true(single("\"subject\": {\"type\": \"agent\", \"id\": "
                       "\"spiffe://ztb.local/agent/alice\"}, " ACT("payments:read") ", " RES(
                           "payments", "orders/8"),
                       "allowed"));
    /* denials, each with its reason */
    assert_false(single(SUBJ("alice") ", " ACT("payments:read") ", " RES("payments", "invoices/1"),
                        "no_matching_rule"));
    assert_false(single(SUBJ("bob") ", " ACT("payments:read") ", " RES("payments", "orders/7"),
                        "no_matching_rule"));
    assert_false(single(SUBJ("mallory") ", " ACT("payments:read") ", " RES("payments", "orders/7"),
                        "unknown_subject"));
    assert_false(single("\"subject\": {\"type\": \"user\", \"id\": \"alice\"}, " ACT(
                            "payments:read") ", " RES("payments", "orders/7"),
                        "unsupported_subject_type"));
    assert_false(single(SUBJ("alice") ", " ACT("ztb:introspect") ", " RES("payments", ""),
                        "reserved_action"));
    /* context: source_ip from subject.properties.ip_address; unknown is a deny */
    assert_true(single("\"subject\": {\"type\": \"agent\", \"id\": \"bob\", \"properties\": "
                       "{\"ip_address\": \"10.20.3.4\"}}, " ACT("crm:read") ", " RES("crm", "c/1"),
                       "allowed"));
    assert_false(single("\"subject\": {\"type\": \"agent\", \"id\": \"bob\", \"properties\": "
                        "{\"ip_address\": \"192.0.2.1\"}}, " ACT("crm:read") ", " RES("crm", "c/1"),
                        "condition_not_met"));
    assert_false(
        single(SUBJ("bob") ", " ACT("crm:read") ", " RES("crm", "c/1"), "condition_not_met"));
    /* limits read context.authorization_details */
    assert_true(
        single(SUBJ("alice") ", " ACT("crm:credit") ", " RES(
                   "crm", "c/1") ", "
                                 "\"context\": {\"authorization_details\": [{\"type\": \"credit\", "
                                 "\"amount\": 20}]}",
               "allowed"));
    assert_false(
        single(SUBJ("alice") ", " ACT("crm:credit") ", " RES(
                   "crm", "c/1") ", "
                                 "\"context\": {\"authorization_details\": [{\"type\": \"credit\", "
                                 "\"amount\": 500}]}",
               "condition_not_met"));
}

/* What ztb gives only after a human approval, or only as a single-use
 * token, is never an AuthZEN permit. */
static void test_obligations(void **state)
{
    (void)state;
    assert_false(single(SUBJ("alice") ", " ACT("payments:payout") ", " RES("payments", "p/1"),
                        "approval_required"));
    assert_false(single(SUBJ("alice") ", " ACT("payments:refund") ", " RES("payments", "orders/1"),
                        "single_use_token_required"));
}

static void test_batch(void **state)
{
    (void)state;
    const char *three =
        "\"evaluations\": ["
        "{" RES("payments", "orders/1") "},"
                                        "{" RES("payments", "invoices/2") "},"
                                                                          "{" RES("payments",
                                                                                  "orders/3") "}]";
    char body[2048];
    const char *sem[] = {"execute_all", "deny_on_first_deny", "permit_on_first_permit", NULL};
    size_t want_n[] = {3, 2, 1, 3};
    for (int i = 0; i < 4; i++) {
        if (sem[i] != NULL)
            snprintf(body, sizeof(body),
                     "{" SUBJ("alice") ", " ACT("payments:read") ", \"options\": "
                                                                 "{\"evaluations_semantic\": "
                                                                 "\"%s\"}, %s}",
                     sem[i], three);
        else /* the default semantic is execute_all */
            snprintf(body, sizeof(body), "{" SUBJ("alice") ", " ACT("payments:read") ", %s}",
                     three);
        json_t *j = ask("/access/v1/evaluations", body);
        const json_t *ev = json_object_get(j, "evaluations");
        if (json_array_size(ev) != want_n[i])
            fail_msg("%s: %zu decisions", sem[i] ? sem[i] : "default", json_array_size(ev));
        assert_true(decision_of(json_array_get(ev, 0), "allowed"));
        if (want_n[i] > 1)
            assert_false(decision_of(json_array_get(ev, 1), "no_matching_rule"));
        if (want_n[i] > 2)
            assert_true(decision_of(json_array_get(ev, 2), "allowed"));
        assert_null(json_object_get(j, "decision"));
        json_decref(j);
    }
    /* an evaluation's own members replace the defaults */
    json_t *j =
        ask("/access/v1/evaluations",
            "{" SUBJ("alice") ", " ACT(
                "payments:read") ", \"evaluations\": ["
                                 "{" SUBJ("bob") ", " RES(
                                     "payments", "orders/1") "},"
                                                             "{" ACT("payments:payout") ", " RES(
                                                                 "payments", "p/1") "}]}");
    const json_t *ev = json_object_get(j, "evaluations");
    assert_int_equal(json_array_size(ev), 2);
    assert_false(decision_of(json_array_get(ev, 0), "no_matching_rule"));
    assert_false(decision_of(json_array_get(ev, 1), "approval_required"));
    json_decref(j);
}

static void test_refusals(void **state)
{
    (void)state;
    const char *body =
        "{" SUBJ("alice") ", " ACT("payments:read") ", " RES("payments", "orders/7") "}";
    size_t len = strlen(body);
    struct zh_resp r;
    char www[200];
    /* no credential at all: 401 with the challenge, the request id echoed */
    assert_int_equal(
        post("/access/v1/evaluation", NULL, "application/json", body, len, "X-Request-ID: r-1", &r),
        401);
    assert_non_null(zh_resp_header(&r, "WWW-Authenticate", www, sizeof(www)));
    assert_non_null(strstr(www, "Bearer"));
    assert_non_null(zh_resp_header(&r, "X-Request-ID", www, sizeof(www)));
    zh_resp_free(&r);
    /* a forged session, another scheme, garbage */
    char forged[600];
    snprintf(forged, sizeof(forged), "%s", bearer(&gate));
    forged[strlen(forged) - 2] ^= 1;
    const char *bad_auth[] = {forged, "Basic Z2F0ZTpwdw==", "Bearer a.b.c", "Bearer"};
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(
            post("/access/v1/evaluation", bad_auth[i], "application/json", body, len, NULL, &r),
            401);
        assert_non_null(zh_resp_header(&r, "WWW-Authenticate", www, sizeof(www)));
        za_expect_error(&r, 401, "invalid_client");
        zh_resp_free(&r);
    }
    /* a private_key_jwt client assertion authenticates too, once */
    ztb_buf as;
    ztb_buf_init(&as, 4096);
    za_assertion(&b, &gate, NULL, &as);
    char hdr[4200];
    snprintf(hdr, sizeof(hdr), "Bearer %s", ztb_buf_cstr(&as));
    assert_int_equal(post("/access/v1/evaluation", hdr, "application/json", body, len, NULL, &r),
                     200);
    zh_resp_free(&r);
    assert_int_equal(post("/access/v1/evaluation", hdr, "application/json", body, len, NULL, &r),
                     401);
    zh_resp_free(&r);
    ztb_buf_free(&as);
    /* authenticated, but not allowed ztb:evaluate: 403 (carol may only introspect) */
    assert_int_equal(
        post("/access/v1/evaluation", bearer(&carol), "application/json", body, len, NULL, &r),
        403);
    za_expect_error(&r, 403, "access_denied");
    zh_resp_free(&r);
    /* gate may evaluate on payments and crm, not billing: one such
     * evaluation refuses the whole batch */
    const char *mixed = "{" SUBJ("alice") ", " ACT(
        "payments:read") ", \"evaluations\": ["
                         "{" RES("payments", "orders/1") "}, {" RES("billing", "b/1") "}]}";
    assert_int_equal(post("/access/v1/evaluations", bearer(&gate), "application/json", mixed,
                          strlen(mixed), NULL, &r),
                     403);
    assert_non_null(strstr(r.body, "billing"));
    zh_resp_free(&r);
    /* malformed: 400 naming the problem */
    const char *bad[] = {
        "{", "{" SUBJ("alice") "}",
        "{" SUBJ("alice") ", " ACT("payments:read") ", " RES("payments", "o") ", \"subject\": {}}",
        "{\"evaluations\": [1]}"};
    const char *why[] = {"invalid JSON", "action required", "duplicate", "must be an object"};
    for (size_t i = 0; i < 4; i++) {
        const char *path = i == 3 ? "/access/v1/evaluations" : "/access/v1/evaluation";
        assert_int_equal(
            post(path, bearer(&gate), "application/json", bad[i], strlen(bad[i]), NULL, &r), 400);
        if (strstr(r.body, why[i]) == NULL)
            fail_msg("%s: %s", bad[i], r.body);
        zh_resp_free(&r);
    }
    /* wrong media type, and a body over the limit */
    assert_int_equal(
        post("/access/v1/evaluation", bearer(&gate), "text/plain", body, len, NULL, &r), 415);
    zh_resp_free(&r);
    size_t big_n = 20000;
    char *big = malloc(big_n);
    assert_non_null(big);
    memset(big, ' ', big_n);
    big[0] = '{';
    big[big_n - 1] = '}';
    assert_int_equal(
        post("/access/v1/evaluation", bearer(&gate), "application/json", big, big_n, NULL, &r),
        413);
    zh_resp_free(&r);
    free(big);
}

static void ctl(const char *verb, const char *agent)
{
    const char *argv[] = {zh_bin("ztbctl"), "--socket", b.admin_sock, verb, agent, NULL};
    char *out = NULL, *err = NULL;
    int rc = zh_run(argv, &out, &err);
    if (rc != 0)
        fail_msg("ztbctl %s %s: %d %s", verb, agent, rc, err ? err : "");
    free(out);
    free(err);
}

/* A quarantined subject gets no permit; every decision is audited. */
static void test_state_and_audit(void **state)
{
    (void)state;
    const char *t = SUBJ("alice") ", " ACT("payments:read") ", " RES("payments", "orders/9");
    assert_true(single(t, "allowed"));
    ctl("quarantine", "alice");
    assert_false(single(t, "subject_quarantined"));
    ctl("release", "alice");
    assert_true(single(t, "allowed"));
    char *audit = za_audit_text(&b);
    assert_non_null(strstr(audit, "\"authzen.decision\""));
    assert_non_null(strstr(audit, "\"subject_quarantined\""));
    assert_non_null(strstr(audit, "\"authzen.refused\""));
    assert_non_null(strstr(audit, "\"approval_required\""));
    free(audit);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_metadata),    cmocka_unit_test(test_single_decisions),
        cmocka_unit_test(test_obligations), cmocka_unit_test(test_batch),
        cmocka_unit_test(test_refusals),    cmocka_unit_test(test_state_and_audit),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
