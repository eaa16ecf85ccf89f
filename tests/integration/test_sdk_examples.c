/*
 * test_sdk_examples.c - the two example programs, end to end, the way the
 * quickstart runs them: a real broker and Redis, the example gateway guarding
 * POST /refunds/<id>, and the example agent enrolling once and then calling
 * the gateway with a token for one refund (Bearer, then DPoP-bound). The
 * gateway must refuse a token for another order and say why.
 */
#include <errno.h>
#include <fcntl.h>
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
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_quickstart_flow),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
