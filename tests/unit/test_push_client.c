/*
 * test_push_client.c - the outbound POST: only http(s) URLs without spaces
 * or control characters, no answer from a closed port is UNAVAILABLE (a
 * retry), and the back-off doubles, is capped, and has jitter below it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "broker/http/push_client.h"

static void test_urls(void **state)
{
    (void)state;
    assert_true(push_url_ok("https://gw.example/ssf/events"));
    assert_true(push_url_ok("http://127.0.0.1:8080/x"));
    assert_false(push_url_ok(NULL));
    assert_false(push_url_ok("ftp://gw.example/x"));
    assert_false(push_url_ok("file:///etc/passwd"));
    assert_false(push_url_ok("https://"));
    assert_false(push_url_ok("https:///x"));
    assert_false(push_url_ok("https://gw example/x"));
    assert_false(push_url_ok("https://gw.example/x\r\nHost: evil"));
    assert_false(push_url_ok("HTTPS://gw.example/"));
}

static void test_post_errors(void **state)
{
    (void)state;
    assert_int_equal(push_client_init(), ZTB_OK);
    struct push_answer a;
    struct push_request r = {
        .url = "gopher://x/", .content_type = "text/plain", .body = "x", .body_len = 1};
    assert_int_equal(push_post(&r, &a), ZTB_ERR_INVALID_ARG);
    r.url = "http://127.0.0.1:1/nothing-listens-here";
    r.timeout_ms = 2000;
    assert_int_equal(push_post(&r, &a), ZTB_ERR_UNAVAILABLE);
    assert_int_equal(a.status, 0);
    assert_true(a.error[0] != '\0');
}

static void test_backoff(void **state)
{
    (void)state;
    for (int i = 0; i < 50; i++) {
        uint64_t d1 = push_backoff_ms(1, 500, 60000);
        assert_true(d1 <= 500 && d1 >= 375);
        uint64_t d3 = push_backoff_ms(3, 500, 60000);
        assert_true(d3 <= 2000 && d3 >= 1500);
        uint64_t d20 = push_backoff_ms(20, 500, 60000);
        assert_true(d20 <= 60000 && d20 >= 45000);
        assert_true(push_backoff_ms(0, 500, 60000) <= 500);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_urls),
        cmocka_unit_test(test_post_errors),
        cmocka_unit_test(test_backoff),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
