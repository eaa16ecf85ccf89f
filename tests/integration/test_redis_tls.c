/*
 * test_redis_tls.c - Redis over TLS (rediss://) with a CA the test makes:
 * a real redis-server that listens only on a tls-port and demands client
 * certificates; the real broker issues and revokes through it and the SDK
 * verifier follows the revocation feed through it. A wrong CA, a wrong
 * host name, plaintext to the TLS port and TLS to a plain port are refused
 * with messages that name the problem, at the broker (--check-config) and
 * at the verifier.
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

#include "sdk_it.h"

static struct zh_redis rd;
static struct zh_broker b;
static char pki[256];
static int tls_port, plain_port;
static char url[1400];

/* Run a shell command (openssl), failing the test if it fails. */
static void sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void sh(const char *fmt, ...)
{
    char cmd[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    if (system(cmd) != 0)
        fail_msg("failed: %s", cmd);
}

/* A CA (name.crt/.key) in pki. */
static void make_ca(const char *name)
{
    sh("cd %s && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 "
       "-subj /CN=%s -keyout %s.key -out %s.crt 2>/dev/null",
       pki, name, name, name);
}

/* A leaf (name.crt/.key) signed by the CA "ca", with SANs san (may be ""). */
static void make_leaf(const char *name, const char *san)
{
    sh("cd %s && openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=%s "
       "-keyout %s.key -out %s.csr 2>/dev/null && printf '%s' > %s.ext && "
       "openssl x509 -req -in %s.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 1 "
       "-extfile %s.ext -out %s.crt 2>/dev/null && chmod 0644 %s.key",
       pki, name, name, name, san, name, name, name, name, name);
}

static int setup(void **state)
{
    (void)state;
    zh_tmpdir(pki, sizeof(pki));
    chmod(pki, 0755); /* the broker may run as nobody */
    make_ca("ca");
    make_ca("other");
    make_leaf("server", "subjectAltName=IP:127.0.0.1,DNS:localhost\\n");
    make_leaf("client", "extendedKeyUsage=clientAuth\\n");
    tls_port = zh_free_port();
    plain_port = zh_free_port();
    char conf[2048];
    snprintf(conf, sizeof(conf),
             "port %d\ntls-port %d\ntls-cert-file %s/server.crt\ntls-key-file %s/server.key\n"
             "tls-ca-cert-file %s/ca.crt\ntls-auth-clients yes\n",
             plain_port, tls_port, pki, pki, pki);
    zh_redis_start_conf(&rd, conf);
    snprintf(url, sizeof(url),
             "rediss://127.0.0.1:%d?ca=%s/ca.crt&cert=%s/client.crt&key=%s/client.key", tls_port,
             pki, pki, pki);
    zh_broker_start_issuing(&b, url, sdk_it_policy);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    zh_broker_stop(&b);
    zh_redis_stop(&rd, 1);
    zh_rmtree(b.dir);
    zh_rmtree(pki);
    return 0;
}

/* Number of TLS connections Redis has accepted (INFO stats), via the unix socket. */
static long tls_clients(void)
{
    redisContext *c = zh_redis_connect(&rd);
    redisReply *r = redisCommand(c, "CLIENT LIST");
    long n = 0;
    char needle[32];
    snprintf(needle, sizeof(needle), "laddr=127.0.0.1:%d", tls_port);
    for (const char *p = r->str; (p = strstr(p, needle)) != NULL; p++)
        n++;
    freeReplyObject(r);
    redisFree(c);
    return n;
}

/* The broker issues and revokes through rediss://; the verifier follows
 * the feed through rediss:// and refuses the revoked token. */
static void test_issue_revoke_verify_over_tls(void **state)
{
    (void)state;
    ztb_agent *a = sdk_it_enrolled(&b, "billing-bot", 0);
    ztb_verifier *v = sdk_it_verifier(&b, url);
    char *tok = NULL;
    assert_int_equal(ztb_agent_token(a, "payments", "payments:list", NULL, NULL, &tok), ZTB_OK);
    ztb_expect e = {.action = "payments:list"};
    ztb_err rv = ztb_verify(v, tok, &e, NULL);
    if (rv != ZTB_OK)
        fail_msg("%s: %s", ztb_err_name(rv), ztb_verifier_errdetail(v));
    /* broker threads and the verifier's feed all reach Redis on its TLS port */
    assert_true(tls_clients() >= 2);
    char body[4096];
    snprintf(body, sizeof(body), "{\"type\":\"jti\",\"token\":\"%s\"}", tok);
    struct zh_resp r;
    assert_int_equal(zh_admin(&b, "POST", "/v1/revocations", body, &r), 0);
    if (r.status != 200)
        fail_msg("revoke: HTTP %ld %s", r.status, r.body);
    zh_resp_free(&r);
    for (int i = 0; i < 200 && (rv = ztb_verify(v, tok, &e, NULL)) == ZTB_OK; i++)
        usleep(10000);
    assert_int_equal(rv, ZTB_ERR_REVOKED);
    ztb_token_free(tok);
    ztb_verifier_free(v);
    ztb_agent_free(a);
}

/* ztb-broker --check-config against redis_url; its output (caller frees). */
static char *check_config(const char *redis_url)
{
    const char *argv[16] = {
        zh_bin("ztb-broker"), "--check-config", "--state-dir", b.state, "--redis", redis_url};
    int n = 6;
    if (geteuid() == 0) {
        argv[n++] = "--user";
        argv[n++] = "nobody";
    }
    argv[n] = NULL;
    char *out = NULL, *err = NULL;
    (void)zh_run(argv, &out, &err);
    size_t l = strlen(out ? out : "") + strlen(err ? err : "") + 2;
    char *all = malloc(l);
    snprintf(all, l, "%s\n%s", out ? out : "", err ? err : "");
    free(out);
    free(err);
    return all;
}

/* A verifier on redis_url must fail to start, saying want. */
static void verifier_refused(const char *redis_url, const char *want)
{
    char jwks[128];
    snprintf(jwks, sizeof(jwks), "%s/.well-known/jwks.json", b.url);
    ztb_verifier_config *c = ztb_verifier_config_new();
    ztb_verifier_config_set_issuer(c, b.url);
    ztb_verifier_config_set_audience(c, "payments");
    ztb_verifier_config_set_jwks_url(c, jwks);
    assert_int_equal(ztb_verifier_config_set_redis(c, redis_url), ZTB_OK);
    ztb_verifier_config_set_startup_timeout(c, 1200);
    ztb_verifier *v = NULL;
    ztb_err rv = ztb_verifier_new(c, &v);
    ztb_verifier_config_free(c);
    if (rv == ZTB_OK) {
        ztb_verifier_free(v);
        fail_msg("verifier started on %s", redis_url);
    }
    const char *d = ztb_verifier_errdetail(NULL);
    if (strstr(d, want) == NULL)
        fail_msg("verifier on %s: \"%s\" does not say \"%s\"", redis_url, d, want);
}

/* The broker's check and the verifier both refuse, saying want. */
static void refused(const char *redis_url, const char *want)
{
    char *out = check_config(redis_url);
    if (strstr(out, want) == NULL)
        fail_msg("--check-config on %s: \"%s\" does not say \"%s\"", redis_url, out, want);
    free(out);
    verifier_refused(redis_url, want);
}

static void test_refusals_name_the_problem(void **state)
{
    (void)state;
    char u[1400];
    /* the server's certificate does not chain to the CA we trust */
    snprintf(u, sizeof(u),
             "rediss://127.0.0.1:%d?ca=%s/other.crt&cert=%s/client.crt&key=%s/client.key", tls_port,
             pki, pki, pki);
    refused(u, "is not trusted");
    /* the right CA, but the certificate does not name the host we asked for */
    snprintf(u, sizeof(u),
             "rediss://127.0.0.1:%d?ca=%s/ca.crt&cert=%s/client.crt&key=%s/client.key"
             "&tls_name=redis.example.org",
             tls_port, pki, pki, pki);
    refused(u, "does not name redis.example.org");
    /* plaintext to the TLS port */
    snprintf(u, sizeof(u), "redis://127.0.0.1:%d", tls_port);
    refused(u, "use rediss://");
    /* TLS to the plain port, and a CA file that is not there: the broker's
     * check (the verifier gives the same text, through the same code) */
    snprintf(u, sizeof(u), "rediss://127.0.0.1:%d?ca=%s/ca.crt", plain_port, pki);
    char *out = check_config(u);
    if (strstr(out, "tls-port") == NULL)
        fail_msg("--check-config on %s: %s", u, out);
    free(out);
    snprintf(u, sizeof(u), "rediss://127.0.0.1:%d?ca=%s/nosuch.crt", tls_port, pki);
    out = check_config(u);
    if (strstr(out, "cannot load the CA file") == NULL)
        fail_msg("--check-config on %s: %s", u, out);
    free(out);
    /* by DNS name (SNI and the certificate's DNS SAN) it is accepted */
    snprintf(u, sizeof(u),
             "rediss://localhost:%d?ca=%s/ca.crt&cert=%s/client.crt&key=%s/client.key", tls_port,
             pki, pki, pki);
    out = check_config(u);
    if (strstr(out, "PING answered") == NULL)
        fail_msg("--check-config on %s: %s", u, out);
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_issue_revoke_verify_over_tls),
        cmocka_unit_test(test_refusals_name_the_problem),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
