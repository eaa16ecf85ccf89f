/*
 * test_authorize.c - /v1/authorize, the decision endpoint for gateways
 * (authorize.c), served by a real http_server in this process
 * (broker_fixture.h bf_serve) against a real Redis and key store, with a
 * route table of its own. The gateway is played by plain HTTP requests in
 * both forms (X-Original-Method / X-Original-URI, and the prefix form).
 *
 * What it shows: a token that fits the route is answered 200 with the
 * X-Ztb-* identity headers and audited; everything else is refused with
 * the documented status, error and WWW-Authenticate challenge, and never
 * carries an identity header: a caller off loopback (403 before anything is
 * read), no route table (404), a gateway that names the original request
 * wrongly (400), a path no route allows or that only a decoder would match
 * (403), a method override header naming another method (403), no,
 * repeated or malformed Authorization (401/400), a forged, expired, foreign, oversized token (401),
 * another audience (401), action or resource (403), each kind of revocation (401), a token bound to
 * a TLS certificate or to a DPoP key without a fresh proof by that key for the original method and
 * URL (401). A single-use token is consumed once and never by a refusal; a proof is taken once;
 * Redis gone is 503, not 200. Refusals of our tokens are audited, refusals of anything else are
 * not.
 */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "agent.h"
#include "broker/http/metrics.h"
#include "broker/http/proxy.h"
#include "broker/store/store.h"
#include "broker/store/store_rev.h"
#include "broker/tokens/authorize.h"
#include "broker_fixture.h"
#include "pki/dpop.h"
#include "wire/route_table.h"
#include "wire/wire.h"

#define ORIGIN "https://pay.example.org"
#define RM_URL ORIGIN "/.well-known/oauth-protected-resource"

/* The table: two routes, and one whose action is as long as a table
 * allows (%s: 251 characters after "pay:"). */
#define ROUTES_FMT                                                                                 \
    "{\"origin\": \"" ORIGIN "\", \"routes\": [\n"                                                 \
    " {\"method\": \"POST\", \"path\": \"/refunds/{id}\", \"audience\": \"pay\",\n"                \
    "  \"action\": \"pay:refund\", \"resource\": \"orders/{id}\"},\n"                              \
    " {\"method\": \"GET\", \"path\": \"/status\", \"audience\": \"pay\",\n"                       \
    "  \"action\": \"pay:read\"},\n"                                                               \
    " {\"method\": \"GET\", \"path\": \"/long\", \"audience\": \"pay\",\n"                         \
    "  \"action\": \"pay:%s\"}]}\n"

static char long_action[ROUTE_NAME_MAX];

static ztb_key *dpop_key, *other_key;

static int setup(void **state)
{
    (void)state;
    char path[400], why[512];
    bf_setup(NULL);
    assert_int_equal(store_agent_add("bot", 1), ZTB_OK);
    /* the loopback peer is a trusted proxy, so a test can name a client
     * off loopback with X-Forwarded-For (process-wide: before serving) */
    assert_int_equal(trusted_proxies_set("127.0.0.1", why, sizeof(why)), ZTB_OK);
    snprintf(path, sizeof(path), "%s/routes.json", bf_dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    memcpy(long_action, "pay:", 4);
    memset(long_action + 4, 'x', sizeof(long_action) - 5);
    long_action[sizeof(long_action) - 1] = '\0';
    fprintf(f, ROUTES_FMT, long_action + 4);
    fclose(f);
    g_broker.authz_routes = route_holder_new();
    assert_non_null(g_broker.authz_routes);
    if (route_holder_reload(g_broker.authz_routes, path, why, sizeof(why)) != ZTB_OK)
        fail_msg("routes: %s", why);
    bf_serve(0);
    assert_int_equal(ztb_key_generate(&dpop_key), ZTB_OK);
    assert_int_equal(ztb_key_generate(&other_key), ZTB_OK);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char why[64];
    bf_unserve();
    route_holder_free(g_broker.authz_routes);
    g_broker.authz_routes = NULL;
    assert_int_equal(trusted_proxies_set("", why, sizeof(why)), ZTB_OK);
    ztb_key_free(dpop_key);
    ztb_key_free(other_key);
    bf_teardown();
    return 0;
}

/* ---- tokens --------------------------------------------------------------- */

/* What a minted token says; unset fields take the defaults of tk_default. */
struct tk {
    const char *agent, *aud, *scope, *resource, *act, *jkt, *x5t, *typ;
    int64_t iat, exp, gen;
    int single_use;
};

/* A token of bot for pay:refund on orders/7, live for a minute. */
static struct tk tk_default(void)
{
    int64_t now = (int64_t)time(NULL);
    return (struct tk){.agent = "bot",
                       .aud = "pay",
                       .scope = "pay:refund",
                       .resource = "orders/7",
                       .typ = "at+jwt",
                       .iat = now,
                       .exp = now + 60,
                       .gen = 1};
}

/* Sign claims JSON text with the broker's active key into tok. */
static void sign_claims(const char *claims, size_t len, const char *typ, char *tok, size_t cap)
{
    ztb_buf tb;
    ztb_buf_init_fixed(&tb, tok, cap);
    struct keys_state *ks = keys_acquire();
    ztb_jws_sign_opts so = {.typ = typ};
    assert_int_equal(keys_sign_jws(ks, &so, claims, len, &tb), ZTB_OK);
    assert_non_null(ztb_buf_cstr(&tb));
    keys_release(ks);
}

/* The claims of t as the broker writes them (caller frees cb), jti out. */
static void claims_of(const struct tk *t, ztb_buf *cb, char jti[24])
{
    char spiffe[128];
    snprintf(spiffe, sizeof(spiffe), "spiffe://ztb.local/agent/%s", t->agent);
    struct token_claims c = {.iss = g_broker.issuer,
                             .agent = t->agent,
                             .spiffe_id = spiffe,
                             .audience = t->aud,
                             .action = t->scope,
                             .resource = t->resource,
                             .act_sub = t->act,
                             .cnf_jkt = t->jkt,
                             .cnf_x5t = t->x5t,
                             .iat = t->iat,
                             .exp = t->exp,
                             .generation = t->gen,
                             .single_use = t->single_use};
    assert_int_equal(claims_new_jti(&c), ZTB_OK);
    ztb_buf_init(cb, 8192);
    assert_int_equal(claims_write(&c, cb), ZTB_OK);
    if (jti != NULL)
        memcpy(jti, c.jti, sizeof(c.jti));
}

/* Mint t as the broker does into tok (4096 bytes); jti may be NULL. */
static void mint(const struct tk *t, char *jti, char *tok)
{
    ztb_buf cb;
    claims_of(t, &cb, jti);
    sign_claims(ztb_buf_cstr(&cb), cb.len, t->typ, tok, 4096);
    ztb_buf_free(&cb);
}

/* ---- the gateway ---------------------------------------------------------- */

/* method target on the served API with the headers (NULL-terminated). */
static long call(const char *method, const char *target, const char *const *headers,
                 struct zh_resp *r)
{
    char url[1024];
    snprintf(url, sizeof(url), "%s%s", bf_broker.url, target);
    assert_int_equal(zh_http(method, url, NULL, NULL, NULL, 0, headers, r), 0);
    return r->status;
}

/* The header form for (om, ouri) with Authorization auth and DPoP proof
 * (each NULL: not sent) and one more header (NULL: none). */
static long gw(const char *om, const char *ouri, const char *auth, const char *proof,
               const char *extra, struct zh_resp *r)
{
    static char hm[300], hu[1200], ha[10000], hp[4200];
    const char *h[6];
    size_t n = 0;
    snprintf(hm, sizeof(hm), "X-Original-Method: %s", om);
    snprintf(hu, sizeof(hu), "X-Original-URI: %s", ouri);
    h[n++] = hm;
    h[n++] = hu;
    if (auth != NULL) {
        snprintf(ha, sizeof(ha), "Authorization: %s", auth);
        h[n++] = ha;
    }
    if (proof != NULL) {
        snprintf(hp, sizeof(hp), "DPoP: %s", proof);
        h[n++] = hp;
    }
    if (extra != NULL)
        h[n++] = extra;
    h[n] = NULL;
    return call("GET", "/v1/authorize", h, r);
}

/* "Bearer tok" into out (10000 bytes). */
static const char *bearer(const char *tok, char *out)
{
    snprintf(out, 10000, "Bearer %s", tok);
    return out;
}

/* Fail unless r is a refusal: status, the JSON error code, a challenge
 * containing www (NULL: no check), and no identity header. */
static void expect_refused(const char *what, const struct zh_resp *r, long status, const char *code,
                           const char *www)
{
    char v[1200];
    if (r->status != status)
        fail_msg("%s: want %ld, got %ld: %s", what, status, r->status, r->body);
    json_t *j = za_json(r);
    const char *got = json_string_value(json_object_get(j, "error"));
    if (got == NULL || strcmp(got, code) != 0)
        fail_msg("%s: want error %s, got %s", what, code, r->body);
    json_decref(j);
    assert_null(strstr(r->headers, "X-Ztb-"));
    assert_null(strstr(r->body, "\"allowed\""));
    if (www != NULL) {
        if (zh_resp_header(r, "WWW-Authenticate", v, sizeof(v)) == NULL)
            fail_msg("%s: no WWW-Authenticate", what);
        if (strstr(v, www) == NULL)
            fail_msg("%s: WWW-Authenticate %s has no %s", what, v, www);
    }
}

/* The header form with "Bearer tok" for POST /refunds/7; expect a refusal. */
static void refund_refused(const char *what, const char *tok, long status, const char *code,
                           const char *www)
{
    char auth[10000];
    struct zh_resp r;
    gw("POST", "/refunds/7", bearer(tok, auth), NULL, NULL, &r);
    expect_refused(what, &r, status, code, www);
    zh_resp_free(&r);
}

/* How many audit lines have event. */
static int audit_count(const char *event)
{
    char ev[96];
    snprintf(ev, sizeof(ev), "\"event\":\"%s\"", event);
    char *s = bf_audit();
    int n = 0;
    for (const char *p = s; (p = strstr(p, ev)) != NULL; p += strlen(ev))
        n++;
    free(s);
    return n;
}

/* A DPoP proof by k for (htm, htu) at iat with tok's ath into out (4096). */
static void proof_of(const ztb_key *k, const char *htm, const char *htu, int64_t iat,
                     const char *tok, char *out)
{
    ztb_buf p;
    ztb_buf_init_fixed(&p, out, 4096);
    assert_int_equal(ztb_dpop_proof_make(k, htm, htu, iat, tok, &p), ZTB_OK);
    assert_non_null(ztb_buf_cstr(&p));
}

/* ---- allowed -------------------------------------------------------------- */

/* A token that fits the route: 200 {"allowed":true}, the identity headers
 * (subject, agent, action, the resource the route names, jti), no-store,
 * no actor for an undelegated token; audited with the jti. The same in the
 * prefix form, with a query string, in any case of the scheme, and for a
 * route without a resource. */
static void test_allowed(void **state)
{
    (void)state;
    char tok[4096], jti[24], auth[10000], v[1024];
    struct tk t = tk_default();
    mint(&t, jti, tok);
    struct zh_resp r;
    assert_int_equal(gw("POST", "/refunds/7", bearer(tok, auth), NULL, NULL, &r), 200);
    json_t *j = za_json(&r);
    assert_true(json_is_true(json_object_get(j, "allowed")));
    json_decref(j);
    assert_string_equal(zh_resp_header(&r, "X-Ztb-Subject", v, sizeof(v)),
                        "spiffe://ztb.local/agent/bot");
    assert_string_equal(zh_resp_header(&r, "X-Ztb-Agent", v, sizeof(v)), "bot");
    assert_string_equal(zh_resp_header(&r, "X-Ztb-Action", v, sizeof(v)), "pay:refund");
    assert_string_equal(zh_resp_header(&r, "X-Ztb-Resource", v, sizeof(v)), "orders/7");
    assert_string_equal(zh_resp_header(&r, "X-Ztb-Jti", v, sizeof(v)), jti);
    assert_string_equal(zh_resp_header(&r, "Cache-Control", v, sizeof(v)), "no-store");
    assert_null(zh_resp_header(&r, "X-Ztb-Actor", v, sizeof(v)));
    zh_resp_free(&r);
    assert_true(bf_audit_has("authorize.allowed", jti));

    /* the prefix form: the original method to /v1/authorize/<path> */
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", tok);
    const char *h[] = {auth, NULL};
    assert_int_equal(call("POST", "/v1/authorize/refunds/7", h, &r), 200);
    assert_string_equal(zh_resp_header(&r, "X-Ztb-Resource", v, sizeof(v)), "orders/7");
    zh_resp_free(&r);
    assert_int_equal(call("POST", "/v1/authorize/refunds/7?reason=dup", h, &r), 200);
    zh_resp_free(&r);
    snprintf(auth, sizeof(auth), "bEaReR %s", tok);
    assert_int_equal(gw("POST", "/refunds/7?x=1", auth, NULL, NULL, &r), 200);
    zh_resp_free(&r);

    /* a route without a resource: a token without one, X-Ztb-Resource "" */
    t.scope = "pay:read";
    t.resource = NULL;
    t.act = "spiffe://ztb.local/agent/boss";
    mint(&t, NULL, tok);
    assert_int_equal(gw("GET", "/status", bearer(tok, auth), NULL, NULL, &r), 200);
    assert_string_equal(zh_resp_header(&r, "X-Ztb-Actor", v, sizeof(v)),
                        "spiffe://ztb.local/agent/boss");
    zh_resp_free(&r);
}

/* ---- refused before any token is read ------------------------------------- */

/* A caller off loopback is refused 403 before anything is read: a valid
 * single-use token sent from there is not used up. The loopback test itself
 * on the address families (called directly: no header is read before it). */
static void test_off_loopback(void **state)
{
    (void)state;
    char tok[4096], jti[24], auth[10000];
    struct tk t = tk_default();
    t.single_use = 1;
    mint(&t, jti, tok);
    const char *xff[] = {"X-Forwarded-For: 203.0.113.9", "X-Forwarded-For: 10.0.0.1",
                         "X-Forwarded-For: 128.0.0.1",   "X-Forwarded-For: ::ffff:10.0.0.1",
                         "X-Forwarded-For: 2001:db8::1", "X-Forwarded-For: not-an-address"};
    struct zh_resp r;
    for (size_t i = 0; i < sizeof(xff) / sizeof(xff[0]); i++) {
        gw("POST", "/refunds/7", bearer(tok, auth), NULL, xff[i], &r);
        expect_refused(xff[i], &r, 403, "access_denied", NULL);
        assert_non_null(strstr(r.body, "loopback"));
        zh_resp_free(&r);
    }
    assert_int_equal(bf_redis_int("EXISTS " ZTB_WIRE_USED_KEY_FMT, jti), 0);
    /* loopback clients named by the proxy are gateways on this host */
    const char *ok[] = {"X-Forwarded-For: 127.0.0.2", "X-Forwarded-For: ::1",
                        "X-Forwarded-For: ::ffff:127.0.0.1"};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        gw("GET", "/status", NULL, NULL, ok[i], &r);
        expect_refused(ok[i], &r, 401, "invalid_token", NULL); /* got past the caller check */
        zh_resp_free(&r);
    }
    /* the token was not used up by the refusals */
    assert_int_equal(gw("POST", "/refunds/7", bearer(tok, auth), NULL, NULL, &r), 200);
    zh_resp_free(&r);

    /* the address families, on the handler itself */
    struct sockaddr_in v4 = {.sin_family = AF_INET};
    struct sockaddr_in6 v6 = {.sin6_family = AF_INET6};
    struct {
        const struct sockaddr *peer;
        int fam;
        const char *addr;
        unsigned status;
    } cases[] = {
        {(const struct sockaddr *)&v4, 4, "127.0.0.1", 400},
        {(const struct sockaddr *)&v4, 4, "127.255.255.254", 400},
        {(const struct sockaddr *)&v4, 4, "126.255.255.255", 403},
        {(const struct sockaddr *)&v4, 4, "192.0.2.1", 403},
        {(const struct sockaddr *)&v6, 6, "::1", 400},
        {(const struct sockaddr *)&v6, 6, "::ffff:127.0.0.9", 400},
        {(const struct sockaddr *)&v6, 6, "::ffff:192.0.2.1", 403},
        {(const struct sockaddr *)&v6, 6, "::2", 403},
        {(const struct sockaddr *)&v6, 6, "::127.0.0.1", 403}, /* v4-compatible, not mapped */
        {(const struct sockaddr *)&v6, 6, "fe80::1", 403},
        {NULL, 0, NULL, 403}, /* the unix socket */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        if (cases[i].fam == 4)
            assert_int_equal(inet_pton(AF_INET, cases[i].addr, &v4.sin_addr), 1);
        else if (cases[i].fam == 6)
            assert_int_equal(inet_pton(AF_INET6, cases[i].addr, &v6.sin6_addr), 1);
        struct http_req req = {.method = "GET",
                               .path = "/v1/authorize",
                               .target = "/v1/authorize",
                               .peer = cases[i].peer,
                               .server_ctx = &g_broker};
        struct http_resp resp;
        memset(&resp, 0, sizeof(resp));
        ztb_buf_init(&resp.body, 1 << 16);
        handle_authorize(&req, &resp);
        if (resp.status != cases[i].status)
            fail_msg("%s: want %u, got %u", cases[i].addr ? cases[i].addr : "unix", cases[i].status,
                     resp.status);
        if (resp.status == 403)
            assert_non_null(strstr(ztb_buf_cstr(&resp.body), "access_denied"));
        ztb_buf_free(&resp.body);
    }
}

/* No route table configured: 404, whatever the caller. */
static void test_no_route_table(void **state)
{
    (void)state;
    struct broker off;
    memset(&off, 0, sizeof(off));
    struct sockaddr_in v4 = {.sin_family = AF_INET};
    assert_int_equal(inet_pton(AF_INET, "127.0.0.1", &v4.sin_addr), 1);
    struct http_req req = {.method = "GET",
                           .path = "/v1/authorize",
                           .target = "/v1/authorize",
                           .peer = (const struct sockaddr *)&v4,
                           .server_ctx = &off};
    struct http_resp resp;
    memset(&resp, 0, sizeof(resp));
    ztb_buf_init(&resp.body, 1 << 16);
    handle_authorize(&req, &resp);
    assert_int_equal(resp.status, 404);
    assert_non_null(strstr(ztb_buf_cstr(&resp.body), "authorize_routes"));
    assert_int_equal(resp.nhdr, 0);
    ztb_buf_free(&resp.body);
}

/* A gateway that names the original request wrongly gets 400
 * invalid_request (counted), never a decision: a header missing or sent
 * twice, both forms at once, an encoded prefix. */
static void test_gateway_misuse(void **state)
{
    (void)state;
    char tok[4096], a[10000];
    struct tk t = tk_default();
    mint(&t, NULL, tok);
    snprintf(a, sizeof(a), "Authorization: Bearer %s", tok);
    uint64_t counted = metrics_refused_get("/v1/authorize", REFUSED_INVALID_REQUEST);
    struct zh_resp r;
    const char *no_uri[] = {a, "X-Original-Method: POST", NULL};
    call("GET", "/v1/authorize", no_uri, &r);
    expect_refused("no URI", &r, 400, "invalid_request", NULL);
    zh_resp_free(&r);
    const char *no_method[] = {a, "X-Original-URI: /refunds/7", NULL};
    call("GET", "/v1/authorize", no_method, &r);
    expect_refused("no method", &r, 400, "invalid_request", NULL);
    zh_resp_free(&r);
    const char *two_uris[] = {a, "X-Original-Method: POST", "X-Original-URI: /status",
                              "X-Original-URI: /refunds/7", NULL};
    call("GET", "/v1/authorize", two_uris, &r);
    expect_refused("two URIs", &r, 400, "invalid_request", NULL);
    zh_resp_free(&r);
    const char *two_methods[] = {a, "X-Original-Method: GET", "X-Original-Method: POST",
                                 "X-Original-URI: /refunds/7", NULL};
    call("GET", "/v1/authorize", two_methods, &r);
    expect_refused("two methods", &r, 400, "invalid_request", NULL);
    zh_resp_free(&r);
    assert_int_equal(metrics_refused_get("/v1/authorize", REFUSED_INVALID_REQUEST), counted + 4);
    /* the prefix form with an X-Original-* header beside it */
    const char *both[] = {a, "X-Original-URI: /status", NULL};
    call("POST", "/v1/authorize/refunds/7", both, &r);
    expect_refused("both forms", &r, 400, "invalid_request", NULL);
    zh_resp_free(&r);
    /* a prefix an HTTP server's decoding would route here */
    const char *h[] = {a, NULL};
    call("POST", "/v1/authorize%2Frefunds%2F7", h, &r);
    expect_refused("encoded prefix", &r, 400, "invalid_request", NULL);
    zh_resp_free(&r);
}

/* A path no route allows is 403 insufficient_scope with the resource
 * metadata, and nothing else is read: a single-use token is not used up.
 * Paths that only a decoder or normaliser would match never match. */
static void test_no_route(void **state)
{
    (void)state;
    char tok[4096], jti[24], auth[10000];
    struct tk t = tk_default();
    t.single_use = 1;
    mint(&t, jti, tok);
    struct {
        const char *method, *uri;
    } bad[] = {
        {"GET", "/refunds/7"},      {"DELETE", "/refunds/7"},   {"post", "/refunds/7"},
        {"POST", "/refunds/7/"},    {"POST", "/refunds//7"},    {"POST", "/refunds/../7"},
        {"POST", "/refunds/%37"},   {"POST", "/refunds/7%2F8"}, {"POST", "/refunds/.."},
        {"POST", "/refunds/7;x=1"}, {"POST", "/refunds/7#f"},   {"POST", "/Refunds/7"},
        {"POST", "/./refunds/7"},   {"POST", "refunds/7"},      {"POST", "*"},
        {"POST", "/refunds/7\\8"},  {"GET", "/status/"},        {"GET", "/"},
    };
    struct zh_resp r;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        gw(bad[i].method, bad[i].uri, bearer(tok, auth), NULL, NULL, &r);
        expect_refused(bad[i].uri, &r, 403, "insufficient_scope",
                       "Bearer realm=\"ztb\", error=\"insufficient_scope\"");
        expect_refused(bad[i].uri, &r, 403, "insufficient_scope",
                       "resource_metadata=\"" RM_URL "\"");
        zh_resp_free(&r);
    }
    /* an id over 128 characters, a URI over the table's limit */
    char longid[300], longuri[ROUTE_PATH_MAX + 100];
    memset(longid, '7', sizeof(longid) - 1);
    longid[sizeof(longid) - 1] = '\0';
    snprintf(longuri, sizeof(longuri), "/refunds/%s", longid);
    gw("POST", longuri, bearer(tok, auth), NULL, NULL, &r);
    expect_refused("long id", &r, 403, "insufficient_scope", NULL);
    zh_resp_free(&r);
    memset(longuri, 'a', sizeof(longuri) - 1);
    longuri[0] = '/';
    longuri[sizeof(longuri) - 1] = '\0';
    gw("POST", longuri, bearer(tok, auth), NULL, NULL, &r);
    expect_refused("long URI", &r, 403, "insufficient_scope", NULL);
    zh_resp_free(&r);
    assert_int_equal(bf_redis_int("EXISTS " ZTB_WIRE_USED_KEY_FMT, jti), 0);
    assert_int_equal(gw("POST", "/refunds/7", bearer(tok, auth), NULL, NULL, &r), 200);
    zh_resp_free(&r);
}

/* ATTACK: a method override header of the client's, which the gateway
 * passes on (nginx's auth_request forwards every client header): a backend
 * that honours it would run DELETE where POST was authorized. 403 before the
 * token is read (a single-use token is not used up), whatever the header's
 * case, and so is a _method query parameter; a header naming the original
 * method itself is harmless. */
static void test_method_override(void **state)
{
    (void)state;
    char tok[4096], jti[24], auth[10000];
    struct tk t = tk_default();
    t.single_use = 1;
    mint(&t, jti, tok);
    static const char *const bad[] = {
        "X-HTTP-Method-Override: DELETE",
        "x-http-method: DELETE",
        "X-Method-Override: PUT",
        "X-HTTP-Method-Override: post",
    };
    struct zh_resp r;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        gw("POST", "/refunds/7", bearer(tok, auth), NULL, bad[i], &r);
        expect_refused(bad[i], &r, 403, "access_denied", NULL);
        zh_resp_free(&r);
    }
    /* the _method query parameter of Symfony and Laravel */
    gw("POST", "/refunds/7?_method=DELETE", bearer(tok, auth), NULL, NULL, &r);
    expect_refused("_method", &r, 403, "access_denied", NULL);
    zh_resp_free(&r);
    /* the prefix form, the header let through by Envoy's allowed_headers */
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", tok);
    const char *hp[] = {auth, "X-HTTP-Method-Override: DELETE", NULL};
    call("POST", "/v1/authorize/refunds/7", hp, &r);
    expect_refused("prefix form", &r, 403, "access_denied", NULL);
    zh_resp_free(&r);
    assert_int_equal(bf_redis_int("EXISTS " ZTB_WIRE_USED_KEY_FMT, jti), 0);
    /* naming the original method: the token goes through, once */
    assert_int_equal(
        gw("POST", "/refunds/7", bearer(tok, auth), NULL, "X-HTTP-Method-Override: POST", &r), 200);
    zh_resp_free(&r);
}

/* No Authorization: 401 with a challenge for both schemes and no error
 * code (RFC 6750 §3.1). One that is not "Bearer|DPoP <token68>", or two of
 * them: 400 invalid_request. */
static void test_authorization_header(void **state)
{
    (void)state;
    struct zh_resp r;
    uint64_t counted = metrics_refused_get("/v1/authorize", REFUSED_INVALID_CLIENT);
    gw("POST", "/refunds/7", NULL, NULL, NULL, &r);
    expect_refused("none", &r, 401, "invalid_token",
                   "Bearer realm=\"ztb\", resource_metadata=\"" RM_URL "\", DPoP realm=\"ztb\", "
                   "algs=\"ES256\", resource_metadata=\"" RM_URL "\"");
    char v[1200];
    zh_resp_header(&r, "WWW-Authenticate", v, sizeof(v));
    assert_null(strstr(v, "error="));
    zh_resp_free(&r);
    assert_int_equal(metrics_refused_get("/v1/authorize", REFUSED_INVALID_CLIENT), counted + 1);

    char tok[4096], a[10000];
    struct tk t = tk_default();
    mint(&t, NULL, tok);
    /* what comes before and after the token (NULL after: no token) */
    const struct {
        const char *before, *after;
    } bad[] = {{"Basic ", ""},     {"Bearer", NULL},  {"Bearer ", NULL},   {"Bearer  ", NULL},
               {"Bearer ", " x"},  {"Bearer ", ","},  {"Bearer\t", ""},    {"Bearer \"", "\""},
               {"Token ", ""},     {"", ""},          {"BearerX ", ""},    {"DPoP", NULL},
               {"Bearer ", "%00"}, {"Bearer ", "\\"}, {"Bearer ", "\x7f"}, {"Bearer ", "\xc3\xa9"}};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(a, sizeof(a), "%s%s%s", bad[i].before, bad[i].after ? tok : "",
                 bad[i].after ? bad[i].after : "");
        gw("POST", "/refunds/7", a, NULL, NULL, &r);
        expect_refused(bad[i].before, &r, 400, "invalid_request", "error=\"invalid_request\"");
        zh_resp_free(&r);
    }
    char h1[10000];
    snprintf(h1, sizeof(h1), "Authorization: Bearer %s", tok);
    const char *two[] = {h1, h1, "X-Original-Method: POST", "X-Original-URI: /refunds/7", NULL};
    call("GET", "/v1/authorize", two, &r);
    expect_refused("two", &r, 400, "invalid_request", NULL);
    zh_resp_free(&r);
}

/* ---- the token ------------------------------------------------------------ */

/* Anything that is not a live token of this broker: 401 invalid_token with
 * the scheme's challenge and the reason; not audited (only counted). */
static void test_not_our_token(void **state)
{
    (void)state;
    int audited = audit_count("authorize.refused");
    char tok[4096];
    refund_refused("garbage", "abc", 401, "invalid_token",
                   "Bearer realm=\"ztb\", error=\"invalid_token\", error_description=\"the "
                   "token is not a valid token of this broker\"");
    refund_refused("three dots", "a.b.c", 401, "invalid_token", NULL);
    char big[9000];
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    refund_refused("oversized", big, 401, "invalid_token", NULL);

    struct tk t = tk_default();
    t.typ = "JWT";
    mint(&t, NULL, tok);
    refund_refused("typ JWT", tok, 401, "invalid_token", NULL);

    /* signed by a key the broker does not have, same claims */
    ztb_buf cb, tb;
    t = tk_default();
    claims_of(&t, &cb, NULL);
    ztb_buf_init_fixed(&tb, tok, sizeof(tok));
    ztb_jws_sign_opts so = {.typ = "at+jwt"};
    assert_int_equal(ztb_jws_sign(other_key, &so, ztb_buf_cstr(&cb), cb.len, &tb), ZTB_OK);
    ztb_buf_free(&cb);
    refund_refused("forged", ztb_buf_cstr(&tb), 401, "invalid_token", NULL);

    /* ours with a byte of the signature changed */
    t = tk_default();
    mint(&t, NULL, tok);
    size_t n = strlen(tok);
    tok[n - 2] = tok[n - 2] == 'A' ? 'B' : 'A';
    refund_refused("bad signature", tok, 401, "invalid_token", NULL);

    t = tk_default();
    t.iat -= 200;
    t.exp = (int64_t)time(NULL) - 1;
    mint(&t, NULL, tok);
    refund_refused("expired", tok, 401, "invalid_token", "the token has expired");
    t = tk_default();
    t.iat += 600;
    t.exp += 900;
    mint(&t, NULL, tok);
    refund_refused("not yet", tok, 401, "invalid_token", "the token is not valid yet");

    /* another issuer */
    char iss[256];
    snprintf(iss, sizeof(iss), "%s", g_broker.issuer);
    snprintf(g_broker.issuer, sizeof(g_broker.issuer), "https://other.example");
    t = tk_default();
    mint(&t, NULL, tok);
    snprintf(g_broker.issuer, sizeof(g_broker.issuer), "%s", iss);
    refund_refused("issuer", tok, 401, "invalid_token", "the token is not from this broker");
    assert_int_equal(audit_count("authorize.refused"), audited);
}

/* Ours, verified, but not for this route: another audience 401, another
 * action or resource 403 insufficient_scope naming the scope needed; each
 * audited with the reason, none consumes a single-use token. */
static void test_not_for_this_route(void **state)
{
    (void)state;
    char tok[4096], jti[24], needle[128];
    struct tk t = tk_default();
    t.single_use = 1;
    t.aud = "crm";
    mint(&t, jti, tok);
    refund_refused("audience", tok, 401, "invalid_token", "the token is for another audience");
    snprintf(needle, sizeof(needle), "\"jti\":\"%s\"", jti);
    assert_true(bf_audit_has("authorize.refused", needle));
    assert_int_equal(bf_redis_int("EXISTS " ZTB_WIRE_USED_KEY_FMT, jti), 0);

    t = tk_default();
    t.single_use = 1;
    t.scope = "pay:read";
    mint(&t, jti, tok);
    refund_refused("action", tok, 403, "insufficient_scope",
                   "error=\"insufficient_scope\", error_description=\"the token is for another "
                   "action\", scope=\"pay:refund\"");
    snprintf(needle, sizeof(needle), "\"jti\":\"%s\"", jti);
    assert_true(bf_audit_has("authorize.refused", needle));
    assert_int_equal(bf_redis_int("EXISTS " ZTB_WIRE_USED_KEY_FMT, jti), 0);

    struct {
        const char *resource, *what;
    } res[] = {{"orders/8", "another order"},
               {NULL, "no resource"},
               {"orders/7/x", "a longer resource"},
               {"orders/", "a shorter resource"},
               {"ORDERS/7", "another case"}};
    for (size_t i = 0; i < sizeof(res) / sizeof(res[0]); i++) {
        t = tk_default();
        t.single_use = 1;
        t.resource = res[i].resource;
        mint(&t, jti, tok);
        refund_refused(res[i].what, tok, 403, "insufficient_scope",
                       "the token is for another resource");
        assert_int_equal(bf_redis_int("EXISTS " ZTB_WIRE_USED_KEY_FMT, jti), 0);
    }
    /* a token with a resource on a route that names none */
    char auth[10000];
    struct zh_resp r;
    t = tk_default();
    t.scope = "pay:read";
    mint(&t, NULL, tok);
    gw("GET", "/status", bearer(tok, auth), NULL, NULL, &r);
    expect_refused("resource on a route without", &r, 403, "insufficient_scope", NULL);
    zh_resp_free(&r);
    /* the longest action a table allows is named whole in the challenge */
    char www[1200], scope[ROUTE_NAME_MAX + 16];
    gw("GET", "/long", bearer(tok, auth), NULL, NULL, &r);
    expect_refused("long action", &r, 403, "insufficient_scope", NULL);
    assert_non_null(zh_resp_header(&r, "WWW-Authenticate", www, sizeof(www)));
    snprintf(scope, sizeof(scope), "scope=\"%s\"", long_action);
    if (strstr(www, scope) == NULL)
        fail_msg("the challenge is cut short: %s", www);
    zh_resp_free(&r);
    /* the reason is audited by name */
    snprintf(needle, sizeof(needle), "\"reason\":\"%s\"", ztb_err_name(ZTB_ERR_RESOURCE));
    assert_true(bf_audit_has("authorize.refused", needle));
}

/* Revoked in each way: 401 with the reason, audited. A single-use token is
 * consumed by the first decision only. */
static void test_revocation_and_single_use(void **state)
{
    (void)state;
    char tok[4096], jti[24], auth[10000];
    int64_t now = (int64_t)time(NULL);
    int applied;
    struct tk t = tk_default();
    mint(&t, jti, tok);
    assert_int_equal(store_rev_jti(jti, now + 60, 60, 0, &applied), ZTB_OK);
    refund_refused("jti", tok, 401, "invalid_token", "the token was revoked");

    assert_int_equal(store_agent_add("gone", 1), ZTB_OK);
    t = tk_default();
    t.agent = "gone";
    mint(&t, NULL, tok);
    int64_t gen, exp;
    assert_int_equal(store_rev_agent("gone", 300, 60, &gen, &exp), ZTB_OK);
    refund_refused("agent", tok, 401, "invalid_token", "the agent's tokens were revoked");
    t.agent = "nobody"; /* an agent Redis does not know: fail closed */
    mint(&t, NULL, tok);
    refund_refused("unknown agent", tok, 401, "invalid_token", NULL);

    t = tk_default();
    mint(&t, NULL, tok);
    assert_int_equal(store_rev_audience("pay", 0, 60, NULL), ZTB_OK);
    refund_refused("audience killed", tok, 401, "invalid_token", "the audience is disabled");
    assert_int_equal(store_rev_audience("pay", 1, 60, NULL), ZTB_OK);
    struct zh_resp r;
    assert_int_equal(gw("POST", "/refunds/7", bearer(tok, auth), NULL, NULL, &r), 200);
    zh_resp_free(&r);

    /* single use: 200 once, then 401, with the verifiers' marker */
    t = tk_default();
    t.single_use = 1;
    mint(&t, jti, tok);
    assert_int_equal(gw("POST", "/refunds/7", bearer(tok, auth), NULL, NULL, &r), 200);
    zh_resp_free(&r);
    assert_int_equal(bf_redis_int("EXISTS " ZTB_WIRE_USED_KEY_FMT, jti), 1);
    refund_refused("replay", tok, 401, "invalid_token", "the single-use token was already used");
    char needle[128];
    snprintf(needle, sizeof(needle), "\"reason\":\"%s\"", ztb_err_name(ZTB_ERR_REPLAY));
    assert_true(bf_audit_has("authorize.refused", needle));
}

/* ---- bindings ------------------------------------------------------------- */

/* A token bound to a TLS certificate (or to a binding ztb cannot check)
 * is never accepted here, with either scheme. */
static void test_mtls_bound(void **state)
{
    (void)state;
    char tok[4096], auth[10000];
    struct tk t = tk_default();
    t.x5t = "bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2";
    mint(&t, NULL, tok);
    refund_refused("x5t", tok, 401, "invalid_token", "bound to a TLS client certificate");
    snprintf(auth, sizeof(auth), "DPoP %s", tok);
    struct zh_resp r;
    gw("POST", "/refunds/7", auth, NULL, NULL, &r);
    expect_refused("x5t as DPoP", &r, 401, "invalid_token", "DPoP realm=\"ztb\"");
    zh_resp_free(&r);

    /* cnf with a member ztb cannot check, beside a jkt */
    ztb_buf cb;
    t = tk_default();
    t.jkt = ztb_key_kid(dpop_key);
    claims_of(&t, &cb, NULL);
    const char *cnf = strstr(ztb_buf_cstr(&cb), "\"cnf\":{");
    assert_non_null(cnf);
    char claims[8192];
    size_t at = (size_t)(cnf - ztb_buf_cstr(&cb)) + strlen("\"cnf\":{");
    snprintf(claims, sizeof(claims), "%.*s\"x5u\":\"https://a.example\",%s", (int)at,
             ztb_buf_cstr(&cb), ztb_buf_cstr(&cb) + at);
    ztb_buf_free(&cb);
    sign_claims(claims, strlen(claims), "at+jwt", tok, sizeof(tok));
    char proof[4096];
    proof_of(dpop_key, "POST", ORIGIN "/refunds/7", (int64_t)time(NULL), tok, proof);
    snprintf(auth, sizeof(auth), "DPoP %s", tok);
    gw("POST", "/refunds/7", auth, proof, NULL, &r);
    expect_refused("cnf x5u", &r, 401, "invalid_token", "bound to a TLS client certificate");
    zh_resp_free(&r);
}

/* A DPoP-bound token: only with the DPoP scheme and a fresh proof by the
 * bound key for the original method and the table's origin + path (query
 * left out), carrying the token's hash; each proof once. A token that is
 * not bound is refused with the DPoP scheme. */
static void test_dpop_bound(void **state)
{
    (void)state;
    char tok[4096], other_tok[4096], auth[10000], proof[4096];
    int64_t now = (int64_t)time(NULL);
    struct tk t = tk_default();
    t.jkt = ztb_key_kid(dpop_key);
    mint(&t, NULL, tok);
    t.jkt = NULL;
    mint(&t, NULL, other_tok);
    snprintf(auth, sizeof(auth), "DPoP %s", tok);
    struct zh_resp r;

    /* the Bearer scheme, even with a good proof beside it */
    proof_of(dpop_key, "POST", ORIGIN "/refunds/7", now, tok, proof);
    char ba[10000];
    gw("POST", "/refunds/7", bearer(tok, ba), proof, NULL, &r);
    expect_refused("Bearer scheme", &r, 401, "invalid_token",
                   "DPoP realm=\"ztb\", error=\"invalid_token\"");
    zh_resp_free(&r);
    /* no proof */
    gw("POST", "/refunds/7", auth, NULL, NULL, &r);
    expect_refused("no proof", &r, 401, "invalid_dpop_proof",
                   "DPoP realm=\"ztb\", error=\"invalid_dpop_proof\"");
    zh_resp_free(&r);
    struct {
        const char *what;
        const ztb_key *k;
        const char *htm, *htu;
        int64_t iat;
        const char *ath_tok;
        const char *code;
    } bad[] = {
        {"another key", other_key, "POST", ORIGIN "/refunds/7", now, tok, "invalid_token"},
        {"another method", dpop_key, "GET", ORIGIN "/refunds/7", now, tok, "invalid_dpop_proof"},
        {"another path", dpop_key, "POST", ORIGIN "/refunds/8", now, tok, "invalid_dpop_proof"},
        {"another origin", dpop_key, "POST", "https://evil.example/refunds/7", now, tok,
         "invalid_dpop_proof"},
        {"the broker's URL", dpop_key, "POST", "http://127.0.0.1/v1/authorize", now, tok,
         "invalid_dpop_proof"},
        {"stale", dpop_key, "POST", ORIGIN "/refunds/7", now - 300, tok, "invalid_dpop_proof"},
        {"future", dpop_key, "POST", ORIGIN "/refunds/7", now + 300, tok, "invalid_dpop_proof"},
        {"no ath", dpop_key, "POST", ORIGIN "/refunds/7", now, NULL, "invalid_dpop_proof"},
        {"another ath", dpop_key, "POST", ORIGIN "/refunds/7", now, other_tok,
         "invalid_dpop_proof"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        proof_of(bad[i].k, bad[i].htm, bad[i].htu, bad[i].iat, bad[i].ath_tok, proof);
        gw("POST", "/refunds/7", auth, proof, NULL, &r);
        expect_refused(bad[i].what, &r, 401, bad[i].code, "DPoP realm=\"ztb\"");
        zh_resp_free(&r);
    }
    /* garbage and two proofs */
    gw("POST", "/refunds/7", auth, "not.a.proof", NULL, &r);
    expect_refused("garbage proof", &r, 401, "invalid_dpop_proof", NULL);
    zh_resp_free(&r);
    proof_of(dpop_key, "POST", ORIGIN "/refunds/7", now, tok, proof);
    char dh[4200];
    snprintf(dh, sizeof(dh), "DPoP: %s", proof);
    gw("POST", "/refunds/7", auth, proof, dh, &r);
    expect_refused("two proofs", &r, 401, "invalid_dpop_proof", NULL);
    zh_resp_free(&r);

    /* a good proof: 200 (the query string is not part of htu), then the
     * same proof again is a replay */
    proof_of(dpop_key, "POST", ORIGIN "/refunds/7", now, tok, proof);
    assert_int_equal(gw("POST", "/refunds/7?a=b", auth, proof, NULL, &r), 200);
    zh_resp_free(&r);
    gw("POST", "/refunds/7?a=b", auth, proof, NULL, &r);
    expect_refused("proof replay", &r, 401, "invalid_dpop_proof", "used before");
    zh_resp_free(&r);
    snprintf(ba, sizeof(ba), "dpop %s", tok); /* the scheme in any case */
    proof_of(dpop_key, "POST", ORIGIN "/refunds/7", now, tok, proof);
    assert_int_equal(gw("POST", "/refunds/7", ba, proof, NULL, &r), 200);
    zh_resp_free(&r);

    /* a token that is not bound, with the DPoP scheme */
    snprintf(ba, sizeof(ba), "DPoP %s", other_tok);
    proof_of(dpop_key, "POST", ORIGIN "/refunds/7", now, other_tok, proof);
    gw("POST", "/refunds/7", ba, proof, NULL, &r);
    expect_refused("unbound as DPoP", &r, 401, "invalid_token", "not a DPoP-bound token");
    zh_resp_free(&r);
}

/* The signing key withdrawn: its tokens are refused. */
static void test_key_tainted(void **state)
{
    (void)state;
    char tok[4096];
    struct tk t = tk_default();
    mint(&t, NULL, tok);
    struct keys_state *ks = keys_acquire();
    assert_int_equal(store_rev_key(ztb_key_kid(ks->active), (int64_t)time(NULL) + 600, 60), ZTB_OK);
    keys_release(ks);
    refund_refused("key tainted", tok, 401, "invalid_token", "the signing key was withdrawn");
}

/* Last: Redis gone is 503 with Retry-After, never 200 without the
 * revocation state; a DPoP proof that cannot be recorded is not taken. */
static void test_redis_down(void **state)
{
    (void)state;
    ztb_rotate_result rr;
    int64_t now = (int64_t)time(NULL);
    /* a fresh key: the one before was withdrawn */
    assert_int_equal(keys_rotate(now, 1, &rr), ZTB_OK);
    assert_int_equal(keys_rotate(now, 1, &rr), ZTB_OK);
    char tok[4096], btok[4096], auth[10000], proof[4096], v[16];
    struct tk t = tk_default();
    mint(&t, NULL, btok);
    t.jkt = ztb_key_kid(dpop_key);
    mint(&t, NULL, tok);
    zh_redis_kill(&bf_redis);
    struct zh_resp r;
    gw("POST", "/refunds/7", bearer(btok, auth), NULL, NULL, &r);
    expect_refused("bearer", &r, 503, "temporarily_unavailable", NULL);
    assert_string_equal(zh_resp_header(&r, "Retry-After", v, sizeof(v)), "1");
    zh_resp_free(&r);
    snprintf(auth, sizeof(auth), "DPoP %s", tok);
    proof_of(dpop_key, "POST", ORIGIN "/refunds/7", now, tok, proof);
    gw("POST", "/refunds/7", auth, proof, NULL, &r);
    expect_refused("dpop", &r, 503, "invalid_dpop_proof", NULL);
    zh_resp_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_allowed),
        cmocka_unit_test(test_off_loopback),
        cmocka_unit_test(test_no_route_table),
        cmocka_unit_test(test_gateway_misuse),
        cmocka_unit_test(test_no_route),
        cmocka_unit_test(test_method_override),
        cmocka_unit_test(test_authorization_header),
        cmocka_unit_test(test_not_our_token),
        cmocka_unit_test(test_not_for_this_route),
        cmocka_unit_test(test_revocation_and_single_use),
        cmocka_unit_test(test_mtls_bound),
        cmocka_unit_test(test_dpop_bound),
        cmocka_unit_test(test_key_tainted),
        cmocka_unit_test(test_redis_down),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
