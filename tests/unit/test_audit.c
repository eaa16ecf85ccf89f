/*
 * test_audit.c - the writer: its lines chain (checked with the verifier,
 * audit/verify.h), secrets are redacted, tampering is found, crashes
 * recover, concurrent writers keep the chain, the stream gets every line,
 * the fsync timer ignores wall clock steps. A full disk (RLIMIT_FSIZE: a
 * write cut short at a byte we choose) leaves no half line; records of
 * decisions in effect wait in memory and are written in order when the disk
 * allows; the queue's overflow is counted and recorded. Signed checkpoints
 * (a local key stands in for the signer) verify with audit_verify_files.
 * One writer per file: a second is refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "audit/chain.h"
#include "audit/verify.h"
#include "broker/audit/audit.h"
#include "broker/audit/audit_stream.h"
#include "broker/store/redis_client.h"
#include "harness.h"
#include "pki/jws.h"
#include "pki/key.h"
#include "pki/keyset.h"

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

    /* a crash mid-write leaves a partial line: reopening cuts it and says
     * so, with the length and SHA-256 of what it cut (evidence, not the
     * bytes) */
    static const char torn[] = "{\"seq\":5,\"ts\":\"2026-";
    FILE *f = fopen(path, "a");
    fputs(torn, f);
    fclose(f);
    assert_int_equal(verify(path, &lines, &bad, why), ZTB_ERR_MALFORMED);
    assert_int_equal(audit_open(dir, 0, err, sizeof(err)), ZTB_OK);
    audit_close();
    assert_int_equal(verify(path, &lines, &bad, why), ZTB_OK);
    assert_int_equal(lines, 6);
    size_t n;
    char *s = slurp(path, &n);
    assert_non_null(strstr(s, "audit.partial_line_removed"));
    char torn_hash[AUDIT_HASH_HEX + 1], want[160];
    audit_chain_hash(torn, sizeof(torn) - 1, torn_hash);
    snprintf(want, sizeof(want), "\"bytes\":%zu,\"sha256\":\"%s\"", sizeof(torn) - 1, torn_hash);
    if (strstr(s, want) == NULL)
        fail_msg("no %s in:\n%s", want, s);
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

/* ---- a full disk --------------------------------------------------------- */

/* Let the file grow to at most bytes (a write across it is cut short there,
 * as on a full disk); RLIM_INFINITY to lift it. */
static void file_limit(rlim_t bytes)
{
    struct rlimit rl;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &rl), 0);
    rl.rlim_cur = bytes;
    if (rl.rlim_max != RLIM_INFINITY && bytes > rl.rlim_max)
        rl.rlim_cur = rl.rlim_max;
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &rl), 0);
}

static off_t file_size(const char *path)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return st.st_size;
}

/* The attack: a write cut short leaves half a line, and the next line is
 * appended after it; the chain then looks tampered with forever. */
static void test_short_write_is_rolled_back(void **state)
{
    (void)state;
    char dir[256], path[300], why[256], err[256];
    zh_tmpdir(dir, sizeof(dir));
    snprintf(path, sizeof(path), "%s/audit.log", dir);
    signal(SIGXFSZ, SIG_IGN);
    assert_int_equal(audit_open(dir, 0, err, sizeof(err)), ZTB_OK);
    assert_int_equal(audit("a", "broker", 0, ZTB_F_INT("n", 1)), ZTB_OK);
    off_t good = file_size(path);
    assert_true(audit_writable());
    file_limit((rlim_t)good + 40); /* room for 40 bytes of the next line */
    uint64_t failures = audit_write_failures();
    assert_int_equal(audit("token.issued", "agent:a", 0, ZTB_F_STR("jti", "j1")), ZTB_ERR_IO);
    assert_int_equal(file_size(path), good); /* nothing of it is left */
    assert_false(audit_writable());
    assert_true(audit_write_failures() > failures);
    file_limit(RLIM_INFINITY);
    assert_int_equal(audit("token.issued", "agent:a", 0, ZTB_F_STR("jti", "j2")), ZTB_OK);
    assert_true(audit_writable());
    audit_close();
    uint64_t lines, bad;
    assert_int_equal(verify(path, &lines, &bad, why), ZTB_OK);
    assert_int_equal(lines, 4); /* opened, a, resumed, j2: the refused j1 is not there */
    size_t n;
    char *s = slurp(path, &n);
    assert_non_null(
        strstr(s, "\"event\":\"audit.resumed\",\"actor\":\"broker\",\"failed_writes\""));
    assert_null(strstr(s, "\"j1\""));
    assert_non_null(strstr(s, "\"j2\""));
    free(s);
    zh_rmtree(dir);
}

static void test_pending_records_wait_for_the_disk(void **state)
{
    (void)state;
    char dir[256], path[300], why[256], err[256];
    zh_tmpdir(dir, sizeof(dir));
    snprintf(path, sizeof(path), "%s/audit.log", dir);
    signal(SIGXFSZ, SIG_IGN);
    assert_int_equal(audit_open(dir, 0, err, sizeof(err)), ZTB_OK);
    int pending = 9;
    assert_int_equal(audit_queued("revocation.applied", "operator:uid=0", 1, &pending,
                                  ZTB_F_STR("agent", "first")),
                     ZTB_OK);
    assert_int_equal(pending, 0); /* written at once */
    file_limit((rlim_t)file_size(path));
    assert_int_equal(audit_queued("revocation.applied", "operator:uid=0", 1, &pending,
                                  ZTB_F_STR("agent", "second")),
                     ZTB_OK);
    assert_int_equal(pending, 1);
    assert_int_equal(audit_pending_records(), 1);
    assert_false(audit_writable());
    /* a decision that needs its record now is refused meanwhile */
    assert_int_equal(audit("token.issued", "agent:a", 0, ZTB_F_STR("jti", "refused")), ZTB_ERR_IO);
    /* fill the queue; one more is lost, and counted */
    uint64_t lost = audit_records_lost();
    for (int i = 1; i < AUDIT_PENDING_MAX; i++)
        assert_int_equal(
            audit_queued("revocation.applied", "broker", 0, &pending, ZTB_F_INT("i", i)), ZTB_OK);
    assert_int_equal(audit_pending_records(), AUDIT_PENDING_MAX);
    assert_int_equal(
        audit_queued("revocation.applied", "broker", 0, &pending, ZTB_F_STR("agent", "overflow")),
        ZTB_ERR_IO);
    assert_int_equal(pending, 0);
    assert_int_equal(audit_records_lost(), lost + 1);
    /* the disk has room again: within the retry period everything is
     * written, in order, without a new record asking for it */
    file_limit(RLIM_INFINITY);
    for (int i = 0; i < 60 && !audit_writable(); i++)
        usleep(50000);
    assert_true(audit_writable());
    assert_int_equal(audit_pending_records(), 0);
    assert_int_equal(audit("token.issued", "agent:a", 0, ZTB_F_STR("jti", "after")), ZTB_OK);
    audit_close();
    uint64_t lines, bad;
    assert_int_equal(verify(path, &lines, &bad, why), ZTB_OK);
    /* opened, first, second + 1023, records_lost, resumed, after */
    assert_int_equal(lines, 3 + (AUDIT_PENDING_MAX - 1) + 3);
    size_t n;
    char *s = slurp(path, &n);
    const char *second = strstr(s, "\"agent\":\"second\",\"queued_at\":\"");
    const char *last = strstr(s, "\"i\":1023,\"queued_at\"");
    const char *lostl = strstr(s, "\"event\":\"audit.records_lost\"");
    const char *resumed = strstr(s, "\"event\":\"audit.resumed\"");
    const char *after = strstr(s, "\"jti\":\"after\"");
    assert_non_null(second);
    assert_non_null(last);
    assert_non_null(lostl);
    assert_non_null(resumed);
    assert_non_null(after);
    assert_true(second < last && last < lostl && lostl < resumed && resumed < after);
    assert_non_null(strstr(lostl, "\"count\":1,"));
    assert_null(strstr(s, "overflow"));
    assert_null(strstr(s, "\"refused\""));
    free(s);
    zh_rmtree(dir);
}

/* ---- signed checkpoints -------------------------------------------------- */

static ztb_err local_sign(void *arg, const void *payload, size_t n, ztb_buf *jws)
{
    const ztb_jws_sign_opts o = {.typ = AUDIT_CHECKPOINT_TYP};
    return ztb_jws_sign((const ztb_key *)arg, &o, payload, n, jws);
}

static void test_checkpoints(void **state)
{
    (void)state;
    char dir[256], path[300], err[256];
    zh_tmpdir(dir, sizeof(dir));
    snprintf(path, sizeof(path), "%s/audit.log", dir);
    ztb_key *k;
    assert_int_equal(ztb_key_generate(&k), ZTB_OK);
    assert_int_equal(audit_set_replica("bad id"), ZTB_ERR_INVALID_ARG);
    assert_int_equal(audit_set_replica("replica-1"), ZTB_OK);
    assert_int_equal(audit_open(dir, 0, err, sizeof(err)), ZTB_OK);
    const struct audit_checkpoint_opts o = {.sign = local_sign, .arg = k, .every_records = 5};
    uint64_t before = audit_checkpoints_written();
    assert_int_equal(audit_checkpoints_start(&o), ZTB_OK);
    assert_int_equal(audit_checkpoints_start(&o), ZTB_ERR_STATE);
    /* a checkpoint after every 5 records (the thread signs off the writers' path) */
    for (uint64_t batch = 1; batch <= 2; batch++) {
        for (int i = 0; i < 5; i++)
            assert_int_equal(audit("token.issued", "agent:a", 0, ZTB_F_INT("i", i)), ZTB_OK);
        for (int i = 0; i < 250 && audit_checkpoints_written() < before + batch; i++)
            usleep(20000);
        assert_int_equal(audit_checkpoints_written(), before + batch);
    }
    assert_int_equal(audit("token.issued", "agent:a", 0, ZTB_F_INT("i", 99)), ZTB_OK);
    audit_close(); /* a last one covers everything */
    assert_int_equal(audit_set_replica(NULL), ZTB_OK);

    const char *kid = ztb_key_kid(k);
    ztb_keyset *ks;
    assert_int_equal(ztb_keyset_new(&k, &kid, 1, &ks), ZTB_OK);
    const char *paths[] = {path};
    const struct audit_verify_opts vo = {.keys = ks};
    struct audit_verify_report r;
    ztb_err vrv = audit_verify_files(paths, 1, &vo, &r);
    if (vrv != ZTB_OK)
        fprintf(stderr, "line %llu: %s\n", (unsigned long long)r.bad_line, r.why);
    assert_int_equal(vrv, ZTB_OK);
    assert_string_equal(r.replica, "replica-1");
    assert_true(r.checkpoints >= 3);
    assert_int_equal(r.checkpoint_at, r.last_seq); /* the log ends with one */
    assert_int_equal(r.proven_to, r.last_seq - 1);
    /* the file cut at its end: the anchor from before shows it */
    char anchor[128];
    snprintf(anchor, sizeof(anchor), "%llu:%s", (unsigned long long)r.checkpoint_at,
             r.checkpoint_hash);
    off_t size = file_size(path);
    size_t n;
    char *s = slurp(path, &n);
    char *lastnl = s + n - 1;
    *lastnl = '\0';
    char *cut = strrchr(s, '\n');
    assert_int_equal(truncate(path, (off_t)(cut - s) + 1), 0);
    assert_true(file_size(path) < size);
    const struct audit_verify_opts va = {.keys = ks, .anchor = anchor};
    assert_int_equal(audit_verify_files(paths, 1, &va, &r), ZTB_ERR_TRUNCATED);
    free(s);
    ztb_keyset_free(ks);
    ztb_key_free(k);
    zh_rmtree(dir);
}

/* logrotate moves the log away and sends SIGHUP: the chain goes on in the
 * new file, and the two verify as one; another's file is never written. */
static void test_reopen_after_rotation(void **state)
{
    (void)state;
    char dir[256], path[300], old[320], err[256];
    zh_tmpdir(dir, sizeof(dir));
    snprintf(path, sizeof(path), "%s/audit.log", dir);
    snprintf(old, sizeof(old), "%s/audit.log.1", dir);
    assert_int_equal(audit_reopen(err, sizeof(err)), ZTB_ERR_STATE);
    assert_int_equal(audit_open(dir, 0, err, sizeof(err)), ZTB_OK);
    assert_int_equal(audit("a", "broker", 0), ZTB_OK);
    assert_int_equal(audit_reopen(err, sizeof(err)), ZTB_OK); /* not moved: nothing */
    assert_int_equal(rename(path, old), 0);
    assert_int_equal(audit("b", "broker", 0), ZTB_OK); /* still into the moved file */
    assert_int_equal(audit_reopen(err, sizeof(err)), ZTB_OK);
    assert_int_equal(audit("c", "broker", 0), ZTB_OK);
    /* a file put there by someone else is not taken over */
    char other[320];
    snprintf(other, sizeof(other), "%s/audit.log.2", dir);
    assert_int_equal(rename(path, other), 0);
    spit(path, "someone else's\n", 15);
    assert_int_equal(audit_reopen(err, sizeof(err)), ZTB_ERR_EXISTS);
    assert_int_equal(audit("d", "broker", 0), ZTB_OK); /* into audit.log.2 */
    audit_close();
    const char *paths[] = {old, other};
    struct audit_verify_report r;
    assert_int_equal(audit_verify_files(paths, 2, NULL, &r), ZTB_OK);
    assert_int_equal(r.last_seq, 6); /* opened a b | reopened c d */
    size_t n;
    char *s = slurp(other, &n);
    assert_non_null(strstr(s, "\"seq\":4,"));
    assert_non_null(strstr(s, "\"event\":\"audit.reopened\""));
    free(s);
    const char *second[] = {other};
    assert_int_equal(audit_verify_files(second, 1, NULL, &r), ZTB_ERR_TRUNCATED);
    zh_rmtree(dir);
}

/* 1 if another open file description cannot take path's lock (a second
 * broker would be refused). */
static int locked_by_another(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    assert_true(fd >= 0);
    int locked = flock(fd, LOCK_EX | LOCK_NB) != 0 && errno == EWOULDBLOCK;
    close(fd);
    return locked;
}

/* Two brokers on one audit directory (a shared volume, a restart while the
 * old process still runs) would both continue the chain from the same
 * tail: two lines with one seq, and a log that never verifies again. The
 * writer holds its file locked, so a second writer is refused before it
 * writes anything; the file a reopen or a rotation goes on in is locked
 * too, and the lock goes with the close. */
static void test_one_writer_per_log(void **state)
{
    (void)state;
    char dir[256], path[300], old[320], err[256];
    zh_tmpdir(dir, sizeof(dir));
    snprintf(path, sizeof(path), "%s/audit.log", dir);
    snprintf(old, sizeof(old), "%s/audit.log.1", dir);
    /* another writer has the log */
    int other = open(path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    assert_true(other >= 0);
    assert_int_equal(flock(other, LOCK_EX | LOCK_NB), 0);
    assert_int_equal(audit_open(dir, 0, err, sizeof(err)), ZTB_ERR_EXISTS);
    assert_non_null(strstr(err, "another process"));
    assert_int_equal(audit("refused", "broker", 0), ZTB_ERR_STATE);
    close(other);
    assert_int_equal(file_size(path), 0); /* nothing was written into it */

    assert_int_equal(audit_open(dir, 0, err, sizeof(err)), ZTB_OK);
    assert_true(locked_by_another(path));
    /* moved away and reopened (logrotate): the new file is held too */
    assert_int_equal(rename(path, old), 0);
    assert_int_equal(audit_reopen(err, sizeof(err)), ZTB_OK);
    assert_true(locked_by_another(path));
    /* rotated by size: the new file is held too */
    uint64_t rot0 = audit_rotations();
    audit_set_max_bytes(1);
    assert_int_equal(audit("a", "broker", 0), ZTB_OK);
    audit_set_max_bytes(0);
    assert_int_equal(audit_rotations(), rot0 + 1);
    assert_true(locked_by_another(path));
    audit_close();
    assert_false(locked_by_another(path));
    zh_rmtree(dir);
}

/* An empty audit.log beside rotated files: a crash right after a size
 * rotation renamed its new, empty file over audit.log (before the file's
 * first line), or logrotate's move and a restart before the SIGHUP. The
 * next start goes on with the chain of the rotated file whose last seq is
 * highest (logrotate's .1 is its newest), so the files still verify as
 * one, instead of starting a second chain at seq 1 from the genesis hash. */
static void test_empty_log_beside_rotated_files(void **state)
{
    (void)state;
    char dir[256], path[300], one[320], two[320], err[256];
    zh_tmpdir(dir, sizeof(dir));
    snprintf(path, sizeof(path), "%s/audit.log", dir);
    snprintf(one, sizeof(one), "%s/audit.log.1", dir);
    snprintf(two, sizeof(two), "%s/audit.log.2", dir);
    assert_int_equal(audit_open(dir, 0, err, sizeof(err)), ZTB_OK);
    assert_int_equal(audit("a", "broker", 0), ZTB_OK);
    audit_close();
    size_t n;
    char *s = slurp(path, &n);
    spit(two, s, n); /* an older copy: seq 1..2 */
    free(s);
    assert_int_equal(audit_open(dir, 0, err, sizeof(err)), ZTB_OK);
    assert_int_equal(audit("b", "broker", 0), ZTB_OK);
    audit_close();
    assert_int_equal(rename(path, one), 0); /* seq 1..4 */
    spit(path, "", 0);
    assert_int_equal(audit_open(dir, 0, err, sizeof(err)), ZTB_OK);
    assert_int_equal(audit("c", "broker", 0), ZTB_OK);
    audit_close();
    const char *paths[] = {one, path};
    struct audit_verify_report r;
    ztb_err rv = audit_verify_files(paths, 2, NULL, &r);
    if (rv != ZTB_OK)
        fail_msg("file %zu line %llu: %s", r.bad_file, (unsigned long long)r.bad_line, r.why);
    assert_int_equal(r.last_seq, 6); /* opened a | opened b || opened c */
    s = slurp(path, &n);
    assert_non_null(strstr(s, "\"seq\":5,"));
    assert_non_null(strstr(s, "\"previous\":\"audit.log.1\""));
    free(s);
    zh_rmtree(dir);
}

/* A crash between a rotation's link and its rename leaves audit.log.N as a
 * second name of audit.log: the next start undoes the link (and says so),
 * so no line is in two files; a rotated file of its own stays. */
static void test_half_rotation_undone(void **state)
{
    (void)state;
    char dir[256], path[300], one[320], three[320], err[256];
    zh_tmpdir(dir, sizeof(dir));
    snprintf(path, sizeof(path), "%s/audit.log", dir);
    snprintf(one, sizeof(one), "%s/audit.log.1", dir);
    snprintf(three, sizeof(three), "%s/audit.log.3", dir);
    assert_int_equal(audit_open(dir, 0, err, sizeof(err)), ZTB_OK);
    assert_int_equal(audit("a", "broker", 0), ZTB_OK);
    audit_close();
    size_t n;
    char *s = slurp(path, &n);
    spit(one, s, n); /* a rotated file of its own (a copy) */
    free(s);
    assert_int_equal(link(path, three), 0); /* the crash: linked, not renamed */
    assert_int_equal(audit_open(dir, 0, err, sizeof(err)), ZTB_OK);
    assert_int_equal(audit("b", "broker", 0), ZTB_OK);
    audit_close();
    assert_int_equal(access(three, F_OK), -1);
    assert_int_equal(access(one, F_OK), 0);
    s = slurp(path, &n);
    assert_non_null(strstr(s, "\"event\":\"audit.rotation_undone\""));
    assert_non_null(strstr(s, "\"link\":\"audit.log.3\""));
    free(s);
    uint64_t lines, bad;
    char why[256];
    assert_int_equal(verify(path, &lines, &bad, why), ZTB_OK);
    zh_rmtree(dir);
}

static void *rot_writer(void *arg)
{
    long id = (long)(intptr_t)arg;
    for (int i = 0; i < 400; i++) {
        if (audit("token.issued", "agent:a", 0, ZTB_F_INT("w", id), ZTB_F_INT("i", i),
                  ZTB_F_STR("pad", "..............................................")) != ZTB_OK)
            return (void *)1;
        if (i % 50 == 0)
            usleep(2000);
    }
    return NULL;
}

/* Size-based rotation under load: a tiny limit, four writers; every file
 * is kept whole, the files verify as one chain (with the checkpoint each
 * rotation writes), and a broken boundary is found in the file and line
 * where it is. */
static void test_rotation_by_size(void **state)
{
    (void)state;
    char dir[256], err[256];
    zh_tmpdir(dir, sizeof(dir));
    ztb_key *k;
    assert_int_equal(ztb_key_generate(&k), ZTB_OK);
    uint64_t rot0 = audit_rotations();
    audit_set_max_bytes(16384);
    assert_int_equal(audit_open(dir, 0, err, sizeof(err)), ZTB_OK);
    const struct audit_checkpoint_opts o = {.sign = local_sign, .arg = k, .every_records = 100000};
    assert_int_equal(audit_checkpoints_start(&o), ZTB_OK);
    pthread_t t[4];
    for (long i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&t[i], NULL, rot_writer, (void *)(intptr_t)i), 0);
    for (int i = 0; i < 4; i++) {
        void *rv;
        pthread_join(t[i], &rv);
        assert_null(rv);
    }
    audit_close();
    audit_set_max_bytes(0);
    uint64_t rotations = audit_rotations() - rot0;
    assert_true(rotations >= 3);

    /* the files, oldest first: audit.log.1 .. audit.log.N, then audit.log */
    size_t n = (size_t)rotations + 1;
    char(*names)[320] = calloc(n, sizeof(*names));
    const char **paths = calloc(n, sizeof(*paths));
    for (size_t i = 0; i < n; i++) {
        if (i + 1 < n)
            snprintf(names[i], sizeof(names[i]), "%s/audit.log.%zu", dir, i + 1);
        else
            snprintf(names[i], sizeof(names[i]), "%s/audit.log", dir);
        paths[i] = names[i];
        if (i + 1 < n && file_size(names[i]) >= 16384 + 16384) /* not far past the limit */
            fail_msg("%s: %lld bytes", names[i], (long long)file_size(names[i]));
    }
    const char *kid = ztb_key_kid(k);
    ztb_keyset *ks;
    assert_int_equal(ztb_keyset_new(&k, &kid, 1, &ks), ZTB_OK);
    const struct audit_verify_opts vo = {.keys = ks};
    struct audit_verify_report r;
    ztb_err vrv = audit_verify_files(paths, n, &vo, &r);
    if (vrv != ZTB_OK)
        fprintf(stderr, "file %zu line %llu: %s\n", r.bad_file, (unsigned long long)r.bad_line,
                r.why);
    assert_int_equal(vrv, ZTB_OK);
    /* opened + 1600 records + a rotated line per rotation + the
     * checkpoints (one soon after each rotation, and the last at close),
     * counted in the files themselves */
    uint64_t rotated_lines = 0, checkpoint_lines = 0, issued = 0;
    for (size_t i = 0; i < n; i++) {
        size_t flen;
        char *f = slurp(names[i], &flen);
        for (const char *q = f; (q = strstr(q, "\"event\":\"")) != NULL; q++) {
            rotated_lines += strncmp(q, "\"event\":\"audit.rotated\"", 23) == 0;
            checkpoint_lines += strncmp(q, "\"event\":\"audit.checkpoint\"", 26) == 0;
            issued += strncmp(q, "\"event\":\"token.issued\"", 22) == 0;
        }
        free(f);
    }
    assert_int_equal(issued, 1600);
    assert_int_equal(rotated_lines, rotations);
    assert_int_equal(r.records, 1 + 1600 + rotated_lines + checkpoint_lines);
    assert_true(r.checkpoints >= 2);
    assert_int_equal(r.proven_to, r.last_seq - 1);
    /* each new file begins with the rotation, naming the file before */
    size_t len;
    char *s = slurp(names[1], &len);
    assert_non_null(strstr(s, "\"event\":\"audit.rotated\""));
    assert_non_null(strstr(s, "\"previous\":\"audit.log.1\""));
    assert_true(strstr(s, "\"event\":\"audit.rotated\"") < strchr(s, '\n'));
    /* one file alone is not the whole chain (its head is elsewhere) */
    assert_int_equal(audit_verify_files(paths + 1, n - 1, NULL, &r), ZTB_ERR_TRUNCATED);
    /* a file left out: the break is at the first line of the next */
    const char *gap[] = {paths[0], paths[2]};
    assert_int_not_equal(audit_verify_files(gap, 2, NULL, &r), ZTB_OK);
    assert_int_equal(r.bad_file, 1);
    assert_int_equal(r.bad_line, 1);
    /* the boundary edited: the rotated line of file 2 changed */
    char *p = strstr(s, "\"previous\":\"audit.log.1\"");
    p[strlen("\"previous\":\"audit.log.")] = '7';
    spit(names[1], s, len);
    assert_int_equal(audit_verify_files(paths, n, NULL, &r), ZTB_ERR_SIGNATURE);
    assert_int_equal(r.bad_file, 1);
    assert_int_equal(r.bad_line, 2); /* the next line's prev no longer matches it */
    free(s);
    free(paths);
    free(names);
    ztb_keyset_free(ks);
    ztb_key_free(k);
    zh_rmtree(dir);
}

/* The last checkpoint, written at close, crosses the size limit: it stays
 * the file's last line (a rotation after it would leave the rotated line
 * unproven), and the next open rotates instead. */
static void test_close_checkpoint_is_the_last_line(void **state)
{
    (void)state;
    char dir[256], err[256], path[320], rotated[320];
    zh_tmpdir(dir, sizeof(dir));
    snprintf(path, sizeof(path), "%s/audit.log", dir);
    snprintf(rotated, sizeof(rotated), "%s/audit.log.1", dir);
    ztb_key *k;
    assert_int_equal(ztb_key_generate(&k), ZTB_OK);
    assert_int_equal(audit_open(dir, 0, err, sizeof(err)), ZTB_OK);
    const struct audit_checkpoint_opts o = {.sign = local_sign, .arg = k, .every_records = 100000};
    assert_int_equal(audit_checkpoints_start(&o), ZTB_OK);
    for (int i = 0; i < 10; i++)
        assert_int_equal(audit("token.issued", "agent:a", 0, ZTB_F_INT("i", i)), ZTB_OK);
    /* the next line, the close checkpoint, crosses the limit */
    audit_set_max_bytes((uint64_t)file_size(path) + 1);
    audit_close();
    assert_int_equal(access(rotated, F_OK), -1);
    const char *kid = ztb_key_kid(k);
    ztb_keyset *ks;
    assert_int_equal(ztb_keyset_new(&k, &kid, 1, &ks), ZTB_OK);
    const struct audit_verify_opts vo = {.keys = ks};
    struct audit_verify_report r;
    const char *one[] = {path};
    assert_int_equal(audit_verify_files(one, 1, &vo, &r), ZTB_OK);
    assert_int_equal(r.proven_to, r.last_seq - 1); /* every line but the checkpoint itself */
    /* reopened over the limit: the file rotates at its first line */
    assert_int_equal(audit_open(dir, 0, err, sizeof(err)), ZTB_OK);
    audit_close();
    audit_set_max_bytes(0);
    assert_int_equal(access(rotated, F_OK), 0);
    ztb_keyset_free(ks);
    ztb_key_free(k);
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
        cmocka_unit_test(test_short_write_is_rolled_back),
        cmocka_unit_test(test_pending_records_wait_for_the_disk),
        cmocka_unit_test(test_checkpoints),
        cmocka_unit_test(test_reopen_after_rotation),
        cmocka_unit_test(test_one_writer_per_log),
        cmocka_unit_test(test_empty_log_beside_rotated_files),
        cmocka_unit_test(test_half_rotation_undone),
        cmocka_unit_test(test_rotation_by_size),
        cmocka_unit_test(test_close_checkpoint_is_the_last_line),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
