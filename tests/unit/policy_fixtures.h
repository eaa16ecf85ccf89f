/*
 * policy_fixtures.h - helpers shared by the policy tests (header-only).
 *
 * Documents are built from a fixed header (version, trust domain
 * "example.org", settings) plus the groups and rules a test gives, so each
 * test shows only what it is about.
 */
#ifndef ZTB_TEST_POLICY_FIXTURES_H
#define ZTB_TEST_POLICY_FIXTURES_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/policy.h"

#define FX_SETTINGS                                                                                \
    "\"settings\": {\"max_ttl\": 300, \"default_ttl\": 60, \"rate_limits\": {"                     \
    "\"per_agent\": {\"rate\": 600, \"burst\": 60, \"period\": 60},"                               \
    "\"per_action\": {\"rate\": 120, \"burst\": 20, \"period\": 60}}}"

/* A document with these groups (an object body, may be "") and rules (array body). */
static inline char *fx_doc(const char *groups, const char *rules)
{
#define FX_DOC_FMT                                                                                 \
    "{\"version\": 1, \"trust_domain\": \"example.org\", " FX_SETTINGS                             \
    ", \"groups\": {%s}, \"rules\": [%s]}"
    size_t n = sizeof(FX_DOC_FMT) + strlen(groups) + strlen(rules) + 1;
    char *s = malloc(n);
    if (s == NULL)
        abort();
    snprintf(s, n, FX_DOC_FMT, groups, rules);
    return s;
}

/* All messages of d, one per line (caller frees). */
static inline char *fx_messages(const policy_diag *d)
{
    ztb_buf b;
    ztb_buf_init(&b, 1 << 20);
    for (size_t i = 0; i < d->n; i++) {
        policy_diag_format(&d->msgs[i], &b);
        ztb_buf_append_byte(&b, '\n');
    }
    char *s = ztb_buf_steal(&b, NULL);
    ztb_buf_free(&b);
    return s ? s : strdup("");
}

/* Load text or fail the test, printing the messages. */
static inline policy *fx_load(const char *text)
{
    policy_diag d;
    policy_diag_init(&d);
    policy *p = NULL;
    ztb_err e = policy_load(text, strlen(text), &p, &d);
    if (e != ZTB_OK) {
        char *m = fx_messages(&d);
        fprintf(stderr, "policy_load: %s\n%s", ztb_err_name(e), m);
        free(m);
    }
    policy_diag_free(&d);
    return p;
}

/* Load text expecting failure with err; returns the messages (caller frees). */
static inline char *fx_refuse(const char *text, ztb_err expect, ztb_err *got)
{
    policy_diag d;
    policy_diag_init(&d);
    policy *p = NULL;
    ztb_err e = policy_load(text, strlen(text), &p, &d);
    *got = e;
    char *m = fx_messages(&d);
    if (e != expect)
        fprintf(stderr, "expected %s, got %s:\n%s", ztb_err_name(expect), ztb_err_name(e), m);
    policy_unref(p);
    policy_diag_free(&d);
    return m;
}

/* $ZTB_SOURCE_DIR/rel (or ../rel when unset) into buf. */
static inline const char *fx_src(char *buf, size_t cap, const char *rel)
{
    const char *root = getenv("ZTB_SOURCE_DIR");
    snprintf(buf, cap, "%s/%s", root ? root : "..", rel);
    return buf;
}

static inline json_t *fx_json(const char *s)
{
    json_error_t e;
    json_t *j = json_loads(s, JSON_DECODE_ANY, &e);
    if (j == NULL) {
        fprintf(stderr, "bad test JSON: %s\n", e.text);
        abort();
    }
    return j;
}

#endif /* ZTB_TEST_POLICY_FIXTURES_H */
