/*
 * load_fixture.h - what the policy loader's unit tests share (test_load*.c):
 * a rule body that loads, and refusals checked for their error and message.
 *
 * Header-only (static inline functions): each test file includes it once.
 */
#ifndef ZTB_TEST_LOAD_FIXTURE_H
#define ZTB_TEST_LOAD_FIXTURE_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "policy_fixtures.h"

#define RULE_OK                                                                                    \
    "\"agents\": [\"billing-bot\"], \"actions\": [\"payments:refund\"], "                          \
    "\"audiences\": [\"https://payments.internal\"], \"resources\": [\"orders/*\"]"

/* Refuse doc with err and a message containing want (and, if given, want2). */
static inline void refuse(const char *doc, ztb_err err, const char *want, const char *want2)
{
    ztb_err got;
    char *m = fx_refuse(doc, err, &got);
    if (got != err || strstr(m, want) == NULL || (want2 && strstr(m, want2) == NULL))
        fail_msg("want %s with \"%s\"%s%s, got %s:\n%s\n-- document --\n%s", ztb_err_name(err),
                 want, want2 ? " and " : "", want2 ? want2 : "", ztb_err_name(got), m, doc);
    free(m);
}

/* A document with one rule whose body is body (inside the braces). */
static inline void refuse_rule(const char *body, const char *want, const char *want2)
{
    char rule[4096];
    snprintf(rule, sizeof(rule), "{%s}", body);
    char *doc = fx_doc("\"g\": {\"members\": [\"billing-bot\"]}", rule);
    refuse(doc, ZTB_ERR_POLICY, want, want2);
    free(doc);
}

#endif /* ZTB_TEST_LOAD_FIXTURE_H */
