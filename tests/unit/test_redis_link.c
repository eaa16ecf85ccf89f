/*
 * test_redis_link.c - the connection layer under every Redis client of ztb
 * (common/redis_link.c), against a real redis-server on a unix socket and
 * a listener that never answers: commands and replies, pipelines, idle
 * checks, timeouts, refusals. TLS is exercised end to end in
 * tests/integration/test_redis_tls.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/redis_link.h"
#include "harness.h"

static const struct redis_tls plain = {0};

static void test_commands_and_pipeline(void **state)
{
    (void)state;
    struct zh_redis r;
    zh_redis_start(&r);
    struct redis_link *l = NULL;
    char err[256];
    assert_int_equal(redis_link_open(r.sock, "", 0, &plain, 1000, &l, err, sizeof(err)), ZTB_OK);
    const char *set[] = {"SET", "k", "a\0b"};
    size_t lens[] = {3, 1, 3};
    redisReply *x = redis_link_command_argv(l, 3, set, lens);
    assert_non_null(x);
    assert_int_equal(x->type, REDIS_REPLY_STATUS);
    freeReplyObject(x);
    x = redis_link_commandf(l, "GET %s", "k");
    assert_int_equal(x->type, REDIS_REPLY_STRING);
    assert_int_equal(x->len, 3);
    assert_memory_equal(x->str, "a\0b", 3);
    freeReplyObject(x);
    /* a pipeline: three commands in one write, three replies in order */
    assert_int_equal(redis_link_appendf(l, "INCR n"), REDIS_OK);
    assert_int_equal(redis_link_appendf(l, "INCR n"), REDIS_OK);
    assert_int_equal(redis_link_appendf(l, "NOSUCHCOMMAND"), REDIS_OK);
    for (long i = 1; i <= 2; i++) {
        assert_int_equal(redis_link_get_reply(l, &x), REDIS_OK);
        assert_int_equal(x->integer, i);
        freeReplyObject(x);
    }
    assert_int_equal(redis_link_get_reply(l, &x), REDIS_OK);
    assert_int_equal(x->type, REDIS_REPLY_ERROR);
    freeReplyObject(x);
    assert_true(redis_link_idle_ok(l));
    /* the server closes it: the idle check sees it, a command fails with EOF */
    redisContext *c = zh_redis_connect(&r);
    freeReplyObject(redisCommand(c, "CLIENT KILL TYPE normal SKIPME yes"));
    redisFree(c);
    usleep(50000);
    assert_false(redis_link_idle_ok(l));
    assert_null(redis_link_commandf(l, "PING"));
    assert_int_not_equal(l->err, 0);
    assert_false(l->timed_out);
    redis_link_free(l);
    zh_redis_stop(&r, 1);
}

static void test_timeout_and_refusal(void **state)
{
    (void)state;
    char dir[256], path[300], err[256];
    zh_tmpdir(dir, sizeof(dir));
    snprintf(path, sizeof(path), "%s/silent.sock", dir);
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    assert_true(strlen(path) < sizeof(sa.sun_path));
    memcpy(sa.sun_path, path, strlen(path) + 1);
    assert_int_equal(bind(s, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(s, 4), 0);
    struct redis_link *l = NULL;
    assert_int_equal(redis_link_open(path, "", 0, &plain, 100, &l, err, sizeof(err)), ZTB_OK);
    assert_null(redis_link_commandf(l, "PING"));
    assert_true(l->timed_out);
    assert_int_equal(l->err, REDIS_ERR_IO);
    redis_link_free(l);
    close(s);
    /* nobody listening: UNAVAILABLE with the reason */
    assert_int_equal(redis_link_open(path, "", 0, &plain, 100, &l, err, sizeof(err)),
                     ZTB_ERR_UNAVAILABLE);
    assert_null(l);
    assert_true(err[0] != '\0');
    /* a TLS CA file that cannot be read: the files, not the server */
    struct redis_tls tls = {.on = 1};
    assert_true(strlen(dir) + 12 < sizeof(tls.ca));
    memcpy(tls.ca, dir, strlen(dir));
    memcpy(tls.ca + strlen(dir), "/nosuch.pem", 12);
    int ls = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in in = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t il = sizeof(in);
    assert_int_equal(bind(ls, (struct sockaddr *)&in, sizeof(in)), 0);
    assert_int_equal(listen(ls, 4), 0);
    assert_int_equal(getsockname(ls, (struct sockaddr *)&in, &il), 0);
    assert_int_equal(
        redis_link_open("", "127.0.0.1", ntohs(in.sin_port), &tls, 200, &l, err, sizeof(err)),
        ZTB_ERR_INVALID_ARG);
    assert_non_null(strstr(err, "cannot load the CA file"));
    close(ls);
    zh_rmtree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_commands_and_pipeline),
        cmocka_unit_test(test_timeout_and_refusal),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
