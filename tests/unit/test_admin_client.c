/*
 * test_admin_client.c - the admin API client against a scripted server on
 * a unix socket: the request it sends (method, path, headers, body; no
 * "Expect: 100-continue"), the answer it hands back whatever the status,
 * and its refusals: no socket, a server that never answers, an answer over
 * the size limit, bad arguments.
 */
#define _GNU_SOURCE /* strcasestr */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "admin_script.h"
#include "cli/admin_client.h"

#define OK_JSON                                                                                    \
    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "                        \
    "13\r\n\r\n{\"agents\":[]}"

static void test_get(void **state)
{
    (void)state;
    struct server *s = server_start(OK_JSON, 0);
    struct ztb_admin_request rq = {.socket_path = s->path, .method = "GET", .path = "/v1/agents"};
    struct ztb_admin_response rs;
    char err[256];
    assert_int_equal(ztb_admin_call(&rq, &rs, err, sizeof(err)), ZTB_OK);
    assert_int_equal(rs.status, 200);
    assert_string_equal(rs.body, "{\"agents\":[]}");
    assert_int_equal(rs.len, 13);
    ztb_admin_response_free(&rs);
    assert_null(rs.body);
    ztb_admin_response_free(&rs); /* twice is fine */
    server_wait(s);
    assert_true(strncmp(s->request, "GET /v1/agents HTTP/1.1\r\n", 25) == 0);
    assert_non_null(strcasestr(s->request, "\r\nHost: localhost\r\n"));
    assert_null(strcasestr(s->request, "Content-Type"));
    server_free(s);
}

static void test_post_json_and_empty(void **state)
{
    (void)state;
    /* a large JSON body goes at once, with its type (no 100-continue wait) */
    struct server *s = server_start(OK_JSON, 0);
    size_t n = 200000;
    char *body = malloc(n);
    memset(body, ' ', n);
    body[0] = '{';
    body[n - 1] = '}';
    struct ztb_admin_request rq = {.socket_path = s->path,
                                   .method = "POST",
                                   .path = "/v1/agents",
                                   .content_type = "application/json",
                                   .body = body,
                                   .body_len = n};
    struct ztb_admin_response rs;
    char err[256];
    assert_int_equal(ztb_admin_call(&rq, &rs, err, sizeof(err)), ZTB_OK);
    ztb_admin_response_free(&rs);
    server_wait(s);
    assert_true(strncmp(s->request, "POST /v1/agents HTTP/1.1\r\n", 26) == 0);
    assert_non_null(strcasestr(s->request, "\r\nContent-Type: application/json\r\n"));
    assert_null(strcasestr(s->request, "100-continue"));
    assert_int_equal(content_length(s->request), n);
    const char *b = strstr(s->request, "\r\n\r\n") + 4;
    assert_int_equal(s->request_len - (size_t)(b - s->request), n);
    assert_memory_equal(b, body, n);
    free(body);
    server_free(s);

    /* a POST without a body says so (Content-Length: 0), with no type */
    s = server_start(OK_JSON, 0);
    struct ztb_admin_request rq2 = {
        .socket_path = s->path, .method = "POST", .path = "/v1/agents/bot/disable"};
    assert_int_equal(ztb_admin_call(&rq2, &rs, err, sizeof(err)), ZTB_OK);
    ztb_admin_response_free(&rs);
    server_wait(s);
    assert_true(strncmp(s->request, "POST /v1/agents/bot/disable HTTP/1.1\r\n", 38) == 0);
    assert_int_equal(content_length(s->request), 0);
    assert_non_null(strcasestr(s->request, "\r\nContent-Length: 0\r\n"));
    assert_null(strcasestr(s->request, "Content-Type"));
    server_free(s);
}

static void test_error_answers_are_answers(void **state)
{
    (void)state;
    static const char a[] =
        "HTTP/1.1 404 Not Found\r\nContent-Length: 21\r\n\r\n{\"error\":\"not_found\"}";
    struct server *s = server_start(a, 0);
    struct ztb_admin_request rq = {.socket_path = s->path, .method = "DELETE", .path = "/v1/x"};
    struct ztb_admin_response rs;
    char err[256];
    assert_int_equal(ztb_admin_call(&rq, &rs, err, sizeof(err)), ZTB_OK);
    assert_int_equal(rs.status, 404);
    assert_string_equal(rs.body, "{\"error\":\"not_found\"}");
    ztb_admin_response_free(&rs);
    server_stop(s);

    /* an empty answer is an empty string, not NULL */
    static const char e[] = "HTTP/1.1 204 No Content\r\n\r\n";
    s = server_start(e, 0);
    rq.socket_path = s->path;
    assert_int_equal(ztb_admin_call(&rq, &rs, err, sizeof(err)), ZTB_OK);
    assert_int_equal(rs.status, 204);
    assert_non_null(rs.body);
    assert_int_equal(rs.len, 0);
    ztb_admin_response_free(&rs);
    server_stop(s);
}

static void test_refusals(void **state)
{
    (void)state;
    struct ztb_admin_response rs;
    char err[256];
    /* nobody listening */
    struct ztb_admin_request rq = {
        .socket_path = "/nonexistent/admin.sock", .method = "GET", .path = "/v1/agents"};
    assert_int_equal(ztb_admin_call(&rq, &rs, err, sizeof(err)), ZTB_ERR_UNAVAILABLE);
    assert_int_equal(rs.status, 0);
    assert_null(rs.body);
    assert_true(err[0] != '\0');

    /* a server that never answers: the timeout ends the call */
    struct server *s = server_start(NULL, 0);
    rq.socket_path = s->path;
    rq.timeout_ms = 300;
    assert_int_equal(ztb_admin_call(&rq, &rs, err, sizeof(err)), ZTB_ERR_UNAVAILABLE);
    assert_null(rs.body);
    assert_non_null(strcasestr(err, "timeout"));
    server_stop(s);

    /* an answer over the limit is not read whole */
    s = server_start(NULL, ZTB_ADMIN_ANSWER_MAX + 1);
    rq.socket_path = s->path;
    rq.timeout_ms = 0;
    assert_int_equal(ztb_admin_call(&rq, &rs, err, sizeof(err)), ZTB_ERR_UNAVAILABLE);
    assert_null(rs.body);
    server_stop(s);

    /* bad arguments */
    struct ztb_admin_request bad[] = {
        {.socket_path = NULL, .method = "GET", .path = "/v1/agents"},
        {.socket_path = "/x", .method = NULL, .path = "/v1/agents"},
        {.socket_path = "/x", .method = "GET", .path = NULL},
        {.socket_path = "/x", .method = "GET", .path = "v1/agents"},
        {.socket_path = "/x", .method = "GET", .path = "@evil/v1"},
        {.socket_path = "/x", .method = "POST", .path = "/v1/agents", .body = NULL, .body_len = 3},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(ztb_admin_call(&bad[i], &rs, err, sizeof(err)), ZTB_ERR_INVALID_ARG);
    assert_int_equal(ztb_admin_call(NULL, &rs, err, sizeof(err)), ZTB_ERR_INVALID_ARG);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN); /* the scripted server writes to clients that gave up */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_get),
        cmocka_unit_test(test_post_json_and_empty),
        cmocka_unit_test(test_error_answers_are_answers),
        cmocka_unit_test(test_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
