/*
 * load_agents.c - the agent references of rules, groups and anomaly
 * responses: "*", a name, a name pattern, a SPIFFE ID (pattern) or
 * "group:NAME", parsed into the agent sets the evaluator matches.
 *
 * Part of the policy loader (see load.c); like all of it, it must never
 * accept a document with any problem.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/guard.h"
#include "common/utf8.h"
#include "policy/compile.h"
#include "policy/load_internal.h"
#include "policy/model.h"
#include "policy/policy.h"

/* Parse one agent entry: "*", a name, a name pattern, a SPIFFE ID (pattern), "group:NAME". */
int load_agent_ref(struct ld *L, const char *s, const char *where, const char *field,
                   int allow_group, struct aref *r)
{
    policy *p = L->p;
    size_t n = strlen(s);
    char q[QCAP];
    memset(r, 0, sizeof(*r));
    if (strncmp(s, "group:", 6) == 0) {
        if (!allow_group) {
            load_fail(L, where, field, "%s: a group cannot contain a group", load_quote(q, s));
            return 0;
        }
        if (!policy_strmap_get(&p->group_map, s + 6, n - 6, &r->group)) {
            load_fail(L, where, field, "%s: no such group", load_quote(q, s));
            return 0;
        }
        r->kind = AREF_GROUP;
        r->norm = load_copy(L, s);
        return r->norm != NULL;
    }
    const char *name = s;
    size_t nn = n;
    if (strncmp(s, "spiffe://", 9) == 0) {
        if (p->spiffe_prefix == NULL)
            return 0; /* trust_domain already reported */
        if (n <= p->spiffe_prefix_len || memcmp(s, p->spiffe_prefix, p->spiffe_prefix_len) != 0) {
            load_fail(L, where, field,
                      "%s: an agent's SPIFFE ID is %sNAME (this policy's trust domain)",
                      load_quote(q, s), p->spiffe_prefix);
            return 0;
        }
        name += p->spiffe_prefix_len;
        nn -= p->spiffe_prefix_len;
    }
    if (nn == 1 && name[0] == '*') {
        r->kind = AREF_ANY;
        r->norm = "*";
        return 1;
    }
    if (!load_valid_name(name, nn, POLICY_MAX_NAME, 1)) {
        load_fail(L, where, field,
                  "%s: an agent name is 1 to %d of A-Z a-z 0-9 . _ - (and * in a pattern)",
                  load_quote(q, s), POLICY_MAX_NAME);
        return 0;
    }
    r->norm = ztb_arena_memdup(L->a, name, nn);
    if (r->norm == NULL)
        return 0;
    if (memchr(name, '*', nn) != NULL) {
        const char *why = NULL;
        ztb_err e = policy_glob_compile(L->a, name, nn, POLICY_GLOB_NO_DSTAR, &r->glob, &why);
        if (e != ZTB_OK) {
            load_fail(L, where, field, "%s: %s", load_quote(q, s), why ? why : ztb_strerror(e));
            return 0;
        }
        r->kind = AREF_GLOB;
    } else {
        r->kind = AREF_NAME;
    }
    return 1;
}

/* A list of agent entries into out. */
void load_parse_agentset(struct ld *L, json_t *v, const char *where, const char *field,
                         struct policy_agentset *out)
{
    memset(out, 0, sizeof(*out));
    if (load_want_list(L, v, where, field, POLICY_MAX_LIST) == NULL)
        return;
    size_t n = json_array_size(v);
    const char **text = ztb_arena_calloc(L->a, n, sizeof(char *));
    const char **names = ztb_arena_calloc(L->a, n, sizeof(char *));
    uint32_t *groups = ztb_arena_calloc(L->a, n, sizeof(uint32_t));
    policy_glob *globs = ztb_arena_calloc(L->a, n, sizeof(policy_glob));
    if (text == NULL || names == NULL || groups == NULL || globs == NULL)
        return;
    size_t nt = 0;
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_array_get(v, i);
        if (!json_is_string(e)) {
            load_fail(L, where, field, "entry %zu must be a string", i);
            continue;
        }
        struct aref r;
        if (!load_agent_ref(L, json_string_value(e), where, field, 1, &r))
            continue;
        char q[QCAP];
        if (load_seen_before(text, nt, r.norm)) {
            load_fail(L, where, field, "%s is listed twice", load_quote(q, r.norm));
            continue;
        }
        text[nt++] = r.norm;
        switch (r.kind) {
        case AREF_ANY: out->any = 1; break;
        case AREF_NAME: names[out->n_names++] = r.norm; break;
        case AREF_GLOB: globs[out->n_globs++] = r.glob; break;
        case AREF_GROUP: groups[out->n_groups++] = r.group; break;
        }
    }
    if (out->any && nt > 1)
        load_fail(L, where, field, "\"*\" already names every agent; list nothing else beside it");
    qsort(text, nt, sizeof(char *), load_cmp_str);
    qsort(names, out->n_names, sizeof(char *), load_cmp_str);
    qsort(groups, out->n_groups, sizeof(uint32_t), load_cmp_u32);
    out->text = text;
    out->n_text = (uint32_t)nt;
    out->name_text = names;
    out->groups = groups;
    out->globs = globs;
}
