/*
 * ssf_transmit.c - push delivery of ztb's own events to SSF receivers, and
 * the transmitter metadata (see ssf_transmit.h).
 *
 * How it works: one delivery per (event, receiver) waits in a fixed array
 * under a mutex; the thread takes the one due first, releases the lock,
 * signs (once) and posts it, and puts it back with its next due time when
 * it must be retried. The revocation path only copies ~300 bytes under the
 * lock and signals the condition variable.
 *
 * Must never: block a revocation on the network or the signer, follow a
 * receiver's redirect (push_client.c), or log an authorization value.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <openssl/rand.h>

#include "broker/broker.h"
#include "broker/http/metrics.h"
#include "broker/http/push_client.h"
#include "broker/signer/keys.h"
#include "broker/ssf/ssf_stream.h"
#include "broker/ssf/ssf_transmit.h"
#include "broker/store/store_ssf.h"
#include "broker/store/store_rev.h"
#include "common/base64url.h"
#include "common/buf.h"
#include "common/log.h"
#include "common/secret.h"
#include "pki/spiffe.h"
#include "policy/policy.h"

/* What one queued delivery is: a SET for a configured receiver, an event
 * still to be fanned out to the streams receivers manage (the thread reads
 * them from Redis, never the revocation path), or a SET for one stream. */
enum delivery_kind { D_RECEIVER, D_STREAMS, D_STREAM };

struct delivery {
    enum delivery_kind kind;
    size_t rx;                         /* D_RECEIVER: index of the receiver */
    char stream[STORE_SSF_ID_MAX + 1]; /* D_STREAM: the stream id */
    int verification;                  /* D_STREAM: a verification event (SSF 1.0 §8.1.4) */
    char state[SSF_STATE_MAX + 1];     /* ... and the state it echoes */
    policy_response_kind response;
    char target[STORE_ID_MAX + 1];
    char cause[32];
    int64_t at;      /* when ztb applied it */
    char *set;       /* the signed SET, once made (kept for retries) */
    unsigned tries;  /* attempts made */
    uint64_t due;    /* monotonic ms */
    uint64_t queued; /* monotonic ms: when it was queued (a paused stream holds it) */
};

/* attempt()'s answers */
enum { TRY_AGAIN = 0, TRY_DONE = 1, TRY_HOLD = 2 };

static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t thread;
    int running;
    int stop;
    const struct ssf_config *c;
    char issuer[SSF_ISSUER_MAX];
    char td[256];
    struct delivery q[SSF_QUEUE_MAX];
    size_t n;
} T = {.mu = PTHREAD_MUTEX_INITIALIZER};

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

unsigned ssf_event_for_response(policy_response_kind response)
{
    switch (response) {
    case POLICY_RESPONSE_REVOKE_TOKEN:
    case POLICY_RESPONSE_REVOKE_ALL: return SSF_EV_SESSION_REVOKED;
    case POLICY_RESPONSE_QUARANTINE: return SSF_EV_QUARANTINED;
    case POLICY_RESPONSE_REQUIRE_APPROVAL: return SSF_EV_APPROVAL_REQUIRED;
    case POLICY_RESPONSE_KILL_AUDIENCE: return SSF_EV_AUDIENCE_KILLED;
    case POLICY_RESPONSE_TAINT_KEY: return SSF_EV_KEY_TAINTED;
    }
    return 0;
}

/* The sub_id of a response's target (a new reference), or NULL. */
static json_t *subject_of(const char *issuer, const char *td, policy_response_kind response,
                          const char *target)
{
    switch (response) {
    case POLICY_RESPONSE_REVOKE_TOKEN:
        return json_pack("{s:s,s:s,s:s}", "format", "jwt_id", "iss", issuer, "jti", target);
    case POLICY_RESPONSE_REVOKE_ALL:
    case POLICY_RESPONSE_QUARANTINE:
    case POLICY_RESPONSE_REQUIRE_APPROVAL: {
        ztb_buf id;
        ztb_buf_init(&id, 300);
        json_t *j = NULL;
        if (ztb_spiffe_agent_id(td, target, &id) == ZTB_OK && ztb_buf_error(&id) == ZTB_OK)
            j = json_pack("{s:s,s:s}", "format", "uri", "uri", ztb_buf_cstr(&id));
        ztb_buf_free(&id);
        return j;
    }
    case POLICY_RESPONSE_KILL_AUDIENCE:
    case POLICY_RESPONSE_TAINT_KEY: return json_pack("{s:s,s:s}", "format", "opaque", "id", target);
    }
    return NULL;
}

char *ssf_set_claims(const char *issuer, const char *trust_domain, const char *audience,
                     policy_response_kind response, const char *target, const char *cause,
                     int64_t now, const char *jti)
{
    const char *uri = ssf_event_uri(ssf_event_for_response(response));
    if (issuer == NULL || audience == NULL || target == NULL || jti == NULL || uri == NULL)
        return NULL;
    json_t *sub = subject_of(issuer, trust_domain, response, target);
    if (sub == NULL)
        return NULL;
    const char *who = cause == NULL                    ? "system"
                      : strcmp(cause, "operator") == 0 ? "admin"
                      : strcmp(cause, "action") == 0   ? "admin"
                      : strcmp(cause, "signal") == 0   ? "policy"
                                                       : "system";
    char reason[96];
    snprintf(reason, sizeof(reason), "ztb %s (%s)", policy_response_name(response),
             cause ? cause : "broker");
    json_t *ev = json_pack("{s:I,s:s,s:{s:s}}", "event_timestamp", (json_int_t)now,
                           "initiating_entity", who, "reason_admin", "en", reason);
    json_t *c = json_pack("{s:s,s:s,s:I,s:s,s:o,s:{s:o}}", "iss", issuer, "aud", audience, "iat",
                          (json_int_t)now, "jti", jti, "sub_id", sub, "events", uri, ev);
    char *text = c ? json_dumps(c, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(c);
    return text;
}

char *ssf_verification_claims(const char *issuer, const char *audience, const char *stream_id,
                              const char *state, int64_t now, const char *jti)
{
    if (issuer == NULL || audience == NULL || stream_id == NULL || jti == NULL)
        return NULL;
    json_t *ev = json_object();
    if (ev != NULL && state != NULL && state[0] != '\0')
        json_object_set_new(ev, "state", json_string(state));
    json_t *c = json_pack("{s:s,s:s,s:I,s:s,s:{s:s,s:s},s:{s:o}}", "iss", issuer, "aud", audience,
                          "iat", (json_int_t)now, "jti", jti, "sub_id", "format", "opaque", "id",
                          stream_id, "events", SSF_EVENT_VERIFICATION, ev);
    char *text = c ? json_dumps(c, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(c);
    return text;
}

/* Sign a new SET for d, addressed to aud, into d->set. UNAVAILABLE while
 * the signer is down. */
static ztb_err make_set(struct delivery *d, const char *aud)
{
    uint8_t raw[16];
    char jti[32];
    if (ztb_random(raw, sizeof(raw)) != ZTB_OK ||
        ztb_b64url_encode(raw, sizeof(raw), jti, sizeof(jti), NULL) != ZTB_OK)
        return ZTB_ERR_CRYPTO;
    char *claims =
        d->verification
            ? ssf_verification_claims(T.issuer, aud, d->stream, d->state, d->at, jti)
            : ssf_set_claims(T.issuer, T.td, aud, d->response, d->target, d->cause, d->at, jti);
    if (claims == NULL)
        return ZTB_ERR_NOMEM;
    struct keys_state *ks = keys_acquire();
    ztb_err rv = ZTB_ERR_UNAVAILABLE;
    if (ks != NULL) {
        ztb_buf out;
        ztb_buf_init(&out, 2048);
        ztb_jws_sign_opts o = {.typ = SSF_SET_TYP};
        rv = keys_sign_jws(ks, &o, claims, strlen(claims), &out);
        if (rv == ZTB_OK && ztb_buf_error(&out) == ZTB_OK)
            d->set = strdup(ztb_buf_cstr(&out));
        else if (rv == ZTB_OK)
            rv = ZTB_ERR_NOMEM;
        ztb_buf_free(&out);
        keys_release(ks);
    }
    free(claims);
    return rv == ZTB_OK && d->set == NULL ? ZTB_ERR_NOMEM : rv;
}

/* Where one delivery goes. */
struct dest {
    const char *name, *url, *aud, *authorization;
};

/* One attempt at d to t: TRY_DONE (delivered, or refused for good) or TRY_AGAIN. */
static int post_to(struct delivery *d, const struct dest *r)
{
    const char *event = d->verification ? SSF_EVENT_VERIFICATION
                                        : ssf_event_uri(ssf_event_for_response(d->response));
    if (d->set == NULL) {
        ztb_err rv = make_set(d, r->aud);
        if (rv != ZTB_OK) {
            metrics_add(METRIC_SSF_PUSH_FAILURES, 1);
            ztb_log(ZTB_LOG_WARN, "ssf.push_failed", ZTB_F_STR("receiver", r->name),
                    ZTB_F_STR("event", event), ZTB_F_STR("stage", "sign"), ZTB_F_ERR(rv));
            return TRY_AGAIN;
        }
    }
    struct push_request q = {.url = r->url,
                             .content_type = "application/secevent+jwt",
                             .accept = "application/json",
                             .authorization = r->authorization,
                             .body = d->set,
                             .body_len = strlen(d->set),
                             .timeout_ms = 5000};
    struct push_answer a;
    ztb_err rv = push_post(&q, &a);
    if (rv == ZTB_OK && a.status >= 200 && a.status < 300) {
        metrics_add(METRIC_SSF_PUSHED, 1);
        ztb_log(ZTB_LOG_INFO, "ssf.pushed", ZTB_F_STR("receiver", r->name),
                ZTB_F_STR("event", event), ZTB_F_STR("target", d->target),
                ZTB_F_INT("attempts", d->tries + 1));
        return 1;
    }
    metrics_add(METRIC_SSF_PUSH_FAILURES, 1);
    int final = rv == ZTB_OK && a.status >= 400 && !push_status_retryable(a.status);
    ztb_log(final ? ZTB_LOG_ERROR : ZTB_LOG_WARN, "ssf.push_failed", ZTB_F_STR("receiver", r->name),
            ZTB_F_STR("event", event), ZTB_F_STR("target", d->target),
            ZTB_F_INT("status", a.status), ZTB_F_STR("answer", rv == ZTB_OK ? a.body : a.error),
            ZTB_F_INT("attempt", d->tries + 1), ZTB_F_BOOL("final", final));
    if (final)
        metrics_add(METRIC_SSF_PUSH_DROPPED, 1);
    return final ? TRY_DONE : TRY_AGAIN;
}

static int queue_add_locked(const struct delivery *d);

/* Fan an event out to every stream that asked for it (read from Redis now,
 * on this thread). TRY_AGAIN while Redis cannot answer. */
static int fan_out(struct delivery *d)
{
    char **recs = NULL;
    size_t n = 0;
    ztb_err rv = store_ssf_list(&recs, &n);
    if (rv != ZTB_OK) {
        metrics_add(METRIC_SSF_PUSH_FAILURES, 1);
        ztb_log(ZTB_LOG_WARN, "ssf.push_failed", ZTB_F_STR("receiver", "(streams)"),
                ZTB_F_STR("stage", "read streams"), ZTB_F_ERR(rv));
        return TRY_AGAIN;
    }
    unsigned ev = ssf_event_for_response(d->response);
    for (size_t i = 0; i < n; i++) {
        struct ssf_stream s;
        if (ssf_stream_from_record(recs[i], strlen(recs[i]), &s) != ZTB_OK)
            continue;
        if ((s.events & ev) != 0 && s.status != SSF_STREAM_DISABLED) {
            struct delivery one = *d;
            one.kind = D_STREAM;
            one.set = NULL;
            one.tries = 0;
            snprintf(one.stream, sizeof(one.stream), "%s", s.id);
            pthread_mutex_lock(&T.mu);
            (void)queue_add_locked(&one);
            pthread_mutex_unlock(&T.mu);
        }
        ssf_stream_clear(&s);
    }
    store_ssf_list_free(recs, n);
    return TRY_DONE;
}

/* One attempt at a stream's delivery, with the stream as it is now: gone or
 * disabled ends it, paused holds it (SSF 1.0 §8.1.2), a change of events
 * that no longer asks for it ends it. */
static int to_stream(struct delivery *d)
{
    char *rec = NULL;
    ztb_err rv = store_ssf_get(d->stream, &rec);
    if (rv == ZTB_ERR_NOT_FOUND)
        return TRY_DONE;
    if (rv != ZTB_OK) {
        metrics_add(METRIC_SSF_PUSH_FAILURES, 1);
        ztb_log(ZTB_LOG_WARN, "ssf.push_failed", ZTB_F_STR("receiver", d->stream),
                ZTB_F_STR("stage", "read stream"), ZTB_F_ERR(rv));
        return TRY_AGAIN;
    }
    struct ssf_stream s;
    rv = ssf_stream_from_record(rec, strlen(rec), &s);
    ztb_free_secret_str(rec);
    if (rv != ZTB_OK)
        return TRY_DONE;
    int r = TRY_DONE;
    if (s.status == SSF_STREAM_PAUSED) {
        r = TRY_HOLD;
    } else if (!ssf_streams_push_host_ok(&T.c->streams, s.url)) {
        /* the host left streams.push_hosts since the stream was made */
        ztb_log(ZTB_LOG_WARN, "ssf.push_refused", ZTB_F_STR("receiver", s.id),
                ZTB_F_STR("why", "the host is no longer one of streams.push_hosts"));
    } else if (s.status == SSF_STREAM_ENABLED &&
               (d->verification || (s.events & ssf_event_for_response(d->response)) != 0)) {
        struct dest t = {
            .name = s.id, .url = s.url, .aud = s.aud, .authorization = s.authorization};
        r = post_to(d, &t);
    }
    ssf_stream_clear(&s);
    return r;
}

static int attempt(struct delivery *d)
{
    if (d->kind == D_STREAMS)
        return fan_out(d);
    if (d->kind == D_STREAM)
        return to_stream(d);
    const struct ssf_receiver *r = &T.c->rx[d->rx];
    struct dest t = {
        .name = r->name, .url = r->url, .aud = r->audience, .authorization = r->authorization};
    return post_to(d, &t);
}

static const char *dest_name(const struct delivery *d)
{
    return d->kind == D_RECEIVER ? T.c->rx[d->rx].name
           : d->kind == D_STREAM ? d->stream
                                 : "(streams)";
}

static void drop(struct delivery *d, const char *why)
{
    metrics_add(METRIC_SSF_PUSH_DROPPED, 1);
    ztb_log(ZTB_LOG_ERROR, "ssf.push_dropped", ZTB_F_STR("receiver", dest_name(d)),
            ZTB_F_STR("target", d->target), ZTB_F_STR("why", why));
    free(d->set);
    d->set = NULL;
}

static void *run(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&T.mu);
    while (!T.stop) {
        if (T.n == 0) {
            pthread_cond_wait(&T.cv, &T.mu);
            continue;
        }
        size_t first = 0;
        for (size_t i = 1; i < T.n; i++)
            if (T.q[i].due < T.q[first].due)
                first = i;
        uint64_t now = mono_ms();
        if (T.q[first].due > now) {
            uint64_t wake = T.q[first].due;
            struct timespec ts = {.tv_sec = (time_t)(wake / 1000),
                                  .tv_nsec = (long)(wake % 1000) * 1000000L};
            pthread_cond_timedwait(&T.cv, &T.mu, &ts);
            continue;
        }
        struct delivery d = T.q[first];
        memmove(&T.q[first], &T.q[first + 1], (T.n - first - 1) * sizeof(T.q[0]));
        T.n--;
        pthread_mutex_unlock(&T.mu);
        int done = attempt(&d);
        pthread_mutex_lock(&T.mu);
        if (done == TRY_DONE) {
            free(d.set);
            continue;
        }
        if (done == TRY_HOLD) {
            if (mono_ms() - d.queued > SSF_HOLD_MS) {
                drop(&d, "held too long on a paused stream");
                continue;
            }
            d.due = mono_ms() + SSF_HOLD_POLL_MS;
            T.q[T.n++] = d; /* it came out of the queue: there is room */
            continue;
        }
        d.tries++;
        if (d.tries >= SSF_MAX_ATTEMPTS) {
            drop(&d, "too many attempts");
            continue;
        }
        if (T.n == SSF_QUEUE_MAX) {
            drop(&d, "queue full");
            continue;
        }
        uint32_t rnd = 0;
        (void)RAND_bytes((unsigned char *)&rnd, sizeof(rnd));
        d.due = mono_ms() + push_backoff_ms(d.tries, SSF_BACKOFF_MS, SSF_BACKOFF_CAP, rnd);
        T.q[T.n++] = d;
    }
    pthread_mutex_unlock(&T.mu);
    return NULL;
}

ztb_err ssf_transmit_start(const struct ssf_config *c, const char *issuer, const char *trust_domain)
{
    if (c == NULL || (c->nrx == 0 && !c->streams.enabled) || T.running)
        return ZTB_OK;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    int e = pthread_cond_init(&T.cv, &ca);
    pthread_condattr_destroy(&ca);
    if (e != 0)
        return ZTB_ERR_INTERNAL;
    ztb_err rv = push_client_init();
    if (rv != ZTB_OK)
        return rv;
    T.c = c;
    snprintf(T.issuer, sizeof(T.issuer), "%s", issuer);
    snprintf(T.td, sizeof(T.td), "%s", trust_domain);
    T.stop = 0;
    T.n = 0;
    if (pthread_create(&T.thread, NULL, run, NULL) != 0)
        return ZTB_ERR_INTERNAL;
    pthread_mutex_lock(&T.mu);
    T.running = 1;
    pthread_mutex_unlock(&T.mu);
    return ZTB_OK;
}

void ssf_transmit_stop(void)
{
    pthread_mutex_lock(&T.mu);
    int running = T.running;
    T.stop = 1;
    T.running = 0;
    pthread_cond_signal(&T.cv);
    pthread_mutex_unlock(&T.mu);
    if (!running)
        return;
    pthread_join(T.thread, NULL);
    for (size_t i = 0; i < T.n; i++)
        drop(&T.q[i], "broker stopping");
    T.n = 0;
    pthread_cond_destroy(&T.cv);
}

/* Queue d (copied) due now; under T.mu. 0 if the queue is full (counted). */
static int queue_add_locked(const struct delivery *d)
{
    if (T.n == SSF_QUEUE_MAX) {
        metrics_add(METRIC_SSF_PUSH_DROPPED, 1);
        ztb_log(ZTB_LOG_ERROR, "ssf.push_dropped", ZTB_F_STR("receiver", dest_name(d)),
                ZTB_F_STR("target", d->target), ZTB_F_STR("why", "queue full"));
        return 0;
    }
    struct delivery *q = &T.q[T.n++];
    *q = *d;
    q->due = q->queued = mono_ms();
    pthread_cond_signal(&T.cv);
    return 1;
}

void ssf_transmit_revocation(policy_response_kind response, const char *target, const char *cause)
{
    unsigned ev = ssf_event_for_response(response);
    if (ev == 0 || target == NULL || strlen(target) > STORE_ID_MAX)
        return;
    struct delivery d;
    memset(&d, 0, sizeof(d));
    d.response = response;
    snprintf(d.target, sizeof(d.target), "%s", target);
    snprintf(d.cause, sizeof(d.cause), "%s", cause ? cause : "");
    d.at = (int64_t)time(NULL);
    pthread_mutex_lock(&T.mu);
    for (size_t i = 0; T.running && i < T.c->nrx; i++) {
        if ((T.c->rx[i].events & ev) == 0)
            continue;
        d.kind = D_RECEIVER;
        d.rx = i;
        (void)queue_add_locked(&d);
    }
    if (T.running && T.c->streams.enabled) {
        d.kind = D_STREAMS;
        (void)queue_add_locked(&d);
    }
    pthread_mutex_unlock(&T.mu);
}

ztb_err ssf_transmit_verification(const char *stream_id, const char *state)
{
    if (!store_ssf_id_ok(stream_id) || (state != NULL && strlen(state) > SSF_STATE_MAX))
        return ZTB_ERR_INVALID_ARG;
    struct delivery d;
    memset(&d, 0, sizeof(d));
    d.kind = D_STREAM;
    d.verification = 1;
    snprintf(d.stream, sizeof(d.stream), "%s", stream_id);
    snprintf(d.state, sizeof(d.state), "%s", state ? state : "");
    snprintf(d.target, sizeof(d.target), "%s", stream_id);
    d.at = (int64_t)time(NULL);
    pthread_mutex_lock(&T.mu);
    size_t verifying = 0;
    for (size_t i = 0; i < T.n; i++)
        verifying += T.q[i].verification != 0;
    int ok = T.running && verifying < SSF_VERIFY_QUEUE_MAX && queue_add_locked(&d);
    pthread_mutex_unlock(&T.mu);
    return ok ? ZTB_OK : ZTB_ERR_UNAVAILABLE;
}

void handle_ssf_configuration(struct http_req *req, struct http_resp *resp)
{
    const struct broker *b = broker_of(req);
    char jwks[300];
    snprintf(jwks, sizeof(jwks), "%s/.well-known/jwks.json", b->issuer);
    json_t *events = json_array();
    for (unsigned bit = 1; bit != 0 && bit <= SSF_EV_KEY_TAINTED; bit <<= 1)
        if (bit & SSF_EV_SENT)
            json_array_append_new(events, json_string(ssf_event_uri(bit)));
    json_t *j = json_pack("{s:s,s:s,s:s,s:[s],s:o,s:s}", "spec_version", "1_0", "issuer", b->issuer,
                          "jwks_uri", jwks, "delivery_methods_supported", SSF_DELIVERY_PUSH,
                          "events_supported", events, "default_subjects", "ALL");
    if (j != NULL && b->ssf != NULL && b->ssf->streams.enabled) {
        /* the stream-management API (ssf_streams_http.c) */
        static const struct {
            const char *member, *path;
        } eps[] = {{"configuration_endpoint", SSF_STREAMS_PATH},
                   {"status_endpoint", SSF_STATUS_PATH},
                   {"verification_endpoint", SSF_VERIFY_PATH}};
        for (size_t i = 0; i < sizeof(eps) / sizeof(eps[0]); i++) {
            char url[300];
            snprintf(url, sizeof(url), "%s%s", b->issuer, eps[i].path);
            json_object_set_new(j, eps[i].member, json_string(url));
        }
        json_object_set_new(j, "authorization_schemes",
                            json_pack("[{s:s}]", "spec_urn", "urn:ietf:rfc:6749"));
    }
    if (j == NULL) {
        http_resp_error(resp, 500, "server_error", "cannot render the SSF configuration");
        return;
    }
    http_resp_json_value(resp, 200, j);
    http_resp_header(resp, "Cache-Control", "public, max-age=3600");
}
