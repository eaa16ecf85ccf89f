/*
 * signals.c - anomaly responses that apply to a signal (see signals.h).
 *
 * The entries are few (at most POLICY_MAX_RESPONSES) and signals rare next
 * to token requests, so this is a linear scan with an insertion sort into
 * the caller's array.
 *
 * Must never: allocate, or match a signal about one agent to an entry
 * that names other agents.
 */
#include <string.h>

#include "policy/match.h"
#include "policy/model.h"
#include "policy/signals.h"

static int signal_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.' || c == ':' ||
           c == '-';
}

static int lists_signal(const struct policy_response_rule *r, const char *type)
{
    for (uint32_t i = 0; i < r->n_signals; i++)
        if (strcmp(r->signals[i], "*") == 0 || strcmp(r->signals[i], type) == 0)
            return 1;
    return 0;
}

/* 1 if a should come before b: stronger response first, then id. */
static int before(const policy_signal_response *a, const policy_signal_response *b)
{
    if (a->response != b->response)
        return a->response > b->response;
    return strcmp(a->id, b->id) < 0;
}

ztb_err policy_signal_responses(const policy *p, const char *agent, const char *signal_type,
                                policy_severity severity, double confidence,
                                policy_signal_response *out, size_t cap, size_t *n)
{
    if (n != NULL)
        *n = 0;
    if (p == NULL || signal_type == NULL || n == NULL || (out == NULL && cap > 0))
        return ZTB_ERR_INVALID_ARG;
    if (severity < POLICY_SEVERITY_LOW || severity > POLICY_SEVERITY_CRITICAL ||
        !(confidence >= 0.0 && confidence <= 1.0))
        return ZTB_ERR_INVALID_ARG;
    size_t tl = strnlen(signal_type, 65);
    if (tl == 0 || tl > 64)
        return ZTB_ERR_INVALID_ARG;
    for (size_t i = 0; i < tl; i++)
        if (!signal_char(signal_type[i]))
            return ZTB_ERR_INVALID_ARG;
    struct policy_agent_ref a;
    if (agent != NULL && policy_agent_resolve(p, agent, &a) != NULL)
        return ZTB_ERR_INVALID_ARG;
    size_t count = 0, kept = 0;
    for (uint32_t i = 0; i < p->n_responses; i++) {
        const struct policy_response_rule *r = &p->responses[i];
        if ((uint8_t)severity < r->min_severity || confidence < r->min_confidence ||
            !lists_signal(r, signal_type))
            continue;
        if (!r->all_agents && (agent == NULL || !policy_agent_in_set(p, &r->agents, &a)))
            continue;
        count++;
        policy_signal_response e = {.id = r->id,
                                    .response = (policy_response_kind)r->response,
                                    .independent_signals = r->independent_signals,
                                    .window = r->window,
                                    .operator_confirmation = r->operator_confirmation};
        /* insertion into the sorted prefix, dropping whatever falls past cap */
        size_t pos = kept;
        while (pos > 0 && before(&e, &out[pos - 1]))
            pos--;
        if (pos >= cap)
            continue;
        size_t last = kept < cap ? kept : cap - 1;
        memmove(&out[pos + 1], &out[pos], (last - pos) * sizeof(*out));
        out[pos] = e;
        if (kept < cap)
            kept++;
    }
    *n = count;
    return count > cap ? ZTB_ERR_TOO_LARGE : ZTB_OK;
}
