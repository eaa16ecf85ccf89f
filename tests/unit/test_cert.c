/*
 * test_cert.c - identity documents read one way for the CA and the SDK:
 * strict PEM or one DER certificate, at most ZTB_CERT_CHAIN_MAX of them;
 * the validity as Unix time; the one URI name, and nothing that merely
 * contains it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "pki/ca.h"
#include "pki/cert.h"
#include "pki/csr.h"
#include "pki/key.h"

#define T0     1700000000LL
#define ID_BOT "spiffe://ztb.local/agent/bot"

static ztb_ca *ca;
static ztb_key *key;
static ztb_buf leaf; /* the bot's identity document (PEM) */
static ztb_buf ca_pem;

static int setup(void **state)
{
    (void)state;
    ztb_ca_opts o = {.trust_domain = "ztb.local"};
    if (ztb_ca_create(&o, T0 - 10, &ca) != ZTB_OK || ztb_key_generate(&key) != ZTB_OK)
        return -1;
    ztb_buf csr;
    ztb_buf_init(&csr, 16384);
    ztb_buf_init(&leaf, 16384);
    ztb_buf_init(&ca_pem, 16384);
    int ok = ztb_csr_make(key, ID_BOT, &csr) == ZTB_OK &&
             ztb_ca_issue(ca, csr.data, csr.len, "bot", T0, 3600, &leaf) == ZTB_OK &&
             ztb_ca_cert_pem(ca, &ca_pem) == ZTB_OK;
    ztb_buf_free(&csr);
    return ok ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    ztb_buf_free(&leaf);
    ztb_buf_free(&ca_pem);
    ztb_key_free(key);
    ztb_ca_free(ca);
    return 0;
}

/* A self-signed certificate with this subjectAltName (OpenSSL config text). */
static X509 *self_signed(const char *san)
{
    X509 *x = X509_new();
    assert_non_null(x);
    assert_int_equal(X509_set_version(x, X509_VERSION_3), 1);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 7);
    ASN1_TIME_set(X509_getm_notBefore(x), (time_t)T0);
    ASN1_TIME_set(X509_getm_notAfter(x), (time_t)T0 + 60);
    assert_int_equal(X509_set_pubkey(x, ztb_key_evp(key)), 1);
    if (san != NULL) {
        X509V3_CTX ctx;
        X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
        X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &ctx, NID_subject_alt_name, san);
        assert_non_null(e);
        assert_int_equal(X509_add_ext(x, e, -1), 1);
        X509_EXTENSION_free(e);
    }
    assert_true(X509_sign(x, ztb_key_evp(key), EVP_sha256()) > 0);
    return x;
}

static void test_from_pem(void **state)
{
    (void)state;
    X509 *x = NULL;
    assert_int_equal(ztb_cert_from_pem(leaf.data, leaf.len, &x), ZTB_OK);
    assert_non_null(x);
    X509_free(x);

    /* exactly one certificate, nothing else around it */
    ztb_buf two;
    ztb_buf_init(&two, 65536);
    ztb_buf_append(&two, leaf.data, leaf.len);
    ztb_buf_append(&two, ca_pem.data, ca_pem.len);
    x = NULL;
    assert_int_equal(ztb_cert_from_pem(two.data, two.len, &x), ZTB_ERR_CERT);
    assert_null(x);
    ztb_buf_free(&two);

    ztb_buf b;
    ztb_buf_init(&b, 65536);
    ztb_buf_append_str(&b, "junk before\n"); /* OpenSSL's own PEM reader skips this */
    ztb_buf_append(&b, leaf.data, leaf.len);
    assert_int_equal(ztb_cert_from_pem(b.data, b.len, &x), ZTB_ERR_CERT);
    ztb_buf_truncate(&b, 0);
    ztb_buf_append(&b, leaf.data, leaf.len);
    ztb_buf_append_str(&b, "junk after\n");
    assert_int_equal(ztb_cert_from_pem(b.data, b.len, &x), ZTB_ERR_CERT);
    ztb_buf_truncate(&b, 0);
    assert_int_equal(ztb_key_private_pem(key, NULL, 0, &b), ZTB_OK); /* not a certificate */
    assert_int_equal(ztb_cert_from_pem(b.data, b.len, &x), ZTB_ERR_CERT);
    assert_int_equal(ztb_cert_from_pem("garbage", 7, &x), ZTB_ERR_CERT);
    assert_int_equal(ztb_cert_from_pem("", 0, &x), ZTB_ERR_CERT);
    assert_null(x);
    ztb_buf_free(&b);
}

static void test_read_chain(void **state)
{
    (void)state;
    ztb_buf doc;
    ztb_buf_init(&doc, 65536);
    ztb_buf_append(&doc, leaf.data, leaf.len);
    ztb_buf_append_str(&doc, "\n\n");
    ztb_buf_append(&doc, ca_pem.data, ca_pem.len);
    X509 *x = NULL, *want = NULL;
    STACK_OF(X509) *extra = sk_X509_new_null();
    assert_int_equal(ztb_cert_read_chain(doc.data, doc.len, &x, extra), ZTB_OK);
    assert_int_equal(ztb_cert_from_pem(leaf.data, leaf.len, &want), ZTB_OK);
    assert_int_equal(X509_cmp(x, want), 0); /* the leaf comes first */
    assert_int_equal(sk_X509_num(extra), 1);
    X509_free(x);
    sk_X509_pop_free(extra, X509_free);

    /* without a stack the others are only checked and freed */
    x = NULL;
    assert_int_equal(ztb_cert_read_chain(doc.data, doc.len, &x, NULL), ZTB_OK);
    X509_free(x);

    /* at most ZTB_CERT_CHAIN_MAX certificates */
    for (int i = 1; i < ZTB_CERT_CHAIN_MAX; i++)
        ztb_buf_append(&doc, ca_pem.data, ca_pem.len);
    x = NULL;
    assert_int_equal(ztb_cert_read_chain(doc.data, doc.len, &x, NULL), ZTB_ERR_CERT);
    assert_null(x);

    /* one DER certificate, every byte of it */
    unsigned char *der = NULL;
    int n = i2d_X509(want, &der);
    assert_true(n > 0);
    assert_int_equal(ztb_cert_read_chain(der, (size_t)n, &x, NULL), ZTB_OK);
    assert_int_equal(X509_cmp(x, want), 0);
    X509_free(x);
    x = NULL;
    unsigned char *longer = malloc((size_t)n + 1);
    memcpy(longer, der, (size_t)n);
    longer[n] = 0;
    assert_int_equal(ztb_cert_read_chain(longer, (size_t)n + 1, &x, NULL), ZTB_ERR_CERT);
    assert_int_equal(ztb_cert_read_chain(der, (size_t)n - 1, &x, NULL), ZTB_ERR_CERT);
    assert_null(x);
    free(longer);
    OPENSSL_free(der);

    /* a PEM block that is not a certificate, anywhere in the chain */
    ztb_buf_truncate(&doc, 0);
    ztb_buf_append(&doc, leaf.data, leaf.len);
    assert_int_equal(ztb_key_private_pem(key, NULL, 0, &doc), ZTB_OK);
    STACK_OF(X509) *ex2 = sk_X509_new_null();
    assert_int_equal(ztb_cert_read_chain(doc.data, doc.len, &x, ex2), ZTB_ERR_CERT);
    assert_null(x);
    sk_X509_pop_free(ex2, X509_free);
    assert_int_equal(ztb_cert_read_chain(NULL, 0, &x, NULL), ZTB_ERR_INVALID_ARG);
    X509_free(want);
    ztb_buf_free(&doc);
}

static void test_time(void **state)
{
    (void)state;
    X509 *x = NULL;
    assert_int_equal(ztb_cert_from_pem(leaf.data, leaf.len, &x), ZTB_OK);
    assert_int_equal(ztb_cert_time(X509_get0_notBefore(x)), T0);
    assert_int_equal(ztb_cert_time(X509_get0_notAfter(x)), T0 + 3600);
    assert_int_equal(ztb_cert_time(NULL), 0);
    ASN1_TIME *t = ASN1_TIME_new();
    assert_int_equal(ASN1_TIME_set_string(t, "20491231235959Z"), 1); /* GeneralizedTime */
    assert_int_equal(ztb_cert_time(t), 2524607999LL);
    ASN1_TIME_free(t);
    X509_free(x);
}

static void test_only_uri(void **state)
{
    (void)state;
    X509 *x = NULL;
    GENERAL_NAMES *names = NULL;
    assert_int_equal(ztb_cert_from_pem(leaf.data, leaf.len, &x), ZTB_OK);
    const ASN1_IA5STRING *u = ztb_cert_only_uri(x, &names);
    assert_non_null(u);
    assert_int_equal(ASN1_STRING_length(u), strlen(ID_BOT));
    GENERAL_NAMES_free(names);
    assert_true(ztb_cert_only_uri_is(x, ID_BOT));
    assert_false(ztb_cert_only_uri_is(x, "spiffe://ztb.local/agent/bo"));  /* a prefix */
    assert_false(ztb_cert_only_uri_is(x, ID_BOT "t"));                     /* longer */
    assert_false(ztb_cert_only_uri_is(x, "spiffe://ztb.local/agent/bob")); /* another */
    X509_free(x);

    /* not exactly one URI: none at all, a DNS name, two URIs, a URI and more */
    static const char *const sans[] = {NULL, "DNS:bot.ztb.local",
                                       "URI:" ID_BOT ",URI:spiffe://ztb.local/agent/eve",
                                       "URI:" ID_BOT ",DNS:bot"};
    for (size_t i = 0; i < sizeof(sans) / sizeof(sans[0]); i++) {
        x = self_signed(sans[i]);
        names = NULL;
        assert_null(ztb_cert_only_uri(x, &names));
        GENERAL_NAMES_free(names);
        assert_false(ztb_cert_only_uri_is(x, ID_BOT));
        X509_free(x);
    }
    x = self_signed("URI:" ID_BOT);
    assert_true(ztb_cert_only_uri_is(x, ID_BOT));
    X509_free(x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_from_pem),
        cmocka_unit_test(test_read_chain),
        cmocka_unit_test(test_time),
        cmocka_unit_test(test_only_uri),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
