/*
 * keyset.c - immutable kid -> key sets and the slot that swaps them (see
 * keyset.h). Entries sit in one array with their kid copied inline; lookup is
 * a linear scan that compares lengths first (sets hold a handful of keys).
 * A set never changes after it is made, so readers need no lock.
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "common/guard.h"
#include "pki/keyset.h"

struct entry {
    ztb_key *key;
    size_t kid_len;
    char kid[ZTB_KEYSET_KID_MAX + 1];
};

struct ztb_keyset {
    atomic_uint refs;
    size_t n;
    struct entry e[]; /* n entries */
};

ztb_err ztb_keyset_new(ztb_key *const *keys, const char *const *kids, size_t n, ztb_keyset **out)
{
    ZTB_ENSURE(out != NULL && (keys != NULL || n == 0), ZTB_ERR_INVALID_ARG);
    ZTB_ENSURE(n <= ZTB_KEYSET_MAX, ZTB_ERR_TOO_LARGE);
    ztb_keyset *ks = calloc(1, sizeof(*ks) + n * sizeof(struct entry));
    ZTB_ENSURE(ks != NULL, ZTB_ERR_NOMEM);
    atomic_init(&ks->refs, 1);
    ztb_err rv = ZTB_OK;
    for (size_t i = 0; i < n; i++) {
        ZTB_CHECK(rv, keys[i] != NULL, ZTB_ERR_INVALID_ARG);
        const char *kid = kids != NULL ? kids[i] : ztb_key_kid(keys[i]);
        ZTB_CHECK(rv, kid != NULL, ZTB_ERR_INVALID_ARG);
        size_t len = strlen(kid);
        ZTB_CHECK(rv, len > 0 && len <= ZTB_KEYSET_KID_MAX, ZTB_ERR_INVALID_ARG);
        ZTB_CHECK(rv, ztb_keyset_find(ks, kid, len) == NULL, ZTB_ERR_EXISTS);
        struct entry *e = &ks->e[ks->n++];
        e->key = ztb_key_ref(keys[i]);
        e->kid_len = len;
        memcpy(e->kid, kid, len + 1);
    }
    *out = ks;
    ks = NULL;
out:
    ztb_keyset_free(ks);
    return rv;
}

ztb_keyset *ztb_keyset_ref(ztb_keyset *ks)
{
    if (ks != NULL)
        atomic_fetch_add_explicit(&ks->refs, 1, memory_order_relaxed);
    return ks;
}

void ztb_keyset_free(ztb_keyset *ks)
{
    if (ks == NULL)
        return;
    if (atomic_fetch_sub_explicit(&ks->refs, 1, memory_order_acq_rel) != 1)
        return;
    for (size_t i = 0; i < ks->n; i++)
        ztb_key_free(ks->e[i].key);
    free(ks);
}

size_t ztb_keyset_count(const ztb_keyset *ks)
{
    return ks != NULL ? ks->n : 0;
}

const ztb_key *ztb_keyset_at(const ztb_keyset *ks, size_t i)
{
    return ks != NULL && i < ks->n ? ks->e[i].key : NULL;
}

const char *ztb_keyset_kid_at(const ztb_keyset *ks, size_t i)
{
    return ks != NULL && i < ks->n ? ks->e[i].kid : NULL;
}

const ztb_key *ztb_keyset_find(const ztb_keyset *ks, const char *kid, size_t kid_len)
{
    if (ks == NULL || kid == NULL)
        return NULL;
    for (size_t i = 0; i < ks->n; i++) {
        const struct entry *e = &ks->e[i];
        if (e->kid_len == kid_len && memcmp(e->kid, kid, kid_len) == 0)
            return e->key;
    }
    return NULL;
}

ztb_err ztb_keyset_slot_init(ztb_keyset_slot *s)
{
    ZTB_ENSURE(s != NULL, ZTB_ERR_INVALID_ARG);
    s->ks = NULL;
    ZTB_ENSURE(pthread_mutex_init(&s->mu, NULL) == 0, ZTB_ERR_NOMEM);
    return ZTB_OK;
}

ztb_keyset *ztb_keyset_slot_get(ztb_keyset_slot *s)
{
    pthread_mutex_lock(&s->mu);
    ztb_keyset *ks = ztb_keyset_ref(s->ks);
    pthread_mutex_unlock(&s->mu);
    return ks;
}

void ztb_keyset_slot_set(ztb_keyset_slot *s, ztb_keyset *ks)
{
    ztb_keyset_ref(ks);
    pthread_mutex_lock(&s->mu);
    ztb_keyset *old = s->ks;
    s->ks = ks;
    pthread_mutex_unlock(&s->mu);
    ztb_keyset_free(old); /* outside the lock: may free keys */
}

void ztb_keyset_slot_destroy(ztb_keyset_slot *s)
{
    if (s == NULL)
        return;
    ztb_keyset_free(s->ks);
    s->ks = NULL;
    pthread_mutex_destroy(&s->mu);
}
