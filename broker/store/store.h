/*
 * store.h - ztb's state in Redis: the one file that knows key names and
 * scripts.
 *
 * Every key of one agent carries the hash tag {<agent name>}, so the
 * per-request script touches one slot. Keys:
 *
 *   ztb:agents                  SET   names of registered agents (admin)
 *   ztb:{A}:agent               HASH  status active|disabled, gen, quarantined,
 *                                     approval, created, spiffe_id
 *   ztb:{A}:seen                HASH  the activity record (store_baseline.h), and
 *                                     the rate buckets: field rl = GCRA theoretical
 *                                     arrival time (µs) of the agent's bucket,
 *                                     rl:<action> of the agent x action bucket
 *   ztb:{A}:jti:<jti>           STR   client assertion replay cache (PX = life)
 *   ztb:join:{<sha256(token)>}  HASH  agent, created; EX = join token TTL
 *   ztb:joinused:{<sha256>}     STR   agent; remembers a used join token (reuse
 *                                     is an anomaly), EX 24 h
 *   ztb:{A}:agent fields of the agent's one current identity document:
 *                 jwk           its public key (JWK text)
 *                 jkt           that key's RFC 7638 thumbprint
 *                 x5t           SHA-256 of the document's DER (base64url)
 *                 identity_exp  its expiry (unix seconds)
 *                 id_gen        the generation it was issued at: a revocation
 *                               of the agent (gen + 1) kills it
 *                 epoch         +1 at every enrollment with a join token;
 *                               sessions carry it, so a re-enrollment ends
 *                               every session of the identity before
 *   ztb:{A}:dpop:<jti>          STR   DPoP proof replay cache (PX = proof window),
 *                                     written by the issue script
 *   ztb:rl:<kind>:<name>        STR   GCRA TAT (µs) of a bucket that is not an
 *                                     agent's: kind "src" = a signal source
 *
 * Every function returns UNAVAILABLE when Redis cannot answer: callers fail
 * closed (503) and issue nothing.
 */
#ifndef ZTB_BROKER_STORE_H
#define ZTB_BROKER_STORE_H

#include <stddef.h>
#include <stdint.h>

#include <ztb/error.h>

#define STORE_NAME_MAX 64 /* agent names: [a-z0-9][a-z0-9._-]{0,62} */

/* 1 if name is a valid agent name (also safe inside keys and SPIFFE IDs). */
int store_agent_name_ok(const char *name);

struct store_agent {
    char name[STORE_NAME_MAX + 1];
    char status[16]; /* "active" or "disabled" ("deleted" is never returned) */
    int64_t generation;
    int quarantined;
    int approval_required;
    int64_t created;     /* unix seconds */
    int64_t incarnation; /* 0, and one more each time a deleted name is added again */
};

/*
 * Register an agent (status active, generation 1). EXISTS if it is there.
 * A name deleted before (store_agent_delete) comes back with the next
 * generation after the one it was deleted at and the next incarnation:
 * generations are never reused, so nothing issued to the deleted agent
 * (tokens, identity documents, sessions, join tokens) is valid again.
 */
ztb_err store_agent_add(const char *name, int64_t now);

/*
 * Delete an agent: it leaves the agent list and every read of it is
 * NOT_FOUND, but its record stays as a tombstone holding its generation
 * (the caller revokes all its tokens first, which raises it). NOT_FOUND if
 * unknown or already deleted.
 */
ztb_err store_agent_delete(const char *name);

/* The incarnation of the agent a join token was made for (0 for tokens
 * made before incarnations existed). JOIN_TOKEN if unknown. */
ztb_err store_join_incarnation(const char *token, int64_t *inc);

/* Read one agent. NOT_FOUND if unknown. */
ztb_err store_agent_get(const char *name, struct store_agent *out);

/* Set status to "active" or "disabled". NOT_FOUND if unknown. */
ztb_err store_agent_set_status(const char *name, const char *status);

/*
 * All agent names, sorted. *names is one allocation the caller frees with
 * free(); *n its count.
 */
ztb_err store_agent_list(char (**names)[STORE_NAME_MAX + 1], size_t *n);

/*
 * A fresh one-time join token for agent, living ttl_s seconds: writes
 * "ztbj_" + 43 base64url chars (256 random bits) into token (>= 49 bytes).
 * Only its SHA-256 is stored. NOT_FOUND if the agent is unknown.
 */
#define STORE_JOIN_TOKEN_LEN 48
ztb_err store_join_create(const char *agent, unsigned ttl_s, int64_t now,
                          char token[STORE_JOIN_TOKEN_LEN + 1]);

/*
 * Consume a join token atomically. On success writes its agent's name. A
 * token used before gives JOIN_TOKEN with *reused = 1 (and the agent it was
 * for in agent); unknown or expired gives JOIN_TOKEN with *reused = 0.
 */
ztb_err store_join_consume(const char *token, char agent[STORE_NAME_MAX + 1], int *reused);

/*
 * Look at a join token without using it: the agent it is for. JOIN_TOKEN if
 * unknown or expired (then *reused says whether it was used before).
 */
ztb_err store_join_peek(const char *token, char agent[STORE_NAME_MAX + 1], int *reused);

/*
 * The facts every authenticated request is checked against, read in one
 * round trip (client_auth.c): status, generation, quarantine and the
 * agent's current identity document. NOT_FOUND if the agent is unknown.
 * enrolled is 0 when the agent has no live identity (never enrolled, or
 * revoked since: id_gen is not the current generation).
 */
struct store_agent_auth {
    char status[16];
    int64_t generation;
    int quarantined;
    int enrolled;
    char jwk[1024];
    char jkt[48];
    char x5t[48];
    char serial[48]; /* the identity document's serial number, hex; "" if not recorded */
    int64_t identity_exp;
    int64_t epoch;
};
ztb_err store_agent_auth_get(const char *name, struct store_agent_auth *out);

/*
 * Make a newly issued identity document the agent's one current identity.
 *   ENROLL  (a join token was used): any key; the identity epoch is bumped
 *           (ending every session of the identity before) and the identity
 *           is bound to the current generation.
 *   RENEW   only the same key (jkt equal to the current one), only while the
 *           current identity is live (id_gen is the generation) and only
 *           from the epoch the caller authenticated in: else KEY (another
 *           key), AGENT_REVOKED (revoked or re-enrolled meanwhile). The
 *           previous document is superseded (its x5t no longer matches).
 * jwk, jkt: the document's public key and its thumbprint; x5t: the SHA-256
 * of its DER, base64url. *epoch_out: the epoch now current. NOT_FOUND if
 * the agent is unknown; STATE if it is not active.
 */
/*
 * Record the serial number (hex) of agent's identity document whose
 * thumbprint is x5t, for `agent show`: only while that document is still
 * the current one (a later enrollment wins). NOT_FOUND if it is not.
 */
ztb_err store_agent_set_identity_serial(const char *name, const char *x5t, const char *serial);

enum store_identity_op {
    STORE_IDENTITY_ENROLL = 1,
    STORE_IDENTITY_RENEW = 2,
};
ztb_err store_agent_set_identity(const char *name, enum store_identity_op op, const char *jwk,
                                 const char *jkt, const char *x5t, int64_t not_after, int64_t epoch,
                                 int64_t *epoch_out);

/* Rate limit: rate tokens per period_s, bursts of up to burst. rate 0: none. */
struct store_rate {
    uint32_t rate;
    uint32_t burst;
    uint32_t period_s;
};

/* Outcome of the per-request check. */
enum store_verdict {
    STORE_OK = 0,
    STORE_UNKNOWN_AGENT = 1,
    STORE_DISABLED = 2,
    STORE_QUARANTINED = 3,
    STORE_AUDIENCE_KILLED = 4,
    STORE_RATE_AGENT = 5,
    STORE_RATE_ACTION = 6,
    STORE_STALE_IDENTITY = 7, /* the credential is not the agent's current identity's */
    STORE_DPOP_REPLAY = 8,    /* the DPoP proof's jti was seen before */
};

/*
 * What the caller's credential binds (client_auth_expect), checked first by
 * the issue script: the agent's identity must be live (issued at its
 * current generation) and, where set, its generation, identity epoch and
 * identity document thumbprint must be these. A DPoP proof id, if given, is
 * then remembered for dpop_ttl_ms (a replay is STORE_DPOP_REPLAY).
 */
struct store_expect {
    int64_t generation;   /* < 0: any */
    int64_t epoch;        /* < 0: any */
    const char *x5t;      /* NULL: any */
    const char *dpop_jti; /* NULL: no proof */
    uint64_t dpop_ttl_ms;
    /* What the agent's activity record and baseline see of an issued token
     * (store_baseline.h): the resource's prefix, up to and including its
     * last '/' (NULL or "": none). */
    const char *resource_prefix;
};

/* What one issued token showed about the agent's baseline (store_baseline.h). */
enum store_bl_phase { STORE_BL_NONE = 0, STORE_BL_LEARNING = 1, STORE_BL_WATCHING = 2 };
#define STORE_BL_NEW_ACTION   1u
#define STORE_BL_NEW_AUDIENCE 2u
#define STORE_BL_NEW_PREFIX   4u
#define STORE_BL_FULL         8u /* a new value was not recorded: the baseline is full */
struct store_baseline_seen {
    enum store_bl_phase phase;
    unsigned new_bits;    /* STORE_BL_NEW_* (watching only) */
    int64_t hour_count;   /* tokens this UTC hour, this one included */
    int64_t hour_added;   /* of which this record added (0: 1, one token) */
    int64_t learned_hour; /* tokens learned in this hour of the day */
    int64_t learn_days;   /* days the learning window spans (>= 1) */
};

struct store_check {
    enum store_verdict verdict;
    int64_t generation;    /* the agent's generation, for the token */
    int approval_required; /* the agent is under "require approval" */
    uint32_t retry_after_ms;
    struct store_baseline_seen bl; /* charge 1 and STORE_OK only */
};

/*
 * The one atomic script per token request. First the caller (expect): agent
 * known and active, its credential that of the current identity (else
 * STALE_IDENTITY: revoked, re-enrolled or renewed since), the DPoP proof id
 * not seen before. charge 0 stops there (the request is refused anyway, and
 * the refusal may be recorded now that the caller is known to be live).
 * charge 1 goes on: not quarantined, audience not killed, then both GCRA
 * buckets (agent, agent x action) checked together and only then both
 * charged. Returns the generation the token must carry. An allowed
 * charged request is also counted in the agent's activity record (last
 * seen, tokens per hour) and its baseline (learned while learning, compared
 * after: out->bl), in the same script: no further round trip.
 */
ztb_err store_issue_check(const char *agent, const struct store_expect *expect, int charge,
                          const char *action, const char *audience,
                          const struct store_rate *agent_rate, const struct store_rate *action_rate,
                          struct store_check *out);

/*
 * Turn rate leases off for good (store_lease.h), logged once with why:
 * every token runs the issue script. For a Redis before 7.0, which cannot
 * run the lease path's write-declared read (the preflight sees it first).
 */
void store_leases_off(const char *why);

/*
 * Take one request from the GCRA bucket ztb:rl:<kind>:<name> (name in the
 * agent-name alphabet), with the token path's GCRA step. ZTB_OK: allowed
 * and charged; RATE_LIMITED: refused, nothing charged, *retry_after_ms (>= 1)
 * until one would be allowed. rate NULL or 0: allowed, no Redis call.
 */
ztb_err store_rate_take(const char *kind, const char *name, const struct store_rate *rate,
                        uint32_t *retry_after_ms);

/*
 * Remember a client assertion's jti until it expires (ttl_ms). REPLAY if it
 * was already seen for this agent.
 */
ztb_err store_assertion_seen(const char *agent, const char *jti, uint64_t ttl_ms);

/* Wipe cached script SHAs etc. (nothing today); here for symmetry. */
void store_init(void);

#endif /* ZTB_BROKER_STORE_H */
