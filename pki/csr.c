/*
 * csr.c - make and check agent CSRs (see csr.h). Parsing is OpenSSL's DER
 * decoder over an exact-length buffer (no trailing bytes); every field that
 * matters is then checked explicitly rather than trusted; nothing from a
 * request ever reaches OpenSSL's configuration-string parser.
 */
#include <string.h>

#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "common/guard.h"
#include "pki/csr.h"
#include "pki/pem.h"
#include "pki/spiffe.h"

/* A GENERAL_NAMES holding one URI (a copy of uri[0..n)). NULL on failure. */
static GENERAL_NAMES *uri_names(const char *uri, size_t n)
{
    GENERAL_NAMES *names = GENERAL_NAMES_new();
    GENERAL_NAME *gn = GENERAL_NAME_new();
    ASN1_IA5STRING *ia5 = ASN1_IA5STRING_new();
    if (names == NULL || gn == NULL || ia5 == NULL || ASN1_STRING_set(ia5, uri, (int)n) != 1)
        goto fail;
    GENERAL_NAME_set0_value(gn, GEN_URI, ia5);
    ia5 = NULL;
    if (sk_GENERAL_NAME_push(names, gn) <= 0)
        goto fail;
    return names;
fail:
    ASN1_IA5STRING_free(ia5);
    GENERAL_NAME_free(gn);
    GENERAL_NAMES_free(names);
    return NULL;
}

ztb_err ztb_csr_make(const ztb_key *key, const char *spiffe_id, ztb_buf *out)
{
    ZTB_ENSURE(key != NULL && spiffe_id != NULL && out != NULL, ZTB_ERR_INVALID_ARG);
    ZTB_ENSURE(ztb_key_has_private(key), ZTB_ERR_KEY);
    size_t idlen = strlen(spiffe_id);
    ZTB_GUARD(ztb_spiffe_check_id(spiffe_id, idlen));
    ztb_err rv = ZTB_OK;
    X509_REQ *req = X509_REQ_new();
    GENERAL_NAMES *names = NULL;
    STACK_OF(X509_EXTENSION) *exts = NULL;
    X509_EXTENSION *ext = NULL;
    BIO *bio = NULL;
    ZTB_CHECK(rv, req != NULL, ZTB_ERR_NOMEM);
    ZTB_OSSL(rv, X509_REQ_set_version(req, X509_REQ_VERSION_1));
    ZTB_OSSL(rv, X509_REQ_set_pubkey(req, ztb_key_evp(key)));
    names = uri_names(spiffe_id, idlen);
    ZTB_CHECK(rv, names != NULL, ZTB_ERR_NOMEM);
    ext = X509V3_EXT_i2d(NID_subject_alt_name, 0, names);
    ZTB_CHECK(rv, ext != NULL, ZTB_ERR_CRYPTO);
    exts = sk_X509_EXTENSION_new_null();
    ZTB_CHECK(rv, exts != NULL && sk_X509_EXTENSION_push(exts, ext) > 0, ZTB_ERR_NOMEM);
    ext = NULL;
    ZTB_OSSL(rv, X509_REQ_add_extensions(req, exts));
    ZTB_CHECK(rv, X509_REQ_sign(req, ztb_key_evp(key), EVP_sha256()) > 0, ZTB_ERR_CRYPTO);
    bio = BIO_new(BIO_s_mem());
    ZTB_CHECK(rv, bio != NULL, ZTB_ERR_NOMEM);
    ZTB_OSSL(rv, PEM_write_bio_X509_REQ(bio, req));
    char *p = NULL;
    long len = BIO_get_mem_data(bio, &p);
    ZTB_CHECK(rv, len > 0, ZTB_ERR_CRYPTO);
    ZTB_TRY(rv, ztb_buf_append(out, p, (size_t)len));
out:
    BIO_free(bio);
    X509_EXTENSION_free(ext);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    GENERAL_NAMES_free(names);
    X509_REQ_free(req);
    if (rv != ZTB_OK)
        ERR_clear_error();
    return rv;
}

/* Parse exactly one request from PEM or DER. */
static ztb_err parse_req(const void *in, size_t n, X509_REQ **out)
{
    ztb_err rv = ZTB_OK;
    ztb_pem_block blk;
    size_t nblk = 0;
    const unsigned char *der = in;
    long derlen = (long)n;
    memset(&blk, 0, sizeof(blk));
    if (ztb_pem_looks_like(in, n)) {
        ZTB_CHECK(rv, ztb_pem_read_blocks(in, n, &blk, 1, &nblk) == ZTB_OK, ZTB_ERR_CSR);
        ZTB_CHECK(rv, strcmp(blk.label, PEM_STRING_X509_REQ) == 0, ZTB_ERR_CSR);
        der = blk.der;
        derlen = blk.len;
    }
    const unsigned char *p = der;
    X509_REQ *req = d2i_X509_REQ(NULL, &p, derlen);
    ZTB_CHECK(rv, req != NULL, ZTB_ERR_CSR);
    if (p != der + derlen) {
        X509_REQ_free(req);
        ZTB_CHECK(rv, 0, ZTB_ERR_CSR); /* trailing bytes */
    }
    *out = req;
out:
    ztb_pem_blocks_free(&blk, nblk);
    return rv;
}

/* The requested SAN must be exactly one URI equal to expected. The subject
 * name is ignored (docs/protocol.md): tools put one in by default, and the
 * CA never copies it (a certificate's only name is the SAN it builds). */
static ztb_err check_names(X509_REQ *req, const char *expected)
{
    ztb_err rv = ZTB_OK;
    STACK_OF(X509_EXTENSION) *exts = NULL;
    GENERAL_NAMES *names = NULL;

    /* attributes: only the extension request */
    int nattr = X509_REQ_get_attr_count(req);
    for (int i = 0; i < nattr; i++) {
        X509_ATTRIBUTE *a = X509_REQ_get_attr(req, i);
        ZTB_ENSURE(OBJ_obj2nid(X509_ATTRIBUTE_get0_object(a)) == NID_ext_req, ZTB_ERR_CSR);
    }
    ZTB_ENSURE(nattr <= 1, ZTB_ERR_CSR);
    exts = X509_REQ_get_extensions(req);
    /* an extension request that does not decode is a bad CSR; none at all, no name */
    ZTB_CHECK(rv, exts != NULL || nattr == 0, ZTB_ERR_CSR);
    ZTB_CHECK(rv, exts != NULL && sk_X509_EXTENSION_num(exts) > 0, ZTB_ERR_SPIFFE_ID);
    ZTB_CHECK(rv, sk_X509_EXTENSION_num(exts) == 1, ZTB_ERR_CSR);
    X509_EXTENSION *ext = sk_X509_EXTENSION_value(exts, 0);
    ZTB_CHECK(rv, OBJ_obj2nid(X509_EXTENSION_get_object(ext)) == NID_subject_alt_name, ZTB_ERR_CSR);
    names = X509V3_EXT_d2i(ext);
    ZTB_CHECK(rv, names != NULL, ZTB_ERR_CSR);
    ZTB_CHECK(rv, sk_GENERAL_NAME_num(names) == 1, ZTB_ERR_SPIFFE_ID);
    const GENERAL_NAME *gn = sk_GENERAL_NAME_value(names, 0);
    int type = 0;
    const ASN1_IA5STRING *uri = GENERAL_NAME_get0_value(gn, &type);
    ZTB_CHECK(rv, type == GEN_URI && uri != NULL, ZTB_ERR_SPIFFE_ID);
    size_t elen = strlen(expected);
    ZTB_CHECK(rv, (size_t)ASN1_STRING_length(uri) == elen, ZTB_ERR_SPIFFE_ID);
    ZTB_CHECK(rv, memcmp(ASN1_STRING_get0_data(uri), expected, elen) == 0, ZTB_ERR_SPIFFE_ID);
out:
    GENERAL_NAMES_free(names);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    return rv;
}

ztb_err ztb_csr_check(const void *in, size_t n, const char *expected_id, ztb_key **pub)
{
    ZTB_ENSURE(in != NULL && expected_id != NULL, ZTB_ERR_INVALID_ARG);
    ZTB_ENSURE(n <= ZTB_CSR_MAX, ZTB_ERR_TOO_LARGE);
    ZTB_GUARD(ztb_spiffe_check_id(expected_id, strlen(expected_id)));
    ztb_err rv = ZTB_OK;
    X509_REQ *req = NULL;
    ztb_key *key = NULL;
    ZTB_TRY(rv, parse_req(in, n, &req));

    /* the key first: only P-256 is ever certified */
    EVP_PKEY *pk = X509_REQ_get0_pubkey(req);
    ZTB_CHECK(rv, pk != NULL, ZTB_ERR_CSR);
    ZTB_CHECK(rv, EVP_PKEY_up_ref(pk) == 1, ZTB_ERR_CRYPTO);
    rv = ztb_key_from_evp(pk, &key);
    if (rv != ZTB_OK) {
        EVP_PKEY_free(pk);
        rv = ZTB_ERR_KEY;
        goto out;
    }
    /* proof of possession, with the one algorithm ztb uses */
    ZTB_CHECK(rv, X509_REQ_get_signature_nid(req) == NID_ecdsa_with_SHA256, ZTB_ERR_CSR);
    ZTB_CHECK(rv, X509_REQ_verify(req, pk) == 1, ZTB_ERR_CSR);
    ZTB_CHECK(rv, X509_REQ_get_version(req) == X509_REQ_VERSION_1, ZTB_ERR_CSR);
    ZTB_TRY(rv, check_names(req, expected_id));
    if (pub != NULL) {
        *pub = key;
        key = NULL;
    }
out:
    ztb_key_free(key);
    X509_REQ_free(req);
    if (rv != ZTB_OK)
        ERR_clear_error();
    return rv;
}
