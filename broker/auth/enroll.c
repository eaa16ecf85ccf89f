/*
 * enroll.c - enrollment, renewal and sessions (see enroll.h).
 *
 * A join token is looked at first and only used once the CSR has been
 * checked for the agent it names, so a typo in a CSR does not burn the
 * token; the use itself is atomic in Redis, so two racing enrollments with
 * one token cannot both win.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include "broker/audit/audit.h"
#include "broker/broker.h"
#include "broker/auth/client_auth.h"
#include "broker/signals/detectors.h"
#include "broker/auth/enroll.h"
#include "broker/http/form.h"
#include "broker/signer/keys.h"
#include "broker/http/metrics.h"
#include "broker/auth/session.h"
#include "broker/store/store.h"
#include "broker/store/store_baseline.h"
#include "common/base64url.h"
#include "common/buf.h"
#include "common/guard.h"
#include "common/log.h"
#include "common/log_sample.h"
#include "common/secret.h"
#include "pki/ca.h"
#include "pki/csr.h"
#include "pki/jwk.h"
#include "pki/pem.h"

#define CSR_MAX 8192

/* Reused join tokens: logged at a bounded rate (common/log_sample.h). */
static struct ztb_log_sampler reuse_log = ZTB_LOG_SAMPLER_INIT(10, 10);

static void unavailable(struct http_resp *resp)
{
    http_resp_error(resp, 503, "temporarily_unavailable", "Redis or the signer is not answering");
    http_resp_header(resp, "Retry-After", "1");
}

/* The decision was made but its record could not be written: it is not
 * acknowledged (what it produced is not shown). */
static void audit_unavailable(struct http_resp *resp)
{
    http_resp_error_as(resp, 503, "temporarily_unavailable", ZTB_ERR_AUDIT_UNAVAILABLE,
                       AUDIT_UNAVAILABLE_WHY);
    http_resp_header(resp, "Retry-After", "1");
}

static void actor_of(const char *agent, char *out, size_t cap)
{
    snprintf(out, cap, "agent:%s", agent);
}

/* The SHA-256 thumbprint (x5t#S256, base64url) of the certificate in pem:
 * what mTLS compares a presented certificate with; and its serial number
 * in hex (for `agent show`). */
static ztb_err cert_x5t(const char *pem, size_t n, char out[48], char serial[48])
{
    ztb_pem_block b[1];
    size_t count = 0;
    serial[0] = '\0';
    ZTB_GUARD(ztb_pem_read_blocks(pem, n, b, 1, &count));
    ztb_err rv = count == 1 && strcmp(b[0].label, "CERTIFICATE") == 0 ? ZTB_OK : ZTB_ERR_CERT;
    if (rv == ZTB_OK) {
        uint8_t d[SHA256_DIGEST_LENGTH];
        SHA256(b[0].der, (size_t)b[0].len, d);
        rv = ztb_b64url_encode(d, sizeof(d), out, 48, NULL);
    }
    if (rv == ZTB_OK) {
        const unsigned char *p = b[0].der;
        X509 *x = d2i_X509(NULL, &p, (long)b[0].len);
        BIGNUM *bn = x ? ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL) : NULL;
        char *hex = bn ? BN_bn2hex(bn) : NULL;
        if (hex != NULL && strlen(hex) < 48)
            snprintf(serial, 48, "%s", hex);
        OPENSSL_free(hex);
        BN_free(bn);
        X509_free(x);
    }
    ztb_pem_blocks_free(b, count);
    return rv;
}

/*
 * Check the CSR for agent, issue the identity document and make it the
 * agent's one current identity (store_agent_set_identity: op ENROLL after a
 * join token, RENEW for the same key in the epoch the caller authenticated
 * in), and answer 201. Returns 0 if resp was filled with an error.
 */
static int issue_identity(const struct broker *b, const char *agent, enum store_identity_op op,
                          int64_t epoch, const char *csr, int64_t now, struct http_resp *resp)
{
    ztb_err grant_err = op == STORE_IDENTITY_ENROLL ? ZTB_ERR_JOIN_TOKEN : ZTB_OK;
    const ztb_ca *ca = keys_ca();
    if (ca == NULL) {
        http_resp_error(resp, 503, "temporarily_unavailable",
                        "no agent CA: an operator must run `ztbctl ca init`");
        return 0;
    }
    char spiffe[300];
    snprintf(spiffe, sizeof(spiffe), "spiffe://%s/agent/%s", b->cfg.trust_domain, agent);
    size_t csr_len = strlen(csr);
    ztb_key *pub = NULL;
    ztb_err rv = ztb_csr_check(csr, csr_len, spiffe, &pub);
    if (rv != ZTB_OK) {
        char why[512];
        snprintf(why, sizeof(why),
                 "CSR refused (%s): it must be signed by a P-256 key and name "
                 "exactly %s",
                 ztb_strerror(rv), spiffe);
        http_resp_error(resp, 400, "invalid_request", why);
        return 0;
    }
    ztb_buf jwk, cert, chain;
    ztb_buf_init(&jwk, 1024);
    ztb_buf_init(&cert, 16384);
    ztb_buf_init(&chain, 65536);
    char jkt[ZTB_KID_LEN + 1], x5t[48], serial[48];
    snprintf(jkt, sizeof(jkt), "%s", ztb_key_kid(pub));
    int64_t ttl = b->cfg.identity_ttl_s;
    rv = ztb_jwk_render(pub, &jwk);
    ztb_key_free(pub);
    if (rv == ZTB_OK)
        rv = keys_ca_issue(csr, csr_len, agent, now, ttl, &cert);
    if (rv == ZTB_OK)
        rv = cert_x5t(ztb_buf_cstr(&cert), cert.len, x5t, serial);
    if (rv == ZTB_OK)
        rv = ztb_ca_cert_pem(ca, &chain);
    if (rv == ZTB_ERR_UNAVAILABLE) { /* the signer is down: fail closed */
        unavailable(resp);
        goto out;
    }
    if (rv != ZTB_OK) {
        http_resp_error(resp, rv == ZTB_ERR_CSR || rv == ZTB_ERR_SPIFFE_ID ? 400 : 500,
                        rv == ZTB_ERR_CSR ? "invalid_request" : "server_error", ztb_strerror(rv));
        goto out;
    }
    int64_t exp = now + ttl;
    rv = store_agent_set_identity(agent, op, ztb_buf_cstr(&jwk), jkt, x5t, exp, epoch, NULL);
    switch (rv) {
    case ZTB_OK: break;
    case ZTB_ERR_UNAVAILABLE: unavailable(resp); goto out;
    case ZTB_ERR_KEY: {
        char actor[96];
        actor_of(agent, actor, sizeof(actor));
        audit("enroll.renewal_key_refused", actor, 0, ZTB_F_STR("agent", agent),
              ZTB_F_STR("csr_jkt", jkt));
        ztb_log(ZTB_LOG_WARN, "enroll.renewal_key_refused", ZTB_F_STR("agent", agent));
        http_resp_error(resp, 400, "invalid_request",
                        "renewal keeps the identity's key: the CSR must be signed by the key of "
                        "the current identity document (a new key needs a new join token)");
        goto out;
    }
    case ZTB_ERR_AGENT_REVOKED:
        http_resp_error(resp, 401, "invalid_client",
                        "the identity was revoked or replaced meanwhile: enroll again with a "
                        "new join token");
        goto out;
    case ZTB_ERR_STATE:
        /* at enrollment the join token was for nothing: JOIN_TOKEN */
        http_resp_error_as(resp, 400, "invalid_grant", grant_err, "the agent is disabled");
        goto out;
    default: http_resp_error_as(resp, 400, "invalid_grant", grant_err, "unknown agent"); goto out;
    }
    /* the serial is for people (`agent show`): not having it recorded
     * fails nothing */
    if (serial[0] != '\0') {
        ztb_err sr = store_agent_set_identity_serial(agent, x5t, serial);
        if (sr != ZTB_OK)
            ztb_log(ZTB_LOG_WARN, "enroll.serial_not_recorded", ZTB_F_STR("agent", agent),
                    ZTB_F_ERR(sr));
    }
    json_t *j = json_pack("{s:s,s:s,s:s,s:I}", "spiffe_id", spiffe, "identity", ztb_buf_cstr(&cert),
                          "ca", ztb_buf_cstr(&chain), "expires_at", (json_int_t)exp);
    http_resp_json_value(resp, 201, j);
out:
    ztb_buf_free(&jwk);
    ztb_buf_free(&cert);
    ztb_buf_free(&chain);
    return rv == ZTB_OK;
}

/* An agent's first enrollment starts its baseline's learning window
 * (store_baseline.h). The identity is issued already, so a failure here is
 * logged, not answered: the agent then has no baseline until an operator
 * runs `ztbctl agent baseline NAME --relearn`. */
static void start_baseline(const struct broker *b, const char *agent)
{
    if (b->cfg.baseline_learn_s == 0)
        return;
    int64_t until = 0;
    ztb_err rv = store_baseline_start(agent, b->cfg.baseline_learn_s, 1, &until);
    if (rv != ZTB_OK)
        ztb_log(ZTB_LOG_WARN, "enroll.baseline_not_started", ZTB_F_STR("agent", agent),
                ZTB_F_ERR(rv));
}

void handle_enroll(struct http_req *req, struct http_resp *resp)
{
    int64_t now = (int64_t)time(NULL);
    /* before authentication: the strict reader, not jansson */
    static const char *const names[] = {"join_token", "csr"};
    char *vals[2];
    size_t members;
    if (!http_req_json_strings(req, resp, names, 2, vals, &members))
        return;
    const char *tok = vals[0], *csr = vals[1];
    if (tok == NULL || csr == NULL || members != 2 || strlen(csr) > CSR_MAX) {
        http_resp_error(resp, 400, "invalid_request",
                        "the body must be {\"join_token\": ..., \"csr\": PEM}");
        http_json_strings_free(vals, 2);
        return;
    }
    char agent[STORE_NAME_MAX + 1], actor[96];
    int reused = 0;
    ztb_err rv = store_join_peek(tok, agent, &reused);
    if (rv == ZTB_OK) {
        struct store_agent a;
        rv = store_agent_get(agent, &a);
        if (rv == ZTB_OK && strcmp(a.status, "active") != 0)
            rv = ZTB_ERR_STATE;
        /* a join token made for an agent that was deleted since (and its
         * name added again) is dead: not the same agent */
        int64_t inc = 0;
        if (rv == ZTB_OK && (rv = store_join_incarnation(tok, &inc)) == ZTB_OK &&
            inc != a.incarnation)
            rv = ZTB_ERR_JOIN_TOKEN;
    }
    if (rv == ZTB_OK) {
        /* check the CSR before the token is used */
        char spiffe[300];
        snprintf(spiffe, sizeof(spiffe), "spiffe://%s/agent/%s", broker_of(req)->cfg.trust_domain,
                 agent);
        ztb_key *pub = NULL;
        if (ztb_csr_check(csr, strlen(csr), spiffe, &pub) != ZTB_OK) {
            ztb_key_free(pub);
            /* fills the precise CSR error */
            issue_identity(broker_of(req), agent, STORE_IDENTITY_ENROLL, 0, csr, now, resp);
            http_json_strings_free(vals, 2);
            return;
        }
        ztb_key_free(pub);
        char used_by[STORE_NAME_MAX + 1];
        rv = store_join_consume(tok, used_by, &reused);
        if (rv == ZTB_OK && strcmp(used_by, agent) != 0)
            rv = ZTB_ERR_JOIN_TOKEN;
    }
    if (rv == ZTB_ERR_UNAVAILABLE) {
        unavailable(resp);
    } else if (rv == ZTB_ERR_STATE) {
        http_resp_error_as(resp, 400, "invalid_grant", ZTB_ERR_JOIN_TOKEN, "the agent is disabled");
    } else if (rv != ZTB_OK) {
        if (reused) {
            /* whoever holds the used token can send it as fast as they like:
             * counted and sampled, not a durable audit line each; the
             * detector's join_token_reuse signal is audited when it fires */
            metrics_refused(req->path, REFUSED_JOIN_TOKEN_REUSED);
            detect_event(DETECT_JOIN_REUSE, agent, NULL, NULL, NULL);
            ztb_log_sampled(&reuse_log, ZTB_LOG_WARN, "enroll.join_token_reused",
                            ZTB_F_STR("agent", agent));
        }
        http_resp_error_as(resp, 400, "invalid_grant", ZTB_ERR_JOIN_TOKEN,
                           "join token unknown, used or expired");
    } else if (issue_identity(broker_of(req), agent, STORE_IDENTITY_ENROLL, 0, csr, now, resp)) {
        actor_of(agent, actor, sizeof(actor));
        start_baseline(broker_of(req), agent);
        if (audit("enroll.identity_issued", actor, 1, ZTB_F_STR("agent", agent),
                  ZTB_F_INT("ttl", broker_of(req)->cfg.identity_ttl_s)) != ZTB_OK)
            audit_unavailable(resp); /* the identity document is not handed out */
    }
    http_json_strings_free(vals, 2);
}

void handle_renew(struct http_req *req, struct http_resp *resp)
{
    int64_t now = (int64_t)time(NULL);
    /* before authentication: the strict reader, not jansson */
    static const char *const names[] = {"csr", "client_assertion_type", "client_assertion"};
    char *vals[3];
    size_t members;
    if (!http_req_json_strings(req, resp, names, 3, vals, &members))
        return;
    const char *csr = vals[0];
    if (csr == NULL || strlen(csr) > CSR_MAX) {
        http_resp_error(resp, 400, "invalid_request", "csr (PEM) required");
        http_json_strings_free(vals, 3);
        return;
    }
    struct client_identity id;
    if (client_auth(req, vals[1], vals[2], now, 0, &id, resp) == ZTB_OK) {
        char actor[96];
        actor_of(id.agent, actor, sizeof(actor));
        if (id.quarantined) {
            audit("enroll.renewal_refused", actor, 0, ZTB_F_STR("agent", id.agent),
                  ZTB_F_STR("reason", "quarantined"));
            http_resp_error_as(resp, 403, "access_denied", ZTB_ERR_QUARANTINED,
                               "the agent is quarantined");
        } else if (issue_identity(broker_of(req), id.agent, STORE_IDENTITY_RENEW, id.epoch, csr,
                                  now, resp)) {
            if (audit("enroll.identity_renewed", actor, 1, ZTB_F_STR("agent", id.agent)) != ZTB_OK)
                audit_unavailable(resp);
        }
    }
    http_json_strings_free(vals, 3);
}

void handle_session(struct http_req *req, struct http_resp *resp)
{
    int64_t now = (int64_t)time(NULL);
    if (!http_req_content_type_is(req, "application/x-www-form-urlencoded")) {
        http_resp_error(resp, 415, "invalid_request",
                        "Content-Type must be application/x-www-form-urlencoded");
        return;
    }
    static const char *const allowed[] = {"client_assertion_type", "client_assertion", NULL};
    struct form f;
    ztb_err rv = form_parse(&f, req->body, req->body_len, allowed);
    if (rv != ZTB_OK) {
        http_resp_error(resp, 400, "invalid_request", form_error(&f));
        return;
    }
    struct client_identity id;
    if (client_auth(req, form_get(&f, "client_assertion_type"), form_get(&f, "client_assertion"),
                    now, 0, &id, resp) != ZTB_OK) {
        form_free(&f);
        return;
    }
    form_free(&f);
    /* client_auth checked that the agent is active and its identity live */
    char actor[96];
    actor_of(id.agent, actor, sizeof(actor));
    if (id.quarantined) {
        audit("auth.session_refused", actor, 0, ZTB_F_STR("agent", id.agent),
              ZTB_F_STR("reason", "quarantined"));
        http_resp_error_as(resp, 403, "access_denied", ZTB_ERR_QUARANTINED,
                           "the agent is quarantined");
        return;
    }
    char cred[SESSION_CRED_MAX];
    unsigned ttl = broker_of(req)->cfg.session_ttl_s;
    rv = session_mint(id.agent, id.generation, id.epoch, now + ttl, cred);
    if (rv == ZTB_ERR_UNAVAILABLE) { /* the signer is down: fail closed */
        unavailable(resp);
        return;
    }
    if (rv != ZTB_OK) {
        http_resp_error(resp, 500, "server_error", "cannot mint a session");
        return;
    }
    /* the record first: a session whose record is not written is not handed out */
    if (audit("auth.session_created", actor, 0, ZTB_F_STR("agent", id.agent),
              ZTB_F_INT("ttl", ttl)) != ZTB_OK) {
        ztb_wipe(cred, sizeof(cred));
        audit_unavailable(resp);
        return;
    }
    json_t *j = json_pack("{s:s,s:I,s:s}", "session", cred, "expires_in", (json_int_t)ttl,
                          "token_type", "ztb-session");
    ztb_wipe(cred, sizeof(cred));
    http_resp_json_value(resp, 200, j);
}
