/*
 * authzen.h - OpenID AuthZEN Authorization API 1.0 requests, mapped to
 * ztb's policy request (docs/authzen.md): the parser of the access
 * evaluation bodies and the words of the answers. No HTTP, no Redis: the
 * handlers are authzen_http.c.
 *
 * The mapping, one evaluation at a time:
 *   subject  {type "agent", id NAME or spiffe://TD/agent/NAME, properties}
 *            -> the agent; properties.ip_address -> the source address
 *            that source_ip conditions read
 *   action   {name}            -> the action ("service:verb")
 *   resource {type, id}        -> type is the audience, id the resource
 *   context  {authorization_details} -> the RFC 9396 details limits read;
 *            other members (time, ...) are not read: time conditions use
 *            the broker's clock
 *
 * A body arrives only after its caller was authenticated (authzen_http.c),
 * so it goes through the jansson gate (common/json_gate.h): size, NUL
 * bytes, depth and duplicate names are checked before jansson sees it.
 *
 * Must never: accept a body it has not checked in full, or let an
 * evaluation leave out something the default values did not supply.
 */
#ifndef ZTB_BROKER_AUTHZEN_H
#define ZTB_BROKER_AUTHZEN_H

#include <stddef.h>

#include <jansson.h>
#include <ztb/error.h>

#include "policy/types.h"

#define AUTHZEN_BODY_MAX        16384 /* bytes of one request body */
#define AUTHZEN_DEPTH_MAX       10    /* nesting of a request body */
#define AUTHZEN_MAX_EVALUATIONS 32    /* evaluations in one batch (audit lines per request) */
#define AUTHZEN_FIELD_MAX       255   /* bytes of a type, id or action name */

#define AUTHZEN_SUBJECT_TYPE_AGENT "agent"

/* The broker's own action a caller needs on an audience to ask about it. */
#define AUTHZEN_EVALUATE_ACTION "ztb:evaluate"

/* options.evaluations_semantic (AuthZEN 1.0 7.1.2.1). */
enum authzen_semantic {
    AUTHZEN_EXECUTE_ALL = 0,
    AUTHZEN_DENY_ON_FIRST_DENY = 1,
    AUTHZEN_PERMIT_ON_FIRST_PERMIT = 2,
};

/* One evaluation after default values were applied. Strings point into the
 * request's parsed body (authzen_req.root) and live as long as it does. */
struct authzen_eval {
    const char *subject_type;
    const char *subject_id;
    const char *action;    /* action.name */
    const char *audience;  /* resource.type */
    const char *resource;  /* resource.id ("" when it names none) */
    policy_ip source;      /* subject.properties.ip_address; family 0 when absent */
    const json_t *details; /* context.authorization_details, or NULL */
};

struct authzen_req {
    json_t *root; /* the body; owned */
    int batch;    /* 1: the answer is {"evaluations": [...]} */
    enum authzen_semantic semantic;
    size_t n;
    struct authzen_eval ev[AUTHZEN_MAX_EVALUATIONS];
};

/*
 * Parse body[0..len) into *out. batch 0: POST /access/v1/evaluation (one
 * 4-tuple); 1: POST /access/v1/evaluations (an "evaluations" array whose
 * entries take the top-level subject, action, resource and context as
 * defaults, and "options"; without "evaluations" the body is one 4-tuple,
 * answered as one). Every member is checked here, so evaluating cannot
 * meet a malformed request. Returns OK, or JSON / TOO_LARGE /
 * INVALID_ARG with why (cap bytes) naming the problem and the fix, for a
 * 400; *out is then empty. The caller frees *out with authzen_req_free.
 */
ztb_err authzen_parse(const void *body, size_t len, int batch, struct authzen_req *out, char *why,
                      size_t cap);

/* Drop what authzen_parse kept. Safe on an empty or freed request. */
void authzen_req_free(struct authzen_req *r);

/*
 * The agent a subject names, into agent (cap bytes): for type "agent", an
 * id that is an agent name or the SPIFFE ID of an agent of trust domain td.
 * Returns 1, or 0 with *reason set to "unsupported_subject_type" or
 * "unknown_subject".
 */
int authzen_subject_agent(const struct authzen_eval *e, const char *td, char *agent, size_t cap,
                          const char **reason);

/*
 * The answer for one decision: {"decision": permit, "context": {"reason":
 * reason, "reason_admin": {"en": admin}}} plus, for a permit, "ttl" (s)
 * and "binding" when ttl/binding are not 0. admin may be NULL. A new
 * reference (NULL when out of memory).
 */
json_t *authzen_decision_json(int permit, const char *reason, const char *admin, uint32_t ttl,
                              const char *binding);

/*
 * The reason code for a policy decision that is not a plain permit:
 * "no_matching_rule", "condition_not_met", "deny_rule", "conflict",
 * "invalid_request", "approval_required", "single_use_token_required";
 * NULL when d allows the request outright (AuthZEN permit).
 */
const char *authzen_policy_reason(const policy_decision *d);

/* The semantic's name in the protocol ("execute_all", ...). */
const char *authzen_semantic_name(enum authzen_semantic s);

#endif /* ZTB_BROKER_AUTHZEN_H */
