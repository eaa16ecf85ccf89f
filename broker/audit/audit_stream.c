/*
 * audit_stream.c - the audit log's copy in the Redis stream (see
 * audit_stream.h).
 *
 * A ring of owned strings under one mutex. Pushing must not make the
 * request path wait: the sender is woken only when it sleeps on an empty
 * queue or a batch is full; otherwise it lets lines gather for a few
 * milliseconds and sends them as one pipeline (one round trip per batch,
 * not per line). The sending itself happens without the mutex.
 */
#define _GNU_SOURCE /* pthread_cond_clockwait */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <hiredis/hiredis.h>

#include "broker/audit/audit_stream.h"
#include "broker/store/redis_client.h"

#define STREAM_QUEUE  4096
#define STREAM_BATCH  256
#define STREAM_LINGER 5 /* ms the thread lets a batch gather while lines come in */
#define STREAM_MAXLEN "1000000"

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_cond = PTHREAD_COND_INITIALIZER;
static _Atomic int g_running; /* between start and stop; readable without the lock */
static int g_stop;
static int g_waiting; /* the thread sleeps on an empty queue */
static pthread_t g_thread;
static _Atomic uint64_t g_dropped;
static char g_replica[AUDIT_STREAM_REPLICA_MAX + 1]; /* set before start */
/* The stream: ztb:audit, or on a Redis Cluster one per replica,
 * ztb:audit:{REPLICA}, so the XADDs of several brokers spread over the
 * shards instead of all landing on the one that holds ztb:audit. */
static char g_stream[AUDIT_STREAM_REPLICA_MAX + 16] = "ztb:audit";

/* the queue: lines waiting for XADD (owned strings) */
static char *g_q[STREAM_QUEUE];
static size_t g_qhead, g_qlen;

void audit_stream_set_replica(const char *id)
{
    snprintf(g_replica, sizeof(g_replica), "%s", id ? id : "");
}

int audit_stream_running(void)
{
    return atomic_load(&g_running);
}

uint64_t audit_stream_dropped(void)
{
    return atomic_load(&g_dropped);
}

void audit_stream_push(char *copy, size_t cap, const char *line, size_t n)
{
    if (!atomic_load(&g_running)) {
        free(copy);
        return;
    }
    if (copy == NULL || n >= cap) {
        free(copy);
        atomic_fetch_add(&g_dropped, 1);
        return;
    }
    memcpy(copy, line, n);
    copy[n] = '\0';
    pthread_mutex_lock(&g_lock);
    if (g_qlen == STREAM_QUEUE || g_stop) {
        pthread_mutex_unlock(&g_lock);
        free(copy);
        atomic_fetch_add(&g_dropped, 1);
        return;
    }
    g_q[(g_qhead + g_qlen) % STREAM_QUEUE] = copy;
    g_qlen++;
    /* one wake-up per burst, not per line: a futex call per token costs more
     * than the line itself */
    if (g_waiting || g_qlen == STREAM_BATCH) {
        g_waiting = 0;
        pthread_cond_signal(&g_cond);
    }
    pthread_mutex_unlock(&g_lock);
}

/* Send n lines as one pipeline of XADDs. */
static void send_batch(char **lines, size_t n)
{
    if (n == 0)
        return;
    const char *const fixed[] = {"XADD", g_stream, "MAXLEN", "~",       STREAM_MAXLEN,
                                 "*",    "line",   NULL,     "replica", g_replica};
    enum { NARG = 10, LINE_ARG = 7 };
    const char *args[STREAM_BATCH][NARG];
    const char *const *argv[STREAM_BATCH];
    const size_t *lens[STREAM_BATCH];
    int argc[STREAM_BATCH];
    redisReply *replies[STREAM_BATCH];
    for (size_t i = 0; i < n; i++) {
        memcpy(args[i], fixed, sizeof(fixed));
        args[i][LINE_ARG] = lines[i];
        argv[i] = args[i];
        lens[i] = NULL;
        argc[i] = NARG;
    }
    if (redis_pipeline(n, argc, argv, lens, replies) != ZTB_OK) {
        atomic_fetch_add(&g_dropped, n);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        if (replies[i]->type == REDIS_REPLY_ERROR)
            atomic_fetch_add(&g_dropped, 1);
        freeReplyObject(replies[i]);
    }
}

/* Wait on g_cond (g_lock held) for at most STREAM_LINGER ms on the
 * monotonic clock (a wall clock step neither stalls nor spins it). */
static void linger(void)
{
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_nsec += STREAM_LINGER * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_cond_clockwait(&g_cond, &g_lock, CLOCK_MONOTONIC, &until);
}

static void *sender(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&g_lock);
    for (;;) {
        if (!g_stop && g_qlen == 0) {
            g_waiting = 1; /* idle until a line comes */
            while (!g_stop && g_qlen == 0)
                pthread_cond_wait(&g_cond, &g_lock);
            g_waiting = 0;
        } else if (!g_stop && g_qlen < STREAM_BATCH) {
            linger(); /* lines are coming in: let a batch gather (a full one wakes us) */
        }
        char *batch[STREAM_BATCH];
        size_t n = 0;
        while (g_qlen > 0 && n < STREAM_BATCH) {
            batch[n++] = g_q[g_qhead];
            g_qhead = (g_qhead + 1) % STREAM_QUEUE;
            g_qlen--;
        }
        int done = g_stop && g_qlen == 0 && n == 0;
        pthread_mutex_unlock(&g_lock);
        send_batch(batch, n);
        for (size_t i = 0; i < n; i++)
            free(batch[i]);
        if (done)
            return NULL;
        pthread_mutex_lock(&g_lock);
    }
}

ztb_err audit_stream_start(void)
{
    if (atomic_load(&g_running))
        return ZTB_ERR_STATE;
    if (redis_client_is_cluster() && g_replica[0] != '\0')
        snprintf(g_stream, sizeof(g_stream), "ztb:audit:{%s}", g_replica);
    else
        snprintf(g_stream, sizeof(g_stream), "ztb:audit");
    pthread_mutex_lock(&g_lock);
    g_stop = 0;
    g_waiting = 0;
    pthread_mutex_unlock(&g_lock);
    if (pthread_create(&g_thread, NULL, sender, NULL) != 0)
        return ZTB_ERR_INTERNAL;
    atomic_store(&g_running, 1);
    return ZTB_OK;
}

void audit_stream_stop(void)
{
    if (!atomic_load(&g_running))
        return;
    pthread_mutex_lock(&g_lock);
    g_stop = 1; /* pushes from now on are dropped; the thread sends the rest */
    pthread_cond_broadcast(&g_cond);
    pthread_mutex_unlock(&g_lock);
    pthread_join(g_thread, NULL);
    atomic_store(&g_running, 0);
    pthread_mutex_lock(&g_lock);
    while (g_qlen > 0) { /* none: the thread leaves only with an empty queue */
        free(g_q[g_qhead]);
        g_qhead = (g_qhead + 1) % STREAM_QUEUE;
        g_qlen--;
    }
    pthread_mutex_unlock(&g_lock);
}
