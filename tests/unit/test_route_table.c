/*
 * test_route_table.c - the route table of GET /v1/authorize: parsing the
 * operator's file, and strict matching of raw request targets. The attacks
 * on matching (percent-encoded slashes and dots, dot segments, double
 * slashes, query strings, ';' parameters, fragments, backslashes) must never
 * widen a match. Which original request a check request names (the header
 * or the prefix form, route_check_original), on the raw target.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "wire/route_table.h"

static const char *table_doc =
    "{\"origin\": \"https://payments.example.org\",\n"
    " \"routes\": [\n"
    "  {\"method\": \"POST\", \"path\": \"/refunds/{id}\", \"audience\": \"payments\",\n"
    "   \"action\": \"payments:refund\", \"resource\": \"orders/{id}\"},\n"
    "  {\"method\": \"GET\", \"path\": \"/orders/{id}/items/{item}\", \"audience\": \"payments\",\n"
    "   \"action\": \"payments:read\", \"resource\": \"orders/{id}/{item}\"},\n"
    "  {\"method\": \"GET\", \"path\": \"/status\", \"audience\": \"payments\",\n"
    "   \"action\": \"payments:status\"}\n"
    " ]}\n";

static struct route_table *table(void)
{
    struct route_table *t = NULL;
    char why[300];
    ztb_err rv = route_table_parse(table_doc, strlen(table_doc), &t, why, sizeof(why));
    if (rv != ZTB_OK)
        fail_msg("parse: %s", why);
    return t;
}

static void test_match_ok(void **state)
{
    (void)state;
    struct route_table *t = table();
    assert_int_equal(route_table_count(t), 3);
    assert_string_equal(route_table_audience(t, 0), "payments");
    assert_null(route_table_audience(t, 3));
    assert_null(route_table_audience(NULL, 0));
    assert_string_equal(route_table_action(t, 1), "payments:read");
    assert_null(route_table_action(t, 3));
    assert_string_equal(route_table_origin(t), "https://payments.example.org");
    assert_string_equal(route_table_origin(NULL), "");
    struct route_need n;
    assert_int_equal(route_table_match(t, "POST", "/refunds/1234", &n), ZTB_OK);
    assert_string_equal(n.audience, "payments");
    assert_string_equal(n.action, "payments:refund");
    assert_string_equal(n.resource, "orders/1234");
    assert_string_equal(n.origin, "https://payments.example.org");
    assert_int_equal(n.route, 0);
    /* a query string is cut off, never part of a value */
    assert_int_equal(route_table_match(t, "POST", "/refunds/77?x=1", &n), ZTB_OK);
    assert_string_equal(n.resource, "orders/77");
    assert_int_equal(route_table_match(t, "GET", "/orders/5/items/a-b_c~d.e", &n), ZTB_OK);
    assert_string_equal(n.resource, "orders/5/a-b_c~d.e");
    assert_int_equal(route_table_match(t, "GET", "/status", &n), ZTB_OK);
    assert_string_equal(n.resource, "");
    route_table_free(t);
}

/* ATTACK: every trick that could make a path match a route it should not,
 * or carry more than one segment into the resource. */
static void test_match_attacks(void **state)
{
    (void)state;
    struct route_table *t = table();
    static const char *const bad[] = {
        "/refunds/12%2F13",      /* percent-encoded slash */
        "/refunds/12%2f..",      /* lower-case encoding */
        "/refunds/%2E%2E",       /* encoded dot segment */
        "/refunds/..",           /* dot segment */
        "/refunds/.",            /* dot segment */
        "/refunds/../refunds/1", /* traversal */
        "/refunds//1",           /* double slash */
        "//refunds/1",           /* double slash first */
        "/refunds/1/",           /* trailing slash */
        "/refunds/1/..",         /* traversal after */
        "/refunds/",             /* empty value */
        "/refunds",              /* no value */
        "/refunds/1;x=2",        /* path parameters */
        "/refunds/1#frag",       /* fragment */
        "/refunds/1\\2",         /* backslash */
        "/refunds/a b",          /* space */
        "/REFUNDS/1",            /* literal compared exactly */
        "/refund%73/1",          /* encoded literal */
        "refunds/1",             /* not origin-form */
        "http://evil/refunds/1", /* absolute-form */
        "?/refunds/1",           /* query only */
        "/refunds?/1",           /* the query never completes a path */
        "",
        "/",
    };
    struct route_need n;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (route_table_match(t, "POST", bad[i], &n) != ZTB_ERR_NOT_FOUND)
            fail_msg("%s matched (resource %s)", bad[i], n.resource);
    /* the method is exact */
    assert_int_equal(route_table_match(t, "post", "/refunds/1", &n), ZTB_ERR_NOT_FOUND);
    assert_int_equal(route_table_match(t, "GET", "/refunds/1", &n), ZTB_ERR_NOT_FOUND);
    assert_int_equal(route_table_match(t, "POST ", "/refunds/1", &n), ZTB_ERR_NOT_FOUND);
    /* an over-long value is refused, not cut */
    char longv[300] = "/refunds/";
    memset(longv + 9, 'a', 200);
    longv[209] = '\0';
    assert_int_equal(route_table_match(t, "POST", longv, &n), ZTB_ERR_NOT_FOUND);
    route_table_free(t);
}

/* The check request's two forms: the original request is the headers'
 * values, or the prefix form's own method and raw target after exactly
 * "/v1/authorize" (nothing decoded), never both. */
static void test_check_original(void **state)
{
    (void)state;
    struct route_check o;
    const char *why = NULL;
    /* the header form */
    assert_int_equal(
        route_check_original("GET", "/v1/authorize", "POST", 1, "/refunds/1", 1, &o, &why), ZTB_OK);
    assert_string_equal(o.method, "POST");
    assert_string_equal(o.uri, "/refunds/1");
    assert_int_equal(o.prefix_form, 0);
    assert_int_equal(
        route_check_original("GET", "/v1/authorize?x=1", "POST", 1, "/refunds/1", 1, &o, &why),
        ZTB_OK);
    /* a header missing, repeated (or with a NUL: counted as repeated) */
    assert_int_equal(route_check_original("GET", "/v1/authorize", "POST", 1, NULL, 0, &o, &why),
                     ZTB_ERR_INVALID_REQUEST);
    assert_non_null(strstr(why, "X-Original-Method"));
    assert_int_equal(
        route_check_original("GET", "/v1/authorize", "POST", 2, "/refunds/1", 1, &o, &why),
        ZTB_ERR_INVALID_REQUEST);
    assert_null(o.uri);
    /* the prefix form: the check request's method, the raw rest of the target */
    assert_int_equal(
        route_check_original("POST", "/v1/authorize/refunds/1?a=%2F", NULL, 0, NULL, 0, &o, &why),
        ZTB_OK);
    assert_string_equal(o.method, "POST");
    assert_string_equal(o.uri, "/refunds/1?a=%2F");
    assert_int_equal(o.prefix_form, 1);
    static const char *const kept[][2] = {
        /* byte for byte, whatever the route table then thinks of it */
        {"/v1/authorize/refunds%2F..%2Fadmin", "/refunds%2F..%2Fadmin"},
        {"/v1/authorize/refunds/1/../2", "/refunds/1/../2"},
        {"/v1/authorize//refunds/1", "//refunds/1"},
        {"/v1/authorize/refunds/1%00/../2", "/refunds/1%00/../2"},
        {"/v1/authorize/", "/"},
        {"/v1/authorize/?q", "/?q"},
    };
    for (size_t i = 0; i < sizeof(kept) / sizeof(kept[0]); i++) {
        assert_int_equal(route_check_original("DELETE", kept[i][0], NULL, 0, NULL, 0, &o, &why),
                         ZTB_OK);
        assert_string_equal(o.uri, kept[i][1]);
        assert_string_equal(o.method, "DELETE");
    }
    /* ATTACK: both forms at once (headers the client slipped through a
     * gateway's allowed_headers): refused, whichever header */
    assert_int_equal(route_check_original("POST", "/v1/authorize/refunds/1", "POST", 1,
                                          "/refunds/2", 1, &o, &why),
                     ZTB_ERR_INVALID_REQUEST);
    assert_non_null(strstr(why, "named twice"));
    assert_int_equal(
        route_check_original("POST", "/v1/authorize/refunds/1", NULL, 0, "/refunds/2", 1, &o, &why),
        ZTB_ERR_INVALID_REQUEST);
    assert_int_equal(
        route_check_original("POST", "/v1/authorize/refunds/1", "GET", 1, NULL, 0, &o, &why),
        ZTB_ERR_INVALID_REQUEST);
    assert_int_equal(
        route_check_original("POST", "/v1/authorize/refunds/1", NULL, 2, NULL, 0, &o, &why),
        ZTB_ERR_INVALID_REQUEST);
    /* ATTACK: targets an HTTP server's decoding would route to the endpoint,
     * but that are not exactly its path */
    static const char *const bad[] = {
        "/v1/authorize%2Frefunds/1", "/v1/authorize%2frefunds/1", "/v1/authoriz%65/refunds/1",
        "/v1//authorize/refunds/1",  "//v1/authorize/refunds/1",  "/v1/authorizerefunds/1",
        "/v1/authorize/../token",    "/V1/authorize/refunds/1",   "http://h/v1/authorize/x",
        "/v1/authorize;x/refunds/1", "/v1/authorize#/refunds/1",  "",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ztb_err rv = route_check_original("POST", bad[i], "POST", 1, "/refunds/1", 1, &o, &why);
        if (i == 6) { /* a real prefix form (with headers: refused for that) */
            assert_int_equal(rv, ZTB_ERR_INVALID_REQUEST);
            continue;
        }
        if (rv != ZTB_ERR_INVALID_REQUEST)
            fail_msg("%s accepted", bad[i]);
        assert_non_null(why);
    }
    /* no method or target (the server kept none): refused */
    assert_int_equal(route_check_original("POST", NULL, NULL, 0, NULL, 0, &o, &why),
                     ZTB_ERR_INVALID_REQUEST);
    assert_int_equal(route_check_original(NULL, "/v1/authorize/x", NULL, 0, NULL, 0, &o, &why),
                     ZTB_ERR_INVALID_REQUEST);
    assert_int_equal(route_check_original("", "/v1/authorize/x", NULL, 0, NULL, 0, &o, &why),
                     ZTB_ERR_INVALID_REQUEST);
    /* both forms reach the same route with the same bytes */
    struct route_table *t = table();
    struct route_need n1, n2;
    assert_int_equal(
        route_check_original("POST", "/v1/authorize/refunds/9?z", NULL, 0, NULL, 0, &o, &why),
        ZTB_OK);
    assert_int_equal(route_table_match(t, o.method, o.uri, &n1), ZTB_OK);
    assert_int_equal(route_table_match(t, "POST", "/refunds/9?z", &n2), ZTB_OK);
    assert_memory_equal(&n1, &n2, sizeof(n1));
    route_table_free(t);
}

static void expect_bad(const char *doc, const char *want)
{
    struct route_table *t = NULL;
    char why[300];
    ztb_err rv = route_table_parse(doc, strlen(doc), &t, why, sizeof(why));
    if (rv == ZTB_OK)
        fail_msg("accepted: %s", doc);
    assert_null(t);
    if (strstr(why, want) == NULL)
        fail_msg("%s: want \"%s\" in \"%s\"", doc, want, why);
}

#define R(path, res)                                                                               \
    "{\"routes\": [{\"method\": \"POST\", \"path\": \"" path "\", \"audience\": \"a\", "           \
    "\"action\": \"x\", \"resource\": \"" res "\"}]}"

static void test_parse_refused(void **state)
{
    (void)state;
    expect_bad("[]", "must be an object");
    expect_bad("{\"routes\": []}", "1 to 256");
    expect_bad("{\"routes\": [], \"extra\": 1}", "exactly");
    expect_bad("{\"routes\": [1]}", "route 1: a route must be an object");
    expect_bad("{\"routes\": [{\"method\": \"POST\", \"path\": \"/a\", \"audience\": \"a\", "
               "\"action\": \"x\", \"typo\": 1}]}",
               "unknown member");
    expect_bad("{\"routes\": [{\"method\": \"post\", \"path\": \"/a\", \"audience\": \"a\", "
               "\"action\": \"x\"}]}",
               "upper-case");
    expect_bad("{\"routes\": [{\"method\": \"GET\", \"path\": \"/a\", \"audience\": \"a b\", "
               "\"action\": \"x\"}]}",
               "printable");
    expect_bad(R("a/{id}", "o/{id}"), "start with '/'");
    expect_bad(R("/a//{id}", "o/{id}"), "empty segment");
    expect_bad(R("/a/{id}/", "o/{id}"), "empty segment");
    expect_bad(R("/a/../{id}", "o/{id}"), "dot segment");
    expect_bad(R("/a/%2F/{id}", "o/{id}"), "literal segment");
    expect_bad(R("/a/x{id}", "o/{id}"), "literal segment");
    expect_bad(R("/a/{id}/{id}", "o/{id}"), "used twice");
    expect_bad(R("/a/{Id}", "o/{Id}"), "variable");
    expect_bad(R("/a/{id}", "o/{other}"), "does not have");
    expect_bad(R("/a/{id}", "o/{id"), "does not have");
    expect_bad("{\"origin\": \"https://x.org/path\", \"routes\": [{\"method\": \"GET\", "
               "\"path\": \"/a\", \"audience\": \"a\", \"action\": \"x\"}]}",
               "without a path");
    expect_bad("{\"origin\": \"ftp://x.org\", \"routes\": [{\"method\": \"GET\", "
               "\"path\": \"/a\", \"audience\": \"a\", \"action\": \"x\"}]}",
               "scheme://host");
    expect_bad("{\"routes\": [{\"method\": \"GET\", \"path\": \"/a\", \"audience\": \"a\", "
               "\"action\": \"x\", \"action\": \"y\"}]}",
               "duplicate");
    expect_bad("{", "invalid JSON");
}

static void test_load_and_holder(void **state)
{
    (void)state;
    char dir[] = "/tmp/ztb-route-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[64];
    snprintf(path, sizeof(path), "%s/routes.json", dir);
    struct route_holder *h = route_holder_new();
    assert_non_null(h);
    struct route_need n;
    char why[300];
    /* no table: nothing matches */
    assert_int_equal(route_holder_match(h, "POST", "/refunds/1", &n), ZTB_ERR_NOT_FOUND);
    assert_int_equal(route_holder_reload(h, path, why, sizeof(why)), ZTB_ERR_IO);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(table_doc, f);
    fclose(f);
    assert_int_equal(route_holder_reload(h, path, why, sizeof(why)), ZTB_OK);
    assert_int_equal(route_holder_match(h, "POST", "/refunds/1", &n), ZTB_OK);
    /* a broken file keeps the table in force */
    f = fopen(path, "w");
    assert_non_null(f);
    fputs("{\"routes\": 1}", f);
    fclose(f);
    assert_int_equal(route_holder_reload(h, path, why, sizeof(why)), ZTB_ERR_INVALID_ARG);
    assert_non_null(strstr(why, path));
    assert_int_equal(route_holder_match(h, "POST", "/refunds/1", &n), ZTB_OK);
    route_holder_free(h);
    unlink(path);
    rmdir(dir);
}

/* ATTACK: method overrides the client sent, passed on by the gateway. No
 * override header, or one naming the original method itself, leave the
 * backend running the authorized method; any other value, two of them, or
 * a _method query parameter in any spelling a framework decodes to it, do
 * not. */
static void test_override_ok(void **state)
{
    (void)state;
    struct route_check o = {.method = "POST", .uri = "/refunds/1?a=1&method=x&b_method=y"};
    assert_true(route_override_ok(&o, 0, NULL));
    assert_true(route_override_ok(&o, 1, "POST"));
    assert_false(route_override_ok(&o, 1, "DELETE"));
    assert_false(route_override_ok(&o, 1, "post")); /* methods are case-sensitive */
    assert_false(route_override_ok(&o, 1, "POST "));
    assert_false(route_override_ok(&o, 1, ""));
    assert_false(route_override_ok(&o, 1, NULL));
    assert_false(route_override_ok(&o, 2, "POST"));
    o.method = NULL;
    assert_false(route_override_ok(&o, 1, "POST"));
    o.method = "POST";
    static const char *const bad[] = {
        "/refunds/1?_method=DELETE",   "/refunds/1?a=1&_method=DELETE",
        "/refunds/1?a=1;_method=PUT",  "/refunds/1?_METHOD=DELETE",
        "/refunds/1?%5Fmethod=DELETE", "/refunds/1?%5fmethod=DELETE",
        "/refunds/1?_%6Dethod=DELETE", "/refunds/1?.method=DELETE",
        "/refunds/1?+method=DELETE",   "/refunds/1?%20method=DELETE",
        "/refunds/1?_method[]=DELETE", "/refunds/1?_method",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        o.uri = bad[i];
        if (route_override_ok(&o, 0, NULL))
            fail_msg("%s passed", bad[i]);
    }
    static const char *const good[] = {
        "/refunds/1",
        "/refunds/1?",
        "/refunds/1?x_method=1",
        "/refunds/1?_methods=1",
        "/refunds/1?a=_method",
        "/refunds/_method",
    };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        o.uri = good[i];
        if (!route_override_ok(&o, 0, NULL))
            fail_msg("%s refused", good[i]);
    }
    size_t n = 0;
    for (const char *const *h = route_override_headers; *h != NULL; h++)
        n++;
    assert_int_equal(n, 3);
    assert_string_equal(route_override_headers[0], "X-HTTP-Method-Override");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_match_ok),        cmocka_unit_test(test_match_attacks),
        cmocka_unit_test(test_check_original),  cmocka_unit_test(test_parse_refused),
        cmocka_unit_test(test_load_and_holder), cmocka_unit_test(test_override_ok),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
