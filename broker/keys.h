/*
 * keys.h - the broker's signing keys and agent CA.
 *
 * The key store (pki/keystore.h) is opened once and changed only under a
 * mutex (it is not thread-safe). What requests need - the active signing
 * key, the JWKS text to publish, the key set to check our own tokens, the
 * token TTL cap - is copied into an immutable, reference-counted
 * keys_state. A request takes a reference (a mutex-protected pointer read
 * and an increment), uses it, and releases it; a refresh builds a new state
 * and swaps it in, so rotations never stall or tear a request.
 *
 * Refreshes happen every few seconds (to pick up `ztbctl keys rotate` run
 * against the same directory and to let the key store's own clock promote
 * and retire keys), on SIGHUP, and after an admin rotation.
 */
#ifndef ZTB_BROKER_KEYS_H
#define ZTB_BROKER_KEYS_H

#include <stddef.h>
#include <stdint.h>

#include <ztb/error.h>

#include "pki/ca.h"
#include "pki/key.h"
#include "pki/keyset.h"
#include "pki/keystore.h"

struct keys_state {
    ztb_key *active;    /* signs tokens; NULL when the store has none */
    ztb_keyset *keyset; /* every published key, for our own verifications */
    char *jwks;         /* the JWKS document */
    size_t jwks_len;
    uint32_t jwks_max_age;  /* Cache-Control max-age, seconds */
    uint32_t max_token_ttl; /* never issue a longer token */
    uint32_t skew;
};

/*
 * Open the key store at dir (passphrase_file may be NULL) and the CA under
 * it if there is one. NOT_FOUND with a message naming the command that
 * creates one if dir holds no key store.
 */
ztb_err keys_open(const char *dir, const char *passphrase_file, int64_t now, char *err,
                  size_t errcap);

/* Close everything (at shutdown, after the HTTP servers stopped). */
void keys_close(void);

/* 1 once keys_open succeeded. */
int keys_loaded(void);

/* A reference to the current state, or NULL if no key store is open. */
struct keys_state *keys_acquire(void);
void keys_release(struct keys_state *s);

/* The CA, or NULL if the key store has none (enrollment is then refused). */
const ztb_ca *keys_ca(void);

/*
 * Re-read the store, let its clock move keys along (tick), and swap in a
 * new state if anything changed. *changed (may be NULL) says whether it did.
 */
ztb_err keys_refresh(int64_t now, int *changed);

/* Rotate (admin API): as ztb_keystore_rotate, then refresh. */
ztb_err keys_rotate(int64_t now, int force, ztb_rotate_result *res);

/* Retire kid by hand (as ztb_keystore_retire; force ends its publication
 * now: a tainted key), then refresh. STATE for the active key: rotate first. */
ztb_err keys_retire(const char *kid, int64_t now, int force);

/*
 * The key store's key list as JSON text for the admin API (caller frees):
 * [{"kid","state","created","activated","not_after"}...].
 */
ztb_err keys_list_json(char **out);

/*
 * Load the session MAC key from path (a 0600 file of 32 random bytes) into
 * session.c, creating it (exclusively: replicas racing agree on one) if it
 * does not exist. path NULL or "": <key store>/session.key.
 */
ztb_err keys_load_session_key(const char *keys_dir, const char *path, char *err, size_t errcap);

/* Start / stop the background refresher (every interval_s seconds). */
ztb_err keys_start_refresher(unsigned interval_s);
void keys_stop_refresher(void);

#endif /* ZTB_BROKER_KEYS_H */
