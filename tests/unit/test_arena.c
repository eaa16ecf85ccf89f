/* test_arena.c - bump allocator: alignment, zeroing, hard limit, sticky errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/arena.h"

static void test_alloc_aligned_zeroed_distinct(void **state)
{
    (void)state;
    ztb_arena a;
    ztb_arena_init(&a, 1 << 20);
    unsigned char *prev = NULL;
    for (size_t n = 0; n < 300; n++) {
        unsigned char *p = ztb_arena_alloc(&a, n);
        assert_non_null(p);
        assert_int_equal((uintptr_t)p % 16, 0);
        for (size_t i = 0; i < n; i++)
            assert_int_equal(p[i], 0);
        memset(p, 0xab, n); /* ASan would catch an overlap with the next block */
        assert_ptr_not_equal(p, prev);
        prev = p;
    }
    assert_int_equal(ztb_arena_error(&a), ZTB_OK);
    ztb_arena_free(&a);
    assert_null(a.head);
    assert_int_equal(a.total, 0);
}

static void test_large_block_gets_own_chunk(void **state)
{
    (void)state;
    ztb_arena a;
    ztb_arena_init(&a, 1 << 22);
    char *small = ztb_arena_alloc(&a, 10);
    char *big = ztb_arena_alloc(&a, 200000);
    assert_non_null(small);
    assert_non_null(big);
    memset(big, 1, 200000);
    char *after = ztb_arena_alloc(&a, 10);
    assert_non_null(after);
    ztb_arena_free(&a);
}

static void test_limit_is_hard_and_sticky(void **state)
{
    (void)state;
    ztb_arena a;
    ztb_arena_init(&a, 1000);
    assert_non_null(ztb_arena_alloc(&a, 100));
    assert_true(a.total <= 1000);
    assert_null(ztb_arena_alloc(&a, 2000));
    assert_int_equal(ztb_arena_error(&a), ZTB_ERR_TOO_LARGE);
    /* sticky: even a tiny request fails now */
    assert_null(ztb_arena_alloc(&a, 1));
    assert_null(ztb_arena_strdup(&a, "x"));
    ztb_arena_free(&a);
    /* after free the arena is usable again with the same limit */
    assert_int_equal(ztb_arena_error(&a), ZTB_OK);
    assert_non_null(ztb_arena_alloc(&a, 10));
    ztb_arena_free(&a);
}

static void test_calloc_overflow(void **state)
{
    (void)state;
    ztb_arena a;
    ztb_arena_init(&a, 1 << 20);
    assert_null(ztb_arena_calloc(&a, SIZE_MAX / 2, 4));
    assert_int_equal(ztb_arena_error(&a), ZTB_ERR_TOO_LARGE);
    ztb_arena_free(&a);
    uint32_t *v = ztb_arena_calloc(&a, 100, sizeof(uint32_t));
    assert_non_null(v);
    assert_int_equal(v[99], 0);
    ztb_arena_free(&a);
}

static void test_strings(void **state)
{
    (void)state;
    ztb_arena a;
    ztb_arena_init(&a, 1 << 20);
    char *s = ztb_arena_strdup(&a, "billing-bot");
    assert_string_equal(s, "billing-bot");
    char *m = ztb_arena_memdup(&a, "ab\0cd", 5);
    assert_memory_equal(m, "ab\0cd", 5);
    assert_int_equal(m[5], '\0');
    char *e = ztb_arena_memdup(&a, NULL, 0);
    assert_non_null(e);
    assert_string_equal(e, "");
    char *f = ztb_arena_printf(&a, "rule \"%s\" #%d", "x", 7);
    assert_string_equal(f, "rule \"x\" #7");
    assert_null(ztb_arena_strdup(&a, NULL));
    assert_int_equal(ztb_arena_error(&a), ZTB_ERR_INVALID_ARG);
    ztb_arena_free(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_alloc_aligned_zeroed_distinct),
        cmocka_unit_test(test_large_block_gets_own_chunk),
        cmocka_unit_test(test_limit_is_hard_and_sticky),
        cmocka_unit_test(test_calloc_overflow),
        cmocka_unit_test(test_strings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
