/*
 * test_redis_preflight.c - the Redis preflight checks against a real
 * redis-server: the INFO field reader and the version comparison (with
 * hostile input), an evicting Redis refused at start naming the fix, the
 * override with its warning, the marker written at the first start, adopted
 * by a new state directory, and a lost or foreign marker making the broker
 * not ready with one log line.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "broker/store/redis_client.h"
#include "broker/store/redis_preflight.h"
#include "common/log.h"
#include "harness.h"
#include "wire/wire.h"

static struct zh_redis rd;
static char g_dir[256];
static char g_log[300];

static int setup(void **state)
{
    (void)state;
    zh_redis_start(&rd);
    struct redis_target t;
    char err[256];
    assert_int_equal(redis_target_parse(rd.url, 0, &t, err, sizeof(err)), ZTB_OK);
    redis_client_init(&t);
    zh_tmpdir(g_dir, sizeof(g_dir));
    snprintf(g_log, sizeof(g_log), "%s/log", g_dir);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    redis_client_shutdown();
    zh_redis_stop(&rd, 1);
    zh_rmtree(g_dir);
    return 0;
}

/* Send the log to a fresh file; its fd. */
static int log_to_file(void)
{
    int fd = open(g_log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    ztb_log_set_fd(fd);
    return fd;
}

/* How often needle occurs in the log file. */
static int log_count(const char *needle)
{
    FILE *f = fopen(g_log, "r");
    assert_non_null(f);
    static char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    int count = 0;
    for (const char *p = buf; (p = strstr(p, needle)) != NULL; p++)
        count++;
    return count;
}

static void cmd(const char *c)
{
    redisContext *ctx = zh_redis_connect(&rd);
    redisReply *r = redisCommand(ctx, c);
    assert_non_null(r);
    assert_int_not_equal(r->type, REDIS_REPLY_ERROR);
    freeReplyObject(r);
    redisFree(ctx);
}

static void test_info_field(void **state)
{
    (void)state;
    const char info[] = "# Server\r\nredis_version:7.0.15\r\nredis_mode:standalone\r\n"
                        "# Memory\r\nmaxmemory_policy:noeviction\r\nlast:x";
    char v[32];
    assert_int_equal(redis_info_field(info, strlen(info), "redis_version", v, sizeof(v)), 1);
    assert_string_equal(v, "7.0.15");
    assert_int_equal(redis_info_field(info, strlen(info), "maxmemory_policy", v, sizeof(v)), 1);
    assert_string_equal(v, "noeviction");
    assert_int_equal(redis_info_field(info, strlen(info), "last", v, sizeof(v)), 1);
    assert_string_equal(v, "x");
    /* a prefix of a field is not the field; missing fields; too long */
    assert_int_equal(redis_info_field(info, strlen(info), "redis", v, sizeof(v)), 0);
    assert_string_equal(v, "");
    assert_int_equal(redis_info_field(info, strlen(info), "nothing", v, sizeof(v)), 0);
    assert_int_equal(redis_info_field(info, strlen(info), "redis_version", v, 4), 0);
    /* the length bounds the read: a field past it is not seen */
    assert_int_equal(redis_info_field(info, 10, "redis_version", v, sizeof(v)), 0);
    const char nul[] = "a:b\0c\r\n";
    assert_int_equal(redis_info_field(nul, sizeof(nul) - 1, "a", v, sizeof(v)), 0);
}

static void test_version(void **state)
{
    (void)state;
    assert_true(redis_version_at_least("6.2.0", 6, 2));
    assert_true(redis_version_at_least("6.2", 6, 2));
    assert_true(redis_version_at_least("7.0.15", 6, 2));
    assert_true(redis_version_at_least("10.0.0", 6, 2));
    assert_false(redis_version_at_least("6.0.16", 6, 2));
    assert_false(redis_version_at_least("5.9.9", 6, 2));
    assert_false(redis_version_at_least("", 6, 2));
    assert_false(redis_version_at_least("7", 6, 2));
    assert_false(redis_version_at_least("x.y", 6, 2));
    assert_false(redis_version_at_least("7.0x", 6, 2));
    assert_false(redis_version_at_least("9999999.1", 6, 2));
    assert_false(redis_version_at_least(NULL, 6, 2));
}

static void test_eviction_refused_and_overridden(void **state)
{
    (void)state;
    char st[300], err[1024];
    snprintf(st, sizeof(st), "%s/evict", g_dir);
    mkdir(st, 0700);
    cmd("CONFIG SET maxmemory-policy allkeys-lru");
    int fd = log_to_file();
    redis_preflight_reset();
    assert_int_equal(redis_preflight_start(st, 0, err, sizeof(err)), ZTB_ERR_STATE);
    assert_non_null(strstr(err, "allkeys-lru"));
    assert_non_null(strstr(err, "CONFIG SET maxmemory-policy noeviction"));
    assert_non_null(strstr(err, "--redis-allow-eviction"));

    redis_preflight_reset();
    assert_int_equal(redis_preflight_start(st, 1, err, sizeof(err)), ZTB_OK);
    assert_null(redis_preflight_check());
    assert_int_equal(log_count("redis.eviction_allowed"), 1);
    /* persistence is reported at start */
    assert_true(log_count("\"aof\":") >= 1);
    ztb_log_set_fd(2);
    close(fd);
    cmd("CONFIG SET maxmemory-policy noeviction");
    cmd("DEL " ZTB_WIRE_MARKER_KEY);
    redis_preflight_reset();
}

static void test_marker_lifecycle(void **state)
{
    (void)state;
    char st[300], st2[300], file[340], err[1024];
    snprintf(st, sizeof(st), "%s/m1", g_dir);
    snprintf(st2, sizeof(st2), "%s/m2", g_dir);
    mkdir(st, 0700);
    mkdir(st2, 0700);
    snprintf(file, sizeof(file), "%s/redis.marker", st);
    int fd = log_to_file();

    /* first start: the key is written, then the file */
    redis_preflight_reset();
    assert_int_equal(redis_preflight_start(st, 0, err, sizeof(err)), ZTB_OK);
    assert_null(redis_preflight_check());
    struct stat sb;
    assert_int_equal(stat(file, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    redisContext *c = zh_redis_connect(&rd);
    redisReply *r = redisCommand(c, "GET " ZTB_WIRE_MARKER_KEY);
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    char mark[80];
    snprintf(mark, sizeof(mark), "%s", r->str);
    freeReplyObject(r);
    redisFree(c);

    /* a second start on it: unchanged */
    redis_preflight_reset();
    assert_int_equal(redis_preflight_start(st, 0, err, sizeof(err)), ZTB_OK);
    assert_null(redis_preflight_check());

    /* another state directory (a replica) adopts the same marker */
    redis_preflight_reset();
    assert_int_equal(redis_preflight_start(st2, 0, err, sizeof(err)), ZTB_OK);
    assert_null(redis_preflight_check());
    char file2[340], buf[80] = "";
    snprintf(file2, sizeof(file2), "%s/redis.marker", st2);
    FILE *f = fopen(file2, "r");
    assert_non_null(f);
    assert_non_null(fgets(buf, sizeof(buf), f));
    fclose(f);
    assert_int_equal(strncmp(buf, mark, strlen(mark)), 0);

    /* FLUSHALL behind its back: not ready, one log line, every check */
    cmd("FLUSHALL");
    usleep(1100000); /* the last result is kept for a second */
    assert_string_equal(redis_preflight_check(), "data_lost");
    usleep(1100000);
    assert_string_equal(redis_preflight_check(), "data_lost");
    assert_int_equal(log_count("redis.data_lost"), 1);
    if (log_count("remove") < 1) {
        FILE *lf = fopen(g_log, "r");
        char line[4096];
        while (lf != NULL && fgets(line, sizeof(line), lf) != NULL)
            fputs(line, stderr);
        if (lf != NULL)
            fclose(lf);
        fail_msg("the data_lost line does not say what to do");
    }
    /* nothing repaired behind the operator's back: the key stays gone */
    c = zh_redis_connect(&rd);
    r = redisCommand(c, "EXISTS " ZTB_WIRE_MARKER_KEY);
    assert_int_equal(r->integer, 0);
    freeReplyObject(r);
    /* another installation's marker: not ready either */
    r = redisCommand(c, "SET %s %s", ZTB_WIRE_MARKER_KEY, "0123456789abcdef0123456789abcdef 1");
    assert_int_equal(r->type, REDIS_REPLY_STATUS);
    freeReplyObject(r);
    redisFree(c);
    usleep(1100000);
    assert_string_equal(redis_preflight_check(), "foreign_marker");
    /* and the data back (a restore): ready again, said once */
    int oks = log_count("redis.preflight_ok");
    c = zh_redis_connect(&rd);
    r = redisCommand(c, "SET %s %s", ZTB_WIRE_MARKER_KEY, mark);
    freeReplyObject(r);
    redisFree(c);
    usleep(1100000);
    assert_null(redis_preflight_check());
    assert_int_equal(log_count("redis.preflight_ok"), oks + 1);

    /* a start on a state directory that knows the marker, with the data lost */
    cmd("FLUSHALL");
    redis_preflight_reset();
    assert_int_equal(redis_preflight_start(st, 0, err, sizeof(err)), ZTB_OK);
    assert_string_equal(redis_preflight_check(), "data_lost");
    ztb_log_set_fd(2);
    close(fd);
    redis_preflight_reset();
    cmd("FLUSHALL");
}

/* Redis unreachable at start: the start goes on, not ready until checked. */
static void test_unreachable_is_unchecked(void **state)
{
    (void)state;
    char st[300], err[512];
    snprintf(st, sizeof(st), "%s/down", g_dir);
    mkdir(st, 0700);
    zh_redis_kill(&rd);
    redis_preflight_reset();
    assert_int_equal(redis_preflight_start(st, 0, err, sizeof(err)), ZTB_OK);
    assert_string_equal(redis_preflight_check(), "unchecked");
    zh_redis_restart(&rd);
    const char *why = "unchecked";
    for (int i = 0; i < 50 && why != NULL; i++) {
        usleep(100000);
        why = redis_preflight_check();
    }
    assert_null(why);
    redis_preflight_reset();
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_info_field),
        cmocka_unit_test(test_version),
        cmocka_unit_test(test_eviction_refused_and_overridden),
        cmocka_unit_test(test_marker_lifecycle),
        cmocka_unit_test(test_unreachable_is_unchecked),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
