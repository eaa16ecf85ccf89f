/*
 * revocation.h - apply one anomaly response: revoke a token, require
 * approval, quarantine, revoke all of an agent's tokens, kill an audience,
 * taint a signing key (and the lifts an operator may ask for).
 *
 * Every path that changes revocation state goes through revocation_apply:
 * signals (policy responses), confirmed operator actions, ztbctl, and the
 * RFC 7009 endpoint. It writes the state with one atomic Redis script
 * (store_rev.h: state, snapshot and announcement together), then writes a
 * durable (fsync'ed) audit line naming the cause and the signals behind it,
 * the second record that survives the loss of Redis.
 *
 * Entries live as long as they can matter, by the broker's clock (never
 * Redis's): a token until the exp the broker verified itself (+ skew), or
 * for the longest a token can live when the broker has not seen the token
 * (an exp a signal source or an operator states is never believed), and in
 * Redis never less than that longest life; a generation bump and a key
 * taint for the longest a token can live; an audience kill until lifted.
 */
#ifndef ZTB_BROKER_REVOCATION_H
#define ZTB_BROKER_REVOCATION_H

#include <stdint.h>

#include <ztb/error.h>

#include "pki/key.h"
#include "policy/types.h"

struct rev_request {
    policy_response_kind response;
    const char *target;   /* jti, agent name, audience or kid, by response */
    int64_t jti_exp;      /* REVOKE_TOKEN: the token's exp, as far as the caller knows */
    int jti_exp_verified; /* 1: jti_exp is from a token whose signature the broker
                             verified; else it is only a claim (a signal, an
                             operator) and the entry lives the longest life */
    int lift;             /* QUARANTINE, REQUIRE_APPROVAL, KILL_AUDIENCE: lift it instead */
    const char *actor;    /* audit actor: "broker", "operator:uid=0", "agent:x" */
    const char *cause;    /* "signal", "operator", "action", "revoke_endpoint" */
    const char *entry;    /* the anomaly_responses entry, or NULL */
    const char *signals;  /* the signals that caused it (ids, comma-separated), or NULL */
    const char *reason;   /* free text from an operator, or NULL */
};

struct rev_result {
    int changed; /* state changed (a repeat may change nothing); REVOKE_TOKEN: 1 when
                    stored, 0 only when the verified exp has passed */
    int64_t gen; /* REVOKE_ALL: the agent's new generation */
    int64_t exp; /* when the entry stops mattering (0: until lifted) */
    char new_kid[ZTB_KID_LEN + 1]; /* TAINT_KEY: the key that signs now, if we rotated */
    char detail[128];              /* what happened beyond the state, for the caller */
    /* the audit record of the revocation: written, pending (in memory until
     * the log can be written: audit_record_queued) or lost (the queue was
     * full). Either of the last two: revocation_apply returns IO, the
     * revocation itself is in effect. */
    int audit_pending;
    int audit_lost;
};

/* "written", "pending" or "lost": res's audit record, for answers. */
const char *revocation_audit_state(const struct rev_result *res);

/* The target kind a response acts on: "jti", "agent", "audience" or "key". */
const char *revocation_target_kind(policy_response_kind r);

/*
 * Apply r. NOT_FOUND for an unknown agent, INVALID_ARG for a malformed
 * target, UNAVAILABLE if Redis cannot answer (nothing applied), IO if the
 * state changed but the audit line could not be written now (out says
 * whether it is pending or lost). out may be NULL.
 */
ztb_err revocation_apply(const struct rev_request *r, struct rev_result *out);

/* The durations revocations are sized by (from the key store, or defaults);
 * skew is at least ZTB_WIRE_MAX_SKEW_S, the most any verifier accepts. */
struct rev_limits {
    unsigned max_token_ttl;
    unsigned skew;
    unsigned jwks_max_age;
};
void revocation_limits(struct rev_limits *l);

#endif /* ZTB_BROKER_REVOCATION_H */
