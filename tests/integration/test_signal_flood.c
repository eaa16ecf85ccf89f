/*
 * test_signal_flood.c - floods cost the attacker, not the disk: the real
 * broker, a real Redis, real ztbctl.
 *
 * 5,000 unauthenticated POST /v1/signals (no credential, a wrong source
 * secret) must be refused with 401, counted on /metrics, logged at a sampled
 * rate, and leave the audit log, the broker's log and the audit stream almost
 * unchanged (each used to cost ~430 bytes of audit, ~300 of log and a stream
 * entry). Authenticated decisions stay audited. A source over its rate gets
 * 429 with Retry-After; so does an address over the per-address rate; both
 * are counted, not audited per request.
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

#include "agent.h"
#include "harness.h"

#define FLOOD        5000
#define GROWTH_LIMIT (20 * 1024)

static const char *policy_doc =
    "{\"version\": 1, \"trust_domain\": \"ztb.local\",\n"
    " \"settings\": {\"max_ttl\": 300, \"default_ttl\": 60,\n"
    "   \"rate_limits\": {\"per_agent\": {\"rate\": 1000, \"burst\": 100, \"period\": 60},\n"
    "                   \"per_action\": {\"rate\": 1000, \"burst\": 100, \"period\": 60}}},\n"
    " \"rules\": [\n"
    "  {\"id\": \"reads\", \"effect\": \"allow\", \"agents\": [\"*\"],\n"
    "   \"actions\": [\"svc:read\"], \"audiences\": [\"svc\"], \"resources\": [\"**\"]}\n"
    " ]}\n";

static struct zh_redis rd;
static struct zh_broker b; /* no per-address limit: every flood request reaches authentication */
static char soc_secret[64];

static int ctl(const struct zh_broker *br, char **out, char **err, const char *const *args)
{
    const char *argv[16] = {zh_bin("ztbctl"), "--socket", br->admin_sock};
    int n = 3;
    for (const char *const *a = args; *a && n < 15; a++)
        argv[n++] = *a;
    argv[n] = NULL;
    return zh_run(argv, out, err);
}

static void source_add(const struct zh_broker *br, const char *name, char *secret, size_t cap)
{
    const char *args[] = {"signals", "source", "add", name, NULL};
    char *out, *err;
    if (ctl(br, &out, &err, args) != 0)
        fail_msg("ztbctl signals source add %s: %s", name, err);
    char *s = strstr(out, "ztbsrc_");
    assert_non_null(s);
    size_t n = strcspn(s, " \t\r\n\"");
    assert_true(n > 0 && n < cap);
    memcpy(secret, s, n);
    secret[n] = '\0';
    free(out);
    free(err);
}

static long post_signal(const struct zh_broker *br, const char *bearer, const char *body,
                        struct zh_resp *r)
{
    char url[128], hdr[256];
    snprintf(url, sizeof(url), "%s/v1/signals", br->url);
    const char *headers[] = {hdr, NULL};
    if (bearer != NULL)
        snprintf(hdr, sizeof(hdr), "Authorization: Bearer %s", bearer);
    assert_int_equal(zh_http("POST", url, NULL, "application/json", body, strlen(body),
                             bearer ? headers : NULL, r),
                     0);
    return r->status;
}

static char *signal_json(const char *type)
{
    static unsigned n;
    char *s = calloc(1, 1024);
    snprintf(s, 1024,
             "{\"jti\":\"flood-%d-%u-%ld\",\"iat\":%lld,\"events\":{\"urn:ztb:signal:%s\":"
             "{\"subject\":{\"agent\":\"nobody\"},\"severity\":\"low\",\"confidence\":0.1}}}",
             (int)getpid(), n++, (long)rand(), (long long)time(NULL), type);
    return s;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long file_size(const char *path)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return (long)st.st_size;
}

static long audit_size(const struct zh_broker *br)
{
    char path[400];
    snprintf(path, sizeof(path), "%s/audit/audit.log", br->state);
    return file_size(path);
}

static long long stream_len(void)
{
    redisContext *c = zh_redis_connect(&rd);
    redisReply *r = redisCommand(c, "XLEN ztb:audit");
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_INTEGER);
    long long n = r->integer;
    freeReplyObject(r);
    redisFree(c);
    return n;
}

/* The value of one /metrics sample line (name{labels}), or -1 if absent. */
static long long metric(const struct zh_broker *br, const char *sample)
{
    struct zh_resp r;
    assert_int_equal(zh_get(br, "/metrics", &r), 0);
    assert_int_equal(r.status, 200);
    long long v = -1;
    for (char *p = strstr(r.body, sample); p != NULL; p = strstr(p + 1, sample))
        if ((p == r.body || p[-1] == '\n') && p[strlen(sample)] == ' ') {
            v = strtoll(p + strlen(sample) + 1, NULL, 10);
            break;
        }
    zh_resp_free(&r);
    return v;
}

static int setup(void **state)
{
    (void)state;
    srand((unsigned)time(NULL) ^ (unsigned)getpid());
    zh_redis_start(&rd);
    const char *extra[] = {"--signals-ip-rate",
                           "0",
                           "--signals-source-rate",
                           "1",
                           "--signals-source-burst",
                           "2",
                           NULL};
    struct zh_broker_opts o = {
        .redis_url = rd.url, .with_keys = 1, .policy = policy_doc, .extra_args = extra};
    zh_broker_start(&b, &o);
    source_add(&b, "soc", soc_secret, sizeof(soc_secret));
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    zh_broker_stop(&b);
    zh_redis_stop(&rd, 1);
    return 0;
}

static void test_unauthenticated_flood_is_counted_not_written(void **state)
{
    (void)state;
    char *body = signal_json("prompt_injection");
    char wrong[64];
    snprintf(wrong, sizeof(wrong), "%s", soc_secret);
    wrong[20] = wrong[20] == 'x' ? 'y' : 'x';
    sleep(2); /* let the start-up audit lines reach the stream */
    long audit0 = audit_size(&b), log0 = file_size(b.log);
    long long stream0 = stream_len();
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < FLOOD; i++) {
        struct zh_resp r;
        long st = post_signal(&b, i % 2 ? wrong : NULL, body, &r);
        if (st != 401)
            fail_msg("request %d: status %ld (%s)", i, st, r.body);
        zh_resp_free(&r);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    sleep(2); /* the audit stream is written in the background */
    long audit_growth = audit_size(&b) - audit0;
    long log_growth = file_size(b.log) - log0;
    long long stream_growth = stream_len() - stream0;
    fprintf(stderr, "flood of %d in %.2f s: audit +%ld bytes, log +%ld bytes, audit stream +%lld\n",
            FLOOD, (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9,
            audit_growth, log_growth, stream_growth);
    if (audit_growth >= GROWTH_LIMIT || log_growth >= GROWTH_LIMIT)
        fail_msg("the flood wrote %ld bytes of audit and %ld bytes of log", audit_growth,
                 log_growth);
    assert_true(stream_growth < 20);
    assert_int_equal(
        metric(&b,
               "ztb_requests_refused_total{endpoint=\"/v1/signals\",reason=\"invalid_client\"}"),
        FLOOD);
    /* the log says that it held lines back */
    char *log = NULL;
    FILE *f = fopen(b.log, "r");
    assert_non_null(f);
    log = calloc(1, 1 << 22);
    size_t n = fread(log, 1, (1 << 22) - 1, f);
    log[n] = '\0';
    fclose(f);
    assert_non_null(strstr(log, "\"event\":\"signal.refused\""));
    free(log);
    free(body);

    /* authenticated decisions are still audited, refusals included */
    char *good = signal_json("prompt_injection");
    struct zh_resp r;
    sleep(1); /* a fresh rate budget for the source */
    assert_int_equal(post_signal(&b, soc_secret, good, &r), 202);
    zh_resp_free(&r);
    const char *bad = "{\"jti\":\"x1\",\"events\":";
    assert_int_equal(post_signal(&b, soc_secret, bad, &r), 400);
    zh_resp_free(&r);
    char *audit = za_audit_text(&b);
    assert_non_null(strstr(audit, "\"event\":\"signal.received\""));
    assert_non_null(strstr(audit, "\"actor\":\"source:soc\""));
    assert_non_null(strstr(audit, "\"status\":400"));
    assert_null(strstr(audit, "\"actor\":\"source:unauthenticated\""));
    free(audit);
    free(good);
}

static void test_source_rate_limit(void **state)
{
    (void)state;
    sleep(3); /* a full bucket: burst 2 at 1 per second */
    long audit0 = audit_size(&b);
    struct zh_resp r;
    for (int i = 0; i < 2; i++) {
        char *s = signal_json("prompt_injection");
        if (post_signal(&b, soc_secret, s, &r) != 202)
            fail_msg("signal %d: %ld %s", i, r.status, r.body);
        zh_resp_free(&r);
        free(s);
    }
    long audit1 = audit_size(&b);
    long long before = metric(
        &b, "ztb_requests_refused_total{endpoint=\"/v1/signals\",reason=\"rate_limited_source\"}");
    /* 50 more at once: refused, but for what the rate (1/s) refills meanwhile
     * on a slow (sanitizer) build */
    double t0 = now_s();
    int limited = 0, accepted = 0;
    for (int i = 0; i < 50; i++) {
        char *s = signal_json("prompt_injection");
        post_signal(&b, soc_secret, s, &r);
        free(s);
        if (r.status == 202) {
            accepted++;
            zh_resp_free(&r);
            continue;
        }
        if (r.status != 429)
            fail_msg("over the source's rate: %ld %s", r.status, r.body);
        limited++;
        za_expect_error(&r, 429, "slow_down");
        char h[32];
        assert_non_null(zh_resp_header(&r, "Retry-After", h, sizeof(h)));
        assert_true(atoi(h) >= 1);
        zh_resp_free(&r);
    }
    double took = now_s() - t0;
    if (accepted > (int)took + 1)
        fail_msg("%d signals over the rate accepted in %.1f s", accepted, took);
    long long after = metric(
        &b, "ztb_requests_refused_total{endpoint=\"/v1/signals\",reason=\"rate_limited_source\"}");
    assert_int_equal(after - (before < 0 ? 0 : before), limited);
    assert_true(audit1 > audit0); /* the accepted signals are audited */
    /* the 429s are not, one by one */
    assert_true(audit_size(&b) - audit1 < (accepted + 1) * 2048);
    /* the budget comes back */
    sleep(2);
    char *s = signal_json("prompt_injection");
    assert_int_equal(post_signal(&b, soc_secret, s, &r), 202);
    zh_resp_free(&r);
    free(s);
}

static void test_address_rate_limit(void **state)
{
    (void)state;
    struct zh_broker b2;
    const char *extra[] = {"--signals-ip-rate", "1", "--signals-ip-burst", "5", NULL};
    struct zh_broker_opts o = {
        .redis_url = rd.url, .with_keys = 1, .policy = policy_doc, .extra_args = extra};
    zh_broker_start(&b2, &o);
    char *body = signal_json("prompt_injection");
    struct zh_resp r;
    int unauthorized = 0, limited = 0;
    double t0 = now_s();
    for (int i = 0; i < 200; i++) {
        long st = post_signal(&b2, NULL, body, &r);
        if (st == 401) {
            unauthorized++;
        } else if (st == 429) {
            limited++;
            char h[32];
            assert_non_null(zh_resp_header(&r, "Retry-After", h, sizeof(h)));
            assert_true(atoi(h) >= 1);
        } else {
            fail_msg("status %ld: %s", st, r.body);
        }
        zh_resp_free(&r);
    }
    double took = now_s() - t0;
    /* the burst, plus what the rate (1/s) refilled while the loop ran */
    if (unauthorized < 5 || unauthorized > 5 + (int)took + 1)
        fail_msg("%d of 200 reached authentication in %.1f s", unauthorized, took);
    assert_int_equal(limited, 200 - unauthorized);
    assert_int_equal(
        metric(&b2,
               "ztb_requests_refused_total{endpoint=\"/v1/signals\",reason=\"rate_limited_ip\"}"),
        limited);
    /* a valid source from the same address is held back too: the limit comes
     * before authentication, so a flood never reaches Redis */
    char secret[64];
    source_add(&b2, "soc2", secret, sizeof(secret));
    int held = 0;
    for (int i = 0; i < 5; i++) {
        held += post_signal(&b2, secret, body, &r) == 429;
        zh_resp_free(&r);
    }
    assert_true(held >= 3);
    free(body);
    zh_broker_stop(&b2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unauthenticated_flood_is_counted_not_written),
        cmocka_unit_test(test_source_rate_limit),
        cmocka_unit_test(test_address_rate_limit),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
