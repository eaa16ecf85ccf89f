/*
 * admin_signals.c - admin API for revocation, quarantine, signal sources,
 * signals and operator actions (see admin_signals.h).
 *
 * How it works: each handler checks its JSON body field by field (unknown
 * fields refused), then calls revocation_apply / store_rev / signals, and
 * answers JSON. Redis trouble is 503, like everywhere else.
 *
 * Must never: show a source secret anywhere but the one answer to the
 * operator who created it (never in a log or audit line), or apply an
 * operator action twice (store_action_decide is atomic).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <microhttpd.h>

#include "broker/admin/admin.h"
#include "broker/admin/admin_signals.h"
#include "broker/audit/audit.h"
#include "broker/broker.h"
#include "broker/tokens/introspect.h"
#include "broker/signals/revocation.h"
#include "broker/signals/signals.h"
#include "broker/store/store_actions.h"
#include "broker/store/store_rev.h"
#include "broker/store/store_signals.h"
#include "broker/store/store_sources.h"
#include "common/secret.h"
#include "pki/jwk.h"
#include "pki/jws.h"
#include "policy/policy.h"

#define LIST_MAX 1000

/* A string field: NULL if absent; *bad = 1 if present but not a clean string. */
static const char *str_field(json_t *o, const char *k, int *bad)
{
    json_t *v = json_object_get(o, k);
    if (v == NULL)
        return NULL;
    const char *s = json_string_value(v);
    if (s == NULL || strlen(s) != json_string_length(v) || strlen(s) > 1024) {
        *bad = 1;
        return NULL;
    }
    return s;
}

static size_t query_limit(const struct http_req *req, size_t dflt)
{
    const char *v = MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, "limit");
    if (v == NULL)
        return dflt;
    char *end;
    long n = strtol(v, &end, 10);
    if (*end != '\0' || n < 1)
        return dflt;
    return n > LIST_MAX ? LIST_MAX : (size_t)n;
}

/* ---- revocations --------------------------------------------------------- */

static json_t *result_json(const char *type, const char *id, policy_response_kind k, int lift,
                           const struct rev_result *res)
{
    json_t *o = json_pack("{s:s,s:s,s:s,s:b,s:b,s:I}", "type", type, "id", id, "response",
                          policy_response_name(k), "lift", lift, "changed", res->changed, "exp",
                          (json_int_t)res->exp);
    if (res->gen > 0)
        json_object_set_new(o, "gen", json_integer(res->gen));
    if (res->new_kid[0])
        json_object_set_new(o, "new_kid", json_string(res->new_kid));
    if (res->detail[0])
        json_object_set_new(o, "detail", json_string(res->detail));
    json_object_set_new(o, "audit_record", json_string(revocation_audit_state(res)));
    return o;
}

static void revoke_one(struct http_req *req, struct http_resp *resp, json_t *body)
{
    static const char *const fields[] = {"type", "id", "token", "exp", "lift", "reason", NULL};
    if (!admin_only_fields(body, fields, resp))
        return;
    int bad = 0;
    const char *type = str_field(body, "type", &bad);
    const char *id = str_field(body, "id", &bad);
    const char *tok = json_string_value(json_object_get(body, "token"));
    const char *reason = str_field(body, "reason", &bad);
    json_t *expj = json_object_get(body, "exp");
    json_t *liftj = json_object_get(body, "lift");
    if (bad || type == NULL || (expj && !json_is_integer(expj)) ||
        (liftj && !json_is_boolean(liftj))) {
        http_resp_error(resp, 400, "invalid_request",
                        "type (jti, agent, audience, key) and id required; exp an integer, "
                        "lift a boolean, reason a string");
        return;
    }
    policy_response_kind k;
    if (strcmp(type, "jti") == 0)
        k = POLICY_RESPONSE_REVOKE_TOKEN;
    else if (strcmp(type, "agent") == 0)
        k = POLICY_RESPONSE_REVOKE_ALL;
    else if (strcmp(type, "audience") == 0)
        k = POLICY_RESPONSE_KILL_AUDIENCE;
    else if (strcmp(type, "key") == 0)
        k = POLICY_RESPONSE_TAINT_KEY;
    else {
        http_resp_error(resp, 400, "invalid_request", "type must be jti, agent, audience or key");
        return;
    }
    int lift = json_is_true(liftj);
    if (lift && k != POLICY_RESPONSE_KILL_AUDIENCE) {
        http_resp_error(resp, 400, "invalid_request", "only an audience kill can be lifted");
        return;
    }
    int64_t exp = expj ? (int64_t)json_integer_value(expj) : 0;
    struct introspected t;
    t.valid = 0;
    int exp_verified = 0;
    if (tok != NULL) {
        /* a whole token: revoke its jti until its exp, both verified (our
         * signature). Whatever else may already make it dead (its agent's
         * generation, a killed audience, a tainted key, a consumed single
         * use) is no reason to skip: some of those are lifted later. */
        if (k != POLICY_RESPONSE_REVOKE_TOKEN || id != NULL) {
            http_resp_error(resp, 400, "invalid_request", "token only with type jti, without id");
            return;
        }
        ztb_err rv = introspect_verify_signature(tok, strlen(tok), &t, NULL);
        if (rv != ZTB_OK) {
            char why[128];
            snprintf(why, sizeof(why), "not a token of this broker: %s", ztb_strerror(rv));
            http_resp_error(resp, 400, "invalid_request", why);
            return;
        }
        id = t.jti;
        exp = t.exp;
        exp_verified = 1;
    }
    if (id == NULL || !store_id_ok(id)) {
        introspected_free(&t);
        http_resp_error(resp, 400, "invalid_request",
                        "id must be 1..256 printable characters without spaces");
        return;
    }
    char actor[64];
    admin_operator_actor(req, actor, sizeof(actor));
    struct rev_request rq = {.response = k,
                             .target = id,
                             .jti_exp = exp,
                             .jti_exp_verified = exp_verified,
                             .lift = lift,
                             .actor = actor,
                             .cause = "operator",
                             .reason = reason};
    struct rev_result res;
    ztb_err rv = revocation_apply(&rq, &res);
    if (rv != ZTB_OK && rv != ZTB_ERR_IO)
        admin_store_error(resp, rv, rv == ZTB_ERR_NOT_FOUND ? "no such agent" : "cannot revoke");
    else
        http_resp_json_value(resp, 200, result_json(type, id, k, lift, &res));
    introspected_free(&t);
}

void handle_admin_revocations(struct http_req *req, struct http_resp *resp)
{
    if (strcmp(req->method, "GET") == 0) {
        struct rev_limits l;
        revocation_limits(&l);
        json_t *arr = NULL;
        ztb_err rv = store_rev_list(l.skew, query_limit(req, LIST_MAX), &arr);
        if (rv != ZTB_OK)
            admin_store_error(resp, rv, "cannot list revocations");
        else
            http_resp_json_value(resp, 200, json_pack("{s:o}", "revocations", arr));
        return;
    }
    if (strcmp(req->method, "POST") != 0) {
        http_resp_error(resp, 405, "invalid_request", "method not allowed");
        return;
    }
    json_t *body = http_req_json_object(req, resp);
    if (body == NULL)
        return;
    revoke_one(req, resp, body);
    json_decref(body);
}

/* ---- quarantine ---------------------------------------------------------- */

/* Of two results, the one whose audit record fared worse (lost, pending,
 * written). */
static const struct rev_result *worse_record(const struct rev_result *a, const struct rev_result *b)
{
    if (a->audit_lost)
        return a;
    if (b->audit_lost)
        return b;
    return a->audit_pending ? a : b;
}

void handle_admin_quarantine(struct http_req *req, struct http_resp *resp)
{
    int release = strcmp(req->path, "/v1/release") == 0;
    json_t *body = http_req_json_object(req, resp);
    if (body == NULL)
        return;
    static const char *const fields[] = {"agent", "reason", NULL};
    int bad = 0;
    const char *agent = str_field(body, "agent", &bad);
    const char *reason = str_field(body, "reason", &bad);
    if (!admin_only_fields(body, fields, resp)) {
        json_decref(body);
        return;
    }
    if (bad || agent == NULL || !store_agent_name_ok(agent)) {
        http_resp_error(resp, 400, "invalid_request", "agent (a name) required");
        json_decref(body);
        return;
    }
    char actor[64];
    admin_operator_actor(req, actor, sizeof(actor));
    struct rev_request rq = {.response = POLICY_RESPONSE_QUARANTINE,
                             .target = agent,
                             .lift = release,
                             .actor = actor,
                             .cause = "operator",
                             .reason = reason};
    struct rev_result r1, r2 = {0};
    ztb_err rv = revocation_apply(&rq, &r1);
    if ((rv == ZTB_OK || rv == ZTB_ERR_IO) && release) {
        /* release gives the agent back its normal issuing: approval too */
        rq.response = POLICY_RESPONSE_REQUIRE_APPROVAL;
        rv = revocation_apply(&rq, &r2);
    }
    struct store_agent a;
    if (rv == ZTB_OK || rv == ZTB_ERR_IO)
        rv = store_agent_get(agent, &a);
    if (rv != ZTB_OK) {
        admin_store_error(resp, rv, "no such agent");
    } else {
        http_resp_json_value(
            resp, 200,
            json_pack("{s:s,s:s,s:I,s:b,s:b,s:b,s:s}", "agent", a.name, "status", a.status,
                      "generation", (json_int_t)a.generation, "quarantined", a.quarantined,
                      "approval_required", a.approval_required, "changed", r1.changed || r2.changed,
                      "audit_record", revocation_audit_state(worse_record(&r1, &r2))));
    }
    json_decref(body);
}

/* ---- signals ------------------------------------------------------------- */

void handle_admin_signals(struct http_req *req, struct http_resp *resp)
{
    size_t limit = query_limit(req, 50);
    const char *agent = MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, "agent");
    json_t *arr = NULL;
    /* filtering by agent looks at more records than it returns */
    ztb_err rv = store_signal_list(agent ? LIST_MAX : limit, &arr);
    if (rv != ZTB_OK) {
        admin_store_error(resp, rv, "cannot list signals");
        return;
    }
    if (agent != NULL) {
        json_t *keep = json_array();
        size_t i;
        json_t *s;
        json_array_foreach(arr, i, s)
        {
            const char *a =
                json_string_value(json_object_get(json_object_get(s, "subject"), "agent"));
            if (a != NULL && strcmp(a, agent) == 0 && json_array_size(keep) < limit)
                json_array_append(keep, s);
        }
        json_decref(arr);
        arr = keep;
    }
    http_resp_json_value(resp, 200, json_pack("{s:o}", "signals", arr));
}

/* ---- sources ------------------------------------------------------------- */

static void add_source(struct http_req *req, struct http_resp *resp, json_t *body)
{
    static const char *const fields[] = {"name", "jwk", "agent", NULL};
    if (!admin_only_fields(body, fields, resp))
        return;
    int bad = 0;
    const char *name = str_field(body, "name", &bad);
    const char *agent = str_field(body, "agent", &bad);
    json_t *jwkj = json_object_get(body, "jwk");
    if (bad || name == NULL || !store_source_name_ok(name)) {
        http_resp_error(resp, 400, "invalid_request",
                        "name must be 1-63 of [a-z0-9._-], starting with a letter or digit");
        return;
    }
    if (strcmp(name, SIGNALS_BROKER_SOURCE) == 0) {
        http_resp_error(resp, 409, "conflict", "the name ztb-broker is the detectors' own");
        return;
    }
    if (agent != NULL && (jwkj != NULL || !store_agent_name_ok(agent))) {
        http_resp_error(resp, 400, "invalid_request",
                        "agent: an agent name, and a source is either an agent or has a secret");
        return;
    }
    char *jwk = NULL;
    if (jwkj != NULL) {
        jwk = json_is_string(jwkj) ? strdup(json_string_value(jwkj))
                                   : json_dumps(jwkj, JSON_COMPACT | JSON_SORT_KEYS);
        ztb_key *k = NULL;
        if (jwk == NULL || ztb_jwk_parse(jwk, strlen(jwk), ZTB_JWK_KID_ANY, &k) != ZTB_OK) {
            free(jwk);
            http_resp_error(resp, 400, "invalid_request",
                            "jwk must be a public EC P-256 JWK (the transmitter's SET key)");
            return;
        }
        ztb_key_free(k);
    }
    if (agent != NULL) {
        struct store_agent a;
        ztb_err rv = store_agent_get(agent, &a);
        if (rv != ZTB_OK) {
            admin_store_error(resp, rv, "no such agent");
            return;
        }
    }
    char secret[STORE_SOURCE_SECRET_LEN + 1];
    ztb_err rv = store_source_add(name, jwk, agent, (int64_t)time(NULL), secret);
    if (rv != ZTB_OK) {
        free(jwk);
        admin_store_error(resp, rv, "a source with that name (or for that agent) exists");
        return;
    }
    char actor[64];
    admin_operator_actor(req, actor, sizeof(actor));
    audit("admin.signal_source_added", actor, 1, ZTB_F_STR("source", name),
          ZTB_F_STR("agent", agent), ZTB_F_BOOL("has_jwk", jwk != NULL));
    json_t *out = json_pack("{s:s,s:s,s:b}", "name", name, "kind", agent ? "agent" : "secret",
                            "has_jwk", jwk != NULL);
    if (agent != NULL)
        json_object_set_new(out, "agent", json_string(agent));
    else
        json_object_set_new(out, "secret", json_string(secret));
    ztb_wipe(secret, sizeof(secret));
    free(jwk);
    http_resp_json_value(resp, 201, out);
}

void handle_admin_sources(struct http_req *req, struct http_resp *resp)
{
    if (strcmp(req->method, "GET") == 0) {
        json_t *arr = NULL;
        ztb_err rv = store_source_list(&arr);
        if (rv != ZTB_OK)
            admin_store_error(resp, rv, "cannot list sources");
        else
            http_resp_json_value(resp, 200, json_pack("{s:o}", "sources", arr));
        return;
    }
    if (strcmp(req->method, "POST") != 0) {
        http_resp_error(resp, 405, "invalid_request", "method not allowed");
        return;
    }
    json_t *body = http_req_json_object(req, resp);
    if (body == NULL)
        return;
    add_source(req, resp, body);
    json_decref(body);
}

void handle_admin_source(struct http_req *req, struct http_resp *resp)
{
    const char *name = req->path + strlen("/v1/signal-sources/");
    if (strcmp(req->method, "DELETE") != 0) {
        http_resp_error(resp, 405, "invalid_request", "method not allowed");
        return;
    }
    ztb_err rv = store_source_remove(name);
    if (rv != ZTB_OK) {
        admin_store_error(resp, rv, "no such source");
        return;
    }
    char actor[64];
    admin_operator_actor(req, actor, sizeof(actor));
    audit("admin.signal_source_removed", actor, 1, ZTB_F_STR("source", name));
    http_resp_json_value(resp, 200, json_pack("{s:s}", "removed", name));
}

/* ---- operator actions ---------------------------------------------------- */

void handle_admin_actions(struct http_req *req, struct http_resp *resp)
{
    json_t *arr = NULL;
    ztb_err rv = store_action_list(query_limit(req, 100), &arr);
    if (rv != ZTB_OK)
        admin_store_error(resp, rv, "cannot list actions");
    else
        http_resp_json_value(resp, 200, json_pack("{s:o}", "actions", arr));
}

void handle_admin_action(struct http_req *req, struct http_resp *resp)
{
    /* /v1/signal-actions/ID/confirm|reject */
    const char *rest = req->path + strlen("/v1/signal-actions/");
    const char *slash = strchr(rest, '/');
    char id[40];
    if (slash == NULL || (size_t)(slash - rest) >= sizeof(id) || slash == rest) {
        http_resp_error(resp, 404, "not_found", "no such endpoint");
        return;
    }
    memcpy(id, rest, (size_t)(slash - rest));
    id[slash - rest] = '\0';
    int confirm = strcmp(slash + 1, "confirm") == 0;
    if (!confirm && strcmp(slash + 1, "reject") != 0) {
        http_resp_error(resp, 404, "not_found", "no such endpoint");
        return;
    }
    if (strcmp(req->method, "POST") != 0) {
        http_resp_error(resp, 405, "invalid_request", "method not allowed");
        return;
    }
    char actor[64];
    admin_operator_actor(req, actor, sizeof(actor));
    struct store_action a;
    ztb_err rv = store_action_decide(id, confirm, actor, (int64_t)time(NULL), &a);
    if (rv == ZTB_ERR_STATE) {
        char why[96];
        snprintf(why, sizeof(why), "the action was already %s", a.status);
        http_resp_error(resp, 409, "conflict", why);
        return;
    }
    if (rv != ZTB_OK) {
        admin_store_error(resp, rv, "no such action (or it expired)");
        return;
    }
    audit(confirm ? "admin.signal_action_confirmed" : "admin.signal_action_rejected", actor, 1,
          ZTB_F_STR("action", a.id), ZTB_F_STR("entry", a.entry), ZTB_F_STR("response", a.response),
          ZTB_F_STR(a.target_kind, a.target), ZTB_F_STR("signals", a.signals));
    if (!confirm) {
        http_resp_json_value(resp, 200,
                             json_pack("{s:s,s:s}", "action", a.id, "status", "rejected"));
        return;
    }
    json_t *result = NULL;
    rv = signals_apply_action(&a, actor, &result);
    if (rv != ZTB_OK && rv != ZTB_ERR_IO)
        admin_store_error(resp, rv,
                          rv == ZTB_ERR_NOT_FOUND ? "the target is gone" : "cannot apply");
    else
        http_resp_json_value(resp, 200,
                             result ? result
                                    : json_pack("{s:s,s:s}", "action", a.id, "status", "applied"));
}
