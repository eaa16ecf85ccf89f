/*
 * csr.h - certificate signing requests for agent identities.
 *
 * The agent's SDK makes the request (ztb_csr_make): its P-256 key, an empty
 * subject, and one extension request, a subjectAltName holding exactly its
 * SPIFFE ID as a URI. The broker receives it from the network and checks it
 * (ztb_csr_check) before the CA signs anything; the check is strict because
 * the request is untrusted input:
 *
 *   CSR        not one DER (or PEM "CERTIFICATE REQUEST") request with
 *              nothing after it; over ZTB_CSR_MAX bytes; not version 1;
 *              signed with anything but ecdsa-with-SHA256; a signature that
 *              does not verify with the request's own key (proof of
 *              possession); an attribute other than extensionRequest; a
 *              requested extension other than subjectAltName
 *   KEY        a public key that is not P-256
 *   SPIFFE_ID  a subjectAltName missing, or with anything but exactly one
 *              URI; a URI other than the expected SPIFFE ID
 *
 * A subject name is accepted and ignored (never read, never copied).
 *
 * The CA issues with its own fixed extensions; nothing else in the request
 * is copied into a certificate but the public key. This code must never let
 * a request choose a name, an extension or a key type for itself.
 */
#ifndef ZTB_PKI_CSR_H
#define ZTB_PKI_CSR_H

#include <stddef.h>

#include <ztb/error.h>

#include "common/buf.h"
#include "pki/key.h"

/* Largest CSR accepted (PEM or DER), in bytes. */
#define ZTB_CSR_MAX 8192

/*
 * Append a PEM CSR for key (which must have its private part) asking for
 * spiffe_id (checked as a SPIFFE ID) to out.
 */
ztb_err ztb_csr_make(const ztb_key *key, const char *spiffe_id, ztb_buf *out);

/*
 * Check the CSR in[0..n) (PEM or DER) for exactly expected_id. On success,
 * if pub is not NULL, *pub is a new reference to the requester's public key.
 */
ztb_err ztb_csr_check(const void *in, size_t n, const char *expected_id, ztb_key **pub);

#endif /* ZTB_PKI_CSR_H */
