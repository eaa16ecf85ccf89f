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
#include "broker/http/metrics.h"
#include "broker/tokens/introspect.h"
#include "broker/signals/revocation.h"
#include "broker/signals/signal_stats.h"
#include "broker/signals/signals.h"
#include "broker/store/store_actions.h"
#include "broker/store/store_rev.h"
#include "broker/store/store_signals.h"
#include "broker/store/store_sources.h"
#include "common/secret.h"
#include "pki/jwk.h"
#include "pki/jws.h"
#include "policy/policy.h"

#define LIST_MAX     1000
#define SIGNALS_KEPT 10000 /* the ztb:signals stream's length (store_signals.c) */

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

/*
 * A signal's record keeps each response's status as it was when the signal
 * came in; one that waited for an operator ("pending_operator") is shown
 * with its action's status now (applied, rejected, failed, confirmed), so
 * the list is not stale after `ztbctl signals confirm`. Once the action's
 * record is gone (STORE_ACTION_TTL) it says "action_expired": the audit log
 * holds what became of it. Redis errors leave the record as it is.
 */
static void current_statuses(json_t *signals)
{
    size_t i, j;
    json_t *s, *r;
    json_array_foreach(signals, i, s)
    {
        json_array_foreach(json_object_get(s, "responses"), j, r)
        {
            const char *st = json_string_value(json_object_get(r, "status"));
            const char *act = json_string_value(json_object_get(r, "action"));
            if (st == NULL || act == NULL || strcmp(st, "pending_operator") != 0)
                continue;
            char now[16];
            ztb_err rv = store_action_status(act, now);
            if (rv == ZTB_ERR_NOT_FOUND)
                json_object_set_new(r, "status", json_string("action_expired"));
            else if (rv == ZTB_OK && strcmp(now, "pending") != 0)
                json_object_set_new(r, "status", json_string(now));
        }
    }
}

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
    current_statuses(arr);
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

/* ---- verdicts and statistics ------------------------------------------- */

/* Where signal record rec came from, for the verdict metric: "source:NAME"
 * or, for the broker's own, "detector:TYPE" (as observe mode names them). */
static void verdict_from(const json_t *rec, char *out, size_t cap)
{
    const char *src = rec ? json_string_value(json_object_get(rec, "source")) : NULL;
    const char *type = rec ? json_string_value(json_object_get(rec, "type")) : NULL;
    if (src != NULL && strcmp(src, SIGNALS_BROKER_SOURCE) == 0 && type != NULL)
        snprintf(out, cap, "detector:%s", type);
    else
        snprintf(out, cap, "source:%s", src ? src : "_unknown");
}

/* The record of signal id in arr (borrowed), or NULL. */
static json_t *record_in(json_t *arr, const char *id)
{
    size_t i;
    json_t *s;
    json_array_foreach(arr, i, s)
    {
        const char *sid = json_string_value(json_object_get(s, "id"));
        if (sid != NULL && strcmp(sid, id) == 0)
            return s;
    }
    return NULL;
}

/* Record an operator's verdict on signal id (audited); rec is its record
 * (NULL if unknown), for the metric. */
static ztb_err mark_outcome(const char *id, const json_t *rec, int confirmed, const char *actor,
                            const char *reason, int64_t contained_at)
{
    int64_t now = (int64_t)time(NULL);
    json_t *o = json_pack("{s:s,s:s,s:I}", "outcome", confirmed ? "confirmed" : "false_positive",
                          "by", actor, "at", (json_int_t)now);
    if (o == NULL)
        return ZTB_ERR_NOMEM;
    if (reason != NULL)
        json_object_set_new(o, "reason", json_string(reason));
    if (contained_at > 0)
        json_object_set_new(o, "contained_at", json_integer(contained_at));
    char *text = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(o);
    ztb_err rv = text ? store_signal_outcome_set(id, text) : ZTB_ERR_NOMEM;
    free(text);
    if (rv == ZTB_OK) {
        char from[160];
        verdict_from(rec, from, sizeof(from));
        metrics_signal_verdict(from, confirmed);
    }
    if (rv == ZTB_OK)
        audit(confirmed ? "signal.confirmed" : "signal.dismissed", actor, 1,
              ZTB_F_STR("signal", id), ZTB_F_STR("reason", reason));
    return rv;
}

/* The verdict on each signal of an action ("sig_a,sig_b"). */
static void mark_action_signals(const char *sigs, int confirmed, const char *actor,
                                const char *reason, int64_t contained_at)
{
    char buf[512];
    snprintf(buf, sizeof(buf), "%s", sigs);
    json_t *arr = NULL;
    if (store_signal_list(SIGNALS_KEPT, &arr) != ZTB_OK)
        arr = NULL; /* the verdicts still count, from "_unknown" */
    char *save = NULL;
    for (char *id = strtok_r(buf, ", ", &save); id != NULL; id = strtok_r(NULL, ", ", &save))
        if (store_id_ok(id))
            (void)mark_outcome(id, arr ? record_in(arr, id) : NULL, confirmed, actor, reason,
                               contained_at);
    json_decref(arr);
}

/* The optional {"reason": text} of a body; 0 if the body is refused (resp set). */
static int optional_reason(struct http_req *req, struct http_resp *resp, json_t **body,
                           const char **reason)
{
    *body = NULL;
    *reason = NULL;
    if (req->body_len == 0)
        return 1;
    if ((*body = http_req_json_object(req, resp)) == NULL)
        return 0;
    static const char *const fields[] = {"reason", "outcome", NULL};
    if (!admin_only_fields(*body, fields, resp))
        return 0;
    const json_t *r = json_object_get(*body, "reason");
    if (r != NULL && (!json_is_string(r) || json_string_length(r) > 512)) {
        http_resp_error(resp, 400, "invalid_request", "reason: text, at most 512 bytes");
        return 0;
    }
    *reason = json_string_value(r);
    return 1;
}

void handle_admin_signal_outcome(struct http_req *req, struct http_resp *resp)
{
    /* /v1/signals/ID/outcome */
    const char *rest = req->path + strlen("/v1/signals/");
    const char *slash = strchr(rest, '/');
    char id[64];
    if (slash == NULL || slash == rest || (size_t)(slash - rest) >= sizeof(id) ||
        strcmp(slash + 1, "outcome") != 0) {
        http_resp_error(resp, 404, "not_found", "POST /v1/signals/ID/outcome");
        return;
    }
    memcpy(id, rest, (size_t)(slash - rest));
    id[slash - rest] = '\0';
    if (strcmp(req->method, "POST") != 0) {
        http_resp_error(resp, 405, "invalid_request", "method not allowed");
        return;
    }
    json_t *body = NULL;
    const char *reason = NULL;
    if (!optional_reason(req, resp, &body, &reason)) {
        json_decref(body);
        return;
    }
    const char *outcome = json_string_value(json_object_get(body, "outcome"));
    if (outcome == NULL ||
        (strcmp(outcome, "confirmed") != 0 && strcmp(outcome, "false_positive") != 0)) {
        http_resp_error(resp, 400, "invalid_request",
                        "outcome: \"confirmed\" or \"false_positive\"");
        json_decref(body);
        return;
    }
    /* only a signal the broker received can be judged */
    json_t *arr = NULL;
    ztb_err rv = store_signal_list(SIGNALS_KEPT, &arr);
    json_t *rec = rv == ZTB_OK ? record_in(arr, id) : NULL;
    if (rv != ZTB_OK || rec == NULL) {
        json_decref(arr);
        admin_store_error(resp, rv != ZTB_OK ? rv : ZTB_ERR_NOT_FOUND,
                          "no such signal (ztbctl signals list shows their ids)");
        json_decref(body);
        return;
    }
    char actor[64];
    admin_operator_actor(req, actor, sizeof(actor));
    int confirmed = outcome[0] == 'c';
    rv = mark_outcome(id, rec, confirmed, actor, reason, 0);
    json_decref(arr);
    if (rv != ZTB_OK)
        admin_store_error(resp, rv, "cannot record the verdict");
    else
        http_resp_json_value(resp, 200, json_pack("{s:s,s:s}", "signal", id, "outcome", outcome));
    json_decref(body);
}

void handle_admin_signal_stats(struct http_req *req, struct http_resp *resp)
{
    (void)req;
    json_t *arr = NULL, *oc = NULL, *st = NULL;
    ztb_err rv = store_signal_list(SIGNALS_KEPT, &arr);
    if (rv == ZTB_OK)
        rv = store_signal_outcomes(&oc);
    if (rv == ZTB_OK)
        rv = signal_stats(arr, oc, &st);
    if (rv != ZTB_OK)
        admin_store_error(resp, rv, "cannot compute the statistics");
    else
        http_resp_json_value(resp, 200, st);
    json_decref(arr);
    json_decref(oc);
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
    json_t *body = NULL;
    const char *reason = NULL;
    if (!optional_reason(req, resp, &body, &reason)) {
        json_decref(body);
        return;
    }
    char actor[64];
    admin_operator_actor(req, actor, sizeof(actor));
    struct store_action a;
    ztb_err rv = store_action_decide(id, confirm, actor, (int64_t)time(NULL), &a);
    json_t *keep = body; /* reason points into it */
    body = NULL;
    if (rv == ZTB_ERR_STATE) {
        char why[96];
        snprintf(why, sizeof(why), "the action was already %s", a.status);
        http_resp_error(resp, 409, "conflict", why);
        json_decref(keep);
        return;
    }
    if (rv != ZTB_OK) {
        admin_store_error(resp, rv, "no such action (or it expired)");
        json_decref(keep);
        return;
    }
    audit(confirm ? "admin.signal_action_confirmed" : "admin.signal_action_rejected", actor, 1,
          ZTB_F_STR("action", a.id), ZTB_F_STR("entry", a.entry), ZTB_F_STR("response", a.response),
          ZTB_F_STR(a.target_kind, a.target), ZTB_F_STR("signals", a.signals),
          ZTB_F_STR("reason", reason));
    if (!confirm) {
        /* the response was not wanted: its signals were false positives */
        mark_action_signals(a.signals, 0, actor, reason, 0);
        json_decref(keep);
        http_resp_json_value(resp, 200,
                             json_pack("{s:s,s:s}", "action", a.id, "status", "rejected"));
        return;
    }
    json_t *result = NULL;
    rv = signals_apply_action(&a, actor, &result);
    if (rv == ZTB_OK) /* contained now, on the operator's word */
        mark_action_signals(a.signals, 1, actor, reason, (int64_t)time(NULL));
    json_decref(keep);
    if (rv != ZTB_OK && rv != ZTB_ERR_IO)
        admin_store_error(resp, rv,
                          rv == ZTB_ERR_NOT_FOUND ? "the target is gone" : "cannot apply");
    else
        http_resp_json_value(resp, 200,
                             result ? result
                                    : json_pack("{s:s,s:s}", "action", a.id, "status", "applied"));
}

/* ---- observe mode ---------------------------------------------------------- */

static void set_mode(struct http_req *req, struct http_resp *resp, json_t *body)
{
    static const char *const fields[] = {"source", "detector", "mode", NULL};
    if (!admin_only_fields(body, fields, resp))
        return;
    const char *source = json_string_value(json_object_get(body, "source"));
    const char *detector = json_string_value(json_object_get(body, "detector"));
    const char *mode = json_string_value(json_object_get(body, "mode"));
    if ((source == NULL) == (detector == NULL)) {
        http_resp_error(resp, 400, "invalid_request",
                        "name either a source or a detector (its signal type)");
        return;
    }
    if (source != NULL &&
        (!store_source_name_ok(source) || strcmp(source, SIGNALS_BROKER_SOURCE) == 0)) {
        http_resp_error(resp, 400, "invalid_request",
                        "source: not a source name (the broker's own detectors are set one by "
                        "one: \"detector\": TYPE)");
        return;
    }
    if (detector != NULL && !signal_type_ok(detector)) {
        http_resp_error(resp, 400, "invalid_request",
                        "detector: not a signal type (e.g. policy_violation, new_audience)");
        return;
    }
    if (mode == NULL || (strcmp(mode, "observe") != 0 && strcmp(mode, "enforce") != 0)) {
        http_resp_error(resp, 400, "invalid_request", "mode: \"observe\" or \"enforce\"");
        return;
    }
    char who[160];
    snprintf(who, sizeof(who), "%s:%s", source ? "source" : "detector", source ? source : detector);
    ztb_err rv = store_signal_mode_set(who, strcmp(mode, "observe") == 0);
    if (rv != ZTB_OK) {
        admin_store_error(resp, rv, "cannot set the mode");
        return;
    }
    char actor[64];
    admin_operator_actor(req, actor, sizeof(actor));
    audit("signal.mode_changed", actor, 1, ZTB_F_STR("who", who), ZTB_F_STR("mode", mode));
    http_resp_json_value(resp, 200, json_pack("{s:s,s:s}", "who", who, "mode", mode));
}

void handle_admin_signal_modes(struct http_req *req, struct http_resp *resp)
{
    if (strcmp(req->method, "GET") == 0) {
        json_t *o = NULL;
        ztb_err rv = store_signal_modes(&o);
        if (rv != ZTB_OK)
            admin_store_error(resp, rv, "cannot read the modes");
        else
            http_resp_json_value(resp, 200, json_pack("{s:o}", "observe", o));
        return;
    }
    if (strcmp(req->method, "POST") != 0) {
        http_resp_error(resp, 405, "invalid_request", "method not allowed");
        return;
    }
    json_t *body = http_req_json_object(req, resp);
    if (body == NULL)
        return;
    set_mode(req, resp, body);
    json_decref(body);
}
