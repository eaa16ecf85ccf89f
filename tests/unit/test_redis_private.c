/* test_redis_private.c - the broker's own redis-server: start, crash, restart, stop. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "broker/store/redis_private.h"
#include "harness.h"

static int pid_of(const char *sock)
{
    redisContext *c = redisConnectUnix(sock);
    if (c == NULL || c->err) {
        if (c)
            redisFree(c);
        return -1;
    }
    redisReply *r = redisCommand(c, "INFO server");
    int pid = -1;
    if (r != NULL && r->type == REDIS_REPLY_STRING) {
        const char *p = strstr(r->str, "process_id:");
        if (p)
            pid = atoi(p + 11);
    }
    if (r)
        freeReplyObject(r);
    redisFree(c);
    return pid;
}

static void test_start_crash_restart_stop(void **state)
{
    (void)state;
    char dir[256], sock[108], err[512];
    zh_tmpdir(dir, sizeof(dir));
    assert_int_equal(redis_private_start(dir, "", sock, sizeof(sock), err, sizeof(err)), ZTB_OK);
    char conf[300];
    struct stat st;
    snprintf(conf, sizeof(conf), "%s/redis", dir);
    assert_int_equal(stat(conf, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);

    int pid = pid_of(sock);
    assert_true(pid > 0);
    redisContext *c = redisConnectUnix(sock);
    redisReply *r = redisCommand(c, "CONFIG GET appendonly");
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    assert_string_equal(r->element[1]->str, "yes");
    freeReplyObject(r);
    r = redisCommand(c, "CONFIG GET port");
    assert_string_equal(r->element[1]->str, "0"); /* no TCP */
    freeReplyObject(r);
    r = redisCommand(c, "SET survives 1");
    freeReplyObject(r);
    r = redisCommand(c, "BGREWRITEAOF");
    freeReplyObject(r);
    redisFree(c);
    usleep(300000);

    /* a crash is followed by a restart on the same socket, data intact */
    kill(pid, SIGKILL);
    int npid = -1;
    for (int i = 0; i < 200 && (npid <= 0 || npid == pid); i++) {
        usleep(50000);
        npid = pid_of(sock);
    }
    assert_true(npid > 0 && npid != pid);
    c = redisConnectUnix(sock);
    r = redisCommand(c, "GET survives");
    /* a restarted Redis answers LOADING until it has read its AOF (slow
     * under the sanitizers) */
    for (int i = 0;
         i < 100 && r != NULL && r->type == REDIS_REPLY_ERROR && strncmp(r->str, "LOADING", 7) == 0;
         i++) {
        freeReplyObject(r);
        usleep(50000);
        r = redisCommand(c, "GET survives");
    }
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    assert_string_equal(r->str, "1");
    freeReplyObject(r);
    redisFree(c);

    redis_private_stop();
    assert_int_equal(pid_of(sock), -1);
    assert_int_not_equal(kill(npid, 0), 0);

    /* a missing binary is a clear start-up error */
    assert_int_not_equal(
        redis_private_start(dir, "/nonexistent/redis-server", sock, sizeof(sock), err, sizeof(err)),
        ZTB_OK);
    assert_non_null(strstr(err, "redis-server"));
    zh_rmtree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_start_crash_restart_stop),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
