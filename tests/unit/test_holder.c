/*
 * test_holder.c - the policy in force: atomic swap, refused reloads keep the
 * old policy, in-flight references outlive a swap. The concurrency test runs
 * evaluating threads against a thread that swaps many times; under the ASan
 * build (and TSan by hand) it shows no request sees a freed or half policy.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "policy_fixtures.h"

/* Policy number n: max_ttl = default_ttl = 100 * n, so a decision tells which policy made it. */
static char *doc_n(int n)
{
    char *s = malloc(2048);
    assert_non_null(s);
    snprintf(s, 2048,
             "{\"version\": 1, \"trust_domain\": \"example.org\", \"settings\": {\"max_ttl\": %d,"
             " \"default_ttl\": %d, \"rate_limits\": {\"per_agent\": {\"rate\": 1, \"burst\": 1,"
             " \"period\": 1}, \"per_action\": {\"rate\": 1, \"burst\": 1, \"period\": 1}}},"
             " \"rules\": [{\"id\": \"rule-%d\", \"effect\": \"allow\", \"agents\": [\"x\"],"
             " \"actions\": [\"svc:read\"], \"audiences\": [\"aud\"], \"resources\": [\"**\"]}]}",
             100 * n, 100 * n, n);
    return s;
}

static const policy_request REQ = {
    .agent = "x", .action = "svc:read", .audience = "aud", .resource = "r", .ctx = {.now = 1}};

static void test_basic_swap(void **state)
{
    (void)state;
    policy_holder *h = NULL;
    assert_int_equal(policy_holder_new(&h), ZTB_OK);
    assert_null(policy_holder_acquire(h)); /* nothing installed: callers deny */
    assert_int_equal(policy_holder_generation(h), 0);
    char *a = doc_n(1), *b = doc_n(2);
    assert_int_equal(policy_holder_reload(h, a, strlen(a), NULL), ZTB_OK);
    assert_int_equal(policy_holder_generation(h), 1);
    policy *p1 = policy_holder_acquire(h);
    assert_non_null(p1);
    assert_int_equal(policy_max_ttl(p1), 100);
    /* a reload while p1 is in use: p1 stays valid and unchanged */
    assert_int_equal(policy_holder_reload(h, b, strlen(b), NULL), ZTB_OK);
    policy *p2 = policy_holder_acquire(h);
    assert_int_equal(policy_max_ttl(p2), 200);
    policy_decision d;
    assert_int_equal(policy_eval(p1, &REQ, &d), ZTB_OK);
    assert_int_equal(d.ob.ttl, 100);
    assert_string_equal(d.rule, "rule-1");
    policy_holder_release(p1);
    policy_holder_release(p2);
    free(a);
    free(b);
    policy_holder_free(h);
}

static void test_invalid_reload_keeps_old(void **state)
{
    (void)state;
    policy_holder *h = NULL;
    assert_int_equal(policy_holder_new(&h), ZTB_OK);
    char *a = doc_n(1);
    assert_int_equal(policy_holder_reload(h, a, strlen(a), NULL), ZTB_OK);
    const char *digest_before = NULL;
    policy *before = policy_holder_acquire(h);
    digest_before = policy_digest(before);
    /* a syntax error, then a TTL over the maximum */
    policy_diag d;
    policy_diag_init(&d);
    assert_int_equal(policy_holder_reload(h, "{\"version\": 1,", 14, &d), ZTB_ERR_JSON);
    assert_true(policy_diag_count(&d) > 0);
    policy_diag_free(&d);
    char *bad = doc_n(1);
    char *ttl = strstr(bad, "\"default_ttl\": 100");
    memcpy(ttl, "\"default_ttl\": 900", 18);
    policy_diag_init(&d);
    assert_int_equal(policy_holder_reload(h, bad, strlen(bad), &d), ZTB_ERR_POLICY);
    char *m = fx_messages(&d);
    assert_non_null(strstr(m, "default_ttl: 900 exceeds max_ttl 100"));
    free(m);
    policy_diag_free(&d);
    assert_int_equal(policy_holder_reload_file(h, "/nonexistent", NULL), ZTB_ERR_IO);
    assert_int_equal(policy_holder_generation(h), 1);
    policy *after = policy_holder_acquire(h);
    assert_ptr_equal(after, before);
    assert_string_equal(policy_digest(after), digest_before);
    policy_holder_release(before);
    policy_holder_release(after);
    /* a good file goes in */
    char path[4096];
    assert_int_equal(policy_holder_reload_file(
                         h, fx_src(path, sizeof(path), "examples/policy/fleet.json"), NULL),
                     ZTB_OK);
    assert_int_equal(policy_holder_generation(h), 2);
    free(a);
    free(bad);
    policy_holder_free(h);
}

static void test_reference_outlives_holder(void **state)
{
    (void)state;
    policy_holder *h = NULL;
    assert_int_equal(policy_holder_new(&h), ZTB_OK);
    policy *p = NULL;
    char *a = doc_n(3);
    assert_int_equal(policy_load(a, strlen(a), &p, NULL), ZTB_OK);
    policy_holder_swap(h, p); /* the holder owns that reference now */
    policy *mine = policy_holder_acquire(h);
    policy_holder_free(h);
    policy_decision d;
    assert_int_equal(policy_eval(mine, &REQ, &d), ZTB_OK); /* ASan: still alive */
    assert_int_equal(d.ob.ttl, 300);
    policy_unref(mine);
    policy_holder_free(NULL);
    free(a);
}

/* ---- concurrency ------------------------------------------------------------- */

enum { THREADS = 4, SWAPS = 1500, KINDS = 3 };

struct shared {
    policy_holder *h;
    char *docs[KINDS];
    atomic_int stop;
    atomic_long evals;
    atomic_int wrong;
};

static void *evaluator(void *arg)
{
    struct shared *s = arg;
    long n = 0;
    while (!atomic_load(&s->stop)) {
        policy *p = policy_holder_acquire(s->h);
        if (p == NULL)
            continue;
        policy_decision d;
        if (policy_eval(p, &REQ, &d) != ZTB_OK || d.effect != POLICY_ALLOW) {
            atomic_fetch_add(&s->wrong, 1);
        } else {
            /* the decision belongs to the policy we hold: TTL and rule id agree */
            uint32_t k = policy_max_ttl(p) / 100;
            char want[16];
            snprintf(want, sizeof(want), "rule-%u", k);
            if (d.ob.ttl != policy_max_ttl(p) || strcmp(d.rule, want) != 0)
                atomic_fetch_add(&s->wrong, 1);
        }
        if ((n & 63) == 0)
            sched_yield(); /* let the swapper free old policies under our feet */
        /* read the decision's strings again after yielding: they must still be valid */
        if (d.rule != NULL && d.rule[0] != 'r')
            atomic_fetch_add(&s->wrong, 1);
        policy_holder_release(p);
        n++;
    }
    atomic_fetch_add(&s->evals, n);
    return NULL;
}

static void test_concurrent_swaps(void **state)
{
    (void)state;
    struct shared s;
    memset(&s, 0, sizeof(s));
    assert_int_equal(policy_holder_new(&s.h), ZTB_OK);
    for (int i = 0; i < KINDS; i++)
        s.docs[i] = doc_n(i + 1);
    assert_int_equal(policy_holder_reload(s.h, s.docs[0], strlen(s.docs[0]), NULL), ZTB_OK);
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, evaluator, &s), 0);
    int refused = 0;
    for (int i = 0; i < SWAPS; i++) {
        const char *doc = s.docs[i % KINDS];
        if (i % 10 == 9) {
            /* every tenth reload is broken: refused, nothing changes */
            if (policy_holder_reload(s.h, doc, strlen(doc) - 3, NULL) != ZTB_OK)
                refused++;
        } else {
            assert_int_equal(policy_holder_reload(s.h, doc, strlen(doc), NULL), ZTB_OK);
        }
    }
    atomic_store(&s.stop, 1);
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(refused, SWAPS / 10);
    assert_int_equal(policy_holder_generation(s.h), 1 + SWAPS - SWAPS / 10);
    assert_int_equal(atomic_load(&s.wrong), 0);
    assert_true(atomic_load(&s.evals) > 0);
    fprintf(stderr, "# %ld evaluations across %d threads during %d reloads\n",
            atomic_load(&s.evals), THREADS, SWAPS);
    for (int i = 0; i < KINDS; i++)
        free(s.docs[i]);
    policy_holder_free(s.h);
}

/* A reload refuses what a start refuses: a document for another trust
 * domain never goes in (it used to reload with success, and the next
 * restart failed). */
static void test_trust_domain_required(void **state)
{
    (void)state;
    policy_holder *h = NULL;
    assert_int_equal(policy_holder_new(&h), ZTB_OK);
    policy_holder_require_trust_domain(h, "ztb.local");
    char *a = doc_n(1); /* example.org */
    policy_diag d;
    policy_diag_init(&d);
    assert_int_equal(policy_holder_reload(h, a, strlen(a), &d), ZTB_ERR_POLICY);
    char *m = fx_messages(&d);
    assert_non_null(strstr(m, "example.org"));
    assert_non_null(strstr(m, "ztb.local"));
    free(m);
    policy_diag_free(&d);
    assert_int_equal(policy_holder_generation(h), 0);
    assert_null(policy_holder_acquire(h));
    policy_holder_require_trust_domain(h, "example.org");
    assert_int_equal(policy_holder_reload(h, a, strlen(a), NULL), ZTB_OK);
    assert_int_equal(policy_holder_generation(h), 1);
    free(a);
    policy_holder_free(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_basic_swap),
        cmocka_unit_test(test_invalid_reload_keeps_old),
        cmocka_unit_test(test_reference_outlives_holder),
        cmocka_unit_test(test_concurrent_swaps),
        cmocka_unit_test(test_trust_domain_required),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
