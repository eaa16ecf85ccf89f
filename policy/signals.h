/*
 * signals.h - which anomaly responses apply to a signal.
 *
 * The policy's anomaly_responses map signals (from the SOC, gateways, or the
 * broker's own detectors) to responses. An entry applies to a signal when the
 * signal's type is one it lists (or it lists "*"), the signal is about an
 * agent it names (entries without "agents" apply to every agent, and to
 * signals about no agent), the severity is at least its min_severity and the
 * confidence at least its min_confidence. Acting on the result (counting
 * independent signals within the window, asking an operator) is the
 * broker's job; this only says what the policy asks for.
 *
 * Must never: act on a signal itself; it only answers what the policy asks.
 */
#ifndef ZTB_POLICY_SIGNALS_H
#define ZTB_POLICY_SIGNALS_H

#include <stddef.h>

#include <ztb/error.h>

#include "policy/types.h"

/*
 * Every entry of p that applies to a signal of type signal_type about agent
 * (a name or SPIFFE ID; NULL when the signal is about no agent), with the
 * given severity and confidence (0..1), into out[0..cap), strongest response
 * first (then by id). *n is set to how many apply, even when more than cap:
 * then the call returns TOO_LARGE with out holding the first cap. INVALID_ARG
 * for NULLs, a malformed agent or signal type, a severity out of range or a
 * confidence outside 0..1. Never allocates; thread-safe; strings point into p.
 */
ztb_err policy_signal_responses(const policy *p, const char *agent, const char *signal_type,
                                policy_severity severity, double confidence,
                                policy_signal_response *out, size_t cap, size_t *n);

#endif /* ZTB_POLICY_SIGNALS_H */
