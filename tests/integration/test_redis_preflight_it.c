/*
 * test_redis_preflight_it.c - the broker's Redis preflight with the real
 * ztb-broker and redis-server: an evicting Redis is refused at start with
 * the fix named, started with a loud warning under --redis-allow-eviction 1;
 * a FLUSHALL behind the broker's back makes it not ready with one log line
 * saying what happened and what to do.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"

static void redis_cmd(const struct zh_redis *rd, const char *c)
{
    redisContext *ctx = zh_redis_connect(rd);
    redisReply *r = redisCommand(ctx, c);
    assert_non_null(r);
    assert_int_not_equal(r->type, REDIS_REPLY_ERROR);
    freeReplyObject(r);
    redisFree(ctx);
}

/* How often needle occurs in the broker's log. */
static int log_count(const struct zh_broker *b, const char *needle)
{
    FILE *f = fopen(b->log, "r");
    assert_non_null(f);
    char line[8192];
    int n = 0;
    while (fgets(line, sizeof(line), f) != NULL)
        n += strstr(line, needle) != NULL;
    fclose(f);
    return n;
}

static void test_evicting_redis_refused_unless_overridden(void **state)
{
    (void)state;
    struct zh_redis rd;
    zh_redis_start(&rd);
    redis_cmd(&rd, "CONFIG SET maxmemory-policy allkeys-lru");
    char dir[256], st[300];
    zh_tmpdir(dir, sizeof(dir));
    snprintf(st, sizeof(st), "%s/state", dir);
    const char *argv[] = {zh_bin("ztb-broker"), "--redis",     rd.url,   "--state-dir", st,
                          "--listen",           "127.0.0.1:0", "--user", "nobody",      NULL};
    char *out = NULL, *err = NULL;
    assert_int_equal(zh_run(argv, &out, &err), 1);
    assert_non_null(strstr(err, "allkeys-lru"));
    assert_non_null(strstr(err, "CONFIG SET maxmemory-policy noeviction"));
    assert_non_null(strstr(err, "--redis-allow-eviction"));
    free(out);
    free(err);

    const char *extra[] = {"--redis-allow-eviction", "1", NULL};
    struct zh_broker_opts o = {.redis_url = rd.url, .with_keys = 1, .extra_args = extra};
    struct zh_broker b;
    zh_broker_start(&b, &o);
    struct zh_resp r;
    assert_int_equal(zh_get(&b, "/readyz", &r), 0);
    assert_int_equal(r.status, 200);
    zh_resp_free(&r);
    assert_int_equal(log_count(&b, "\"redis.eviction_allowed\""), 1);
    assert_int_equal(log_count(&b, "\"redis.preflight\""), 1); /* persistence reported */
    assert_int_equal(zh_broker_stop(&b), 0);
    zh_redis_stop(&rd, 1);
    zh_rmtree(b.dir);
    zh_rmtree(dir);
}

static void test_flushall_behind_the_brokers_back(void **state)
{
    (void)state;
    struct zh_redis rd;
    zh_redis_start(&rd);
    struct zh_broker_opts o = {.redis_url = rd.url, .with_keys = 1};
    struct zh_broker b;
    zh_broker_start(&b, &o);
    struct zh_resp r;
    assert_int_equal(zh_get(&b, "/readyz", &r), 0);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "\"redis_preflight\":\"ok\""));
    zh_resp_free(&r);

    redis_cmd(&rd, "FLUSHALL");
    int lost = 0;
    for (int i = 0; i < 60 && !lost; i++) { /* checked again every second */
        assert_int_equal(zh_get(&b, "/readyz", &r), 0);
        lost = r.status == 503 && strstr(r.body, "\"redis_preflight\":\"data_lost\"") != NULL;
        zh_resp_free(&r);
        if (!lost)
            usleep(100000);
    }
    if (!lost) {
        zh_broker_dump_log(&b);
        fail_msg("/readyz still ready after FLUSHALL");
    }
    usleep(1200000);
    assert_int_equal(zh_get(&b, "/readyz", &r), 0);
    assert_int_equal(r.status, 503);
    zh_resp_free(&r);
    assert_int_equal(log_count(&b, "\"redis.data_lost\""), 1); /* one line, not one per check */
    assert_int_equal(log_count(&b, "remove marker_file and restart"), 1);

    /* a restart does not paper over it */
    assert_int_equal(zh_broker_stop(&b), 0);
    struct zh_broker again;
    struct zh_broker_opts o2 = {.redis_url = rd.url, .state_dir = b.state};
    zh_broker_start(&again, &o2);
    assert_int_equal(zh_get(&again, "/readyz", &r), 0);
    assert_int_equal(r.status, 503);
    assert_non_null(strstr(r.body, "data_lost"));
    zh_resp_free(&r);
    assert_int_equal(log_count(&again, "\"redis.data_lost\""), 1);
    assert_int_equal(zh_broker_stop(&again), 0);

    /* the operator's decision to start over: remove the file */
    char file[400];
    snprintf(file, sizeof(file), "%s/redis.marker", b.state);
    assert_int_equal(unlink(file), 0);
    zh_broker_start(&again, &o2);
    assert_int_equal(zh_get(&again, "/readyz", &r), 0);
    assert_int_equal(r.status, 200);
    zh_resp_free(&r);
    assert_int_equal(zh_broker_stop(&again), 0);
    zh_redis_stop(&rd, 1);
    zh_rmtree(again.dir);
    zh_rmtree(b.dir);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_evicting_redis_refused_unless_overridden),
        cmocka_unit_test(test_flushall_behind_the_brokers_back),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
