/*
 * agent_fixture.h - what the agent client's unit tests share (test_agent*.c):
 * a scripted broker (an in-test HTTP server that checks what the SDK sends
 * the way docs/protocol.md says the broker does: CSRs, client assertions,
 * sessions, DPoP proofs), started by the group setup, and agents made
 * against it.
 *
 * Header-only (static functions): each test file includes it once.
 */
#ifndef ZTB_TEST_AGENT_FIXTURE_H
#define ZTB_TEST_AGENT_FIXTURE_H

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

static inline ztb_agent *new_agent(const char *cred_file, int dpop)
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
static inline void token_is_valid(const char *tok)
{
    ztb_keyset *ks;
    assert_int_equal(ztb_keyset_new(&B.sign_key, NULL, 1, &ks), ZTB_OK);
    assert_int_equal(ztb_jws_verify(ks, tok, strlen(tok), NULL, NULL, NULL), ZTB_OK);
    ztb_keyset_free(ks);
}

static inline ztb_agent *enrolled_agent(int dpop)
{
    B.join_used = 0;
    ztb_agent *a = new_agent(NULL, dpop);
    assert_int_equal(ztb_agent_enroll(a, "ztbj_good"), ZTB_OK);
    return a;
}

#endif /* ZTB_TEST_AGENT_FIXTURE_H */
