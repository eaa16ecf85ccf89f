/*
 * authzen_http.c - the AuthZEN access evaluation endpoints and the PDP
 * metadata (see authzen_http.h; the mapping is authzen.c).
 *
 * How it works, cheapest and least revealing first: the X-Request-ID is
 * read (once, printable, short) and echoed on every answer (AuthZEN 1.0
 * 12.1.9); the body's size is bounded; the caller is authenticated from
 * the Authorization header ("Bearer" and a ztb session credential or a
 * private_key_jwt client assertion) or its TLS client certificate, through
 * client_auth like every endpoint: nothing of the body is read before
 * that. Then Content-Type, the body (authzen_parse, the jansson gate),
 * and the caller's permission, ztb:evaluate on every audience the request
 * asks about (one refusal refuses the whole request: 403, nothing
 * evaluated). Each evaluation then reads the subject's state in Redis
 * (one read-only script: known, active, live identity, not quarantined,
 * audience not killed, approval not imposed by a signal) and asks the
 * policy; only an outright allow with no single-use demand is a permit.
 *
 * Each decision is an audit line naming caller, subject, action, audience,
 * resource, decision, reason and rule; a request holds at most
 * AUTHZEN_MAX_EVALUATIONS evaluations, so it writes at most that many.
 *
 * Must never: answer a caller that is not authenticated or not allowed on
 * the audience anything but 401/403, permit what ztb would issue only
 * after a human approval or as a single-use token, charge a rate limit or
 * change any state, or log a credential.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <jansson.h>

#include "broker/audit/audit.h"
#include "broker/auth/client_auth.h"
#include "broker/authzen/authzen.h"
#include "broker/authzen/authzen_http.h"
#include "broker/broker.h"
#include "broker/store/store.h"
#include "broker/tokens/introspect_caller.h"
#include "policy/policy.h"
#include "wire/authorization.h"
#include "wire/wire.h"

#define REQUEST_ID_MAX 128

/* The outcome of one evaluation. */
struct outcome {
    int permit;
    const char *reason;
    char admin[300];
    const char *rule;
    uint32_t ttl;
    const char *binding;
};

/*
 * X-Request-ID: 1 and echoed on resp when absent or fine, 0 with resp
 * filled (400) when repeated, too long or not printable.
 */
static int request_id(const struct http_req *req, struct http_resp *resp)
{
    const char *v = NULL;
    int n = http_req_header_once(req, "X-Request-ID", &v);
    if (n == 0)
        return 1;
    size_t len = n > 0 ? strlen(v) : 0;
    int ok = n > 0 && len >= 1 && len <= REQUEST_ID_MAX;
    for (size_t i = 0; ok && i < len; i++)
        ok = v[i] >= 0x20 && v[i] < 0x7f;
    if (!ok) {
        http_resp_error(resp, 400, "invalid_request",
                        "X-Request-ID must appear once, 1 to 128 printable ASCII characters");
        return 0;
    }
    http_resp_header(resp, "X-Request-ID", "%s", v);
    return 1;
}

/* The challenge every 401 carries (RFC 6750 3). */
static void challenge(struct http_resp *resp)
{
    http_resp_header(resp, "WWW-Authenticate", "Bearer realm=\"ztb\"");
}

/*
 * Authenticate the caller: the Authorization header "Bearer CREDENTIAL"
 * (a session credential "ztbs_..." or a client assertion JWT), else the
 * TLS client certificate. 1 and *id, or 0 with resp filled (401 with the
 * challenge, 400 for a repeated header, 403 for a quarantined agent, 503).
 */
static int authenticate(const struct http_req *req, struct http_resp *resp, int64_t now,
                        struct client_identity *id)
{
    const char *h = NULL;
    int n = http_req_header_once(req, "Authorization", &h);
    if (n < 0) {
        http_resp_error(resp, 400, "invalid_request", "one Authorization header at most");
        return 0;
    }
    const char *type = NULL, *cred = NULL;
    if (n > 0) {
        if (ztb_wire_authorization_read(h, &cred, NULL) != ZTB_SCHEME_BEARER) {
            challenge(resp);
            http_resp_error(resp, 401, "invalid_client",
                            "Authorization must be \"Bearer\" and one ztb session credential or "
                            "client assertion (or present a TLS client certificate)");
            return 0;
        }
        type = strncmp(cred, "ztbs_", 5) == 0 ? CLIENT_ASSERTION_TYPE_SESSION
                                              : CLIENT_ASSERTION_TYPE_JWT;
    }
    if (client_auth(req, type, cred, now, CLIENT_AUTH_SESSION_OK, id, resp) != ZTB_OK) {
        if (resp->status == 401)
            challenge(resp);
        return 0;
    }
    if (id->quarantined) {
        http_resp_error_as(resp, 403, "access_denied", ZTB_ERR_QUARANTINED,
                           "the agent is quarantined: it may not ask for decisions");
        return 0;
    }
    return 1;
}

/* 1 if the caller may evaluate on every audience r asks about; else 0 with
 * resp filled (403) and the refusal audited. */
static int caller_allowed(const struct broker *b, const struct http_req *req,
                          const struct client_identity *id, const struct authzen_req *r,
                          int64_t now, struct http_resp *resp)
{
    policy_ip ip;
    http_req_peer_ip(req, &ip.family, ip.addr);
    for (size_t i = 0; i < r->n; i++) {
        const char *aud = r->ev[i].audience;
        int seen = 0;
        for (size_t j = 0; j < i && !seen; j++)
            seen = strcmp(r->ev[j].audience, aud) == 0;
        if (seen || caller_policy_allows(b, id->agent, AUTHZEN_EVALUATE_ACTION, aud, &ip, now))
            continue;
        char actor[96], msg[400];
        snprintf(actor, sizeof(actor), "agent:%s", id->agent);
        audit("authzen.refused", actor, 0, ZTB_F_STR("agent", id->agent),
              ZTB_F_STR("audience", aud), ZTB_F_STR("reason", "no " AUTHZEN_EVALUATE_ACTION));
        snprintf(msg, sizeof(msg),
                 "policy does not allow the caller " AUTHZEN_EVALUATE_ACTION " on the audience "
                 "\"%.255s\"",
                 aud);
        http_resp_error(resp, 403, "access_denied", msg);
        return 0;
    }
    return 1;
}

/* The subject's state in Redis as a deny reason, NULL when it may act.
 * *approval: a signal put the agent under "require approval". */
static const char *subject_state(const char *agent, const struct authzen_eval *e, int *approval,
                                 ztb_err *rv)
{
    struct store_expect any = {.generation = -1, .epoch = -1};
    struct store_check chk;
    *approval = 0;
    /* charge 1 with no rates: the quarantine and audience checks, and no
     * bucket is read or written */
    *rv = store_issue_check(agent, &any, 1, e->action, e->audience, NULL, NULL, &chk);
    if (*rv == ZTB_ERR_UNAVAILABLE)
        return NULL;
    if (*rv != ZTB_OK)
        return "invalid_request"; /* names too long for a key */
    *approval = chk.approval_required;
    switch (chk.verdict) {
    case STORE_OK: return NULL;
    case STORE_DISABLED: return "subject_disabled";
    case STORE_STALE_IDENTITY: return "subject_not_enrolled";
    case STORE_QUARANTINED: return "subject_quarantined";
    case STORE_AUDIENCE_KILLED: return "audience_disabled";
    default: return "unknown_subject";
    }
}

/* Decide e into *o. UNAVAILABLE when Redis cannot answer (the request is
 * then refused whole: fail closed); OK otherwise. */
static ztb_err evaluate(const struct broker *b, const policy *pol, const struct authzen_eval *e,
                        int64_t now, struct outcome *o)
{
    memset(o, 0, sizeof(*o));
    char agent[STORE_NAME_MAX + 1];
    if (!authzen_subject_agent(e, b->cfg.trust_domain, agent, sizeof(agent), &o->reason) ||
        !store_agent_name_ok(agent)) {
        o->reason = o->reason != NULL ? o->reason : "unknown_subject";
        snprintf(o->admin, sizeof(o->admin),
                 "the subject must be {\"type\": \"agent\", \"id\": NAME or SPIFFE ID} of an "
                 "agent of trust domain %s",
                 b->cfg.trust_domain);
        return ZTB_OK;
    }
    if (strncmp(e->action, POLICY_RESERVED_SERVICE ":", sizeof(POLICY_RESERVED_SERVICE)) == 0) {
        o->reason = "reserved_action";
        snprintf(o->admin, sizeof(o->admin), "the service \"ztb\" is the broker's own");
        return ZTB_OK;
    }
    int approval = 0;
    ztb_err rv = ZTB_OK;
    const char *why = subject_state(agent, e, &approval, &rv);
    if (rv == ZTB_ERR_UNAVAILABLE)
        return rv;
    if (why != NULL) {
        o->reason = why;
        snprintf(o->admin, sizeof(o->admin), "the agent's state in the broker: %s", why);
        return ZTB_OK;
    }
    policy_request pr = {
        .agent = agent,
        .action = e->action,
        .audience = e->audience,
        .resource = e->resource,
        .ctx = {.now = now, .source = e->source, .authorization_details = e->details}};
    policy_decision d;
    if (policy_eval(pol, &pr, &d) != ZTB_OK) {
        o->reason = "invalid_request";
        return ZTB_OK;
    }
    ztb_buf buf;
    ztb_buf_init_fixed(&buf, o->admin, sizeof(o->admin));
    (void)policy_decision_describe(&d, &buf);
    (void)ztb_buf_cstr(&buf);
    o->rule = d.rule;
    o->reason = authzen_policy_reason(&d);
    if (o->reason == NULL && approval) {
        o->reason = "approval_required";
        snprintf(o->admin, sizeof(o->admin), "a signal response put the agent under approval");
    }
    if (o->reason != NULL)
        return ZTB_OK;
    o->permit = 1;
    o->reason = "allowed";
    o->ttl = d.ob.ttl;
    o->binding = d.ob.binding != POLICY_BINDING_NONE
                     ? policy_binding_name((policy_binding)d.ob.binding)
                     : NULL;
    return ZTB_OK;
}

static void audit_outcome(const struct client_identity *id, const struct authzen_eval *e,
                          const struct outcome *o)
{
    char actor[96];
    snprintf(actor, sizeof(actor), "agent:%s", id->agent);
    audit("authzen.decision", actor, 0, ZTB_F_STR("caller", id->agent),
          ZTB_F_STR("agent", e->subject_id), ZTB_F_STR("action", e->action),
          ZTB_F_STR("audience", e->audience), ZTB_F_STR("resource", e->resource),
          ZTB_F_STR("decision", o->permit ? "permit" : "deny"), ZTB_F_STR("reason", o->reason),
          ZTB_F_STR("rule", o->rule));
}

static void unavailable(struct http_resp *resp)
{
    http_resp_error(resp, 503, "temporarily_unavailable", "Redis is not answering");
    http_resp_header(resp, "Retry-After", "1");
}

static void serve(struct http_req *req, struct http_resp *resp, int batch)
{
    int64_t now = (int64_t)time(NULL);
    const struct broker *b = broker_of(req);
    if (!request_id(req, resp))
        return;
    if (req->body_len > AUTHZEN_BODY_MAX) {
        http_resp_error(resp, 413, "invalid_request", "a request body is at most 16384 bytes");
        return;
    }
    struct client_identity id;
    if (!authenticate(req, resp, now, &id))
        return;
    if (!http_req_content_type_is(req, "application/json")) {
        http_resp_error(resp, 415, "invalid_request", "Content-Type must be application/json");
        return;
    }
    struct authzen_req r;
    char why[300];
    if (authzen_parse(req->body, req->body_len, batch, &r, why, sizeof(why)) != ZTB_OK) {
        http_resp_error(resp, 400, "invalid_request", why);
        return;
    }
    if (!caller_allowed(b, req, &id, &r, now, resp)) {
        authzen_req_free(&r);
        return;
    }
    policy *pol = b->policy ? policy_holder_acquire(b->policy) : NULL;
    if (pol == NULL) {
        authzen_req_free(&r);
        http_resp_error(resp, 503, "temporarily_unavailable", "no policy loaded");
        return;
    }
    json_t *list = json_array();
    json_t *one = NULL;
    ztb_err rv = ZTB_OK;
    for (size_t i = 0; i < r.n && rv == ZTB_OK; i++) {
        struct outcome o;
        rv = evaluate(b, pol, &r.ev[i], now, &o);
        if (rv != ZTB_OK)
            break;
        audit_outcome(&id, &r.ev[i], &o);
        json_t *d = authzen_decision_json(o.permit, o.reason, o.admin[0] ? o.admin : NULL, o.ttl,
                                          o.binding);
        if (!r.batch)
            one = d;
        else
            json_array_append_new(list, d);
        if ((r.semantic == AUTHZEN_DENY_ON_FIRST_DENY && !o.permit) ||
            (r.semantic == AUTHZEN_PERMIT_ON_FIRST_PERMIT && o.permit))
            break;
    }
    policy_holder_release(pol);
    authzen_req_free(&r);
    if (rv != ZTB_OK) {
        json_decref(list);
        json_decref(one);
        unavailable(resp);
        return;
    }
    json_t *body = NULL;
    if (one != NULL) {
        json_decref(list);
        body = one;
    } else {
        body = json_pack("{s:o}", "evaluations", list);
    }
    if (body == NULL) {
        http_resp_error(resp, 500, "server_error", "cannot render the decision");
        return;
    }
    http_resp_json_value(resp, 200, body);
    http_resp_header(resp, "Cache-Control", "no-store");
}

void handle_authzen_evaluation(struct http_req *req, struct http_resp *resp)
{
    serve(req, resp, 0);
}

void handle_authzen_evaluations(struct http_req *req, struct http_resp *resp)
{
    serve(req, resp, 1);
}

/*
 * The PDP metadata (AuthZEN 1.0 9): the issuer is the PDP identifier, and
 * only the endpoints ztb serves are named (no search endpoints).
 */
void handle_authzen_configuration(struct http_req *req, struct http_resp *resp)
{
    const struct broker *b = broker_of(req);
    char one[300], many[300];
    snprintf(one, sizeof(one), "%s/access/v1/evaluation", b->issuer);
    snprintf(many, sizeof(many), "%s/access/v1/evaluations", b->issuer);
    json_t *j = json_pack("{s:s,s:s,s:s}", "policy_decision_point", b->issuer,
                          "access_evaluation_endpoint", one, "access_evaluations_endpoint", many);
    if (j == NULL) {
        http_resp_error(resp, 500, "server_error", "cannot render the metadata");
        return;
    }
    http_resp_json_value(resp, 200, j);
    http_resp_header(resp, "Cache-Control", "public, max-age=3600");
}
