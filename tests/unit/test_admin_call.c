/*
 * test_admin_call.c - ztbctl's calls to the admin API (cli/admin_call.c),
 * run as an operator runs them against a scripted server: what it sends,
 * and what it prints for an answer, a refusal, an answer that is not JSON
 * and a socket nobody listens on. The texts are the ones ztbctl printed
 * before the admin client became a library: they must not change.
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
#include <sys/stat.h>
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

#define AGENTS                                                                                     \
    "{\"agents\":[{\"name\":\"bot\",\"status\":\"active\",\"generation\":3,"                       \
    "\"quarantined\":false,\"approval_required\":true,\"created\":1700000000,"                     \
    "\"spiffe_id\":\"spiffe://ztb.local/agent/bot\"}]}"

static void test_answer_printed(void **state)
{
    (void)state;
    char a[1024];
    snprintf(a, sizeof(a), "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n%s", strlen(AGENTS),
             AGENTS);
    struct server *s = server_start(a, 0);
    assert_int_equal(run(s->path, "agent list"), 0);
    server_wait(s);
    assert_true(strncmp(s->request, "GET /v1/agents HTTP/1.1\r\n", 25) == 0);
    server_free(s);
    assert_string_equal(out, "NAME  STATUS  GEN  QUARANTINED  APPROVAL  CREATED               "
                             "SPIFFE ID\n"
                             "bot   active  3    no           yes       2023-11-14T22:13:20Z  "
                             "spiffe://ztb.local/agent/bot\n");
}

static void test_body_sent_as_json(void **state)
{
    (void)state;
    static const char a[] = "HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\n{}";
    struct server *s = server_start(a, 0);
    run(s->path, "agent add new-bot --ttl 60");
    server_wait(s);
    assert_true(strncmp(s->request, "POST /v1/agents HTTP/1.1\r\n", 26) == 0);
    assert_non_null(strcasestr(s->request, "\r\nContent-Type: application/json\r\n"));
    const char *body = strstr(s->request, "\r\n\r\n") + 4;
    assert_non_null(strstr(body, "\"name\":\"new-bot\""));
    server_free(s);
}

static void test_refusal_printed(void **state)
{
    (void)state;
    static const char a[] = "HTTP/1.1 404 Not Found\r\nContent-Length: 60\r\n\r\n"
                            "{\"error\":\"not_found\",\"error_description\":\"no agent 'ghost'\"}";
    struct server *s = server_start(a, 0);
    assert_int_equal(run(s->path, "agent show ghost"), 1);
    server_stop(s);
    assert_string_equal(out, "ztbctl: no agent 'ghost' (HTTP 404 not_found)\n");

    static const char b[] = "HTTP/1.1 500 Oops\r\nContent-Length: 2\r\n\r\n{}";
    s = server_start(b, 0);
    assert_int_equal(run(s->path, "agent list"), 1);
    server_stop(s);
    assert_string_equal(out, "ztbctl: request failed (HTTP 500 )\n");
}

static void test_not_json_printed(void **state)
{
    (void)state;
    static const char a[] = "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\n<html>";
    struct server *s = server_start(a, 0);
    assert_int_equal(run(s->path, "agent list"), 1);
    server_stop(s);
    assert_string_equal(out, "ztbctl: the broker answered HTTP 200 with something that is not "
                             "JSON\n");
}

static void test_unreachable_printed(void **state)
{
    (void)state;
    /* no directory: nothing can be listening there */
    assert_int_equal(run("/nonexistent/admin.sock", "agent list"), 1);
    assert_string_equal(out, "ztbctl: cannot reach the admin socket /nonexistent/admin.sock: no "
                             "such directory: /nonexistent: nothing is listening there (is "
                             "ztb-broker running? --socket or $ZTB_ADMIN_SOCKET name another)\n");

    /* a socket file left behind by a broker that stopped */
    char path[108];
    snprintf(path, sizeof(path), "/tmp/ztb-test-stale-%d.sock", (int)getpid());
    unlink(path);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    close(fd);
    assert_int_equal(run(path, "agent list"), 1);
    unlink(path);
    char want[512];
    snprintf(want, sizeof(want),
             "ztbctl: cannot reach the admin socket %s: nothing is listening on it (Couldn't "
             "connect to server): is ztb-broker running? (--socket or $ZTB_ADMIN_SOCKET name "
             "another)\n",
             path);
    assert_string_equal(out, want);
}

/* A socket in a directory this user may not enter: the answer names the
 * directory, its owner and mode, and who is asking (not "is ztb-broker
 * running?", which sends the operator looking in the wrong place). As root
 * the call runs as nobody (setpriv), since root passes every check. */
static void test_permission_problem_named(void **state)
{
    (void)state;
    char dir[64];
    snprintf(dir, sizeof(dir), "/tmp/ztb-test-perm-%d", (int)getpid());
    assert_int_equal(mkdir(dir, 0700), 0);
    struct server *s = server_start(NULL, 0);
    char sock[128];
    snprintf(sock, sizeof(sock), "%s/admin.sock", dir);
    assert_int_equal(rename(s->path, sock), 0);
    if (geteuid() != 0)
        assert_int_equal(chmod(dir, 0), 0);
    const char *bin = getenv("ZTB_BUILD_DIR");
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), "%s'%s/bin/ztbctl' --socket '%s' agent list 2>&1",
             geteuid() == 0 ? "setpriv --reuid=65534 --regid=65534 --clear-groups " : "",
             bin ? bin : ".", sock);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t n = fread(out, 1, sizeof(out) - 1, p);
    out[n] = '\0';
    int st = pclose(p);
    chmod(dir, 0700);
    unlink(sock);
    rmdir(dir);
    close(s->lfd);
    /* the server thread still waits in accept: wake it */
    pthread_cancel(s->th);
    pthread_join(s->th, NULL);
    free(s);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 1);
    char want[512];
    snprintf(want, sizeof(want),
             "ztbctl: cannot reach the admin socket %s: permission denied on %s (owned by ", sock,
             dir);
    assert_true(strncmp(out, want, strlen(want)) == 0);
    assert_non_null(strstr(out, geteuid() == 0 ? "mode 0700; you are nobody, uid 65534)"
                                               : "mode 0000; you are "));
    assert_null(strstr(out, "is ztb-broker running"));
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN); /* the scripted server writes to clients that gave up */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_answer_printed),      cmocka_unit_test(test_body_sent_as_json),
        cmocka_unit_test(test_refusal_printed),     cmocka_unit_test(test_not_json_printed),
        cmocka_unit_test(test_unreachable_printed), cmocka_unit_test(test_permission_problem_named),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
