/*
 * test_redis_cluster_failover.c - one shard of a Redis Cluster fails over
 * while the broker issues under load, against real processes made by the
 * test on loopback: three masters with one replica each
 * (zh_cluster_start_replicated), ztb-broker on redis+cluster://, SDK agents
 * whose keys live on the three shards ({crm-bot} slot 806, {beta-bot} 9943,
 * {alpha-bot} 13435), an SDK verifier following the revocation feed and
 * one asking the broker's introspection, both made before the failover.
 * The shard that fails over is the middle one: it holds beta-bot and the
 * revocation state ({rev}).
 *
 * - a revocation is acknowledged only once the replica of the master that
 *   took it confirms it (WAIT): with that replica stopped (SIGSTOP) the
 *   broker answers 503, and 200 once it runs again (the attack: the broker
 *   used to acknowledge at once, so a failover could lose it);
 * - CLUSTER FAILOVER on the replica, then kill -9 of the new master
 *   (cluster-node-timeout 1000): each time issuance resumes for every agent
 *   within 10 s of the switch, without a broker restart;
 * - no token is issued without its rate-limit check: beta-bot's metered
 *   action (burst 20, one more an hour) is spent before the failover and
 *   stays spent after it (its bucket moved with the shard), refused by
 *   Redis on the new master (429, not 503);
 * - every revocation acknowledged before or during each failover is in
 *   force after it, at introspection and at the feed verifier, and a token
 *   not revoked is still accepted there.
 * Replica offsets are waited for before each failover (as in
 * test_redis_failover) so the test is deterministic.
 */
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "sdk_it.h"

static const char *const policy =
    "{\"version\": 1, \"trust_domain\": \"ztb.local\",\n"
    " \"settings\": {\"max_ttl\": 300, \"default_ttl\": 120,\n"
    "   \"rate_limits\": {\"per_agent\": {\"rate\": 100000, \"burst\": 10000, \"period\": 60},\n"
    "                   \"per_action\": {\"rate\": 100000, \"burst\": 10000, \"period\": 60}}},\n"
    " \"rules\": [\n"
    "  {\"id\": \"gate\", \"effect\": \"allow\", \"agents\": [\"gate\"],\n"
    "   \"actions\": [\"ztb:introspect\"], \"audiences\": [\"**\"], \"resources\": [\"**\"]},\n"
    "  {\"id\": \"list\", \"effect\": \"allow\", \"agents\": [\"*\"],\n"
    "   \"actions\": [\"payments:list\"], \"audiences\": [\"payments\"], \"resources\": "
    "[\"**\"]},\n"
    "  {\"id\": \"metered\", \"effect\": \"allow\", \"agents\": [\"beta-bot\"],\n"
    "   \"actions\": [\"payments:metered\"], \"audiences\": [\"payments\"],\n"
    "   \"resources\": [\"**\"],\n"
    "   \"obligations\": {\"rate_limits\": {\"per_action\": {\"rate\": 1, \"burst\": 20,\n"
    "                     \"period\": 3600}}}}\n"
    " ]}\n";

#define METERED_BURST 20
#define NPOOL         64 /* tokens revoked during the failovers */

/* nodes[0..3) the masters as made, nodes[3 + i] the replica of nodes[i] */
static struct zh_redis nodes[6];
static char url[256];
static struct zh_broker b;
static const char *const names[] = {"crm-bot", "beta-bot", "alpha-bot"};
static ztb_agent *agents[3], *gate;
static ztb_verifier *v, *vi; /* the revocation feed; introspection */

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* An enrolled agent that tries each request once: the load sees every
 * answer the broker gives. */
static ztb_agent *agent_once(const char *name)
{
    ztb_agent_config *c = ztb_agent_config_new();
    ztb_agent *a = NULL;
    if (c == NULL || ztb_agent_config_set_broker(c, b.url) != ZTB_OK ||
        ztb_agent_config_set_name(c, name) != ZTB_OK ||
        ztb_agent_config_set_retries(c, 0, 100) != ZTB_OK || ztb_agent_new(c, &a) != ZTB_OK)
        fail_msg("agent %s: %s", name, ztb_agent_errdetail(NULL));
    ztb_agent_config_free(c);
    char *join = sdk_it_join_token(&b, name);
    ztb_err rv = ztb_agent_enroll(a, join);
    free(join);
    if (rv != ZTB_OK)
        fail_msg("enroll %s: %s: %s", name, ztb_err_name(rv), ztb_agent_errdetail(a));
    return a;
}

/* ---- the load ------------------------------------------------------------ */

struct load {
    pthread_t th;
    ztb_agent *a;
    const char *action;
    atomic_int stop;
    atomic_ullong last_ok_ms; /* when the latest token came */
    atomic_int ok, limited, unavailable, other;
    atomic_int limited_since; /* 429s since load_mark */
};

static void *load_main(void *arg)
{
    struct load *l = arg;
    while (!atomic_load(&l->stop)) {
        char *tok = NULL;
        ztb_err rv = ztb_agent_token(l->a, "payments", l->action, NULL, NULL, &tok);
        if (rv == ZTB_OK) {
            atomic_fetch_add(&l->ok, 1);
            atomic_store(&l->last_ok_ms, now_ms());
            ztb_token_free(tok);
        } else if (rv == ZTB_ERR_RATE_LIMITED) {
            atomic_fetch_add(&l->limited, 1);
            atomic_fetch_add(&l->limited_since, 1);
        } else {
            if (rv == ZTB_ERR_UNAVAILABLE)
                atomic_fetch_add(&l->unavailable, 1);
            else
                atomic_fetch_add(&l->other, 1);
            usleep(20000);
        }
        usleep(3000);
    }
    return NULL;
}

static struct load loads[4]; /* the three agents' lists; beta-bot metered */

static void load_start(void)
{
    for (int i = 0; i < 4; i++) {
        loads[i].a = agents[i < 3 ? i : 1];
        loads[i].action = i < 3 ? "payments:list" : "payments:metered";
        assert_int_equal(pthread_create(&loads[i].th, NULL, load_main, &loads[i]), 0);
    }
}

static void load_stop(void)
{
    for (int i = 0; i < 4; i++)
        atomic_store(&loads[i].stop, 1);
    for (int i = 0; i < 4; i++)
        pthread_join(loads[i].th, NULL);
}

/* ---- revocations --------------------------------------------------------- */

/* POST /v1/revocations {"type":"jti","token":tok}: the HTTP status. */
static long revoke_jti(const char *tok)
{
    char body[4096];
    snprintf(body, sizeof(body), "{\"type\":\"jti\",\"token\":\"%s\"}", tok);
    struct zh_resp r;
    long st = zh_admin(&b, "POST", "/v1/revocations", body, &r) == 0 ? r.status : 0;
    zh_resp_free(&r);
    return st;
}

/* Tokens revoked during the failovers (crm-bot's, shard 0; their state is
 * on {rev}'s shard, the one failing over) and which were acknowledged. */
static char *pool[NPOOL];
static int acked[NPOOL];
static atomic_int pool_next;
static atomic_int revoker_stop;
static pthread_t revoker;

static void *revoker_main(void *arg)
{
    (void)arg;
    while (!atomic_load(&revoker_stop)) {
        int i = atomic_fetch_add(&pool_next, 1);
        if (i >= NPOOL)
            break;
        acked[i] = revoke_jti(pool[i]) == 200;
        usleep(100000);
    }
    return NULL;
}

static void revoker_start(void)
{
    atomic_store(&revoker_stop, 0);
    assert_int_equal(pthread_create(&revoker, NULL, revoker_main, NULL), 0);
}

static void revoker_stop_now(void)
{
    atomic_store(&revoker_stop, 1);
    pthread_join(revoker, NULL);
}

static ztb_err verify(ztb_verifier *x, const char *tok)
{
    ztb_expect e = {.action = "payments:list"};
    return ztb_verify(x, tok, &e, NULL);
}

/* tok is refused with want at x within ms (the feed may be reloading:
 * it fails closed meanwhile, with another error). */
static void refused_within(ztb_verifier *x, const char *tok, ztb_err want, unsigned ms,
                           const char *what)
{
    uint64_t end = now_ms() + ms;
    ztb_err rv;
    while ((rv = verify(x, tok)) != want && now_ms() < end)
        usleep(20000);
    if (rv != want)
        fail_msg("%s: %s instead of %s (%s)", what, ztb_err_name(rv), ztb_err_name(want),
                 ztb_verifier_errdetail(x));
}

/* Every acknowledged revocation of the pool, and those in before, are in
 * force at introspection and at the feed; keep is accepted. */
static void revocations_in_force(char *const *before, size_t nbefore, const char *keep)
{
    for (size_t i = 0; i < nbefore; i++) {
        refused_within(vi, before[i], ZTB_ERR_REVOKED, 3000, "introspection, revoked before");
        refused_within(v, before[i], ZTB_ERR_REVOKED, 5000, "feed, revoked before");
    }
    int n = 0;
    for (int i = 0; i < NPOOL; i++) {
        if (!acked[i])
            continue;
        n++;
        refused_within(vi, pool[i], ZTB_ERR_REVOKED, 3000, "introspection, revoked during");
        refused_within(v, pool[i], ZTB_ERR_REVOKED, 5000, "feed, revoked during");
    }
    assert_true(n > 0);
    refused_within(v, keep, ZTB_OK, 5000, "feed, not revoked");
    refused_within(vi, keep, ZTB_OK, 3000, "introspection, not revoked");
}

/* ---- the cluster --------------------------------------------------------- */

/* An integer field of INFO replication at r, or -1. */
static long long repl_field(const struct zh_redis *r, const char *field)
{
    redisContext *c = zh_redis_connect(r);
    redisReply *rep = redisCommand(c, "INFO replication");
    long long val = -1;
    char key[64];
    snprintf(key, sizeof(key), "%s:", field);
    const char *p = rep && rep->type == REDIS_REPLY_STRING ? strstr(rep->str, key) : NULL;
    if (p != NULL)
        val = strtoll(p + strlen(key), NULL, 10);
    if (rep)
        freeReplyObject(rep);
    redisFree(c);
    return val;
}

/* 1 if r says ROLE master. */
static int is_master(const struct zh_redis *r)
{
    redisContext *c = zh_redis_connect(r);
    redisReply *rep = redisCommand(c, "ROLE");
    int m = rep && rep->type == REDIS_REPLY_ARRAY && rep->elements > 0 &&
            strcmp(rep->element[0]->str, "master") == 0;
    if (rep)
        freeReplyObject(rep);
    redisFree(c);
    return m;
}

/* 1 if rp is a replica of m with its link up. */
static int follows(const struct zh_redis *m, const struct zh_redis *rp)
{
    redisContext *c = zh_redis_connect(rp);
    redisReply *rep = redisCommand(c, "INFO replication");
    char want[32];
    snprintf(want, sizeof(want), "master_port:%d\r\n", m->port);
    int up = rep && rep->type == REDIS_REPLY_STRING && strstr(rep->str, "role:slave") &&
             strstr(rep->str, want) && strstr(rep->str, "master_link_status:up");
    if (rep)
        freeReplyObject(rep);
    redisFree(c);
    return up;
}

/* Replica rp follows master m with its link up and has everything m had
 * when this was called: promoted now, it loses nothing. */
static void wait_caught_up(const struct zh_redis *m, const struct zh_redis *rp)
{
    uint64_t end = now_ms() + 10000;
    while (!follows(m, rp)) {
        if (now_ms() > end)
            fail_msg("the node on port %d does not follow port %d", rp->port, m->port);
        usleep(10000);
    }
    long long want = repl_field(m, "master_repl_offset");
    while (repl_field(rp, "slave_repl_offset") < want) {
        if (now_ms() > end)
            fail_msg("the replica on port %d did not catch up with port %d", rp->port, m->port);
        usleep(10000);
    }
}

/* Until r is a master (the switch): its time, failing after 15 s. */
static uint64_t wait_master(const struct zh_redis *r)
{
    uint64_t end = now_ms() + 15000;
    while (!is_master(r)) {
        if (now_ms() > end)
            fail_msg("the node on port %d did not become a master", r->port);
        usleep(10000);
    }
    return now_ms();
}

/* Every node still up says cluster_state:ok. */
static void wait_cluster_ok(const struct zh_redis *skip)
{
    uint64_t end = now_ms() + 15000;
    for (;;) {
        int ok = 1;
        for (int i = 0; i < 6 && ok; i++) {
            if (&nodes[i] == skip)
                continue;
            redisContext *c = zh_redis_connect(&nodes[i]);
            redisReply *r = redisCommand(c, "CLUSTER INFO");
            ok = r && r->type == REDIS_REPLY_STRING && strstr(r->str, "cluster_state:ok");
            if (r)
                freeReplyObject(r);
            redisFree(c);
        }
        if (ok)
            return;
        if (now_ms() > end)
            fail_msg("the cluster did not say ok again");
        usleep(20000);
    }
}

/* Issuance resumed for every agent after t_switch, within 10 s: how long
 * the slowest took. */
static uint64_t issuance_resumes(uint64_t t_switch)
{
    uint64_t end = t_switch + 10000;
    for (;;) {
        int all = 1;
        uint64_t worst = 0;
        for (int i = 0; i < 3; i++) {
            uint64_t t = atomic_load(&loads[i].last_ok_ms);
            if (t <= t_switch)
                all = 0;
            else if (t - t_switch > worst)
                worst = t - t_switch;
        }
        if (all)
            return worst;
        if (now_ms() > end) {
            zh_broker_dump_log(&b);
            fail_msg("issuance did not resume for every agent within 10 s of the switch");
        }
        usleep(10000);
    }
}

/* beta-bot's metered bucket (on the shard that failed over) is refused by
 * Redis after the switch (429s counted from now), and no token more came
 * from it than before. */
static void still_spent(int spent)
{
    atomic_store(&loads[3].limited_since, 0);
    uint64_t end = now_ms() + 3000;
    while (atomic_load(&loads[3].limited_since) < 3 && now_ms() < end)
        usleep(10000);
    assert_true(atomic_load(&loads[3].limited_since) >= 3);
    assert_int_equal(atomic_load(&loads[3].ok), spent);
}

/* ---- the test ------------------------------------------------------------ */

static int setup(void **state)
{
    (void)state;
    signal(SIGPIPE, SIG_IGN);

    zh_cluster_start_replicated(nodes, 3, 1000, url, sizeof(url));
    /* a short WAIT: the attack below waits it out once */
    static const char *const args[] = {"--redis-wait-timeout-ms", "400", NULL};
    struct zh_broker_opts o = {
        .redis_url = url, .with_keys = 1, .policy = policy, .extra_args = args};
    zh_broker_start(&b, &o);
    for (int i = 0; i < 3; i++)
        agents[i] = agent_once(names[i]);
    gate = sdk_it_enrolled(&b, "gate", 0);
    v = sdk_it_verifier(&b, url);
    char jwks[128];
    snprintf(jwks, sizeof(jwks), "%s/.well-known/jwks.json", b.url);
    ztb_verifier_config *c = ztb_verifier_config_new();
    if (c == NULL || ztb_verifier_config_set_issuer(c, b.url) != ZTB_OK ||
        ztb_verifier_config_set_audience(c, "payments") != ZTB_OK ||
        ztb_verifier_config_set_jwks_url(c, jwks) != ZTB_OK ||
        ztb_verifier_config_set_introspection(c, gate) != ZTB_OK ||
        ztb_verifier_new(c, &vi) != ZTB_OK)
        fail_msg("verifier: %s", ztb_verifier_errdetail(NULL));
    ztb_verifier_config_free(c);
    for (int i = 0; i < NPOOL; i++)
        assert_int_equal(
            ztb_agent_token(agents[0], "payments", "payments:list", NULL, NULL, &pool[i]), ZTB_OK);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    ztb_verifier_free(v);
    ztb_verifier_free(vi);
    for (int i = 0; i < 3; i++)
        ztb_agent_free(agents[i]);
    ztb_agent_free(gate);
    for (int i = 0; i < NPOOL; i++)
        ztb_token_free(pool[i]);
    zh_broker_stop(&b);
    for (int i = 0; i < 6; i++)
        zh_redis_stop(&nodes[i], 1);
    zh_rmtree(b.dir);
    return 0;
}

static char *mint(int agent)
{
    char *tok = NULL;
    ztb_err rv = ztb_agent_token(agents[agent], "payments", "payments:list", NULL, NULL, &tok);
    if (rv != ZTB_OK)
        fail_msg("token: %s: %s", ztb_err_name(rv), ztb_agent_errdetail(agents[agent]));
    return tok;
}

/*
 * The attack: the broker acknowledged a revocation on a Cluster without
 * WAIT (it waited only with a Sentinel URL), so a failover right after
 * could promote a replica that never had it. With the replica of the
 * {rev} shard stopped, a revocation must not be acknowledged; once it
 * runs again, it is.
 */
static void test_revocation_waits_for_the_shards_replica(void **state)
{
    (void)state;
    char *tok = mint(0);
    uint64_t t0 = now_ms();
    kill(nodes[4].pid, SIGSTOP);
    long st = revoke_jti(tok);
    kill(nodes[4].pid, SIGCONT);
    if (st != 503)
        fail_msg("a revocation no replica confirmed was answered %ld (must be 503)", st);
    assert_true(now_ms() - t0 >= 350); /* it waited (redis_wait_timeout_ms 400) */
    wait_caught_up(&nodes[1], &nodes[4]);
    assert_int_equal(revoke_jti(tok), 200);
    refused_within(vi, tok, ZTB_ERR_REVOKED, 3000, "introspection");
    ztb_token_free(tok);
}

static void test_shard_failover_under_load(void **state)
{
    (void)state;
    uint64_t t_start = now_ms();
    char *before[3] = {mint(0), mint(1), mint(2)};
    char *keep = mint(2);
    for (int i = 0; i < 3; i++)
        assert_int_equal(revoke_jti(before[i]), 200);
    load_start();
    /* the metered action is spent before the failover */
    uint64_t end = now_ms() + 5000;
    while (atomic_load(&loads[3].limited) == 0 && now_ms() < end)
        usleep(10000);
    int spent = atomic_load(&loads[3].ok);
    assert_true(spent >= METERED_BURST && spent <= METERED_BURST + 1);

    /* 1. CLUSTER FAILOVER on the replica of the {rev} shard, under load,
     * with revocations in flight */
    wait_caught_up(&nodes[1], &nodes[4]);
    revoker_start();
    usleep(150000);
    redisContext *c = zh_redis_connect(&nodes[4]);
    redisReply *r = redisCommand(c, "CLUSTER FAILOVER");
    assert_true(r != NULL && r->type == REDIS_REPLY_STATUS);
    freeReplyObject(r);
    redisFree(c);
    uint64_t t1 = wait_master(&nodes[4]);
    uint64_t took1 = issuance_resumes(t1);
    usleep(150000);
    revoker_stop_now();
    int during1 = atomic_load(&pool_next);
    revocations_in_force(before, 3, keep);
    /* the bucket moved with the shard: still spent, refused by Redis */
    still_spent(spent);

    /* 2. kill -9 of the new master: the old one, its replica now, takes
     * over after cluster-node-timeout */
    wait_cluster_ok(NULL);
    wait_caught_up(&nodes[4], &nodes[1]);
    revoker_start();
    usleep(150000);
    zh_redis_kill(&nodes[4]);
    uint64_t t2 = wait_master(&nodes[1]);
    uint64_t took2 = issuance_resumes(t2);
    usleep(150000);
    revoker_stop_now();
    revocations_in_force(before, 3, keep);
    still_spent(spent);
    load_stop();
    fprintf(stderr,
            "cluster failover: issuance back %llu ms after CLUSTER FAILOVER's switch, %llu ms "
            "after kill -9's; %d + %d revocations during, tokens %d/%d/%d, 503s %d/%d/%d; "
            "test %llu ms\n",
            (unsigned long long)took1, (unsigned long long)took2, during1,
            atomic_load(&pool_next) - during1, atomic_load(&loads[0].ok), atomic_load(&loads[1].ok),
            atomic_load(&loads[2].ok), atomic_load(&loads[0].unavailable),
            atomic_load(&loads[1].unavailable), atomic_load(&loads[2].unavailable),
            (unsigned long long)(now_ms() - t_start));
    for (int i = 0; i < 4; i++)
        assert_int_equal(atomic_load(&loads[i].other), 0);
    for (int i = 0; i < 3; i++)
        ztb_token_free(before[i]);
    ztb_token_free(keep);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_revocation_waits_for_the_shards_replica),
        cmocka_unit_test(test_shard_failover_under_load),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
