/*
 * test_audit.c - the writer: its lines chain (checked with the verifier,
 * audit/verify.h), secrets are redacted, tampering is found, crashes
 * recover, concurrent writers keep the chain, the stream gets every line,
 * the fsync timer ignores wall clock steps.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "audit/verify.h"
#include "broker/audit/audit.h"
#include "broker/audit/audit_stream.h"
#include "broker/store/redis_client.h"
#include "harness.h"

static char *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)len + 1);
    assert_int_equal(fread(s, 1, (size_t)len, f), (size_t)len);
    s[len] = '\0';
    fclose(f);
    *n = (size_t)len;
    return s;
}

static void spit(const char *path, const char *s, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(s, 1, n, f), n);
    fclose(f);
}

static ztb_err verify(const char *path, uint64_t *lines, uint64_t *bad, char *why)
{
    return audit_verify_file(path, lines, bad, why, 256);
}

static void test_chain_and_tamper(void **state)
{
    (void)state;
    char dir[256], path[300], why[256], err[256];
    zh_tmpdir(dir, sizeof(dir));
    snprintf(path, sizeof(path), "%s/audit.log", dir);
    assert_int_equal(audit_open(dir, 0, err, sizeof(err)), ZTB_OK);
    for (int i = 0; i < 10; i++)
        assert_int_equal(audit("token.issued", "agent:billing-bot", 0, ZTB_F_INT("i", i),
                               ZTB_F_STR("audience", "payments"),
                               ZTB_F_STR("client_assertion", "secret-value"),
                               ZTB_F_STR("note", "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhIn0.sig"),
                               ZTB_F_STR("agent_text", "evil\"}\n{\"seq\":99")),
                         ZTB_OK);
    audit_close();
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);

    uint64_t lines, bad;
    assert_int_equal(verify(path, &lines, &bad, why), ZTB_OK);
    assert_int_equal(lines, 11); /* audit.opened + 10 */
    size_t n;
    char *s = slurp(path, &n);
    assert_null(strstr(s, "secret-value"));
    assert_null(strstr(s, "eyJhbGci"));
    assert_non_null(strstr(s, "\"client_assertion\":\"[redacted]\""));
    assert_non_null(strstr(s, "\"seq\":1,"));
    assert_non_null(
        strstr(s, "\"prev\":\"0000000000000000000000000000000000000000000000000000000000000000\""));

    /* change one byte of line 3: the chain breaks at line 4 */
    char *l3 = s;
    for (int i = 0; i < 2; i++)
        l3 = strchr(l3, '\n') + 1;
    char *aud = strstr(l3, "payments");
    aud[0] = 'P';
    spit(path, s, n);
    assert_int_equal(verify(path, &lines, &bad, why), ZTB_ERR_SIGNATURE);
    assert_int_equal(bad, 4);
    assert_non_null(strstr(why, "prev hash"));
    aud[0] = 'p';

    /* remove line 5: seq jumps */
    char *l5 = s;
    for (int i = 0; i < 4; i++)
        l5 = strchr(l5, '\n') + 1;
    char *l6 = strchr(l5, '\n') + 1;
    size_t cutlen = (size_t)(l6 - l5);
    memmove(l5, l6, n - (size_t)(l6 - s));
    spit(path, s, n - cutlen);
    assert_int_equal(verify(path, &lines, &bad, why), ZTB_ERR_SIGNATURE);
    assert_int_equal(bad, 5);
    assert_non_null(strstr(why, "seq"));
    free(s);
    zh_rmtree(dir);
}

static void test_reopen_and_partial_line(void **state)
{
    (void)state;
    char dir[256], path[300], why[256], err[256];
    zh_tmpdir(dir, sizeof(dir));
    snprintf(path, sizeof(path), "%s/audit.log", dir);
    assert_int_equal(audit_open(dir, 0, err, sizeof(err)), ZTB_OK);
    assert_int_equal(audit("a", "broker", 0), ZTB_OK);
    audit_close();
    assert_int_equal(audit_open(dir, 0, err, sizeof(err)), ZTB_OK); /* the chain continues */
    assert_int_equal(audit("b", "broker", 1), ZTB_OK);
    audit_close();
    uint64_t lines, bad;
    assert_int_equal(verify(path, &lines, &bad, why), ZTB_OK);
    assert_int_equal(lines, 4);

    /* a crash mid-write leaves a partial line: reopening cuts it and says so */
    FILE *f = fopen(path, "a");
    fputs("{\"seq\":5,\"ts\":\"2026-", f);
    fclose(f);
    assert_int_equal(verify(path, &lines, &bad, why), ZTB_ERR_MALFORMED);
    assert_int_equal(audit_open(dir, 0, err, sizeof(err)), ZTB_OK);
    audit_close();
    assert_int_equal(verify(path, &lines, &bad, why), ZTB_OK);
    assert_int_equal(lines, 6);
    size_t n;
    char *s = slurp(path, &n);
    assert_non_null(strstr(s, "audit.partial_line_removed"));
    free(s);

    /* a file that is not an audit log is refused, not appended to */
    spit(path, "hello\n", 6);
    assert_int_equal(audit_open(dir, 0, err, sizeof(err)), ZTB_ERR_MALFORMED);
    assert_int_equal(verify(path, &lines, &bad, why), ZTB_ERR_MALFORMED);
    assert_int_equal(verify("/nonexistent/audit.log", &lines, &bad, why), ZTB_ERR_IO);
    assert_int_equal(audit("after-close", "broker", 0), ZTB_ERR_STATE);
    zh_rmtree(dir);
}

static void *writer(void *arg)
{
    (void)arg;
    for (int i = 0; i < 500; i++)
        if (audit("token.issued", "agent:t", 0, ZTB_F_INT("i", i)) != ZTB_OK)
            return (void *)1;
    return NULL;
}

/* Fields too large for one line: the record is kept, marked, and chained. */
static void test_oversized_fields(void **state)
{
    (void)state;
    char dir[256], path[300], why[256], err[256];
    zh_tmpdir(dir, sizeof(dir));
    snprintf(path, sizeof(path), "%s/audit.log", dir);
    assert_int_equal(audit_open(dir, 0, err, sizeof(err)), ZTB_OK);
    char *big = malloc(20000);
    memset(big, 'x', 19999);
    big[19999] = '\0';
    assert_int_equal(
        audit("token.denied", "agent:a", 0, ZTB_F_STR("agent", "a"), ZTB_F_STR("reason", big)),
        ZTB_OK);
    assert_int_equal(audit("after", "broker", 0, ZTB_F_INT("n", 1)), ZTB_OK);
    audit_close();
    free(big);
    uint64_t lines, bad;
    assert_int_equal(verify(path, &lines, &bad, why), ZTB_OK);
    assert_int_equal(lines, 3);
    size_t n;
    char *s = slurp(path, &n);
    const char *line = strstr(s, "\"event\":\"token.denied\"");
    assert_non_null(line);
    const char *eol = strchr(line, '\n');
    assert_non_null(eol);
    assert_true(eol - line < 8192);
    assert_non_null(strstr(line, "\"actor\":\"agent:a\",\"fields_truncated\":true}\n"));
    assert_non_null(strstr(s, "\"event\":\"after\",\"actor\":\"broker\",\"n\":1}"));
    free(s);
    zh_rmtree(dir);
}

static void test_concurrent_writers_and_stream(void **state)
{
    (void)state;
    struct zh_redis rd;
    zh_redis_start(&rd);
    struct redis_target t;
    char err[256], dir[256], path[300], why[256];
    assert_int_equal(redis_target_parse(rd.url, 0, &t, err, sizeof(err)), ZTB_OK);
    t.timeout_ms = ZH_REDIS_TIMEOUT_MS;
    redis_client_init(&t);
    zh_tmpdir(dir, sizeof(dir));
    snprintf(path, sizeof(path), "%s/audit.log", dir);
    assert_int_equal(audit_open(dir, 1, err, sizeof(err)), ZTB_OK);
    pthread_t th[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&th[i], NULL, writer, NULL);
    for (int i = 0; i < 4; i++) {
        void *rv;
        pthread_join(th[i], &rv);
        assert_null(rv);
    }
    assert_int_equal(audit_lines_written(), 2001);
    audit_close();
    uint64_t lines, bad;
    assert_int_equal(verify(path, &lines, &bad, why), ZTB_OK);
    assert_int_equal(lines, 2001);
    redisContext *c = zh_redis_connect(&rd);
    redisReply *r = redisCommand(c, "XLEN ztb:audit");
    assert_int_equal(r->integer + (long long)audit_stream_dropped(), 2001);
    assert_int_equal(audit_stream_dropped(), 0);
    freeReplyObject(r);
    redisFree(c);
    redis_client_shutdown();
    zh_redis_stop(&rd, 1);
    zh_rmtree(dir);
}

/* This process's CPU time in ms (CLOCK_PROCESS_CPUTIME_ID: no wall clock). */
static long long cpu_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * Run in a copy of this program with the clockshift library loaded: open
 * the log, write a line that waits for the periodic fsync, then step the
 * wall clock back an hour. The background thread's fsync timer measures a
 * duration: it must neither stall for the hour nor spin through it (with a
 * CLOCK_REALTIME timer it did: its deadline was an hour away by the clock
 * it read and already past by the clock it slept on). Returns an exit code.
 */
static int clock_step_child(const char *dir)
{
    char err[256];
    if (audit_open(dir, 0, err, sizeof(err)) != ZTB_OK) {
        fprintf(stderr, "audit_open: %s\n", err);
        return 2;
    }
    audit("test.before_step", "broker", 0, ZTB_F_INT("n", 1));
    struct timespec pause = {.tv_nsec = 100000000L};
    nanosleep(&pause, NULL);
    setenv("ZTB_CLOCK_OFFSET_S", "-3600", 1);
    long long c0 = cpu_ms();
    struct timespec wait = {.tv_sec = 2, .tv_nsec = 500000000L};
    while (nanosleep(&wait, &wait) != 0)
        ;
    long long spent = cpu_ms() - c0;
    audit("test.after_step", "broker", 0, ZTB_F_INT("n", 2));
    audit_close();
    if (spent > 300) {
        fprintf(stderr, "the audit thread spent %lld ms of CPU in 2.5 s after the step\n", spent);
        return 1;
    }
    return 0;
}

/* The periodic fsync runs on CLOCK_MONOTONIC: a wall clock step is nothing to it. */
static void test_fsync_timer_ignores_wall_clock_steps(void **state)
{
    (void)state;
    char dir[256], self[512], asan[512];
    zh_tmpdir(dir, sizeof(dir));
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    assert_true(n > 0);
    self[n] = '\0';
    const char *cur = getenv("ASAN_OPTIONS");
    snprintf(asan, sizeof(asan), "%s%sverify_asan_link_order=0", cur ? cur : "", cur ? ":" : "");
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        setenv("LD_PRELOAD", zh_clockshift_lib(), 1);
        setenv("ZTB_CLOCK_OFFSET_S", "0", 1);
        setenv("ASAN_OPTIONS", asan, 1);
        execl(self, self, "--clock-step-child", dir, (char *)NULL);
        _exit(127);
    }
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
    char path[300];
    snprintf(path, sizeof(path), "%s/audit.log", dir);
    uint64_t lines, bad;
    char why[256];
    assert_int_equal(verify(path, &lines, &bad, why), ZTB_OK);
    assert_true(lines >= 2);
    zh_rmtree(dir);
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--clock-step-child") == 0)
        return clock_step_child(argv[2]);
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chain_and_tamper),
        cmocka_unit_test(test_reopen_and_partial_line),
        cmocka_unit_test(test_oversized_fields),
        cmocka_unit_test(test_concurrent_writers_and_stream),
        cmocka_unit_test(test_fsync_timer_ignores_wall_clock_steps),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
