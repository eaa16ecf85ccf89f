/*
 * test_broker_mtls.c - identities from TLS client certificates (mtls.c),
 * on real TLS connections to a real http_server in this process whose one
 * route reports what mtls_identity answers (broker_fixture.h
 * bf_serve_routes), with identity documents from a real agent CA:
 * no certificate, a good one (its name and x5t#S256), one the CA did not
 * issue, an expired one; and the per-connection cache: a verdict is reused
 * on a kept-alive connection for 60 s and then checked again, refusals too.
 * (Named test_broker_mtls: tests/integration/test_mtls.c is the end-to-end
 * test of the same feature.)
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <curl/curl.h>
#include <openssl/sha.h>

#include "broker/auth/mtls.h"
#include "broker_fixture.h"
#include "common/base64url.h"
#include "pki/csr.h"
#include "pki/pem.h"

/* The time the handler passes to mtls_identity (set by the test thread). */
static _Atomic int64_t g_now;

/* GET /who: {"rv": the ztb_err, "agent": ..., "x5t": ...}. */
static void who(struct http_req *req, struct http_resp *resp)
{
    struct mtls_identity id;
    memset(&id, 0, sizeof(id));
    ztb_err rv = mtls_identity(req, atomic_load(&g_now), &id);
    ztb_buf_reset(&resp->body);
    ztb_buf_printf(&resp->body, "{\"rv\":%d,\"agent\":\"%s\",\"x5t\":\"%s\"}", (int)rv,
                   rv == ZTB_OK ? id.agent : "", rv == ZTB_OK ? id.x5t_s256 : "");
    resp->status = 200;
}

static const struct http_route routes[] = {{"GET", "/who", who, "who"}};

static char g_crt[400], g_key[400], g_foreign_crt[400], g_foreign_key[400], g_x5t[64];
static int64_t g_issued; /* when the identity document was issued (10 minutes of life) */

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* An identity document for agent from the broker's CA: cert and key files. */
static void issue(const char *agent, int64_t now, int64_t ttl, const char *crt, const char *key)
{
    ztb_key *k;
    assert_int_equal(ztb_key_generate(&k), ZTB_OK);
    char spiffe[128];
    snprintf(spiffe, sizeof(spiffe), "spiffe://ztb.local/agent/%s", agent);
    ztb_buf csr, cert, pem;
    ztb_buf_init(&csr, 8192);
    ztb_buf_init(&cert, 16384);
    ztb_buf_init_secret(&pem, 8192);
    assert_int_equal(ztb_csr_make(k, spiffe, &csr), ZTB_OK);
    assert_int_equal(keys_ca_issue(csr.data, csr.len, agent, now, ttl, &cert), ZTB_OK);
    write_file(crt, ztb_buf_cstr(&cert));
    assert_int_equal(ztb_key_private_pem(k, NULL, 0, &pem), ZTB_OK);
    write_file(key, ztb_buf_cstr(&pem));
    /* the thumbprint mtls_identity must report: SHA-256 of the DER */
    ztb_pem_block b[1];
    size_t n = 0;
    assert_int_equal(ztb_pem_read_blocks(ztb_buf_cstr(&cert), cert.len, b, 1, &n), ZTB_OK);
    uint8_t d[SHA256_DIGEST_LENGTH];
    SHA256(b[0].der, (size_t)b[0].len, d);
    assert_int_equal(ztb_b64url_encode(d, sizeof(d), g_x5t, sizeof(g_x5t), NULL), ZTB_OK);
    ztb_pem_blocks_free(b, n);
    ztb_buf_free(&csr);
    ztb_buf_free(&cert);
    ztb_buf_free(&pem);
    ztb_key_free(k);
}

static int setup(void **state)
{
    (void)state;
    bf_setup_ca(NULL, 1);
    bf_serve_routes(1, routes, 1);
    g_issued = time(NULL);
    snprintf(g_crt, sizeof(g_crt), "%s/agent.crt", bf_dir);
    snprintf(g_key, sizeof(g_key), "%s/agent.key", bf_dir);
    issue("crm-sync", g_issued, 600, g_crt, g_key);
    /* a certificate with the right SPIFFE ID that our CA did not issue */
    snprintf(g_foreign_crt, sizeof(g_foreign_crt), "%s/foreign.crt", bf_dir);
    snprintf(g_foreign_key, sizeof(g_foreign_key), "%s/foreign.key", bf_dir);
    char cmd[1200];
    snprintf(cmd, sizeof(cmd),
             "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 "
             "-subj /CN=intruder -addext subjectAltName=URI:spiffe://ztb.local/agent/crm-sync "
             "-keyout %s -out %s 2>/dev/null",
             g_foreign_key, g_foreign_crt);
    assert_int_equal(system(cmd), 0);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    bf_unserve();
    bf_teardown();
    return 0;
}

struct answer {
    int rv;
    char agent[64];
    char x5t[64];
};

static size_t sink(char *p, size_t size, size_t n, void *arg)
{
    ztb_buf *b = arg;
    ztb_buf_append(b, p, size * n);
    return size * n;
}

/* GET /who on h (a curl handle: reusing it keeps the connection) at now. */
static void ask(CURL *h, int64_t now, struct answer *a)
{
    atomic_store(&g_now, now);
    char url[128];
    snprintf(url, sizeof(url), "%s/who", bf_broker.url);
    ztb_buf body;
    ztb_buf_init(&body, 4096);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, sink);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &body);
    assert_int_equal(curl_easy_perform(h), CURLE_OK);
    json_error_t e;
    json_t *j = json_loads(ztb_buf_cstr(&body), 0, &e);
    assert_non_null(j);
    a->rv = (int)json_integer_value(json_object_get(j, "rv"));
    snprintf(a->agent, sizeof(a->agent), "%s", json_string_value(json_object_get(j, "agent")));
    snprintf(a->x5t, sizeof(a->x5t), "%s", json_string_value(json_object_get(j, "x5t")));
    json_decref(j);
    ztb_buf_free(&body);
}

/* A handle that trusts the test server and presents crt/key (NULL: none). */
static CURL *client(const char *crt, const char *key)
{
    CURL *h = curl_easy_init();
    assert_non_null(h);
    char ca[400];
    snprintf(ca, sizeof(ca), "%s/server.crt", bf_dir);
    curl_easy_setopt(h, CURLOPT_CAINFO, ca);
    if (crt != NULL) {
        curl_easy_setopt(h, CURLOPT_SSLCERT, crt);
        curl_easy_setopt(h, CURLOPT_SSLKEY, key);
    }
    return h;
}

static void test_no_certificate(void **state)
{
    (void)state;
    CURL *h = client(NULL, NULL);
    struct answer a;
    ask(h, time(NULL), &a);
    assert_int_equal(a.rv, ZTB_ERR_NOT_FOUND);
    curl_easy_cleanup(h);
}

static void test_identity_document(void **state)
{
    (void)state;
    CURL *h = client(g_crt, g_key);
    struct answer a;
    ask(h, g_issued + 1, &a);
    assert_int_equal(a.rv, ZTB_OK);
    assert_string_equal(a.agent, "crm-sync");
    assert_string_equal(a.x5t, g_x5t);
    curl_easy_cleanup(h);
}

static void test_foreign_certificate(void **state)
{
    (void)state;
    CURL *h = client(g_foreign_crt, g_foreign_key);
    struct answer a;
    ask(h, time(NULL), &a);
    assert_int_not_equal(a.rv, ZTB_OK);
    assert_int_not_equal(a.rv, ZTB_ERR_NOT_FOUND);
    assert_true(a.rv >= 400 && a.rv < 500); /* a certificate-range refusal */
    assert_string_equal(a.agent, "");
    /* remembered on the connection: the same refusal again */
    int first = a.rv;
    ask(h, time(NULL) + 1, &a);
    assert_int_equal(a.rv, first);
    curl_easy_cleanup(h);
}

/*
 * ATTACK (an expired certificate kept alive): a verdict is reused on a
 * kept-alive connection for up to 60 s, but never past the certificate's
 * notAfter: a document verified a few seconds before it expires is refused
 * on the same connection once it has expired, as on a new one.
 */
static void test_connection_cache(void **state)
{
    (void)state;
    int64_t expiry = g_issued + 600; /* the document's notAfter */
    CURL *h = client(g_crt, g_key);
    struct answer a;
    ask(h, expiry - 10, &a);
    assert_int_equal(a.rv, ZTB_OK);
    ask(h, expiry - 5, &a); /* still valid */
    assert_int_equal(a.rv, ZTB_OK);
    assert_string_equal(a.agent, "crm-sync");
    /* expired: refused on this connection, within 60 s of its check */
    ask(h, expiry + 1, &a);
    assert_true(a.rv >= 400 && a.rv < 500);
    assert_string_equal(a.agent, "");
    /* as on a new connection */
    CURL *h2 = client(g_crt, g_key);
    ask(h2, expiry + 1, &a);
    assert_true(a.rv >= 400 && a.rv < 500);
    assert_string_equal(a.agent, "");
    curl_easy_cleanup(h2);
    /* and the refusal is remembered */
    ask(h, expiry + 30, &a);
    assert_true(a.rv >= 400 && a.rv < 500);
    curl_easy_cleanup(h);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_certificate),
        cmocka_unit_test(test_identity_document),
        cmocka_unit_test(test_foreign_certificate),
        cmocka_unit_test(test_connection_cache),
    };
    int rc = cmocka_run_group_tests(tests, setup, teardown);
    curl_global_cleanup();
    return rc;
}
