/*
 * test_authz_sidecar.c - the ztb-authz sidecar behind Debian's nginx, with
 * the real broker and Redis: the nginx server block and the route table
 * copied from docs/gateways.md (the sidecar's block "nginx-authz.conf" and
 * the broker's "routes.json", the same file format; only the loopback ports
 * replaced).
 *
 * POST /refunds/<id> needs audience payments, action payments:refund,
 * resource orders/<id>. A valid token reaches the backend with the X-Ztb-*
 * identity headers; a single-use one once (and the broker's own
 * /v1/authorize then refuses it too: one replay marker, and the other way
 * round). Forged tokens (alg none, HS256 keyed with the JWKS, a tampered
 * payload, a foreign key under the broker's kid, bad signature encodings),
 * tokens for another action, resource or audience, an encoded-slash path, a
 * method override header, an expired, a revoked and a replayed token, a
 * DPoP-bound token without its scheme and proof, and a bearer token
 * presented as DPoP never do. A
 * revocation reaches the sidecar within the feed's latency (measured: the
 * test fails above 500 ms), and while Redis is down the sidecar refuses
 * everything (503; nginx 500) and is not ready.
 * Challenges carry resource_metadata, and the metadata is served through
 * nginx.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "agent.h"
#include "common/base64url.h"
#include "harness.h"
#include "nginx_fixture.h"
#include "pki/dpop.h"
#include "pki/jws.h"

/* single_use only for orders/1234 and 1235; orders/555 lives 1 s; 4321 is DPoP-bound */
static const char *policy_doc =
    "{\"version\": 1, \"trust_domain\": \"ztb.local\",\n"
    " \"settings\": {\"max_ttl\": 120, \"default_ttl\": 60,\n"
    "   \"rate_limits\": {\"per_agent\": {\"rate\": 1000, \"burst\": 100, \"period\": 60},\n"
    "                   \"per_action\": {\"rate\": 1000, \"burst\": 100, \"period\": 60}}},\n"
    " \"rules\": [\n"
    "  {\"id\": \"refund\", \"effect\": \"allow\", \"agents\": [\"*\"],\n"
    "   \"actions\": [\"payments:refund\"], \"audiences\": [\"payments\", \"crm\"],\n"
    "   \"resources\": [\"**\"]},\n"
    "  {\"id\": \"refund-once\", \"effect\": \"allow\", \"agents\": [\"*\"],\n"
    "   \"actions\": [\"payments:refund\"], \"audiences\": [\"payments\"],\n"
    "   \"resources\": [\"orders/1234\", \"orders/1235\"],\n"
    "   \"obligations\": {\"single_use\": true}},\n"
    "  {\"id\": \"refund-brief\", \"effect\": \"allow\", \"agents\": [\"*\"],\n"
    "   \"actions\": [\"payments:refund\"], \"audiences\": [\"payments\"],\n"
    "   \"resources\": [\"orders/555\"], \"obligations\": {\"ttl\": 1}},\n"
    "  {\"id\": \"refund-bound\", \"effect\": \"allow\", \"agents\": [\"*\"],\n"
    "   \"actions\": [\"payments:refund\"], \"audiences\": [\"payments\"],\n"
    "   \"resources\": [\"orders/4321\"], \"obligations\": {\"binding\": \"dpop\"}},\n"
    "  {\"id\": \"read\", \"effect\": \"allow\", \"agents\": [\"*\"],\n"
    "   \"actions\": [\"payments:read\"], \"audiences\": [\"payments\"], \"resources\": [\"**\"]}\n"
    " ]}\n";

static struct zh_redis rd;
static struct zh_broker b;
static struct za_agent alice;
static char dir[256], gw_url[64], authz_url[64], authz_log[300];
static pid_t nginx_pid, authz_pid;

static void start_authz(const char *routes)
{
    char jwks[128];
    snprintf(jwks, sizeof(jwks), "%s/.well-known/jwks.json", b.url);
    snprintf(authz_log, sizeof(authz_log), "%s/authz.log", dir);
    int out[2];
    assert_int_equal(pipe(out), 0);
    authz_pid = fork();
    assert_true(authz_pid >= 0);
    if (authz_pid == 0) {
        int log = open(authz_log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(out[1], 1);
        dup2(log, 2);
        close(out[0]);
        /* --skew 0: the 1-second token is expired one second after issue */
        execl(zh_bin("ztb-authz"), "ztb-authz", "--issuer", b.url, "--jwks-url", jwks, "--redis",
              rd.url, "--routes", routes, "--listen", "127.0.0.1:0", "--skew", "0", (char *)NULL);
        _exit(127);
    }
    close(out[1]);
    FILE *f = fdopen(out[0], "r");
    char line[256] = "";
    if (fgets(line, sizeof(line), f) == NULL) {
        char *text = NULL;
        const char *cat[] = {"/bin/cat", authz_log, NULL};
        zh_run(cat, &text, NULL);
        fail_msg("ztb-authz did not start: %s", text ? text : "");
    }
    fclose(f);
    assert_int_equal(sscanf(line, "ztb-authz: listening on %63s", authz_url), 1);
}

static int setup(void **state)
{
    (void)state;
    srand((unsigned)time(NULL) ^ (unsigned)getpid());
    zh_tmpdir(dir, sizeof(dir));
    char routes[300];
    snprintf(routes, sizeof(routes), "%s/routes.json", dir);
    char *doc = nf_doc_block("routes.json");
    nf_write_file(routes, doc);
    free(doc);
    zh_redis_start(&rd);
    const char *extra[] = {"--authorize-routes", routes, NULL};
    struct zh_broker_opts o = {
        .redis_url = rd.url, .with_keys = 1, .policy = policy_doc, .extra_args = extra};
    zh_broker_start(&b, &o);
    za_enroll(&b, &alice, "alice");
    start_authz(routes);
    uint16_t backend = nf_backend_start(), port = nf_free_port();
    char *server = nf_doc_block("nginx-authz.conf");
    char a[64];
    snprintf(a, sizeof(a), "127.0.0.1:%u", port);
    nf_replace_once(&server, "127.0.0.1:8080", a);
    snprintf(a, sizeof(a), "127.0.0.1:%u/v1/authorize",
             (unsigned)atoi(strrchr(authz_url, ':') + 1));
    nf_replace_once(&server, "127.0.0.1:8181/v1/authorize", a);
    snprintf(a, sizeof(a), "127.0.0.1:%u;", (unsigned)atoi(strrchr(authz_url, ':') + 1));
    nf_replace_once(&server, "127.0.0.1:8181;", a);
    snprintf(a, sizeof(a), "127.0.0.1:%u", backend);
    nf_replace_once(&server, "127.0.0.1:9000", a);
    nginx_pid = nf_nginx_start(dir, server, port);
    free(server);
    snprintf(gw_url, sizeof(gw_url), "http://127.0.0.1:%u", port);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    nf_nginx_stop(nginx_pid);
    nf_backend_stop();
    if (authz_pid > 0) {
        kill(authz_pid, SIGTERM);
        int st = 0;
        waitpid(authz_pid, &st, 0);
        assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0); /* a clean stop */
    }
    za_free(&alice);
    assert_int_equal(zh_broker_stop(&b), 0);
    zh_redis_stop(&rd, 1);
    zh_rmtree(b.dir);
    zh_rmtree(dir);
    return 0;
}

/* ---- requests ------------------------------------------------------------ */

static void token(const char *aud, const char *action, const char *resource, char *out, size_t cap)
{
    char scope[256];
    snprintf(scope, sizeof(scope), "%s&resource=%s", action, resource);
    for (char *p = strstr(scope, "&resource=") + 10; *p; p++)
        if (*p == '/') {
            memmove(p + 3, p + 1, strlen(p + 1) + 1);
            memcpy(p, "%2F", 3);
            p += 2;
        }
    struct zh_resp r;
    long st = za_token(&b, &alice, aud, scope, &r, out, cap);
    if (st != 200)
        fail_msg("token %s %s %s: %ld %s", aud, action, resource, st, r.body);
    zh_resp_free(&r);
}

/* POST path through nginx with "Authorization: auth" (NULL: none) and an
 * extra header; the status, *hit whether the backend got it. */
static long refund(const char *path, const char *auth, const char *extra, int *hit,
                   struct zh_resp *out)
{
    char url[256], h[9000];
    snprintf(url, sizeof(url), "%s%s", gw_url, path);
    snprintf(h, sizeof(h), "Authorization: %s", auth ? auth : "");
    const char *headers[] = {auth ? h : extra, auth ? extra : NULL, NULL};
    int before = nf_backend_hits();
    struct zh_resp r;
    assert_int_equal(zh_http("POST", url, NULL, "application/json", "{}", 2, headers, &r), 0);
    *hit = nf_backend_hits() != before;
    long st = r.status;
    if (out != NULL)
        *out = r;
    else
        zh_resp_free(&r);
    return st;
}

static void expect_refused(const char *what, const char *path, const char *auth, long want)
{
    int hit;
    struct zh_resp r;
    long st = refund(path, auth, NULL, &hit, &r);
    if (hit || st != want)
        fail_msg("%s: status %ld (want %ld), backend %s: %s", what, st, want,
                 hit ? "REACHED" : "not reached", r.body);
    zh_resp_free(&r);
}

/* GET /v1/authorize at url (the sidecar or the broker) for POST uri. */
static long direct(const char *base, const char *uri, const char *tok, struct zh_resp *out)
{
    char a[4200], u[300], url[160];
    snprintf(a, sizeof(a), "Authorization: Bearer %s", tok);
    snprintf(u, sizeof(u), "X-Original-URI: %s", uri);
    snprintf(url, sizeof(url), "%s/v1/authorize", base);
    const char *h[] = {a, "X-Original-Method: POST", u, NULL};
    struct zh_resp r;
    assert_int_equal(zh_http("GET", url, NULL, NULL, NULL, 0, h, &r), 0);
    long st = r.status;
    if (out != NULL)
        *out = r;
    else
        zh_resp_free(&r);
    return st;
}

static void b64(const void *in, size_t n, char *out, size_t cap)
{
    assert_int_equal(ztb_b64url_encode(in, n, out, cap, NULL), ZTB_OK);
}

/* ---- tests --------------------------------------------------------------- */

static void test_valid_token_once(void **state)
{
    (void)state;
    char tok[4096], auth[4200];
    token("payments", "payments:refund", "orders/1234", tok, sizeof(tok));
    snprintf(auth, sizeof(auth), "Bearer %s", tok);
    int hit;
    struct zh_resp r;
    long st = refund("/refunds/1234", auth, "X-Ztb-Actor: spiffe://ztb.local/agent/boss", &hit, &r);
    if (st != 200 || !hit)
        fail_msg("valid token: %ld, backend %d: %s", st, hit, r.body);
    assert_non_null(strstr(r.body, "X-Ztb-Subject: spiffe://ztb.local/agent/alice\n"));
    assert_non_null(strstr(r.body, "X-Ztb-Agent: alice\n"));
    assert_non_null(strstr(r.body, "X-Ztb-Action: payments:refund\n"));
    assert_non_null(strstr(r.body, "X-Ztb-Resource: orders/1234\n"));
    assert_non_null(strstr(r.body, "X-Ztb-Jti: "));
    assert_null(strstr(r.body, "boss"));
    zh_resp_free(&r);
    /* single-use: consumed by the sidecar's decision, here and at the broker */
    expect_refused("replayed", "/refunds/1234", auth, 401);
    assert_int_equal(direct(b.url, "/refunds/1234", tok, &r), 401);
    assert_non_null(strstr(r.body, "REPLAY"));
    zh_resp_free(&r);
    /* and the other way round: consumed by the broker, refused by the sidecar */
    token("payments", "payments:refund", "orders/1235", tok, sizeof(tok));
    assert_int_equal(direct(b.url, "/refunds/1235", tok, NULL), 200);
    assert_int_equal(direct(authz_url, "/refunds/1235", tok, &r), 401);
    assert_non_null(strstr(r.body, "REPLAY"));
    zh_resp_free(&r);
    /* a multi-use token, the scheme in another case */
    token("payments", "payments:refund", "orders/42", tok, sizeof(tok));
    snprintf(auth, sizeof(auth), "bEaReR %s", tok);
    assert_int_equal(refund("/refunds/42", auth, NULL, &hit, NULL), 200);
    assert_true(hit);
    assert_int_equal(refund("/refunds/42", auth, NULL, &hit, NULL), 200);
}

static void test_no_token_and_metadata(void **state)
{
    (void)state;
    int hit;
    struct zh_resp r;
    assert_int_equal(refund("/refunds/1234", NULL, NULL, &hit, &r), 401);
    assert_false(hit);
    char wa[600];
    assert_non_null(zh_resp_header(&r, "WWW-Authenticate", wa, sizeof(wa)));
    assert_non_null(strstr(wa, "Bearer realm=\"ztb\""));
    assert_non_null(strstr(wa, "resource_metadata=\"https://payments.example.org/.well-known/"
                               "oauth-protected-resource\""));
    zh_resp_free(&r);
    /* the metadata through nginx */
    char url[160];
    snprintf(url, sizeof(url), "%s/.well-known/oauth-protected-resource", gw_url);
    assert_int_equal(zh_http("GET", url, NULL, NULL, NULL, 0, NULL, &r), 0);
    assert_int_equal(r.status, 200);
    json_t *j = za_json(&r);
    assert_string_equal(json_string_value(json_object_get(j, "resource")),
                        "https://payments.example.org");
    assert_string_equal(
        json_string_value(json_array_get(json_object_get(j, "authorization_servers"), 0)), b.url);
    assert_string_equal(
        json_string_value(json_array_get(json_object_get(j, "scopes_supported"), 0)),
        "payments:refund");
    json_decref(j);
    zh_resp_free(&r);
    /* ready while the feed is live */
    snprintf(url, sizeof(url), "%s/readyz", authz_url);
    assert_int_equal(zh_http("GET", url, NULL, NULL, NULL, 0, NULL, &r), 0);
    assert_int_equal(r.status, 200);
    zh_resp_free(&r);
}

static void test_forged_tokens(void **state)
{
    (void)state;
    char tok[4096], auth[16400], h[4096], p[4096], s[4096], hj[512], hb[1024], kid[128];
    token("payments", "payments:refund", "orders/77", tok, sizeof(tok));
    const char *d1 = strchr(tok, '.'), *d2 = strrchr(tok, '.');
    snprintf(h, sizeof(h), "%.*s", (int)(d1 - tok), tok);
    snprintf(p, sizeof(p), "%.*s", (int)(d2 - d1 - 1), d1 + 1);
    snprintf(s, sizeof(s), "%s", d2 + 1);
    za_kid(tok, kid, sizeof(kid));
    /* alg none */
    snprintf(hj, sizeof(hj), "{\"alg\":\"none\",\"typ\":\"at+jwt\",\"kid\":\"%s\"}", kid);
    b64(hj, strlen(hj), hb, sizeof(hb));
    snprintf(auth, sizeof(auth), "Bearer %s.%s.", hb, p);
    expect_refused("alg none", "/refunds/77", auth, 401);
    /* HS256 keyed with the broker's JWKS */
    struct zh_resp jr;
    assert_int_equal(zh_get(&b, "/.well-known/jwks.json", &jr), 0);
    snprintf(hj, sizeof(hj), "{\"alg\":\"HS256\",\"typ\":\"at+jwt\",\"kid\":\"%s\"}", kid);
    b64(hj, strlen(hj), hb, sizeof(hb));
    char forged[8400], mb[64];
    snprintf(forged, sizeof(forged), "%s.%s", hb, p);
    unsigned char mac[32];
    unsigned ml = 0;
    HMAC(EVP_sha256(), jr.body, (int)jr.len, (const unsigned char *)forged, strlen(forged), mac,
         &ml);
    zh_resp_free(&jr);
    b64(mac, ml, mb, sizeof(mb));
    snprintf(auth, sizeof(auth), "Bearer %s.%s", forged, mb);
    expect_refused("HS256 with the public key", "/refunds/77", auth, 401);
    /* tampered payload */
    uint8_t raw[4096];
    size_t rn;
    assert_int_equal(ztb_b64url_decode(p, strlen(p), raw, sizeof(raw) - 1, &rn), ZTB_OK);
    raw[rn] = '\0';
    json_t *c = json_loads((const char *)raw, 0, NULL);
    json_object_set_new(c, "exp",
                        json_integer(json_integer_value(json_object_get(c, "exp")) + 3600));
    char *cj = json_dumps(c, JSON_COMPACT);
    char pb[4096];
    b64(cj, strlen(cj), pb, sizeof(pb));
    snprintf(auth, sizeof(auth), "Bearer %s.%s.%s", h, pb, s);
    expect_refused("tampered payload", "/refunds/77", auth, 401);
    /* a foreign key under the broker's kid */
    ztb_key *k = NULL;
    assert_int_equal(ztb_key_generate(&k), ZTB_OK);
    ztb_buf out;
    ztb_buf_init(&out, 8192);
    snprintf(hj, sizeof(hj), "{\"alg\":\"ES256\",\"typ\":\"at+jwt\",\"kid\":\"%s\"}", kid);
    ztb_jws_sign_opts o = {.header = hj, .header_len = strlen(hj)};
    assert_int_equal(ztb_jws_sign(k, &o, cj, strlen(cj), &out), ZTB_OK);
    snprintf(auth, sizeof(auth), "Bearer %s", ztb_buf_cstr(&out));
    expect_refused("foreign key", "/refunds/77", auth, 401);
    ztb_buf_free(&out);
    ztb_key_free(k);
    free(cj);
    json_decref(c);
    /* bad signature encodings */
    snprintf(auth, sizeof(auth), "Bearer %s.%s.%.*s", h, p, (int)strlen(s) - 2, s);
    expect_refused("short signature", "/refunds/77", auth, 401);
    snprintf(auth, sizeof(auth), "Bearer %s.%s.%s==", h, p, s);
    expect_refused("padded signature", "/refunds/77", auth, 401);
    /* none of it used the real token */
    snprintf(auth, sizeof(auth), "Bearer %s", tok);
    int hit;
    assert_int_equal(refund("/refunds/77", auth, NULL, &hit, NULL), 200);
    assert_true(hit);
}

static void test_misdirected_tokens(void **state)
{
    (void)state;
    char tok[4096], auth[4200];
    token("payments", "payments:read", "orders/1234", tok, sizeof(tok));
    snprintf(auth, sizeof(auth), "Bearer %s", tok);
    struct zh_resp r;
    int hit;
    assert_int_equal(refund("/refunds/1234", auth, NULL, &hit, &r), 403);
    assert_false(hit);
    zh_resp_free(&r);
    token("payments", "payments:refund", "orders/999", tok, sizeof(tok));
    snprintf(auth, sizeof(auth), "Bearer %s", tok);
    expect_refused("another resource", "/refunds/1234", auth, 403);
    token("crm", "payments:refund", "orders/1234", tok, sizeof(tok));
    snprintf(auth, sizeof(auth), "Bearer %s", tok);
    expect_refused("another audience", "/refunds/1234", auth, 401);
    token("payments", "payments:refund", "orders/12/34", tok, sizeof(tok));
    snprintf(auth, sizeof(auth), "Bearer %s", tok);
    expect_refused("encoded slash", "/refunds/12%2F34", auth, 403);
    /* ATTACK: a method override the backend may honour: nginx passes the
     * client's header on to the sidecar, which refuses it (the token is not
     * used up: it goes through without the header) */
    token("payments", "payments:refund", "orders/1234", tok, sizeof(tok));
    snprintf(auth, sizeof(auth), "Bearer %s", tok);
    assert_int_equal(refund("/refunds/1234", auth, "X-HTTP-Method-Override: DELETE", &hit, &r),
                     403);
    assert_false(hit);
    zh_resp_free(&r);
    assert_int_equal(refund("/refunds/1234", auth, NULL, &hit, &r), 200);
    assert_true(hit);
    zh_resp_free(&r);
}

/* A DPoP-bound token for orders/4321 bound to k. */
static void bound_token(const ztb_key *k, char *tok)
{
    char htu[160], form[2048], url[160], hdr[4200];
    ztb_buf p;
    ztb_buf_init(&p, 4096);
    snprintf(htu, sizeof(htu), "%s/v1/token", b.url);
    assert_int_equal(ztb_dpop_proof_make(k, "POST", htu, time(NULL), NULL, &p), ZTB_OK);
    snprintf(hdr, sizeof(hdr), "DPoP: %s", ztb_buf_cstr(&p));
    ztb_buf_free(&p);
    snprintf(form, sizeof(form),
             "grant_type=urn%%3Aietf%%3Aparams%%3Aoauth%%3Agrant-type%%3Atoken-exchange"
             "&audience=payments&scope=payments:refund&resource=orders%%2F4321"
             "&client_assertion_type=%s&client_assertion=%s",
             ZA_SESSION_TYPE, alice.session);
    snprintf(url, sizeof(url), "%s/v1/token", b.url);
    const char *headers[] = {hdr, NULL};
    struct zh_resp r;
    assert_int_equal(zh_http("POST", url, NULL, "application/x-www-form-urlencoded", form,
                             strlen(form), headers, &r),
                     0);
    if (r.status != 200)
        fail_msg("bound token: %ld %s", r.status, r.body);
    json_t *j = za_json(&r);
    snprintf(tok, 4096, "%s", json_string_value(json_object_get(j, "access_token")));
    json_decref(j);
    zh_resp_free(&r);
}

static long bound_refund(const char *scheme, const char *tok, const ztb_key *k, const char *htm,
                         const char *proof_in, char *proof_out, int *hit)
{
    char auth[4200], dh[4200], url[200];
    snprintf(auth, sizeof(auth), "Authorization: %s %s", scheme, tok);
    const char *headers[] = {auth, NULL, NULL};
    if (proof_in != NULL) {
        snprintf(dh, sizeof(dh), "DPoP: %s", proof_in);
        headers[1] = dh;
    } else if (k != NULL) {
        ztb_buf p;
        ztb_buf_init(&p, 4096);
        assert_int_equal(ztb_dpop_proof_make(k, htm, "https://payments.example.org/refunds/4321",
                                             time(NULL), tok, &p),
                         ZTB_OK);
        snprintf(dh, sizeof(dh), "DPoP: %s", ztb_buf_cstr(&p));
        if (proof_out != NULL)
            snprintf(proof_out, 4096, "%s", ztb_buf_cstr(&p));
        ztb_buf_free(&p);
        headers[1] = dh;
    }
    snprintf(url, sizeof(url), "%s/refunds/4321", gw_url);
    int before = nf_backend_hits();
    struct zh_resp r;
    assert_int_equal(zh_http("POST", url, NULL, "application/json", "{}", 2, headers, &r), 0);
    *hit = nf_backend_hits() != before;
    long st = r.status;
    zh_resp_free(&r);
    return st;
}

static void test_dpop_bound(void **state)
{
    (void)state;
    ztb_key *k = NULL, *other = NULL;
    assert_int_equal(ztb_key_generate(&k), ZTB_OK);
    assert_int_equal(ztb_key_generate(&other), ZTB_OK);
    char tok[4096], proof[4096];
    bound_token(k, tok);
    int hit;
    assert_int_equal(bound_refund("Bearer", tok, k, "POST", NULL, NULL, &hit), 401);
    assert_int_equal(bound_refund("DPoP", tok, NULL, "POST", NULL, NULL, &hit), 401);
    assert_int_equal(bound_refund("DPoP", tok, other, "POST", NULL, NULL, &hit), 401);
    assert_int_equal(bound_refund("DPoP", tok, k, "GET", NULL, NULL, &hit), 401);
    assert_false(hit);
    assert_int_equal(bound_refund("dpop", tok, k, "POST", NULL, proof, &hit), 200);
    assert_true(hit);
    /* the same proof again (the proof id is in Redis) */
    assert_int_equal(bound_refund("DPoP", tok, k, "POST", proof, NULL, &hit), 401);
    assert_false(hit);
    /* a bearer token presented as DPoP */
    char plain[4096], auth[4200];
    token("payments", "payments:refund", "orders/4322", plain, sizeof(plain));
    snprintf(auth, sizeof(auth), "DPoP %s", plain);
    expect_refused("bearer token as DPoP", "/refunds/4322", auth, 401);
    ztb_key_free(k);
    ztb_key_free(other);
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void test_expired_and_revoked(void **state)
{
    (void)state;
    char brief[4096], rev[4096], auth[4200];
    token("payments", "payments:refund", "orders/555", brief, sizeof(brief));
    token("payments", "payments:refund", "orders/777", rev, sizeof(rev));
    /* good until revoked (multi-use) */
    assert_int_equal(direct(authz_url, "/refunds/777", rev, NULL), 200);
    char form[8192];
    snprintf(form, sizeof(form), "token=%s&client_assertion_type=%s&client_assertion=%s", rev,
             ZA_SESSION_TYPE, alice.session);
    struct zh_resp r;
    assert_int_equal(za_post_form(&b, "/v1/revoke", form, &r), 200);
    zh_resp_free(&r);
    /* the revocation reaches the sidecar over the feed: measured */
    double t0 = now_ms(), seen = -1;
    while (now_ms() - t0 < 2000) {
        if (direct(authz_url, "/refunds/777", rev, &r) == 401) {
            seen = now_ms() - t0;
            assert_non_null(strstr(r.body, "\"ztb_error\":\"REVOKED\""));
            zh_resp_free(&r);
            break;
        }
        zh_resp_free(&r);
        usleep(2000);
    }
    if (seen < 0 || seen > 500)
        fail_msg("the revocation reached the sidecar after %.0f ms (want < 500)", seen);
    print_message("revocation seen by the sidecar %.1f ms after the broker answered\n", seen);
    snprintf(auth, sizeof(auth), "Bearer %s", rev);
    expect_refused("revoked", "/refunds/777", auth, 401);
    /* expired: the 1-second token, the sidecar with no skew */
    json_t *c = za_claims(brief);
    int64_t exp = json_integer_value(json_object_get(c, "exp"));
    json_decref(c);
    while ((int64_t)time(NULL) < exp)
        usleep(50000);
    snprintf(auth, sizeof(auth), "Bearer %s", brief);
    expect_refused("expired", "/refunds/555", auth, 401);
}

/*
 * A refusal is logged with the original request's method and path, never
 * its query string: one may carry a credential (an RFC 6750 access_token=
 * or an API key), in both the auth_request form (X-Original-URI) and the
 * ext_authz prefix form (/v1/authorize/<path>?<query>).
 */
static void test_refusal_log_leaves_query_out(void **state)
{
    (void)state;
    const char *bad = "Bearer not.a.token";
    struct zh_resp r;
    assert_int_equal(
        direct(authz_url, "/refunds/4242?access_token=QSECRET1&x=1", "not.a.token", NULL), 401);
    char url[300];
    snprintf(url, sizeof(url), "%s/v1/authorize/refunds/4243?api_key=QSECRET2#frag", authz_url);
    char a[64];
    snprintf(a, sizeof(a), "Authorization: %s", bad);
    const char *h[] = {a, NULL};
    assert_int_equal(zh_http("POST", url, NULL, NULL, NULL, 0, h, &r), 0);
    assert_int_equal(r.status, 401);
    zh_resp_free(&r);
    char *log = NULL;
    const char *cat[] = {"/bin/cat", authz_log, NULL};
    zh_run(cat, &log, NULL);
    assert_non_null(log);
    static const char *const paths[] = {"/refunds/4242", "/v1/authorize/refunds/4243"};
    for (size_t i = 0; i < 2; i++) {
        char want[64], line[512];
        snprintf(want, sizeof(want), "refused POST %s", paths[i]);
        const char *at = strstr(log, want);
        if (at == NULL)
            fail_msg("no refusal of %s in the log: %s", paths[i], log);
        snprintf(line, sizeof(line), "%.*s", (int)strcspn(at, "\n"), at);
        if (strstr(line, "QSECRET") != NULL || line[strlen(want)] != ':')
            fail_msg("the query string reached the log: %s", line);
    }
    assert_null(strstr(log, "QSECRET"));
    free(log);
}

/* Last: Redis down. The sidecar refuses everything (503, nginx 500) rather
 * than answer from a state it cannot follow. */
static void test_fails_closed_without_redis(void **state)
{
    (void)state;
    char tok[4096], auth[4200];
    token("payments", "payments:refund", "orders/888", tok, sizeof(tok));
    assert_int_equal(direct(authz_url, "/refunds/888", tok, NULL), 200);
    zh_redis_kill(&rd);
    double t0 = now_ms();
    long st = 0;
    while (now_ms() - t0 < 5000 && (st = direct(authz_url, "/refunds/888", tok, NULL)) == 200)
        usleep(20000);
    if (st != 503)
        fail_msg("with Redis down the sidecar answered %ld", st);
    snprintf(auth, sizeof(auth), "Bearer %s", tok);
    expect_refused("Redis down, through nginx", "/refunds/888", auth, 500);
    char url[160];
    struct zh_resp r;
    snprintf(url, sizeof(url), "%s/readyz", authz_url);
    assert_int_equal(zh_http("GET", url, NULL, NULL, NULL, 0, NULL, &r), 0);
    assert_int_equal(r.status, 503);
    zh_resp_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_token_once),
        cmocka_unit_test(test_no_token_and_metadata),
        cmocka_unit_test(test_forged_tokens),
        cmocka_unit_test(test_misdirected_tokens),
        cmocka_unit_test(test_dpop_bound),
        cmocka_unit_test(test_expired_and_revoked),
        cmocka_unit_test(test_refusal_log_leaves_query_out),
        cmocka_unit_test(test_fails_closed_without_redis),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
