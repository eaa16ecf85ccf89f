/*
 * test_gateway_envoy.c - the prefix form of /v1/authorize, for Envoy's
 * ext_authz filter in HTTP mode, at the real broker and the real ztb-authz
 * (with the real Redis), configured by docs/gateways.md.
 *
 * No Envoy package exists here (Debian 12, npm), so no Envoy runs. The test
 * reads the two Envoy blocks of docs/gateways.md ("envoy.yaml" for the
 * broker, "envoy-authz.yaml" for the sidecar) and takes from them what
 * shapes Envoy's traffic: path_prefix, allowed_headers, headers_to_add,
 * allowed_upstream_headers, allowed_client_headers, the header_mutation
 * removals, failure_mode_allow. Each client request is turned into the
 * check request Envoy sends for it (the original method to path_prefix +
 * the original path and query, the Host, only the allowed headers plus
 * Authorization, the added headers, Content-Length: 0), written byte for
 * byte on a raw socket so that no client library normalises the path, and
 * the answer is held to what Envoy would do with it (200: the allowed
 * upstream headers reach the backend; else the allowed client headers
 * reach the client). The route table is the docs' "routes.json".
 *
 * Attacks: forged, misdirected, expired, revoked and replayed tokens;
 * percent-encoding, dot-segment, double-slash, NUL and over-long paths that
 * could map a token for one resource onto another or past the route table;
 * a target only a decoder would route to the endpoint; X-Original-* headers
 * beside the prefix form; a DPoP proof made for the check request's URL;
 * single-use tokens consumed exactly once across both forms and both
 * programs.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "agent.h"
#include "common/base64url.h"
#include "harness.h"
#include "nginx_fixture.h"
#include "pki/dpop.h"
#include "pki/jws.h"
#include "wire/route_table.h"

#define ORIGIN "https://payments.example.org"

/* orders/1xxx are single-use, orders/555 lives 1 s, orders/432x are
 * DPoP-bound; everything else is a plain bearer token */
static const char *policy_doc =
    "{\"version\": 1, \"trust_domain\": \"ztb.local\",\n"
    " \"settings\": {\"max_ttl\": 120, \"default_ttl\": 60,\n"
    "   \"rate_limits\": {\"per_agent\": {\"rate\": 1000, \"burst\": 200, \"period\": 60},\n"
    "                   \"per_action\": {\"rate\": 1000, \"burst\": 200, \"period\": 60}}},\n"
    " \"rules\": [\n"
    "  {\"id\": \"refund\", \"effect\": \"allow\", \"agents\": [\"*\"],\n"
    "   \"actions\": [\"payments:refund\"], \"audiences\": [\"payments\", \"crm\"],\n"
    "   \"resources\": [\"**\"]},\n"
    "  {\"id\": \"refund-once\", \"effect\": \"allow\", \"agents\": [\"*\"],\n"
    "   \"actions\": [\"payments:refund\"], \"audiences\": [\"payments\"],\n"
    "   \"resources\": [\"orders/1*\"], \"obligations\": {\"single_use\": true}},\n"
    "  {\"id\": \"refund-brief\", \"effect\": \"allow\", \"agents\": [\"*\"],\n"
    "   \"actions\": [\"payments:refund\"], \"audiences\": [\"payments\"],\n"
    "   \"resources\": [\"orders/555\"], \"obligations\": {\"ttl\": 1}},\n"
    "  {\"id\": \"refund-bound\", \"effect\": \"allow\", \"agents\": [\"*\"],\n"
    "   \"actions\": [\"payments:refund\"], \"audiences\": [\"payments\"],\n"
    "   \"resources\": [\"orders/432*\"], \"obligations\": {\"binding\": \"dpop\"}},\n"
    "  {\"id\": \"read\", \"effect\": \"allow\", \"agents\": [\"*\"],\n"
    "   \"actions\": [\"payments:read\"], \"audiences\": [\"payments\"], \"resources\": [\"**\"]}\n"
    " ]}\n";

static struct zh_redis rd;
static struct zh_broker b;
static struct za_agent alice;
static char dir[256], authz_log[300];
static pid_t authz_pid;
static uint16_t authz_port;

/* ---- the Envoy configuration of docs/gateways.md ------------------------- */

#define LIST_MAX 16
struct names {
    char v[LIST_MAX][64];
    int n;
};

struct envoy {
    const char *block; /* its marker name */
    char path_prefix[64];
    struct names allowed, added, upstream, client, removed;
    int failure_mode_allow_false;
    unsigned ztb_port; /* the port of the ext_authz server_uri */
    uint16_t port;     /* where the check requests go in this test */
};
static struct envoy env[2]; /* [0]: the broker, [1]: ztb-authz */

static int has(const struct names *l, const char *name)
{
    for (int i = 0; i < l->n; i++)
        if (strcasecmp(l->v[i], name) == 0)
            return 1;
    return 0;
}

static void add(struct names *l, const char *v)
{
    assert_true(l->n < LIST_MAX);
    snprintf(l->v[l->n++], sizeof(l->v[0]), "%.63s", v);
}

/* The value after "key:" on a trimmed line, unquoted, or NULL. */
static const char *value_of(const char *line, const char *key, char *out, size_t cap)
{
    size_t k = strlen(key);
    if (strncmp(line, key, k) != 0 || line[k] != ':')
        return NULL;
    const char *v = line + k + 1;
    while (*v == ' ')
        v++;
    snprintf(out, cap, "%s", v);
    size_t n = strlen(out);
    if (n >= 2 && out[0] == '"' && out[n - 1] == '"') {
        memmove(out, out + 1, n - 2);
        out[n - 2] = '\0';
    }
    return out;
}

/* Read the block's settings that shape Envoy's check requests and answers
 * (a line-oriented reading of the YAML: enough for the docs' own block). */
static void envoy_read(struct envoy *e, const char *block)
{
    memset(e, 0, sizeof(*e));
    e->block = block;
    char *text = nf_doc_block(block);
    struct names *section = NULL;
    for (char *line = strtok(text, "\n"); line != NULL; line = strtok(NULL, "\n")) {
        while (*line == ' ')
            line++;
        if (line[0] == '#')
            continue;
        if (line[0] == '-' && line[1] == ' ')
            line += 2;
        char v[256];
        if (value_of(line, "path_prefix", v, sizeof(v)))
            snprintf(e->path_prefix, sizeof(e->path_prefix), "%.63s", v);
        else if (value_of(line, "failure_mode_allow", v, sizeof(v)))
            e->failure_mode_allow_false = strcmp(v, "false") == 0;
        else if (value_of(line, "uri", v, sizeof(v)))
            e->ztb_port = (unsigned)atoi(strrchr(v, ':') + 1);
        else if (strcmp(line, "allowed_headers:") == 0)
            section = &e->allowed;
        else if (strcmp(line, "headers_to_add:") == 0)
            section = &e->added;
        else if (strcmp(line, "allowed_upstream_headers:") == 0)
            section = &e->upstream;
        else if (strcmp(line, "allowed_client_headers:") == 0)
            section = &e->client;
        else if (strcmp(line, "request_mutations:") == 0)
            section = &e->removed;
        else if (section != NULL &&
                 (value_of(line, "exact", v, sizeof(v)) || value_of(line, "remove", v, sizeof(v)) ||
                  value_of(line, "key", v, sizeof(v))))
            add(section, v);
        else if (strcmp(line, "patterns:") != 0 && strncmp(line, "value:", 6) != 0)
            section = NULL;
    }
    free(text);
}

/* ---- raw HTTP ------------------------------------------------------------ */

struct answer {
    long status;
    char head[8192]; /* status line and headers */
    char body[8192];
    size_t body_len;
};

/* Send the n bytes of req to 127.0.0.1:port, read the answer until the
 * server closes (the request says Connection: close). */
static void raw_http(uint16_t port, const char *req, size_t n, struct answer *out)
{
    memset(out, 0, sizeof(*out));
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sa = {
        .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    for (size_t o = 0; o < n;) {
        ssize_t w = send(fd, req + o, n - o, MSG_NOSIGNAL);
        assert_true(w > 0);
        o += (size_t)w;
    }
    static char buf[65536];
    size_t got = 0;
    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 3000) <= 0)
            break;
        ssize_t r = recv(fd, buf + got, sizeof(buf) - 1 - got, 0);
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    buf[got] = '\0';
    char *end = strstr(buf, "\r\n\r\n");
    if (end == NULL || sscanf(buf, "HTTP/1.%*c %ld", &out->status) != 1) {
        out->status = -1;
        return;
    }
    snprintf(out->head, sizeof(out->head), "%.*s\r\n", (int)(end - buf), buf);
    out->body_len = got - (size_t)(end + 4 - buf);
    if (out->body_len >= sizeof(out->body))
        out->body_len = sizeof(out->body) - 1;
    memcpy(out->body, end + 4, out->body_len);
}

/* The value of header name in a (first occurrence), or NULL. */
static const char *answer_header(const struct answer *a, const char *name, char *out, size_t cap)
{
    for (const char *p = strstr(a->head, "\r\n"); p != NULL && p[2] != '\0';
         p = strstr(p + 2, "\r\n")) {
        const char *line = p + 2, *colon = strchr(line, ':'), *eol = strstr(line, "\r\n");
        if (colon == NULL || eol == NULL || colon > eol)
            continue;
        if ((size_t)(colon - line) == strlen(name) && strncasecmp(line, name, strlen(name)) == 0) {
            const char *v = colon + 1;
            while (*v == ' ')
                v++;
            snprintf(out, cap, "%.*s", (int)(eol - v), v);
            return out;
        }
    }
    return NULL;
}

/*
 * What Envoy configured by e does with a client's request (method, path
 * as sent, client headers "Name: value", NULL-terminated): the check request
 * it sends (the original method to path_prefix + path; Host; the client's
 * headers that allowed_headers names, and Authorization; headers_to_add;
 * Content-Length 0), and the answer. Then what Envoy passes on is checked:
 * on 200 every X-Ztb-* header of the answer is one the configuration copies
 * upstream and strips from the client's request; otherwise the challenge is
 * one it passes to the client.
 */
static long envoy_check(const struct envoy *e, const char *method, const char *path,
                        const char *const *client_headers, struct answer *out)
{
    static char req[32768];
    size_t n = (size_t)snprintf(req, sizeof(req), "%s %s%s HTTP/1.1\r\nHost: %s\r\n", method,
                                e->path_prefix, path, "payments.example.org");
    for (size_t i = 0; client_headers != NULL && client_headers[i] != NULL; i++) {
        char name[64];
        snprintf(name, sizeof(name), "%.*s", (int)strcspn(client_headers[i], ":"),
                 client_headers[i]);
        if ((has(&e->allowed, name) || strcasecmp(name, "Authorization") == 0) &&
            !has(&e->added, name)) /* headers_to_add replaces the client's */
            n += (size_t)snprintf(req + n, sizeof(req) - n, "%s\r\n", client_headers[i]);
    }
    for (int i = 0; i < e->added.n; i++) /* the value: the downstream address, here loopback */
        n += (size_t)snprintf(req + n, sizeof(req) - n, "%s: 127.0.0.1\r\n", e->added.v[i]);
    n += (size_t)snprintf(req + n, sizeof(req) - n,
                          "Content-Length: 0\r\nConnection: close\r\n\r\n");
    assert_true(n < sizeof(req));
    raw_http(e->port, req, n, out);
    char v[2048];
    if (out->status == 200) {
        for (const char *p = strstr(out->head, "\r\nX-Ztb-"); p != NULL;
             p = strstr(p + 2, "\r\nX-Ztb-")) {
            char name[64];
            snprintf(name, sizeof(name), "%.*s", (int)strcspn(p + 2, ":"), p + 2);
            if (!has(&e->upstream, name) || !has(&e->removed, name))
                fail_msg("%s: the answer's %s is not both passed upstream and stripped from the "
                         "client's request",
                         e->block, name);
        }
    } else if (answer_header(out, "WWW-Authenticate", v, sizeof(v)) != NULL) {
        if (!has(&e->client, "WWW-Authenticate"))
            fail_msg("%s: the challenge does not reach the client", e->block);
    }
    return out->status;
}

/* A check request written as is (the target and headers exactly as given). */
static long raw_check(uint16_t port, const char *method, const char *target, const char *headers,
                      struct answer *out)
{
    static char req[32768];
    int n = snprintf(req, sizeof(req),
                     "%s %s HTTP/1.1\r\nHost: payments.example.org\r\n%sContent-Length: 0\r\n"
                     "Connection: close\r\n\r\n",
                     method, target, headers);
    assert_true(n > 0 && (size_t)n < sizeof(req));
    raw_http(port, req, (size_t)n, out);
    return out->status;
}

/* ---- fixtures ------------------------------------------------------------ */

static void start_authz(const char *routes)
{
    char jwks[128], iss[64];
    snprintf(jwks, sizeof(jwks), "%s/.well-known/jwks.json", b.url);
    snprintf(iss, sizeof(iss), "%s", b.url);
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
        execl(zh_bin("ztb-authz"), "ztb-authz", "--issuer", iss, "--jwks-url", jwks, "--redis",
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
    unsigned port = 0;
    assert_int_equal(sscanf(line, "ztb-authz: listening on http://127.0.0.1:%u", &port), 1);
    authz_port = (uint16_t)port;
}

static int setup(void **state)
{
    (void)state;
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
    envoy_read(&env[0], "envoy.yaml");
    envoy_read(&env[1], "envoy-authz.yaml");
    env[0].port = b.port;
    env[1].port = authz_port;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    if (authz_pid > 0) {
        kill(authz_pid, SIGTERM);
        int st = 0;
        waitpid(authz_pid, &st, 0);
        assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    }
    za_free(&alice);
    assert_int_equal(zh_broker_stop(&b), 0);
    zh_redis_stop(&rd, 1);
    zh_rmtree(b.dir);
    zh_rmtree(dir);
    return 0;
}

/* ---- tokens -------------------------------------------------------------- */

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

/* "Authorization: Bearer tok" into out. */
static const char *bearer(char *out, size_t cap, const char *tok)
{
    if ((size_t)snprintf(out, cap, "Authorization: Bearer %s", tok) >= cap)
        fail_msg("token too long for the header buffer");
    return out;
}

/* A client's POST path through Envoy e with "Authorization: Bearer tok". */
static long refund(const struct envoy *e, const char *path, const char *tok, struct answer *a)
{
    char h[4200];
    const char *hs[] = {tok != NULL ? bearer(h, sizeof(h), tok) : NULL, NULL};
    return envoy_check(e, "POST", path, hs, a);
}

/* The header form (nginx's) at port for POST uri. */
static long header_form(uint16_t port, const char *uri, const char *tok, struct answer *a)
{
    char h[4400];
    snprintf(h, sizeof(h),
             "Authorization: Bearer %s\r\nX-Original-Method: POST\r\nX-Original-URI: %s\r\n", tok,
             uri);
    return raw_check(port, "GET", "/v1/authorize", h, a);
}

static int audit_count(const char *needle)
{
    char *text = za_audit_text(&b);
    int n = 0;
    for (const char *p = text; (p = strstr(p, needle)) != NULL; p++)
        n++;
    free(text);
    return n;
}

/* ---- tests --------------------------------------------------------------- */

/* The documented configurations say what the tests below rely on. */
static void test_docs_configuration(void **state)
{
    (void)state;
    static const char *const ident[] = {"X-Ztb-Subject",  "X-Ztb-Agent", "X-Ztb-Action",
                                        "X-Ztb-Resource", "X-Ztb-Jti",   "X-Ztb-Actor"};
    for (int i = 0; i < 2; i++) {
        const struct envoy *e = &env[i];
        assert_string_equal(e->path_prefix, ROUTE_CHECK_PATH);
        assert_true(e->failure_mode_allow_false);
        assert_int_equal(e->ztb_port, i == 0 ? 8443 : 8181); /* the broker, the sidecar */
        assert_true(has(&e->allowed, "authorization"));
        assert_true(has(&e->allowed, "dpop"));
        /* the client's X-Original-* or X-Ztb-* never reach ztb */
        assert_false(has(&e->allowed, "x-original-method"));
        assert_false(has(&e->allowed, "x-original-uri"));
        assert_false(has(&e->allowed, "x-ztb-source"));
        assert_true(has(&e->added, "x-real-ip"));
        for (size_t k = 0; k < sizeof(ident) / sizeof(ident[0]); k++) {
            assert_false(has(&e->allowed, ident[k]));
            if (!has(&e->upstream, ident[k]) || !has(&e->removed, ident[k]))
                fail_msg("%s: %s must be passed upstream and stripped from the client", e->block,
                         ident[k]);
        }
        assert_true(has(&e->client, "www-authenticate"));
        assert_true(has(&e->client, "retry-after"));
    }
}

/* A valid token through the prefix form: 200 with the identity; a
 * single-use token is consumed exactly once, across both forms and both
 * programs. */
static void test_valid_and_single_use(void **state)
{
    (void)state;
    for (int i = 0; i < 2; i++) {
        char tok[4096], v[512], path[64], res[64];
        snprintf(path, sizeof(path), "/refunds/%d", 1100 + i);
        snprintf(res, sizeof(res), "orders/%d", 1100 + i);
        token("payments", "payments:refund", res, tok, sizeof(tok));
        int allowed = audit_count("\"authorize.allowed\"");
        struct answer a;
        char h[4200];
        /* the client's own X-Ztb-Actor and X-Original-URI stay at Envoy */
        const char *hs[] = {bearer(h, sizeof(h), tok), "X-Ztb-Actor: spiffe://ztb.local/agent/boss",
                            "X-Original-URI: /refunds/9999", NULL};
        if (envoy_check(&env[i], "POST", path, hs, &a) != 200)
            fail_msg("%s: %ld %s", env[i].block, a.status, a.body);
        assert_string_equal(answer_header(&a, "X-Ztb-Subject", v, sizeof(v)),
                            "spiffe://ztb.local/agent/alice");
        assert_string_equal(answer_header(&a, "X-Ztb-Agent", v, sizeof(v)), "alice");
        assert_string_equal(answer_header(&a, "X-Ztb-Action", v, sizeof(v)), "payments:refund");
        assert_string_equal(answer_header(&a, "X-Ztb-Resource", v, sizeof(v)), res);
        assert_non_null(answer_header(&a, "X-Ztb-Jti", v, sizeof(v)));
        assert_null(answer_header(&a, "X-Ztb-Actor", v, sizeof(v)));
        /* the broker audits its decision, once */
        assert_int_equal(audit_count("\"authorize.allowed\""), allowed + (i == 0));
        /* replayed: in the prefix form, the header form, at the other program */
        assert_int_equal(refund(&env[i], path, tok, &a), 401);
        assert_non_null(strstr(a.body, "REPLAY"));
        assert_non_null(answer_header(&a, "WWW-Authenticate", v, sizeof(v)));
        assert_non_null(strstr(v, "error=\"invalid_token\""));
        assert_int_equal(header_form(env[i].port, path, tok, &a), 401);
        assert_int_equal(refund(&env[1 - i], path, tok, &a), 401);
        /* the other way round: the header form first, then the prefix form */
        snprintf(path, sizeof(path), "/refunds/%d", 1200 + i);
        snprintf(res, sizeof(res), "orders/%d", 1200 + i);
        token("payments", "payments:refund", res, tok, sizeof(tok));
        assert_int_equal(header_form(env[1 - i].port, path, tok, &a), 200);
        assert_int_equal(refund(&env[i], path, tok, &a), 401);
        assert_int_equal(refund(&env[1 - i], path, tok, &a), 401);
    }
}

/* Forged, misdirected, expired, revoked tokens and no token: refused with
 * the challenge, in the prefix form, as in the header form. */
static void test_refusals(void **state)
{
    (void)state;
    char tok[4096], brief[2][4096];
    struct answer a;
    token("payments", "payments:refund", "orders/555", brief[0], sizeof(brief[0]));
    token("payments", "payments:refund", "orders/555", brief[1], sizeof(brief[1]));
    for (int i = 0; i < 2; i++) {
        const struct envoy *e = &env[i];
        char v[1024];
        /* no token: both challenges, passed to the client */
        assert_int_equal(refund(e, "/refunds/2000", NULL, &a), 401);
        assert_non_null(answer_header(&a, "WWW-Authenticate", v, sizeof(v)));
        assert_non_null(strstr(v, "Bearer realm=\"ztb\""));
        assert_non_null(strstr(v, "DPoP realm=\"ztb\""));
        /* forged: alg none, a tampered payload, a foreign key */
        token("payments", "payments:refund", "orders/2000", tok, sizeof(tok));
        char kid[128], hj[256], hb[512], forged[8400];
        za_kid(tok, kid, sizeof(kid));
        const char *d1 = strchr(tok, '.'), *d2 = strrchr(tok, '.');
        snprintf(hj, sizeof(hj), "{\"alg\":\"none\",\"typ\":\"at+jwt\",\"kid\":\"%s\"}", kid);
        assert_int_equal(ztb_b64url_encode(hj, strlen(hj), hb, sizeof(hb), NULL), ZTB_OK);
        snprintf(forged, sizeof(forged), "%s%.*s.", hb, (int)(d2 - d1), d1);
        assert_int_equal(refund(e, "/refunds/2000", forged, &a), 401);
        snprintf(forged, sizeof(forged), "%s", tok);
        char *pc = forged + (d1 - tok) + 5; /* a tampered payload, still base64url */
        *pc = *pc == 'A' ? 'B' : 'A';
        assert_int_equal(refund(e, "/refunds/2000", forged, &a), 401);
        ztb_key *k = NULL;
        assert_int_equal(ztb_key_generate(&k), ZTB_OK);
        json_t *c = za_claims(tok);
        char *cj = json_dumps(c, JSON_COMPACT);
        ztb_buf out;
        ztb_buf_init(&out, 8192);
        snprintf(hj, sizeof(hj), "{\"alg\":\"ES256\",\"typ\":\"at+jwt\",\"kid\":\"%s\"}", kid);
        ztb_jws_sign_opts so = {.header = hj, .header_len = strlen(hj)};
        assert_int_equal(ztb_jws_sign(k, &so, cj, strlen(cj), &out), ZTB_OK);
        assert_int_equal(refund(e, "/refunds/2000", ztb_buf_cstr(&out), &a), 401);
        ztb_buf_free(&out);
        free(cj);
        json_decref(c);
        ztb_key_free(k);
        /* another action or resource: 403 insufficient_scope; another audience: 401 */
        char other[4096];
        token("payments", "payments:read", "orders/2000", other, sizeof(other));
        assert_int_equal(refund(e, "/refunds/2000", other, &a), 403);
        assert_non_null(answer_header(&a, "WWW-Authenticate", v, sizeof(v)));
        assert_non_null(strstr(v, "error=\"insufficient_scope\""));
        assert_non_null(strstr(v, "scope=\"payments:refund\""));
        token("payments", "payments:refund", "orders/2001", other, sizeof(other));
        assert_int_equal(refund(e, "/refunds/2000", other, &a), 403);
        token("crm", "payments:refund", "orders/2000", other, sizeof(other));
        assert_int_equal(refund(e, "/refunds/2000", other, &a), 401);
        /* revoked (RFC 7009, as its owner) */
        char form[8192];
        token("payments", "payments:refund", "orders/2002", other, sizeof(other));
        snprintf(form, sizeof(form), "token=%s&client_assertion_type=%s&client_assertion=%s", other,
                 ZA_SESSION_TYPE, alice.session);
        struct zh_resp r;
        assert_int_equal(za_post_form(&b, "/v1/revoke", form, &r), 200);
        zh_resp_free(&r);
        for (int tries = 0; refund(e, "/refunds/2002", other, &a) != 401; tries++) {
            if (tries > 50) /* the sidecar's feed: milliseconds */
                fail_msg("%s: a revoked token still passes: %ld", e->block, a.status);
            usleep(20000);
        }
        assert_non_null(strstr(a.body, "REVOKED"));
        /* and the untouched token still passes: no refusal used it */
        assert_int_equal(refund(e, "/refunds/2000", tok, &a), 200);
    }
    /* expired */
    json_t *c = za_claims(brief[0]);
    int64_t exp = json_integer_value(json_object_get(c, "exp"));
    json_decref(c);
    while ((int64_t)time(NULL) < exp)
        usleep(50000);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(refund(&env[i], "/refunds/555", brief[i], &a), 401);
        assert_non_null(strstr(a.body, "EXPIRED"));
    }
}

/* ATTACK: paths that could map a token for orders/1300 onto another
 * resource or past the route table. None of them may answer 200, and
 * none may use the single-use token up. */
static void test_path_tricks(void **state)
{
    (void)state;
    struct {
        const char *target;
        long want;
    } tricks[] = {
        {"/v1/authorize/refunds%2F..%2Fadmin", 403}, /* encoded traversal */
        {"/v1/authorize/refunds/1/../1300", 403},    /* dot segments */
        {"/v1/authorize/refunds/./1300", 403},       /* dot segment */
        {"/v1/authorize//refunds/1300", 403},        /* double slash */
        {"/v1/authorize/refunds//1300", 403},        /* double slash */
        {"/v1/authorize/refunds/1300/", 403},        /* trailing slash */
        {"/v1/authorize/refunds/%31300", 403},       /* encoded digit decoding to 1300 */
        {"/v1/authorize/refunds%2F1300", 403},       /* encoded slash */
        {"/v1/authorize/refunds/1300%00/../9", 403}, /* NUL: a C string would end at it */
        {"/v1/authorize/refunds/1300;x=1", 403},     /* path parameters */
        {"/v1/authorize/refunds/1300%23x", 403},     /* encoded fragment */
        {"/v1/authorize/REFUNDS/1300", 403},         /* case */
        {"/v1/authorize/", 403},                     /* no path */
        {"/v1/authorize%2Frefunds/1300", 400},       /* only a decoder makes it the endpoint */
        {"/v1/authorize%2frefunds/1300", 400},       /* the same, lower case */
        {"/v1/authoriz%65/refunds/1300", 400},       /* an encoded letter */
        {"/v1/authorize/%2e%2e/authorize/refunds/1300", 403},
        {"/v1//authorize/refunds/1300", 0}, /* not the endpoint: 404 or 405 */
        {"/v1/authorizerefunds/1300", 0},
    };
    char tok[4096], h[4200], hdr[4300];
    token("payments", "payments:refund", "orders/1300", tok, sizeof(tok));
    snprintf(hdr, sizeof(hdr), "%s\r\n", bearer(h, sizeof(h), tok));
    struct answer a;
    for (int i = 0; i < 2; i++) {
        for (size_t t = 0; t < sizeof(tricks) / sizeof(tricks[0]); t++) {
            long st = raw_check(env[i].port, "POST", tricks[t].target, hdr, &a);
            if (tricks[t].want == 0 && (st == 404 || st == 405))
                continue;
            if (st != tricks[t].want)
                fail_msg("%s %s: %ld (want %ld): %s", env[i].block, tricks[t].target, st,
                         tricks[t].want, a.body);
        }
        /* a literal NUL byte in the request line: no decision */
        static const char nul_req[] = "POST /v1/authorize/refunds/1300\0/../9 HTTP/1.1\r\n"
                                      "Host: p\r\nConnection: close\r\n";
        char req[8192];
        size_t n = sizeof(nul_req) - 1;
        memcpy(req, nul_req, n);
        n += (size_t)snprintf(req + n, sizeof(req) - n, "%s\r\n\r\n", h);
        raw_http(env[i].port, req, n, &a);
        if (a.status != 400)
            fail_msg("%s: a NUL in the request line: %ld %s", env[i].block, a.status, a.body);
        /* over-long paths: no route (or refused by the server), never a crash */
        static char target[20000];
        memset(target, 0, sizeof(target));
        snprintf(target, sizeof(target), "/v1/authorize/refunds/");
        memset(target + strlen(target), '1', 600);
        assert_int_equal(raw_check(env[i].port, "POST", target, hdr, &a), 403);
        memset(target + strlen(target), '1', 15000);
        assert_int_not_equal(raw_check(env[i].port, "POST", target, hdr, &a), 200);
        /* X-Original-* beside the prefix form (a gateway that lets the
         * client's through): refused, whichever names the token's resource */
        char both[4600];
        snprintf(both, sizeof(both),
                 "%sX-Original-Method: POST\r\nX-Original-URI: /refunds/1300\r\n", hdr);
        assert_int_equal(raw_check(env[i].port, "POST", "/v1/authorize/refunds/9", both, &a), 400);
        assert_non_null(strstr(a.body, "named twice"));
        snprintf(both, sizeof(both), "%sX-Original-URI: /refunds/1300\r\n", hdr);
        assert_int_equal(raw_check(env[i].port, "POST", "/v1/authorize/refunds/1300", both, &a),
                         400);
        /* the server still answers */
        assert_int_equal(refund(&env[i], "/refunds/2000", NULL, &a), 401);
    }
    /* none of that used the token: it passes once, the query cut off */
    assert_int_equal(refund(&env[1], "/refunds/1300?to=/refunds/9&x=%2F..", tok, &a), 200);
    char v[128];
    assert_string_equal(answer_header(&a, "X-Ztb-Resource", v, sizeof(v)), "orders/1300");
    assert_int_equal(refund(&env[0], "/refunds/1300", tok, &a), 401);
}

/* A DPoP-bound token: the proof is for the ORIGINAL method and URL. */
static void test_dpop(void **state)
{
    (void)state;
    for (int i = 0; i < 2; i++) {
        ztb_key *k = NULL;
        assert_int_equal(ztb_key_generate(&k), ZTB_OK);
        char res[32], path[32], tok[4096], htu[200], form[2048], url[160], hdr[4200];
        snprintf(res, sizeof(res), "orders/432%d", i);
        snprintf(path, sizeof(path), "/refunds/432%d", i);
        ztb_buf p;
        ztb_buf_init(&p, 4096);
        snprintf(htu, sizeof(htu), "%s/v1/token", b.url);
        assert_int_equal(ztb_dpop_proof_make(k, "POST", htu, time(NULL), NULL, &p), ZTB_OK);
        snprintf(hdr, sizeof(hdr), "DPoP: %s", ztb_buf_cstr(&p));
        snprintf(form, sizeof(form),
                 "grant_type=urn%%3Aietf%%3Aparams%%3Aoauth%%3Agrant-type%%3Atoken-exchange"
                 "&audience=payments&scope=payments:refund&resource=orders%%2F432%d"
                 "&client_assertion_type=%s&client_assertion=%s",
                 i, ZA_SESSION_TYPE, alice.session);
        snprintf(url, sizeof(url), "%s/v1/token", b.url);
        const char *th[] = {hdr, NULL};
        struct zh_resp r;
        assert_int_equal(zh_http("POST", url, NULL, "application/x-www-form-urlencoded", form,
                                 strlen(form), th, &r),
                         0);
        if (r.status != 200)
            fail_msg("bound token: %ld %s", r.status, r.body);
        json_t *j = za_json(&r);
        snprintf(tok, sizeof(tok), "%s", json_string_value(json_object_get(j, "access_token")));
        json_decref(j);
        zh_resp_free(&r);
        struct {
            const char *htm, *url;
            long want;
        } cases[] = {
            {"POST", ORIGIN "/v1/authorize/refunds/432", 401}, /* the check request's URL */
            {"GET", ORIGIN "/refunds/432", 401},               /* another method */
            {"POST", ORIGIN "/refunds/432", 200},              /* the original request */
        };
        for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
            char u[200], auth[4200], proof[4300];
            snprintf(u, sizeof(u), "%s%d", cases[c].url, i);
            ztb_buf_reset(&p);
            assert_int_equal(ztb_dpop_proof_make(k, cases[c].htm, u, time(NULL), tok, &p), ZTB_OK);
            snprintf(auth, sizeof(auth), "Authorization: DPoP %s", tok);
            snprintf(proof, sizeof(proof), "DPoP: %s", ztb_buf_cstr(&p));
            const char *hs[] = {auth, proof, NULL};
            struct answer a;
            long st = envoy_check(&env[i], "POST", path, hs, &a);
            if (st != cases[c].want)
                fail_msg("%s proof %s %s: %ld (want %ld) %s", env[i].block, cases[c].htm, u, st,
                         cases[c].want, a.body);
            if (st == 401) {
                char v[1024];
                assert_non_null(answer_header(&a, "WWW-Authenticate", v, sizeof(v)));
                assert_non_null(strstr(v, "invalid_dpop_proof"));
            }
        }
        ztb_buf_free(&p);
        ztb_key_free(k);
    }
}

/* Every method Envoy forwards reaches the decision (no route here but
 * POST /refunds/{id}: 403, not 404 or 405); HEAD has no body; a body on
 * the check request is ignored. */
static void test_methods_and_body(void **state)
{
    (void)state;
    static const char *const methods[] = {"GET", "HEAD", "PUT", "PATCH", "DELETE", "OPTIONS"};
    char tok[4096], h[4200], hdr[4300];
    token("payments", "payments:refund", "orders/3000", tok, sizeof(tok));
    const char *hs[] = {bearer(h, sizeof(h), tok), NULL};
    snprintf(hdr, sizeof(hdr), "%s\r\n", h);
    struct answer a;
    for (int i = 0; i < 2; i++) {
        for (size_t m = 0; m < sizeof(methods) / sizeof(methods[0]); m++) {
            long st = envoy_check(&env[i], methods[m], "/refunds/3000", hs, &a);
            if (st != 403)
                fail_msg("%s %s: %ld", env[i].block, methods[m], st);
            if (strcmp(methods[m], "HEAD") == 0)
                assert_int_equal(a.body_len, 0);
            else
                assert_non_null(strstr(a.body, "insufficient_scope"));
        }
        /* a body on the check request: read within the limit and ignored */
        char req[8192];
        int n = snprintf(req, sizeof(req),
                         "POST /v1/authorize/refunds/3000 HTTP/1.1\r\nHost: p\r\n%s\r\n"
                         "Content-Type: application/json\r\nContent-Length: 26\r\n"
                         "Connection: close\r\n\r\n{\"resource\":\"orders/9999\"}",
                         h);
        raw_http(env[i].port, req, (size_t)n, &a);
        assert_int_equal(a.status, 200);
        char v[128];
        assert_string_equal(answer_header(&a, "X-Ztb-Resource", v, sizeof(v)), "orders/3000");
        /* the header form still takes GET only at the broker's exact path */
        assert_int_equal(raw_check(env[i].port, "POST", "/v1/authorize", hdr, &a), 405);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_docs_configuration),
        cmocka_unit_test(test_valid_and_single_use),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_path_tricks),
        cmocka_unit_test(test_dpop),
        cmocka_unit_test(test_methods_and_body),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
