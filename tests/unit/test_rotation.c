/*
 * test_rotation.c - the key lifecycle with a fake clock: each transition and
 * each refusal, the invariants, and a long simulated timeline that checks the
 * two promises for every token issued: its key was published a whole JWKS
 * cache period before it signed, and stays published until the token is dead.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "pki/rotation.h"

#define T0 1700000000LL

static ztb_rotation_params params(void)
{
    ztb_rotation_params p;
    ztb_rotation_params_default(&p);
    return p;
}

/* A distinct well-formed kid for index i. */
static const char *kid(int i)
{
    static char buf[8][ZTB_KID_LEN + 1];
    static int slot;
    char *k = buf[slot++ % 8];
    memset(k, 'A' + (i % 26), ZTB_KID_LEN);
    k[0] = (char)('a' + (i / 26) % 26);
    k[ZTB_KID_LEN] = '\0';
    return k;
}

/* One active key A, created and activated at T0. */
static size_t start(ztb_key_meta *keys)
{
    memset(keys, 0, sizeof(ztb_key_meta) * ZTB_ROTATION_MAX_KEYS);
    memcpy(keys[0].kid, kid(0), ZTB_KID_LEN + 1);
    keys[0].state = ZTB_KEY_ACTIVE;
    keys[0].created = T0;
    keys[0].activated = T0;
    return 1;
}

static void test_defaults_and_params(void **state)
{
    (void)state;
    ztb_rotation_params p = params();
    assert_int_equal(p.jwks_cache_s, 300);
    assert_int_equal(p.max_token_ttl_s, 3600);
    assert_int_equal(p.skew_s, 60);
    assert_int_equal(ztb_rotation_params_check(&p), ZTB_OK);
    p.skew_s = -1;
    assert_int_equal(ztb_rotation_params_check(&p), ZTB_ERR_INVALID_ARG);
    p = params();
    p.max_token_ttl_s = 20LL * 366 * 24 * 3600;
    assert_int_equal(ztb_rotation_params_check(&p), ZTB_ERR_INVALID_ARG);
    ztb_key_state s;
    for (int i = 0; i < 4; i++) {
        assert_int_equal(ztb_key_state_parse(ztb_key_state_name((ztb_key_state)i), &s), ZTB_OK);
        assert_int_equal(s, i);
    }
    assert_int_equal(ztb_key_state_parse("Active", &s), ZTB_ERR_MALFORMED);
    assert_string_equal(ztb_key_state_name((ztb_key_state)9), "unknown");
}

static void test_invariants(void **state)
{
    (void)state;
    ztb_key_meta k[ZTB_ROTATION_MAX_KEYS];
    size_t n = start(k);
    assert_int_equal(ztb_rotation_check(k, n), ZTB_OK);
    /* no active key */
    k[0].state = ZTB_KEY_NEXT;
    k[0].activated = 0;
    assert_int_equal(ztb_rotation_check(k, n), ZTB_ERR_MALFORMED);
    /* two active keys */
    n = start(k);
    k[1] = k[0];
    memcpy(k[1].kid, kid(1), ZTB_KID_LEN + 1);
    assert_int_equal(ztb_rotation_check(k, 2), ZTB_ERR_MALFORMED);
    /* two next keys */
    n = start(k);
    assert_int_equal(ztb_rotation_add_next(k, &n, ZTB_ROTATION_MAX_KEYS, kid(1), T0), ZTB_OK);
    k[2] = k[1];
    memcpy(k[2].kid, kid(2), ZTB_KID_LEN + 1);
    assert_int_equal(ztb_rotation_check(k, 3), ZTB_ERR_MALFORMED);
    /* a duplicate kid */
    n = start(k);
    k[1] = k[0];
    k[1].state = ZTB_KEY_RETIRED;
    k[1].deactivated = T0;
    k[1].not_after = T0;
    assert_int_equal(ztb_rotation_check(k, 2), ZTB_ERR_MALFORMED);
    memcpy(k[1].kid, kid(1), ZTB_KID_LEN + 1);
    assert_int_equal(ztb_rotation_check(k, 2), ZTB_OK);
    /* malformed kids: short, or a character outside base64url */
    k[1].kid[5] = '+';
    assert_int_equal(ztb_rotation_check(k, 2), ZTB_ERR_MALFORMED);
    k[1].kid[5] = '\0';
    assert_int_equal(ztb_rotation_check(k, 2), ZTB_ERR_MALFORMED);
    /* times that contradict the state */
    n = start(k);
    k[0].activated = T0 - 1; /* active before it existed */
    assert_int_equal(ztb_rotation_check(k, n), ZTB_ERR_MALFORMED);
    n = start(k);
    k[0].deactivated = T0 + 1; /* active but deactivated */
    assert_int_equal(ztb_rotation_check(k, n), ZTB_ERR_MALFORMED);
    n = start(k);
    k[0].created = -5;
    assert_int_equal(ztb_rotation_check(k, n), ZTB_ERR_MALFORMED);
}

/* The whole lifecycle of one rotation, step by step, with a fake clock. */
static void test_lifecycle(void **state)
{
    (void)state;
    ztb_rotation_params p = params();
    ztb_key_meta k[ZTB_ROTATION_MAX_KEYS], before[ZTB_ROTATION_MAX_KEYS];
    size_t n = start(k);
    int64_t t1 = T0 + 86400;

    assert_int_equal(ztb_rotation_add_next(k, &n, ZTB_ROTATION_MAX_KEYS, kid(1), t1), ZTB_OK);
    assert_int_equal(n, 2);
    assert_int_equal(k[1].state, ZTB_KEY_NEXT);
    assert_true(ztb_rotation_published(&k[1], t1)); /* published at once */
    assert_int_equal(ztb_rotation_check(k, n), ZTB_OK);
    /* a second next key is refused */
    assert_int_equal(ztb_rotation_add_next(k, &n, ZTB_ROTATION_MAX_KEYS, kid(2), t1),
                     ZTB_ERR_STATE);

    /* one second short of a cache period: refused, nothing changed */
    memcpy(before, k, sizeof(k));
    assert_int_equal(ztb_rotation_promotable_at(&k[1], &p), t1 + p.jwks_cache_s);
    assert_int_equal(ztb_rotation_promote(k, n, &p, t1 + p.jwks_cache_s - 1, 0), ZTB_ERR_STATE);
    assert_memory_equal(before, k, sizeof(k));

    int64_t t2 = t1 + p.jwks_cache_s;
    assert_int_equal(ztb_rotation_promote(k, n, &p, t2, 0), ZTB_OK);
    assert_int_equal(k[1].state, ZTB_KEY_ACTIVE);
    assert_int_equal(k[1].activated, t2);
    assert_int_equal(k[0].state, ZTB_KEY_RETIRING);
    assert_int_equal(k[0].deactivated, t2);
    int64_t na = t2 + p.max_token_ttl_s + p.skew_s;
    assert_int_equal(k[0].not_after, na);
    assert_int_equal(ztb_rotation_check(k, n), ZTB_OK);

    /* the retiring key stays published until its last token is dead */
    assert_true(ztb_rotation_published(&k[0], na - 1));
    unsigned c = 99;
    assert_int_equal(ztb_rotation_tick(k, n, &p, na - 1, &c), ZTB_OK);
    assert_int_equal(c, 0);
    assert_int_equal(k[0].state, ZTB_KEY_RETIRING);
    assert_int_equal(ztb_rotation_tick(k, n, &p, na, &c), ZTB_OK);
    assert_int_equal(c, ZTB_ROTATION_RETIRED);
    assert_int_equal(k[0].state, ZTB_KEY_RETIRED);
    assert_false(ztb_rotation_published(&k[0], na));
    assert_true(ztb_rotation_prunable(&k[0], na));
    assert_int_equal(ztb_rotation_check(k, n), ZTB_OK);

    char gone[ZTB_ROTATION_MAX_KEYS][ZTB_KID_LEN + 1];
    assert_int_equal(ztb_rotation_prune(k, &n, na, gone), 1);
    assert_string_equal(gone[0], kid(0));
    assert_int_equal(n, 1);
    assert_string_equal(k[0].kid, kid(1));
    assert_int_equal(ztb_rotation_check(k, n), ZTB_OK);
}

static void test_promote_refusals_and_force(void **state)
{
    (void)state;
    ztb_rotation_params p = params();
    ztb_key_meta k[ZTB_ROTATION_MAX_KEYS];
    size_t n = start(k);
    /* nothing to promote */
    assert_int_equal(ztb_rotation_promote(k, n, &p, T0 + 10000, 1), ZTB_ERR_STATE);
    assert_int_equal(ztb_rotation_add_next(k, &n, ZTB_ROTATION_MAX_KEYS, kid(1), T0 + 10), ZTB_OK);
    /* force skips the cache period, not the clock's order */
    assert_int_equal(ztb_rotation_promote(k, n, &p, T0 + 9, 1), ZTB_ERR_STATE);
    assert_int_equal(ztb_rotation_promote(k, n, &p, T0 + 11, 1), ZTB_OK);
    assert_int_equal(k[1].state, ZTB_KEY_ACTIVE);
    assert_int_equal(ztb_rotation_check(k, n), ZTB_OK);
}

static void test_add_next_refusals(void **state)
{
    (void)state;
    ztb_key_meta k[ZTB_ROTATION_MAX_KEYS];
    size_t n = start(k);
    assert_int_equal(ztb_rotation_add_next(k, &n, ZTB_ROTATION_MAX_KEYS, kid(0), T0),
                     ZTB_ERR_EXISTS);
    assert_int_equal(ztb_rotation_add_next(k, &n, 1, kid(1), T0), ZTB_ERR_TOO_LARGE);
    assert_int_equal(ztb_rotation_add_next(k, &n, ZTB_ROTATION_MAX_KEYS, "short", T0),
                     ZTB_ERR_INVALID_ARG);
    assert_int_equal(n, 1);
}

static void test_retire(void **state)
{
    (void)state;
    ztb_rotation_params p = params();
    ztb_key_meta k[ZTB_ROTATION_MAX_KEYS];
    size_t n = start(k);
    /* the active key cannot be retired: there must always be one */
    assert_int_equal(ztb_rotation_retire(k, n, kid(0), T0 + 1, 0), ZTB_ERR_STATE);
    assert_int_equal(ztb_rotation_retire(k, n, kid(1), T0 + 1, 0), ZTB_ERR_NOT_FOUND);

    /* a next key never signed: retired and unpublished at once */
    assert_int_equal(ztb_rotation_add_next(k, &n, ZTB_ROTATION_MAX_KEYS, kid(1), T0 + 5), ZTB_OK);
    assert_int_equal(ztb_rotation_retire(k, n, kid(1), T0 + 7, 0), ZTB_OK);
    assert_int_equal(k[1].state, ZTB_KEY_RETIRED);
    assert_false(ztb_rotation_published(&k[1], T0 + 7));
    assert_int_equal(ztb_rotation_check(k, n), ZTB_OK);

    /* a retiring key retired by hand stays published until not_after */
    assert_int_equal(ztb_rotation_add_next(k, &n, ZTB_ROTATION_MAX_KEYS, kid(2), T0 + 10), ZTB_OK);
    assert_int_equal(ztb_rotation_promote(k, n, &p, T0 + 10 + p.jwks_cache_s, 0), ZTB_OK);
    int64_t na = k[0].not_after;
    assert_int_equal(ztb_rotation_retire(k, n, kid(0), na - 100, 0), ZTB_OK);
    assert_int_equal(k[0].state, ZTB_KEY_RETIRED);
    assert_int_equal(k[0].not_after, na);
    assert_true(ztb_rotation_published(&k[0], na - 1));
    assert_false(ztb_rotation_prunable(&k[0], na - 1));
    /* retiring it again changes nothing; with force it is unpublished now */
    assert_int_equal(ztb_rotation_retire(k, n, kid(0), na - 50, 0), ZTB_OK);
    assert_int_equal(k[0].not_after, na);
    assert_int_equal(ztb_rotation_retire(k, n, kid(0), na - 50, 1), ZTB_OK);
    assert_int_equal(k[0].not_after, na - 50);
    assert_false(ztb_rotation_published(&k[0], na - 50));
    assert_true(ztb_rotation_prunable(&k[0], na - 50));
    assert_int_equal(ztb_rotation_check(k, n), ZTB_OK);
}

static void test_tick_promotes_when_due(void **state)
{
    (void)state;
    ztb_rotation_params p = params();
    ztb_key_meta k[ZTB_ROTATION_MAX_KEYS];
    size_t n = start(k);
    assert_int_equal(ztb_rotation_add_next(k, &n, ZTB_ROTATION_MAX_KEYS, kid(1), T0 + 1), ZTB_OK);
    unsigned c;
    assert_int_equal(ztb_rotation_tick(k, n, &p, T0 + p.jwks_cache_s, &c), ZTB_OK);
    assert_int_equal(c, 0);
    assert_int_equal(k[1].state, ZTB_KEY_NEXT);
    assert_int_equal(ztb_rotation_tick(k, n, &p, T0 + 1 + p.jwks_cache_s, &c), ZTB_OK);
    assert_int_equal(c, ZTB_ROTATION_PROMOTED);
    assert_int_equal(k[1].state, ZTB_KEY_ACTIVE);
    assert_int_equal(ztb_rotation_check(k, n), ZTB_OK);
}

/* One token the simulation issued. */
struct tok {
    int key; /* index into the kid space, see kid() */
    int64_t iat, exp;
};

/*
 * Simulate 30 days at one-minute steps: a new key is published every few
 * days at an irregular hour, the broker ticks every minute and issues tokens
 * of varying TTL (up to the maximum) with the active key, retired keys get
 * pruned. At every step, for every token still alive to some verifier (now <
 * exp + skew), its key must be published; every token's key must have been
 * published at least jwks_cache_s before the token was signed.
 */
static void test_simulated_timeline(void **state)
{
    (void)state;
    ztb_rotation_params p = params();
    ztb_key_meta k[ZTB_ROTATION_MAX_KEYS];
    size_t n = start(k);
    int next_kid = 1;
    static struct tok toks[100000];
    size_t ntok = 0, lo = 0; /* tokens before lo are dead for every verifier */
    int64_t created_at[512] = {T0};

    for (int64_t now = T0; now < T0 + 30 * 86400; now += 60) {
        /* requests served at now, before the tick: one token of the longest
         * life and one of a varying life, both by the active key */
        int ai = ztb_rotation_find_state(k, n, ZTB_KEY_ACTIVE);
        assert_true(ai >= 0);
        int key = -1;
        for (int i = 0; i < next_kid; i++)
            if (strcmp(kid(i), k[ai].kid) == 0)
                key = i;
        assert_true(key >= 0);
        /* published a whole cache period before signing (the first key excepted) */
        if (key > 0)
            assert_true(created_at[key] + p.jwks_cache_s <= now);
        if (ntok + 2 <= sizeof(toks) / sizeof(toks[0])) {
            int64_t ttl = 1 + (int64_t)(ntok * 7919) % p.max_token_ttl_s;
            toks[ntok++] = (struct tok){key, now, now + p.max_token_ttl_s};
            toks[ntok++] = (struct tok){key, now, now + ttl};
        }

        if ((now - T0) % (3 * 86400 + 7 * 3600) == 3600 &&
            ztb_rotation_find_state(k, n, ZTB_KEY_NEXT) < 0) {
            assert_int_equal(
                ztb_rotation_add_next(k, &n, ZTB_ROTATION_MAX_KEYS, kid(next_kid), now), ZTB_OK);
            created_at[next_kid] = now;
            next_kid++;
        }
        unsigned c;
        assert_int_equal(ztb_rotation_tick(k, n, &p, now, &c), ZTB_OK);
        ztb_rotation_prune(k, &n, now, NULL);
        assert_int_equal(ztb_rotation_check(k, n), ZTB_OK);

        /* every token still alive to some verifier has its key in the JWKS */
        while (lo < ntok && toks[lo].iat + p.max_token_ttl_s + p.skew_s <= now)
            lo++;
        for (size_t t = lo; t < ntok; t++) {
            if (now >= toks[t].exp + p.skew_s)
                continue;
            int ki = ztb_rotation_find_kid(k, n, kid(toks[t].key));
            assert_true(ki >= 0);
            assert_true(ztb_rotation_published(&k[ki], now));
        }
    }
    assert_true(next_kid >= 8); /* the run did rotate, several times */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_and_params),
        cmocka_unit_test(test_invariants),
        cmocka_unit_test(test_lifecycle),
        cmocka_unit_test(test_promote_refusals_and_force),
        cmocka_unit_test(test_add_next_refusals),
        cmocka_unit_test(test_retire),
        cmocka_unit_test(test_tick_promotes_when_due),
        cmocka_unit_test(test_simulated_timeline),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
