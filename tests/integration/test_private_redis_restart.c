/*
 * test_private_redis_restart.c - the broker's private Redis across a broker
 * crash and a fast restart (issue 12, item 7).
 *
 * A broker killed with SIGKILL leaves its private redis-server finishing its
 * shutdown save (the kernel told it to stop). A broker started again on the
 * same state directory 0 ms, 100 ms or 1 s later must be serving within
 * seconds, and the two Redis processes must never share a socket or work
 * on the data directory at the same time: the old one used to delete the
 * new one's socket on its way out, and the restarted broker stayed down.
 *
 * A watcher thread samples /proc every 2 ms for redis-server processes
 * working in STATE/redis and records when each was first and last seen and
 * the socket it serves (Redis titles itself "redis-server unixsocket:PATH"). The old Redis must
 * have been last seen before the new one was first seen, and their sockets must differ.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"

#define MAX_SEEN 64

struct seen {
    int pid;
    long long first_us, last_us;
    char sock[200];
    int ppid; /* when first seen: a background save's parent is the server */
};

struct watcher {
    char data_dir[PATH_MAX]; /* STATE/redis, resolved */
    atomic_int stop;
    struct seen seen[MAX_SEEN];
    int n;
    pthread_t thread;
};

static long long now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000LL + ts.tv_nsec / 1000;
}

/* Read /proc/PID/NAME into buf (NULs turned into spaces); length or -1. */
static ssize_t proc_read(int pid, const char *name, char *buf, size_t cap)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/%s", pid, name);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, cap - 1);
    close(fd);
    if (n <= 0)
        return -1;
    for (ssize_t i = 0; i < n; i++)
        if (buf[i] == '\0')
            buf[i] = ' ';
    buf[n] = '\0';
    return n;
}

/* 1 if pid is a live (not zombie) process working in dir. */
static int works_in(int pid, const char *dir)
{
    char path[64], cwd[PATH_MAX], stat[512];
    snprintf(path, sizeof(path), "/proc/%d/cwd", pid);
    ssize_t n = readlink(path, cwd, sizeof(cwd) - 1);
    if (n <= 0)
        return 0;
    cwd[n] = '\0';
    if (strcmp(cwd, dir) != 0)
        return 0;
    if (proc_read(pid, "stat", stat, sizeof(stat)) < 0)
        return 0;
    const char *paren = strrchr(stat, ')');
    return paren != NULL && paren[1] == ' ' && paren[2] != 'Z';
}

static void watch_once(struct watcher *w)
{
    DIR *d = opendir("/proc");
    if (d == NULL)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        int pid = atoi(e->d_name);
        if (pid <= 0 || !works_in(pid, w->data_dir))
            continue;
        char cmd[512];
        if (proc_read(pid, "cmdline", cmd, sizeof(cmd)) < 0 || strstr(cmd, "redis") == NULL)
            continue;
        long long t = now_us();
        int i;
        for (i = 0; i < w->n && w->seen[i].pid != pid; i++)
            ;
        if (i == w->n) {
            if (w->n == MAX_SEEN)
                continue;
            w->n++;
            memset(&w->seen[i], 0, sizeof(w->seen[i]));
            w->seen[i].pid = pid;
            w->seen[i].first_us = t;
            char st[512];
            const char *paren =
                proc_read(pid, "stat", st, sizeof(st)) > 0 ? strrchr(st, ')') : NULL;
            if (paren != NULL)
                sscanf(paren + 2, "%*c %d", &w->seen[i].ppid);
        }
        w->seen[i].last_us = t;
        const char *s = strstr(cmd, "unixsocket:");
        if (s != NULL && w->seen[i].sock[0] == '\0')
            sscanf(s + 11, "%199s", w->seen[i].sock);
    }
    closedir(d);
}

static void *watch(void *arg)
{
    struct watcher *w = arg;
    while (!atomic_load(&w->stop)) {
        watch_once(w);
        struct timespec pause = {.tv_nsec = 2000000};
        nanosleep(&pause, NULL);
    }
    return NULL;
}

static const struct seen *seen_of(const struct watcher *w, int pid)
{
    for (int i = 0; i < w->n; i++)
        if (w->seen[i].pid == pid)
            return &w->seen[i];
    return NULL;
}

/* The pid of the Redis answering on sock (INFO server), or -1. */
static int redis_pid(const char *sock)
{
    redisContext *c = redisConnectUnix(sock);
    int pid = -1;
    if (c != NULL && c->err == 0) {
        redisReply *r = redisCommand(c, "INFO server");
        const char *p =
            r != NULL && r->type == REDIS_REPLY_STRING ? strstr(r->str, "process_id:") : NULL;
        if (p != NULL)
            pid = atoi(p + 11);
        if (r != NULL)
            freeReplyObject(r);
    }
    if (c != NULL)
        redisFree(c);
    return pid;
}

/* Fill the private Redis so that its shutdown save takes a while. */
static void fill(const char *sock)
{
    redisContext *c = redisConnectUnix(sock);
    assert_true(c != NULL && c->err == 0);
    static char big[100000];
    memset(big, 'x', sizeof(big) - 1);
    for (int i = 0; i < 150; i++)
        redisAppendCommand(c, "SET filler:%d %s", i, big);
    for (int i = 0; i < 150; i++) {
        void *r = NULL;
        assert_int_equal(redisGetReply(c, &r), REDIS_OK);
        freeReplyObject(r);
    }
    redisFree(c);
}

static void test_crash_then_restart_after_0_100_1000_ms(void **state)
{
    (void)state;
    static const long delays_ms[] = {0, 100, 1000};
    struct zh_broker b;
    struct zh_broker_opts o = {.with_keys = 1};
    zh_broker_start(&b, &o);
    char sock[400], data[400];
    snprintf(sock, sizeof(sock), "%s/redis/redis.sock", b.state);
    snprintf(data, sizeof(data), "%s/redis", b.state);
    assert_true(zh_wait_ready(&b, 10000) >= 0);
    char first_dir[256];
    snprintf(first_dir, sizeof(first_dir), "%s", b.dir);

    for (size_t k = 0; k < sizeof(delays_ms) / sizeof(delays_ms[0]); k++) {
        fill(sock);
        int old_pid = redis_pid(sock);
        assert_true(old_pid > 0);

        struct watcher *w = calloc(1, sizeof(*w));
        assert_non_null(realpath(data, w->data_dir));
        watch_once(w);
        assert_non_null(seen_of(w, old_pid));
        assert_int_equal(pthread_create(&w->thread, NULL, watch, w), 0);

        kill(b.pid, SIGKILL);
        waitpid(b.pid, NULL, 0);
        if (delays_ms[k] > 0)
            usleep((useconds_t)delays_ms[k] * 1000);
        struct zh_broker again;
        struct zh_broker_opts o2 = {.state_dir = b.state};
        long long t0 = now_us();
        zh_broker_start(&again, &o2);
        long ready_ms = zh_wait_ready(&again, 10000);
        long total_ms = (long)((now_us() - t0) / 1000);
        if (ready_ms < 0) {
            zh_broker_dump_log(&again);
            fail_msg("restart after %ld ms: not ready within 10 s", delays_ms[k]);
        }
        /* a lingering old Redis would delete the socket on its way out:
         * the new one still answers a while later */
        struct timespec pause = {.tv_nsec = 500000000};
        nanosleep(&pause, NULL);
        int new_pid = redis_pid(sock);
        atomic_store(&w->stop, 1);
        pthread_join(w->thread, NULL);
        if (new_pid <= 0) {
            zh_broker_dump_log(&again);
            fail_msg("restart after %ld ms: the new Redis does not answer on %s", delays_ms[k],
                     sock);
        }
        assert_int_not_equal(new_pid, old_pid);
        assert_int_equal(zh_wait_ready(&again, 1000) >= 0, 1);

        const struct seen *so = seen_of(w, old_pid), *sn = seen_of(w, new_pid);
        assert_non_null(so);
        assert_non_null(sn);
        fprintf(stderr,
                "restart after %ld ms: serving after %ld ms; old Redis %d last seen %lld ms "
                "before new Redis %d first seen; sockets %s | %s\n",
                delays_ms[k], total_ms, old_pid, (sn->first_us - so->last_us) / 1000, new_pid,
                so->sock, sn->sock);
        /* never both at once on the data directory, never one socket */
        if (so->last_us >= sn->first_us)
            fail_msg("restart after %ld ms: the old Redis %d was still running in %s when the "
                     "new one %d started",
                     delays_ms[k], old_pid, data, new_pid);
        if (so->sock[0] == '\0' || strcmp(so->sock, sn->sock) == 0)
            fail_msg("restart after %ld ms: old and new Redis share the socket %s", delays_ms[k],
                     sn->sock);
        /* anything else there (a background save the old one forked) was
         * gone too before the new one started, unless the new one forked it */
        for (int i = 0; i < w->n; i++) {
            const struct seen *s = &w->seen[i];
            if (s->pid == old_pid || s->pid == new_pid || s->ppid == new_pid)
                continue;
            if (s->last_us >= sn->first_us)
                fail_msg("Redis process %d (parent %d) still ran in %s when the new one %d "
                         "started",
                         s->pid, s->ppid, data, new_pid);
        }
        free(w);

        /* the data survived the crash (AOF) */
        redisContext *c = redisConnectUnix(sock);
        assert_true(c != NULL && c->err == 0);
        redisReply *r = redisCommand(c, "EXISTS filler:149");
        assert_non_null(r);
        assert_int_equal(r->integer, 1);
        freeReplyObject(r);
        redisFree(c);
        if (k > 0)
            zh_rmtree(b.dir); /* the first one holds the state directory */
        b = again;
    }
    assert_int_equal(zh_broker_stop(&b), 0);
    zh_rmtree(b.dir);
    zh_rmtree(first_dir);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crash_then_restart_after_0_100_1000_ms),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
