/*
 * dpop.h - DPoP proofs (RFC 9449): proving possession of a key per request.
 *
 * A proof is a JWS, header {"typ":"dpop+jwt","alg":"ES256","jwk":<public
 * key>}, claims {"jti","htm","htu","iat"} plus "ath" (base64url SHA-256 of
 * the access token) when presented with one. The agent makes one per HTTP
 * request; the broker checks it at /v1/token and binds the token to the key
 * (cnf.jkt = the key's RFC 7638 thumbprint); a gateway checks it at the
 * resource with the token's hash.
 *
 * Checking follows RFC 9449 §4.3: well formed; typ dpop+jwt; alg ES256
 * (the only one accepted, pinned); the signature verifies with the embedded
 * public key (a private member in it is refused; its kid, if any, means
 * nothing); htm matches the request's method exactly and htu its URI once
 * both are normalized as RFC 3986 §6.2.2-6.2.3 says (common/uri.h: case,
 * default port, percent-encodings, dot segments; query and fragment left
 * out); iat within
 * [now - max_age - skew, now + skew]; ath equals the token's hash when a
 * token is presented and is absent otherwise. Remembering jti to refuse a
 * replay is the caller's job (it knows its replay store); out->jti is given
 * for it. Every failure is ZTB_ERR_DPOP, except signature-level errors which
 * keep their own codes from jws.h.
 */
#ifndef ZTB_PKI_DPOP_H
#define ZTB_PKI_DPOP_H

#include <stddef.h>
#include <stdint.h>

#include <ztb/error.h>
#include <ztb/export.h>

#include "common/buf.h"
#include "pki/jwk.h"
#include "pki/key.h"

#define ZTB_DPOP_JTI_MAX    128
#define ZTB_DPOP_HTU_MAX    1024
#define ZTB_DPOP_CLAIMS_MAX 4096 /* decoded claims bytes */

typedef struct ztb_dpop_result {
    char jkt[ZTB_KID_LEN + 1];      /* thumbprint of the proof's key */
    char jti[ZTB_DPOP_JTI_MAX + 1]; /* for the caller's replay check */
    int64_t iat;
} ztb_dpop_result;

/*
 * Append a proof for (htm, htu) at time iat signed by k to out. With
 * access_token non-NULL the proof carries its ath. jti is 128 random bits.
 * INVALID_ARG for an empty or over-long htm/htu. Thread-safe.
 */
ztb_err ztb_dpop_proof_make(const ztb_key *k, const char *htm, const char *htu, int64_t iat,
                            const char *access_token, ztb_buf *out);

/*
 * Check proof[0..len) for a request (htm, htu) at time now, accepting an iat
 * up to max_age_s old with skew_s either side. access_token: the token the
 * request presents (its ath must match), or NULL (then the proof must have
 * no ath). Fills out on success. Thread-safe; allocates only for the key.
 */
ZTB_WUR ztb_err ztb_dpop_proof_check(const char *proof, size_t len, const char *htm,
                                     const char *htu, const char *access_token, int64_t now,
                                     unsigned max_age_s, unsigned skew_s, ztb_dpop_result *out);

/*
 * The claims of a proof as ztb_dpop_proof_check reads them, with the strict
 * reader (common/json_reader.h). A has_ flag is 1 only when the member was
 * there with the right type (a string that fit, an integer in range);
 * has_ath_member is 1 when "ath" was there at all.
 */
typedef struct ztb_dpop_claims {
    int has_jti, has_htm, has_htu, has_iat, has_ath, has_ath_member;
    char jti[ZTB_DPOP_JTI_MAX + 1];
    char htm[32];
    char htu[ZTB_DPOP_CLAIMS_MAX + 1];
    char ath[64];
    int64_t iat;
} ztb_dpop_claims;

/* Read claims JSON json[0..n) into *c (reset first). DPOP for anything that
 * is not one strict JSON object within the reader's limits. */
ztb_err ztb_dpop_claims_read(const void *json, size_t n, ztb_dpop_claims *c);

/* base64url(SHA-256(token)) into out (44 bytes with the NUL): the "ath". */
ztb_err ztb_dpop_ath(const char *token, size_t len, char out[44]);

#endif /* ZTB_PKI_DPOP_H */
