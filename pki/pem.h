/*
 * pem.h - strict PEM reading for keys, CSRs and certificates.
 *
 * OpenSSL's PEM readers skip anything before a "-----BEGIN" line and accept
 * legacy per-block encryption headers. Here a PEM input is one or more
 * blocks with nothing but whitespace around and between them, and no
 * headers; each block's label is reported so the caller decides what it
 * accepts. DER that may hold a private key is cleared when freed.
 *
 * Private keys are read by label as PKCS#8 ("PRIVATE KEY") or encrypted
 * PKCS#8 ("ENCRYPTED PRIVATE KEY"); never the legacy forms, and never via
 * OpenSSL's password callback (which could prompt on a terminal).
 */
#ifndef ZTB_PKI_PEM_H
#define ZTB_PKI_PEM_H

#include <stddef.h>

#include <openssl/evp.h>

#include <ztb/error.h>

typedef struct ztb_pem_block {
    char *label;        /* e.g. "CERTIFICATE" */
    unsigned char *der; /* the decoded body */
    long len;
} ztb_pem_block;

/* 1 if in[0..n) starts (after whitespace) with a PEM BEGIN line. */
int ztb_pem_looks_like(const void *in, size_t n);

/*
 * Decode the PEM blocks of in[0..n) into b[0..max). *count gets the number.
 * MALFORMED for anything that is not whitespace-separated headerless PEM,
 * TOO_LARGE for more than max blocks. On error nothing needs freeing.
 */
ztb_err ztb_pem_read_blocks(const void *in, size_t n, ztb_pem_block *b, size_t max, size_t *count);

/* Free blocks (DER cleared first: it may be a private key). */
void ztb_pem_blocks_free(ztb_pem_block *b, size_t count);

/*
 * A private key from one PEM block of PKCS#8, plain or encrypted (then
 * pass/passlen decrypts it; PASSPHRASE if missing or wrong). *was_encrypted
 * may be NULL. KEY for other labels or bad DER. Any key type: callers check.
 * A "PUBLIC KEY" block gives a public key when allow_public is set.
 */
ztb_err ztb_pem_read_key(const void *in, size_t n, const void *pass, size_t passlen,
                         int allow_public, EVP_PKEY **out, int *was_encrypted);

#endif /* ZTB_PKI_PEM_H */
