/*
 * policy.c - a policy's lifetime, accessors and names (see policy.h).
 *
 * A policy is one heap struct holding an arena with everything else. Its
 * reference count is atomic so the holder, in-flight requests and reloads can
 * share it across threads; the last policy_unref frees the arena.
 *
 * Must never: free a policy while a reference to it is held.
 */
#include <stdlib.h>
#include <string.h>

#include "policy/match.h"
#include "policy/model.h"
#include "policy/policy.h"

policy *policy_alloc(void)
{
    policy *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return NULL;
    atomic_init(&p->refs, 1);
    ztb_arena_init(&p->arena, POLICY_MAX_ARENA);
    return p;
}

policy *policy_ref(policy *p)
{
    if (p != NULL)
        atomic_fetch_add_explicit(&p->refs, 1, memory_order_relaxed);
    return p;
}

void policy_unref(policy *p)
{
    if (p == NULL)
        return;
    /* release: our reads of p happen before the free; acquire: see theirs */
    if (atomic_fetch_sub_explicit(&p->refs, 1, memory_order_acq_rel) != 1)
        return;
    ztb_arena_free(&p->arena);
    free(p->doc);
    free(p);
}

const char *policy_document(const policy *p, size_t *len)
{
    *len = p->doc != NULL ? p->doc_len : 0;
    return p->doc != NULL ? p->doc : "";
}

const char *policy_trust_domain(const policy *p)
{
    return p->trust_domain;
}

const char *policy_digest(const policy *p)
{
    return p->digest;
}

uint32_t policy_max_ttl(const policy *p)
{
    return p->max_ttl;
}

size_t policy_rule_count(const policy *p)
{
    return p->n_rules;
}

size_t policy_detail_types(const policy *p, const char **out, size_t cap)
{
    size_t n = 0;
    for (uint32_t r = 0; r < p->n_rules; r++) {
        const struct policy_conditions *c = &p->rules[r].cond;
        for (uint32_t i = 0; i < c->n_limits; i++) {
            const char *t = c->limits[i].type;
            int seen = t == NULL;
            for (size_t j = 0; !seen && j < n && j < cap; j++)
                seen = strcmp(out[j], t) == 0;
            if (seen)
                continue;
            if (n == cap)
                return n;
            out[n++] = t;
        }
    }
    return n;
}

size_t policy_group_count(const policy *p)
{
    return p->n_groups;
}

size_t policy_agent_count(const policy *p)
{
    return p->n_agents;
}

size_t policy_response_count(const policy *p)
{
    return p->n_responses;
}

ztb_err policy_agent_groups(const policy *p, const char *agent, const char **out, size_t cap,
                            size_t *n)
{
    if (n != NULL)
        *n = 0;
    if (p == NULL || agent == NULL || n == NULL || (out == NULL && cap > 0))
        return ZTB_ERR_INVALID_ARG;
    struct policy_agent_ref a;
    if (policy_agent_resolve(p, agent, &a) != NULL)
        return ZTB_ERR_INVALID_ARG;
    size_t k = 0;
    /* groups are sorted by name, so index order is name order */
    for (uint32_t g = 0; g < p->n_groups; g++)
        if (policy_bit(a.groups, g)) {
            if (k < cap)
                out[k] = p->groups[g].name;
            k++;
        }
    *n = k;
    return k > cap ? ZTB_ERR_TOO_LARGE : ZTB_OK;
}

static const char *const effect_names[] = {"deny", "allow", "approval_required"};
static const char *const binding_names[] = {"none", "any", "dpop", "mtls"};
static const char *const reason_names[] = {"allowed",   "no_match", "condition",
                                           "deny_rule", "conflict", "bad_request"};
static const char *const severity_names[] = {NULL, "low", "medium", "high", "critical"};
static const char *const response_names[] = {NULL,         "revoke_token", "require_approval",
                                             "quarantine", "revoke_all",   "kill_audience",
                                             "taint_key"};

const char *policy_effect_name(policy_effect e)
{
    return (unsigned)e < 3 ? effect_names[e] : "unknown";
}

const char *policy_binding_name(policy_binding b)
{
    return (unsigned)b < 4 ? binding_names[b] : "unknown";
}

const char *policy_reason_name(policy_reason r)
{
    return (unsigned)r < 6 ? reason_names[r] : "unknown";
}

const char *policy_severity_name(policy_severity s)
{
    return s >= 1 && s <= 4 ? severity_names[s] : "unknown";
}

const char *policy_response_name(policy_response_kind r)
{
    return r >= 1 && r <= 6 ? response_names[r] : "unknown";
}

ztb_err policy_severity_parse(const char *s, policy_severity *out)
{
    for (int i = 1; s != NULL && i <= 4; i++)
        if (strcmp(s, severity_names[i]) == 0) {
            *out = (policy_severity)i;
            return ZTB_OK;
        }
    return ZTB_ERR_INVALID_ARG;
}

ztb_err policy_response_parse(const char *s, policy_response_kind *out)
{
    for (int i = 1; s != NULL && i <= 6; i++)
        if (strcmp(s, response_names[i]) == 0) {
            *out = (policy_response_kind)i;
            return ZTB_OK;
        }
    return ZTB_ERR_INVALID_ARG;
}

ztb_err policy_decision_describe(const policy_decision *d, ztb_buf *out)
{
    ztb_buf_printf(out, "%s: ", policy_effect_name(d->effect));
    switch (d->reason) {
    case POLICY_REASON_ALLOWED:
        ztb_buf_printf(out, "rule \"%s\"", d->rule);
        if (d->n_matched > 1)
            ztb_buf_printf(out, " and %u other matching rule%s", d->n_matched - 1,
                           d->n_matched > 2 ? "s" : "");
        if (d->effect == POLICY_APPROVAL_REQUIRED)
            ztb_buf_printf(out, " (%u approver%s from group \"%s\")", d->ob.approvers,
                           d->ob.approvers > 1 ? "s" : "", d->ob.approval_group);
        break;
    case POLICY_REASON_NO_MATCH: ztb_buf_append_str(out, "no rule allows this request"); break;
    case POLICY_REASON_CONDITION:
        ztb_buf_printf(out, "condition \"%s\" %s in rule \"%s\"", d->detail ? d->detail : "?",
                       d->detail_unknown ? "cannot be checked (the request lacks it)" : "not met",
                       d->rule);
        break;
    case POLICY_REASON_DENY_RULE:
        ztb_buf_printf(out, "rule \"%s\"", d->rule);
        if (d->detail != NULL && d->detail_unknown)
            ztb_buf_printf(out, " (condition \"%s\" cannot be checked, so the deny applies)",
                           d->detail);
        break;
    case POLICY_REASON_CONFLICT:
        ztb_buf_printf(out, "rules \"%s\" and \"%s\" conflict (%s)", d->rule, d->other_rule,
                       d->detail);
        break;
    case POLICY_REASON_BAD_REQUEST:
        ztb_buf_printf(out, "malformed request (%s)", d->detail ? d->detail : "?");
        break;
    }
    return ztb_buf_error(out);
}
