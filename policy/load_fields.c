/*
 * load_fields.c - reading the fields of a policy document: problems
 * reported into the diagnostics, the check of an object's keys (with a
 * suggestion for a typo), typed getters with range checks, and the id and
 * name alphabets.
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

__attribute__((format(printf, 4, 5))) void load_fail(struct ld *L, const char *where,
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

const char *load_quote(char *buf, const char *s)
{
    return policy_diag_quote(buf, QCAP, s, s ? strlen(s) : 0);
}

/* "prefix.key" (or "key") into buf. */
const char *load_path(char *buf, size_t cap, const char *prefix, const char *key)
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
const char *load_suggest(const char *s, const char *const *list)
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

int load_in_list(const char *s, const char *const *list)
{
    for (size_t i = 0; list[i] != NULL; i++)
        if (strcmp(s, list[i]) == 0)
            return 1;
    return 0;
}

/* Refuse every key of obj not in allowed. */
void load_check_keys(struct ld *L, json_t *obj, const char *where, const char *prefix,
                     const char *const *allowed)
{
    for (void *it = json_object_iter(obj); it != NULL; it = json_object_iter_next(obj, it)) {
        const char *k = json_object_iter_key(it);
        if (load_in_list(k, allowed))
            continue;
        char q[QCAP];
        const char *s = load_suggest(k, allowed);
        if (s != NULL)
            load_fail(L, where, prefix, "unknown field %s (did you mean \"%s\"?)", load_quote(q, k),
                      s);
        else
            load_fail(L, where, prefix, "unknown field %s", load_quote(q, k));
    }
}

/* obj[key], reporting it as missing when required. */
json_t *load_get(struct ld *L, json_t *obj, const char *key, const char *where, const char *prefix,
                 int required)
{
    json_t *v = json_object_get(obj, key);
    if (v == NULL && required) {
        char f[WCAP];
        load_fail(L, where, load_path(f, sizeof(f), prefix, key), "missing (required)");
    }
    return v;
}

/* An integer in [lo, hi]; 1 if *out was set. */
int load_get_u32(struct ld *L, json_t *obj, const char *key, const char *where, const char *prefix,
                 uint32_t lo, uint32_t hi, int required, uint32_t *out)
{
    json_t *v = load_get(L, obj, key, where, prefix, required);
    if (v == NULL)
        return 0;
    char f[WCAP];
    load_path(f, sizeof(f), prefix, key);
    if (!json_is_integer(v) || json_integer_value(v) < (json_int_t)lo ||
        json_integer_value(v) > (json_int_t)hi) {
        load_fail(L, where, f, "must be an integer from %u to %u", lo, hi);
        return 0;
    }
    *out = (uint32_t)json_integer_value(v);
    return 1;
}

int load_get_bool(struct ld *L, json_t *obj, const char *key, const char *where, const char *prefix,
                  uint8_t *out)
{
    json_t *v = load_get(L, obj, key, where, prefix, 0);
    if (v == NULL)
        return 0;
    if (!json_is_boolean(v)) {
        char f[WCAP];
        load_fail(L, where, load_path(f, sizeof(f), prefix, key), "must be true or false");
        return 0;
    }
    *out = json_is_true(v) ? 1 : 0;
    return 1;
}

/* A non-empty printable string of at most maxlen bytes, as its JSON value (not copied). */
const char *load_get_str(struct ld *L, json_t *obj, const char *key, const char *where,
                         const char *prefix, size_t maxlen, int required)
{
    json_t *v = load_get(L, obj, key, where, prefix, required);
    if (v == NULL)
        return NULL;
    char f[WCAP];
    load_path(f, sizeof(f), prefix, key);
    if (!json_is_string(v)) {
        load_fail(L, where, f, "must be a string");
        return NULL;
    }
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    if (n == 0 || n > maxlen || !ztb_utf8_printable(s, n)) {
        load_fail(L, where, f, "must be 1 to %zu characters without control characters", maxlen);
        return NULL;
    }
    return s;
}

char *load_copy(struct ld *L, const char *s)
{
    return s ? ztb_arena_strdup(L->a, s) : NULL;
}

/* Characters of ids (rules, groups, responses, approver groups). */
int load_valid_id(const char *s, size_t n)
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
int load_valid_name(const char *s, size_t n, size_t max, int star)
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

int load_cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int load_cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/* The array at v with 1..max entries, or NULL after reporting. */
json_t *load_want_list(struct ld *L, json_t *v, const char *where, const char *field, size_t max)
{
    if (!json_is_array(v) || json_array_size(v) == 0) {
        load_fail(L, where, field, "must be a non-empty list");
        return NULL;
    }
    if (json_array_size(v) > max) {
        load_fail(L, where, field, "has %zu entries; at most %zu are allowed", json_array_size(v),
                  max);
        return NULL;
    }
    return v;
}

/* 1 if s equals one of seen[0..n). */
int load_seen_before(const char *const *seen, size_t n, const char *s)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(seen[i], s) == 0)
            return 1;
    return 0;
}
