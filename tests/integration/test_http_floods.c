/*
 * test_http_floods.c - floods against the HTTP layer cost the attacker, not
 * the broker: the real broker with its default connection settings, a real
 * Redis, real sockets.
 *
 *   - One address opening more connections than the broker allows (4096)
 *     and than it has file descriptors (started, as under systemd's
 *     default, with a soft RLIMIT_NOFILE of 1024) does not lock anyone else
 *     out: the per-IP connection limit is on by default and closes the
 *     surplus at once, and the broker raised its descriptor limit to what
 *     its connection limit needs. A normal agent on another address is
 *     answered quickly. (Without the per-IP limit the connection limit
 *     fills; without the raise, the descriptors run out first: either way
 *     the agent waited ~9.5 s, until the attacker's connections timed out.)
 *   - Malformed UTF-8 in a form parameter is a 400 invalid_request: no
 *     policy denial, no audit line of one, no detector event (the detectors
 *     here quarantine an agent on its third denial).
 */
#define _GNU_SOURCE /* POLLRDHUP */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "agent.h"
#include "harness.h"

#define ATTACKER       "127.0.0.2"
#define N_ATTACK       4200 /* more than connection_limit and a soft RLIMIT_NOFILE of 1024 */
#define DEFAULT_PER_IP 128  /* the broker's default per_ip_connection_limit */

static const char *policy_doc =
    "{\"version\": 1, \"trust_domain\": \"ztb.local\",\n"
    " \"settings\": {\"max_ttl\": 300, \"default_ttl\": 60,\n"
    "   \"rate_limits\": {\"per_agent\": {\"rate\": 1000, \"burst\": 1000, \"period\": 60},\n"
    "                   \"per_action\": {\"rate\": 1000, \"burst\": 1000, \"period\": 60}}},\n"
    " \"rules\": [\n"
    "  {\"id\": \"work\", \"effect\": \"allow\", \"agents\": [\"*\"],\n"
    "   \"actions\": [\"svc:call\"], \"audiences\": [\"svc\"], \"resources\": [\"**\"]}\n"
    " ],\n"
    " \"anomaly_responses\": [\n"
    "  {\"id\": \"probe-quarantine\", \"signals\": [\"policy_violation\"],\n"
    "   \"min_severity\": \"medium\", \"response\": \"quarantine\"}\n"
    " ]}\n";

static struct zh_redis rd;

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static int setup(void **state)
{
    (void)state;
    zh_redis_start(&rd);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    zh_redis_stop(&rd, 1);
    return 0;
}

/* ---- one address holding many connections ---------------------------------- */

/* A connection to the broker from source address src (not yet accepted, maybe). */
static int connect_from(const struct zh_broker *b, const char *src)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        fail_msg("socket: %s (the test needs %d descriptors)", strerror(errno), N_ATTACK + 64);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    assert_int_equal(inet_pton(AF_INET, src, &sa.sin_addr), 1);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(b->port)};
    inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
    if (connect(fd, (struct sockaddr *)&to, sizeof(to)) != 0)
        fail_msg("connect from %s: %s", src, strerror(errno));
    return fd;
}

/* The broker's "Max open files" soft limit, from /proc. */
static long broker_nofile(const struct zh_broker *b)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/limits", (int)b->pid);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    long soft = -1;
    while (fgets(line, sizeof(line), f) != NULL)
        if (strncmp(line, "Max open files", 14) == 0)
            soft = strtol(line + 14, NULL, 10);
    fclose(f);
    return soft;
}

/* How many of fds the broker has not closed. */
static int still_open(const int *fds, int n)
{
    int open = 0;
    for (int i = 0; i < n; i++) {
        struct pollfd p = {.fd = fds[i], .events = POLLIN | POLLRDHUP};
        if (poll(&p, 1, 0) == 0)
            open++;
    }
    return open;
}

static void test_one_address_cannot_lock_out_others(void **state)
{
    (void)state;
    /* The test needs more than N_ATTACK descriptors; the broker starts with
     * the soft limit most services get (systemd's default is 1024). */
    struct rlimit saved;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &saved), 0);
    if (saved.rlim_max < (rlim_t)N_ATTACK + 256)
        fail_msg("RLIMIT_NOFILE hard limit %llu: the test needs %d (ulimit -Hn)",
                 (unsigned long long)saved.rlim_max, N_ATTACK + 256);
    struct rlimit low = {.rlim_cur = 1024, .rlim_max = saved.rlim_max};
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
    struct zh_broker b;
    struct zh_broker_opts o = {.redis_url = rd.url, .with_keys = 1, .policy = policy_doc};
    zh_broker_start(&b, &o); /* default connection settings */
    struct rlimit high = {.rlim_cur = saved.rlim_max, .rlim_max = saved.rlim_max};
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &high), 0);
    struct za_agent worker;
    za_enroll(&b, &worker, "worker");

    /* the broker made room for its connection limit (4096 by default) */
    long nofile = broker_nofile(&b);
    print_message("broker RLIMIT_NOFILE soft limit: %ld\n", nofile);
    assert_true(nofile >= 4096);

    /* one address opens more connections than the broker had descriptors */
    static int fds[N_ATTACK];
    uint64_t t0 = now_ms();
    for (int i = 0; i < N_ATTACK; i++)
        fds[i] = connect_from(&b, ATTACKER);
    print_message("%d connections from %s in %llu ms\n", N_ATTACK, ATTACKER,
                  (unsigned long long)(now_ms() - t0));
    usleep(500000);

    /* a normal agent on another address is served, and quickly */
    uint64_t worst = 0;
    for (int i = 0; i < 10; i++) {
        struct zh_resp r;
        uint64_t t = now_ms();
        long s = i % 2 ? (zh_get(&b, "/readyz", &r), r.status)
                       : za_token(&b, &worker, "svc", "svc%3Acall", &r, NULL, 0);
        uint64_t took = now_ms() - t;
        if (s != 200)
            fail_msg("normal client: HTTP %ld after %llu ms %s", s, (unsigned long long)took,
                     r.body ? r.body : "");
        zh_resp_free(&r);
        worst = took > worst ? took : worst;
    }
    print_message("normal client: slowest answer %llu ms\n", (unsigned long long)worst);
    assert_true(worst < 2000);

    /* the attacker holds at most its per-IP share; the rest was closed */
    int open = 0;
    for (int tries = 0; tries < 100; tries++) {
        open = still_open(fds, N_ATTACK);
        if (open <= DEFAULT_PER_IP)
            break;
        usleep(20000);
    }
    print_message("attacker connections still open: %d of %d\n", open, N_ATTACK);
    assert_true(open <= DEFAULT_PER_IP);
    assert_true(open > 0);
    for (int i = 0; i < N_ATTACK; i++)
        close(fds[i]);

    za_free(&worker);
    assert_int_equal(zh_broker_stop(&b), 0);
    zh_rmtree(b.dir);
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &saved), 0);
}

/* ---- malformed UTF-8 in parameters ------------------------------------------ */

static struct zh_broker *ub;

static int quarantined(void *name)
{
    char path[128];
    snprintf(path, sizeof(path), "/v1/agents/%s", (const char *)name);
    struct zh_resp r;
    assert_int_equal(zh_admin(ub, "GET", path, NULL, &r), 0);
    assert_int_equal(r.status, 200);
    json_t *j = za_json(&r);
    int v = json_is_true(json_object_get(j, "quarantined"));
    json_decref(j);
    zh_resp_free(&r);
    return v;
}

static void test_malformed_utf8_is_invalid_request(void **state)
{
    (void)state;
    static struct zh_broker b;
    ub = &b;
    const char *args[] = {"--detect-denials", "3", NULL};
    struct zh_broker_opts o = {
        .redis_url = rd.url, .with_keys = 1, .policy = policy_doc, .extra_args = args};
    zh_broker_start(&b, &o);
    struct za_agent p, d;
    za_enroll(&b, &p, "prober");
    za_enroll(&b, &d, "denied");

    /* scope, audience, resource with bytes that are not UTF-8 once decoded */
    static const struct {
        const char *audience, *scope, *extra;
    } bad[] = {
        {"%FF", "svc%3Acall", ""},
        {"sv%C3%28c", "svc%3Acall", ""},
        {"svc", "svc%3Acall", "&resource=%C3%28"},
        {"svc", "svc%3Acall", "&resource=%FF"},
        {"svc", "svc%3Acall", "&resource=a%ED%A0%80"},
        {"svc", "svc%3Ac%C3%28all", ""},
        {"svc%C0%AF", "svc%3Acall", ""},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char form[2048];
        snprintf(form, sizeof(form),
                 "grant_type=urn%%3Aietf%%3Aparams%%3Aoauth%%3Agrant-type%%3Atoken-exchange"
                 "&client_assertion_type=%s&client_assertion=%s&audience=%s&scope=%s%s",
                 ZA_SESSION_TYPE, p.session, bad[i].audience, bad[i].scope, bad[i].extra);
        struct zh_resp r;
        za_post_form(&b, "/v1/token", form, &r);
        print_message("audience=%s scope=%s%s: %ld %s\n", bad[i].audience, bad[i].scope,
                      bad[i].extra, r.status, r.body);
        za_expect_error(&r, 400, "invalid_request");
        assert_non_null(strstr(r.body, "is not valid UTF-8"));
        zh_resp_free(&r);
    }
    /* the same in introspection and revocation */
    const char *paths[] = {"/v1/introspect", "/v1/revoke"};
    for (size_t i = 0; i < 2; i++) {
        char form[1024];
        snprintf(form, sizeof(form), "client_assertion_type=%s&client_assertion=%s&token=%%FF",
                 ZA_SESSION_TYPE, p.session);
        struct zh_resp r;
        za_post_form(&b, paths[i], form, &r);
        za_expect_error(&r, 400, "invalid_request");
        zh_resp_free(&r);
    }

    /* a control: real denials of another agent reach the detectors */
    for (int i = 0; i < 3; i++) {
        struct zh_resp r;
        za_token(&b, &d, "other", "svc%3Acall", &r, NULL, 0);
        za_expect_error(&r, 403, "access_denied");
        zh_resp_free(&r);
    }
    assert_true(za_wait(quarantined, "denied", 5000));

    /* the malformed requests were not denials: no audit line, no detector event */
    assert_false(quarantined("prober"));
    char *audit = za_audit_text(&b);
    const char *line = audit;
    int denials = 0;
    while ((line = strstr(line, "\"event\":\"token.denied\"")) != NULL) {
        denials++;
        line++;
    }
    assert_int_equal(denials, 3); /* the control's */
    free(audit);
    struct zh_resp r;
    assert_int_equal(za_token(&b, &p, "svc", "svc%3Acall", &r, NULL, 0), 200);
    zh_resp_free(&r);

    za_free(&p);
    za_free(&d);
    assert_int_equal(zh_broker_stop(&b), 0);
    zh_rmtree(b.dir);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_malformed_utf8_is_invalid_request),
        cmocka_unit_test(test_one_address_cannot_lock_out_others),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
