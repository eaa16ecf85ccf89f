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

#include "wire/access_token.h"

struct json_t;

/* One of our tokens, verified (introspect_verify) on the one path every
 * verifier takes (wire/access_token.h): the claims and the fields the
 * revocation state is read by. The strings point into tok; the struct is
 * never copied. About 14 KiB. */
struct introspected {
    int valid; /* introspect_verify succeeded */
    struct access_token tok;
    const char *kid, *aud, *sub, *jti, *agent;
    int64_t exp, gen;
    int single_use;
};

/*
 * Check tok[0..len) as a gateway would, without Redis (access_token_verify):
 * our signature (key chosen by kid, algorithm pinned by the key), typ
 * at+jwt, the claims' shape (wire/claims.h), iss = our issuer, now < exp (no
 * skew: the broker's own clock), nbf and iat within the key store's skew;
 * and the ids usable as Redis key names. ZTB_OK fills *t (free with
 * introspected_free); anything else says why (EXPIRED, NOT_YET_VALID, IAT,
 * ISSUER, TYP, CLAIMS, or the JWS error) and leaves *t not valid.
 */
ztb_err introspect_verify(const char *tok, size_t len, const char *issuer, int64_t now,
                          struct introspected *t);

/*
 * The revocation state of a verified token in one Redis round trip: its jti,
 * the agent's generation, the audience kill switch, the key taint. consume:
 * also consume a single-use token (the ztb:used:<jti> marker verifiers use,
 * kept until exp + ZTB_WIRE_MAX_SKEW_S); only one caller ever succeeds.
 * ZTB_OK: active. UNAVAILABLE: Redis could not answer (fail closed). Else
 * REVOKED, AGENT_REVOKED, AUDIENCE_KILLED, KEY_TAINTED or REPLAY.
 */
ztb_err introspect_state(const struct introspected *t, int64_t now, int consume);

/* Wipe t (it is not valid after). */
void introspected_free(struct introspected *t);

/*
 * introspect_verify then introspect_state. ZTB_OK: active, *claims (if not
 * NULL) is the claims object (caller decrefs).
 */
ztb_err introspect_token(const char *tok, size_t len, const char *issuer, int64_t now, int consume,
                         struct json_t **claims);

/*
 * Only the signature half of introspect_verify: our signature (key chosen
 * by kid, algorithm pinned by the key), typ at+jwt and the claims' shape;
 * no issuer, clock or revocation check. ZTB_OK fills *t (free with
 * introspected_free) with facts the broker verified (e.g. the exp a
 * revocation may be sized by); *skew (if not NULL) is the key store's skew.
 */
ztb_err introspect_verify_signature(const char *tok, size_t len, struct introspected *t,
                                    unsigned *skew);

/* The claims of a verified t as a JSON object (caller decrefs); NULL if out
 * of memory. */
struct json_t *introspect_claims_object(const struct introspected *t);

#endif /* ZTB_BROKER_INTROSPECT_H */
