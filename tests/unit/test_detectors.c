/*
 * test_detectors.c - the broker's detectors against a real Redis and a
 * loaded policy: thresholds crossed once per window, immediate kinds,
 * the learning period of new audiences, events for unknown agents and
 * events that arrive while the worker is stopped, and publishing only
 * through the callback given at start.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "broker/signals/detectors.h"
#include "broker/signals/signals.h"
#include "broker/store/store.h"
#include "broker/store/store_rev.h"
#include "broker/store/store_signals.h"
#include "broker_fixture.h"

static const char *policy_doc =
    "{\"version\": 1, \"trust_domain\": \"ztb.local\",\n"
    " \"settings\": {\"max_ttl\": 300, \"default_ttl\": 60,\n"
    "   \"rate_limits\": {\"per_agent\": {\"rate\": 10, \"burst\": 10, \"period\": 60},\n"
    "                   \"per_action\": {\"rate\": 10, \"burst\": 10, \"period\": 60}}},\n"
    " \"rules\": [],\n"
    " \"anomaly_responses\": [\n"
    "  {\"id\": \"violations\", \"signals\": [\"policy_violation\"], \"min_severity\": "
    "\"medium\",\n"
    "   \"response\": \"quarantine\"},\n"
    "  {\"id\": \"dpop\", \"signals\": [\"dpop_replay\"], \"min_severity\": \"high\",\n"
    "   \"response\": \"require_approval\"}\n"
    " ]}\n";

static int setup(void **state)
{
    (void)state;
    bf_setup(policy_doc);
    struct detect_config c;
    detectors_defaults(&c);
    assert_int_equal(c.window_s, 60);
    assert_int_equal(c.denials, 10);
    c.denials = 3;
    c.rate_limited = 2;
    c.new_audience_after = 1;
    assert_int_equal(detectors_start(&c, NULL, NULL), ZTB_ERR_INVALID_ARG);
    assert_int_equal(detectors_start(&c, signals_publish_detected, &g_broker), ZTB_OK);
    assert_int_equal(detectors_start(&c, signals_publish_detected, &g_broker), ZTB_ERR_STATE);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    detectors_stop();
    bf_teardown();
    return 0;
}

/* Wait until the worker handled n events in all. */
static void drain(uint64_t n)
{
    for (int i = 0; i < 500 && detectors_handled() < n; i++)
        usleep(10000);
    assert_true(detectors_handled() >= n);
}

/* How many recorded signals have this type (and agent). */
static int signals_of(const char *type, const char *agent)
{
    json_t *list = NULL;
    assert_int_equal(store_signal_list(1000, &list), ZTB_OK);
    int n = 0;
    size_t i;
    json_t *s;
    json_array_foreach(list, i, s)
    {
        const char *a = json_string_value(json_object_get(json_object_get(s, "subject"), "agent"));
        n += strcmp(json_string_value(json_object_get(s, "type")), type) == 0 && a &&
             strcmp(a, agent) == 0;
    }
    json_decref(list);
    return n;
}

static void test_denials_threshold(void **state)
{
    (void)state;
    assert_int_equal(store_agent_add("prober", 1), ZTB_OK);
    uint64_t base = detectors_handled();
    for (int i = 0; i < 2; i++)
        detect_event(DETECT_POLICY_DENIAL, "prober", "payments:delete", "payments", "no rule");
    drain(base + 2);
    assert_int_equal(signals_of("policy_violation", "prober"), 0);
    /* the first out-of-policy request of the window is a signal of its own */
    assert_int_equal(signals_of("out_of_scope", "prober"), 1);
    struct store_agent a;
    assert_int_equal(store_agent_get("prober", &a), ZTB_OK);
    assert_false(a.quarantined);
    /* the third crosses the threshold; more in the same window add nothing */
    for (int i = 0; i < 4; i++)
        detect_event(DETECT_POLICY_DENIAL, "prober", "payments:delete", "payments", "no rule");
    drain(base + 6);
    assert_int_equal(signals_of("policy_violation", "prober"), 1);
    assert_int_equal(signals_of("out_of_scope", "prober"), 1); /* once per window */
    assert_int_equal(store_agent_get("prober", &a), ZTB_OK);
    assert_true(a.quarantined);
    json_t *list = NULL;
    assert_int_equal(store_signal_list(1, &list), ZTB_OK);
    json_t *s = json_array_get(list, 0);
    assert_string_equal(json_string_value(json_object_get(s, "source")), "ztb-broker");
    json_t *ev = json_object_get(s, "evidence");
    assert_string_equal(json_string_value(json_object_get(ev, "detector")), "denials");
    assert_int_equal(json_integer_value(json_object_get(ev, "count")), 3);
    assert_string_equal(json_string_value(json_object_get(ev, "action")), "payments:delete");
    json_decref(list);
}

static void test_immediate_kinds(void **state)
{
    (void)state;
    assert_int_equal(store_agent_add("replayer", 1), ZTB_OK);
    uint64_t base = detectors_handled();
    detect_event(DETECT_DPOP_REPLAY, "replayer", "tickets:create", "tickets", NULL);
    detect_event(DETECT_DPOP_REPLAY, "replayer", "tickets:create", "tickets", NULL);
    detect_event(DETECT_ASSERTION_REPLAY, "replayer", NULL, NULL, NULL);
    detect_event(DETECT_JOIN_REUSE, "replayer", NULL, NULL, NULL);
    detect_event(DETECT_RATE_LIMITED, "replayer", "x:y", "a", NULL);
    detect_event(DETECT_RATE_LIMITED, "replayer", "x:y", "a", NULL);
    drain(base + 6);
    assert_int_equal(signals_of("dpop_replay", "replayer"), 1); /* once per window */
    assert_int_equal(signals_of("assertion_replay", "replayer"), 1);
    assert_int_equal(signals_of("join_token_reuse", "replayer"), 1);
    assert_int_equal(signals_of("rate_limit_burst", "replayer"), 1);
    struct store_agent a;
    assert_int_equal(store_agent_get("replayer", &a), ZTB_OK);
    assert_true(a.approval_required); /* the policy's answer to dpop_replay */
}

static void test_new_audience(void **state)
{
    (void)state;
    assert_int_equal(store_agent_add("wanderer", 1), ZTB_OK);
    uint64_t base = detectors_handled();
    detect_event(DETECT_AUDIENCE_USED, "wanderer", NULL, "payments", NULL);
    drain(base + 1);
    sleep(2);
    /* known now, and filtered before the queue: nothing handled */
    uint64_t before = detectors_handled();
    detect_event(DETECT_AUDIENCE_USED, "wanderer", NULL, "payments", NULL);
    usleep(100000);
    assert_int_equal(detectors_handled(), before);
    detect_event(DETECT_AUDIENCE_USED, "wanderer", NULL, "crm", NULL);
    drain(before + 1);
    assert_int_equal(signals_of("new_audience", "wanderer"), 1);
}

static void test_ignored_and_dropped(void **state)
{
    (void)state;
    uint64_t before = detectors_handled();
    detect_event(DETECT_POLICY_DENIAL, "Bad Name", NULL, NULL, NULL);
    detect_event(DETECT_KINDS_N, "prober", NULL, NULL, NULL);
    detect_event(DETECT_AUDIENCE_USED, "prober", NULL, NULL, NULL);
    usleep(100000);
    assert_int_equal(detectors_handled(), before);
    /* an unknown agent's new audience is not an error */
    detect_event(DETECT_AUDIENCE_USED, "ghost", NULL, "crm", NULL);
    drain(before + 1);
    detectors_stop();
    uint64_t dropped = detectors_dropped();
    detect_event(DETECT_JOIN_REUSE, "prober", NULL, NULL, NULL);
    assert_int_equal(detectors_dropped(), dropped + 1);
    struct detect_config c;
    detectors_defaults(&c);
    assert_int_equal(detectors_start(&c, signals_publish_detected, &g_broker), ZTB_OK);
}

/* What the recording callback saw. */
struct recorded {
    int n;
    struct signal last;
};

static ztb_err record(struct signal *s, void *ud)
{
    struct recorded *r = ud;
    r->n++;
    r->last = *s;
    return ZTB_OK;
}

/* The detectors publish only through their callback: a test's own callback
 * gets the raised signal, and the signals module hears nothing of it. */
static void test_publish_callback(void **state)
{
    (void)state;
    detectors_stop();
    struct detect_config c;
    detectors_defaults(&c);
    struct recorded r;
    memset(&r, 0, sizeof(r));
    assert_int_equal(detectors_start(&c, record, &r), ZTB_OK);
    assert_int_equal(store_agent_add("isolated", 1), ZTB_OK);
    uint64_t base = detectors_handled();
    detect_event(DETECT_ASSERTION_REPLAY, "isolated", NULL, NULL, "jti seen");
    drain(base + 1);
    detectors_stop();
    assert_int_equal(r.n, 1);
    assert_string_equal(r.last.type, "assertion_replay");
    assert_string_equal(r.last.agent, "isolated");
    assert_int_equal(r.last.severity, POLICY_SEVERITY_HIGH);
    assert_string_equal(r.last.source, ""); /* the publisher names the source */
    assert_string_equal(r.last.id, "");
    assert_non_null(strstr(r.last.evidence, "\"detector\":\"assertion_replay\""));
    assert_non_null(strstr(r.last.evidence, "\"detail\":\"jti seen\""));
    assert_int_equal(signals_of("assertion_replay", "isolated"), 0);
    struct store_agent a;
    assert_int_equal(store_agent_get("isolated", &a), ZTB_OK);
    assert_false(a.quarantined);
    assert_int_equal(detectors_start(&c, signals_publish_detected, &g_broker), ZTB_OK);
}

/*
 * The baseline's rate alert fires once, when the hour's count reaches the
 * threshold: with one token, or with the tokens a rate lease settles at
 * once, which may step over it (store_lease.h).
 */
static void test_baseline_rate_crossed(void **state)
{
    (void)state;
    detectors_stop();
    struct detect_config c;
    detectors_defaults(&c);
    struct recorded r;
    memset(&r, 0, sizeof(r));
    assert_int_equal(detectors_start(&c, record, &r), ZTB_OK);
    assert_int_equal(store_agent_add("steady", 1), ZTB_OK);
    int64_t thr = detect_rate_threshold(&c, 4.0);
    assert_true(thr > 5);
    struct store_baseline_seen seen = {
        .phase = STORE_BL_WATCHING, .learned_hour = 4, .learn_days = 1};
    static const struct {
        int64_t count, added;
        int fires;
    } cases[] = {
        {0, 0, 0},  /* one token below (count thr - 1 after the offset) */
        {1, 0, 1},  /* one token reaching it */
        {2, 0, 0},  /* one token past it: fired already */
        {3, 5, 1},  /* a settlement stepping over it */
        {1, 3, 1},  /* ... or onto it */
        {-1, 3, 0}, /* ... or short of it */
        {8, 5, 0},  /* ... or all past it */
    };
    uint64_t base = detectors_handled();
    int want = 0;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        seen.hour_count = thr - 1 + cases[i].count;
        seen.hour_added = cases[i].added;
        detect_baseline("steady", "crm:read", "crm", "", &seen);
        want += cases[i].fires;
    }
    /* the events that pass the check reach the worker; wait for them */
    drain(base + (uint64_t)want);
    usleep(100 * 1000);
    detectors_stop();
    assert_int_equal(r.n, want);
    assert_string_equal(r.last.type, "baseline_rate");
    assert_int_equal(detectors_start(&c, signals_publish_detected, &g_broker), ZTB_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_denials_threshold), cmocka_unit_test(test_immediate_kinds),
        cmocka_unit_test(test_new_audience),      cmocka_unit_test(test_ignored_and_dropped),
        cmocka_unit_test(test_publish_callback),  cmocka_unit_test(test_baseline_rate_crossed),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
