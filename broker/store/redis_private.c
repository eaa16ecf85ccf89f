/*
 * redis_private.c - start and supervise a private redis-server (see
 * redis_private.h).
 *
 * The supervisor thread waits for the child with waitpid; an exit while the
 * broker is running is logged and followed by a restart after a backoff
 * (100 ms doubling to 5 s, reset after a minute of uptime). Redis's own
 * persistence (AOF) keeps revocations and quarantines across restarts.
 *
 * Layout of STATE/redis (0700):
 *   appendonlydir/, dump.rdb   the data: one Redis at a time, ever
 *   redis.lock                 flock held by the Redis working on the data
 *   broker.lock                flock held by the broker that owns the Redis
 *   run-XXXXXXXX/              one per broker start: redis.conf, redis.sock
 *   redis.sock                 symlink to the current run-XXXXXXXX/redis.sock
 *   redis.log                  Redis's log
 *
 * Proof of ownership is a lock, never a pid: the broker takes redis.lock
 * before it starts a Redis and hands the locked descriptor to it (the
 * broker's own copy is then closed), so the lock is held exactly as long as
 * that Redis or any process it forked (a background save) is alive, even
 * after the broker crashed. A start waits for the lock; the processes it
 * may kill after 10 s are only those that hold an open descriptor of this
 * very lock file (found under /proc/PID/fd). Each start has its own socket
 * in its own run directory: a previous Redis finishing its shutdown save
 * after a crash removes its own socket on the way out, never the new one's.
 * broker.lock keeps a second broker off a state directory whose Redis a
 * live broker runs.
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
#include <dirent.h>
#include <sys/file.h>
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
#include "common/secret.h"

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_cond = PTHREAD_COND_INITIALIZER;
static pid_t g_pid = -1;
static int g_stopping;
static pthread_t g_thread;
static int g_thread_started;
static char g_dir[300];  /* STATE/redis: the data */
static char g_run[340];  /* STATE/redis/run-XXXXXXXX: this start's own files */
static char g_conf[360]; /* g_run/redis.conf */
static char g_bin[256];
static char g_sock[108];     /* g_run/redis.sock */
static char g_lockpath[320]; /* g_dir/redis.lock */
static int g_lockfd = -1;    /* redis.lock while no Redis holds it yet */
static int g_brokerfd = -1;  /* broker.lock, for the broker's life */

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

/* 1 if pid's command line names needle (Redis rewrites its title to
 * "redis-server unixsocket:PATH"; before that it is "redis-server CONF"). */
static int cmdline_names(pid_t pid, const char *needle)
{
    char path[64], buf[4096];
    snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
    ssize_t n = read_small(path, buf, sizeof(buf));
    if (n < 0)
        return 0;
    for (ssize_t i = 0; i < n; i++) /* arguments are NUL-separated */
        if (buf[i] == '\0')
            buf[i] = ' ';
    return strstr(buf, needle) != NULL;
}

/*
 * A broker of an earlier version kept its Redis's pid in STATE/redis/redis.pid
 * and its config and socket directly in STATE/redis, with no lock. Wait (up
 * to 15 s: SIGTERM, then SIGKILL after 10 s) until such a Redis is gone, if
 * the pid is still one whose command line names that config or socket; then
 * remove the old files.
 */
static void wait_legacy(void)
{
    char pidfile[340], conf[340], sock[340], buf[32];
    snprintf(pidfile, sizeof(pidfile), "%s/redis.pid", g_dir);
    snprintf(conf, sizeof(conf), "%s/redis.conf", g_dir);
    snprintf(sock, sizeof(sock), "%s/redis.sock", g_dir);
    if (read_small(pidfile, buf, sizeof(buf)) < 0)
        return;
    char *end;
    errno = 0;
    long v = strtol(buf, &end, 10);
    if (errno == 0 && end != buf && (*end == '\n' || *end == '\0') && v > 1 && v <= INT32_MAX) {
        pid_t pid = (pid_t)v;
        if (alive(pid) && (cmdline_names(pid, conf) || cmdline_names(pid, sock))) {
            ztb_log(ZTB_LOG_WARN, "redis.private_previous_running", ZTB_F_INT("pid", pid),
                    ZTB_F_STR("hint", "a broker of this state directory stopped without "
                                      "stopping its Redis; waiting for it to exit"));
            for (int i = 0; i < 1500 && alive(pid); i++) { /* 15 s */
                if (i == 0 || i == 1000)
                    kill(pid, i == 0 ? SIGTERM : SIGKILL);
                usleep(10000);
            }
        }
    }
    unlink(pidfile);
    unlink(conf);
}

/*
 * The pids (up to cap, into out) of the processes other than this one that
 * hold an open descriptor of the file dev/ino: every process that shares the
 * lock on it. Returns how many were found. This is the only proof that a
 * process is one of ours that this file accepts before it sends a signal.
 */
static size_t lock_holders(dev_t dev, ino_t ino, pid_t *out, size_t cap)
{
    size_t n = 0;
    DIR *proc = opendir("/proc");
    if (proc == NULL)
        return 0;
    struct dirent *e;
    while ((e = readdir(proc)) != NULL && n < cap) {
        char *end;
        long pid = strtol(e->d_name, &end, 10);
        if (*end != '\0' || pid <= 1 || pid > INT32_MAX || pid == (long)getpid())
            continue;
        char fddir[64];
        snprintf(fddir, sizeof(fddir), "/proc/%ld/fd", pid);
        DIR *fds = opendir(fddir);
        if (fds == NULL)
            continue; /* gone, or not ours to look at */
        struct dirent *f;
        while ((f = readdir(fds)) != NULL) {
            struct stat st;
            if (f->d_name[0] == '.' || fstatat(dirfd(fds), f->d_name, &st, 0) != 0)
                continue;
            if (st.st_dev == dev && st.st_ino == ino) {
                out[n++] = (pid_t)pid;
                break;
            }
        }
        closedir(fds);
    }
    closedir(proc);
    return n;
}

/* Open (creating, 0600) the lock file path; the descriptor, or -1. */
static int open_lock(const char *path)
{
    return open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
}

/*
 * Take redis.lock into g_lockfd: wait until no earlier Redis of this data
 * directory (or a process it forked) is alive. After 10 s the processes
 * that still hold the lock file open are killed (SIGKILL: they were told to
 * stop when their broker died); after 15 s, give up. Gives up early when a
 * stop begins. ZTB_OK, or an error described in err.
 */
static ztb_err take_data_lock(char *err, size_t errcap)
{
    int fd = open_lock(g_lockpath);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        snprintf(err, errcap, "%s: %s", g_lockpath, strerror(errno));
        if (fd >= 0)
            close(fd);
        return ZTB_ERR_IO;
    }
    pid_t holders[16];
    size_t nh = 0;
    for (int i = 0;; i++) { /* 10 ms a round */
        if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
            g_lockfd = fd;
            return ZTB_OK;
        }
        if (errno != EWOULDBLOCK && errno != EINTR) {
            snprintf(err, errcap, "flock %s: %s", g_lockpath, strerror(errno));
            close(fd);
            return ZTB_ERR_IO;
        }
        pthread_mutex_lock(&g_lock);
        int stopping = g_stopping;
        pthread_mutex_unlock(&g_lock);
        if (stopping || i == 1500)
            break;
        if (i == 0 || i == 1000) {
            nh = lock_holders(st.st_dev, st.st_ino, holders, 16);
            for (size_t k = 0; k < nh; k++) {
                ztb_log(i == 0 ? ZTB_LOG_WARN : ZTB_LOG_ERROR,
                        i == 0 ? "redis.private_previous_running" : "redis.private_previous_killed",
                        ZTB_F_INT("pid", holders[k]), ZTB_F_STR("lock", g_lockpath),
                        ZTB_F_STR("hint", i == 0 ? "the Redis of a broker that stopped without "
                                                   "stopping it; waiting for it to exit"
                                                 : "still running after 10 s: killed"));
                if (i == 1000)
                    kill(holders[k], SIGKILL);
            }
        }
        usleep(10000);
    }
    close(fd);
    snprintf(err, errcap,
             "%s is still held (by pid %d%s) after 15 s: an earlier Redis of this state "
             "directory will not exit; stop it and start again",
             g_lockpath, nh > 0 ? (int)holders[0] : -1, nh > 1 ? " and others" : "");
    return ZTB_ERR_UNAVAILABLE;
}

/* Remove a run directory a start left behind: only the files a run
 * directory holds (never a recursive delete), then the directory. */
static void remove_run_dir(const char *run)
{
    static const char *const names[] = {"redis.sock", "redis.conf", "redis.conf.tmp"};
    char path[400];
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s", run, names[i]);
        unlink(path);
    }
    if (rmdir(run) != 0 && errno != ENOENT)
        ztb_log(ZTB_LOG_WARN, "redis.private_cleanup_failed", ZTB_F_STR("path", run),
                ZTB_F_STR("reason", strerror(errno)));
}

/* With redis.lock held (no earlier Redis alive): remove the run directories
 * of earlier starts. */
static void remove_stale_runs(void)
{
    DIR *d = opendir(g_dir);
    if (d == NULL)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, "run-", 4) != 0 || strlen(e->d_name) > 40)
            continue;
        char run[400];
        snprintf(run, sizeof(run), "%s/%.40s", g_dir, e->d_name);
        if (strcmp(run, g_run) != 0)
            remove_run_dir(run);
    }
    closedir(d);
}

/*
 * Point STATE/redis/redis.sock (the stable name tools and scripts use) at
 * this start's socket: a relative symlink put in place by rename, so a
 * reader sees the old link or the new one, never none.
 */
static void link_socket(void)
{
    char link[340], tmp[360], target[64];
    snprintf(link, sizeof(link), "%s/redis.sock", g_dir);
    snprintf(tmp, sizeof(tmp), "%s/redis.sock.new", g_dir);
    snprintf(target, sizeof(target), "%s/redis.sock", strrchr(g_run, '/') + 1);
    unlink(tmp);
    if (symlink(target, tmp) != 0 || rename(tmp, link) != 0)
        ztb_log(ZTB_LOG_WARN, "redis.private_link_failed", ZTB_F_STR("path", link),
                ZTB_F_STR("reason", strerror(errno)));
}

/* Remove the STATE/redis/redis.sock link if it still points at our socket. */
static void unlink_socket(void)
{
    char link[340], target[64], want[64];
    snprintf(link, sizeof(link), "%s/redis.sock", g_dir);
    snprintf(want, sizeof(want), "%s/redis.sock", strrchr(g_run, '/') + 1);
    ssize_t n = readlink(link, target, sizeof(target) - 1);
    if (n <= 0)
        return;
    target[n] = '\0';
    if (strcmp(target, want) == 0)
        unlink(link);
}

/*
 * Fork and exec redis-server with g_conf. The caller holds g_lockfd (the
 * data lock): the child inherits a copy of it without close-on-exec and
 * holds the lock for as long as it (or anything it forks) lives; the
 * broker's copy is closed here whatever happens. 0, or -1 (errno).
 */
static int spawn(void)
{
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        int saved = errno;
        close(g_lockfd);
        g_lockfd = -1;
        errno = saved;
        return -1;
    }
    if (pid == 0) {
        /* the child: its own process group so a ^C to the broker's group
         * reaches the broker, which then stops redis in order */
        setpgid(0, 0);
        /* if the broker dies without stopping us, stop too */
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent)
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
        if (dup(g_lockfd) < 0) /* the copy without FD_CLOEXEC survives exec */
            _exit(126);
        execlp(g_bin, g_bin, g_conf, (char *)NULL);
        _exit(127);
    }
    close(g_lockfd);
    g_lockfd = -1;
    g_pid = pid;
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
        /* a background save the dead Redis forked may still be writing */
        pthread_mutex_unlock(&g_lock);
        char err[300];
        ztb_err locked = take_data_lock(err, sizeof(err));
        pthread_mutex_lock(&g_lock);
        if (locked != ZTB_OK || g_stopping) {
            if (locked == ZTB_OK) {
                close(g_lockfd);
                g_lockfd = -1;
            } else if (!g_stopping) {
                ztb_log(ZTB_LOG_ERROR, "redis.private_spawn_failed", ZTB_F_STR("reason", err));
            }
            pthread_mutex_unlock(&g_lock);
            return NULL;
        }
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

/* Write this start's redis.conf (g_conf), atomically. */
static ztb_err write_conf(char *err, size_t errcap)
{
    char tmp[400];
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
            /* it has no replicas; an operator's `redis-cli --rdb` backup
             * (docs/operators.md) starts at once instead of after 5 s */
            "repl-diskless-sync-delay 0\n"
            "logfile %s/redis.log\n"
            "loglevel notice\n"
            "databases 1\n"
            "maxclients 1024\n",
            g_sock, g_dir, g_dir);
    int bad = fflush(f) != 0 || fsync(fd) != 0;
    bad |= fclose(f) != 0;
    if (bad || rename(tmp, g_conf) != 0) {
        snprintf(err, errcap, "writing %s: %s", g_conf, strerror(errno));
        return ZTB_ERR_IO;
    }
    return ZTB_OK;
}

/* Undo a start that failed before the supervisor took over. */
static void start_failed(void)
{
    if (g_lockfd >= 0) {
        close(g_lockfd);
        g_lockfd = -1;
    }
    if (g_run[0] != '\0')
        remove_run_dir(g_run);
    if (g_brokerfd >= 0) {
        close(g_brokerfd);
        g_brokerfd = -1;
    }
}

ztb_err redis_private_start(const char *state_dir, const char *redis_server, char *sock, size_t cap,
                            char *err, size_t errcap)
{
    g_run[0] = '\0';
    if ((size_t)snprintf(g_dir, sizeof(g_dir), "%s/redis", state_dir) >= sizeof(g_dir)) {
        snprintf(err, errcap, "state dir path too long");
        return ZTB_ERR_INVALID_ARG;
    }
    if (mkdir(g_dir, 0700) != 0 && errno != EEXIST) {
        snprintf(err, errcap, "%s: %s", g_dir, strerror(errno));
        return ZTB_ERR_IO;
    }
    if (chmod(g_dir, 0700) != 0) {
        snprintf(err, errcap, "%s: %s", g_dir, strerror(errno));
        return ZTB_ERR_IO;
    }
    unsigned char rnd[4];
    if (ztb_random(rnd, sizeof(rnd)) != ZTB_OK) {
        snprintf(err, errcap, "no randomness for the Redis run directory");
        return ZTB_ERR_INTERNAL;
    }
    snprintf(g_run, sizeof(g_run), "%s/run-%02x%02x%02x%02x", g_dir, rnd[0], rnd[1], rnd[2],
             rnd[3]);
    if ((size_t)snprintf(g_sock, sizeof(g_sock), "%s/redis.sock", g_run) >= sizeof(g_sock)) {
        snprintf(err, errcap, "state dir path too long for a unix socket (max %zu bytes)",
                 sizeof(g_sock) - 1 - strlen("/redis/run-00000000/redis.sock"));
        g_run[0] = '\0';
        return ZTB_ERR_INVALID_ARG;
    }
    snprintf(g_conf, sizeof(g_conf), "%s/redis.conf", g_run);
    snprintf(g_lockpath, sizeof(g_lockpath), "%s/redis.lock", g_dir);
    snprintf(g_bin, sizeof(g_bin), "%s", redis_server[0] ? redis_server : "redis-server");

    /* one broker per state directory: the one whose Redis this is */
    char path[340];
    snprintf(path, sizeof(path), "%s/broker.lock", g_dir);
    g_brokerfd = open_lock(path);
    if (g_brokerfd < 0 || flock(g_brokerfd, LOCK_EX | LOCK_NB) != 0) {
        int busy = g_brokerfd >= 0 && errno == EWOULDBLOCK;
        snprintf(err, errcap, "%s: %s", path,
                 busy ? "another ztb-broker runs its private Redis on this state directory"
                      : strerror(errno));
        g_run[0] = '\0';
        start_failed();
        return busy ? ZTB_ERR_STATE : ZTB_ERR_IO;
    }
    pthread_mutex_lock(&g_lock);
    g_stopping = 0;
    pthread_mutex_unlock(&g_lock);
    wait_legacy();
    /* never two Redis on one data directory */
    ztb_err rv = take_data_lock(err, errcap);
    if (rv != ZTB_OK) {
        g_run[0] = '\0';
        start_failed();
        return rv;
    }
    remove_stale_runs();
    if (mkdir(g_run, 0700) != 0) {
        snprintf(err, errcap, "%s: %s", g_run, strerror(errno));
        g_run[0] = '\0';
        start_failed();
        return ZTB_ERR_IO;
    }
    rv = write_conf(err, errcap);
    if (rv != ZTB_OK) {
        start_failed();
        return rv;
    }

    pthread_mutex_lock(&g_lock);
    int rc = spawn();
    pthread_mutex_unlock(&g_lock);
    if (rc != 0) {
        snprintf(err, errcap, "cannot start %s: %s", g_bin, strerror(errno));
        start_failed();
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
                     g_bin, WIFEXITED(status) ? WEXITSTATUS(status) : -1, g_dir);
            start_failed();
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
    link_socket();
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
    if (g_run[0] != '\0') {
        unlink_socket();
        remove_run_dir(g_run);
        g_run[0] = '\0';
    }
    if (g_lockfd >= 0) {
        close(g_lockfd);
        g_lockfd = -1;
    }
    if (g_brokerfd >= 0) {
        close(g_brokerfd);
        g_brokerfd = -1;
    }
}
