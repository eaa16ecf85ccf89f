/*
 * load_responses.c - the document's "anomaly_responses": which signal,
 * severity and confidence trigger which response, for which agents, and
 * whether it needs two sources or an operator.
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

/* ---- anomaly responses -------------------------------------------------- */

static const char *const known_signals[] = {"policy_violation",
                                            "rate_limit_burst",
                                            "assertion_replay",
                                            "token_replay",
                                            "join_token_reuse",
                                            "new_audience",
                                            "credential_compromise",
                                            "prompt_injection",
                                            "dpop_replay",
                                            "out_of_scope",
                                            "baseline_new_action",
                                            "baseline_new_audience",
                                            "baseline_new_resource",
                                            "baseline_rate",
                                            "shadow_ai",
                                            NULL};

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
        load_fail(L, where, NULL, "must be an object");
        return;
    }
    json_t *id = json_object_get(o, "id");
    if (!json_is_string(id) || !load_valid_id(json_string_value(id), json_string_length(id))) {
        load_fail(L, where, "id", "%s: needs an id of 1 to %d of A-Z a-z 0-9 . _ -",
                  json_is_string(id) ? load_quote(q, json_string_value(id)) : "missing",
                  POLICY_MAX_ID);
    } else {
        r->id = load_copy(L, json_string_value(id));
        snprintf(where, sizeof(where), "anomaly response %s", load_quote(q, r->id));
    }
    load_check_keys(L, o, where, NULL, keys);
    r->description = load_copy(L, load_get_str(L, o, "description", where, NULL, 1024, 0));
    json_t *sig = load_get(L, o, "signals", where, NULL, 1);
    if (sig != NULL && load_want_list(L, sig, where, "signals", 64) != NULL) {
        size_t n = json_array_size(sig);
        const char **s = ztb_arena_calloc(L->a, n, sizeof(char *));
        if (s == NULL)
            return;
        for (size_t j = 0; j < n; j++) {
            json_t *e = json_array_get(sig, j);
            const char *t = json_string_value(e);
            if (t == NULL || !valid_signal(t, json_string_length(e))) {
                load_fail(L, where, "signals",
                          "%s: a signal type is 1 to 64 of a-z 0-9 _ . : - (or \"*\" for any)",
                          t ? load_quote(q, t) : "entry");
                continue;
            }
            const char *near =
                load_in_list(t, known_signals) ? NULL : load_suggest(t, known_signals);
            if (near != NULL) {
                load_fail(L, where, "signals", "%s looks like a typo of \"%s\"", load_quote(q, t),
                          near);
                continue;
            }
            if (load_seen_before(s, r->n_signals, t)) {
                load_fail(L, where, "signals", "%s is listed twice", load_quote(q, t));
                continue;
            }
            s[r->n_signals++] = load_copy(L, t);
        }
        qsort(s, r->n_signals, sizeof(char *), load_cmp_str);
        r->signals = s;
        if (r->n_signals > 1 && load_seen_before(s, r->n_signals, "*"))
            load_fail(L, where, "signals",
                      "\"*\" already means any signal; list nothing beside it");
    }
    json_t *ag = json_object_get(o, "agents");
    if (ag != NULL)
        load_parse_agentset(L, ag, where, "agents", &r->agents);
    else
        r->all_agents = 1;
    const char *sev = load_get_str(L, o, "min_severity", where, NULL, 16, 1);
    for (uint8_t k = 1; sev != NULL && k <= 4 && r->min_severity == 0; k++)
        if (strcmp(sev, severity_names[k]) == 0)
            r->min_severity = k;
    if (sev != NULL && r->min_severity == 0)
        load_fail(L, where, "min_severity",
                  "must be \"low\", \"medium\", \"high\" or \"critical\"");
    json_t *conf = json_object_get(o, "min_confidence");
    if (conf != NULL) {
        double c = json_is_number(conf) ? json_number_value(conf) : -1;
        if (!(c >= 0 && c <= 1))
            load_fail(L, where, "min_confidence", "must be a number from 0 to 1");
        else
            r->min_confidence = c;
    }
    const char *resp = load_get_str(L, o, "response", where, NULL, 32, 1);
    for (uint8_t k = 1; resp != NULL && k <= 6 && r->response == 0; k++)
        if (strcmp(resp, response_names[k]) == 0)
            r->response = k;
    if (resp != NULL && r->response == 0)
        load_fail(L, where, "response",
                  "must be one of revoke_token, require_approval, quarantine, revoke_all, "
                  "kill_audience, taint_key");
    r->independent_signals = 1;
    load_get_u32(L, o, "independent_signals", where, NULL, 1, 10, 0, &r->independent_signals);
    r->window = 3600;
    int has_window = load_get_u32(L, o, "window", where, NULL, 1, 7 * 86400, 0, &r->window);
    if (has_window && r->independent_signals < 2)
        load_fail(L, where, "window", "only means something with independent_signals of 2 or more");
    load_get_bool(L, o, "operator_confirmation", where, NULL, &r->operator_confirmation);
}

int load_cmp_response(const void *a, const void *b)
{
    const struct policy_response_rule *x = a, *y = b;
    return strcmp(x->id, y->id);
}

void load_parse_responses(struct ld *L, json_t *v)
{
    policy *p = L->p;
    if (!json_is_array(v)) {
        load_fail(L, "anomaly_responses", NULL, "must be a list");
        return;
    }
    size_t n = json_array_size(v);
    if (n > POLICY_MAX_RESPONSES) {
        load_fail(L, "anomaly_responses", NULL, "has %zu entries; at most %d are allowed", n,
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
        snprintf(where, sizeof(where), "anomaly response %s", load_quote(q, id));
        for (size_t j = 0; j < i; j++)
            if (p->responses[j].id != NULL && strcmp(p->responses[j].id, id) == 0)
                load_fail(L, where, "id", "used by anomaly_responses[%zu] and [%zu]", j, i);
        if (policy_strmap_get(&p->rule_map, id, strlen(id), &other))
            load_fail(L, where, "id", "also used by a rule; ids must be unique in the document");
    }
}
