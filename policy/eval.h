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

#include "policy/model.h"
#include "policy/types.h"

/*
 * Decide req under p into *out. Returns ZTB_OK whenever a decision was made
 * (a deny is a decision: look at out->effect), INVALID_ARG if p, req or out
 * is NULL. A malformed request field is a deny with reason BAD_REQUEST.
 * Strings in *out point into p (or are static) and stay valid while the
 * caller holds its reference to p. Never allocates; thread-safe.
 */
ztb_err policy_eval(const policy *p, const policy_request *req, policy_decision *out);

/* ---- used by explain.c, signals.c and policy.c (internal to policy/) ---- */

/* An agent resolved against a policy. Do not copy (groups may point into buf). */
struct policy_agent_ref {
    const char *name; /* the name, SPIFFE prefix stripped (points into the input) */
    size_t len;
    uint32_t idx;           /* agent index, UINT32_MAX if no rule or group names it exactly */
    const uint64_t *groups; /* group membership bitset (exact and pattern members) */
    uint64_t buf[POLICY_GROUP_WORDS];
};

/*
 * Resolve agent (a name or a SPIFFE ID in p's trust domain) into *out.
 * Returns NULL, or a static reason when the agent string is malformed.
 */
const char *policy_agent_resolve(const policy *p, const char *agent, struct policy_agent_ref *out);

/* 1 if the resolved agent is in the set. */
int policy_agent_in_set(const policy *p, const struct policy_agentset *set,
                        const struct policy_agent_ref *a);

/* A request checked and split into the pieces rules are matched against. */
struct policy_subject {
    struct policy_agent_ref agent;
    const char *action, *service, *verb, *audience, *resource;
    size_t action_len, service_len, verb_len, audience_len, resource_len;
};

/* Check req and fill *s. Returns NULL, or a static reason for BAD_REQUEST. */
const char *policy_subject_resolve(const policy *p, const policy_request *req,
                                   struct policy_subject *s);

/* Which target of a rule a request misses first (agents, actions, audiences, resources). */
enum policy_miss {
    POLICY_MISS_NONE = 0,
    POLICY_MISS_AGENT,
    POLICY_MISS_ACTION,
    POLICY_MISS_AUDIENCE,
    POLICY_MISS_RESOURCE,
};

/*
 * audience_known: the caller already knows one of the rule's audiences is
 * the request's (the rule came from the exact-audience index); the audience
 * check is then skipped. Pass 0 when in doubt.
 */
enum policy_miss policy_rule_target(const policy *p, const struct policy_rule *r,
                                    const struct policy_subject *s, int audience_known);

/* Allow rules combined so far, and who set what (for explain). */
struct policy_combine {
    uint32_t n;
    policy_obligations ob;
    const struct policy_rule *primary;  /* first allow rule combined */
    const struct policy_rule *approval; /* first rule asking for approval */
    const struct policy_rule *src_ttl, *src_single_use, *src_binding, *src_per_agent,
        *src_per_action;
    const struct policy_rule *conflict_a, *conflict_b; /* first conflict */
    const char *conflict;                              /* static description */
    const char *matched[POLICY_MAX_MATCHED];
};

void policy_combine_init(struct policy_combine *c);
void policy_combine_add(struct policy_combine *c, const struct policy_rule *r);

/*
 * Iterate the rules that may apply to s, in canonical order, each once.
 * Usage: policy_candidates_init(p, s, &it); while ((r = policy_candidates_next(p, &it))) ...
 */
struct policy_candidates {
    struct policy_rulelist lists[4];
    uint32_t pos[4];
    unsigned n;
    unsigned n_exact;   /* lists[0..n_exact) come from the exact-audience bucket */
    uint32_t last;      /* last rule index returned, UINT32_MAX before the first */
    int audience_known; /* the last rule returned is in an exact-audience list */
};

void policy_candidates_init(const policy *p, const struct policy_subject *s,
                            struct policy_candidates *it);
const struct policy_rule *policy_candidates_next(const policy *p, struct policy_candidates *it);

#endif /* ZTB_POLICY_EVAL_H */
