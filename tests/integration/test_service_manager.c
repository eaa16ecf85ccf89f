/*
 * test_service_manager.c - ztb-broker as a service: it tells systemd where it is
 * (sd_notify READY, WATCHDOG pings at half WatchdogSec, RELOADING around a
 * SIGHUP, STOPPING at SIGTERM), read here from a datagram socket given as
 * $NOTIFY_SOCKET as systemd would; and `--check-config` checks options,
 * state, policy, keys and Redis, exits 0 when all is well and 1 naming each
 * problem otherwise.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"

static const char *policy_doc =
    "{\"version\": 1, \"trust_domain\": \"ztb.local\",\n"
    " \"settings\": {\"max_ttl\": 300, \"default_ttl\": 60,\n"
    "   \"rate_limits\": {\"per_agent\": {\"rate\": 60, \"burst\": 10, \"period\": 60},\n"
    "                   \"per_action\": {\"rate\": 60, \"burst\": 10, \"period\": 60}}},\n"
    " \"rules\": [{\"id\": \"r\", \"effect\": \"allow\", \"agents\": [\"bot\"],\n"
    "   \"actions\": [\"a:b\"], \"audiences\": [\"x\"], \"resources\": [\"**\"]}]}\n";

static struct zh_redis rd;

/* The next notification on fd that contains want (others are skipped),
 * within ms; fails the test if none comes. */
static void expect_notify(int fd, const char *want, unsigned ms)
{
    struct timeval tv = {0, 100000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    char msg[512];
    for (unsigned waited = 0; waited < ms; waited += 100) {
        ssize_t n = recv(fd, msg, sizeof(msg) - 1, 0);
        if (n < 0)
            continue;
        msg[n] = '\0';
        if (strstr(msg, want) != NULL)
            return;
    }
    fail_msg("no \"%s\" from the broker within %u ms", want, ms);
}

static void test_sd_notify(void **state)
{
    (void)state;
    char dir[256], path[300];
    zh_tmpdir(dir, sizeof(dir));
    snprintf(path, sizeof(path), "%s/notify.sock", dir);
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    assert_true(strlen(path) < sizeof(a.sun_path));
    memcpy(a.sun_path, path, strlen(path) + 1);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    chmod(path, 0666); /* the broker drops to its service user */
    setenv("NOTIFY_SOCKET", path, 1);
    setenv("WATCHDOG_USEC", "400000", 1); /* pings every 200 ms */
    struct zh_broker b;
    struct zh_broker_opts o = {.with_keys = 1, .policy = policy_doc, .redis_url = rd.url};
    zh_broker_start(&b, &o);
    unsetenv("NOTIFY_SOCKET");
    unsetenv("WATCHDOG_USEC");
    char ready[64];
    snprintf(ready, sizeof(ready), "READY=1\nSTATUS=serving on port %u", (unsigned)b.port);
    expect_notify(fd, ready, 3000);
    expect_notify(fd, "WATCHDOG=1", 1000);
    expect_notify(fd, "WATCHDOG=1", 1000);
    kill(b.pid, SIGHUP);
    expect_notify(fd, "RELOADING=1", 2000);
    expect_notify(fd, "READY=1", 2000);
    pid_t pid = b.pid;
    kill(pid, SIGTERM);
    expect_notify(fd, "STOPPING=1", 3000);
    assert_int_equal(zh_broker_stop(&b), 0);
    close(fd);
    zh_rmtree(dir);
    zh_rmtree(b.dir);
}

/* Run ztb-broker --check-config with the broker's state and these extra
 * options; returns the exit status, *out its output (caller frees). */
static int check(const struct zh_broker *b, const char *policy, const char *redis, const char *keys,
                 char **out)
{
    const char *argv[24] = {zh_bin("ztb-broker"),
                            "--check-config",
                            "--state-dir",
                            b->state,
                            "--redis",
                            redis,
                            "--policy",
                            policy};
    int n = 8;
    if (geteuid() == 0) {
        argv[n++] = "--user";
        argv[n++] = "nobody";
    }
    if (keys != NULL) {
        argv[n++] = "--keys";
        argv[n++] = keys;
    }
    argv[n] = NULL;
    char *err = NULL;
    int rc = zh_run(argv, out, &err);
    free(err);
    return rc;
}

static void test_check_config(void **state)
{
    (void)state;
    struct zh_broker b;
    struct zh_broker_opts o = {.with_keys = 1, .policy = policy_doc, .redis_url = rd.url};
    zh_broker_start(&b, &o);
    char policy[400], other[400];
    snprintf(policy, sizeof(policy), "%s/policy.json", b.dir);
    char *out;
    int rc = check(&b, policy, rd.url, NULL, &out);
    if (rc != 0)
        fail_msg("--check-config on a good configuration (status %d):\n%s", rc, out);
    assert_non_null(strstr(out, "ok   config: "));
    assert_non_null(strstr(out, "ok   policy: "));
    assert_non_null(strstr(out, "ok   keys: "));
    assert_non_null(strstr(out, "ok   ca: "));
    assert_non_null(strstr(out, "PING answered"));
    assert_non_null(strstr(out, "the configuration is good"));
    free(out);

    /* a policy of another trust domain (a start refuses it), a Redis
     * nobody answers, a key store that is not there: all three named */
    snprintf(other, sizeof(other), "%s/other.json", b.dir);
    FILE *f = fopen(other, "w");
    assert_non_null(f);
    char *doc = strdup(policy_doc);
    memcpy(strstr(doc, "ztb.local"), "ztb.other", 9); /* same length */
    fputs(doc, f);
    free(doc);
    fclose(f);
    chmod(other, 0644);
    char nokeys[400];
    snprintf(nokeys, sizeof(nokeys), "%s/no-keys", b.state);
    rc = check(&b, other, "redis://127.0.0.1:1", nokeys, &out);
    assert_int_equal(rc, 1);
    assert_non_null(strstr(out, "FAIL policy: "));
    if (strstr(out, "ztb.other") == NULL)
        fail_msg("the trust domain is not named:\n%s", out);
    assert_non_null(strstr(out, "FAIL redis: 127.0.0.1:1: "));
    assert_non_null(strstr(out, "FAIL keys: no key store in "));
    assert_non_null(strstr(out, "3 problems found"));
    free(out);
    assert_int_equal(zh_broker_stop(&b), 0);
    zh_rmtree(b.dir);
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

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sd_notify),
        cmocka_unit_test(test_check_config),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
