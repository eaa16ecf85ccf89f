/*
 * store_fixture.h - what the unit tests of the store_*.c files share: a
 * real redis-server the broker's Redis client talks to (started by the
 * group setup, stopped by its teardown), and one-off commands to look at
 * the keys directly.
 *
 * Header-only (static inline functions): each test file includes it once.
 */
#ifndef ZTB_TEST_STORE_FIXTURE_H
#define ZTB_TEST_STORE_FIXTURE_H

#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "broker/store/redis_client.h"
#include "harness.h"

static struct zh_redis rd;

/* Group setup: start Redis and point the broker's client at it. */
static inline int store_setup(void **state)
{
    (void)state;
    signal(SIGPIPE, SIG_IGN); /* as the broker: a dead Redis is an error, not a signal */
    zh_redis_start(&rd);
    struct redis_target t;
    char err[256];
    assert_int_equal(redis_target_parse(rd.url, 0, &t, err, sizeof(err)), ZTB_OK);
    t.timeout_ms = ZH_REDIS_TIMEOUT_MS;
    redis_client_init(&t);
    return 0;
}

/* Group teardown: stop the client and Redis (its directory removed). */
static inline int store_teardown(void **state)
{
    (void)state;
    redis_client_shutdown();
    zh_redis_stop(&rd, 1);
    return 0;
}

/* One command on a connection of its own: the reply (caller frees). */
static inline redisReply *cmd(const char *fmt, ...)
{
    redisContext *c = zh_redis_connect(&rd);
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(c, fmt, ap);
    va_end(ap);
    redisFree(c);
    assert_non_null(r);
    return r;
}

/* A command with one string argument whose reply must be an integer. */
static inline long long cmd_int(const char *fmt, const char *arg)
{
    redisReply *r = cmd(fmt, arg);
    assert_int_equal(r->type, REDIS_REPLY_INTEGER);
    long long v = r->integer;
    freeReplyObject(r);
    return v;
}

#endif /* ZTB_TEST_STORE_FIXTURE_H */
