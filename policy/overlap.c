/*
 * overlap.c - unreachable, duplicate and conflicting rules (see overlap.h).
 *
 * Duplicates are found by giving every rule a canonical text of what it
 * matches (each list sorted, patterns normalised, conditions in canonical
 * form) and sorting the rules by it: equal neighbours match the same
 * requests. Shadowing is a pairwise check of deny rules against allow rules.
 *
 * Must never: refuse a correct policy (coverage is proven or assumed absent),
 * or let the verdict depend on the order of the file.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "policy/overlap.h"

/* 1 if the agent named exactly `name` is in set s. */
static int name_in_set(const policy *p, const struct policy_agentset *s, const char *name)
{
    size_t n = strlen(name);
    if (s->any)
        return 1;
    uint32_t a;
    if (policy_strmap_get(&p->agent_map, name, n, &a)) {
        /* names are sorted agent indexes */
        for (uint32_t i = 0; i < s->n_names; i++)
            if (s->names[i] == a)
                return 1;
        for (uint32_t w = 0; w < p->group_words; w++)
            if (p->agents[a].groups[w] & s->group_mask[w])
                return 1;
    }
    for (uint32_t i = 0; i < s->n_globs; i++)
        if (policy_glob_match(&s->globs[i], name, n))
            return 1;
    for (uint32_t i = 0; i < s->n_groups; i++) {
        const struct policy_group *g = &p->groups[s->groups[i]];
        for (uint32_t j = 0; j < g->n_globs; j++)
            if (policy_glob_match(&g->globs[j], name, n))
                return 1;
    }
    return 0;
}

/* 1 if every name pattern g matches is in set s. */
static int glob_in_set(const policy *p, const struct policy_agentset *s, const policy_glob *g)
{
    if (s->any)
        return 1;
    for (uint32_t i = 0; i < s->n_globs; i++)
        if (policy_glob_covers(&s->globs[i], g))
            return 1;
    for (uint32_t i = 0; i < s->n_groups; i++) {
        const struct policy_group *grp = &p->groups[s->groups[i]];
        for (uint32_t j = 0; j < grp->n_globs; j++)
            if (policy_glob_covers(&grp->globs[j], g))
                return 1;
    }
    return 0;
}

static int agents_cover(const policy *p, const struct policy_agentset *outer,
                        const struct policy_agentset *inner)
{
    if (outer->any)
        return 1;
    if (inner->any)
        return 0;
    for (uint32_t i = 0; i < inner->n_names; i++)
        if (!name_in_set(p, outer, inner->name_text[i]))
            return 0;
    for (uint32_t i = 0; i < inner->n_globs; i++)
        if (!glob_in_set(p, outer, &inner->globs[i]))
            return 0;
    for (uint32_t i = 0; i < inner->n_groups; i++) {
        uint32_t g = inner->groups[i];
        if (policy_bit(outer->group_mask, g))
            continue;
        const struct policy_group *grp = &p->groups[g];
        uint32_t gi = 0;
        for (uint32_t m = 0; m < grp->n_members; m++) {
            if (strchr(grp->members[m], '*') != NULL) {
                if (!glob_in_set(p, outer, &grp->globs[gi++]))
                    return 0;
            } else if (!name_in_set(p, outer, grp->members[m])) {
                return 0;
            }
        }
    }
    return 1;
}

static int globs_cover(const policy_glob *outer, uint32_t no, const policy_glob *inner, uint32_t ni)
{
    for (uint32_t i = 0; i < ni; i++) {
        int ok = 0;
        for (uint32_t j = 0; j < no && !ok; j++)
            ok = policy_glob_covers(&outer[j], &inner[i]);
        if (!ok)
            return 0;
    }
    return 1;
}

static int actions_cover(const struct policy_rule *outer, const struct policy_rule *inner)
{
    for (uint32_t i = 0; i < inner->n_actions; i++) {
        int ok = 0;
        for (uint32_t j = 0; j < outer->n_actions && !ok; j++)
            ok = policy_glob_covers(&outer->actions[j].service, &inner->actions[i].service) &&
                 policy_glob_covers(&outer->actions[j].verb, &inner->actions[i].verb);
        if (!ok)
            return 0;
    }
    return 1;
}

int policy_rule_covers(const policy *p, const struct policy_rule *outer,
                       const struct policy_rule *inner)
{
    return actions_cover(outer, inner) &&
           globs_cover(outer->audiences, outer->n_audiences, inner->audiences,
                       inner->n_audiences) &&
           globs_cover(outer->resources, outer->n_resources, inner->resources,
                       inner->n_resources) &&
           agents_cover(p, &outer->agents, &inner->agents);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Append "[a,b,...]" of n strings, sorted, to b. */
static void sorted_list(ztb_buf *b, const char **tmp, size_t n)
{
    qsort(tmp, n, sizeof(char *), cmp_str);
    ztb_buf_append_byte(b, '[');
    for (size_t i = 0; i < n; i++) {
        if (i)
            ztb_buf_append_byte(b, ',');
        /* escape, so list separators inside patterns cannot fake equality */
        ztb_buf_append_json_escaped(b, tmp[i], strlen(tmp[i]));
        ztb_buf_append_byte(b, ',');
    }
    ztb_buf_append_byte(b, ']');
}

static const char *make_key(policy *p, const struct policy_rule *r, ztb_buf *b, const char **tmp)
{
    ztb_buf_reset(b);
    for (uint32_t i = 0; i < r->agents.n_text; i++)
        tmp[i] = r->agents.text[i];
    ztb_buf_append_str(b, "agents");
    sorted_list(b, tmp, r->agents.n_text);
    const char **canon = tmp;
    ztb_buf_append_str(b, " actions");
    for (uint32_t i = 0; i < r->n_actions; i++)
        canon[i] = ztb_arena_printf(&p->arena, "%s:%s", r->actions[i].service.text,
                                    r->actions[i].verb.text);
    if (ztb_arena_error(&p->arena) != ZTB_OK)
        return NULL;
    sorted_list(b, canon, r->n_actions);
    ztb_buf_append_str(b, " audiences");
    for (uint32_t i = 0; i < r->n_audiences; i++)
        tmp[i] = r->audiences[i].text;
    sorted_list(b, tmp, r->n_audiences);
    ztb_buf_append_str(b, " resources");
    for (uint32_t i = 0; i < r->n_resources; i++)
        tmp[i] = r->resources[i].text;
    sorted_list(b, tmp, r->n_resources);
    ztb_buf_append_str(b, " conditions ");
    ztb_buf_append_str(b, r->cond.canon ? r->cond.canon : "");
    if (ztb_buf_error(b) != ZTB_OK)
        return NULL;
    return ztb_arena_strdup(&p->arena, ztb_buf_cstr(b));
}

static int rate_eq(policy_rate a, policy_rate b)
{
    return a.rate == b.rate && a.burst == b.burst && a.period == b.period;
}

/* A description of the first obligation that differs, or NULL if none does. */
static const char *ob_diff(const policy_obligations *a, const policy_obligations *b, char *buf,
                           size_t cap)
{
    static const char *const bind[] = {"none", "any", "dpop", "mtls"};
    if (a->ttl != b->ttl)
        snprintf(buf, cap, "ttl %u vs %u", a->ttl, b->ttl);
    else if (a->single_use != b->single_use)
        snprintf(buf, cap, "single_use %s vs %s", a->single_use ? "true" : "false",
                 b->single_use ? "true" : "false");
    else if (a->binding != b->binding)
        snprintf(buf, cap, "binding %s vs %s", bind[a->binding & 3], bind[b->binding & 3]);
    else if (!rate_eq(a->per_agent, b->per_agent))
        snprintf(buf, cap, "rate_limits.per_agent %u/%us vs %u/%us", a->per_agent.rate,
                 a->per_agent.period, b->per_agent.rate, b->per_agent.period);
    else if (!rate_eq(a->per_action, b->per_action))
        snprintf(buf, cap, "rate_limits.per_action %u/%us vs %u/%us", a->per_action.rate,
                 a->per_action.period, b->per_action.rate, b->per_action.period);
    else if (a->approvers != b->approvers ||
             (a->approval_group == NULL) != (b->approval_group == NULL) ||
             (a->approval_group && strcmp(a->approval_group, b->approval_group) != 0))
        snprintf(buf, cap, "approval_required %s/%u vs %s/%u",
                 a->approval_group ? a->approval_group : "none", a->approvers,
                 b->approval_group ? b->approval_group : "none", b->approvers);
    else
        return NULL;
    return buf;
}

struct keyed {
    const char *key;
    uint32_t idx;
};

static int cmp_keyed(const void *a, const void *b)
{
    const struct keyed *x = a, *y = b;
    int c = strcmp(x->key, y->key);
    return c != 0 ? c : (x->idx > y->idx) - (x->idx < y->idx);
}

static void where_rule(char *buf, size_t cap, const struct policy_rule *r)
{
    char q[96];
    snprintf(buf, cap, "rule %s", policy_diag_quote(q, sizeof(q), r->id, strlen(r->id)));
}

int policy_overlap_check(policy *p, policy_diag *d)
{
    int problems = 0;
    ztb_buf b;
    ztb_buf_init(&b, 1 << 20);
    const char **tmp = malloc(POLICY_MAX_LIST * sizeof(char *));
    struct keyed *order = malloc((p->n_rules ? p->n_rules : 1) * sizeof(*order));
    uint8_t *reported = calloc(p->n_rules ? p->n_rules : 1, 1);
    if (tmp == NULL || order == NULL || reported == NULL) {
        policy_diag_add(d, 0, 0, "document", NULL, "out of memory checking rule overlap");
        problems = 1;
        goto out;
    }
    for (uint32_t i = 0; i < p->n_rules; i++) {
        p->rules[i].match_key = make_key(p, &p->rules[i], &b, tmp);
        if (p->rules[i].match_key == NULL) {
            policy_diag_add(d, 0, 0, "document", NULL, "out of memory checking rule overlap");
            problems = 1;
            goto out;
        }
        order[i].key = p->rules[i].match_key;
        order[i].idx = i;
    }
    /* identical match sets are neighbours once sorted by key */
    qsort(order, p->n_rules, sizeof(*order), cmp_keyed);
    for (uint32_t i = 0; i < p->n_rules;) {
        uint32_t j = i + 1;
        const struct policy_rule *first = &p->rules[order[i].idx];
        while (j < p->n_rules && strcmp(order[j].key, first->match_key) == 0) {
            const struct policy_rule *r = &p->rules[order[j].idx];
            char where[160], q[96], diff[160];
            const char *fq = policy_diag_quote(q, sizeof(q), first->id, strlen(first->id));
            where_rule(where, sizeof(where), r);
            if (first->effect != r->effect) {
                /* deny rules sort first, so `first` is the deny */
                where_rule(where, sizeof(where), r->effect == POLICY_ALLOW ? r : first);
                policy_diag_add(d, 0, 0, where, NULL,
                                "unreachable: deny rule %s matches exactly the same requests", fq);
                reported[r->index] = 1;
            } else if (r->effect == POLICY_ALLOW &&
                       ob_diff(&first->ob, &r->ob, diff, sizeof(diff)) != NULL) {
                policy_diag_add(d, 0, 0, where, NULL,
                                "conflicts with rule %s: both match exactly the same requests "
                                "but their obligations differ (%s)",
                                fq, diff);
            } else {
                policy_diag_add(d, 0, 0, where, NULL,
                                "duplicates rule %s: same effect, same requests%s", fq,
                                r->effect == POLICY_ALLOW ? ", same obligations" : "");
            }
            problems++;
            j++;
        }
        i = j;
    }
    /* allow rules fully shadowed by a deny rule */
    for (uint32_t di = 0; di < p->n_deny; di++) {
        const struct policy_rule *dr = &p->rules[di];
        for (uint32_t ai = p->n_deny; ai < p->n_rules; ai++) {
            const struct policy_rule *ar = &p->rules[ai];
            if (reported[ai])
                continue;
            if (dr->cond.any && strcmp(dr->cond.canon, ar->cond.canon) != 0)
                continue;
            if (!policy_rule_covers(p, dr, ar))
                continue;
            char where[160], q[96];
            where_rule(where, sizeof(where), ar);
            policy_diag_add(d, 0, 0, where, NULL,
                            "unreachable: deny rule %s matches every request it matches%s",
                            policy_diag_quote(q, sizeof(q), dr->id, strlen(dr->id)),
                            dr->cond.any ? " under the same conditions" : "");
            reported[ai] = 1;
            problems++;
        }
    }
out:
    ztb_buf_free(&b);
    free(tmp);
    free(order);
    free(reported);
    return problems;
}
