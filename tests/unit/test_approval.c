/*
 * test_approval.c - the answers an agent gets about its approval
 * (broker/tokens/approval.c): pending with its id, URI, expiry and
 * interval; denied with the approver's reason; expired or used; nothing for
 * an approved one (the token path answers).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "broker/tokens/approval.h"

static struct store_approval sample(const char *status)
{
    struct store_approval a;
    memset(&a, 0, sizeof(a));
    snprintf(a.id, sizeof(a.id), "apr_AAAAAAAAAAAAAAAAAAAAAA");
    snprintf(a.agent, sizeof(a.agent), "bot");
    snprintf(a.group, sizeof(a.group), "finance");
    snprintf(a.status, sizeof(a.status), "%s", status);
    snprintf(a.reason, sizeof(a.reason), "not \"now\"");
    a.needed = 2;
    a.expires = 1100;
    return a;
}

/* Answer a with approval_answer at now 1000: the JSON body (or NULL if none). */
static json_t *answer(const struct store_approval *a, unsigned *status)
{
    struct http_resp resp;
    memset(&resp, 0, sizeof(resp));
    ztb_buf_init(&resp.body, 4096);
    int answered = approval_answer(a, 0, "https://broker.example", 1000, &resp);
    json_t *j = NULL;
    if (answered) {
        json_error_t e;
        j = json_loadb((const char *)resp.body.data, resp.body.len, JSON_REJECT_DUPLICATES, &e);
        assert_non_null(j);
    }
    *status = resp.status;
    ztb_buf_free(&resp.body);
    return j;
}

static const char *str(json_t *j, const char *k)
{
    const char *v = json_string_value(json_object_get(j, k));
    return v ? v : "";
}

static void test_pending(void **state)
{
    (void)state;
    struct store_approval a = sample("pending");
    unsigned st;
    json_t *j = answer(&a, &st);
    assert_int_equal(st, 400);
    assert_string_equal(str(j, "error"), "authorization_pending");
    assert_string_equal(str(j, "ztb_error"), "APPROVAL_PENDING");
    assert_string_equal(str(j, "approval_id"), a.id);
    assert_string_equal(str(j, "approval_uri"),
                        "https://broker.example/v1/approvals/apr_AAAAAAAAAAAAAAAAAAAAAA");
    assert_int_equal(json_integer_value(json_object_get(j, "expires_in")), 100);
    assert_int_equal(json_integer_value(json_object_get(j, "interval")), APPROVAL_POLL_INTERVAL);
    assert_null(json_object_get(j, "reason"));
    json_decref(j);
    /* past its expiry (not yet marked): expires_in never negative */
    a.expires = 900;
    j = answer(&a, &st);
    assert_int_equal(json_integer_value(json_object_get(j, "expires_in")), 0);
    json_decref(j);
}

static void test_decided(void **state)
{
    (void)state;
    unsigned st;
    struct store_approval a = sample("denied");
    json_t *j = answer(&a, &st);
    assert_int_equal(st, 403);
    assert_string_equal(str(j, "error"), "access_denied");
    assert_string_equal(str(j, "ztb_error"), "APPROVAL_DENIED");
    assert_string_equal(str(j, "reason"), "not \"now\""); /* escaped */
    assert_null(json_object_get(j, "approval_uri"));
    json_decref(j);
    a = sample("expired");
    j = answer(&a, &st);
    assert_int_equal(st, 400);
    assert_string_equal(str(j, "error"), "expired_token");
    assert_string_equal(str(j, "ztb_error"), "APPROVAL_EXPIRED");
    assert_null(json_object_get(j, "reason"));
    json_decref(j);
    a = sample("issued");
    j = answer(&a, &st);
    assert_string_equal(str(j, "ztb_error"), "APPROVAL_EXPIRED");
    assert_non_null(strstr(str(j, "error_description"), "used"));
    json_decref(j);
    /* approved: not answered here */
    a = sample("approved");
    assert_null(answer(&a, &st));
}

static void test_count(void **state)
{
    (void)state;
    assert_int_equal(approval_count(NULL), 0);
    assert_int_equal(approval_count(""), 0);
    assert_int_equal(approval_count("alice"), 1);
    assert_int_equal(approval_count("alice,bob"), 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pending),
        cmocka_unit_test(test_decided),
        cmocka_unit_test(test_count),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
