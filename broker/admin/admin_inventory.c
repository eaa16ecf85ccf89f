/*
 * admin_inventory.c - agents' baselines and the inventory, for operators
 * (see admin_inventory.h). Reads Redis through store_baseline.h; the only
 * change it makes is a new learning window, which is audited.
 */
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "broker/admin/admin.h"
#include "broker/admin/admin_inventory.h"
#include "broker/audit/audit.h"
#include "broker/broker.h"
#include "broker/store/store.h"
#include "broker/store/store_baseline.h"
#include "broker/store/store_detect.h"
#include "policy/holder.h"
#include "policy/policy.h"

/* The baseline with the agent's activity added: what `agent baseline` shows. */
static void baseline_answer(struct http_resp *resp, const char *name)
{
    json_t *o = NULL;
    ztb_err rv = store_baseline_get(name, &o);
    int64_t last = 0, day = 0;
    if (rv == ZTB_OK)
        rv = store_activity_get(name, &last, &day);
    if (rv != ZTB_OK) {
        json_decref(o);
        admin_store_error(resp, rv, rv == ZTB_ERR_NOT_FOUND ? "no such agent" : "cannot read");
        return;
    }
    json_object_set_new(o, "last_seen", last > 0 ? json_integer(last) : json_null());
    json_object_set_new(o, "tokens_last_day", json_integer(day));
    http_resp_json_value(resp, 200, o);
}

void handle_admin_agent_baseline(struct http_req *req, struct http_resp *resp, const char *name)
{
    if (strcmp(req->method, "GET") == 0) {
        baseline_answer(resp, name);
        return;
    }
    if (strcmp(req->method, "POST") != 0) {
        http_resp_error(resp, 405, "invalid_request", "method not allowed");
        return;
    }
    json_t *body = http_req_json_object(req, resp);
    if (body == NULL)
        return;
    static const char *const fields[] = {"relearn", "for", NULL};
    json_t *f = json_object_get(body, "for");
    unsigned learn = broker_of(req)->cfg.baseline_learn_s;
    int ok = admin_only_fields(body, fields, resp);
    if (ok && !json_is_true(json_object_get(body, "relearn"))) {
        http_resp_error(resp, 400, "invalid_request", "send {\"relearn\": true}");
        ok = 0;
    }
    if (ok && f != NULL) {
        if (!json_is_integer(f) || json_integer_value(f) < 1 ||
            json_integer_value(f) > 366 * 86400) {
            http_resp_error(resp, 400, "invalid_request", "for: 1..31622400 seconds");
            ok = 0;
        } else {
            learn = (unsigned)json_integer_value(f);
        }
    }
    if (ok && learn == 0) {
        http_resp_error(resp, 400, "invalid_request",
                        "baselines are off (baseline_learn = 0): name a window with \"for\"");
        ok = 0;
    }
    json_decref(body);
    if (!ok)
        return;
    int64_t until = 0;
    ztb_err rv = store_baseline_start(name, learn, 0, &until);
    if (rv != ZTB_OK) {
        admin_store_error(resp, rv, rv == ZTB_ERR_NOT_FOUND ? "no such agent" : "cannot relearn");
        return;
    }
    char actor[64];
    admin_operator_actor(req, actor, sizeof(actor));
    audit("admin.baseline_relearn", actor, 1, ZTB_F_STR("agent", name), ZTB_F_INT("for", learn),
          ZTB_F_INT("until", until));
    baseline_answer(resp, name);
}

/* 1 if s is text for people: no control characters (UTF-8 checked by
 * jansson). */
static int printable(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            return 0;
    return 1;
}

int admin_agent_meta_read(json_t *body, const char **owner, const char **description,
                          struct http_resp *resp)
{
    static const struct {
        const char *name;
        size_t max;
    } f[2] = {{"owner", STORE_OWNER_MAX}, {"description", STORE_DESCRIPTION_MAX}};
    const char **out[2] = {owner, description};
    for (size_t i = 0; i < 2; i++) {
        *out[i] = NULL;
        json_t *v = json_object_get(body, f[i].name);
        if (v == NULL)
            continue;
        const char *s = json_string_value(v);
        if (s == NULL || s[0] == '\0' || strlen(s) > f[i].max || !printable(s)) {
            char why[160];
            snprintf(why, sizeof(why), "%s: 1..%zu bytes of printable text", f[i].name, f[i].max);
            http_resp_error(resp, 400, "invalid_request", why);
            return 0;
        }
        *out[i] = s;
    }
    return 1;
}

int admin_agent_activity_json(json_t *o, const char *name)
{
    char owner[STORE_OWNER_MAX + 1], desc[STORE_DESCRIPTION_MAX + 1];
    struct store_activity act;
    if (store_agent_meta(name, owner, desc) != ZTB_OK ||
        store_activity_read(name, (int64_t)time(NULL), &act) != ZTB_OK)
        return 0;
    json_object_set_new(o, "owner", owner[0] ? json_string(owner) : json_null());
    json_object_set_new(o, "description", desc[0] ? json_string(desc) : json_null());
    json_object_set_new(o, "last_seen",
                        act.last_seen > 0 ? json_integer(act.last_seen) : json_null());
    json_object_set_new(o, "tokens_last_day", json_integer(act.tokens_day));
    json_object_set_new(o, "tokens_last_hour", json_integer(act.tokens_hour));
    json_object_set_new(o, "denied_last_hour", json_integer(act.denied_hour));
    return 1;
}

/* 1 if the policy's agent entry names agent (in groups[0..ng)). */
static int entry_names(const char *entry, const char *agent, const char *td, const char **groups,
                       size_t ng)
{
    if (strcmp(entry, "*") == 0)
        return 1;
    if (strncmp(entry, "group:", 6) == 0) {
        for (size_t i = 0; i < ng; i++)
            if (strcmp(groups[i], entry + 6) == 0)
                return 1;
        return 0;
    }
    char prefix[320];
    snprintf(prefix, sizeof(prefix), "spiffe://%s/agent/", td);
    if (strncmp(entry, prefix, strlen(prefix)) == 0)
        entry += strlen(prefix);
    return fnmatch(entry, agent, 0) == 0;
}

/* The ids of pol's rules that name agent: a new JSON array. */
static json_t *rules_naming(const policy *pol, json_t *doc, const char *agent)
{
    json_t *out = json_array();
    const char *groups[64];
    size_t ng = 0;
    if (pol == NULL || doc == NULL ||
        (policy_agent_groups(pol, agent, groups, 64, &ng) != ZTB_OK && ng == 0))
        ng = 0;
    if (ng > 64)
        ng = 64;
    size_t i;
    json_t *rule;
    json_array_foreach(json_object_get(doc, "rules"), i, rule)
    {
        size_t j;
        json_t *e;
        json_array_foreach(json_object_get(rule, "agents"), j, e)
        {
            const char *s = json_string_value(e);
            if (s != NULL && entry_names(s, agent, policy_trust_domain(pol), groups, ng)) {
                json_t *id = json_object_get(rule, "id");
                json_array_append(out, id ? id : json_null());
                break;
            }
        }
    }
    return out;
}

/* One agent's inventory entry, or NULL if Redis could not answer. */
static json_t *inventory_entry(const struct broker *b, const policy *pol, json_t *doc,
                               const char *name)
{
    struct store_agent a;
    struct store_agent_auth id;
    json_t *auds = NULL;
    if (store_agent_get(name, &a) != ZTB_OK || store_agent_auth_get(name, &id) != ZTB_OK ||
        store_detect_audiences(name, &auds) != ZTB_OK)
        return NULL;
    char spiffe[256];
    snprintf(spiffe, sizeof(spiffe), "spiffe://%s/agent/%s", b->cfg.trust_domain, name);
    json_t *o = json_pack("{s:s,s:s,s:s,s:b,s:o,s:o}", "name", name, "spiffe_id", spiffe, "status",
                          a.status, "quarantined", a.quarantined, "rules",
                          rules_naming(pol, doc, name), "audiences", auds);
    json_object_set_new(o, "identity_expires",
                        id.identity_exp > 0 ? json_integer(id.identity_exp) : json_null());
    if (!admin_agent_activity_json(o, name)) {
        json_decref(o);
        return NULL;
    }
    return o;
}

void handle_admin_inventory(struct http_req *req, struct http_resp *resp)
{
    if (strcmp(req->method, "GET") != 0) {
        http_resp_error(resp, 405, "invalid_request", "method not allowed");
        return;
    }
    const struct broker *b = broker_of(req);
    char(*names)[STORE_NAME_MAX + 1] = NULL;
    size_t n = 0;
    json_t *unknown = NULL;
    ztb_err rv = store_agent_list(&names, &n);
    if (rv == ZTB_OK)
        rv = store_unknown_clients(&unknown);
    if (rv != ZTB_OK) {
        free(names);
        admin_store_error(resp, rv, "cannot read the inventory");
        return;
    }
    policy *pol = b->policy ? policy_holder_acquire(b->policy) : NULL;
    json_t *doc = NULL;
    if (pol != NULL) {
        size_t len = 0;
        const char *text = policy_document(pol, &len);
        json_error_t e;
        doc = text ? json_loadb(text, len, 0, &e) : NULL; /* the broker's own, loaded policy */
    }
    json_t *agents = json_array();
    for (size_t i = 0; i < n && rv == ZTB_OK; i++) {
        json_t *o = inventory_entry(b, pol, doc, names[i]);
        if (o == NULL)
            rv = ZTB_ERR_UNAVAILABLE;
        else
            json_array_append_new(agents, o);
    }
    json_decref(doc);
    if (pol != NULL)
        policy_holder_release(pol);
    free(names);
    if (rv != ZTB_OK) {
        json_decref(agents);
        json_decref(unknown);
        admin_store_error(resp, rv, "cannot read the inventory");
        return;
    }
    http_resp_json_value(resp, 200,
                         json_pack("{s:o,s:o}", "agents", agents, "unknown_clients", unknown));
}
