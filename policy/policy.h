/*
 * policy.h - the policy engine: what the broker and ztbctl include.
 *
 * ztb is default-deny. A policy document (JSON, docs/policy.md) says which
 * agent may take which action on which audience and resource, under which
 * conditions and with which obligations, and how to respond to anomaly
 * signals. This header pulls in the whole engine:
 *
 *   load.h     policy_load / policy_load_file: parse, check, compile
 *   eval.h     policy_eval: one decision, no allocation, thread-safe
 *   explain.h  policy_explain: the decision and why, for people
 *   signals.h  policy_signal_responses: anomaly responses for a signal
 *   holder.h   policy_holder: the current policy, swapped atomically on reload
 *   diff.h     policy_diff: what changed between two policies, rule by rule
 *
 * and declares the policy's lifetime (a reference count), read-only
 * accessors, and the names of the enum values used in logs and JSON.
 *
 * Must never: expose the model (model.h) to callers outside policy/.
 */
#ifndef ZTB_POLICY_POLICY_H
#define ZTB_POLICY_POLICY_H

#include <stddef.h>
#include <stdint.h>

#include <ztb/error.h>

#include "common/buf.h"
#include "policy/cond.h"
#include "policy/diag.h"
#include "policy/diff.h"
#include "policy/eval.h"
#include "policy/explain.h"
#include "policy/holder.h"
#include "policy/load.h"
#include "policy/signals.h"
#include "policy/types.h"

/*
 * The service of the broker's own actions (ztb:introspect, ztb:consume).
 * Only a rule that names such an action literally grants it: "*", "*:*" or
 * "z*:..." never do, so a broad rule written for an agent's work does not
 * open introspection of everyone's tokens. The token endpoint issues no
 * token for this service but one: POLICY_ACTION_SSF, the token an SSF
 * receiver presents to the broker's stream-management API (and nowhere
 * else: its audience is the broker's SSF audience).
 */
#define POLICY_RESERVED_SERVICE "ztb"
#define POLICY_ACTION_SSF       "ztb:ssf"

/* Take one more reference to p (p may be NULL). Returns p. Thread-safe. */
policy *policy_ref(policy *p);

/* Drop one reference; the last one frees the policy. NULL is fine. Thread-safe. */
void policy_unref(policy *p);

/* The trust domain, e.g. "example.org". Valid while p is. */
const char *policy_trust_domain(const policy *p);

/* The document exactly as it was loaded (NUL-terminated, *len bytes). Valid while p is. */
const char *policy_document(const policy *p, size_t *len);

/* SHA-256 of the document, 64 lowercase hex digits: which policy decided. */
const char *policy_digest(const policy *p);

/* settings.max_ttl, the cap on every token's lifetime. */
uint32_t policy_max_ttl(const policy *p);

/* How many rules / groups / agents named exactly / anomaly responses. */
size_t policy_rule_count(const policy *p);

/*
 * The authorization_details types the rules' limits name (each once, in
 * rule order), at most cap of them into out (pointers into p, valid while p
 * is). Returns how many it stored. For server metadata (RFC 9396 10).
 */
size_t policy_detail_types(const policy *p, const char **out, size_t cap);
size_t policy_group_count(const policy *p);
size_t policy_agent_count(const policy *p);
size_t policy_response_count(const policy *p);

/*
 * The groups agent (a name or SPIFFE ID) belongs to, by name, sorted, into
 * out[0..cap). *n is set to how many there are; TOO_LARGE if more than cap
 * (out holds the first cap); INVALID_ARG for a malformed agent. Strings point
 * into p. Never allocates.
 */
ztb_err policy_agent_groups(const policy *p, const char *agent, const char **out, size_t cap,
                            size_t *n);

/* Names used in logs, JSON and ztbctl: "allow", "dpop", "no_match", "high"... */
const char *policy_effect_name(policy_effect e);
const char *policy_binding_name(policy_binding b);
const char *policy_reason_name(policy_reason r);
const char *policy_severity_name(policy_severity s);
const char *policy_response_name(policy_response_kind r);

/* Parse "low".."critical" / "revoke_token".."taint_key". INVALID_ARG otherwise. */
ztb_err policy_severity_parse(const char *s, policy_severity *out);
ztb_err policy_response_parse(const char *s, policy_response_kind *out);

/*
 * One line saying what the decision is and why, for logs, audit records and
 * error descriptions, e.g. `deny: rule "no-weekend-refunds"` or
 * `deny: condition "limits[0]: amount <= 50" not met in rule "refunds-small"`.
 * Appends to out; returns the buffer's error.
 */
ztb_err policy_decision_describe(const policy_decision *d, ztb_buf *out);

#endif /* ZTB_POLICY_POLICY_H */
