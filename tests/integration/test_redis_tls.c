/*
 * test_redis_tls.c - Redis over TLS (rediss://) with a CA the test makes:
 * a real redis-server that listens only on a tls-port and demands client
 * certificates; the real broker issues and revokes through it and the SDK
 * verifier follows the revocation feed through it. A wrong CA, a wrong
 * host name, plaintext to the TLS port and TLS to a plain port are refused
 * with messages that name the problem, at the broker (--check-config) and
 * at the verifier.
 *
 * Sentinel over TLS (rediss+sentinel://): a master and a replica that
 * speak only TLS (replication too) and two sentinels on TLS ports, all
 * with certificates of the test's CA and demanding client certificates;
 * the broker finds the master through the sentinels, a revocation waits
 * for the replica, the verifier follows the feed, and after SENTINEL
 * FAILOVER issuance resumes without a restart and the revocation holds.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
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

/* Sentinel over TLS ---------------------------------------------------------*/

#define TLS_MASTER "ztbt"

/* The TLS lines of every server of the Sentinel test, on port tls. */
static void tls_conf(char *out, size_t cap, int tls, const char *more)
{
    snprintf(out, cap,
             "tls-port %d\ntls-cert-file %s/server.crt\ntls-key-file %s/server.key\n"
             "tls-ca-cert-file %s/ca.crt\ntls-auth-clients yes\ntls-replication yes\n%s",
             tls, pki, pki, pki, more);
}

/* The port of the master as sentinel s names it (through its unix socket). */
static int tls_master_port(const struct zh_redis *s)
{
    redisContext *c = zh_redis_connect(s);
    redisReply *r = redisCommand(c, "SENTINEL get-master-addr-by-name " TLS_MASTER);
    int port = r && r->type == REDIS_REPLY_ARRAY && r->elements == 2 ? atoi(r->element[1]->str) : 0;
    if (r)
        freeReplyObject(r);
    redisFree(c);
    return port;
}

/* A field of INFO section at rd (unix socket) contains want. */
static int info_has(const struct zh_redis *srv, const char *section, const char *want)
{
    redisContext *c = zh_redis_connect(srv);
    redisReply *r = redisCommand(c, "INFO %s", section);
    int has = r && r->type == REDIS_REPLY_STRING && strstr(r->str, want) != NULL;
    if (r)
        freeReplyObject(r);
    redisFree(c);
    return has;
}

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Wait up to ms for fn(arg) (polled every 20 ms); fails with what. */
static void wait_for(int (*fn)(const void *), const void *arg, unsigned ms, const char *what)
{
    uint64_t end = mono_ms() + ms;
    while (!fn(arg)) {
        if (mono_ms() > end)
            fail_msg("not within %u ms: %s", ms, what);
        usleep(20000);
    }
}

static struct zh_redis sm, srep, sent[2];
static int sm_tls, srep_tls;

static int replica_synced(const void *arg)
{
    (void)arg;
    return info_has(&srep, "replication", "master_link_status:up");
}

/* both sentinels see the replica (over TLS, from the master's INFO) */
static int sentinels_know_replica(const void *arg)
{
    (void)arg;
    for (int i = 0; i < 2; i++) {
        redisContext *c = zh_redis_connect(&sent[i]);
        redisReply *r = redisCommand(c, "SENTINEL replicas " TLS_MASTER);
        int ok = 0;
        for (size_t k = 0; r && r->type == REDIS_REPLY_ARRAY && k < r->elements; k++) {
            const redisReply *e = r->element[k];
            for (size_t j = 0; j + 1 < e->elements; j += 2)
                if (strcmp(e->element[j]->str, "flags") == 0 &&
                    strcmp(e->element[j + 1]->str, "slave") == 0)
                    ok = 1;
        }
        if (r)
            freeReplyObject(r);
        redisFree(c);
        if (!ok)
            return 0;
    }
    return 1;
}

static int switched(const void *arg)
{
    (void)arg;
    return tls_master_port(&sent[0]) == srep_tls && tls_master_port(&sent[1]) == srep_tls;
}

/* The replica has everything the master has (offsets). */
static long long offset(const struct zh_redis *srv, const char *field)
{
    redisContext *c = zh_redis_connect(srv);
    redisReply *r = redisCommand(c, "INFO replication");
    long long v = -1;
    const char *p = r && r->type == REDIS_REPLY_STRING ? strstr(r->str, field) : NULL;
    if (p != NULL)
        v = strtoll(p + strlen(field), NULL, 10);
    if (r)
        freeReplyObject(r);
    redisFree(c);
    return v;
}

static int caught_up(const void *arg)
{
    const long long *want = arg;
    return offset(&srep, "slave_repl_offset:") >= *want;
}

static void test_sentinel_over_tls(void **state)
{
    (void)state;
    uint64_t t0 = mono_ms();
    char conf[2048], more[128];
    sm_tls = zh_free_port();
    srep_tls = zh_free_port();
    tls_conf(conf, sizeof(conf), sm_tls, "");
    zh_redis_start_conf(&sm, conf);
    snprintf(more, sizeof(more), "replicaof 127.0.0.1 %d\n", sm_tls);
    tls_conf(conf, sizeof(conf), srep_tls, more);
    zh_redis_start_conf(&srep, conf);
    wait_for(replica_synced, NULL, 10000, "the replica syncs over TLS");
    int sport[2];
    for (int i = 0; i < 2; i++) {
        sport[i] = zh_free_port();
        snprintf(more, sizeof(more),
                 "sentinel monitor %s 127.0.0.1 %d 1\n"
                 "sentinel down-after-milliseconds %s 1000\n"
                 "sentinel failover-timeout %s 3000\n",
                 TLS_MASTER, sm_tls, TLS_MASTER, TLS_MASTER);
        tls_conf(conf, sizeof(conf), sport[i], more);
        zh_sentinel_start_conf(&sent[i], conf);
    }
    wait_for(sentinels_know_replica, NULL, 15000, "the sentinels find the replica over TLS");
    char surl[1400];
    snprintf(surl, sizeof(surl),
             "rediss+sentinel://127.0.0.1:%d,127.0.0.1:%d/%s?ca=%s/ca.crt&cert=%s/client.crt"
             "&key=%s/client.key",
             sport[0], sport[1], TLS_MASTER, pki, pki, pki);
    struct zh_broker sb;
    zh_broker_start_issuing(&sb, surl, sdk_it_policy);
    ztb_agent *a = sdk_it_enrolled(&sb, "billing-bot", 0);
    ztb_verifier *sv = sdk_it_verifier(&sb, surl);
    char *gone = NULL, *keep = NULL;
    assert_int_equal(ztb_agent_token(a, "payments", "payments:list", NULL, NULL, &gone), ZTB_OK);
    assert_int_equal(ztb_agent_token(a, "payments", "payments:list", NULL, NULL, &keep), ZTB_OK);
    ztb_expect e = {.action = "payments:list"};
    ztb_err rv = ztb_verify(sv, gone, &e, NULL);
    if (rv != ZTB_OK)
        fail_msg("%s: %s", ztb_err_name(rv), ztb_verifier_errdetail(sv));
    /* a revocation: acknowledged once the replica has it (WAIT 1, over TLS) */
    char body[4096];
    snprintf(body, sizeof(body), "{\"type\":\"jti\",\"token\":\"%s\"}", gone);
    struct zh_resp r;
    assert_int_equal(zh_admin(&sb, "POST", "/v1/revocations", body, &r), 0);
    if (r.status != 200) {
        zh_broker_dump_log(&sb);
        fail_msg("revoke: HTTP %ld %s", r.status, r.body);
    }
    zh_resp_free(&r);
    for (int i = 0; i < 300 && (rv = ztb_verify(sv, gone, &e, NULL)) == ZTB_OK; i++)
        usleep(10000);
    assert_int_equal(rv, ZTB_ERR_REVOKED);

    /* SENTINEL FAILOVER of a master whose replica is in sync */
    long long want = offset(&sm, "master_repl_offset:");
    wait_for(caught_up, &want, 10000, "the replica catches up");
    redisContext *c = zh_redis_connect(&sent[0]);
    redisReply *fr = redisCommand(c, "SENTINEL FAILOVER " TLS_MASTER);
    assert_true(fr != NULL && fr->type == REDIS_REPLY_STATUS);
    freeReplyObject(fr);
    redisFree(c);
    wait_for(switched, NULL, 15000, "both sentinels name the replica as master");
    uint64_t t_switch = mono_ms();
    char *tok = NULL;
    while ((rv = ztb_agent_token(a, "payments", "payments:list", NULL, NULL, &tok)) != ZTB_OK) {
        if (mono_ms() - t_switch > 10000) {
            zh_broker_dump_log(&sb);
            fail_msg("no token within 10 s of the switch: %s: %s", ztb_err_name(rv),
                     ztb_agent_errdetail(a));
        }
        usleep(50000);
    }
    uint64_t took = mono_ms() - t_switch;
    /* the new master is the one that answered, and speaks TLS only */
    assert_true(info_has(&srep, "replication", "role:master"));
    assert_int_equal(ztb_verify(sv, tok, &e, NULL), ZTB_OK);
    assert_int_equal(ztb_verify(sv, keep, &e, NULL), ZTB_OK);
    for (int i = 0; i < 300 && (rv = ztb_verify(sv, gone, &e, NULL)) != ZTB_ERR_REVOKED; i++)
        usleep(10000);
    assert_int_equal(rv, ZTB_ERR_REVOKED);
    fprintf(stderr, "sentinel over TLS: a token %llu ms after the switch; test %llu ms\n",
            (unsigned long long)took, (unsigned long long)(mono_ms() - t0));
    ztb_token_free(tok);
    ztb_token_free(gone);
    ztb_token_free(keep);
    ztb_verifier_free(sv);
    ztb_agent_free(a);
    assert_int_equal(zh_broker_stop(&sb), 0);
    zh_rmtree(sb.dir);
    for (int i = 0; i < 2; i++)
        zh_redis_stop(&sent[i], 1);
    zh_redis_stop(&sm, 1);
    zh_redis_stop(&srep, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_issue_revoke_verify_over_tls),
        cmocka_unit_test(test_refusals_name_the_problem),
        cmocka_unit_test(test_sentinel_over_tls),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
