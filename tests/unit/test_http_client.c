/* test_http_client.c - requests, headers, limits, errors and connection reuse. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "sdk/src/http_client.h"
#include "sdk_test.h"

static void handler(void *ud, const struct st_req *rq, struct st_resp *rs)
{
    (void)ud;
    if (strcmp(rq->url, "/echo") == 0) {
        char body[2048];
        snprintf(body, sizeof(body),
                 "{\"method\":\"%s\",\"ct\":\"%s\",\"dpop\":\"%s\",\"len\":%zu}", rq->method,
                 rq->content_type ? rq->content_type : "", rq->dpop ? rq->dpop : "", rq->body_len);
        st_resp_json(rs, 200, body);
    } else if (strcmp(rq->url, "/cache") == 0) {
        st_resp_json(rs, 200, "{}");
        st_resp_header(rs, "Cache-Control", "public, max-age=123");
    } else if (strcmp(rq->url, "/nostore") == 0) {
        st_resp_json(rs, 200, "{}");
        st_resp_header(rs, "Cache-Control", "no-store, max-age=5");
    } else if (strcmp(rq->url, "/slow-down") == 0) {
        st_resp_json(rs, 429, "{\"error\":\"slow_down\"}");
        st_resp_header(rs, "Retry-After", " 7 ");
    } else if (strcmp(rq->url, "/big") == 0) {
        rs->status = 200;
        memset(rs->body, 'x', 5000);
        rs->body[5000] = '\0';
    } else if (strcmp(rq->url, "/redirect") == 0) {
        rs->status = 302;
        st_resp_header(rs, "Location", "/echo");
    }
}

static void test_requests(void **state)
{
    (void)state;
    struct st_server s;
    st_server_start(&s, handler, NULL);
    struct http_client *c;
    assert_int_equal(http_client_new(NULL, &c), ZTB_OK);
    char url[128];
    struct http_response rs;

    snprintf(url, sizeof(url), "%s/echo", s.base);
    struct http_request rq = {.method = "POST",
                              .url = url,
                              .content_type = "application/x-www-form-urlencoded",
                              .body = "a=1&b=2",
                              .body_len = 7,
                              .headers = {"DPoP: proof-value", NULL}};
    assert_int_equal(http_client_do(c, &rq, &rs), ZTB_OK);
    assert_int_equal(rs.status, 200);
    assert_string_equal(ztb_buf_cstr(&rs.body),
                        "{\"method\":\"POST\",\"ct\":\"application/x-www-form-urlencoded\","
                        "\"dpop\":\"proof-value\",\"len\":7}");
    assert_true(rs.body.secret);
    assert_int_equal(rs.retry_after_s, -1);
    assert_int_equal(rs.max_age_s, -1);
    http_response_free(&rs);

    struct http_request get = {.method = "GET", .url = url};
    snprintf(url, sizeof(url), "%s/cache", s.base);
    assert_int_equal(http_client_do(c, &get, &rs), ZTB_OK);
    assert_int_equal(rs.max_age_s, 123);
    http_response_free(&rs);
    snprintf(url, sizeof(url), "%s/nostore", s.base);
    assert_int_equal(http_client_do(c, &get, &rs), ZTB_OK);
    assert_int_equal(rs.max_age_s, 0);
    http_response_free(&rs);
    snprintf(url, sizeof(url), "%s/slow-down", s.base);
    assert_int_equal(http_client_do(c, &get, &rs), ZTB_OK);
    assert_int_equal(rs.status, 429);
    assert_int_equal(rs.retry_after_s, 7);
    http_response_free(&rs);
    snprintf(url, sizeof(url), "%s/redirect", s.base);
    assert_int_equal(http_client_do(c, &get, &rs), ZTB_OK);
    assert_int_equal(rs.status, 302); /* never followed */
    http_response_free(&rs);

    /* a body over the cap */
    snprintf(url, sizeof(url), "%s/big", s.base);
    struct http_request small = {.method = "GET", .url = url, .max_body = 1000};
    assert_int_equal(http_client_do(c, &small, &rs), ZTB_ERR_TOO_LARGE);
    http_response_free(&rs);

    /* handles are reused: a second request goes out on a kept-alive connection */
    unsigned before = s.requests;
    snprintf(url, sizeof(url), "%s/echo", s.base);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(http_client_do(c, &get, &rs), ZTB_OK);
        http_response_free(&rs);
    }
    assert_int_equal(s.requests, before + 5);

    /* refused methods and arguments */
    struct http_request put = {.method = "PUT", .url = url};
    assert_int_equal(http_client_do(c, &put, &rs), ZTB_ERR_INVALID_ARG);
    http_response_free(&rs);
    http_client_free(c);
    st_server_stop(&s);
}

static void test_transport_errors(void **state)
{
    (void)state;
    struct http_client *c;
    struct http_client_opts o = {.timeout_ms = 2000, .connect_timeout_ms = 1000};
    assert_int_equal(http_client_new(&o, &c), ZTB_OK);
    struct http_response rs;
    struct http_request rq = {.method = "GET", .url = "http://127.0.0.1:1/x"};
    assert_int_equal(http_client_do(c, &rq, &rs), ZTB_ERR_UNAVAILABLE);
    assert_true(rs.error[0] != '\0');
    http_response_free(&rs);
    struct http_request bad = {.method = "GET", .url = "ftp://127.0.0.1/x"};
    assert_int_not_equal(http_client_do(c, &bad, &rs), ZTB_OK);
    http_response_free(&rs);
    http_client_free(c);
}

static void test_url_check(void **state)
{
    (void)state;
    assert_int_equal(http_url_check("https://broker.example/x", 0), ZTB_OK);
    assert_int_equal(http_url_check("http://127.0.0.1:8080", 0), ZTB_OK);
    assert_int_equal(http_url_check("http://localhost/", 0), ZTB_OK);
    assert_int_equal(http_url_check("http://[::1]:99/", 0), ZTB_OK);
    assert_int_equal(http_url_check("http://broker.example/", 0), ZTB_ERR_INVALID_ARG);
    assert_int_equal(http_url_check("http://broker.example/", 1), ZTB_OK);
    assert_int_equal(http_url_check("http://127.0.0.1.evil.example/", 0), ZTB_ERR_INVALID_ARG);
    assert_int_equal(http_url_check("https://user:pw@broker.example/", 0), ZTB_ERR_INVALID_ARG);
    assert_int_equal(http_url_check("https://broker.example/#frag", 0), ZTB_ERR_INVALID_ARG);
    assert_int_equal(http_url_check("ftp://broker.example/", 1), ZTB_ERR_INVALID_ARG);
    assert_int_equal(http_url_check("broker.example", 1), ZTB_ERR_INVALID_ARG);
    assert_int_equal(http_url_check(NULL, 1), ZTB_ERR_INVALID_ARG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_requests),
        cmocka_unit_test(test_transport_errors),
        cmocka_unit_test(test_url_check),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
