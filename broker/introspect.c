/*
 * introspect.c - RFC 7662 introspection and RFC 7009 revocation (see
 * introspect.h).
 *
 * How it works: the token is verified with the broker's own key set (the
 * cheap checks first, never a key the token picks) and its claims read
 * (introspect_verify: exp on the broker's own clock, no skew); then policy
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
#include "common/wire.h"
#include "pki/jws.h"
#include "policy/policy.h"

#define TOKEN_MAX 8192

static const char *const allowed_params[] = {
    "token", "token_type_hint", "client_assertion_type", "client_assertion", "ztb_consume", NULL};

/* Verify our signature and read the claims. kid (ZTB_JWS_KID_MAX + 1 bytes)
 * gets the key's kid, *skew the key store's skew. */
static ztb_err verified_claims(const char *tok, size_t len, json_t **claims, char *kid,
                               unsigned *skew)
{
    *claims = NULL;
    ZTB_ENSURE(len <= TOKEN_MAX, ZTB_ERR_TOO_LARGE);
    struct keys_state *ks = keys_acquire();
    ZTB_ENSURE(ks != NULL, ZTB_ERR_UNKNOWN_KID);
    *skew = ks->skew;
    char store[TOKEN_MAX];
    ztb_buf payload;
    ztb_buf_init_fixed(&payload, store, sizeof(store));
    ztb_jws_header hdr;
    ztb_err rv = ztb_jws_verify(ks->keyset, tok, len, NULL, &hdr, &payload);
    keys_release(ks);
    ZTB_GUARD(rv);
    ZTB_ENSURE(ztb_jws_header_typ_is(&hdr, "at+jwt"), ZTB_ERR_TYP);
    ZTB_ENSURE(memchr(store, '\0', payload.len) == NULL, ZTB_ERR_JSON);
    memcpy(kid, hdr.kid, sizeof(hdr.kid));
    json_error_t e;
    json_t *c = json_loadb(store, payload.len, JSON_REJECT_DUPLICATES, &e);
    ztb_wipe(store, sizeof(store));
    if (!json_is_object(c)) {
        json_decref(c);
        return ZTB_ERR_JSON;
    }
    *claims = c;
    return ZTB_OK;
}

ztb_err introspect_verify_signature(const char *tok, size_t len, json_t **claims)
{
    char kid[ZTB_JWS_KID_MAX + 1];
    unsigned skew;
    return verified_claims(tok, len, claims, kid, &skew);
}

static int64_t int_claim(json_t *o, const char *k, int *ok)
{
    json_t *v = json_object_get(o, k);
    if (!json_is_integer(v)) {
        *ok = 0;
        return 0;
    }
    return (int64_t)json_integer_value(v);
}

ztb_err introspect_verify(const char *tok, size_t len, int64_t now, struct introspected *t)
{
    memset(t, 0, sizeof(*t));
    json_t *c = NULL;
    unsigned skew = 0;
    ztb_err rv;
    ZTB_TRY(rv, verified_claims(tok, len, &c, t->kid, &skew));
    int ok = 1;
    const char *iss = json_string_value(json_object_get(c, "iss"));
    t->aud = json_string_value(json_object_get(c, "aud"));
    t->sub = json_string_value(json_object_get(c, "sub"));
    t->jti = json_string_value(json_object_get(c, "jti"));
    json_t *z = json_object_get(c, "ztb");
    t->agent = json_string_value(json_object_get(z, "agent"));
    t->exp = int_claim(c, "exp", &ok);
    int64_t nbf = int_claim(c, "nbf", &ok);
    t->gen = int_claim(z, "gen", &ok);
    t->single_use = json_is_true(json_object_get(z, "single_use"));
    ZTB_CHECK(rv, iss != NULL && strcmp(iss, g_broker.issuer) == 0, ZTB_ERR_ISSUER);
    ZTB_CHECK(rv,
              ok && t->aud && t->sub && t->jti && t->agent && store_id_ok(t->aud) &&
                  store_id_ok(t->jti) && store_agent_name_ok(t->agent),
              ZTB_ERR_CLAIMS);
    /* RFC 7662: active means not expired, on our own clock: no skew on exp.
     * nbf keeps the key store's skew, so a token another replica minted a
     * moment ago (its clock a little ahead) is not "not yet valid" here. */
    ZTB_CHECK(rv, now < t->exp, ZTB_ERR_EXPIRED);
    ZTB_CHECK(rv, nbf - (int64_t)skew <= now, ZTB_ERR_NOT_YET_VALID);
    t->claims = c;
    c = NULL;
out:
    json_decref(c);
    if (rv != ZTB_OK)
        memset(t, 0, sizeof(*t));
    return rv;
}

ztb_err introspect_state(const struct introspected *t, int64_t now, int consume)
{
    ZTB_ENSURE(t->claims != NULL, ZTB_ERR_INVALID_ARG);
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
    json_decref(t->claims);
    memset(t, 0, sizeof(*t));
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
        *out = t.claims;
        t.claims = NULL;
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
        http_resp_error(resp, 403, "access_denied",
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
    json_t *c = t.claims;
    t.claims = NULL;
    introspected_free(&t);
    json_object_set_new(c, "active", json_true());
    json_t *cnf = json_object_get(c, "cnf");
    json_object_set_new(c, "token_type",
                        json_string(json_object_get(cnf, "jkt") ? "DPoP" : "Bearer"));
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
    char actor[96], kid[ZTB_JWS_KID_MAX + 1];
    snprintf(actor, sizeof(actor), "agent:%s", id.agent);
    json_t *c = NULL;
    unsigned skew = 0;
    ztb_err rv = verified_claims(tok, strlen(tok), &c, kid, &skew);
    form_free(&f);
    json_t *z = json_object_get(c, "ztb");
    const char *owner = json_string_value(json_object_get(z, "agent"));
    const char *jti = json_string_value(json_object_get(c, "jti"));
    json_t *exp = json_object_get(c, "exp");
    const char *why = NULL;
    if (rv != ZTB_OK)
        why = "not a token of this broker";
    else if (owner == NULL || strcmp(owner, id.agent) != 0)
        why = "not the caller's token";
    else if (jti == NULL || !store_id_ok(jti) || !json_is_integer(exp))
        why = "malformed claims";
    else if ((int64_t)json_integer_value(exp) + (int64_t)skew <= now)
        why = "already expired";
    if (why != NULL) {
        /* RFC 7009 §2.2: 200 all the same, so the answer tells nothing */
        audit("revoke.ignored", actor, 0, ZTB_F_STR("agent", id.agent), ZTB_F_STR("reason", why),
              ZTB_F_STR("jti", rv == ZTB_OK && jti && store_id_ok(jti) ? jti : NULL));
        json_decref(c);
        http_resp_json(resp, 200, "{}");
        return;
    }
    struct rev_request rq = {.response = POLICY_RESPONSE_REVOKE_TOKEN,
                             .target = jti,
                             .jti_exp = (int64_t)json_integer_value(exp),
                             .jti_exp_verified = 1,
                             .actor = actor,
                             .cause = "revoke_endpoint"};
    rv = revocation_apply(&rq, NULL);
    json_decref(c);
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
