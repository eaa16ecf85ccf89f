/*
 * test_csr.c - agent CSRs: what the SDK makes passes; each way a request can
 * be wrong (signature, key type, names, extensions, attributes, digest,
 * encoding) is crafted with OpenSSL directly and refused with its error.
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

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "pki/csr.h"

#define ID    "spiffe://example.org/agent/a1"
#define OTHER "spiffe://example.org/agent/a2"

struct req_spec {
    EVP_PKEY *key;
    const char *san;   /* OpenSSL config syntax, e.g. "URI:spiffe://..."; NULL: none */
    const char *cn;    /* subject CN; NULL: empty subject */
    const char *extra; /* another extension request, "nid:value" for basicConstraints */
    int challenge;     /* add a challengePassword attribute */
    const EVP_MD *md;  /* NULL: SHA-256 */
};

/* Make a CSR as an arbitrary client could; DER into out (returns length). */
static int make_req(const struct req_spec *s, unsigned char **out)
{
    X509_REQ *req = X509_REQ_new();
    assert_non_null(req);
    assert_int_equal(X509_REQ_set_version(req, X509_REQ_VERSION_1), 1);
    assert_int_equal(X509_REQ_set_pubkey(req, s->key), 1);
    if (s->cn != NULL)
        assert_int_equal(X509_NAME_add_entry_by_txt(X509_REQ_get_subject_name(req), "CN",
                                                    MBSTRING_UTF8, (const unsigned char *)s->cn, -1,
                                                    -1, 0),
                         1);
    STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
    if (s->san != NULL) {
        X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, NULL, NID_subject_alt_name, s->san);
        assert_non_null(e);
        sk_X509_EXTENSION_push(exts, e);
    }
    if (s->extra != NULL) {
        X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, NULL, NID_basic_constraints, s->extra);
        assert_non_null(e);
        sk_X509_EXTENSION_push(exts, e);
    }
    if (sk_X509_EXTENSION_num(exts) > 0)
        assert_int_equal(X509_REQ_add_extensions(req, exts), 1);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    if (s->challenge)
        assert_int_equal(X509_REQ_add1_attr_by_NID(req, NID_pkcs9_challengePassword, MBSTRING_ASC,
                                                   (const unsigned char *)"pw", -1),
                         1);
    assert_true(X509_REQ_sign(req, s->key, s->md ? s->md : EVP_sha256()) > 0);
    *out = NULL;
    int n = i2d_X509_REQ(req, out);
    assert_true(n > 0);
    X509_REQ_free(req);
    return n;
}

static unsigned char *find(unsigned char *hay, size_t n, const char *needle)
{
    size_t k = strlen(needle);
    for (size_t i = 0; i + k <= n; i++)
        if (memcmp(hay + i, needle, k) == 0)
            return hay + i;
    return NULL;
}

static ztb_err check_spec(const struct req_spec *s)
{
    unsigned char *der = NULL;
    int n = make_req(s, &der);
    ztb_err rv = ztb_csr_check(der, (size_t)n, ID, NULL);
    OPENSSL_free(der);
    return rv;
}

static EVP_PKEY *p256;

static int setup(void **state)
{
    (void)state;
    p256 = EVP_EC_gen("P-256");
    return p256 ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    EVP_PKEY_free(p256);
    return 0;
}

static void test_made_by_sdk_passes(void **state)
{
    (void)state;
    ztb_key *k = NULL, *pub = NULL;
    assert_int_equal(ztb_key_generate(&k), ZTB_OK);
    ztb_buf pem;
    ztb_buf_init(&pem, ZTB_CSR_MAX);
    assert_int_equal(ztb_csr_make(k, ID, &pem), ZTB_OK);
    assert_non_null(strstr(ztb_buf_cstr(&pem), "-----BEGIN CERTIFICATE REQUEST-----"));
    assert_int_equal(ztb_csr_check(pem.data, pem.len, ID, &pub), ZTB_OK);
    assert_true(ztb_key_same_public(k, pub));
    assert_false(ztb_key_has_private(pub));
    /* the same request is for a1 only */
    assert_int_equal(ztb_csr_check(pem.data, pem.len, OTHER, NULL), ZTB_ERR_SPIFFE_ID);
    /* a public key cannot make a request; nor can a bad ID be requested */
    assert_int_equal(ztb_csr_make(pub, ID, &pem), ZTB_ERR_KEY);
    assert_int_equal(ztb_csr_make(k, "spiffe://x/a/../b", &pem), ZTB_ERR_SPIFFE_ID);
    ztb_key_free(pub);
    ztb_key_free(k);
    ztb_buf_free(&pem);
}

static void test_crafted_ok_baseline(void **state)
{
    (void)state;
    /* the crafting helper itself makes acceptable requests */
    struct req_spec s = {.key = p256, .san = "URI:" ID};
    assert_int_equal(check_spec(&s), ZTB_OK);
}

static void test_rejects_bad_signature(void **state)
{
    (void)state;
    struct req_spec s = {.key = p256, .san = "URI:" ID};
    unsigned char *der = NULL;
    int n = make_req(&s, &der);
    der[n - 1] ^= 0x01; /* inside the signature's s integer: still DER */
    assert_int_equal(ztb_csr_check(der, (size_t)n, ID, NULL), ZTB_ERR_CSR);
    OPENSSL_free(der);
    /* or the body changed after signing (a byte of the SPIFFE ID) */
    n = make_req(&s, &der);
    unsigned char *hit = find(der, (size_t)n, "agent/a1");
    assert_non_null(hit);
    hit[7] = '2';
    assert_int_equal(ztb_csr_check(der, (size_t)n, OTHER, NULL), ZTB_ERR_CSR);
    OPENSSL_free(der);
}

static void test_rejects_other_key_types(void **state)
{
    (void)state;
    EVP_PKEY *rsa = EVP_RSA_gen(2048);
    EVP_PKEY *p384 = EVP_EC_gen("P-384");
    assert_non_null(rsa);
    assert_non_null(p384);
    struct req_spec s = {.key = rsa, .san = "URI:" ID};
    assert_int_equal(check_spec(&s), ZTB_ERR_KEY);
    s.key = p384;
    s.md = EVP_sha384();
    assert_int_equal(check_spec(&s), ZTB_ERR_KEY);
    EVP_PKEY_free(rsa);
    EVP_PKEY_free(p384);
}

static void test_rejects_extra_or_mismatched_names(void **state)
{
    (void)state;
    struct {
        const char *san, *cn;
    } cases[] = {
        {"URI:" OTHER, NULL},                      /* another agent */
        {"URI:spiffe://other.org/agent/a1", NULL}, /* another trust domain */
        {"URI:" ID ",DNS:a1.example.org", NULL},   /* an extra DNS name */
        {"URI:" ID ",URI:" OTHER, NULL},           /* two URIs */
        {"URI:" ID ",email:a@example.org", NULL},  /* an extra email */
        {"DNS:a1.example.org", NULL},              /* no URI */
        {NULL, NULL},                              /* no names at all */
        {"URI:" ID "/x", NULL},                    /* a longer ID */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct req_spec s = {.key = p256, .san = cases[i].san, .cn = cases[i].cn};
        assert_int_equal(check_spec(&s), ZTB_ERR_SPIFFE_ID);
    }
}

/* A subject name is ignored (docs/protocol.md), whatever it says: only the
 * SAN names the agent. */
static void test_subject_ignored(void **state)
{
    (void)state;
    const char *cns[] = {"a1", "spiffe://ztb.local/agent/admin", "CA"};
    for (size_t i = 0; i < sizeof(cns) / sizeof(cns[0]); i++) {
        struct req_spec s = {.key = p256, .san = "URI:" ID, .cn = cns[i]};
        assert_int_equal(check_spec(&s), ZTB_OK);
        struct req_spec t = {.key = p256, .san = "URI:" OTHER, .cn = cns[i]};
        assert_int_equal(check_spec(&t), ZTB_ERR_SPIFFE_ID);
    }
}

static void test_rejects_extra_extensions_and_attributes(void **state)
{
    (void)state;
    struct req_spec s = {.key = p256, .san = "URI:" ID, .extra = "critical,CA:TRUE"};
    assert_int_equal(check_spec(&s), ZTB_ERR_CSR);
    struct req_spec t = {.key = p256, .san = "URI:" ID, .challenge = 1};
    assert_int_equal(check_spec(&t), ZTB_ERR_CSR);
}

static void test_rejects_other_digest(void **state)
{
    (void)state;
    struct req_spec s = {.key = p256, .san = "URI:" ID, .md = EVP_sha384()};
    assert_int_equal(check_spec(&s), ZTB_ERR_CSR);
}

static void test_rejects_bad_encoding(void **state)
{
    (void)state;
    struct req_spec s = {.key = p256, .san = "URI:" ID};
    unsigned char *der = NULL;
    int n = make_req(&s, &der);
    unsigned char *buf = malloc((size_t)n + 1);
    memcpy(buf, der, (size_t)n);
    buf[n] = 0;
    assert_int_equal(ztb_csr_check(buf, (size_t)n + 1, ID, NULL), ZTB_ERR_CSR); /* trailing */
    assert_int_equal(ztb_csr_check(buf, (size_t)n - 1, ID, NULL), ZTB_ERR_CSR); /* truncated */
    assert_int_equal(ztb_csr_check(buf, (size_t)n, ID, NULL), ZTB_OK);
    free(buf);

    /* PEM: junk before, a second block, the wrong label */
    X509_REQ *req = NULL;
    const unsigned char *p = der;
    req = d2i_X509_REQ(NULL, &p, n);
    BIO *bio = BIO_new(BIO_s_mem());
    PEM_write_bio_X509_REQ(bio, req);
    char *pem = NULL;
    long plen = BIO_get_mem_data(bio, &pem);
    char big[8192];
    snprintf(big, sizeof(big), "junk\n%.*s", (int)plen, pem);
    assert_int_equal(ztb_csr_check(big, strlen(big), ID, NULL), ZTB_ERR_CSR);
    snprintf(big, sizeof(big), "%.*s%.*s", (int)plen, pem, (int)plen, pem);
    assert_int_equal(ztb_csr_check(big, strlen(big), ID, NULL), ZTB_ERR_CSR);
    snprintf(big, sizeof(big), "%.*s", (int)plen, pem);
    char *lbl = strstr(big, "CERTIFICATE REQUEST");
    memcpy(lbl, "CERTIFICATE_REQUEST", 19); /* BEGIN only: no longer one block */
    assert_int_equal(ztb_csr_check(big, strlen(big), ID, NULL), ZTB_ERR_CSR);
    snprintf(big, sizeof(big), "  \n%.*s\n\n", (int)plen, pem); /* whitespace is fine */
    assert_int_equal(ztb_csr_check(big, strlen(big), ID, NULL), ZTB_OK);
    BIO_free(bio);
    X509_REQ_free(req);
    OPENSSL_free(der);

    assert_int_equal(ztb_csr_check("garbage", 7, ID, NULL), ZTB_ERR_CSR);
    assert_int_equal(ztb_csr_check("", 0, ID, NULL), ZTB_ERR_CSR);
    static char huge[ZTB_CSR_MAX + 1];
    assert_int_equal(ztb_csr_check(huge, sizeof(huge), ID, NULL), ZTB_ERR_TOO_LARGE);
    /* the expected ID itself must be valid */
    assert_int_equal(ztb_csr_check("x", 1, "not an id", NULL), ZTB_ERR_SPIFFE_ID);
}

/* Interop: a request made by the openssl tool the usual way is accepted. */
static void test_openssl_req_interop(void **state)
{
    (void)state;
    char tmpl[] = "/tmp/ztb-csr-XXXXXX";
    char *d = mkdtemp(tmpl);
    assert_non_null(d);
    char cmd[2048];
    snprintf(cmd, sizeof(cmd),
             "cd %s && openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
             "-keyout k.pem -subj / -addext subjectAltName=URI:" ID " -out r.pem >/dev/null 2>&1",
             d);
    assert_int_equal(system(cmd), 0);
    char path[512];
    snprintf(path, sizeof(path), "%s/r.pem", d);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    char buf[ZTB_CSR_MAX];
    size_t n = fread(buf, 1, sizeof(buf), f);
    fclose(f);
    assert_int_equal(ztb_csr_check(buf, n, ID, NULL), ZTB_OK);
    assert_int_equal(ztb_csr_check(buf, n, OTHER, NULL), ZTB_ERR_SPIFFE_ID);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", d);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_made_by_sdk_passes),
        cmocka_unit_test(test_crafted_ok_baseline),
        cmocka_unit_test(test_rejects_bad_signature),
        cmocka_unit_test(test_rejects_other_key_types),
        cmocka_unit_test(test_rejects_extra_or_mismatched_names),
        cmocka_unit_test(test_subject_ignored),
        cmocka_unit_test(test_rejects_extra_extensions_and_attributes),
        cmocka_unit_test(test_rejects_other_digest),
        cmocka_unit_test(test_rejects_bad_encoding),
        cmocka_unit_test(test_openssl_req_interop),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
