/*
 * redis_preflight.h - is this Redis fit to hold ztb's state? Checked at
 * start and again by /readyz.
 *
 * ztb keeps revocations, quarantines and agents in Redis, so a Redis that
 * may drop keys or has lost them must not serve silently:
 *   - Redis 6.2 or newer (INFO server, redis_version);
 *   - maxmemory-policy noeviction (INFO memory): an evicting Redis drops
 *     revocations without a word. Refused at start, naming the fix, unless
 *     the operator overrides it (--redis-allow-eviction 1: a loud warning);
 *   - persistence (AOF, RDB save points) reported in the start log, with a
 *     warning when there is none;
 *   - the marker key (ZTB_WIRE_MARKER_KEY), written at the first start and
 *     recorded in STATE_DIR/redis.marker: if the file says it was written
 *     and Redis no longer has it, Redis lost its data (FLUSHALL, a restart
 *     without persistence, another Redis or database): not ready, and one
 *     log line says what happened and what to do.
 * Nothing here is ever repaired automatically.
 */
#ifndef ZTB_BROKER_REDIS_PREFLIGHT_H
#define ZTB_BROKER_REDIS_PREFLIGHT_H

#include <stddef.h>

#include <ztb/error.h>

/* The oldest Redis ztb runs on. */
#define REDIS_PREFLIGHT_MIN_MAJOR 6
#define REDIS_PREFLIGHT_MIN_MINOR 2

/* At most this many servers are checked (the masters of a Cluster). */
#define REDIS_PREFLIGHT_NODES_MAX 64

/*
 * Find the field name in an INFO reply (len bytes, "name:value" lines,
 * CRLF or LF, "#" section headers) and copy its value into out (cap bytes,
 * NUL-terminated). 1 if found and it fits, else 0 (out is then "").
 */
int redis_info_field(const char *info, size_t len, const char *name, char *out, size_t cap);

/* 1 if version ("MAJOR.MINOR[.PATCH]") is at least major.minor, 0 if older
 * or not a version. */
int redis_version_at_least(const char *version, unsigned major, unsigned minor);

/*
 * At start, on this thread's Redis connection (redis_client_init first):
 * run every check, log the findings (redis.preflight: version, eviction
 * policy, persistence) and remember state_dir for the marker file. Returns
 * STATE, with the reason and the fix in err, for an old Redis or an
 * evicting one without allow_eviction; OK otherwise, also when Redis cannot
 * be reached yet or lost its data (the broker then starts not ready and
 * /readyz keeps checking).
 */
ztb_err redis_preflight_start(const char *state_dir, int allow_eviction, char *err, size_t errcap);

/*
 * For /readyz: NULL if the last checks passed, else a short reason for the
 * readiness body ("unchecked", "version", "eviction", "data_lost",
 * "foreign_marker"). The checks are run again on the caller's Redis
 * connection when the last run is older than a second (one thread at a
 * time; the others read the last result). NULL before
 * redis_preflight_start was called (nothing configured).
 */
const char *redis_preflight_check(void);

/* Forget the state (tests). */
void redis_preflight_reset(void);

#endif /* ZTB_BROKER_REDIS_PREFLIGHT_H */
