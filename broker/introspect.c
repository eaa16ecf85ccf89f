/*
 * introspect.c - RFC 7662 introspection and RFC 7009 revocation (see
 * introspect.h).
 *
 * How it works: the token is verified with the broker's own key set (the
 * cheap checks first, never a key the token picks), its claims read, then
 * store_token_state reads the four revocation entries (and consumes a
 * single-use token when asked) in one script. No local cache: every replica
 * answers from Redis, so a revocation is seen by all of them at once.
 *
 * Must never: answer "active" without the revocation state, tell a caller
 * of /v1/revoke anything about a token it does not own, or log a token.
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
#include "pki/jws.h"

#define TOKEN_MAX 8192

static const char *const allowed_params[] = {
    "token", "token_type_hint", "client_assertion_type", "client_assertion", "ztb_consume", NULL};

/* Verify our signature and read the claims. kid (ZTB_JWS_KID_MAX + 1 bytes)
 * gets the key's kid. */
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

ztb_err introspect_verify(const char *tok, size_t len, json_t **claims)
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

ztb_err introspect_token(const char *tok, size_t len, int64_t now, int consume, json_t **out)
{
    if (out != NULL)
        *out = NULL;
    json_t *c = NULL;
    char kid[ZTB_JWS_KID_MAX + 1] = "";
    unsigned skew = 0;
    ztb_err rv;
    ZTB_TRY(rv, verified_claims(tok, len, &c, kid, &skew));
    int ok = 1;
    const char *iss = json_string_value(json_object_get(c, "iss"));
    const char *aud = json_string_value(json_object_get(c, "aud"));
    const char *jti = json_string_value(json_object_get(c, "jti"));
    json_t *z = json_object_get(c, "ztb");
    const char *agent = json_string_value(json_object_get(z, "agent"));
    int64_t exp = int_claim(c, "exp", &ok);
    int64_t nbf = int_claim(c, "nbf", &ok);
    int64_t gen = int_claim(z, "gen", &ok);
    int single_use = json_is_true(json_object_get(z, "single_use"));
    ZTB_CHECK(rv, iss != NULL && strcmp(iss, g_broker.issuer) == 0, ZTB_ERR_ISSUER);
    ZTB_CHECK(rv,
              ok && aud && jti && agent && store_id_ok(aud) && store_id_ok(jti) &&
                  store_agent_name_ok(agent),
              ZTB_ERR_CLAIMS);
    ZTB_CHECK(rv, now < exp + (int64_t)skew, ZTB_ERR_EXPIRED);
    ZTB_CHECK(rv, nbf - (int64_t)skew <= now, ZTB_ERR_NOT_YET_VALID);
    struct store_token_state st;
    int64_t left_ms = (exp + (int64_t)skew - now) * 1000;
    ZTB_TRY(rv, store_token_state(jti, agent, aud, kid, gen,
                                  consume && single_use ? (uint64_t)left_ms : 0, &st));
    ZTB_CHECK(rv, !st.revoked, ZTB_ERR_REVOKED);
    ZTB_CHECK(rv, st.gen >= 0 && gen >= st.gen, ZTB_ERR_AGENT_REVOKED);
    ZTB_CHECK(rv, !st.killed, ZTB_ERR_AUDIENCE_KILLED);
    ZTB_CHECK(rv, !st.tainted, ZTB_ERR_KEY_TAINTED);
    ZTB_CHECK(rv, !single_use || !st.used, ZTB_ERR_REPLAY);
    if (out != NULL) {
        *out = c;
        c = NULL;
    }
out:
    json_decref(c);
    return rv;
}

static void unavailable(struct http_resp *resp)
{
    http_resp_error(resp, 503, "temporarily_unavailable", "Redis is not answering");
    http_resp_header(resp, "Retry-After", "1");
}

/* Form and client authentication shared by both endpoints. 0: resp filled. */
static int read_form(struct http_req *req, struct http_resp *resp, struct form *f,
                     struct client_identity *id, int64_t now)
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
                    1, id, resp) != ZTB_OK) {
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
    if (!read_form(req, resp, &f, &id, now))
        return;
    const char *tok = form_get(&f, "token");
    const char *consume = form_get(&f, "ztb_consume");
    json_t *c = NULL;
    ztb_err rv =
        introspect_token(tok, strlen(tok), now, consume != NULL && strcmp(consume, "1") == 0, &c);
    form_free(&f);
    if (rv == ZTB_ERR_UNAVAILABLE) {
        unavailable(resp);
        return;
    }
    if (rv != ZTB_OK) {
        http_resp_json(resp, 200, "{\"active\":false}");
        return;
    }
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
    if (!read_form(req, resp, &f, &id, now))
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
