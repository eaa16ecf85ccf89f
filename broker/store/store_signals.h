/*
 * store_signals.h - what the broker remembers of received signals, in Redis.
 *
 * Keys:
 *
 *   ztb:sigjti:<sha256 hex>        STR  a (source, signal jti) already received, EX 24 h
 *   ztb:signals                    STREAM one entry per signal (field data = JSON),
 *                                  MAXLEN ~ 10000
 *   ztb:signal_outcomes            HASH signal id -> JSON {"outcome": "confirmed"|
 *                                  "false_positive", "by", "at", "reason",
 *                                  "contained_at"}: the operators' verdicts
 *   ztb:signal_modes               HASH "source:<name>" or "detector:<signal type>"
 *                                  -> "observe" (absent: enforce)
 *
 * Every function returns UNAVAILABLE when Redis cannot answer (callers fail
 * closed with 503); nothing here changes state half-way.
 */
#ifndef ZTB_BROKER_STORE_SIGNALS_H
#define ZTB_BROKER_STORE_SIGNALS_H

#include <stddef.h>
#include <stdint.h>

#include <ztb/error.h>

struct json_t;

/* REPLAY if (source, jti) was already received (and processed). */
ztb_err store_signal_known(const char *source, const char *jti);

/* Remember (source, jti) for ttl_s: REPLAY if it was already received. */
ztb_err store_signal_seen(const char *source, const char *jti, unsigned ttl_s);

/* Append one signal record (JSON object text) to the ztb:signals stream. */
ztb_err store_signal_record(const char *json);

/* The newest records first, at most limit: a new JSON array (caller decrefs). */
ztb_err store_signal_list(size_t limit, struct json_t **out);

/* Record (or replace) the verdict on signal id: json is the outcome object. */
ztb_err store_signal_outcome_set(const char *id, const char *json);

/* Every verdict: a new JSON object id -> outcome object. */
ztb_err store_signal_outcomes(struct json_t **out);

/*
 * Observe mode. A signal whose source, or (from the broker's own detectors,
 * source "ztb-broker") whose type, is in observe mode is recorded and its
 * responses computed, but none is applied. who is "source:<name>" or
 * "detector:<type>"; observe 0 puts it back to enforce.
 */
ztb_err store_signal_mode_set(const char *who, int observe);

/* *observe = 1 if the signal of source (and, for detector, of type) is
 * observed only. detector: 1 when source is the broker's own. */
ztb_err store_signal_mode_get(const char *source, const char *type, int detector, int *observe);

/* Every entry in observe mode: a new JSON object {who: "observe"}. */
ztb_err store_signal_modes(struct json_t **out);

#endif /* ZTB_BROKER_STORE_SIGNALS_H */
