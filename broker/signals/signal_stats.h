/*
 * signal_stats.h - how good are the signals: precision, false positives,
 * confidence calibration, escalations and time to containment, per source
 * and per detector, from the signal records and the operators' verdicts.
 *
 * A finding without a measured confidence is an opinion: operators mark
 * signals confirmed or false positive (ztbctl signals confirm|dismiss), and
 * this computes, for each source ("source:<name>") and each of the broker's
 * detectors ("detector:<signal type>"):
 *
 *   signals, observed          how many; how many in observe mode
 *   escalations                signals that put a response before an operator
 *   escalation_rate            escalations / signals
 *   judged, confirmed,         signals an operator marked, and how
 *   false_positives
 *   precision                  confirmed / judged (null until one is judged)
 *   false_positive_rate        false_positives / judged: the share of the
 *                              source's judged findings that were wrong
 *   brier                      mean of (confidence - verdict)^2 over judged
 *                              signals, verdict 1 confirmed, 0 false positive:
 *                              0 is perfect, 0.25 is a coin toss at 0.5
 *   calibration                per confidence bucket [0,.2) [.2,.4) [.4,.6)
 *                              [.6,.8) [.8,1]: signals, judged, confirmed,
 *                              mean_confidence, observed_rate (confirmed /
 *                              judged): a calibrated source's observed rate
 *                              is near its mean confidence
 *   containment_s              for signals whose response was applied: from
 *                              the event (its event_timestamp, else receipt)
 *                              to the response in force (receipt, or the
 *                              operator's confirmation): n, p50, p95
 *
 * Pure computation on JSON: no Redis, no clock.
 */
#ifndef ZTB_BROKER_SIGNAL_STATS_H
#define ZTB_BROKER_SIGNAL_STATS_H

#include <jansson.h>

#include <ztb/error.h>

/*
 * records: the signal records (an array of objects as the ztb:signals stream
 * holds them: id, source, type, confidence, received, event_timestamp, mode,
 * responses[].status); outcomes: an object signal id -> {"outcome":
 * "confirmed"|"false_positive", "contained_at": N (optional)}. *out: a new
 * object {"total": STATS, "by": {KEY: STATS}}. NOMEM, INVALID_ARG.
 */
ztb_err signal_stats(const json_t *records, const json_t *outcomes, json_t **out);

#endif /* ZTB_BROKER_SIGNAL_STATS_H */
