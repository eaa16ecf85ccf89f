/*
 * broker_fixture.h - what the broker's unit tests share: a real
 * redis-server, the audit log in a scratch directory, a key store (so tokens
 * can be minted and keys rotated), a policy in g_broker, and small helpers
 * to read the audit log and mint access tokens. Handler tests (enroll,
 * token, client_auth, admin, mtls) also serve the broker's real route tables
 * from this process (bf_serve): the handlers run on real libmicrohttpd
 * worker threads, reached over real sockets, so no request is faked.
 *
 * Header-only (static inline functions): each test file includes it once.
 */
#ifndef ZTB_TEST_BROKER_FIXTURE_H
#define ZTB_TEST_BROKER_FIXTURE_H

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include <openssl/rand.h>

#include "broker/audit/audit.h"
#include "broker/broker.h"
#include "broker/auth/client_auth.h"
#include "broker/config.h"
#include "broker/http/http.h"
#include "broker/signer/keys.h"
#include "broker/store/redis_client.h"
#include "broker/auth/session.h"
#include "harness.h"
#include "pki/ca.h"
#include "pki/jws.h"
#include "pki/keystore.h"
#include "wire/claims.h"
#include "policy/holder.h"

#define BF_ISSUER "https://broker.unit.test"

static struct zh_redis bf_redis;
static char bf_dir[256];

/* Start Redis, the audit log, a key store (keys opened; with an agent CA for
 * trust domain ztb.local when with_ca) and load policy (JSON text, may be
 * NULL). */
static inline void bf_setup_ca(const char *policy_text, int with_ca)
{
    signal(SIGPIPE, SIG_IGN);
    zh_redis_start(&bf_redis);
    struct redis_target t;
    char err[512];
    if (redis_target_parse(bf_redis.url, 0, &t, err, sizeof(err)) != ZTB_OK)
        abort();
    t.timeout_ms = ZH_REDIS_TIMEOUT_MS;
    redis_client_init(&t);
    zh_tmpdir(bf_dir, sizeof(bf_dir));
    char path[400];
    snprintf(path, sizeof(path), "%s/audit", bf_dir);
    if (audit_open(path, 0, err, sizeof(err)) != ZTB_OK)
        abort();
    snprintf(path, sizeof(path), "%s/keys", bf_dir);
    ztb_keystore *ks = NULL;
    if (ztb_keystore_init(path, NULL, (int64_t)time(NULL) - 10, &ks) != ZTB_OK)
        abort();
    ztb_keystore_close(ks);
    if (with_ca) {
        ztb_ca_opts co = {.trust_domain = "ztb.local"};
        ztb_ca *ca = NULL;
        if (ztb_ca_create(&co, (int64_t)time(NULL) - 10, &ca) != ZTB_OK ||
            ztb_ca_save(ca, path, NULL, 0) != ZTB_OK)
            abort();
        ztb_ca_free(ca);
    }
    if (keys_open(path, NULL, (int64_t)time(NULL), err, sizeof(err)) != ZTB_OK) {
        fprintf(stderr, "keys_open: %s\n", err);
        abort();
    }
    snprintf(g_broker.issuer, sizeof(g_broker.issuer), "%s", BF_ISSUER);
    snprintf(g_broker.cfg.trust_domain, sizeof(g_broker.cfg.trust_domain), "ztb.local");
    if (policy_holder_new(&g_broker.policy) != ZTB_OK)
        abort();
    if (policy_text != NULL) {
        policy_diag d;
        policy_diag_init(&d);
        if (policy_holder_reload(g_broker.policy, policy_text, strlen(policy_text), &d) != ZTB_OK) {
            fprintf(stderr, "policy refused (%zu problems)\n", d.n);
            abort();
        }
        policy_diag_free(&d);
    }
}

/* bf_setup_ca without an agent CA. */
static inline void bf_setup(const char *policy_text)
{
    bf_setup_ca(policy_text, 0);
}

static inline void bf_teardown(void)
{
    policy_holder_free(g_broker.policy);
    g_broker.policy = NULL;
    keys_close();
    audit_close();
    redis_client_shutdown();
    zh_redis_stop(&bf_redis, 1);
    zh_rmtree(bf_dir);
}

/* ---- serving the real route tables ---------------------------------------- */

static struct http_server *bf_api_srv, *bf_admin_srv;
/* the TLS PEM texts, kept while the server runs (as main.c does) */
static ztb_buf bf_ca_pem, bf_crt_pem, bf_key_pem;
/* The served API as the integration harness describes a broker (url = the
 * issuer, admin_sock, state = bf_dir), so tests/integration/agent.h's
 * helpers (enroll, assertions, tokens) work against it unchanged. */
static struct zh_broker bf_broker;

/*
 * After bf_setup_ca: the broker's default configuration (trust domain
 * ztb.local) (the session MAC key is the signer's, opened by keys_open),
 * and api_routes served on
 * 127.0.0.1 (a free port; the issuer is its URL) and admin_routes on a unix
 * socket in bf_dir, each by a real http_server of this process. tls: serve
 * HTTPS with a test certificate, client certificates from the agent CA
 * requested (mTLS); the harness then trusts that certificate.
 * bf_serve_routes serves routes (nroutes of them) instead of api_routes.
 */
static inline void bf_serve_routes(int tls, const struct http_route *routes, size_t nroutes)
{
    char err[512];
    broker_config_defaults(&g_broker.cfg);
    snprintf(g_broker.cfg.trust_domain, sizeof(g_broker.cfg.trust_domain), "ztb.local");
    int fd = -1, afd = -1;
    uint16_t port = 0;
    if (http_listen_tcp("127.0.0.1", 0, &fd, &port, err, sizeof(err)) != ZTB_OK)
        abort();
    memset(&bf_broker, 0, sizeof(bf_broker));
    bf_broker.port = port;
    snprintf(bf_broker.url, sizeof(bf_broker.url), "%s://127.0.0.1:%u", tls ? "https" : "http",
             port);
    snprintf(bf_broker.dir, sizeof(bf_broker.dir), "%s", bf_dir);
    snprintf(bf_broker.state, sizeof(bf_broker.state), "%s", bf_dir);
    snprintf(bf_broker.keys, sizeof(bf_broker.keys), "%s/keys", bf_dir);
    snprintf(bf_broker.admin_sock, sizeof(bf_broker.admin_sock), "%s/admin.sock", bf_dir);
    snprintf(g_broker.issuer, sizeof(g_broker.issuer), "%s", bf_broker.url);
    g_broker.port = port;
    client_auth_set_issuer(g_broker.issuer);
    client_auth_set_trust_domain("ztb.local");
    if (http_listen_unix(bf_broker.admin_sock, 0600, &afd, err, sizeof(err)) != ZTB_OK)
        abort();
    struct http_limits lim = {.max_body = g_broker.cfg.max_body,
                              .threads = 2,
                              .connection_limit = 64,
                              .connection_timeout_s = 10};
    struct http_limits alim = lim;
    alim.threads = 1;
    ztb_buf_init(&bf_ca_pem, 1 << 16);
    ztb_buf_init(&bf_crt_pem, 1 << 16);
    ztb_buf_init_secret(&bf_key_pem, 1 << 16);
    if (tls) {
        char crt[300], key[300];
        zh_tls_server_cert(bf_dir, crt, key);
        FILE *f = fopen(crt, "r");
        char chunk[4096];
        size_t n;
        while (f != NULL && (n = fread(chunk, 1, sizeof(chunk), f)) > 0)
            ztb_buf_append(&bf_crt_pem, chunk, n);
        if (f != NULL)
            fclose(f);
        f = fopen(key, "r");
        while (f != NULL && (n = fread(chunk, 1, sizeof(chunk), f)) > 0)
            ztb_buf_append(&bf_key_pem, chunk, n);
        if (f != NULL)
            fclose(f);
        if (keys_ca() == NULL || ztb_ca_cert_pem(keys_ca(), &bf_ca_pem) != ZTB_OK ||
            ztb_buf_cstr(&bf_crt_pem) == NULL || ztb_buf_cstr(&bf_key_pem) == NULL)
            abort();
        lim.tls_cert_pem = ztb_buf_cstr(&bf_crt_pem);
        lim.tls_key_pem = ztb_buf_cstr(&bf_key_pem);
        lim.tls_client_ca_pem = ztb_buf_cstr(&bf_ca_pem);
        zh_tls_trust(crt);
    }
    bf_api_srv = http_server_start("api", fd, routes, nroutes, &lim, &g_broker);
    bf_admin_srv = http_server_start("admin", afd, admin_routes, admin_routes_n, &alim, &g_broker);
    if (bf_api_srv == NULL || bf_admin_srv == NULL)
        abort();
}

/* bf_serve_routes with the broker's own public route table. */
static inline void bf_serve(int tls)
{
    bf_serve_routes(tls, api_routes, api_routes_n);
}

/* Stop what bf_serve started (before bf_teardown). */
static inline void bf_unserve(void)
{
    http_server_stop(bf_api_srv);
    http_server_stop(bf_admin_srv);
    bf_api_srv = bf_admin_srv = NULL;
    ztb_buf_free(&bf_ca_pem);
    ztb_buf_free(&bf_crt_pem);
    ztb_buf_free(&bf_key_pem);
    zh_tls_trust(NULL);
    zh_tls_client(NULL, NULL);
}

/* An admin call to the served broker (bf_serve); fails unless the answer
 * has status want. Returns the body as JSON, NULL if it is none (caller
 * decrefs). */
static inline json_t *bf_admin(const char *method, const char *path, const char *body, long want)
{
    struct zh_resp r;
    assert_int_equal(zh_admin(&bf_broker, method, path, body, &r), 0);
    if (r.status != want)
        fail_msg("%s %s: want HTTP %ld, got %ld: %s", method, path, want, r.status, r.body);
    json_error_t e;
    json_t *j = json_loads(r.body ? r.body : "", 0, &e);
    zh_resp_free(&r);
    return j;
}

/* Fail unless the admin call is refused with status and RFC 6749 error code. */
static inline void bf_admin_refused(const char *method, const char *path, const char *body,
                                    long status, const char *code)
{
    json_t *j = bf_admin(method, path, body, status);
    assert_string_equal(json_string_value(json_object_get(j, "error")), code);
    json_decref(j);
}

/* The audit log as text (caller frees). */
static inline char *bf_audit(void)
{
    char path[400];
    snprintf(path, sizeof(path), "%s/audit/audit.log", bf_dir);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return strdup("");
    char *s = calloc(1, 1 << 22);
    size_t n = fread(s, 1, (1 << 22) - 1, f);
    s[n] = '\0';
    fclose(f);
    return s;
}

/* 1 if an audit line has event and contains needle. */
static inline int bf_audit_has(const char *event, const char *needle)
{
    char *s = bf_audit();
    char ev[96];
    snprintf(ev, sizeof(ev), "\"event\":\"%s\"", event);
    int found = 0;
    for (char *line = s; line && *line && !found;) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = '\0';
        found = strstr(line, ev) != NULL && (needle == NULL || strstr(line, needle) != NULL);
        line = nl ? nl + 1 : NULL;
    }
    free(s);
    return found;
}

/* A Redis command's integer (or string as integer) answer. */
static inline long long bf_redis_int(const char *fmt, const char *arg)
{
    redisContext *c = zh_redis_connect(&bf_redis);
    redisReply *r = redisCommand(c, fmt, arg);
    long long v = -999;
    if (r != NULL && r->type == REDIS_REPLY_INTEGER)
        v = r->integer;
    else if (r != NULL && r->type == REDIS_REPLY_STRING)
        v = atoll(r->str);
    if (r != NULL)
        freeReplyObject(r);
    redisFree(c);
    return v;
}

/* Mint an access token as the broker does (active key, typ at+jwt). */
static inline void bf_mint(const char *agent, const char *aud, int64_t iat, int64_t exp,
                           int64_t gen, int single_use, const char *typ, char *jti_out, char *tok,
                           size_t cap)
{
    char spiffe[128];
    snprintf(spiffe, sizeof(spiffe), "spiffe://ztb.local/agent/%s", agent);
    struct token_claims c = {.iss = g_broker.issuer,
                             .agent = agent,
                             .spiffe_id = spiffe,
                             .audience = aud,
                             .action = "payments:read",
                             .iat = iat,
                             .exp = exp,
                             .generation = gen,
                             .single_use = single_use};
    if (claims_new_jti(&c) != ZTB_OK)
        abort();
    ztb_buf cb, tb;
    ztb_buf_init(&cb, 8192);
    ztb_buf_init_fixed(&tb, tok, cap);
    if (claims_write(&c, &cb) != ZTB_OK)
        abort();
    struct keys_state *ks = keys_acquire();
    ztb_jws_sign_opts so = {.typ = typ};
    if (keys_sign_jws(ks, &so, ztb_buf_cstr(&cb), cb.len, &tb) != ZTB_OK ||
        ztb_buf_cstr(&tb) == NULL)
        abort();
    keys_release(ks);
    ztb_buf_free(&cb);
    if (jti_out != NULL)
        memcpy(jti_out, c.jti, sizeof(c.jti));
}

#endif /* ZTB_TEST_BROKER_FIXTURE_H */
