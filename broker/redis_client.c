/*
 * redis_client.c - per-thread hiredis connections with timeouts and
 * backoff (see redis_client.h).
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
 */
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/sha.h>

#include "broker/metrics.h"
#include "broker/redis_client.h"
#include "common/guard.h"
#include "common/log.h"
#include "common/secret.h"

#define BACKOFF_MIN_MS 25
#define BACKOFF_MAX_MS 1000
#define IDLE_CHECK_MS  10

struct rconn {
    redisContext *ctx;
    uint64_t retry_at_ms; /* no reconnect before this */
    uint64_t used_ms;     /* last handed out */
    unsigned backoff_ms;
    struct rconn *next;
};

static struct redis_target g_target;
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static struct rconn *g_all;
static __thread struct rconn *t_conn;

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static int parse_int(const char *s, size_t n, int min, int max, int *out)
{
    if (n == 0 || n > 9)
        return -1;
    int v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    if (v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

ztb_err redis_target_parse(const char *url, struct redis_target *t, char *err, size_t errcap)
{
    memset(t, 0, sizeof(*t));
    t->port = 6379;
    t->timeout_ms = 250;
    if (strncmp(url, "unix://", 7) == 0) {
        const char *p = url + 7;
        const char *q = strchr(p, '?');
        size_t pl = q ? (size_t)(q - p) : strlen(p);
        if (pl == 0 || p[0] != '/' || pl >= sizeof(t->path)) {
            snprintf(err, errcap, "redis: unix:// needs an absolute socket path under %zu bytes",
                     sizeof(t->path));
            return ZTB_ERR_INVALID_ARG;
        }
        memcpy(t->path, p, pl);
        t->path[pl] = '\0';
        if (q != NULL) {
            if (strncmp(q, "?db=", 4) != 0 || parse_int(q + 4, strlen(q + 4), 0, 15, &t->db)) {
                snprintf(err, errcap, "redis: unix:// accepts only ?db=N (0-15)");
                return ZTB_ERR_INVALID_ARG;
            }
        }
        return ZTB_OK;
    }
    if (strncmp(url, "redis://", 8) != 0) {
        snprintf(err, errcap, "redis: expected redis://HOST:PORT[/DB] or unix:///PATH");
        return ZTB_ERR_INVALID_ARG;
    }
    const char *p = url + 8;
    const char *at = strrchr(p, '@');
    if (at != NULL) {
        const char *pw = p;
        size_t pwl = (size_t)(at - p);
        if (pwl > 0 && pw[0] == ':') {
            pw++;
            pwl--;
        }
        if (pwl == 0 || pwl >= sizeof(t->password)) {
            snprintf(err, errcap, "redis: password missing or too long");
            return ZTB_ERR_INVALID_ARG;
        }
        memcpy(t->password, pw, pwl);
        p = at + 1;
    }
    const char *slash = strchr(p, '/');
    size_t hpl = slash ? (size_t)(slash - p) : strlen(p);
    const char *colon = memchr(p, ':', hpl);
    size_t hl = colon ? (size_t)(colon - p) : hpl;
    if (hl == 0 || hl >= sizeof(t->host)) {
        snprintf(err, errcap, "redis: missing or overlong host");
        redis_target_wipe(t);
        return ZTB_ERR_INVALID_ARG;
    }
    memcpy(t->host, p, hl);
    t->host[hl] = '\0';
    if (colon != NULL && parse_int(colon + 1, hpl - hl - 1, 1, 65535, &t->port) != 0) {
        snprintf(err, errcap, "redis: bad port");
        redis_target_wipe(t);
        return ZTB_ERR_INVALID_ARG;
    }
    if (slash != NULL && slash[1] != '\0' &&
        parse_int(slash + 1, strlen(slash + 1), 0, 15, &t->db) != 0) {
        snprintf(err, errcap, "redis: bad database number (0-15)");
        redis_target_wipe(t);
        return ZTB_ERR_INVALID_ARG;
    }
    return ZTB_OK;
}

void redis_target_wipe(struct redis_target *t)
{
    ztb_wipe(t->password, sizeof(t->password));
}

void redis_target_describe(const struct redis_target *t, char *out, size_t cap)
{
    if (t->path[0] != '\0')
        snprintf(out, cap, "unix:%s", t->path);
    else
        snprintf(out, cap, "%s:%d", t->host, t->port);
}

void redis_client_init(const struct redis_target *t)
{
    g_target = *t;
}

void redis_client_shutdown(void)
{
    pthread_mutex_lock(&g_lock);
    struct rconn *c = g_all;
    g_all = NULL;
    pthread_mutex_unlock(&g_lock);
    while (c != NULL) {
        struct rconn *n = c->next;
        if (c->ctx != NULL)
            redisFree(c->ctx);
        free(c);
        c = n;
    }
    t_conn = NULL;
    redis_target_wipe(&g_target);
}

static void drop(struct rconn *c, const char *why)
{
    char where[300];
    redis_target_describe(&g_target, where, sizeof(where));
    ztb_log(ZTB_LOG_WARN, "redis.connection_lost", ZTB_F_STR("target", where),
            ZTB_F_STR("reason", why));
    if (c->ctx != NULL)
        redisFree(c->ctx);
    c->ctx = NULL;
    c->backoff_ms = c->backoff_ms ? c->backoff_ms * 2 : BACKOFF_MIN_MS;
    if (c->backoff_ms > BACKOFF_MAX_MS)
        c->backoff_ms = BACKOFF_MAX_MS;
    c->retry_at_ms = mono_ms() + c->backoff_ms;
    metrics_add(METRIC_REDIS_ERRORS, 1);
    metrics_set_redis_up(0);
}

static int reply_ok(redisReply *r)
{
    return r != NULL && r->type != REDIS_REPLY_ERROR;
}

/*
 * 1 if Redis has closed this idle connection. Redis sends nothing unasked on
 * a command connection, so anything readable (EOF, an error) means it is gone.
 */
static int closed_by_peer(const redisContext *ctx)
{
    struct pollfd p = {.fd = ctx->fd, .events = POLLIN};
    return poll(&p, 1, 0) != 0;
}

/* This thread's connection, connecting if needed; NULL while backing off. */
static redisContext *conn(void)
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
    uint64_t now = mono_ms();
    if (c->ctx != NULL) {
        if (now - c->used_ms < IDLE_CHECK_MS || !closed_by_peer(c->ctx)) {
            c->used_ms = now;
            return c->ctx;
        }
        /* Redis went away while we were idle: a new connection right now
         * (not a failure, so no backoff) */
        ztb_log(ZTB_LOG_INFO, "redis.reconnect_idle");
        redisFree(c->ctx);
        c->ctx = NULL;
        metrics_add(METRIC_REDIS_RECONNECTS, 1);
    }
    if (now < c->retry_at_ms)
        return NULL;
    unsigned ms = g_target.timeout_ms ? g_target.timeout_ms : 250;
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (suseconds_t)(ms % 1000) * 1000};
    redisContext *ctx = g_target.path[0]
                            ? redisConnectUnixWithTimeout(g_target.path, tv)
                            : redisConnectWithTimeout(g_target.host, g_target.port, tv);
    if (ctx == NULL || ctx->err) {
        c->ctx = ctx;
        drop(c, ctx ? ctx->errstr : "out of memory");
        return NULL;
    }
    c->ctx = ctx;
    if (redisSetTimeout(ctx, tv) != REDIS_OK) {
        drop(c, "cannot set timeout");
        return NULL;
    }
    if (g_target.password[0] != '\0') {
        redisReply *r = redisCommand(ctx, "AUTH %s", g_target.password);
        int ok = reply_ok(r);
        if (r != NULL)
            freeReplyObject(r);
        if (!ok) {
            drop(c, "AUTH refused");
            return NULL;
        }
    }
    if (g_target.db != 0) {
        redisReply *r = redisCommand(ctx, "SELECT %d", g_target.db);
        int ok = reply_ok(r);
        if (r != NULL)
            freeReplyObject(r);
        if (!ok) {
            drop(c, "SELECT refused");
            return NULL;
        }
    }
    if (c->backoff_ms != 0)
        metrics_add(METRIC_REDIS_RECONNECTS, 1);
    c->backoff_ms = 0;
    c->used_ms = mono_ms();
    metrics_set_redis_up(1);
    return ctx;
}

static ztb_err finish(redisReply *r, redisReply **out)
{
    if (r == NULL) {
        drop(t_conn, t_conn->ctx && t_conn->ctx->errstr[0] ? t_conn->ctx->errstr : "no reply");
        return ZTB_ERR_UNAVAILABLE;
    }
    *out = r;
    return ZTB_OK;
}

ztb_err redis_command(redisReply **reply, int argc, const char **argv, const size_t *lens)
{
    *reply = NULL;
    redisContext *ctx = conn();
    if (ctx == NULL)
        return ZTB_ERR_UNAVAILABLE;
    return finish(redisCommandArgv(ctx, argc, argv, lens), reply);
}

ztb_err redis_pipeline(size_t n, const int *argc, const char *const *const *argv,
                       const size_t *const *lens, redisReply **replies)
{
    for (size_t i = 0; i < n; i++)
        replies[i] = NULL;
    redisContext *ctx = conn();
    if (ctx == NULL)
        return ZTB_ERR_UNAVAILABLE;
    /* hiredis buffers the appended commands and writes them all with the
     * first redisGetReply: one write (or a few, for large batches) */
    for (size_t i = 0; i < n; i++) {
        if (redisAppendCommandArgv(ctx, argc[i], (const char **)argv[i], lens[i]) != REDIS_OK) {
            drop(t_conn, "cannot queue a pipelined command");
            return ZTB_ERR_UNAVAILABLE;
        }
    }
    for (size_t i = 0; i < n; i++) {
        void *r = NULL;
        if (redisGetReply(ctx, &r) != REDIS_OK || r == NULL) {
            for (size_t k = 0; k < i; k++) {
                freeReplyObject(replies[k]);
                replies[k] = NULL;
            }
            drop(t_conn, ctx->errstr[0] ? ctx->errstr : "no reply");
            return ZTB_ERR_UNAVAILABLE;
        }
        replies[i] = r;
    }
    return ZTB_OK;
}

ztb_err redis_commandf(redisReply **reply, const char *fmt, ...)
{
    *reply = NULL;
    redisContext *ctx = conn();
    if (ctx == NULL)
        return ZTB_ERR_UNAVAILABLE;
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(ctx, fmt, ap);
    va_end(ap);
    return finish(r, reply);
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

ztb_err redis_eval(redisReply **reply, const char *script, const char *sha, int nkeys, int nargs,
                   const char **argv, const size_t *lens)
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
    ZTB_GUARD(redis_command(&r, nargs + 3, a, l));
    if (r->type == REDIS_REPLY_ERROR && strncmp(r->str, "NOSCRIPT", 8) == 0) {
        freeReplyObject(r);
        a[0] = "EVAL";
        l[0] = 4;
        a[1] = script;
        l[1] = strlen(script);
        ZTB_GUARD(redis_command(&r, nargs + 3, a, l));
    }
    *reply = r;
    return ZTB_OK;
}

ztb_err redis_ping(void)
{
    redisReply *r;
    ZTB_GUARD(redis_commandf(&r, "PING"));
    int ok = r->type == REDIS_REPLY_STATUS && strcasecmp(r->str, "PONG") == 0;
    freeReplyObject(r);
    return ok ? ZTB_OK : ZTB_ERR_UNAVAILABLE;
}
