/*
 * admin.c - admin API handlers (see admin.h).
 *
 * Input is JSON checked field by field (unknown fields are refused, so a
 * typo never silently means "default"). Redis trouble is 503 like
 * everywhere else. Join tokens appear in exactly one place: the response
 * to the operator who asked for them (never in a log or the audit line).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "broker/admin/admin.h"
#include "broker/admin/admin_roles.h"
#include "broker/admin/admin_inventory.h"
#include "broker/audit/audit.h"
#include "broker/broker.h"
#include "broker/signer/keys.h"
#include "broker/admin/reload.h"
#include "broker/signals/revocation.h"
#include "broker/store/store.h"
#include "broker/store/store_baseline.h"
#include "common/secret.h"
#include "wire/wire.h"

/* The caller's audit actor, "operator:NAME" (admin_roles.h). */
static void operator_actor(const struct http_req *req, char *out, size_t cap)
{
    admin_caller_actor(req, out, cap);
}

static void store_error(struct http_resp *resp, ztb_err rv, const char *what)
{
    switch (rv) {
    case ZTB_ERR_NOT_FOUND: http_resp_error(resp, 404, "not_found", what); break;
    case ZTB_ERR_EXISTS: http_resp_error(resp, 409, "conflict", what); break;
    case ZTB_ERR_INVALID_ARG: http_resp_error(resp, 400, "invalid_request", what); break;
    case ZTB_ERR_UNAVAILABLE:
        http_resp_error(resp, 503, "temporarily_unavailable", "Redis is not answering");
        http_resp_header(resp, "Retry-After", "1");
        break;
    default: http_resp_error(resp, 500, "server_error", ztb_strerror(rv));
    }
}

static json_t *agent_json(const struct broker *b, const struct store_agent *a)
{
    char spiffe[256];
    snprintf(spiffe, sizeof(spiffe), "spiffe://%s/agent/%s", b->cfg.trust_domain, a->name);
    return json_pack("{s:s,s:s,s:s,s:I,s:b,s:b,s:I}", "name", a->name, "spiffe_id", spiffe,
                     "status", a->status, "generation", (json_int_t)a->generation, "quarantined",
                     a->quarantined, "approval_required", a->approval_required, "created",
                     (json_int_t)a->created);
}

/*
 * Add what `ztbctl agent show` needs about the agent's identity document to
 * o: whether it holds a current one, its SHA-256 thumbprint (x5t#S256, the
 * certificate's name in tokens' cnf), its serial number (hex) and its
 * expiry; absent values are null.
 */
static void identity_json(json_t *o, const struct store_agent_auth *id)
{
    json_object_set_new(o, "identity_current", json_boolean(id->enrolled));
    json_object_set_new(o, "identity_x5t", id->x5t[0] ? json_string(id->x5t) : json_null());
    json_object_set_new(o, "identity_serial",
                        id->serial[0] ? json_string(id->serial) : json_null());
    json_object_set_new(o, "identity_expires",
                        id->identity_exp > 0 ? json_integer((json_int_t)id->identity_exp)
                                             : json_null());
}

/* Refuse any field not in allowed (NULL-terminated). */
static int only_fields(json_t *obj, const char *const *allowed, struct http_resp *resp)
{
    const char *k;
    json_t *v;
    json_object_foreach(obj, k, v)
    {
        int ok = 0;
        for (const char *const *a = allowed; *a; a++)
            ok |= strcmp(*a, k) == 0;
        if (!ok) {
            char msg[128];
            snprintf(msg, sizeof(msg), "unknown field '%.64s'", k);
            http_resp_error(resp, 400, "invalid_request", msg);
            return 0;
        }
    }
    return 1;
}

/* Create a join token for agent and put it into obj; returns the status. */
static int add_join_token(const char *agent, unsigned ttl, const char *actor, json_t *obj,
                          struct http_resp *resp)
{
    char tok[STORE_JOIN_TOKEN_LEN + 1];
    ztb_err rv = store_join_create(agent, ttl, (int64_t)time(NULL), tok);
    if (rv != ZTB_OK) {
        store_error(resp, rv, "no such agent");
        return 0;
    }
    json_object_set_new(obj, "join_token", json_string(tok));
    json_object_set_new(obj, "join_token_expires_in", json_integer(ttl));
    ztb_wipe(tok, sizeof(tok));
    audit("admin.join_token_created", actor, 0, ZTB_F_STR("agent", agent), ZTB_F_INT("ttl", ttl));
    return 1;
}

static unsigned ttl_from(const struct broker *b, json_t *body, struct http_resp *resp, int *ok)
{
    *ok = 1;
    json_t *t = body ? json_object_get(body, "ttl") : NULL;
    if (t == NULL)
        return b->cfg.join_ttl_s;
    if (!json_is_integer(t) || json_integer_value(t) < 1 || json_integer_value(t) > 7 * 86400) {
        http_resp_error(resp, 400, "invalid_request", "ttl must be 1..604800 seconds");
        *ok = 0;
        return 0;
    }
    return (unsigned)json_integer_value(t);
}

void handle_admin_agents(struct http_req *req, struct http_resp *resp)
{
    char actor[64];
    operator_actor(req, actor, sizeof(actor));
    if (strcmp(req->method, "GET") == 0) {
        char(*names)[STORE_NAME_MAX + 1];
        size_t n;
        ztb_err rv = store_agent_list(&names, &n);
        if (rv != ZTB_OK) {
            store_error(resp, rv, "cannot list agents");
            return;
        }
        json_t *arr = json_array();
        for (size_t i = 0; i < n; i++) {
            struct store_agent a;
            if (store_agent_get(names[i], &a) == ZTB_OK)
                json_array_append_new(arr, agent_json(broker_of(req), &a));
        }
        free(names);
        http_resp_json_value(resp, 200, json_pack("{s:o}", "agents", arr));
        return;
    }
    json_t *body = http_req_json_object(req, resp);
    if (body == NULL)
        return;
    static const char *const fields[] = {"name", "ttl", "owner", "description", NULL};
    int ok = only_fields(body, fields, resp);
    unsigned ttl = ok ? ttl_from(broker_of(req), body, resp, &ok) : 0;
    const char *owner = NULL, *description = NULL;
    if (ok)
        ok = admin_agent_meta_read(body, &owner, &description, resp);
    const char *name = json_string_value(json_object_get(body, "name"));
    if (ok && (name == NULL || !store_agent_name_ok(name))) {
        http_resp_error(resp, 400, "invalid_request",
                        "name must be 1-63 of [a-z0-9._-], starting with a letter or digit");
        ok = 0;
    }
    if (ok) {
        ztb_err rv = store_agent_add(name, (int64_t)time(NULL));
        if (rv == ZTB_OK)
            rv = store_agent_set_meta(name, owner, description);
        if (rv != ZTB_OK) {
            store_error(resp, rv, rv == ZTB_ERR_EXISTS ? "agent exists" : "cannot add agent");
        } else {
            audit("admin.agent_added", actor, 1, ZTB_F_STR("agent", name),
                  ZTB_F_STR("owner", owner), ZTB_F_STR("description", description));
            struct store_agent a;
            if (store_agent_get(name, &a) != ZTB_OK) {
                http_resp_error(resp, 503, "temporarily_unavailable", "Redis is not answering");
            } else {
                json_t *out = agent_json(broker_of(req), &a);
                if (add_join_token(name, ttl, actor, out, resp))
                    http_resp_json_value(resp, 201, out);
                else
                    json_decref(out);
            }
        }
    }
    json_decref(body);
}

void handle_admin_agent(struct http_req *req, struct http_resp *resp)
{
    char actor[64];
    operator_actor(req, actor, sizeof(actor));
    /* /v1/agents/NAME[/verb] */
    const char *rest = req->path + strlen("/v1/agents/");
    char name[STORE_NAME_MAX + 1];
    const char *slash = strchr(rest, '/');
    size_t nl = slash ? (size_t)(slash - rest) : strlen(rest);
    const char *verb = slash ? slash + 1 : "";
    if (nl == 0 || nl > STORE_NAME_MAX) {
        http_resp_error(resp, 404, "not_found", "no such agent");
        return;
    }
    memcpy(name, rest, nl);
    name[nl] = '\0';
    if (!store_agent_name_ok(name)) {
        http_resp_error(resp, 404, "not_found", "no such agent");
        return;
    }
    if (strcmp(verb, "baseline") == 0) {
        handle_admin_agent_baseline(req, resp, name);
        return;
    }
    int get = strcmp(req->method, "GET") == 0, post = strcmp(req->method, "POST") == 0;
    if (get && verb[0] == '\0') {
        struct store_agent a;
        ztb_err rv = store_agent_get(name, &a);
        if (rv != ZTB_OK) {
            store_error(resp, rv, "no such agent");
            return;
        }
        json_t *o = agent_json(broker_of(req), &a);
        struct store_agent_auth id;
        rv = store_agent_auth_get(name, &id);
        if (rv != ZTB_OK) {
            json_decref(o);
            store_error(resp, rv, "no such agent");
            return;
        }
        identity_json(o, &id);
        if (!admin_agent_activity_json(o, name)) {
            json_decref(o);
            http_resp_error(resp, 503, "temporarily_unavailable", "Redis is not answering");
            return;
        }
        http_resp_json_value(resp, 200, o);
        return;
    }
    if (strcmp(req->method, "DELETE") == 0 && verb[0] == '\0') {
        /* every token, identity and session dies first (the generation is
         * raised, announced to verifiers and audited), then the name goes;
         * its tombstone keeps the generation so that it is never reused */
        struct store_agent a;
        ztb_err rv = store_agent_get(name, &a);
        if (rv != ZTB_OK) {
            store_error(resp, rv, "no such agent");
            return;
        }
        struct rev_request rq = {.response = POLICY_RESPONSE_REVOKE_ALL,
                                 .target = name,
                                 .actor = actor,
                                 .cause = "operator",
                                 .reason = "agent deleted"};
        struct rev_result res = {0};
        rv = revocation_apply(&rq, &res);
        if (rv != ZTB_OK && rv != ZTB_ERR_IO) {
            store_error(resp, rv, "no such agent");
            return;
        }
        rv = store_agent_delete(name);
        if (rv != ZTB_OK) {
            store_error(resp, rv, "no such agent");
            return;
        }
        audit("admin.agent_deleted", actor, 1, ZTB_F_STR("agent", name),
              ZTB_F_INT("generation", res.gen));
        http_resp_json_value(resp, 200,
                             json_pack("{s:s,s:b,s:I}", "name", name, "deleted", 1,
                                       "retired_generation", (json_int_t)res.gen));
        return;
    }
    if (post && (strcmp(verb, "disable") == 0 || strcmp(verb, "enable") == 0)) {
        const char *status = verb[0] == 'd' ? "disabled" : "active";
        ztb_err rv = store_agent_set_status(name, status);
        if (rv != ZTB_OK) {
            store_error(resp, rv, "no such agent");
            return;
        }
        audit(verb[0] == 'd' ? "admin.agent_disabled" : "admin.agent_enabled", actor, 1,
              ZTB_F_STR("agent", name));
        struct store_agent a;
        if (store_agent_get(name, &a) == ZTB_OK)
            http_resp_json_value(resp, 200, agent_json(broker_of(req), &a));
        else
            http_resp_error(resp, 503, "temporarily_unavailable", "Redis is not answering");
        return;
    }
    if (post && strcmp(verb, "join-tokens") == 0) {
        json_t *body = NULL;
        if (req->body_len > 0 && (body = http_req_json_object(req, resp)) == NULL)
            return;
        static const char *const fields[] = {"ttl", NULL};
        int ok = body == NULL || only_fields(body, fields, resp);
        unsigned ttl = ok ? ttl_from(broker_of(req), body, resp, &ok) : 0;
        if (ok) {
            json_t *out = json_pack("{s:s}", "agent", name);
            if (add_join_token(name, ttl, actor, out, resp))
                http_resp_json_value(resp, 201, out);
            else
                json_decref(out);
        }
        json_decref(body);
        return;
    }
    if (verb[0] == '\0' || strcmp(verb, "disable") == 0 || strcmp(verb, "enable") == 0 ||
        strcmp(verb, "join-tokens") == 0)
        http_resp_error(resp, 405, "invalid_request", "method not allowed");
    else
        http_resp_error(resp, 404, "not_found", "no such endpoint");
}

void handle_admin_keys(struct http_req *req, struct http_resp *resp)
{
    (void)req;
    char *list = NULL;
    ztb_err rv = keys_list_json(&list);
    if (rv == ZTB_ERR_STATE) {
        http_resp_error(resp, 409, "conflict", "no key store is loaded");
        return;
    }
    if (rv != ZTB_OK) {
        http_resp_error(resp, 500, "server_error", ztb_strerror(rv));
        return;
    }
    json_error_t e;
    json_t *arr = json_loads(list, 0, &e);
    free(list);
    http_resp_json_value(resp, 200, json_pack("{s:o}", "keys", arr ? arr : json_array()));
}

void handle_admin_keys_rotate(struct http_req *req, struct http_resp *resp)
{
    char actor[64];
    operator_actor(req, actor, sizeof(actor));
    int force = 0;
    if (req->body_len > 0) {
        json_t *body = http_req_json_object(req, resp);
        if (body == NULL)
            return;
        static const char *const fields[] = {"force", NULL};
        json_t *f = json_object_get(body, "force");
        int ok = only_fields(body, fields, resp);
        if (ok && f != NULL && !json_is_boolean(f)) {
            http_resp_error(resp, 400, "invalid_request", "force must be true or false");
            ok = 0;
        }
        force = json_is_true(f);
        json_decref(body);
        if (!ok)
            return;
    }
    ztb_rotate_result res;
    ztb_err rv = keys_rotate((int64_t)time(NULL), force, &res);
    if (rv == ZTB_ERR_STATE && !keys_loaded()) {
        http_resp_error(resp, 409, "conflict", "no key store is loaded");
        return;
    }
    if (rv != ZTB_OK) {
        /* e.g. the next key has not been published long enough */
        http_resp_error(resp, 409, "conflict", ztb_strerror(rv));
        audit("admin.keys_rotate_refused", actor, 1, ZTB_F_ERR(rv), ZTB_F_BOOL("force", force));
        return;
    }
    const char *what = res.action == ZTB_ROTATE_PUBLISHED ? "published" : "promoted";
    audit("admin.keys_rotated", actor, 1, ZTB_F_STR("action", what), ZTB_F_STR("kid", res.kid),
          ZTB_F_BOOL("force", force));
    http_resp_json_value(resp, 200,
                         json_pack("{s:s,s:s,s:I}", "action", what, "kid", res.kid, "promotable_at",
                                   (json_int_t)res.promotable_at));
}

void handle_admin_policy_reload(struct http_req *req, struct http_resp *resp)
{
    char actor[64], digest[65];
    operator_actor(req, actor, sizeof(actor));
    json_t *problems = NULL;
    ztb_err rv = broker_policy_reload(broker_of(req), actor, digest, &problems);
    if (rv == ZTB_ERR_STATE) {
        http_resp_error(resp, 409, "conflict", "the broker was started without --policy");
        return;
    }
    if (rv != ZTB_OK) {
        json_t *j = json_pack("{s:s,s:s,s:s,s:o}", "error", "invalid_policy", "error_description",
                              "the new policy was refused; the old one stays in force",
                              ZTB_WIRE_ERROR_MEMBER, ztb_err_name(ZTB_ERR_POLICY), "problems",
                              problems ? problems : json_array());
        http_resp_json_value(resp, 400, j);
        return;
    }
    http_resp_json_value(resp, 200, json_pack("{s:s,s:s}", "status", "loaded", "digest", digest));
}

/* Shared with the other admin handlers (admin.h) -------------------------------*/

void admin_operator_actor(const struct http_req *req, char *out, size_t cap)
{
    operator_actor(req, out, cap);
}

void admin_store_error(struct http_resp *resp, ztb_err rv, const char *what)
{
    store_error(resp, rv, what);
}

int admin_only_fields(json_t *obj, const char *const *allowed, struct http_resp *resp)
{
    return only_fields(obj, allowed, resp);
}
