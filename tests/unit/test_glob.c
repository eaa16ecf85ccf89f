/* test_glob.c - the pattern language: shapes, matching, coverage, hostile subjects. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/arena.h"
#include "policy/glob.h"

static ztb_arena A;

static int setup(void **state)
{
    (void)state;
    ztb_arena_init(&A, 64 << 20);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    ztb_arena_free(&A);
    return 0;
}

static policy_glob G(const char *pat)
{
    policy_glob g;
    const char *why = NULL;
    ztb_err e = policy_glob_compile(&A, pat, strlen(pat), 0, &g, &why);
    if (e != ZTB_OK)
        fail_msg("pattern %s: %s", pat, why ? why : "?");
    return g;
}

/* An independent reference: plain recursion over the pattern text. */
static int ref_match(const char *p, const char *s, size_t n)
{
    if (*p == '\0')
        return n == 0;
    if (p[0] == '*' && p[1] == '*') {
        for (size_t k = 0; k <= n; k++)
            if (ref_match(p + 2, s + k, n - k))
                return 1;
        return 0;
    }
    if (p[0] == '*') {
        for (size_t k = 0; k <= n; k++) {
            if (ref_match(p + 1, s + k, n - k))
                return 1;
            if (k < n && s[k] == '/')
                return 0;
        }
        return 0;
    }
    return n > 0 && *p == *s && ref_match(p + 1, s + 1, n - 1);
}

static void test_compile_refuses(void **state)
{
    (void)state;
    policy_glob g;
    const char *why = NULL;
    char longp[300];
    memset(longp, 'a', sizeof(longp));
    struct {
        const char *p;
        size_t n;
        unsigned flags;
        const char *why;
    } bad[] = {
        {"", 0, 0, "empty"},
        {longp, 257, 0, "longer than 256"},
        {"a\nb", 3, 0, "control"},
        {"a\x7f", 2, 0, "control"},
        {"\xc3\x28", 2, 0, "invalid UTF-8"},
        {"a\0b", 3, 0, "control"},
        {"a***", 4, 0, "three or more stars"},
        {"****", 4, 0, "three or more stars"},
        {"a**", 3, POLICY_GLOB_NO_DSTAR, "not allowed here"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(policy_glob_compile(&A, bad[i].p, bad[i].n, bad[i].flags, &g, &why),
                         ZTB_ERR_POLICY);
        assert_non_null(why);
        if (strstr(why, bad[i].why) == NULL)
            fail_msg("case %zu: reason '%s' lacks '%s'", i, why, bad[i].why);
    }
    assert_int_equal(policy_glob_compile(&A, NULL, 0, 0, &g, NULL), ZTB_ERR_POLICY);
    /* the longest allowed pattern is fine */
    assert_int_equal(policy_glob_compile(&A, longp, 256, 0, &g, &why), ZTB_OK);
    assert_int_equal(policy_glob_compile(&A, "a*", 2, POLICY_GLOB_NO_DSTAR, &g, &why), ZTB_OK);
}

static void test_shapes(void **state)
{
    (void)state;
    struct {
        const char *p;
        enum policy_glob_kind k;
    } v[] = {
        {"orders/1", POLICY_GLOB_EXACT},
        {"**", POLICY_GLOB_ALL},
        {"*", POLICY_GLOB_SEGMENT},
        {"orders/**", POLICY_GLOB_PREFIX_ALL},
        {"orders/*", POLICY_GLOB_PREFIX_SEG},
        {"**.pdf", POLICY_GLOB_SUFFIX_ALL},
        {"*.pdf", POLICY_GLOB_SUFFIX_SEG},
        {"a*b", POLICY_GLOB_INFIX_SEG},
        {"https://*.internal", POLICY_GLOB_INFIX_SEG},
        {"a/**/b", POLICY_GLOB_INFIX_ALL},
        {"*a*", POLICY_GLOB_GENERAL},
        {"a*b*c", POLICY_GLOB_GENERAL},
        {"**a*", POLICY_GLOB_GENERAL},
    };
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        policy_glob g = G(v[i].p);
        assert_int_equal(g.kind, v[i].k);
        assert_string_equal(g.text, v[i].p);
        assert_int_equal(g.len, strlen(v[i].p));
    }
    policy_glob e = G("x");
    assert_true(policy_glob_is_literal(&e));
    policy_glob a = G("**");
    assert_true(policy_glob_is_any(&a));
}

static void test_match_table(void **state)
{
    (void)state;
    struct {
        const char *p, *s;
        int want;
    } v[] = {
        {"orders/1234", "orders/1234", 1},
        {"orders/1234", "orders/12345", 0},
        {"orders/1234", "orders/123", 0},
        {"orders/1234", "", 0},
        {"orders/*", "orders/1234", 1},
        {"orders/*", "orders/", 1},
        {"orders/*", "orders", 0},
        {"orders/*", "orders/1/items", 0},
        {"orders/*", "orders/../admin", 0},
        {"orders/**", "orders/1/items", 1},
        {"orders/**", "orders/", 1},
        {"orders/**", "ordersX", 0},
        {"*", "", 1},
        {"*", "abc", 1},
        {"*", "a/b", 0},
        {"**", "", 1},
        {"**", "a/b/c", 1},
        {"*.pdf", "report.pdf", 1},
        {"*.pdf", "dir/report.pdf", 0},
        {"**.pdf", "dir/report.pdf", 1},
        {"**.pdf", "report.pdfx", 0},
        {"a*b", "ab", 1},
        {"a*b", "axxb", 1},
        {"a*b", "ax/b", 0},
        {"a*b", "axbx", 0},
        {"a**b", "ax/yb", 1},
        {"*a*", "bab", 1},
        {"*a*", "bbb", 0},
        {"a/**/b", "a/x/y/b", 1},
        {"a/**/b", "a//b", 1},
        {"a/**/b", "a/b", 0},
        {"https://*.internal", "https://payments.internal", 1},
        {"https://*.internal", "https://x/y.internal", 0},
        {"docs/r\xc3\xa9sum\xc3\xa9*", "docs/r\xc3\xa9sum\xc3\xa9-2024.pdf", 1},
        {"docs/*", "docs/\xf0\x9f\x94\x91", 1},
        {"*:*", "payments:refund", 1},
        {"pay*", "payments", 1},
        {"pay*", "pa", 0},
    };
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        policy_glob g = G(v[i].p);
        int got = policy_glob_match(&g, v[i].s, strlen(v[i].s));
        if (got != v[i].want)
            fail_msg("'%s' vs '%s': got %d want %d", v[i].p, v[i].s, got, v[i].want);
        assert_int_equal(ref_match(v[i].p, v[i].s, strlen(v[i].s)), v[i].want);
    }
    /* a subject with an embedded NUL is matched by length, not cut short */
    policy_glob g = G("a*");
    assert_true(policy_glob_match(&g, "a\0b", 3));
    policy_glob e = G("a");
    assert_false(policy_glob_match(&e, "a\0", 2));
    assert_false(policy_glob_match(&e, NULL, 1));
}

/* Random patterns and subjects over a tiny alphabet: fast shapes, the
 * automaton and the reference recursion must all agree. */
static unsigned rnd(unsigned *seed)
{
    *seed = *seed * 1103515245u + 12345u;
    return *seed >> 16;
}

static void test_random_agreement(void **state)
{
    (void)state;
    const char alpha[] = "ab/*";
    unsigned seed = 12345;
    for (int iter = 0; iter < 20000; iter++) {
        char pat[9], sub[11];
        size_t pl = 1 + rnd(&seed) % 8;
        for (size_t i = 0; i < pl; i++)
            pat[i] = alpha[rnd(&seed) % 4];
        pat[pl] = '\0';
        if (strstr(pat, "***") != NULL)
            continue;
        size_t sl = rnd(&seed) % 11;
        for (size_t i = 0; i < sl; i++)
            sub[i] = alpha[rnd(&seed) % 3];
        sub[sl] = '\0';
        policy_glob g = G(pat);
        policy_glob general = g;
        general.kind = POLICY_GLOB_GENERAL;
        int want = ref_match(pat, sub, sl);
        if (policy_glob_match(&g, sub, sl) != want || policy_glob_match(&general, sub, sl) != want)
            fail_msg("'%s' vs '%s': want %d", pat, sub, want);
    }
}

/* The automaton is linear: a pattern that makes backtracking matchers
 * exponential finishes at once on a megabyte subject. */
static void test_hostile_subject(void **state)
{
    (void)state;
    size_t n = 1 << 20;
    char *s = malloc(n);
    assert_non_null(s);
    memset(s, 'a', n);
    policy_glob g = G("*a*a*a*a*a*a*a*a*a*a*a*a*b");
    assert_false(policy_glob_match(&g, s, n));
    policy_glob g2 = G("**a**a**a**a**a**a**a**a**b");
    assert_false(policy_glob_match(&g2, s, n));
    s[n - 1] = 'b';
    assert_true(policy_glob_match(&g2, s, n));
    policy_glob g3 = G("a**");
    assert_true(policy_glob_match(&g3, s, n));
    free(s);
}

static void test_covers(void **state)
{
    (void)state;
    struct {
        const char *outer, *inner;
        int want;
    } v[] = {
        {"**", "anything/at/all", 1},
        {"**", "*", 1},
        {"**", "**", 1},
        {"*", "abc", 1},
        {"*", "a/b", 0},
        {"*", "**", 0},
        {"*", "a*", 1},
        {"orders/**", "orders/*", 1},
        {"orders/**", "orders/1/**", 1},
        {"orders/*", "orders/**", 0},
        {"orders/*", "orders/1", 1},
        {"orders/*", "invoices/1", 0},
        {"orders/1", "orders/*", 0},
        {"a*", "ab*", 1},
        {"ab*", "a*", 0},
        {"*b", "a*b", 1},
        {"x", "x", 1},
        {"x", "y", 0},
    };
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        policy_glob o = G(v[i].outer), in = G(v[i].inner);
        if (policy_glob_covers(&o, &in) != v[i].want)
            fail_msg("covers('%s', '%s') != %d", v[i].outer, v[i].inner, v[i].want);
    }
}

/* Soundness: when covers says yes, every subject the inner matches, the outer matches. */
static void test_covers_sound(void **state)
{
    (void)state;
    const char alpha[] = "ab/*";
    unsigned seed = 777;
    int yes = 0;
    for (int iter = 0; iter < 3000; iter++) {
        char p1[7], p2[7];
        size_t l1 = 1 + rnd(&seed) % 6;
        size_t l2 = 1 + rnd(&seed) % 6;
        for (size_t i = 0; i < l1; i++)
            p1[i] = alpha[rnd(&seed) % 4];
        for (size_t i = 0; i < l2; i++)
            p2[i] = alpha[rnd(&seed) % 4];
        p1[l1] = p2[l2] = '\0';
        if (strstr(p1, "***") || strstr(p2, "***"))
            continue;
        policy_glob o = G(p1), in = G(p2);
        if (!policy_glob_covers(&o, &in))
            continue;
        yes++;
        /* every subject up to 6 long over {a, b, /} */
        for (unsigned code = 0; code < 1093; code++) {
            char s[7];
            size_t n = 0;
            for (unsigned c = code; c > 0 && n < 6; c /= 3)
                s[n++] = "ab/"[c % 3];
            if (policy_glob_match(&in, s, n) && !policy_glob_match(&o, s, n))
                fail_msg("covers('%s','%s') but '%.*s' escapes", p1, p2, (int)n, s);
        }
    }
    assert_true(yes > 50); /* the check was exercised */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_compile_refuses), cmocka_unit_test(test_shapes),
        cmocka_unit_test(test_match_table),     cmocka_unit_test(test_random_agreement),
        cmocka_unit_test(test_hostile_subject), cmocka_unit_test(test_covers),
        cmocka_unit_test(test_covers_sound),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
