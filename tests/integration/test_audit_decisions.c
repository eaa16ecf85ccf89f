/*
 * test_audit_decisions.c - decision points of docs/audit.md whose records
 * no other test checked, with the real broker and a real Redis: each test
 * makes the decision happen and finds its record with the documented
 * fields (who: the agent or operator or source; what: the policy entry,
 * the signal, the reason).
 *
 *   revoke.ignored                      an agent revokes another's token
 *   signal.duplicate                    a source sends the same signal twice
 *   signal.response_awaiting_operator   a response that needs an operator
 *   admin.signal_action_rejected        the operator rejects it
 *   signal.response_skipped             a response whose target the signal lacks
 *   broker.stopped                      a clean stop
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

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
    "  {\"id\": \"reads\", \"effect\": \"allow\", \"agents\": [\"*\"],\n"
    "   \"actions\": [\"crm:read\"], \"audiences\": [\"crm\"], \"resources\": [\"**\"]}\n"
    " ],\n"
    " \"anomaly_responses\": [\n"
    "  {\"id\": \"compromise-revoke-all\", \"signals\": [\"credential_compromise\"],\n"
    "   \"min_severity\": \"critical\", \"response\": \"revoke_all\",\n"
    "   \"operator_confirmation\": true},\n"
    "  {\"id\": \"abuse-kill\", \"signals\": [\"soc:integration_abuse\"],\n"
    "   \"min_severity\": \"high\", \"response\": \"kill_audience\"}\n"
    " ]}\n";

static struct zh_redis rd;
static struct zh_broker b;
static struct za_agent alice, mallory;
static char soc_secret[64];

static int ctl(char **out, char **err, const char *const *args)
{
    const char *argv[16] = {zh_bin("ztbctl"), "--socket", b.admin_sock};
    int n = 3;
    for (const char *const *a = args; *a && n < 15; a++)
        argv[n++] = *a;
    argv[n] = NULL;
    return zh_run(argv, out, err);
}

/* The last audit record of event (a new object), or NULL. */
static json_t *record(const char *event)
{
    char *log = za_audit_text(&b);
    json_t *found = NULL;
    char *save = NULL;
    for (char *l = strtok_r(log, "\n", &save); l != NULL; l = strtok_r(NULL, "\n", &save)) {
        json_error_t e;
        json_t *j = json_loads(l, 0, &e);
        const char *ev = json_string_value(json_object_get(j, "event"));
        if (ev != NULL && strcmp(ev, event) == 0) {
            json_decref(found);
            found = j;
        } else {
            json_decref(j);
        }
    }
    free(log);
    return found;
}

static json_t *expect_record(const char *event)
{
    json_t *j = record(event);
    if (j == NULL)
        fail_msg("no %s record in the audit log", event);
    return j;
}

static void expect_field(json_t *j, const char *k, const char *want)
{
    const char *v = json_string_value(json_object_get(j, k));
    if (v == NULL || (want != NULL && strcmp(v, want) != 0))
        fail_msg("%s: want %s, got %s", k, want ? want : "(any)", v ? v : "(none)");
}

static json_t *signal(const char *jti, const char *type, const char *severity, double conf,
                      const char *subject, long want)
{
    char body[2048], url[128], hdr[256];
    snprintf(body, sizeof(body),
             "{\"jti\":\"%s\",\"iat\":%lld,\"events\":{\"urn:ztb:signal:%s\":"
             "{\"subject\":%s,\"severity\":\"%s\",\"confidence\":%.2f}}}",
             jti, (long long)time(NULL), type, subject, severity, conf);
    snprintf(url, sizeof(url), "%s/v1/signals", b.url);
    snprintf(hdr, sizeof(hdr), "Authorization: Bearer %s", soc_secret);
    const char *headers[] = {hdr, NULL};
    struct zh_resp r;
    assert_int_equal(
        zh_http("POST", url, NULL, "application/json", body, strlen(body), headers, &r), 0);
    if (r.status != want)
        fail_msg("signal: HTTP %ld %s", r.status, r.body);
    json_t *j = za_json(&r);
    zh_resp_free(&r);
    return j;
}

static void test_revoke_ignored(void **state)
{
    (void)state;
    struct zh_resp r;
    char tok[4096];
    assert_int_equal(za_token(&b, &alice, "crm", "crm%3Aread", &r, tok, sizeof(tok)), 200);
    zh_resp_free(&r);
    char form[12288];
    snprintf(form, sizeof(form),
             "token=%s&token_type_hint=access_token&client_assertion_type=%s"
             "&client_assertion=%s",
             tok, ZA_SESSION_TYPE, mallory.session);
    za_post_form(&b, "/v1/revoke", form, &r); /* RFC 7009: 200 either way */
    zh_resp_free(&r);
    json_t *j = expect_record("revoke.ignored");
    expect_field(j, "actor", "agent:mallory");
    expect_field(j, "agent", "mallory"); /* the caller, refused */
    expect_field(j, "reason", "not the caller's token");
    json_t *c = za_claims(tok);
    expect_field(j, "jti", json_string_value(json_object_get(c, "jti")));
    json_decref(c);
    json_decref(j);
}

static void test_signal_duplicate(void **state)
{
    (void)state;
    char jti[64];
    snprintf(jti, sizeof(jti), "dup-%d-%ld", getpid(), (long)time(NULL));
    json_decref(signal(jti, "credential_compromise", "low", 0.3, "{\"agent\":\"alice\"}", 202));
    json_t *a = signal(jti, "credential_compromise", "low", 0.3, "{\"agent\":\"alice\"}", 202);
    json_decref(a);
    json_t *j = expect_record("signal.duplicate");
    expect_field(j, "actor", "source:soc");
    expect_field(j, "source", "soc");
    expect_field(j, "source_jti", jti);
    json_decref(j);
}

static void test_awaiting_operator_then_rejected(void **state)
{
    (void)state;
    json_t *ans =
        signal("crit-1", "credential_compromise", "critical", 0.95, "{\"agent\":\"alice\"}", 202);
    const char *action = NULL;
    size_t i;
    json_t *o;
    json_array_foreach(json_object_get(ans, "responses"), i, o) if (json_object_get(o, "action"))
        action = json_string_value(json_object_get(o, "action"));
    assert_non_null(action);
    char act[64];
    snprintf(act, sizeof(act), "%s", action);
    json_decref(ans);
    json_t *j = expect_record("signal.response_awaiting_operator");
    expect_field(j, "actor", "source:soc");
    expect_field(j, "entry", "compromise-revoke-all");
    expect_field(j, "signal", NULL);
    json_decref(j);
    j = expect_record("signal.received");
    expect_field(j, "severity", "critical");
    assert_true(json_number_value(json_object_get(j, "confidence")) > 0.9);
    json_decref(j);

    char *out, *err;
    const char *reject[] = {"signals", "reject", act, "--reason", "false alarm", NULL};
    if (ctl(&out, &err, reject) != 0)
        fail_msg("ztbctl signals reject: %s", err);
    free(out);
    free(err);
    j = expect_record("admin.signal_action_rejected");
    const char *actor = json_string_value(json_object_get(j, "actor"));
    assert_non_null(actor);
    assert_int_equal(strncmp(actor, "operator:", 9), 0);
    char *text = json_dumps(j, 0);
    assert_non_null(strstr(text, act));
    free(text);
    json_decref(j);
}

static void test_response_skipped(void **state)
{
    (void)state;
    /* kill_audience needs an audience; this signal names only an agent */
    json_decref(
        signal("abuse-1", "soc:integration_abuse", "high", 0.9, "{\"agent\":\"alice\"}", 202));
    json_t *j = expect_record("signal.response_skipped");
    expect_field(j, "actor", "source:soc");
    expect_field(j, "entry", "abuse-kill");
    expect_field(j, "response", "kill_audience");
    expect_field(j, "reason", NULL);
    json_decref(j);
}

static void test_broker_stopped(void **state)
{
    (void)state;
    assert_int_equal(zh_broker_stop(&b), 0);
    json_t *j = expect_record("broker.stopped");
    expect_field(j, "actor", "broker");
    json_decref(j);
    /* after it, only the closing checkpoint */
    char *log = za_audit_text(&b);
    const char *p = strstr(log, "\"event\":\"broker.stopped\"");
    assert_non_null(p);
    p = strchr(p, '\n');
    assert_non_null(p);
    assert_true(p[1] == '\0' || strstr(p + 1, "\"event\":\"audit.checkpoint\"") != NULL);
    free(log);
    b.pid = 0;
}

static int setup(void **state)
{
    (void)state;
    zh_redis_start(&rd);
    zh_broker_start_issuing(&b, rd.url, policy_doc);
    za_enroll(&b, &alice, "alice");
    za_enroll(&b, &mallory, "mallory");
    char *out, *err;
    const char *soc[] = {"signals", "source", "add", "soc", NULL};
    if (ctl(&out, &err, soc) != 0)
        fail_msg("source add: %s", err);
    char *s = strstr(out, "ztbsrc_");
    assert_non_null(s);
    assert_int_equal(sscanf(s, "%63s", soc_secret), 1);
    free(out);
    free(err);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    za_free(&alice);
    za_free(&mallory);
    if (b.pid > 0)
        zh_broker_stop(&b);
    zh_redis_stop(&rd, 1);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_revoke_ignored),
        cmocka_unit_test(test_signal_duplicate),
        cmocka_unit_test(test_awaiting_operator_then_rejected),
        cmocka_unit_test(test_response_skipped),
        cmocka_unit_test(test_broker_stopped), /* last: it stops the broker */
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
