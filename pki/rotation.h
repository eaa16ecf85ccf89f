/*
 * rotation.h - the signing key lifecycle, as pure functions over metadata.
 *
 * A key moves next -> active -> retiring -> retired:
 *
 *   next      generated and published in the JWKS; signs nothing yet. It may
 *             become active once it has been published for a whole JWKS cache
 *             period, so every verifier has it before the first token it signs.
 *   active    the one key that signs. There is always exactly one.
 *   retiring  signed until `deactivated`; still published until `not_after`
 *             = deactivated + max token TTL + skew, when the last token it
 *             may have signed is dead everywhere.
 *   retired   done. Still published while now < not_after (a key retired by
 *             hand may have live tokens), then prunable: removed from disk.
 *
 * Nothing here does I/O or reads a clock: every function takes `now`, so the
 * tests drive the whole lifecycle with a fake clock, and keystore.c applies
 * these transitions to a copy of its metadata before writing it atomically.
 * A transition either succeeds completely or leaves the list unchanged.
 * No transition may ever leave zero or two active keys, let a key sign
 * before it was published for a whole JWKS cache period (unless forced), or
 * unpublish a key before not_after (unless forced).
 */
#ifndef ZTB_PKI_ROTATION_H
#define ZTB_PKI_ROTATION_H

#include <stddef.h>
#include <stdint.h>

#include <ztb/error.h>

#include "pki/key.h"

/* Defaults for ztb_rotation_params (seconds). */
#define ZTB_ROTATION_DEFAULT_JWKS_CACHE_S    300 /* verifiers refresh the JWKS at least this often */
#define ZTB_ROTATION_DEFAULT_MAX_TOKEN_TTL_S 3600 /* no token lives longer than this */
#define ZTB_ROTATION_DEFAULT_SKEW_S          60   /* clock skew verifiers tolerate */

/* Most keys a store holds (all states together). */
#define ZTB_ROTATION_MAX_KEYS 32

typedef enum ztb_key_state {
    ZTB_KEY_NEXT = 0,
    ZTB_KEY_ACTIVE = 1,
    ZTB_KEY_RETIRING = 2,
    ZTB_KEY_RETIRED = 3,
} ztb_key_state;

typedef struct ztb_rotation_params {
    int64_t jwks_cache_s;    /* longest time a verifier may cache the JWKS */
    int64_t max_token_ttl_s; /* longest life of a token the broker signs */
    int64_t skew_s;          /* clock skew allowed by verifiers */
} ztb_rotation_params;

typedef struct ztb_key_meta {
    char kid[ZTB_KID_LEN + 1];
    ztb_key_state state;
    int64_t created;     /* generated and published */
    int64_t activated;   /* became active; 0 if never */
    int64_t deactivated; /* stopped signing (or was retired unused); 0 if not yet */
    int64_t not_after;   /* every token it signed has expired, skew included; 0 if not yet known */
} ztb_key_meta;

/* What ztb_rotation_tick changed (bits). */
#define ZTB_ROTATION_PROMOTED 0x1u /* next became active */
#define ZTB_ROTATION_RETIRED  0x2u /* a retiring key became retired */

/* Fill p with the defaults above. */
void ztb_rotation_params_default(ztb_rotation_params *p);

/* INVALID_ARG unless every duration is >= 0 and not absurdly large (10 years). */
ztb_err ztb_rotation_params_check(const ztb_rotation_params *p);

/* "next", "active", "retiring", "retired" (or "unknown"). */
const char *ztb_key_state_name(ztb_key_state s);

/* Parse a state name. MALFORMED if unknown. */
ztb_err ztb_key_state_parse(const char *name, ztb_key_state *out);

/*
 * Check the invariants of a key list: exactly one active key, at most one
 * next key, unique well-formed kids (43 base64url characters), times that
 * make sense for each state. MALFORMED otherwise.
 */
ztb_err ztb_rotation_check(const ztb_key_meta *keys, size_t n);

/*
 * 1 if a verifier must be able to find this key in the JWKS at time now:
 * next and active keys always, retiring and retired ones while now <
 * not_after (also before a tick has moved a retiring key on).
 */
int ztb_rotation_published(const ztb_key_meta *k, int64_t now);

/* 1 if the key may be deleted from disk at time now (retired, past not_after). */
int ztb_rotation_prunable(const ztb_key_meta *k, int64_t now);

/* Index of the key in state s, or -1 (for ACTIVE and NEXT, at most one). */
int ztb_rotation_find_state(const ztb_key_meta *keys, size_t n, ztb_key_state s);

/* Index of kid, or -1. */
int ztb_rotation_find_kid(const ztb_key_meta *keys, size_t n, const char *kid);

/* The earliest time the next key k may become active. */
int64_t ztb_rotation_promotable_at(const ztb_key_meta *k, const ztb_rotation_params *p);

/*
 * Append a next key with this kid, published at now. STATE if there is
 * already a next key, TOO_LARGE if *n == cap, EXISTS if the kid is taken.
 */
ztb_err ztb_rotation_add_next(ztb_key_meta *keys, size_t *n, size_t cap, const char *kid,
                              int64_t now);

/*
 * Make the next key active and the active key retiring. STATE if there is no
 * next key, or (unless force) it has not been published for jwks_cache_s yet.
 */
ztb_err ztb_rotation_promote(ztb_key_meta *keys, size_t n, const ztb_rotation_params *p,
                             int64_t now, int force);

/*
 * Retire key kid by hand: a next key (never signed) or a retiring one.
 * A retired key stays published until its not_after unless force, which ends
 * its publication now (its tokens then fail once verifiers refresh: for a
 * compromised key). STATE for the active key (rotate first), NOT_FOUND for
 * an unknown kid. Retiring a retired key without force changes nothing.
 */
ztb_err ztb_rotation_retire(ztb_key_meta *keys, size_t n, const char *kid, int64_t now, int force);

/*
 * Retiring keys whose not_after has passed become retired. Returns
 * ZTB_ROTATION_RETIRED if any did, else 0.
 */
unsigned ztb_rotation_expire(ztb_key_meta *keys, size_t n, int64_t now);

/*
 * Time-driven transitions at now: retiring keys whose not_after has passed
 * become retired; a next key that may be promoted is promoted. *changed
 * gets ZTB_ROTATION_* bits (may be NULL).
 */
ztb_err ztb_rotation_tick(ztb_key_meta *keys, size_t n, const ztb_rotation_params *p, int64_t now,
                          unsigned *changed);

/*
 * Remove prunable keys from the list (order of the rest kept). Their kids
 * are copied to removed[] (room for n) when removed is not NULL; returns how
 * many were removed.
 */
size_t ztb_rotation_prune(ztb_key_meta *keys, size_t *n, int64_t now,
                          char (*removed)[ZTB_KID_LEN + 1]);

#endif /* ZTB_PKI_ROTATION_H */
