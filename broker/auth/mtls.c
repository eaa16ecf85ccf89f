/*
 * mtls.c - identities from TLS client certificates (see mtls.h).
 */
#include <string.h>

#include <openssl/sha.h>
#include <openssl/x509.h>

#include "broker/signer/keys.h"
#include "broker/auth/mtls.h"
#include "common/base64url.h"
#include "common/guard.h"
#include "pki/cert.h"
#include "pki/spiffe.h"

/* What one connection remembers (lives in its scratch area). */
struct mtls_cache {
    uint8_t state;           /* 0 not checked, 1 verified, 2 refused */
    uint8_t err;             /* the refusal's ztb_err - 400 (CERT range), when refused */
    int64_t not_after_check; /* recheck after this time (the cert's life is short) */
    struct mtls_identity id;
};
_Static_assert(sizeof(struct mtls_cache) <= HTTP_CONN_SCRATCH, "scratch area too small");

#define RECHECK_S 60

/* The notAfter of the certificate der[0..len) (verified by the caller), or
 * 0 if it cannot be read. */
static int64_t cert_not_after(const uint8_t *der, size_t len)
{
    const unsigned char *p = der;
    X509 *x = d2i_X509(NULL, &p, (long)len);
    int64_t t = x != NULL ? ztb_cert_time(X509_get0_notAfter(x)) : 0;
    X509_free(x);
    return t;
}

ztb_err mtls_identity(const struct http_req *req, int64_t now, struct mtls_identity *out)
{
    const uint8_t *der;
    size_t len;
    ZTB_GUARD(http_req_client_cert(req, &der, &len));
    struct mtls_cache *c = http_req_conn_scratch(req);
    if (c != NULL && c->state != 0 && now < c->not_after_check) {
        if (c->state == 2)
            return (ztb_err)(400 + c->err);
        *out = c->id;
        return ZTB_OK;
    }
    const ztb_ca *ca = keys_ca();
    ZTB_ENSURE(ca != NULL, ZTB_ERR_STATE);
    char name[ZTB_AGENT_NAME_MAX + 1];
    ztb_err rv = ztb_ca_verify_identity(ca, der, len, now, name, sizeof(name));
    if (rv == ZTB_OK && !store_agent_name_ok(name))
        rv = ZTB_ERR_SPIFFE_ID;
    struct mtls_identity id;
    memset(&id, 0, sizeof(id));
    if (rv == ZTB_OK) {
        memcpy(id.agent, name, strlen(name) + 1);
        uint8_t d[SHA256_DIGEST_LENGTH];
        SHA256(der, len, d);
        rv = ztb_b64url_encode(d, sizeof(d), id.x5t_s256, sizeof(id.x5t_s256), NULL);
    }
    if (c != NULL) {
        /* refusals are CERT-range codes; remember them compactly */
        c->state = rv == ZTB_OK ? 1 : 2;
        c->err = rv >= 400 && rv < 500 ? (uint8_t)(rv - 400) : (uint8_t)(ZTB_ERR_CERT - 400);
        c->not_after_check = now + RECHECK_S;
        if (rv == ZTB_OK) { /* a verdict never outlives the certificate */
            int64_t na = cert_not_after(der, len);
            if (na < c->not_after_check)
                c->not_after_check = na;
        }
        c->id = id;
    }
    if (rv != ZTB_OK)
        return rv >= 400 && rv < 500 ? rv : ZTB_ERR_CERT;
    *out = id;
    return ZTB_OK;
}
