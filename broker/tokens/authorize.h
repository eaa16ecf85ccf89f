/*
 * authorize.h - /v1/authorize: the decision endpoint for gateways (nginx
 * auth_request, Envoy ext_authz in HTTP mode).
 *
 * The gateway forwards the client's Authorization (and DPoP) header and
 * names the original request in one of two forms (route_check_original,
 * wire/route_table.h): GET /v1/authorize with the original method and URI
 * in X-Original-Method / X-Original-URI (or the names configured with
 * authorize_method_header / authorize_uri_header), or the prefix form, the
 * original method to /v1/authorize/<original path and query> (Envoy's
 * path_prefix), read from the raw request target. The route
 * table (route_table.h) says which audience, action and resource that
 * request needs; the token is verified on the one path (introspect.h), held
 * to them, checked for revocation, and a single-use token is consumed. The
 * answer is 200 with X-Ztb-* identity headers, 401 or 403 with
 * WWW-Authenticate (RFC 6750 §3, RFC 9449 §7.1), 400 for a gateway
 * misconfiguration, 503 when Redis cannot answer. docs/gateways.md, "The
 * decision endpoint", is the reference.
 *
 * Callers: only loopback peers are answered (the gateway runs on the
 * broker's host); anyone else gets 403 before anything is read.
 */
#ifndef ZTB_BROKER_AUTHORIZE_H
#define ZTB_BROKER_AUTHORIZE_H

#include "broker/http/http.h"

void handle_authorize(struct http_req *req, struct http_resp *resp);

#endif /* ZTB_BROKER_AUTHORIZE_H */
