/*
 * test_redis_client.c - the per-thread connection against a
 * real redis-server: commands, scripts, loss, fast failure while backing off,
 * and reconnection; the shared pipeline (group commit) under concurrent
 * threads, across a loss and a demotion.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <signal.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "broker/http/metrics.h"
#include "broker/store/redis_client.h"
#include "harness.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Point the broker's client at rd (timeout_ms 0: the URL's default). */
static void client_on(const struct zh_redis *rd, unsigned timeout_ms)
{
    struct redis_target t;
    char err[256];
    assert_int_equal(redis_target_parse(rd->url, 0, &t, err, sizeof(err)), ZTB_OK);
    if (timeout_ms != 0)
        t.timeout_ms = timeout_ms;
    redis_client_init(&t);
}

static void test_commands_loss_and_recovery(void **state)
{
    (void)state;
    struct zh_redis rd;
    zh_redis_start(&rd);
    client_on(&rd, ZH_REDIS_TIMEOUT_MS);

    assert_int_equal(redis_ping(), ZTB_OK);
    redisReply *r;
    const char *argv[] = {"SET", "k\0bin", "v"};
    const size_t lens[] = {3, 5, 1};
    assert_int_equal(redis_command(&r, 3, argv, lens), ZTB_OK);
    assert_int_equal(r->type, REDIS_REPLY_STATUS);
    freeReplyObject(r);
    assert_int_equal(redis_commandf(&r, "GET %b", "k\0bin", (size_t)5), ZTB_OK);
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    assert_string_equal(r->str, "v");
    freeReplyObject(r);

    /* scripts: the first call loads it (NOSCRIPT then EVAL), later ones use EVALSHA */
    const char *script = "return redis.call('INCRBY', KEYS[1], ARGV[1])";
    char sha[41];
    redis_script_sha(script, sha);
    const char *ea[] = {"counter", "5"};
    for (int i = 1; i <= 3; i++) {
        assert_int_equal(redis_eval(&r, script, sha, 1, 2, ea, NULL), ZTB_OK);
        assert_int_equal(r->type, REDIS_REPLY_INTEGER);
        assert_int_equal(r->integer, 5 * i);
        freeReplyObject(r);
    }
    assert_int_equal(redis_eval(&r, script, sha, 3, 2, ea, NULL), ZTB_ERR_INVALID_ARG);

    /* a Redis error reply is a reply, not a transport failure */
    assert_int_equal(redis_commandf(&r, "NOSUCHCOMMAND"), ZTB_OK);
    assert_int_equal(r->type, REDIS_REPLY_ERROR);
    freeReplyObject(r);

    zh_redis_kill(&rd);
    assert_int_equal(redis_ping(), ZTB_ERR_UNAVAILABLE);
    /* while backing off, calls fail at once instead of waiting on timeouts */
    double t0 = now_s();
    for (int i = 0; i < 100; i++)
        assert_int_equal(redis_ping(), ZTB_ERR_UNAVAILABLE);
    assert_true(now_s() - t0 < 0.5);

    zh_redis_restart(&rd);
    int ok = 0;
    for (int i = 0; i < 100 && !ok; i++) {
        ok = redis_ping() == ZTB_OK;
        if (!ok)
            usleep(30000);
    }
    assert_true(ok);
    /* AOF kept the data written before the crash */
    assert_int_equal(redis_commandf(&r, "GET counter"), ZTB_OK);
    assert_string_equal(r->str, "15");
    freeReplyObject(r);

    redis_client_shutdown();
    zh_redis_stop(&rd, 1);
}

/* Redis restarts while a connection is idle: the next call reconnects at
 * once and succeeds, instead of failing once on the dead connection. */
static void test_idle_connection_after_restart(void **state)
{
    (void)state;
    struct zh_redis rd;
    zh_redis_start(&rd);
    client_on(&rd, 0);
    assert_int_equal(redis_ping(), ZTB_OK);
    zh_redis_stop(&rd, 0);
    zh_redis_restart(&rd);
    usleep(50000); /* idle for longer than the check interval */
    assert_int_equal(redis_ping(), ZTB_OK);
    redisReply *r;
    assert_int_equal(redis_commandf(&r, "SET after restart"), ZTB_OK);
    assert_int_equal(r->type, REDIS_REPLY_STATUS);
    freeReplyObject(r);
    redis_client_shutdown();
    zh_redis_stop(&rd, 1);
}

static void *ping_once(void *arg)
{
    *(ztb_err *)arg = redis_ping();
    return NULL;
}

/*
 * Redis comes back (after a failover, a restart): once any thread has
 * connected again, a thread still backing off from earlier failures may
 * try at once, instead of failing every request until its own backoff
 * (up to a second) runs out while Redis answers the others.
 */
static void test_backoff_ends_when_another_connects(void **state)
{
    (void)state;
    struct zh_redis rd;
    zh_redis_start(&rd);
    client_on(&rd, ZH_REDIS_TIMEOUT_MS);
    assert_int_equal(redis_ping(), ZTB_OK);
    zh_redis_stop(&rd, 0);
    /* this thread backs off longer and longer: 25, 50 ... 800 ms */
    for (int i = 0; i < 6; i++) {
        assert_int_equal(redis_ping(), ZTB_ERR_UNAVAILABLE);
        usleep((useconds_t)(25000u << i) + 5000u);
    }
    assert_int_equal(redis_ping(), ZTB_ERR_UNAVAILABLE); /* now 1 s */
    zh_redis_restart(&rd);
    /* another thread (its own connection, no backoff) gets through */
    ztb_err other = ZTB_ERR_UNAVAILABLE;
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, ping_once, &other), 0);
    pthread_join(th, NULL);
    assert_int_equal(other, ZTB_OK);
    /* and this one follows at once, well within its second of backoff */
    assert_int_equal(redis_ping(), ZTB_OK);
    redis_client_shutdown();
    zh_redis_stop(&rd, 1);
}

/* The same client over TCP on loopback. */
static void test_tcp(void **state)
{
    (void)state;
    struct zh_redis rd;
    zh_redis_start_tcp(&rd);
    struct redis_target t;
    char err[256];
    assert_int_equal(redis_target_parse(rd.tcp_url, 0, &t, err, sizeof(err)), ZTB_OK);
    assert_string_equal(t.host, "127.0.0.1");
    assert_int_equal(t.port, rd.port);
    t.timeout_ms = ZH_REDIS_TIMEOUT_MS;
    redis_client_init(&t);
    assert_int_equal(redis_ping(), ZTB_OK);
    redisReply *r;
    assert_int_equal(redis_commandf(&r, "SET tcp yes"), ZTB_OK);
    freeReplyObject(r);
    /* the same data through the unix socket: one server */
    redisContext *c = zh_redis_connect(&rd);
    r = redisCommand(c, "GET tcp");
    assert_string_equal(r->str, "yes");
    freeReplyObject(r);
    redisFree(c);
    zh_redis_kill(&rd);
    assert_int_equal(redis_ping(), ZTB_ERR_UNAVAILABLE);
    redis_client_shutdown();
    zh_redis_stop(&rd, 1);
}

/* Error replies that mean "cannot write now" are UNAVAILABLE to the caller,
 * counted by kind, and keep readiness false while they last; a revocation
 * waits for replicas only when told to. */
static void test_error_replies_and_readiness(void **state)
{
    (void)state;
    struct zh_redis rd;
    zh_redis_start(&rd);
    char why[32];
    client_on(&rd, ZH_REDIS_TIMEOUT_MS);
    assert_int_equal(redis_client_wait_replicas(), 0); /* not a Sentinel URL */
    assert_int_equal(redis_ready(why, sizeof(why)), ZTB_OK);
    redisContext *c = zh_redis_connect(&rd);
    freeReplyObject(redisCommand(c, "CONFIG SET min-replicas-to-write 1"));
    uint64_t before = metrics_redis_error_get(REDIS_EK_NOREPLICAS);
    redisReply *r = NULL;
    assert_int_equal(redis_commandf(&r, "SET k v"), ZTB_ERR_UNAVAILABLE);
    assert_null(r);
    assert_int_equal(metrics_redis_error_get(REDIS_EK_NOREPLICAS), before + 1);
    assert_int_equal(redis_ready(why, sizeof(why)), ZTB_ERR_UNAVAILABLE);
    assert_string_equal(why, "noreplicas");
    freeReplyObject(redisCommand(c, "CONFIG SET min-replicas-to-write 0"));
    /* the probe passes, but real traffic's last word was an error */
    assert_int_equal(redis_ready(why, sizeof(why)), ZTB_ERR_UNAVAILABLE);
    assert_int_equal(redis_commandf(&r, "SET k v"), ZTB_OK);
    freeReplyObject(r);
    assert_int_equal(redis_ready(why, sizeof(why)), ZTB_OK);
    /* a script error that is not about the server stays the caller's */
    assert_int_equal(redis_commandf(&r, "NOSUCHCOMMAND"), ZTB_OK);
    assert_int_equal(r->type, REDIS_REPLY_ERROR);
    freeReplyObject(r);
    assert_int_equal(redis_commandf(&r, "GET k"), ZTB_OK);
    freeReplyObject(r);
    /* demoted: READONLY, then the connection is remade */
    freeReplyObject(redisCommand(c, "REPLICAOF 127.0.0.1 1"));
    assert_int_equal(redis_commandf(&r, "SET k v"), ZTB_ERR_UNAVAILABLE);
    assert_int_equal(redis_ready(why, sizeof(why)), ZTB_ERR_UNAVAILABLE);
    freeReplyObject(redisCommand(c, "REPLICAOF NO ONE"));
    int ok = 0;
    for (int i = 0; i < 100 && !ok; i++) { /* after the backoff */
        ok = redis_commandf(&r, "SET k v") == ZTB_OK;
        if (ok)
            freeReplyObject(r);
        else
            usleep(20000);
    }
    assert_true(ok);
    /* WAIT: none asked, none waited for; one asked of a Redis without
     * replicas: refused after the timeout */
    assert_int_equal(redis_wait_replicas(), ZTB_OK);
    redis_client_set_wait(1, 100);
    assert_int_equal(redis_commandf(&r, "SET k v"), ZTB_OK);
    freeReplyObject(r);
    assert_int_equal(redis_wait_replicas(), ZTB_ERR_UNAVAILABLE);
    redis_client_set_wait(0, 0);
    assert_int_equal(redis_wait_replicas(), ZTB_OK);
    redisFree(c);
    redis_client_shutdown();
    zh_redis_stop(&rd, 1);
}

/* The shared pipeline: threads that send at once ------------------------------*/

#define SH_THREADS 8
#define SH_CALLS   400

static const char sh_script[] = "redis.call('INCR', KEYS[1]) return ARGV[1]";

struct sh_thread {
    pthread_t th;
    int id;
    int ok, crossed, unavailable, other;
};

/* Each call echoes a value only this thread and call send: a reply handed
 * to the wrong thread shows as crossed. */
static void *sh_main(void *arg)
{
    struct sh_thread *t = arg;
    char sha[41];
    redis_script_sha(sh_script, sha);
    for (int i = 0; i < SH_CALLS; i++) {
        char mine[32];
        snprintf(mine, sizeof(mine), "%d:%d", t->id, i);
        const char *argv[] = {"shared:n", mine};
        redisReply *r = NULL;
        ztb_err e = redis_eval_shared(&r, sh_script, sha, 1, 2, argv, NULL);
        if (e == ZTB_ERR_UNAVAILABLE) {
            t->unavailable++;
            t->other += r != NULL; /* no reply comes with a failure */
            continue;
        }
        if (e != ZTB_OK || r == NULL || r->type != REDIS_REPLY_STRING)
            t->other++;
        else if (strcmp(r->str, mine) != 0)
            t->crossed++;
        else
            t->ok++;
        if (r != NULL)
            freeReplyObject(r);
    }
    return NULL;
}

static void sh_run(struct sh_thread *t)
{
    for (int i = 0; i < SH_THREADS; i++) {
        memset(&t[i], 0, sizeof(t[i]));
        t[i].id = i;
        assert_int_equal(pthread_create(&t[i].th, NULL, sh_main, &t[i]), 0);
    }
    for (int i = 0; i < SH_THREADS; i++)
        pthread_join(t[i].th, NULL);
}

static void test_shared_pipeline(void **state)
{
    (void)state;
    struct zh_redis rd;
    zh_redis_start(&rd);
    client_on(&rd, ZH_REDIS_TIMEOUT_MS);
    uint64_t b0 = metrics_get(METRIC_REDIS_BATCHES), c0 = metrics_get(METRIC_REDIS_BATCHED);

    /* every reply reaches the thread that sent the command, and each
     * command ran once */
    struct sh_thread th[SH_THREADS];
    sh_run(th);
    for (int i = 0; i < SH_THREADS; i++) {
        assert_int_equal(th[i].crossed, 0);
        assert_int_equal(th[i].other, 0);
        assert_int_equal(th[i].unavailable, 0);
        assert_int_equal(th[i].ok, SH_CALLS);
    }
    redisReply *r;
    assert_int_equal(redis_commandf(&r, "GET shared:n"), ZTB_OK);
    assert_int_equal(atoi(r->str), SH_THREADS * SH_CALLS);
    freeReplyObject(r);
    /* ... and they went out in batches (the first, NOSCRIPT, call of a
     * thread is sent twice) */
    uint64_t batches = metrics_get(METRIC_REDIS_BATCHES) - b0;
    uint64_t cmds = metrics_get(METRIC_REDIS_BATCHED) - c0;
    assert_true(cmds >= SH_THREADS * SH_CALLS && cmds <= SH_THREADS * (SH_CALLS + 1));
    if (batches >= cmds)
        fail_msg("%llu commands in %llu batches: none shared a write", (unsigned long long)cmds,
                 (unsigned long long)batches);

    /* Redis demoted under the batch: every command fails closed, none
     * gets the READONLY reply as an answer, and the shared connection is
     * made again once it is a master */
    redisContext *c = zh_redis_connect(&rd);
    freeReplyObject(redisCommand(c, "REPLICAOF 127.0.0.1 1"));
    uint64_t ro = metrics_redis_error_get(REDIS_EK_READONLY);
    sh_run(th);
    for (int i = 0; i < SH_THREADS; i++) {
        assert_int_equal(th[i].ok + th[i].crossed + th[i].other, 0);
        assert_int_equal(th[i].unavailable, SH_CALLS);
    }
    assert_true(metrics_redis_error_get(REDIS_EK_READONLY) > ro);
    freeReplyObject(redisCommand(c, "REPLICAOF NO ONE"));
    redisFree(c);
    int ok = 0;
    const char *argv[] = {"shared:n", "back"};
    char sha[41];
    redis_script_sha(sh_script, sha);
    for (int i = 0; i < 100 && !ok; i++) { /* after the backoff */
        ok = redis_eval_shared(&r, sh_script, sha, 1, 2, argv, NULL) == ZTB_OK;
        if (ok)
            freeReplyObject(r);
        else
            usleep(20000);
    }
    assert_true(ok);

    /* Redis killed while threads send: each fails closed at once (no
     * thread hangs on a batch that will never be answered), then the
     * pipeline recovers */
    zh_redis_kill(&rd);
    double t0 = now_s();
    sh_run(th);
    for (int i = 0; i < SH_THREADS; i++) {
        assert_int_equal(th[i].crossed + th[i].other, 0);
        assert_int_equal(th[i].unavailable, SH_CALLS);
    }
    assert_true(now_s() - t0 < 5.0);
    zh_redis_restart(&rd);
    ok = 0;
    for (int i = 0; i < 200 && !ok; i++) {
        ok = redis_eval_shared(&r, sh_script, sha, 1, 2, argv, NULL) == ZTB_OK;
        if (ok)
            freeReplyObject(r);
        else
            usleep(20000);
    }
    assert_true(ok);
    redis_client_shutdown();
    zh_redis_stop(&rd, 1);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN); /* the broker blocks it; so does this test */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_commands_loss_and_recovery),
        cmocka_unit_test(test_idle_connection_after_restart),
        cmocka_unit_test(test_backoff_ends_when_another_connects),
        cmocka_unit_test(test_tcp),
        cmocka_unit_test(test_error_replies_and_readiness),
        cmocka_unit_test(test_shared_pipeline),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
