/*
 * test_agent_approval.c - token requests that wait for a human
 * (agent_approval.c), against the scripted broker of agent_fixture.h with
 * POST /v1/approvals/{id} added: a script of poll answers, each poll's form
 * and DPoP proof checked as the broker checks them (the session only, a
 * proof for <issuer>/v1/approvals/<id>).
 *
 * What is checked: a pending answer becomes a handle with its id, interval
 * and expiry (clamped; defaults when missing or of the wrong type); a poll
 * gets the token when approved, and APPROVAL_PENDING (with the new
 * interval), APPROVAL_DENIED (the approver's reason, bounded),
 * APPROVAL_EXPIRED and NOT_FOUND otherwise; an unusable 200 answer is an
 * error, not a token; a pending answer whose approval id is missing or not
 * an apr_ id gives no handle (the id never reaches a URL); the blocking wait
 * polls until decided, and times out with the approval id in the detail
 * (at once for timeout 0, without a poll); no detail carries the session
 * or a token.
 */
#include "agent_fixture.h"

#define APR_ID  "apr_3q2Jx0Q8vLkA3W6u1bXh0A"
#define PENDING "{\"error\":\"authorization_pending\",\"ztb_error\":\"APPROVAL_PENDING\","
#define MINT    "MINT" /* a poll script body: answer 200 with a real token */

/* ---- /v1/approvals/{id} -------------------------------------------------- */

static struct {
    struct {
        unsigned status;
        const char *body;
    } script[8];
    int n, i;
    unsigned polls;
    int bad_poll; /* a poll the broker would refuse (form or proof) */
    char last_url[128];
} A;

/* Answer a poll as the broker does: session auth, nothing else in the form,
 * a DPoP proof (when the agent uses DPoP) for the approval's URL. */
static void on_poll(const struct st_req *rq, struct st_resp *rs)
{
    A.polls++;
    snprintf(A.last_url, sizeof(A.last_url), "%s", rq->url);
    char type[128] = "", cred[256] = "", other[64];
    st_form_get(rq->body, "client_assertion_type", type, sizeof(type));
    st_form_get(rq->body, "client_assertion", cred, sizeof(cred));
    int valid = strcmp(type, "urn:ztb:params:oauth:client-assertion-type:session") == 0;
    int known = 0;
    for (int i = 0; i < B.nvalid; i++)
        known |= strcmp(cred, B.sessions_valid[i]) == 0;
    if (st_form_get(rq->body, "audience", other, sizeof(other)) ||
        st_form_get(rq->body, "scope", other, sizeof(other)) ||
        st_form_get(rq->body, "authorization_details", other, sizeof(other)))
        A.bad_poll = 1;
    if (!valid || !known) {
        st_resp_json(rs, 401, "{\"error\":\"invalid_client\"}");
        return;
    }
    char htu[256];
    snprintf(htu, sizeof(htu), "%s%s", B.srv.base, rq->url);
    ztb_dpop_result d;
    if (rq->dpop != NULL && (ztb_dpop_proof_check(rq->dpop, strlen(rq->dpop), "POST", htu, NULL,
                                                  (int64_t)time(NULL), 60, 5, &d) != ZTB_OK ||
                             seen_before(&B, d.jti))) {
        A.bad_poll = 1;
        st_resp_json(rs, 400, "{\"error\":\"invalid_dpop_proof\"}");
        return;
    }
    if (A.i >= A.n) {
        st_resp_json(rs, 404, "{\"error\":\"not_found\",\"ztb_error\":\"NOT_FOUND\"}");
        return;
    }
    int i = A.i++;
    if (strcmp(A.script[i].body, MINT) == 0) {
        B.tokens++;
        mint_token(&B, rq->dpop ? d.jkt : NULL, rs);
        return;
    }
    st_resp_json(rs, A.script[i].status, A.script[i].body);
}

static void approval_handler(void *ud, const struct st_req *rq, struct st_resp *rs)
{
    if (strncmp(rq->url, "/v1/approvals/", 14) == 0)
        on_poll(rq, rs);
    else
        handler(ud, rq, rs);
}

static int setup_approvals(void **state)
{
    setup(state);
    pthread_mutex_lock(&B.srv.mu); /* the server reads it under mu */
    B.srv.handler = approval_handler;
    pthread_mutex_unlock(&B.srv.mu);
    return 0;
}

/* Each test: the token request answers rv_body (400) once, polls answer
 * the script. */
static void script_start(const char *pending_body)
{
    memset(&A, 0, sizeof(A));
    B.nscript = 1;
    B.iscript = 0;
    B.script[0].status = 400;
    B.script[0].body = pending_body;
    B.script[0].retry_after = NULL;
}

static void script_poll(unsigned status, const char *body)
{
    A.script[A.n].status = status;
    A.script[A.n].body = body;
    A.n++;
}

/* No detail may carry a session credential or a token. */
static void detail_clean(ztb_agent *a)
{
    const char *d = ztb_agent_errdetail(a);
    assert_null(strstr(d, "ztbs_"));
    assert_null(strstr(d, "eyJ"));
}

/* A pending request becomes a handle: id, interval and expiry from the
 * answer; polls carry only the session and a proof for the approval's URL;
 * pending polls update the interval; the approved poll gives a valid token,
 * with DPoP and without. */
static void test_pending_then_approved(void **state)
{
    (void)state;
    for (int dpop = 0; dpop <= 1; dpop++) {
        ztb_agent *a = enrolled_agent(dpop);
        script_start(PENDING "\"approval_id\":\"" APR_ID "\",\"interval\":2,\"expires_in\":900}");
        script_poll(400, PENDING "\"approval_id\":\"" APR_ID "\",\"interval\":3}");
        script_poll(200, MINT);
        char *tok = (char *)1;
        ztb_approval *p = NULL;
        int64_t now = (int64_t)time(NULL);
        assert_int_equal(
            ztb_agent_token_start(a, "payments", "payments:refund", NULL, NULL, &tok, &p),
            ZTB_ERR_APPROVAL_PENDING);
        assert_null(tok);
        assert_non_null(p);
        assert_string_equal(ztb_approval_id(p), APR_ID);
        assert_int_equal(ztb_approval_interval(p), 2);
        assert_in_range(ztb_approval_expires_at(p), now + 899, now + 902);
        assert_int_equal(ztb_approval_poll(p, &tok), ZTB_ERR_APPROVAL_PENDING);
        assert_null(tok);
        assert_int_equal(ztb_approval_interval(p), 3);
        assert_string_equal(A.last_url, "/v1/approvals/" APR_ID);
        assert_int_equal(ztb_approval_poll(p, &tok), ZTB_OK);
        assert_non_null(tok);
        token_is_valid(tok);
        assert_int_equal(A.polls, 2);
        assert_false(A.bad_poll);
        ztb_token_free(tok);
        ztb_approval_free(p);
        ztb_agent_free(a);
    }
}

/* No approval needed: ztb_agent_token_start gives the token and no handle. */
static void test_no_approval_needed(void **state)
{
    (void)state;
    ztb_agent *a = enrolled_agent(1);
    memset(&A, 0, sizeof(A));
    B.nscript = 0;
    B.iscript = 0;
    char *tok = NULL;
    ztb_approval *p = (ztb_approval *)1;
    assert_int_equal(ztb_agent_token_start(a, "payments", "payments:refund", NULL, NULL, &tok, &p),
                     ZTB_OK);
    assert_null(p);
    token_is_valid(tok);
    ztb_token_free(tok);
    assert_int_equal(ztb_agent_token_start(a, "payments", "payments:refund", NULL, NULL, NULL, &p),
                     ZTB_ERR_INVALID_ARG);
    assert_int_equal(ztb_approval_poll(NULL, &tok), ZTB_ERR_INVALID_ARG);
    assert_null(tok);
    assert_string_equal(ztb_approval_id(NULL), "");
    ztb_approval_free(NULL);
    ztb_agent_free(a);
}

/* Interval clamped to 1..60, 5 when missing or not a number; an expiry out
 * of range or missing is not taken (0). */
static void test_timing_bounds(void **state)
{
    (void)state;
    static const struct {
        const char *body;
        unsigned interval;
        int has_expiry;
    } cases[] = {
        {PENDING "\"approval_id\":\"" APR_ID "\",\"interval\":0,\"expires_in\":10}", 1, 1},
        {PENDING "\"approval_id\":\"" APR_ID "\",\"interval\":999}", 60, 0},
        {PENDING "\"approval_id\":\"" APR_ID "\",\"interval\":\"2\",\"expires_in\":-5}", 5, 0},
        {PENDING "\"approval_id\":\"" APR_ID "\",\"expires_in\":99999999}", 5, 0},
    };
    ztb_agent *a = enrolled_agent(0);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        script_start(cases[i].body);
        char *tok = NULL;
        ztb_approval *p = NULL;
        assert_int_equal(
            ztb_agent_token_start(a, "payments", "payments:refund", NULL, NULL, &tok, &p),
            ZTB_ERR_APPROVAL_PENDING);
        assert_non_null(p);
        assert_int_equal(ztb_approval_interval(p), cases[i].interval);
        assert_int_equal(ztb_approval_expires_at(p) != 0, cases[i].has_expiry);
        ztb_approval_free(p);
    }
    ztb_agent_free(a);
}

/* A pending answer with no usable approval id gives no handle, and nothing
 * is polled with what the broker sent. */
static void test_bad_approval_id(void **state)
{
    (void)state;
    static const char *const bodies[] = {
        PENDING "\"interval\":2}",
        PENDING "\"approval_id\":\"apr_../../admin\"}",
        PENDING "\"approval_id\":\"xyz_3q2Jx0Q8vLkA3W6u1bXh0A\"}",
        PENDING "\"approval_id\":\"apr_\"}",
        PENDING "\"approval_id\":\"apr_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"}", /* 41 */
        PENDING "\"approval_id\":7}",
    };
    ztb_agent *a = enrolled_agent(0);
    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        script_start(bodies[i]);
        char *tok = NULL;
        ztb_approval *p = (ztb_approval *)1;
        ztb_err rv = ztb_agent_token_start(a, "payments", "payments:refund", NULL, NULL, &tok, &p);
        if (rv != ZTB_ERR_HTTP)
            fail_msg("body %zu: %s", i, ztb_err_name(rv));
        assert_null(p);
        assert_null(tok);
        detail_clean(a);
    }
    /* and the wait gives the same error, polling nothing */
    script_start(bodies[1]);
    char *tok = NULL;
    assert_int_equal(ztb_agent_token_wait(a, "payments", "payments:refund", NULL, NULL, 5000, &tok),
                     ZTB_ERR_HTTP);
    assert_int_equal(A.polls, 0);
    ztb_agent_free(a);
}

/* Every decided answer a poll can get: denied (with the approver's reason,
 * bounded), expired, not found, a server error, and a 200 that is not a
 * token answer; none gives a token, none leaks the session into the detail. */
static void test_decided_answers(void **state)
{
    (void)state;
    static char long_reason[1200];
    memset(long_reason, 0, sizeof(long_reason));
    strcpy(long_reason, "{\"error\":\"access_denied\",\"ztb_error\":\"APPROVAL_DENIED\","
                        "\"reason\":\"");
    size_t l = strlen(long_reason);
    memset(long_reason + l, 'r', 1000);
    strcpy(long_reason + l + 1000, "\"}");
    static const struct {
        unsigned status;
        const char *body;
        ztb_err want;
        const char *detail; /* in the detail, or NULL */
    } cases[] = {
        {403,
         "{\"error\":\"access_denied\",\"ztb_error\":\"APPROVAL_DENIED\",\"reason\":\"not on a "
         "Friday\"}",
         ZTB_ERR_APPROVAL_DENIED, "denied by an approver: not on a Friday"},
        {403, "{\"error\":\"access_denied\",\"ztb_error\":\"APPROVAL_DENIED\"}",
         ZTB_ERR_APPROVAL_DENIED, NULL},
        {400, "{\"error\":\"expired_token\",\"ztb_error\":\"APPROVAL_EXPIRED\"}",
         ZTB_ERR_APPROVAL_EXPIRED, NULL},
        {404, "{\"error\":\"not_found\",\"ztb_error\":\"NOT_FOUND\"}", ZTB_ERR_NOT_FOUND, NULL},
        {200, "{\"access_token\":", ZTB_ERR_HTTP, "unusable token answer"},
        {200, "{\"token_type\":\"Bearer\"}", ZTB_ERR_HTTP, "unusable token answer"},
        {400, "not json at all", ZTB_OK, NULL}, /* ZTB_OK: any error but OK */
    };
    ztb_agent *a = enrolled_agent(0);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        script_start(PENDING "\"approval_id\":\"" APR_ID "\",\"interval\":1}");
        script_poll(cases[i].status, cases[i].body);
        char *tok = NULL;
        ztb_approval *p = NULL;
        assert_int_equal(
            ztb_agent_token_start(a, "payments", "payments:refund", NULL, NULL, &tok, &p),
            ZTB_ERR_APPROVAL_PENDING);
        ztb_err rv = ztb_approval_poll(p, &tok);
        if (cases[i].want == ZTB_OK ? rv == ZTB_OK || rv == ZTB_ERR_APPROVAL_PENDING
                                    : rv != cases[i].want)
            fail_msg("case %zu: %s", i, ztb_err_name(rv));
        assert_null(tok);
        if (cases[i].detail != NULL && strstr(ztb_agent_errdetail(a), cases[i].detail) == NULL)
            fail_msg("case %zu: detail \"%s\"", i, ztb_agent_errdetail(a));
        detail_clean(a);
        ztb_approval_free(p);
    }
    /* the approver's reason is bounded */
    script_start(PENDING "\"approval_id\":\"" APR_ID "\",\"interval\":1}");
    script_poll(403, long_reason);
    char *tok = NULL;
    ztb_approval *p = NULL;
    assert_int_equal(ztb_agent_token_start(a, "payments", "payments:refund", NULL, NULL, &tok, &p),
                     ZTB_ERR_APPROVAL_PENDING);
    assert_int_equal(ztb_approval_poll(p, &tok), ZTB_ERR_APPROVAL_DENIED);
    assert_true(strlen(ztb_agent_errdetail(a)) < 300);
    ztb_approval_free(p);
    ztb_agent_free(a);
}

/* The blocking wait polls at the interval until decided: two pending
 * polls, then the token; a denial ends the wait with APPROVAL_DENIED. */
static void test_wait(void **state)
{
    (void)state;
    ztb_agent *a = enrolled_agent(1);
    script_start(PENDING "\"approval_id\":\"" APR_ID "\",\"interval\":1}");
    script_poll(400, PENDING "\"approval_id\":\"" APR_ID "\",\"interval\":1}");
    script_poll(200, MINT);
    char *tok = NULL;
    int64_t t0 = clock_mono_ms();
    assert_int_equal(
        ztb_agent_token_wait(a, "payments", "payments:refund", NULL, NULL, 30000, &tok), ZTB_OK);
    int64_t spent = clock_mono_ms() - t0;
    assert_int_equal(A.polls, 2);
    assert_true(spent >= 1900); /* waited the interval before each poll */
    assert_true(spent < 10000);
    token_is_valid(tok);
    ztb_token_free(tok);
    assert_false(A.bad_poll);

    script_start(PENDING "\"approval_id\":\"" APR_ID "\",\"interval\":1}");
    script_poll(403, "{\"error\":\"access_denied\",\"ztb_error\":\"APPROVAL_DENIED\","
                     "\"reason\":\"no\"}");
    assert_int_equal(
        ztb_agent_token_wait(a, "payments", "payments:refund", NULL, NULL, 30000, &tok),
        ZTB_ERR_APPROVAL_DENIED);
    assert_null(tok);
    assert_int_equal(A.polls, 1);
    ztb_agent_free(a);
}

/* Still pending at the timeout: TIMEOUT naming the approval id, after the
 * polls that fit; timeout 0 gives up at once without polling. */
static void test_wait_timeout(void **state)
{
    (void)state;
    ztb_agent *a = enrolled_agent(0);
    script_start(PENDING "\"approval_id\":\"" APR_ID "\",\"interval\":1}");
    for (int i = 0; i < 8; i++)
        script_poll(400, PENDING "\"approval_id\":\"" APR_ID "\",\"interval\":1}");
    char *tok = NULL;
    int64_t t0 = clock_mono_ms();
    assert_int_equal(ztb_agent_token_wait(a, "payments", "payments:refund", NULL, NULL, 1500, &tok),
                     ZTB_ERR_TIMEOUT);
    int64_t spent = clock_mono_ms() - t0;
    assert_true(spent >= 1400);
    assert_true(spent < 5000);
    assert_int_equal(A.polls, 2); /* at 1 s and at 1.5 s */
    assert_null(tok);
    assert_non_null(strstr(ztb_agent_errdetail(a), APR_ID));
    detail_clean(a);

    script_start(PENDING "\"approval_id\":\"" APR_ID "\",\"interval\":1}");
    assert_int_equal(ztb_agent_token_wait(a, "payments", "payments:refund", NULL, NULL, 0, &tok),
                     ZTB_ERR_TIMEOUT);
    assert_int_equal(A.polls, 0);
    ztb_agent_free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pending_then_approved), cmocka_unit_test(test_no_approval_needed),
        cmocka_unit_test(test_timing_bounds),         cmocka_unit_test(test_bad_approval_id),
        cmocka_unit_test(test_decided_answers),       cmocka_unit_test(test_wait),
        cmocka_unit_test(test_wait_timeout),
    };
    return cmocka_run_group_tests(tests, setup_approvals, teardown);
}
