/*
 * thread_cache.h - per-thread state of the verification path.
 *
 * One verifier is shared by all of a gateway's threads, and verifying must
 * not take a shared lock per token. Each thread therefore keeps, in one
 * block allocated on its first verification:
 *
 *   - a reference to the key set each verifier it used had current (a few
 *     slots, by verifier id), with the verifier's key-set epoch when taken:
 *     while the epoch is unchanged the thread uses its reference without
 *     touching the shared slot; when a refresh bumps it, the thread takes
 *     the new set once and drops the old one;
 *   - scratch storage for a token's header, payload and claims when the
 *     caller does not want the claims, so the reject path allocates nothing
 *     and the stack stays small.
 *
 * The block and its references are released when the thread exits (a
 * pthread key destructor), or for one verifier at once with
 * thread_cache_forget() (ztb_verifier_free on the calling thread).
 */
#ifndef ZTB_SDK_THREAD_CACHE_H
#define ZTB_SDK_THREAD_CACHE_H

#include <stdint.h>

#include "pki/keyset.h"

#define THREAD_CACHE_SLOTS 4

struct thread_cache_slot {
    uint64_t owner; /* verifier id, 0: empty */
    uint64_t epoch;
    ztb_keyset *ks;
};

struct ztb_claims;

struct thread_cache {
    struct thread_cache_slot slot[THREAD_CACHE_SLOTS];
    unsigned next;                              /* round-robin victim */
    struct ztb_claims *scratch;                 /* made by its first user (verifier.c) */
    void (*scratch_free)(struct ztb_claims *c); /* ... which says how to free it */
};

/* The calling thread's cache, created on first use; NULL if out of memory. */
struct thread_cache *thread_cache_get(void);

/*
 * The key set this thread holds for owner at epoch, taking a new reference
 * from slot when the thread's is missing or older (borrowed: valid until
 * this thread's next call for the same owner). NULL if the slot is empty or
 * out of memory.
 */
const ztb_keyset *thread_cache_keyset(uint64_t owner, uint64_t epoch, ztb_keyset_slot *slot);

/* Drop this thread's reference for owner (if any). */
void thread_cache_forget(uint64_t owner);

/* A process-unique, never-reused id for a new owner. */
uint64_t thread_cache_new_owner(void);

#endif /* ZTB_SDK_THREAD_CACHE_H */
