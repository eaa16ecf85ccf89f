/*
 * introspect_http.h - the endpoints of token introspection (RFC 7662) and
 * revocation (RFC 7009).
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
#ifndef ZTB_BROKER_INTROSPECT_HTTP_H
#define ZTB_BROKER_INTROSPECT_HTTP_H

#include "broker/http/http.h"

void handle_introspect(struct http_req *req, struct http_resp *resp);
void handle_revoke(struct http_req *req, struct http_resp *resp);

#endif /* ZTB_BROKER_INTROSPECT_HTTP_H */
