/*
 * test_scope_summary_audit.c - scope adherence in the audit log, end to
 * end with the real broker and a real Redis: an agent's out-of-policy
 * requests are summarised per window (--detect-window 2) in one
 * scope.summary record, with its counts by action, audience and rule,
 * beside the per-request token.denied records; the window still open when
 * the broker stops is written before broker.stopped. An agent that stays
 * in scope gets no summary. (Quarantine on the first out-of-scope request:
 * test_anomaly_signals, test_first_out_of_scope.)
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
    "   \"actions\": [\"crm:read\"], \"audiences\": [\"crm\"], \"resources\": [\"**\"]},\n"
    "  {\"id\": \"no-export\", \"effect\": \"deny\", \"agents\": [\"*\"],\n"
    "   \"actions\": [\"crm:export\"], \"audiences\": [\"crm\"], \"resources\": [\"**\"]}\n"
    " ]}\n";

static struct zh_redis rd;
static struct zh_broker b;
static int stopped;

static int setup(void **state)
{
    (void)state;
    zh_redis_start(&rd);
    const char *extra[] = {"--detect-window", "2", NULL};
    struct zh_broker_opts o = {
        .redis_url = rd.url, .with_keys = 1, .policy = policy_doc, .extra_args = extra};
    zh_broker_start(&b, &o);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    int rc = stopped ? 0 : zh_broker_stop(&b);
    zh_redis_stop(&rd, 1);
    zh_rmtree(b.dir);
    return rc;
}

/* The audit records of event, in order, as a new array. */
static json_t *records(const char *event)
{
    char *log = za_audit_text(&b);
    json_t *out = json_array();
    char *save = NULL;
    for (char *l = strtok_r(log, "\n", &save); l != NULL; l = strtok_r(NULL, "\n", &save)) {
        json_error_t e;
        json_t *j = json_loads(l, 0, &e);
        const char *ev = json_string_value(json_object_get(j, "event"));
        if (ev != NULL && strcmp(ev, event) == 0)
            json_array_append(out, j);
        json_decref(j);
    }
    free(log);
    return out;
}

static json_t *summary_of(json_t *recs, const char *agent)
{
    size_t i;
    json_t *r;
    json_array_foreach(recs, i, r)
    {
        if (strcmp(json_string_value(json_object_get(r, "agent")), agent) == 0)
            return r;
    }
    return NULL;
}

static int prober_summarised(void *arg)
{
    (void)arg;
    json_t *recs = records("scope.summary");
    int ok = summary_of(recs, "prober") != NULL;
    json_decref(recs);
    return ok;
}

static void deny(struct za_agent *a, const char *action)
{
    struct zh_resp r;
    za_token(&b, a, "crm", action, &r, NULL, 0);
    za_expect_error(&r, 403, "access_denied");
    zh_resp_free(&r);
}

static void test_summary_per_window_and_at_stop(void **state)
{
    (void)state;
    struct za_agent p, ok;
    za_enroll(&b, &p, "prober");
    za_enroll(&b, &ok, "in-scope");
    struct zh_resp r;
    assert_int_equal(za_token(&b, &ok, "crm", "crm%3Aread", &r, NULL, 0), 200);
    zh_resp_free(&r);
    deny(&p, "crm%3Aexport");
    deny(&p, "crm%3Aexport");
    deny(&p, "crm%3Adelete");
    /* the window (2 s from the first denial) ends: one record */
    assert_true(za_wait(prober_summarised, NULL, 5000));
    json_t *recs = records("scope.summary");
    assert_int_equal(json_array_size(recs), 1);
    json_t *s = summary_of(recs, "prober");
    assert_string_equal(json_string_value(json_object_get(s, "actor")), "agent:prober");
    assert_int_equal(json_integer_value(json_object_get(s, "requests")), 3);
    assert_int_equal(json_integer_value(json_object_get(s, "distinct")), 2);
    assert_int_equal(json_integer_value(json_object_get(s, "other")), 0);
    json_int_t start = json_integer_value(json_object_get(s, "window_start"));
    json_int_t end = json_integer_value(json_object_get(s, "window_end"));
    assert_true(end - start >= 2 && end - start <= 5);
    json_error_t e;
    json_t *by = json_loads(json_string_value(json_object_get(s, "by")), 0, &e);
    assert_int_equal(json_array_size(by), 2);
    char *text = json_dumps(by, JSON_COMPACT);
    assert_string_equal(text, "[{\"action\":\"crm:export\",\"audience\":\"crm\",\"rule\":"
                              "\"no-export\",\"count\":2},{\"action\":\"crm:delete\",\"audience\":"
                              "\"crm\",\"rule\":\"(default deny)\",\"count\":1}]");
    free(text);
    json_decref(by);
    assert_null(summary_of(recs, "in-scope"));
    json_decref(recs);
    /* the per-request records are still there */
    recs = records("token.denied");
    assert_int_equal(json_array_size(recs), 3);
    json_decref(recs);
    /* one more, then a stop before its window ends: written at shutdown */
    deny(&p, "crm%3Aexport");
    assert_int_equal(zh_broker_stop(&b), 0);
    stopped = 1;
    recs = records("scope.summary");
    assert_int_equal(json_array_size(recs), 2);
    s = json_array_get(recs, 1);
    assert_string_equal(json_string_value(json_object_get(s, "agent")), "prober");
    assert_int_equal(json_integer_value(json_object_get(s, "requests")), 1);
    json_decref(recs);
    /* and before the broker's last record */
    char *log = za_audit_text(&b);
    char *sum = strstr(log, "\"scope.summary\"");
    char *last = strstr(log, "\"broker.stopped\"");
    assert_non_null(last);
    assert_true(sum != NULL && strstr(sum + 1, "\"scope.summary\"") < last);
    free(log);
    za_free(&p);
    za_free(&ok);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_summary_per_window_and_at_stop),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
