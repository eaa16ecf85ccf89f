/*
 * enroll.h - identities and sessions: POST /v1/enroll, /v1/renew, /v1/session.
 *
 * enroll: a one-time join token + a CSR for the agent's SPIFFE ID give the
 *         agent its identity document (an X.509 certificate from the agent
 *         CA); its public key is recorded so client assertions can be
 *         checked against it.
 * renew:  the same with a client assertion instead of a join token.
 * session: a client assertion gives a session credential for the
 *         per-action path (see session.h).
 */
#ifndef ZTB_BROKER_ENROLL_H
#define ZTB_BROKER_ENROLL_H

#include "broker/http/http.h"

void handle_enroll(struct http_req *req, struct http_resp *resp);
void handle_renew(struct http_req *req, struct http_resp *resp);
void handle_session(struct http_req *req, struct http_resp *resp);

#endif /* ZTB_BROKER_ENROLL_H */
