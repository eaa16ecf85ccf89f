/*
 * diff.c - what changed between two policies (see diff.h).
 *
 * Works on the documents the policies were loaded from: both passed the
 * loader, so they are well formed, their rules have unique string ids and
 * their size is bounded. Each rule and section is compared as canonical JSON
 * (sorted keys, compact), so reformatting a file changes nothing.
 */
#include <stdlib.h>
#include <string.h>

#include "policy/diff.h"
#include "policy/policy.h"

static json_t *load_doc(const policy *p)
{
    size_t len = 0;
    const char *doc = policy_document(p, &len);
    return json_loadb(doc, len, 0, NULL);
}

/* id -> canonical text of each rule in doc, as a JSON object of strings. */
static json_t *rules_by_id(const json_t *doc)
{
    json_t *out = json_object();
    const json_t *rules = json_object_get(doc, "rules");
    size_t i;
    const json_t *r;
    if (out == NULL)
        return NULL;
    json_array_foreach(rules, i, r)
    {
        const char *id = json_string_value(json_object_get(r, "id"));
        char *text = json_dumps(r, JSON_COMPACT | JSON_SORT_KEYS);
        if (id == NULL || text == NULL || json_object_set_new(out, id, json_string(text)) != 0) {
            free(text);
            json_decref(out);
            return NULL;
        }
        free(text);
    }
    return out;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Sort an array of strings in place. */
static void sort_strings(json_t *arr)
{
    size_t n = json_array_size(arr);
    if (n < 2)
        return;
    char **v = calloc(n, sizeof(char *));
    if (v == NULL)
        return; /* left in document order: still correct, only unsorted */
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        v[k] = strdup(json_string_value(json_array_get(arr, i)));
        if (v[k] != NULL)
            k++;
    }
    if (k == n) {
        qsort(v, n, sizeof(char *), cmp_str);
        json_array_clear(arr);
        for (size_t i = 0; i < n; i++)
            json_array_append_new(arr, json_string(v[i]));
    }
    for (size_t i = 0; i < k; i++)
        free(v[i]);
    free(v);
}

ztb_err policy_diff(const policy *from, const policy *to, json_t **out)
{
    if (from == NULL || to == NULL || out == NULL)
        return ZTB_ERR_INVALID_ARG;
    *out = NULL;
    ztb_err rv = ZTB_ERR_NOMEM;
    json_t *a = load_doc(from), *b = load_doc(to);
    json_t *ra = a ? rules_by_id(a) : NULL, *rb = b ? rules_by_id(b) : NULL;
    json_t *added = json_array(), *removed = json_array(), *changed = json_array();
    json_t *sections = json_array();
    json_t *res = NULL;
    if (ra == NULL || rb == NULL || added == NULL || removed == NULL || changed == NULL ||
        sections == NULL)
        goto out;
    const char *key;
    json_t *v;
    json_object_foreach(rb, key, v)
    {
        json_t *old = json_object_get(ra, key);
        if (old == NULL)
            json_array_append_new(added, json_string(key));
        else if (!json_equal(old, v))
            json_array_append_new(changed, json_string(key));
    }
    json_object_foreach(ra, key, v)
    {
        if (json_object_get(rb, key) == NULL)
            json_array_append_new(removed, json_string(key));
    }
    /* every other top-level member, present in either */
    json_object_foreach(a, key, v)
    {
        if (strcmp(key, "rules") != 0 && !json_equal(v, json_object_get(b, key)))
            json_array_append_new(sections, json_string(key));
    }
    json_object_foreach(b, key, v)
    {
        if (strcmp(key, "rules") != 0 && json_object_get(a, key) == NULL)
            json_array_append_new(sections, json_string(key));
    }
    sort_strings(added);
    sort_strings(removed);
    sort_strings(changed);
    sort_strings(sections);
    res = json_pack("{s:s,s:s,s:O,s:O,s:O,s:O}", "from", policy_digest(from), "to",
                    policy_digest(to), "rules_added", added, "rules_removed", removed,
                    "rules_changed", changed, "sections_changed", sections);
    if (res != NULL) {
        *out = res;
        rv = ZTB_OK;
    }
out:
    json_decref(added);
    json_decref(removed);
    json_decref(changed);
    json_decref(sections);
    json_decref(ra);
    json_decref(rb);
    json_decref(a);
    json_decref(b);
    return rv;
}
