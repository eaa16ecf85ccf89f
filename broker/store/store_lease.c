/*
 * store_lease.c - rate leases (see store_lease.h).
 *
 * A fixed table of LEASE_BUCKETS buckets of LEASE_WAYS leases, each bucket
 * under its own mutex: the token path's threads take units of different
 * agents without meeting. When a bucket is full of live leases a new one
 * is not kept (its extra units go straight back to Redis): the requests
 * it would have served run the script, as without leases.
 *
 * What could not be written to Redis (it was down) waits in a list of its
 * own and is written first at the next settlement; past LEASE_PENDING_MAX
 * entries it is dropped and logged (the counts are then low, the buckets
 * charged more than used: never the other way round).
 */
#include <pthread.h>
#include <stdio.h>
#include <sys/random.h>
#include <sys/types.h>
#include <unistd.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "broker/store/store_lease.h"
#include "common/log.h"

#define LEASE_BUCKETS 1024
#define LEASE_WAYS    4
#define LEASE_IDLE_MS (20 * STORE_LEASE_LIFE_MS) /* an ended lease kept for its counts */
/* Tokens of one lease's kind in a window of STORE_LEASE_LIFE_MS before
 * units are leased at all: below that, one script per token is cheaper
 * than a lease's read, grant and settlement. */
#define LEASE_MIN_TOKENS  4
#define LEASE_PENDING_MAX 65536
#define LEASE_BL_MAX      24
#define SETTLE_BATCH      512

struct lease {
    char *blob; /* NULL: a free way; else agent, action, audience, prefix, NUL-separated */
    const char *agent, *action, *audience, *prefix;
    uint64_t i1, i2;
    uint32_t b1, b2;
    uint64_t hash;
    unsigned units; /* left of the current grant */
    /* Tokens of this kind (leased or not) in the window that started at
     * win_start_ms, and in the window before it: what a grant is sized by. */
    uint64_t win_start_ms;
    unsigned win_n, last_n;
    uint64_t expires_ms; /* the current grant's end */
    uint64_t last_ms;    /* last take or grant */
    uint64_t used;       /* taken since the last settlement */
    uint64_t refund;     /* units of ended grants not yet given back */
    /* The TATs (µs) the grants wrote, per bucket: the smallest of the
     * grants whose units are in `units` (cur), and of those in `refund`
     * (ref); -1: none. A refund gives back at most what the grant still
     * held ahead of Redis's now (store_lease_due). */
    int64_t cur_tat1, cur_tat2, ref_tat1, ref_tat2;
    char bl_until[LEASE_BL_MAX];
};

static struct {
    pthread_mutex_t mu;
    struct lease way[LEASE_WAYS];
} g_table[LEASE_BUCKETS];
static pthread_once_t g_table_once = PTHREAD_ONCE_INIT;
static _Atomic uint64_t g_taken, g_settle_failed;
static atomic_size_t g_count;

static pthread_mutex_t g_pending_mu = PTHREAD_MUTEX_INITIALIZER;
static struct store_lease_due *g_pending;
static size_t g_pending_n, g_pending_cap;

static void table_init(void)
{
    for (size_t i = 0; i < LEASE_BUCKETS; i++)
        pthread_mutex_init(&g_table[i].mu, NULL);
}

uint64_t store_lease_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const unsigned char *c = p;
    for (size_t i = 0; i < n; i++) {
        h ^= c[i];
        h *= 1099511628211ull;
    }
    return h;
}

static uint64_t hash_of(const struct store_lease_id *id)
{
    uint64_t h = 14695981039346656037ull;
    const char *s[4] = {id->agent, id->action, id->audience, id->prefix ? id->prefix : ""};
    for (size_t i = 0; i < 4; i++)
        h = fnv(h, s[i], strlen(s[i]) + 1);
    uint64_t n[4] = {id->agent_interval_us, id->action_interval_us, id->agent_burst,
                     id->action_burst};
    return fnv(h, n, sizeof(n));
}

uint64_t store_lease_hash(const struct store_lease_id *id)
{
    uint64_t h = hash_of(id);
    return h ? h : 1;
}

/* id's hash: the one its caller computed, else now. */
static uint64_t id_hash(const struct store_lease_id *id)
{
    return id->hash ? id->hash : store_lease_hash(id);
}

static int same(const struct lease *e, const struct store_lease_id *id, uint64_t h)
{
    return e->blob != NULL && e->hash == h && e->i1 == id->agent_interval_us &&
           e->i2 == id->action_interval_us && e->b1 == id->agent_burst &&
           e->b2 == id->action_burst && strcmp(e->agent, id->agent) == 0 &&
           strcmp(e->action, id->action) == 0 && strcmp(e->audience, id->audience) == 0 &&
           strcmp(e->prefix, id->prefix ? id->prefix : "") == 0;
}

/* The bucket of id, locked, and id's lease in it (NULL if none). */
static struct lease *find(const struct store_lease_id *id, uint64_t h, size_t *bucket)
{
    pthread_once(&g_table_once, table_init);
    *bucket = (size_t)(h % LEASE_BUCKETS);
    pthread_mutex_lock(&g_table[*bucket].mu);
    for (size_t w = 0; w < LEASE_WAYS; w++)
        if (same(&g_table[*bucket].way[w], id, h))
            return &g_table[*bucket].way[w];
    return NULL;
}

unsigned store_lease_cap(const struct store_lease_id *id)
{
    uint64_t b = UINT64_MAX;
    if (id->agent_interval_us > 0)
        b = id->agent_burst;
    if (id->action_interval_us > 0 && id->action_burst < b)
        b = id->action_burst;
    if (b == UINT64_MAX)
        return STORE_LEASE_MAX_UNITS;
    b /= 8;
    return b < 1 ? 1 : b > STORE_LEASE_MAX_UNITS ? STORE_LEASE_MAX_UNITS : (unsigned)b;
}

/* The smaller of two TATs, -1 standing for none. */
static int64_t tat_min(int64_t a, int64_t b)
{
    return a < 0 ? b : b < 0 ? a : a < b ? a : b;
}

/* The grant in force has ended (time, or the baseline window it was
 * granted under changed): its units go back at the next settlement. */
static void end_grant(struct lease *e)
{
    if (e->units > 0) {
        e->refund += e->units;
        e->ref_tat1 = tat_min(e->ref_tat1, e->cur_tat1);
        e->ref_tat2 = tat_min(e->ref_tat2, e->cur_tat2);
    }
    e->units = 0;
    e->cur_tat1 = e->cur_tat2 = -1;
}

/* Start a new window when the current one is over. */
static void roll_window(struct lease *e, uint64_t now_ms)
{
    if (now_ms - e->win_start_ms < STORE_LEASE_LIFE_MS)
        return;
    e->last_n = now_ms - e->win_start_ms < 2 * STORE_LEASE_LIFE_MS ? e->win_n : 0;
    e->win_start_ms = now_ms;
    e->win_n = 0;
}

/* One token of this kind, leased or not. */
static void count_token(struct lease *e, uint64_t now_ms)
{
    roll_window(e, now_ms);
    e->win_n++;
    e->last_ms = now_ms;
}

/*
 * No unit of e to take now: end a grant that has run out of time (or was
 * granted under another baseline window) and size the next one: the
 * tokens of the last full window (or of this one, if more already), so
 * that a grant lasts about its life; 1 (no lease) for fewer than
 * LEASE_MIN_TOKENS.
 */
static unsigned next_want(struct lease *e, const struct store_lease_id *id, uint64_t now_ms,
                          const char *bl_until)
{
    if ((bl_until != NULL && strcmp(e->bl_until, bl_until) != 0) || now_ms >= e->expires_ms)
        end_grant(e);
    roll_window(e, now_ms);
    unsigned n = e->last_n > e->win_n ? e->last_n : e->win_n;
    if (n < LEASE_MIN_TOKENS)
        return 1;
    unsigned cap = store_lease_cap(id);
    return n > cap ? cap : n;
}

int store_lease_ready(const struct store_lease_id *id, uint64_t now_ms, unsigned *want)
{
    *want = 1;
    size_t b;
    struct lease *e = find(id, id_hash(id), &b);
    int ok = e != NULL && e->units > 0 && now_ms < e->expires_ms;
    if (e != NULL && !ok)
        *want = next_want(e, id, now_ms, NULL);
    pthread_mutex_unlock(&g_table[b].mu);
    return ok;
}

int store_lease_take(const struct store_lease_id *id, const char *bl_until, uint64_t now_ms,
                     unsigned *want)
{
    *want = 1;
    size_t b;
    struct lease *e = find(id, id_hash(id), &b);
    int took = 0;
    if (e != NULL) {
        if (e->units > 0 && now_ms < e->expires_ms && strcmp(e->bl_until, bl_until) == 0) {
            e->units--;
            e->used++;
            count_token(e, now_ms);
            took = 1;
        } else {
            *want = next_want(e, id, now_ms, bl_until);
        }
    }
    pthread_mutex_unlock(&g_table[b].mu);
    if (took)
        atomic_fetch_add_explicit(&g_taken, 1, memory_order_relaxed);
    return took;
}

static int pending_add(const struct store_lease_due *d);
static int due_set(struct store_lease_due *d, const char *agent, const char *action, uint64_t i1,
                   uint64_t i2, uint64_t used, uint64_t refund, int64_t tat1, int64_t tat2);

static int lease_set(struct lease *e, const struct store_lease_id *id, uint64_t h)
{
    const char *s[4] = {id->agent, id->action, id->audience, id->prefix ? id->prefix : ""};
    size_t len[4], total = 0;
    for (size_t i = 0; i < 4; i++)
        total += (len[i] = strlen(s[i])) + 1;
    char *blob = malloc(total);
    if (blob == NULL)
        return 0;
    memset(e, 0, sizeof(*e));
    e->blob = blob;
    const char **dst[4] = {&e->agent, &e->action, &e->audience, &e->prefix};
    for (size_t i = 0; i < 4; i++) {
        memcpy(blob, s[i], len[i] + 1);
        *dst[i] = blob;
        blob += len[i] + 1;
    }
    e->i1 = id->agent_interval_us;
    e->i2 = id->action_interval_us;
    e->b1 = id->agent_burst;
    e->b2 = id->action_burst;
    e->hash = h;
    e->cur_tat1 = e->cur_tat2 = e->ref_tat1 = e->ref_tat2 = -1;
    atomic_fetch_add(&g_count, 1);
    return 1;
}

static void lease_free(struct lease *e)
{
    free(e->blob);
    memset(e, 0, sizeof(*e));
    atomic_fetch_sub(&g_count, 1);
}

void store_lease_grant(const struct store_lease_id *id, unsigned granted, const char *bl_until,
                       int64_t agent_tat, int64_t action_tat, uint64_t now_ms)
{
    if (granted < 1)
        return;
    uint64_t h = id_hash(id);
    size_t b;
    struct lease *e = find(id, h, &b);
    if (e == NULL) {
        /* a free way, else one that has ended and owes nothing */
        for (size_t w = 0; w < LEASE_WAYS && e == NULL; w++)
            if (g_table[b].way[w].blob == NULL)
                e = &g_table[b].way[w];
        for (size_t w = 0; w < LEASE_WAYS && e == NULL; w++) {
            struct lease *o = &g_table[b].way[w];
            if (now_ms >= o->expires_ms && o->used == 0 && o->refund == 0 && o->units == 0) {
                lease_free(o);
                e = o;
            }
        }
        if (e != NULL && !lease_set(e, id, h))
            e = NULL;
    }
    if (e == NULL) {
        pthread_mutex_unlock(&g_table[b].mu);
        /* no room: the units the caller did not use go back */
        struct store_lease_due d;
        int ok = granted < 2 ||
                 (due_set(&d, id->agent, id->action, id->agent_interval_us, id->action_interval_us,
                          0, granted - 1, agent_tat, action_tat) &&
                  pending_add(&d));
        if (granted >= 2)
            store_lease_due_free(&d);
        if (!ok)
            ztb_log(ZTB_LOG_WARN, "store.lease_units_lost", ZTB_F_STR("agent", id->agent),
                    ZTB_F_INT("units", granted - 1));
        return;
    }
    if (e->units > 0 && strcmp(e->bl_until, bl_until) != 0)
        end_grant(e);
    if (granted > 1) {
        e->cur_tat1 = e->units > 0 ? tat_min(e->cur_tat1, agent_tat) : agent_tat;
        e->cur_tat2 = e->units > 0 ? tat_min(e->cur_tat2, action_tat) : action_tat;
    }
    e->units += granted - 1;
    e->expires_ms = now_ms + STORE_LEASE_LIFE_MS;
    count_token(e, now_ms); /* the caller's */
    size_t n = strlen(bl_until);
    if (n >= sizeof(e->bl_until)) /* not a time we wrote: never matches */
        bl_until = "-";
    memcpy(e->bl_until, bl_until, strlen(bl_until) + 1);
    pthread_mutex_unlock(&g_table[b].mu);
}

/* Settlement ----------------------------------------------------------------*/

/* Settlement ids: this process's random prefix and a counter, so that a
 * settlement Redis ran but whose answer was lost is not applied twice when
 * it is sent again (store_lease_due.id). */
static pthread_once_t g_id_once = PTHREAD_ONCE_INIT;
static uint64_t g_id_prefix;
static _Atomic uint64_t g_id_next;

static void id_init(void)
{
    if (getrandom(&g_id_prefix, sizeof(g_id_prefix), 0) != (ssize_t)sizeof(g_id_prefix))
        g_id_prefix = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
}

static int due_set(struct store_lease_due *d, const char *agent, const char *action, uint64_t i1,
                   uint64_t i2, uint64_t used, uint64_t refund, int64_t tat1, int64_t tat2)
{
    memset(d, 0, sizeof(*d));
    d->agent = strdup(agent);
    d->action = strdup(action);
    if (d->agent == NULL || d->action == NULL) {
        store_lease_due_free(d);
        return 0;
    }
    d->agent_interval_us = i1;
    d->action_interval_us = i2;
    d->used = used;
    d->refund = refund;
    d->agent_tat = tat1 > 0 ? tat1 : 0;
    d->action_tat = tat2 > 0 ? tat2 : 0;
    pthread_once(&g_id_once, id_init);
    snprintf(d->id, sizeof(d->id), "%016llx%llx", (unsigned long long)g_id_prefix,
             (unsigned long long)atomic_fetch_add(&g_id_next, 1));
    return 1;
}

void store_lease_due_free(struct store_lease_due *d)
{
    free(d->agent);
    free(d->action);
    memset(d, 0, sizeof(*d));
}

/* A copy of d (its id kept) on the pending list; 0 if there is no room. */
static int pending_add(const struct store_lease_due *d)
{
    int ok = 0;
    pthread_mutex_lock(&g_pending_mu);
    if (g_pending_n == g_pending_cap && g_pending_cap < LEASE_PENDING_MAX) {
        size_t cap = g_pending_cap ? g_pending_cap * 2 : 64;
        struct store_lease_due *p = realloc(g_pending, cap * sizeof(*p));
        if (p != NULL) {
            g_pending = p;
            g_pending_cap = cap;
        }
    }
    if (g_pending_n < g_pending_cap) {
        struct store_lease_due *c = &g_pending[g_pending_n];
        *c = *d;
        c->agent = strdup(d->agent);
        c->action = strdup(d->action);
        ok = c->agent != NULL && c->action != NULL;
        if (ok)
            g_pending_n++;
        else
            store_lease_due_free(c);
    }
    pthread_mutex_unlock(&g_pending_mu);
    return ok;
}

void store_lease_restore(const struct store_lease_due *d)
{
    if (!pending_add(d))
        ztb_log(ZTB_LOG_WARN, "store.lease_settlement_lost", ZTB_F_STR("agent", d->agent),
                ZTB_F_INT("tokens", (int64_t)d->used), ZTB_F_INT("units", (int64_t)d->refund));
}

size_t store_lease_collect(struct store_lease_due *out, size_t cap, uint64_t now_ms, int all,
                           const char *agent)
{
    pthread_once(&g_table_once, table_init);
    size_t n = 0;
    pthread_mutex_lock(&g_pending_mu);
    for (size_t i = 0; i < g_pending_n && n < cap;) {
        if (agent == NULL || strcmp(g_pending[i].agent, agent) == 0) {
            out[n++] = g_pending[i];
            g_pending[i] = g_pending[--g_pending_n];
        } else {
            i++;
        }
    }
    pthread_mutex_unlock(&g_pending_mu);
    for (size_t b = 0; b < LEASE_BUCKETS && n < cap; b++) {
        pthread_mutex_lock(&g_table[b].mu);
        for (size_t w = 0; w < LEASE_WAYS && n < cap; w++) {
            struct lease *e = &g_table[b].way[w];
            if (e->blob == NULL || (agent != NULL && strcmp(e->agent, agent) != 0))
                continue;
            if (all || now_ms >= e->expires_ms)
                end_grant(e);
            if ((e->used > 0 || e->refund > 0) &&
                due_set(&out[n], e->agent, e->action, e->i1, e->i2, e->used, e->refund,
                        e->refund > 0 ? e->ref_tat1 : 0, e->refund > 0 ? e->ref_tat2 : 0)) {
                n++;
                e->used = e->refund = 0;
                e->ref_tat1 = e->ref_tat2 = -1;
            }
            if (e->used == 0 && e->refund == 0 && (all || now_ms >= e->last_ms + LEASE_IDLE_MS))
                lease_free(e);
        }
        pthread_mutex_unlock(&g_table[b].mu);
    }
    return n;
}

size_t store_lease_count(void)
{
    return atomic_load(&g_count);
}

uint64_t store_lease_units_taken(void)
{
    return atomic_load(&g_taken);
}

uint64_t store_lease_settle_failures(void)
{
    return atomic_load(&g_settle_failed);
}

/* The settlement thread -------------------------------------------------------*/

static _Atomic(store_lease_settled_fn) g_settled;

void store_lease_settled(const char *agent, const char *action,
                         const struct store_baseline_seen *bl)
{
    store_lease_settled_fn fn = atomic_load(&g_settled);
    if (fn != NULL)
        fn(agent, action, bl);
}

static pthread_mutex_t g_run_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_run_cv;
static pthread_once_t g_run_once = PTHREAD_ONCE_INIT;

static void run_init(void)
{
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&g_run_cv, &ca);
    pthread_condattr_destroy(&ca);
}
static int g_running, g_stop;
static pthread_t g_thread;

/* Collect into due[0..cap) and settle, until nothing is left or Redis
 * fails (the failed and the rest wait for the next round). */
static size_t settle_some(struct store_lease_due *due, size_t cap, int end_leases,
                          const char *agent)
{
    size_t total = 0, n;
    do {
        n = store_lease_collect(due, cap, store_lease_now_ms(), end_leases, agent);
        size_t failed = 0;
        for (size_t i = 0; i < n; i++) {
            /* a failure may come after Redis ran it: the retry has the
             * same id, so it is applied once (store_lease_due.id) */
            if (store_lease_settle(&due[i]) == ZTB_OK) {
                total++;
            } else {
                store_lease_restore(&due[i]);
                failed++;
                atomic_fetch_add(&g_settle_failed, 1);
            }
            store_lease_due_free(&due[i]);
        }
        if (failed > 0)
            break;
    } while (n == cap);
    return total;
}

size_t store_lease_settle_all(int end_leases)
{
    static struct store_lease_due due[SETTLE_BATCH];
    static pthread_mutex_t one = PTHREAD_MUTEX_INITIALIZER; /* due[] is shared */
    pthread_mutex_lock(&one);
    size_t total = settle_some(due, SETTLE_BATCH, end_leases, NULL);
    pthread_mutex_unlock(&one);
    return total;
}

size_t store_lease_settle_agent(const char *agent)
{
    struct store_lease_due due[16];
    return settle_some(due, sizeof(due) / sizeof(due[0]), 0, agent);
}

static void *settle_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&g_run_mu);
    while (!g_stop) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_nsec += STORE_LEASE_SWEEP_MS * 1000000L;
        ts.tv_sec += ts.tv_nsec / 1000000000L;
        ts.tv_nsec %= 1000000000L;
        pthread_cond_timedwait(&g_run_cv, &g_run_mu, &ts);
        if (g_stop)
            break;
        pthread_mutex_unlock(&g_run_mu);
        (void)store_lease_settle_all(0);
        pthread_mutex_lock(&g_run_mu);
    }
    pthread_mutex_unlock(&g_run_mu);
    return NULL;
}

ztb_err store_lease_start(store_lease_settled_fn settled)
{
    pthread_mutex_lock(&g_run_mu);
    atomic_store(&g_settled, settled);
    if (g_running) {
        pthread_mutex_unlock(&g_run_mu);
        return ZTB_OK;
    }
    pthread_once(&g_run_once, run_init);
    g_stop = 0;
    int rc = pthread_create(&g_thread, NULL, settle_main, NULL);
    g_running = rc == 0;
    pthread_mutex_unlock(&g_run_mu);
    return rc == 0 ? ZTB_OK : ZTB_ERR_INTERNAL;
}

void store_lease_stop(void)
{
    pthread_mutex_lock(&g_run_mu);
    int running = g_running;
    g_stop = 1;
    if (running)
        pthread_cond_signal(&g_run_cv);
    pthread_mutex_unlock(&g_run_mu);
    if (running) {
        pthread_join(g_thread, NULL);
        pthread_mutex_lock(&g_run_mu);
        g_running = 0;
        pthread_mutex_unlock(&g_run_mu);
    }
    (void)store_lease_settle_all(1);
}
