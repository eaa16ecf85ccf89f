/*
 * keyset.h - the public keys a verifier trusts, by kid.
 *
 * A ztb_keyset is an immutable, reference-counted set of keys, each under a
 * kid and pinned to its key's algorithm. Verifiers build one (from the key
 * store, or from a JWKS with ztb_jwks_parse) and share it read-only between
 * threads; when the JWKS changes they build a new one and swap it in. A
 * thread that still holds the old one keeps it alive until it lets go.
 *
 * ztb_keyset_slot is the swap point: a holder of the current set that
 * readers take a reference from and a refresher replaces. It uses a mutex for
 * the few nanoseconds of the pointer swap and reference count; readers that
 * need more than that can keep their reference across many verifications.
 *
 * Lookup compares kids exactly (they are public, so not in constant time)
 * and never allocates, so an unknown kid is rejected cheaply.
 */
#ifndef ZTB_PKI_KEYSET_H
#define ZTB_PKI_KEYSET_H

#include <pthread.h>
#include <stddef.h>

#include <ztb/error.h>

#include "pki/key.h"

/* Most keys in one set, and longest kid (bytes). */
#define ZTB_KEYSET_MAX     64
#define ZTB_KEYSET_KID_MAX 128

typedef struct ztb_keyset ztb_keyset;

/*
 * A new set of n keys (n may be 0). kids[i] names keys[i]; with kids NULL
 * each key goes under its thumbprint kid. The set takes its own reference to
 * every key. EXISTS if two kids are equal, TOO_LARGE beyond ZTB_KEYSET_MAX
 * keys, INVALID_ARG for an empty or over-long kid. *out has one reference.
 */
ztb_err ztb_keyset_new(ztb_key *const *keys, const char *const *kids, size_t n, ztb_keyset **out);

/* Add a reference (ks may be NULL) and return ks. Thread-safe. */
ztb_keyset *ztb_keyset_ref(ztb_keyset *ks);

/* Drop a reference; the last one releases the keys. ks may be NULL. */
void ztb_keyset_free(ztb_keyset *ks);

size_t ztb_keyset_count(const ztb_keyset *ks);

/* The i-th key (borrowed, valid while ks is) and its kid. */
const ztb_key *ztb_keyset_at(const ztb_keyset *ks, size_t i);
const char *ztb_keyset_kid_at(const ztb_keyset *ks, size_t i);

/* The key under kid[0..kid_len), borrowed, or NULL. Never allocates. */
const ztb_key *ztb_keyset_find(const ztb_keyset *ks, const char *kid, size_t kid_len);

typedef struct ztb_keyset_slot {
    pthread_mutex_t mu;
    ztb_keyset *ks;
} ztb_keyset_slot;

/* An empty slot. */
ztb_err ztb_keyset_slot_init(ztb_keyset_slot *s);

/* A new reference to the current set (NULL if none was set). Thread-safe. */
ztb_keyset *ztb_keyset_slot_get(ztb_keyset_slot *s);

/* Make ks current (the slot takes its own reference; ks may be NULL). */
void ztb_keyset_slot_set(ztb_keyset_slot *s, ztb_keyset *ks);

/* Release the slot's reference. No thread may use the slot afterwards. */
void ztb_keyset_slot_destroy(ztb_keyset_slot *s);

#endif /* ZTB_PKI_KEYSET_H */
