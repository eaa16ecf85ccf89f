/*
 * test_cmd_approvals.c - `ztbctl approvals ...` and `ztbctl approvers ...`
 * (cli/cmd_approvals.c) run as an operator runs them, against a scripted
 * admin server: the request each sends (the invoking user under sudo
 * only), what is printed for the broker's answers and refusals, and the
 * usage errors that send nothing. `approvals watch` polls until
 * interrupted and is not run here.
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

#define APR "apr_AbC-1_x"
#define APPROVAL                                                                                   \
    "{\"id\":\"" APR "\",\"status\":\"pending\",\"agent\":\"bot\",\"generation\":2,"               \
    "\"action\":\"read\",\"audience\":\"crm\",\"resource\":\"crm:/a\",\"group\":\"ops\","          \
    "\"approvers_needed\":2,\"approved_by\":[\"alice\"],\"created\":1700000000,"                   \
    "\"expires\":1700000300}"

/* list: GET /v1/approvals as a table; show: GET /v1/approvals/ID. */
static void test_list_show(void **state)
{
    (void)state;
    assert_int_equal(call("200 OK", "{\"approvals\":[" APPROVAL "]}", ARGV("approvals", "list")),
                     0);
    assert_string_equal(req_line, "GET /v1/approvals HTTP/1.1");
    assert_string_equal(run_out, "ID           STATUS   AGENT  ACTION  RESOURCE  GROUP  NEED  "
                                 "APPROVED_BY  EXPIRES\n" APR "  pending  bot    read    crm:/a"
                                 "    ops    2     alice        2023-11-14T22:18:20Z\n");
    assert_int_equal(call("200 OK", APPROVAL, ARGV("approvals", "show", APR)), 0);
    assert_string_equal(req_line, "GET /v1/approvals/" APR " HTTP/1.1");
    assert_non_null(strstr(run_out, "\nagent         bot (generation 2)\n"));
    assert_non_null(strstr(run_out, "\ngroup         ops (2 approver(s) needed)\n"));
    assert_non_null(strstr(run_out, "\napproved by   alice\n"));
    assert_non_null(strstr(run_out, "\nexpires       2023-11-14T22:18:20Z\n"));
    assert_int_equal(call("404 Not Found",
                          "{\"error\":\"not_found\",\"error_description\":\"no approval " APR "\"}",
                          ARGV("approvals", "show", APR)),
                     1);
    assert_string_equal(run_err, "ztbctl: no approval " APR " (HTTP 404 not_found)\n");
}

/* approve and deny: POST .../approve|deny, the reason escaped; what the
 * broker says of the approval printed. */
static void test_decide(void **state)
{
    (void)state;
    assert_int_equal(call("200 OK", "{\"status\":\"pending\",\"approvers_needed\":2}",
                          ARGV("approvals", "approve", APR)),
                     0);
    assert_string_equal(req_line, "POST /v1/approvals/" APR "/approve HTTP/1.1");
    assert_string_equal(req_body, "{}");
    assert_string_equal(run_out, APR ": approval recorded; waiting for 2 approver(s) in all\n");
    assert_int_equal(call("200 OK", "{\"status\":\"approved\"}", ARGV("approvals", "approve", APR)),
                     0);
    assert_string_equal(run_out, APR ": approved\n");
    assert_int_equal(call("200 OK", "{\"status\":\"denied\"}",
                          ARGV("approvals", "deny", APR, "--reason", "not \"now\"\n")),
                     0);
    assert_string_equal(req_line, "POST /v1/approvals/" APR "/deny HTTP/1.1");
    assert_string_equal(req_body, "{\"reason\":\"not \\\"now\\\"\\n\"}");
    assert_string_equal(run_out, APR ": denied\n");
    assert_int_equal(
        call("200 OK", "{\"status\":\"denied\"}", ARGV("--quiet", "approvals", "deny", APR)), 0);
    assert_string_equal(run_out, "");
    assert_int_equal(call("403 Forbidden",
                          "{\"error\":\"forbidden\",\"error_description\":\"root is not in "
                          "group ops\"}",
                          ARGV("approvals", "approve", APR)),
                     1);
    assert_string_equal(run_out, "");
    assert_string_equal(run_err, "ztbctl: root is not in group ops (HTTP 403 forbidden)\n");
}

/* Under sudo (root with SUDO_USER) the invoking user is named, in the body
 * and the Ztb-Sudo-User header; otherwise never. */
static void test_sudo_user(void **state)
{
    (void)state;
    run_sudo_user = "alice";
    assert_int_equal(call("200 OK", "{\"status\":\"approved\"}", ARGV("approvals", "approve", APR)),
                     0);
    run_sudo_user = NULL;
    if (geteuid() == 0) {
        assert_string_equal(req_body, "{\"sudo_user\":\"alice\"}");
        assert_non_null(strcasestr(req_head, "\r\nZtb-Sudo-User: alice\r\n"));
    } else {
        assert_string_equal(req_body, "{}");
        assert_null(strcasestr(req_head, "Ztb-Sudo-User"));
    }
    assert_int_equal(call("200 OK", "{\"status\":\"approved\"}", ARGV("approvals", "approve", APR)),
                     0);
    assert_string_equal(req_body, "{}");
    assert_null(strcasestr(req_head, "Ztb-Sudo-User"));
}

/* approvers list [GROUP], add and remove. */
static void test_approvers(void **state)
{
    (void)state;
    assert_int_equal(call("200 OK", "{\"groups\":{\"ops\":[\"alice\",\"bob\"],\"sec\":[]}}",
                          ARGV("approvers", "list")),
                     0);
    assert_string_equal(req_line, "GET /v1/approvers HTTP/1.1");
    assert_string_equal(run_out, "ops: alice,bob\nsec: -\n");
    assert_int_equal(call("200 OK", "{\"users\":[\"alice\"]}", ARGV("approvers", "list", "ops")),
                     0);
    assert_string_equal(req_line, "GET /v1/approvers/ops HTTP/1.1");
    assert_string_equal(run_out, "ops: alice\n");
    assert_int_equal(
        call("200 OK", "{\"changed\":true}", ARGV("approvers", "add", "ops", "a.b_c-1")), 0);
    assert_string_equal(req_line, "POST /v1/approvers/ops/add HTTP/1.1");
    assert_string_equal(req_body, "{\"user\":\"a.b_c-1\"}");
    assert_string_equal(run_out, "a.b_c-1 added to ops\n");
    assert_int_equal(
        call("200 OK", "{\"changed\":false}", ARGV("approvers", "remove", "ops", "bob")), 0);
    assert_string_equal(req_line, "POST /v1/approvers/ops/remove HTTP/1.1");
    assert_string_equal(run_out, "bob removed from ops (no change)\n");
    assert_int_equal(call("404 Not Found",
                          "{\"error\":\"not_found\",\"error_description\":\"no group ops\"}",
                          ARGV("approvers", "list", "ops")),
                     1);
    assert_string_equal(run_err, "ztbctl: no group ops (HTTP 404 not_found)\n");
}

/* Usage errors: exit 2, nothing sent. */
static void test_usage_errors(void **state)
{
    (void)state;
    refused(ARGV("approvals"));
    assert_non_null(strstr(run_err, "usage: ztbctl approvals list"));
    refused(ARGV("approvals", "list", "x"));
    refused(ARGV("approvals", "show"));
    refused(ARGV("approvals", "grant", APR));
    static const char *const bad[] = {
        "apr_",   "x_12345", "apr_a/b",  "apr_a#b",
        "apr_..", "apr_a b", "apr_\xff", "apr_123456789012345678901234567890123456"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        refused(ARGV("approvals", "approve", bad[i]));
        assert_non_null(strstr(run_err, "is not an approval id (apr_...; see ztbctl approvals "
                                        "list)\n"));
    }
    refused(ARGV("approvals", "approve", APR, "--reason", "x"));
    refused(ARGV("approvals", "show", APR, "extra"));
    refused(ARGV("approvals", "deny", APR, "--reason"));
    refused(ARGV("approvals", "deny", APR, "--reason", "caf\xe9"));
    assert_string_equal(run_err, "ztbctl: approvals deny: the value of --reason is not UTF-8\n");
    refused(ARGV("approvals", "watch", "--interval", "0"));
    assert_string_equal(run_err, "ztbctl: --interval takes 1..3600 seconds\n");
    refused(ARGV("approvals", "watch", "--interval", "3601"));
    refused(ARGV("approvals", "watch", "--every", "2"));
    refused(ARGV("approvers"));
    refused(ARGV("approvers", "add", "ops"));
    refused(ARGV("approvers", "add", "ops", "bob", "carol"));
    refused(ARGV("approvers", "drop", "ops", "bob"));
    refused(ARGV("approvers", "list", "ops", "bob"));
    refused(ARGV("approvers", "add", "ops", "-bob"));
    assert_string_equal(run_err, "ztbctl: '-bob' is not a group or user name (A-Z a-z 0-9 . _ "
                                 "-)\n");
    refused(ARGV("approvers", "add", "o/p", "bob"));
    refused(ARGV("approvers", "add", "ops", "b\"ob"));
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN); /* the scripted server writes to clients that gave up */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_list_show),    cmocka_unit_test(test_decide),
        cmocka_unit_test(test_sudo_user),    cmocka_unit_test(test_approvers),
        cmocka_unit_test(test_usage_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
