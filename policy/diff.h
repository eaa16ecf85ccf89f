/*
 * diff.h - what changed between two policies, rule by rule.
 *
 * An operator promoting a candidate policy (ztbctl policy shadow promote), or
 * an auditor reading the record of it, wants to know what the change did:
 * which rules appeared, which went away and which were edited, and which of
 * the other sections (settings, groups, agents, anomaly responses...)
 * changed. Rules are matched by id; a rule is "changed" when its JSON differs
 * in anything but key order and spacing.
 */
#ifndef ZTB_POLICY_DIFF_H
#define ZTB_POLICY_DIFF_H

#include <jansson.h>

#include <ztb/error.h>

#include "policy/types.h"

/*
 * The difference from -> to as a new JSON object (the caller owns it):
 *   {"from": DIGEST, "to": DIGEST, "rules_added": [ID...],
 *    "rules_removed": [ID...], "rules_changed": [ID...],
 *    "sections_changed": [KEY...]}
 * Every array is sorted. Both policies must have been loaded by policy_load
 * (their documents are known to be well formed). NOMEM, INVALID_ARG.
 */
ztb_err policy_diff(const policy *from, const policy *to, json_t **out);

#endif /* ZTB_POLICY_DIFF_H */
