/*
 * test_store_lease.c - rate leases: the table's rules on their own, then
 * the token path with leases against a real redis-server: a lease never
 * gets an agent past a revocation, a quarantine, a re-enrollment or a
 * replayed DPoP proof, never more tokens than its buckets allow, and what
 * it took is counted and given back at settlement.
 */
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "broker/store/redis_client.h"
#include "broker/store/store.h"
#include "broker/store/store_baseline.h"
#include "broker/store/store_lease.h"
#include "store_fixture.h"

static int teardown(void **state)
{
    (void)store_lease_settle_all(1);
    return store_teardown(state);
}

__attribute__((format(printf, 1, 2))) static long long redis_int(const char *fmt, ...)
{
    char cmd[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    redisContext *c = zh_redis_connect(&rd);
    redisReply *r = redisCommand(c, cmd);
    assert_non_null(r);
    long long v = r->type == REDIS_REPLY_INTEGER  ? r->integer
                  : r->type == REDIS_REPLY_STRING ? strtoll(r->str, NULL, 10)
                                                  : -1;
    freeReplyObject(r);
    redisFree(c);
    return v;
}

static void redis_do(const char *cmd)
{
    (void)redis_int("%s", cmd);
}

/* Redis's clock in µs (the scripts' `now`). */
static long long redis_now_us(void)
{
    redisContext *c = zh_redis_connect(&rd);
    redisReply *t = redisCommand(c, "TIME");
    assert_non_null(t);
    long long us =
        strtoll(t->element[0]->str, NULL, 10) * 1000000LL + strtoll(t->element[1]->str, NULL, 10);
    freeReplyObject(t);
    redisFree(c);
    return us;
}

static void add_enrolled(const char *agent, const char *x5t)
{
    assert_int_equal(store_agent_add(agent, 1), ZTB_OK);
    assert_int_equal(
        store_agent_set_identity(agent, STORE_IDENTITY_ENROLL, "{}", "k", x5t, 9999, 0, NULL),
        ZTB_OK);
}

/* One charged check of agent's action "svc:do" on audience "svc". */
static enum store_verdict check(const char *agent, const struct store_expect *e,
                                const struct store_rate *r, struct store_check *ck)
{
    assert_int_equal(store_issue_check(agent, e, 1, "svc:do", "svc", r, r, ck), ZTB_OK);
    return ck->verdict;
}

/* The tokens in agent's activity record for this hour and the one before
 * (a test may straddle the hour). */
static long long hour_count(const char *agent)
{
    long long h = (long long)(time(NULL) / 3600), n = 0;
    for (long long i = h - 1; i <= h; i++) {
        long long v = redis_int("HGET ztb:{%s}:seen %lld", agent, i);
        n += v > 0 ? v : 0;
    }
    return n;
}

/* --- the table ------------------------------------------------------------*/

static void test_cap(void **state)
{
    (void)state;
    struct store_lease_id id = {.agent = "a", .action = "x", .audience = "y", .prefix = ""};
    assert_int_equal(store_lease_cap(&id), STORE_LEASE_MAX_UNITS); /* no limit */
    id.agent_interval_us = 1000;
    id.agent_burst = 10;
    assert_int_equal(store_lease_cap(&id), 1); /* a small burst: one at a time */
    id.agent_burst = 80;
    assert_int_equal(store_lease_cap(&id), 10);
    id.action_interval_us = 1000;
    id.action_burst = 16;
    assert_int_equal(store_lease_cap(&id), 2); /* the smaller of the two */
    id.agent_burst = id.action_burst = 100000;
    assert_int_equal(store_lease_cap(&id), STORE_LEASE_MAX_UNITS);
}

static void test_table_rules(void **state)
{
    (void)state;
    struct store_lease_id id = {.agent = "t1", .action = "x", .audience = "y", .prefix = "p/"};
    unsigned want;
    uint64_t now = 1000000;
    assert_false(store_lease_ready(&id, now, &want));
    assert_int_equal(want, 1);
    /* fewer than 4 tokens of a kind in a window: no lease, one at a time */
    for (int i = 0; i < 3; i++) {
        store_lease_grant(&id, 1, "", 0, 0, now + (uint64_t)i);
        assert_false(store_lease_ready(&id, now + 3, &want));
        assert_int_equal(want, 1);
    }
    store_lease_grant(&id, 1, "", 0, 0, now + 3);
    assert_false(store_lease_ready(&id, now + 4, &want));
    assert_int_equal(want, 4); /* the window's demand */
    store_lease_grant(&id, 5, "", 5000, 7000, now + 5);
    for (int i = 0; i < 4; i++)
        assert_true(store_lease_take(&id, "", now + 6, &want));
    assert_false(store_lease_take(&id, "", now + 7, &want));
    assert_int_equal(want, 9);
    /* another audience, prefix or limit is another lease */
    struct store_lease_id other = id;
    other.prefix = "q/";
    assert_false(store_lease_ready(&other, now, &want));
    store_lease_grant(&id, 4, "", 4000, 8000, now + 8);
    /* granted under another baseline window: not taken, its units go back */
    assert_false(store_lease_take(&id, "1790000000", now + 8, &want));
    store_lease_grant(&id, 3, "", 6000, 6000, now + 9);
    assert_true(store_lease_take(&id, "", now + 10, &want));
    /* ended by time: the unused unit goes back; the next grant is sized by
     * the window that ended (12 tokens) */
    assert_false(store_lease_take(&id, "", now + 9 + STORE_LEASE_LIFE_MS, &want));
    assert_int_equal(want, 12);
    struct store_lease_due due[8];
    size_t n = store_lease_collect(due, 8, now + 9 + STORE_LEASE_LIFE_MS, 0, NULL);
    assert_int_equal(n, 1);
    assert_string_equal(due[0].agent, "t1");
    assert_string_equal(due[0].action, "x");
    assert_int_equal(due[0].used, 5);   /* 4 + 1 taken */
    assert_int_equal(due[0].refund, 4); /* 3 of the second grant, 1 of the third */
    /* the refund is bounded by the smallest TAT its grants wrote */
    assert_int_equal(due[0].agent_tat, 4000);
    assert_int_equal(due[0].action_tat, 6000);
    char sid[sizeof(due[0].id)];
    memcpy(sid, due[0].id, sizeof(sid));
    assert_true(strlen(sid) > 16);
    /* a settlement Redis did not take comes back first, with its id (so it
     * is applied once even if Redis ran it and only the answer was lost) */
    store_lease_restore(&due[0]);
    store_lease_due_free(&due[0]);
    assert_int_equal(store_lease_collect(due, 8, now, 0, "someone-else"), 0);
    n = store_lease_collect(due, 8, now + 9 + STORE_LEASE_LIFE_MS, 1, "t1");
    assert_int_equal(n, 1);
    assert_int_equal(due[0].used, 5);
    assert_int_equal(due[0].refund, 4);
    assert_string_equal(due[0].id, sid);
    store_lease_due_free(&due[0]);
    assert_int_equal(store_lease_count(), 0);
}

/* --- the token path with leases -------------------------------------------*/

/* A generous limit: leases of up to STORE_LEASE_MAX_UNITS. */
static const struct store_rate generous = {.rate = 100000, .burst = 100000, .period_s = 1};

/* Issue until this broker holds a lease with units for agent (leases
 * start once 4 tokens of a kind come within STORE_LEASE_LIFE_MS). */
static void hold_lease(const char *agent, const struct store_expect *e)
{
    struct store_check ck;
    struct store_lease_id id = {.agent = agent,
                                .action = "svc:do",
                                .audience = "svc",
                                .prefix = "",
                                .agent_interval_us = 10,
                                .action_interval_us = 10,
                                .agent_burst = 100000,
                                .action_burst = 100000};
    unsigned want;
    for (int i = 0; i < 400 && !store_lease_ready(&id, store_lease_now_ms(), &want); i++) {
        assert_int_equal(check(agent, e, &generous, &ck), STORE_OK);
        usleep(1000);
    }
    assert_true(store_lease_ready(&id, store_lease_now_ms(), &want));
}

/*
 * The attack a lease must not open: an agent that holds leased units is
 * revoked, quarantined, re-enrolled or put under approval, and asks again
 * at once. Every one of these is in force for the very next request.
 */
static void test_lease_never_outlives_agent_state(void **state)
{
    (void)state;
    add_enrolled("leased", "doc1");
    struct store_check ck;
    struct store_expect e = {.generation = 1, .epoch = 1, .x5t = "doc1"};

    hold_lease("leased", &e);
    redis_do("HSET ztb:{leased}:agent quarantined 1");
    assert_int_equal(check("leased", &e, &generous, &ck), STORE_QUARANTINED);
    redis_do("HSET ztb:{leased}:agent quarantined 0");

    hold_lease("leased", &e);
    redis_do("HSET ztb:{leased}:agent approval 1");
    assert_int_equal(check("leased", &e, &generous, &ck), STORE_OK);
    assert_true(ck.approval_required);
    redis_do("HSET ztb:{leased}:agent approval 0");

    /* renewed: the old identity document is dead */
    hold_lease("leased", &e);
    redis_do("HSET ztb:{leased}:agent x5t doc2");
    assert_int_equal(check("leased", &e, &generous, &ck), STORE_STALE_IDENTITY);
    redis_do("HSET ztb:{leased}:agent x5t doc1");

    /* revoked (generation bumped): every credential of generation 1 */
    hold_lease("leased", &e);
    redis_do("HINCRBY ztb:{leased}:agent gen 1");
    assert_int_equal(check("leased", &e, &generous, &ck), STORE_STALE_IDENTITY);
    struct store_expect any = {.generation = -1, .epoch = -1};
    assert_int_equal(check("leased", &any, &generous, &ck), STORE_STALE_IDENTITY);

    assert_int_equal(
        store_agent_set_identity("leased", STORE_IDENTITY_ENROLL, "{}", "k", "doc3", 9999, 0, NULL),
        ZTB_OK);
    struct store_expect e2 = {.generation = 2, .epoch = -1, .x5t = "doc3"};
    hold_lease("leased", &e2);
    assert_int_equal(store_agent_set_status("leased", "disabled"), ZTB_OK);
    assert_int_equal(check("leased", &e2, &generous, &ck), STORE_DISABLED);
    assert_int_equal(store_agent_set_status("leased", "active"), ZTB_OK);

    hold_lease("leased", &e2);
    redis_do("DEL ztb:{leased}:agent");
    assert_int_equal(check("leased", &e2, &generous, &ck), STORE_UNKNOWN_AGENT);
}

/* A DPoP proof is remembered once with a lease as without, and a stale
 * caller's proof is not used up. */
static void test_lease_dpop(void **state)
{
    (void)state;
    add_enrolled("proofs", "d1");
    struct store_check ck;
    struct store_expect e = {.generation = 1, .epoch = -1};
    hold_lease("proofs", &e);
    struct store_expect stale = {
        .generation = 9, .epoch = -1, .dpop_jti = "j1", .dpop_ttl_ms = 60000};
    assert_int_equal(check("proofs", &stale, &generous, &ck), STORE_STALE_IDENTITY);
    assert_int_equal(redis_int("EXISTS ztb:{proofs}:dpop:j1"), 0);
    struct store_expect live = {
        .generation = 1, .epoch = -1, .dpop_jti = "j1", .dpop_ttl_ms = 60000};
    hold_lease("proofs", &e);
    assert_int_equal(check("proofs", &live, &generous, &ck), STORE_OK);
    assert_int_equal(check("proofs", &live, &generous, &ck), STORE_DPOP_REPLAY);
    long long pttl = redis_int("PTTL ztb:{proofs}:dpop:j1");
    assert_true(pttl > 55000 && pttl <= 60000);
}

/*
 * An agent with a burst of 32 (leases of up to 4 units) and a refill of
 * one an hour gets exactly 32 tokens however they are leased; once the
 * leases are settled, the bucket and the activity record show exactly
 * the tokens issued: the unused units are back.
 */
static void test_lease_rate_exact(void **state)
{
    (void)state;
    add_enrolled("metered", "m1");
    struct store_rate hourly = {.rate = 32, .burst = 32, .period_s = 32 * 3600};
    struct store_check ck;
    struct store_expect e = {.generation = 1, .epoch = -1};
    int ok = 0, limited = 0;
    for (int i = 0; i < 50; i++) {
        enum store_verdict v = check("metered", &e, &hourly, &ck);
        ok += v == STORE_OK;
        limited += v == STORE_RATE_AGENT;
    }
    assert_int_equal(ok, 32);
    assert_int_equal(limited, 18);

    /* 10 tokens, a settlement: the 10 are counted, the leased rest is back */
    (void)store_lease_settle_all(1);
    add_enrolled("partial", "p1");
    struct store_rate wide = {.rate = 800, .burst = 800, .period_s = 800 * 3600}; /* 1/hour */
    uint64_t taken0 = store_lease_units_taken();
    long long t0 = redis_now_us();
    for (int i = 0; i < 10; i++)
        assert_int_equal(check("partial", &e, &wide, &ck), STORE_OK);
    assert_true(store_lease_units_taken() > taken0); /* some came from a lease */
    long long tat = redis_int("HGET ztb:{partial}:seen rl");
    long long interval = 3600LL * 1000000LL;
    assert_true(tat > t0 + 10 * interval); /* more charged than used ... */
    assert_true(store_lease_settle_all(1) >= 1);
    tat = redis_int("HGET ztb:{partial}:seen rl");
    long long now = redis_now_us();
    /* ... until the settlement gives the rest back */
    assert_true(tat >= t0 + 10 * interval && tat <= now + 10 * interval);
    assert_int_equal(hour_count("partial"), 10);
    assert_true(redis_int("HGET ztb:{partial}:seen last") >= time(NULL) - 5);
}

/* What leased tokens did reaches the activity record at settlement, from
 * several threads at once. */
struct burst {
    const char *agent;
    int ok;
};

static void *issue_many(void *arg)
{
    struct burst *b = arg;
    struct store_expect e = {.generation = 1, .epoch = -1};
    struct store_check ck;
    for (int i = 0; i < 300; i++)
        if (store_issue_check(b->agent, &e, 1, "svc:do", "svc", &generous, &generous, &ck) ==
                ZTB_OK &&
            ck.verdict == STORE_OK)
            b->ok++;
    return NULL;
}

static void test_lease_counts_from_threads(void **state)
{
    (void)state;
    add_enrolled("busy", "b1");
    assert_int_equal(store_lease_start(NULL), ZTB_OK);
    struct burst b[4] = {{"busy", 0}, {"busy", 0}, {"busy", 0}, {"busy", 0}};
    pthread_t th[4];
    uint64_t taken0 = store_lease_units_taken();
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&th[i], NULL, issue_many, &b[i]), 0);
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    assert_int_equal(b[0].ok + b[1].ok + b[2].ok + b[3].ok, 1200);
    assert_true(store_lease_units_taken() - taken0 > 600); /* most without a script */
    store_lease_stop();                                    /* settles everything */
    assert_int_equal(hour_count("busy"), 1200);
    assert_int_equal(store_lease_count(), 0);
}

/*
 * A Redis that takes no writes (below min-replicas-to-write; a master
 * demoted to a replica by a failover) could not have charged a token: it
 * issues none from a lease either, though it still answers reads.
 */
static void test_lease_refused_by_unwritable_redis(void **state)
{
    (void)state;
    add_enrolled("guarded", "g1");
    struct store_expect e = {.generation = 1, .epoch = -1};
    struct store_check ck;
    hold_lease("guarded", &e);
    redis_do("CONFIG SET min-replicas-to-write 1");
    assert_int_equal(
        store_issue_check("guarded", &e, 1, "svc:do", "svc", &generous, &generous, &ck),
        ZTB_ERR_UNAVAILABLE);
    redis_do("CONFIG SET min-replicas-to-write 0");
    int ok = 0;
    for (int i = 0; i < 40 && !ok; i++) {
        ok = store_issue_check("guarded", &e, 1, "svc:do", "svc", &generous, &generous, &ck) ==
                 ZTB_OK &&
             ck.verdict == STORE_OK;
        if (!ok)
            usleep(50 * 1000);
    }
    assert_true(ok);
}

/* An operator reading an agent's activity sees this broker's leased
 * tokens at once. */
static void test_activity_read_settles(void **state)
{
    (void)state;
    add_enrolled("watched", "w1");
    struct store_expect e = {.generation = 1, .epoch = -1};
    struct store_check ck;
    for (int i = 0; i < 30; i++)
        assert_int_equal(check("watched", &e, &generous, &ck), STORE_OK);
    struct store_activity a;
    assert_int_equal(store_activity_read("watched", (int64_t)time(NULL), &a), ZTB_OK);
    assert_int_equal(a.tokens_day, 30);
}

/*
 * The attack on refunds: a replica holds 504 unused units of an agent's
 * burst of 512 (rate 1000/s) for 500 ms, while the agent takes the 500
 * units that refilled meanwhile elsewhere. Giving back all 504 at
 * settlement would hand it ~500 more at once: twice its burst. Only what
 * the grant still held ahead of now (12 ms here) may come back.
 */
static void test_refund_bounded_by_elapsed_time(void **state)
{
    (void)state;
    add_enrolled("hoarder", "h1");
    long long now = redis_now_us();
    long long granted_tat = now + 12000;  /* granted 500 ms ago: 512 ms ahead then */
    long long tat = granted_tat + 500000; /* and 500 more taken since */
    redis_int("HSET ztb:{hoarder}:seen rl %lld rl:svc:do %lld", tat, tat);
    struct store_lease_due d = {.agent = "hoarder",
                                .action = "svc:do",
                                .agent_interval_us = 1000,
                                .action_interval_us = 1000,
                                .refund = 504,
                                .agent_tat = granted_tat,
                                .action_tat = granted_tat};
    snprintf(d.id, sizeof(d.id), "test-refund-1");
    assert_int_equal(store_lease_settle(&d), ZTB_OK);
    long long after = redis_int("HGET ztb:{hoarder}:seen rl");
    long long done = redis_now_us();
    assert_true(after >= tat - 12000);           /* at most 12 units back */
    assert_true(after >= done + 500000 - 12000); /* the burst still spent */
    assert_int_equal(redis_int("HGET ztb:{hoarder}:seen rl:svc:do"), after);
    /* a grant whose TAT is behind now owes nothing back */
    d.agent_tat = d.action_tat = now - 1000;
    snprintf(d.id, sizeof(d.id), "test-refund-2");
    assert_int_equal(store_lease_settle(&d), ZTB_OK);
    assert_int_equal(redis_int("HGET ztb:{hoarder}:seen rl"), after);
}

/* A settlement sent again (its answer was lost) counts once. */
static void test_settlement_applied_once(void **state)
{
    (void)state;
    add_enrolled("twice", "t1");
    struct store_lease_due d = {.agent = "twice", .action = "svc:do", .used = 7};
    snprintf(d.id, sizeof(d.id), "test-once-1");
    assert_int_equal(store_lease_settle(&d), ZTB_OK);
    assert_int_equal(store_lease_settle(&d), ZTB_OK);
    assert_int_equal(hour_count("twice"), 7);
    snprintf(d.id, sizeof(d.id), "test-once-2");
    assert_int_equal(store_lease_settle(&d), ZTB_OK);
    assert_int_equal(hour_count("twice"), 14);
}

/* An agent whose generation is not a number: the issue script's reply is
 * cut short and the request refused; a lease refuses it too. */
static void test_lease_generation_missing(void **state)
{
    (void)state;
    add_enrolled("genless", "g1");
    struct store_expect any = {.generation = -1, .epoch = -1};
    hold_lease("genless", &any);
    redis_do("HDEL ztb:{genless}:agent gen id_gen");
    struct store_check ck;
    assert_int_equal(
        store_issue_check("genless", &any, 1, "svc:do", "svc", &generous, &generous, &ck),
        ZTB_ERR_UNAVAILABLE);
}

/* No Redis: no token, leased units or not (the agent is read every time). */
static void test_lease_fail_closed(void **state)
{
    (void)state;
    add_enrolled("cut", "c1");
    struct store_expect e = {.generation = 1, .epoch = -1};
    hold_lease("cut", &e);
    zh_redis_kill(&rd);
    struct store_check ck;
    assert_int_equal(store_issue_check("cut", &e, 1, "svc:do", "svc", &generous, &generous, &ck),
                     ZTB_ERR_UNAVAILABLE);
    /* what could not be settled waits for Redis, and is counted */
    uint64_t failed = store_lease_settle_failures();
    assert_int_equal(store_lease_settle_all(1), 0);
    assert_true(store_lease_settle_failures() > failed);
    zh_redis_restart(&rd);
    size_t n = 0;
    for (int i = 0; i < 40 && n == 0; i++) {
        n = store_lease_settle_all(1);
        if (n == 0)
            usleep(50 * 1000);
    }
    assert_true(n >= 1);
}

/* Leases turned off (a Redis before 7.0): every token runs the script,
 * nothing is leased. Last: it cannot be undone. */
static void test_leases_off(void **state)
{
    (void)state;
    add_enrolled("plain", "p1");
    store_leases_off("test");
    uint64_t taken = store_lease_units_taken();
    struct store_expect e = {.generation = 1, .epoch = -1};
    struct store_check ck;
    for (int i = 0; i < 40; i++) {
        assert_int_equal(check("plain", &e, &generous, &ck), STORE_OK);
        usleep(1000);
    }
    assert_int_equal(store_lease_units_taken(), taken);
    assert_int_equal(hour_count("plain"), 40); /* each counted by its script */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cap),
        cmocka_unit_test(test_table_rules),
        cmocka_unit_test(test_lease_never_outlives_agent_state),
        cmocka_unit_test(test_lease_dpop),
        cmocka_unit_test(test_lease_rate_exact),
        cmocka_unit_test(test_lease_counts_from_threads),
        cmocka_unit_test(test_lease_refused_by_unwritable_redis),
        cmocka_unit_test(test_activity_read_settles),
        cmocka_unit_test(test_refund_bounded_by_elapsed_time),
        cmocka_unit_test(test_settlement_applied_once),
        cmocka_unit_test(test_lease_generation_missing),
        cmocka_unit_test(test_lease_fail_closed),
        cmocka_unit_test(test_leases_off), /* last: for good */
    };
    return cmocka_run_group_tests(tests, store_setup, teardown);
}
