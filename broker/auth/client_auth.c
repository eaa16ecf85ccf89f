/*
 * client_auth.c - authenticate agents (see client_auth.h).
 *
 * An assertion's payload is read before its signature is checked only to
 * learn which agent claims to have signed it (iss); nothing else in it is
 * believed until the signature verified with that agent's enrolled key. Both
 * reads go through the strict reader (broker/auth/assertion.c), never jansson.
 */
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>

#include "broker/auth/assertion.h"
#include "broker/auth/client_auth.h"
#include "broker/signals/detectors.h"
#include "broker/http/metrics.h"
#include "broker/auth/mtls.h"
#include "broker/auth/session.h"
#include "common/base64url.h"
#include "common/guard.h"
#include "common/log.h"
#include "common/log_sample.h"
#include "pki/jwk.h"
#include "pki/jws.h"
#include "pki/spiffe.h"

#define ASSERTION_MAX      4096
#define ASSERTION_MAX_LIFE 60
#define ASSERTION_SKEW     30
#define ASSERTION_TYP      "JWT" /* header typ, docs/protocol.md */
/* draft-ietf-oauth-rfc7523bis: an explicitly typed client assertion, whose
 * only acceptable audience is the issuer identifier */
#define ASSERTION_TYP_CLIENT_AUTH "client-authentication+jwt"

/* Replayed assertions: logged at a bounded rate (common/log_sample.h). */
static struct ztb_log_sampler replay_log = ZTB_LOG_SAMPLER_INIT(10, 10);

static char g_issuer[256];
static char g_token_endpoint[300];
static char g_trust_domain[256];

void client_auth_set_issuer(const char *issuer)
{
    snprintf(g_issuer, sizeof(g_issuer), "%s", issuer);
    snprintf(g_token_endpoint, sizeof(g_token_endpoint), "%s/v1/token", issuer);
}

const char *client_auth_token_endpoint(void)
{
    return g_token_endpoint;
}

void client_auth_set_trust_domain(const char *td)
{
    snprintf(g_trust_domain, sizeof(g_trust_domain), "%s", td);
}

static ztb_err refuse(struct http_resp *resp, ztb_err rv, const char *why)
{
    if (rv == ZTB_ERR_UNAVAILABLE) {
        http_resp_error(resp, 503, "temporarily_unavailable",
                        "Redis or the signer is not answering");
        http_resp_header(resp, "Retry-After", "1");
        return rv;
    }
    http_resp_error(resp, 401, "invalid_client", why);
    return ZTB_ERR_INVALID_CLIENT;
}

/* The agent an assertion claims to come from, read from its unverified iss
 * with the strict reader (nothing else in it is believed yet). */
static ztb_err claimed_agent(const char *tok, size_t len, char *agent, size_t cap, const char **why)
{
    const char *d1 = memchr(tok, '.', len);
    ZTB_ENSURE(d1 != NULL, ZTB_ERR_JWS_FORMAT);
    const char *p = d1 + 1;
    const char *d2 = memchr(p, '.', len - (size_t)(p - tok));
    ZTB_ENSURE(d2 != NULL, ZTB_ERR_JWS_FORMAT);
    uint8_t payload[ASSERTION_MAX];
    size_t n;
    ZTB_ENSURE(ztb_b64url_decode(p, (size_t)(d2 - p), payload, sizeof(payload), &n) == ZTB_OK,
               ZTB_ERR_JWS_FORMAT);
    struct assertion_claims c;
    ZTB_GUARD(assertion_claims_read(payload, n, &c, why));
    ZTB_ENSURE(c.has_iss, ZTB_ERR_CLAIMS);
    return ztb_spiffe_parse_agent(c.iss, strlen(c.iss), g_trust_domain, agent, cap);
}

/*
 * 1 if every aud value names this server (RFC 7523 3, draft-ietf-oauth-
 * rfc7523bis): our issuer identifier, our token endpoint, or the URL of the
 * endpoint called (endpoint, NULL if unknown); for an assertion typed
 * client-authentication+jwt only the issuer, as its one value. A value
 * naming anyone else refuses the whole assertion, even beside ours: it was
 * also meant for (or planted by) another server.
 */
static int aud_names_us(const struct assertion_claims *c, const char *endpoint, int typed)
{
    if (!c->has_aud || c->naud < 1)
        return 0;
    if (typed)
        return c->naud == 1 && strcmp(c->aud[0], g_issuer) == 0;
    for (int i = 0; i < c->naud; i++) {
        const char *a = c->aud[i];
        if (strcmp(a, g_issuer) != 0 && strcmp(a, g_token_endpoint) != 0 &&
            (endpoint == NULL || strcmp(a, endpoint) != 0))
            return 0;
    }
    return 1;
}

static ztb_err check_claims(const struct assertion_claims *c, const char *spiffe, int64_t now,
                            int64_t identity_exp, const char *endpoint, int typed, const char **why)
{
    *why = "assertion iss and sub must be the agent's SPIFFE ID";
    ZTB_ENSURE(c->has_iss && c->has_sub && strcmp(c->iss, spiffe) == 0 &&
                   strcmp(c->sub, spiffe) == 0,
               ZTB_ERR_CLAIMS);
    *why = typed ? "assertion aud must be the issuer identifier (one value)"
                 : "assertion aud must name this broker: its issuer identifier, token endpoint "
                   "or the endpoint called";
    ZTB_ENSURE(aud_names_us(c, endpoint, typed), ZTB_ERR_AUDIENCE);
    *why = "assertion needs integer iat and exp, exp at most 60 s after iat";
    ZTB_ENSURE(c->has_exp && c->has_iat, ZTB_ERR_CLAIMS);
    int64_t e = c->exp, i = c->iat;
    ZTB_ENSURE(e > i && e - i <= ASSERTION_MAX_LIFE, ZTB_ERR_CLAIMS);
    *why = "assertion expired";
    ZTB_ENSURE(now < e + ASSERTION_SKEW, ZTB_ERR_EXPIRED);
    *why = "assertion iat is in the future";
    ZTB_ENSURE(i <= now + ASSERTION_SKEW, ZTB_ERR_IAT);
    /* RFC 7519 4.1.5, RFC 7523 3: not accepted before nbf */
    *why = "assertion nbf must be an integer not in the future";
    ZTB_ENSURE(!c->nbf_member || (c->has_nbf && c->nbf <= now + ASSERTION_SKEW),
               ZTB_ERR_NOT_YET_VALID);
    *why = "assertion jti must be 16 to 128 characters";
    ZTB_ENSURE(c->has_jti && strlen(c->jti) >= 16 && strlen(c->jti) <= 128, ZTB_ERR_CLAIMS);
    *why = "the agent's identity document has expired: renew or enroll again";
    ZTB_ENSURE(now < identity_exp, ZTB_ERR_EXPIRED);
    return ZTB_OK;
}

/*
 * Read the agent's state and check that it may authenticate at all: known,
 * active, holding a live identity. Fills sa; on failure fills resp.
 */
static ztb_err live_agent(const char *agent, struct store_agent_auth *sa, struct http_resp *resp)
{
    ztb_err rv = store_agent_auth_get(agent, sa);
    if (rv != ZTB_OK)
        return refuse(resp, rv, "unknown agent");
    if (strcmp(sa->status, "active") != 0)
        return refuse(resp, ZTB_ERR_STATE, "the agent is disabled");
    if (!sa->enrolled)
        return refuse(resp, ZTB_ERR_AGENT_REVOKED, CLIENT_AUTH_NOT_LIVE);
    return ZTB_OK;
}

/* The assertion tok of the agent it names, verified with the key of that
 * agent's current identity (sa). */
static ztb_err auth_assertion(const char *tok, const char *path, int64_t now,
                              struct client_identity *id, struct store_agent_auth *sa,
                              struct http_resp *resp)
{
    size_t len = strlen(tok);
    if (len > ASSERTION_MAX)
        return refuse(resp, ZTB_ERR_TOO_LARGE, "client assertion too large");
    char agent[ZTB_AGENT_NAME_MAX + 1]; /* what pki's parser needs; ours are shorter */
    const char *why = NULL;
    ztb_err rv = claimed_agent(tok, len, agent, sizeof(agent), &why);
    if ((rv == ZTB_ERR_JSON || rv == ZTB_ERR_TOO_LARGE) && why != NULL) {
        char msg[128];
        snprintf(msg, sizeof(msg), "client assertion claims are not a strict JSON object: %s", why);
        return refuse(resp, ZTB_ERR_INVALID_CLIENT, msg);
    }
    if (rv != ZTB_OK || !store_agent_name_ok(agent))
        return refuse(resp, ZTB_ERR_INVALID_CLIENT,
                      "client assertion iss is not an agent of this trust domain");
    rv = live_agent(agent, sa, resp);
    if (rv != ZTB_OK)
        return rv;
    ztb_key *k = NULL;
    if (ztb_jwk_parse(sa->jwk, strlen(sa->jwk), 0, &k) != ZTB_OK)
        return refuse(resp, ZTB_ERR_KEY, "the agent's enrolled key is unusable");
    char store_buf[ASSERTION_MAX];
    ztb_buf payload;
    ztb_buf_init_fixed(&payload, store_buf, sizeof(store_buf));
    ztb_jws_header hdr;
    rv = ztb_jws_verify_with_key(k, tok, len, NULL, &hdr, &payload);
    ztb_key_free(k);
    if (rv != ZTB_OK) {
        char msg[96];
        snprintf(msg, sizeof(msg), "client assertion refused: %s", ztb_strerror(rv));
        return refuse(resp, rv, msg);
    }
    /* explicit typing (RFC 8725 3.11): no other JWS the agent's key signs
     * (a DPoP proof, a SET) passes for an assertion */
    int typed = ztb_jws_header_typ_is(&hdr, ASSERTION_TYP_CLIENT_AUTH);
    if (!typed && !ztb_jws_header_typ_is(&hdr, ASSERTION_TYP))
        return refuse(resp, ZTB_ERR_JWS_HEADER,
                      "client assertion header typ must be \"" ASSERTION_TYP
                      "\" or \"" ASSERTION_TYP_CLIENT_AUTH "\"");
    struct assertion_claims c;
    if (assertion_claims_read(store_buf, payload.len, &c, &why) != ZTB_OK) {
        char msg[128];
        snprintf(msg, sizeof(msg), "client assertion claims are not a strict JSON object: %s", why);
        return refuse(resp, ZTB_ERR_JSON, msg);
    }
    char spiffe[400];
    snprintf(spiffe, sizeof(spiffe), "spiffe://%s/agent/%s", g_trust_domain, agent);
    char endpoint[sizeof(g_issuer) + 64];
    int have_endpoint =
        path != NULL && path[0] == '/' &&
        (size_t)snprintf(endpoint, sizeof(endpoint), "%s%s", g_issuer, path) < sizeof(endpoint);
    rv = check_claims(&c, spiffe, now, sa->identity_exp, have_endpoint ? endpoint : NULL, typed,
                      &why);
    if (rv != ZTB_OK)
        return refuse(resp, rv, why);
    int64_t ttl = c.exp + ASSERTION_SKEW - now;
    rv = store_assertion_seen(agent, c.jti, (uint64_t)(ttl > 0 ? ttl : 1) * 1000u);
    if (rv == ZTB_ERR_REPLAY) {
        /* Anyone holding a copy can replay it as fast as they can send: the
         * detector hears each one (and its signal is audited when it fires),
         * the wrapper below counts it, the log samples it. */
        detect_event(DETECT_ASSERTION_REPLAY, agent, NULL, NULL, NULL);
        ztb_log_sampled(&replay_log, ZTB_LOG_WARN, "auth.assertion_replay",
                        ZTB_F_STR("agent", agent));
        (void)refuse(resp, rv, "client assertion already used (jti replay)");
        return ZTB_ERR_REPLAY;
    }
    if (rv != ZTB_OK)
        return refuse(resp, rv, "cannot record the assertion");
    memcpy(id->agent, agent, strlen(agent) + 1); /* store_agent_name_ok: fits */
    id->method = CLIENT_AUTH_ASSERTION;
    return ZTB_OK;
}

/* The TLS client certificate, if one was presented: its chain verified (once
 * per connection) and, with state (not NULL), its thumbprint that of the
 * agent's current identity document. NOT_FOUND (resp untouched) if there is
 * none. */
static ztb_err auth_mtls(const struct http_req *req, int64_t now, struct client_identity *id,
                         struct store_agent_auth *state, struct http_resp *resp)
{
    struct mtls_identity m;
    ztb_err rv = mtls_identity(req, now, &m);
    if (rv == ZTB_ERR_NOT_FOUND)
        return rv;
    if (rv != ZTB_OK)
        return refuse(resp, rv, "the TLS client certificate is not a valid identity document");
    if (state != NULL) {
        rv = live_agent(m.agent, state, resp);
        if (rv != ZTB_OK)
            return rv;
        size_t n = strlen(m.x5t_s256);
        if (strlen(state->x5t) != n || CRYPTO_memcmp(state->x5t, m.x5t_s256, n) != 0)
            return refuse(resp, ZTB_ERR_CERT, CLIENT_AUTH_SUPERSEDED);
    }
    memcpy(id->agent, m.agent, sizeof(id->agent));
    memcpy(id->x5t_s256, m.x5t_s256, sizeof(id->x5t_s256));
    id->method = CLIENT_AUTH_MTLS;
    id->generation = -1; /* any: the identity must be live (store_issue_check) */
    id->epoch = -1;
    return ZTB_OK;
}

/* A session credential: authentic, unexpired and, with state (not NULL),
 * made in the agent's current generation and identity epoch. */
static ztb_err auth_session(const char *cred, int64_t now, struct client_identity *id,
                            struct store_agent_auth *state, struct http_resp *resp)
{
    struct session_claims sc;
    ztb_err rv = session_verify(cred, strlen(cred), now, &sc);
    if (rv == ZTB_ERR_EXPIRED)
        return refuse(resp, rv, "session expired: create a new one at /v1/session");
    if (rv != ZTB_OK)
        return refuse(resp, rv, "invalid session credential");
    if (state != NULL) {
        rv = live_agent(sc.agent, state, resp);
        if (rv != ZTB_OK)
            return rv;
        if (sc.generation != state->generation || sc.epoch != state->epoch)
            return refuse(resp, ZTB_ERR_AGENT_REVOKED, CLIENT_AUTH_SESSION_REVOKED);
    }
    memcpy(id->agent, sc.agent, sizeof(id->agent));
    id->method = CLIENT_AUTH_SESSION;
    id->generation = sc.generation;
    id->epoch = sc.epoch;
    return ZTB_OK;
}

static ztb_err authenticate(const struct http_req *req, const char *assertion_type,
                            const char *assertion, int64_t now, unsigned flags,
                            struct client_identity *id, struct http_resp *resp)
{
    memset(id, 0, sizeof(*id));
    struct store_agent_auth sa = {0};
    /* NULL: the caller checks the state (CLIENT_AUTH_STATE_LATER) */
    struct store_agent_auth *state = flags & CLIENT_AUTH_STATE_LATER ? NULL : &sa;
    ztb_err rv = ZTB_ERR_NOT_FOUND;
    if (assertion_type == NULL && assertion == NULL && req != NULL)
        rv = auth_mtls(req, now, id, state, resp);
    if (rv == ZTB_ERR_NOT_FOUND) {
        if (assertion_type == NULL || assertion == NULL)
            return refuse(resp, ZTB_ERR_INVALID_CLIENT,
                          "client authentication required (client_assertion_type and "
                          "client_assertion, or a TLS client certificate)");
        if (strcmp(assertion_type, CLIENT_ASSERTION_TYPE_SESSION) == 0) {
            if (!(flags & CLIENT_AUTH_SESSION_OK))
                return refuse(resp, ZTB_ERR_INVALID_CLIENT,
                              "a session credential cannot authenticate this request");
            rv = auth_session(assertion, now, id, state, resp);
        } else if (strcmp(assertion_type, CLIENT_ASSERTION_TYPE_JWT) == 0) {
            state = &sa; /* the key is in the state: always read */
            rv = auth_assertion(assertion, req != NULL ? req->path : NULL, now, id, state, resp);
        } else {
            return refuse(resp, ZTB_ERR_INVALID_CLIENT, "unsupported client_assertion_type");
        }
    }
    if (rv != ZTB_OK) {
        memset(id, 0, sizeof(*id));
        return rv;
    }
    if (state != NULL) {
        id->state_checked = 1;
        id->generation = state->generation;
        id->epoch = state->epoch;
        id->quarantined = state->quarantined;
    }
    return ZTB_OK;
}

ztb_err client_auth_client_id(const struct client_identity *id, const char *client_id,
                              struct http_resp *resp)
{
    if (client_id == NULL)
        return ZTB_OK;
    char spiffe[400];
    snprintf(spiffe, sizeof(spiffe), "spiffe://%s/agent/%s", g_trust_domain, id->agent);
    if (id->agent[0] != '\0' && strcmp(client_id, spiffe) == 0)
        return ZTB_OK;
    http_resp_error(resp, 401, "invalid_client",
                    "client_id must be the authenticated agent's SPIFFE ID (the assertion's sub)");
    return ZTB_ERR_INVALID_CLIENT;
}

void client_auth_expect(const struct client_identity *id, struct store_expect *e)
{
    memset(e, 0, sizeof(*e));
    e->generation = id->generation;
    e->epoch = id->epoch;
    e->x5t = id->method == CLIENT_AUTH_MTLS ? id->x5t_s256 : NULL;
}

/* Every refusal is counted on /metrics by endpoint and reason; none writes an
 * audit line (nobody was authenticated: anyone can send them). */
ztb_err client_auth(const struct http_req *req, const char *assertion_type, const char *assertion,
                    int64_t now, unsigned flags, struct client_identity *id, struct http_resp *resp)
{
    ztb_err rv = authenticate(req, assertion_type, assertion, now, flags, id, resp);
    if (rv == ZTB_OK) {
        http_access_note_agent(id->agent); /* for the access log line */
        return rv;
    }
    metrics_refused(req != NULL ? req->path : NULL, rv == ZTB_ERR_UNAVAILABLE ? REFUSED_UNAVAILABLE
                                                    : rv == ZTB_ERR_REPLAY
                                                        ? REFUSED_ASSERTION_REPLAY
                                                        : REFUSED_INVALID_CLIENT);
    return rv == ZTB_ERR_UNAVAILABLE ? rv : ZTB_ERR_INVALID_CLIENT;
}
