/*
 * test_process_hardening.c - what a started broker (and ztbctl) must never
 * give away, tried as an attacker would.
 *
 * - The state directory belongs to the service user, who can change it while
 *   a root-started broker is starting. Here a process running as that user
 *   keeps swapping subdirectories of the state directory for symlinks to a
 *   root-owned directory while the real ztb-broker is started as root with
 *   --user nobody, again and again: a root-owned file must stay root-owned.
 * - Key material never lands in a core file: the running broker, ztbctl and
 *   the ztb-authz sidecar are not dumpable and their RLIMIT_CORE is 0 (read
 *   in /proc/PID), even when started with an unlimited core limit and
 *   without root.
 *
 * These tests need root (CI runs as root): without it they fail, they do not
 * skip.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <pwd.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"

#define SWAP_DIRS 16  /* subdirectories the attacker swaps */
#define DIR_FILES 400 /* files in each: a walk lingers in each directory */
#define STARTS    12  /* broker starts under attack */

static struct zh_redis rd;
static uid_t nobody_uid;
static gid_t nobody_gid;

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static void need_root(void)
{
    if (geteuid() != 0)
        fail_msg("this test starts ztb-broker as root with --user nobody: run it as root "
                 "(CI does)");
    struct passwd *pw = getpwnam("nobody");
    if (pw == NULL)
        fail_msg("user nobody does not exist: useradd --system nobody");
    nobody_uid = pw->pw_uid;
    nobody_gid = pw->pw_gid;
}

static uid_t owner_of(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        fail_msg("lstat %s: %s", path, strerror(errno));
    return st.st_uid;
}

/* In a child: lift the core limit, optionally become nobody. */
static void child_prepare(int as_nobody)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    struct rlimit unlimited = {RLIM_INFINITY, RLIM_INFINITY};
    if (setrlimit(RLIMIT_CORE, &unlimited) != 0)
        _exit(120);
    if (as_nobody &&
        (setgroups(0, NULL) != 0 || setgid(nobody_gid) != 0 || setuid(nobody_uid) != 0))
        _exit(121);
}

struct started {
    pid_t pid;
    int ready; /* 1: wrote its ready file; 0: exited first */
    int status;
};

/*
 * Start ztb-broker on state (as root with --user nobody, or as nobody),
 * wait until it is ready or has exited. log receives its output.
 */
static struct started start_broker(const char *dir, const char *state, int as_nobody)
{
    char run[300], ready[320], log[300];
    snprintf(run, sizeof(run), "%s/run", dir); /* the ready file's, nobody's */
    snprintf(ready, sizeof(ready), "%s/ready", run);
    snprintf(log, sizeof(log), "%s/broker.log", dir);
    if (mkdir(run, 0700) != 0 && errno != EEXIST)
        fail_msg("mkdir %s: %s", run, strerror(errno));
    assert_int_equal(chown(run, nobody_uid, nobody_gid), 0);
    unlink(ready);
    const char *argv[] = {zh_bin("ztb-broker"),
                          "--state-dir",
                          state,
                          "--listen",
                          "127.0.0.1:0",
                          "--ready-file",
                          ready,
                          "--redis",
                          rd.url,
                          "--redis-timeout-ms",
                          "5000",
                          "--user",
                          "nobody",
                          NULL};
    struct started s = {0};
    s.pid = fork();
    assert_true(s.pid >= 0);
    if (s.pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        child_prepare(as_nobody);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    for (int i = 0; i < 1500; i++) {
        struct stat st;
        if (stat(ready, &st) == 0 && st.st_size > 0) {
            s.ready = 1;
            return s;
        }
        if (waitpid(s.pid, &s.status, WNOHANG) == s.pid) {
            s.pid = 0;
            return s;
        }
        sleep_ms(10);
    }
    kill(s.pid, SIGKILL);
    waitpid(s.pid, NULL, 0);
    fail_msg("ztb-broker neither became ready nor exited within 15 s (log: %s)", log);
    return s;
}

static void stop_broker(struct started *s)
{
    if (s->pid <= 0)
        return;
    kill(s->pid, SIGTERM);
    int st;
    waitpid(s->pid, &st, 0);
    s->pid = 0;
}

/*
 * The attacker, as nobody: SWAP_DIRS subdirectories each holding DIR_FILES
 * files named like those of the root-owned directory, each exchanged
 * atomically (renameat2 RENAME_EXCHANGE, so the name never vanishes) with a
 * symlink to that directory, back and forth as fast as it can. A walk that
 * lists a directory and then names its entries by path follows the symlink
 * once the exchange happened in between. Runs until killed.
 */
static pid_t start_swapper(const char *state, const char *rootdir, int ready_pipe)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid != 0)
        return pid;
    child_prepare(1);
    char d[SWAP_DIRS][400], l[SWAP_DIRS][400];
    for (int i = 0; i < SWAP_DIRS; i++) {
        snprintf(d[i], sizeof(d[i]), "%.300s/d%02d", state, i);
        snprintf(l[i], sizeof(l[i]), "%.300s/l%02d", state, i);
        if (mkdir(d[i], 0700) != 0 || symlink(rootdir, l[i]) != 0)
            _exit(122);
        for (int j = 0; j < DIR_FILES; j++) {
            char f[420];
            snprintf(f, sizeof(f), "%.300s/d%02d/f%04d", state, i, j);
            int fd = open(f, O_WRONLY | O_CREAT, 0600);
            if (fd < 0)
                _exit(123);
            close(fd);
        }
    }
    if (write(ready_pipe, "x", 1) != 1)
        _exit(124);
    for (;;)
        for (int i = 0; i < SWAP_DIRS; i++)
            if (renameat2(AT_FDCWD, d[i], AT_FDCWD, l[i], RENAME_EXCHANGE) != 0)
                _exit(125);
}

/* How many files in dir do not belong to root (dir itself included). */
static int not_root_owned(const char *dir)
{
    int n = owner_of(dir) != 0;
    for (int j = 0; j < DIR_FILES; j++) {
        char f[420];
        snprintf(f, sizeof(f), "%.300s/f%04d", dir, j);
        n += owner_of(f) != 0;
    }
    return n;
}

static void test_state_dir_symlink_race(void **state)
{
    (void)state;
    need_root();
    char dir[256], rootdir[300], st_dir[300];
    zh_tmpdir(dir, sizeof(dir));
    /* a root-owned directory elsewhere (think /etc): what the attacker wants */
    snprintf(rootdir, sizeof(rootdir), "%s/rootonly", dir);
    assert_int_equal(mkdir(rootdir, 0755), 0);
    for (int j = 0; j < DIR_FILES; j++) {
        char f[420];
        snprintf(f, sizeof(f), "%.300s/f%04d", rootdir, j);
        int fd = open(f, O_WRONLY | O_CREAT | O_EXCL, 0644);
        assert_true(fd >= 0);
        close(fd);
    }
    /* the state directory, as a previous run left it: the service user's */
    snprintf(st_dir, sizeof(st_dir), "%s/state", dir);
    assert_int_equal(mkdir(st_dir, 0700), 0);
    assert_int_equal(chown(st_dir, nobody_uid, nobody_gid), 0);

    int p[2];
    assert_int_equal(pipe(p), 0);
    pid_t swapper = start_swapper(st_dir, rootdir, p[1]);
    char c;
    assert_int_equal(read(p[0], &c, 1), 1);
    close(p[0]);
    close(p[1]);

    int ready = 0, lost = 0, starts = 0;
    for (int i = 0; i < STARTS && lost == 0; i++) {
        struct started s = start_broker(dir, st_dir, 0);
        ready += s.ready;
        starts++;
        stop_broker(&s);
        lost = not_root_owned(rootdir);
    }
    int sst = 0;
    kill(swapper, SIGKILL);
    waitpid(swapper, &sst, 0);
    if (!WIFSIGNALED(sst))
        fail_msg("the attacker stopped early (status %d)", WEXITSTATUS(sst));
    fprintf(stderr, "%d start(s) under attack, %d became ready\n", starts, ready);
    if (lost != 0)
        fail_msg("after %d start(s) of the broker, %d root-owned file(s) in %s belong to the "
                 "service user",
                 starts, lost, rootdir);
    /* and the broker still starts on a state dir its user plays with */
    if (ready == 0)
        fail_msg("the broker never started under the swap attack (see %s/broker.log)", dir);
    zh_rmtree(dir);
}

/* "Max core file size  SOFT  HARD  bytes" of /proc/PID/limits, as text. */
static void core_limit_of(pid_t pid, char *out, size_t cap)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/limits", (int)pid);
    FILE *f = fopen(path, "r");
    out[0] = '\0';
    if (f == NULL) {
        fail_msg("%s: %s", path, strerror(errno));
        return;
    }
    while (fgets(line, sizeof(line), f) != NULL) {
        if (strncmp(line, "Max core file size", 18) != 0)
            continue;
        char soft[32], hard[32];
        if (sscanf(line + 18, "%31s %31s", soft, hard) == 2)
            snprintf(out, cap, "%s %s", soft, hard);
    }
    fclose(f);
}

/*
 * A process that is not dumpable has its /proc/PID files owned by root
 * whatever user it runs as (proc(5)); for one running as nobody that tells
 * the two apart.
 */
static void expect_hardened(pid_t pid, const char *what)
{
    char path[64], limit[80];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    uid_t owner = owner_of(path);
    if (owner != 0)
        fail_msg("%s (pid %d, running as nobody) is dumpable: %s belongs to uid %u", what, (int)pid,
                 path, (unsigned)owner);
    core_limit_of(pid, limit, sizeof(limit));
    if (strcmp(limit, "0 0") != 0)
        fail_msg("%s (pid %d): RLIMIT_CORE is '%s', want '0 0'", what, (int)pid, limit);
}

static void test_broker_not_dumpable(void **state)
{
    (void)state;
    need_root();
    char dir[256], st_dir[300];
    zh_tmpdir(dir, sizeof(dir));
    snprintf(st_dir, sizeof(st_dir), "%s/state", dir);
    assert_int_equal(mkdir(st_dir, 0700), 0);
    assert_int_equal(chown(st_dir, nobody_uid, nobody_gid), 0);

    /* started as root, dropping to nobody */
    struct started s = start_broker(dir, st_dir, 0);
    if (!s.ready)
        fail_msg("the broker did not start (see %s/broker.log)", dir);
    expect_hardened(s.pid, "ztb-broker started as root");
    stop_broker(&s);

    /* started as the service user itself, with an unlimited core limit */
    s = start_broker(dir, st_dir, 1);
    if (!s.ready)
        fail_msg("the broker did not start as nobody (see %s/broker.log)", dir);
    expect_hardened(s.pid, "ztb-broker started as nobody");
    stop_broker(&s);
    zh_rmtree(dir);
}

/*
 * ztbctl reads passphrases and key files and carries join tokens: while it
 * waits for an admin API that never answers, it must already be hardened.
 */
static void test_ztbctl_not_dumpable(void **state)
{
    (void)state;
    need_root();
    char dir[256], sock[300];
    zh_tmpdir(dir, sizeof(dir));
    snprintf(sock, sizeof(sock), "%s/admin.sock", dir);
    int l = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(l >= 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    assert_true(strlen(sock) < sizeof(sa.sun_path));
    memcpy(sa.sun_path, sock, strlen(sock) + 1);
    assert_int_equal(bind(l, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(chmod(sock, 0666), 0);
    assert_int_equal(listen(l, 4), 0);

    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        child_prepare(1);
        int null = open("/dev/null", O_RDWR);
        dup2(null, 1);
        dup2(null, 2);
        const char *argv[] = {zh_bin("ztbctl"), "--socket", sock, "agent", "list", NULL};
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    int c = accept(l, NULL, NULL); /* ztbctl is connected and waits for an answer */
    assert_true(c >= 0);
    char buf[256];
    assert_true(read(c, buf, sizeof(buf)) > 0);
    expect_hardened(pid, "ztbctl");
    close(c);
    close(l);
    int st;
    waitpid(pid, &st, 0);
    zh_rmtree(dir);
}

/*
 * ztb-authz holds the Redis password of its --redis URL and sees every
 * bearer token and DPoP proof its gateway checks: while it waits for its
 * JWKS at start (from a listener here that never answers), it must already
 * be hardened.
 */
static void test_authz_not_dumpable(void **state)
{
    (void)state;
    need_root();
    char dir[256], routes[300];
    zh_tmpdir(dir, sizeof(dir));
    assert_int_equal(chown(dir, nobody_uid, nobody_gid), 0);
    snprintf(routes, sizeof(routes), "%s/routes.json", dir);
    FILE *f = fopen(routes, "w");
    assert_non_null(f);
    fputs("{\"origin\": \"https://payments.example.org\", \"routes\": [\n"
          " {\"method\": \"POST\", \"path\": \"/refunds/{id}\", \"audience\": \"payments\",\n"
          "  \"action\": \"payments:refund\", \"resource\": \"orders/{id}\"}]}\n",
          f);
    assert_int_equal(fclose(f), 0);
    assert_int_equal(chmod(routes, 0644), 0);

    int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(l >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t slen = sizeof(sa);
    assert_int_equal(bind(l, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(getsockname(l, (struct sockaddr *)&sa, &slen), 0);
    assert_int_equal(listen(l, 4), 0);
    char iss[64], jwks[96];
    snprintf(iss, sizeof(iss), "http://127.0.0.1:%u", (unsigned)ntohs(sa.sin_port));
    snprintf(jwks, sizeof(jwks), "%s/.well-known/jwks.json", iss);

    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        child_prepare(1);
        int null = open("/dev/null", O_RDWR);
        dup2(null, 1);
        dup2(null, 2);
        const char *argv[] = {zh_bin("ztb-authz"),
                              "--issuer",
                              iss,
                              "--jwks-url",
                              jwks,
                              "--redis",
                              "redis://ztb:not-in-a-core@127.0.0.1:1",
                              "--routes",
                              routes,
                              "--listen",
                              "127.0.0.1:0",
                              NULL};
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    int c = accept(l, NULL, NULL); /* ztb-authz asks for its JWKS and waits */
    assert_true(c >= 0);
    char buf[256];
    assert_true(read(c, buf, sizeof(buf)) > 0);
    expect_hardened(pid, "ztb-authz");
    close(c);
    close(l);
    kill(pid, SIGTERM);
    int st;
    waitpid(pid, &st, 0);
    zh_rmtree(dir);
}

static int setup(void **state)
{
    (void)state;
    zh_redis_start(&rd);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    zh_redis_stop(&rd, 1);
    return 0;
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_state_dir_symlink_race),
        cmocka_unit_test(test_broker_not_dumpable),
        cmocka_unit_test(test_ztbctl_not_dumpable),
        cmocka_unit_test(test_authz_not_dumpable),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
