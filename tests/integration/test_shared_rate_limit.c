/*
 * test_shared_rate_limit.c - two broker processes on one Redis enforce one
 * rate limit between them.
 *
 * Brokers are stateless replicas: the buckets live in Redis and each
 * issuance is one atomic script call, so an agent that spreads its requests
 * over two brokers (here concurrently, from several threads) gets exactly
 * the limit in total, never the limit per broker, and the rest are 429
 * slow_down with Retry-After. The two brokers share a key store (signing
 * keys, CA, session key) and an issuer, as replicas behind one name do.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "agent.h"
#include "harness.h"

#define LIMIT   20 /* per agent x action, per hour: nothing refills during the test */
#define THREADS 8
#define EXTRA   20 /* requests beyond the limit */
#define ISSUER  "https://broker.ztb.test"
#define GRANT   "urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange"

static const char *policy_doc =
    "{\"version\": 1, \"trust_domain\": \"ztb.local\",\n"
    " \"settings\": {\"max_ttl\": 300, \"default_ttl\": 60,\n"
    "   \"rate_limits\": {\"per_agent\": {\"rate\": 1000, \"burst\": 1000, \"period\": 60},\n"
    "                   \"per_action\": {\"rate\": 1000, \"burst\": 1000, \"period\": 60}}},\n"
    " \"rules\": [\n"
    "  {\"id\": \"limited\", \"effect\": \"allow\", \"agents\": [\"shared-bot\"],\n"
    "   \"actions\": [\"svc:call\"], \"audiences\": [\"svc\"], \"resources\": [\"**\"],\n"
    "   \"obligations\": {\"rate_limits\": {\"per_action\": {\"rate\": 20, \"burst\": 20,\n"
    "                     \"period\": 3600}}}},\n"
    "  {\"id\": \"agent-bucket\", \"effect\": \"allow\", \"agents\": [\"budget-bot\"],\n"
    "   \"actions\": [\"svc:read\", \"svc:write\"], \"audiences\": [\"svc\"],\n"
    "   \"resources\": [\"**\"],\n"
    "   \"obligations\": {\"rate_limits\": {\"per_agent\": {\"rate\": 10, \"burst\": 10,\n"
    "                     \"period\": 3600}}}}\n"
    " ]}\n";

static struct zh_redis rd;
static struct zh_broker b1, b2;

static int setup(void **state)
{
    (void)state;
    zh_redis_start(&rd);
    za_set_issuer(ISSUER); /* client assertions are addressed to it */
    const char *issuer[] = {"--issuer", ISSUER, NULL};
    struct zh_broker_opts o1 = {
        .redis_url = rd.url, .with_keys = 1, .policy = policy_doc, .extra_args = issuer};
    zh_broker_start(&b1, &o1);
    /* the second replica uses the first one's key store */
    const char *replica[] = {"--issuer", ISSUER, "--keys", b1.keys, NULL};
    struct zh_broker_opts o2 = {.redis_url = rd.url, .policy = policy_doc, .extra_args = replica};
    zh_broker_start(&b2, &o2);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    assert_int_equal(zh_broker_stop(&b2), 0);
    assert_int_equal(zh_broker_stop(&b1), 0);
    zh_redis_stop(&rd, 1);
    zh_rmtree(b1.dir);
    zh_rmtree(b2.dir);
    return 0;
}

struct job {
    const char *session;
    const char *extra; /* audience and scope, form-encoded */
    int first;         /* which broker this thread starts with */
    int n;             /* requests to send, alternating brokers */
    int ok[2], limited[2], other;
    char other_body[256];
};

/* One token request; the status, 0 on a transport error (no cmocka asserts:
 * this runs on the test's own threads). */
static long token_request(const struct zh_broker *b, const char *session, const char *extra,
                          struct zh_resp *r)
{
    char form[2048];
    snprintf(form, sizeof(form), "grant_type=%s&client_assertion_type=%s&client_assertion=%s%s",
             GRANT, ZA_SESSION_TYPE, session, extra);
    return zh_post_form(b, "/v1/token", form, r) == 0 ? r->status : 0;
}

static void *hammer(void *arg)
{
    struct job *j = arg;
    for (int i = 0; i < j->n; i++) {
        int which = (j->first + i) % 2;
        struct zh_resp r;
        long s = token_request(which ? &b2 : &b1, j->session, j->extra, &r);
        char ra[16];
        if (s == 200 && strstr(r.body, "\"access_token\"") != NULL) {
            j->ok[which]++;
        } else if (s == 429 && strstr(r.body, "\"slow_down\"") != NULL &&
                   zh_resp_header(&r, "Retry-After", ra, sizeof(ra)) != NULL && atoi(ra) >= 1) {
            j->limited[which]++;
        } else {
            j->other++;
            snprintf(j->other_body, sizeof(j->other_body), "HTTP %ld %s", s, r.body);
        }
        zh_resp_free(&r);
    }
    return NULL;
}

/* Send `total` requests from THREADS threads spread over both brokers. */
static void run(const char *session, const char *const *extras, size_t nextras, int total,
                int ok[2], int limited[2])
{
    struct job jobs[THREADS];
    pthread_t th[THREADS];
    for (int t = 0; t < THREADS; t++) {
        jobs[t] = (struct job){.session = session,
                               .extra = extras[(size_t)t % nextras],
                               .first = t % 2,
                               .n = total / THREADS + (t < total % THREADS)};
        assert_int_equal(pthread_create(&th[t], NULL, hammer, &jobs[t]), 0);
    }
    ok[0] = ok[1] = limited[0] = limited[1] = 0;
    for (int t = 0; t < THREADS; t++) {
        pthread_join(th[t], NULL);
        if (jobs[t].other != 0)
            fail_msg("unexpected answer: %s", jobs[t].other_body);
        for (int k = 0; k < 2; k++) {
            ok[k] += jobs[t].ok[k];
            limited[k] += jobs[t].limited[k];
        }
    }
}

static void test_action_limit_spans_brokers(void **state)
{
    (void)state;
    struct za_agent a;
    za_enroll(&b1, &a, "shared-bot");
    const char *extra[] = {"&audience=svc&scope=svc%3Acall&resource=x%2F1"};
    int ok[2], limited[2];
    run(a.session, extra, 1, LIMIT + EXTRA, ok, limited);
    print_message("broker 1: %d issued, %d limited; broker 2: %d issued, %d limited\n", ok[0],
                  limited[0], ok[1], limited[1]);
    assert_int_equal(ok[0] + ok[1], LIMIT);
    assert_int_equal(limited[0] + limited[1], EXTRA);
    /* both replicas issued and both refused: the bucket is one, not two */
    assert_true(ok[0] > 0 && ok[1] > 0);
    assert_true(limited[0] > 0 && limited[1] > 0);
    /* and it stays spent, whichever broker is asked */
    struct zh_resp r;
    assert_int_equal(token_request(&b1, a.session, extra[0], &r), 429);
    zh_resp_free(&r);
    assert_int_equal(token_request(&b2, a.session, extra[0], &r), 429);
    zh_resp_free(&r);
    za_free(&a);
}

/* The agent bucket is shared by its actions too, across brokers. */
static void test_agent_limit_spans_brokers_and_actions(void **state)
{
    (void)state;
    struct za_agent a;
    za_enroll(&b2, &a, "budget-bot"); /* a session from the other replica */
    const char *extras[] = {"&audience=svc&scope=svc%3Aread", "&audience=svc&scope=svc%3Awrite"};
    int ok[2], limited[2];
    run(a.session, extras, 2, 10 + 14, ok, limited);
    assert_int_equal(ok[0] + ok[1], 10);
    assert_int_equal(limited[0] + limited[1], 14);
    za_free(&a);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_action_limit_spans_brokers),
        cmocka_unit_test(test_agent_limit_spans_brokers_and_actions),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
