/*
 * wellknown.h - GET /.well-known/jwks.json and
 * /.well-known/oauth-authorization-server (RFC 8414).
 */
#ifndef ZTB_BROKER_WELLKNOWN_H
#define ZTB_BROKER_WELLKNOWN_H

#include "broker/http/http.h"

void handle_jwks(struct http_req *req, struct http_resp *resp);
void handle_metadata(struct http_req *req, struct http_resp *resp);

#endif /* ZTB_BROKER_WELLKNOWN_H */
