/*
 * pem.c - strict PEM blocks and PKCS#8 private keys (see pem.h).
 *
 * Each block is handed to PEM_read_bio on a read-only memory BIO over the
 * input that starts exactly at its BEGIN line, so OpenSSL never gets to skip
 * junk; what it left unread tells where the next block must start.
 */
#include <limits.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/x509.h>

#include "common/guard.h"
#include "pki/pem.h"

static int is_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static size_t skip_space(const unsigned char *s, size_t n, size_t i)
{
    while (i < n && is_space(s[i]))
        i++;
    return i;
}

int ztb_pem_looks_like(const void *in, size_t n)
{
    const unsigned char *s = in;
    size_t i = skip_space(s, n, 0);
    return n - i > 11 && memcmp(s + i, "-----BEGIN ", 11) == 0;
}

void ztb_pem_blocks_free(ztb_pem_block *b, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        if (b[i].der != NULL)
            OPENSSL_clear_free(b[i].der, (size_t)b[i].len);
        OPENSSL_free(b[i].label);
        memset(&b[i], 0, sizeof(b[i]));
    }
}

ztb_err ztb_pem_read_blocks(const void *in, size_t n, ztb_pem_block *b, size_t max, size_t *count)
{
    ZTB_ENSURE(in != NULL && b != NULL && count != NULL, ZTB_ERR_INVALID_ARG);
    ZTB_ENSURE(n <= INT_MAX, ZTB_ERR_TOO_LARGE);
    const unsigned char *s = in;
    size_t pos = skip_space(s, n, 0), got = 0;
    ztb_err rv = ZTB_OK;
    *count = 0;
    while (pos < n) {
        ZTB_CHECK(rv, got < max, ZTB_ERR_TOO_LARGE);
        ZTB_CHECK(rv, n - pos > 11 && memcmp(s + pos, "-----BEGIN ", 11) == 0, ZTB_ERR_MALFORMED);
        BIO *bio = BIO_new_mem_buf(s + pos, (int)(n - pos));
        ZTB_CHECK(rv, bio != NULL, ZTB_ERR_NOMEM);
        char *header = NULL;
        int ok = PEM_read_bio(bio, &b[got].label, &header, &b[got].der, &b[got].len) == 1;
        char *rest = NULL;
        long restlen = BIO_get_mem_data(bio, &rest);
        BIO_free(bio);
        int noheader = header != NULL && header[0] == '\0';
        OPENSSL_free(header);
        if (ok)
            got++;
        ZTB_CHECK(rv, ok && noheader && restlen >= 0, ZTB_ERR_MALFORMED);
        pos = n - (size_t)restlen;
        pos = skip_space(s, n, pos);
    }
    ZTB_CHECK(rv, got > 0, ZTB_ERR_MALFORMED);
    *count = got;
out:
    if (rv != ZTB_OK) {
        ztb_pem_blocks_free(b, got);
        ERR_clear_error();
    }
    return rv;
}

ztb_err ztb_pem_read_key(const void *in, size_t n, const void *pass, size_t passlen,
                         int allow_public, EVP_PKEY **out, int *was_encrypted)
{
    ZTB_ENSURE(in != NULL && out != NULL, ZTB_ERR_INVALID_ARG);
    ZTB_ENSURE(pass != NULL || passlen == 0, ZTB_ERR_INVALID_ARG);
    ztb_err rv = ZTB_OK;
    ztb_pem_block blk;
    size_t nblk = 0;
    PKCS8_PRIV_KEY_INFO *p8 = NULL;
    X509_SIG *enc = NULL;
    EVP_PKEY *pkey = NULL;
    int encrypted = 0;

    memset(&blk, 0, sizeof(blk));
    rv = ztb_pem_read_blocks(in, n, &blk, 1, &nblk);
    ZTB_CHECK(rv, rv == ZTB_OK, ZTB_ERR_KEY);
    const unsigned char *p = blk.der;
    const unsigned char *end = blk.der + blk.len;
    if (strcmp(blk.label, PEM_STRING_PKCS8INF) == 0) { /* "PRIVATE KEY" */
        p8 = d2i_PKCS8_PRIV_KEY_INFO(NULL, &p, blk.len);
        ZTB_CHECK(rv, p8 != NULL && p == end, ZTB_ERR_KEY);
    } else if (strcmp(blk.label, PEM_STRING_PKCS8) == 0) { /* "ENCRYPTED PRIVATE KEY" */
        encrypted = 1;
        enc = d2i_X509_SIG(NULL, &p, blk.len);
        ZTB_CHECK(rv, enc != NULL && p == end, ZTB_ERR_KEY);
        ZTB_CHECK(rv, passlen > 0 && passlen <= INT_MAX, ZTB_ERR_PASSPHRASE);
        p8 = PKCS8_decrypt(enc, pass, (int)passlen);
        ZTB_CHECK(rv, p8 != NULL, ZTB_ERR_PASSPHRASE);
    } else if (allow_public && strcmp(blk.label, PEM_STRING_PUBLIC) == 0) { /* "PUBLIC KEY" */
        pkey = d2i_PUBKEY(NULL, &p, blk.len);
        ZTB_CHECK(rv, pkey != NULL && p == end, ZTB_ERR_KEY);
    } else {
        ZTB_CHECK(rv, 0, ZTB_ERR_KEY);
    }
    if (p8 != NULL) {
        pkey = EVP_PKCS82PKEY(p8);
        ZTB_CHECK(rv, pkey != NULL, ZTB_ERR_KEY);
    }
    *out = pkey;
    pkey = NULL;
    if (was_encrypted != NULL)
        *was_encrypted = encrypted;
out:
    EVP_PKEY_free(pkey);
    PKCS8_PRIV_KEY_INFO_free(p8); /* clears the private key octets */
    X509_SIG_free(enc);
    ztb_pem_blocks_free(&blk, nblk);
    if (rv != ZTB_OK)
        ERR_clear_error();
    return rv;
}
