/*
 * ssf_streams_http.h - the SSF stream-management API (OpenID SSF 1.0 §8.1)
 * for receivers, on when the ssf_config file has a "streams" member:
 *
 *   /v1/ssf/streams   configuration_endpoint: POST creates (201), GET reads
 *                     one (?stream_id=) or all of the caller's, PATCH
 *                     updates, PUT replaces, DELETE (?stream_id=) deletes (204)
 *   /v1/ssf/status    status_endpoint: GET (?stream_id=), POST {stream_id,
 *                     status: enabled|paused|disabled, reason}
 *   /v1/ssf/verify    verification_endpoint: POST {stream_id, state} (204);
 *                     at most one per min_verification_interval (else 429)
 *
 * A receiver authenticates with a ztb access token (RFC 6750 Bearer) for
 * the configured audience (default "ztb-ssf") and action "ztb:ssf": an
 * agent the policy allows that action; it owns the streams it creates and
 * sees and changes only those (another's stream is "not found"). Every
 * create, update, replace, status change and delete is audited.
 */
#ifndef ZTB_BROKER_SSF_STREAMS_HTTP_H
#define ZTB_BROKER_SSF_STREAMS_HTTP_H

#include "broker/http/http.h"

void handle_ssf_streams(struct http_req *req, struct http_resp *resp);
void handle_ssf_status(struct http_req *req, struct http_resp *resp);
void handle_ssf_verify(struct http_req *req, struct http_resp *resp);

#endif /* ZTB_BROKER_SSF_STREAMS_HTTP_H */
