/*
 * revfeed.h - the revocation feed: keeps a verifier's revset in step with
 * the broker's revocations in Redis.
 *
 * A feed owns one thread (every signal blocked) that does what
 * docs/protocol.md asks of a verifier: subscribe to `ztb:revocations` first,
 * then load every live entry of the `ztb:revocations` sorted set (both
 * ZTB_WIRE_REV_*, wire/wire.h) (ZSCAN, so
 * entries present throughout are seen even while the set changes), swap the
 * loaded state in, then apply each published event as it arrives. It pings
 * Redis every second on the subscriber connection; hearing nothing for three
 * seconds, or any error, counts as losing the feed. It then reconnects with
 * backoff and loads the state afresh (a kill switch lifted while it was away
 * must not linger), swapping it in whole.
 *
 * Sequence: each published event carries the number its script INCR'd
 * ZTB_WIRE_REV_SEQ_KEY to (wire/revevent.h). A load reads that key before
 * the ZSCAN; events up to it that arrive on the subscription are already
 * in the state and are skipped, later ones must come one by one. A jump
 * (a lost message), or a sequence that goes back (Redis lost or reset it),
 * ends the session like a lost connection: the state is refused (after the
 * grace) until a fresh load, which the next session makes at once.
 *
 * Gateway threads check tokens against the state under a read lock (a few
 * hash lookups). While the feed is lost, revfeed_check() keeps answering
 * from the last state for `grace_ms` after the loss was noticed and then
 * fails closed with REVOCATION_STALE until the feed is back; grace 0 (the
 * default) refuses at once. Before the first load completes every check is
 * REVOCATION_STALE.
 *
 * The state holds at most max_entries revocations (revset.h). An event that
 * does not fit makes the state refuse every token with REVOCATION_STALE at
 * once (no grace: the state is known to be wrong, not just old) and ends
 * the session; the feed then reloads, with backoff, until a full load fits.
 */
#ifndef ZTB_SDK_REVFEED_H
#define ZTB_SDK_REVFEED_H

#include <stddef.h>
#include <stdint.h>

#include <ztb/error.h>

#include "sdk/src/idset.h"
#include "sdk/src/redis_conn.h"

/* Heartbeat: a PING every REVFEED_PING_MS; silence for REVFEED_DEAD_MS is a loss. */
#define REVFEED_PING_MS 1000
#define REVFEED_DEAD_MS 3000

struct revfeed_opts {
    struct redis_target target;
    unsigned skew_s;             /* entries are kept this long after their exp */
    unsigned grace_ms;           /* keep answering this long after a loss */
    unsigned startup_timeout_ms; /* revfeed_start waits this long for the first load */
    size_t max_entries;          /* most revocations held, all kinds (0: no limit) */
};

struct revfeed_stats {
    size_t entries;      /* revocations held */
    size_t bytes;        /* memory of the tables */
    int live;            /* subscribed and loaded now */
    uint64_t events;     /* events applied since start */
    uint64_t bad_events; /* events that could not be parsed (ignored) */
    uint64_t syncs;      /* full loads (1 + reconnections) */
    uint64_t evicted;    /* expired entries dropped to make room under the cap */
    uint64_t refused;    /* events refused: the state was full of live entries */
    int full;            /* refusing every token until a full load fits */
};

struct revfeed;

/*
 * Start a feed and wait up to startup_timeout_ms for its first load. On
 * success the feed keeps itself current until revfeed_stop. UNAVAILABLE
 * (with a message in err, never a password) if Redis could not be loaded in
 * time; NOMEM. The options' target is copied.
 */
ztb_err revfeed_start(const struct revfeed_opts *o, struct revfeed **out, char *err, size_t errcap);

/* Stop the thread, close the connections, free everything. f may be NULL. */
void revfeed_stop(struct revfeed *f);

/*
 * Check a token at now (Unix seconds): REVOCATION_STALE if the feed is lost
 * beyond the grace (or never loaded), else revset_check()'s answer.
 * Thread-safe; never blocks on I/O.
 */
ztb_err revfeed_check(struct revfeed *f, const char *kid, const char *aud, const char *agent,
                      int64_t gen, const uint8_t jti_id[IDSET_ID_LEN], int64_t now);

/* Counters and sizes, for ztb_verifier_stats. Thread-safe. */
void revfeed_stats(struct revfeed *f, struct revfeed_stats *s);

/* Tests: drop the subscriber connection as if the network failed. */
void revfeed_break_for_test(struct revfeed *f);

#endif /* ZTB_SDK_REVFEED_H */
