/*
 * cert.h - reading X.509 identity documents: the one place that turns
 * certificate bytes into OpenSSL objects and reads the facts an identity
 * document is made of (its validity, its one URI name).
 *
 * The agent CA (ca.c: the broker's side) and the SDK's credential file
 * (sdk/src/identity.c: the agent's side) both read identity documents
 * through here, so both parse the same way: strict PEM (pem.h: nothing
 * but whitespace around blocks, no headers, only CERTIFICATE blocks) or a
 * single DER certificate with no trailing bytes, at most
 * ZTB_CERT_CHAIN_MAX certificates. What each side then requires (a chain to
 * the CA's root; the agent's own key and name) stays with that side.
 */
#ifndef ZTB_PKI_CERT_H
#define ZTB_PKI_CERT_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/x509v3.h>

#include <ztb/error.h>

/* Most certificates read from one document: the leaf and its chain. */
#define ZTB_CERT_CHAIN_MAX 4

/*
 * Exactly one PEM certificate from pem[0..n) into *out (the caller frees it
 * with X509_free). CERT for anything else: other labels, more blocks,
 * trailing DER bytes.
 */
ztb_err ztb_cert_from_pem(const void *pem, size_t n, X509 **out);

/*
 * A document: PEM (the leaf first, then up to ZTB_CERT_CHAIN_MAX - 1 more
 * certificates) or one DER certificate. *leaf gets the first (caller
 * frees); the others are pushed onto extra (the caller pops and frees
 * them), or freed if extra is NULL. CERT if anything does not parse; on
 * error *leaf is untouched and what was pushed stays on extra for the
 * caller to free.
 */
ztb_err ztb_cert_read_chain(const void *doc, size_t len, X509 **leaf, STACK_OF(X509) * extra);

/*
 * t as Unix time (UTC). 0 if t is NULL or unreadable: no certificate of
 * ours is dated 1970, so callers compare against real times.
 */
int64_t ztb_cert_time(const ASN1_TIME *t);

/*
 * The URI of x's subjectAltName when that holds exactly one name and it is
 * a URI; else NULL. *names gets the decoded extension, which the URI points
 * into: the caller frees it with GENERAL_NAMES_free (even when NULL is
 * returned).
 */
const ASN1_IA5STRING *ztb_cert_only_uri(X509 *x, GENERAL_NAMES **names);

/* 1 if x's only name is the URI uri (byte for byte), else 0. */
int ztb_cert_only_uri_is(X509 *x, const char *uri);

#endif /* ZTB_PKI_CERT_H */
