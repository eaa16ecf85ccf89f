/*
 * test_admin_client.c - the admin API client against a scripted server on
 * a unix socket: the request it sends (method, path, headers, body; no
 * "Expect: 100-continue"), the answer it hands back whatever the status,
 * and its refusals: no socket, a server that never answers, an answer over
 * the size limit, bad arguments. An answer may carry a secret (a join
 * token, a signal source's secret): no block that held it is released or
 * moved unwiped (free and realloc are wrapped at link time, see CMakeLists).
 */
#define _GNU_SOURCE /* strcasestr, memmem */
#include <malloc.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "admin_script.h"
#include "cli/admin_client.h"

/* ---- free and realloc, watched ------------------------------------------- */

#define SECRET_MARK "ztbj_notwipedyet"

void __real_free(void *p);
void *__real_realloc(void *p, size_t n);
void __wrap_free(void *p);
void *__wrap_realloc(void *p, size_t n);

static atomic_int watching; /* 1: count blocks let go with SECRET_MARK inside */
static atomic_int unwiped;

static void check_block(void *p)
{
    if (p != NULL && atomic_load(&watching) &&
        memmem(p, malloc_usable_size(p), SECRET_MARK, strlen(SECRET_MARK)) != NULL)
        atomic_fetch_add(&unwiped, 1);
}

void __wrap_free(void *p)
{
    check_block(p);
    __real_free(p);
}

/* realloc may copy the block and release the old one as it is */
void *__wrap_realloc(void *p, size_t n)
{
    check_block(p);
    return __real_realloc(p, n);
}

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

/*
 * An answer holding a secret (here a join token, 400 times over so that the
 * answer buffer grows several times) is wiped before any block that held it
 * is released: on growth and by ztb_admin_response_free.
 */
static void test_answer_wiped_when_freed(void **state)
{
    (void)state;
    enum { COPIES = 400 };
    static char answer[50000];
    static char body[49152] = "[";
    for (int i = 0; i < COPIES; i++)
        snprintf(body + strlen(body), sizeof(body) - strlen(body),
                 "%s{\"join_token\":\"" SECRET_MARK "%063d\"}", i ? "," : "", i);
    strcat(body, "]");
    snprintf(answer, sizeof(answer),
             "HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: "
             "%zu\r\n\r\n%s",
             strlen(body), body);
    assert_true(strlen(body) > 32768); /* more than curl hands over at once, twice */
    struct server *s = server_start(answer, 0);
    struct ztb_admin_request rq = {.socket_path = s->path, .method = "POST", .path = "/v1/agents"};
    struct ztb_admin_response rs;
    char err[256];
    atomic_store(&unwiped, 0);
    atomic_store(&watching, 1);
    ztb_err rv = ztb_admin_call(&rq, &rs, err, sizeof(err));
    int during_call = atomic_load(&unwiped);
    if (rv == ZTB_OK) {
        assert_int_equal(rs.len, strlen(body));
        assert_memory_equal(rs.body, body, rs.len);
    }
    ztb_admin_response_free(&rs);
    atomic_store(&watching, 0);
    assert_int_equal(rv, ZTB_OK);
    assert_int_equal(during_call, 0);           /* growth: old blocks wiped */
    assert_int_equal(atomic_load(&unwiped), 0); /* the answer itself */
    server_stop(s);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN); /* the scripted server writes to clients that gave up */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_get),
        cmocka_unit_test(test_post_json_and_empty),
        cmocka_unit_test(test_error_answers_are_answers),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_answer_wiped_when_freed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
