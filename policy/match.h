/*
 * match.h - the building blocks of a decision (internal to policy/).
 *
 * Resolving an agent to its groups, checking and splitting a request, finding
 * the rules that may apply (the index), testing one rule's targets, and
 * combining the obligations of matching allow rules. policy_eval (eval.c) is
 * these steps in order; explain.c runs the very same steps while recording
 * them, and signals.c / policy.c reuse the agent resolution. Callers outside
 * policy/ use eval.h instead.
 *
 * Must never: allocate or lock (all of it runs on the request path).
 */
#ifndef ZTB_POLICY_MATCH_H
#define ZTB_POLICY_MATCH_H

#include <stddef.h>
#include <stdint.h>

#include "policy/model.h"
#include "policy/types.h"

/* An agent resolved against a policy. Do not copy (groups may point into buf). */
struct policy_agent_ref {
    const char *name; /* the name, SPIFFE prefix stripped (points into the input) */
    size_t len;
    uint32_t idx;           /* agent index, UINT32_MAX if no rule or group names it exactly */
    const uint64_t *groups; /* group membership bitset (exact and pattern members) */
    uint64_t bloom;         /* the bitset folded to 64 bits (see struct policy_cand) */
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
    const struct policy_candlist *merged; /* pre-merged at compile time, or NULL */
    uint32_t mpos;
    struct policy_rulelist lists[4]; /* otherwise merged here */
    uint32_t pos[4];
    unsigned n;
    unsigned n_exact;     /* lists[0..n_exact) come from the exact-audience bucket */
    uint32_t last;        /* last rule index returned, UINT32_MAX before the first */
    int audience_known;   /* the last rule returned came through an exact audience */
    uint64_t agent_bloom; /* the last rule's agent summary (struct policy_cand) */
};

void policy_candidates_init(const policy *p, const struct policy_subject *s,
                            struct policy_candidates *it);
const struct policy_rule *policy_candidates_merge_next(const policy *p,
                                                       struct policy_candidates *it);

/* The next candidate, or NULL. Inline for the common pre-merged case. */
static inline const struct policy_rule *policy_candidates_next(const policy *p,
                                                               struct policy_candidates *it)
{
    if (it->merged == NULL)
        return policy_candidates_merge_next(p, it);
    if (it->mpos >= it->merged->n)
        return NULL;
    const struct policy_cand *c = &it->merged->c[it->mpos++];
    it->audience_known = (int)c->audience_known;
    it->agent_bloom = c->agent_bloom;
    return &p->rules[c->rule];
}

#endif /* ZTB_POLICY_MATCH_H */
