/*
 * agent.c - the agent client (see ztb/agent.h and docs/protocol.md).
 *
 * State and locks: `mu` guards the identity (key reference, documents,
 * validity), the session credential and the broker metadata; it is never
 * held across I/O. `session_mu` is held by the one thread that fetches a
 * new session, so a burst of threads whose session ran out causes one
 * /v1/session call, not one each. Network calls work on a snapshot (a key
 * reference, a copy of the session in a stack buffer that is wiped after).
 *
 * Requests: /v1/enroll and /v1/renew (JSON), /v1/session, /v1/token and
 * /v1/introspect (forms). Every request goes through call(), which retries
 * 429, 503 and unreachable brokers with jittered exponential backoff,
 * honours Retry-After, and stops when the retry budget would be exceeded.
 * A DPoP proof is made afresh for each attempt (the broker refuses a proof
 * id twice). A 401 on a session is answered once by fetching a new session.
 *
 * What it must never do: send the key anywhere, keep a token, credential or
 * join token in memory it does not wipe, put one in an error detail, or
 * accept an identity document that is not for its own key and name.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include <ztb/agent.h>

#include "common/json_gate.h"
#include "common/base64url.h"
#include "common/guard.h"
#include "common/secret.h"
#include "common/utf8.h"
#include "pki/csr.h"
#include "pki/dpop.h"
#include "pki/jws.h"
#include "pki/key.h"
#include "pki/spiffe.h"
#include "sdk/src/agent_internal.h"
#include "sdk/src/clock.h"
#include "sdk/src/errdetail.h"
#include "sdk/src/http_client.h"
#include "sdk/src/identity.h"
#include "sdk/src/sigpipe.h"
#include "wire/error_response.h"
#include "wire/wire.h"

#define SESSION_MAX       512
#define ASSERTION_LIFE_S  60
#define FIELD_MAX         1024
#define DETAILS_MAX       4096
#define URL_MAX           2048
#define BACKOFF_BASE_MS   100
#define BACKOFF_CAP_MS    5000
#define RENEW_RETRY_MIN_S 5
#define RENEW_RETRY_MAX_S 300

struct ztb_agent_config {
    char *broker, *name, *td, *cred_file, *ca_file;
    int allow_http, dpop, auto_renew;
    unsigned timeout_ms, max_retries, max_wait_ms;
};

struct ztb_agent {
    char *broker; /* base URL, no trailing '/' */
    char name[ZTB_AGENT_NAME_MAX + 1];
    char spiffe_id[ZTB_SPIFFE_ID_MAX + 1];
    char *cred_file;
    unsigned max_retries, max_wait_ms;
    struct http_client *http;
    ztb_key *dpop_key; /* NULL unless DPoP is on */

    pthread_mutex_t mu;
    struct identity id;
    char session[SESSION_MAX + 1]; /* secret; "" if none */
    int64_t session_until_ms;      /* monotonic: renew after this */
    char *token_endpoint;          /* from the metadata: assertion aud, DPoP htu */

    pthread_mutex_t session_mu;

    int auto_renew;
    pthread_t thread;
    int thread_started;
    pthread_cond_t cv; /* wakes the renewal thread (new identity, stop) */
    int stop;
};

/* ---- configuration ------------------------------------------------------- */

ztb_agent_config *ztb_agent_config_new(void)
{
    ztb_agent_config *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    c->auto_renew = 1;
    c->timeout_ms = 10000;
    c->max_retries = 3;
    c->max_wait_ms = 30000;
    return c;
}

void ztb_agent_config_free(ztb_agent_config *cfg)
{
    if (cfg == NULL)
        return;
    free(cfg->broker);
    free(cfg->name);
    free(cfg->td);
    free(cfg->cred_file);
    free(cfg->ca_file);
    free(cfg);
}

static ztb_err set_str(char **slot, const char *s)
{
    if (s == NULL)
        return errdetail_set(NULL, ZTB_ERR_INVALID_ARG, "NULL argument");
    size_t n = strnlen(s, URL_MAX + 1);
    if (n == 0 || n > URL_MAX || !ztb_utf8_printable(s, n))
        return errdetail_set(NULL, ZTB_ERR_INVALID_ARG, "empty, too long or not printable");
    char *copy = strdup(s);
    ZTB_ENSURE(copy != NULL, ZTB_ERR_NOMEM);
    free(*slot);
    *slot = copy;
    return ZTB_OK;
}

ztb_err ztb_agent_config_set_broker(ztb_agent_config *cfg, const char *url)
{
    ZTB_ENSURE(cfg != NULL && url != NULL, ZTB_ERR_INVALID_ARG);
    if (http_url_check(url, 1) != ZTB_OK)
        return errdetail_set(NULL, ZTB_ERR_INVALID_ARG, "not an absolute http(s) URL");
    ZTB_GUARD(set_str(&cfg->broker, url));
    size_t n = strlen(cfg->broker);
    while (n > 0 && cfg->broker[n - 1] == '/')
        cfg->broker[--n] = '\0';
    return ZTB_OK;
}

ztb_err ztb_agent_config_set_name(ztb_agent_config *cfg, const char *name)
{
    ZTB_ENSURE(cfg != NULL && name != NULL, ZTB_ERR_INVALID_ARG);
    if (ztb_spiffe_check_agent_name(name) != ZTB_OK)
        return errdetail_set(NULL, ZTB_ERR_INVALID_ARG, "not a valid agent name");
    return set_str(&cfg->name, name);
}

ztb_err ztb_agent_config_set_trust_domain(ztb_agent_config *cfg, const char *td)
{
    ZTB_ENSURE(cfg != NULL && td != NULL, ZTB_ERR_INVALID_ARG);
    if (ztb_spiffe_check_trust_domain(td) != ZTB_OK)
        return errdetail_set(NULL, ZTB_ERR_INVALID_ARG, "not a valid trust domain");
    return set_str(&cfg->td, td);
}

ztb_err ztb_agent_config_set_credential_file(ztb_agent_config *cfg, const char *path)
{
    ZTB_ENSURE(cfg != NULL, ZTB_ERR_INVALID_ARG);
    return set_str(&cfg->cred_file, path);
}

ztb_err ztb_agent_config_set_ca_file(ztb_agent_config *cfg, const char *path)
{
    ZTB_ENSURE(cfg != NULL, ZTB_ERR_INVALID_ARG);
    return set_str(&cfg->ca_file, path);
}

ztb_err ztb_agent_config_set_allow_insecure_http(ztb_agent_config *cfg, int allow)
{
    ZTB_ENSURE(cfg != NULL, ZTB_ERR_INVALID_ARG);
    cfg->allow_http = allow != 0;
    return ZTB_OK;
}

ztb_err ztb_agent_config_set_dpop(ztb_agent_config *cfg, int on)
{
    ZTB_ENSURE(cfg != NULL, ZTB_ERR_INVALID_ARG);
    cfg->dpop = on != 0;
    return ZTB_OK;
}

ztb_err ztb_agent_config_set_timeout(ztb_agent_config *cfg, unsigned ms)
{
    ZTB_ENSURE(cfg != NULL && ms >= 100 && ms <= 600000u, ZTB_ERR_INVALID_ARG);
    cfg->timeout_ms = ms;
    return ZTB_OK;
}

ztb_err ztb_agent_config_set_retries(ztb_agent_config *cfg, unsigned max_retries,
                                     unsigned max_wait_ms)
{
    ZTB_ENSURE(cfg != NULL && max_retries <= 20 && max_wait_ms <= 3600000u, ZTB_ERR_INVALID_ARG);
    cfg->max_retries = max_retries;
    cfg->max_wait_ms = max_wait_ms;
    return ZTB_OK;
}

ztb_err ztb_agent_config_set_auto_renew(ztb_agent_config *cfg, int on)
{
    ZTB_ENSURE(cfg != NULL, ZTB_ERR_INVALID_ARG);
    cfg->auto_renew = on != 0;
    return ZTB_OK;
}

/* ---- helpers ------------------------------------------------------------- */

/* "<broker><path>" into out. */
static void url_of(const struct ztb_agent *a, const char *path, char *out, size_t cap)
{
    snprintf(out, cap, "%s%s", a->broker, path);
}

/* Append name=value with form encoding (RFC 1866 application/x-www-form-urlencoded). */
static void form_add(ztb_buf *b, const char *name, const char *value)
{
    static const char hex[] = "0123456789ABCDEF";
    if (b->len > 0)
        ztb_buf_append_byte(b, '&');
    ztb_buf_append_str(b, name);
    ztb_buf_append_byte(b, '=');
    for (const unsigned char *p = (const unsigned char *)value; *p != '\0'; p++) {
        unsigned char ch = *p;
        if ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
            ch == '-' || ch == '.' || ch == '_' || ch == '~') {
            ztb_buf_append_byte(b, ch);
        } else {
            uint8_t enc[3] = {'%', (uint8_t)hex[ch >> 4], (uint8_t)hex[ch & 15]};
            ztb_buf_append(b, enc, 3);
        }
    }
}

/* A printable argument of 1..max bytes. */
static int arg_ok(const char *s, size_t max)
{
    if (s == NULL)
        return 0;
    size_t n = strnlen(s, max + 1);
    return n > 0 && n <= max && ztb_utf8_printable(s, n);
}

/* The JSON object in an HTTP response body (through the gate, common/json_gate.h;
 * the client bounded its size), or NULL. */
static json_t *body_json(const struct http_response *rs)
{
    json_t *j = NULL;
    if (rs->body.len == 0 || ztb_json_gate_load(rs->body.data, rs->body.len, SIZE_MAX,
                                                ZTB_JSON_GATE_DEPTH, 0, &j, NULL, 0) != ZTB_OK)
        return NULL;
    if (!json_is_object(j)) {
        json_decref(j);
        return NULL;
    }
    return j;
}

enum call_ctx { CTX_ENROLL, CTX_OTHER };

/*
 * Map a broker error answer (RFC 6749 §5.2 JSON, wire/error_response.h) to a
 * code and a detail: the ztb error the answer names (ZTB_WIRE_ERROR_MEMBER),
 * else, from a broker that names none, its RFC 6749 code. Never the
 * description: it is English for people and may change.
 */
static ztb_err broker_error(const struct ztb_agent *a, const struct http_response *rs,
                            enum call_ctx ctx)
{
    json_t *j = body_json(rs);
    const char *err = j ? json_string_value(json_object_get(j, "error")) : NULL;
    const char *desc = j ? json_string_value(json_object_get(j, "error_description")) : NULL;
    json_t *named = j ? json_object_get(j, ZTB_WIRE_ERROR_MEMBER) : NULL;
    ztb_err rv = ZTB_OK;
    if (err != NULL && json_is_string(named))
        rv = error_response_name_to_err(json_string_value(named), json_string_length(named));
    if (rv == ZTB_OK && err != NULL && ctx == CTX_ENROLL && strcmp(err, "invalid_grant") == 0)
        rv = ZTB_ERR_JOIN_TOKEN;
    if (rv == ZTB_OK)
        rv = error_response_for_code(err, rs->status);
    errdetail_setf(a, rv, "broker: HTTP %ld %.40s: %.180s", rs->status, err ? err : "error",
                   desc ? desc : "(no description)");
    json_decref(j);
    return rv;
}

/* A transport failure as an error with detail. */
static ztb_err transport_error(const struct ztb_agent *a, ztb_err rv,
                               const struct http_response *rs)
{
    return errdetail_setf(a, rv, "broker unreachable: %.200s",
                          rs->error[0] ? rs->error : ztb_strerror(rv));
}

/* Something to do before each attempt (e.g. a fresh DPoP proof). */
typedef ztb_err (*prep_fn)(struct ztb_agent *a, void *ud, struct http_request *rq);

static unsigned random_below(unsigned n)
{
    uint32_t r = 0;
    if (n == 0 || ztb_random(&r, sizeof(r)) != ZTB_OK)
        return 0;
    return r % n;
}

/*
 * Run rq with retries (see the top of this file). On ZTB_OK rs holds the
 * last answer, whatever its status; the caller frees it.
 */
static ztb_err call(struct ztb_agent *a, struct http_request *rq, prep_fn prep, void *ud,
                    struct http_response *rs)
{
    int64_t waited = 0;
    for (unsigned attempt = 0;; attempt++) {
        if (prep != NULL) {
            ztb_err prv = prep(a, ud, rq);
            if (prv != ZTB_OK) {
                memset(rs, 0, sizeof(*rs));
                ztb_buf_init(&rs->body, 1);
                return prv;
            }
        }
        ztb_err rv = http_client_do(a->http, rq, rs);
        int retry =
            rv == ZTB_ERR_UNAVAILABLE || (rv == ZTB_OK && (rs->status == 429 || rs->status == 503));
        if (!retry || attempt >= a->max_retries)
            return rv;
        int64_t wait = BACKOFF_BASE_MS << (attempt < 6 ? attempt : 6);
        if (wait > BACKOFF_CAP_MS)
            wait = BACKOFF_CAP_MS;
        wait = wait / 2 + random_below((unsigned)wait / 2 + 1); /* jitter: 50-100% */
        if (rv == ZTB_OK && rs->retry_after_s >= 0) {
            int64_t ra = rs->retry_after_s * 1000;
            if (ra >= wait)
                wait = ra + random_below((unsigned)(ra / 10 < 1000 ? ra / 10 + 1 : 1000));
        }
        if (waited + wait > (int64_t)a->max_wait_ms)
            return rv; /* over the budget: the last answer stands */
        http_response_free(rs);
        clock_sleep_ms((unsigned)wait);
        waited += wait;
    }
}

/* ---- metadata, assertions, sessions -------------------------------------- */

/* The token endpoint from the broker's metadata (fetched once). *out is a copy. */
static ztb_err token_endpoint(struct ztb_agent *a, char out[URL_MAX + 1])
{
    pthread_mutex_lock(&a->mu);
    int have = a->token_endpoint != NULL;
    if (have)
        snprintf(out, URL_MAX + 1, "%s", a->token_endpoint);
    pthread_mutex_unlock(&a->mu);
    if (have)
        return ZTB_OK;
    char url[URL_MAX + 64];
    url_of(a, "/.well-known/oauth-authorization-server", url, sizeof(url));
    struct http_request rq = {.method = "GET", .url = url, .max_body = 65536};
    struct http_response rs;
    ztb_err rv = call(a, &rq, NULL, NULL, &rs);
    if (rv != ZTB_OK) {
        transport_error(a, rv, &rs);
    } else if (rs.status != 200) {
        rv = broker_error(a, &rs, CTX_OTHER);
    } else {
        json_t *j = body_json(&rs);
        const char *te = j ? json_string_value(json_object_get(j, "token_endpoint")) : NULL;
        if (te == NULL || !arg_ok(te, URL_MAX)) {
            rv = errdetail_set(a, ZTB_ERR_HTTP, "broker metadata has no token_endpoint");
        } else {
            snprintf(out, URL_MAX + 1, "%s", te);
            char *copy = strdup(te);
            pthread_mutex_lock(&a->mu);
            if (a->token_endpoint == NULL && copy != NULL) {
                a->token_endpoint = copy;
                copy = NULL;
            }
            pthread_mutex_unlock(&a->mu);
            free(copy);
        }
        json_decref(j);
    }
    http_response_free(&rs);
    return rv;
}

/* A client assertion (RFC 7523) for aud signed by key, appended to out. */
static ztb_err make_assertion(const struct ztb_agent *a, const ztb_key *key, const char *aud,
                              ztb_buf *out)
{
    uint8_t r[16];
    char jti[32];
    ZTB_GUARD(ztb_random(r, sizeof(r)));
    ZTB_GUARD(ztb_b64url_encode(r, sizeof(r), jti, sizeof(jti), NULL));
    int64_t now = clock_now_s();
    char store[4096];
    ztb_buf p;
    ztb_buf_init_fixed(&p, store, sizeof(store));
    ztb_buf_append_str(&p, "{\"iss\":\"");
    ztb_buf_append_json_escaped(&p, a->spiffe_id, strlen(a->spiffe_id));
    ztb_buf_append_str(&p, "\",\"sub\":\"");
    ztb_buf_append_json_escaped(&p, a->spiffe_id, strlen(a->spiffe_id));
    ztb_buf_append_str(&p, "\",\"aud\":\"");
    ztb_buf_append_json_escaped(&p, aud, strlen(aud));
    ztb_buf_printf(&p, "\",\"iat\":%lld,\"exp\":%lld,\"jti\":\"%s\"}", (long long)now,
                   (long long)now + ASSERTION_LIFE_S, jti);
    ZTB_GUARD(ztb_buf_error(&p));
    static const ztb_jws_sign_opts so = {.typ = "JWT", .omit_kid = 1};
    return ztb_jws_sign(key, &so, p.data, p.len, out);
}

/* A reference to the current key if enrolled and valid; STATE otherwise. */
static ztb_err current_key(struct ztb_agent *a, ztb_key **key)
{
    pthread_mutex_lock(&a->mu);
    int valid = a->id.key != NULL && a->id.not_after > clock_now_s();
    *key = valid ? ztb_key_ref(a->id.key) : NULL;
    int had = a->id.key != NULL;
    pthread_mutex_unlock(&a->mu);
    if (!valid)
        return errdetail_set(a, ZTB_ERR_STATE,
                             had ? "the identity document expired: enroll again with a join token"
                                 : "not enrolled: call ztb_agent_enroll with a join token");
    return ZTB_OK;
}

struct session_prep {
    const ztb_key *key;
    const char *aud;
    ztb_buf form;
};

/* Before each /v1/session attempt: a fresh client assertion (its jti is single-use). */
static ztb_err session_prep_fn(struct ztb_agent *a, void *ud, struct http_request *rq)
{
    struct session_prep *p = ud;
    char store[4096];
    ztb_buf assertion;
    ztb_buf_init_fixed(&assertion, store, sizeof(store));
    ztb_err rv = make_assertion(a, p->key, p->aud, &assertion);
    ztb_buf_reset(&p->form);
    if (rv == ZTB_OK) {
        form_add(&p->form, "client_assertion_type", ZTB_WIRE_ASSERTION_JWT);
        form_add(&p->form, "client_assertion", ztb_buf_cstr(&assertion));
        rv = ztb_buf_error(&p->form);
    }
    ztb_wipe(store, sizeof(store));
    rq->body = p->form.data;
    rq->body_len = p->form.len;
    return rv;
}

/* A session credential into out (copy, secret): the current one, or a new one. */
static ztb_err get_session(struct ztb_agent *a, char out[SESSION_MAX + 1])
{
    int64_t now = clock_mono_ms();
    pthread_mutex_lock(&a->mu);
    int have = a->session[0] != '\0' && now < a->session_until_ms;
    if (have)
        memcpy(out, a->session, SESSION_MAX + 1);
    pthread_mutex_unlock(&a->mu);
    if (have)
        return ZTB_OK;

    pthread_mutex_lock(&a->session_mu);
    pthread_mutex_lock(&a->mu); /* another thread may have fetched one meanwhile */
    have = a->session[0] != '\0' && clock_mono_ms() < a->session_until_ms;
    if (have)
        memcpy(out, a->session, SESSION_MAX + 1);
    pthread_mutex_unlock(&a->mu);
    if (have) {
        pthread_mutex_unlock(&a->session_mu);
        return ZTB_OK;
    }
    ztb_key *key = NULL;
    char te[URL_MAX + 1];
    struct session_prep sp;
    ztb_buf_init_secret(&sp.form, 8192);
    struct http_response rs;
    memset(&rs, 0, sizeof(rs));
    json_t *j = NULL;
    ztb_err rv = ZTB_OK;
    ZTB_TRY(rv, current_key(a, &key));
    ZTB_TRY(rv, token_endpoint(a, te));
    sp.key = key;
    sp.aud = te;
    char url[URL_MAX + 64];
    url_of(a, "/v1/session", url, sizeof(url));
    struct http_request rq = {.method = "POST",
                              .url = url,
                              .content_type = "application/x-www-form-urlencoded",
                              .max_body = 16384};
    rv = call(a, &rq, session_prep_fn, &sp, &rs);
    if (rv != ZTB_OK) {
        if (rs.error[0] != '\0')
            transport_error(a, rv, &rs);
        goto out;
    }
    if (rs.status != 200) {
        rv = broker_error(a, &rs, CTX_OTHER);
        goto out;
    }
    j = body_json(&rs);
    const char *cred = j ? json_string_value(json_object_get(j, "session")) : NULL;
    json_t *ei = j ? json_object_get(j, "expires_in") : NULL;
    if (cred == NULL || strlen(cred) > SESSION_MAX || !json_is_integer(ei) ||
        json_integer_value(ei) <= 0) {
        rv = errdetail_set(a, ZTB_ERR_HTTP, "broker sent an unusable session answer");
        goto out;
    }
    int64_t life_ms = (int64_t)json_integer_value(ei) * 1000;
    int64_t margin = life_ms / 5 < 30000 ? life_ms / 5 : 30000; /* renew before it runs out */
    pthread_mutex_lock(&a->mu);
    ztb_wipe(a->session, sizeof(a->session));
    snprintf(a->session, sizeof(a->session), "%s", cred);
    a->session_until_ms = clock_mono_ms() + life_ms - margin;
    memcpy(out, a->session, SESSION_MAX + 1);
    pthread_mutex_unlock(&a->mu);
out:
    if (j != NULL) {
        const char *c = json_string_value(json_object_get(j, "session"));
        if (c != NULL)
            ztb_wipe((void *)c, strlen(c)); /* jansson's copy of the credential */
        json_decref(j);
    }
    http_response_free(&rs);
    ztb_buf_free(&sp.form);
    ztb_key_free(key);
    pthread_mutex_unlock(&a->session_mu);
    return rv;
}

/* Forget the session used if it is still the current one (the broker refused it). */
static void drop_session(struct ztb_agent *a, const char *used)
{
    pthread_mutex_lock(&a->mu);
    if (ztb_ct_eq_len(a->session, strlen(a->session), used, strlen(used))) {
        ztb_wipe(a->session, sizeof(a->session));
        a->session_until_ms = 0;
    }
    pthread_mutex_unlock(&a->mu);
}

/* ---- handle --------------------------------------------------------------- */

static void *renew_main(void *arg);

void ztb_agent_free(ztb_agent *a)
{
    if (a == NULL)
        return;
    if (a->thread_started) {
        pthread_mutex_lock(&a->mu);
        a->stop = 1;
        pthread_cond_broadcast(&a->cv);
        pthread_mutex_unlock(&a->mu);
        pthread_join(a->thread, NULL);
    }
    identity_clear(&a->id);
    ztb_key_free(a->dpop_key);
    ztb_wipe(a->session, sizeof(a->session));
    http_client_free(a->http);
    pthread_mutex_destroy(&a->mu);
    pthread_mutex_destroy(&a->session_mu);
    pthread_cond_destroy(&a->cv);
    free(a->token_endpoint);
    free(a->broker);
    free(a->cred_file);
    free(a);
}

static ztb_err new_fail(ztb_agent *a, ztb_err rv, const char *msg)
{
    ztb_agent_free(a);
    return errdetail_setf(NULL, rv, "%s", msg);
}

ztb_err ztb_agent_new(const ztb_agent_config *cfg, ztb_agent **out)
{
    if (out != NULL)
        *out = NULL;
    if (cfg == NULL || out == NULL)
        return errdetail_set(NULL, ZTB_ERR_INVALID_ARG, "NULL argument");
    if (cfg->broker == NULL || cfg->name == NULL)
        return errdetail_set(NULL, ZTB_ERR_INVALID_ARG,
                             "the broker URL and agent name are required");
    if (http_url_check(cfg->broker, cfg->allow_http) != ZTB_OK)
        return errdetail_set(NULL, ZTB_ERR_INVALID_ARG,
                             "the broker URL must be https (or http to a loopback host)");
    ztb_agent *a = calloc(1, sizeof(*a));
    if (a == NULL)
        return ZTB_ERR_NOMEM;
    pthread_condattr_t ca;
    int ok = pthread_condattr_init(&ca) == 0;
    if (ok) {
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        ok = pthread_cond_init(&a->cv, &ca) == 0;
        pthread_condattr_destroy(&ca);
    }
    if (!ok || pthread_mutex_init(&a->mu, NULL) != 0 ||
        pthread_mutex_init(&a->session_mu, NULL) != 0) {
        free(a);
        return ZTB_ERR_NOMEM;
    }
    a->max_retries = cfg->max_retries;
    a->max_wait_ms = cfg->max_wait_ms;
    a->auto_renew = cfg->auto_renew;
    snprintf(a->name, sizeof(a->name), "%s", cfg->name);
    a->broker = strdup(cfg->broker);
    a->cred_file = cfg->cred_file ? strdup(cfg->cred_file) : NULL;
    if (a->broker == NULL || (cfg->cred_file != NULL && a->cred_file == NULL))
        return new_fail(a, ZTB_ERR_NOMEM, "out of memory");
    ztb_buf id;
    ztb_buf_init_fixed(&id, a->spiffe_id, sizeof(a->spiffe_id));
    ztb_err rv = ztb_spiffe_agent_id(cfg->td ? cfg->td : "ztb.local", cfg->name, &id);
    if (rv != ZTB_OK)
        return new_fail(a, ZTB_ERR_INVALID_ARG, "the trust domain and name make no SPIFFE ID");
    struct http_client_opts ho = {.ca_file = cfg->ca_file, .timeout_ms = cfg->timeout_ms};
    rv = http_client_new(&ho, &a->http);
    if (rv != ZTB_OK)
        return new_fail(a, rv, "out of memory");
    if (cfg->dpop && (rv = ztb_key_generate(&a->dpop_key)) != ZTB_OK)
        return new_fail(a, rv, "cannot make a DPoP key");
    if (a->cred_file != NULL) {
        rv = identity_load(a->cred_file, a->spiffe_id, &a->id);
        if (rv != ZTB_OK && rv != ZTB_ERR_NOT_FOUND)
            return new_fail(a, rv,
                            rv == ZTB_ERR_PERMISSION
                                ? "credential file: must be ours, mode 0600, not a symlink"
                                : "credential file: damaged, or not this agent's identity");
    }
    if (a->auto_renew) {
        sigset_t old;
        sigpipe_block_all_for_new_thread(&old);
        int prc = pthread_create(&a->thread, NULL, renew_main, a);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (prc != 0)
            return new_fail(a, ZTB_ERR_NOMEM, "cannot start the renewal thread");
        a->thread_started = 1;
    }
    *out = a;
    return ZTB_OK;
}

int ztb_agent_is_enrolled(const ztb_agent *a)
{
    if (a == NULL)
        return 0;
    ztb_agent *m = (ztb_agent *)a; /* the lock is not part of the value */
    pthread_mutex_lock(&m->mu);
    int r = a->id.key != NULL && a->id.not_after > clock_now_s();
    pthread_mutex_unlock(&m->mu);
    return r;
}

int64_t ztb_agent_identity_expires_at(const ztb_agent *a)
{
    if (a == NULL)
        return 0;
    ztb_agent *m = (ztb_agent *)a;
    pthread_mutex_lock(&m->mu);
    int64_t t = a->id.key != NULL ? a->id.not_after : 0;
    pthread_mutex_unlock(&m->mu);
    return t;
}

const char *ztb_agent_spiffe_id(const ztb_agent *a)
{
    return a != NULL ? a->spiffe_id : "";
}

const char *ztb_agent_errdetail(const ztb_agent *a)
{
    return errdetail_get(a);
}

/* ---- enrollment and renewal ---------------------------------------------- */

/*
 * Check an enroll/renew answer for key and make it the agent's identity
 * (written to the credential file first when there is one).
 */
static ztb_err install(struct ztb_agent *a, ztb_key *key, const struct http_response *rs)
{
    json_t *j = body_json(rs);
    const char *sid = j ? json_string_value(json_object_get(j, "spiffe_id")) : NULL;
    const char *leaf = j ? json_string_value(json_object_get(j, "identity")) : NULL;
    const char *chain = j ? json_string_value(json_object_get(j, "ca")) : NULL;
    struct identity id = {0};
    ztb_err rv = ZTB_OK;
    if (sid == NULL || leaf == NULL || strcmp(sid, a->spiffe_id) != 0) {
        rv = errdetail_set(a, ZTB_ERR_CERT, "broker answer names another identity or none");
        goto out;
    }
    size_t ll = strlen(leaf), cl = chain ? strlen(chain) : 0;
    if (ll + cl + 2 > IDENTITY_MAX) {
        rv = errdetail_set(a, ZTB_ERR_CERT, "identity document too large");
        goto out;
    }
    char *pem = malloc(ll + cl + 2);
    if (pem == NULL) {
        rv = ZTB_ERR_NOMEM;
        goto out;
    }
    size_t pl = ll;
    memcpy(pem, leaf, ll);
    if (ll > 0 && leaf[ll - 1] != '\n')
        pem[pl++] = '\n';
    if (cl > 0)
        memcpy(pem + pl, chain, cl);
    pl += cl;
    pem[pl] = '\0';
    rv = identity_check(key, a->spiffe_id, pem, pl, &id.not_before, &id.not_after);
    if (rv != ZTB_OK) {
        free(pem);
        errdetail_set(a, rv, "broker answered with an identity document for another key or name");
        goto out;
    }
    id.pem = pem;
    id.pem_len = pl;
    id.key = ztb_key_ref(key);
    ztb_err saved = ZTB_OK;
    if (a->cred_file != NULL)
        saved = identity_save(a->cred_file, &id);
    pthread_mutex_lock(&a->mu);
    identity_clear(&a->id);
    a->id = id;
    memset(&id, 0, sizeof(id));
    ztb_wipe(a->session, sizeof(a->session)); /* a session belongs to the old identity */
    a->session_until_ms = 0;
    pthread_cond_broadcast(&a->cv);
    pthread_mutex_unlock(&a->mu);
    if (saved != ZTB_OK)
        rv = errdetail_setf(a, saved, "enrolled, but the credential file %s could not be written",
                            a->cred_file);
out:
    identity_clear(&id);
    json_decref(j);
    return rv;
}

/* POST a JSON body to /v1/enroll or /v1/renew and install the answer. */
static ztb_err post_identity(struct ztb_agent *a, const char *path, ztb_key *key, json_t *body,
                             enum call_ctx ctx)
{
    char *text = json_dumps(body, JSON_COMPACT);
    if (text == NULL)
        return ZTB_ERR_NOMEM;
    char url[URL_MAX + 64];
    url_of(a, path, url, sizeof(url));
    struct http_request rq = {.method = "POST",
                              .url = url,
                              .content_type = "application/json",
                              .body = text,
                              .body_len = strlen(text),
                              .max_body = 65536};
    struct http_response rs;
    ztb_err rv = call(a, &rq, NULL, NULL, &rs);
    if (rv != ZTB_OK)
        transport_error(a, rv, &rs);
    else if (rs.status != 201 && rs.status != 200)
        rv = broker_error(a, &rs, ctx);
    else
        rv = install(a, key, &rs);
    http_response_free(&rs);
    ztb_free_secret_str(text); /* holds the join token or an assertion */
    return rv;
}

static const char *const join_secret_keys[] = {"join_token", NULL};
static const char *const renew_secret_keys[] = {"client_assertion", NULL};

/* Wipe the secret strings of a JSON body before it is freed. */
static void json_wipe_free(json_t *j, const char *const *keys)
{
    for (const char *const *k = keys; j != NULL && *k != NULL; k++) {
        const char *s = json_string_value(json_object_get(j, *k));
        if (s != NULL)
            ztb_wipe((void *)s, strlen(s));
    }
    json_decref(j);
}

ztb_err ztb_agent_enroll(ztb_agent *a, const char *join_token)
{
    if (a == NULL || !arg_ok(join_token, 512))
        return errdetail_set(a, ZTB_ERR_INVALID_ARG, "a join token is required");
    ztb_key *key = NULL;
    ztb_buf csr;
    ztb_buf_init(&csr, 16384);
    json_t *body = NULL;
    ztb_err rv = ZTB_OK;
    ZTB_TRY(rv, ztb_key_generate(&key));
    ZTB_TRY(rv, ztb_csr_make(key, a->spiffe_id, &csr));
    body = json_pack("{s:s,s:s}", "join_token", join_token, "csr", ztb_buf_cstr(&csr));
    ZTB_CHECK(rv, body != NULL, ZTB_ERR_NOMEM);
    rv = post_identity(a, "/v1/enroll", key, body, CTX_ENROLL);
out:
    json_wipe_free(body, join_secret_keys);
    ztb_buf_free(&csr);
    ztb_key_free(key);
    return rv;
}

ztb_err ztb_agent_renew(ztb_agent *a)
{
    if (a == NULL)
        return ZTB_ERR_INVALID_ARG;
    ztb_key *key = NULL;
    ztb_buf csr, assertion;
    ztb_buf_init(&csr, 16384);
    ztb_buf_init_secret(&assertion, 4096);
    json_t *body = NULL;
    char te[URL_MAX + 1];
    ztb_err rv = ZTB_OK;
    ZTB_TRY(rv, current_key(a, &key));
    ZTB_TRY(rv, token_endpoint(a, te));
    ZTB_TRY(rv, ztb_csr_make(key, a->spiffe_id, &csr));
    ZTB_TRY(rv, make_assertion(a, key, te, &assertion));
    body = json_pack("{s:s,s:s,s:s}", "csr", ztb_buf_cstr(&csr), "client_assertion_type",
                     ZTB_WIRE_ASSERTION_JWT, "client_assertion", ztb_buf_cstr(&assertion));
    ZTB_CHECK(rv, body != NULL, ZTB_ERR_NOMEM);
    rv = post_identity(a, "/v1/renew", key, body, CTX_OTHER);
out:
    json_wipe_free(body, renew_secret_keys);
    ztb_buf_free(&csr);
    ztb_buf_free(&assertion);
    ztb_key_free(key);
    return rv;
}

/* The renewal thread: renew at two thirds of the identity's life, retry with backoff. */
static void *renew_main(void *arg)
{
    struct ztb_agent *a = arg;
    int64_t retry_s = 0, retry_at = 0;
    pthread_mutex_lock(&a->mu);
    while (!a->stop) {
        if (a->id.key == NULL) {
            pthread_cond_wait(&a->cv, &a->mu);
            continue;
        }
        int64_t nb = a->id.not_before, na = a->id.not_after, now = clock_now_s();
        int64_t due = nb + (na - nb) * 2 / 3;
        if (retry_at > due)
            due = retry_at;
        if (now < due) {
            int64_t wait_ms = (due - now) * 1000;
            if (wait_ms > 3600000LL)
                wait_ms = 3600000LL; /* wake now and then: the wall clock may have moved */
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            ts.tv_sec += wait_ms / 1000;
            ts.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&a->cv, &a->mu, &ts);
            continue;
        }
        if (na <= now) {
            pthread_cond_wait(&a->cv, &a->mu); /* expired: only a new enrollment helps */
            continue;
        }
        pthread_mutex_unlock(&a->mu);
        ztb_err rv = ztb_agent_renew(a);
        pthread_mutex_lock(&a->mu);
        if (rv == ZTB_OK) {
            retry_s = 0;
            retry_at = 0;
        } else {
            retry_s = retry_s ? retry_s * 2 : RENEW_RETRY_MIN_S;
            if (retry_s > RENEW_RETRY_MAX_S)
                retry_s = RENEW_RETRY_MAX_S;
            int64_t left = na - clock_now_s();
            if (retry_s > left / 2)
                retry_s = left / 2 > 1 ? left / 2 : 1;
            retry_at = clock_now_s() + retry_s;
        }
    }
    pthread_mutex_unlock(&a->mu);
    return NULL;
}

/* ---- tokens -------------------------------------------------------------- */

struct token_prep {
    const ztb_buf *form; /* everything but client authentication */
    const char *session;
    const char *token_endpoint;
    ztb_buf body;        /* rebuilt per attempt */
    char dpop_hdr[2048]; /* "DPoP: <proof>" */
};

/* Before each attempt: the body with the session, and a fresh DPoP proof. */
static ztb_err token_prep_fn(struct ztb_agent *a, void *ud, struct http_request *rq)
{
    struct token_prep *p = ud;
    ztb_buf_reset(&p->body);
    ztb_buf_append(&p->body, p->form->data, p->form->len);
    form_add(&p->body, "client_assertion_type", ZTB_WIRE_ASSERTION_SESSION);
    form_add(&p->body, "client_assertion", p->session);
    ZTB_GUARD(ztb_buf_error(&p->body));
    rq->body = p->body.data;
    rq->body_len = p->body.len;
    rq->headers[0] = NULL;
    if (a->dpop_key != NULL) {
        ztb_buf h;
        ztb_buf_init_fixed(&h, p->dpop_hdr, sizeof(p->dpop_hdr));
        ztb_buf_append_str(&h, "DPoP: ");
        ZTB_GUARD(
            ztb_dpop_proof_make(a->dpop_key, "POST", p->token_endpoint, clock_now_s(), NULL, &h));
        rq->headers[0] = p->dpop_hdr;
        rq->headers[1] = NULL;
    }
    return ZTB_OK;
}

/* Validate the arguments of ztb_agent_token and build the form without auth. */
static ztb_err token_form(const struct ztb_agent *a, const char *audience, const char *action,
                          const char *resource, const char *details, ztb_buf *form)
{
    if (!arg_ok(audience, 256) || !arg_ok(action, 256))
        return errdetail_set(a, ZTB_ERR_INVALID_ARG, "audience and action are required");
    if (resource != NULL && !arg_ok(resource, FIELD_MAX))
        return errdetail_set(a, ZTB_ERR_INVALID_ARG, "resource empty, too long or not printable");
    form_add(form, "grant_type", ZTB_WIRE_GRANT_TOKEN_EXCHANGE);
    form_add(form, "audience", audience);
    form_add(form, "scope", action);
    if (resource != NULL)
        form_add(form, "resource", resource);
    if (details == NULL)
        return ztb_buf_error(form);
    size_t dl = strnlen(details, DETAILS_MAX + 1);
    json_error_t e;
    json_t *obj = dl <= DETAILS_MAX && memchr(details, '\0', dl) == NULL
                      ? json_loadb(details, dl, JSON_REJECT_DUPLICATES, &e)
                      : NULL;
    json_t *type = json_is_object(obj) ? json_object_get(obj, "type") : NULL;
    if (!json_is_object(obj) || (type != NULL && !json_is_string(type))) {
        json_decref(obj);
        return errdetail_set(a, ZTB_ERR_INVALID_ARG,
                             "details_json must be a JSON object (its \"type\" a string)");
    }
    if (type == NULL)
        json_object_set_new(obj, "type", json_string(ZTB_WIRE_DETAIL_TYPE_ACTION));
    json_t *arr = json_pack("[o]", obj);
    char *text = arr ? json_dumps(arr, JSON_COMPACT) : NULL;
    json_decref(arr);
    if (text == NULL)
        return ZTB_ERR_NOMEM;
    form_add(form, "authorization_details", text);
    free(text);
    return ztb_buf_error(form);
}

/* Parse a 200 token answer into a new secret string. */
static ztb_err token_answer(struct ztb_agent *a, const struct http_response *rs, char **token)
{
    json_t *j = body_json(rs);
    const char *tok = j ? json_string_value(json_object_get(j, "access_token")) : NULL;
    const char *type = j ? json_string_value(json_object_get(j, "token_type")) : NULL;
    ztb_err rv = ZTB_OK;
    if (tok == NULL || type == NULL || strlen(tok) > ZTB_JWS_DEFAULT_MAX) {
        rv = errdetail_set(a, ZTB_ERR_HTTP, "broker sent an unusable token answer");
    } else if ((a->dpop_key != NULL) != (strcmp(type, ZTB_WIRE_TOKEN_TYPE_DPOP) == 0)) {
        rv = errdetail_set(a, ZTB_ERR_DPOP,
                           a->dpop_key ? "broker did not bind the token to DPoP"
                                       : "broker bound the token to a key");
    } else if ((*token = strdup(tok)) == NULL) {
        rv = ZTB_ERR_NOMEM;
    }
    if (tok != NULL)
        ztb_wipe((void *)tok, strlen(tok));
    json_decref(j);
    return rv;
}

ztb_err ztb_agent_token(ztb_agent *a, const char *audience, const char *action,
                        const char *resource, const char *details_json, char **token)
{
    if (token != NULL)
        *token = NULL;
    if (a == NULL || token == NULL)
        return errdetail_set(a, ZTB_ERR_INVALID_ARG, "NULL agent or token pointer");
    ztb_buf form;
    ztb_buf_init_secret(&form, 16384);
    struct token_prep p = {.form = &form};
    ztb_buf_init_secret(&p.body, 16384);
    char session[SESSION_MAX + 1] = "";
    char te[URL_MAX + 1];
    char url[URL_MAX + 64];
    url_of(a, "/v1/token", url, sizeof(url));
    ztb_err rv = token_form(a, audience, action, resource, details_json, &form);
    if (rv == ZTB_OK)
        rv = token_endpoint(a, te);
    p.token_endpoint = te;
    for (int round = 0; rv == ZTB_OK && round < 2; round++) {
        ZTB_TRY(rv, get_session(a, session));
        p.session = session;
        struct http_request rq = {.method = "POST",
                                  .url = url,
                                  .content_type = "application/x-www-form-urlencoded",
                                  .max_body = 65536};
        struct http_response rs;
        rv = call(a, &rq, token_prep_fn, &p, &rs);
        if (rv != ZTB_OK) {
            if (rs.error[0] != '\0')
                transport_error(a, rv, &rs);
        } else if (rs.status == 200) {
            rv = token_answer(a, &rs, token);
        } else {
            rv = broker_error(a, &rs, CTX_OTHER);
            if (rv == ZTB_ERR_INVALID_CLIENT && round == 0) {
                drop_session(a, session); /* expired or ended: one new session, then again */
                rv = ZTB_OK;
                http_response_free(&rs);
                continue;
            }
        }
        http_response_free(&rs);
        break;
    }
out:
    ztb_wipe(session, sizeof(session));
    ztb_wipe(p.dpop_hdr, sizeof(p.dpop_hdr));
    ztb_buf_free(&p.body);
    ztb_buf_free(&form);
    return rv;
}

void ztb_token_free(char *token)
{
    ztb_free_secret_str(token);
}

ztb_err ztb_dpop_proof(ztb_agent *a, const char *htm, const char *htu, const char *token,
                       char **proof)
{
    if (proof != NULL)
        *proof = NULL;
    if (a == NULL || proof == NULL || !arg_ok(htm, 16) || !arg_ok(htu, ZTB_DPOP_HTU_MAX) ||
        (token != NULL && !arg_ok(token, ZTB_JWS_DEFAULT_MAX)))
        return errdetail_set(a, ZTB_ERR_INVALID_ARG, "method and URL are required");
    if (a->dpop_key == NULL)
        return errdetail_set(a, ZTB_ERR_STATE, "DPoP is off: ztb_agent_config_set_dpop(cfg, 1)");
    ztb_buf b;
    ztb_buf_init_secret(&b, 4096);
    ztb_err rv = ztb_dpop_proof_make(a->dpop_key, htm, htu, clock_now_s(), token, &b);
    if (rv == ZTB_OK) {
        *proof = ztb_buf_steal(&b, NULL);
        if (*proof == NULL)
            rv = ZTB_ERR_NOMEM;
    }
    ztb_buf_free(&b);
    return rv != ZTB_OK ? errdetail_set(a, rv, "cannot make a DPoP proof") : ZTB_OK;
}

/* ---- introspection (for verifiers without Redis) -------------------------- */

ztb_err agent_introspect(ztb_agent *a, const char *token, int *active)
{
    *active = 0;
    char session[SESSION_MAX + 1] = "";
    ztb_buf form;
    ztb_buf_init_secret(&form, 16384);
    char url[URL_MAX + 64];
    url_of(a, "/v1/introspect", url, sizeof(url));
    ztb_err rv = ZTB_OK;
    for (int round = 0; round < 2; round++) {
        ZTB_TRY(rv, get_session(a, session));
        ztb_buf_reset(&form);
        form_add(&form, "token", token);
        form_add(&form, "client_assertion_type", ZTB_WIRE_ASSERTION_SESSION);
        form_add(&form, "client_assertion", session);
        ZTB_TRY(rv, ztb_buf_error(&form));
        struct http_request rq = {.method = "POST",
                                  .url = url,
                                  .content_type = "application/x-www-form-urlencoded",
                                  .body = form.data,
                                  .body_len = form.len,
                                  .max_body = 65536};
        struct http_response rs;
        rv = http_client_do(a->http, &rq, &rs); /* no retries: the request is waiting */
        if (rv == ZTB_OK && rs.status == 200) {
            json_t *j = body_json(&rs);
            json_t *act = j ? json_object_get(j, "active") : NULL;
            if (json_is_boolean(act))
                *active = json_is_true(act);
            else
                rv = ZTB_ERR_HTTP;
            json_decref(j);
        } else if (rv == ZTB_OK) {
            rv = broker_error(a, &rs, CTX_OTHER);
            if (rv == ZTB_ERR_INVALID_CLIENT && round == 0) {
                drop_session(a, session);
                http_response_free(&rs);
                continue;
            }
            if (rv != ZTB_ERR_INVALID_CLIENT)
                rv = ZTB_ERR_UNAVAILABLE;
        }
        http_response_free(&rs);
        break;
    }
out:
    ztb_wipe(session, sizeof(session));
    ztb_buf_free(&form);
    return rv;
}
