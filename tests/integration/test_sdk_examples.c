/*
 * test_sdk_examples.c - the two example programs, end to end, the way the
 * quickstart runs them: a real broker and Redis, the example gateway guarding
 * POST /refunds/<id>, and the example agent enrolling once and then calling
 * the gateway with a token for one refund (Bearer, then DPoP-bound). The
 * gateway must refuse a token for another order and say why; it takes the
 * Authorization scheme in any case, and refuses a scheme that does not fit
 * the token's binding and a repeated Authorization or DPoP header.
 */
#include <arpa/inet.h>
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
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "sdk_it.h"

static struct zh_redis rd;
static struct zh_broker b;
static pid_t gw_pid;
static char gw_url[128], gw_log[300], dir[256], cred[300];

/* Start the example gateway; wait for its "listening on" line. */
static void start_gateway(void)
{
    char jwks[128];
    snprintf(jwks, sizeof(jwks), "%s/.well-known/jwks.json", b.url);
    snprintf(gw_log, sizeof(gw_log), "%s/gateway.log", dir);
    int out[2];
    assert_int_equal(pipe(out), 0);
    gw_pid = fork();
    assert_true(gw_pid >= 0);
    if (gw_pid == 0) {
        int log = open(gw_log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(out[1], 1);
        dup2(log, 2);
        close(out[0]);
        execl(zh_bin("ztb-gateway-example"), "ztb-gateway-example", "--issuer", b.url, "--audience",
              "payments", "--jwks-url", jwks, "--redis", rd.url, "--listen", "127.0.0.1:0",
              (char *)NULL);
        _exit(127);
    }
    close(out[1]);
    FILE *f = fdopen(out[0], "r");
    char line[256] = "";
    assert_non_null(fgets(line, sizeof(line), f));
    fclose(f);
    assert_int_equal(sscanf(line, "gateway: listening on %127s", gw_url), 1);
}

static int setup(void **state)
{
    (void)state;
    zh_tmpdir(dir, sizeof(dir));
    chmod(dir, 0700);
    snprintf(cred, sizeof(cred), "%s/billing-bot.pem", dir);
    zh_redis_start(&rd);
    zh_broker_start_issuing(&b, rd.url, sdk_it_policy);
    start_gateway();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    if (gw_pid > 0) {
        kill(gw_pid, SIGTERM);
        int st;
        waitpid(gw_pid, &st, 0);
    }
    zh_broker_stop(&b);
    zh_redis_stop(&rd, 1);
    zh_rmtree(b.dir);
    zh_rmtree(dir);
    return 0;
}

/* Run the example agent with extra arguments; its exit status, stdout in *out. */
static int agent(const char *const *extra, char **out)
{
    const char *argv[32] = {zh_bin("ztb-agent-example"), "--broker", b.url, "--name", "billing-bot",
                            "--credential-file",         cred};
    int n = 7;
    for (const char *const *e = extra; *e != NULL && n < 31; e++)
        argv[n++] = *e;
    argv[n] = NULL;
    char *err = NULL;
    int rc = zh_run(argv, out, &err);
    if (rc != 0)
        fprintf(stderr, "agent example (status %d): %s\n", rc, err ? err : "");
    free(err);
    return rc;
}

static int gateway_log_has(const char *needle)
{
    FILE *f = fopen(gw_log, "r");
    if (f == NULL)
        return 0;
    char line[1024];
    int found = 0;
    while (!found && fgets(line, sizeof(line), f) != NULL)
        found = strstr(line, needle) != NULL;
    fclose(f);
    return found;
}

static void test_quickstart_flow(void **state)
{
    (void)state;
    char *join = sdk_it_join_token(&b, "billing-bot");
    const char *enroll[] = {"--join-token", join, NULL};
    char *out = NULL;
    assert_int_equal(agent(enroll, &out), 0);
    free(out);
    free(join);
    struct stat st;
    assert_int_equal(stat(cred, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);

    char url[256];
    snprintf(url, sizeof(url), "%s/refunds/1234", gw_url);
    const char *refund[] = {
        "--audience", "payments",    "--action",  "payments:refund",
        "--resource", "orders/1234", "--details", "{\"type\":\"payment\",\"amount\":40}",
        "--call",     url,           NULL};
    assert_int_equal(agent(refund, &out), 0);
    assert_non_null(strstr(out, "\"refunded\":\"1234\""));
    assert_non_null(strstr(out, "\"max_amount\":40"));
    free(out);
    assert_true(gateway_log_has("allowed POST /refunds/1234"));

    /* the same token type with a DPoP binding */
    const char *dpop[] = {"--dpop",
                          "--audience",
                          "payments",
                          "--action",
                          "payments:refund",
                          "--resource",
                          "orders/1234",
                          "--details",
                          "{\"type\":\"payment\",\"amount\":10}",
                          "--call",
                          url,
                          NULL};
    assert_int_equal(agent(dpop, &out), 0);
    assert_non_null(strstr(out, "\"refunded\":\"1234\""));
    free(out);

    /* a token for order 1234 is no good for order 999, and the gateway says why */
    char other[256];
    snprintf(other, sizeof(other), "%s/refunds/999", gw_url);
    const char *wrong[] = {
        "--audience", "payments",    "--action",  "payments:refund",
        "--resource", "orders/1234", "--details", "{\"type\":\"payment\",\"amount\":40}",
        "--call",     other,         NULL};
    assert_int_equal(agent(wrong, &out), 1);
    assert_non_null(strstr(out, "\"error\":\"RESOURCE\""));
    free(out);
    assert_true(gateway_log_has("refused POST /refunds/999: RESOURCE"));

    /* the policy refuses big refunds at the broker: the agent says so */
    const char *big[] = {
        "--audience", "payments",    "--action",  "payments:refund",
        "--resource", "orders/1234", "--details", "{\"type\":\"payment\",\"amount\":400}",
        NULL};
    assert_int_equal(agent(big, &out), 1);
    free(out);

    /* above the autonomous limit: the example waits for an operator (the
     * quickstart's approval step, with the admin API for ztbctl) */
    const char *large[] = {
        "--audience", "payments",    "--action",  "payments:refund",
        "--resource", "orders/4321", "--details", "{\"type\":\"payment\",\"amount\":2000}",
        NULL};
    const char *argv[24] = {zh_bin("ztb-agent-example"), "--broker", b.url, "--name", "billing-bot",
                            "--credential-file",         cred};
    int n = 7;
    for (const char *const *e = large; *e != NULL; e++)
        argv[n++] = *e;
    argv[n] = NULL;
    char *err = NULL;
    assert_int_equal(zh_run(argv, &out, &err), 3);
    const char *at = strstr(err, "approval apr_");
    assert_non_null(at);
    char id[64];
    assert_int_equal(sscanf(at, "approval %63s", id), 1);
    free(out);
    free(err);
    struct zh_resp r;
    assert_int_equal(zh_admin(&b, "POST", "/v1/approvers/finance/add", "{\"user\":\"root\"}", &r),
                     0);
    zh_resp_free(&r);
    char path[128];
    snprintf(path, sizeof(path), "/v1/approvals/%s/approve", id);
    assert_int_equal(zh_admin(&b, "POST", path, "{}", &r), 0);
    assert_int_equal(r.status, 200);
    zh_resp_free(&r);
    argv[n++] = "--approval-wait";
    argv[n++] = "10";
    argv[n] = NULL;
    assert_int_equal(zh_run(argv, &out, &err), 0);
    assert_non_null(strstr(err, "granted"));
    assert_int_equal(strncmp(out, "ey", 2), 0); /* the token */
    free(out);
    free(err);
}

/* An agent of billing-bot from the credential the example enrolled. */
static ztb_agent *load_agent(int dpop)
{
    struct stat st;
    if (stat(cred, &st) != 0)
        fail_msg("no credential at %s: test_quickstart_flow enrolls first", cred);
    ztb_agent_config *cfg = ztb_agent_config_new();
    assert_non_null(cfg);
    assert_int_equal(ztb_agent_config_set_broker(cfg, b.url), ZTB_OK);
    assert_int_equal(ztb_agent_config_set_name(cfg, "billing-bot"), ZTB_OK);
    assert_int_equal(ztb_agent_config_set_credential_file(cfg, cred), ZTB_OK);
    assert_int_equal(ztb_agent_config_set_dpop(cfg, dpop), ZTB_OK);
    ztb_agent *a = NULL;
    assert_int_equal(ztb_agent_new(cfg, &a), ZTB_OK);
    ztb_agent_config_free(cfg);
    return a;
}

/* A fresh single-use refund token for order 1234 (caller frees). */
static char *refund_token(ztb_agent *a)
{
    char *tok = NULL;
    assert_int_equal(ztb_agent_token(a, "payments", "payments:refund", "orders/1234",
                                     "{\"type\":\"payment\",\"amount\":5}", &tok),
                     ZTB_OK);
    return tok;
}

/*
 * POST /refunds/1234 to the gateway over a plain socket, with the exact
 * header bytes given (hdr_len of them: NUL bytes included). The HTTP status.
 */
static int raw_post(const char *hdr, size_t hdr_len)
{
    unsigned port = 0;
    assert_int_equal(sscanf(gw_url, "http://127.0.0.1:%u", &port), 1);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    static const char head[] = "POST /refunds/1234 HTTP/1.1\r\nHost: 127.0.0.1\r\n";
    static const char tail[] = "\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
    char req[8192];
    assert_true(sizeof(head) + hdr_len + sizeof(tail) < sizeof(req));
    size_t n = 0;
    memcpy(req + n, head, sizeof(head) - 1);
    n += sizeof(head) - 1;
    memcpy(req + n, hdr, hdr_len);
    n += hdr_len;
    memcpy(req + n, tail, sizeof(tail) - 1);
    n += sizeof(tail) - 1;
    assert_int_equal(write(fd, req, n), (ssize_t)n);
    char resp[2048] = "";
    ssize_t got = 0, r;
    while ((r = read(fd, resp + got, sizeof(resp) - 1 - (size_t)got)) > 0)
        got += r;
    close(fd);
    int status = 0;
    if (sscanf(resp, "HTTP/1.1 %d", &status) != 1)
        fail_msg("no HTTP answer from the gateway: '%s'", resp);
    return status;
}

/* raw_post with "Authorization: SCHEME TOKEN" and, if proof, "DPoP: PROOF". */
static int post_authz(const char *scheme, const char *tok, const char *proof)
{
    char hdr[6144];
    int n = snprintf(hdr, sizeof(hdr), "Authorization: %s %s", scheme, tok);
    assert_true(n > 0 && (size_t)n < sizeof(hdr) - 2);
    size_t len = (size_t)n;
    if (proof != NULL) {
        int m = snprintf(hdr + len, sizeof(hdr) - len, "\r\nDPoP: %s", proof);
        assert_true(m > 0 && (size_t)m < sizeof(hdr) - len);
        len += (size_t)m;
    }
    return raw_post(hdr, len);
}

/*
 * The gateway takes the auth scheme case-insensitively (RFC 7235): "bearer",
 * "BEARER", "dpop" are the schemes they name; anything else is no token.
 * (A NUL byte inside the Authorization value cannot be shown refused here:
 * libmicrohttpd 0.9.75 ends the value at the NUL before the gateway sees it.)
 */
static void test_authorization_header(void **state)
{
    (void)state;
    ztb_agent *a = load_agent(0);
    const char *schemes[] = {"Bearer", "bearer", "BEARER", "bEaReR"};
    for (size_t i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++) {
        char *tok = refund_token(a);
        int st = post_authz(schemes[i], tok, NULL);
        if (st != 200)
            fail_msg("scheme '%s': HTTP %d, want 200", schemes[i], st);
        ztb_token_free(tok);
    }
    /* no scheme, an unknown one, no token after it */
    char *tok = refund_token(a);
    assert_int_equal(post_authz("Basic", tok, NULL), 401);
    assert_int_equal(post_authz("Bearertoo", tok, NULL), 401);
    assert_int_equal(raw_post("Authorization: Bearer ", 22), 401);
    ztb_token_free(tok);
    ztb_agent_free(a);

    /* DPoP, in any case, with its proof */
    ztb_agent *d = load_agent(1);
    char url[256];
    snprintf(url, sizeof(url), "%s/refunds/1234", gw_url);
    const char *dschemes[] = {"DPoP", "dpop", "DPOP"};
    for (size_t i = 0; i < sizeof(dschemes) / sizeof(dschemes[0]); i++) {
        char *dt = refund_token(d);
        char *proof = NULL;
        assert_int_equal(ztb_dpop_proof(d, "POST", url, dt, &proof), ZTB_OK);
        int st = post_authz(dschemes[i], dt, proof);
        if (st != 200)
            fail_msg("scheme '%s': HTTP %d, want 200", dschemes[i], st);
        ztb_token_free(proof);
        ztb_token_free(dt);
    }
    ztb_agent_free(d);
}

/*
 * ATTACK (RFC 9449 §4.3, §7.1, §7.2): the scheme and the proof must agree.
 * A DPoP-bound token sent with the Bearer scheme, even with its valid proof
 * beside it, and a bearer token sent with the DPoP scheme are refused; so
 * are two DPoP headers and two Authorization headers, whichever comes first.
 * The bound token was not used by the refusals: it still goes through.
 */
static void test_scheme_and_proof_agree(void **state)
{
    (void)state;
    char url[256];
    snprintf(url, sizeof(url), "%s/refunds/1234", gw_url);
    ztb_agent *d = load_agent(1);
    char *dt = refund_token(d);
    char *proof = NULL;
    assert_int_equal(ztb_dpop_proof(d, "POST", url, dt, &proof), ZTB_OK);
    assert_int_equal(post_authz("Bearer", dt, proof), 401);
    /* two DPoP headers: the valid proof first, then another */
    char hdr[8192];
    int n =
        snprintf(hdr, sizeof(hdr), "Authorization: DPoP %s\r\nDPoP: %s\r\nDPoP: x.y.z", dt, proof);
    assert_true(n > 0 && (size_t)n < sizeof(hdr));
    assert_int_not_equal(raw_post(hdr, (size_t)n), 200);
    /* two Authorization headers: the valid one first, then another */
    n = snprintf(hdr, sizeof(hdr),
                 "Authorization: DPoP %s\r\nDPoP: %s\r\nAuthorization: Basic eA==", dt, proof);
    assert_true(n > 0 && (size_t)n < sizeof(hdr));
    assert_int_not_equal(raw_post(hdr, (size_t)n), 200);
    /* the same token and proof, sent as RFC 9449 says */
    assert_int_equal(post_authz("DPoP", dt, proof), 200);
    ztb_token_free(proof);
    ztb_token_free(dt);
    ztb_agent_free(d);
    /* a bearer token with the DPoP scheme (a proof by some key beside it) */
    ztb_agent *a = load_agent(0);
    char *tok = refund_token(a);
    d = load_agent(1);
    assert_int_equal(ztb_dpop_proof(d, "POST", url, tok, &proof), ZTB_OK);
    assert_int_equal(post_authz("DPoP", tok, proof), 401);
    assert_int_equal(post_authz("Bearer", tok, NULL), 200);
    ztb_token_free(proof);
    ztb_token_free(tok);
    ztb_agent_free(d);
    ztb_agent_free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_quickstart_flow),
        cmocka_unit_test(test_authorization_header),
        cmocka_unit_test(test_scheme_and_proof_agree),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
