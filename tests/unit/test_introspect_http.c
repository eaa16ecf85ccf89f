/*
 * test_introspect_http.c - the refusals /v1/introspect and /v1/revoke make
 * before client authentication: the wrong media type (415) and a form with
 * an unknown, repeated or malformed parameter (400), so nothing is read
 * from Redis or the key store for them. The authenticated paths run against
 * the real broker in tests/integration/test_introspect_revoke.c and
 * test_introspect_access.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "broker/http/http.h"
#include "broker/tokens/introspect_http.h"
#include "common/buf.h"

/* Call fn with a POST of body under content type ctype; resp is filled
 * (caller frees resp->body). */
static void call(http_handler fn, const char *ctype, const char *body, struct http_resp *resp)
{
    struct http_req req = {.method = "POST",
                           .path = "/",
                           .body = (const uint8_t *)body,
                           .body_len = strlen(body),
                           .content_type = ctype};
    memset(resp, 0, sizeof(*resp));
    ztb_buf_init(&resp->body, 1 << 16);
    fn(&req, resp);
}

static void expect(http_handler fn, const char *ctype, const char *body, unsigned status,
                   const char *needle)
{
    struct http_resp resp;
    call(fn, ctype, body, &resp);
    assert_int_equal(resp.status, status);
    const char *text = ztb_buf_cstr(&resp.body);
    assert_non_null(text);
    assert_non_null(strstr(text, needle));
    ztb_buf_free(&resp.body);
}

static void test_media_type(void **state)
{
    (void)state;
    const http_handler fns[] = {handle_introspect, handle_revoke};
    for (size_t i = 0; i < 2; i++) {
        expect(fns[i], "application/json", "{\"token\":\"x\"}", 415, "invalid_request");
        expect(fns[i], NULL, "token=x", 415, "application/x-www-form-urlencoded");
    }
}

static void test_form(void **state)
{
    (void)state;
    const char *form = "application/x-www-form-urlencoded";
    const http_handler fns[] = {handle_introspect, handle_revoke};
    for (size_t i = 0; i < 2; i++) {
        expect(fns[i], form, "token=x&scope=all", 400, "invalid_request"); /* unknown */
        expect(fns[i], form, "token=x&token=y", 400, "invalid_request");   /* repeated */
        expect(fns[i], form, "token=%zz", 400, "invalid_request");         /* bad escape */
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_media_type),
        cmocka_unit_test(test_form),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
