/*
 * ztbctl_run.h - run the built ztbctl against a scripted admin server
 * (admin_script.h) for the unit tests of its commands (header-only).
 *
 * The arguments go to ztbctl as an argv (no shell), so a test can pass
 * quotes, newlines and bytes that are not UTF-8 as they are. stdout and
 * stderr are kept apart (run_out, run_err); the request ztbctl sent is
 * kept split into its request line, its head and its body (req_line,
 * req_head, req_body).
 * refused() runs a command against a socket that only listens and checks
 * that ztbctl never connected to it. spawn(), wait_out() and finish() are
 * for the commands that run until interrupted (watch, --follow): ztbctl in
 * the background, its stdout read as it comes, then a signal.
 *
 * Include it after <cmocka.h> and admin_script.h, in a file that defines
 * _GNU_SOURCE first. SUDO_USER is taken out of ztbctl's environment unless
 * the test sets run_sudo_user.
 */
#ifndef ZTB_TEST_ZTBCTL_RUN_H
#define ZTB_TEST_ZTBCTL_RUN_H

#include <fcntl.h>
#include <poll.h>
#include <sys/wait.h>

/* A NULL-terminated argv for run() and friends: ARGV("agent", "list"). */
#define ARGV(...) ((const char *const[]){__VA_ARGS__, NULL})

static char run_out[1 << 16]; /* ztbctl's stdout */
static char run_err[1 << 16]; /* ztbctl's stderr */
static char req_line[4096];   /* "POST /v1/agents HTTP/1.1" */
static char req_head[8192];   /* the request line and headers, each ending in CRLF */
static char req_body[1 << 16];
static const char *run_stdin;     /* NULL: /dev/null */
static const char *run_sudo_user; /* NULL: no SUDO_USER */

/* The whole of file fd (from the start) into out (cap bytes, NUL-terminated). */
static inline void slurp(int fd, char *out, size_t cap)
{
    size_t n = 0;
    ssize_t r;
    lseek(fd, 0, SEEK_SET);
    while (n < cap - 1 && (r = read(fd, out + n, cap - 1 - n)) > 0)
        n += (size_t)r;
    out[n] = '\0';
}

/* A temporary file, already unlinked: its descriptor. */
static inline int tmpfd(void)
{
    char path[] = "/tmp/ztb-test-ctl-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);
    return fd;
}

/* Run `ztbctl --socket SOCK ARGS...`; fill run_out and run_err; return the exit status. */
static inline int run(const char *sock, const char *const *args)
{
    const char *bd = getenv("ZTB_BUILD_DIR");
    char bin[1024];
    snprintf(bin, sizeof(bin), "%s/bin/ztbctl", bd ? bd : ".");
    const char *argv[64] = {bin, "--socket", sock};
    size_t n = 3;
    for (size_t i = 0; args[i] != NULL && n < 63; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    int in = tmpfd(), o = tmpfd(), e = tmpfd();
    if (run_stdin != NULL) {
        assert_int_equal(write(in, run_stdin, strlen(run_stdin)), (ssize_t)strlen(run_stdin));
        lseek(in, 0, SEEK_SET);
    }
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (run_stdin == NULL) {
            close(in);
            in = open("/dev/null", O_RDONLY);
        }
        dup2(in, 0);
        dup2(o, 1);
        dup2(e, 2);
        unsetenv("ZTB_ADMIN_SOCKET");
        if (run_sudo_user != NULL)
            setenv("SUDO_USER", run_sudo_user, 1);
        else
            unsetenv("SUDO_USER");
        execv(bin, (char *const *)argv);
        _exit(127);
    }
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    slurp(o, run_out, sizeof(run_out));
    slurp(e, run_err, sizeof(run_err));
    close(in);
    close(o);
    close(e);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/*
 * Serve one answer (status such as "200 OK", a body) and run ztbctl ARGS
 * against it; the request is then in req_line and req_body. Returns the
 * exit status.
 */
static inline int call(const char *status, const char *body, const char *const *args)
{
    static char a[1 << 16];
    snprintf(a, sizeof(a),
             "HTTP/1.1 %s\r\nContent-Type: application/json\r\nContent-Length: "
             "%zu\r\n\r\n%s",
             status, strlen(body), body);
    struct server *s = server_start(a, 0);
    req_line[0] = req_head[0] = req_body[0] = '\0';
    int rc = run(s->path, args);
    server_wait(s);
    const char *eol = strstr(s->request, "\r\n");
    const char *end = strstr(s->request, "\r\n\r\n");
    if (eol != NULL)
        snprintf(req_line, sizeof(req_line), "%.*s", (int)(eol - s->request), s->request);
    if (end != NULL) {
        snprintf(req_head, sizeof(req_head), "%.*s", (int)(end + 2 - s->request), s->request);
        snprintf(req_body, sizeof(req_body), "%s", end + 4);
    }
    server_free(s);
    return rc;
}

/*
 * Run ztbctl ARGS against a socket that listens but never accepts; check
 * it exits with a usage error (2) without having connected. Returns
 * nothing: the message is in run_err.
 */
static inline void refused(const char *const *args)
{
    char path[108];
    snprintf(path, sizeof(path), "/tmp/ztb-test-quiet-%d.sock", (int)getpid());
    unlink(path);
    int lfd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
    assert_int_equal(bind(lfd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(lfd, 4), 0);
    int rc = run(path, args);
    /* ztbctl has exited: a connection it made waits in the backlog */
    struct pollfd p = {.fd = lfd, .events = POLLIN};
    int connected = poll(&p, 1, 0);
    close(lfd);
    unlink(path);
    if (rc != 2 || connected != 0) {
        fprintf(stderr, "args:");
        for (size_t i = 0; args[i] != NULL; i++)
            fprintf(stderr, " '%s'", args[i]);
        fprintf(stderr, "\nexit %d, connected %d, stderr: %s", rc, connected, run_err);
    }
    assert_int_equal(rc, 2);
    assert_int_equal(connected, 0);
    assert_string_equal(run_out, "");
}

/* A ztbctl running in the background: its stdout as read so far. */
struct spawned {
    pid_t pid;
    int out; /* the read end of its stdout */
    int err; /* its stderr, a temporary file */
    char got[1 << 16];
    size_t len;
};

/* Start `ztbctl --socket SOCK ARGS...` with stdout on a pipe (stderr in
 * run_err at finish()). */
static inline void spawn(struct spawned *sp, const char *sock, const char *const *args)
{
    const char *bd = getenv("ZTB_BUILD_DIR");
    char bin[1024];
    snprintf(bin, sizeof(bin), "%s/bin/ztbctl", bd ? bd : ".");
    const char *argv[64] = {bin, "--socket", sock};
    size_t n = 3;
    for (size_t i = 0; args[i] != NULL && n < 63; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    int p[2];
    assert_int_equal(pipe(p), 0);
    memset(sp, 0, sizeof(*sp));
    sp->err = tmpfd();
    fflush(NULL);
    sp->pid = fork();
    assert_true(sp->pid >= 0);
    if (sp->pid == 0) {
        int in = open("/dev/null", O_RDONLY);
        dup2(in, 0);
        dup2(p[1], 1);
        dup2(sp->err, 2);
        close(p[0]);
        unsetenv("ZTB_ADMIN_SOCKET");
        unsetenv("SUDO_USER");
        execv(bin, (char *const *)argv);
        _exit(127);
    }
    close(p[1]);
    sp->out = p[0];
}

/* Read the spawned command's stdout until needle has appeared count
 * times in all it printed, or timeout_ms pass; 1 if it did. */
static inline int wait_out(struct spawned *sp, const char *needle, int count, int timeout_ms)
{
    for (int waited = 0;; waited += 50) {
        int seen = 0;
        for (const char *q = sp->got; (q = strstr(q, needle)) != NULL; q += strlen(needle))
            seen++;
        if (seen >= count)
            return 1;
        if (waited >= timeout_ms)
            return 0;
        struct pollfd pf = {.fd = sp->out, .events = POLLIN};
        if (poll(&pf, 1, 50) == 1) {
            ssize_t r = read(sp->out, sp->got + sp->len, sizeof(sp->got) - 1 - sp->len);
            if (r > 0) {
                sp->len += (size_t)r;
                sp->got[sp->len] = '\0';
            } else {
                usleep(50000); /* closed: it exited */
            }
        }
    }
}

/* Send sig (0: none, it exits by itself) and reap it: its exit status
 * (-1 if killed by a signal or still running after 5 s); the rest of its
 * stdout in sp->got, its stderr in run_err. */
static inline int finish(struct spawned *sp, int sig)
{
    if (sig != 0)
        kill(sp->pid, sig);
    int st = 0, done = 0;
    for (int i = 0; i < 100 && !done; i++) {
        done = waitpid(sp->pid, &st, WNOHANG) == sp->pid;
        if (!done)
            usleep(50000);
    }
    if (!done) {
        kill(sp->pid, SIGKILL);
        waitpid(sp->pid, &st, 0);
    }
    ssize_t r;
    while ((r = read(sp->out, sp->got + sp->len, sizeof(sp->got) - 1 - sp->len)) > 0)
        sp->len += (size_t)r;
    sp->got[sp->len] = '\0';
    close(sp->out);
    slurp(sp->err, run_err, sizeof(run_err));
    close(sp->err);
    return done && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

#endif /* ZTB_TEST_ZTBCTL_RUN_H */
