/*
 * explain.c - decisions explained (see explain.h).
 *
 * Everything is built as one JSON object, then policy_explain_text renders
 * that object: there is one source for both outputs. Strings that came from
 * the request are untrusted; JSON escapes them, and the text renderer prints
 * them only after ztb_utf8_printable passes (else it shows them JSON-escaped).
 *
 * Must never: reach its own conclusion: it replays policy_eval's steps and
 * returns INTERNAL rather than print an answer that differs from eval's.
 */
#include <arpa/inet.h>
#include <string.h>

#include "common/utf8.h"
#include "policy/cond.h"
#include "policy/match.h"
#include "policy/explain.h"
#include "policy/model.h"
#include "policy/policy.h"

/* json_object_set_new that remembers failure in *ok. */
static void put(json_t *o, const char *k, json_t *v, int *ok)
{
    if (v == NULL || json_object_set_new(o, k, v) != 0)
        *ok = 0;
}

static void push(json_t *a, json_t *v, int *ok)
{
    if (v == NULL || json_array_append_new(a, v) != 0)
        *ok = 0;
}

/* A JSON string from untrusted bytes: invalid UTF-8 becomes a marker. */
static json_t *str_or_null(const char *s)
{
    if (s == NULL)
        return json_null();
    size_t n = strnlen(s, POLICY_MAX_INPUT + 1);
    if (n > POLICY_MAX_INPUT)
        return json_string("(too long)");
    if (!ztb_utf8_valid(s, n))
        return json_string("(invalid UTF-8)");
    return json_stringn(s, n);
}

static json_t *list_text(const char *const *v, uint32_t n)
{
    json_t *a = json_array();
    for (uint32_t i = 0; a != NULL && i < n; i++)
        json_array_append_new(a, json_string(v[i]));
    return a;
}

static json_t *list_globs(const policy_glob *g, uint32_t n)
{
    json_t *a = json_array();
    for (uint32_t i = 0; a != NULL && i < n; i++)
        json_array_append_new(a, json_string(g[i].text));
    return a;
}

static json_t *list_actions(const struct policy_rule *r)
{
    json_t *a = json_array();
    for (uint32_t i = 0; a != NULL && i < r->n_actions; i++)
        json_array_append_new(a, json_string(r->actions[i].text));
    return a;
}

/* "[a, b, c]" of a JSON array of strings. */
static char *join(json_t *a)
{
    ztb_buf b;
    ztb_buf_init(&b, 64 * 1024);
    ztb_buf_append_byte(&b, '[');
    for (size_t i = 0; i < json_array_size(a); i++)
        ztb_buf_printf(&b, "%s%s", i ? ", " : "", json_string_value(json_array_get(a, i)));
    ztb_buf_append_byte(&b, ']');
    json_decref(a);
    char *s = ztb_buf_steal(&b, NULL);
    ztb_buf_free(&b);
    return s;
}

/* Why the rule's targets miss the request, as a sentence. */
static json_t *miss_text(const struct policy_rule *r, enum policy_miss m,
                         const struct policy_subject *s)
{
    char *list = NULL;
    const char *what = "";
    const char *val = "";
    size_t vlen = 0;
    switch (m) {
    case POLICY_MISS_AGENT:
        what = "agent";
        val = s->agent.name;
        vlen = s->agent.len;
        list = join(list_text(r->agents.text, r->agents.n_text));
        break;
    case POLICY_MISS_ACTION:
        what = "action";
        val = s->service;
        vlen = s->service_len + 1 + s->verb_len;
        list = join(list_actions(r));
        break;
    case POLICY_MISS_AUDIENCE:
        what = "audience";
        val = s->audience;
        vlen = s->audience_len;
        list = join(list_globs(r->audiences, r->n_audiences));
        break;
    case POLICY_MISS_RESOURCE:
        what = "resource";
        val = s->resource;
        vlen = s->resource_len;
        list = join(list_globs(r->resources, r->n_resources));
        break;
    case POLICY_MISS_NONE: break;
    }
    json_t *j = NULL;
    if (list != NULL) {
        j = json_sprintf("%s %.*s is not in %s", what, (int)vlen, val, list);
        if (j == NULL) /* invalid UTF-8 cannot happen (checked), but stay safe */
            j = json_sprintf("%s is not in %s", what, list);
    }
    free(list);
    return j;
}

static const char *from(const struct policy_rule *r, uint32_t flag, char *buf, size_t cap,
                        const char *setting)
{
    if (r == NULL)
        return "no matching rule asks for it";
    if (r->ob_explicit & flag)
        snprintf(buf, cap, "rule %s", r->id);
    else
        snprintf(buf, cap, "%s (rule %s sets none)", setting, r->id);
    return buf;
}

static json_t *rate_json(policy_rate r, const char *src)
{
    return json_pack("{s:i, s:i, s:i, s:s}", "rate", (json_int_t)r.rate, "burst",
                     (json_int_t)r.burst, "period", (json_int_t)r.period, "from", src);
}

static json_t *obligations_json(const policy *p, const struct policy_combine *c,
                                const policy_obligations *ob)
{
    char b1[160], b2[160], b3[160], b4[160], b5[160];
    int ok = 1;
    json_t *o = json_object();
    if (o == NULL)
        return NULL;
    put(o, "ttl",
        json_pack("{s:i, s:s, s:i}", "value", (json_int_t)ob->ttl, "from",
                  from(c->src_ttl, POLICY_OB_TTL, b1, sizeof(b1), "settings.default_ttl"),
                  "max_ttl", (json_int_t)p->max_ttl),
        &ok);
    put(o, "single_use",
        json_pack("{s:b, s:s}", "value", ob->single_use, "from",
                  from(c->src_single_use, POLICY_OB_SINGLE_USE, b2, sizeof(b2), "default")),
        &ok);
    put(o, "binding",
        json_pack(
            "{s:s, s:s}", "value", policy_binding_name((policy_binding)ob->binding), "from",
            from(c->src_binding, POLICY_OB_BINDING, b3, sizeof(b3), "settings.default_binding")),
        &ok);
    json_t *rl = json_object();
    put(rl, "per_agent",
        rate_json(ob->per_agent, from(c->src_per_agent, POLICY_OB_PER_AGENT, b4, sizeof(b4),
                                      "settings.rate_limits.per_agent")),
        &ok);
    put(rl, "per_action",
        rate_json(ob->per_action, from(c->src_per_action, POLICY_OB_PER_ACTION, b5, sizeof(b5),
                                       "settings.rate_limits.per_action")),
        &ok);
    put(o, "rate_limits", rl, &ok);
    if (ob->approvers > 0)
        put(o, "approval_required",
            json_pack("{s:s?, s:i, s:s?}", "group", ob->approval_group, "approvers",
                      (json_int_t)ob->approvers, "from", c->approval ? c->approval->id : NULL),
            &ok);
    else
        put(o, "approval_required", json_null(), &ok);
    if (!ok) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static json_t *request_json(const policy *p, const policy_request *req,
                            const struct policy_subject *s, int resolved)
{
    int ok = 1;
    json_t *o = json_object();
    if (o == NULL)
        return NULL;
    char t[32];
    policy_format_time(req->ctx.now, t, sizeof(t));
    put(o, "agent", str_or_null(req->agent), &ok);
    put(o, "action", str_or_null(req->action), &ok);
    put(o, "audience", str_or_null(req->audience), &ok);
    put(o, "resource", str_or_null(req->resource ? req->resource : ""), &ok);
    put(o, "time", json_string(t), &ok);
    put(o, "act", str_or_null(req->ctx.act), &ok);
    if (req->ctx.act != NULL && req->ctx.act_restricted)
        put(o, "act_restricted", json_true(), &ok);
    char ip[INET6_ADDRSTRLEN] = "";
    if (req->ctx.source.family == 4)
        inet_ntop(AF_INET, req->ctx.source.addr, ip, sizeof(ip));
    else if (req->ctx.source.family == 6)
        inet_ntop(AF_INET6, req->ctx.source.addr, ip, sizeof(ip));
    put(o, "source_ip", ip[0] ? json_string(ip) : json_null(), &ok);
    put(o, "authorization_details",
        req->ctx.authorization_details ? json_deep_copy(req->ctx.authorization_details)
                                       : json_null(),
        &ok);
    if (resolved) {
        json_t *g = json_array();
        for (uint32_t i = 0; g != NULL && i < p->n_groups; i++)
            if (policy_bit(s->agent.groups, i))
                json_array_append_new(g, json_string(p->groups[i].name));
        put(o, "agent_name", json_stringn(s->agent.name, s->agent.len), &ok);
        put(o, "spiffe_id",
            json_sprintf("%s%.*s", p->spiffe_prefix, (int)s->agent.len, s->agent.name), &ok);
        put(o, "groups", g, &ok);
        put(o, "named_in_policy", json_boolean(s->agent.idx != UINT32_MAX), &ok);
    }
    if (!ok) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* One considered rule: what happened to it. */
static json_t *considered(const policy *p, const struct policy_rule *r,
                          const struct policy_subject *s, const policy_context *ctx,
                          struct policy_combine *c, const struct policy_rule **deny,
                          const struct policy_rule **near)
{
    json_t *e = json_pack("{s:s, s:s}", "rule", r->id, "effect",
                          r->effect == POLICY_DENY ? "deny" : "allow");
    if (e == NULL)
        return NULL;
    int ok = 1;
    enum policy_miss m = policy_rule_target(p, r, s, 0); /* check everything */
    if (m != POLICY_MISS_NONE) {
        put(e, "result", json_string("not applicable"), &ok);
        put(e, "why", miss_text(r, m, s), &ok);
    } else {
        const char *failed = NULL;
        policy_tri t = policy_cond_eval(&r->cond, ctx, (policy_effect)r->effect, &failed);
        if (r->effect == POLICY_DENY) {
            if (t == POLICY_FALSE) {
                put(e, "result", json_string("not applicable"), &ok);
                put(e, "why", json_sprintf("condition \"%s\" is false", failed), &ok);
            } else {
                put(e, "result", json_string(*deny == NULL ? "DENIES" : "would deny"), &ok);
                if (t == POLICY_UNKNOWN)
                    put(e, "why",
                        json_sprintf("condition \"%s\" cannot be checked (the request lacks "
                                     "it); a deny rule applies when unsure",
                                     failed),
                        &ok);
                else
                    put(e, "why",
                        json_string(r->cond.any ? "targets match and every condition holds"
                                                : "targets match (no conditions)"),
                        &ok);
                if (*deny == NULL)
                    *deny = r;
            }
        } else if (t == POLICY_TRUE) {
            put(e, "result", json_string("MATCHES"), &ok);
            put(e, "why",
                json_string(r->cond.any ? "targets match and every condition holds"
                                        : "targets match (no conditions)"),
                &ok);
            policy_combine_add(c, r);
        } else {
            put(e, "result", json_string("not applicable"), &ok);
            put(e, "why",
                json_sprintf(t == POLICY_UNKNOWN
                                 ? "condition \"%s\" cannot be checked (the request lacks it)"
                                 : "condition \"%s\" is false",
                             failed),
                &ok);
            if (*near == NULL)
                *near = r;
        }
    }
    if (!ok) {
        json_decref(e);
        return NULL;
    }
    return e;
}

ztb_err policy_explain(const policy *p, const policy_request *req, json_t **out)
{
    if (p == NULL || req == NULL || out == NULL)
        return ZTB_ERR_INVALID_ARG;
    *out = NULL;
    policy_decision d;
    ztb_err rv = policy_eval(p, req, &d);
    if (rv != ZTB_OK)
        return rv;
    int ok = 1;
    json_t *ex = json_object();
    if (ex == NULL)
        return ZTB_ERR_NOMEM;
    ztb_buf sum;
    ztb_buf_init(&sum, 16384);
    policy_decision_describe(&d, &sum);
    put(ex, "decision", json_string(policy_effect_name(d.effect)), &ok);
    put(ex, "reason", json_string(policy_reason_name(d.reason)), &ok);
    put(ex, "summary", json_string(ztb_buf_cstr(&sum)), &ok);
    ztb_buf_free(&sum);
    put(ex, "rule", d.rule ? json_string(d.rule) : json_null(), &ok);
    if (d.other_rule != NULL)
        put(ex, "other_rule", json_string(d.other_rule), &ok);
    put(ex, "detail", d.detail ? json_string(d.detail) : json_null(), &ok);
    put(ex, "policy",
        json_pack("{s:s, s:s, s:i}", "digest", p->digest, "trust_domain", p->trust_domain, "rules",
                  (json_int_t)p->n_rules),
        &ok);

    struct policy_subject s;
    const char *bad = policy_subject_resolve(p, req, &s);
    put(ex, "request", request_json(p, req, &s, bad == NULL), &ok);
    json_t *cons = json_array();
    json_t *matched = json_array();
    put(ex, "considered", cons, &ok);
    put(ex, "matched", matched, &ok);
    struct policy_combine c;
    policy_combine_init(&c);
    const struct policy_rule *deny = NULL, *near = NULL;
    uint32_t n_considered = 0;
    if (bad == NULL && ok) {
        struct policy_candidates it;
        const struct policy_rule *r;
        policy_candidates_init(p, &s, &it);
        while ((r = policy_candidates_next(p, &it)) != NULL) {
            push(cons, considered(p, r, &s, &req->ctx, &c, &deny, &near), &ok);
            n_considered++;
        }
        put(ex, "not_considered",
            json_sprintf("%u other rule%s cover%s other actions or audiences",
                         p->n_rules - n_considered, p->n_rules - n_considered == 1 ? "" : "s",
                         p->n_rules - n_considered == 1 ? "s" : ""),
            &ok);
    }
    /* the same rules, in the same order, through the same code: same answer */
    policy_effect effect = POLICY_DENY;
    const char *rule = NULL;
    if (bad == NULL && deny != NULL) {
        rule = deny->id;
    } else if (bad == NULL && c.n > 0 && c.conflict != NULL) {
        rule = c.conflict_a->id;
    } else if (bad == NULL && c.n > 0) {
        effect = c.approval ? POLICY_APPROVAL_REQUIRED : POLICY_ALLOW;
        rule = c.approval ? c.approval->id : c.primary->id;
        for (size_t i = 0; i < json_array_size(cons); i++) {
            json_t *e = json_array_get(cons, i);
            if (strcmp(json_string_value(json_object_get(e, "result")), "MATCHES") == 0)
                push(matched, json_incref(json_object_get(e, "rule")), &ok);
        }
        put(ex, "obligations", obligations_json(p, &c, &d.ob), &ok);
    } else if (bad == NULL && near != NULL) {
        rule = near->id;
    }
    if (ok && (effect != d.effect || (rule == NULL) != (d.rule == NULL) ||
               (rule != NULL && strcmp(rule, d.rule) != 0))) {
        json_decref(ex);
        return ZTB_ERR_INTERNAL;
    }
    if (!ok) {
        json_decref(ex);
        return ZTB_ERR_NOMEM;
    }
    *out = ex;
    return ZTB_OK;
}

/* ---- text --------------------------------------------------------------- */

static const char *jstr(const json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "-";
}

/* Print an untrusted string: as is when printable, else JSON-escaped in quotes. */
static void safe(ztb_buf *b, const char *s)
{
    if (ztb_utf8_printable(s, strlen(s))) {
        ztb_buf_append_str(b, s);
    } else {
        ztb_buf_append_byte(b, '"');
        ztb_buf_append_json_escaped(b, s, strlen(s));
        ztb_buf_append_byte(b, '"');
    }
}

static void line(ztb_buf *b, const char *label, const char *value)
{
    ztb_buf_printf(b, "  %-22s", label);
    safe(b, value);
    ztb_buf_append_byte(b, '\n');
}

static void rate_line(ztb_buf *b, const char *label, const json_t *r)
{
    char v[96];
    snprintf(v, sizeof(v), "%lld per %lld s, burst %lld",
             (long long)json_integer_value(json_object_get(r, "rate")),
             (long long)json_integer_value(json_object_get(r, "period")),
             (long long)json_integer_value(json_object_get(r, "burst")));
    ztb_buf_printf(b, "  %-22s%-30s %s\n", label, v, jstr(r, "from"));
}

ztb_err policy_explain_text(const json_t *ex, ztb_buf *b)
{
    const json_t *req = json_object_get(ex, "request");
    const json_t *pol = json_object_get(ex, "policy");
    char up[32];
    snprintf(up, sizeof(up), "%s", jstr(ex, "decision"));
    for (char *c = up; *c; c++)
        if (*c >= 'a' && *c <= 'z')
            *c = (char)(*c - 'a' + 'A');
    ztb_buf_printf(b, "decision: %s\n", up);
    ztb_buf_append_str(b, "because:  ");
    safe(b, jstr(ex, "summary"));
    ztb_buf_printf(b, "\npolicy:   sha256:%.16s... (%s, %lld rules)\n", jstr(pol, "digest"),
                   jstr(pol, "trust_domain"),
                   (long long)json_integer_value(json_object_get(pol, "rules")));

    ztb_buf_append_str(b, "\nrequest\n");
    line(b, "agent", jstr(req, "agent"));
    if (json_object_get(req, "spiffe_id") != NULL) {
        line(b, "spiffe id", jstr(req, "spiffe_id"));
        ztb_buf_printf(b, "  %-22s", "groups");
        const json_t *g = json_object_get(req, "groups");
        if (json_array_size(g) == 0)
            ztb_buf_append_str(b, "(none)");
        for (size_t i = 0; i < json_array_size(g); i++)
            ztb_buf_printf(b, "%s%s", i ? ", " : "", json_string_value(json_array_get(g, i)));
        ztb_buf_append_byte(b, '\n');
    }
    line(b, "action", jstr(req, "action"));
    line(b, "audience", jstr(req, "audience"));
    line(b, "resource",
         json_string_length(json_object_get(req, "resource")) == 0 ? "(none)"
                                                                   : jstr(req, "resource"));
    line(b, "time", jstr(req, "time"));
    line(b, "act",
         json_is_null(json_object_get(req, "act")) ? "(not delegated)" : jstr(req, "act"));
    if (json_is_true(json_object_get(req, "act_restricted")))
        line(b, "act_restricted", "yes (the subject token's may_act names the agent)");
    line(b, "source_ip",
         json_is_null(json_object_get(req, "source_ip")) ? "(unknown)" : jstr(req, "source_ip"));
    const json_t *ad = json_object_get(req, "authorization_details");
    char *ads = json_is_null(ad) ? NULL : json_dumps(ad, JSON_COMPACT | JSON_SORT_KEYS);
    line(b, "authorization_details", ads ? ads : "(none)");
    free(ads);

    const json_t *ob = json_object_get(ex, "obligations");
    if (ob != NULL) {
        ztb_buf_append_str(b, "\nobligations (strictest of the matching rules)\n");
        const json_t *t = json_object_get(ob, "ttl");
        char v[64];
        snprintf(v, sizeof(v), "%lld s (max_ttl %lld)",
                 (long long)json_integer_value(json_object_get(t, "value")),
                 (long long)json_integer_value(json_object_get(t, "max_ttl")));
        ztb_buf_printf(b, "  %-22s%-30s %s\n", "ttl", v, jstr(t, "from"));
        t = json_object_get(ob, "single_use");
        ztb_buf_printf(b, "  %-22s%-30s %s\n", "single_use",
                       json_is_true(json_object_get(t, "value")) ? "yes" : "no", jstr(t, "from"));
        t = json_object_get(ob, "binding");
        ztb_buf_printf(b, "  %-22s%-30s %s\n", "binding", jstr(t, "value"), jstr(t, "from"));
        const json_t *rl = json_object_get(ob, "rate_limits");
        rate_line(b, "rate per agent", json_object_get(rl, "per_agent"));
        rate_line(b, "rate per agent+action", json_object_get(rl, "per_action"));
        t = json_object_get(ob, "approval_required");
        if (json_is_null(t)) {
            ztb_buf_printf(b, "  %-22s%s\n", "approval", "not required");
        } else {
            snprintf(v, sizeof(v), "%lld of group %s",
                     (long long)json_integer_value(json_object_get(t, "approvers")),
                     jstr(t, "group"));
            ztb_buf_printf(b, "  %-22s%-30s rule %s\n", "approval", v, jstr(t, "from"));
        }
    }

    const json_t *cons = json_object_get(ex, "considered");
    if (json_is_array(cons) && json_object_get(req, "spiffe_id") != NULL) {
        ztb_buf_append_str(b, "\nrules considered (deny rules first, then by id)\n");
        if (json_array_size(cons) == 0)
            ztb_buf_append_str(b, "  none: no rule covers this action on this audience\n");
        size_t w = 4;
        for (size_t i = 0; i < json_array_size(cons); i++)
            if (strlen(jstr(json_array_get(cons, i), "rule")) > w)
                w = strlen(jstr(json_array_get(cons, i), "rule"));
        for (size_t i = 0; i < json_array_size(cons); i++) {
            const json_t *e = json_array_get(cons, i);
            ztb_buf_printf(b, "  %-5s %-*s  %-14s  ", jstr(e, "effect"), (int)w, jstr(e, "rule"),
                           jstr(e, "result"));
            safe(b, jstr(e, "why"));
            ztb_buf_append_byte(b, '\n');
        }
        ztb_buf_printf(b, "  (%s)\n", jstr(ex, "not_considered"));
    }
    return ztb_buf_error(b);
}
