/*
 * session.h - session credentials: the cheap client authentication of the
 * per-action path.
 *
 * An agent proves itself once with a client assertion (one ECDSA verify) or
 * mTLS and gets a session credential; each token request then costs one
 * HMAC-SHA256 instead of a signature check. The credential is
 *
 *   "ztbs_" b64url(payload) "." b64url(HMAC-SHA256(key, SHA-256("ztbs_" b64url(payload))))
 *   payload = version(1, = 3) | expires(8, BE) | generation(8, BE) | epoch(8, BE)
 *             | sid(16) | name
 *
 * It binds the agent's name, its revocation generation (so a generation bump
 * ends it), the identity epoch of the identity document it was made from (so
 * a re-enrollment with a join token ends it) and an expiry. Brokers that share the 32-byte session
 * key accept each other's credentials. The MAC is compared in constant time. The key lives in
 * the signer process only (broker/signer/signer.h): this file hashes, the signer MACs the digest.
 */
#ifndef ZTB_BROKER_SESSION_H
#define ZTB_BROKER_SESSION_H

#include <stddef.h>
#include <stdint.h>

#include <ztb/error.h>

#include "broker/store/store.h"

#define SESSION_KEY_LEN  32
#define SESSION_CRED_MAX 256

struct session_claims {
    char agent[STORE_NAME_MAX + 1];
    int64_t generation;
    int64_t epoch; /* the agent's identity epoch (store.h) when it was minted */
    int64_t expires;
    uint8_t sid[16];
};

/* HMAC-SHA256(session key, digest) into out: keys_session_mac in the broker. */
typedef ztb_err (*session_mac_fn)(const uint8_t digest[32], uint8_t out[32]);

/* Set (or, NULL, clear) the MAC function; without one, mint and verify
 * answer STATE. */
void session_set_mac(session_mac_fn fn);

/*
 * Mint a credential for agent at generation and identity epoch, valid until
 * expires, into out (SESSION_CRED_MAX bytes, NUL-terminated). STATE if no
 * MAC function is set, UNAVAILABLE if the signer is down.
 */
ztb_err session_mint(const char *agent, int64_t generation, int64_t epoch, int64_t expires,
                     char out[SESSION_CRED_MAX]);

/*
 * Check cred[0..len) at time now. INVALID_CLIENT for anything wrong (shape,
 * MAC, version, name) and EXPIRED once it has expired; UNAVAILABLE if the
 * signer is down (the caller answers 503, never 401). Fills c on success.
 * The generation and epoch are the caller's to compare with the agent's
 * current ones (client_auth.c does, before anything else).
 */
ztb_err session_verify(const char *cred, size_t len, int64_t now, struct session_claims *c);

#endif /* ZTB_BROKER_SESSION_H */
