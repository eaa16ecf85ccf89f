/*
 * identity.c - identity documents and the credential file (see identity.h).
 *
 * What it must never do: keep or write a certificate that is not for the
 * agent's own key and name, write the key anywhere but a 0600 file replaced
 * atomically, or leave a copy of the key's PEM in freed memory.
 */
#define _GNU_SOURCE /* timegm */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "common/guard.h"
#include "common/secret.h"
#include "pki/keyfile.h"
#include "sdk/src/identity.h"

#define KEY_END "-----END PRIVATE KEY-----"

static int asn1_time_to_unix(const ASN1_TIME *t, int64_t *out)
{
    struct tm tm;
    if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1)
        return 0;
    *out = (int64_t)timegm(&tm);
    return 1;
}

/* 1 if x's subjectAltName is exactly one URI equal to id. */
static int only_name_is(X509 *x, const char *id)
{
    GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    int ok = 0;
    if (gens != NULL && sk_GENERAL_NAME_num(gens) == 1) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, 0);
        if (g->type == GEN_URI) {
            const ASN1_IA5STRING *u = g->d.uniformResourceIdentifier;
            size_t n = strlen(id);
            ok = (size_t)u->length == n && memcmp(u->data, id, n) == 0;
        }
    }
    GENERAL_NAMES_free(gens);
    return ok;
}

ztb_err identity_check(const ztb_key *key, const char *spiffe_id, const char *pem, size_t len,
                       int64_t *not_before, int64_t *not_after)
{
    ZTB_ENSURE(key != NULL && spiffe_id != NULL && pem != NULL, ZTB_ERR_INVALID_ARG);
    ZTB_ENSURE(len > 0 && len <= IDENTITY_MAX, ZTB_ERR_CERT);
    BIO *b = BIO_new_mem_buf(pem, (int)len);
    ZTB_ENSURE(b != NULL, ZTB_ERR_NOMEM);
    X509 *x = PEM_read_bio_X509(b, NULL, NULL, NULL);
    ztb_err rv = ZTB_OK;
    ZTB_CHECK(rv, x != NULL, ZTB_ERR_CERT);
    const EVP_PKEY *pub = X509_get0_pubkey(x);
    ZTB_CHECK(rv, pub != NULL && EVP_PKEY_eq(pub, ztb_key_evp(key)) == 1, ZTB_ERR_CERT);
    ZTB_CHECK(rv, only_name_is(x, spiffe_id), ZTB_ERR_CERT);
    ZTB_CHECK(rv, asn1_time_to_unix(X509_get0_notBefore(x), not_before), ZTB_ERR_CERT);
    ZTB_CHECK(rv, asn1_time_to_unix(X509_get0_notAfter(x), not_after), ZTB_ERR_CERT);
    ZTB_CHECK(rv, *not_after > *not_before, ZTB_ERR_CERT);
out:
    X509_free(x);
    BIO_free(b);
    return rv;
}

void identity_clear(struct identity *id)
{
    ztb_key_free(id->key);
    free(id->pem);
    memset(id, 0, sizeof(*id));
}

ztb_err identity_load(const char *path, const char *spiffe_id, struct identity *out)
{
    memset(out, 0, sizeof(*out));
    ztb_buf f;
    ztb_buf_init_secret(&f, IDENTITY_MAX);
    ztb_err rv = ztb_keyfile_read(AT_FDCWD, path, IDENTITY_MAX, ZTB_KEYFILE_SECRET, &f);
    if (rv != ZTB_OK) {
        ztb_buf_free(&f);
        return rv;
    }
    const char *text = ztb_buf_cstr(&f);
    const char *end = strstr(text, KEY_END);
    ZTB_CHECK(rv, end != NULL, ZTB_ERR_KEY);
    size_t key_len = (size_t)(end - text) + strlen(KEY_END);
    ZTB_TRY(rv, ztb_key_from_pem(text, key_len, NULL, 0, &out->key));
    ZTB_CHECK(rv, ztb_key_has_private(out->key), ZTB_ERR_KEY);
    const char *certs = text + key_len;
    size_t certs_len = f.len - key_len;
    while (certs_len > 0 && (*certs == '\n' || *certs == '\r')) {
        certs++;
        certs_len--;
    }
    ZTB_TRY(rv, identity_check(out->key, spiffe_id, certs, certs_len, &out->not_before,
                               &out->not_after));
    out->pem = strndup(certs, certs_len);
    ZTB_CHECK(rv, out->pem != NULL, ZTB_ERR_NOMEM);
    out->pem_len = certs_len;
out:
    ztb_buf_free(&f);
    if (rv != ZTB_OK)
        identity_clear(out);
    return rv;
}

ztb_err identity_save(const char *path, const struct identity *id)
{
    ZTB_ENSURE(id->key != NULL && id->pem != NULL, ZTB_ERR_INVALID_ARG);
    const char *slash = strrchr(path, '/');
    char dir[4096];
    const char *base = path;
    if (slash == NULL) {
        strcpy(dir, ".");
    } else {
        size_t dl = (size_t)(slash - path);
        ZTB_ENSURE(dl < sizeof(dir), ZTB_ERR_INVALID_ARG);
        memcpy(dir, path, dl);
        dir[dl == 0 ? 1 : dl] = '\0';
        if (dl == 0)
            dir[0] = '/';
        base = slash + 1;
    }
    ZTB_ENSURE(base[0] != '\0', ZTB_ERR_INVALID_ARG);
    ztb_buf f;
    ztb_buf_init_secret(&f, IDENTITY_MAX + 4096);
    int dfd = -1;
    ztb_err rv = ZTB_OK;
    ZTB_TRY(rv, ztb_key_private_pem(id->key, NULL, 0, &f));
    ztb_buf_append(&f, id->pem, id->pem_len);
    ZTB_TRY(rv, ztb_buf_error(&f));
    ZTB_TRY(rv, ztb_keyfile_open_dir(dir, &dfd));
    rv = ztb_keyfile_write_atomic(dfd, base, f.data, f.len, 0600);
out:
    if (dfd >= 0)
        close(dfd);
    ztb_buf_free(&f);
    return rv;
}
