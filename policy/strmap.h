/*
 * strmap.h - an immutable hash map from strings to numbers.
 *
 * The compiled policy resolves names to indexes on every evaluation (agent
 * name -> agent, audience -> bucket, service -> rule list). Those tables are
 * built once at load and then only read, from many threads, so this map is
 * open addressing with linear probing in one flat array taken from an arena:
 * fixed size chosen at init (at most half full), no deletion, no rehash.
 *
 * Keys are the policy's own strings (operator-written), so probe chains are
 * fixed at build; an untrusted lookup key only costs its hash plus one probe
 * chain. Lookups never allocate and are safe from any number of threads once
 * building is done.
 */
#ifndef ZTB_POLICY_STRMAP_H
#define ZTB_POLICY_STRMAP_H

#include <stddef.h>
#include <stdint.h>

#include <ztb/error.h>

#include "common/arena.h"

/*
 * Slots are 8 bytes (32 bits of hash, 1 + entry index; 0 is empty) so the
 * probed array stays small and cache-resident; the keys live in a dense
 * entry array beside it.
 */
struct policy_strmap_slot {
    uint32_t hash;
    uint32_t entry; /* 0: empty slot; else 1 + index into entries */
};

struct policy_strmap_entry {
    const char *key;
    uint32_t len;
    uint32_t value;
};

typedef struct policy_strmap {
    struct policy_strmap_slot *slots;
    struct policy_strmap_entry *entries;
    uint32_t mask; /* slots - 1 (a power of two minus one) */
    uint32_t count;
    uint32_t limit; /* most keys accepted */
} policy_strmap;

/* The hash used (FNV-1a, 64 bit); exposed for tests. */
uint64_t policy_strmap_hash(const void *key, size_t len);

/*
 * Size m for at most max_keys keys, with storage from a. NOMEM/TOO_LARGE from
 * the arena; TOO_LARGE if max_keys is over 2^30.
 */
ztb_err policy_strmap_init(policy_strmap *m, ztb_arena *a, uint32_t max_keys);

/*
 * Add key (len bytes; the bytes are borrowed and must live as long as the
 * map, e.g. in the same arena) -> value. EXISTS if the key is already there
 * (then *existing, if not NULL, is its value and nothing changes); TOO_LARGE
 * if the map already holds max_keys keys.
 */
ztb_err policy_strmap_put(policy_strmap *m, const char *key, size_t len, uint32_t value,
                          uint32_t *existing);

/* 1 and *value set if key is present, else 0. Thread-safe after building. */
int policy_strmap_get(const policy_strmap *m, const char *key, size_t len, uint32_t *value);

#endif /* ZTB_POLICY_STRMAP_H */
