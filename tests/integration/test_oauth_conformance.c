/*
 * test_oauth_conformance.c - what standard OAuth clients send, against the
 * real broker and a real Redis: RFC 8414 metadata that tells the truth,
 * private_key_jwt assertions addressed the ways RFC 7523 and
 * draft-ietf-oauth-rfc7523bis allow (the issuer identifier, the token
 * endpoint, the endpoint called; a string or an array; the typed
 * client-authentication+jwt form) at the token, introspection and revocation
 * endpoints, client_id beside the assertion (RFC 7521 4.2), and a CSR with a
 * subject name (ignored). The attacks: an assertion addressed to another
 * server (alone or beside us), a client_id naming someone else.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "agent.h"
#include "harness.h"
#include "pki/jws.h"

static const char *policy_doc =
    "{\"version\": 1, \"trust_domain\": \"ztb.local\",\n"
    " \"settings\": {\"max_ttl\": 120, \"default_ttl\": 60,\n"
    "   \"rate_limits\": {\"per_agent\": {\"rate\": 1000, \"burst\": 100, \"period\": 60},\n"
    "                   \"per_action\": {\"rate\": 1000, \"burst\": 100, \"period\": 60}}},\n"
    " \"rules\": [\n"
    "  {\"id\": \"pay\", \"effect\": \"allow\", \"agents\": [\"*\"],\n"
    "   \"actions\": [\"payments:refund\"], \"audiences\": [\"payments\"],\n"
    "   \"resources\": [\"**\"]},\n"
    "  {\"id\": \"pay-small\", \"effect\": \"allow\", \"agents\": [\"*\"],\n"
    "   \"actions\": [\"payments:pay\"], \"audiences\": [\"payments\"], \"resources\": [\"**\"],\n"
    "   \"conditions\": {\"limits\": [{\"path\": \"amount\", \"type\": \"payment\", \"max\": "
    "50}]}},\n"
    "  {\"id\": \"self\", \"effect\": \"allow\", \"agents\": [\"*\"],\n"
    "   \"actions\": [\"ztb:introspect\"], \"audiences\": [\"**\"], \"resources\": [\"**\"]}\n"
    " ]}\n";

static struct zh_redis rd;
static struct zh_broker b;
static struct za_agent alice;
static unsigned g_jti;

static int setup(void **state)
{
    (void)state;
    srand((unsigned)time(NULL) ^ (unsigned)getpid());
    zh_redis_start(&rd);
    zh_broker_start_issuing(&b, rd.url, policy_doc);
    za_enroll(&b, &alice, "alice");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    za_free(&alice);
    assert_int_equal(zh_broker_stop(&b), 0);
    zh_redis_stop(&rd, 1);
    zh_rmtree(b.dir);
    return 0;
}

/* alice's private_key_jwt assertion with header typ and aud (JSON text). */
static void assertion(const char *typ, const char *aud, ztb_buf *out)
{
    char claims[1024];
    long long now = time(NULL);
    snprintf(claims, sizeof(claims),
             "{\"iss\":\"spiffe://ztb.local/agent/alice\",\"sub\":\"spiffe://ztb.local/agent/"
             "alice\",\"aud\":%s,\"iat\":%lld,\"exp\":%lld,\"jti\":\"conformance-%08u-%d\"}",
             aud, now, now + 30, ++g_jti, rand());
    ztb_jws_sign_opts o = {.typ = typ};
    ztb_buf_reset(out);
    assert_int_equal(ztb_jws_sign(alice.key, &o, claims, strlen(claims), out), ZTB_OK);
}

/* POST path with form + the assertion (typ, aud) and client_id (NULL:
 * none); returns the status, *r the answer. */
static long call(const char *path, const char *form, const char *typ, const char *aud,
                 const char *client_id, struct zh_resp *r)
{
    ztb_buf a;
    ztb_buf_init(&a, 4096);
    assertion(typ, aud, &a);
    char body[8192];
    snprintf(body, sizeof(body), "%s%sclient_assertion_type=%s&client_assertion=%s%s%s", form,
             form[0] ? "&" : "", ZA_ASSERTION_TYPE, ztb_buf_cstr(&a),
             client_id ? "&client_id=" : "", client_id ? client_id : "");
    ztb_buf_free(&a);
    return za_post_form(&b, path, body, r);
}

static const char *token_form =
    "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange"
    "&audience=payments&scope=payments:refund&resource=orders%2F1";

/* A JSON string naming url under the broker: "\"<b.url><path>\"". */
static const char *at(const char *path)
{
    static __thread char s[4][256];
    static __thread int i;
    i = (i + 1) % 4;
    snprintf(s[i], sizeof(s[i]), "\"%s%s\"", b.url, path);
    return s[i];
}

static void expect_status(const char *what, long got, long want, const struct zh_resp *r)
{
    if (got != want)
        fail_msg("%s: %ld (want %ld): %s", what, got, want, r->body);
}

static void test_metadata_tells_the_truth(void **state)
{
    (void)state;
    struct zh_resp r;
    assert_int_equal(zh_get(&b, "/.well-known/oauth-authorization-server", &r), 0);
    assert_int_equal(r.status, 200);
    json_t *j = za_json(&r);
    /* no authorization endpoint, so no response types */
    assert_null(json_object_get(j, "response_types_supported"));
    assert_null(json_object_get(j, "authorization_endpoint"));
    static const char *const per_endpoint[] = {"token_endpoint", "introspection_endpoint",
                                               "revocation_endpoint"};
    for (size_t i = 0; i < 3; i++) {
        char k[128];
        snprintf(k, sizeof(k), "%s_auth_methods_supported", per_endpoint[i]);
        json_t *m = json_object_get(j, k);
        assert_true(json_is_array(m));
        assert_string_equal(json_string_value(json_array_get(m, 0)), "private_key_jwt");
        /* plain HTTP: no certificate, so no tls_client_auth */
        for (size_t n = 0; n < json_array_size(m); n++)
            assert_string_not_equal(json_string_value(json_array_get(m, n)), "tls_client_auth");
        snprintf(k, sizeof(k), "%s_auth_signing_alg_values_supported", per_endpoint[i]);
        assert_string_equal(json_string_value(json_array_get(json_object_get(j, k), 0)), "ES256");
    }
    json_t *dp = json_object_get(j, "dpop_signing_alg_values_supported");
    assert_int_equal(json_array_size(dp), 1);
    assert_string_equal(json_string_value(json_array_get(dp, 0)), "ES256");
    /* the detail types: ztb's own and the one the policy reads limits from */
    json_t *ad = json_object_get(j, "authorization_details_types_supported");
    assert_int_equal(json_array_size(ad), 2);
    assert_string_equal(json_string_value(json_array_get(ad, 0)), "ztb_action");
    assert_string_equal(json_string_value(json_array_get(ad, 1)), "payment");
    assert_true(json_is_false(json_object_get(j, "tls_client_certificate_bound_access_tokens")));
    json_decref(j);
    zh_resp_free(&r);
}

static void test_assertion_audiences(void **state)
{
    (void)state;
    struct zh_resp r;
    char aud[600];
    /* the token endpoint: the issuer identifier, the endpoint, as string or array */
    expect_status("token, aud issuer", call("/v1/token", token_form, "JWT", at(""), NULL, &r), 200,
                  &r);
    zh_resp_free(&r);
    snprintf(aud, sizeof(aud), "[%s,%s]", at(""), at("/v1/token"));
    expect_status("token, aud [issuer, endpoint]",
                  call("/v1/token", token_form, "JWT", aud, NULL, &r), 200, &r);
    zh_resp_free(&r);
    expect_status("token, typed, aud issuer",
                  call("/v1/token", token_form, "client-authentication+jwt", at(""), NULL, &r), 200,
                  &r);
    zh_resp_free(&r);
    /* introspection and revocation, addressed as the endpoint called */
    char tok[4096], form[8192];
    struct zh_resp t;
    assert_int_equal(za_token(&b, &alice, "payments", "payments:refund", &t, tok, sizeof(tok)),
                     200);
    zh_resp_free(&t);
    snprintf(form, sizeof(form), "token=%s", tok);
    expect_status("introspect, aud endpoint",
                  call("/v1/introspect", form, "JWT", at("/v1/introspect"), NULL, &r), 200, &r);
    assert_non_null(strstr(r.body, "\"active\":true"));
    zh_resp_free(&r);
    expect_status("revoke, aud [issuer]",
                  call("/v1/revoke", form, "JWT", "[\"http://127.0.0.1:0\"]", NULL, &r), 401, &r);
    zh_resp_free(&r);
    snprintf(aud, sizeof(aud), "[%s]", at(""));
    expect_status("revoke, aud [issuer]", call("/v1/revoke", form, "JWT", aud, NULL, &r), 200, &r);
    zh_resp_free(&r);

    /* ATTACK: addressed to another server, alone or beside us */
    static const char *const other[] = {"\"https://as.other.example\"",
                                        "\"https://as.other.example/v1/token\""};
    for (size_t i = 0; i < 2; i++) {
        expect_status("token, aud another server",
                      call("/v1/token", token_form, "JWT", other[i], NULL, &r), 401, &r);
        assert_non_null(strstr(r.body, "invalid_client"));
        zh_resp_free(&r);
        snprintf(aud, sizeof(aud), "[%s,%s]", at(""), other[i]);
        expect_status("token, aud [us, another server]",
                      call("/v1/token", token_form, "JWT", aud, NULL, &r), 401, &r);
        zh_resp_free(&r);
        expect_status("introspect, aud another server",
                      call("/v1/introspect", form, "JWT", other[i], NULL, &r), 401, &r);
        zh_resp_free(&r);
    }
    /* another endpoint of ours than the one called, and the typed form's rule */
    expect_status("token, aud the revocation endpoint",
                  call("/v1/token", token_form, "JWT", at("/v1/revoke"), NULL, &r), 401, &r);
    zh_resp_free(&r);
    expect_status(
        "token, typed, aud the endpoint",
        call("/v1/token", token_form, "client-authentication+jwt", at("/v1/token"), NULL, &r), 401,
        &r);
    zh_resp_free(&r);
}

static void test_client_id(void **state)
{
    (void)state;
    struct zh_resp r;
    const char *me = "spiffe%3A%2F%2Fztb.local%2Fagent%2Falice";
    expect_status("token with client_id",
                  call("/v1/token", token_form, "JWT", at("/v1/token"), me, &r), 200, &r);
    zh_resp_free(&r);
    char tok[4096], form[8192];
    struct zh_resp t;
    assert_int_equal(za_token(&b, &alice, "payments", "payments:refund", &t, tok, sizeof(tok)),
                     200);
    zh_resp_free(&t);
    snprintf(form, sizeof(form), "token=%s", tok);
    expect_status("introspect with client_id",
                  call("/v1/introspect", form, "JWT", at("/v1/introspect"), me, &r), 200, &r);
    zh_resp_free(&r);
    /* ATTACK: a client_id naming another client than the assertion's */
    static const char *const bad[] = {"spiffe%3A%2F%2Fztb.local%2Fagent%2Fbob", "alice", ""};
    for (size_t i = 0; i < 3; i++) {
        expect_status("token, client_id of another",
                      call("/v1/token", token_form, "JWT", at("/v1/token"), bad[i], &r), 401, &r);
        assert_non_null(strstr(r.body, "client_id must be"));
        zh_resp_free(&r);
    }
}

/* A CSR made the way openssl makes one by default, with a subject name:
 * accepted, and the subject is not in the identity document. */
static void test_csr_subject_ignored(void **state)
{
    (void)state;
    char dir[256], cmd[2048];
    zh_tmpdir(dir, sizeof(dir));
    char *join = za_join_token(&b, "carol");
    snprintf(cmd, sizeof(cmd),
             "cd %s && openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
             "-keyout k.pem -subj /CN=root/O=admins "
             "-addext subjectAltName=URI:spiffe://ztb.local/agent/carol -out r.pem "
             ">/dev/null 2>&1",
             dir);
    assert_int_equal(system(cmd), 0);
    char path[300], csr[4096];
    snprintf(path, sizeof(path), "%s/r.pem", dir);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    size_t n = fread(csr, 1, sizeof(csr) - 1, f);
    fclose(f);
    csr[n] = '\0';
    json_t *body = json_pack("{s:s,s:s}", "join_token", join, "csr", csr);
    char *text = json_dumps(body, JSON_COMPACT);
    char url[128];
    snprintf(url, sizeof(url), "%s/v1/enroll", b.url);
    struct zh_resp r;
    assert_int_equal(zh_http("POST", url, NULL, "application/json", text, strlen(text), NULL, &r),
                     0);
    expect_status("enroll with a CSR subject", r.status, 201, &r);
    json_t *j = za_json(&r);
    const char *pem = json_string_value(json_object_get(j, "identity"));
    assert_non_null(pem);
    BIO *bio = BIO_new_mem_buf(pem, -1);
    X509 *x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
    assert_non_null(x);
    char subject[256];
    X509_NAME_oneline(X509_get_subject_name(x), subject, sizeof(subject));
    assert_null(strstr(subject, "root"));
    assert_null(strstr(subject, "admins"));
    X509_free(x);
    BIO_free(bio);
    json_decref(j);
    zh_resp_free(&r);
    free(text);
    json_decref(body);
    free(join);
    zh_rmtree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_metadata_tells_the_truth),
        cmocka_unit_test(test_assertion_audiences),
        cmocka_unit_test(test_client_id),
        cmocka_unit_test(test_csr_subject_ignored),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
