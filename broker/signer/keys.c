/*
 * keys.c - public key state and signer calls for the HTTP process (see
 * keys.h). Nothing here ever holds a private key: what the signer answers
 * is checked by signer_msg.c, and key material arrives only as JWKS text.
 */
#define _GNU_SOURCE /* pthread_cond_clockwait */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "broker/signer/keys.h"
#include "broker/auth/session.h"
#include "broker/signer/sign_batch.h"
#include "broker/signer/signer_client.h"
#include "common/guard.h"
#include "common/log.h"
#include "common/secret.h"
#include "pki/jwk.h"

struct holder {
    struct keys_state s;
    int refs; /* under g_lock */
};

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;         /* the current pointer, refs */
static pthread_mutex_t g_refresh_lock = PTHREAD_MUTEX_INITIALIZER; /* one refresh at a time */
static ztb_ca *g_ca;
static struct holder *g_cur;
static int g_loaded;

static char g_exe[4096];
static char g_session_file[BROKER_PATH_MAX];
static unsigned g_channels = 8;

static pthread_t g_thread;
static int g_thread_running;
static int g_stop;
static pthread_mutex_t g_thread_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_cond = PTHREAD_COND_INITIALIZER;
static unsigned g_interval;

void keys_configure(const char *exe, const char *session_key_file, unsigned channels)
{
    snprintf(g_exe, sizeof(g_exe), "%s", exe ? exe : "");
    snprintf(g_session_file, sizeof(g_session_file), "%s",
             session_key_file ? session_key_file : "");
    g_channels = channels == 0                    ? 8
                 : channels > SIGNER_MAX_CHANNELS ? SIGNER_MAX_CHANNELS
                                                  : channels;
}

static void holder_free(struct holder *h)
{
    if (h == NULL)
        return;
    ztb_key_free(h->s.active);
    ztb_keyset_free(h->s.keyset);
    free(h->s.jwks);
    free(h);
}

struct keys_state *keys_acquire(void)
{
    pthread_mutex_lock(&g_lock);
    struct holder *h = g_cur;
    if (h != NULL)
        h->refs++;
    pthread_mutex_unlock(&g_lock);
    return h ? &h->s : NULL;
}

void keys_release(struct keys_state *s)
{
    if (s == NULL)
        return;
    struct holder *h = (struct holder *)s; /* s is the first member */
    pthread_mutex_lock(&g_lock);
    int last = --h->refs == 0;
    pthread_mutex_unlock(&g_lock);
    if (last)
        holder_free(h);
}

static void install(struct holder *h)
{
    h->refs = 1; /* the global's reference */
    pthread_mutex_lock(&g_lock);
    struct holder *old = g_cur;
    g_cur = h;
    int last = old != NULL && --old->refs == 0;
    pthread_mutex_unlock(&g_lock);
    if (last)
        holder_free(old);
}

/* Build a state from the signer's STATE answer. */
static ztb_err build(const struct signer_state *st, struct holder **out)
{
    struct holder *h = calloc(1, sizeof(*h));
    ZTB_ENSURE(h != NULL, ZTB_ERR_NOMEM);
    ztb_err rv = ztb_jwks_parse(st->text, st->len, 0, &h->s.keyset);
    if (rv == ZTB_ERR_JWKS && st->active_kid[0] == '\0')
        rv = ztb_keyset_new(NULL, NULL, 0, &h->s.keyset); /* nothing published yet */
    if (rv == ZTB_OK && st->active_kid[0] != '\0') {
        const ztb_key *k = ztb_keyset_find(h->s.keyset, st->active_kid, strlen(st->active_kid));
        /* the active key is always published: anything else is a bug */
        if (k == NULL)
            rv = ZTB_ERR_INTERNAL;
        else
            h->s.active = ztb_key_ref((ztb_key *)k); // NOLINT: a reference, not a write
    }
    if (rv == ZTB_OK) {
        h->s.jwks = malloc(st->len + 1);
        if (h->s.jwks == NULL)
            rv = ZTB_ERR_NOMEM;
    }
    if (rv != ZTB_OK) {
        holder_free(h);
        return rv;
    }
    memcpy(h->s.jwks, st->text, st->len);
    h->s.jwks[st->len] = '\0';
    h->s.jwks_len = st->len;
    h->s.jwks_max_age = st->jwks_max_age;
    h->s.max_token_ttl = st->max_token_ttl;
    h->s.skew = st->skew;
    *out = h;
    return ZTB_OK;
}

ztb_err keys_refresh(int64_t now, int *changed)
{
    if (changed != NULL)
        *changed = 0;
    if (!g_loaded)
        return ZTB_ERR_STATE;
    struct signer_state *st = calloc(1, sizeof(*st));
    ZTB_ENSURE(st != NULL, ZTB_ERR_NOMEM);
    struct signer_req q;
    memset(&q, 0, sizeof(q));
    q.op = SIGNER_OP_STATE;
    q.now = now > 0 ? now : 1;
    pthread_mutex_lock(&g_refresh_lock);
    ztb_err rv = signer_call(&q, st, sizeof(*st));
    struct holder *h = NULL;
    if (rv == ZTB_OK)
        rv = build(st, &h);
    if (rv == ZTB_OK) {
        struct keys_state *old = keys_acquire();
        int moved = old == NULL || old->jwks_len != h->s.jwks_len ||
                    memcmp(old->jwks, h->s.jwks, h->s.jwks_len) != 0 ||
                    (old->active == NULL) != (h->s.active == NULL) ||
                    (old->active != NULL &&
                     strcmp(ztb_key_kid(old->active), ztb_key_kid(h->s.active)) != 0);
        keys_release(old);
        install(h);
        if (changed != NULL)
            *changed = moved;
    }
    pthread_mutex_unlock(&g_refresh_lock);
    free(st);
    if (rv != ZTB_OK)
        ztb_log(ZTB_LOG_ERROR, "keys.refresh_failed", ZTB_F_ERR(rv));
    return rv;
}

/* A new signer may hold another session key (its file was replaced):
 * forget which credentials were authentic, then reload the public state. */
static void after_restart(void)
{
    session_set_mac(keys_session_mac);
    keys_refresh((int64_t)time(NULL), NULL);
}

ztb_err keys_open(const char *dir, const char *passphrase_file, int64_t now, char *err,
                  size_t errcap)
{
    struct signer_opts o;
    memset(&o, 0, sizeof(o));
    if ((size_t)snprintf(o.keys_dir, sizeof(o.keys_dir), "%s", dir) >= sizeof(o.keys_dir) ||
        (size_t)snprintf(o.passphrase_file, sizeof(o.passphrase_file), "%s",
                         passphrase_file ? passphrase_file : "") >= sizeof(o.passphrase_file)) {
        snprintf(err, errcap, "key store path too long");
        return ZTB_ERR_INVALID_ARG;
    }
    snprintf(o.session_key_file, sizeof(o.session_key_file), "%s", g_session_file);
    ztb_err rv =
        signer_client_start(&o, g_exe[0] ? g_exe : NULL, g_channels, after_restart, err, errcap);
    if (rv != ZTB_OK)
        return rv;
    rv = ztb_ca_load_public(dir, &g_ca); /* the certificate only */
    if (rv == ZTB_ERR_NOT_FOUND) {
        g_ca = NULL;
        rv = ZTB_OK;
        ztb_log(ZTB_LOG_WARN, "keys.no_ca", ZTB_F_STR("dir", dir),
                ZTB_F_STR("hint", "enrollment is refused until `ztbctl ca init` is run"));
    } else if (rv != ZTB_OK) {
        snprintf(err, errcap, "agent CA in %s/ca: %s", dir, ztb_strerror(rv));
    }
    g_loaded = rv == ZTB_OK;
    if (rv == ZTB_OK)
        rv = keys_refresh(now, NULL);
    if (rv != ZTB_OK) {
        if (err[0] == '\0')
            snprintf(err, errcap, "key store %s: %s", dir, ztb_strerror(rv));
        g_loaded = 0;
        signer_client_stop();
        ztb_ca_free(g_ca);
        g_ca = NULL;
        return rv;
    }
    session_set_mac(keys_session_mac);
    return ZTB_OK;
}

int keys_loaded(void)
{
    return g_loaded;
}

const ztb_ca *keys_ca(void)
{
    return g_ca;
}

int keys_can_sign(void)
{
    return g_loaded && signer_client_up();
}

int keys_signer_pid(void)
{
    return (int)signer_client_pid();
}

/* ztb_jws_sign_fn: the signer signs digest with kid, in a batch with the
 * signatures other threads ask for meanwhile (sign_batch.h). */
static ztb_err sign_remote(void *arg, const char *kid, const uint8_t digest[32],
                           uint8_t sig[ZTB_ES256_SIG_LEN])
{
    (void)arg;
    struct sign_ticket t;
    ZTB_GUARD(sign_batch_begin(kid, digest, &t));
    return sign_batch_end(&t, sig);
}

ztb_err keys_sign_jws(const struct keys_state *s, const ztb_jws_sign_opts *opts,
                      const void *payload, size_t n, ztb_buf *out)
{
    ZTB_ENSURE(s != NULL, ZTB_ERR_INVALID_ARG);
    ZTB_ENSURE(s->active != NULL, ZTB_ERR_NO_ACTIVE_KEY);
    ztb_err rv = ztb_jws_sign_with(s->active, opts, payload, n, sign_remote, NULL, out);
    if (rv != ZTB_ERR_UNKNOWN_KID)
        return rv;
    /* the signer's active key moved on (a rotation our state has not seen) */
    ZTB_GUARD(keys_refresh((int64_t)time(NULL), NULL));
    struct keys_state *now = keys_acquire();
    rv = now != NULL && now->active != NULL
             ? ztb_jws_sign_with(now->active, opts, payload, n, sign_remote, NULL, out)
             : ZTB_ERR_NO_ACTIVE_KEY;
    keys_release(now);
    return rv;
}

ztb_err keys_sign_begin(const struct keys_state *s, const ztb_jws_sign_opts *opts,
                        const void *payload, size_t n, ztb_buf *out, struct keys_sign_pending *p)
{
    memset(p, 0, sizeof(*p));
    ZTB_ENSURE(s != NULL, ZTB_ERR_INVALID_ARG);
    ZTB_ENSURE(s->active != NULL, ZTB_ERR_NO_ACTIVE_KEY);
    uint8_t digest[32];
    p->start = out->len;
    ZTB_GUARD(ztb_jws_signing_input(s->active, opts, payload, n, out, digest));
    ztb_err rv = sign_batch_begin(ztb_key_kid(s->active), digest, &p->t);
    if (rv != ZTB_OK)
        ztb_buf_truncate(out, p->start);
    return rv;
}

ztb_err keys_sign_end(struct keys_sign_pending *p, const struct keys_state *s,
                      const ztb_jws_sign_opts *opts, const void *payload, size_t n, ztb_buf *out)
{
    uint8_t sig[ZTB_ES256_SIG_LEN];
    ztb_err rv = sign_batch_end(&p->t, sig);
    if (rv == ZTB_OK)
        rv = ztb_jws_append_signature(out, sig);
    if (rv == ZTB_OK)
        return ZTB_OK;
    ztb_buf_truncate(out, p->start);
    /* the signer's active key moved on: the synchronous path refreshes */
    return rv == ZTB_ERR_UNKNOWN_KID ? keys_sign_jws(s, opts, payload, n, out) : rv;
}

void keys_sign_cancel(struct keys_sign_pending *p)
{
    (void)sign_batch_end(&p->t, NULL); /* its answer is read and dropped */
}

/* ztb_ca_sign_fn: the signer signs a certificate digest with the CA key. */
static ztb_err ca_sign_remote(void *arg, const uint8_t digest[32], uint8_t *der, size_t *derlen)
{
    (void)arg;
    struct signer_req q;
    struct signer_resp r;
    memset(&q, 0, sizeof(q));
    q.op = SIGNER_OP_CA_SIGN;
    q.count = 1;
    memcpy(q.digest[0], digest, 32);
    ZTB_GUARD(signer_call(&q, &r, sizeof(r)));
    ZTB_ENSURE(r.len <= *derlen, ZTB_ERR_SIG_FORMAT);
    memcpy(der, r.data, r.len);
    *derlen = r.len;
    return ZTB_OK;
}

ztb_err keys_ca_issue(const void *csr, size_t csr_len, const char *agent, int64_t now,
                      int64_t ttl_s, ztb_buf *out)
{
    ZTB_ENSURE(g_ca != NULL, ZTB_ERR_NOT_FOUND);
    return ztb_ca_issue_with(g_ca, csr, csr_len, agent, now, ttl_s, ca_sign_remote, NULL, out);
}

ztb_err keys_session_mac(const uint8_t digest[32], uint8_t out[32])
{
    struct signer_req q;
    struct signer_resp r;
    memset(&q, 0, sizeof(q));
    q.op = SIGNER_OP_MAC;
    q.count = 1;
    memcpy(q.digest[0], digest, 32);
    ztb_err rv = signer_call(&q, &r, sizeof(r));
    if (rv == ZTB_OK)
        memcpy(out, r.data, 32);
    ztb_wipe(&r, sizeof(r));
    return rv;
}

ztb_err keys_rotate(int64_t now, int force, ztb_rotate_result *res)
{
    ZTB_ENSURE(g_loaded, ZTB_ERR_STATE);
    struct signer_req q;
    struct signer_resp r;
    memset(&q, 0, sizeof(q));
    q.op = SIGNER_OP_ROTATE;
    q.now = now;
    q.flags = force ? SIGNER_F_FORCE : 0;
    ZTB_GUARD(signer_call(&q, &r, sizeof(r)));
    memset(res, 0, sizeof(*res));
    res->action = (ztb_rotate_action)r.action;
    res->promotable_at = r.promotable_at;
    memcpy(res->kid, r.kid, sizeof(res->kid) - 1); /* a checked kid field: 43 + NUL */
    res->kid[sizeof(res->kid) - 1] = '\0';
    return keys_refresh(now, NULL);
}

ztb_err keys_retire(const char *kid, int64_t now, int force)
{
    ZTB_ENSURE(g_loaded, ZTB_ERR_STATE);
    struct signer_req q;
    struct signer_resp r;
    memset(&q, 0, sizeof(q));
    q.op = SIGNER_OP_RETIRE;
    q.now = now;
    q.flags = force ? SIGNER_F_FORCE : 0;
    /* not a kid at all: no key of ours */
    ZTB_ENSURE(kid != NULL && strlen(kid) == ZTB_KID_LEN, ZTB_ERR_NOT_FOUND);
    memcpy(q.kid, kid, ZTB_KID_LEN);
    ZTB_ENSURE(signer_kid_field_ok(q.kid), ZTB_ERR_NOT_FOUND);
    ZTB_GUARD(signer_call(&q, &r, sizeof(r)));
    return keys_refresh(now, NULL);
}

ztb_err keys_list_json(char **out)
{
    *out = NULL;
    ZTB_ENSURE(g_loaded, ZTB_ERR_STATE);
    struct signer_state *st = calloc(1, sizeof(*st));
    ZTB_ENSURE(st != NULL, ZTB_ERR_NOMEM);
    struct signer_req q;
    memset(&q, 0, sizeof(q));
    q.op = SIGNER_OP_LIST;
    ztb_err rv = signer_call(&q, st, sizeof(*st));
    if (rv == ZTB_OK) {
        *out = strndup(st->text, st->len);
        rv = *out ? ZTB_OK : ZTB_ERR_NOMEM;
    }
    free(st);
    return rv;
}

static void *refresher(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&g_thread_lock);
    for (;;) {
        /* the interval is a duration: CLOCK_MONOTONIC, so a wall clock step
         * neither delays the next refresh by the step nor hurries it */
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_sec += g_interval;
        while (!g_stop && pthread_cond_clockwait(&g_cond, &g_thread_lock, CLOCK_MONOTONIC,
                                                 &until) != ETIMEDOUT)
            ;
        if (g_stop)
            break;
        pthread_mutex_unlock(&g_thread_lock);
        keys_refresh((int64_t)time(NULL), NULL);
        pthread_mutex_lock(&g_thread_lock);
    }
    pthread_mutex_unlock(&g_thread_lock);
    return NULL;
}

ztb_err keys_start_refresher(unsigned interval_s)
{
    g_interval = interval_s ? interval_s : 5;
    g_stop = 0;
    ZTB_ENSURE(pthread_create(&g_thread, NULL, refresher, NULL) == 0, ZTB_ERR_INTERNAL);
    g_thread_running = 1;
    return ZTB_OK;
}

void keys_stop_refresher(void)
{
    pthread_mutex_lock(&g_thread_lock);
    g_stop = 1;
    pthread_cond_broadcast(&g_cond);
    pthread_mutex_unlock(&g_thread_lock);
    if (g_thread_running) {
        pthread_join(g_thread, NULL);
        g_thread_running = 0;
    }
}

void keys_close(void)
{
    keys_stop_refresher();
    session_set_mac(NULL);
    g_loaded = 0;
    signer_client_stop();
    pthread_mutex_lock(&g_lock);
    struct holder *h = g_cur;
    g_cur = NULL;
    int last = h != NULL && --h->refs == 0;
    pthread_mutex_unlock(&g_lock);
    if (last)
        holder_free(h);
    ztb_ca_free(g_ca);
    g_ca = NULL;
}
