/*
 * introspect.h - token introspection (RFC 7662) and revocation (RFC 7009).
 *
 *   POST /v1/introspect   form token=..., optional token_type_hint, and
 *                         ztb_consume=1 to consume a single-use token in the
 *                         same atomic step (for gateways that cannot reach
 *                         Redis); client authentication as for /v1/token.
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

struct json_t;

/*
 * Check tok[0..len) as a gateway would: our signature (key chosen by kid,
 * algorithm pinned by the key), typ at+jwt, iss = our issuer, nbf/exp with
 * the key store's skew, then in one Redis round trip the token's jti, the
 * agent's generation, the audience kill switch and the key taint. consume:
 * also consume a single-use token (only one caller ever succeeds).
 *
 * ZTB_OK: active, *claims (if not NULL) is the claims object (caller
 * decrefs). UNAVAILABLE: Redis could not answer (fail closed). Anything
 * else says why it is not active (REVOKED, AGENT_REVOKED, AUDIENCE_KILLED,
 * KEY_TAINTED, REPLAY, EXPIRED, NOT_YET_VALID, ISSUER, TYP, CLAIMS, or the
 * JWS error).
 */
ztb_err introspect_token(const char *tok, size_t len, int64_t now, int consume,
                         struct json_t **claims);

/*
 * Only the signature half of introspect_token: our signature (key chosen
 * by kid, algorithm pinned by the key) and typ at+jwt; no claim, clock or
 * revocation check. ZTB_OK: *claims is the claims object (caller decrefs),
 * facts the broker verified (e.g. the exp a revocation may be sized by).
 */
ztb_err introspect_verify(const char *tok, size_t len, struct json_t **claims);

void handle_introspect(struct http_req *req, struct http_resp *resp);
void handle_revoke(struct http_req *req, struct http_resp *resp);

#endif /* ZTB_BROKER_INTROSPECT_H */
