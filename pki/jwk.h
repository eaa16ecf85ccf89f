/*
 * jwk.h - JSON Web Keys: thumbprints (RFC 7638), public JWKs and JWK Sets
 * (RFC 7517) for the keys ztb signs with.
 *
 * Rendering: the broker publishes the public half of each key a verifier
 * must know as {"kty":"EC","crv":"P-256","kid":..,"use":"sig","alg":"ES256",
 * "x":..,"y":..}; kid is the key's RFC 7638 thumbprint.
 *
 * Parsing is strict, because a JWKS decides which signatures a verifier
 * accepts: JSON with duplicate member names is refused (jansson's
 * JSON_REJECT_DUPLICATES), as is any document over ZTB_JWKS_MAX bytes, any
 * entry carrying private or symmetric key material ("d", "k"), two entries
 * with one kid, and any P-256 signing key whose members are not exactly
 * right (coordinates of 32 bytes in canonical base64url, a point on the
 * curve, a kid equal to its thumbprint). Entries for other key types, curves
 * or uses are skipped as RFC 7517 §5 asks: ztb never verifies with them.
 *
 * Thumbprints are computed for EC, RSA, OKP and oct JWKs (RFC 7638 §3.2's
 * required members, lexicographic order, no whitespace), so the RFC's RSA
 * example can be checked; only P-256 keys are ever used to sign.
 */
#ifndef ZTB_PKI_JWK_H
#define ZTB_PKI_JWK_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include <ztb/error.h>

#include "common/buf.h"
#include "pki/key.h"
#include "pki/keyset.h"

/* Largest JWKS document accepted, in bytes. */
#define ZTB_JWKS_MAX (64 * 1024)

/* Largest single JWK text accepted by ztb_jwk_parse, in bytes. */
#define ZTB_JWK_MAX 4096

/* ztb_jwks_parse / ztb_jwk_to_key flags */
#define ZTB_JWK_KID_ANY 0x1u /* accept any kid, not only the thumbprint */

/*
 * The RFC 7638 thumbprint of the P-256 public key (x, y): 43 base64url
 * characters and a NUL into out.
 */
ztb_err ztb_jwk_thumbprint_p256(const uint8_t x[ZTB_P256_COORD_LEN],
                                const uint8_t y[ZTB_P256_COORD_LEN], char out[ZTB_KID_LEN + 1]);

/*
 * The RFC 7638 thumbprint of a JWK object (kty EC, RSA, OKP or oct) into out.
 * KEY if a required member is missing or not a string, UNSUPPORTED for
 * another kty, JWKS if jwk is not an object. The values are taken as they are
 * (they are not decoded or checked).
 */
ztb_err ztb_jwk_thumbprint(const json_t *jwk, char out[ZTB_KID_LEN + 1]);

/* Append k's public JWK (object text, no whitespace) to out. */
ztb_err ztb_jwk_render(const ztb_key *k, ztb_buf *out);

/* Append {"keys":[...]} with the public JWKs of keys[0..n) to out. */
ztb_err ztb_jwks_render(const ztb_key *const *keys, size_t n, ztb_buf *out);

/*
 * A public ztb_key from a JWK object: kty "EC", crv "P-256", x and y of 32
 * bytes each in canonical base64url, a point on the curve; no "d"; "alg", if
 * present, "ES256"; "use", if present, "sig"; "key_ops", if present, only
 * "verify". A "kid", if present, must be a string and (unless flags has
 * ZTB_JWK_KID_ANY) equal the thumbprint. KEY otherwise. *out is a new
 * reference. This is how a DPoP proof's embedded "jwk" becomes a key.
 */
ztb_err ztb_jwk_to_key(const json_t *jwk, unsigned flags, ztb_key **out);

/* ztb_jwk_to_key on JSON text (n bytes, at most ZTB_JWK_MAX). JSON if invalid. */
ztb_err ztb_jwk_parse(const char *json, size_t n, unsigned flags, ztb_key **out);

/*
 * Parse a JWKS document (n bytes) into a new keyset of its P-256 signing
 * keys, each under its kid (see the top of this file for what is refused).
 * TOO_LARGE over ZTB_JWKS_MAX bytes or ZTB_KEYSET_MAX entries, JSON for
 * invalid JSON or duplicate names, JWKS for everything else, including a set
 * with no usable key. *out has one reference.
 */
ztb_err ztb_jwks_parse(const char *json, size_t n, unsigned flags, ztb_keyset **out);

#endif /* ZTB_PKI_JWK_H */
