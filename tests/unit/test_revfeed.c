/*
 * test_revfeed.c - the revocation feed against a real Redis: initial load,
 * live events, a lost feed (grace, stale, reconnect, resync), a sequence
 * that goes back while the feed is quiet, startup failure, bad events, and
 * the memory a large state takes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "harness.h"
#include "sdk/src/clock.h"
#include "sdk/src/revfeed.h"

static struct zh_redis rd;

static void rcmd(const char *fmt, const char *a, const char *b)
{
    redisContext *c = zh_redis_connect(&rd);
    redisReply *r = redisCommand(c, fmt, a, b);
    assert_non_null(r);
    freeReplyObject(r);
    redisFree(c);
}

/* Add an event to the sorted set (score = exp) like the broker does. */
static void zadd(const char *ev, const char *score)
{
    rcmd("ZADD ztb:{rev}:events %s %s", score, ev);
}

static void publish(const char *ev)
{
    rcmd("PUBLISH %s %s", "ztb:revocations", ev);
}

static struct revfeed *start_capped(unsigned grace_ms, size_t max_entries)
{
    struct revfeed_opts o = {
        .skew_s = 30, .grace_ms = grace_ms, .startup_timeout_ms = 5000, .max_entries = max_entries};
    char err[200];
    assert_int_equal(redis_target_parse(rd.url, 500, &o.target, err, sizeof(err)), ZTB_OK);
    struct revfeed *f = NULL;
    ztb_err rv = revfeed_start(&o, &f, err, sizeof(err));
    if (rv != ZTB_OK)
        fail_msg("revfeed_start: %s %s", ztb_err_name(rv), err);
    return f;
}

static struct revfeed *start(unsigned grace_ms)
{
    return start_capped(grace_ms, 0);
}

static ztb_err check_jti(struct revfeed *f, const char *jti)
{
    uint8_t id[IDSET_ID_LEN];
    assert_int_equal(idset_key(jti, strlen(jti), id), ZTB_OK);
    return revfeed_check(f, "kid", "payments", "bot", 5, id, clock_now_s());
}

/* Poll until check_jti gives want (or 5 s pass). */
static ztb_err wait_for(struct revfeed *f, const char *jti, ztb_err want)
{
    ztb_err rv = ZTB_OK;
    for (int i = 0; i < 500; i++) {
        if ((rv = check_jti(f, jti)) == want)
            return rv;
        clock_sleep_ms(10);
    }
    return rv;
}

static char future[32];

static int setup(void **state)
{
    (void)state;
    zh_redis_start(&rd);
    snprintf(future, sizeof(future), "%lld", (long long)clock_now_s() + 600);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    zh_redis_stop(&rd, 1);
    return 0;
}

static void test_load_then_live_events(void **state)
{
    (void)state;
    char ev[256];
    snprintf(ev, sizeof(ev), "{\"type\":\"jti\",\"id\":\"loaded-1\",\"exp\":%s}", future);
    zadd(ev, future);
    zadd("{\"type\":\"jti\",\"id\":\"expired-1\",\"exp\":1000}", "1000");
    zadd("{\"type\":\"audience\",\"id\":\"crm\",\"exp\":0}", "+inf");
    struct revfeed *f = start(0);
    assert_int_equal(check_jti(f, "loaded-1"), ZTB_ERR_REVOKED);
    assert_int_equal(check_jti(f, "expired-1"), ZTB_OK);
    uint8_t id[IDSET_ID_LEN] = {0};
    assert_int_equal(revfeed_check(f, "kid", "crm", "bot", 5, id, clock_now_s()),
                     ZTB_ERR_AUDIENCE_KILLED);
    assert_int_equal(check_jti(f, "live-1"), ZTB_OK);
    snprintf(ev, sizeof(ev), "{\"type\":\"jti\",\"id\":\"live-1\",\"exp\":%s}", future);
    publish(ev);
    assert_int_equal(wait_for(f, "live-1", ZTB_ERR_REVOKED), ZTB_ERR_REVOKED);
    snprintf(ev, sizeof(ev), "{\"type\":\"agent\",\"id\":\"bot\",\"gen\":6,\"exp\":%s}", future);
    publish(ev);
    for (int i = 0; i < 500 && check_jti(f, "other") == ZTB_OK; i++)
        clock_sleep_ms(10);
    assert_int_equal(check_jti(f, "other"), ZTB_ERR_AGENT_REVOKED);
    /* garbage and unknown kinds are ignored and counted */
    publish("not json");
    publish("{\"type\":\"future-kind\",\"id\":\"x\",\"exp\":5}");
    struct revfeed_stats s;
    for (int i = 0; i < 500; i++) {
        revfeed_stats(f, &s);
        if (s.bad_events == 1)
            break;
        clock_sleep_ms(10);
    }
    assert_int_equal(s.bad_events, 1);
    assert_true(s.live);
    assert_int_equal(s.syncs, 1);
    assert_true(s.entries >= 3);
    revfeed_stop(f);
    rcmd("DEL %s%s", "ztb:{rev}:events", "");
}

static void test_lost_feed_refuses_then_resyncs(void **state)
{
    (void)state;
    zadd("{\"type\":\"audience\",\"id\":\"payments-x\",\"exp\":0}", "+inf");
    struct revfeed *f = start(0);
    assert_int_equal(check_jti(f, "a"), ZTB_OK);
    /* changes the feed never hears of (no announcement; Redis keeps them:
     * appendfsync always): the kill switch lifted and a token revoked. Made
     * before the loss, so a quick reconnect cannot load the state before
     * they are there (that raced on a loaded machine). */
    rcmd("DEL %s%s", "ztb:{rev}:events", "");
    char ev[256];
    snprintf(ev, sizeof(ev), "{\"type\":\"jti\",\"id\":\"while-away\",\"exp\":%s}", future);
    zadd(ev, future);
    assert_int_equal(check_jti(f, "while-away"), ZTB_OK); /* not announced: not known yet */
    zh_redis_kill(&rd);
    /* grace 0: refused as soon as the loss is noticed (EOF: at once) */
    assert_int_equal(wait_for(f, "a", ZTB_ERR_REVOCATION_STALE), ZTB_ERR_REVOCATION_STALE);
    /* back: the resync loads what changed while the feed was not listening */
    zh_redis_restart(&rd);
    assert_int_equal(wait_for(f, "while-away", ZTB_ERR_REVOKED), ZTB_ERR_REVOKED);
    uint8_t id[IDSET_ID_LEN] = {0};
    assert_int_equal(revfeed_check(f, "kid", "payments-x", "bot", 5, id, clock_now_s()), ZTB_OK);
    struct revfeed_stats s;
    revfeed_stats(f, &s);
    assert_true(s.syncs >= 2);
    /* a broken connection (not a dead Redis) is noticed and repaired the same way */
    revfeed_break_for_test(f);
    for (int i = 0; i < 500; i++) {
        revfeed_stats(f, &s);
        if (s.syncs >= 3 && s.live)
            break;
        clock_sleep_ms(10);
    }
    assert_true(s.syncs >= 3);
    assert_int_equal(check_jti(f, "while-away"), ZTB_ERR_REVOKED);
    revfeed_stop(f);
    rcmd("DEL %s%s", "ztb:{rev}:events", "");
}

static void test_grace(void **state)
{
    (void)state;
    struct revfeed *f = start(1500);
    zh_redis_kill(&rd);
    int64_t t0 = clock_mono_ms();
    clock_sleep_ms(300);
    assert_int_equal(check_jti(f, "a"), ZTB_OK); /* within the grace */
    assert_int_equal(wait_for(f, "a", ZTB_ERR_REVOCATION_STALE), ZTB_ERR_REVOCATION_STALE);
    assert_true(clock_mono_ms() - t0 >= 1400);
    revfeed_stop(f);
    zh_redis_restart(&rd);
}

/* A sequence that goes back while the feed is quiet (Redis lost it: a
 * failover to a replica that lagged, a restart from an older AOF while the
 * subscriber stayed connected to a replica) is news, not "already loaded":
 * the revocation announced under the lower number reaches the state (the
 * feed reloads) instead of being skipped as one the load had read. */
static void test_sequence_back_while_quiet_reloads(void **state)
{
    (void)state;
    rcmd("SET %s %s", "ztb:{rev}:seq", "100");
    struct revfeed *f = start(0);
    assert_int_equal(check_jti(f, "after-reset"), ZTB_OK);
    /* the sequence is reset, then the broker's script writes a revocation:
     * the set member, INCR to 1, the message with seq 1 */
    rcmd("SET %s %s", "ztb:{rev}:seq", "1");
    char ev[256], msg[300];
    snprintf(ev, sizeof(ev), "{\"type\":\"jti\",\"id\":\"after-reset\",\"exp\":%s}", future);
    zadd(ev, future);
    snprintf(msg, sizeof(msg), "{\"type\":\"jti\",\"id\":\"after-reset\",\"exp\":%s,\"seq\":1}",
             future);
    publish(msg);
    assert_int_equal(wait_for(f, "after-reset", ZTB_ERR_REVOKED), ZTB_ERR_REVOKED);
    /* in step again from the reloaded sequence: the next one is applied */
    snprintf(msg, sizeof(msg), "{\"type\":\"jti\",\"id\":\"next\",\"exp\":%s,\"seq\":2}", future);
    publish(msg);
    assert_int_equal(wait_for(f, "next", ZTB_ERR_REVOKED), ZTB_ERR_REVOKED);
    revfeed_stop(f);
}

/* What test_sequence_back_while_quiet_reloads leaves, even when it fails. */
static int clear_rev(void **state)
{
    (void)state;
    rcmd("DEL %s%s", "ztb:{rev}:events", "");
    rcmd("DEL %s%s", "ztb:{rev}:seq", "");
    return 0;
}

static void test_startup_fails_without_redis(void **state)
{
    (void)state;
    struct revfeed_opts o = {.skew_s = 30, .startup_timeout_ms = 300};
    char err[200] = "";
    assert_int_equal(
        redis_target_parse("unix:///nonexistent/redis.sock", 100, &o.target, err, sizeof(err)),
        ZTB_OK);
    struct revfeed *f = NULL;
    int64_t t0 = clock_mono_ms();
    assert_int_equal(revfeed_start(&o, &f, err, sizeof(err)), ZTB_ERR_UNAVAILABLE);
    assert_null(f);
    assert_true(clock_mono_ms() - t0 < 3000);
    assert_non_null(strstr(err, "revocations"));
}

/* A state full of live revocations refuses every token at once (whatever the
 * grace), and answers again once a full reload fits. */
static void test_cap_full_fails_closed_until_reload_fits(void **state)
{
    (void)state;
    char ev[4][256];
    for (int i = 0; i < 4; i++)
        snprintf(ev[i], sizeof(ev[i]), "{\"type\":\"jti\",\"id\":\"capped-%d\",\"exp\":%s}", i,
                 future);
    zadd(ev[0], future);
    zadd(ev[1], future);
    struct revfeed *f = start_capped(60000, 3);
    assert_int_equal(check_jti(f, "capped-0"), ZTB_ERR_REVOKED);
    assert_int_equal(check_jti(f, "innocent"), ZTB_OK);
    zadd(ev[2], future);
    publish(ev[2]);
    assert_int_equal(wait_for(f, "capped-2", ZTB_ERR_REVOKED), ZTB_ERR_REVOKED);
    zadd(ev[3], future);
    publish(ev[3]); /* a fourth live revocation: no room */
    assert_int_equal(wait_for(f, "innocent", ZTB_ERR_REVOCATION_STALE), ZTB_ERR_REVOCATION_STALE);
    assert_int_equal(check_jti(f, "capped-3"), ZTB_ERR_REVOCATION_STALE);
    struct revfeed_stats s;
    revfeed_stats(f, &s);
    assert_true(s.refused >= 1);
    assert_int_equal(s.evicted, 0);
    /* the reloads keep failing while 4 live entries do not fit in 3 */
    clock_sleep_ms(500);
    assert_int_equal(check_jti(f, "innocent"), ZTB_ERR_REVOCATION_STALE);
    revfeed_stats(f, &s);
    assert_true(s.full);
    /* two are lifted: the next reload fits and the feed answers again */
    rcmd("ZREM ztb:{rev}:events %s", ev[0], NULL);
    rcmd("ZREM ztb:{rev}:events %s", ev[1], NULL);
    assert_int_equal(wait_for(f, "innocent", ZTB_OK), ZTB_OK);
    assert_int_equal(check_jti(f, "capped-3"), ZTB_ERR_REVOKED);
    revfeed_stats(f, &s);
    assert_false(s.full);
    assert_true(s.refused >= 1); /* counters survive the reload */
    revfeed_stop(f);
    rcmd("DEL %s%s", "ztb:{rev}:events", "");
}

static void test_large_state_memory(void **state)
{
    (void)state;
    /* 100 000 revoked tokens loaded at start: bytes per entry stay well under 100 */
    redisContext *c = zh_redis_connect(&rd);
    for (int i = 0; i < 100000; i++)
        redisAppendCommand(c,
                           "ZADD ztb:{rev}:events %s {\"type\":\"jti\",\"id\":\"t%d\",\"exp\":%s}",
                           future, i, future);
    for (int i = 0; i < 100000; i++) {
        void *r = NULL;
        assert_int_equal(redisGetReply(c, &r), REDIS_OK);
        freeReplyObject(r);
    }
    redisFree(c);
    struct revfeed *f = start(0);
    struct revfeed_stats s;
    revfeed_stats(f, &s);
    assert_int_equal(s.entries, 100000);
    print_message("revocation state: %zu entries, %zu bytes, %.1f bytes/entry\n", s.entries,
                  s.bytes, (double)s.bytes / (double)s.entries);
    assert_true(s.bytes / s.entries < 100);
    assert_int_equal(check_jti(f, "t99999"), ZTB_ERR_REVOKED);
    assert_int_equal(check_jti(f, "t100000"), ZTB_OK);
    revfeed_stop(f);
    rcmd("DEL %s%s", "ztb:{rev}:events", "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_load_then_live_events),
        cmocka_unit_test(test_lost_feed_refuses_then_resyncs),
        cmocka_unit_test(test_grace),
        cmocka_unit_test_teardown(test_sequence_back_while_quiet_reloads, clear_rev),
        cmocka_unit_test(test_startup_fails_without_redis),
        cmocka_unit_test(test_cap_full_fails_closed_until_reload_fits),
        cmocka_unit_test(test_large_state_memory),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
