/*
 * wire.h - the contract the broker and every verifier must agree on, defined
 * once and built into both (broker/ and sdk/): the clock-skew bound, the
 * longest DPoP proof age, and the Redis key names of the replay markers that
 * verifiers and the broker write side by side.
 *
 * The skew bound is what makes replay markers safe across replicas: a
 * verifier accepts a token until exp + its skew, and no verifier may be
 * configured with more than ZTB_WIRE_MAX_SKEW_S, so a marker that lives
 * until exp + ZTB_WIRE_MAX_SKEW_S outlives every replica's acceptance. The
 * broker never applies a skew to its own clock (introspection answers
 * "active" only before exp, RFC 7662).
 *
 * Must never: change a value or key name here without changing
 * docs/protocol.md ("Revocation state in Redis") and both sides together.
 */
#ifndef ZTB_COMMON_WIRE_H
#define ZTB_COMMON_WIRE_H

#include <stdint.h>

/*
 * Largest clock skew any verifier may be configured with, in seconds: the
 * key store's default skew (pki/rotation.h), which revocation entries and
 * retired keys are kept for, so a verifier never tolerates more than the
 * broker's state is kept for.
 */
#define ZTB_WIRE_MAX_SKEW_S 60

/* Largest DPoP proof age any verifier may be configured with, in seconds. */
#define ZTB_WIRE_DPOP_MAX_AGE_S 300

/* A single-use token was consumed: SET NX PX until exp + ZTB_WIRE_MAX_SKEW_S. */
#define ZTB_WIRE_USED_KEY_FMT "ztb:used:%s" /* the token's jti */

/* A DPoP proof was presented to a gateway: SET NX PX (see ztb_wire_dpop_keep_ms). */
#define ZTB_WIRE_DPOP_KEY_FMT "ztb:dpop:%s:%s" /* the key's jkt, the proof's jti */

/*
 * How long a single-use marker must live from now, in milliseconds: until
 * exp + ZTB_WIRE_MAX_SKEW_S (at least 1 s, so a SET PX is never refused).
 */
static inline uint64_t ztb_wire_used_keep_ms(int64_t exp, int64_t now)
{
    int64_t left = exp + ZTB_WIRE_MAX_SKEW_S - now;
    return (uint64_t)(left > 1 ? left : 1) * 1000u;
}

/*
 * How long a DPoP proof id must be remembered from now, in milliseconds:
 * until the last moment a verifier accepting proofs up to max_age_s old
 * could accept it with any skew allowed (its iat + max_age_s +
 * ZTB_WIRE_MAX_SKEW_S), plus a second.
 */
static inline uint64_t ztb_wire_dpop_keep_ms(int64_t iat, unsigned max_age_s, int64_t now)
{
    int64_t left = iat + (int64_t)max_age_s + ZTB_WIRE_MAX_SKEW_S + 1 - now;
    return (uint64_t)(left > 1 ? left : 1) * 1000u;
}

#endif /* ZTB_COMMON_WIRE_H */
