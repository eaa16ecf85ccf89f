/*
 * cert.c - reading X.509 identity documents (see cert.h).
 *
 * PEM goes through pem.c's strict block reader, then d2i_X509 on each
 * block, which must use every byte. Never OpenSSL's PEM_read_bio_X509: it
 * skips whatever precedes a BEGIN line and accepts encryption headers.
 */
#include <limits.h>
#include <string.h>
#include <time.h>

#include <openssl/pem.h>

#include "common/guard.h"
#include "pki/cert.h"
#include "pki/pem.h"

/* One certificate from DER that must use all n bytes; NULL otherwise. */
static X509 *from_der(const unsigned char *der, long n)
{
    const unsigned char *p = der;
    X509 *x = d2i_X509(NULL, &p, n);
    if (x != NULL && p != der + n) {
        X509_free(x);
        x = NULL;
    }
    return x;
}

ztb_err ztb_cert_from_pem(const void *pem, size_t n, X509 **out)
{
    ztb_pem_block b;
    size_t nb = 0;
    memset(&b, 0, sizeof(b));
    ZTB_ENSURE(ztb_pem_read_blocks(pem, n, &b, 1, &nb) == ZTB_OK, ZTB_ERR_CERT);
    ztb_err rv = ZTB_OK;
    ZTB_CHECK(rv, strcmp(b.label, PEM_STRING_X509) == 0, ZTB_ERR_CERT);
    X509 *x = from_der(b.der, b.len);
    ZTB_CHECK(rv, x != NULL, ZTB_ERR_CERT);
    *out = x;
out:
    ztb_pem_blocks_free(&b, nb);
    return rv;
}

ztb_err ztb_cert_read_chain(const void *doc, size_t len, X509 **leaf, STACK_OF(X509) * extra)
{
    ZTB_ENSURE(doc != NULL && leaf != NULL, ZTB_ERR_INVALID_ARG);
    if (!ztb_pem_looks_like(doc, len)) {
        X509 *x = len <= (size_t)LONG_MAX ? from_der(doc, (long)len) : NULL;
        ZTB_ENSURE(x != NULL, ZTB_ERR_CERT);
        *leaf = x;
        return ZTB_OK;
    }
    ztb_pem_block b[ZTB_CERT_CHAIN_MAX];
    size_t nb = 0;
    ztb_err rv = ZTB_OK;
    X509 *first = NULL;
    memset(b, 0, sizeof(b));
    ZTB_ENSURE(ztb_pem_read_blocks(doc, len, b, ZTB_CERT_CHAIN_MAX, &nb) == ZTB_OK, ZTB_ERR_CERT);
    for (size_t i = 0; i < nb; i++) {
        ZTB_CHECK(rv, strcmp(b[i].label, PEM_STRING_X509) == 0, ZTB_ERR_CERT);
        X509 *x = from_der(b[i].der, b[i].len);
        ZTB_CHECK(rv, x != NULL, ZTB_ERR_CERT);
        if (i == 0) {
            first = x;
        } else if (extra == NULL) {
            X509_free(x);
        } else if (sk_X509_push(extra, x) <= 0) {
            X509_free(x);
            ZTB_CHECK(rv, 0, ZTB_ERR_NOMEM);
        }
    }
    *leaf = first;
    first = NULL;
out:
    X509_free(first);
    ztb_pem_blocks_free(b, nb);
    return rv;
}

int64_t ztb_cert_time(const ASN1_TIME *t)
{
    struct tm tm;
    if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1)
        return 0;
    return (int64_t)timegm(&tm);
}

const ASN1_IA5STRING *ztb_cert_only_uri(X509 *x, GENERAL_NAMES **names)
{
    int crit = 0;
    *names = X509_get_ext_d2i(x, NID_subject_alt_name, &crit, NULL);
    if (*names == NULL || sk_GENERAL_NAME_num(*names) != 1)
        return NULL;
    int type = 0;
    const ASN1_IA5STRING *v = GENERAL_NAME_get0_value(sk_GENERAL_NAME_value(*names, 0), &type);
    return type == GEN_URI ? v : NULL;
}

int ztb_cert_only_uri_is(X509 *x, const char *uri)
{
    GENERAL_NAMES *names = NULL;
    const ASN1_IA5STRING *u = ztb_cert_only_uri(x, &names);
    size_t n = strlen(uri);
    int ok = u != NULL && (size_t)ASN1_STRING_length(u) == n &&
             memcmp(ASN1_STRING_get0_data(u), uri, n) == 0;
    GENERAL_NAMES_free(names);
    return ok;
}
