/*
 * key.h - signing and verification keys, parsed once and shared.
 *
 * A ztb_key is an immutable, reference-counted P-256 key: a private key (it
 * can sign and verify) or a public key (verify only). It is parsed or
 * generated once, then shared read-only between threads; the broker signs
 * with one from every worker thread and the verifier looks them up by kid.
 * Each key is pinned to one JWS algorithm (ES256): a token is checked with the
 * algorithm of the key, never the one the token names.
 *
 * Every key carries its kid, the RFC 7638 JWK thumbprint of its public part
 * (SHA-256, base64url, 43 characters), computed when the key is made.
 *
 * Private key material lives only inside OpenSSL's EVP_PKEY, which clears it
 * when the last reference goes; PEM and DER copies made while loading or
 * saving are wiped before they are freed. Nothing here logs key material.
 *
 * Files: private keys are PKCS#8 PEM ("PRIVATE KEY"), or encrypted PKCS#8
 * ("ENCRYPTED PRIVATE KEY": PBES2 with scrypt N=2^14 r=8 p=1 and
 * AES-256-CBC, the same as `openssl pkcs8 -topk8 -scrypt`) when a passphrase
 * is given; public keys are SubjectPublicKeyInfo PEM ("PUBLIC KEY").
 */
#ifndef ZTB_PKI_KEY_H
#define ZTB_PKI_KEY_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include <ztb/error.h>

#include "common/buf.h"

/* The JWS algorithms a key can be pinned to. Only ES256 is made or accepted. */
typedef enum ztb_alg {
    ZTB_ALG_NONE = 0, /* not a usable algorithm (also: an unknown name) */
    ZTB_ALG_ES256 = 1,
} ztb_alg;

/* Length of a kid (RFC 7638 SHA-256 thumbprint, base64url) without the NUL. */
#define ZTB_KID_LEN 43

/* P-256 field element / coordinate size and raw r||s signature size. */
#define ZTB_P256_COORD_LEN 32
#define ZTB_ES256_SIG_LEN  64

/* Largest PEM file accepted as a key (an encrypted P-256 key is ~600 bytes). */
#define ZTB_KEY_PEM_MAX 16384

typedef struct ztb_key ztb_key;

/* The JOSE name of alg ("ES256"), or "none" for ZTB_ALG_NONE. Never NULL. */
const char *ztb_alg_name(ztb_alg alg);

/* The algorithm called name[0..n) exactly, or ZTB_ALG_NONE if unknown. */
ztb_alg ztb_alg_from_name(const char *name, size_t n);

/* Generate a new P-256 private key. *out is a new reference the caller frees. */
ztb_err ztb_key_generate(ztb_key **out);

/*
 * Parse one PEM block (n bytes, NUL not needed): "PRIVATE KEY" or
 * "ENCRYPTED PRIVATE KEY" (PKCS#8) or "PUBLIC KEY" (SPKI), P-256 only.
 * Nothing but whitespace may follow the block. pass/passlen is the
 * passphrase for an encrypted key (NULL/0 otherwise; it is ignored for a
 * plain one). Errors: KEY (not a P-256 key, not PKCS#8 or SPKI, bad PEM,
 * anything but whitespace around the block), PASSPHRASE (encrypted and no
 * passphrase given, or the wrong one), TOO_LARGE (over ZTB_KEY_PEM_MAX).
 * *out is a new reference. The caller's copy of pem is not modified; wipe it
 * if it is secret.
 */
ztb_err ztb_key_from_pem(const void *pem, size_t n, const void *pass, size_t passlen,
                         ztb_key **out);

/*
 * Like ztb_key_from_pem, also reporting whether the PEM was an encrypted
 * private key (*was_encrypted, may be NULL). Key stores use it to refuse a
 * plaintext key file in an encrypted store.
 */
ztb_err ztb_key_from_pem_ex(const void *pem, size_t n, const void *pass, size_t passlen,
                            ztb_key **out, int *was_encrypted);

/*
 * Make a public P-256 key from its affine coordinates (big-endian, 32 bytes
 * each). KEY if the point is not on the curve. *out is a new reference.
 */
ztb_err ztb_key_from_public_xy(const uint8_t x[ZTB_P256_COORD_LEN],
                               const uint8_t y[ZTB_P256_COORD_LEN], ztb_key **out);

/*
 * Take over pkey (one reference of it) if it is a P-256 key, public or
 * private. On success *out owns that reference; on error the caller still
 * owns pkey. KEY for any other type or curve or an invalid key.
 */
ztb_err ztb_key_from_evp(EVP_PKEY *pkey, ztb_key **out);

/* A public-only copy of k (the private part is not copied). */
ztb_err ztb_key_public_only(const ztb_key *k, ztb_key **out);

/*
 * Append k's private key as PKCS#8 PEM to out (use a secret buffer). With a
 * passphrase (passlen > 0) the key is encrypted (see the top of this file).
 * KEY if k has no private part.
 */
ztb_err ztb_key_private_pem(const ztb_key *k, const void *pass, size_t passlen, ztb_buf *out);

/* Append k's public key as SubjectPublicKeyInfo PEM to out. */
ztb_err ztb_key_public_pem(const ztb_key *k, ztb_buf *out);

/*
 * Load a key file (PEM as ztb_key_from_pem) at path. The file must be a
 * regular file owned by the effective user with no group/other access, and
 * is not followed if it is a symlink (PERMISSION). Passphrase as above.
 */
ztb_err ztb_key_load_file(const char *path, const void *pass, size_t passlen, ztb_key **out);

/*
 * Save k's private key to path atomically with mode 0600 (see keyfile.h),
 * encrypted if passlen > 0. Replaces an existing file only if replace != 0
 * (otherwise EXISTS).
 */
ztb_err ztb_key_save_file(const ztb_key *k, const char *path, const void *pass, size_t passlen,
                          int replace);

/* Add a reference to k and return it (k may be NULL). Thread-safe. */
ztb_key *ztb_key_ref(ztb_key *k);

/*
 * Drop a reference (k may be NULL). The last one frees the key; OpenSSL
 * clears private key material as it frees it. Thread-safe.
 */
void ztb_key_free(ztb_key *k);

/* The kid: RFC 7638 thumbprint, NUL-terminated, ZTB_KID_LEN characters. */
const char *ztb_key_kid(const ztb_key *k);

/* The algorithm this key is pinned to. */
ztb_alg ztb_key_alg(const ztb_key *k);

/* 1 if k holds a private key (can sign). */
int ztb_key_has_private(const ztb_key *k);

/* The public point's affine coordinates, 32 bytes each, big-endian. */
void ztb_key_public_xy(const ztb_key *k, uint8_t x[ZTB_P256_COORD_LEN],
                       uint8_t y[ZTB_P256_COORD_LEN]);

/* 1 if a and b have the same public key (and so the same kid). */
int ztb_key_same_public(const ztb_key *a, const ztb_key *b);

/* The EVP_PKEY inside k, borrowed: do not free it or change it. */
EVP_PKEY *ztb_key_evp(const ztb_key *k);

/*
 * A number unique to this key object in this process (never reused), so
 * per-thread caches can tell keys apart even when memory is reused.
 */
uint64_t ztb_key_serial(const ztb_key *k);

/*
 * For es256.c's per-thread context caches only. note_cached records that a
 * thread may hold a context referring to k's EVP_PKEY; when such a key is
 * freed, the flush generation moves and every thread drops its cached
 * contexts on its next signature operation, so key material does not outlive
 * its ztb_key for longer than that.
 */
void ztb_key_note_cached(const ztb_key *k);
uint64_t ztb_key_flush_generation(void);

#endif /* ZTB_PKI_KEY_H */
