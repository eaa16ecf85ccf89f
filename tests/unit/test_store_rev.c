/*
 * test_store_rev.c - revocation state against a real redis-server: the
 * keys, TTLs and announcements docs/protocol.md promises.
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

#include "broker/store/redis_client.h"
#include "broker/store/store.h"
#include "broker/store/store_rev.h"
#include "store_fixture.h"

/* The full issue check for a caller bound to generation gen and epoch (-1:
 * any), no DPoP proof. */
static ztb_err issue_check(const char *agent, int64_t gen, int64_t epoch, const char *action,
                           const char *audience, const struct store_rate *ar,
                           const struct store_rate *xr, struct store_check *ck)
{
    struct store_expect e = {.generation = gen, .epoch = epoch};
    return store_issue_check(agent, &e, 1, action, audience, ar, xr, ck);
}

static redisContext *sub; /* subscribed to ztb:revocations */

static int setup(void **state)
{
    store_setup(state);
    sub = zh_redis_connect(&rd);
    redisReply *r = redisCommand(sub, "SUBSCRIBE ztb:revocations");
    assert_non_null(r);
    freeReplyObject(r);
    return 0;
}

static int teardown(void **state)
{
    redisFree(sub);
    return store_teardown(state);
}

/* The sequence number of the last message (each must be one more). */
static long long last_seq = -1;

/* The next message published on ztb:revocations (within 2 s), without its
 * ,"seq":N member, which must be the last one plus one: the published
 * text is the stored member with the sequence added (wire/revevent.h). */
static void next_message(char *out, size_t cap)
{
    struct timeval tv = {2, 0};
    redisSetTimeout(sub, tv);
    void *vr = NULL;
    assert_int_equal(redisGetReply(sub, &vr), REDIS_OK);
    redisReply *r = vr;
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    assert_int_equal(r->elements, 3);
    assert_string_equal(r->element[0]->str, "message");
    assert_string_equal(r->element[1]->str, "ztb:revocations");
    const char *m = r->element[2]->str;
    const char *sq = strstr(m, ",\"seq\":");
    assert_non_null(sq);
    char *end = NULL;
    long long seq = strtoll(sq + 7, &end, 10);
    assert_string_equal(end, "}");
    if (last_seq >= 0)
        assert_int_equal(seq, last_seq + 1);
    last_seq = seq;
    snprintf(out, cap, "%.*s}", (int)(sq - m), m);
    freeReplyObject(r);
}

static double zscore(const char *member)
{
    redisReply *r = cmd("ZSCORE ztb:{rev}:events %s", member);
    double v = r->type == REDIS_REPLY_STRING ? strtod(r->str, NULL) : -1;
    if (r->type == REDIS_REPLY_STRING && strcmp(r->str, "inf") == 0)
        v = 1e300;
    freeReplyObject(r);
    return v;
}

static void test_ids(void **state)
{
    (void)state;
    assert_true(store_id_ok("kq3x9Jd0xV2aR8yQ1sLm7g"));
    assert_true(store_id_ok("https://payments.internal"));
    assert_false(store_id_ok(""));
    assert_false(store_id_ok(NULL));
    assert_false(store_id_ok("has space"));
    assert_false(store_id_ok("tab\there"));
    assert_false(store_id_ok("caf\xc3\xa9"));
    char big[300];
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_false(store_id_ok(big));
}

static void test_rev_jti(void **state)
{
    (void)state;
    int64_t now = time(NULL);
    int applied = 0;
    assert_int_equal(store_rev_jti("jti-one", now + 100, 60, 0, &applied), ZTB_OK);
    assert_true(applied);
    long long ttl = cmd_int("TTL ztb:{rev}:jti:%s", "jti-one");
    assert_true(ttl >= 158 && ttl <= 160); /* remaining life + skew */
    char msg[512], want[512];
    next_message(msg, sizeof(msg));
    snprintf(want, sizeof(want), "{\"type\":\"jti\",\"id\":\"jti-one\",\"exp\":%lld}",
             (long long)(now + 100));
    assert_string_equal(msg, want);
    assert_true(zscore(want) == (double)(now + 100));

    /* a token dead everywhere already: nothing written, nothing announced */
    assert_int_equal(store_rev_jti("jti-old", now - 200, 60, 0, &applied), ZTB_OK);
    assert_false(applied);
    assert_int_equal(cmd_int("EXISTS ztb:{rev}:jti:%s", "jti-old"), 0);

    /* an id that would break a key name never reaches Redis */
    assert_int_equal(store_rev_jti("a b", now + 10, 60, 0, &applied), ZTB_ERR_INVALID_ARG);
    assert_int_equal(store_rev_jti("x", 0, 60, 0, &applied), ZTB_ERR_INVALID_ARG);

    /* an id with JSON metacharacters is escaped in the event */
    assert_int_equal(store_rev_jti("q\"uote\\", now + 100, 60, 0, &applied), ZTB_OK);
    next_message(msg, sizeof(msg));
    json_error_t e;
    json_t *j = json_loads(msg, 0, &e);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "id")), "q\"uote\\");
    json_decref(j);
}

static void test_trim(void **state)
{
    (void)state;
    /* an expired member is trimmed by the next write */
    int64_t now = time(NULL);
    redisReply *r = cmd("ZADD ztb:{rev}:events %lld %s", (long long)(now - 500),
                        "{\"type\":\"jti\",\"id\":\"stale\",\"exp\":1}");
    freeReplyObject(r);
    int applied;
    assert_int_equal(store_rev_jti("fresh", now + 30, 60, 0, &applied), ZTB_OK);
    char msg[512];
    next_message(msg, sizeof(msg));
    assert_true(zscore("{\"type\":\"jti\",\"id\":\"stale\",\"exp\":1}") < 0);
}

static void test_rev_agent(void **state)
{
    (void)state;
    assert_int_equal(store_agent_add("victim", 1), ZTB_OK);
    int64_t gen = 0, exp = 0, now = time(NULL);
    assert_int_equal(store_rev_agent("victim", 300, 60, &gen, &exp), ZTB_OK);
    assert_int_equal(gen, 2);
    assert_true(exp >= now + 299 && exp <= now + 301);
    char msg[512], want[512];
    next_message(msg, sizeof(msg));
    snprintf(want, sizeof(want), "{\"type\":\"agent\",\"id\":\"victim\",\"gen\":2,\"exp\":%lld}",
             (long long)exp);
    assert_string_equal(msg, want);
    assert_true(zscore(want) == (double)exp);
    struct store_agent a;
    assert_int_equal(store_agent_get("victim", &a), ZTB_OK);
    assert_int_equal(a.generation, 2);
    assert_int_equal(store_rev_agent("ghost", 300, 60, &gen, &exp), ZTB_ERR_NOT_FOUND);
    assert_int_equal(store_rev_agent("Bad Name", 300, 60, &gen, &exp), ZTB_ERR_NOT_FOUND);
}

static void test_rev_audience(void **state)
{
    (void)state;
    int changed = 0;
    assert_int_equal(store_rev_audience("payments", 0, 60, &changed), ZTB_OK);
    assert_true(changed);
    char msg[512];
    next_message(msg, sizeof(msg));
    assert_string_equal(msg, "{\"type\":\"audience\",\"id\":\"payments\",\"exp\":0}");
    assert_int_equal(cmd_int("TTL %s", "ztb:{rev}:auds"), -1); /* until lifted */
    assert_true(zscore("{\"type\":\"audience\",\"id\":\"payments\",\"exp\":0}") > 1e299);
    /* the issuance script refuses it */
    assert_int_equal(store_agent_add("buyer", 1), ZTB_OK);
    assert_int_equal(
        store_agent_set_identity("buyer", STORE_IDENTITY_ENROLL, "{}", "k", "c", 9999, 0, NULL),
        ZTB_OK);
    struct store_check ck;
    struct store_rate none = {0};
    assert_int_equal(issue_check("buyer", 1, -1, "pay:x", "payments", &none, &none, &ck), ZTB_OK);
    assert_int_equal(ck.verdict, STORE_AUDIENCE_KILLED);

    assert_int_equal(store_rev_audience("payments", 0, 60, &changed), ZTB_OK);
    assert_false(changed); /* already */
    next_message(msg, sizeof(msg));
    assert_int_equal(store_rev_audience("payments", 1, 60, &changed), ZTB_OK);
    assert_true(changed);
    next_message(msg, sizeof(msg));
    assert_string_equal(msg, "{\"type\":\"audience\",\"id\":\"payments\",\"lifted\":true}");
    assert_true(zscore("{\"type\":\"audience\",\"id\":\"payments\",\"exp\":0}") < 0);
    assert_int_equal(cmd_int("HEXISTS ztb:{rev}:auds %s", "payments"), 0);
    assert_int_equal(issue_check("buyer", 1, -1, "pay:x", "payments", &none, &none, &ck), ZTB_OK);
    assert_int_equal(ck.verdict, STORE_OK);
}

static void test_rev_key_and_flags(void **state)
{
    (void)state;
    int64_t now = time(NULL);
    assert_int_equal(store_rev_key("kid-abc", now + 600, 60), ZTB_OK);
    long long ttl = cmd_int("TTL ztb:{rev}:key:%s:tainted", "kid-abc");
    assert_true(ttl >= 658 && ttl <= 660);
    char msg[512], want[256];
    next_message(msg, sizeof(msg));
    snprintf(want, sizeof(want), "{\"type\":\"key\",\"id\":\"kid-abc\",\"exp\":%lld}",
             (long long)(now + 600));
    assert_string_equal(msg, want);

    assert_int_equal(store_agent_add("flagged", 1), ZTB_OK);
    int changed = 0;
    assert_int_equal(store_agent_flag("flagged", "quarantined", 1, &changed), ZTB_OK);
    assert_true(changed);
    assert_int_equal(store_agent_flag("flagged", "quarantined", 1, &changed), ZTB_OK);
    assert_false(changed);
    assert_int_equal(store_agent_flag("flagged", "approval", 1, &changed), ZTB_OK);
    struct store_agent a;
    assert_int_equal(store_agent_get("flagged", &a), ZTB_OK);
    assert_true(a.quarantined && a.approval_required);
    assert_int_equal(store_agent_flag("flagged", "quarantined", 0, &changed), ZTB_OK);
    assert_true(changed);
    assert_int_equal(store_agent_flag("flagged", "status", 1, &changed), ZTB_ERR_INVALID_ARG);
    assert_int_equal(store_agent_flag("nobody", "approval", 1, &changed), ZTB_ERR_NOT_FOUND);

    json_t *list = NULL;
    assert_int_equal(store_rev_list(60, 1000, &list), ZTB_OK);
    int found = 0;
    size_t i;
    json_t *e;
    json_array_foreach(list, i, e) found |=
        strcmp(json_string_value(json_object_get(e, "id")), "kid-abc") == 0;
    assert_true(found);
    json_decref(list);
}

static void test_token_state(void **state)
{
    (void)state;
    assert_int_equal(store_agent_add("holder", 1), ZTB_OK);
    struct store_token_state st;
    assert_int_equal(store_token_state("t1", "holder", "aud1", "k1", 1, 0, &st), ZTB_OK);
    assert_false(st.revoked || st.killed || st.tainted || st.used || st.consumed);
    assert_int_equal(st.gen, 1);
    /* consume once: exactly one caller succeeds */
    assert_int_equal(store_token_state("t1", "holder", "aud1", "k1", 1, 10000, &st), ZTB_OK);
    assert_true(st.consumed);
    assert_int_equal(store_token_state("t1", "holder", "aud1", "k1", 1, 10000, &st), ZTB_OK);
    assert_false(st.consumed);
    assert_true(st.used);
    assert_true(cmd_int("PTTL ztb:used:%s", "t1") > 9000);
    /* each revocation kind shows */
    int applied;
    assert_int_equal(store_rev_jti("t2", time(NULL) + 60, 5, 0, &applied), ZTB_OK);
    assert_int_equal(store_token_state("t2", "holder", "aud1", "k1", 1, 0, &st), ZTB_OK);
    assert_true(st.revoked);
    assert_int_equal(store_rev_audience("aud2", 0, 5, NULL), ZTB_OK);
    assert_int_equal(store_token_state("t3", "holder", "aud2", "k1", 1, 10000, &st), ZTB_OK);
    assert_true(st.killed);
    assert_false(st.consumed); /* a dead token is never consumed */
    assert_int_equal(store_rev_key("k2", time(NULL) + 60, 5), ZTB_OK);
    assert_int_equal(store_token_state("t3", "holder", "aud1", "k2", 1, 0, &st), ZTB_OK);
    assert_true(st.tainted);
    assert_int_equal(store_token_state("t3", "stranger", "aud1", "k1", 1, 0, &st), ZTB_OK);
    assert_int_equal(st.gen, -1);
    assert_int_equal(store_token_state("t 3", "holder", "aud1", "k1", 1, 0, &st),
                     ZTB_ERR_INVALID_ARG);
    /* drain the announcements */
    char msg[256];
    next_message(msg, sizeof(msg));
    next_message(msg, sizeof(msg));
    next_message(msg, sizeof(msg));
}

/*
 * The kill switch is held in memory (it is in the {rev} slot, the issuance
 * script in the agent's): this broker's own kill is in force at once,
 * another broker's within the 100 ms refresh, and a view that cannot be
 * refreshed for 2 s refuses every audience (fail closed).
 */
static void test_audience_view(void **state)
{
    (void)state;
    assert_int_equal(store_audience_killed("crm-view"), 0);
    assert_int_equal(store_rev_audience("crm-view", 0, 60, NULL), ZTB_OK);
    assert_int_equal(store_audience_killed("crm-view"), 1); /* at once */
    assert_int_equal(store_rev_audience("crm-view", 1, 60, NULL), ZTB_OK);
    assert_int_equal(store_audience_killed("crm-view"), 0);
    char msg[512];
    next_message(msg, sizeof(msg));
    next_message(msg, sizeof(msg));

    /* another broker's kill, written straight to Redis */
    assert_int_equal(cmd_int("HSET ztb:{rev}:auds %s 1", "other-kill"), 1);
    int seen = 0;
    for (int i = 0; i < 30 && !seen; i++) {
        seen = store_audience_killed("other-kill") == 1;
        if (!seen)
            usleep(10 * 1000);
    }
    assert_true(seen);
    assert_int_equal(cmd_int("HDEL ztb:{rev}:auds %s", "other-kill"), 1);

    /* Redis gone: the view answers while it is younger than 2 s, then
     * refuses */
    (void)store_audience_killed("x"); /* a fresh load */
    zh_redis_stop(&rd, 0);
    assert_int_equal(store_audience_killed("some-audience"), 0);
    usleep(2100 * 1000);
    assert_int_equal(store_audience_killed("some-audience"), -1);
    struct store_check ck;
    struct store_rate none = {0};
    assert_int_equal(issue_check("buyer", 1, -1, "pay:x", "some-audience", &none, &none, &ck),
                     ZTB_ERR_UNAVAILABLE);
    zh_redis_restart(&rd);
    redisFree(sub);
    sub = zh_redis_connect(&rd);
    redisReply *r = redisCommand(sub, "SUBSCRIBE ztb:revocations");
    freeReplyObject(r);
    int back = 0;
    for (int i = 0; i < 100 && !back; i++) {
        back = store_audience_killed("some-audience") == 0;
        if (!back)
            usleep(20 * 1000);
    }
    assert_true(back);
}

static void test_unavailable(void **state)
{
    (void)state;
    zh_redis_stop(&rd, 0);
    int applied;
    int64_t gen, exp;
    struct store_token_state st;
    assert_int_equal(store_rev_jti("x", time(NULL) + 60, 5, 0, &applied), ZTB_ERR_UNAVAILABLE);
    assert_int_equal(store_rev_agent("victim", 60, 5, &gen, &exp), ZTB_ERR_UNAVAILABLE);
    assert_int_equal(store_token_state("t1", "holder", "a", "k", 1, 0, &st), ZTB_ERR_UNAVAILABLE);
    zh_redis_restart(&rd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ids),          cmocka_unit_test(test_rev_jti),
        cmocka_unit_test(test_trim),         cmocka_unit_test(test_rev_agent),
        cmocka_unit_test(test_rev_audience), cmocka_unit_test(test_rev_key_and_flags),
        cmocka_unit_test(test_token_state),  cmocka_unit_test(test_audience_view),
        cmocka_unit_test(test_unavailable),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
