/*
 * types.h - the types a caller of the policy engine sees.
 *
 * A policy is loaded once (policy_load*, load.h), then evaluated from any
 * number of threads (policy_eval, eval.h) until its last reference is dropped
 * (policy_unref, policy.h). Decisions point into the policy they came from:
 * their strings stay valid while the caller holds that policy's reference
 * (the broker holds it for the length of one request; see holder.h).
 *
 * Must never: grow a field the evaluator would have to allocate to fill.
 */
#ifndef ZTB_POLICY_TYPES_H
#define ZTB_POLICY_TYPES_H

#include <stdint.h>

#include <jansson.h>

/* A loaded, compiled, immutable policy. Opaque; reference-counted. */
typedef struct policy policy;

/* What the request gets. */
typedef enum policy_effect {
    POLICY_DENY = 0,
    POLICY_ALLOW = 1,
    POLICY_APPROVAL_REQUIRED = 2, /* allowed once enough approvers said yes */
} policy_effect;

/* Proof of possession the token must be bound to (its `cnf`). */
typedef enum policy_binding {
    POLICY_BINDING_NONE = 0, /* a bearer token is acceptable */
    POLICY_BINDING_ANY = 1,  /* DPoP or mTLS, either will do */
    POLICY_BINDING_DPOP = 2, /* DPoP (RFC 9449): cnf.jkt */
    POLICY_BINDING_MTLS = 3, /* mTLS (RFC 8705): cnf.x5t#S256 */
} policy_binding;

/* A token bucket: rate tokens per period seconds, at most burst at once. */
typedef struct policy_rate {
    uint32_t rate;
    uint32_t burst;
    uint32_t period;
} policy_rate;

/* What comes with an allow. */
typedef struct policy_obligations {
    uint32_t ttl;               /* token lifetime, seconds, already capped by max_ttl */
    uint8_t single_use;         /* the token may be presented once */
    uint8_t binding;            /* enum policy_binding */
    policy_rate per_agent;      /* the agent's bucket, shared by all its actions */
    policy_rate per_action;     /* the agent x action bucket */
    const char *approval_group; /* approver group, NULL when no approval is needed */
    uint32_t approvers;         /* distinct approvers needed (0 when none) */
    uint32_t approval_ttl;      /* s a pending approval waits; 0: the broker's default */
} policy_obligations;

/* A source address: family 0 (unknown), 4 (addr[0..4)) or 6 (addr[0..16)). */
typedef struct policy_ip {
    uint8_t family;
    uint8_t addr[16];
} policy_ip;

/* What is known about the request besides who asks what. */
typedef struct policy_context {
    int64_t now;     /* the current time, Unix seconds (passed in: tests use a fake clock) */
    const char *act; /* delegation: the `act` subject; NULL when not delegated */
    /* delegation: the subject token named this agent in its may_act (RFC 8693
     * §4.4), so it could be presented by this agent only */
    int act_restricted;
    policy_ip source;
    /* RFC 9396 authorization_details (an array of objects, or one object), or NULL */
    const json_t *authorization_details;
} policy_context;

/* One token request. Strings are NUL-terminated and untrusted. */
typedef struct policy_request {
    const char *agent;    /* "billing-bot", or its SPIFFE ID in the policy's trust domain */
    const char *action;   /* the scope: "service:verb", e.g. "payments:refund" */
    const char *audience; /* e.g. "https://payments.internal" */
    const char *resource; /* e.g. "orders/1234"; "" when the request names none */
    policy_context ctx;
} policy_request;

/* Why a decision is what it is. */
typedef enum policy_reason {
    POLICY_REASON_ALLOWED = 0,     /* allow rules matched (decision.rule and .matched) */
    POLICY_REASON_NO_MATCH = 1,    /* no allow rule covers the request: default deny */
    POLICY_REASON_CONDITION = 2,   /* an allow rule covers it but a condition is not met */
    POLICY_REASON_DENY_RULE = 3,   /* an explicit deny rule matched */
    POLICY_REASON_CONFLICT = 4,    /* matching allow rules demand incompatible obligations */
    POLICY_REASON_BAD_REQUEST = 5, /* a field of the request is malformed */
} policy_reason;

/* How many matching allow rules a decision lists (all of them are counted). */
#define POLICY_MAX_MATCHED 8

typedef struct policy_decision {
    policy_effect effect;
    policy_reason reason;
    /*
     * The deciding rule's id: the deny rule; for allow, the first matching
     * allow rule by id (for approval, the first one demanding it); for
     * CONDITION the rule whose condition failed; for CONFLICT the first of
     * the two. NULL for NO_MATCH and BAD_REQUEST.
     */
    const char *rule;
    const char *other_rule; /* CONFLICT: the second rule; else NULL */
    /*
     * CONDITION: the condition that failed, as written in the policy (e.g.
     * `limits[0]: amount <= 50`); CONFLICT: what conflicts; BAD_REQUEST: which
     * field and why. Static or owned by the policy; NULL otherwise.
     */
    const char *detail;
    uint8_t detail_unknown; /* the condition in detail could not be read (the request lacks it) */
    policy_obligations ob;  /* meaningful when effect != POLICY_DENY; zero otherwise */
    uint32_t n_matched;     /* allow rules that matched (all of them) */
    const char *matched[POLICY_MAX_MATCHED]; /* the first of them by id */
} policy_decision;

/* Anomaly signals. */
typedef enum policy_severity {
    POLICY_SEVERITY_LOW = 1,
    POLICY_SEVERITY_MEDIUM = 2,
    POLICY_SEVERITY_HIGH = 3,
    POLICY_SEVERITY_CRITICAL = 4,
} policy_severity;

/* Responses, in increasing order of impact. */
typedef enum policy_response_kind {
    POLICY_RESPONSE_REVOKE_TOKEN = 1,     /* revoke the token the signal is about */
    POLICY_RESPONSE_REQUIRE_APPROVAL = 2, /* the agent's next tokens need approval */
    POLICY_RESPONSE_QUARANTINE = 3,       /* no new tokens for the agent */
    POLICY_RESPONSE_REVOKE_ALL = 4,       /* bump the agent's generation: all its tokens die */
    POLICY_RESPONSE_KILL_AUDIENCE = 5,    /* disable the audience for everyone */
    POLICY_RESPONSE_TAINT_KEY = 6,        /* taint the signing key */
} policy_response_kind;

/* One anomaly response that applies to a signal. */
typedef struct policy_signal_response {
    const char *id;                /* the entry's id in the policy */
    policy_response_kind response; /* what to do */
    uint32_t independent_signals;  /* signals from distinct sources needed (>= 1) */
    uint32_t window;               /* seconds within which they must arrive */
    uint8_t operator_confirmation; /* an operator must confirm before it is applied */
} policy_signal_response;

#endif /* ZTB_POLICY_TYPES_H */
