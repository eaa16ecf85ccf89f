/*
 * test_agent.c - the agent client against a scripted broker (an in-test
 * HTTP server that checks what the SDK sends the way docs/protocol.md says
 * the broker does: CSRs, client assertions, sessions, DPoP proofs): enroll,
 * credential file, tokens, sessions reused and renewed, retries with
 * Retry-After, error mapping, DPoP, identity renewal in the background, and
 * one handle shared by many threads.
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
#include <jansson.h>

#include <ztb/ztb.h>

#include "pki/ca.h"
#include "pki/csr.h"
#include "pki/dpop.h"
#include "pki/jwk.h"
#include "pki/jws.h"
#include "sdk/src/agent_internal.h"
#include "sdk/src/clock.h"
#include "sdk_test.h"

#define AGENT_ID "spiffe://ztb.local/agent/bot"

/* ---- the scripted broker ------------------------------------------------- */

struct broker {
    struct st_server srv;
    char token_endpoint[128];
    ztb_ca *ca;
    ztb_key *sign_key;  /* signs access tokens */
    ztb_key *agent_pub; /* the agent's key, from its last CSR */
    int64_t cert_ttl;
    unsigned session_ttl;
    int join_used;
    unsigned enrolls, renews, sessions, tokens;
    char sessions_valid[8][64];
    int nvalid;
    char seen_jtis[64][64]; /* assertion and DPoP proof ids, refused twice */
    int nseen;
    /* scripted /v1/token answers, consumed first to last; then 200 */
    struct {
        unsigned status;
        const char *body;
        const char *retry_after;
    } script[8];
    int nscript, iscript;
    char last_form[8192];
    int last_had_dpop;
    int introspect_active;
};

static struct broker B;

static int seen_before(struct broker *b, const char *jti)
{
    for (int i = 0; i < b->nseen; i++)
        if (strcmp(b->seen_jtis[i], jti) == 0)
            return 1;
    if (b->nseen < 64)
        snprintf(b->seen_jtis[b->nseen++], sizeof(b->seen_jtis[0]), "%s", jti);
    return 0;
}

/* Check a client assertion as the broker does; 1 if good. */
static int assertion_ok(struct broker *b, const char *type, const char *jws)
{
    if (type == NULL ||
        strcmp(type, "urn:ietf:params:oauth:client-assertion-type:jwt-bearer") != 0 ||
        jws == NULL || b->agent_pub == NULL)
        return 0;
    ztb_jws_header h;
    char store[4096];
    ztb_buf p;
    ztb_buf_init_fixed(&p, store, sizeof(store));
    if (ztb_jws_verify_with_key(b->agent_pub, jws, strlen(jws), NULL, &h, &p) != ZTB_OK ||
        !ztb_jws_header_typ_is(&h, "JWT") || h.has_kid)
        return 0;
    json_error_t e;
    json_t *j = json_loadb(store, p.len, JSON_REJECT_DUPLICATES, &e);
    const char *iss = json_string_value(json_object_get(j, "iss"));
    const char *sub = json_string_value(json_object_get(j, "sub"));
    const char *aud = json_string_value(json_object_get(j, "aud"));
    const char *jti = json_string_value(json_object_get(j, "jti"));
    json_int_t iat = json_integer_value(json_object_get(j, "iat"));
    json_int_t exp = json_integer_value(json_object_get(j, "exp"));
    int ok = iss && sub && aud && jti && strcmp(iss, AGENT_ID) == 0 && strcmp(sub, AGENT_ID) == 0 &&
             strcmp(aud, b->token_endpoint) == 0 && strlen(jti) >= 16 && exp > iat &&
             exp - iat <= 60 && exp >= (json_int_t)time(NULL) && !seen_before(b, jti);
    json_decref(j);
    return ok;
}

/* Issue an identity document for the CSR; fills rs (201) or an error. */
static void issue(struct broker *b, const char *csr, struct st_resp *rs)
{
    ztb_key *pub = NULL;
    if (ztb_csr_check(csr, strlen(csr), AGENT_ID, &pub) != ZTB_OK) {
        st_resp_json(rs, 400, "{\"error\":\"invalid_request\",\"error_description\":\"bad csr\"}");
        return;
    }
    ztb_buf cert, chain;
    ztb_buf_init(&cert, 65536);
    ztb_buf_init(&chain, 65536);
    int64_t now = (int64_t)time(NULL);
    assert_int_equal(ztb_ca_issue(b->ca, csr, strlen(csr), "bot", now, b->cert_ttl, &cert), ZTB_OK);
    assert_int_equal(ztb_ca_cert_pem(b->ca, &chain), ZTB_OK);
    json_t *j =
        json_pack("{s:s,s:s,s:s,s:I}", "spiffe_id", AGENT_ID, "identity", ztb_buf_cstr(&cert), "ca",
                  ztb_buf_cstr(&chain), "expires_at", (json_int_t)(now + b->cert_ttl));
    char *text = json_dumps(j, JSON_COMPACT);
    st_resp_json(rs, 201, text);
    free(text);
    json_decref(j);
    ztb_buf_free(&cert);
    ztb_buf_free(&chain);
    ztb_key_free(b->agent_pub);
    b->agent_pub = pub;
}

static void mint_token(struct broker *b, const char *jkt, struct st_resp *rs)
{
    char claims[2048], body[8192];
    int64_t now = (int64_t)time(NULL);
    char cnf[128] = "";
    if (jkt != NULL)
        snprintf(cnf, sizeof(cnf), ",\"cnf\":{\"jkt\":\"%s\"}", jkt);
    snprintf(claims, sizeof(claims),
             "{\"iss\":\"%s\",\"sub\":\"" AGENT_ID "\",\"aud\":\"payments\",\"iat\":%lld,"
             "\"exp\":%lld,\"jti\":\"t%u\",\"scope\":\"payments:refund\",\"authorization_details\":"
             "[{\"type\":\"ztb_action\",\"actions\":[\"payments:refund\"],\"locations\":"
             "[\"payments\"]}]%s,\"ztb\":{\"agent\":"
             "\"bot\",\"gen\":1}}",
             b->srv.base, (long long)now, (long long)now + 60, b->tokens, cnf);
    const char *tok = st_sign(b->sign_key, NULL, claims);
    snprintf(
        body, sizeof(body),
        "{\"access_token\":\"%s\",\"issued_token_type\":\"urn:ietf:params:oauth:token-type:"
        "access_token\",\"token_type\":\"%s\",\"expires_in\":60,\"scope\":\"payments:refund\"}",
        tok, jkt ? "DPoP" : "Bearer");
    st_resp_json(rs, 200, body);
}

static void on_token(struct broker *b, const struct st_req *rq, struct st_resp *rs)
{
    char type[128] = "", cred[256] = "";
    snprintf(b->last_form, sizeof(b->last_form), "%s", rq->body);
    st_form_get(rq->body, "client_assertion_type", type, sizeof(type));
    st_form_get(rq->body, "client_assertion", cred, sizeof(cred));
    int valid = 0;
    if (strcmp(type, "urn:ztb:params:oauth:client-assertion-type:session") == 0)
        for (int i = 0; i < b->nvalid; i++)
            valid |= strcmp(cred, b->sessions_valid[i]) == 0;
    if (!valid) {
        st_resp_json(rs, 401,
                     "{\"error\":\"invalid_client\",\"error_description\":\"session expired\"}");
        return;
    }
    ztb_dpop_result d;
    b->last_had_dpop = rq->dpop != NULL;
    if (rq->dpop != NULL &&
        (ztb_dpop_proof_check(rq->dpop, strlen(rq->dpop), "POST", b->token_endpoint, NULL,
                              (int64_t)time(NULL), 60, 5, &d) != ZTB_OK ||
         seen_before(b, d.jti))) {
        st_resp_json(rs, 400, "{\"error\":\"invalid_dpop_proof\",\"error_description\":\"bad\"}");
        return;
    }
    if (b->iscript < b->nscript) {
        int i = b->iscript++;
        st_resp_json(rs, b->script[i].status, b->script[i].body);
        if (b->script[i].retry_after)
            st_resp_header(rs, "Retry-After", b->script[i].retry_after);
        return;
    }
    b->tokens++;
    mint_token(b, rq->dpop ? d.jkt : NULL, rs);
}

static void handler(void *ud, const struct st_req *rq, struct st_resp *rs)
{
    struct broker *b = ud;
    if (strcmp(rq->url, "/.well-known/oauth-authorization-server") == 0) {
        char body[512];
        snprintf(body, sizeof(body), "{\"issuer\":\"%s\",\"token_endpoint\":\"%s\"}", b->srv.base,
                 b->token_endpoint);
        st_resp_json(rs, 200, body);
        return;
    }
    json_error_t e;
    if (strcmp(rq->url, "/v1/enroll") == 0) {
        b->enrolls++;
        json_t *j = json_loadb(rq->body, rq->body_len, 0, &e);
        const char *jt = json_string_value(json_object_get(j, "join_token"));
        const char *csr = json_string_value(json_object_get(j, "csr"));
        if (jt == NULL || strcmp(jt, "ztbj_good") != 0 || b->join_used++ > 0 || csr == NULL)
            st_resp_json(rs, 400,
                         "{\"error\":\"invalid_grant\",\"error_description\":\"join "
                         "token unknown, used or expired\"}");
        else
            issue(b, csr, rs);
        json_decref(j);
        return;
    }
    if (strcmp(rq->url, "/v1/renew") == 0) {
        b->renews++;
        json_t *j = json_loadb(rq->body, rq->body_len, 0, &e);
        const char *csr = json_string_value(json_object_get(j, "csr"));
        if (!assertion_ok(b, json_string_value(json_object_get(j, "client_assertion_type")),
                          json_string_value(json_object_get(j, "client_assertion"))) ||
            csr == NULL)
            st_resp_json(rs, 401, "{\"error\":\"invalid_client\"}");
        else
            issue(b, csr, rs);
        json_decref(j);
        return;
    }
    if (strcmp(rq->url, "/v1/session") == 0) {
        char type[128] = "", jws[4096] = "";
        st_form_get(rq->body, "client_assertion_type", type, sizeof(type));
        st_form_get(rq->body, "client_assertion", jws, sizeof(jws));
        if (!assertion_ok(b, type, jws)) {
            st_resp_json(rs, 401,
                         "{\"error\":\"invalid_client\",\"error_description\":\"bad assertion\"}");
            return;
        }
        char body[256];
        int i = b->nvalid < 8 ? b->nvalid++ : 7;
        snprintf(b->sessions_valid[i], sizeof(b->sessions_valid[0]), "ztbs_s%u", ++b->sessions);
        snprintf(body, sizeof(body),
                 "{\"session\":\"%s\",\"expires_in\":%u,\"token_type\":\"ztb-session\"}",
                 b->sessions_valid[i], b->session_ttl);
        st_resp_json(rs, 200, body);
        return;
    }
    if (strcmp(rq->url, "/v1/token") == 0) {
        on_token(b, rq, rs);
        return;
    }
    if (strcmp(rq->url, "/v1/introspect") == 0) {
        st_resp_json(rs, 200, b->introspect_active ? "{\"active\":true}" : "{\"active\":false}");
        return;
    }
}

static void broker_start(void)
{
    memset(&B, 0, sizeof(B));
    ztb_ca_opts o = {.trust_domain = "ztb.local"};
    assert_int_equal(ztb_ca_create(&o, (int64_t)time(NULL) - 60, &B.ca), ZTB_OK);
    assert_int_equal(ztb_key_generate(&B.sign_key), ZTB_OK);
    B.cert_ttl = 3600;
    B.session_ttl = 300;
    st_server_start(&B.srv, handler, &B);
    snprintf(B.token_endpoint, sizeof(B.token_endpoint), "%s/v1/token", B.srv.base);
}

static void broker_stop(void)
{
    st_server_stop(&B.srv);
    ztb_ca_free(B.ca);
    ztb_key_free(B.sign_key);
    ztb_key_free(B.agent_pub);
}

static ztb_agent *new_agent(const char *cred_file, int dpop)
{
    ztb_agent_config *c = ztb_agent_config_new();
    assert_int_equal(ztb_agent_config_set_broker(c, B.srv.base), ZTB_OK);
    assert_int_equal(ztb_agent_config_set_name(c, "bot"), ZTB_OK);
    if (cred_file != NULL)
        assert_int_equal(ztb_agent_config_set_credential_file(c, cred_file), ZTB_OK);
    assert_int_equal(ztb_agent_config_set_dpop(c, dpop), ZTB_OK);
    assert_int_equal(ztb_agent_config_set_retries(c, 3, 5000), ZTB_OK);
    ztb_agent *a = NULL;
    ztb_err rv = ztb_agent_new(c, &a);
    if (rv != ZTB_OK)
        fail_msg("ztb_agent_new: %s %s", ztb_err_name(rv), ztb_agent_errdetail(NULL));
    ztb_agent_config_free(c);
    return a;
}

static int setup(void **state)
{
    (void)state;
    broker_start();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    broker_stop();
    return 0;
}

/* Verify a token the agent got against the scripted broker's key (as a gateway would). */
static void token_is_valid(const char *tok)
{
    ztb_keyset *ks;
    assert_int_equal(ztb_keyset_new(&B.sign_key, NULL, 1, &ks), ZTB_OK);
    assert_int_equal(ztb_jws_verify(ks, tok, strlen(tok), NULL, NULL, NULL), ZTB_OK);
    ztb_keyset_free(ks);
}

/* ---- tests --------------------------------------------------------------- */

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

static ztb_agent *enrolled_agent(int dpop)
{
    B.join_used = 0;
    ztb_agent *a = new_agent(NULL, dpop);
    assert_int_equal(ztb_agent_enroll(a, "ztbj_good"), ZTB_OK);
    return a;
}

static void test_retries_and_errors(void **state)
{
    (void)state;
    ztb_agent *a = enrolled_agent(0);
    char *tok = NULL;
    /* rate limited, then unavailable, then fine: waits at least the Retry-After */
    B.nscript = 2;
    B.iscript = 0;
    B.script[0].status = 429;
    B.script[0].body = "{\"error\":\"slow_down\",\"error_description\":\"rate limit: agent\"}";
    B.script[0].retry_after = "1";
    B.script[1].status = 503;
    B.script[1].body = "{\"error\":\"temporarily_unavailable\"}";
    B.script[1].retry_after = NULL;
    int64_t t0 = clock_mono_ms();
    assert_int_equal(ztb_agent_token(a, "payments", "payments:refund", NULL, NULL, &tok), ZTB_OK);
    assert_true(clock_mono_ms() - t0 >= 1000);
    ztb_token_free(tok);
    /* a Retry-After beyond the retry budget (5 s here): give up at once */
    B.nscript = 1;
    B.iscript = 0;
    B.script[0].retry_after = "60";
    t0 = clock_mono_ms();
    assert_int_equal(ztb_agent_token(a, "payments", "payments:refund", NULL, NULL, &tok),
                     ZTB_ERR_RATE_LIMITED);
    assert_null(tok);
    assert_true(clock_mono_ms() - t0 < 1000);
    assert_non_null(strstr(ztb_agent_errdetail(a), "rate limit"));
    /* unavailable every time: 1 + 3 retries, then UNAVAILABLE */
    for (int i = 0; i < 4; i++) {
        B.script[i].status = 503;
        B.script[i].body = "{\"error\":\"temporarily_unavailable\"}";
        B.script[i].retry_after = NULL;
    }
    B.nscript = 4;
    B.iscript = 0;
    assert_int_equal(ztb_agent_token(a, "payments", "payments:refund", NULL, NULL, &tok),
                     ZTB_ERR_UNAVAILABLE);
    assert_int_equal(B.iscript, 4);
    /* each refusal has its own code */
    struct {
        unsigned status;
        const char *body;
        ztb_err want;
    } cases[] = {
        {403, "{\"error\":\"access_denied\",\"error_description\":\"no rule allows it\"}",
         ZTB_ERR_ACCESS_DENIED},
        /* the ztb error name decides (wire/error_response.h), whatever the text says */
        {403,
         "{\"error\":\"access_denied\",\"error_description\":\"on hold by the SOC\","
         "\"ztb_error\":\"QUARANTINED\"}",
         ZTB_ERR_QUARANTINED},
        {403,
         "{\"error\":\"access_denied\",\"error_description\":\"switched off\","
         "\"ztb_error\":\"AUDIENCE_KILLED\"}",
         ZTB_ERR_AUDIENCE_KILLED},
        {403,
         "{\"error\":\"access_denied\",\"error_description\":\"the audience is disabled\","
         "\"ztb_error\":\"ACCESS_DENIED\"}",
         ZTB_ERR_ACCESS_DENIED},
        /* never the text: without a name, only the RFC 6749 code counts */
        {403, "{\"error\":\"access_denied\",\"error_description\":\"the agent is quarantined\"}",
         ZTB_ERR_ACCESS_DENIED},
        {403, "{\"error\":\"access_denied\",\"error_description\":\"the audience is disabled\"}",
         ZTB_ERR_ACCESS_DENIED},
        /* a name that is no ztb error, or not a string: the code */
        {403, "{\"error\":\"access_denied\",\"ztb_error\":\"QUARANTINE\"}", ZTB_ERR_ACCESS_DENIED},
        {403, "{\"error\":\"access_denied\",\"ztb_error\":305}", ZTB_ERR_ACCESS_DENIED},
        {403, "{\"error\":\"access_denied\",\"ztb_error\":\"OK\"}", ZTB_ERR_ACCESS_DENIED},
        /* a name without an RFC 6749 code is not an error answer */
        {500, "{\"ztb_error\":\"QUARANTINED\"}", ZTB_ERR_HTTP},
        {400, "{\"error\":\"invalid_grant\",\"ztb_error\":\"REPLAY\"}", ZTB_ERR_REPLAY},
        {400, "{\"error\":\"invalid_grant\"}", ZTB_ERR_INVALID_REQUEST},
        {403, "{\"error\":\"approval_required\"}", ZTB_ERR_APPROVAL_REQUIRED},
        {400, "{\"error\":\"invalid_scope\"}", ZTB_ERR_INVALID_SCOPE},
        {400, "{\"error\":\"invalid_request\",\"error_description\":\"bad\\nline\"}",
         ZTB_ERR_INVALID_REQUEST},
        {400, "{\"error\":\"invalid_dpop_proof\"}", ZTB_ERR_DPOP},
        {500, "oops", ZTB_ERR_HTTP},
        {200, "{\"access_token\":5}", ZTB_ERR_HTTP},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        B.nscript = 1;
        B.iscript = 0;
        B.script[0].status = cases[i].status;
        B.script[0].body = cases[i].body;
        B.script[0].retry_after = NULL;
        ztb_err rv = ztb_agent_token(a, "payments", "payments:refund", NULL, NULL, &tok);
        if (rv != cases[i].want)
            fail_msg("case %zu: want %s got %s", i, ztb_err_name(cases[i].want), ztb_err_name(rv));
        assert_null(tok);
        assert_null(strchr(ztb_agent_errdetail(a), '\n'));
    }
    B.nscript = 0;
    ztb_agent_free(a);

    /* a broker that is not there: UNAVAILABLE after the retries */
    ztb_agent_config *c = ztb_agent_config_new();
    ztb_agent_config_set_broker(c, "http://127.0.0.1:1");
    ztb_agent_config_set_name(c, "bot");
    ztb_agent_config_set_retries(c, 1, 1000);
    assert_int_equal(ztb_agent_new(c, &a), ZTB_OK);
    ztb_agent_config_free(c);
    assert_int_equal(ztb_agent_enroll(a, "ztbj_x"), ZTB_ERR_UNAVAILABLE);
    assert_non_null(strstr(ztb_agent_errdetail(a), "unreachable"));
    ztb_agent_free(a);
}

static void test_session_renewed_when_refused(void **state)
{
    (void)state;
    ztb_agent *a = enrolled_agent(0);
    char *tok;
    assert_int_equal(ztb_agent_token(a, "payments", "payments:refund", NULL, NULL, &tok), ZTB_OK);
    ztb_token_free(tok);
    unsigned s = B.sessions;
    B.nvalid = 0; /* the broker ends every session (e.g. a generation bump) */
    assert_int_equal(ztb_agent_token(a, "payments", "payments:refund", NULL, NULL, &tok), ZTB_OK);
    ztb_token_free(tok);
    assert_int_equal(B.sessions, s + 1);
    /* a session about to run out is renewed before use */
    B.session_ttl = 1; /* renewed 200 ms before the end */
    B.nvalid = 0;
    assert_int_equal(ztb_agent_token(a, "payments", "payments:refund", NULL, NULL, &tok), ZTB_OK);
    ztb_token_free(tok);
    clock_sleep_ms(900);
    unsigned before = B.sessions;
    assert_int_equal(ztb_agent_token(a, "payments", "payments:refund", NULL, NULL, &tok), ZTB_OK);
    ztb_token_free(tok);
    assert_int_equal(B.sessions, before + 1);
    B.session_ttl = 300;
    ztb_agent_free(a);
}

static void test_dpop(void **state)
{
    (void)state;
    ztb_agent *a = enrolled_agent(1);
    char *tok, *prf;
    /* retried requests carry fresh proofs (the broker refuses a proof id twice) */
    B.nscript = 1;
    B.iscript = 0;
    B.script[0].status = 503;
    B.script[0].body = "{\"error\":\"temporarily_unavailable\"}";
    B.script[0].retry_after = NULL;
    assert_int_equal(ztb_agent_token(a, "payments", "payments:refund", NULL, NULL, &tok), ZTB_OK);
    assert_true(B.last_had_dpop);
    assert_int_equal(ztb_dpop_proof(a, "POST", "https://gw.test/refunds/1", tok, &prf), ZTB_OK);
    ztb_dpop_result d;
    assert_int_equal(ztb_dpop_proof_check(prf, strlen(prf), "POST", "https://gw.test/refunds/1",
                                          tok, (int64_t)time(NULL), 60, 5, &d),
                     ZTB_OK);
    /* the token is bound to the proof's key */
    char payload[4096];
    ztb_buf p;
    ztb_buf_init_fixed(&p, payload, sizeof(payload));
    ztb_keyset *ks;
    assert_int_equal(ztb_keyset_new(&B.sign_key, NULL, 1, &ks), ZTB_OK);
    assert_int_equal(ztb_jws_verify(ks, tok, strlen(tok), NULL, NULL, &p), ZTB_OK);
    ztb_keyset_free(ks);
    assert_non_null(strstr(payload, d.jkt));
    ztb_token_free(prf);
    ztb_token_free(tok);
    assert_int_equal(ztb_dpop_proof(a, "", "https://x", NULL, &prf), ZTB_ERR_INVALID_ARG);
    /* a broker that does not bind the token when asked to: refused */
    ztb_agent_free(a);
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

struct worker {
    ztb_agent *a;
    int ok;
};

static void *many_tokens(void *arg)
{
    struct worker *w = arg;
    for (int i = 0; i < 20; i++) {
        char *tok = NULL;
        if (ztb_agent_token(w->a, "payments", "payments:refund", NULL, NULL, &tok) == ZTB_OK)
            w->ok++;
        ztb_token_free(tok);
    }
    return NULL;
}

static void test_one_handle_many_threads(void **state)
{
    (void)state;
    ztb_agent *a = enrolled_agent(1);
    unsigned s = B.sessions;
    pthread_t t[8];
    struct worker w[8];
    for (int i = 0; i < 8; i++) {
        w[i] = (struct worker){.a = a};
        pthread_create(&t[i], NULL, many_tokens, &w[i]);
    }
    for (int i = 0; i < 8; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(w[i].ok, 20);
    }
    assert_int_equal(B.sessions, s + 1); /* one session for all of them */
    ztb_agent_free(a);
}

static void test_introspection(void **state)
{
    (void)state;
    ztb_agent *a = enrolled_agent(0);
    int active = -1;
    B.introspect_active = 1;
    assert_int_equal(agent_introspect(a, "some.token.here", &active), ZTB_OK);
    assert_int_equal(active, 1);
    B.introspect_active = 0;
    assert_int_equal(agent_introspect(a, "some.token.here", &active), ZTB_OK);
    assert_int_equal(active, 0);
    ztb_agent_free(a);
}

/* A gateway without Redis asks the broker's /v1/introspect, as this agent. */
static void test_verifier_with_introspection(void **state)
{
    (void)state;
    ztb_agent *a = enrolled_agent(0);
    char *dir = st_tmpdir();
    char path[600], jwks[4096];
    snprintf(path, sizeof(path), "%s/jwks.json", dir);
    ztb_buf jb;
    ztb_buf_init_fixed(&jb, jwks, sizeof(jwks));
    assert_int_equal(ztb_jwks_render((const ztb_key *const *)&B.sign_key, 1, &jb), ZTB_OK);
    FILE *f = fopen(path, "w");
    fputs(jwks, f);
    fclose(f);
    chmod(path, 0600);
    ztb_verifier_config *c = ztb_verifier_config_new();
    ztb_verifier_config_set_issuer(c, B.srv.base);
    ztb_verifier_config_set_audience(c, "payments");
    ztb_verifier_config_set_jwks_file(c, path);
    assert_int_equal(ztb_verifier_config_set_introspection(c, a), ZTB_OK);
    assert_int_equal(ztb_verifier_config_set_redis(c, "redis://127.0.0.1"), ZTB_ERR_STATE);
    ztb_verifier *v;
    assert_int_equal(ztb_verifier_new(c, &v), ZTB_OK);
    ztb_verifier_config_free(c);
    char *tok;
    assert_int_equal(ztb_agent_token(a, "payments", "payments:refund", NULL, NULL, &tok), ZTB_OK);
    ztb_expect e = {.action = "payments:refund"};
    B.introspect_active = 1;
    assert_int_equal(ztb_verify(v, tok, &e, NULL), ZTB_OK);
    B.introspect_active = 0; /* the broker says it was revoked */
    assert_int_equal(ztb_verify(v, tok, &e, NULL), ZTB_ERR_REVOKED);
    ztb_token_free(tok);
    ztb_verifier_free(v);
    ztb_agent_free(a);
    st_rmdir(dir);
}

static void test_configuration(void **state)
{
    (void)state;
    ztb_agent_config *c = ztb_agent_config_new();
    ztb_agent *a = (ztb_agent *)1;
    assert_int_equal(ztb_agent_new(c, &a), ZTB_ERR_INVALID_ARG);
    assert_null(a);
    assert_int_equal(ztb_agent_config_set_broker(c, "ftp://x"), ZTB_ERR_INVALID_ARG);
    assert_int_equal(ztb_agent_config_set_broker(c, "http://broker.example/"), ZTB_OK);
    assert_int_equal(ztb_agent_config_set_name(c, "Bad Name"), ZTB_ERR_INVALID_ARG);
    assert_int_equal(ztb_agent_config_set_name(c, "bot"), ZTB_OK);
    assert_int_equal(ztb_agent_config_set_trust_domain(c, "UPPER"), ZTB_ERR_INVALID_ARG);
    assert_int_equal(ztb_agent_config_set_timeout(c, 5), ZTB_ERR_INVALID_ARG);
    assert_int_equal(ztb_agent_config_set_retries(c, 99, 1), ZTB_ERR_INVALID_ARG);
    /* plain http to a remote broker: only when allowed */
    assert_int_equal(ztb_agent_new(c, &a), ZTB_ERR_INVALID_ARG);
    assert_non_null(strstr(ztb_agent_errdetail(NULL), "https"));
    assert_int_equal(ztb_agent_config_set_allow_insecure_http(c, 1), ZTB_OK);
    assert_int_equal(ztb_agent_config_set_auto_renew(c, 0), ZTB_OK);
    assert_int_equal(ztb_agent_config_set_trust_domain(c, "example.org"), ZTB_OK);
    assert_int_equal(ztb_agent_new(c, &a), ZTB_OK);
    assert_string_equal(ztb_agent_spiffe_id(a), "spiffe://example.org/agent/bot");
    assert_int_equal(ztb_agent_identity_expires_at(a), 0);
    ztb_agent_free(a);
    ztb_agent_config_free(c);
    ztb_agent_config_free(NULL);
    ztb_agent_free(NULL);
    ztb_token_free(NULL);
    assert_int_equal(ztb_agent_enroll(NULL, "x"), ZTB_ERR_INVALID_ARG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_enroll_and_tokens),
        cmocka_unit_test(test_retries_and_errors),
        cmocka_unit_test(test_session_renewed_when_refused),
        cmocka_unit_test(test_dpop),
        cmocka_unit_test(test_renewal),
        cmocka_unit_test(test_one_handle_many_threads),
        cmocka_unit_test(test_introspection),
        cmocka_unit_test(test_verifier_with_introspection),
        cmocka_unit_test(test_configuration),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
