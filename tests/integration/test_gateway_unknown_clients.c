/*
 * test_gateway_unknown_clients.c - shadow AI seen at gateways that verify
 * offline, end to end: the real broker, a real Redis, the real ztb-authz
 * sidecar and libztb's verifier in this process.
 *
 * Callers the sidecar refuses for carrying no ztb token (by X-Ztb-Source)
 * or a token that is not the broker's (by X-Real-IP) are counted by the
 * verifier, reported through Redis, and appear in `ztbctl agent inventory`
 * as unknown AI clients; the source that crosses the threshold raises one
 * shadow_ai signal naming the gateway. A flood of one-off sources through
 * an SDK verifier stays bounded (64 sources and "_other" per report), and
 * nobody goes uncounted. Tokens of the broker that are refused (another
 * action) are not unknown clients; the verifier counts refusals by code.
 * A report someone forged in the list cannot do more than add counts: a
 * malformed one is dropped, and the broker stays up.
 */
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "sdk_it.h"

static struct zh_redis rd;
static struct zh_broker b;
static char dir[256], authz_url[64], authz_log[300];
static pid_t authz_pid;

static int ctl(char **out, char **err, const char *const *args)
{
    const char *argv[16] = {zh_bin("ztbctl"), "--socket", b.admin_sock};
    int n = 3;
    for (const char *const *a = args; *a && n < 15; a++)
        argv[n++] = *a;
    argv[n] = NULL;
    return zh_run(argv, out, err);
}

/* Poll fn(arg) every 20 ms for up to ms: 1 once it returned non-zero. */
static int wait_for(int (*fn)(void *), void *arg, unsigned ms)
{
    for (unsigned t = 0; t <= ms; t += 20) {
        if (fn(arg))
            return 1;
        usleep(20000);
    }
    return 0;
}

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
        execl(zh_bin("ztb-authz"), "ztb-authz", "--issuer", b.url, "--jwks-url", jwks, "--redis",
              rd.url, "--routes", routes, "--listen", "127.0.0.1:0", "--report-interval", "200",
              (char *)NULL);
        _exit(127);
    }
    close(out[1]);
    FILE *f = fdopen(out[0], "r");
    char line[256] = "";
    if (fgets(line, sizeof(line), f) == NULL)
        fail_msg("ztb-authz did not start (log %s)", authz_log);
    fclose(f);
    assert_int_equal(sscanf(line, "ztb-authz: listening on %63s", authz_url), 1);
}

static int setup(void **state)
{
    (void)state;
    zh_tmpdir(dir, sizeof(dir));
    char routes[300];
    snprintf(routes, sizeof(routes), "%s/routes.json", dir);
    FILE *f = fopen(routes, "w");
    assert_non_null(f);
    fputs("{\"routes\": [{\"method\": \"GET\", \"path\": \"/orders/{id}\", \"audience\": "
          "\"payments\", \"action\": \"payments:read\", \"resource\": \"orders/{id}\"}]}\n",
          f);
    fclose(f);
    zh_redis_start(&rd);
    const char *extra[] = {"--shadow-ai-threshold", "3", NULL};
    struct zh_broker_opts o = {
        .redis_url = rd.url, .with_keys = 1, .policy = sdk_it_policy, .extra_args = extra};
    zh_broker_start(&b, &o);
    start_authz(routes);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    if (authz_pid > 0) {
        kill(authz_pid, SIGTERM);
        waitpid(authz_pid, NULL, 0);
    }
    int rc = zh_broker_stop(&b);
    zh_redis_stop(&rd, 1);
    zh_rmtree(dir);
    return rc;
}

/* GET /v1/authorize at the sidecar for /orders/7 with one extra header
 * (and an optional Authorization value). */
static long authorize(const char *authorization, const char *extra)
{
    char url[160], auth[2048];
    snprintf(url, sizeof(url), "%s/v1/authorize", authz_url);
    snprintf(auth, sizeof(auth), "Authorization: %s", authorization ? authorization : "");
    const char *h[] = {"X-Original-Method: GET", "X-Original-URI: /orders/7", extra,
                       authorization ? auth : NULL, NULL};
    struct zh_resp r;
    assert_int_equal(zh_http("GET", url, NULL, NULL, NULL, 0, h, &r), 0);
    long st = r.status;
    zh_resp_free(&r);
    return st;
}

/* The inventory's unknown clients as compact sorted JSON text (free()). */
static char *unknown_text(void)
{
    char *out, *err;
    const char *inv[] = {"-o", "json", "agent", "inventory", NULL};
    assert_int_equal(ctl(&out, &err, inv), 0);
    json_error_t e;
    json_t *j = json_loads(out, 0, &e);
    assert_non_null(j);
    char *text = json_dumps(json_object_get(j, "unknown_clients"), JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(j);
    free(out);
    free(err);
    return text;
}

static int has_all(void *arg)
{
    const char *const *want = arg;
    char *text = unknown_text();
    int ok = 1;
    for (; *want && ok; want++)
        ok = strstr(text, *want) != NULL;
    free(text);
    return ok;
}

/* The shadow_ai signals naming needle, as a count. */
static int shadow_signals(const char *needle)
{
    struct zh_resp r;
    assert_int_equal(zh_admin(&b, "GET", "/v1/signals?limit=500", NULL, &r), 0);
    json_error_t e;
    json_t *arr = json_loads(r.body, 0, &e);
    zh_resp_free(&r);
    json_t *list = json_is_array(arr) ? arr : json_object_get(arr, "signals");
    int n = 0;
    size_t i;
    json_t *s;
    json_array_foreach(list, i, s)
    {
        char *text = json_dumps(s, JSON_COMPACT);
        if (strstr(text, "\"shadow_ai\"") != NULL && strstr(text, needle) != NULL)
            n++;
        free(text);
    }
    json_decref(arr);
    return n;
}

static int shadow_signal_cb(void *arg)
{
    return shadow_signals(arg) >= 1;
}

static void test_sidecar_reports_unknown_clients(void **state)
{
    (void)state;
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    /* three callers from one source with no token at all: shadow_ai once */
    for (int i = 0; i < 3; i++)
        assert_int_equal(authorize(NULL, "X-Ztb-Source: 10.7.7.7"), 401);
    /* an API key where a token belongs, and a JWT of another issuer */
    assert_int_equal(authorize("Bearer sk-live-0123456789abcdef", "X-Real-IP: 192.0.2.9"), 401);
    assert_int_equal(authorize("Bearer eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
                               "eyJpc3MiOiJvdGhlciJ9.c2ln",
                               "X-Real-IP: 192.0.2.9"),
                     401);
    /* a source label that is not one is counted as "invalid", not stored raw */
    assert_int_equal(authorize(NULL, "X-Ztb-Source: evil|label"), 401);
    const char *want[] = {
        "{\"count\":3,\"last_seen\":", "\"reason\":\"no_token\",\"source\":\"10.7.7.7\"",
        "\"reason\":\"foreign_token\",\"source\":\"192.0.2.9\"",
        "\"reason\":\"no_token\",\"source\":\"invalid\"", NULL};
    if (!wait_for(has_all, (void *)want, 5000)) {
        char *text = unknown_text();
        fail_msg("the inventory lacks the sidecar's unknown clients: %s", text);
    }
    assert_true(wait_for(shadow_signal_cb, "10.7.7.7", 3000));
    assert_int_equal(shadow_signals("10.7.7.7"), 1);
    assert_true(shadow_signals("\"gateway\":\"payments\"") >= 1 ||
                shadow_signals("gateway\\\":\\\"payments") >= 1);
    char *text = unknown_text();
    assert_non_null(strstr(text, "{\"count\":2,\"last_seen\":"));
    assert_null(strstr(text, "evil"));
    free(text);
    /* and the table shows them */
    char *out, *err;
    const char *table[] = {"agent", "inventory", NULL};
    assert_int_equal(ctl(&out, &err, table), 0);
    assert_non_null(strstr(out, "unknown AI clients"));
    assert_non_null(strstr(out, "10.7.7.7"));
    free(out);
    free(err);
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    print_message("reported to the inventory within %ld ms\n",
                  (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000);
}

static void test_sdk_verifier_bounded(void **state)
{
    (void)state;
    char jwks[128];
    snprintf(jwks, sizeof(jwks), "%s/.well-known/jwks.json", b.url);
    ztb_verifier_config *c = ztb_verifier_config_new();
    assert_int_equal(ztb_verifier_config_set_issuer(c, b.url), ZTB_OK);
    assert_int_equal(ztb_verifier_config_set_audience(c, "payments"), ZTB_OK);
    assert_int_equal(ztb_verifier_config_set_jwks_url(c, jwks), ZTB_OK);
    assert_int_equal(ztb_verifier_config_set_redis(c, rd.url), ZTB_OK);
    assert_int_equal(ztb_verifier_config_set_unknown_report_interval(c, 50), ZTB_ERR_INVALID_ARG);
    assert_int_equal(ztb_verifier_config_set_unknown_report_interval(c, 3600000), ZTB_OK);
    ztb_verifier *v = NULL;
    assert_int_equal(ztb_verifier_new(c, &v), ZTB_OK);
    ztb_verifier_config_free(c);
    /* a token of the broker refused for another action: not an unknown client */
    ztb_agent *a = sdk_it_enrolled(&b, "billing-bot", 0);
    char *tok = NULL;
    assert_int_equal(ztb_agent_token(a, "payments", "payments:list", NULL, NULL, &tok), ZTB_OK);
    ztb_expect other = {.action = "payments:read", .flags = ZTB_EXPECT_ANY_RESOURCE};
    assert_int_equal(ztb_verify_from(v, tok, &other, NULL, "10.1.1.1"), ZTB_ERR_ACTION);
    /* 2000 one-off sources and one busy one, each with a token not ours */
    ztb_expect e = {.action = "payments:read", .flags = ZTB_EXPECT_ANY_RESOURCE};
    char src[32];
    for (int i = 0; i < 2000; i++) {
        snprintf(src, sizeof(src), "198.51.%d.%d", i / 250, i % 250);
        assert_int_equal(ztb_verify_from(v, "not-a-jwt", &e, NULL, src), ZTB_ERR_JWS_FORMAT);
        if (i % 100 == 0)
            assert_int_equal(ztb_verify_from(v, "a.b.c", &e, NULL, "busy-agent-host"),
                             ZTB_ERR_BASE64);
    }
    assert_int_equal(ztb_verifier_report_no_token(v, "busy-agent-host"), ZTB_OK);
    assert_int_equal(ztb_verifier_refusals(v, ZTB_ERR_ACTION), 1);
    assert_int_equal(ztb_verifier_refusals(v, ZTB_ERR_JWS_FORMAT), 2000);
    assert_int_equal(ztb_verifier_refusals(v, ZTB_ERR_BASE64), 20);
    assert_int_equal(ztb_verifier_refusals(v, ZTB_OK), 2021);
    assert_int_equal(ztb_verifier_refusals(v, ZTB_ERR_REPLAY), 0);
    ztb_unknown_client_stats st;
    memset(&st, 0xff, sizeof(st));
    /* a caller built against a header with fewer members gets only those */
    assert_int_equal(ztb_verifier_unknown_stats_get(v, &st, 2 * sizeof(uint64_t)), ZTB_OK);
    assert_int_equal(st.no_token, 1);
    assert_int_equal(st.foreign_token, 2020);
    assert_true(st.folded == UINT64_MAX); /* untouched */
    assert_int_equal(ztb_verifier_unknown_stats_get(v, &st, sizeof(st)), ZTB_OK);
    assert_true(st.folded >= 2000 - 64);
    /* freeing sends the last report */
    ztb_verifier_free(v);
    const char *want[] = {"\"reason\":\"foreign_token\",\"source\":\"_other\"",
                          "{\"count\":20,\"last_seen\":", NULL};
    if (!wait_for(has_all, (void *)want, 5000)) {
        char *text = unknown_text();
        fail_msg("no bounded report in the inventory: %s", text);
    }
    char *text = unknown_text();
    json_error_t je;
    json_t *arr = json_loads(text, 0, &je);
    /* at most 64 sources of this report and _other, beside the sidecar's 4 */
    assert_true(json_array_size(arr) <= 4 + 64 + 2);
    json_int_t total = 0;
    size_t i;
    json_t *x;
    json_array_foreach(arr, i, x)
    {
        const char *s = json_string_value(json_object_get(x, "source"));
        if (strncmp(s, "198.51.", 7) == 0 || strcmp(s, "_other") == 0)
            total += json_integer_value(json_object_get(x, "count"));
    }
    assert_int_equal(total, 2000); /* nobody uncounted, nobody twice */
    assert_null(strstr(text, "10.1.1.1"));
    json_decref(arr);
    free(text);
    ztb_token_free(tok);
    ztb_agent_free(a);
}

/* Whoever can write the list can add counts, nothing more. */
static void test_forged_reports(void **state)
{
    (void)state;
    redisContext *c = zh_redis_connect(&rd);
    redisReply *r = redisCommand(c, "LPUSH ztb:unknown_reports %s %s",
                                 "{\"v\":1,\"gateway\":"
                                 "\"x\",\"clients\":[{\"reason\":\"revoke\",\"source\":\"a\","
                                 "\"count\":1}]}",
                                 "{\"v\":1,\"gateway\":\"x\",\"clients\":[{\"reason\":\"no_token\","
                                 "\"source\":\"forged-but-counted\",\"count\":1}]}");
    freeReplyObject(r);
    const char *want[] = {"\"source\":\"forged-but-counted\"", NULL};
    assert_true(wait_for(has_all, (void *)want, 5000));
    r = redisCommand(c, "LLEN ztb:unknown_reports");
    assert_int_equal(r->integer, 0); /* both taken, the bad one dropped */
    freeReplyObject(r);
    redisFree(c);
    struct zh_resp h;
    assert_int_equal(zh_get(&b, "/healthz", &h), 0);
    assert_int_equal(h.status, 200);
    zh_resp_free(&h);
    char *text = unknown_text();
    assert_null(strstr(text, "revoke"));
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sidecar_reports_unknown_clients),
        cmocka_unit_test(test_sdk_verifier_bounded),
        cmocka_unit_test(test_forged_reports),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
