/*
 * revset.h - a verifier's local copy of the revocation state.
 *
 * The broker announces every revocation (docs/protocol.md, "Revocation state
 * in Redis") as a small JSON event (wire/revevent.h): one token (jti), every token of an agent
 * below a generation, an audience kill switch, a tainted signing key. A
 * revset holds the events that still matter, so checking a token against
 * them costs a few hash lookups and no round trip:
 *
 *   jti       revoked token ids, in a compact idset (20-byte entries)
 *   agent     name -> lowest generation still valid
 *   audience  killed audiences (until lifted, or until exp)
 *   key       tainted kids
 *
 * An entry stops mattering once every token it could refuse has expired:
 * its event's exp plus the verifier's clock skew (an exp of 0 means never:
 * an audience stays killed until lifted). revset_sweep() drops those.
 *
 * A revset holds at most max_entries entries of all kinds together (a
 * broker, or anyone who can write the revocation channel, must not be able
 * to grow a gateway's memory without bound). An event that needs a new entry
 * when the set is full first evicts every entry that no longer matters
 * (counted in `evicted`). If the set is still full of entries that matter,
 * the event is refused (counted in `refused`) and the set becomes `full`:
 * from then on revset_check() refuses every token with REVOCATION_STALE,
 * because a revocation it was told about is missing. A live revocation is
 * never forgotten silently. Only a fresh set (the feed's next full load,
 * which succeeds once enough entries have expired or the cap is raised)
 * clears it; see docs/gateways.md, "Revocation set cap".
 *
 * A revset does no locking and no I/O: revfeed.c owns one, fills it from
 * Redis, and guards it with a read-write lock.
 */
#ifndef ZTB_SDK_REVSET_H
#define ZTB_SDK_REVSET_H

#include <stddef.h>
#include <stdint.h>

#include <ztb/error.h>

#include "sdk/src/idset.h"
#include "wire/revevent.h"

/* A name -> (gen, exp) map for agents, audiences and kids. */
struct rev_name {
    char *name; /* NULL: empty slot */
    uint32_t hash;
    int64_t gen;
    int64_t until; /* exp + skew; INT64_MAX: never */
};

struct rev_names {
    struct rev_name *e;
    size_t cap; /* power of two */
    size_t count;
};

struct revset {
    struct idset jtis;
    struct rev_names agents, audiences, keys;
    unsigned skew_s;
    size_t max_entries; /* 0: no limit (tests only: verifiers always set one) */
    int full;           /* an event was refused: every check is REVOCATION_STALE */
    uint64_t evicted;   /* entries that no longer mattered, dropped to make room */
    uint64_t refused;   /* events refused because the set was full of live entries */
};

/* The cap a verifier uses when its configuration names none. */
#define REVSET_DEFAULT_MAX 1000000

/* An empty revset of at most max_entries entries (0: no limit). Entries are
 * kept skew_s after their exp. */
void revset_init(struct revset *rs, unsigned skew_s, size_t max_entries);

/* Free everything. */
void revset_free(struct revset *rs);

/*
 * Apply one event at time now. Events that no longer matter are ignored; an
 * agent event keeps the highest generation seen. NOMEM; TOO_LARGE when the
 * set is full of live entries (rs is then `full` and refuses every token:
 * the caller must load a fresh state).
 */
ztb_err revset_apply(struct revset *rs, const struct rev_event *ev, int64_t now);

/*
 * Check a token against the state: REVOCATION_STALE if the set is full (an
 * event was refused), then KEY_TAINTED, AUDIENCE_KILLED,
 * AGENT_REVOKED (gen below the agent's), REVOKED (its jti), in that order;
 * ZTB_OK if none applies. jti_id is idset_key() of the token's jti. Never
 * allocates; only reads rs.
 */
ztb_err revset_check(const struct revset *rs, const char *kid, const char *aud, const char *agent,
                     int64_t gen, const uint8_t jti_id[IDSET_ID_LEN], int64_t now);

/* Drop the name entries that no longer matter (the jti set is rebuilt by its owner). */
void revset_sweep_names(struct revset *rs, int64_t now);

/* Entries held (jtis + agents + audiences + keys) and bytes used. */
size_t revset_count(const struct revset *rs);
size_t revset_bytes(const struct revset *rs);

#endif /* ZTB_SDK_REVSET_H */
