/*
 * ssf_streams_http.c - the SSF stream-management endpoints (see
 * ssf_streams_http.h; the stream itself is ssf_stream.c, its Redis state
 * store_ssf.c).
 *
 * How it works: every request is authenticated first (the Bearer token
 * verified on the one path, introspect_verify, then held to the streams
 * audience and the ztb:ssf action, then its revocation state read, a
 * single-use token consumed); only then is the body parsed (through the
 * jansson gate). The owner is the token's agent and its SETs' aud the
 * token's sub (the agent's SPIFFE ID). Changes are checked against the
 * owner inside the Redis script that makes them.
 *
 * Must never: show a stream to another agent (or say that it exists), echo
 * an authorization_header, accept a DPoP- or certificate-bound token without
 * its proof (those are refused: ask for a Bearer token), or log a token.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <jansson.h>

#include "broker/audit/audit.h"
#include "broker/broker.h"
#include "broker/http/metrics.h"
#include "broker/http/push_client.h"
#include "broker/ssf/ssf_stream.h"
#include "broker/ssf/ssf_streams_http.h"
#include "broker/ssf/ssf_transmit.h"
#include "broker/store/store_ssf.h"
#include "broker/tokens/introspect.h"
#include "common/base64url.h"
#include "common/log.h"
#include "common/secret.h"
#include "wire/authorization.h"

/* The authenticated receiver. */
struct caller {
    char agent[STORE_NAME_MAX + 1];
    char sub[SSF_URL_MAX];
    char actor[STORE_NAME_MAX + 8];
};

/* 401/403 with the RFC 6750 challenge. */
static void refuse(struct http_resp *resp, unsigned status, const char *error, ztb_err err,
                   const char *desc)
{
    if (error != NULL)
        http_resp_header(resp, "WWW-Authenticate",
                         "Bearer realm=\"ztb\", error=\"%s\", error_description=\"%s\", "
                         "scope=\"" SSF_MANAGE_ACTION "\"",
                         error, desc);
    else
        http_resp_header(resp, "WWW-Authenticate",
                         "Bearer realm=\"ztb\", scope=\"" SSF_MANAGE_ACTION "\"");
    http_resp_error_as(resp, status, error ? error : "invalid_token", err, desc);
}

static const char *token_problem(ztb_err rv)
{
    switch (rv) {
    case ZTB_ERR_EXPIRED: return "the token has expired";
    case ZTB_ERR_NOT_YET_VALID:
    case ZTB_ERR_IAT: return "the token is not valid yet";
    case ZTB_ERR_REVOKED:
    case ZTB_ERR_AGENT_REVOKED:
    case ZTB_ERR_AUDIENCE_KILLED:
    case ZTB_ERR_KEY_TAINTED: return "the token was revoked";
    case ZTB_ERR_REPLAY: return "the single-use token was already used";
    default: return "the token is not a valid token of this broker";
    }
}

/* 1 with c filled, or 0 with resp filled. */
static int authenticate(struct http_req *req, struct http_resp *resp, const struct broker *b,
                        struct caller *c)
{
    const char *h = NULL;
    int n = http_req_header_once(req, "Authorization", &h);
    char desc[400];
    snprintf(desc, sizeof(desc),
             "send Authorization: Bearer <a ztb access token for audience %s and action %s>",
             b->ssf->streams.audience, SSF_MANAGE_ACTION);
    const char *tok = NULL;
    size_t len = 0;
    if (n == 1 && ztb_wire_authorization_read(h, &tok, &len) != ZTB_SCHEME_BEARER)
        tok = NULL;
    if (tok == NULL) {
        metrics_refused(req->path, REFUSED_INVALID_CLIENT);
        refuse(resp, 401, n == 0 ? NULL : "invalid_request", ZTB_ERR_INVALID_CLIENT, desc);
        return 0;
    }
    int64_t now = (int64_t)time(NULL);
    struct introspected t;
    ztb_err rv = introspect_verify(tok, len, b->issuer, now, &t);
    if (rv != ZTB_OK) {
        metrics_refused(req->path, REFUSED_INVALID_CLIENT);
        refuse(resp, 401, "invalid_token", rv, token_problem(rv));
        return 0;
    }
    const char *scope = claims_str(&t.tok.c, CL_SCOPE);
    int ok = 0;
    if (strcmp(t.aud, b->ssf->streams.audience) != 0) {
        refuse(resp, 401, "invalid_token", ZTB_ERR_AUDIENCE, desc);
    } else if (claims_str(&t.tok.c, CL_JKT) != NULL || claims_str(&t.tok.c, CL_X5T) != NULL) {
        refuse(resp, 401, "invalid_token", ZTB_ERR_BINDING,
               "a bound (DPoP or mTLS) token is not accepted here: ask for a Bearer token");
    } else if (scope == NULL || strcmp(scope, SSF_MANAGE_ACTION) != 0) {
        refuse(resp, 403, "insufficient_scope", ZTB_ERR_ACTION, desc);
    } else if (t.agent == NULL || t.sub == NULL || strlen(t.agent) > STORE_NAME_MAX ||
               strlen(t.sub) >= sizeof(c->sub)) {
        refuse(resp, 401, "invalid_token", ZTB_ERR_CLAIMS, "the token names no agent");
    } else if ((rv = introspect_state(&t, now, 1)) == ZTB_ERR_UNAVAILABLE) {
        http_resp_error(resp, 503, "temporarily_unavailable", "Redis is not answering");
        http_resp_header(resp, "Retry-After", "1");
    } else if (rv != ZTB_OK) {
        refuse(resp, 401, "invalid_token", rv, token_problem(rv));
    } else {
        snprintf(c->agent, sizeof(c->agent), "%s", t.agent);
        snprintf(c->sub, sizeof(c->sub), "%s", t.sub);
        snprintf(c->actor, sizeof(c->actor), "agent:%s", t.agent);
        http_access_note_agent(c->agent);
        ok = 1;
    }
    introspected_free(&t);
    return ok;
}

/* The answer for a store error. */
static void store_refusal(struct http_resp *resp, ztb_err rv)
{
    if (rv == ZTB_ERR_NOT_FOUND) {
        http_resp_error(resp, 404, "not_found", "no such stream");
    } else {
        http_resp_error(resp, 503, "temporarily_unavailable", "Redis is not answering");
        http_resp_header(resp, "Retry-After", "1");
    }
}

/* Load the caller's stream id into s. ZTB_OK, or resp filled (another
 * agent's stream is "not found", as one that does not exist). */
static ztb_err load_own(struct http_resp *resp, const struct caller *c, const char *id,
                        struct ssf_stream *s)
{
    char *rec = NULL;
    ztb_err rv = store_ssf_get(id, &rec);
    if (rv == ZTB_OK) {
        rv = ssf_stream_from_record(rec, strlen(rec), s);
        ztb_free_secret_str(rec);
        if (rv == ZTB_OK && strcmp(s->owner, c->agent) != 0) {
            ssf_stream_clear(s);
            rv = ZTB_ERR_NOT_FOUND;
        } else if (rv != ZTB_OK) {
            rv = ZTB_ERR_NOT_FOUND;
        }
    }
    if (rv != ZTB_OK)
        store_refusal(resp, rv);
    return rv;
}

/* The stream_id query argument, or NULL (resp filled when it is malformed). */
static const char *query_id(struct http_req *req, struct http_resp *resp, int *present)
{
    const char *id = NULL;
    int n = http_req_query_once(req, "stream_id", &id);
    *present = n != 0;
    if (n < 0 || (n == 1 && !store_ssf_id_ok(id))) {
        http_resp_error(resp, n < 0 ? 400 : 404, n < 0 ? "invalid_request" : "not_found",
                        n < 0 ? "stream_id must be given once" : "no such stream");
        return NULL;
    }
    return id;
}

/* The stream_id member of body, or NULL with resp filled. */
static const char *body_id(json_t *body, struct http_resp *resp)
{
    const char *id = json_string_value(json_object_get(body, "stream_id"));
    if (id == NULL)
        http_resp_error(resp, 400, "invalid_request", "stream_id is required");
    else if (!store_ssf_id_ok(id))
        http_resp_error(resp, 404, "not_found", "no such stream");
    return id != NULL && store_ssf_id_ok(id) ? id : NULL;
}

static void audit_change(const char *event, const struct caller *c, const struct ssf_stream *s)
{
    char origin[300];
    push_url_origin(s->url, origin, sizeof(origin));
    audit(event, c->actor, 1, ZTB_F_STR("agent", c->agent), ZTB_F_STR("stream", s->id),
          ZTB_F_STR("endpoint", origin), ZTB_F_INT("events", s->events),
          ZTB_F_STR("status", ssf_stream_status_name(s->status)));
}

static void answer_config(struct http_resp *resp, unsigned status, const struct broker *b,
                          const struct ssf_stream *s)
{
    json_t *j = ssf_stream_config_json(s, b->issuer, b->ssf->streams.min_verification_interval);
    if (j == NULL)
        http_resp_error(resp, 500, "server_error", "cannot render the stream");
    else
        http_resp_json_value(resp, status, j);
}

/* GET without stream_id: every stream of the caller. */
static void list_own(struct http_resp *resp, const struct broker *b, const struct caller *c)
{
    char **recs = NULL;
    size_t n = 0;
    ztb_err rv = store_ssf_list(&recs, &n);
    if (rv != ZTB_OK) {
        store_refusal(resp, rv);
        return;
    }
    json_t *arr = json_array();
    for (size_t i = 0; arr != NULL && i < n; i++) {
        struct ssf_stream s;
        if (ssf_stream_from_record(recs[i], strlen(recs[i]), &s) != ZTB_OK)
            continue;
        if (strcmp(s.owner, c->agent) == 0)
            json_array_append_new(
                arr,
                ssf_stream_config_json(&s, b->issuer, b->ssf->streams.min_verification_interval));
        ssf_stream_clear(&s);
    }
    store_ssf_list_free(recs, n);
    if (arr == NULL)
        http_resp_error(resp, 500, "server_error", "out of memory");
    else
        http_resp_json_value(resp, 200, arr);
}

/* 1 if the stream's endpoint_url is on one of the operator's push_hosts;
 * 0 with why (and the fix) if not. */
static int push_host_allowed(const struct broker *b, const struct ssf_stream *s, char *why,
                             size_t cap)
{
    if (ssf_streams_push_host_ok(&b->ssf->streams, s->url))
        return 1;
    char origin[300];
    push_url_origin(s->url, origin, sizeof(origin));
    snprintf(why, cap,
             "delivery.endpoint_url: %.200s is not one of the transmitter's push hosts: ask its "
             "operator to add the host to streams.push_hosts",
             origin);
    return 0;
}

static void create(struct http_req *req, struct http_resp *resp, const struct broker *b,
                   const struct caller *c)
{
    json_t *body = http_req_json_object(req, resp);
    if (body == NULL)
        return;
    struct ssf_stream s;
    memset(&s, 0, sizeof(s));
    uint8_t raw[16];
    memcpy(s.id, "ssf_", 4);
    if (ztb_random(raw, sizeof(raw)) != ZTB_OK ||
        ztb_b64url_encode(raw, sizeof(raw), s.id + 4, sizeof(s.id) - 4, NULL) != ZTB_OK) {
        json_decref(body);
        http_resp_error(resp, 500, "server_error", "no randomness");
        return;
    }
    snprintf(s.owner, sizeof(s.owner), "%s", c->agent);
    snprintf(s.aud, sizeof(s.aud), "%s", c->sub);
    s.status = SSF_STREAM_ENABLED;
    s.created = (int64_t)time(NULL);
    char why[400];
    ztb_err rv = ssf_stream_apply(&s, body, SSF_OP_CREATE, why, sizeof(why));
    json_decref(body);
    if (rv == ZTB_OK && !push_host_allowed(b, &s, why, sizeof(why)))
        rv = ZTB_ERR_INVALID_ARG;
    if (rv != ZTB_OK) {
        http_resp_error(resp, 400, "invalid_request", why);
        ssf_stream_clear(&s);
        return;
    }
    char *rec = ssf_stream_record(&s);
    rv = rec ? store_ssf_create(c->agent, s.id, rec, b->ssf->streams.max_per_receiver,
                                b->ssf->streams.max_streams)
             : ZTB_ERR_NOMEM;
    ztb_free_secret_str(rec);
    if (rv == ZTB_ERR_STATE || rv == ZTB_ERR_TOO_LARGE) {
        snprintf(why, sizeof(why),
                 rv == ZTB_ERR_STATE ? "this receiver has %u streams already: delete one first"
                                     : "the transmitter holds %u streams already: ask its operator",
                 rv == ZTB_ERR_STATE ? b->ssf->streams.max_per_receiver
                                     : b->ssf->streams.max_streams);
        http_resp_error(resp, 409, "conflict", why);
    } else if (rv != ZTB_OK) {
        store_refusal(resp, rv == ZTB_ERR_NOT_FOUND ? ZTB_ERR_UNAVAILABLE : rv);
    } else {
        audit_change("ssf.stream_created", c, &s);
        answer_config(resp, 201, b, &s);
    }
    ssf_stream_clear(&s);
}

/* PUT and PATCH. */
static void change(struct http_req *req, struct http_resp *resp, const struct broker *b,
                   const struct caller *c, enum ssf_stream_op op)
{
    json_t *body = http_req_json_object(req, resp);
    if (body == NULL)
        return;
    const char *id = body_id(body, resp);
    struct ssf_stream s;
    if (id == NULL || load_own(resp, c, id, &s) != ZTB_OK) {
        json_decref(body);
        return;
    }
    char why[400];
    ztb_err rv = ssf_stream_apply(&s, body, op, why, sizeof(why));
    json_decref(body);
    if (rv == ZTB_OK && !push_host_allowed(b, &s, why, sizeof(why)))
        rv = ZTB_ERR_INVALID_ARG;
    if (rv != ZTB_OK) {
        http_resp_error(resp, 400, "invalid_request", why);
    } else {
        char *rec = ssf_stream_record(&s);
        rv = rec ? store_ssf_replace(c->agent, s.id, rec) : ZTB_ERR_NOMEM;
        ztb_free_secret_str(rec);
        if (rv != ZTB_OK) {
            store_refusal(resp, rv);
        } else {
            audit_change(op == SSF_OP_REPLACE ? "ssf.stream_replaced" : "ssf.stream_updated", c,
                         &s);
            answer_config(resp, 200, b, &s);
        }
    }
    ssf_stream_clear(&s);
}

static void delete (struct http_req *req, struct http_resp *resp, const struct caller *c)
{
    int present = 0;
    const char *id = query_id(req, resp, &present);
    if (id == NULL) {
        if (!present)
            http_resp_error(resp, 400, "invalid_request", "DELETE needs ?stream_id=");
        return;
    }
    struct ssf_stream s;
    if (load_own(resp, c, id, &s) != ZTB_OK)
        return;
    ztb_err rv = store_ssf_delete(c->agent, id);
    if (rv != ZTB_OK) {
        store_refusal(resp, rv);
    } else {
        audit_change("ssf.stream_deleted", c, &s);
        ztb_buf_reset(&resp->body);
        resp->status = 204;
    }
    ssf_stream_clear(&s);
}

/* The broker, or NULL with 404 when stream management is off. */
static const struct broker *streams_on(struct http_req *req, struct http_resp *resp)
{
    const struct broker *b = broker_of(req);
    if (b->ssf == NULL || !b->ssf->streams.enabled) {
        http_resp_error(resp, 404, "not_found",
                        "SSF stream management is off: the operator adds \"streams\" to the "
                        "ssf_config file");
        return NULL;
    }
    return b;
}

void handle_ssf_streams(struct http_req *req, struct http_resp *resp)
{
    const struct broker *b = streams_on(req, resp);
    struct caller c;
    if (b == NULL || !authenticate(req, resp, b, &c))
        return;
    const char *m = req->method;
    if (strcmp(m, "POST") == 0) {
        create(req, resp, b, &c);
    } else if (strcmp(m, "PUT") == 0 || strcmp(m, "PATCH") == 0) {
        change(req, resp, b, &c, m[1] == 'U' ? SSF_OP_REPLACE : SSF_OP_UPDATE);
    } else if (strcmp(m, "DELETE") == 0) {
        delete (req, resp, &c);
    } else if (strcmp(m, "GET") == 0) {
        int present = 0;
        const char *id = query_id(req, resp, &present);
        struct ssf_stream s;
        if (!present)
            list_own(resp, b, &c);
        else if (id != NULL && load_own(resp, &c, id, &s) == ZTB_OK) {
            answer_config(resp, 200, b, &s);
            ssf_stream_clear(&s);
        }
    } else {
        http_resp_header(resp, "Allow", "GET, POST, PUT, PATCH, DELETE");
        http_resp_error(resp, 405, "invalid_request", "method not allowed");
    }
}

static void answer_status(struct http_resp *resp, const struct ssf_stream *s)
{
    json_t *j =
        json_pack("{s:s,s:s}", "stream_id", s->id, "status", ssf_stream_status_name(s->status));
    if (j != NULL && s->reason[0] != '\0')
        json_object_set_new(j, "reason", json_string(s->reason));
    if (j == NULL)
        http_resp_error(resp, 500, "server_error", "out of memory");
    else
        http_resp_json_value(resp, 200, j);
}

void handle_ssf_status(struct http_req *req, struct http_resp *resp)
{
    const struct broker *b = streams_on(req, resp);
    struct caller c;
    if (b == NULL || !authenticate(req, resp, b, &c))
        return;
    struct ssf_stream s;
    if (strcmp(req->method, "GET") == 0) {
        int present = 0;
        const char *id = query_id(req, resp, &present);
        if (id == NULL && !present)
            http_resp_error(resp, 400, "invalid_request", "GET needs ?stream_id=");
        if (id != NULL && load_own(resp, &c, id, &s) == ZTB_OK) {
            answer_status(resp, &s);
            ssf_stream_clear(&s);
        }
        return;
    }
    if (strcmp(req->method, "POST") != 0) {
        http_resp_header(resp, "Allow", "GET, POST");
        http_resp_error(resp, 405, "invalid_request", "method not allowed");
        return;
    }
    json_t *body = http_req_json_object(req, resp);
    if (body == NULL)
        return;
    const char *id = body_id(body, resp);
    const char *k;
    json_t *v;
    json_object_foreach(body, k, v)
    {
        if (id != NULL && strcmp(k, "stream_id") != 0 && strcmp(k, "status") != 0 &&
            strcmp(k, "reason") != 0) {
            http_resp_error(resp, 400, "invalid_request",
                            "a status request has only stream_id, status and reason");
            id = NULL;
        }
    }
    int st = ssf_stream_status_of(json_string_value(json_object_get(body, "status")));
    json_t *rj = json_object_get(body, "reason");
    const char *reason = json_string_value(rj);
    if (id != NULL && st < 0) {
        http_resp_error(resp, 400, "invalid_request",
                        "status must be \"enabled\", \"paused\" or \"disabled\"");
        id = NULL;
    } else if (id != NULL && rj != NULL &&
               (reason == NULL || strlen(reason) > SSF_REASON_MAX ||
                strlen(reason) != json_string_length(rj))) {
        http_resp_error(resp, 400, "invalid_request", "reason must be text under 256 bytes");
        id = NULL;
    }
    if (id != NULL && load_own(resp, &c, id, &s) == ZTB_OK) {
        s.status = (enum ssf_stream_status)st;
        snprintf(s.reason, sizeof(s.reason), "%s", reason ? reason : "");
        for (char *p = s.reason; *p; p++)
            if ((unsigned char)*p < 0x20 || *p == 0x7f)
                *p = ' ';
        char *rec = ssf_stream_record(&s);
        ztb_err rv = rec ? store_ssf_replace(c.agent, s.id, rec) : ZTB_ERR_NOMEM;
        ztb_free_secret_str(rec);
        if (rv != ZTB_OK) {
            store_refusal(resp, rv);
        } else {
            audit_change("ssf.stream_status", &c, &s);
            answer_status(resp, &s);
        }
        ssf_stream_clear(&s);
    }
    json_decref(body);
}

void handle_ssf_verify(struct http_req *req, struct http_resp *resp)
{
    const struct broker *b = streams_on(req, resp);
    struct caller c;
    if (b == NULL || !authenticate(req, resp, b, &c))
        return;
    json_t *body = http_req_json_object(req, resp);
    if (body == NULL)
        return;
    const char *id = body_id(body, resp);
    json_t *sj = json_object_get(body, "state");
    const char *state = json_string_value(sj);
    struct ssf_stream s;
    if (id != NULL && sj != NULL &&
        (state == NULL || strlen(state) > SSF_STATE_MAX ||
         strlen(state) != json_string_length(sj))) {
        http_resp_error(resp, 400, "invalid_request", "state must be text under 256 bytes");
    } else if (id != NULL && json_object_size(body) > (sj != NULL ? 2u : 1u)) {
        http_resp_error(resp, 400, "invalid_request",
                        "a verification request has only stream_id and state");
    } else if (id != NULL && load_own(resp, &c, id, &s) == ZTB_OK) {
        ssf_stream_clear(&s);
        int allowed = 0;
        ztb_err rv = store_ssf_verify_throttle(
            id, b->ssf->streams.min_verification_interval * 1000u, &allowed);
        if (rv != ZTB_OK) {
            store_refusal(resp, ZTB_ERR_UNAVAILABLE);
        } else if (!allowed) {
            http_resp_header(resp, "Retry-After", "%u", b->ssf->streams.min_verification_interval);
            http_resp_error(resp, 429, "rate_limited",
                            "one verification per min_verification_interval");
        } else if (ssf_transmit_verification(id, state) != ZTB_OK) {
            /* not sent: the slot is given back, so that the retry the
             * answer asks for is taken (a failed release leaves the
             * interval's 429, which only delays a verification) */
            (void)store_ssf_verify_release(id);
            http_resp_error(resp, 503, "temporarily_unavailable", "the delivery queue is full");
            http_resp_header(resp, "Retry-After", "1");
        } else {
            ztb_buf_reset(&resp->body);
            resp->status = 204;
        }
    }
    json_decref(body);
}
