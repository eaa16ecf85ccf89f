/*
 * test_metrics_lint.c - the real broker's /metrics, after traffic of every
 * kind (tokens issued and denied by policy and by rate, refusals of
 * unauthenticated requests, admin calls), passes `promtool check metrics`
 * (Debian's prometheus package) with nothing to say, and carries the
 * families an operator's dashboards need; --metrics-listen serves them on a
 * listener of their own.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <cmocka.h>
#include <jansson.h>

#include "agent.h"
#include "harness.h"

static const char *policy_doc =
    "{\"version\": 1, \"trust_domain\": \"ztb.local\",\n"
    " \"settings\": {\"max_ttl\": 300, \"default_ttl\": 60,\n"
    "   \"rate_limits\": {\"per_agent\": {\"rate\": 1000, \"burst\": 100, \"period\": 60},\n"
    "                   \"per_action\": {\"rate\": 1000, \"burst\": 100, \"period\": 60}}},\n"
    " \"rules\": [\n"
    "  {\"id\": \"read\", \"effect\": \"allow\", \"agents\": [\"bot\"],\n"
    "   \"actions\": [\"payments:read\"], \"audiences\": [\"payments\"], \"resources\": [\"**\"],\n"
    "   \"obligations\": {\"rate_limits\": {\"per_action\": {\"rate\": 2, \"burst\": 2,\n"
    "                     \"period\": 60}}}},\n"
    "  {\"id\": \"list\", \"effect\": \"allow\", \"agents\": [\"bot\"],\n"
    "   \"actions\": [\"ledger:list\"], \"audiences\": [\"ledger\"], \"resources\": [\"**\"]}\n"
    " ]}\n";

static void test_promtool_clean(void **state)
{
    (void)state;
    struct zh_broker b;
    struct zh_broker_opts o = {.with_keys = 1, .policy = policy_doc};
    zh_broker_start(&b, &o);
    struct za_agent bot = {0};
    za_enroll(&b, &bot, "bot");
    struct zh_resp r;
    /* issued twice, then over the action's rate, then outside the policy */
    for (int i = 0; i < 3; i++) {
        za_token(&b, &bot, "payments", "payments%3Aread", &r, NULL, 0);
        zh_resp_free(&r);
    }
    za_token(&b, &bot, "crm", "crm%3Aread", &r, NULL, 0);
    zh_resp_free(&r);
    /* a burst of 100: rate leases, counted */
    for (int i = 0; i < 30; i++) {
        assert_int_equal(za_token(&b, &bot, "ledger", "ledger%3Alist", &r, NULL, 0), 200);
        zh_resp_free(&r);
    }
    /* an unauthenticated refusal, and the admin listener */
    za_post_form(&b, "/v1/token", "grant_type=x", &r);
    zh_resp_free(&r);
    assert_int_equal(zh_admin(&b, "GET", "/v1/agents", NULL, &r), 0);
    assert_int_equal(r.status, 200);
    zh_resp_free(&r);

    zh_get(&b, "/metrics", &r);
    assert_int_equal(r.status, 200);
    const char *body = r.body;
    assert_non_null(strstr(body, "ztb_tokens_issued_total{audience=\"payments\"} 2\n"));
    assert_non_null(strstr(body, "ztb_tokens_denied_total{reason=\"rate_limited\"} 1\n"));
    assert_non_null(strstr(body, "ztb_tokens_denied_total{reason=\"policy\"} 1\n"));
    assert_non_null(strstr(body, "ztb_tokens_issued_total{audience=\"ledger\"} 30\n"));
    const char *lu = strstr(body, "\nztb_rate_lease_units_total ");
    assert_non_null(lu);
    assert_true(strtoll(lu + strlen("\nztb_rate_lease_units_total "), NULL, 10) >= 1);
    assert_non_null(strstr(body, "\nztb_rate_leases "));
    assert_non_null(strstr(body, "\nztb_rate_lease_settle_failures_total 0\n"));
    assert_non_null(strstr(body, "# TYPE ztb_build_info gauge\nztb_build_info{version=\""));
    assert_non_null(strstr(body, "\nprocess_open_fds "));
    assert_non_null(strstr(body, "\nprocess_resident_memory_bytes "));
    assert_non_null(strstr(body, "\nprocess_threads "));

    char path[400], cmd[900], said[8192];
    snprintf(path, sizeof(path), "%s/metrics.txt", b.dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(body, f);
    fclose(f);
    zh_resp_free(&r);
    snprintf(cmd, sizeof(cmd), "promtool check metrics < '%s' 2>&1", path);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    said[fread(said, 1, sizeof(said) - 1, p)] = '\0';
    int st = pclose(p);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0 || said[0] != '\0')
        fail_msg("promtool check metrics (exit %d): %s", WIFEXITED(st) ? WEXITSTATUS(st) : -1,
                 said);
    za_free(&bot);
    assert_int_equal(zh_broker_stop(&b), 0);
    zh_rmtree(b.dir);
}

/* The port a broker logged for its metrics listener (broker.metrics_listening). */
static unsigned metrics_port(const struct zh_broker *b)
{
    FILE *f = fopen(b->log, "r");
    assert_non_null(f);
    char line[4096];
    unsigned port = 0;
    while (fgets(line, sizeof(line), f) != NULL) {
        const char *p = strstr(line, "\"event\":\"broker.metrics_listening\"");
        const char *q = p ? strstr(p, "\"port\":") : NULL;
        if (q != NULL)
            port = (unsigned)strtoul(q + 7, NULL, 10);
    }
    fclose(f);
    return port;
}

/* --metrics-listen: /metrics and /healthz on a listener of their own (its
 * address in the log), and nothing else there. */
static void test_metrics_listener(void **state)
{
    (void)state;
    struct zh_broker b;
    const char *extra[] = {"--metrics-listen", "127.0.0.1:0", NULL};
    struct zh_broker_opts o = {.with_keys = 1, .policy = policy_doc, .extra_args = extra};
    zh_broker_start(&b, &o);
    unsigned port = metrics_port(&b);
    assert_true(port > 0 && port != b.port);
    char url[128];
    struct zh_resp r;
    snprintf(url, sizeof(url), "http://127.0.0.1:%u/metrics", port);
    assert_int_equal(zh_http("GET", url, NULL, NULL, NULL, 0, NULL, &r), 0);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "# TYPE ztb_build_info gauge\n"));
    zh_resp_free(&r);
    snprintf(url, sizeof(url), "http://127.0.0.1:%u/healthz", port);
    assert_int_equal(zh_http("GET", url, NULL, NULL, NULL, 0, NULL, &r), 0);
    assert_int_equal(r.status, 200);
    zh_resp_free(&r);
    snprintf(url, sizeof(url), "http://127.0.0.1:%u/.well-known/jwks.json", port);
    assert_int_equal(zh_http("GET", url, NULL, NULL, NULL, 0, NULL, &r), 0);
    assert_int_equal(r.status, 404);
    zh_resp_free(&r);
    snprintf(url, sizeof(url), "http://127.0.0.1:%u/v1/token", port);
    assert_int_equal(
        zh_http("POST", url, NULL, "application/x-www-form-urlencoded", "a=b", 3, NULL, &r), 0);
    assert_int_equal(r.status, 404);
    zh_resp_free(&r);
    assert_int_equal(zh_broker_stop(&b), 0);
    zh_rmtree(b.dir);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_promtool_clean),
        cmocka_unit_test(test_metrics_listener),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
