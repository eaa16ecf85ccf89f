/*
 * load_groups.c - the document's "groups" section: named agent sets,
 * sorted by name; a group cannot contain a group.
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

/* ---- groups ------------------------------------------------------------ */

void load_parse_groups(struct ld *L, json_t *g)
{
    static const char *const keys[] = {"members", "description", NULL};
    policy *p = L->p;
    if (!json_is_object(g)) {
        load_fail(L, "groups", NULL, "must be an object of group name -> {\"members\": [...]}");
        return;
    }
    size_t n = json_object_size(g);
    if (n > POLICY_MAX_GROUPS) {
        load_fail(L, "groups", NULL, "has %zu groups; at most %d are allowed", n,
                  POLICY_MAX_GROUPS);
        return;
    }
    const char **names = ztb_arena_calloc(L->a, n ? n : 1, sizeof(char *));
    p->groups = ztb_arena_calloc(L->a, n ? n : 1, sizeof(struct policy_group));
    if (names == NULL || p->groups == NULL ||
        policy_strmap_init(&p->group_map, L->a, (uint32_t)n) != ZTB_OK)
        return;
    /* sorted names first, so "group:x" references resolve to stable indexes */
    size_t k = 0;
    for (void *it = json_object_iter(g); it != NULL; it = json_object_iter_next(g, it)) {
        const char *key = json_object_iter_key(it);
        char q[QCAP];
        if (!load_valid_id(key, strlen(key))) {
            load_fail(L, "groups", NULL, "group name %s: use 1 to %d of A-Z a-z 0-9 . _ -",
                      load_quote(q, key), POLICY_MAX_ID);
            continue;
        }
        names[k++] = load_copy(L, key);
    }
    if (ztb_arena_error(L->a) != ZTB_OK)
        return;
    qsort(names, k, sizeof(char *), load_cmp_str);
    p->n_groups = (uint32_t)k;
    for (uint32_t i = 0; i < k; i++) {
        p->groups[i].name = names[i];
        p->groups[i].index = i;
        policy_strmap_put(&p->group_map, names[i], strlen(names[i]), i, NULL);
    }
    size_t total = 0;
    for (uint32_t i = 0; i < p->n_groups; i++) {
        struct policy_group *grp = &p->groups[i];
        char where[WCAP], q[QCAP];
        snprintf(where, sizeof(where), "group %s", load_quote(q, grp->name));
        json_t *o = json_object_get(g, grp->name);
        if (!json_is_object(o)) {
            load_fail(L, where, NULL, "must be an object {\"members\": [...]}");
            continue;
        }
        load_check_keys(L, o, where, NULL, keys);
        grp->description = load_copy(L, load_get_str(L, o, "description", where, NULL, 1024, 0));
        json_t *m = load_get(L, o, "members", where, NULL, 1);
        if (m == NULL || load_want_list(L, m, where, "members", POLICY_MAX_MEMBERS) == NULL)
            continue;
        size_t nm = json_array_size(m);
        total += nm;
        if (total > POLICY_MAX_MEMBERS) {
            load_fail(L, where, "members", "groups hold more than %d members in all",
                      POLICY_MAX_MEMBERS);
            return;
        }
        const char **members = ztb_arena_calloc(L->a, nm, sizeof(char *));
        policy_glob *globs = ztb_arena_calloc(L->a, nm, sizeof(policy_glob));
        if (members == NULL || globs == NULL)
            return;
        size_t nmem = 0;
        for (size_t j = 0; j < nm; j++) {
            json_t *e = json_array_get(m, j);
            struct aref r;
            if (!json_is_string(e)) {
                load_fail(L, where, "members", "entry %zu must be a string", j);
                continue;
            }
            if (!load_agent_ref(L, json_string_value(e), where, "members", 0, &r))
                continue;
            if (r.kind == AREF_GLOB || r.kind == AREF_ANY) {
                if (r.kind == AREF_ANY)
                    policy_glob_compile(L->a, "*", 1, POLICY_GLOB_NO_DSTAR, &r.glob, NULL);
                globs[grp->n_globs++] = r.glob;
            }
            members[nmem++] = r.norm;
        }
        /* duplicates: sort, then compare neighbours (groups can be large) */
        qsort(members, nmem, sizeof(char *), load_cmp_str);
        for (size_t j = 1; j < nmem; j++)
            if (strcmp(members[j - 1], members[j]) == 0)
                load_fail(L, where, "members", "%s is listed twice", load_quote(q, members[j]));
        grp->members = members;
        grp->n_members = (uint32_t)nmem;
        grp->globs = globs;
    }
}
