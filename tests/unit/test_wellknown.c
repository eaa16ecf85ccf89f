/*
 * test_wellknown.c - key discovery and RFC 8414 metadata (wellknown.c),
 * served by a real http_server in this process (broker_fixture.h bf_serve)
 * with a real key store: the JWKS holds public keys only, with its cache
 * period; the metadata says only what is true (no authorization endpoint,
 * one grant type, the client authentication methods and algorithms each
 * endpoint accepts, DPoP, the authorization_details types of the policy in
 * force; tls_client_auth only when the broker serves TLS with an agent CA).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "broker_fixture.h"
#include "wire/wire.h"

/* The policy in force: one rule (no authorization_details type of its own). */
static const char policy_text[] =
    "{\"version\": 1, \"trust_domain\": \"ztb.local\",\n"
    " \"settings\": {\"max_ttl\": 300, \"default_ttl\": 60,\n"
    "   \"rate_limits\": {\"per_agent\": {\"rate\": 10, \"burst\": 10, \"period\": 60},\n"
    "                   \"per_action\": {\"rate\": 10, \"burst\": 10, \"period\": 60}}},\n"
    " \"rules\": [{\"id\": \"r\", \"effect\": \"allow\", \"agents\": [\"a\"],\n"
    "   \"actions\": [\"x:y\"], \"audiences\": [\"aud\"], \"resources\": [\"**\"]}]}\n";

static int setup(void **state)
{
    (void)state;
    bf_setup(policy_text);
    bf_serve(0);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    bf_unserve();
    bf_teardown();
    return 0;
}

/* GET path: the body as JSON (caller decrefs), with status 200 and the
 * Cache-Control header into cc. */
static json_t *get_json(const char *path, char *cc, size_t cap, char *ctype, size_t ccap)
{
    struct zh_resp r;
    assert_int_equal(zh_get(&bf_broker, path, &r), 0);
    assert_int_equal(r.status, 200);
    assert_non_null(zh_resp_header(&r, "Cache-Control", cc, cap));
    assert_non_null(zh_resp_header(&r, "Content-Type", ctype, ccap));
    json_error_t e;
    json_t *j = json_loads(r.body, 0, &e);
    zh_resp_free(&r);
    assert_non_null(j);
    return j;
}

/* 1 if the array a holds the string s. */
static int has(const json_t *a, const char *s)
{
    size_t i;
    json_t *v;
    json_array_foreach(a, i, v)
    {
        if (json_is_string(v) && strcmp(json_string_value(v), s) == 0)
            return 1;
    }
    return 0;
}

static void test_jwks_public_only(void **state)
{
    (void)state;
    char cc[128], ct[128];
    json_t *j = get_json("/.well-known/jwks.json", cc, sizeof(cc), ct, sizeof(ct));
    assert_string_equal(ct, "application/jwk-set+json");
    assert_non_null(strstr(cc, "max-age="));
    json_t *keys = json_object_get(j, "keys");
    assert_true(json_array_size(keys) >= 1);
    size_t i;
    json_t *k;
    json_array_foreach(keys, i, k)
    {
        assert_string_equal(json_string_value(json_object_get(k, "kty")), "EC");
        assert_string_equal(json_string_value(json_object_get(k, "crv")), "P-256");
        assert_non_null(json_string_value(json_object_get(k, "kid")));
        assert_non_null(json_string_value(json_object_get(k, "x")));
        assert_non_null(json_string_value(json_object_get(k, "y")));
        assert_null(json_object_get(k, "d")); /* never the private part */
    }
    json_decref(j);
}

static void test_metadata(void **state)
{
    (void)state;
    char cc[128], ct[128], want[400];
    json_t *m = get_json("/.well-known/oauth-authorization-server", cc, sizeof(cc), ct, sizeof(ct));
    assert_non_null(strstr(ct, "application/json"));
    assert_string_equal(cc, "public, max-age=3600");
    assert_string_equal(json_string_value(json_object_get(m, "issuer")), bf_broker.url);
    snprintf(want, sizeof(want), "%s/v1/token", bf_broker.url);
    assert_string_equal(json_string_value(json_object_get(m, "token_endpoint")), want);
    snprintf(want, sizeof(want), "%s/.well-known/jwks.json", bf_broker.url);
    assert_string_equal(json_string_value(json_object_get(m, "jwks_uri")), want);
    snprintf(want, sizeof(want), "%s/v1/introspect", bf_broker.url);
    assert_string_equal(json_string_value(json_object_get(m, "introspection_endpoint")), want);
    snprintf(want, sizeof(want), "%s/v1/revoke", bf_broker.url);
    assert_string_equal(json_string_value(json_object_get(m, "revocation_endpoint")), want);
    /* no authorization endpoint: nothing that implies one */
    assert_null(json_object_get(m, "authorization_endpoint"));
    assert_null(json_object_get(m, "response_types_supported"));
    json_t *grants = json_object_get(m, "grant_types_supported");
    assert_int_equal(json_array_size(grants), 1);
    assert_true(has(grants, ZTB_WIRE_GRANT_TOKEN_EXCHANGE));
    static const char *const ep[] = {"token", "introspection", "revocation"};
    for (size_t i = 0; i < 3; i++) {
        char name[96];
        snprintf(name, sizeof(name), "%s_endpoint_auth_methods_supported", ep[i]);
        json_t *am = json_object_get(m, name);
        assert_true(has(am, "private_key_jwt"));
        assert_true(has(am, "ztb_session"));
        assert_false(has(am, "tls_client_auth")); /* no TLS here */
        assert_false(has(am, "client_secret_basic"));
        assert_false(has(am, "none"));
        snprintf(name, sizeof(name), "%s_endpoint_auth_signing_alg_values_supported", ep[i]);
        json_t *al = json_object_get(m, name);
        assert_int_equal(json_array_size(al), 1);
        assert_true(has(al, "ES256"));
    }
    json_t *dpop = json_object_get(m, "dpop_signing_alg_values_supported");
    assert_int_equal(json_array_size(dpop), 1);
    assert_true(has(dpop, "ES256"));
    assert_true(has(json_object_get(m, "authorization_details_types_supported"),
                    ZTB_WIRE_DETAIL_TYPE_ACTION));
    assert_true(json_is_false(json_object_get(m, "tls_client_certificate_bound_access_tokens")));
    json_decref(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_jwks_public_only),
        cmocka_unit_test(test_metadata),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
