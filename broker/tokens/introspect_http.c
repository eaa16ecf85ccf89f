/*
 * introspect_http.c - the HTTP side of RFC 7662 introspection and RFC 7009
 * revocation (see introspect_http.h): the form, client authentication, the
 * caller check, and the answers.
 *
 * How it works: both endpoints read the same form and authenticate the
 * caller like /v1/token; introspection then verifies the token
 * (introspect_verify), asks introspect_caller_may whether the caller may
 * know about (and use up) tokens for that audience, and only then reads the
 * revocation state; revocation verifies the signature and revokes the jti
 * of a token the caller owns (revocation_apply).
 *
 * Must never: answer a caller policy does not allow anything but "not
 * active", consume a token for a caller that may not consume it, tell a
 * caller of /v1/revoke anything about a token it does not own, or log a
 * token.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "broker/audit/audit.h"
#include "broker/broker.h"
#include "broker/auth/client_auth.h"
#include "broker/http/form.h"
#include "broker/tokens/introspect.h"
#include "broker/tokens/introspect_caller.h"
#include "broker/tokens/introspect_http.h"
#include "broker/signals/revocation.h"
#include "broker/store/store_rev.h"
#include "pki/jws.h"
#include "policy/policy.h"

static const char *const allowed_params[] = {"token",
                                             "token_type_hint",
                                             "client_id",
                                             "client_assertion_type",
                                             "client_assertion",
                                             "ztb_consume",
                                             NULL};

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
                    CLIENT_AUTH_SESSION_OK, id, resp) != ZTB_OK ||
        client_auth_client_id(id, form_get(f, "client_id"), resp) != ZTB_OK) {
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
    ztb_err rv = introspect_verify(tok, strlen(tok), broker_of(req)->issuer, now, &t);
    form_free(&f);
    /* RFC 7662 §2.2 and §4: a caller not allowed to know about this token
     * (or to use it up) hears only "not active", like for a token that does
     * not exist; checked before Redis, so nothing is consumed for it. */
    const char *refused = NULL;
    policy_ip ip;
    http_req_peer_ip(req, &ip.family, ip.addr);
    if (rv == ZTB_OK && !introspect_caller_may(broker_of(req), id.agent, t.aud, 0, &ip, now))
        refused = "policy does not allow the caller " INTROSPECT_ACTION " on the audience";
    else if (rv == ZTB_OK && consume && t.single_use &&
             !introspect_caller_may(broker_of(req), id.agent, t.aud, 1, &ip, now))
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
    json_t *c = introspect_claims_object(&t);
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
