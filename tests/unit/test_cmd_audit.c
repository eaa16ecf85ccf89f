/*
 * test_cmd_audit.c - `ztbctl audit` as an operator runs it: verify and
 * anchor on a log the writer made (the chain and its checkpoints), tail
 * with its filters, export as RFC 5424 syslog, and usage errors.
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

#include "audit/chain.h"

/* Run `ztbctl ARGS`; capture stdout+stderr; return the exit status. */
static int run(const char *args, char *out, size_t cap)
{
    const char *bin = getenv("ZTB_BUILD_DIR");
    char cmd[8192];
    snprintf(cmd, sizeof(cmd), "'%s/bin/ztbctl' %s 2>&1", bin ? bin : ".", args);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t n = fread(out, 1, cap - 1, p);
    out[n] = '\0';
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static char out[1 << 16];
static char g_path[64];

/* A chained log of these bodies (the members after prev). */
static void write_log(const char *const *bodies, int n)
{
    FILE *f = fopen(g_path, "w");
    assert_non_null(f);
    char prev[AUDIT_HASH_HEX + 1], line[1024];
    memcpy(prev, audit_genesis, sizeof(prev));
    for (int i = 0; i < n; i++) {
        int w = snprintf(line, sizeof(line),
                         "{\"seq\":%d,\"ts\":\"2026-12-03T18:00:0%d.000Z\",\"prev\":\"%s\","
                         "\"replica\":\"r1\",%s}",
                         i + 1, i % 10, prev, bodies[i]);
        audit_chain_hash(line, (size_t)w, prev);
        fprintf(f, "%s\n", line);
    }
    fclose(f);
}

static int setup(void **state)
{
    (void)state;
    snprintf(g_path, sizeof(g_path), "/tmp/ztb-test-cmd-audit.XXXXXX");
    int fd = mkstemp(g_path);
    assert_true(fd >= 0);
    close(fd);
    static const char *const bodies[] = {
        "\"event\":\"audit.opened\",\"actor\":\"broker\",\"pid\":1",
        "\"event\":\"token.issued\",\"actor\":\"agent:alice\",\"agent\":\"alice\","
        "\"action\":\"payments:read\",\"jti\":\"j1\"",
        "\"event\":\"token.denied\",\"actor\":\"agent:bob\",\"agent\":\"bob\","
        "\"action\":\"payments:refund\",\"reason\":\"no rule\"",
        "\"event\":\"token.issued\",\"actor\":\"agent:alice\",\"agent\":\"alice\","
        "\"action\":\"crm:read\",\"jti\":\"j2\"",
        "\"event\":\"revocation.applied\",\"actor\":\"operator:uid=0\",\"response\":"
        "\"quarantine\",\"agent\":\"bob\",\"reason\":\"a \\\"quoted\\\" ] reason\"",
    };
    write_log(bodies, 5);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    unlink(g_path);
    return 0;
}

static void test_verify_says_what_is_not_proven(void **state)
{
    (void)state;
    char args[256];
    snprintf(args, sizeof(args), "audit verify %s", g_path);
    assert_int_equal(run(args, out, sizeof(out)), 0);
    assert_non_null(strstr(out, "chain intact from seq 1 to 5 (5 records, replica \"r1\")"));
    assert_non_null(strstr(out, "not proven: no signed checkpoint"));
    snprintf(args, sizeof(args), "audit anchor %s", g_path);
    assert_int_equal(run(args, out, sizeof(out)), 1);
    assert_non_null(strstr(out, "no signed checkpoint"));
    snprintf(args, sizeof(args), "audit verify %s --anchor nonsense", g_path);
    assert_int_equal(run(args, out, sizeof(out)), 2);
    snprintf(args, sizeof(args), "--json audit verify %s", g_path);
    assert_int_equal(run(args, out, sizeof(out)), 0);
    assert_non_null(strstr(out, "\"proven_to\": 0"));
}

static void test_tail_filters(void **state)
{
    (void)state;
    char args[256];
    snprintf(args, sizeof(args), "audit tail %s --agent alice", g_path);
    assert_int_equal(run(args, out, sizeof(out)), 0);
    assert_non_null(strstr(out, "jti=j1"));
    assert_non_null(strstr(out, "jti=j2"));
    assert_null(strstr(out, "bob"));
    snprintf(args, sizeof(args), "audit tail %s --agent alice -n 1", g_path);
    assert_int_equal(run(args, out, sizeof(out)), 0);
    assert_null(strstr(out, "jti=j1"));
    assert_non_null(strstr(out, "jti=j2"));
    snprintf(args, sizeof(args), "audit tail %s --outcome denied", g_path);
    assert_int_equal(run(args, out, sizeof(out)), 0);
    assert_non_null(strstr(out, "token.denied"));
    assert_non_null(strstr(out, "reason=no rule"));
    assert_null(strstr(out, "token.issued"));
    snprintf(args, sizeof(args), "audit tail %s --action crm:read", g_path);
    assert_int_equal(run(args, out, sizeof(out)), 0);
    assert_non_null(strstr(out, "jti=j2"));
    assert_null(strstr(out, "jti=j1"));
    snprintf(args, sizeof(args), "--json audit tail %s --agent bob", g_path);
    assert_int_equal(run(args, out, sizeof(out)), 0);
    assert_non_null(strstr(out, "{\"seq\":3,"));
    assert_non_null(strstr(out, "{\"seq\":5,"));
    snprintf(args, sizeof(args), "audit tail %s -n x", g_path);
    assert_int_equal(run(args, out, sizeof(out)), 2);
    assert_int_equal(run("audit tail /nonexistent/audit.log", out, sizeof(out)), 1);
}

static void test_export_syslog(void **state)
{
    (void)state;
    char args[256];
    snprintf(args, sizeof(args), "audit export %s --format syslog", g_path);
    assert_int_equal(run(args, out, sizeof(out)), 0);
    /* authpriv.notice for an issued token, authpriv.warning for a denial */
    assert_non_null(strstr(out, "<85>1 2026-12-03T18:00:01.000Z r1 ztb-broker - token.issued "
                                "[ztb@32473 seq=\"2\" actor=\"agent:alice\"] {\"seq\":2,"));
    assert_non_null(strstr(out, "<84>1 2026-12-03T18:00:02.000Z r1 ztb-broker - token.denied "));
    assert_non_null(strstr(out, "actor=\"operator:uid=0\"] {\"seq\":5,"));
    snprintf(args, sizeof(args), "audit export %s --format syslog --outcome applied", g_path);
    assert_int_equal(run(args, out, sizeof(out)), 0);
    assert_non_null(strstr(out, "revocation.applied"));
    assert_null(strstr(out, "token."));
    snprintf(args, sizeof(args), "audit export %s --format cef", g_path);
    assert_int_equal(run(args, out, sizeof(out)), 2);
}

static void test_export_ocsf(void **state)
{
    (void)state;
    char args[256];
    snprintf(args, sizeof(args), "audit export %s --format ocsf --agent alice", g_path);
    assert_int_equal(run(args, out, sizeof(out)), 0);
    /* one JSON object per line: the issued token as Authorize Session */
    assert_non_null(strstr(out, "\"class_uid\":3003"));
    assert_non_null(strstr(out, "\"type_uid\":300301"));
    assert_non_null(strstr(out, "\"product\":{\"name\":\"ztb\",\"vendor_name\":\"ztb\"}"));
    assert_null(strstr(out, "\"seq\":5,")); /* the raw lines are not printed */
    for (const char *l = out; *l; l = strchr(l, '\n') + 1) {
        assert_int_equal(*l, '{');
        if (strchr(l, '\n') == NULL)
            break;
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_verify_says_what_is_not_proven),
        cmocka_unit_test(test_tail_filters),
        cmocka_unit_test(test_export_syslog),
        cmocka_unit_test(test_export_ocsf),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
