/*
 * scope_summary.h - the out-of-scope summary: per agent, what it asked for
 * outside its policy in a window, written as one `scope.summary` audit
 * record per agent when the window ends and when the broker stops
 * (docs/audit.md). The per-request `token.denied` records and the metric
 * ztb_out_of_scope_requests_by_agent_total stay as they are; this is the
 * line an analyst reads to see an agent's scope adherence at a glance.
 *
 * Bounded whatever agents do: at most SCOPE_SUMMARY_AGENTS agents per
 * window (the requests of more are summed under the agent "_other"), at
 * most SCOPE_SUMMARY_ITEMS distinct (action, audience, rule) per agent (the
 * rest counted in "other"). Each replica summarises what it refused.
 *
 * Must never: block a request on I/O (scope_summary_note takes one mutex),
 * or write a record for an agent with nothing out of scope in the window.
 */
#ifndef ZTB_BROKER_SCOPE_SUMMARY_H
#define ZTB_BROKER_SCOPE_SUMMARY_H

#include <stdint.h>

#define SCOPE_SUMMARY_AGENTS 128
#define SCOPE_SUMMARY_ITEMS  16

/* Set the window in seconds (default 60; 0 keeps it). Call before the
 * requests start. */
void scope_summary_set_window(unsigned seconds);

/* Count one out-of-policy request of agent for action at audience, denied
 * by rule (NULL or "": the default deny). Thread-safe, never blocks on I/O. */
void scope_summary_note(const char *agent, const char *action, const char *audience,
                        const char *rule);

/* If the window has ended by now (Unix s), write its records and start the
 * next; else nothing. For detectors_on_tick (ud unused). */
void scope_summary_tick(void *ud);

/* Write the records of the window so far and start a new one (at
 * shutdown, before the audit log closes). Records written. */
unsigned scope_summary_flush(void);

#endif /* ZTB_BROKER_SCOPE_SUMMARY_H */
