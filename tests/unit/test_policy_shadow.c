/*
 * test_policy_shadow.c - the candidate policy beside the enforced one: what
 * counts as a different decision, what is counted, and that counting is safe
 * while requests run on several threads and the candidate is replaced (the
 * TSan build runs this). The admin API and ztbctl run against the real broker
 * in tests/integration/test_shadow_mode.c.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "broker/admin/policy_shadow.h"
#include "common/log.h"
#include "policy_fixtures.h"

#define R_READ(ttl)                                                                                \
    "{\"id\": \"read\", \"effect\": \"allow\", \"agents\": [\"a\"], \"actions\": "                 \
    "[\"crm:read\"], \"audiences\": [\"crm\"], \"resources\": [\"**\"], \"obligations\": "         \
    "{\"ttl\": " #ttl "}}"
#define R_WRITE                                                                                    \
    "{\"id\": \"write\", \"effect\": \"allow\", \"agents\": [\"a\"], \"actions\": "                \
    "[\"crm:write\"], \"audiences\": [\"crm\"], \"resources\": [\"**\"]}"

static policy *load(const char *rules)
{
    char *doc = fx_doc("", rules);
    policy *p = fx_load(doc);
    free(doc);
    if (p == NULL)
        fail_msg("a fixture policy does not load");
    return p;
}

static policy_request req(const char *action)
{
    policy_request r = {.agent = "a", .action = action, .audience = "crm", .resource = ""};
    r.ctx.now = 1700000000;
    return r;
}

static void test_what_differs(void **state)
{
    (void)state;
    policy *a = load(R_READ(60) "," R_WRITE), *b = load(R_READ(30));
    policy_decision x, y;
    policy_request r = req("crm:read");
    assert_int_equal(policy_eval(a, &r, &x), ZTB_OK);
    assert_int_equal(policy_eval(a, &r, &y), ZTB_OK);
    assert_false(policy_shadow_differs(&x, &y)); /* the same */
    assert_int_equal(policy_eval(b, &r, &y), ZTB_OK);
    assert_true(policy_shadow_differs(&x, &y)); /* another ttl */
    r = req("crm:write");
    assert_int_equal(policy_eval(a, &r, &x), ZTB_OK);
    assert_int_equal(policy_eval(b, &r, &y), ZTB_OK);
    assert_int_equal(y.effect, POLICY_DENY);
    assert_true(policy_shadow_differs(&x, &y)); /* another effect */
    r = req("crm:delete");
    assert_int_equal(policy_eval(a, &r, &x), ZTB_OK);
    assert_int_equal(policy_eval(b, &r, &y), ZTB_OK);
    assert_false(policy_shadow_differs(&x, &y)); /* denied by both */
    policy_unref(a);
    policy_unref(b);
}

static void test_counts(void **state)
{
    (void)state;
    struct policy_shadow *s;
    assert_int_equal(policy_shadow_new(&s), ZTB_OK);
    policy *enf = load(R_READ(60) "," R_WRITE);
    policy_decision d;
    policy_request r = req("crm:write");
    assert_int_equal(policy_eval(enf, &r, &d), ZTB_OK);
    uint64_t ev, df;
    policy_shadow_observe(s, &r, &d); /* no candidate: nothing */
    policy_shadow_observe(NULL, &r, &d);
    policy_shadow_counts(s, &ev, &df);
    assert_int_equal(ev, 0);
    assert_null(policy_shadow_set(s, load(R_READ(60)), "operator:test"));
    policy_shadow_observe(s, &r, &d); /* write: allow -> deny */
    r = req("crm:read");
    assert_int_equal(policy_eval(enf, &r, &d), ZTB_OK);
    policy_shadow_observe(s, &r, &d); /* read: the same */
    policy_shadow_counts(s, &ev, &df);
    assert_int_equal(ev, 2);
    assert_int_equal(df, 1);
    /* a new candidate counts afresh; clearing returns the last one */
    policy *old = policy_shadow_set(s, load(R_READ(30)), "operator:test");
    assert_non_null(old);
    policy_unref(old);
    policy_shadow_counts(s, &ev, &df);
    assert_int_equal(ev, 0);
    old = policy_shadow_set(s, NULL, "operator:test");
    assert_non_null(old);
    policy_unref(old);
    policy_shadow_observe(s, &r, &d);
    policy_shadow_counts(s, &ev, &df);
    assert_int_equal(ev, 0);
    policy_unref(enf);
    policy_shadow_free(s);
}

struct worker {
    struct policy_shadow *s;
    policy *enf;
};

static void *observe_loop(void *arg)
{
    struct worker *w = arg;
    for (int i = 0; i < 20000; i++) {
        policy_request r = req(i % 2 ? "crm:read" : "crm:write");
        policy_decision d;
        if (policy_eval(w->enf, &r, &d) == ZTB_OK)
            policy_shadow_observe(w->s, &r, &d);
    }
    return NULL;
}

static void test_threads_and_swaps(void **state)
{
    (void)state;
    struct policy_shadow *s;
    assert_int_equal(policy_shadow_new(&s), ZTB_OK);
    struct worker w = {s, load(R_READ(60) "," R_WRITE)};
    pthread_t th[3];
    for (int i = 0; i < 3; i++)
        assert_int_equal(pthread_create(&th[i], NULL, observe_loop, &w), 0);
    for (int i = 0; i < 200; i++) {
        policy *c = i % 7 == 6 ? NULL : load(i % 2 ? R_READ(30) : R_READ(60));
        policy_unref(policy_shadow_set(s, c, "op")); /* every 7th: cleared */
    }
    for (int i = 0; i < 3; i++)
        pthread_join(th[i], NULL);
    uint64_t ev, df;
    policy_shadow_counts(s, &ev, &df);
    assert_true(df <= ev);
    policy_unref(w.enf);
    policy_shadow_free(s);
}

int main(void)
{
    ztb_log_set_level(ZTB_LOG_OFF); /* no audit log here: each difference would say so */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_what_differs),
        cmocka_unit_test(test_counts),
        cmocka_unit_test(test_threads_and_swaps),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
