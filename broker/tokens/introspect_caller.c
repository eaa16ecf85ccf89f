/*
 * introspect_caller.c - who may learn about, or use up, the tokens of an
 * audience through /v1/introspect (see introspect_caller.h).
 *
 * How it works: consuming is allowed to the audience itself (by agent
 * name or SPIFFE ID); everything else is a policy decision on the broker's
 * own actions ztb:introspect and ztb:consume, default-deny. The same
 * decision on another of the broker's own actions (ztb:evaluate, AuthZEN)
 * is caller_policy_allows.
 *
 * Must never: allow anything when no policy is loaded.
 */
#include <stdio.h>
#include <string.h>

#include "broker/broker.h"
#include "broker/tokens/introspect_caller.h"
#include "policy/policy.h"

int introspect_caller_may(const struct broker *b, const char *caller, const char *audience,
                          int consume, const policy_ip *source, int64_t now)
{
    if (consume) {
        /* the audience itself, by agent name or SPIFFE ID, may use up its own tokens */
        char spiffe[300];
        snprintf(spiffe, sizeof(spiffe), "spiffe://%s/agent/%s", b->cfg.trust_domain, caller);
        if (strcmp(audience, caller) == 0 || strcmp(audience, spiffe) == 0)
            return 1;
    }
    return caller_policy_allows(b, caller, consume ? INTROSPECT_ACTION_CONSUME : INTROSPECT_ACTION,
                                audience, source, now);
}

int caller_policy_allows(const struct broker *b, const char *caller, const char *action,
                         const char *audience, const policy_ip *source, int64_t now)
{
    policy *pol = b->policy ? policy_holder_acquire(b->policy) : NULL;
    if (pol == NULL)
        return 0;
    policy_decision d;
    policy_request pr = {
        .agent = caller,
        .action = action,
        .audience = audience,
        .resource = "",
        .ctx = {.now = now},
    };
    if (source != NULL)
        pr.ctx.source = *source;
    int ok = policy_eval(pol, &pr, &d) == ZTB_OK && d.effect == POLICY_ALLOW;
    policy_holder_release(pol);
    return ok;
}
