/*
 * test_cmd_revoke.c - `ztbctl revoke ...`, `ztbctl quarantine` and
 * `ztbctl release` (cli/cmd_revoke.c) run as an operator runs them, against
 * a scripted admin server: the request each sends, what is printed for the
 * broker's answers (a confirmed revocation, one it does not confirm, an
 * audit record pending or lost, a refusal), and the usage errors that send
 * nothing (a whole token on the command line among them).
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

#define JTI_DONE "{\"type\":\"jti\",\"id\":\"j-1\",\"changed\":true,\"exp\":1700000000}"

/* revoke token JTI: the jti, --exp and --reason in the body, hostile
 * text escaped; a jti may start with '-'; the answer printed. */
static void test_revoke_token(void **state)
{
    (void)state;
    assert_int_equal(call("200 OK", JTI_DONE, ARGV("revoke", "token", "j-1")), 0);
    assert_string_equal(req_line, "POST /v1/revocations HTTP/1.1");
    assert_string_equal(req_body, "{\"type\":\"jti\",\"id\":\"j-1\"}");
    assert_string_equal(run_out, "token j-1 revoked until 2023-11-14T22:13:20Z\n");
    assert_int_equal(
        call("200 OK", JTI_DONE,
             ARGV("revoke", "token", "-Ab_", "--reason", "\"leak\"\n\\", "--exp", "1700000000")),
        0);
    assert_string_equal(req_body, "{\"type\":\"jti\",\"id\":\"-Ab_\",\"reason\":\"\\\"leak\\\"\\n"
                                  "\\\\\",\"exp\":1700000000}");
    /* the broker verified the token and it has expired already */
    assert_int_equal(call("200 OK",
                          "{\"type\":\"jti\",\"id\":\"j-1\",\"changed\":false,\"exp\":1700000000}",
                          ARGV("revoke", "token", "j-1")),
                     0);
    assert_string_equal(run_out, "token j-1 expired at 2023-11-14T22:13:20Z (verified by the "
                                 "broker): no verifier accepts it, nothing to do\n");
}

/* revoke token - / --token-file: the whole token read, trailing
 * whitespace cut, sent as "token" (never on the command line). */
static void test_revoke_token_file(void **state)
{
    (void)state;
    run_stdin = "eyJh.eyJi.c2ln \r\n";
    assert_int_equal(call("200 OK", JTI_DONE, ARGV("revoke", "token", "-")), 0);
    assert_string_equal(req_body, "{\"type\":\"jti\",\"token\":\"eyJh.eyJi.c2ln\"}");
    assert_int_equal(
        call("200 OK", JTI_DONE, ARGV("revoke", "token", "--token-file", "-", "--reason", "r")), 0);
    assert_string_equal(req_body,
                        "{\"type\":\"jti\",\"reason\":\"r\",\"token\":\"eyJh.eyJi.c2ln\"}");
    run_stdin = "";
    assert_int_equal(run("/nonexistent/admin.sock", ARGV("revoke", "token", "-")), 1);
    assert_string_equal(run_err, "ztbctl: -: expected one token of at most 8192 bytes\n");
    run_stdin = NULL;
    assert_int_equal(
        run("/nonexistent/admin.sock", ARGV("revoke", "token", "--token-file", "/nonexistent/tok")),
        1);
    assert_string_equal(run_err, "ztbctl: cannot open /nonexistent/tok\n");
}

/* revoke agent / audience / key: type and id; each answer printed. */
static void test_revoke_others(void **state)
{
    (void)state;
    assert_int_equal(call("200 OK",
                          "{\"type\":\"agent\",\"id\":\"bot\",\"changed\":true,\"gen\":4,"
                          "\"exp\":1700000000}",
                          ARGV("revoke", "agent", "bot", "--reason", "compromised")),
                     0);
    assert_string_equal(req_body, "{\"type\":\"agent\",\"id\":\"bot\",\"reason\":\"compromised\"}");
    assert_string_equal(run_out, "agent bot: every token, session and identity document it holds "
                                 "is revoked (generation now 4), announced until "
                                 "2023-11-14T22:13:20Z; it needs a new join token (ztbctl agent "
                                 "join-token bot) to come back\n");

    assert_int_equal(call("200 OK",
                          "{\"type\":\"audience\",\"id\":\"crm\",\"changed\":false,\"exp\":0}",
                          ARGV("revoke", "audience", "crm")),
                     0);
    assert_string_equal(req_body, "{\"type\":\"audience\",\"id\":\"crm\"}");
    assert_string_equal(run_out, "audience crm disabled until lifted (it already was)\n");
    assert_int_equal(call("200 OK",
                          "{\"type\":\"audience\",\"id\":\"crm\",\"changed\":true,\"lift\":true}",
                          ARGV("revoke", "audience", "crm", "--lift")),
                     0);
    assert_string_equal(req_body, "{\"type\":\"audience\",\"id\":\"crm\",\"lift\":true}");
    assert_string_equal(run_out, "audience crm enabled again\n");

    assert_int_equal(call("200 OK",
                          "{\"type\":\"key\",\"id\":\"k1\",\"changed\":true,\"exp\":1700000000,"
                          "\"new_kid\":\"k2\",\"detail\":\"rotated\"}",
                          ARGV("revoke", "key", "k1")),
                     0);
    assert_string_equal(req_body, "{\"type\":\"key\",\"id\":\"k1\"}");
    assert_string_equal(run_out, "key k1 tainted until 2023-11-14T22:13:20Z\n"
                                 "tokens are now signed by k2\nrotated\n");
}

/* The audit record: written (0), pending or lost (3, said on stderr); an
 * answer that does not confirm the revocation is a failure (1). */
static void test_answers(void **state)
{
    (void)state;
    assert_int_equal(call("200 OK",
                          "{\"type\":\"jti\",\"id\":\"j-1\",\"changed\":true,"
                          "\"audit_record\":\"pending\"}",
                          ARGV("revoke", "token", "j-1")),
                     3);
    assert_non_null(strstr(run_out, "token j-1 revoked"));
    assert_non_null(strstr(run_err, "its audit record is pending"));
    assert_int_equal(call("200 OK",
                          "{\"type\":\"jti\",\"id\":\"j-1\",\"changed\":true,"
                          "\"audit_record\":\"lost\"}",
                          ARGV("revoke", "token", "j-1", "-o", "json")),
                     3);
    assert_non_null(strstr(run_out, "\"audit_record\": \"lost\""));
    assert_non_null(strstr(run_err, "its audit record was LOST"));
    assert_int_equal(
        call("200 OK", "{\"type\":\"jti\",\"id\":\"j-1\"}", ARGV("revoke", "token", "j-1")), 1);
    assert_string_equal(run_out, "");
    assert_string_equal(run_err, "ztbctl: the broker's answer does not confirm the revocation: "
                                 "it is not done\n");
    assert_int_equal(call("503 Service Unavailable",
                          "{\"error\":\"unavailable\",\"error_description\":\"redis is down\"}",
                          ARGV("revoke", "agent", "bot")),
                     1);
    assert_string_equal(run_err, "ztbctl: redis is down (HTTP 503 unavailable)\n");
}

/* Exit status 3 is named in `ztbctl --help`, as in ztbctl(1). */
static void test_help_names_exit_3(void **state)
{
    (void)state;
    assert_int_equal(run("/nonexistent/admin.sock", ARGV("--help")), 0);
    assert_non_null(strstr(run_out, "2 usage error, 3 a revocation, quarantine\nor release is in "
                                    "effect but its audit record is pending or lost."));
    assert_int_equal(run("/nonexistent/admin.sock", ARGV("revoke", "--help")), 0);
    assert_true(strncmp(run_out, "usage: ztbctl revoke token JTI", 30) == 0);
}

/* revoke list: GET /v1/revocations as a table. */
static void test_list(void **state)
{
    (void)state;
    assert_int_equal(call("200 OK",
                          "{\"revocations\":[{\"type\":\"agent\",\"id\":\"bot\",\"gen\":4,"
                          "\"exp\":1700000000},{\"type\":\"audience\",\"id\":\"crm\",\"exp\":0}]}",
                          ARGV("revoke", "list")),
                     0);
    assert_string_equal(req_line, "GET /v1/revocations HTTP/1.1");
    assert_string_equal(run_out, "TYPE      ID   GEN  UNTIL\n"
                                 "agent     bot  4    2023-11-14T22:13:20Z\n"
                                 "audience  crm  -    until lifted\n");
}

/* quarantine and release: POST with the agent (and reason) in the body. */
static void test_quarantine_release(void **state)
{
    (void)state;
    assert_int_equal(call("200 OK", "{\"agent\":\"bot\",\"changed\":true}",
                          ARGV("quarantine", "bot", "--reason", "odd \"hours\"")),
                     0);
    assert_string_equal(req_line, "POST /v1/quarantine HTTP/1.1");
    assert_string_equal(req_body, "{\"agent\":\"bot\",\"reason\":\"odd \\\"hours\\\"\"}");
    assert_string_equal(run_out, "agent bot quarantined: no new tokens (tokens it holds live on; "
                                 "`ztbctl revoke agent bot` ends them)\n");
    assert_int_equal(
        call("200 OK", "{\"agent\":\"bot\",\"changed\":false}", ARGV("release", "bot")), 0);
    assert_string_equal(req_line, "POST /v1/release HTTP/1.1");
    assert_string_equal(req_body, "{\"agent\":\"bot\"}");
    assert_string_equal(run_out, "agent bot released (it was neither quarantined nor under "
                                 "approval): tokens are issued again as policy allows\n");
    /* an answer without the name: the name given, not "(null)" */
    assert_int_equal(call("200 OK", "{\"changed\":true}", ARGV("quarantine", "bot")), 0);
    assert_true(strncmp(run_out, "agent bot quarantined:", 22) == 0);
    assert_int_equal(
        call("200 OK", "{\"agent\":\"bot\",\"audit_record\":\"pending\"}", ARGV("release", "bot")),
        3);
    assert_int_equal(call("404 Not Found",
                          "{\"error\":\"not_found\",\"error_description\":\"no agent 'bot'\"}",
                          ARGV("quarantine", "bot")),
                     1);
    assert_string_equal(run_err, "ztbctl: no agent 'bot' (HTTP 404 not_found)\n");
}

/* Usage errors: exit 2, nothing sent. */
static void test_usage_errors(void **state)
{
    (void)state;
    refused(ARGV("revoke"));
    assert_non_null(strstr(run_err, "usage: ztbctl revoke token JTI"));
    refused(ARGV("revoke", "session", "x"));
    assert_string_equal(run_err, "ztbctl: unknown revoke target 'session' (token, agent, "
                                 "audience, key, list)\n");
    refused(ARGV("revoke", "token"));
    refused(ARGV("revoke", "token", "j-1", "--bogus"));
    assert_string_equal(run_err, "ztbctl: unexpected argument '--bogus'\n");
    refused(ARGV("revoke", "token", "j-1", "--reason"));
    refused(ARGV("revoke", "token", "j-1", "--exp", "soon"));
    assert_string_equal(run_err, "ztbctl: --exp takes a Unix time\n");
    refused(ARGV("revoke", "token", "j-1", "--exp", "0"));
    refused(ARGV("revoke", "token", "j-1", "--token-file", "-"));
    refused(ARGV("revoke", "token", "-", "--token-file", "-"));
    refused(ARGV("revoke", "agent", "bot", "--exp", "1700000000"));
    refused(ARGV("revoke", "agent", "bot", "--lift"));
    refused(ARGV("revoke", "key", "--token-file", "-"));
    refused(ARGV("revoke", "list", "extra"));
    /* a whole token on the command line: refused, the way out named, the
     * token not echoed */
    refused(ARGV("revoke", "token", "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJib3QifQ.c2lnbmF0dXJl"));
    assert_non_null(strstr(run_err, "looks like a whole token: pass a token on stdin (ztbctl "
                                    "revoke token - < FILE)"));
    assert_null(strstr(run_err, "c2lnbmF0dXJl"));
    /* agent names and values that are not UTF-8 */
    refused(ARGV("revoke", "agent", "a#b"));
    assert_non_null(strstr(run_err, "invalid agent name 'a#b'"));
    refused(ARGV("revoke", "token", "j\xff"));
    assert_string_equal(run_err, "ztbctl: revoke: the value of token is not UTF-8\n");
    refused(ARGV("revoke", "agent", "bot", "--reason", "\xc3("));
    assert_string_equal(run_err, "ztbctl: revoke: the value of --reason is not UTF-8\n");
    refused(ARGV("quarantine"));
    refused(ARGV("quarantine", "bot\xff"));
    assert_non_null(strstr(run_err, "invalid agent name"));
    refused(ARGV("quarantine", "bot", "--reason", "\xff"));
    assert_string_equal(run_err, "ztbctl: quarantine: the value of --reason is not UTF-8\n");
    refused(ARGV("quarantine", "bot", "--lift"));
    refused(ARGV("release", "bot", "--reason", "x"));
    refused(ARGV("release", "bot", "extra"));
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN); /* the scripted server writes to clients that gave up */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_revoke_token),  cmocka_unit_test(test_revoke_token_file),
        cmocka_unit_test(test_revoke_others), cmocka_unit_test(test_answers),
        cmocka_unit_test(test_list),          cmocka_unit_test(test_quarantine_release),
        cmocka_unit_test(test_usage_errors),  cmocka_unit_test(test_help_names_exit_3),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
