/* test_metrics.c - counters, histograms, bounded labels, exposition text. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "broker/http/metrics.h"

static char *render(ztb_buf *b)
{
    ztb_buf_init(b, 1 << 22);
    metrics_render(b);
    assert_int_equal(ztb_buf_error(b), ZTB_OK);
    return (char *)b->data;
}

static void test_requests_and_histogram(void **state)
{
    (void)state;
    static const char srv[] = "api", ep[] = "token";
    metrics_request(srv, ep, 200, 300000);     /* 0.3 ms */
    metrics_request(srv, ep, 200, 3000000);    /* 3 ms */
    metrics_request(srv, ep, 429, 5000000000); /* 5 s: +Inf */
    metrics_request(srv, ep, 418, 1000);       /* an unlisted code */
    ztb_buf b;
    char *t = render(&b);
    assert_non_null(
        strstr(t, "ztb_http_requests_total{server=\"api\",endpoint=\"token\",code=\"200\"} 2\n"));
    assert_non_null(
        strstr(t, "ztb_http_requests_total{server=\"api\",endpoint=\"token\",code=\"429\"} 1\n"));
    assert_non_null(
        strstr(t, "ztb_http_requests_total{server=\"api\",endpoint=\"token\",code=\"other\"} 1\n"));
    assert_non_null(strstr(t, "endpoint=\"token\",le=\"0.0005\"} 2\n"));
    assert_non_null(strstr(t, "endpoint=\"token\",le=\"0.005\"} 3\n"));
    assert_non_null(strstr(t, "endpoint=\"token\",le=\"2.5\"} 3\n"));
    assert_non_null(strstr(t, "endpoint=\"token\",le=\"+Inf\"} 4\n"));
    assert_non_null(strstr(
        t, "ztb_http_request_duration_seconds_count{server=\"api\",endpoint=\"token\"} 4\n"));
    ztb_buf_free(&b);
}

static void test_counters(void **state)
{
    (void)state;
    uint64_t before = metrics_get(METRIC_REDIS_ERRORS);
    uint64_t ro = metrics_redis_error_get(REDIS_EK_READONLY);
    metrics_redis_error(REDIS_EK_READONLY);
    metrics_redis_error(REDIS_EK_READONLY);
    metrics_redis_error(REDIS_EK_N); /* out of range: counted as other */
    assert_int_equal(metrics_get(METRIC_REDIS_ERRORS), before + 3);
    assert_int_equal(metrics_redis_error_get(REDIS_EK_READONLY), ro + 2);
    metrics_add(METRIC_COUNTERS_N, 1); /* out of range: ignored */
    metrics_set_redis_up(1);
    ztb_buf b;
    char *t = render(&b);
    char want[64];
    snprintf(want, sizeof(want), "ztb_redis_errors_total{kind=\"readonly\"} %llu\n",
             (unsigned long long)(ro + 2));
    assert_non_null(strstr(t, want));
    assert_non_null(strstr(t, "ztb_redis_errors_total{kind=\"loading\"} "));
    assert_null(strstr(t, "kind=\"noscript\"")); /* normal: EVAL follows */
    assert_non_null(strstr(t, "ztb_redis_up 1\n"));
    ztb_buf_free(&b);
}

/* A hostile client naming endless audiences cannot grow the label set. */
static void test_audiences_bounded_and_escaped(void **state)
{
    (void)state;
    metrics_token_issued("payments");
    metrics_token_issued("payments");
    metrics_token_issued("evil\"}\nztb_fake 1");
    char name[64];
    for (int i = 0; i < METRICS_MAX_AUDIENCES + 50; i++) {
        snprintf(name, sizeof(name), "aud-%d", i);
        metrics_token_issued(name);
    }
    char longname[300];
    memset(longname, 'x', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    metrics_token_issued(longname);
    ztb_buf b;
    char *t = render(&b);
    assert_non_null(strstr(t, "ztb_tokens_issued_total{audience=\"payments\"} 2\n"));
    assert_non_null(strstr(t, "audience=\"evil\\\"}\\nztb_fake 1\"} 1\n"));
    assert_null(strstr(t, "\nztb_fake 1"));
    /* 256 slots: payments, evil, aud-0..aud-253; the rest and the long one are _other */
    assert_non_null(strstr(t, "audience=\"aud-253\"} 1\n"));
    assert_null(strstr(t, "audience=\"aud-254\""));
    assert_non_null(strstr(t, "ztb_tokens_issued_total{audience=\"_other\"} 53\n"));
    assert_null(strstr(t, "xxxxxxxxxxxxxxxxxxxx"));
    ztb_buf_free(&b);
}

static void test_refusals_bounded(void **state)
{
    (void)state;
    for (int i = 0; i < 5000; i++)
        metrics_refused("/v1/signals", REFUSED_INVALID_CLIENT);
    metrics_refused("/v1/signals", REFUSED_RATE_LIMITED_IP);
    metrics_refused("/v1/token", REFUSED_ASSERTION_REPLAY);
    /* a path an attacker chose does not become a label */
    metrics_refused("/v1/\"evil\"", REFUSED_INVALID_CLIENT);
    metrics_refused(NULL, REFUSED_INVALID_CLIENT);
    metrics_refused("/v1/token", REFUSED_REASONS_N); /* out of range: ignored */
    assert_int_equal(metrics_refused_get("/v1/signals", REFUSED_INVALID_CLIENT), 5000);
    assert_int_equal(metrics_refused_get("/whatever", REFUSED_INVALID_CLIENT), 2);
    ztb_buf b;
    char *t = render(&b);
    assert_non_null(strstr(
        t,
        "ztb_requests_refused_total{endpoint=\"/v1/signals\",reason=\"invalid_client\"} 5000\n"));
    assert_non_null(strstr(
        t, "ztb_requests_refused_total{endpoint=\"/v1/signals\",reason=\"rate_limited_ip\"} 1\n"));
    assert_non_null(strstr(
        t, "ztb_requests_refused_total{endpoint=\"/v1/token\",reason=\"assertion_replay\"} 1\n"));
    assert_non_null(
        strstr(t, "ztb_requests_refused_total{endpoint=\"other\",reason=\"invalid_client\"} 2\n"));
    assert_null(strstr(t, "evil"));
    ztb_buf_free(&b);
}

/* Denials by reason; every family carries HELP and TYPE; the build and
 * the process are described. */
static void test_denials_help_and_process(void **state)
{
    (void)state;
    metrics_token_denied(DENIED_RATE_LIMITED);
    metrics_token_denied(DENIED_RATE_LIMITED);
    metrics_token_denied(DENIED_REASONS_N); /* out of range: ignored */
    assert_int_equal(metrics_denied_get(DENIED_RATE_LIMITED), 2);
    ztb_buf b;
    char *t = render(&b);
    assert_non_null(strstr(t, "ztb_tokens_denied_total{reason=\"rate_limited\"} 2\n"));
    assert_non_null(strstr(t, "ztb_tokens_denied_total{reason=\"policy\"} 0\n"));
    assert_non_null(strstr(t, "ztb_build_info{version=\""));
    assert_non_null(strstr(t, "\nprocess_open_fds "));
    assert_non_null(strstr(t, "\nprocess_resident_memory_bytes "));
    assert_non_null(strstr(t, "\nprocess_threads "));
    /* every sample's family has both lines before it */
    for (char *line = t; *line; line = strchr(line, '\n') + 1) {
        if (line[0] != '#') {
            char name[128];
            size_t n = strcspn(line, "{ ");
            assert_true(n < sizeof(name));
            memcpy(name, line, n);
            name[n] = '\0';
            char *suffix = strstr(name, "_bucket");
            if (suffix == NULL)
                suffix = strstr(name, "_sum");
            if (suffix == NULL)
                suffix = strstr(name, "_count");
            if (suffix != NULL && strstr(t, "_duration_seconds") != NULL &&
                strncmp(name, "ztb_http_request_duration_seconds", 33) == 0)
                *suffix = '\0';
            char help[160], type[160];
            snprintf(help, sizeof(help), "# HELP %s ", name);
            snprintf(type, sizeof(type), "# TYPE %s ", name);
            char *h = strstr(t, help), *ty = strstr(t, type);
            if (h == NULL || ty == NULL || h > line || ty > line)
                fail_msg("no HELP or TYPE before %s", name);
        }
        if (strchr(line, '\n') == NULL)
            break;
    }
    ztb_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_refusals_bounded),
        cmocka_unit_test(test_requests_and_histogram),
        cmocka_unit_test(test_counters),
        cmocka_unit_test(test_audiences_bounded_and_escaped),
        cmocka_unit_test(test_denials_help_and_process),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
