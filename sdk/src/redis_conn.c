/*
 * redis_conn.c - the caller-thread pool of Redis connections (see
 * redis_conn.h).
 *
 * A pooled connection that sat idle may have been closed by Redis (restart,
 * timeout): before reuse it is polled without waiting, and one that shows
 * EOF or unexpected data is dropped, so a Redis restart does not turn into
 * one failed command per pooled connection. A connection whose server says
 * it cannot take writes now (READONLY after a failover, MASTERDOWN,
 * LOADING, NOAUTH) is not pooled again either: the next command connects
 * afresh, which with a Sentinel URL finds the current master through the
 * sentinels and checks ROLE (common/redis_target.c). Commands are never retried: a
 * transport failure after the command was written leaves it unknown whether
 * Redis ran it, and the callers consume one-time things.
 */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/guard.h"
#include "common/secret.h"
#include "sdk/src/clock.h"
#include "sdk/src/redis_conn.h"
#include "sdk/src/sigpipe.h"

#define BACKOFF_MIN_MS 25
#define BACKOFF_MAX_MS 1000

ztb_err rconn_pool_init(struct rconn_pool *p, const struct redis_target *t)
{
    memset(p, 0, sizeof(*p));
    ZTB_ENSURE(pthread_mutex_init(&p->mu, NULL) == 0, ZTB_ERR_NOMEM);
    p->t = *t;
    return ZTB_OK;
}

void rconn_pool_destroy(struct rconn_pool *p)
{
    for (size_t i = 0; i < p->nidle; i++)
        redis_link_free(p->idle[i]);
    p->nidle = 0;
    for (size_t i = 0; i < p->ncidle; i++)
        redis_cluster_free(p->cidle[i]);
    p->ncidle = 0;
    redis_target_wipe(&p->t);
    pthread_mutex_destroy(&p->mu);
}

/* 1 if an idle connection still looks usable: nothing to read, no hangup
 * (over TLS, records without data are not news). */
static int idle_usable(struct redis_link *c)
{
    return redis_link_idle_ok(c);
}

/* A connection: an idle one that still looks alive, or a new one. */
static ztb_err take(struct rconn_pool *p, struct redis_link **out)
{
    *out = NULL;
    pthread_mutex_lock(&p->mu);
    while (p->nidle > 0 && *out == NULL) {
        struct redis_link *c = p->idle[--p->nidle];
        if (idle_usable(c))
            *out = c;
        else
            redis_link_free(c);
    }
    int refuse = *out == NULL && clock_mono_ms() < p->down_until_ms;
    pthread_mutex_unlock(&p->mu);
    if (*out != NULL)
        return ZTB_OK;
    ZTB_ENSURE(!refuse, ZTB_ERR_UNAVAILABLE);
    ztb_err rv = redis_target_connect(&p->t, out, NULL, 0);
    pthread_mutex_lock(&p->mu);
    if (rv == ZTB_OK) {
        p->backoff_ms = 0;
    } else {
        p->backoff_ms = p->backoff_ms ? p->backoff_ms * 2 : BACKOFF_MIN_MS;
        if (p->backoff_ms > BACKOFF_MAX_MS)
            p->backoff_ms = BACKOFF_MAX_MS;
        p->down_until_ms = clock_mono_ms() + p->backoff_ms;
    }
    pthread_mutex_unlock(&p->mu);
    return rv;
}

static void give_back(struct rconn_pool *p, struct redis_link *c)
{
    pthread_mutex_lock(&p->mu);
    if (p->nidle < RCONN_POOL_MAX) {
        p->idle[p->nidle++] = c;
        c = NULL;
    }
    pthread_mutex_unlock(&p->mu);
    if (c != NULL)
        redis_link_free(c);
}

/*
 * A Cluster target: a pooled routed handle runs the command on the master
 * of its key's slot (MOVED, ASK and TRYAGAIN followed there). A handle
 * whose command failed, or met a failover, reads the map again next time.
 */
static ztb_err cluster_command(struct rconn_pool *p, redisReply **reply, int argc,
                               const char **argv, const size_t *lens)
{
    struct redis_cluster *cl = NULL;
    pthread_mutex_lock(&p->mu);
    if (p->ncidle > 0)
        cl = p->cidle[--p->ncidle];
    int refuse = cl == NULL && clock_mono_ms() < p->down_until_ms;
    pthread_mutex_unlock(&p->mu);
    ZTB_ENSURE(!refuse, ZTB_ERR_UNAVAILABLE);
    if (cl == NULL && (cl = redis_cluster_new(&p->t, NULL, NULL)) == NULL)
        return ZTB_ERR_NOMEM;
    *reply = redis_cluster_command_argv(cl, argc, argv, lens);
    ztb_err rv = ZTB_OK;
    if (*reply == NULL) {
        redis_cluster_reset(cl);
        rv = ZTB_ERR_UNAVAILABLE;
    } else if (redis_error_kind_reresolve(redis_error_kind_of(NULL, *reply))) {
        redis_cluster_reset(cl);
    }
    pthread_mutex_lock(&p->mu);
    if (rv != ZTB_OK) {
        p->backoff_ms = p->backoff_ms ? p->backoff_ms * 2 : BACKOFF_MIN_MS;
        if (p->backoff_ms > BACKOFF_MAX_MS)
            p->backoff_ms = BACKOFF_MAX_MS;
        p->down_until_ms = clock_mono_ms() + p->backoff_ms;
    } else {
        p->backoff_ms = 0;
    }
    if (p->ncidle < RCONN_POOL_MAX) {
        p->cidle[p->ncidle++] = cl;
        cl = NULL;
    }
    pthread_mutex_unlock(&p->mu);
    redis_cluster_free(cl);
    return rv;
}

ztb_err rconn_pool_command(struct rconn_pool *p, redisReply **reply, int argc, const char **argv,
                           const size_t *lens)
{
    *reply = NULL;
    struct sigpipe_guard g;
    sigpipe_enter(&g);
    if (p->t.nseeds > 0) {
        ztb_err crv = cluster_command(p, reply, argc, argv, lens);
        sigpipe_leave(&g);
        return crv;
    }
    struct redis_link *c = NULL;
    ztb_err rv = take(p, &c);
    if (rv == ZTB_OK) {
        *reply = redis_link_command_argv(c, argc, argv, lens);
        if (*reply == NULL) {
            redis_link_free(c); /* in an unknown state after a transport error */
            rv = ZTB_ERR_UNAVAILABLE;
        } else if (redis_error_kind_reresolve(redis_error_kind_of(c, *reply))) {
            /* the wrong server now (a failover): find the master next time */
            redis_link_free(c);
        } else {
            give_back(p, c);
        }
    }
    sigpipe_leave(&g);
    return rv;
}
