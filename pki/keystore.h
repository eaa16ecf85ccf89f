/*
 * keystore.h - the signing key store: one directory of P-256 keys and the
 * manifest that says which key is in which state.
 *
 * Layout (every file 0600, every directory 0700, all owned by the user the
 * broker runs as; anything looser is refused):
 *
 *   <dir>/keystore.json     the manifest: format, whether keys are encrypted,
 *                           a generation number, the rotation durations, and
 *                           one entry per key (kid, alg, state, created,
 *                           activated, deactivated, not_after)
 *   <dir>/keys/<kid>.pem    one PKCS#8 private key per kid, encrypted with the
 *                           store passphrase if the store is encrypted
 *   <dir>/.lock             flock(2) target: writers exclusive, readers shared
 *
 * Crash safety: the manifest is the single source of truth and is only ever
 * replaced atomically (keyfile.h), so the set of states changes all at once
 * and there is always exactly one active key on disk. A new key's PEM is made
 * durable before the manifest names it; a pruned key's PEM is deleted only
 * after the manifest stopped naming it. A crash at any point therefore leaves
 * the old store or the new one, plus at most an unreferenced PEM or temporary
 * file, which opening ignores and pruning deletes.
 *
 * In memory, next and active keys hold their private part; retiring and
 * retired ones are reduced to their public part. A ztb_keystore is not
 * thread-safe: the broker serialises changes and hands out what the hot
 * paths need (a reference to the active key, a keyset, the JWKS text).
 * Functions that depend on time take `now` (Unix seconds).
 *
 * Every change is: take the exclusive lock, re-read the manifest (another
 * process may have changed it), apply a ztb_rotation_* transition to a copy,
 * write new key files, write the manifest, delete pruned files, unlock.
 *
 * It must never leave the store without exactly one active key, never drop
 * from the JWKS a key whose tokens may still be alive, never write a key file
 * in place or with a mode wider than 0600, and never keep a private key in
 * memory for a key that no longer signs.
 */
#ifndef ZTB_PKI_KEYSTORE_H
#define ZTB_PKI_KEYSTORE_H

#include <stddef.h>
#include <stdint.h>

#include <ztb/error.h>

#include "common/buf.h"
#include "pki/key.h"
#include "pki/keyset.h"
#include "pki/rotation.h"

/* Largest manifest accepted, in bytes. */
#define ZTB_KEYSTORE_MANIFEST_MAX (64 * 1024)

typedef struct ztb_keystore ztb_keystore;

typedef struct ztb_keystore_opts {
    /*
     * Passphrase for encryption at rest (passphrase_len bytes; see
     * ztb_keyfile_read_passphrase to read it from a file). At init it makes
     * an encrypted store; at open it is required for an encrypted store and
     * ignored for a plain one. The store keeps a wiped-on-close copy, because
     * rotation writes new encrypted keys.
     */
    const char *passphrase;
    size_t passphrase_len;
    /* Rotation durations, used by init only (NULL: the defaults). */
    const ztb_rotation_params *params;
} ztb_keystore_opts;

/* What ztb_keystore_rotate did. */
typedef enum ztb_rotate_action {
    ZTB_ROTATE_PUBLISHED = 1, /* made a next key; it may sign from promotable_at */
    ZTB_ROTATE_PROMOTED = 2,  /* the next key is now active */
} ztb_rotate_action;

typedef struct ztb_rotate_result {
    ztb_rotate_action action;
    char kid[ZTB_KID_LEN + 1]; /* the next (published) or new active (promoted) key */
    int64_t promotable_at;     /* when the next key may become active */
} ztb_rotate_result;

/*
 * Create a key store in dir (created 0700 if missing; must not already hold
 * a manifest: EXISTS) with one active key, published and signing from now.
 * *out is open on it; the caller closes it.
 */
ztb_err ztb_keystore_init(const char *dir, const ztb_keystore_opts *opts, int64_t now,
                          ztb_keystore **out);

/*
 * Open the key store in dir and load every key named in its manifest.
 * NOT_FOUND if there is no store, PERMISSION for loose modes or foreign
 * owners or symlinks, MALFORMED for a manifest that breaks the invariants,
 * PASSPHRASE for an encrypted store without the right passphrase, KEY if a
 * key file does not match its kid or the store's encryption.
 */
ztb_err ztb_keystore_open(const char *dir, const ztb_keystore_opts *opts, ztb_keystore **out);

/* Release everything (keys, the passphrase copy is wiped). ks may be NULL. */
void ztb_keystore_close(ztb_keystore *ks);

/*
 * Re-read the manifest if another process changed it (its generation moved).
 * *changed (may be NULL) says whether anything was reloaded.
 */
ztb_err ztb_keystore_reload(ztb_keystore *ks, int *changed);

/* Number of keys, and the i-th key's metadata and key (borrowed). */
size_t ztb_keystore_count(const ztb_keystore *ks);
const ztb_key_meta *ztb_keystore_meta(const ztb_keystore *ks, size_t i);
const ztb_key *ztb_keystore_key(const ztb_keystore *ks, size_t i);

const ztb_rotation_params *ztb_keystore_params(const ztb_keystore *ks);
int ztb_keystore_encrypted(const ztb_keystore *ks);
uint64_t ztb_keystore_generation(const ztb_keystore *ks);

/* A new reference to the active (signing) key. NO_ACTIVE_KEY never happens
 * for an open store, but is returned rather than crashing if it did. */
ztb_err ztb_keystore_active(const ztb_keystore *ks, ztb_key **out);

/* A new keyset of the keys published at now (see ztb_rotation_published). */
ztb_err ztb_keystore_keyset(const ztb_keystore *ks, int64_t now, ztb_keyset **out);

/* Append the JWKS of the keys published at now to out. */
ztb_err ztb_keystore_jwks(const ztb_keystore *ks, int64_t now, ztb_buf *out);

/*
 * One rotation step, what `ztbctl keys rotate` does: with no next key,
 * generate and publish one (PUBLISHED); with a next key published for at
 * least the JWKS cache period (or force), promote it (PROMOTED); with a next
 * key too young, STATE and res->promotable_at says when. res may be NULL.
 */
ztb_err ztb_keystore_rotate(ztb_keystore *ks, int64_t now, int force, ztb_rotate_result *res);

/* Retire kid by hand (see ztb_rotation_retire). */
ztb_err ztb_keystore_retire(ztb_keystore *ks, const char *kid, int64_t now, int force);

/*
 * Delete retired keys past their not_after from the manifest and disk, then
 * any key file the manifest does not name and any leftover temporary file.
 * *removed (may be NULL) counts keys removed from the manifest.
 */
ztb_err ztb_keystore_prune(ztb_keystore *ks, int64_t now, size_t *removed);

/*
 * The broker's periodic step: retiring keys past not_after become retired,
 * a next key that may be promoted is promoted (ztb_rotation_tick). Writes
 * only if something changed; *changed gets ZTB_ROTATION_* bits (may be NULL).
 */
ztb_err ztb_keystore_tick(ztb_keystore *ks, int64_t now, unsigned *changed);

#endif /* ZTB_PKI_KEYSTORE_H */
