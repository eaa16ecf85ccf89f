/*
 * load_settings.c - the document's "settings" section (TTLs, rate
 * limits, binding) and the trust domain's syntax.
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

/* ---- top level and settings ------------------------------------------- */

void load_parse_rate(struct ld *L, json_t *v, const char *where, const char *field,
                     policy_rate *out)
{
    static const char *const keys[] = {"rate", "burst", "period", NULL};
    if (!json_is_object(v)) {
        load_fail(L, where, field, "must be an object {\"rate\", \"burst\", \"period\"}");
        return;
    }
    load_check_keys(L, v, where, field, keys);
    load_get_u32(L, v, "rate", where, field, 1, 1000000, 1, &out->rate);
    load_get_u32(L, v, "burst", where, field, 1, 1000000, 1, &out->burst);
    load_get_u32(L, v, "period", where, field, 1, 86400, 1, &out->period);
}

int load_parse_binding(struct ld *L, json_t *obj, const char *key, const char *where,
                       const char *prefix, uint8_t *out)
{
    static const char *const names[] = {"none", "any", "dpop", "mtls", NULL};
    json_t *v = json_object_get(obj, key);
    if (v == NULL)
        return 0;
    char f[WCAP];
    load_path(f, sizeof(f), prefix, key);
    for (uint8_t i = 0; json_is_string(v) && names[i] != NULL; i++)
        if (strcmp(json_string_value(v), names[i]) == 0) {
            *out = i;
            return 1;
        }
    load_fail(L, where, f, "must be \"none\", \"any\", \"dpop\" or \"mtls\"");
    return 0;
}

void load_parse_settings(struct ld *L, json_t *s)
{
    static const char *const keys[] = {"max_ttl", "default_ttl", "default_binding", "rate_limits",
                                       NULL};
    static const char *const rkeys[] = {"per_agent", "per_action", NULL};
    policy *p = L->p;
    const char *where = "settings";
    /* fallbacks that keep later checks meaningful when a setting is wrong */
    p->max_ttl = POLICY_MAX_TTL_LIMIT;
    p->default_ttl = 60;
    p->default_per_agent = (policy_rate){1, 1, 1};
    p->default_per_action = (policy_rate){1, 1, 1};
    if (!json_is_object(s)) {
        load_fail(L, where, NULL, "must be an object");
        return;
    }
    load_check_keys(L, s, where, NULL, keys);
    load_get_u32(L, s, "max_ttl", where, NULL, 1, POLICY_MAX_TTL_LIMIT, 1, &p->max_ttl);
    if (load_get_u32(L, s, "default_ttl", where, NULL, 1, POLICY_MAX_TTL_LIMIT, 1,
                     &p->default_ttl) &&
        p->default_ttl > p->max_ttl)
        load_fail(L, where, "default_ttl", "%u exceeds max_ttl %u", p->default_ttl, p->max_ttl);
    load_parse_binding(L, s, "default_binding", where, NULL, &p->default_binding);
    json_t *r = load_get(L, s, "rate_limits", where, NULL, 1);
    if (r != NULL) {
        if (!json_is_object(r)) {
            load_fail(L, where, "rate_limits", "must be an object {\"per_agent\", \"per_action\"}");
            return;
        }
        load_check_keys(L, r, where, "rate_limits", rkeys);
        json_t *v;
        if ((v = load_get(L, r, "per_agent", where, "rate_limits", 1)) != NULL)
            load_parse_rate(L, v, where, "rate_limits.per_agent", &p->default_per_agent);
        if ((v = load_get(L, r, "per_action", where, "rate_limits", 1)) != NULL)
            load_parse_rate(L, v, where, "rate_limits.per_action", &p->default_per_action);
    }
}

/* SPIFFE trust domain name: lowercase letters, digits, '.', '-', '_'. */
int load_valid_trust_domain(const char *s, size_t n)
{
    if (n == 0 || n > 255)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_'))
            return 0;
    }
    return 1;
}
