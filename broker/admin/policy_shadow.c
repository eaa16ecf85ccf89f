/*
 * policy_shadow.c - a candidate policy evaluated beside the enforced one
 * (see policy_shadow.h).
 *
 * The candidate is a policy reference under a mutex (taken for a pointer
 * copy and a reference count, never while loading or evaluating); `loaded`
 * lets the token path skip all of it with one atomic load when there is no
 * candidate. Differences are grouped by (enforced effect and rule, candidate
 * effect and rule, kind) in a fixed table: a flood of distinct requests
 * cannot grow it, and what does not fit is counted as dropped.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "broker/admin/admin.h"
#include "broker/admin/policy_shadow.h"
#include "broker/audit/audit.h"
#include "broker/broker.h"
#include "broker/http/metrics.h"
#include "common/log.h"
#include "policy/policy.h"
#include "wire/wire.h"

#define SHADOW_GROUPS   64 /* distinct (enforced, candidate) outcome pairs kept */
#define SHADOW_EXAMPLES 3  /* requests kept per group */

struct shadow_example {
    char agent[160];
    char action[128];
    char audience[256];
    char resource[256];
    int64_t at;
};

struct shadow_group {
    policy_effect enforced, candidate;
    char enforced_rule[65], candidate_rule[65]; /* "" when no rule decided */
    int obligations_only;                       /* same effect, other obligations */
    uint64_t count;
    int64_t first_seen, last_seen;
    unsigned n_examples;
    struct shadow_example ex[SHADOW_EXAMPLES];
};

struct policy_shadow {
    pthread_mutex_t mu;
    _Atomic int loaded;
    policy *cand; /* under mu */
    char loaded_by[64];
    int64_t loaded_at;
    uint64_t evaluated, differing, dropped; /* under mu, since the candidate was loaded */
    unsigned n_groups;
    struct shadow_group groups[SHADOW_GROUPS];
};

ztb_err policy_shadow_new(struct policy_shadow **out)
{
    struct policy_shadow *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return ZTB_ERR_NOMEM;
    pthread_mutex_init(&s->mu, NULL);
    *out = s;
    return ZTB_OK;
}

void policy_shadow_free(struct policy_shadow *s)
{
    if (s == NULL)
        return;
    policy_unref(s->cand);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

policy *policy_shadow_set(struct policy_shadow *s, policy *next, const char *actor)
{
    pthread_mutex_lock(&s->mu);
    policy *old = s->cand;
    s->cand = next;
    s->evaluated = s->differing = s->dropped = 0;
    s->n_groups = 0;
    s->loaded_at = (int64_t)time(NULL);
    snprintf(s->loaded_by, sizeof(s->loaded_by), "%s", actor ? actor : "");
    atomic_store(&s->loaded, next != NULL);
    pthread_mutex_unlock(&s->mu);
    return old;
}

void policy_shadow_counts(struct policy_shadow *s, uint64_t *evaluated, uint64_t *differing)
{
    pthread_mutex_lock(&s->mu);
    *evaluated = s->evaluated;
    *differing = s->differing;
    pthread_mutex_unlock(&s->mu);
}

/* A new reference to the candidate, or NULL. */
static policy *candidate(struct policy_shadow *s)
{
    if (s == NULL || !atomic_load_explicit(&s->loaded, memory_order_relaxed))
        return NULL;
    pthread_mutex_lock(&s->mu);
    policy *p = policy_ref(s->cand);
    pthread_mutex_unlock(&s->mu);
    return p;
}

static int same_rate(const policy_rate *a, const policy_rate *b)
{
    return a->rate == b->rate && a->burst == b->burst && a->period == b->period;
}

int policy_shadow_differs(const policy_decision *a, const policy_decision *b)
{
    if (a->effect != b->effect)
        return 1;
    if (a->effect == POLICY_DENY)
        return 0; /* a deny has no obligations; which rule denied is in the report */
    const policy_obligations *x = &a->ob, *y = &b->ob;
    const char *ga = x->approval_group ? x->approval_group : "";
    const char *gb = y->approval_group ? y->approval_group : "";
    return x->ttl != y->ttl || x->single_use != y->single_use || x->binding != y->binding ||
           !same_rate(&x->per_agent, &y->per_agent) || !same_rate(&x->per_action, &y->per_action) ||
           strcmp(ga, gb) != 0 || x->approvers != y->approvers;
}

static void copy(char *dst, size_t cap, const char *src)
{
    snprintf(dst, cap, "%s", src ? src : "");
}

/* Count one difference in its group (under s->mu). */
static void count_difference(struct policy_shadow *s, const policy_request *req,
                             const policy_decision *enf, const policy_decision *cand, int64_t now)
{
    const char *er = enf->rule ? enf->rule : "", *cr = cand->rule ? cand->rule : "";
    int obl = enf->effect == cand->effect;
    struct shadow_group *g = NULL;
    for (unsigned i = 0; i < s->n_groups && g == NULL; i++) {
        struct shadow_group *x = &s->groups[i];
        if (x->enforced == enf->effect && x->candidate == cand->effect &&
            x->obligations_only == obl && strcmp(x->enforced_rule, er) == 0 &&
            strcmp(x->candidate_rule, cr) == 0)
            g = x;
    }
    if (g == NULL) {
        if (s->n_groups == SHADOW_GROUPS) {
            s->dropped++;
            return;
        }
        g = &s->groups[s->n_groups++];
        memset(g, 0, sizeof(*g));
        g->enforced = enf->effect;
        g->candidate = cand->effect;
        g->obligations_only = obl;
        copy(g->enforced_rule, sizeof(g->enforced_rule), er);
        copy(g->candidate_rule, sizeof(g->candidate_rule), cr);
        g->first_seen = now;
    }
    g->count++;
    g->last_seen = now;
    if (g->n_examples < SHADOW_EXAMPLES) {
        struct shadow_example *e = &g->ex[g->n_examples++];
        copy(e->agent, sizeof(e->agent), req->agent);
        copy(e->action, sizeof(e->action), req->action);
        copy(e->audience, sizeof(e->audience), req->audience);
        copy(e->resource, sizeof(e->resource), req->resource);
        e->at = now;
    }
}

void policy_shadow_observe(struct policy_shadow *s, const policy_request *req,
                           const policy_decision *enforced)
{
    policy *p = candidate(s);
    if (p == NULL)
        return;
    policy_decision d;
    int differs = policy_eval(p, req, &d) == ZTB_OK && policy_shadow_differs(enforced, &d);
    int64_t now = req->ctx.now ? req->ctx.now : (int64_t)time(NULL);
    pthread_mutex_lock(&s->mu);
    /* counted only while this candidate is still the one loaded */
    if (s->cand == p) {
        s->evaluated++;
        if (differs) {
            s->differing++;
            count_difference(s, req, enforced, &d, now);
        }
    }
    pthread_mutex_unlock(&s->mu);
    metrics_add(METRIC_POLICY_SHADOW_EVALUATIONS, 1);
    if (differs) {
        metrics_add(METRIC_POLICY_SHADOW_DIFFERENCES, 1);
        audit("policy.shadow_differs", "policy:shadow", 0, ZTB_F_STR("agent", req->agent),
              ZTB_F_STR("action", req->action), ZTB_F_STR("audience", req->audience),
              ZTB_F_STR("resource", req->resource),
              ZTB_F_STR("enforced", policy_effect_name(enforced->effect)),
              ZTB_F_STR("enforced_rule", enforced->rule),
              ZTB_F_STR("candidate", policy_effect_name(d.effect)),
              ZTB_F_STR("candidate_rule", d.rule), ZTB_F_STR("candidate_digest", policy_digest(p)));
    }
    policy_unref(p);
}

/* ---- admin API ------------------------------------------------------------ */

static void iso8601(int64_t t, char out[32])
{
    time_t tt = (time_t)t;
    struct tm tm;
    if (t <= 0 || gmtime_r(&tt, &tm) == NULL || strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(out, 32, "%s", "");
}

static json_t *time_json(int64_t t)
{
    char s[32];
    iso8601(t, s);
    return s[0] ? json_string(s) : json_null();
}

static json_t *side_json(policy_effect e, const char *rule)
{
    return json_pack("{s:s,s:o}", "effect", policy_effect_name(e), "rule",
                     rule[0] ? json_string(rule) : json_null());
}

static int cmp_group(const void *a, const void *b)
{
    const struct shadow_group *x = a, *y = b;
    return x->count < y->count ? 1 : x->count > y->count ? -1 : 0;
}

static void no_candidate(struct http_resp *resp)
{
    http_resp_error(resp, 404, "not_found",
                    "no candidate policy is loaded: ztbctl policy shadow load FILE");
}

static void report(struct broker *b, struct http_resp *resp)
{
    struct policy_shadow *s = b->shadow;
    struct policy_shadow *snap = malloc(sizeof(*snap)); /* copied out of the lock */
    if (snap == NULL) {
        http_resp_error(resp, 500, "server_error", "out of memory");
        return;
    }
    pthread_mutex_lock(&s->mu);
    memcpy(snap, s, sizeof(*snap));
    policy *p = policy_ref(s->cand);
    pthread_mutex_unlock(&s->mu);
    if (p == NULL) {
        free(snap);
        no_candidate(resp);
        return;
    }
    qsort(snap->groups, snap->n_groups, sizeof(snap->groups[0]), cmp_group);
    json_t *groups = json_array();
    for (unsigned i = 0; i < snap->n_groups; i++) {
        const struct shadow_group *g = &snap->groups[i];
        json_t *ex = json_array();
        for (unsigned k = 0; k < g->n_examples; k++)
            json_array_append_new(ex, json_pack("{s:s,s:s,s:s,s:s,s:o}", "agent", g->ex[k].agent,
                                                "action", g->ex[k].action, "audience",
                                                g->ex[k].audience, "resource", g->ex[k].resource,
                                                "at", time_json(g->ex[k].at)));
        json_array_append_new(
            groups, json_pack("{s:o,s:o,s:s,s:I,s:o,s:o,s:o}", "enforced",
                              side_json(g->enforced, g->enforced_rule), "candidate",
                              side_json(g->candidate, g->candidate_rule), "kind",
                              g->obligations_only ? "obligations" : "effect", "count",
                              (json_int_t)g->count, "first_seen", time_json(g->first_seen),
                              "last_seen", time_json(g->last_seen), "examples", ex));
    }
    json_t *j = json_pack("{s:b,s:s,s:I,s:o,s:s,s:I,s:I,s:I,s:o}", "loaded", 1, "digest",
                          policy_digest(p), "rules", (json_int_t)policy_rule_count(p), "loaded_at",
                          time_json(snap->loaded_at), "loaded_by", snap->loaded_by, "evaluated",
                          (json_int_t)snap->evaluated, "differing", (json_int_t)snap->differing,
                          "groups_dropped", (json_int_t)snap->dropped, "groups", groups);
    policy_unref(p);
    free(snap);
    http_resp_json_value(resp, 200, j);
}

static json_t *problems_json(const policy_diag *d)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < d->n; i++) {
        char line[512];
        ztb_buf lb;
        ztb_buf_init_fixed(&lb, line, sizeof(line));
        policy_diag_format(&d->msgs[i], &lb);
        json_array_append_new(arr, json_string(line));
    }
    return arr;
}

static void load(struct broker *b, struct http_req *req, struct http_resp *resp, const char *actor)
{
    policy_diag d;
    policy_diag_init(&d);
    policy *p = NULL;
    ztb_err rv = policy_load(req->body, req->body_len, &p, &d);
    const char *td = b->cfg.trust_domain;
    if (rv == ZTB_OK && td[0] != '\0' && strcmp(policy_trust_domain(p), td) != 0) {
        policy_diag_add(&d, 0, 0, "trust_domain", NULL,
                        "the broker serves trust domain \"%s\", the candidate names \"%s\"", td,
                        policy_trust_domain(p));
        rv = ZTB_ERR_POLICY;
    }
    if (rv != ZTB_OK) {
        json_t *j =
            json_pack("{s:s,s:s,s:s,s:o}", "error", "invalid_policy", "error_description",
                      "the candidate policy was refused; nothing changed", ZTB_WIRE_ERROR_MEMBER,
                      ztb_err_name(ZTB_ERR_POLICY), "problems", problems_json(&d));
        audit("policy.shadow_refused", actor, 1, ZTB_F_ERR(rv),
              ZTB_F_INT("problems", (int64_t)d.n));
        policy_diag_free(&d);
        policy_unref(p);
        http_resp_json_value(resp, 400, j);
        return;
    }
    policy_diag_free(&d);
    audit("policy.shadow_loaded", actor, 1, ZTB_F_STR("digest", policy_digest(p)),
          ZTB_F_INT("rules", (int64_t)policy_rule_count(p)));
    ztb_log(ZTB_LOG_INFO, "policy.shadow_loaded", ZTB_F_STR("digest", policy_digest(p)));
    json_t *j = json_pack("{s:s,s:s,s:I}", "status", "shadowing", "digest", policy_digest(p),
                          "rules", (json_int_t)policy_rule_count(p));
    policy_unref(policy_shadow_set(b->shadow, p, actor));
    http_resp_json_value(resp, 200, j);
}

static void clear(struct broker *b, struct http_resp *resp, const char *actor)
{
    policy *old = policy_shadow_set(b->shadow, NULL, actor);
    if (old == NULL) {
        no_candidate(resp);
        return;
    }
    audit("policy.shadow_cleared", actor, 1, ZTB_F_STR("digest", policy_digest(old)));
    http_resp_json_value(resp, 200,
                         json_pack("{s:s,s:s}", "status", "cleared", "digest", policy_digest(old)));
    policy_unref(old);
}

static void document(struct broker *b, struct http_resp *resp)
{
    policy *p = candidate(b->shadow);
    if (p == NULL) {
        no_candidate(resp);
        return;
    }
    size_t n = 0;
    const char *doc = policy_document(p, &n);
    json_t *j = json_pack("{s:s,s:s,s:s#}", "digest", policy_digest(p), "policy_file",
                          b->cfg.policy_file, "document", doc, n);
    policy_unref(p);
    if (j == NULL) /* not UTF-8 cannot happen: the loader checked the document */
        http_resp_error(resp, 500, "server_error", "cannot render the candidate");
    else
        http_resp_json_value(resp, 200, j);
}

/* Comma-separated strings of a JSON array, for an audit field. */
static void join(const json_t *arr, char *out, size_t cap)
{
    ztb_buf o;
    ztb_buf_init_fixed(&o, out, cap);
    size_t i;
    const json_t *v;
    json_array_foreach(arr, i, v)
    {
        if (i > 0)
            ztb_buf_append_byte(&o, ',');
        ztb_buf_append_str(&o, json_string_value(v));
    }
    if (ztb_buf_error(&o) != ZTB_OK) /* too many to list: the count says how many */
        snprintf(out, cap, "%zu rules (see ztbctl policy diff)", json_array_size(arr));
}

static void promote(struct broker *b, struct http_req *req, struct http_resp *resp,
                    const char *actor)
{
    json_t *body = http_req_json_object(req, resp);
    if (body == NULL)
        return;
    static const char *const fields[] = {"digest", NULL};
    const char *want = json_string_value(json_object_get(body, "digest"));
    policy *cand = NULL, *file = NULL, *old = NULL;
    json_t *diff = NULL;
    if (!admin_only_fields(body, fields, resp))
        goto out;
    if (want == NULL) {
        http_resp_error(resp, 400, "invalid_request", "digest: the candidate's digest is required");
        goto out;
    }
    cand = candidate(b->shadow);
    if (cand == NULL) {
        no_candidate(resp);
        goto out;
    }
    if (strcmp(want, policy_digest(cand)) != 0) {
        http_resp_error(resp, 409, "conflict",
                        "the candidate policy changed since you read it: run the command again");
        goto out;
    }
    if (b->cfg.policy_file[0] == '\0') {
        http_resp_error(resp, 409, "conflict", "the broker was started without --policy");
        goto out;
    }
    /* the file is the policy a restart loads: it must hold the candidate */
    policy_diag d;
    policy_diag_init(&d);
    ztb_err rv = policy_load_file(b->cfg.policy_file, &file, &d);
    policy_diag_free(&d);
    if (rv != ZTB_OK || strcmp(policy_digest(file), want) != 0) {
        char msg[600];
        snprintf(msg, sizeof(msg),
                 "%s does not hold the candidate (%s): write the candidate there first "
                 "(ztbctl policy shadow promote does); nothing changed",
                 b->cfg.policy_file, rv != ZTB_OK ? ztb_strerror(rv) : "another digest");
        http_resp_error(resp, 409, "conflict", msg);
        goto out;
    }
    old = policy_holder_acquire(b->policy);
    size_t n = 0;
    const char *doc = policy_document(cand, &n);
    policy_diag_init(&d);
    rv = policy_holder_reload(b->policy, doc, n, &d);
    if (rv != ZTB_OK) { /* e.g. another trust domain: the start rules apply */
        json_t *j = json_pack("{s:s,s:s,s:s,s:o}", "error", "invalid_policy", "error_description",
                              "the candidate was refused as the enforced policy; nothing changed",
                              ZTB_WIRE_ERROR_MEMBER, ztb_err_name(ZTB_ERR_POLICY), "problems",
                              problems_json(&d));
        policy_diag_free(&d);
        http_resp_json_value(resp, 400, j);
        goto out;
    }
    policy_diag_free(&d);
    metrics_add(METRIC_POLICY_RELOADS, 1);
    policy_unref(policy_shadow_set(b->shadow, NULL, actor));
    if (old != NULL && policy_diff(old, cand, &diff) != ZTB_OK)
        diff = NULL;
    char added[512] = "", removed[512] = "", changed[512] = "", sections[256] = "";
    if (diff != NULL) {
        join(json_object_get(diff, "rules_added"), added, sizeof(added));
        join(json_object_get(diff, "rules_removed"), removed, sizeof(removed));
        join(json_object_get(diff, "rules_changed"), changed, sizeof(changed));
        join(json_object_get(diff, "sections_changed"), sections, sizeof(sections));
    }
    audit("policy.promoted", actor, 1, ZTB_F_STR("file", b->cfg.policy_file),
          ZTB_F_STR("from", old ? policy_digest(old) : NULL), ZTB_F_STR("to", want),
          ZTB_F_STR("rules_added", added), ZTB_F_STR("rules_removed", removed),
          ZTB_F_STR("rules_changed", changed), ZTB_F_STR("sections_changed", sections));
    ztb_log(ZTB_LOG_INFO, "policy.loaded", ZTB_F_STR("file", b->cfg.policy_file),
            ZTB_F_STR("digest", want), ZTB_F_STR("by", "promote"));
    http_resp_json_value(resp, 200,
                         json_pack("{s:s,s:s,s:o}", "status", "promoted", "digest", want, "changes",
                                   diff ? json_incref(diff) : json_null()));
out:
    json_decref(diff);
    policy_unref(file);
    policy_holder_release(old);
    policy_unref(cand);
    json_decref(body);
}

void handle_admin_policy_shadow(struct http_req *req, struct http_resp *resp)
{
    struct broker *b = broker_of(req);
    char actor[64];
    admin_operator_actor(req, actor, sizeof(actor));
    if (strcmp(req->method, "GET") == 0)
        report(b, resp);
    else if (strcmp(req->method, "PUT") == 0)
        load(b, req, resp, actor);
    else if (strcmp(req->method, "DELETE") == 0)
        clear(b, resp, actor);
    else {
        http_resp_header(resp, "Allow", "GET, PUT, DELETE");
        http_resp_error(resp, 405, "invalid_request", "GET, PUT or DELETE");
    }
}

void handle_admin_policy_shadow_sub(struct http_req *req, struct http_resp *resp)
{
    struct broker *b = broker_of(req);
    char actor[64];
    admin_operator_actor(req, actor, sizeof(actor));
    const char *sub = req->path + strlen("/v1/policy/shadow/");
    if (strcmp(sub, "document") == 0 && strcmp(req->method, "GET") == 0)
        document(b, resp);
    else if (strcmp(sub, "promote") == 0 && strcmp(req->method, "POST") == 0)
        promote(b, req, resp, actor);
    else
        http_resp_error(resp, 404, "not_found",
                        "GET /v1/policy/shadow/document or POST /v1/policy/shadow/promote");
}
