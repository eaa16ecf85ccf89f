/*
 * test_store_rev.c - revocation state, sources, signals, dual counting,
 * operator actions and detector counters against a real redis-server: the
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

#include "broker/redis_client.h"
#include "broker/store.h"
#include "broker/store_rev.h"
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

static struct zh_redis rd;
static redisContext *sub; /* subscribed to ztb:revocations */

static int setup(void **state)
{
    (void)state;
    signal(SIGPIPE, SIG_IGN); /* as the broker: a dead Redis is an error, not a signal */
    zh_redis_start(&rd);
    struct redis_target t;
    char err[256];
    assert_int_equal(redis_target_parse(rd.url, 0, &t, err, sizeof(err)), ZTB_OK);
    t.timeout_ms = ZH_REDIS_TIMEOUT_MS;
    redis_client_init(&t);
    sub = zh_redis_connect(&rd);
    redisReply *r = redisCommand(sub, "SUBSCRIBE ztb:revocations");
    assert_non_null(r);
    freeReplyObject(r);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    redisFree(sub);
    redis_client_shutdown();
    zh_redis_stop(&rd, 1);
    return 0;
}

static redisReply *cmd(const char *fmt, ...)
{
    redisContext *c = zh_redis_connect(&rd);
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(c, fmt, ap);
    va_end(ap);
    redisFree(c);
    assert_non_null(r);
    return r;
}

static long long cmd_int(const char *fmt, const char *arg)
{
    redisReply *r = cmd(fmt, arg);
    assert_int_equal(r->type, REDIS_REPLY_INTEGER);
    long long v = r->integer;
    freeReplyObject(r);
    return v;
}

/* The next message published on ztb:revocations (within 2 s). */
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
    snprintf(out, cap, "%s", r->element[2]->str);
    freeReplyObject(r);
}

static double zscore(const char *member)
{
    redisReply *r = cmd("ZSCORE ztb:revocations %s", member);
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
    long long ttl = cmd_int("TTL ztb:rev:jti:%s", "jti-one");
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
    assert_int_equal(cmd_int("EXISTS ztb:rev:jti:%s", "jti-old"), 0);

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
    redisReply *r = cmd("ZADD ztb:revocations %lld %s", (long long)(now - 500),
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
    assert_int_equal(cmd_int("TTL ztb:aud:%s:killed", "payments"), -1); /* until lifted */
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
    assert_int_equal(cmd_int("EXISTS ztb:aud:%s:killed", "payments"), 0);
    assert_int_equal(issue_check("buyer", 1, -1, "pay:x", "payments", &none, &none, &ck), ZTB_OK);
    assert_int_equal(ck.verdict, STORE_OK);
}

static void test_rev_key_and_flags(void **state)
{
    (void)state;
    int64_t now = time(NULL);
    assert_int_equal(store_rev_key("kid-abc", now + 600, 60), ZTB_OK);
    long long ttl = cmd_int("TTL ztb:key:%s:tainted", "kid-abc");
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

static void test_sources(void **state)
{
    (void)state;
    char secret[STORE_SOURCE_SECRET_LEN + 1], name[STORE_SOURCE_MAX + 1];
    assert_int_equal(store_source_add("soc", NULL, NULL, 100, secret), ZTB_OK);
    assert_int_equal(strlen(secret), STORE_SOURCE_SECRET_LEN);
    assert_int_equal(strncmp(secret, "ztbsrc_", 7), 0);
    /* only the hash is stored */
    redisReply *r = cmd("KEYS *%s*", secret + 7);
    assert_int_equal(r->elements, 0);
    freeReplyObject(r);
    assert_int_equal(store_source_by_secret(secret, name), ZTB_OK);
    assert_string_equal(name, "soc");
    char wrong[STORE_SOURCE_SECRET_LEN + 1];
    memcpy(wrong, secret, sizeof(wrong));
    wrong[20] = wrong[20] == 'A' ? 'B' : 'A';
    assert_int_equal(store_source_by_secret(wrong, name), ZTB_ERR_NOT_FOUND);
    assert_int_equal(store_source_by_secret("ztbsrc_short", name), ZTB_ERR_NOT_FOUND);
    assert_int_equal(store_source_add("soc", NULL, NULL, 100, secret), ZTB_ERR_EXISTS);
    assert_int_equal(secret[0], '\0'); /* nothing leaks from a refused add */

    assert_int_equal(store_source_add("gw", NULL, "gateway-1", 100, secret), ZTB_OK);
    assert_int_equal(secret[0], '\0');
    assert_int_equal(store_source_by_agent("gateway-1", name), ZTB_OK);
    assert_string_equal(name, "gw");
    assert_int_equal(store_source_add("gw2", NULL, "gateway-1", 100, secret), ZTB_ERR_EXISTS);
    assert_int_equal(store_source_by_agent("other", name), ZTB_ERR_NOT_FOUND);

    const char *jwk = "{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"a\",\"y\":\"b\"}";
    char tx_secret[STORE_SOURCE_SECRET_LEN + 1];
    assert_int_equal(store_source_add("tx", jwk, NULL, 100, tx_secret), ZTB_OK);
    char got[512];
    assert_int_equal(store_source_jwk("tx", got, sizeof(got)), ZTB_OK);
    assert_string_equal(got, jwk);
    assert_int_equal(store_source_jwk("soc", got, sizeof(got)), ZTB_ERR_NOT_FOUND);

    json_t *list = NULL;
    assert_int_equal(store_source_list(&list), ZTB_OK);
    assert_int_equal(json_array_size(list), 3);
    assert_string_equal(json_string_value(json_object_get(json_array_get(list, 0), "name")), "gw");
    assert_string_equal(json_string_value(json_object_get(json_array_get(list, 0), "kind")),
                        "agent");
    assert_true(json_is_true(json_object_get(json_array_get(list, 2), "has_jwk")));
    json_decref(list);

    assert_int_equal(store_source_remove("soc"), ZTB_OK);
    assert_int_equal(store_source_by_secret(secret, name), ZTB_ERR_NOT_FOUND);
    assert_int_equal(store_source_remove("gw"), ZTB_OK);
    assert_int_equal(store_source_by_agent("gateway-1", name), ZTB_ERR_NOT_FOUND);
    assert_int_equal(store_source_remove("gw"), ZTB_ERR_NOT_FOUND);
    assert_int_equal(store_source_add("Bad Name", NULL, NULL, 1, secret), ZTB_ERR_INVALID_ARG);
}

static void test_signal_records(void **state)
{
    (void)state;
    assert_int_equal(store_signal_known("soc", "s-1"), ZTB_OK);
    assert_int_equal(store_signal_seen("soc", "s-1", 60), ZTB_OK);
    assert_int_equal(store_signal_known("soc", "s-1"), ZTB_ERR_REPLAY);
    assert_int_equal(store_signal_seen("soc", "s-1", 60), ZTB_ERR_REPLAY);
    assert_int_equal(store_signal_known("siem", "s-1"), ZTB_OK); /* per source */
    assert_int_equal(store_signal_record("{\"id\":\"sig_a\"}"), ZTB_OK);
    assert_int_equal(store_signal_record("{\"id\":\"sig_b\"}"), ZTB_OK);
    json_t *list = NULL;
    assert_int_equal(store_signal_list(10, &list), ZTB_OK);
    assert_int_equal(json_array_size(list), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(list, 0), "id")), "sig_b");
    json_decref(list);
    assert_int_equal(store_signal_list(1, &list), ZTB_OK);
    assert_int_equal(json_array_size(list), 1);
    json_decref(list);
}

static void test_dual_count(void **state)
{
    (void)state;
    unsigned have;
    int fired;
    char ids[128];
    assert_int_equal(store_dual_count("agent", "bot", "q2", "soc", "sig1", 60, 2, &have, &fired,
                                      ids, sizeof(ids)),
                     ZTB_OK);
    assert_int_equal(have, 1);
    assert_false(fired);
    assert_string_equal(ids, "sig1");
    /* the same source again: not independent */
    assert_int_equal(store_dual_count("agent", "bot", "q2", "soc", "sig2", 60, 2, &have, &fired,
                                      ids, sizeof(ids)),
                     ZTB_OK);
    assert_int_equal(have, 1);
    assert_false(fired);
    assert_string_equal(ids, "sig2");
    assert_true(cmd_int("TTL %s", "ztb:{bot}:dual:q2") <= 60);
    /* another target or entry counts apart */
    assert_int_equal(store_dual_count("agent", "bot2", "q2", "siem", "sig3", 60, 2, &have, &fired,
                                      ids, sizeof(ids)),
                     ZTB_OK);
    assert_int_equal(have, 1);
    /* a second source: the quorum fires once, and the count starts over */
    assert_int_equal(store_dual_count("agent", "bot", "q2", "siem", "sig4", 60, 2, &have, &fired,
                                      ids, sizeof(ids)),
                     ZTB_OK);
    assert_int_equal(have, 2);
    assert_true(fired);
    assert_true(strstr(ids, "sig2") != NULL && strstr(ids, "sig4") != NULL);
    assert_int_equal(cmd_int("EXISTS %s", "ztb:{bot}:dual:q2"), 0);
    /* a report outside the window does not count */
    assert_int_equal(store_dual_count("audience", "crm", "k", "soc", "sig5", 1, 2, &have, &fired,
                                      ids, sizeof(ids)),
                     ZTB_OK);
    sleep(2);
    assert_int_equal(store_dual_count("audience", "crm", "k", "siem", "sig6", 1, 2, &have, &fired,
                                      ids, sizeof(ids)),
                     ZTB_OK);
    assert_int_equal(have, 1);
    assert_false(fired);
    assert_string_equal(ids, "sig6");
}

static void test_actions(void **state)
{
    (void)state;
    struct store_action a;
    memset(&a, 0, sizeof(a));
    snprintf(a.entry, sizeof(a.entry), "revoke-all");
    snprintf(a.response, sizeof(a.response), "revoke_all");
    snprintf(a.target_kind, sizeof(a.target_kind), "agent");
    snprintf(a.target, sizeof(a.target), "bot");
    snprintf(a.signals, sizeof(a.signals), "sig_1");
    int created = 0;
    assert_int_equal(store_action_create(&a, 1000, &created), ZTB_OK);
    assert_true(created);
    assert_int_equal(strncmp(a.id, "act_", 4), 0);
    char first[32];
    snprintf(first, sizeof(first), "%s", a.id);
    /* the same (entry, target) again: the pending one grows */
    snprintf(a.signals, sizeof(a.signals), "sig_2");
    assert_int_equal(store_action_create(&a, 1001, &created), ZTB_OK);
    assert_false(created);
    assert_string_equal(a.id, first);

    json_t *list = NULL;
    assert_int_equal(store_action_list(10, &list), ZTB_OK);
    assert_int_equal(json_array_size(list), 1);
    json_t *o = json_array_get(list, 0);
    assert_string_equal(json_string_value(json_object_get(o, "signals")), "sig_1,sig_2");
    assert_string_equal(json_string_value(json_object_get(o, "status")), "pending");
    json_decref(list);

    struct store_action d;
    assert_int_equal(store_action_decide(first, 1, "operator:uid=0", 1002, &d), ZTB_OK);
    assert_string_equal(d.status, "confirmed");
    assert_string_equal(d.target, "bot");
    assert_string_equal(d.response, "revoke_all");
    /* decided once only */
    assert_int_equal(store_action_decide(first, 1, "operator:uid=0", 1003, &d), ZTB_ERR_STATE);
    assert_int_equal(store_action_decide(first, 0, "operator:uid=0", 1003, &d), ZTB_ERR_STATE);
    assert_int_equal(store_action_set_status(first, "failed"), ZTB_OK);
    /* a failed one may be confirmed again */
    assert_int_equal(store_action_decide(first, 1, "operator:uid=0", 1004, &d), ZTB_OK);
    assert_int_equal(store_action_decide("act_nope", 1, "x", 1, &d), ZTB_ERR_NOT_FOUND);
    /* once decided, the next signal files a new action */
    assert_int_equal(store_action_create(&a, 1005, &created), ZTB_OK);
    assert_true(created);
    assert_string_not_equal(a.id, first);
    assert_int_equal(store_action_decide(a.id, 0, "operator:uid=0", 1006, &d), ZTB_OK);
    assert_string_equal(d.status, "rejected");
}

static void test_detectors(void **state)
{
    (void)state;
    int64_t n = 0;
    for (int i = 1; i <= 3; i++) {
        assert_int_equal(store_detect_count("noisy", "denials", 60, &n), ZTB_OK);
        assert_int_equal(n, i);
    }
    assert_true(cmd_int("TTL %s", "ztb:{noisy}:det:denials") <= 60);
    assert_int_equal(store_detect_count("Bad Name", "denials", 60, &n), ZTB_ERR_INVALID_ARG);

    int fire = 0;
    assert_int_equal(store_detect_audience("ghost", "crm", 0, &fire), ZTB_ERR_NOT_FOUND);
    assert_int_equal(store_agent_add("explorer", 1), ZTB_OK);
    /* during the learning period nothing is new */
    assert_int_equal(store_detect_audience("explorer", "crm", 1, &fire), ZTB_OK);
    assert_false(fire);
    sleep(2);
    assert_int_equal(store_detect_audience("explorer", "crm", 1, &fire), ZTB_OK);
    assert_false(fire); /* known */
    assert_int_equal(store_detect_audience("explorer", "payments", 1, &fire), ZTB_OK);
    assert_true(fire);
    assert_int_equal(store_detect_audience("explorer", "payments", 1, &fire), ZTB_OK);
    assert_false(fire);
}

static void test_unavailable(void **state)
{
    (void)state;
    zh_redis_stop(&rd, 0);
    int applied;
    int64_t gen, exp;
    struct store_token_state st;
    char secret[STORE_SOURCE_SECRET_LEN + 1];
    assert_int_equal(store_rev_jti("x", time(NULL) + 60, 5, 0, &applied), ZTB_ERR_UNAVAILABLE);
    assert_int_equal(store_rev_agent("victim", 60, 5, &gen, &exp), ZTB_ERR_UNAVAILABLE);
    assert_int_equal(store_token_state("t1", "holder", "a", "k", 1, 0, &st), ZTB_ERR_UNAVAILABLE);
    assert_int_equal(store_source_add("x", NULL, NULL, 1, secret), ZTB_ERR_UNAVAILABLE);
    assert_int_equal(secret[0], '\0');
    zh_redis_restart(&rd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ids),
        cmocka_unit_test(test_rev_jti),
        cmocka_unit_test(test_trim),
        cmocka_unit_test(test_rev_agent),
        cmocka_unit_test(test_rev_audience),
        cmocka_unit_test(test_rev_key_and_flags),
        cmocka_unit_test(test_token_state),
        cmocka_unit_test(test_sources),
        cmocka_unit_test(test_signal_records),
        cmocka_unit_test(test_dual_count),
        cmocka_unit_test(test_actions),
        cmocka_unit_test(test_detectors),
        cmocka_unit_test(test_unavailable),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
