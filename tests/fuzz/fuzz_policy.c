/*
 * fuzz_policy.c - the policy loader on arbitrary bytes, then the evaluator,
 * explain and signals on every policy that loads.
 *
 * Checks, beyond memory safety: load succeeds exactly when it returns a
 * policy and fails only with at least one message, messages never carry a
 * control character; for a loaded policy, requests aimed at each rule (built
 * from its own patterns) evaluate without error, the same request always gets
 * the same decision, explain never disagrees with eval (it would return
 * INTERNAL), and a deny never carries obligations.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "policy/model.h"
#include "policy/policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A concrete string from a pattern: each star becomes "a" (or "" on odd k). */
static void concretise(const char *pat, char *out, size_t cap, unsigned k)
{
    size_t n = 0;
    for (const char *p = pat; *p && n + 2 < cap; p++) {
        if (*p == '*') {
            if (p[1] == '*')
                p++;
            if (k & 1)
                out[n++] = 'a';
            continue;
        }
        out[n++] = *p;
    }
    out[n] = '\0';
}

static int same(const policy_decision *a, const policy_decision *b)
{
    return a->effect == b->effect && a->reason == b->reason && a->rule == b->rule &&
           a->detail == b->detail && a->ob.ttl == b->ob.ttl && a->n_matched == b->n_matched;
}

static void probe(const policy *p, const policy_request *r)
{
    policy_decision d1, d2;
    if (policy_eval(p, r, &d1) != ZTB_OK || policy_eval(p, r, &d2) != ZTB_OK)
        abort();
    if (!same(&d1, &d2))
        abort();
    if (d1.effect == POLICY_DENY && (d1.ob.ttl != 0 || d1.n_matched != 0))
        abort();
    if (d1.effect != POLICY_DENY && (d1.ob.ttl == 0 || d1.ob.ttl > policy_max_ttl(p)))
        abort();
    json_t *ex = NULL;
    ztb_err e = policy_explain(p, r, &ex);
    if (e == ZTB_ERR_INTERNAL)
        abort(); /* explain and eval disagree */
    if (e == ZTB_OK) {
        ztb_buf b;
        ztb_buf_init(&b, 1 << 20);
        policy_explain_text(ex, &b);
        ztb_buf_free(&b);
    }
    json_decref(ex);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 65536)
        return 0;
    policy_diag d;
    policy_diag_init(&d);
    policy *p = NULL;
    ztb_err e = policy_load(data, size, &p, &d);
    if ((e == ZTB_OK) != (p != NULL))
        abort();
    if (e != ZTB_OK && policy_diag_count(&d) == 0)
        abort();
    for (size_t i = 0; i < d.n; i++) {
        ztb_buf b;
        ztb_buf_init(&b, 1 << 16);
        policy_diag_format(&d.msgs[i], &b);
        for (const char *c = ztb_buf_cstr(&b); *c; c++)
            if ((unsigned char)*c < 0x20 || *c == 0x7f)
                abort();
        ztb_buf_free(&b);
    }
    policy_diag_free(&d);
    if (p == NULL)
        return 0;

    json_t *ad = json_pack("[{s:s, s:f}, {s:i}]", "type", "payment", "amount", 20.0, "amount",
                           (json_int_t)size);
    for (uint32_t i = 0; i < p->n_rules && i < 32; i++) {
        const struct policy_rule *r = &p->rules[i];
        for (unsigned k = 0; k < 2; k++) {
            char agent[160] = "x", action[160], aud[300], res[300];
            if (r->agents.n_text > 0 && strncmp(r->agents.text[0], "group:", 6) != 0)
                concretise(r->agents.text[0], agent, sizeof(agent), k);
            else if (r->agents.n_groups > 0) {
                const struct policy_group *g = &p->groups[r->agents.groups[0]];
                concretise(g->members[0], agent, sizeof(agent), k);
            }
            concretise(r->actions[0].text, action, sizeof(action), k);
            if (strchr(action, ':') == NULL)
                strcat(action, ":a");
            concretise(r->audiences[0].text, aud, sizeof(aud), k);
            concretise(r->resources[0].text, res, sizeof(res), k);
            policy_request req = {.agent = agent,
                                  .action = action,
                                  .audience = aud,
                                  .resource = res,
                                  .ctx = {.now = (int64_t)size * 7919 + k * 86400 * 3,
                                          .act = k ? "spiffe://x/user/a" : NULL,
                                          .authorization_details = k ? ad : NULL}};
            if (k)
                policy_ip_parse("10.20.0.1", &req.ctx.source);
            probe(p, &req);
        }
    }
    /* hostile requests against whatever loaded */
    policy_request h = {
        .agent = (const char *)"a\x01", .action = "a:b", .audience = "x", .resource = ""};
    probe(p, &h);
    policy_signal_response resp[4];
    size_t n;
    policy_signal_responses(p, "x", "token_replay", POLICY_SEVERITY_CRITICAL, 1.0, resp, 4, &n);
    policy_signal_responses(p, NULL, "*", POLICY_SEVERITY_LOW, 0.0, resp, 4, &n);
    const char *groups[8];
    policy_agent_groups(p, "x", groups, 8, &n);
    json_decref(ad);
    policy_unref(p);
    return 0;
}
