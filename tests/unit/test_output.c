/*
 * test_output.c - how ztbctl prints (cli/output.c): -o json|wide|name|table,
 * --no-headers, reals as typed, absent times as null, and `agent show` /
 * `signals show` views, run as an operator runs ztbctl against a scripted
 * admin server (tests/unit/admin_script.h).
 */
#define _GNU_SOURCE /* strcasestr */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "admin_script.h"

static char out[1 << 16];

/* Run `ztbctl --socket SOCK ARGS`; capture stdout+stderr; return the exit status. */
static int run(const char *sock, const char *args)
{
    const char *bin = getenv("ZTB_BUILD_DIR");
    char cmd[4096];
    snprintf(cmd, sizeof(cmd), "'%s/bin/ztbctl' --socket '%s' %s 2>&1", bin ? bin : ".", sock,
             args);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t n = fread(out, 1, sizeof(out) - 1, p);
    out[n] = '\0';
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Serve body once as a 200 answer and run ztbctl ARGS against it. */
static int answered(const char *body, const char *args)
{
    static char a[8192];
    snprintf(a, sizeof(a), "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n%s", strlen(body), body);
    struct server *s = server_start(a, 0);
    int rc = run(s->path, args);
    server_stop(s);
    return rc;
}

#define AGENTS                                                                                     \
    "{\"agents\":[{\"name\":\"bot\",\"status\":\"active\",\"generation\":3,"                       \
    "\"quarantined\":false,\"approval_required\":true,\"created\":1700000000,"                     \
    "\"spiffe_id\":\"spiffe://ztb.local/agent/bot\"},"                                             \
    "{\"name\":\"crm\",\"status\":\"disabled\",\"generation\":1,"                                  \
    "\"quarantined\":false,\"approval_required\":false,\"created\":1700000001,"                    \
    "\"spiffe_id\":\"spiffe://ztb.local/agent/crm\"}]}"

static void test_output_name(void **state)
{
    (void)state;
    assert_int_equal(answered(AGENTS, "agent list -o name"), 0);
    assert_string_equal(out, "bot\ncrm\n");
    /* the option after the command and in its joined spellings */
    assert_int_equal(answered(AGENTS, "agent list --output=name"), 0);
    assert_string_equal(out, "bot\ncrm\n");
    assert_int_equal(answered(AGENTS, "-oname agent list"), 0);
    assert_string_equal(out, "bot\ncrm\n");
}

static void test_no_headers(void **state)
{
    (void)state;
    assert_int_equal(answered(AGENTS, "agent list --no-headers"), 0);
    /* the columns are as wide as their cells (the header is not there) */
    assert_string_equal(out, "bot  active    3  no  yes  2023-11-14T22:13:20Z  "
                             "spiffe://ztb.local/agent/bot\n"
                             "crm  disabled  1  no  no   2023-11-14T22:13:21Z  "
                             "spiffe://ztb.local/agent/crm\n");
}

static void test_output_json_and_bad_format(void **state)
{
    (void)state;
    assert_int_equal(answered(AGENTS, "agent list -o json"), 0);
    assert_non_null(strstr(out, "\"name\": \"bot\""));
    assert_int_equal(out[0], '[');
    assert_int_equal(run("/nonexistent.sock", "agent list -o yaml"), 2);
    assert_string_equal(out, "ztbctl: -o takes json, wide, name or table (got 'yaml')\n");
}

#define SIGNALS                                                                                    \
    "{\"signals\":[{\"id\":\"sig-1\",\"received\":1700000000,\"source\":\"soc\","                  \
    "\"type\":\"credential-compromise\",\"severity\":\"high\",\"confidence\":0.9,"                 \
    "\"subject\":{\"agent\":\"bot\"},\"responses\":[\"quarantine\"]},"                             \
    "{\"id\":\"sig-2\",\"received\":1700000005,\"source\":\"soc\",\"type\":\"x\","                 \
    "\"severity\":\"low\",\"confidence\":0.35,\"subject\":{\"agent\":\"crm\"},"                    \
    "\"responses\":[]}]}"

/* 0.9 from the broker is 0.9 in ztbctl's JSON, not 0.90000000000000002. */
static void test_reals_as_typed(void **state)
{
    (void)state;
    assert_int_equal(answered(SIGNALS, "signals list -o json"), 0);
    assert_non_null(strstr(out, "\"confidence\": 0.9,"));
    assert_non_null(strstr(out, "\"confidence\": 0.35,"));
    assert_null(strstr(out, "0.9000"));
    assert_null(strstr(out, "0.3500"));
}

static void test_signals_show(void **state)
{
    (void)state;
    assert_int_equal(answered(SIGNALS, "signals show sig-2"), 0);
    assert_non_null(strstr(out, "FIELD       VALUE\n"));
    assert_non_null(strstr(out, "\nid          sig-2\n"));
    assert_non_null(strstr(out, "\nreceived    2023-11-14T22:13:25Z\n"));
    assert_non_null(strstr(out, "\nconfidence  0.35\n"));
    assert_non_null(strstr(out, "\nsubject     {\"agent\":\"crm\"}\n"));
    assert_int_equal(answered(SIGNALS, "signals show sig-1 -o json"), 0);
    assert_non_null(strstr(out, "\"id\": \"sig-1\""));
    assert_null(strstr(out, "sig-2"));
    assert_int_equal(answered(SIGNALS, "signals show sig-9"), 1);
    assert_non_null(strstr(out, "no signal sig-9"));
}

#define AGENT_NO_ID                                                                                \
    "{\"name\":\"bot\",\"status\":\"active\",\"generation\":3,\"quarantined\":true,"               \
    "\"approval_required\":false,\"created\":1700000000,"                                          \
    "\"spiffe_id\":\"spiffe://ztb.local/agent/bot\",\"identity_current\":false,"                   \
    "\"identity_x5t\":null,\"identity_expires\":null}"
#define AGENT_ID                                                                                   \
    "{\"name\":\"bot\",\"status\":\"active\",\"generation\":3,\"quarantined\":false,"              \
    "\"approval_required\":false,\"created\":1700000000,"                                          \
    "\"spiffe_id\":\"spiffe://ztb.local/agent/bot\",\"identity_current\":true,"                    \
    "\"identity_x5t\":\"q3Vx\",\"identity_serial\":\"7F01\",\"identity_expires\":1700003600,"      \
    "\"last_seen\":1700000100,\"tokens_last_day\":9,\"tokens_last_hour\":4,"                       \
    "\"denied_last_hour\":2}"

static void test_agent_show(void **state)
{
    (void)state;
    assert_int_equal(answered(AGENT_ID, "agent show bot"), 0);
    assert_non_null(strstr(out, "\nstatus             active\n"));
    assert_non_null(strstr(out, "\ngeneration         3\n"));
    assert_non_null(strstr(out, "\nidentity_current   yes\n"));
    assert_non_null(strstr(out, "\nidentity_x5t#S256  q3Vx\n"));
    assert_non_null(strstr(out, "\nidentity_expires   2023-11-14T23:13:20Z\n"));
    assert_non_null(strstr(out, "\nidentity_serial    7F01\n"));
    assert_non_null(strstr(out, "\nlast_seen          2023-11-14T22:15:00Z\n"));
    assert_non_null(strstr(out, "\ntokens_last_hour   4\n"));
    assert_non_null(strstr(out, "\ndenied_last_hour   2\n"));
    /* no identity document: said, and null in JSON */
    assert_int_equal(answered(AGENT_NO_ID, "agent show bot"), 0);
    assert_non_null(strstr(out, "\nidentity_expires   none\n"));
    assert_non_null(strstr(out, "\nquarantined        yes\n"));
    assert_non_null(strstr(out, "\nidentity_serial    none\n"));
    assert_non_null(strstr(out, "\nlast_seen          never\n"));
    assert_int_equal(answered(AGENT_NO_ID, "agent show bot --json"), 0);
    assert_non_null(strstr(out, "\"identity_expires\": null"));
    assert_int_equal(answered(AGENT_NO_ID, "agent show bot -o name"), 0);
    assert_string_equal(out, "bot\n");
    assert_int_equal(answered(AGENT_NO_ID, "agent show bot --no-headers"), 0);
    assert_true(strncmp(out, "name ", 5) == 0);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN); /* the scripted server writes to clients that gave up */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_output_name),
        cmocka_unit_test(test_no_headers),
        cmocka_unit_test(test_output_json_and_bad_format),
        cmocka_unit_test(test_reals_as_typed),
        cmocka_unit_test(test_signals_show),
        cmocka_unit_test(test_agent_show),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
