/*
 * redis_private.c - start and supervise a private redis-server (see
 * redis_private.h).
 *
 * The supervisor thread waits for the child with waitpid; an exit while the
 * broker is running is logged and followed by a restart after a backoff
 * (100 ms doubling to 5 s, reset after a minute of uptime). Redis's own
 * persistence (AOF) keeps revocations and quarantines across restarts.
 *
 * One Redis per state directory, ever: the child's pid is kept in
 * redis/redis.pid, and a start first waits for a previous Redis of this
 * directory to be gone (a broker that crashed leaves one finishing its
 * shutdown save: it would write the same AOF and, on its way out, delete
 * the new one's socket).
 */
#define _GNU_SOURCE /* pthread_cond_clockwait */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "broker/store/redis_private.h"
#include "common/guard.h"
#include "common/log.h"

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_cond = PTHREAD_COND_INITIALIZER;
static pid_t g_pid = -1;
static int g_stopping;
static pthread_t g_thread;
static int g_thread_started;
static char g_conf[512];
static char g_bin[256];
static char g_sock[108];
static char g_pidfile[512];

/* Read a small file (a /proc entry, the pid file) into buf, NUL-terminated;
 * the bytes read, or -1 if it cannot be opened or is empty. */
static ssize_t read_small(const char *path, char *buf, size_t cap)
{
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, cap - 1);
    close(fd);
    if (n <= 0)
        return -1;
    buf[n] = '\0';
    return n;
}

/* 1 if pid is a live process (a zombie is not). */
static int alive(pid_t pid)
{
    char path[64], buf[256];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    if (read_small(path, buf, sizeof(buf)) < 0)
        return 0;
    const char *paren = strrchr(buf, ')'); /* the name may hold spaces */
    return paren == NULL || paren[1] != ' ' || paren[2] != 'Z';
}

/* 1 if pid is the redis-server of this directory: its command line names
 * our config file or (Redis rewrites its title to "redis-server
 * unixsocket:PATH") our socket. */
static int is_our_redis(pid_t pid)
{
    char path[64], buf[4096];
    snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
    ssize_t n = read_small(path, buf, sizeof(buf));
    if (n < 0)
        return 0;
    for (ssize_t i = 0; i < n; i++) /* arguments are NUL-separated */
        if (buf[i] == '\0')
            buf[i] = ' ';
    return strstr(buf, g_conf) != NULL || strstr(buf, g_sock) != NULL;
}

/*
 * Wait until the Redis a previous broker of this state directory started
 * (redis.pid) has exited: it was told to stop when its broker died, and may
 * still be saving. After 10 s it is stopped again, then killed. A pid file
 * naming anything else (a reused pid) is ignored.
 */
static void wait_previous(void)
{
    char buf[32];
    if (read_small(g_pidfile, buf, sizeof(buf)) < 0)
        return;
    char *end;
    errno = 0;
    long v = strtol(buf, &end, 10);
    if (errno != 0 || end == buf || (*end != '\n' && *end != '\0') || v <= 1 || v > INT32_MAX)
        return;
    pid_t pid = (pid_t)v;
    if (!alive(pid) || !is_our_redis(pid))
        return;
    ztb_log(ZTB_LOG_WARN, "redis.private_previous_running", ZTB_F_INT("pid", pid),
            ZTB_F_STR("hint", "a broker of this state directory stopped without stopping its "
                              "Redis; waiting for it to exit"));
    for (int i = 0; i < 1500 && alive(pid); i++) { /* 15 s */
        if (i == 0 || i == 1000)
            kill(pid, i == 0 ? SIGTERM : SIGKILL);
        usleep(10000);
    }
}

/* Remember the child's pid for the next start (wait_previous). */
static void write_pidfile(pid_t pid)
{
    int fd = open(g_pidfile, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return;
    char buf[32];
    int n = snprintf(buf, sizeof(buf), "%d\n", (int)pid);
    if (write(fd, buf, (size_t)n) != n)
        ztb_log(ZTB_LOG_WARN, "redis.pidfile_write_failed", ZTB_F_STR("path", g_pidfile));
    close(fd);
}

static int spawn(void)
{
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        /* the child: its own process group so a ^C to the broker's group
         * reaches the broker, which then stops redis in order */
        setpgid(0, 0);
        /* if the broker dies without stopping us, stop too */
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() == 1)
            _exit(0);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        int devnull = open("/dev/null", O_RDWR);
        if (devnull >= 0) {
            dup2(devnull, 0);
            dup2(devnull, 1);
            close(devnull);
        }
        execlp(g_bin, g_bin, g_conf, (char *)NULL);
        _exit(127);
    }
    g_pid = pid;
    write_pidfile(pid);
    return 0;
}

/* 1 once the socket accepts a connection. */
static int socket_ready(const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return 0;
    int ok = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
    close(fd);
    return ok;
}

/* Seconds on CLOCK_MONOTONIC: the backoff and "how long it ran" are
 * durations, never read from the wall clock. */
static time_t mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec;
}

static void *supervise(void *arg)
{
    (void)arg;
    unsigned backoff_ms = 100;
    time_t started = mono_s();
    for (;;) {
        pid_t pid;
        pthread_mutex_lock(&g_lock);
        pid = g_pid;
        pthread_mutex_unlock(&g_lock);
        int status;
        pid_t w;
        do
            w = waitpid(pid, &status, 0);
        while (w < 0 && errno == EINTR);
        pthread_mutex_lock(&g_lock);
        g_pid = -1;
        if (g_stopping) {
            pthread_cond_broadcast(&g_cond);
            pthread_mutex_unlock(&g_lock);
            return NULL;
        }
        ztb_log(ZTB_LOG_ERROR, "redis.private_exited",
                ZTB_F_INT("status", WIFEXITED(status) ? WEXITSTATUS(status) : -1),
                ZTB_F_INT("signal", WIFSIGNALED(status) ? WTERMSIG(status) : 0),
                ZTB_F_INT("restart_in_ms", backoff_ms));
        if (mono_s() - started > 60)
            backoff_ms = 100;
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_nsec += (long)(backoff_ms % 1000) * 1000000L;
        until.tv_sec += backoff_ms / 1000 + until.tv_nsec / 1000000000L;
        until.tv_nsec %= 1000000000L;
        while (!g_stopping &&
               pthread_cond_clockwait(&g_cond, &g_lock, CLOCK_MONOTONIC, &until) != ETIMEDOUT)
            ;
        if (g_stopping) {
            pthread_mutex_unlock(&g_lock);
            return NULL;
        }
        backoff_ms = backoff_ms * 2 > 5000 ? 5000 : backoff_ms * 2;
        started = mono_s();
        if (spawn() != 0) {
            ztb_log(ZTB_LOG_ERROR, "redis.private_spawn_failed",
                    ZTB_F_STR("reason", strerror(errno)));
            pthread_mutex_unlock(&g_lock);
            return NULL;
        }
        ztb_log(ZTB_LOG_INFO, "redis.private_restarted", ZTB_F_INT("pid", g_pid));
        pthread_mutex_unlock(&g_lock);
    }
}

static ztb_err write_conf(const char *dir, char *err, size_t errcap)
{
    char tmp[600];
    snprintf(tmp, sizeof(tmp), "%s.tmp", g_conf);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(err, errcap, "%s: %s", tmp, strerror(errno));
        return ZTB_ERR_IO;
    }
    FILE *f = fdopen(fd, "w");
    if (f == NULL) {
        close(fd);
        return ZTB_ERR_IO;
    }
    fprintf(f,
            "# written by ztb-broker at each start; edits are overwritten\n"
            "port 0\n"
            "unixsocket %s\n"
            "unixsocketperm 700\n"
            "dir %s\n"
            "daemonize no\n"
            "protected-mode yes\n"
            "appendonly yes\n"
            "appendfsync everysec\n"
            "save 3600 1 300 100\n"
            "logfile %s/redis.log\n"
            "loglevel notice\n"
            "databases 1\n"
            "maxclients 1024\n",
            g_sock, dir, dir);
    int bad = fflush(f) != 0 || fsync(fd) != 0;
    bad |= fclose(f) != 0;
    if (bad || rename(tmp, g_conf) != 0) {
        snprintf(err, errcap, "writing %s: %s", g_conf, strerror(errno));
        return ZTB_ERR_IO;
    }
    return ZTB_OK;
}

ztb_err redis_private_start(const char *state_dir, const char *redis_server, char *sock, size_t cap,
                            char *err, size_t errcap)
{
    char dir[300];
    snprintf(dir, sizeof(dir), "%s/redis", state_dir);
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        snprintf(err, errcap, "%s: %s", dir, strerror(errno));
        return ZTB_ERR_IO;
    }
    if (chmod(dir, 0700) != 0) {
        snprintf(err, errcap, "%s: %s", dir, strerror(errno));
        return ZTB_ERR_IO;
    }
    if ((size_t)snprintf(g_sock, sizeof(g_sock), "%s/redis.sock", dir) >= sizeof(g_sock)) {
        snprintf(err, errcap, "state dir path too long for a unix socket (max %zu bytes)",
                 sizeof(g_sock) - 20);
        return ZTB_ERR_INVALID_ARG;
    }
    snprintf(g_conf, sizeof(g_conf), "%s/redis.conf", dir);
    snprintf(g_pidfile, sizeof(g_pidfile), "%s/redis.pid", dir);
    snprintf(g_bin, sizeof(g_bin), "%s", redis_server[0] ? redis_server : "redis-server");
    wait_previous(); /* never two Redis on one directory */
    ZTB_GUARD(write_conf(dir, err, errcap));
    unlink(g_sock);

    pthread_mutex_lock(&g_lock);
    g_stopping = 0;
    int rc = spawn();
    pthread_mutex_unlock(&g_lock);
    if (rc != 0) {
        snprintf(err, errcap, "cannot start %s: %s", g_bin, strerror(errno));
        return ZTB_ERR_IO;
    }
    for (int i = 0; i < 1000; i++) { /* 10 s */
        if (socket_ready(g_sock))
            break;
        int status;
        if (waitpid(g_pid, &status, WNOHANG) == g_pid) {
            g_pid = -1;
            snprintf(err, errcap,
                     "%s exited at start (status %d); see %s/redis.log (is redis-server "
                     "installed? scripts/install-deps.sh)",
                     g_bin, WIFEXITED(status) ? WEXITSTATUS(status) : -1, dir);
            return ZTB_ERR_UNAVAILABLE;
        }
        usleep(10000);
    }
    if (!socket_ready(g_sock)) {
        snprintf(err, errcap, "%s did not open %s within 10 s", g_bin, g_sock);
        redis_private_stop();
        return ZTB_ERR_TIMEOUT;
    }
    /* from here on the supervisor owns g_pid (under g_lock): log the pid
     * read before it starts, not g_pid, which it rewrites when Redis exits */
    pid_t pid = g_pid;
    if (pthread_create(&g_thread, NULL, supervise, NULL) != 0) {
        snprintf(err, errcap, "cannot start the supervisor thread");
        redis_private_stop();
        return ZTB_ERR_INTERNAL;
    }
    g_thread_started = 1;
    snprintf(sock, cap, "%s", g_sock);
    ztb_log(ZTB_LOG_INFO, "redis.private_started", ZTB_F_STR("socket", g_sock),
            ZTB_F_INT("pid", pid));
    return ZTB_OK;
}

void redis_private_stop(void)
{
    pthread_mutex_lock(&g_lock);
    g_stopping = 1;
    pid_t pid = g_pid;
    pthread_cond_broadcast(&g_cond);
    pthread_mutex_unlock(&g_lock);
    if (pid > 0)
        kill(pid, SIGTERM);
    if (g_thread_started) {
        pthread_join(g_thread, NULL);
        g_thread_started = 0;
    } else if (pid > 0) {
        int status;
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
            ;
    }
    g_pid = -1;
}
