/*
 * test_admin_access.c - who may reach the admin API and what they may do:
 * the operators' socket handed to a group (0660), the read-only socket
 * whose callers get 403 on every call that changes state (every route of
 * the broker's own table is tried, so a new route cannot be forgotten),
 * and every admin action attributed to the caller's user name, the sudo
 * user only when the peer is root.
 *
 * The callers are real processes of other users: a forked child takes
 * uid daemon (1) with the supplementary groups under test. The broker runs
 * as nobody (the harness drops it there when the test runs as root) and
 * keeps the two socket groups, adm (operators) and users (read-only).
 */
#include <grp.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "broker/admin/admin_roles.h"
#include "broker/broker.h"
#include "harness.h"

#define OPERATORS_GID 4   /* adm */
#define ANALYSTS_GID  100 /* users */
#define CALLER_UID    1   /* daemon */
#define BROKER_GID    65534

static struct zh_broker b;
static char sockdir[256], ro_sock[320];

static char *file_text(const char *path)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char *s = calloc(1, 1 << 20);
    size_t n = fread(s, 1, (1 << 20) - 1, f);
    s[n] = '\0';
    fclose(f);
    return s;
}

static char *audit_text(void)
{
    char path[400];
    snprintf(path, sizeof(path), "%s/audit/audit.log", b.state);
    return file_text(path);
}

/* One admin call on sock as this process, path in the URL (zh_http's
 * host is ignored); returns the status (0: no answer), the body in
 * *resp_body if wanted (caller frees). */
static long call_path(const char *sock, const char *method, const char *path, const char *body,
                      const char *const *headers, char **resp_body)
{
    char url[512];
    snprintf(url, sizeof(url), "http://localhost%s", path);
    struct zh_resp r;
    memset(&r, 0, sizeof(r));
    (void)zh_http(method, url, sock, body ? "application/json" : NULL, body,
                  body ? strlen(body) : 0, headers, &r);
    long st = r.status;
    if (resp_body != NULL)
        *resp_body = r.body ? strdup(r.body) : strdup("");
    zh_resp_free(&r);
    return st;
}

/*
 * Run one call as uid daemon with the supplementary groups given (n of
 * them) in a forked child; returns the HTTP status it got (0: the socket
 * could not be reached), or -1 if the child could not become that user.
 */
static long call_as(const gid_t *groups, size_t n, const char *sock, const char *method,
                    const char *path, const char *body, const char *const *headers)
{
    int pfd[2];
    assert_int_equal(pipe(pfd), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(pfd[0]);
        long st = -1;
        if (setgroups(n, groups) == 0 && setgid(BROKER_GID) == 0 && setuid(CALLER_UID) == 0)
            st = call_path(sock, method, path, body, headers, NULL);
        ssize_t w = write(pfd[1], &st, sizeof(st));
        _exit(w == (ssize_t)sizeof(st) ? 0 : 1);
    }
    close(pfd[1]);
    long st = -2;
    ssize_t got = read(pfd[0], &st, sizeof(st));
    close(pfd[0]);
    int ws;
    waitpid(pid, &ws, 0);
    assert_int_equal(got, (ssize_t)sizeof(st));
    return st;
}

/* The sockets are 0660 and belong to their groups. */
static void test_sockets_belong_to_their_groups(void **state)
{
    (void)state;
    struct stat st;
    assert_int_equal(stat(b.admin_sock, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0660);
    assert_int_equal(st.st_gid, OPERATORS_GID);
    assert_int_equal(stat(ro_sock, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0660);
    assert_int_equal(st.st_gid, ANALYSTS_GID);
}

/* Only members reach a socket; an analyst reads but changes nothing. */
static void test_group_members_only(void **state)
{
    (void)state;
    const gid_t ops[] = {OPERATORS_GID}, analysts[] = {ANALYSTS_GID}, none[] = {BROKER_GID};
    assert_int_equal(call_as(ops, 1, b.admin_sock, "GET", "/v1/agents", NULL, NULL), 200);
    assert_int_equal(call_as(none, 1, b.admin_sock, "GET", "/v1/agents", NULL, NULL), 0);
    assert_int_equal(call_as(analysts, 1, b.admin_sock, "GET", "/v1/agents", NULL, NULL), 0);
    assert_int_equal(call_as(none, 1, ro_sock, "GET", "/v1/agents", NULL, NULL), 0);
    assert_int_equal(call_as(analysts, 1, ro_sock, "GET", "/v1/agents", NULL, NULL), 200);

    /* an analyst's disable is refused and changes nothing */
    char *body = NULL;
    assert_int_equal(
        call_path(b.admin_sock, "POST", "/v1/agents", "{\"name\":\"ro-probe\"}", NULL, NULL), 201);
    assert_int_equal(
        call_as(analysts, 1, ro_sock, "POST", "/v1/agents/ro-probe/disable", NULL, NULL), 403);
    assert_int_equal(call_path(ro_sock, "POST", "/v1/quarantine",
                               "{\"agent\":\"ro-probe\",\"reason\":\"x\"}", NULL, &body),
                     403);
    assert_non_null(strstr(body, "read-only role: POST /v1/quarantine"));
    free(body);
    char *trail = audit_text();
    assert_non_null(strstr(trail, "\"event\":\"admin.readonly_refused\""));
    assert_non_null(strstr(trail, "\"path\":\"/v1/quarantine\""));
    free(trail);
    assert_int_equal(call_path(ro_sock, "GET", "/v1/agents/ro-probe", NULL, NULL, &body), 200);
    assert_non_null(strstr(body, "\"status\":\"active\""));
    assert_non_null(strstr(body, "\"quarantined\":false"));
    free(body);
}

/* Every route of the admin table, with every method it takes: a call that
 * writes is refused on the read-only socket, a read is answered. */
static void test_every_write_refused_on_the_readonly_socket(void **state)
{
    (void)state;
    static const char *const methods[] = {"GET", "POST", "PUT", "DELETE", "PATCH"};
    static const char *const tails[] = {"ro-probe", "ro-probe/disable", "ro-probe/approve"};
    unsigned writes = 0, reads = 0;
    for (size_t i = 0; i < admin_routes_n; i++) {
        const struct http_route *r = &admin_routes[i];
        size_t pl = strlen(r->path);
        int prefix = r->path[pl - 1] == '*';
        for (size_t m = 0; m < sizeof(methods) / sizeof(methods[0]); m++) {
            if (r->method != NULL && strcmp(r->method, methods[m]) != 0)
                continue;
            for (size_t t = 0; t < (prefix ? sizeof(tails) / sizeof(tails[0]) : 1); t++) {
                char path[256];
                if (prefix)
                    snprintf(path, sizeof(path), "%.*s%s", (int)(pl - 1), r->path, tails[t]);
                else
                    snprintf(path, sizeof(path), "%s", r->path);
                int w = admin_route_writes(methods[m], path);
                /* only GET may ever read */
                if (strcmp(methods[m], "GET") != 0 && !w)
                    fail_msg("%s %s is in the read table", methods[m], path);
                char *body = NULL;
                long st = call_path(ro_sock, methods[m], path, w ? "{}" : NULL, NULL, &body);
                if (w && (st != 403 || strstr(body, "read-only role: ") == NULL))
                    fail_msg("%s %s on the read-only socket: %ld %s", methods[m], path, st, body);
                if (!w && (st == 403 || st == 0))
                    fail_msg("%s %s (a read) on the read-only socket: %ld %s", methods[m], path, st,
                             body);
                free(body);
                writes += (unsigned)w;
                reads += (unsigned)!w;
            }
        }
    }
    assert_true(writes >= 20);
    assert_true(reads >= 20);
    /* what is not in the table writes: a route added tomorrow is refused */
    assert_int_equal(admin_route_writes("GET", "/v1/some-new-route"), 1);
    assert_int_equal(admin_route_writes("GET", "/v1/agent"), 1);
    assert_int_equal(admin_route_writes("POST", "/v1/agents"), 1);
    assert_int_equal(admin_route_writes("GET", "/v1/agents"), 0);
}

/* The audit names the user: root as root, ztbctl under sudo as the sudo
 * user; anyone else who claims a sudo user is still themselves. */
static void test_actions_attributed_to_user_names(void **state)
{
    (void)state;
    assert_int_equal(
        call_path(b.admin_sock, "POST", "/v1/agents", "{\"name\":\"attr-bot\"}", NULL, NULL), 201);
    char *audit = audit_text();
    assert_non_null(strstr(audit, "\"actor\":\"operator:root\""));
    assert_null(strstr(audit, "operator:uid="));
    free(audit);

    /* ztbctl run as root under sudo: the invoking user */
    setenv("SUDO_USER", "alice", 1);
    const char *argv[] = {zh_bin("ztbctl"), "--socket", b.admin_sock, "agent",
                          "disable",        "attr-bot", NULL};
    char *out = NULL, *err = NULL;
    int rc = zh_run(argv, &out, &err);
    unsetenv("SUDO_USER");
    if (rc != 0)
        fail_msg("ztbctl agent disable: %s", err);
    free(out);
    free(err);
    audit = audit_text();
    const char *dis = strstr(audit, "\"event\":\"admin.agent_disabled\"");
    assert_non_null(dis);
    const char *eol = strchr(dis, '\n');
    const char *who = strstr(dis, "\"actor\":\"operator:alice\"");
    assert_true(who != NULL && (eol == NULL || who < eol));
    free(audit);

    /* attack: an operator who is not root names another user */
    const gid_t ops[] = {OPERATORS_GID};
    const char *const spoof[] = {ADMIN_SUDO_USER_HEADER ": mallory", NULL};
    assert_int_equal(
        call_as(ops, 1, b.admin_sock, "POST", "/v1/agents/attr-bot/enable", NULL, spoof), 200);
    audit = audit_text();
    assert_null(strstr(audit, "mallory"));
    const char *en = strstr(audit, "\"event\":\"admin.agent_enabled\"");
    assert_non_null(en);
    eol = strchr(en, '\n');
    who = strstr(en, "\"actor\":\"operator:daemon\"");
    assert_true(who != NULL && (eol == NULL || who < eol));
    free(audit);
}

static int setup(void **state)
{
    (void)state;
    if (geteuid() != 0)
        fail_msg("test_admin_access needs root (it calls as other users); CI runs as root");
    zh_tmpdir(sockdir, sizeof(sockdir));
    /* the broker (nobody) makes its sockets here; callers may traverse it */
    assert_int_equal(chown(sockdir, 65534, BROKER_GID), 0);
    assert_int_equal(chmod(sockdir, 0755), 0);
    static char main_sock[320];
    snprintf(main_sock, sizeof(main_sock), "%s/admin.sock", sockdir);
    snprintf(ro_sock, sizeof(ro_sock), "%s/admin-ro.sock", sockdir);
    const char *extra[] = {"--admin-socket",
                           main_sock,
                           "--admin-group",
                           "adm",
                           "--admin-readonly-socket",
                           ro_sock,
                           "--admin-readonly-group",
                           "users",
                           NULL};
    struct zh_broker_opts o = {.with_keys = 1, .extra_args = extra};
    zh_broker_start(&b, &o);
    snprintf(b.admin_sock, sizeof(b.admin_sock), "%s", main_sock);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    assert_int_equal(zh_broker_stop(&b), 0);
    zh_rmtree(b.dir);
    zh_rmtree(sockdir);
    return 0;
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sockets_belong_to_their_groups),
        cmocka_unit_test(test_group_members_only),
        cmocka_unit_test(test_every_write_refused_on_the_readonly_socket),
        cmocka_unit_test(test_actions_attributed_to_user_names),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
