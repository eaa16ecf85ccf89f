/*
 * test_resource.c - sdk/src/resource.c: the protected resource metadata
 * document and its URL (RFC 9728), the Authorization header reader, and
 * the refusal table (status and WWW-Authenticate, RFC 6750 §3, RFC 9449
 * §7.1, RFC 9728 §5.1). The attacks: a resource identifier or an option
 * that would inject into a header or the document (quotes, CR LF, spaces),
 * plain http to another host, a fragment or query, a malformed
 * Authorization header read as a token.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include <ztb/resource.h>

static void test_metadata_document(void **state)
{
    (void)state;
    const char *scopes[] = {"mcp:connect", "payments:refund", NULL};
    ztb_resource r = {.resource = "https://tools.example.org/mcp",
                      .authorization_server = "https://broker.example.org",
                      .scopes = scopes,
                      .resource_name = "Refunds for agents"};
    char doc[2048];
    size_t n = 0;
    assert_int_equal(ztb_resource_metadata_json(&r, doc, sizeof(doc), &n), ZTB_OK);
    assert_int_equal(n, strlen(doc));
    json_t *j = json_loads(doc, 0, NULL);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "resource")),
                        "https://tools.example.org/mcp");
    assert_string_equal(
        json_string_value(json_array_get(json_object_get(j, "authorization_servers"), 0)),
        "https://broker.example.org");
    assert_string_equal(
        json_string_value(json_array_get(json_object_get(j, "bearer_methods_supported"), 0)),
        "header");
    assert_string_equal(json_string_value(json_array_get(
                            json_object_get(j, "dpop_signing_alg_values_supported"), 0)),
                        "ES256");
    assert_int_equal(json_array_size(json_object_get(j, "scopes_supported")), 2);
    assert_string_equal(json_string_value(json_object_get(j, "resource_name")),
                        "Refunds for agents");
    assert_null(json_object_get(j, "dpop_bound_access_tokens_required"));
    json_decref(j);
    /* no scopes: no member; DPoP required: said */
    r.scopes = NULL;
    r.resource_name = NULL;
    r.dpop_required = 1;
    assert_int_equal(ztb_resource_metadata_json(&r, doc, sizeof(doc), NULL), ZTB_OK);
    j = json_loads(doc, 0, NULL);
    assert_null(json_object_get(j, "scopes_supported"));
    assert_true(json_is_true(json_object_get(j, "dpop_bound_access_tokens_required")));
    json_decref(j);
    /* too small */
    assert_int_equal(ztb_resource_metadata_json(&r, doc, 20, NULL), ZTB_ERR_TOO_LARGE);
    assert_string_equal(doc, "");
}

static void test_metadata_refuses_bad_values(void **state)
{
    (void)state;
    char doc[2048];
    const char *bad[] = {
        NULL,
        "",
        "tools.example.org/mcp",           /* no scheme */
        "ftp://tools.example.org/mcp",     /* another scheme */
        "http://tools.example.org/mcp",    /* plain http to another host */
        "https://tools.example.org/mcp#x", /* a fragment */
        "https://tools.example.org/mcp?a=b",
        "https://tools.example.org/m\"cp", /* a quote: header injection */
        "https://tools.example.org/m cp",
        "https://tools.example.org/m\r\nX-Evil: 1",
        "https:///mcp",                       /* no host */
        "https://user@tools.example.org/mcp", /* userinfo */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ztb_resource r = {.resource = bad[i], .authorization_server = "https://b.example.org"};
        if (ztb_resource_metadata_json(&r, doc, sizeof(doc), NULL) != ZTB_ERR_INVALID_ARG)
            fail_msg("accepted resource %zu", i);
        if (ztb_resource_metadata_url(bad[i], doc, sizeof(doc)) != ZTB_ERR_INVALID_ARG)
            fail_msg("url of resource %zu", i);
    }
    ztb_resource r = {.resource = "https://t.example.org", .authorization_server = "a\"b"};
    assert_int_equal(ztb_resource_metadata_json(&r, doc, sizeof(doc), NULL), ZTB_ERR_INVALID_ARG);
    const char *scopes[] = {"ok", "not ok", NULL};
    r = (ztb_resource){
        .resource = "https://t.example.org", .authorization_server = "https://b", .scopes = scopes};
    assert_int_equal(ztb_resource_metadata_json(&r, doc, sizeof(doc), NULL), ZTB_ERR_INVALID_ARG);
    assert_int_equal(ztb_resource_metadata_json(NULL, doc, sizeof(doc), NULL), ZTB_ERR_INVALID_ARG);
    r = (ztb_resource){.resource = "https://t.example.org",
                       .authorization_server = "https://b",
                       .resource_name = "a\nb"};
    assert_int_equal(ztb_resource_metadata_json(&r, doc, sizeof(doc), NULL), ZTB_ERR_INVALID_ARG);
    /* http on loopback is fine (tests, a sidecar behind a local proxy) */
    const char *ok[] = {"http://127.0.0.1:8080/mcp", "http://localhost/mcp", "http://[::1]:9/x"};
    for (size_t i = 0; i < 3; i++) {
        r = (ztb_resource){.resource = ok[i], .authorization_server = "https://b"};
        assert_int_equal(ztb_resource_metadata_json(&r, doc, sizeof(doc), NULL), ZTB_OK);
    }
}

static void test_metadata_url(void **state)
{
    (void)state;
    char u[600];
    struct {
        const char *resource, *url, *path;
    } cases[] = {
        {"https://tools.example.org/mcp",
         "https://tools.example.org/.well-known/oauth-protected-resource/mcp",
         "/.well-known/oauth-protected-resource/mcp"},
        {"https://tools.example.org",
         "https://tools.example.org/.well-known/oauth-protected-resource",
         "/.well-known/oauth-protected-resource"},
        {"https://tools.example.org/",
         "https://tools.example.org/.well-known/oauth-protected-resource",
         "/.well-known/oauth-protected-resource"},
        {"https://t.example.org:8443/a/b/",
         "https://t.example.org:8443/.well-known/oauth-protected-resource/a/b",
         "/.well-known/oauth-protected-resource/a/b"},
        {"http://127.0.0.1:5/mcp", "http://127.0.0.1:5/.well-known/oauth-protected-resource/mcp",
         "/.well-known/oauth-protected-resource/mcp"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(ztb_resource_metadata_url(cases[i].resource, u, sizeof(u)), ZTB_OK);
        assert_string_equal(u, cases[i].url);
        assert_int_equal(ztb_resource_metadata_path(cases[i].resource, u, sizeof(u)), ZTB_OK);
        assert_string_equal(u, cases[i].path);
    }
    assert_int_equal(ztb_resource_metadata_url("https://t.example.org/mcp", u, 20),
                     ZTB_ERR_TOO_LARGE);
    assert_string_equal(u, "");
    assert_int_equal(ztb_resource_metadata_path("https://t.example.org/mcp", u, 10),
                     ZTB_ERR_TOO_LARGE);
    assert_int_equal(ztb_resource_metadata_url("https://t.example.org/mcp", NULL, 10),
                     ZTB_ERR_INVALID_ARG);
}

static void test_authorization_parse(void **state)
{
    (void)state;
    const char *t = NULL;
    assert_int_equal(ztb_authorization_parse("Bearer abc.def-_~+/=", &t), ZTB_SCHEME_BEARER);
    assert_string_equal(t, "abc.def-_~+/=");
    assert_int_equal(ztb_authorization_parse("bEaReR x", &t), ZTB_SCHEME_BEARER);
    assert_int_equal(ztb_authorization_parse("dpop x.y.z", &t), ZTB_SCHEME_DPOP);
    assert_string_equal(t, "x.y.z");
    /* one or more spaces (RFC 9110 §11.4) */
    assert_int_equal(ztb_authorization_parse("Bearer  x", &t), ZTB_SCHEME_BEARER);
    assert_string_equal(t, "x");
    const char *bad[] = {NULL,        "",          "Bearer",     "Bearer ",
                         "Bearer  ",  "Bearer x ", "Bearer x y", "Bearer x\r\nA",
                         "Basic abc", "Bearerx",   "DPoP",       "Bearer \"x\"",
                         "Bearer x,y"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        t = "set";
        if (ztb_authorization_parse(bad[i], &t) != ZTB_SCHEME_NONE || t != NULL)
            fail_msg("read a token from header %zu", i);
    }
    assert_int_equal(ztb_authorization_parse("Bearer x", NULL), ZTB_SCHEME_NONE);
}

static void test_challenges(void **state)
{
    (void)state;
    char w[1024];
    const char *rm = "https://t.example.org/.well-known/oauth-protected-resource/mcp";
    ztb_challenge_opts o = {.scheme = ZTB_SCHEME_NONE, .resource_metadata = rm};
    /* no token: 401 without an error code, both schemes, the metadata pointer */
    assert_int_equal(ztb_challenge(ZTB_ERR_NOT_FOUND, &o, w, sizeof(w)), 401);
    assert_string_equal(w, "Bearer realm=\"ztb\", resource_metadata=\"https://t.example.org/"
                           ".well-known/oauth-protected-resource/mcp\", DPoP realm=\"ztb\", "
                           "algs=\"ES256\", resource_metadata=\"https://t.example.org/"
                           ".well-known/oauth-protected-resource/mcp\"");
    assert_int_equal(ztb_challenge(ZTB_ERR_INVALID_REQUEST, &o, w, sizeof(w)), 400);
    o.resource_metadata = NULL;
    assert_int_equal(ztb_challenge(ZTB_ERR_NOT_FOUND, &o, w, sizeof(w)), 401);
    assert_string_equal(w, "Bearer realm=\"ztb\", DPoP realm=\"ztb\", algs=\"ES256\"");
    /* a token for another server: 401 invalid_token with the pointer */
    o = (ztb_challenge_opts){.scheme = ZTB_SCHEME_BEARER, .resource_metadata = rm};
    assert_int_equal(ztb_challenge(ZTB_ERR_AUDIENCE, &o, w, sizeof(w)), 401);
    assert_non_null(strstr(w, "Bearer realm=\"ztb\", error=\"invalid_token\", "
                              "error_description=\"the token is for another audience\""));
    assert_non_null(strstr(w, ", resource_metadata=\"https://t.example.org/"));
    /* another action: 403 insufficient_scope with the scope */
    o.scope = "payments:refund";
    assert_int_equal(ztb_challenge(ZTB_ERR_ACTION, &o, w, sizeof(w)), 403);
    assert_non_null(strstr(w, "error=\"insufficient_scope\""));
    assert_non_null(strstr(w, "scope=\"payments:refund\""));
    assert_int_equal(ztb_challenge(ZTB_ERR_RESOURCE, &o, w, sizeof(w)), 403);
    /* DPoP problems: the DPoP challenge */
    assert_int_equal(ztb_challenge(ZTB_ERR_DPOP_REPLAY, &o, w, sizeof(w)), 401);
    assert_non_null(strstr(w, "DPoP realm=\"ztb\", error=\"invalid_dpop_proof\""));
    assert_non_null(strstr(w, "algs=\"ES256\""));
    assert_int_equal(ztb_challenge(ZTB_ERR_BINDING, &o, w, sizeof(w)), 401);
    assert_non_null(strstr(w, "DPoP realm=\"ztb\", error=\"invalid_token\""));
    /* revoked, expired, replayed, forged: 401 invalid_token */
    ztb_err inv[] = {ZTB_ERR_REVOKED,   ZTB_ERR_EXPIRED,     ZTB_ERR_REPLAY,
                     ZTB_ERR_SIGNATURE, ZTB_ERR_UNKNOWN_KID, ZTB_ERR_ISSUER};
    for (size_t i = 0; i < sizeof(inv) / sizeof(inv[0]); i++) {
        assert_int_equal(ztb_challenge(inv[i], &o, w, sizeof(w)), 401);
        assert_non_null(strstr(w, "error=\"invalid_token\""));
    }
    /* fail closed: 503 and no challenge */
    assert_int_equal(ztb_challenge(ZTB_ERR_REVOCATION_STALE, &o, w, sizeof(w)), 503);
    assert_string_equal(w, "");
    assert_int_equal(ztb_challenge(ZTB_ERR_UNAVAILABLE, &o, w, sizeof(w)), 503);
    assert_string_equal(ztb_challenge_error(ZTB_ERR_UNAVAILABLE, ZTB_SCHEME_BEARER),
                        "temporarily_unavailable");
    assert_int_equal(ztb_challenge(ZTB_ERR_NOMEM, &o, w, sizeof(w)), 500);
    /* injections and misuse: nothing written */
    o.scope = "a\"b";
    assert_int_equal(ztb_challenge(ZTB_ERR_ACTION, &o, w, sizeof(w)), 0);
    o.scope = NULL;
    o.resource_metadata = "https://x/\r\nSet-Cookie: a";
    assert_int_equal(ztb_challenge(ZTB_ERR_REVOKED, &o, w, sizeof(w)), 0);
    assert_string_equal(w, "");
    o.resource_metadata = NULL;
    o.realm = "r e";
    assert_int_equal(ztb_challenge(ZTB_ERR_REVOKED, &o, w, sizeof(w)), 0);
    o.realm = NULL;
    assert_int_equal(ztb_challenge(ZTB_OK, &o, w, sizeof(w)), 0);
    assert_int_equal(ztb_challenge(ZTB_ERR_REVOKED, NULL, w, sizeof(w)), 0);
    assert_int_equal(ztb_challenge(ZTB_ERR_REVOKED, &o, w, 10), 0);
    assert_string_equal(w, "");
    assert_string_equal(ztb_challenge_description(ZTB_ERR_JWS_FORMAT),
                        "the token is not a valid token of this broker");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_metadata_document),
        cmocka_unit_test(test_metadata_refuses_bad_values),
        cmocka_unit_test(test_metadata_url),
        cmocka_unit_test(test_authorization_parse),
        cmocka_unit_test(test_challenges),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
