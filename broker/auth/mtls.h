/*
 * mtls.h - client authentication by the TLS client certificate (RFC 8705).
 *
 * An agent that connects over TLS with its identity document as client
 * certificate is authenticated once per connection: the first request
 * verifies the certificate against the agent CA (chain, clientAuth, validity,
 * exactly one SPIFFE ID of our trust domain) and caches the agent's name and
 * the certificate's SHA-256 thumbprint (x5t#S256, for cnf binding) in the
 * connection's scratch area; later requests on the same kept-alive
 * connection reuse them for up to 60 s, never past the certificate's
 * notAfter. A failed verification is cached too.
 */
#ifndef ZTB_BROKER_MTLS_H
#define ZTB_BROKER_MTLS_H

#include <stdint.h>

#include <ztb/error.h>

#include "broker/http/http.h"
#include "broker/store/store.h"

struct mtls_identity {
    char agent[STORE_NAME_MAX + 1];
    char x5t_s256[44]; /* base64url SHA-256 of the certificate DER */
};

/*
 * The verified identity of the client certificate on req's connection.
 * NOT_FOUND if no certificate was presented; CERT / CERT_CHAIN / SPIFFE_ID
 * if it does not verify; STATE if there is no agent CA.
 */
ztb_err mtls_identity(const struct http_req *req, int64_t now, struct mtls_identity *out);

#endif /* ZTB_BROKER_MTLS_H */
