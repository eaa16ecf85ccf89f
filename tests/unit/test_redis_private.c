/*
 * test_redis_private.c - the broker's own redis-server: start, crash,
 * restart, stop; its own run directory and socket per start; the data lock
 * that keeps two Redis off one data directory; one broker per state
 * directory; a pid it cannot prove is its own is never signalled.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <signal.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
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

    /* this start's own socket in its own run directory, linked from the
     * stable name */
    char want[300], link[300], target[100];
    snprintf(want, sizeof(want), "%s/redis/run-", dir);
    assert_int_equal(strncmp(sock, want, strlen(want)), 0);
    snprintf(link, sizeof(link), "%s/redis/redis.sock", dir);
    ssize_t tn = readlink(link, target, sizeof(target) - 1);
    assert_true(tn > 0);
    target[tn] = '\0';
    assert_non_null(strstr(sock, target));
    char run[300];
    snprintf(run, sizeof(run), "%s", sock);
    *strrchr(run, '/') = '\0';

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
    /* the run directory and the link are gone, the data stays */
    assert_int_not_equal(stat(run, &st), 0);
    assert_int_not_equal(lstat(link, &st), 0);
    snprintf(conf, sizeof(conf), "%s/redis/appendonlydir", dir);
    assert_int_equal(stat(conf, &st), 0);

    /* a missing binary is a clear start-up error */
    assert_int_not_equal(
        redis_private_start(dir, "/nonexistent/redis-server", sock, sizeof(sock), err, sizeof(err)),
        ZTB_OK);
    assert_non_null(strstr(err, "redis-server"));
    zh_rmtree(dir);
}

/* A second broker on a state directory whose Redis a live broker runs is
 * refused (it used to stop the live one's Redis). */
static void test_second_broker_refused(void **state)
{
    (void)state;
    char dir[256], sock[108], err[512];
    zh_tmpdir(dir, sizeof(dir));
    assert_int_equal(redis_private_start(dir, "", sock, sizeof(sock), err, sizeof(err)), ZTB_OK);
    int pid = pid_of(sock);
    assert_true(pid > 0);
    pid_t child = fork();
    if (child == 0) { /* another broker: a process of its own */
        char s2[108], e2[512];
        ztb_err rv = redis_private_start(dir, "", s2, sizeof(s2), e2, sizeof(e2));
        _exit(rv == ZTB_ERR_STATE && strstr(e2, "another ztb-broker") != NULL ? 0 : 1);
    }
    int status;
    assert_int_equal(waitpid(child, &status, 0), child);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_int_equal(pid_of(sock), pid); /* the live one's Redis is untouched */
    redis_private_stop();
    zh_rmtree(dir);
}

/*
 * A process still holding the data lock (the Redis of a crashed broker
 * finishing its save) delays the start until it lets go; a pid file naming
 * a process that is not our Redis gets it no signal.
 */
static void test_waits_for_the_lock_and_kills_no_stranger(void **state)
{
    (void)state;
    char dir[256], sock[108], err[512], path[300];
    zh_tmpdir(dir, sizeof(dir));
    snprintf(path, sizeof(path), "%s/redis", dir);
    assert_int_equal(mkdir(path, 0700), 0);
    snprintf(path, sizeof(path), "%s/redis/redis.lock", dir);
    int fd = open(path, O_RDWR | O_CREAT, 0600);
    assert_true(fd >= 0);
    assert_int_equal(flock(fd, LOCK_EX), 0);
    pid_t holder = fork();
    if (holder == 0) { /* shares the lock, lets go after 400 ms */
        usleep(400000);
        _exit(0);
    }
    close(fd);
    pid_t stranger = fork();
    if (stranger == 0) {
        pause();
        _exit(0);
    }
    FILE *f;
    snprintf(path, sizeof(path), "%s/redis/redis.pid", dir);
    f = fopen(path, "w");
    fprintf(f, "%d\n", (int)stranger);
    fclose(f);

    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(redis_private_start(dir, "", sock, sizeof(sock), err, sizeof(err)), ZTB_OK);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    assert_true(ms >= 300); /* it waited for the holder */
    int status;
    assert_int_equal(waitpid(holder, &status, 0), holder);
    assert_true(WIFEXITED(status)); /* which left on its own: not killed */
    assert_int_equal(waitpid(stranger, &status, WNOHANG), 0); /* alive */
    assert_true(pid_of(sock) > 0);
    redis_private_stop();
    kill(stranger, SIGKILL);
    waitpid(stranger, NULL, 0);
    zh_rmtree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_start_crash_restart_stop),
        cmocka_unit_test(test_second_broker_refused),
        cmocka_unit_test(test_waits_for_the_lock_and_kills_no_stranger),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
