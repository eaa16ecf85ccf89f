/*
 * test_audit_verify.c - the verifier accepts a whole chain and names the
 * first line of every kind of break: a changed, removed or added line, a
 * wrong genesis, a line that is not a record, too long, cut short or with a
 * NUL byte, a file that cannot be read.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "audit/chain.h"
#include "audit/verify.h"

static char g_path[64];

/* A chain of n records starting at seq first (prev of the first: first_prev). */
static size_t make_chain(char *out, size_t cap, uint64_t first, int n, const char *first_prev)
{
    char prev[AUDIT_HASH_HEX + 1];
    snprintf(prev, sizeof(prev), "%s", first_prev);
    size_t len = 0;
    for (int i = 0; i < n; i++) {
        char *line = out + len;
        int w = snprintf(line, cap - len,
                         "{\"seq\":%llu,\"ts\":\"2026-12-03T18:00:00.000Z\",\"prev\":\"%s\","
                         "\"event\":\"e%d\",\"actor\":\"broker\"}",
                         (unsigned long long)(first + (uint64_t)i), prev, i);
        assert_true(w > 0 && (size_t)w + 1 < cap - len);
        audit_chain_hash(line, (size_t)w, prev);
        line[w] = '\n';
        len += (size_t)w + 1;
    }
    out[len] = '\0';
    return len;
}

static void put(const void *s, size_t n)
{
    FILE *f = fopen(g_path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(s, 1, n, f), n);
    fclose(f);
}

static ztb_err verify(uint64_t *lines, uint64_t *bad, char *why)
{
    why[0] = '\0';
    return audit_verify_file(g_path, lines, bad, why, 256);
}

/* The start of line k (1-based) of s. */
static char *line_at(char *s, int k)
{
    for (int i = 1; i < k; i++)
        s = strchr(s, '\n') + 1;
    return s;
}

static int setup(void **state)
{
    (void)state;
    snprintf(g_path, sizeof(g_path), "/tmp/ztb-test-audit-verify.XXXXXX");
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

static void test_whole_chains(void **state)
{
    (void)state;
    char s[8192], why[256];
    uint64_t lines = 9, bad = 9;
    put("", 0);
    assert_int_equal(verify(&lines, &bad, why), ZTB_OK);
    assert_int_equal(lines, 0);
    assert_int_equal(bad, 0);

    size_t n = make_chain(s, sizeof(s), 1, 12, audit_genesis);
    put(s, n);
    assert_int_equal(verify(&lines, &bad, why), ZTB_OK);
    assert_int_equal(lines, 12);
    assert_int_equal(bad, 0);

    /* a rotated file starts where the last one ended, from any link */
    n = make_chain(s, sizeof(s), 500, 3,
                   "1111111111111111111111111111111111111111111111111111111111111111");
    put(s, n);
    assert_int_equal(verify(&lines, &bad, why), ZTB_OK);
    assert_int_equal(lines, 3);
}

static void test_tampering(void **state)
{
    (void)state;
    char s[8192], t[8192], why[256];
    uint64_t lines, bad;
    size_t n = make_chain(s, sizeof(s), 1, 8, audit_genesis);

    /* one byte of line 3 changed: the break shows at line 4 */
    memcpy(t, s, n + 1);
    char *e = strstr(line_at(t, 3), "\"e2\"");
    e[1] = 'E';
    put(t, n);
    assert_int_equal(verify(&lines, &bad, why), ZTB_ERR_SIGNATURE);
    assert_int_equal(bad, 4);
    assert_int_equal(lines, 0);
    assert_non_null(strstr(why, "prev hash"));
    assert_non_null(strstr(why, "changed line 3"));

    /* the last line changed: nothing after it to show it (see verify.h) */
    memcpy(t, s, n + 1);
    e = strstr(line_at(t, 8), "\"e7\"");
    e[1] = 'E';
    put(t, n);
    assert_int_equal(verify(&lines, &bad, why), ZTB_OK);

    /* line 5 removed: seq jumps */
    memcpy(t, s, n + 1);
    char *l5 = line_at(t, 5), *l6 = line_at(t, 6);
    memmove(l5, l6, strlen(l6) + 1);
    put(t, strlen(t));
    assert_int_equal(verify(&lines, &bad, why), ZTB_ERR_SIGNATURE);
    assert_int_equal(bad, 5);
    assert_non_null(strstr(why, "seq 6 where 5 was expected"));

    /* line 2 repeated */
    memcpy(t, s, n + 1);
    char *l2 = line_at(t, 2), *l3 = line_at(t, 3);
    size_t l2len = (size_t)(l3 - l2);
    memmove(l3 + l2len, l3, strlen(l3) + 1);
    memcpy(l3, l2, l2len);
    put(t, strlen(t));
    assert_int_equal(verify(&lines, &bad, why), ZTB_ERR_SIGNATURE);
    assert_int_equal(bad, 3);

    /* a chain from seq 1 must start at the genesis link */
    n = make_chain(t, sizeof(t), 1, 3,
                   "1111111111111111111111111111111111111111111111111111111111111111");
    put(t, n);
    assert_int_equal(verify(&lines, &bad, why), ZTB_ERR_SIGNATURE);
    assert_int_equal(bad, 1);
    assert_non_null(strstr(why, "genesis"));
}

static void test_malformed_files(void **state)
{
    (void)state;
    char s[8192], t[8192], why[256];
    uint64_t lines, bad;
    size_t n = make_chain(s, sizeof(s), 1, 4, audit_genesis);

    /* cut short (a crash mid-write, or truncated without the newline) */
    put(s, n - 5);
    assert_int_equal(verify(&lines, &bad, why), ZTB_ERR_MALFORMED);
    assert_int_equal(bad, 4);
    assert_string_equal(why, "last line is incomplete");

    /* a NUL byte inside line 2 */
    memcpy(t, s, n + 1);
    line_at(t, 2)[10] = '\0';
    put(t, n);
    assert_int_equal(verify(&lines, &bad, why), ZTB_ERR_MALFORMED);
    assert_int_equal(bad, 2);
    assert_true(why[0] != '\0'); /* (fgets stops the line's length at the NUL) */

    /* not a record */
    put("hello\n", 6);
    assert_int_equal(verify(&lines, &bad, why), ZTB_ERR_MALFORMED);
    assert_int_equal(bad, 1);
    assert_non_null(strstr(why, "not an audit record"));
    memcpy(t, s, n + 1);
    memcpy(strstr(line_at(t, 3), "\"prev\""), "\"Prev\"", 6);
    put(t, n);
    assert_int_equal(verify(&lines, &bad, why), ZTB_ERR_MALFORMED);
    assert_int_equal(bad, 3);

    /* a line longer than the verifier reads */
    char *big = malloc(AUDIT_VERIFY_LINE_MAX + 100);
    assert_non_null(big);
    memset(big, 'x', AUDIT_VERIFY_LINE_MAX + 99);
    big[AUDIT_VERIFY_LINE_MAX + 99] = '\n';
    put(big, AUDIT_VERIFY_LINE_MAX + 100);
    free(big);
    assert_int_equal(verify(&lines, &bad, why), ZTB_ERR_MALFORMED);
    assert_int_equal(bad, 1);
    assert_string_equal(why, "line too long");

    /* no file */
    assert_int_equal(audit_verify_file("/nonexistent/audit.log", &lines, &bad, why, sizeof(why)),
                     ZTB_ERR_IO);
    assert_int_equal(bad, 0);
    assert_non_null(strstr(why, "/nonexistent/audit.log"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_whole_chains),
        cmocka_unit_test(test_tampering),
        cmocka_unit_test(test_malformed_files),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
