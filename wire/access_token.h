/*
 * access_token.h - verifying a ztb access token: the one path the SDK's
 * verifier, the broker's introspection and its delegation (a subject token
 * presented to /v1/token) all take, so no two of them can disagree on what
 * a valid token is.
 *
 * Three steps, cheapest first, each its own call so a caller can put its
 * own check between them (the SDK refetches the JWKS on an unknown kid and
 * checks its key set is fresh before trusting a signature):
 *
 *   access_token_verify_signature  the JWS (pki/jws.c: the key chosen by
 *                                  kid, the algorithm pinned by the key);
 *                                  the payload is kept in the struct
 *   access_token_read_claims       typ at+jwt, then the claims' shape
 *                                  (claims_parse: strict, no allocation)
 *   access_token_check             iss, aud, exp, nbf, iat against what the
 *                                  caller expects, on its clock and skews
 *
 * access_token_verify runs all three. What follows is each caller's own:
 * the action and resource (gateways), the revocation state (a revocation
 * feed, or Redis in one script for the broker), the cnf binding, consuming
 * a single-use token.
 *
 * Must never: hand out claims of a token whose signature did not verify
 * (read_claims refuses a struct that verify_signature did not fill), or pick
 * a key or algorithm the token names.
 */
#ifndef ZTB_WIRE_ACCESS_TOKEN_H
#define ZTB_WIRE_ACCESS_TOKEN_H

#include <stddef.h>
#include <stdint.h>

#include <ztb/error.h>

#include "pki/jws.h"
#include "wire/claims.h"

/* A token being verified. Large (about 14 KiB): callers keep one per
 * thread or per request, never on a small stack. */
struct access_token {
    int signed_ok; /* access_token_verify_signature succeeded */
    int claims_ok; /* access_token_read_claims succeeded */
    ztb_jws_header hdr;
    struct claims c;
    size_t payload_len;
    char payload[CLAIMS_PAYLOAD_MAX + 1]; /* the verified payload, NUL-terminated */
};

/* What the caller expects of the claims. */
struct access_token_expect {
    const char *issuer;   /* iss must be this */
    const char *audience; /* aud must be this; NULL: any (the caller checks) */
    int64_t now;          /* the caller's clock, Unix seconds */
    unsigned skew_s;      /* allowed on nbf and iat: nbf <= now + skew, iat <= now + skew */
    unsigned exp_skew_s;  /* allowed on exp: now < exp + exp_skew (the broker: 0) */
};

/*
 * Check tok[0..len) (at most ZTB_JWS_DEFAULT_MAX bytes) against the key set
 * and keep its header and payload in *t (overwritten). The JWS errors
 * (jws.h); CLAIMS for a token within the size cap whose payload is over
 * CLAIMS_PAYLOAD_MAX.
 */
ZTB_WUR ztb_err access_token_verify_signature(const ztb_keyset *ks, const char *tok, size_t len,
                                              struct access_token *t);

/* typ (TYP unless at+jwt or application/at+jwt), then the claims (CLAIMS,
 * JSON; see claims.h). INVALID_ARG if the signature was not verified. */
ZTB_WUR ztb_err access_token_read_claims(struct access_token *t);

/* In this order: ISSUER, AUDIENCE, EXPIRED, NOT_YET_VALID, IAT; ZTB_OK if
 * all hold. INVALID_ARG if the claims were not read. */
ZTB_WUR ztb_err access_token_check(const struct access_token *t,
                                   const struct access_token_expect *e);

/* The three above in turn. */
ZTB_WUR ztb_err access_token_verify(const ztb_keyset *ks, const char *tok, size_t len,
                                    const struct access_token_expect *e, struct access_token *t);

#endif /* ZTB_WIRE_ACCESS_TOKEN_H */
