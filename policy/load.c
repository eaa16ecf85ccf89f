/*
 * load.c - parse and validate a policy document into the model (see load.h).
 *
 * The document is parsed by jansson with duplicate keys refused, then walked
 * field by field. Every object's keys are checked against the fields it may
 * have (an unknown field is an error, with a suggestion when it looks like a
 * typo), every value's type and range is checked, and every pattern is
 * compiled. The walk goes on after a problem so one run reports as many as
 * possible. Strings are copied into the policy's arena; the JSON tree is
 * released before returning.
 *
 * What this file must never do: accept a document with any problem, or let
 * the order of the document change the result (rules are re-sorted into
 * canonical order here; groups and responses are sorted too).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "common/buf.h"
#include "common/guard.h"
#include "common/utf8.h"
#include "policy/compile.h"
#include "policy/load.h"
#include "policy/model.h"
#include "policy/overlap.h"
#include "policy/policy.h"

#define QCAP 96 /* room for a quoted, escaped, cut value */
#define WCAP 160

struct ld {
    policy *p;
    ztb_arena *a;
    policy_diag *d;
    int errors;
};

__attribute__((format(printf, 4, 5))) static void fail(struct ld *L, const char *where,
                                                       const char *field, const char *fmt, ...)
{
    char text[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    policy_diag_add(L->d, 0, 0, where, field, "%s", text);
    L->errors++;
}

static const char *quote(char *buf, const char *s)
{
    return policy_diag_quote(buf, QCAP, s, s ? strlen(s) : 0);
}

/* "prefix.key" (or "key") into buf. */
static const char *path(char *buf, size_t cap, const char *prefix, const char *key)
{
    ztb_buf b; /* fixed storage: a long path is cut, never overflows */
    ztb_buf_init_fixed(&b, buf, cap);
    if (prefix != NULL && prefix[0] != '\0') {
        ztb_buf_append_str(&b, prefix);
        ztb_buf_append_byte(&b, '.');
    }
    ztb_buf_append_str(&b, key);
    return buf;
}

/* Levenshtein distance of two short strings, capped at 9. */
static unsigned distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 64 || lb > 64)
        return 9;
    unsigned row[65];
    for (size_t j = 0; j <= lb; j++)
        row[j] = (unsigned)j;
    for (size_t i = 1; i <= la; i++) {
        unsigned diag = row[0];
        row[0] = (unsigned)i;
        for (size_t j = 1; j <= lb; j++) {
            unsigned up = row[j];
            unsigned best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb] > 9 ? 9 : row[lb];
}

/* The closest of the NULL-terminated list to s, if it is within 2 edits. */
static const char *suggest(const char *s, const char *const *list)
{
    const char *best = NULL;
    unsigned bd = 3;
    for (size_t i = 0; list[i] != NULL; i++) {
        unsigned d = distance(s, list[i]);
        if (d < bd) {
            bd = d;
            best = list[i];
        }
    }
    return best;
}

static int in_list(const char *s, const char *const *list)
{
    for (size_t i = 0; list[i] != NULL; i++)
        if (strcmp(s, list[i]) == 0)
            return 1;
    return 0;
}

/* Refuse every key of obj not in allowed. */
static void check_keys(struct ld *L, json_t *obj, const char *where, const char *prefix,
                       const char *const *allowed)
{
    for (void *it = json_object_iter(obj); it != NULL; it = json_object_iter_next(obj, it)) {
        const char *k = json_object_iter_key(it);
        if (in_list(k, allowed))
            continue;
        char q[QCAP];
        const char *s = suggest(k, allowed);
        if (s != NULL)
            fail(L, where, prefix, "unknown field %s (did you mean \"%s\"?)", quote(q, k), s);
        else
            fail(L, where, prefix, "unknown field %s", quote(q, k));
    }
}

/* obj[key], reporting it as missing when required. */
static json_t *get(struct ld *L, json_t *obj, const char *key, const char *where,
                   const char *prefix, int required)
{
    json_t *v = json_object_get(obj, key);
    if (v == NULL && required) {
        char f[WCAP];
        fail(L, where, path(f, sizeof(f), prefix, key), "missing (required)");
    }
    return v;
}

/* An integer in [lo, hi]; 1 if *out was set. */
static int get_u32(struct ld *L, json_t *obj, const char *key, const char *where,
                   const char *prefix, uint32_t lo, uint32_t hi, int required, uint32_t *out)
{
    json_t *v = get(L, obj, key, where, prefix, required);
    if (v == NULL)
        return 0;
    char f[WCAP];
    path(f, sizeof(f), prefix, key);
    if (!json_is_integer(v) || json_integer_value(v) < (json_int_t)lo ||
        json_integer_value(v) > (json_int_t)hi) {
        fail(L, where, f, "must be an integer from %u to %u", lo, hi);
        return 0;
    }
    *out = (uint32_t)json_integer_value(v);
    return 1;
}

static int get_bool(struct ld *L, json_t *obj, const char *key, const char *where,
                    const char *prefix, uint8_t *out)
{
    json_t *v = get(L, obj, key, where, prefix, 0);
    if (v == NULL)
        return 0;
    if (!json_is_boolean(v)) {
        char f[WCAP];
        fail(L, where, path(f, sizeof(f), prefix, key), "must be true or false");
        return 0;
    }
    *out = json_is_true(v) ? 1 : 0;
    return 1;
}

/* A non-empty printable string of at most maxlen bytes, as its JSON value (not copied). */
static const char *get_str(struct ld *L, json_t *obj, const char *key, const char *where,
                           const char *prefix, size_t maxlen, int required)
{
    json_t *v = get(L, obj, key, where, prefix, required);
    if (v == NULL)
        return NULL;
    char f[WCAP];
    path(f, sizeof(f), prefix, key);
    if (!json_is_string(v)) {
        fail(L, where, f, "must be a string");
        return NULL;
    }
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    if (n == 0 || n > maxlen || !ztb_utf8_printable(s, n)) {
        fail(L, where, f, "must be 1 to %zu characters without control characters", maxlen);
        return NULL;
    }
    return s;
}

static char *copy(struct ld *L, const char *s)
{
    return s ? ztb_arena_strdup(L->a, s) : NULL;
}

/* Characters of ids (rules, groups, responses, approver groups). */
static int valid_id(const char *s, size_t n)
{
    if (n == 0 || n > POLICY_MAX_ID)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.'))
            return 0;
    }
    return 1;
}

/* Agent names (SPIFFE path segment characters), service and verb names; '*' if star. */
static int valid_name(const char *s, size_t n, size_t max, int star)
{
    if (n == 0 || n > max)
        return 0;
    if ((n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.' || (star && c == '*')))
            return 0;
    }
    return 1;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/* The array at v with 1..max entries, or NULL after reporting. */
static json_t *want_list(struct ld *L, json_t *v, const char *where, const char *field, size_t max)
{
    if (!json_is_array(v) || json_array_size(v) == 0) {
        fail(L, where, field, "must be a non-empty list");
        return NULL;
    }
    if (json_array_size(v) > max) {
        fail(L, where, field, "has %zu entries; at most %zu are allowed", json_array_size(v), max);
        return NULL;
    }
    return v;
}

/* 1 if s equals one of seen[0..n). */
static int seen_before(const char *const *seen, size_t n, const char *s)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(seen[i], s) == 0)
            return 1;
    return 0;
}

/* ---- agents ------------------------------------------------------------ */

enum aref_kind { AREF_ANY, AREF_NAME, AREF_GLOB, AREF_GROUP };

struct aref {
    enum aref_kind kind;
    const char *norm; /* "*", "name", "pat*", "group:x" (arena) */
    policy_glob glob;
    uint32_t group;
};

/* Parse one agent entry: "*", a name, a name pattern, a SPIFFE ID (pattern), "group:NAME". */
static int agent_ref(struct ld *L, const char *s, const char *where, const char *field,
                     int allow_group, struct aref *r)
{
    policy *p = L->p;
    size_t n = strlen(s);
    char q[QCAP];
    memset(r, 0, sizeof(*r));
    if (strncmp(s, "group:", 6) == 0) {
        if (!allow_group) {
            fail(L, where, field, "%s: a group cannot contain a group", quote(q, s));
            return 0;
        }
        if (!policy_strmap_get(&p->group_map, s + 6, n - 6, &r->group)) {
            fail(L, where, field, "%s: no such group", quote(q, s));
            return 0;
        }
        r->kind = AREF_GROUP;
        r->norm = copy(L, s);
        return r->norm != NULL;
    }
    const char *name = s;
    size_t nn = n;
    if (strncmp(s, "spiffe://", 9) == 0) {
        if (p->spiffe_prefix == NULL)
            return 0; /* trust_domain already reported */
        if (n <= p->spiffe_prefix_len || memcmp(s, p->spiffe_prefix, p->spiffe_prefix_len) != 0) {
            fail(L, where, field, "%s: an agent's SPIFFE ID is %sNAME (this policy's trust domain)",
                 quote(q, s), p->spiffe_prefix);
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
    if (!valid_name(name, nn, POLICY_MAX_NAME, 1)) {
        fail(L, where, field,
             "%s: an agent name is 1 to %d of A-Z a-z 0-9 . _ - (and * in a pattern)", quote(q, s),
             POLICY_MAX_NAME);
        return 0;
    }
    r->norm = ztb_arena_memdup(L->a, name, nn);
    if (r->norm == NULL)
        return 0;
    if (memchr(name, '*', nn) != NULL) {
        const char *why = NULL;
        ztb_err e = policy_glob_compile(L->a, name, nn, POLICY_GLOB_NO_DSTAR, &r->glob, &why);
        if (e != ZTB_OK) {
            fail(L, where, field, "%s: %s", quote(q, s), why ? why : ztb_strerror(e));
            return 0;
        }
        r->kind = AREF_GLOB;
    } else {
        r->kind = AREF_NAME;
    }
    return 1;
}

/* A list of agent entries into out. */
static void parse_agentset(struct ld *L, json_t *v, const char *where, const char *field,
                           struct policy_agentset *out)
{
    memset(out, 0, sizeof(*out));
    if (want_list(L, v, where, field, POLICY_MAX_LIST) == NULL)
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
            fail(L, where, field, "entry %zu must be a string", i);
            continue;
        }
        struct aref r;
        if (!agent_ref(L, json_string_value(e), where, field, 1, &r))
            continue;
        char q[QCAP];
        if (seen_before(text, nt, r.norm)) {
            fail(L, where, field, "%s is listed twice", quote(q, r.norm));
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
        fail(L, where, field, "\"*\" already names every agent; list nothing else beside it");
    qsort(text, nt, sizeof(char *), cmp_str);
    qsort(names, out->n_names, sizeof(char *), cmp_str);
    qsort(groups, out->n_groups, sizeof(uint32_t), cmp_u32);
    out->text = text;
    out->n_text = (uint32_t)nt;
    out->name_text = names;
    out->groups = groups;
    out->globs = globs;
}

/* ---- top level and settings ------------------------------------------- */

static void parse_rate(struct ld *L, json_t *v, const char *where, const char *field,
                       policy_rate *out)
{
    static const char *const keys[] = {"rate", "burst", "period", NULL};
    if (!json_is_object(v)) {
        fail(L, where, field, "must be an object {\"rate\", \"burst\", \"period\"}");
        return;
    }
    check_keys(L, v, where, field, keys);
    get_u32(L, v, "rate", where, field, 1, 1000000, 1, &out->rate);
    get_u32(L, v, "burst", where, field, 1, 1000000, 1, &out->burst);
    get_u32(L, v, "period", where, field, 1, 86400, 1, &out->period);
}

static int parse_binding(struct ld *L, json_t *obj, const char *key, const char *where,
                         const char *prefix, uint8_t *out)
{
    static const char *const names[] = {"none", "any", "dpop", "mtls", NULL};
    json_t *v = json_object_get(obj, key);
    if (v == NULL)
        return 0;
    char f[WCAP];
    path(f, sizeof(f), prefix, key);
    for (uint8_t i = 0; json_is_string(v) && names[i] != NULL; i++)
        if (strcmp(json_string_value(v), names[i]) == 0) {
            *out = i;
            return 1;
        }
    fail(L, where, f, "must be \"none\", \"any\", \"dpop\" or \"mtls\"");
    return 0;
}

static void parse_settings(struct ld *L, json_t *s)
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
        fail(L, where, NULL, "must be an object");
        return;
    }
    check_keys(L, s, where, NULL, keys);
    get_u32(L, s, "max_ttl", where, NULL, 1, POLICY_MAX_TTL_LIMIT, 1, &p->max_ttl);
    if (get_u32(L, s, "default_ttl", where, NULL, 1, POLICY_MAX_TTL_LIMIT, 1, &p->default_ttl) &&
        p->default_ttl > p->max_ttl)
        fail(L, where, "default_ttl", "%u exceeds max_ttl %u", p->default_ttl, p->max_ttl);
    parse_binding(L, s, "default_binding", where, NULL, &p->default_binding);
    json_t *r = get(L, s, "rate_limits", where, NULL, 1);
    if (r != NULL) {
        if (!json_is_object(r)) {
            fail(L, where, "rate_limits", "must be an object {\"per_agent\", \"per_action\"}");
            return;
        }
        check_keys(L, r, where, "rate_limits", rkeys);
        json_t *v;
        if ((v = get(L, r, "per_agent", where, "rate_limits", 1)) != NULL)
            parse_rate(L, v, where, "rate_limits.per_agent", &p->default_per_agent);
        if ((v = get(L, r, "per_action", where, "rate_limits", 1)) != NULL)
            parse_rate(L, v, where, "rate_limits.per_action", &p->default_per_action);
    }
}

/* SPIFFE trust domain name: lowercase letters, digits, '.', '-', '_'. */
static int valid_trust_domain(const char *s, size_t n)
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

/* ---- groups ------------------------------------------------------------ */

static void parse_groups(struct ld *L, json_t *g)
{
    static const char *const keys[] = {"members", "description", NULL};
    policy *p = L->p;
    if (!json_is_object(g)) {
        fail(L, "groups", NULL, "must be an object of group name -> {\"members\": [...]}");
        return;
    }
    size_t n = json_object_size(g);
    if (n > POLICY_MAX_GROUPS) {
        fail(L, "groups", NULL, "has %zu groups; at most %d are allowed", n, POLICY_MAX_GROUPS);
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
        if (!valid_id(key, strlen(key))) {
            fail(L, "groups", NULL, "group name %s: use 1 to %d of A-Z a-z 0-9 . _ -",
                 quote(q, key), POLICY_MAX_ID);
            continue;
        }
        names[k++] = copy(L, key);
    }
    if (ztb_arena_error(L->a) != ZTB_OK)
        return;
    qsort(names, k, sizeof(char *), cmp_str);
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
        snprintf(where, sizeof(where), "group %s", quote(q, grp->name));
        json_t *o = json_object_get(g, grp->name);
        if (!json_is_object(o)) {
            fail(L, where, NULL, "must be an object {\"members\": [...]}");
            continue;
        }
        check_keys(L, o, where, NULL, keys);
        grp->description = copy(L, get_str(L, o, "description", where, NULL, 1024, 0));
        json_t *m = get(L, o, "members", where, NULL, 1);
        if (m == NULL || want_list(L, m, where, "members", POLICY_MAX_MEMBERS) == NULL)
            continue;
        size_t nm = json_array_size(m);
        total += nm;
        if (total > POLICY_MAX_MEMBERS) {
            fail(L, where, "members", "groups hold more than %d members in all",
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
                fail(L, where, "members", "entry %zu must be a string", j);
                continue;
            }
            if (!agent_ref(L, json_string_value(e), where, "members", 0, &r))
                continue;
            if (r.kind == AREF_GLOB || r.kind == AREF_ANY) {
                if (r.kind == AREF_ANY)
                    policy_glob_compile(L->a, "*", 1, POLICY_GLOB_NO_DSTAR, &r.glob, NULL);
                globs[grp->n_globs++] = r.glob;
            }
            members[nmem++] = r.norm;
        }
        /* duplicates: sort, then compare neighbours (groups can be large) */
        qsort(members, nmem, sizeof(char *), cmp_str);
        for (size_t j = 1; j < nmem; j++)
            if (strcmp(members[j - 1], members[j]) == 0)
                fail(L, where, "members", "%s is listed twice", quote(q, members[j]));
        grp->members = members;
        grp->n_members = (uint32_t)nmem;
        grp->globs = globs;
    }
}

/* ---- rules ------------------------------------------------------------- */

static void parse_actions(struct ld *L, json_t *v, const char *where, struct policy_rule *r)
{
    if (want_list(L, v, where, "actions", POLICY_MAX_LIST) == NULL)
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
            fail(L, where, "actions", "entry %zu must be a string", i);
            continue;
        }
        const char *s = json_string_value(e);
        size_t len = json_string_length(e);
        const char *colon = memchr(s, ':', len);
        const char *svc = s, *verb = s;
        size_t sl = len, vl = len;
        if (!(len == 1 && s[0] == '*')) {
            if (colon == NULL || memchr(colon + 1, ':', len - (size_t)(colon - s) - 1) != NULL) {
                fail(L, where, "actions", "%s: an action is service:verb (or \"*\" for all)",
                     quote(q, s));
                continue;
            }
            sl = (size_t)(colon - s);
            verb = colon + 1;
            vl = len - sl - 1;
        }
        if (!valid_name(svc, sl, POLICY_MAX_ID, 1) || !valid_name(verb, vl, POLICY_MAX_ID, 1)) {
            fail(L, where, "actions",
                 "%s: service and verb are 1 to %d of A-Z a-z 0-9 . _ - (and * in a pattern)",
                 quote(q, s), POLICY_MAX_ID);
            continue;
        }
        const char *why = NULL;
        if (policy_glob_compile(L->a, svc, sl, POLICY_GLOB_NO_DSTAR, &acts[k].service, &why) !=
                ZTB_OK ||
            policy_glob_compile(L->a, verb, vl, POLICY_GLOB_NO_DSTAR, &acts[k].verb, &why) !=
                ZTB_OK) {
            fail(L, where, "actions", "%s: %s", quote(q, s), why ? why : "invalid pattern");
            continue;
        }
        acts[k].text = ztb_arena_memdup(L->a, s, len);
        if (policy_glob_is_literal(&acts[k].service) && policy_glob_is_literal(&acts[k].verb))
            acts[k].literal_len = (uint32_t)len;
        const char *canon =
            ztb_arena_printf(L->a, "%s:%s", acts[k].service.text, acts[k].verb.text);
        if (acts[k].text == NULL || canon == NULL)
            return;
        if (seen_before(seen, k, canon)) {
            fail(L, where, "actions", "%s is listed twice", quote(q, s));
            continue;
        }
        seen[k++] = canon;
    }
    r->actions = acts;
    r->n_actions = k;
}

static void parse_patterns(struct ld *L, json_t *v, const char *where, const char *field,
                           const policy_glob **out, uint32_t *nout)
{
    *out = NULL;
    *nout = 0;
    if (want_list(L, v, where, field, POLICY_MAX_LIST) == NULL)
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
            fail(L, where, field, "entry %zu must be a string", i);
            continue;
        }
        const char *why = NULL;
        const char *s = json_string_value(e);
        if (policy_glob_compile(L->a, s, json_string_length(e), 0, &g[k], &why) != ZTB_OK) {
            fail(L, where, field, "%s: %s", quote(q, s), why ? why : "invalid pattern");
            continue;
        }
        int twice = 0;
        for (uint32_t j = 0; j < k && !twice; j++)
            twice = strcmp(g[j].text, g[k].text) == 0;
        if (twice) {
            fail(L, where, field, "%s is listed twice", quote(q, s));
            continue;
        }
        k++;
    }
    *out = g;
    *nout = k;
}

/* Print a limit bound: integers as integers, others with full precision. */
static void fmt_num(char *buf, size_t cap, double v)
{
    if (v == (double)(long long)v) {
        snprintf(buf, cap, "%lld", (long long)v);
        return;
    }
    /* the shortest form that reads back as the same double */
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, cap, "%.*g", prec, v);
        if (strtod(buf, NULL) == v)
            return;
    }
}

static int cmp_window(const void *a, const void *b)
{
    const struct policy_window *x = a, *y = b;
    if (x->days != y->days)
        return x->days < y->days ? -1 : 1;
    if (x->start != y->start)
        return x->start < y->start ? -1 : 1;
    if (x->end != y->end)
        return x->end < y->end ? -1 : 1;
    return (x->offset > y->offset) - (x->offset < y->offset);
}

static void fmt_window(ztb_buf *b, const struct policy_window *w)
{
    static const char *const dn[7] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};
    if (w->days == 0x7f) {
        ztb_buf_append_str(b, "every day");
    } else {
        int first = 1;
        for (int d = 1; d <= 7; d++) { /* monday first, as people write weeks */
            if (w->days >> (d % 7) & 1) {
                ztb_buf_printf(b, "%s%s", first ? "" : ",", dn[d % 7]);
                first = 0;
            }
        }
    }
    int off = w->offset < 0 ? -w->offset : w->offset;
    ztb_buf_printf(b, " %02u:%02u-%02u:%02u %c%02d:%02d", w->start / 60, w->start % 60, w->end / 60,
                   w->end % 60, w->offset < 0 ? '-' : '+', off / 60, off % 60);
}

static void parse_windows(struct ld *L, json_t *v, const char *where, struct policy_conditions *c)
{
    static const char *const keys[] = {"days", "start", "end", "utc_offset", NULL};
    const char *field = "conditions.time_windows";
    if (want_list(L, v, where, field, 16) == NULL)
        return;
    size_t n = json_array_size(v);
    struct policy_window *w = ztb_arena_calloc(L->a, n, sizeof(*w));
    if (w == NULL)
        return;
    uint32_t k = 0;
    for (size_t i = 0; i < n; i++) {
        json_t *o = json_array_get(v, i);
        char f[WCAP];
        snprintf(f, sizeof(f), "%s[%zu]", field, i);
        if (!json_is_object(o)) {
            fail(L, where, f, "must be an object {\"days\", \"start\", \"end\", \"utc_offset\"}");
            continue;
        }
        check_keys(L, o, where, f, keys);
        int ok = 1;
        w[k].days = 0x7f;
        json_t *days = json_object_get(o, "days");
        if (days != NULL) {
            char fd[WCAP];
            path(fd, sizeof(fd), f, "days");
            w[k].days = 0;
            if (want_list(L, days, where, fd, 7) == NULL) {
                ok = 0;
            } else {
                for (size_t j = 0; j < json_array_size(days); j++) {
                    unsigned bit;
                    json_t *d = json_array_get(days, j);
                    if (policy_parse_day(json_string_value(d), &bit) != ZTB_OK) {
                        fail(L, where, fd, "days are \"mon\", \"tue\", ... \"sun\"");
                        ok = 0;
                    } else if (w[k].days >> bit & 1) {
                        fail(L, where, fd, "\"%s\" is listed twice", json_string_value(d));
                        ok = 0;
                    } else {
                        w[k].days |= (uint8_t)(1u << bit);
                    }
                }
            }
        }
        const char *start = get_str(L, o, "start", where, f, 5, 1);
        const char *end = get_str(L, o, "end", where, f, 5, 1);
        const char *off = get_str(L, o, "utc_offset", where, f, 6, 0);
        char fs[WCAP];
        if (start == NULL || policy_parse_hhmm(start, &w[k].start) != ZTB_OK ||
            w[k].start >= 1440) {
            if (start != NULL)
                fail(L, where, path(fs, sizeof(fs), f, "start"),
                     "must be \"HH:MM\", 00:00 to 23:59");
            ok = 0;
        }
        if (end == NULL || policy_parse_hhmm(end, &w[k].end) != ZTB_OK || w[k].end == 0) {
            if (end != NULL)
                fail(L, where, path(fs, sizeof(fs), f, "end"), "must be \"HH:MM\", 00:01 to 24:00");
            ok = 0;
        }
        if (off != NULL && policy_parse_utc_offset(off, &w[k].offset) != ZTB_OK) {
            fail(L, where, path(fs, sizeof(fs), f, "utc_offset"),
                 "must be \"+HH:MM\" or \"-HH:MM\" (at most 14:00)");
            ok = 0;
        }
        if (ok && w[k].start == w[k].end) {
            fail(L, where, f, "start equals end: the window is empty");
            ok = 0;
        }
        if (ok)
            k++;
    }
    qsort(w, k, sizeof(*w), cmp_window);
    for (uint32_t i = 1; i < k; i++)
        if (cmp_window(&w[i - 1], &w[i]) == 0)
            fail(L, where, field, "the same window is listed twice");
    c->windows = w;
    c->n_windows = k;
}

static void parse_cidrs(struct ld *L, json_t *v, const char *where, struct policy_conditions *c,
                        const char ***texts)
{
    const char *field = "conditions.source_ip";
    if (want_list(L, v, where, field, POLICY_MAX_LIST) == NULL)
        return;
    size_t n = json_array_size(v);
    struct policy_cidr *cidrs = ztb_arena_calloc(L->a, n, sizeof(*cidrs));
    const char **t = ztb_arena_calloc(L->a, n, sizeof(char *));
    if (cidrs == NULL || t == NULL)
        return;
    uint32_t k = 0;
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_array_get(v, i);
        char q[QCAP];
        if (!json_is_string(e) || policy_parse_cidr(json_string_value(e), &cidrs[k]) != ZTB_OK) {
            fail(L, where, field,
                 "%s: must be an address or CIDR such as \"10.0.0.0/8\" or \"fd00::/8\" "
                 "(host bits zero)",
                 json_is_string(e) ? quote(q, json_string_value(e)) : "entry");
            continue;
        }
        t[k] = copy(L, json_string_value(e));
        if (seen_before(t, k, t[k])) {
            fail(L, where, field, "%s is listed twice", quote(q, t[k]));
            continue;
        }
        k++;
    }
    c->cidrs = cidrs;
    c->n_cidrs = k;
    *texts = t;
}

/* "a.b.c" -> segments; 0 if malformed. */
static int split_path(struct ld *L, const char *s, struct policy_limit *l)
{
    size_t n = strlen(s);
    if (n == 0 || n > 128)
        return 0;
    const char **seg = ztb_arena_calloc(L->a, POLICY_PATH_MAX_SEGMENTS, sizeof(char *));
    if (seg == NULL)
        return 0;
    uint32_t k = 0;
    const char *p = s;
    for (;;) {
        const char *dot = strchr(p, '.');
        size_t len = dot ? (size_t)(dot - p) : strlen(p);
        if (len == 0 || k == POLICY_PATH_MAX_SEGMENTS)
            return 0;
        for (size_t i = 0; i < len; i++) {
            char c = p[i];
            if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '_' || c == '-'))
                return 0;
        }
        seg[k++] = ztb_arena_memdup(L->a, p, len);
        if (dot == NULL)
            break;
        p = dot + 1;
    }
    l->seg = seg;
    l->n_seg = k;
    return 1;
}

/* ceil / floor of |v| <= 2^53 as integers, without libm. */
static int64_t ceil_i64(double v)
{
    int64_t t = (int64_t)v;
    return (double)t < v ? t + 1 : t;
}

static int64_t floor_i64(double v)
{
    int64_t t = (int64_t)v;
    return (double)t > v ? t - 1 : t;
}

static int get_bound(struct ld *L, json_t *o, const char *key, const char *where, const char *f,
                     double *out)
{
    json_t *v = json_object_get(o, key);
    if (v == NULL)
        return 0;
    char fk[WCAP];
    path(fk, sizeof(fk), f, key);
    if (!json_is_number(v)) {
        fail(L, where, fk, "must be a number");
        return -1;
    }
    double d = json_number_value(v);
    if (!(d >= -POLICY_LIMIT_MAX && d <= POLICY_LIMIT_MAX)) {
        fail(L, where, fk, "must lie within +/-2^53");
        return -1;
    }
    *out = d;
    return 1;
}

static void parse_limits(struct ld *L, json_t *v, const char *where, struct policy_conditions *c,
                         const char ***canon_parts)
{
    static const char *const keys[] = {"path", "type", "min", "max", NULL};
    const char *field = "conditions.limits";
    if (want_list(L, v, where, field, 16) == NULL)
        return;
    size_t n = json_array_size(v);
    struct policy_limit *lim = ztb_arena_calloc(L->a, n, sizeof(*lim));
    const char **desc = ztb_arena_calloc(L->a, n, sizeof(char *));
    const char **canon = ztb_arena_calloc(L->a, n, sizeof(char *));
    if (lim == NULL || desc == NULL || canon == NULL)
        return;
    uint32_t k = 0;
    for (size_t i = 0; i < n; i++) {
        json_t *o = json_array_get(v, i);
        char f[WCAP];
        snprintf(f, sizeof(f), "%s[%zu]", field, i);
        if (!json_is_object(o)) {
            fail(L, where, f, "must be an object {\"path\", \"min\", \"max\", \"type\"}");
            continue;
        }
        check_keys(L, o, where, f, keys);
        struct policy_limit *l = &lim[k];
        const char *ps = get_str(L, o, "path", where, f, 128, 1);
        const char *type = get_str(L, o, "type", where, f, 64, 0);
        char fp[WCAP];
        if (ps != NULL && !split_path(L, ps, l)) {
            fail(L, where, path(fp, sizeof(fp), f, "path"),
                 "must be object keys joined by '.', e.g. \"amount\" or \"limits.amount\" "
                 "(A-Z a-z 0-9 _ -, at most %d keys)",
                 POLICY_PATH_MAX_SEGMENTS);
            ps = NULL;
        }
        int hmin = get_bound(L, o, "min", where, f, &l->min);
        int hmax = get_bound(L, o, "max", where, f, &l->max);
        if (ps == NULL || hmin < 0 || hmax < 0 || (type == NULL && json_object_get(o, "type")))
            continue;
        if (hmin == 0 && hmax == 0) {
            fail(L, where, f, "needs \"min\", \"max\" or both");
            continue;
        }
        if (hmin == 1 && hmax == 1 && l->min > l->max) {
            fail(L, where, f, "min is above max: no value can satisfy it");
            continue;
        }
        l->has_min = hmin == 1;
        l->has_max = hmax == 1;
        l->imin = l->has_min ? ceil_i64(l->min) : 0;
        l->imax = l->has_max ? floor_i64(l->max) : 0;
        l->type = copy(L, type);
        char a[40], b[40];
        fmt_num(a, sizeof(a), l->min);
        fmt_num(b, sizeof(b), l->max);
        char tsuffix[96] = "";
        if (type != NULL)
            snprintf(tsuffix, sizeof(tsuffix), " (type %s)", type);
        const char *expr;
        if (l->has_min && l->has_max)
            expr = ztb_arena_printf(L->a, "%s <= %s <= %s%s", a, ps, b, tsuffix);
        else if (l->has_max)
            expr = ztb_arena_printf(L->a, "%s <= %s%s", ps, b, tsuffix);
        else
            expr = ztb_arena_printf(L->a, "%s >= %s%s", ps, a, tsuffix);
        if (expr == NULL)
            return;
        if (seen_before(canon, k, expr)) {
            fail(L, where, f, "the same limit is listed twice");
            continue;
        }
        canon[k] = expr;
        desc[k] = ztb_arena_printf(L->a, "limits[%zu]: %s", i, expr);
        k++;
    }
    c->limits = lim;
    c->n_limits = k;
    c->desc_limits = desc;
    *canon_parts = canon;
}

/* Join n strings (sorted copy) with sep between, inside [ ], into b. */
static void join_sorted(struct ld *L, ztb_buf *b, const char *const *v, size_t n, const char *sep)
{
    const char **c = ztb_arena_calloc(L->a, n ? n : 1, sizeof(char *));
    if (c == NULL)
        return;
    if (n > 0) /* v may be NULL when the list failed to parse */
        memcpy(c, v, n * sizeof(char *));
    qsort(c, n, sizeof(char *), cmp_str);
    ztb_buf_append_byte(b, '[');
    for (size_t i = 0; i < n; i++)
        ztb_buf_printf(b, "%s%s", i ? sep : "", c[i]);
    ztb_buf_append_byte(b, ']');
}

static const char *buf_to_arena(struct ld *L, ztb_buf *b)
{
    const char *s = ztb_buf_error(b) == ZTB_OK ? ztb_arena_strdup(L->a, ztb_buf_cstr(b)) : NULL;
    ztb_buf_reset(b);
    return s;
}

static void parse_conditions(struct ld *L, json_t *v, const char *where,
                             struct policy_conditions *c)
{
    static const char *const keys[] = {"not_before", "not_after", "time_windows", "delegation",
                                       "act",        "source_ip", "limits",       NULL};
    const char *field = "conditions";
    memset(c, 0, sizeof(*c));
    c->canon = "";
    if (v == NULL)
        return;
    if (!json_is_object(v)) {
        fail(L, where, field, "must be an object");
        return;
    }
    if (json_object_size(v) == 0) {
        fail(L, where, field, "is empty (leave it out instead)");
        return;
    }
    check_keys(L, v, where, field, keys);
    c->any = 1;
    ztb_buf b;
    ztb_buf_init(&b, 1 << 20);
    char fk[WCAP];
    const char *nb = get_str(L, v, "not_before", where, field, 20, 0);
    if (nb != NULL) {
        if (policy_parse_time(nb, &c->not_before) != ZTB_OK)
            fail(L, where, path(fk, sizeof(fk), field, "not_before"),
                 "must be a UTC time \"YYYY-MM-DDTHH:MM:SSZ\"");
        else {
            c->has_not_before = 1;
            c->desc_not_before = ztb_arena_printf(L->a, "not_before %s", nb);
        }
    }
    const char *na = get_str(L, v, "not_after", where, field, 20, 0);
    if (na != NULL) {
        if (policy_parse_time(na, &c->not_after) != ZTB_OK)
            fail(L, where, path(fk, sizeof(fk), field, "not_after"),
                 "must be a UTC time \"YYYY-MM-DDTHH:MM:SSZ\"");
        else {
            c->has_not_after = 1;
            c->desc_not_after = ztb_arena_printf(L->a, "not_after %s", na);
        }
    }
    if (c->has_not_before && c->has_not_after && c->not_after < c->not_before)
        fail(L, where, field, "not_after is before not_before: the rule can never apply");
    json_t *w = json_object_get(v, "time_windows");
    if (w != NULL) {
        parse_windows(L, w, where, c);
        ztb_buf_append_str(&b, "time_windows [");
        for (uint32_t i = 0; i < c->n_windows; i++) {
            if (i)
                ztb_buf_append_str(&b, "; ");
            fmt_window(&b, &c->windows[i]);
        }
        ztb_buf_append_byte(&b, ']');
        c->desc_windows = buf_to_arena(L, &b);
    }
    const char *dl = get_str(L, v, "delegation", where, field, 16, 0);
    if (dl != NULL) {
        if (strcmp(dl, "required") == 0)
            c->delegation = POLICY_DELEGATION_REQUIRED;
        else if (strcmp(dl, "forbidden") == 0)
            c->delegation = POLICY_DELEGATION_FORBIDDEN;
        else if (strcmp(dl, "restricted") == 0)
            c->delegation = POLICY_DELEGATION_RESTRICTED;
        else
            fail(L, where, path(fk, sizeof(fk), field, "delegation"),
                 "must be \"required\", \"restricted\" (required, with a may_act naming the "
                 "agent) or \"forbidden\" (leave it out to allow both)");
        if (c->delegation != POLICY_DELEGATION_ANY)
            c->desc_delegation = ztb_arena_printf(L->a, "delegation %s", dl);
    }
    json_t *act = json_object_get(v, "act");
    if (act != NULL) {
        parse_patterns(L, act, where, "conditions.act", &c->act, &c->n_act);
        if (c->delegation == POLICY_DELEGATION_FORBIDDEN)
            fail(L, where, field,
                 "\"act\" needs a delegation but \"delegation\" is \"forbidden\": "
                 "the rule can never apply");
        const char **t = ztb_arena_calloc(L->a, c->n_act ? c->n_act : 1, sizeof(char *));
        if (t != NULL) {
            for (uint32_t i = 0; i < c->n_act; i++)
                t[i] = c->act[i].text;
            ztb_buf_append_str(&b, "act in ");
            join_sorted(L, &b, t, c->n_act, ", ");
            c->desc_act = buf_to_arena(L, &b);
        }
    }
    json_t *ips = json_object_get(v, "source_ip");
    if (ips != NULL) {
        const char **t = NULL;
        parse_cidrs(L, ips, where, c, &t);
        ztb_buf_append_str(&b, "source_ip in ");
        join_sorted(L, &b, t, t ? c->n_cidrs : 0, ", ");
        c->desc_source_ip = buf_to_arena(L, &b);
    }
    const char **lparts = NULL;
    json_t *lim = json_object_get(v, "limits");
    if (lim != NULL)
        parse_limits(L, lim, where, c, &lparts);
    /* one canonical text for "same conditions" checks */
    const char *parts[6] = {c->desc_not_before, c->desc_not_after, c->desc_windows,
                            c->desc_delegation, c->desc_act,       c->desc_source_ip};
    for (size_t i = 0; i < 6; i++)
        if (parts[i] != NULL)
            ztb_buf_printf(&b, "%s; ", parts[i]);
    if (lparts != NULL) {
        ztb_buf_append_str(&b, "limits ");
        join_sorted(L, &b, lparts, c->n_limits, "; ");
    }
    c->canon = buf_to_arena(L, &b);
    if (c->canon == NULL)
        c->canon = "";
    ztb_buf_free(&b);
}

static void parse_obligations(struct ld *L, json_t *v, const char *where, struct policy_rule *r)
{
    static const char *const keys[] = {"ttl",         "single_use",        "binding",
                                       "rate_limits", "approval_required", NULL};
    static const char *const rkeys[] = {"per_agent", "per_action", NULL};
    static const char *const akeys[] = {"group", "approvers", NULL};
    policy *p = L->p;
    const char *field = "obligations";
    r->ob.ttl = p->default_ttl;
    r->ob.binding = p->default_binding;
    r->ob.per_agent = p->default_per_agent;
    r->ob.per_action = p->default_per_action;
    if (v == NULL)
        return;
    if (!json_is_object(v)) {
        fail(L, where, field, "must be an object");
        return;
    }
    check_keys(L, v, where, field, keys);
    json_t *ttl = json_object_get(v, "ttl");
    if (ttl != NULL) {
        if (!json_is_integer(ttl) || json_integer_value(ttl) < 1)
            fail(L, where, "obligations.ttl", "must be a positive integer (seconds)");
        else if (json_integer_value(ttl) > (json_int_t)p->max_ttl)
            fail(L, where, "obligations.ttl", "%lld exceeds settings.max_ttl %u",
                 (long long)json_integer_value(ttl), p->max_ttl);
        else {
            r->ob.ttl = (uint32_t)json_integer_value(ttl);
            r->ob_explicit |= POLICY_OB_TTL;
        }
    }
    if (get_bool(L, v, "single_use", where, field, &r->ob.single_use))
        r->ob_explicit |= POLICY_OB_SINGLE_USE;
    if (parse_binding(L, v, "binding", where, field, &r->ob.binding))
        r->ob_explicit |= POLICY_OB_BINDING;
    json_t *rl = json_object_get(v, "rate_limits");
    if (rl != NULL) {
        if (!json_is_object(rl) || json_object_size(rl) == 0) {
            fail(L, where, "obligations.rate_limits",
                 "must be an object with \"per_agent\" and/or \"per_action\"");
        } else {
            check_keys(L, rl, where, "obligations.rate_limits", rkeys);
            json_t *x;
            if ((x = json_object_get(rl, "per_agent")) != NULL) {
                parse_rate(L, x, where, "obligations.rate_limits.per_agent", &r->ob.per_agent);
                r->ob_explicit |= POLICY_OB_PER_AGENT;
            }
            if ((x = json_object_get(rl, "per_action")) != NULL) {
                parse_rate(L, x, where, "obligations.rate_limits.per_action", &r->ob.per_action);
                r->ob_explicit |= POLICY_OB_PER_ACTION;
            }
        }
    }
    json_t *ap = json_object_get(v, "approval_required");
    if (ap != NULL) {
        const char *f = "obligations.approval_required";
        if (!json_is_object(ap)) {
            fail(L, where, f, "must be an object {\"group\", \"approvers\"}");
            return;
        }
        check_keys(L, ap, where, f, akeys);
        const char *g = get_str(L, ap, "group", where, f, POLICY_MAX_ID, 1);
        char q[QCAP];
        if (g != NULL && !valid_id(g, strlen(g))) {
            fail(L, where, "obligations.approval_required.group",
                 "%s: an approver group is 1 to %d of A-Z a-z 0-9 . _ -", quote(q, g),
                 POLICY_MAX_ID);
            g = NULL;
        }
        uint32_t n = 0;
        if (get_u32(L, ap, "approvers", where, f, 1, POLICY_MAX_APPROVERS, 1, &n) && g != NULL) {
            r->ob.approval_group = copy(L, g);
            r->ob.approvers = n;
            r->ob_explicit |= POLICY_OB_APPROVAL;
        }
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
        fail(L, where, NULL, "must be an object");
        return;
    }
    json_t *id = json_object_get(o, "id");
    if (!json_is_string(id) || !valid_id(json_string_value(id), json_string_length(id))) {
        fail(L, where, "id", "%s: a rule needs an id of 1 to %d of A-Z a-z 0-9 . _ -",
             json_is_string(id) ? quote(q, json_string_value(id)) : "missing", POLICY_MAX_ID);
    } else {
        r->id = copy(L, json_string_value(id));
        snprintf(where, sizeof(where), "rule %s", quote(q, r->id));
    }
    check_keys(L, o, where, NULL, keys);
    r->description = copy(L, get_str(L, o, "description", where, NULL, 1024, 0));
    const char *eff = get_str(L, o, "effect", where, NULL, 16, 1);
    if (eff != NULL && strcmp(eff, "allow") == 0)
        r->effect = POLICY_ALLOW;
    else if (eff != NULL && strcmp(eff, "deny") == 0)
        r->effect = POLICY_DENY;
    else if (eff != NULL)
        fail(L, where, "effect", "must be \"allow\" or \"deny\"");
    json_t *v;
    if ((v = get(L, o, "agents", where, NULL, 1)) != NULL)
        parse_agentset(L, v, where, "agents", &r->agents);
    if ((v = get(L, o, "actions", where, NULL, 1)) != NULL)
        parse_actions(L, v, where, r);
    if ((v = get(L, o, "audiences", where, NULL, 1)) != NULL)
        parse_patterns(L, v, where, "audiences", &r->audiences, &r->n_audiences);
    if ((v = get(L, o, "resources", where, NULL, 1)) != NULL)
        parse_patterns(L, v, where, "resources", &r->resources, &r->n_resources);
    parse_conditions(L, json_object_get(o, "conditions"), where, &r->cond);
    json_t *ob = json_object_get(o, "obligations");
    if (r->effect == POLICY_DENY && ob != NULL)
        fail(L, where, "obligations", "a deny rule has no obligations");
    else if (r->effect == POLICY_ALLOW)
        parse_obligations(L, ob, where, r);
}

static int cmp_rule(const void *a, const void *b)
{
    const struct policy_rule *x = a, *y = b;
    if (x->effect != y->effect)
        return x->effect == POLICY_DENY ? -1 : 1;
    return strcmp(x->id, y->id);
}

static void parse_rules(struct ld *L, json_t *v)
{
    policy *p = L->p;
    if (!json_is_array(v)) {
        fail(L, "rules", NULL, "must be a list of rules");
        return;
    }
    size_t n = json_array_size(v);
    if (n > POLICY_MAX_RULES) {
        fail(L, "rules", NULL, "has %zu rules; at most %d are allowed", n, POLICY_MAX_RULES);
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
            snprintf(where, sizeof(where), "rule %s", quote(q, r->id));
            fail(L, where, "id", "used by rules[%u] and rules[%zu]; ids must be unique", other, i);
        }
    }
    p->n_rules = (uint32_t)n;
}

/* ---- anomaly responses -------------------------------------------------- */

static const char *const known_signals[] = {"policy_violation",      "rate_limit_burst",
                                            "assertion_replay",      "token_replay",
                                            "join_token_reuse",      "new_audience",
                                            "credential_compromise", "prompt_injection",
                                            "dpop_replay",           NULL};

static const char *const response_names[] = {NULL,         "revoke_token", "require_approval",
                                             "quarantine", "revoke_all",   "kill_audience",
                                             "taint_key"};

static const char *const severity_names[] = {NULL, "low", "medium", "high", "critical"};

static int valid_signal(const char *s, size_t n)
{
    if (n == 0 || n > 64)
        return 0;
    if (n == 1 && s[0] == '*')
        return 1;
    if (!((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= '0' && s[0] <= '9')))
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
              c == ':' || c == '-'))
            return 0;
    }
    return 1;
}

static void parse_response(struct ld *L, json_t *o, size_t i, struct policy_response_rule *r)
{
    static const char *const keys[] = {
        "id",           "description",           "signals",  "agents",
        "min_severity", "min_confidence",        "response", "independent_signals",
        "window",       "operator_confirmation", NULL};
    char where[WCAP], q[QCAP];
    snprintf(where, sizeof(where), "anomaly_responses[%zu]", i);
    if (!json_is_object(o)) {
        fail(L, where, NULL, "must be an object");
        return;
    }
    json_t *id = json_object_get(o, "id");
    if (!json_is_string(id) || !valid_id(json_string_value(id), json_string_length(id))) {
        fail(L, where, "id", "%s: needs an id of 1 to %d of A-Z a-z 0-9 . _ -",
             json_is_string(id) ? quote(q, json_string_value(id)) : "missing", POLICY_MAX_ID);
    } else {
        r->id = copy(L, json_string_value(id));
        snprintf(where, sizeof(where), "anomaly response %s", quote(q, r->id));
    }
    check_keys(L, o, where, NULL, keys);
    r->description = copy(L, get_str(L, o, "description", where, NULL, 1024, 0));
    json_t *sig = get(L, o, "signals", where, NULL, 1);
    if (sig != NULL && want_list(L, sig, where, "signals", 64) != NULL) {
        size_t n = json_array_size(sig);
        const char **s = ztb_arena_calloc(L->a, n, sizeof(char *));
        if (s == NULL)
            return;
        for (size_t j = 0; j < n; j++) {
            json_t *e = json_array_get(sig, j);
            const char *t = json_string_value(e);
            if (t == NULL || !valid_signal(t, json_string_length(e))) {
                fail(L, where, "signals",
                     "%s: a signal type is 1 to 64 of a-z 0-9 _ . : - (or \"*\" for any)",
                     t ? quote(q, t) : "entry");
                continue;
            }
            const char *near = in_list(t, known_signals) ? NULL : suggest(t, known_signals);
            if (near != NULL) {
                fail(L, where, "signals", "%s looks like a typo of \"%s\"", quote(q, t), near);
                continue;
            }
            if (seen_before(s, r->n_signals, t)) {
                fail(L, where, "signals", "%s is listed twice", quote(q, t));
                continue;
            }
            s[r->n_signals++] = copy(L, t);
        }
        qsort(s, r->n_signals, sizeof(char *), cmp_str);
        r->signals = s;
        if (r->n_signals > 1 && seen_before(s, r->n_signals, "*"))
            fail(L, where, "signals", "\"*\" already means any signal; list nothing beside it");
    }
    json_t *ag = json_object_get(o, "agents");
    if (ag != NULL)
        parse_agentset(L, ag, where, "agents", &r->agents);
    else
        r->all_agents = 1;
    const char *sev = get_str(L, o, "min_severity", where, NULL, 16, 1);
    for (uint8_t k = 1; sev != NULL && k <= 4 && r->min_severity == 0; k++)
        if (strcmp(sev, severity_names[k]) == 0)
            r->min_severity = k;
    if (sev != NULL && r->min_severity == 0)
        fail(L, where, "min_severity", "must be \"low\", \"medium\", \"high\" or \"critical\"");
    json_t *conf = json_object_get(o, "min_confidence");
    if (conf != NULL) {
        double c = json_is_number(conf) ? json_number_value(conf) : -1;
        if (!(c >= 0 && c <= 1))
            fail(L, where, "min_confidence", "must be a number from 0 to 1");
        else
            r->min_confidence = c;
    }
    const char *resp = get_str(L, o, "response", where, NULL, 32, 1);
    for (uint8_t k = 1; resp != NULL && k <= 6 && r->response == 0; k++)
        if (strcmp(resp, response_names[k]) == 0)
            r->response = k;
    if (resp != NULL && r->response == 0)
        fail(L, where, "response",
             "must be one of revoke_token, require_approval, quarantine, revoke_all, "
             "kill_audience, taint_key");
    r->independent_signals = 1;
    get_u32(L, o, "independent_signals", where, NULL, 1, 10, 0, &r->independent_signals);
    r->window = 3600;
    int has_window = get_u32(L, o, "window", where, NULL, 1, 7 * 86400, 0, &r->window);
    if (has_window && r->independent_signals < 2)
        fail(L, where, "window", "only means something with independent_signals of 2 or more");
    get_bool(L, o, "operator_confirmation", where, NULL, &r->operator_confirmation);
}

static int cmp_response(const void *a, const void *b)
{
    const struct policy_response_rule *x = a, *y = b;
    return strcmp(x->id, y->id);
}

static void parse_responses(struct ld *L, json_t *v)
{
    policy *p = L->p;
    if (!json_is_array(v)) {
        fail(L, "anomaly_responses", NULL, "must be a list");
        return;
    }
    size_t n = json_array_size(v);
    if (n > POLICY_MAX_RESPONSES) {
        fail(L, "anomaly_responses", NULL, "has %zu entries; at most %d are allowed", n,
             POLICY_MAX_RESPONSES);
        return;
    }
    p->responses = ztb_arena_calloc(L->a, n ? n : 1, sizeof(struct policy_response_rule));
    if (p->responses == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        parse_response(L, json_array_get(v, i), i, &p->responses[i]);
    p->n_responses = (uint32_t)n;
    for (size_t i = 0; i < n; i++) {
        const char *id = p->responses[i].id;
        uint32_t other;
        if (id == NULL)
            continue;
        char where[WCAP], q[QCAP];
        snprintf(where, sizeof(where), "anomaly response %s", quote(q, id));
        for (size_t j = 0; j < i; j++)
            if (p->responses[j].id != NULL && strcmp(p->responses[j].id, id) == 0)
                fail(L, where, "id", "used by anomaly_responses[%zu] and [%zu]", j, i);
        if (policy_strmap_get(&p->rule_map, id, strlen(id), &other))
            fail(L, where, "id", "also used by a rule; ids must be unique in the document");
    }
}

/* ---- the document ------------------------------------------------------- */

static void parse_doc(struct ld *L, json_t *root)
{
    static const char *const keys[] = {"version", "description", "trust_domain",      "settings",
                                       "groups",  "rules",       "anomaly_responses", NULL};
    policy *p = L->p;
    if (!json_is_object(root)) {
        fail(L, NULL, NULL, "the document must be a JSON object");
        return;
    }
    check_keys(L, root, "document", NULL, keys);
    json_t *ver = json_object_get(root, "version");
    if (ver == NULL)
        fail(L, "document", "version", "missing (required; this engine reads version 1)");
    else if (!json_is_integer(ver) || json_integer_value(ver) != 1)
        fail(L, "document", "version", "must be 1 (the only version this engine reads)");
    p->description = copy(L, get_str(L, root, "description", "document", NULL, 4096, 0));
    const char *td = get_str(L, root, "trust_domain", "document", NULL, 255, 1);
    if (td != NULL && !valid_trust_domain(td, strlen(td))) {
        char q[QCAP];
        fail(L, "document", "trust_domain",
             "%s: a trust domain is lowercase letters, digits, '.', '-' and '_'", quote(q, td));
    } else if (td != NULL) {
        p->trust_domain = copy(L, td);
        p->spiffe_prefix = ztb_arena_printf(L->a, "spiffe://%s/agent/", td);
        p->spiffe_prefix_len = p->spiffe_prefix ? (uint32_t)strlen(p->spiffe_prefix) : 0;
    }
    json_t *s = get(L, root, "settings", "document", NULL, 1);
    if (s != NULL)
        parse_settings(L, s);
    json_t *g = json_object_get(root, "groups");
    if (g != NULL)
        parse_groups(L, g);
    else
        policy_strmap_init(&p->group_map, L->a, 0);
    json_t *r = get(L, root, "rules", "document", NULL, 1);
    if (r != NULL)
        parse_rules(L, r);
    else
        policy_strmap_init(&p->rule_map, L->a, 0);
    json_t *a = json_object_get(root, "anomaly_responses");
    if (a != NULL)
        parse_responses(L, a);
}

static void digest_hex(const void *doc, size_t len, char out[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    static const char hex[] = "0123456789abcdef";
    out[0] = '\0';
    if (EVP_Digest(doc, len, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32)
        return;
    for (unsigned i = 0; i < 32; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    out[64] = '\0';
}

ztb_err policy_load(const void *doc, size_t len, policy **out, policy_diag *diag)
{
    ztb_err rv = ZTB_OK;
    policy_diag local;
    policy_diag *d = diag;
    json_t *root = NULL;
    policy *p = NULL;
    if (d == NULL) {
        policy_diag_init(&local);
        d = &local;
    }
    ZTB_CHECK(rv, out != NULL && (doc != NULL || len == 0), ZTB_ERR_INVALID_ARG);
    *out = NULL;
    if (len > POLICY_MAX_DOC) {
        policy_diag_add(d, 0, 0, "document", NULL, "is %zu bytes; at most %u are allowed", len,
                        POLICY_MAX_DOC);
        rv = ZTB_ERR_TOO_LARGE;
        goto out;
    }
    json_error_t jerr;
    root = json_loadb(doc ? doc : "", len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL) {
        policy_diag_add(d, jerr.line > 0 ? (uint32_t)jerr.line : 1,
                        jerr.column > 0 ? (uint32_t)jerr.column : 1, NULL, NULL, "%s", jerr.text);
        rv = ZTB_ERR_JSON;
        goto out;
    }
    p = policy_alloc();
    ZTB_CHECK(rv, p != NULL, ZTB_ERR_NOMEM);
    struct ld L = {.p = p, .a = &p->arena, .d = d};
    parse_doc(&L, root);
    ZTB_TRY(rv, ztb_arena_error(&p->arena));
    ZTB_CHECK(rv, L.errors == 0, ZTB_ERR_POLICY);
    /* canonical order: deny rules first, then by id; groups and responses by name/id */
    if (p->n_rules > 1)
        qsort(p->rules, p->n_rules, sizeof(struct policy_rule), cmp_rule);
    if (p->n_responses > 1) /* responses is NULL when there are none */
        qsort(p->responses, p->n_responses, sizeof(struct policy_response_rule), cmp_response);
    for (uint32_t i = 0; i < p->n_rules; i++) {
        p->rules[i].index = i;
        if (p->rules[i].effect == POLICY_DENY)
            p->n_deny = i + 1;
    }
    ZTB_TRY(rv, policy_strmap_init(&p->rule_map, &p->arena, p->n_rules));
    for (uint32_t i = 0; i < p->n_rules; i++)
        ZTB_TRY(rv,
                policy_strmap_put(&p->rule_map, p->rules[i].id, strlen(p->rules[i].id), i, NULL));
    ZTB_TRY(rv, policy_compile(p));
    if (policy_overlap_check(p, d) != 0) {
        rv = ZTB_ERR_POLICY;
        goto out;
    }
    ZTB_TRY(rv, ztb_arena_error(&p->arena));
    digest_hex(doc ? doc : "", len, p->digest);
    *out = p;
    p = NULL;
out:
    if (rv == ZTB_ERR_NOMEM || rv == ZTB_ERR_TOO_LARGE) {
        if (policy_diag_count(d) == 0)
            policy_diag_add(d, 0, 0, "document", NULL, "%s", ztb_strerror(rv));
    }
    policy_unref(p);
    json_decref(root);
    if (d == &local)
        policy_diag_free(&local);
    return rv;
}

ztb_err policy_load_file(const char *path_, policy **out, policy_diag *diag)
{
    ztb_err rv = ZTB_OK;
    int fd = -1;
    char *buf = NULL;
    policy_diag local;
    policy_diag *d = diag;
    if (d == NULL) {
        policy_diag_init(&local);
        d = &local;
    }
    ZTB_CHECK(rv, path_ != NULL && out != NULL, ZTB_ERR_INVALID_ARG);
    *out = NULL;
    fd = open(path_, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        policy_diag_add(d, 0, 0, "file", NULL, "cannot read %s: %s", path_, strerror(errno));
        rv = ZTB_ERR_IO;
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        policy_diag_add(d, 0, 0, "file", NULL, "cannot read %s: not a regular file", path_);
        rv = ZTB_ERR_IO;
        goto out;
    }
    if ((uint64_t)st.st_size > POLICY_MAX_DOC) {
        policy_diag_add(d, 0, 0, "file", NULL, "%s is %lld bytes; at most %u are allowed", path_,
                        (long long)st.st_size, POLICY_MAX_DOC);
        rv = ZTB_ERR_TOO_LARGE;
        goto out;
    }
    size_t cap = (size_t)st.st_size + 1, len = 0;
    buf = malloc(cap);
    ZTB_CHECK(rv, buf != NULL, ZTB_ERR_NOMEM);
    for (;;) {
        ssize_t r = read(fd, buf + len, cap - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            policy_diag_add(d, 0, 0, "file", NULL, "cannot read %s: %s", path_, strerror(errno));
            rv = ZTB_ERR_IO;
            goto out;
        }
        if (r == 0)
            break;
        len += (size_t)r;
        if (len == cap) { /* the file grew while we read it */
            policy_diag_add(d, 0, 0, "file", NULL, "%s changed while being read", path_);
            rv = ZTB_ERR_IO;
            goto out;
        }
    }
    rv = policy_load(buf, len, out, d);
out:
    if (fd >= 0)
        close(fd);
    free(buf);
    if (d == &local)
        policy_diag_free(&local);
    return rv;
}
