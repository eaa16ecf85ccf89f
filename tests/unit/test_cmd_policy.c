/*
 * test_cmd_policy.c - `ztbctl policy` as an operator runs it: exit status,
 * where problems are reported, and what explain prints.
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
    snprintf(cmd, sizeof(cmd), "cd '%s' && '%s/bin/ztbctl' %s 2>&1", src ? src : "..",
             bin ? bin : ".", args);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t n = fread(out, 1, cap - 1, p);
    out[n] = '\0';
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static char out[1 << 16];

static void test_check(void **state)
{
    (void)state;
    assert_int_equal(run("policy check examples/policy/fleet.json", out, sizeof(out)), 0);
    assert_non_null(strstr(out, "examples/policy/fleet.json: OK"));
    assert_non_null(strstr(out, "rules              11"));
    assert_int_equal(run("--json policy check examples/policy/fleet.json", out, sizeof(out)), 0);
    assert_non_null(strstr(out, "\"ok\": true"));
    /* a broken copy: refused, each problem names the rule */
    char tmpl[] = "/tmp/ztb-cli-policy-XXXXXX";
    int fd = mkstemp(tmpl);
    assert_true(fd >= 0);
    close(fd);
    char args[1024];
    const char *src = getenv("ZTB_SOURCE_DIR");
    snprintf(args, sizeof(args),
             "sed 's/\"ttl\": 120}/\"ttl\": 900}/' '%s/examples/policy/fleet.json' > %s",
             src ? src : "..", tmpl);
    assert_int_equal(system(args), 0);
    snprintf(args, sizeof(args), "policy check %s", tmpl);
    assert_int_equal(run(args, out, sizeof(out)), 1);
    assert_non_null(
        strstr(out, ": rule \"payments-read\": obligations.ttl: 900 exceeds settings.max_ttl 300"));
    assert_non_null(strstr(out, "refused (1 problem)"));
    unlink(tmpl);
    assert_int_equal(run("policy check /nonexistent.json", out, sizeof(out)), 1);
    assert_int_equal(run("policy check", out, sizeof(out)), 2);
    assert_int_equal(run("policy frobnicate x", out, sizeof(out)), 2);
}

static void test_explain(void **state)
{
    (void)state;
    const char *allow =
        "policy explain examples/policy/fleet.json --agent billing-bot --action payments:refund "
        "--audience https://payments.internal --resource orders/1 --context '{\"time\": "
        "\"2025-06-04T10:00:00Z\", \"source_ip\": \"10.20.1.2\", \"authorization_details\": "
        "[{\"type\": \"payment\", \"amount\": 20}]}'";
    assert_int_equal(run(allow, out, sizeof(out)), 0);
    assert_non_null(strstr(out, "decision: ALLOW"));
    assert_non_null(strstr(out, "because:  allow: rule \"refund-small\""));
    assert_non_null(strstr(out, "refund-large"));
    const char *deny = "--json policy explain examples/policy/fleet.json --agent=support-bot-01 "
                       "--action=crm:delete --audience=https://crm.internal --resource=contacts/7";
    assert_int_equal(run(deny, out, sizeof(out)), 0);
    assert_non_null(strstr(out, "\"decision\": \"deny\""));
    assert_non_null(strstr(out, "\"rule\": \"deny-crm-delete\""));
    /* usage errors */
    assert_int_equal(run("policy explain examples/policy/fleet.json --agent a", out, sizeof(out)),
                     2);
    assert_int_equal(run("policy explain examples/policy/fleet.json --agent a --action b:c "
                         "--audience x --context '{\"when\": 1}'",
                         out, sizeof(out)),
                     2);
    assert_non_null(strstr(out, "unknown field \"when\""));
    assert_int_equal(run("policy explain examples/policy/fleet.json --agent a --action b:c "
                         "--audience x --context '{\"source_ip\": \"10.0.0.300\"}'",
                         out, sizeof(out)),
                     2);
}

static void test_signals(void **state)
{
    (void)state;
    assert_int_equal(run("policy signals examples/policy/fleet.json --agent billing-bot "
                         "--signal token_replay --severity high --confidence 0.9",
                         out, sizeof(out)),
                     0);
    assert_non_null(strstr(out, "quarantine"));
    assert_non_null(strstr(out, "2 independent signals in 600 s"));
    assert_int_equal(run("policy signals examples/policy/fleet.json --signal token_replay "
                         "--severity extreme",
                         out, sizeof(out)),
                     2);
}

/* The transcripts in docs/policy.md are exactly what ztbctl prints. */
static void test_docs_transcripts(void **state)
{
    (void)state;
    char path[4096];
    const char *src = getenv("ZTB_SOURCE_DIR");
    snprintf(path, sizeof(path), "%s/docs/policy.md", src ? src : "..");
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    static char doc[1 << 17];
    size_t n = fread(doc, 1, sizeof(doc) - 1, f);
    fclose(f);
    doc[n] = '\0';
    const char *cmds[] = {
        "policy check examples/policy/fleet.json",
        ("policy explain examples/policy/fleet.json --agent refund-agent-7 --action "
         "payments:refund --audience https://payments.internal --resource orders/1234 --context "
         "'{\"time\": \"2025-06-04T10:00:00Z\", \"source_ip\": \"10.20.1.2\", "
         "\"authorization_details\": [{\"type\": \"payment\", \"amount\": 20}]}'"),
        ("policy explain examples/policy/fleet.json --agent sales-assistant --action crm:update "
         "--audience https://crm.internal --resource contacts/42 --context '{\"time\": "
         "\"2025-06-07T10:00:00Z\", \"act\": \"spiffe://acme.example/user/alice\"}'"),
        ("policy signals examples/policy/fleet.json --agent billing-bot --signal token_replay "
         "--severity high --confidence 0.9"),
    };
    for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
        assert_int_equal(run(cmds[i], out, sizeof(out)), 0);
        if (strstr(doc, out) == NULL)
            fail_msg("docs/policy.md does not show the current output of `ztbctl %s`:\n%s", cmds[i],
                     out);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_check),
        cmocka_unit_test(test_explain),
        cmocka_unit_test(test_signals),
        cmocka_unit_test(test_docs_transcripts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
