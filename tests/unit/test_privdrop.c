/*
 * test_privdrop.c - dropping root. The drop itself is irreversible, so each
 * case that really drops runs in a child process. Root changes the owner of
 * nothing below the state directory: a tree that is not the service user's
 * is refused with the fix; the race with the user swapping paths is in
 * tests/integration/test_process_hardening.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "broker/privdrop.h"

static void test_not_root_is_noop(void **state)
{
    (void)state;
    if (geteuid() == 0) {
        /* exercise the same path as a non-root user would: in a child that
         * first becomes nobody by other means */
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            if (setgid(65534) != 0 || setuid(65534) != 0)
                _exit(3);
            char err[256];
            _exit(privdrop("no-such-user", "/", err, sizeof(err)) == ZTB_OK ? 0 : 1);
        }
        int st;
        waitpid(pid, &st, 0);
        assert_true(WIFEXITED(st));
        assert_int_equal(WEXITSTATUS(st), 0);
        return;
    }
    char err[256];
    assert_int_equal(privdrop("no-such-user", "/", err, sizeof(err)), ZTB_OK);
}

static void test_root_drop(void **state)
{
    (void)state;
    if (geteuid() != 0) {
        /* as a normal user there is nothing to drop: covered above */
        char err[256];
        assert_int_equal(privdrop("root", "/", err, sizeof(err)), ZTB_OK);
        return;
    }
    char err[512];
    assert_int_equal(privdrop("no-such-user-xyz", "/tmp", err, sizeof(err)), ZTB_ERR_NOT_FOUND);
    assert_non_null(strstr(err, "useradd"));
    assert_int_equal(privdrop("root", "/tmp", err, sizeof(err)), ZTB_ERR_PERMISSION);

    char dir[] = "/tmp/ztb-drop-XXXXXX";
    assert_non_null(mkdtemp(dir));
    chmod(dir, 0711);
    char state_dir[64], inner[96], link[96];
    snprintf(state_dir, sizeof(state_dir), "%s/state", dir);
    mkdir(state_dir, 0700);
    snprintf(inner, sizeof(inner), "%s/file", state_dir);
    FILE *f = fopen(inner, "w");
    fclose(f);
    /* a symlink in the state dir must not make anything touch its target */
    snprintf(link, sizeof(link), "%s/evil", state_dir);
    assert_int_equal(symlink("/etc/passwd", link), 0);

    /* root's and not empty: refused, nothing changes owner */
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char e[512];
        ztb_err rv = privdrop("nobody", state_dir, e, sizeof(e));
        _exit(rv == ZTB_ERR_PERMISSION && strstr(e, state_dir) && strstr(e, "chown -hR nobody:")
                  ? 0
                  : 1);
    }
    int st;
    waitpid(pid, &st, 0);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
    struct stat sb;
    assert_int_equal(lstat(state_dir, &sb), 0);
    assert_int_equal(sb.st_uid, 0);

    /* the service user's directory with a root-owned file below: refused,
     * naming the file */
    assert_int_equal(chown(state_dir, 65534, 65534), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char e[512];
        ztb_err rv = privdrop("nobody", state_dir, e, sizeof(e));
        _exit(rv == ZTB_ERR_PERMISSION && strstr(e, inner) && strstr(e, "belongs to uid 0") ? 0
                                                                                            : 1);
    }
    waitpid(pid, &st, 0);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
    assert_int_equal(lstat(inner, &sb), 0);
    assert_int_equal(sb.st_uid, 0);

    /* installed right (the tree is the user's): it starts */
    assert_int_equal(lchown(inner, 65534, 65534), 0);
    assert_int_equal(lchown(link, 65534, 65534), 0);

    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char e[512];
        if (privdrop("nobody", state_dir, e, sizeof(e)) != ZTB_OK)
            _exit(1);
        if (prctl(PR_GET_DUMPABLE) != 0)
            _exit(4);
        if (getuid() == 0 || geteuid() == 0 || setuid(0) == 0)
            _exit(2);
        FILE *w = fopen(inner, "a"); /* the state dir is ours now */
        if (w == NULL)
            _exit(3);
        fclose(w);
        _exit(0);
    }
    waitpid(pid, &st, 0);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
    assert_int_equal(stat("/etc/passwd", &sb), 0);
    assert_int_equal(sb.st_uid, 0);

    /* root's and empty (just made by the broker): handed over, itself only */
    char fresh[64];
    snprintf(fresh, sizeof(fresh), "%s/fresh", dir);
    assert_int_equal(mkdir(fresh, 0700), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char e[512];
        _exit(privdrop("nobody", fresh, e, sizeof(e)) == ZTB_OK ? 0 : 1);
    }
    waitpid(pid, &st, 0);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
    assert_int_equal(lstat(fresh, &sb), 0);
    assert_int_equal(sb.st_uid, 65534);

    /* a symlink as the state dir itself is not followed */
    char alias[64];
    snprintf(alias, sizeof(alias), "%s/alias", dir);
    assert_int_equal(symlink("/etc", alias), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char e[512];
        ztb_err rv = privdrop("nobody", alias, e, sizeof(e));
        _exit(rv == ZTB_ERR_PERMISSION && strstr(e, "not a symlink") ? 0 : 1);
    }
    waitpid(pid, &st, 0);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
    assert_int_equal(stat("/etc", &sb), 0);
    assert_int_equal(sb.st_uid, 0);

    /* a state dir the user cannot reach gets a clear error */
    chmod(dir, 0700);
    pid = fork();
    if (pid == 0) {
        char e[512];
        ztb_err rv = privdrop("nobody", state_dir, e, sizeof(e));
        _exit(rv == ZTB_ERR_PERMISSION && strstr(e, "not accessible") ? 0 : 1);
    }
    waitpid(pid, &st, 0);
    assert_int_equal(WEXITSTATUS(st), 0);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_not_root_is_noop),
        cmocka_unit_test(test_root_drop),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
