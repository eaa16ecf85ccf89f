/*
 * redis_conn.c - Redis URLs, connections and the caller-thread pool (see
 * redis_conn.h).
 *
 * A pooled connection that sat idle may have been closed by Redis (restart,
 * timeout): before reuse it is polled without waiting, and one that shows
 * EOF or unexpected data is dropped, so a Redis restart does not turn into
 * one failed command per pooled connection. Commands are never retried: a
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

static int parse_int(const char *s, size_t n, int lo, int hi, int *out)
{
    if (n == 0 || n > 9)
        return -1;
    int v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    if (v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

static ztb_err bad(struct rconn_target *t, char *err, size_t cap, const char *msg)
{
    rconn_target_wipe(t);
    if (err != NULL && cap > 0)
        snprintf(err, cap, "redis: %s", msg);
    return ZTB_ERR_INVALID_ARG;
}

ztb_err rconn_parse_url(const char *url, unsigned timeout_ms, struct rconn_target *t, char *err,
                        size_t errcap)
{
    ZTB_ENSURE(t != NULL, ZTB_ERR_INVALID_ARG);
    memset(t, 0, sizeof(*t));
    t->port = 6379;
    t->timeout_ms = timeout_ms ? timeout_ms : 1000;
    if (url == NULL)
        return bad(t, err, errcap, "no URL");
    if (strncmp(url, "unix://", 7) == 0) {
        const char *p = url + 7;
        const char *q = strchr(p, '?');
        size_t pl = q ? (size_t)(q - p) : strlen(p);
        if (pl == 0 || p[0] != '/' || pl >= sizeof(t->path))
            return bad(t, err, errcap, "unix:// needs an absolute socket path under 108 bytes");
        memcpy(t->path, p, pl);
        if (q != NULL &&
            (strncmp(q, "?db=", 4) != 0 || parse_int(q + 4, strlen(q + 4), 0, 15, &t->db) != 0))
            return bad(t, err, errcap, "unix:// accepts only ?db=N (0-15)");
        return ZTB_OK;
    }
    if (strncmp(url, "redis://", 8) != 0)
        return bad(t, err, errcap, "expected redis://HOST[:PORT][/DB] or unix:///PATH");
    const char *p = url + 8;
    const char *at = strrchr(p, '@');
    if (at != NULL) {
        const char *pw = p;
        size_t pwl = (size_t)(at - p);
        if (pwl > 0 && pw[0] == ':') {
            pw++;
            pwl--;
        }
        if (pwl == 0 || pwl >= sizeof(t->password))
            return bad(t, err, errcap, "password missing or too long");
        memcpy(t->password, pw, pwl);
        p = at + 1;
    }
    const char *slash = strchr(p, '/');
    size_t hpl = slash ? (size_t)(slash - p) : strlen(p);
    const char *colon = memchr(p, ':', hpl);
    size_t hl = colon ? (size_t)(colon - p) : hpl;
    if (hl == 0 || hl >= sizeof(t->host))
        return bad(t, err, errcap, "missing or overlong host");
    memcpy(t->host, p, hl);
    if (colon != NULL && parse_int(colon + 1, hpl - hl - 1, 1, 65535, &t->port) != 0)
        return bad(t, err, errcap, "bad port");
    if (slash != NULL && slash[1] != '\0' &&
        parse_int(slash + 1, strlen(slash + 1), 0, 15, &t->db) != 0)
        return bad(t, err, errcap, "bad database number (0-15)");
    return ZTB_OK;
}

void rconn_target_wipe(struct rconn_target *t)
{
    ztb_wipe(t->password, sizeof(t->password));
}

void rconn_describe(const struct rconn_target *t, char *out, size_t cap)
{
    if (t->path[0] != '\0')
        snprintf(out, cap, "unix:%s", t->path);
    else
        snprintf(out, cap, "%s:%d", t->host, t->port);
}

/* A status or integer reply that says yes. */
static int reply_ok(const redisReply *r)
{
    return r != NULL && r->type == REDIS_REPLY_STATUS;
}

ztb_err rconn_connect(const struct rconn_target *t, redisContext **out)
{
    struct timeval tv = {.tv_sec = t->timeout_ms / 1000,
                         .tv_usec = (long)(t->timeout_ms % 1000) * 1000};
    redisContext *c = t->path[0] != '\0' ? redisConnectUnixWithTimeout(t->path, tv)
                                         : redisConnectWithTimeout(t->host, t->port, tv);
    ztb_err rv = ZTB_OK;
    redisReply *r = NULL;
    ZTB_CHECK(rv, c != NULL, ZTB_ERR_NOMEM);
    ZTB_CHECK(rv, c->err == 0, ZTB_ERR_UNAVAILABLE);
    ZTB_CHECK(rv, redisSetTimeout(c, tv) == REDIS_OK, ZTB_ERR_UNAVAILABLE);
    if (t->password[0] != '\0') {
        const char *argv[2] = {"AUTH", t->password};
        size_t lens[2] = {4, strlen(t->password)};
        r = redisCommandArgv(c, 2, argv, lens);
        ZTB_CHECK(rv, reply_ok(r), ZTB_ERR_UNAVAILABLE);
        freeReplyObject(r);
        r = NULL;
    }
    if (t->db != 0) {
        r = redisCommand(c, "SELECT %d", t->db);
        ZTB_CHECK(rv, reply_ok(r), ZTB_ERR_UNAVAILABLE);
    }
out:
    if (r != NULL)
        freeReplyObject(r);
    if (rv != ZTB_OK && c != NULL) {
        redisFree(c);
        c = NULL;
    }
    *out = c;
    return rv;
}

ztb_err rconn_pool_init(struct rconn_pool *p, const struct rconn_target *t)
{
    memset(p, 0, sizeof(*p));
    ZTB_ENSURE(pthread_mutex_init(&p->mu, NULL) == 0, ZTB_ERR_NOMEM);
    p->t = *t;
    return ZTB_OK;
}

void rconn_pool_destroy(struct rconn_pool *p)
{
    for (size_t i = 0; i < p->nidle; i++)
        redisFree(p->idle[i]);
    p->nidle = 0;
    rconn_target_wipe(&p->t);
    pthread_mutex_destroy(&p->mu);
}

/* 1 if an idle connection still looks usable: nothing to read, no hangup. */
static int idle_usable(const redisContext *c)
{
    struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
    return poll(&pfd, 1, 0) == 0;
}

/* A connection: an idle one that still looks alive, or a new one. */
static ztb_err take(struct rconn_pool *p, redisContext **out)
{
    *out = NULL;
    pthread_mutex_lock(&p->mu);
    while (p->nidle > 0 && *out == NULL) {
        redisContext *c = p->idle[--p->nidle];
        if (idle_usable(c))
            *out = c;
        else
            redisFree(c);
    }
    int refuse = *out == NULL && clock_mono_ms() < p->down_until_ms;
    pthread_mutex_unlock(&p->mu);
    if (*out != NULL)
        return ZTB_OK;
    ZTB_ENSURE(!refuse, ZTB_ERR_UNAVAILABLE);
    ztb_err rv = rconn_connect(&p->t, out);
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

static void give_back(struct rconn_pool *p, redisContext *c)
{
    pthread_mutex_lock(&p->mu);
    if (p->nidle < RCONN_POOL_MAX) {
        p->idle[p->nidle++] = c;
        c = NULL;
    }
    pthread_mutex_unlock(&p->mu);
    if (c != NULL)
        redisFree(c);
}

ztb_err rconn_pool_command(struct rconn_pool *p, redisReply **reply, int argc, const char **argv,
                           const size_t *lens)
{
    *reply = NULL;
    struct sigpipe_guard g;
    sigpipe_enter(&g);
    redisContext *c = NULL;
    ztb_err rv = take(p, &c);
    if (rv == ZTB_OK) {
        *reply = redisCommandArgv(c, argc, argv, lens);
        if (*reply == NULL) {
            redisFree(c); /* in an unknown state after a transport error */
            rv = ZTB_ERR_UNAVAILABLE;
        } else {
            give_back(p, c);
        }
    }
    sigpipe_leave(&g);
    return rv;
}
