/*
 * store_detect.h - the counters of the broker's own detectors, in Redis.
 *
 * Keys (A = an agent name):
 *
 *   ztb:{A}:det:<kind>             STR  detector event count in its window (EX)
 *   ztb:{A}:auds                   SET  audiences the agent was issued tokens for;
 *                                  agent hash field auds_since = when it started
 *
 * Every function returns UNAVAILABLE when Redis cannot answer (callers fail
 * closed with 503); nothing here changes state half-way.
 */
#ifndef ZTB_BROKER_STORE_DETECT_H
#define ZTB_BROKER_STORE_DETECT_H

#include <stddef.h>
#include <stdint.h>

#include <ztb/error.h>

/* Count one event of kind for agent in a window of window_s: *count after it. */
ztb_err store_detect_count(const char *agent, const char *kind, unsigned window_s, int64_t *count);

/*
 * Record that agent was issued a token for audience. *fire = 1 when the
 * audience is new for the agent and the agent has been using audiences for
 * at least learn_s (before that, everything is new).
 */
ztb_err store_detect_audience(const char *agent, const char *audience, unsigned learn_s, int *fire);

struct json_t;

/* The audiences agent was issued tokens for (ztb:{A}:auds), at most 1000:
 * a new JSON array of strings, sorted (caller decrefs). */
ztb_err store_detect_audiences(const char *agent, struct json_t **out);

#endif /* ZTB_BROKER_STORE_DETECT_H */
