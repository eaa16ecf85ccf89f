/*
 * load_rules.c - the document's "rules": each rule's fields, action
 * and resource patterns, obligations; rules re-sorted into canonical order
 * so the document's order cannot change the result.
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

/* ---- rules ------------------------------------------------------------- */

static void parse_actions(struct ld *L, json_t *v, const char *where, struct policy_rule *r)
{
    if (load_want_list(L, v, where, "actions", POLICY_MAX_LIST) == NULL)
        return;
    size_t n = json_array_size(v);
    struct policy_action_pat *acts = ztb_arena_calloc(L->a, n, sizeof(*acts));
    const char **seen = ztb_arena_calloc(L->a, n, sizeof(char *));
    if (acts == NULL || seen == NULL)
        return;
    uint32_t k = 0;
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_array_get(v, i);
        char q[QCAP];
        if (!json_is_string(e)) {
            load_fail(L, where, "actions", "entry %zu must be a string", i);
            continue;
        }
        const char *s = json_string_value(e);
        size_t len = json_string_length(e);
        const char *colon = memchr(s, ':', len);
        const char *svc = s, *verb = s;
        size_t sl = len, vl = len;
        if (!(len == 1 && s[0] == '*')) {
            if (colon == NULL || memchr(colon + 1, ':', len - (size_t)(colon - s) - 1) != NULL) {
                load_fail(L, where, "actions", "%s: an action is service:verb (or \"*\" for all)",
                          load_quote(q, s));
                continue;
            }
            sl = (size_t)(colon - s);
            verb = colon + 1;
            vl = len - sl - 1;
        }
        if (!load_valid_name(svc, sl, POLICY_MAX_ID, 1) ||
            !load_valid_name(verb, vl, POLICY_MAX_ID, 1)) {
            load_fail(L, where, "actions",
                      "%s: service and verb are 1 to %d of A-Z a-z 0-9 . _ - (and * in a pattern)",
                      load_quote(q, s), POLICY_MAX_ID);
            continue;
        }
        const char *why = NULL;
        if (policy_glob_compile(L->a, svc, sl, POLICY_GLOB_NO_DSTAR, &acts[k].service, &why) !=
                ZTB_OK ||
            policy_glob_compile(L->a, verb, vl, POLICY_GLOB_NO_DSTAR, &acts[k].verb, &why) !=
                ZTB_OK) {
            load_fail(L, where, "actions", "%s: %s", load_quote(q, s),
                      why ? why : "invalid pattern");
            continue;
        }
        acts[k].text = ztb_arena_memdup(L->a, s, len);
        if (policy_glob_is_literal(&acts[k].service) && policy_glob_is_literal(&acts[k].verb))
            acts[k].literal_len = (uint32_t)len;
        const char *canon =
            ztb_arena_printf(L->a, "%s:%s", acts[k].service.text, acts[k].verb.text);
        if (acts[k].text == NULL || canon == NULL)
            return;
        if (load_seen_before(seen, k, canon)) {
            load_fail(L, where, "actions", "%s is listed twice", load_quote(q, s));
            continue;
        }
        seen[k++] = canon;
    }
    r->actions = acts;
    r->n_actions = k;
}

void load_parse_patterns(struct ld *L, json_t *v, const char *where, const char *field,
                         const policy_glob **out, uint32_t *nout)
{
    *out = NULL;
    *nout = 0;
    if (load_want_list(L, v, where, field, POLICY_MAX_LIST) == NULL)
        return;
    size_t n = json_array_size(v);
    policy_glob *g = ztb_arena_calloc(L->a, n, sizeof(policy_glob));
    if (g == NULL)
        return;
    uint32_t k = 0;
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_array_get(v, i);
        char q[QCAP];
        if (!json_is_string(e)) {
            load_fail(L, where, field, "entry %zu must be a string", i);
            continue;
        }
        const char *why = NULL;
        const char *s = json_string_value(e);
        if (policy_glob_compile(L->a, s, json_string_length(e), 0, &g[k], &why) != ZTB_OK) {
            load_fail(L, where, field, "%s: %s", load_quote(q, s), why ? why : "invalid pattern");
            continue;
        }
        int twice = 0;
        for (uint32_t j = 0; j < k && !twice; j++)
            twice = strcmp(g[j].text, g[k].text) == 0;
        if (twice) {
            load_fail(L, where, field, "%s is listed twice", load_quote(q, s));
            continue;
        }
        k++;
    }
    *out = g;
    *nout = k;
}

static void parse_obligations(struct ld *L, json_t *v, const char *where, struct policy_rule *r)
{
    static const char *const keys[] = {"ttl",         "single_use",        "binding",
                                       "rate_limits", "approval_required", NULL};
    static const char *const rkeys[] = {"per_agent", "per_action", NULL};
    static const char *const akeys[] = {"group", "approvers", "expires_in", NULL};
    policy *p = L->p;
    const char *field = "obligations";
    r->ob.ttl = p->default_ttl;
    r->ob.binding = p->default_binding;
    r->ob.per_agent = p->default_per_agent;
    r->ob.per_action = p->default_per_action;
    if (v == NULL)
        return;
    if (!json_is_object(v)) {
        load_fail(L, where, field, "must be an object");
        return;
    }
    load_check_keys(L, v, where, field, keys);
    json_t *ttl = json_object_get(v, "ttl");
    if (ttl != NULL) {
        if (!json_is_integer(ttl) || json_integer_value(ttl) < 1)
            load_fail(L, where, "obligations.ttl", "must be a positive integer (seconds)");
        else if (json_integer_value(ttl) > (json_int_t)p->max_ttl)
            load_fail(L, where, "obligations.ttl", "%lld exceeds settings.max_ttl %u",
                      (long long)json_integer_value(ttl), p->max_ttl);
        else {
            r->ob.ttl = (uint32_t)json_integer_value(ttl);
            r->ob_explicit |= POLICY_OB_TTL;
        }
    }
    if (load_get_bool(L, v, "single_use", where, field, &r->ob.single_use))
        r->ob_explicit |= POLICY_OB_SINGLE_USE;
    if (load_parse_binding(L, v, "binding", where, field, &r->ob.binding))
        r->ob_explicit |= POLICY_OB_BINDING;
    json_t *rl = json_object_get(v, "rate_limits");
    if (rl != NULL) {
        if (!json_is_object(rl) || json_object_size(rl) == 0) {
            load_fail(L, where, "obligations.rate_limits",
                      "must be an object with \"per_agent\" and/or \"per_action\"");
        } else {
            load_check_keys(L, rl, where, "obligations.rate_limits", rkeys);
            json_t *x;
            if ((x = json_object_get(rl, "per_agent")) != NULL) {
                load_parse_rate(L, x, where, "obligations.rate_limits.per_agent", &r->ob.per_agent);
                r->ob_explicit |= POLICY_OB_PER_AGENT;
            }
            if ((x = json_object_get(rl, "per_action")) != NULL) {
                load_parse_rate(L, x, where, "obligations.rate_limits.per_action",
                                &r->ob.per_action);
                r->ob_explicit |= POLICY_OB_PER_ACTION;
            }
        }
    }
    json_t *ap = json_object_get(v, "approval_required");
    if (ap != NULL) {
        const char *f = "obligations.approval_required";
        if (!json_is_object(ap)) {
            load_fail(L, where, f, "must be an object {\"group\", \"approvers\"}");
            return;
        }
        load_check_keys(L, ap, where, f, akeys);
        const char *g = load_get_str(L, ap, "group", where, f, POLICY_MAX_ID, 1);
        char q[QCAP];
        if (g != NULL && !load_valid_id(g, strlen(g))) {
            load_fail(L, where, "obligations.approval_required.group",
                      "%s: an approver group is 1 to %d of A-Z a-z 0-9 . _ -", load_quote(q, g),
                      POLICY_MAX_ID);
            g = NULL;
        }
        uint32_t n = 0;
        if (load_get_u32(L, ap, "approvers", where, f, 1, POLICY_MAX_APPROVERS, 1, &n) &&
            g != NULL) {
            r->ob.approval_group = load_copy(L, g);
            r->ob.approvers = n;
            r->ob_explicit |= POLICY_OB_APPROVAL;
        }
        uint32_t wait = 0;
        if (json_object_get(ap, "expires_in") != NULL &&
            load_get_u32(L, ap, "expires_in", where, f, POLICY_APPROVAL_TTL_MIN,
                         POLICY_APPROVAL_TTL_MAX, 1, &wait))
            r->ob.approval_ttl = wait;
    }
}

static void parse_rule(struct ld *L, json_t *o, size_t i, struct policy_rule *r)
{
    static const char *const keys[] = {"id",          "description", "effect",    "agents",
                                       "actions",     "audiences",   "resources", "conditions",
                                       "obligations", NULL};
    char where[WCAP], q[QCAP];
    snprintf(where, sizeof(where), "rules[%zu]", i);
    r->doc_index = (uint32_t)i;
    if (!json_is_object(o)) {
        load_fail(L, where, NULL, "must be an object");
        return;
    }
    json_t *id = json_object_get(o, "id");
    if (!json_is_string(id) || !load_valid_id(json_string_value(id), json_string_length(id))) {
        load_fail(L, where, "id", "%s: a rule needs an id of 1 to %d of A-Z a-z 0-9 . _ -",
                  json_is_string(id) ? load_quote(q, json_string_value(id)) : "missing",
                  POLICY_MAX_ID);
    } else {
        r->id = load_copy(L, json_string_value(id));
        snprintf(where, sizeof(where), "rule %s", load_quote(q, r->id));
    }
    load_check_keys(L, o, where, NULL, keys);
    r->description = load_copy(L, load_get_str(L, o, "description", where, NULL, 1024, 0));
    const char *eff = load_get_str(L, o, "effect", where, NULL, 16, 1);
    if (eff != NULL && strcmp(eff, "allow") == 0)
        r->effect = POLICY_ALLOW;
    else if (eff != NULL && strcmp(eff, "deny") == 0)
        r->effect = POLICY_DENY;
    else if (eff != NULL)
        load_fail(L, where, "effect", "must be \"allow\" or \"deny\"");
    json_t *v;
    if ((v = load_get(L, o, "agents", where, NULL, 1)) != NULL)
        load_parse_agentset(L, v, where, "agents", &r->agents);
    if ((v = load_get(L, o, "actions", where, NULL, 1)) != NULL)
        parse_actions(L, v, where, r);
    if ((v = load_get(L, o, "audiences", where, NULL, 1)) != NULL)
        load_parse_patterns(L, v, where, "audiences", &r->audiences, &r->n_audiences);
    if ((v = load_get(L, o, "resources", where, NULL, 1)) != NULL)
        load_parse_patterns(L, v, where, "resources", &r->resources, &r->n_resources);
    load_parse_conditions(L, json_object_get(o, "conditions"), where, &r->cond);
    json_t *ob = json_object_get(o, "obligations");
    if (r->effect == POLICY_DENY && ob != NULL)
        load_fail(L, where, "obligations", "a deny rule has no obligations");
    else if (r->effect == POLICY_ALLOW)
        parse_obligations(L, ob, where, r);
}

int load_cmp_rule(const void *a, const void *b)
{
    const struct policy_rule *x = a, *y = b;
    if (x->effect != y->effect)
        return x->effect == POLICY_DENY ? -1 : 1;
    return strcmp(x->id, y->id);
}

void load_parse_rules(struct ld *L, json_t *v)
{
    policy *p = L->p;
    if (!json_is_array(v)) {
        load_fail(L, "rules", NULL, "must be a list of rules");
        return;
    }
    size_t n = json_array_size(v);
    if (n > POLICY_MAX_RULES) {
        load_fail(L, "rules", NULL, "has %zu rules; at most %d are allowed", n, POLICY_MAX_RULES);
        return;
    }
    p->rules = ztb_arena_calloc(L->a, n ? n : 1, sizeof(struct policy_rule));
    if (p->rules == NULL || policy_strmap_init(&p->rule_map, L->a, (uint32_t)n) != ZTB_OK)
        return;
    for (size_t i = 0; i < n; i++)
        parse_rule(L, json_array_get(v, i), i, &p->rules[i]);
    /* unique ids */
    for (size_t i = 0; i < n; i++) {
        struct policy_rule *r = &p->rules[i];
        uint32_t other;
        if (r->id == NULL)
            continue;
        if (policy_strmap_put(&p->rule_map, r->id, strlen(r->id), (uint32_t)i, &other) ==
            ZTB_ERR_EXISTS) {
            char where[WCAP], q[QCAP];
            snprintf(where, sizeof(where), "rule %s", load_quote(q, r->id));
            load_fail(L, where, "id", "used by rules[%u] and rules[%zu]; ids must be unique", other,
                      i);
        }
    }
    p->n_rules = (uint32_t)n;
}
