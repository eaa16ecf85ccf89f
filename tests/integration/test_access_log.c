/*
 * test_access_log.c - the real broker writes one http.access line per
 * request (request id, method, path without the query, status, latency,
 * the agent once authenticated, the trace id) and nothing secret in it; a
 * valid W3C traceparent reaches the access line and the audit records the
 * request caused, a malformed one is ignored (never refused); access_log
 * off writes none.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "agent.h"
#include "harness.h"

#define TRACE     "4bf92f3577b34da6a3ce929d0e0e4736"
#define TP_VALID  "traceparent: 00-" TRACE "-00f067aa0ba902b7-01"
#define TP_UPPER  "traceparent: 00-4BF92F3577B34DA6A3CE929D0E0E4737-00f067aa0ba902b7-01"
#define TRACE_BAD "4bf92f3577b34da6a3ce929d0e0e4737"

static const char *policy_doc =
    "{\"version\": 1, \"trust_domain\": \"ztb.local\",\n"
    " \"settings\": {\"max_ttl\": 300, \"default_ttl\": 60,\n"
    "   \"rate_limits\": {\"per_agent\": {\"rate\": 1000, \"burst\": 100, \"period\": 60},\n"
    "                   \"per_action\": {\"rate\": 1000, \"burst\": 100, \"period\": 60}}},\n"
    " \"rules\": [\n"
    "  {\"id\": \"read\", \"effect\": \"allow\", \"agents\": [\"bot\"],\n"
    "   \"actions\": [\"payments:read\"], \"audiences\": [\"payments\"], \"resources\": [\"**\"]}\n"
    " ]}\n";

static char *file_text(const char *path)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char *s = calloc(1, 4 << 20);
    size_t n = fread(s, 1, (4 << 20) - 1, f);
    s[n] = '\0';
    fclose(f);
    return s;
}

/* The first line of text holding both a and b (a copy), or NULL. */
static char *line_with(const char *text, const char *a, const char *b)
{
    for (const char *p = text; (p = strstr(p, a)) != NULL;) {
        const char *bol = p;
        while (bol > text && bol[-1] != '\n')
            bol--;
        const char *eol = strchr(p, '\n');
        size_t n = eol ? (size_t)(eol - bol) : strlen(bol);
        char *line = strndup(bol, n);
        if (strstr(line, b) != NULL)
            return line;
        free(line);
        p = eol ? eol : p + 1;
    }
    return NULL;
}

static char *access_line(const char *log, const char *needle)
{
    return line_with(log, "\"http.access\"", needle);
}

static void test_access_lines_and_traces(void **state)
{
    (void)state;
    struct zh_broker b;
    struct zh_broker_opts o = {.with_keys = 1, .policy = policy_doc};
    zh_broker_start(&b, &o);
    struct za_agent bot = {0};
    za_enroll(&b, &bot, "bot");
    struct zh_resp r;
    char tok[4096];
    assert_int_equal(za_token(&b, &bot, "payments", "payments%3Aread", &r, tok, sizeof(tok)), 200);
    zh_resp_free(&r);

    /* a query string (whatever it carries) never reaches the log */
    char url[256];
    snprintf(url, sizeof(url), "%s/healthz?access_token=%s", b.url, "sekrit-in-query");
    const char *const valid[] = {TP_VALID, NULL};
    assert_int_equal(zh_http("GET", url, NULL, NULL, NULL, 0, valid, &r), 0);
    assert_int_equal(r.status, 200);
    zh_resp_free(&r);
    /* a malformed traceparent is ignored, the request answered */
    const char *const upper[] = {TP_UPPER, NULL};
    snprintf(url, sizeof(url), "%s/.well-known/oauth-authorization-server", b.url);
    assert_int_equal(zh_http("GET", url, NULL, NULL, NULL, 0, upper, &r), 0);
    assert_int_equal(r.status, 200);
    zh_resp_free(&r);
    /* two traceparent headers: neither is believed */
    const char *const two[] = {TP_VALID, TP_VALID, NULL};
    snprintf(url, sizeof(url), "%s/.well-known/jwks.json", b.url);
    assert_int_equal(zh_http("GET", url, NULL, NULL, NULL, 0, two, &r), 0);
    assert_int_equal(r.status, 200);
    zh_resp_free(&r);
    /* an admin action with a trace: the audit record carries it */
    const char *add = "{\"name\":\"traced-bot\"}";
    assert_int_equal(zh_http("POST", "http://localhost/v1/agents", b.admin_sock, "application/json",
                             add, strlen(add), valid, &r),
                     0);
    assert_int_equal(r.status, 201);
    zh_resp_free(&r);

    char *log = file_text(b.log);
    /* (the harness asked for /healthz before, without a trace) */
    char *l = line_with(log, "\"trace_id\":\"" TRACE "\"", "\"path\":\"/healthz\"");
    assert_non_null(l);
    assert_non_null(strstr(l, "\"http.access\""));
    assert_non_null(strstr(l, "\"method\":\"GET\""));
    assert_non_null(strstr(l, "\"status\":200"));
    assert_non_null(strstr(l, "\"us\":"));
    assert_non_null(strstr(l, "\"id\":\""));
    assert_non_null(strstr(l, "\"trace_id\":\"" TRACE "\""));
    free(l);
    l = access_line(log, "\"path\":\"/.well-known/oauth-authorization-server\"");
    assert_non_null(l);
    assert_null(strstr(l, "trace_id"));
    free(l);
    l = access_line(log, "\"path\":\"/.well-known/jwks.json\"");
    assert_non_null(l);
    assert_null(strstr(l, "trace_id"));
    free(l);
    l = access_line(log, "\"path\":\"/v1/token\"");
    assert_non_null(l);
    assert_non_null(strstr(l, "\"agent\":\"bot\""));
    free(l);
    l = access_line(log, "\"server\":\"admin\"");
    assert_non_null(l);
    free(l);
    /* nothing secret: not the query, not the token, not the assertion */
    assert_null(strstr(log, "sekrit-in-query"));
    assert_null(strstr(log, tok));
    assert_null(strstr(log, TRACE_BAD));
    free(log);

    char *audit = za_audit_text(&b);
    l = line_with(audit, "\"event\":\"admin.agent_added\"", "traced-bot");
    assert_non_null(l);
    assert_non_null(strstr(l, "\"trace_id\":\"" TRACE "\""));
    free(l);
    /* the enrollment before, sent without a trace, carries none */
    l = line_with(audit, "\"event\":\"admin.agent_added\"", "\"agent\":\"bot\"");
    assert_non_null(l);
    assert_null(strstr(l, "trace_id"));
    free(l);
    free(audit);
    za_free(&bot);
    assert_int_equal(zh_broker_stop(&b), 0);
    zh_rmtree(b.dir);
}

static void test_access_log_off(void **state)
{
    (void)state;
    struct zh_broker b;
    const char *extra[] = {"--access-log", "off", NULL};
    struct zh_broker_opts o = {.with_keys = 1, .extra_args = extra};
    zh_broker_start(&b, &o);
    struct zh_resp r;
    assert_int_equal(zh_get(&b, "/healthz", &r), 0);
    zh_resp_free(&r);
    assert_int_equal(zh_broker_stop(&b), 0);
    char *log = file_text(b.log);
    assert_null(strstr(log, "http.access"));
    free(log);
    zh_rmtree(b.dir);
    /* a wrong value is refused at start, naming the choices */
    const char *argv[] = {zh_bin("ztb-broker"), "--access-log", "maybe", NULL};
    char *out = NULL, *err = NULL;
    assert_int_equal(zh_run(argv, &out, &err), 2);
    assert_non_null(strstr(err, "access_log: expected on or off"));
    free(out);
    free(err);
    const char *argv2[] = {zh_bin("ztb-broker"), "--log-target", "kafka", NULL};
    assert_int_equal(zh_run(argv2, &out, &err), 2);
    assert_non_null(strstr(err, "log_target: expected stderr, syslog or journald"));
    free(out);
    free(err);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_access_lines_and_traces),
        cmocka_unit_test(test_access_log_off),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
