/*
 * key.c - P-256 keys: generate, parse, serialise, share (see key.h).
 *
 * A key is checked once when it is made (type EC, named curve P-256, a valid
 * point; for private keys a full pair-wise check), its public coordinates and
 * kid are cached, and from then on it is read-only. Reference counts are C11
 * atomics so keys can be handed between threads without locks.
 *
 * PEM is parsed strictly by pem.c: only PKCS#8 and SPKI are accepted, never
 * the legacy "EC PRIVATE KEY" form with its Proc-Type encryption, and
 * OpenSSL's password callback is never reached (it could prompt on a
 * terminal). DER and PEM copies of private keys are wiped before release.
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <fcntl.h>
#include <unistd.h>
#include <limits.h>
#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/x509.h>

#include "common/guard.h"
#include "common/secret.h"
#include "pki/jwk.h"
#include "pki/key.h"
#include "pki/keyfile.h"
#include "pki/pem.h"

/* scrypt parameters for encrypted PKCS#8: openssl's own defaults (16 MiB). */
#define KEY_SCRYPT_N 16384
#define KEY_SCRYPT_R 8
#define KEY_SCRYPT_P 1

struct ztb_key {
    EVP_PKEY *pkey;
    atomic_uint refs;
    atomic_int cached; /* a per-thread context may hold pkey (see es256.c) */
    uint64_t serial;
    ztb_alg alg;
    int has_private;
    uint8_t x[ZTB_P256_COORD_LEN];
    uint8_t y[ZTB_P256_COORD_LEN];
    char kid[ZTB_KID_LEN + 1];
};

static atomic_uint_fast64_t next_serial = 1;
static atomic_uint_fast64_t flush_gen = 0;

const char *ztb_alg_name(ztb_alg alg)
{
    return alg == ZTB_ALG_ES256 ? "ES256" : "none";
}

ztb_alg ztb_alg_from_name(const char *name, size_t n)
{
    if (name != NULL && n == 5 && memcmp(name, "ES256", 5) == 0)
        return ZTB_ALG_ES256;
    return ZTB_ALG_NONE;
}

/* 1 if pkey is an EC key on the named curve P-256. */
static int is_p256(const EVP_PKEY *pkey)
{
    char group[64];
    size_t glen = 0;
    if (!EVP_PKEY_is_a(pkey, "EC"))
        return 0;
    if (EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
                                       &glen) != 1)
        return 0;
    return strcmp(group, "prime256v1") == 0 || strcmp(group, "P-256") == 0;
}

static int bn_coord(const EVP_PKEY *pkey, const char *param, uint8_t out[ZTB_P256_COORD_LEN])
{
    BIGNUM *bn = NULL;
    int ok = EVP_PKEY_get_bn_param(pkey, param, &bn) == 1 &&
             BN_bn2binpad(bn, out, ZTB_P256_COORD_LEN) == ZTB_P256_COORD_LEN;
    BN_free(bn);
    return ok;
}

static int pkey_has_private(const EVP_PKEY *pkey)
{
    BIGNUM *d = NULL;
    int has = EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_PRIV_KEY, &d) == 1 && d != NULL;
    BN_clear_free(d);
    ERR_clear_error();
    return has;
}

ztb_err ztb_key_from_evp(EVP_PKEY *pkey, ztb_key **out)
{
    ZTB_ENSURE(pkey != NULL && out != NULL, ZTB_ERR_INVALID_ARG);
    ztb_err rv = ZTB_OK;
    EVP_PKEY_CTX *cctx = NULL;
    ztb_key *k = calloc(1, sizeof(*k));
    ZTB_ENSURE(k != NULL, ZTB_ERR_NOMEM);

    ZTB_CHECK(rv, is_p256(pkey), ZTB_ERR_KEY);
    k->has_private = pkey_has_private(pkey);
    cctx = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
    ZTB_CHECK(rv, cctx != NULL, ZTB_ERR_CRYPTO);
    /* full pair-wise check for private keys; point on curve for public ones */
    ZTB_CHECK(rv, (k->has_private ? EVP_PKEY_check(cctx) : EVP_PKEY_public_check(cctx)) == 1,
              ZTB_ERR_KEY);
    ZTB_CHECK(rv, bn_coord(pkey, OSSL_PKEY_PARAM_EC_PUB_X, k->x), ZTB_ERR_KEY);
    ZTB_CHECK(rv, bn_coord(pkey, OSSL_PKEY_PARAM_EC_PUB_Y, k->y), ZTB_ERR_KEY);
    ZTB_TRY(rv, ztb_jwk_thumbprint_p256(k->x, k->y, k->kid));

    k->pkey = pkey;
    atomic_init(&k->refs, 1);
    atomic_init(&k->cached, 0);
    k->serial = atomic_fetch_add(&next_serial, 1);
    k->alg = ZTB_ALG_ES256;
    *out = k;
    k = NULL;
out:
    EVP_PKEY_CTX_free(cctx);
    free(k);
    if (rv != ZTB_OK)
        ERR_clear_error();
    return rv;
}

ztb_err ztb_key_generate(ztb_key **out)
{
    ZTB_ENSURE(out != NULL, ZTB_ERR_INVALID_ARG);
    EVP_PKEY *pkey = EVP_EC_gen("P-256");
    if (pkey == NULL) {
        ERR_clear_error();
        return ZTB_ERR_CRYPTO;
    }
    ztb_err rv = ztb_key_from_evp(pkey, out);
    if (rv != ZTB_OK)
        EVP_PKEY_free(pkey);
    return rv;
}

ztb_err ztb_key_from_public_xy(const uint8_t x[ZTB_P256_COORD_LEN],
                               const uint8_t y[ZTB_P256_COORD_LEN], ztb_key **out)
{
    ZTB_ENSURE(x != NULL && y != NULL && out != NULL, ZTB_ERR_INVALID_ARG);
    ztb_err rv = ZTB_OK;
    OSSL_PARAM_BLD *bld = NULL;
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *ctx = NULL;
    EVP_PKEY *pkey = NULL;
    uint8_t point[1 + 2 * ZTB_P256_COORD_LEN];

    point[0] = 0x04; /* uncompressed */
    memcpy(point + 1, x, ZTB_P256_COORD_LEN);
    memcpy(point + 1 + ZTB_P256_COORD_LEN, y, ZTB_P256_COORD_LEN);
    bld = OSSL_PARAM_BLD_new();
    ZTB_CHECK(rv, bld != NULL, ZTB_ERR_NOMEM);
    ZTB_OSSL(rv, OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0));
    ZTB_OSSL(rv,
             OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point, sizeof(point)));
    params = OSSL_PARAM_BLD_to_param(bld);
    ZTB_CHECK(rv, params != NULL, ZTB_ERR_NOMEM);
    ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    ZTB_CHECK(rv, ctx != NULL, ZTB_ERR_CRYPTO);
    ZTB_OSSL(rv, EVP_PKEY_fromdata_init(ctx));
    /* a point off the curve fails here */
    ZTB_CHECK(rv, EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) == 1, ZTB_ERR_KEY);
    ZTB_TRY(rv, ztb_key_from_evp(pkey, out));
    pkey = NULL;
out:
    EVP_PKEY_free(pkey);
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    if (rv != ZTB_OK)
        ERR_clear_error();
    return rv;
}

ztb_err ztb_key_public_only(const ztb_key *k, ztb_key **out)
{
    ZTB_ENSURE(k != NULL && out != NULL, ZTB_ERR_INVALID_ARG);
    return ztb_key_from_public_xy(k->x, k->y, out);
}

ztb_err ztb_key_from_pem_ex(const void *pem, size_t n, const void *pass, size_t passlen,
                            ztb_key **out, int *was_encrypted)
{
    ZTB_ENSURE(pem != NULL && out != NULL, ZTB_ERR_INVALID_ARG);
    ZTB_ENSURE(pass != NULL || passlen == 0, ZTB_ERR_INVALID_ARG);
    ZTB_ENSURE(n <= ZTB_KEY_PEM_MAX, ZTB_ERR_TOO_LARGE);
    EVP_PKEY *pkey = NULL;
    int enc = 0;
    ZTB_GUARD(ztb_pem_read_key(pem, n, pass, passlen, 1, &pkey, &enc));
    ztb_err rv = ztb_key_from_evp(pkey, out);
    if (rv != ZTB_OK) {
        EVP_PKEY_free(pkey);
        return rv;
    }
    if (was_encrypted != NULL)
        *was_encrypted = enc;
    return ZTB_OK;
}

ztb_err ztb_key_from_pem(const void *pem, size_t n, const void *pass, size_t passlen, ztb_key **out)
{
    return ztb_key_from_pem_ex(pem, n, pass, passlen, out, NULL);
}

/* Move everything written to a memory BIO into out. */
static ztb_err drain_bio(BIO *bio, ztb_buf *out)
{
    char *p = NULL;
    long len = BIO_get_mem_data(bio, &p);
    ZTB_ENSURE(len > 0 && p != NULL, ZTB_ERR_CRYPTO);
    return ztb_buf_append(out, p, (size_t)len);
}

ztb_err ztb_key_private_pem(const ztb_key *k, const void *pass, size_t passlen, ztb_buf *out)
{
    ZTB_ENSURE(k != NULL && out != NULL, ZTB_ERR_INVALID_ARG);
    ZTB_ENSURE(pass != NULL || passlen == 0, ZTB_ERR_INVALID_ARG);
    ZTB_ENSURE(passlen <= INT_MAX, ZTB_ERR_INVALID_ARG);
    ZTB_ENSURE(k->has_private, ZTB_ERR_KEY);
    ztb_err rv = ZTB_OK;
    PKCS8_PRIV_KEY_INFO *p8 = NULL;
    X509_ALGOR *pbe = NULL;
    X509_SIG *enc = NULL;
    /* the secure-heap BIO clears its storage when freed or grown */
    BIO *bio = BIO_new(BIO_s_secmem());
    ZTB_CHECK(rv, bio != NULL, ZTB_ERR_NOMEM);

    if (passlen == 0) {
        ZTB_OSSL(rv, PEM_write_bio_PKCS8PrivateKey(bio, k->pkey, NULL, NULL, 0, NULL, NULL));
    } else {
        p8 = EVP_PKEY2PKCS8(k->pkey);
        ZTB_CHECK(rv, p8 != NULL, ZTB_ERR_CRYPTO);
        pbe = PKCS5_pbe2_set_scrypt(EVP_aes_256_cbc(), NULL, 0, NULL, KEY_SCRYPT_N, KEY_SCRYPT_R,
                                    KEY_SCRYPT_P);
        ZTB_CHECK(rv, pbe != NULL, ZTB_ERR_CRYPTO);
        enc = PKCS8_set0_pbe(pass, (int)passlen, p8, pbe);
        ZTB_CHECK(rv, enc != NULL, ZTB_ERR_CRYPTO);
        pbe = NULL; /* owned by enc now */
        ZTB_OSSL(rv, PEM_write_bio_PKCS8(bio, enc));
    }
    ZTB_TRY(rv, drain_bio(bio, out));
out:
    X509_SIG_free(enc);
    X509_ALGOR_free(pbe);
    PKCS8_PRIV_KEY_INFO_free(p8);
    BIO_free(bio);
    if (rv != ZTB_OK)
        ERR_clear_error();
    return rv;
}

ztb_err ztb_key_public_pem(const ztb_key *k, ztb_buf *out)
{
    ZTB_ENSURE(k != NULL && out != NULL, ZTB_ERR_INVALID_ARG);
    ztb_err rv = ZTB_OK;
    BIO *bio = BIO_new(BIO_s_mem());
    ZTB_CHECK(rv, bio != NULL, ZTB_ERR_NOMEM);
    ZTB_OSSL(rv, PEM_write_bio_PUBKEY(bio, k->pkey));
    ZTB_TRY(rv, drain_bio(bio, out));
out:
    BIO_free(bio);
    if (rv != ZTB_OK)
        ERR_clear_error();
    return rv;
}

ztb_err ztb_key_load_file(const char *path, const void *pass, size_t passlen, ztb_key **out)
{
    ZTB_ENSURE(path != NULL && out != NULL, ZTB_ERR_INVALID_ARG);
    ztb_buf b;
    ztb_buf_init_secret(&b, ZTB_KEY_PEM_MAX);
    ztb_err rv = ztb_keyfile_read(AT_FDCWD, path, ZTB_KEY_PEM_MAX, ZTB_KEYFILE_SECRET, &b);
    if (rv == ZTB_OK)
        rv = ztb_key_from_pem(b.data, b.len, pass, passlen, out);
    ztb_buf_free(&b);
    return rv;
}

ztb_err ztb_key_save_file(const ztb_key *k, const char *path, const void *pass, size_t passlen,
                          int replace)
{
    ZTB_ENSURE(k != NULL && path != NULL, ZTB_ERR_INVALID_ARG);
    ztb_err rv = ZTB_OK;
    int dirfd = -1;
    ztb_buf pem;
    ztb_buf_init_secret(&pem, ZTB_KEY_PEM_MAX);

    /* split path into directory and file name; write relative to the dir */
    const char *slash = strrchr(path, '/');
    const char *name = slash ? slash + 1 : path;
    char dir[4096];
    if (slash == NULL) {
        strcpy(dir, ".");
    } else {
        size_t dlen = slash == path ? 1 : (size_t)(slash - path);
        ZTB_CHECK(rv, dlen < sizeof(dir), ZTB_ERR_INVALID_ARG);
        memcpy(dir, path, dlen);
        dir[dlen] = '\0';
    }
    ZTB_CHECK(rv, name[0] != '\0', ZTB_ERR_INVALID_ARG);
    ZTB_TRY(rv, ztb_key_private_pem(k, pass, passlen, &pem));
    dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    ZTB_CHECK(rv, dirfd >= 0, ZTB_ERR_NOT_FOUND);
    if (replace)
        ZTB_TRY(rv, ztb_keyfile_write_atomic(dirfd, name, pem.data, pem.len, 0600));
    else
        ZTB_TRY(rv, ztb_keyfile_write_new(dirfd, name, pem.data, pem.len, 0600));
out:
    if (dirfd >= 0)
        close(dirfd);
    ztb_buf_free(&pem);
    return rv;
}

ztb_key *ztb_key_ref(ztb_key *k)
{
    if (k != NULL)
        atomic_fetch_add_explicit(&k->refs, 1, memory_order_relaxed);
    return k;
}

void ztb_key_free(ztb_key *k)
{
    if (k == NULL)
        return;
    if (atomic_fetch_sub_explicit(&k->refs, 1, memory_order_acq_rel) != 1)
        return;
    /* per-thread contexts that still hold pkey drop it on their next use */
    if (atomic_load(&k->cached))
        atomic_fetch_add(&flush_gen, 1);
    EVP_PKEY_free(k->pkey);
    ztb_wipe(k, sizeof(*k));
    free(k);
}

const char *ztb_key_kid(const ztb_key *k)
{
    return k->kid;
}

ztb_alg ztb_key_alg(const ztb_key *k)
{
    return k->alg;
}

int ztb_key_has_private(const ztb_key *k)
{
    return k->has_private;
}

void ztb_key_public_xy(const ztb_key *k, uint8_t x[ZTB_P256_COORD_LEN],
                       uint8_t y[ZTB_P256_COORD_LEN])
{
    memcpy(x, k->x, ZTB_P256_COORD_LEN);
    memcpy(y, k->y, ZTB_P256_COORD_LEN);
}

int ztb_key_same_public(const ztb_key *a, const ztb_key *b)
{
    return a != NULL && b != NULL && memcmp(a->x, b->x, ZTB_P256_COORD_LEN) == 0 &&
           memcmp(a->y, b->y, ZTB_P256_COORD_LEN) == 0;
}

EVP_PKEY *ztb_key_evp(const ztb_key *k)
{
    return k->pkey;
}

uint64_t ztb_key_serial(const ztb_key *k)
{
    return k->serial;
}

void ztb_key_note_cached(const ztb_key *k)
{
    /* the flag only ever goes 0 -> 1; the key is otherwise read-only */
    atomic_store(&((ztb_key *)k)->cached, 1);
}

uint64_t ztb_key_flush_generation(void)
{
    return atomic_load_explicit(&flush_gen, memory_order_acquire);
}
