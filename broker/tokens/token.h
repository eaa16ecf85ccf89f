/*
 * token.h - POST /v1/token: one short-lived token per action (RFC 8693).
 *
 * The order of checks is the order of cost, and nothing is issued unless
 * every one passed: form and parameters; client authentication (session:
 * one HMAC); delegation and DPoP (signatures, only when present; a subject
 * token's revocation state is one Redis round trip); policy
 * (in memory, no allocation); then the one atomic Redis call (agent active,
 * not quarantined, audience alive, both rate limits, generation); then a
 * single-use subject token is consumed (only now, so a refused request does
 * not use it up); then one ES256 signature; then the audit line. Redis trouble is 503 and nothing
 * is issued (fail closed).
 */
#ifndef ZTB_BROKER_TOKEN_H
#define ZTB_BROKER_TOKEN_H

#include "broker/http/http.h"

void handle_token(struct http_req *req, struct http_resp *resp);

/*
 * GET or POST /v1/approvals/{id}: the agent that asked polls its approval,
 * authenticated as at /v1/token (client assertion or session in a form
 * body, or mTLS), with a DPoP proof of the key the token was asked with
 * when it was. Answers the pending, denied or expired state
 * (broker/tokens/approval.h), or, once approved, the token (as /v1/token),
 * issued under the approval once. Another agent's id: 404.
 */
void handle_approval_poll(struct http_req *req, struct http_resp *resp);

#endif /* ZTB_BROKER_TOKEN_H */
