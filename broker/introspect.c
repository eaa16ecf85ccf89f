/*
 * introspect.c - RFC 7662 introspection and RFC 7009 revocation (see
 * introspect.h).
 *
 * How it works: the token is verified with the broker's own key set on the
 * one path every verifier takes (wire/access_token.h: the cheap checks
 * first, never a key the token picks; the strict claims reader;
 * introspect_verify: exp on the broker's own clock, no skew); then policy
 * says whether the caller may know about tokens for that audience (and use
 * them up); then store_token_state reads the four revocation entries (and
 * consumes a single-use token when asked) in one script. No local cache:
 * every replica answers from Redis, so a revocation is seen by all of them at
 * once.
 *
 * Must never: answer "active" after exp, answer a caller policy does not
 * allow anything but "not active", consume a token for a caller that may not
 * consume it, answer "active" without the revocation state, tell a caller of
 * /v1/revoke anything about a token it does not own, or log a token.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "broker/audit.h"
#include "broker/broker.h"
#include "broker/client_auth.h"
#include "broker/form.h"
#include "broker/introspect.h"
#include "broker/keys.h"
#include "broker/revocation.h"
#include "broker/store_rev.h"
#include "common/guard.h"
#include "common/secret.h"
#include "policy/policy.h"
#include "wire/access_token.h"
#include "wire/wire.h"

#define TOKEN_MAX 8192

static const char *const allowed_params[] = {
    "token", "token_type_hint", "client_assertion_type", "client_assertion", "ztb_consume", NULL};

/* The fields the revocation state is read by, pointing into t->tok. */
static void point_fields(struct introspected *t)
{
    const struct claims *c = &t->tok.c;
    t->kid = t->tok.hdr.kid;
    t->aud = claims_str(c, CL_AUD);
    t->sub = claims_str(c, CL_SUB);
    t->jti = claims_str(c, CL_JTI);
    t->agent = claims_str(c, CL_AGENT);
    t->exp = c->exp;
    t->gen = c->gen;
    t->single_use = c->single_use;
}

/* Our signature and the claims' shape (the key set's own, never one the
 * token picks); *skew is the key store's skew. */
static ztb_err verify_signed(const char *tok, size_t len, struct introspected *t, unsigned *skew)
{
    memset(t, 0, sizeof(*t));
    ZTB_ENSURE(tok != NULL && len <= TOKEN_MAX, ZTB_ERR_TOO_LARGE);
    struct keys_state *ks = keys_acquire();
    ZTB_ENSURE(ks != NULL, ZTB_ERR_UNKNOWN_KID);
    *skew = ks->skew;
    ztb_err rv = access_token_verify_signature(ks->keyset, tok, len, &t->tok);
    keys_release(ks);
    ZTB_GUARD(rv);
    ZTB_GUARD(access_token_read_claims(&t->tok));
    point_fields(t);
    /* the ids become Redis key names */
    ZTB_ENSURE(store_id_ok(t->aud) && store_id_ok(t->jti) && store_agent_name_ok(t->agent),
               ZTB_ERR_CLAIMS);
    return ZTB_OK;
}

ztb_err introspect_verify_signature(const char *tok, size_t len, struct introspected *t,
                                    unsigned *skew)
{
    unsigned s = 0;
    ztb_err rv = verify_signed(tok, len, t, &s);
    if (skew != NULL)
        *skew = s;
    if (rv != ZTB_OK) {
        introspected_free(t);
        return rv;
    }
    t->valid = 1;
    return ZTB_OK;
}

ztb_err introspect_verify(const char *tok, size_t len, int64_t now, struct introspected *t)
{
    unsigned skew = 0;
    ztb_err rv = verify_signed(tok, len, t, &skew);
    /* RFC 7662: active means not expired, on our own clock: no skew on exp.
     * nbf keeps the key store's skew, so a token another replica minted a
     * moment ago (its clock a little ahead) is not "not yet valid" here. */
    struct access_token_expect e = {
        .issuer = g_broker.issuer, .now = now, .skew_s = skew, .exp_skew_s = 0};
    if (rv == ZTB_OK)
        rv = access_token_check(&t->tok, &e);
    if (rv != ZTB_OK) {
        introspected_free(t);
        return rv;
    }
    t->valid = 1;
    return ZTB_OK;
}

/* The verified claims as a jansson object for an answer (the payload is
 * trusted now: its signature and shape were checked). NULL: out of memory. */
static json_t *claims_object(const struct introspected *t)
{
    json_error_t e;
    return json_loadb(t->tok.payload, t->tok.payload_len, JSON_REJECT_DUPLICATES, &e);
}

ztb_err introspect_state(const struct introspected *t, int64_t now, int consume)
{
    ZTB_ENSURE(t->valid, ZTB_ERR_INVALID_ARG);
    struct store_token_state st;
    uint64_t consume_ms = consume && t->single_use ? ztb_wire_used_keep_ms(t->exp, now) : 0;
    ZTB_GUARD(store_token_state(t->jti, t->agent, t->aud, t->kid, t->gen, consume_ms, &st));
    ZTB_ENSURE(!st.revoked, ZTB_ERR_REVOKED);
    ZTB_ENSURE(st.gen >= 0 && t->gen >= st.gen, ZTB_ERR_AGENT_REVOKED);
    ZTB_ENSURE(!st.killed, ZTB_ERR_AUDIENCE_KILLED);
    ZTB_ENSURE(!st.tainted, ZTB_ERR_KEY_TAINTED);
    ZTB_ENSURE(!t->single_use || !st.used, ZTB_ERR_REPLAY);
    return ZTB_OK;
}

void introspected_free(struct introspected *t)
{
    ztb_wipe(t, sizeof(*t)); /* the claims name an agent's actions */
}

ztb_err introspect_token(const char *tok, size_t len, int64_t now, int consume, json_t **out)
{
    if (out != NULL)
        *out = NULL;
    struct introspected t;
    ztb_err rv = introspect_verify(tok, len, now, &t);
    if (rv == ZTB_OK)
        rv = introspect_state(&t, now, consume);
    if (rv == ZTB_OK && out != NULL) {
        *out = claims_object(&t);
        if (*out == NULL)
            rv = ZTB_ERR_NOMEM;
    }
    introspected_free(&t);
    return rv;
}

int introspect_caller_may(const char *caller, const char *audience, int consume,
                          const policy_ip *source, int64_t now)
{
    if (consume) {
        /* the audience itself, by agent name or SPIFFE ID, may use up its own tokens */
        char spiffe[300];
        snprintf(spiffe, sizeof(spiffe), "spiffe://%s/agent/%s", g_broker.cfg.trust_domain, caller);
        if (strcmp(audience, caller) == 0 || strcmp(audience, spiffe) == 0)
            return 1;
    }
    policy *pol = g_broker.policy ? policy_holder_acquire(g_broker.policy) : NULL;
    if (pol == NULL)
        return 0;
    policy_decision d;
    policy_request pr = {
        .agent = caller,
        .action = consume ? INTROSPECT_ACTION_CONSUME : INTROSPECT_ACTION,
        .audience = audience,
        .resource = "",
        .ctx = {.now = now},
    };
    if (source != NULL)
        pr.ctx.source = *source;
    int ok = policy_eval(pol, &pr, &d) == ZTB_OK && d.effect == POLICY_ALLOW;
    policy_holder_release(pol);
    return ok;
}

static void unavailable(struct http_resp *resp)
{
    http_resp_error(resp, 503, "temporarily_unavailable", "Redis is not answering");
    http_resp_header(resp, "Retry-After", "1");
}

/* Form and client authentication shared by both endpoints. 0: resp filled.
 * refuse_quarantined: introspection (a quarantined agent learns nothing);
 * revocation lets it still revoke its own tokens. */
static int read_form(struct http_req *req, struct http_resp *resp, struct form *f,
                     struct client_identity *id, int64_t now, int refuse_quarantined)
{
    if (!http_req_content_type_is(req, "application/x-www-form-urlencoded")) {
        http_resp_error(resp, 415, "invalid_request",
                        "Content-Type must be application/x-www-form-urlencoded");
        return 0;
    }
    ztb_err rv = form_parse(f, req->body, req->body_len, allowed_params);
    if (rv != ZTB_OK) {
        http_resp_error(resp, 400, "invalid_request", form_error(f));
        return 0;
    }
    if (client_auth(req, form_get(f, "client_assertion_type"), form_get(f, "client_assertion"), now,
                    CLIENT_AUTH_SESSION_OK, id, resp) != ZTB_OK) {
        form_free(f);
        return 0;
    }
    if (refuse_quarantined && id->quarantined) {
        http_resp_error_as(resp, 403, "access_denied", ZTB_ERR_QUARANTINED,
                           "the agent is quarantined: it may not introspect tokens");
        form_free(f);
        return 0;
    }
    const char *tok = form_get(f, "token");
    if (tok == NULL || tok[0] == '\0') {
        http_resp_error(resp, 400, "invalid_request", "token required");
        form_free(f);
        return 0;
    }
    return 1;
}

void handle_introspect(struct http_req *req, struct http_resp *resp)
{
    int64_t now = (int64_t)time(NULL);
    struct form f;
    struct client_identity id;
    if (!read_form(req, resp, &f, &id, now, 1))
        return;
    const char *tok = form_get(&f, "token");
    const char *cv = form_get(&f, "ztb_consume");
    int consume = cv != NULL && strcmp(cv, "1") == 0;
    struct introspected t;
    ztb_err rv = introspect_verify(tok, strlen(tok), now, &t);
    form_free(&f);
    /* RFC 7662 §2.2 and §4: a caller not allowed to know about this token
     * (or to use it up) hears only "not active", like for a token that does
     * not exist; checked before Redis, so nothing is consumed for it. */
    const char *refused = NULL;
    policy_ip ip;
    http_req_peer_ip(req, &ip.family, ip.addr);
    if (rv == ZTB_OK && !introspect_caller_may(id.agent, t.aud, 0, &ip, now))
        refused = "policy does not allow the caller " INTROSPECT_ACTION " on the audience";
    else if (rv == ZTB_OK && consume && t.single_use &&
             !introspect_caller_may(id.agent, t.aud, 1, &ip, now))
        refused = "only the token's audience or a caller allowed " INTROSPECT_ACTION_CONSUME
                  " may consume it";
    if (refused != NULL) {
        char actor[96];
        snprintf(actor, sizeof(actor), "agent:%s", id.agent);
        audit("introspect.refused", actor, 0, ZTB_F_STR("agent", id.agent),
              ZTB_F_STR("audience", t.aud), ZTB_F_STR("jti", t.jti), ZTB_F_STR("reason", refused));
        rv = ZTB_ERR_ACCESS_DENIED;
    }
    if (rv == ZTB_OK)
        rv = introspect_state(&t, now, consume);
    if (rv == ZTB_ERR_UNAVAILABLE) {
        introspected_free(&t);
        unavailable(resp);
        return;
    }
    if (rv != ZTB_OK) {
        introspected_free(&t);
        http_resp_json(resp, 200, "{\"active\":false}");
        return;
    }
    json_t *c = claims_object(&t);
    const char *type = claims_str(&t.tok.c, CL_JKT) != NULL ? ZTB_WIRE_TOKEN_TYPE_DPOP
                                                            : ZTB_WIRE_TOKEN_TYPE_BEARER;
    introspected_free(&t);
    if (c == NULL) {
        http_resp_error(resp, 500, "server_error", "cannot render the response");
        return;
    }
    json_object_set_new(c, "active", json_true());
    json_object_set_new(c, "token_type", json_string(type));
    http_resp_json_value(resp, 200, c);
}

void handle_revoke(struct http_req *req, struct http_resp *resp)
{
    int64_t now = (int64_t)time(NULL);
    struct form f;
    struct client_identity id;
    if (!read_form(req, resp, &f, &id, now, 0))
        return;
    const char *tok = form_get(&f, "token");
    char actor[96];
    snprintf(actor, sizeof(actor), "agent:%s", id.agent);
    struct introspected t;
    unsigned skew = 0;
    ztb_err rv = introspect_verify_signature(tok, strlen(tok), &t, &skew);
    form_free(&f);
    const char *jti = rv == ZTB_OK ? t.jti : NULL;
    const char *why = NULL;
    if (rv == ZTB_ERR_CLAIMS)
        why = "malformed claims";
    else if (rv != ZTB_OK)
        why = "not a token of this broker";
    else if (strcmp(t.agent, id.agent) != 0)
        why = "not the caller's token";
    else if (t.exp + (int64_t)skew <= now)
        why = "already expired";
    if (why != NULL) {
        /* RFC 7009 §2.2: 200 all the same, so the answer tells nothing */
        audit("revoke.ignored", actor, 0, ZTB_F_STR("agent", id.agent), ZTB_F_STR("reason", why),
              ZTB_F_STR("jti", jti));
        introspected_free(&t);
        http_resp_json(resp, 200, "{}");
        return;
    }
    struct rev_request rq = {.response = POLICY_RESPONSE_REVOKE_TOKEN,
                             .target = jti,
                             .jti_exp = t.exp,
                             .jti_exp_verified = 1,
                             .actor = actor,
                             .cause = "revoke_endpoint"};
    rv = revocation_apply(&rq, NULL);
    introspected_free(&t);
    if (rv == ZTB_ERR_UNAVAILABLE) {
        unavailable(resp);
        return;
    }
    if (rv != ZTB_OK && rv != ZTB_ERR_IO) {
        http_resp_error(resp, 500, "server_error", "cannot revoke the token");
        return;
    }
    http_resp_json(resp, 200, "{}");
}
