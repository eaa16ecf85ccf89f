/*
 * jws.h - JWS compact serialization (RFC 7515) with ES256, sign and verify.
 *
 * Signing (the broker, once per token; the SDK for client assertions and
 * DPoP proofs): header.payload.signature written straight into a ztb_buf
 * (a fixed one if the caller wants no allocation), signed with the key's own
 * algorithm, signature raw r||s (RFC 7518 §3.4).
 *
 * Verifying (gateways, on every request): cheap checks come first and never
 * allocate, so garbage costs almost nothing: the length cap, the split into
 * exactly three segments, the header (strict, see jws_header.h), refused
 * members, the algorithm name, the kid lookup, the signature's length. Only
 * then SHA-256 and ECDSA. The key is chosen by kid and the algorithm is the
 * key's, never the token's: a token naming another alg (HS256 keyed with the
 * public key, "none", RS256...) is refused with ALG before any crypto.
 *
 * Each rejection has its own error:
 *   TOO_LARGE         token longer than the cap (default 8 KiB)
 *   JWS_FORMAT        not three '.'-separated segments, or an empty header
 *   BASE64            a segment that is not canonical unpadded base64url
 *   JSON              header not strict JSON, or a duplicate member name
 *   JWS_HEADER        header valid JSON but not a usable JOSE header
 *   FORBIDDEN_HEADER  jku, x5u, x5c or crit present; jwk unless allowed
 *   ALG               alg is not the key's algorithm
 *   UNKNOWN_KID       no kid, or a kid the key set does not have
 *   SIG_FORMAT        signature not 64 bytes (e.g. DER-encoded)
 *   SIGNATURE         the signature does not verify
 *
 * A verified token hands back its decoded header (alg, kid, typ) and payload
 * so the caller checks claims without decoding again. typ is reported, not
 * judged: the SDK requires "at+jwt" for access tokens.
 */
#ifndef ZTB_PKI_JWS_H
#define ZTB_PKI_JWS_H

#include <stddef.h>
#include <stdint.h>

#include <ztb/error.h>
#include <ztb/export.h>

#include "common/buf.h"
#include "pki/jws_header.h"
#include "pki/key.h"
#include "pki/keyset.h"

/* Default cap on the length of a compact token, in bytes. */
#define ZTB_JWS_DEFAULT_MAX 8192

/* ztb_jws_verify_opts.flags */
#define ZTB_JWS_ALLOW_JWK 0x1u /* accept a "jwk" header member (DPoP proofs) */

typedef struct ztb_jws_verify_opts {
    size_t max_len; /* 0: ZTB_JWS_DEFAULT_MAX */
    unsigned flags; /* ZTB_JWS_ALLOW_JWK */
} ztb_jws_verify_opts;

typedef struct ztb_jws_sign_opts {
    const char *typ; /* "typ" value (e.g. "at+jwt"); NULL for none */
    int omit_kid;    /* 1: no "kid" member (default: the key's kid) */
    /*
     * A complete protected header chosen by the caller (JSON object text,
     * header_len bytes), used instead of the one built from typ/omit_kid:
     * e.g. a DPoP proof's {"typ":"dpop+jwt","alg":"ES256","jwk":{...}}. It
     * must be strict JSON, name the key's alg, and have none of jku, x5u,
     * x5c, crit. It is encoded exactly as given.
     */
    const char *header;
    size_t header_len;
} ztb_jws_sign_opts;

/*
 * Sign payload[0..n) with k and append the compact JWS to out (opts may be
 * NULL: header {"alg":"ES256","kid":<kid>}). On error out is as it was.
 * KEY if k cannot sign; ALG/FORBIDDEN_HEADER/JSON/JWS_HEADER for a bad
 * caller header; INVALID_ARG for a typ over ZTB_JWS_TYP_MAX bytes;
 * TOO_LARGE if out is full. Thread-safe; allocates nothing beyond out.
 */
ztb_err ztb_jws_sign(const ztb_key *k, const ztb_jws_sign_opts *opts, const void *payload, size_t n,
                     ztb_buf *out);

/*
 * A signature made elsewhere: fill sig (raw r||s) for digest, the SHA-256 of
 * the signing input, with the private key whose kid is given. The broker's
 * HTTP process passes one that asks its signer process (broker/signer/signer.h).
 */
typedef ztb_err (*ztb_jws_sign_fn)(void *arg, const char *kid, const uint8_t digest[32],
                                   uint8_t sig[ZTB_ES256_SIG_LEN]);

/*
 * As ztb_jws_sign, but k may be public only: the header names k's alg and
 * kid, and fn(arg, kid, digest, sig) makes the signature. fn's error is
 * returned as is; out is then left as it was.
 */
ztb_err ztb_jws_sign_with(const ztb_key *k, const ztb_jws_sign_opts *opts, const void *payload,
                          size_t n, ztb_jws_sign_fn fn, void *arg, ztb_buf *out);

/*
 * ztb_jws_sign_with in two halves, for a signature that is made while the
 * caller does something else: ztb_jws_signing_input appends the signing
 * input (header.payload, base64url) to out and sets digest to its SHA-256;
 * ztb_jws_append_signature then appends ".signature". On an error out is
 * left as it was (signing_input) or in error (append).
 */
ztb_err ztb_jws_signing_input(const ztb_key *k, const ztb_jws_sign_opts *opts, const void *payload,
                              size_t n, ztb_buf *out, uint8_t digest[32]);
ztb_err ztb_jws_append_signature(ztb_buf *out, const uint8_t sig[ZTB_ES256_SIG_LEN]);

/*
 * Verify the compact JWS tok[0..len) against the key its kid names in ks.
 * On success, if hdr is non-NULL it holds the decoded header, and if payload
 * is non-NULL the decoded payload is appended to it. On error neither is
 * meaningful (payload is left as it was). opts may be NULL. Thread-safe;
 * ks is only read.
 */
ZTB_WUR ztb_err ztb_jws_verify(const ztb_keyset *ks, const char *tok, size_t len,
                               const ztb_jws_verify_opts *opts, ztb_jws_header *hdr,
                               ztb_buf *payload);

/*
 * The same with one given key (the kid, if any, is not consulted): for a
 * DPoP proof checked with the key from its own "jwk" (the caller makes it
 * with ztb_jwk_parse and passes ZTB_JWS_ALLOW_JWK), or a token without kid.
 */
ZTB_WUR ztb_err ztb_jws_verify_with_key(const ztb_key *k, const char *tok, size_t len,
                                        const ztb_jws_verify_opts *opts, ztb_jws_header *hdr,
                                        ztb_buf *payload);

/*
 * The checks of verify that need no key: length, segments, header (with the
 * same refusals), and the signature's encoded length. Fills hdr. For a
 * caller that must see the header (e.g. a DPoP "jwk") before it can pick a
 * key. Verifies nothing: never trust the payload on the strength of this.
 */
ztb_err ztb_jws_peek(const char *tok, size_t len, const ztb_jws_verify_opts *opts,
                     ztb_jws_header *hdr);

#endif /* ZTB_PKI_JWS_H */
