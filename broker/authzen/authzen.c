/*
 * authzen.c - parse AuthZEN access evaluation bodies and name the answers
 * (see authzen.h).
 *
 * How it works: the body passes the jansson gate; then each 4-tuple is
 * resolved against the top-level defaults (a member of an evaluation
 * replaces the default whole, as AuthZEN 1.0 7.1.1 says) and checked:
 * objects where objects belong, the required strings present, printable
 * and short, no member ztb does not know in subject, action, resource or
 * the request itself (a typo must not silently widen a question), an
 * ip_address that is an address, and authorization_details held to the
 * same rules as at the token endpoint (authz_details_check).
 *
 * Must never: point an evaluation at memory the request does not own.
 */
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/authzen/authzen.h"
#include "broker/tokens/authz_details.h"
#include "common/guard.h"
#include "common/json_gate.h"
#include "pki/spiffe.h"
#include "policy/policy.h"

/* Name the problem in why (cap bytes); returns INVALID_ARG. */
static ztb_err bad(char *why, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static ztb_err bad(char *why, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, cap, fmt, ap);
    va_end(ap);
    return ZTB_ERR_INVALID_ARG;
}

/* 1 if every member of o is named in names (NULL-terminated); else 0 and
 * *extra is the first one that is not. */
static int members_known(const json_t *o, const char *const *names, const char **extra)
{
    const char *k;
    const json_t *v;
    json_object_foreach((json_t *)o, k, v)
    {
        (void)v;
        int ok = 0;
        for (const char *const *n = names; *n != NULL && !ok; n++)
            ok = strcmp(*n, k) == 0;
        if (!ok) {
            *extra = k;
            return 0;
        }
    }
    return 1;
}

/* 1 if s is 1..AUTHZEN_FIELD_MAX printable ASCII bytes without spaces
 * (empty_ok: or ""). */
static int field_ok(const char *s, int empty_ok)
{
    size_t n = strlen(s);
    if (n == 0)
        return empty_ok;
    if (n > AUTHZEN_FIELD_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
            return 0;
    return 1;
}

/* The string member name of o, checked with field_ok; NULL with why set. */
static const char *str_member(const json_t *o, const char *what, const char *name, int empty_ok,
                              char *why, size_t cap)
{
    const json_t *v = json_object_get(o, name);
    if (!json_is_string(v)) {
        bad(why, cap, "%s.%s must be a string", what, name);
        return NULL;
    }
    const char *s = json_string_value(v);
    if (strlen(s) != json_string_length(v) || !field_ok(s, empty_ok)) {
        snprintf(why, cap, "%s.%s must be %s1 to %d printable ASCII characters without spaces",
                 what, name, empty_ok ? "empty or " : "", AUTHZEN_FIELD_MAX);
        return NULL;
    }
    return s;
}

/* properties, when present, must be an object. */
static int properties_ok(const json_t *o, const char *what, char *why, size_t cap)
{
    const json_t *p = json_object_get(o, "properties");
    if (p != NULL && !json_is_object(p)) {
        bad(why, cap, "%s.properties must be an object", what);
        return 0;
    }
    return 1;
}

static ztb_err read_subject(const json_t *s, const char *at, struct authzen_eval *e, char *why,
                            size_t cap)
{
    char what[48];
    snprintf(what, sizeof(what), "%ssubject", at);
    static const char *const names[] = {"type", "id", "properties", NULL};
    const char *extra = NULL;
    if (!json_is_object(s))
        return bad(why, cap, "%s must be an object {\"type\", \"id\"}", what);
    if (!members_known(s, names, &extra))
        return bad(why, cap, "%s has an unknown member \"%.40s\"", what, extra);
    if ((e->subject_type = str_member(s, what, "type", 0, why, cap)) == NULL ||
        (e->subject_id = str_member(s, what, "id", 0, why, cap)) == NULL ||
        !properties_ok(s, what, why, cap))
        return ZTB_ERR_INVALID_ARG;
    memset(&e->source, 0, sizeof(e->source));
    const json_t *ip = json_object_get(json_object_get(s, "properties"), "ip_address");
    if (ip == NULL)
        return ZTB_OK;
    const char *t = json_string_value(ip);
    if (t != NULL && strlen(t) < 64 && inet_pton(AF_INET, t, e->source.addr) == 1)
        e->source.family = 4;
    else if (t != NULL && strlen(t) < 64 && inet_pton(AF_INET6, t, e->source.addr) == 1)
        e->source.family = 6;
    else
        return bad(why, cap, "%s.properties.ip_address must be an IPv4 or IPv6 address", what);
    return ZTB_OK;
}

static ztb_err read_action(const json_t *a, const char *at, struct authzen_eval *e, char *why,
                           size_t cap)
{
    char what[48];
    snprintf(what, sizeof(what), "%saction", at);
    static const char *const names[] = {"name", "properties", NULL};
    const char *extra = NULL;
    if (!json_is_object(a))
        return bad(why, cap, "%s must be an object {\"name\"}", what);
    if (!members_known(a, names, &extra))
        return bad(why, cap, "%s has an unknown member \"%.40s\"", what, extra);
    if ((e->action = str_member(a, what, "name", 0, why, cap)) == NULL ||
        !properties_ok(a, what, why, cap))
        return ZTB_ERR_INVALID_ARG;
    return ZTB_OK;
}

static ztb_err read_resource(const json_t *r, const char *at, struct authzen_eval *e, char *why,
                             size_t cap)
{
    char what[48];
    snprintf(what, sizeof(what), "%sresource", at);
    static const char *const names[] = {"type", "id", "properties", NULL};
    const char *extra = NULL;
    if (!json_is_object(r))
        return bad(why, cap, "%s must be an object {\"type\": AUDIENCE, \"id\": RESOURCE}", what);
    if (!members_known(r, names, &extra))
        return bad(why, cap, "%s has an unknown member \"%.40s\"", what, extra);
    if ((e->audience = str_member(r, what, "type", 0, why, cap)) == NULL ||
        (e->resource = str_member(r, what, "id", 1, why, cap)) == NULL ||
        !properties_ok(r, what, why, cap))
        return ZTB_ERR_INVALID_ARG;
    return ZTB_OK;
}

/* context: an object; its authorization_details, if any, held to the
 * token endpoint's rules for this action, audience and resource. */
static ztb_err read_context(const json_t *c, const char *at, struct authzen_eval *e, char *why,
                            size_t cap)
{
    e->details = NULL;
    if (c == NULL)
        return ZTB_OK;
    if (!json_is_object(c))
        return bad(why, cap, "%scontext must be an object", at);
    const json_t *ad = json_object_get(c, "authorization_details");
    if (ad == NULL)
        return ZTB_OK;
    char *text = json_dumps(ad, JSON_COMPACT | JSON_ENCODE_ANY);
    if (text == NULL)
        return bad(why, cap, "%scontext.authorization_details cannot be read", at);
    char dwhy[160];
    int ok = authz_details_check(text, strlen(text), e->action, e->audience,
                                 e->resource[0] != '\0' ? e->resource : NULL, dwhy, sizeof(dwhy));
    free(text);
    if (!ok) {
        snprintf(why, cap, "%scontext.authorization_details: %s", at, dwhy);
        return ZTB_ERR_INVALID_ARG;
    }
    e->details = ad;
    return ZTB_OK;
}

/* One 4-tuple: the members of o, else the defaults in top (NULL: none). */
static ztb_err read_tuple(const json_t *o, const json_t *top, const char *at,
                          struct authzen_eval *e, char *why, size_t cap)
{
    const char *parts[] = {"subject", "action", "resource"};
    const json_t *v[3];
    for (int i = 0; i < 3; i++) {
        v[i] = json_object_get(o, parts[i]);
        if (v[i] == NULL && top != NULL)
            v[i] = json_object_get(top, parts[i]);
        if (v[i] == NULL)
            return bad(why, cap, "%s%s required (in the evaluation or as a default)", at, parts[i]);
    }
    const json_t *c = json_object_get(o, "context");
    if (c == NULL && top != NULL)
        c = json_object_get(top, "context");
    ZTB_GUARD(read_subject(v[0], at, e, why, cap));
    ZTB_GUARD(read_action(v[1], at, e, why, cap));
    ZTB_GUARD(read_resource(v[2], at, e, why, cap));
    return read_context(c, at, e, why, cap);
}

static ztb_err read_options(const json_t *opt, struct authzen_req *out, char *why, size_t cap)
{
    out->semantic = AUTHZEN_EXECUTE_ALL;
    if (opt == NULL)
        return ZTB_OK;
    if (!json_is_object(opt))
        return bad(why, cap, "options must be an object");
    const json_t *s = json_object_get(opt, "evaluations_semantic");
    if (s == NULL)
        return ZTB_OK;
    for (int i = AUTHZEN_EXECUTE_ALL; i <= AUTHZEN_PERMIT_ON_FIRST_PERMIT; i++)
        if (json_is_string(s) &&
            strcmp(json_string_value(s), authzen_semantic_name((enum authzen_semantic)i)) == 0) {
            out->semantic = (enum authzen_semantic)i;
            return ZTB_OK;
        }
    return bad(why, cap,
               "options.evaluations_semantic must be \"execute_all\", \"deny_on_first_deny\" or "
               "\"permit_on_first_permit\"");
}

static ztb_err parse_root(json_t *root, int batch, struct authzen_req *out, char *why, size_t cap)
{
    static const char *const single[] = {"subject", "action", "resource", "context", NULL};
    static const char *const multi[] = {"subject",     "action",  "resource", "context",
                                        "evaluations", "options", NULL};
    const char *extra = NULL;
    if (!json_is_object(root))
        return bad(why, cap, "the body must be a JSON object");
    if (!members_known(root, batch ? multi : single, &extra)) {
        if (!batch && strcmp(extra, "evaluations") == 0)
            return bad(why, cap, "a batch goes to /access/v1/evaluations");
        return bad(why, cap, "unknown member \"%.40s\" in the request", extra);
    }
    const json_t *list = batch ? json_object_get(root, "evaluations") : NULL;
    if (list == NULL) {
        out->n = 1;
        return read_tuple(root, NULL, "", &out->ev[0], why, cap);
    }
    out->batch = 1;
    ZTB_GUARD(read_options(json_object_get(root, "options"), out, why, cap));
    size_t n = json_array_size(list);
    if (!json_is_array(list) || n < 1 || n > AUTHZEN_MAX_EVALUATIONS) {
        snprintf(why, cap, "evaluations must be an array of 1 to %d objects",
                 AUTHZEN_MAX_EVALUATIONS);
        return ZTB_ERR_INVALID_ARG;
    }
    for (size_t i = 0; i < n; i++) {
        const json_t *o = json_array_get(list, i);
        char at[32];
        snprintf(at, sizeof(at), "evaluations[%zu].", i);
        static const char *const names[] = {"subject", "action", "resource", "context", NULL};
        if (!json_is_object(o))
            return bad(why, cap, "%.20s must be an object", at);
        if (!members_known(o, names, &extra))
            return bad(why, cap, "%.20s has an unknown member \"%.40s\"", at, extra);
        ZTB_GUARD(read_tuple(o, root, at, &out->ev[i], why, cap));
    }
    out->n = n;
    return ZTB_OK;
}

ztb_err authzen_parse(const void *body, size_t len, int batch, struct authzen_req *out, char *why,
                      size_t cap)
{
    memset(out, 0, sizeof(*out));
    if (body == NULL || why == NULL || cap == 0)
        return ZTB_ERR_INVALID_ARG;
    json_t *root = NULL;
    ztb_err rv =
        ztb_json_gate_load(body, len, AUTHZEN_BODY_MAX, AUTHZEN_DEPTH_MAX, 0, &root, why, cap);
    if (rv != ZTB_OK)
        return rv;
    out->root = root;
    rv = parse_root(root, batch, out, why, cap);
    if (rv != ZTB_OK)
        authzen_req_free(out);
    return rv;
}

void authzen_req_free(struct authzen_req *r)
{
    if (r == NULL)
        return;
    json_decref(r->root);
    memset(r, 0, sizeof(*r));
}

int authzen_subject_agent(const struct authzen_eval *e, const char *td, char *agent, size_t cap,
                          const char **reason)
{
    if (strcmp(e->subject_type, AUTHZEN_SUBJECT_TYPE_AGENT) != 0) {
        *reason = "unsupported_subject_type";
        return 0;
    }
    *reason = "unknown_subject";
    const char *id = e->subject_id;
    if (strncmp(id, "spiffe://", 9) == 0) {
        char name[ZTB_AGENT_NAME_MAX + 1];
        if (ztb_spiffe_parse_agent(id, strlen(id), td, name, sizeof(name)) != ZTB_OK ||
            strlen(name) >= cap)
            return 0;
        memcpy(agent, name, strlen(name) + 1);
        return 1;
    }
    if (strlen(id) >= cap)
        return 0;
    memcpy(agent, id, strlen(id) + 1);
    return 1;
}

json_t *authzen_decision_json(int permit, const char *reason, const char *admin, uint32_t ttl,
                              const char *binding)
{
    json_t *ctx = json_pack("{s:s}", "reason", reason);
    if (ctx != NULL && admin != NULL)
        json_object_set_new(ctx, "reason_admin", json_pack("{s:s}", "en", admin));
    if (ctx != NULL && permit && ttl != 0)
        json_object_set_new(ctx, "ttl", json_integer(ttl));
    if (ctx != NULL && permit && binding != NULL)
        json_object_set_new(ctx, "binding", json_string(binding));
    if (ctx == NULL)
        return NULL;
    return json_pack("{s:b,s:o}", "decision", permit, "context", ctx);
}

const char *authzen_policy_reason(const policy_decision *d)
{
    if (d->effect == POLICY_APPROVAL_REQUIRED)
        return "approval_required";
    if (d->effect == POLICY_ALLOW)
        return d->ob.single_use ? "single_use_token_required" : NULL;
    switch (d->reason) {
    case POLICY_REASON_CONDITION: return "condition_not_met";
    case POLICY_REASON_DENY_RULE: return "deny_rule";
    case POLICY_REASON_CONFLICT: return "conflict";
    case POLICY_REASON_BAD_REQUEST: return "invalid_request";
    default: return "no_matching_rule";
    }
}

const char *authzen_semantic_name(enum authzen_semantic s)
{
    switch (s) {
    case AUTHZEN_DENY_ON_FIRST_DENY: return "deny_on_first_deny";
    case AUTHZEN_PERMIT_ON_FIRST_PERMIT: return "permit_on_first_permit";
    default: return "execute_all";
    }
}
