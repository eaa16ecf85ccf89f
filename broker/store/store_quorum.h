/*
 * store_quorum.h - dual verification (independent sources agreeing) in Redis.
 *
 * Keys (A = an agent name):
 *
 *   ztb:{A}:dual:<entry>           ZSET sources that reported within the window
 *   ztb:{A}:dual:<entry>:sig       HASH source -> its latest signal id
 *   ztb:dual:{<kind>:<target>:<entry>}[:sig] the same for targets that are not
 *                                  agents (one hash tag: the script's two keys share a slot)
 *
 * Every function returns UNAVAILABLE when Redis cannot answer (callers fail
 * closed with 503); nothing here changes state half-way.
 */
#ifndef ZTB_BROKER_STORE_QUORUM_H
#define ZTB_BROKER_STORE_QUORUM_H

#include <stddef.h>
#include <stdint.h>

#include <ztb/error.h>

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

#endif /* ZTB_BROKER_STORE_QUORUM_H */
