/*
 * introspect.h - token introspection (RFC 7662) and revocation (RFC 7009).
 *
 *   POST /v1/introspect   form token=..., optional token_type_hint, and
 *                         ztb_consume=1 to consume a single-use token in the
 *                         same atomic step (for gateways that cannot reach
 *                         Redis); client authentication as for /v1/token.
 *                         Restricted (RFC 7662 §4): the caller must be active
 *                         and not quarantined (else 401/403), and allowed by
 *                         policy "ztb:introspect" on the token's audience;
 *                         consuming needs the audience itself or
 *                         "ztb:consume". A caller not allowed hears
 *                         {"active": false}, as for an unknown token.
 *                         200 {"active": false} or {"active": true, claims...,
 *                         "token_type": "Bearer"|"DPoP"}.
 *   POST /v1/revoke       form token=..., optional token_type_hint; client
 *                         authentication. An agent revokes its own tokens;
 *                         always 200 for a well-formed, authenticated request
 *                         (an unknown, foreign or expired token changes
 *                         nothing, and the caller cannot tell which).
 *
 * Both answer 401 to unauthenticated callers and 503 when Redis cannot
 * answer: introspection never says "active" without having read the
 * revocation state.
 */
#ifndef ZTB_BROKER_INTROSPECT_H
#define ZTB_BROKER_INTROSPECT_H

#include <stddef.h>
#include <stdint.h>

#include <ztb/error.h>

#include "broker/http.h"
#include "policy/types.h"
#include "wire/access_token.h"

struct json_t;

/* The policy actions introspection asks for (docs/policy.md). */
#define INTROSPECT_ACTION         "ztb:introspect" /* learn whether a token is active */
#define INTROSPECT_ACTION_CONSUME "ztb:consume"    /* also use up a single-use token */

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

/* Wipe t (it is not valid after). */
void introspected_free(struct introspected *t);

/*
 * introspect_verify then introspect_state. ZTB_OK: active, *claims (if not
 * NULL) is the claims object (caller decrefs).
 */
ztb_err introspect_token(const char *tok, size_t len, int64_t now, int consume,
                         struct json_t **claims);

/*
 * 1 if the agent caller may introspect tokens addressed to audience
 * (consume = 0: policy allows it INTROSPECT_ACTION on the audience), or
 * consume them (consume = 1: the caller is the audience, by name or SPIFFE
 * ID, or policy allows it INTROSPECT_ACTION_CONSUME on the audience).
 * source: the caller's address for source_ip conditions (may be NULL).
 */
int introspect_caller_may(const char *caller, const char *audience, int consume,
                          const policy_ip *source, int64_t now);

/*
 * Only the signature half of introspect_verify: our signature (key chosen
 * by kid, algorithm pinned by the key), typ at+jwt and the claims' shape;
 * no issuer, clock or revocation check. ZTB_OK fills *t (free with
 * introspected_free) with facts the broker verified (e.g. the exp a
 * revocation may be sized by); *skew (if not NULL) is the key store's skew.
 */
ztb_err introspect_verify_signature(const char *tok, size_t len, struct introspected *t,
                                    unsigned *skew);

void handle_introspect(struct http_req *req, struct http_resp *resp);
void handle_revoke(struct http_req *req, struct http_resp *resp);

#endif /* ZTB_BROKER_INTROSPECT_H */
