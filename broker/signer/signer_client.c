/*
 * signer_client.c - start, call and supervise the signer (see
 * signer_client.h).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/time.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "broker/signer/signer_client.h"
#include "common/log.h"
#include "common/secret.h"

#define QUICK_TIMEOUT_MS 2000  /* SIGN, MAC, CA_SIGN: a signature takes ~25 µs */
#define SLOW_TIMEOUT_MS  30000 /* key store work; an encrypted store runs a KDF */
#define HELLO_TIMEOUT_MS 60000
#define BACKOFF_FIRST_MS 1000
#define BACKOFF_MAX_MS   30000
#define STABLE_S         60   /* a signer that ran this long resets the back-off */
#define STOP_GRACE_MS    2000 /* a signer that has not exited by then is killed */

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_cv = PTHREAD_COND_INITIALIZER; /* a channel came free; stop */
static int g_free[SIGNER_MAX_CHANNELS];                /* parent ends, under g_mu */
static unsigned g_nfree;
static unsigned g_nch;
static uint64_t g_gen; /* bumped when the channel set is replaced */
static _Atomic int g_up;
static _Atomic pid_t g_pid;
static _Atomic uint32_t g_seq;
static int g_stopping;
static int g_started;

static struct signer_opts g_opts;
static char g_exe[4096];
static int g_inproc;
static pthread_t g_sup;
static int g_sup_running;
static int g_sup_done; /* under g_mu: the supervisor has returned */
static void (*g_on_restart)(void);
static pthread_t g_inproc_th; /* the in-process mode's serving thread */
static unsigned g_inproc_n;   /* channels it serves; 0: none running */

static int g_inproc_fd[SIGNER_MAX_CHANNELS]; /* what it serves, closed when it returns */

static void *inproc_serve(void *arg)
{
    (void)arg;
    signer_serve_channels(g_inproc_fd, g_inproc_n);
    for (unsigned i = 0; i < g_inproc_n; i++)
        close(g_inproc_fd[i]);
    return NULL;
}

/* Read the hello from fd within the deadline. */
static ztb_err read_hello(int fd, char *err, size_t errcap)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    struct signer_hello h;
    int pr = poll(&p, 1, HELLO_TIMEOUT_MS);
    ssize_t n = pr == 1 ? recv(fd, &h, sizeof(h), MSG_TRUNC) : -1;
    if (n != (ssize_t)sizeof(h) || h.version != SIGNER_PROTO_VERSION) {
        snprintf(err, errcap, "the signer process did not start (see its log lines above)");
        return ZTB_ERR_UNAVAILABLE;
    }
    h.msg[sizeof(h.msg) - 1] = '\0';
    if (h.err != ZTB_OK) {
        snprintf(err, errcap, "%s", h.msg);
        return (ztb_err)h.err;
    }
    return ZTB_OK;
}

/*
 * Make the channels and start a signer on their other ends: a process
 * running g_exe, or (g_inproc) threads of this one. On success the parent
 * ends are the free pool (a new generation) and g_up is set.
 */
static ztb_err spawn_signer(char *err, size_t errcap)
{
    int parent[SIGNER_MAX_CHANNELS], child[SIGNER_MAX_CHANNELS];
    for (unsigned i = 0; i < SIGNER_MAX_CHANNELS; i++)
        parent[i] = child[i] = -1;
    unsigned made = 0;
    ztb_err rv = ZTB_OK;
    pid_t pid = 0;
    for (; made < g_nch; made++) {
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0)
            break;
        parent[made] = sv[0];
        struct timeval tv = {.tv_sec = QUICK_TIMEOUT_MS / 1000,
                             .tv_usec = (QUICK_TIMEOUT_MS % 1000) * 1000};
        (void)setsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        /* above every target slot, so the dup2s below cannot clobber each other */
        child[made] = fcntl(sv[1], F_DUPFD_CLOEXEC, SIGNER_FIRST_FD + SIGNER_MAX_CHANNELS);
        close(sv[1]);
        if (child[made] < 0) {
            close(sv[0]);
            break;
        }
    }
    if (made < g_nch) {
        snprintf(err, errcap, "cannot make the signer's channels: %s", strerror(errno));
        rv = ZTB_ERR_IO;
        goto out;
    }
    if (g_inproc) {
        rv = signer_load(&g_opts, err, errcap);
        if (rv == ZTB_OK) {
            memcpy(g_inproc_fd, child, g_nch * sizeof(int));
            g_inproc_n = g_nch;
            if (pthread_create(&g_inproc_th, NULL, inproc_serve, NULL) != 0) {
                g_inproc_n = 0;
                rv = ZTB_ERR_INTERNAL;
            } else {
                for (unsigned i = 0; i < g_nch; i++)
                    child[i] = -1; /* the thread owns them */
            }
        }
    } else {
        char nch[16], level[16], format[16];
        snprintf(nch, sizeof(nch), "%u", g_nch);
        snprintf(level, sizeof(level), "%d", (int)ztb_log_get_level());
        snprintf(format, sizeof(format), "%d", (int)ztb_log_get_format());
        char *argv[] = {g_exe,
                        SIGNER_ARGV1,
                        nch,
                        g_opts.keys_dir,
                        g_opts.passphrase_file,
                        g_opts.session_key_file,
                        level,
                        format,
                        NULL};
        posix_spawn_file_actions_t fa;
        posix_spawnattr_t at;
        sigset_t none, dflt;
        sigemptyset(&none);
        sigemptyset(&dflt);
        sigaddset(&dflt, SIGTERM);
        sigaddset(&dflt, SIGINT);
        sigaddset(&dflt, SIGHUP);
        sigaddset(&dflt, SIGPIPE);
        posix_spawn_file_actions_init(&fa);
        posix_spawnattr_init(&at);
        for (unsigned i = 0; i < g_nch; i++)
            posix_spawn_file_actions_adddup2(&fa, child[i], SIGNER_FIRST_FD + (int)i);
        /* its own process group: a terminal's ^C goes to the broker, which
         * drains and then stops the signer itself */
        posix_spawnattr_setpgroup(&at, 0);
        posix_spawnattr_setsigmask(&at, &none);
        posix_spawnattr_setsigdefault(&at, &dflt);
        posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
                                          POSIX_SPAWN_SETSIGDEF);
        extern char **environ;
        int e = posix_spawn(&pid, g_exe, &fa, &at, argv, environ);
        posix_spawn_file_actions_destroy(&fa);
        posix_spawnattr_destroy(&at);
        if (e != 0) {
            snprintf(err, errcap, "cannot start the signer %s: %s", g_exe, strerror(e));
            rv = ZTB_ERR_IO;
        }
        for (unsigned i = 0; i < g_nch; i++) {
            close(child[i]);
            child[i] = -1;
        }
        if (rv == ZTB_OK)
            rv = read_hello(parent[0], err, errcap);
        if (rv != ZTB_OK && pid > 0) {
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
            pid = 0;
        }
    }
out:
    if (rv != ZTB_OK) {
        for (unsigned i = 0; i < made; i++) {
            if (parent[i] >= 0)
                close(parent[i]);
            if (child[i] >= 0)
                close(child[i]);
        }
        return rv;
    }
    pthread_mutex_lock(&g_mu);
    memcpy(g_free, parent, g_nch * sizeof(int));
    g_nfree = g_nch;
    g_gen++;
    atomic_store(&g_pid, pid);
    atomic_store(&g_up, 1);
    pthread_cond_broadcast(&g_cv);
    pthread_mutex_unlock(&g_mu);
    return ZTB_OK;
}

/* Mark the signer down and close the free channels (those in use are closed
 * when given back: their generation is old). */
static void mark_down(void)
{
    pthread_mutex_lock(&g_mu);
    atomic_store(&g_up, 0);
    for (unsigned i = 0; i < g_nfree; i++)
        close(g_free[i]);
    g_nfree = 0;
    g_gen++;
    pthread_cond_broadcast(&g_cv);
    pthread_mutex_unlock(&g_mu);
}

/* The CLOCK_REALTIME time ms from now (condition variables wait on it). */
static struct timespec deadline_in(unsigned ms)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += ms / 1000;
    until.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    return until;
}

/* Sleep ms unless stopping; returns 1 if stopping. */
static int pause_ms(unsigned ms)
{
    struct timespec until = deadline_in(ms);
    pthread_mutex_lock(&g_mu);
    while (!g_stopping && pthread_cond_timedwait(&g_cv, &g_mu, &until) != ETIMEDOUT)
        ;
    int stop = g_stopping;
    pthread_mutex_unlock(&g_mu);
    return stop;
}

static void *supervise(void *arg)
{
    (void)arg;
    unsigned backoff = BACKOFF_FIRST_MS;
    time_t started = time(NULL);
    for (;;) {
        pid_t pid = atomic_load(&g_pid);
        int st = 0;
        if (pid > 0 && waitpid(pid, &st, 0) < 0 && errno == EINTR)
            continue;
        mark_down();
        pthread_mutex_lock(&g_mu);
        int stop = g_stopping;
        pthread_mutex_unlock(&g_mu);
        if (stop)
            break;
        if (pid > 0)
            ztb_log(ZTB_LOG_ERROR, "signer.exited", ZTB_F_INT("pid", pid),
                    ZTB_F_INT("status", WIFEXITED(st) ? WEXITSTATUS(st) : -1),
                    ZTB_F_INT("signal", WIFSIGNALED(st) ? WTERMSIG(st) : 0),
                    ZTB_F_INT("retry_in_ms", backoff));
        atomic_store(&g_pid, 0);
        if (time(NULL) - started >= STABLE_S)
            backoff = BACKOFF_FIRST_MS;
        if (pause_ms(backoff))
            break;
        char err[512] = "";
        ztb_err rv = spawn_signer(err, sizeof(err));
        if (rv != ZTB_OK) {
            ztb_log(ZTB_LOG_ERROR, "signer.restart_failed", ZTB_F_ERR(rv),
                    ZTB_F_STR("reason", err));
            backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
            continue;
        }
        started = time(NULL);
        backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
        ztb_log(ZTB_LOG_INFO, "signer.restarted", ZTB_F_INT("pid", atomic_load(&g_pid)));
        if (g_on_restart != NULL)
            g_on_restart();
    }
    pthread_mutex_lock(&g_mu);
    g_sup_done = 1;
    pthread_cond_broadcast(&g_cv);
    pthread_mutex_unlock(&g_mu);
    return NULL;
}

/* Wait up to ms for the supervisor to return; 1 if it did. */
static int supervisor_done_within(unsigned ms)
{
    struct timespec until = deadline_in(ms);
    pthread_mutex_lock(&g_mu);
    while (!g_sup_done && pthread_cond_timedwait(&g_cv, &g_mu, &until) != ETIMEDOUT)
        ;
    int done = g_sup_done;
    pthread_mutex_unlock(&g_mu);
    return done;
}

ztb_err signer_client_start(const struct signer_opts *o, const char *exe, unsigned channels,
                            void (*on_restart)(void), char *err, size_t errcap)
{
    if (g_started) {
        snprintf(err, errcap, "the signer is already started");
        return ZTB_ERR_STATE;
    }
    if (channels < 1 || channels > SIGNER_MAX_CHANNELS) {
        snprintf(err, errcap, "between 1 and %d signer channels", SIGNER_MAX_CHANNELS);
        return ZTB_ERR_INVALID_ARG;
    }
    g_opts = *o;
    g_nch = channels;
    g_inproc = exe == NULL;
    g_exe[0] = '\0';
    if (exe != NULL)
        snprintf(g_exe, sizeof(g_exe), "%s", exe);
    g_on_restart = on_restart;
    g_stopping = 0;
    g_sup_done = 0;
    ztb_err rv = spawn_signer(err, errcap);
    if (rv != ZTB_OK) {
        if (g_inproc)
            signer_unload();
        return rv;
    }
    g_started = 1;
    if (!g_inproc) {
        if (pthread_create(&g_sup, NULL, supervise, NULL) != 0) {
            signer_client_stop();
            snprintf(err, errcap, "cannot start the signer's supervisor thread");
            return ZTB_ERR_INTERNAL;
        }
        g_sup_running = 1;
    }
    return ZTB_OK;
}

void signer_client_stop(void)
{
    if (!g_started)
        return;
    pthread_mutex_lock(&g_mu);
    g_stopping = 1;
    pthread_cond_broadcast(&g_cv);
    pthread_mutex_unlock(&g_mu);
    pid_t pid = atomic_load(&g_pid);
    mark_down(); /* closing its channels ends the signer */
    if (g_sup_running) {
        /* closed channels end a healthy signer; SIGTERM one that still holds
         * a channel somewhere, SIGCONT one that was stopped, and SIGKILL one
         * that is hung: a stop must not wait forever on the signer */
        if (pid > 0) {
            kill(pid, SIGTERM);
            kill(pid, SIGCONT);
        }
        if (!supervisor_done_within(STOP_GRACE_MS) && pid > 0) {
            ztb_log(ZTB_LOG_WARN, "signer.killed_at_stop", ZTB_F_INT("pid", pid),
                    ZTB_F_INT("grace_ms", STOP_GRACE_MS));
            kill(pid, SIGKILL);
        }
        pthread_join(g_sup, NULL);
        g_sup_running = 0;
    }
    if (g_inproc_n > 0)
        pthread_join(g_inproc_th, NULL);
    if (g_inproc && g_inproc_n > 0)
        signer_unload();
    g_inproc_n = 0;
    atomic_store(&g_pid, 0);
    g_started = 0;
}

int signer_client_up(void)
{
    return atomic_load(&g_up);
}

pid_t signer_client_pid(void)
{
    return atomic_load(&g_pid);
}

/* A free channel, or -1 if the signer is down or none came free in time. */
static int take_channel(uint64_t *gen)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += QUICK_TIMEOUT_MS / 1000;
    int fd = -1;
    pthread_mutex_lock(&g_mu);
    while (atomic_load(&g_up) && g_nfree == 0 && !g_stopping)
        if (pthread_cond_timedwait(&g_cv, &g_mu, &until) == ETIMEDOUT)
            break;
    if (atomic_load(&g_up) && g_nfree > 0 && !g_stopping) {
        fd = g_free[--g_nfree];
        *gen = g_gen;
    }
    pthread_mutex_unlock(&g_mu);
    return fd;
}

static void give_channel(int fd, uint64_t gen, int broken)
{
    pthread_mutex_lock(&g_mu);
    if (!broken && gen == g_gen && g_nfree < SIGNER_MAX_CHANNELS) {
        g_free[g_nfree++] = fd;
        fd = -1;
        pthread_cond_signal(&g_cv);
    }
    pthread_mutex_unlock(&g_mu);
    if (fd >= 0)
        close(fd);
}

static int64_t now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

ztb_err signer_send(struct signer_req *req, struct signer_pending *p)
{
    p->fd = -1;
    if (!atomic_load(&g_up))
        return ZTB_ERR_UNAVAILABLE;
    if (signer_resp_size(req->op) == 0)
        return ZTB_ERR_INVALID_ARG;
    p->fd = take_channel(&p->gen);
    if (p->fd < 0)
        return ZTB_ERR_UNAVAILABLE;
    req->version = SIGNER_PROTO_VERSION;
    req->seq = atomic_fetch_add(&g_seq, 1) + 1;
    int quick =
        req->op == SIGNER_OP_SIGN || req->op == SIGNER_OP_MAC || req->op == SIGNER_OP_CA_SIGN;
    p->deadline_ms = now_ms() + (quick ? QUICK_TIMEOUT_MS : SLOW_TIMEOUT_MS);
    if (send(p->fd, req, sizeof(*req), MSG_NOSIGNAL) != (ssize_t)sizeof(*req)) {
        give_channel(p->fd, p->gen, 1);
        p->fd = -1;
        return ZTB_ERR_UNAVAILABLE;
    }
    return ZTB_OK;
}

ztb_err signer_recv(struct signer_pending *p, const struct signer_req *req, void *out,
                    size_t outsize)
{
    size_t want = signer_resp_size(req->op);
    if (p->fd < 0) {
        ztb_wipe(out, outsize);
        return ZTB_ERR_UNAVAILABLE;
    }
    if (want == 0 || outsize != want) {
        give_channel(p->fd, p->gen, 1); /* its answer is unread: out of step */
        p->fd = -1;
        return ZTB_ERR_INVALID_ARG;
    }
    /* out holds an answer only when one came: wiped first, and again if
     * the answer is refused after it was decoded into out */
    ztb_wipe(out, outsize);
    uint8_t small[sizeof(struct signer_resp)];
    uint8_t *buf = want <= sizeof(small) ? small : malloc(want);
    ztb_err rv = ZTB_ERR_UNAVAILABLE;
    int broken = 0;
    if (buf == NULL) {
        give_channel(p->fd, p->gen, 1);
        p->fd = -1;
        return ZTB_ERR_NOMEM;
    }
    for (;;) {
        /* the channel's receive timeout (QUICK_TIMEOUT_MS, set when it was
         * made) bounds each wait: one system call per answer, no poll */
        ssize_t n = recv(p->fd, buf, want, MSG_TRUNC);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) &&
            now_ms() < p->deadline_ms)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
            /* no answer in time: presume it hung, and let the supervisor
             * start a fresh one (fail closed now, recover soon) */
            pid_t pid = atomic_load(&g_pid);
            ztb_log(ZTB_LOG_ERROR, "signer.timeout", ZTB_F_INT("op", req->op),
                    ZTB_F_INT("pid", pid));
            if (pid > 0)
                kill(pid, SIGKILL);
            broken = 1;
            rv = ZTB_ERR_UNAVAILABLE;
            break;
        }
        if (n <= 0) { /* the signer is gone */
            broken = 1;
            rv = ZTB_ERR_UNAVAILABLE;
            break;
        }
        rv = signer_resp_decode(req, buf, (size_t)n, out, outsize);
        if (rv == ZTB_ERR_STATE) /* an answer to an abandoned call: skip it */
            continue;
        if (rv != ZTB_OK) {
            ztb_log(ZTB_LOG_ERROR, "signer.bad_answer", ZTB_F_ERR(rv), ZTB_F_INT("bytes", n));
            broken = 1; /* out of step: do not reuse */
            rv = ZTB_ERR_UNAVAILABLE;
            break;
        }
        rv = (ztb_err)((const struct signer_resp *)out)->err; /* err is at the same offset */
        break;
    }
    ztb_wipe(buf, want); /* a MAC may have passed through it */
    if (buf != small)
        free(buf);
    if (broken)
        ztb_wipe(out, outsize);
    give_channel(p->fd, p->gen, broken);
    p->fd = -1;
    return rv;
}

void signer_cancel(struct signer_pending *p, const struct signer_req *req)
{
    if (p->fd < 0)
        return;
    /* read the answer and drop it, so the channel goes back in step: answers
     * left unread would pile up until the signer blocks on a full channel */
    uint8_t out[sizeof(struct signer_state)];
    size_t want = signer_resp_size(req->op);
    if (want == 0 || want > sizeof(out)) {
        give_channel(p->fd, p->gen, 1);
        p->fd = -1;
        return;
    }
    (void)signer_recv(p, req, out, want);
    ztb_wipe(out, want);
}

ztb_err signer_call(struct signer_req *req, void *out, size_t outsize)
{
    if (signer_resp_size(req->op) == 0 || outsize != signer_resp_size(req->op))
        return ZTB_ERR_INVALID_ARG;
    struct signer_pending p;
    ztb_err rv = signer_send(req, &p);
    if (rv != ZTB_OK) {
        ztb_wipe(out, outsize); /* no answer: nothing in out to be mistaken for one */
        return rv;
    }
    return signer_recv(&p, req, out, outsize);
}
