/* test_redis_conn.c - the caller-thread pool of Redis connections, against a real Redis
 * (URLs and connecting: test_redis_target.c). */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "harness.h"
#include "sdk/src/redis_conn.h"

static void test_pool_against_real_redis(void **state)
{
    (void)state;
    signal(SIGPIPE, SIG_DFL); /* a host that did not ignore SIGPIPE must survive too */
    struct zh_redis r;
    zh_redis_start(&r);
    struct redis_target t;
    char err[160];
    assert_int_equal(redis_target_parse(r.url, 500, &t, err, sizeof(err)), ZTB_OK);
    struct rconn_pool p;
    assert_int_equal(rconn_pool_init(&p, &t), ZTB_OK);
    const char *set[] = {"SET", "k", "v", "NX"};
    size_t setl[] = {3, 1, 1, 2};
    redisReply *rep = NULL;
    assert_int_equal(rconn_pool_command(&p, &rep, 4, set, setl), ZTB_OK);
    assert_int_equal(rep->type, REDIS_REPLY_STATUS);
    freeReplyObject(rep);
    assert_int_equal(rconn_pool_command(&p, &rep, 4, set, setl), ZTB_OK);
    assert_int_equal(rep->type, REDIS_REPLY_NIL); /* NX: already there */
    freeReplyObject(rep);
    assert_int_equal(p.nidle, 1); /* one connection, reused */

    /* Redis restarts: the idle connection is seen dead and replaced, no failure */
    zh_redis_stop(&r, 0);
    zh_redis_restart(&r);
    const char *get[] = {"GET", "k"};
    size_t getl[] = {3, 1};
    assert_int_equal(rconn_pool_command(&p, &rep, 2, get, getl), ZTB_OK);
    freeReplyObject(rep);

    /* Redis gone: UNAVAILABLE, then refused at once during the backoff */
    zh_redis_kill(&r);
    assert_int_equal(rconn_pool_command(&p, &rep, 2, get, getl), ZTB_ERR_UNAVAILABLE);
    assert_null(rep);
    assert_int_equal(rconn_pool_command(&p, &rep, 2, get, getl), ZTB_ERR_UNAVAILABLE);
    zh_redis_restart(&r);
    for (int i = 0; i < 200; i++) { /* the backoff ends within a second */
        if (rconn_pool_command(&p, &rep, 2, get, getl) == ZTB_OK)
            break;
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    assert_non_null(rep);
    freeReplyObject(rep);
    rconn_pool_destroy(&p);
    redis_target_wipe(&t);
    zh_redis_stop(&r, 1);
}

/* A server demoted to a replica answers READONLY: the connection is not
 * pooled again, so the next command connects afresh (through the
 * sentinels, with a Sentinel URL) instead of writing to the replica. */
static void test_readonly_connection_not_pooled(void **state)
{
    (void)state;
    struct zh_redis r;
    zh_redis_start(&r);
    struct redis_target t;
    char err[160];
    assert_int_equal(redis_target_parse(r.url, 500, &t, err, sizeof(err)), ZTB_OK);
    struct rconn_pool p;
    assert_int_equal(rconn_pool_init(&p, &t), ZTB_OK);
    const char *set[] = {"SET", "k", "v"};
    redisReply *rep = NULL;
    assert_int_equal(rconn_pool_command(&p, &rep, 3, set, NULL), ZTB_OK);
    freeReplyObject(rep);
    assert_int_equal(p.nidle, 1);
    redisContext *c = zh_redis_connect(&r);
    freeReplyObject(redisCommand(c, "REPLICAOF 127.0.0.1 1"));
    assert_int_equal(rconn_pool_command(&p, &rep, 3, set, NULL), ZTB_OK);
    assert_int_equal(rep->type, REDIS_REPLY_ERROR);
    assert_int_equal(redis_error_kind_of(NULL, rep), REDIS_EK_READONLY);
    freeReplyObject(rep);
    assert_int_equal(p.nidle, 0); /* dropped, not given back */
    freeReplyObject(redisCommand(c, "REPLICAOF NO ONE"));
    redisFree(c);
    assert_int_equal(rconn_pool_command(&p, &rep, 3, set, NULL), ZTB_OK);
    assert_int_equal(rep->type, REDIS_REPLY_STATUS);
    freeReplyObject(rep);
    assert_int_equal(p.nidle, 1);
    rconn_pool_destroy(&p);
    redis_target_wipe(&t);
    zh_redis_stop(&r, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pool_against_real_redis),
        cmocka_unit_test(test_readonly_connection_not_pooled),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
