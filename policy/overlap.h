/*
 * overlap.h - rules that can never decide anything, or contradict each other.
 *
 * A policy an operator reads must mean what it says, so loading refuses:
 *  - an allow rule that a deny rule fully shadows: the deny matches every
 *    request the allow matches (agents, actions, audiences and resources all
 *    covered; the deny has no conditions, or exactly the allow's conditions),
 *    so the allow can never take effect ("unreachable");
 *  - two rules that match exactly the same requests (same agents, actions,
 *    audiences, resources and conditions, whatever the order they are listed
 *    in): "duplicate" if they also say the same thing, "conflicting" if they
 *    are allow rules with different obligations.
 * Coverage of patterns is decided conservatively (glob.h): when it cannot be
 * shown, the rule is accepted, so nothing right is ever refused.
 */
#ifndef ZTB_POLICY_OVERLAP_H
#define ZTB_POLICY_OVERLAP_H

#include "policy/diag.h"
#include "policy/model.h"

/*
 * Check the compiled policy p; report each problem in d, naming the rules.
 * Sets each rule's match_key. Returns the number of problems found (0: fine);
 * out of memory counts as one problem.
 */
int policy_overlap_check(policy *p, policy_diag *d);

/* 1 if every request rule `inner` matches on agents, actions, audiences and
 * resources is also matched by `outer` (conditions not considered). */
int policy_rule_covers(const policy *p, const struct policy_rule *outer,
                       const struct policy_rule *inner);

#endif /* ZTB_POLICY_OVERLAP_H */
