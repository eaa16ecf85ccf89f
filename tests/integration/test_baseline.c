/*
 * test_baseline.c - behavioural baselines end to end: the real broker, a
 * real Redis, real ztbctl. Three agents learn for two seconds from their
 * enrollment; afterwards a new action raises baseline_new_action with the
 * confidence the formula gives (and policy quarantines), a burst of tokens
 * raises baseline_rate, and a detector in observe mode raises its signal
 * without applying anything. `ztbctl agent baseline` shows what was learned
 * and what is new.
 */
#include <math.h>
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

#define LEARN_S 2

static const char *policy_doc =
    "{\"version\": 1, \"trust_domain\": \"ztb.local\",\n"
    " \"settings\": {\"max_ttl\": 300, \"default_ttl\": 60,\n"
    "   \"rate_limits\": {\"per_agent\": {\"rate\": 1000, \"burst\": 100, \"period\": 60},\n"
    "                   \"per_action\": {\"rate\": 1000, \"burst\": 100, \"period\": 60}}},\n"
    " \"rules\": [\n"
    "  {\"id\": \"crm\", \"effect\": \"allow\", \"agents\": [\"*\"],\n"
    "   \"actions\": [\"crm:read\", \"crm:write\"], \"audiences\": [\"crm\", \"files\"],\n"
    "   \"resources\": [\"**\"]}\n"
    " ],\n"
    " \"anomaly_responses\": [\n"
    "  {\"id\": \"drift-quarantine\", \"signals\": [\"baseline_new_action\"],\n"
    "   \"agents\": [\"drifter\"], \"min_severity\": \"medium\", \"response\": \"quarantine\"},\n"
    "  {\"id\": \"spike-quarantine\", \"signals\": [\"baseline_rate\"], \"agents\": [\"spiker\"],\n"
    "   \"min_severity\": \"medium\", \"response\": \"quarantine\"},\n"
    "  {\"id\": \"wander-quarantine\", \"signals\": [\"baseline_new_audience\"],\n"
    "   \"agents\": [\"observer\"], \"min_severity\": \"medium\", \"response\": \"quarantine\"}\n"
    " ]}\n";

static struct zh_redis rd;
static struct zh_broker b;
static struct za_agent drifter, spiker, observer;

static int ctl(char **out, char **err, const char *const *args)
{
    const char *argv[16] = {zh_bin("ztbctl"), "--socket", b.admin_sock};
    int n = 3;
    for (const char *const *a = args; *a && n < 15; a++)
        argv[n++] = *a;
    argv[n] = NULL;
    return zh_run(argv, out, err);
}

/* A token for a: scope on audience for resource; returns the status. */
static long token(const struct za_agent *a, const char *audience, const char *scope,
                  const char *resource)
{
    char form[2048];
    snprintf(form, sizeof(form),
             "grant_type=urn%%3Aietf%%3Aparams%%3Aoauth%%3Agrant-type%%3Atoken-exchange"
             "&client_assertion_type=%s&client_assertion=%s&audience=%s&scope=%s&resource=%s",
             ZA_SESSION_TYPE, a->session, audience, scope, resource);
    struct zh_resp r;
    long st = za_post_form(&b, "/v1/token", form, &r);
    zh_resp_free(&r);
    return st;
}

static int agent_quarantined(const char *name)
{
    char path[128];
    snprintf(path, sizeof(path), "/v1/agents/%s", name);
    struct zh_resp r;
    assert_int_equal(zh_admin(&b, "GET", path, NULL, &r), 0);
    assert_int_equal(r.status, 200);
    json_t *j = za_json(&r);
    int v = json_is_true(json_object_get(j, "quarantined"));
    json_decref(j);
    zh_resp_free(&r);
    return v;
}

static int quarantined_cb(void *name)
{
    return agent_quarantined(name);
}

/* The newest signal of type about agent (a new reference), or NULL. */
static json_t *find_signal(const char *type, const char *agent)
{
    struct zh_resp r;
    assert_int_equal(zh_admin(&b, "GET", "/v1/signals?limit=200", NULL, &r), 0);
    assert_int_equal(r.status, 200);
    json_t *j = za_json(&r);
    zh_resp_free(&r);
    json_t *arr = json_object_get(j, "signals"), *s, *found = NULL;
    size_t i;
    json_array_foreach(arr, i, s)
    {
        char *subject = json_dumps(json_object_get(s, "subject"), JSON_COMPACT);
        int match = strcmp(json_string_value(json_object_get(s, "type")), type) == 0 &&
                    subject != NULL && strstr(subject, agent) != NULL;
        free(subject);
        if (match) {
            found = json_incref(s);
            break;
        }
    }
    json_decref(j);
    return found;
}

struct want {
    const char *type, *agent;
};

static int signal_cb(void *arg)
{
    const struct want *w = arg;
    json_t *s = find_signal(w->type, w->agent);
    json_decref(s);
    return s != NULL;
}

/* Evidence member k of signal s as a number. */
static double evidence_num(json_t *s, const char *k)
{
    json_t *ev = json_object_get(s, "evidence");
    json_t *parsed = NULL;
    if (json_is_string(ev)) {
        json_error_t e;
        parsed = json_loads(json_string_value(ev), 0, &e);
        ev = parsed;
    }
    double v = json_number_value(json_object_get(ev, k));
    json_decref(parsed);
    return v;
}

static int setup(void **state)
{
    (void)state;
    zh_redis_start(&rd);
    const char *extra[] = {"--baseline-learn",
                           "2",
                           "--baseline-rate-factor",
                           "2",
                           "--baseline-rate-min",
                           "6",
                           "--detect-new-audience",
                           "0",
                           NULL};
    struct zh_broker_opts o = {
        .redis_url = rd.url, .with_keys = 1, .policy = policy_doc, .extra_args = extra};
    zh_broker_start(&b, &o);
    struct za_agent *all[] = {&drifter, &spiker, &observer};
    const char *names[] = {"drifter", "spiker", "observer"};
    struct timespec t0;
    for (size_t i = 0; i < 3; i++) {
        clock_gettime(CLOCK_MONOTONIC, &t0); /* the last window starts after this */
        za_enroll(&b, all[i], names[i]);
        /* learning: one action, one audience, one prefix, four tokens */
        for (int k = 0; k < 4; k++)
            assert_int_equal(token(all[i], "crm", "crm%3Aread", "crm%3A%2F%2Faccounts%2F1"), 200);
    }
    char *out, *err;
    const char *show[] = {"agent", "baseline", "drifter", NULL};
    assert_int_equal(ctl(&out, &err, show), 0);
    assert_non_null(strstr(out, "learning"));
    free(out);
    free(err);
    /* until the last window is over: it ends LEARN_S whole seconds of
     * Redis's clock after that enrollment, at most LEARN_S s later */
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    long spent_ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    long wait_ms = LEARN_S * 1000 + 150 - spent_ms;
    if (wait_ms > 0)
        usleep((useconds_t)wait_ms * 1000);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    za_free(&drifter);
    za_free(&spiker);
    za_free(&observer);
    int rc = zh_broker_stop(&b);
    zh_redis_stop(&rd, 1);
    return rc;
}

/* A new action after learning: baseline_new_action with 1 - (k+1)/(n+2) =
 * 1 - 2/6, policy quarantines; the known action raises nothing. */
static void test_new_action(void **state)
{
    (void)state;
    assert_int_equal(token(&drifter, "crm", "crm%3Aread", "crm%3A%2F%2Faccounts%2F7"), 200);
    assert_false(agent_quarantined("drifter"));
    assert_int_equal(token(&drifter, "crm", "crm%3Awrite", "crm%3A%2F%2Faccounts%2F7"), 200);
    assert_true(za_wait(quarantined_cb, "drifter", 5000));
    json_t *s = find_signal("baseline_new_action", "drifter");
    assert_non_null(s);
    assert_true(fabs(json_number_value(json_object_get(s, "confidence")) - (1.0 - 2.0 / 6.0)) <
                0.001);
    assert_string_equal(json_string_value(json_object_get(s, "severity")), "medium");
    json_decref(s);
    s = find_signal("baseline_new_resource", "drifter");
    assert_null(s); /* same prefix as learned */
    assert_int_equal(token(&drifter, "crm", "crm%3Aread", "crm%3A%2F%2Faccounts%2F7"), 403);

    char *out, *err;
    const char *show[] = {"agent", "baseline", "drifter", NULL};
    assert_int_equal(ctl(&out, &err, show), 0);
    assert_non_null(strstr(out, "watching"));
    assert_non_null(strstr(out, "crm:write"));
    assert_non_null(strstr(out, "crm://accounts/"));
    free(out);
    free(err);
    const char *js[] = {"-o", "json", "agent", "baseline", "drifter", NULL};
    assert_int_equal(ctl(&out, &err, js), 0);
    json_error_t e;
    json_t *j = json_loads(out, 0, &e);
    assert_non_null(j);
    assert_int_equal(json_integer_value(json_object_get(j, "tokens_learned")), 4);
    json_t *acts = json_object_get(j, "actions");
    assert_int_equal(json_array_size(acts), 2);
    assert_non_null(json_object_get(j, "last_seen"));
    assert_true(json_integer_value(json_object_get(j, "tokens_last_day")) >= 6);
    json_decref(j);
    free(out);
    free(err);
}

/* More tokens this hour than factor x the learned rate: baseline_rate, once. */
static void test_rate_spike(void **state)
{
    (void)state;
    struct want w = {"baseline_rate", "spiker"};
    for (int i = 0; i < 10 && !agent_quarantined("spiker"); i++)
        token(&spiker, "crm", "crm%3Aread", "crm%3A%2F%2Faccounts%2F1");
    assert_true(za_wait(signal_cb, &w, 5000));
    json_t *s = find_signal("baseline_rate", "spiker");
    double count = evidence_num(s, "count"), expected = evidence_num(s, "expected");
    /* the count when the alert fired: the threshold, or past it when a
     * rate lease's tokens were counted together (store_lease.h) */
    assert_true(count >= evidence_num(s, "threshold"));
    double want = 1.0 - (expected > 1.0 ? expected : 1.0) / count;
    assert_true(fabs(json_number_value(json_object_get(s, "confidence")) - want) < 0.001);
    if (expected == 4.0) /* the hour did not turn since learning */
        assert_true(count >= 8.0 && count <= 10.0);
    json_decref(s);
    assert_true(za_wait(quarantined_cb, "spiker", 5000));
}

/* A detector in observe mode: the signal is recorded, nothing applied. */
static void test_observe_mode(void **state)
{
    (void)state;
    char *out, *err;
    const char *obs[] = {"signals", "mode", "--detector", "baseline_new_audience", "observe", NULL};
    assert_int_equal(ctl(&out, &err, obs), 0);
    free(out);
    free(err);
    assert_int_equal(token(&observer, "files", "crm%3Aread", "crm%3A%2F%2Faccounts%2F1"), 200);
    struct want w = {"baseline_new_audience", "observer"};
    assert_true(za_wait(signal_cb, &w, 5000));
    json_t *s = find_signal("baseline_new_audience", "observer");
    char *text = json_dumps(s, JSON_COMPACT);
    assert_non_null(strstr(text, "\"observed\""));
    free(text);
    json_decref(s);
    assert_false(agent_quarantined("observer"));
    assert_int_equal(token(&observer, "files", "crm%3Aread", "crm%3A%2F%2Faccounts%2F1"), 200);
    /* relearning forgets: the new audience is learned now */
    const char *re[] = {"agent", "baseline", "observer", "--relearn", "--for", "60", NULL};
    assert_int_equal(ctl(&out, &err, re), 0);
    assert_non_null(strstr(out, "learning"));
    free(out);
    free(err);
    char *audit = za_audit_text(&b);
    assert_non_null(strstr(audit, "\"admin.baseline_relearn\""));
    free(audit);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_new_action),
        cmocka_unit_test(test_rate_spike),
        cmocka_unit_test(test_observe_mode),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
