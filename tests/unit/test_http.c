/* test_http.c - the HTTP server: routing, limits, responses, listeners. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "broker/http.h"
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

static const struct http_route routes[] = {
    {"POST", "/echo", echo, "echo"},
    {NULL, "/any/*", echo, "any"},
    {"GET", "/fail", fail_handler, "fail"},
    {"GET", "/huge", huge, "huge"},
};

struct fixture {
    struct http_server *s;
    char url[64];
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
    f.s = http_server_start("test", fd, routes, 4, &lim, NULL);
    assert_non_null(f.s);
    snprintf(f.url, sizeof(f.url), "http://127.0.0.1:%u", port);
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
}

static void test_error_json_escaped(void **state)
{
    struct fixture *f = *state;
    struct zh_resp r;
    req(f, "GET", "/fail", NULL, NULL, 0, NULL, &r);
    assert_int_equal(r.status, 400);
    assert_string_equal(
        r.body, "{\"error\":\"invalid_request\",\"error_description\":\"bad \\\"thing\\\"\\n\"}");
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_routing),
        cmocka_unit_test(test_error_json_escaped),
        cmocka_unit_test(test_body_limits),
        cmocka_unit_test(test_unix_listener),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
