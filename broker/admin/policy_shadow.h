/*
 * policy_shadow.h - a candidate policy evaluated beside the enforced one.
 *
 * Before a new policy is enforced it runs in the shadow of the current one,
 * on live traffic: every token request is decided by both, only the enforced
 * decision counts, and each decision that would have been different (another
 * effect, or other obligations: lifetime, binding, single use, rate limits,
 * approval) is recorded: an audit record "policy.shadow_differs" with the
 * agent, action, audience, resource and both decisions with their rules, a
 * count per (enforced, candidate) pair of outcomes with a few examples for
 * the report, and the metrics ztb_policy_shadow_{evaluations,differences}_total.
 * Then the operator promotes the candidate (it becomes the enforced policy,
 * and what changed, rule by rule, is audited) or clears it.
 *
 * Admin API (the unix socket):
 *   PUT    /v1/policy/shadow           the body is the candidate document
 *   GET    /v1/policy/shadow           the report (404 when none is loaded)
 *   DELETE /v1/policy/shadow           clear it
 *   GET    /v1/policy/shadow/document  {"digest","policy_file","document"}
 *   POST   /v1/policy/shadow/promote   {"digest": D}: the policy file must hold
 *                                      the candidate already (ztbctl writes it:
 *                                      the broker cannot write /etc); it is
 *                                      loaded and enforced, the shadow cleared
 *
 * Cost on the token path: one atomic load when no candidate is loaded;
 * otherwise a reference, one policy_eval (no allocation) and, only for a
 * difference, a short lock and an audit record. The state is per broker
 * process, like the enforced policy (load the candidate on each replica).
 */
#ifndef ZTB_BROKER_POLICY_SHADOW_H
#define ZTB_BROKER_POLICY_SHADOW_H

#include <stdint.h>

#include <ztb/error.h>

#include "broker/http/http.h"
#include "policy/types.h"

struct policy_shadow;

/* A shadow with no candidate. NOMEM. */
ztb_err policy_shadow_new(struct policy_shadow **out);

/* Free it (NULL is fine). No request may be using it. */
void policy_shadow_free(struct policy_shadow *s);

/*
 * Decide req with the candidate, if one is loaded, and record how it differs
 * from enforced (the decision the enforced policy made for req). s NULL is
 * fine. Thread-safe.
 */
void policy_shadow_observe(struct policy_shadow *s, const policy_request *req,
                           const policy_decision *enforced);

/*
 * Make cand the candidate (the shadow takes over the caller's reference; NULL
 * clears) and start counting afresh; actor is who did it. Returns the
 * previous candidate for the caller to policy_unref (NULL if none).
 */
policy *policy_shadow_set(struct policy_shadow *s, policy *cand, const char *actor);

/* Requests decided by the current candidate, and how many differed. */
void policy_shadow_counts(struct policy_shadow *s, uint64_t *evaluated, uint64_t *differing);

/* 1 if the two decisions differ in effect or obligations, else 0. */
int policy_shadow_differs(const policy_decision *a, const policy_decision *b);

void handle_admin_policy_shadow(struct http_req *req, struct http_resp *resp);
void handle_admin_policy_shadow_sub(struct http_req *req, struct http_resp *resp);

#endif /* ZTB_BROKER_POLICY_SHADOW_H */
