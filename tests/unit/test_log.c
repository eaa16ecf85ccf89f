/* test_log.c - records are valid JSON lines and never carry a secret. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "common/log.h"

static json_t *render_json(const char *event, const ztb_log_field *f, char *line, size_t cap)
{
    size_t n = ztb_log_render(line, cap, ZTB_LOG_JSON, ZTB_LOG_INFO, event, f);
    assert_true(n > 0);
    assert_int_equal(line[n - 1], '\n');
    assert_null(memchr(line, '\n', n - 1)); /* exactly one line */
    json_error_t err;
    json_t *j = json_loadb(line, n, 0, &err);
    if (j == NULL)
        fail_msg("not JSON: %s (%s)", line, err.text);
    return j;
}

static void test_fields_render_as_json(void **state)
{
    (void)state;
    char line[4096];
    const ztb_log_field f[] = {ZTB_F_STR("agent", "billing-bot"),
                               ZTB_F_INT("ttl", -60),
                               ZTB_F_BOOL("single_use", 1),
                               ZTB_F_DBL("conf", 0.75),
                               ZTB_F_ERR(ZTB_ERR_SIGNATURE),
                               ZTB_F_STR("none", NULL),
                               ZTB_F_END_};
    json_t *j = render_json("token.issued", f, line, sizeof(line));
    assert_string_equal(json_string_value(json_object_get(j, "event")), "token.issued");
    assert_string_equal(json_string_value(json_object_get(j, "level")), "info");
    assert_string_equal(json_string_value(json_object_get(j, "agent")), "billing-bot");
    assert_int_equal(json_integer_value(json_object_get(j, "ttl")), -60);
    assert_true(json_is_true(json_object_get(j, "single_use")));
    assert_string_equal(json_string_value(json_object_get(j, "error")), "SIGNATURE");
    assert_true(json_is_null(json_object_get(j, "none")));
    json_decref(j);
}

static void test_secret_keys_redacted(void **state)
{
    (void)state;
    const char *keys[] = {
        "token",         "join_token",     "access_token",        "client_assertion",
        "Authorization", "passphrase",     "private_key",         "dpop_proof",
        "csr",           "session_secret", "X-API-KEY-ish-apikey"};
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        char line[4096];
        const ztb_log_field f[] = {ZTB_F_STR(keys[i], "harmless-looking"), ZTB_F_END_};
        json_t *j = render_json("x", f, line, sizeof(line));
        assert_string_equal(json_string_value(json_object_get(j, keys[i])), "[redacted]");
        assert_null(strstr(line, "harmless-looking"));
        json_decref(j);
    }
    assert_false(ztb_log_key_is_secret("agent"));
    assert_false(ztb_log_key_is_secret("jti"));
    assert_false(ztb_log_key_is_secret("kid"));
}

/* A credential under an innocent field name is still caught by its shape. */
static void test_secret_values_redacted(void **state)
{
    (void)state;
    const char *jws = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhIn0.MEUCIQDabcdefgh";
    const char *vals[] = {
        jws,
        "Bearer eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhIn0.sig",
        "-----BEGIN PRIVATE KEY-----\nMIGH\n-----END PRIVATE KEY-----",
        "-----BEGIN EC PRIVATE KEY-----",
        "ztbj_4f3c2a1b0e9d8c7b",
        "prefix ztbs_abcdef suffix",
        "ztbsrc_Zm9vYmFyYmF6cXV4",
        "abcdefgh.ijklmnop.", /* header.payload. with an empty signature */
    };
    for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
        char line[4096];
        const ztb_log_field f[] = {ZTB_F_STR("detail", vals[i]), ZTB_F_END_};
        json_t *j = render_json("x", f, line, sizeof(line));
        assert_string_equal(json_string_value(json_object_get(j, "detail")), "[redacted]");
        json_decref(j);
    }
    assert_false(ztb_log_value_is_secret("spiffe://example.org/agent/billing-bot"));
    assert_false(ztb_log_value_is_secret("payments.example.com"));
    assert_false(ztb_log_value_is_secret("v1.2.3"));
    assert_false(ztb_log_value_is_secret(""));
}

/* Agent-supplied text cannot forge a second log line or break the JSON. */
static void test_log_injection(void **state)
{
    (void)state;
    char line[4096];
    const char *evil = "bot\"}\n{\"level\":\"error\",\"event\":\"forged\x01\x7f";
    const ztb_log_field f[] = {ZTB_F_STR("agent", evil), ZTB_F_END_};
    json_t *j = render_json("x", f, line, sizeof(line));
    assert_string_equal(json_string_value(json_object_get(j, "agent")), evil);
    assert_string_equal(json_string_value(json_object_get(j, "event")), "x");
    json_decref(j);

    size_t n = ztb_log_render(line, sizeof(line), ZTB_LOG_TEXT, ZTB_LOG_WARN, "e\nv", f);
    assert_int_equal(line[n - 1], '\n');
    assert_null(memchr(line, '\n', n - 1));
}

/* Long values are cut; too many fields are dropped, not overflowed. */
static void test_long_values_and_small_buffers(void **state)
{
    (void)state;
    char big[10000];
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    char line[4096];
    ztb_log_field f[40];
    for (int i = 0; i < 39; i++)
        f[i] = ZTB_F_STR("field", big);
    f[39] = ZTB_F_END_;
    json_t *j = render_json("x", f, line, sizeof(line));
    assert_true(json_is_true(json_object_get(j, "truncated")));
    json_decref(j);

    char small[80];
    j = render_json("x", f, small, sizeof(small));
    json_decref(j);
    assert_int_equal(ztb_log_render(small, 10, ZTB_LOG_JSON, ZTB_LOG_INFO, "x", f), 0);
}

static void test_levels_and_fd(void **state)
{
    (void)state;
    ztb_log_level l;
    assert_int_equal(ztb_log_level_parse("debug", &l), ZTB_OK);
    assert_int_equal(l, ZTB_LOG_DEBUG);
    assert_int_equal(ztb_log_level_parse("WARNING", &l), ZTB_OK);
    assert_int_equal(l, ZTB_LOG_WARN);
    assert_int_equal(ztb_log_level_parse("loud", &l), ZTB_ERR_INVALID_ARG);
    assert_int_equal(ztb_log_level_parse(NULL, &l), ZTB_ERR_INVALID_ARG);

    int p[2];
    assert_int_equal(pipe(p), 0);
    ztb_log_set_fd(p[1]);
    ztb_log_set_service("test");
    ztb_log_set_level(ZTB_LOG_WARN);
    ztb_log(ZTB_LOG_INFO, "dropped");
    ztb_log(ZTB_LOG_ERROR, "kept", ZTB_F_INT("n", 1));
    close(p[1]);
    char got[512] = {0};
    ssize_t n = read(p[0], got, sizeof(got) - 1);
    close(p[0]);
    assert_true(n > 0);
    assert_null(strstr(got, "dropped"));
    assert_non_null(strstr(got, "\"event\":\"kept\""));
    assert_non_null(strstr(got, "\"svc\":\"test\""));
    ztb_log_set_fd(2);
    ztb_log_set_service(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fields_render_as_json),
        cmocka_unit_test(test_secret_keys_redacted),
        cmocka_unit_test(test_secret_values_redacted),
        cmocka_unit_test(test_log_injection),
        cmocka_unit_test(test_long_values_and_small_buffers),
        cmocka_unit_test(test_levels_and_fd),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
