/*
 * test_uri.c - the comparison form of an http(s) URI (common/uri.c): RFC
 * 3986's own examples of equivalent URIs get one form, URIs that differ
 * keep different forms, what is not an absolute http(s) URI has none, and
 * the form never runs past its buffer.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "common/uri.h"

/* The form of s, or "" if it has none. */
static const char *form(const char *s)
{
    static char out[ZTB_URI_FORM_MAX + 1];
    size_t n = ztb_uri_htu_form(s, strlen(s), out, sizeof(out));
    return n ? out : "";
}

static void same(const char *a, const char *b)
{
    char fa[ZTB_URI_FORM_MAX + 1];
    snprintf(fa, sizeof(fa), "%s", form(a));
    if (fa[0] == '\0' || strcmp(fa, form(b)) != 0)
        fail_msg("'%s' (%s) and '%s' (%s) should have one form", a, fa, b, form(b));
}

static void differ(const char *a, const char *b)
{
    char fa[ZTB_URI_FORM_MAX + 1];
    snprintf(fa, sizeof(fa), "%s", form(a));
    if (strcmp(fa, form(b)) == 0)
        fail_msg("'%s' and '%s' should differ (both %s)", a, b, fa);
}

/* RFC 3986 §6.2.2 and §6.2.3, and RFC 9449's query and fragment. */
static void test_equivalent(void **state)
{
    (void)state;
    assert_string_equal(form("HTTPS://Broker.Example:443/v1/token"),
                        "https://broker.example/v1/token");
    same("http://example.com", "http://example.com/");
    same("http://example.com:/~smith/", "http://example.com/%7Esmith/");
    same("http://example.com:80/~smith/", "http://example.com/%7esmith/");
    same("http://a/b/c/%7Bfoo%7D", "http://a/./b/../b/%63/%7bfoo%7d");
    same("https://b.example/v1/token", "https://b.example/v1/token?x=1#frag");
    same("https://b.example/v1/token", "https://b.example/v1/x/../token");
    same("https://b.example/v1/token", "https://b.example/v1/./token");
    same("https://b.example/v1/token", "https://b.example/%76%31/%74oken");
    same("https://[::1]:8443/t", "https://[::1]:08443/t");
    same("https://[::1]/t", "HTTPS://[::1]:443/t");
    assert_string_equal(form("http://h/a/b/.."), "http://h/a/");
    assert_string_equal(form("http://h/a/."), "http://h/a/");
    assert_string_equal(form("http://h/.."), "http://h/");
    assert_string_equal(form("http://h/a//b"), "http://h/a//b");
    assert_string_equal(form("http://h:8080/%2f"), "http://h:8080/%2F");
}

/* What RFC 3986 does not make equal stays apart. */
static void test_different(void **state)
{
    (void)state;
    differ("https://b.example/v1/token", "http://b.example/v1/token");
    differ("https://b.example/v1/token", "https://b.example:8443/v1/token");
    differ("http://b.example/v1/token", "http://b.example:443/v1/token");
    differ("https://b.example/v1/token", "https://b.example/v1/Token");
    differ("https://b.example/v1/token", "https://b.example/v1/token/");
    differ("https://b.example/a/b", "https://b.example/a%2Fb"); /* '/' reserved */
    differ("https://b.example/v1/token", "https://c.example/v1/token");
    differ("https://b.example/v1/token", "https://b.example.evil/v1/token");
}

/* No form: not http(s), no host, userinfo, bytes that cannot be in a URI,
 * a bad percent-encoding, a bad port; and a form that would not fit. */
static void test_no_form(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "ftp://h/x",
        "https:/h/x",
        "//h/x",
        "https://",
        "https:///x",
        "https://user@h/x",
        "https://h/a b",
        "https://h/\x01",
        "https://h/caf\xc3\xa9",
        "https://h/%zz",
        "https://h/%4",
        "https://h/%",
        "https://h:x/",
        "https://h:65536/",
        "https://h:1:2/",
        "https://[::1/",
        "https://[::1]x/",
        "https://h%41/",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (form(bad[i])[0] != '\0')
            fail_msg("'%s' got the form %s", bad[i], form(bad[i]));
    char small[16];
    assert_int_equal(ztb_uri_htu_form("https://h/0123456789", 20, small, sizeof(small)), 0);
    assert_int_equal(ztb_uri_htu_form("https://h/01", 12, small, sizeof(small)), 12);
    assert_string_equal(small, "https://h/01");
    assert_int_equal(ztb_uri_htu_form("https://h/012", 13, small, 13), 0); /* no room for NUL */
    assert_int_equal(ztb_uri_htu_form(NULL, 0, small, sizeof(small)), 0);
    /* n bounds the input: what follows is not read */
    assert_int_equal(ztb_uri_htu_form("https://h/ab\x01", 12, small, sizeof(small)), 12);
}

/* The hex digits of a percent-encoding, both cases; nothing else. */
static void test_hex_value(void **state)
{
    (void)state;
    const char *digits = "0123456789abcdef", *upper = "0123456789ABCDEF";
    for (int i = 0; i < 16; i++) {
        assert_int_equal(ztb_uri_hex_value(digits[i]), i);
        assert_int_equal(ztb_uri_hex_value(upper[i]), i);
    }
    static const int bad[] = {'g', 'G', '/', ':', '@', '`', ' ', '%', 0, -1, 0xc3, -61};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(ztb_uri_hex_value(bad[i]), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_equivalent),
        cmocka_unit_test(test_different),
        cmocka_unit_test(test_no_form),
        cmocka_unit_test(test_hex_value),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
