/*
 * test_cmd_audit_read.c - `ztbctl audit tail` and `ztbctl audit export`
 * (cli/cmd_audit_read.c) run as an operator runs them, on a log file the
 * test writes (the command reads the file only: no broker, no Redis). What
 * test_cmd_audit.c leaves out: the human line's layout, the tail's window,
 * filters at their edges, every line of an export, a hostile file (cut-off
 * JSON, a NUL byte, bytes that are not UTF-8, raw control characters, a line
 * over the limit, lines that are JSON but not records) skipped with a
 * warning while the records after it are still read, control characters in
 * records escaped on the terminal and in syslog lines, the exit codes and
 * messages of files that cannot be read and of usage errors, and --follow
 * as the log grows, is written in pieces and is rotated.
 */
#define _GNU_SOURCE
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "admin_script.h"
#include "ztbctl_run.h"

#define NOSOCK "/nonexistent/ztb-admin.sock" /* the file commands never use it */

static char g_path[64];

/* Write n bytes of data as the log file. */
static void write_file(const char *data, size_t n)
{
    FILE *f = fopen(g_path, "w");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, n, f), n);
    fclose(f);
}

/* A record line: seq, then the members in body. */
static void rec(char *out, size_t cap, int seq, const char *body)
{
    snprintf(out, cap, "{\"seq\":%d,\"ts\":\"2026-12-03T18:00:%02d.000Z\",\"prev\":\"00\",%s}\n",
             seq, seq % 60, body);
}

/* 1 if s starts with prefix. */
static int starts(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* Number of times needle occurs in hay. */
static int count(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)) != NULL; p += strlen(needle))
        n++;
    return n;
}

static int setup(void **state)
{
    (void)state;
    snprintf(g_path, sizeof(g_path), "/tmp/ztb-test-audit-read.XXXXXX");
    int fd = mkstemp(g_path);
    assert_true(fd >= 0);
    close(fd);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    unlink(g_path);
    return 0;
}

/* Twelve records: a tail shows the last ten in order, -n the last N; the
 * human line is ts, seq, event padded, actor, then the members that are
 * not chain bookkeeping (prev, replica, jws) as k=v, JSON for non-strings. */
static void test_tail_window_and_layout(void **state)
{
    (void)state;
    static char file[1 << 14];
    size_t n = 0;
    for (int i = 1; i <= 12; i++)
        rec(file + n, sizeof(file) - n, i,
            "\"replica\":\"r1\",\"jws\":\"sig\",\"event\":\"token.issued\",\"actor\":\"agent:a\","
            "\"scope\":[\"x\",1]"),
            n += strlen(file + n);
    write_file(file, n);
    assert_int_equal(run(NOSOCK, ARGV("audit", "tail", g_path)), 0);
    assert_string_equal(run_err, "");
    assert_int_equal(count(run_out, "\n"), 10);
    assert_true(starts(run_out,
                       "2026-12-03T18:00:03.000Z      3 token.issued                 agent:a "
                       "scope=[\"x\",1]\n"));
    assert_non_null(strstr(run_out, "     12 token.issued"));
    assert_null(strstr(run_out, "sig"));
    assert_null(strstr(run_out, "r1"));
    assert_true(strstr(run_out, "      3 ") < strstr(run_out, "     12 "));

    assert_int_equal(run(NOSOCK, ARGV("audit", "tail", g_path, "-n", "2")), 0);
    assert_int_equal(count(run_out, "\n"), 2);
    assert_non_null(strstr(run_out, "     11 "));
    assert_int_equal(run(NOSOCK, ARGV("audit", "tail", g_path, "-n", "0")), 0);
    assert_string_equal(run_out, "");
    assert_int_equal(run(NOSOCK, ARGV("audit", "tail", "-n", "100000", g_path)), 0);
    assert_int_equal(count(run_out, "\n"), 12);

    /* a record without ts or actor: "-" in their place */
    write_file("{\"seq\":7,\"event\":\"x\"}\n", 22);
    assert_int_equal(run(NOSOCK, ARGV("audit", "tail", g_path)), 0);
    assert_string_equal(run_out, "-      7 x                            -\n");
}

/* --json: the lines exactly as written, filters applied. */
static void test_json_lines_as_written(void **state)
{
    (void)state;
    static const char file[] = "{\"seq\":1, \"event\":\"token.issued\",\"agent\":\"a\"}\n"
                               "{\"seq\":2,\"event\":\"token.denied\",\"agent\":\"b\" }\n";
    write_file(file, sizeof(file) - 1);
    assert_int_equal(run(NOSOCK, ARGV("--json", "audit", "tail", g_path)), 0);
    assert_string_equal(run_out, file);
    assert_int_equal(run(NOSOCK, ARGV("--json", "audit", "tail", g_path, "--agent", "b")), 0);
    assert_string_equal(run_out, "{\"seq\":2,\"event\":\"token.denied\",\"agent\":\"b\" }\n");
}

/* Filters match whole values and combine: --agent matches the agent member
 * or an actor agent:NAME, never a prefix; --event is the whole event,
 * --outcome its last part (the event itself if it has no dot); a record
 * without the member a filter asks for does not match. */
static void test_filters_at_their_edges(void **state)
{
    (void)state;
    static char file[4096];
    size_t n = 0;
    static const char *const bodies[] = {
        "\"event\":\"token.issued\",\"agent\":\"alice\",\"action\":\"a:read\",\"id\":\"r1\"",
        "\"event\":\"token.issued\",\"agent\":\"alice2\",\"action\":\"a:read\",\"id\":\"r2\"",
        "\"event\":\"token.denied\",\"actor\":\"agent:alice\",\"id\":\"r3\"",
        "\"event\":\"denied\",\"actor\":\"operator:alice\",\"id\":\"r4\"",
        "\"event\":\"token.issued.extra\",\"agent\":\"bob\",\"id\":\"r5\"",
        "\"agent\":\"alice\",\"id\":\"r6\"", /* no event: never shown */
    };
    for (int i = 0; i < 6; i++)
        rec(file + n, sizeof(file) - n, i + 1, bodies[i]), n += strlen(file + n);
    write_file(file, n);

    assert_int_equal(
        run(NOSOCK, ARGV("audit", "export", g_path, "--format", "syslog", "--agent", "alice")), 0);
    assert_non_null(strstr(run_out, "\"id\":\"r1\""));
    assert_non_null(strstr(run_out, "\"id\":\"r3\""));
    assert_null(strstr(run_out, "\"id\":\"r2\""));
    assert_null(strstr(run_out, "\"id\":\"r4\""));
    assert_null(strstr(run_out, "\"id\":\"r6\""));

    assert_int_equal(run(NOSOCK, ARGV("audit", "tail", g_path, "--outcome", "denied")), 0);
    assert_non_null(strstr(run_out, "id=r3"));
    assert_non_null(strstr(run_out, "id=r4"));
    assert_int_equal(count(run_out, "\n"), 2);

    assert_int_equal(run(NOSOCK, ARGV("audit", "tail", g_path, "--event", "token.issued")), 0);
    assert_non_null(strstr(run_out, "id=r1"));
    assert_null(strstr(run_out, "id=r5"));

    assert_int_equal(
        run(NOSOCK, ARGV("audit", "tail", g_path, "--action", "a:read", "--agent", "alice2")), 0);
    assert_string_equal(strstr(run_out, "id="), "id=r2\n");

    assert_int_equal(run(NOSOCK, ARGV("audit", "tail", g_path, "--action", "nothing")), 0);
    assert_string_equal(run_out, "");
}

/* Export prints every matching record (no window), and the syslog
 * header fields stay fields: audit.* events are warnings, a missing
 * replica or ts is "-", a MSGID is at most 32 printable characters. */
static void test_export_every_record(void **state)
{
    (void)state;
    static char file[1 << 14];
    size_t n = 0;
    for (int i = 1; i <= 15; i++)
        rec(file + n, sizeof(file) - n, i, "\"event\":\"token.issued\",\"replica\":\"r1\""),
            n += strlen(file + n);
    n += (size_t)snprintf(file + n, sizeof(file) - n,
                          "{\"seq\":16,\"event\":\"audit.gap\"}\n"
                          "{\"seq\":17,\"event\":\"a b\\u00e9_0123456789012345678901234567890\"}\n"
                          "{\"seq\":18,\"event\":\"\"}\n");
    write_file(file, n);
    assert_int_equal(run(NOSOCK, ARGV("audit", "export", g_path, "--format", "syslog")), 0);
    assert_int_equal(count(run_out, "\n"), 18);
    assert_int_equal(count(run_out, "<85>1 2026-12-03T18:00:"), 15);
    assert_non_null(strstr(run_out, "<84>1 - - ztb-broker - audit.gap [ztb@32473 seq=\"16\" "
                                    "actor=\"\"] {\"seq\":16,"));
    assert_non_null(strstr(run_out, " ztb-broker - a_b___01234567890123456789012345 [ztb"));
    assert_non_null(strstr(run_out, " ztb-broker - - [ztb@32473 seq=\"18\""));
    assert_int_equal(run(NOSOCK, ARGV("audit", "export", g_path, "--format", "ocsf")), 0);
    assert_int_equal(count(run_out, "\n"), 18);
    assert_string_equal(run_err, "");
}

/* A hostile file: each line that is not a record is skipped with a
 * warning, never half printed, and every record after it is still read -
 * a line over the limit or with a NUL byte does not end the reading. */
static void test_hostile_lines_skipped(void **state)
{
    (void)state;
    static char file[1 << 18];
    size_t n = 0;
#define ADD(s)  (memcpy(file + n, (s), sizeof(s) - 1), n += sizeof(s) - 1)
#define GOOD(k) ADD("{\"seq\":" #k ",\"event\":\"token.issued\",\"id\":\"good" #k "\"}\n")
    GOOD(1);
    ADD("{\"seq\":2,\"event\":\"token.iss\n"); /* cut off */
    GOOD(3);
    ADD("{\"seq\":4,\"event\":\"token.issued\",\"x\":\"a\0b\"}\n"); /* NUL byte */
    GOOD(5);
    ADD("{\"seq\":6,\"event\":\"token.issued\",\"pad\":\"");
    memset(file + n, 'a', 70000);
    n += 70000;
    ADD("\"}\n"); /* over the 64 KiB line limit */
    GOOD(7);
    ADD("{\"seq\":8,\"event\":\"token.issued\",\"x\":\"caf\xe9\"}\n");   /* not UTF-8 */
    ADD("{\"seq\":9,\"event\":\"token.issued\",\"x\":\"a\x1b[2Jb\"}\n"); /* raw ESC */
    ADD("[1]\n");
    ADD("{\"seq\":\"10\",\"event\":\"token.issued\"}\n");
    ADD("{\"seq\":11,\"seq\":12,\"event\":\"token.issued\"}\n");
    ADD("{\"seq\":12,\"event\":\"token.issued\",\"d\":[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]}\n");
    ADD("\n");
    GOOD(13);
    ADD("{\"seq\":14,\"event\":\"token.issued\",\"id\":\"partial\"}"); /* no newline yet */
#undef GOOD
#undef ADD
    write_file(file, n);
    static const char *const want[] = {"good1", "good3", "good5", "good7", "good13"};

    assert_int_equal(run(NOSOCK, ARGV("audit", "export", g_path, "--format", "syslog")), 0);
    assert_int_equal(count(run_out, "\n"), 5);
    for (size_t i = 0; i < 5; i++)
        assert_non_null(strstr(run_out, want[i]));
    assert_null(strstr(run_out, "partial"));
    assert_int_equal(count(run_err, "ztbctl: skipping a line that is not an audit record\n"), 9);
    assert_int_equal(
        count(run_err, "ztbctl: skipping a line longer than 65536 bytes: not an audit record\n"),
        1);

    assert_int_equal(run(NOSOCK, ARGV("audit", "tail", g_path, "-n", "100")), 0);
    assert_int_equal(count(run_out, "\n"), 5);
    for (size_t i = 0; i < 5; i++)
        assert_non_null(strstr(run_out, want[i]));
    assert_int_equal(count(run_err, "ztbctl: skipping a line"), 10);
}

/* Control characters a record holds (as JSON escapes) are printed
 * escaped: on the terminal no escape sequence reaches it, in a syslog
 * export one record stays one line with its header fields intact. */
static void test_control_characters_escaped(void **state)
{
    (void)state;
    static const char file[] =
        "{\"seq\":1,\"ts\":\"2026\\n<84>1\",\"replica\":\"r 1\",\"event\":\"token.denied\","
        "\"actor\":\"agent:x\\n<84>1 "
        "forged\",\"reason\":\"\\u001b[2J\\u009b1mcaf\\u00e9\\u007f\"}\n";
    write_file(file, sizeof(file) - 1);
    assert_int_equal(run(NOSOCK, ARGV("audit", "tail", g_path)), 0);
    assert_string_equal(run_out,
                        "2026\\x0a<84>1      1 token.denied                 agent:x\\x0a<84>1 "
                        "forged reason=\\x1b[2J\\u009b1mcaf\xc3\xa9\\x7f\n");
    assert_int_equal(run(NOSOCK, ARGV("audit", "export", g_path, "--format", "syslog")), 0);
    assert_int_equal(count(run_out, "\n"), 1);
    assert_true(starts(run_out,
                       "<84>1 2026_<84>1 r_1 ztb-broker - token.denied [ztb@32473 seq=\"1\" "
                       "actor=\"agent:x\\x0a<84>1 forged\"] {\"seq\":1,"));
}

/* A file that cannot be read: exit 1 and a message naming the file and
 * what to give instead; nothing on stdout. */
static void test_unreadable_files(void **state)
{
    (void)state;
    assert_int_equal(run(NOSOCK, ARGV("audit", "tail", "/nonexistent/audit.log")), 1);
    assert_string_equal(run_err, "ztbctl: /nonexistent/audit.log: No such file or directory\n");
    assert_string_equal(run_out, "");
    assert_int_equal(run(NOSOCK, ARGV("audit", "export", "/tmp", "--format", "ocsf")), 1);
    assert_string_equal(run_err,
                        "ztbctl: /tmp is a directory: give the log file in it (/tmp/audit.log)\n");
    assert_string_equal(run_out, "");
}

/* Usage errors: exit 2, the usage on stderr, nothing read or printed. */
static void test_usage_errors(void **state)
{
    (void)state;
    write_file("{\"seq\":1,\"event\":\"x\"}\n", 23);
    const char *const *bad[] = {
        ARGV("audit", "tail", g_path, "-n", ""),
        ARGV("audit", "tail", g_path, "-n", "-1"),
        ARGV("audit", "tail", g_path, "-n", "100001"),
        ARGV("audit", "tail", g_path, "-n", "5x"),
        ARGV("audit", "tail", g_path, "-n"),
        ARGV("audit", "tail", g_path, "--agent"),
        ARGV("audit", "tail", g_path, "other-file"),
        ARGV("audit", "tail", g_path, "--bogus"),
        ARGV("audit", "tail", "--follow"),
        ARGV("audit", "export", g_path),
        ARGV("audit", "export", g_path, "--format", "cef"),
        ARGV("audit", "export", g_path, "--format", "syslog", "-n", "3"),
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int rc = run(NOSOCK, bad[i]);
        if (rc != 2 || run_out[0] != '\0' || strstr(run_err, "usage: ztbctl audit") == NULL)
            fail_msg("case %zu: exit %d, stdout '%s', stderr '%s'", i, rc, run_out, run_err);
        assert_non_null(strstr(run_err, "ztbctl audit export FILE --format syslog|ocsf"));
    }
}

/* Append n bytes to file path. */
static void append(const char *path, const char *data)
{
    FILE *f = fopen(path, "a");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, strlen(data), f), strlen(data));
    fclose(f);
}

/*
 * --follow: the records there, then each record appended, printed once and
 * whole (a record written in two pieces is printed when its end comes,
 * never its first half alone); the filter still applies; after a rotation
 * (the file renamed, a new one made at the path), what was still written
 * to the old file comes first, then the new file's records; a file
 * truncated in place is read again from its start, with a warning.
 */
static void test_follow(void **state)
{
    (void)state;
    char old[80], r[512];
    snprintf(old, sizeof(old), "%s.1", g_path);
    unlink(old);
    write_file("", 0);
    rec(r, sizeof(r), 1, "\"event\":\"token.issued\",\"agent\":\"a\"");
    append(g_path, r);
    rec(r, sizeof(r), 2, "\"event\":\"token.issued\",\"agent\":\"b\"");
    append(g_path, r);
    struct spawned sp;
    spawn(&sp, NOSOCK, ARGV("--json", "audit", "tail", g_path, "--follow", "--agent", "a"));
    assert_true(wait_out(&sp, "\"seq\":1,", 1, 3000));

    rec(r, sizeof(r), 3, "\"event\":\"token.issued\",\"agent\":\"a\"");
    append(g_path, r);
    assert_true(wait_out(&sp, "\"seq\":3,", 1, 3000));
    rec(r, sizeof(r), 4, "\"event\":\"token.issued\",\"agent\":\"b\""); /* filtered out */
    append(g_path, r);

    /* a record in two pieces, 0.6 s apart */
    rec(r, sizeof(r), 5, "\"event\":\"token.denied\",\"agent\":\"a\"");
    size_t half = strlen(r) / 2;
    char first[256];
    snprintf(first, sizeof(first), "%.*s", (int)half, r);
    append(g_path, first);
    assert_false(wait_out(&sp, "\"seq\":5,", 1, 600));
    append(g_path, r + half);
    assert_true(wait_out(&sp, "\"seq\":5,", 1, 3000));

    /* rotation: a last record to the old file, then a new file */
    rec(r, sizeof(r), 6, "\"event\":\"token.issued\",\"agent\":\"a\"");
    append(g_path, r);
    assert_int_equal(rename(g_path, old), 0);
    write_file("", 0);
    rec(r, sizeof(r), 7, "\"event\":\"token.issued\",\"agent\":\"a\"");
    append(g_path, r);
    assert_true(wait_out(&sp, "\"seq\":7,", 1, 3000));
    rec(r, sizeof(r), 8, "\"event\":\"token.issued\",\"agent\":\"a\"");
    append(g_path, r);
    assert_true(wait_out(&sp, "\"seq\":8,", 1, 3000));

    /* truncated in place (copytruncate): read again from the start */
    rec(r, sizeof(r), 9, "\"event\":\"token.issued\",\"agent\":\"a\"");
    write_file(r, strlen(r));
    assert_true(wait_out(&sp, "\"seq\":9,", 1, 3000));

    int rc = finish(&sp, SIGTERM);
    unlink(old);
    assert_int_equal(rc, -1); /* it runs until killed */
    char want[4096] = "";
    for (int i = 1; i <= 9; i++) {
        if (i == 2 || i == 4)
            continue;
        rec(r, sizeof(r), i,
            i == 5 ? "\"event\":\"token.denied\",\"agent\":\"a\""
                   : "\"event\":\"token.issued\",\"agent\":\"a\"");
        strcat(want, r);
    }
    if (strcmp(sp.got, want) != 0)
        fail_msg("followed:\n%s\nwanted:\n%s", sp.got, want);
    char warn[160];
    snprintf(warn, sizeof(warn), "ztbctl: %s: file truncated; reading it from its start\n", g_path);
    assert_string_equal(run_err, warn);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tail_window_and_layout),
        cmocka_unit_test(test_json_lines_as_written),
        cmocka_unit_test(test_filters_at_their_edges),
        cmocka_unit_test(test_export_every_record),
        cmocka_unit_test(test_hostile_lines_skipped),
        cmocka_unit_test(test_control_characters_escaped),
        cmocka_unit_test(test_unreadable_files),
        cmocka_unit_test(test_usage_errors),
        cmocka_unit_test(test_follow),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
