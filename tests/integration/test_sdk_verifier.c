/*
 * test_sdk_verifier.c - interoperability of libztb's verifier with the real
 * ztb-broker: tokens the broker mints verify in the SDK (keys from the
 * broker's JWKS URL, revocation from the broker's Redis); single-use tokens
 * are consumed once across gateway replicas; DPoP-bound tokens need their
 * proof; revocations written the way docs/protocol.md says are seen at once;
 * and a key rotation in the middle of a stream of validations causes no
 * failure (the old kid still verifies, the new kid is fetched on demand).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "pki/jws.h"
#include "sdk_it.h"

static struct zh_redis rd;
static struct zh_broker b;
static ztb_agent *agent, *dpop_agent;
static ztb_verifier *v, *replica;

static int setup(void **state)
{
    (void)state;
    zh_redis_start(&rd);
    zh_broker_start_issuing(&b, rd.url, sdk_it_policy);
    agent = sdk_it_enrolled(&b, "billing-bot", 0);
    dpop_agent = sdk_it_enrolled(&b, "ticket-bot", 1);
    v = sdk_it_verifier(&b, rd.url);
    replica = sdk_it_verifier(&b, rd.url);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    ztb_verifier_free(v);
    ztb_verifier_free(replica);
    ztb_agent_free(agent);
    ztb_agent_free(dpop_agent);
    zh_broker_stop(&b);
    zh_redis_stop(&rd, 1);
    zh_rmtree(b.dir);
    return 0;
}

static char *mint(ztb_agent *a, const char *action, const char *resource, const char *details)
{
    char *tok = NULL;
    ztb_err rv = ztb_agent_token(a, "payments", action, resource, details, &tok);
    if (rv != ZTB_OK)
        fail_msg("token %s: %s: %s", action, ztb_err_name(rv), ztb_agent_errdetail(a));
    return tok;
}

static ztb_err check(ztb_verifier *x, const char *tok, const char *action, const char *resource,
                     ztb_claims *cl)
{
    ztb_expect e = {.action = action, .resource = resource};
    return ztb_verify(x, tok, &e, cl);
}

static void test_broker_token_verifies(void **state)
{
    (void)state;
    char *tok =
        mint(agent, "payments:refund", "orders/1234", "{\"type\":\"payment\",\"amount\":40}");
    ztb_claims *cl = ztb_claims_new();
    /* the wrong request first: nothing is consumed by a refusal */
    assert_int_equal(check(v, tok, "payments:refund", "orders/9", cl), ZTB_ERR_RESOURCE);
    assert_int_equal(check(v, tok, "payments:list", "orders/1234", cl), ZTB_ERR_ACTION);
    ztb_err rv = check(v, tok, "payments:refund", "orders/1234", cl);
    if (rv != ZTB_OK)
        fail_msg("%s: %s", ztb_err_name(rv), ztb_verifier_errdetail(v));
    assert_string_equal(ztb_claims_subject(cl), "spiffe://ztb.local/agent/billing-bot");
    assert_string_equal(ztb_claims_agent(cl), "billing-bot");
    assert_string_equal(ztb_claims_action(cl), "payments:refund");
    assert_string_equal(ztb_claims_resource(cl), "orders/1234");
    assert_string_equal(ztb_claims_rule(cl), "refund-small");
    assert_string_equal(ztb_claims_details_type(cl), "payment");
    double amount = 0;
    assert_int_equal(ztb_claims_detail_number(cl, "amount", &amount), ZTB_OK);
    assert_true(amount == 40);
    assert_true(ztb_claims_single_use(cl));
    /* single-use: consumed; a replay fails here and at any other replica */
    assert_int_equal(check(v, tok, "payments:refund", "orders/1234", cl), ZTB_ERR_REPLAY);
    assert_int_equal(check(replica, tok, "payments:refund", "orders/1234", cl), ZTB_ERR_REPLAY);
    ztb_token_free(tok);

    /* a multi-use token verifies again, at every replica */
    tok = mint(agent, "payments:list", NULL, NULL);
    assert_int_equal(check(v, tok, "payments:list", NULL, cl), ZTB_OK);
    assert_int_equal(check(replica, tok, "payments:list", NULL, cl), ZTB_OK);
    assert_false(ztb_claims_single_use(cl));
    /* another gateway (audience) refuses it */
    ztb_verifier_config *c = ztb_verifier_config_new();
    char jwks[128];
    snprintf(jwks, sizeof(jwks), "%s/.well-known/jwks.json", b.url);
    ztb_verifier_config_set_issuer(c, b.url);
    ztb_verifier_config_set_audience(c, "crm");
    ztb_verifier_config_set_jwks_url(c, jwks);
    ztb_verifier_config_set_no_revocation(c);
    ztb_verifier *crm = NULL;
    assert_int_equal(ztb_verifier_new(c, &crm), ZTB_OK);
    ztb_verifier_config_free(c);
    assert_int_equal(check(crm, tok, "payments:list", NULL, cl), ZTB_ERR_AUDIENCE);
    ztb_verifier_free(crm);
    ztb_token_free(tok);
    ztb_claims_free(cl);
}

static void test_dpop_bound_token(void **state)
{
    (void)state;
    char *tok = mint(dpop_agent, "tickets:create", "tickets/new", NULL);
    const char *htu = "https://payments.example/tickets/new";
    char *proof = NULL;
    assert_int_equal(ztb_dpop_proof(dpop_agent, "POST", htu, tok, &proof), ZTB_OK);
    ztb_expect e = {.action = "tickets:create",
                    .resource = "tickets/new",
                    .htm = "POST",
                    .htu = htu,
                    .flags = ZTB_EXPECT_DPOP_SCHEME};
    assert_int_equal(ztb_verify(v, tok, &e, NULL), ZTB_ERR_BINDING); /* no proof */
    e.dpop_proof = proof;
    ztb_err rv = ztb_verify(v, tok, &e, NULL);
    if (rv != ZTB_OK)
        fail_msg("%s: %s", ztb_err_name(rv), ztb_verifier_errdetail(v));
    assert_int_equal(ztb_verify(replica, tok, &e, NULL), ZTB_ERR_DPOP_REPLAY);
    ztb_token_free(proof);
    /* a proof for another URL */
    assert_int_equal(
        ztb_dpop_proof(dpop_agent, "POST", "https://payments.example/other", tok, &proof), ZTB_OK);
    e.dpop_proof = proof;
    assert_int_equal(ztb_verify(v, tok, &e, NULL), ZTB_ERR_DPOP);
    ztb_token_free(proof);
    ztb_token_free(tok);
}

static void redis_event(const char *event)
{
    redisContext *c = zh_redis_connect(&rd);
    redisReply *r = redisCommand(c, "ZADD ztb:{rev}:events %s %s", "+inf", event);
    freeReplyObject(r);
    r = redisCommand(c, "PUBLISH ztb:revocations %s", event);
    freeReplyObject(r);
    redisFree(c);
}

static ztb_err wait_for(const char *tok, const char *action, ztb_err want)
{
    ztb_err rv = ZTB_OK;
    for (int i = 0; i < 500 && (rv = check(v, tok, action, NULL, NULL)) != want; i++) {
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return rv;
}

static void test_revocations_seen_at_once(void **state)
{
    (void)state;
    ztb_claims *cl = ztb_claims_new();
    char *one = mint(agent, "payments:list", NULL, NULL);
    char *two = mint(agent, "payments:list", NULL, NULL);
    assert_int_equal(check(v, one, "payments:list", NULL, cl), ZTB_OK);
    char ev[256];
    snprintf(ev, sizeof(ev), "{\"type\":\"jti\",\"id\":\"%s\",\"exp\":%lld}", ztb_claims_jti(cl),
             (long long)ztb_claims_expires_at(cl));
    redis_event(ev);
    assert_int_equal(wait_for(one, "payments:list", ZTB_ERR_REVOKED), ZTB_ERR_REVOKED);
    assert_int_equal(check(v, two, "payments:list", NULL, NULL), ZTB_OK);
    /* every token of the agent: a generation past the one they carry */
    snprintf(ev, sizeof(ev), "{\"type\":\"agent\",\"id\":\"billing-bot\",\"gen\":99,\"exp\":%lld}",
             (long long)time(NULL) + 600);
    redis_event(ev);
    assert_int_equal(wait_for(two, "payments:list", ZTB_ERR_AGENT_REVOKED), ZTB_ERR_AGENT_REVOKED);
    /* a gateway started now loads the same state */
    ztb_verifier *late = sdk_it_verifier(&b, rd.url);
    assert_int_equal(check(late, two, "payments:list", NULL, NULL), ZTB_ERR_AGENT_REVOKED);
    ztb_verifier_free(late);
    redisContext *c = zh_redis_connect(&rd);
    freeReplyObject(redisCommand(c, "DEL ztb:{rev}:events"));
    redisFree(c);
    ztb_verifier_free(v);
    ztb_verifier_free(replica);
    v = sdk_it_verifier(&b, rd.url);
    replica = sdk_it_verifier(&b, rd.url);
    ztb_token_free(one);
    ztb_token_free(two);
    ztb_claims_free(cl);
}

/* ---- key rotation under a stream of validations -------------------------- */

/* Run `ztbctl keys --dir KEYS rotate --force` as the key store's owner, then SIGHUP. */
static void rotate(void)
{
    struct stat st;
    assert_int_equal(stat(b.keys, &st), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (geteuid() == 0 && st.st_uid != 0 && (setgid(st.st_gid) != 0 || setuid(st.st_uid) != 0))
            _exit(126);
        int null = open("/dev/null", O_WRONLY);
        dup2(null, 1);
        execl(zh_bin("ztbctl"), "ztbctl", "keys", "--dir", b.keys, "rotate", "--force",
              (char *)NULL);
        _exit(127);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    kill(b.pid, SIGHUP);
}

static const char *kid_of(const char *tok, char *out, size_t cap)
{
    ztb_jws_header h;
    assert_int_equal(ztb_jws_peek(tok, strlen(tok), NULL, &h), ZTB_OK);
    snprintf(out, cap, "%s", h.kid);
    return out;
}

struct stream {
    _Atomic int stop;
    _Atomic unsigned ok, failed, minted;
    char first_failure[256];
};

/* Mint and verify tokens without pause until told to stop. */
static void *stream_main(void *arg)
{
    struct stream *s = arg;
    while (!atomic_load(&s->stop)) {
        char *tok = NULL;
        ztb_err rv = ztb_agent_token(agent, "payments", "payments:list", NULL, NULL, &tok);
        if (rv == ZTB_OK) {
            atomic_fetch_add(&s->minted, 1);
            rv = check(v, tok, "payments:list", NULL, NULL);
        }
        if (rv == ZTB_OK) {
            atomic_fetch_add(&s->ok, 1);
        } else if (atomic_fetch_add(&s->failed, 1) == 0) {
            snprintf(s->first_failure, sizeof(s->first_failure), "%s: %s", ztb_err_name(rv),
                     ztb_verifier_errdetail(v)[0] ? ztb_verifier_errdetail(v)
                                                  : ztb_agent_errdetail(agent));
        }
        ztb_token_free(tok);
    }
    return NULL;
}

static void test_rotation_mid_stream(void **state)
{
    (void)state;
    char *before = mint(agent, "payments:list", NULL, NULL);
    char kid0[160], kid1[160];
    kid_of(before, kid0, sizeof(kid0));
    ztb_verifier_stats st0 = ZTB_VERIFIER_STATS_INIT;
    assert_int_equal(ztb_verifier_stats_get(v, &st0), ZTB_OK);

    struct stream s = {0};
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&t[i], NULL, stream_main, &s);
    sleep(1);
    rotate(); /* publish the next key */
    sleep(1);
    rotate(); /* make it active at once: the verifier has not fetched it yet */
    /* run until the broker signs with the new key, and a while longer */
    char *after = NULL;
    for (int i = 0; i < 100; i++) {
        after = mint(agent, "payments:list", NULL, NULL);
        if (strcmp(kid_of(after, kid1, sizeof(kid1)), kid0) != 0)
            break;
        ztb_token_free(after);
        after = NULL;
        usleep(100 * 1000);
    }
    assert_non_null(after);
    sleep(1);
    atomic_store(&s.stop, 1);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    print_message("rotation: %u tokens minted and verified, %u failures\n", atomic_load(&s.ok),
                  atomic_load(&s.failed));
    if (atomic_load(&s.failed) != 0)
        fail_msg("%u validations failed during the rotation; first: %s", atomic_load(&s.failed),
                 s.first_failure);
    assert_true(atomic_load(&s.ok) > 20);
    /* both keys verify: the old kid from before, the new one fetched on demand */
    assert_int_equal(check(v, before, "payments:list", NULL, NULL), ZTB_OK);
    assert_int_equal(check(v, after, "payments:list", NULL, NULL), ZTB_OK);
    ztb_verifier_stats st1 = ZTB_VERIFIER_STATS_INIT;
    assert_int_equal(ztb_verifier_stats_get(v, &st1), ZTB_OK);
    assert_true(st1.jwks_fetches > st0.jwks_fetches);
    assert_true(st1.jwks_keys >= 2);
    ztb_token_free(before);
    ztb_token_free(after);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_broker_token_verifies),
        cmocka_unit_test(test_dpop_bound_token),
        cmocka_unit_test(test_revocations_seen_at_once),
        cmocka_unit_test(test_rotation_mid_stream),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
