/*
 * compile.c - agent table, agent sets and the rule index (see compile.h).
 *
 * The index: every rule goes into the list of each (audience key, service
 * key) it can match, where an audience key is a literal audience or "wild"
 * (the rule has an audience pattern) and a service key is a literal service
 * or "any" (the rule has a service pattern). Lists hold rule indexes in
 * ascending (canonical) order, so deny rules come first and a merge of the
 * four lists that can apply to a request visits rules in canonical order.
 * Building sorts one array of (bucket, service, rule) triples; it is the only
 * temporary heap use and is freed before returning.
 *
 * Must never: leave a rule out of a list it can match (the index may only
 * narrow the search, never change a decision), or depend on file order.
 */
#include <stdlib.h>
#include <string.h>

#include "common/guard.h"
#include "policy/compile.h"

/* Add name to the agent table if new; returns its index (or UINT32_MAX on error). */
static uint32_t intern(policy *p, const char *name, ztb_err *err)
{
    uint32_t idx;
    size_t len = strlen(name);
    if (policy_strmap_get(&p->agent_map, name, len, &idx))
        return idx;
    idx = p->n_agents;
    ztb_err e = policy_strmap_put(&p->agent_map, name, len, idx, NULL);
    if (e != ZTB_OK) {
        *err = e;
        return UINT32_MAX;
    }
    p->agents[idx].name = name;
    p->agents[idx].len = (uint32_t)len;
    p->n_agents++;
    return idx;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/* Resolve an agent set's exact names to indexes and its groups to a mask. */
static ztb_err compile_agentset(policy *p, struct policy_agentset *s)
{
    ztb_err err = ZTB_OK;
    uint64_t *mask = ztb_arena_calloc(&p->arena, p->group_words, sizeof(uint64_t));
    uint32_t *names = ztb_arena_calloc(&p->arena, s->n_names ? s->n_names : 1, sizeof(uint32_t));
    ZTB_ENSURE(mask != NULL && names != NULL, ztb_arena_error(&p->arena));
    for (uint32_t i = 0; i < s->n_groups; i++)
        mask[s->groups[i] / 64] |= (uint64_t)1 << (s->groups[i] % 64);
    for (uint32_t i = 0; i < s->n_names; i++) {
        names[i] = intern(p, s->name_text[i], &err);
        ZTB_GUARD(err);
    }
    qsort(names, s->n_names, sizeof(uint32_t), cmp_u32);
    s->names = names;
    s->group_mask = mask;
    return ZTB_OK;
}

static ztb_err compile_agents(policy *p)
{
    ztb_err err = ZTB_OK;
    size_t total = 0;
    for (uint32_t g = 0; g < p->n_groups; g++)
        total += p->groups[g].n_members;
    for (uint32_t r = 0; r < p->n_rules; r++)
        total += p->rules[r].agents.n_names;
    for (uint32_t r = 0; r < p->n_responses; r++)
        total += p->responses[r].agents.n_names;
    ZTB_ENSURE(total < (1u << 30), ZTB_ERR_TOO_LARGE);
    p->group_words = p->n_groups == 0 ? 1 : (p->n_groups + 63) / 64;
    p->agents = ztb_arena_calloc(&p->arena, total ? total : 1, sizeof(struct policy_agent));
    p->no_groups = ztb_arena_calloc(&p->arena, p->group_words, sizeof(uint64_t));
    ZTB_ENSURE(p->agents != NULL && p->no_groups != NULL, ztb_arena_error(&p->arena));
    ZTB_GUARD(policy_strmap_init(&p->agent_map, &p->arena, (uint32_t)total));

    /* exact group members first (groups are sorted by name, members by text) */
    for (uint32_t g = 0; g < p->n_groups; g++) {
        const struct policy_group *grp = &p->groups[g];
        for (uint32_t m = 0; m < grp->n_members; m++)
            if (strchr(grp->members[m], '*') == NULL) {
                intern(p, grp->members[m], &err);
                ZTB_GUARD(err);
            }
    }
    for (uint32_t r = 0; r < p->n_rules; r++)
        ZTB_GUARD(compile_agentset(p, &p->rules[r].agents));
    for (uint32_t r = 0; r < p->n_responses; r++)
        ZTB_GUARD(compile_agentset(p, &p->responses[r].agents));

    /* each agent's exact group memberships as a bitset */
    uint64_t *bits = ztb_arena_calloc(&p->arena, (size_t)p->n_agents ? p->n_agents : 1,
                                      (size_t)p->group_words * sizeof(uint64_t));
    ZTB_ENSURE(bits != NULL, ztb_arena_error(&p->arena));
    for (uint32_t a = 0; a < p->n_agents; a++)
        p->agents[a].groups = bits + (size_t)a * p->group_words;
    uint32_t n_glob = 0;
    for (uint32_t g = 0; g < p->n_groups; g++) {
        const struct policy_group *grp = &p->groups[g];
        if (grp->n_globs > 0)
            n_glob++;
        for (uint32_t m = 0; m < grp->n_members; m++) {
            uint32_t a;
            if (strchr(grp->members[m], '*') == NULL &&
                policy_strmap_get(&p->agent_map, grp->members[m], strlen(grp->members[m]), &a))
                bits[(size_t)a * p->group_words + g / 64] |= (uint64_t)1 << (g % 64);
        }
    }
    uint32_t *gg = ztb_arena_calloc(&p->arena, n_glob ? n_glob : 1, sizeof(uint32_t));
    ZTB_ENSURE(gg != NULL, ztb_arena_error(&p->arena));
    for (uint32_t g = 0, k = 0; g < p->n_groups; g++)
        if (p->groups[g].n_globs > 0)
            gg[k++] = g;
    p->glob_groups = gg;
    p->n_glob_groups = n_glob;
    return ZTB_OK;
}

struct triple {
    uint32_t bucket; /* audience bucket; n_buckets for wild */
    const char *svc; /* literal service, NULL for any */
    uint32_t svc_len;
    uint32_t rule;
};

static int cmp_triple(const void *a, const void *b)
{
    const struct triple *x = a, *y = b;
    if (x->bucket != y->bucket)
        return x->bucket < y->bucket ? -1 : 1;
    if ((x->svc == NULL) != (y->svc == NULL))
        return x->svc == NULL ? -1 : 1;
    if (x->svc != NULL) {
        int c = strcmp(x->svc, y->svc);
        if (c != 0)
            return c;
    }
    return (x->rule > y->rule) - (x->rule < y->rule);
}

static int same_key(const struct triple *x, const struct triple *y)
{
    return x->bucket == y->bucket && (x->svc == NULL) == (y->svc == NULL) &&
           (x->svc == NULL || strcmp(x->svc, y->svc) == 0);
}

/* Fill one bucket from the sorted triples t[0..n) that all belong to it. */
static ztb_err fill_bucket(policy *p, struct policy_bucket *b, const struct triple *t, size_t n)
{
    uint32_t nsvc = 0;
    for (size_t i = 0; i < n; i++)
        if (t[i].svc != NULL && (i == 0 || !same_key(&t[i - 1], &t[i])))
            nsvc++;
    ZTB_GUARD(policy_strmap_init(&b->services, &p->arena, nsvc));
    struct policy_rulelist *lists =
        ztb_arena_calloc(&p->arena, nsvc ? nsvc : 1, sizeof(struct policy_rulelist));
    uint32_t *idx = ztb_arena_calloc(&p->arena, n ? n : 1, sizeof(uint32_t));
    ZTB_ENSURE(lists != NULL && idx != NULL, ztb_arena_error(&p->arena));
    b->lists = lists;
    uint32_t k = 0;
    for (size_t i = 0; i < n;) {
        size_t j = i;
        struct policy_rulelist *l;
        if (t[i].svc == NULL) {
            l = &b->any_service;
        } else {
            l = &lists[k];
            ZTB_GUARD(policy_strmap_put(&b->services, t[i].svc, t[i].svc_len, k, NULL));
            k++;
        }
        l->idx = idx;
        while (j < n && same_key(&t[i], &t[j])) {
            if (j == i || t[j].rule != t[j - 1].rule)
                idx[l->n++] = t[j].rule;
            j++;
        }
        idx += l->n;
        i = j;
    }
    return ZTB_OK;
}

static ztb_err compile_index(policy *p)
{
    ztb_err rv = ZTB_OK;
    struct triple *t = NULL;
    size_t naud = 0, ntrip = 0;
    for (uint32_t r = 0; r < p->n_rules; r++) {
        const struct policy_rule *rule = &p->rules[r];
        naud += rule->n_audiences;
        ntrip += (size_t)rule->n_audiences * rule->n_actions;
    }
    ZTB_TRY(rv, policy_strmap_init(&p->audience_map, &p->arena, (uint32_t)naud));
    t = malloc((ntrip ? ntrip : 1) * sizeof(*t));
    ZTB_CHECK(rv, t != NULL, ZTB_ERR_NOMEM);
    uint32_t nb = 0;
    for (uint32_t r = 0; r < p->n_rules; r++) {
        const struct policy_rule *rule = &p->rules[r];
        for (uint32_t a = 0; a < rule->n_audiences; a++) {
            const policy_glob *ag = &rule->audiences[a];
            if (!policy_glob_is_literal(ag))
                continue;
            if (policy_strmap_put(&p->audience_map, ag->text, ag->len, nb, NULL) == ZTB_OK)
                nb++;
        }
    }
    p->n_buckets = nb;
    p->buckets = ztb_arena_calloc(&p->arena, nb ? nb : 1, sizeof(struct policy_bucket));
    ZTB_CHECK(rv, p->buckets != NULL, ztb_arena_error(&p->arena));
    size_t k = 0;
    for (uint32_t r = 0; r < p->n_rules; r++) {
        const struct policy_rule *rule = &p->rules[r];
        for (uint32_t a = 0; a < rule->n_audiences; a++) {
            const policy_glob *ag = &rule->audiences[a];
            uint32_t bucket = nb;
            if (policy_glob_is_literal(ag))
                policy_strmap_get(&p->audience_map, ag->text, ag->len, &bucket);
            for (uint32_t c = 0; c < rule->n_actions; c++) {
                const policy_glob *sg = &rule->actions[c].service;
                t[k].bucket = bucket;
                t[k].svc = policy_glob_is_literal(sg) ? sg->text : NULL;
                t[k].svc_len = sg->len;
                t[k].rule = r;
                k++;
            }
        }
    }
    qsort(t, k, sizeof(*t), cmp_triple);
    size_t i = 0;
    for (uint32_t b = 0; b <= nb; b++) {
        size_t j = i;
        while (j < k && t[j].bucket == b)
            j++;
        ZTB_TRY(rv, fill_bucket(p, b < nb ? &p->buckets[b] : &p->wild, t + i, j - i));
        i = j;
    }
out:
    free(t);
    return rv;
}

static uint64_t agent_bloom(const struct policy_agentset *s)
{
    if (s->any || s->n_names > 0 || s->n_globs > 0)
        return ~(uint64_t)0; /* cannot be summarised by groups */
    uint64_t b = 0;
    for (uint32_t i = 0; i < s->n_groups; i++)
        b |= (uint64_t)1 << (s->groups[i] % 64);
    return b;
}

/* The rule list of bucket b for exact service svc (empty if none). */
static struct policy_rulelist svc_list(const struct policy_bucket *b, const char *svc, size_t len)
{
    uint32_t li;
    struct policy_rulelist none = {0, NULL};
    if (b->lists != NULL && policy_strmap_get(&b->services, svc, len, &li))
        return b->lists[li];
    return none;
}

/*
 * Merge up to four ascending lists into out (deduplicated), marking entries
 * that come from the first n_exact lists. Returns how many were written.
 */
static uint32_t merge_lists(const policy *p, const struct policy_rulelist *l, unsigned n,
                            unsigned n_exact, struct policy_cand *out)
{
    uint32_t pos[4] = {0, 0, 0, 0}, k = 0;
    for (;;) {
        uint32_t best = UINT32_MAX, exact = 0;
        for (unsigned i = 0; i < n; i++)
            if (pos[i] < l[i].n && l[i].idx[pos[i]] <= best) {
                if (l[i].idx[pos[i]] < best)
                    exact = 0;
                best = l[i].idx[pos[i]];
                exact |= i < n_exact;
            }
        if (best == UINT32_MAX)
            return k;
        for (unsigned i = 0; i < n; i++)
            if (pos[i] < l[i].n && l[i].idx[pos[i]] == best)
                pos[i]++;
        out[k].rule = best;
        out[k].audience_known = exact;
        out[k].agent_bloom = p->rules[best].agent_bloom;
        k++;
    }
}

/* Pre-merge the candidates of every (exact audience, exact service) pair. */
static ztb_err compile_merged(policy *p)
{
    size_t total = 0;
    for (uint32_t b = 0; b < p->n_buckets; b++) {
        const struct policy_bucket *bk = &p->buckets[b];
        for (uint32_t e = 0; e < bk->services.count; e++) {
            const struct policy_strmap_entry *en = &bk->services.entries[e];
            total += bk->lists[en->value].n + bk->any_service.n + p->wild.any_service.n +
                     svc_list(&p->wild, en->key, en->len).n;
        }
    }
    if (total > POLICY_MAX_MERGED)
        return ZTB_OK; /* too big to precompute: requests merge at run time */
    struct policy_cand *pool = ztb_arena_calloc(&p->arena, total ? total : 1, sizeof(*pool));
    ZTB_ENSURE(pool != NULL, ztb_arena_error(&p->arena));
    for (uint32_t b = 0; b < p->n_buckets; b++) {
        struct policy_bucket *bk = &p->buckets[b];
        uint32_t ns = bk->services.count;
        struct policy_candlist *m = ztb_arena_calloc(&p->arena, ns ? ns : 1, sizeof(*m));
        ZTB_ENSURE(m != NULL, ztb_arena_error(&p->arena));
        for (uint32_t e = 0; e < ns; e++) {
            const struct policy_strmap_entry *en = &bk->services.entries[e];
            struct policy_rulelist l[4] = {bk->lists[en->value], bk->any_service,
                                           svc_list(&p->wild, en->key, en->len),
                                           p->wild.any_service};
            m[en->value].c = pool;
            m[en->value].n = merge_lists(p, l, 4, 2, pool);
            pool += m[en->value].n;
        }
        bk->merged = m;
    }
    return ZTB_OK;
}

ztb_err policy_compile(policy *p)
{
    ZTB_GUARD(compile_agents(p));
    for (uint32_t r = 0; r < p->n_rules; r++)
        p->rules[r].agent_bloom = agent_bloom(&p->rules[r].agents);
    ZTB_GUARD(compile_index(p));
    ZTB_GUARD(compile_merged(p));
    return ztb_arena_error(&p->arena);
}

static void bucket_lists(const struct policy_bucket *b, const char *service, size_t slen,
                         struct policy_rulelist out[4], unsigned *n)
{
    uint32_t li;
    if (b->lists != NULL && policy_strmap_get(&b->services, service, slen, &li))
        out[(*n)++] = b->lists[li];
    if (b->any_service.n > 0)
        out[(*n)++] = b->any_service;
}

void policy_index_lookup(const policy *p, const char *audience, size_t alen, const char *service,
                         size_t slen, struct policy_rulelist out[4], unsigned *n, unsigned *n_exact,
                         const struct policy_candlist **merged)
{
    uint32_t b, li;
    *n = 0;
    *merged = NULL;
    if (policy_strmap_get(&p->audience_map, audience, alen, &b)) {
        const struct policy_bucket *bk = &p->buckets[b];
        if (bk->merged != NULL && policy_strmap_get(&bk->services, service, slen, &li)) {
            *merged = &bk->merged[li];
            *n_exact = 0;
            return;
        }
        bucket_lists(bk, service, slen, out, n);
    }
    *n_exact = *n;
    bucket_lists(&p->wild, service, slen, out, n);
}
