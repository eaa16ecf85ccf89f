/*
 * authzen_http.h - the OpenID AuthZEN Authorization API 1.0 endpoints
 * (docs/authzen.md):
 *
 *   POST /access/v1/evaluation           one access evaluation
 *   POST /access/v1/evaluations          a batch, with evaluations_semantic
 *   GET  /.well-known/authzen-configuration   the PDP metadata
 *
 * Answered by the policy in force and the agents' state in Redis, default
 * deny. The caller (the PEP) must be an authenticated agent that policy
 * allows the broker's action ztb:evaluate on each audience it asks about.
 */
#ifndef ZTB_BROKER_AUTHZEN_HTTP_H
#define ZTB_BROKER_AUTHZEN_HTTP_H

#include "broker/http/http.h"

void handle_authzen_evaluation(struct http_req *req, struct http_resp *resp);
void handle_authzen_evaluations(struct http_req *req, struct http_resp *resp);
void handle_authzen_configuration(struct http_req *req, struct http_resp *resp);

#endif /* ZTB_BROKER_AUTHZEN_HTTP_H */
