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
#include "policy/policy.h"
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

/* An array of strings (NULL-terminated list). */
static json_t *strings(const char *const *v)
{
    json_t *a = json_array();
    for (; a != NULL && *v != NULL; v++)
        json_array_append_new(a, json_string(*v));
    return a;
}

/*
 * RFC 8414 metadata, saying only what is true: no authorization endpoint
 * (so no response_types_supported), one grant type, the client
 * authentication methods each endpoint accepts (private_key_jwt with ES256,
 * tls_client_auth when the broker serves TLS with the agent CA, and ztb's
 * session credential), DPoP with ES256, and the authorization_details types:
 * ztb_action, and every type the policy in force reads limits from (any
 * type is accepted; these are the ones that mean something).
 */
void handle_metadata(struct http_req *req, struct http_resp *resp)
{
    const struct broker *b = broker_of(req);
    const char *iss = b->issuer;
    char token[300], jwks[300], intro[300], revoke[300];
    snprintf(token, sizeof(token), "%s/v1/token", iss);
    snprintf(jwks, sizeof(jwks), "%s/.well-known/jwks.json", iss);
    snprintf(intro, sizeof(intro), "%s/v1/introspect", iss);
    snprintf(revoke, sizeof(revoke), "%s/v1/revoke", iss);
    int mtls = b->cfg.tls_cert_file[0] != '\0' && keys_ca() != NULL;
    const char *methods[] = {"private_key_jwt", "ztb_session", mtls ? "tls_client_auth" : NULL,
                             NULL};
    const char *algs[] = {"ES256", NULL};
    const char *types[33] = {ZTB_WIRE_DETAIL_TYPE_ACTION};
    policy *p = policy_holder_acquire(b->policy);
    if (p != NULL)
        policy_detail_types(p, types + 1, 31);
    json_t *ad = strings(types);
    policy_holder_release(p);
    json_t *j = json_pack(
        "{s:s,s:s,s:s,s:s,s:s,s:[s],s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:b}", "issuer", iss,
        "token_endpoint", token, "jwks_uri", jwks, "introspection_endpoint", intro,
        "revocation_endpoint", revoke, "grant_types_supported", ZTB_WIRE_GRANT_TOKEN_EXCHANGE,
        "token_endpoint_auth_methods_supported", strings(methods),
        "token_endpoint_auth_signing_alg_values_supported", strings(algs),
        "introspection_endpoint_auth_methods_supported", strings(methods),
        "introspection_endpoint_auth_signing_alg_values_supported", strings(algs),
        "revocation_endpoint_auth_methods_supported", strings(methods),
        "revocation_endpoint_auth_signing_alg_values_supported", strings(algs),
        "dpop_signing_alg_values_supported", strings(algs), "authorization_details_types_supported",
        ad, "tls_client_certificate_bound_access_tokens", mtls);
    if (j == NULL) {
        http_resp_error(resp, 500, "server_error", "cannot render the metadata");
        return;
    }
    http_resp_json_value(resp, 200, j);
    http_resp_header(resp, "Cache-Control", "public, max-age=3600");
}
