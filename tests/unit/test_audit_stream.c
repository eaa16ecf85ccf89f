/*
 * test_audit_stream.c - the audit log's copy in Redis: every line pushed
 * reaches the stream ztb:audit, in order; a copy that cannot be made or
 * sent is dropped and counted, never waited for; nothing is sent or counted
 * when the stream is not running.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "broker/audit/audit_stream.h"
#include "broker/store/redis_client.h"
#include "harness.h"

/* Push line as the writer does: in a copy of its own. */
static void push(const char *line)
{
    size_t n = strlen(line);
    audit_stream_push(malloc(n + 1), n + 1, line, n);
}

static void use_redis(const char *url)
{
    struct redis_target t;
    char err[256];
    assert_int_equal(redis_target_parse(url, 0, &t, err, sizeof(err)), ZTB_OK);
    t.timeout_ms = ZH_REDIS_TIMEOUT_MS;
    redis_client_init(&t);
}

static void test_lines_reach_the_stream_in_order(void **state)
{
    (void)state;
    struct zh_redis rd;
    zh_redis_start(&rd);
    use_redis(rd.url);
    uint64_t dropped = audit_stream_dropped();
    assert_int_equal(audit_stream_running(), 0);
    audit_stream_set_replica("replica-7");
    assert_int_equal(audit_stream_start(), ZTB_OK);
    assert_int_equal(audit_stream_running(), 1);
    assert_int_equal(audit_stream_start(), ZTB_ERR_STATE); /* one sender */
    char line[64];
    for (int i = 1; i <= 1000; i++) {
        snprintf(line, sizeof(line), "{\"seq\":%d}", i);
        push(line);
    }
    audit_stream_stop(); /* sends what is still queued */
    assert_int_equal(audit_stream_running(), 0);
    assert_int_equal(audit_stream_dropped(), dropped);

    redisContext *c = zh_redis_connect(&rd);
    redisReply *r = redisCommand(c, "XLEN ztb:audit");
    assert_int_equal(r->integer, 1000);
    freeReplyObject(r);
    r = redisCommand(c, "XRANGE ztb:audit - + COUNT 1");
    assert_string_equal(r->element[0]->element[1]->element[0]->str, "line");
    assert_string_equal(r->element[0]->element[1]->element[1]->str, "{\"seq\":1}");
    /* each entry names the replica whose chain it belongs to */
    assert_string_equal(r->element[0]->element[1]->element[2]->str, "replica");
    assert_string_equal(r->element[0]->element[1]->element[3]->str, "replica-7");
    freeReplyObject(r);
    r = redisCommand(c, "XREVRANGE ztb:audit + - COUNT 1");
    assert_string_equal(r->element[0]->element[1]->element[1]->str, "{\"seq\":1000}");
    freeReplyObject(r);

    /* stopped: a push is only freed (not sent, not counted) */
    push("{\"seq\":1001}");
    audit_stream_stop(); /* a second stop does nothing */
    assert_int_equal(audit_stream_dropped(), dropped);
    r = redisCommand(c, "XLEN ztb:audit");
    assert_int_equal(r->integer, 1000);
    freeReplyObject(r);
    redisFree(c);
    redis_client_shutdown();
    zh_redis_stop(&rd, 1);
}

static void test_copies_that_cannot_be_made_are_counted(void **state)
{
    (void)state;
    struct zh_redis rd;
    zh_redis_start(&rd);
    use_redis(rd.url);
    uint64_t dropped = audit_stream_dropped();
    assert_int_equal(audit_stream_start(), ZTB_OK);
    audit_stream_push(NULL, 100, "{\"seq\":1}", 9);      /* out of memory */
    audit_stream_push(malloc(9), 9, "{\"seq\":2}", 9);   /* no room for the NUL */
    audit_stream_push(malloc(10), 10, "{\"seq\":3}", 9); /* fits */
    audit_stream_stop();
    assert_int_equal(audit_stream_dropped(), dropped + 2);
    redisContext *c = zh_redis_connect(&rd);
    redisReply *r = redisCommand(c, "XLEN ztb:audit");
    assert_int_equal(r->integer, 1);
    freeReplyObject(r);
    redisFree(c);
    redis_client_shutdown();
    zh_redis_stop(&rd, 1);
}

/* Redis gone: the copies are dropped and counted, and stop does not hang. */
static void test_redis_down_drops_and_counts(void **state)
{
    (void)state;
    char dir[256], url[400];
    zh_tmpdir(dir, sizeof(dir));
    snprintf(url, sizeof(url), "unix://%s/no-redis.sock", dir);
    use_redis(url);
    uint64_t dropped = audit_stream_dropped();
    assert_int_equal(audit_stream_start(), ZTB_OK);
    for (int i = 0; i < 50; i++)
        push("{\"seq\":1}");
    audit_stream_stop();
    assert_int_equal(audit_stream_dropped(), dropped + 50);
    redis_client_shutdown();
    zh_rmtree(dir);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lines_reach_the_stream_in_order),
        cmocka_unit_test(test_copies_that_cannot_be_made_are_counted),
        cmocka_unit_test(test_redis_down_drops_and_counts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
