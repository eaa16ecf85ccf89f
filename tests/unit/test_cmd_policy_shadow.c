/*
 * test_cmd_policy_shadow.c - `ztbctl policy shadow` and `ztbctl policy diff`
 * where they need no broker: usage and exit codes, a candidate refused here
 * (with its problems, before the broker is asked), an unreachable broker, and
 * the rule-by-rule diff of two files. The admin calls themselves run against
 * the real broker in tests/integration/test_shadow_mode.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

/* Run `ztbctl ARGS` (a shell fragment); capture stdout+stderr; return the exit status. */
static int run(const char *args, char *out, size_t cap)
{
    const char *bin = getenv("ZTB_BUILD_DIR");
    const char *src = getenv("ZTB_SOURCE_DIR");
    char cmd[8192];
    snprintf(cmd, sizeof(cmd),
             "cd '%s' && ZTB_ADMIN_SOCKET=/nonexistent/admin.sock '%s/bin/ztbctl' %s 2>&1",
             src ? src : "..", bin ? bin : ".", args);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t n = fread(out, 1, cap - 1, p);
    out[n] = '\0';
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static char out[1 << 16];

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_usage(void **state)
{
    (void)state;
    assert_int_equal(run("policy shadow", out, sizeof(out)), 2);
    assert_int_equal(run("policy shadow --help", out, sizeof(out)), 0);
    assert_non_null(strstr(out, "promote"));
    assert_int_equal(run("policy shadow load", out, sizeof(out)), 2);
    assert_int_equal(run("policy shadow frob", out, sizeof(out)), 2);
    assert_int_equal(run("policy --help", out, sizeof(out)), 0);
    assert_non_null(strstr(out, "shadow"));
}

static void test_load_refused_here(void **state)
{
    (void)state;
    char path[] = "/tmp/ztb-shadow-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    write_file(path, "{\"version\": 1, \"trust_domain\": \"example.org\", \"rules\": [{\"id\": "
                     "\"r\", \"effect\": \"allow\"}]}");
    char args[512];
    snprintf(args, sizeof(args), "policy shadow load %s", path);
    assert_int_equal(run(args, out, sizeof(out)), 1);
    assert_non_null(strstr(out, "refused"));
    assert_non_null(strstr(out, "nothing changed"));
    assert_null(strstr(out, "admin socket")); /* refused before the broker was asked */
    /* a good file and no broker: the socket is named */
    snprintf(args, sizeof(args), "policy shadow load %s/examples/policy/fleet.json",
             getenv("ZTB_SOURCE_DIR") ? getenv("ZTB_SOURCE_DIR") : "..");
    assert_int_equal(run(args, out, sizeof(out)), 1);
    assert_non_null(strstr(out, "/nonexistent/admin.sock"));
    assert_int_equal(run("policy shadow report", out, sizeof(out)), 1);
    assert_non_null(strstr(out, "/nonexistent/admin.sock"));
    unlink(path);
}

static void test_diff(void **state)
{
    (void)state;
    char a[] = "/tmp/ztb-diff-a-XXXXXX", b[] = "/tmp/ztb-diff-b-XXXXXX";
    int fa = mkstemp(a), fb = mkstemp(b);
    assert_true(fa >= 0 && fb >= 0);
    close(fa);
    close(fb);
    char args[1024];
    const char *src = getenv("ZTB_SOURCE_DIR") ? getenv("ZTB_SOURCE_DIR") : "..";
    /* the example with one rule's ttl changed */
    snprintf(args, sizeof(args),
             "cp '%s/examples/policy/fleet.json' %s && "
             "sed 's/\"ttl\": 120}/\"ttl\": 60}/' '%s/examples/policy/fleet.json' > %s",
             src, a, src, b);
    assert_int_equal(system(args), 0);
    snprintf(args, sizeof(args), "policy diff %s %s", a, b);
    assert_int_equal(run(args, out, sizeof(out)), 0);
    assert_non_null(strstr(out, "rules_changed     payments-read"));
    assert_null(strstr(out, "rules_added"));
    snprintf(args, sizeof(args), "policy diff %s %s", a, a);
    assert_int_equal(run(args, out, sizeof(out)), 0);
    assert_non_null(strstr(out, "no change"));
    snprintf(args, sizeof(args), "--json policy diff %s %s", a, b);
    assert_int_equal(run(args, out, sizeof(out)), 0);
    assert_non_null(strstr(out, "\"rules_changed\": ["));
    assert_int_equal(run("policy diff onlyone", out, sizeof(out)), 2);
    unlink(a);
    unlink(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_usage),
        cmocka_unit_test(test_load_refused_here),
        cmocka_unit_test(test_diff),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
