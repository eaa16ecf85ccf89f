/*
 * thread_cache.c - per-thread key set references and scratch (see
 * thread_cache.h).
 *
 * The block is reached through a __thread pointer (fast) and registered
 * under a pthread key only so that its destructor runs at thread exit. The
 * key is deleted when libztb is unloaded, so no thread later runs a
 * destructor that is no longer mapped (blocks of threads still alive then
 * are leaked, as with any library unloaded under running threads).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "sdk/src/thread_cache.h"

static pthread_key_t tc_key;
static pthread_once_t tc_once = PTHREAD_ONCE_INIT;
static int tc_key_ok;
static __thread struct thread_cache *tc;
static _Atomic uint64_t next_owner = 1;

static void tc_destroy(void *p)
{
    struct thread_cache *t = p;
    for (unsigned i = 0; i < THREAD_CACHE_SLOTS; i++)
        ztb_keyset_free(t->slot[i].ks);
    if (t->scratch_free != NULL)
        t->scratch_free(t->scratch);
    free(t);
    tc = NULL;
}

static void tc_init(void)
{
    tc_key_ok = pthread_key_create(&tc_key, tc_destroy) == 0;
}

__attribute__((destructor)) static void tc_unload(void)
{
    if (tc_key_ok) {
        tc_key_ok = 0;
        (void)pthread_key_delete(tc_key);
    }
}

struct thread_cache *thread_cache_get(void)
{
    if (tc != NULL)
        return tc;
    (void)pthread_once(&tc_once, tc_init);
    if (!tc_key_ok)
        return NULL;
    struct thread_cache *t = calloc(1, sizeof(*t));
    if (t == NULL)
        return NULL;
    if (pthread_setspecific(tc_key, t) != 0) {
        free(t);
        return NULL;
    }
    tc = t;
    return t;
}

const ztb_keyset *thread_cache_keyset(uint64_t owner, uint64_t epoch, ztb_keyset_slot *slot)
{
    struct thread_cache *t = thread_cache_get();
    if (t == NULL)
        return NULL;
    struct thread_cache_slot *s = NULL;
    for (unsigned i = 0; i < THREAD_CACHE_SLOTS; i++) {
        if (t->slot[i].owner == owner) {
            s = &t->slot[i];
            if (s->epoch == epoch && s->ks != NULL)
                return s->ks;
            break;
        }
    }
    if (s == NULL) {
        s = &t->slot[t->next];
        t->next = (t->next + 1) % THREAD_CACHE_SLOTS;
    }
    ztb_keyset_free(s->ks);
    s->owner = owner;
    s->epoch = epoch;
    s->ks = ztb_keyset_slot_get(slot);
    return s->ks;
}

void thread_cache_forget(uint64_t owner)
{
    struct thread_cache *t = tc;
    if (t == NULL)
        return;
    for (unsigned i = 0; i < THREAD_CACHE_SLOTS; i++) {
        if (t->slot[i].owner == owner) {
            ztb_keyset_free(t->slot[i].ks);
            t->slot[i].ks = NULL;
            t->slot[i].owner = 0;
        }
    }
}

uint64_t thread_cache_new_owner(void)
{
    return atomic_fetch_add(&next_owner, 1);
}
