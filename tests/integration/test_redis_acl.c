/*
 * test_redis_acl.c - least-privilege Redis ACL users per role, exactly as
 * docs/redis.md gives them (the lines below are copied from there): a real
 * redis-server with the `default` user disabled; the broker (enrollment,
 * issuance, revocation, preflight, unknown-client reports taken) and the
 * SDK verifier (revocation feed, single-use markers, unknown-client reports
 * sent) work through their own users; the verifier's user can neither
 * write a revocation nor read other keys (NOPERM).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "sdk_it.h"

/* docs/redis.md, "ACL users per role" (passwords are the test's) */
static const char *const acl_lines[] = {
    "ACL SETUSER ztb-broker reset on >broker-pw ~ztb:* &ztb:revocations "
    "+@read +@write +@scripting +@connection +@transaction -@dangerous "
    "+info +config|get +role +wait +sort +time +publish",
    "ACL SETUSER ztb-verifier reset on >verifier-pw resetchannels &ztb:revocations "
    "+ping +select +subscribe +unsubscribe +zscan +get +set +lpush +ltrim "
    "%R~ztb:{rev}:events %R~ztb:{rev}:seq %W~ztb:used:* %W~ztb:dpop:* "
    "%W~ztb:unknown_reports",
    "ACL SETUSER default off",
};

static struct zh_redis rd;
static struct zh_broker b;
static char broker_url[128], verifier_url[128];

/* A connection to rd as user (AUTH), over TCP. */
static redisContext *as(const char *user, const char *pw)
{
    redisContext *c = zh_redis_connect_tcp(&rd);
    redisReply *r = redisCommand(c, "AUTH %s %s", user, pw);
    assert_int_equal(r->type, REDIS_REPLY_STATUS);
    freeReplyObject(r);
    return c;
}

static int setup(void **state)
{
    (void)state;
    zh_redis_start_tcp(&rd);
    redisContext *c = zh_redis_connect(&rd);
    redisReply *r = redisCommand(c, "ACL SETUSER admin on >admin-pw ~* &* +@all");
    assert_int_equal(r->type, REDIS_REPLY_STATUS);
    freeReplyObject(r);
    for (size_t i = 0; i < sizeof(acl_lines) / sizeof(acl_lines[0]); i++) {
        /* split at spaces: the lines hold '%', which is no format here */
        char line[512];
        const char *argv[32];
        int argc = 0;
        snprintf(line, sizeof(line), "%s", acl_lines[i]);
        for (char *save = NULL, *w = strtok_r(line, " ", &save); w != NULL && argc < 32;
             w = strtok_r(NULL, " ", &save))
            argv[argc++] = w;
        r = redisCommandArgv(c, argc, argv, NULL);
        if (r == NULL || r->type != REDIS_REPLY_STATUS)
            fail_msg("%s: %s", acl_lines[i], r ? r->str : c->errstr);
        freeReplyObject(r);
    }
    redisFree(c);
    snprintf(broker_url, sizeof(broker_url), "redis://ztb-broker:broker-pw@127.0.0.1:%d", rd.port);
    snprintf(verifier_url, sizeof(verifier_url), "redis://ztb-verifier:verifier-pw@127.0.0.1:%d",
             rd.port);
    zh_broker_start_issuing(&b, broker_url, sdk_it_policy);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    zh_broker_stop(&b);
    zh_redis_stop(&rd, 1);
    zh_rmtree(b.dir);
    return 0;
}

/* What Redis refused (ACL LOG), for a failure message. */
static void dump_acl_log(void)
{
    redisContext *c = as("admin", "admin-pw");
    redisReply *r = redisCommand(c, "ACL LOG 5");
    for (size_t i = 0; r && i < r->elements; i++)
        for (size_t k = 0; k + 1 < r->element[i]->elements; k += 2)
            if (r->element[i]->element[k + 1]->type == REDIS_REPLY_STRING)
                fprintf(stderr, "acl log: %s=%s\n", r->element[i]->element[k]->str,
                        r->element[i]->element[k + 1]->str);
    freeReplyObject(r);
    redisFree(c);
}

static void test_roles_work_through_their_users(void **state)
{
    (void)state;
    ztb_agent *a = sdk_it_enrolled(&b, "billing-bot", 0);
    ztb_verifier *v = sdk_it_verifier(&b, verifier_url);
    char *tok = NULL;
    if (ztb_agent_token(a, "payments", "payments:list", NULL, NULL, &tok) != ZTB_OK) {
        dump_acl_log();
        fail_msg("token: %s", ztb_agent_errdetail(a));
    }
    ztb_expect e = {.action = "payments:list"};
    assert_int_equal(ztb_verify(v, tok, &e, NULL), ZTB_OK);
    /* single use: the verifier writes its replay marker */
    char *once = NULL;
    assert_int_equal(ztb_agent_token(a, "payments", "payments:refund", "orders/1",
                                     "{\"type\":\"payment\",\"amount\":10}", &once),
                     ZTB_OK);
    ztb_expect eo = {.action = "payments:refund", .resource = "orders/1"};
    ztb_err rv = ztb_verify(v, once, &eo, NULL);
    if (rv != ZTB_OK) {
        dump_acl_log();
        fail_msg("single use: %s: %s", ztb_err_name(rv), ztb_verifier_errdetail(v));
    }
    assert_int_equal(ztb_verify(v, once, &eo, NULL), ZTB_ERR_REPLAY);
    /* the broker revokes; the verifier hears it */
    char body[4096];
    snprintf(body, sizeof(body), "{\"type\":\"jti\",\"token\":\"%s\"}", tok);
    struct zh_resp r;
    assert_int_equal(zh_admin(&b, "POST", "/v1/revocations", body, &r), 0);
    if (r.status != 200) {
        dump_acl_log();
        fail_msg("revoke: HTTP %ld %s", r.status, r.body);
    }
    zh_resp_free(&r);
    for (int i = 0; i < 200 && (rv = ztb_verify(v, tok, &e, NULL)) == ZTB_OK; i++)
        usleep(10000);
    assert_int_equal(rv, ZTB_ERR_REVOKED);
    /* a caller with a token that is not ours: reported through the
     * verifier's user (LPUSH, LTRIM), taken by the broker's (RPOP) */
    assert_int_equal(ztb_verify_from(v, "not-a-token", &e, NULL, "acl-probe"), ZTB_ERR_JWS_FORMAT);
    ztb_token_free(tok);
    ztb_token_free(once);
    ztb_verifier_free(v); /* sends its last report */
    int seen = 0;
    for (int i = 0; i < 300 && !seen; i++) {
        assert_int_equal(zh_admin(&b, "GET", "/v1/inventory", NULL, &r), 0);
        seen = strstr(r.body, "acl-probe") != NULL;
        zh_resp_free(&r);
        if (!seen)
            usleep(10000);
    }
    if (!seen) {
        dump_acl_log();
        fail_msg("the verifier's report did not reach the inventory");
    }
    ztb_agent_free(a);
}

/* The verifier's user cannot revoke, announce, read what is not its, or
 * touch the inventory but through its report list. */
static void test_verifier_user_is_least_privilege(void **state)
{
    (void)state;
    redisContext *c = as("ztb-verifier", "verifier-pw");
    static const char *const refused[] = {
        "ZADD ztb:{rev}:events 1 {\"type\":\"jti\",\"id\":\"x\",\"exp\":1}",
        "ZREM ztb:{rev}:events x",
        "DEL ztb:{rev}:events",
        "SET ztb:{rev}:jti:x 1",
        "SET ztb:{rev}:seq 99",
        "PUBLISH ztb:revocations x",
        "HGETALL ztb:{billing-bot}:agent",
        "GET ztb:used:x",
        "LRANGE ztb:unknown_reports 0 -1",
        "RPOP ztb:unknown_reports",
        "LPUSH ztb:{unknown}:clients x",
        "HINCRBY ztb:{unknown}:clients no_token|a 1",
        "HGETALL ztb:{unknown}:clients",
        "KEYS *",
        "EVAL \"return 1\" 0",
        "FLUSHALL",
    };
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        redisReply *r = redisCommand(c, refused[i]);
        if (r == NULL || r->type != REDIS_REPLY_ERROR || strncmp(r->str, "NOPERM", 6) != 0)
            fail_msg("the verifier's user may: %s (%s)", refused[i],
                     r && r->type == REDIS_REPLY_ERROR ? r->str : "allowed");
        freeReplyObject(r);
    }
    /* and the default user is off */
    redisContext *d = zh_redis_connect_tcp(&rd);
    redisReply *r = redisCommand(d, "GET ztb:{rev}:seq");
    assert_int_equal(r->type, REDIS_REPLY_ERROR);
    freeReplyObject(r);
    redisFree(d);
    redisFree(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roles_work_through_their_users),
        cmocka_unit_test(test_verifier_user_is_least_privilege),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
