/*
 * test_mtls.c - agents authenticated by their identity document as TLS
 * client certificate (RFC 8705), against the real broker serving HTTPS.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>
#include <curl/curl.h>
#include <jansson.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include "common/base64url.h"
#include "harness.h"
#include "pki/csr.h"
#include "pki/jwk.h"
#include "pki/jws.h"

static const char *policy_doc =
    "{\"version\": 1, \"trust_domain\": \"ztb.local\",\n"
    " \"settings\": {\"max_ttl\": 300, \"default_ttl\": 60, \"rate_limits\": {\n"
    "   \"per_agent\": {\"rate\": 600, \"burst\": 100, \"period\": 60},\n"
    "   \"per_action\": {\"rate\": 600, \"burst\": 100, \"period\": 60}}},\n"
    " \"rules\": [\n"
    "  {\"id\": \"crm-read\", \"effect\": \"allow\", \"agents\": [\"crm-sync\"],\n"
    "   \"actions\": [\"crm:read\"], \"audiences\": [\"crm\"], \"resources\": [\"**\"]},\n"
    "  {\"id\": \"crm-write-bound\", \"effect\": \"allow\", \"agents\": [\"crm-sync\"],\n"
    "   \"actions\": [\"crm:write\"], \"audiences\": [\"crm\"], \"resources\": [\"**\"],\n"
    "   \"obligations\": {\"binding\": \"mtls\"}}]}\n";

#define FORM_READ                                                                                  \
    "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange&audience=crm&scope=crm"  \
    "%3Aread"
#define FORM_WRITE                                                                                 \
    "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange&audience=crm&scope=crm"  \
    "%3Awrite"

static struct zh_broker b;
static char dir[256], srv_crt[300], srv_key[300], id_crt[300], id_key[300], bad_crt[300],
    bad_key[300];
static char cert_x5t[64];

static void sh(const char *cmd)
{
    if (system(cmd) != 0)
        fail_msg("command failed: %s", cmd);
}

static void write_file(const char *path, const char *text, mode_t mode)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    chmod(path, mode);
}

static long post(const char *path, const char *form, struct zh_resp *r)
{
    char url[128];
    snprintf(url, sizeof(url), "%s%s", b.url, path);
    return zh_http("POST", url, NULL, "application/x-www-form-urlencoded", form, strlen(form), NULL,
                   r) == 0
               ? r->status
               : 0;
}

static int setup(void **state)
{
    (void)state;
    zh_tmpdir(dir, sizeof(dir));
    zh_tls_server_cert(dir, srv_crt, srv_key);
    snprintf(bad_crt, sizeof(bad_crt), "%s/foreign.crt", dir);
    snprintf(bad_key, sizeof(bad_key), "%s/foreign.key", dir);
    char cmd[1200];
    snprintf(cmd, sizeof(cmd),
             "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 "
             "-subj /CN=intruder -addext subjectAltName=URI:spiffe://ztb.local/agent/crm-sync "
             "-keyout %s -out %s 2>/dev/null",
             bad_key, bad_crt);
    sh(cmd);
    struct zh_broker_opts o = {
        .with_keys = 1, .policy = policy_doc, .tls_cert = srv_crt, .tls_key = srv_key};
    zh_broker_start(&b, &o);
    assert_int_equal(strncmp(b.url, "https://", 8), 0);

    /* enroll crm-sync over HTTPS */
    struct zh_resp r;
    assert_int_equal(zh_admin(&b, "POST", "/v1/agents", "{\"name\":\"crm-sync\"}", &r), 0);
    json_error_t e;
    json_t *j = json_loads(r.body, 0, &e);
    char join[64];
    snprintf(join, sizeof(join), "%s", json_string_value(json_object_get(j, "join_token")));
    json_decref(j);
    zh_resp_free(&r);
    ztb_key *k;
    assert_int_equal(ztb_key_generate(&k), ZTB_OK);
    ztb_buf csr, pem;
    ztb_buf_init(&csr, 8192);
    ztb_buf_init(&pem, 8192);
    assert_int_equal(ztb_csr_make(k, "spiffe://ztb.local/agent/crm-sync", &csr), ZTB_OK);
    json_t *req = json_pack("{s:s,s:s}", "join_token", join, "csr", ztb_buf_cstr(&csr));
    char *text = json_dumps(req, 0);
    char url[128];
    snprintf(url, sizeof(url), "%s/v1/enroll", b.url);
    assert_int_equal(zh_http("POST", url, NULL, "application/json", text, strlen(text), NULL, &r),
                     0);
    if (r.status != 201)
        fail_msg("enroll: %ld %s", r.status, r.body);
    j = json_loads(r.body, 0, &e);
    const char *identity = json_string_value(json_object_get(j, "identity"));
    snprintf(id_crt, sizeof(id_crt), "%s/identity.crt", dir);
    snprintf(id_key, sizeof(id_key), "%s/identity.key", dir);
    write_file(id_crt, identity, 0644);
    assert_int_equal(ztb_key_private_pem(k, NULL, 0, &pem), ZTB_OK);
    write_file(id_key, ztb_buf_cstr(&pem), 0600);
    /* the thumbprint a bound token must carry */
    BIO *bio = BIO_new_mem_buf(identity, -1);
    X509 *x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
    unsigned char *der = NULL;
    int dl = i2d_X509(x, &der);
    unsigned char d[32];
    SHA256(der, (size_t)dl, d);
    ztb_b64url_encode(d, 32, cert_x5t, sizeof(cert_x5t), NULL);
    OPENSSL_free(der);
    X509_free(x);
    BIO_free(bio);
    json_decref(j);
    json_decref(req);
    free(text);
    zh_resp_free(&r);
    ztb_buf_free(&csr);
    ztb_buf_free(&pem);
    ztb_key_free(k);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    zh_tls_client(NULL, NULL);
    assert_int_equal(zh_broker_stop(&b), 0);
    zh_rmtree(b.dir);
    zh_rmtree(dir);
    return 0;
}

static json_t *claims_of(const char *tok)
{
    const char *p = strchr(tok, '.') + 1;
    const char *q = strchr(p, '.');
    char json[4096];
    size_t n;
    assert_int_equal(ztb_b64url_decode(p, (size_t)(q - p), json, sizeof(json) - 1, &n), ZTB_OK);
    json_error_t e;
    return json_loadb(json, n, 0, &e);
}

static void test_mtls_happy_path_and_binding(void **state)
{
    (void)state;
    zh_tls_client(id_crt, id_key);
    struct zh_resp r;
    assert_int_equal(post("/v1/token", FORM_READ, &r), 200);
    json_error_t e;
    json_t *j = json_loads(r.body, 0, &e);
    json_t *c = claims_of(json_string_value(json_object_get(j, "access_token")));
    assert_string_equal(json_string_value(json_object_get(c, "sub")),
                        "spiffe://ztb.local/agent/crm-sync");
    assert_null(json_object_get(c, "cnf")); /* this rule asks for no binding */
    json_decref(c);
    json_decref(j);
    zh_resp_free(&r);

    assert_int_equal(post("/v1/token", FORM_WRITE, &r), 200);
    j = json_loads(r.body, 0, &e);
    c = claims_of(json_string_value(json_object_get(j, "access_token")));
    assert_string_equal(json_string_value(json_object_get(json_object_get(c, "cnf"), "x5t#S256")),
                        cert_x5t);
    json_decref(c);
    json_decref(j);
    zh_resp_free(&r);
    zh_tls_client(NULL, NULL);
}

/* Many requests on one kept-alive connection: one verification, all served. */
static void test_keepalive_connection(void **state)
{
    (void)state;
    CURL *h = curl_easy_init();
    char url[128];
    snprintf(url, sizeof(url), "%s/v1/token", b.url);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_CAINFO, srv_crt);
    curl_easy_setopt(h, CURLOPT_SSLCERT, id_crt);
    curl_easy_setopt(h, CURLOPT_SSLKEY, id_key);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, FORM_READ);
    FILE *sink = fopen("/dev/null", "w");
    curl_easy_setopt(h, CURLOPT_WRITEDATA, sink);
    for (int i = 0; i < 20; i++) {
        assert_int_equal(curl_easy_perform(h), CURLE_OK);
        long code;
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
        assert_int_equal(code, 200);
    }
    long conns = 0;
    curl_easy_getinfo(h, CURLINFO_NUM_CONNECTS, &conns);
    assert_int_equal(conns, 0); /* the last request reused the connection */
    fclose(sink);
    curl_easy_cleanup(h);
}

static void test_without_or_with_foreign_certificate(void **state)
{
    (void)state;
    struct zh_resp r;
    zh_tls_client(NULL, NULL);
    assert_int_equal(post("/v1/token", FORM_READ, &r), 401);
    assert_non_null(strstr(r.body, "invalid_client"));
    zh_resp_free(&r);
    /* a self-made certificate naming the same SPIFFE ID: never accepted */
    zh_tls_client(bad_crt, bad_key);
    long s = post("/v1/token", FORM_READ, &r);
    assert_true(s == 0 || s == 401); /* refused in the handshake or by the broker */
    zh_resp_free(&r);
    zh_tls_client(NULL, NULL);
    /* plain HTTP to the HTTPS port gets nowhere */
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%u/healthz", b.port);
    s = zh_http("GET", url, NULL, NULL, NULL, 0, NULL, &r) == 0 ? r.status : 0;
    assert_int_not_equal(s, 200);
    zh_resp_free(&r);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mtls_happy_path_and_binding),
        cmocka_unit_test(test_keepalive_connection),
        cmocka_unit_test(test_without_or_with_foreign_certificate),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
