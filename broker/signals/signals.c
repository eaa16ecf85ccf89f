/*
 * signals.c - POST /v1/signals and the evaluation every signal goes
 * through (see signals.h).
 *
 * How it works: the handler authenticates the source first (nothing in the
 * body is read before that, except a signed SET's unverified iss, which only
 * picks the key that must verify it), then parses the claims strictly
 * (signal_parse.h), then hands the signal to signals_process, the same
 * function the detectors call. A source's signal jti is marked received only
 * after processing succeeded, so a source that got a 503 can retry the same
 * signal, and a replay of a processed one changes nothing.
 *
 * Must never: apply a response the policy did not ask for, let one source
 * count twice toward independent_signals, or write a source secret, session
 * credential or assertion anywhere (they are compared, then wiped with the
 * request body).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <jansson.h>

#include "broker/audit/audit.h"
#include "broker/broker.h"
#include "broker/auth/client_auth.h"
#include "broker/tokens/introspect.h"
#include "broker/http/iplimit.h"
#include "broker/http/metrics.h"
#include "broker/signals/revocation.h"
#include "broker/signals/signals.h"
#include "broker/store/store_quorum.h"
#include "broker/store/store_signals.h"
#include "broker/store/store_sources.h"
#include "common/base64url.h"
#include "common/guard.h"
#include "common/log.h"
#include "common/log_sample.h"
#include "common/secret.h"
#include "pki/jwk.h"
#include "pki/jws.h"
#include "policy/policy.h"
#include "policy/signals.h"
#include "wire/authorization.h"

#define MAX_RESPONSES 16
#define SIGNALS_PATH  "/v1/signals"
/* Addresses the per-address limiter tracks at once (about 0.4 MiB). */
#define SIGNALS_IP_SLOTS 16384

void signals_peer_text(const struct http_req *req, char *out, size_t cap)
{
    out[0] = '\0';
    if (req->peer == NULL) {
        snprintf(out, cap, "unix");
        return;
    }
    if (req->peer->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)req->peer)->sin_addr, out, (socklen_t)cap);
    else if (req->peer->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)req->peer)->sin6_addr, out,
                  (socklen_t)cap);
}

static ztb_err new_id(char id[32])
{
    uint8_t raw[12];
    ZTB_GUARD(ztb_random(raw, sizeof(raw)));
    snprintf(id, 32, "sig_");
    return ztb_b64url_encode(raw, sizeof(raw), id + 4, 32 - 4, NULL);
}

/* The target a response acts on, from the signal's subject ("" if none). */
static const char *target_of(const struct signal *s, policy_response_kind r)
{
    switch (r) {
    case POLICY_RESPONSE_REVOKE_TOKEN: return s->jti;
    case POLICY_RESPONSE_REQUIRE_APPROVAL:
    case POLICY_RESPONSE_QUARANTINE:
    case POLICY_RESPONSE_REVOKE_ALL: return s->agent;
    case POLICY_RESPONSE_KILL_AUDIENCE: return s->audience;
    case POLICY_RESPONSE_TAINT_KEY: return s->kid;
    }
    return "";
}

static json_t *subject_json(const struct signal *s)
{
    json_t *o = json_object();
    if (s->agent[0])
        json_object_set_new(o, "agent", json_string(s->agent));
    if (s->jti[0])
        json_object_set_new(o, "jti", json_string(s->jti));
    if (s->jti_exp)
        json_object_set_new(o, "exp", json_integer(s->jti_exp));
    if (s->audience[0])
        json_object_set_new(o, "audience", json_string(s->audience));
    if (s->kid[0])
        json_object_set_new(o, "kid", json_string(s->kid));
    return o;
}

/*
 * Observe mode: what the response would have done, recorded and audited, and
 * nothing else (no quorum counted, no operator action filed, nothing revoked).
 */
static void observe_response(const struct signal *s, const policy_signal_response *pr,
                             const char *name, const char *kind, const char *target, json_t *o,
                             const char *actor)
{
    char would[400];
    if (pr->independent_signals > 1)
        snprintf(would, sizeof(would), "count toward %u independent signals, then %s %s %s",
                 pr->independent_signals, name, kind, target);
    else if (pr->operator_confirmation)
        snprintf(would, sizeof(would), "ask an operator to %s %s %s", name, kind, target);
    else
        snprintf(would, sizeof(would), "%s %s %s", name, kind, target);
    json_object_set_new(o, "status", json_string("observed"));
    json_object_set_new(o, "target", json_string(target));
    json_object_set_new(o, "would", json_string(would));
    audit("signal.response_observed", actor, 0, ZTB_F_STR("signal", s->id),
          ZTB_F_STR("entry", pr->id), ZTB_F_STR("response", name), ZTB_F_STR(kind, target),
          ZTB_F_STR("would", would));
}

/* One response of the policy for signal s: counted, filed or applied (in
 * observe mode: only described). */
static ztb_err respond(const struct signal *s, const policy_signal_response *pr, int observe,
                       json_t *out)
{
    const char *name = policy_response_name(pr->response);
    const char *kind = revocation_target_kind(pr->response);
    const char *target = target_of(s, pr->response);
    json_t *o = json_pack("{s:s,s:s}", "id", pr->id, "response", name);
    json_array_append_new(out, o);
    char actor[96];
    snprintf(actor, sizeof(actor), "source:%s", s->source);
    if (target[0] == '\0') {
        char why[64];
        snprintf(why, sizeof(why), "the signal names no %s", kind);
        json_object_set_new(o, "status", json_string("skipped"));
        json_object_set_new(o, "reason", json_string(why));
        audit("signal.response_skipped", actor, 0, ZTB_F_STR("signal", s->id),
              ZTB_F_STR("entry", pr->id), ZTB_F_STR("response", name), ZTB_F_STR("reason", why));
        return ZTB_OK;
    }
    if (observe) {
        observe_response(s, pr, name, kind, target, o, actor);
        return ZTB_OK;
    }
    char sigs[512];
    snprintf(sigs, sizeof(sigs), "%s", s->id);
    if (pr->independent_signals > 1) {
        unsigned have = 0;
        int fired = 0;
        ZTB_GUARD(store_dual_count(kind, target, pr->id, s->source, s->id, pr->window,
                                   pr->independent_signals, &have, &fired, sigs, sizeof(sigs)));
        json_object_set_new(o, "have", json_integer(have));
        json_object_set_new(o, "need", json_integer(pr->independent_signals));
        if (!fired) {
            json_object_set_new(o, "status", json_string("pending_signals"));
            audit("signal.response_pending", actor, 0, ZTB_F_STR("signal", s->id),
                  ZTB_F_STR("entry", pr->id), ZTB_F_STR("response", name), ZTB_F_STR(kind, target),
                  ZTB_F_INT("have", have), ZTB_F_INT("need", pr->independent_signals),
                  ZTB_F_STR("signals", sigs));
            return ZTB_OK;
        }
    }
    if (pr->operator_confirmation) {
        struct store_action a;
        memset(&a, 0, sizeof(a));
        snprintf(a.entry, sizeof(a.entry), "%s", pr->id);
        snprintf(a.response, sizeof(a.response), "%s", name);
        snprintf(a.target_kind, sizeof(a.target_kind), "%s", kind);
        snprintf(a.target, sizeof(a.target), "%s", target);
        snprintf(a.signals, sizeof(a.signals), "%s", sigs);
        a.target_exp = pr->response == POLICY_RESPONSE_REVOKE_TOKEN ? s->jti_exp : 0;
        int created = 0;
        ZTB_GUARD(store_action_create(&a, (int64_t)time(NULL), &created));
        json_object_set_new(o, "status", json_string("pending_operator"));
        json_object_set_new(o, "action", json_string(a.id));
        audit("signal.response_awaiting_operator", actor, 1, ZTB_F_STR("signal", s->id),
              ZTB_F_STR("entry", pr->id), ZTB_F_STR("response", name), ZTB_F_STR(kind, target),
              ZTB_F_STR("action", a.id), ZTB_F_BOOL("new_action", created),
              ZTB_F_STR("signals", sigs));
        return ZTB_OK;
    }
    struct rev_request rq = {.response = pr->response,
                             .target = target,
                             .jti_exp = s->jti_exp,
                             .actor = "broker",
                             .cause = "signal",
                             .entry = pr->id,
                             .signals = sigs};
    struct rev_result res;
    ztb_err rv = revocation_apply(&rq, &res);
    if (rv == ZTB_ERR_UNAVAILABLE)
        return rv;
    const char *status = rv == ZTB_OK              ? (res.changed ? "applied" : "unchanged")
                         : rv == ZTB_ERR_NOT_FOUND ? "skipped"
                                                   : "failed";
    json_object_set_new(o, "status", json_string(status));
    if (rv == ZTB_ERR_NOT_FOUND)
        json_object_set_new(o, "reason", json_string("unknown agent"));
    else if (rv != ZTB_OK)
        json_object_set_new(o, "reason", json_string(ztb_strerror(rv)));
    if (res.gen > 0)
        json_object_set_new(o, "gen", json_integer(res.gen));
    return ZTB_OK;
}

static json_t *record_of(const struct signal *s, json_t *responses, int64_t now)
{
    json_t *r = json_pack("{s:s,s:I,s:s,s:s,s:s,s:f,s:o,s:O}", "id", s->id, "received",
                          (json_int_t)now, "source", s->source, "type", s->type, "severity",
                          policy_severity_name(s->severity), "confidence", s->confidence, "subject",
                          subject_json(s), "responses", responses);
    if (s->source_jti[0])
        json_object_set_new(r, "source_jti", json_string(s->source_jti));
    if (s->event_time)
        json_object_set_new(r, "event_timestamp", json_integer(s->event_time));
    if (s->evidence[0]) {
        json_error_t e;
        json_t *ev = json_loads(s->evidence, JSON_DECODE_ANY, &e);
        if (ev != NULL)
            json_object_set_new(r, "evidence", ev);
    }
    return r;
}

ztb_err signals_process(const struct broker *b, struct signal *s, json_t **result)
{
    if (result != NULL)
        *result = NULL;
    if (s == NULL || !store_id_ok(s->source) || !signal_type_ok(s->type))
        return ZTB_ERR_INVALID_ARG;
    if (s->id[0] == '\0')
        ZTB_GUARD(new_id(s->id));
    int64_t now = (int64_t)time(NULL);
    char actor[96];
    snprintf(actor, sizeof(actor), "source:%s", s->source);
    if (s->source_jti[0]) {
        ztb_err rv = store_signal_known(s->source, s->source_jti);
        if (rv == ZTB_ERR_REPLAY) {
            audit("signal.duplicate", actor, 0, ZTB_F_STR("source", s->source),
                  ZTB_F_STR("source_jti", s->source_jti));
            if (result != NULL)
                *result = json_pack("{s:n,s:b,s:[]}", "signal", "duplicate", 1, "responses");
            return ZTB_OK;
        }
        ZTB_GUARD(rv);
    }
    int observe = 0;
    ZTB_GUARD(store_signal_mode_get(s->source, s->type,
                                    strcmp(s->source, SIGNALS_BROKER_SOURCE) == 0, &observe));
    audit("signal.received", actor, 0, ZTB_F_BOOL("observe", observe), ZTB_F_STR("signal", s->id),
          ZTB_F_STR("source", s->source),
          ZTB_F_STR("source_jti", s->source_jti[0] ? s->source_jti : NULL),
          ZTB_F_STR("type", s->type), ZTB_F_STR("severity", policy_severity_name(s->severity)),
          ZTB_F_DBL("confidence", s->confidence), ZTB_F_STR("agent", s->agent[0] ? s->agent : NULL),
          ZTB_F_STR("jti", s->jti[0] ? s->jti : NULL),
          ZTB_F_STR("audience", s->audience[0] ? s->audience : NULL),
          ZTB_F_STR("kid", s->kid[0] ? s->kid : NULL),
          ZTB_F_STR("evidence", s->evidence[0] ? s->evidence : NULL));

    json_t *responses = json_array();
    ztb_err rv = ZTB_OK;
    policy *pol = b->policy ? policy_holder_acquire(b->policy) : NULL;
    if (pol != NULL) {
        policy_signal_response pr[MAX_RESPONSES];
        size_t n = 0;
        ztb_err prv = policy_signal_responses(pol, s->agent[0] ? s->agent : NULL, s->type,
                                              s->severity, s->confidence, pr, MAX_RESPONSES, &n);
        if (prv == ZTB_ERR_TOO_LARGE)
            n = MAX_RESPONSES; /* the strongest ones */
        else if (prv != ZTB_OK)
            n = 0;
        for (size_t i = 0; i < n && rv == ZTB_OK; i++)
            rv = respond(s, &pr[i], observe, responses);
    }
    if (pol != NULL)
        policy_holder_release(pol);
    if (rv == ZTB_OK && s->source_jti[0])
        rv = store_signal_seen(s->source, s->source_jti, SIGNALS_SEEN_TTL);
    if (rv == ZTB_ERR_REPLAY)
        rv = ZTB_OK; /* the same signal raced us: both were processed, harmlessly */
    json_t *rec = record_of(s, responses, now);
    json_object_set_new(rec, "mode", json_string(observe ? "observe" : "enforce"));
    if (rv == ZTB_OK) {
        char *text = json_dumps(rec, JSON_COMPACT | JSON_SORT_KEYS);
        rv = text ? store_signal_record(text) : ZTB_ERR_NOMEM;
        free(text);
    }
    if (rv != ZTB_OK) {
        json_decref(rec);
        json_decref(responses);
        audit("signal.failed", actor, 0, ZTB_F_STR("signal", s->id), ZTB_F_ERR(rv));
        return rv;
    }
    if (result != NULL)
        *result = json_pack("{s:s,s:b,s:s,s:O}", "signal", s->id, "duplicate", 0, "mode",
                            observe ? "observe" : "enforce", "responses", responses);
    json_decref(rec);
    json_decref(responses);
    return ZTB_OK;
}

ztb_err signals_publish_detected(struct signal *s, void *ud)
{
    if (s == NULL || ud == NULL)
        return ZTB_ERR_INVALID_ARG;
    snprintf(s->source, sizeof(s->source), "%s", SIGNALS_BROKER_SOURCE);
    return signals_process(ud, s, NULL);
}

ztb_err signals_apply_action(const struct store_action *a, const char *actor, json_t **result)
{
    if (result != NULL)
        *result = NULL;
    policy_response_kind k;
    if (policy_response_parse(a->response, &k) != ZTB_OK)
        return ZTB_ERR_INVALID_ARG;
    struct rev_request rq = {.response = k,
                             .target = a->target,
                             .jti_exp = a->target_exp,
                             .actor = actor,
                             .cause = "action",
                             .entry = a->entry,
                             .signals = a->signals};
    struct rev_result res;
    ztb_err rv = revocation_apply(&rq, &res);
    ztb_err srv = store_action_set_status(a->id, rv == ZTB_OK ? "applied" : "failed");
    if (rv == ZTB_OK && srv != ZTB_OK)
        rv = srv;
    if (result != NULL && rv == ZTB_OK)
        *result = json_pack("{s:s,s:s,s:s,s:s,s:b}", "action", a->id, "status", "applied",
                            "response", a->response, "target", a->target, "changed", res.changed);
    return rv;
}

/* ---- the endpoint -------------------------------------------------------- */

struct who {
    char source[STORE_SOURCE_MAX + 1]; /* the authenticated source, once known */
    char agent[STORE_NAME_MAX + 1];    /* an authenticated identity that is not a source */
    char peer[64];
};

/*
 * Refusals nobody authenticated, and signals over a rate limit: anyone can
 * send as many as they like, so each is counted on /metrics and logged at a
 * bounded rate (the first 10 in 10 s, then a summary line), never audited one
 * by one. A flood costs the sender, not the disk.
 */
static struct ztb_log_sampler refused_log = ZTB_LOG_SAMPLER_INIT(10, 10);
static struct ztb_log_sampler limited_log = ZTB_LOG_SAMPLER_INIT(10, 10);

static enum metrics_refusal refusal_reason(unsigned status)
{
    switch (status) {
    case 401: return REFUSED_INVALID_CLIENT;
    case 429: return REFUSED_RATE_LIMITED_IP;
    case 503: return REFUSED_UNAVAILABLE;
    default: return REFUSED_INVALID_REQUEST;
    }
}

/* Fill resp with an error. count: also count it on /metrics when it is not
 * audited (0: client_auth counted it already). */
static void refuse_as(const struct http_req *req, struct http_resp *resp, const struct who *w,
                      unsigned status, const char *code, const char *why, int count)
{
    http_resp_error(resp, status, code, why);
    if (status == 401)
        http_resp_header(resp, "WWW-Authenticate", "Bearer realm=\"ztb-signals\"");
    if (status == 503)
        http_resp_header(resp, "Retry-After", "1");
    if (w->source[0] == '\0' && w->agent[0] == '\0') {
        if (count)
            metrics_refused(SIGNALS_PATH, refusal_reason(status));
        ztb_log_sampled(&refused_log, ZTB_LOG_WARN, "signal.refused", ZTB_F_STR("peer", w->peer),
                        ZTB_F_INT("status", status), ZTB_F_STR("reason", why));
        return;
    }
    char actor[96];
    if (w->source[0])
        snprintf(actor, sizeof(actor), "source:%s", w->source);
    else
        snprintf(actor, sizeof(actor), "agent:%s", w->agent);
    audit("signal.refused", actor, 0, ZTB_F_STR("peer", w->peer), ZTB_F_INT("status", status),
          ZTB_F_STR("error", code), ZTB_F_STR("reason", why),
          ZTB_F_INT("bytes", (int64_t)req->body_len));
    ztb_log(ZTB_LOG_WARN, "signal.refused", ZTB_F_STR("peer", w->peer), ZTB_F_INT("status", status),
            ZTB_F_STR("reason", why));
}

static void refuse(const struct http_req *req, struct http_resp *resp, const struct who *w,
                   unsigned status, const char *code, const char *why)
{
    refuse_as(req, resp, w, status, code, why, 1);
}

/* 429 with Retry-After (whole seconds, at least 1), counted as why. */
static void too_many(struct http_resp *resp, const struct who *w, enum metrics_refusal why,
                     uint32_t retry_after_ms)
{
    unsigned secs = retry_after_ms / 1000 + (retry_after_ms % 1000 != 0);
    http_resp_error(resp, 429, "slow_down",
                    why == REFUSED_RATE_LIMITED_IP
                        ? "too many signal requests from this address: retry after Retry-After"
                        : "this source is over its signal rate: retry after Retry-After");
    http_resp_header(resp, "Retry-After", "%u", secs ? secs : 1);
    metrics_refused(SIGNALS_PATH, why);
    ztb_log_sampled(&limited_log, ZTB_LOG_WARN, "signal.rate_limited", ZTB_F_STR("peer", w->peer),
                    ZTB_F_STR("source", w->source[0] ? w->source : NULL),
                    ZTB_F_STR("limit", why == REFUSED_RATE_LIMITED_IP ? "address" : "source"));
}

/* The per-address limiter (iplimit.h), made once from the configuration. */
static struct iplimit *ip_limiter;
static int ip_limiter_failed;
static pthread_once_t ip_limiter_once = PTHREAD_ONCE_INIT;

static void ip_limiter_init(void)
{
    if (iplimit_new(g_broker.cfg.signals_ip_rate, g_broker.cfg.signals_ip_burst, SIGNALS_IP_SLOTS,
                    &ip_limiter) != ZTB_OK)
        ip_limiter_failed = 1;
}

/* 1 if the request may go on; 0: resp holds a 429 (or a 503). Before any
 * Redis call: an address over its rate costs nothing but this lookup. */
static int address_within_rate(const struct http_req *req, struct http_resp *resp,
                               const struct who *w)
{
    pthread_once(&ip_limiter_once, ip_limiter_init);
    if (ip_limiter_failed) {
        refuse(req, resp, w, 503, "temporarily_unavailable", "out of memory");
        return 0;
    }
    uint32_t wait_ms;
    if (iplimit_take(ip_limiter, req->peer, iplimit_now_us(), &wait_ms))
        return 1;
    too_many(resp, w, REFUSED_RATE_LIMITED_IP, wait_ms);
    return 0;
}

/* 1 if the authenticated source is within its rate (store.c's GCRA, shared by
 * every replica); 0: resp filled. */
static int source_within_rate(const struct http_req *req, struct http_resp *resp,
                              const struct who *w)
{
    const struct broker *b = broker_of(req);
    struct store_rate rate = {
        .rate = b->cfg.signals_source_rate, .burst = b->cfg.signals_source_burst, .period_s = 1};
    uint32_t wait_ms;
    ztb_err rv = store_rate_take("src", w->source, &rate, &wait_ms);
    if (rv == ZTB_OK)
        return 1;
    if (rv == ZTB_ERR_RATE_LIMITED)
        too_many(resp, w, REFUSED_RATE_LIMITED_SOURCE, wait_ms);
    else
        refuse(req, resp, w, 503, "temporarily_unavailable", "Redis is not answering");
    return 0;
}

void handle_signals_too_large(struct http_req *req, struct http_resp *resp)
{
    if (strcmp(req->path, "/v1/signals") != 0)
        return; /* the generic 413 stands */
    struct who w = {0};
    signals_peer_text(req, w.peer, sizeof(w.peer));
    char why[64];
    snprintf(why, sizeof(why), "a signal is at most %d bytes", SIGNAL_BODY_MAX);
    refuse(req, resp, &w, 413, "invalid_request", why);
}

/* Authenticate the source: a bearer source secret, or an enrolled identity
 * registered as a source (a session credential or client assertion as the
 * bearer credential; cred NULL: its TLS client certificate). */
static int auth_bearer(const char *cred, int64_t now, struct who *w, const struct http_req *req,
                       struct http_resp *resp)
{
    ztb_err rv;
    if (cred != NULL && strncmp(cred, "ztbsrc_", 7) == 0) {
        rv = store_source_by_secret(cred, w->source);
        if (rv == ZTB_ERR_UNAVAILABLE) {
            refuse(req, resp, w, 503, "temporarily_unavailable", "Redis is not answering");
            return 0;
        }
        if (rv != ZTB_OK) {
            refuse(req, resp, w, 401, "invalid_client", "unknown or removed signal source secret");
            return 0;
        }
        return 1;
    }
    const char *type = cred == NULL                     ? NULL
                       : strncmp(cred, "ztbs_", 5) == 0 ? CLIENT_ASSERTION_TYPE_SESSION
                                                        : CLIENT_ASSERTION_TYPE_JWT;
    struct client_identity id;
    struct http_resp scratch = {0};
    ztb_buf_init(&scratch.body, 1024);
    rv = client_auth(req, type, cred, now, CLIENT_AUTH_SESSION_OK, &id, &scratch); /* NULL: mTLS */
    int counted = rv != ZTB_OK; /* client_auth counts its own refusals */
    ztb_buf_free(&scratch.body);
    if (rv == ZTB_ERR_UNAVAILABLE) {
        refuse_as(req, resp, w, 503, "temporarily_unavailable", "Redis is not answering", !counted);
        return 0;
    }
    if (rv != ZTB_OK) {
        refuse_as(req, resp, w, 401, "invalid_client",
                  "authentication required: Authorization: Bearer <source secret, or an enrolled "
                  "identity's session credential or client assertion>, a TLS client certificate, "
                  "or a signed SET",
                  !counted);
        return 0;
    }
    memcpy(w->agent, id.agent, sizeof(w->agent));
    rv = store_source_by_agent(id.agent, w->source);
    if (rv == ZTB_ERR_UNAVAILABLE) {
        refuse(req, resp, w, 503, "temporarily_unavailable", "Redis is not answering");
        return 0;
    }
    if (rv != ZTB_OK) {
        char why[128];
        snprintf(why, sizeof(why), "agent %s is not registered as a signal source", id.agent);
        refuse(req, resp, w, 403, "access_denied", why);
        return 0;
    }
    return 1;
}

/* A signed SET: the source named by its (unverified) iss must have a key
 * that verifies it; then its claims are read. 0: resp filled. */
static int read_set(const char *tok, size_t len, struct who *w, ztb_buf *claims,
                    const struct http_req *req, struct http_resp *resp)
{
    char iss[STORE_SOURCE_MAX + 1];
    if (signal_set_peek_iss(tok, len, iss) != ZTB_OK) {
        refuse(req, resp, w, 400, "invalid_request",
               "a signed SET must be a compact JWS whose claims name the source in iss");
        return 0;
    }
    char jwk[4096];
    ztb_err rv = store_source_jwk(iss, jwk, sizeof(jwk));
    if (rv == ZTB_ERR_UNAVAILABLE) {
        refuse(req, resp, w, 503, "temporarily_unavailable", "Redis is not answering");
        return 0;
    }
    ztb_key *k = NULL;
    if (rv != ZTB_OK || ztb_jwk_parse(jwk, strlen(jwk), ZTB_JWK_KID_ANY, &k) != ZTB_OK) {
        refuse(req, resp, w, 401, "invalid_client",
               "unknown transmitter, or no key registered for it");
        return 0;
    }
    ztb_jws_header hdr;
    ztb_jws_verify_opts vo = {.max_len = SIGNAL_BODY_MAX};
    rv = ztb_jws_verify_with_key(k, tok, len, &vo, &hdr, claims);
    ztb_key_free(k);
    if (rv != ZTB_OK) {
        char why[96];
        snprintf(why, sizeof(why), "SET signature refused: %s", ztb_strerror(rv));
        refuse(req, resp, w, 401, "invalid_client", why);
        return 0;
    }
    if (!ztb_jws_header_typ_is(&hdr, "secevent+jwt")) {
        refuse(req, resp, w, 400, "invalid_request", "a signed SET has typ secevent+jwt");
        return 0;
    }
    memcpy(w->source, iss, sizeof(w->source));
    return 1;
}

void handle_signals(struct http_req *req, struct http_resp *resp)
{
    int64_t now = (int64_t)time(NULL);
    struct who w = {0};
    signals_peer_text(req, w.peer, sizeof(w.peer));
    if (!address_within_rate(req, resp, &w))
        return;
    if (req->body_len > SIGNAL_BODY_MAX) {
        handle_signals_too_large(req, resp);
        return;
    }
    int is_set = http_req_content_type_is(req, "application/secevent+jwt");
    if (!is_set && !http_req_content_type_is(req, "application/json")) {
        refuse(req, resp, &w, 415, "invalid_request",
               "Content-Type must be application/json or application/secevent+jwt");
        return;
    }
    char text[SIGNAL_BODY_MAX + 1];
    ztb_buf claims;
    ztb_buf_init_fixed(&claims, text, sizeof(text));
    if (is_set) {
        char tok[SIGNAL_BODY_MAX + 1];
        size_t len = req->body_len;
        while (len > 0 && (req->body[len - 1] == '\n' || req->body[len - 1] == '\r'))
            len--;
        memcpy(tok, req->body, len);
        tok[len] = '\0';
        if (strlen(tok) != len) {
            refuse(req, resp, &w, 400, "invalid_request", "NUL in the SET");
            return;
        }
        if (!read_set(tok, len, &w, &claims, req, resp))
            return;
    } else {
        const char *authz = http_req_header(req, "Authorization"); /* one: http.c */
        const char *cred = NULL; /* none: a TLS client certificate, if any */
        if (authz != NULL && ztb_wire_authorization_read(authz, &cred, NULL) != ZTB_SCHEME_BEARER) {
            refuse(req, resp, &w, 401, "invalid_client",
                   "the Authorization header must be Bearer <credential>");
            return;
        }
        if (!auth_bearer(cred, now, &w, req, resp))
            return;
        ztb_buf_append(&claims, req->body, req->body_len);
    }
    if (!source_within_rate(req, resp, &w))
        return;
    struct signal s;
    memset(&s, 0, sizeof(s));
    memcpy(s.source, w.source, sizeof(s.source));
    char why[200] = "";
    struct signal_parse_opts po = {.trust_domain = broker_of(req)->cfg.trust_domain,
                                   .issuer = broker_of(req)->issuer,
                                   .source = w.source,
                                   .signed_set = is_set,
                                   .now = now};
    ztb_err rv = ztb_buf_error(&claims) == ZTB_OK
                     ? signal_parse(text, claims.len, &po, &s, why, sizeof(why))
                     : ZTB_ERR_TOO_LARGE;
    if (rv != ZTB_OK) {
        const char *code = rv == ZTB_ERR_ISSUER     ? "invalid_issuer"
                           : rv == ZTB_ERR_AUDIENCE ? "invalid_audience"
                                                    : "invalid_request";
        refuse(req, resp, &w, 400, code, why[0] ? why : ztb_strerror(rv));
        return;
    }
    json_t *result = NULL;
    rv = signals_process(broker_of(req), &s, &result);
    if (rv == ZTB_ERR_UNAVAILABLE) {
        refuse(req, resp, &w, 503, "temporarily_unavailable",
               "Redis is not answering; send the signal again");
        return;
    }
    if (rv != ZTB_OK) {
        refuse(req, resp, &w, 500, "server_error", ztb_strerror(rv));
        return;
    }
    http_resp_json_value(resp, 202, result);
}
