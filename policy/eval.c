/*
 * eval.c - the decision procedure (see eval.h).
 *
 * Order of work for one request: check and split the request strings (bad
 * bytes, lengths, "service:verb"), resolve the agent to its group bitset,
 * look up the at most four rule lists for (audience, service), then walk
 * their merge in canonical order. A deny rule whose targets match and whose
 * conditions are not FALSE ends the walk. An allow rule whose targets match
 * and whose conditions are all TRUE is combined; the first one whose
 * conditions are not met is remembered to explain a deny.
 *
 * What this file must never do: allocate, lock, read outside the request's
 * strings (lengths are bounded with strnlen before anything else), or let an
 * unknown or malformed input fall through to an allow.
 */
#include <string.h>

#include "policy/cond.h"
#include "policy/eval.h"
#include "policy/match.h"

ztb_err policy_eval(const policy *p, const policy_request *req, policy_decision *out)
{
    if (out != NULL) {
        memset(out, 0, sizeof(*out));
        out->effect = POLICY_DENY;
        out->reason = POLICY_REASON_BAD_REQUEST;
    }
    if (p == NULL || req == NULL || out == NULL)
        return ZTB_ERR_INVALID_ARG;
    struct policy_subject s;
    const char *bad = policy_subject_resolve(p, req, &s);
    if (bad != NULL) {
        out->detail = bad;
        return ZTB_OK;
    }
    struct policy_candidates it;
    struct policy_combine c;
    const struct policy_rule *r, *near = NULL;
    const char *near_cond = NULL;
    policy_tri near_tri = POLICY_FALSE;
    policy_candidates_init(p, &s, &it);
    policy_combine_init(&c);
    while ((r = policy_candidates_next(p, &it)) != NULL) {
        if (it.agent_bloom != ~(uint64_t)0 && (it.agent_bloom & s.agent.bloom) == 0)
            continue; /* the rule names only groups, none of them the agent's: a miss */
        if (policy_rule_target(p, r, &s, it.audience_known) != POLICY_MISS_NONE)
            continue;
        const char *failed = NULL;
        policy_tri t = policy_cond_eval(&r->cond, &req->ctx, (policy_effect)r->effect, &failed);
        if (r->effect == POLICY_DENY) {
            if (t == POLICY_FALSE)
                continue;
            out->reason = POLICY_REASON_DENY_RULE;
            out->rule = r->id;
            out->detail = failed; /* set only when a condition could not be read */
            out->detail_unknown = t == POLICY_UNKNOWN;
            return ZTB_OK;
        }
        if (t == POLICY_TRUE) {
            policy_combine_add(&c, r);
        } else if (near == NULL) {
            near = r;
            near_cond = failed;
            near_tri = t;
        }
    }
    if (c.n == 0) {
        if (near != NULL) {
            out->reason = POLICY_REASON_CONDITION;
            out->rule = near->id;
            out->detail = near_cond;
            out->detail_unknown = near_tri == POLICY_UNKNOWN;
        } else {
            out->reason = POLICY_REASON_NO_MATCH;
        }
        return ZTB_OK;
    }
    if (c.conflict != NULL) {
        out->reason = POLICY_REASON_CONFLICT;
        out->rule = c.conflict_a->id;
        out->other_rule = c.conflict_b->id;
        out->detail = c.conflict;
        return ZTB_OK;
    }
    out->ob = c.ob;
    if (out->ob.ttl > p->max_ttl)
        out->ob.ttl = p->max_ttl;
    out->n_matched = c.n;
    memcpy(out->matched, c.matched, sizeof(out->matched));
    out->reason = POLICY_REASON_ALLOWED;
    if (c.approval != NULL) {
        out->effect = POLICY_APPROVAL_REQUIRED;
        out->rule = c.approval->id;
    } else {
        out->effect = POLICY_ALLOW;
        out->rule = c.primary->id;
    }
    return ZTB_OK;
}
