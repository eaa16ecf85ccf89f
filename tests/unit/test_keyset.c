/*
 * test_keyset.c - key sets by kid: lookup, refusals, reference counting,
 * and the swap slot under concurrent readers (run under ASan to catch a
 * set freed while a reader still uses it).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <pthread.h>

#include "pki/keyset.h"

static void test_lookup(void **state)
{
    (void)state;
    ztb_key *k[3];
    for (int i = 0; i < 3; i++)
        assert_int_equal(ztb_key_generate(&k[i]), ZTB_OK);
    ztb_keyset *ks = NULL;
    assert_int_equal(ztb_keyset_new(k, NULL, 3, &ks), ZTB_OK);
    assert_int_equal(ztb_keyset_count(ks), 3);
    for (int i = 0; i < 3; i++) {
        const char *kid = ztb_key_kid(k[i]);
        assert_ptr_equal(ztb_keyset_find(ks, kid, strlen(kid)), k[i]);
        assert_string_equal(ztb_keyset_kid_at(ks, (size_t)i), kid);
        assert_ptr_equal(ztb_keyset_at(ks, (size_t)i), k[i]);
        /* a prefix, a longer string, or one byte changed are other kids */
        assert_null(ztb_keyset_find(ks, kid, strlen(kid) - 1));
        char longer[64];
        snprintf(longer, sizeof(longer), "%sx", kid);
        assert_null(ztb_keyset_find(ks, longer, strlen(longer)));
        char changed[64];
        strcpy(changed, kid);
        changed[5] ^= 1;
        assert_null(ztb_keyset_find(ks, changed, strlen(changed)));
    }
    assert_null(ztb_keyset_at(ks, 3));
    assert_null(ztb_keyset_find(ks, NULL, 0));
    assert_null(ztb_keyset_find(NULL, "x", 1));
    /* the set holds its own references */
    for (int i = 0; i < 3; i++)
        ztb_key_free(k[i]);
    assert_int_equal(strlen(ztb_key_kid(ztb_keyset_at(ks, 2))), ZTB_KID_LEN);
    assert_ptr_equal(ztb_keyset_ref(ks), ks);
    ztb_keyset_free(ks);
    ztb_keyset_free(ks);
    ztb_keyset_free(NULL);
}

static void test_named_and_refusals(void **state)
{
    (void)state;
    ztb_key *k[2];
    for (int i = 0; i < 2; i++)
        assert_int_equal(ztb_key_generate(&k[i]), ZTB_OK);
    ztb_keyset *ks = NULL;
    const char *names[] = {"one", "two"};
    assert_int_equal(ztb_keyset_new(k, names, 2, &ks), ZTB_OK);
    assert_ptr_equal(ztb_keyset_find(ks, "two", 3), k[1]);
    ztb_keyset_free(ks);
    const char *dup[] = {"same", "same"};
    assert_int_equal(ztb_keyset_new(k, dup, 2, &ks), ZTB_ERR_EXISTS);
    ztb_key *twice[] = {k[0], k[0]};
    assert_int_equal(ztb_keyset_new(twice, NULL, 2, &ks), ZTB_ERR_EXISTS);
    const char *empty[] = {"", "x"};
    assert_int_equal(ztb_keyset_new(k, empty, 2, &ks), ZTB_ERR_INVALID_ARG);
    char longkid[ZTB_KEYSET_KID_MAX + 2];
    memset(longkid, 'a', sizeof(longkid) - 1);
    longkid[sizeof(longkid) - 1] = '\0';
    const char *lng[] = {longkid, "x"};
    assert_int_equal(ztb_keyset_new(k, lng, 2, &ks), ZTB_ERR_INVALID_ARG);
    ztb_key *many[ZTB_KEYSET_MAX + 1];
    for (size_t i = 0; i < ZTB_KEYSET_MAX + 1; i++)
        many[i] = k[0];
    assert_int_equal(ztb_keyset_new(many, NULL, ZTB_KEYSET_MAX + 1, &ks), ZTB_ERR_TOO_LARGE);
    /* an empty set is a set (every kid unknown) */
    assert_int_equal(ztb_keyset_new(NULL, NULL, 0, &ks), ZTB_OK);
    assert_null(ztb_keyset_find(ks, "x", 1));
    ztb_keyset_free(ks);
    for (int i = 0; i < 2; i++)
        ztb_key_free(k[i]);
}

struct reader {
    ztb_keyset_slot *slot;
    atomic_int *stop; /* the main thread sets it; the readers poll it */
    long reads;
    int bad;
};

static void *read_loop(void *arg)
{
    struct reader *r = arg;
    while (!atomic_load(r->stop)) {
        ztb_keyset *ks = ztb_keyset_slot_get(r->slot);
        if (ks == NULL || ztb_keyset_count(ks) != 1) {
            r->bad++;
        } else {
            const ztb_key *k = ztb_keyset_at(ks, 0);
            const char *kid = ztb_key_kid(k);
            if (ztb_keyset_find(ks, kid, strlen(kid)) != k)
                r->bad++;
        }
        ztb_keyset_free(ks);
        r->reads++;
    }
    return NULL;
}

static void test_slot_swap_under_readers(void **state)
{
    (void)state;
    ztb_keyset_slot slot;
    assert_int_equal(ztb_keyset_slot_init(&slot), ZTB_OK);
    assert_null(ztb_keyset_slot_get(&slot));
    ztb_key *k = NULL;
    ztb_keyset *ks = NULL;
    assert_int_equal(ztb_key_generate(&k), ZTB_OK);
    assert_int_equal(ztb_keyset_new(&k, NULL, 1, &ks), ZTB_OK);
    ztb_key_free(k);
    ztb_keyset_slot_set(&slot, ks);
    ztb_keyset_free(ks);

    atomic_int stop = 0;
    enum { R = 3 };
    pthread_t th[R];
    struct reader r[R];
    for (int i = 0; i < R; i++) {
        r[i] = (struct reader){&slot, &stop, 0, 0};
        assert_int_equal(pthread_create(&th[i], NULL, read_loop, &r[i]), 0);
    }
    /* swap in fresh sets while the readers read; each old set dies as its last reader lets go */
    for (int i = 0; i < 200; i++) {
        assert_int_equal(ztb_key_generate(&k), ZTB_OK);
        assert_int_equal(ztb_keyset_new(&k, NULL, 1, &ks), ZTB_OK);
        ztb_key_free(k);
        ztb_keyset_slot_set(&slot, ks);
        ztb_keyset_free(ks);
    }
    atomic_store(&stop, 1);
    for (int i = 0; i < R; i++) {
        assert_int_equal(pthread_join(th[i], NULL), 0);
        assert_int_equal(r[i].bad, 0);
        assert_true(r[i].reads > 0);
    }
    ztb_keyset_slot_set(&slot, NULL);
    assert_null(ztb_keyset_slot_get(&slot));
    ztb_keyset_slot_destroy(&slot);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lookup),
        cmocka_unit_test(test_named_and_refusals),
        cmocka_unit_test(test_slot_swap_under_readers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
