/*
 * token.c - the token exchange endpoint (see token.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "broker/admin/policy_shadow.h"
#include "broker/audit/audit.h"
#include "broker/tokens/approval.h"
#include "broker/tokens/authz_details.h"
#include "broker/broker.h"
#include "broker/auth/client_auth.h"
#include "broker/signals/detectors.h"
#include "broker/signals/scope_summary.h"
#include "broker/http/form.h"
#include "broker/tokens/introspect.h"
#include "broker/signer/keys.h"
#include "broker/http/metrics.h"
#include "broker/store/store.h"
#include "broker/store/store_baseline.h"
#include "broker/tokens/token.h"
#include "common/json_gate.h"
#include "common/log.h"
#include "common/secret.h"
#include "pki/dpop.h"
#include "pki/jws.h"
#include "policy/policy.h"
#include "wire/claims.h"
#include "wire/wire.h"

#define GRANT_TOKEN_EXCHANGE ZTB_WIRE_GRANT_TOKEN_EXCHANGE
#define TOKEN_TYPE_ACCESS    ZTB_WIRE_TOKEN_TYPE_ACCESS
#define FIELD_MAX            512
#define TOKEN_MAX            8192
#define DPOP_MAX_AGE         60

static const char *const allowed_params[] = {"grant_type",
                                             "client_id",
                                             "client_assertion_type",
                                             "client_assertion",
                                             "audience",
                                             "scope",
                                             "resource",
                                             "authorization_details",
                                             "subject_token",
                                             "subject_token_type",
                                             "requested_token_type",
                                             "may_act",
                                             NULL};

/* Everything one request carries through the checks. */
struct token_req {
    const struct broker *b; /* the broker the request came to (broker_of) */
    struct form f;
    struct client_identity id;
    const char *audience, *action, *resource;
    json_t *details;             /* parsed authorization_details (array), or NULL */
    char *details_json;          /* the object the token carries, as text, or NULL */
    char act_sub[512];           /* delegation: on whose behalf ("" if none) */
    struct introspected subject; /* delegation: the verified subject token */
    int act_restricted;          /* its may_act named this agent */
    char may_act[320];           /* may_act.sub for the token issued ("" if none) */
    ztb_dpop_result dpop;
    int has_dpop;
    int caller_live;   /* the agent's state was checked against the credential */
    int dpop_recorded; /* the DPoP proof's jti is remembered (never twice) */
    int bind_mtls;     /* cnf x5t#S256 */
    char actor[96];
    int64_t now;
    /* a poll of this approved approval: the request is the approved one */
    const struct store_approval *granted;
};

static void unavailable(struct http_resp *resp)
{
    http_resp_error(resp, 503, "temporarily_unavailable",
                    "Redis is not answering; nothing was issued");
    http_resp_header(resp, "Retry-After", "1");
}

/* printable ASCII without spaces, 1..FIELD_MAX bytes */
static int field_ok(const char *s, int allow_space)
{
    size_t n = strlen(s);
    if (n == 0 || n > FIELD_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f || (!allow_space && c == ' '))
            return 0;
    }
    return 1;
}

/* one action: service:verb from [a-z0-9._-], no glob */
static int action_ok(const char *s)
{
    const char *colon = strchr(s, ':');
    if (colon == NULL || colon == s || colon[1] == '\0' || strlen(s) > 128)
        return 0;
    for (const char *p = s; *p; p++) {
        char c = *p;
        int ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
                 c == '-' || (c == ':' && p == colon);
        if (!ok)
            return 0;
    }
    return 1;
}

/*
 * authorization_details (RFC 9396): checked with the strict reader first
 * (broker/tokens/authz_details.h says what is accepted); only then parsed with
 * jansson, through the gate, for policy (which reads numbers in it, e.g.
 * "amount") and for the token, which carries the object with "actions",
 * "locations" and "identifier" set.
 */
static int parse_details(struct token_req *t, const char *text, struct http_resp *resp)
{
    char why[200];
    size_t n = strlen(text);
    if (!authz_details_check(text, n, t->action, t->audience, t->resource, why, sizeof(why))) {
        http_resp_error(resp, 400, "invalid_authorization_details", why);
        return 0;
    }
    char gate_why[160];
    json_t *j = NULL;
    if (ztb_json_gate_load(text, n, AUTHZ_DETAILS_MAX, AUTHZ_DETAILS_DEPTH, 0, &j, gate_why,
                           sizeof(gate_why)) != ZTB_OK) {
        /* strict JSON jansson still refuses: a number beyond its range */
        snprintf(why, sizeof(why), "authorization_details: %s", gate_why);
        http_resp_error(resp, 400, "invalid_authorization_details", why);
        return 0;
    }
    json_t *o = json_array_get(j, 0);
    json_t *id = json_object_get(o, "identifier");
    if (id != NULL)
        t->resource = json_string_value(id); /* lives as long as t->details */
    /* what the token carries: the object with actions, locations, identifier */
    json_t *copy = json_deep_copy(o);
    json_object_set_new(copy, "actions", json_pack("[s]", t->action));
    json_object_set_new(copy, "locations", json_pack("[s]", t->audience));
    if (t->resource != NULL)
        json_object_set_new(copy, "identifier", json_string(t->resource));
    t->details_json = json_dumps(copy, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(copy);
    t->details = j;
    return 1;
}

static int denied(struct token_req *t, struct http_resp *resp, unsigned status, const char *code,
                  const char *why, const char *rule);

/* 400 invalid_grant with why, audited (a stolen or replayed subject token
 * shows in the audit log); returns 0. */
static int bad_subject(struct token_req *t, struct http_resp *resp, const char *why)
{
    denied(t, resp, 400, "invalid_grant", why, NULL);
    return 0;
}

/*
 * Delegation (RFC 8693): the subject token must be one of ours, addressed to
 * us, alive (signature, expiry and the revocation state, one Redis round
 * trip); presented by someone other than its subject; with the proof its cnf
 * binding demands (a DPoP proof on this request of the cnf.jkt key, or the
 * mTLS certificate of cnf.x5t#S256); and, when it carries may_act, by the
 * agent may_act names. A single-use subject token is consumed later, by
 * consume_subject_token, once the new token is about to be issued. On
 * success t->subject holds the verified token and t->act_sub its sub.
 */
static int check_subject_token(struct token_req *t, const char *tok, const char *type,
                               struct http_resp *resp)
{
    if (type == NULL || strcmp(type, TOKEN_TYPE_ACCESS) != 0) {
        http_resp_error(resp, 400, "invalid_request",
                        "subject_token_type must be " TOKEN_TYPE_ACCESS);
        return 0;
    }
    struct introspected *s = &t->subject;
    ztb_err rv = introspect_verify(tok, strlen(tok), t->b->issuer, t->now, s);
    if (rv == ZTB_OK && strcmp(s->aud, t->b->issuer) != 0)
        rv = ZTB_ERR_AUDIENCE;
    if (rv == ZTB_OK && strlen(s->sub) >= sizeof(t->act_sub))
        rv = ZTB_ERR_CLAIMS;
    if (rv == ZTB_OK)
        rv = introspect_state(s, t->now, 0);
    if (rv == ZTB_ERR_UNAVAILABLE) {
        unavailable(resp);
        return 0;
    }
    if (rv == ZTB_ERR_REPLAY)
        return bad_subject(t, resp, "subject_token is single-use and was already used");
    if (rv != ZTB_OK)
        return bad_subject(t, resp,
                           "subject_token is not a live token of this broker addressed to it");
    char me[300];
    snprintf(me, sizeof(me), "spiffe://%s/agent/%s", t->b->cfg.trust_domain, t->id.agent);
    if (strcmp(s->agent, t->id.agent) == 0 || strcmp(s->sub, me) == 0)
        return bad_subject(t, resp,
                           "subject_token is the caller's own: an agent cannot act on its "
                           "own behalf (self-delegation)");
    /* the cnf binding: a bound token works only with its proof (RFC 9449, RFC 8705) */
    const struct claims *c = &s->tok.c;
    const char *jkt = claims_str(c, CL_JKT);
    const char *x5t = claims_str(c, CL_X5T);
    if (c->cnf_present && (c->cnf_unknown || (jkt == NULL) == (x5t == NULL)))
        return bad_subject(t, resp, "subject_token has a cnf binding this broker cannot check");
    if (jkt != NULL &&
        !(t->has_dpop && ztb_ct_eq_len(t->dpop.jkt, strlen(t->dpop.jkt), jkt, strlen(jkt))))
        return bad_subject(t, resp,
                           "subject_token is DPoP-bound: send a DPoP proof signed with "
                           "its cnf.jkt key");
    if (x5t != NULL && !(t->id.method == CLIENT_AUTH_MTLS &&
                         ztb_ct_eq_len(t->id.x5t_s256, strlen(t->id.x5t_s256), x5t, strlen(x5t))))
        return bad_subject(t, resp,
                           "subject_token is mTLS-bound: connect with the TLS client "
                           "certificate of its cnf.x5t#S256");
    /* may_act (RFC 8693 §4.4): who may present it (its shape: wire/claims.h) */
    const char *who = claims_str(c, CL_MAY_ACT_SUB);
    if (who != NULL) {
        if (strcmp(who, me) != 0)
            return bad_subject(t, resp,
                               "subject_token's may_act names another agent: only that "
                               "agent may present it");
        t->act_restricted = 1;
    }
    memcpy(t->act_sub, s->sub, strlen(s->sub) + 1);
    return 1;
}

/*
 * Consume a single-use subject token, atomically with its revocation state
 * (the ztb:used:<jti> marker verifiers and introspection use): only one
 * exchange ever succeeds. Called last before issuing, so a request refused
 * by policy or a rate limit does not use it up. 0: resp filled.
 */
static int consume_subject_token(struct token_req *t, struct http_resp *resp)
{
    if (!t->subject.valid || !t->subject.single_use)
        return 1;
    ztb_err rv = introspect_state(&t->subject, t->now, 1);
    if (rv == ZTB_ERR_UNAVAILABLE) {
        unavailable(resp);
        return 0;
    }
    if (rv != ZTB_OK)
        return bad_subject(t, resp,
                           rv == ZTB_ERR_REPLAY
                               ? "subject_token is single-use and was already used"
                               : "subject_token is not a live token of this broker "
                                 "addressed to it");
    return 1;
}

/*
 * may_act: the agent asks that the token it gets (a subject token, addressed
 * to this broker) may be presented only by the agent named, a SPIFFE ID of
 * this trust domain other than its own. 0: resp filled.
 */
static int read_may_act(struct token_req *t, struct http_resp *resp)
{
    const char *v = form_get(&t->f, "may_act");
    if (v == NULL)
        return 1;
    char prefix[280];
    int n = snprintf(prefix, sizeof(prefix), "spiffe://%s/agent/", t->b->cfg.trust_domain);
    const char *name = strncmp(v, prefix, (size_t)n) == 0 ? v + n : NULL;
    const char *why = NULL;
    if (name == NULL || !store_agent_name_ok(name) || strlen(v) >= sizeof(t->may_act))
        why = "may_act must be an agent's SPIFFE ID in this trust domain";
    else if (strcmp(name, t->id.agent) == 0)
        why = "may_act names the caller itself: an agent cannot act on its own behalf";
    else if (strcmp(t->audience, t->b->issuer) != 0)
        why = "may_act is for subject tokens only: audience must be this broker's issuer";
    if (why != NULL) {
        http_resp_error(resp, 400, "invalid_request", why);
        return 0;
    }
    memcpy(t->may_act, v, strlen(v) + 1);
    return 1;
}

/* What this request's caller must still be for the issue script: the
 * credential's binding and the DPoP proof to remember. */
static void expectations(const struct token_req *t, struct store_expect *e)
{
    client_auth_expect(&t->id, e);
    if (t->has_dpop) {
        /* as long as any replica could still accept the proof (its iat, the
         * age allowed, the skew bound and the second time() truncates) */
        e->dpop_jti = t->dpop.jti;
        e->dpop_ttl_ms = ztb_wire_dpop_keep_ms(t->dpop.iat, DPOP_MAX_AGE, t->now);
    }
}

/* Answer a refusal of the issue script's caller checks (STALE_IDENTITY and
 * the like, DPOP_REPLAY); 1 if v is not one. */
static int caller_refused(struct token_req *t, enum store_verdict v, struct http_resp *resp)
{
    switch (v) {
    case STORE_UNKNOWN_AGENT:
    case STORE_DISABLED:
        http_resp_error(resp, 401, "invalid_client", "unknown or disabled agent");
        return 0;
    case STORE_STALE_IDENTITY:
        http_resp_error(resp, 401, "invalid_client",
                        t->id.method == CLIENT_AUTH_SESSION ? CLIENT_AUTH_SESSION_REVOKED
                        : t->id.method == CLIENT_AUTH_MTLS  ? CLIENT_AUTH_SUPERSEDED
                                                            : CLIENT_AUTH_NOT_LIVE);
        return 0;
    case STORE_DPOP_REPLAY:
        detect_event(DETECT_DPOP_REPLAY, t->id.agent, t->action, t->audience, NULL);
        http_resp_error(resp, 400, "invalid_dpop_proof", "DPoP proof replayed");
        return 0;
    default: return 1;
    }
}

/*
 * 1 once the caller is known to be live: its credential is the agent's
 * current identity's (client_auth checked it, or the issue script does now,
 * charging nothing) and its DPoP proof is remembered. Otherwise resp is
 * filled (401, 400 replay, 503) and 0 returned. Every refusal that leaves a
 * trace (audit, detectors) asks this first, so a revoked credential leaves
 * none.
 */
static int caller_live(struct token_req *t, struct http_resp *resp)
{
    if (t->caller_live)
        return 1;
    struct store_expect e;
    expectations(t, &e);
    struct store_check ck;
    ztb_err rv = store_issue_check(t->id.agent, &e, 0, t->action, t->audience, NULL, NULL, &ck);
    if (rv == ZTB_ERR_UNAVAILABLE) {
        unavailable(resp);
        return 0;
    }
    if (rv != ZTB_OK) {
        http_resp_error(resp, 400, "invalid_request", ztb_strerror(rv));
        return 0;
    }
    if (!caller_refused(t, ck.verdict, resp))
        return 0;
    t->caller_live = 1;
    t->dpop_recorded = e.dpop_jti != NULL;
    return 1;
}

/* The ztb_tokens_denied_total reason for a denial answered with code and err. */
static enum metrics_denial denial_reason(const char *code, ztb_err err)
{
    if (err == ZTB_ERR_QUARANTINED)
        return DENIED_QUARANTINED;
    if (err == ZTB_ERR_AUDIENCE_KILLED)
        return DENIED_AUDIENCE_KILLED;
    if (strcmp(code, "slow_down") == 0)
        return DENIED_RATE_LIMITED;
    if (strcmp(code, "approval_required") == 0)
        return DENIED_APPROVAL_REQUIRED;
    if (strcmp(code, "invalid_request") == 0)
        return DENIED_INVALID_REQUEST;
    if (strcmp(code, "invalid_grant") == 0)
        return DENIED_INVALID_GRANT;
    return DENIED_POLICY;
}

/* Refuse the request with status, code (and the ztb error err names, ZTB_OK:
 * the code's, wire/error_response.h) and why, and record the refusal (audit,
 * metrics): 1. If the caller turns out not to be live, it is refused for
 * that instead, nothing is recorded, and 0 is returned: callers feed
 * detectors only on 1. */
static int denied_as(struct token_req *t, struct http_resp *resp, unsigned status, const char *code,
                     ztb_err err, const char *why, const char *rule)
{
    if (!caller_live(t, resp))
        return 0;
    http_resp_error_as(resp, status, code, err, why);
    metrics_token_denied(denial_reason(code, err));
    audit("token.denied", t->actor, 0, ZTB_F_STR("agent", t->id.agent),
          ZTB_F_STR("action", t->action), ZTB_F_STR("audience", t->audience),
          ZTB_F_STR("resource", t->resource ? t->resource : ""), ZTB_F_STR("reason", why),
          ZTB_F_STR("rule", rule));
    detect_event(DETECT_TOKEN_DENIED, t->id.agent, NULL, NULL, NULL); /* `agent show` counts */
    return 1;
}

static int denied(struct token_req *t, struct http_resp *resp, unsigned status, const char *code,
                  const char *why, const char *rule)
{
    return denied_as(t, resp, status, code, ZTB_OK, why, rule);
}

/* Parse and check the request up to (not including) policy. 0: resp filled. */
static int read_request(struct token_req *t, struct http_req *req, struct http_resp *resp)
{
    if (!http_req_content_type_is(req, "application/x-www-form-urlencoded")) {
        http_resp_error(resp, 415, "invalid_request",
                        "Content-Type must be application/x-www-form-urlencoded");
        return 0;
    }
    ztb_err rv = form_parse(&t->f, req->body, req->body_len, allowed_params);
    if (rv != ZTB_OK) {
        http_resp_error(resp, 400, "invalid_request", form_error(&t->f));
        return 0;
    }
    const char *gt = form_get(&t->f, "grant_type");
    if (gt == NULL || strcmp(gt, GRANT_TOKEN_EXCHANGE) != 0) {
        http_resp_error(resp, 400, gt ? "unsupported_grant_type" : "invalid_request",
                        "grant_type must be " GRANT_TOKEN_EXCHANGE);
        return 0;
    }
    const char *rtt = form_get(&t->f, "requested_token_type");
    if (rtt != NULL && strcmp(rtt, TOKEN_TYPE_ACCESS) != 0) {
        http_resp_error(resp, 400, "invalid_request",
                        "requested_token_type must be " TOKEN_TYPE_ACCESS);
        return 0;
    }
    /* the agent's state is checked with the issue script (caller_live or
     * the full check), before anything is charged or recorded */
    if (client_auth(req, form_get(&t->f, "client_assertion_type"),
                    form_get(&t->f, "client_assertion"), t->now,
                    CLIENT_AUTH_SESSION_OK | CLIENT_AUTH_STATE_LATER, &t->id, resp) != ZTB_OK ||
        client_auth_client_id(&t->id, form_get(&t->f, "client_id"), resp) != ZTB_OK)
        return 0;
    t->caller_live = t->id.state_checked;
    snprintf(t->actor, sizeof(t->actor), "agent:%s", t->id.agent);
    t->audience = form_get(&t->f, "audience");
    t->action = form_get(&t->f, "scope");
    t->resource = form_get(&t->f, "resource");
    if (t->audience == NULL || !field_ok(t->audience, 0)) {
        http_resp_error(resp, 400, "invalid_request",
                        "audience required: one printable name without spaces");
        return 0;
    }
    if (t->action == NULL || !action_ok(t->action)) {
        http_resp_error(resp, 400, "invalid_scope",
                        "scope must be exactly one action service:verb of [a-z0-9._-]");
        return 0;
    }
    if (strncmp(t->action, POLICY_RESERVED_SERVICE ":", sizeof(POLICY_RESERVED_SERVICE)) == 0 &&
        strcmp(t->action, POLICY_ACTION_SSF) != 0) {
        /* the broker's own actions (ztb:introspect, ztb:consume) are asked of
         * it directly, never carried by a token; ztb:ssf is the SSF
         * receivers' token for the broker's stream API (ssf_streams_http.c) */
        http_resp_error(resp, 400, "invalid_scope",
                        "the service \"ztb\" is reserved for the broker's own actions");
        return 0;
    }
    if (t->resource != NULL && !field_ok(t->resource, 0)) {
        http_resp_error(resp, 400, "invalid_request", "resource must be printable, no spaces");
        return 0;
    }
    const char *ad = form_get(&t->f, "authorization_details");
    if (ad != NULL && !parse_details(t, ad, resp))
        return 0;
    return 1;
}

/*
 * The request's one DPoP header (RFC 9449 §4.3: not more than one): 1 and
 * *proof set (NULL when there is none), or 0 with resp filled.
 */
static int dpop_header(struct http_req *req, const char **proof, struct http_resp *resp)
{
    if (http_req_header_once(req, "DPoP", proof) >= 0)
        return 1;
    http_resp_error(resp, 400, "invalid_dpop_proof", "one DPoP header at most");
    return 0;
}

/* DPoP proof on this request, if any: checked and its jti remembered. */
static int read_dpop(struct token_req *t, struct http_req *req, struct http_resp *resp)
{
    const char *proof;
    if (!dpop_header(req, &proof, resp))
        return 0;
    if (proof == NULL)
        return 1;
    /* the proof itself; its jti is remembered by the issue script, once the
     * caller is known to be live */
    ztb_err rv = ztb_dpop_proof_check(proof, strlen(proof), "POST", client_auth_token_endpoint(),
                                      NULL, t->now, DPOP_MAX_AGE, 5, &t->dpop);
    if (rv != ZTB_OK) {
        http_resp_error(resp, 400, "invalid_dpop_proof", ztb_strerror(rv));
        return 0;
    }
    t->has_dpop = 1;
    return 1;
}

/*
 * A token on its way out: its claims, their text, and the signature asked
 * of the signer. Made before the Redis check when every claim is known by
 * then (the caller's generation came with its session), so the signer signs
 * while Redis answers and the request waits once for both; a refusal then
 * cancels the signature. Otherwise it is signed after the check.
 */
struct token_out {
    struct token_claims c;
    uint32_t ttl;
    int made;    /* claims written (and, if pending, the signature asked) */
    int pending; /* a signature is with the signer */
    char spiffe[300];
    char claims_store[TOKEN_MAX];
    char tok_store[TOKEN_MAX];
    ztb_buf cb, tb;
    struct keys_sign_pending sp;
};

static const ztb_jws_sign_opts k_token_sign = {.typ = ZTB_WIRE_TYP_ACCESS};

/* Write o's claims (generation gen) and, if sign, ask for their signature. */
static ztb_err token_prepare(struct token_out *o, const struct token_req *t,
                             const struct keys_state *ks, const policy_decision *d, int64_t gen,
                             int sign)
{
    o->ttl = d->ob.ttl;
    if (o->ttl == 0 || o->ttl > ks->max_token_ttl)
        o->ttl = ks->max_token_ttl;
    snprintf(o->spiffe, sizeof(o->spiffe), "spiffe://%s/agent/%s", t->b->cfg.trust_domain,
             t->id.agent);
    o->c = (struct token_claims){
        .iss = t->b->issuer,
        .agent = t->id.agent,
        .spiffe_id = o->spiffe,
        .audience = t->audience,
        .action = t->action,
        .resource = t->resource,
        .details_json = t->details_json,
        .act_sub = t->act_sub[0] ? t->act_sub : NULL,
        .may_act_sub = t->may_act[0] ? t->may_act : NULL,
        .cnf_jkt = t->has_dpop ? t->dpop.jkt : NULL,
        .cnf_x5t = t->bind_mtls ? t->id.x5t_s256 : NULL,
        .rule = d->rule,
        .iat = t->now,
        .exp = t->now + o->ttl,
        .generation = gen,
        .single_use = d->ob.single_use,
    };
    ztb_buf_init_fixed(&o->cb, o->claims_store, sizeof(o->claims_store));
    ztb_buf_init_fixed(&o->tb, o->tok_store, sizeof(o->tok_store));
    ztb_err rv = claims_new_jti(&o->c);
    if (rv == ZTB_OK)
        rv = claims_write(&o->c, &o->cb);
    if (rv != ZTB_OK)
        return rv;
    o->made = 1;
    if (sign &&
        keys_sign_begin(ks, &k_token_sign, o->claims_store, o->cb.len, &o->tb, &o->sp) == ZTB_OK)
        o->pending = 1; /* else it is signed, or fails, after the check */
    return ZTB_OK;
}

/* The token is not issued: a signature asked for is not wanted. */
static void token_out_drop(struct token_out *o)
{
    if (o->pending)
        keys_sign_cancel(&o->sp);
    o->pending = 0;
    ztb_wipe(o->tok_store, sizeof(o->tok_store));
}

static void issue(struct token_req *t, struct keys_state *ks, const policy_decision *d,
                  const struct store_check *ck, struct token_out *o, struct http_resp *resp)
{
    ztb_err rv = ZTB_OK;
    if (o->made && o->c.generation != ck->generation) {
        token_out_drop(o); /* cannot be: the check matched the expected generation */
        o->made = 0;
    }
    if (!o->made)
        rv = token_prepare(o, t, ks, d, ck->generation, 0);
    if (rv == ZTB_OK && o->pending) {
        o->pending = 0;
        rv = keys_sign_end(&o->sp, ks, &k_token_sign, o->claims_store, o->cb.len, &o->tb);
    } else if (rv == ZTB_OK) {
        rv = keys_sign_jws(ks, &k_token_sign, o->claims_store, o->cb.len, &o->tb);
    }
    if (rv == ZTB_ERR_UNAVAILABLE) { /* the signer is down: fail closed */
        http_resp_error(resp, 503, "temporarily_unavailable", "the signer is not answering");
        http_resp_header(resp, "Retry-After", "1");
        ztb_log(ZTB_LOG_ERROR, "token.sign_failed", ZTB_F_ERR(rv));
        return;
    }
    if (rv != ZTB_OK) {
        http_resp_error(resp, 500, "server_error", "cannot sign the token");
        ztb_log(ZTB_LOG_ERROR, "token.sign_failed", ZTB_F_ERR(rv));
        return;
    }
    const struct token_claims c = o->c;
    uint32_t ttl = o->ttl;
    const char *tok_store = o->tok_store;
    ztb_buf tb = o->tb;
    /* the audit line is written before the token is answered */
    if (audit("token.issued", t->actor, 0, ZTB_F_STR("agent", t->id.agent),
              ZTB_F_STR("action", t->action), ZTB_F_STR("audience", t->audience),
              ZTB_F_STR("resource", t->resource ? t->resource : ""), ZTB_F_STR("jti", c.jti),
              ZTB_F_STR("rule", d->rule), ZTB_F_INT("ttl", ttl), ZTB_F_INT("gen", ck->generation),
              ZTB_F_BOOL("dpop", t->has_dpop), ZTB_F_BOOL("single_use", d->ob.single_use),
              ZTB_F_STR("on_behalf_of", t->act_sub[0] ? t->act_sub : NULL),
              ZTB_F_STR("approval", t->granted ? t->granted->id : NULL)) != ZTB_OK) {
        http_resp_error_as(resp, 503, "temporarily_unavailable", ZTB_ERR_AUDIT_UNAVAILABLE,
                           AUDIT_UNAVAILABLE_WHY);
        http_resp_header(resp, "Retry-After", "1");
        return; /* the caller wipes o */
    }
    metrics_token_issued(t->audience);
    detect_event(DETECT_AUDIENCE_USED, t->id.agent, NULL, t->audience, NULL);
    if (ck->bl.phase == STORE_BL_WATCHING) {
        char prefix[STORE_BL_PREFIX_MAX + 1];
        store_resource_prefix(t->resource, prefix);
        detect_baseline(t->id.agent, t->action, t->audience, prefix, &ck->bl);
    }
    ztb_buf *body = &resp->body;
    ztb_buf_reset(body);
    ztb_buf_append_str(body, "{\"access_token\":\"");
    ztb_buf_append(body, tok_store, tb.len);
    ztb_buf_printf(body,
                   "\",\"issued_token_type\":\"" TOKEN_TYPE_ACCESS
                   "\",\"token_type\":\"%s\",\"expires_in\":%u,\"scope\":\"",
                   t->has_dpop ? ZTB_WIRE_TOKEN_TYPE_DPOP : ZTB_WIRE_TOKEN_TYPE_BEARER, ttl);
    ztb_buf_append_json_escaped(body, t->action, strlen(t->action));
    ztb_buf_append_str(body, "\"}");
    resp->status = 200;
    resp->content_type = "application/json";
}

/*
 * File a pending approval for this request (policy's rule, group, number of
 * approvers and wait, or, under a signal's require_approval, one approver
 * of any group) and answer 400 authorization_pending (approval.h).
 */
static void file_approval(struct token_req *t, const policy_decision *d, int by_policy,
                          int64_t generation, struct http_resp *resp)
{
    struct store_approval *a = calloc(1, sizeof(*a));
    if (a == NULL) {
        http_resp_error(resp, 500, "server_error", "out of memory");
        return;
    }
    snprintf(a->agent, sizeof(a->agent), "%s", t->id.agent);
    a->generation = generation;
    snprintf(a->action, sizeof(a->action), "%s", t->action);
    snprintf(a->audience, sizeof(a->audience), "%s", t->audience);
    snprintf(a->resource, sizeof(a->resource), "%s", t->resource ? t->resource : "");
    const char *ad = form_get(&t->f, "authorization_details");
    if (ad != NULL && strlen(ad) < sizeof(a->details))
        memcpy(a->details, ad, strlen(ad) + 1);
    if (t->has_dpop)
        snprintf(a->jkt, sizeof(a->jkt), "%s", t->dpop.jkt);
    else if (t->bind_mtls)
        snprintf(a->x5t, sizeof(a->x5t), "%s", t->id.x5t_s256);
    snprintf(a->rule, sizeof(a->rule), "%s", by_policy && d->rule ? d->rule : "");
    snprintf(a->group, sizeof(a->group), "%s",
             by_policy && d->ob.approval_group ? d->ob.approval_group : "");
    a->needed = by_policy && d->ob.approvers > 0 ? d->ob.approvers : 1;
    (void)approval_file(a, by_policy ? d->ob.approval_ttl : 0, t->b->issuer, t->actor, t->now,
                        resp);
    free(a);
}

/*
 * The request is an approved approval's: the agent's generation must be
 * the one it asked at (a revocation since ends the approval), and the
 * approval is used now, once, for this token's jti. 0: resp filled.
 */
static int use_approval(struct token_req *t, struct keys_state *ks, const policy_decision *d,
                        const struct store_check *ck, struct token_out *o, struct http_resp *resp)
{
    if (ck->generation != t->granted->generation) {
        denied_as(t, resp, 403, "access_denied", ZTB_ERR_AGENT_REVOKED,
                  "the agent was revoked since the approval was asked for: ask again", d->rule);
        return 0;
    }
    if (!o->made && token_prepare(o, t, ks, d, ck->generation, 0) != ZTB_OK) {
        http_resp_error(resp, 500, "server_error", "cannot write the token");
        return 0;
    }
    ztb_err rv = store_approval_use(t->granted->id, t->id.agent, o->c.jti, t->now);
    if (rv == ZTB_ERR_UNAVAILABLE) {
        unavailable(resp);
        return 0;
    }
    if (rv != ZTB_OK) {
        http_resp_error_as(resp, 400, "expired_token", ZTB_ERR_APPROVAL_EXPIRED,
                           "the approval is no longer valid: ask again");
        return 0;
    }
    return 1;
}

/*
 * Everything after the request is read: keys, delegation, policy, binding,
 * the Redis check, then a token, a pending approval, or a refusal. With
 * t->granted (a poll of an approved approval) the request is the approved
 * one, and the token is issued under it, once.
 */
static void token_run(struct token_req *t, struct http_req *req, struct http_resp *resp)
{
    struct keys_state *ks = NULL;
    policy *pol = NULL;
    struct token_out o_store, *o = NULL;
    ks = keys_acquire();
    if (ks == NULL || ks->active == NULL || !keys_can_sign()) {
        http_resp_error(resp, 503, "temporarily_unavailable",
                        ks != NULL && ks->active != NULL ? "the signer is not answering"
                                                         : "no active signing key");
        http_resp_header(resp, "Retry-After", "5");
        goto out;
    }
    const char *st = form_get(&t->f, "subject_token");
    if (st != NULL && !check_subject_token(t, st, form_get(&t->f, "subject_token_type"), resp))
        goto out;
    if (!read_may_act(t, resp))
        goto out;

    pol = t->b->policy ? policy_holder_acquire(t->b->policy) : NULL;
    if (pol == NULL) {
        denied(t, resp, 403, "access_denied", "no policy is loaded: everything is denied", NULL);
        goto out;
    }
    policy_decision d;
    policy_request pr = {
        .agent = t->id.agent,
        .action = t->action,
        .audience = t->audience,
        .resource = t->resource ? t->resource : "",
        .ctx = {.now = t->now,
                .act = t->act_sub[0] ? t->act_sub : NULL,
                .act_restricted = t->act_restricted,
                .authorization_details = t->details},
    };
    http_req_peer_ip(req, &pr.ctx.source.family, pr.ctx.source.addr);
    ztb_err pe = policy_eval(pol, &pr, &d);
    if (pe == ZTB_OK)
        policy_shadow_observe(t->b->shadow, &pr, &d); /* a candidate's view, recorded only */
    if (pe != ZTB_OK || d.effect == POLICY_DENY) {
        char why[300];
        ztb_buf wb;
        ztb_buf_init_fixed(&wb, why, sizeof(why));
        policy_decision_describe(&d, &wb);
        if (denied(t, resp, 403, "access_denied", why, d.rule)) {
            metrics_out_of_scope(t->id.agent);
            scope_summary_note(t->id.agent, t->action, t->audience, d.rule);
            detect_event(DETECT_POLICY_DENIAL, t->id.agent, t->action, t->audience, why);
        }
        goto out;
    }
    /* approval: a request that needs one waits for it (filed after the
     * Redis check below, so a quarantined or stale caller files nothing);
     * a delegated one cannot wait (its subject token is not kept) */
    int need_approval = d.effect == POLICY_APPROVAL_REQUIRED;
    if (need_approval && t->granted == NULL && t->act_sub[0]) {
        denied(t, resp, 403, "approval_required",
               "policy requires a human's approval first, and a delegated request cannot wait "
               "for one: ask without subject_token",
               d.rule);
        goto out;
    }
    if (need_approval && t->granted != NULL &&
        (approval_count(t->granted->approvers) < d.ob.approvers ||
         strcmp(t->granted->group, d.ob.approval_group ? d.ob.approval_group : "") != 0)) {
        denied(t, resp, 403, "approval_required",
               "policy now requires other or more approvers than approved this request: ask again",
               d.rule);
        goto out;
    }
    /* binding: DPoP where asked (or offered under "any"), else mTLS */
    int want_dpop =
        d.ob.binding == POLICY_BINDING_DPOP || (d.ob.binding == POLICY_BINDING_ANY && t->has_dpop);
    int want_mtls =
        d.ob.binding == POLICY_BINDING_MTLS || (d.ob.binding == POLICY_BINDING_ANY && !t->has_dpop);
    if (want_dpop && !t->has_dpop) {
        denied(t, resp, 400, "invalid_request",
               "policy requires a DPoP-bound token: send a DPoP proof", d.rule);
        goto out;
    }
    if (want_mtls && t->id.method != CLIENT_AUTH_MTLS) {
        denied(t, resp, 400, "invalid_request",
               d.ob.binding == POLICY_BINDING_ANY
                   ? "policy requires a bound token: send a DPoP proof or use mTLS"
                   : "policy requires an mTLS-bound token: connect with the identity document "
                     "as TLS client certificate",
               d.rule);
        goto out;
    }
    t->bind_mtls = want_mtls;

    struct store_rate ar = {d.ob.per_agent.rate, d.ob.per_agent.burst, d.ob.per_agent.period};
    struct store_rate xr = {d.ob.per_action.rate, d.ob.per_action.burst, d.ob.per_action.period};
    struct store_check ck;
    struct store_expect e;
    expectations(t, &e);
    if (t->dpop_recorded)
        e.dpop_jti = NULL;
    char prefix[STORE_BL_PREFIX_MAX + 1];
    store_resource_prefix(t->resource, prefix);
    e.resource_prefix = prefix;
    o = &o_store;
    o->made = o->pending = 0;
    /* every claim is known now when the generation is (a session's): the
     * signer signs during the Redis round trip */
    if (e.generation >= 0 && !(need_approval && t->granted == NULL) &&
        token_prepare(o, t, ks, &d, e.generation, 1) != ZTB_OK)
        o->made = 0;
    ztb_err rv = store_issue_check(t->id.agent, &e, 1, t->action, t->audience, &ar, &xr, &ck);
    if (rv == ZTB_ERR_UNAVAILABLE) {
        unavailable(resp);
        goto out;
    }
    if (rv != ZTB_OK) {
        http_resp_error(resp, 400, "invalid_request", ztb_strerror(rv));
        goto out;
    }
    if (!caller_refused(t, ck.verdict, resp))
        goto out;
    t->caller_live = 1;
    switch (ck.verdict) {
    case STORE_OK: break;
    case STORE_UNKNOWN_AGENT:
    case STORE_DISABLED:
    case STORE_STALE_IDENTITY:
    case STORE_DPOP_REPLAY: goto out; /* answered by caller_refused */
    case STORE_QUARANTINED:
        denied_as(t, resp, 403, "access_denied", ZTB_ERR_QUARANTINED, "the agent is quarantined",
                  NULL);
        goto out;
    case STORE_AUDIENCE_KILLED:
        denied_as(t, resp, 403, "access_denied", ZTB_ERR_AUDIENCE_KILLED,
                  "the audience is disabled", NULL);
        goto out;
    case STORE_RATE_AGENT:
    case STORE_RATE_ACTION: {
        unsigned secs = (ck.retry_after_ms + 999) / 1000;
        if (denied(t, resp, 429, "slow_down",
                   ck.verdict == STORE_RATE_AGENT ? "rate limit: agent"
                                                  : "rate limit: agent x action",
                   d.rule)) {
            http_resp_header(resp, "Retry-After", "%u", secs ? secs : 1);
            detect_event(DETECT_RATE_LIMITED, t->id.agent, t->action, t->audience, NULL);
        }
        goto out;
    }
    }
    if ((need_approval || ck.approval_required) && t->granted == NULL) {
        if (t->act_sub[0]) {
            denied(t, resp, 403, "approval_required",
                   "this agent needs a human's approval for every action now, and a delegated "
                   "request cannot wait for one",
                   d.rule);
            goto out;
        }
        file_approval(t, &d, need_approval, ck.generation, resp);
        goto out;
    }
    if (t->granted != NULL && !use_approval(t, ks, &d, &ck, o, resp))
        goto out;
    if (!consume_subject_token(t, resp))
        goto out;
    issue(t, ks, &d, &ck, o, resp);
out:
    if (o != NULL)
        token_out_drop(o);
    if (pol != NULL)
        policy_holder_release(pol);
    keys_release(ks);
}

void handle_token(struct http_req *req, struct http_resp *resp)
{
    struct token_req t;
    memset(&t, 0, sizeof(t));
    t.b = broker_of(req);
    t.now = (int64_t)time(NULL);
    if (read_request(&t, req, resp) && read_dpop(&t, req, resp))
        token_run(&t, req, resp);
    introspected_free(&t.subject);
    json_decref(t.details);
    if (t.details_json != NULL)
        ztb_free_secret_str(t.details_json);
    form_free(&t.f);
}

static const char *const poll_params[] = {"client_assertion_type", "client_assertion", NULL};

/*
 * The poll's proof of the key the approval is bound to: a DPoP proof for
 * this method and URL signed with the approved jkt's key, or the mTLS
 * certificate of the approved thumbprint. 0: resp filled.
 */
static int poll_binding(struct token_req *t, struct http_req *req, const struct store_approval *a,
                        struct http_resp *resp)
{
    const char *proof;
    if (!dpop_header(req, &proof, resp))
        return 0;
    if (proof != NULL) {
        char htu[600];
        snprintf(htu, sizeof(htu), "%s%s", t->b->issuer, req->path);
        ztb_err rv = ztb_dpop_proof_check(proof, strlen(proof), req->method, htu, NULL, t->now,
                                          DPOP_MAX_AGE, 5, &t->dpop);
        if (rv != ZTB_OK) {
            http_resp_error(resp, 400, "invalid_dpop_proof", ztb_strerror(rv));
            return 0;
        }
        t->has_dpop = 1;
    }
    if (a->jkt[0] != '\0' &&
        !(t->has_dpop && ztb_ct_eq_len(t->dpop.jkt, strlen(t->dpop.jkt), a->jkt, strlen(a->jkt)))) {
        http_resp_error_as(resp, 400, "invalid_dpop_proof", ZTB_ERR_BINDING,
                           "the approval is bound to a DPoP key: send a DPoP proof for this "
                           "request signed with the key the token was asked with");
        return 0;
    }
    if (a->x5t[0] != '\0' &&
        !(t->id.method == CLIENT_AUTH_MTLS &&
          ztb_ct_eq_len(t->id.x5t_s256, strlen(t->id.x5t_s256), a->x5t, strlen(a->x5t)))) {
        http_resp_error_as(resp, 400, "invalid_request", ZTB_ERR_BINDING,
                           "the approval is bound to an mTLS certificate: connect with the "
                           "identity document the token was asked with");
        return 0;
    }
    return 1;
}

void handle_approval_poll(struct http_req *req, struct http_resp *resp)
{
    struct token_req t;
    memset(&t, 0, sizeof(t));
    t.b = broker_of(req);
    t.now = (int64_t)time(NULL);
    struct store_approval *a = calloc(1, sizeof(*a));
    const char *id = req->path + strlen(ZTB_WIRE_APPROVAL_PATH);
    if (a == NULL) {
        http_resp_error(resp, 500, "server_error", "out of memory");
        goto out;
    }
    if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "POST") != 0) {
        http_resp_error(resp, 405, "invalid_request", "poll an approval with GET or POST");
        goto out;
    }
    if (req->body_len > 0 || strcmp(req->method, "POST") == 0) {
        if (!http_req_content_type_is(req, "application/x-www-form-urlencoded")) {
            http_resp_error(resp, 415, "invalid_request",
                            "Content-Type must be application/x-www-form-urlencoded");
            goto out;
        }
        if (form_parse(&t.f, req->body, req->body_len, poll_params) != ZTB_OK) {
            http_resp_error(resp, 400, "invalid_request", form_error(&t.f));
            goto out;
        }
    }
    if (client_auth(req, form_get(&t.f, "client_assertion_type"),
                    form_get(&t.f, "client_assertion"), t.now,
                    CLIENT_AUTH_SESSION_OK | CLIENT_AUTH_STATE_LATER, &t.id, resp) != ZTB_OK)
        goto out;
    t.caller_live = t.id.state_checked;
    snprintf(t.actor, sizeof(t.actor), "agent:%s", t.id.agent);
    int expired_now = 0;
    ztb_err rv = store_approval_get(id, t.now, a, &expired_now);
    if (rv == ZTB_ERR_UNAVAILABLE) {
        unavailable(resp);
        goto out;
    }
    /* another agent's approval is as unknown as one that never was */
    if (rv != ZTB_OK || strcmp(a->agent, t.id.agent) != 0) {
        if (expired_now)
            approval_audit_expired(a);
        http_resp_error(resp, 404, "not_found", "no such approval for this agent");
        goto out;
    }
    t.action = a->action;
    t.audience = a->audience;
    t.resource = a->resource[0] ? a->resource : NULL;
    if (!poll_binding(&t, req, a, resp) || !caller_live(&t, resp))
        goto out;
    if (approval_answer(a, expired_now, t.b->issuer, t.now, resp))
        goto out;
    /* approved: the approved request, issued now */
    if (a->details[0] != '\0' && !parse_details(&t, a->details, resp))
        goto out;
    t.granted = a;
    token_run(&t, req, resp);
out:
    free(a);
    json_decref(t.details);
    if (t.details_json != NULL)
        ztb_free_secret_str(t.details_json);
    form_free(&t.f);
}
