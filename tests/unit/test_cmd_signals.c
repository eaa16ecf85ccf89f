/*
 * test_cmd_signals.c - `ztbctl signals ...` (cli/cmd_signals.c) run as an
 * operator runs it, against a scripted admin server: the request each
 * subcommand sends (method, path, query, JSON body), what is printed for
 * the broker's answers and refusals (a source secret once), and the usage
 * errors that send nothing. The views of `signals show` and -o json are
 * test_output.c's.
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
#include <unistd.h>

#include <cmocka.h>

#include "admin_script.h"
#include "ztbctl_run.h"

#define SIGNALS                                                                                    \
    "{\"signals\":[{\"id\":\"sig_1\",\"received\":1700000000,\"source\":\"soc\","                  \
    "\"type\":\"credential-compromise\",\"severity\":\"high\",\"confidence\":0.9,"                 \
    "\"subject\":{\"agent\":\"bot\",\"jti\":\"j1\"},\"responses\":[{\"response\":\"quarantine\","  \
    "\"status\":\"applied\"},{\"response\":\"revoke_all\",\"status\":\"pending_signals\","         \
    "\"have\":1,\"need\":2}]}]}"

/* list: GET /v1/signals with limit (50 unless given) and agent in the
 * query; a table with subject and responses summed up. */
static void test_list(void **state)
{
    (void)state;
    assert_int_equal(call("200 OK", SIGNALS, ARGV("signals", "list")), 0);
    assert_string_equal(req_line, "GET /v1/signals?limit=50 HTTP/1.1");
    assert_string_equal(run_out, "RECEIVED              ID     SOURCE  TYPE                   "
                                 "SEVERITY  CONF  SUBJECT           RESPONSES\n"
                                 "2023-11-14T22:13:20Z  sig_1  soc     credential-compromise  "
                                 "high      0.90  agent=bot jti=j1  quarantine:applied "
                                 "revoke_all:pending_signals(1/2)\n");
    assert_int_equal(call("200 OK", "{\"signals\":[]}",
                          ARGV("signals", "list", "--agent", "bot-1", "--limit", "1000")),
                     0);
    assert_string_equal(req_line, "GET /v1/signals?limit=1000&agent=bot-1 HTTP/1.1");
}

/* source add / list / remove. */
static void test_sources(void **state)
{
    (void)state;
    assert_int_equal(call("201 Created", "{\"name\":\"soc\",\"secret\":\"ztbsrc_s3cret\"}",
                          ARGV("signals", "source", "add", "soc")),
                     0);
    assert_string_equal(req_line, "POST /v1/signal-sources HTTP/1.1");
    assert_string_equal(req_body, "{\"name\":\"soc\"}");
    assert_string_equal(run_out, "signal source soc added\nsecret (shown once; send it as "
                                 "Authorization: Bearer): ztbsrc_s3cret\n");
    assert_int_equal(call("201 Created", "{\"name\":\"gw\",\"agent\":\"gw-1\"}",
                          ARGV("signals", "source", "add", "gw", "--agent", "gw-1")),
                     0);
    assert_string_equal(req_body, "{\"name\":\"gw\",\"agent\":\"gw-1\"}");
    assert_non_null(strstr(run_out, "as the enrolled agent gw-1"));
    assert_null(strstr(run_out, "secret"));

    /* --jwk: the public JWK sent as an object; a private one never */
    char jwk[64];
    snprintf(jwk, sizeof(jwk), "/tmp/ztb-test-jwk-%d.json", (int)getpid());
    FILE *f = fopen(jwk, "w");
    assert_non_null(f);
    fputs("{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"AA\",\"y\":\"BB\"}", f);
    fclose(f);
    assert_int_equal(call("201 Created", "{\"name\":\"soc\",\"has_jwk\":true}",
                          ARGV("signals", "source", "add", "soc", "--jwk", jwk)),
                     0);
    assert_string_equal(req_body, "{\"name\":\"soc\",\"jwk\":{\"kty\":\"EC\",\"crv\":\"P-256\","
                                  "\"x\":\"AA\",\"y\":\"BB\"}}");
    assert_non_null(strstr(run_out, "signed SETs (application/secevent+jwt) with iss \"soc\""));
    f = fopen(jwk, "w");
    fputs("{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"AA\",\"y\":\"BB\",\"d\":\"PRIV\"}", f);
    fclose(f);
    assert_int_equal(
        run("/nonexistent/admin.sock", ARGV("signals", "source", "add", "soc", "--jwk", jwk)), 1);
    assert_non_null(strstr(run_err, "holds a private key (\"d\")"));
    assert_null(strstr(run_err, "PRIV"));
    unlink(jwk);

    assert_int_equal(call("200 OK",
                          "{\"sources\":[{\"name\":\"soc\",\"kind\":\"secret\",\"has_jwk\":true,"
                          "\"created\":1700000000}]}",
                          ARGV("signals", "source", "list")),
                     0);
    assert_string_equal(req_line, "GET /v1/signal-sources HTTP/1.1");
    assert_string_equal(run_out, "NAME  KIND    AGENT  SET KEY  CREATED\n"
                                 "soc   secret  -      yes      2023-11-14T22:13:20Z\n");
    assert_int_equal(call("200 OK", "{}", ARGV("signals", "source", "remove", "soc")), 0);
    assert_string_equal(req_line, "DELETE /v1/signal-sources/soc HTTP/1.1");
    assert_string_equal(run_out, "source soc removed: its credentials no longer work\n");
    assert_int_equal(call("404 Not Found",
                          "{\"error\":\"not_found\",\"error_description\":\"no source soc\"}",
                          ARGV("signals", "source", "remove", "soc")),
                     1);
    assert_string_equal(run_err, "ztbctl: no source soc (HTTP 404 not_found)\n");
}

/* confirm / reject / dismiss: an action's or a signal's path, the
 * reason escaped; pending lists the actions. */
static void test_decide(void **state)
{
    (void)state;
    assert_int_equal(call("200 OK", "{\"response\":\"quarantine\",\"target\":\"bot\"}",
                          ARGV("signals", "confirm", "act_Ab-9")),
                     0);
    assert_string_equal(req_line, "POST /v1/signal-actions/act_Ab-9/confirm HTTP/1.1");
    assert_string_equal(req_body, "");
    assert_string_equal(run_out, "action act_Ab-9 applied: quarantine bot\n");
    assert_int_equal(
        call("200 OK", "{}", ARGV("signals", "reject", "act_Ab-9", "--reason", "\"fp\"\n")), 0);
    assert_string_equal(req_line, "POST /v1/signal-actions/act_Ab-9/reject HTTP/1.1");
    assert_string_equal(req_body, "{\"reason\":\"\\\"fp\\\"\\n\"}");
    assert_string_equal(run_out, "action act_Ab-9 rejected: nothing was applied\n");
    assert_int_equal(call("200 OK", "{}", ARGV("signals", "dismiss", "act_1", "--reason=x")), 0);
    assert_string_equal(req_line, "POST /v1/signal-actions/act_1/reject HTTP/1.1");
    assert_string_equal(req_body, "{\"reason\":\"x\"}");

    assert_int_equal(call("200 OK", "{}", ARGV("signals", "confirm", "sig_1")), 0);
    assert_string_equal(req_line, "POST /v1/signals/sig_1/outcome HTTP/1.1");
    assert_string_equal(req_body, "{\"outcome\":\"confirmed\"}");
    assert_string_equal(run_out, "signal sig_1 marked confirmed\n");
    assert_int_equal(call("200 OK", "{}", ARGV("signals", "dismiss", "sig_1", "--reason", "ok")),
                     0);
    assert_string_equal(req_body, "{\"outcome\":\"false_positive\",\"reason\":\"ok\"}");
    assert_string_equal(run_out, "signal sig_1 marked a false positive\n");
    assert_int_equal(call("409 Conflict",
                          "{\"error\":\"conflict\",\"error_description\":\"already applied\"}",
                          ARGV("signals", "confirm", "act_1")),
                     1);
    assert_string_equal(run_err, "ztbctl: already applied (HTTP 409 conflict)\n");

    assert_int_equal(call("200 OK",
                          "{\"actions\":[{\"id\":\"act_1\",\"status\":\"pending\",\"response\":"
                          "\"quarantine\",\"target_kind\":\"agent\",\"target\":\"bot\",\"entry\":"
                          "\"e1\",\"signals\":\"sig_1\",\"created\":1700000000}]}",
                          ARGV("signals", "pending")),
                     0);
    assert_string_equal(req_line, "GET /v1/signal-actions HTTP/1.1");
    assert_string_equal(run_out, "ID     STATUS   RESPONSE    TARGET     ENTRY  SIGNALS  CREATED\n"
                                 "act_1  pending  quarantine  agent=bot  e1     sig_1    "
                                 "2023-11-14T22:13:20Z\n");
}

/* mode, modes and stats. */
static void test_modes_stats(void **state)
{
    (void)state;
    assert_int_equal(call("200 OK", "{}", ARGV("signals", "mode", "soc", "observe")), 0);
    assert_string_equal(req_line, "POST /v1/signal-modes HTTP/1.1");
    assert_string_equal(req_body, "{\"source\":\"soc\",\"mode\":\"observe\"}");
    assert_string_equal(run_out, "source soc: observe mode (signals recorded, responses computed, "
                                 "none applied)\n");
    assert_int_equal(
        call("200 OK", "{}", ARGV("signals", "mode", "--detector", "odd \"hour\"", "enforce")), 0);
    assert_string_equal(req_body, "{\"detector\":\"odd \\\"hour\\\"\",\"mode\":\"enforce\"}");
    assert_string_equal(run_out, "detector odd \"hour\": enforce mode (responses applied)\n");

    assert_int_equal(call("200 OK", "{\"observe\":{\"soc\":\"source\"}}", ARGV("signals", "modes")),
                     0);
    assert_string_equal(req_line, "GET /v1/signal-modes HTTP/1.1");
    assert_true(strncmp(run_out, "soc ", 4) == 0);
    assert_int_equal(call("200 OK", "{\"observe\":{}}", ARGV("signals", "modes")), 0);
    assert_string_equal(run_out, "every source and detector is in enforce mode\n");

    assert_int_equal(call("200 OK",
                          "{\"by\":{\"soc\":{\"signals\":4,\"escalations\":1,\"judged\":2,"
                          "\"precision\":0.5,\"calibration\":[{\"observed_rate\":0.5,"
                          "\"mean_confidence\":0.8}],\"containment_s\":{\"p50\":30,"
                          "\"p95\":90}}},\"total\":{\"signals\":4}}",
                          ARGV("signals", "stats")),
                     0);
    assert_string_equal(req_line, "GET /v1/signal-stats HTTP/1.1");
    assert_non_null(strstr(run_out, "\nsoc                                    4       1      2"
                                    "    0.50       -       -    0.30       30s       90s\n"));
    assert_non_null(strstr(run_out, "\n(all)                                  4       0      0"
                                    "       -       -       -       -         -         -\n"));
}

/* Usage errors: exit 2, a message naming the fix, nothing sent. */
static void test_usage_errors(void **state)
{
    (void)state;
    refused(ARGV("signals"));
    assert_non_null(strstr(run_err, "usage: ztbctl signals list"));
    refused(ARGV("signals", "frob"));
    assert_string_equal(run_err, "ztbctl: unknown signals command 'frob' (see ztbctl signals "
                                 "--help)\n");
    refused(ARGV("signals", "show"));
    assert_string_equal(run_err, "ztbctl: signals show: takes one signal id (see ztbctl signals "
                                 "--help)\n");
    refused(ARGV("signals", "pending", "x"));
    assert_string_equal(run_err, "ztbctl: signals pending: takes no argument (see ztbctl signals "
                                 "--help)\n");
    refused(ARGV("signals", "stats", "x"));
    refused(ARGV("signals", "modes", "x"));
    refused(ARGV("signals", "list", "--limit", "0"));
    assert_string_equal(run_err, "ztbctl: --limit takes 1..1000\n");
    refused(ARGV("signals", "list", "--limit", "1001"));
    refused(ARGV("signals", "list", "--limit"));
    refused(ARGV("signals", "list", "--since", "1"));
    static const char *const bad_agents[] = {"a&limit=1", "..", "a b", "a\nb", "A", "a\xff"};
    for (size_t i = 0; i < sizeof(bad_agents) / sizeof(bad_agents[0]); i++) {
        refused(ARGV("signals", "list", "--agent", bad_agents[i]));
        assert_true(strncmp(run_err, "ztbctl: invalid agent name '", 28) == 0);
    }
    refused(ARGV("signals", "source"));
    refused(ARGV("signals", "source", "add"));
    refused(ARGV("signals", "source", "drop", "soc"));
    refused(ARGV("signals", "source", "add", "soc", "--agent"));
    refused(ARGV("signals", "source", "add", "soc", "--secret", "x"));
    refused(ARGV("signals", "source", "add", "soc", "--agent", "gw\xff"));
    assert_true(strncmp(run_err, "ztbctl: invalid agent name '", 28) == 0);
    refused(ARGV("signals", "source", "remove", "soc", "x"));
    static const char *const bad_sources[] = {"..", ".", "a#b", "a b", "s\r\nX: 1", "-s", "s\xff"};
    for (size_t i = 0; i < sizeof(bad_sources) / sizeof(bad_sources[0]); i++) {
        refused(ARGV("signals", "source", "remove", bad_sources[i]));
        assert_true(strncmp(run_err, "ztbctl: invalid source name '", 29) == 0);
        refused(ARGV("signals", "source", "add", bad_sources[i]));
        refused(ARGV("signals", "mode", bad_sources[i], "observe"));
    }
    static const char *const bad_ids[] = {
        "..",      "act_a/b",  "act_a#b",
        "act_a b", "act_%2e",  "act.1",
        "",        "act_\xff", "act_123456789012345678901234567890123456"};
    for (size_t i = 0; i < sizeof(bad_ids) / sizeof(bad_ids[0]); i++) {
        refused(ARGV("signals", "confirm", bad_ids[i]));
        assert_true(strncmp(run_err, "ztbctl: invalid signal or action id '", 37) == 0);
    }
    refused(ARGV("signals", "confirm"));
    refused(ARGV("signals", "confirm", "act_1", "--because", "x"));
    refused(ARGV("signals", "confirm", "act_1", "--reason"));
    refused(ARGV("signals", "reject", "act_1", "--reason", "\xc3"));
    assert_string_equal(run_err, "ztbctl: signals reject|dismiss: the value of --reason is not "
                                 "UTF-8\n");
    refused(ARGV("signals", "mode", "soc"));
    refused(ARGV("signals", "mode", "soc", "off"));
    assert_string_equal(run_err, "ztbctl: signals mode: the mode is observe or enforce (got "
                                 "'off')\n");
    refused(ARGV("signals", "mode", "--detector", "x\xff", "observe"));
    assert_string_equal(run_err, "ztbctl: signals mode: the value of --detector is not UTF-8\n");
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN); /* the scripted server writes to clients that gave up */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_list),         cmocka_unit_test(test_sources),
        cmocka_unit_test(test_decide),       cmocka_unit_test(test_modes_stats),
        cmocka_unit_test(test_usage_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
