/*
 * ssf_receive.c - POST /v1/ssf/events (see ssf_receive.h).
 *
 * How it works: the body is copied and trimmed, the iss peeked with the
 * strict reader, the transmitter found by it, the JWS verified against its
 * key set; only then are the claims read (ssf_set_read, through the jansson
 * gate) and turned into a signal for signals_process. Refusals are logged at
 * most 10 times in 10 s (they may come from anyone) and counted.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "broker/broker.h"
#include "broker/signals/signals.h"
#include "broker/ssf/ssf_jwks.h"
#include "broker/ssf/ssf_receive.h"
#include "broker/ssf/ssf_set.h"
#include "broker/store/store.h"
#include "common/log.h"
#include "common/log_sample.h"
#include "pki/jws.h"

static struct ztb_log_sampler refused_log = ZTB_LOG_SAMPLER_INIT(10, 10);

const char *ssf_signal_type(unsigned ev)
{
    switch (ev) {
    case SSF_EV_SESSION_REVOKED: return "caep:session-revoked";
    case SSF_EV_CREDENTIAL_CHANGE: return "caep:credential-change";
    case SSF_EV_TOKEN_CLAIMS: return "caep:token-claims-change";
    default: return NULL;
    }
}

/* The RFC 8935 error answer: {"err": code, "description": desc}. */
static void refuse(const struct http_req *req, struct http_resp *resp, unsigned status,
                   const char *code, const char *desc, const char *transmitter)
{
    if (ztb_log_sample(&refused_log, ZTB_LOG_WARN, "ssf.set_refused")) {
        char peer[64];
        signals_peer_text(req, peer, sizeof(peer));
        ztb_log(ZTB_LOG_WARN, "ssf.set_refused", ZTB_F_STR("err", code),
                ZTB_F_STR("description", desc), ZTB_F_STR("transmitter", transmitter),
                ZTB_F_STR("peer", peer));
    }
    json_t *o = json_pack("{s:s,s:s}", "err", code, "description", desc);
    http_resp_json_value(resp, status, o);
    if (status == 503)
        http_resp_header(resp, "Retry-After", "1");
}

static void evidence_of(const struct ssf_transmitter *t, const struct ssf_set *set, char *out,
                        size_t cap)
{
    json_t *e = json_pack("{s:s,s:s,s:s}", "ssf_issuer", t->issuer, "event",
                          ssf_event_uri(set->event), "subject", set->subject);
    if (e != NULL && set->initiating_entity[0])
        json_object_set_new(e, "initiating_entity", json_string(set->initiating_entity));
    if (e != NULL && set->reason[0])
        json_object_set_new(e, "reason_admin", json_string(set->reason));
    char *s = e ? json_dumps(e, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    out[0] = '\0';
    if (s != NULL && strlen(s) < cap)
        memcpy(out, s, strlen(s) + 1);
    free(s);
    json_decref(e);
}

void handle_ssf_events(struct http_req *req, struct http_resp *resp)
{
    const struct broker *b = broker_of(req);
    if (b->ssf == NULL || b->ssf->ntx == 0) {
        refuse(req, resp, 404, "invalid_request", "this broker has no SSF transmitters configured",
               NULL);
        return;
    }
    if (!http_req_content_type_is(req, "application/secevent+jwt")) {
        refuse(req, resp, 400, "invalid_request", "Content-Type must be application/secevent+jwt",
               NULL);
        return;
    }
    if (req->body_len > SSF_SET_MAX) {
        refuse(req, resp, 400, "invalid_request", "the SET is over 8192 bytes", NULL);
        return;
    }
    char tok[SSF_SET_MAX + 1];
    size_t len = req->body_len;
    while (len > 0 && (req->body[len - 1] == '\n' || req->body[len - 1] == '\r'))
        len--;
    memcpy(tok, req->body, len);
    tok[len] = '\0';
    if (strlen(tok) != len) {
        refuse(req, resp, 400, "invalid_request", "NUL in the SET", NULL);
        return;
    }
    char iss[SSF_ISSUER_MAX];
    if (ssf_set_peek_iss(tok, len, iss, sizeof(iss)) != ZTB_OK) {
        refuse(req, resp, 400, "invalid_request",
               "the body must be a compact JWS whose claims name the transmitter in iss", NULL);
        return;
    }
    const struct ssf_transmitter *t = ssf_transmitter_by_issuer(b->ssf, iss);
    if (t == NULL) {
        refuse(req, resp, 400, "invalid_issuer", "no transmitter with this iss is configured",
               NULL);
        return;
    }
    char text[SSF_SET_MAX + 1];
    ztb_buf claims;
    ztb_buf_init_fixed(&claims, text, sizeof(text));
    ztb_jws_header hdr;
    ztb_jws_verify_opts vo = {.max_len = SSF_SET_MAX};
    char kwhy[300] = "";
    ztb_err rv = t->remote != NULL
                     ? ssf_jwks_verify(t->remote, tok, len, &vo, &hdr, &claims, kwhy, sizeof(kwhy))
                     : ztb_jws_verify(t->keys, tok, len, &vo, &hdr, &claims);
    if (rv == ZTB_ERR_UNAVAILABLE || rv == ZTB_ERR_NOMEM) {
        /* fail closed; a 5xx tells the transmitter to try again later */
        refuse(req, resp, 503, "temporarily_unavailable",
               kwhy[0] ? kwhy : "the transmitter's keys are not available", t->name);
        return;
    }
    if (rv != ZTB_OK) {
        char why[120];
        snprintf(why, sizeof(why), "SET signature refused: %s", ztb_strerror(rv));
        const char *code = rv == ZTB_ERR_SIGNATURE || rv == ZTB_ERR_SIG_FORMAT
                               ? "authentication_failed"
                           : rv == ZTB_ERR_UNKNOWN_KID || rv == ZTB_ERR_ALG || rv == ZTB_ERR_KEY
                               ? "invalid_key"
                               : "invalid_request";
        refuse(req, resp, 400, code, why, t->name);
        return;
    }
    if (!ztb_jws_header_typ_is(&hdr, SSF_SET_TYP)) {
        refuse(req, resp, 400, "invalid_request", "a SET has typ secevent+jwt", t->name);
        return;
    }
    /* a transmitter is a signal source: it holds to the per-source rate
     * /v1/signals applies (a leaked key must not flood the policy, the audit
     * log and Redis); nothing is marked received, so it sends the SET again */
    struct store_rate rate = {
        .rate = b->cfg.signals_source_rate, .burst = b->cfg.signals_source_burst, .period_s = 1};
    uint32_t wait_ms = 0;
    rv = store_rate_take("src", t->name, &rate, &wait_ms);
    if (rv == ZTB_ERR_RATE_LIMITED) {
        unsigned secs = wait_ms / 1000 + (wait_ms % 1000 != 0);
        refuse(req, resp, 429, "temporarily_unavailable",
               "this transmitter is over its signal rate: send the SET again after Retry-After",
               t->name);
        http_resp_header(resp, "Retry-After", "%u", secs ? secs : 1);
        return;
    }
    if (rv != ZTB_OK) {
        refuse(req, resp, 503, "temporarily_unavailable", "Redis is not answering; send it again",
               t->name);
        return;
    }
    int64_t now = (int64_t)time(NULL);
    struct ssf_set set;
    char why[300] = "";
    struct ssf_set_opts so = {.t = t,
                              .trust_domain = b->cfg.trust_domain,
                              .our_issuer = b->issuer,
                              .now = now,
                              .max_age = SIGNAL_MAX_AGE};
    rv = ztb_buf_error(&claims) == ZTB_OK
             ? ssf_set_read(text, claims.len, &so, &set, why, sizeof(why))
             : ZTB_ERR_TOO_LARGE;
    if (rv != ZTB_OK) {
        const char *code = rv == ZTB_ERR_ISSUER     ? "invalid_issuer"
                           : rv == ZTB_ERR_AUDIENCE ? "invalid_audience"
                                                    : "invalid_request";
        refuse(req, resp, 400, code, why[0] ? why : ztb_strerror(rv), t->name);
        return;
    }
    struct signal s;
    memset(&s, 0, sizeof(s));
    snprintf(s.source, sizeof(s.source), "%s", t->name);
    snprintf(s.source_jti, sizeof(s.source_jti), "%s", set.jti);
    snprintf(s.type, sizeof(s.type), "%s", ssf_signal_type(set.event));
    s.iat = set.iat;
    s.severity = set.event == SSF_EV_TOKEN_CLAIMS ? POLICY_SEVERITY_MEDIUM : POLICY_SEVERITY_HIGH;
    s.confidence = t->confidence;
    snprintf(s.agent, sizeof(s.agent), "%s", set.agent);
    snprintf(s.jti, sizeof(s.jti), "%s", set.token_jti);
    s.event_time = set.event_time;
    evidence_of(t, &set, s.evidence, sizeof(s.evidence));
    json_t *result = NULL;
    rv = signals_process(b, &s, &result);
    int duplicate = rv == ZTB_OK && json_is_true(json_object_get(result, "duplicate"));
    json_decref(result);
    if (rv == ZTB_ERR_UNAVAILABLE) {
        refuse(req, resp, 503, "temporarily_unavailable", "Redis is not answering; send it again",
               t->name);
        return;
    }
    if (rv != ZTB_OK) {
        refuse(req, resp, 500, "server_error", ztb_strerror(rv), t->name);
        return;
    }
    if (duplicate) {
        refuse(req, resp, 400, "invalid_request", "this jti was received before (replay)", t->name);
        return;
    }
    ztb_log(ZTB_LOG_INFO, "ssf.set_received", ZTB_F_STR("transmitter", t->name),
            ZTB_F_STR("event", ssf_event_uri(set.event)), ZTB_F_STR("signal", s.id),
            ZTB_F_STR("agent", s.agent[0] ? s.agent : NULL));
    ztb_buf_reset(&resp->body); /* RFC 8935 §2.2: 202, nothing to say */
    resp->status = 202;
}
