/*
 * authorize.c - /v1/authorize, the decision endpoint for gateways (see
 * authorize.h; the route table is route_table.c).
 *
 * How it works, cheapest and least revealing first: the caller must be on
 * loopback; the original method and URI are read in either form, and only
 * through route_check_original (GET /v1/authorize with X-Original-Method and
 * X-Original-URI, or the prefix form <method> /v1/authorize/<path> with
 * the raw target as sent, never decoded), carry no method override naming
 * another method (route_override_ok, else 403), and must match a
 * route (else 403, nothing else read); from there on both forms take one
 * path; the Authorization header must be
 * there once, "Bearer" or "DPoP" (any case) and one token; the token is
 * verified on the one path (introspect_verify: our signature with the key
 * the kid names and its pinned algorithm, typ, the strict claims, issuer,
 * times); then held to the route: audience, a binding this endpoint can
 * check (cnf.jkt with a DPoP proof for the ORIGINAL method and the table's
 * origin + path; cnf x5t#S256 never), action, resource; the proof's jti is
 * remembered (ztb:dpop:<jkt>:<jti>, shared with SDK verifiers); last, one
 * Redis round trip reads the revocation state and consumes a single-use
 * token (introspect_state), so a refusal never uses a token up.
 *
 * Each decision about one of our tokens is an audit line; refusals of
 * anything else (no token, a forgery, a malformed request) are only counted
 * on /metrics, as for every unauthenticated request.
 *
 * Must never: answer 200 without the revocation state, consume a token the
 * request was refused for, put anything but checked printable claims into a
 * header, or log a token or a proof.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "broker/audit/audit.h"
#include "broker/broker.h"
#include "broker/http/metrics.h"
#include "broker/signals/detectors.h"
#include "broker/store/store_rev.h"
#include "broker/tokens/authorize.h"
#include "broker/tokens/introspect.h"
#include "wire/authorization.h"
#include "wire/route_table.h"
#include <ztb/resource.h>
#include "common/guard.h"
#include "common/secret.h"
#include "pki/dpop.h"
#include "wire/wire.h"

#define DPOP_MAX_AGE_S 60 /* as at /v1/token */
#define DPOP_SKEW_S    5

enum scheme { SCHEME_NONE, SCHEME_BEARER, SCHEME_DPOP };

/* The challenge for a refusal (RFC 6750 §3, RFC 9449 §7.1): the scheme the
 * request used (both when it used none), the error and its description. */
static void challenge(struct http_resp *resp, const char *rm_url, enum scheme s, const char *error,
                      const char *desc, const char *scope)
{
    /* room for the longest: a table's action as the scope (ROUTE_NAME_MAX),
     * the longest description and the quoting; the whole header still fits
     * http_resp's 1024 bytes, so a challenge is never cut short */
    char extra[ROUTE_NAME_MAX + 256] = "", rm[ROUTE_ORIGIN_MAX + 80] = "";
    if (error != NULL)
        snprintf(extra, sizeof(extra), ", error=\"%s\", error_description=\"%s\"%s%s%s", error,
                 desc, scope ? ", scope=\"" : "", scope ? scope : "", scope ? "\"" : "");
    if (rm_url[0] != '\0') /* RFC 9728 §5.1 */
        snprintf(rm, sizeof(rm), ", resource_metadata=\"%s\"", rm_url);
    if (s == SCHEME_DPOP)
        http_resp_header(resp, "WWW-Authenticate", "DPoP realm=\"ztb\"%s, algs=\"ES256\"%s", extra,
                         rm);
    else if (s == SCHEME_BEARER || error != NULL)
        http_resp_header(resp, "WWW-Authenticate", "Bearer realm=\"ztb\"%s%s", extra, rm);
    else
        http_resp_header(resp, "WWW-Authenticate",
                         "Bearer realm=\"ztb\"%s, DPoP realm=\"ztb\", algs=\"ES256\"%s", rm, rm);
}

/* 401/403/400 with the challenge and the JSON error body. */
static void refuse(struct http_resp *resp, const char *rm_url, unsigned status, enum scheme s,
                   const char *error, ztb_err err, const char *desc, const char *scope)
{
    challenge(resp, rm_url, s, error, desc, scope);
    http_resp_error_as(resp, status, error, err, desc);
}

/* 1 if the peer is a loopback address (127.0.0.0/8, ::1, ::ffff:127.x). */
static int peer_is_loopback(const struct http_req *req)
{
    uint8_t fam = 0, a[16];
    http_req_peer_ip(req, &fam, a);
    static const uint8_t v6_loop[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    static const uint8_t v4_mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (fam == 4)
        return a[0] == 127;
    if (fam == 6)
        return memcmp(a, v6_loop, 16) == 0 || (memcmp(a, v4_mapped, 12) == 0 && a[12] == 127);
    return 0;
}

/* The scheme and token of the Authorization header (wire/authorization.h). */
static enum scheme read_authorization(const char *h, const char **tok, size_t *len)
{
    switch (ztb_wire_authorization_read(h, tok, len)) {
    case ZTB_SCHEME_BEARER: return SCHEME_BEARER;
    case ZTB_SCHEME_DPOP: return SCHEME_DPOP;
    default: return SCHEME_NONE;
    }
}

/* The error code and status a verification or revocation failure gets. */
static const char *token_problem(ztb_err rv)
{
    switch (rv) {
    case ZTB_ERR_EXPIRED: return "the token has expired";
    case ZTB_ERR_NOT_YET_VALID:
    case ZTB_ERR_IAT: return "the token is not valid yet";
    case ZTB_ERR_ISSUER: return "the token is not from this broker";
    case ZTB_ERR_REVOKED: return "the token was revoked";
    case ZTB_ERR_AGENT_REVOKED: return "the agent's tokens were revoked";
    case ZTB_ERR_AUDIENCE_KILLED: return "the audience is disabled";
    case ZTB_ERR_KEY_TAINTED: return "the signing key was withdrawn";
    case ZTB_ERR_REPLAY: return "the single-use token was already used";
    default: return "the token is not a valid token of this broker";
    }
}

/*
 * Count a caller refused for carrying no ztb token or one that is not ours
 * (detect_unknown_client: the inventory's unknown clients, shadow_ai). Its
 * source is what the gateway on loopback says: X-Ztb-Source (a label), else
 * X-Real-IP, else "unknown"; a malformed one is counted as "invalid".
 */
static void unknown_caller(const struct http_req *req, const char *reason)
{
    const char *src = NULL;
    if (http_req_header_once(req, "X-Ztb-Source", &src) != 1 &&
        http_req_header_once(req, "X-Real-IP", &src) != 1)
        src = "unknown";
    detect_unknown_client(reason, src);
}

struct decision {
    const char *method, *uri;
    struct route_need need;
    char rm[ROUTE_ORIGIN_MAX + 48]; /* RFC 9728 resource_metadata of the table's origin, or "" */
    enum scheme scheme;
    const char *tok;
    size_t tok_len;
};

/* Read the request: caller, original method/URI, route, token. 1 to go on,
 * 0 with resp filled. */
static int read_request(struct http_req *req, struct http_resp *resp, struct decision *d)
{
    const struct broker *b = broker_of(req);
    if (b->authz_routes == NULL) {
        http_resp_error(resp, 404, "invalid_request",
                        "no route table: set authorize_routes (docs/gateways.md)");
        return 0;
    }
    if (!peer_is_loopback(req)) {
        http_resp_error(resp, 403, "access_denied",
                        "/v1/authorize answers gateways on the broker's host only (loopback)");
        return 0;
    }
    /* the original request: the two headers, or the prefix form's own
     * method and raw path (route_check_original, shared with ztb-authz) */
    const char *hm = NULL, *hu = NULL, *why = NULL;
    int nm = http_req_header_once(req, b->cfg.authorize_method_header, &hm);
    int nu = http_req_header_once(req, b->cfg.authorize_uri_header, &hu);
    struct route_check orig;
    if (route_check_original(req->method, req->target, hm, nm < 0 ? 2 : nm, hu, nu < 0 ? 2 : nu,
                             &orig, &why) != ZTB_OK) {
        http_resp_error(resp, 400, "invalid_request", why);
        return 0;
    }
    int nov = 0;
    const char *ov = NULL;
    for (const char *const *name = route_override_headers; *name != NULL; name++) {
        const char *v = NULL;
        int n = http_req_header_once(req, *name, &v);
        nov += n < 0 ? 2 : n;
        if (n == 1)
            ov = v;
    }
    if (!route_override_ok(&orig, nov, ov)) {
        /* the backend may run the overriding method, not the one authorized */
        http_resp_error(resp, 403, "access_denied",
                        "a method override (an X-HTTP-Method-Override, X-HTTP-Method or "
                        "X-Method-Override header, a _method query parameter) names another "
                        "method than the original one");
        return 0;
    }
    d->method = orig.method;
    d->uri = orig.uri;
    int matched = route_holder_match(b->authz_routes, d->method, d->uri, &d->need) == ZTB_OK;
    /* the table's origin is the protected resource (as ztb-authz's default) */
    char origin[ROUTE_ORIGIN_MAX];
    route_holder_origin(b->authz_routes, origin, sizeof(origin));
    if (origin[0] != '\0' && ztb_resource_metadata_url(origin, d->rm, sizeof(d->rm)) != ZTB_OK)
        d->rm[0] = '\0';
    if (!matched) {
        refuse(resp, d->rm, 403, SCHEME_NONE, "insufficient_scope", ZTB_ERR_ACCESS_DENIED,
               "no route of the table allows this method and path", NULL);
        return 0;
    }
    const char *h = NULL;
    int n = http_req_header_once(req, "Authorization", &h);
    if (n == 0) {
        unknown_caller(req, "no_token");
        challenge(resp, d->rm, SCHEME_NONE, NULL, NULL, NULL); /* RFC 6750 §3.1: no error code */
        http_resp_error_as(resp, 401, "invalid_token", ZTB_ERR_INVALID_REQUEST,
                           "no access token (Authorization: Bearer or DPoP)");
        return 0;
    }
    d->scheme = n == 1 ? read_authorization(h, &d->tok, &d->tok_len) : SCHEME_NONE;
    if (d->scheme == SCHEME_NONE) {
        if (n == 1) /* Basic, an API key scheme...: no ztb token (as ztb-authz counts it) */
            unknown_caller(req, "no_token");
        refuse(resp, d->rm, 400, SCHEME_NONE, "invalid_request", ZTB_ERR_INVALID_REQUEST,
               "one Authorization header: Bearer or DPoP and one token", NULL);
        return 0;
    }
    return 1;
}

/* The DPoP binding: the token's cnf.jkt must be the key of a fresh proof
 * for the original request. OK, or the refusal already in resp. */
static ztb_err check_binding(struct http_req *req, struct http_resp *resp, struct decision *d,
                             const struct introspected *t, int64_t now)
{
    const char *jkt = claims_str(&t->tok.c, CL_JKT);
    if (t->tok.c.cnf_unknown || claims_str(&t->tok.c, CL_X5T) != NULL) {
        refuse(resp, d->rm, 401, d->scheme, "invalid_token", ZTB_ERR_BINDING,
               "the token is bound to a TLS client certificate: present it to the audience "
               "directly",
               NULL);
        return ZTB_ERR_BINDING;
    }
    if (jkt == NULL) {
        if (d->scheme == SCHEME_DPOP) {
            refuse(resp, d->rm, 401, d->scheme, "invalid_token", ZTB_ERR_BINDING,
                   "not a DPoP-bound token: use the Bearer scheme", NULL);
            return ZTB_ERR_BINDING;
        }
        return ZTB_OK;
    }
    if (d->scheme != SCHEME_DPOP) { /* RFC 9449 §7.2 */
        refuse(resp, d->rm, 401, SCHEME_DPOP, "invalid_token", ZTB_ERR_BINDING,
               "a DPoP-bound token needs the DPoP scheme and a proof", NULL);
        return ZTB_ERR_BINDING;
    }
    const char *proof = NULL;
    char htu[ROUTE_ORIGIN_MAX + ROUTE_PATH_MAX + 1];
    const char *q = strchr(d->uri, '?');
    int plen = q != NULL ? (int)(q - d->uri) : (int)strlen(d->uri);
    ztb_dpop_result r;
    ztb_err rv = ZTB_ERR_DPOP;
    if (http_req_header_once(req, "DPoP", &proof) == 1 && d->need.origin[0] != '\0' &&
        (size_t)snprintf(htu, sizeof(htu), "%s%.*s", d->need.origin, plen, d->uri) < sizeof(htu))
        rv = ztb_dpop_proof_check(proof, strlen(proof), d->method, htu, d->tok, now, DPOP_MAX_AGE_S,
                                  DPOP_SKEW_S, &r);
    if (rv != ZTB_OK) {
        refuse(resp, d->rm, 401, SCHEME_DPOP, "invalid_dpop_proof", ZTB_ERR_DPOP,
               d->need.origin[0] == '\0'
                   ? "DPoP-bound tokens need an origin in the route table"
                   : "one DPoP proof for this method and URL, signed by the token's key",
               NULL);
        return rv;
    }
    if (!ztb_ct_eq_len(r.jkt, strlen(r.jkt), jkt, strlen(jkt))) {
        refuse(resp, d->rm, 401, SCHEME_DPOP, "invalid_token", ZTB_ERR_BINDING,
               "the DPoP proof is not signed by the key the token is bound to", NULL);
        return ZTB_ERR_BINDING;
    }
    rv = store_dpop_remember(r.jkt, r.jti,
                             ztb_wire_dpop_keep_ms(r.iat, ZTB_WIRE_DPOP_MAX_AGE_S, now));
    if (rv == ZTB_ERR_DPOP_REPLAY)
        refuse(resp, d->rm, 401, SCHEME_DPOP, "invalid_dpop_proof", ZTB_ERR_DPOP_REPLAY,
               "the DPoP proof was used before", NULL);
    else if (rv != ZTB_OK)
        refuse(resp, d->rm, rv == ZTB_ERR_UNAVAILABLE ? 503 : 401, SCHEME_DPOP,
               "invalid_dpop_proof", rv, "the DPoP proof cannot be recorded", NULL);
    return rv;
}

/* The token held to the route. OK, or resp filled. */
static ztb_err check_token(struct http_req *req, struct http_resp *resp, struct decision *d,
                           struct introspected *t, int64_t now)
{
    ztb_err rv = introspect_verify(d->tok, d->tok_len, broker_of(req)->issuer, now, t);
    if (rv != ZTB_OK) {
        refuse(resp, d->rm, 401, d->scheme, "invalid_token", rv, token_problem(rv), NULL);
        return rv;
    }
    if (strcmp(t->aud, d->need.audience) != 0) {
        refuse(resp, d->rm, 401, d->scheme, "invalid_token", ZTB_ERR_AUDIENCE,
               "the token is for another audience", NULL);
        return ZTB_ERR_AUDIENCE;
    }
    ZTB_GUARD(check_binding(req, resp, d, t, now));
    const char *scope = claims_str(&t->tok.c, CL_SCOPE);
    const char *res = claims_str(&t->tok.c, CL_RESOURCE);
    if (scope == NULL || strcmp(scope, d->need.action) != 0) {
        refuse(resp, d->rm, 403, d->scheme, "insufficient_scope", ZTB_ERR_ACTION,
               "the token is for another action", d->need.action);
        return ZTB_ERR_ACTION;
    }
    if (strcmp(res != NULL ? res : "", d->need.resource) != 0) {
        refuse(resp, d->rm, 403, d->scheme, "insufficient_scope", ZTB_ERR_RESOURCE,
               "the token is for another resource", d->need.action);
        return ZTB_ERR_RESOURCE;
    }
    rv = introspect_state(t, now, 1);
    if (rv == ZTB_ERR_UNAVAILABLE) {
        http_resp_error(resp, 503, "temporarily_unavailable", "Redis is not answering");
        http_resp_header(resp, "Retry-After", "1");
    } else if (rv != ZTB_OK) {
        refuse(resp, d->rm, 401, d->scheme, "invalid_token", rv, token_problem(rv), NULL);
    }
    return rv;
}

void handle_authorize(struct http_req *req, struct http_resp *resp)
{
    int64_t now = (int64_t)time(NULL);
    struct decision d;
    memset(&d, 0, sizeof(d));
    if (!read_request(req, resp, &d)) {
        if (resp->status == 400 || resp->status == 401)
            metrics_refused(req->path,
                            resp->status == 400 ? REFUSED_INVALID_REQUEST : REFUSED_INVALID_CLIENT);
        return;
    }
    struct introspected t;
    ztb_err rv = check_token(req, resp, &d, &t, now);
    const char *jti = t.valid ? t.jti : NULL;
    if (rv != ZTB_OK && !t.valid) {
        /* not one of our tokens: anyone can send those, so they are counted
         * (ztb_requests_refused_total), never audited one by one */
        metrics_refused(req->path,
                        rv == ZTB_ERR_UNAVAILABLE ? REFUSED_UNAVAILABLE : REFUSED_INVALID_CLIENT);
        if (rv != ZTB_ERR_UNAVAILABLE && rv != ZTB_ERR_EXPIRED && rv != ZTB_ERR_NOT_YET_VALID &&
            rv != ZTB_ERR_IAT)
            unknown_caller(req, "foreign_token"); /* ours would have verified */
        return;
    }
    if (rv != ZTB_OK) {
        audit("authorize.refused", "gateway", 0, ZTB_F_STR("agent", t.agent),
              ZTB_F_STR("method", d.method), ZTB_F_STR("audience", d.need.audience),
              ZTB_F_STR("action", d.need.action), ZTB_F_STR("resource", d.need.resource),
              ZTB_F_STR("jti", jti), ZTB_F_STR("reason", ztb_err_name(rv)));
        introspected_free(&t);
        return;
    }
    const char *act = claims_str(&t.tok.c, CL_ACT_SUB);
    /* claims are printable (wire/claims.h); a header is never cut short */
    if (strlen(t.sub) >= sizeof(resp->hdr_value[0]) ||
        (act != NULL && strlen(act) >= sizeof(resp->hdr_value[0])) ||
        strlen(d.need.resource) >= sizeof(resp->hdr_value[0])) {
        http_resp_error(resp, 500, "server_error", "an identity is too long for a header");
        introspected_free(&t);
        return;
    }
    http_resp_header(resp, "X-Ztb-Subject", "%s", t.sub);
    http_resp_header(resp, "X-Ztb-Agent", "%s", t.agent);
    http_resp_header(resp, "X-Ztb-Action", "%s", d.need.action);
    http_resp_header(resp, "X-Ztb-Resource", "%s", d.need.resource);
    http_resp_header(resp, "X-Ztb-Jti", "%s", t.jti);
    if (act != NULL)
        http_resp_header(resp, "X-Ztb-Actor", "%s", act);
    http_resp_header(resp, "Cache-Control", "no-store");
    http_resp_json(resp, 200, "{\"allowed\":true}");
    audit("authorize.allowed", "gateway", 0, ZTB_F_STR("agent", t.agent),
          ZTB_F_STR("method", d.method), ZTB_F_STR("audience", d.need.audience),
          ZTB_F_STR("action", d.need.action), ZTB_F_STR("resource", d.need.resource),
          ZTB_F_STR("jti", t.jti), ZTB_F_BOOL("single_use", t.single_use), ZTB_F_STR("actor", act));
    introspected_free(&t);
}
