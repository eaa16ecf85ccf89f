/*
 * test_revocation_gap.c - a verifier never misses a revocation: every
 * published revocation event carries the sequence number its script
 * INCR'd (wire/revevent.h). With the real broker and Redis:
 *  - a revocation whose announcement never reached the verifier (written
 *    to the state and the sequence, not published: a lost message) is
 *    found when the next event's sequence jumps: the verifier reloads and
 *    refuses the token it would otherwise still accept;
 *  - killing the verifier's subscriber connection (CLIENT KILL TYPE
 *    pubsub) makes it reload, and a revocation the broker makes while it
 *    resyncs is not lost.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "sdk_it.h"

static struct zh_redis rd;
static struct zh_broker b;
static ztb_agent *agent;
static ztb_verifier *v;

static int setup(void **state)
{
    (void)state;
    zh_redis_start(&rd);
    zh_broker_start_issuing(&b, rd.url, sdk_it_policy);
    agent = sdk_it_enrolled(&b, "billing-bot", 0);
    v = sdk_it_verifier(&b, rd.url);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    ztb_verifier_free(v);
    ztb_agent_free(agent);
    zh_broker_stop(&b);
    zh_redis_stop(&rd, 1);
    zh_rmtree(b.dir);
    return 0;
}

static ztb_err check(const char *tok)
{
    ztb_expect e = {.action = "payments:list"};
    return ztb_verify(v, tok, &e, NULL);
}

/* A fresh token that verifies now; its jti and exp into jti/exp. */
static char *fresh(char *jti, size_t cap, long long *exp)
{
    char *tok = NULL;
    assert_int_equal(ztb_agent_token(agent, "payments", "payments:list", NULL, NULL, &tok), ZTB_OK);
    ztb_claims *cl = ztb_claims_new();
    ztb_expect e = {.action = "payments:list"};
    ztb_err rv = ztb_verify(v, tok, &e, cl);
    if (rv != ZTB_OK)
        fail_msg("%s: %s", ztb_err_name(rv), ztb_verifier_errdetail(v));
    snprintf(jti, cap, "%s", ztb_claims_jti(cl));
    *exp = (long long)ztb_claims_expires_at(cl);
    ztb_claims_free(cl);
    return tok;
}

/* A revocation whose announcement was lost: in the state and the
 * sequence, as the broker's script writes it, but never published. */
static void revoke_unannounced(const char *jti, long long exp)
{
    redisContext *c = zh_redis_connect(&rd);
    char ev[256];
    snprintf(ev, sizeof(ev), "{\"type\":\"jti\",\"id\":\"%s\",\"exp\":%lld}", jti, exp);
    redisReply *r = redisCommand(c, "ZADD ztb:{rev}:events %lld %s", exp, ev);
    assert_int_equal(r->type, REDIS_REPLY_INTEGER);
    freeReplyObject(r);
    r = redisCommand(c, "SET ztb:{rev}:jti:%s 1 EX 600", jti);
    freeReplyObject(r);
    r = redisCommand(c, "INCR ztb:{rev}:seq");
    assert_int_equal(r->type, REDIS_REPLY_INTEGER);
    freeReplyObject(r);
    redisFree(c);
}

/* The broker revokes tok (admin API). */
static void broker_revoke(const char *tok)
{
    char body[4096];
    snprintf(body, sizeof(body), "{\"type\":\"jti\",\"token\":\"%s\"}", tok);
    struct zh_resp r;
    assert_int_equal(zh_admin(&b, "POST", "/v1/revocations", body, &r), 0);
    if (r.status != 200)
        fail_msg("revoke: HTTP %ld %s", r.status, r.body);
    zh_resp_free(&r);
}

/* Wait up to 3 s for tok to be refused as revoked. */
static ztb_err wait_revoked(const char *tok)
{
    ztb_err rv = ZTB_OK;
    for (int i = 0; i < 300; i++) {
        rv = check(tok);
        if (rv == ZTB_ERR_REVOKED)
            break;
        usleep(10000);
    }
    return rv;
}

static void test_sequence_gap_reloads(void **state)
{
    (void)state;
    char jti[64], lost_jti[64];
    long long exp, lost_exp;
    char *other = fresh(jti, sizeof(jti), &exp);
    char *lost = fresh(lost_jti, sizeof(lost_jti), &lost_exp);
    revoke_unannounced(lost_jti, lost_exp);
    usleep(200000);
    /* the verifier did not hear of it: it still accepts the token */
    assert_int_equal(check(lost), ZTB_OK);
    /* the next revocation's sequence jumps by two: the verifier reloads
     * (refusing while it does) and then knows both */
    broker_revoke(other);
    assert_int_equal(wait_revoked(other), ZTB_ERR_REVOKED);
    assert_int_equal(wait_revoked(lost), ZTB_ERR_REVOKED);
    ztb_token_free(lost);
    ztb_token_free(other);
}

static void test_pubsub_killed_resync_loses_nothing(void **state)
{
    (void)state;
    char j1[64], j2[64];
    long long e1, e2;
    char *t1 = fresh(j1, sizeof(j1), &e1);
    char *t2 = fresh(j2, sizeof(j2), &e2);
    /* revoked while the verifier is cut off, then its subscription killed */
    revoke_unannounced(j1, e1);
    redisContext *c = zh_redis_connect(&rd);
    redisReply *r = redisCommand(c, "CLIENT KILL TYPE pubsub");
    assert_int_equal(r->type, REDIS_REPLY_INTEGER);
    assert_true(r->integer >= 1);
    freeReplyObject(r);
    redisFree(c);
    /* a revocation made while it reconnects and reloads */
    broker_revoke(t2);
    assert_int_equal(wait_revoked(t1), ZTB_ERR_REVOKED);
    assert_int_equal(wait_revoked(t2), ZTB_ERR_REVOKED);
    ztb_token_free(t1);
    ztb_token_free(t2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sequence_gap_reloads),
        cmocka_unit_test(test_pubsub_killed_resync_loses_nothing),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
