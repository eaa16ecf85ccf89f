/*
 * client_auth.h - who is calling: client authentication for the public API.
 *
 *   session    client_assertion_type = urn:ztb:params:oauth:client-assertion-type:session
 *              one HMAC (session.c); the per-action path
 *   mTLS       no client_assertion: the TLS client certificate (mtls.h),
 *              chain verified once per connection, its thumbprint compared
 *              with the agent's current identity document on every request
 *   assertion  client_assertion_type = urn:ietf:params:oauth:client-assertion-type:jwt-bearer
 *              RFC 7523 private_key_jwt: ES256 with the key of the agent's
 *              current identity document, aud = <issuer>/v1/token, exp at
 *              most 60 s after iat, jti never seen before (Redis)
 *
 * Failures are invalid_client (401) with a description that helps an
 * honest client and tells an attacker nothing about keys; Redis trouble is
 * 503. Every failure is also counted, and replays are audited (they are
 * anomaly signals).
 */
#ifndef ZTB_BROKER_CLIENT_AUTH_H
#define ZTB_BROKER_CLIENT_AUTH_H

#include <stdint.h>

#include <ztb/error.h>

#include "broker/http/form.h"
#include "broker/http/http.h"
#include "broker/store/store.h"
#include "wire/wire.h"

#define CLIENT_ASSERTION_TYPE_JWT     ZTB_WIRE_ASSERTION_JWT
#define CLIENT_ASSERTION_TYPE_SESSION ZTB_WIRE_ASSERTION_SESSION

enum client_auth_method {
    CLIENT_AUTH_SESSION = 1,
    CLIENT_AUTH_ASSERTION = 2,
    CLIENT_AUTH_MTLS = 3,
};

/*
 * Who called, and the state of the agent as read when it was authenticated:
 * the credential was checked against it (see client_auth), and later atomic
 * steps (the issue script) check generation and epoch again.
 */
struct client_identity {
    char agent[STORE_NAME_MAX + 1];
    enum client_auth_method method;
    /* 1: the agent's state was read and the credential checked against it
     * (below are the agent's values). 0 (CLIENT_AUTH_STATE_LATER, sessions
     * and certificates only): the credential alone was checked, generation
     * and epoch are what a session binds (-1 for a certificate), and the
     * caller must check them with store_issue_check before anything else. */
    int state_checked;
    int64_t generation; /* the agent's revocation generation */
    int64_t epoch;      /* the agent's identity epoch (store.h) */
    int quarantined;    /* the agent is quarantined (authenticated all the same) */
    char x5t_s256[44];  /* CLIENT_AUTH_MTLS: the certificate's thumbprint */
};

/* Why a credential of a revoked or replaced identity is refused (401). */
#define CLIENT_AUTH_SUPERSEDED                                                                     \
    "this identity document was superseded by a newer one (renewed or enrolled again): "           \
    "present the agent's current identity document"
#define CLIENT_AUTH_SESSION_REVOKED                                                                \
    "session revoked (the agent was revoked or enrolled again since it was made): create a new "   \
    "one at /v1/session"
#define CLIENT_AUTH_NOT_LIVE                                                                       \
    "the agent has no live identity (never enrolled, or revoked since): enroll again with a new "  \
    "join token"

/* client_auth flags. */
#define CLIENT_AUTH_SESSION_OK 1u /* a session credential may authenticate this request */
/*
 * The caller checks the agent's state itself, atomically with what it does
 * next (the token endpoint: store_issue_check takes the expectations of
 * client_auth_expect and refuses a stale credential before anything is
 * charged, remembered or recorded). Saves the per-action path a Redis round
 * trip; client assertions are checked in full all the same (their key is in
 * Redis).
 */
#define CLIENT_AUTH_STATE_LATER 2u

/*
 * Authenticate the caller of req: from the two client_assertion parameters
 * (values may be NULL when absent) or, when neither is given, from the TLS
 * client certificate (mTLS). flags: CLIENT_AUTH_*.
 *
 * Every method is bound to the agent's one current identity: the agent must
 * be active and hold a live identity (issued at its current generation, so
 * a revocation ends it until a new join token is used); a certificate must
 * be the current identity document (a renewed or re-enrolled one is
 * superseded); an assertion must be signed with the current identity's key;
 * a session must carry the current generation and identity epoch. This is
 * read from Redis on every request before anything else happens (or, with
 * CLIENT_AUTH_STATE_LATER, by the caller's one atomic check): a credential
 * that fails it costs nothing more, no policy outcome, rate limit, detector
 * or audit line.
 *
 * On failure fills resp (401/503) and returns the error.
 */
ztb_err client_auth(const struct http_req *req, const char *assertion_type, const char *assertion,
                    int64_t now, unsigned flags, struct client_identity *id,
                    struct http_resp *resp);

/*
 * RFC 7521 4.2: a request may also carry client_id; when it does, it must
 * name the client the credential authenticated: the agent's SPIFFE ID
 * (spiffe://<trust domain>/agent/<name>, an assertion's sub). client_id
 * NULL: OK. Otherwise fills resp (401 invalid_client) and returns
 * INVALID_CLIENT.
 */
ztb_err client_auth_client_id(const struct client_identity *id, const char *client_id,
                              struct http_resp *resp);

/* What id's credential binds, for store_issue_check to check atomically. */
void client_auth_expect(const struct client_identity *id, struct store_expect *e);

/* The token endpoint URL, which client assertions and DPoP proofs name:
 * "<issuer>/v1/token". */
const char *client_auth_token_endpoint(void);

/* Set the issuer the endpoints derive from, and the trust domain agents'
 * SPIFFE IDs must be in (at start-up, before threads). */
void client_auth_set_issuer(const char *issuer);
void client_auth_set_trust_domain(const char *td);

#endif /* ZTB_BROKER_CLIENT_AUTH_H */
