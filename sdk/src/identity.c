/*
 * identity.c - identity documents and the credential file (see identity.h).
 *
 * What it must never do: keep or write a certificate that is not for the
 * agent's own key and name, write the key anywhere but a 0600 file replaced
 * atomically, or leave a copy of the key's PEM in freed memory.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/x509.h>

#include "common/guard.h"
#include "common/secret.h"
#include "pki/cert.h"
#include "pki/keyfile.h"
#include "pki/pem.h"
#include "sdk/src/identity.h"

#define KEY_END "-----END PRIVATE KEY-----"

ztb_err identity_check(const ztb_key *key, const char *spiffe_id, const char *pem, size_t len,
                       int64_t *not_before, int64_t *not_after)
{
    ZTB_ENSURE(key != NULL && spiffe_id != NULL && pem != NULL, ZTB_ERR_INVALID_ARG);
    ZTB_ENSURE(len > 0 && len <= IDENTITY_MAX, ZTB_ERR_CERT);
    ZTB_ENSURE(ztb_pem_looks_like(pem, len), ZTB_ERR_CERT); /* PEM only: it is stored as text */
    X509 *x = NULL;
    ZTB_GUARD(ztb_cert_read_chain(pem, len, &x, NULL)); /* the leaf; its chain is the CA's */
    ztb_err rv = ZTB_OK;
    const EVP_PKEY *pub = X509_get0_pubkey(x);
    ZTB_CHECK(rv, pub != NULL && EVP_PKEY_eq(pub, ztb_key_evp(key)) == 1, ZTB_ERR_CERT);
    ZTB_CHECK(rv, ztb_cert_only_uri_is(x, spiffe_id), ZTB_ERR_CERT);
    *not_before = ztb_cert_time(X509_get0_notBefore(x));
    *not_after = ztb_cert_time(X509_get0_notAfter(x));
    ZTB_CHECK(rv, *not_before > 0 && *not_after > *not_before, ZTB_ERR_CERT);
out:
    X509_free(x);
    ERR_clear_error();
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
