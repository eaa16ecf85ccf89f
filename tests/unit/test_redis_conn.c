/* test_redis_conn.c - Redis URLs, connections and the caller-thread pool, against a real Redis. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "harness.h"
#include "sdk/src/redis_conn.h"

static void test_parse_urls(void **state)
{
    (void)state;
    struct rconn_target t;
    char err[160];
    assert_int_equal(rconn_parse_url("redis://h.example:6380/3", 0, &t, err, sizeof(err)), ZTB_OK);
    assert_string_equal(t.host, "h.example");
    assert_int_equal(t.port, 6380);
    assert_int_equal(t.db, 3);
    assert_int_equal(t.timeout_ms, 1000);
    assert_int_equal(rconn_parse_url("redis://:s3cret@h", 250, &t, err, sizeof(err)), ZTB_OK);
    assert_string_equal(t.password, "s3cret");
    assert_int_equal(t.port, 6379);
    char d[64];
    rconn_describe(&t, d, sizeof(d));
    assert_string_equal(d, "h:6379");
    rconn_target_wipe(&t);
    assert_int_equal(t.password[0], 0);
    assert_int_equal(rconn_parse_url("unix:///run/redis.sock?db=2", 0, &t, err, sizeof(err)),
                     ZTB_OK);
    assert_string_equal(t.path, "/run/redis.sock");
    assert_int_equal(t.db, 2);
    const char *bad[] = {"http://h",      "redis://",        "redis://h:0",   "redis://h:70000",
                         "redis://h/16",  "unix://relative", "unix:///s?x=1", "redis://@h",
                         "redis://h:12x", "redis://:pw@:1"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(rconn_parse_url(bad[i], 0, &t, err, sizeof(err)), ZTB_ERR_INVALID_ARG);
        assert_non_null(strstr(err, "redis: "));
    }
    /* a message never carries the password */
    assert_int_equal(rconn_parse_url("redis://:topsecret@h:99999", 0, &t, err, sizeof(err)),
                     ZTB_ERR_INVALID_ARG);
    assert_null(strstr(err, "topsecret"));
    assert_int_equal(t.password[0], 0);
}

static void test_pool_against_real_redis(void **state)
{
    (void)state;
    signal(SIGPIPE, SIG_DFL); /* a host that did not ignore SIGPIPE must survive too */
    struct zh_redis r;
    zh_redis_start(&r);
    struct rconn_target t;
    char err[160];
    assert_int_equal(rconn_parse_url(r.url, 500, &t, err, sizeof(err)), ZTB_OK);
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
    rconn_target_wipe(&t);
    zh_redis_stop(&r, 1);
}

static void test_connect_with_password_and_db(void **state)
{
    (void)state;
    struct zh_redis r;
    zh_redis_start(&r);
    redisContext *c = zh_redis_connect(&r);
    redisReply *x = redisCommand(c, "CONFIG SET requirepass pw1");
    freeReplyObject(x);
    redisFree(c);
    char url[400];
    struct rconn_target t;
    char err[160];
    snprintf(url, sizeof(url), "%s?db=1", r.url);
    assert_int_equal(rconn_parse_url(url, 500, &t, err, sizeof(err)), ZTB_OK);
    redisContext *rc = NULL;
    assert_int_equal(rconn_connect(&t, &rc), ZTB_ERR_UNAVAILABLE); /* no password */
    assert_null(rc);
    snprintf(t.password, sizeof(t.password), "pw1");
    assert_int_equal(rconn_connect(&t, &rc), ZTB_OK);
    redisReply *y = redisCommand(rc, "CLIENT INFO");
    assert_non_null(strstr(y->str, "db=1"));
    freeReplyObject(y);
    redisFree(rc);
    rconn_target_wipe(&t);
    zh_redis_stop(&r, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_urls),
        cmocka_unit_test(test_pool_against_real_redis),
        cmocka_unit_test(test_connect_with_password_and_db),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
