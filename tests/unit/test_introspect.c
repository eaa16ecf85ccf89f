/*
 * test_introspect.c - introspect_token: our signature, typ, iss, times (no
 * skew on exp), and each revocation kind, with a real key store and a real
 * Redis; single-use consumption; fail closed when Redis is gone.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "broker/tokens/introspect.h"
#include "broker/store/store.h"
#include "broker/store/store_rev.h"
#include "broker_fixture.h"
#include "wire/wire.h"

static int setup(void **state)
{
    (void)state;
    bf_setup(NULL);
    assert_int_equal(store_agent_add("bot", 1), ZTB_OK);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    bf_teardown();
    return 0;
}

static ztb_err check(const char *tok, int consume)
{
    return introspect_token(tok, strlen(tok), g_broker.issuer, time(NULL), consume, NULL);
}

static void test_active(void **state)
{
    (void)state;
    char tok[4096], jti[24];
    int64_t now = time(NULL);
    bf_mint("bot", "payments", now, now + 60, 1, 0, "at+jwt", jti, tok, sizeof(tok));
    json_t *c = NULL;
    assert_int_equal(introspect_token(tok, strlen(tok), g_broker.issuer, now, 0, &c), ZTB_OK);
    assert_string_equal(json_string_value(json_object_get(c, "jti")), jti);
    assert_string_equal(json_string_value(json_object_get(c, "aud")), "payments");
    json_decref(c);
}

static void test_not_ours_or_malformed(void **state)
{
    (void)state;
    char tok[4096];
    int64_t now = time(NULL);
    assert_int_not_equal(check("garbage", 0), ZTB_OK);
    assert_int_not_equal(check("", 0), ZTB_OK);
    bf_mint("bot", "payments", now, now + 60, 1, 0, "JWT", NULL, tok, sizeof(tok));
    assert_int_equal(check(tok, 0), ZTB_ERR_TYP);
    /* signed by a key the broker does not have */
    ztb_key *k;
    assert_int_equal(ztb_key_generate(&k), ZTB_OK);
    const char *claims = "{\"iss\":\"" BF_ISSUER "\",\"aud\":\"payments\",\"jti\":\"x\"}";
    ztb_buf b;
    ztb_buf_init(&b, 4096);
    ztb_jws_sign_opts so = {.typ = "at+jwt"};
    assert_int_equal(ztb_jws_sign(k, &so, claims, strlen(claims), &b), ZTB_OK);
    assert_int_equal(check(ztb_buf_cstr(&b), 0), ZTB_ERR_UNKNOWN_KID);
    ztb_buf_free(&b);
    ztb_key_free(k);
    /* ours, but another issuer, or without the ztb claims */
    snprintf(g_broker.issuer, sizeof(g_broker.issuer), "https://other.example");
    bf_mint("bot", "payments", now, now + 60, 1, 0, "at+jwt", NULL, tok, sizeof(tok));
    snprintf(g_broker.issuer, sizeof(g_broker.issuer), BF_ISSUER);
    assert_int_equal(check(tok, 0), ZTB_ERR_ISSUER);
    char big[9000];
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(check(big, 0), ZTB_ERR_TOO_LARGE);
}

static void test_times(void **state)
{
    (void)state;
    char tok[4096];
    int64_t now = time(NULL);
    /* RFC 7662: active means not expired, on the broker's own clock: the key
     * store's 60 s skew is not applied to exp */
    bf_mint("bot", "payments", now - 200, now - 61, 1, 0, "at+jwt", NULL, tok, sizeof(tok));
    assert_int_equal(check(tok, 0), ZTB_ERR_EXPIRED);
    bf_mint("bot", "payments", now - 200, now - 5, 1, 0, "at+jwt", NULL, tok, sizeof(tok));
    assert_int_equal(introspect_token(tok, strlen(tok), g_broker.issuer, now, 0, NULL),
                     ZTB_ERR_EXPIRED);
    bf_mint("bot", "payments", now - 200, now, 1, 0, "at+jwt", NULL, tok, sizeof(tok));
    assert_int_equal(introspect_token(tok, strlen(tok), g_broker.issuer, now, 0, NULL),
                     ZTB_ERR_EXPIRED);
    assert_int_equal(introspect_token(tok, strlen(tok), g_broker.issuer, now - 1, 0, NULL), ZTB_OK);
    /* nbf keeps the skew (a token another replica minted a moment ago) */
    bf_mint("bot", "payments", now + 30, now + 90, 1, 0, "at+jwt", NULL, tok, sizeof(tok));
    assert_int_equal(introspect_token(tok, strlen(tok), g_broker.issuer, now, 0, NULL), ZTB_OK);
    bf_mint("bot", "payments", now + 120, now + 180, 1, 0, "at+jwt", NULL, tok, sizeof(tok));
    assert_int_equal(check(tok, 0), ZTB_ERR_NOT_YET_VALID);
}

static void test_revocations(void **state)
{
    (void)state;
    char tok[4096], jti[24];
    int64_t now = time(NULL);
    int applied;
    bf_mint("bot", "payments", now, now + 60, 1, 0, "at+jwt", jti, tok, sizeof(tok));
    assert_int_equal(store_rev_jti(jti, now + 60, 60, 0, &applied), ZTB_OK);
    assert_int_equal(check(tok, 0), ZTB_ERR_REVOKED);

    bf_mint("bot", "crm", now, now + 60, 1, 0, "at+jwt", NULL, tok, sizeof(tok));
    assert_int_equal(store_rev_audience("crm", 0, 60, NULL), ZTB_OK);
    assert_int_equal(check(tok, 0), ZTB_ERR_AUDIENCE_KILLED);
    assert_int_equal(store_rev_audience("crm", 1, 60, NULL), ZTB_OK);
    assert_int_equal(check(tok, 0), ZTB_OK);

    int64_t gen, exp;
    assert_int_equal(store_rev_agent("bot", 300, 60, &gen, &exp), ZTB_OK);
    assert_int_equal(check(tok, 0), ZTB_ERR_AGENT_REVOKED);
    bf_mint("bot", "crm", now, now + 60, gen, 0, "at+jwt", NULL, tok, sizeof(tok));
    assert_int_equal(check(tok, 0), ZTB_OK);
    bf_mint("ghost", "crm", now, now + 60, 1, 0, "at+jwt", NULL, tok, sizeof(tok));
    assert_int_equal(check(tok, 0), ZTB_ERR_AGENT_REVOKED); /* unknown agent: fail closed */

    bf_mint("bot", "crm", now, now + 60, gen, 0, "at+jwt", NULL, tok, sizeof(tok));
    struct keys_state *ks = keys_acquire();
    assert_int_equal(store_rev_key(ztb_key_kid(ks->active), now + 600, 60), ZTB_OK);
    keys_release(ks);
    assert_int_equal(check(tok, 0), ZTB_ERR_KEY_TAINTED);
}

static void test_single_use(void **state)
{
    (void)state;
    assert_int_equal(store_agent_add("once", 1), ZTB_OK);
    char tok[4096], jti[24];
    int64_t now = time(NULL);
    /* a fresh key store key: the earlier test tainted the active one */
    ztb_rotate_result rr;
    assert_int_equal(keys_rotate(now, 1, &rr), ZTB_OK);
    assert_int_equal(keys_rotate(now, 1, &rr), ZTB_OK);
    bf_mint("once", "payments", now, now + 60, 1, 1, "at+jwt", jti, tok, sizeof(tok));
    assert_int_equal(check(tok, 0), ZTB_OK);
    assert_int_equal(check(tok, 0), ZTB_OK); /* looking does not consume */
    assert_int_equal(check(tok, 1), ZTB_OK);
    assert_int_equal(check(tok, 1), ZTB_ERR_REPLAY);
    assert_int_equal(check(tok, 0), ZTB_ERR_REPLAY);
    /* the verifiers' marker, kept for the remaining life + the largest skew
     * any verifier may have (not the key store's 60 s) */
    long long pttl = bf_redis_int("PTTL " ZTB_WIRE_USED_KEY_FMT, jti);
    assert_true(pttl > (60 + ZTB_WIRE_MAX_SKEW_S - 5) * 1000 &&
                pttl <= (60 + ZTB_WIRE_MAX_SKEW_S) * 1000);
    /* a token that is not single-use is never consumed */
    bf_mint("once", "payments", now, now + 60, 1, 0, "at+jwt", jti, tok, sizeof(tok));
    assert_int_equal(check(tok, 1), ZTB_OK);
    assert_int_equal(check(tok, 1), ZTB_OK);
    assert_int_equal(bf_redis_int("EXISTS ztb:used:%s", jti), 0);
}

static void test_unavailable(void **state)
{
    (void)state;
    char tok[4096];
    int64_t now = time(NULL);
    bf_mint("once", "payments", now, now + 60, 1, 0, "at+jwt", NULL, tok, sizeof(tok));
    zh_redis_stop(&bf_redis, 0);
    assert_int_equal(check(tok, 0), ZTB_ERR_UNAVAILABLE);
    zh_redis_restart(&bf_redis);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_active),     cmocka_unit_test(test_not_ours_or_malformed),
        cmocka_unit_test(test_times),      cmocka_unit_test(test_revocations),
        cmocka_unit_test(test_single_use), cmocka_unit_test(test_unavailable),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
