/*
 * test_cmd_approvals.c - `ztbctl approvals ...` and `ztbctl approvers ...`
 * (cli/cmd_approvals.c) run as an operator runs them, against a scripted
 * admin server: the request each sends (the invoking user under sudo
 * only), what is printed for the broker's answers and refusals, and the
 * usage errors that send nothing; `approvals watch` against a server whose
 * list changes between polls, until interrupted or the broker goes away.
 */
#define _GNU_SOURCE /* strcasestr */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
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
/* A broker for `approvals watch`: the i-th poll gets answers[i] (the
 * last one again after that), until stopped; with close_after, the
 * listening socket goes away after that many polls. */
struct poller {
    int lfd;
    char path[108];
    const char *const *answers;
    size_t n, close_after;
    _Atomic int polls, stop;
    pthread_t th;
};

static void *poller_main(void *arg)
{
    struct poller *p = arg;
    while (!atomic_load(&p->stop)) {
        struct pollfd pf = {.fd = p->lfd, .events = POLLIN};
        if (poll(&pf, 1, 50) != 1)
            continue;
        int fd = accept(p->lfd, NULL, NULL);
        if (fd < 0)
            continue;
        char req[4096];
        size_t got = 0;
        ssize_t r;
        while (got < sizeof(req) - 1 && (r = read(fd, req + got, sizeof(req) - 1 - got)) > 0) {
            got += (size_t)r;
            req[got] = '\0';
            if (strstr(req, "\r\n\r\n") != NULL)
                break;
        }
        size_t i = (size_t)atomic_fetch_add(&p->polls, 1);
        const char *body = p->answers[i < p->n ? i : p->n - 1];
        char a[8192];
        int an = snprintf(a, sizeof(a),
                          "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                          "Content-Length: %zu\r\n\r\n%s",
                          strlen(body), body);
        (void)!write(fd, a, (size_t)an);
        close(fd);
        if (p->close_after > 0 && i + 1 >= p->close_after) {
            close(p->lfd);
            unlink(p->path);
            p->lfd = -1;
            break;
        }
    }
    return NULL;
}

static void poller_start(struct poller *p, const char *const *answers, size_t n, size_t close_after)
{
    memset(p, 0, sizeof(*p));
    snprintf(p->path, sizeof(p->path), "/tmp/ztb-test-watch-%d.sock", (int)getpid());
    unlink(p->path);
    p->lfd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path, sizeof(a.sun_path), "%s", p->path);
    assert_int_equal(bind(p->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(p->lfd, 8), 0);
    p->answers = answers;
    p->n = n;
    p->close_after = close_after;
    assert_int_equal(pthread_create(&p->th, NULL, poller_main, p), 0);
}

static void poller_stop(struct poller *p)
{
    atomic_store(&p->stop, 1);
    pthread_join(p->th, NULL);
    if (p->lfd >= 0) {
        close(p->lfd);
        unlink(p->path);
    }
}

#define WATCH_A(st)                                                                                \
    "{\"id\":\"apr_A\",\"status\":\"" st "\",\"agent\":\"bot\",\"action\":\"read\","               \
    "\"audience\":\"crm\",\"resource\":\"crm:/a\",\"group\":\"ops\"}"
#define WATCH_B                                                                                    \
    "{\"id\":\"apr_B\",\"status\":\"approved\",\"agent\":\"bot\",\"action\":\"read\","             \
    "\"audience\":\"crm\",\"resource\":\"crm:/b\",\"group\":\"ops\"}"
#define WATCH_C                                                                                    \
    "{\"id\":\"apr_C\",\"status\":\"pending\",\"agent\":\"etl\",\"action\":\"write\","             \
    "\"audience\":\"db\",\"resource\":\"db:/c\",\"group\":\"dba\"}"

/*
 * watch: the first poll prints only what still waits (not the history);
 * each later poll prints what is new or changed status, oldest first, and
 * nothing twice; SIGINT ends it with exit 0 at once (not after the
 * interval). The list is newest first, as the broker sends it.
 */
static void test_watch(void **state)
{
    (void)state;
    static const char *const answers[] = {
        "{\"approvals\":[" WATCH_A("pending") "," WATCH_B "]}",
        "{\"approvals\":[" WATCH_C "," WATCH_A("approved") "," WATCH_B "]}",
    };
    struct poller p;
    poller_start(&p, answers, 2, 0);
    struct spawned sp;
    spawn(&sp, p.path, ARGV("approvals", "watch", "--interval", "1"));
    assert_true(wait_out(&sp, "apr_C pending", 1, 5000));
    while (atomic_load(&p.polls) < 3) /* a poll with nothing new */
        usleep(20000);
    usleep(100000);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int rc = finish(&sp, SIGINT);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    poller_stop(&p);
    assert_int_equal(rc, 0);
    assert_true(t1.tv_sec - t0.tv_sec < 1 ||
                (t1.tv_sec - t0.tv_sec == 1 && t1.tv_nsec < t0.tv_nsec));
    const char *a1 = strstr(sp.got, " apr_A pending  agent=bot action=read audience=crm "
                                    "resource=crm:/a group=ops\n");
    const char *a2 = strstr(sp.got, " apr_A approved agent=bot");
    const char *c = strstr(sp.got, " apr_C pending  agent=etl action=write audience=db "
                                   "resource=db:/c group=dba\n");
    if (a1 == NULL || a2 == NULL || c == NULL || strstr(sp.got, "apr_B") != NULL)
        fail_msg("watch printed:\n%s", sp.got);
    assert_true(a1 < a2 && a2 < c); /* oldest first, poll after poll */
    int lines = 0;
    for (const char *q = sp.got; (q = strchr(q, '\n')) != NULL; q++)
        lines++;
    assert_int_equal(lines, 3);
    assert_string_equal(run_err, "");
}

/* watch: the broker going away ends it with exit 1 and says why. */
static void test_watch_broker_gone(void **state)
{
    (void)state;
    static const char *const answers[] = {"{\"approvals\":[" WATCH_A("pending") "]}"};
    struct poller p;
    poller_start(&p, answers, 1, 1);
    struct spawned sp;
    spawn(&sp, p.path, ARGV("approvals", "watch", "--interval", "1"));
    assert_true(wait_out(&sp, "apr_A pending", 1, 5000));
    int rc = finish(&sp, 0);
    poller_stop(&p);
    assert_int_equal(rc, 1);
    if (strstr(run_err, "ztbctl: ") == NULL)
        fail_msg("no message: '%s'", run_err);
}

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
        cmocka_unit_test(test_list_show),         cmocka_unit_test(test_decide),
        cmocka_unit_test(test_sudo_user),         cmocka_unit_test(test_approvers),
        cmocka_unit_test(test_usage_errors),      cmocka_unit_test(test_watch),
        cmocka_unit_test(test_watch_broker_gone),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
