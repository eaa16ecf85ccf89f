/*
 * fuzz_cert.c - the identity document reader (pki/cert.c) on arbitrary
 * bytes, as the CA and the SDK call it. Checks, beyond memory safety: a
 * document accepted yields a leaf; one PEM certificate read alone is the
 * same certificate as the leaf of the chain read; the one-URI reader agrees
 * with the URI comparison.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pki/cert.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    X509 *leaf = NULL, *one = NULL;
    STACK_OF(X509) *extra = sk_X509_new_null();
    if (extra == NULL)
        return 0;
    if (ztb_cert_read_chain(data, size, &leaf, extra) == ZTB_OK) {
        if (leaf == NULL || sk_X509_num(extra) >= ZTB_CERT_CHAIN_MAX)
            abort();
        (void)ztb_cert_time(X509_get0_notBefore(leaf));
        (void)ztb_cert_time(X509_get0_notAfter(leaf));
        GENERAL_NAMES *names = NULL;
        const ASN1_IA5STRING *u = ztb_cert_only_uri(leaf, &names);
        if (u != NULL) {
            char uri[512];
            int n = ASN1_STRING_length(u);
            if (n > 0 && (size_t)n < sizeof(uri) &&
                memchr(ASN1_STRING_get0_data(u), '\0', (size_t)n) == NULL) {
                memcpy(uri, ASN1_STRING_get0_data(u), (size_t)n);
                uri[n] = '\0';
                if (!ztb_cert_only_uri_is(leaf, uri))
                    abort();
            }
        }
        GENERAL_NAMES_free(names);
    }
    if (ztb_cert_from_pem(data, size, &one) == ZTB_OK) {
        if (leaf == NULL || X509_cmp(one, leaf) != 0 || sk_X509_num(extra) != 0)
            abort();
        X509_free(one);
    }
    X509_free(leaf);
    sk_X509_pop_free(extra, X509_free);
    return 0;
}
