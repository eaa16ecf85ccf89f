/*
 * jwks_cache.c - the verifier's view of the broker's keys (see jwks_cache.h).
 *
 * One mutex (fetch_mu) serialises fetches, whether the refresher or a
 * gateway thread asked; the key set itself is published through a
 * ztb_keyset_slot plus an epoch counter that gateway threads compare against
 * their cached reference (thread_cache.h), so reading it takes no lock.
 * The refresher thread blocks every signal and sleeps on a condition
 * variable against the monotonic clock, so ztb_verifier_free wakes it at
 * once.
 *
 * What it must never do: accept a key from a document that fails the strict
 * JWKS parse, follow a redirect, or let a flood of unknown kids turn into a
 * flood of fetches.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/guard.h"
#include "pki/jwk.h"
#include "sdk/src/clock.h"
#include "sdk/src/jwks_cache.h"
#include "sdk/src/sigpipe.h"
#include "sdk/src/thread_cache.h"

#define FILE_CHECK_MS       5000
#define FAIL_BACKOFF_MIN_MS 2000
#define FAIL_BACKOFF_MAX_MS 60000

struct jwks_cache {
    uint64_t owner;
    char *url, *file;
    struct http_client *http;
    int64_t refetch_ms;
    unsigned jwks_flags; /* for ztb_jwks_parse */
    ztb_keyset_slot slot;
    _Atomic uint64_t epoch;
    _Atomic uint64_t fetches;
    _Atomic size_t nkeys;
    _Atomic int64_t confirmed_ms;   /* last successful fetch or file check */
    _Atomic int64_t stale_after_ms; /* max-age + margin of the last good answer */

    pthread_mutex_t fetch_mu; /* one fetch at a time; guards the fields below */
    _Atomic int fetching;
    _Atomic int64_t last_demand_ms;
    _Atomic int last_failed; /* the most recent fetch or read failed (why: last_error) */
    int64_t next_refresh_ms;
    int64_t fail_backoff_ms;
    struct stat file_st;
    char last_error[512];

    pthread_mutex_t mu; /* the refresher's sleep */
    pthread_cond_t cv;
    int stop;
    pthread_t thread;
    int thread_started;
};

/* Read the JWKS file with the checks of the top of jwks_cache.h. */
static ztb_err read_file(struct jwks_cache *c, ztb_buf *out, struct stat *st)
{
    int fd = open(c->file, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        snprintf(c->last_error, sizeof(c->last_error), "jwks file %.200s: %s", c->file,
                 strerror(errno));
        return errno == ENOENT ? ZTB_ERR_NOT_FOUND : ZTB_ERR_IO;
    }
    ztb_err rv = ZTB_OK;
    ZTB_CHECK(rv, fstat(fd, st) == 0, ZTB_ERR_IO);
    if (!S_ISREG(st->st_mode) || (st->st_mode & 022) != 0 ||
        (st->st_uid != 0 && st->st_uid != geteuid())) {
        snprintf(c->last_error, sizeof(c->last_error),
                 "jwks file %.200s: must be a regular file owned by root or this user and writable "
                 "by no one else",
                 c->file);
        rv = ZTB_ERR_PERMISSION;
        goto out;
    }
    ZTB_CHECK(rv, st->st_size <= (off_t)ZTB_JWKS_MAX, ZTB_ERR_TOO_LARGE);
    for (;;) {
        uint8_t *at;
        ZTB_TRY(rv, ztb_buf_extend(out, 4096, &at));
        ssize_t n = read(fd, at, 4096);
        if (n < 0 && errno == EINTR) {
            ztb_buf_truncate(out, out->len - 4096);
            continue;
        }
        ZTB_CHECK(rv, n >= 0, ZTB_ERR_IO);
        ztb_buf_truncate(out, out->len - 4096 + (size_t)n);
        if (n == 0)
            break;
    }
out:
    close(fd);
    return rv;
}

/* 1 if a and b hold the same public keys under the same kids. */
static int same_keys(const ztb_keyset *a, const ztb_keyset *b)
{
    if (a == NULL || b == NULL || ztb_keyset_count(a) != ztb_keyset_count(b))
        return 0;
    for (size_t i = 0; i < ztb_keyset_count(b); i++) {
        const char *kid = ztb_keyset_kid_at(b, i);
        const ztb_key *k = ztb_keyset_find(a, kid, strlen(kid));
        if (k == NULL || !ztb_key_same_public(k, ztb_keyset_at(b, i)))
            return 0;
    }
    return 1;
}

static int64_t clamp64(int64_t v, int64_t lo, int64_t hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

/* The current set was just confirmed at now (mono ms), good for age_ms. */
static void confirm(struct jwks_cache *c, int64_t now, int64_t age_ms)
{
    atomic_store(&c->stale_after_ms, age_ms + (int64_t)JWKS_STALE_MARGIN_S * 1000);
    atomic_store(&c->confirmed_ms, now);
}

/* Fetch or read, parse, and publish if different. Called with fetch_mu held. */
static ztb_err fetch_locked(struct jwks_cache *c)
{
    ztb_buf doc;
    ztb_buf_init(&doc, (size_t)ZTB_JWKS_MAX);
    ztb_keyset *ks = NULL, *cur = NULL;
    ztb_err rv = ZTB_OK;
    int64_t max_age_s = -1;
    atomic_fetch_add(&c->fetches, 1);
    if (c->url != NULL) {
        struct http_response rs;
        struct http_request rq = {.method = "GET", .url = c->url, .max_body = (size_t)ZTB_JWKS_MAX};
        rv = http_client_do(c->http, &rq, &rs);
        if (rv == ZTB_OK && rs.status != 200)
            rv = ZTB_ERR_UNAVAILABLE;
        if (rv != ZTB_OK)
            snprintf(c->last_error, sizeof(c->last_error), "jwks %.200s: %.256s", c->url,
                     rs.status != 0 ? "unexpected HTTP status" : rs.error);
        else
            rv = ztb_buf_append(&doc, rs.body.data, rs.body.len);
        max_age_s = rs.max_age_s;
        http_response_free(&rs);
        if (rv != ZTB_OK)
            goto out;
    } else {
        struct stat st;
        ZTB_TRY(rv, read_file(c, &doc, &st));
        c->file_st = st;
    }
    rv = ztb_jwks_parse((const char *)doc.data, doc.len, c->jwks_flags, &ks);
    if (rv != ZTB_OK) {
        snprintf(c->last_error, sizeof(c->last_error), "jwks %.200s: invalid document (%s)",
                 c->url ? c->url : c->file, ztb_err_name(rv));
        goto out;
    }
    cur = ztb_keyset_slot_get(&c->slot);
    if (!same_keys(cur, ks)) {
        ztb_keyset_slot_set(&c->slot, ks);
        atomic_store(&c->nkeys, ztb_keyset_count(ks));
        atomic_fetch_add(&c->epoch, 1); /* after the set: readers see the epoch move last */
    }
out : {
    int64_t now = clock_mono_ms();
    atomic_store(&c->last_failed, rv != ZTB_OK);
    if (rv == ZTB_OK) {
        c->fail_backoff_ms = 0;
        int64_t age_ms = (int64_t)JWKS_DEFAULT_MAX_AGE_S * 1000;
        if (c->url != NULL) {
            if (max_age_s >= 0)
                age_ms = clamp64(max_age_s * 1000, 0, (int64_t)JWKS_MAX_MAX_AGE_S * 1000);
            /* never later than the max-age: the refetch interval only paces
             * fetches for unknown kids */
            c->next_refresh_ms =
                now + (age_ms > JWKS_MIN_REFRESH_MS ? age_ms : JWKS_MIN_REFRESH_MS);
        } else {
            c->next_refresh_ms = now + FILE_CHECK_MS;
        }
        confirm(c, now, age_ms);
    } else {
        c->fail_backoff_ms = c->fail_backoff_ms ? c->fail_backoff_ms * 2 : FAIL_BACKOFF_MIN_MS;
        if (c->fail_backoff_ms > FAIL_BACKOFF_MAX_MS)
            c->fail_backoff_ms = FAIL_BACKOFF_MAX_MS;
        c->next_refresh_ms = now + c->fail_backoff_ms;
    }
}
    ztb_keyset_free(cur);
    ztb_keyset_free(ks);
    ztb_buf_free(&doc);
    return rv;
}

/* For a file: 1 if it changed since the last read (or cannot be checked). */
static int file_changed(const struct jwks_cache *c)
{
    struct stat st;
    if (stat(c->file, &st) != 0)
        return 1;
    return st.st_ino != c->file_st.st_ino || st.st_dev != c->file_st.st_dev ||
           st.st_size != c->file_st.st_size || st.st_mtim.tv_sec != c->file_st.st_mtim.tv_sec ||
           st.st_mtim.tv_nsec != c->file_st.st_mtim.tv_nsec;
}

ztb_err jwks_cache_refresh(struct jwks_cache *c)
{
    pthread_mutex_lock(&c->fetch_mu);
    ztb_err rv = ZTB_OK;
    if (c->url != NULL || file_changed(c)) {
        rv = fetch_locked(c);
    } else {
        int64_t now = clock_mono_ms(); /* unchanged and still there: confirmed */
        c->next_refresh_ms = now + FILE_CHECK_MS;
        confirm(c, now, (int64_t)JWKS_DEFAULT_MAX_AGE_S * 1000);
    }
    pthread_mutex_unlock(&c->fetch_mu);
    return rv;
}

ztb_err jwks_cache_fresh(struct jwks_cache *c, char *why, size_t cap)
{
    int64_t confirmed = atomic_load_explicit(&c->confirmed_ms, memory_order_relaxed);
    int64_t limit = atomic_load_explicit(&c->stale_after_ms, memory_order_relaxed);
    int64_t age = clock_mono_ms() - confirmed;
    if (age <= limit)
        return ZTB_OK;
    if (why != NULL && cap > 0) {
        /* last_error is written under fetch_mu; a fetch in progress may hold
         * it for a while, and this must not wait */
        int locked = pthread_mutex_trylock(&c->fetch_mu) == 0;
        snprintf(why, cap,
                 "JWKS stale: keys last confirmed %llds ago, over max-age + %ds (%llds); no token "
                 "until they are fetched again (%s%.120s)",
                 (long long)(age / 1000), JWKS_STALE_MARGIN_S, (long long)(limit / 1000),
                 locked ? "last error: " : "a fetch is in progress", locked ? c->last_error : "");
        if (locked)
            pthread_mutex_unlock(&c->fetch_mu);
    }
    return ZTB_ERR_UNAVAILABLE;
}

static void *refresher_main(void *arg)
{
    struct jwks_cache *c = arg;
    pthread_mutex_lock(&c->mu);
    while (!c->stop) {
        pthread_mutex_lock(&c->fetch_mu);
        int64_t due = c->next_refresh_ms;
        pthread_mutex_unlock(&c->fetch_mu);
        int64_t now = clock_mono_ms();
        if (now < due) {
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            int64_t wait = due - now;
            ts.tv_sec += wait / 1000;
            ts.tv_nsec += (long)(wait % 1000) * 1000000L;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&c->cv, &c->mu, &ts);
            continue;
        }
        pthread_mutex_unlock(&c->mu);
        (void)jwks_cache_refresh(c);
        pthread_mutex_lock(&c->mu);
    }
    pthread_mutex_unlock(&c->mu);
    return NULL;
}

static void cache_destroy(struct jwks_cache *c)
{
    ztb_keyset_slot_destroy(&c->slot);
    pthread_mutex_destroy(&c->fetch_mu);
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->cv);
    free(c->url);
    free(c->file);
    free(c);
}

void jwks_cache_free(struct jwks_cache *c)
{
    if (c == NULL)
        return;
    if (c->thread_started) {
        pthread_mutex_lock(&c->mu);
        c->stop = 1;
        pthread_cond_broadcast(&c->cv);
        pthread_mutex_unlock(&c->mu);
        pthread_join(c->thread, NULL);
    }
    thread_cache_forget(c->owner);
    cache_destroy(c);
}

ztb_err jwks_cache_new(const struct jwks_cache_opts *o, struct jwks_cache **out, char *err,
                       size_t errcap)
{
    ZTB_ENSURE(o != NULL && out != NULL, ZTB_ERR_INVALID_ARG);
    ZTB_ENSURE((o->url == NULL) != (o->file == NULL), ZTB_ERR_INVALID_ARG);
    ZTB_ENSURE(o->url == NULL || o->http != NULL, ZTB_ERR_INVALID_ARG);
    *out = NULL;
    struct jwks_cache *c = calloc(1, sizeof(*c));
    ZTB_ENSURE(c != NULL, ZTB_ERR_NOMEM);
    int ok = 1;
    pthread_condattr_t ca;
    ok = pthread_condattr_init(&ca) == 0;
    if (ok) {
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        ok = pthread_cond_init(&c->cv, &ca) == 0;
        pthread_condattr_destroy(&ca);
    }
    if (!ok || pthread_mutex_init(&c->mu, NULL) != 0 ||
        pthread_mutex_init(&c->fetch_mu, NULL) != 0 || ztb_keyset_slot_init(&c->slot) != ZTB_OK) {
        free(c);
        return ZTB_ERR_NOMEM;
    }
    c->owner = thread_cache_new_owner();
    c->http = o->http;
    c->refetch_ms = (int64_t)(o->refetch_s ? o->refetch_s : JWKS_DEFAULT_REFETCH_S) * 1000;
    c->jwks_flags = o->jwks_flags;
    atomic_store(&c->last_demand_ms, INT64_MIN / 2);
    c->url = o->url ? strdup(o->url) : NULL;
    c->file = o->file ? strdup(o->file) : NULL;
    if (c->url == NULL && c->file == NULL) {
        cache_destroy(c);
        return ZTB_ERR_NOMEM;
    }
    pthread_mutex_lock(&c->fetch_mu);
    ztb_err rv = fetch_locked(c);
    pthread_mutex_unlock(&c->fetch_mu);
    if (rv != ZTB_OK) {
        if (err != NULL && errcap > 0)
            snprintf(err, errcap, "%s", c->last_error);
        cache_destroy(c);
        return rv;
    }
    sigset_t old;
    sigpipe_block_all_for_new_thread(&old);
    int prc = pthread_create(&c->thread, NULL, refresher_main, c);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (prc != 0) {
        cache_destroy(c);
        return ZTB_ERR_NOMEM;
    }
    c->thread_started = 1;
    *out = c;
    return ZTB_OK;
}

const ztb_keyset *jwks_cache_keyset(struct jwks_cache *c, uint64_t *epoch)
{
    uint64_t e = atomic_load_explicit(&c->epoch, memory_order_acquire);
    *epoch = e;
    return thread_cache_keyset(c->owner, e, &c->slot);
}

int jwks_cache_unknown_kid(struct jwks_cache *c, uint64_t seen)
{
    if (atomic_load(&c->epoch) != seen)
        return 1;
    /* The fetcher stores fetching = 1 and then last_demand; so last_demand
     * is read first, fetching after it: whoever sees the new last_demand
     * also sees fetching = 1 (it waits for that fetch below) or, the fetch
     * over, fetching = 0 with its epoch already moved. Read the other way
     * round, a thread could see fetching = 0 from before the fetch and the
     * new last_demand, and call a kid the fetch in flight is about to bring
     * unknown (a rotation's first tokens, several verifier threads). */
    int64_t demand = atomic_load(&c->last_demand_ms);
    if (clock_mono_ms() - demand < c->refetch_ms && !atomic_load(&c->fetching))
        return atomic_load(&c->epoch) != seen; /* rate-limited: no I/O */
    pthread_mutex_lock(&c->fetch_mu);
    if (atomic_load(&c->epoch) == seen &&
        clock_mono_ms() - atomic_load(&c->last_demand_ms) >= c->refetch_ms) {
        atomic_store(&c->fetching, 1); /* before last_demand: see the fast path above */
        atomic_store(&c->last_demand_ms, clock_mono_ms());
        if (c->url != NULL || file_changed(c))
            (void)fetch_locked(c);
        atomic_store(&c->fetching, 0);
    }
    pthread_mutex_unlock(&c->fetch_mu);
    return atomic_load(&c->epoch) != seen;
}

int jwks_cache_last_fetch_failed(struct jwks_cache *c, char *why, size_t cap)
{
    if (!atomic_load(&c->last_failed))
        return 0;
    if (why != NULL && cap > 0) {
        pthread_mutex_lock(&c->fetch_mu);
        snprintf(why, cap, "%s", c->last_error);
        pthread_mutex_unlock(&c->fetch_mu);
    }
    return 1;
}

size_t jwks_cache_key_count(struct jwks_cache *c)
{
    return atomic_load(&c->nkeys);
}

uint64_t jwks_cache_fetches(struct jwks_cache *c)
{
    return atomic_load(&c->fetches);
}
