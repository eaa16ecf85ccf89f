/*
 * eval.h - decide one token request.
 *
 * policy_eval answers: may this agent take this action on this audience and
 * resource now, and with which obligations? Default deny. An explicit deny
 * rule that matches always wins. When several allow rules match, all of
 * them apply and their obligations combine to the strictest (shortest TTL,
 * single use if any says so, the strongest binding, the slowest rate limit,
 * approval if any asks for it); if two of them ask for incompatible things
 * (DPoP and mTLS, or approval by two different groups) the request is denied
 * as a conflict. Rules are visited in canonical order (deny rules first, then
 * by id), so the result never depends on the order of the file.
 *
 * Cost: a hash lookup for the agent, one for the audience and one for the
 * service, then only the rules indexed under them; no allocation, no lock.
 * Any number of threads may evaluate one policy at once.
 */
#ifndef ZTB_POLICY_EVAL_H
#define ZTB_POLICY_EVAL_H

#include <stddef.h>
#include <stdint.h>

#include <ztb/error.h>

#include "policy/types.h"

/*
 * Decide req under p into *out. Returns ZTB_OK whenever a decision was made
 * (a deny is a decision: look at out->effect), INVALID_ARG if p, req or out
 * is NULL. A malformed request field is a deny with reason BAD_REQUEST.
 * Strings in *out point into p (or are static) and stay valid while the
 * caller holds its reference to p. Never allocates; thread-safe.
 */
ztb_err policy_eval(const policy *p, const policy_request *req, policy_decision *out);

#endif /* ZTB_POLICY_EVAL_H */
