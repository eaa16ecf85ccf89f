/* test_thread_cache.c - per-thread key set references follow the epoch, and are released. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "pki/keyset.h"
#include "sdk/src/thread_cache.h"

static ztb_keyset *make_set(void)
{
    ztb_key *k;
    ztb_keyset *ks;
    assert_int_equal(ztb_key_generate(&k), ZTB_OK);
    assert_int_equal(ztb_keyset_new(&k, NULL, 1, &ks), ZTB_OK);
    ztb_key_free(k);
    return ks;
}

static void test_follows_epoch(void **state)
{
    (void)state;
    ztb_keyset_slot slot;
    assert_int_equal(ztb_keyset_slot_init(&slot), ZTB_OK);
    uint64_t owner = thread_cache_new_owner();
    assert_true(thread_cache_new_owner() > owner);
    assert_null(thread_cache_keyset(owner, 1, &slot)); /* empty slot */
    ztb_keyset *a = make_set(), *b = make_set();
    ztb_keyset_slot_set(&slot, a);
    assert_ptr_equal(thread_cache_keyset(owner, 2, &slot), a);
    ztb_keyset_slot_set(&slot, b);
    assert_ptr_equal(thread_cache_keyset(owner, 2, &slot), a); /* same epoch: cached */
    assert_ptr_equal(thread_cache_keyset(owner, 3, &slot), b); /* epoch moved: new set */
    /* other owners do not disturb it, even more of them than slots */
    for (int i = 0; i < THREAD_CACHE_SLOTS + 2; i++)
        assert_ptr_equal(thread_cache_keyset(thread_cache_new_owner(), 1, &slot), b);
    thread_cache_forget(owner);
    ztb_keyset_free(a);
    ztb_keyset_free(b);
    ztb_keyset_slot_destroy(&slot);
    assert_non_null(thread_cache_get());
    /* the claims scratch is made by its first user (ztb_verify), which says
     * how to free it: the cache itself needs nothing of the verifier */
    assert_null(thread_cache_get()->scratch);
    assert_null(thread_cache_get()->scratch_free);
}

static ztb_keyset_slot shared;

static void *worker(void *arg)
{
    (void)arg;
    uint64_t owner = thread_cache_new_owner();
    return (void *)thread_cache_keyset(owner, 1, &shared);
}

static void test_released_at_thread_exit(void **state)
{
    (void)state;
    assert_int_equal(ztb_keyset_slot_init(&shared), ZTB_OK);
    ztb_keyset *a = make_set();
    ztb_keyset_slot_set(&shared, a);
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, worker, NULL);
    for (int i = 0; i < 4; i++) {
        void *got;
        pthread_join(t[i], &got);
        assert_ptr_equal(got, a);
    }
    /* the threads' references went with them: ours and the slot's are the last */
    ztb_keyset_slot_destroy(&shared);
    ztb_keyset_free(a); /* LeakSanitizer would report a reference still held */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_follows_epoch),
        cmocka_unit_test(test_released_at_thread_exit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
