/*
 * store_lease.h - rate leases: units of an agent's two rate buckets that
 * Redis granted this broker ahead of the requests that use them.
 *
 * Every token request still reads the agent from Redis (store_issue_check:
 * status, generation, identity, quarantine, approval), so a revocation,
 * quarantine, re-enrollment or renewal is in force for the very next
 * request, as before. What a lease saves is the rate-limit script: when an
 * agent asks for many tokens of one action, audience and resource prefix,
 * the script charges its buckets for several units at once (at most
 * STORE_LEASE_MAX_UNITS, at most an eighth of the smaller burst, and only
 * as many as the buckets allow), and the next requests take those units
 * here, without a script. So:
 *
 *   - an agent never gets more tokens than its buckets allow: every unit
 *     was charged in Redis before it is used, whichever replica uses it;
 *   - a unit lives STORE_LEASE_LIFE_MS; units a lease did not use are
 *     given back to the buckets when it ends (settlement, below), at most
 *     what their grant still held ahead of Redis's now (struct
 *     store_lease_due), so they are lost to the agent for at most that
 *     long and never given to it twice;
 *   - a grant is sized by the requests of its kind in the last
 *     STORE_LEASE_LIFE_MS (so that it lasts about its life): none below 4
 *     (under 40 a second one script per token is cheaper than a lease's
 *     read, grant and settlement), at most STORE_LEASE_MAX_UNITS and an
 *     eighth of the smaller burst; an agent with a small burst (< 16)
 *     never gets more than one unit at a time. Without a lease every
 *     request runs the script, as it did before leases.
 *
 * Settlement: every STORE_LEASE_SWEEP_MS a thread writes what the leases
 * did to Redis (store_lease_settle in store.c): the tokens issued from
 * them to the agent's activity record and baseline (counts an operator
 * sees up to one sweep late), and the units of ended leases back to the
 * buckets. store_lease_stop settles everything.
 */
#ifndef ZTB_BROKER_STORE_LEASE_H
#define ZTB_BROKER_STORE_LEASE_H

#include <stddef.h>
#include <stdint.h>

#include <ztb/error.h>

#include "broker/store/store.h"

#define STORE_LEASE_LIFE_MS   100
#define STORE_LEASE_SWEEP_MS  100
#define STORE_LEASE_MAX_UNITS 64

/* What a lease is for: units of these two buckets, for tokens of this
 * action, audience and resource prefix (the baseline's view of a token:
 * all of a lease's tokens look alike to it). */
struct store_lease_id {
    const char *agent, *action, *audience, *prefix;
    uint64_t agent_interval_us, action_interval_us; /* 0: no limit */
    uint32_t agent_burst, action_burst;
    uint64_t hash; /* store_lease_hash, set once by a caller that makes several calls; 0: none */
};

/* The hash of id's fields (never 0), to compute once per request. */
uint64_t store_lease_hash(const struct store_lease_id *id);

/*
 * Take one unit of id's lease, granted while the agent's baseline window
 * ended at bl_until ("" for none). 1: taken (the request is within its
 * rate limits). 0: none to take; *want is the number of units to ask the
 * script for (>= 1).
 */
int store_lease_take(const struct store_lease_id *id, const char *bl_until, uint64_t now_ms,
                     unsigned *want);

/* 1 if id has a unit to take now (a hint: store_lease_take decides);
 * else 0 and *want as store_lease_take's. */
int store_lease_ready(const struct store_lease_id *id, uint64_t now_ms, unsigned *want);

/* The script granted `granted` units (>= 1) for id, one of them used by
 * the caller, and left the buckets' TATs at agent_tat and action_tat (µs,
 * 0 for no limit): the other units become the lease, for
 * STORE_LEASE_LIFE_MS. */
void store_lease_grant(const struct store_lease_id *id, unsigned granted, const char *bl_until,
                       int64_t agent_tat, int64_t action_tat, uint64_t now_ms);

/* The units to ask for at most: 1 for a small burst. */
unsigned store_lease_cap(const struct store_lease_id *id);

/*
 * What one lease has to write to Redis. A refund gives back at most the
 * part of the grants' charge still ahead of Redis's now: with the bucket's
 * TAT never below now, time that passed while a replica held the units is
 * spent, and giving back all of them would let the agent burst past its
 * limit. So each bucket's refund is min(refund x interval, tat - now),
 * tat the smallest TAT the refunded units' grants wrote (0: none).
 */
struct store_lease_due {
    char *agent, *action; /* owned */
    uint64_t agent_interval_us, action_interval_us;
    uint64_t used;                 /* tokens issued from it, not yet counted */
    uint64_t refund;               /* units charged and not used, to give back */
    int64_t agent_tat, action_tat; /* µs, see above */
    /* This settlement's id: Redis applies it once (a retry after an answer
     * was lost is a no-op). */
    char id[40];
};

/*
 * Move what the leases have to write into out[0..cap) (all: end every
 * lease first, as at shutdown). Returns the number moved; the caller frees
 * each with store_lease_due_free after settling it, or hands it back with
 * store_lease_restore if Redis could not take it.
 */
size_t store_lease_collect(struct store_lease_due *out, size_t cap, uint64_t now_ms, int all,
                           const char *agent /* NULL: every agent's */);
void store_lease_restore(const struct store_lease_due *d);
void store_lease_due_free(struct store_lease_due *d);

/* Leases held now, units handed out from them since start, and
 * settlements Redis did not take. */
size_t store_lease_count(void);
uint64_t store_lease_units_taken(void);
uint64_t store_lease_settle_failures(void);

/* Write one lease's counts and refund to Redis (store.c), then tell the
 * settled callback what the agent's baseline saw. */
ztb_err store_lease_settle(const struct store_lease_due *d);

/* What a settlement saw: the agent's hour count after the lease's tokens
 * (bl->hour_added of them), for the baseline's rate detector. Called on
 * the settlement thread. */
typedef void (*store_lease_settled_fn)(const char *agent, const char *action,
                                       const struct store_baseline_seen *bl);
void store_lease_settled(const char *agent, const char *action,
                         const struct store_baseline_seen *bl);

/* The settlement thread (settled may be NULL); stop settles every lease
 * and drops them all. */
ztb_err store_lease_start(store_lease_settled_fn settled);
void store_lease_stop(void);

/* Settle everything now (the thread's work, done by the caller): tests and
 * shutdown. Returns the number of leases settled. */
size_t store_lease_settle_all(int end_leases);

/* Settle what agent's leases did so far (before an operator reads its
 * activity). */
size_t store_lease_settle_agent(const char *agent);

/* Monotonic ms (the clock leases run on). */
uint64_t store_lease_now_ms(void);

#endif /* ZTB_BROKER_STORE_LEASE_H */
