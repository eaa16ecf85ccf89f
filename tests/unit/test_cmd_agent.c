/*
 * test_cmd_agent.c - `ztbctl agent ...` (cli/cmd_agent.c) run as an
 * operator runs it, against a scripted admin server: the request each
 * subcommand sends (method, path, JSON body, hostile values escaped), what
 * it prints for the broker's answers and refusals, and the usage errors
 * that send nothing at all.
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

#define AGENT                                                                                      \
    "{\"name\":\"bot\",\"status\":\"disabled\",\"generation\":3,\"quarantined\":false,"            \
    "\"approval_required\":false,\"created\":1700000000,"                                          \
    "\"spiffe_id\":\"spiffe://ztb.local/agent/bot\"}"

/* add: POST /v1/agents with exactly the name, owner, description and ttl
 * given (in any order), hostile bytes escaped as JSON; the join token is
 * printed once with its life. */
static void test_add(void **state)
{
    (void)state;
    static const char ans[] = "{\"spiffe_id\":\"spiffe://ztb.local/agent/bot\","
                              "\"join_token\":\"ztbjoin_abc\",\"join_token_expires_in\":600}";
    assert_int_equal(call("201 Created", ans, ARGV("agent", "add", "bot")), 0);
    assert_string_equal(req_line, "POST /v1/agents HTTP/1.1");
    assert_non_null(strcasestr(req_head, "\r\nContent-Type: application/json\r\n"));
    assert_string_equal(req_body, "{\"name\":\"bot\"}");
    assert_string_equal(run_out, "agent bot added: spiffe://ztb.local/agent/bot\n"
                                 "join token (shown once, valid 600s): ztbjoin_abc\n");
    assert_string_equal(run_err, "");

    /* the options in another order: none is dropped */
    assert_int_equal(call("201 Created", ans,
                          ARGV("agent", "add", "bot", "--ttl", "60", "--owner", "team \"a\"\n",
                               "--description", "x\\y\t\x01")),
                     0);
    assert_string_equal(req_body, "{\"ttl\":60,\"owner\":\"team \\\"a\\\"\\n\","
                                  "\"description\":\"x\\\\y\\t\\u0001\",\"name\":\"bot\"}");

    /* a value that is not UTF-8 cannot be a JSON string: refused, not dropped */
    refused(ARGV("agent", "add", "bot", "--owner", "caf\xe9"));
    assert_string_equal(run_err, "ztbctl: agent add: the value of --owner is not UTF-8\n");
    refused(ARGV("agent", "add", "bot", "--description", "\xff\xfe"));
    assert_string_equal(run_err, "ztbctl: agent add: the value of --description is not UTF-8\n");

    /* -o json: the broker's answer as it is */
    assert_int_equal(call("201 Created", ans, ARGV("agent", "add", "bot", "-o", "json")), 0);
    assert_non_null(strstr(run_out, "\"join_token\": \"ztbjoin_abc\""));
}

/* join-token: POST /v1/agents/NAME/join-tokens, with the ttl if given. */
static void test_join_token(void **state)
{
    (void)state;
    static const char ans[] = "{\"join_token\":\"ztbjoin_def\",\"join_token_expires_in\":30}";
    assert_int_equal(call("201 Created", ans, ARGV("agent", "join-token", "bot-1.a_b")), 0);
    assert_string_equal(req_line, "POST /v1/agents/bot-1.a_b/join-tokens HTTP/1.1");
    assert_string_equal(req_body, "{}");
    assert_string_equal(run_out, "join token (shown once, valid 30s): ztbjoin_def\n");
    assert_int_equal(call("201 Created", ans, ARGV("agent", "join-token", "bot", "--ttl", "30")),
                     0);
    assert_string_equal(req_body, "{\"ttl\":30}");
}

/* The GET subcommands: their paths; list and show as tables. */
static void test_reads(void **state)
{
    (void)state;
    assert_int_equal(call("200 OK", "{\"agents\":[" AGENT "]}", ARGV("agent", "list")), 0);
    assert_string_equal(req_line, "GET /v1/agents HTTP/1.1");
    assert_string_equal(req_body, "");
    assert_non_null(strstr(run_out, "\nbot   disabled  3    no"));

    assert_int_equal(call("200 OK", AGENT, ARGV("agent", "show", "bot")), 0);
    assert_string_equal(req_line, "GET /v1/agents/bot HTTP/1.1");
    assert_non_null(strstr(run_out, "\nstatus             disabled\n"));

    static const char inv[] =
        "{\"agents\":[{\"name\":\"bot\",\"owner\":\"ops\",\"rules\":[\"r1\",\"r2\"],"
        "\"audiences\":[],\"tokens_last_day\":7,\"status\":\"active\",\"quarantined\":true}],"
        "\"unknown_clients\":[{\"source\":\"10.0.0.9\",\"reason\":\"no cert\",\"count\":4,"
        "\"last_seen\":1700000000}]}";
    assert_int_equal(call("200 OK", inv, ARGV("agent", "inventory")), 0);
    assert_string_equal(req_line, "GET /v1/inventory HTTP/1.1");
    assert_non_null(strstr(run_out, "\nbot   ops    -            r1,r2  -          never      7"
                                    "           none              quarantined\n"));
    assert_non_null(strstr(run_out, "\nunknown AI clients (refused at gateways):\n"));
    assert_non_null(strstr(run_out, "\n10.0.0.9  no cert  4        2023-11-14T22:13:20Z\n"));

    static const char base[] = "{\"phase\":\"enforcing\",\"tokens_learned\":12,\"days\":2,"
                               "\"tokens_last_day\":1,\"actions\":[{\"value\":\"read\","
                               "\"learned_at\":1700000000}],\"audiences\":[{\"value\":\"crm\","
                               "\"first_seen\":1700000100}],\"hours\":[0,5]}";
    assert_int_equal(call("200 OK", base, ARGV("agent", "baseline", "bot")), 0);
    assert_string_equal(req_line, "GET /v1/agents/bot/baseline HTTP/1.1");
    assert_true(strncmp(run_out,
                        "agent bot: enforcing (learning - .. -), 12 tokens learned "
                        "over 2 day(s); last seen never, 1 tokens in the last day\n",
                        100) == 0);
    assert_non_null(
        strstr(run_out, "\naction    read    learned             2023-11-14T22:13:20Z\n"));
    assert_non_null(
        strstr(run_out, "\naudience  crm     new after learning  2023-11-14T22:15:00Z\n"));
    assert_non_null(strstr(run_out, "\nhour      01:00Z  5 tokens learned    -\n"));
}

/* The changing subcommands: method, path and body, and what is printed. */
static void test_changes(void **state)
{
    (void)state;
    assert_int_equal(call("200 OK", AGENT, ARGV("agent", "disable", "bot")), 0);
    assert_string_equal(req_line, "POST /v1/agents/bot/disable HTTP/1.1");
    assert_string_equal(req_body, "");
    assert_non_null(strstr(run_out, "\nbot   disabled  3"));
    assert_int_equal(call("200 OK", AGENT, ARGV("agent", "enable", "bot")), 0);
    assert_string_equal(req_line, "POST /v1/agents/bot/enable HTTP/1.1");

    assert_int_equal(call("200 OK", "{\"retired_generation\":3}", ARGV("agent", "delete", "bot")),
                     0);
    assert_string_equal(req_line, "DELETE /v1/agents/bot HTTP/1.1");
    assert_string_equal(run_out, "deleted bot (generation 3 retired: its tokens and identities "
                                 "stay invalid)\n");

    assert_int_equal(call("200 OK", "{\"phase\":\"learning\"}",
                          ARGV("agent", "baseline", "bot", "--relearn", "--for", "3600")),
                     0);
    assert_string_equal(req_line, "POST /v1/agents/bot/baseline HTTP/1.1");
    assert_string_equal(req_body, "{\"relearn\":true,\"for\":3600}");
    assert_int_equal(call("200 OK", "{}", ARGV("agent", "baseline", "bot", "--relearn")), 0);
    assert_string_equal(req_body, "{\"relearn\":true}");
}

/* A refusal prints the broker's description and code on stderr, exit 1. */
static void test_refusals(void **state)
{
    (void)state;
    static const char e409[] = "{\"error\":\"conflict\",\"error_description\":\"agent bot "
                               "exists\"}";
    assert_int_equal(call("409 Conflict", e409, ARGV("agent", "add", "bot")), 1);
    assert_string_equal(run_out, "");
    assert_string_equal(run_err, "ztbctl: agent bot exists (HTTP 409 conflict)\n");
    static const char e404[] = "{\"error\":\"not_found\",\"error_description\":\"no agent "
                               "'bot'\"}";
    assert_int_equal(call("404 Not Found", e404, ARGV("agent", "delete", "bot")), 1);
    assert_string_equal(run_err, "ztbctl: no agent 'bot' (HTTP 404 not_found)\n");
    assert_int_equal(call("404 Not Found", e404, ARGV("agent", "baseline", "bot")), 1);
    assert_string_equal(run_err, "ztbctl: no agent 'bot' (HTTP 404 not_found)\n");
    assert_int_equal(
        call("503 Service Unavailable", "{\"error\":\"unavailable\"}", ARGV("agent", "inventory")),
        1);
    assert_string_equal(run_err, "ztbctl: request failed (HTTP 503 unavailable)\n");
}

/* Usage errors: exit 2, a message naming the fix, nothing sent. */
static void test_usage_errors(void **state)
{
    (void)state;
    refused(ARGV("agent"));
    assert_non_null(strstr(run_err, "usage: ztbctl agent add NAME"));
    refused(ARGV("agent", "frobnicate", "bot"));
    assert_string_equal(run_err, "ztbctl: unknown agent command 'frobnicate' (see ztbctl agent "
                                 "--help)\n");
    refused(ARGV("agent", "list", "extra"));
    assert_string_equal(run_err, "ztbctl: agent list takes no argument: 'extra' (see ztbctl "
                                 "agent --help)\n");
    refused(ARGV("agent", "inventory", "--all"));
    assert_string_equal(run_err, "ztbctl: agent inventory: unknown option '--all' (see ztbctl "
                                 "agent --help)\n");
    refused(ARGV("agent", "show"));
    assert_non_null(strstr(run_err, "usage: "));
    refused(ARGV("agent", "show", "bot", "extra"));
    refused(ARGV("agent", "add", "bot", "--ttl", "0"));
    assert_string_equal(run_err, "ztbctl: --ttl takes 1..604800 seconds (got '0')\n");
    refused(ARGV("agent", "add", "bot", "--ttl", "604801"));
    refused(ARGV("agent", "add", "bot", "--ttl", "1x"));
    refused(ARGV("agent", "add", "bot", "--ttl", ""));
    refused(ARGV("agent", "add", "bot", "--owner"));
    assert_string_equal(run_err, "ztbctl: agent add: --owner needs a value\n");
    refused(ARGV("agent", "add", "bot", "--ttl", "60", "extra"));
    assert_string_equal(run_err, "ztbctl: agent add: unknown argument 'extra' (agent add NAME "
                                 "[--owner X] [--description Y] [--ttl S]; see ztbctl agent "
                                 "--help)\n");
    refused(ARGV("agent", "join-token", "bot", "--owner", "x"));
    assert_string_equal(run_err, "ztbctl: agent join-token: unknown argument '--owner' (agent "
                                 "join-token NAME [--ttl S]; see ztbctl agent --help)\n");
    refused(ARGV("agent", "baseline", "bot", "--for", "60"));
    assert_string_equal(run_err, "ztbctl: --for goes with --relearn\n");
    refused(ARGV("agent", "baseline", "bot", "--relearn", "--for", "0"));
    assert_string_equal(run_err, "ztbctl: --for takes 1..31622400 seconds\n");
    refused(ARGV("agent", "baseline", "bot", "--now"));
    assert_string_equal(run_err, "ztbctl: agent baseline: unknown argument '--now' (see ztbctl "
                                 "agent --help)\n");
}

/* A name that is not an agent name is refused before anything is sent:
 * "a#b" would act on agent "a", ".." on another endpoint, a space or a
 * newline would end in a confusing transport error. */
static void test_bad_names(void **state)
{
    (void)state;
    static const char too_long[] = "a123456789012345678901234567890123456789012345678901234567890"
                                   "123"; /* 64 bytes */
    static const char *const bad[] = {"..",      ".",   "a#b",    "a b", "a\r\nX-Evil: 1",
                                      "a?x",     "a/b", "%2e%2e", "Bot", "-bot",
                                      "caf\xe9", "",    "a\"b",   "_x",  too_long};
    static const char *const verbs[] = {"show",       "delete",   "disable", "enable",
                                        "join-token", "baseline", "add"};
    for (size_t v = 0; v < sizeof(verbs) / sizeof(verbs[0]); v++)
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
            refused(ARGV("agent", verbs[v], bad[i]));
            assert_true(strncmp(run_err, "ztbctl: invalid agent name '", 28) == 0);
            assert_non_null(strstr(run_err, "(1-63 of a-z 0-9 . _ - starting with a letter or "
                                            "digit)\n"));
        }
    /* 63 bytes is the longest name */
    assert_int_equal(call("200 OK", AGENT,
                          ARGV("agent", "show",
                               "a12345678901234567890123456789012345678901234567890123456789"
                               "01")),
                     0);
}

/* --help prints the usage on stdout and succeeds, sending nothing. */
static void test_help(void **state)
{
    (void)state;
    assert_int_equal(run("/nonexistent/admin.sock", ARGV("agent", "--help")), 0);
    assert_true(strncmp(run_out, "usage: ztbctl agent add NAME", 28) == 0);
    assert_string_equal(run_err, "");
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN); /* the scripted server writes to clients that gave up */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_add),       cmocka_unit_test(test_join_token),
        cmocka_unit_test(test_reads),     cmocka_unit_test(test_changes),
        cmocka_unit_test(test_refusals),  cmocka_unit_test(test_usage_errors),
        cmocka_unit_test(test_bad_names), cmocka_unit_test(test_help),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
