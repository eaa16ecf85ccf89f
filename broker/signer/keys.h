/*
 * keys.h - the HTTP process's view of the keys: public key state, and
 * signatures and MACs asked of the signer process (broker/signer/signer.h).
 *
 * This process holds no private key. keys_open starts the signer, which
 * reads the key store, the agent CA key and the session key; here live only
 * what it tells us - the JWKS, the published public keys (to check our own
 * tokens), the active kid, the token TTL cap - in an immutable,
 * reference-counted keys_state. A request takes a reference, uses it, and
 * releases it; a refresh builds a new state and swaps it in, so rotations
 * never stall or tear a request. The agent CA's certificate (public) is
 * read here to build identity documents; the signer signs them.
 *
 * Refreshes happen every few seconds (the signer re-reads the store, to pick
 * up `ztbctl keys rotate` run against the same directory, and lets its clock
 * promote and retire keys), on SIGHUP, after an admin rotation, and after
 * the signer was restarted.
 */
#ifndef ZTB_BROKER_KEYS_H
#define ZTB_BROKER_KEYS_H

#include <stddef.h>
#include <stdint.h>

#include <ztb/error.h>

#include "common/buf.h"
#include "pki/ca.h"
#include "pki/jws.h"
#include "pki/key.h"
#include "pki/keyset.h"
#include "pki/keystore.h"
#include "broker/signer/sign_batch.h"
#include "broker/signer/signer_client.h"

struct keys_state {
    ztb_key *active;    /* public half of the key that signs; NULL when none */
    ztb_keyset *keyset; /* every published key, for our own verifications */
    char *jwks;         /* the JWKS document */
    size_t jwks_len;
    uint32_t jwks_max_age;  /* Cache-Control max-age, seconds */
    uint32_t max_token_ttl; /* never issue a longer token */
    uint32_t skew;
};

/*
 * How keys_open starts the signer: exe is the program to run (the broker's
 * own binary, "/proc/self/exe"; NULL, the default, serves the signer from
 * threads of this process: unit tests only), session_key_file the session
 * MAC key (NULL or "": <key store>/session.key, created if missing),
 * channels the number of concurrent signer calls (HTTP threads + 4).
 * Call before keys_open.
 */
void keys_configure(const char *exe, const char *session_key_file, unsigned channels);

/*
 * Start the signer on the key store at dir (passphrase_file may be NULL) and
 * load the public state. NOT_FOUND with a message naming the command that
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

/* The CA (public certificate only), or NULL if the key store has none
 * (enrollment is then refused). */
const ztb_ca *keys_ca(void);

/* 1 while the signer answers (0: signatures and MACs fail closed). */
int keys_can_sign(void);

/*
 * Sign payload as a JWS (ztb_jws_sign_with) with the active key of s, by the
 * signer. If the signer's active key moved on since s was made, the state is
 * refreshed and the signature made once more with the new one.
 * UNAVAILABLE: the signer is down (answer 503).
 */
ztb_err keys_sign_jws(const struct keys_state *s, const ztb_jws_sign_opts *opts,
                      const void *payload, size_t n, ztb_buf *out);

/*
 * keys_sign_jws in two halves, so the signer signs while the caller makes
 * its Redis round trip (one wait for both): keys_sign_begin appends the
 * signing input of payload to out and sends its digest to the signer; then
 * exactly one of keys_sign_end (appends the signature; payload and opts as
 * given to begin; if the active key moved on it signs again through
 * keys_sign_jws) or keys_sign_cancel (the token is not issued after all).
 * On an error of begin nothing is pending and out is as it was; on an error
 * of end out is as it was before begin. UNAVAILABLE: the signer is down.
 */
struct keys_sign_pending {
    struct sign_ticket t; /* the digest's place in a batch (sign_batch.h) */
    size_t start;
};
ztb_err keys_sign_begin(const struct keys_state *s, const ztb_jws_sign_opts *opts,
                        const void *payload, size_t n, ztb_buf *out, struct keys_sign_pending *p);
ztb_err keys_sign_end(struct keys_sign_pending *p, const struct keys_state *s,
                      const ztb_jws_sign_opts *opts, const void *payload, size_t n, ztb_buf *out);
void keys_sign_cancel(struct keys_sign_pending *p);

/* Issue an identity document for agent from csr (as ztb_ca_issue), signed
 * by the signer. UNAVAILABLE: the signer is down. */
ztb_err keys_ca_issue(const void *csr, size_t csr_len, const char *agent, int64_t now,
                      int64_t ttl_s, ztb_buf *out);

/* HMAC-SHA256 with the session key over a SHA-256 digest, by the signer
 * (session.c's MAC). */
ztb_err keys_session_mac(const uint8_t digest[32], uint8_t out[32]);

/* The signer's process id (0: none, or in-process). */
int keys_signer_pid(void);

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

/* Start / stop the background refresher (every interval_s seconds). */
ztb_err keys_start_refresher(unsigned interval_s);
void keys_stop_refresher(void);

#endif /* ZTB_BROKER_KEYS_H */
