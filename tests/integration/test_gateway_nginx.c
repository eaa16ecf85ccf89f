/*
 * test_gateway_nginx.c - Debian's nginx in front of a real backend, asking
 * the real broker's GET /v1/authorize through auth_request, with the nginx
 * server block and the route table copied from docs/gateways.md (between
 * its "ztb-test:" markers; only the three loopback ports are replaced), so
 * documentation that drifts fails here.
 *
 * POST /refunds/<id> needs audience payments, action payments:refund,
 * resource orders/<id> (single-use by policy). A valid token reaches the
 * backend once, with the X-Ztb-* identity headers; forged tokens (alg none,
 * HS256 keyed with the public JWKS, tampered payload or header, a foreign
 * key, a bad signature encoding), tokens for another action, resource or
 * audience, an expired, a revoked and a replayed token, a missing token and
 * an encoded-slash path never do. Without the nginx package the test fails.
 */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
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
#include "pki/dpop.h"
#include "pki/jws.h"

#define NGINX_BIN "/usr/sbin/nginx"

static const char *policy_doc =
    "{\"version\": 1, \"trust_domain\": \"ztb.local\",\n"
    " \"settings\": {\"max_ttl\": 120, \"default_ttl\": 60,\n"
    "   \"rate_limits\": {\"per_agent\": {\"rate\": 1000, \"burst\": 100, \"period\": 60},\n"
    "                   \"per_action\": {\"rate\": 1000, \"burst\": 100, \"period\": 60}}},\n"
    " \"rules\": [\n"
    "  {\"id\": \"refund\", \"effect\": \"allow\", \"agents\": [\"*\"],\n"
    "   \"actions\": [\"payments:refund\"], \"audiences\": [\"payments\", \"crm\"],\n"
    "   \"resources\": [\"**\"], \"obligations\": {\"single_use\": true}},\n"
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
static char dir[256];
static char gw_url[64];
static pid_t nginx_pid;

/* ---- the backend: answers 200 and echoes the X-Ztb-* headers it got ---- */

static int backend_fd = -1;
static uint16_t backend_port;
static atomic_int backend_hits;
static atomic_int backend_stop;
static pthread_t backend_thread;
static pthread_mutex_t backend_mu = PTHREAD_MUTEX_INITIALIZER;
static char backend_seen[4096]; /* X-Ztb-* lines of the last request */

static void backend_serve(int c)
{
    char buf[16384];
    size_t n = 0;
    char *end = NULL;
    while (n < sizeof(buf) - 1 && end == NULL) {
        ssize_t r = recv(c, buf + n, sizeof(buf) - 1 - n, 0);
        if (r <= 0)
            return;
        n += (size_t)r;
        buf[n] = '\0';
        end = strstr(buf, "\r\n\r\n");
    }
    if (end == NULL)
        return;
    char seen[4096] = "";
    size_t o = 0;
    for (char *line = strstr(buf, "\r\n") + 2; line < end;) {
        char *eol = strstr(line, "\r\n");
        if (strncasecmp(line, "X-Ztb-", 6) == 0 && o + (size_t)(eol - line) + 2 < sizeof(seen))
            o += (size_t)snprintf(seen + o, sizeof(seen) - o, "%.*s\n", (int)(eol - line), line);
        line = eol + 2;
    }
    pthread_mutex_lock(&backend_mu);
    memcpy(backend_seen, seen, sizeof(seen));
    pthread_mutex_unlock(&backend_mu);
    atomic_fetch_add(&backend_hits, 1);
    char resp[4300];
    int rl = snprintf(resp, sizeof(resp),
                      "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n"
                      "Connection: close\r\n\r\n%s",
                      o, seen);
    if (send(c, resp, (size_t)rl, MSG_NOSIGNAL) < 0)
        return;
}

static void *backend_main(void *arg)
{
    (void)arg;
    while (!atomic_load(&backend_stop)) {
        struct pollfd p = {.fd = backend_fd, .events = POLLIN};
        if (poll(&p, 1, 100) <= 0)
            continue;
        int c = accept(backend_fd, NULL, NULL);
        if (c < 0)
            continue;
        backend_serve(c);
        close(c);
    }
    return NULL;
}

static int listen_loopback(uint16_t *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(fd, 64), 0);
    socklen_t l = sizeof(a);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &l), 0);
    *port = ntohs(a.sin_port);
    return fd;
}

/* ---- the documentation's blocks ---------------------------------------- */

/* The fenced block after "<!-- ztb-test: name -->" in docs/gateways.md
 * (caller frees). */
static char *doc_block(const char *name)
{
    char path[512], marker[128];
    snprintf(path, sizeof(path), "%s/docs/gateways.md", getenv("ZTB_SOURCE_DIR"));
    snprintf(marker, sizeof(marker), "<!-- ztb-test: %s -->", name);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    static char text[131072];
    size_t n = fread(text, 1, sizeof(text) - 1, f);
    fclose(f);
    text[n] = '\0';
    char *m = strstr(text, marker);
    if (m == NULL)
        fail_msg("docs/gateways.md has no marker %s", marker);
    char *open = strstr(m, "\n```");
    assert_non_null(open);
    char *start = strchr(open + 1, '\n') + 1;
    char *close = strstr(start, "\n```");
    assert_non_null(close);
    return strndup(start, (size_t)(close - start + 1));
}

/* Replace the only occurrence of from in *s with to (fails if not exactly one). */
static void replace_once(char **s, const char *from, const char *to)
{
    char *p = strstr(*s, from);
    if (p == NULL || strstr(p + 1, from) != NULL)
        fail_msg("docs/gateways.md: %s must occur exactly once in the nginx block", from);
    size_t n = strlen(*s) - strlen(from) + strlen(to) + 1;
    char *out = malloc(n);
    snprintf(out, n, "%.*s%s%s", (int)(p - *s), *s, to, p + strlen(from));
    free(*s);
    *s = out;
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
    chmod(path, 0644);
}

static void start_nginx(uint16_t port)
{
    char *server = doc_block("nginx.conf");
    char a[64];
    snprintf(a, sizeof(a), "127.0.0.1:%u", port);
    replace_once(&server, "127.0.0.1:8080", a);
    snprintf(a, sizeof(a), "127.0.0.1:%u", b.port);
    replace_once(&server, "127.0.0.1:8443", a);
    snprintf(a, sizeof(a), "127.0.0.1:%u", backend_port);
    replace_once(&server, "127.0.0.1:9000", a);
    char conf[8192 * 2], path[400];
    snprintf(conf, sizeof(conf),
             "daemon off;\nworker_processes 1;\npid %s/nginx.pid;\n"
             "error_log %s/error.log info;\nevents { worker_connections 64; }\n"
             "http {\n  access_log %s/access.log;\n  client_body_temp_path %s/body;\n"
             "  proxy_temp_path %s/proxy;\n  fastcgi_temp_path %s/fastcgi;\n"
             "  uwsgi_temp_path %s/uwsgi;\n  scgi_temp_path %s/scgi;\n%s}\n",
             dir, dir, dir, dir, dir, dir, dir, dir, server);
    free(server);
    snprintf(path, sizeof(path), "%s/nginx.conf", dir);
    write_file(path, conf);
    if (access(NGINX_BIN, X_OK) != 0)
        fail_msg("%s missing: install the nginx package (scripts/install-deps.sh)", NGINX_BIN);
    char elog[400];
    snprintf(elog, sizeof(elog), "%s/error.log", dir);
    nginx_pid = fork();
    assert_true(nginx_pid >= 0);
    if (nginx_pid == 0) {
        execl(NGINX_BIN, "nginx", "-p", dir, "-c", path, "-e", elog, (char *)NULL);
        _exit(127);
    }
    /* up when it answers */
    snprintf(gw_url, sizeof(gw_url), "http://127.0.0.1:%u", port);
    for (int i = 0; i < 250; i++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in sa = {.sin_family = AF_INET,
                                 .sin_port = htons(port),
                                 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        int ok = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
        close(fd);
        if (ok)
            return;
        int st;
        if (waitpid(nginx_pid, &st, WNOHANG) == nginx_pid) {
            char *out = NULL;
            const char *cat[] = {"/bin/cat", elog, NULL};
            zh_run(cat, &out, NULL);
            fail_msg("nginx exited: %s", out ? out : "");
        }
        usleep(20000);
    }
    fail_msg("nginx did not start listening");
}

static int setup(void **state)
{
    (void)state;
    srand((unsigned)time(NULL) ^ (unsigned)getpid());
    zh_tmpdir(dir, sizeof(dir));
    char routes[300];
    snprintf(routes, sizeof(routes), "%s/routes.json", dir);
    char *doc = doc_block("routes.json");
    write_file(routes, doc);
    free(doc);
    zh_redis_start(&rd);
    const char *extra[] = {"--authorize-routes", routes, NULL};
    struct zh_broker_opts o = {
        .redis_url = rd.url, .with_keys = 1, .policy = policy_doc, .extra_args = extra};
    zh_broker_start(&b, &o);
    za_enroll(&b, &alice, "alice");
    backend_fd = listen_loopback(&backend_port);
    assert_int_equal(pthread_create(&backend_thread, NULL, backend_main, NULL), 0);
    uint16_t port;
    int fd = listen_loopback(&port); /* a free port for nginx */
    close(fd);
    start_nginx(port);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    if (nginx_pid > 0) {
        kill(nginx_pid, SIGTERM);
        waitpid(nginx_pid, NULL, 0);
    }
    atomic_store(&backend_stop, 1);
    pthread_join(backend_thread, NULL);
    close(backend_fd);
    za_free(&alice);
    assert_int_equal(zh_broker_stop(&b), 0);
    zh_redis_stop(&rd, 1);
    zh_rmtree(b.dir);
    zh_rmtree(dir);
    return 0;
}

/* ---- requests ------------------------------------------------------------ */

/* A token of alice's for audience, action, resource (fails the test if the
 * broker refuses). */
static void token(const char *aud, const char *action, const char *resource, char *out, size_t cap)
{
    char scope[256];
    snprintf(scope, sizeof(scope), "%s&resource=%s", action, resource);
    for (char *p = strstr(scope, "&resource=") + 10; *p; p++)
        if (*p == '/') { /* urlencode the one character a resource here has */
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

/* POST path through nginx with Authorization: auth (NULL: none); returns
 * the status; *hit is whether the backend got the request. */
static long refund(const char *path, const char *auth, const char *extra_header, int *hit,
                   struct zh_resp *out)
{
    char url[256], h[9000];
    snprintf(url, sizeof(url), "%s%s", gw_url, path);
    snprintf(h, sizeof(h), "Authorization: %s", auth ? auth : "");
    const char *headers[] = {auth ? h : extra_header, auth ? extra_header : NULL, NULL};
    int before = atomic_load(&backend_hits);
    struct zh_resp r;
    assert_int_equal(zh_http("POST", url, NULL, "application/json", "{}", 2, headers, &r), 0);
    *hit = atomic_load(&backend_hits) != before;
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
    if (hit || st != want) {
        char log[400];
        snprintf(log, sizeof(log), "%s/error.log", dir);
        fail_msg("%s: status %ld (want %ld), backend %s: %s", what, st, want,
                 hit ? "REACHED" : "not reached", r.body);
    }
    zh_resp_free(&r);
}

static void bearer(char *out, size_t cap, const char *tok)
{
    snprintf(out, cap, "Bearer %s", tok);
}

/* The three segments of tok. */
static void segments(const char *tok, char *h, char *p, char *s, size_t cap)
{
    const char *d1 = strchr(tok, '.'), *d2 = strrchr(tok, '.');
    snprintf(h, cap, "%.*s", (int)(d1 - tok), tok);
    snprintf(p, cap, "%.*s", (int)(d2 - d1 - 1), d1 + 1);
    snprintf(s, cap, "%s", d2 + 1);
}

static void b64(const void *in, size_t n, char *out, size_t cap)
{
    assert_int_equal(ztb_b64url_encode(in, n, out, cap, NULL), ZTB_OK);
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

static void test_valid_token_reaches_backend_once(void **state)
{
    (void)state;
    char tok[4096], auth[4200];
    token("payments", "payments:refund", "orders/1234", tok, sizeof(tok));
    bearer(auth, sizeof(auth), tok);
    int hit;
    struct zh_resp r;
    int allowed = audit_count("\"authorize.allowed\"");
    /* the client's own X-Ztb-Actor never reaches the backend */
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
    assert_int_equal(audit_count("\"authorize.allowed\""), allowed + 1); /* recorded */
    /* single-use: consumed by the decision that let it through */
    expect_refused("replayed", "/refunds/1234", auth, 401);
    /* the scheme is case-insensitive */
    token("payments", "payments:refund", "orders/1235", tok, sizeof(tok));
    snprintf(auth, sizeof(auth), "bEaReR %s", tok);
    assert_int_equal(refund("/refunds/1235", auth, NULL, &hit, NULL), 200);
    assert_true(hit);
}

#define RM_URL "https://payments.example.org/.well-known/oauth-protected-resource"

static void test_no_token(void **state)
{
    (void)state;
    int hit;
    struct zh_resp r;
    assert_int_equal(refund("/refunds/1234", NULL, NULL, &hit, &r), 401);
    assert_false(hit);
    char wa[1024];
    /* nginx passes the broker's challenge on; the route table's origin is
     * the protected resource, its RFC 9728 metadata named in each challenge */
    assert_non_null(zh_resp_header(&r, "WWW-Authenticate", wa, sizeof(wa)));
    assert_non_null(strstr(wa, "Bearer realm=\"ztb\", resource_metadata=\"" RM_URL "\""));
    assert_non_null(strstr(wa, "algs=\"ES256\", resource_metadata=\"" RM_URL "\""));
    zh_resp_free(&r);
    /* and in a refusal of a bad token */
    assert_int_equal(refund("/refunds/1234", "Bearer not.a.token", NULL, &hit, &r), 401);
    assert_false(hit);
    assert_non_null(zh_resp_header(&r, "WWW-Authenticate", wa, sizeof(wa)));
    assert_non_null(strstr(wa, "error=\"invalid_token\""));
    assert_non_null(strstr(wa, "resource_metadata=\"" RM_URL "\""));
    zh_resp_free(&r);
}

/* How many times needle occurs in the broker's audit log. */

static void test_forged_tokens(void **state)
{
    (void)state;
    int audited = audit_count("authorize.refused");
    char tok[4096], auth[16400], h[4096], p[4096], s[4096], forged[8400];
    token("payments", "payments:refund", "orders/1234", tok, sizeof(tok));
    segments(tok, h, p, s, sizeof(h));
    char kid[128];
    za_kid(tok, kid, sizeof(kid));
    char hj[512], hb[1024];

    /* alg none, the broker's kid */
    snprintf(hj, sizeof(hj), "{\"alg\":\"none\",\"typ\":\"at+jwt\",\"kid\":\"%s\"}", kid);
    b64(hj, strlen(hj), hb, sizeof(hb));
    snprintf(auth, sizeof(auth), "Bearer %s.%s.", hb, p);
    expect_refused("alg none", "/refunds/1234", auth, 401);

    /* HS256 keyed with the broker's public JWKS (algorithm confusion) */
    struct zh_resp jr;
    assert_int_equal(zh_get(&b, "/.well-known/jwks.json", &jr), 0);
    snprintf(hj, sizeof(hj), "{\"alg\":\"HS256\",\"typ\":\"at+jwt\",\"kid\":\"%s\"}", kid);
    b64(hj, strlen(hj), hb, sizeof(hb));
    snprintf(forged, sizeof(forged), "%s.%s", hb, p);
    unsigned char mac[32];
    unsigned ml = 0;
    HMAC(EVP_sha256(), jr.body, (int)jr.len, (const unsigned char *)forged, strlen(forged), mac,
         &ml);
    zh_resp_free(&jr);
    char mb[64];
    b64(mac, ml, mb, sizeof(mb));
    snprintf(auth, sizeof(auth), "Bearer %s.%s", forged, mb);
    expect_refused("HS256 with the public key", "/refunds/1234", auth, 401);

    /* tampered payload: a longer life */
    uint8_t raw[4096];
    size_t rn;
    assert_int_equal(ztb_b64url_decode(p, strlen(p), raw, sizeof(raw) - 1, &rn), ZTB_OK);
    raw[rn] = '\0';
    json_t *c = json_loads((const char *)raw, 0, NULL);
    assert_non_null(c);
    json_object_set_new(c, "exp",
                        json_integer(json_integer_value(json_object_get(c, "exp")) + 3600));
    char *cj = json_dumps(c, JSON_COMPACT);
    char pb[4096];
    b64(cj, strlen(cj), pb, sizeof(pb));
    snprintf(auth, sizeof(auth), "Bearer %s.%s.%s", h, pb, s);
    expect_refused("tampered payload", "/refunds/1234", auth, 401);

    /* tampered header: the same header with one more space */
    assert_int_equal(ztb_b64url_decode(h, strlen(h), raw, sizeof(raw) - 2, &rn), ZTB_OK);
    raw[rn - 1] = ' ';
    raw[rn] = '}';
    b64(raw, rn + 1, hb, sizeof(hb));
    snprintf(auth, sizeof(auth), "Bearer %s.%s.%s", hb, p, s);
    expect_refused("tampered header", "/refunds/1234", auth, 401);

    /* a foreign key: its own kid, then the broker's kid */
    ztb_key *k = NULL;
    assert_int_equal(ztb_key_generate(&k), ZTB_OK);
    ztb_buf out;
    ztb_buf_init(&out, 8192);
    ztb_jws_sign_opts o = {.typ = "at+jwt"};
    assert_int_equal(ztb_jws_sign(k, &o, cj, strlen(cj), &out), ZTB_OK);
    snprintf(auth, sizeof(auth), "Bearer %s", ztb_buf_cstr(&out));
    expect_refused("foreign key, its kid", "/refunds/1234", auth, 401);
    snprintf(hj, sizeof(hj), "{\"alg\":\"ES256\",\"typ\":\"at+jwt\",\"kid\":\"%s\"}", kid);
    ztb_jws_sign_opts o2 = {.header = hj, .header_len = strlen(hj)};
    ztb_buf_reset(&out);
    assert_int_equal(ztb_jws_sign(k, &o2, cj, strlen(cj), &out), ZTB_OK);
    snprintf(auth, sizeof(auth), "Bearer %s", ztb_buf_cstr(&out));
    expect_refused("foreign key, the broker's kid", "/refunds/1234", auth, 401);
    ztb_buf_free(&out);
    ztb_key_free(k);
    free(cj);
    json_decref(c);

    /* bad signature encodings: DER instead of r||s, cut short, padded */
    uint8_t der[72] = {0x30, 0x46, 0x02, 0x21, 0x00};
    memset(der + 5, 0x41, sizeof(der) - 5);
    char db[128];
    b64(der, sizeof(der), db, sizeof(db));
    snprintf(auth, sizeof(auth), "Bearer %s.%s.%s", h, p, db);
    expect_refused("DER signature", "/refunds/1234", auth, 401);
    snprintf(auth, sizeof(auth), "Bearer %s.%s.%.*s", h, p, (int)strlen(s) - 2, s);
    expect_refused("short signature", "/refunds/1234", auth, 401);
    snprintf(auth, sizeof(auth), "Bearer %s.%s.%s==", h, p, s);
    expect_refused("padded signature", "/refunds/1234", auth, 401);

    /* forgeries are counted, not audited one by one */
    assert_int_equal(audit_count("authorize.refused"), audited);
    /* none of that used the real token up */
    bearer(auth, sizeof(auth), tok);
    int hit;
    assert_int_equal(refund("/refunds/1234", auth, NULL, &hit, NULL), 200);
    assert_true(hit);
}

static void test_misdirected_tokens(void **state)
{
    (void)state;
    char tok[4096], auth[4200];
    token("payments", "payments:read", "orders/1234", tok, sizeof(tok));
    bearer(auth, sizeof(auth), tok);
    int audited = audit_count("authorize.refused");
    expect_refused("another action", "/refunds/1234", auth, 403);
    assert_int_equal(audit_count("authorize.refused"), audited + 1); /* one of ours: audited */
    token("payments", "payments:refund", "orders/999", tok, sizeof(tok));
    bearer(auth, sizeof(auth), tok);
    expect_refused("another resource", "/refunds/1234", auth, 403);
    token("crm", "payments:refund", "orders/1234", tok, sizeof(tok));
    bearer(auth, sizeof(auth), tok);
    expect_refused("another audience", "/refunds/1234", auth, 401);
    /* an encoded slash does not turn /refunds/12%2F34 into orders/12/34 */
    token("payments", "payments:refund", "orders/12/34", tok, sizeof(tok));
    bearer(auth, sizeof(auth), tok);
    expect_refused("encoded slash", "/refunds/12%2F34", auth, 403);
    expect_refused("encoded slash, lower case", "/refunds/12%2f34", auth, 403);
}

static void test_expired_and_revoked(void **state)
{
    (void)state;
    char brief[4096], rev[4096], auth[4200];
    token("payments", "payments:refund", "orders/555", brief, sizeof(brief));
    token("payments", "payments:refund", "orders/777", rev, sizeof(rev));
    /* revoke (RFC 7009) as its owner */
    char form[8192];
    snprintf(form, sizeof(form), "token=%s&client_assertion_type=%s&client_assertion=%s", rev,
             ZA_SESSION_TYPE, alice.session);
    struct zh_resp r;
    assert_int_equal(za_post_form(&b, "/v1/revoke", form, &r), 200);
    zh_resp_free(&r);
    bearer(auth, sizeof(auth), rev);
    expect_refused("revoked", "/refunds/777", auth, 401);
    json_t *c = za_claims(brief);
    int64_t exp = json_integer_value(json_object_get(c, "exp"));
    json_decref(c);
    while ((int64_t)time(NULL) < exp)
        usleep(100000);
    bearer(auth, sizeof(auth), brief);
    expect_refused("expired", "/refunds/555", auth, 401);
}

/* A DPoP-bound token of alice's for orders/4321, bound to k. */
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
    assert_string_equal(json_string_value(json_object_get(j, "token_type")), "DPoP");
    snprintf(tok, 4096, "%s", json_string_value(json_object_get(j, "access_token")));
    json_decref(j);
    zh_resp_free(&r);
}

/* POST /refunds/4321 through nginx with "scheme tok" and a proof for
 * (htm, origin + path) by k (k NULL: no proof). */
static long bound_refund(const char *scheme, const char *tok, const ztb_key *k, const char *htm,
                         const char *path, const char *proof_in, char *proof_out, int *hit)
{
    char auth[4200], htu[200], dh[4200], url[200];
    snprintf(auth, sizeof(auth), "Authorization: %s %s", scheme, tok);
    snprintf(htu, sizeof(htu), "https://payments.example.org%s", path);
    const char *headers[] = {auth, NULL, NULL};
    if (proof_in != NULL) {
        snprintf(dh, sizeof(dh), "DPoP: %s", proof_in);
        headers[1] = dh;
    } else if (k != NULL) {
        ztb_buf p;
        ztb_buf_init(&p, 4096);
        assert_int_equal(ztb_dpop_proof_make(k, htm, htu, time(NULL), tok, &p), ZTB_OK);
        snprintf(dh, sizeof(dh), "DPoP: %s", ztb_buf_cstr(&p));
        if (proof_out != NULL)
            snprintf(proof_out, 4096, "%s", ztb_buf_cstr(&p));
        ztb_buf_free(&p);
        headers[1] = dh;
    }
    snprintf(url, sizeof(url), "%s/refunds/4321", gw_url);
    int before = atomic_load(&backend_hits);
    struct zh_resp r;
    assert_int_equal(zh_http("POST", url, NULL, "application/json", "{}", 2, headers, &r), 0);
    *hit = atomic_load(&backend_hits) != before;
    long st = r.status;
    zh_resp_free(&r);
    return st;
}

/* DPoP-bound tokens: only with the DPoP scheme and a fresh proof by the
 * bound key for the original method and origin + path, once. */
static void test_dpop_bound(void **state)
{
    (void)state;
    ztb_key *k = NULL, *other = NULL;
    assert_int_equal(ztb_key_generate(&k), ZTB_OK);
    assert_int_equal(ztb_key_generate(&other), ZTB_OK);
    char tok[4096], proof[4096];
    bound_token(k, tok);
    int hit;
    struct {
        const char *what, *scheme;
        const ztb_key *key;
        const char *htm, *path;
    } bad[] = {
        {"Bearer scheme", "Bearer", k, "POST", "/refunds/4321"},
        {"no proof", "DPoP", NULL, "POST", "/refunds/4321"},
        {"another key", "DPoP", other, "POST", "/refunds/4321"},
        {"another method", "DPoP", k, "GET", "/refunds/4321"},
        {"another URL", "DPoP", k, "POST", "/refunds/1234"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        long st =
            bound_refund(bad[i].scheme, tok, bad[i].key, bad[i].htm, bad[i].path, NULL, NULL, &hit);
        if (st != 401 || hit)
            fail_msg("%s: %ld, backend %d", bad[i].what, st, hit);
    }
    assert_int_equal(bound_refund("dpop", tok, k, "POST", "/refunds/4321", NULL, proof, &hit), 200);
    assert_true(hit);
    /* the same proof again: refused (and the token is used up anyway) */
    assert_int_equal(bound_refund("DPoP", tok, k, "POST", "/refunds/4321", proof, NULL, &hit), 401);
    assert_false(hit);
    /* a bearer token sent as DPoP */
    char plain[4096], auth[4200];
    token("payments", "payments:refund", "orders/4322", plain, sizeof(plain));
    snprintf(auth, sizeof(auth), "DPoP %s", plain);
    expect_refused("bearer token as DPoP", "/refunds/4322", auth, 401);
    ztb_key_free(k);
    ztb_key_free(other);
}

/* The broker itself: a gateway that forgets the original URI, or a request
 * with two Authorization headers, gets 400 (nginx: 500), never a decision. */
static void test_direct_misuse(void **state)
{
    (void)state;
    char tok[4096], a1[4200], url[160];
    token("payments", "payments:refund", "orders/1", tok, sizeof(tok));
    snprintf(a1, sizeof(a1), "Authorization: Bearer %s", tok);
    snprintf(url, sizeof(url), "%s/v1/authorize", b.url);
    struct zh_resp r;
    const char *no_uri[] = {a1, "X-Original-Method: POST", NULL};
    assert_int_equal(zh_http("GET", url, NULL, NULL, NULL, 0, no_uri, &r), 0);
    assert_int_equal(r.status, 400);
    zh_resp_free(&r);
    const char *two[] = {a1, a1, "X-Original-Method: POST", "X-Original-URI: /refunds/1", NULL};
    assert_int_equal(zh_http("GET", url, NULL, NULL, NULL, 0, two, &r), 0);
    assert_int_equal(r.status, 400);
    zh_resp_free(&r);
    const char *two_uri[] = {a1, "X-Original-Method: POST", "X-Original-URI: /refunds/2",
                             "X-Original-URI: /refunds/1", NULL};
    assert_int_equal(zh_http("GET", url, NULL, NULL, NULL, 0, two_uri, &r), 0);
    assert_int_equal(r.status, 400);
    zh_resp_free(&r);
    /* and the token is still good: nothing consumed it */
    const char *ok[] = {a1, "X-Original-Method: POST", "X-Original-URI: /refunds/1", NULL};
    assert_int_equal(zh_http("GET", url, NULL, NULL, NULL, 0, ok, &r), 0);
    assert_int_equal(r.status, 200);
    char v[200];
    assert_non_null(zh_resp_header(&r, "X-Ztb-Resource", v, sizeof(v)));
    assert_string_equal(v, "orders/1");
    zh_resp_free(&r);
}

/* GET /v1/authorize on the broker directly for method, uri with tok. */
static long direct(const char *method, const char *uri, const char *tok)
{
    char a[4200], m[64], u[300], url[160];
    snprintf(a, sizeof(a), "Authorization: Bearer %s", tok);
    snprintf(m, sizeof(m), "X-Original-Method: %s", method);
    snprintf(u, sizeof(u), "X-Original-URI: %s", uri);
    snprintf(url, sizeof(url), "%s/v1/authorize", b.url);
    const char *h[] = {a, m, u, NULL};
    struct zh_resp r;
    assert_int_equal(zh_http("GET", url, NULL, NULL, NULL, 0, h, &r), 0);
    long st = r.status;
    zh_resp_free(&r);
    return st;
}

static char reload_tok[4096];
static int read_route_live(void *arg)
{
    (void)arg;
    return direct("GET", "/orders/1234", reload_tok) == 200;
}

/* SIGHUP reloads the route table; a broken file keeps the one in force. */
static void test_routes_reload(void **state)
{
    (void)state;
    token("payments", "payments:read", "orders/1234", reload_tok, sizeof(reload_tok));
    assert_int_equal(direct("GET", "/orders/1234", reload_tok), 403); /* no such route yet */
    char path[300];
    snprintf(path, sizeof(path), "%s/routes.json", dir);
    write_file(path, "{\"routes\": [\n"
                     " {\"method\": \"POST\", \"path\": \"/refunds/{id}\", \"audience\": "
                     "\"payments\", \"action\": \"payments:refund\", \"resource\": "
                     "\"orders/{id}\"},\n"
                     " {\"method\": \"GET\", \"path\": \"/orders/{id}\", \"audience\": "
                     "\"payments\", \"action\": \"payments:read\", \"resource\": "
                     "\"orders/{id}\"}]}\n");
    assert_int_equal(kill(b.pid, SIGHUP), 0);
    assert_true(za_wait(read_route_live, NULL, 5000));
    write_file(path, "{\"routes\": [{\"method\": \"get\"}]}");
    assert_int_equal(kill(b.pid, SIGHUP), 0);
    usleep(300000);
    assert_int_equal(direct("GET", "/orders/1234", reload_tok), 200); /* still in force */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_token_reaches_backend_once),
        cmocka_unit_test(test_no_token),
        cmocka_unit_test(test_forged_tokens),
        cmocka_unit_test(test_misdirected_tokens),
        cmocka_unit_test(test_dpop_bound),
        cmocka_unit_test(test_direct_misuse),
        cmocka_unit_test(test_expired_and_revoked),
        cmocka_unit_test(test_routes_reload),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
