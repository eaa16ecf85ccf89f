/*
 * match.c - agent resolution, request checks, the candidate merge, rule
 * targets and obligation combination (see match.h).
 *
 * Request strings are untrusted: every length is bounded with strnlen before
 * anything else reads them, and text must be printable UTF-8 to be matched.
 *
 * Must never: allocate, lock, or read outside the request's strings.
 */
#include <string.h>

#include "common/utf8.h"
#include "policy/compile.h"
#include "policy/match.h"
#include "policy/policy.h"

static int name_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_' || c == '.';
}

static int valid_name(const char *s, size_t n, size_t max)
{
    if (n == 0 || n > max || (n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!name_char((unsigned char)s[i]))
            return 0;
    return 1;
}

const char *policy_agent_resolve(const policy *p, const char *agent, struct policy_agent_ref *a)
{
    a->name = NULL;
    a->len = 0;
    a->idx = UINT32_MAX;
    a->groups = p->no_groups;
    a->bloom = 0;
    if (agent == NULL)
        return "agent: missing";
    size_t n = strnlen(agent, POLICY_MAX_INPUT + 1);
    if (n > POLICY_MAX_INPUT)
        return "agent: too long";
    if (n >= 9 && memcmp(agent, "spiffe://", 9) == 0) {
        if (n <= p->spiffe_prefix_len || memcmp(agent, p->spiffe_prefix, p->spiffe_prefix_len) != 0)
            return "agent: SPIFFE ID outside this policy's trust domain";
        agent += p->spiffe_prefix_len;
        n -= p->spiffe_prefix_len;
    }
    if (!valid_name(agent, n, POLICY_MAX_NAME))
        return "agent: not a valid agent name";
    a->name = agent;
    a->len = n;
    uint32_t idx;
    if (policy_strmap_get(&p->agent_map, agent, n, &idx)) {
        a->idx = idx;
        a->groups = p->agents[idx].groups;
    }
    if (p->n_glob_groups > 0) {
        /* groups with pattern members: add the ones whose patterns match */
        memcpy(a->buf, a->groups, p->group_words * sizeof(uint64_t));
        for (uint32_t i = 0; i < p->n_glob_groups; i++) {
            const struct policy_group *g = &p->groups[p->glob_groups[i]];
            for (uint32_t j = 0; j < g->n_globs; j++)
                if (policy_glob_match(&g->globs[j], agent, n)) {
                    a->buf[g->index / 64] |= (uint64_t)1 << (g->index % 64);
                    break;
                }
        }
        a->groups = a->buf;
    }
    a->bloom = 0;
    for (uint32_t w = 0; w < p->group_words; w++)
        a->bloom |= a->groups[w];
    return NULL;
}

int policy_agent_in_set(const policy *p, const struct policy_agentset *set,
                        const struct policy_agent_ref *a)
{
    if (set->any)
        return 1;
    if (set->n_groups > 0)
        for (uint32_t w = 0; w < p->group_words; w++)
            if (set->group_mask[w] & a->groups[w])
                return 1;
    if (set->n_names > 0 && a->idx != UINT32_MAX) {
        uint32_t lo = 0, hi = set->n_names;
        while (lo < hi) {
            uint32_t mid = lo + (hi - lo) / 2;
            if (set->names[mid] < a->idx)
                lo = mid + 1;
            else
                hi = mid;
        }
        if (lo < set->n_names && set->names[lo] == a->idx)
            return 1;
    }
    for (uint32_t i = 0; i < set->n_globs; i++)
        if (policy_glob_match(&set->globs[i], a->name, a->len))
            return 1;
    return 0;
}

/* A text field: bounded, printable UTF-8. Returns its length or SIZE_MAX. */
static size_t text_len(const char *s)
{
    size_t n = strnlen(s, POLICY_MAX_INPUT + 1);
    if (n > POLICY_MAX_INPUT || !ztb_utf8_printable(s, n))
        return SIZE_MAX;
    return n;
}

const char *policy_subject_resolve(const policy *p, const policy_request *req,
                                   struct policy_subject *s)
{
    const char *why = policy_agent_resolve(p, req->agent, &s->agent);
    if (why != NULL)
        return why;
    if (req->action == NULL)
        return "action: missing";
    size_t an = strnlen(req->action, 2 * POLICY_MAX_ID + 2);
    const char *colon = memchr(req->action, ':', an);
    if (an > 2 * POLICY_MAX_ID + 1 || colon == NULL)
        return "action: not service:verb";
    s->action = req->action;
    s->action_len = an;
    s->service = req->action;
    s->service_len = (size_t)(colon - req->action);
    s->verb = colon + 1;
    s->verb_len = an - s->service_len - 1;
    if (!valid_name(s->service, s->service_len, POLICY_MAX_ID) ||
        !valid_name(s->verb, s->verb_len, POLICY_MAX_ID))
        return "action: not service:verb";
    if (req->audience == NULL || req->audience[0] == '\0')
        return "audience: missing";
    s->audience = req->audience;
    if ((s->audience_len = text_len(req->audience)) == SIZE_MAX)
        return "audience: too long, or control characters or invalid UTF-8";
    s->resource = req->resource ? req->resource : "";
    if ((s->resource_len = text_len(s->resource)) == SIZE_MAX)
        return "resource: too long, or control characters or invalid UTF-8";
    if (req->ctx.act != NULL && (req->ctx.act[0] == '\0' || text_len(req->ctx.act) == SIZE_MAX))
        return "act: empty, too long, or control characters or invalid UTF-8";
    return NULL;
}

static int any_glob(const policy_glob *g, uint32_t n, const char *s, size_t len)
{
    for (uint32_t i = 0; i < n; i++)
        if (policy_glob_match(&g[i], s, len))
            return 1;
    return 0;
}

static int action_matches(const struct policy_action_pat *a, const struct policy_subject *s)
{
    if (a->literal_len != 0) /* "service:verb" with no star: one comparison */
        return a->literal_len == s->action_len &&
               policy_bytes_eq(a->text, s->action, s->action_len);
    /* the broker's own actions only by name (policy.h) */
    if (s->service_len == sizeof(POLICY_RESERVED_SERVICE) - 1 &&
        policy_bytes_eq(POLICY_RESERVED_SERVICE, s->service, s->service_len))
        return 0;
    return policy_glob_match(&a->service, s->service, s->service_len) &&
           policy_glob_match(&a->verb, s->verb, s->verb_len);
}

enum policy_miss policy_rule_target(const policy *p, const struct policy_rule *r,
                                    const struct policy_subject *s, int audience_known)
{
    if (!policy_agent_in_set(p, &r->agents, &s->agent))
        return POLICY_MISS_AGENT;
    int act = 0;
    for (uint32_t i = 0; i < r->n_actions && !act; i++)
        act = action_matches(&r->actions[i], s);
    if (!act)
        return POLICY_MISS_ACTION;
    if (!audience_known && !any_glob(r->audiences, r->n_audiences, s->audience, s->audience_len))
        return POLICY_MISS_AUDIENCE;
    if (!any_glob(r->resources, r->n_resources, s->resource, s->resource_len))
        return POLICY_MISS_RESOURCE;
    return POLICY_MISS_NONE;
}

void policy_combine_init(struct policy_combine *c)
{
    memset(c, 0, sizeof(*c));
}

/* Binding strength: none < any < dpop = mtls (the last two are incomparable). */
static int binding_rank(uint8_t b)
{
    return b == POLICY_BINDING_NONE ? 0 : b == POLICY_BINDING_ANY ? 1 : 2;
}

/* 1 if rate a is stricter than b: lower sustained rate, then lower burst. */
static int rate_stricter(policy_rate a, policy_rate b)
{
    uint64_t x = (uint64_t)a.rate * b.period, y = (uint64_t)b.rate * a.period;
    if (x != y)
        return x < y;
    return a.burst < b.burst;
}

static void conflict(struct policy_combine *c, const struct policy_rule *a,
                     const struct policy_rule *b, const char *what)
{
    if (c->conflict != NULL)
        return;
    c->conflict = what;
    c->conflict_a = a;
    c->conflict_b = b;
}

void policy_combine_add(struct policy_combine *c, const struct policy_rule *r)
{
    const policy_obligations *o = &r->ob;
    if (c->n < POLICY_MAX_MATCHED)
        c->matched[c->n] = r->id;
    if (c->n++ == 0) {
        c->primary = r;
        c->ob = *o;
        c->ob.approval_group = NULL;
        c->ob.approvers = 0;
        c->ob.approval_ttl = 0;
        c->src_ttl = c->src_binding = c->src_per_agent = c->src_per_action = r;
        c->src_single_use = o->single_use ? r : NULL;
    } else {
        if (o->ttl < c->ob.ttl) {
            c->ob.ttl = o->ttl;
            c->src_ttl = r;
        }
        if (o->single_use && !c->ob.single_use) {
            c->ob.single_use = 1;
            c->src_single_use = r;
        }
        int have = binding_rank(c->ob.binding), want = binding_rank(o->binding);
        if (have == 2 && want == 2 && o->binding != c->ob.binding)
            conflict(c, c->src_binding, r, "binding: one rule requires DPoP, another mTLS");
        else if (want > have) {
            c->ob.binding = o->binding;
            c->src_binding = r;
        }
        if (rate_stricter(o->per_agent, c->ob.per_agent)) {
            c->ob.per_agent = o->per_agent;
            c->src_per_agent = r;
        }
        if (rate_stricter(o->per_action, c->ob.per_action)) {
            c->ob.per_action = o->per_action;
            c->src_per_action = r;
        }
    }
    if (o->approvers > 0) {
        if (c->approval == NULL) {
            c->approval = r;
            c->ob.approval_group = o->approval_group;
            c->ob.approvers = o->approvers;
            c->ob.approval_ttl = o->approval_ttl;
        } else if (o->approval_group == NULL || c->ob.approval_group == NULL ||
                   strcmp(o->approval_group, c->ob.approval_group) != 0) {
            conflict(c, c->approval, r, "approval: rules ask for different approver groups");
        } else if (o->approvers > c->ob.approvers) {
            c->ob.approvers = o->approvers;
        }
        /* the shortest wait any of them allows; a rule that sets none waits
         * the default, so it takes part (0 stays 0 when that is shortest) */
        uint32_t want = o->approval_ttl ? o->approval_ttl : POLICY_APPROVAL_TTL_DEFAULT;
        uint32_t have = c->ob.approval_ttl ? c->ob.approval_ttl : POLICY_APPROVAL_TTL_DEFAULT;
        if (want < have)
            c->ob.approval_ttl = o->approval_ttl;
    }
}

void policy_candidates_init(const policy *p, const struct policy_subject *s,
                            struct policy_candidates *it)
{
    policy_index_lookup(p, s->audience, s->audience_len, s->service, s->service_len, it->lists,
                        &it->n, &it->n_exact, &it->merged);
    for (unsigned i = 0; i < 4; i++)
        it->pos[i] = 0;
    it->mpos = 0;
    it->last = UINT32_MAX;
    it->audience_known = 0;
    it->agent_bloom = ~(uint64_t)0;
}

const struct policy_rule *policy_candidates_merge_next(const policy *p,
                                                       struct policy_candidates *it)
{
    for (;;) {
        uint32_t best = UINT32_MAX;
        unsigned bi = 0;
        for (unsigned i = 0; i < it->n; i++) {
            if (it->pos[i] < it->lists[i].n && it->lists[i].idx[it->pos[i]] < best) {
                best = it->lists[i].idx[it->pos[i]];
                bi = i;
            }
        }
        if (best == UINT32_MAX)
            return NULL;
        it->pos[bi]++;
        if (best == it->last)
            continue; /* the same rule indexed under two keys: returned once */
        /* a rule in several lists is at the head of all of them at once, and
         * ties go to the lowest list, so it comes out of an exact list if it
         * is in one */
        it->last = best;
        it->audience_known = bi < it->n_exact;
        it->agent_bloom = p->rules[best].agent_bloom;
        return &p->rules[best];
    }
}
