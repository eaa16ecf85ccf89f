/*
 * unknown_clients.c - count refused unknown callers and report them (see
 * unknown_clients.h).
 *
 * How it works: a table of UC_TOP (reason, source, count) entries and one
 * "_other" count per reason under a mutex. uc_note finds the entry by a
 * linear scan (64 short compares, only on a refusal), or takes a free slot,
 * or evicts the smallest entry into "_other". The reporting thread sleeps
 * on a monotonic condition variable for the interval, takes the table
 * (uc_take) and sends it with two commands on a pooled connection: LPUSH
 * the report, LTRIM the list to UNKNOWN_REPORT_KEEP. Both are write-only
 * for Redis ACLs, so the verifiers' user needs no read right on the list.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/guard.h"
#include "sdk/src/clock.h"
#include "sdk/src/sigpipe.h"
#include "sdk/src/unknown_clients.h"
#include "wire/wire.h"

struct uc_entry {
    enum unknown_reason reason;
    char source[UNKNOWN_LABEL_MAX + 1];
    int64_t count; /* 0: free */
};

struct unknown_clients {
    char gateway[UNKNOWN_GATEWAY_MAX + 1];
    struct rconn_pool *pool;
    unsigned interval_ms;
    pthread_mutex_t mu; /* the table and since_ms */
    struct uc_entry e[UC_TOP];
    int64_t other[UNKNOWN_REASONS_N];
    int64_t since_ms;    /* when the table was last emptied */
    pthread_mutex_t tmu; /* the thread's stop flag */
    pthread_cond_t cv;
    int stop, thread_started;
    pthread_t thread;
    _Atomic uint64_t callers[UNKNOWN_REASONS_N], folded, sent, failed;
};

static int64_t add_capped(int64_t a, int64_t b)
{
    return a > UNKNOWN_COUNT_MAX - b ? UNKNOWN_COUNT_MAX : a + b;
}

void uc_note(struct unknown_clients *u, enum unknown_reason reason, const char *source)
{
    if (u == NULL || (unsigned)reason >= UNKNOWN_REASONS_N)
        return;
    const char *src = source == NULL ? "unknown" : unknown_label_ok(source) ? source : "invalid";
    if (strcmp(src, UNKNOWN_OTHER_SOURCE) == 0)
        src = "invalid"; /* "_other" means the folded callers only */
    atomic_fetch_add_explicit(&u->callers[reason], 1, memory_order_relaxed);
    pthread_mutex_lock(&u->mu);
    struct uc_entry *free_slot = NULL, *min = NULL;
    for (size_t i = 0; i < UC_TOP; i++) {
        struct uc_entry *x = &u->e[i];
        if (x->count == 0) {
            if (free_slot == NULL)
                free_slot = x;
            continue;
        }
        if (x->reason == reason && strcmp(x->source, src) == 0) {
            x->count = add_capped(x->count, 1);
            pthread_mutex_unlock(&u->mu);
            return;
        }
        if (min == NULL || x->count < min->count)
            min = x;
    }
    struct uc_entry *slot = free_slot;
    if (slot == NULL) { /* full: the smallest goes to _other (space-saving) */
        slot = min;
        u->other[slot->reason] = add_capped(u->other[slot->reason], slot->count);
        atomic_fetch_add_explicit(&u->folded, (uint64_t)slot->count, memory_order_relaxed);
    }
    slot->reason = reason;
    snprintf(slot->source, sizeof(slot->source), "%s", src);
    slot->count = 1;
    pthread_mutex_unlock(&u->mu);
}

void uc_take(struct unknown_clients *u, struct unknown_report *r)
{
    memset(r, 0, sizeof(*r));
    snprintf(r->gateway, sizeof(r->gateway), "%s", u->gateway);
    pthread_mutex_lock(&u->mu);
    int64_t now = clock_mono_ms();
    r->window_s = (now - u->since_ms + 999) / 1000;
    if (r->window_s > 86400)
        r->window_s = 86400;
    u->since_ms = now;
    for (size_t i = 0; i < UC_TOP; i++) {
        if (u->e[i].count == 0)
            continue;
        r->c[r->n].reason = u->e[i].reason;
        memcpy(r->c[r->n].source, u->e[i].source, sizeof(r->c[0].source));
        r->c[r->n].count = u->e[i].count;
        r->n++;
        u->e[i].count = 0;
    }
    for (size_t k = 0; k < UNKNOWN_REASONS_N; k++) {
        if (u->other[k] == 0)
            continue;
        r->c[r->n].reason = (enum unknown_reason)k;
        snprintf(r->c[r->n].source, sizeof(r->c[0].source), "%s", UNKNOWN_OTHER_SOURCE);
        r->c[r->n].count = u->other[k];
        r->n++;
        u->other[k] = 0;
    }
    pthread_mutex_unlock(&u->mu);
}

/* Send r: LPUSH then LTRIM. OK, UNAVAILABLE, or PERMISSION for an error reply (NOPERM...). */
static ztb_err send_report(struct unknown_clients *u, const struct unknown_report *r)
{
    char mem[UNKNOWN_REPORT_MAX];
    ztb_buf b;
    ztb_buf_init_fixed(&b, mem, sizeof(mem));
    ZTB_GUARD(unknown_report_write(r, &b));
    const char *push[] = {"LPUSH", ZTB_WIRE_UNKNOWN_REPORTS_KEY, mem};
    size_t push_len[] = {5, strlen(ZTB_WIRE_UNKNOWN_REPORTS_KEY), b.len};
    redisReply *rep = NULL;
    ZTB_GUARD(rconn_pool_command(u->pool, &rep, 3, push, push_len));
    ztb_err rv = rep->type == REDIS_REPLY_INTEGER ? ZTB_OK : ZTB_ERR_PERMISSION;
    freeReplyObject(rep);
    ZTB_GUARD(rv);
    char stop[16];
    int sl = snprintf(stop, sizeof(stop), "%d", UNKNOWN_REPORT_KEEP - 1);
    const char *trim[] = {"LTRIM", ZTB_WIRE_UNKNOWN_REPORTS_KEY, "0", stop};
    size_t trim_len[] = {5, strlen(ZTB_WIRE_UNKNOWN_REPORTS_KEY), 1, (size_t)sl};
    ZTB_GUARD(rconn_pool_command(u->pool, &rep, 4, trim, trim_len));
    rv = rep->type == REDIS_REPLY_STATUS ? ZTB_OK : ZTB_ERR_PERMISSION;
    freeReplyObject(rep);
    return rv;
}

ztb_err uc_flush(struct unknown_clients *u)
{
    ZTB_ENSURE(u != NULL, ZTB_ERR_INVALID_ARG);
    struct unknown_report r;
    uc_take(u, &r);
    if (r.n == 0 || u->pool == NULL)
        return ZTB_OK;
    ztb_err rv = send_report(u, &r);
    atomic_fetch_add_explicit(rv == ZTB_OK ? &u->sent : &u->failed, 1, memory_order_relaxed);
    return rv;
}

static void *reporter_main(void *arg)
{
    struct unknown_clients *u = arg;
    pthread_mutex_lock(&u->tmu);
    while (!u->stop) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_sec += u->interval_ms / 1000;
        ts.tv_nsec += (long)(u->interval_ms % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        if (pthread_cond_timedwait(&u->cv, &u->tmu, &ts) == 0 && u->stop)
            break;
        pthread_mutex_unlock(&u->tmu);
        (void)uc_flush(u); /* a failure is counted; the next interval tries again */
        pthread_mutex_lock(&u->tmu);
    }
    pthread_mutex_unlock(&u->tmu);
    return NULL;
}

ztb_err uc_new(const char *gateway, struct rconn_pool *pool, unsigned interval_ms,
               struct unknown_clients **out)
{
    ZTB_ENSURE(gateway != NULL && out != NULL, ZTB_ERR_INVALID_ARG);
    *out = NULL;
    struct unknown_clients *u = calloc(1, sizeof(*u));
    ZTB_ENSURE(u != NULL, ZTB_ERR_NOMEM);
    snprintf(u->gateway, sizeof(u->gateway), "%s", gateway);
    u->pool = pool;
    u->interval_ms = interval_ms;
    u->since_ms = clock_mono_ms();
    pthread_condattr_t ca;
    int ok = pthread_condattr_init(&ca) == 0;
    if (ok) {
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        ok = pthread_cond_init(&u->cv, &ca) == 0;
        pthread_condattr_destroy(&ca);
    }
    if (!ok) {
        free(u);
        return ZTB_ERR_NOMEM;
    }
    pthread_mutex_init(&u->mu, NULL);
    pthread_mutex_init(&u->tmu, NULL);
    if (pool != NULL && interval_ms > 0) {
        sigset_t old;
        sigpipe_block_all_for_new_thread(&old);
        int prc = pthread_create(&u->thread, NULL, reporter_main, u);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (prc != 0) {
            uc_free(u);
            return ZTB_ERR_NOMEM;
        }
        u->thread_started = 1;
    }
    *out = u;
    return ZTB_OK;
}

void uc_free(struct unknown_clients *u)
{
    if (u == NULL)
        return;
    if (u->thread_started) {
        pthread_mutex_lock(&u->tmu);
        u->stop = 1;
        pthread_cond_broadcast(&u->cv);
        pthread_mutex_unlock(&u->tmu);
        pthread_join(u->thread, NULL);
        (void)uc_flush(u); /* what was counted since the last report */
    }
    pthread_cond_destroy(&u->cv);
    pthread_mutex_destroy(&u->mu);
    pthread_mutex_destroy(&u->tmu);
    free(u);
}

void uc_stats(struct unknown_clients *u, struct uc_stats *out)
{
    memset(out, 0, sizeof(*out));
    if (u == NULL)
        return;
    for (size_t k = 0; k < UNKNOWN_REASONS_N; k++)
        out->callers[k] = atomic_load(&u->callers[k]);
    out->folded = atomic_load(&u->folded);
    out->reports_sent = atomic_load(&u->sent);
    out->reports_failed = atomic_load(&u->failed);
}
