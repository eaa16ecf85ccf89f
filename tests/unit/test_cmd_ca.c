/*
 * test_cmd_ca.c - `ztbctl ca` end to end: init a root CA and an
 * intermediate under a root made with the openssl tool, show them (table,
 * --json, --pem), and the refusals.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <sys/wait.h>

#include <jansson.h>

#include "pki_test.h"

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wformat-truncation"
#endif

static char *dir;
static char out[65536];

static int ztbctl(const char *args)
{
    const char *bd = getenv("ZTB_BUILD_DIR");
    char cmd[4096];
    snprintf(cmd, sizeof(cmd), "ZTB_KEY_DIR= ZTB_PASSPHRASE_FILE= '%s/bin/ztbctl' %s 2>/dev/null",
             bd ? bd : ".", args);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t n = fread(out, 1, sizeof(out) - 1, p);
    out[n] = '\0';
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int setup(void **state)
{
    (void)state;
    dir = pkt_tmpdir();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    pkt_rmdir(dir);
    return 0;
}

static void test_root(void **state)
{
    (void)state;
    char args[4096], pf[1024];
    snprintf(pf, sizeof(pf), "%s/pass", dir);
    assert_int_equal(pkt_write(pf, "pw\n", 3, 0600), 0);
    assert_int_equal(ztbctl("ca --help"), 0);
    snprintf(args, sizeof(args), "ca --dir %s/r init", dir);
    assert_int_equal(ztbctl(args), 2); /* no trust domain */
    snprintf(args, sizeof(args), "ca --dir %s/r init --trust-domain Bad_Domain", dir);
    assert_int_equal(ztbctl(args), 1);
    snprintf(args, sizeof(args),
             "ca --dir %s/r --passphrase-file %s init --trust-domain example.org "
             "--validity-days 30",
             dir, pf);
    assert_int_equal(ztbctl(args), 0);
    assert_non_null(strstr(out, "root agent CA for trust domain example.org"));
    assert_int_equal(ztbctl(args), 1); /* not twice */

    /* show needs no passphrase */
    snprintf(args, sizeof(args), "ca --dir %s/r show", dir);
    assert_int_equal(ztbctl(args), 0);
    assert_non_null(strstr(out, "root (self-signed)"));
    assert_non_null(strstr(out, "example.org"));
    snprintf(args, sizeof(args), "--json ca --dir %s/r show --pem", dir);
    assert_int_equal(ztbctl(args), 0);
    json_error_t e;
    json_t *j = json_loads(out, 0, &e);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "kind")), "root");
    assert_false(json_is_true(json_object_get(j, "expired")));
    assert_non_null(
        strstr(json_string_value(json_object_get(j, "certificate_pem")), "BEGIN CERTIFICATE"));
    json_decref(j);
    assert_null(strstr(out, "PRIVATE"));
    snprintf(args, sizeof(args), "ca --dir %s/none show", dir);
    assert_int_equal(ztbctl(args), 1);
}

static void test_intermediate(void **state)
{
    (void)state;
    char cmd[4096], args[4096];
    /* the operator's root, made with the openssl tool */
    snprintf(cmd, sizeof(cmd),
             "cd %s && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-384 -nodes "
             "-keyout root.key -out root.crt -days 3650 -subj /CN=Operator\\ Root "
             "-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign "
             ">/dev/null 2>&1 && chmod 600 root.key root.crt",
             dir);
    assert_int_equal(system(cmd), 0);
    snprintf(args, sizeof(args),
             "ca --dir %s/i init --trust-domain example.org --root-cert %s/root.crt", dir, dir);
    assert_int_equal(ztbctl(args), 2); /* the key is missing */
    snprintf(args, sizeof(args),
             "ca --dir %s/i init --trust-domain example.org --root-cert %s/root.crt "
             "--root-key %s/root.key",
             dir, dir, dir);
    assert_int_equal(ztbctl(args), 0);
    assert_non_null(strstr(out, "intermediate agent CA"));
    snprintf(args, sizeof(args), "ca --dir %s/i show", dir);
    assert_int_equal(ztbctl(args), 0);
    assert_non_null(strstr(out, "intermediate"));
    assert_non_null(strstr(out, "CN=Operator Root"));
    /* the root key is not copied anywhere */
    snprintf(cmd, sizeof(cmd), "grep -rl 'PRIVATE KEY' %s/i/ca | grep -v ca.key.pem", dir);
    assert_int_not_equal(system(cmd), 0);
    /* a root key file others can read is refused */
    snprintf(cmd, sizeof(cmd), "%s/root.key", dir);
    assert_int_equal(chmod(cmd, 0644), 0);
    snprintf(args, sizeof(args),
             "ca --dir %s/i2 init --trust-domain example.org --root-cert %s/root.crt "
             "--root-key %s/root.key",
             dir, dir, dir);
    assert_int_equal(ztbctl(args), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_root),
        cmocka_unit_test(test_intermediate),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
