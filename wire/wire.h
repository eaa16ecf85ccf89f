/*
 * wire.h - the names the broker and every verifier must agree on, defined
 * once and built into both (broker/ and sdk/ link wire/): the URNs of the
 * token exchange, the access token's typ and token types, the Redis key
 * names and channel of the revocation state, the clock-skew bound and the
 * longest DPoP proof age, and the member an error response names its ztb
 * error in. docs/protocol.md is the prose of this file.
 *
 * The rest of the contract lives beside it in wire/: the access token's
 * claims (claims.h: writer and strict reader), verifying an access token
 * (access_token.h), the revocation events (revevent.h) and error responses
 * (errors.h).
 *
 * The skew bound is what makes replay markers safe across replicas: a
 * verifier accepts a token until exp + its skew, and no verifier may be
 * configured with more than ZTB_WIRE_MAX_SKEW_S, so a marker that lives
 * until exp + ZTB_WIRE_MAX_SKEW_S outlives every replica's acceptance. The
 * broker never applies a skew to its own clock (introspection answers
 * "active" only before exp, RFC 7662).
 *
 * Must never: change a value or name here without changing
 * docs/protocol.md and both sides together (they are built from this file,
 * so they cannot disagree; deployed verifiers of an older version can).
 */
#ifndef ZTB_WIRE_WIRE_H
#define ZTB_WIRE_WIRE_H

#include <stdint.h>

/* ---- URNs and token types (RFC 8693, RFC 7523, RFC 9068) ---------------- */

#define ZTB_WIRE_GRANT_TOKEN_EXCHANGE "urn:ietf:params:oauth:grant-type:token-exchange"
#define ZTB_WIRE_TOKEN_TYPE_ACCESS    "urn:ietf:params:oauth:token-type:access_token"
#define ZTB_WIRE_ASSERTION_JWT        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
#define ZTB_WIRE_ASSERTION_SESSION    "urn:ztb:params:oauth:client-assertion-type:session"
/* A signal's event type is this prefix and its name (docs/signals.md). */
#define ZTB_WIRE_SIGNAL_URI_PREFIX "urn:ztb:signal:"

/* The JOSE typ of an access token, and the one verifiers also accept (RFC 9068 §4). */
#define ZTB_WIRE_TYP_ACCESS      "at+jwt"
#define ZTB_WIRE_TYP_ACCESS_LONG "application/at+jwt"

/* The authorization_details type of a plain action (RFC 9396): a token
 * whose request named no other carries {"type": "ztb_action", ...}. */
#define ZTB_WIRE_DETAIL_TYPE_ACTION "ztb_action"

/* token_type of an issued or introspected token (RFC 6749, RFC 9449). */
#define ZTB_WIRE_TOKEN_TYPE_BEARER "Bearer"
#define ZTB_WIRE_TOKEN_TYPE_DPOP   "DPoP"

/* ---- error responses ------------------------------------------------------ */

/*
 * The member of an error response (RFC 6749 §5.2) that names the ztb error
 * beside "error": a ztb_err name (ztb_err_name, e.g. "QUARANTINED"). Clients
 * map it, never the error_description text (errors.h).
 */
#define ZTB_WIRE_ERROR_MEMBER "ztb_error"

/* ---- Redis: the revocation state verifiers and the broker share ----------- */

/*
 * Every key of the revocation state carries the hash tag {rev}, so the
 * scripts that write a revocation, its event and its sequence number touch
 * one Redis Cluster slot (docs/redis.md, "Key families"). An agent's own
 * keys carry {AGENT} (ZTB_WIRE_AGENT_KEY_FMT); an agent's generation lives
 * in its hash and is announced here.
 */
#define ZTB_WIRE_REV_TAG "{rev}"

/* The pub/sub channel every revocation event is published on (PUBLISH, a
 * single Redis or Sentinel), its sharded form (SPUBLISH/SSUBSCRIBE in the
 * {rev} slot, Redis Cluster), and the sorted set of every live event
 * (member = the event JSON, score = its exp). */
#define ZTB_WIRE_REV_CHANNEL  "ztb:revocations"
#define ZTB_WIRE_REV_SCHANNEL "ztb:{rev}:revocations"
#define ZTB_WIRE_REV_ZSET     "ztb:{rev}:events"
/* The revocation sequence: INCR'd by the script that writes a revocation;
 * the published event carries the new value as "seq" (revevent.h), so a
 * verifier sees a gap when it missed one. */
#define ZTB_WIRE_REV_SEQ_KEY "ztb:{rev}:seq"

/* Revocation state, written by the broker (docs/protocol.md). */
#define ZTB_WIRE_REV_JTI_KEY_FMT     "ztb:{rev}:jti:%s"         /* a revoked token's jti */
#define ZTB_WIRE_AGENT_KEY_FMT       "ztb:{%s}:agent"           /* agent hash: field "gen" */
#define ZTB_WIRE_AGENT_GEN_FIELD     "gen"                      /* ... tokens below it are dead */
#define ZTB_WIRE_AUD_KILLED_HASH     "ztb:{rev}:auds"           /* killed audience -> when */
#define ZTB_WIRE_KEY_TAINTED_KEY_FMT "ztb:{rev}:key:%s:tainted" /* a signing key's kid */

/*
 * The names of the revocation state before the {rev} layout: a broker
 * finding them moves them at start (broker/store/store_migrate.c) and a
 * verifier never reads them. Kept here so the move and the docs name them.
 */
#define ZTB_WIRE_OLD_REV_ZSET        "ztb:revocations"
#define ZTB_WIRE_OLD_REV_SEQ_KEY     "ztb:revocations:seq"
#define ZTB_WIRE_OLD_REV_JTI_PREFIX  "ztb:rev:jti:"
#define ZTB_WIRE_OLD_AUD_KILLED_FMT  "ztb:aud:%s:killed"
#define ZTB_WIRE_OLD_KEY_TAINTED_PFX "ztb:key:"

/* A single-use token was consumed: SET NX PX until exp + ZTB_WIRE_MAX_SKEW_S. */
#define ZTB_WIRE_USED_KEY_FMT "ztb:used:%s" /* the token's jti */

/* A DPoP proof was presented to a gateway: SET NX PX (see ztb_wire_dpop_keep_ms). */
#define ZTB_WIRE_DPOP_KEY_FMT "ztb:dpop:%s:%s" /* the key's jkt, the proof's jti */

/* Verifiers' reports of callers refused for carrying no ztb token or one
 * that is not ours: a list, LPUSHed and LTRIMmed by verifiers, RPOPed by
 * brokers (wire/unknown_report.h). */
#define ZTB_WIRE_UNKNOWN_REPORTS_KEY "ztb:unknown_reports"

/* The installation's marker, written once at a broker's first start
 * (SET NX): "INSTALL_ID CREATED_UNIX_TIME". A Redis that lost its data has
 * none while the broker's state directory says it was written (docs/redis.md). */
#define ZTB_WIRE_MARKER_KEY "ztb:marker"

/* ---- Redis: human approvals (docs/protocol.md, "Approvals") --------------- */

/* One approval (HASH, id "apr_" + 22 base64url characters), every id by
 * creation time (ZSET), an agent's open approvals by expiry (ZSET, the
 * per-agent limit), the open approval of one exact request (STR, keyed by
 * the SHA-256 of what it binds), and an approver group's members (SET) with
 * the set of groups. All under the hash tag {apr}: the scripts that file
 * and close an approval touch one Redis Cluster slot (and build the names
 * of other approvals from these prefixes, broker/store/store_approvals.c). */
#define ZTB_WIRE_APPROVAL_KEY_FMT        "ztb:{apr}:id:%s"
#define ZTB_WIRE_APPROVALS_KEY           "ztb:{apr}:all"
#define ZTB_WIRE_APPROVALS_AGENT_KEY_FMT "ztb:{apr}:agent:%s"
#define ZTB_WIRE_APPROVAL_DUP_KEY_FMT    "ztb:{apr}:dup:%s:%s"
#define ZTB_WIRE_APPROVERS_KEY_FMT       "ztb:{apr}:approvers:%s"
#define ZTB_WIRE_APPROVER_GROUPS_KEY     "ztb:{apr}:groups"

/* The path an agent polls an approval at (the id appended). */
#define ZTB_WIRE_APPROVAL_PATH "/v1/approvals/"

/* ---- Redis: SSF event streams (docs/signals.md, "Stream management") ------ */

/*
 * The streams SSF receivers created through the management API, one key
 * family under one hash tag so that every script touching them is
 * single-slot on a Redis Cluster: every stream (HASH, stream id -> its
 * record), each receiver's stream count (HASH, agent -> count) and the
 * verification throttle of one stream (STR, SET NX PX).
 */
#define ZTB_WIRE_SSF_STREAMS_KEY    "ztb:ssf:{ssf}:streams"
#define ZTB_WIRE_SSF_OWNERS_KEY     "ztb:ssf:{ssf}:owners"
#define ZTB_WIRE_SSF_VERIFY_KEY_FMT "ztb:ssf:{ssf}:verify:%s" /* the stream id */

/* ---- clocks ---------------------------------------------------------------- */

/*
 * Largest clock skew any verifier may be configured with, in seconds: the
 * key store's default skew (pki/rotation.h), which revocation entries and
 * retired keys are kept for, so a verifier never tolerates more than the
 * broker's state is kept for.
 */
#define ZTB_WIRE_MAX_SKEW_S 60

/* Largest DPoP proof age any verifier may be configured with, in seconds. */
#define ZTB_WIRE_DPOP_MAX_AGE_S 300

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
 * ZTB_WIRE_MAX_SKEW_S), plus a second. A marker every verifier shares
 * (ZTB_WIRE_DPOP_KEY_FMT) passes ZTB_WIRE_DPOP_MAX_AGE_S, not the writer's
 * own proof age: a replica sharing the Redis may accept older proofs, and
 * would take the replay once the marker is gone.
 */
static inline uint64_t ztb_wire_dpop_keep_ms(int64_t iat, unsigned max_age_s, int64_t now)
{
    int64_t left = iat + (int64_t)max_age_s + ZTB_WIRE_MAX_SKEW_S + 1 - now;
    return (uint64_t)(left > 1 ? left : 1) * 1000u;
}

#endif /* ZTB_WIRE_WIRE_H */
