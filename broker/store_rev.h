/*
 * store_rev.h - revocation state, signals and their sources in Redis.
 *
 * With store.c, the only file that knows ztb's Redis key names and scripts
 * (the names verifiers read too are wire/wire.h's, ZTB_WIRE_*_KEY_FMT).
 * Keys (A = an agent name; hash tags keep an agent's keys in one slot):
 *
 *   ztb:rev:jti:<jti>              STR  a revoked token; EX = its remaining life + skew
 *                                  (by the broker's clock: see store_rev_jti)
 *   ztb:{A}:agent  gen             HASH tokens whose ztb.gen is below it are dead
 *   ztb:{A}:agent  quarantined     "1": no new tokens; approval "1": every token
 *                                  needs approval (both read by the issuance script)
 *   ztb:aud:<audience>:killed      STR  audience disabled (value: when); no TTL
 *   ztb:key:<kid>:tainted          STR  tokens signed by kid are dead; EX as announced
 *   ztb:revocations                ZSET member = the event JSON, score = its exp
 *                                  (+inf for an audience kill); also the pub/sub
 *                                  channel every event is published on
 *   ztb:sources                    SET  names of registered signal sources
 *   ztb:src:<name>                 HASH name, secret (SHA-256 hex of the bearer
 *                                  secret), jwk (transmitter key), agent, created
 *   ztb:srcsec:<sha256 hex>        STR  source name, by secret hash
 *   ztb:srcagent:<agent>           STR  source name of an enrolled identity
 *   ztb:sigjti:<sha256 hex>        STR  a (source, signal jti) already received, EX 24 h
 *   ztb:signals                    STREAM one entry per signal (field data = JSON),
 *                                  MAXLEN ~ 10000
 *   ztb:{A}:dual:<entry>           ZSET sources that reported within the window
 *   ztb:{A}:dual:<entry>:sig       HASH source -> its latest signal id
 *   ztb:dual:<kind>:<target>:<entry>[:sig]   the same for targets that are not agents
 *   ztb:action:<id>                HASH a response waiting for an operator, EX 7 d
 *   ztb:actions                    ZSET action ids by creation time
 *   ztb:actpend:<entry>:<kind>:<target>  STR the pending action for that target
 *   ztb:{A}:det:<kind>             STR  detector event count in its window (EX)
 *   ztb:{A}:auds                   SET  audiences the agent was issued tokens for;
 *                                  agent hash field auds_since = when it started
 *
 * Every revocation script changes the state, adds the event to the sorted
 * set, trims expired events and publishes the event, in one atomic call: a
 * verifier that subscribed and then loaded the set cannot miss one.
 *
 * Every function returns UNAVAILABLE when Redis cannot answer (callers fail
 * closed with 503); nothing here changes state half-way.
 */
#ifndef ZTB_BROKER_STORE_REV_H
#define ZTB_BROKER_STORE_REV_H

#include <stddef.h>
#include <stdint.h>

#include <ztb/error.h>

#include "broker/store.h"

struct json_t;

#define STORE_ID_MAX     256 /* jti, audience, kid: printable, no spaces */
#define STORE_SOURCE_MAX 64  /* source names: like agent names */

/* 1 if s is 1..STORE_ID_MAX printable ASCII characters without spaces. */
int store_id_ok(const char *s);

/* ---- revocations --------------------------------------------------------- */

/*
 * Revoke one token: its jti, until exp (+ skew) by the broker's clock, and
 * in Redis for at least min_ttl seconds. Redis is given the remaining
 * seconds, never asked what time it is, so a Redis clock ahead of ours
 * cannot drop the revocation (and min_ttl is margin against a Redis clock
 * that jumps forward later). The event announced, and its score in
 * ztb:revocations, is exp. *applied is 0 only when exp + skew has passed
 * by the broker's own clock: nothing is written. An entry that already
 * lives longer keeps its longer life. The caller decides exp
 * (revocation.c: a verified exp, or the longest token life).
 */
ztb_err store_rev_jti(const char *jti, int64_t exp, unsigned skew, unsigned min_ttl, int *applied);

/*
 * Bump the agent's generation: every token it holds dies. The announcement
 * lives max_ttl seconds (the longest a token can live) from the broker's
 * now. *gen is the new generation, *exp the announcement's expiry.
 * NOT_FOUND for an unknown agent.
 */
ztb_err store_rev_agent(const char *agent, unsigned max_ttl, unsigned skew, int64_t *gen,
                        int64_t *exp);

/*
 * Disable an audience (lift = 0) or lift the kill switch (lift = 1).
 * *changed is 1 if the state changed (may be NULL).
 */
ztb_err store_rev_audience(const char *audience, int lift, unsigned skew, int *changed);

/* Taint a signing key until exp (+ skew), by the broker's clock. */
ztb_err store_rev_key(const char *kid, int64_t exp, unsigned skew);

/*
 * Set or clear an agent flag: "quarantined" or "approval". *changed (may be
 * NULL) is 1 if the value changed. NOT_FOUND for an unknown agent.
 */
ztb_err store_agent_flag(const char *agent, const char *flag, int on, int *changed);

/*
 * The live revocation events (exp + skew not passed by the broker's clock,
 * or until lifted), at most limit: a new JSON array of the event objects
 * (caller decrefs).
 */
ztb_err store_rev_list(unsigned skew, size_t limit, struct json_t **out);

/* What Redis says about one of our tokens (introspection). */
struct store_token_state {
    int revoked;  /* ztb:rev:jti:<jti> exists */
    int64_t gen;  /* the agent's generation; -1 if the agent is unknown */
    int killed;   /* the audience is disabled */
    int tainted;  /* the signing key is tainted */
    int used;     /* single-use: already consumed */
    int consumed; /* single-use: this call consumed it */
};

/*
 * Read the revocation state of a token in one round trip. If consume_ms > 0
 * and the token is otherwise alive (not revoked, gen >= the agent's, audience
 * and key fine), also consume it as a single-use token (SET NX PX
 * ztb:used:<jti>): then exactly one caller ever sees consumed = 1.
 */
ztb_err store_token_state(const char *jti, const char *agent, const char *audience, const char *kid,
                          int64_t token_gen, uint64_t consume_ms, struct store_token_state *out);

/* ---- signal sources ------------------------------------------------------ */

#define STORE_SOURCE_SECRET_LEN 50 /* "ztbsrc_" + 43 base64url characters */

/* 1 if name is a valid source name (the agent-name alphabet). */
int store_source_name_ok(const char *name);

/*
 * Register a signal source. With agent set, the source is that enrolled
 * identity (it authenticates as the agent; no secret). Otherwise a fresh
 * bearer secret is written into secret (only its SHA-256 is stored; the
 * caller shows it once and wipes it). jwk (may be NULL): the public key of
 * its signed SETs. EXISTS if the name (or the agent) is taken.
 */
ztb_err store_source_add(const char *name, const char *jwk, const char *agent, int64_t now,
                         char secret[STORE_SOURCE_SECRET_LEN + 1]);

/* Remove a source (its secret stops working at once). NOT_FOUND if unknown. */
ztb_err store_source_remove(const char *name);

/* All sources as a new JSON array of {name, kind, agent, has_jwk, created}. */
ztb_err store_source_list(struct json_t **out);

/* The source a bearer secret belongs to. NOT_FOUND if none. */
ztb_err store_source_by_secret(const char *secret, char name[STORE_SOURCE_MAX + 1]);

/* The source registered for an enrolled agent. NOT_FOUND if none. */
ztb_err store_source_by_agent(const char *agent, char name[STORE_SOURCE_MAX + 1]);

/* A source's transmitter JWK (text into jwk, cap bytes). NOT_FOUND if the
 * source is unknown or has no key. */
ztb_err store_source_jwk(const char *name, char *jwk, size_t cap);

/* ---- signals ------------------------------------------------------------- */

/* REPLAY if (source, jti) was already received (and processed). */
ztb_err store_signal_known(const char *source, const char *jti);

/* Remember (source, jti) for ttl_s: REPLAY if it was already received. */
ztb_err store_signal_seen(const char *source, const char *jti, unsigned ttl_s);

/* Append one signal record (JSON object text) to the ztb:signals stream. */
ztb_err store_signal_record(const char *json);

/* The newest records first, at most limit: a new JSON array (caller decrefs). */
ztb_err store_signal_list(size_t limit, struct json_t **out);

/*
 * Dual verification: count the distinct sources that reported for (target,
 * entry) within window_s, this one included. target_kind is "agent", "jti",
 * "audience" or "key". When at least need agree, *fired = 1 and the count
 * starts over (one application per quorum). signal_ids gets the
 * contributing signals' ids, comma-separated (cut to cap).
 */
ztb_err store_dual_count(const char *target_kind, const char *target, const char *entry,
                         const char *source, const char *signal_id, unsigned window_s,
                         unsigned need, unsigned *have, int *fired, char *signal_ids, size_t cap);

/* ---- operator confirmation ----------------------------------------------- */

#define STORE_ACTION_TTL (7 * 86400)

struct store_action {
    char id[32];
    char entry[65];       /* the anomaly_responses entry */
    char response[24];    /* its response name, e.g. "quarantine" */
    char target_kind[12]; /* agent, jti, audience, key */
    char target[STORE_ID_MAX + 1];
    int64_t target_exp; /* jti: the token's exp if known, else 0 */
    char signals[512];  /* the signals that asked for it, comma-separated */
    char status[16];    /* pending, confirmed, rejected, applied, failed */
    int64_t created;
};

/*
 * File a response for an operator. If one is already pending for the same
 * (entry, target), the signal ids are added to it and *created = 0; a->id is
 * set to the action's id either way.
 */
ztb_err store_action_create(struct store_action *a, int64_t now, int *created);

/*
 * An operator's decision: confirm = 1 (pending or failed -> confirmed) or 0
 * (pending -> rejected). Fills a. NOT_FOUND for an unknown or expired id,
 * STATE if it was already decided (a->status says how).
 */
ztb_err store_action_decide(const char *id, int confirm, const char *by, int64_t now,
                            struct store_action *a);

/* Record the outcome of a confirmed action ("applied" or "failed"). */
ztb_err store_action_set_status(const char *id, const char *status);

/* Recent actions, newest first, at most limit: a new JSON array. */
ztb_err store_action_list(size_t limit, struct json_t **out);

/* ---- detectors ----------------------------------------------------------- */

/* Count one event of kind for agent in a window of window_s: *count after it. */
ztb_err store_detect_count(const char *agent, const char *kind, unsigned window_s, int64_t *count);

/*
 * Record that agent was issued a token for audience. *fire = 1 when the
 * audience is new for the agent and the agent has been using audiences for
 * at least learn_s (before that, everything is new).
 */
ztb_err store_detect_audience(const char *agent, const char *audience, unsigned learn_s, int *fire);

#endif /* ZTB_BROKER_STORE_REV_H */
