/* test_strmap.c - the immutable string map: hits, misses, duplicates, limits. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "policy/strmap.h"

static void test_put_get(void **state)
{
    (void)state;
    ztb_arena a;
    ztb_arena_init(&a, 1 << 20);
    policy_strmap m;
    assert_int_equal(policy_strmap_init(&m, &a, 4), ZTB_OK);
    assert_int_equal(policy_strmap_put(&m, "billing-bot", 11, 7, NULL), ZTB_OK);
    assert_int_equal(policy_strmap_put(&m, "", 0, 9, NULL), ZTB_OK); /* empty key is a key */
    uint32_t v = 0, old = 0;
    assert_true(policy_strmap_get(&m, "billing-bot", 11, &v));
    assert_int_equal(v, 7);
    assert_true(policy_strmap_get(&m, "", 0, &v));
    assert_int_equal(v, 9);
    assert_false(policy_strmap_get(&m, "billing-bo", 10, &v));
    assert_false(policy_strmap_get(&m, "billing-bot\0x", 13, &v)); /* length counts */
    assert_false(policy_strmap_get(&m, NULL, 3, &v));
    assert_int_equal(policy_strmap_put(&m, "billing-bot", 11, 8, &old), ZTB_ERR_EXISTS);
    assert_int_equal(old, 7);
    assert_true(policy_strmap_get(&m, "billing-bot", 11, &v));
    assert_int_equal(v, 7); /* unchanged */
    assert_int_equal(m.count, 2);
    ztb_arena_free(&a);
}

static void test_limit(void **state)
{
    (void)state;
    ztb_arena a;
    ztb_arena_init(&a, 1 << 20);
    policy_strmap m;
    assert_int_equal(policy_strmap_init(&m, &a, 2), ZTB_OK);
    assert_int_equal(policy_strmap_put(&m, "a", 1, 0, NULL), ZTB_OK);
    assert_int_equal(policy_strmap_put(&m, "b", 1, 1, NULL), ZTB_OK);
    assert_int_equal(policy_strmap_put(&m, "c", 1, 2, NULL), ZTB_ERR_TOO_LARGE);
    /* never more than half full: probing always ends */
    assert_true(m.mask + 1 >= 2 * m.limit);
    assert_int_equal(policy_strmap_init(&m, &a, (1u << 30) + 1), ZTB_ERR_TOO_LARGE);
    /* an empty (uninitialised) map answers no */
    policy_strmap z;
    memset(&z, 0, sizeof(z));
    uint32_t v;
    assert_false(policy_strmap_get(&z, "a", 1, &v));
    assert_int_equal(policy_strmap_put(&z, "a", 1, 0, NULL), ZTB_ERR_INVALID_ARG);
    ztb_arena_free(&a);
}

static void test_many_keys(void **state)
{
    (void)state;
    ztb_arena a;
    ztb_arena_init(&a, 16 << 20);
    policy_strmap m;
    enum { N = 20000 };
    assert_int_equal(policy_strmap_init(&m, &a, N), ZTB_OK);
    for (uint32_t i = 0; i < N; i++) {
        char *k = ztb_arena_printf(&a, "agent-%05u", i);
        assert_int_equal(policy_strmap_put(&m, k, strlen(k), i * 3, NULL), ZTB_OK);
    }
    for (uint32_t i = 0; i < N; i++) {
        char k[32];
        uint32_t v;
        snprintf(k, sizeof(k), "agent-%05u", i);
        assert_true(policy_strmap_get(&m, k, strlen(k), &v));
        assert_int_equal(v, i * 3);
        snprintf(k, sizeof(k), "agent-%05u", i + N);
        assert_false(policy_strmap_get(&m, k, strlen(k), &v));
    }
    ztb_arena_free(&a);
}

static void test_hash_is_stable(void **state)
{
    (void)state;
    /* FNV-1a 64 of "" is the offset basis, folded */
    uint64_t h = 0xcbf29ce484222325ull;
    assert_int_equal(policy_strmap_hash("", 0), h ^ (h >> 32));
    assert_int_not_equal(policy_strmap_hash("a", 1), policy_strmap_hash("b", 1));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_put_get),
        cmocka_unit_test(test_limit),
        cmocka_unit_test(test_many_keys),
        cmocka_unit_test(test_hash_is_stable),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
