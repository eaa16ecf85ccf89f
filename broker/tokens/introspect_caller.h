/*
 * introspect_caller.h - who may introspect, or consume, the tokens of an
 * audience (the check /v1/introspect makes before reading Redis).
 */
#ifndef ZTB_BROKER_INTROSPECT_CALLER_H
#define ZTB_BROKER_INTROSPECT_CALLER_H

#include <stdint.h>

#include "policy/types.h"

struct broker;

/* The policy actions introspection asks for (docs/policy.md). */
#define INTROSPECT_ACTION         "ztb:introspect" /* learn whether a token is active */
#define INTROSPECT_ACTION_CONSUME "ztb:consume"    /* also use up a single-use token */

/*
 * 1 if the agent caller may introspect tokens addressed to audience, by b's
 * policy and trust domain
 * (consume = 0: policy allows it INTROSPECT_ACTION on the audience), or
 * consume them (consume = 1: the caller is the audience, by name or SPIFFE
 * ID, or policy allows it INTROSPECT_ACTION_CONSUME on the audience).
 * source: the caller's address for source_ip conditions (may be NULL).
 */
int introspect_caller_may(const struct broker *b, const char *caller, const char *audience,
                          int consume, const policy_ip *source, int64_t now);

/*
 * 1 if b's policy allows the agent caller the broker's own action (e.g.
 * ztb:introspect, ztb:evaluate) on audience, resource "", at now from
 * source (may be NULL); 0 otherwise, and always without a policy. A
 * decision that needs approval is a 0.
 */
int caller_policy_allows(const struct broker *b, const char *caller, const char *action,
                         const char *audience, const policy_ip *source, int64_t now);

#endif /* ZTB_BROKER_INTROSPECT_CALLER_H */
