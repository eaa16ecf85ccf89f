/*
 * es256.h - ES256 (ECDSA P-256 with SHA-256) at the speed of the crypto.
 *
 * Signatures are raw r||s, 64 bytes, as JWS uses them (RFC 7518 §3.4), not
 * the DER that OpenSSL speaks; the conversion is done here, strictly.
 *
 * How it stays fast: OpenSSL 3 makes an EVP_PKEY_CTX by fetching the
 * algorithm from its provider store (locks, allocations) on every
 * EVP_PKEY_CTX_new + *_init. Here each thread keeps a small cache of
 * initialised sign and verify contexts for the last few keys it used, and one
 * SHA-256 context over a digest fetched once, so a signature costs what
 * `openssl speed` measures plus hashing and encoding. Keys themselves are
 * shared read-only between threads; contexts never are.
 *
 * What it must never do: verify with any algorithm other than the key's, or
 * keep a freed key's material alive indefinitely. When a cached key is freed,
 * each thread drops its cached contexts at its next call here (see
 * ztb_key_note_cached); ztb_es256_thread_cleanup() drops them at once, and
 * they are released when the thread exits.
 */
#ifndef ZTB_PKI_ES256_H
#define ZTB_PKI_ES256_H

#include <stddef.h>
#include <stdint.h>

#include <ztb/error.h>
#include <ztb/export.h>

#include "pki/key.h"

/* Longest DER ECDSA-Sig-Value for P-256: SEQUENCE of two 33-byte INTEGERs. */
#define ZTB_ES256_DER_MAX 72

/*
 * Sign the n bytes at msg (hashed with SHA-256 here) with k, writing the raw
 * r||s signature to sig. KEY if k has no private part, ALG if k is not pinned
 * to ES256, CRYPTO if OpenSSL fails. Thread-safe; no allocation after the
 * thread's first call for k.
 */
ztb_err ztb_es256_sign(const ztb_key *k, const void *msg, size_t n, uint8_t sig[ZTB_ES256_SIG_LEN]);

/*
 * Check a raw r||s signature over msg with k. SIG_FORMAT unless siglen is 64,
 * SIGNATURE if it does not verify (including r or s zero or out of range),
 * ALG if k is not pinned to ES256. Thread-safe.
 */
ZTB_WUR ztb_err ztb_es256_verify(const ztb_key *k, const void *msg, size_t n, const uint8_t *sig,
                                 size_t siglen);

/* SHA-256 of n bytes with the thread's cached context. */
/*
 * ECDSA P-256 signature over a SHA-256 digest computed elsewhere (the signer
 * process signs what the HTTP process hashed). der holds *derlen bytes (at
 * least ZTB_ES256_DER_MAX); on success *derlen is the DER length.
 */
ztb_err ztb_es256_sign_digest(const ztb_key *k, const uint8_t digest[32], uint8_t *der,
                              size_t *derlen);

ztb_err ztb_es256_sha256(const void *msg, size_t n, uint8_t out[32]);

/*
 * Convert a DER ECDSA-Sig-Value to raw r||s. Strict DER: minimal lengths and
 * integers, positive, each at most 32 significant bytes, nothing after.
 * SIG_FORMAT otherwise.
 */
ztb_err ztb_es256_der_to_raw(const uint8_t *der, size_t n, uint8_t raw[ZTB_ES256_SIG_LEN]);

/* Convert raw r||s to DER into der (ZTB_ES256_DER_MAX bytes). Returns the length. */
size_t ztb_es256_raw_to_der(const uint8_t raw[ZTB_ES256_SIG_LEN], uint8_t der[ZTB_ES256_DER_MAX]);

/* Release the calling thread's cached contexts now (they are rebuilt on demand). */
void ztb_es256_thread_cleanup(void);

#endif /* ZTB_PKI_ES256_H */
