/*
 * assertion.h - read the claims of a client assertion (RFC 7523
 * private_key_jwt) with the strict reader.
 *
 * The broker reads an assertion's claims twice: before its signature is
 * checked, only to learn which agent claims to have signed it (iss), and
 * after, to check them all. Both reads are this one function over the strict
 * pull reader (common/json_reader.h): no jansson tree is built for bytes
 * nobody has authenticated yet. It judges only syntax and types; which
 * values are acceptable is client_auth.c's decision.
 *
 * Must never: allocate, or report a member of the wrong type as present.
 */
#ifndef ZTB_BROKER_ASSERTION_H
#define ZTB_BROKER_ASSERTION_H

#include <stddef.h>
#include <stdint.h>

#include <ztb/error.h>

#include "pki/spiffe.h"

#define ASSERTION_JTI_MAX 128 /* longer is refused by client_auth.c */
#define ASSERTION_AUD_MAX 512 /* longer cannot be our token endpoint */
#define ASSERTION_AUD_N   4   /* most audience values an array may hold */

/* The claims client_auth.c checks. A has_ flag is 1 only when the member
 * was there with the right type (a string that fit, an integer in range). */
struct assertion_claims {
    int has_iss, has_sub, has_aud, has_exp, has_iat, has_jti, has_nbf;
    int nbf_member; /* nbf was there, of any type (client_auth.c refuses one it cannot read) */
    char iss[ZTB_SPIFFE_ID_MAX + 1];
    char sub[ZTB_SPIFFE_ID_MAX + 1];
    /* aud: a string (naud 1), or an array of 1..ASSERTION_AUD_N strings that
     * all fit (has_aud only then; another shape: has_aud 0) */
    char aud[ASSERTION_AUD_N][ASSERTION_AUD_MAX + 1];
    int naud;
    char jti[ASSERTION_JTI_MAX + 1];
    int64_t exp, iat, nbf;
};

/*
 * Read the claims JSON json[0..n) into *c (fully reset first). Returns OK,
 * or JSON / TOO_LARGE for text that is not one strict JSON object within the
 * reader's limits; then *why (if not NULL) names the problem in a few words
 * (a static string).
 */
ztb_err assertion_claims_read(const void *json, size_t n, struct assertion_claims *c,
                              const char **why);

#endif /* ZTB_BROKER_ASSERTION_H */
