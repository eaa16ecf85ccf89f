/*
 * redis_client.c - per-thread Redis connections (common/redis_link.h:
 * plain, unix or TLS) with timeouts and backoff (see redis_client.h).
 *
 * Connections live in a thread-local slot and are also linked on a global
 * list (under a mutex, touched only on connect/close) so shutdown can free
 * them all. Never logs the password or command arguments (they may hold
 * token ids or credentials); logs the target and the hiredis error text.
 *
 * A connection that has sat idle for 10 ms or more is checked (one
 * zero-timeout poll) before it is used: if Redis closed it meanwhile (a
 * restart, a failover, an idle timeout), the thread reconnects at once
 * instead of failing one request with 503 first. Under load a connection is
 * used every few hundred microseconds and never checked; at low rates the
 * poll costs well under a microsecond a request.
 *
 * Failover: every reply is classified (redis_error_kind_of). An error reply
 * that says the server cannot take writes now (READONLY, MASTERDOWN,
 * LOADING, NOAUTH/WRONGPASS) or a lost connection drops the connection; the
 * "service" error kinds (everything but NOSCRIPT and unknown errors) are
 * turned into UNAVAILABLE for the caller (503, fail closed) and counted in
 * ztb_redis_errors_total{kind}. READONLY, MASTERDOWN and LOADING also bump
 * a global epoch, and so does a +switch-master announced by a sentinel (a
 * watcher thread subscribes to one sentinel after another): every thread
 * whose connection is older than the epoch reconnects before its next
 * command, which with a Sentinel URL means asking the sentinels where the
 * master is and checking ROLE (redis_target_connect). No command is retried
 * on a new connection: the caller gets UNAVAILABLE and the client retries.
 */
#include <errno.h>
#include <poll.h>
#include <stdatomic.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <openssl/sha.h>

#include "broker/http/metrics.h"
#include "broker/store/redis_client.h"
#include "common/redis_cluster.h"
#include "common/guard.h"
#include "common/log.h"
#include "common/log_sample.h"
#include "common/secret.h"

#define BACKOFF_MIN_MS 25
#define BACKOFF_MAX_MS 1000
#define IDLE_CHECK_MS  10

struct rconn {
    struct redis_link *ctx;
    struct redis_cluster *cl; /* a Cluster target: routed connections, NULL until used */
    unsigned epoch;           /* g_epoch when ctx was made */
    uint64_t retry_at_ms;     /* no reconnect before this... */
    uint64_t failed_ms;       /* ...unless another connected after this failure */
    uint64_t used_ms;         /* last handed out */
    unsigned backoff_ms;
    struct rconn *next;
};

static struct redis_target g_target;
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static struct rconn *g_all;
static __thread struct rconn *t_conn;

/* The shared pipeline (redis_command_shared) */
#define SHARED_BATCH_MAX 64

enum { SQ_QUEUED, SQ_DONE, SQ_LEAD };

struct shared_cmd {
    int argc;
    const char **argv;
    const size_t *lens;
    redisReply *reply;
    ztb_err err;
    int state;
    pthread_cond_t cv;
    struct shared_cmd *next;
};

static struct {
    pthread_mutex_t mu;
    struct shared_cmd *head, *tail;
    int leading; /* a batch is in flight */
    struct rconn conn;
} g_shared = {.mu = PTHREAD_MUTEX_INITIALIZER};

/* Bumped when the master may have moved: connections older reconnect. */
static atomic_uint g_epoch;
/* When any connection (a thread's, the shared one, a Cluster's) last got
 * through to Redis: a connection backing off from a failure older than
 * that may try again at once (Redis is back: one request per thread, not
 * every request until each thread's own backoff ends, fails after it). */
static _Atomic uint64_t g_connected_ms;
/* Real traffic's last error (of a counted kind) and last success, for
 * readiness; the kind of that error. */
static _Atomic uint64_t g_last_err_ms;
static atomic_int g_last_bad; /* 1 if real traffic's latest outcome was an error */
static atomic_int g_last_err_kind;
/* set while this thread runs the readiness probe: its errors are not
 * real traffic's */
static __thread int t_probing;

static uint64_t mono_ms(void);

/* Note an error of kind k on real traffic for readiness. */
static void note_err(enum redis_error_kind k)
{
    if (t_probing)
        return;
    atomic_store(&g_last_err_kind, (int)k);
    atomic_store(&g_last_err_ms, mono_ms());
    atomic_store(&g_last_bad, 1);
}
/* WAIT after a revocation: replicas to confirm (0: none; WAIT_PER_SHARD:
 * one where the shard's master has replicas) and for how long */
#define WAIT_PER_SHARD (-1)
static atomic_int g_wait_replicas;
static atomic_uint g_wait_timeout_ms = 1000;

/* The sentinel watcher (Sentinel URLs only) */
static pthread_t g_watcher;
static int g_watcher_started;
static atomic_int g_watcher_stop;

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void *watch_sentinels(void *arg);

void redis_client_init(const struct redis_target *t)
{
    g_target = *t;
    atomic_store(&g_last_err_ms, 0);
    atomic_store(&g_last_bad, 0);
    /* a Sentinel deployment has replicas: a revocation waits for one; on a
     * Cluster, for one where the master that took it has replicas */
    atomic_store(&g_wait_replicas, t->nsentinels > 0 ? 1 : t->nseeds > 0 ? WAIT_PER_SHARD : 0);
    atomic_store(&g_watcher_stop, 0);
    if (t->nsentinels > 0 && !g_watcher_started &&
        pthread_create(&g_watcher, NULL, watch_sentinels, NULL) == 0)
        g_watcher_started = 1;
}

void redis_client_set_wait(int replicas, unsigned timeout_ms)
{
    if (replicas >= 0)
        atomic_store(&g_wait_replicas, replicas);
    if (timeout_ms > 0)
        atomic_store(&g_wait_timeout_ms, timeout_ms);
}

int redis_client_wait_replicas(void)
{
    return atomic_load(&g_wait_replicas);
}

void redis_client_reresolve(const char *why)
{
    atomic_fetch_add(&g_epoch, 1);
    ztb_log(ZTB_LOG_WARN, "redis.reresolve", ZTB_F_STR("reason", why));
}

void redis_client_shutdown(void)
{
    if (g_watcher_started) {
        atomic_store(&g_watcher_stop, 1);
        pthread_join(g_watcher, NULL);
        g_watcher_started = 0;
    }
    pthread_mutex_lock(&g_lock);
    struct rconn *c = g_all;
    g_all = NULL;
    pthread_mutex_unlock(&g_lock);
    while (c != NULL) {
        struct rconn *n = c->next;
        if (c->ctx != NULL)
            redis_link_free(c->ctx);
        redis_cluster_free(c->cl);
        free(c);
        c = n;
    }
    t_conn = NULL;
    if (g_shared.conn.ctx != NULL)
        redis_link_free(g_shared.conn.ctx);
    g_shared.conn.ctx = NULL;
    redis_target_wipe(&g_target);
}

static void drop_kind(struct rconn *c, const char *why, enum redis_error_kind kind)
{
    char where[300];
    redis_target_describe(&g_target, where, sizeof(where));
    ztb_log(ZTB_LOG_WARN, "redis.connection_lost", ZTB_F_STR("target", where),
            ZTB_F_STR("reason", why));
    if (c->ctx != NULL)
        redis_link_free(c->ctx);
    c->ctx = NULL;
    if (c->cl != NULL)
        redis_cluster_reset(c->cl); /* the map is read again, every node reconnected */
    c->backoff_ms = c->backoff_ms ? c->backoff_ms * 2 : BACKOFF_MIN_MS;
    if (c->backoff_ms > BACKOFF_MAX_MS)
        c->backoff_ms = BACKOFF_MAX_MS;
    c->failed_ms = mono_ms();
    c->retry_at_ms = c->failed_ms + c->backoff_ms;
    metrics_redis_error(kind);
    metrics_set_redis_up(0);
}

/* Drop after a transport failure (counted as connection or timeout). */
static void drop(struct rconn *c, const char *why)
{
    enum redis_error_kind k = c->cl != NULL ? c->cl->fail_kind : redis_error_kind_of(c->ctx, NULL);
    note_err(k);
    drop_kind(c, why, k);
}

/*
 * 1 if Redis has closed this idle connection. Redis sends nothing unasked on
 * a command connection, so anything readable (EOF, an error) means it is
 * gone; over TLS, records without data (session tickets) are not news.
 */
static int closed_by_peer(struct redis_link *ctx)
{
    return !redis_link_idle_ok(ctx);
}

/* This thread's slot, made on first use; NULL when out of memory. */
static struct rconn *this_rconn(void)
{
    struct rconn *c = t_conn;
    if (c == NULL) {
        c = calloc(1, sizeof(*c));
        if (c == NULL)
            return NULL;
        pthread_mutex_lock(&g_lock);
        c->next = g_all;
        g_all = c;
        pthread_mutex_unlock(&g_lock);
        t_conn = c;
    }
    return c;
}

/* What the Cluster client followed on its own (MOVED, ASK, TRYAGAIN):
 * counted, not failures. */
static void cluster_note(enum redis_error_kind k, void *arg)
{
    (void)arg;
    metrics_redis_error(k);
}

/* 1 while c waits out its backoff: before retry_at_ms, and nobody has got
 * through to Redis since c's last failure. */
static int backing_off(const struct rconn *c, uint64_t now)
{
    return now < c->retry_at_ms && atomic_load(&g_connected_ms) <= c->failed_ms;
}

/* Some connection got through to Redis just now. */
static void connected_now(void)
{
    atomic_store(&g_connected_ms, mono_ms());
}

static int is_cluster(void)
{
    return g_target.nseeds > 0;
}

int redis_client_is_cluster(void)
{
    return is_cluster();
}

/* This thread's Cluster handle (a Cluster target); NULL while backing off.
 * A new epoch (READONLY after a failover...) makes it read the slot map
 * again and reconnect every node. */
static struct redis_cluster *cluster(void)
{
    struct rconn *c = this_rconn();
    if (c == NULL)
        return NULL;
    unsigned epoch = atomic_load(&g_epoch);
    if (c->cl != NULL && c->epoch != epoch) {
        redis_cluster_reset(c->cl);
        c->retry_at_ms = 0;
        metrics_add(METRIC_REDIS_RECONNECTS, 1);
    }
    c->epoch = epoch;
    if (backing_off(c, mono_ms()))
        return NULL;
    if (c->cl == NULL)
        c->cl = redis_cluster_new(&g_target, cluster_note, NULL);
    return c->cl;
}

/* c's connection, connecting if needed; NULL while backing off. */
static struct redis_link *link_of(struct rconn *c)
{
    if (c == NULL)
        return NULL;
    uint64_t now = mono_ms();
    unsigned epoch = atomic_load(&g_epoch);
    if (c->ctx != NULL && c->epoch != epoch) {
        /* the master may have moved (+switch-master, READONLY...): find it
         * again before this thread's next command */
        redis_link_free(c->ctx);
        c->ctx = NULL;
        c->retry_at_ms = 0;
        metrics_add(METRIC_REDIS_RECONNECTS, 1);
    } else if (c->ctx == NULL && c->epoch != epoch) {
        c->retry_at_ms = 0; /* news from a sentinel ends the backoff */
    }
    if (c->ctx != NULL) {
        if (now - c->used_ms < IDLE_CHECK_MS || !closed_by_peer(c->ctx)) {
            c->used_ms = now;
            return c->ctx;
        }
        /* Redis went away while we were idle: a new connection right now
         * (not a failure, so no backoff) */
        ztb_log(ZTB_LOG_INFO, "redis.reconnect_idle");
        redis_link_free(c->ctx);
        c->ctx = NULL;
        metrics_add(METRIC_REDIS_RECONNECTS, 1);
    }
    if (backing_off(c, now))
        return NULL;
    char why[512];
    struct redis_link *ctx = NULL;
    c->epoch = epoch;
    if (redis_target_connect(&g_target, &ctx, why, sizeof(why)) != ZTB_OK) {
        note_err(REDIS_EK_CONNECTION);
        drop_kind(c, why, REDIS_EK_CONNECTION);
        return NULL;
    }
    c->ctx = ctx;
    connected_now();
    if (c->backoff_ms != 0)
        metrics_add(METRIC_REDIS_RECONNECTS, 1);
    c->backoff_ms = 0;
    c->used_ms = mono_ms();
    metrics_set_redis_up(1);
    return ctx;
}

/* This thread's connection, connecting if needed; NULL while backing off. */
static struct redis_link *conn(void)
{
    return link_of(this_rconn());
}

/*
 * Judge one reply of real traffic: count an error by kind, note it (or a
 * success) for readiness, drop the connection and bump the epoch when the
 * server cannot take writes. Returns 1 if the reply is a "service" error
 * the caller must see as UNAVAILABLE (not an answer to its command).
 */
static int judge(struct rconn *c, const redisReply *r)
{
    enum redis_error_kind k = redis_error_kind_of(c->ctx, r);
    if (k == REDIS_EK_NONE) {
        /* read first: no write to a shared line on the hot path */
        if (atomic_load_explicit(&g_last_bad, memory_order_relaxed))
            atomic_store_explicit(&g_last_bad, 0, memory_order_relaxed);
        return 0;
    }
    if (k == REDIS_EK_NOSCRIPT)
        return 0;
    note_err(k);
    if (redis_error_kind_reresolve(k)) {
        char why[80];
        snprintf(why, sizeof(why), "%s error reply", redis_error_kind_name(k));
        if (k == REDIS_EK_READONLY || k == REDIS_EK_MASTERDOWN || k == REDIS_EK_LOADING)
            redis_client_reresolve(why);
        drop_kind(c, why, k);
        return 1;
    }
    metrics_redis_error(k);
    /* anyone's request can meet it: a sampled line, the count is exact */
    static struct ztb_log_sampler sampler = ZTB_LOG_SAMPLER_INIT(10, 10);
    ztb_log_sampled(&sampler, ZTB_LOG_WARN, "redis.error_reply",
                    ZTB_F_STR("kind", redis_error_kind_name(k)));
    return k != REDIS_EK_OTHER;
}

/* The outcome of one command on c: UNAVAILABLE (and the connection
 * dropped) for no reply or a service error reply, else the reply in *out. */
static ztb_err finish_on(struct rconn *c, redisReply *r, redisReply **out)
{
    if (r == NULL) {
        if (c->cl != NULL)
            drop(c, c->cl->errstr[0] ? c->cl->errstr : "no reply");
        else
            drop(c, c->ctx && c->ctx->errstr[0] ? c->ctx->errstr : "no reply");
        return ZTB_ERR_UNAVAILABLE;
    }
    if (c->cl != NULL && c->backoff_ms != 0) {
        c->backoff_ms = 0; /* the Cluster answered again */
        connected_now();
        metrics_add(METRIC_REDIS_RECONNECTS, 1);
        metrics_set_redis_up(1);
    }
    if (judge(c, r)) {
        freeReplyObject(r);
        return ZTB_ERR_UNAVAILABLE;
    }
    *out = r;
    return ZTB_OK;
}

static ztb_err finish(redisReply *r, redisReply **out)
{
    return finish_on(t_conn, r, out);
}

ztb_err redis_command(redisReply **reply, int argc, const char **argv, const size_t *lens)
{
    *reply = NULL;
    if (is_cluster()) {
        struct redis_cluster *cl = cluster();
        if (cl == NULL)
            return ZTB_ERR_UNAVAILABLE;
        return finish(redis_cluster_command_argv(cl, argc, argv, lens), reply);
    }
    struct redis_link *ctx = conn();
    if (ctx == NULL)
        return ZTB_ERR_UNAVAILABLE;
    return finish(redis_link_command_argv(ctx, argc, argv, lens), reply);
}

ztb_err redis_pipeline(size_t n, const int *argc, const char *const *const *argv,
                       const size_t *const *lens, redisReply **replies)
{
    for (size_t i = 0; i < n; i++)
        replies[i] = NULL;
    if (is_cluster()) {
        /* one pipeline when all are for one slot (the audit stream's
         * XADDs), else one after another, each to its shard */
        struct redis_cluster *cl = cluster();
        if (cl == NULL)
            return ZTB_ERR_UNAVAILABLE;
        if (redis_cluster_pipeline_argv(cl, n, argc, argv, lens, replies) != 0) {
            drop(t_conn, cl->errstr[0] ? cl->errstr : "no reply");
            return ZTB_ERR_UNAVAILABLE;
        }
        for (size_t i = 0; i < n; i++)
            (void)judge(t_conn, replies[i]);
        return ZTB_OK;
    }
    struct redis_link *ctx = conn();
    if (ctx == NULL)
        return ZTB_ERR_UNAVAILABLE;
    /* hiredis buffers the appended commands and writes them all with the
     * first redis_link_get_reply: one write (or a few, for large batches) */
    for (size_t i = 0; i < n; i++) {
        if (redis_link_append_argv(ctx, argc[i], (const char **)argv[i], lens[i]) != REDIS_OK) {
            drop(t_conn, "cannot queue a pipelined command");
            return ZTB_ERR_UNAVAILABLE;
        }
    }
    for (size_t i = 0; i < n; i++) {
        redisReply *r = NULL;
        if (redis_link_get_reply(ctx, &r) != REDIS_OK || r == NULL) {
            for (size_t k = 0; k < i; k++) {
                freeReplyObject(replies[k]);
                replies[k] = NULL;
            }
            drop(t_conn, ctx->errstr[0] ? ctx->errstr : "no reply");
            return ZTB_ERR_UNAVAILABLE;
        }
        replies[i] = r;
    }
    /* errors are the caller's to read; they still count, and a server that
     * cannot take writes is left for the master (after all n replies) */
    for (size_t i = 0; i < n && t_conn->ctx != NULL; i++)
        (void)judge(t_conn, replies[i]);
    return ZTB_OK;
}

ztb_err redis_commandf(redisReply **reply, const char *fmt, ...)
{
    *reply = NULL;
    if (is_cluster()) {
        struct redis_cluster *cl = cluster();
        if (cl == NULL)
            return ZTB_ERR_UNAVAILABLE;
        va_list ap;
        va_start(ap, fmt);
        redisReply *r = redis_cluster_vcommandf(cl, fmt, ap);
        va_end(ap);
        return finish(r, reply);
    }
    struct redis_link *ctx = conn();
    if (ctx == NULL)
        return ZTB_ERR_UNAVAILABLE;
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redis_link_vcommandf(ctx, fmt, ap);
    va_end(ap);
    return finish(r, reply);
}

/* The shared pipeline ----------------------------------------------------------
 *
 * Group commit: a command sent with redis_command_shared joins a queue. A
 * thread that finds no batch in flight leads: it takes everything queued
 * (its own command among it), writes it as one pipeline on the one shared
 * connection, reads the replies, hands each to its thread and wakes it,
 * and passes the lead to the oldest command that queued meanwhile. So
 * under load Redis reads, runs and answers several requests' commands per
 * wake-up (one read, one write, one AOF write for the batch), and when
 * requests come one at a time each goes out at once, alone, as before.
 * A command waits for at most the batch in flight and its own.
 *
 * The shared connection follows the same rules as a thread's (epoch,
 * backoff, idle check, error judging): only the leading thread touches it.
 * A transport failure fails every command of the batch (UNAVAILABLE: no
 * command is resent, the callers' clients retry). Not used on a Cluster,
 * where a thread's commands are routed per shard.
 */
/* Write batch[0..n) on the shared connection and read its replies into
 * each command (its err UNAVAILABLE and reply NULL on failure). Called by
 * the leader only, without the lock. */
static void shared_run(struct shared_cmd **batch, size_t n)
{
    struct rconn *c = &g_shared.conn;
    struct redis_link *ctx = link_of(c);
    size_t got = 0;
    if (ctx != NULL) {
        size_t queued = 0;
        while (queued < n && redis_link_append_argv(ctx, batch[queued]->argc, batch[queued]->argv,
                                                    batch[queued]->lens) == REDIS_OK)
            queued++;
        /* the first read writes them all (one write for the batch) */
        while (queued == n && got < n) {
            redisReply *r = NULL;
            if (redis_link_get_reply(ctx, &r) != REDIS_OK || r == NULL)
                break;
            batch[got++]->reply = r;
        }
        if (got < n)
            drop(c, ctx->errstr[0] ? ctx->errstr : "no reply");
    }
    for (size_t i = 0; i < n; i++) {
        if (i >= got) {
            batch[i]->err = ZTB_ERR_UNAVAILABLE;
            continue;
        }
        batch[i]->err = ZTB_OK;
    }
    /* judged after all replies are read: a reply that drops the
     * connection (READONLY...) must not cut the batch's other replies */
    for (size_t i = 0; i < got; i++) {
        int bad;
        if (c->ctx != NULL) {
            bad = judge(c, batch[i]->reply);
        } else {
            /* an earlier reply of this batch dropped the connection:
             * counted, not dropped again */
            enum redis_error_kind k = redis_error_kind_of(NULL, batch[i]->reply);
            bad = k != REDIS_EK_NONE && k != REDIS_EK_NOSCRIPT && k != REDIS_EK_OTHER;
            if (bad) {
                note_err(k);
                metrics_redis_error(k);
            }
        }
        if (bad) {
            freeReplyObject(batch[i]->reply);
            batch[i]->reply = NULL;
            batch[i]->err = ZTB_ERR_UNAVAILABLE;
        }
    }
}

ztb_err redis_command_shared(redisReply **reply, int argc, const char **argv, const size_t *lens)
{
    *reply = NULL;
    if (is_cluster())
        return redis_command(reply, argc, argv, lens);
    struct shared_cmd me = {.argc = argc, .argv = argv, .lens = lens, .state = SQ_QUEUED};
    pthread_cond_init(&me.cv, NULL);
    pthread_mutex_lock(&g_shared.mu);
    if (g_shared.tail != NULL)
        g_shared.tail->next = &me;
    else
        g_shared.head = &me;
    g_shared.tail = &me;
    if (g_shared.leading) {
        while (me.state == SQ_QUEUED)
            pthread_cond_wait(&me.cv, &g_shared.mu);
    } else {
        g_shared.leading = 1;
        me.state = SQ_LEAD;
    }
    while (me.state == SQ_LEAD) {
        struct shared_cmd *batch[SHARED_BATCH_MAX];
        size_t n = 0;
        while (g_shared.head != NULL && n < SHARED_BATCH_MAX) {
            batch[n++] = g_shared.head;
            g_shared.head = g_shared.head->next;
        }
        if (g_shared.head == NULL)
            g_shared.tail = NULL;
        pthread_mutex_unlock(&g_shared.mu);
        shared_run(batch, n);
        pthread_mutex_lock(&g_shared.mu);
        for (size_t i = 0; i < n; i++) {
            batch[i]->state = SQ_DONE;
            if (batch[i] != &me)
                pthread_cond_signal(&batch[i]->cv);
        }
        metrics_add(METRIC_REDIS_BATCHES, 1);
        metrics_add(METRIC_REDIS_BATCHED, n);
        if (me.state == SQ_LEAD)
            continue; /* more than a batch was queued before us */
        if (g_shared.head != NULL) {
            g_shared.head->state = SQ_LEAD; /* the lead passes on */
            pthread_cond_signal(&g_shared.head->cv);
        } else {
            g_shared.leading = 0;
        }
    }
    pthread_mutex_unlock(&g_shared.mu);
    pthread_cond_destroy(&me.cv);
    if (me.err != ZTB_OK)
        return me.err;
    *reply = me.reply;
    return ZTB_OK;
}

void redis_script_sha(const char *script, char out[41])
{
    unsigned char d[SHA_DIGEST_LENGTH];
    SHA1((const unsigned char *)script, strlen(script), d);
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < SHA_DIGEST_LENGTH; i++) {
        out[2 * i] = hex[d[i] >> 4];
        out[2 * i + 1] = hex[d[i] & 15];
    }
    out[40] = '\0';
}

#define EVAL_MAX_ARGS 32

typedef ztb_err (*command_fn)(redisReply **, int, const char **, const size_t *);

static ztb_err eval_with(command_fn send, redisReply **reply, const char *script, const char *sha,
                         int nkeys, int nargs, const char **argv, const size_t *lens)
{
    *reply = NULL;
    ZTB_ENSURE(nkeys >= 0 && nargs >= nkeys && nargs <= EVAL_MAX_ARGS, ZTB_ERR_INVALID_ARG);
    const char *a[EVAL_MAX_ARGS + 3];
    size_t l[EVAL_MAX_ARGS + 3];
    char nk[12];
    snprintf(nk, sizeof(nk), "%d", nkeys);
    a[0] = "EVALSHA";
    l[0] = 7;
    a[1] = sha;
    l[1] = 40;
    a[2] = nk;
    l[2] = strlen(nk);
    for (int i = 0; i < nargs; i++) {
        a[3 + i] = argv[i];
        l[3 + i] = lens ? lens[i] : strlen(argv[i]);
    }
    redisReply *r;
    ZTB_GUARD(send(&r, nargs + 3, a, l));
    if (r->type == REDIS_REPLY_ERROR && strncmp(r->str, "NOSCRIPT", 8) == 0) {
        freeReplyObject(r);
        a[0] = "EVAL";
        l[0] = 4;
        a[1] = script;
        l[1] = strlen(script);
        ZTB_GUARD(send(&r, nargs + 3, a, l));
    }
    *reply = r;
    return ZTB_OK;
}

ztb_err redis_eval(redisReply **reply, const char *script, const char *sha, int nkeys, int nargs,
                   const char **argv, const size_t *lens)
{
    return eval_with(redis_command, reply, script, sha, nkeys, nargs, argv, lens);
}

ztb_err redis_eval_shared(redisReply **reply, const char *script, const char *sha, int nkeys,
                          int nargs, const char **argv, const size_t *lens)
{
    return eval_with(redis_command_shared, reply, script, sha, nkeys, nargs, argv, lens);
}

ztb_err redis_ping(void)
{
    redisReply *r;
    ZTB_GUARD(redis_commandf(&r, "PING"));
    int ok = r->type == REDIS_REPLY_STATUS && strcasecmp(r->str, "PONG") == 0;
    freeReplyObject(r);
    return ok ? ZTB_OK : ZTB_ERR_UNAVAILABLE;
}

/* The readiness probe: a script that declares itself a write (a shebang
 * without no-writes, Redis 7) is refused exactly when issuance would be:
 * READONLY on a replica, NOREPLICAS below min-replicas-to-write, OOM at
 * maxmemory, LOADING, NOAUTH. It writes nothing. */
static const char probe_lua[] = "#!lua\nreturn 1\n";
#define READY_WINDOW_MS 2000

static ztb_err probe(char *why, size_t cap);

ztb_err redis_ready(char *why, size_t cap)
{
    snprintf(why, cap, "unavailable");
    t_probing = 1;
    ztb_err rv = probe(why, cap);
    t_probing = 0;
    if (rv != ZTB_OK)
        return rv;
    metrics_set_redis_up(1);
    /* real traffic whose latest outcome is a recent error: still failing */
    if (atomic_load(&g_last_bad) && mono_ms() - atomic_load(&g_last_err_ms) < READY_WINDOW_MS) {
        snprintf(why, cap, "%s", redis_error_kind_name(atomic_load(&g_last_err_kind)));
        return ZTB_ERR_UNAVAILABLE;
    }
    return ZTB_OK;
}

ztb_err redis_command_masters(int argc, const char **argv, redisReply **replies, size_t cap,
                              size_t *n)
{
    *n = 0;
    if (cap == 0 || argc < 1)
        return ZTB_ERR_INVALID_ARG;
    if (!is_cluster()) {
        ZTB_GUARD(redis_command(&replies[0], argc, argv, NULL));
        *n = 1;
        return ZTB_OK;
    }
    struct redis_cluster *cl = cluster();
    if (cl == NULL)
        return ZTB_ERR_UNAVAILABLE;
    int m[REDIS_CLUSTER_MAX_NODES];
    size_t nm = redis_cluster_masters(cl, m, REDIS_CLUSTER_MAX_NODES);
    if (nm == 0) {
        drop(t_conn, cl->errstr[0] ? cl->errstr : "no slot map");
        return ZTB_ERR_UNAVAILABLE;
    }
    for (size_t i = 0; i < nm && i < cap; i++) {
        struct redis_link *l = redis_cluster_link_of(cl, m[i]);
        redisReply *r = l != NULL ? redis_link_command_argv(l, argc, argv, NULL) : NULL;
        if (r == NULL) {
            drop(t_conn, l == NULL ? cl->errstr : l->errstr[0] ? l->errstr : "no reply");
            for (size_t k = 0; k < *n; k++)
                freeReplyObject(replies[k]);
            *n = 0;
            return ZTB_ERR_UNAVAILABLE;
        }
        replies[(*n)++] = r;
    }
    return ZTB_OK;
}

static ztb_err probe_link(struct redis_link *ctx, char *why, size_t cap);

/* The probe itself (see redis_ready); on a Cluster, of every master. */
static ztb_err probe(char *why, size_t cap)
{
    if (is_cluster()) {
        struct redis_cluster *cl = cluster();
        if (cl == NULL)
            return ZTB_ERR_UNAVAILABLE;
        int m[REDIS_CLUSTER_MAX_NODES];
        size_t n = redis_cluster_masters(cl, m, REDIS_CLUSTER_MAX_NODES);
        if (n == 0) {
            drop(t_conn, cl->errstr[0] ? cl->errstr : "no slot map");
            return ZTB_ERR_UNAVAILABLE;
        }
        for (size_t i = 0; i < n; i++) {
            struct redis_link *l = redis_cluster_link_of(cl, m[i]);
            if (l == NULL) {
                drop(t_conn, cl->errstr);
                return ZTB_ERR_UNAVAILABLE;
            }
            ZTB_GUARD(probe_link(l, why, cap));
        }
        return ZTB_OK;
    }
    struct redis_link *ctx = conn();
    if (ctx == NULL)
        return ZTB_ERR_UNAVAILABLE;
    return probe_link(ctx, why, cap);
}

/* The probe on one connection. */
static ztb_err probe_link(struct redis_link *ctx, char *why, size_t cap)
{
    redisReply *r = redis_link_commandf(ctx, "EVAL %s 0", probe_lua);
    if (r == NULL) {
        drop(t_conn, ctx->errstr[0] ? ctx->errstr : "no reply");
        return ZTB_ERR_UNAVAILABLE;
    }
    enum redis_error_kind k = redis_error_kind_of(ctx, r);
    if (k == REDIS_EK_OTHER) {
        /* a Redis before 7.0 does not know the shebang: PING semantics */
        freeReplyObject(r);
        r = redis_link_commandf(ctx, "PING");
        if (r == NULL) {
            drop(t_conn, ctx->errstr[0] ? ctx->errstr : "no reply");
            return ZTB_ERR_UNAVAILABLE;
        }
        k = redis_error_kind_of(ctx, r);
    }
    freeReplyObject(r);
    if (k != REDIS_EK_NONE) {
        snprintf(why, cap, "%s", redis_error_kind_name(k));
        if (redis_error_kind_reresolve(k)) {
            if (k == REDIS_EK_READONLY || k == REDIS_EK_MASTERDOWN || k == REDIS_EK_LOADING)
                redis_client_reresolve("readiness probe");
            drop_kind(t_conn, why, k); /* counts it */
        } else {
            metrics_redis_error(k);
        }
        return ZTB_ERR_UNAVAILABLE;
    }
    return ZTB_OK;
}

/*
 * How many replicas of the master behind ctx (the one that took the write)
 * a WAIT_PER_SHARD wait asks for: 1 if the slot map lists a replica for it
 * (a replica that is down but not yet failed counts: WAIT then fails, and
 * the write is not acknowledged), or if ROLE says one is connected (one
 * added since the map was read); else 0, a master without replicas.
 * -1 if ROLE got no reply (the caller fails closed).
 */
static int shard_replicas(struct redis_cluster *cl, struct redis_link *ctx)
{
    if (redis_cluster_last_replicas(cl) > 0)
        return 1;
    redisReply *r = redis_link_commandf(ctx, "ROLE");
    if (r == NULL)
        return -1;
    /* "master", offset, [[host, port, offset]...] */
    int n = r->type == REDIS_REPLY_ARRAY && r->elements >= 3 &&
                    r->element[2]->type == REDIS_REPLY_ARRAY && r->element[2]->elements > 0
                ? 1
                : 0;
    freeReplyObject(r);
    return n;
}

ztb_err redis_wait_replicas(void)
{
    int n = atomic_load(&g_wait_replicas);
    if (n == 0)
        return ZTB_OK;
    struct rconn *c = t_conn;
    /* on the connection that wrote (a Cluster: to the master it went to,
     * after any MOVED or ASK) */
    struct redis_link *ctx = c == NULL       ? NULL
                             : c->cl != NULL ? redis_cluster_last_link(c->cl)
                                             : c->ctx;
    if (ctx == NULL)
        return ZTB_ERR_UNAVAILABLE; /* the write was on a connection now gone */
    if (n == WAIT_PER_SHARD) {
        n = c->cl != NULL ? shard_replicas(c->cl, ctx) : 0;
        if (n < 0) {
            drop(c, ctx->errstr[0] ? ctx->errstr : "no reply");
            return ZTB_ERR_UNAVAILABLE;
        }
        if (n == 0)
            return ZTB_OK; /* a master without replicas: the write is all there is */
    }
    unsigned tmo = atomic_load(&g_wait_timeout_ms);
    /* WAIT blocks up to tmo: the command timeout must outlast it */
    (void)redis_link_set_timeout(ctx, tmo + g_target.timeout_ms);
    redisReply *r = redis_link_commandf(ctx, "WAIT %d %u", n, tmo);
    if (r == NULL) {
        drop(c, ctx->errstr[0] ? ctx->errstr : "no reply");
        return ZTB_ERR_UNAVAILABLE;
    }
    (void)redis_link_set_timeout(ctx, g_target.timeout_ms);
    int ok = r->type == REDIS_REPLY_INTEGER && r->integer >= n;
    if (!ok) {
        ztb_log(ZTB_LOG_ERROR, "redis.wait_short", ZTB_F_INT("want", n),
                ZTB_F_INT("got", r->type == REDIS_REPLY_INTEGER ? r->integer : -1),
                ZTB_F_INT("timeout_ms", tmo));
        if (r->type != REDIS_REPLY_INTEGER)
            (void)judge(c, r);
        else
            metrics_redis_error(REDIS_EK_NOREPLICAS);
    }
    freeReplyObject(r);
    return ok ? ZTB_OK : ZTB_ERR_UNAVAILABLE;
}

/* The sentinel watcher -------------------------------------------------------*/

/* 1 if r is a "message" on +switch-master for our master. */
static int is_switch(const redisReply *r)
{
    if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 3)
        return 0;
    const redisReply *kind = r->element[0], *ch = r->element[1], *msg = r->element[2];
    size_t ml = strlen(g_target.master_name);
    return kind->type == REDIS_REPLY_STRING && strcmp(kind->str, "message") == 0 &&
           ch->type == REDIS_REPLY_STRING && strcmp(ch->str, "+switch-master") == 0 &&
           msg->type == REDIS_REPLY_STRING && msg->len > ml &&
           strncmp(msg->str, g_target.master_name, ml) == 0 && msg->str[ml] == ' ';
}

/* Listen on one sentinel until it fails or we stop; returns 1 if a
 * subscription was made. */
static int watch_one(size_t i)
{
    struct redis_link *s = NULL;
    char why[512];
    if (redis_target_connect_sentinel(&g_target, i, &s, why, sizeof(why)) != ZTB_OK) {
        ztb_log(ZTB_LOG_WARN, "redis.sentinel_unreachable", ZTB_F_STR("reason", why));
        return 0;
    }
    redisReply *r = redis_link_commandf(s, "SUBSCRIBE +switch-master");
    int ok = r != NULL && r->type == REDIS_REPLY_ARRAY;
    if (r != NULL)
        freeReplyObject(r);
    if (!ok) {
        redis_link_free(s);
        return 0;
    }
    ztb_log(ZTB_LOG_INFO, "redis.sentinel_watching",
            ZTB_F_STR("sentinel", g_target.sentinels[i].host),
            ZTB_F_INT("port", g_target.sentinels[i].port));
    while (!atomic_load(&g_watcher_stop)) {
        struct pollfd p = {.fd = s->fd, .events = POLLIN};
        int pr = poll(&p, 1, 200);
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr < 0)
            break;
        if (pr == 0)
            continue;
        if (redis_link_read(s) != REDIS_OK)
            break;
        redisReply *m = NULL;
        while (redis_link_next_reply(s, &m) == REDIS_OK && m != NULL) {
            if (is_switch(m)) {
                ztb_log(ZTB_LOG_WARN, "redis.switch_master",
                        ZTB_F_STR("detail", m->element[2]->str));
                redis_client_reresolve("+switch-master");
            }
            freeReplyObject(m);
            m = NULL;
        }
        if (s->err)
            break;
    }
    redis_link_free(s);
    return 1;
}

static void *watch_sentinels(void *arg)
{
    (void)arg;
    size_t i = 0;
    int lost = 0;
    while (!atomic_load(&g_watcher_stop)) {
        if (watch_one(i)) {
            /* a switch may have been missed while not subscribed */
            if (lost)
                redis_client_reresolve("sentinel subscription renewed");
            lost = 1;
        }
        i = (i + 1) % g_target.nsentinels;
        for (int w = 0; w < 5 && !atomic_load(&g_watcher_stop); w++)
            usleep(20000);
    }
    return NULL;
}
