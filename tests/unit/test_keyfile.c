/*
 * test_keyfile.c - atomic, permission-checked key file I/O: exact modes
 * whatever the umask, replace versus create-only, no temporary files left,
 * the order of the crash points, and every refusal on read (symlinks,
 * non-regular files, loose modes, size caps), passphrase files.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <fcntl.h>

#include "pki_test.h"

#include "common/secret.h"
#include "pki/keyfile.h"

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wformat-truncation"
#endif

static char *dir;
static int dfd = -1;

static int setup(void **state)
{
    (void)state;
    dir = pkt_tmpdir();
    return ztb_keyfile_open_dir(dir, &dfd) == ZTB_OK ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    close(dfd);
    pkt_rmdir(dir);
    return 0;
}

/* dir/name in one of a few rotating buffers (two may be used in one call) */
static const char *p(const char *name)
{
    static char buf[4][1024];
    static int i;
    char *b = buf[i++ % 4];
    snprintf(b, sizeof(buf[0]), "%s/%s", dir, name);
    return b;
}

static int count_entries(void)
{
    int n = 0;
    int d = openat(dfd, ".", O_RDONLY | O_DIRECTORY);
    DIR *dd = fdopendir(d);
    struct dirent *e;
    while ((e = readdir(dd)) != NULL)
        n += e->d_name[0] != '.' || strstr(e->d_name, ".tmp.") != NULL;
    closedir(dd);
    return n;
}

static void test_write_atomic_modes(void **state)
{
    (void)state;
    mode_t old = umask(0);
    assert_int_equal(ztb_keyfile_write_atomic(dfd, "a", "one", 3, 0600), ZTB_OK);
    umask(old);
    struct stat st;
    assert_int_equal(lstat(p("a"), &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    /* replace keeps it atomic and exact; a wide umask cannot widen it */
    old = umask(0077);
    assert_int_equal(ztb_keyfile_write_atomic(dfd, "a", "second", 6, 0644), ZTB_OK);
    umask(old);
    assert_int_equal(lstat(p("a"), &st), 0);
    assert_int_equal(st.st_mode & 07777, 0644);
    ztb_buf b;
    ztb_buf_init(&b, 100);
    assert_int_equal(ztb_keyfile_read(dfd, "a", 100, ZTB_KEYFILE_PUBLIC, &b), ZTB_OK);
    assert_string_equal(ztb_buf_cstr(&b), "second");
    ztb_buf_free(&b);
    assert_int_equal(count_entries(), 1); /* no temporary left behind */
    /* names must be plain */
    assert_int_equal(ztb_keyfile_write_atomic(dfd, "x/y", "1", 1, 0600), ZTB_ERR_INVALID_ARG);
    assert_int_equal(ztb_keyfile_write_atomic(dfd, "..", "1", 1, 0600), ZTB_ERR_INVALID_ARG);
    assert_int_equal(ztb_keyfile_write_atomic(dfd, "", "1", 1, 0600), ZTB_ERR_INVALID_ARG);
    unlink(p("a"));
}

static void test_write_new(void **state)
{
    (void)state;
    assert_int_equal(ztb_keyfile_write_new(dfd, "n", "1", 1, 0600), ZTB_OK);
    assert_int_equal(ztb_keyfile_write_new(dfd, "n", "2", 1, 0600), ZTB_ERR_EXISTS);
    ztb_buf b;
    ztb_buf_init(&b, 10);
    assert_int_equal(ztb_keyfile_read(dfd, "n", 10, ZTB_KEYFILE_SECRET, &b), ZTB_OK);
    assert_string_equal(ztb_buf_cstr(&b), "1");
    ztb_buf_free(&b);
    assert_int_equal(count_entries(), 1);
    /* a symlink in the way is not followed, not replaced */
    assert_int_equal(symlink("/nonexistent-target", p("l")), 0);
    assert_int_equal(ztb_keyfile_write_new(dfd, "l", "x", 1, 0600), ZTB_ERR_EXISTS);
    unlink(p("l"));
    unlink(p("n"));
}

static const char *steps[16];
static int nsteps;

static void record(const char *step)
{
    if (nsteps < 16)
        steps[nsteps++] = step;
}

static void test_fault_points_in_order(void **state)
{
    (void)state;
    nsteps = 0;
    ztb_keyfile_fault_hook = record;
    assert_int_equal(ztb_keyfile_write_atomic(dfd, "f", "x", 1, 0600), ZTB_OK);
    ztb_keyfile_fault_hook = NULL;
    const char *want[] = {"tmp-written", "tmp-synced", "renamed", "dir-synced"};
    assert_int_equal(nsteps, 4);
    for (int i = 0; i < 4; i++)
        assert_string_equal(steps[i], want[i]);
    unlink(p("f"));
}

static void test_read_refusals(void **state)
{
    (void)state;
    ztb_buf b;
    ztb_buf_init(&b, 100);
    assert_int_equal(ztb_keyfile_read(dfd, "missing", 10, ZTB_KEYFILE_PUBLIC, &b),
                     ZTB_ERR_NOT_FOUND);
    assert_int_equal(pkt_write(p("s"), "secret", 6, 0600), 0);
    assert_int_equal(symlink(p("s"), p("link")), 0);
    assert_int_equal(ztb_keyfile_read(dfd, "link", 10, ZTB_KEYFILE_PUBLIC, &b), ZTB_ERR_PERMISSION);
    assert_int_equal(mkfifo(p("fifo"), 0600), 0);
    assert_int_equal(ztb_keyfile_read(dfd, "fifo", 10, ZTB_KEYFILE_PUBLIC, &b), ZTB_ERR_PERMISSION);
    assert_int_equal(mkdir(p("sub"), 0700), 0);
    assert_int_equal(ztb_keyfile_read(dfd, "sub", 10, ZTB_KEYFILE_PUBLIC, &b), ZTB_ERR_PERMISSION);
    /* modes: public files may be readable by others, never writable */
    assert_int_equal(chmod(p("s"), 0644), 0);
    assert_int_equal(ztb_keyfile_read(dfd, "s", 10, ZTB_KEYFILE_PUBLIC, &b), ZTB_OK);
    ztb_buf_reset(&b);
    assert_int_equal(ztb_keyfile_read(dfd, "s", 10, ZTB_KEYFILE_SECRET, &b), ZTB_ERR_PERMISSION);
    assert_int_equal(chmod(p("s"), 0604), 0);
    assert_int_equal(ztb_keyfile_read(dfd, "s", 10, ZTB_KEYFILE_SECRET, &b), ZTB_ERR_PERMISSION);
    assert_int_equal(chmod(p("s"), 0602), 0);
    assert_int_equal(ztb_keyfile_read(dfd, "s", 10, ZTB_KEYFILE_PUBLIC, &b), ZTB_ERR_PERMISSION);
    assert_int_equal(chmod(p("s"), 0400), 0);
    assert_int_equal(ztb_keyfile_read(dfd, "s", 10, ZTB_KEYFILE_SECRET, &b), ZTB_OK);
    ztb_buf_reset(&b);
    /* size caps */
    assert_int_equal(ztb_keyfile_read(dfd, "s", 5, ZTB_KEYFILE_SECRET, &b), ZTB_ERR_TOO_LARGE);
    assert_int_equal(ztb_keyfile_read(dfd, "s", 6, ZTB_KEYFILE_SECRET, &b), ZTB_OK);
    ztb_buf_free(&b);
    unlink(p("link"));
    unlink(p("fifo"));
    rmdir(p("sub"));
    unlink(p("s"));
}

static void test_open_dir_refusals(void **state)
{
    (void)state;
    int fd = -1;
    assert_int_equal(mkdir(p("wide"), 0777), 0);
    assert_int_equal(chmod(p("wide"), 0777), 0);
    assert_int_equal(ztb_keyfile_open_dir(p("wide"), &fd), ZTB_ERR_PERMISSION);
    assert_int_equal(chmod(p("wide"), 0750), 0);
    assert_int_equal(ztb_keyfile_open_dir(p("wide"), &fd), ZTB_OK);
    close(fd);
    assert_int_equal(symlink(p("wide"), p("dlink")), 0);
    assert_int_equal(ztb_keyfile_open_dir(p("dlink"), &fd), ZTB_ERR_PERMISSION);
    assert_int_equal(ztb_keyfile_make_dir(dfd, "dlink", &fd), ZTB_ERR_PERMISSION);
    assert_int_equal(ztb_keyfile_open_dir(p("nope"), &fd), ZTB_ERR_NOT_FOUND);
    assert_int_equal(ztb_keyfile_make_dir(dfd, "made", &fd), ZTB_OK);
    close(fd);
    struct stat st;
    assert_int_equal(lstat(p("made"), &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
    unlink(p("dlink"));
    rmdir(p("wide"));
    rmdir(p("made"));
}

static void test_passphrase_file(void **state)
{
    (void)state;
    char *pw = NULL;
    size_t n = 0;
    struct {
        const char *content;
        size_t len;
        const char *want; /* NULL: PASSPHRASE */
    } cases[] = {
        {"hunter2\n", 8, "hunter2"},
        {"hunter2\r\n", 9, "hunter2"},
        {"hunter2", 7, "hunter2"},
        {"hunter2\n\n", 9, "hunter2\n"}, /* only one newline is removed */
        {" spaced pass ", 13, " spaced pass "},
        {"\n", 1, NULL},
        {"", 0, NULL},
        {"a\0b", 3, NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(pkt_write(p("pass"), cases[i].content, cases[i].len, 0600), 0);
        ztb_err rv = ztb_keyfile_read_passphrase(p("pass"), &pw, &n);
        if (cases[i].want == NULL) {
            assert_int_equal(rv, ZTB_ERR_PASSPHRASE);
            continue;
        }
        assert_int_equal(rv, ZTB_OK);
        assert_int_equal(n, strlen(cases[i].want));
        assert_string_equal(pw, cases[i].want);
        ztb_free_secret(pw, n + 1);
    }
    /* a passphrase file others can read is refused */
    assert_int_equal(pkt_write(p("pass"), "x\n", 2, 0640), 0);
    assert_int_equal(ztb_keyfile_read_passphrase(p("pass"), &pw, &n), ZTB_ERR_PERMISSION);
    /* too long */
    static char big[ZTB_PASSPHRASE_MAX + 10];
    memset(big, 'p', sizeof(big));
    assert_int_equal(pkt_write(p("pass"), big, sizeof(big), 0600), 0);
    assert_int_equal(ztb_keyfile_read_passphrase(p("pass"), &pw, &n), ZTB_ERR_PASSPHRASE);
    assert_int_equal(pkt_write(p("pass"), big, ZTB_PASSPHRASE_MAX, 0600), 0);
    assert_int_equal(ztb_keyfile_read_passphrase(p("pass"), &pw, &n), ZTB_OK);
    assert_int_equal(n, ZTB_PASSPHRASE_MAX);
    ztb_free_secret(pw, n + 1);
    unlink(p("pass"));
}

static void test_remove_and_temps(void **state)
{
    (void)state;
    assert_int_equal(pkt_write(p(".k.pem.tmp.abcd"), "x", 1, 0600), 0);
    assert_int_equal(pkt_write(p(".hidden"), "x", 1, 0600), 0);
    assert_int_equal(pkt_write(p("keep"), "x", 1, 0600), 0);
    assert_int_equal(ztb_keyfile_remove_temps(dfd), 1);
    assert_int_not_equal(access(p(".k.pem.tmp.abcd"), F_OK), 0);
    assert_int_equal(access(p(".hidden"), F_OK), 0);
    assert_int_equal(ztb_keyfile_remove(dfd, "keep"), ZTB_OK);
    assert_int_equal(ztb_keyfile_remove(dfd, "keep"), ZTB_OK); /* already gone: fine */
    assert_int_equal(ztb_keyfile_remove(dfd, "../x"), ZTB_ERR_INVALID_ARG);
    unlink(p(".hidden"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_write_atomic_modes),    cmocka_unit_test(test_write_new),
        cmocka_unit_test(test_fault_points_in_order), cmocka_unit_test(test_read_refusals),
        cmocka_unit_test(test_open_dir_refusals),     cmocka_unit_test(test_passphrase_file),
        cmocka_unit_test(test_remove_and_temps),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
