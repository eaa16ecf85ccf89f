/*
 * test_ssf_streams_http.c - the SSF stream-management endpoints
 * (broker/ssf/ssf_streams_http.c: /v1/ssf/streams, /v1/ssf/status,
 * /v1/ssf/verify) served by a real http_server in this process
 * (broker_fixture.h bf_serve) with a real Redis and key store, the callers'
 * access tokens minted as the broker mints them: every request authenticated
 * first (RFC 6750 Bearer for the streams audience and ztb:ssf, not bound,
 * not revoked, single-use consumed), each refusal with its status and
 * challenge; create, read, list, update, replace, status, verification and
 * delete as documented, each change audited; bad input of every kind a 4xx
 * that changes nothing; another agent's stream "not found"; the limits;
 * streams off, and Redis down. The end-to-end flow with a real receiver is
 * tests/integration/test_ssf.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "broker/ssf/ssf.h"
#include "broker/ssf/ssf_streams_http.h"
#include "broker/ssf/ssf_transmit.h"
#include "broker/store/store.h"
#include "broker/store/store_rev.h"
#include "broker_fixture.h"
#include "common/base64url.h"
#include "sdk_test.h"

#define STREAMS "/v1/ssf/streams"
#define STATUS  "/v1/ssf/status"
#define VERIFY  "/v1/ssf/verify"
#define SECRET  "Bearer rx-delivery-secret"
#define SR      "https://schemas.openid.net/secevent/caep/event-type/session-revoked"
#define QU      "urn:ztb:ssf:event-type:agent-quarantined"
#define VERIF   "https://schemas.openid.net/secevent/ssf/event-type/verification"

/* The receivers' push endpoint: counts and keeps the SETs it is sent. */
struct sink {
    unsigned sets;
    char last[8192];
};
static struct sink sink;
static struct st_server sink_srv;

static void sink_handler(void *ud, const struct st_req *rq, struct st_resp *rs)
{
    struct sink *s = ud;
    s->sets++;
    snprintf(s->last, sizeof(s->last), "%s", rq->body ? rq->body : "");
    rs->status = 202;
}

static int setup(void **state)
{
    (void)state;
    bf_setup(NULL);
    bf_serve(0);
    st_server_start(&sink_srv, sink_handler, &sink);
    const char *text = "{\"streams\": {\"max_per_receiver\": 2, \"max_streams\": 3,\n"
                       "  \"min_verification_interval\": 60,\n"
                       "  \"push_hosts\": [\"127.0.0.1\", \"*.siem.example\"]}}";
    char why[300];
    assert_int_equal(
        ssf_config_parse(text, strlen(text), g_broker.issuer, &g_broker.ssf, why, sizeof(why)),
        ZTB_OK);
    assert_int_equal(ssf_transmit_start(g_broker.ssf, g_broker.issuer, "ztb.local"), ZTB_OK);
    const char *agents[] = {"rx-a", "rx-b", "rx-c", "rx-d", "rx-gone"};
    for (size_t i = 0; i < sizeof(agents) / sizeof(agents[0]); i++)
        assert_int_equal(store_agent_add(agents[i], 1), ZTB_OK);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    ssf_transmit_stop();
    bf_unserve();
    st_server_stop(&sink_srv);
    ssf_config_free(g_broker.ssf);
    g_broker.ssf = NULL;
    bf_teardown();
    return 0;
}

/* ---- tokens and calls ---------------------------------------------------------- */

struct mint {
    const char *aud, *action, *jkt, *x5t;
    int64_t exp_in; /* seconds from now; 0: 60 */
    int single_use;
};

/* An access token for agent as the broker mints it (active key, typ
 * at+jwt, generation 1) into tok; jti_out (may be NULL) gets its jti. */
static void mint(const char *agent, const struct mint *m, char *tok, size_t cap)
{
    char spiffe[128];
    snprintf(spiffe, sizeof(spiffe), "spiffe://ztb.local/agent/%s", agent);
    int64_t now = time(NULL);
    struct token_claims c = {.iss = g_broker.issuer,
                             .agent = agent,
                             .spiffe_id = spiffe,
                             .audience = m->aud ? m->aud : "ztb-ssf",
                             .action = m->action ? m->action : "ztb:ssf",
                             .cnf_jkt = m->jkt,
                             .cnf_x5t = m->x5t,
                             .iat = m->exp_in < 0 ? now - 120 : now,
                             .exp = now + (m->exp_in ? m->exp_in : 60),
                             .generation = 1,
                             .single_use = m->single_use};
    assert_int_equal(claims_new_jti(&c), ZTB_OK);
    ztb_buf cb, tb;
    ztb_buf_init(&cb, 8192);
    ztb_buf_init_fixed(&tb, tok, cap);
    assert_int_equal(claims_write(&c, &cb), ZTB_OK);
    struct keys_state *ks = keys_acquire();
    ztb_jws_sign_opts so = {.typ = "at+jwt"};
    assert_int_equal(keys_sign_jws(ks, &so, ztb_buf_cstr(&cb), cb.len, &tb), ZTB_OK);
    assert_non_null(ztb_buf_cstr(&tb));
    keys_release(ks);
    ztb_buf_free(&cb);
}

/* A plain ztb:ssf token of agent (static; one per agent at a time). */
static const char *token_of(const char *agent)
{
    static char toks[4][4096];
    static int next;
    char *t = toks[next++ % 4];
    struct mint m = {0};
    mint(agent, &m, t, 4096);
    return t;
}

/* One request: headers (NULL-terminated, may be NULL) as given; body NULL
 * for none, sent as ctype. Returns the status. */
static long call_h(const char *method, const char *path, const char *const *headers,
                   const char *ctype, const char *body, struct zh_resp *r)
{
    char url[512];
    snprintf(url, sizeof(url), "%s%s", bf_broker.url, path);
    if (zh_http(method, url, NULL, ctype, body, body ? strlen(body) : 0, headers, r) != 0)
        fail_msg("%s %s: no answer", method, path);
    return r->status;
}

/* With tok as a Bearer token and a JSON body (may be NULL). */
static long call(const char *method, const char *path, const char *tok, const char *body,
                 struct zh_resp *r)
{
    char auth[4200];
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", tok);
    const char *h[] = {auth, NULL};
    return call_h(method, path, h, body ? "application/json" : NULL, body, r);
}

/* call, failing unless the status is want: the body's JSON (NULL if none). */
static json_t *expect(const char *method, const char *path, const char *tok, const char *body,
                      long want)
{
    struct zh_resp r;
    if (call(method, path, tok, body, &r) != want)
        fail_msg("%s %s: HTTP %ld %s (wanted %ld)", method, path, r.status, r.body, want);
    json_t *j = r.len > 0 ? json_loads(r.body, 0, NULL) : NULL;
    zh_resp_free(&r);
    return j;
}

/* Fail unless r has status and the RFC 6749 error code (and, if needle is
 * not NULL, it in the body); frees r. */
static void refused(struct zh_resp *r, long status, const char *code, const char *needle)
{
    if (r->status != status)
        fail_msg("expected HTTP %ld %s, got %ld %s", status, code, r->status, r->body);
    json_t *j = json_loads(r->body, 0, NULL);
    assert_non_null(j);
    const char *e = json_string_value(json_object_get(j, "error"));
    if (e == NULL || strcmp(e, code) != 0)
        fail_msg("expected error %s, got %s", code, r->body);
    if (needle != NULL && strstr(r->body, needle) == NULL)
        fail_msg("expected \"%s\" in %s", needle, r->body);
    json_decref(j);
    zh_resp_free(r);
}

/* A stream body pushing to the sink (path under it), with events (JSON
 * array members) and extra members (may be ""). */
static const char *stream_body(const char *path, const char *events, const char *extra)
{
    static char body[2048];
    snprintf(body, sizeof(body),
             "{%s\"delivery\": {\"method\": \"urn:ietf:rfc:8935\",\n"
             "  \"endpoint_url\": \"%s%s\", \"authorization_header\": \"" SECRET "\"},\n"
             " \"events_requested\": [%s], \"description\": \"unit\"}",
             extra, sink_srv.base, path, events);
    return body;
}

/* Create a stream as tok's agent; its id into id. */
static void create(const char *tok, char id[40])
{
    json_t *j = expect("POST", STREAMS, tok, stream_body("/ssf", "\"" SR "\"", ""), 201);
    snprintf(id, 40, "%s", json_string_value(json_object_get(j, "stream_id")));
    json_decref(j);
}

/* The stream as its owner reads it, compact text (caller frees). */
static char *read_stream(const char *tok, const char *id)
{
    char path[128];
    snprintf(path, sizeof(path), STREAMS "?stream_id=%s", id);
    json_t *j = expect("GET", path, tok, NULL, 200);
    char *s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(j);
    return s;
}

static int deleted(const char *tok, const char *id)
{
    char path[128];
    snprintf(path, sizeof(path), STREAMS "?stream_id=%s", id);
    json_decref(expect("DELETE", path, tok, NULL, 204));
    return 1;
}

/* ---- the tests -------------------------------------------------------------------- */

/* Who may: no credential is 401 with the bare challenge; a malformed
 * Authorization (another scheme, two of them, something after the token)
 * 401 invalid_request; a token not ours, for another audience, expired,
 * revoked, bound to a DPoP key or a certificate, or a single-use one used
 * again 401 invalid_token; another action 403 insufficient_scope; each with
 * the WWW-Authenticate challenge naming ztb:ssf. On every endpoint. */
static void test_authentication(void **state)
{
    (void)state;
    struct zh_resp r;
    char v[600];
    const char *paths[][2] = {{"GET", STREAMS}, {"GET", STATUS "?stream_id=x"}, {"POST", VERIFY}};
    for (size_t i = 0; i < 3; i++) {
        call_h(paths[i][0], paths[i][1], NULL, "application/json", "{}", &r);
        assert_non_null(zh_resp_header(&r, "WWW-Authenticate", v, sizeof(v)));
        assert_string_equal(v, "Bearer realm=\"ztb\", scope=\"ztb:ssf\"");
        refused(&r, 401, "invalid_token", "ztb-ssf");
    }
    const char *tok = token_of("rx-a");
    char h1[4200], h2[4200];
    const char *malformed[][3] = {{"Authorization: Basic cng6cHc=", NULL, NULL},
                                  {h2, NULL, NULL},
                                  {"Authorization: Bearer ", NULL, NULL}};
    snprintf(h1, sizeof(h1), "Authorization: Bearer %s", tok);
    snprintf(h2, sizeof(h2), "Authorization: Bearer %s x", tok);
    /* two Authorization headers: refused before the endpoint, for every
     * endpoint alike (RFC 6750 §3.1: 400 invalid_request) */
    const char *two[] = {h1, h2, NULL};
    call_h("GET", STREAMS, two, NULL, NULL, &r);
    refused(&r, 400, "invalid_request", "more than one Authorization header");
    for (size_t i = 0; i < 3; i++) {
        call_h("GET", STREAMS, malformed[i], NULL, NULL, &r);
        assert_non_null(zh_resp_header(&r, "WWW-Authenticate", v, sizeof(v)));
        assert_non_null(strstr(v, "error=\"invalid_request\""));
        refused(&r, 401, "invalid_request", NULL);
    }

    char bad[4096];
    struct {
        struct mint m;
        long status;
        const char *code, *needle;
    } cases[] = {
        {{.aud = "payments"}, 401, "invalid_token", "ztb-ssf"},
        {{.action = "ssf:read"}, 403, "insufficient_scope", "ztb:ssf"},
        {{.jkt = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"}, 401, "invalid_token", "Bearer"},
        {{.x5t = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"}, 401, "invalid_token", "Bearer"},
        {{.exp_in = -1}, 401, "invalid_token", "expired"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        mint("rx-a", &cases[i].m, bad, sizeof(bad));
        call("GET", STREAMS, bad, NULL, &r);
        assert_non_null(zh_resp_header(&r, "WWW-Authenticate", v, sizeof(v)));
        assert_non_null(strstr(v, cases[i].code));
        refused(&r, cases[i].status, cases[i].code, cases[i].needle);
    }
    /* not ours: garbage, and our token with its payload changed */
    call("GET", STREAMS, "eyJhbGciOiJFUzI1NiJ9.e30.AAAA", NULL, &r);
    refused(&r, 401, "invalid_token", NULL);
    snprintf(bad, sizeof(bad), "%s", token_of("rx-a"));
    char *dot = strchr(bad, '.');
    dot[3] = dot[3] == 'A' ? 'B' : 'A';
    call("GET", STREAMS, bad, NULL, &r);
    refused(&r, 401, "invalid_token", NULL);

    /* single use: the first call consumes it */
    struct mint once = {.single_use = 1};
    mint("rx-a", &once, bad, sizeof(bad));
    json_decref(expect("GET", STREAMS, bad, NULL, 200));
    call("GET", STREAMS, bad, NULL, &r);
    refused(&r, 401, "invalid_token", "already used");

    /* every token of a revoked agent */
    snprintf(bad, sizeof(bad), "%s", token_of("rx-gone"));
    json_decref(expect("GET", STREAMS, bad, NULL, 200));
    int64_t gen = 0, exp = 0;
    assert_int_equal(store_rev_agent("rx-gone", 120, 60, &gen, &exp), ZTB_OK);
    call("GET", STREAMS, bad, NULL, &r);
    refused(&r, 401, "invalid_token", "revoked");
}

/* Create, read, list, update, replace, status, delete as the owner: the
 * answers documented, the authorization_header never shown back, the aud the
 * owner's SPIFFE ID, and every change audited as agent:NAME. */
static void test_lifecycle(void **state)
{
    (void)state;
    const char *tok = token_of("rx-b");
    char id[40], path[128], body[2048];
    struct zh_resp r;

    /* transmitter-supplied members in the request are ignored */
    json_t *j = expect("POST", STREAMS, tok,
                       stream_body("/ssf", "\"" SR "\", \"urn:example:never-sent\"",
                                   "\"aud\": \"spiffe://ztb.local/agent/rx-a\", "),
                       201);
    snprintf(id, sizeof(id), "%s", json_string_value(json_object_get(j, "stream_id")));
    assert_int_equal(strlen(id), 26);
    assert_int_equal(strncmp(id, "ssf_", 4), 0);
    assert_string_equal(json_string_value(json_object_get(j, "aud")),
                        "spiffe://ztb.local/agent/rx-b");
    assert_string_equal(json_string_value(json_object_get(j, "iss")), g_broker.issuer);
    assert_int_equal(json_array_size(json_object_get(j, "events_delivered")), 1);
    char *text = json_dumps(j, 0);
    assert_null(strstr(text, "rx-delivery-secret"));
    free(text);
    json_decref(j);
    assert_true(bf_audit_has("ssf.stream_created", "\"actor\":\"agent:rx-b\""));

    /* read one, and the list */
    snprintf(path, sizeof(path), STREAMS "?stream_id=%s", id);
    assert_int_equal(call("GET", path, tok, NULL, &r), 200);
    assert_null(strstr(r.body, "rx-delivery-secret"));
    zh_resp_free(&r);
    j = expect("GET", STREAMS, tok, NULL, 200);
    assert_int_equal(json_array_size(j), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(j, 0), "stream_id")), id);
    json_decref(j);

    /* update: only the members given */
    snprintf(body, sizeof(body), "{\"stream_id\": \"%s\", \"events_requested\": [\"" QU "\"]}", id);
    j = expect("PATCH", STREAMS, tok, body, 200);
    assert_string_equal(
        json_string_value(json_array_get(json_object_get(j, "events_delivered"), 0)), QU);
    assert_non_null(
        strstr(json_string_value(json_object_get(json_object_get(j, "delivery"), "endpoint_url")),
               sink_srv.base));
    assert_string_equal(json_string_value(json_object_get(j, "description")), "unit");
    json_decref(j);
    assert_true(bf_audit_has("ssf.stream_updated", id));

    /* replace: what is not given is gone */
    snprintf(body, sizeof(body),
             "{\"stream_id\": \"%s\", \"delivery\": {\"method\": \"urn:ietf:rfc:8935\",\n"
             " \"endpoint_url\": \"https://a.siem.example/in\"}}",
             id);
    j = expect("PUT", STREAMS, tok, body, 200);
    assert_int_equal(json_array_size(json_object_get(j, "events_delivered")), 0);
    assert_string_equal(json_string_value(json_object_get(j, "description")), "");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(j, "delivery"), "endpoint_url")),
        "https://a.siem.example/in");
    json_decref(j);
    assert_true(bf_audit_has("ssf.stream_replaced", "https://a.siem.example"));

    /* status: enabled at first; paused with a reason (control characters
     * made spaces); read back */
    snprintf(path, sizeof(path), STATUS "?stream_id=%s", id);
    j = expect("GET", path, tok, NULL, 200);
    assert_string_equal(json_string_value(json_object_get(j, "status")), "enabled");
    assert_null(json_object_get(j, "reason"));
    json_decref(j);
    snprintf(body, sizeof(body),
             "{\"stream_id\": \"%s\", \"status\": \"paused\", \"reason\": \"maint\\nwindow\"}", id);
    j = expect("POST", STATUS, tok, body, 200);
    assert_string_equal(json_string_value(json_object_get(j, "stream_id")), id);
    assert_string_equal(json_string_value(json_object_get(j, "status")), "paused");
    assert_string_equal(json_string_value(json_object_get(j, "reason")), "maint window");
    json_decref(j);
    j = expect("GET", path, tok, NULL, 200);
    assert_string_equal(json_string_value(json_object_get(j, "status")), "paused");
    json_decref(j);
    assert_true(bf_audit_has("ssf.stream_status", "\"status\":\"paused\""));

    /* delete: 204 with no body; gone for every endpoint */
    snprintf(path, sizeof(path), STREAMS "?stream_id=%s", id);
    assert_int_equal(call("DELETE", path, tok, NULL, &r), 204);
    assert_int_equal(r.len, 0);
    zh_resp_free(&r);
    assert_true(bf_audit_has("ssf.stream_deleted", id));
    call("GET", path, tok, NULL, &r);
    refused(&r, 404, "not_found", NULL);
    call("DELETE", path, tok, NULL, &r);
    refused(&r, 404, "not_found", NULL);
    snprintf(path, sizeof(path), STATUS "?stream_id=%s", id);
    call("GET", path, tok, NULL, &r);
    refused(&r, 404, "not_found", NULL);
    j = expect("GET", STREAMS, tok, NULL, 200);
    assert_int_equal(json_array_size(j), 0);
    json_decref(j);
}

/* Bad input of every kind is a 4xx naming the problem, and the stream is as
 * it was: the media type, what is not a JSON object, unknown members, a
 * push host the operator did not list, a missing, repeated or malformed
 * stream_id, a status or reason or state out of bounds, extra members, a
 * method the endpoint does not serve. */
static void test_bad_input(void **state)
{
    (void)state;
    const char *tok = token_of("rx-c");
    char id[40], body[2048], path[160];
    struct zh_resp r;
    create(tok, id);
    char *before = read_stream(tok, id);
    char auth[4200];
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", tok);
    const char *h[] = {auth, NULL};

    /* the media type; not JSON; not an object */
    call_h("POST", STREAMS, h, "text/plain", stream_body("/x", "", ""), &r);
    assert_int_equal(r.status, 415);
    zh_resp_free(&r);
    const char *not_objects[] = {"{", "[]", "\"x\"", "{\"a\":1,\"a\":2}", ""};
    for (size_t i = 0; i < 5; i++) {
        call("POST", STREAMS, tok, not_objects[i], &r);
        refused(&r, 400, "invalid_request", NULL);
        call("POST", STATUS, tok, not_objects[i], &r);
        refused(&r, 400, "invalid_request", NULL);
        call("POST", VERIFY, tok, not_objects[i], &r);
        refused(&r, 400, "invalid_request", NULL);
    }
    /* unknown member, poll delivery, a host off push_hosts, plain http off
     * loopback */
    call("POST", STREAMS, tok, stream_body("/x", "", "\"owner\": \"rx-a\", "), &r);
    refused(&r, 400, "invalid_request", "owner");
    call("POST", STREAMS, tok, "{\"delivery\": {\"method\": \"urn:ietf:rfc:8936\"}}", &r);
    refused(&r, 400, "invalid_request", NULL);
    const char *urls[] = {"https://169.254.169.254/latest", "https://siem.example/e",
                          "http://a.siem.example/e"};
    for (size_t i = 0; i < 3; i++) {
        snprintf(body, sizeof(body),
                 "{\"delivery\": {\"method\": \"urn:ietf:rfc:8935\", \"endpoint_url\": \"%s\"}}",
                 urls[i]);
        call("POST", STREAMS, tok, body, &r);
        refused(&r, 400, "invalid_request", NULL);
        snprintf(body, sizeof(body),
                 "{\"stream_id\": \"%s\", \"delivery\": {\"method\": \"urn:ietf:rfc:8935\", "
                 "\"endpoint_url\": \"%s\"}}",
                 id, urls[i]);
        call("PATCH", STREAMS, tok, body, &r);
        refused(&r, 400, "invalid_request", NULL);
        call("PUT", STREAMS, tok, body, &r);
        refused(&r, 400, "invalid_request", NULL);
    }
    call("POST", STREAMS, tok,
         "{\"delivery\": {\"method\": \"urn:ietf:rfc:8935\", "
         "\"endpoint_url\": \"https://x.evil/\"}}",
         &r);
    refused(&r, 400, "invalid_request", "push_hosts");

    /* stream_id: missing, not a string, malformed, repeated */
    call("PATCH", STREAMS, tok, "{\"description\": \"x\"}", &r);
    refused(&r, 400, "invalid_request", "stream_id");
    call("PUT", STREAMS, tok, "{\"stream_id\": 7}", &r);
    refused(&r, 400, "invalid_request", "stream_id");
    call("PATCH", STREAMS, tok, "{\"stream_id\": \"ssf_*\", \"description\": \"x\"}", &r);
    refused(&r, 404, "not_found", NULL);
    call("GET", STREAMS "?stream_id=../../etc", tok, NULL, &r);
    refused(&r, 404, "not_found", NULL);
    snprintf(path, sizeof(path), STREAMS "?stream_id=%s&stream_id=%s", id, id);
    call("GET", path, tok, NULL, &r);
    refused(&r, 400, "invalid_request", "once");
    call("DELETE", path, tok, NULL, &r);
    refused(&r, 400, "invalid_request", "once");
    call("DELETE", STREAMS, tok, NULL, &r);
    refused(&r, 400, "invalid_request", "stream_id");
    call("GET", STATUS, tok, NULL, &r);
    refused(&r, 400, "invalid_request", "stream_id");

    /* status: the value, the reason, other members */
    /* (the cases are members after the stream_id) */
    const char *statuses[] = {
        "\"status\": \"stopped\"",
        "\"reason\": \"x\"",
        "\"status\": \"paused\", \"reason\": 5",
        "\"status\": \"paused\", \"reason\": \"a\\u0000b\"",
        "\"status\": \"paused\", \"events_requested\": []",
    };
    for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++) {
        snprintf(body, sizeof(body), "{\"stream_id\": \"%s\", %s}", id, statuses[i]);
        call("POST", STATUS, tok, body, &r);
        refused(&r, 400, "invalid_request", NULL);
    }
    char longer[400];
    memset(longer, 'r', 300);
    longer[300] = '\0';
    snprintf(body, sizeof(body),
             "{\"stream_id\": \"%s\", \"status\": \"paused\", \"reason\": "
             "\"%s\"}",
             id, longer);
    call("POST", STATUS, tok, body, &r);
    refused(&r, 400, "invalid_request", "reason");
    /* verification: the state, other members */
    snprintf(body, sizeof(body), "{\"stream_id\": \"%s\", \"state\": \"%s\"}", id, longer);
    call("POST", VERIFY, tok, body, &r);
    refused(&r, 400, "invalid_request", "state");
    snprintf(body, sizeof(body), "{\"stream_id\": \"%s\", \"state\": 1}", id);
    call("POST", VERIFY, tok, body, &r);
    refused(&r, 400, "invalid_request", "state");
    snprintf(body, sizeof(body), "{\"stream_id\": \"%s\", \"status\": \"x\"}", id);
    call("POST", VERIFY, tok, body, &r);
    refused(&r, 400, "invalid_request", "only");
    call("POST", VERIFY, tok, "{\"state\": \"s\"}", &r);
    refused(&r, 400, "invalid_request", "stream_id");

    /* methods */
    char v[128];
    call("OPTIONS", STREAMS, tok, NULL, &r);
    assert_non_null(zh_resp_header(&r, "Allow", v, sizeof(v)));
    assert_string_equal(v, "GET, POST, PUT, PATCH, DELETE");
    refused(&r, 405, "invalid_request", NULL);
    call("DELETE", STATUS, tok, NULL, &r);
    assert_non_null(zh_resp_header(&r, "Allow", v, sizeof(v)));
    assert_string_equal(v, "GET, POST");
    refused(&r, 405, "invalid_request", NULL);

    /* through all of it, the stream did not change */
    char *after = read_stream(tok, id);
    assert_string_equal(after, before);
    free(after);
    free(before);
    snprintf(path, sizeof(path), STATUS "?stream_id=%s", id);
    json_t *j = expect("GET", path, tok, NULL, 200);
    assert_string_equal(json_string_value(json_object_get(j, "status")), "enabled");
    json_decref(j);
    deleted(tok, id);
}

/* Another agent's stream is "not found" on every endpoint, exactly as one
 * that does not exist, it is not in that agent's list, and it is as its
 * owner left it. */
static void test_ownership(void **state)
{
    (void)state;
    const char *tok = token_of("rx-a");
    const char *otok = token_of("rx-d");
    char id[40], path[160], body[2048];
    struct zh_resp r;
    create(tok, id);
    char *before = read_stream(tok, id);
    snprintf(path, sizeof(path), STREAMS "?stream_id=%s", id);
    call("GET", path, otok, NULL, &r);
    char *theirs = strdup(r.body);
    refused(&r, 404, "not_found", NULL);
    call("GET", STREAMS "?stream_id=ssf_AAAAAAAAAAAAAAAAAAAAAA", otok, NULL, &r);
    assert_string_equal(r.body, theirs); /* the same answer as for none */
    refused(&r, 404, "not_found", NULL);
    free(theirs);
    call("DELETE", path, otok, NULL, &r);
    refused(&r, 404, "not_found", NULL);
    snprintf(body, sizeof(body), "{\"stream_id\": \"%s\", \"description\": \"mine\"}", id);
    call("PATCH", STREAMS, otok, body, &r);
    refused(&r, 404, "not_found", NULL);
    call("PUT", STREAMS, otok, body, &r);
    refused(&r, 404, "not_found", NULL);
    snprintf(body, sizeof(body), "{\"stream_id\": \"%s\", \"status\": \"disabled\"}", id);
    call("POST", STATUS, otok, body, &r);
    refused(&r, 404, "not_found", NULL);
    snprintf(path, sizeof(path), STATUS "?stream_id=%s", id);
    call("GET", path, otok, NULL, &r);
    refused(&r, 404, "not_found", NULL);
    snprintf(body, sizeof(body), "{\"stream_id\": \"%s\"}", id);
    call("POST", VERIFY, otok, body, &r);
    refused(&r, 404, "not_found", NULL);
    json_t *j = expect("GET", STREAMS, otok, NULL, 200);
    assert_int_equal(json_array_size(j), 0);
    json_decref(j);
    char *after = read_stream(tok, id);
    assert_string_equal(after, before);
    free(after);
    free(before);
    assert_false(bf_audit_has("ssf.stream_status", "agent:rx-d"));
    deleted(tok, id);
}

/* max_per_receiver (2) and max_streams (3): 409 conflict naming the limit;
 * a deleted stream gives its slot back. */
static void test_limits(void **state)
{
    (void)state;
    const char *ta = token_of("rx-a"), *tb = token_of("rx-b");
    char a1[40], a2[40], b1[40];
    struct zh_resp r;
    create(ta, a1);
    create(ta, a2);
    call("POST", STREAMS, ta, stream_body("/ssf", "", ""), &r);
    refused(&r, 409, "conflict", "has 2 streams");
    create(tb, b1);
    call("POST", STREAMS, tb, stream_body("/ssf", "", ""), &r);
    refused(&r, 409, "conflict", "holds 3 streams");
    deleted(ta, a2);
    create(tb, a2);
    deleted(ta, a1);
    deleted(tb, a2);
    deleted(tb, b1);
}

/* Verification: 204, and a verification SET with the state goes to the
 * stream's endpoint; a second within min_verification_interval is 429 with
 * Retry-After. */
static void test_verify(void **state)
{
    (void)state;
    const char *tok = token_of("rx-a");
    char id[40], body[256];
    create(tok, id);
    snprintf(body, sizeof(body), "{\"stream_id\": \"%s\", \"state\": \"st-%d\"}", id,
             (int)getpid());
    struct zh_resp r;
    assert_int_equal(call("POST", VERIFY, tok, body, &r), 204);
    assert_int_equal(r.len, 0);
    zh_resp_free(&r);
    /* the delivery thread pushes it (poll up to 5 s) */
    unsigned got = 0;
    for (int i = 0; i < 250 && got == 0; i++) {
        pthread_mutex_lock(&sink_srv.mu);
        got = sink.sets;
        pthread_mutex_unlock(&sink_srv.mu);
        if (got == 0)
            usleep(20 * 1000);
    }
    assert_int_equal(got, 1);
    pthread_mutex_lock(&sink_srv.mu);
    char set[8192];
    snprintf(set, sizeof(set), "%s", sink.last);
    pthread_mutex_unlock(&sink_srv.mu);
    char *dot = strchr(set, '.'), *end = dot ? strchr(dot + 1, '.') : NULL;
    assert_non_null(end);
    char claims[4096];
    size_t n = 0;
    assert_int_equal(
        ztb_b64url_decode(dot + 1, (size_t)(end - dot - 1), claims, sizeof(claims) - 1, &n),
        ZTB_OK);
    claims[n] = '\0';
    json_t *c = json_loads(claims, 0, NULL);
    assert_non_null(c);
    char st[32];
    snprintf(st, sizeof(st), "st-%d", (int)getpid());
    assert_string_equal(json_string_value(json_object_get(
                            json_object_get(json_object_get(c, "events"), VERIF), "state")),
                        st);
    assert_string_equal(json_string_value(json_object_get(c, "aud")),
                        "spiffe://ztb.local/agent/rx-a");
    json_decref(c);

    char v[32];
    call("POST", VERIFY, tok, body, &r);
    assert_non_null(zh_resp_header(&r, "Retry-After", v, sizeof(v)));
    assert_string_equal(v, "60");
    refused(&r, 429, "rate_limited", NULL);
    deleted(tok, id);

    /* a verification that could not be queued (no delivery thread) is
     * refused with 503 and Retry-After: 1, and costs no slot: the retry
     * it asks for is taken, not refused for the interval */
    create(tok, id);
    snprintf(body, sizeof(body), "{\"stream_id\": \"%s\"}", id);
    ssf_transmit_stop();
    call("POST", VERIFY, tok, body, &r);
    assert_non_null(zh_resp_header(&r, "Retry-After", v, sizeof(v)));
    assert_string_equal(v, "1");
    refused(&r, 503, "temporarily_unavailable", NULL);
    assert_int_equal(ssf_transmit_start(g_broker.ssf, g_broker.issuer, "ztb.local"), ZTB_OK);
    assert_int_equal(call("POST", VERIFY, tok, body, &r), 204);
    zh_resp_free(&r);
    deleted(tok, id);
}

/* Stream management off: 404 on every endpoint, before authentication.
 * Redis not answering: 503 with Retry-After, never a 2xx or a 401. */
static void test_off_and_unavailable(void **state)
{
    (void)state;
    struct zh_resp r;
    const char *tok = token_of("rx-a");
    g_broker.ssf->streams.enabled = 0;
    const char *paths[][2] = {{"GET", STREAMS}, {"GET", STATUS "?stream_id=x"}, {"POST", VERIFY}};
    for (size_t i = 0; i < 3; i++) {
        call_h(paths[i][0], paths[i][1], NULL, "application/json", "{}", &r);
        refused(&r, 404, "not_found", "streams");
    }
    g_broker.ssf->streams.enabled = 1;

    zh_redis_stop(&bf_redis, 0);
    char v[32];
    call("GET", STREAMS, tok, NULL, &r);
    assert_non_null(zh_resp_header(&r, "Retry-After", v, sizeof(v)));
    refused(&r, 503, "temporarily_unavailable", NULL);
    call("POST", STREAMS, tok, stream_body("/ssf", "", ""), &r);
    refused(&r, 503, "temporarily_unavailable", NULL);
    zh_redis_restart(&bf_redis);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_authentication),
        cmocka_unit_test(test_lifecycle),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_ownership),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_verify),
        cmocka_unit_test(test_off_and_unavailable),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
