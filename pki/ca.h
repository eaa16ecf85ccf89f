/*
 * ca.h - the agent CA: issues and checks X.509 identity documents.
 *
 * An agent's identity document is a short-lived certificate whose only name
 * is its SPIFFE ID: empty subject, a critical subjectAltName with exactly
 * one URI spiffe://<trust-domain>/agent/<name>, basicConstraints CA:FALSE,
 * keyUsage digitalSignature, extendedKeyUsage clientAuth, a random 128-bit
 * serial, a P-256 key, one hour of life by default (never beyond the CA's
 * own), signed ecdsa-with-SHA256.
 *
 * The CA is either a self-signed root (ztb is the whole PKI) or an
 * intermediate signed by a root the operator provides (the root's key is
 * used once, at creation, and never stored). Either way its certificate has
 * basicConstraints CA:TRUE, pathlen:0 (it cannot make other CAs), keyUsage
 * keyCertSign/cRLSign, and a URI SAN spiffe://<trust-domain>. Its key is
 * P-256; an operator root may be any key type OpenSSL can sign with.
 *
 * On disk, under <dir>/ca/ (0700; files 0600, written atomically, ca.json
 * last so a crash during creation leaves no half-made CA that loads):
 *   ca.key.pem    the CA private key, PKCS#8 (encrypted with a passphrase)
 *   ca.cert.pem   the CA certificate
 *   root.cert.pem the trust anchor (the CA certificate itself for a root)
 *   ca.json       {"format":"ztb-ca","version":1,"trust_domain":..,"kind":..,
 *                  "encrypted":..}
 *
 * A loaded ztb_ca is read-only and may be shared between threads: issuing
 * and verifying do not change it. Functions that depend on time take `now`.
 */
#ifndef ZTB_PKI_CA_H
#define ZTB_PKI_CA_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/x509.h>

#include <ztb/error.h>
#include <ztb/export.h>

#include "common/buf.h"
#include "pki/spiffe.h"

#define ZTB_CA_DEFAULT_LEAF_TTL_S              3600
#define ZTB_CA_DEFAULT_ROOT_VALIDITY_S         (10LL * 365 * 24 * 3600)
#define ZTB_CA_DEFAULT_INTERMEDIATE_VALIDITY_S (365LL * 24 * 3600)
/* Longest identity document the CA will issue. */
#define ZTB_CA_MAX_LEAF_TTL_S (7LL * 24 * 3600)
/* Largest certificate input (PEM chain or DER) accepted, in bytes. */
#define ZTB_CA_CERT_MAX 16384

typedef struct ztb_ca ztb_ca;

typedef struct ztb_ca_opts {
    const char *trust_domain; /* required */
    int64_t validity_s;       /* 0: the default for the kind */
    /*
     * For an intermediate: the operator's root certificate and key (PEM;
     * the key PKCS#8, encrypted if root_pass is given). All NULL: a
     * self-signed root.
     */
    const char *root_cert_pem;
    size_t root_cert_len;
    const char *root_key_pem;
    size_t root_key_len;
    const char *root_pass;
    size_t root_pass_len;
} ztb_ca_opts;

typedef struct ztb_ca_info {
    char trust_domain[ZTB_TRUST_DOMAIN_MAX + 1];
    int is_root;       /* self-signed */
    char subject[256]; /* one-line RFC 2253 form */
    char issuer[256];
    int64_t not_before, not_after;
    char fingerprint[96]; /* SHA-256 of the DER, hex with colons (first 32 bytes) */
} ztb_ca_info;

/* Create a CA in memory (see the top of this file). CERT for a bad root. */
ztb_err ztb_ca_create(const ztb_ca_opts *opts, int64_t now, ztb_ca **out);

/*
 * Write ca to <dir>/ca/ (dir created 0700 if missing). EXISTS if a CA is
 * already there. The CA key is encrypted when passlen > 0.
 */
ztb_err ztb_ca_save(const ztb_ca *ca, const char *dir, const void *pass, size_t passlen);

/*
 * Load the CA from <dir>/ca/. NOT_FOUND if none, PASSPHRASE if its key is
 * encrypted and pass is missing or wrong, CERT if the files do not belong
 * together (key and certificate, certificate and root, trust domain).
 */
ztb_err ztb_ca_load(const char *dir, const void *pass, size_t passlen, ztb_ca **out);

/*
 * Load only the certificates from <dir>/ca/ (no key, no passphrase needed):
 * enough to show the CA and verify identity documents, not to issue them
 * (ztb_ca_issue then fails with KEY). Same checks as ztb_ca_load otherwise.
 */
ztb_err ztb_ca_load_public(const char *dir, ztb_ca **out);

void ztb_ca_free(ztb_ca *ca);

const char *ztb_ca_trust_domain(const ztb_ca *ca);

/* Facts for `ztbctl ca show`. */
ztb_err ztb_ca_get_info(const ztb_ca *ca, ztb_ca_info *info);

/* Append the CA certificate (PEM) to out: agents present it with their own. */
ztb_err ztb_ca_cert_pem(const ztb_ca *ca, ztb_buf *out);

/* Append the trust anchor (root certificate, PEM) to out: verifiers trust it. */
ztb_err ztb_ca_root_pem(const ztb_ca *ca, ztb_buf *out);

/*
 * Check csr (see csr.h) for agent `name` and issue its identity document,
 * appended to out as PEM. ttl_s 0 means ZTB_CA_DEFAULT_LEAF_TTL_S; more than
 * ZTB_CA_MAX_LEAF_TTL_S is INVALID_ARG; the life is cut to the CA's own.
 * STATE if the CA itself is not valid at now. Errors of ztb_csr_check.
 */
ztb_err ztb_ca_issue(const ztb_ca *ca, const void *csr, size_t csr_len, const char *name,
                     int64_t now, int64_t ttl_s, ztb_buf *out);

/*
 * A CA signature made elsewhere: fill der (*derlen bytes available, at least
 * ZTB_ES256_DER_MAX) with the DER ECDSA signature of digest, the SHA-256 of a
 * certificate's to-be-signed part, and set *derlen.
 */
typedef ztb_err (*ztb_ca_sign_fn)(void *arg, const uint8_t digest[32], uint8_t *der,
                                  size_t *derlen);

/*
 * As ztb_ca_issue, but ca may be public only: the certificate is built here
 * and fn signs it (the broker's signer process holds the CA key). The
 * result is checked against the CA's public key before it is returned.
 */
ztb_err ztb_ca_issue_with(const ztb_ca *ca, const void *csr, size_t csr_len, const char *name,
                          int64_t now, int64_t ttl_s, ztb_ca_sign_fn fn, void *arg, ztb_buf *out);

/* The CA's signature over digest (the signer process's side of
 * ztb_ca_issue_with). KEY if ca was loaded public-only. */
ztb_err ztb_ca_sign_digest(const ztb_ca *ca, const uint8_t digest[32], uint8_t *der,
                           size_t *derlen);

/*
 * Verify an identity document: doc[0..len) is PEM (leaf first, optionally
 * followed by intermediates) or one DER certificate. The chain must lead to
 * this CA's root at time now, with clientAuth; the leaf must not be a CA,
 * must have a P-256 key and exactly one name, a URI that is the SPIFFE ID of
 * an agent of this trust domain. The agent's name goes to name (at least
 * ZTB_AGENT_NAME_MAX + 1 bytes). CERT (unparsable or wrong leaf), CERT_CHAIN
 * (untrusted, expired, not yet valid, wrong purpose), SPIFFE_ID.
 */
ZTB_WUR ztb_err ztb_ca_verify_identity(const ztb_ca *ca, const void *doc, size_t len, int64_t now,
                                       char *name, size_t name_cap);

#endif /* ZTB_PKI_CA_H */
