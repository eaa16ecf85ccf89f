/* test_idset.c - the compact id set: membership, expiry, growth, rebuild, limits, size. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "sdk/src/idset.h"

static void id_of(uint32_t n, uint8_t id[IDSET_ID_LEN])
{
    memset(id, 0, IDSET_ID_LEN);
    memcpy(id, &n, sizeof(n)); /* sequential ids: the worst case for a weak hash */
}

static void test_add_contains_expire(void **state)
{
    (void)state;
    struct idset s;
    idset_init(&s, 0);
    uint8_t a[IDSET_ID_LEN], b[IDSET_ID_LEN];
    id_of(1, a);
    id_of(2, b);
    assert_false(idset_contains(&s, a, 100));
    int added = -1;
    assert_int_equal(idset_add(&s, a, 200, 100, &added), ZTB_OK);
    assert_int_equal(added, 1);
    assert_true(idset_contains(&s, a, 100));
    assert_true(idset_contains(&s, a, 200)); /* until exp inclusive */
    assert_false(idset_contains(&s, a, 201));
    assert_false(idset_contains(&s, b, 100));
    assert_int_equal(idset_add(&s, a, 150, 100, &added), ZTB_OK);
    assert_int_equal(added, 0);
    assert_true(idset_contains(&s, a, 200)); /* a shorter exp does not shorten it */
    assert_int_equal(idset_add(&s, a, 300, 250, &added), ZTB_OK);
    assert_int_equal(added, 1); /* expired, now live again */
    assert_true(idset_contains(&s, a, 300));
    assert_int_equal(idset_add(&s, b, 100, 100, &added), ZTB_OK); /* already expired: no-op */
    assert_int_equal(added, 0);
    assert_false(idset_contains(&s, b, 100));
    idset_free(&s);
}

static void test_growth_and_rebuild(void **state)
{
    (void)state;
    struct idset s;
    idset_init(&s, 0);
    uint8_t id[IDSET_ID_LEN];
    for (uint32_t i = 0; i < 100000; i++) {
        id_of(i, id);
        assert_int_equal(idset_add(&s, id, i % 2 ? 1000 : 2000, 10, NULL), ZTB_OK);
    }
    assert_int_equal(s.count, 100000);
    assert_true(s.count * 4 <= s.cap * 3);
    for (uint32_t i = 0; i < 100000; i += 997) {
        id_of(i, id);
        assert_true(idset_contains(&s, id, 999));
    }
    /* bytes per entry: under 100 even just after growth */
    assert_true(idset_bytes(&s) / s.count < 100);
    struct idset r;
    assert_int_equal(idset_rebuild(&s, 1500, 0, &r), ZTB_OK);
    assert_int_equal(r.count, 50000);
    for (uint32_t i = 0; i < 1000; i++) {
        id_of(i, id);
        assert_int_equal(idset_contains(&r, id, 1500), i % 2 == 0);
    }
    idset_swap(&s, &r);
    assert_int_equal(s.count, 50000);
    idset_free(&r);
    idset_free(&s);
}

static void test_max_count(void **state)
{
    (void)state;
    struct idset s;
    idset_init(&s, 10);
    uint8_t id[IDSET_ID_LEN];
    for (uint32_t i = 0; i < 10; i++) {
        id_of(i, id);
        assert_int_equal(idset_add(&s, id, 100 + (i < 5 ? 0 : 1000), 10, NULL), ZTB_OK);
    }
    id_of(99, id);
    assert_int_equal(idset_add(&s, id, 2000, 10, NULL), ZTB_ERR_TOO_LARGE);
    /* once some expired, they make room */
    assert_int_equal(idset_add(&s, id, 2000, 500, NULL), ZTB_OK);
    assert_true(idset_contains(&s, id, 500));
    idset_free(&s);
}

static void test_keys(void **state)
{
    (void)state;
    uint8_t a[IDSET_ID_LEN], b[IDSET_ID_LEN], c[IDSET_ID_LEN];
    /* a broker jti (22 base64url characters of 16 bytes) is its bytes */
    assert_int_equal(idset_key("AAECAwQFBgcICQoLDA0ODw", 22, a), ZTB_OK);
    for (int i = 0; i < 16; i++)
        assert_int_equal(a[i], i);
    /* anything else is hashed, and different strings give different keys */
    assert_int_equal(idset_key("some-other-jti", 14, b), ZTB_OK);
    assert_int_equal(idset_key("some-other-jtj", 14, c), ZTB_OK);
    assert_memory_not_equal(b, c, IDSET_ID_LEN);
    assert_int_equal(idset_key("AAECAwQFBgcICQoLDA0ODx", 22, c), ZTB_OK); /* not canonical */
    assert_memory_not_equal(a, c, IDSET_ID_LEN);
    assert_int_equal(idset_key("", 0, c), ZTB_ERR_INVALID_ARG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_add_contains_expire),
        cmocka_unit_test(test_growth_and_rebuild),
        cmocka_unit_test(test_max_count),
        cmocka_unit_test(test_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
