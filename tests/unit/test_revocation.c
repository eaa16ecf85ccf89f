/*
 * test_revocation.c - applying each anomaly response against a real Redis
 * and a real key store: the state, the durable audit line with its cause,
 * the key rotation away from a tainted key, and the refusals.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "broker/signals/revocation.h"
#include "broker/store/store.h"
#include "broker/store/store_rev.h"
#include "broker_fixture.h"

static int setup(void **state)
{
    (void)state;
    bf_setup(NULL);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    bf_teardown();
    return 0;
}

static void test_limits(void **state)
{
    (void)state;
    struct rev_limits l;
    revocation_limits(&l);
    assert_int_equal(l.max_token_ttl, 3600); /* the key store's defaults */
    assert_int_equal(l.skew, 60);
    assert_int_equal(l.jwks_max_age, 300);
    assert_string_equal(revocation_target_kind(POLICY_RESPONSE_REVOKE_TOKEN), "jti");
    assert_string_equal(revocation_target_kind(POLICY_RESPONSE_QUARANTINE), "agent");
    assert_string_equal(revocation_target_kind(POLICY_RESPONSE_KILL_AUDIENCE), "audience");
    assert_string_equal(revocation_target_kind(POLICY_RESPONSE_TAINT_KEY), "key");
}

static void test_token(void **state)
{
    (void)state;
    int64_t now = time(NULL);
    /* an exp the broker verified itself: the event says until then, and
     * Redis keeps the entry at least the longest life (+ skew) */
    struct rev_request r = {.response = POLICY_RESPONSE_REVOKE_TOKEN,
                            .target = "jti-1",
                            .jti_exp = now + 30,
                            .jti_exp_verified = 1,
                            .cause = "operator"};
    struct rev_result res;
    assert_int_equal(revocation_apply(&r, &res), ZTB_OK);
    assert_true(res.changed);
    assert_int_equal(res.exp, now + 30);
    long long ttl = bf_redis_int("TTL ztb:{rev}:jti:%s", "jti-1");
    assert_true(ttl >= 3658 && ttl <= 3660);
    assert_true(bf_audit_has("revocation.applied", "\"jti\":\"jti-1\""));
    /* exp unknown: the longest a token can live */
    r.target = "jti-2";
    r.jti_exp = 0;
    r.jti_exp_verified = 0;
    assert_int_equal(revocation_apply(&r, &res), ZTB_OK);
    assert_true(res.exp >= now + 3600 && res.exp <= now + 3602);
    /* a claimed exp beyond any token's life is cut to the longest life */
    r.target = "jti-far";
    r.jti_exp = now + 86400 * 30;
    assert_int_equal(revocation_apply(&r, &res), ZTB_OK);
    assert_true(res.exp >= now + 3600 && res.exp <= now + 3602);
    /* a verified exp that has passed (+ skew): the broker knows the token is
     * dead everywhere; nothing stored, and it says so */
    r.target = "jti-3";
    r.jti_exp = now - 1000;
    r.jti_exp_verified = 1;
    assert_int_equal(revocation_apply(&r, &res), ZTB_OK);
    assert_false(res.changed);
    assert_non_null(strstr(res.detail, "verified exp has passed"));
    assert_int_equal(bf_redis_int("EXISTS ztb:{rev}:jti:%s", "jti-3"), 0);
}

/* A signal source (or an operator) states a short exp, or one long past:
 * it is not a fact the broker verified. The revocation still lives the
 * longest token life; the claim is kept in the audit line only. */
static void test_token_claimed_exp_not_believed(void **state)
{
    (void)state;
    int64_t now = time(NULL);
    const int64_t claims[] = {now + 5, now - 1000};
    const char *jtis[] = {"jti-short", "jti-past"};
    for (size_t i = 0; i < 2; i++) {
        struct rev_request r = {.response = POLICY_RESPONSE_REVOKE_TOKEN,
                                .target = jtis[i],
                                .jti_exp = claims[i],
                                .cause = "signal",
                                .entry = "replay",
                                .signals = "sig_a,sig_b"};
        struct rev_result res;
        assert_int_equal(revocation_apply(&r, &res), ZTB_OK);
        assert_true(res.changed);
        assert_true(res.exp >= now + 3600 && res.exp <= now + 3602);
        long long ttl = bf_redis_int("TTL ztb:{rev}:jti:%s", jtis[i]);
        if (ttl < 3600)
            fail_msg("claimed exp %+lld s: the revocation lives %lld s",
                     (long long)(claims[i] - now), ttl);
    }
    assert_true(bf_audit_has("revocation.applied", "\"signals\":\"sig_a,sig_b\""));
    assert_true(bf_audit_has("revocation.applied", "\"claimed_exp\""));
}

static void test_agent_responses(void **state)
{
    (void)state;
    assert_int_equal(store_agent_add("bot", 1), ZTB_OK);
    struct rev_request r = {.response = POLICY_RESPONSE_QUARANTINE,
                            .target = "bot",
                            .actor = "operator:uid=0",
                            .cause = "operator",
                            .reason = "ticket 1"};
    struct rev_result res;
    assert_int_equal(revocation_apply(&r, &res), ZTB_OK);
    assert_true(res.changed);
    struct store_agent a;
    assert_int_equal(store_agent_get("bot", &a), ZTB_OK);
    assert_true(a.quarantined);
    assert_true(bf_audit_has("revocation.applied", "\"reason\":\"ticket 1\""));
    r.lift = 1;
    assert_int_equal(revocation_apply(&r, &res), ZTB_OK);
    assert_true(bf_audit_has("revocation.lifted", "\"agent\":\"bot\""));
    assert_int_equal(store_agent_get("bot", &a), ZTB_OK);
    assert_false(a.quarantined);

    r.lift = 0;
    r.response = POLICY_RESPONSE_REQUIRE_APPROVAL;
    assert_int_equal(revocation_apply(&r, &res), ZTB_OK);
    assert_int_equal(store_agent_get("bot", &a), ZTB_OK);
    assert_true(a.approval_required);

    r.response = POLICY_RESPONSE_REVOKE_ALL;
    assert_int_equal(revocation_apply(&r, &res), ZTB_OK);
    assert_int_equal(res.gen, 2);
    assert_true(res.exp > time(NULL) + 3500);
    assert_int_equal(store_agent_get("bot", &a), ZTB_OK);
    assert_int_equal(a.generation, 2);

    /* unknown agent: NOT_FOUND, and the failure is audited */
    r.target = "ghost";
    assert_int_equal(revocation_apply(&r, &res), ZTB_ERR_NOT_FOUND);
    assert_true(bf_audit_has("revocation.failed", "\"agent\":\"ghost\""));
}

static void test_audience(void **state)
{
    (void)state;
    struct rev_request r = {.response = POLICY_RESPONSE_KILL_AUDIENCE, .target = "crm"};
    struct rev_result res;
    assert_int_equal(revocation_apply(&r, &res), ZTB_OK);
    assert_true(res.changed);
    assert_int_equal(res.exp, 0);
    assert_int_equal(bf_redis_int("HEXISTS ztb:{rev}:auds %s", "crm"), 1);
    r.lift = 1;
    assert_int_equal(revocation_apply(&r, &res), ZTB_OK);
    assert_true(res.changed);
    assert_int_equal(bf_redis_int("HEXISTS ztb:{rev}:auds %s", "crm"), 0);
}

static void test_taint_rotates_away(void **state)
{
    (void)state;
    struct keys_state *ks = keys_acquire();
    char kid[ZTB_KID_LEN + 1];
    snprintf(kid, sizeof(kid), "%s", ztb_key_kid(ks->active));
    keys_release(ks);
    struct rev_request r = {.response = POLICY_RESPONSE_TAINT_KEY, .target = kid};
    struct rev_result res;
    int64_t now = time(NULL);
    assert_int_equal(revocation_apply(&r, &res), ZTB_OK);
    assert_true(res.changed);
    assert_true(res.exp >= now + 3600 + 300 && res.exp <= now + 3600 + 302);
    assert_true(res.new_kid[0] != '\0');
    assert_string_not_equal(res.new_kid, kid);
    ks = keys_acquire();
    assert_string_equal(ztb_key_kid(ks->active), res.new_kid);
    assert_null(strstr(ks->jwks, kid)); /* unpublished */
    keys_release(ks);
    long long ttl = bf_redis_int("TTL ztb:{rev}:key:%s:tainted", kid);
    assert_true(ttl >= 3600 + 300 + 58 && ttl <= 3600 + 300 + 60);
    assert_true(bf_audit_has("revocation.applied", "\"new_kid\""));
    /* a kid that is not ours: state only */
    r.target = "not-our-kid";
    assert_int_equal(revocation_apply(&r, &res), ZTB_OK);
    assert_string_equal(res.new_kid, "");
    assert_non_null(strstr(res.detail, "not a key"));
    assert_int_equal(bf_redis_int("EXISTS ztb:{rev}:key:%s:tainted", "not-our-kid"), 1);
}

static void test_refusals(void **state)
{
    (void)state;
    struct rev_result res;
    struct rev_request r = {.response = POLICY_RESPONSE_REVOKE_ALL, .target = NULL};
    assert_int_equal(revocation_apply(NULL, &res), ZTB_ERR_INVALID_ARG);
    assert_int_equal(revocation_apply(&r, &res), ZTB_ERR_INVALID_ARG);
    r.target = "has space";
    assert_int_equal(revocation_apply(&r, &res), ZTB_ERR_INVALID_ARG);
    r.target = "bot";
    r.lift = 1; /* a generation bump cannot be lifted */
    assert_int_equal(revocation_apply(&r, &res), ZTB_ERR_INVALID_ARG);
    r.response = POLICY_RESPONSE_REVOKE_TOKEN;
    assert_int_equal(revocation_apply(&r, &res), ZTB_ERR_INVALID_ARG);
}

static void test_unavailable(void **state)
{
    (void)state;
    zh_redis_stop(&bf_redis, 0);
    struct rev_request r = {.response = POLICY_RESPONSE_QUARANTINE, .target = "bot"};
    struct rev_result res;
    assert_int_equal(revocation_apply(&r, &res), ZTB_ERR_UNAVAILABLE);
    assert_true(bf_audit_has("revocation.failed", "UNAVAILABLE"));
    zh_redis_restart(&bf_redis);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_token),
        cmocka_unit_test(test_token_claimed_exp_not_believed),
        cmocka_unit_test(test_agent_responses),
        cmocka_unit_test(test_audience),
        cmocka_unit_test(test_taint_rotates_away),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_unavailable),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
