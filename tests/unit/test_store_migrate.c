/*
 * test_store_migrate.c - an earlier broker's state under the untagged key
 * names is moved to the tagged layout once, and no revocation is lost:
 * revoked tokens keep their TTL, killed audiences and tainted keys stay in
 * force, the event set is merged and the sequence never goes back.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "broker/store/redis_client.h"
#include "broker/store/store_migrate.h"
#include "broker/store/store_rev.h"
#include "store_fixture.h"

static void test_moves_the_old_layout(void **state)
{
    (void)state;
    /* what a broker of the earlier version left behind */
    freeReplyObject(cmd("SET ztb:rev:jti:old-jti 1 EX 500"));
    freeReplyObject(cmd("SET ztb:aud:crm:killed 1700000000"));
    freeReplyObject(cmd("SET ztb:key:kid-1:tainted 1 EX 600"));
    freeReplyObject(
        cmd("ZADD ztb:revocations +inf {\"type\":\"audience\",\"id\":\"crm\",\"exp\":0}"));
    freeReplyObject(cmd("SET ztb:revocations:seq 41"));
    freeReplyObject(cmd("HSET ztb:src:siem name siem"));
    freeReplyObject(cmd("SADD ztb:sources siem"));
    freeReplyObject(cmd("SET ztb:srcsec:abc siem"));
    freeReplyObject(cmd("HSET ztb:approval:apr_x status pending agent bot"));
    freeReplyObject(cmd("ZADD ztb:{bot}:approvals 1 apr_x"));
    freeReplyObject(cmd("HSET ztb:join:deadbeef agent bot"));
    freeReplyObject(cmd("DEL ztb:layout"));

    char err[512];
    assert_int_equal(store_layout_check(0, err, sizeof(err)), 0);

    assert_int_equal(cmd_int("EXISTS %s", "ztb:rev:jti:old-jti"), 0);
    long long ttl = cmd_int("TTL %s", "ztb:{rev}:jti:old-jti");
    assert_true(ttl > 400 && ttl <= 500);
    assert_int_equal(cmd_int("HEXISTS ztb:{rev}:auds %s", "crm"), 1);
    assert_int_equal(cmd_int("EXISTS %s", "ztb:aud:crm:killed"), 0);
    assert_true(cmd_int("TTL %s", "ztb:{rev}:key:kid-1:tainted") > 500);
    assert_int_equal(cmd_int("ZCARD %s", "ztb:{rev}:events"), 1);
    redisReply *r = cmd("GET ztb:{rev}:seq");
    assert_string_equal(r->str, "41");
    freeReplyObject(r);
    /* the old set and sequence stay for verifiers of the earlier version */
    assert_int_equal(cmd_int("EXISTS %s", "ztb:revocations"), 1);
    assert_int_equal(cmd_int("SISMEMBER ztb:{src}:all %s", "siem"), 1);
    assert_int_equal(cmd_int("EXISTS %s", "ztb:{src}:id:siem"), 1);
    assert_int_equal(cmd_int("EXISTS %s", "ztb:{src}:sec:abc"), 1);
    assert_int_equal(cmd_int("EXISTS %s", "ztb:{apr}:id:apr_x"), 1);
    assert_int_equal(cmd_int("ZCARD %s", "ztb:{apr}:agent:bot"), 1);
    assert_int_equal(cmd_int("EXISTS %s", "ztb:join:{deadbeef}"), 1);
    r = cmd("GET ztb:layout");
    assert_string_equal(r->str, ZTB_LAYOUT_VERSION);
    freeReplyObject(r);

    /* in force for the broker: the kill switch and the revoked token */
    assert_int_equal(store_audience_killed("crm"), 1);
    struct store_token_state st;
    assert_int_equal(store_token_state("old-jti", "bot", "crm2", "kid-2", 1, 0, &st), ZTB_OK);
    assert_true(st.revoked);

    /* once: a second check moves nothing (a new key under an old name
     * stays where it is) */
    freeReplyObject(cmd("SET ztb:rev:jti:late 1"));
    assert_int_equal(store_layout_check(0, err, sizeof(err)), 0);
    assert_int_equal(cmd_int("EXISTS %s", "ztb:rev:jti:late"), 1);
}

/* The sequence never goes back: a higher new one is kept. */
static void test_sequence_keeps_the_higher(void **state)
{
    (void)state;
    freeReplyObject(cmd("DEL ztb:layout"));
    freeReplyObject(cmd("SET ztb:revocations:seq 5"));
    freeReplyObject(cmd("SET ztb:{rev}:seq 90"));
    char err[512];
    assert_int_equal(store_layout_check(0, err, sizeof(err)), 0);
    redisReply *r = cmd("GET ztb:{rev}:seq");
    assert_string_equal(r->str, "90");
    freeReplyObject(r);
}

/* A layout this broker does not know: refused, naming it. */
static void test_unknown_layout_refused(void **state)
{
    (void)state;
    freeReplyObject(cmd("SET ztb:layout 9"));
    char err[512];
    assert_int_equal(store_layout_check(0, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "ztb:layout"));
    freeReplyObject(cmd("SET ztb:layout %s", ZTB_LAYOUT_VERSION));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_moves_the_old_layout),
        cmocka_unit_test(test_sequence_keeps_the_higher),
        cmocka_unit_test(test_unknown_layout_refused),
    };
    return cmocka_run_group_tests(tests, store_setup, store_teardown);
}
