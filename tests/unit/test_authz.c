/*
 * test_authz.c - authz/authz.c, the ztb-authz decision: its options, its
 * start (one verifier per audience of the route table, the metadata), and
 * GET /v1/authorize answered as the broker answers it. The verifiers here
 * take their keys from a JWKS file and have no revocation source (Redis,
 * revocation and single-use consumption are tests/integration/
 * test_authz_sidecar.c, with the real broker, nginx and Redis).
 *
 * Attacks: a caller off loopback, a repeated or missing original method or
 * URI, a path no route allows, two Authorization headers, a token for
 * another audience, action or resource, an expired or forged token, a
 * bearer token presented as DPoP, a DPoP-bound token with the Bearer scheme
 * (its proof beside it), two DPoP headers, a proof for another URL, a
 * single-use token with nowhere to consume it, a method override (header
 * or _method query parameter) beside the original method.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <ztb/ztb.h>

#include "authz/authz.h"
#include "common/buf.h"
#include "pki/dpop.h"
#include "pki/jwk.h"
#include "sdk_test.h"

#define ISS    "https://broker.test"
#define ORIGIN "https://payments.example.org"

static char *dir;
static char jwks_path[600], routes_path[600];
static ztb_key *broker_key, *other_key, *dpop_key;
static struct authz *az;
static int64_t now;

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    chmod(path, 0600);
}

static ztb_err no_revocation(ztb_verifier_config *vc, void *ud)
{
    (void)ud;
    return ztb_verifier_config_set_no_revocation(vc);
}

static struct authz_config config(void)
{
    struct authz_config c;
    char why[200];
    char *argv[] = {
        "ztb-authz",           "--issuer", ISS,         "--jwks-file", jwks_path, "--redis",
        "redis://127.0.0.1:1", "--routes", routes_path, NULL};
    assert_int_equal(authz_parse_args(9, argv, &c, stdout, why, sizeof(why)), 0);
    c.jwks_file = jwks_path; /* argv is on this stack frame */
    c.routes = routes_path;
    c.issuer = ISS;
    c.redis = "redis://127.0.0.1:1";
    return c;
}

static int setup(void **state)
{
    (void)state;
    now = (int64_t)time(NULL);
    dir = st_tmpdir();
    assert_int_equal(ztb_key_generate(&broker_key), ZTB_OK);
    assert_int_equal(ztb_key_generate(&other_key), ZTB_OK);
    assert_int_equal(ztb_key_generate(&dpop_key), ZTB_OK);
    snprintf(jwks_path, sizeof(jwks_path), "%s/jwks.json", dir);
    snprintf(routes_path, sizeof(routes_path), "%s/routes.json", dir);
    char text[8192];
    ztb_buf b;
    ztb_buf_init_fixed(&b, text, sizeof(text));
    const ztb_key *keys[] = {broker_key};
    assert_int_equal(ztb_jwks_render(keys, 1, &b), ZTB_OK);
    write_file(jwks_path, text);
    write_file(routes_path,
               "{\"origin\": \"" ORIGIN "\", \"routes\": [\n"
               " {\"method\": \"POST\", \"path\": \"/refunds/{id}\", \"audience\": \"payments\",\n"
               "  \"action\": \"payments:refund\", \"resource\": \"orders/{id}\"},\n"
               " {\"method\": \"GET\", \"path\": \"/contacts\", \"audience\": \"crm\",\n"
               "  \"action\": \"crm:list\"}]}\n");
    struct authz_config c = config();
    char why[600];
    if (authz_new(&c, no_revocation, NULL, &az, why, sizeof(why)) != ZTB_OK)
        fail_msg("authz_new: %s", why);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    authz_free(az);
    ztb_key_free(broker_key);
    ztb_key_free(other_key);
    ztb_key_free(dpop_key);
    st_rmdir(dir);
    return 0;
}

/* ---- tokens -------------------------------------------------------------- */

struct tk {
    const char *aud, *scope, *resource, *cnf, *ztb_extra;
    int64_t exp;
    const ztb_key *key;
};

static const char *mint(const struct tk *t)
{
    static unsigned n;
    char claims[4096], ident[200] = "";
    const char *scope = t->scope ? t->scope : "payments:refund";
    const char *aud = t->aud ? t->aud : "payments";
    const char *res = t->resource ? t->resource : "orders/1234";
    if (strcmp(res, "-") != 0)
        snprintf(ident, sizeof(ident), ",\"identifier\":\"%s\"", res);
    int64_t iat =
        t->exp != 0 && t->exp < now ? t->exp - 60 : now; /* an expired one: issued before */
    snprintf(claims, sizeof(claims),
             "{\"iss\":\"" ISS "\",\"sub\":\"spiffe://ztb.local/agent/bot\",\"aud\":\"%s\","
             "\"iat\":%lld,\"nbf\":%lld,\"exp\":%lld,\"jti\":\"jti-%u-%d\",\"client_id\":"
             "\"spiffe://ztb.local/agent/bot\",\"scope\":\"%s\",\"authorization_details\":"
             "[{\"type\":\"payment\",\"actions\":[\"%s\"],\"locations\":[\"%s\"]%s}]%s,"
             "\"act\":{\"sub\":\"spiffe://ztb.local/agent/boss\"},"
             "\"ztb\":{\"agent\":\"bot\",\"gen\":1,\"rule\":\"r\"%s}}",
             aud, (long long)iat, (long long)iat, (long long)(t->exp ? t->exp : now + 60), ++n,
             (int)getpid(), scope, scope, aud, ident, t->cnf ? t->cnf : "",
             t->ztb_extra ? t->ztb_extra : "");
    return st_sign(t->key ? t->key : broker_key, NULL, claims);
}

static struct authz_answer ans;

/* The value of header name in ans, or NULL. */
static const char *hdr(const char *name)
{
    for (size_t i = 0; i < ans.nhdr; i++)
        if (strcmp(ans.hdr_name[i], name) == 0)
            return ans.hdr_value[i];
    return NULL;
}

static unsigned decide(const char *method, const char *uri, const char *authorization,
                       const char *dpop)
{
    struct authz_request rq = {.loopback = 1,
                               .check_method = "GET",
                               .target = "/v1/authorize",
                               .method = method,
                               .n_method = method != NULL,
                               .uri = uri,
                               .n_uri = uri != NULL,
                               .authorization = authorization,
                               .n_authorization = authorization != NULL,
                               .dpop = dpop,
                               .n_dpop = dpop != NULL};
    authz_decide(az, &rq, &ans);
    return ans.status;
}

/* The same in the prefix form (Envoy ext_authz): method to target, the raw
 * check request target, no original method or URI header. */
static unsigned decide_prefix(const char *method, const char *target, const char *authorization,
                              const char *dpop)
{
    struct authz_request rq = {.loopback = 1,
                               .check_method = method,
                               .target = target,
                               .authorization = authorization,
                               .n_authorization = authorization != NULL,
                               .dpop = dpop,
                               .n_dpop = dpop != NULL};
    authz_decide(az, &rq, &ans);
    return ans.status;
}

static unsigned bearer(const char *method, const char *uri, const char *tok)
{
    static char a[8300];
    snprintf(a, sizeof(a), "Bearer %s", tok);
    return decide(method, uri, a, NULL);
}

/* ---- tests --------------------------------------------------------------- */

static void test_options(void **state)
{
    (void)state;
    struct authz_config c;
    char why[300];
    char *ok[] = {"ztb-authz",      "--issuer", "https://b", "--jwks-url",
                  "https://b/jwks", "--redis",  "redis://r", "--routes",
                  "/r.json",        "--skew",   "5",         NULL};
    assert_int_equal(authz_parse_args(11, ok, &c, stdout, why, sizeof(why)), 0);
    assert_string_equal(c.listen, "127.0.0.1:8181");
    assert_string_equal(c.method_header, "X-Original-Method");
    assert_string_equal(c.uri_header, "X-Original-URI");
    assert_int_equal(c.skew_s, 5);
    assert_int_equal(c.report_ms, 10000);
    FILE *devnull = fopen("/dev/null", "w");
    char *help[] = {"ztb-authz", "--help", NULL};
    assert_int_equal(authz_parse_args(2, help, &c, devnull, why, sizeof(why)), 1);
    fclose(devnull);
    struct {
        int argc;
        char *argv[12];
        const char *why;
    } bad[] = {
        {2, {"ztb-authz", "--bogus"}, "unknown option"},
        {3, {"ztb-authz", "--skew", "61"}, "--skew takes a number"},
        {3, {"ztb-authz", "--skew", "-1"}, "--skew takes a number"},
        {3, {"ztb-authz", "--report-interval", "50"}, "--report-interval takes"},
        {3, {"ztb-authz", "--report-interval", "3600001"}, "--report-interval takes"},
        {11,
         {"ztb-authz", "--issuer", "x", "--redis", "r", "--routes", "f", "--jwks-file", "j",
          "--report-interval", "0"},
         NULL},
        {2, {"ztb-authz", "--issuer"}, "needs a value"},
        {5, {"ztb-authz", "--issuer", "x", "--redis", "r"}, "required"},
        {9,
         {"ztb-authz", "--issuer", "x", "--redis", "r", "--routes", "f", "--jwks-file", "j"},
         NULL},
        {11,
         {"ztb-authz", "--issuer", "x", "--redis", "r", "--routes", "f", "--jwks-file", "j",
          "--jwks-url", "u"},
         "one of --jwks-url"},
        {11,
         {"ztb-authz", "--issuer", "x", "--redis", "r", "--routes", "f", "--jwks-file", "j",
          "--uri-header", "X-URI: evil"},
         "header names"},
        /* a refused argument may be a credential (a Redis URL with its
         * password): its value is never echoed */
        {2, {"ztb-authz", "--redis=redis://ztb:SECRETPW@h:6379"}, "unknown option --redis"},
        {4, {"ztb-authz", "--issuer", "x", "redis://ztb:SECRETPW@h:6379"}, "argument 3"},
        {4, {"ztb-authz", "--issuer", "x", "SECRETPW"}, "argument 3"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int rv = authz_parse_args(bad[i].argc, bad[i].argv, &c, stdout, why, sizeof(why));
        if (bad[i].why == NULL) {
            assert_int_equal(rv, 0);
            continue;
        }
        assert_int_equal(rv, -1);
        if (strstr(why, bad[i].why) == NULL || strstr(why, "SECRETPW") != NULL)
            fail_msg("case %zu: %s", i, why);
    }
}

/* --redis-file: the URL (with its password) from a file only its owner may
 * read, so that it is not in argv for every local user to see (ps,
 * /proc/PID/cmdline); a file others may read, an empty or missing one, or
 * both options, refused without the password in the message. */
static void test_redis_file(void **state)
{
    (void)state;
    char path[700], why[400];
    snprintf(path, sizeof(path), "%s/redis.url", dir); /* the suite's own directory */
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("redis://ztb:SECRETPW@127.0.0.1:6379/0\nignored\n", f);
    fclose(f);
    assert_int_equal(chmod(path, 0600), 0);
    struct authz_config c;
    char *args[] = {"ztb-authz",   "--issuer", "x", "--redis-file", path, "--routes", "f",
                    "--jwks-file", "j",        NULL};
    assert_int_equal(authz_parse_args(9, args, &c, stdout, why, sizeof(why)), 0);
    assert_string_equal(c.redis, "redis://ztb:SECRETPW@127.0.0.1:6379/0");
    assert_int_equal(chmod(path, 0640), 0);
    assert_int_equal(authz_parse_args(9, args, &c, stdout, why, sizeof(why)), -1);
    if (strstr(why, "chmod 600") == NULL || strstr(why, "SECRETPW") != NULL)
        fail_msg("group-readable: %s", why);
    assert_int_equal(chmod(path, 0600), 0);
    char *both[] = {"ztb-authz", "--issuer", "x", "--redis-file", path, "--redis",
                    "redis://r", "--routes", "f", "--jwks-file",  "j",  NULL};
    assert_int_equal(authz_parse_args(11, both, &c, stdout, why, sizeof(why)), -1);
    assert_non_null(strstr(why, "one of --redis and --redis-file"));
    f = fopen(path, "w");
    fclose(f);
    assert_int_equal(authz_parse_args(9, args, &c, stdout, why, sizeof(why)), -1);
    assert_non_null(strstr(why, "empty"));
    unlink(path);
    assert_int_equal(authz_parse_args(9, args, &c, stdout, why, sizeof(why)), -1);
    assert_non_null(strstr(why, "No such file"));
}

static void test_start_refuses_bad_configuration(void **state)
{
    (void)state;
    struct authz_config c = config();
    struct authz *x = NULL;
    char why[600], path[700];
    c.routes = "/nonexistent/routes.json";
    assert_int_equal(authz_new(&c, no_revocation, NULL, &x, why, sizeof(why)), ZTB_ERR_IO);
    assert_null(x);
    snprintf(path, sizeof(path), "%s/bad.json", dir);
    write_file(path, "{\"routes\": [{\"method\": \"get\"}]}");
    c.routes = path;
    assert_int_equal(authz_new(&c, no_revocation, NULL, &x, why, sizeof(why)), ZTB_ERR_INVALID_ARG);
    assert_non_null(strstr(why, "route 1"));
    c = config();
    c.resource = "http://tools.example.org/mcp"; /* plain http off loopback */
    assert_int_equal(authz_new(&c, no_revocation, NULL, &x, why, sizeof(why)), ZTB_ERR_INVALID_ARG);
    assert_non_null(strstr(why, "--resource"));
    /* no JWKS: fail closed at start */
    c = config();
    c.jwks_file = "/nonexistent/jwks.json";
    assert_int_not_equal(authz_new(&c, no_revocation, NULL, &x, why, sizeof(why)), ZTB_OK);
    assert_null(x);
}

static void test_metadata(void **state)
{
    (void)state;
    assert_string_equal(authz_metadata_path(az), "/.well-known/oauth-protected-resource");
    json_t *j = json_loads(authz_metadata_json(az), 0, NULL);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "resource")), ORIGIN);
    assert_string_equal(
        json_string_value(json_array_get(json_object_get(j, "authorization_servers"), 0)), ISS);
    json_t *sc = json_object_get(j, "scopes_supported");
    assert_int_equal(json_array_size(sc), 2);
    assert_string_equal(json_string_value(json_array_get(sc, 0)), "payments:refund");
    assert_string_equal(json_string_value(json_array_get(sc, 1)), "crm:list");
    json_decref(j);
    /* no verifier feed: not ready */
    assert_int_equal(authz_ready(az), 0);
}

static void test_valid_token(void **state)
{
    (void)state;
    struct tk t = {0};
    assert_int_equal(bearer("POST", "/refunds/1234?x=1", mint(&t)), 200);
    assert_string_equal(hdr("X-Ztb-Subject"), "spiffe://ztb.local/agent/bot");
    assert_string_equal(hdr("X-Ztb-Agent"), "bot");
    assert_string_equal(hdr("X-Ztb-Action"), "payments:refund");
    assert_string_equal(hdr("X-Ztb-Resource"), "orders/1234");
    assert_string_equal(hdr("X-Ztb-Actor"), "spiffe://ztb.local/agent/boss");
    assert_non_null(strstr(hdr("X-Ztb-Jti"), "jti-"));
    assert_string_equal(hdr("Cache-Control"), "no-store");
    assert_null(hdr("WWW-Authenticate"));
    /* the scheme in any case; the other audience's route with its own verifier */
    static char a[8300];
    snprintf(a, sizeof(a), "bEaReR %s", mint(&t));
    assert_int_equal(decide("POST", "/refunds/1234", a, NULL), 200);
    t = (struct tk){.aud = "crm", .scope = "crm:list", .resource = "-"};
    assert_int_equal(bearer("GET", "/contacts", mint(&t)), 200);
    assert_string_equal(hdr("X-Ztb-Resource"), "");
}

static void test_gateway_mistakes(void **state)
{
    (void)state;
    struct tk t = {0};
    const char *tok = mint(&t);
    char a[8300];
    snprintf(a, sizeof(a), "Bearer %s", tok);
    /* not on loopback */
    struct authz_request rq = {.loopback = 0,
                               .check_method = "GET",
                               .target = "/v1/authorize",
                               .method = "POST",
                               .n_method = 1,
                               .uri = "/refunds/1234",
                               .n_uri = 1,
                               .authorization = a,
                               .n_authorization = 1};
    authz_decide(az, &rq, &ans);
    assert_int_equal(ans.status, 403);
    assert_non_null(strstr(ans.body, "loopback"));
    /* the original method or URI missing or repeated */
    rq.loopback = 1;
    rq.n_uri = 2;
    authz_decide(az, &rq, &ans);
    assert_int_equal(ans.status, 400);
    assert_int_equal(decide("POST", NULL, a, NULL), 400);
    /* two Authorization headers */
    rq.n_uri = 1;
    rq.n_authorization = 2;
    authz_decide(az, &rq, &ans);
    assert_int_equal(ans.status, 400);
    assert_non_null(strstr(ans.body, "\"ztb_error\":\"INVALID_REQUEST\""));
    /* and the token was not used: still good */
    assert_int_equal(decide("POST", "/refunds/1234", a, NULL), 200);
}

static void test_refusals(void **state)
{
    (void)state;
    /* no route: 403 before the token is read */
    assert_int_equal(decide("POST", "/refunds/12%2F34", "Bearer x", NULL), 403);
    assert_non_null(strstr(hdr("WWW-Authenticate"), "error=\"insufficient_scope\""));
    assert_int_equal(decide("DELETE", "/refunds/1", "Bearer x", NULL), 403);
    /* no token: 401, both challenges and the metadata pointer */
    assert_int_equal(decide("POST", "/refunds/1234", NULL, NULL), 401);
    assert_string_equal(hdr("WWW-Authenticate"),
                        "Bearer realm=\"ztb\", resource_metadata=\"" ORIGIN
                        "/.well-known/oauth-protected-resource\", DPoP realm=\"ztb\", "
                        "algs=\"ES256\", resource_metadata=\"" ORIGIN
                        "/.well-known/oauth-protected-resource\"");
    /* another scheme, or garbage */
    assert_int_equal(decide("POST", "/refunds/1234", "Basic dXNlcjpwdw==", NULL), 400);
    assert_int_equal(decide("POST", "/refunds/1234", "Bearer a b", NULL), 400);
    /* a token for another audience, action or resource */
    struct tk t = {.aud = "crm"};
    assert_int_equal(bearer("POST", "/refunds/1234", mint(&t)), 401);
    assert_non_null(strstr(hdr("WWW-Authenticate"), "error=\"invalid_token\""));
    assert_non_null(strstr(hdr("WWW-Authenticate"), "resource_metadata=\""));
    assert_non_null(strstr(ans.body, "\"ztb_error\":\"AUDIENCE\""));
    t = (struct tk){.scope = "payments:read"};
    assert_int_equal(bearer("POST", "/refunds/1234", mint(&t)), 403);
    assert_non_null(strstr(hdr("WWW-Authenticate"), "error=\"insufficient_scope\""));
    assert_non_null(strstr(hdr("WWW-Authenticate"), "scope=\"payments:refund\""));
    t = (struct tk){.resource = "orders/999"};
    assert_int_equal(bearer("POST", "/refunds/1234", mint(&t)), 403);
    /* expired, forged */
    t = (struct tk){.exp = now - 120};
    assert_int_equal(bearer("POST", "/refunds/1234", mint(&t)), 401);
    assert_non_null(strstr(ans.body, "EXPIRED"));
    t = (struct tk){.key = other_key};
    assert_int_equal(bearer("POST", "/refunds/1234", mint(&t)), 401);
    assert_int_equal(bearer("POST", "/refunds/1234", "a.b.c"), 401);
    /* single-use with nowhere to consume it: fail closed */
    t = (struct tk){.ztb_extra = ",\"single_use\":true"};
    assert_int_equal(bearer("POST", "/refunds/1234", mint(&t)), 503);
    assert_string_equal(hdr("Retry-After"), "1");
    assert_null(hdr("WWW-Authenticate"));
}

/* ATTACK: a method override header the client sent (X-HTTP-Method-Override,
 * X-HTTP-Method, X-Method-Override), passed on by the gateway (nginx's
 * auth_request forwards every client header): a backend that honours it
 * (Rails, Symfony, Laravel, Express's method-override) runs DELETE where
 * POST was authorized. Refused before the token is read, and the token
 * stays usable; the override naming the original method itself is harmless. */
static void test_method_override(void **state)
{
    (void)state;
    struct tk t = {0};
    char a[8300];
    snprintf(a, sizeof(a), "Bearer %s", mint(&t));
    struct authz_request rq = {.loopback = 1,
                               .check_method = "GET",
                               .target = "/v1/authorize",
                               .method = "POST",
                               .n_method = 1,
                               .uri = "/refunds/1234",
                               .n_uri = 1,
                               .authorization = a,
                               .n_authorization = 1,
                               .override = "DELETE",
                               .n_override = 1};
    authz_decide(az, &rq, &ans);
    assert_int_equal(ans.status, 403);
    assert_non_null(strstr(ans.body, "override"));
    assert_null(hdr("X-Ztb-Subject"));
    rq.override = "post"; /* methods are case-sensitive: another method */
    authz_decide(az, &rq, &ans);
    assert_int_equal(ans.status, 403);
    rq.override = "POST";
    rq.n_override = 2; /* two of them: which one would the backend take? */
    authz_decide(az, &rq, &ans);
    assert_int_equal(ans.status, 403);
    /* the prefix form too (Envoy's allowed_headers may let one through) */
    rq = (struct authz_request){.loopback = 1,
                                .check_method = "POST",
                                .target = "/v1/authorize/refunds/1234",
                                .authorization = a,
                                .n_authorization = 1,
                                .override = "DELETE",
                                .n_override = 1};
    authz_decide(az, &rq, &ans);
    assert_int_equal(ans.status, 403);
    /* the _method query parameter of Symfony and Laravel, in the header form */
    assert_int_equal(decide("POST", "/refunds/1234?_method=DELETE", a, NULL), 403);
    assert_non_null(strstr(ans.body, "override"));
    /* the original method itself, or none: the token goes through */
    rq.override = "POST";
    authz_decide(az, &rq, &ans);
    assert_int_equal(ans.status, 200);
    assert_int_equal(decide("POST", "/refunds/1234", a, NULL), 200);
}

static const char *proof_for(const char *htm, const char *htu, const char *tok)
{
    static char out[4096];
    ztb_buf b;
    ztb_buf_init_fixed(&b, out, sizeof(out));
    assert_int_equal(ztb_dpop_proof_make(dpop_key, htm, htu, time(NULL), tok, &b), ZTB_OK);
    return out;
}

static void test_dpop(void **state)
{
    (void)state;
    char cnf[128], tok[4096], a[4200], prf[4096];
    snprintf(cnf, sizeof(cnf), ",\"cnf\":{\"jkt\":\"%s\"}", ztb_key_kid(dpop_key));
    struct tk t = {.cnf = cnf};
    snprintf(tok, sizeof(tok), "%s", mint(&t));
    /* the Bearer scheme, its proof beside it: refused (RFC 9449 §7.2) */
    snprintf(prf, sizeof(prf), "%s", proof_for("POST", ORIGIN "/refunds/1234", tok));
    snprintf(a, sizeof(a), "Bearer %s", tok);
    assert_int_equal(decide("POST", "/refunds/1234", a, prf), 401);
    assert_non_null(strstr(hdr("WWW-Authenticate"), "DPoP realm=\"ztb\""));
    /* a proof for another URL or method */
    snprintf(a, sizeof(a), "DPoP %s", tok);
    snprintf(prf, sizeof(prf), "%s", proof_for("POST", ORIGIN "/refunds/1", tok));
    assert_int_equal(decide("POST", "/refunds/1234", a, prf), 401);
    assert_non_null(strstr(hdr("WWW-Authenticate"), "invalid_dpop_proof"));
    snprintf(prf, sizeof(prf), "%s", proof_for("GET", ORIGIN "/refunds/1234", tok));
    assert_int_equal(decide("POST", "/refunds/1234", a, prf), 401);
    /* no proof */
    assert_int_equal(decide("POST", "/refunds/1234", a, NULL), 401);
    /* two DPoP headers, the valid proof read from them (RFC 9449 §4.3) */
    snprintf(prf, sizeof(prf), "%s", proof_for("POST", ORIGIN "/refunds/1234", tok));
    struct authz_request rq = {.loopback = 1,
                               .check_method = "GET",
                               .target = "/v1/authorize",
                               .method = "POST",
                               .n_method = 1,
                               .uri = "/refunds/1234",
                               .n_uri = 1,
                               .authorization = a,
                               .n_authorization = 1,
                               .dpop = prf,
                               .n_dpop = 2};
    authz_decide(az, &rq, &ans);
    assert_int_equal(ans.status, 401);
    assert_non_null(strstr(ans.body, "BINDING"));
    /* the right one: the original method, origin + path (no query) */
    assert_int_equal(decide("POST", "/refunds/1234?q=1", a, prf), 200);
    /* and again: the proof was used */
    assert_int_equal(decide("POST", "/refunds/1234", a, prf), 401);
    assert_non_null(strstr(ans.body, "DPOP_REPLAY"));
    /* a bearer token presented as DPoP */
    t = (struct tk){0};
    snprintf(a, sizeof(a), "DPoP %s", mint(&t));
    assert_int_equal(decide("POST", "/refunds/1234", a, NULL), 401);
    assert_non_null(strstr(ans.body, "BINDING"));
}

/* The prefix form (Envoy's path_prefix): the same decision on the original
 * method and the raw path after /v1/authorize, one code path with the
 * header form. */
static void test_prefix_form(void **state)
{
    (void)state;
    struct tk t = {0};
    char a[8300];
    snprintf(a, sizeof(a), "Bearer %s", mint(&t));
    assert_int_equal(decide_prefix("POST", "/v1/authorize/refunds/1234?x=1", a, NULL), 200);
    assert_string_equal(hdr("X-Ztb-Resource"), "orders/1234");
    assert_string_equal(hdr("X-Ztb-Action"), "payments:refund");
    /* ATTACK: encodings, dot segments, double slashes, NUL: no route (403) */
    static const char *const no_route[] = {
        "/v1/authorize/refunds%2F1234",    "/v1/authorize/refunds/%31234",
        "/v1/authorize/refunds/1/../1234", "/v1/authorize//refunds/1234",
        "/v1/authorize/refunds//1234",     "/v1/authorize/refunds/1234%00/../9",
        "/v1/authorize/refunds/1234/",     "/v1/authorize/",
    };
    for (size_t i = 0; i < sizeof(no_route) / sizeof(no_route[0]); i++)
        if (decide_prefix("POST", no_route[i], a, NULL) != 403)
            fail_msg("%s: %u", no_route[i], ans.status);
    /* the original method is the check request's own */
    assert_int_equal(decide_prefix("GET", "/v1/authorize/refunds/1234", a, NULL), 403);
    assert_int_equal(decide_prefix("HEAD", "/v1/authorize/refunds/1234", a, NULL), 403);
    /* ATTACK: a target that only a decoder would make the endpoint's: 400 */
    assert_int_equal(decide_prefix("POST", "/v1/authorize%2Frefunds/1234", a, NULL), 400);
    assert_int_equal(decide_prefix("POST", "/v1/authoriz%65/refunds/1234", a, NULL), 400);
    assert_int_equal(decide_prefix("POST", NULL, a, NULL), 400);
    /* ATTACK: X-Original-* beside the prefix form (the client's, let through) */
    struct authz_request rq = {.loopback = 1,
                               .check_method = "POST",
                               .target = "/v1/authorize/refunds/1",
                               .method = "POST",
                               .n_method = 1,
                               .uri = "/refunds/1234",
                               .n_uri = 1,
                               .authorization = a,
                               .n_authorization = 1};
    authz_decide(az, &rq, &ans);
    assert_int_equal(ans.status, 400);
    assert_non_null(strstr(ans.body, "named twice"));
    rq.n_method = 0;
    authz_decide(az, &rq, &ans);
    assert_int_equal(ans.status, 400);
    /* not on loopback: refused before anything else */
    rq.loopback = 0;
    authz_decide(az, &rq, &ans);
    assert_int_equal(ans.status, 403);
    /* DPoP: the proof is for the ORIGINAL URL, not the check request's */
    char cnf[128], tok[4096], prf[4096];
    snprintf(cnf, sizeof(cnf), ",\"cnf\":{\"jkt\":\"%s\"}", ztb_key_kid(dpop_key));
    t = (struct tk){.cnf = cnf};
    snprintf(tok, sizeof(tok), "%s", mint(&t));
    snprintf(a, sizeof(a), "DPoP %s", tok);
    snprintf(prf, sizeof(prf), "%s", proof_for("POST", ORIGIN "/v1/authorize/refunds/1234", tok));
    assert_int_equal(decide_prefix("POST", "/v1/authorize/refunds/1234", a, prf), 401);
    assert_non_null(strstr(hdr("WWW-Authenticate"), "invalid_dpop_proof"));
    snprintf(prf, sizeof(prf), "%s", proof_for("POST", ORIGIN "/refunds/1234", tok));
    assert_int_equal(decide_prefix("POST", "/v1/authorize/refunds/1234", a, prf), 200);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_options),
        cmocka_unit_test(test_redis_file),
        cmocka_unit_test(test_start_refuses_bad_configuration),
        cmocka_unit_test(test_metadata),
        cmocka_unit_test(test_valid_token),
        cmocka_unit_test(test_gateway_mistakes),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_method_override),
        cmocka_unit_test(test_dpop),
        cmocka_unit_test(test_prefix_form),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
