/*
 * store_rev.h - revocation state in Redis: revoked tokens, agents, audiences
 * and keys, agent flags, and the announcements verifiers follow.
 *
 * With store.c and the other store_*.c files, the only code that knows
 * ztb's Redis key names and scripts (the names verifiers read too are
 * wire/wire.h's, ZTB_WIRE_*_KEY_FMT).
 * Keys (A = an agent name). Hash tags: the revocation state is all under
 * {rev}, so every script that writes a revocation, its event and its
 * sequence number touches one Redis Cluster slot; an agent's keys are under
 * {A}:
 *
 *   ztb:{rev}:jti:<jti>            STR  a revoked token; EX = its remaining life + skew
 *                                  (by the broker's clock: see store_rev_jti)
 *   ztb:{A}:agent  gen             HASH tokens whose ztb.gen is below it are dead
 *   ztb:{A}:agent  quarantined     "1": no new tokens; approval "1": every token
 *                                  needs approval (both read by the issuance script)
 *   ztb:{rev}:auds                 HASH disabled audience -> when; no TTL. Each
 *                                  broker holds it in memory for issuance
 *                                  (store_audience_killed)
 *   ztb:{rev}:key:<kid>:tainted    STR  tokens signed by kid are dead; EX as announced
 *   ztb:{rev}:events               ZSET member = the event JSON, score = its exp
 *                                  (+inf for an audience kill)
 *   ztb:{rev}:seq                  STR  the sequence of the last event
 *   channel ztb:revocations        every event, with its "seq" (PUBLISH)
 *
 * A token, key or audience revocation changes the state, adds the event to
 * the sorted set, trims expired events and publishes the event, in one
 * atomic call: a verifier that subscribed and then loaded the set cannot
 * miss one. An agent revocation is two: the generation in the agent's slot,
 * then the event (store_rev_agent).
 *
 * Every function returns UNAVAILABLE when Redis cannot answer (callers fail
 * closed with 503); nothing here changes state half-way.
 */
#ifndef ZTB_BROKER_STORE_REV_H
#define ZTB_BROKER_STORE_REV_H

#include <stddef.h>
#include <stdint.h>

#include <ztb/error.h>

#include "broker/store/store.h"

struct json_t;

#define STORE_ID_MAX 256 /* jti, audience, kid: printable, no spaces */

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

/*
 * 1 if the audience is disabled, 0 if not, by this broker's in-memory view
 * of ztb:{rev}:auds (reloaded when 100 ms old, and before the next call
 * after this broker kills or lifts one); -1 if the view is older than 2 s
 * and Redis cannot be read now: the caller refuses (fail closed).
 */
int store_audience_killed(const char *audience);

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
    int revoked;  /* ztb:{rev}:jti:<jti> exists */
    int64_t gen;  /* the agent's generation; -1 if the agent is unknown */
    int killed;   /* the audience is disabled */
    int tainted;  /* the signing key is tainted */
    int used;     /* single-use: already consumed */
    int consumed; /* single-use: this call consumed it */
};

/*
 * Read the revocation state of a token (three round trips, one per slot:
 * the revocation state, the agent, the single-use marker). If consume_ms > 0
 * and the token is otherwise alive (not revoked, gen >= the agent's, audience
 * and key fine), also consume it as a single-use token (SET NX PX
 * ztb:used:<jti>): then exactly one caller ever sees consumed = 1.
 */
ztb_err store_token_state(const char *jti, const char *agent, const char *audience, const char *kid,
                          int64_t token_gen, uint64_t consume_ms, struct store_token_state *out);

/*
 * Remember a DPoP proof presented to a gateway (GET /v1/authorize) under the
 * key SDK verifiers use too (ZTB_WIRE_DPOP_KEY_FMT: jkt, proof jti), SET NX
 * for keep_ms: OK the first time, DPOP_REPLAY after, UNAVAILABLE when Redis
 * cannot answer; INVALID_ARG for ids unfit for a key name.
 */
ztb_err store_dpop_remember(const char *jkt, const char *jti, uint64_t keep_ms);

#endif /* ZTB_BROKER_STORE_REV_H */
