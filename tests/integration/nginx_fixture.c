/*
 * nginx_fixture.c - nginx and an echoing backend for gateway tests (see
 * nginx_fixture.h).
 */
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"
#include "nginx_fixture.h"

#define NGINX_BIN "/usr/sbin/nginx"

char *nf_doc_block(const char *name)
{
    char path[512], marker[128];
    snprintf(path, sizeof(path), "%s/docs/gateways.md", getenv("ZTB_SOURCE_DIR"));
    snprintf(marker, sizeof(marker), "<!-- ztb-test: %s -->", name);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    static char text[262144];
    size_t n = fread(text, 1, sizeof(text) - 1, f);
    fclose(f);
    text[n] = '\0';
    char *m = strstr(text, marker);
    if (m == NULL)
        fail_msg("docs/gateways.md has no marker %s", marker);
    char *open = strstr(m, "\n```");
    assert_non_null(open);
    char *start = strchr(open + 1, '\n') + 1;
    char *close = strstr(start, "\n```");
    assert_non_null(close);
    return strndup(start, (size_t)(close - start + 1));
}

void nf_replace_once(char **s, const char *from, const char *to)
{
    char *p = strstr(*s, from);
    if (p == NULL || strstr(p + 1, from) != NULL)
        fail_msg("docs/gateways.md: %s must occur exactly once in the block", from);
    size_t n = strlen(*s) - strlen(from) + strlen(to) + 1;
    char *out = malloc(n);
    snprintf(out, n, "%.*s%s%s", (int)(p - *s), *s, to, p + strlen(from));
    free(*s);
    *s = out;
}

void nf_write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
    chmod(path, 0644);
}

static int listen_loopback(uint16_t *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(fd, 64), 0);
    socklen_t l = sizeof(a);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &l), 0);
    *port = ntohs(a.sin_port);
    return fd;
}

uint16_t nf_free_port(void)
{
    uint16_t port;
    close(listen_loopback(&port));
    return port;
}

/* ---- the backend ----------------------------------------------------------- */

static int backend_fd = -1;
static atomic_int backend_hits, backend_stop;
static pthread_t backend_thread;

static void backend_serve(int c)
{
    char buf[16384];
    size_t n = 0;
    char *end = NULL;
    while (n < sizeof(buf) - 1 && end == NULL) {
        ssize_t r = recv(c, buf + n, sizeof(buf) - 1 - n, 0);
        if (r <= 0)
            return;
        n += (size_t)r;
        buf[n] = '\0';
        end = strstr(buf, "\r\n\r\n");
    }
    if (end == NULL)
        return;
    char seen[4096] = "";
    size_t o = 0;
    for (char *line = strstr(buf, "\r\n") + 2; line < end;) {
        char *eol = strstr(line, "\r\n");
        if (strncasecmp(line, "X-Ztb-", 6) == 0 && o + (size_t)(eol - line) + 2 < sizeof(seen))
            o += (size_t)snprintf(seen + o, sizeof(seen) - o, "%.*s\n", (int)(eol - line), line);
        line = eol + 2;
    }
    atomic_fetch_add(&backend_hits, 1);
    char resp[4300];
    int rl = snprintf(resp, sizeof(resp),
                      "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n"
                      "Connection: close\r\n\r\n%s",
                      o, seen);
    if (send(c, resp, (size_t)rl, MSG_NOSIGNAL) < 0)
        return;
}

static void *backend_main(void *arg)
{
    (void)arg;
    while (!atomic_load(&backend_stop)) {
        struct pollfd p = {.fd = backend_fd, .events = POLLIN};
        if (poll(&p, 1, 100) <= 0)
            continue;
        int c = accept(backend_fd, NULL, NULL);
        if (c < 0)
            continue;
        backend_serve(c);
        close(c);
    }
    return NULL;
}

uint16_t nf_backend_start(void)
{
    uint16_t port;
    backend_fd = listen_loopback(&port);
    assert_int_equal(pthread_create(&backend_thread, NULL, backend_main, NULL), 0);
    return port;
}

void nf_backend_stop(void)
{
    if (backend_fd < 0)
        return;
    atomic_store(&backend_stop, 1);
    pthread_join(backend_thread, NULL);
    close(backend_fd);
    backend_fd = -1;
}

int nf_backend_hits(void)
{
    return atomic_load(&backend_hits);
}

/* ---- nginx --------------------------------------------------------------- */

pid_t nf_nginx_start(const char *dir, const char *server, uint16_t port)
{
    char conf[32768], path[400], elog[400];
    snprintf(conf, sizeof(conf),
             "daemon off;\nworker_processes 1;\npid %s/nginx.pid;\n"
             "error_log %s/error.log info;\nevents { worker_connections 64; }\n"
             "http {\n  access_log %s/access.log;\n  client_body_temp_path %s/body;\n"
             "  proxy_temp_path %s/proxy;\n  fastcgi_temp_path %s/fastcgi;\n"
             "  uwsgi_temp_path %s/uwsgi;\n  scgi_temp_path %s/scgi;\n%s}\n",
             dir, dir, dir, dir, dir, dir, dir, dir, server);
    snprintf(path, sizeof(path), "%s/nginx.conf", dir);
    nf_write_file(path, conf);
    if (access(NGINX_BIN, X_OK) != 0)
        fail_msg("%s missing: install the nginx package (scripts/install-deps.sh)", NGINX_BIN);
    snprintf(elog, sizeof(elog), "%s/error.log", dir);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        execl(NGINX_BIN, "nginx", "-p", dir, "-c", path, "-e", elog, (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 250; i++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in sa = {.sin_family = AF_INET,
                                 .sin_port = htons(port),
                                 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        int ok = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
        close(fd);
        if (ok)
            return pid;
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) {
            char *out = NULL;
            const char *cat[] = {"/bin/cat", elog, NULL};
            zh_run(cat, &out, NULL);
            fail_msg("nginx exited: %s", out ? out : "");
        }
        usleep(20000);
    }
    fail_msg("nginx did not start listening");
    return -1;
}

void nf_nginx_stop(pid_t pid)
{
    if (pid <= 0)
        return;
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
}
