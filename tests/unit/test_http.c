/* test_http.c - the HTTP server: routing, limits, responses, listeners. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "broker/http/http.h"
#include "common/guard.h"
#include "harness.h"

static void echo(struct http_req *req, struct http_resp *resp)
{
    ztb_buf_reset(&resp->body);
    ztb_buf_printf(&resp->body, "{\"method\":\"%s\",\"len\":%zu,\"ct\":\"%s\",\"x\":\"%s\"}",
                   req->method, req->body_len, req->content_type ? req->content_type : "",
                   http_req_header(req, "X-Test") ? http_req_header(req, "X-Test") : "");
    resp->status = 200;
    http_resp_header(resp, "Cache-Control", "max-age=%d", 60);
    http_resp_header(resp, "Retry-After", "%d", 7);
}

static void fail_handler(struct http_req *req, struct http_resp *resp)
{
    (void)req;
    http_resp_error(resp, 400, "invalid_request", "bad \"thing\"\n");
}

static void huge(struct http_req *req, struct http_resp *resp)
{
    (void)req;
    for (int i = 0; i < 200000; i++)
        ztb_buf_append_str(&resp->body, "0123456789");
}

/* 200 if the request's body is a buffer (empty or not), 500 if NULL */
static void body_is_buffer(struct http_req *req, struct http_resp *resp)
{
    resp->status = req->body != NULL ? 200 : 500;
}

static const struct http_route routes[] = {
    {"POST", "/echo", echo, "echo"}, {"POST", "/body", body_is_buffer, "body"},
    {NULL, "/any/*", echo, "any"},   {"GET", "/fail", fail_handler, "fail"},
    {"GET", "/huge", huge, "huge"},
};

struct fixture {
    struct http_server *s;
    char url[64];
    uint16_t port;
};

static int setup(void **state)
{
    static struct fixture f;
    int fd;
    uint16_t port = 0;
    char err[256];
    assert_int_equal(http_listen_tcp("127.0.0.1", 0, &fd, &port, err, sizeof(err)), ZTB_OK);
    assert_true(port > 0);
    struct http_limits lim = {
        .max_body = 1024, .threads = 2, .connection_limit = 64, .connection_timeout_s = 5};
    f.s = http_server_start("test", fd, routes, ZTB_ARRAY_LEN(routes), &lim, NULL);
    assert_non_null(f.s);
    snprintf(f.url, sizeof(f.url), "http://127.0.0.1:%u", port);
    f.port = port;
    *state = &f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    http_server_stop(f->s);
    return 0;
}

static void req(struct fixture *f, const char *method, const char *path, const char *ctype,
                const char *body, size_t len, const char *const *hdrs, struct zh_resp *r)
{
    char url[256];
    snprintf(url, sizeof(url), "%s%s", f->url, path);
    assert_int_equal(zh_http(method, url, NULL, ctype, body, len, hdrs, r), 0);
}

static void test_routing(void **state)
{
    struct fixture *f = *state;
    struct zh_resp r;
    const char *h[] = {"X-Test: yes", NULL};
    req(f, "POST", "/echo", "text/plain", "hello", 5, h, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body,
                        "{\"method\":\"POST\",\"len\":5,\"ct\":\"text/plain\",\"x\":\"yes\"}");
    char v[96];
    assert_string_equal(zh_resp_header(&r, "Cache-Control", v, sizeof(v)), "max-age=60");
    assert_string_equal(zh_resp_header(&r, "Retry-After", v, sizeof(v)), "7");
    assert_string_equal(zh_resp_header(&r, "X-Content-Type-Options", v, sizeof(v)), "nosniff");
    zh_resp_free(&r);

    req(f, "DELETE", "/any/thing/deep", NULL, NULL, 0, NULL, &r);
    assert_int_equal(r.status, 200);
    zh_resp_free(&r);

    req(f, "GET", "/echo", NULL, NULL, 0, NULL, &r);
    assert_int_equal(r.status, 405);
    zh_resp_free(&r);
    req(f, "GET", "/echoo", NULL, NULL, 0, NULL, &r);
    assert_int_equal(r.status, 404);
    zh_resp_free(&r);
    req(f, "GET", "/an", NULL, NULL, 0, NULL, &r);
    assert_int_equal(r.status, 404);
    zh_resp_free(&r);

    /* an empty body is "", not NULL: handlers copy from it */
    req(f, "POST", "/body", "text/plain", "", 0, NULL, &r);
    assert_int_equal(r.status, 200);
    zh_resp_free(&r);
}

static void test_error_json_escaped(void **state)
{
    struct fixture *f = *state;
    struct zh_resp r;
    req(f, "GET", "/fail", NULL, NULL, 0, NULL, &r);
    assert_int_equal(r.status, 400);
    assert_string_equal(
        r.body, "{\"error\":\"invalid_request\",\"error_description\":\"bad \\\"thing\\\"\\n\","
                "\"ztb_error\":\"INVALID_REQUEST\"}");
    char v[96];
    assert_string_equal(zh_resp_header(&r, "Cache-Control", v, sizeof(v)), "no-store");
    zh_resp_free(&r);
}

static void test_body_limits(void **state)
{
    struct fixture *f = *state;
    struct zh_resp r;
    char body[4096];
    memset(body, 'b', sizeof(body));
    req(f, "POST", "/echo", "text/plain", body, 1024, NULL, &r); /* exactly the limit */
    assert_int_equal(r.status, 200);
    zh_resp_free(&r);
    req(f, "POST", "/echo", "text/plain", body, 1025, NULL, &r);
    assert_int_equal(r.status, 413);
    zh_resp_free(&r);
    /* a lying Content-Length is refused up front */
    const char *h[] = {"Content-Length: 99999999999999999999", NULL};
    req(f, "POST", "/echo", "text/plain", "x", 1, h, &r);
    assert_true(r.status == 413 || r.status == 400);
    zh_resp_free(&r);
    /* a handler that overflows its response gets a 500, not a partial body */
    req(f, "GET", "/huge", NULL, NULL, 0, NULL, &r);
    assert_int_equal(r.status, 500);
    zh_resp_free(&r);
    /* still serving */
    req(f, "POST", "/echo", "text/plain", "ok", 2, NULL, &r);
    assert_int_equal(r.status, 200);
    zh_resp_free(&r);
}

/* ---- raw sockets: what a hostile client sends, byte for byte ---------------- */

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static int raw_connect(const struct fixture *f)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(f->port)};
    inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
    assert_int_equal(connect(fd, (struct sockaddr *)&to, sizeof(to)), 0);
    return fd;
}

static void raw_send(int fd, const char *s)
{
    assert_int_equal(send(fd, s, strlen(s), MSG_NOSIGNAL), (ssize_t)strlen(s));
}

/*
 * Read what the server sends within ms milliseconds into out (NUL-terminated).
 * Returns 1 if the server closed the connection (EOF or reset), else 0.
 */
static int raw_read(int fd, char *out, size_t cap, unsigned ms)
{
    size_t n = 0;
    uint64_t end = now_ms() + ms;
    out[0] = '\0';
    for (;;) {
        uint64_t t = now_ms();
        if (t >= end)
            return 0;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, (int)(end - t)) <= 0)
            return 0;
        char tmp[4096];
        ssize_t got = recv(fd, tmp, sizeof(tmp), 0);
        if (got <= 0)
            return 1;
        size_t take = (size_t)got < cap - 1 - n ? (size_t)got : cap - 1 - n;
        memcpy(out + n, tmp, take);
        n += take;
        out[n] = '\0';
    }
}

/* Connect, send request, read for up to ms, close. Returns raw_read's. */
static int raw_once(const struct fixture *f, const char *request, char *out, size_t cap,
                    unsigned ms)
{
    int fd = raw_connect(f);
    raw_send(fd, request);
    int closed = raw_read(fd, out, cap, ms);
    close(fd);
    return closed;
}

/* An over-limit Content-Length is refused before the body is read: no
 * "100 Continue" invites it, the 413 comes at once, the connection closes. */
static void test_body_refused_before_read(void **state)
{
    struct fixture *f = *state;
    char buf[4096];
    uint64_t t0 = now_ms();
    int closed = raw_once(f,
                          "POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain\r\n"
                          "Content-Length: 1073741824\r\nExpect: 100-continue\r\n\r\n",
                          buf, sizeof(buf), 3000);
    print_message("huge Content-Length with Expect: %llu ms, closed %d, got: %.40s\n",
                  (unsigned long long)(now_ms() - t0), closed, buf);
    assert_null(strstr(buf, "100 Continue"));
    assert_int_equal(strncmp(buf, "HTTP/1.1 413", 12), 0);
    assert_true(closed);

    /* one byte over, no Expect, no body sent: answered without waiting for it */
    closed = raw_once(f,
                      "POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain\r\n"
                      "Content-Length: 1025\r\n\r\n",
                      buf, sizeof(buf), 3000);
    assert_int_equal(strncmp(buf, "HTTP/1.1 413", 12), 0);
    assert_true(closed);

    /* within the limit, Expect still gets its 100 Continue and a 200 */
    int fd = raw_connect(f);
    raw_send(fd, "POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain\r\n"
                 "Content-Length: 5\r\nExpect: 100-continue\r\n\r\n");
    raw_read(fd, buf, sizeof(buf), 1000);
    assert_int_equal(strncmp(buf, "HTTP/1.1 100", 12), 0);
    raw_send(fd, "hello");
    raw_read(fd, buf, sizeof(buf), 500);
    assert_int_equal(strncmp(buf, "HTTP/1.1 200", 12), 0);
    close(fd);
}

/* A chunked body that never ends is cut at the limit: 413, then closed,
 * while the client is still sending. */
static void test_endless_chunked_body_cut(void **state)
{
    struct fixture *f = *state;
    char buf[4096];
    int fd = raw_connect(f);
    raw_send(fd, "POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain\r\n"
                 "Transfer-Encoding: chunked\r\n\r\n");
    char chunk[256 + 16];
    memset(chunk, 'c', sizeof(chunk));
    memcpy(chunk, "100\r\n", 5);
    memcpy(chunk + 5 + 256, "\r\n", 2);
    chunk[5 + 256 + 2] = '\0';
    uint64_t t0 = now_ms();
    size_t sent = 0;
    int closed = 0;
    buf[0] = '\0';
    while (now_ms() - t0 < 4000 && !closed) {
        if (send(fd, chunk, strlen(chunk), MSG_NOSIGNAL | MSG_DONTWAIT) > 0)
            sent += 256;
        char part[4096];
        closed = raw_read(fd, part, sizeof(part), 20);
        if (buf[0] == '\0')
            snprintf(buf, sizeof(buf), "%s", part);
    }
    print_message("endless chunked body: %zu bytes sent in %llu ms, closed %d, got: %.40s\n", sent,
                  (unsigned long long)(now_ms() - t0), closed, buf);
    assert_int_equal(strncmp(buf, "HTTP/1.1 413", 12), 0);
    assert_true(closed);
    assert_true(sent < 64 * 1024);
    close(fd);

    /* a chunked body within the limit is read whole */
    raw_once(f,
             "POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain\r\n"
             "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n3\r\nabc\r\n0\r\n\r\n",
             buf, sizeof(buf), 1000);
    assert_int_equal(strncmp(buf, "HTTP/1.1 200", 12), 0);
    assert_non_null(strstr(buf, "\"len\":8"));
}

/* Send n raw bytes (NULs included). */
static void raw_send_n(int fd, const char *s, size_t n)
{
    assert_int_equal(send(fd, s, n, MSG_NOSIGNAL), (ssize_t)n);
}

/*
 * A raw NUL in the request target (RFC 9112 allows no control character
 * there): 400 on every endpoint, not the route of the part before it. A
 * proxy in front may read the whole target while the server would act on
 * the part before the NUL.
 */
static void test_nul_in_target(void **state)
{
    struct fixture *f = *state;
    static const char bad[] = "DELETE /any/ok\0/../../echo HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    char buf[4096];
    int fd = raw_connect(f);
    raw_send_n(fd, bad, sizeof(bad) - 1);
    int closed = raw_read(fd, buf, sizeof(buf), 2000);
    close(fd);
    if (strncmp(buf, "HTTP/1.1 400", 12) != 0)
        fail_msg("raw NUL in the target: want 400, got: %.60s", buf);
    assert_non_null(strstr(buf, "NUL"));
    assert_true(closed);
    static const char bad_post[] = "POST /echo\0x HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                   "Content-Type: text/plain\r\nContent-Length: 2\r\n\r\nhi";
    fd = raw_connect(f);
    raw_send_n(fd, bad_post, sizeof(bad_post) - 1);
    raw_read(fd, buf, sizeof(buf), 2000);
    close(fd);
    assert_int_equal(strncmp(buf, "HTTP/1.1 400", 12), 0);
    /* the same targets without the NUL are served */
    raw_once(f, "DELETE /any/ok HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", buf, sizeof(buf), 1000);
    assert_int_equal(strncmp(buf, "HTTP/1.1 200", 12), 0);
}

/*
 * A field that is not a list may come once (RFC 9110 §5.3): two
 * Authorization, Content-Type or Content-Length headers, in any case,
 * get 400 naming the field before any handler runs (which copy a handler,
 * a proxy or a gateway would read is anyone's guess: a valid credential
 * beside a junk one got through where only the first was read). One of
 * each is served.
 */
static void test_repeated_fields(void **state)
{
    struct fixture *f = *state;
    static const struct {
        const char *req, *field;
    } twice[] = {
        {"GET /any/x HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer a\r\n"
         "authorization: Bearer b\r\n\r\n",
         "Authorization"},
        {"POST /echo HTTP/1.1\r\nHost: h\r\nContent-Type: text/plain\r\n"
         "Content-Type: application/json\r\nContent-Length: 2\r\n\r\nhi",
         "Content-Type"},
        {"POST /echo HTTP/1.1\r\nHost: h\r\nContent-Type: text/plain\r\n"
         "Content-Length: 2\r\nContent-Length: 2\r\n\r\nhi",
         "Content-Length"},
        {"GET /any/x HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n", "Host"},
    };
    char buf[4096], want[64];
    for (size_t i = 0; i < sizeof(twice) / sizeof(twice[0]); i++) {
        raw_once(f, twice[i].req, buf, sizeof(buf), 2000);
        snprintf(want, sizeof(want), "more than one %s header", twice[i].field);
        if (strncmp(buf + 8, " 400", 4) != 0 || strstr(buf, want) == NULL)
            fail_msg("two %s headers: want 400 \"%s\", got: %.200s", twice[i].field, want, buf);
    }
    raw_once(f,
             "POST /echo HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer a\r\nDPoP: a.b.c\r\n"
             "Content-Type: text/plain\r\nContent-Length: 2\r\nAccept: a\r\nAccept: b\r\n\r\nhi",
             buf, sizeof(buf), 2000);
    assert_int_equal(strncmp(buf, "HTTP/1.1 200", 12), 0); /* a list field may repeat */
}

/* HTTP/1.1 requires Host (RFC 9112 §3.2): without it, 400. */
static void test_http11_without_host(void **state)
{
    struct fixture *f = *state;
    char buf[4096];
    raw_once(f, "POST /echo HTTP/1.1\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nhi",
             buf, sizeof(buf), 2000);
    assert_int_equal(strncmp(buf, "HTTP/1.1 400", 12), 0);
    assert_non_null(strstr(buf, "exactly one Host"));
    /* two Host headers are as bad as none */
    raw_once(f, "GET /any/x HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", buf, sizeof(buf), 2000);
    assert_int_equal(strncmp(buf, "HTTP/1.1 400", 12), 0);
    /* HTTP/1.0 has no such rule */
    raw_once(f, "POST /echo HTTP/1.0\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nhi",
             buf, sizeof(buf), 2000);
    assert_int_equal(strncmp(buf + 8, " 200", 4), 0);
}

/* In a child (limits changed there stay there): 0 if check() held. */
static int in_child(int (*check)(void))
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(check());
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 100;
}

/* A low soft limit under a high hard one is raised to what is needed. */
static int fit_raises_soft(void)
{
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < 2000)
        return 1; /* the machine cannot show it */
    rl.rlim_cur = 256;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
        return 2;
    if (http_fit_nofile(1000, 100) != 1000)
        return 3;
    getrlimit(RLIMIT_NOFILE, &rl);
    return rl.rlim_cur >= 1100 ? 0 : 4;
}

/* More than may be had: as far as the hard limit, and fewer connections. */
static int fit_shrinks_when_short(void)
{
    /* above fs.nr_open even root cannot raise the hard limit */
    unsigned long nr_open = 1048576;
    FILE *f = fopen("/proc/sys/fs/nr_open", "r");
    if (f != NULL) {
        if (fscanf(f, "%lu", &nr_open) != 1)
            nr_open = 1048576;
        fclose(f);
    }
    struct rlimit rl = {.rlim_cur = 300, .rlim_max = 600};
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
        return 1;
    unsigned conns = (unsigned)nr_open + 1;
    if (http_fit_nofile(conns, 100) != 500)
        return 2;
    getrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur != 600 && rl.rlim_cur != rl.rlim_max)
        return 3;
    /* a reserve larger than the limit still leaves the minimum */
    return http_fit_nofile(conns, 1000) == HTTP_MIN_CONNECTIONS ? 0 : 4;
}

/* Enough already: nothing changes. */
static int fit_enough(void)
{
    struct rlimit before, after;
    getrlimit(RLIMIT_NOFILE, &before);
    if (http_fit_nofile(10, 10) != 10)
        return 1;
    getrlimit(RLIMIT_NOFILE, &after);
    return before.rlim_cur == after.rlim_cur ? 0 : 2;
}

static void test_fit_nofile(void **state)
{
    (void)state;
    assert_int_equal(in_child(fit_raises_soft), 0);
    assert_int_equal(in_child(fit_shrinks_when_short), 0);
    assert_int_equal(in_child(fit_enough), 0);
}

static void test_unix_listener(void **state)
{
    (void)state;
    char dir[256], path[300], err[256];
    zh_tmpdir(dir, sizeof(dir));
    snprintf(path, sizeof(path), "%s/a.sock", dir);
    int fd;
    assert_int_equal(http_listen_unix(path, 0600, &fd, err, sizeof(err)), ZTB_OK);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    close(fd);
    /* an old socket is replaced; a regular file is not */
    assert_int_equal(http_listen_unix(path, 0660, &fd, err, sizeof(err)), ZTB_OK);
    close(fd);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0660);
    snprintf(path, sizeof(path), "%s/file", dir);
    FILE *fp = fopen(path, "w");
    fclose(fp);
    assert_int_equal(http_listen_unix(path, 0600, &fd, err, sizeof(err)), ZTB_ERR_EXISTS);
    char longp[200];
    memset(longp, 'a', sizeof(longp) - 1);
    longp[sizeof(longp) - 1] = '\0';
    assert_int_equal(http_listen_unix(longp, 0600, &fd, err, sizeof(err)), ZTB_ERR_INVALID_ARG);
    zh_rmtree(dir);

    uint16_t port;
    assert_int_equal(http_listen_tcp("256.1.1.1", 0, &fd, &port, err, sizeof(err)),
                     ZTB_ERR_INVALID_ARG);
}

/*
 * An admin socket's directory must be its owner's alone (the broker's user
 * or root, writable by nobody else): in a directory another user can write
 * (0777, /tmp-like 1777, group-writable), that user could put their own
 * socket in the broker's place between two starts and collect what
 * operators send (policies, approvals, sudo users' names), or swap the
 * socket for a symlink between bind and chmod. Refused, nothing created.
 */
static void test_unix_listener_directory(void **state)
{
    (void)state;
    char dir[256], path[300], err[256];
    zh_tmpdir(dir, sizeof(dir));
    snprintf(path, sizeof(path), "%s/admin.sock", dir);
    static const mode_t open_modes[] = {0777, 01777, 0775, 0733};
    struct stat st;
    int fd = -1;
    for (size_t i = 0; i < ZTB_ARRAY_LEN(open_modes); i++) {
        assert_int_equal(chmod(dir, open_modes[i]), 0);
        err[0] = '\0';
        assert_int_equal(http_listen_unix(path, 0600, &fd, err, sizeof(err)), ZTB_ERR_PERMISSION);
        assert_non_null(strstr(err, "writable"));
        assert_int_equal(lstat(path, &st), -1);
    }
    if (geteuid() == 0) { /* another user's directory (needs root to make) */
        assert_int_equal(chmod(dir, 0755), 0);
        assert_int_equal(chown(dir, 65534, 65534), 0);
        assert_int_equal(http_listen_unix(path, 0600, &fd, err, sizeof(err)), ZTB_ERR_PERMISSION);
        assert_int_equal(chown(dir, 0, 0), 0);
    }
    assert_int_equal(chmod(dir, 0755), 0);
    assert_int_equal(http_listen_unix(path, 0600, &fd, err, sizeof(err)), ZTB_OK);
    close(fd);
    zh_rmtree(dir);
}

/* A server of its own (4 threads: MHD's worker pool, the racy case) for the
 * drain tests; *port its port. */
static struct http_server *drain_server(struct fixture *f)
{
    int fd;
    char err[256];
    assert_int_equal(http_listen_tcp("127.0.0.1", 0, &fd, &f->port, err, sizeof(err)), ZTB_OK);
    struct http_limits lim = {
        .max_body = 1024, .threads = 4, .connection_limit = 64, .connection_timeout_s = 5};
    struct http_server *s =
        http_server_start("drain", fd, routes, ZTB_ARRAY_LEN(routes), &lim, NULL);
    assert_non_null(s);
    return s;
}

/*
 * Draining (SIGTERM): a request in flight is answered, with Connection:
 * close so that a keep-alive client goes elsewhere; a new connection is
 * closed unanswered; an idle keep-alive connection holds no request, so
 * the drain does not wait for it (the stop closes it).
 */
static void test_drain(void **state)
{
    (void)state;
    struct fixture d;
    struct http_server *s = drain_server(&d);
    char buf[4096];
    /* an idle keep-alive connection: one request answered, left open */
    int idle = raw_connect(&d);
    raw_send(idle, "POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain\r\n"
                   "Content-Length: 2\r\n\r\nhi");
    assert_int_equal(raw_read(idle, buf, sizeof(buf), 300), 0); /* answered, not closed */
    assert_int_equal(strncmp(buf, "HTTP/1.1 200", 12), 0);
    /* a request in flight: its body is not all there yet */
    int a = raw_connect(&d);
    raw_send(a, "POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain\r\n"
                "Content-Length: 5\r\n\r\nhe");
    uint64_t t0 = now_ms();
    while (http_server_in_flight(s) < 1 && now_ms() - t0 < 2000)
        usleep(1000);
    assert_int_equal(http_server_in_flight(s), 1);
    assert_int_equal(http_server_connections(s), 2);

    http_server_quiesce(s);
    int b = raw_connect(&d); /* the listen socket's backlog may still take it */
    send(b, "GET /fail HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 38, MSG_NOSIGNAL);
    assert_int_equal(raw_read(b, buf, sizeof(buf), 2000), 1);
    assert_string_equal(buf, ""); /* closed unanswered */
    close(b);

    raw_send(a, "llo");
    int closed = raw_read(a, buf, sizeof(buf), 2000);
    assert_int_equal(strncmp(buf, "HTTP/1.1 200", 12), 0);
    assert_non_null(strstr(buf, "\"len\":5"));
    char *conn = strstr(buf, "\r\nConnection: close\r\n");
    if (conn == NULL)
        fail_msg("no Connection: close while draining: %s", buf);
    assert_true(closed);
    close(a);
    /* nothing in flight while the idle connection is still open */
    t0 = now_ms();
    while (http_server_in_flight(s) > 0 && now_ms() - t0 < 2000)
        usleep(1000);
    assert_int_equal(http_server_in_flight(s), 0);
    /* the request completes before its connection is closed and counted
     * out: wait for the count, the way the in-flight count is waited for */
    t0 = now_ms();
    while (http_server_connections(s) > 1 && now_ms() - t0 < 2000)
        usleep(1000);
    assert_int_equal(http_server_connections(s), 1);
    http_server_stop(s);
    assert_int_equal(raw_read(idle, buf, sizeof(buf), 2000), 1); /* the stop closed it */
    close(idle);
}

struct knocker {
    uint16_t port;
    _Atomic int stop;
};

/* Connect, send a request, close; again, until told to stop. */
static void *knock(void *arg)
{
    struct knocker *k = arg;
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(k->port)};
    inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
    while (!atomic_load(&k->stop)) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
            break;
        if (connect(fd, (struct sockaddr *)&to, sizeof(to)) == 0)
            (void)send(fd, "GET /fail HTTP/1.1\r\nHost: x\r\n\r\n", 31, MSG_NOSIGNAL);
        close(fd);
    }
    return NULL;
}

/*
 * Draining while connections keep coming, many times over: the broker must
 * not abort. With MHD_quiesce_daemon the drain raced the worker threads for
 * the listen socket's removal from their epoll sets and libmicrohttpd
 * aborted the process now and then ("Failed to remove listen FD from epoll
 * set"): a SIGTERM that killed the broker instead of draining it.
 */
static void test_drain_under_load(void **state)
{
    (void)state;
    unsigned rounds = getenv("ZTB_DRAIN_ROUNDS") ? (unsigned)atoi(getenv("ZTB_DRAIN_ROUNDS")) : 30;
    for (unsigned i = 0; i < rounds; i++) {
        struct fixture d;
        struct http_server *s = drain_server(&d);
        struct knocker k = {.port = d.port};
        pthread_t t[3];
        for (int j = 0; j < 3; j++)
            assert_int_equal(pthread_create(&t[j], NULL, knock, &k), 0);
        usleep(2000 + (i % 7) * 500);
        http_server_quiesce(s);
        usleep(1000);
        atomic_store(&k.stop, 1);
        for (int j = 0; j < 3; j++)
            pthread_join(t[j], NULL);
        http_server_stop(s);
    }
}

/* A body read before authentication: the strict reader, its refusals named. */
static void test_json_strings(void **state)
{
    (void)state;
    static const char *const names[] = {"a", "b"};
    char *vals[2];
    size_t members;
    struct http_resp resp;
    memset(&resp, 0, sizeof(resp));
    ztb_buf_init(&resp.body, 4096);
    const char *ok = "{\"a\":\"x\\u00e9\",\"b\":1,\"c\":[{}]}";
    struct http_req req = {.body = (const uint8_t *)ok,
                           .body_len = strlen(ok),
                           .content_type = "application/json; charset=utf-8"};
    assert_int_equal(http_req_json_strings(&req, &resp, names, 2, vals, &members), 1);
    assert_string_equal(vals[0], "x\xc3\xa9");
    assert_null(vals[1]); /* not a string */
    assert_int_equal(members, 3);
    http_json_strings_free(vals, 2);
    assert_null(vals[0]);

    const char *bad[] = {"{\"a\":\"1\",\"\\u0061\":\"2\"}", "{\"a\":\"\\u0000\"}", "[]",
                         "{\"a\":\"1\"}x", ""};
    const char *why[] = {"duplicate member name", "\\u0000", "expected an object", "trailing bytes",
                         "expected an object"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        req.body = (const uint8_t *)bad[i];
        req.body_len = strlen(bad[i]);
        ztb_buf_reset(&resp.body);
        assert_int_equal(http_req_json_strings(&req, &resp, names, 2, vals, &members), 0);
        assert_int_equal(resp.status, 400);
        assert_null(vals[0]);
        if (strstr(ztb_buf_cstr(&resp.body), why[i]) == NULL)
            fail_msg("%s: want \"%s\" in %s", bad[i], why[i], ztb_buf_cstr(&resp.body));
    }
    req.content_type = "text/plain";
    assert_int_equal(http_req_json_strings(&req, &resp, names, 2, vals, &members), 0);
    assert_int_equal(resp.status, 415);
    ztb_buf_free(&resp.body);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_routing),
        cmocka_unit_test(test_error_json_escaped),
        cmocka_unit_test(test_body_limits),
        cmocka_unit_test(test_body_refused_before_read),
        cmocka_unit_test(test_endless_chunked_body_cut),
        cmocka_unit_test(test_repeated_fields),
        cmocka_unit_test(test_http11_without_host),
        cmocka_unit_test(test_nul_in_target),
        cmocka_unit_test(test_fit_nofile),
        cmocka_unit_test(test_unix_listener),
        cmocka_unit_test(test_unix_listener_directory),
        cmocka_unit_test(test_json_strings),
        cmocka_unit_test(test_drain),
        cmocka_unit_test(test_drain_under_load),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
