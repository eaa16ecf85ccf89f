/*
 * ssf_jwks.c - a transmitter's keys from its JWKS URL (see ssf_jwks.h).
 *
 * How it works: one libztb http_client (shared by all transmitters, with
 * short timeouts) and one jwks_cache per transmitter, created by the first
 * fetch that succeeds. Until then a mutex guards the creation and a
 * monotonic timestamp spaces the attempts; once made, the cache pointer is
 * published with release/acquire and never changes.
 *
 * Must never: accept a SET without keys confirmed by a fetch, or fetch more
 * than once per interval because of what a SET says.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "broker/ssf/ssf_jwks.h"
#include "common/log.h"
#include "pki/jwk.h"
#include "sdk/src/http_client.h"
#include "sdk/src/jwks_cache.h"

#define SSF_JWKS_TIMEOUT_MS 3000
#define SSF_JWKS_CONNECT_MS 2000
#define SSF_JWKS_RETRY_MS   (JWKS_DEFAULT_REFETCH_S * 1000)

struct ssf_jwks {
    char *url;
    pthread_mutex_t mu; /* creation of cache */
    _Atomic(struct jwks_cache *) cache;
    int64_t last_try_ms;  /* under mu */
    char last_error[256]; /* under mu */
};

static pthread_mutex_t http_mu = PTHREAD_MUTEX_INITIALIZER;
static struct http_client *http; /* shared; made on first use */
static unsigned users;

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

ztb_err ssf_jwks_new(const char *url, struct ssf_jwks **out)
{
    *out = NULL;
    if (url == NULL || http_url_check(url, 0) != ZTB_OK)
        return ZTB_ERR_INVALID_ARG;
    struct ssf_jwks *j = calloc(1, sizeof(*j));
    if (j == NULL || (j->url = strdup(url)) == NULL || pthread_mutex_init(&j->mu, NULL) != 0) {
        if (j != NULL)
            free(j->url);
        free(j);
        return ZTB_ERR_NOMEM;
    }
    pthread_mutex_lock(&http_mu);
    ztb_err rv = ZTB_OK;
    if (http == NULL) {
        struct http_client_opts o = {.timeout_ms = SSF_JWKS_TIMEOUT_MS,
                                     .connect_timeout_ms = SSF_JWKS_CONNECT_MS};
        rv = http_client_new(&o, &http);
    }
    if (rv == ZTB_OK)
        users++;
    pthread_mutex_unlock(&http_mu);
    if (rv != ZTB_OK) {
        pthread_mutex_destroy(&j->mu);
        free(j->url);
        free(j);
        return rv;
    }
    j->last_try_ms = INT64_MIN / 2;
    *out = j;
    return ZTB_OK;
}

/* The cache, trying to make it if it is not there (spaced). NULL: none. */
static struct jwks_cache *cache_of(struct ssf_jwks *j, int force, const char *who)
{
    struct jwks_cache *c = atomic_load_explicit(&j->cache, memory_order_acquire);
    if (c != NULL)
        return c;
    pthread_mutex_lock(&j->mu);
    c = atomic_load_explicit(&j->cache, memory_order_acquire);
    int64_t now = mono_ms();
    if (c == NULL && (force || now - j->last_try_ms >= SSF_JWKS_RETRY_MS)) {
        j->last_try_ms = now;
        /* a transmitter's kids are its own names, not RFC 7638 thumbprints */
        struct jwks_cache_opts o = {.url = j->url, .http = http, .jwks_flags = ZTB_JWK_KID_ANY};
        ztb_err rv = jwks_cache_new(&o, &c, j->last_error, sizeof(j->last_error));
        if (rv == ZTB_OK) {
            atomic_store_explicit(&j->cache, c, memory_order_release);
            ztb_log(ZTB_LOG_INFO, "ssf.jwks_fetched", ZTB_F_STR("transmitter", who),
                    ZTB_F_INT("keys", jwks_cache_key_count(c)));
        } else {
            c = NULL;
            ztb_log(ZTB_LOG_WARN, "ssf.jwks_unavailable", ZTB_F_STR("transmitter", who),
                    ZTB_F_STR("why", j->last_error), ZTB_F_ERR(rv));
        }
    }
    pthread_mutex_unlock(&j->mu);
    return c;
}

void ssf_jwks_start(struct ssf_jwks *j, const char *transmitter)
{
    if (j != NULL)
        (void)cache_of(j, 1, transmitter);
}

ztb_err ssf_jwks_verify(struct ssf_jwks *j, const char *tok, size_t len,
                        const ztb_jws_verify_opts *vo, ztb_jws_header *hdr, ztb_buf *payload,
                        char *why, size_t cap)
{
    struct jwks_cache *c = cache_of(j, 0, j->url);
    if (c == NULL) {
        pthread_mutex_lock(&j->mu);
        snprintf(why, cap, "the transmitter's JWKS cannot be fetched (%s)", j->last_error);
        pthread_mutex_unlock(&j->mu);
        return ZTB_ERR_UNAVAILABLE;
    }
    if (jwks_cache_fresh(c, why, cap) != ZTB_OK)
        return ZTB_ERR_UNAVAILABLE;
    uint64_t epoch = 0;
    const ztb_keyset *ks = jwks_cache_keyset(c, &epoch);
    if (ks == NULL)
        return ZTB_ERR_NOMEM;
    ztb_err rv = ztb_jws_verify(ks, tok, len, vo, hdr, payload); /* payload untouched on error */
    if (rv == ZTB_ERR_UNKNOWN_KID && jwks_cache_unknown_kid(c, epoch)) {
        ks = jwks_cache_keyset(c, &epoch);
        rv = ks != NULL ? ztb_jws_verify(ks, tok, len, vo, hdr, payload) : ZTB_ERR_NOMEM;
    }
    /* a kid the keys in force lack while the keys cannot be fetched is no
     * proof the transmitter never published it: unavailable, so it retries */
    char err[400];
    if (rv == ZTB_ERR_UNKNOWN_KID && jwks_cache_last_fetch_failed(c, err, sizeof(err))) {
        snprintf(why, cap,
                 "the SET's kid is not in the transmitter's keys in force, and they "
                 "cannot be fetched again (%s)",
                 err);
        return ZTB_ERR_UNAVAILABLE; /* logged by the caller's sampled refusal */
    }
    return rv;
}

void ssf_jwks_free(struct ssf_jwks *j)
{
    if (j == NULL)
        return;
    jwks_cache_free(atomic_load(&j->cache));
    pthread_mutex_destroy(&j->mu);
    free(j->url);
    free(j);
    pthread_mutex_lock(&http_mu);
    if (--users == 0) {
        http_client_free(http);
        http = NULL;
    }
    pthread_mutex_unlock(&http_mu);
}
