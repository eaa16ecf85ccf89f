/*
 * ca.c - the agent CA (see ca.h).
 *
 * Certificates are built field by field with OpenSSL's X509 API. Fixed
 * extensions use OpenSSL's v3 configuration strings (constants only); the
 * subjectAltName, which carries caller data, is built as a GENERAL_NAMES
 * object so no agent-supplied byte is ever parsed as configuration.
 * Verification uses an X509_STORE built once per CA (read-only afterwards,
 * so shared between threads) and a fresh X509_STORE_CTX per call. It must
 * never sign anything that did not pass ztb_csr_check for the agent named.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "common/guard.h"
#include "common/secret.h"
#include "pki/ca.h"
#include "pki/cert.h"
#include "pki/csr.h"
#include "pki/es256.h"
#include "pki/key.h"
#include "pki/keyfile.h"
#include "pki/pem.h"

#define CA_DIR      "ca"
#define CA_META     "ca.json"
#define CA_KEY      "ca.key.pem"
#define CA_CERT     "ca.cert.pem"
#define CA_ROOT     "root.cert.pem"
#define CA_FORMAT   "ztb-ca"
#define CA_META_MAX 4096

struct ztb_ca {
    char td[ZTB_TRUST_DOMAIN_MAX + 1];
    int is_root;
    ztb_key *key;           /* the CA's P-256 private key */
    X509 *cert;             /* the CA certificate */
    X509 *root;             /* the trust anchor (== cert for a root) */
    X509_STORE *store;      /* trusts root only */
    STACK_OF(X509) * chain; /* untrusted intermediates to offer: cert, for an intermediate */
};

/* ---- small helpers ---- */

static ztb_err set_validity(X509 *x, int64_t from, int64_t to)
{
    ZTB_ENSURE(ASN1_TIME_set(X509_getm_notBefore(x), (time_t)from) != NULL, ZTB_ERR_CRYPTO);
    ZTB_ENSURE(ASN1_TIME_set(X509_getm_notAfter(x), (time_t)to) != NULL, ZTB_ERR_CRYPTO);
    return ZTB_OK;
}

/* A random positive 128-bit serial number (never zero). */
static ztb_err set_random_serial(X509 *x)
{
    uint8_t r[16];
    ztb_err rv = ZTB_OK;
    BIGNUM *bn = NULL;
    do {
        ZTB_GUARD(ztb_random(r, sizeof(r)));
        BN_free(bn);
        bn = BN_bin2bn(r, sizeof(r), NULL);
        ZTB_CHECK(rv, bn != NULL, ZTB_ERR_NOMEM);
    } while (BN_is_zero(bn));
    ZTB_CHECK(rv, BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) != NULL, ZTB_ERR_CRYPTO);
out:
    BN_free(bn);
    return rv;
}

/* Add a fixed extension written in OpenSSL's configuration syntax. */
static ztb_err add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    ZTB_ENSURE(ext != NULL, ZTB_ERR_CRYPTO);
    int ok = X509_add_ext(x, ext, -1) == 1;
    X509_EXTENSION_free(ext);
    return ok ? ZTB_OK : ZTB_ERR_CRYPTO;
}

/* Add a subjectAltName with one URI, built as data (never parsed). */
static ztb_err add_san_uri(X509 *x, const char *uri, int critical)
{
    ztb_err rv = ZTB_OK;
    GENERAL_NAMES *names = GENERAL_NAMES_new();
    GENERAL_NAME *gn = GENERAL_NAME_new();
    ASN1_IA5STRING *ia5 = ASN1_IA5STRING_new();
    ZTB_CHECK(rv, names != NULL && gn != NULL && ia5 != NULL, ZTB_ERR_NOMEM);
    ZTB_OSSL(rv, ASN1_STRING_set(ia5, uri, (int)strlen(uri)));
    GENERAL_NAME_set0_value(gn, GEN_URI, ia5);
    ia5 = NULL;
    ZTB_CHECK(rv, sk_GENERAL_NAME_push(names, gn) > 0, ZTB_ERR_NOMEM);
    gn = NULL;
    ZTB_OSSL(rv, X509_add1_ext_i2d(x, NID_subject_alt_name, names, critical, X509V3_ADD_DEFAULT));
out:
    ASN1_IA5STRING_free(ia5);
    GENERAL_NAME_free(gn);
    GENERAL_NAMES_free(names);
    return rv;
}

static ztb_err cert_to_pem(X509 *x, ztb_buf *out)
{
    ztb_err rv = ZTB_OK;
    BIO *bio = BIO_new(BIO_s_mem());
    ZTB_CHECK(rv, bio != NULL, ZTB_ERR_NOMEM);
    ZTB_OSSL(rv, PEM_write_bio_X509(bio, x));
    char *p = NULL;
    long len = BIO_get_mem_data(bio, &p);
    ZTB_CHECK(rv, len > 0, ZTB_ERR_CRYPTO);
    rv = ztb_buf_append(out, p, (size_t)len);
out:
    BIO_free(bio);
    return rv;
}

/* A CA subject: O=ztb, CN="ztb agent CA <random>" (distinct per CA). */
static ztb_err ca_subject(X509 *x)
{
    uint8_t r[4];
    char cn[64];
    ZTB_GUARD(ztb_random(r, sizeof(r)));
    snprintf(cn, sizeof(cn), "ztb agent CA %02x%02x%02x%02x", r[0], r[1], r[2], r[3]);
    X509_NAME *name = X509_get_subject_name(x);
    ZTB_ENSURE(X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8, (const unsigned char *)"ztb",
                                          -1, -1, 0) == 1,
               ZTB_ERR_CRYPTO);
    ZTB_ENSURE(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1,
                                          -1, 0) == 1,
               ZTB_ERR_CRYPTO);
    return ZTB_OK;
}

/* Verify that cert chains to root (the CA's own consistency), ignoring time. */
static ztb_err check_ca_chain(X509 *cert, X509 *root)
{
    ztb_err rv = ZTB_OK;
    X509_STORE *st = X509_STORE_new();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    ZTB_CHECK(rv, st != NULL && ctx != NULL, ZTB_ERR_NOMEM);
    ZTB_OSSL(rv, X509_STORE_add_cert(st, root));
    ZTB_OSSL(rv, X509_STORE_CTX_init(ctx, st, cert, NULL));
    X509_VERIFY_PARAM_set_flags(X509_STORE_CTX_get0_param(ctx),
                                X509_V_FLAG_X509_STRICT | X509_V_FLAG_NO_CHECK_TIME);
    ZTB_CHECK(rv, X509_verify_cert(ctx) == 1, ZTB_ERR_CERT);
    ZTB_CHECK(rv, X509_check_ca(cert) >= 1, ZTB_ERR_CERT);
out:
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(st);
    return rv;
}

/* Build the read-only verification state of a CA whose fields are set. */
static ztb_err finish_ca(ztb_ca *ca)
{
    ZTB_GUARD(check_ca_chain(ca->cert, ca->root));
    /* the CA's key is the certificate's key, and its name is the trust domain */
    if (ca->key != NULL)
        ZTB_ENSURE(X509_check_private_key(ca->cert, ztb_key_evp(ca->key)) == 1, ZTB_ERR_CERT);
    char want[ZTB_TRUST_DOMAIN_MAX + 16];
    snprintf(want, sizeof(want), "spiffe://%s", ca->td);
    ZTB_ENSURE(ztb_cert_only_uri_is(ca->cert, want), ZTB_ERR_CERT);
    ca->is_root = X509_cmp(ca->cert, ca->root) == 0;
    /* an operator root limited to pathlen 0 could never validate our documents */
    if (!ca->is_root) {
        long pl = X509_get_pathlen(ca->root);
        ZTB_ENSURE(pl < 0 || pl >= 1, ZTB_ERR_CERT);
    }

    ca->store = X509_STORE_new();
    ca->chain = sk_X509_new_null();
    ZTB_ENSURE(ca->store != NULL && ca->chain != NULL, ZTB_ERR_NOMEM);
    ZTB_ENSURE(X509_STORE_add_cert(ca->store, ca->root) == 1, ZTB_ERR_CRYPTO);
    if (!ca->is_root)
        ZTB_ENSURE(sk_X509_push(ca->chain, ca->cert) > 0, ZTB_ERR_NOMEM);
    return ZTB_OK;
}

void ztb_ca_free(ztb_ca *ca)
{
    if (ca == NULL)
        return;
    sk_X509_free(ca->chain); /* holds no references of its own */
    X509_STORE_free(ca->store);
    X509_free(ca->cert);
    X509_free(ca->root);
    ztb_key_free(ca->key);
    free(ca);
}

/* ---- creation ---- */

/* The CA certificate for key, signed by signer (issuer NULL: self-signed). */
static ztb_err make_ca_cert(ztb_ca *ca, X509 *issuer, EVP_PKEY *signer, int64_t now,
                            int64_t not_after, X509 **out)
{
    ztb_err rv = ZTB_OK;
    char uri[ZTB_TRUST_DOMAIN_MAX + 16];
    X509 *x = X509_new();
    ZTB_CHECK(rv, x != NULL, ZTB_ERR_NOMEM);
    ZTB_OSSL(rv, X509_set_version(x, X509_VERSION_3));
    ZTB_TRY(rv, set_random_serial(x));
    ZTB_TRY(rv, ca_subject(x));
    ZTB_OSSL(rv, X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer)
                                                : X509_get_subject_name(x)));
    ZTB_TRY(rv, set_validity(x, now, not_after));
    ZTB_OSSL(rv, X509_set_pubkey(x, ztb_key_evp(ca->key)));
    X509 *iss = issuer ? issuer : x;
    ZTB_TRY(rv, add_ext(x, iss, NID_basic_constraints, "critical,CA:TRUE,pathlen:0"));
    ZTB_TRY(rv, add_ext(x, iss, NID_key_usage, "critical,keyCertSign,cRLSign"));
    ZTB_TRY(rv, add_ext(x, iss, NID_subject_key_identifier, "hash"));
    if (issuer != NULL)
        ZTB_TRY(rv, add_ext(x, iss, NID_authority_key_identifier, "keyid:always"));
    snprintf(uri, sizeof(uri), "spiffe://%s", ca->td);
    ZTB_TRY(rv, add_san_uri(x, uri, 0));
    /* SHA-256 for EC and RSA signers; others (e.g. Ed25519) have no digest */
    const EVP_MD *md =
        EVP_PKEY_is_a(signer, "EC") || EVP_PKEY_is_a(signer, "RSA") ? EVP_sha256() : NULL;
    ZTB_CHECK(rv, X509_sign(x, signer, md) > 0, ZTB_ERR_CRYPTO);
    *out = x;
    x = NULL;
out:
    X509_free(x);
    return rv;
}

ztb_err ztb_ca_create(const ztb_ca_opts *o, int64_t now, ztb_ca **out)
{
    ZTB_ENSURE(o != NULL && out != NULL && now >= 0, ZTB_ERR_INVALID_ARG);
    ZTB_GUARD(ztb_spiffe_check_trust_domain(o->trust_domain));
    int intermediate = o->root_cert_pem != NULL || o->root_key_pem != NULL;
    ZTB_ENSURE(!intermediate || (o->root_cert_pem != NULL && o->root_key_pem != NULL),
               ZTB_ERR_INVALID_ARG);
    int64_t validity = o->validity_s;
    if (validity == 0)
        validity =
            intermediate ? ZTB_CA_DEFAULT_INTERMEDIATE_VALIDITY_S : ZTB_CA_DEFAULT_ROOT_VALIDITY_S;
    ZTB_ENSURE(validity > 0 && validity <= 30LL * 366 * 24 * 3600, ZTB_ERR_INVALID_ARG);

    ztb_err rv = ZTB_OK;
    X509 *root = NULL;
    EVP_PKEY *root_key = NULL;
    ztb_ca *ca = calloc(1, sizeof(*ca));
    ZTB_CHECK(rv, ca != NULL, ZTB_ERR_NOMEM);
    snprintf(ca->td, sizeof(ca->td), "%s", o->trust_domain);
    ZTB_TRY(rv, ztb_key_generate(&ca->key));

    if (!intermediate) {
        ZTB_TRY(rv, make_ca_cert(ca, NULL, ztb_key_evp(ca->key), now, now + validity, &ca->cert));
        ZTB_CHECK(rv, X509_up_ref(ca->cert) == 1, ZTB_ERR_CRYPTO);
        ca->root = ca->cert;
    } else {
        ZTB_TRY(rv, ztb_cert_from_pem(o->root_cert_pem, o->root_cert_len, &root));
        rv = ztb_pem_read_key(o->root_key_pem, o->root_key_len, o->root_pass, o->root_pass_len, 0,
                              &root_key, NULL);
        if (rv != ZTB_OK)
            goto out;
        /* the operator's pair must belong together and be a CA valid now */
        ZTB_CHECK(rv, X509_check_private_key(root, root_key) == 1, ZTB_ERR_CERT);
        ZTB_CHECK(rv, X509_check_ca(root) >= 1, ZTB_ERR_CERT);
        int64_t rnb = ztb_cert_time(X509_get0_notBefore(root));
        int64_t rna = ztb_cert_time(X509_get0_notAfter(root));
        ZTB_CHECK(rv, rnb <= now && now < rna, ZTB_ERR_CERT);
        int64_t na = now + validity < rna ? now + validity : rna;
        ZTB_TRY(rv, make_ca_cert(ca, root, root_key, now, na, &ca->cert));
        ca->root = root;
        root = NULL;
    }
    ZTB_TRY(rv, finish_ca(ca));
    *out = ca;
    ca = NULL;
out:
    X509_free(root);
    EVP_PKEY_free(root_key);
    ztb_ca_free(ca);
    if (rv != ZTB_OK)
        ERR_clear_error();
    return rv;
}

/* ---- files ---- */

ztb_err ztb_ca_save(const ztb_ca *ca, const char *dir, const void *pass, size_t passlen)
{
    ZTB_ENSURE(ca != NULL && dir != NULL && (pass != NULL || passlen == 0), ZTB_ERR_INVALID_ARG);
    ztb_err rv = ZTB_OK;
    int dfd = -1, cfd = -1;
    ztb_buf key, cert, root, meta;
    ztb_buf_init_secret(&key, ZTB_KEY_PEM_MAX);
    ztb_buf_init(&cert, ZTB_CA_CERT_MAX);
    ztb_buf_init(&root, ZTB_CA_CERT_MAX);
    ztb_buf_init(&meta, CA_META_MAX);

    ZTB_TRY(rv, ztb_keyfile_make_dir(AT_FDCWD, dir, &dfd));
    ZTB_TRY(rv, ztb_keyfile_make_dir(dfd, CA_DIR, &cfd));
    struct stat st;
    ZTB_CHECK(rv, fstatat(cfd, CA_META, &st, AT_SYMLINK_NOFOLLOW) != 0, ZTB_ERR_EXISTS);
    ZTB_TRY(rv, ztb_key_private_pem(ca->key, pass, passlen, &key));
    ZTB_TRY(rv, cert_to_pem(ca->cert, &cert));
    ZTB_TRY(rv, cert_to_pem(ca->root, &root));
    ztb_buf_printf(&meta,
                   "{\"format\": \"%s\", \"version\": 1, \"trust_domain\": \"%s\", "
                   "\"kind\": \"%s\", \"encrypted\": %s}\n",
                   CA_FORMAT, ca->td, ca->is_root ? "root" : "intermediate",
                   passlen > 0 ? "true" : "false");
    ZTB_TRY(rv, ztb_buf_error(&meta));
    /* leftovers of an earlier crashed save are replaced; ca.json commits */
    ZTB_TRY(rv, ztb_keyfile_write_atomic(cfd, CA_KEY, key.data, key.len, 0600));
    ZTB_TRY(rv, ztb_keyfile_write_atomic(cfd, CA_CERT, cert.data, cert.len, 0600));
    ZTB_TRY(rv, ztb_keyfile_write_atomic(cfd, CA_ROOT, root.data, root.len, 0600));
    ZTB_TRY(rv, ztb_keyfile_write_new(cfd, CA_META, meta.data, meta.len, 0600));
out:
    if (cfd >= 0)
        close(cfd);
    if (dfd >= 0)
        close(dfd);
    ztb_buf_free(&key);
    ztb_buf_free(&cert);
    ztb_buf_free(&root);
    ztb_buf_free(&meta);
    return rv;
}

static ztb_err parse_meta(const ztb_buf *b, char *td, size_t tdcap, int *is_root, int *encrypted)
{
    static const char *const allowed[] = {"format", "version", "trust_domain", "kind", "encrypted"};
    ztb_err rv = ZTB_OK;
    json_error_t jerr;
    json_t *j = NULL;
    ZTB_CHECK(rv, memchr(b->data, '\0', b->len) == NULL, ZTB_ERR_MALFORMED); /* see jwk.c */
    j = json_loadb((const char *)b->data, b->len, JSON_REJECT_DUPLICATES, &jerr);
    ZTB_CHECK(rv, json_is_object(j), ZTB_ERR_MALFORMED);
    const char *name;
    json_t *v;
    json_object_foreach(j, name, v)
    {
        size_t i = 0;
        while (i < ZTB_ARRAY_LEN(allowed) && strcmp(name, allowed[i]) != 0)
            i++;
        ZTB_CHECK(rv, i < ZTB_ARRAY_LEN(allowed), ZTB_ERR_MALFORMED);
    }
    const char *fmt = json_string_value(json_object_get(j, "format"));
    const char *t = json_string_value(json_object_get(j, "trust_domain"));
    const char *kind = json_string_value(json_object_get(j, "kind"));
    const json_t *ver = json_object_get(j, "version");
    const json_t *enc = json_object_get(j, "encrypted");
    ZTB_CHECK(rv, fmt != NULL && strcmp(fmt, CA_FORMAT) == 0, ZTB_ERR_MALFORMED);
    ZTB_CHECK(rv, json_is_integer(ver) && json_integer_value(ver) == 1, ZTB_ERR_UNSUPPORTED);
    ZTB_CHECK(rv, t != NULL && ztb_spiffe_check_trust_domain(t) == ZTB_OK, ZTB_ERR_MALFORMED);
    ZTB_CHECK(rv, kind != NULL && (!strcmp(kind, "root") || !strcmp(kind, "intermediate")),
              ZTB_ERR_MALFORMED);
    ZTB_CHECK(rv, json_is_boolean(enc), ZTB_ERR_MALFORMED);
    snprintf(td, tdcap, "%s", t);
    *is_root = strcmp(kind, "root") == 0;
    *encrypted = json_is_true(enc);
out:
    json_decref(j);
    return rv;
}

static ztb_err load(const char *dir, int with_key, const void *pass, size_t passlen, ztb_ca **out)
{
    ZTB_ENSURE(dir != NULL && out != NULL && (pass != NULL || passlen == 0), ZTB_ERR_INVALID_ARG);
    ztb_err rv = ZTB_OK;
    int dfd = -1, cfd = -1, is_root = 0, enc = 0, key_enc = 0;
    ztb_ca *ca = NULL;
    ztb_buf meta, key, cert, root;
    ztb_buf_init(&meta, CA_META_MAX);
    ztb_buf_init_secret(&key, ZTB_KEY_PEM_MAX);
    ztb_buf_init(&cert, ZTB_CA_CERT_MAX);
    ztb_buf_init(&root, ZTB_CA_CERT_MAX);

    ZTB_TRY(rv, ztb_keyfile_open_dir(dir, &dfd));
    ZTB_TRY(rv, ztb_keyfile_open_dir_at(dfd, CA_DIR, &cfd));
    ZTB_TRY(rv, ztb_keyfile_read(cfd, CA_META, CA_META_MAX, ZTB_KEYFILE_PUBLIC, &meta));
    ca = calloc(1, sizeof(*ca));
    ZTB_CHECK(rv, ca != NULL, ZTB_ERR_NOMEM);
    ZTB_TRY(rv, parse_meta(&meta, ca->td, sizeof(ca->td), &is_root, &enc));
    ZTB_TRY(rv, ztb_keyfile_read(cfd, CA_CERT, ZTB_CA_CERT_MAX, ZTB_KEYFILE_PUBLIC, &cert));
    ZTB_TRY(rv, ztb_keyfile_read(cfd, CA_ROOT, ZTB_CA_CERT_MAX, ZTB_KEYFILE_PUBLIC, &root));
    if (with_key) {
        ZTB_TRY(rv, ztb_keyfile_read(cfd, CA_KEY, ZTB_KEY_PEM_MAX, ZTB_KEYFILE_SECRET, &key));
        ZTB_TRY(rv, ztb_key_from_pem_ex(key.data, key.len, pass, passlen, &ca->key, &key_enc));
        ZTB_CHECK(rv, key_enc == enc && ztb_key_has_private(ca->key), ZTB_ERR_KEY);
    }
    ZTB_TRY(rv, ztb_cert_from_pem(cert.data, cert.len, &ca->cert));
    ZTB_TRY(rv, ztb_cert_from_pem(root.data, root.len, &ca->root));
    ZTB_TRY(rv, finish_ca(ca));
    ZTB_CHECK(rv, ca->is_root == is_root, ZTB_ERR_CERT);
    *out = ca;
    ca = NULL;
out:
    if (cfd >= 0)
        close(cfd);
    if (dfd >= 0)
        close(dfd);
    ztb_ca_free(ca);
    ztb_buf_free(&meta);
    ztb_buf_free(&key);
    ztb_buf_free(&cert);
    ztb_buf_free(&root);
    if (rv != ZTB_OK)
        ERR_clear_error();
    return rv;
}

ztb_err ztb_ca_load(const char *dir, const void *pass, size_t passlen, ztb_ca **out)
{
    return load(dir, 1, pass, passlen, out);
}

ztb_err ztb_ca_load_public(const char *dir, ztb_ca **out)
{
    return load(dir, 0, NULL, 0, out);
}

/* ---- facts ---- */

const char *ztb_ca_trust_domain(const ztb_ca *ca)
{
    return ca->td;
}

static void name_line(const X509_NAME *n, char *out, size_t cap)
{
    out[0] = '\0';
    BIO *bio = BIO_new(BIO_s_mem());
    if (bio == NULL)
        return;
    if (X509_NAME_print_ex(bio, n, 0, XN_FLAG_RFC2253) >= 0) {
        char *p = NULL;
        long len = BIO_get_mem_data(bio, &p);
        if (len > 0)
            snprintf(out, cap, "%.*s", (int)len, p);
    }
    BIO_free(bio);
}

ztb_err ztb_ca_get_info(const ztb_ca *ca, ztb_ca_info *info)
{
    ZTB_ENSURE(ca != NULL && info != NULL, ZTB_ERR_INVALID_ARG);
    memset(info, 0, sizeof(*info));
    snprintf(info->trust_domain, sizeof(info->trust_domain), "%s", ca->td);
    info->is_root = ca->is_root;
    name_line(X509_get_subject_name(ca->cert), info->subject, sizeof(info->subject));
    name_line(X509_get_issuer_name(ca->cert), info->issuer, sizeof(info->issuer));
    info->not_before = ztb_cert_time(X509_get0_notBefore(ca->cert));
    info->not_after = ztb_cert_time(X509_get0_notAfter(ca->cert));
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    ZTB_ENSURE(X509_digest(ca->cert, EVP_sha256(), md, &mdlen) == 1 && mdlen == 32, ZTB_ERR_CRYPTO);
    for (unsigned i = 0; i < mdlen; i++)
        snprintf(info->fingerprint + 3 * i, 4, i + 1 < mdlen ? "%02X:" : "%02X", md[i]);
    return ZTB_OK;
}

ztb_err ztb_ca_cert_pem(const ztb_ca *ca, ztb_buf *out)
{
    ZTB_ENSURE(ca != NULL && out != NULL, ZTB_ERR_INVALID_ARG);
    return cert_to_pem(ca->cert, out);
}

ztb_err ztb_ca_root_pem(const ztb_ca *ca, ztb_buf *out)
{
    ZTB_ENSURE(ca != NULL && out != NULL, ZTB_ERR_INVALID_ARG);
    return cert_to_pem(ca->root, out);
}

/* ---- issuing ---- */

/* The local signer: the CA's own private key. */
static ztb_err sign_with_ca_key(void *arg, const uint8_t digest[32], uint8_t *der, size_t *derlen)
{
    return ztb_es256_sign_digest(arg, digest, der, derlen);
}

/*
 * Sign x through fn: set both signature algorithm fields to
 * ecdsa-with-SHA256, hash the DER of the to-be-signed part, let fn sign the
 * digest, and install the signature. OpenSSL 3.0 has no setter for these
 * fields (X509_sign wants the private key), so the const accessors are
 * written through, as OpenSSL's own X509_sign does inside the library.
 * Then the result must verify with the CA's public key: a wrong signer (or
 * key) gives ZTB_ERR_SIGNATURE, never a certificate.
 */
static ztb_err sign_tbs(X509 *x, X509 *ca_cert, ztb_ca_sign_fn fn, void *arg)
{
    ztb_err rv = ZTB_OK;
    unsigned char *tbs = NULL;
    uint8_t digest[32], der[ZTB_ES256_DER_MAX];
    size_t derlen = sizeof(der);
    const ASN1_BIT_STRING *csig = NULL;
    const X509_ALGOR *calg = NULL;
    X509_get0_signature(&csig, &calg, x);
    X509_ALGOR *inner = (X509_ALGOR *)X509_get0_tbs_sigalg(x); /* NOLINT: see above */
    X509_ALGOR *outer = (X509_ALGOR *)calg;                    /* NOLINT */
    ASN1_BIT_STRING *sig = (ASN1_BIT_STRING *)csig;            /* NOLINT */
    ZTB_CHECK(rv, inner != NULL && outer != NULL && sig != NULL, ZTB_ERR_CRYPTO);
    ZTB_OSSL(rv, X509_ALGOR_set0(inner, OBJ_nid2obj(NID_ecdsa_with_SHA256), V_ASN1_UNDEF, NULL));
    ZTB_OSSL(rv, X509_ALGOR_set0(outer, OBJ_nid2obj(NID_ecdsa_with_SHA256), V_ASN1_UNDEF, NULL));
    int n = i2d_re_X509_tbs(x, &tbs);
    ZTB_CHECK(rv, n > 0, ZTB_ERR_CRYPTO);
    ZTB_TRY(rv, ztb_es256_sha256(tbs, (size_t)n, digest));
    ZTB_TRY(rv, fn(arg, digest, der, &derlen));
    ZTB_CHECK(rv, derlen > 0 && derlen <= sizeof(der), ZTB_ERR_SIG_FORMAT);
    ZTB_OSSL(rv, ASN1_BIT_STRING_set(sig, der, (int)derlen));
    /* a whole number of bytes: no unused bits */
    sig->flags &= ~(ASN1_STRING_FLAG_BITS_LEFT | 0x07);
    sig->flags |= ASN1_STRING_FLAG_BITS_LEFT;
    EVP_PKEY *capub = X509_get0_pubkey(ca_cert);
    ZTB_CHECK(rv, capub != NULL && X509_verify(x, capub) == 1, ZTB_ERR_SIGNATURE);
out:
    OPENSSL_free(tbs);
    return rv;
}

ztb_err ztb_ca_issue_with(const ztb_ca *ca, const void *csr, size_t csr_len, const char *name,
                          int64_t now, int64_t ttl_s, ztb_ca_sign_fn fn, void *arg, ztb_buf *out)
{
    ZTB_ENSURE(ca != NULL && csr != NULL && name != NULL && out != NULL && fn != NULL,
               ZTB_ERR_INVALID_ARG);
    if (ttl_s == 0)
        ttl_s = ZTB_CA_DEFAULT_LEAF_TTL_S;
    ZTB_ENSURE(ttl_s > 0 && ttl_s <= ZTB_CA_MAX_LEAF_TTL_S, ZTB_ERR_INVALID_ARG);
    ztb_err rv = ZTB_OK;
    char idstore[ZTB_SPIFFE_ID_MAX + 1];
    ztb_buf id;
    ztb_key *req_key = NULL, *pub = NULL;
    X509 *x = NULL;
    ztb_buf_init_fixed(&id, idstore, sizeof(idstore));
    ZTB_TRY(rv, ztb_spiffe_agent_id(ca->td, name, &id));
    ZTB_TRY(rv, ztb_csr_check(csr, csr_len, idstore, &req_key));
    /* the key as P-256 coordinates, re-encoded (named curve, uncompressed
     * point, RFC 5480): never the CSR's encoding of it (explicit curve
     * parameters, a compressed or hybrid point) */
    ZTB_TRY(rv, ztb_key_public_only(req_key, &pub));

    int64_t cnb = ztb_cert_time(X509_get0_notBefore(ca->cert));
    int64_t cna = ztb_cert_time(X509_get0_notAfter(ca->cert));
    ZTB_CHECK(rv, cnb <= now && now < cna, ZTB_ERR_STATE);
    int64_t na = now + ttl_s < cna ? now + ttl_s : cna;

    x = X509_new();
    ZTB_CHECK(rv, x != NULL, ZTB_ERR_NOMEM);
    ZTB_OSSL(rv, X509_set_version(x, X509_VERSION_3));
    ZTB_TRY(rv, set_random_serial(x));
    ZTB_OSSL(rv, X509_set_issuer_name(x, X509_get_subject_name(ca->cert)));
    /* the subject stays empty: the SPIFFE ID is the only name */
    ZTB_TRY(rv, set_validity(x, now, na));
    ZTB_OSSL(rv, X509_set_pubkey(x, ztb_key_evp(pub)));
    ZTB_TRY(rv, add_ext(x, ca->cert, NID_basic_constraints, "critical,CA:FALSE"));
    ZTB_TRY(rv, add_ext(x, ca->cert, NID_key_usage, "critical,digitalSignature"));
    ZTB_TRY(rv, add_ext(x, ca->cert, NID_ext_key_usage, "clientAuth"));
    ZTB_TRY(rv, add_ext(x, ca->cert, NID_subject_key_identifier, "hash"));
    ZTB_TRY(rv, add_ext(x, ca->cert, NID_authority_key_identifier, "keyid:always"));
    /* critical because the subject is empty (RFC 5280 §4.2.1.6) */
    ZTB_TRY(rv, add_san_uri(x, idstore, 1));
    ZTB_TRY(rv, sign_tbs(x, ca->cert, fn, arg));
    ZTB_TRY(rv, cert_to_pem(x, out));
out:
    X509_free(x);
    ztb_key_free(pub);
    ztb_key_free(req_key);
    if (rv != ZTB_OK)
        ERR_clear_error();
    return rv;
}

ztb_err ztb_ca_issue(const ztb_ca *ca, const void *csr, size_t csr_len, const char *name,
                     int64_t now, int64_t ttl_s, ztb_buf *out)
{
    ZTB_ENSURE(ca != NULL, ZTB_ERR_INVALID_ARG);
    ZTB_ENSURE(ca->key != NULL, ZTB_ERR_KEY); /* loaded public-only */
    return ztb_ca_issue_with(ca, csr, csr_len, name, now, ttl_s, sign_with_ca_key, ca->key, out);
}

ztb_err ztb_ca_sign_digest(const ztb_ca *ca, const uint8_t digest[32], uint8_t *der, size_t *derlen)
{
    ZTB_ENSURE(ca != NULL && digest != NULL, ZTB_ERR_INVALID_ARG);
    ZTB_ENSURE(ca->key != NULL, ZTB_ERR_KEY);
    return ztb_es256_sign_digest(ca->key, digest, der, derlen);
}

/* ---- verifying ---- */

ztb_err ztb_ca_verify_identity(const ztb_ca *ca, const void *doc, size_t len, int64_t now,
                               char *name, size_t name_cap)
{
    ZTB_ENSURE(ca != NULL && doc != NULL && name != NULL, ZTB_ERR_INVALID_ARG);
    ZTB_ENSURE(name_cap > ZTB_AGENT_NAME_MAX, ZTB_ERR_INVALID_ARG);
    ZTB_ENSURE(len <= ZTB_CA_CERT_MAX, ZTB_ERR_TOO_LARGE);
    ztb_err rv = ZTB_OK;
    X509 *leaf = NULL;
    STACK_OF(X509) *untrusted = sk_X509_new_null();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    GENERAL_NAMES *names = NULL;
    ztb_key *key = NULL;
    ZTB_CHECK(rv, untrusted != NULL && ctx != NULL, ZTB_ERR_NOMEM);
    ZTB_TRY(rv, ztb_cert_read_chain(doc, len, &leaf, untrusted));
    for (int i = 0; i < sk_X509_num(ca->chain); i++) {
        X509 *c = sk_X509_value(ca->chain, i);
        ZTB_CHECK(rv, X509_up_ref(c) == 1, ZTB_ERR_CRYPTO);
        if (sk_X509_push(untrusted, c) <= 0) {
            X509_free(c);
            ZTB_CHECK(rv, 0, ZTB_ERR_NOMEM);
        }
    }

    ZTB_OSSL(rv, X509_STORE_CTX_init(ctx, ca->store, leaf, untrusted));
    X509_VERIFY_PARAM *vp = X509_STORE_CTX_get0_param(ctx);
    X509_VERIFY_PARAM_set_time(vp, (time_t)now);
    X509_VERIFY_PARAM_set_flags(vp, X509_V_FLAG_X509_STRICT);
    X509_VERIFY_PARAM_set_depth(vp, 2);
    ZTB_OSSL(rv, X509_VERIFY_PARAM_set_purpose(vp, X509_PURPOSE_SSL_CLIENT));
    ZTB_CHECK(rv, X509_verify_cert(ctx) == 1, ZTB_ERR_CERT_CHAIN);
    /* issued by this agent CA itself, not by anything else the root signed */
    STACK_OF(X509) *chain = X509_STORE_CTX_get0_chain(ctx);
    ZTB_CHECK(rv, chain != NULL && sk_X509_num(chain) >= 2, ZTB_ERR_CERT_CHAIN);
    ZTB_CHECK(rv, X509_cmp(sk_X509_value(chain, 1), ca->cert) == 0, ZTB_ERR_CERT_CHAIN);

    ZTB_CHECK(rv, X509_check_ca(leaf) == 0, ZTB_ERR_CERT);
    EVP_PKEY *pk = X509_get0_pubkey(leaf);
    ZTB_CHECK(rv, pk != NULL && EVP_PKEY_up_ref(pk) == 1, ZTB_ERR_CERT);
    if (ztb_key_from_evp(pk, &key) != ZTB_OK) {
        EVP_PKEY_free(pk);
        ZTB_CHECK(rv, 0, ZTB_ERR_CERT);
    }
    const ASN1_IA5STRING *uri = ztb_cert_only_uri(leaf, &names);
    ZTB_CHECK(rv, uri != NULL, ZTB_ERR_SPIFFE_ID);
    ZTB_TRY(rv, ztb_spiffe_parse_agent((const char *)ASN1_STRING_get0_data(uri),
                                       (size_t)ASN1_STRING_length(uri), ca->td, name, name_cap));
out:
    if (rv != ZTB_OK && name != NULL && name_cap > 0)
        name[0] = '\0';
    ztb_key_free(key);
    GENERAL_NAMES_free(names);
    X509_STORE_CTX_free(ctx);
    sk_X509_pop_free(untrusted, X509_free);
    X509_free(leaf);
    ERR_clear_error();
    return rv;
}
