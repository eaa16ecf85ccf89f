/*
 * test_ca.c - the agent CA: root and intermediate creation, files, issuing
 * identity documents (every field checked on the certificate produced),
 * refusals, and verification of identity documents, including leaves
 * crafted with the CA's own key that break one rule each. Interop: `openssl
 * verify -purpose sslclient` accepts what the CA issues.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "pki_test.h"

#include "pki/ca.h"
#include "pki/csr.h"
#include "pki/es256.h"
#include "pki/key.h"

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wformat-truncation"
#endif

#define T0 1700000000LL
#define TD "example.org"

struct fx {
    ztb_ca *ca;
    char *dir;     /* the CA saved here (plain) */
    EVP_PKEY *cak; /* its key, read back from the file, for crafting */
    X509 *cac;     /* its certificate */
    ztb_key *agent;
    ztb_buf csr; /* agent a1's CSR */
};

static X509 *x509_from_buf(const ztb_buf *b)
{
    BIO *bio = BIO_new_mem_buf(b->data, (int)b->len);
    X509 *x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
    BIO_free(bio);
    return x;
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    ztb_ca_opts o = {.trust_domain = TD};
    assert_int_equal(ztb_ca_create(&o, T0, &f->ca), ZTB_OK);
    f->dir = pkt_tmpdir();
    assert_int_equal(ztb_ca_save(f->ca, f->dir, NULL, 0), ZTB_OK);
    char p[1024];
    snprintf(p, sizeof(p), "%s/ca/ca.key.pem", f->dir);
    ztb_key *k = NULL;
    assert_int_equal(ztb_key_load_file(p, NULL, 0, &k), ZTB_OK);
    f->cak = ztb_key_evp(k);
    EVP_PKEY_up_ref(f->cak);
    ztb_key_free(k);
    ztb_buf cert;
    ztb_buf_init(&cert, 8192);
    assert_int_equal(ztb_ca_cert_pem(f->ca, &cert), ZTB_OK);
    f->cac = x509_from_buf(&cert);
    assert_non_null(f->cac);
    ztb_buf_free(&cert);
    assert_int_equal(ztb_key_generate(&f->agent), ZTB_OK);
    ztb_buf_init(&f->csr, ZTB_CSR_MAX);
    assert_int_equal(ztb_csr_make(f->agent, "spiffe://" TD "/agent/a1", &f->csr), ZTB_OK);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    ztb_ca_free(f->ca);
    pkt_rmdir(f->dir);
    EVP_PKEY_free(f->cak);
    X509_free(f->cac);
    ztb_key_free(f->agent);
    ztb_buf_free(&f->csr);
    free(f);
    return 0;
}

static ztb_err issue(struct fx *f, int64_t now, ztb_buf *out)
{
    return ztb_ca_issue(f->ca, f->csr.data, f->csr.len, "a1", now, 0, out);
}

static ztb_err verify(struct fx *f, const ztb_buf *doc, int64_t now, char *name)
{
    return ztb_ca_verify_identity(f->ca, doc->data, doc->len, now, name, ZTB_AGENT_NAME_MAX + 1);
}

static void test_root_ca_facts(void **state)
{
    struct fx *f = *state;
    ztb_ca_info info;
    assert_int_equal(ztb_ca_get_info(f->ca, &info), ZTB_OK);
    assert_true(info.is_root);
    assert_string_equal(info.trust_domain, TD);
    assert_string_equal(ztb_ca_trust_domain(f->ca), TD);
    assert_non_null(strstr(info.subject, "CN=ztb agent CA"));
    assert_string_equal(info.subject, info.issuer);
    assert_int_equal(info.not_before, T0);
    assert_int_equal(info.not_after, T0 + ZTB_CA_DEFAULT_ROOT_VALIDITY_S);
    assert_int_equal(strlen(info.fingerprint), 95);
    /* CA:TRUE with pathlen 0, keyCertSign, the trust domain's SPIFFE ID */
    assert_int_equal(X509_check_ca(f->cac), 1);
    assert_int_equal(X509_get_pathlen(f->cac), 0);
    assert_true(X509_get_key_usage(f->cac) & KU_KEY_CERT_SIGN);
    GENERAL_NAMES *gn = X509_get_ext_d2i(f->cac, NID_subject_alt_name, NULL, NULL);
    assert_non_null(gn);
    int type;
    ASN1_IA5STRING *uri = GENERAL_NAME_get0_value(sk_GENERAL_NAME_value(gn, 0), &type);
    assert_int_equal(type, GEN_URI);
    assert_string_equal((const char *)ASN1_STRING_get0_data(uri), "spiffe://" TD);
    GENERAL_NAMES_free(gn);
}

/* The identity document: every property the issue asks for, checked. */
static void test_issue_identity_document(void **state)
{
    struct fx *f = *state;
    ztb_buf doc;
    ztb_buf_init(&doc, 16384);
    assert_int_equal(issue(f, T0 + 100, &doc), ZTB_OK);
    X509 *x = x509_from_buf(&doc);
    assert_non_null(x);
    assert_int_equal(X509_get_version(x), X509_VERSION_3);
    assert_int_equal(X509_NAME_entry_count(X509_get_subject_name(x)), 0);
    assert_int_equal(X509_NAME_cmp(X509_get_issuer_name(x), X509_get_subject_name(f->cac)), 0);
    /* SAN: critical, exactly one URI, the agent's SPIFFE ID */
    int crit = -1;
    GENERAL_NAMES *gn = X509_get_ext_d2i(x, NID_subject_alt_name, &crit, NULL);
    assert_non_null(gn);
    assert_int_equal(crit, 1);
    assert_int_equal(sk_GENERAL_NAME_num(gn), 1);
    int type;
    ASN1_IA5STRING *uri = GENERAL_NAME_get0_value(sk_GENERAL_NAME_value(gn, 0), &type);
    assert_int_equal(type, GEN_URI);
    assert_string_equal((const char *)ASN1_STRING_get0_data(uri), "spiffe://" TD "/agent/a1");
    GENERAL_NAMES_free(gn);
    /* and no other extension than the five expected */
    assert_int_equal(X509_get_ext_count(x), 6);
    assert_int_equal(X509_check_ca(x), 0);
    assert_int_equal(X509_get_key_usage(x), KU_DIGITAL_SIGNATURE);
    assert_int_equal(X509_get_extended_key_usage(x), XKU_SSL_CLIENT);
    /* one hour, from now */
    struct tm tm;
    assert_int_equal(ASN1_TIME_to_tm(X509_get0_notBefore(x), &tm), 1);
    assert_int_equal(timegm(&tm), T0 + 100);
    assert_int_equal(ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm), 1);
    assert_int_equal(timegm(&tm), T0 + 100 + 3600);
    /* the agent's own key, ecdsa-with-SHA256 */
    assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(x), ztb_key_evp(f->agent)), 1);
    assert_int_equal(X509_get_signature_nid(x), NID_ecdsa_with_SHA256);
    /* a 128-bit random serial: positive, up to 16 significant bytes, different each time */
    BIGNUM *s1 = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
    assert_false(BN_is_negative(s1));
    assert_true(BN_num_bytes(s1) <= 16 && BN_num_bytes(s1) >= 8);
    ztb_buf doc2;
    ztb_buf_init(&doc2, 16384);
    assert_int_equal(issue(f, T0 + 100, &doc2), ZTB_OK);
    X509 *y = x509_from_buf(&doc2);
    BIGNUM *s2 = ASN1_INTEGER_to_BN(X509_get0_serialNumber(y), NULL);
    assert_int_not_equal(BN_cmp(s1, s2), 0);
    BN_free(s1);
    BN_free(s2);
    X509_free(y);
    X509_free(x);
    ztb_buf_free(&doc);
    ztb_buf_free(&doc2);
}

static void test_issue_lifetimes(void **state)
{
    struct fx *f = *state;
    ztb_buf doc;
    ztb_buf_init(&doc, 16384);
    assert_int_equal(ztb_ca_issue(f->ca, f->csr.data, f->csr.len, "a1", T0, 600, &doc), ZTB_OK);
    X509 *x = x509_from_buf(&doc);
    struct tm tm;
    ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm);
    assert_int_equal(timegm(&tm), T0 + 600);
    X509_free(x);
    ztb_buf_reset(&doc);
    /* never past the CA's own end */
    int64_t end = T0 + ZTB_CA_DEFAULT_ROOT_VALIDITY_S;
    assert_int_equal(ztb_ca_issue(f->ca, f->csr.data, f->csr.len, "a1", end - 10, 0, &doc), ZTB_OK);
    x = x509_from_buf(&doc);
    ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm);
    assert_int_equal(timegm(&tm), end);
    X509_free(x);
    ztb_buf_reset(&doc);
    /* refusals: too long a life, a CA not valid at now */
    assert_int_equal(
        ztb_ca_issue(f->ca, f->csr.data, f->csr.len, "a1", T0, ZTB_CA_MAX_LEAF_TTL_S + 1, &doc),
        ZTB_ERR_INVALID_ARG);
    assert_int_equal(ztb_ca_issue(f->ca, f->csr.data, f->csr.len, "a1", T0 - 1, 0, &doc),
                     ZTB_ERR_STATE);
    assert_int_equal(ztb_ca_issue(f->ca, f->csr.data, f->csr.len, "a1", end, 0, &doc),
                     ZTB_ERR_STATE);
    assert_int_equal(doc.len, 0);
    ztb_buf_free(&doc);
}

static void test_issue_refuses_bad_csr(void **state)
{
    struct fx *f = *state;
    ztb_buf doc;
    ztb_buf_init(&doc, 16384);
    /* a CSR for a1 presented for a2 */
    assert_int_equal(ztb_ca_issue(f->ca, f->csr.data, f->csr.len, "a2", T0, 0, &doc),
                     ZTB_ERR_SPIFFE_ID);
    /* a name that is not one path segment */
    assert_int_equal(ztb_ca_issue(f->ca, f->csr.data, f->csr.len, "a1/x", T0, 0, &doc),
                     ZTB_ERR_SPIFFE_ID);
    /* a CSR with a broken signature */
    ztb_buf bad;
    ztb_buf_init(&bad, ZTB_CSR_MAX);
    ztb_buf_append(&bad, f->csr.data, f->csr.len);
    char *sigpart = strstr((char *)bad.data, "-----END") - 6; /* inside the last base64 line */
    *sigpart = *sigpart == 'A' ? 'B' : 'A';
    assert_int_equal(ztb_ca_issue(f->ca, bad.data, bad.len, "a1", T0, 0, &doc), ZTB_ERR_CSR);
    ztb_buf_free(&bad);
    /* an RSA key */
    EVP_PKEY *rsa = EVP_RSA_gen(2048);
    X509_REQ *req = X509_REQ_new();
    X509_REQ_set_version(req, X509_REQ_VERSION_1);
    X509_REQ_set_pubkey(req, rsa);
    STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
    sk_X509_EXTENSION_push(exts, X509V3_EXT_conf_nid(NULL, NULL, NID_subject_alt_name,
                                                     "URI:spiffe://" TD "/agent/a1"));
    X509_REQ_add_extensions(req, exts);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    X509_REQ_sign(req, rsa, EVP_sha256());
    unsigned char *der = NULL;
    int n = i2d_X509_REQ(req, &der);
    assert_int_equal(ztb_ca_issue(f->ca, der, (size_t)n, "a1", T0, 0, &doc), ZTB_ERR_KEY);
    OPENSSL_free(der);
    X509_REQ_free(req);
    EVP_PKEY_free(rsa);
    assert_int_equal(doc.len, 0);
    ztb_buf_free(&doc);
}

/* A CSR for a1 signed by the agent's key whose SubjectPublicKeyInfo is
 * encoded as encoding ("named_curve" or "explicit") with the point in
 * format ("uncompressed", "compressed" or "hybrid"); DER, caller frees. */
static unsigned char *csr_encoded(struct fx *f, const char *encoding, const char *format, int *n)
{
    EVP_PKEY *k = EVP_PKEY_dup(ztb_key_evp(f->agent));
    assert_non_null(k);
    assert_int_equal(EVP_PKEY_set_utf8_string_param(k, OSSL_PKEY_PARAM_EC_ENCODING, encoding), 1);
    assert_int_equal(
        EVP_PKEY_set_utf8_string_param(k, OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT, format), 1);
    X509_REQ *req = X509_REQ_new();
    X509_REQ_set_version(req, X509_REQ_VERSION_1);
    assert_int_equal(X509_REQ_set_pubkey(req, k), 1);
    STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
    sk_X509_EXTENSION_push(exts, X509V3_EXT_conf_nid(NULL, NULL, NID_subject_alt_name,
                                                     "URI:spiffe://" TD "/agent/a1"));
    X509_REQ_add_extensions(req, exts);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    assert_true(X509_REQ_sign(req, k, EVP_sha256()) > 0);
    unsigned char *der = NULL;
    *n = i2d_X509_REQ(req, &der);
    assert_true(*n > 0);
    X509_REQ_free(req);
    EVP_PKEY_free(k);
    return der;
}

/*
 * ATTACK (the CSR's key encoding copied into the certificate): a P-256 key
 * sent with explicit curve parameters, or its point compressed or in the
 * hybrid form, is still the agent's P-256 key, but RFC 5480 allows only a
 * named curve in a certificate (2.1.1) and no hybrid point (2.2): the CA
 * must certify the key in its one canonical form (named curve, uncompressed
 * point), never the bytes the requester chose, so every relying party reads
 * the same key and the document verifies.
 */
static void test_issue_canonical_public_key(void **state)
{
    struct fx *f = *state;
    unsigned char *want = NULL;
    int wantlen = i2d_PUBKEY(ztb_key_evp(f->agent), &want);
    assert_true(wantlen > 0);
    static const char *const forms[][2] = {
        {"explicit", "uncompressed"},
        {"named_curve", "compressed"},
        {"named_curve", "hybrid"},
        {"explicit", "compressed"},
    };
    for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
        int n = 0;
        unsigned char *csr = csr_encoded(f, forms[i][0], forms[i][1], &n);
        ztb_buf doc;
        ztb_buf_init(&doc, 16384);
        assert_int_equal(ztb_ca_issue(f->ca, csr, (size_t)n, "a1", T0 + 100, 0, &doc), ZTB_OK);
        X509 *x = x509_from_buf(&doc);
        assert_non_null(x);
        unsigned char *got = NULL;
        int gotlen = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), &got);
        if (gotlen != wantlen || memcmp(got, want, (size_t)wantlen) != 0)
            fail_msg("%s/%s: the certificate carries the CSR's key encoding", forms[i][0],
                     forms[i][1]);
        char name[ZTB_AGENT_NAME_MAX + 1];
        assert_int_equal(verify(f, &doc, T0 + 100, name), ZTB_OK);
        assert_string_equal(name, "a1");
        OPENSSL_free(got);
        X509_free(x);
        OPENSSL_free(csr);
        ztb_buf_free(&doc);
    }
    OPENSSL_free(want);
}

static void test_verify_identity(void **state)
{
    struct fx *f = *state;
    ztb_buf doc;
    ztb_buf_init(&doc, 16384);
    assert_int_equal(issue(f, T0 + 100, &doc), ZTB_OK);
    char name[ZTB_AGENT_NAME_MAX + 1];
    assert_int_equal(verify(f, &doc, T0 + 100, name), ZTB_OK);
    assert_string_equal(name, "a1");
    assert_int_equal(verify(f, &doc, T0 + 100 + 3599, name), ZTB_OK);
    /* expired, not yet valid */
    assert_int_equal(verify(f, &doc, T0 + 100 + 3601, name), ZTB_ERR_CERT_CHAIN);
    assert_string_equal(name, "");
    assert_int_equal(verify(f, &doc, T0 + 99, name), ZTB_ERR_CERT_CHAIN);
    /* as DER */
    X509 *x = x509_from_buf(&doc);
    unsigned char *der = NULL;
    int n = i2d_X509(x, &der);
    assert_int_equal(ztb_ca_verify_identity(f->ca, der, (size_t)n, T0 + 100, name, sizeof(name)),
                     ZTB_OK);
    assert_int_equal(
        ztb_ca_verify_identity(f->ca, der, (size_t)n - 1, T0 + 100, name, sizeof(name)),
        ZTB_ERR_CERT);
    OPENSSL_free(der);
    X509_free(x);
    /* garbage, a CSR instead of a certificate */
    assert_int_equal(ztb_ca_verify_identity(f->ca, "junk", 4, T0, name, sizeof(name)),
                     ZTB_ERR_CERT);
    assert_int_equal(ztb_ca_verify_identity(f->ca, f->csr.data, f->csr.len, T0, name, sizeof(name)),
                     ZTB_ERR_CERT);
    ztb_buf_free(&doc);
}

/* ztb_ca_issue_with: a signer callback (the broker's signer process) makes
 * the signature. A public-only CA with the right key's signatures issues a
 * document that verifies; a callback signing with any other key, failing,
 * or returning garbage gives no document at all. */
static ztb_err sign_with(void *arg, const uint8_t digest[32], uint8_t *der, size_t *derlen)
{
    return ztb_es256_sign_digest(arg, digest, der, derlen);
}

static ztb_err sign_fails(void *arg, const uint8_t digest[32], uint8_t *der, size_t *derlen)
{
    (void)arg;
    (void)digest;
    (void)der;
    (void)derlen;
    return ZTB_ERR_UNAVAILABLE;
}

static ztb_err sign_garbage(void *arg, const uint8_t digest[32], uint8_t *der, size_t *derlen)
{
    (void)arg;
    (void)digest;
    memset(der, 0x30, 8);
    *derlen = 8;
    return ZTB_OK;
}

static void test_issue_with_remote_signer(void **state)
{
    struct fx *f = *state;
    ztb_ca *pub = NULL;
    assert_int_equal(ztb_ca_load_public(f->dir, &pub), ZTB_OK);
    char p[1024];
    snprintf(p, sizeof(p), "%s/ca/ca.key.pem", f->dir);
    ztb_key *cakey = NULL, *other = NULL;
    assert_int_equal(ztb_key_load_file(p, NULL, 0, &cakey), ZTB_OK);
    assert_int_equal(ztb_key_generate(&other), ZTB_OK);
    ztb_buf doc;
    ztb_buf_init(&doc, 16384);
    /* the public-only CA cannot sign by itself */
    assert_int_equal(ztb_ca_issue(pub, f->csr.data, f->csr.len, "a1", T0 + 100, 0, &doc),
                     ZTB_ERR_KEY);
    assert_int_equal(
        ztb_ca_issue_with(pub, f->csr.data, f->csr.len, "a1", T0 + 100, 0, sign_with, cakey, &doc),
        ZTB_OK);
    char name[ZTB_AGENT_NAME_MAX + 1];
    assert_int_equal(verify(f, &doc, T0 + 100, name), ZTB_OK);
    assert_string_equal(name, "a1");
    ztb_buf_reset(&doc);
    assert_int_equal(
        ztb_ca_issue_with(pub, f->csr.data, f->csr.len, "a1", T0 + 100, 0, sign_with, other, &doc),
        ZTB_ERR_SIGNATURE);
    assert_int_equal(doc.len, 0);
    assert_int_equal(
        ztb_ca_issue_with(pub, f->csr.data, f->csr.len, "a1", T0 + 100, 0, sign_fails, NULL, &doc),
        ZTB_ERR_UNAVAILABLE);
    assert_int_equal(ztb_ca_issue_with(pub, f->csr.data, f->csr.len, "a1", T0 + 100, 0,
                                       sign_garbage, NULL, &doc),
                     ZTB_ERR_SIGNATURE);
    assert_int_equal(doc.len, 0);
    uint8_t d[32] = {1}, der[ZTB_ES256_DER_MAX];
    size_t derlen = sizeof(der);
    assert_int_equal(ztb_ca_sign_digest(pub, d, der, &derlen), ZTB_ERR_KEY);
    assert_int_equal(ztb_ca_sign_digest(f->ca, d, der, &derlen), ZTB_OK);
    ztb_buf_free(&doc);
    ztb_key_free(cakey);
    ztb_key_free(other);
    ztb_ca_free(pub);
}

/* A document from another CA of the same trust domain is not ours. */
static void test_verify_refuses_other_ca(void **state)
{
    struct fx *f = *state;
    ztb_ca *other = NULL;
    ztb_ca_opts o = {.trust_domain = TD};
    assert_int_equal(ztb_ca_create(&o, T0, &other), ZTB_OK);
    ztb_buf doc;
    ztb_buf_init(&doc, 16384);
    assert_int_equal(ztb_ca_issue(other, f->csr.data, f->csr.len, "a1", T0, 0, &doc), ZTB_OK);
    char name[ZTB_AGENT_NAME_MAX + 1];
    assert_int_equal(verify(f, &doc, T0 + 1, name), ZTB_ERR_CERT_CHAIN);
    /* even with the other CA's certificate offered as an intermediate */
    assert_int_equal(ztb_ca_cert_pem(other, &doc), ZTB_OK);
    assert_int_equal(verify(f, &doc, T0 + 1, name), ZTB_ERR_CERT_CHAIN);
    ztb_buf_free(&doc);
    ztb_ca_free(other);
}

struct leaf_spec {
    const char *san;  /* config syntax */
    int san_critical; /* 1 */
    const char *eku;  /* NULL: none */
    const char *bc;   /* basicConstraints */
    const char *ku;
    EVP_PKEY *pub; /* NULL: the agent's */
};

/* A leaf signed by signer (key sk, certificate sc), breaking whatever the spec says. */
static void craft_by(struct fx *f, EVP_PKEY *sk, X509 *sc, const struct leaf_spec *s, ztb_buf *out)
{
    X509 *x = X509_new();
    X509_set_version(x, X509_VERSION_3);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 12345);
    X509_set_issuer_name(x, X509_get_subject_name(sc));
    ASN1_TIME_set(X509_getm_notBefore(x), T0);
    ASN1_TIME_set(X509_getm_notAfter(x), T0 + 3600);
    X509_set_pubkey(x, s->pub ? s->pub : ztb_key_evp(f->agent));
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, sc, x, NULL, NULL, 0);
    char san[512];
    snprintf(san, sizeof(san), "%s%s", s->san_critical ? "critical," : "", s->san);
    const struct {
        int nid;
        const char *v;
    } ext[] = {
        {NID_basic_constraints, s->bc ? s->bc : "critical,CA:FALSE"},
        {NID_key_usage, s->ku ? s->ku : "critical,digitalSignature"},
        {NID_ext_key_usage, s->eku},
        {NID_subject_key_identifier, "hash"},
        {NID_authority_key_identifier, "keyid:always"},
        {NID_subject_alt_name, san},
    };
    for (size_t i = 0; i < sizeof(ext) / sizeof(ext[0]); i++) {
        if (ext[i].v == NULL)
            continue;
        X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &ctx, ext[i].nid, ext[i].v);
        assert_non_null(e);
        X509_add_ext(x, e, -1);
        X509_EXTENSION_free(e);
    }
    assert_true(X509_sign(x, sk, EVP_sha256()) > 0);
    BIO *bio = BIO_new(BIO_s_mem());
    PEM_write_bio_X509(bio, x);
    char *p;
    long n = BIO_get_mem_data(bio, &p);
    ztb_buf_reset(out);
    ztb_buf_append(out, p, (size_t)n);
    BIO_free(bio);
    X509_free(x);
}

/* A leaf signed with the CA's own key. */
static void craft(struct fx *f, const struct leaf_spec *s, ztb_buf *out)
{
    craft_by(f, f->cak, f->cac, s, out);
}

/* An operator's root CA made with OpenSSL alone: key (PKCS#8 PEM, encrypted
 * with pass if given) and self-signed certificate (PEM). */
static void make_operator_root(const char *bc, int64_t nb, const char *pass, ztb_buf *cert,
                               ztb_buf *key, EVP_PKEY **pk, X509 **xc)
{
    EVP_PKEY *k = EVP_EC_gen("P-384");
    X509 *x = X509_new();
    X509_set_version(x, X509_VERSION_3);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_NAME *n = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)"Operator Root", -1,
                               -1, 0);
    X509_set_issuer_name(x, n);
    ASN1_TIME_set(X509_getm_notBefore(x), nb);
    ASN1_TIME_set(X509_getm_notAfter(x), nb + 20LL * 365 * 86400);
    X509_set_pubkey(x, k);
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
    const struct {
        int nid;
        const char *v;
    } ext[] = {{NID_basic_constraints, bc},
               {NID_key_usage, "critical,keyCertSign,cRLSign"},
               {NID_subject_key_identifier, "hash"}};
    for (size_t i = 0; i < 3; i++) {
        X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &ctx, ext[i].nid, ext[i].v);
        X509_add_ext(x, e, -1);
        X509_EXTENSION_free(e);
    }
    assert_true(X509_sign(x, k, EVP_sha384()) > 0);
    BIO *b = BIO_new(BIO_s_mem());
    PEM_write_bio_X509(b, x);
    char *p;
    long len = BIO_get_mem_data(b, &p);
    ztb_buf_append(cert, p, (size_t)len);
    BIO_free(b);
    b = BIO_new(BIO_s_mem());
    if (pass != NULL)
        PEM_write_bio_PKCS8PrivateKey(b, k, EVP_aes_256_cbc(), pass, (int)strlen(pass), NULL, NULL);
    else
        PEM_write_bio_PKCS8PrivateKey(b, k, NULL, NULL, 0, NULL, NULL);
    len = BIO_get_mem_data(b, &p);
    ztb_buf_append(key, p, (size_t)len);
    BIO_free(b);
    *pk = k;
    *xc = x;
}

static void test_verify_refuses_crafted_leaves(void **state)
{
    struct fx *f = *state;
    ztb_buf doc;
    ztb_buf_init(&doc, 16384);
    char name[ZTB_AGENT_NAME_MAX + 1];
    const char *good_san = "URI:spiffe://" TD "/agent/a1";

    /* the crafting itself is sound: a leaf made like the CA's passes */
    struct leaf_spec ok = {.san = good_san, .san_critical = 1, .eku = "clientAuth"};
    craft(f, &ok, &doc);
    assert_int_equal(verify(f, &doc, T0 + 1, name), ZTB_OK);

    struct {
        struct leaf_spec s;
        ztb_err want;
    } cases[] = {
        {{.san = "URI:spiffe://" TD "/agent/a1,URI:spiffe://" TD "/agent/a2",
          .san_critical = 1,
          .eku = "clientAuth"},
         ZTB_ERR_SPIFFE_ID},
        {{.san = "URI:spiffe://" TD "/agent/a1,DNS:a1.example.org",
          .san_critical = 1,
          .eku = "clientAuth"},
         ZTB_ERR_SPIFFE_ID},
        {{.san = "URI:spiffe://other.org/agent/a1", .san_critical = 1, .eku = "clientAuth"},
         ZTB_ERR_SPIFFE_ID},
        {{.san = "URI:spiffe://" TD "/workload/a1", .san_critical = 1, .eku = "clientAuth"},
         ZTB_ERR_SPIFFE_ID},
        {{.san = "DNS:a1.example.org", .san_critical = 1, .eku = "clientAuth"}, ZTB_ERR_SPIFFE_ID},
        /* a server certificate is not an identity document */
        {{.san = good_san, .san_critical = 1, .eku = "serverAuth"}, ZTB_ERR_CERT_CHAIN},
        /* an empty subject with a non-critical SAN breaks RFC 5280 (strict mode) */
        {{.san = good_san, .san_critical = 0, .eku = "clientAuth"}, ZTB_ERR_CERT_CHAIN},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        craft(f, &cases[i].s, &doc);
        ztb_err rv = verify(f, &doc, T0 + 1, name);
        if (rv != cases[i].want)
            fail_msg("case %zu: %s, want %s", i, ztb_err_name(rv), ztb_err_name(cases[i].want));
    }
    /* a leaf that is a CA */
    struct leaf_spec ca = {.san = good_san,
                           .san_critical = 1,
                           .eku = "clientAuth",
                           .bc = "critical,CA:TRUE",
                           .ku = "critical,digitalSignature,keyCertSign"};
    craft(f, &ca, &doc);
    ztb_err rv = verify(f, &doc, T0 + 1, name);
    assert_true(rv == ZTB_ERR_CERT || rv == ZTB_ERR_CERT_CHAIN);
    /* a leaf with an RSA key */
    EVP_PKEY *rsa = EVP_RSA_gen(2048);
    struct leaf_spec r = {.san = good_san, .san_critical = 1, .eku = "clientAuth", .pub = rsa};
    craft(f, &r, &doc);
    assert_int_equal(verify(f, &doc, T0 + 1, name), ZTB_ERR_CERT);
    EVP_PKEY_free(rsa);
    ztb_buf_free(&doc);
}

static void test_files(void **state)
{
    struct fx *f = *state;
    char p[1024];
    const char *names[] = {"ca.key.pem", "ca.cert.pem", "root.cert.pem", "ca.json"};
    for (size_t i = 0; i < 4; i++) {
        snprintf(p, sizeof(p), "%s/ca/%s", f->dir, names[i]);
        struct stat st;
        assert_int_equal(lstat(p, &st), 0);
        assert_int_equal(st.st_mode & 0777, 0600);
    }
    snprintf(p, sizeof(p), "%s/ca", f->dir);
    struct stat st;
    assert_int_equal(lstat(p, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);

    ztb_ca *loaded = NULL;
    assert_int_equal(ztb_ca_load(f->dir, NULL, 0, &loaded), ZTB_OK);
    ztb_buf a, b;
    ztb_buf_init(&a, 8192);
    ztb_buf_init(&b, 8192);
    assert_int_equal(ztb_ca_cert_pem(f->ca, &a), ZTB_OK);
    assert_int_equal(ztb_ca_cert_pem(loaded, &b), ZTB_OK);
    assert_int_equal(a.len, b.len);
    assert_memory_equal(a.data, b.data, a.len);
    /* a document issued by the loaded CA verifies with the original */
    ztb_buf doc;
    ztb_buf_init(&doc, 16384);
    assert_int_equal(ztb_ca_issue(loaded, f->csr.data, f->csr.len, "a1", T0, 0, &doc), ZTB_OK);
    char name[ZTB_AGENT_NAME_MAX + 1];
    assert_int_equal(verify(f, &doc, T0, name), ZTB_OK);
    ztb_ca_free(loaded);
    /* saving over an existing CA is refused */
    assert_int_equal(ztb_ca_save(f->ca, f->dir, NULL, 0), ZTB_ERR_EXISTS);
    ztb_buf_free(&a);
    ztb_buf_free(&b);
    ztb_buf_free(&doc);
}

static void test_files_refusals(void **state)
{
    (void)state;
    char *dir = pkt_tmpdir();
    ztb_ca *ca = NULL, *loaded = NULL;
    assert_int_equal(ztb_ca_load(dir, NULL, 0, &loaded), ZTB_ERR_NOT_FOUND);
    ztb_ca_opts o = {.trust_domain = TD};
    assert_int_equal(ztb_ca_create(&o, T0, &ca), ZTB_OK);
    assert_int_equal(ztb_ca_save(ca, dir, "pw", 2), ZTB_OK);
    char p[1024];
    snprintf(p, sizeof(p), "%s/ca/ca.key.pem", dir);
    FILE *fp = fopen(p, "r");
    char head[64] = {0};
    assert_non_null(fgets(head, sizeof(head), fp));
    fclose(fp);
    assert_string_equal(head, "-----BEGIN ENCRYPTED PRIVATE KEY-----\n");
    assert_int_equal(ztb_ca_load(dir, NULL, 0, &loaded), ZTB_ERR_PASSPHRASE);
    assert_int_equal(ztb_ca_load(dir, "px", 2, &loaded), ZTB_ERR_PASSPHRASE);
    assert_int_equal(ztb_ca_load(dir, "pw", 2, &loaded), ZTB_OK);
    ztb_ca_free(loaded);
    /* a key file readable by others */
    assert_int_equal(chmod(p, 0640), 0);
    assert_int_equal(ztb_ca_load(dir, "pw", 2, &loaded), ZTB_ERR_PERMISSION);
    assert_int_equal(chmod(p, 0600), 0);
    /* the metadata says intermediate but the certificate is a root */
    snprintf(p, sizeof(p), "%s/ca/ca.json", dir);
    char meta[512];
    snprintf(meta, sizeof(meta),
             "{\"format\": \"ztb-ca\", \"version\": 1, \"trust_domain\": \"%s\", "
             "\"kind\": \"intermediate\", \"encrypted\": true}\n",
             TD);
    assert_int_equal(pkt_write(p, meta, strlen(meta), 0600), 0);
    assert_int_equal(ztb_ca_load(dir, "pw", 2, &loaded), ZTB_ERR_CERT);
    /* another trust domain than the certificate's */
    snprintf(meta, sizeof(meta),
             "{\"format\": \"ztb-ca\", \"version\": 1, \"trust_domain\": \"other.org\", "
             "\"kind\": \"root\", \"encrypted\": true}\n");
    assert_int_equal(pkt_write(p, meta, strlen(meta), 0600), 0);
    assert_int_equal(ztb_ca_load(dir, "pw", 2, &loaded), ZTB_ERR_CERT);
    /* an unknown member */
    snprintf(meta, sizeof(meta),
             "{\"format\": \"ztb-ca\", \"version\": 1, \"trust_domain\": \"%s\", "
             "\"kind\": \"root\", \"encrypted\": true, \"x\": 1}\n",
             TD);
    assert_int_equal(pkt_write(p, meta, strlen(meta), 0600), 0);
    assert_int_equal(ztb_ca_load(dir, "pw", 2, &loaded), ZTB_ERR_MALFORMED);
    ztb_ca_free(ca);
    pkt_rmdir(dir);
}

/* An intermediate under an operator's root; the root key is not kept. */
static void test_intermediate(void **state)
{
    struct fx *f = *state;
    ztb_buf rcert, rkey;
    ztb_buf_init(&rcert, 8192);
    ztb_buf_init_secret(&rkey, 8192);
    EVP_PKEY *rk = NULL;
    X509 *rx = NULL;
    make_operator_root("critical,CA:TRUE", T0 - 1000, "rootpw", &rcert, &rkey, &rk, &rx);

    ztb_ca_opts o = {.trust_domain = TD,
                     .root_cert_pem = (const char *)rcert.data,
                     .root_cert_len = rcert.len,
                     .root_key_pem = (const char *)rkey.data,
                     .root_key_len = rkey.len,
                     .root_pass = "rootpw",
                     .root_pass_len = 6};
    ztb_ca *ica = NULL;
    assert_int_equal(ztb_ca_create(&o, T0, &ica), ZTB_OK);
    ztb_ca_info info;
    assert_int_equal(ztb_ca_get_info(ica, &info), ZTB_OK);
    assert_false(info.is_root);
    assert_string_equal(info.issuer, "CN=Operator Root");
    assert_int_equal(info.not_after, T0 + ZTB_CA_DEFAULT_INTERMEDIATE_VALIDITY_S);

    ztb_buf doc;
    ztb_buf_init(&doc, 16384);
    assert_int_equal(ztb_ca_issue(ica, f->csr.data, f->csr.len, "a1", T0 + 5, 0, &doc), ZTB_OK);
    char name[ZTB_AGENT_NAME_MAX + 1];
    assert_int_equal(ztb_ca_verify_identity(ica, doc.data, doc.len, T0 + 5, name, sizeof(name)),
                     ZTB_OK);
    assert_string_equal(name, "a1");

    /* a document signed by the operator's root directly, with our trust
     * domain's agent ID, is not one of ours: the agent CA must have issued it */
    ztb_buf direct;
    ztb_buf_init(&direct, 16384);
    struct leaf_spec s = {
        .san = "URI:spiffe://" TD "/agent/a1", .san_critical = 1, .eku = "clientAuth"};
    craft_by(f, rk, rx, &s, &direct);
    assert_int_equal(
        ztb_ca_verify_identity(ica, direct.data, direct.len, T0 + 5, name, sizeof(name)),
        ZTB_ERR_CERT_CHAIN);

    /* saved and loaded, it is still an intermediate, and the root key is not on disk */
    char *idir = pkt_tmpdir();
    assert_int_equal(ztb_ca_save(ica, idir, NULL, 0), ZTB_OK);
    ztb_ca *iload = NULL;
    assert_int_equal(ztb_ca_load(idir, NULL, 0, &iload), ZTB_OK);
    assert_int_equal(ztb_ca_get_info(iload, &info), ZTB_OK);
    assert_false(info.is_root);
    assert_int_equal(ztb_ca_verify_identity(iload, doc.data, doc.len, T0 + 5, name, sizeof(name)),
                     ZTB_OK);

    /* openssl agrees: the document chains to the operator's root for client auth */
    char pr[1024], pc[1024], pl[1024], cmd[4096];
    snprintf(pr, sizeof(pr), "%s/ca/root.cert.pem", idir);
    snprintf(pc, sizeof(pc), "%s/ca/ca.cert.pem", idir);
    snprintf(pl, sizeof(pl), "%s/leaf.pem", idir);
    assert_int_equal(pkt_write(pl, doc.data, doc.len, 0600), 0);
    snprintf(cmd, sizeof(cmd),
             "openssl verify -x509_strict -attime %lld -purpose sslclient -CAfile %s "
             "-untrusted %s %s >/dev/null 2>&1",
             (long long)T0 + 5, pr, pc, pl);
    assert_int_equal(system(cmd), 0);
    snprintf(cmd, sizeof(cmd),
             "openssl verify -attime %lld -purpose sslserver -CAfile %s -untrusted %s %s "
             ">/dev/null 2>&1",
             (long long)T0 + 5, pr, pc, pl);
    assert_int_not_equal(system(cmd), 0);

    /* refusals: no passphrase for the root key, a key that is not the root's */
    ztb_ca *bad = NULL;
    o.root_pass = NULL;
    o.root_pass_len = 0;
    assert_int_equal(ztb_ca_create(&o, T0, &bad), ZTB_ERR_PASSPHRASE);
    o.root_pass = "rootpw";
    o.root_pass_len = 6;
    ztb_key *stranger = NULL;
    assert_int_equal(ztb_key_generate(&stranger), ZTB_OK);
    ztb_buf skey;
    ztb_buf_init_secret(&skey, 8192);
    assert_int_equal(ztb_key_private_pem(stranger, NULL, 0, &skey), ZTB_OK);
    o.root_key_pem = (const char *)skey.data;
    o.root_key_len = skey.len;
    assert_int_equal(ztb_ca_create(&o, T0, &bad), ZTB_ERR_CERT);
    o.root_key_pem = (const char *)rkey.data;
    o.root_key_len = rkey.len;
    /* the root not valid yet at now */
    assert_int_equal(ztb_ca_create(&o, T0 - 2000, &bad), ZTB_ERR_CERT);
    /* a leaf certificate is no root */
    o.root_cert_pem = (const char *)doc.data;
    o.root_cert_len = doc.len;
    assert_int_equal(ztb_ca_create(&o, T0 + 5, &bad), ZTB_ERR_CERT);
    /* a root that allows no intermediate (pathlen 0) */
    ztb_buf c0, k0;
    ztb_buf_init(&c0, 8192);
    ztb_buf_init_secret(&k0, 8192);
    EVP_PKEY *k0k = NULL;
    X509 *k0x = NULL;
    make_operator_root("critical,CA:TRUE,pathlen:0", T0 - 1000, NULL, &c0, &k0, &k0k, &k0x);
    ztb_ca_opts o0 = {.trust_domain = TD,
                      .root_cert_pem = (const char *)c0.data,
                      .root_cert_len = c0.len,
                      .root_key_pem = (const char *)k0.data,
                      .root_key_len = k0.len};
    assert_int_equal(ztb_ca_create(&o0, T0, &bad), ZTB_ERR_CERT);

    EVP_PKEY_free(k0k);
    X509_free(k0x);
    ztb_buf_free(&c0);
    ztb_buf_free(&k0);
    ztb_key_free(stranger);
    ztb_buf_free(&skey);
    ztb_buf_free(&direct);
    ztb_buf_free(&doc);
    ztb_buf_free(&rcert);
    ztb_buf_free(&rkey);
    EVP_PKEY_free(rk);
    X509_free(rx);
    ztb_ca_free(iload);
    ztb_ca_free(ica);
    pkt_rmdir(idir);
}

static void test_create_refusals(void **state)
{
    (void)state;
    ztb_ca *ca = NULL;
    ztb_ca_opts o = {.trust_domain = "Example.org"};
    assert_int_equal(ztb_ca_create(&o, T0, &ca), ZTB_ERR_SPIFFE_ID);
    o.trust_domain = TD;
    o.validity_s = -5;
    assert_int_equal(ztb_ca_create(&o, T0, &ca), ZTB_ERR_INVALID_ARG);
    o.validity_s = 0;
    o.root_cert_pem = "x";
    o.root_cert_len = 1;
    assert_int_equal(ztb_ca_create(&o, T0, &ca), ZTB_ERR_INVALID_ARG); /* cert without key */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_root_ca_facts),
        cmocka_unit_test(test_issue_identity_document),
        cmocka_unit_test(test_issue_lifetimes),
        cmocka_unit_test(test_issue_refuses_bad_csr),
        cmocka_unit_test(test_issue_canonical_public_key),
        cmocka_unit_test(test_verify_identity),
        cmocka_unit_test(test_verify_refuses_other_ca),
        cmocka_unit_test(test_issue_with_remote_signer),
        cmocka_unit_test(test_verify_refuses_crafted_leaves),
        cmocka_unit_test(test_files),
        cmocka_unit_test(test_files_refusals),
        cmocka_unit_test(test_intermediate),
        cmocka_unit_test(test_create_refusals),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
