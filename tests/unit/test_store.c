/* test_store.c - ztb's Redis model against a real redis-server. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <pthread.h>

#include "broker/store/redis_client.h"
#include "broker/store/store.h"
#include "broker/store/store_detect.h"
#include "broker/store/store_rev.h"
#include "harness.h"

/* The full issue check for a caller bound to generation gen and epoch (-1:
 * any), no DPoP proof. */
static ztb_err issue_check(const char *agent, int64_t gen, int64_t epoch, const char *action,
                           const char *audience, const struct store_rate *ar,
                           const struct store_rate *xr, struct store_check *ck)
{
    struct store_expect e = {.generation = gen, .epoch = epoch};
    return store_issue_check(agent, &e, 1, action, audience, ar, xr, ck);
}

/* A new identity for agent (enrollment with a join token), document x5t. */
static void enroll_as(const char *agent, const char *x5t)
{
    assert_int_equal(
        store_agent_set_identity(agent, STORE_IDENTITY_ENROLL, "{}", "k", x5t, 9999, 0, NULL),
        ZTB_OK);
}

/* Register agent and enroll it (generation 1, epoch 1). */
static void add_enrolled(const char *agent)
{
    assert_int_equal(store_agent_add(agent, 1), ZTB_OK);
    enroll_as(agent, "x5t");
}

static struct zh_redis rd;

static int setup(void **state)
{
    (void)state;
    zh_redis_start(&rd);
    struct redis_target t;
    char err[256];
    assert_int_equal(redis_target_parse(rd.url, 0, &t, err, sizeof(err)), ZTB_OK);
    t.timeout_ms = ZH_REDIS_TIMEOUT_MS;
    redis_client_init(&t);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    redis_client_shutdown();
    zh_redis_stop(&rd, 1);
    return 0;
}

static void redis_do(const char *cmd)
{
    redisContext *c = zh_redis_connect(&rd);
    redisReply *r = redisCommand(c, cmd);
    assert_non_null(r);
    freeReplyObject(r);
    redisFree(c);
}

/* One of four threads that all run two scripts for the first time. */
static void *first_use(void *arg)
{
    const char *agent = arg;
    struct store_rate rate = {.rate = 100, .period_s = 60, .burst = 10};
    uint32_t wait = 1;
    int64_t count = 0;
    ztb_err *rv = calloc(2, sizeof(*rv));
    rv[0] = store_rate_take("agent", agent, &rate, &wait);
    rv[1] = store_detect_count(agent, "deny", 60, &count);
    return rv;
}

/*
 * Every script's SHA is computed on first use, and the broker's HTTP worker
 * threads, detector thread and admin thread all reach first use at once
 * after a start. The cache must be safe for that (the ThreadSanitizer build
 * reports a data race on a plain "compute if empty" cache): this test runs
 * first, so the scripts it uses (one in store.c, one in store_rev.c) are new.
 */
static void test_script_first_use_from_threads(void **state)
{
    (void)state;
    pthread_t th[4];
    const char *agents[4] = {"t-0", "t-1", "t-2", "t-3"};
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&th[i], NULL, first_use, (void *)agents[i]), 0);
    for (int i = 0; i < 4; i++) {
        void *res;
        assert_int_equal(pthread_join(th[i], &res), 0);
        ztb_err *rv = res;
        assert_int_equal(rv[0], ZTB_OK);
        assert_int_equal(rv[1], ZTB_OK);
        free(rv);
    }
}

static void test_names(void **state)
{
    (void)state;
    assert_true(store_agent_name_ok("billing-bot"));
    assert_true(store_agent_name_ok("a"));
    assert_true(store_agent_name_ok("crm.sync_2"));
    const char *bad[] = {
        "",      "-lead",
        "Upper", "has space",
        "a/b",   "a{b}",
        "a:b",   "é",
        "a\nb",  "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_false(store_agent_name_ok(bad[i]));
    assert_false(store_agent_name_ok(NULL));
}

static void test_agents(void **state)
{
    (void)state;
    assert_int_equal(store_agent_add("zeta", 1000), ZTB_OK);
    assert_int_equal(store_agent_add("alpha", 1001), ZTB_OK);
    assert_int_equal(store_agent_add("alpha", 1002), ZTB_ERR_EXISTS);
    assert_int_equal(store_agent_add("Bad Name", 1), ZTB_ERR_INVALID_ARG);
    struct store_agent a;
    assert_int_equal(store_agent_get("alpha", &a), ZTB_OK);
    assert_string_equal(a.status, "active");
    assert_int_equal(a.generation, 1);
    assert_int_equal(a.created, 1001);
    assert_false(a.quarantined);
    assert_int_equal(store_agent_get("nobody-here", &a), ZTB_ERR_NOT_FOUND);
    assert_int_equal(store_agent_set_status("alpha", "disabled"), ZTB_OK);
    assert_int_equal(store_agent_get("alpha", &a), ZTB_OK);
    assert_string_equal(a.status, "disabled");
    assert_int_equal(store_agent_set_status("alpha", "sleeping"), ZTB_ERR_INVALID_ARG);
    assert_int_equal(store_agent_set_status("ghost", "active"), ZTB_ERR_NOT_FOUND);
    char(*names)[STORE_NAME_MAX + 1];
    size_t n;
    assert_int_equal(store_agent_list(&names, &n), ZTB_OK);
    assert_int_equal(n, 2);
    assert_string_equal(names[0], "alpha");
    assert_string_equal(names[1], "zeta");
    free(names);
}

static void test_join_tokens(void **state)
{
    (void)state;
    char tok[STORE_JOIN_TOKEN_LEN + 1], agent[STORE_NAME_MAX + 1];
    int reused;
    assert_int_equal(store_agent_add("joiner", 1), ZTB_OK);
    assert_int_equal(store_join_create("ghost", 60, 1, tok), ZTB_ERR_NOT_FOUND);
    assert_int_equal(store_join_create("joiner", 0, 1, tok), ZTB_ERR_INVALID_ARG);
    assert_int_equal(store_join_create("joiner", 600, 1, tok), ZTB_OK);
    assert_int_equal(strlen(tok), STORE_JOIN_TOKEN_LEN);
    assert_int_equal(strncmp(tok, "ztbj_", 5), 0);

    /* only a hash is stored: the token itself appears nowhere in Redis */
    redisContext *c = zh_redis_connect(&rd);
    redisReply *r = redisCommand(c, "KEYS *%s*", tok + 5);
    assert_int_equal(r->elements, 0);
    freeReplyObject(r);
    r = redisCommand(c, "KEYS ztb:join:*");
    assert_int_equal(r->elements, 1);
    freeReplyObject(r);
    redisFree(c);

    assert_int_equal(store_join_consume(tok, agent, &reused), ZTB_OK);
    assert_string_equal(agent, "joiner");
    /* one use only; the second try is recognised as a reuse */
    assert_int_equal(store_join_consume(tok, agent, &reused), ZTB_ERR_JOIN_TOKEN);
    assert_int_equal(reused, 1);
    assert_string_equal(agent, "joiner");

    /* unknown, malformed, expired */
    char fake[STORE_JOIN_TOKEN_LEN + 1];
    memcpy(fake, tok, sizeof(fake));
    fake[10] = fake[10] == 'A' ? 'B' : 'A';
    assert_int_equal(store_join_consume(fake, agent, &reused), ZTB_ERR_JOIN_TOKEN);
    assert_int_equal(reused, 0);
    assert_int_equal(store_join_consume("ztbj_short", agent, &reused), ZTB_ERR_JOIN_TOKEN);
    assert_int_equal(store_join_consume(NULL, agent, &reused), ZTB_ERR_JOIN_TOKEN);
    assert_int_equal(store_join_create("joiner", 1, 1, tok), ZTB_OK);
    usleep(1300000);
    assert_int_equal(store_join_consume(tok, agent, &reused), ZTB_ERR_JOIN_TOKEN);
    assert_int_equal(reused, 0);
}

static void test_issue_check_states(void **state)
{
    (void)state;
    struct store_check ck;
    struct store_rate none = {0};
    assert_int_equal(issue_check("ghost", 1, -1, "x:y", "aud", &none, &none, &ck), ZTB_OK);
    assert_int_equal(ck.verdict, STORE_UNKNOWN_AGENT);

    /* registered, never enrolled: no live identity */
    assert_int_equal(store_agent_add("worker", 1), ZTB_OK);
    assert_int_equal(issue_check("worker", -1, -1, "crm:read", "crm", &none, &none, &ck), ZTB_OK);
    assert_int_equal(ck.verdict, STORE_STALE_IDENTITY);
    enroll_as("worker", "c1");
    assert_int_equal(issue_check("worker", 1, 1, "crm:read", "crm", &none, &none, &ck), ZTB_OK);
    assert_int_equal(ck.verdict, STORE_OK);
    assert_int_equal(ck.generation, 1);
    /* a revocation: the identity (and a caller of generation 1) is dead
     * before any charge, until the agent enrolls again */
    redis_do("HINCRBY ztb:{worker}:agent gen 1");
    assert_int_equal(issue_check("worker", 1, 1, "crm:read", "crm", &none, &none, &ck), ZTB_OK);
    assert_int_equal(ck.verdict, STORE_STALE_IDENTITY);
    assert_int_equal(issue_check("worker", 2, -1, "crm:read", "crm", &none, &none, &ck), ZTB_OK);
    assert_int_equal(ck.verdict, STORE_STALE_IDENTITY);
    enroll_as("worker", "c2");
    assert_int_equal(issue_check("worker", 2, 2, "crm:read", "crm", &none, &none, &ck), ZTB_OK);
    assert_int_equal(ck.verdict, STORE_OK);
    assert_int_equal(ck.generation, 2);
    /* a session of the identity before (epoch 1), a superseded document */
    assert_int_equal(issue_check("worker", 2, 1, "crm:read", "crm", &none, &none, &ck), ZTB_OK);
    assert_int_equal(ck.verdict, STORE_STALE_IDENTITY);
    struct store_expect e = {.generation = -1, .epoch = -1, .x5t = "c1"};
    assert_int_equal(store_issue_check("worker", &e, 1, "crm:read", "crm", &none, &none, &ck),
                     ZTB_OK);
    assert_int_equal(ck.verdict, STORE_STALE_IDENTITY);
    e.x5t = "c2";
    assert_int_equal(store_issue_check("worker", &e, 1, "crm:read", "crm", &none, &none, &ck),
                     ZTB_OK);
    assert_int_equal(ck.verdict, STORE_OK);

    /* an audience killed by another broker: this one's view of the kill
     * switch (store_audience_killed) is reloaded within 100 ms */
    redis_do("HSET ztb:{rev}:auds crm 1");
    usleep(150 * 1000);
    assert_int_equal(issue_check("worker", 2, -1, "crm:read", "crm", &none, &none, &ck), ZTB_OK);
    assert_int_equal(ck.verdict, STORE_AUDIENCE_KILLED);
    assert_int_equal(issue_check("worker", 2, -1, "crm:read", "crm2", &none, &none, &ck), ZTB_OK);
    assert_int_equal(ck.verdict, STORE_OK);

    redis_do("HSET ztb:{worker}:agent quarantined 1");
    assert_int_equal(issue_check("worker", 2, -1, "crm:read", "crm2", &none, &none, &ck), ZTB_OK);
    assert_int_equal(ck.verdict, STORE_QUARANTINED);
    /* the caller-only check stops before quarantine and charges */
    assert_int_equal(store_issue_check("worker", &e, 0, "crm:read", "crm2", NULL, NULL, &ck),
                     ZTB_OK);
    assert_int_equal(ck.verdict, STORE_OK);
    redis_do("HSET ztb:{worker}:agent quarantined 0 approval 1");
    assert_int_equal(issue_check("worker", 2, -1, "crm:read", "crm2", &none, &none, &ck), ZTB_OK);
    assert_int_equal(ck.verdict, STORE_OK);
    assert_true(ck.approval_required);

    assert_int_equal(store_agent_set_status("worker", "disabled"), ZTB_OK);
    assert_int_equal(issue_check("worker", 2, -1, "crm:read", "crm2", &none, &none, &ck), ZTB_OK);
    assert_int_equal(ck.verdict, STORE_DISABLED);
}

/* A stale caller is refused before anything is charged or remembered; a
 * DPoP proof id is remembered once, by either mode. */
static void test_issue_check_caller_first(void **state)
{
    (void)state;
    add_enrolled("careful");
    struct store_rate tight = {.rate = 1, .burst = 1, .period_s = 60};
    struct store_check ck;
    struct store_expect stale = {
        .generation = 7, .epoch = -1, .dpop_jti = "proof-1", .dpop_ttl_ms = 60000};
    for (int i = 0; i < 5; i++) {
        assert_int_equal(store_issue_check("careful", &stale, 1, "a:b", "c", &tight, &tight, &ck),
                         ZTB_OK);
        assert_int_equal(ck.verdict, STORE_STALE_IDENTITY);
    }
    redisContext *c = zh_redis_connect(&rd);
    redisReply *r = redisCommand(c, "EXISTS ztb:{careful}:seen ztb:{careful}:dpop:proof-1");
    assert_int_equal(r->integer, 0);
    freeReplyObject(r);
    redisFree(c);
    struct store_expect live = {
        .generation = 1, .epoch = 1, .dpop_jti = "proof-1", .dpop_ttl_ms = 60000};
    assert_int_equal(store_issue_check("careful", &live, 0, "a:b", "c", NULL, NULL, &ck), ZTB_OK);
    assert_int_equal(ck.verdict, STORE_OK);
    assert_int_equal(store_issue_check("careful", &live, 1, "a:b", "c", &tight, &tight, &ck),
                     ZTB_OK);
    assert_int_equal(ck.verdict, STORE_DPOP_REPLAY);
    live.dpop_jti = "proof-2";
    assert_int_equal(store_issue_check("careful", &live, 1, "a:b", "c", &tight, &tight, &ck),
                     ZTB_OK);
    assert_int_equal(ck.verdict, STORE_OK);
    live.dpop_jti = NULL;
    assert_int_equal(store_issue_check("careful", &live, 1, "a:b", "c", &tight, &tight, &ck),
                     ZTB_OK);
    assert_int_equal(ck.verdict, STORE_RATE_AGENT);
}

/* Redis's clock in µs (the scripts' `now`). */
static long long redis_now_us(redisContext *c)
{
    redisReply *t = redisCommand(c, "TIME");
    assert_non_null(t);
    long long us =
        strtoll(t->element[0]->str, NULL, 10) * 1000000LL + strtoll(t->element[1]->str, NULL, 10);
    freeReplyObject(t);
    return us;
}

static void test_rate_limits(void **state)
{
    (void)state;
    add_enrolled("limited");
    struct store_rate agent_rate = {.rate = 10, .burst = 5, .period_s = 60};
    struct store_rate action_rate = {.rate = 2, .burst = 2, .period_s = 60};
    struct store_check ck;
    /* the action bucket allows 2 */
    for (int i = 0; i < 2; i++) {
        assert_int_equal(
            issue_check("limited", 1, -1, "pay:refund", "pay", &agent_rate, &action_rate, &ck),
            ZTB_OK);
        assert_int_equal(ck.verdict, STORE_OK);
    }
    assert_int_equal(
        issue_check("limited", 1, -1, "pay:refund", "pay", &agent_rate, &action_rate, &ck), ZTB_OK);
    assert_int_equal(ck.verdict, STORE_RATE_ACTION);
    assert_true(ck.retry_after_ms > 20000 && ck.retry_after_ms <= 30000); /* 60s/2 */
    /* other actions still have room, and the refused request did not charge
     * the agent bucket: 3 more fit the agent's burst of 5 */
    const char *others[] = {"pay:read", "pay:list", "pay:view"};
    for (int i = 0; i < 3; i++) {
        assert_int_equal(
            issue_check("limited", 1, -1, others[i], "pay", &agent_rate, &action_rate, &ck),
            ZTB_OK);
        assert_int_equal(ck.verdict, STORE_OK);
    }
    assert_int_equal(
        issue_check("limited", 1, -1, "pay:other", "pay", &agent_rate, &action_rate, &ck), ZTB_OK);
    assert_int_equal(ck.verdict, STORE_RATE_AGENT);
    assert_true(ck.retry_after_ms > 0 && ck.retry_after_ms <= 6000); /* 60s/10 */
    /* the buckets are fields of the activity record, which expires */
    redisContext *c = zh_redis_connect(&rd);
    long long now_us = redis_now_us(c);
    redisReply *r = redisCommand(c, "HMGET ztb:{limited}:seen rl rl:pay:refund rl:pay:other");
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    long long tat = strtoll(r->element[0]->str, NULL, 10);
    assert_true(tat > now_us && tat <= now_us + 5 * 6000000LL); /* at most a burst ahead */
    assert_non_null(r->element[1]->str);
    assert_int_equal(r->element[2]->type, REDIS_REPLY_NIL); /* refused: not charged */
    freeReplyObject(r);
    r = redisCommand(c, "TTL ztb:{limited}:seen");
    assert_true(r->integer > 0 && r->integer <= 172800);
    freeReplyObject(r);
    redisFree(c);
}

/* The first token of an hour drops the bucket fields whose TAT has passed
 * (the same as no field), so the record does not grow with every action an
 * agent ever used; a bucket still charged stays. */
static void test_spent_buckets_dropped(void **state)
{
    (void)state;
    add_enrolled("pruned");
    struct store_rate rate = {.rate = 10, .burst = 5, .period_s = 60};
    struct store_check ck;
    assert_int_equal(issue_check("pruned", 1, -1, "pay:read", "pay", &rate, &rate, &ck), ZTB_OK);
    assert_int_equal(ck.verdict, STORE_OK);
    redisContext *c = zh_redis_connect(&rd);
    long long now_us = redis_now_us(c);
    redisReply *r = redisCommand(c, "HSET ztb:{pruned}:seen rl:old %lld rl:later %lld",
                                 now_us - 1000000LL, now_us + 600000000LL);
    freeReplyObject(r);
    /* the next token is the first of its hour */
    r = redisCommand(c, "HDEL ztb:{pruned}:seen %lld", now_us / 3600000000LL);
    assert_int_equal(r->integer, 1);
    freeReplyObject(r);
    assert_int_equal(issue_check("pruned", 1, -1, "pay:read", "pay", &rate, &rate, &ck), ZTB_OK);
    assert_int_equal(ck.verdict, STORE_OK);
    r = redisCommand(c, "HMGET ztb:{pruned}:seen rl:old rl:later rl rl:pay:read");
    assert_int_equal(r->element[0]->type, REDIS_REPLY_NIL);
    assert_non_null(r->element[1]->str);
    assert_non_null(r->element[2]->str);
    assert_non_null(r->element[3]->str);
    freeReplyObject(r);
    redisFree(c);
}

/* A theoretical arrival time far ahead of Redis's now: what a bucket holds
 * after Redis's clock stepped back an hour. The agent waits at most one
 * burst window (here 5 intervals of 6 s), not the hour. */
static void test_rate_limit_clock_step_back(void **state)
{
    (void)state;
    add_enrolled("stepped");
    struct store_rate agent_rate = {.rate = 10, .burst = 5, .period_s = 60};
    struct store_rate none = {0};
    redisContext *c = zh_redis_connect(&rd);
    long long now_us = redis_now_us(c);
    redisReply *r = redisCommand(c, "HSET ztb:{stepped}:seen rl %lld", now_us + 3600000000LL);
    assert_non_null(r);
    freeReplyObject(r);
    redisFree(c);
    struct store_check ck;
    assert_int_equal(issue_check("stepped", 1, -1, "pay:read", "pay", &agent_rate, &none, &ck),
                     ZTB_OK);
    if (ck.verdict == STORE_RATE_AGENT && ck.retry_after_ms > 6000)
        fail_msg("a clock step back of an hour costs %u ms, not one interval", ck.retry_after_ms);
    /* the clamped bucket is empty, not refilled: the next one is refused */
    assert_int_equal(issue_check("stepped", 1, -1, "pay:read", "pay", &agent_rate, &none, &ck),
                     ZTB_OK);
    assert_int_equal(ck.verdict, STORE_RATE_AGENT);
    assert_true(ck.retry_after_ms <= 6000);
}

static void test_assertion_replay(void **state)
{
    (void)state;
    assert_int_equal(store_assertion_seen("a1", "jti-1", 60000), ZTB_OK);
    assert_int_equal(store_assertion_seen("a1", "jti-1", 60000), ZTB_ERR_REPLAY);
    assert_int_equal(store_assertion_seen("a2", "jti-1", 60000), ZTB_OK); /* per agent */
    assert_int_equal(store_assertion_seen("a1", "", 60000), ZTB_ERR_INVALID_ARG);
    assert_int_equal(store_assertion_seen("a1", "jti-2", 100), ZTB_OK);
    usleep(300000);
    assert_int_equal(store_assertion_seen("a1", "jti-2", 100), ZTB_OK); /* expired */
}

static void test_identity_peek_and_dpop(void **state)
{
    (void)state;
    assert_int_equal(store_agent_add("ident", 1), ZTB_OK);
    struct store_agent_auth sa;
    int64_t epoch = -1;
    assert_int_equal(store_agent_auth_get("ghost", &sa), ZTB_ERR_NOT_FOUND);
    assert_int_equal(store_agent_auth_get("ident", &sa), ZTB_OK);
    assert_string_equal(sa.status, "active");
    assert_false(sa.enrolled); /* registered, never enrolled */
    /* renewal needs a live identity first */
    assert_int_equal(
        store_agent_set_identity("ident", STORE_IDENTITY_RENEW, "{}", "k1", "c1", 9, 0, &epoch),
        ZTB_ERR_AGENT_REVOKED);
    assert_int_equal(store_agent_set_identity("ident", STORE_IDENTITY_ENROLL, "{\"kty\":\"EC\"}",
                                              "k1", "c1", 4242, 0, &epoch),
                     ZTB_OK);
    assert_int_equal(epoch, 1);
    assert_int_equal(store_agent_auth_get("ident", &sa), ZTB_OK);
    assert_true(sa.enrolled);
    assert_string_equal(sa.jwk, "{\"kty\":\"EC\"}");
    assert_string_equal(sa.jkt, "k1");
    assert_string_equal(sa.x5t, "c1");
    assert_int_equal(sa.identity_exp, 4242);
    assert_int_equal(sa.epoch, 1);
    assert_int_equal(sa.generation, 1);
    /* renewal: same key only, in the current epoch; supersedes the document */
    assert_int_equal(
        store_agent_set_identity("ident", STORE_IDENTITY_RENEW, "{}", "k2", "c2", 5000, 1, &epoch),
        ZTB_ERR_KEY);
    assert_int_equal(
        store_agent_set_identity("ident", STORE_IDENTITY_RENEW, "{}", "k1", "c2", 5000, 0, &epoch),
        ZTB_ERR_AGENT_REVOKED);
    assert_int_equal(
        store_agent_set_identity("ident", STORE_IDENTITY_RENEW, "{}", "k1", "c2", 5000, 1, &epoch),
        ZTB_OK);
    assert_int_equal(store_agent_auth_get("ident", &sa), ZTB_OK);
    assert_string_equal(sa.x5t, "c2");
    assert_string_equal(sa.jwk, "{\"kty\":\"EC\"}"); /* the key stays */
    assert_int_equal(sa.epoch, 1);
    /* the serial is recorded for the current document only, and a new
     * document drops the old one's */
    assert_string_equal(sa.serial, "");
    assert_int_equal(store_agent_set_identity_serial("ident", "c1", "0A11"), ZTB_ERR_NOT_FOUND);
    assert_int_equal(store_agent_set_identity_serial("ident", "c2", "0B22"), ZTB_OK);
    assert_int_equal(store_agent_set_identity_serial("ghost", "c2", "0B22"), ZTB_ERR_NOT_FOUND);
    assert_int_equal(store_agent_set_identity_serial("ident", "c2", ""), ZTB_ERR_INVALID_ARG);
    assert_int_equal(store_agent_auth_get("ident", &sa), ZTB_OK);
    assert_string_equal(sa.serial, "0B22");
    assert_int_equal(
        store_agent_set_identity("ident", STORE_IDENTITY_RENEW, "{}", "k1", "c2b", 5000, 1, &epoch),
        ZTB_OK);
    assert_int_equal(store_agent_auth_get("ident", &sa), ZTB_OK);
    assert_string_equal(sa.serial, "");
    /* a revocation (generation bump) kills the identity until enrollment */
    redis_do("HINCRBY ztb:{ident}:agent gen 1");
    assert_int_equal(store_agent_auth_get("ident", &sa), ZTB_OK);
    assert_false(sa.enrolled);
    assert_int_equal(
        store_agent_set_identity("ident", STORE_IDENTITY_RENEW, "{}", "k1", "c3", 5000, 1, &epoch),
        ZTB_ERR_AGENT_REVOKED);
    assert_int_equal(
        store_agent_set_identity("ident", STORE_IDENTITY_ENROLL, "{}", "k3", "c4", 6000, 0, &epoch),
        ZTB_OK);
    assert_int_equal(epoch, 2);
    assert_int_equal(store_agent_auth_get("ident", &sa), ZTB_OK);
    assert_true(sa.enrolled);
    assert_int_equal(sa.generation, 2);
    /* a disabled agent gets no identity; an unknown one neither */
    assert_int_equal(store_agent_set_status("ident", "disabled"), ZTB_OK);
    assert_int_equal(
        store_agent_set_identity("ident", STORE_IDENTITY_ENROLL, "{}", "k3", "c5", 1, 0, &epoch),
        ZTB_ERR_STATE);
    assert_int_equal(store_agent_set_status("ident", "active"), ZTB_OK);
    assert_int_equal(
        store_agent_set_identity("ghost", STORE_IDENTITY_ENROLL, "{}", "k", "c", 1, 0, &epoch),
        ZTB_ERR_NOT_FOUND);

    char tok[STORE_JOIN_TOKEN_LEN + 1], agent[STORE_NAME_MAX + 1];
    int reused;
    assert_int_equal(store_join_create("ident", 60, 1, tok), ZTB_OK);
    assert_int_equal(store_join_peek(tok, agent, &reused), ZTB_OK);
    assert_string_equal(agent, "ident");
    assert_int_equal(store_join_peek(tok, agent, &reused), ZTB_OK); /* peeking does not use it */
    assert_int_equal(store_join_consume(tok, agent, &reused), ZTB_OK);
    assert_int_equal(store_join_peek(tok, agent, &reused), ZTB_ERR_JOIN_TOKEN);
    assert_int_equal(reused, 1);
    assert_int_equal(store_join_peek("nope", agent, &reused), ZTB_ERR_JOIN_TOKEN);

    assert_int_equal(store_assertion_seen("ident", "p1", 60000), ZTB_OK);
}

/* Corrupt or missing state never yields a token: it is UNAVAILABLE. */
static void test_fail_closed(void **state)
{
    (void)state;
    redis_do("SET ztb:{broken}:agent not-a-hash");
    struct store_check ck;
    struct store_rate none = {0};
    assert_int_equal(issue_check("broken", 1, -1, "a:b", "c", &none, &none, &ck),
                     ZTB_ERR_UNAVAILABLE);
    struct store_agent a;
    assert_int_equal(store_agent_get("broken", &a), ZTB_ERR_UNAVAILABLE);

    zh_redis_kill(&rd);
    assert_int_equal(issue_check("worker", 1, -1, "a:b", "c", &none, &none, &ck),
                     ZTB_ERR_UNAVAILABLE);
    assert_int_equal(store_agent_add("new", 1), ZTB_ERR_UNAVAILABLE);
    char tok[STORE_JOIN_TOKEN_LEN + 1] = "ztbj_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    char agent[STORE_NAME_MAX + 1];
    int reused;
    assert_int_equal(store_join_consume(tok, agent, &reused), ZTB_ERR_UNAVAILABLE);
    zh_redis_restart(&rd);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_script_first_use_from_threads), /* first: see there */
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_agents),
        cmocka_unit_test(test_join_tokens),
        cmocka_unit_test(test_issue_check_states),
        cmocka_unit_test(test_issue_check_caller_first),
        cmocka_unit_test(test_rate_limits),
        cmocka_unit_test(test_spent_buckets_dropped),
        cmocka_unit_test(test_rate_limit_clock_step_back),
        cmocka_unit_test(test_assertion_replay),
        cmocka_unit_test(test_identity_peek_and_dpop),
        cmocka_unit_test(test_fail_closed),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
