/*
 * test_check_config.c - `ztb-broker --check-config` (broker/check_config.c)
 * on configurations that cannot start: each problem is one FAIL line that
 * names the path and the fix, every check runs even after a failure, and
 * the result is 1. (The good case, with real keys and Redis, is
 * integration/test_service_manager.)
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "broker/check_config.h"

/* Run the checks on c; their output in a static buffer. */
static const char *run(struct broker_config *c, int *rc)
{
    static char text[8192];
    FILE *f = fmemopen(text, sizeof(text), "w");
    assert_non_null(f);
    *rc = broker_check_config(c, f);
    fclose(f);
    return text;
}

static void test_every_problem_named(void **state)
{
    (void)state;
    struct broker_config c;
    broker_config_defaults(&c);
    snprintf(c.state_dir, sizeof(c.state_dir), "/nonexistent/ztb");
    snprintf(c.listen_host, sizeof(c.listen_host), "0.0.0.0");
    snprintf(c.tls_cert_file, sizeof(c.tls_cert_file), "/nonexistent/tls.crt");
    snprintf(c.policy_file, sizeof(c.policy_file), "/nonexistent/policy.json");
    snprintf(c.redis_server, sizeof(c.redis_server), "/nonexistent/redis-server");
    int rc;
    const char *t = run(&c, &rc);
    assert_int_equal(rc, 1);
    assert_non_null(strstr(t, "FAIL config: listening on 0.0.0.0 (not loopback) needs an "
                              "explicit issuer"));
    assert_non_null(strstr(t, "FAIL state_dir: /nonexistent/ztb: No such file or directory "
                              "(create it as the service user's: install -d -o ztb -g ztb -m "
                              "0700 /nonexistent/ztb"));
    assert_non_null(strstr(t, "FAIL tls: tls_cert and tls_key go together"));
    assert_non_null(strstr(t, "FAIL policy: /nonexistent/policy.json: "));
    assert_non_null(strstr(t, "FAIL keys: no key store in /nonexistent/ztb/keys: create one as "
                              "the service user (sudo -u ztb ztbctl keys --dir "
                              "/nonexistent/ztb/keys init)"));
    assert_non_null(strstr(t, "FAIL redis: no redis set and /nonexistent/redis-server is not"));
    assert_non_null(strstr(t, "ztb-broker: 6 problems found"));
}

static void test_policy_none_is_not_a_failure(void **state)
{
    (void)state;
    struct broker_config c;
    broker_config_defaults(&c);
    snprintf(c.state_dir, sizeof(c.state_dir), "/nonexistent/ztb");
    int rc;
    const char *t = run(&c, &rc);
    assert_int_equal(rc, 1); /* the state dir */
    assert_non_null(strstr(t, "ok   config: options consistent\n"));
    assert_non_null(strstr(t, "ok   tls: off"));
    assert_non_null(strstr(t, "ok   policy: none set: every token request will be denied\n"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_problem_named),
        cmocka_unit_test(test_policy_none_is_not_a_failure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
