/* test_config.c - broker configuration: defaults, flags, file, errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "broker/config.h"

static char errbuf[512];

static ztb_err args(struct broker_config *c, int argc, const char *const *argv)
{
    int exit_now;
    broker_config_defaults(c);
    return broker_config_parse_args(c, argc, (char **)argv, &exit_now, errbuf, sizeof(errbuf));
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_defaults(void **state)
{
    (void)state;
    struct broker_config c;
    broker_config_defaults(&c);
    assert_string_equal(c.listen_host, "127.0.0.1");
    assert_int_equal(c.listen_port, 8443);
    assert_int_equal(c.max_body, 16384);
    /* one address cannot hold every connection slot by default */
    assert_int_equal(c.connection_limit, 4096);
    assert_int_equal(c.per_ip_connection_limit, 128);
    assert_string_equal(c.redis_url, "");
    assert_string_equal(c.user, "ztb");
    assert_int_equal(c.log_level, ZTB_LOG_INFO);
}

static void test_flags(void **state)
{
    (void)state;
    struct broker_config c;
    const char *a[] = {"ztb-broker",     "--listen",  "[::1]:9000",
                       "--max-body=100", "--redis",   "unix:///tmp/r.sock",
                       "--log-level",    "debug",     "--log_format",
                       "text",           "--threads", "3"};
    assert_int_equal(args(&c, 12, a), ZTB_OK);
    assert_string_equal(c.listen_host, "::1");
    assert_int_equal(c.listen_port, 9000);
    assert_int_equal(c.max_body, 100);
    assert_string_equal(c.redis_url, "unix:///tmp/r.sock");
    assert_int_equal(c.log_level, ZTB_LOG_DEBUG);
    assert_int_equal(c.log_format, ZTB_LOG_TEXT);
    assert_int_equal(c.threads, 3);
}

static void test_bad_flags(void **state)
{
    (void)state;
    struct broker_config c;
    const struct {
        const char *const argv[3];
        int argc;
        const char *msg;
    } cases[] = {
        {{"b", "--listen", "nohost"}, 3, "expected HOST:PORT"},
        {{"b", "--listen", ":80"}, 3, "bad host"},
        {{"b", "--listen", "h:65536"}, 3, "expected HOST:PORT"},
        {{"b", "--listen", "h:-1"}, 3, "expected HOST:PORT"},
        {{"b", "--threads", "1000"}, 3, "from 0 to 256"},
        {{"b", "--threads", " 2"}, 3, "expected a number"},
        {{"b", "--threads", "2x"}, 3, "expected a number"},
        {{"b", "--max-body", "99999999999999999999999"}, 3, "expected a number"},
        {{"b", "--log-level", "loud"}, 3, "log_level"},
        {{"b", "--log-format", "xml"}, 3, "log_format"},
        {{"b", "--nope", "1"}, 3, "unknown option"},
        {{"b", "stray", ""}, 2, "unexpected argument"},
        /* a stray value may be a credential (a Redis URL with its
         * password): it is never echoed */
        {{"b", "redis://ztb:SECRETPW@h:6379", ""}, 2, "argument 1"},
        {{"b", "--threads", ""}, 2, "needs a value"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        errbuf[0] = '\0';
        assert_int_equal(args(&c, cases[i].argc, cases[i].argv), ZTB_ERR_INVALID_ARG);
        if (strstr(errbuf, cases[i].msg) == NULL)
            fail_msg("case %zu: '%s' does not say '%s'", i, errbuf, cases[i].msg);
        if (strstr(errbuf, "SECRETPW") != NULL)
            fail_msg("case %zu: '%s' echoes the value", i, errbuf);
    }
    /* an over-long string value is refused, not truncated */
    char longv[600];
    memset(longv, 'x', sizeof(longv) - 1);
    longv[sizeof(longv) - 1] = '\0';
    const char *a[] = {"b", "--state-dir", longv};
    assert_int_equal(args(&c, 3, a), ZTB_ERR_INVALID_ARG);
    assert_non_null(strstr(errbuf, "longer than"));
}

static void test_file_and_precedence(void **state)
{
    (void)state;
    char path[] = "/tmp/ztb-conf-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    write_file(path, "# ztb-broker config\n\n  listen = 0.0.0.0:1234  \n"
                     "max_body=2048\r\nredis = redis://:pw@db.internal:6380/2\n"
                     "log-level = warn # not a comment: part of the value\n");
    struct broker_config c;
    const char *a[] = {"b", "--config", path};
    assert_int_equal(args(&c, 3, a), ZTB_ERR_INVALID_ARG); /* trailing "# ..." is a value */
    assert_non_null(strstr(errbuf, ":6: log_level"));

    write_file(path, "listen = 0.0.0.0:1234\nmax_body=2048\n");
    const char *b[] = {"b", "--max-body", "4096", "--config", path};
    assert_int_equal(args(&c, 5, b), ZTB_OK);
    assert_int_equal(c.listen_port, 1234);
    assert_int_equal(c.max_body, 4096); /* the flag wins wherever it appears */

    write_file(path, "threads = 2\nthreads = 3\n");
    assert_int_equal(args(&c, 3, a), ZTB_ERR_INVALID_ARG);
    assert_non_null(strstr(errbuf, ":2: 'threads' set twice"));

    write_file(path, "threads 2\n");
    assert_int_equal(args(&c, 3, a), ZTB_ERR_INVALID_ARG);
    assert_non_null(strstr(errbuf, ":1: expected `name = value`"));

    write_file(path, "bogus = 1\n");
    assert_int_equal(args(&c, 3, a), ZTB_ERR_INVALID_ARG);
    assert_non_null(strstr(errbuf, ":1: unknown option 'bogus'"));

    char *huge = malloc(5000);
    memset(huge, 'a', 4999);
    huge[4999] = '\0';
    write_file(path, huge);
    free(huge);
    assert_int_equal(args(&c, 3, a), ZTB_ERR_INVALID_ARG);
    assert_non_null(strstr(errbuf, "line longer than"));

    /* a Redis password in a file every local user may read: refused,
     * naming the mode and the fix (never the password) */
    write_file(path, "redis = redis://ztb:s3cret@db.internal:6380/2\n");
    assert_int_equal(chmod(path, 0644), 0);
    assert_int_equal(args(&c, 3, a), ZTB_ERR_INVALID_ARG);
    assert_non_null(strstr(errbuf, "mode 644"));
    assert_non_null(strstr(errbuf, "chmod o-r"));
    assert_null(strstr(errbuf, "s3cret"));
    write_file(path, "redis = redis+sentinel://s1:26379/m?sentinel_password=s3cret\n");
    assert_int_equal(chmod(path, 0644), 0);
    assert_int_equal(args(&c, 3, a), ZTB_ERR_INVALID_ARG);
    write_file(path, "redis = redis://ztb:s3cret@db.internal:6380/2\n");
    assert_int_equal(chmod(path, 0640), 0);
    assert_int_equal(args(&c, 3, a), ZTB_OK);
    /* no password: the mode is the operator's business */
    write_file(path, "redis = redis://db.internal:6380/2\n");
    assert_int_equal(chmod(path, 0644), 0);
    assert_int_equal(args(&c, 3, a), ZTB_OK);

    unlink(path);
    assert_int_equal(args(&c, 3, a), ZTB_ERR_IO);
    assert_non_null(strstr(errbuf, "No such file"));
}

/* A listener on the network without --issuer would mint tokens every
 * gateway refuses (iss https://0.0.0.0:8443): refused at start, naming the fix. */
static void test_network_listener_needs_issuer(void **state)
{
    (void)state;
    struct broker_config c;
    char err[512];
    broker_config_defaults(&c);
    assert_int_equal(broker_config_check(&c, err, sizeof(err)), ZTB_OK); /* 127.0.0.1 */
    const char *loopback[] = {"127.0.0.1:8443", "127.8.9.10:1", "[::1]:8443", "localhost:8443"};
    for (size_t i = 0; i < sizeof(loopback) / sizeof(loopback[0]); i++) {
        broker_config_defaults(&c);
        assert_int_equal(broker_config_set(&c, "listen", loopback[i], err, sizeof(err)), ZTB_OK);
        assert_int_equal(broker_config_check(&c, err, sizeof(err)), ZTB_OK);
    }
    const char *network[] = {"0.0.0.0:8443", "[::]:8443", "10.1.2.3:8443", "broker.example.org:1"};
    for (size_t i = 0; i < sizeof(network) / sizeof(network[0]); i++) {
        broker_config_defaults(&c);
        assert_int_equal(broker_config_set(&c, "listen", network[i], err, sizeof(err)), ZTB_OK);
        assert_int_equal(broker_config_check(&c, err, sizeof(err)), ZTB_ERR_INVALID_ARG);
        assert_non_null(strstr(err, "--issuer"));
        assert_non_null(strstr(err, c.listen_host));
        assert_int_equal(
            broker_config_set(&c, "issuer", "https://broker.example.org:8443", err, sizeof(err)),
            ZTB_OK);
        assert_int_equal(broker_config_check(&c, err, sizeof(err)), ZTB_OK);
    }
}

/* --approval-webhook: off by default; http:// to a host off loopback
 * refused unless allowed; attempts, timeout and back-off at least 1. */
static void test_approval_webhook(void **state)
{
    (void)state;
    struct broker_config c;
    char err[512];
    broker_config_defaults(&c);
    assert_string_equal(c.approval_webhook, "");
    assert_int_equal(c.approval_webhook_attempts, 8);
    assert_int_equal(c.approval_webhook_timeout_ms, 5000);
    assert_int_equal(
        broker_config_set(&c, "approval-webhook", "https://hooks.example.org/x", err, sizeof(err)),
        ZTB_OK);
    assert_int_equal(broker_config_check(&c, err, sizeof(err)), ZTB_OK);
    assert_int_equal(
        broker_config_set(&c, "approval_webhook", "http://hooks.example.org/x", err, sizeof(err)),
        ZTB_OK);
    assert_int_equal(broker_config_check(&c, err, sizeof(err)), ZTB_ERR_INVALID_ARG);
    assert_non_null(strstr(err, "approval_webhook: http:// to hooks.example.org"));
    assert_int_equal(broker_config_set(&c, "approval_webhook_allow_http", "1", err, sizeof(err)),
                     ZTB_OK);
    assert_int_equal(broker_config_check(&c, err, sizeof(err)), ZTB_OK);
    assert_int_equal(broker_config_set(&c, "approval_webhook_allow_http", "2", err, sizeof(err)),
                     ZTB_ERR_INVALID_ARG);
    assert_int_equal(
        broker_config_set(&c, "approval_webhook", "http://127.0.0.1:9/x", err, sizeof(err)),
        ZTB_OK);
    assert_int_equal(broker_config_set(&c, "approval_webhook_attempts", "0", err, sizeof(err)),
                     ZTB_OK);
    assert_int_equal(broker_config_check(&c, err, sizeof(err)), ZTB_ERR_INVALID_ARG);
}

/* --metrics-listen: off by default, HOST:PORT or [V6]:PORT, errors named;
 * --check-config is a switch. */
static void test_metrics_listen_and_check_config(void **state)
{
    (void)state;
    struct broker_config c;
    broker_config_defaults(&c);
    assert_string_equal(c.metrics_host, "");
    assert_int_equal(c.check_config, 0);
    const char *a[] = {"ztb-broker", "--metrics-listen", "[::1]:9100", "--check-config", NULL};
    assert_int_equal(args(&c, 4, a), ZTB_OK);
    assert_string_equal(c.metrics_host, "::1");
    assert_int_equal(c.metrics_port, 9100);
    assert_int_equal(c.check_config, 1);
    const char *bad[] = {"ztb-broker", "--metrics-listen", "nowhere", NULL};
    assert_int_equal(args(&c, 3, bad), ZTB_ERR_INVALID_ARG);
    assert_non_null(strstr(errbuf, "metrics_listen: expected HOST:PORT, got 'nowhere'"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_flags),
        cmocka_unit_test(test_bad_flags),
        cmocka_unit_test(test_file_and_precedence),
        cmocka_unit_test(test_network_listener_needs_issuer),
        cmocka_unit_test(test_metrics_listen_and_check_config),
        cmocka_unit_test(test_approval_webhook),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
