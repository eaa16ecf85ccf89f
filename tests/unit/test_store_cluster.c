/*
 * test_store_cluster.c - every Redis script and command the broker's store
 * runs, against a real 3-master Redis Cluster (cluster-enabled yes, made
 * by the test with redis-cli --cluster create on loopback ports), through
 * the broker's own client (redis+cluster://): none is refused CROSSSLOT
 * (each script's keys share one hash tag), each reaches the shard that
 * serves it, and the results are those a single Redis gives. Agents are
 * picked so that their {agent} keys live on three different shards.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "broker/http/metrics.h"
#include "broker/store/redis_client.h"
#include "broker/store/redis_preflight.h"
#include "broker/store/store.h"
#include "broker/store/store_actions.h"
#include "broker/store/store_approvals.h"
#include "broker/store/store_baseline.h"
#include "broker/store/store_detect.h"
#include "broker/store/store_lease.h"
#include "broker/store/store_migrate.h"
#include "broker/store/store_quorum.h"
#include "broker/store/store_rev.h"
#include "broker/store/store_signals.h"
#include "broker/store/store_sources.h"
#include "common/buf.h"
#include "common/redis_cluster.h"
#include "harness.h"

static struct zh_redis nodes[3];
static char url[256];

/* slots 806, 9943, 13435: one agent on each master's range */
static const char *const agents[] = {"crm-bot", "beta-bot", "alpha-bot"};

static int setup(void **state)
{
    (void)state;
    signal(SIGPIPE, SIG_IGN);
    zh_cluster_start(nodes, 3, url, sizeof(url));
    struct redis_target t;
    char err[256];
    assert_int_equal(redis_target_parse(url, 0, &t, err, sizeof(err)), ZTB_OK);
    t.timeout_ms = ZH_REDIS_TIMEOUT_MS;
    redis_client_init(&t);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    redis_client_shutdown();
    for (size_t i = 0; i < 3; i++)
        zh_redis_stop(&nodes[i], 1);
    return 0;
}

/* Which node holds key (EXISTS on each): its index, -1 if none. */
static int holder(const char *key)
{
    int at = -1;
    for (int i = 0; i < 3; i++) {
        redisContext *c = zh_redis_connect(&nodes[i]);
        redisReply *r = redisCommand(c, "EXISTS %s", key);
        if (r != NULL && r->type == REDIS_REPLY_INTEGER && r->integer == 1)
            at = i;
        if (r != NULL)
            freeReplyObject(r);
        redisFree(c);
    }
    return at;
}

/* The broker's count of one error kind. */
static long long errors(const char *kind)
{
    ztb_buf b;
    ztb_buf_init(&b, 1 << 22);
    metrics_render(&b);
    assert_int_equal(ztb_buf_error(&b), ZTB_OK);
    const char *text = ztb_buf_cstr(&b);
    char series[96];
    snprintf(series, sizeof(series), "ztb_redis_errors_total{kind=\"%s\"} ", kind);
    const char *p = text ? strstr(text, series) : NULL;
    long long v = p ? strtoll(p + strlen(series), NULL, 10) : 0;
    ztb_buf_free(&b);
    return v;
}

static void test_every_script_on_one_slot(void **state)
{
    (void)state;
    int64_t now = time(NULL);
    char err[512];
    assert_int_equal(store_layout_check(1, err, sizeof(err)), 0);
    int seen[3] = {0};
    for (size_t i = 0; i < 3; i++) {
        const char *a = agents[i];
        assert_int_equal(store_agent_add(a, now), ZTB_OK);
        char k[96];
        snprintf(k, sizeof(k), "ztb:{%s}:agent", a);
        int h = holder(k);
        assert_true(h >= 0);
        seen[h] = 1;
        char tok[STORE_JOIN_TOKEN_LEN + 1], who[STORE_NAME_MAX + 1];
        int reused;
        int64_t inc;
        assert_int_equal(store_join_create(a, 600, now, tok), ZTB_OK);
        assert_int_equal(store_join_incarnation(tok, &inc), ZTB_OK);
        assert_int_equal(store_join_peek(tok, who, &reused), ZTB_OK);
        assert_int_equal(store_join_consume(tok, who, &reused), ZTB_OK);
        assert_string_equal(who, a);
        assert_int_equal(store_join_consume(tok, who, &reused), ZTB_ERR_JOIN_TOKEN);
        assert_true(reused);
        assert_int_equal(store_agent_set_identity(a, STORE_IDENTITY_ENROLL, "{}", "jkt-1", "x5t-1",
                                                  now + 3600, 0, NULL),
                         ZTB_OK);
        struct store_agent_auth au;
        assert_int_equal(store_agent_auth_get(a, &au), ZTB_OK);
        assert_int_equal(store_assertion_seen(a, "jti-1", 60000), ZTB_OK);
        assert_int_equal(store_assertion_seen(a, "jti-1", 60000), ZTB_ERR_REPLAY);
        struct store_rate rate = {.rate = 100, .period_s = 60, .burst = 10};
        struct store_expect e = {
            .generation = -1, .epoch = -1, .dpop_jti = "p1", .dpop_ttl_ms = 60000};
        struct store_check ck;
        assert_int_equal(
            store_issue_check(a, &e, 1, "payments:list", "payments", &rate, &rate, &ck), ZTB_OK);
        assert_int_equal(ck.verdict, STORE_OK);
        assert_int_equal(
            store_issue_check(a, &e, 1, "payments:list", "payments", &rate, &rate, &ck), ZTB_OK);
        assert_int_equal(ck.verdict, STORE_DPOP_REPLAY);
        /* rate leases: the agent read, a leased unit with its DPoP
         * marker, and the settlement, all in the agent's slot */
        struct store_rate wide = {.rate = 100000, .period_s = 1, .burst = 100000};
        e.dpop_jti = NULL;
        for (int n = 0; n < 8; n++) {
            assert_int_equal(
                store_issue_check(a, &e, 1, "payments:list", "payments", &wide, &wide, &ck),
                ZTB_OK);
            assert_int_equal(ck.verdict, STORE_OK);
        }
        e.dpop_jti = "p2";
        assert_int_equal(
            store_issue_check(a, &e, 1, "payments:list", "payments", &wide, &wide, &ck), ZTB_OK);
        assert_int_equal(ck.verdict, STORE_OK);
        assert_int_equal(
            store_issue_check(a, &e, 1, "payments:list", "payments", &wide, &wide, &ck), ZTB_OK);
        assert_int_equal(ck.verdict, STORE_DPOP_REPLAY);
        assert_true(store_lease_units_taken() > 0);
        assert_true(store_lease_settle_all(1) >= 1);
        int64_t until, cnt, last, day;
        assert_int_equal(store_baseline_start(a, 3600, 0, &until), ZTB_OK);
        int64_t learned, distinct[3];
        assert_int_equal(store_baseline_counts(a, &learned, distinct), ZTB_OK);
        assert_int_equal(store_activity_get(a, &last, &day), ZTB_OK);
        assert_int_equal(store_agent_set_meta(a, "team", "desc"), ZTB_OK);
        assert_int_equal(store_detect_count(a, "burst", 60, &cnt), ZTB_OK);
        int fire;
        assert_int_equal(store_detect_audience(a, "payments", 3600, &fire), ZTB_OK);
        unsigned have;
        int fired;
        char ids[256];
        assert_int_equal(
            store_dual_count("agent", a, "entry", "src1", "sig1", 60, 2, &have, &fired, ids, 256),
            ZTB_OK);
        int changed;
        assert_int_equal(store_agent_flag(a, "quarantined", 1, &changed), ZTB_OK);
        assert_int_equal(store_agent_flag(a, "quarantined", 0, &changed), ZTB_OK);
    }
    /* the three agents' keys are on three different shards */
    assert_true(seen[0] && seen[1] && seen[2]);

    /* revocations of every kind, and what introspection reads of them */
    int applied, changed, fired;
    unsigned have;
    int64_t gen, exp;
    assert_int_equal(store_rev_jti("tok-1", now + 60, 60, 0, &applied), ZTB_OK);
    assert_int_equal(store_rev_agent("beta-bot", 300, 60, &gen, &exp), ZTB_OK);
    assert_int_equal(store_rev_audience("crm", 0, 60, &changed), ZTB_OK);
    assert_int_equal(store_audience_killed("crm"), 1);
    assert_int_equal(store_rev_audience("crm", 1, 60, &changed), ZTB_OK);
    assert_int_equal(store_rev_key("kid-9", now + 60, 60), ZTB_OK);
    struct store_token_state st;
    assert_int_equal(store_token_state("tok-1", "crm-bot", "payments", "kid-1", 1, 0, &st), ZTB_OK);
    assert_true(st.revoked);
    assert_int_equal(store_token_state("tok-2", "beta-bot", "payments", "kid-1", 1, 0, &st),
                     ZTB_OK);
    assert_true(st.gen > 1); /* the agent revocation */
    assert_int_equal(store_token_state("tok-3", "alpha-bot", "payments", "kid-9", 1, 0, &st),
                     ZTB_OK);
    assert_true(st.tainted);
    assert_int_equal(store_token_state("tok-4", "alpha-bot", "payments", "kid-1", 1, 60000, &st),
                     ZTB_OK);
    assert_true(st.consumed);
    assert_int_equal(store_token_state("tok-4", "alpha-bot", "payments", "kid-1", 1, 60000, &st),
                     ZTB_OK);
    assert_true(st.used);
    assert_int_equal(store_dpop_remember("jkt-1", "proof-1", 60000), ZTB_OK);
    assert_int_equal(store_dpop_remember("jkt-1", "proof-1", 60000), ZTB_ERR_DPOP_REPLAY);
    json_t *list = NULL;
    assert_int_equal(store_rev_list(60, 100, &list), ZTB_OK);
    assert_int_equal(json_array_size(list), 3); /* jti, agent, key (the kill was lifted) */
    json_decref(list);
    uint32_t wait_ms;
    struct store_rate r1 = {.rate = 10, .period_s = 60, .burst = 5};
    assert_int_equal(store_rate_take("src", "siem", &r1, &wait_ms), ZTB_OK);

    /* operators' actions, approvals, sources, signals, inventory */
    struct store_action act = {.entry = "e1",
                               .response = "quarantine",
                               .target_kind = "agent",
                               .target = "crm-bot",
                               .signals = "s1"};
    int created;
    assert_int_equal(store_action_create(&act, now, &created), ZTB_OK);
    assert_true(created);
    assert_int_equal(store_action_create(&act, now, &created), ZTB_OK);
    assert_false(created);
    struct store_action got;
    assert_int_equal(store_action_decide(act.id, 1, "op", now, &got), ZTB_OK);
    assert_int_equal(store_action_list(10, &list), ZTB_OK);
    json_decref(list);
    assert_int_equal(
        store_dual_count("audience", "crm", "entry", "src1", "sig1", 60, 1, &have, &fired, NULL, 0),
        ZTB_OK);
    assert_int_equal(store_approvers_add("finance", "alice", &changed), ZTB_OK);
    struct store_approval ap = {.agent = "alpha-bot",
                                .generation = 1,
                                .action = "payments:refund",
                                .audience = "payments",
                                .group = "finance",
                                .needed = 1,
                                .expires = now + 600};
    assert_int_equal(store_approval_create(&ap, now, &created), ZTB_OK);
    assert_true(created);
    struct store_approval ap2 = ap;
    assert_int_equal(store_approval_create(&ap2, now, &created), ZTB_OK);
    assert_false(created); /* the same request shares it */
    int expired;
    struct store_approval d;
    assert_int_equal(store_approval_decide(ap.id, 1, "alice", "", now, &d, &expired), ZTB_OK);
    assert_int_equal(store_approval_use(ap.id, "alpha-bot", "jti-a", now), ZTB_OK);
    assert_int_equal(store_approval_get(ap.id, now, &d, &expired), ZTB_OK);
    assert_string_equal(d.status, "issued");
    assert_int_equal(store_approval_list(10, now, &list), ZTB_OK);
    json_decref(list);
    assert_int_equal(store_approvers_list("finance", &list), ZTB_OK);
    json_decref(list);
    char secret[STORE_SOURCE_SECRET_LEN + 1], name[STORE_SOURCE_MAX + 1];
    assert_int_equal(store_source_add("siem", NULL, NULL, now, secret), ZTB_OK);
    assert_int_equal(store_source_by_secret(secret, name), ZTB_OK);
    assert_int_equal(store_source_add("gw", NULL, "crm-bot", now, secret), ZTB_OK);
    assert_int_equal(store_source_by_agent("crm-bot", name), ZTB_OK);
    assert_int_equal(store_source_remove("gw"), ZTB_OK);
    assert_int_equal(store_signal_seen("siem", "set-1", 60), ZTB_OK);
    assert_int_equal(store_signal_record("{\"id\":\"s1\"}"), ZTB_OK);
    assert_int_equal(store_signal_list(10, &list), ZTB_OK);
    json_decref(list);
    int64_t count;
    assert_int_equal(store_unknown_client_count("no_agent", "10.0.0.1", &count), ZTB_OK);
    assert_int_equal(store_unknown_clients(&list), ZTB_OK);
    json_decref(list);
    char(*names)[STORE_NAME_MAX + 1] = NULL;
    size_t n = 0;
    assert_int_equal(store_agent_list(&names, &n), ZTB_OK);
    assert_int_equal(n, 3);
    free(names);
    assert_int_equal(store_agent_delete("crm-bot"), ZTB_OK);
    assert_int_equal(store_agent_list(&names, &n), ZTB_OK);
    assert_int_equal(n, 2);
    free(names);

    /* readiness probes every master */
    char why[64];
    assert_int_equal(redis_ready(why, sizeof(why)), ZTB_OK);
    assert_int_equal(errors("crossslot"), 0);
    assert_int_equal(errors("other"), 0);
}

/* n INCRs of key through redis_pipeline; replies checked to be 1..n in
 * order (each command ran once, the replies in the commands' order). */
static void incr_pipeline(const char *key, int n, int first)
{
    int argc[64];
    const char *a[64][2];
    const char *const *argv[64];
    const size_t *lens[64];
    redisReply *replies[64];
    assert_true(n <= 64);
    for (int i = 0; i < n; i++) {
        a[i][0] = "INCR";
        a[i][1] = key;
        argv[i] = a[i];
        argc[i] = 2;
        lens[i] = NULL;
    }
    assert_int_equal(redis_pipeline((size_t)n, argc, argv, lens, replies), ZTB_OK);
    for (int i = 0; i < n; i++) {
        assert_int_equal(replies[i]->type, REDIS_REPLY_INTEGER);
        assert_int_equal(replies[i]->integer, first + i);
        freeReplyObject(replies[i]);
    }
}

/* The node (index) that serves key's slot: the one that does not redirect. */
static int owner(const char *key)
{
    for (int i = 0; i < 3; i++) {
        redisContext *c = zh_redis_connect(&nodes[i]);
        redisReply *r = redisCommand(c, "EXISTS %s", key);
        int mine = r != NULL && r->type == REDIS_REPLY_INTEGER;
        if (r != NULL)
            freeReplyObject(r);
        redisFree(c);
        if (mine)
            return i;
    }
    return -1;
}

/* redis_pipeline on a Cluster (the audit stream's XADDs): commands for one
 * slot go as one pipeline to its master; commands for several slots each
 * to its own; a slot that moved since the map was read answers MOVED to
 * each, and each is sent again to the new owner, once. */
static void test_pipeline_on_a_cluster(void **state)
{
    (void)state;
    incr_pipeline("{pipe}:n", 50, 1);
    /* several slots in one call */
    int argc[3] = {2, 2, 2};
    const char *a[3][2] = {
        {"INCR", "{crm-bot}:p"}, {"INCR", "{beta-bot}:p"}, {"INCR", "{alpha-bot}:p"}};
    const char *const *argv[3] = {a[0], a[1], a[2]};
    const size_t *lens[3] = {NULL, NULL, NULL};
    redisReply *replies[3];
    assert_int_equal(redis_pipeline(3, argc, argv, lens, replies), ZTB_OK);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(replies[i]->integer, 1);
        freeReplyObject(replies[i]);
    }
    int at[3] = {holder("{crm-bot}:p"), holder("{beta-bot}:p"), holder("{alpha-bot}:p")};
    assert_true(at[0] >= 0 && at[1] >= 0 && at[2] >= 0);
    assert_true(at[0] != at[1] && at[1] != at[2] && at[0] != at[2]);

    /* move the (empty) slot of {moved} to another master behind the
     * broker's back: its map is now stale for that slot */
    const char *key = "{moved}:n";
    int from = owner(key);
    assert_true(from >= 0);
    int to = (from + 1) % 3;
    redisContext *c = zh_redis_connect(&nodes[to]);
    redisReply *id = redisCommand(c, "CLUSTER MYID");
    assert_int_equal(id->type, REDIS_REPLY_STRING);
    redisReply *sl = redisCommand(c, "CLUSTER KEYSLOT %s", key);
    long long slot = sl->integer;
    freeReplyObject(sl);
    redisFree(c);
    for (int i = 0; i < 3; i++) {
        c = zh_redis_connect(&nodes[i]);
        redisReply *r = redisCommand(c, "CLUSTER SETSLOT %lld NODE %s", slot, id->str);
        assert_int_equal(r->type, REDIS_REPLY_STATUS);
        freeReplyObject(r);
        redisFree(c);
    }
    freeReplyObject(id);
    for (int t = 0; t < 200 && owner(key) != to; t++)
        usleep(10000);
    assert_int_equal(owner(key), to);
    long long moved = errors("moved");
    incr_pipeline(key, 10, 1);
    assert_true(errors("moved") > moved);
    assert_int_equal(holder(key), to);
    incr_pipeline(key, 10, 11); /* the map was read again: no more MOVED */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_script_on_one_slot),
        cmocka_unit_test(test_pipeline_on_a_cluster),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
