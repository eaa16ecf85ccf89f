/*
 * introspect.h - verifying one of our access tokens as introspection
 * (RFC 7662) and revocation (RFC 7009) need it, and reading its revocation
 * state. The endpoints are in introspect_http.h, who may ask in
 * introspect_caller.h.
 *
 * Nothing here says "active" without having read the revocation state.
 */
#ifndef ZTB_BROKER_INTROSPECT_H
#define ZTB_BROKER_INTROSPECT_H

#include <stddef.h>
#include <stdint.h>

#include <ztb/error.h>

#include "pki/jws.h"

struct json_t;

/* One of our tokens, verified (introspect_verify): the claims and the fields
 * the revocation state is read by. The strings point into claims. */
struct introspected {
    struct json_t *claims; /* owned: introspected_free */
    char kid[ZTB_JWS_KID_MAX + 1];
    const char *aud, *sub, *jti, *agent;
    int64_t exp, gen;
    int single_use;
};

/*
 * Check tok[0..len) as a gateway would, without Redis: our signature (key
 * chosen by kid, algorithm pinned by the key), typ at+jwt, iss = our issuer,
 * the claims' shape, now < exp (no skew: the broker's own clock), nbf within
 * the key store's skew. ZTB_OK fills *t (free with introspected_free);
 * anything else says why (EXPIRED, NOT_YET_VALID, ISSUER, TYP, CLAIMS, or
 * the JWS error) and leaves *t empty.
 */
ztb_err introspect_verify(const char *tok, size_t len, int64_t now, struct introspected *t);

/*
 * The revocation state of a verified token in one Redis round trip: its jti,
 * the agent's generation, the audience kill switch, the key taint. consume:
 * also consume a single-use token (the ztb:used:<jti> marker verifiers use,
 * kept until exp + ZTB_WIRE_MAX_SKEW_S); only one caller ever succeeds.
 * ZTB_OK: active. UNAVAILABLE: Redis could not answer (fail closed). Else
 * REVOKED, AGENT_REVOKED, AUDIENCE_KILLED, KEY_TAINTED or REPLAY.
 */
ztb_err introspect_state(const struct introspected *t, int64_t now, int consume);

void introspected_free(struct introspected *t);

/*
 * introspect_verify then introspect_state. ZTB_OK: active, *claims (if not
 * NULL) is the claims object (caller decrefs).
 */
ztb_err introspect_token(const char *tok, size_t len, int64_t now, int consume,
                         struct json_t **claims);

/*
 * Only the signature half of introspect_token: our signature (key chosen
 * by kid, algorithm pinned by the key) and typ at+jwt; no claim, clock or
 * revocation check. ZTB_OK: *claims is the claims object (caller decrefs),
 * facts the broker verified (e.g. the exp a revocation may be sized by).
 */
ztb_err introspect_verify_signature(const char *tok, size_t len, struct json_t **claims);

/*
 * The same check with what /v1/revoke needs besides the claims: kid
 * (ZTB_JWS_KID_MAX + 1 bytes) gets the key's kid, *skew the key store's
 * skew.
 */
ztb_err introspect_signed_claims(const char *tok, size_t len, struct json_t **claims, char *kid,
                                 unsigned *skew);

#endif /* ZTB_BROKER_INTROSPECT_H */
