/*
 * wellknown.c - key discovery and server metadata (see wellknown.h).
 *
 * The JWKS is rendered when the key state changes (keys.c), so serving it is
 * a copy. Its max-age is the key store's JWKS cache period, the promise the
 * rotation schedule is built on: a next key is published at least that long
 * before it signs.
 */
#include <string.h>

#include <jansson.h>

#include "broker/broker.h"
#include "broker/signer/keys.h"
#include "broker/http/wellknown.h"
#include "wire/wire.h"

void handle_jwks(struct http_req *req, struct http_resp *resp)
{
    (void)req;
    struct keys_state *ks = keys_acquire();
    if (ks == NULL) {
        http_resp_error(resp, 503, "temporarily_unavailable", "no key store loaded");
        http_resp_header(resp, "Retry-After", "5");
        return;
    }
    ztb_buf_reset(&resp->body);
    ztb_buf_append(&resp->body, ks->jwks, ks->jwks_len);
    resp->status = 200;
    resp->content_type = "application/jwk-set+json";
    http_resp_header(resp, "Cache-Control", "public, max-age=%u", ks->jwks_max_age);
    keys_release(ks);
}

void handle_metadata(struct http_req *req, struct http_resp *resp)
{
    const char *iss = broker_of(req)->issuer;
    char token[300], jwks[300], intro[300], revoke[300];
    snprintf(token, sizeof(token), "%s/v1/token", iss);
    snprintf(jwks, sizeof(jwks), "%s/.well-known/jwks.json", iss);
    snprintf(intro, sizeof(intro), "%s/v1/introspect", iss);
    snprintf(revoke, sizeof(revoke), "%s/v1/revoke", iss);
    json_t *j = json_pack(
        "{s:s,s:s,s:s,s:s,s:s,s:[s],s:[s,s],s:[s],s:[s],s:[s],s:[s]}", "issuer", iss,
        "token_endpoint", token, "jwks_uri", jwks, "introspection_endpoint", intro,
        "revocation_endpoint", revoke, "grant_types_supported", ZTB_WIRE_GRANT_TOKEN_EXCHANGE,
        "token_endpoint_auth_methods_supported", "private_key_jwt", "ztb_session",
        "token_endpoint_auth_signing_alg_values_supported", "ES256",
        "dpop_signing_alg_values_supported", "ES256", "authorization_details_types_supported",
        ZTB_WIRE_DETAIL_TYPE_ACTION, "response_types_supported", "token");
    http_resp_json_value(resp, 200, j);
    http_resp_header(resp, "Cache-Control", "public, max-age=3600");
}
